/* state/journal_pg.h — the PostgreSQL journal's object and the helpers its
 * two files share: journal_pg.c (the connection, the schema, the run and
 * its workers, status) and journal_pg_items.c (the blobs: the work list,
 * claims under leases, outcomes, header intents, failures).  One database
 * holds many runs, each by name; the workers that open the same location
 * share its run (docs/internals/state.md).  Only state/ includes it. */
#ifndef RENC_STATE_JOURNAL_PG_H
#define RENC_STATE_JOURNAL_PG_H

#include <pthread.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "state/journal_internal.h"

/* How long a claim lasts unless its worker renews it (seconds);
 * RENC_JOURNAL_LEASE (2 to 86400) sets another. */
#define RENC_PG_LEASE_S 300.0

struct renc_journal_pg {
    struct renc_journal base; /* first: a struct renc_journal * is this */
    PGconn *conn;
    pthread_mutex_t lock;     /* the connection */
    char run[128];            /* the run's name: "#run=NAME" after the URI, else "default" */
    int64_t worker;           /* this worker's row (its attempt), 0 before start */
    double worker_started;    /* server time the worker started */
    double lease_s;           /* how long a claim lasts unless renewed */
    int listing;              /* this worker holds the run's listing lock */
    struct renc_journal_owned params; /* what status last read */
};

static inline struct renc_journal_pg *renc_jpg(struct renc_journal *j)
{
    return (struct renc_journal_pg *)j;
}

/* renc_jpg_query: sql with n text parameters (NULL for SQL NULL); *res
 * (may be NULL: cleared) gets the result on success.  0, or
 * -RENC_E_JOURNAL for an error the server gave, -EIO when the
 * connection is gone. */
int renc_jpg_query(struct renc_journal_pg *j, PGresult **res, const char *sql, int n,
                   const char *const *params);
/* renc_jpg_end: COMMIT when rc is 0, else ROLLBACK; returns the outcome. */
int renc_jpg_end(struct renc_journal_pg *j, int rc);
/* The server's clock, Unix seconds: what leases and heartbeats are on. */
#define RENC_PG_NOW "extract(epoch from clock_timestamp())"

int renc_jpg_enlist(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                    uint8_t *finished);
int renc_jpg_claim(struct renc_journal *j, size_t max, uint64_t max_bytes,
                   struct renc_journal_batch *out);
int renc_jpg_enlist_part(struct renc_journal *j, const struct renc_scan *part);
int renc_jpg_list_begin(struct renc_journal *j, int *must);
int renc_jpg_list_end(struct renc_journal *j, int ok);
int renc_jpg_renew(struct renc_journal *j);
double renc_jpg_lease_s(const struct renc_journal *j);
int renc_jpg_workers(struct renc_journal *j,
                     void (*fn)(void *arg, const struct renc_journal_worker *w), void *arg);
int renc_jpg_write_outcomes(struct renc_journal *j, const struct renc_journal_outcome *o,
                            size_t n);
int renc_jpg_header_intents(struct renc_journal *j, size_t n, const int64_t *rows,
                            const char *const *paths, const uint8_t *const *old_hdr,
                            const uint8_t *const *new_hdr, const size_t *len);
int renc_jpg_settle_intents(struct renc_journal *j,
                            int (*settle)(void *arg, const struct renc_journal_intent *in),
                            void (*settled)(void *arg, const struct renc_journal_intent *in,
                                            int out),
                            void *arg);
int renc_jpg_failures(struct renc_journal *j, size_t limit,
                      void (*fn)(void *arg, const char *path, const char *error, int code,
                                 const char *ref),
                      void *arg);

#endif
