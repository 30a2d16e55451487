/* keys/provider_pkcs11.c — the `pkcs11` provider's table over pkcs11.h:
 * keys held in a PKCS#11 token (an HSM), which wraps and unwraps inside
 * it.  Access and a version's enabled state are the token's (its
 * CKA_UNWRAP, its objects), so the provider grants like a vault
 * (RENC_PROVIDER_HOLDER_GRANTS); unlike a vault the tool can generate and
 * disable keys there.  docs/HSM.md. */
#include "keys/provider.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "keys/pkcs11.h"

static int renc_pkcs11_open_op(void **p, const struct renc_provider_config *config)
{
    *p = NULL;
    if (!config->open_remote)
        return 0;
    struct renc_p11_options o = {
        .module = config->pkcs11.module,
        .pin = config->pkcs11.pin,
        .note = config->note,
        .note_arg = config->note_arg,
    };
    struct renc_p11 *h = NULL;
    int rc = renc_p11_new(&h, &o);
    if (rc == 0)
        *p = h;
    return rc;
}

static void renc_pkcs11_close_op(void *p)
{
    renc_p11_free(p);
}

static int renc_pkcs11_copy(char *out, size_t max, const char *ref)
{
    return snprintf(out, max, "%s", ref) >= (int)max ? -RENC_E_TOO_BIG : 0;
}

static int renc_pkcs11_resolve_op(void *p, const struct renc_keyref *ref, char *versioned,
                                  size_t max)
{
    struct renc_p11_key k;
    int rc = renc_p11_key_get(p, ref, &k);
    return rc ? rc : renc_pkcs11_copy(versioned, max, k.versioned);
}

static int renc_pkcs11_wrap_target_op(void *p, const struct renc_keyref *ref,
                                      struct renc_provider_target *t)
{
    struct renc_p11_key k;
    int rc = renc_p11_key_get(p, ref, &k);
    if (rc == 0)
        rc = renc_pkcs11_copy(t->versioned, sizeof t->versioned, k.versioned);
    if (rc == 0 && !k.can_wrap)
        rc = -RENC_E_KEY_DISABLED;
    if (rc == 0 && !k.default_alg)
        rc = renc_p11_alg_check(p, &k, k.type == RENC_KEK_RSA ? RENC_ALG_RSA_OAEP_SHA1
                                                               : RENC_ALG_AES_KWP);
    if (rc == 0) {
        t->alg = k.default_alg;
        t->key = NULL;
    }
    return rc;
}

static int renc_pkcs11_wrap_op(void *p, const struct renc_provider_target *t,
                               const struct renc_key *dek, uint8_t *out, size_t max,
                               size_t *out_len, char *versioned, size_t vmax)
{
    (void)versioned, (void)vmax; /* the version is the one asked for */
    return renc_p11_wrap(p, t->versioned, t->alg, dek, out, max, out_len);
}

static int renc_pkcs11_unwrap_target_op(void *p, const struct renc_keyref *ref, int alg,
                                        struct renc_provider_target *t)
{
    /* The token checks the key's state on each unwrap (its CKA_UNWRAP);
     * a DEK cache hit does not ask it, as for a vault. */
    (void)p, (void)ref;
    RENC_RETURN_IF(alg < RENC_ALG_AES_KWP || alg > RENC_ALG_AES_KW, -RENC_E_BAD_ALG);
    t->alg = alg;
    t->key = NULL;
    return 0;
}

static int renc_pkcs11_unwrap_op(void *p, const struct renc_provider_target *t,
                                 const uint8_t *wrapped, size_t wrapped_len,
                                 struct renc_key **dek)
{
    int rc = renc_p11_unwrap(p, t->versioned, t->alg, wrapped, wrapped_len, dek);
    if (rc == -RENC_E_KEY_TYPE || rc == -RENC_E_HSM) {
        /* Say which: the alg does not fit the key, or the token lacks it. */
        struct renc_keyref ref;
        struct renc_p11_key k;
        int why = 0;
        if (renc_keyref_parse(&ref, t->versioned) == 0 && renc_p11_key_get(p, &ref, &k) == 0)
            why = renc_p11_alg_check(p, &k, t->alg);
        if (why)
            rc = why;
    }
    return rc;
}

static int renc_pkcs11_can_unwrap_op(void *p, const struct renc_keyref *ref)
{
    struct renc_p11_key k;
    int rc = renc_p11_key_get(p, ref, &k);
    return rc ? rc : k.can_unwrap ? 0 : -RENC_E_KEY_DISABLED;
}

static void renc_pkcs11_version(struct renc_provider_version *v, const struct renc_p11_key *k)
{
    memset(v, 0, sizeof *v);
    strcpy(v->ref, k->versioned);
    v->enabled = k->can_unwrap;
    v->can_unwrap = k->can_unwrap ? 0 : -RENC_E_KEY_DISABLED;
    v->may_wrap = k->can_wrap ? 0 : -RENC_E_KEY_DISABLED;
}

static int renc_pkcs11_describe_op(void *p, const struct renc_keyref *ref,
                                   struct renc_provider_version *out)
{
    struct renc_p11_key k;
    int rc = renc_p11_key_get(p, ref, &k);
    if (rc == 0)
        renc_pkcs11_version(out, &k);
    return rc;
}

struct renc_pkcs11_list_ctx {
    int (*fn)(void *arg, const struct renc_provider_version *v);
    void *arg;
};

static int renc_pkcs11_list_one(void *arg, const struct renc_p11_key *k)
{
    struct renc_pkcs11_list_ctx *c = arg;
    struct renc_provider_version v;
    renc_pkcs11_version(&v, k);
    return c->fn(c->arg, &v);
}

static int renc_pkcs11_list_versions_op(void *p, const struct renc_keyref *ref,
                                        int (*fn)(void *arg,
                                                  const struct renc_provider_version *v),
                                        void *arg)
{
    struct renc_pkcs11_list_ctx c = {.fn = fn, .arg = arg};
    return renc_p11_list(p, ref, renc_pkcs11_list_one, &c);
}

static void renc_pkcs11_stats_op(void *p, struct renc_provider_stats *out)
{
    struct renc_p11_stats s;
    renc_p11_stats(p, &s);
    *out = (struct renc_provider_stats){
        .requests = s.calls, .gets = s.finds, .wraps = s.wraps, .unwraps = s.unwraps,
        .tokens = s.logins,
    };
}

static int renc_pkcs11_create_op(void *p, const struct renc_keyref *ref, enum renc_kek_type type,
                                 unsigned bits)
{
    char versioned[RENC_MAX_REF_LEN + 1];
    return renc_p11_generate(p, ref, 1, type, bits, versioned, sizeof versioned);
}

static int renc_pkcs11_rotate_op(void *p, const struct renc_keyref *ref, char *versioned,
                                 size_t max)
{
    return renc_p11_generate(p, ref, 0, RENC_KEK_AES256, 0, versioned, max);
}

static int renc_pkcs11_set_state_op(void *p, const struct renc_keyref *ref,
                                    enum renc_key_state state)
{
    /* Revocation is access withdrawn at the token (its PIN, the object
     * removed): the tool locks environments, it does not revoke there. */
    RENC_RETURN_IF(state == RENC_KEY_REVOKED, -RENC_E_UNSUPPORTED);
    return renc_p11_set_enabled(p, ref, state == RENC_KEY_ENABLED);
}

const struct renc_provider_ops renc_provider_pkcs11 = {
    .name = "pkcs11",
    .scheme = "pkcs11:",
    .id = RENC_PROVIDER_PKCS11,
    .caps = RENC_PROVIDER_HOLDER_GRANTS,
    .display = "HSM",
    .report_key = "hsm",
    .holder = "token",
    .key_form = "pkcs11:token=LABEL;object=NAME",
    .managed_at = NULL,
    .open = renc_pkcs11_open_op,
    .close = renc_pkcs11_close_op,
    .resolve = renc_pkcs11_resolve_op,
    .wrap_target = renc_pkcs11_wrap_target_op,
    .wrap = renc_pkcs11_wrap_op,
    .unwrap_target = renc_pkcs11_unwrap_target_op,
    .unwrap = renc_pkcs11_unwrap_op,
    .can_unwrap = renc_pkcs11_can_unwrap_op,
    .describe = renc_pkcs11_describe_op,
    .list_versions = renc_pkcs11_list_versions_op,
    .stats = renc_pkcs11_stats_op,
    .create = renc_pkcs11_create_op,
    .rotate = renc_pkcs11_rotate_op,
    .set_state = renc_pkcs11_set_state_op,
};
