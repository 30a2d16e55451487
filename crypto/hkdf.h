/* crypto/hkdf.h — HKDF with SHA-256 (RFC 5869), and the RENC key schedule. */
#ifndef RENC_CRYPTO_HKDF_H
#define RENC_CRYPTO_HKDF_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secmem.h"

/* renc_hkdf_extract: prk (32 bytes) = HMAC-SHA256(salt, ikm). */
int renc_hkdf_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len);

/* renc_hkdf_expand: out_len (<= 255*32) bytes of HKDF-Expand(prk, info). */
int renc_hkdf_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                     const uint8_t *info, size_t info_len);

/* The two keys every blob derives from its DEK and salt (FORMAT.md §1). */
struct renc_blob_keys {
    struct renc_key *k_data; /* HKDF-Expand(PRK, "renc v1 data", 32) */
    struct renc_key *k_hdr;  /* HKDF-Expand(PRK, "renc v1 header", 32) */
};

/* renc_blob_keys_derive: PRK = HKDF-Extract(salt, dek); fills both keys.
 * On failure *out is left empty (both NULL); the PRK is wiped either way. */
int renc_blob_keys_derive(struct renc_blob_keys *out, const struct renc_key *dek,
                          const uint8_t salt[32]);

/* renc_blob_keys_cleanup: frees both keys; copes with a half-filled struct. */
void renc_blob_keys_cleanup(struct renc_blob_keys *keys);

#endif
