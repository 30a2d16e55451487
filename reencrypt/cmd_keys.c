/* reencrypt keys — the local keyring, and the versions and locks of keys
 * other providers hold. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/provider.h"
#include "reencrypt/cli.h"
#include "reencrypt/envctl.h"
#include "env/envdata.h"

static const char renc_keys_usage[] =
    "usage: reencrypt keys create NAME [--type aes256|rsa2048|rsa3072|rsa4096]\n"
    "       reencrypt keys list [--json]\n"
    "       reencrypt keys versions NAME [--json]\n"
    "       reencrypt keys rotate NAME\n"
    "       reencrypt keys disable NAME/VERSION [--force]\n"
    "       reencrypt keys enable NAME/VERSION\n"
    "       reencrypt keys revoke|restore NAME[/VERSION]\n"
    "       reencrypt keys versions akv:https://VAULT/keys/NAME [--json]\n"
    "       reencrypt keys revoke|restore akv:https://VAULT/keys/NAME\n"
    "       reencrypt keys create|rotate|versions|revoke|restore 'pkcs11:token=T;object=NAME'\n"
    "       reencrypt keys disable|enable 'pkcs11:token=T;id=%HEX;object=NAME' [--force]\n"
    "options: --state DIR, --keyring DIR, --data DIR, --ca-file FILE, --pkcs11-module PATH\n";

/* What the environments' data needs of a key: a census of every
 * environment in the catalog (none when there is no catalog yet). */
struct renc_keys_needs {
    struct renc_env *envs;
    struct renc_census *census;
    size_t count;
};

static int renc_keys_needs_take(struct renc_global *g, struct renc_keys_needs *n)
{
    struct renc_catalog *cat = NULL;
    memset(n, 0, sizeof *n);
    int rc = renc_envctl_open(g, 0, &cat);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = renc_catalog_list(cat, &n->envs, &n->count);
    renc_catalog_close(cat);
    if (rc)
        return rc;
    n->census = renc_calloc(n->count ? n->count : 1, sizeof *n->census);
    RENC_RETURN_IF(!n->census, -RENC_E_NOMEM);
    for (size_t i = 0; rc == 0 && i < n->count; i++) {
        rc = renc_envctl_census(g, &n->envs[i], n->envs[i].key_ref, NULL, &n->census[i]);
        /* No answer rather than one that may call a needed version unused:
         * say which environment's data could not be counted. */
        if (rc)
            renc_envctl_say_unread("keys", &n->envs[i], "could not be counted", rc);
    }
    return rc;
}

static void renc_keys_needs_cleanup(struct renc_keys_needs *n)
{
    for (size_t i = 0; n->census && i < n->count; i++)
        renc_census_cleanup(&n->census[i]);
    renc_free(n->census);
    renc_free(n->envs);
    memset(n, 0, sizeof *n);
}

/* Files naming ref in all environments; per environment into text. */
static uint64_t renc_keys_needed(const struct renc_keys_needs *n, const char *ref, char *text,
                                 size_t max)
{
    uint64_t total = 0;
    size_t used = 0;
    if (text)
        text[0] = '\0';
    for (size_t i = 0; i < n->count; i++) {
        uint64_t blobs, backups;
        renc_census_count(&n->census[i], ref, &blobs, &backups);
        total += blobs + backups;
        if (text && blobs + backups) {
            int w = snprintf(text + used, max - used, "%s%s: %llu blobs, %llu backups",
                             used ? "; " : "", n->envs[i].id, (unsigned long long)blobs,
                             (unsigned long long)backups);
            if (w > 0 && (size_t)w < max - used)
                used += (size_t)w;
        }
    }
    return total;
}

/* keys versions NAME: each version, its state, and what still needs it. */
static int renc_keys_versions(struct renc_global *g, struct renc_keyring *kr, const char *name,
                              int json)
{
    struct renc_keyring_key key;
    struct renc_keys_needs needs;
    int rc = renc_keyring_get(kr, name, &key);
    if (rc) {
        renc_err("keys versions", "local:%s: %s", name, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    if ((rc = renc_keys_needs_take(g, &needs))) {
        renc_err("keys versions", "environments' data: %s", renc_strerror(rc));
        renc_keyring_key_cleanup(&key);
        renc_keys_needs_cleanup(&needs);
        return RENC_EXIT_FAILED;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-24s %-9s %-7s %-10s %s\n", "VERSION", "STATE", "CURRENT", "NEEDED", "BY");
    for (size_t v = 0; v < key.version_count; v++) {
        const struct renc_keyring_version *kv = &key.versions[v];
        char ref[RENC_MAX_REF_LEN + 1], by[4096];
        snprintf(ref, sizeof ref, "local:%s/%s", key.name, kv->version);
        uint64_t files = renc_keys_needed(&needs, ref, by, sizeof by);
        enum renc_key_state st = key.state == RENC_KEY_REVOKED ? RENC_KEY_REVOKED : kv->state;
        int current = strcmp(kv->version, key.current) == 0;
        if (json) {
            json_t *per = json_array();
            for (size_t i = 0; i < needs.count; i++) {
                uint64_t b, k;
                renc_census_count(&needs.census[i], ref, &b, &k);
                if (b + k)
                    json_array_append_new(per, json_pack("{s:s, s:I, s:I}", "env",
                                                         needs.envs[i].id, "blobs",
                                                         (json_int_t)b, "backups",
                                                         (json_int_t)k));
            }
            json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:b, s:I, s:o}", "ref", ref,
                                                 "state", renc_key_state_name(st), "current",
                                                 current, "needed", files > 0 || current,
                                                 "files", (json_int_t)files, "by", per));
        } else {
            printf("%-24s %-9s %-7s %-10s %s\n", ref, renc_key_state_name(st),
                   current ? "*" : "", files ? "yes" : current ? "current" : "no",
                   files ? by : "");
        }
    }
    if (json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
    renc_keys_needs_cleanup(&needs);
    renc_keyring_key_cleanup(&key);
    return RENC_EXIT_OK;
}

/* keys disable refuses a version (ref) any blob or backup still names. */
static int renc_keys_disable_check(struct renc_global *g, const char *ref)
{
    struct renc_keys_needs needs;
    char by[4096];
    int rc = renc_keys_needs_take(g, &needs);
    uint64_t files = rc ? 0 : renc_keys_needed(&needs, ref, by, sizeof by);
    /* A symbolic link or special file in an environment's data is never
     * followed, so what it stands for cannot be told: the version may be
     * needed there.  Unknown is not "unused". */
    char blind[1024] = "";
    size_t used = 0;
    for (size_t i = 0; rc == 0 && i < needs.count; i++) {
        if (!needs.census[i].special)
            continue;
        int w = snprintf(blind + used, sizeof blind - used, "%s%s: %llu", used ? "; " : "",
                         needs.envs[i].id, (unsigned long long)needs.census[i].special);
        if (w > 0 && (size_t)w < sizeof blind - used)
            used += (size_t)w;
    }
    renc_keys_needs_cleanup(&needs);
    if (rc) {
        renc_err("disable", "cannot tell whether %s is still needed: %s; nothing changed", ref,
                 renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (files) {
        renc_err("disable", "%s is still needed by %llu blobs and backups (%s); move them "
                            "with 'reencrypt run --env ID' first, or give --force",
                 ref, (unsigned long long)files, by);
        return RENC_EXIT_FAILED;
    }
    if (blind[0]) {
        renc_err("disable", "cannot tell whether %s is still needed: environments hold "
                            "symbolic links or special files that are never followed (%s); "
                            "remove them (see 'reencrypt env show ID'), or give --force",
                 ref, blind);
        return RENC_EXIT_FAILED;
    }
    return RENC_EXIT_OK;
}

/* keys revoke NAME locks the environments whose policy is the key; keys
 * restore NAME unlocks those. */
static void renc_keys_lock_envs(struct renc_global *g, const char *ref, int revoke)
{
    struct renc_catalog *cat = NULL;
    char reason[RENC_REASON_MAX + 1];
    renc_textf(reason, sizeof reason, "key %s revoked", ref);
    int rc = renc_envctl_open(g, 0, &cat);
    if (rc == -ENOENT)
        return;
    char **ids = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = renc_catalog_key_lock(cat, ref, revoke ? reason : NULL, &ids, &n);
    if (rc) {
        renc_err("keys", "catalog: %s; environments using %s are not %s", renc_strerror(rc),
                 ref, revoke ? "locked" : "unlocked");
    } else if (n) {
        printf("%s %zu environments using %s:", revoke ? "locked" : "unlocked", n, ref);
        for (size_t i = 0; i < n; i++)
            printf(" %s", ids[i]);
        putchar('\n');
    }
    for (size_t i = 0; i < n; i++)
        renc_free(ids[i]);
    renc_free(ids);
    renc_catalog_close(cat);
}

struct renc_held_versions_ctx {
    struct renc_keys_needs *needs;
    json_t *arr;
    const char *current;
    size_t count;
};

static int renc_held_version_row(void *arg, const struct renc_provider_version *k)
{
    struct renc_held_versions_ctx *c = arg;
    char by[4096];
    uint64_t files = renc_keys_needed(c->needs, k->ref, by, sizeof by);
    int64_t now = (int64_t)time(NULL);
    const char *state = k->revoked ? "revoked"
                        : !k->enabled ? "disabled"
                        : (k->exp && now >= k->exp) ? "expired"
                        : (k->nbf && now < k->nbf) ? "not-yet-valid"
                                                   : "enabled";
    int current = strcmp(k->ref, c->current) == 0;
    c->count++;
    if (c->arr)
        return json_array_append_new(c->arr, json_pack("{s:s, s:s, s:b, s:b, s:I}", "ref", k->ref,
                                                       "state", state, "current", current,
                                                       "needed", files > 0 || current, "files",
                                                       (json_int_t)files)) ? -RENC_E_NOMEM : 0;
    printf("%s  %-13s %-7s %-10s %s\n", k->ref, state, current ? "*" : "",
           files ? "yes" : current ? "current" : "no", files ? by : "");
    return 0;
}

/* --type: the KEK type and bits; 0 after saying why when it is none. */
static int renc_keys_type(const char *type, enum renc_kek_type *kt, unsigned *bits)
{
    *kt = RENC_KEK_AES256;
    *bits = 0;
    if (strcmp(type, "aes256") == 0)
        return 1;
    if (strcmp(type, "rsa2048") == 0 || strcmp(type, "rsa3072") == 0 ||
        strcmp(type, "rsa4096") == 0) {
        *kt = RENC_KEK_RSA;
        *bits = (unsigned)atoi(type + 3);
        return 1;
    }
    renc_err("keys create", "unknown --type '%s' (aes256, rsa2048, rsa3072, rsa4096)", type);
    return 0;
}

/* What `keys` does with a held key beyond versions, revoke and restore:
 * create and rotate (RENC_KEYS_MANAGE_KEY), disable and enable
 * (RENC_KEYS_MANAGE_VERSION, a versioned ref), where its provider has the
 * op; 0 where it leaves that to its holder. */
enum { RENC_KEYS_MANAGE_KEY = 1, RENC_KEYS_MANAGE_VERSION = 2 };
static int renc_keys_held_manages(const struct renc_provider_ops *p, const char *sub)
{
    if ((strcmp(sub, "create") == 0 && p->create) || (strcmp(sub, "rotate") == 0 && p->rotate))
        return RENC_KEYS_MANAGE_KEY;
    if ((strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) && p->set_state)
        return RENC_KEYS_MANAGE_VERSION;
    return 0;
}

/* keys create|rotate|disable|enable REF through the key's provider. */
static int renc_keys_held_manage(struct renc_global *g, struct renc_keystore *ks,
                                 const char *sub, const char *ref_text, const char *type,
                                 int force)
{
    char versioned[RENC_MAX_REF_LEN + 1];
    enum renc_kek_type kt;
    unsigned bits;
    int rc, status;
    if (strcmp(sub, "create") == 0) {
        if (!renc_keys_type(type, &kt, &bits))
            return RENC_EXIT_USAGE;
        if ((rc = renc_keystore_key_create(ks, ref_text, kt, bits)) == 0)
            printf("created %s (%s)\n", ref_text, type);
    } else if (strcmp(sub, "rotate") == 0) {
        if ((rc = renc_keystore_key_rotate(ks, ref_text, versioned, sizeof versioned)) == 0)
            printf("rotated %s: current version is now %s\n", ref_text, versioned);
    } else {
        if (sub[0] == 'd' && !force &&
            (status = renc_keys_disable_check(g, ref_text)) != RENC_EXIT_OK)
            return status; /* still needed (the message is printed) */
        rc = renc_keystore_key_set_state(ks, ref_text,
                                         sub[0] == 'd' ? RENC_KEY_DISABLED : RENC_KEY_ENABLED);
        if (rc == 0)
            printf("%sd %s\n", sub, ref_text);
    }
    if (rc) {
        renc_err("keys", "%s %s: %s", sub, ref_text, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    return RENC_EXIT_OK;
}

/* keys SUB REF for a key held outside the keyring (a vault key).  revoke
 * and restore change nothing at the holder (access is granted and
 * withdrawn there): they lock or unlock the environments on that key in
 * the catalog; restore first checks that the holder serves the key again.
 * What the provider leaves to its holder (its create, rotate or set_state
 * op NULL) is refused saying so. */
static int renc_keys_held(struct renc_global *g, const char *sub,
                          const struct renc_provider_ops *p, const char *ref_text,
                          const char *type, int json, int force)
{
    struct renc_keyref ref;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    int manage = renc_keys_held_manages(p, sub);
    if (renc_keyref_parse(&ref, ref_text) != 0 ||
        (ref.version[0] != '\0') != (manage == RENC_KEYS_MANAGE_VERSION)) {
        renc_err("keys", "'%s': give %s (%s)", ref_text, p->key_form,
                 manage == RENC_KEYS_MANAGE_VERSION ? "with a version" : "no version");
        return RENC_EXIT_USAGE;
    }
    int is_versions = strcmp(sub, "versions") == 0;
    if (!manage && !is_versions && strcmp(sub, "revoke") != 0 && strcmp(sub, "restore") != 0) {
        renc_err("keys", "%s: %s; here: versions, revoke, restore", sub,
                 p->managed_at ? p->managed_at : "not offered by this provider");
        return RENC_EXIT_USAGE;
    }
    int rc = renc_open_keys(g, 0, &kr, &ks);
    if (rc) {
        renc_err("keys", "%s", renc_strerror(rc));
        return renc_exit_for(rc);
    }
    int status = RENC_EXIT_OK;
    char current[RENC_MAX_REF_LEN + 1] = "";
    if (manage) {
        status = renc_keys_held_manage(g, ks, sub, ref_text, type, force);
    } else if (strcmp(sub, "revoke") == 0) {
        renc_keys_lock_envs(g, ref_text, 1);
    } else if ((rc = renc_keystore_resolve(ks, current, sizeof current, ref_text)) != 0) {
        renc_err("keys", "%s %s: %s", sub, ref_text, renc_strerror(rc));
        status = renc_exit_for(rc);
    } else if (!is_versions) {
        printf("%s serves %s again\n", ref.vault[0] ? ref.vault : p->holder, current);
        renc_keys_lock_envs(g, ref_text, 0);
    } else {
        struct renc_keys_needs needs;
        struct renc_held_versions_ctx c = {.needs = &needs, .current = current};
        if ((rc = renc_keys_needs_take(g, &needs)) == 0) {
            c.arr = json ? json_array() : NULL;
            if (!json)
                printf("%-*s  %-13s %-7s %-10s %s\n", (int)strlen(current), "VERSION", "STATE",
                       "CURRENT", "NEEDED", "BY");
            rc = renc_keystore_list_versions(ks, ref_text, renc_held_version_row, &c);
        }
        if (rc == 0 && json) {
            json_dumpf(c.arr, stdout, JSON_INDENT(2));
            putchar('\n');
        }
        json_decref(c.arr);
        renc_keys_needs_cleanup(&needs);
        if (rc) {
            renc_err("keys", "versions %s: %s", ref_text, renc_strerror(rc));
            status = renc_exit_for(rc);
        }
    }
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return status;
}

/* Why arg ("NAME[/VERSION]") names no local key, or NULL when it does. */
static const char *renc_key_arg_problem(const char *arg)
{
    const char *slash = strchr(arg, '/');
    size_t name_len = slash ? (size_t)(slash - arg) : strlen(arg);
    if (name_len == 0)
        return "the key name is empty";
    if (name_len > RENC_KEY_NAME_MAX)
        return "the key name is longer than 128 characters";
    if (arg[0] == '.')
        return "key names starting with '.' are reserved for the keyring's own files";
    if (slash && strchr(slash + 1, '/'))
        return "a key name holds no '/' (give NAME or NAME/VERSION)";
    if (slash && !renc_keyref_name_valid(slash + 1, RENC_KEY_VERSION_MAX))
        return "a version is 1-64 characters of [A-Za-z0-9._-]";
    return NULL;
}

/* Splits "NAME[/VERSION]" into its parts (in place). */
static int renc_split_name(char *arg, const char **name, const char **version)
{
    char *slash = strchr(arg, '/');
    *version = NULL;
    if (slash) {
        *slash = '\0';
        *version = slash + 1;
        if (!renc_keyref_name_valid(*version, RENC_KEY_VERSION_MAX))
            return -RENC_E_BAD_KEYREF;
    }
    *name = arg;
    return renc_keyring_name_valid(arg) ? 0 : -RENC_E_BAD_KEYREF;
}

static const char *renc_type_name(enum renc_kek_type t)
{
    return t == RENC_KEK_AES256 ? "aes256" : "rsa";
}

static int renc_keys_list(struct renc_keyring *kr, int json)
{
    char **names = NULL;
    size_t count = 0;
    int rc = renc_keyring_list(kr, &names, &count);
    if (rc) {
        renc_err("keys list", "%s: %s", renc_keyring_dir(kr), renc_strerror(rc));
        return renc_exit_for(rc);
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-24s %-8s %-7s %-9s %s\n", "NAME", "VERSION", "TYPE", "STATE", "CURRENT");
    int status = RENC_EXIT_OK;
    for (size_t i = 0; i < count; i++) {
        struct renc_keyring_key key;
        if ((rc = renc_keyring_get(kr, names[i], &key))) {
            renc_err("keys list", "key %s: %s", names[i], renc_strerror(rc));
            status = RENC_EXIT_FAILED;
            continue;
        }
        json_t *versions = json ? json_array() : NULL;
        for (size_t v = 0; v < key.version_count; v++) {
            const struct renc_keyring_version *kv = &key.versions[v];
            /* A revoked key revokes every version. */
            enum renc_key_state st = key.state == RENC_KEY_REVOKED ? RENC_KEY_REVOKED : kv->state;
            int current = strcmp(kv->version, key.current) == 0;
            if (json) {
                json_array_append_new(versions,
                    json_pack("{s:s, s:s, s:s, s:b, s:I}", "version", kv->version,
                              "type", renc_type_name(kv->type), "state",
                              renc_key_state_name(st), "current", current,
                              "created_unix", (json_int_t)kv->created_unix));
            } else {
                printf("%-24s %-8s %-7s %-9s %s\n", key.name, kv->version,
                       renc_type_name(kv->type), renc_key_state_name(st), current ? "*" : "");
            }
        }
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", key.name,
                                                 "current", key.current, "state",
                                                 renc_key_state_name(key.state),
                                                 "versions", versions));
        renc_keyring_key_cleanup(&key);
    }
    if (json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
    renc_keyring_names_free(names, count);
    return status;
}

/* keys disable|enable NAME/VERSION of a keyring key: the exit code; *rc
 * the keyring's failure, for the caller's message. */
static int renc_keys_local_toggle(struct renc_global *g, struct renc_keyring *kr, const char *sub,
                                  const char *name, const char *version, int force, int *rc)
{
    struct renc_keyring_key key;
    char local_ref[RENC_MAX_REF_LEN + 1];
    int revoked = 0, status = RENC_EXIT_OK;
    snprintf(local_ref, sizeof local_ref, "local:%s/%s", name, version ? version : "");
    if (version && renc_keyring_get(kr, name, &key) == 0) {
        for (size_t i = 0; i < key.version_count; i++)
            revoked |= strcmp(key.versions[i].version, version) == 0 &&
                       key.versions[i].state == RENC_KEY_REVOKED;
        renc_keyring_key_cleanup(&key);
    }
    if (!version) {
        renc_err(sub, "give NAME/VERSION: a version is disabled or enabled, not a key");
        return RENC_EXIT_USAGE;
    }
    if (sub[0] == 'd' && !revoked && !force &&
        (status = renc_keys_disable_check(g, local_ref)) != RENC_EXIT_OK)
        return status; /* refused: still needed (the message is printed) */
    if (revoked) {
        /* A revoke is undone only by restore, never silently by enable or
         * overwritten by disable. */
        renc_err(sub, "local:%s/%s is revoked: 'keys restore %s/%s' first", name, version, name,
                 version);
        return RENC_EXIT_FAILED;
    }
    if ((*rc = renc_keyring_set_state(kr, name, version,
                                      sub[0] == 'd' ? RENC_KEY_DISABLED : RENC_KEY_ENABLED)) == 0)
        printf("%sd local:%s/%s\n", sub, name, version);
    return status;
}

/* keys revoke|restore NAME[/VERSION] of a keyring key; a whole key's
 * revoke locks its environments, its restore unlocks them. */
static int renc_keys_local_revoke(struct renc_global *g, struct renc_keyring *kr, int revoke,
                                  const char *name, const char *version)
{
    int rc = renc_keyring_set_state(kr, name, version, revoke ? RENC_KEY_REVOKED : RENC_KEY_ENABLED);
    if (rc == 0) {
        printf("%s local:%s%s%s\n", revoke ? "revoked" : "restored", name, version ? "/" : "",
               version ? version : "");
        if (!version) {
            char ref[RENC_MAX_REF_LEN + 1];
            snprintf(ref, sizeof ref, "local:%s", name);
            renc_keys_lock_envs(g, ref, revoke);
        }
    }
    return rc;
}

int renc_cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct renc_global g = {0};
    const char *type = "aes256";
    int json = 0, force = 0, opt;
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once("keys", opts, "t", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 't': type = optarg; break;
        case 'j': json = 1; break;
        case 'f': force = 1; break;
        case 'h': fputs(renc_keys_usage, stdout); return RENC_EXIT_OK;
        default: fputs(renc_keys_usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(renc_keys_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    const char *sub = argv[optind++];
    int is_list = strcmp(sub, "list") == 0;
    if ((is_list && optind != argc) || (!is_list && optind + 1 != argc)) {
        fputs(renc_keys_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    /* A key the keyring does not hold (a vault key) is named by its ref;
     * the keyring's own keys by NAME[/VERSION] (below). */
    const struct renc_provider_ops *held = is_list ? NULL : renc_provider_for_text(argv[optind]);
    if (held && !(held->caps & RENC_PROVIDER_KEYRING))
        return renc_keys_held(&g, sub, held, argv[optind], type, json, force);
    char arg[RENC_KEY_NAME_MAX + RENC_KEY_VERSION_MAX + 2] = "";
    const char *problem = is_list ? NULL : renc_key_arg_problem(argv[optind]);
    if (problem) {
        renc_err("keys", "%s '%s': %s", sub, argv[optind], problem);
        return RENC_EXIT_USAGE;
    }
    if (!is_list)
        strcpy(arg, argv[optind]); /* fits: the lengths are checked */
    const char *name = NULL, *version = NULL;
    if (!is_list && renc_split_name(arg, &name, &version) != 0) {
        renc_err("keys", "%s '%s': not NAME or NAME/VERSION (1-128 characters of "
                         "[A-Za-z0-9._-], not starting with '.')", sub, argv[optind]);
        return RENC_EXIT_USAGE;
    }

    enum renc_kek_type kt = RENC_KEK_AES256;
    unsigned bits = 0;
    if (strcmp(sub, "create") == 0) {
        if (!renc_keys_type(type, &kt, &bits))
            return RENC_EXIT_USAGE;
        if (version) {
            renc_err("keys create", "give a NAME, not NAME/VERSION");
            return RENC_EXIT_USAGE;
        }
    }

    int create = strcmp(sub, "create") == 0;
    struct renc_keyring *kr = NULL;
    int rc = renc_open_keys(&g, create, &kr, NULL);
    if (rc) {
        renc_err("keys", "keyring %s: %s", g.keyring_dir ? g.keyring_dir : "?",
                 renc_strerror(rc));
        return renc_exit_for(rc);
    }
    int status = RENC_EXIT_OK;
    if (is_list) {
        status = renc_keys_list(kr, json);
    } else if (strcmp(sub, "versions") == 0) {
        status = version ? RENC_EXIT_USAGE : renc_keys_versions(&g, kr, name, json);
        if (version)
            renc_err("keys versions", "give NAME, not NAME/VERSION");
    } else if (create) {
        rc = renc_keyring_create_key(kr, name, kt, bits);
        if (rc == 0)
            printf("created local:%s/1 (%s)\n", name, type);
    } else if (strcmp(sub, "rotate") == 0) {
        char v[RENC_KEY_VERSION_MAX + 1];
        if (version)
            rc = -RENC_E_BAD_KEYREF;
        else if ((rc = renc_keyring_rotate(kr, name, v)) == 0)
            printf("rotated local:%s: current version is now %s\n", name, v);
    } else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
        status = renc_keys_local_toggle(&g, kr, sub, name, version, force, &rc);
    } else if (strcmp(sub, "revoke") == 0 || strcmp(sub, "restore") == 0) {
        rc = renc_keys_local_revoke(&g, kr, sub[2] == 'v', name, version);
    } else {
        fputs(renc_keys_usage, stderr);
        status = RENC_EXIT_USAGE;
    }
    if (rc == -RENC_E_BAD_KEYRING) {
        /* Name the folder: what is wrong is in it. */
        renc_err("keys", "%s %s%s%s: %s (%s/%s)", sub, name, version ? "/" : "",
                 version ? version : "", renc_strerror(rc), renc_keyring_dir(kr), name);
        status = renc_exit_for(rc);
    } else if (rc) {
        renc_err("keys", "%s %s%s%s: %s", sub, name, version ? "/" : "", version ? version : "",
                 renc_strerror(rc));
        status = renc_exit_for(rc);
    }
    renc_keyring_free(kr);
    return status;
}
