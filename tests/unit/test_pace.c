/* tests/unit/test_pace.c — the pacer keeps every window at or under its
 * limit, whatever the callers' timing (slots are computed for given times,
 * nothing sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/pace.h"

#define SEC 1000000000ull

/* The most slots of `slots` (sorted) inside any window of w ns. */
static unsigned max_in_window(const uint64_t *slots, size_t n, uint64_t w)
{
    unsigned best = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (slots[i] - slots[j] >= w)
            j++;
        if (i - j + 1 > best)
            best = (unsigned)(i - j + 1);
    }
    return best;
}

static void test_burst_is_spread(void **state)
{
    (void)state;
    struct renc_pace p;
    renc_pace_init(&p, 10, 1.0);
    uint64_t slots[100];
    for (size_t i = 0; i < 100; i++)
        slots[i] = renc_pace_slot(&p, 5 * SEC); /* 100 callers at the same instant */
    assert_int_equal(slots[0], 5 * SEC);
    for (size_t i = 1; i < 100; i++)
        assert_int_equal(slots[i] - slots[i - 1], SEC / 10);
    assert_true(max_in_window(slots, 100, SEC) <= 10);
    renc_pace_destroy(&p);
}

static void test_idle_caller_not_delayed(void **state)
{
    (void)state;
    struct renc_pace p;
    renc_pace_init(&p, 10, 1.0);
    assert_int_equal(renc_pace_slot(&p, 1 * SEC), 1 * SEC);
    /* Long after the last slot: at once, no credit saved up. */
    assert_int_equal(renc_pace_slot(&p, 9 * SEC), 9 * SEC);
    assert_int_equal(renc_pace_slot(&p, 9 * SEC), 9 * SEC + SEC / 10);
    renc_pace_destroy(&p);
}

static void test_mixed_arrivals_stay_under_limit(void **state)
{
    (void)state;
    struct renc_pace p;
    renc_pace_init(&p, 40, 10.0);
    uint64_t slots[400], now = 0;
    for (size_t i = 0; i < 400; i++) {
        now += (i * 7919) % 5 == 0 ? 3 * SEC : SEC / 50; /* bursts and pauses */
        slots[i] = renc_pace_slot(&p, now);
        if (slots[i] > now)
            now = slots[i]; /* the caller slept until its slot */
    }
    assert_true(max_in_window(slots, 400, 10 * SEC) <= 40);
    renc_pace_destroy(&p);
}

static void test_hold_and_resize(void **state)
{
    (void)state;
    struct renc_pace p;
    renc_pace_init(&p, 1, 1.0); /* strict until sized */
    assert_int_equal(renc_pace_slot(&p, 0), 0);
    renc_pace_set(&p, 100, 1.0); /* the next slot follows at the new spacing */
    assert_int_equal(renc_pace_slot(&p, 0), SEC / 100);
    renc_pace_hold_until(&p, 3 * SEC); /* a Retry-After */
    renc_pace_set(&p, 1000, 1.0);      /* a resize does not undo it */
    assert_int_equal(renc_pace_slot(&p, SEC), 3 * SEC);
    assert_int_equal(renc_pace_slot(&p, SEC), 3 * SEC + SEC / 1000);
    renc_pace_set(&p, 0, 1.0); /* off: only the hold remains */
    assert_int_equal(renc_pace_slot(&p, 4 * SEC), 4 * SEC);
    assert_int_equal(renc_pace_slot(&p, 4 * SEC), 4 * SEC);
    renc_pace_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_is_spread),
        cmocka_unit_test(test_idle_caller_not_delayed),
        cmocka_unit_test(test_mixed_arrivals_stay_under_limit),
        cmocka_unit_test(test_hold_and_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
