/* state/journal.c — see journal.h; the schema is in docs/JOURNAL.md. */
#include "state/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/path.h"
#include "io/file.h"
#include "state/sqlerr.h"

#define RENC_JOURNAL_APP_ID 0x52454e43 /* "RENC" */
#define RENC_JOURNAL_SCHEMA 1

static const char *const renc_jstate_names[RENC_J_COUNT] = {
    "pending", "done", "skipped", "not_renc", "failed", "gone",
};

/* Header intents settled after a crash, one row per blob: what recovery
 * found (enum renc_settle).  Added beside the schema-1 tables: a journal
 * made before it gets it when a run opens it (older binaries ignore it). */
#define RENC_JOURNAL_SETTLED_TABLE                                                          \
    "CREATE TABLE IF NOT EXISTS header_settled("                                          \
    "  blob_id INTEGER PRIMARY KEY, path TEXT NOT NULL, outcome TEXT NOT NULL"            \
    "    CHECK (outcome IN ('rewritten','as_it_was','completed','gone','replaced')),"     \
    "  settled REAL NOT NULL);"

static const char *const renc_settle_names[RENC_SETTLE_COUNT] = {
    "rewritten", "as_it_was", "completed", "gone", "replaced",
};

const char *renc_settle_name(enum renc_settle s)
{
    return (unsigned)s < RENC_SETTLE_COUNT ? renc_settle_names[s] : "?";
}

static const char renc_journal_schema[] =
    "CREATE TABLE IF NOT EXISTS run("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  run_id TEXT NOT NULL, mode TEXT NOT NULL, target TEXT NOT NULL,"
    "  keep_old INTEGER NOT NULL, drop_refs TEXT NOT NULL, out_dir TEXT NOT NULL,"
    "  sources TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS attempts("
    "  n INTEGER PRIMARY KEY, pid INTEGER NOT NULL, started REAL NOT NULL,"
    "  ended REAL, outcome TEXT);"
    "CREATE TABLE IF NOT EXISTS blobs("
    "  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending','done','skipped','not_renc','failed','gone')),"
    "  old_ref TEXT, new_ref TEXT, error TEXT, code INTEGER,"
    "  tries INTEGER NOT NULL DEFAULT 0, finished REAL, seen INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS blobs_state ON blobs(state);"
    "CREATE TABLE IF NOT EXISTS header_intents("
    "  blob_id INTEGER PRIMARY KEY, path TEXT NOT NULL, old_header BLOB NOT NULL,"
    "  new_header BLOB NOT NULL, created REAL NOT NULL);"
    RENC_JOURNAL_SETTLED_TABLE;

struct renc_jnote {
    int64_t row;
    int rc;
    uint8_t st;
    char *old_ref, *new_ref;
};

struct renc_journal {
    sqlite3 *db;
    pthread_mutex_t lock;       /* the connection */
    pthread_mutex_t notes_lock; /* the queue of notes: workers never wait on a commit */
    char path[4096];
    int lock_fd;
    int lock_created; /* this process made PATH.lock (removed if the open fails) */
    int readonly;
    char run_id[17];
    int64_t attempt;
    struct renc_jnote *notes;
    size_t nnotes, cap;
    char *p_mode, *p_target, *p_drop, *p_out, *p_sources;
};

static const char *renc_jstate_name(enum renc_jstate s)
{
    return (unsigned)s < RENC_J_COUNT ? renc_jstate_names[s] : "?";
}

static enum renc_jstate renc_jstate_parse(const char *s)
{
    for (int i = 0; i < RENC_J_COUNT; i++)
        if (s && strcmp(s, renc_jstate_names[i]) == 0)
            return (enum renc_jstate)i;
    return RENC_J_PENDING;
}

static double renc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SQLite's result codes in the project's terms. */
static int renc_sql_rc(int rc)
{
    return renc_sqlite_rc(rc, -RENC_E_BAD_JOURNAL, -RENC_E_JOURNAL);
}

static int renc_exec(struct renc_journal *j, const char *sql)
{
    return renc_sql_rc(sqlite3_exec(j->db, sql, NULL, NULL, NULL));
}

static int renc_prepare(struct renc_journal *j, sqlite3_stmt **st, const char *sql)
{
    return renc_sql_rc(sqlite3_prepare_v2(j->db, sql, -1, st, NULL));
}

static char *renc_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return renc_strdup(t ? (const char *)t : "");
}

/* ---- open and close --------------------------------------------------- */

static void renc_journal_free_params(struct renc_journal *j)
{
    renc_free(j->p_mode);
    renc_free(j->p_target);
    renc_free(j->p_drop);
    renc_free(j->p_out);
    renc_free(j->p_sources);
    j->p_mode = j->p_target = j->p_drop = j->p_out = j->p_sources = NULL;
}

void renc_journal_close(struct renc_journal *j)
{
    if (!j)
        return;
    if (j->db) {
        if (!j->readonly)
            renc_journal_flush(j);
        sqlite3_close(j->db);
    }
    for (size_t i = 0; i < j->nnotes; i++) {
        renc_free(j->notes[i].old_ref);
        renc_free(j->notes[i].new_ref);
    }
    renc_free(j->notes);
    renc_journal_free_params(j);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* drops the flock */
    pthread_mutex_destroy(&j->lock);
    pthread_mutex_destroy(&j->notes_lock);
    renc_free(j);
}

const char *renc_journal_run_id(const struct renc_journal *j)
{
    return j->run_id;
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
static int renc_journal_lock(struct renc_journal *j, long *holder_pid)
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
static int renc_journal_note_holder(struct renc_journal *j)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lock_fd, 0) != 0 || pwrite(j->lock_fd, pid, (size_t)n, 0) != n)
        return -errno;
    return 0;
}

static int renc_journal_check_file(const char *path, int create)
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

static int renc_journal_setup(struct renc_journal *j)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(j, &st, "PRAGMA application_id");
    int app = 0;
    if (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        app = sqlite3_column_int(st, 0);
    else if (rc == 0)
        rc = renc_sql_rc(sqlite3_errcode(j->db));
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (app == 0) {
        /* A new file (or an empty one): it becomes a journal. */
        sqlite3_stmt *cnt = NULL;
        int tables = -1;
        if (renc_prepare(j, &cnt, "SELECT count(*) FROM sqlite_schema") == 0 &&
            sqlite3_step(cnt) == SQLITE_ROW)
            tables = sqlite3_column_int(cnt, 0);
        sqlite3_finalize(cnt);
        if (tables != 0)
            return -RENC_E_BAD_JOURNAL;
        if (j->readonly)
            return -RENC_E_BAD_JOURNAL;
        /* WAL first (it cannot change inside a transaction, and a file left
         * in WAL mode with nothing else is still "new"); then the marks and
         * the tables in one transaction, so a crash leaves either an empty
         * file or a whole journal. */
        if ((rc = renc_exec(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")))
            return rc;
        char sql[sizeof renc_journal_schema + 160];
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE; PRAGMA application_id=%d; PRAGMA user_version=%d; %s COMMIT;",
                 RENC_JOURNAL_APP_ID, RENC_JOURNAL_SCHEMA, renc_journal_schema);
        if ((rc = renc_exec(j, sql))) {
            sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        return 0;
    } else if (app != RENC_JOURNAL_APP_ID) {
        return -RENC_E_BAD_JOURNAL;
    } else {
        int ver = 0;
        if (renc_prepare(j, &st, "PRAGMA user_version") == 0 && sqlite3_step(st) == SQLITE_ROW)
            ver = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (ver != RENC_JOURNAL_SCHEMA)
            return -RENC_E_BAD_JOURNAL;
        /* The catalog has the same marks: a journal is told by its tables. */
        int tables = 0;
        if (renc_prepare(j, &st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                                 " name IN ('run', 'attempts', 'blobs', 'header_intents')") == 0 &&
            sqlite3_step(st) == SQLITE_ROW)
            tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (tables != 4)
            return -RENC_E_BAD_JOURNAL;
    }
    if (j->readonly)
        return 0;
    /* WAL: readers (status) never block the run.  synchronous=FULL makes
     * each commit durable: there are a few per second, and header intents
     * must be durable before their overwrite. */
    rc = renc_exec(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    return rc ? rc : renc_exec(j, RENC_JOURNAL_SETTLED_TABLE);
}

static int renc_journal_new(struct renc_journal **out, const char *path, int readonly)
{
    struct renc_journal *j = renc_calloc(1, sizeof *j);
    RENC_RETURN_IF(!j, -RENC_E_NOMEM);
    j->lock_fd = -1;
    j->readonly = readonly;
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->notes_lock, NULL);
    int n = snprintf(j->path, sizeof j->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof j->path) {
        renc_journal_close(j);
        return -ENAMETOOLONG;
    }
    *out = j;
    return 0;
}

static int renc_journal_connect(struct renc_journal *j)
{
    int flags = j->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int rc = renc_sql_rc(sqlite3_open_v2(j->path, &j->db, flags | SQLITE_OPEN_FULLMUTEX, NULL));
    if (rc == 0)
        sqlite3_busy_timeout(j->db, 10000);
    if (rc == 0)
        rc = renc_journal_setup(j);
    return rc;
}

int renc_journal_open(struct renc_journal **out, const char *path, int create, long *holder_pid)
{
    struct renc_journal *j;
    int rc = renc_journal_new(&j, path, 0);
    if (rc)
        return rc;
    if (holder_pid)
        *holder_pid = 0;
    /* The lock first: a second run learns at once that the first is alive. */
    if ((rc = renc_journal_lock(j, holder_pid)) == 0 &&
        (rc = renc_journal_check_file(path, create)) == 0 && (rc = renc_journal_connect(j)) == 0)
        rc = renc_journal_note_holder(j);
    if (rc) {
        if (j->lock_created && rc != -RENC_E_BUSY) {
            /* Nothing of ours is left beside a file that is not a journal. */
            char lp[4200];
            snprintf(lp, sizeof lp, "%s.lock", j->path);
            unlink(lp);
        }
        renc_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

int renc_journal_open_readonly(struct renc_journal **out, const char *path)
{
    struct renc_journal *j;
    int rc = renc_journal_new(&j, path, 1);
    if (rc)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -RENC_E_BAD_JOURNAL;
    if (rc == 0)
        rc = renc_journal_connect(j);
    if (rc) {
        renc_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

/* ---- status ----------------------------------------------------------- */

static int renc_journal_load_run(struct renc_journal *j, struct renc_journal_status *s)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(j, &st,
                          "SELECT run_id, mode, target, keep_old, drop_refs, out_dir, sources,"
                          " created, updated FROM run WHERE id = 1");
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    renc_journal_free_params(j);
    if (step == SQLITE_ROW) {
        s->has_run = 1;
        snprintf(s->run_id, sizeof s->run_id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(j->run_id, sizeof j->run_id, "%s", s->run_id);
        j->p_mode = renc_col_dup(st, 1);
        j->p_target = renc_col_dup(st, 2);
        s->params.keep_old = sqlite3_column_int(st, 3);
        j->p_drop = renc_col_dup(st, 4);
        j->p_out = renc_col_dup(st, 5);
        j->p_sources = renc_col_dup(st, 6);
        s->created = sqlite3_column_double(st, 7);
        s->updated = sqlite3_column_double(st, 8);
        if (!j->p_mode || !j->p_target || !j->p_drop || !j->p_out || !j->p_sources)
            rc = -RENC_E_NOMEM;
        s->params.mode = j->p_mode;
        s->params.target = j->p_target;
        s->params.drop = j->p_drop;
        s->params.out = j->p_out;
        s->params.sources = j->p_sources;
    } else if (step != SQLITE_DONE) {
        rc = renc_sql_rc(step);
    }
    sqlite3_finalize(st);
    return rc;
}

int renc_journal_status(struct renc_journal *j, struct renc_journal_status *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&j->lock);
    int rc = renc_journal_load_run(j, s);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && (rc = renc_prepare(j, &st, "SELECT state, count(*), coalesce(sum(size), 0) "
                                              "FROM blobs GROUP BY state")) == 0) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            enum renc_jstate k = renc_jstate_parse((const char *)sqlite3_column_text(st, 0));
            s->count[k] += (uint64_t)sqlite3_column_int64(st, 1);
            s->bytes[k] += (uint64_t)sqlite3_column_int64(st, 2);
        }
        if (step != SQLITE_DONE)
            rc = renc_sql_rc(step);
        sqlite3_finalize(st);
    }
    if (rc == 0 && (rc = renc_prepare(j, &st, "SELECT count(*) FROM header_intents")) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->header_intents = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    /* A journal made before header_settled existed, read by status, has none. */
    if (rc == 0 && renc_prepare(j, &st, "SELECT outcome, count(*) FROM header_settled "
                                        "GROUP BY outcome") == 0) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *o = (const char *)sqlite3_column_text(st, 0);
            for (int k = 0; k < RENC_SETTLE_COUNT; k++)
                if (o && strcmp(o, renc_settle_names[k]) == 0)
                    s->settled[k] += (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0 && (rc = renc_prepare(j, &st, "SELECT count(*), max(n) FROM attempts")) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->attempts = (unsigned)sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (rc == 0 && s->attempts &&
        (rc = renc_prepare(j, &st, "SELECT started, coalesce(ended, 0), coalesce(outcome, '') "
                                   "FROM attempts ORDER BY n DESC LIMIT 1")) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            s->last_started = sqlite3_column_double(st, 0);
            s->last_ended = sqlite3_column_double(st, 1);
            snprintf(s->last_outcome, sizeof s->last_outcome, "%s",
                     (const char *)sqlite3_column_text(st, 2));
        }
        sqlite3_finalize(st);
        if ((rc = renc_prepare(j, &st, "SELECT count(*), coalesce(sum(size), 0) FROM blobs "
                                       "WHERE finished >= ? AND state <> 'pending'")) == 0) {
            sqlite3_bind_double(st, 1, s->last_started);
            if (sqlite3_step(st) == SQLITE_ROW) {
                s->last_blobs = (uint64_t)sqlite3_column_int64(st, 0);
                s->last_bytes = (uint64_t)sqlite3_column_int64(st, 1);
            }
            sqlite3_finalize(st);
        }
    }
    pthread_mutex_unlock(&j->lock);
    if (rc == 0 && j->readonly) {
        /* Alive when someone holds the lock. */
        char lp[4200];
        snprintf(lp, sizeof lp, "%s.lock", j->path);
        int fd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
                s->running = 1;
                s->holder_pid = renc_read_holder(fd);
            }
            close(fd);
        }
    }
    return rc;
}

int renc_journal_unfinished(const struct renc_journal_status *s)
{
    return s->has_run &&
           (s->count[RENC_J_PENDING] || s->count[RENC_J_FAILED] || s->header_intents);
}

/* ---- the run ---------------------------------------------------------- */

int renc_journal_start(struct renc_journal *j, const struct renc_journal_params *p, int resume)
{
    pthread_mutex_lock(&j->lock);
    double now = renc_now();
    int rc = renc_exec(j, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = NULL;
    if (rc == 0 && !resume) {
        uint8_t id[8];
        if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
            rc = -errno;
        for (int i = 0; i < 8; i++)
            snprintf(j->run_id + 2 * i, 3, "%02x", id[i]);
        if (rc == 0)
            rc = renc_exec(j, "DELETE FROM blobs; DELETE FROM attempts; "
                              "DELETE FROM header_intents; DELETE FROM header_settled; "
                              "DELETE FROM run;");
        if (rc == 0 &&
            (rc = renc_prepare(j, &st, "INSERT INTO run(id, run_id, mode, target, keep_old,"
                                       " drop_refs, out_dir, sources, created, updated)"
                                       " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) == 0) {
            sqlite3_bind_text(st, 1, j->run_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, p->mode, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, p->target, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 4, p->keep_old);
            sqlite3_bind_text(st, 5, p->drop, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 6, p->out, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 7, p->sources, -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 8, now);
            sqlite3_bind_double(st, 9, now);
            rc = renc_sql_rc(sqlite3_step(st));
            sqlite3_finalize(st);
        }
    } else if (rc == 0) {
        if ((rc = renc_prepare(j, &st, "SELECT run_id FROM run WHERE id = 1")) == 0) {
            if (sqlite3_step(st) == SQLITE_ROW)
                snprintf(j->run_id, sizeof j->run_id, "%s",
                         (const char *)sqlite3_column_text(st, 0));
            else
                rc = -RENC_E_BAD_JOURNAL;
            sqlite3_finalize(st);
        }
    }
    /* A run killed without closing its attempt is closed as "crashed". */
    if (rc == 0)
        rc = renc_exec(j, "UPDATE attempts SET outcome = 'crashed' WHERE ended IS NULL");
    if (rc == 0 &&
        (rc = renc_prepare(j, &st, "INSERT INTO attempts(pid, started) VALUES (?, ?)")) == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)getpid());
        sqlite3_bind_double(st, 2, now);
        rc = renc_sql_rc(sqlite3_step(st));
        sqlite3_finalize(st);
        j->attempt = sqlite3_last_insert_rowid(j->db);
    }
    rc = rc ? rc : renc_exec(j, "COMMIT");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* An absolute, lexically tidy path: the journal's key for a blob, the same
 * whatever directory a rerun is started from. */
static int renc_abs_path(const char *cwd, const char *path, char *out, size_t max)
{
    char tmp[8192];
    int n = path[0] == '/' ? snprintf(tmp, sizeof tmp, "%s", path)
                           : snprintf(tmp, sizeof tmp, "%s/%s", cwd, path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    return renc_path_tidy(out, max, tmp, RENC_PATH_ROOTED);
}

int renc_journal_register(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                          uint8_t *finished)
{
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int rc = renc_exec(j, "BEGIN IMMEDIATE; UPDATE blobs SET seen = 0;");
    if (rc == 0)
        rc = renc_prepare(j, &st,
                          "INSERT INTO blobs(path, size) VALUES (?, ?) ON CONFLICT(path) DO UPDATE"
                          " SET seen = 1,"
                          "  size = CASE WHEN state IN ('pending', 'failed', 'gone')"
                          "         THEN excluded.size ELSE size END,"
                          "  state = CASE WHEN state = 'gone' THEN 'pending' ELSE state END"
                          " RETURNING id, state");
    for (size_t i = 0; rc == 0 && i < scan->count; i++) {
        char abs[4096];
        if ((rc = renc_abs_path(cwd, scan->items[i].path, abs, sizeof abs)))
            break;
        sqlite3_bind_text(st, 1, abs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)scan->items[i].size);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            rows[i] = sqlite3_column_int64(st, 0);
            enum renc_jstate s = renc_jstate_parse((const char *)sqlite3_column_text(st, 1));
            finished[i] = s == RENC_J_DONE || s == RENC_J_SKIPPED || s == RENC_J_NOT_RENC;
            step = sqlite3_step(st);
        }
        if (step != SQLITE_DONE)
            rc = renc_sql_rc(step);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    /* A blob whose in-place header write could not be settled is held: the
     * run must not touch it until someone looks (its intent says how). */
    if (rc == 0 && (rc = renc_prepare(j, &st, "SELECT blob_id FROM header_intents")) == 0) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t held = sqlite3_column_int64(st, 0);
            for (size_t i = 0; i < scan->count; i++)
                if (rows[i] == held)
                    finished[i] = 2;
        }
        if (step != SQLITE_DONE)
            rc = renc_sql_rc(step);
        sqlite3_finalize(st);
    }
    if (rc == 0)
        rc = renc_exec(j, "UPDATE blobs SET state = 'gone' WHERE seen = 0 AND "
                          "state IN ('pending', 'failed'); COMMIT;");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

void renc_journal_note(struct renc_journal *j, int64_t row, enum renc_jstate st, int rc,
                       const char *old_ref, const char *new_ref)
{
    pthread_mutex_lock(&j->notes_lock);
    if (j->nnotes == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 256;
        struct renc_jnote *grown = renc_realloc(j->notes, cap * sizeof *grown);
        if (!grown) {
            /* Not noted: a resume reads this blob's header again. */
            pthread_mutex_unlock(&j->notes_lock);
            return;
        }
        j->notes = grown;
        j->cap = cap;
    }
    struct renc_jnote *n = &j->notes[j->nnotes++];
    n->row = row;
    n->st = (uint8_t)st;
    n->rc = rc;
    n->old_ref = old_ref && old_ref[0] ? renc_strdup(old_ref) : NULL;
    n->new_ref = new_ref && new_ref[0] ? renc_strdup(new_ref) : NULL;
    pthread_mutex_unlock(&j->notes_lock);
}

/* Gives queued notes back to the queue, ahead of newer ones (a failed
 * flush keeps them for the next). */
static void renc_journal_requeue(struct renc_journal *j, struct renc_jnote *notes, size_t n)
{
    pthread_mutex_lock(&j->notes_lock);
    size_t total = n + j->nnotes;
    struct renc_jnote *all = renc_realloc(notes, (total + 1) * sizeof *all);
    if (all) {
        if (j->nnotes)
            memcpy(all + n, j->notes, j->nnotes * sizeof *all);
        renc_free(j->notes);
        j->notes = all;
        j->nnotes = total;
        j->cap = total + 1;
        notes = NULL;
        n = 0;
    }
    pthread_mutex_unlock(&j->notes_lock);
    for (size_t i = 0; i < n; i++) { /* could not keep them: a resume reads the headers */
        renc_free(notes[i].old_ref);
        renc_free(notes[i].new_ref);
    }
    renc_free(notes);
}

int renc_journal_flush(struct renc_journal *j)
{
    if (j->readonly)
        return 0;
    pthread_mutex_lock(&j->lock);
    /* Take the queue as it is; workers go on noting into a fresh one while
     * this commits (the commit waits for the disk). */
    pthread_mutex_lock(&j->notes_lock);
    struct renc_jnote *notes = j->notes;
    size_t nnotes = j->nnotes;
    j->notes = NULL;
    j->nnotes = j->cap = 0;
    pthread_mutex_unlock(&j->notes_lock);
    if (nnotes == 0) {
        renc_free(notes);
        pthread_mutex_unlock(&j->lock);
        return 0;
    }
    int rc = renc_fault_check("journal");
    double now = renc_now();
    sqlite3_stmt *up = NULL, *del = NULL, *run = NULL;
    if (rc == 0)
        rc = renc_exec(j, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = renc_prepare(j, &up, "UPDATE blobs SET state = ?, code = ?, error = ?,"
                                  " old_ref = coalesce(?, old_ref), new_ref = ?,"
                                  " tries = tries + 1, finished = ? WHERE id = ?");
    if (rc == 0)
        rc = renc_prepare(j, &del, "DELETE FROM header_intents WHERE blob_id = ?");
    if (rc == 0)
        rc = renc_prepare(j, &run, "UPDATE run SET updated = ? WHERE id = 1");
    for (size_t i = 0; rc == 0 && i < nnotes; i++) {
        const struct renc_jnote *n = &notes[i];
        sqlite3_bind_text(up, 1, renc_jstate_name((enum renc_jstate)n->st), -1, SQLITE_STATIC);
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
        rc = renc_sql_rc(sqlite3_step(up));
        sqlite3_reset(up);
        if (rc == 0 && (n->st == RENC_J_DONE || n->rc == -RENC_E_CHANGED)) {
            /* Its new header is durable, or the blob was found replaced
             * before anything was written: the intent has done its work. */
            sqlite3_bind_int64(del, 1, n->row);
            rc = renc_sql_rc(sqlite3_step(del));
            sqlite3_reset(del);
        }
    }
    if (rc == 0) {
        sqlite3_bind_double(run, 1, now);
        rc = renc_sql_rc(sqlite3_step(run));
    }
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    sqlite3_finalize(run);
    rc = rc ? rc : renc_exec(j, "COMMIT");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    if (rc) {
        renc_journal_requeue(j, notes, nnotes);
        return rc;
    }
    for (size_t i = 0; i < nnotes; i++) {
        renc_free(notes[i].old_ref);
        renc_free(notes[i].new_ref);
    }
    renc_free(notes);
    return 0;
}

int renc_journal_header_intents(struct renc_journal *j, size_t n, const int64_t *rows,
                                const char *const *paths, const uint8_t *const *old_hdr,
                                const uint8_t *const *new_hdr, const size_t *len)
{
    /* Absolute: a resume may start from another directory. */
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    pthread_mutex_lock(&j->lock);
    double now = renc_now();
    sqlite3_stmt *st = NULL;
    int rc = renc_exec(j, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = renc_prepare(j, &st, "INSERT OR REPLACE INTO header_intents(blob_id, path,"
                                  " old_header, new_header, created) VALUES (?, ?, ?, ?, ?)");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char abs[4096];
        if ((rc = renc_abs_path(cwd, paths[i], abs, sizeof abs)))
            break;
        sqlite3_bind_int64(st, 1, rows[i]);
        sqlite3_bind_text(st, 2, abs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 3, old_hdr[i], (int)len[i], SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, new_hdr[i], (int)len[i], SQLITE_STATIC);
        sqlite3_bind_double(st, 5, now);
        rc = renc_sql_rc(sqlite3_step(st));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    /* synchronous=FULL: durable when COMMIT returns. */
    if (rc == 0)
        rc = renc_fault_check("journal");
    rc = rc ? rc : renc_exec(j, "COMMIT");
    if (rc)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- recovery of in-place header writes ------------------------------- */

enum renc_hdr_found { RENC_HDR_OLD, RENC_HDR_NEW, RENC_HDR_TORN, RENC_HDR_NEITHER };

/* What the whole header region on disk holds. */
static enum renc_hdr_found renc_classify(const uint8_t *disk, const uint8_t *old_h,
                                         const uint8_t *new_h, size_t len)
{
    if (memcmp(disk, new_h, len) == 0)
        return RENC_HDR_NEW;
    if (memcmp(disk, old_h, len) == 0)
        return RENC_HDR_OLD;
    /* A write cut short by a crash leaves each sector old or new. */
    for (size_t off = 0; off < len; off += 512) {
        size_t n = len - off < 512 ? len - off : 512;
        if (memcmp(disk + off, new_h + off, n) != 0 && memcmp(disk + off, old_h + off, n) != 0)
            return RENC_HDR_NEITHER;
    }
    return RENC_HDR_TORN;
}

/* Reads the first len bytes of the file at path into disk (*got of them)
 * and leaves it open in *fd_out, or says why there is nothing to read:
 * 1 gone (no such file), 2 not a regular file (a symlink, a folder, a
 * device: never opened for writing, never followed), or a negative error
 * (the file is there but cannot be read). */
static int renc_settle_read(const char *path, uint8_t *disk, size_t len, size_t *got,
                            int *fd_out)
{
    /* O_NONBLOCK: a FIFO put in the blob's place must not hang the run. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 1 : errno == ELOOP ? 2 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 2;
    }
    int rc = renc_file_pread_full(fd, disk, len, 0, got);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* Writes the new header over a torn one.  The file is opened again for
 * writing: it must still be the inode just read (nothing renamed over the
 * blob in between), and still torn. */
static int renc_settle_complete(const char *path, int rfd, const uint8_t *old_h,
                                const uint8_t *new_h, uint8_t *disk, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat a, b;
    size_t got = 0;
    int rc = fstat(rfd, &a) != 0 || fstat(fd, &b) != 0 ? -errno : 0;
    if (rc == 0 && (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(b.st_mode)))
        rc = 1; /* replaced in between */
    if (rc == 0)
        rc = renc_file_pread_full(rfd, disk, len, 0, &got);
    if (rc == 0 && (got < len || renc_classify(disk, old_h, new_h, len) != RENC_HDR_TORN))
        rc = 1;
    if (rc == 0) /* at offset 0: the file was just opened */
        rc = renc_file_write_full(fd, new_h, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Settles one intent: returns its outcome (enum renc_settle), or a negative
 * error when the blob cannot be read or its repair not made durable (the
 * intent then stays open). */
static int renc_settle_one(const char *path, const uint8_t *old_h, const uint8_t *new_h,
                           size_t len)
{
    uint8_t *disk = renc_malloc(len);
    RENC_RETURN_IF(!disk, -RENC_E_NOMEM);
    size_t got = 0;
    int fd = -1;
    int rc = renc_settle_read(path, disk, len, &got, &fd);
    if (rc == 1 || rc == 2) {
        renc_free(disk);
        return rc == 1 ? RENC_SETTLE_GONE : RENC_SETTLE_REPLACED;
    }
    if (rc < 0) {
        renc_free(disk);
        return rc;
    }
    /* Shorter than the header: an overwrite at offset 0 never shrinks a file. */
    enum renc_hdr_found found =
        got < len ? RENC_HDR_NEITHER : renc_classify(disk, old_h, new_h, len);
    int out = RENC_SETTLE_REPLACED;
    if (found == RENC_HDR_OLD) {
        out = RENC_SETTLE_AS_IT_WAS;
    } else if (found == RENC_HDR_NEW || found == RENC_HDR_TORN) {
        /* The new header was verified before it was journaled: complete it,
         * and make it durable (a header read back as new may still be only
         * in the page cache of a run that was killed). */
        int w = found == RENC_HDR_TORN
                    ? renc_settle_complete(path, fd, old_h, new_h, disk, len)
                    : 0;
        if (w == 1) {
            out = RENC_SETTLE_REPLACED; /* changed under us: left as it is */
        } else {
            if (w == 0)
                w = renc_fault_check("fsync");
            if (w == 0 && fdatasync(fd) != 0)
                w = -errno;
            out = w ? w
                    : found == RENC_HDR_TORN ? RENC_SETTLE_COMPLETED : RENC_SETTLE_REWRITTEN;
        }
    }
    renc_free(disk);
    close(fd); /* read-only: what was written is durable by the fdatasync above */
    return out;
}

/* The blob's state once its intent is settled: done when its new header is
 * durable, gone with its file, otherwise to be looked at again. */
static enum renc_jstate renc_settled_state(int out)
{
    switch (out) {
    case RENC_SETTLE_REWRITTEN:
    case RENC_SETTLE_COMPLETED: return RENC_J_DONE;
    case RENC_SETTLE_GONE: return RENC_J_GONE;
    case RENC_SETTLE_AS_IT_WAS:
    case RENC_SETTLE_REPLACED: return RENC_J_PENDING;
    default: return RENC_J_FAILED;
    }
}

static void renc_recover_count(struct renc_recover_stats *s, int out)
{
    switch (out) {
    case RENC_SETTLE_REWRITTEN: s->found_new++; break;
    case RENC_SETTLE_AS_IT_WAS: s->found_old++; break;
    case RENC_SETTLE_COMPLETED: s->repaired++; break;
    case RENC_SETTLE_GONE: s->gone++; break;
    case RENC_SETTLE_REPLACED: s->replaced++; break;
    default: s->unresolved++; break;
    }
}

int renc_journal_recover(struct renc_journal *j, struct renc_recover_stats *stats,
                         void (*report)(void *arg, const char *path, enum renc_settle what,
                                        int rc),
                         void *arg)
{
    memset(stats, 0, sizeof *stats);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *sel = NULL, *fin = NULL, *del = NULL, *rec = NULL;
    /* The blob's own row has its absolute path (intents written before
     * they held one may be relative to the crashed run's directory). */
    int rc = renc_prepare(j, &sel, "SELECT i.blob_id, coalesce(b.path, i.path), i.old_header,"
                                   " i.new_header FROM header_intents i"
                                   " LEFT JOIN blobs b ON b.id = i.blob_id ORDER BY i.blob_id");
    if (rc == 0)
        rc = renc_prepare(j, &fin, "UPDATE blobs SET state = ?, code = ?, error = ?,"
                                   " finished = ? WHERE id = ?");
    if (rc == 0)
        rc = renc_prepare(j, &del, "DELETE FROM header_intents WHERE blob_id = ?");
    if (rc == 0)
        rc = renc_prepare(j, &rec, "INSERT OR REPLACE INTO header_settled(blob_id, path,"
                                   " outcome, settled) VALUES (?, ?, ?, ?)");
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t row = sqlite3_column_int64(sel, 0);
        const char *path = (const char *)sqlite3_column_text(sel, 1);
        const uint8_t *old_h = sqlite3_column_blob(sel, 2);
        int len = sqlite3_column_bytes(sel, 2);
        const uint8_t *new_h = sqlite3_column_blob(sel, 3);
        if (len <= 0 || sqlite3_column_bytes(sel, 3) != len || !path) {
            rc = -RENC_E_BAD_JOURNAL;
            break;
        }
        int out = renc_settle_one(path, old_h, new_h, (size_t)len);
        renc_recover_count(stats, out);
        double now = renc_now();
        /* Each outcome in one transaction (autocommit): the blob's state,
         * the settled record and the intent's removal together. */
        rc = renc_exec(j, "BEGIN IMMEDIATE");
        if (rc)
            break;
        sqlite3_bind_text(fin, 1, renc_jstate_name(renc_settled_state(out)), -1, SQLITE_STATIC);
        if (out < 0) {
            sqlite3_bind_int(fin, 2, -out);
            sqlite3_bind_text(fin, 3, renc_strerror(out), -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(fin, 2);
            sqlite3_bind_null(fin, 3);
        }
        sqlite3_bind_double(fin, 4, now);
        sqlite3_bind_int64(fin, 5, row);
        rc = renc_sql_rc(sqlite3_step(fin));
        sqlite3_reset(fin);
        if (rc == 0 && out >= 0) {
            sqlite3_bind_int64(rec, 1, row);
            sqlite3_bind_text(rec, 2, path, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(rec, 3, renc_settle_name((enum renc_settle)out), -1,
                              SQLITE_STATIC);
            sqlite3_bind_double(rec, 4, now);
            rc = renc_sql_rc(sqlite3_step(rec));
            sqlite3_reset(rec);
        }
        if (rc == 0 && out >= 0) {
            sqlite3_bind_int64(del, 1, row);
            rc = renc_sql_rc(sqlite3_step(del));
            sqlite3_reset(del);
        }
        rc = rc ? rc : renc_exec(j, "COMMIT");
        if (rc) {
            sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
            break;
        }
        /* A header found old or new is routine after a crash; any other
         * outcome is worth a line, once: the run that settles it says so. */
        if (report && out != RENC_SETTLE_REWRITTEN && out != RENC_SETTLE_AS_IT_WAS)
            report(arg, path, out < 0 ? RENC_SETTLE_COUNT : (enum renc_settle)out,
                   out < 0 ? out : 0);
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = renc_sql_rc(step);
    sqlite3_finalize(sel);
    sqlite3_finalize(fin);
    sqlite3_finalize(del);
    sqlite3_finalize(rec);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- the end and the failures ----------------------------------------- */

int renc_journal_end(struct renc_journal *j, const char *outcome)
{
    int rc = renc_journal_flush(j);
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int r2 = renc_prepare(j, &st, "UPDATE attempts SET ended = ?, outcome = ? WHERE n = ?");
    if (r2 == 0) {
        sqlite3_bind_double(st, 1, renc_now());
        sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, j->attempt);
        r2 = renc_sql_rc(sqlite3_step(st));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&j->lock);
    return rc ? rc : r2;
}

int renc_journal_failures(struct renc_journal *j, size_t limit,
                          void (*fn)(void *arg, const char *path, const char *error, int code,
                                     const char *ref),
                          void *arg)
{
    pthread_mutex_lock(&j->lock);
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(j, &st, "SELECT path, coalesce(error, ''), coalesce(code, 0), old_ref "
                                  "FROM blobs WHERE state = 'failed' ORDER BY path LIMIT ?");
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            fn(arg, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2),
               (const char *)sqlite3_column_text(st, 3));
        if (step != SQLITE_DONE)
            rc = renc_sql_rc(step);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

int renc_journal_default_path(const char *state_dir, const char *sources, const char *out,
                              char *path, size_t max)
{
    /* FNV-1a over what identifies the run's blobs: not a secret, a name. */
    uint64_t h = 1469598103934665603ull;
    for (const char *s = sources; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
    for (const char *s = out; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    /* A readable prefix: the last component of the first source. */
    char name[33];
    size_t first = strcspn(sources, "\n");
    size_t start = first;
    while (start > 0 && sources[start - 1] != '/')
        start--;
    size_t k = 0;
    for (size_t i = start; i < first && k < sizeof name - 1; i++) {
        char c = sources[i];
        name[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '.' || c == '-' || c == '_'
                        ? c
                        : '_';
    }
    name[k] = '\0';
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s/journals", state_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    n = snprintf(path, max, "%s/%s%s%016llx.db", dir, name, k ? "-" : "", (unsigned long long)h);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}
