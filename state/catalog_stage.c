/* state/catalog_stage.c — staged writes in the catalog (catalog.h, "staged
 * writes"; reencrypt/stage.h): begun, ready to rename, done or dropped, and
 * listed for a sweep after a crash. */
#include "state/catalog_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

/* ---- staged writes ---------------------------------------------------- */

int renc_catalog_stage_begin(struct renc_catalog *c, const char *env, const char *tag,
                             const char *op, const char *request)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "INSERT INTO stage(tag, env, op, started, state, request)"
                                      " VALUES (?, ?, ?, ?, 'writing', ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, renc_cat_now());
    sqlite3_bind_text(st, 5, request ? request : "", -1, SQLITE_STATIC);
    return renc_cat_step_done(st); /* one statement: its own transaction */
}

/* Runs sql, whose one parameter is tag; *changed (may be NULL) gets the
 * number of rows it changed. */
static int renc_stage_by_tag(struct renc_catalog *c, const char *sql, const char *tag,
                             int *changed)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    rc = renc_cat_step_done(st);
    if (rc == 0 && changed)
        *changed = sqlite3_changes(c->db);
    return rc;
}

/* Runs sql (parameters: tag, then n, then the texts) once. */
static int renc_stage_insert(struct renc_catalog *c, const char *sql, const char *tag,
                             int64_t n, const char *const *texts, int ntexts)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n);
    for (int i = 0; i < ntexts; i++)
        sqlite3_bind_text(st, 3 + i, texts[i] ? texts[i] : "", -1, SQLITE_STATIC);
    return renc_cat_step_done(st);
}

int renc_catalog_stage_ready(struct renc_catalog *c, const char *tag, const char *const *rels,
                             size_t count, const struct renc_stage_note *notes, size_t nnotes)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_begin(c);
    if (rc)
        return rc;
    rc = renc_cat_prepare(c, &st, "INSERT INTO stage_file(tag, n, rel) VALUES (?, ?, ?)");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        /* One statement for every row: thousands of files in one commit. */
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, rels[i], -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        rc = step == SQLITE_DONE ? 0 : renc_cat_rc(step);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; rc == 0 && i < nnotes; i++) {
        if (!notes[i].env)
            continue;
        const char *t[] = {notes[i].env, notes[i].action, notes[i].detail};
        rc = renc_stage_insert(c, "INSERT INTO stage_note(tag, n, env, action, detail)"
                                  " VALUES (?, ?, ?, ?, ?)", tag, (int64_t)i, t, 3);
    }
    int changed = 0;
    if (rc == 0)
        rc = renc_stage_by_tag(c, "UPDATE stage SET state = 'renaming'"
                                  " WHERE tag = ? AND state = 'writing'", tag, &changed);
    if (rc == 0 && changed != 1)
        rc = -RENC_E_CATALOG; /* the stage is not (or no longer) being written */
    return renc_cat_end(c, rc);
}

static int renc_stage_forget(struct renc_catalog *c, const char *tag)
{
    static const char *const sql[] = {
        "DELETE FROM stage_file WHERE tag = ?",
        "DELETE FROM stage_note WHERE tag = ?",
        "DELETE FROM stage WHERE tag = ?",
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = renc_stage_by_tag(c, sql[i], tag, NULL);
    return rc;
}

int renc_catalog_stage_done(struct renc_catalog *c, const char *tag, const char *note)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_begin(c);
    if (rc == 0)
        rc = renc_cat_prepare(c, &st, "SELECT env, action, detail FROM stage_note WHERE tag = ?"
                                  " ORDER BY n");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            char detail[1024];
            snprintf(detail, sizeof detail, "%s%s", renc_cat_col_text(st, 2), note ? note : "");
            /* The history's details are bounded (struct renc_env_event). */
            struct renc_env_event ev;
            renc_cat_copy_text(ev.detail, sizeof ev.detail, detail);
            rc = renc_cat_history_add(c, renc_cat_col_text(st, 0), renc_cat_col_text(st, 1),
                                      ev.detail, NULL);
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = renc_cat_rc(step);
        sqlite3_finalize(st);
    }
    if (rc == 0)
        rc = renc_stage_forget(c, tag);
    return renc_cat_end(c, rc);
}

int renc_catalog_stage_drop(struct renc_catalog *c, const char *tag)
{
    int rc = renc_cat_begin(c);
    if (rc == 0)
        rc = renc_stage_forget(c, tag);
    return renc_cat_end(c, rc);
}

static int renc_stage_row(void *out, sqlite3_stmt *st)
{
    struct renc_stage_rec *r = renc_cat_vec_push(out);
    RENC_RETURN_IF(!r, -RENC_E_NOMEM);
    memset(r, 0, sizeof *r);
    renc_cat_copy_text(r->tag, sizeof r->tag, renc_cat_col_text(st, 0));
    renc_cat_copy_text(r->env, sizeof r->env, renc_cat_col_text(st, 1));
    renc_cat_copy_text(r->op, sizeof r->op, renc_cat_col_text(st, 2));
    r->started = sqlite3_column_int64(st, 3);
    r->renaming = strcmp(renc_cat_col_text(st, 4), "renaming") == 0;
    r->request = renc_strdup(renc_cat_col_text(st, 5));
    return r->request ? 0 : -RENC_E_NOMEM;
}

static int renc_stage_files(struct renc_catalog *c, struct renc_stage_rec *r)
{
    struct renc_cat_vec rels = RENC_CAT_VEC_OF_STRINGS;
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "SELECT rel FROM stage_file WHERE tag = ? ORDER BY n");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, r->tag, -1, SQLITE_STATIC);
    int step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = renc_cat_strings_push(&rels, renc_cat_col_text(st, 0));
    if (rc == 0 && step != SQLITE_DONE)
        rc = renc_cat_rc(step);
    sqlite3_finalize(st);
    if (rc) {
        renc_cat_vec_free(&rels);
        return rc;
    }
    r->rels = rels.items;
    r->rel_count = rels.n;
    return 0;
}

int renc_catalog_stage_list(struct renc_catalog *c, const char *env,
                            struct renc_stage_rec **out, size_t *count)
{
    struct renc_cat_vec all = RENC_CAT_VEC_OF(struct renc_stage_rec);
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_exec(c, "BEGIN");
    if (rc)
        return rc;
    rc = renc_cat_prepare(c, &st, env ? "SELECT tag, env, op, started, state, request FROM stage"
                                        " WHERE env = ? ORDER BY started, tag"
                                      : "SELECT tag, env, op, started, state, request FROM stage"
                                        " ORDER BY started, tag");
    if (rc == 0) {
        if (env)
            sqlite3_bind_text(st, 1, env, -1, SQLITE_STATIC);
        rc = renc_cat_each_row(st, renc_stage_row, &all);
    }
    struct renc_stage_rec *recs = all.items;
    for (size_t i = 0; rc == 0 && i < all.n; i++)
        rc = recs[i].renaming ? renc_stage_files(c, &recs[i]) : 0;
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc) {
        renc_catalog_stage_free(recs, all.n);
        return rc;
    }
    *out = recs;
    *count = all.n;
    return 0;
}

void renc_catalog_stage_free(struct renc_stage_rec *recs, size_t count)
{
    for (size_t i = 0; recs && i < count; i++) {
        renc_free(recs[i].request);
        for (size_t k = 0; k < recs[i].rel_count; k++)
            renc_free(recs[i].rels[k]);
        renc_free(recs[i].rels);
    }
    renc_free(recs);
}
