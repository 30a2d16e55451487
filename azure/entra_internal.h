/* azure/entra_internal.h — the Microsoft Entra token pieces
 * (docs/KEYVAULT.md, "Credentials"): the token URL of an authority, the
 * client-credentials form, the token cache, the workload identity's
 * federated token file, the certificate's JWT client assertion, and the
 * Azure CLI, one file each (entra_*.c); azure/token.c chains them behind
 * azure/token.h.  Not for use outside azure/ (and its tests).  Every secret here (client secret, assertion,
 * federated token, private key, password, access token) is kept in secure
 * memory (struct renc_key) and never logged. */
#ifndef RENC_AZURE_ENTRA_INTERNAL_H
#define RENC_AZURE_ENTRA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secmem.h"

#define RENC_ENTRA_TOKEN_MAX 8000 /* longest access token accepted */

/* ---- entra_form.c ----------------------------------------------------- */

/* renc_entra_token_url: "{authority}/{tenant}/oauth2/v2.0/token" into out,
 * with the authority's trailing slashes dropped (the Kubernetes webhook
 * sets AZURE_AUTHORITY_HOST with one).  -RENC_E_INVALID for an empty
 * authority or a tenant that is empty or holds '/', '?', '#', '%' or a
 * space; -RENC_E_TOO_BIG when out is short. */
int renc_entra_token_url(char *out, size_t max, const char *authority, const char *tenant);

/* renc_entra_form: the client-credentials form for client_id and scope, in
 * secure memory (NUL-terminated text): with `assertion` set, the JWT
 * bearer client assertion (client_assertion_type and client_assertion),
 * else `secret` as client_secret.  The credential is URL-encoded. */
int renc_entra_form(struct renc_key **out, const char *client_id, const char *scope,
                    const struct renc_key *secret, int assertion);

/* ---- entra_cache.c ---------------------------------------------------- */

/* Tokens per (tenant, scope): two vaults of different tenants can share a
 * scope (https://vault.azure.net/.default) but never a token. */
#define RENC_ENTRA_CACHE_SLOTS 8
struct renc_entra_cache_ent {
    char tenant[128];
    char scope[512];
    struct renc_key *token; /* NUL-terminated text */
    uint64_t refresh_ns;    /* CLOCK_MONOTONIC: fetch again from here on */
};
struct renc_entra_cache {
    struct renc_entra_cache_ent ents[RENC_ENTRA_CACHE_SLOTS];
    size_t next_slot;
};

/* renc_entra_cache_get: a copy of the live token for (tenant, scope) as of
 * now_ns, or -RENC_E_KEY_NOT_FOUND.  tenant may be NULL (= ""). */
int renc_entra_cache_get(struct renc_entra_cache *c, const char *tenant, const char *scope,
                         uint64_t now_ns, struct renc_key **out);
/* renc_entra_cache_put: keeps token (ownership passes to the cache) for
 * (tenant, scope) until refresh_ns, replacing that pair's entry or the
 * oldest slot. */
void renc_entra_cache_put(struct renc_entra_cache *c, const char *tenant, const char *scope,
                          struct renc_key *token, uint64_t refresh_ns);
/* renc_entra_cache_drop: forgets (tenant, scope)'s token if it is still
 * `token` (a 401 said it is no longer good). */
void renc_entra_cache_drop(struct renc_entra_cache *c, const char *tenant, const char *scope,
                           const struct renc_key *token);
void renc_entra_cache_cleanup(struct renc_entra_cache *c);

/* ---- entra_file.c ----------------------------------------------------- */

#define RENC_ENTRA_FILE_NOFOLLOW 1u   /* refuse a symbolic link */
#define RENC_ENTRA_FILE_OWNER_ONLY 2u /* refuse a file others may read */

/* renc_entra_read_file: the whole of the regular file at path (1..max
 * bytes) in secure memory, NUL-terminated: (*out)->len is the bytes read
 * plus 1.  -RENC_E_NOT_REGULAR, -RENC_E_INSECURE_PERMS (flags),
 * -RENC_E_TOO_BIG, -RENC_E_VAULT_AUTH (empty), or -errno. */
int renc_entra_read_file(const char *path, size_t max, unsigned flags, struct renc_key **out);

/* ---- entra_federated.c ------------------------------------------------ */

#define RENC_ENTRA_FEDERATED_MAX 65536 /* a projected token is a few KiB */

/* renc_entra_read_federated: the workload identity's federated token
 * (AZURE_FEDERATED_TOKEN_FILE), read now into secure memory, surrounding
 * whitespace trimmed.  The kubelet rotates the file, so it is read at every
 * token request.  Symbolic links are followed (projected volumes are links
 * into ..data/), the target must be a regular file of 1..64 KiB:
 * -RENC_E_NOT_REGULAR, -RENC_E_TOO_BIG, -RENC_E_VAULT_AUTH (empty), -errno. */
int renc_entra_read_federated(const char *path, struct renc_key **out);

/* ---- entra_assertion.c ------------------------------------------------ */

/* The client certificate and its private key, loaded once. */
struct renc_entra_cert;

/* renc_entra_cert_load: a PEM file with the certificate and its private key
 * (RSA), or a PKCS#12 file opened with password (may be NULL).  The file is
 * read into secure memory; the password is not kept.  -RENC_E_VAULT_AUTH
 * when it does not parse or the key does not match the certificate,
 * -RENC_E_KEY_TYPE when the key is not RSA, -errno when unreadable. */
int renc_entra_cert_load(struct renc_entra_cert **out, const char *path,
                         const struct renc_key *password);
void renc_entra_cert_free(struct renc_entra_cert *c);

/* renc_entra_assertion: a JWT client assertion (RFC 7523) signed with the
 * certificate's key, the current form of Microsoft's documentation:
 * header {"alg":"PS256","typ":"JWT","x5t#S256":b64url(SHA-256 of the
 * certificate's DER)}, claims aud = token_url, iss = sub = client_id,
 * jti = a fresh random GUID, nbf = iat = now_s, exp = now_s + 600.  Signed
 * with RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32 bytes).  Text in secure
 * memory. */
int renc_entra_assertion(struct renc_key **out, const struct renc_entra_cert *c,
                         const char *client_id, const char *token_url, int64_t now_s);

/* ---- entra_cli.c ------------------------------------------------------ */

#define RENC_ENTRA_CLI_TIMEOUT_MS 60000
#define RENC_ENTRA_CLI_OUT_MAX 65536

/* Why the Azure CLI gave no token (for the message). */
enum renc_entra_cli_why {
    RENC_CLI_OK = 0,
    RENC_CLI_NOT_FOUND,    /* az could not be run */
    RENC_CLI_NOT_LOGGED_IN,/* exit non-zero, stderr mentions "az login" */
    RENC_CLI_FAILED,       /* exit non-zero otherwise */
    RENC_CLI_TIMEOUT,      /* killed after the timeout */
    RENC_CLI_BAD_OUTPUT,   /* exit 0 but the output is not a token */
};

/* renc_entra_cli_token: runs `AZ account get-access-token --resource
 * RESOURCE --output json [--tenant TENANT]` (posix_spawn, no shell; stdout
 * read into secure memory, stderr only searched for "az login"), killed
 * and reaped after timeout_ms.  *token and *expires_on (Unix seconds) on
 * success; *why says what failed.  -RENC_E_VAULT_AUTH on any failure,
 * -RENC_E_INVALID when resource or tenant could be taken for an option. */
int renc_entra_cli_token(const char *az, const char *resource, const char *tenant,
                         long timeout_ms, struct renc_key **token, int64_t *expires_on,
                         enum renc_entra_cli_why *why);

/* renc_entra_cli_parse: the token and expiry from `az account
 * get-access-token --output json`: accessToken, and expires_on (Unix
 * seconds, number or digits; newer CLIs) or else expiresOn (local time
 * "YYYY-MM-DD HH:MM:SS[.ffffff]", read with mktime).  -RENC_E_VAULT_AUTH
 * when either is missing or malformed. */
int renc_entra_cli_parse(const char *json, size_t len, struct renc_key **token,
                         int64_t *expires_on);

#endif
