/* state/journal_pg_items.c — the PostgreSQL journal's blobs: the work list
 * (entered once per run, under the run's advisory lock), claims under
 * leases (FOR UPDATE SKIP LOCKED: concurrent workers skip each other's rows
 * instead of waiting), the outcomes a flush writes, header intents and
 * their settling, the failures.  Each change is one transaction. */
#include "state/journal_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (buf))

/* A PostgreSQL array literal built up element by element ("{1,NULL,"a\"b"}"):
 * a flush sends its notes as a few arrays, one round trip for the batch. */
struct renc_jpg_arr {
    char *buf;
    size_t len, cap;
    int rc;
};

/* Room for more bytes; a->rc says when there is none. */
static void renc_jpg_arr_room(struct renc_jpg_arr *a, size_t more)
{
    if (a->rc || a->len + more <= a->cap)
        return;
    size_t cap = (a->len + more) * 2 > 256 ? (a->len + more) * 2 : 256;
    char *b = renc_realloc(a->buf, cap);
    if (!b) {
        a->rc = -RENC_E_NOMEM;
        return;
    }
    a->buf = b;
    a->cap = cap;
}

static void renc_jpg_arr_put(struct renc_jpg_arr *a, const char *text, int quote)
{
    renc_jpg_arr_room(a, 2 * strlen(text) + 4);
    if (a->rc)
        return;
    char sep = a->len ? ',' : '{';
    a->buf[a->len++] = sep;
    if (quote)
        a->buf[a->len++] = '"';
    for (const char *p = text; *p; p++) {
        if (quote && (*p == '"' || *p == '\\'))
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = *p;
    }
    if (quote)
        a->buf[a->len++] = '"';
}

/* text NULL is SQL NULL. */
static void renc_jpg_arr_text(struct renc_jpg_arr *a, const char *text)
{
    renc_jpg_arr_put(a, text ? text : "NULL", text != NULL);
}

/* The literal closed: "{}" when empty. */
static const char *renc_jpg_arr_done(struct renc_jpg_arr *a)
{
    renc_jpg_arr_room(a, 3);
    if (a->rc)
        return NULL;
    if (a->len == 0)
        a->buf[a->len++] = '{';
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return a->buf;
}

/* A chunk of the listing entered per statement: one round trip for many
 * blobs (10 million would take hours one by one). */
#define RENC_PG_ENLIST_CHUNK 2000

struct renc_jpg_chunk {
    char **abs;        /* absolute paths, in scan order */
    size_t *order;     /* indices into abs, sorted by path: to find a returned row */
    size_t n;
};

static int renc_jpg_order_cmp(const void *a, const void *b, void *abs)
{
    char *const *p = abs;
    return strcmp(p[*(const size_t *)a], p[*(const size_t *)b]);
}

/* Which entry of the chunk path is (by bsearch over order), or -1. */
static long renc_jpg_chunk_find(const struct renc_jpg_chunk *c, const char *path)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(c->abs[c->order[mid]], path);
        if (d == 0)
            return (long)c->order[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Enters c's blobs (sizes from items) and gives each its row and whether an
 * earlier attempt finished it. */
static int renc_jpg_enlist_chunk(struct renc_journal_pg *j, const struct renc_jpg_chunk *c,
                                 const struct renc_scan_item *items, int64_t *rows,
                                 uint8_t *finished)
{
    struct renc_jpg_arr pa, sa;
    memset(&pa, 0, sizeof pa);
    memset(&sa, 0, sizeof sa);
    for (size_t i = 0; i < c->n; i++) {
        char sz[24];
        renc_jpg_arr_text(&pa, c->abs[i]);
        renc_jpg_arr_put(&sa, I64(sz, items[i].size), 0);
    }
    const char *v[] = {j->run, renc_jpg_arr_done(&pa), renc_jpg_arr_done(&sa)};
    PGresult *r = NULL;
    int rc = v[1] && v[2] ? 0 : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_jpg_query(j, &r,
                            "INSERT INTO blobs(run, path, size) SELECT $1, p, s FROM"
                            " unnest($2::text[], $3::bigint[]) AS t(p, s)"
                            " ON CONFLICT (run, path) DO UPDATE SET seen = 1,"
                            "  size = CASE WHEN blobs.state IN ('pending', 'failed', 'gone')"
                            "         THEN excluded.size ELSE blobs.size END,"
                            "  state = CASE WHEN blobs.state = 'gone' THEN 'pending'"
                            "          ELSE blobs.state END"
                            " RETURNING id, state, path", 3, v);
    for (int k = 0; rc == 0 && k < PQntuples(r); k++) {
        long i = renc_jpg_chunk_find(c, PQgetvalue(r, k, 2));
        if (i < 0) {
            rc = -RENC_E_JOURNAL;
            break;
        }
        rows[i] = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        enum renc_jstate st = renc_journal_state_parse(PQgetvalue(r, k, 1));
        finished[i] = st == RENC_J_DONE || st == RENC_J_SKIPPED || st == RENC_J_NOT_RENC;
    }
    if (rc == 0 && PQntuples(r) != (int)c->n)
        rc = -RENC_E_JOURNAL; /* a path listed twice, or lost */
    PQclear(r);
    renc_free(pa.buf);
    renc_free(sa.buf);
    return rc;
}

/* The listing's items [from, from + n) entered, as one chunk. */
static int renc_jpg_enlist_span(struct renc_journal_pg *j, const char *cwd,
                                const struct renc_scan *scan, size_t from, size_t n,
                                int64_t *rows, uint8_t *finished)
{
    struct renc_jpg_chunk c = {.abs = renc_calloc(n, sizeof *c.abs),
                               .order = renc_calloc(n, sizeof *c.order), .n = n};
    int rc = c.abs && c.order ? 0 : -RENC_E_NOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char abs[4096];
        if ((rc = renc_journal_abs_path(cwd, scan->items[from + i].path, abs, sizeof abs)) == 0)
            rc = (c.abs[i] = renc_strdup(abs)) ? 0 : -RENC_E_NOMEM;
        c.order[i] = i;
    }
    if (rc == 0) {
        qsort_r(c.order, n, sizeof *c.order, renc_jpg_order_cmp, c.abs);
        rc = renc_jpg_enlist_chunk(j, &c, scan->items + from, rows + from, finished + from);
    }
    for (size_t i = 0; c.abs && i < n; i++)
        renc_free(c.abs[i]);
    renc_free(c.abs);
    renc_free(c.order);
    return rc;
}

/* finished[i] = 2 for each blob an unsettled intent holds. */
static int renc_jpg_mark_held(struct renc_journal_pg *j, const struct renc_scan *scan,
                              const int64_t *rows, uint8_t *finished)
{
    const char *run[] = {j->run};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r, "SELECT blob_id FROM header_intents WHERE run = $1", 1, run);
    for (int k = 0; rc == 0 && k < PQntuples(r); k++) {
        int64_t held = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        for (size_t i = 0; i < scan->count; i++)
            if (rows[i] == held)
                finished[i] = 2;
    }
    PQclear(r);
    return rc;
}

int renc_jpg_enlist(struct renc_journal *base, const struct renc_scan *scan, int64_t *rows,
                    uint8_t *finished)
{
    struct renc_journal_pg *j = renc_jpg(base);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    pthread_mutex_lock(&j->lock);
    const char *run[] = {j->run};
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, run);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET seen = 0 WHERE run = $1", 1, run);
    for (size_t i = 0; rc == 0 && i < scan->count; i += RENC_PG_ENLIST_CHUNK) {
        size_t n = scan->count - i < RENC_PG_ENLIST_CHUNK ? scan->count - i
                                                          : RENC_PG_ENLIST_CHUNK;
        rc = renc_jpg_enlist_span(j, cwd, scan, i, n, rows, finished);
    }
    if (rc == 0)
        rc = renc_jpg_mark_held(j, scan, rows, finished);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET state = 'gone' WHERE run = $1 AND"
                                     " seen = 0 AND state IN ('pending', 'failed')", 1, run);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE runs SET listed = true WHERE name = $1", 1, run);
    rc = renc_jpg_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static int renc_jpg_row_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct renc_journal_item *)a)->row;
    int64_t y = ((const struct renc_journal_item *)b)->row;
    return (x > y) - (x < y);
}

/* Pending blobs, and failed ones that failed before this worker started
 * (each worker retries a failure once, as each SQLite attempt retries
 * failures once), not under another's live lease, not claimed by this
 * worker already, not held by an intent; of those locked, the ones that
 * start within max_bytes (a window over the locked rows: the rows left
 * out are unlocked when the statement ends).  $4 appears in the pending
 * form too so that both take the same parameters. */
#define RENC_JPG_CLAIM(which)                                                              \
    "WITH c AS (SELECT b.id, b.size FROM blobs b WHERE b.run = $1 AND " which              \
    "  AND (b.lease_until IS NULL OR b.lease_until < " RENC_PG_NOW ")"                     \
    "  AND b.claimed_by IS DISTINCT FROM $2::bigint"                                       \
    "  AND NOT EXISTS (SELECT 1 FROM header_intents i WHERE i.blob_id = b.id)"             \
    "  ORDER BY b.id LIMIT $3::bigint FOR UPDATE SKIP LOCKED),"                            \
    " w AS (SELECT id, sum(size) OVER (ORDER BY id) - size AS before FROM c)"              \
    " UPDATE blobs SET claimed_by = $2::bigint, lease_until = " RENC_PG_NOW " + $5::float8" \
    " FROM w WHERE blobs.id = w.id AND ($6::bigint = 0 OR w.before < $6::bigint)"          \
    " RETURNING blobs.id, blobs.path, blobs.size, blobs.lease_until, blobs.etag"

/* Pending blobs first, then failures: each alone walks the (run, state,
 * id) index in order and stops at the limit, where one condition with an
 * OR of both had the server sort every pending row at each claim (a
 * million-blob run slowed as the square of its size). */
static const char *const renc_jpg_claim_sql[2] = {
    RENC_JPG_CLAIM("b.state = 'pending' AND $4::float8 IS NOT NULL"),
    RENC_JPG_CLAIM("b.state = 'failed' AND b.finished < $4::float8"),
};

/* Row k of a claim's result appended to out. */
static int renc_jpg_claim_row(PGresult *r, int k, struct renc_journal_batch *out)
{
    struct renc_journal_item *it = &out->items[out->count];
    it->row = strtoll(PQgetvalue(r, k, 0), NULL, 10);
    it->size = strtoull(PQgetvalue(r, k, 2), NULL, 10);
    out->lease_until = strtod(PQgetvalue(r, k, 3), NULL);
    it->path = renc_strdup(PQgetvalue(r, k, 1));
    if (!PQgetisnull(r, k, 4) && PQgetvalue(r, k, 4)[0])
        it->etag = renc_strdup(PQgetvalue(r, k, 4));
    if (!it->path || (!PQgetisnull(r, k, 4) && PQgetvalue(r, k, 4)[0] && !it->etag)) {
        renc_free(it->path);
        renc_free(it->etag);
        return -RENC_E_NOMEM;
    }
    out->count++;
    return 0;
}

int renc_jpg_claim(struct renc_journal *base, size_t max, uint64_t max_bytes,
                   struct renc_journal_batch *out)
{
    struct renc_journal_pg *j = renc_jpg(base);
    out->items = renc_calloc(max ? max : 1, sizeof *out->items);
    RENC_RETURN_IF(!out->items, -RENC_E_NOMEM);
    char w[24], m[24], started[40], lease[24], mb[24];
    snprintf(started, sizeof started, "%.6f", j->worker_started);
    snprintf(lease, sizeof lease, "%.0f", j->lease_s);
    pthread_mutex_lock(&j->lock);
    const char *v[] = {j->run, I64(w, j->worker), I64(m, max), started, lease,
                       I64(mb, max_bytes)};
    int rc = 0;
    for (int q = 0; rc == 0 && q < 2 && out->count == 0; q++) {
        PGresult *r = NULL;
        rc = renc_jpg_query(j, &r, renc_jpg_claim_sql[q], 6, v);
        for (int k = 0; rc == 0 && k < PQntuples(r); k++)
            rc = renc_jpg_claim_row(r, k, out);
        PQclear(r);
    }
    pthread_mutex_unlock(&j->lock);
    if (rc || out->count == 0)
        renc_journal_batch_cleanup(out); /* an empty batch holds nothing */
    else if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, renc_jpg_row_cmp);
    return rc;
}

/* Part of a shared run's listing, one statement: new blobs pending, known
 * ones seen (sizes and versions of those still to do as listed now). */
int renc_jpg_enlist_part(struct renc_journal *base, const struct renc_scan *part)
{
    struct renc_journal_pg *j = renc_jpg(base);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    struct renc_jpg_arr pa, sa, ea;
    memset(&pa, 0, sizeof pa);
    memset(&sa, 0, sizeof sa);
    memset(&ea, 0, sizeof ea);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < part->count; i++) {
        char abs[4096], sz[24];
        const struct renc_scan_item *it = &part->items[i];
        if ((rc = renc_journal_abs_path(cwd, it->path, abs, sizeof abs)))
            break;
        renc_jpg_arr_text(&pa, abs);
        renc_jpg_arr_put(&sa, I64(sz, it->size), 0);
        renc_jpg_arr_text(&ea, it->etag && it->etag[0] ? it->etag : NULL);
    }
    const char *v[] = {j->run, renc_jpg_arr_done(&pa), renc_jpg_arr_done(&sa),
                       renc_jpg_arr_done(&ea)};
    if (rc == 0 && (!v[1] || !v[2] || !v[3]))
        rc = -RENC_E_NOMEM;
    pthread_mutex_lock(&j->lock);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL,
                            "INSERT INTO blobs(run, path, size, etag) SELECT $1, p, s, e FROM"
                            " unnest($2::text[], $3::bigint[], $4::text[]) AS t(p, s, e)"
                            " ON CONFLICT (run, path) DO UPDATE SET seen = 1,"
                            "  size = CASE WHEN blobs.state IN ('pending', 'failed', 'gone')"
                            "         THEN excluded.size ELSE blobs.size END,"
                            "  etag = CASE WHEN blobs.state IN ('pending', 'failed', 'gone')"
                            "         THEN excluded.etag ELSE blobs.etag END,"
                            "  state = CASE WHEN blobs.state = 'gone' THEN 'pending'"
                            "          ELSE blobs.state END", 4, v);
    pthread_mutex_unlock(&j->lock);
    renc_free(pa.buf);
    renc_free(sa.buf);
    renc_free(ea.buf);
    return rc;
}

/* The batch's notes as arrays: ids, states, codes, errors, old and new
 * refs, and the ids whose intent is done with (done, or found changed). */
static int renc_jpg_note_arrays(const struct renc_journal_outcome *o, size_t n,
                                struct renc_jpg_arr a[7])
{
    for (size_t i = 0; i < n; i++) {
        char id[24], code[16];
        snprintf(id, sizeof id, "%lld", (long long)o[i].row);
        snprintf(code, sizeof code, "%d", -o[i].rc);
        renc_jpg_arr_put(&a[0], id, 0);
        renc_jpg_arr_text(&a[1], renc_journal_state_name(o[i].state));
        renc_jpg_arr_text(&a[2], o[i].rc ? code : NULL);
        renc_jpg_arr_text(&a[3], o[i].rc ? renc_strerror(o[i].rc) : NULL);
        renc_jpg_arr_text(&a[4], o[i].old_ref);
        renc_jpg_arr_text(&a[5], o[i].new_ref);
        if (o[i].state == RENC_J_DONE || o[i].rc == -RENC_E_CHANGED)
            renc_jpg_arr_put(&a[6], id, 0);
    }
    for (int k = 0; k < 7; k++)
        if (!renc_jpg_arr_done(&a[k]))
            return -RENC_E_NOMEM;
    return 0;
}

/* The notes in one UPDATE over unnest()ed arrays, their intents removed.
 * A note counts only while this worker still holds the blob's claim (or
 * nobody does and the blob is not finished: a blob registered without a
 * claim): a worker frozen past its lease, whose blobs another worker
 * claimed and finished, cannot overwrite their notes nor remove that
 * worker's header intents when it wakes. */
static int renc_jpg_write_batch(struct renc_journal_pg *j, const struct renc_journal_outcome *o,
                                size_t n)
{
    struct renc_jpg_arr a[7];
    memset(a, 0, sizeof a);
    int rc = renc_jpg_note_arrays(o, n, a);
    char w[24];
    const char *v[8];
    for (int k = 0; k < 7; k++)
        v[k] = a[k].buf;
    v[7] = I64(w, j->worker);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL,
                            "WITH upd AS (UPDATE blobs b SET state = v.state, code = v.code,"
                            " error = v.error, old_ref = coalesce(v.old_ref, b.old_ref),"
                            " new_ref = v.new_ref, tries = b.tries + 1,"
                            " finished = " RENC_PG_NOW ", claimed_by = NULL, lease_until = NULL"
                            " FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[],"
                            "  $5::text[], $6::text[]) AS v(id, state, code, error, old_ref,"
                            "  new_ref) WHERE b.id = v.id AND (b.claimed_by = $8::bigint OR"
                            "  (b.claimed_by IS NULL AND b.state IN ('pending', 'failed')))"
                            " RETURNING b.id)"
                            " DELETE FROM header_intents WHERE blob_id = ANY($7::bigint[])"
                            " AND blob_id IN (SELECT id FROM upd)", 8, v);
    for (int k = 0; k < 7; k++)
        renc_free(a[k].buf);
    return rc;
}

int renc_jpg_write_outcomes(struct renc_journal *base, const struct renc_journal_outcome *o,
                            size_t n)
{
    struct renc_journal_pg *j = renc_jpg(base);
    pthread_mutex_lock(&j->lock);
    uint64_t done = 0, failed = 0;
    int rc = renc_fault_check("journal");
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc == 0 && n)
        rc = renc_jpg_write_batch(j, o, n);
    for (size_t i = 0; i < n; i++) {
        done += o[i].state != RENC_J_FAILED;
        failed += o[i].state == RENC_J_FAILED;
    }
    char w[24], d[24], f[24];
    const char *v[] = {I64(w, j->worker), I64(d, done), I64(f, failed), j->run};
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE workers SET done = done + $2::bigint, failed ="
                                     " failed + $3::bigint, heartbeat = " RENC_PG_NOW
                                     " WHERE id = $1::bigint", 3, v);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE runs SET updated = " RENC_PG_NOW
                                     " WHERE name = $1", 1, v + 3);
    rc = renc_jpg_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* One intent upserted; the headers go as binary parameters. */
static int renc_jpg_intent_one(struct renc_journal_pg *j, int64_t row, const char *abs,
                               const uint8_t *old_hdr, const uint8_t *new_hdr, size_t len)
{
    char r[24];
    const char *v[] = {I64(r, row), j->run, abs, (const char *)old_hdr, (const char *)new_hdr};
    int lens[] = {0, 0, 0, (int)len, (int)len};
    int fmts[] = {0, 0, 0, 1, 1};
    PGresult *res = PQexecParams(j->conn,
                                 "INSERT INTO header_intents(blob_id, run, path, old_header,"
                                 " new_header, created) VALUES ($1::bigint, $2, $3, $4, $5, "
                                 RENC_PG_NOW ") ON CONFLICT (blob_id) DO UPDATE SET path = $3,"
                                 " old_header = $4, new_header = $5, created = " RENC_PG_NOW,
                                 5, NULL, v, lens, fmts, 0);
    int rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -RENC_E_JOURNAL;
    PQclear(res);
    return rc;
}

int renc_jpg_header_intents(struct renc_journal *base, size_t n, const int64_t *rows,
                            const char *const *paths, const uint8_t *const *old_hdr,
                            const uint8_t *const *new_hdr, const size_t *len)
{
    struct renc_journal_pg *j = renc_jpg(base);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    pthread_mutex_lock(&j->lock);
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char abs[4096];
        if ((rc = renc_journal_abs_path(cwd, paths[i], abs, sizeof abs)) == 0)
            rc = renc_jpg_intent_one(j, rows[i], abs, old_hdr[i], new_hdr[i], len[i]);
    }
    if (rc == 0)
        rc = renc_fault_check("journal");
    rc = renc_jpg_end(j, rc); /* synchronous_commit on: durable when COMMIT returns */
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- settling intents --------------------------------------------------- */

/* Records intent in's outcome out in one transaction: the blob's state,
 * the settled record and the intent's removal (an error leaves the intent
 * open and the blob failed). */
static int renc_jpg_record_settled(struct renc_journal_pg *j,
                                   const struct renc_journal_intent *in, int out)
{
    char row[24], code[16];
    snprintf(code, sizeof code, "%d", -out);
    const char *v[] = {renc_journal_state_name(renc_journal_settled_state(out)),
                       out < 0 ? code : NULL, out < 0 ? renc_strerror(out) : NULL,
                       I64(row, in->row), j->run, in->path,
                       out >= 0 ? renc_settle_name((enum renc_settle)out) : ""};
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET state = $1, code = $2::int, error = $3,"
                                     " finished = " RENC_PG_NOW " WHERE id = $4::bigint", 4, v);
    if (rc == 0 && out >= 0)
        rc = renc_jpg_query(j, NULL, "INSERT INTO header_settled(blob_id, run, path, outcome,"
                                     " settled) VALUES ($1::bigint, $2, $3, $4, " RENC_PG_NOW
                                     ") ON CONFLICT (blob_id) DO UPDATE SET outcome = $4,"
                                     " settled = " RENC_PG_NOW, 4, v + 3);
    if (rc == 0 && out >= 0)
        rc = renc_jpg_query(j, NULL, "DELETE FROM header_intents WHERE blob_id = $1::bigint", 1,
                            v + 3);
    return renc_jpg_end(j, rc);
}

/* Settles intent k of r (its headers decoded from bytea). */
static int renc_jpg_settle_row(struct renc_journal_pg *j, PGresult *r, int k,
                               int (*settle)(void *arg, const struct renc_journal_intent *in),
                               void (*settled)(void *arg, const struct renc_journal_intent *in,
                                               int out),
                               void *arg)
{
    size_t lo = 0, ln = 0;
    unsigned char *o = PQunescapeBytea((const unsigned char *)PQgetvalue(r, k, 2), &lo);
    unsigned char *nw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, k, 3), &ln);
    int rc = o && nw && lo == ln && lo > 0 ? 0 : -RENC_E_BAD_JOURNAL;
    if (rc == 0) {
        struct renc_journal_intent in = {.row = strtoll(PQgetvalue(r, k, 0), NULL, 10),
                                         .path = PQgetvalue(r, k, 1), .old_hdr = o,
                                         .new_hdr = nw, .len = lo};
        int out = settle(arg, &in);
        if ((rc = renc_jpg_record_settled(j, &in, out)) == 0)
            settled(arg, &in, out);
    }
    PQfreemem(o);
    PQfreemem(nw);
    return rc;
}

/* Only intents whose blob no other live worker holds: a live worker's
 * in-flight header write is never "repaired" under it. */
int renc_jpg_settle_intents(struct renc_journal *base,
                            int (*settle)(void *arg, const struct renc_journal_intent *in),
                            void (*settled)(void *arg, const struct renc_journal_intent *in,
                                            int out),
                            void *arg)
{
    struct renc_journal_pg *j = renc_jpg(base);
    pthread_mutex_lock(&j->lock);
    char w[24];
    const char *v[] = {j->run, I64(w, j->worker)};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r,
                            "SELECT i.blob_id, coalesce(b.path, i.path), i.old_header,"
                            " i.new_header FROM header_intents i LEFT JOIN blobs b"
                            " ON b.id = i.blob_id WHERE i.run = $1 AND (b.lease_until IS NULL"
                            " OR b.lease_until < " RENC_PG_NOW " OR b.claimed_by = $2::bigint)"
                            " ORDER BY i.blob_id", 2, v);
    for (int k = 0; rc == 0 && k < PQntuples(r); k++)
        rc = renc_jpg_settle_row(j, r, k, settle, settled, arg);
    PQclear(r);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- the failures ------------------------------------------------------- */

int renc_jpg_failures(struct renc_journal *base, size_t limit,
                      void (*fn)(void *arg, const char *path, const char *error, int code,
                                 const char *ref),
                      void *arg)
{
    struct renc_journal_pg *j = renc_jpg(base);
    pthread_mutex_lock(&j->lock);
    char lim[24];
    const char *v[] = {j->run, limit ? I64(lim, limit) : NULL};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r, "SELECT path, coalesce(error, ''), coalesce(code, 0), old_ref"
                                   " FROM blobs WHERE run = $1 AND state = 'failed'"
                                   " ORDER BY path LIMIT $2::bigint", 2, v);
    for (int k = 0; rc == 0 && k < PQntuples(r); k++)
        fn(arg, PQgetvalue(r, k, 0), PQgetvalue(r, k, 1), atoi(PQgetvalue(r, k, 2)),
           PQgetisnull(r, k, 3) ? NULL : PQgetvalue(r, k, 3));
    PQclear(r);
    pthread_mutex_unlock(&j->lock);
    return rc;
}
