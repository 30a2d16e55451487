/* crypto/digest.h — SHA-256 of a byte string, for names that must be the
 * same on every machine (a shard's split of the blobs, run/shard.h). */
#ifndef RENC_CRYPTO_DIGEST_H
#define RENC_CRYPTO_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define RENC_SHA256_BYTES 32

/* renc_sha256: out = SHA-256(data[0..len)).  0, or -RENC_E_CRYPTO. */
int renc_sha256(const void *data, size_t len, uint8_t out[RENC_SHA256_BYTES]);

#endif
