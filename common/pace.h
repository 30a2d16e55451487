/* common/pace.h — a pacer: spaces out requests so that no window of
 * `window_s` seconds ever holds more than `limit` of them.
 *
 * Each caller takes the next free slot, one every window_s/limit seconds,
 * and sleeps until it comes, so requests leave evenly rather than in bursts.
 * A burst-allowing token bucket would let limit + burst requests into one
 * sliding window; even spacing keeps every window at or under the limit.
 * Thread-safe.  A limit of 0 turns pacing off.
 */
#ifndef RENC_COMMON_PACE_H
#define RENC_COMMON_PACE_H

#include <pthread.h>
#include <stdint.h>

struct renc_pace {
    pthread_mutex_t lock;
    uint64_t interval_ns; /* 0: off */
    uint64_t next_ns;     /* CLOCK_MONOTONIC time of the next free slot */
    uint64_t last_ns;     /* the last slot given */
    int taken;            /* a slot was given */
    uint64_t hold_ns;     /* no slot before this (renc_pace_hold) */
    uint64_t waits;       /* calls that had to sleep */
    uint64_t waited_ns;   /* their total sleep */
};

void renc_pace_init(struct renc_pace *p, unsigned limit, double window_s);
void renc_pace_destroy(struct renc_pace *p);

/* renc_pace_set: changes the limit (0: off); slots already taken stay. */
void renc_pace_set(struct renc_pace *p, unsigned limit, double window_s);

/* renc_pace_wait: takes the next slot and sleeps until it. */
void renc_pace_wait(struct renc_pace *p);

/* renc_pace_slot: takes the next slot at or after `now` (CLOCK_MONOTONIC
 * ns) and returns it; renc_pace_wait is this and a sleep until the slot. */
uint64_t renc_pace_slot(struct renc_pace *p, uint64_t now);

/* renc_pace_hold: no slot before now + delay_ns (a server's Retry-After);
 * renc_pace_hold_until: no slot before `until`. */
void renc_pace_hold(struct renc_pace *p, uint64_t delay_ns);
void renc_pace_hold_until(struct renc_pace *p, uint64_t until);

/* renc_now_ns: CLOCK_MONOTONIC in nanoseconds. */
uint64_t renc_now_ns(void);

/* renc_sleep_ns: sleeps, resuming after signals, for ns nanoseconds. */
void renc_sleep_ns(uint64_t ns);

#endif
