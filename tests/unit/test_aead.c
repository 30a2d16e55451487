/* tests/unit/test_aead.c — AES-256-GCM against the GCM specification's test
 * cases 13-16 (seal, open and verify), tamper rejection, in-place use and context reuse, through the
 * backend AUTO picks here (each backend on its own, and the two against each
 * other: tests/unit/test_aead_backends.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/secmem.h"
#include "tests/vectors/kat.h"

#define GCM_FILE "aes256_gcm.txt"

#include "tests/unit/leakcheck.h"

/* One GCM vector, with its key already in a context. */
struct gcm_case {
    struct kat kat;
    struct renc_aead *aead;
    const uint8_t *iv, *aad, *pt, *ct, *tag;
    size_t aad_len, len;
};

static void gcm_case_load(struct gcm_case *c, const char *name)
{
    size_t key_len, iv_len, ct_len, tag_len;
    assert_int_equal(kat_load(&c->kat, GCM_FILE, name), 0);
    const uint8_t *key = kat_get(&c->kat, "Key", &key_len);
    c->iv = kat_get(&c->kat, "IV", &iv_len);
    c->aad = kat_get(&c->kat, "AAD", &c->aad_len);
    c->pt = kat_get(&c->kat, "Plaintext", &c->len);
    c->ct = kat_get(&c->kat, "Ciphertext", &ct_len);
    c->tag = kat_get(&c->kat, "Tag", &tag_len);
    assert_non_null(key);
    assert_non_null(c->iv);
    assert_non_null(c->aad);
    assert_non_null(c->pt);
    assert_non_null(c->ct);
    assert_non_null(c->tag);
    assert_int_equal(key_len, RENC_AEAD_KEY_LEN);
    assert_int_equal(iv_len, RENC_AEAD_NONCE_LEN);
    assert_int_equal(ct_len, c->len);
    assert_int_equal(tag_len, RENC_AEAD_TAG_LEN);

    struct renc_key *k = NULL;
    assert_int_equal(renc_key_from_bytes(&k, key, key_len), 0);
    assert_int_equal(renc_aead_new(&c->aead, k, RENC_AEAD_BACKEND_AUTO), 0);
    /* The context keeps its own key schedule. */
    renc_key_free(k);
}

static void gcm_case_free(struct gcm_case *c)
{
    renc_aead_free(c->aead);
    kat_free(&c->kat);
}

/* A heap buffer of at least one byte, so an empty case still has an address
 * and ASan sees any overrun. */
static uint8_t *buf_new(size_t len, uint8_t fill)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    memset(p, fill, len ? len : 1);
    return p;
}

static void check_seal(const char *name)
{
    struct gcm_case c;
    gcm_case_load(&c, name);
    uint8_t *out = buf_new(c.len, 0xaa);
    uint8_t tag[RENC_AEAD_TAG_LEN];
    assert_int_equal(renc_aead_seal(c.aead, out, tag, c.pt, c.len, c.iv, c.aad, c.aad_len), 0);
    assert_memory_equal(out, c.ct, c.len);
    assert_memory_equal(tag, c.tag, RENC_AEAD_TAG_LEN);
    free(out);
    gcm_case_free(&c);
}

static void check_open(const char *name)
{
    struct gcm_case c;
    gcm_case_load(&c, name);
    uint8_t *out = buf_new(c.len, 0xaa);
    assert_int_equal(renc_aead_open(c.aead, out, c.ct, c.len, c.tag, c.iv, c.aad, c.aad_len), 0);
    assert_memory_equal(out, c.pt, c.len);
    free(out);
    gcm_case_free(&c);
}

static void test_aead_seal_matches_gcm_tc13(void **state) { (void)state; check_seal("gcm-tc13"); }
static void test_aead_seal_matches_gcm_tc14(void **state) { (void)state; check_seal("gcm-tc14"); }
static void test_aead_seal_matches_gcm_tc15(void **state) { (void)state; check_seal("gcm-tc15"); }
static void test_aead_seal_with_aad_matches_gcm_tc16(void **state) { (void)state; check_seal("gcm-tc16"); }
static void test_aead_open_matches_gcm_tc13(void **state) { (void)state; check_open("gcm-tc13"); }
static void test_aead_open_matches_gcm_tc14(void **state) { (void)state; check_open("gcm-tc14"); }
static void test_aead_open_matches_gcm_tc15(void **state) { (void)state; check_open("gcm-tc15"); }
static void test_aead_open_with_aad_matches_gcm_tc16(void **state) { (void)state; check_open("gcm-tc16"); }

static void test_aead_seal_and_open_work_in_place(void **state)
{
    (void)state;
    struct gcm_case c;
    gcm_case_load(&c, "gcm-tc16");
    uint8_t *buf = buf_new(c.len, 0);
    uint8_t tag[RENC_AEAD_TAG_LEN];

    memcpy(buf, c.pt, c.len);
    assert_int_equal(renc_aead_seal(c.aead, buf, tag, buf, c.len, c.iv, c.aad, c.aad_len), 0);
    assert_memory_equal(buf, c.ct, c.len);
    assert_memory_equal(tag, c.tag, RENC_AEAD_TAG_LEN);

    assert_int_equal(renc_aead_open(c.aead, buf, buf, c.len, tag, c.iv, c.aad, c.aad_len), 0);
    assert_memory_equal(buf, c.pt, c.len);
    free(buf);
    gcm_case_free(&c);
}

/* Opens tc16 with one thing altered and checks the record is refused and
 * every byte of out is zero.  which: 0 tag, 1 ciphertext, 2 aad, 3 nonce. */
/* tc16's inputs, copied, with one of them altered (which: 0 tag, 1
 * ciphertext, 2 aad, 3 nonce) by xoring mask into byte. */
struct altered {
    uint8_t *ct, *aad;
    uint8_t tag[RENC_AEAD_TAG_LEN], iv[RENC_AEAD_NONCE_LEN];
};

static void altered_tc16(struct altered *a, const struct gcm_case *c, int which, size_t byte,
                         uint8_t mask)
{
    a->ct = buf_new(c->len, 0);
    a->aad = buf_new(c->aad_len, 0);
    memcpy(a->ct, c->ct, c->len);
    memcpy(a->aad, c->aad, c->aad_len);
    memcpy(a->tag, c->tag, sizeof(a->tag));
    memcpy(a->iv, c->iv, sizeof(a->iv));
    uint8_t *target[] = { a->tag, a->ct, a->aad, a->iv };
    target[which][byte] ^= mask;
}

static void check_open_rejects_flip(int which, size_t byte, uint8_t mask)
{
    struct gcm_case c;
    gcm_case_load(&c, "gcm-tc16");
    struct altered a;
    altered_tc16(&a, &c, which, byte, mask);
    uint8_t *ct = a.ct, *aad = a.aad, *out = buf_new(c.len, 0xaa);
    assert_int_equal(renc_aead_open(c.aead, out, ct, c.len, a.tag, a.iv, aad, c.aad_len),
                     -RENC_E_RECORD_AUTH);
    uint8_t *zero = calloc(1, c.len);
    assert_non_null(zero);
    assert_memory_equal(out, zero, c.len);

    free(zero);
    free(out);
    free(aad);
    free(ct);
    gcm_case_free(&c);
}

static void test_aead_open_rejects_flipped_tag(void **state)
{
    (void)state;
    check_open_rejects_flip(0, 0, 0x01);
    check_open_rejects_flip(0, RENC_AEAD_TAG_LEN - 1, 0x80);
}

static void test_aead_open_rejects_flipped_ciphertext_bit(void **state)
{
    (void)state;
    check_open_rejects_flip(1, 0, 0x01);
    check_open_rejects_flip(1, 59, 0x80); /* the last byte of tc16 */
}

static void test_aead_open_rejects_flipped_aad_bit(void **state)
{
    (void)state;
    check_open_rejects_flip(2, 3, 0x10);
}

static void test_aead_open_rejects_other_nonce(void **state)
{
    (void)state;
    check_open_rejects_flip(3, RENC_AEAD_NONCE_LEN - 1, 0x01);
}

static void check_verify(const char *name)
{
    struct gcm_case c;
    gcm_case_load(&c, name);
    assert_int_equal(renc_aead_verify(c.aead, c.ct, c.len, c.tag, c.iv, c.aad, c.aad_len), 0);
    gcm_case_free(&c);
}

static void test_aead_verify_accepts_gcm_tc13(void **state) { (void)state; check_verify("gcm-tc13"); }
static void test_aead_verify_accepts_gcm_tc14(void **state) { (void)state; check_verify("gcm-tc14"); }
static void test_aead_verify_accepts_gcm_tc15(void **state) { (void)state; check_verify("gcm-tc15"); }
static void test_aead_verify_accepts_gcm_tc16(void **state) { (void)state; check_verify("gcm-tc16"); }

/* renc_aead_verify refuses tc16 with one thing altered (which: 0 tag, 1
 * ciphertext, 2 aad, 3 nonce) and leaves the ciphertext as it was. */
static void check_verify_rejects_flip(int which, size_t byte, uint8_t mask)
{
    struct gcm_case c;
    gcm_case_load(&c, "gcm-tc16");
    struct altered a;
    altered_tc16(&a, &c, which, byte, mask);
    uint8_t *ct = a.ct, *aad = a.aad, *was = buf_new(c.len, 0);
    memcpy(was, ct, c.len);
    assert_int_equal(renc_aead_verify(c.aead, ct, c.len, a.tag, a.iv, aad, c.aad_len),
                     -RENC_E_RECORD_AUTH);
    assert_memory_equal(ct, was, c.len);
    free(was);
    free(aad);
    free(ct);
    gcm_case_free(&c);
}

static void test_aead_verify_rejects_each_alteration(void **state)
{
    (void)state;
    check_verify_rejects_flip(0, 0, 0x01);
    check_verify_rejects_flip(0, RENC_AEAD_TAG_LEN - 1, 0x80);
    check_verify_rejects_flip(1, 0, 0x01);
    check_verify_rejects_flip(1, 59, 0x80);
    check_verify_rejects_flip(2, 3, 0x10);
    check_verify_rejects_flip(3, RENC_AEAD_NONCE_LEN - 1, 0x01);
}

/* A record longer than verify's scratch, of a length that is no multiple of
 * it nor of the block: sealed by OpenSSL, checked by each backend there is
 * here; a bit flipped on either side of a piece boundary, or in the last
 * byte, is refused; the ciphertext is never written. */
static void test_aead_verify_checks_a_large_record_by_pieces(void **state)
{
    (void)state;
    const size_t len = ((size_t)1 << 20) + 3;
    const uint8_t word[4] = { 0x00, 0x10, 0x00, 0x03 };
    uint8_t nonce[RENC_AEAD_NONCE_LEN], tag[RENC_AEAD_TAG_LEN];
    struct renc_key *key = NULL;
    struct renc_aead *sealer = NULL;
    uint8_t *pt = buf_new(len, 0), *ct = buf_new(len, 0), *was = buf_new(len, 0);
    assert_int_equal(renc_random_bytes(pt, len), 0);
    assert_int_equal(renc_random_bytes(nonce, sizeof(nonce)), 0);
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    assert_int_equal(renc_aead_new(&sealer, key, RENC_AEAD_BACKEND_OPENSSL), 0);
    assert_int_equal(renc_aead_seal(sealer, ct, tag, pt, len, nonce, word, sizeof(word)), 0);

    const enum renc_aead_backend backends[] = { RENC_AEAD_BACKEND_OPENSSL,
                                                RENC_AEAD_BACKEND_IPSEC_MB };
    const size_t flips[] = { 0, (16u << 10) - 1, 16u << 10, len - 1 };
    for (size_t b = 0; b < 2; b++) {
        struct renc_aead *a = NULL;
        int rc = renc_aead_new(&a, key, backends[b]);
        if (rc == -RENC_E_UNSUPPORTED)
            continue; /* ipsec-mb not built in, or no AES-NI here */
        assert_int_equal(rc, 0);
        memcpy(was, ct, len);
        assert_int_equal(renc_aead_verify(a, ct, len, tag, nonce, word, sizeof(word)), 0);
        assert_memory_equal(ct, was, len);
        for (size_t f = 0; f < sizeof(flips) / sizeof(flips[0]); f++) {
            ct[flips[f]] ^= 0x20;
            assert_int_equal(renc_aead_verify(a, ct, len, tag, nonce, word, sizeof(word)),
                             -RENC_E_RECORD_AUTH);
            ct[flips[f]] ^= 0x20;
        }
        /* The context still opens the record after the refusals. */
        assert_int_equal(renc_aead_verify(a, ct, len, tag, nonce, word, sizeof(word)), 0);
        renc_aead_free(a);
    }
    renc_aead_free(sealer);
    renc_key_free(key);
    free(was);
    free(ct);
    free(pt);
}

static void test_aead_open_in_place_failure_zeroes_the_buffer(void **state)
{
    (void)state;
    struct gcm_case c;
    gcm_case_load(&c, "gcm-tc15");
    uint8_t *buf = buf_new(c.len, 0);
    uint8_t tag[RENC_AEAD_TAG_LEN];
    memcpy(buf, c.ct, c.len);
    memcpy(tag, c.tag, sizeof(tag));
    tag[5] ^= 0x04;
    assert_int_equal(renc_aead_open(c.aead, buf, buf, c.len, tag, c.iv, NULL, 0),
                     -RENC_E_RECORD_AUTH);
    for (size_t i = 0; i < c.len; i++)
        assert_int_equal(buf[i], 0);
    free(buf);
    gcm_case_free(&c);
}

/* The hot path re-arms one context with only a nonce; a failed open must not
 * leave state behind that changes the next record, in either direction. */
static void test_aead_context_is_reusable_after_failed_open(void **state)
{
    (void)state;
    struct gcm_case c;
    gcm_case_load(&c, "gcm-tc16");
    uint8_t *out = buf_new(c.len, 0);
    uint8_t tag[RENC_AEAD_TAG_LEN], bad_tag[RENC_AEAD_TAG_LEN];
    memcpy(bad_tag, c.tag, sizeof(bad_tag));
    bad_tag[0] ^= 1;

    for (int round = 0; round < 3; round++) {
        assert_int_equal(renc_aead_open(c.aead, out, c.ct, c.len, bad_tag, c.iv, c.aad,
                                        c.aad_len),
                         -RENC_E_RECORD_AUTH);
        assert_int_equal(renc_aead_seal(c.aead, out, tag, c.pt, c.len, c.iv, c.aad, c.aad_len),
                         0);
        assert_memory_equal(out, c.ct, c.len);
        assert_memory_equal(tag, c.tag, sizeof(tag));
        assert_int_equal(renc_aead_open(c.aead, out, c.ct, c.len, c.tag, c.iv, c.aad,
                                        c.aad_len),
                         0);
        assert_memory_equal(out, c.pt, c.len);
    }
    free(out);
    gcm_case_free(&c);
}

static void test_aead_round_trips_a_large_record(void **state)
{
    (void)state;
    /* A 1 MiB segment plus a few bytes, as a record holds, with its 4-byte
     * word as AAD. */
    const size_t len = ((size_t)1 << 20) + 3;
    const uint8_t word[4] = { 0x00, 0x10, 0x00, 0x03 };
    uint8_t nonce[RENC_AEAD_NONCE_LEN], tag[RENC_AEAD_TAG_LEN];
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    uint8_t *pt = buf_new(len, 0), *buf = buf_new(len, 0);

    assert_int_equal(renc_random_bytes(pt, len), 0);
    assert_int_equal(renc_random_bytes(nonce, sizeof(nonce)), 0);
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    assert_int_equal(renc_aead_new(&aead, key, RENC_AEAD_BACKEND_OPENSSL), 0);

    assert_int_equal(renc_aead_seal(aead, buf, tag, pt, len, nonce, word, sizeof(word)), 0);
    assert_memory_not_equal(buf, pt, 64);
    assert_int_equal(renc_aead_open(aead, buf, buf, len, tag, nonce, word, sizeof(word)), 0);
    assert_memory_equal(buf, pt, len);

    renc_aead_free(aead);
    renc_key_free(key);
    free(buf);
    free(pt);
}

static void test_aead_new_rejects_a_key_that_is_not_32_bytes(void **state)
{
    (void)state;
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    assert_int_equal(renc_key_random(&key, 16), 0);
    assert_int_equal(renc_aead_new(&aead, key, RENC_AEAD_BACKEND_AUTO), -RENC_E_INVALID);
    assert_null(aead);
    renc_key_free(key);
}

static void test_aead_new_rejects_an_unknown_backend(void **state)
{
    (void)state;
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    assert_int_equal(renc_key_random(&key, 32), 0);
    assert_int_equal(renc_aead_new(&aead, key, (enum renc_aead_backend)99), -RENC_E_INVALID);
    assert_null(aead);
    renc_key_free(key);
}

static void test_aead_new_reports_out_of_memory(void **state)
{
    (void)state;
#ifdef RENC_TEST_HOOKS
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    assert_int_equal(renc_key_random(&key, 32), 0);
    renc_alloc_fail_at(1);
    assert_int_equal(renc_aead_new(&aead, key, RENC_AEAD_BACKEND_AUTO), -RENC_E_NOMEM);
    renc_alloc_fail_at(0);
    assert_null(aead);
    renc_key_free(key);
#else
    skip();
#endif
}

/* AUTO may choose ipsec-mb (tests/unit/test_aead_backends.c covers that);
 * forcing OpenSSL gives OpenSSL everywhere. */
static void test_aead_backend_name_is_openssl_when_forced(void **state)
{
    (void)state;
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    assert_int_equal(renc_key_random(&key, 32), 0);
    assert_int_equal(renc_aead_new(&aead, key, RENC_AEAD_BACKEND_OPENSSL), 0);
    assert_string_equal(renc_aead_backend_name(aead), "openssl");
    renc_aead_free(aead);
    renc_key_free(key);
}

static void test_aead_free_null_is_noop(void **state)
{
    (void)state;
    renc_aead_free(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_aead_seal_matches_gcm_tc13),
        T(test_aead_seal_matches_gcm_tc14),
        T(test_aead_seal_matches_gcm_tc15),
        T(test_aead_seal_with_aad_matches_gcm_tc16),
        T(test_aead_open_matches_gcm_tc13),
        T(test_aead_open_matches_gcm_tc14),
        T(test_aead_open_matches_gcm_tc15),
        T(test_aead_open_with_aad_matches_gcm_tc16),
        T(test_aead_verify_accepts_gcm_tc13),
        T(test_aead_verify_accepts_gcm_tc14),
        T(test_aead_verify_accepts_gcm_tc15),
        T(test_aead_verify_accepts_gcm_tc16),
        T(test_aead_verify_rejects_each_alteration),
        T(test_aead_verify_checks_a_large_record_by_pieces),
        T(test_aead_seal_and_open_work_in_place),
        T(test_aead_open_rejects_flipped_tag),
        T(test_aead_open_rejects_flipped_ciphertext_bit),
        T(test_aead_open_rejects_flipped_aad_bit),
        T(test_aead_open_rejects_other_nonce),
        T(test_aead_open_in_place_failure_zeroes_the_buffer),
        T(test_aead_context_is_reusable_after_failed_open),
        T(test_aead_round_trips_a_large_record),
        T(test_aead_new_rejects_a_key_that_is_not_32_bytes),
        T(test_aead_new_rejects_an_unknown_backend),
        T(test_aead_new_reports_out_of_memory),
        T(test_aead_backend_name_is_openssl_when_forced),
        T(test_aead_free_null_is_noop),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
