/* state/journal_pg_shared.c — what makes a PostgreSQL run shared by many
 * workers beyond claims (journal_pg_items.c): the listing done once, by
 * the worker that takes the run's listing lock (a session advisory lock:
 * the server drops it with a worker that dies, and the next worker to look
 * lists the run again), the renewal of a worker's leases with its
 * heartbeat, and the workers as status shows them. */
#include "state/journal_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

/* The listing lock's key: the run's name under a prefix of its own, so it
 * never meets start's transaction lock on the bare name. */
#define RENC_JPG_LIST_KEY "hashtext('renc-list:' || $1)"

double renc_jpg_lease_s(const struct renc_journal *base)
{
    return ((const struct renc_journal_pg *)base)->lease_s;
}

/* The run's listing lock taken when it is free and the run unlisted; its
 * blobs then start unseen, so those the listing no longer finds can be
 * told at the end. */
int renc_jpg_list_begin(struct renc_journal *base, int *must)
{
    struct renc_journal_pg *j = renc_jpg(base);
    const char *run[] = {j->run};
    PGresult *r = NULL;
    *must = 0;
    pthread_mutex_lock(&j->lock);
    int rc = renc_jpg_query(j, &r, "SELECT pg_try_advisory_lock(" RENC_JPG_LIST_KEY "),"
                                   " (SELECT listed FROM runs WHERE name = $1)", 1, run);
    int got = rc == 0 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int listed = rc == 0 && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    if (got && !listed)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET seen = 0 WHERE run = $1", 1, run);
    if (got && (listed || rc))
        renc_jpg_query(j, NULL, "SELECT pg_advisory_unlock(" RENC_JPG_LIST_KEY ")", 1, run);
    if (rc == 0 && got && !listed)
        *must = j->listing = 1;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* A whole listing: the blobs still to do that it did not find are gone
 * (not those under a live lease: a worker has them in hand), and the run
 * is listed.  Then (or, not ok, only) the lock is released. */
int renc_jpg_list_end(struct renc_journal *base, int ok)
{
    struct renc_journal_pg *j = renc_jpg(base);
    const char *run[] = {j->run};
    pthread_mutex_lock(&j->lock);
    int rc = ok ? renc_jpg_query(j, NULL, "BEGIN", 0, NULL) : 0;
    if (ok && rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET state = 'gone' WHERE run = $1 AND"
                                     " seen = 0 AND state IN ('pending', 'failed') AND"
                                     " (lease_until IS NULL OR lease_until < " RENC_PG_NOW ")",
                            1, run);
    if (ok && rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE runs SET listed = true, updated = " RENC_PG_NOW
                                     " WHERE name = $1", 1, run);
    if (ok)
        rc = renc_jpg_end(j, rc);
    if (j->listing) {
        int urc = renc_jpg_query(j, NULL, "SELECT pg_advisory_unlock(" RENC_JPG_LIST_KEY ")",
                                 1, run);
        rc = rc ? rc : urc;
        j->listing = 0;
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* The worker's live claims held for another lease, and its heartbeat, in
 * one statement.  A claim that lapsed and was taken by another worker is
 * not this one's any more: not renewed. */
int renc_jpg_renew(struct renc_journal *base)
{
    struct renc_journal_pg *j = renc_jpg(base);
    char w[24], lease[32];
    snprintf(w, sizeof w, "%lld", (long long)j->worker);
    snprintf(lease, sizeof lease, "%.0f", j->lease_s);
    const char *v[] = {j->run, w, lease};
    pthread_mutex_lock(&j->lock);
    int rc = renc_jpg_query(j, NULL,
                            "WITH b AS (UPDATE blobs SET lease_until = " RENC_PG_NOW
                            " + $3::float8 WHERE run = $1 AND claimed_by = $2::bigint"
                            " AND lease_until IS NOT NULL RETURNING 1)"
                            " UPDATE workers SET heartbeat = " RENC_PG_NOW
                            " WHERE id = $2::bigint", 3, v);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static void renc_jpg_worker_row(PGresult *r, int k, struct renc_journal_worker *w)
{
    memset(w, 0, sizeof *w);
    w->id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
    snprintf(w->host, sizeof w->host, "%s", PQgetvalue(r, k, 1));
    w->pid = strtol(PQgetvalue(r, k, 2), NULL, 10);
    w->started = strtod(PQgetvalue(r, k, 3), NULL);
    w->heartbeat = strtod(PQgetvalue(r, k, 4), NULL);
    w->ended = strtod(PQgetvalue(r, k, 5), NULL);
    snprintf(w->outcome, sizeof w->outcome, "%s", PQgetvalue(r, k, 6));
    w->done = strtoull(PQgetvalue(r, k, 7), NULL, 10);
    w->failed = strtoull(PQgetvalue(r, k, 8), NULL, 10);
    w->live = strcmp(PQgetvalue(r, k, 9), "t") == 0;
}

int renc_jpg_workers(struct renc_journal *base,
                     void (*fn)(void *arg, const struct renc_journal_worker *w), void *arg)
{
    struct renc_journal_pg *j = renc_jpg(base);
    char lease[32];
    snprintf(lease, sizeof lease, "%.0f", j->lease_s);
    const char *v[] = {j->run, lease};
    PGresult *r = NULL;
    pthread_mutex_lock(&j->lock);
    int rc = renc_jpg_query(j, &r,
                            "SELECT id, host, pid, started, heartbeat, coalesce(ended, 0),"
                            " coalesce(outcome, ''), done, failed, ended IS NULL AND"
                            " heartbeat > " RENC_PG_NOW " - $2::float8"
                            " FROM workers WHERE run = $1 ORDER BY id", 2, v);
    pthread_mutex_unlock(&j->lock);
    for (int k = 0; rc == 0 && k < PQntuples(r); k++) {
        struct renc_journal_worker w;
        renc_jpg_worker_row(r, k, &w);
        fn(arg, &w);
    }
    PQclear(r);
    return rc;
}
