/* state/catalog.c — see catalog.h.
 *
 * The schema (user_version 1):
 *
 *   env(id PRIMARY KEY, region, policy CHECK IN ('mmk','byok','cmk'),
 *       key_ref, locked_by_operator, key_lock, created, policy_since,
 *       last_run, last_run_failed, last_run_at, last_run_journal)
 *   history(n INTEGER PRIMARY KEY, env, at, action, detail)
 *       one row per change, never deleted (a reset keeps them)
 *   env_keys(env, key_ref, last_set, PRIMARY KEY (env, key_ref))
 *       every key the environment has had as its policy key; last_set is
 *       the history row that last made it the policy key, so ordering by it
 *       gives "latest to oldest"
 *   config(key PRIMARY KEY, value)
 *   stage(tag PRIMARY KEY, env, op, started, state CHECK IN ('writing',
 *       'renaming'), request), stage_file(tag, n, rel),
 *       stage_note(tag, n, env, action, detail)
 *       the staged writes under way (reencrypt/stage.h); added to a
 *       catalog that lacks them when it is opened (they are empty but for
 *       an interrupted write, so an older tool that ignores them loses
 *       nothing but the completion of one)
 *
 * A journal has the same application_id and user_version; what tells the
 * two apart is the set of tables, checked on every open.
 *
 * Every mutating call is one BEGIN IMMEDIATE transaction: the write lock is
 * taken before anything is read, so a check (the cmk limit, a lock, an id
 * being free) and the write it guards cannot be split by another process.
 * A second process waits for the lock up to the busy timeout.
 */
#include "state/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/keyref.h"
#include "state/sqlerr.h"

#define RENC_CATALOG_APP_ID 0x52454e43 /* "RENC", as the journal */
#define RENC_CATALOG_SCHEMA 1
#define RENC_CATALOG_BUSY_MS 5000
#define RENC_CATALOG_FILE "catalog.db"

static const char renc_catalog_schema[] =
    "CREATE TABLE env("
    "  id TEXT PRIMARY KEY NOT NULL, region TEXT NOT NULL DEFAULT '',"
    "  policy TEXT NOT NULL CHECK (policy IN ('mmk','byok','cmk')),"
    "  key_ref TEXT NOT NULL,"
    "  locked_by_operator INTEGER NOT NULL DEFAULT 0 CHECK (locked_by_operator IN (0, 1)),"
    "  key_lock TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL, policy_since INTEGER NOT NULL,"
    "  last_run TEXT NOT NULL DEFAULT ''"
    "    CHECK (last_run IN ('', 'finished', 'failed', 'interrupted')),"
    "  last_run_failed INTEGER NOT NULL DEFAULT 0, last_run_at INTEGER NOT NULL DEFAULT 0,"
    "  last_run_journal TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE history("
    "  n INTEGER PRIMARY KEY, env TEXT NOT NULL, at INTEGER NOT NULL,"
    "  action TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX history_env ON history(env, n);"
    "CREATE TABLE env_keys("
    "  env TEXT NOT NULL, key_ref TEXT NOT NULL, last_set INTEGER NOT NULL,"
    "  PRIMARY KEY (env, key_ref));"
    "CREATE TABLE config(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);";

/* The staged writes' tables: made by every open that does not find them. */
static const char renc_catalog_stage_schema[] =
    "CREATE TABLE IF NOT EXISTS stage("
    "  tag TEXT PRIMARY KEY NOT NULL, env TEXT NOT NULL, op TEXT NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('writing', 'renaming')),"
    "  request TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS stage_file("
    "  tag TEXT NOT NULL, n INTEGER NOT NULL, rel TEXT NOT NULL, PRIMARY KEY (tag, n));"
    "CREATE TABLE IF NOT EXISTS stage_note("
    "  tag TEXT NOT NULL, n INTEGER NOT NULL, env TEXT NOT NULL, action TEXT NOT NULL,"
    "  detail TEXT NOT NULL, PRIMARY KEY (tag, n));";

/* The columns of struct renc_env, in its order. */
#define RENC_ENV_COLUMNS                                                                   \
    "id, region, policy, key_ref, locked_by_operator, key_lock, created, policy_since,"   \
    " last_run, last_run_failed, last_run_at, last_run_journal"

struct renc_catalog {
    sqlite3 *db;
    char path[4096];
};

static const char *const renc_policy_names[] = {"mmk", "byok", "cmk"};

const char *renc_policy_name(enum renc_policy p)
{
    return (unsigned)p < 3 ? renc_policy_names[p] : "?";
}

int renc_policy_parse(const char *s, enum renc_policy *out)
{
    for (unsigned i = 0; s && i < 3; i++) {
        if (strcmp(s, renc_policy_names[i]) == 0) {
            *out = (enum renc_policy)i;
            return 0;
        }
    }
    return -RENC_E_INVALID;
}

int renc_env_id_valid(const char *s)
{
    if (!s || s[0] == '\0' || s[0] == '.' || s[0] == '-')
        return 0;
    return renc_keyref_name_valid(s, RENC_ENV_ID_MAX); /* the same characters as key names */
}

/* A region: "" or up to 64 bytes of printable UTF-8 (no control characters:
 * it is printed as it is). */
static int renc_region_valid(const char *s)
{
    size_t n = strlen(s);
    if (n > RENC_REGION_MAX || !renc_utf8_valid((const uint8_t *)s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The unversioned canonical form of ref (what the catalog stores). */
static int renc_unversioned(char *out, size_t max, const char *ref)
{
    struct renc_keyref r;
    RENC_RETURN_IF(!ref, -RENC_E_BAD_KEYREF);
    int rc = renc_keyref_parse(&r, ref);
    if (rc)
        return rc;
    r.version[0] = '\0';
    return renc_keyref_format(out, max, &r);
}

static int64_t renc_unix_now(void)
{
    return (int64_t)time(NULL);
}

/* SQLite's result codes in the project's terms. */
static int renc_sql_rc(int rc)
{
    return renc_sqlite_rc(rc, -RENC_E_BAD_CATALOG, -RENC_E_CATALOG);
}

static int renc_exec(struct renc_catalog *c, const char *sql)
{
    return renc_sql_rc(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static int renc_prepare(struct renc_catalog *c, sqlite3_stmt **st, const char *sql)
{
    return renc_sql_rc(sqlite3_prepare_v2(c->db, sql, -1, st, NULL));
}

/* Runs a statement that returns no row; finalizes it. */
static int renc_step_done(sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return 0;
    return step == SQLITE_ROW ? -RENC_E_CATALOG : renc_sql_rc(step);
}

/* The first column of a one-row query as an integer (-1 when no row). */
static int renc_query_int(struct renc_catalog *c, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, sql);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        *out = -1;
    else
        rc = renc_sql_rc(step);
    sqlite3_finalize(st);
    return rc;
}

static const char *renc_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

/* Copies s into out[max], cut short at a UTF-8 character boundary when it
 * does not fit (a stored detail may be longer than the struct's field). */
static void renc_copy_text(char *out, size_t max, const char *s)
{
    size_t n = strlen(s);
    if (n >= max) {
        n = max - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* ---- transactions ----------------------------------------------------- */

static int renc_begin(struct renc_catalog *c)
{
    return renc_exec(c, "BEGIN IMMEDIATE");
}

/* Commits when rc is 0, else rolls back; returns the outcome. */
static int renc_end(struct renc_catalog *c, int rc)
{
    if (rc == 0)
        rc = renc_exec(c, "COMMIT");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Appends a history row; *n (may be NULL) receives its number. */
static int renc_history_add(struct renc_catalog *c, const char *id, const char *action,
                            const char *detail, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "INSERT INTO history(env, at, action, detail) "
                                  "VALUES (?, ?, ?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, renc_unix_now());
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
    rc = renc_step_done(st);
    if (rc == 0 && n)
        *n = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Records that key_ref became id's policy key: a history row (action,
 * detail), and key_ref in env_keys as set at that row. */
static int renc_env_key_note(struct renc_catalog *c, const char *id, const char *key_ref,
                             const char *action, const char *detail)
{
    int64_t n = 0;
    int rc = renc_history_add(c, id, action, detail, &n);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = renc_prepare(c, &st, "INSERT INTO env_keys(env, key_ref, last_set) VALUES (?, ?, ?)"
                              " ON CONFLICT (env, key_ref) DO UPDATE SET"
                              " last_set = excluded.last_set");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, n);
    return renc_step_done(st);
}

static void renc_env_from_row(struct renc_env *e, sqlite3_stmt *st)
{
    memset(e, 0, sizeof *e);
    renc_copy_text(e->id, sizeof e->id, renc_col_text(st, 0));
    renc_copy_text(e->region, sizeof e->region, renc_col_text(st, 1));
    enum renc_policy p = RENC_POLICY_MMK;
    renc_policy_parse(renc_col_text(st, 2), &p); /* the CHECK keeps it one of the three */
    e->policy = p;
    renc_copy_text(e->key_ref, sizeof e->key_ref, renc_col_text(st, 3));
    e->locked_by_operator = sqlite3_column_int(st, 4) != 0;
    renc_copy_text(e->key_lock, sizeof e->key_lock, renc_col_text(st, 5));
    e->created = sqlite3_column_int64(st, 6);
    e->policy_since = sqlite3_column_int64(st, 7);
    renc_copy_text(e->last_run, sizeof e->last_run, renc_col_text(st, 8));
    e->last_run_failed = sqlite3_column_int64(st, 9);
    e->last_run_at = sqlite3_column_int64(st, 10);
    renc_copy_text(e->last_run_journal, sizeof e->last_run_journal, renc_col_text(st, 11));
}

/* Reads one environment (inside or outside a transaction). */
static int renc_env_load(struct renc_catalog *c, const char *id, struct renc_env *out)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "SELECT " RENC_ENV_COLUMNS " FROM env WHERE id = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        renc_env_from_row(out, st);
    else
        rc = step == SQLITE_DONE ? -RENC_E_ENV_NOT_FOUND : renc_sql_rc(step);
    sqlite3_finalize(st);
    return rc;
}

static int renc_env_exists(struct renc_catalog *c, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "SELECT 1 FROM env WHERE id = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -RENC_E_ENV_NOT_FOUND : renc_sql_rc(step);
    sqlite3_finalize(st);
    return rc;
}

/* Begins an update of environment id, which must exist: the write
 * transaction is begun (the caller ends it with renc_end) and *st is
 * prepared from sql.  On failure nothing is left begun. */
static int renc_env_update_begin(struct renc_catalog *c, const char *id, const char *sql,
                                 sqlite3_stmt **st)
{
    int rc = renc_begin(c);
    if (rc)
        return rc;
    rc = renc_env_exists(c, id);
    if (rc == 0)
        rc = renc_prepare(c, st, sql);
    return rc ? renc_end(c, rc) : 0;
}

/* Begins a change of id's policy key to key_ref: ref[RENC_MAX_REF_LEN + 1]
 * receives key_ref unversioned, the write transaction is begun (the caller
 * ends it with renc_end) and *was is the environment as it is.  On failure
 * nothing is left begun. */
static int renc_policy_change_begin(struct renc_catalog *c, const char *id, const char *key_ref,
                                    char *ref, struct renc_env *was)
{
    int rc = renc_unversioned(ref, RENC_MAX_REF_LEN + 1, key_ref);
    if (rc == 0)
        rc = renc_begin(c);
    if (rc)
        return rc;
    rc = renc_env_load(c, id, was);
    return rc ? renc_end(c, rc) : 0;
}

/* A change of id's policy key, from was's to policy and ref: recorded as
 * renc_env_key_note does, the detail saying from what to what. */
static int renc_policy_change_note(struct renc_catalog *c, const char *id, const char *action,
                                   const struct renc_env *was, enum renc_policy policy,
                                   const char *ref)
{
    char detail[2 * RENC_MAX_REF_LEN + 32];
    snprintf(detail, sizeof detail, "%s %s -> %s %s", renc_policy_name(was->policy), was->key_ref,
             renc_policy_name(policy), ref);
    return renc_env_key_note(c, id, ref, action, detail);
}

/* ---- arrays of rows --------------------------------------------------- */

/* A growing array of item_size-byte items, in which the calls that return
 * arrays gather their rows.  With strings set the items are char *, each
 * its own allocation. */
struct renc_vec {
    void *items;
    size_t n, cap;
    size_t item_size;
    int strings;
};

#define RENC_VEC_OF(type) {NULL, 0, 0, sizeof(type), 0}
#define RENC_VEC_OF_STRINGS {NULL, 0, 0, sizeof(char *), 1}

/* Room for one more item at the end: returns it, counted in v->n, or NULL
 * when out of memory (the items so far kept). */
static void *renc_vec_push(struct renc_vec *v)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? 2 * v->cap : 16;
        void *grown = renc_realloc(v->items, ncap * v->item_size);
        if (!grown)
            return NULL;
        v->items = grown;
        v->cap = ncap;
    }
    return (char *)v->items + v->n++ * v->item_size;
}

/* Appends a copy of s to v, an array of strings. */
static int renc_strings_push(struct renc_vec *v, const char *s)
{
    char **slot = renc_vec_push(v);
    RENC_RETURN_IF(!slot, -RENC_E_NOMEM);
    if (!(*slot = renc_strdup(s))) {
        v->n--; /* uncounted: the slot holds no string */
        return -RENC_E_NOMEM;
    }
    return 0;
}

/* Frees the items (and each string of an array of strings); v is left
 * empty. */
static void renc_vec_free(struct renc_vec *v)
{
    for (size_t i = 0; v->strings && i < v->n; i++)
        renc_free(((char **)v->items)[i]);
    renc_free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* Steps st through its rows, handing each to row(arg, st), then finalizes
 * it.  Returns the first failure, row's or SQLite's. */
static int renc_each_row(sqlite3_stmt *st, int (*row)(void *arg, sqlite3_stmt *st), void *arg)
{
    int rc = 0;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = row(arg, st);
    if (rc == 0 && step != SQLITE_DONE)
        rc = renc_sql_rc(step);
    sqlite3_finalize(st);
    return rc;
}

/* Gathers the rows of sql into out, each made an item by row(out, st), in
 * one read transaction: the array is one state of the catalog.  id is NULL
 * when sql takes no parameter; else the environment the rows are about,
 * sql's one parameter, and it must exist.  On failure out is freed. */
static int renc_read_rows(struct renc_catalog *c, const char *sql, const char *id,
                          int (*row)(void *out, sqlite3_stmt *st), struct renc_vec *out)
{
    int rc = renc_exec(c, "BEGIN");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (id)
        rc = renc_env_exists(c, id);
    if (rc == 0)
        rc = renc_prepare(c, &st, sql);
    if (rc == 0 && id)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == 0)
        rc = renc_each_row(st, row, out);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to keep */
    if (rc)
        renc_vec_free(out);
    return rc;
}

static int renc_env_row(void *out, sqlite3_stmt *st)
{
    struct renc_env *e = renc_vec_push(out);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    renc_env_from_row(e, st);
    return 0;
}

static int renc_event_row(void *out, sqlite3_stmt *st)
{
    struct renc_env_event *ev = renc_vec_push(out);
    RENC_RETURN_IF(!ev, -RENC_E_NOMEM);
    ev->at = sqlite3_column_int64(st, 0);
    renc_copy_text(ev->action, sizeof ev->action, renc_col_text(st, 1));
    renc_copy_text(ev->detail, sizeof ev->detail, renc_col_text(st, 2));
    return 0;
}

static int renc_string_row(void *out, sqlite3_stmt *st)
{
    return renc_strings_push(out, renc_col_text(st, 0));
}

/* ---- open and close --------------------------------------------------- */

void renc_catalog_close(struct renc_catalog *c)
{
    if (!c)
        return;
    sqlite3_close(c->db);
    renc_free(c);
}

const char *renc_catalog_path(const struct renc_catalog *c)
{
    return c->path;
}

/* The file itself: a regular file, not a link, open to its owner only. */
static int renc_catalog_check_file(const char *path, int create)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return errno == ELOOP ? -RENC_E_BAD_CATALOG : -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -RENC_E_BAD_CATALOG;
    if (rc == 0 && (st.st_mode & 077))
        rc = -RENC_E_INSECURE_PERMS;
    close(fd);
    return rc;
}

/* 1 when every table of the schema is there. */
static int renc_catalog_has_tables(struct renc_catalog *c, int *yes)
{
    int64_t n = 0;
    int rc = renc_query_int(c, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                               " name IN ('env', 'history', 'env_keys', 'config')", &n);
    if (rc == 0)
        *yes = n == 4;
    return rc;
}

/* Makes an empty file a catalog: the marks and the tables in one
 * transaction, so a crash leaves either an empty file or a whole catalog.
 * Another process may be doing the same: whoever takes the write lock first
 * creates it, the other finds it made. */
static int renc_catalog_init(struct renc_catalog *c)
{
    /* WAL first: it cannot change inside a transaction, and a file left in
     * WAL mode with nothing else is still empty. */
    int rc = renc_exec(c, "PRAGMA journal_mode=WAL");
    if (rc == 0)
        rc = renc_begin(c);
    if (rc)
        return rc;
    int64_t app = 0, tables = 0;
    if ((rc = renc_query_int(c, "PRAGMA application_id", &app)) == 0)
        rc = renc_query_int(c, "SELECT count(*) FROM sqlite_schema", &tables);
    if (rc == 0 && app == RENC_CATALOG_APP_ID) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return 0; /* made by the other; checked by the caller */
    }
    if (rc == 0 && tables != 0)
        rc = -RENC_E_BAD_CATALOG;
    char sql[sizeof renc_catalog_schema + 128];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d; %s",
             RENC_CATALOG_APP_ID, RENC_CATALOG_SCHEMA, renc_catalog_schema);
    if (rc == 0)
        rc = renc_exec(c, sql);
    return renc_end(c, rc);
}

static int renc_catalog_setup(struct renc_catalog *c, int create)
{
    int64_t app = 0;
    int rc = renc_query_int(c, "PRAGMA application_id", &app);
    if (rc)
        return rc;
    if (app == 0) {
        int64_t tables = -1;
        if ((rc = renc_query_int(c, "SELECT count(*) FROM sqlite_schema", &tables)))
            return rc;
        if (tables != 0)
            return -RENC_E_BAD_CATALOG; /* someone else's database */
        /* An empty file (a creation cut short) is as good as none. */
        if (!create)
            return -ENOENT;
        if ((rc = renc_catalog_init(c)))
            return rc;
        if ((rc = renc_query_int(c, "PRAGMA application_id", &app)))
            return rc;
    }
    if (app != RENC_CATALOG_APP_ID)
        return -RENC_E_BAD_CATALOG;
    int64_t ver = 0;
    if ((rc = renc_query_int(c, "PRAGMA user_version", &ver)))
        return rc;
    if (ver != RENC_CATALOG_SCHEMA)
        return -RENC_E_BAD_CATALOG;
    int ours = 0;
    if ((rc = renc_catalog_has_tables(c, &ours)))
        return rc;
    if (!ours)
        return -RENC_E_BAD_CATALOG; /* a journal, say: same marks, other tables */
    /* WAL: readers never wait for a writer.  synchronous=FULL: a change is
     * durable when its call returns (changes are few and small). */
    rc = renc_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    int64_t have = 0;
    if (rc == 0)
        rc = renc_query_int(c, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                               " name IN ('stage', 'stage_file', 'stage_note')", &have);
    if (rc == 0 && have != 3)
        rc = renc_exec(c, renc_catalog_stage_schema);
    return rc;
}

int renc_catalog_open(struct renc_catalog **out, const char *state_dir, int create)
{
    RENC_RETURN_IF(!out || !state_dir || !state_dir[0], -RENC_E_INVALID);
    struct renc_catalog *c = renc_calloc(1, sizeof *c);
    RENC_RETURN_IF(!c, -RENC_E_NOMEM);
    int rc = 0;
    int n = snprintf(c->path, sizeof c->path, "%s/%s", state_dir, RENC_CATALOG_FILE);
    if (n < 0 || (size_t)n >= sizeof c->path)
        rc = -ENAMETOOLONG;
    if (rc == 0 && create && mkdir(state_dir, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0)
        rc = renc_catalog_check_file(c->path, create);
    if (rc == 0)
        rc = renc_sql_rc(sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE, NULL));
    if (rc == 0)
        rc = renc_sql_rc(sqlite3_busy_timeout(c->db, RENC_CATALOG_BUSY_MS));
    if (rc == 0)
        rc = renc_catalog_setup(c, create);
    if (rc) {
        renc_catalog_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- environments ----------------------------------------------------- */

int renc_catalog_create_env(struct renc_catalog *c, const char *id, const char *region,
                            const char *mmk_ref)
{
    if (!region)
        region = "";
    RENC_RETURN_IF(!renc_env_id_valid(id) || !renc_region_valid(region), -RENC_E_INVALID);
    char ref[RENC_MAX_REF_LEN + 1];
    int rc = renc_unversioned(ref, sizeof ref, mmk_ref);
    if (rc)
        return rc;
    char detail[RENC_MAX_REF_LEN + RENC_REGION_MAX + 32];
    snprintf(detail, sizeof detail, "mmk %s%s%s", ref, region[0] ? ", region " : "", region);
    if ((rc = renc_begin(c)))
        return rc;
    int64_t now = renc_unix_now();
    sqlite3_stmt *st = NULL;
    rc = renc_env_exists(c, id);
    if (rc == 0)
        rc = -RENC_E_ENV_EXISTS;
    else if (rc == -RENC_E_ENV_NOT_FOUND)
        rc = renc_prepare(c, &st, "INSERT INTO env(id, region, policy, key_ref, created,"
                                  " policy_since) VALUES (?, ?, 'mmk', ?, ?, ?)");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ref, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, now);
        rc = renc_step_done(st);
    }
    if (rc == 0)
        rc = renc_env_key_note(c, id, ref, "created", detail);
    return renc_end(c, rc);
}

int renc_catalog_get(struct renc_catalog *c, const char *id, struct renc_env *out)
{
    struct renc_env e;
    int rc = renc_env_load(c, id, &e);
    if (rc == 0)
        *out = e;
    return rc;
}

int renc_catalog_list(struct renc_catalog *c, struct renc_env **out, size_t *count)
{
    struct renc_vec all = RENC_VEC_OF(struct renc_env);
    int rc = renc_read_rows(c, "SELECT " RENC_ENV_COLUMNS " FROM env ORDER BY id", NULL,
                            renc_env_row, &all);
    if (rc == 0) {
        *out = all.items;
        *count = all.n;
    }
    return rc;
}

int renc_catalog_set_policy(struct renc_catalog *c, const char *id, enum renc_policy policy,
                            const char *key_ref, unsigned cmk_limit, unsigned *cmk_count)
{
    RENC_RETURN_IF((unsigned)policy > RENC_POLICY_CMK, -RENC_E_INVALID);
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_env e;
    int rc = renc_policy_change_begin(c, id, key_ref, ref, &e);
    if (rc)
        return rc;
    int64_t cmk = 0;
    if (renc_env_locked(&e))
        rc = -RENC_E_ENV_LOCKED;
    /* The limit is checked under the write lock: two processes cannot both
     * take the last place. */
    if (rc == 0)
        rc = renc_query_int(c, "SELECT count(*) FROM env WHERE policy = 'cmk'", &cmk);
    if (rc == 0 && policy == RENC_POLICY_CMK && e.policy != RENC_POLICY_CMK) {
        if ((uint64_t)cmk >= cmk_limit)
            rc = -RENC_E_CMK_LIMIT;
        else
            cmk++;
    } else if (rc == 0 && policy != RENC_POLICY_CMK && e.policy == RENC_POLICY_CMK) {
        cmk--;
    }
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = renc_prepare(c, &st, "UPDATE env SET policy = ?, key_ref = ?,"
                                  " policy_since = ? WHERE id = ?");
    if (rc == 0) {
        /* policy_since moves only when the policy or its key does. */
        int same = e.policy == policy && strcmp(e.key_ref, ref) == 0;
        sqlite3_bind_text(st, 1, renc_policy_name(policy), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, same ? e.policy_since : renc_unix_now());
        sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
        rc = renc_step_done(st);
    }
    if (rc == 0)
        rc = renc_policy_change_note(c, id, "set-policy", &e, policy, ref);
    rc = renc_end(c, rc);
    if (cmk_count && (rc == 0 || rc == -RENC_E_CMK_LIMIT))
        *cmk_count = (unsigned)cmk;
    return rc;
}

int renc_catalog_set_operator_lock(struct renc_catalog *c, const char *id, int on)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_env_update_begin(c, id, "UPDATE env SET locked_by_operator = ? WHERE id = ?",
                                   &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, on ? 1 : 0);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = renc_step_done(st);
    if (rc == 0)
        rc = renc_history_add(c, id, on ? "lock" : "unlock",
                              on ? "locked by the operator" : "unlocked by the operator", NULL);
    return renc_end(c, rc);
}

/* What renc_key_lock_row gathers: the ids of the environments key_lock
 * touches, those with the same key as ref and, when clearing, locked by a
 * key. */
struct renc_key_lock_sel {
    const struct renc_keyref *ref;
    int clearing;
    struct renc_vec ids;
};

static int renc_key_lock_row(void *arg, sqlite3_stmt *st)
{
    struct renc_key_lock_sel *sel = arg;
    struct renc_keyref k;
    if (renc_keyref_parse(&k, renc_col_text(st, 1)) != 0 || !renc_keyref_same_key(&k, sel->ref))
        return 0;
    if (sel->clearing && renc_col_text(st, 2)[0] == '\0')
        return 0;
    return renc_strings_push(&sel->ids, renc_col_text(st, 0));
}

int renc_catalog_key_lock(struct renc_catalog *c, const char *ref, const char *reason,
                          char ***ids, size_t *count)
{
    struct renc_keyref key;
    RENC_RETURN_IF(!ref, -RENC_E_BAD_KEYREF);
    int rc = renc_keyref_parse(&key, ref);
    if (rc)
        return rc;
    RENC_RETURN_IF(reason && (!reason[0] || strlen(reason) > RENC_REASON_MAX), -RENC_E_INVALID);
    if ((rc = renc_begin(c)))
        return rc;
    struct renc_key_lock_sel sel = {&key, reason == NULL, RENC_VEC_OF_STRINGS};
    sqlite3_stmt *st = NULL, *up = NULL;
    rc = renc_prepare(c, &st, "SELECT id, key_ref, key_lock FROM env ORDER BY id");
    if (rc == 0)
        rc = renc_each_row(st, renc_key_lock_row, &sel);
    if (rc == 0)
        rc = renc_prepare(c, &up, "UPDATE env SET key_lock = ? WHERE id = ?");
    char **touched = sel.ids.items;
    size_t n = sel.ids.n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct renc_env e;
        char detail[2 * RENC_REASON_MAX + 32];
        if ((rc = renc_env_load(c, touched[i], &e)))
            break;
        if (reason)
            snprintf(detail, sizeof detail, "%s", reason);
        else
            snprintf(detail, sizeof detail, "key lock lifted (was: %s)", e.key_lock);
        sqlite3_bind_text(up, 1, reason ? reason : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 2, touched[i], -1, SQLITE_STATIC);
        int step = sqlite3_step(up);
        sqlite3_reset(up);
        rc = step == SQLITE_DONE ? 0 : renc_sql_rc(step);
        if (rc == 0)
            rc = renc_history_add(c, touched[i], reason ? "key-lock" : "key-unlock", detail, NULL);
    }
    sqlite3_finalize(up);
    rc = renc_end(c, rc);
    if (rc || !ids)
        renc_vec_free(&sel.ids);
    if (rc)
        return rc;
    if (ids)
        *ids = sel.ids.items;
    if (count)
        *count = n;
    return 0;
}

int renc_catalog_reset(struct renc_catalog *c, const char *id, const char *mmk_ref)
{
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_env e;
    int rc = renc_policy_change_begin(c, id, mmk_ref, ref, &e);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    /* The key lock goes with the key: the environment no longer uses it,
     * and nothing else would ever lift it.  The operator's lock stays. */
    rc = renc_prepare(c, &st, "UPDATE env SET policy = 'mmk', key_ref = ?, policy_since = ?,"
                              " key_lock = '', last_run = '', last_run_failed = 0,"
                              " last_run_at = 0, last_run_journal = '' WHERE id = ?");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, renc_unix_now());
        sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
        rc = renc_step_done(st);
    }
    if (rc == 0)
        rc = renc_policy_change_note(c, id, "reset", &e, RENC_POLICY_MMK, ref);
    return renc_end(c, rc);
}

int renc_catalog_note_run(struct renc_catalog *c, const char *id, const char *outcome,
                          int64_t failed, const char *journal)
{
    if (!journal)
        journal = "";
    RENC_RETURN_IF(!outcome || (strcmp(outcome, "finished") != 0 &&
                                strcmp(outcome, "failed") != 0 &&
                                strcmp(outcome, "interrupted") != 0), -RENC_E_INVALID);
    RENC_RETURN_IF(failed < 0, -RENC_E_INVALID);
    RENC_RETURN_IF(strlen(journal) >= sizeof((struct renc_env *)0)->last_run_journal,
                   -RENC_E_TOO_BIG);
    sqlite3_stmt *st = NULL;
    int rc = renc_env_update_begin(c, id, "UPDATE env SET last_run = ?, last_run_failed = ?,"
                                          " last_run_at = ?, last_run_journal = ? WHERE id = ?",
                                   &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, failed);
    sqlite3_bind_int64(st, 3, renc_unix_now());
    sqlite3_bind_text(st, 4, journal, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    rc = renc_step_done(st);
    if (rc == 0) {
        char detail[1200];
        snprintf(detail, sizeof detail, "%s, %" PRId64 " failed%s%s", outcome, failed,
                 journal[0] ? ", journal " : "", journal);
        rc = renc_history_add(c, id, "run", detail, NULL);
    }
    return renc_end(c, rc);
}

int renc_catalog_note(struct renc_catalog *c, const char *id, const char *action,
                      const char *detail)
{
    struct renc_env_event ev;
    if (!detail)
        detail = "";
    RENC_RETURN_IF(!action || !action[0], -RENC_E_INVALID);
    RENC_RETURN_IF(strlen(action) >= sizeof ev.action || strlen(detail) >= sizeof ev.detail,
                   -RENC_E_TOO_BIG);
    int rc = renc_begin(c);
    if (rc)
        return rc;
    rc = renc_env_exists(c, id);
    if (rc == 0)
        rc = renc_history_add(c, id, action, detail, NULL);
    return renc_end(c, rc);
}

int renc_catalog_history(struct renc_catalog *c, const char *id,
                         struct renc_env_event **out, size_t *count)
{
    RENC_RETURN_IF(!id, -RENC_E_ENV_NOT_FOUND);
    struct renc_vec all = RENC_VEC_OF(struct renc_env_event);
    int rc = renc_read_rows(c, "SELECT at, action, detail FROM history WHERE env = ? ORDER BY n",
                            id, renc_event_row, &all);
    if (rc == 0) {
        *out = all.items;
        *count = all.n;
    }
    return rc;
}

int renc_catalog_env_keys(struct renc_catalog *c, const char *id, char ***refs, size_t *count)
{
    RENC_RETURN_IF(!id, -RENC_E_ENV_NOT_FOUND);
    struct renc_vec all = RENC_VEC_OF_STRINGS;
    /* The current key is also the one set last; it is put first by name
     * all the same, so the order never rests on that alone. */
    int rc = renc_read_rows(c, "SELECT k.key_ref FROM env_keys k JOIN env e ON e.id = k.env"
                               " WHERE k.env = ?"
                               " ORDER BY k.key_ref = e.key_ref DESC, k.last_set DESC",
                            id, renc_string_row, &all);
    if (rc == 0) {
        *refs = all.items;
        *count = all.n;
    }
    return rc;
}

/* ---- settings --------------------------------------------------------- */

static const char *renc_config_default(const char *key)
{
    if (key && strcmp(key, "cmk-limit") == 0)
        return "25"; /* RENC_CMK_LIMIT_DEFAULT */
    if (key && strcmp(key, "mmk-key") == 0)
        return "local:service-mmk";
    return NULL;
}

int renc_catalog_config_get(struct renc_catalog *c, const char *key, char *out, size_t max)
{
    const char *def = renc_config_default(key);
    RENC_RETURN_IF(!def || !out || max == 0, -RENC_E_INVALID);
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "SELECT value FROM config WHERE key = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    const char *v = step == SQLITE_ROW ? renc_col_text(st, 0) : def;
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = renc_sql_rc(step);
    else if (strlen(v) >= max)
        rc = -RENC_E_TOO_BIG;
    else
        memcpy(out, v, strlen(v) + 1);
    sqlite3_finalize(st);
    return rc;
}

/* cmk-limit: a decimal count up to 1000000; mmk-key: a key reference. */
static int renc_config_valid(const char *key, const char *value)
{
    if (strcmp(key, "cmk-limit") == 0) {
        size_t n = strlen(value);
        if (n == 0 || n > 7)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (value[i] < '0' || value[i] > '9')
                return 0;
        return strtoul(value, NULL, 10) <= 1000000;
    }
    struct renc_keyref r;
    return renc_keyref_parse(&r, value) == 0;
}

int renc_catalog_config_set(struct renc_catalog *c, const char *key, const char *value)
{
    RENC_RETURN_IF(!renc_config_default(key) || !value || !renc_config_valid(key, value),
                   -RENC_E_INVALID);
    int rc = renc_begin(c);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = renc_prepare(c, &st, "INSERT INTO config(key, value) VALUES (?, ?)"
                              " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = renc_step_done(st);
    }
    return renc_end(c, rc);
}

/* ---- staged writes ---------------------------------------------------- */

int renc_catalog_stage_begin(struct renc_catalog *c, const char *env, const char *tag,
                             const char *op, const char *request)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "INSERT INTO stage(tag, env, op, started, state, request)"
                                  " VALUES (?, ?, ?, ?, 'writing', ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, renc_unix_now());
    sqlite3_bind_text(st, 5, request ? request : "", -1, SQLITE_STATIC);
    return renc_step_done(st); /* one statement: its own transaction */
}

/* Runs sql, whose one parameter is tag; *changed (may be NULL) gets the
 * number of rows it changed. */
static int renc_stage_by_tag(struct renc_catalog *c, const char *sql, const char *tag,
                             int *changed)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    rc = renc_step_done(st);
    if (rc == 0 && changed)
        *changed = sqlite3_changes(c->db);
    return rc;
}

/* Runs sql (parameters: tag, then n, then the texts) once. */
static int renc_stage_insert(struct renc_catalog *c, const char *sql, const char *tag,
                             int64_t n, const char *const *texts, int ntexts)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n);
    for (int i = 0; i < ntexts; i++)
        sqlite3_bind_text(st, 3 + i, texts[i] ? texts[i] : "", -1, SQLITE_STATIC);
    return renc_step_done(st);
}

int renc_catalog_stage_ready(struct renc_catalog *c, const char *tag, const char *const *rels,
                             size_t count, const struct renc_stage_note *notes, size_t nnotes)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_begin(c);
    if (rc)
        return rc;
    rc = renc_prepare(c, &st, "INSERT INTO stage_file(tag, n, rel) VALUES (?, ?, ?)");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        /* One statement for every row: thousands of files in one commit. */
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, rels[i], -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        rc = step == SQLITE_DONE ? 0 : renc_sql_rc(step);
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
    return renc_end(c, rc);
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
    int rc = renc_begin(c);
    if (rc == 0)
        rc = renc_prepare(c, &st, "SELECT env, action, detail FROM stage_note WHERE tag = ?"
                                  " ORDER BY n");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            char detail[1024];
            snprintf(detail, sizeof detail, "%s%s", renc_col_text(st, 2), note ? note : "");
            /* The history's details are bounded (struct renc_env_event). */
            struct renc_env_event ev;
            renc_copy_text(ev.detail, sizeof ev.detail, detail);
            rc = renc_history_add(c, renc_col_text(st, 0), renc_col_text(st, 1), ev.detail, NULL);
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = renc_sql_rc(step);
        sqlite3_finalize(st);
    }
    if (rc == 0)
        rc = renc_stage_forget(c, tag);
    return renc_end(c, rc);
}

int renc_catalog_stage_drop(struct renc_catalog *c, const char *tag)
{
    int rc = renc_begin(c);
    if (rc == 0)
        rc = renc_stage_forget(c, tag);
    return renc_end(c, rc);
}

static int renc_stage_row(void *out, sqlite3_stmt *st)
{
    struct renc_stage_rec *r = renc_vec_push(out);
    RENC_RETURN_IF(!r, -RENC_E_NOMEM);
    memset(r, 0, sizeof *r);
    renc_copy_text(r->tag, sizeof r->tag, renc_col_text(st, 0));
    renc_copy_text(r->env, sizeof r->env, renc_col_text(st, 1));
    renc_copy_text(r->op, sizeof r->op, renc_col_text(st, 2));
    r->started = sqlite3_column_int64(st, 3);
    r->renaming = strcmp(renc_col_text(st, 4), "renaming") == 0;
    r->request = renc_strdup(renc_col_text(st, 5));
    return r->request ? 0 : -RENC_E_NOMEM;
}

static int renc_stage_files(struct renc_catalog *c, struct renc_stage_rec *r)
{
    struct renc_vec rels = RENC_VEC_OF_STRINGS;
    sqlite3_stmt *st = NULL;
    int rc = renc_prepare(c, &st, "SELECT rel FROM stage_file WHERE tag = ? ORDER BY n");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, r->tag, -1, SQLITE_STATIC);
    int step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = renc_strings_push(&rels, renc_col_text(st, 0));
    if (rc == 0 && step != SQLITE_DONE)
        rc = renc_sql_rc(step);
    sqlite3_finalize(st);
    if (rc) {
        renc_vec_free(&rels);
        return rc;
    }
    r->rels = rels.items;
    r->rel_count = rels.n;
    return 0;
}

int renc_catalog_stage_list(struct renc_catalog *c, const char *env,
                            struct renc_stage_rec **out, size_t *count)
{
    struct renc_vec all = RENC_VEC_OF(struct renc_stage_rec);
    sqlite3_stmt *st = NULL;
    int rc = renc_exec(c, "BEGIN");
    if (rc)
        return rc;
    rc = renc_prepare(c, &st, env ? "SELECT tag, env, op, started, state, request FROM stage"
                                    " WHERE env = ? ORDER BY started, tag"
                                  : "SELECT tag, env, op, started, state, request FROM stage"
                                    " ORDER BY started, tag");
    if (rc == 0) {
        if (env)
            sqlite3_bind_text(st, 1, env, -1, SQLITE_STATIC);
        rc = renc_each_row(st, renc_stage_row, &all);
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
