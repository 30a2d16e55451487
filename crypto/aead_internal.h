/* crypto/aead_internal.h — the ipsec-mb backend of crypto/aead.h.
 *
 * Only crypto/aead.c includes this; crypto/aead_ipsec_mb.c implements it,
 * and is the only file that includes <intel-ipsec-mb.h>.  Built without
 * RENC_HAVE_IPSEC_MB, renc_imb_gcm_available() is 0 and the rest is never
 * called.
 *
 * The caller (aead.c) has already checked every argument: pointers are
 * non-NULL wherever their length is non-zero, the key is 32 bytes, and the
 * lengths are within GCM's limits.
 */
#ifndef RENC_CRYPTO_AEAD_INTERNAL_H
#define RENC_CRYPTO_AEAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"

/* One AES-256-GCM key schedule (round keys and GHASH powers of H). */
struct renc_imb_gcm;

/* renc_imb_gcm_available: 1 when ipsec-mb is compiled in and its CPU
 * detection found AES-NI and PCLMULQDQ, else 0.  Detects once per process;
 * thread-safe. */
int renc_imb_gcm_available(void);

/* renc_imb_gcm_new: expands `key` into a new schedule in secure memory.
 * Returns 0, -RENC_E_UNSUPPORTED (not available) or -RENC_E_NOMEM; *out is
 * written only on success. */
int renc_imb_gcm_new(struct renc_imb_gcm **out, const struct renc_key *key);

/* renc_imb_gcm_free: wipes and frees; NULL does nothing. */
void renc_imb_gcm_free(struct renc_imb_gcm *g);

/* renc_imb_gcm_seal: as renc_aead_seal; cannot fail once arguments are
 * valid. */
void renc_imb_gcm_seal(const struct renc_imb_gcm *g, uint8_t *out,
                       uint8_t tag[RENC_AEAD_TAG_LEN], const uint8_t *in, size_t len,
                       const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len);

/* renc_imb_gcm_open: as renc_aead_open: 0, or -RENC_E_RECORD_AUTH with the
 * len bytes of out zeroed. */
int renc_imb_gcm_open(const struct renc_imb_gcm *g, uint8_t *out, const uint8_t *in,
                      size_t len, const uint8_t tag[RENC_AEAD_TAG_LEN],
                      const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                      const uint8_t *aad, size_t aad_len);

/* renc_imb_gcm_verify: as renc_aead_verify. */
int renc_imb_gcm_verify(const struct renc_imb_gcm *g, const uint8_t *in, size_t len,
                        const uint8_t tag[RENC_AEAD_TAG_LEN],
                        const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                        const uint8_t *aad, size_t aad_len);

/* The scratch a verify decrypts through, piece by piece: small enough to
 * stay in the first-level cache, large enough that the per-call cost of
 * the libraries' update functions does not show. */
#define RENC_AEAD_VERIFY_PIECE (16u << 10)

#endif
