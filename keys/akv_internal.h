/* keys/akv_internal.h — what akv.c and akv_token.c share; not for use
 * outside crypto/. */
#ifndef RENC_KEYS_AKV_INTERNAL_H
#define RENC_KEYS_AKV_INTERNAL_H

#include "keys/akv.h"
#include "net/http.h"

struct renc_akv_tokens;

/* renc_akv_send: one request with the retry policy (429 with Retry-After or
 * 1, 2, 4... s; 5xx and network errors with backoff), no pacing and no
 * token: for the token endpoints.  0 with *resp for any final status. */
int renc_akv_send(struct renc_akv *a, struct renc_http *conn, const char *method, const char *url,
                  const char *const *headers, const char *body, size_t body_len,
                  struct renc_http_response *resp);

int renc_akv_tokens_new(struct renc_akv_tokens **out, const struct renc_akv_credentials *c);
void renc_akv_tokens_free(struct renc_akv_tokens *t);

/* renc_akv_token: a token for (tenant, scope), from the cache or fetched
 * now through conn; *token is NUL-terminated text in secure memory that the
 * caller frees.  resource is the scope without "/.default" (managed
 * identities ask by resource).  -RENC_E_VAULT_AUTH when refused. */
int renc_akv_token(struct renc_akv *a, struct renc_akv_tokens *t, struct renc_http *conn,
                   const char *tenant, const char *scope, const char *resource,
                   struct renc_key **token);

/* renc_akv_token_drop: forgets the cached token for (tenant, scope) when it
 * is still `token` (a 401 said it is no longer good). */
void renc_akv_token_drop(struct renc_akv_tokens *t, const char *tenant, const char *scope,
                         const struct renc_key *token);

/* renc_akv_note: a line for the operator through the options' note hook
 * (never with a secret in it). */
void renc_akv_note(struct renc_akv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* renc_akv_count_token: counts a token request in the stats. */
void renc_akv_count_token(struct renc_akv *a);

/* ---- pure pieces, unit-tested and fuzzed ------------------------------ */

/* What a 401's WWW-Authenticate asks for. */
struct renc_akv_challenge {
    char tenant[128];
    char scope[512];
    char resource[512];
    int foreign; /* the resource is not the vault's domain (refused) */
};

/* renc_akv_parse_challenge: tenant (the authorization URL's last segment)
 * and scope (resource + "/.default", or the scope given) from a Bearer
 * challenge; -RENC_E_VAULT_AUTH when malformed or when the resource is not
 * vault_host's own domain or a parent of it (then out->foreign is 1). */
int renc_akv_parse_challenge(const char *hdr, const char *vault_host,
                             struct renc_akv_challenge *out);

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
