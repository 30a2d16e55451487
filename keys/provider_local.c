/* keys/provider_local.c — the `local` provider: keys of the service's own
 * keyring (keyring.h), held by the tool.  Its state keeps each loaded KEK
 * by versioned ref for the provider's life; the key's states are read again
 * on every use, so a revoke or disable takes effect at once even for a KEK
 * already loaded. */
#include "keys/provider.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_KEK_CACHE_MAX 64

struct renc_kek_entry {
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_kek *kek;
};

struct renc_local {
    struct renc_keyring *kr; /* borrowed; NULL: no local key is found */
    pthread_mutex_t lock;
    struct renc_kek_entry cache[RENC_KEK_CACHE_MAX];
    size_t cached;
    uint64_t loads; /* KEKs read from the keyring */
};

static int renc_local_open(void **p, const struct renc_provider_config *config)
{
    struct renc_local *l = renc_calloc(1, sizeof *l);
    RENC_RETURN_IF(!l, -RENC_E_NOMEM);
    l->kr = config->keyring;
    pthread_mutex_init(&l->lock, NULL);
    *p = l;
    return 0;
}

static void renc_local_close(void *p)
{
    struct renc_local *l = p;
    for (size_t i = 0; i < l->cached; i++)
        renc_kek_free(l->cache[i].kek);
    pthread_mutex_destroy(&l->lock);
    renc_free(l);
}

/* The KEK of a versioned or unversioned ref; versioned gets the versioned
 * text.  The KEK stays owned by the cache. */
static int renc_local_kek(struct renc_local *l, const struct renc_keyref *ref_in,
                          const struct renc_kek **kek_out, char *versioned, size_t max)
{
    struct renc_keyref ref = *ref_in;
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    /* States first, on every call. */
    int rc = renc_keyring_load(l->kr, ref.name, ref.version, NULL, ref.version);
    if (rc || (rc = renc_keyref_format(versioned, max, &ref)))
        return rc;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->cached; i++) {
        if (strcmp(l->cache[i].ref, versioned) == 0) {
            *kek_out = l->cache[i].kek;
            pthread_mutex_unlock(&l->lock);
            return 0;
        }
    }
    struct renc_kek *kek = NULL;
    if (l->cached >= RENC_KEK_CACHE_MAX)
        rc = -RENC_E_TOO_BIG; /* more distinct KEKs in one run than cached */
    else if (strlen(versioned) >= sizeof l->cache[0].ref)
        rc = -RENC_E_TOO_BIG;
    else if ((rc = renc_keyring_load(l->kr, ref.name, ref.version, &kek, NULL)) == 0) {
        strcpy(l->cache[l->cached].ref, versioned);
        l->cache[l->cached++].kek = kek;
        l->loads++;
        *kek_out = kek;
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int renc_local_resolve(void *p, const struct renc_keyref *ref, char *versioned,
                              size_t max)
{
    const struct renc_kek *kek;
    return renc_local_kek(p, ref, &kek, versioned, max);
}

static int renc_local_wrap_target(void *p, const struct renc_keyref *ref,
                                  struct renc_provider_target *t)
{
    /* The keyring refuses a disabled version itself. */
    const struct renc_kek *kek;
    int rc = renc_local_kek(p, ref, &kek, t->versioned, sizeof t->versioned);
    if (rc == 0) {
        t->alg = renc_kek_default_alg(kek);
        t->key = kek;
    }
    return rc;
}

static int renc_local_wrap(void *p, const struct renc_provider_target *t,
                           const struct renc_key *dek, uint8_t *out, size_t max, size_t *out_len,
                           char *versioned, size_t vmax)
{
    (void)p, (void)versioned, (void)vmax; /* the version is the one asked for */
    return renc_kek_wrap(t->key, t->alg, out, max, out_len, dek);
}

static int renc_local_unwrap_target(void *p, const struct renc_keyref *ref, int alg,
                                    struct renc_provider_target *t)
{
    const struct renc_kek *kek;
    int rc = renc_local_kek(p, ref, &kek, t->versioned, sizeof t->versioned);
    if (rc)
        return rc;
    RENC_RETURN_IF(!renc_kek_alg_fits(kek, alg), -RENC_E_KEY_TYPE);
    t->alg = alg;
    t->key = kek;
    return 0;
}

static int renc_local_unwrap(void *p, const struct renc_provider_target *t,
                             const uint8_t *wrapped, size_t wrapped_len, struct renc_key **dek)
{
    (void)p;
    return renc_kek_unwrap(t->key, t->alg, dek, wrapped, wrapped_len);
}

static int renc_local_can_unwrap(void *p, const struct renc_keyref *ref)
{
    char versioned[RENC_MAX_REF_LEN + 1];
    return renc_local_resolve(p, ref, versioned, sizeof versioned);
}

/* A keyring version as the table describes it. */
static int renc_local_version(struct renc_provider_version *v, const struct renc_keyring_key *key,
                              const struct renc_keyring_version *kv)
{
    struct renc_keyref r = {.provider = RENC_PROVIDER_LOCAL};
    memset(v, 0, sizeof *v);
    strcpy(r.name, key->name);
    strcpy(r.version, kv->version);
    v->revoked = key->state == RENC_KEY_REVOKED || kv->state == RENC_KEY_REVOKED;
    v->enabled = kv->state == RENC_KEY_ENABLED && !v->revoked;
    v->may_wrap = v->revoked ? -RENC_E_KEY_REVOKED : v->enabled ? 0 : -RENC_E_KEY_DISABLED;
    v->can_unwrap = v->may_wrap;
    return renc_keyref_format(v->ref, sizeof v->ref, &r);
}

static int renc_local_list_versions(void *p, const struct renc_keyref *ref,
                                    int (*fn)(void *arg, const struct renc_provider_version *v),
                                    void *arg)
{
    struct renc_local *l = p;
    struct renc_keyring_key key;
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    int rc = renc_keyring_get(l->kr, ref->name, &key);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < key.version_count; i++) {
        struct renc_provider_version v;
        if ((rc = renc_local_version(&v, &key, &key.versions[i])) == 0)
            rc = fn(arg, &v);
    }
    renc_keyring_key_cleanup(&key);
    return rc;
}

struct renc_local_find {
    const char *want; /* the versioned ref */
    struct renc_provider_version *out;
    int found;
};

static int renc_local_find_version(void *arg, const struct renc_provider_version *v)
{
    struct renc_local_find *f = arg;
    if (strcmp(v->ref, f->want) == 0) {
        *f->out = *v;
        f->found = 1;
    }
    return 0;
}

static int renc_local_describe(void *p, const struct renc_keyref *ref,
                               struct renc_provider_version *out)
{
    struct renc_local *l = p;
    struct renc_keyref r = *ref;
    struct renc_keyring_key key;
    char want[RENC_MAX_REF_LEN + 1];
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    if (!r.version[0]) {
        int rc = renc_keyring_get(l->kr, r.name, &key);
        if (rc)
            return rc;
        strcpy(r.version, key.current);
        renc_keyring_key_cleanup(&key);
    }
    struct renc_local_find f = {.want = want, .out = out};
    int rc = renc_keyref_format(want, sizeof want, &r);
    if (rc == 0)
        rc = renc_local_list_versions(p, &r, renc_local_find_version, &f);
    return rc ? rc : f.found ? 0 : -RENC_E_KEY_NOT_FOUND;
}

static void renc_local_stats(void *p, struct renc_provider_stats *out)
{
    struct renc_local *l = p;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&l->lock);
    out->gets = l->loads;
    pthread_mutex_unlock(&l->lock);
}

static int renc_local_create(void *p, const struct renc_keyref *ref, enum renc_kek_type type,
                             unsigned bits)
{
    struct renc_local *l = p;
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    RENC_RETURN_IF(ref->version[0], -RENC_E_BAD_KEYREF);
    return renc_keyring_create_key(l->kr, ref->name, type, bits);
}

static int renc_local_rotate(void *p, const struct renc_keyref *ref, char *versioned, size_t max)
{
    struct renc_local *l = p;
    struct renc_keyref r = *ref;
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    RENC_RETURN_IF(ref->version[0], -RENC_E_BAD_KEYREF);
    int rc = renc_keyring_rotate(l->kr, ref->name, r.version);
    return rc ? rc : renc_keyref_format(versioned, max, &r);
}

static int renc_local_set_state(void *p, const struct renc_keyref *ref,
                                enum renc_key_state state)
{
    struct renc_local *l = p;
    RENC_RETURN_IF(!l->kr, -RENC_E_KEY_NOT_FOUND);
    return renc_keyring_set_state(l->kr, ref->name, ref->version[0] ? ref->version : NULL,
                                  state);
}

const struct renc_provider_ops renc_provider_local = {
    .name = "local",
    .scheme = "local:",
    .id = RENC_PROVIDER_LOCAL,
    .caps = RENC_PROVIDER_KEYRING,
    .display = "keyring",
    .report_key = NULL,
    .holder = "keyring",
    .key_form = "local:NAME",
    .managed_at = NULL,
    .open = renc_local_open,
    .close = renc_local_close,
    .resolve = renc_local_resolve,
    .wrap_target = renc_local_wrap_target,
    .wrap = renc_local_wrap,
    .unwrap_target = renc_local_unwrap_target,
    .unwrap = renc_local_unwrap,
    .can_unwrap = renc_local_can_unwrap,
    .describe = renc_local_describe,
    .list_versions = renc_local_list_versions,
    .stats = renc_local_stats,
    .create = renc_local_create,
    .rotate = renc_local_rotate,
    .set_state = renc_local_set_state,
};
