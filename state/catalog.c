/* state/catalog.c — see catalog.h: the schema, opening the catalog, the
 * helpers its files share (catalog_internal.h) and the settings.
 * Environments are catalog_env.c, staged writes catalog_stage.c.
 *
 * The schema (user_version 1):
 *
 *   env(id PRIMARY KEY, region, policy CHECK IN ('mmk','byok','cmk'),
 *       key_ref, locked_by_operator, key_lock, created, policy_since,
 *       last_run, last_run_failed, last_run_at, last_run_journal, data_root)
 *       data_root: "" for DATA/<id> on this machine, or a container URL
 *       (never with a SAS) whose <id>/ prefix holds the data; added with
 *       ALTER TABLE to a catalog made before it, when it is opened (an
 *       older tool reads the table as it did and takes every environment
 *       as local)
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
#include "state/catalog_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    "  last_run_journal TEXT NOT NULL DEFAULT '', data_root TEXT NOT NULL DEFAULT '');"
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

int64_t renc_cat_now(void)
{
    return (int64_t)time(NULL);
}

/* SQLite's result codes in the project's terms. */
int renc_cat_rc(int rc)
{
    return renc_sqlite_rc(rc, -RENC_E_BAD_CATALOG, -RENC_E_CATALOG);
}

int renc_cat_exec(struct renc_catalog *c, const char *sql)
{
    return renc_cat_rc(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

int renc_cat_prepare(struct renc_catalog *c, sqlite3_stmt **st, const char *sql)
{
    return renc_cat_rc(sqlite3_prepare_v2(c->db, sql, -1, st, NULL));
}

/* Runs a statement that returns no row; finalizes it. */
int renc_cat_step_done(sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return 0;
    return step == SQLITE_ROW ? -RENC_E_CATALOG : renc_cat_rc(step);
}

/* The first column of a one-row query as an integer (-1 when no row). */
int renc_cat_query_int(struct renc_catalog *c, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, sql);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        *out = -1;
    else
        rc = renc_cat_rc(step);
    sqlite3_finalize(st);
    return rc;
}

const char *renc_cat_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

/* Copies s into out[max], cut short at a UTF-8 character boundary when it
 * does not fit (a stored detail may be longer than the struct's field). */
void renc_cat_copy_text(char *out, size_t max, const char *s)
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

int renc_cat_begin(struct renc_catalog *c)
{
    return renc_cat_exec(c, "BEGIN IMMEDIATE");
}

/* Commits when rc is 0, else rolls back; returns the outcome. */
int renc_cat_end(struct renc_catalog *c, int rc)
{
    if (rc == 0)
        rc = renc_cat_exec(c, "COMMIT");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- arrays of rows --------------------------------------------------- */

/* Room for one more item at the end: returns it, counted in v->n, or NULL
 * when out of memory (the items so far kept). */
void *renc_cat_vec_push(struct renc_cat_vec *v)
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
int renc_cat_strings_push(struct renc_cat_vec *v, const char *s)
{
    char **slot = renc_cat_vec_push(v);
    RENC_RETURN_IF(!slot, -RENC_E_NOMEM);
    if (!(*slot = renc_strdup(s))) {
        v->n--; /* uncounted: the slot holds no string */
        return -RENC_E_NOMEM;
    }
    return 0;
}

/* Frees the items (and each string of an array of strings); v is left
 * empty. */
void renc_cat_vec_free(struct renc_cat_vec *v)
{
    for (size_t i = 0; v->strings && i < v->n; i++)
        renc_free(((char **)v->items)[i]);
    renc_free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* Steps st through its rows, handing each to row(arg, st), then finalizes
 * it.  Returns the first failure, row's or SQLite's. */
int renc_cat_each_row(sqlite3_stmt *st, int (*row)(void *arg, sqlite3_stmt *st), void *arg)
{
    int rc = 0;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = row(arg, st);
    if (rc == 0 && step != SQLITE_DONE)
        rc = renc_cat_rc(step);
    sqlite3_finalize(st);
    return rc;
}

/* Gathers the rows of sql into out, each made an item by row(out, st), in
 * one read transaction: the array is one state of the catalog.  id is NULL
 * when sql takes no parameter; else the environment the rows are about,
 * sql's one parameter, and it must exist.  On failure out is freed. */
int renc_cat_read_rows(struct renc_catalog *c, const char *sql, const char *id,
                       int (*row)(void *out, sqlite3_stmt *st), struct renc_cat_vec *out)
{
    int rc = renc_cat_exec(c, "BEGIN");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (id)
        rc = renc_cat_env_exists(c, id);
    if (rc == 0)
        rc = renc_cat_prepare(c, &st, sql);
    if (rc == 0 && id)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == 0)
        rc = renc_cat_each_row(st, row, out);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to keep */
    if (rc)
        renc_cat_vec_free(out);
    return rc;
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
    int rc = renc_cat_query_int(c, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
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
    int rc = renc_cat_exec(c, "PRAGMA journal_mode=WAL");
    if (rc == 0)
        rc = renc_cat_begin(c);
    if (rc)
        return rc;
    int64_t app = 0, tables = 0;
    if ((rc = renc_cat_query_int(c, "PRAGMA application_id", &app)) == 0)
        rc = renc_cat_query_int(c, "SELECT count(*) FROM sqlite_schema", &tables);
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
        rc = renc_cat_exec(c, sql);
    return renc_cat_end(c, rc);
}

/* A catalog made before environments could keep their data in a
 * container gets env.data_root ("" everywhere: DATA/<id>, as before).
 * Checked again under the write lock: two processes may open it at once. */
static int renc_catalog_add_data_root(struct renc_catalog *c)
{
    static const char has[] = "SELECT count(*) FROM pragma_table_info('env')"
                              " WHERE name = 'data_root'";
    int64_t n = 0;
    int rc = renc_cat_query_int(c, has, &n);
    if (rc || n == 1)
        return rc;
    if ((rc = renc_cat_begin(c)))
        return rc;
    rc = renc_cat_query_int(c, has, &n);
    if (rc == 0 && n != 1)
        rc = renc_cat_exec(c, "ALTER TABLE env ADD COLUMN data_root TEXT NOT NULL DEFAULT ''");
    return renc_cat_end(c, rc);
}

static int renc_catalog_setup(struct renc_catalog *c, int create)
{
    int64_t app = 0;
    int rc = renc_cat_query_int(c, "PRAGMA application_id", &app);
    if (rc)
        return rc;
    if (app == 0) {
        int64_t tables = -1;
        if ((rc = renc_cat_query_int(c, "SELECT count(*) FROM sqlite_schema", &tables)))
            return rc;
        if (tables != 0)
            return -RENC_E_BAD_CATALOG; /* someone else's database */
        /* An empty file (a creation cut short) is as good as none. */
        if (!create)
            return -ENOENT;
        if ((rc = renc_catalog_init(c)))
            return rc;
        if ((rc = renc_cat_query_int(c, "PRAGMA application_id", &app)))
            return rc;
    }
    if (app != RENC_CATALOG_APP_ID)
        return -RENC_E_BAD_CATALOG;
    int64_t ver = 0;
    if ((rc = renc_cat_query_int(c, "PRAGMA user_version", &ver)))
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
    rc = renc_cat_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    int64_t have = 0;
    if (rc == 0)
        rc = renc_cat_query_int(c, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                               " name IN ('stage', 'stage_file', 'stage_note')", &have);
    if (rc == 0 && have != 3)
        rc = renc_cat_exec(c, renc_catalog_stage_schema);
    if (rc == 0)
        rc = renc_catalog_add_data_root(c);
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
        rc = renc_cat_rc(sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE, NULL));
    if (rc == 0)
        rc = renc_cat_rc(sqlite3_busy_timeout(c->db, RENC_CATALOG_BUSY_MS));
    if (rc == 0)
        rc = renc_catalog_setup(c, create);
    if (rc) {
        renc_catalog_close(c);
        return rc;
    }
    *out = c;
    return 0;
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
    int rc = renc_cat_prepare(c, &st, "SELECT value FROM config WHERE key = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    const char *v = step == SQLITE_ROW ? renc_cat_col_text(st, 0) : def;
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = renc_cat_rc(step);
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
    int rc = renc_cat_begin(c);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = renc_cat_prepare(c, &st, "INSERT INTO config(key, value) VALUES (?, ?)"
                                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = renc_cat_step_done(st);
    }
    return renc_cat_end(c, rc);
}
