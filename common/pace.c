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
    p->next_ns = p->last_ns = p->hold_ns = 0;
    p->taken = 0;
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
    /* The next slot follows the last one at the new spacing. */
    if (p->taken && p->next_ns > p->last_ns + p->interval_ns)
        p->next_ns = p->last_ns + p->interval_ns;
    pthread_mutex_unlock(&p->lock);
}

uint64_t renc_pace_slot(struct renc_pace *p, uint64_t now)
{
    pthread_mutex_lock(&p->lock);
    uint64_t slot = now;
    if (p->interval_ns || p->next_ns > now || p->hold_ns > now) {
        if (p->next_ns > slot)
            slot = p->next_ns;
        if (p->hold_ns > slot)
            slot = p->hold_ns;
        p->next_ns = slot + p->interval_ns;
        p->last_ns = slot;
        p->taken = 1;
        if (slot > now) {
            p->waits++;
            p->waited_ns += slot - now;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return slot;
}

void renc_pace_wait(struct renc_pace *p)
{
    uint64_t now = renc_now_ns();
    uint64_t slot = renc_pace_slot(p, now);
    if (slot > now)
        renc_sleep_ns(slot - now);
}

void renc_pace_hold_until(struct renc_pace *p, uint64_t until)
{
    pthread_mutex_lock(&p->lock);
    if (p->hold_ns < until)
        p->hold_ns = until;
    pthread_mutex_unlock(&p->lock);
}

void renc_pace_hold(struct renc_pace *p, uint64_t delay_ns)
{
    renc_pace_hold_until(p, renc_now_ns() + delay_ns);
}
