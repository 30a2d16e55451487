/* tests/fuzz/fuzz_header.c — the RENC v1 header codec (FORMAT.md §2).
 *
 * Input: the bytes of a header (and whatever follows it).  Checks:
 *   - renc_header_peek and renc_header_parse never crash, and agree: when
 *     parse succeeds, peek succeeded with the same header_len;
 *   - a failed parse leaves *out all zero (safe to clean up);
 *   - the encoding is canonical: a parsed header, serialized again with the
 *     same header_len and a fixed K_hdr, gives back the input's bytes
 *     [0, header_len - 32) exactly, its tag verifies under K_hdr, it parses
 *     again, and the re-parse equals the first parse field by field;
 *   - renc_header_copy gives an equal header.
 * A broken invariant abort()s, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "crypto/header.h"
#include "crypto/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_k_hdr_bytes[32] = {
    0x6b, 0x5f, 0x68, 0x64, 0x72, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x66, 0x75, 0x7a, 0x7a, 0x69, 0x6e,
    0x67, 0x20, 0x6f, 0x6e, 0x6c, 0x79, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
};

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

static int fuzz_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static int fuzz_header_equal(const struct renc_header *a, const struct renc_header *b)
{
    if (a->seg_shift != b->seg_shift || a->header_len != b->header_len ||
        a->plaintext_len != b->plaintext_len || a->flags != b->flags ||
        memcmp(a->salt, b->salt, sizeof a->salt) != 0 ||
        memcmp(a->nonce_prefix, b->nonce_prefix, sizeof a->nonce_prefix) != 0 ||
        memcmp(a->header_tag, b->header_tag, sizeof a->header_tag) != 0)
        return 0;
    if (a->ctx.count != b->ctx.count)
        return 0;
    for (size_t i = 0; i < a->ctx.count; i++) {
        const struct renc_ctx_entry *x = &a->ctx.entries[i], *y = &b->ctx.entries[i];
        if (x->key_len != y->key_len || x->value_len != y->value_len ||
            memcmp(x->key, y->key, x->key_len + 1) != 0 ||
            memcmp(x->value, y->value, x->value_len + 1) != 0)
            return 0;
    }
    if (a->slot_count != b->slot_count)
        return 0;
    for (unsigned i = 0; i < a->slot_count; i++) {
        const struct renc_slot *x = &a->slots[i], *y = &b->slots[i];
        if (x->alg != y->alg || x->ref_len != y->ref_len || x->wrapped_len != y->wrapped_len ||
            memcmp(x->ref, y->ref, x->ref_len + 1) != 0 ||
            memcmp(x->wrapped, y->wrapped, x->wrapped_len) != 0)
            return 0;
    }
    return 1;
}

/* Every structural promise a parsed header makes (FORMAT.md §2). */
static void fuzz_check_parsed(const struct renc_header *h)
{
    FUZZ_CHECK(h->seg_shift >= RENC_SEG_SHIFT_MIN && h->seg_shift <= RENC_SEG_SHIFT_MAX);
    FUZZ_CHECK((h->flags & ~RENC_FLAG_COMPRESSED) == 0);
    FUZZ_CHECK(h->slot_count >= 1 && h->slot_count <= RENC_MAX_SLOTS);
    FUZZ_CHECK(renc_header_min_len(h) <= h->header_len);
    FUZZ_CHECK(renc_context_get(&h->ctx, "env") != NULL);
    for (size_t i = 0; i < h->ctx.count; i++) {
        const struct renc_ctx_entry *e = &h->ctx.entries[i];
        FUZZ_CHECK(strlen(e->key) == e->key_len && strlen(e->value) == e->value_len);
        FUZZ_CHECK(renc_utf8_valid((const uint8_t *)e->key, e->key_len));
        FUZZ_CHECK(renc_utf8_valid((const uint8_t *)e->value, e->value_len));
    }
    for (unsigned i = 0; i < h->slot_count; i++) {
        const struct renc_slot *s = &h->slots[i];
        FUZZ_CHECK(s->alg >= 1 && s->alg <= 4);
        FUZZ_CHECK(s->ref_len >= 1 && s->ref_len <= RENC_MAX_REF_LEN);
        FUZZ_CHECK(strlen(s->ref) == s->ref_len && s->wrapped_len >= 1);
    }
    uint64_t n = renc_header_seg_count(h);
    if (h->plaintext_len == RENC_PLAINTEXT_UNKNOWN)
        FUZZ_CHECK(n == 0);
    else
        FUZZ_CHECK(n >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct renc_key *k_hdr;
    if (!k_hdr && renc_key_from_bytes(&k_hdr, fuzz_k_hdr_bytes, sizeof fuzz_k_hdr_bytes) != 0)
        abort();

    uint16_t peek_len = 0;
    int peek_rc = renc_header_peek(&peek_len, data, size);

    struct renc_header h;
    memset(&h, 0xa5, sizeof h); /* parse must clear it whatever it held */
    int rc = renc_header_parse(&h, data, size);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0);
        FUZZ_CHECK(fuzz_all_zero(&h, sizeof h));
        renc_header_cleanup(&h);
        return 0;
    }
    FUZZ_CHECK(peek_rc == 0 && peek_len == h.header_len && h.header_len <= size);
    fuzz_check_parsed(&h);

    /* Serialize again, same header_len: the bytes before the tag must be the
     * input's, byte for byte (the encoding is canonical), and the tag must be
     * the HMAC under k_hdr. */
    struct renc_header first;
    FUZZ_CHECK(renc_header_copy(&first, &h) == 0);
    FUZZ_CHECK(fuzz_header_equal(&first, &h));

    uint8_t *buf = renc_malloc(h.header_len);
    FUZZ_CHECK(buf != NULL);
    /* One byte short must be refused, not overrun. */
    FUZZ_CHECK(renc_header_serialize(buf, (size_t)h.header_len - 1, &h, k_hdr) != 0);
    FUZZ_CHECK(renc_header_serialize(buf, h.header_len, &h, k_hdr) == 0);
    size_t body = (size_t)h.header_len - RENC_HEADER_TAG_LEN;
    FUZZ_CHECK(memcmp(buf, data, body) == 0);
    FUZZ_CHECK(memcmp(h.header_tag, buf + body, RENC_HEADER_TAG_LEN) == 0);
    FUZZ_CHECK(renc_header_verify(buf, h.header_len, k_hdr) == 0);

    struct renc_header again;
    FUZZ_CHECK(renc_header_parse(&again, buf, h.header_len) == 0);
    FUZZ_CHECK(fuzz_header_equal(&again, &h));
    /* Apart from the tag (now k_hdr's), the first parse is unchanged. */
    memcpy(first.header_tag, h.header_tag, RENC_HEADER_TAG_LEN);
    FUZZ_CHECK(fuzz_header_equal(&first, &again));

    /* The smallest header_len the fields allow also round-trips. */
    size_t min_len = renc_header_min_len(&h);
    if (min_len != h.header_len) {
        again.header_len = (uint16_t)min_len;
        FUZZ_CHECK(renc_header_serialize(buf, min_len, &again, k_hdr) == 0);
        struct renc_header shrunk;
        FUZZ_CHECK(renc_header_parse(&shrunk, buf, min_len) == 0);
        FUZZ_CHECK(fuzz_header_equal(&shrunk, &again));
        renc_header_cleanup(&shrunk);
    }

    renc_free(buf);
    renc_header_cleanup(&again);
    renc_header_cleanup(&first);
    renc_header_cleanup(&h);
    return 0;
}
