/* crypto/aead.h — AES-256-GCM with a 12-byte nonce and a 16-byte tag.
 *
 * A struct renc_aead holds one key schedule; seal and open only set a new
 * nonce, so a worker keeps one per key and reuses it for every record.  One
 * object must not be used by two threads at once.
 */
#ifndef RENC_CRYPTO_AEAD_H
#define RENC_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secmem.h"

#define RENC_AEAD_KEY_LEN 32
#define RENC_AEAD_NONCE_LEN 12
#define RENC_AEAD_TAG_LEN 16

enum renc_aead_backend {
    RENC_AEAD_BACKEND_AUTO = 0, /* the fastest one this CPU supports */
    RENC_AEAD_BACKEND_OPENSSL,
};

struct renc_aead;

/* renc_aead_new: a context keyed with `key` (32 bytes).  *out written only on
 * success. */
int renc_aead_new(struct renc_aead **out, const struct renc_key *key,
                  enum renc_aead_backend backend);

/* renc_aead_free: wipes the key schedule; NULL does nothing. */
void renc_aead_free(struct renc_aead *aead);

/* renc_aead_seal: encrypts len bytes of `in` into `out` (out may equal in)
 * and writes the tag. */
int renc_aead_seal(struct renc_aead *aead, uint8_t *out, uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t *in, size_t len,
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len);

/* renc_aead_open: decrypts len bytes of `in` into `out` (out may equal in)
 * and checks the tag.  On -RENC_E_RECORD_AUTH the len bytes of `out` are
 * zeroed: no unverified plaintext is left behind. */
int renc_aead_open(struct renc_aead *aead, uint8_t *out, const uint8_t *in, size_t len,
                   const uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len);

/* The name of the backend in use ("openssl"), for reports. */
const char *renc_aead_backend_name(const struct renc_aead *aead);

#endif
