/* tests/unit/test_workq.c — the ordered work queue: prep and done run on
 * the calling thread in index order, work runs on the workers with at most
 * window items between prep and done, a stop stops the prepping and still
 * gives every prepped item its done, and the push form (slot, submit,
 * finish) does the same.  Also the queue's ThreadSanitizer test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/workq.h"

#include "tests/unit/leakcheck.h"

#define ITEMS 500

struct rec {
    pthread_t caller;
    unsigned window;
    size_t prepped, done;          /* calling thread only */
    int order_ok, thread_ok, slot_ok;
    size_t slot_item[64];          /* the item each slot holds */
    _Atomic int in_flight, most_in_flight, off_thread;
    int worked[ITEMS];
    size_t stop_prep_at, fail_work_at, stop_done_at; /* ITEMS: never */
    size_t stopped_dones, clean_dones;
    int fail_rc_seen;
};

static void rec_init(struct rec *r, unsigned window)
{
    memset(r, 0, sizeof *r);
    r->caller = pthread_self();
    r->window = window;
    r->order_ok = r->thread_ok = r->slot_ok = 1;
    r->stop_prep_at = r->fail_work_at = r->stop_done_at = ITEMS;
}

static int rec_prep(void *arg, size_t i, unsigned slot)
{
    struct rec *r = arg;
    if (!pthread_equal(pthread_self(), r->caller))
        r->thread_ok = 0;
    if (i != r->prepped)
        r->order_ok = 0;
    if (i == r->stop_prep_at)
        return 7;
    r->prepped++;
    if (slot >= r->window)
        r->slot_ok = 0;
    else
        r->slot_item[slot] = i;
    int now = atomic_fetch_add(&r->in_flight, 1) + 1;
    int most = atomic_load(&r->most_in_flight);
    while (now > most && !atomic_compare_exchange_weak(&r->most_in_flight, &most, now))
        ;
    return 0;
}

static int rec_work(void *arg, size_t i, unsigned slot)
{
    struct rec *r = arg;
    if (!pthread_equal(pthread_self(), r->caller))
        atomic_store(&r->off_thread, 1);
    if (slot < r->window && r->slot_item[slot] != i)
        r->slot_ok = 0;
    r->worked[i]++;
    if (i % 7 == 0) { /* some items take longer: the others overtake them */
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return i == r->fail_work_at ? -5 : 0;
}

static int rec_done(void *arg, size_t i, unsigned slot, int rc, int stopped)
{
    struct rec *r = arg;
    (void)slot;
    if (!pthread_equal(pthread_self(), r->caller))
        r->thread_ok = 0;
    if (i != r->done)
        r->order_ok = 0;
    r->done++;
    atomic_fetch_sub(&r->in_flight, 1);
    if (stopped) {
        r->stopped_dones++;
        return 0;
    }
    r->clean_dones++;
    if (rc == -5) {
        r->fail_rc_seen = 1;
        return 9;
    }
    return i == r->stop_done_at ? 8 : 0;
}

static const struct renc_workq_ops rec_ops = {rec_prep, rec_work, rec_done};

static void test_workq_keeps_order_and_bounds_what_is_in_flight(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 8);
    assert_int_equal(renc_workq_run(ITEMS, 4, 8, &rec_ops, &r), 0);
    assert_int_equal(r.prepped, ITEMS);
    assert_int_equal(r.done, ITEMS);
    assert_true(r.order_ok && r.thread_ok && r.slot_ok);
    assert_true(atomic_load(&r.off_thread));
    assert_true(atomic_load(&r.most_in_flight) <= 8);
    for (size_t i = 0; i < ITEMS; i++)
        assert_int_equal(r.worked[i], 1);
}

static void test_workq_one_thread_works_on_the_calling_thread(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 8);
    assert_int_equal(renc_workq_run(50, 1, 8, &rec_ops, &r), 0);
    assert_int_equal(r.done, 50);
    assert_false(atomic_load(&r.off_thread));
    assert_int_equal(atomic_load(&r.most_in_flight), 1);
}

static void test_workq_failed_work_stops_and_every_prepped_item_is_done(void **state)
{
    (void)state;
    for (unsigned threads = 1; threads <= 3; threads += 2) {
        struct rec r;
        rec_init(&r, 6);
        r.fail_work_at = 100;
        assert_int_equal(renc_workq_run(ITEMS, threads, 6, &rec_ops, &r), 9);
        assert_true(r.fail_rc_seen);
        assert_true(r.order_ok && r.thread_ok);
        assert_int_equal(r.done, r.prepped); /* nothing prepped is left without its done */
        assert_int_equal(r.clean_dones, 101);
        assert_true(r.prepped <= 101 + 6);
        assert_int_equal(atomic_load(&r.in_flight), 0);
    }
}

static void test_workq_failed_prep_stops_before_that_item(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 4);
    r.stop_prep_at = 30;
    assert_int_equal(renc_workq_run(ITEMS, 2, 4, &rec_ops, &r), 7);
    assert_int_equal(r.prepped, 30);
    assert_int_equal(r.done, 30);
    assert_int_equal(r.worked[30], 0);
    assert_true(r.stopped_dones <= 4);
}

static void test_workq_push_form_matches_run(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 5);
    r.stop_done_at = 200;
    struct renc_workq *q = NULL;
    assert_int_equal(renc_workq_new(&q, 3, 5, &rec_ops, &r), 0);
    unsigned slot;
    int stop = 0;
    size_t i = 0;
    for (; i < ITEMS && (stop = renc_workq_slot(q, &slot)) == 0; i++) {
        assert_int_equal(rec_prep(&r, i, slot), 0);
        renc_workq_submit(q, slot);
    }
    assert_int_equal(stop, 8);
    assert_int_equal(renc_workq_finish(q, 0), 8);
    assert_int_equal(r.done, i);
    assert_int_equal(r.clean_dones, 201);
    assert_true(r.order_ok && r.thread_ok && r.slot_ok);
}

static void test_workq_caller_stop_marks_the_rest_stopped(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 4);
    struct renc_workq *q = NULL;
    assert_int_equal(renc_workq_new(&q, 2, 4, &rec_ops, &r), 0);
    unsigned slot;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(renc_workq_slot(q, &slot), 0);
        rec_prep(&r, i, slot);
        renc_workq_submit(q, slot);
    }
    assert_int_equal(renc_workq_finish(q, 42), 42);
    assert_int_equal(r.done, 3);
    assert_int_equal(r.stopped_dones + r.clean_dones, 3);
    assert_int_equal(renc_workq_finish(NULL, 5), 5);
}

static void test_workq_without_memory_still_works_everything(void **state)
{
    (void)state;
    /* Each of the queue's allocations failing in turn (the queue, its
     * three slot arrays, the thread ids): the items are still all done. */
    for (uint64_t n = 1; n <= 5; n++) {
        struct rec r;
        rec_init(&r, 4);
        renc_alloc_fail_at(n);
        assert_int_equal(renc_workq_run(20, 2, 4, &rec_ops, &r), 0);
        renc_alloc_fail_at(0);
        assert_int_equal(r.done, 20);
        assert_int_equal(r.worked[19], 1);
        assert_true(r.order_ok);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_workq_keeps_order_and_bounds_what_is_in_flight),
        T(test_workq_one_thread_works_on_the_calling_thread),
        T(test_workq_failed_work_stops_and_every_prepped_item_is_done),
        T(test_workq_failed_prep_stops_before_that_item),
        T(test_workq_push_form_matches_run),
        T(test_workq_caller_stop_marks_the_rest_stopped),
        T(test_workq_without_memory_still_works_everything),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
