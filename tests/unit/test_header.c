/* tests/unit/test_header.c — the RENC v1 header codec (FORMAT.md §2): a
 * serialize/parse round trip, and one case per rejection rule.
 *
 * Bad headers are made by serializing a good one and editing its bytes.
 * Where an edit would also break the tag, the test recomputes header_tag so
 * that only the rule under test is broken; the tag is computed here with
 * OpenSSL's HMAC directly (an oracle independent of the code under test),
 * which is why this crypto/ test includes an OpenSSL header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/header.h"
#include "crypto/secmem.h"

#define PADDING 64
#define BUF_MAX 4096

/* Fixed test inputs: K_hdr, salt, nonce prefix and two slots' wrapped DEKs
 * (the codec never unwraps them, so any bytes do). */
static const uint8_t khdr_bytes[32] = {
    0xaa, 0xf1, 0xac, 0x4e, 0x81, 0x63, 0x43, 0xf6, 0xd9, 0xf5, 0xe0, 0xbc, 0x28, 0xe6, 0x45, 0x89,
    0x42, 0x3c, 0x58, 0x3f, 0x05, 0xfe, 0x1a, 0x06, 0xfe, 0x1a, 0x52, 0x0c, 0x30, 0x68, 0xa1, 0x84,
};

static int64_t live_before;
static struct renc_key *khdr;

static int setup_group(void **state)
{
    (void)state;
    if (renc_secmem_init() != 0)
        return -1;
    return renc_key_from_bytes(&khdr, khdr_bytes, sizeof khdr_bytes) == 0 ? 0 : -1;
}

static int teardown_group(void **state)
{
    (void)state;
    renc_key_free(khdr);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    live_before = renc_alloc_outstanding();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return renc_alloc_outstanding() == live_before ? 0 : -1;
}

/* A good header: S = 4 KiB, compressed flag, context {env, kind, name}, an
 * A256KWP slot and an RSA-OAEP-256 slot, PADDING bytes of room. */
static void good_header(struct renc_header *h)
{
    memset(h, 0, sizeof *h);
    h->seg_shift = 12;
    h->plaintext_len = 0x0102030405060708ull;
    for (size_t i = 0; i < RENC_SALT_LEN; i++)
        h->salt[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < RENC_NONCE_PREFIX_LEN; i++)
        h->nonce_prefix[i] = (uint8_t)(0x10 + i);
    h->flags = RENC_FLAG_COMPRESSED;
    assert_int_equal(renc_context_set(&h->ctx, "name", "payroll.db"), 0);
    assert_int_equal(renc_context_set(&h->ctx, "env", "prod"), 0);
    assert_int_equal(renc_context_set(&h->ctx, "kind", "blob"), 0);
    uint8_t w1[40], w2[256];
    for (size_t i = 0; i < sizeof w1; i++)
        w1[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof w2; i++)
        w2[i] = (uint8_t)(i * 13 + 5);
    assert_int_equal(renc_header_add_slot(h, 1, "local:mmk/1", w1, sizeof w1), 0);
    assert_int_equal(renc_header_add_slot(h, 2, "local:rsa/7", w2, sizeof w2), 0);
    h->header_len = (uint16_t)(renc_header_min_len(h) + PADDING);
}

/* Serializes h into buf; returns header_len. */
static size_t serialize(uint8_t *buf, struct renc_header *h)
{
    assert_int_equal(renc_header_serialize(buf, BUF_MAX, h, khdr), 0);
    return h->header_len;
}

/* A good header's bytes; returns header_len. */
static size_t good_bytes(uint8_t *buf)
{
    struct renc_header h;
    memset(buf, 0, BUF_MAX);
    good_header(&h);
    size_t len = serialize(buf, &h);
    renc_header_cleanup(&h);
    return len;
}

/* Recomputes header_tag over buf[0, len - 32) with K_hdr. */
static void retag(uint8_t *buf, size_t len)
{
    unsigned mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), khdr_bytes, sizeof khdr_bytes, buf,
                         len - RENC_HEADER_TAG_LEN, buf + len - RENC_HEADER_TAG_LEN, &mac_len));
    assert_int_equal(mac_len, RENC_HEADER_TAG_LEN);
}

/* Offsets inside good_bytes(): the context starts at RENC_FIXED_LEN. */
static size_t ctx_len_of(const uint8_t *buf)
{
    return renc_load_be16(buf + 56);
}

static size_t slot_count_off(const uint8_t *buf)
{
    return RENC_FIXED_LEN + ctx_len_of(buf);
}

/* Parse must fail with `want`, leave the header empty, and be safe to clean
 * up. */
static void expect_parse_error(const uint8_t *buf, size_t len, int want)
{
    struct renc_header h;
    memset(&h, 0xa5, sizeof h); /* whatever was there before */
    assert_int_equal(renc_header_parse(&h, buf, len), want);
    assert_int_equal(h.slot_count, 0);
    assert_int_equal(h.ctx.count, 0);
    assert_null(h.ctx.entries);
    renc_header_cleanup(&h);
}

/* Parse succeeds; the header then fails or passes verify as told. */
static void expect_parse_ok_verify(const uint8_t *buf, size_t len, int want_verify)
{
    struct renc_header h;
    assert_int_equal(renc_header_parse(&h, buf, len), 0);
    assert_int_equal(renc_header_verify(buf, h.header_len, khdr), want_verify);
    renc_header_cleanup(&h);
}

/* ---- round trip ---------------------------------------------------------- */

static void test_header_round_trip_keeps_every_field(void **state)
{
    (void)state;
    struct renc_header in, out;
    uint8_t buf[BUF_MAX];
    good_header(&in);
    size_t len = serialize(buf, &in);
    assert_int_equal(len, renc_header_min_len(&in) + PADDING);

    /* The fixed fields sit where FORMAT.md §2 puts them. */
    assert_memory_equal(buf, "RENC", 4);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[5], 12);
    assert_int_equal(renc_load_be16(buf + 6), len);
    assert_true(renc_load_be64(buf + 8) == 0x0102030405060708ull);
    assert_memory_equal(buf + 16, in.salt, RENC_SALT_LEN);
    assert_memory_equal(buf + 48, in.nonce_prefix, RENC_NONCE_PREFIX_LEN);
    assert_int_equal(buf[55], RENC_FLAG_COMPRESSED);
    /* The header_tag is HMAC(K_hdr, header[0, len-32)), copied into h. */
    uint8_t mac[32];
    unsigned mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), khdr_bytes, sizeof khdr_bytes, buf, len - 32, mac,
                         &mac_len));
    assert_memory_equal(buf + len - 32, mac, 32);
    assert_memory_equal(in.header_tag, mac, 32);

    uint16_t peeked = 0;
    assert_int_equal(renc_header_peek(&peeked, buf, RENC_PREFIX_LEN), 0);
    assert_int_equal(peeked, len);

    assert_int_equal(renc_header_parse(&out, buf, len), 0);
    assert_int_equal(out.seg_shift, in.seg_shift);
    assert_int_equal(out.header_len, in.header_len);
    assert_true(out.plaintext_len == in.plaintext_len);
    assert_memory_equal(out.salt, in.salt, RENC_SALT_LEN);
    assert_memory_equal(out.nonce_prefix, in.nonce_prefix, RENC_NONCE_PREFIX_LEN);
    assert_int_equal(out.flags, in.flags);
    assert_memory_equal(out.header_tag, in.header_tag, RENC_HEADER_TAG_LEN);
    assert_int_equal(out.ctx.count, 3);
    static const char *const keys[] = {"env", "kind", "name"};
    static const char *const values[] = {"prod", "blob", "payroll.db"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(out.ctx.entries[i].key, keys[i]);
        assert_int_equal(out.ctx.entries[i].key_len, strlen(keys[i]));
        assert_string_equal(out.ctx.entries[i].value, values[i]);
        assert_int_equal(out.ctx.entries[i].value_len, strlen(values[i]));
    }
    assert_int_equal(out.slot_count, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(out.slots[i].alg, in.slots[i].alg);
        assert_string_equal(out.slots[i].ref, in.slots[i].ref);
        assert_int_equal(out.slots[i].ref_len, in.slots[i].ref_len);
        assert_int_equal(out.slots[i].wrapped_len, in.slots[i].wrapped_len);
        assert_memory_equal(out.slots[i].wrapped, in.slots[i].wrapped, in.slots[i].wrapped_len);
    }
    assert_int_equal(renc_header_min_len(&out), len - PADDING);
    assert_int_equal(renc_header_verify(buf, len, khdr), 0);

    /* Serializing the parsed header gives the same bytes. */
    uint8_t again[BUF_MAX];
    assert_int_equal(renc_header_serialize(again, sizeof again, &out, khdr), 0);
    assert_memory_equal(again, buf, len);

    renc_header_cleanup(&in);
    renc_header_cleanup(&out);
}

static void test_header_round_trip_unknown_length_no_padding(void **state)
{
    (void)state;
    struct renc_header in, out;
    uint8_t buf[BUF_MAX];
    good_header(&in);
    in.plaintext_len = RENC_PLAINTEXT_UNKNOWN;
    in.flags = 0;
    in.seg_shift = 24;
    in.header_len = (uint16_t)renc_header_min_len(&in);
    size_t len = serialize(buf, &in);
    assert_int_equal(renc_header_parse(&out, buf, len), 0);
    assert_true(out.plaintext_len == RENC_PLAINTEXT_UNKNOWN);
    assert_int_equal(renc_header_seg_count(&out), 0);
    assert_int_equal(out.seg_shift, 24);
    assert_int_equal(out.flags, 0);
    assert_int_equal(renc_header_min_len(&out), len);
    assert_int_equal(renc_header_verify(buf, len, khdr), 0);
    renc_header_cleanup(&in);
    renc_header_cleanup(&out);
}

static void test_header_seg_count_follows_plaintext_len(void **state)
{
    (void)state;
    struct renc_header h;
    memset(&h, 0, sizeof h);
    h.seg_shift = 12;
    static const struct { uint64_t len, segs; } cases[] = {
        {0, 1}, {1, 1}, {4095, 1}, {4096, 1}, {4097, 2}, {3 * 4096 + 2048, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h.plaintext_len = cases[i].len;
        assert_int_equal(renc_header_seg_count(&h), cases[i].segs);
    }
    h.plaintext_len = RENC_PLAINTEXT_UNKNOWN;
    assert_int_equal(renc_header_seg_count(&h), 0);
}

static void test_header_verify_rejects_other_key(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    uint8_t other[32];
    memcpy(other, khdr_bytes, sizeof other);
    other[31] ^= 1;
    struct renc_key *k = NULL;
    assert_int_equal(renc_key_from_bytes(&k, other, sizeof other), 0);
    assert_int_equal(renc_header_verify(buf, len, k), -RENC_E_HEADER_AUTH);
    renc_key_free(k);
}

/* ---- FORMAT.md §2 rejections, one rule each --------------------------------- */

static void test_header_parse_rejects_bad_magic(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    buf[3] = 'D'; /* "REND" */
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_MAGIC);
    uint16_t hl;
    assert_int_equal(renc_header_peek(&hl, buf, len), -RENC_E_BAD_MAGIC);
}

static void test_header_parse_rejects_bad_version(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    buf[4] = 2;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_VERSION);
    buf[4] = 0;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_VERSION);
}

static void test_header_parse_rejects_seg_shift_11(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    buf[5] = 11;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_SEG_SHIFT);
}

static void test_header_parse_rejects_seg_shift_25(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    buf[5] = 25;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_SEG_SHIFT);
}

static void test_header_parse_accepts_seg_shift_12_and_24(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    for (uint8_t s = 12; s <= 24; s += 12) {
        buf[5] = s;
        retag(buf, len);
        expect_parse_ok_verify(buf, len, 0);
    }
}

/* header_len one byte shorter than the fields plus the tag: the fields are
 * rewritten without padding, then header_len is lowered by one and the tag
 * moved up (recomputed) so that the last slot runs into the tag. */
static void test_header_parse_rejects_header_len_too_short(void **state)
{
    (void)state;
    struct renc_header h;
    uint8_t buf[BUF_MAX];
    good_header(&h);
    h.header_len = (uint16_t)renc_header_min_len(&h);
    size_t len = serialize(buf, &h);
    renc_header_cleanup(&h);
    expect_parse_ok_verify(buf, len, 0);

    size_t short_len = len - 1;
    renc_store_be16(buf + 6, (uint16_t)short_len);
    retag(buf, short_len);
    expect_parse_error(buf, short_len, -RENC_E_BAD_HEADER_LEN);
}

/* header_len below anything that could hold the fixed fields and a tag:
 * refused already by peek, from the first 16 bytes. */
static void test_header_parse_rejects_tiny_header_len(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    static const uint16_t tiny[] = {0, 16, RENC_FIXED_LEN, RENC_FIXED_LEN + RENC_HEADER_TAG_LEN};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        renc_store_be16(buf + 6, tiny[i]);
        uint16_t hl = 0xffff;
        assert_int_equal(renc_header_peek(&hl, buf, len), -RENC_E_BAD_HEADER_LEN);
        assert_int_equal(hl, 0xffff); /* not written on failure */
        expect_parse_error(buf, len, -RENC_E_BAD_HEADER_LEN);
    }
}

/* A buffer shorter than header_len says so, rather than reading past it. */
static void test_header_parse_rejects_buffer_shorter_than_header_len(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    expect_parse_error(buf, len - 1, -RENC_E_TRUNCATED);
    expect_parse_error(buf, RENC_PREFIX_LEN - 1, -RENC_E_TRUNCATED);
    expect_parse_error(buf, 3, -RENC_E_BAD_MAGIC);
    expect_parse_error(buf, 0, -RENC_E_BAD_MAGIC);
}

static void test_header_parse_rejects_nonzero_padding_byte(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t pad_start = len - RENC_HEADER_TAG_LEN - PADDING;
    /* The first, a middle and the last padding byte, one at a time. */
    size_t where[] = {pad_start, pad_start + PADDING / 2, len - RENC_HEADER_TAG_LEN - 1};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        uint8_t copy[BUF_MAX];
        memcpy(copy, buf, len);
        assert_int_equal(copy[where[i]], 0);
        copy[where[i]] = 0x01;
        retag(copy, len);
        expect_parse_error(copy, len, -RENC_E_BAD_PADDING);
    }
}

static void test_header_parse_rejects_unknown_flag_bit(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    for (unsigned bit = 1; bit < 8; bit++) {
        uint8_t copy[BUF_MAX];
        memcpy(copy, buf, len);
        copy[55] |= (uint8_t)(1u << bit);
        retag(copy, len);
        expect_parse_error(copy, len, -RENC_E_BAD_FLAGS);
    }
    /* Bit 0 alone, set or clear, is fine. */
    buf[55] = 0;
    retag(buf, len);
    expect_parse_ok_verify(buf, len, 0);
}

/* A context built by hand (not through renc_context_set, which sorts) so that
 * the serializer writes it as given. */
static void set_raw_context(struct renc_header *h, const char *const *kv, size_t n)
{
    renc_context_cleanup(&h->ctx);
    h->ctx.entries = renc_calloc(n, sizeof *h->ctx.entries);
    assert_non_null(h->ctx.entries);
    for (size_t i = 0; i < n; i++) {
        h->ctx.entries[i].key = renc_strdup(kv[2 * i]);
        h->ctx.entries[i].key_len = strlen(kv[2 * i]);
        h->ctx.entries[i].value = renc_strdup(kv[2 * i + 1]);
        h->ctx.entries[i].value_len = strlen(kv[2 * i + 1]);
    }
    h->ctx.count = n;
    h->header_len = (uint16_t)(renc_header_min_len(h) + PADDING);
}

static void expect_context_error(const char *const *kv, size_t n, int want)
{
    struct renc_header h;
    uint8_t buf[BUF_MAX];
    good_header(&h);
    set_raw_context(&h, kv, n);
    size_t len = serialize(buf, &h); /* tag is good: only the context is wrong */
    renc_header_cleanup(&h);
    expect_parse_error(buf, len, want);
}

static void test_header_parse_rejects_context_keys_out_of_order(void **state)
{
    (void)state;
    static const char *const kv[] = {"env", "prod", "name", "x", "kind", "blob"};
    expect_context_error(kv, 3, -RENC_E_BAD_CONTEXT);
}

static void test_header_parse_rejects_context_duplicate_key(void **state)
{
    (void)state;
    static const char *const kv[] = {"env", "prod", "env", "prod", "kind", "blob"};
    expect_context_error(kv, 3, -RENC_E_BAD_CONTEXT);
}

/* Bytewise order: a key sorts after its own prefix ("env" < "env2"), and
 * uppercase before lowercase. */
static void test_header_parse_accepts_bytewise_ascending_keys(void **state)
{
    (void)state;
    static const char *const kv[] = {"Zeta", "1", "env", "prod", "env2", "x", "kind", "blob"};
    struct renc_header h, out;
    uint8_t buf[BUF_MAX];
    good_header(&h);
    set_raw_context(&h, kv, 4);
    size_t len = serialize(buf, &h);
    renc_header_cleanup(&h);
    assert_int_equal(renc_header_parse(&out, buf, len), 0);
    assert_int_equal(out.ctx.count, 4);
    assert_string_equal(renc_context_get(&out.ctx, "env2"), "x");
    renc_header_cleanup(&out);

    static const char *const bad[] = {"env2", "x", "env", "prod"};
    expect_context_error(bad, 2, -RENC_E_BAD_CONTEXT);
}

static void test_header_parse_rejects_context_without_env(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    /* The first entry is klen(2)=3 || "env": rename it "enx", which still
     * sorts before "kind", so the context stays canonical but lacks env. */
    assert_int_equal(renc_load_be16(buf + RENC_FIXED_LEN), 3);
    assert_memory_equal(buf + RENC_FIXED_LEN + 2, "env", 3);
    buf[RENC_FIXED_LEN + 4] = 'x';
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_NO_ENV);
}

static void test_header_parse_rejects_empty_context(void **state)
{
    (void)state;
    /* ctx_len 0: drop the context bytes from a good header, shift the rest
     * down and keep header_len by adding padding. */
    uint8_t buf[BUF_MAX], out[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t clen = ctx_len_of(buf);
    memset(out, 0, sizeof out);
    memcpy(out, buf, RENC_FIXED_LEN);
    renc_store_be16(out + 56, 0);
    memcpy(out + RENC_FIXED_LEN, buf + RENC_FIXED_LEN + clen,
           len - RENC_HEADER_TAG_LEN - RENC_FIXED_LEN - clen);
    retag(out, len);
    expect_parse_error(out, len, -RENC_E_NO_ENV);
}

static void test_header_parse_rejects_context_not_utf8(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    /* The value of env, "prod", gets a lone continuation byte. */
    size_t v = RENC_FIXED_LEN + 2 + 3 + 2;
    assert_memory_equal(buf + v, "prod", 4);
    buf[v + 1] = 0x80;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_CONTEXT);
}

static void test_header_parse_rejects_context_entry_past_ctx_len(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    /* The last value's length claims one byte more than ctx_len holds. */
    size_t clen = ctx_len_of(buf);
    size_t last_vlen = RENC_FIXED_LEN + clen - strlen("payroll.db") - 2;
    assert_int_equal(renc_load_be16(buf + last_vlen), strlen("payroll.db"));
    renc_store_be16(buf + last_vlen, (uint16_t)(strlen("payroll.db") + 1));
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_CONTEXT);
}

static void test_header_parse_rejects_slot_count_0(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t off = slot_count_off(buf);
    assert_int_equal(buf[off], 2);
    buf[off] = 0;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_SLOT_COUNT);
}

static void test_header_parse_rejects_slot_count_9(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t off = slot_count_off(buf);
    buf[off] = 9;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_SLOT_COUNT);
}

/* Eight slots are the most, and fine. */
static void test_header_round_trip_eight_slots(void **state)
{
    (void)state;
    struct renc_header h, out;
    uint8_t buf[BUF_MAX];
    good_header(&h);
    uint8_t w[40] = {1};
    for (int i = 2; i < RENC_MAX_SLOTS; i++)
        assert_int_equal(renc_header_add_slot(&h, 4, "local:x/2", w, sizeof w), 0);
    assert_int_equal(renc_header_add_slot(&h, 4, "local:x/2", w, sizeof w),
                     -RENC_E_BAD_SLOT_COUNT);
    h.header_len = (uint16_t)renc_header_min_len(&h);
    size_t len = serialize(buf, &h);
    assert_int_equal(renc_header_parse(&out, buf, len), 0);
    assert_int_equal(out.slot_count, 8);
    assert_int_equal(out.slots[7].alg, 4);
    renc_header_cleanup(&h);
    renc_header_cleanup(&out);
}

/* The alg byte of the first slot, right after slot_count. */
static void expect_alg_error(uint8_t alg)
{
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t off = slot_count_off(buf) + 1;
    assert_int_equal(buf[off], 1);
    buf[off] = alg;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_ALG);
}

static void test_header_parse_rejects_alg_0(void **state)
{
    (void)state;
    expect_alg_error(0);
}

static void test_header_parse_rejects_alg_5(void **state)
{
    (void)state;
    expect_alg_error(5);
}

static void test_header_parse_accepts_algs_1_to_4(void **state)
{
    (void)state;
    for (uint8_t alg = 1; alg <= 4; alg++) {
        uint8_t buf[BUF_MAX];
        size_t len = good_bytes(buf);
        buf[slot_count_off(buf) + 1] = alg;
        retag(buf, len);
        struct renc_header h;
        assert_int_equal(renc_header_parse(&h, buf, len), 0);
        assert_int_equal(h.slots[0].alg, alg);
        renc_header_cleanup(&h);
    }
}

/* The unknown alg of the second slot is found as well. */
static void test_header_parse_rejects_unknown_alg_in_later_slot(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t off = slot_count_off(buf) + 1;                 /* slot 0 */
    off += 1 + 2 + renc_load_be16(buf + off + 1);         /* its ref */
    off += 2 + renc_load_be16(buf + off);                 /* its wrapped */
    assert_int_equal(buf[off], 2);
    buf[off] = 0xff;
    retag(buf, len);
    expect_parse_error(buf, len, -RENC_E_BAD_ALG);
}

static void test_header_verify_rejects_flipped_tag_bit(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    for (size_t i = len - RENC_HEADER_TAG_LEN; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            buf[i] ^= (uint8_t)(1u << bit);
            /* The tag is not a field: parse is blind to it. */
            expect_parse_ok_verify(buf, len, -RENC_E_HEADER_AUTH);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    expect_parse_ok_verify(buf, len, 0);
}

/* One flip inside each covered field that still parses: verify finds it. */
static void test_header_verify_rejects_flipped_covered_field(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    size_t sc = slot_count_off(buf);
    const size_t where[] = {
        8,                       /* plaintext_len */
        15,                      /* plaintext_len, low byte */
        16,                      /* salt */
        47,                      /* salt, last byte */
        48,                      /* nonce_prefix */
        RENC_FIXED_LEN + 2 + 3 + 2 + 1, /* env value "prod" -> "pr?d" */
        sc + 1 + 2 + 6,          /* slot 0 ref "local:mmk/1" */
        sc + 1 + 2 + 11 + 2 + 5, /* slot 0 wrapped DEK */
    };
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        buf[where[i]] ^= 0x02;
        expect_parse_ok_verify(buf, len, -RENC_E_HEADER_AUTH);
        buf[where[i]] ^= 0x02;
    }
    /* The compressed flag and seg_shift are covered too. */
    buf[55] ^= RENC_FLAG_COMPRESSED;
    expect_parse_ok_verify(buf, len, -RENC_E_HEADER_AUTH);
    buf[55] ^= RENC_FLAG_COMPRESSED;
    buf[5] = 13;
    expect_parse_ok_verify(buf, len, -RENC_E_HEADER_AUTH);
    buf[5] = 12;
    expect_parse_ok_verify(buf, len, 0);
}

/* Exhaustive: for every bit of [0, header_len - 32), flipping it makes
 * either parse or verify fail; none slips through. */
static void test_header_every_covered_bit_flip_is_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_MAX];
    size_t len = good_bytes(buf);
    for (size_t i = 0; i < len - RENC_HEADER_TAG_LEN; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            struct renc_header h;
            /* The whole (zeroed) buffer, so that a raised header_len
             * still lies inside it. */
            int rc = renc_header_parse(&h, buf, BUF_MAX);
            if (rc == 0) {
                rc = renc_header_verify(buf, h.header_len, khdr);
                renc_header_cleanup(&h);
                assert_int_equal(rc, -RENC_E_HEADER_AUTH);
            } else {
                assert_true(rc < 0);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    expect_parse_ok_verify(buf, len, 0);
}

/* ---- serializer's own checks --------------------------------------------- */

static void test_header_serialize_refuses_what_parse_would_reject(void **state)
{
    (void)state;
    struct renc_header h;
    uint8_t buf[BUF_MAX];
    good_header(&h);
    h.header_len = (uint16_t)(renc_header_min_len(&h) - 1);
    assert_int_equal(renc_header_serialize(buf, BUF_MAX, &h, khdr), -RENC_E_BAD_HEADER_LEN);
    h.header_len = (uint16_t)renc_header_min_len(&h);
    assert_int_equal(renc_header_serialize(buf, h.header_len - 1, &h, khdr), -RENC_E_TOO_BIG);
    h.seg_shift = 11;
    assert_int_equal(renc_header_serialize(buf, BUF_MAX, &h, khdr), -RENC_E_BAD_SEG_SHIFT);
    h.seg_shift = 12;
    h.flags = 0x02;
    assert_int_equal(renc_header_serialize(buf, BUF_MAX, &h, khdr), -RENC_E_BAD_FLAGS);
    h.flags = 0;
    static const char *const no_env[] = {"kind", "blob"};
    set_raw_context(&h, no_env, 1);
    assert_int_equal(renc_header_serialize(buf, BUF_MAX, &h, khdr), -RENC_E_NO_ENV);
    renc_header_cleanup(&h);
}

static void test_header_copy_is_deep(void **state)
{
    (void)state;
    struct renc_header a, b;
    good_header(&a);
    assert_int_equal(renc_header_copy(&b, &a), 0);
    renc_header_remove_slot(&a, 0);
    assert_int_equal(a.slot_count, 1);
    assert_string_equal(a.slots[0].ref, "local:rsa/7");
    renc_header_cleanup(&a);
    assert_int_equal(b.slot_count, 2);
    assert_string_equal(b.slots[0].ref, "local:mmk/1");
    assert_string_equal(renc_context_get(&b.ctx, "env"), "prod");
    renc_header_cleanup(&b);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_header_round_trip_keeps_every_field),
        T(test_header_round_trip_unknown_length_no_padding),
        T(test_header_seg_count_follows_plaintext_len),
        T(test_header_verify_rejects_other_key),
        T(test_header_parse_rejects_bad_magic),
        T(test_header_parse_rejects_bad_version),
        T(test_header_parse_rejects_seg_shift_11),
        T(test_header_parse_rejects_seg_shift_25),
        T(test_header_parse_accepts_seg_shift_12_and_24),
        T(test_header_parse_rejects_header_len_too_short),
        T(test_header_parse_rejects_tiny_header_len),
        T(test_header_parse_rejects_buffer_shorter_than_header_len),
        T(test_header_parse_rejects_nonzero_padding_byte),
        T(test_header_parse_rejects_unknown_flag_bit),
        T(test_header_parse_rejects_context_keys_out_of_order),
        T(test_header_parse_rejects_context_duplicate_key),
        T(test_header_parse_accepts_bytewise_ascending_keys),
        T(test_header_parse_rejects_context_without_env),
        T(test_header_parse_rejects_empty_context),
        T(test_header_parse_rejects_context_not_utf8),
        T(test_header_parse_rejects_context_entry_past_ctx_len),
        T(test_header_parse_rejects_slot_count_0),
        T(test_header_parse_rejects_slot_count_9),
        T(test_header_round_trip_eight_slots),
        T(test_header_parse_rejects_alg_0),
        T(test_header_parse_rejects_alg_5),
        T(test_header_parse_accepts_algs_1_to_4),
        T(test_header_parse_rejects_unknown_alg_in_later_slot),
        T(test_header_verify_rejects_flipped_tag_bit),
        T(test_header_verify_rejects_flipped_covered_field),
        T(test_header_every_covered_bit_flip_is_rejected),
        T(test_header_serialize_refuses_what_parse_would_reject),
        T(test_header_copy_is_deep),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
