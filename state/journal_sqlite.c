/* state/journal_sqlite.c — the SQLite journal (journal.h's table for a
 * path): the file, its lock, the run and its attempts, and status.  The
 * blobs' rows are journal_sqlite_items.c; the schema is below and in
 * docs/JOURNAL.md. */
#include "state/journal_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "state/sqlerr.h"

#define RENC_JOURNAL_APP_ID 0x52454e43 /* "RENC" */
#define RENC_JOURNAL_SCHEMA 1

/* Header intents settled after a crash, one row per blob: what recovery
 * found (enum renc_settle).  Added beside the schema-1 tables: a journal
 * made before it gets it when a run opens it (older binaries ignore it). */
#define RENC_JOURNAL_SETTLED_TABLE                                                          \
    "CREATE TABLE IF NOT EXISTS header_settled("                                          \
    "  blob_id INTEGER PRIMARY KEY, path TEXT NOT NULL, outcome TEXT NOT NULL"            \
    "    CHECK (outcome IN ('rewritten','as_it_was','completed','gone','replaced')),"     \
    "  settled REAL NOT NULL);"

static const char renc_journal_schema[] =
    "CREATE TABLE IF NOT EXISTS run("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  run_id TEXT NOT NULL, mode TEXT NOT NULL, target TEXT NOT NULL,"
    "  keep_old INTEGER NOT NULL, drop_refs TEXT NOT NULL, out_dir TEXT NOT NULL,"
    "  sources TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,"
    "  shard TEXT NOT NULL DEFAULT '', name TEXT NOT NULL DEFAULT '',"
    "  listed INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE IF NOT EXISTS attempts("
    "  n INTEGER PRIMARY KEY, pid INTEGER NOT NULL, started REAL NOT NULL,"
    "  ended REAL, outcome TEXT);"
    "CREATE TABLE IF NOT EXISTS blobs("
    "  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending','done','skipped','not_renc','failed','gone')),"
    "  old_ref TEXT, new_ref TEXT, error TEXT, code INTEGER,"
    "  tries INTEGER NOT NULL DEFAULT 0, finished REAL, seen INTEGER NOT NULL DEFAULT 1,"
    "  etag TEXT);"
    "CREATE INDEX IF NOT EXISTS blobs_state ON blobs(state);"
    "CREATE TABLE IF NOT EXISTS header_intents("
    "  blob_id INTEGER PRIMARY KEY, path TEXT NOT NULL, old_header BLOB NOT NULL,"
    "  new_header BLOB NOT NULL, created REAL NOT NULL);"
    RENC_JOURNAL_SETTLED_TABLE;

double renc_jsql_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int renc_jsql_rc(int rc)
{
    return renc_sqlite_rc(rc, -RENC_E_BAD_JOURNAL, -RENC_E_JOURNAL);
}

int renc_jsql_exec(struct renc_journal_sqlite *j, const char *sql)
{
    return renc_jsql_rc(sqlite3_exec(j->db, sql, NULL, NULL, NULL));
}

int renc_jsql_prepare(struct renc_journal_sqlite *j, sqlite3_stmt **st, const char *sql)
{
    return renc_jsql_rc(sqlite3_prepare_v2(j->db, sql, -1, st, NULL));
}

int renc_jsql_end(struct renc_journal_sqlite *j, int rc)
{
    rc = rc ? rc : renc_jsql_exec(j, "COMMIT");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- open and close --------------------------------------------------- */

/* The queue is flushed already (renc_journal_close), or was never used
 * (a failed open). */
static void renc_jsql_close(struct renc_journal *base)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    if (j->db)
        sqlite3_close(j->db);
    renc_journal_owned_free(&j->params);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* drops the flock */
    pthread_mutex_destroy(&j->lock);
    renc_journal_base_cleanup(&j->base);
    renc_free(j);
}

static long renc_read_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* The run's lock: an flock on PATH.lock, which holds the holder's pid. */
static int renc_jsql_lock(struct renc_journal_sqlite *j, long *holder_pid)
{
    char lp[4200];
    snprintf(lp, sizeof lp, "%s.lock", j->path);
    j->lock_fd = open(lp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    j->lock_created = j->lock_fd >= 0;
    if (j->lock_fd < 0 && errno == EEXIST)
        j->lock_fd = open(lp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (j->lock_fd < 0)
        return -errno;
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (holder_pid)
            *holder_pid = renc_read_holder(j->lock_fd);
        return e == EWOULDBLOCK ? -RENC_E_BUSY : -e;
    }
    return 0;
}

/* Writes this process's pid into the held lock, once the journal is known
 * to be one (a file given as --journal that is not must keep its lock file
 * as it was). */
static int renc_jsql_note_holder(struct renc_journal_sqlite *j)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lock_fd, 0) != 0 || pwrite(j->lock_fd, pid, (size_t)n, 0) != n)
        return -errno;
    return 0;
}

static int renc_jsql_check_file(const char *path, int create)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -RENC_E_BAD_JOURNAL;
    if (rc == 0 && (st.st_mode & 077))
        rc = -RENC_E_INSECURE_PERMS;
    close(fd);
    return rc;
}

/* The first column of a one-row query as an integer (dflt when no row or
 * the query fails: the callers decide from the value). */
static int64_t renc_jsql_query_int(struct renc_journal_sqlite *j, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st = NULL;
    int64_t v = dflt;
    if (renc_jsql_prepare(j, &st, sql) == 0 && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* 1 when table has the column col (older journals lack the ones added
 * after schema 1). */
static int renc_jsql_has_column(struct renc_journal_sqlite *j, const char *table, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, col);
    return renc_jsql_query_int(j, sql, 0) == 1;
}

/* The columns added after schema 1, added to a journal made before them
 * when a run opens it (older binaries ignore them): run.shard (run/shard.h,
 * '' is every blob), run.name and run.listed (a named run, listed into the
 * journal: an older run is unnamed and listed whole), blobs.etag (the
 * version a container's listing saw). */
static int renc_jsql_add_columns(struct renc_journal_sqlite *j)
{
    static const char *const add[][3] = {
        {"run", "shard", "TEXT NOT NULL DEFAULT ''"},
        {"run", "name", "TEXT NOT NULL DEFAULT ''"},
        {"run", "listed", "INTEGER NOT NULL DEFAULT 1"},
        {"blobs", "etag", "TEXT"},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof add / sizeof *add; i++) {
        if (renc_jsql_has_column(j, add[i][0], add[i][1]))
            continue;
        char sql[160];
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", add[i][0], add[i][1],
                 add[i][2]);
        rc = renc_jsql_exec(j, sql);
    }
    return rc;
}

/* Makes a new (empty) file a journal. */
static int renc_jsql_init(struct renc_journal_sqlite *j)
{
    if (renc_jsql_query_int(j, "SELECT count(*) FROM sqlite_schema", -1) != 0)
        return -RENC_E_BAD_JOURNAL;
    if (j->base.readonly)
        return -RENC_E_BAD_JOURNAL;
    /* WAL first (it cannot change inside a transaction, and a file left
     * in WAL mode with nothing else is still "new"); then the marks and
     * the tables in one transaction, so a crash leaves either an empty
     * file or a whole journal. */
    int rc = renc_jsql_exec(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    if (rc)
        return rc;
    char sql[sizeof renc_journal_schema + 160];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE; PRAGMA application_id=%d; PRAGMA user_version=%d; %s COMMIT;",
             RENC_JOURNAL_APP_ID, RENC_JOURNAL_SCHEMA, renc_journal_schema);
    if ((rc = renc_jsql_exec(j, sql)))
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int renc_jsql_setup(struct renc_journal_sqlite *j)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "PRAGMA application_id");
    int app = 0;
    if (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        app = sqlite3_column_int(st, 0);
    else if (rc == 0)
        rc = renc_jsql_rc(sqlite3_errcode(j->db));
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (app == 0)
        return renc_jsql_init(j); /* a new file (or an empty one): it becomes a journal */
    if (app != RENC_JOURNAL_APP_ID)
        return -RENC_E_BAD_JOURNAL;
    if (renc_jsql_query_int(j, "PRAGMA user_version", 0) != RENC_JOURNAL_SCHEMA)
        return -RENC_E_BAD_JOURNAL;
    /* The catalog has the same marks: a journal is told by its tables. */
    if (renc_jsql_query_int(j, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                               " name IN ('run', 'attempts', 'blobs', 'header_intents')",
                            0) != 4)
        return -RENC_E_BAD_JOURNAL;
    if (j->base.readonly)
        return 0;
    /* WAL: readers (status) never block the run.  synchronous=FULL makes
     * each commit durable: there are a few per second, and header intents
     * must be durable before their overwrite. */
    rc = renc_jsql_exec(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    if (rc == 0)
        rc = renc_jsql_exec(j, RENC_JOURNAL_SETTLED_TABLE);
    if (rc == 0)
        rc = renc_jsql_add_columns(j);
    return rc;
}

static int renc_jsql_new(struct renc_journal_sqlite **out, const char *path, int readonly)
{
    struct renc_journal_sqlite *j = renc_calloc(1, sizeof *j);
    RENC_RETURN_IF(!j, -RENC_E_NOMEM);
    renc_journal_base_init(&j->base, &renc_journal_sqlite_ops, readonly);
    j->lock_fd = -1;
    pthread_mutex_init(&j->lock, NULL);
    int n = snprintf(j->path, sizeof j->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof j->path) {
        renc_jsql_close(&j->base);
        return -ENAMETOOLONG;
    }
    *out = j;
    return 0;
}

static int renc_jsql_connect(struct renc_journal_sqlite *j)
{
    int flags = j->base.readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int rc = renc_jsql_rc(sqlite3_open_v2(j->path, &j->db, flags | SQLITE_OPEN_FULLMUTEX, NULL));
    if (rc == 0)
        sqlite3_busy_timeout(j->db, 10000);
    if (rc == 0)
        rc = renc_jsql_setup(j);
    return rc;
}

static int renc_jsql_open(struct renc_journal **out, const char *path, int create,
                          long *holder_pid)
{
    struct renc_journal_sqlite *j;
    int rc = renc_jsql_new(&j, path, 0);
    if (rc)
        return rc;
    if (holder_pid)
        *holder_pid = 0;
    /* The lock first: a second run learns at once that the first is alive. */
    if ((rc = renc_jsql_lock(j, holder_pid)) == 0 &&
        (rc = renc_jsql_check_file(path, create)) == 0 && (rc = renc_jsql_connect(j)) == 0)
        rc = renc_jsql_note_holder(j);
    if (rc) {
        if (j->lock_created && rc != -RENC_E_BUSY) {
            /* Nothing of ours is left beside a file that is not a journal. */
            char lp[4200];
            snprintf(lp, sizeof lp, "%s.lock", j->path);
            unlink(lp);
        }
        renc_jsql_close(&j->base);
        return rc;
    }
    *out = &j->base;
    return 0;
}

static int renc_jsql_open_readonly(struct renc_journal **out, const char *path)
{
    struct renc_journal_sqlite *j;
    int rc = renc_jsql_new(&j, path, 1);
    if (rc)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -RENC_E_BAD_JOURNAL;
    if (rc == 0)
        rc = renc_jsql_connect(j);
    if (rc) {
        renc_jsql_close(&j->base);
        return rc;
    }
    *out = &j->base;
    return 0;
}

/* ---- status ----------------------------------------------------------- */

static int renc_jsql_load_run(struct renc_journal_sqlite *j, struct renc_journal_status *s)
{
    sqlite3_stmt *st = NULL;
    /* A journal older than the added columns, read by status (which does
     * not add them), reads as an unsharded, unnamed run listed whole. */
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT run_id, mode, target, keep_old, drop_refs, out_dir, sources, created,"
             " updated, %s, %s, %s FROM run WHERE id = 1",
             renc_jsql_has_column(j, "run", "shard") ? "shard" : "''",
             renc_jsql_has_column(j, "run", "name") ? "name" : "''",
             renc_jsql_has_column(j, "run", "listed") ? "listed" : "1");
    int rc = renc_jsql_prepare(j, &st, sql);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        s->has_run = 1;
        snprintf(s->run_id, sizeof s->run_id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(j->base.run_id, sizeof j->base.run_id, "%s", s->run_id);
        const char *v[7] = {(const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 4),
                            (const char *)sqlite3_column_text(st, 5),
                            (const char *)sqlite3_column_text(st, 6),
                            (const char *)sqlite3_column_text(st, 9),
                            (const char *)sqlite3_column_text(st, 10)};
        rc = renc_journal_owned_set(&j->params, &s->params, v, sqlite3_column_int(st, 3));
        s->created = sqlite3_column_double(st, 7);
        s->listed = sqlite3_column_int(st, 11);
        s->updated = sqlite3_column_double(st, 8);
    } else if (step != SQLITE_DONE) {
        rc = renc_jsql_rc(step);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The blobs by state, the open intents and the settled ones. */
static int renc_jsql_load_counts(struct renc_journal_sqlite *j, struct renc_journal_status *s)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "SELECT state, count(*), coalesce(sum(size), 0) "
                                       "FROM blobs GROUP BY state");
    if (rc == 0) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            enum renc_jstate k =
                renc_journal_state_parse((const char *)sqlite3_column_text(st, 0));
            s->count[k] += (uint64_t)sqlite3_column_int64(st, 1);
            s->bytes[k] += (uint64_t)sqlite3_column_int64(st, 2);
        }
        if (step != SQLITE_DONE)
            rc = renc_jsql_rc(step);
        sqlite3_finalize(st);
    }
    if (rc == 0 && (rc = renc_jsql_prepare(j, &st, "SELECT count(*) FROM header_intents")) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->header_intents = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    /* A journal made before header_settled existed, read by status, has none. */
    if (rc == 0 && renc_jsql_prepare(j, &st, "SELECT outcome, count(*) FROM header_settled "
                                             "GROUP BY outcome") == 0) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            enum renc_settle k = renc_settle_parse((const char *)sqlite3_column_text(st, 0));
            if (k < RENC_SETTLE_COUNT)
                s->settled[k] += (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    return rc;
}

/* The attempts, and what the last one finished. */
static int renc_jsql_load_attempts(struct renc_journal_sqlite *j, struct renc_journal_status *s)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "SELECT count(*), max(n) FROM attempts");
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->attempts = (unsigned)sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (rc || !s->attempts)
        return rc;
    if ((rc = renc_jsql_prepare(j, &st, "SELECT started, coalesce(ended, 0),"
                                        " coalesce(outcome, '') "
                                        "FROM attempts ORDER BY n DESC LIMIT 1")))
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->last_started = sqlite3_column_double(st, 0);
        s->last_ended = sqlite3_column_double(st, 1);
        snprintf(s->last_outcome, sizeof s->last_outcome, "%s",
                 (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    if ((rc = renc_jsql_prepare(j, &st, "SELECT count(*), coalesce(sum(size), 0) FROM blobs "
                                        "WHERE finished >= ? AND state <> 'pending'")) == 0) {
        sqlite3_bind_double(st, 1, s->last_started);
        if (sqlite3_step(st) == SQLITE_ROW) {
            s->last_blobs = (uint64_t)sqlite3_column_int64(st, 0);
            s->last_bytes = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    return rc;
}

/* Alive when someone holds the lock (asked by a reader: the run's own
 * process is the holder). */
static void renc_jsql_load_holder(struct renc_journal_sqlite *j, struct renc_journal_status *s)
{
    char lp[4200];
    snprintf(lp, sizeof lp, "%s.lock", j->path);
    int fd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        s->running = 1;
        s->holder_pid = renc_read_holder(fd);
    }
    close(fd);
}

static int renc_jsql_status(struct renc_journal *base, struct renc_journal_status *s)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    int rc = renc_jsql_load_run(j, s);
    if (rc == 0)
        rc = renc_jsql_load_counts(j, s);
    if (rc == 0)
        rc = renc_jsql_load_attempts(j, s);
    pthread_mutex_unlock(&j->lock);
    if (rc == 0 && base->readonly)
        renc_jsql_load_holder(j, s);
    return rc;
}

/* ---- the run ---------------------------------------------------------- */

/* A new run with params p, forgetting any earlier one (inside start's
 * transaction). */
static int renc_jsql_new_run(struct renc_journal_sqlite *j, const struct renc_journal_params *p,
                             double now)
{
    uint8_t id[8];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
        return -errno;
    for (int i = 0; i < 8; i++)
        snprintf(j->base.run_id + 2 * i, 3, "%02x", id[i]);
    int rc = renc_jsql_exec(j, "DELETE FROM blobs; DELETE FROM attempts; "
                               "DELETE FROM header_intents; DELETE FROM header_settled; "
                               "DELETE FROM run;");
    sqlite3_stmt *st = NULL;
    if (rc == 0 &&
        (rc = renc_jsql_prepare(j, &st, "INSERT INTO run(id, run_id, mode, target, keep_old,"
                                        " drop_refs, out_dir, sources, created, updated,"
                                        " shard, name, listed)"
                                        " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) == 0) {
        sqlite3_bind_text(st, 1, j->base.run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->mode, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, p->target, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, p->keep_old);
        sqlite3_bind_text(st, 5, p->drop, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, p->out, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, p->sources, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 8, now);
        sqlite3_bind_double(st, 9, now);
        sqlite3_bind_text(st, 10, p->shard ? p->shard : "", -1, SQLITE_STATIC);
        /* A named run is listed into the journal in parts: unlisted until
         * its listing ends; an unnamed one is entered whole (enlist). */
        const char *name = p->name ? p->name : "";
        sqlite3_bind_text(st, 11, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 12, name[0] ? 0 : 1);
        rc = renc_jsql_rc(sqlite3_step(st));
        sqlite3_finalize(st);
    }
    return rc;
}

/* The run in the journal, resumed (inside start's transaction). */
static int renc_jsql_resume_run(struct renc_journal_sqlite *j)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "SELECT run_id FROM run WHERE id = 1");
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(j->base.run_id, sizeof j->base.run_id, "%s",
                 (const char *)sqlite3_column_text(st, 0));
    else
        rc = -RENC_E_BAD_JOURNAL;
    sqlite3_finalize(st);
    return rc;
}

static int renc_jsql_start(struct renc_journal *base, const struct renc_journal_params *p,
                           int resume)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    double now = renc_jsql_now();
    int rc = renc_jsql_exec(j, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = resume ? renc_jsql_resume_run(j) : renc_jsql_new_run(j, p, now);
    /* A run killed without closing its attempt is closed as "crashed". */
    if (rc == 0)
        rc = renc_jsql_exec(j, "UPDATE attempts SET outcome = 'crashed' WHERE ended IS NULL");
    if (rc == 0 &&
        (rc = renc_jsql_prepare(j, &st, "INSERT INTO attempts(pid, started) VALUES (?, ?)")) ==
            0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)getpid());
        sqlite3_bind_double(st, 2, now);
        rc = renc_jsql_rc(sqlite3_step(st));
        sqlite3_finalize(st);
        j->attempt = sqlite3_last_insert_rowid(j->db);
    }
    rc = renc_jsql_end(j, rc);
    if (rc == 0)
        j->claimed_to = 0; /* a new attempt claims from the start */
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static int renc_jsql_end_attempt(struct renc_journal *base, const char *outcome)
{
    struct renc_journal_sqlite *j = renc_jsql(base);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int rc = renc_jsql_prepare(j, &st, "UPDATE attempts SET ended = ?, outcome = ? WHERE n = ?");
    if (rc == 0) {
        sqlite3_bind_double(st, 1, renc_jsql_now());
        sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, j->attempt);
        rc = renc_jsql_rc(sqlite3_step(st));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

const struct renc_journal_ops renc_journal_sqlite_ops = {
    .name = "sqlite",
    .scheme = NULL, /* a path: every location no other kind claims */
    .open = renc_jsql_open,
    .open_readonly = renc_jsql_open_readonly,
    .close = renc_jsql_close,
    .start = renc_jsql_start,
    .enlist = renc_jsql_enlist,
    .claim = renc_jsql_claim,
    .write_outcomes = renc_jsql_write_outcomes,
    .header_intents = renc_jsql_header_intents,
    .settle_intents = renc_jsql_settle_intents,
    .status = renc_jsql_status,
    .end = renc_jsql_end_attempt,
    .failures = renc_jsql_failures,
    .list_begin = renc_jsql_list_begin,
    .enlist_part = renc_jsql_enlist_part,
    .list_end = renc_jsql_list_end,
};
