/* keys/akv.h — the `akv` key provider: keys that live in a key vault
 * (Azure Key Vault REST, api-version 7.4), used over HTTPS.
 *
 * The tool never sees such a KEK: it asks the vault to wrap and unwrap DEKs.
 * One struct renc_akv serves every vault a process talks to; it may be
 * shared by threads.  Per vault it keeps
 *   - a pool of connections (keep-alive; at most max_inflight requests in
 *     flight, callers beyond that wait for a connection),
 *   - a pacer sized from the documented limit of the keys it serves (or the
 *     configured one), so requests stay under the vault's throttle,
 *   - the token scope it learned from the vault's 401 challenge.
 * Requests are retried with backoff on 429 (honouring Retry-After), 5xx and
 * network errors (the policy of net/retry.h).  Tokens come from the
 * credential chain of azure/token.h and are cached per (tenant, scope)
 * until shortly before expiry.
 *
 * Errors map to the domain: 403 access withdrawn -> -RENC_E_KEY_REVOKED,
 * disabled key -> -RENC_E_KEY_DISABLED, op outside key_ops -> -RENC_E_KEY_OP,
 * expired or not yet valid (wrap) -> -RENC_E_KEY_EXPIRED, 404 ->
 * -RENC_E_KEY_NOT_FOUND, unwrap refused as bad data -> -RENC_E_UNWRAP.
 * net/'s errors stop here: no answer -> -RENC_E_VAULT_NETWORK, throttled
 * past the wait -> -RENC_E_VAULT_THROTTLED, an answer over the buffered
 * cap -> -RENC_E_TOO_BIG.
 */
#ifndef RENC_KEYS_AKV_H
#define RENC_KEYS_AKV_H

#include <stddef.h>
#include <stdint.h>

#include "azure/token.h"
#include "crypto/header.h"
#include "crypto/secmem.h"
#include "keys/keyref.h"

struct renc_akv_options {
    const char *ca_file;      /* CAs (PEM) trusted besides the system's; NULL: none */
    const char *no_proxy;     /* the operator's NO_PROXY list (loopback and IMDS always bypass) */
    unsigned max_inflight;    /* 0: 16 */
    unsigned rate_limit;      /* requests per rate_window_s per vault; 0: from the key type */
    double rate_window_s;     /* 0: 10 */
    double rate_share;        /* fraction of the documented limit used; 0: 0.9 */
    unsigned retries;         /* 5xx and network errors; 0: 6 */
    double throttle_wait_s;   /* the most one request waits out 429s; 0: 120 */
    long timeout_ms;          /* 0: 30000 */
    struct renc_azure_credentials cred; /* where tokens come from (azure/token.h) */
    /* Called (from any thread) with a one-line note on retries and limits;
     * may be NULL.  Never given secrets. */
    void (*note)(void *arg, const char *line);
    void *note_arg;
};

struct renc_akv;

/* renc_json_wipe_on_free: from now on jansson's allocations are wiped when
 * freed (vault answers carry DEKs and tokens).  Call once at process start,
 * before any JSON value exists; text from json_dumps must then be freed with
 * the function json_get_alloc_funcs gives, never with free(). */
void renc_json_wipe_on_free(void);

int renc_akv_new(struct renc_akv **out, const struct renc_akv_options *o);
void renc_akv_free(struct renc_akv *a);

enum renc_akv_kty { RENC_AKV_RSA = 1, RENC_AKV_OCT = 2 };
#define RENC_AKV_OP_WRAP 1u
#define RENC_AKV_OP_UNWRAP 2u

struct renc_akv_key {
    char ref[RENC_MAX_REF_LEN + 1]; /* "akv:" + the versioned kid */
    enum renc_akv_kty kty;
    int hsm;                        /* RSA-HSM or oct-HSM */
    unsigned bits;                  /* RSA modulus bits; 256 for oct */
    int enabled;
    int64_t nbf, exp;               /* Unix seconds, 0 when absent */
    unsigned ops;                   /* RENC_AKV_OP_* the key permits */
};

/* renc_akv_get_key: the key (the latest version when ref has none).
 * Versioned answers are cached for the process's life (attributes are
 * re-read after 60 s); the latest version is re-read after 60 s. */
int renc_akv_get_key(struct renc_akv *a, const struct renc_keyref *ref, struct renc_akv_key *out);

/* renc_akv_list_versions: calls fn for each version of ref's key (paged;
 * order as the vault gives it). */
int renc_akv_list_versions(struct renc_akv *a, const struct renc_keyref *ref,
                           int (*fn)(void *arg, const struct renc_akv_key *k), void *arg);

/* renc_akv_wrap_allowed: 0 when new data may be sealed under k:
 * -RENC_E_KEY_DISABLED when the version is disabled, -RENC_E_KEY_EXPIRED
 * outside its nbf/exp window. */
int renc_akv_wrap_allowed(const struct renc_akv_key *k);

/* renc_akv_default_alg: the slot algorithm the tool wraps with: 2
 * (RSA-OAEP-256) for RSA keys, 4 (A256KW) for oct keys. */
int renc_akv_default_alg(const struct renc_akv_key *k);
/* 1 when a slot algorithm fits the key type. */
int renc_akv_alg_fits(const struct renc_akv_key *k, int alg);

/* renc_akv_wrap: wraps dek under the versioned ref with alg; out gets the
 * wrapped bytes and ref_out (may be NULL) the versioned kid the vault
 * answered with, as a ref. */
int renc_akv_wrap(struct renc_akv *a, const struct renc_keyref *ref, int alg,
                  const struct renc_key *dek, uint8_t *out, size_t max, size_t *out_len,
                  char *ref_out, size_t ref_max);

/* renc_akv_unwrap: the DEK of a slot, into secure memory. */
int renc_akv_unwrap(struct renc_akv *a, const struct renc_keyref *ref, int alg,
                    const uint8_t *wrapped, size_t wrapped_len, struct renc_key **dek);

struct renc_akv_stats {
    uint64_t requests;      /* HTTP requests sent to vaults, retries included */
    uint64_t gets, lists, wraps, unwraps, tokens;
    uint64_t retries;       /* requests sent again after a 429, 5xx or network error */
    uint64_t throttled;     /* 429 answers */
    uint64_t server_errors; /* 5xx answers */
    uint64_t network_errors;
    uint64_t paced;         /* requests the pacer held back */
    double paced_s;         /* their total wait */
    uint64_t pace_cuts;     /* times a 429 lowered a vault's pace */
    unsigned rate_limit;    /* the pacing ceiling of the last vault used, per window */
    unsigned rate_now;      /* its pace at the end (below the ceiling after 429s) */
    double rate_window_s;
};
void renc_akv_stats(struct renc_akv *a, struct renc_akv_stats *out);

/* renc_akv_documented_limit: the vault's documented transactions per 10 s
 * for a key type (docs/KEYVAULT.md, "Scale: connections, pacing and retries"). */
unsigned renc_akv_documented_limit(enum renc_akv_kty kty, int hsm, unsigned bits);

#endif
