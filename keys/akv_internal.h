/* keys/akv_internal.h — the vault provider's pure pieces, shared by its
 * files (akv*.c) and unit-tested and fuzzed; not for use outside keys/. */
#ifndef RENC_KEYS_AKV_INTERNAL_H
#define RENC_KEYS_AKV_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "azure/token.h"
#include "common/pace.h"
#include "keys/akv.h"
#include "net/http.h"
#include "net/retry.h"

/* ---- the provider's state, shared by akv.c and akv_keys.c -------------- */

#define RENC_AKV_API "api-version=7.4"
#define RENC_AKV_MAX_VAULTS 16
struct renc_akv_vault {
    char base[RENC_VAULT_MAX + 1]; /* https://host[:port] */
    char host[256];
    struct renc_pace pace;
    unsigned limit;     /* the pacing ceiling, per window; 0: not yet sized */
    unsigned rate;      /* the pacing in force: limit, or less after 429s */
    uint64_t cut_ns;    /* when a 429 last lowered rate */
    uint64_t raised_ns; /* when rate was last raised back toward limit */
    int limit_fixed;    /* set by the options: never resized */
    int sized;          /* sized from a key's type at least once */
    int mhsm;           /* a Managed HSM: not throttled per key type */
    int challenged;     /* tenant and scope known */
    char tenant[128];
    char scope[512];
    char resource[512];
};

struct renc_akv_keyent {
    char ref[RENC_MAX_REF_LEN + 1]; /* the ref asked for (versioned or not) */
    struct renc_akv_key key;
    uint64_t fetched_ns;
};

struct renc_akv {
    struct renc_akv_options o;
    pthread_mutex_t lock;
    pthread_cond_t conn_free;
    struct renc_http **conns; /* idle connections */
    size_t idle, created;
    struct renc_akv_vault vaults[RENC_AKV_MAX_VAULTS];
    size_t nvaults;
    struct renc_akv_keyent *keys;
    size_t nkeys, capkeys;
    struct renc_akv_stats stats; /* what this file counts; the rest is the policy's */
    struct renc_retry retry;     /* every request, the token endpoints' too */
    struct renc_azure_tokens *tokens;
};

/* renc_akv_note: a line for the operator through the options' note hook
 * (never with a secret in it). */
void renc_akv_note(struct renc_akv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* renc_akv_count: one more of a counter in a->stats. */
void renc_akv_count(struct renc_akv *a, uint64_t *field);

/* renc_akv_vault: the state of the vault at base, created on first use. */
int renc_akv_vault(struct renc_akv *a, const char *base, struct renc_akv_vault **out);

/* renc_akv_vault_call: a vault request, paced and retried, with a token
 * once the vault's challenge is known; vault errors as the domain's. */
int renc_akv_vault_call(struct renc_akv *a, struct renc_akv_vault *v, const char *method,
                        const char *url, const char *body, size_t body_len,
                        struct renc_http_response *resp);

/* renc_akv_size_pace: sizes v's pacing from a key it serves. */
void renc_akv_size_pace(struct renc_akv *a, struct renc_akv_vault *v,
                        const struct renc_akv_key *k);

/* renc_akv_error: the domain error of a non-2xx vault answer, noted for
 * the operator when the domain does not name it on its own. */
int renc_akv_error(struct renc_akv *a, const char *op, const char *url,
                   const struct renc_http_response *resp, const struct renc_akv_key *k);

/* renc_akv_url: the URL of ref's key with suffix and the api version. */
int renc_akv_url(char *out, size_t max, const struct renc_keyref *ref, const char *suffix);

/* renc_akv_kid_ref: a kid of ref's vault as a ref, which must name the key
 * (and version) asked for. */
int renc_akv_kid_ref(char *out, size_t max, const char *kid, const struct renc_keyref *asked);

/* ---- pure pieces, unit-tested and fuzzed ------------------------------ */

/* renc_akv_map_error: the domain error of a vault answer that is not 200,
 * from the status and the error body's (inner) code; code (may be NULL)
 * gets "Outer/Inner" for messages.  has_validity: the key has nbf or exp
 * (a 403 on wrap that names no cause is then taken as expired). */
int renc_akv_map_error(const char *op, long status, const char *body, size_t len,
                       int has_validity, char *code, size_t code_max);

/* renc_akv_parse_key_json: a KeyBundle (or KeyItem) about `asked`; its kid
 * must name the same key (and version, when asked has one). */
int renc_akv_parse_key_json(const struct renc_keyref *asked, const char *body, size_t len,
                            struct renc_akv_key *out);

/* renc_akv_is_mhsm_host: 1 for a Managed HSM's host (NAME.managedhsm.…). */
int renc_akv_is_mhsm_host(const char *host);

/* Base64url without padding (decode accepts padding). */
int renc_b64url_encode(char *out, size_t max, const uint8_t *in, size_t len);
int renc_b64url_decode(uint8_t *out, size_t max, size_t *len, const char *in);

#endif
