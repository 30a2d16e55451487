/* crypto/secmem.h — the one home of key material.
 *
 * Every DEK, derived key and AES KEK lives in a struct renc_key whose bytes
 * come from OpenSSL's secure heap (mlock'd, excluded from core dumps) when it
 * could be set up, and are wiped on free whatever the allocator.
 */
#ifndef RENC_CRYPTO_SECMEM_H
#define RENC_CRYPTO_SECMEM_H

#include <stddef.h>
#include <stdint.h>

struct renc_key {
    uint8_t *bytes;
    size_t len;
};

/* renc_secmem_init: set up the secure heap and turn off core dumps of the
 * process (RLIMIT_CORE 0, PR_SET_DUMPABLE 0).  Call once at start-up, before
 * any key is loaded.  Failing to lock memory is not fatal (keys then live in
 * unlocked memory, still wiped on free); returns 0 or -RENC_E_CRYPTO. */
int renc_secmem_init(void);

/* renc_key_new: a zeroed key of len bytes, or NULL when out of memory. */
struct renc_key *renc_key_new(size_t len);

/* renc_key_random: a key of len bytes from the CSPRNG.  *out is written only
 * on success. */
int renc_key_random(struct renc_key **out, size_t len);

/* renc_key_from_bytes: copies len bytes into a new key.  The caller still
 * owns (and should wipe) `bytes`. */
int renc_key_from_bytes(struct renc_key **out, const uint8_t *bytes, size_t len);

/* renc_key_dup: a copy of `key` in secure memory. */
int renc_key_dup(struct renc_key **out, const struct renc_key *key);

/* renc_key_free: wipes and frees; renc_key_free(NULL) does nothing. */
void renc_key_free(struct renc_key *key);

/* renc_secmem_wipe: zeroes memory in a way the compiler cannot elide. */
void renc_secmem_wipe(void *p, size_t len);

/* renc_ct_equal: 1 when the n bytes at a and b are equal, else 0, in time
 * that depends only on n. */
int renc_ct_equal(const void *a, const void *b, size_t n);

/* renc_random_bytes: n bytes from the CSPRNG (salts, nonce prefixes). */
int renc_random_bytes(uint8_t *out, size_t n);

#endif
