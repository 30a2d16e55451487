/* keys/akv_keys.c — what the vault says about keys: KeyBundles and their
 * cache, the versions of a key, whether a key may wrap, and the mapping of
 * a vault's error answers to the domain's.  The requests themselves go
 * through akv.c (renc_akv_vault_call). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/pace.h"
#include "crypto/kek.h"
#include "keys/akv_internal.h"

#define RENC_AKV_KEY_TTL_NS (60ull * 1000000000ull)

/* A 404 KeyNotFound: the vault has no such key (a key is deleted whole; a
 * version cannot be removed on its own), so every blob under it fails the
 * same way.  Any other 404 is a wrong path, not a key's fate. */
static int renc_akv_map_404(const char *outer)
{
    return strcmp(outer, "KeyNotFound") == 0 ? -RENC_E_KEY_DELETED : -RENC_E_KEY_NOT_FOUND;
}

/* A 403.  Only a denial of the caller's access to the key (an access
 * policy, an RBAC role, or the older AccessDenied, and a 403 that names no
 * cause on a read) means the customer withdrew access: that locks the
 * environments on the key.  A network rule (the vault's firewall, or public
 * access off without a private link) refuses the operator's machine, not the
 * key: the run stops and nothing is locked. */
static int renc_akv_map_403(const char *op, const char *inner, int has_validity)
{
    static const char *const network[] = {"ForbiddenByFirewall", "ForbiddenByConnection",
                                          "ForbiddenByNetworkAcl"};
    static const char *const access[] = {"ForbiddenByPolicy", "ForbiddenByRbac", "AccessDenied"};
    if (strcmp(inner, "KeyDisabled") == 0)
        return -RENC_E_KEY_DISABLED;
    if (strcmp(inner, "KeyOperationForbidden") == 0)
        return -RENC_E_KEY_OP;
    if (strcmp(op, "wrapkey") == 0 && !inner[0] && has_validity)
        return -RENC_E_KEY_EXPIRED; /* the vault names no cause; the attributes do */
    for (size_t i = 0; i < sizeof network / sizeof *network; i++)
        if (strcmp(inner, network[i]) == 0)
            return -RENC_E_VAULT_DENIED;
    for (size_t i = 0; i < sizeof access / sizeof *access; i++)
        if (strcmp(inner, access[i]) == 0)
            return -RENC_E_KEY_REVOKED;
    /* No inner code: the older service's access denial.  An inner code not
     * known here is not taken as a revocation. */
    return inner[0] ? -RENC_E_VAULT_DENIED : -RENC_E_KEY_REVOKED;
}

int renc_akv_map_error(const char *op, long status, const char *body, size_t len,
                       int has_validity, char *code, size_t code_max)
{
    char outer[64] = "", inner[64] = "";
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *err = root ? json_object_get(root, "error") : NULL;
    if (json_is_object(err)) {
        const char *c = json_string_value(json_object_get(err, "code"));
        json_t *ie = json_object_get(err, "innererror");
        /* innererror may nest: the innermost code is the most specific. */
        const char *ic = NULL;
        for (int depth = 0; json_is_object(ie) && depth < 16; depth++) {
            const char *x = json_string_value(json_object_get(ie, "code"));
            if (x)
                ic = x;
            ie = json_object_get(ie, "innererror");
        }
        snprintf(outer, sizeof outer, "%s", c ? c : "");
        snprintf(inner, sizeof inner, "%s", ic ? ic : "");
    }
    json_decref(root);
    if (code)
        snprintf(code, code_max, "%s%s%s", outer, inner[0] ? "/" : "", inner);
    if (status == 404)
        return renc_akv_map_404(outer);
    if (status == 403)
        return renc_akv_map_403(op, inner, has_validity);
    if (status == 400 && strcmp(op, "unwrapkey") == 0)
        return -RENC_E_UNWRAP;
    return -RENC_E_VAULT;
}

/* The error of a non-2xx vault answer, noted for the operator when it is
 * not one the domain names on its own. */
int renc_akv_error(struct renc_akv *a, const char *op, const char *url,
                   const struct renc_http_response *resp, const struct renc_akv_key *k)
{
    char code[130];
    int rc = renc_akv_map_error(op, resp->status, resp->body, resp->len,
                                k && (k->exp || k->nbf), code, sizeof code);
    if (rc == -RENC_E_VAULT || rc == -RENC_E_KEY_REVOKED || rc == -RENC_E_VAULT_DENIED ||
        rc == -RENC_E_KEY_DELETED)
        renc_akv_note(a, "akv: %s: HTTP %ld %s (request %s)", url, resp->status, code,
                      resp->request_id[0] ? resp->request_id : "-");
    return rc;
}

/* The URL of ref's key, with suffix ("" or "/wrapkey"...) and the api
 * version. */
int renc_akv_url(char *out, size_t max, const struct renc_keyref *ref, const char *suffix)
{
    int n = ref->version[0]
                ? snprintf(out, max, "%s/keys/%s/%s%s?" RENC_AKV_API, ref->vault, ref->name,
                           ref->version, suffix)
                : snprintf(out, max, "%s/keys/%s%s?" RENC_AKV_API, ref->vault, ref->name, suffix);
    return n < 0 || (size_t)n >= max ? -RENC_E_TOO_BIG : 0;
}

/* A kid of this vault ("https://host/keys/name/version") as a ref. */
int renc_akv_kid_ref(char *out, size_t max, const char *kid, const struct renc_keyref *asked)
{
    struct renc_keyref r;
    int n = snprintf(out, max, "akv:%s", kid);
    RENC_RETURN_IF(n < 0 || (size_t)n >= max, -RENC_E_VAULT);
    RENC_RETURN_IF(renc_keyref_parse(&r, out) != 0 || !r.version[0], -RENC_E_VAULT);
    /* The answer must be about the key that was asked for. */
    RENC_RETURN_IF(!renc_keyref_same_key(&r, asked), -RENC_E_VAULT);
    RENC_RETURN_IF(asked->version[0] && strcasecmp(r.version, asked->version) != 0, -RENC_E_VAULT);
    return 0;
}

static int64_t renc_json_int(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Reads a KeyBundle or KeyItem into k. */
static int renc_akv_parse_key(const struct renc_keyref *asked, json_t *bundle, struct renc_akv_key *k)
{
    memset(k, 0, sizeof *k);
    json_t *key = json_object_get(bundle, "key");
    const char *kid = key ? json_string_value(json_object_get(key, "kid"))
                          : json_string_value(json_object_get(bundle, "kid"));
    RENC_RETURN_IF(!kid, -RENC_E_VAULT);
    int rc = renc_akv_kid_ref(k->ref, sizeof k->ref, kid, asked);
    if (rc)
        return rc;
    json_t *attr = json_object_get(bundle, "attributes");
    json_t *en = json_object_get(attr, "enabled");
    k->enabled = !json_is_false(en);
    k->nbf = renc_json_int(attr, "nbf");
    k->exp = renc_json_int(attr, "exp");
    if (!key)
        return 0; /* a KeyItem: no type, no key_ops */
    const char *kty = json_string_value(json_object_get(key, "kty"));
    RENC_RETURN_IF(!kty, -RENC_E_VAULT);
    if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0) {
        k->kty = RENC_AKV_RSA;
        const char *n = json_string_value(json_object_get(key, "n"));
        RENC_RETURN_IF(!n, -RENC_E_VAULT);
        size_t nl = strlen(n);
        while (nl > 0 && n[nl - 1] == '=')
            nl--;
        size_t bytes = nl * 3 / 4;
        k->bits = (unsigned)(bytes * 8);
        /* A leading zero byte of the modulus does not count. */
        if (k->bits % 1024 == 8)
            k->bits -= 8;
    } else if (strcmp(kty, "oct") == 0 || strcmp(kty, "oct-HSM") == 0) {
        k->kty = RENC_AKV_OCT;
        k->bits = 256; /* not in the bundle: see renc_akv_key_op */
    } else {
        return -RENC_E_KEY_TYPE; /* EC keys cannot wrap */
    }
    k->hsm = strstr(kty, "-HSM") != NULL;
    json_t *ops = json_object_get(key, "key_ops");
    if (!json_is_array(ops)) {
        k->ops = RENC_AKV_OP_WRAP | RENC_AKV_OP_UNWRAP;
    } else {
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) {
            const char *s = json_string_value(op);
            if (s && strcmp(s, "wrapKey") == 0)
                k->ops |= RENC_AKV_OP_WRAP;
            if (s && strcmp(s, "unwrapKey") == 0)
                k->ops |= RENC_AKV_OP_UNWRAP;
        }
    }
    return 0;
}

int renc_akv_parse_key_json(const struct renc_keyref *asked, const char *body, size_t len,
                            struct renc_akv_key *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    int rc = json_is_object(root) ? renc_akv_parse_key(asked, root, out) : -RENC_E_VAULT;
    json_decref(root);
    return rc;
}

static int renc_akv_cached_key(struct renc_akv *a, const char *ref_text, struct renc_akv_key *out)
{
    uint64_t now = renc_now_ns();
    int rc = -RENC_E_KEY_NOT_FOUND;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nkeys; i++) {
        if (strcmp(a->keys[i].ref, ref_text) == 0 && now - a->keys[i].fetched_ns < RENC_AKV_KEY_TTL_NS) {
            *out = a->keys[i].key;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

static void renc_akv_cache_key(struct renc_akv *a, const char *ref_text, const struct renc_akv_key *k)
{
    pthread_mutex_lock(&a->lock);
    size_t i = 0;
    while (i < a->nkeys && strcmp(a->keys[i].ref, ref_text) != 0)
        i++;
    if (i == a->nkeys && a->nkeys == a->capkeys) {
        size_t cap = a->capkeys ? a->capkeys * 2 : 8;
        struct renc_akv_keyent *nk = renc_realloc(a->keys, cap * sizeof *nk);
        if (!nk) {
            pthread_mutex_unlock(&a->lock);
            return; /* not caching only costs a request later */
        }
        a->keys = nk;
        a->capkeys = cap;
    }
    if (i == a->nkeys)
        a->nkeys++;
    snprintf(a->keys[i].ref, sizeof a->keys[i].ref, "%s", ref_text);
    a->keys[i].key = *k;
    a->keys[i].fetched_ns = renc_now_ns();
    pthread_mutex_unlock(&a->lock);
}

int renc_akv_get_key(struct renc_akv *a, const struct renc_keyref *ref, struct renc_akv_key *out)
{
    char text[RENC_MAX_REF_LEN + 1], url[RENC_MAX_REF_LEN + 64];
    RENC_RETURN_IF(ref->provider != RENC_PROVIDER_AKV, -RENC_E_INVALID);
    int rc = renc_keyref_format(text, sizeof text, ref);
    if (rc || renc_akv_cached_key(a, text, out) == 0)
        return rc;
    struct renc_akv_vault *v;
    if ((rc = renc_akv_vault(a, ref->vault, &v)) || (rc = renc_akv_url(url, sizeof url, ref, "")))
        return rc;
    struct renc_http_response resp;
    renc_akv_count(a, &a->stats.gets);
    rc = renc_akv_vault_call(a, v, "GET", url, NULL, 0, &resp);
    if (rc == 0 && resp.status != 200)
        rc = renc_akv_error(a, "get", url, &resp, NULL);
    if (rc == 0)
        rc = renc_akv_parse_key_json(ref, resp.body, resp.len, out);
    renc_http_response_cleanup(&resp);
    if (rc)
        return rc;
    renc_akv_cache_key(a, text, out);
    if (!ref->version[0])
        renc_akv_cache_key(a, out->ref, out);
    renc_akv_size_pace(a, v, out);
    return 0;
}

int renc_akv_list_versions(struct renc_akv *a, const struct renc_keyref *ref,
                           int (*fn)(void *arg, const struct renc_akv_key *k), void *arg)
{
    char url[4096];
    struct renc_akv_vault *v;
    int rc = renc_akv_vault(a, ref->vault, &v);
    if (rc)
        return rc;
    int n = snprintf(url, sizeof url, "%s/keys/%s/versions?maxresults=25&" RENC_AKV_API,
                     ref->vault, ref->name);
    RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url, -RENC_E_TOO_BIG);
    struct renc_keyref key = *ref;
    key.version[0] = '\0';
    for (int pages = 0; rc == 0 && url[0]; pages++) {
        RENC_RETURN_IF(pages > 10000, -RENC_E_VAULT);
        struct renc_http_response resp;
        renc_akv_count(a, &a->stats.lists);
        rc = renc_akv_vault_call(a, v, "GET", url, NULL, 0, &resp);
        if (rc == 0 && resp.status != 200)
            rc = renc_akv_error(a, "list", url, &resp, NULL);
        json_t *root = rc == 0 ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
        if (rc == 0 && !json_is_array(json_object_get(root, "value")))
            rc = -RENC_E_VAULT;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(root, "value"), i, item) {
            struct renc_akv_key k;
            if (rc == 0)
                rc = renc_akv_parse_key(&key, item, &k);
            if (rc == 0)
                rc = fn(arg, &k);
        }
        /* nextLink is followed verbatim, but only on the same vault. */
        const char *next = json_string_value(json_object_get(root, "nextLink"));
        url[0] = '\0';
        if (rc == 0 && next && next[0]) {
            if (!renc_http_same_origin(next, ref->vault) || strlen(next) >= sizeof url) {
                renc_akv_note(a, "akv: %s: a page of versions links outside the vault: not followed",
                              ref->vault);
                rc = -RENC_E_VAULT;
            } else {
                snprintf(url, sizeof url, "%s", next);
            }
        }
        json_decref(root);
        renc_http_response_cleanup(&resp);
    }
    return rc;
}

int renc_akv_wrap_allowed(const struct renc_akv_key *k)
{
    /* The service wraps under a disabled version (it refuses only the
     * unwrap), so the check is the client's: a customer who disables the
     * current version wants nothing new sealed under it. */
    RENC_RETURN_IF(!k->enabled, -RENC_E_KEY_DISABLED);
    int64_t now = (int64_t)time(NULL);
    RENC_RETURN_IF((k->nbf && now < k->nbf) || (k->exp && now >= k->exp), -RENC_E_KEY_EXPIRED);
    return 0;
}

int renc_akv_default_alg(const struct renc_akv_key *k)
{
    return k->kty == RENC_AKV_OCT ? RENC_ALG_AES_KW : RENC_ALG_RSA_OAEP_256;
}

int renc_akv_alg_fits(const struct renc_akv_key *k, int alg)
{
    if (k->kty == RENC_AKV_OCT)
        return alg == RENC_ALG_AES_KW;
    return alg == RENC_ALG_RSA_OAEP_256 || alg == RENC_ALG_RSA_OAEP_SHA1;
}
