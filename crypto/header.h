/* crypto/header.h — the RENC v1 header codec (FORMAT.md §2).
 *
 * Parsing is in two steps, as the format requires: renc_header_parse checks
 * the structure (everything a reader rejects before it has a key), and
 * renc_header_verify checks header_tag once a DEK is unwrapped and K_hdr
 * derived.  A DEK whose header does not verify is never used.
 */
#ifndef RENC_CRYPTO_HEADER_H
#define RENC_CRYPTO_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secmem.h"

#define RENC_VERSION 1
#define RENC_FIXED_LEN 58          /* magic .. ctx_len */
#define RENC_PREFIX_LEN 16         /* enough to learn header_len and plaintext_len */
#define RENC_SALT_LEN 32
#define RENC_NONCE_PREFIX_LEN 7
#define RENC_HEADER_TAG_LEN 32
#define RENC_SEG_SHIFT_MIN 12
#define RENC_SEG_SHIFT_MAX 24
#define RENC_SEG_SHIFT_DEFAULT 20
#define RENC_MAX_SLOTS 8
#define RENC_MAX_REF_LEN 2048
#define RENC_PLAINTEXT_UNKNOWN UINT64_MAX
#define RENC_FLAG_COMPRESSED 0x01u
#define RENC_MAX_HEADER_LEN 65535u
/* Default padding: room for one more RSA-4096 slot with a 256-byte ref. */
#define RENC_DEFAULT_HEADER_ROOM (1 + 2 + 256 + 2 + 512)

struct renc_ctx_entry {
    char *key;          /* NUL-terminated copy; key_len excludes the NUL */
    size_t key_len;
    char *value;
    size_t value_len;
};

/* The context: entries kept sorted by key, bytewise, each key once. */
struct renc_context {
    struct renc_ctx_entry *entries;
    size_t count;
};

struct renc_slot {
    uint8_t alg;
    char *ref;          /* NUL-terminated versioned key reference */
    size_t ref_len;
    uint8_t *wrapped;
    size_t wrapped_len;
};

struct renc_header {
    uint8_t seg_shift;
    uint16_t header_len;     /* total, tag included; includes padding */
    uint64_t plaintext_len;  /* RENC_PLAINTEXT_UNKNOWN when not known */
    uint8_t salt[RENC_SALT_LEN];
    uint8_t nonce_prefix[RENC_NONCE_PREFIX_LEN];
    uint8_t flags;
    struct renc_context ctx;
    uint8_t slot_count;
    struct renc_slot slots[RENC_MAX_SLOTS];
    uint8_t header_tag[RENC_HEADER_TAG_LEN];
};

/* renc_header_peek: from the first RENC_PREFIX_LEN bytes, checks magic,
 * version and seg_shift and returns header_len (>= RENC_FIXED_LEN + 1 + 32).
 * Lets a reader learn how many bytes the whole header needs. */
int renc_header_peek(uint16_t *header_len, const uint8_t *buf, size_t len);

/* renc_header_parse: parses and checks the header at buf (len >= header_len).
 * Every rejection of FORMAT.md §2 but the tag.  On failure *out is left
 * empty (safe to cleanup) and the error names the first rule broken. */
int renc_header_parse(struct renc_header *out, const uint8_t *buf, size_t len);

/* renc_header_verify: constant-time check of header_tag over the first
 * header_len-32 bytes of buf.  -RENC_E_HEADER_AUTH when it does not match. */
int renc_header_verify(const uint8_t *buf, size_t header_len, const struct renc_key *k_hdr);

/* renc_header_min_len: the bytes the header's fields need, tag included, no
 * padding.  header_len must be at least this. */
size_t renc_header_min_len(const struct renc_header *h);

/* renc_header_serialize: writes h->header_len bytes to out (fields, zero
 * padding, header_tag computed with k_hdr) and copies the tag into h.
 * -RENC_E_BAD_HEADER_LEN when h->header_len < renc_header_min_len(h). */
int renc_header_serialize(uint8_t *out, size_t max_out, struct renc_header *h,
                          const struct renc_key *k_hdr);

/* renc_header_cleanup: frees context and slots; copes with a half-built
 * header; leaves it zeroed. */
void renc_header_cleanup(struct renc_header *h);

/* renc_header_copy: a deep copy (dst must be empty). */
int renc_header_copy(struct renc_header *dst, const struct renc_header *src);

/* renc_header_add_slot: appends a slot (copies ref and wrapped).
 * -RENC_E_BAD_SLOT_COUNT when 8 slots are already there. */
int renc_header_add_slot(struct renc_header *h, uint8_t alg, const char *ref,
                         const uint8_t *wrapped, size_t wrapped_len);

/* renc_header_remove_slot: removes slot i, keeping the others in order. */
void renc_header_remove_slot(struct renc_header *h, unsigned i);

/* renc_context_set: sets key to value, keeping entries sorted (replaces an
 * existing value).  Keys and values must be valid UTF-8. */
int renc_context_set(struct renc_context *ctx, const char *key, const char *value);

/* renc_context_get: the value of key, or NULL. */
const char *renc_context_get(const struct renc_context *ctx, const char *key);

void renc_context_cleanup(struct renc_context *ctx);

/* Segment size and count of a header. */
static inline uint32_t renc_header_seg_size(const struct renc_header *h)
{
    return (uint32_t)1 << h->seg_shift;
}

/* renc_header_seg_count: max(1, ceil(plaintext_len / S)); 0 when the
 * plaintext length is unknown. */
uint64_t renc_header_seg_count(const struct renc_header *h);

/* renc_utf8_valid: 1 when the len bytes are well-formed UTF-8. */
int renc_utf8_valid(const uint8_t *s, size_t len);

#endif
