/* tests/unit/test_journal_pg.c — the PostgreSQL journal (state/journal_pg*.c)
 * against a real server: tests/e2e/test_journal_pg.sh starts one (initdb,
 * pg_ctl, a private socket) and runs this with RENC_PG_URI; without it every
 * test is skipped.  What it shows: a run by name in a shared database; the
 * work list entered once; two workers' claims never overlap and cover the
 * list (FOR UPDATE SKIP LOCKED, leases); a live lease keeps another worker
 * off; notes are written with their outcomes, failures listed; a worker's
 * end gives back its claims; status reads it all read-only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "state/journal.h"

static char uri[1024];

static void set_uri(const char *run)
{
    const char *base = getenv("RENC_PG_URI");
    if (!base)
        skip();
    snprintf(uri, sizeof uri, "%s#run=%s", base, run);
}

/* A scan of n blobs /pg/RUN/bI (never opened: the journal keeps names). */
static void fake_scan(struct renc_scan *s, const char *run, size_t n)
{
    memset(s, 0, sizeof *s);
    s->items = renc_calloc(n, sizeof *s->items);
    assert_non_null(s->items);
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "/pg/%s/b%03zu", run, i);
        s->items[i].path = renc_strdup(p);
        s->items[i].rel = renc_strdup(p + 1);
        s->items[i].size = 100 + i;
    }
    s->count = n;
}

static const struct renc_journal_params params = {
    .mode = "rewrap", .target = "local:t/1", .keep_old = 0, .drop = "", .out = "",
    .sources = "/pg", .shard = "",
};

static struct renc_journal *worker(const char *run, int resume)
{
    struct renc_journal *j = NULL;
    set_uri(run);
    assert_int_equal(renc_journal_open(&j, uri, 1, NULL), 0);
    /* A new run replaces the run status showed (as a run's session does):
     * one made by another worker since would be joined instead. */
    struct renc_journal_status st;
    if (!resume)
        assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(renc_journal_start(j, &params, resume), 0);
    return j;
}

static void enlist(struct renc_journal *j, const char *run, size_t n)
{
    struct renc_scan s;
    fake_scan(&s, run, n);
    int64_t *rows = renc_calloc(n, sizeof *rows);
    uint8_t *fin = renc_calloc(n, 1);
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fin[i], 0);
    renc_free(rows);
    renc_free(fin);
    renc_scan_cleanup(&s);
}

static void test_pg_claims_never_overlap(void **state)
{
    (void)state;
    struct renc_journal *a = worker("claims", 0);
    enlist(a, "claims", 100);
    struct renc_journal *b = worker("claims", 1); /* joins the run */
    assert_string_equal(renc_journal_run_id(a), renc_journal_run_id(b));
    uint8_t seen[100] = {0};
    size_t total = 0;
    for (int turn = 0;; turn++) {
        struct renc_journal_batch batch = {0};
        assert_int_equal(renc_journal_claim(turn % 2 ? b : a, 7, &batch), 0);
        if (batch.count == 0 && total == 100)
            break;
        assert_true(batch.lease_until > 0);
        for (size_t i = 0; i < batch.count; i++) {
            int k = atoi(strrchr(batch.items[i].path, 'b') + 1);
            assert_int_equal(seen[k], 0); /* never claimed twice */
            seen[k] = 1;
            total++;
            renc_journal_note(turn % 2 ? b : a, batch.items[i].row,
                              k == 42 ? RENC_J_FAILED : RENC_J_DONE, k == 42 ? -RENC_E_UNWRAP : 0,
                              "local:k/1", k == 42 ? NULL : "local:t/1");
        }
        renc_journal_batch_cleanup(&batch);
        assert_true(turn < 100);
    }
    assert_int_equal(total, 100);
    assert_int_equal(renc_journal_flush(a), 0);
    assert_int_equal(renc_journal_flush(b), 0);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(a, &st), 0);
    assert_int_equal(st.count[RENC_J_DONE], 99);
    assert_int_equal(st.count[RENC_J_FAILED], 1);
    assert_int_equal(st.attempts, 2);
    assert_string_equal(st.params.target, "local:t/1");
    assert_int_equal(renc_journal_end(a, "failed"), 0);
    assert_int_equal(renc_journal_end(b, "failed"), 0);
    renc_journal_close(a);
    renc_journal_close(b);
}

static int nfail;
static void count_failure(void *arg, const char *path, const char *error, int code,
                          const char *ref)
{
    (void)arg;
    (void)code;
    assert_string_equal(path, "/pg/claims/b042");
    assert_non_null(strstr(error, "unwrap"));
    assert_string_equal(ref, "local:k/1");
    nfail++;
}

static void test_pg_status_readonly_and_failures(void **state)
{
    (void)state;
    struct renc_journal *r = NULL;
    set_uri("claims");
    assert_int_equal(renc_journal_open_readonly(&r, uri), 0);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(r, &st), 0);
    assert_int_equal(st.has_run, 1);
    assert_int_equal(st.running, 0); /* no live lease */
    assert_string_equal(st.last_outcome, "failed");
    nfail = 0;
    assert_int_equal(renc_journal_failures(r, 0, count_failure, NULL), 0);
    assert_int_equal(nfail, 1);
    renc_journal_close(r);
    /* A worker joining later retries the failure, once. */
    struct renc_journal *c = worker("claims", 1);
    struct renc_journal_batch batch = {0};
    assert_int_equal(renc_journal_claim(c, 10, &batch), 0);
    assert_int_equal(batch.count, 1);
    assert_string_equal(batch.items[0].path, "/pg/claims/b042");
    renc_journal_batch_cleanup(&batch);
    assert_int_equal(renc_journal_claim(c, 10, &batch), 0);
    assert_int_equal(batch.count, 0);
    renc_journal_close(c); /* never ended: its lease stays live */
}

static void test_pg_live_lease_keeps_others_off(void **state)
{
    (void)state;
    struct renc_journal *a = worker("lease", 0);
    enlist(a, "lease", 5);
    struct renc_journal_batch batch = {0};
    assert_int_equal(renc_journal_claim(a, 5, &batch), 0);
    assert_int_equal(batch.count, 5);
    renc_journal_batch_cleanup(&batch);
    struct renc_journal *b = worker("lease", 1);
    assert_int_equal(renc_journal_claim(b, 5, &batch), 0);
    assert_int_equal(batch.count, 0); /* a holds them all */
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(b, &st), 0);
    assert_int_equal(st.running, 1);
    /* a ends without noting: its claims go back, b takes them. */
    assert_int_equal(renc_journal_end(a, "interrupted"), 0);
    assert_int_equal(renc_journal_claim(b, 5, &batch), 0);
    assert_int_equal(batch.count, 5);
    renc_journal_batch_cleanup(&batch);
    renc_journal_close(a);
    renc_journal_close(b);
}

static void test_pg_new_run_forgets_the_old(void **state)
{
    (void)state;
    struct renc_journal *a = worker("lease", 0);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(a, &st), 0);
    assert_int_equal(st.count[RENC_J_PENDING], 0);
    assert_int_equal(st.attempts, 1);
    const uint8_t oldh[4] = {1, 2, 3, 4}, newh[4] = {5, 6, 7, 8};
    const uint8_t *o = oldh, *n = newh;
    size_t len = 4;
    int64_t row = 1;
    const char *path = "/pg/lease/b000";
    assert_int_equal(renc_journal_header_intents(a, 1, &row, &path, &o, &n, &len), 0);
    assert_int_equal(renc_journal_status(a, &st), 0);
    assert_int_equal(st.header_intents, 1);
    renc_journal_close(a);
}

static void test_pg_bad_locations(void **state)
{
    (void)state;
    struct renc_journal *j = NULL;
    const char *base = getenv("RENC_PG_URI");
    if (!base)
        skip();
    char bad[1100];
    snprintf(bad, sizeof bad, "%s#run=no spaces", base);
    assert_int_equal(renc_journal_open(&j, bad, 1, NULL), -RENC_E_INVALID);
    snprintf(bad, sizeof bad, "%s#walk=x", base);
    assert_int_equal(renc_journal_open(&j, bad, 1, NULL), -RENC_E_INVALID);
    assert_int_not_equal(renc_journal_open(&j, "postgresql:///nodb?host=/nonexistent", 1, NULL),
                         0);
    /* A password in the location would be printed with it: refused. */
    assert_int_equal(renc_journal_open(&j, "postgresql://u:secret@h/db", 1, NULL),
                     -RENC_E_INSECURE_PERMS);
    assert_int_equal(renc_journal_open(&j, "postgresql:///db?host=/x&password=secret", 1, NULL),
                     -RENC_E_INSECURE_PERMS);
    assert_int_equal(renc_journal_open(&j, "postgres://u:secret@h/db#run=x", 1, NULL),
                     -RENC_E_INSECURE_PERMS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_claims_never_overlap),
        cmocka_unit_test(test_pg_status_readonly_and_failures),
        cmocka_unit_test(test_pg_live_lease_keeps_others_off),
        cmocka_unit_test(test_pg_new_run_forgets_the_old),
        cmocka_unit_test(test_pg_bad_locations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
