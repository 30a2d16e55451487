/* keys/akv_internal.h — the vault provider's pure pieces, shared by its
 * files (akv*.c) and unit-tested and fuzzed; not for use outside keys/. */
#ifndef RENC_KEYS_AKV_INTERNAL_H
#define RENC_KEYS_AKV_INTERNAL_H

#include "keys/akv.h"

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
