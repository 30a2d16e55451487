/* keys/akv.c — the vault provider's requests: vaults, the connection pool,
 * pacing, the 401 challenge and the token, wrap and unwrap, statistics.
 * Key answers, their cache and the error mapping are in akv_keys.c. */
#include "keys/akv.h"

#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "azure/challenge.h"
#include "azure/token.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/note.h"
#include "common/pace.h"
#include "crypto/kek.h"
#include "keys/akv_internal.h"
#include "net/http.h"
#include "net/retry.h"

/* Managed HSM does not throttle cryptographic operations (its scaling
 * guidance): its limit is the HSM partitions' capacity, which no table
 * gives.  So the pacer does not hold requests back ahead of the answers:
 * this ceiling is above what one HSM serves, concurrency stays bounded by
 * max_inflight, and a 429 or 503 still cuts the pace as for a vault. */
#define RENC_AKV_MHSM_CEILING 50000u

/* ---- jansson allocations are wiped: JSON here carries DEKs and tokens -- */

/* Plain malloc, not renc_malloc: jansson's own failure handling is not
 * what the allocation-failure sweep is about. */
static void *renc_json_malloc(size_t n)
{
    size_t *p = malloc(n + sizeof(size_t));
    if (!p)
        return NULL;
    *p = n;
    return p + 1;
}

static void renc_json_free(void *ptr)
{
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 1;
    renc_secmem_wipe(ptr, *p);
    free(p);
}

void renc_json_wipe_on_free(void)
{
    json_set_alloc_funcs(renc_json_malloc, renc_json_free);
}

/* ---- base64url without padding ---------------------------------------- */

int renc_b64url_encode(char *out, size_t max, const uint8_t *in, size_t len)
{
    size_t need = 4 * ((len + 2) / 3) + 1;
    RENC_RETURN_IF(need > max, -RENC_E_TOO_BIG);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return 0;
}

/* Decodes base64url (padding optional) into out; *len the byte count. */
int renc_b64url_decode(uint8_t *out, size_t max, size_t *len, const char *in)
{
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == '=')
        n--;
    RENC_RETURN_IF(n % 4 == 1, -RENC_E_VAULT);
    size_t padded = (n + 3) / 4 * 4;
    RENC_RETURN_IF(padded / 4 * 3 > max || padded > 8192, -RENC_E_TOO_BIG);
    char buf[8193];
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_')) {
            renc_secmem_wipe(buf, i);
            return -RENC_E_VAULT;
        }
        buf[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    for (size_t i = n; i < padded; i++)
        buf[i] = '=';
    int got = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)padded);
    renc_secmem_wipe(buf, padded);
    RENC_RETURN_IF(got < 0, -RENC_E_VAULT);
    *len = (size_t)got - (padded - n);
    return 0;
}

/* ---- options, vaults, connections ------------------------------------- */

unsigned renc_akv_documented_limit(enum renc_akv_kty kty, int hsm, unsigned bits)
{
    unsigned soft = kty == RENC_AKV_OCT ? 4000 : bits <= 2048 ? 4000 : bits <= 3072 ? 1000 : 500;
    return hsm ? soft / 2 : soft;
}

int renc_akv_new(struct renc_akv **out, const struct renc_akv_options *o)
{
    /* libcurl is set up with the first connection (renc_http_new), so a
     * command that uses no vault key never pays for it. */
    int rc;
    struct renc_akv *a = renc_calloc(1, sizeof *a);
    RENC_RETURN_IF(!a, -RENC_E_NOMEM);
    a->o = *o;
    if (!a->o.max_inflight)
        a->o.max_inflight = 16;
    if (a->o.rate_window_s <= 0)
        a->o.rate_window_s = 10;
    if (a->o.rate_share <= 0 || a->o.rate_share > 1)
        a->o.rate_share = 0.9;
    if (!a->o.timeout_ms)
        a->o.timeout_ms = 30000;
    struct renc_retry_options ro = {.name = "akv", .retries = o->retries,
                                    .throttle_wait_s = o->throttle_wait_s, .note = o->note,
                                    .note_arg = o->note_arg};
    renc_retry_init(&a->retry, &ro);
    struct renc_azure_token_hooks th = {.name = "akv", .retry = &a->retry, .note = o->note,
                                        .note_arg = o->note_arg};
    a->conns = renc_calloc(a->o.max_inflight, sizeof *a->conns);
    rc = a->conns ? renc_azure_tokens_new(&a->tokens, &o->cred, &th) : -RENC_E_NOMEM;
    if (rc) {
        renc_retry_cleanup(&a->retry);
        renc_free(a->conns);
        renc_free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->conn_free, NULL);
    *out = a;
    return 0;
}

void renc_akv_free(struct renc_akv *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->idle; i++)
        renc_http_free(a->conns[i]);
    for (size_t i = 0; i < a->nvaults; i++)
        renc_pace_destroy(&a->vaults[i].pace);
    renc_azure_tokens_free(a->tokens);
    renc_retry_cleanup(&a->retry);
    renc_free(a->conns);
    renc_free(a->keys);
    pthread_cond_destroy(&a->conn_free);
    pthread_mutex_destroy(&a->lock);
    renc_free(a);
}

void renc_akv_note(struct renc_akv *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    renc_note_vsend(a->o.note, a->o.note_arg, NULL, fmt, ap);
    va_end(ap);
}

/* A connection from the pool, waiting while max_inflight are in use. */
static int renc_akv_take(struct renc_akv *a, struct renc_http **out)
{
    pthread_mutex_lock(&a->lock);
    while (a->idle == 0 && a->created >= a->o.max_inflight)
        pthread_cond_wait(&a->conn_free, &a->lock);
    if (a->idle > 0) {
        *out = a->conns[--a->idle];
        pthread_mutex_unlock(&a->lock);
        return 0;
    }
    a->created++;
    pthread_mutex_unlock(&a->lock);
    struct renc_http_opts ho = {.ca_file = a->o.ca_file, .timeout_ms = a->o.timeout_ms,
                                .no_proxy = a->o.no_proxy};
    int rc = renc_http_new(out, &ho);
    if (rc) {
        pthread_mutex_lock(&a->lock);
        a->created--;
        pthread_cond_signal(&a->conn_free);
        pthread_mutex_unlock(&a->lock);
    }
    return rc;
}

static void renc_akv_give(struct renc_akv *a, struct renc_http *c)
{
    pthread_mutex_lock(&a->lock);
    a->conns[a->idle++] = c;
    pthread_cond_signal(&a->conn_free);
    pthread_mutex_unlock(&a->lock);
}

int renc_akv_is_mhsm_host(const char *host)
{
    /* NAME.managedhsm.azure.net and the other clouds' managedhsm domains. */
    const char *dot = strchr(host, '.');
    return dot && strncasecmp(dot + 1, "managedhsm.", 11) == 0;
}

/* The state of the vault at base, created on first use; base is compared
 * as an origin (case and an explicit :443 aside). */
int renc_akv_vault(struct renc_akv *a, const char *base_given, struct renc_akv_vault **out)
{
    char base[RENC_VAULT_MAX + 1];
    RENC_RETURN_IF(renc_keyref_vault_origin(base, sizeof base, base_given), -RENC_E_BAD_KEYREF);
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nvaults; i++) {
        if (strcmp(a->vaults[i].base, base) == 0) {
            *out = &a->vaults[i];
            pthread_mutex_unlock(&a->lock);
            return 0;
        }
    }
    if (a->nvaults >= RENC_AKV_MAX_VAULTS) {
        pthread_mutex_unlock(&a->lock);
        return -RENC_E_TOO_BIG;
    }
    struct renc_akv_vault *v = &a->vaults[a->nvaults];
    memset(v, 0, sizeof *v);
    snprintf(v->base, sizeof v->base, "%s", base);
    const char *h = base + strlen("https://");
    size_t hl = strcspn(h, ":/");
    if (hl >= sizeof v->host) {
        pthread_mutex_unlock(&a->lock);
        return -RENC_E_BAD_KEYREF;
    }
    memcpy(v->host, h, hl);
    v->host[hl] = '\0';
    v->mhsm = renc_akv_is_mhsm_host(v->host);
    v->limit = a->o.rate_limit;
    v->limit_fixed = a->o.rate_limit != 0;
    /* Until a key tells its type, the strictest documented limit. */
    unsigned start = v->limit  ? v->limit
                     : v->mhsm ? RENC_AKV_MHSM_CEILING
                               : (unsigned)(renc_akv_documented_limit(RENC_AKV_RSA, 1, 4096) *
                                            a->o.rate_share);
    renc_pace_init(&v->pace, start, a->o.rate_window_s);
    if (!v->limit_fixed)
        v->limit = start;
    v->rate = v->limit;
    a->nvaults++;
    *out = v;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* Sizes the vault's pacing from a key it serves: the lowest documented
 * limit of the keys in use, times rate_share. */
void renc_akv_size_pace(struct renc_akv *a, struct renc_akv_vault *v,
                        const struct renc_akv_key *k)
{
    if (v->limit_fixed || v->mhsm)
        return;
    unsigned want = (unsigned)(renc_akv_documented_limit(k->kty, k->hsm, k->bits) * a->o.rate_share);
    pthread_mutex_lock(&a->lock);
    int changed = v->sized ? want < v->limit : want != v->limit;
    v->sized = 1;
    if (changed) {
        v->limit = want;
        if (v->rate > want || !v->cut_ns)
            v->rate = want;
        renc_pace_set(&v->pace, v->rate, a->o.rate_window_s);
    }
    pthread_mutex_unlock(&a->lock);
}

/* ---- adapting the pace to the vault's answers -------------------------
 *
 * The pacing starts at 90% of the documented limit, but a vault's real
 * budget is shared (other clients, other key types, the subscription cap),
 * so the pace also follows the answers, additive-increase /
 * multiplicative-decrease: a 429 cuts the rate to 3/4 (at most once a
 * second, so that the 429s of one burst count once), and every window
 * without a 429 gives back a tenth of the ceiling. */

static void renc_akv_pace_throttled(struct renc_akv *a, struct renc_akv_vault *v)
{
    uint64_t now = renc_now_ns();
    pthread_mutex_lock(&a->lock);
    if (v->rate > 1 && (!v->cut_ns || now - v->cut_ns >= 1000000000u)) {
        v->rate = v->rate - v->rate / 4;
        v->cut_ns = now;
        v->raised_ns = now;
        a->stats.pace_cuts++;
        renc_pace_set(&v->pace, v->rate, a->o.rate_window_s);
    }
    pthread_mutex_unlock(&a->lock);
}

static void renc_akv_pace_answered(struct renc_akv *a, struct renc_akv_vault *v)
{
    uint64_t now = renc_now_ns();
    uint64_t window = (uint64_t)(a->o.rate_window_s * 1e9);
    pthread_mutex_lock(&a->lock);
    if (v->rate < v->limit && now - v->raised_ns >= window) {
        unsigned step = v->limit / 10 ? v->limit / 10 : 1;
        v->rate = v->limit - v->rate > step ? v->rate + step : v->limit;
        v->raised_ns = now;
        renc_pace_set(&v->pace, v->rate, a->o.rate_window_s);
    }
    pthread_mutex_unlock(&a->lock);
}

void renc_akv_count(struct renc_akv *a, uint64_t *field)
{
    pthread_mutex_lock(&a->lock);
    (*field)++;
    pthread_mutex_unlock(&a->lock);
}

/* net/'s errors in the vault's terms: the messages and exit codes the
 * operator knows. */
static int renc_akv_net_error(int rc)
{
    if (renc_http_no_answer(rc))
        return -RENC_E_VAULT_NETWORK;
    if (rc == -RENC_E_NET_THROTTLED)
        return -RENC_E_VAULT_THROTTLED;
    if (rc == -RENC_E_NET_TOO_BIG)
        return -RENC_E_TOO_BIG;
    return rc;
}

/* The pacer's reactions to the answers of one vault (net/retry.h calls). */
struct renc_akv_pacing {
    struct renc_akv *a;
    struct renc_akv_vault *v;
};

static void renc_akv_on_throttled(void *arg)
{
    struct renc_akv_pacing *p = arg;
    renc_akv_pace_throttled(p->a, p->v);
}

static void renc_akv_on_answered(void *arg)
{
    struct renc_akv_pacing *p = arg;
    renc_akv_pace_answered(p->a, p->v);
}

/* ---- the 401 challenge ------------------------------------------------ */

/* Learns tenant and scope from a 401's challenge. */
static int renc_akv_learn_challenge(struct renc_akv *a, struct renc_akv_vault *v,
                                    const char *hdr)
{
    struct renc_azure_challenge c;
    int rc = renc_azure_parse_challenge(hdr, v->host, &c);
    if (rc) {
        if (c.foreign)
            renc_akv_note(a, "akv: %s asks for a token for %s, which is not its domain: refused",
                          v->base, c.resource);
        return rc;
    }
    pthread_mutex_lock(&a->lock);
    snprintf(v->tenant, sizeof v->tenant, "%s", c.tenant);
    snprintf(v->scope, sizeof v->scope, "%s", c.scope);
    snprintf(v->resource, sizeof v->resource, "%s", c.resource);
    v->challenged = 1;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* ---- requests to a vault ---------------------------------------------- */

/* A vault request: paced, with a token once the vault's challenge is
 * known; a 401 drops the token and goes through the challenge once. */
int renc_akv_vault_call(struct renc_akv *a, struct renc_akv_vault *v, const char *method,
                        const char *url, const char *body, size_t body_len,
                        struct renc_http_response *resp)
{
    struct renc_http *conn;
    int rc = renc_akv_take(a, &conn);
    if (rc)
        return renc_akv_net_error(rc);
    struct renc_key *token = NULL;
    char auth[8192];
    for (int challenged_once = 0;; challenged_once = 1) {
        const char *headers[4];
        size_t nh = 0;
        auth[0] = '\0';
        pthread_mutex_lock(&a->lock);
        int known = v->challenged;
        char tenant[128], scope[512], resource[512];
        memcpy(tenant, v->tenant, sizeof tenant);
        memcpy(scope, v->scope, sizeof scope);
        memcpy(resource, v->resource, sizeof resource);
        pthread_mutex_unlock(&a->lock);
        if (known) {
            rc = renc_azure_token(a->tokens, conn, tenant, scope, resource, &token);
            if (rc)
                break;
            int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", (const char *)token->bytes);
            if (n < 0 || (size_t)n >= sizeof auth) {
                rc = -RENC_E_VAULT_AUTH;
                break;
            }
            headers[nh++] = auth;
        }
        headers[nh++] = "Accept: application/json";
        if (body)
            headers[nh++] = "Content-Type: application/json";
        headers[nh] = NULL;
        struct renc_akv_pacing pacing = {a, v};
        struct renc_retry_call call = {&v->pace, renc_akv_on_throttled, renc_akv_on_answered,
                                       &pacing};
        rc = renc_retry_request(&a->retry, &call, conn, method, url, headers, body, body_len,
                                resp);
        renc_secmem_wipe(auth, sizeof auth);
        if (rc || resp->status != 401 || challenged_once)
            break;
        /* 401: learn (or re-learn) the challenge, drop the token, once. */
        if (token)
            renc_azure_token_drop(a->tokens, tenant, scope, token);
        renc_key_free(token);
        token = NULL;
        rc = renc_akv_learn_challenge(a, v, resp->www_authenticate);
        if (rc)
            break;
        renc_http_response_cleanup(resp);
    }
    renc_key_free(token);
    renc_akv_give(a, conn);
    if (rc == 0 && resp->status == 401)
        rc = -RENC_E_VAULT_AUTH;
    return renc_akv_net_error(rc);
}

static const char *renc_akv_alg_name(int alg)
{
    switch (alg) {
    case RENC_ALG_RSA_OAEP_256: return "RSA-OAEP-256";
    case RENC_ALG_RSA_OAEP_SHA1: return "RSA-OAEP";
    case RENC_ALG_AES_KW: return "A256KW";
    default: return NULL; /* alg 1 (RFC 5649) is not a vault operation */
    }
}

/* POSTs {"alg","value"} to ref's op; the answer's value decoded into out
 * and its kid into kid_ref. */
static int renc_akv_key_op(struct renc_akv *a, const struct renc_keyref *ref, const char *op,
                           int alg, const uint8_t *in, size_t in_len, uint8_t *out, size_t max,
                           size_t *out_len, char *kid_ref, size_t kid_max)
{
    const char *alg_name = renc_akv_alg_name(alg);
    RENC_RETURN_IF(!alg_name, -RENC_E_KEY_TYPE);
    RENC_RETURN_IF(!ref->version[0], -RENC_E_BAD_KEYREF);
    struct renc_akv_key k;
    /* The key's type and attributes (cached): a wrong alg or an expired key
     * fails here without a request, and the pacing is sized. */
    int rc = renc_akv_get_key(a, ref, &k);
    if (rc)
        return rc;
    RENC_RETURN_IF(!renc_akv_alg_fits(&k, alg), -RENC_E_KEY_TYPE);
    if (strcmp(op, "wrapkey") == 0 && (rc = renc_akv_wrap_allowed(&k)))
        return rc;
    struct renc_akv_vault *v;
    char url[RENC_MAX_REF_LEN + 64], b64[2 * RENC_MAX_WRAPPED_LEN], body[2 * RENC_MAX_WRAPPED_LEN + 64];
    if ((rc = renc_akv_vault(a, ref->vault, &v)) || (rc = renc_akv_url(url, sizeof url, ref, "")))
        return rc;
    /* url ends "?api-version=..."; the op goes before the query. */
    char *q = strchr(url, '?');
    char query[64];
    snprintf(query, sizeof query, "%s", q);
    int n = snprintf(q, sizeof url - (size_t)(q - url), "/%s%s", op, query);
    RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url - (size_t)(q - url), -RENC_E_TOO_BIG);
    if ((rc = renc_b64url_encode(b64, sizeof b64, in, in_len)))
        return rc;
    n = snprintf(body, sizeof body, "{\"alg\":\"%s\",\"value\":\"%s\"}", alg_name, b64);
    renc_secmem_wipe(b64, sizeof b64);
    if (n < 0 || (size_t)n >= sizeof body) {
        renc_secmem_wipe(body, sizeof body);
        return -RENC_E_TOO_BIG;
    }
    struct renc_http_response resp;
    renc_akv_count(a, strcmp(op, "wrapkey") == 0 ? &a->stats.wraps : &a->stats.unwraps);
    rc = renc_akv_vault_call(a, v, "POST", url, body, (size_t)n, &resp);
    renc_secmem_wipe(body, sizeof body);
    if (rc == 0 && resp.status != 200)
        rc = renc_akv_error(a, op, url, &resp, &k);
    if (rc == -RENC_E_VAULT && resp.status == 400 && k.kty == RENC_AKV_OCT) {
        /* A KeyBundle does not tell an oct key's size, and the format wraps
         * with AES-256 only (slot algorithm 4, A256KW): a 128- or 192-bit
         * Managed HSM key is refused here, by the HSM's answer. */
        renc_akv_note(a, "akv: %s: refused %s: an oct-HSM key must be a 256-bit AES key here",
                      ref->name, alg_name);
        rc = -RENC_E_KEY_TYPE;
    }
    json_t *root = rc == 0 ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
    const char *kid = json_string_value(json_object_get(root, "kid"));
    const char *value = json_string_value(json_object_get(root, "value"));
    if (rc == 0 && (!kid || !value))
        rc = -RENC_E_VAULT;
    if (rc == 0 && kid_ref)
        rc = renc_akv_kid_ref(kid_ref, kid_max, kid, ref);
    if (rc == 0)
        rc = renc_b64url_decode(out, max, out_len, value);
    json_decref(root);
    renc_http_response_cleanup(&resp);
    return rc;
}

int renc_akv_wrap(struct renc_akv *a, const struct renc_keyref *ref, int alg,
                  const struct renc_key *dek, uint8_t *out, size_t max, size_t *out_len,
                  char *ref_out, size_t ref_max)
{
    char kid[RENC_MAX_REF_LEN + 1];
    int rc = renc_akv_key_op(a, ref, "wrapkey", alg, dek->bytes, dek->len, out, max, out_len, kid,
                             sizeof kid);
    if (rc == 0 && ref_out && snprintf(ref_out, ref_max, "%s", kid) >= (int)ref_max)
        rc = -RENC_E_TOO_BIG;
    return rc;
}

int renc_akv_unwrap(struct renc_akv *a, const struct renc_keyref *ref, int alg,
                    const uint8_t *wrapped, size_t wrapped_len, struct renc_key **dek)
{
    uint8_t buf[RENC_MAX_WRAPPED_LEN];
    size_t len = 0;
    int rc = renc_akv_key_op(a, ref, "unwrapkey", alg, wrapped, wrapped_len, buf, sizeof buf,
                             &len, NULL, 0);
    if (rc == 0 && (len == 0 || len > 64))
        rc = -RENC_E_UNWRAP;
    if (rc == 0)
        rc = renc_key_from_bytes(dek, buf, len);
    renc_secmem_wipe(buf, sizeof buf);
    return rc;
}

void renc_akv_stats(struct renc_akv *a, struct renc_akv_stats *out)
{
    struct renc_retry_stats rs;
    renc_retry_stats(&a->retry, &rs);
    uint64_t tokens = renc_azure_tokens_requested(a->tokens);
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    out->requests = rs.requests;
    out->retries = rs.retries;
    out->throttled = rs.throttled;
    out->server_errors = rs.server_errors;
    out->network_errors = rs.network_errors;
    out->paced = rs.paced;
    out->paced_s = rs.paced_s;
    out->tokens = tokens;
    out->rate_window_s = a->o.rate_window_s;
    out->rate_limit = a->nvaults ? a->vaults[a->nvaults - 1].limit : a->o.rate_limit;
    out->rate_now = a->nvaults ? a->vaults[a->nvaults - 1].rate : a->o.rate_limit;
    pthread_mutex_unlock(&a->lock);
}
