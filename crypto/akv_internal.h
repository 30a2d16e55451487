/* crypto/akv_internal.h — what akv.c and akv_token.c share; not for use
 * outside crypto/. */
#ifndef RENC_CRYPTO_AKV_INTERNAL_H
#define RENC_CRYPTO_AKV_INTERNAL_H

#include "crypto/akv.h"
#include "crypto/http.h"

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

/* renc_akv_token_drop: forgets the cached token for scope when it is still
 * `token` (a 401 said it is no longer good). */
void renc_akv_token_drop(struct renc_akv_tokens *t, const char *scope, const struct renc_key *token);

/* renc_akv_note: a line for the operator through the options' note hook
 * (never with a secret in it). */
void renc_akv_note(struct renc_akv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* renc_akv_count_token: counts a token request in the stats. */
void renc_akv_count_token(struct renc_akv *a);

#endif
