/* state/journal_sqlite_items.c — the SQLite journal's blobs (journal.h's
 * table for a path): the work list, claims, the outcomes a flush writes,
 * header intents and their settling, and the failures.  Each change is one
 * BEGIN IMMEDIATE transaction, durable when COMMIT returns
 * (synchronous=FULL, journal_sqlite.c). */
#include "state/journal_sqlite.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"

/* Marks finished[i] 2 for each scanned blob held by an intent recovery
 * could not settle: the run must not touch it until someone looks (its
 * intent says how). */
static int renc_jsql_mark_held(struct renc_journal_sqlite *j, const struct renc_scan *scan,
                               const int64_t *rows, uint8_t *finished)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "SELECT blob_id FROM header_intents");
    if (rc)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t held = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < scan->count; i++)
            if (rows[i] == held)
                finished[i] = 2;
    }
    if (step != SQLITE_DONE)
        rc = renc_jsql_rc(step);
    sqlite3_finalize(st);
    return rc;
}

/* Enters each blob of scan (pending when new; a known blob keeps its
 * state, and is seen), inside the caller's transaction; rows[i] and
 * finished[i] (both may be NULL) as renc_journal_register says. */
static int renc_jsql_enter(struct renc_journal_sqlite *j, const struct renc_scan *scan,
                           int64_t *rows, uint8_t *finished)
{
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st,
                               "INSERT INTO blobs(path, size, etag) VALUES (?, ?, ?)"
                               " ON CONFLICT(path) DO UPDATE SET seen = 1,"
                               "  size = CASE WHEN state IN ('pending', 'failed', 'gone')"
                               "         THEN excluded.size ELSE size END,"
                               "  etag = CASE WHEN state IN ('pending', 'failed', 'gone')"
                               "         THEN excluded.etag ELSE etag END,"
                               "  state = CASE WHEN state = 'gone' THEN 'pending' ELSE state END"
                               " RETURNING id, state");
    for (size_t i = 0; rc == 0 && i < scan->count; i++) {
        char abs[4096];
        if ((rc = renc_journal_abs_path(cwd, scan->items[i].path, abs, sizeof abs)))
            break;
        sqlite3_bind_text(st, 1, abs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)scan->items[i].size);
        sqlite3_bind_text(st, 3, scan->items[i].etag, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW && rows) {
            rows[i] = sqlite3_column_int64(st, 0);
            enum renc_jstate s =
                renc_journal_state_parse((const char *)sqlite3_column_text(st, 1));
            finished[i] = s == RENC_J_DONE || s == RENC_J_SKIPPED || s == RENC_J_NOT_RENC;
        }
        if (step == SQLITE_ROW)
            step = sqlite3_step(st);
        if (step != SQLITE_DONE)
            rc = renc_jsql_rc(step);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int renc_jsql_enlist(struct renc_journal *base, const struct renc_scan *scan, int64_t *rows,
                     uint8_t *finished)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE; UPDATE blobs SET seen = 0;");
    if (rc == 0)
        rc = renc_jsql_enter(j, scan, rows, finished);
    if (rc == 0)
        rc = renc_jsql_mark_held(j, scan, rows, finished);
    if (rc == 0)
        rc = renc_jsql_exec(j, "UPDATE blobs SET state = 'gone' WHERE seen = 0 AND "
                               "state IN ('pending', 'failed'); COMMIT;");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- a named run, listed in parts ---------------------------------------
 *
 * The run's flock keeps every other process out, so the listing lock is
 * the run's own: a named run is listed by whichever attempt finds it
 * unlisted (run.listed 0: new, or its last listing was cut short); an
 * unnamed one by every attempt. */

int renc_jsql_list_begin(struct renc_journal *base, int *must)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    /* An unnamed run (one too long to hold) is listed again at each
     * attempt, as a run that holds its list is. */
    int rc = renc_jsql_prepare(j, &st, "SELECT listed = 0 OR name = '' FROM run WHERE id = 1");
    if (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *must = sqlite3_column_int(st, 0) != 0;
        else
            rc = step == SQLITE_DONE ? -RENC_E_BAD_JOURNAL : renc_jsql_rc(step);
    }
    sqlite3_finalize(st);
    /* Every blob unseen until a part enters it again: what the listing
     * does not find becomes gone at its end. */
    if (rc == 0 && *must)
        rc = renc_jsql_exec(j, "UPDATE blobs SET seen = 0");
    pthread_mutex_unlock(&j->lock);
    return rc;
}

int renc_jsql_enlist_part(struct renc_journal *base, const struct renc_scan *part)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = renc_jsql_end(j, renc_jsql_enter(j, part, NULL, NULL));
    pthread_mutex_unlock(&j->lock);
    return rc;
}

int renc_jsql_list_end(struct renc_journal *base, int ok)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    if (!ok)
        return 0; /* unlisted: the next attempt lists it again */
    pthread_mutex_lock(&j->lock);
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE;"
                               " UPDATE blobs SET state = 'gone' WHERE seen = 0 AND"
                               "  state IN ('pending', 'failed');"
                               " UPDATE run SET listed = 1, updated = (julianday('now') - 2440587.5) * 86400.0;"
                               " COMMIT;");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* Appends one claimed row to out, which has room for it. */
static int renc_jsql_claim_row(sqlite3_stmt *st, struct renc_journal_batch *out)
{
    const unsigned char *path = sqlite3_column_text(st, 1);
    struct renc_journal_item *it = &out->items[out->count];
    it->row = sqlite3_column_int64(st, 0);
    it->size = (uint64_t)sqlite3_column_int64(st, 2);
    const unsigned char *etag = sqlite3_column_text(st, 3);
    it->path = renc_strdup(path ? (const char *)path : "");
    it->etag = etag ? renc_strdup((const char *)etag) : NULL;
    RENC_RETURN_IF(!it->path || (etag && !it->etag), -RENC_E_NOMEM);
    out->count++;
    return 0;
}

/* The claim is this process's: the run's flock keeps every other process
 * out, so a cursor over the rows is the whole of it (no lease to renew). */
int renc_jsql_claim(struct renc_journal *base, size_t max, uint64_t max_bytes,
                    struct renc_journal_batch *out)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    out->items = renc_calloc(max, sizeof *out->items);
    RENC_RETURN_IF(!out->items, -RENC_E_NOMEM);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st,
                               "SELECT id, path, size, etag FROM blobs WHERE id > ?"
                               " AND state IN ('pending', 'failed')"
                               " AND id NOT IN (SELECT blob_id FROM header_intents)"
                               " ORDER BY id LIMIT ?");
    int step = SQLITE_DONE;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, j->claimed_to);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
        uint64_t bytes = 0;
        while (rc == 0 && (!max_bytes || !out->count || bytes < max_bytes) &&
               (step = sqlite3_step(st)) == SQLITE_ROW) {
            rc = renc_jsql_claim_row(st, out);
            bytes += rc == 0 ? out->items[out->count - 1].size : 0;
        }
        if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
            rc = renc_jsql_rc(step);
    }
    sqlite3_finalize(st);
    if (rc == 0 && out->count)
        j->claimed_to = out->items[out->count - 1].row;
    pthread_mutex_unlock(&j->lock);
    if (rc)
        renc_journal_batch_cleanup(out);
    return rc;
}

/* Writes one outcome with the statements write_outcomes prepared. */
static int renc_jsql_write_one(const struct renc_journal_outcome *n, sqlite3_stmt *up,
                               sqlite3_stmt *del, double now)
{
    sqlite3_bind_text(up, 1, renc_journal_state_name(n->state), -1, SQLITE_STATIC);
    if (n->rc) {
        sqlite3_bind_int(up, 2, -n->rc);
        sqlite3_bind_text(up, 3, renc_strerror(n->rc), -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(up, 2);
        sqlite3_bind_null(up, 3);
    }
    sqlite3_bind_text(up, 4, n->old_ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 5, n->new_ref, -1, SQLITE_STATIC);
    sqlite3_bind_double(up, 6, now);
    sqlite3_bind_int64(up, 7, n->row);
    int rc = renc_jsql_rc(sqlite3_step(up));
    sqlite3_reset(up);
    if (rc == 0 && (n->state == RENC_J_DONE || n->rc == -RENC_E_CHANGED)) {
        /* Its new header is durable, or the blob was found replaced
         * before anything was written: the intent has done its work. */
        sqlite3_bind_int64(del, 1, n->row);
        rc = renc_jsql_rc(sqlite3_step(del));
        sqlite3_reset(del);
    }
    return rc;
}

int renc_jsql_write_outcomes(struct renc_journal *base, const struct renc_journal_outcome *o,
                             size_t n)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    int rc = renc_fault_check("journal");
    double now = renc_jsql_now();
    sqlite3_stmt *up = NULL, *del = NULL, *run = NULL;
    if (rc == 0)
        rc = renc_jsql_exec(j, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &up, "UPDATE blobs SET state = ?, code = ?, error = ?,"
                                       " old_ref = coalesce(?, old_ref), new_ref = ?,"
                                       " tries = tries + 1, finished = ? WHERE id = ?");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &del, "DELETE FROM header_intents WHERE blob_id = ?");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &run, "UPDATE run SET updated = ? WHERE id = 1");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = renc_jsql_write_one(&o[i], up, del, now);
    if (rc == 0) {
        sqlite3_bind_double(run, 1, now);
        rc = renc_jsql_rc(sqlite3_step(run));
    }
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    sqlite3_finalize(run);
    rc = renc_jsql_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

int renc_jsql_header_intents(struct renc_journal *base, size_t n, const int64_t *rows,
                             const char *const *paths, const uint8_t *const *old_hdr,
                             const uint8_t *const *new_hdr, const size_t *len)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    /* Absolute: a resume may start from another directory. */
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    pthread_mutex_lock(&j->lock);
    double now = renc_jsql_now();
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &st, "INSERT OR REPLACE INTO header_intents(blob_id, path,"
                                       " old_header, new_header, created)"
                                       " VALUES (?, ?, ?, ?, ?)");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char abs[4096];
        if ((rc = renc_journal_abs_path(cwd, paths[i], abs, sizeof abs)))
            break;
        sqlite3_bind_int64(st, 1, rows[i]);
        sqlite3_bind_text(st, 2, abs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 3, old_hdr[i], (int)len[i], SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, new_hdr[i], (int)len[i], SQLITE_STATIC);
        sqlite3_bind_double(st, 5, now);
        rc = renc_jsql_rc(sqlite3_step(st));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    /* synchronous=FULL: durable when COMMIT returns. */
    if (rc == 0)
        rc = renc_fault_check("journal");
    rc = renc_jsql_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- settling intents --------------------------------------------------- */

/* The statements that record one settled intent. */
struct renc_jsql_settle_stmts {
    sqlite3_stmt *fin, *del, *rec;
};

/* Records intent in's outcome out in one transaction: the blob's state,
 * the settled record and the intent's removal together (an error leaves
 * the intent open and the blob failed). */
static int renc_jsql_record_settled(struct renc_journal_sqlite *j,
                                    const struct renc_jsql_settle_stmts *s,
                                    const struct renc_journal_intent *in, int out)
{
    double now = renc_jsql_now();
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_bind_text(s->fin, 1, renc_journal_state_name(renc_journal_settled_state(out)), -1,
                      SQLITE_STATIC);
    if (out < 0) {
        sqlite3_bind_int(s->fin, 2, -out);
        sqlite3_bind_text(s->fin, 3, renc_strerror(out), -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(s->fin, 2);
        sqlite3_bind_null(s->fin, 3);
    }
    sqlite3_bind_double(s->fin, 4, now);
    sqlite3_bind_int64(s->fin, 5, in->row);
    rc = renc_jsql_rc(sqlite3_step(s->fin));
    sqlite3_reset(s->fin);
    if (rc == 0 && out >= 0) {
        sqlite3_bind_int64(s->rec, 1, in->row);
        sqlite3_bind_text(s->rec, 2, in->path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s->rec, 3, renc_settle_name((enum renc_settle)out), -1,
                          SQLITE_STATIC);
        sqlite3_bind_double(s->rec, 4, now);
        rc = renc_jsql_rc(sqlite3_step(s->rec));
        sqlite3_reset(s->rec);
    }
    if (rc == 0 && out >= 0) {
        sqlite3_bind_int64(s->del, 1, in->row);
        rc = renc_jsql_rc(sqlite3_step(s->del));
        sqlite3_reset(s->del);
    }
    return renc_jsql_end(j, rc);
}

/* Reads the intent at sel's row into *in (borrowed from sel until its next
 * step). */
static int renc_jsql_intent_row(sqlite3_stmt *sel, struct renc_journal_intent *in)
{
    in->row = sqlite3_column_int64(sel, 0);
    in->path = (const char *)sqlite3_column_text(sel, 1);
    in->old_hdr = sqlite3_column_blob(sel, 2);
    int len = sqlite3_column_bytes(sel, 2);
    in->new_hdr = sqlite3_column_blob(sel, 3);
    if (len <= 0 || sqlite3_column_bytes(sel, 3) != len || !in->path)
        return -RENC_E_BAD_JOURNAL;
    in->len = (size_t)len;
    return 0;
}

int renc_jsql_settle_intents(struct renc_journal *base,
                             int (*settle)(void *arg, const struct renc_journal_intent *in),
                             void (*settled)(void *arg, const struct renc_journal_intent *in,
                                             int out),
                             void *arg)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *sel = NULL;
    struct renc_jsql_settle_stmts s = {NULL, NULL, NULL};
    /* The blob's own row has its absolute path (intents written before
     * they held one may be relative to the crashed run's directory). */
    int rc = renc_jsql_prepare(j, &sel, "SELECT i.blob_id, coalesce(b.path, i.path),"
                                        " i.old_header, i.new_header FROM header_intents i"
                                        " LEFT JOIN blobs b ON b.id = i.blob_id"
                                        " ORDER BY i.blob_id");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &s.fin, "UPDATE blobs SET state = ?, code = ?, error = ?,"
                                          " finished = ? WHERE id = ?");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &s.del, "DELETE FROM header_intents WHERE blob_id = ?");
    if (rc == 0)
        rc = renc_jsql_prepare(j, &s.rec, "INSERT OR REPLACE INTO header_settled(blob_id,"
                                          " path, outcome, settled) VALUES (?, ?, ?, ?)");
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        struct renc_journal_intent in;
        if ((rc = renc_jsql_intent_row(sel, &in)))
            break;
        int out = settle(arg, &in);
        if ((rc = renc_jsql_record_settled(j, &s, &in, out)))
            break;
        settled(arg, &in, out);
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = renc_jsql_rc(step);
    sqlite3_finalize(sel);
    sqlite3_finalize(s.fin);
    sqlite3_finalize(s.del);
    sqlite3_finalize(s.rec);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- the failures ------------------------------------------------------- */

int renc_jsql_failures(struct renc_journal *base, size_t limit,
                       void (*fn)(void *arg, const char *path, const char *error, int code,
                                  const char *ref),
                       void *arg)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "SELECT path, coalesce(error, ''), coalesce(code, 0),"
                                       " old_ref FROM blobs WHERE state = 'failed'"
                                       " ORDER BY path LIMIT ?");
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            fn(arg, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2),
               (const char *)sqlite3_column_text(st, 3));
        if (step != SQLITE_DONE)
            rc = renc_jsql_rc(step);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}
