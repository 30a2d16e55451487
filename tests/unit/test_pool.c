/* tests/unit/test_pool.c — the bounded buffer pool: the budget holds (an
 * acquire waits for a release), sizes round to the alignment, released
 * buffers are wiped and reused, cancel wakes waiters, nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/pool.h"

enum { KIB4 = RENC_POOL_ALIGN };

#define RENC_TEST_OWN_GROUP
#include "tests/unit/leakcheck.h"


/* An acquire in another thread, reporting when it returns. */
struct waiter {
    struct renc_pool *pool;
    size_t len;
    uint8_t *buf;
    _Atomic int rc;
    _Atomic int returned;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int rc = renc_pool_acquire(w->pool, w->len, &w->buf);
    atomic_store(&w->rc, rc);
    atomic_store(&w->returned, 1);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_pool_acquire_waits_until_a_release_makes_room(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 4 * KIB4), 0);
    assert_int_equal(renc_pool_budget(pool), 4 * KIB4);
    uint8_t *a = NULL, *b = NULL;
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &a), 0);
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &b), 0);
    assert_int_equal(renc_pool_in_use(pool), 4 * KIB4);

    struct waiter w = {.pool = pool, .len = KIB4};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    sleep_ms(50);
    assert_int_equal(atomic_load(&w.returned), 0); /* still waiting */
    assert_int_equal(renc_pool_in_use(pool), 4 * KIB4);

    renc_pool_release(pool, a, 2 * KIB4);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&w.rc), 0);
    assert_non_null(w.buf);
    assert_int_equal(renc_pool_in_use(pool), 3 * KIB4);

    renc_pool_release(pool, w.buf, KIB4);
    renc_pool_release(pool, b, 2 * KIB4);
    assert_int_equal(renc_pool_in_use(pool), 0);
    renc_pool_free(pool);
}

static void test_pool_try_acquire_says_eagain_instead_of_waiting(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 3 * KIB4), 0);
    uint8_t *a = NULL, *b = NULL, *c = (uint8_t *)&c;
    assert_int_equal(renc_pool_try_acquire(pool, 2 * KIB4, &a), 0);
    assert_int_equal(renc_pool_try_acquire(pool, 2 * KIB4, &c), -EAGAIN);
    assert_ptr_equal(c, (uint8_t *)&c); /* untouched on failure */
    assert_int_equal(renc_pool_try_acquire(pool, KIB4, &b), 0);
    assert_int_equal(renc_pool_try_acquire(pool, 1, &c), -EAGAIN);
    renc_pool_release(pool, a, 2 * KIB4);
    assert_int_equal(renc_pool_try_acquire(pool, 2 * KIB4, &a), 0);
    renc_pool_release(pool, a, 2 * KIB4);
    renc_pool_release(pool, b, KIB4);
    renc_pool_free(pool);
}

static void test_pool_rejects_requests_bigger_than_the_budget(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 10000), 0);
    uint8_t *buf = NULL;
    assert_int_equal(renc_pool_acquire(pool, 10001, &buf), -RENC_E_TOO_BIG);
    assert_int_equal(renc_pool_try_acquire(pool, 10001, &buf), -RENC_E_TOO_BIG);
    /* 9000 bytes fit the budget but 3 pages of them do not: waiting would
     * be for ever. */
    assert_int_equal(renc_pool_acquire(pool, 9000, &buf), -RENC_E_TOO_BIG);
    assert_int_equal(renc_pool_acquire(pool, SIZE_MAX, &buf), -RENC_E_TOO_BIG);
    assert_null(buf);
    assert_int_equal(renc_pool_acquire(pool, 8192, &buf), 0);
    renc_pool_release(pool, buf, 8192);
    renc_pool_free(pool);

    assert_int_equal(renc_pool_new(&pool, 0), -RENC_E_INVALID);
}

static void test_pool_buffers_are_aligned_and_sizes_rounded(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 1 << 20), 0);
    size_t lens[] = {0, 1, 4095, 4096, 4097, 12345, 65536};
    size_t want = 0;
    uint8_t *bufs[sizeof(lens) / sizeof(lens[0])];
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        assert_int_equal(renc_pool_acquire(pool, lens[i], &bufs[i]), 0);
        assert_int_equal((uintptr_t)bufs[i] % RENC_POOL_ALIGN, 0);
        size_t rounded = lens[i] ? (lens[i] + KIB4 - 1) / KIB4 * KIB4 : KIB4;
        memset(bufs[i], 0x5a, rounded); /* all of the rounded size is usable */
        want += rounded;
        assert_int_equal(renc_pool_in_use(pool), want);
    }
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        renc_pool_release(pool, bufs[i], lens[i]);
    assert_int_equal(renc_pool_in_use(pool), 0);
    renc_pool_free(pool);
}

static void test_pool_peak_is_the_most_ever_in_use(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 16 * KIB4), 0);
    assert_int_equal(renc_pool_peak(pool), 0);
    uint8_t *a, *b, *c;
    assert_int_equal(renc_pool_acquire(pool, 3 * KIB4, &a), 0);
    assert_int_equal(renc_pool_acquire(pool, 5 * KIB4, &b), 0);
    renc_pool_release(pool, a, 3 * KIB4);
    assert_int_equal(renc_pool_acquire(pool, KIB4, &c), 0);
    assert_int_equal(renc_pool_in_use(pool), 6 * KIB4);
    assert_int_equal(renc_pool_peak(pool), 8 * KIB4);
    renc_pool_release(pool, b, 5 * KIB4);
    renc_pool_release(pool, c, KIB4);
    assert_int_equal(renc_pool_peak(pool), 8 * KIB4);
    renc_pool_free(pool);
}

static void test_pool_cancel_wakes_a_waiter(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 2 * KIB4), 0);
    uint8_t *a = NULL;
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &a), 0);
    struct waiter w = {.pool = pool, .len = KIB4};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    sleep_ms(50);
    assert_int_equal(atomic_load(&w.returned), 0);
    renc_pool_cancel(pool);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&w.rc), -ECANCELED);
    assert_null(w.buf);
    /* Once cancelled, every acquire fails, even one that would fit. */
    renc_pool_release(pool, a, 2 * KIB4);
    assert_int_equal(renc_pool_acquire(pool, KIB4, &a), -ECANCELED);
    assert_int_equal(renc_pool_try_acquire(pool, KIB4, &a), -ECANCELED);
    renc_pool_free(pool);
}

static void test_pool_release_wipes_and_reuses(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 8 * KIB4), 0);
    uint8_t *a = NULL, *again = NULL;
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &a), 0);
    memset(a, 0xa5, 2 * KIB4);
    int64_t live = renc_alloc_outstanding();
    renc_pool_release(pool, a, 2 * KIB4);
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &again), 0);
    assert_ptr_equal(again, a); /* the cached buffer, no new allocation */
    assert_int_equal(renc_alloc_outstanding(), live);
    static const uint8_t zero[2 * KIB4];
    assert_memory_equal(again, zero, sizeof(zero));
    renc_pool_release(pool, again, 2 * KIB4);
    renc_pool_free(pool);
}

/* A public release (a buffer that held only ciphertext) gives the budget
 * back and the buffer to the next acquire of its size, not wiped. */
static void test_pool_public_release_reuses_without_wiping(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 4 * KIB4), 0);
    uint8_t *a = NULL, *b = NULL, *again = NULL;
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &a), 0);
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &b), 0);
    assert_int_equal(renc_pool_try_acquire(pool, KIB4, &again), -EAGAIN);
    memset(a, 0xa5, 2 * KIB4);
    renc_pool_release_public(pool, a, 2 * KIB4);
    assert_int_equal(renc_pool_in_use(pool), 2 * KIB4);
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &again), 0);
    assert_ptr_equal(again, a);
    /* Past the free list's link in its first bytes, the old bytes. */
    assert_int_equal(again[2 * KIB4 - 1], 0xa5);
    renc_pool_release_public(pool, NULL, KIB4); /* nothing */
    renc_pool_release(pool, again, 2 * KIB4);
    renc_pool_release(pool, b, 2 * KIB4);
    renc_pool_free(pool);
}

/* Cached buffers count towards the memory the pool holds: a new size first
 * frees cached buffers of other sizes. */
static void test_pool_cache_stays_within_the_budget(void **state)
{
    (void)state;
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 4 * KIB4), 0);
    int64_t base = renc_alloc_outstanding();
    uint8_t *small[4], *big = NULL;
    for (int i = 0; i < 4; i++)
        assert_int_equal(renc_pool_acquire(pool, KIB4, &small[i]), 0);
    for (int i = 0; i < 4; i++)
        renc_pool_release(pool, small[i], KIB4);
    assert_int_equal(renc_alloc_outstanding(), base + 4); /* all four cached */
    assert_int_equal(renc_pool_acquire(pool, 3 * KIB4, &big), 0);
    /* 3 pages in use leave room for one cached page. */
    assert_int_equal(renc_alloc_outstanding(), base + 2);
    renc_pool_release(pool, big, 3 * KIB4);
    assert_int_equal(renc_pool_acquire(pool, 4 * KIB4, &big), 0);
    assert_int_equal(renc_alloc_outstanding(), base + 1);
    renc_pool_release(pool, big, 4 * KIB4);
    renc_pool_free(pool);
}

static void test_pool_out_of_memory_gives_the_budget_back(void **state)
{
    (void)state;
    struct renc_pool *pool = (struct renc_pool *)&pool;
    renc_alloc_fail_at(1);
    assert_int_equal(renc_pool_new(&pool, KIB4), -RENC_E_NOMEM);
    assert_ptr_equal(pool, (struct renc_pool *)&pool);
    renc_alloc_fail_at(0);

    assert_int_equal(renc_pool_new(&pool, 2 * KIB4), 0);
    uint8_t *buf = NULL;
    renc_alloc_fail_at(1);
    assert_int_equal(renc_pool_acquire(pool, 2 * KIB4, &buf), -RENC_E_NOMEM);
    assert_null(buf);
    renc_alloc_fail_at(0);
    assert_int_equal(renc_pool_in_use(pool), 0);
    assert_int_equal(renc_pool_try_acquire(pool, 2 * KIB4, &buf), 0);
    renc_pool_release(pool, buf, 2 * KIB4);
    renc_pool_free(pool);
    renc_pool_free(NULL);
}

/* Several threads acquiring and releasing mixed sizes: the budget holds at
 * every acquire, and at the end everything is back. */
struct churn {
    struct renc_pool *pool;
    unsigned seed;
    _Atomic int over_budget;
    _Atomic int errors;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    unsigned seed = c->seed;
    for (int i = 0; i < 2000; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = ((seed >> 16) % 4 + 1) * KIB4 - (seed % 7);
        uint8_t *buf = NULL;
        if (renc_pool_acquire(c->pool, len, &buf) != 0) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        if (renc_pool_in_use(c->pool) > renc_pool_budget(c->pool))
            atomic_store(&c->over_budget, 1);
        memset(buf, (int)i, len);
        renc_pool_release(c->pool, buf, len);
    }
    return NULL;
}

static void test_pool_threads_share_the_budget(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    struct renc_pool *pool = NULL;
    assert_int_equal(renc_pool_new(&pool, 8 * KIB4), 0);
    struct churn c[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        c[i] = (struct churn){.pool = pool, .seed = (unsigned)i * 7919u + 1};
        assert_int_equal(pthread_create(&t[i], NULL, churn_main, &c[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(atomic_load(&c[i].errors), 0);
        assert_int_equal(atomic_load(&c[i].over_budget), 0);
    }
    assert_int_equal(renc_pool_in_use(pool), 0);
    assert_true(renc_pool_peak(pool) <= 8 * KIB4);
    renc_pool_free(pool);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pool_acquire_waits_until_a_release_makes_room),
        T(test_pool_try_acquire_says_eagain_instead_of_waiting),
        T(test_pool_rejects_requests_bigger_than_the_budget),
        T(test_pool_buffers_are_aligned_and_sizes_rounded),
        T(test_pool_peak_is_the_most_ever_in_use),
        T(test_pool_cancel_wakes_a_waiter),
        T(test_pool_release_wipes_and_reuses),
        T(test_pool_public_release_reuses_without_wiping),
        T(test_pool_cache_stays_within_the_budget),
        T(test_pool_out_of_memory_gives_the_budget_back),
        T(test_pool_threads_share_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
