/* bench/pg_journal.c — the PostgreSQL journal's throughput: how many blobs
 * W workers (one connection each, as W machines would have) can claim and
 * note per second, against the tool's own blob rate.
 *
 *   pg_journal URI COUNT WORKERS BATCH
 *
 * Enters COUNT blobs in a fresh run, then W threads each loop: claim BATCH,
 * note each done, flush (one transaction), until none is left.  Prints one
 * JSON object: enlist_per_s, blobs_per_s (claimed and noted: each blob one
 * claim row and one note), claims_per_s (batches), and the check that every
 * blob was done exactly once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "state/journal.h"

static const struct renc_journal_params params = {
    .mode = "rewrap", .target = "local:t/1", .drop = "", .out = "", .sources = "/bench",
    .shard = "",
};

struct worker {
    const char *uri;
    size_t batch;
    uint64_t blobs, claims;
    int rc;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct renc_journal *j = NULL;
    if ((w->rc = renc_journal_open(&j, w->uri, 1, NULL)) ||
        (w->rc = renc_journal_start(j, &params, 1)))
        return NULL;
    for (;;) {
        struct renc_journal_batch b;
        if ((w->rc = renc_journal_claim(j, w->batch, &b)) || b.count == 0)
            break;
        for (size_t i = 0; i < b.count; i++)
            renc_journal_note(j, b.items[i].row, RENC_J_DONE, 0, "local:k/1", "local:t/1");
        w->blobs += b.count;
        w->claims++;
        renc_journal_batch_cleanup(&b);
        if ((w->rc = renc_journal_flush(j)))
            break;
    }
    if (w->rc == 0)
        w->rc = renc_journal_end(j, "finished");
    renc_journal_close(j);
    return NULL;
}

static int enlist(const char *uri, size_t count, double *secs)
{
    struct renc_journal *j = NULL;
    struct renc_scan s;
    memset(&s, 0, sizeof s);
    s.items = renc_calloc(count, sizeof *s.items);
    int64_t *rows = renc_calloc(count, sizeof *rows);
    uint8_t *fin = renc_calloc(count, 1);
    if (!s.items || !rows || !fin)
        return 1;
    for (size_t i = 0; i < count; i++) {
        char p[64];
        snprintf(p, sizeof p, "/bench/d%03zu/b%08zu", i % 997, i);
        s.items[i].path = renc_strdup(p);
        s.items[i].size = 16384;
    }
    s.count = count;
    int rc = renc_journal_open(&j, uri, 1, NULL);
    if (rc == 0)
        rc = renc_journal_start(j, &params, 0);
    double t0 = now();
    if (rc == 0)
        rc = renc_journal_register(j, &s, rows, fin);
    *secs = now() - t0;
    if (rc == 0)
        rc = renc_journal_end(j, "listed");
    renc_journal_close(j);
    renc_scan_cleanup(&s);
    renc_free(rows);
    renc_free(fin);
    return rc != 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pg_journal URI COUNT WORKERS BATCH\n");
        return 2;
    }
    const char *uri = argv[1];
    size_t count = strtoul(argv[2], NULL, 10), nw = strtoul(argv[3], NULL, 10),
           batch = strtoul(argv[4], NULL, 10);
    double enlist_s;
    if (count == 0 || nw == 0 || nw > 64 || batch == 0 || enlist(uri, count, &enlist_s)) {
        fprintf(stderr, "pg_journal: bad arguments, or the journal failed\n");
        return 1;
    }
    struct worker ws[64];
    pthread_t th[64];
    double t0 = now();
    for (size_t i = 0; i < nw; i++) {
        ws[i] = (struct worker){.uri = uri, .batch = batch};
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    uint64_t blobs = 0, claims = 0;
    int rc = 0;
    for (size_t i = 0; i < nw; i++) {
        pthread_join(th[i], NULL);
        blobs += ws[i].blobs;
        claims += ws[i].claims;
        rc |= ws[i].rc != 0;
    }
    double secs = now() - t0;
    struct renc_journal *j = NULL;
    struct renc_journal_status st;
    memset(&st, 0, sizeof st);
    if (renc_journal_open_readonly(&j, uri) == 0) {
        renc_journal_status(j, &st);
        renc_journal_close(j);
    }
    printf("{\"blobs\": %zu, \"workers\": %zu, \"batch\": %zu, \"enlist_per_s\": %.0f, "
           "\"seconds\": %.3f, \"blobs_per_s\": %.0f, \"claims_per_s\": %.1f, "
           "\"done_in_journal\": %llu, \"each_once\": %s}\n",
           count, nw, batch, count / enlist_s, secs, blobs / secs, claims / secs,
           (unsigned long long)st.count[RENC_J_DONE],
           blobs == count && st.count[RENC_J_DONE] == count ? "true" : "false");
    return rc || blobs != count;
}
