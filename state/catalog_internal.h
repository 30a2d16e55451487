/* state/catalog_internal.h — what the catalog's files share: the
 * connection, the SQL helpers and the arrays calls gather rows in.
 *
 *   catalog.c        the schema, open and close, the helpers, settings
 *   catalog_env.c    environments: policies, locks, runs, history, keys
 *   catalog_stage.c  staged writes
 *
 * Only state/ includes it. */
#ifndef RENC_STATE_CATALOG_INTERNAL_H
#define RENC_STATE_CATALOG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "state/catalog.h"

struct renc_catalog {
    sqlite3 *db;
    char path[4096];
};

/* The time the catalog records (Unix seconds). */
int64_t renc_cat_now(void);

/* SQLite's result codes in the project's terms. */
int renc_cat_rc(int rc);
int renc_cat_exec(struct renc_catalog *c, const char *sql);
int renc_cat_prepare(struct renc_catalog *c, sqlite3_stmt **st, const char *sql);
/* Runs a statement that returns no row; finalizes it. */
int renc_cat_step_done(sqlite3_stmt *st);
/* The first column of a one-row query as an integer (-1 when no row). */
int renc_cat_query_int(struct renc_catalog *c, const char *sql, int64_t *out);
/* A text column, "" for NULL. */
const char *renc_cat_col_text(sqlite3_stmt *st, int col);
/* Copies s into out[max], cut at a UTF-8 character boundary when long. */
void renc_cat_copy_text(char *out, size_t max, const char *s);

/* A write transaction: renc_cat_begin takes the write lock at once;
 * renc_cat_end commits when rc is 0, else rolls back, and returns the
 * outcome. */
int renc_cat_begin(struct renc_catalog *c);
int renc_cat_end(struct renc_catalog *c, int rc);

/* catalog_env.c: a history row (*n, may be NULL, gets its number), and
 * whether environment id exists (-RENC_E_ENV_NOT_FOUND when not). */
int renc_cat_history_add(struct renc_catalog *c, const char *id, const char *action,
                         const char *detail, int64_t *n);
int renc_cat_env_exists(struct renc_catalog *c, const char *id);

/* ---- arrays of rows --------------------------------------------------- */

/* A growing array of item_size-byte items, in which the calls that return
 * arrays gather their rows.  With strings set the items are char *, each
 * its own allocation. */
struct renc_cat_vec {
    void *items;
    size_t n, cap;
    size_t item_size;
    int strings;
};

#define RENC_CAT_VEC_OF(type) {NULL, 0, 0, sizeof(type), 0}
#define RENC_CAT_VEC_OF_STRINGS {NULL, 0, 0, sizeof(char *), 1}

void *renc_cat_vec_push(struct renc_cat_vec *v);
int renc_cat_strings_push(struct renc_cat_vec *v, const char *s);
void renc_cat_vec_free(struct renc_cat_vec *v);
/* Steps st through its rows, handing each to row(arg, st), then finalizes
 * it; returns the first failure, row's or SQLite's. */
int renc_cat_each_row(sqlite3_stmt *st, int (*row)(void *arg, sqlite3_stmt *st), void *arg);
/* The rows of sql, made items by row, in one read transaction (id: sql's
 * one parameter, an environment that must exist; NULL: none). */
int renc_cat_read_rows(struct renc_catalog *c, const char *sql, const char *id,
                       int (*row)(void *out, sqlite3_stmt *st), struct renc_cat_vec *out);

#endif
