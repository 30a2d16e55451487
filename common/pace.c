#include "common/pace.h"

#include <errno.h>
#include <time.h>

uint64_t renc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void renc_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t renc_pace_interval(unsigned limit, double window_s)
{
    if (limit == 0 || window_s <= 0)
        return 0;
    return (uint64_t)(window_s * 1e9 / limit + 0.5);
}

void renc_pace_init(struct renc_pace *p, unsigned limit, double window_s)
{
    pthread_mutex_init(&p->lock, NULL);
    p->interval_ns = renc_pace_interval(limit, window_s);
    p->next_ns = 0;
    p->waits = p->waited_ns = 0;
}

void renc_pace_destroy(struct renc_pace *p)
{
    pthread_mutex_destroy(&p->lock);
}

void renc_pace_set(struct renc_pace *p, unsigned limit, double window_s)
{
    pthread_mutex_lock(&p->lock);
    p->interval_ns = renc_pace_interval(limit, window_s);
    pthread_mutex_unlock(&p->lock);
}

void renc_pace_wait(struct renc_pace *p)
{
    uint64_t now = renc_now_ns(), slot;
    pthread_mutex_lock(&p->lock);
    if (p->interval_ns == 0 && p->next_ns <= now) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    slot = p->next_ns > now ? p->next_ns : now;
    p->next_ns = slot + p->interval_ns;
    if (slot > now) {
        p->waits++;
        p->waited_ns += slot - now;
    }
    pthread_mutex_unlock(&p->lock);
    if (slot > now)
        renc_sleep_ns(slot - now);
}

void renc_pace_hold(struct renc_pace *p, uint64_t delay_ns)
{
    uint64_t until = renc_now_ns() + delay_ns;
    pthread_mutex_lock(&p->lock);
    if (p->next_ns < until)
        p->next_ns = until;
    pthread_mutex_unlock(&p->lock);
}
