/* state/journal_sqlite.h — the SQLite journal's object and the helpers its
 * two files share: journal_sqlite.c (the file, the run, its status) and
 * journal_sqlite_items.c (the blobs: the work list, claims, outcomes,
 * header intents).  The schema is in journal_sqlite.c and docs/JOURNAL.md.
 * Only state/ includes it. */
#ifndef RENC_STATE_JOURNAL_SQLITE_H
#define RENC_STATE_JOURNAL_SQLITE_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "state/journal_internal.h"

struct renc_journal_sqlite {
    struct renc_journal base; /* first: a struct renc_journal * is this */
    sqlite3 *db;
    pthread_mutex_t lock;     /* the connection */
    char path[4096];
    int lock_fd;
    int lock_created;         /* this process made PATH.lock (removed if the open fails) */
    int64_t attempt;
    /* Claims: the highest row claimed in this attempt.  One process holds
     * the run (the flock), so the claims of a SQLite journal need no row
     * of their own: a crash forgets them with the process. */
    int64_t claimed_to;
    struct renc_journal_owned params; /* what status last read */
};

static inline struct renc_journal_sqlite *renc_jsql(struct renc_journal *j)
{
    return (struct renc_journal_sqlite *)j;
}

/* SQLite's result codes in the project's terms. */
int renc_jsql_rc(int rc);
int renc_jsql_exec(struct renc_journal_sqlite *j, const char *sql);
int renc_jsql_prepare(struct renc_journal_sqlite *j, sqlite3_stmt **st, const char *sql);
/* Commits when rc is 0, else rolls back; returns the outcome. */
int renc_jsql_end(struct renc_journal_sqlite *j, int rc);
/* The time the journal records (Unix seconds, with a fraction). */
double renc_jsql_now(void);

/* The blobs (journal_sqlite_items.c); the ops of the same names. */
int renc_jsql_enlist(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                     uint8_t *finished);
int renc_jsql_list_begin(struct renc_journal *j, int *must);
int renc_jsql_enlist_part(struct renc_journal *j, const struct renc_scan *part);
int renc_jsql_list_end(struct renc_journal *j, int ok);
int renc_jsql_claim(struct renc_journal *j, size_t max, uint64_t max_bytes,
                    struct renc_journal_batch *out);
int renc_jsql_write_outcomes(struct renc_journal *j, const struct renc_journal_outcome *o,
                             size_t n);
int renc_jsql_header_intents(struct renc_journal *j, size_t n, const int64_t *rows,
                             const char *const *paths, const uint8_t *const *old_hdr,
                             const uint8_t *const *new_hdr, const size_t *len);
int renc_jsql_settle_intents(struct renc_journal *j,
                             int (*settle)(void *arg, const struct renc_journal_intent *in),
                             void (*settled)(void *arg, const struct renc_journal_intent *in,
                                             int out),
                             void *arg);
int renc_jsql_failures(struct renc_journal *j, size_t limit,
                       void (*fn)(void *arg, const char *path, const char *error, int code,
                                  const char *ref),
                       void *arg);

#endif
