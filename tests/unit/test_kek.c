/* tests/unit/test_kek.c — AES key wrap against RFC 3394 / RFC 5649, and the
 * four slot algorithms of FORMAT.md §2 on AES and RSA KEKs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/kek.h"
#include "crypto/secmem.h"
#include "tests/vectors/kat.h"

#define WRAP_FILE "aes_keywrap.txt"

/* Two RSA-2048 KEKs, generated once: key generation is the slow part. */
static struct renc_kek *rsa_a, *rsa_b;
#define RENC_TEST_OWN_GROUP
#include "tests/unit/leakcheck.h"

static int setup_group(void **state)
{
    (void)state;
    if (renc_secmem_init() != 0)
        return -1;
    if (renc_kek_generate(&rsa_a, RENC_KEK_RSA, 2048) != 0 ||
        renc_kek_generate(&rsa_b, RENC_KEK_RSA, 2048) != 0)
        return -1;
    return 0;
}

static int teardown_group(void **state)
{
    (void)state;
    renc_kek_free(rsa_a);
    renc_kek_free(rsa_b);
    return 0;
}


/* ---- raw AES key wrap: known answers ---------------------------------- */

struct wrap_case {
    struct kat kat;
    int padded;
    const uint8_t *kek, *key, *wrapped;
    size_t kek_len, key_len, wrapped_len;
};

static void wrap_case_load(struct wrap_case *c, const char *name)
{
    size_t n;
    assert_int_equal(kat_load(&c->kat, WRAP_FILE, name), 0);
    const uint8_t *padded = kat_get(&c->kat, "Padded", &n);
    assert_non_null(padded);
    assert_int_equal(n, 1);
    c->padded = padded[0];
    c->kek = kat_get(&c->kat, "KEK", &c->kek_len);
    c->key = kat_get(&c->kat, "Key", &c->key_len);
    c->wrapped = kat_get(&c->kat, "Wrapped", &c->wrapped_len);
    assert_non_null(c->kek);
    assert_non_null(c->key);
    assert_non_null(c->wrapped);
}

/* Wraps and unwraps one vector, each direction against the published bytes. */
static void check_wrap_case(const char *name)
{
    struct wrap_case c;
    uint8_t out[64];
    size_t out_len = 0;
    wrap_case_load(&c, name);

    assert_int_equal(renc_aes_keywrap(out, sizeof(out), &out_len, c.padded, c.kek, c.kek_len,
                                      c.key, c.key_len),
                     0);
    assert_int_equal(out_len, c.wrapped_len);
    assert_memory_equal(out, c.wrapped, c.wrapped_len);

    memset(out, 0xaa, sizeof(out));
    out_len = 0;
    assert_int_equal(renc_aes_keyunwrap(out, sizeof(out), &out_len, c.padded, c.kek, c.kek_len,
                                        c.wrapped, c.wrapped_len),
                     0);
    assert_int_equal(out_len, c.key_len);
    assert_memory_equal(out, c.key, c.key_len);
    kat_free(&c.kat);
}

static void test_aes_keywrap_matches_rfc3394_4_1_kek128(void **state) { (void)state; check_wrap_case("rfc3394-4.1"); }
static void test_aes_keywrap_matches_rfc3394_4_3_kek256_key128(void **state) { (void)state; check_wrap_case("rfc3394-4.3"); }
static void test_aes_keywrap_matches_rfc3394_4_5_kek256_key192(void **state) { (void)state; check_wrap_case("rfc3394-4.5"); }
static void test_aes_keywrap_matches_rfc3394_4_6_kek256_key256(void **state) { (void)state; check_wrap_case("rfc3394-4.6"); }
static void test_aes_keywrap_pad_matches_rfc5649_20_octets(void **state) { (void)state; check_wrap_case("rfc5649-20"); }
static void test_aes_keywrap_pad_matches_rfc5649_7_octets(void **state) { (void)state; check_wrap_case("rfc5649-7"); }
static void test_aes_keywrap_pad_matches_openssl_kek256_vector(void **state) { (void)state; check_wrap_case("openssl-kwp-256"); }

/* Unwrapping must fail, return -RENC_E_UNWRAP and leave out all zero. */
static void check_unwrap_fails(int padded, const uint8_t *kek, size_t kek_len,
                               const uint8_t *in, size_t in_len)
{
    uint8_t out[64];
    static const uint8_t zero[64];
    size_t out_len = 12345;
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(renc_aes_keyunwrap(out, sizeof(out), &out_len, padded, kek, kek_len, in,
                                        in_len),
                     -RENC_E_UNWRAP);
    assert_memory_equal(out, zero, sizeof(out));
    assert_int_equal(out_len, 12345);
}

static void test_aes_keyunwrap_rejects_any_flipped_bit(void **state)
{
    (void)state;
    static const char *const names[] = { "rfc3394-4.6", "rfc5649-20", "rfc5649-7",
                                         "openssl-kwp-256" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct wrap_case c;
        uint8_t bad[64];
        wrap_case_load(&c, names[i]);
        assert_true(c.wrapped_len <= sizeof(bad));
        for (size_t byte = 0; byte < c.wrapped_len; byte++) {
            memcpy(bad, c.wrapped, c.wrapped_len);
            bad[byte] ^= (uint8_t)(1u << (byte % 8));
            check_unwrap_fails(c.padded, c.kek, c.kek_len, bad, c.wrapped_len);
        }
        kat_free(&c.kat);
    }
}

static void test_aes_keyunwrap_rejects_wrong_kek(void **state)
{
    (void)state;
    /* OpenSSL's negative case for RFC 3394 4.6: the KEK's last byte changed
     * (test/recipes/30-test_evp_data/evpciph_aes_wrap.txt). */
    struct wrap_case c;
    wrap_case_load(&c, "rfc3394-4.6");
    uint8_t kek[32];
    memcpy(kek, c.kek, sizeof(kek));
    kek[31] = 0x00;
    check_unwrap_fails(0, kek, sizeof(kek), c.wrapped, c.wrapped_len);
    kat_free(&c.kat);
}

static void test_aes_keyunwrap_rejects_lengths_no_wrap_produces(void **state)
{
    (void)state;
    struct wrap_case c;
    wrap_case_load(&c, "rfc3394-4.6");
    check_unwrap_fails(0, c.kek, c.kek_len, c.wrapped, c.wrapped_len - 1);
    check_unwrap_fails(0, c.kek, c.kek_len, c.wrapped, 16); /* one key block */
    check_unwrap_fails(1, c.kek, c.kek_len, c.wrapped, 8);
    check_unwrap_fails(1, c.kek, c.kek_len, c.wrapped, 0);
    kat_free(&c.kat);
}

static void test_aes_keyunwrap_pad_fits_an_exact_sized_buffer(void **state)
{
    (void)state;
    /* OpenSSL writes all padded blocks before it knows the true length; the
     * caller's 7-byte buffer must still be enough for a 7-byte key. */
    struct wrap_case c;
    wrap_case_load(&c, "rfc5649-7");
    uint8_t out[7];
    size_t out_len = 0;
    assert_int_equal(renc_aes_keyunwrap(out, sizeof(out), &out_len, 1, c.kek, c.kek_len,
                                        c.wrapped, c.wrapped_len),
                     0);
    assert_int_equal(out_len, 7);
    assert_memory_equal(out, c.key, 7);

    uint8_t small[6];
    assert_int_equal(renc_aes_keyunwrap(small, sizeof(small), &out_len, 1, c.kek, c.kek_len,
                                        c.wrapped, c.wrapped_len),
                     -RENC_E_TOO_BIG);
    kat_free(&c.kat);
}

static void test_aes_keywrap_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t kek[32] = { 0 }, in[32] = { 0 }, out[48];
    size_t n = 0;
    /* A KEK of a size AES does not have. */
    assert_int_equal(renc_aes_keywrap(out, sizeof(out), &n, 0, kek, 20, in, 32), -RENC_E_INVALID);
    /* RFC 3394 needs whole 64-bit blocks, at least two. */
    assert_int_equal(renc_aes_keywrap(out, sizeof(out), &n, 0, kek, 32, in, 12), -RENC_E_INVALID);
    assert_int_equal(renc_aes_keywrap(out, sizeof(out), &n, 0, kek, 32, in, 8), -RENC_E_INVALID);
    assert_int_equal(renc_aes_keywrap(out, sizeof(out), &n, 1, kek, 32, in, 0), -RENC_E_INVALID);
    /* Room for the result: 32 bytes wrap to 40. */
    assert_int_equal(renc_aes_keywrap(out, 39, &n, 0, kek, 32, in, 32), -RENC_E_TOO_BIG);
    assert_int_equal(renc_aes_keywrap(out, 40, &n, 1, kek, 32, in, 32), 0);
    assert_int_equal(n, 40);
}

/* ---- KEK objects: AES --------------------------------------------------- */

static void test_kek_aes_wrap_is_40_bytes_for_alg1_and_alg4(void **state)
{
    (void)state;
    struct renc_kek *kek = NULL;
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_key_random(&dek, 32), 0);

    static const int algs[] = { RENC_ALG_AES_KWP, RENC_ALG_AES_KW };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(renc_kek_wrap(kek, algs[i], wrapped, sizeof(wrapped), &n, dek), 0);
        assert_int_equal(n, 40);
        assert_int_equal(renc_kek_unwrap(kek, algs[i], &back, wrapped, n), 0);
        assert_int_equal(back->len, 32);
        assert_memory_equal(back->bytes, dek->bytes, 32);
        renc_key_free(back);
        back = NULL;
    }
    renc_key_free(dek);
    renc_kek_free(kek);
}

/* Alg 1 with a 256-bit KEK has no RFC vector; the raw KAT above pins the
 * primitive, this pins the slot path: round trip, then every flipped byte
 * and a wrong KEK are refused. */
static void test_kek_aes256_kwp_round_trips_and_rejects_tampering(void **state)
{
    (void)state;
    struct renc_kek *kek = NULL, *other = NULL;
    struct renc_key *dek = NULL;
    uint8_t wrapped[40];
    size_t n = 0;
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_kek_generate(&other, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(kek, RENC_ALG_AES_KWP, wrapped, sizeof(wrapped), &n, dek), 0);

    for (size_t i = 0; i < sizeof(wrapped); i++) {
        struct renc_key *back = NULL;
        wrapped[i] ^= 0x01;
        assert_int_equal(renc_kek_unwrap(kek, RENC_ALG_AES_KWP, &back, wrapped, n),
                         -RENC_E_UNWRAP);
        assert_null(back);
        wrapped[i] ^= 0x01;
    }
    struct renc_key *back = NULL;
    assert_int_equal(renc_kek_unwrap(other, RENC_ALG_AES_KWP, &back, wrapped, n),
                     -RENC_E_UNWRAP);
    assert_int_equal(renc_kek_unwrap(other, RENC_ALG_AES_KW, &back, wrapped, n),
                     -RENC_E_UNWRAP);
    /* Alg 4 is RFC 3394's integrity check, not RFC 5649's: an alg 1 slot
     * does not open as alg 4 under the right KEK either. */
    assert_int_equal(renc_kek_unwrap(kek, RENC_ALG_AES_KW, &back, wrapped, n), -RENC_E_UNWRAP);
    assert_null(back);
    assert_int_equal(renc_kek_unwrap(kek, RENC_ALG_AES_KWP, &back, wrapped, n), 0);
    assert_memory_equal(back->bytes, dek->bytes, 32);

    renc_key_free(back);
    renc_key_free(dek);
    renc_kek_free(other);
    renc_kek_free(kek);
}

static void test_kek_unwrap_rejects_an_alg1_slot_holding_a_short_key(void **state)
{
    (void)state;
    /* RFC 5649 wraps 25..32 bytes to 40: a well-formed slot with a 25-byte
     * key inside must still be refused, a DEK is exactly 32 bytes. */
    uint8_t material[32], key25[25], wrapped[40];
    size_t n = 0;
    struct renc_kek *kek = NULL;
    struct renc_key *back = NULL;
    assert_int_equal(renc_random_bytes(material, sizeof(material)), 0);
    assert_int_equal(renc_random_bytes(key25, sizeof(key25)), 0);
    assert_int_equal(renc_aes_keywrap(wrapped, sizeof(wrapped), &n, 1, material, 32, key25,
                                      sizeof(key25)),
                     0);
    assert_int_equal(n, 40);
    assert_int_equal(renc_kek_from_aes(&kek, material, sizeof(material)), 0);
    assert_int_equal(renc_kek_unwrap(kek, RENC_ALG_AES_KWP, &back, wrapped, n), -RENC_E_UNWRAP);
    assert_null(back);
    assert_int_equal(renc_kek_unwrap(kek, RENC_ALG_AES_KWP, &back, wrapped, 39), -RENC_E_UNWRAP);
    renc_kek_free(kek);
}

/* A failed unwrap must not write outside the DEK it was building.  OpenSSL's
 * RFC 5649 unwrap uses (and on failure wipes) in_len bytes of its output, 8
 * more than the key: an exact-sized buffer once let it zero the first 8
 * bytes of whichever key lay next in the secure heap.  Keys allocated around
 * the unwrap must come through unchanged. */
static void test_kek_failed_unwrap_leaves_neighbouring_keys_intact(void **state)
{
    (void)state;
    enum { NKEYS = 16 };
    struct renc_kek *kek = NULL;
    struct renc_key *dek = NULL, *keys[NKEYS], *copies[NKEYS], *back = NULL;
    uint8_t wrapped[40];
    size_t n = 0;
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_key_random(&dek, 32), 0);

    static const int algs[] = { RENC_ALG_AES_KWP, RENC_ALG_AES_KW };
    for (size_t a = 0; a < 2; a++) {
        assert_int_equal(renc_kek_wrap(kek, algs[a], wrapped, sizeof(wrapped), &n, dek), 0);
        for (int i = 0; i < NKEYS; i++) {
            assert_int_equal(renc_key_random(&keys[i], 32), 0);
            assert_int_equal(renc_key_dup(&copies[i], keys[i]), 0);
        }
        for (size_t byte = 0; byte < sizeof(wrapped); byte++) {
            wrapped[byte] ^= 0x20;
            assert_int_equal(renc_kek_unwrap(kek, algs[a], &back, wrapped, n), -RENC_E_UNWRAP);
            wrapped[byte] ^= 0x20;
        }
        assert_int_equal(renc_kek_unwrap(kek, algs[a], &back, wrapped, n), 0);
        assert_memory_equal(back->bytes, dek->bytes, 32);
        renc_key_free(back);
        back = NULL;
        for (int i = 0; i < NKEYS; i++) {
            assert_memory_equal(keys[i]->bytes, copies[i]->bytes, 32);
            renc_key_free(keys[i]);
            renc_key_free(copies[i]);
        }
    }
    renc_key_free(dek);
    renc_kek_free(kek);
}

static void test_kek_from_aes_matches_its_export(void **state)
{
    (void)state;
    struct renc_kek *a = NULL, *b = NULL;
    struct renc_key *material = NULL, *dek = NULL;
    uint8_t wa[40], wb[40];
    size_t na = 0, nb = 0;
    assert_int_equal(renc_kek_generate(&a, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_kek_export(&material, a), 0);
    assert_int_equal(material->len, 32);
    assert_int_equal(renc_kek_from_aes(&b, material->bytes, material->len), 0);
    /* AES key wrap is deterministic: the same KEK gives the same bytes. */
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(a, RENC_ALG_AES_KW, wa, sizeof(wa), &na, dek), 0);
    assert_int_equal(renc_kek_wrap(b, RENC_ALG_AES_KW, wb, sizeof(wb), &nb, dek), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(wa, wb, na);
    renc_key_free(dek);
    renc_key_free(material);
    renc_kek_free(b);
    renc_kek_free(a);
}

static void test_kek_from_aes_rejects_a_key_that_is_not_32_bytes(void **state)
{
    (void)state;
    uint8_t material[32] = { 0 };
    struct renc_kek *kek = NULL;
    assert_int_equal(renc_kek_from_aes(&kek, material, 16), -RENC_E_INVALID);
    assert_int_equal(renc_kek_from_aes(&kek, material, 31), -RENC_E_INVALID);
    assert_null(kek);
}

/* ---- KEK objects: RSA --------------------------------------------------- */

static void check_rsa_round_trip(int alg)
{
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN], again[RENC_MAX_WRAPPED_LEN];
    size_t n = 0, n2 = 0;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, alg, wrapped, sizeof(wrapped), &n, dek), 0);
    assert_int_equal(n, 256);
    /* OAEP is randomised: wrapping twice gives different bytes. */
    assert_int_equal(renc_kek_wrap(rsa_a, alg, again, sizeof(again), &n2, dek), 0);
    assert_int_equal(n2, 256);
    assert_memory_not_equal(wrapped, again, n);

    assert_int_equal(renc_kek_unwrap(rsa_a, alg, &back, wrapped, n), 0);
    assert_int_equal(back->len, 32);
    assert_memory_equal(back->bytes, dek->bytes, 32);
    renc_key_free(back);
    renc_key_free(dek);
}

static void test_kek_rsa_oaep_sha256_round_trips(void **state)
{
    (void)state;
    check_rsa_round_trip(RENC_ALG_RSA_OAEP_256);
}

static void test_kek_rsa_oaep_sha1_round_trips(void **state)
{
    (void)state;
    check_rsa_round_trip(RENC_ALG_RSA_OAEP_SHA1);
}

static void test_kek_rsa_unwrap_rejects_wrong_key(void **state)
{
    (void)state;
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_RSA_OAEP_256, wrapped, sizeof(wrapped), &n,
                                   dek),
                     0);
    assert_int_equal(renc_kek_unwrap(rsa_b, RENC_ALG_RSA_OAEP_256, &back, wrapped, n),
                     -RENC_E_UNWRAP);
    assert_null(back);
    renc_key_free(dek);
}

static void test_kek_rsa_unwrap_rejects_flipped_byte(void **state)
{
    (void)state;
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_RSA_OAEP_SHA1, wrapped, sizeof(wrapped), &n,
                                   dek),
                     0);
    static const size_t at[] = { 0, 1, 100, 255 };
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        wrapped[at[i]] ^= 0x40;
        assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_RSA_OAEP_SHA1, &back, wrapped, n),
                         -RENC_E_UNWRAP);
        assert_null(back);
        wrapped[at[i]] ^= 0x40;
    }
    /* Truncated: not the modulus size. */
    assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_RSA_OAEP_SHA1, &back, wrapped, n - 1),
                     -RENC_E_UNWRAP);
    renc_key_free(dek);
}

static void test_kek_rsa_unwrap_rejects_the_other_oaep_digest(void **state)
{
    (void)state;
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_RSA_OAEP_256, wrapped, sizeof(wrapped), &n,
                                   dek),
                     0);
    assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_RSA_OAEP_SHA1, &back, wrapped, n),
                     -RENC_E_UNWRAP);
    assert_null(back);
    renc_key_free(dek);
}

static void test_kek_wrap_reports_a_too_small_buffer(void **state)
{
    (void)state;
    struct renc_kek *aes = NULL;
    struct renc_key *dek = NULL;
    uint8_t out[RENC_MAX_WRAPPED_LEN];
    size_t n = 777;
    assert_int_equal(renc_kek_generate(&aes, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(aes, RENC_ALG_AES_KWP, out, 39, &n, dek), -RENC_E_TOO_BIG);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_RSA_OAEP_256, out, 255, &n, dek),
                     -RENC_E_TOO_BIG);
    assert_int_equal(n, 777);
    renc_key_free(dek);
    renc_kek_free(aes);
}

static void test_kek_rejects_alg_that_does_not_fit_its_type(void **state)
{
    (void)state;
    struct renc_kek *aes = NULL;
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    assert_int_equal(renc_kek_generate(&aes, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_key_random(&dek, 32), 0);
    memset(wrapped, 0x5a, sizeof(wrapped));

    /* An AES KEK cannot do RSA-OAEP (alg 2, 3) ... */
    assert_int_equal(renc_kek_alg_fits(aes, RENC_ALG_RSA_OAEP_256), 0);
    assert_int_equal(renc_kek_wrap(aes, RENC_ALG_RSA_OAEP_256, wrapped, sizeof(wrapped), &n, dek),
                     -RENC_E_KEY_TYPE);
    assert_int_equal(renc_kek_unwrap(aes, RENC_ALG_RSA_OAEP_256, &back, wrapped, 256),
                     -RENC_E_KEY_TYPE);
    assert_int_equal(renc_kek_unwrap(aes, RENC_ALG_RSA_OAEP_SHA1, &back, wrapped, 256),
                     -RENC_E_KEY_TYPE);
    /* ... and an RSA KEK cannot do AES key wrap (alg 1, 4). */
    assert_int_equal(renc_kek_alg_fits(rsa_a, RENC_ALG_AES_KWP), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_AES_KW, wrapped, sizeof(wrapped), &n, dek),
                     -RENC_E_KEY_TYPE);
    assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_AES_KWP, &back, wrapped, 40),
                     -RENC_E_KEY_TYPE);
    assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_AES_KW, &back, wrapped, 40),
                     -RENC_E_KEY_TYPE);
    assert_null(back);
    /* An alg FORMAT.md does not define is a different error. */
    assert_int_equal(renc_kek_unwrap(aes, 5, &back, wrapped, 40), -RENC_E_BAD_ALG);
    assert_int_equal(renc_kek_unwrap(rsa_a, 0, &back, wrapped, 256), -RENC_E_BAD_ALG);

    renc_key_free(dek);
    renc_kek_free(aes);
}

static void test_kek_rsa_pem_export_import_round_trips(void **state)
{
    (void)state;
    struct renc_key *pem = NULL, *dek = NULL, *back = NULL;
    struct renc_kek *imported = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;

    assert_int_equal(renc_kek_export(&pem, rsa_a), 0);
    static const char head[] = "-----BEGIN PRIVATE KEY-----";
    assert_true(pem->len > sizeof(head));
    assert_memory_equal(pem->bytes, head, sizeof(head) - 1);
    assert_int_equal(renc_kek_from_pem(&imported, (const char *)pem->bytes, pem->len), 0);
    assert_int_equal(renc_kek_type(imported), RENC_KEK_RSA);
    assert_int_equal(renc_kek_bits(imported), 2048);

    /* The import is the same key: each opens what the other wrapped. */
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_kek_wrap(rsa_a, RENC_ALG_RSA_OAEP_256, wrapped, sizeof(wrapped), &n,
                                   dek),
                     0);
    assert_int_equal(renc_kek_unwrap(imported, RENC_ALG_RSA_OAEP_256, &back, wrapped, n), 0);
    assert_memory_equal(back->bytes, dek->bytes, 32);
    renc_key_free(back);
    back = NULL;
    assert_int_equal(renc_kek_wrap(imported, RENC_ALG_RSA_OAEP_SHA1, wrapped, sizeof(wrapped),
                                   &n, dek),
                     0);
    assert_int_equal(renc_kek_unwrap(rsa_a, RENC_ALG_RSA_OAEP_SHA1, &back, wrapped, n), 0);
    assert_memory_equal(back->bytes, dek->bytes, 32);

    /* Export is stable: exporting the import gives the same PEM text. */
    struct renc_key *pem2 = NULL;
    assert_int_equal(renc_kek_export(&pem2, imported), 0);
    assert_int_equal(pem2->len, pem->len);
    assert_memory_equal(pem2->bytes, pem->bytes, pem->len);

    renc_key_free(pem2);
    renc_key_free(back);
    renc_key_free(dek);
    renc_kek_free(imported);
    renc_key_free(pem);
}

static void test_kek_from_pem_rejects_garbage(void **state)
{
    (void)state;
    static const char junk[] = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"
                               "-----END PRIVATE KEY-----\n";
    struct renc_kek *kek = NULL;
    assert_int_equal(renc_kek_from_pem(&kek, junk, sizeof(junk) - 1), -RENC_E_INVALID);
    assert_int_equal(renc_kek_from_pem(&kek, "hello", 5), -RENC_E_INVALID);
    assert_int_equal(renc_kek_from_pem(&kek, "", 0), -RENC_E_INVALID);
    assert_null(kek);
}

static void test_kek_generate_rejects_unsupported_sizes_and_types(void **state)
{
    (void)state;
    struct renc_kek *kek = NULL;
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_RSA, 1024), -RENC_E_INVALID);
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_RSA, 2047), -RENC_E_INVALID);
    assert_int_equal(renc_kek_generate(&kek, RENC_KEK_RSA, 8192), -RENC_E_INVALID);
    assert_int_equal(renc_kek_generate(&kek, (enum renc_kek_type)9, 2048), -RENC_E_INVALID);
    assert_null(kek);
}

static void test_kek_reports_type_bits_and_default_alg(void **state)
{
    (void)state;
    struct renc_kek *aes = NULL;
    assert_int_equal(renc_kek_generate(&aes, RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_kek_type(aes), RENC_KEK_AES256);
    assert_int_equal(renc_kek_bits(aes), 256);
    assert_int_equal(renc_kek_default_alg(aes), RENC_ALG_AES_KWP);
    assert_int_equal(renc_kek_alg_fits(aes, RENC_ALG_AES_KWP), 1);
    assert_int_equal(renc_kek_alg_fits(aes, RENC_ALG_AES_KW), 1);

    assert_int_equal(renc_kek_type(rsa_a), RENC_KEK_RSA);
    assert_int_equal(renc_kek_bits(rsa_a), 2048);
    assert_int_equal(renc_kek_default_alg(rsa_a), RENC_ALG_RSA_OAEP_256);
    assert_int_equal(renc_kek_alg_fits(rsa_a, RENC_ALG_RSA_OAEP_256), 1);
    assert_int_equal(renc_kek_alg_fits(rsa_a, RENC_ALG_RSA_OAEP_SHA1), 1);
    renc_kek_free(aes);
}

static void test_kek_generate_reports_out_of_memory(void **state)
{
    (void)state;
#ifdef RENC_TEST_HOOKS
    /* Each of the AES KEK's two allocations (key, then kek) in turn. */
    for (uint64_t n = 1; n <= 2; n++) {
        struct renc_kek *kek = NULL;
        renc_alloc_fail_at(n);
        assert_int_equal(renc_kek_generate(&kek, RENC_KEK_AES256, 0), -RENC_E_NOMEM);
        renc_alloc_fail_at(0);
        assert_null(kek);
    }
#else
    skip();
#endif
}

static void test_kek_free_null_is_noop(void **state)
{
    (void)state;
    renc_kek_free(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_aes_keywrap_matches_rfc3394_4_1_kek128),
        T(test_aes_keywrap_matches_rfc3394_4_3_kek256_key128),
        T(test_aes_keywrap_matches_rfc3394_4_5_kek256_key192),
        T(test_aes_keywrap_matches_rfc3394_4_6_kek256_key256),
        T(test_aes_keywrap_pad_matches_rfc5649_20_octets),
        T(test_aes_keywrap_pad_matches_rfc5649_7_octets),
        T(test_aes_keywrap_pad_matches_openssl_kek256_vector),
        T(test_aes_keyunwrap_rejects_any_flipped_bit),
        T(test_aes_keyunwrap_rejects_wrong_kek),
        T(test_aes_keyunwrap_rejects_lengths_no_wrap_produces),
        T(test_aes_keyunwrap_pad_fits_an_exact_sized_buffer),
        T(test_aes_keywrap_rejects_bad_arguments),
        T(test_kek_aes_wrap_is_40_bytes_for_alg1_and_alg4),
        T(test_kek_aes256_kwp_round_trips_and_rejects_tampering),
        T(test_kek_unwrap_rejects_an_alg1_slot_holding_a_short_key),
        T(test_kek_failed_unwrap_leaves_neighbouring_keys_intact),
        T(test_kek_from_aes_matches_its_export),
        T(test_kek_from_aes_rejects_a_key_that_is_not_32_bytes),
        T(test_kek_rsa_oaep_sha256_round_trips),
        T(test_kek_rsa_oaep_sha1_round_trips),
        T(test_kek_rsa_unwrap_rejects_wrong_key),
        T(test_kek_rsa_unwrap_rejects_flipped_byte),
        T(test_kek_rsa_unwrap_rejects_the_other_oaep_digest),
        T(test_kek_wrap_reports_a_too_small_buffer),
        T(test_kek_rejects_alg_that_does_not_fit_its_type),
        T(test_kek_rsa_pem_export_import_round_trips),
        T(test_kek_from_pem_rejects_garbage),
        T(test_kek_generate_rejects_unsupported_sizes_and_types),
        T(test_kek_reports_type_bits_and_default_alg),
        T(test_kek_generate_reports_out_of_memory),
        T(test_kek_free_null_is_noop),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
