/* tests/unit/test_record.c — the RENC v1 record codec (FORMAT.md §3): seal
 * and open round trips at the segment-size edges, compression, in-place
 * sealing, tamper rejection, the word checks, reseal, and the nonce layout.
 *
 * Two oracles are independent of the code under test: the nonce is checked
 * byte by byte, and one record is recomputed with OpenSSL's EVP AES-256-GCM
 * (aad = word) here; malformed compressed payloads are made with zstd
 * directly.  That is why this crypto/ test includes OpenSSL and zstd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/header.h" /* RENC_FLAG_COMPRESSED */
#include "crypto/record.h"
#include "crypto/secmem.h"

#define SHIFT 12
#define S ((uint32_t)1 << SHIFT) /* 4096 */
#define REC_MAX (S + RENC_RECORD_OVERHEAD)

static const uint8_t prefix_a[7] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
static const uint8_t prefix_b[7] = {0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7};

static uint8_t key_a_bytes[32], key_b_bytes[32];

/* Per-test fixture: two keys' contexts, a compressor, buffers. */
struct fx {
    struct renc_key *ka, *kb;
    struct renc_aead *a, *b;
    struct renc_zstd *z;
    uint8_t *rec, *plain, *copy;
};

static int64_t live_before;

static int setup_group(void **state)
{
    (void)state;
    for (size_t i = 0; i < 32; i++) {
        key_a_bytes[i] = (uint8_t)i;
        key_b_bytes[i] = (uint8_t)(0xff - i);
    }
    return renc_secmem_init() == 0 ? 0 : -1;
}

static int setup(void **state)
{
    live_before = renc_alloc_outstanding();
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (renc_key_from_bytes(&f->ka, key_a_bytes, 32) || renc_key_from_bytes(&f->kb, key_b_bytes, 32) ||
        renc_aead_new(&f->a, f->ka, RENC_AEAD_BACKEND_AUTO) ||
        renc_aead_new(&f->b, f->kb, RENC_AEAD_BACKEND_AUTO) || renc_zstd_new(&f->z, 3, S))
        return -1;
    /* Plain malloc: test buffers are not the code's allocations. */
    f->rec = malloc(REC_MAX + 64);
    f->plain = malloc(S + 64);
    f->copy = malloc(REC_MAX + 64);
    if (!f->rec || !f->plain || !f->copy)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    renc_zstd_free(f->z);
    renc_aead_free(f->a);
    renc_aead_free(f->b);
    renc_key_free(f->ka);
    renc_key_free(f->kb);
    free(f->rec);
    free(f->plain);
    free(f->copy);
    free(f);
    return renc_alloc_outstanding() == live_before ? 0 : -1;
}

/* Incompressible bytes: a simple PRNG (xorshift) so failures reproduce. */
static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* Compressible bytes: repeated text. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char t[] = "the quick brown fox jumps over the lazy dog; ";
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)t[i % (sizeof t - 1)];
}

/* Seals plain (len) as record (index, last) under f->a and prefix_a;
 * returns the record length. */
static size_t seal(struct fx *f, struct renc_zstd *z, size_t len, uint32_t index, int last)
{
    size_t rec_len = 0;
    assert_int_equal(renc_record_seal(f->a, z, f->rec, REC_MAX, &rec_len, f->plain, len,
                                      prefix_a, index, last), 0);
    return rec_len;
}

/* Opens f->rec and checks it gives back f->plain[0, len). */
static void open_ok(struct fx *f, struct renc_zstd *z, size_t rec_len, size_t len,
                    uint32_t index, int last)
{
    const uint8_t *out = NULL;
    size_t out_len = 12345;
    assert_int_equal(renc_record_open(f->a, z, &out, &out_len, f->rec, rec_len, S, prefix_a,
                                      index, last), 0);
    assert_int_equal(out_len, len);
    if (len)
        assert_memory_equal(out, f->plain, len);
}

/* Opening must fail with want, and leave no plaintext in the record. */
static void open_fails(struct fx *f, struct renc_aead *aead, struct renc_zstd *z, uint8_t *rec,
                       size_t rec_len, const uint8_t *prefix, uint32_t index, int last, int want)
{
    const uint8_t *out = NULL;
    size_t out_len = 0;
    (void)f;
    assert_int_equal(renc_record_open(aead, z, &out, &out_len, rec, rec_len, S, prefix, index,
                                      last), want);
    assert_null(out);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- nonce --------------------------------------------------------------- */

static void test_record_nonce_is_prefix_be32_index_last(void **state)
{
    (void)state;
    uint8_t n[RENC_AEAD_NONCE_LEN];
    static const uint8_t want1[12] = {1, 2, 3, 4, 5, 6, 7, 0x0a, 0x0b, 0x0c, 0x0d, 1};
    static const uint8_t want0[12] = {1, 2, 3, 4, 5, 6, 7, 0x0a, 0x0b, 0x0c, 0x0d, 0};
    static const uint8_t want_max[12] = {1, 2, 3, 4, 5, 6, 7, 0xff, 0xff, 0xff, 0xff, 1};
    static const uint8_t want_zero[12] = {1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0};
    renc_record_nonce(n, prefix_a, 0x0a0b0c0d, 1);
    assert_memory_equal(n, want1, 12);
    renc_record_nonce(n, prefix_a, 0x0a0b0c0d, 0);
    assert_memory_equal(n, want0, 12);
    /* Any non-zero `last` is the byte 1. */
    renc_record_nonce(n, prefix_a, 0xffffffffu, 7);
    assert_memory_equal(n, want_max, 12);
    renc_record_nonce(n, prefix_a, 0, 0);
    assert_memory_equal(n, want_zero, 12);
}

/* The whole record against AES-256-GCM computed here with EVP: nonce
 * prefix||be32(i)||last, aad the 4-byte word, ciphertext then tag. */
static void test_record_seal_matches_independent_gcm(void **state)
{
    struct fx *f = *state;
    const size_t len = 100;
    fill_random(f->plain, len, 42);
    size_t rec_len = seal(f, NULL, len, 0x01020304, 1);
    assert_int_equal(rec_len, 4 + len + 16);
    assert_int_equal(renc_load_be32(f->rec), len);

    static const uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 1};
    uint8_t word[4] = {0, 0, 0, (uint8_t)len};
    uint8_t ct[100], tag[16];
    int outl = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key_a_bytes, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &outl, word, 4), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &outl, f->plain, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + outl, &outl), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(c);

    assert_memory_equal(f->rec, word, 4);
    assert_memory_equal(f->rec + 4, ct, len);
    assert_memory_equal(f->rec + 4 + len, tag, 16);
}

/* ---- round trips --------------------------------------------------------- */

static void round_trip_raw(struct fx *f, size_t len)
{
    fill_random(f->plain, len, (uint32_t)len + 1);
    for (int last = 0; last <= 1; last++) {
        size_t rec_len = seal(f, NULL, len, 3, last);
        assert_int_equal(rec_len, len + RENC_RECORD_OVERHEAD);
        uint32_t word = renc_load_be32(f->rec);
        assert_int_equal(word, len);
        size_t parsed = 0;
        assert_int_equal(renc_record_parse_word(word, 0, S, &parsed), 0);
        assert_int_equal(parsed, rec_len);
        if (len >= 16)  /* ciphertext is not the plaintext */
            assert_memory_not_equal(f->rec + 4, f->plain, len);
        open_ok(f, NULL, rec_len, len, 3, last);
    }
}

static void test_record_round_trip_empty(void **state)
{
    round_trip_raw(*state, 0);
}

static void test_record_round_trip_one_byte(void **state)
{
    round_trip_raw(*state, 1);
}

static void test_record_round_trip_s_minus_1(void **state)
{
    round_trip_raw(*state, S - 1);
}

static void test_record_round_trip_s(void **state)
{
    round_trip_raw(*state, S);
}

static void test_record_round_trip_compressed(void **state)
{
    struct fx *f = *state;
    static const size_t lens[] = {S, S - 1, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        fill_text(f->plain, len);
        size_t rec_len = seal(f, f->z, len, 9, 0);
        uint32_t word = renc_load_be32(f->rec);
        assert_true(word & RENC_RECORD_COMPRESSED);
        size_t clen = word & RENC_RECORD_LEN_MASK;
        assert_true(clen > 0 && clen < len);
        assert_int_equal(rec_len, clen + RENC_RECORD_OVERHEAD);
        size_t parsed = 0;
        assert_int_equal(renc_record_parse_word(word, RENC_FLAG_COMPRESSED, S, &parsed), 0);
        assert_int_equal(parsed, rec_len);
        /* Without the compressed flag, the same word is refused. */
        assert_int_equal(renc_record_parse_word(word, 0, S, &parsed), -RENC_E_BAD_RECORD);
        open_ok(f, f->z, rec_len, len, 9, 0);
    }
}

static void test_record_incompressible_is_stored_raw(void **state)
{
    struct fx *f = *state;
    static const size_t lens[] = {1, 2, 100, S - 1, S};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        fill_random(f->plain, len, 7 + (uint32_t)i);
        size_t rec_len = seal(f, f->z, len, 1, 1);
        uint32_t word = renc_load_be32(f->rec);
        assert_int_equal(word, len); /* bit 31 clear, length = plaintext length */
        assert_int_equal(rec_len, len + RENC_RECORD_OVERHEAD);
        memcpy(f->copy, f->rec, rec_len);
        open_ok(f, f->z, rec_len, len, 1, 1);
        memcpy(f->rec, f->copy, rec_len); /* opened in place: restore it */
        open_ok(f, NULL, rec_len, len, 1, 1); /* a raw record needs no z */
    }
}

static void test_record_empty_segment_with_z_is_raw(void **state)
{
    struct fx *f = *state;
    size_t rec_len = seal(f, f->z, 0, 0, 1);
    assert_int_equal(rec_len, RENC_RECORD_OVERHEAD);
    assert_int_equal(renc_load_be32(f->rec), 0);
    open_ok(f, f->z, rec_len, 0, 0, 1);
}

/* A segment already sitting after the word is sealed where it is, with the
 * same bytes as sealing from a separate buffer. */
static void test_record_seal_in_place_matches_out_of_place(void **state)
{
    struct fx *f = *state;
    for (int compress = 0; compress <= 1; compress++) {
        struct renc_zstd *z = compress ? f->z : NULL;
        size_t len = S;
        if (compress)
            fill_text(f->plain, len);
        else
            fill_random(f->plain, len, 99);
        size_t rec_len = seal(f, z, len, 5, 0);
        memcpy(f->copy, f->rec, rec_len);

        memset(f->rec, 0xee, REC_MAX);
        memcpy(f->rec + RENC_RECORD_WORD_LEN, f->plain, len);
        size_t in_place_len = 0;
        assert_int_equal(renc_record_seal(f->a, z, f->rec, REC_MAX, &in_place_len,
                                          f->rec + RENC_RECORD_WORD_LEN, len, prefix_a, 5, 0),
                         0);
        assert_int_equal(in_place_len, rec_len);
        assert_memory_equal(f->rec, f->copy, rec_len);
        open_ok(f, z, rec_len, len, 5, 0);
    }
}

static void test_record_seal_refuses_small_output(void **state)
{
    struct fx *f = *state;
    size_t rec_len = 77;
    fill_random(f->plain, 10, 3);
    assert_int_equal(renc_record_seal(f->a, NULL, f->rec, 10 + RENC_RECORD_OVERHEAD - 1,
                                      &rec_len, f->plain, 10, prefix_a, 0, 1), -RENC_E_TOO_BIG);
    assert_int_equal(rec_len, 77);
    /* With z, a segment larger than the compressor's segment size. */
    uint8_t *big = malloc(2 * S + RENC_RECORD_OVERHEAD);
    assert_non_null(big);
    fill_text(big, 2 * S);
    assert_int_equal(renc_record_seal(f->a, f->z, big, 2 * S + RENC_RECORD_OVERHEAD, &rec_len,
                                      big, S + 1, prefix_a, 0, 1), -RENC_E_TOO_BIG);
    free(big);
}

/* ---- tampering ----------------------------------------------------------- */

static void test_record_open_rejects_flipped_ciphertext_bit(void **state)
{
    struct fx *f = *state;
    size_t len = 1000;
    fill_random(f->plain, len, 5);
    size_t rec_len = seal(f, NULL, len, 2, 0);
    f->rec[4 + 500] ^= 0x10;
    open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, 2, 0, -RENC_E_RECORD_AUTH);
    /* No unverified plaintext is left behind. */
    assert_true(all_zero(f->rec + 4, len));
}

static void test_record_open_rejects_flipped_tag_bit(void **state)
{
    struct fx *f = *state;
    size_t len = 1000;
    fill_random(f->plain, len, 6);
    size_t rec_len = seal(f, NULL, len, 2, 0);
    f->rec[rec_len - 1] ^= 0x80;
    open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, 2, 0, -RENC_E_RECORD_AUTH);
    assert_true(all_zero(f->rec + 4, len));
}

/* A flipped bit of the length makes the word disagree with the record's
 * size; a flipped compression bit keeps the size but not the AAD. */
static void test_record_open_rejects_flipped_length_word(void **state)
{
    struct fx *f = *state;
    size_t len = 1000;
    fill_random(f->plain, len, 8);
    size_t rec_len = seal(f, NULL, len, 2, 0);
    memcpy(f->copy, f->rec, rec_len);

    f->rec[3] ^= 0x01;
    open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, 2, 0, -RENC_E_BAD_RECORD);

    memcpy(f->rec, f->copy, rec_len);
    f->rec[0] ^= 0x80; /* the compression bit: authenticated as AAD */
    open_fails(f, f->a, f->z, f->rec, rec_len, prefix_a, 2, 0, -RENC_E_RECORD_AUTH);
    assert_true(all_zero(f->rec + 4, len));

    /* And a compressed record whose bit is cleared. */
    fill_text(f->plain, S);
    rec_len = seal(f, f->z, S, 2, 0);
    assert_true(f->rec[0] & 0x80);
    f->rec[0] &= 0x7f;
    open_fails(f, f->a, f->z, f->rec, rec_len, prefix_a, 2, 0, -RENC_E_RECORD_AUTH);
}

/* renc_record_verify checks a raw record as open would (its index, last
 * flag, word and tag are all bound), never writes it, and refuses a
 * compressed one (that must be opened to be checked). */
static void test_record_verify_checks_without_writing(void **state)
{
    struct fx *f = *state;
    size_t len = 1000, plain_len = 0;
    fill_random(f->plain, len, 21);
    size_t rec_len = seal(f, NULL, len, 3, 1);
    memcpy(f->copy, f->rec, rec_len);
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 3, 1), 0);
    assert_int_equal(plain_len, len);
    assert_memory_equal(f->rec, f->copy, rec_len);
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 4, 1),
                     -RENC_E_RECORD_AUTH);
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 3, 0),
                     -RENC_E_RECORD_AUTH);
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_b, 3, 1),
                     -RENC_E_RECORD_AUTH);
    f->rec[4 + 999] ^= 0x04;
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 3, 1),
                     -RENC_E_RECORD_AUTH);
    f->rec[4 + 999] ^= 0x04;
    f->rec[3] ^= 0x01;
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 3, 1),
                     -RENC_E_BAD_RECORD);
    f->rec[3] ^= 0x01;
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, 15, prefix_a, 3, 1),
                     -RENC_E_TRUNCATED);
    assert_memory_equal(f->rec, f->copy, rec_len);

    fill_text(f->plain, S);
    rec_len = seal(f, f->z, S, 0, 1);
    assert_true(f->rec[0] & 0x80);
    assert_int_equal(renc_record_verify(f->a, &plain_len, f->rec, rec_len, prefix_a, 0, 1),
                     -RENC_E_INVALID);
}

static void test_record_open_rejects_wrong_index(void **state)
{
    struct fx *f = *state;
    size_t len = 300;
    fill_random(f->plain, len, 9);
    size_t rec_len = seal(f, NULL, len, 1, 0);
    memcpy(f->copy, f->rec, rec_len);
    static const uint32_t wrong[] = {0, 2, 0x01000001u, 0xffffffffu};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        memcpy(f->rec, f->copy, rec_len);
        open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, wrong[i], 0, -RENC_E_RECORD_AUTH);
    }
    memcpy(f->rec, f->copy, rec_len);
    open_ok(f, NULL, rec_len, len, 1, 0);
}

static void test_record_open_rejects_wrong_last_flag(void **state)
{
    struct fx *f = *state;
    size_t len = 300;
    fill_random(f->plain, len, 10);
    for (int last = 0; last <= 1; last++) {
        size_t rec_len = seal(f, NULL, len, 4, last);
        memcpy(f->copy, f->rec, rec_len);
        open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, 4, !last, -RENC_E_RECORD_AUTH);
        memcpy(f->rec, f->copy, rec_len);
        open_ok(f, NULL, rec_len, len, 4, last);
    }
}

static void test_record_open_rejects_wrong_prefix_and_key(void **state)
{
    struct fx *f = *state;
    size_t len = 300;
    fill_random(f->plain, len, 11);
    size_t rec_len = seal(f, NULL, len, 0, 1);
    memcpy(f->copy, f->rec, rec_len);
    open_fails(f, f->a, NULL, f->rec, rec_len, prefix_b, 0, 1, -RENC_E_RECORD_AUTH);
    memcpy(f->rec, f->copy, rec_len);
    open_fails(f, f->b, NULL, f->rec, rec_len, prefix_a, 0, 1, -RENC_E_RECORD_AUTH);
}

static void test_record_open_rejects_short_record(void **state)
{
    struct fx *f = *state;
    size_t rec_len = seal(f, NULL, 0, 0, 1);
    open_fails(f, f->a, NULL, f->rec, rec_len - 1, prefix_a, 0, 1, -RENC_E_TRUNCATED);
    /* A record one byte shorter than its word says. */
    fill_random(f->plain, 50, 12);
    rec_len = seal(f, NULL, 50, 0, 1);
    open_fails(f, f->a, NULL, f->rec, rec_len - 1, prefix_a, 0, 1, -RENC_E_BAD_RECORD);
}

static void test_record_open_compressed_needs_z(void **state)
{
    struct fx *f = *state;
    fill_text(f->plain, S);
    size_t rec_len = seal(f, f->z, S, 0, 1);
    open_fails(f, f->a, NULL, f->rec, rec_len, prefix_a, 0, 1, -RENC_E_INVALID);
}

/* An authentic record (sealed here with the right key) whose zstd payload
 * breaks the rules: the codec must still refuse it. */
static size_t seal_payload(struct fx *f, const uint8_t *payload, size_t n, uint32_t word)
{
    uint8_t nonce[12];
    renc_record_nonce(nonce, prefix_a, 0, 1);
    renc_store_be32(f->rec, word);
    assert_int_equal(renc_aead_seal(f->a, f->rec + 4, f->rec + 4 + n, payload, n, nonce,
                                    f->rec, 4), 0);
    return n + RENC_RECORD_OVERHEAD;
}

static void test_record_open_rejects_frame_larger_than_segment(void **state)
{
    struct fx *f = *state;
    size_t big = 2 * S;
    uint8_t *src = calloc(1, big);
    uint8_t frame[512];
    assert_non_null(src);
    size_t n = ZSTD_compress(frame, sizeof frame, src, big, 3);
    assert_false(ZSTD_isError(n));
    size_t rec_len = seal_payload(f, frame, n, RENC_RECORD_COMPRESSED | (uint32_t)n);
    open_fails(f, f->a, f->z, f->rec, rec_len, prefix_a, 0, 1, -RENC_E_DECOMPRESS);
    free(src);
}

static void test_record_open_rejects_two_frames(void **state)
{
    struct fx *f = *state;
    uint8_t src[100], frames[512];
    memset(src, 'a', sizeof src);
    size_t n = ZSTD_compress(frames, sizeof frames, src, sizeof src, 3);
    assert_false(ZSTD_isError(n));
    memcpy(frames + n, frames, n);
    size_t rec_len = seal_payload(f, frames, 2 * n, RENC_RECORD_COMPRESSED | (uint32_t)(2 * n));
    open_fails(f, f->a, f->z, f->rec, rec_len, prefix_a, 0, 1, -RENC_E_DECOMPRESS);
}

static void test_record_open_rejects_garbage_frame(void **state)
{
    struct fx *f = *state;
    uint8_t junk[64];
    fill_random(junk, sizeof junk, 13);
    size_t rec_len = seal_payload(f, junk, sizeof junk, RENC_RECORD_COMPRESSED | 64u);
    open_fails(f, f->a, f->z, f->rec, rec_len, prefix_a, 0, 1, -RENC_E_DECOMPRESS);
}

/* ---- open_into: the record stays as it was ---------------------------------- */

/* A read-only mapping holding a copy of f->rec: any write to it faults. */
static uint8_t *readonly_copy(const uint8_t *rec, size_t rec_len, size_t *map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *map_len = (rec_len + page - 1) / page * page;
    uint8_t *m = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    memcpy(m, rec, rec_len);
    assert_int_equal(mprotect(m, *map_len, PROT_READ), 0);
    return m;
}

static void test_record_open_into_reads_a_readonly_record(void **state)
{
    struct fx *f = *state;
    for (int compress = 0; compress <= 1; compress++) {
        struct renc_zstd *z = compress ? f->z : NULL;
        size_t len = S - 10;
        if (compress)
            fill_text(f->plain, len);
        else
            fill_random(f->plain, len, 21);
        size_t rec_len = seal(f, z, len, 8, 1);
        size_t map_len;
        uint8_t *ro = readonly_copy(f->rec, rec_len, &map_len);
        const uint8_t *out = NULL;
        size_t out_len = 0;
        memset(f->copy, 0xaa, S);
        assert_int_equal(renc_record_open_into(f->a, z, &out, &out_len, f->copy, ro, rec_len, S,
                                               prefix_a, 8, 1), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, f->plain, len);
        if (!compress)
            assert_ptr_equal(out, f->copy); /* raw: the plaintext is in scratch */
        assert_memory_equal(ro, f->rec, rec_len); /* untouched */
        munmap(ro, map_len);
    }
}

static void test_record_open_into_failure_zeroes_scratch(void **state)
{
    struct fx *f = *state;
    size_t len = 1000;
    fill_random(f->plain, len, 22);
    size_t rec_len = seal(f, NULL, len, 0, 0);
    f->rec[4 + 17] ^= 0x04;
    size_t map_len;
    uint8_t *ro = readonly_copy(f->rec, rec_len, &map_len);
    const uint8_t *out = NULL;
    size_t out_len = 0;
    memset(f->copy, 0xaa, S);
    assert_int_equal(renc_record_open_into(f->a, NULL, &out, &out_len, f->copy, ro, rec_len, S,
                                           prefix_a, 0, 0), -RENC_E_RECORD_AUTH);
    assert_null(out);
    assert_true(all_zero(f->copy, len));
    assert_memory_equal(ro, f->rec, rec_len);
    munmap(ro, map_len);
}

/* A compressed record opened with a segment size beyond what z was made
 * for is refused, and leaves nothing decrypted behind: not in scratch (for
 * open_into), not in the record (for open, in place). */
static void test_record_open_refuses_segment_larger_than_z(void **state)
{
    struct fx *f = *state;
    fill_text(f->plain, S);
    size_t rec_len = seal(f, f->z, S, 0, 1);
    assert_true(f->rec[0] & 0x80);
    size_t payload_len = rec_len - RENC_RECORD_OVERHEAD;
    const uint8_t *out = NULL;
    size_t out_len = 0;

    memset(f->copy, 0xaa, S);
    int rc = renc_record_open_into(f->a, f->z, &out, &out_len, f->copy, f->rec, rec_len, 2 * S,
                                   prefix_a, 0, 1);
    assert_true(rc == -RENC_E_TOO_BIG || rc == -RENC_E_INVALID);
    assert_null(out);
    for (size_t i = 0; i < payload_len; i++) /* untouched or wiped, never the payload */
        assert_true(f->copy[i] == 0xaa || f->copy[i] == 0);

    uint8_t ct[REC_MAX];
    memcpy(ct, f->rec, rec_len);
    rc = renc_record_open(f->a, f->z, &out, &out_len, f->rec, rec_len, 2 * S, prefix_a, 0, 1);
    assert_true(rc == -RENC_E_TOO_BIG || rc == -RENC_E_INVALID);
    assert_null(out);
    /* The payload area holds the ciphertext or zeros, never the plaintext. */
    assert_true(memcmp(f->rec + 4, ct + 4, payload_len) == 0 || all_zero(f->rec + 4, payload_len));
}

/* ---- the word ------------------------------------------------------------ */

static void test_record_parse_word_rejects_compressed_bit_without_flag(void **state)
{
    (void)state;
    size_t rl = 999;
    assert_int_equal(renc_record_parse_word(RENC_RECORD_COMPRESSED | 100u, 0, S, &rl),
                     -RENC_E_BAD_RECORD);
    assert_int_equal(rl, 999); /* not written on failure */
    assert_int_equal(renc_record_parse_word(RENC_RECORD_COMPRESSED | 100u, RENC_FLAG_COMPRESSED,
                                            S, &rl), 0);
    assert_int_equal(rl, 100 + RENC_RECORD_OVERHEAD);
}

static void test_record_parse_word_rejects_length_over_s(void **state)
{
    (void)state;
    size_t rl = 0;
    assert_int_equal(renc_record_parse_word(S + 1, 0, S, &rl), -RENC_E_BAD_RECORD);
    assert_int_equal(renc_record_parse_word(S + 1, RENC_FLAG_COMPRESSED, S, &rl),
                     -RENC_E_BAD_RECORD);
    assert_int_equal(renc_record_parse_word(RENC_RECORD_LEN_MASK, 0, S, &rl), -RENC_E_BAD_RECORD);
    assert_int_equal(renc_record_parse_word(0xffffffffu, RENC_FLAG_COMPRESSED, S, &rl),
                     -RENC_E_BAD_RECORD);
    /* Exactly S raw, and 0 raw, are fine. */
    assert_int_equal(renc_record_parse_word(S, 0, S, &rl), 0);
    assert_int_equal(rl, S + RENC_RECORD_OVERHEAD);
    assert_int_equal(renc_record_parse_word(0, 0, S, &rl), 0);
    assert_int_equal(rl, RENC_RECORD_OVERHEAD);
}

/* A zstd frame is stored only when smaller than the segment, and is never
 * empty. */
static void test_record_parse_word_rejects_compressed_len_s_or_0(void **state)
{
    (void)state;
    size_t rl = 0;
    assert_int_equal(renc_record_parse_word(RENC_RECORD_COMPRESSED | S, RENC_FLAG_COMPRESSED, S,
                                            &rl), -RENC_E_BAD_RECORD);
    assert_int_equal(renc_record_parse_word(RENC_RECORD_COMPRESSED, RENC_FLAG_COMPRESSED, S, &rl),
                     -RENC_E_BAD_RECORD);
    assert_int_equal(renc_record_parse_word(RENC_RECORD_COMPRESSED | (S - 1),
                                            RENC_FLAG_COMPRESSED, S, &rl), 0);
}

/* ---- reseal -------------------------------------------------------------- */

static void test_record_reseal_round_trip(void **state)
{
    struct fx *f = *state;
    for (int compress = 0; compress <= 1; compress++) {
        struct renc_zstd *z = compress ? f->z : NULL;
        size_t len = S - 3;
        if (compress)
            fill_text(f->plain, len);
        else
            fill_random(f->plain, len, 14);
        size_t rec_len = seal(f, z, len, 6, 1);
        uint32_t word = renc_load_be32(f->rec);
        assert_int_equal(renc_record_reseal(f->a, f->b, f->rec, rec_len, prefix_a, prefix_b, 6,
                                            1), 0);
        assert_int_equal(renc_load_be32(f->rec), word); /* the same word */
        memcpy(f->copy, f->rec, rec_len);

        /* The old key and prefix no longer open it... */
        open_fails(f, f->a, z, f->rec, rec_len, prefix_a, 6, 1, -RENC_E_RECORD_AUTH);
        memcpy(f->rec, f->copy, rec_len);
        open_fails(f, f->b, z, f->rec, rec_len, prefix_a, 6, 1, -RENC_E_RECORD_AUTH);
        memcpy(f->rec, f->copy, rec_len);
        open_fails(f, f->a, z, f->rec, rec_len, prefix_b, 6, 1, -RENC_E_RECORD_AUTH);
        memcpy(f->rec, f->copy, rec_len);

        /* ...the new ones do. */
        const uint8_t *out = NULL;
        size_t out_len = 0;
        assert_int_equal(renc_record_open(f->b, z, &out, &out_len, f->rec, rec_len, S, prefix_b,
                                          6, 1), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, f->plain, len);
    }
}

static void test_record_reseal_rejects_tampered_record(void **state)
{
    struct fx *f = *state;
    size_t len = 200;
    fill_random(f->plain, len, 15);
    size_t rec_len = seal(f, NULL, len, 0, 1);
    f->rec[10] ^= 1;
    assert_int_equal(renc_record_reseal(f->a, f->b, f->rec, rec_len, prefix_a, prefix_b, 0, 1),
                     -RENC_E_RECORD_AUTH);
    assert_true(all_zero(f->rec + 4, len));
    /* Wrong index or last on the way in. */
    rec_len = seal(f, NULL, len, 0, 1);
    assert_int_equal(renc_record_reseal(f->a, f->b, f->rec, rec_len, prefix_a, prefix_b, 0, 0),
                     -RENC_E_RECORD_AUTH);
}

static void test_record_zstd_new_rejects_bad_level(void **state)
{
    (void)state;
    struct renc_zstd *z = NULL;
    assert_int_equal(renc_zstd_new(&z, 0, S), -RENC_E_INVALID);
    assert_int_equal(renc_zstd_new(&z, 100, S), -RENC_E_INVALID);
    assert_null(z);
    renc_zstd_free(NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_record_nonce_is_prefix_be32_index_last),
        T(test_record_seal_matches_independent_gcm),
        T(test_record_round_trip_empty),
        T(test_record_round_trip_one_byte),
        T(test_record_round_trip_s_minus_1),
        T(test_record_round_trip_s),
        T(test_record_round_trip_compressed),
        T(test_record_incompressible_is_stored_raw),
        T(test_record_empty_segment_with_z_is_raw),
        T(test_record_seal_in_place_matches_out_of_place),
        T(test_record_seal_refuses_small_output),
        T(test_record_open_rejects_flipped_ciphertext_bit),
        T(test_record_open_rejects_flipped_tag_bit),
        T(test_record_open_rejects_flipped_length_word),
        T(test_record_verify_checks_without_writing),
        T(test_record_open_rejects_wrong_index),
        T(test_record_open_rejects_wrong_last_flag),
        T(test_record_open_rejects_wrong_prefix_and_key),
        T(test_record_open_rejects_short_record),
        T(test_record_open_compressed_needs_z),
        T(test_record_open_rejects_frame_larger_than_segment),
        T(test_record_open_rejects_two_frames),
        T(test_record_open_rejects_garbage_frame),
        T(test_record_open_into_reads_a_readonly_record),
        T(test_record_open_into_failure_zeroes_scratch),
        T(test_record_open_refuses_segment_larger_than_z),
        T(test_record_parse_word_rejects_compressed_bit_without_flag),
        T(test_record_parse_word_rejects_length_over_s),
        T(test_record_parse_word_rejects_compressed_len_s_or_0),
        T(test_record_reseal_round_trip),
        T(test_record_reseal_rejects_tampered_record),
        T(test_record_zstd_new_rejects_bad_level),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
