/* state/catalog_env.c — the catalog's environments (catalog.h): their
 * names and checks, creation, policy changes and their keys, the operator's
 * and the keys' locks, the last run, and the history every change writes.
 * Every change is one write transaction (catalog.c says why). */
#include "state/catalog_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/keyref.h"

/* The columns of struct renc_env, in its order. */
#define RENC_ENV_COLUMNS                                                                   \
    "id, region, policy, key_ref, locked_by_operator, key_lock, created, policy_since,"   \
    " last_run, last_run_failed, last_run_at, last_run_journal, data_root"

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

/* Appends a history row; *n (may be NULL) receives its number. */
int renc_cat_history_add(struct renc_catalog *c, const char *id, const char *action,
                         const char *detail, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "INSERT INTO history(env, at, action, detail) "
                                      "VALUES (?, ?, ?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, renc_cat_now());
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
    rc = renc_cat_step_done(st);
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
    int rc = renc_cat_history_add(c, id, action, detail, &n);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = renc_cat_prepare(c, &st, "INSERT INTO env_keys(env, key_ref, last_set) VALUES (?, ?, ?)"
                                  " ON CONFLICT (env, key_ref) DO UPDATE SET"
                                  " last_set = excluded.last_set");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, n);
    return renc_cat_step_done(st);
}

static void renc_env_from_row(struct renc_env *e, sqlite3_stmt *st)
{
    memset(e, 0, sizeof *e);
    renc_cat_copy_text(e->id, sizeof e->id, renc_cat_col_text(st, 0));
    renc_cat_copy_text(e->region, sizeof e->region, renc_cat_col_text(st, 1));
    enum renc_policy p = RENC_POLICY_MMK;
    renc_policy_parse(renc_cat_col_text(st, 2), &p); /* the CHECK keeps it one of the three */
    e->policy = p;
    renc_cat_copy_text(e->key_ref, sizeof e->key_ref, renc_cat_col_text(st, 3));
    e->locked_by_operator = sqlite3_column_int(st, 4) != 0;
    renc_cat_copy_text(e->key_lock, sizeof e->key_lock, renc_cat_col_text(st, 5));
    e->created = sqlite3_column_int64(st, 6);
    e->policy_since = sqlite3_column_int64(st, 7);
    renc_cat_copy_text(e->last_run, sizeof e->last_run, renc_cat_col_text(st, 8));
    e->last_run_failed = sqlite3_column_int64(st, 9);
    e->last_run_at = sqlite3_column_int64(st, 10);
    renc_cat_copy_text(e->last_run_journal, sizeof e->last_run_journal, renc_cat_col_text(st, 11));
    renc_cat_copy_text(e->data_root, sizeof e->data_root, renc_cat_col_text(st, 12));
}

/* Reads one environment (inside or outside a transaction). */
static int renc_env_load(struct renc_catalog *c, const char *id, struct renc_env *out)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "SELECT " RENC_ENV_COLUMNS " FROM env WHERE id = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        renc_env_from_row(out, st);
    else
        rc = step == SQLITE_DONE ? -RENC_E_ENV_NOT_FOUND : renc_cat_rc(step);
    sqlite3_finalize(st);
    return rc;
}

int renc_cat_env_exists(struct renc_catalog *c, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "SELECT 1 FROM env WHERE id = ?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -RENC_E_ENV_NOT_FOUND : renc_cat_rc(step);
    sqlite3_finalize(st);
    return rc;
}

/* Begins an update of environment id, which must exist: the write
 * transaction is begun (the caller ends it with renc_cat_end) and *st is
 * prepared from sql.  On failure nothing is left begun. */
static int renc_env_update_begin(struct renc_catalog *c, const char *id, const char *sql,
                                 sqlite3_stmt **st)
{
    int rc = renc_cat_begin(c);
    if (rc)
        return rc;
    rc = renc_cat_env_exists(c, id);
    if (rc == 0)
        rc = renc_cat_prepare(c, st, sql);
    return rc ? renc_cat_end(c, rc) : 0;
}

/* Begins a change of id's policy key to key_ref: ref[RENC_MAX_REF_LEN + 1]
 * receives key_ref unversioned, the write transaction is begun (the caller
 * ends it with renc_cat_end) and *was is the environment as it is.  On failure
 * nothing is left begun. */
static int renc_policy_change_begin(struct renc_catalog *c, const char *id, const char *key_ref,
                                    char *ref, struct renc_env *was)
{
    int rc = renc_unversioned(ref, RENC_MAX_REF_LEN + 1, key_ref);
    if (rc == 0)
        rc = renc_cat_begin(c);
    if (rc)
        return rc;
    rc = renc_env_load(c, id, was);
    return rc ? renc_cat_end(c, rc) : 0;
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

static int renc_env_row(void *out, sqlite3_stmt *st)
{
    struct renc_env *e = renc_cat_vec_push(out);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    renc_env_from_row(e, st);
    return 0;
}

static int renc_event_row(void *out, sqlite3_stmt *st)
{
    struct renc_env_event *ev = renc_cat_vec_push(out);
    RENC_RETURN_IF(!ev, -RENC_E_NOMEM);
    ev->at = sqlite3_column_int64(st, 0);
    renc_cat_copy_text(ev->action, sizeof ev->action, renc_cat_col_text(st, 1));
    renc_cat_copy_text(ev->detail, sizeof ev->detail, renc_cat_col_text(st, 2));
    return 0;
}

static int renc_string_row(void *out, sqlite3_stmt *st)
{
    return renc_cat_strings_push(out, renc_cat_col_text(st, 0));
}

/* ---- environments ----------------------------------------------------- */

/* A data root: printable ASCII, no query (a SAS is never stored). */
static int renc_data_root_valid(const char *s)
{
    size_t n = strlen(s);
    if (n > RENC_DATA_ROOT_MAX || strchr(s, '?') || strchr(s, '#'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

int renc_catalog_create_env(struct renc_catalog *c, const char *id, const char *region,
                            const char *mmk_ref)
{
    return renc_catalog_create_env_at(c, id, region, mmk_ref, NULL);
}

static int renc_env_insert(struct renc_catalog *c, const char *id, const char *region,
                           const char *ref, const char *root)
{
    int64_t now = renc_cat_now();
    sqlite3_stmt *st = NULL;
    int rc = renc_cat_prepare(c, &st, "INSERT INTO env(id, region, policy, key_ref, created,"
                                      " policy_since, data_root) VALUES (?, ?, 'mmk', ?, ?, ?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, root, -1, SQLITE_STATIC);
    return renc_cat_step_done(st);
}

int renc_catalog_create_env_at(struct renc_catalog *c, const char *id, const char *region,
                               const char *mmk_ref, const char *data_root)
{
    if (!region)
        region = "";
    if (!data_root)
        data_root = "";
    RENC_RETURN_IF(!renc_env_id_valid(id) || !renc_region_valid(region) ||
                       !renc_data_root_valid(data_root),
                   -RENC_E_INVALID);
    char ref[RENC_MAX_REF_LEN + 1];
    int rc = renc_unversioned(ref, sizeof ref, mmk_ref);
    if (rc)
        return rc;
    char detail[RENC_MAX_REF_LEN + RENC_REGION_MAX + RENC_DATA_ROOT_MAX + 48];
    snprintf(detail, sizeof detail, "mmk %s%s%s%s%s", ref, region[0] ? ", region " : "", region,
             data_root[0] ? ", data in " : "", data_root);
    if ((rc = renc_cat_begin(c)))
        return rc;
    rc = renc_cat_env_exists(c, id);
    if (rc == 0)
        rc = -RENC_E_ENV_EXISTS;
    else if (rc == -RENC_E_ENV_NOT_FOUND)
        rc = renc_env_insert(c, id, region, ref, data_root);
    if (rc == 0)
        rc = renc_env_key_note(c, id, ref, "created", detail);
    return renc_cat_end(c, rc);
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
    struct renc_cat_vec all = RENC_CAT_VEC_OF(struct renc_env);
    int rc = renc_cat_read_rows(c, "SELECT " RENC_ENV_COLUMNS " FROM env ORDER BY id", NULL,
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
        rc = renc_cat_query_int(c, "SELECT count(*) FROM env WHERE policy = 'cmk'", &cmk);
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
        rc = renc_cat_prepare(c, &st, "UPDATE env SET policy = ?, key_ref = ?,"
                                  " policy_since = ? WHERE id = ?");
    if (rc == 0) {
        /* policy_since moves only when the policy or its key does. */
        int same = e.policy == policy && strcmp(e.key_ref, ref) == 0;
        sqlite3_bind_text(st, 1, renc_policy_name(policy), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, same ? e.policy_since : renc_cat_now());
        sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
        rc = renc_cat_step_done(st);
    }
    if (rc == 0)
        rc = renc_policy_change_note(c, id, "set-policy", &e, policy, ref);
    rc = renc_cat_end(c, rc);
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
    rc = renc_cat_step_done(st);
    if (rc == 0)
        rc = renc_cat_history_add(c, id, on ? "lock" : "unlock",
                              on ? "locked by the operator" : "unlocked by the operator", NULL);
    return renc_cat_end(c, rc);
}

/* What renc_key_lock_row gathers: the ids of the environments key_lock
 * touches, those with the same key as ref and, when clearing, locked by a
 * key. */
struct renc_key_lock_sel {
    const struct renc_keyref *ref;
    int clearing;
    struct renc_cat_vec ids;
};

static int renc_key_lock_row(void *arg, sqlite3_stmt *st)
{
    struct renc_key_lock_sel *sel = arg;
    struct renc_keyref k;
    if (renc_keyref_parse(&k, renc_cat_col_text(st, 1)) != 0 || !renc_keyref_same_key(&k, sel->ref))
        return 0;
    if (sel->clearing && renc_cat_col_text(st, 2)[0] == '\0')
        return 0;
    return renc_cat_strings_push(&sel->ids, renc_cat_col_text(st, 0));
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
    if ((rc = renc_cat_begin(c)))
        return rc;
    struct renc_key_lock_sel sel = {&key, reason == NULL, RENC_CAT_VEC_OF_STRINGS};
    sqlite3_stmt *st = NULL, *up = NULL;
    rc = renc_cat_prepare(c, &st, "SELECT id, key_ref, key_lock FROM env ORDER BY id");
    if (rc == 0)
        rc = renc_cat_each_row(st, renc_key_lock_row, &sel);
    if (rc == 0)
        rc = renc_cat_prepare(c, &up, "UPDATE env SET key_lock = ? WHERE id = ?");
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
        rc = step == SQLITE_DONE ? 0 : renc_cat_rc(step);
        if (rc == 0)
            rc = renc_cat_history_add(c, touched[i], reason ? "key-lock" : "key-unlock", detail,
                                      NULL);
    }
    sqlite3_finalize(up);
    rc = renc_cat_end(c, rc);
    if (rc || !ids)
        renc_cat_vec_free(&sel.ids);
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
    rc = renc_cat_prepare(c, &st, "UPDATE env SET policy = 'mmk', key_ref = ?, policy_since = ?,"
                                  " key_lock = '', last_run = '', last_run_failed = 0,"
                                  " last_run_at = 0, last_run_journal = '' WHERE id = ?");
    if (rc == 0) {
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, renc_cat_now());
        sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
        rc = renc_cat_step_done(st);
    }
    if (rc == 0)
        rc = renc_policy_change_note(c, id, "reset", &e, RENC_POLICY_MMK, ref);
    return renc_cat_end(c, rc);
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
    sqlite3_bind_int64(st, 3, renc_cat_now());
    sqlite3_bind_text(st, 4, journal, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    rc = renc_cat_step_done(st);
    if (rc == 0) {
        char detail[1200];
        snprintf(detail, sizeof detail, "%s, %" PRId64 " failed%s%s", outcome, failed,
                 journal[0] ? ", journal " : "", journal);
        rc = renc_cat_history_add(c, id, "run", detail, NULL);
    }
    return renc_cat_end(c, rc);
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
    int rc = renc_cat_begin(c);
    if (rc)
        return rc;
    rc = renc_cat_env_exists(c, id);
    if (rc == 0)
        rc = renc_cat_history_add(c, id, action, detail, NULL);
    return renc_cat_end(c, rc);
}

int renc_catalog_history(struct renc_catalog *c, const char *id,
                         struct renc_env_event **out, size_t *count)
{
    RENC_RETURN_IF(!id, -RENC_E_ENV_NOT_FOUND);
    struct renc_cat_vec all = RENC_CAT_VEC_OF(struct renc_env_event);
    int rc = renc_cat_read_rows(c, "SELECT at, action, detail FROM history WHERE env = ?"
                                   " ORDER BY n", id, renc_event_row, &all);
    if (rc == 0) {
        *out = all.items;
        *count = all.n;
    }
    return rc;
}

int renc_catalog_env_keys(struct renc_catalog *c, const char *id, char ***refs, size_t *count)
{
    RENC_RETURN_IF(!id, -RENC_E_ENV_NOT_FOUND);
    struct renc_cat_vec all = RENC_CAT_VEC_OF_STRINGS;
    /* The current key is also the one set last; it is put first by name
     * all the same, so the order never rests on that alone. */
    int rc = renc_cat_read_rows(c, "SELECT k.key_ref FROM env_keys k JOIN env e ON e.id = k.env"
                                   " WHERE k.env = ?"
                                   " ORDER BY k.key_ref = e.key_ref DESC, k.last_set DESC",
                                id, renc_string_row, &all);
    if (rc == 0) {
        *refs = all.items;
        *count = all.n;
    }
    return rc;
}
