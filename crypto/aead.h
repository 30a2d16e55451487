/* crypto/aead.h — AES-256-GCM with a 12-byte nonce and a 16-byte tag.
 *
 * A struct renc_aead holds one key schedule; seal and open only set a new
 * nonce, so a worker keeps one per key and reuses it for every record.  One
 * object must not be used by two threads at once (it may move between
 * threads).
 *
 * Two backends compute the same function, byte for byte: OpenSSL's EVP, and
 * Intel's multi-buffer crypto library (ipsec-mb), about three times faster
 * per core on CPUs with VAES and VPCLMULQDQ.  ipsec-mb is optional: it is
 * compiled in only when the build finds it (RENC_HAVE_IPSEC_MB).
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
    /* ipsec-mb when it is compiled in and the CPU has AES-NI and PCLMULQDQ
     * (the library's own detection, init_mb_mgr_auto, decides), otherwise
     * OpenSSL. */
    RENC_AEAD_BACKEND_AUTO = 0,
    RENC_AEAD_BACKEND_OPENSSL,
    RENC_AEAD_BACKEND_IPSEC_MB,
};

/* renc_aead_backend_parse: "auto", "openssl" or "ipsec-mb" (exactly) into
 * *out.  Returns 0, or -RENC_E_INVALID and leaves *out alone.  A name that
 * parses may still be unavailable here: renc_aead_new says so. */
int renc_aead_backend_parse(const char *name, enum renc_aead_backend *out);

struct renc_aead;

/* renc_aead_new: a context keyed with `key` (32 bytes); it keeps its own
 * copy of the key schedule, in secure memory.  *out written only on success.
 * Forcing RENC_AEAD_BACKEND_IPSEC_MB where it is compiled out or the CPU
 * lacks AES-NI returns -RENC_E_UNSUPPORTED; AUTO never fails for that
 * reason. */
int renc_aead_new(struct renc_aead **out, const struct renc_key *key,
                  enum renc_aead_backend backend);

/* renc_aead_free: wipes the key schedule; NULL does nothing. */
void renc_aead_free(struct renc_aead *aead);

/* renc_aead_seal: encrypts len bytes of `in` into `out` (out may equal in,
 * but must not otherwise overlap it) and writes the tag.  len is at most
 * GCM's 2^36 - 32 bytes (-RENC_E_TOO_BIG). */
int renc_aead_seal(struct renc_aead *aead, uint8_t *out, uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t *in, size_t len,
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len);

/* renc_aead_open: decrypts len bytes of `in` into `out` (out may equal in,
 * but must not otherwise overlap it) and checks the tag in constant time.
 * On -RENC_E_RECORD_AUTH the len bytes of `out` are zeroed: no unverified
 * plaintext is left behind. */
int renc_aead_open(struct renc_aead *aead, uint8_t *out, const uint8_t *in, size_t len,
                   const uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len);

/* renc_aead_verify: checks the tag of len bytes of ciphertext `in` as
 * renc_aead_open would, without producing the plaintext for the caller: it
 * is decrypted piece by piece into a small scratch on the stack, wiped
 * before return, and `in` is never written.  For a verdict alone this is
 * cheaper than an open: no pass writes the record back, and no plaintext is
 * left behind in the caller's buffer to wipe.  0 or -RENC_E_RECORD_AUTH. */
int renc_aead_verify(struct renc_aead *aead, const uint8_t *in, size_t len,
                     const uint8_t tag[RENC_AEAD_TAG_LEN],
                     const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len);

/* renc_aead_backend_name: the backend in use, "openssl" or "ipsec-mb" (what
 * AUTO chose), for reports; "none" for NULL. */
const char *renc_aead_backend_name(const struct renc_aead *aead);

#endif
