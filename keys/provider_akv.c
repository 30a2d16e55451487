/* keys/provider_akv.c — the `akv` provider's table over akv.h: keys that
 * live in a key vault, which wraps and unwraps for the tool.  The state is
 * the struct renc_akv itself (its key cache, pools and pacing are akv.c's). */
#include "keys/provider.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"

static int renc_akv_open_op(void **p, const struct renc_provider_config *config)
{
    *p = NULL;
    if (!config->open_remote)
        return 0;
    struct renc_akv_options o = config->akv;
    o.note = config->note;
    o.note_arg = config->note_arg;
    struct renc_akv *a = NULL;
    int rc = renc_akv_new(&a, &o);
    if (rc == 0)
        *p = a;
    return rc;
}

static void renc_akv_close_op(void *p)
{
    renc_akv_free(p);
}

static int renc_akv_copy_ref(char *out, size_t max, const char *ref)
{
    return snprintf(out, max, "%s", ref) >= (int)max ? -RENC_E_TOO_BIG : 0;
}

static int renc_akv_resolve_op(void *p, const struct renc_keyref *ref, char *versioned,
                               size_t max)
{
    struct renc_akv_key k;
    int rc = renc_akv_get_key(p, ref, &k);
    return rc ? rc : renc_akv_copy_ref(versioned, max, k.ref);
}

static int renc_akv_wrap_target_op(void *p, const struct renc_keyref *ref,
                                   struct renc_provider_target *t)
{
    struct renc_akv_key k;
    int rc = renc_akv_get_key(p, ref, &k);
    if (rc == 0)
        rc = renc_akv_copy_ref(t->versioned, sizeof t->versioned, k.ref);
    /* A version disabled (or expired) since the last wrap seals nothing
     * more once the vault's answer says so. */
    if (rc == 0)
        rc = renc_akv_wrap_allowed(&k);
    if (rc == 0) {
        t->alg = renc_akv_default_alg(&k);
        t->key = NULL;
    }
    return rc;
}

static int renc_akv_wrap_op(void *p, const struct renc_provider_target *t,
                            const struct renc_key *dek, uint8_t *out, size_t max, size_t *out_len,
                            char *versioned, size_t vmax)
{
    /* The slot names the versioned kid the vault answers with. */
    struct renc_keyref vref;
    int rc = renc_keyref_parse(&vref, t->versioned);
    return rc ? rc
              : renc_akv_wrap(p, &vref, t->alg, dek, out, max, out_len, versioned, vmax);
}

static int renc_akv_unwrap_target_op(void *p, const struct renc_keyref *ref, int alg,
                                     struct renc_provider_target *t)
{
    /* The vault checks the key's state on each unwrap; a DEK cache hit
     * does not ask it (that is the cache's purpose).  t->versioned keeps
     * the slot's own spelling. */
    (void)p, (void)ref;
    t->alg = alg;
    t->key = NULL;
    return 0;
}

static int renc_akv_unwrap_op(void *p, const struct renc_provider_target *t,
                              const uint8_t *wrapped, size_t wrapped_len, struct renc_key **dek)
{
    struct renc_keyref ref;
    int rc = renc_keyref_parse(&ref, t->versioned);
    return rc ? rc : renc_akv_unwrap(p, &ref, t->alg, wrapped, wrapped_len, dek);
}

static int renc_akv_can_unwrap_op(void *p, const struct renc_keyref *ref)
{
    struct renc_akv_key k;
    int rc = renc_akv_get_key(p, ref, &k);
    /* The vault refuses unwraps under a disabled version; an expired one
     * still unwraps (docs/KEYVAULT.md, "What the vault's answers do"). */
    return rc ? rc : k.enabled ? 0 : -RENC_E_KEY_DISABLED;
}

static int renc_akv_version(struct renc_provider_version *v, const struct renc_akv_key *k)
{
    memset(v, 0, sizeof *v);
    v->enabled = k->enabled;
    v->nbf = k->nbf;
    v->exp = k->exp;
    v->may_wrap = renc_akv_wrap_allowed(k);
    v->can_unwrap = k->enabled ? 0 : -RENC_E_KEY_DISABLED;
    return renc_akv_copy_ref(v->ref, sizeof v->ref, k->ref);
}

static int renc_akv_describe_op(void *p, const struct renc_keyref *ref,
                                struct renc_provider_version *out)
{
    struct renc_akv_key k;
    int rc = renc_akv_get_key(p, ref, &k);
    return rc ? rc : renc_akv_version(out, &k);
}

struct renc_akv_list_ctx {
    int (*fn)(void *arg, const struct renc_provider_version *v);
    void *arg;
};

static int renc_akv_list_one(void *arg, const struct renc_akv_key *k)
{
    struct renc_akv_list_ctx *c = arg;
    struct renc_provider_version v;
    int rc = renc_akv_version(&v, k);
    return rc ? rc : c->fn(c->arg, &v);
}

static int renc_akv_list_versions_op(void *p, const struct renc_keyref *ref,
                                     int (*fn)(void *arg, const struct renc_provider_version *v),
                                     void *arg)
{
    struct renc_akv_list_ctx c = {.fn = fn, .arg = arg};
    return renc_akv_list_versions(p, ref, renc_akv_list_one, &c);
}

static void renc_akv_stats_op(void *p, struct renc_provider_stats *out)
{
    struct renc_akv_stats s;
    renc_akv_stats(p, &s);
    *out = (struct renc_provider_stats){
        .requests = s.requests, .gets = s.gets, .lists = s.lists, .wraps = s.wraps,
        .unwraps = s.unwraps, .tokens = s.tokens, .retries = s.retries,
        .throttled = s.throttled, .server_errors = s.server_errors,
        .network_errors = s.network_errors, .paced = s.paced, .paced_s = s.paced_s,
        .pace_cuts = s.pace_cuts, .rate_limit = s.rate_limit, .rate_now = s.rate_now,
        .rate_window_s = s.rate_window_s,
    };
}

const struct renc_provider_ops renc_provider_akv = {
    .name = "akv",
    .scheme = "akv:",
    .id = RENC_PROVIDER_AKV,
    .caps = RENC_PROVIDER_REMOTE | RENC_PROVIDER_HOLDER_GRANTS,
    .display = "key vault",
    .report_key = "key_vault",
    .holder = "vault",
    .key_form = "akv:https://VAULT/keys/NAME",
    .managed_at = "vault keys are created, rotated and disabled at the vault",
    .open = renc_akv_open_op,
    .close = renc_akv_close_op,
    .resolve = renc_akv_resolve_op,
    .wrap_target = renc_akv_wrap_target_op,
    .wrap = renc_akv_wrap_op,
    .unwrap_target = renc_akv_unwrap_target_op,
    .unwrap = renc_akv_unwrap_op,
    .can_unwrap = renc_akv_can_unwrap_op,
    .describe = renc_akv_describe_op,
    .list_versions = renc_akv_list_versions_op,
    .stats = renc_akv_stats_op,
    /* create, rotate, set_state: at the vault. */
};
