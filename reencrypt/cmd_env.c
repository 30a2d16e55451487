/* reencrypt env — the catalog of environments (docs/ENVIRONMENTS.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/keyref.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/envctl.h"
#include "env/envdata.h"
#include "run/session.h"
#include "store/store.h"
#include "reencrypt/stage.h"

static const char renc_env_usage[] =
    "usage: reencrypt env create ID [--region R] [--data URL]\n"
    "       reencrypt env list [--json]\n"
    "       reencrypt env show ID [--json]\n"
    "       reencrypt env set-policy ID (--mmk REF | --byok REF | --cmk REF)\n"
    "       reencrypt env lock|unlock ID\n"
    "       reencrypt env reset ID --yes\n"
    "       reencrypt env config [--cmk-limit N] [--mmk-key REF]\n"
    "options: --state DIR, --keyring DIR, --data DIR\n";

struct renc_env_args {
    struct renc_global g;
    const char *region, *policy_ref, *cmk_limit, *mmk_key;
    enum renc_policy policy;
    int policy_count, json, yes;
};

static void renc_time_text(char *out, size_t max, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, max, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Everything `show` and `list` say about one environment. */
struct renc_env_view {
    struct renc_env env;
    char current[RENC_MAX_REF_LEN + 1]; /* "" when the key cannot be reached */
    int current_rc;
    struct renc_census census;
    int census_rc;
};

static void renc_env_view_take(struct renc_env_view *v, const struct renc_env *env,
                               struct renc_keystore *ks, const struct renc_global *g)
{
    memset(v, 0, sizeof *v);
    v->env = *env;
    v->current_rc = renc_keystore_resolve(ks, v->current, sizeof v->current, env->key_ref);
    if (v->current_rc)
        v->current[0] = '\0';
    v->census_rc = renc_envctl_census(g, env, env->key_ref, v->current[0] ? v->current : NULL,
                                      &v->census);
}

static const char *renc_env_view_status(const struct renc_env_view *v)
{
    if (!renc_env_locked(&v->env) && v->current_rc == -RENC_E_KEY_REVOKED)
        return "locked";
    return renc_env_status(&v->env, v->census_rc ? NULL : &v->census);
}

static json_t *renc_env_view_json(const struct renc_env_view *v, struct renc_catalog *cat)
{
    const struct renc_env *e = &v->env;
    const struct renc_census *c = &v->census;
    json_t *keys = json_array(), *off = json_array(), *bad = json_array(), *hist = json_array();
    for (size_t i = 0; i < c->ref_count; i++)
        json_array_append_new(keys, json_pack("{s:s, s:I, s:I}", "ref", c->refs[i].ref, "blobs",
                                              (json_int_t)c->refs[i].blobs, "backups",
                                              (json_int_t)c->refs[i].backups));
    for (uint64_t i = 0; i < c->off_policy && i < RENC_CENSUS_LIST; i++)
        json_array_append_new(off, json_string(c->off_policy_paths[i]));
    for (uint64_t i = 0; i < c->unreadable && i < RENC_CENSUS_LIST; i++)
        json_array_append_new(bad, json_string(c->unreadable_paths[i]));
    struct renc_env_event *ev = NULL;
    size_t nev = 0;
    if (cat && renc_catalog_history(cat, e->id, &ev, &nev) == 0) {
        for (size_t i = 0; i < nev; i++) {
            char t[32];
            renc_time_text(t, sizeof t, ev[i].at);
            json_array_append_new(hist, json_pack("{s:s, s:s, s:s}", "at", t, "action",
                                                  ev[i].action, "detail", ev[i].detail));
        }
        renc_free(ev);
    }
    char created[32], since[32];
    renc_time_text(created, sizeof created, e->created);
    renc_time_text(since, sizeof since, e->policy_since);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:s, s:b, s:s?, s:s, s:s, "
        "s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
        "id", e->id, "region", e->region, "policy", renc_policy_name(e->policy), "key_ref",
        e->key_ref, "current_version", v->current[0] ? v->current : NULL, "status",
        renc_env_view_status(v), "locked_by_operator", e->locked_by_operator, "key_lock",
        e->key_lock[0] ? e->key_lock : NULL, "created", created, "policy_since", since,
        "blobs", "count", (json_int_t)c->blobs, "bytes", (json_int_t)c->blob_bytes,
        "backups", "count", (json_int_t)c->backups, "bytes", (json_int_t)c->backup_bytes,
        "not_under_policy_key", (json_int_t)c->off_policy, "on_older_versions",
        (json_int_t)c->old_version, "unreadable", (json_int_t)c->unreadable, "keys_in_use",
        keys, "not_under_policy_key_paths", off, "unreadable_paths", bad, "history", hist);
    if (j) {
        json_object_set_new(j, "not_covered", json_integer((json_int_t)c->special));
        json_object_set_new(j, "temporaries", json_integer((json_int_t)c->temporaries));
        json_object_set_new(j, "data_root", e->data_root[0] ? json_string(e->data_root)
                                                            : json_null());
    }
    if (j && v->census_rc) {
        /* Counts not taken are not zeros. */
        json_object_set_new(j, "blobs", json_null());
        json_object_set_new(j, "backups", json_null());
        json_object_set_new(j, "data_error", json_string(renc_strerror(v->census_rc)));
    }
    if (j && e->last_run[0]) {
        char at[32];
        renc_time_text(at, sizeof at, e->last_run_at);
        json_object_set_new(j, "last_run",
                            json_pack("{s:s, s:I, s:s, s:s}", "outcome", e->last_run, "failed",
                                      (json_int_t)e->last_run_failed, "at", at, "journal",
                                      e->last_run_journal));
    }
    return j;
}

#define RENC_SHOW_PATHS 5   /* text: paths listed per kind */
#define RENC_SHOW_EVENTS 12 /* text: the latest history rows */

static void renc_paths_print(const char *what, char *const *paths, uint64_t n)
{
    for (uint64_t i = 0; i < n && i < RENC_SHOW_PATHS; i++)
        printf("  %-13s %s\n", i ? "" : what, paths[i]);
    if (n > RENC_SHOW_PATHS)
        printf("  %-13s ... and %llu more\n", "", (unsigned long long)(n - RENC_SHOW_PATHS));
}

static void renc_env_view_print(const struct renc_env_view *v, struct renc_catalog *cat)
{
    const struct renc_env *e = &v->env;
    const struct renc_census *c = &v->census;
    char b1[32], b2[32];
    printf("environment %s\n", e->id);
    if (e->region[0])
        printf("  region        %s\n", e->region);
    if (e->data_root[0])
        printf("  data root     %s (blob storage; the data is under %s/)\n", e->data_root,
               e->id);
    renc_time_text(b1, sizeof b1, e->policy_since);
    printf("  policy        %s %s (since %s)\n", renc_policy_name(e->policy), e->key_ref, b1);
    if (v->current[0])
        printf("  key version   %s is current\n", v->current);
    else
        printf("  key version   cannot be told: %s\n", renc_strerror(v->current_rc));
    const char *status = renc_env_view_status(v);
    printf("  status        %s", status);
    if (strcmp(status, "locked") == 0) {
        char why[1024];
        renc_envctl_lock_why(e, why, sizeof why);
        printf(" (%s)", e->locked_by_operator || e->key_lock[0] ? why : "its key is revoked");
    } else if (strcmp(status, "failed") == 0) {
        printf(" (the last run left %lld failed blobs; run it again)",
               (long long)e->last_run_failed);
    } else if (strcmp(status, "warning") == 0 && (c->off_policy || c->unreadable)) {
        printf(" (%llu files not under %s, %llu unreadable; 'reencrypt run --env %s' moves "
               "them)",
               (unsigned long long)c->off_policy, e->key_ref,
               (unsigned long long)c->unreadable, e->id);
    } else if (strcmp(status, "warning") == 0) {
        printf(" (the data holds entries that are not covered; see below)");
    }
    putchar('\n');
    if (v->census_rc) {
        printf("  data          cannot be read: %s\n", renc_strerror(v->census_rc));
    } else {
        renc_bytes_text(b1, sizeof b1, c->blob_bytes);
        renc_bytes_text(b2, sizeof b2, c->backup_bytes);
        printf("  blobs         %llu (%s)\n", (unsigned long long)c->blobs, b1);
        printf("  backups       %llu (%s)\n", (unsigned long long)c->backups, b2);
        for (size_t i = 0; i < c->ref_count; i++)
            printf("  %-13s %s: %llu blobs, %llu backups\n", i ? "" : "keys in use",
                   c->refs[i].ref, (unsigned long long)c->refs[i].blobs,
                   (unsigned long long)c->refs[i].backups);
        if (c->old_version)
            printf("  older version %llu files under an older version of %s "
                   "('reencrypt run --env %s' rewraps them)\n",
                   (unsigned long long)c->old_version, e->key_ref, e->id);
        if (c->special)
            printf("  not covered   %llu entries are symbolic links or special files: not "
                   "covered (never followed, opened, counted or re-encrypted)\n",
                   (unsigned long long)c->special);
        if (c->temporaries)
            printf("  temporaries   %llu temporary files (.NAME.renc-tmp.TAG): of work under "
                   "way, or not made by this tool's recorded operations (left alone)\n",
                   (unsigned long long)c->temporaries);
        renc_paths_print("not under key", c->off_policy_paths, c->off_policy);
        renc_paths_print("unreadable", c->unreadable_paths, c->unreadable);
    }
    if (e->last_run[0]) {
        renc_time_text(b1, sizeof b1, e->last_run_at);
        printf("  last run      %s at %s, %lld failed (journal %s)\n", e->last_run, b1,
               (long long)e->last_run_failed, e->last_run_journal);
    }
    struct renc_env_event *ev = NULL;
    size_t nev = 0;
    if (cat && renc_catalog_history(cat, e->id, &ev, &nev) == 0) {
        size_t first = nev > RENC_SHOW_EVENTS ? nev - RENC_SHOW_EVENTS : 0;
        printf("  history%s\n", first ? "       (the latest; 'env show --json' has all)" : "");
        for (size_t i = first; i < nev; i++) {
            renc_time_text(b1, sizeof b1, ev[i].at);
            printf("    %s  %-10s %s\n", b1, ev[i].action, ev[i].detail);
        }
        renc_free(ev);
    }
}

/* An interrupted put, restore, copy or backup that no process works on any
 * more (the environment's lock is free) is settled before it is shown, as
 * any command on the environment does; one under way is left to its
 * process. */
static void renc_env_show_settle(struct renc_env_args *a, struct renc_catalog *cat,
                                 const char *id)
{
    char path[4096], busy[4096];
    struct renc_session sess;
    renc_session_init(&sess);
    const char *src = path;
    if (renc_envdata_path(path, sizeof path, a->g.data_dir, id, NULL) == 0 &&
        access(path, F_OK) == 0 &&
        renc_session_lock(&sess, &src, 1, NULL, NULL, busy, sizeof busy) == 0) {
        int rc = renc_stage_settle("env show", a->json ? stderr : stdout, cat, a->g.data_dir, id,
                                   NULL, NULL, NULL);
        if (rc)
            renc_err("env show", "%s: an interrupted operation could not be settled: %s", id,
                     renc_strerror(rc));
    }
    renc_session_cleanup(&sess);
}

static int renc_env_show(struct renc_env_args *a, struct renc_catalog *cat,
                         struct renc_keystore *ks, const char *id)
{
    struct renc_env env;
    int rc = renc_catalog_get(cat, id, &env);
    if (rc) {
        renc_err("env show", "%s: %s", id, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    struct renc_env_view *v = renc_malloc(sizeof *v);
    if (!v) {
        renc_err("env show", "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    renc_env_show_settle(a, cat, id);
    renc_env_view_take(v, &env, ks, &a->g);
    if (a->json) {
        json_t *j = renc_env_view_json(v, cat);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        renc_env_view_print(v, cat);
    }
    int status = RENC_EXIT_OK;
    if (v->census_rc) { /* shown, but not an answer: a script must see it */
        renc_envctl_say_unread("env show", &env, "cannot be read", v->census_rc);
        status = RENC_EXIT_FAILED;
    }
    renc_census_cleanup(&v->census);
    renc_free(v);
    return status;
}

static int renc_env_list(struct renc_env_args *a, struct renc_catalog *cat,
                         struct renc_keystore *ks)
{
    struct renc_env *envs = NULL;
    size_t n = 0;
    int rc = renc_catalog_list(cat, &envs, &n);
    if (rc) {
        renc_err("env list", "%s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    struct renc_env_view *v = renc_malloc(sizeof *v);
    if (!v) {
        renc_err("env list", "%s", renc_strerror(-RENC_E_NOMEM));
        renc_free(envs);
        return RENC_EXIT_FAILED;
    }
    json_t *arr = a->json ? json_array() : NULL;
    if (!a->json)
        printf("%-16s %-10s %-5s %-28s %-10s %8s %8s  %s\n", "ID", "REGION", "POLICY", "KEY",
               "STATUS", "BLOBS", "BACKUPS", "DATA");
    int unread = 0;
    for (size_t i = 0; i < n; i++) {
        renc_env_view_take(v, &envs[i], ks, &a->g);
        if (v->census_rc) {
            /* Listed all the same, its counts as "?", and said why. */
            renc_envctl_say_unread("env list", &envs[i], "cannot be read", v->census_rc);
            unread = 1;
        }
        if (a->json) {
            json_array_append_new(arr, renc_env_view_json(v, NULL));
        } else {
            char blobs[24] = "?", backups[24] = "?";
            if (!v->census_rc) {
                snprintf(blobs, sizeof blobs, "%llu", (unsigned long long)v->census.blobs);
                snprintf(backups, sizeof backups, "%llu", (unsigned long long)v->census.backups);
            }
            printf("%-16s %-10s %-5s %-28s %-10s %8s %8s  %s\n", envs[i].id,
                   envs[i].region[0] ? envs[i].region : "-", renc_policy_name(envs[i].policy),
                   v->current[0] ? v->current : envs[i].key_ref, renc_env_view_status(v), blobs,
                   backups, envs[i].data_root[0] ? envs[i].data_root : "-");
        }
        renc_census_cleanup(&v->census);
    }
    if (a->json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
    renc_free(v);
    renc_free(envs);
    return unread ? RENC_EXIT_FAILED : RENC_EXIT_OK;
}

/* The key a policy names must exist here and be able to wrap now. */
static int renc_env_check_key(const char *cmd, struct renc_keystore *ks, enum renc_policy p,
                              const char *ref, char *current, size_t max)
{
    struct renc_keyref r;
    if (renc_keyref_parse(&r, ref) != 0) {
        renc_err(cmd, "'%s': %s", ref, renc_strerror(-RENC_E_BAD_KEYREF));
        return RENC_EXIT_USAGE;
    }
    if (r.version[0]) {
        renc_err(cmd, "'%s': a policy names a key, not a version (it follows the key's "
                      "current version): give %s without /%s",
                 ref, r.name, r.version);
        return RENC_EXIT_USAGE;
    }
    if (p != RENC_POLICY_CMK && !(renc_provider_caps(ref) & RENC_PROVIDER_KEYRING)) {
        renc_err(cmd, "'%s': a %s key lives in the service's keyring (local:NAME)", ref,
                 renc_policy_name(p));
        return RENC_EXIT_USAGE;
    }
    int rc = renc_keystore_resolve(ks, current, max, ref);
    if (rc) {
        renc_err(cmd, "key %s: %s", ref, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    return -1;
}

static int renc_env_set_policy(struct renc_env_args *a, struct renc_catalog *cat,
                               struct renc_keystore *ks, const char *id)
{
    const char *cmd = "env set-policy";
    struct renc_env before;
    char current[RENC_MAX_REF_LEN + 1], limit_text[32];
    int rc = renc_catalog_get(cat, id, &before);
    if (rc) {
        renc_err(cmd, "%s: %s", id, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    int status = renc_env_check_key(cmd, ks, a->policy, a->policy_ref, current, sizeof current);
    if (status >= 0)
        return status;
    if ((rc = renc_catalog_config_get(cat, "cmk-limit", limit_text, sizeof limit_text))) {
        renc_err(cmd, "catalog: %s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    unsigned limit = (unsigned)strtoul(limit_text, NULL, 10), cmk_count = 0;
    rc = renc_catalog_set_policy(cat, id, a->policy, a->policy_ref, limit, &cmk_count);
    if (rc == -RENC_E_CMK_LIMIT) {
        renc_err(cmd, "%s: %u environments already use a customer-managed key, the limit "
                      "is %u ('reencrypt env config --cmk-limit N' raises it); %s stays %s %s",
                 id, cmk_count, limit, id, renc_policy_name(before.policy), before.key_ref);
        return RENC_EXIT_FAILED;
    }
    if (rc == -RENC_E_ENV_LOCKED) {
        char why[1024];
        renc_envctl_lock_why(&before, why, sizeof why);
        renc_err(cmd, "%s", why);
        return RENC_EXIT_FAILED;
    }
    if (rc) {
        renc_err(cmd, "%s: %s", id, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    printf("%s: policy %s %s -> %s %s (current version %s)\n", id,
           renc_policy_name(before.policy), before.key_ref, renc_policy_name(a->policy),
           a->policy_ref, current);
    struct renc_census c;
    struct renc_env after;
    if ((rc = renc_catalog_get(cat, id, &after)) == 0 &&
        (rc = renc_envctl_census(&a->g, &after, a->policy_ref, current, &c)) == 0) {
        if (c.off_policy)
            printf("%s: %llu of %llu blobs and backups are not under %s yet: "
                   "'reencrypt run --env %s' moves them\n",
                   id, (unsigned long long)c.off_policy,
                   (unsigned long long)(c.blobs + c.backups), a->policy_ref, id);
        renc_census_cleanup(&c);
    } else {
        /* The policy is changed; only the count of what is left is missing. */
        renc_err(cmd, "%s: the policy is changed, but its data could not be counted: %s "
                      "('reencrypt env show %s' counts it)", id, renc_strerror(rc), id);
    }
    return RENC_EXIT_OK;
}

/* env reset of an environment whose data is in blob storage: its blobs and
 * backups deleted one by one (a crash part way leaves the rest, which the
 * same command deletes), then the catalog reverted.  No local lock holds
 * its data: a run on it meanwhile meets blobs gone or changed, and says so. */
static int renc_env_reset_remote(struct renc_env_args *a, struct renc_catalog *cat,
                                 const struct renc_env *env, const char *mmk)
{
    struct renc_data_ctx c = {.cmd = "env reset", .a = {.g = a->g}};
    uint64_t files = 0, bytes = 0;
    int status = renc_data_remote_clear(&c, env, &files, &bytes);
    if (status >= 0)
        return status;
    int rc = renc_stage_forget_env(cat, env->id);
    if (rc == 0)
        rc = renc_catalog_reset(cat, env->id, mmk);
    if (rc) {
        renc_err(c.cmd, "%s: %s", env->id, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    printf("%s: deleted %llu blobs (%llu bytes) in %s; policy is now mmk %s\n", env->id,
           (unsigned long long)files, (unsigned long long)bytes, env->data_root, mmk);
    return RENC_EXIT_OK;
}

static int renc_env_reset(struct renc_env_args *a, struct renc_catalog *cat,
                          struct renc_keyring *kr, const char *id)
{
    const char *cmd = "env reset";
    struct renc_env env;
    char mmk[RENC_MAX_REF_LEN + 1], path[4096], busy[4096] = "";
    int rc = renc_catalog_get(cat, id, &env);
    if (rc) {
        renc_err(cmd, "%s: %s", id, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    if ((rc = renc_envdata_path(path, sizeof path, a->g.data_dir, id, NULL))) {
        renc_err(cmd, "%s: %s", id, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (!a->yes) {
        struct renc_census c;
        if (renc_envctl_census(&a->g, &env, env.key_ref, NULL, &c) == 0) {
            renc_err(cmd, "this deletes the %llu blobs and %llu backups of %s (%s) and reverts "
                          "it to mmk; give --yes to do it",
                     (unsigned long long)c.blobs, (unsigned long long)c.backups, id,
                     env.data_root[0] ? env.data_root : path);
            renc_census_cleanup(&c);
        } else {
            renc_err(cmd, "this deletes every blob and backup of %s and reverts it to mmk; "
                          "give --yes to do it", id);
        }
        return RENC_EXIT_USAGE;
    }
    int created = 0;
    if ((rc = renc_envctl_mmk(cat, kr, mmk, sizeof mmk, &created))) {
        renc_err(cmd, "service-managed key: %s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (env.data_root[0])
        return renc_env_reset_remote(a, cat, &env, mmk);
    /* No run, backup or restore may be working on it meanwhile. */
    struct renc_session sess;
    renc_session_init(&sess);
    const char *src = path;
    rc = renc_envdata_create(a->g.data_dir, id);
    if (rc == 0)
        rc = renc_session_lock(&sess, &src, 1, NULL, NULL, busy, sizeof busy);
    if (rc) {
        renc_err(cmd, "%s: %s", rc == -RENC_E_BUSY ? busy : path,
                 rc == -RENC_E_BUSY ? "another run is working on it; wait for it to end"
                                    : renc_strerror(rc));
        renc_session_cleanup(&sess);
        return RENC_EXIT_FAILED;
    }
    uint64_t files = 0, bytes = 0;
    rc = renc_envdata_clear(a->g.data_dir, id, &files, &bytes);
    if (rc == 0)
        rc = renc_stage_forget_env(cat, id); /* an interrupted write's files went too */
    if (rc == 0)
        rc = renc_catalog_reset(cat, id, mmk);
    renc_session_cleanup(&sess);
    if (rc) {
        renc_err(cmd, "%s: %s", id, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    printf("%s: deleted %llu files (%llu bytes); policy is now mmk %s\n", id,
           (unsigned long long)files, (unsigned long long)bytes, mmk);
    return RENC_EXIT_OK;
}

static int renc_env_config(struct renc_env_args *a, struct renc_catalog *cat)
{
    int rc = 0;
    if (a->cmk_limit) {
        char *end;
        unsigned long v = strtoul(a->cmk_limit, &end, 10);
        if (*end || end == a->cmk_limit || v > 100000) {
            renc_err("env config", "--cmk-limit must be 0..100000");
            return RENC_EXIT_USAGE;
        }
        char text[32];
        snprintf(text, sizeof text, "%lu", v);
        rc = renc_catalog_config_set(cat, "cmk-limit", text);
    }
    if (rc == 0 && a->mmk_key) {
        struct renc_keyref r;
        if (renc_keyref_parse(&r, a->mmk_key) != 0 || r.version[0]) {
            renc_err("env config", "--mmk-key '%s': give an unversioned key ref", a->mmk_key);
            return RENC_EXIT_USAGE;
        }
        rc = renc_catalog_config_set(cat, "mmk-key", a->mmk_key);
    }
    char limit[32], mmk[RENC_MAX_REF_LEN + 1];
    if (rc == 0)
        rc = renc_catalog_config_get(cat, "cmk-limit", limit, sizeof limit);
    if (rc == 0)
        rc = renc_catalog_config_get(cat, "mmk-key", mmk, sizeof mmk);
    if (rc) {
        renc_err("env config", "%s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    printf("cmk-limit %s\nmmk-key   %s\n", limit, mmk);
    return RENC_EXIT_OK;
}

static int renc_env_parse(struct renc_env_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"region", required_argument, NULL, 'r'},
        {"mmk", required_argument, NULL, 'M'},
        {"byok", required_argument, NULL, 'B'},
        {"cmk", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},
        {"yes", no_argument, NULL, 'y'},
        {"cmk-limit", required_argument, NULL, 'L'},
        {"mmk-key", required_argument, NULL, 'K'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    int opt;
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once("env", opts, "rLK", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'r': a->region = optarg; break;
        case 'M':
        case 'B':
        case 'C':
            a->policy = opt == 'M' ? RENC_POLICY_MMK : opt == 'B' ? RENC_POLICY_BYOK
                                                                  : RENC_POLICY_CMK;
            a->policy_ref = optarg;
            a->policy_count++;
            break;
        case 'j': a->json = 1; break;
        case 'y': a->yes = 1; break;
        case 'L': a->cmk_limit = optarg; break;
        case 'K': a->mmk_key = optarg; break;
        case 'h': fputs(renc_env_usage, stdout); return RENC_EXIT_OK;
        default: fputs(renc_env_usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    return -1;
}

/* `env create ID --data URL`: a container URL given as --data is the new
 * environment's data root, not the local DATA folder (which stays the
 * default for the others).  A SAS in it is refused rather than kept: the
 * catalog is no place for a secret, and a SAS expires; the credentials
 * come from the environment at each use (docs/BLOBSTORAGE.md). */
static int renc_env_data_root(struct renc_env_args *a, int create, char *root, size_t max)
{
    root[0] = '\0';
    if (!a->g.data_dir || !renc_store_is_url(a->g.data_dir))
        return 0;
    if (!create) {
        renc_err("env", "--data URL goes with create (the environment keeps its data root)");
        return -1;
    }
    const char *url = a->g.data_dir;
    a->g.data_dir = NULL;
    if (strchr(url, '?')) {
        renc_err("env create", "--data: a URL with a SAS is not kept in the catalog; give it "
                               "without the query and the SAS in AZURE_STORAGE_SAS_TOKEN (or "
                               "another credential: docs/BLOBSTORAGE.md)");
        return -1;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len >= max || len > RENC_DATA_ROOT_MAX) {
        renc_err("env create", "--data: the URL is too long");
        return -1;
    }
    memcpy(root, url, len);
    root[len] = '\0';
    /* Parsed now (no request is made), so a URL no later command could use
     * is refused here. */
    struct renc_store *s = NULL;
    const char *sources[1] = {root};
    char why[512] = "";
    struct renc_store_creds *creds = renc_malloc(sizeof *creds);
    int rc = creds ? renc_store_creds_from(&a->g, creds) : -RENC_E_NOMEM;
    struct renc_store_spec spec = {.sources = sources, .source_count = 1,
                                   .blob = creds ? &creds->blob : NULL, .why = why,
                                   .why_max = sizeof why};
    if (rc == 0)
        rc = renc_store_open(&s, &spec);
    renc_store_free(s);
    renc_free(creds);
    if (rc) {
        renc_err("env create", "--data %s: %s", root, why[0] ? why : renc_strerror(rc));
        return -1;
    }
    return 0;
}

int renc_cmd_env(int argc, char **argv)
{
    struct renc_env_args a;
    memset(&a, 0, sizeof a);
    int status = renc_env_parse(&a, argc, argv);
    if (status >= 0)
        return status;
    if (optind >= argc) {
        fputs(renc_env_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    const char *sub = argv[optind++];
    int takes_id = strcmp(sub, "list") != 0 && strcmp(sub, "config") != 0;
    if (optind + takes_id != argc) {
        fputs(renc_env_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    const char *id = takes_id ? argv[optind] : NULL;
    if (id && !renc_env_id_ok("env", sub, id))
        return RENC_EXIT_USAGE;
    int set_policy = strcmp(sub, "set-policy") == 0;
    if (set_policy != (a.policy_count > 0) || a.policy_count > 1) {
        renc_err("env", set_policy ? "set-policy takes one of --mmk, --byok or --cmk REF"
                                   : "--mmk, --byok and --cmk go with set-policy");
        return RENC_EXIT_USAGE;
    }
    int create = strcmp(sub, "create") == 0;
    char data_root[RENC_DATA_ROOT_MAX + 1];
    if (renc_env_data_root(&a, create, data_root, sizeof data_root))
        return RENC_EXIT_USAGE;
    struct renc_catalog *cat = NULL;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    int rc = renc_envctl_open(&a.g, create, &cat);
    if (rc) {
        if (rc == -ENOENT)
            renc_err("env", "no environments yet (%s/catalog.db): 'reencrypt env create ID' "
                            "makes one", a.g.state_dir);
        else
            renc_err("env", "catalog in %s: %s", a.g.state_dir, renc_strerror(rc));
        return rc == -ENOENT ? RENC_EXIT_USAGE : RENC_EXIT_FAILED;
    }
    if ((rc = renc_open_keys(&a.g, create, &kr, &ks))) {
        renc_err("env", "keyring %s: %s", a.g.keyring_dir ? a.g.keyring_dir : "?",
                 renc_strerror(rc));
        status = renc_exit_for(rc);
        goto out;
    }
    status = RENC_EXIT_OK;
    if (create) {
        char mmk[RENC_MAX_REF_LEN + 1];
        int made = 0;
        rc = renc_envctl_mmk(cat, kr, mmk, sizeof mmk, &made);
        if (rc == 0 && !data_root[0])
            rc = renc_envdata_create(a.g.data_dir, id);
        if (rc == 0)
            rc = renc_catalog_create_env_at(cat, id, a.region ? a.region : "", mmk, data_root);
        if (rc == 0) {
            if (made)
                printf("created the service-managed key %s\n", mmk);
            printf("created environment %s%s%s: policy mmk %s, data in %s/%s\n", id,
                   a.region ? " in " : "", a.region ? a.region : "", mmk,
                   data_root[0] ? data_root : a.g.data_dir, id);
        } else {
            renc_err("env create", "%s: %s", id, renc_strerror(rc));
            status = rc == -RENC_E_INVALID ? RENC_EXIT_USAGE : RENC_EXIT_FAILED;
        }
    } else if (strcmp(sub, "list") == 0) {
        status = renc_env_list(&a, cat, ks);
    } else if (strcmp(sub, "show") == 0) {
        status = renc_env_show(&a, cat, ks, id);
    } else if (set_policy) {
        status = renc_env_set_policy(&a, cat, ks, id);
    } else if (strcmp(sub, "lock") == 0 || strcmp(sub, "unlock") == 0) {
        int on = sub[0] == 'l';
        struct renc_env env;
        rc = renc_catalog_set_operator_lock(cat, id, on);
        if (rc == 0)
            rc = renc_catalog_get(cat, id, &env);
        if (rc) {
            renc_err(sub, "%s: %s", id, renc_strerror(rc));
            status = renc_exit_for(rc);
        } else if (!on && env.key_lock[0]) {
            printf("%s: the operator's lock is lifted, but it stays locked: %s "
                   "('reencrypt keys restore' lifts that)\n", id, env.key_lock);
        } else {
            printf("%s %s\n", on ? "locked" : "unlocked", id);
        }
    } else if (strcmp(sub, "reset") == 0) {
        status = renc_env_reset(&a, cat, kr, id);
    } else if (strcmp(sub, "config") == 0) {
        status = renc_env_config(&a, cat);
    } else {
        fputs(renc_env_usage, stderr);
        status = RENC_EXIT_USAGE;
    }
out:
    renc_catalog_close(cat);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return status;
}
