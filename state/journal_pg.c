/* state/journal_pg.c — the PostgreSQL journal (journal.h's table for
 * postgresql://... and postgres://...): the connection (any libpq URI; the
 * password from PGPASSFILE or PGPASSWORD, never from us and never printed),
 * the schema, the run by name and its workers, status.  The blobs are in
 * journal_pg_items.c.  Every change is one transaction; synchronous_commit
 * is left on, so a COMMIT that returned is durable, as SQLite's
 * synchronous=FULL. */
#include "state/journal_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_PG_SCHEMA 2

/* The tables, made once per database under an advisory lock (two workers
 * starting together would race on CREATE otherwise), and brought from an
 * older version (1: no etag).  Run only when the database is not at this
 * version: its DDL locks the tables, which a worker must not do to a run
 * under way. */
static const char renc_jpg_schema[] =
    "CREATE TABLE IF NOT EXISTS renc_schema(version int PRIMARY KEY);"
    "INSERT INTO renc_schema VALUES (2) ON CONFLICT DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS runs(name text PRIMARY KEY, run_id text NOT NULL,"
    "  mode text NOT NULL, target text NOT NULL, keep_old int NOT NULL,"
    "  drop_refs text NOT NULL, out_dir text NOT NULL, sources text NOT NULL,"
    "  shard text NOT NULL DEFAULT '', listed boolean NOT NULL DEFAULT false,"
    "  created double precision NOT NULL, updated double precision NOT NULL);"
    "CREATE TABLE IF NOT EXISTS workers(id bigserial PRIMARY KEY, run text NOT NULL,"
    "  host text NOT NULL, pid int NOT NULL, started double precision NOT NULL,"
    "  heartbeat double precision NOT NULL, ended double precision, outcome text,"
    "  done bigint NOT NULL DEFAULT 0, failed bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS blobs(id bigserial PRIMARY KEY, run text NOT NULL,"
    "  path text NOT NULL, size bigint NOT NULL, state text NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending','done','skipped','not_renc','failed','gone')),"
    "  old_ref text, new_ref text, error text, code int, tries int NOT NULL DEFAULT 0,"
    "  finished double precision, seen int NOT NULL DEFAULT 1, claimed_by bigint,"
    "  lease_until double precision, etag text, UNIQUE (run, path));"
    "CREATE INDEX IF NOT EXISTS blobs_work ON blobs(run, state, id);"
    "CREATE TABLE IF NOT EXISTS header_intents(blob_id bigint PRIMARY KEY, run text NOT NULL,"
    "  path text NOT NULL, old_header bytea NOT NULL, new_header bytea NOT NULL,"
    "  created double precision NOT NULL);"
    "CREATE TABLE IF NOT EXISTS header_settled(blob_id bigint PRIMARY KEY, run text NOT NULL,"
    "  path text NOT NULL, outcome text NOT NULL, settled double precision NOT NULL);"
    /* Version 2: a blob's listed version (blob storage). */
    "ALTER TABLE blobs ADD COLUMN IF NOT EXISTS etag text;";

/* The database's schema version: 0 when it has none yet. */
static int renc_jpg_version(struct renc_journal_pg *j, int *version)
{
    PGresult *r = NULL;
    *version = 0;
    /* pg_class read with the statement's snapshot: to_regclass() answers
     * from a cache that, inside a transaction begun before another worker
     * made the table, may still say it is missing (a deadlock in a test). */
    int rc = renc_jpg_query(j, &r,
                            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN"
                            " pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE"
                            " c.relname = 'renc_schema' AND n.nspname = current_schema())",
                            0, NULL);
    int have = rc == 0 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (rc == 0 && have &&
        (rc = renc_jpg_query(j, &r, "SELECT coalesce(max(version), 0) FROM renc_schema", 0,
                             NULL)) == 0)
        *version = atoi(PQgetvalue(r, 0, 0));
    if (have)
        PQclear(r);
    return rc;
}

int renc_jpg_query(struct renc_journal_pg *j, PGresult **res, const char *sql, int n,
                   const char *const *params)
{
    if (res)
        *res = NULL;
    PGresult *r = n ? PQexecParams(j->conn, sql, n, NULL, params, NULL, NULL, 0)
                    : PQexec(j->conn, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        PQclear(r);
        return PQstatus(j->conn) == CONNECTION_OK ? -RENC_E_JOURNAL : -EIO;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

int renc_jpg_end(struct renc_journal_pg *j, int rc)
{
    rc = rc ? rc : renc_jpg_query(j, NULL, "COMMIT", 0, NULL);
    if (rc)
        PQclear(PQexec(j->conn, "ROLLBACK"));
    return rc;
}

static void renc_jpg_close(struct renc_journal *base)
{
    struct renc_journal_pg *j = renc_jpg(base);
    if (j->conn)
        PQfinish(j->conn);
    renc_journal_owned_free(&j->params);
    pthread_mutex_destroy(&j->lock);
    renc_journal_base_cleanup(&j->base);
    renc_free(j);
}

/* 1 when the URI carries a password (user:password@ or password=): the
 * location is printed and recorded (messages, reports, the catalog), so a
 * password goes in PGPASSWORD or PGPASSFILE instead, where libpq finds it. */
static int renc_jpg_has_password(const char *uri)
{
    const char *auth = strstr(uri, "://");
    auth = auth ? auth + 3 : uri;
    size_t end = strcspn(auth, "/?");
    const char *at = memchr(auth, '@', end);
    if (at && memchr(auth, ':', (size_t)(at - auth)))
        return 1;
    const char *q = strchr(uri, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, "password=", 9) == 0)
            return 1;
    return 0;
}

/* where = URI [#run=NAME]: the URI goes to libpq, the name picks the run.
 * A name is 1..127 of [A-Za-z0-9._-]. */
static int renc_jpg_split(const char *where, char *uri, size_t max, char *run, size_t rmax)
{
    const char *hash = strchr(where, '#');
    size_t len = hash ? (size_t)(hash - where) : strlen(where);
    RENC_RETURN_IF(len >= max, -RENC_E_INVALID);
    memcpy(uri, where, len);
    uri[len] = '\0';
    RENC_RETURN_IF(renc_jpg_has_password(uri), -RENC_E_INSECURE_PERMS);
    const char *name = "default";
    if (hash) {
        RENC_RETURN_IF(strncmp(hash, "#run=", 5) != 0, -RENC_E_INVALID);
        name = hash + 5;
    }
    size_t n = strlen(name);
    RENC_RETURN_IF(n == 0 || n >= rmax || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                                                       "nopqrstuvwxyz0123456789._-") != n,
                   -RENC_E_INVALID);
    memcpy(run, name, n + 1);
    return 0;
}

/* The server's notices ("relation already exists, skipping") are not for
 * the operator: only reencrypt/ prints, and nothing prints them. */
static void renc_jpg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The schema made or brought up to date, by one worker at a time (an
 * advisory lock, "RENC"); a worker that waited for it finds the version
 * current and makes nothing: only the first worker on a new database runs
 * DDL, while no other worker is past connecting. */
static int renc_jpg_make_schema(struct renc_journal_pg *j, int *version)
{
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc)
        return rc;
    rc = renc_jpg_query(j, NULL, "SELECT pg_advisory_xact_lock(1380273731)", 0, NULL);
    if (rc == 0)
        rc = renc_jpg_version(j, version);
    if (rc == 0 && *version < RENC_PG_SCHEMA)
        rc = renc_jpg_query(j, NULL, renc_jpg_schema, 0, NULL);
    rc = renc_jpg_end(j, rc);
    return rc ? rc : renc_jpg_version(j, version);
}

/* The lease: RENC_JOURNAL_LEASE seconds when set (2 to 86400: a test's
 * short one, or a long one for blobs that take long), else the default. */
static double renc_jpg_lease_env(void)
{
    const char *v = getenv("RENC_JOURNAL_LEASE");
    char *end = NULL;
    double s = v ? strtod(v, &end) : 0;
    return v && end && *end == '\0' && s >= 2 && s <= 86400 ? s : RENC_PG_LEASE_S;
}

static int renc_jpg_connect(struct renc_journal **out, const char *where, int readonly)
{
    struct renc_journal_pg *j = renc_calloc(1, sizeof *j);
    RENC_RETURN_IF(!j, -RENC_E_NOMEM);
    renc_journal_base_init(&j->base, &renc_journal_pg_ops, readonly);
    j->lease_s = renc_jpg_lease_env();
    pthread_mutex_init(&j->lock, NULL);
    char uri[4096];
    int rc = renc_jpg_split(where, uri, sizeof uri, j->run, sizeof j->run);
    if (rc == 0) {
        j->conn = PQconnectdb(uri);
        /* libpq's message may name the host and user: not ours to print. */
        rc = j->conn && PQstatus(j->conn) == CONNECTION_OK ? 0 : -ECONNREFUSED;
        if (rc == 0)
            PQsetNoticeProcessor(j->conn, renc_jpg_quiet, NULL);
    }
    int version = 0;
    if (rc == 0)
        rc = renc_jpg_version(j, &version);
    if (rc == 0 && !readonly && version < RENC_PG_SCHEMA)
        rc = renc_jpg_make_schema(j, &version);
    if (rc == 0 && version != RENC_PG_SCHEMA)
        rc = version ? -RENC_E_BAD_JOURNAL : -ENOENT; /* a reader finds no journal yet */
    if (rc) {
        renc_jpg_close(&j->base);
        return rc;
    }
    *out = &j->base;
    return 0;
}

/* No lock file: many workers share a run, so a second worker is not busy. */
static int renc_jpg_open(struct renc_journal **out, const char *where, int create,
                         long *holder_pid)
{
    (void)create;
    if (holder_pid)
        *holder_pid = 0;
    return renc_jpg_connect(out, where, 0);
}

static int renc_jpg_open_readonly(struct renc_journal **out, const char *where)
{
    return renc_jpg_connect(out, where, 1);
}

/* ---- the run and its workers -------------------------------------------- */

/* A new run of this name (inside start's transaction): everything of the
 * old one forgotten. */
static int renc_jpg_new_run(struct renc_journal_pg *j, const struct renc_journal_params *p)
{
    uint8_t id[8];
    if (getentropy(id, sizeof id) != 0)
        return -errno;
    for (int i = 0; i < 8; i++)
        snprintf(j->base.run_id + 2 * i, 3, "%02x", id[i]);
    const char *run[] = {j->run};
    int rc = renc_jpg_query(j, NULL, "DELETE FROM header_intents WHERE run = $1", 1, run);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "DELETE FROM header_settled WHERE run = $1", 1, run);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "DELETE FROM blobs WHERE run = $1", 1, run);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "DELETE FROM workers WHERE run = $1", 1, run);
    char keep[4];
    snprintf(keep, sizeof keep, "%d", p->keep_old ? 1 : 0);
    const char *v[] = {j->run, j->base.run_id, p->mode, p->target, keep, p->drop, p->out,
                       p->sources, p->shard ? p->shard : ""};
    if (rc == 0)
        rc = renc_jpg_query(j, NULL,
                            "INSERT INTO runs(name, run_id, mode, target, keep_old, drop_refs,"
                            " out_dir, sources, shard, listed, created, updated) VALUES"
                            " ($1, $2, $3, $4, $5::int, $6, $7, $8, $9, false, " RENC_PG_NOW
                            ", " RENC_PG_NOW ") ON CONFLICT (name) DO UPDATE SET"
                            " run_id = $2, mode = $3, target = $4, keep_old = $5::int,"
                            " drop_refs = $6, out_dir = $7, sources = $8, shard = $9,"
                            " listed = false, created = " RENC_PG_NOW ", updated = "
                            RENC_PG_NOW, 9, v);
    return rc;
}

static int renc_jpg_join(struct renc_journal_pg *j)
{
    char host[256] = "", pid[24];
    gethostname(host, sizeof host - 1);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    const char *v[] = {j->run, host, pid};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r,
                            "INSERT INTO workers(run, host, pid, started, heartbeat) VALUES"
                            " ($1, $2, $3::int, " RENC_PG_NOW ", " RENC_PG_NOW ")"
                            " RETURNING id, started",
                            3, v);
    if (rc == 0) {
        j->worker = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        j->worker_started = strtod(PQgetvalue(r, 0, 1), NULL);
    }
    PQclear(r);
    return rc;
}

static int renc_jpg_start(struct renc_journal *base, const struct renc_journal_params *p,
                          int resume)
{
    struct renc_journal_pg *j = renc_jpg(base);
    pthread_mutex_lock(&j->lock);
    const char *run[] = {j->run};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, run);
    /* A new run replaces the one status showed (run_id, "" for none); when
     * another worker made a new one since, under this lock, this worker
     * joins it instead of wiping it: workers started together make one. */
    if (rc == 0 &&
        (rc = renc_jpg_query(j, &r, "SELECT run_id FROM runs WHERE name = $1", 1, run)) == 0) {
        int have = PQntuples(r) == 1;
        if (have && (resume || strcmp(PQgetvalue(r, 0, 0), j->base.run_id) != 0))
            snprintf(j->base.run_id, sizeof j->base.run_id, "%s", PQgetvalue(r, 0, 0));
        else
            rc = renc_jpg_new_run(j, p);
    }
    PQclear(r);
    if (rc == 0)
        rc = renc_jpg_join(j);
    rc = renc_jpg_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* The worker's row closed, and the claims it still holds given back. */
static int renc_jpg_end_worker(struct renc_journal *base, const char *outcome)
{
    struct renc_journal_pg *j = renc_jpg(base);
    pthread_mutex_lock(&j->lock);
    char w[24];
    snprintf(w, sizeof w, "%lld", (long long)j->worker);
    const char *v[] = {w, outcome};
    int rc = renc_jpg_query(j, NULL, "BEGIN", 0, NULL);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL,
                            "UPDATE workers SET ended = " RENC_PG_NOW ", heartbeat = "
                            RENC_PG_NOW ", outcome = $2 WHERE id = $1::bigint", 2, v);
    if (rc == 0)
        rc = renc_jpg_query(j, NULL, "UPDATE blobs SET claimed_by = NULL, lease_until = NULL"
                                     " WHERE claimed_by = $1::bigint", 1, v);
    rc = renc_jpg_end(j, rc);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- status ----------------------------------------------------------- */

static int renc_jpg_load_run(struct renc_journal_pg *j, struct renc_journal_status *s)
{
    const char *run[] = {j->run};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r,
                            "SELECT run_id, mode, target, keep_old, drop_refs, out_dir, sources,"
                            " shard, created, updated, listed FROM runs WHERE name = $1", 1, run);
    if (rc == 0 && PQntuples(r) == 1) {
        s->has_run = 1;
        snprintf(s->run_id, sizeof s->run_id, "%s", PQgetvalue(r, 0, 0));
        snprintf(j->base.run_id, sizeof j->base.run_id, "%s", s->run_id);
        /* The run's name is the location's (#run=NAME), not a parameter. */
        const char *v[7] = {PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 4),
                            PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 7), NULL};
        rc = renc_journal_owned_set(&j->params, &s->params, v, atoi(PQgetvalue(r, 0, 3)));
        s->created = strtod(PQgetvalue(r, 0, 8), NULL);
        s->updated = strtod(PQgetvalue(r, 0, 9), NULL);
        s->listed = strcmp(PQgetvalue(r, 0, 10), "t") == 0;
    }
    PQclear(r);
    return rc;
}

/* Counts by state, intents open and settled, the workers. */
static int renc_jpg_load_counts(struct renc_journal_pg *j, struct renc_journal_status *s)
{
    char lease[32];
    snprintf(lease, sizeof lease, "%.0f", j->lease_s);
    const char *run[] = {j->run}, *v[] = {j->run, lease};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r, "SELECT state, count(*), coalesce(sum(size), 0) FROM blobs"
                                   " WHERE run = $1 GROUP BY state", 1, run);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        enum renc_jstate st = renc_journal_state_parse(PQgetvalue(r, i, 0));
        s->count[st] = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        s->bytes[st] = strtoull(PQgetvalue(r, i, 2), NULL, 10);
    }
    PQclear(r);
    if (rc == 0 && (rc = renc_jpg_query(j, &r, "SELECT outcome, count(*) FROM header_settled"
                                               " WHERE run = $1 GROUP BY outcome", 1, run)) == 0)
        for (int i = 0; i < PQntuples(r); i++) {
            enum renc_settle k = renc_settle_parse(PQgetvalue(r, i, 0));
            if (k < RENC_SETTLE_COUNT)
                s->settled[k] = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        }
    PQclear(r);
    if (rc == 0 && (rc = renc_jpg_query(j, &r,
                                        "SELECT (SELECT count(*) FROM header_intents WHERE run"
                                        " = $1), (SELECT count(*) FROM workers WHERE run = $1),"
                                        " (SELECT max(claimed_by) FROM blobs WHERE run = $1 AND"
                                        " lease_until > " RENC_PG_NOW "),"
                                        " (SELECT count(*) FROM workers WHERE run = $1 AND ended"
                                        " IS NULL AND heartbeat > " RENC_PG_NOW " - $2::float8)",
                                        2, v)) == 0) {
        s->header_intents = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        s->attempts = (unsigned)strtoul(PQgetvalue(r, 0, 1), NULL, 10);
        s->running = !PQgetisnull(r, 0, 2); /* a live lease */
        s->live_workers = (unsigned)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
    }
    PQclear(r);
    return rc;
}

/* The last worker to start: its times, outcome and blobs. */
static int renc_jpg_load_last(struct renc_journal_pg *j, struct renc_journal_status *s)
{
    const char *run[] = {j->run};
    PGresult *r = NULL;
    int rc = renc_jpg_query(j, &r, "SELECT started, coalesce(ended, 0), coalesce(outcome, ''),"
                                   " done + failed, pid FROM workers WHERE run = $1"
                                   " ORDER BY id DESC LIMIT 1", 1, run);
    if (rc == 0 && PQntuples(r) == 1) {
        s->last_started = strtod(PQgetvalue(r, 0, 0), NULL);
        s->last_ended = strtod(PQgetvalue(r, 0, 1), NULL);
        snprintf(s->last_outcome, sizeof s->last_outcome, "%s", PQgetvalue(r, 0, 2));
        s->last_blobs = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
        if (s->running)
            s->holder_pid = strtol(PQgetvalue(r, 0, 4), NULL, 10);
    }
    PQclear(r);
    return rc;
}

static int renc_jpg_status(struct renc_journal *base, struct renc_journal_status *s)
{
    struct renc_journal_pg *j = renc_jpg(base);
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&j->lock);
    int rc = renc_jpg_load_run(j, s);
    if (rc == 0 && s->has_run)
        rc = renc_jpg_load_counts(j, s);
    if (rc == 0 && s->has_run)
        rc = renc_jpg_load_last(j, s);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* One table under each scheme libpq takes. */
#define RENC_JPG_OPS(sch)                                                                    \
    {                                                                                        \
        .name = "postgresql", .shared = 1, .scheme = (sch), .open = renc_jpg_open,           \
        .open_readonly = renc_jpg_open_readonly, .close = renc_jpg_close,                    \
        .start = renc_jpg_start, .enlist = renc_jpg_enlist, .claim = renc_jpg_claim,         \
        .write_outcomes = renc_jpg_write_outcomes, .header_intents = renc_jpg_header_intents, \
        .settle_intents = renc_jpg_settle_intents, .status = renc_jpg_status,                \
        .end = renc_jpg_end_worker, .failures = renc_jpg_failures,                           \
        .list_begin = renc_jpg_list_begin, .enlist_part = renc_jpg_enlist_part,              \
        .list_end = renc_jpg_list_end, .renew = renc_jpg_renew, .workers = renc_jpg_workers, \
        .lease_s = renc_jpg_lease_s,                                                         \
    }
const struct renc_journal_ops renc_journal_pg_ops = RENC_JPG_OPS("postgresql://");
const struct renc_journal_ops renc_journal_pg_short_ops = RENC_JPG_OPS("postgres://");
