/* crypto/kek.h — key-encryption keys and the four wrap algorithms of
 * FORMAT.md §2.
 *
 *   alg 1  AES-256 key wrap with padding (RFC 5649), 40-byte result
 *   alg 2  RSA-OAEP, SHA-256 and MGF1-SHA-256, empty label
 *   alg 3  RSA-OAEP, SHA-1 and MGF1-SHA-1, empty label
 *   alg 4  AES-256 key wrap without padding (RFC 3394), 40-byte result
 *
 * A struct renc_kek is either an AES-256 key (in secure memory) or an RSA
 * private key; OpenSSL types do not leave crypto/.
 */
#ifndef RENC_CRYPTO_KEK_H
#define RENC_CRYPTO_KEK_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secmem.h"

enum renc_wrap_alg {
    RENC_ALG_AES_KWP = 1,
    RENC_ALG_RSA_OAEP_256 = 2,
    RENC_ALG_RSA_OAEP_SHA1 = 3,
    RENC_ALG_AES_KW = 4,
};

enum renc_kek_type {
    RENC_KEK_AES256 = 1,
    RENC_KEK_RSA = 2,
};

/* Largest wrapped DEK a slot may hold (an RSA-8192 result). */
#define RENC_MAX_WRAPPED_LEN 1024

struct renc_kek;

/* renc_kek_generate: a fresh KEK: type AES256 (bits ignored) or RSA with
 * bits 2048, 3072 or 4096. */
int renc_kek_generate(struct renc_kek **out, enum renc_kek_type type, unsigned bits);

/* renc_kek_from_aes: an AES-256 KEK from 32 bytes of material (copied). */
int renc_kek_from_aes(struct renc_kek **out, const uint8_t *material, size_t len);

/* renc_kek_from_pem: an RSA KEK from an unencrypted PEM private key. */
int renc_kek_from_pem(struct renc_kek **out, const char *pem, size_t pem_len);

/* renc_kek_export: the KEK's material as stored in the keyring: 32 raw bytes
 * for AES, PEM text for RSA, in a secure-memory key the caller frees. */
int renc_kek_export(struct renc_key **out, const struct renc_kek *kek);

void renc_kek_free(struct renc_kek *kek);

enum renc_kek_type renc_kek_type(const struct renc_kek *kek);
/* RSA modulus bits, or 256 for AES. */
unsigned renc_kek_bits(const struct renc_kek *kek);
/* The algorithm the tool wraps with for this KEK: 1 for AES, 2 for RSA. */
enum renc_wrap_alg renc_kek_default_alg(const struct renc_kek *kek);
/* 1 when alg can be used with this KEK's type. */
int renc_kek_alg_fits(const struct renc_kek *kek, int alg);

/* renc_kek_wrap: wraps the DEK with `alg`.  -RENC_E_KEY_TYPE when the alg
 * does not fit the KEK, -RENC_E_TOO_BIG when max_out is too small. */
int renc_kek_wrap(const struct renc_kek *kek, int alg, uint8_t *out, size_t max_out,
                  size_t *out_len, const struct renc_key *dek);

/* renc_kek_unwrap: unwraps into a new secure key.  -RENC_E_UNWRAP when the
 * wrapped bytes do not open under this KEK (wrong key or tampered),
 * -RENC_E_KEY_TYPE when the alg does not fit.  *dek written only on success. */
int renc_kek_unwrap(const struct renc_kek *kek, int alg, struct renc_key **dek,
                    const uint8_t *wrapped, size_t wrapped_len);

/* Raw AES key wrap for known-answer tests and alg 1/4: kek_len 16, 24 or 32.
 * padded selects RFC 5649 (else RFC 3394, in_len a multiple of 8, >= 16). */
int renc_aes_keywrap(uint8_t *out, size_t max_out, size_t *out_len, int padded,
                     const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len);
/* Raw AES key unwrap; on failure `out` is zeroed and -RENC_E_UNWRAP returned. */
int renc_aes_keyunwrap(uint8_t *out, size_t max_out, size_t *out_len, int padded,
                       const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len);

#endif
