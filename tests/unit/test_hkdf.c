/* tests/unit/test_hkdf.c — HKDF-SHA256 against RFC 5869 and the RENC key
 * schedule of FORMAT.md §1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/hkdf.h"
#include "crypto/secmem.h"
#include "tests/vectors/kat.h"

#define HKDF_FILE "hkdf_sha256.txt"

#include "tests/unit/leakcheck.h"

static void check_extract(const char *name)
{
    struct kat k;
    size_t ikm_len, salt_len, prk_len;
    assert_int_equal(kat_load(&k, HKDF_FILE, name), 0);
    const uint8_t *ikm = kat_get(&k, "IKM", &ikm_len);
    const uint8_t *salt = kat_get(&k, "Salt", &salt_len);
    const uint8_t *want = kat_get(&k, "PRK", &prk_len);
    assert_non_null(ikm);
    assert_non_null(salt);
    assert_non_null(want);
    assert_int_equal(prk_len, 32);

    uint8_t prk[32];
    assert_int_equal(renc_hkdf_extract(prk, salt, salt_len, ikm, ikm_len), 0);
    assert_memory_equal(prk, want, 32);
    kat_free(&k);
}

static void check_expand(const char *name)
{
    struct kat k;
    size_t prk_len, info_len, okm_len;
    assert_int_equal(kat_load(&k, HKDF_FILE, name), 0);
    const uint8_t *prk = kat_get(&k, "PRK", &prk_len);
    const uint8_t *info = kat_get(&k, "Info", &info_len);
    const uint8_t *want = kat_get(&k, "OKM", &okm_len);
    assert_non_null(prk);
    assert_non_null(info);
    assert_non_null(want);

    uint8_t okm[128];
    assert_true(okm_len <= sizeof(okm));
    assert_int_equal(renc_hkdf_expand(okm, okm_len, prk, prk_len, info, info_len), 0);
    assert_memory_equal(okm, want, okm_len);
    kat_free(&k);
}

static void test_hkdf_extract_matches_rfc5869_case1(void **state)
{
    (void)state;
    check_extract("rfc5869-1");
}

static void test_hkdf_extract_matches_rfc5869_case2(void **state)
{
    (void)state;
    check_extract("rfc5869-2");
}

static void test_hkdf_extract_with_empty_salt_matches_rfc5869_case3(void **state)
{
    (void)state;
    check_extract("rfc5869-3");
}

static void test_hkdf_expand_matches_rfc5869_case1(void **state)
{
    (void)state;
    check_expand("rfc5869-1");
}

static void test_hkdf_expand_matches_rfc5869_case2(void **state)
{
    (void)state;
    check_expand("rfc5869-2");
}

static void test_hkdf_expand_with_empty_info_matches_rfc5869_case3(void **state)
{
    (void)state;
    check_expand("rfc5869-3");
}

static void test_hkdf_expand_accepts_the_maximum_length(void **state)
{
    (void)state;
    static uint8_t okm[255 * 32];
    uint8_t prk[32];
    memset(prk, 0x42, sizeof(prk));
    assert_int_equal(renc_hkdf_expand(okm, sizeof(okm), prk, sizeof(prk), NULL, 0), 0);
}

static void test_hkdf_expand_rejects_more_than_255_blocks(void **state)
{
    (void)state;
    static uint8_t okm[255 * 32 + 1];
    uint8_t prk[32];
    memset(prk, 0x42, sizeof(prk));
    assert_int_equal(renc_hkdf_expand(okm, sizeof(okm), prk, sizeof(prk), NULL, 0),
                     -RENC_E_TOO_BIG);
}

static void test_blob_keys_derive_equals_extract_then_expand(void **state)
{
    (void)state;
    static const uint8_t info_data[] = "renc v1 data";
    static const uint8_t info_hdr[] = "renc v1 header";
    uint8_t salt[32], prk[32], want_data[32], want_hdr[32];
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys;

    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_random_bytes(salt, sizeof(salt)), 0);
    assert_int_equal(renc_hkdf_extract(prk, salt, sizeof(salt), dek->bytes, dek->len), 0);
    /* The info strings carry no terminator (FORMAT.md §1). */
    assert_int_equal(renc_hkdf_expand(want_data, 32, prk, 32, info_data, sizeof(info_data) - 1),
                     0);
    assert_int_equal(renc_hkdf_expand(want_hdr, 32, prk, 32, info_hdr, sizeof(info_hdr) - 1), 0);

    assert_int_equal(renc_blob_keys_derive(&keys, dek, salt), 0);
    assert_non_null(keys.k_data);
    assert_non_null(keys.k_hdr);
    assert_int_equal(keys.k_data->len, 32);
    assert_int_equal(keys.k_hdr->len, 32);
    assert_memory_equal(keys.k_data->bytes, want_data, 32);
    assert_memory_equal(keys.k_hdr->bytes, want_hdr, 32);
    assert_memory_not_equal(keys.k_data->bytes, keys.k_hdr->bytes, 32);

    renc_blob_keys_cleanup(&keys);
    assert_null(keys.k_data);
    assert_null(keys.k_hdr);
    renc_key_free(dek);
}

static void test_blob_keys_derive_matches_independent_computation(void **state)
{
    (void)state;
    struct kat k;
    size_t dek_len, salt_len, kd_len, kh_len;
    assert_int_equal(kat_load(&k, "renc_v1_keys.txt", "renc-v1-keys-1"), 0);
    const uint8_t *dek_bytes = kat_get(&k, "DEK", &dek_len);
    const uint8_t *salt = kat_get(&k, "Salt", &salt_len);
    const uint8_t *want_data = kat_get(&k, "KData", &kd_len);
    const uint8_t *want_hdr = kat_get(&k, "KHdr", &kh_len);
    assert_non_null(dek_bytes);
    assert_non_null(salt);
    assert_non_null(want_data);
    assert_non_null(want_hdr);
    assert_int_equal(salt_len, 32);

    struct renc_key *dek = NULL;
    struct renc_blob_keys keys;
    assert_int_equal(renc_key_from_bytes(&dek, dek_bytes, dek_len), 0);
    assert_int_equal(renc_blob_keys_derive(&keys, dek, salt), 0);
    assert_memory_equal(keys.k_data->bytes, want_data, 32);
    assert_memory_equal(keys.k_hdr->bytes, want_hdr, 32);
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    kat_free(&k);
}

static void test_blob_keys_derive_differs_per_salt(void **state)
{
    (void)state;
    uint8_t salt_a[32] = { 0 }, salt_b[32] = { 0 };
    salt_b[31] = 1;
    struct renc_key *dek = NULL;
    struct renc_blob_keys a, b;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_blob_keys_derive(&a, dek, salt_a), 0);
    assert_int_equal(renc_blob_keys_derive(&b, dek, salt_b), 0);
    assert_memory_not_equal(a.k_data->bytes, b.k_data->bytes, 32);
    assert_memory_not_equal(a.k_hdr->bytes, b.k_hdr->bytes, 32);
    renc_blob_keys_cleanup(&a);
    renc_blob_keys_cleanup(&b);
    renc_key_free(dek);
}

static void test_blob_keys_derive_rejects_a_dek_that_is_not_32_bytes(void **state)
{
    (void)state;
    uint8_t salt[32] = { 0 };
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys;
    assert_int_equal(renc_key_random(&dek, 16), 0);
    assert_int_equal(renc_blob_keys_derive(&keys, dek, salt), -RENC_E_INVALID);
    assert_null(keys.k_data);
    assert_null(keys.k_hdr);
    renc_key_free(dek);
}

static void test_blob_keys_derive_leaves_keys_empty_when_out_of_memory(void **state)
{
    (void)state;
#ifdef RENC_TEST_HOOKS
    uint8_t salt[32] = { 0 };
    struct renc_key *dek = NULL;
    assert_int_equal(renc_key_random(&dek, 32), 0);
    /* Fail each of derive's two key allocations in turn. */
    for (uint64_t n = 1; n <= 2; n++) {
        struct renc_blob_keys keys;
        renc_alloc_fail_at(n);
        assert_int_equal(renc_blob_keys_derive(&keys, dek, salt), -RENC_E_NOMEM);
        renc_alloc_fail_at(0);
        assert_null(keys.k_data);
        assert_null(keys.k_hdr);
    }
    renc_key_free(dek);
#else
    skip();
#endif
}

static void test_blob_keys_cleanup_copes_with_half_filled_struct(void **state)
{
    (void)state;
    struct renc_blob_keys keys = { .k_data = renc_key_new(32), .k_hdr = NULL };
    assert_non_null(keys.k_data);
    renc_blob_keys_cleanup(&keys);
    renc_blob_keys_cleanup(&keys);
    renc_blob_keys_cleanup(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_hkdf_extract_matches_rfc5869_case1),
        T(test_hkdf_extract_matches_rfc5869_case2),
        T(test_hkdf_extract_with_empty_salt_matches_rfc5869_case3),
        T(test_hkdf_expand_matches_rfc5869_case1),
        T(test_hkdf_expand_matches_rfc5869_case2),
        T(test_hkdf_expand_with_empty_info_matches_rfc5869_case3),
        T(test_hkdf_expand_accepts_the_maximum_length),
        T(test_hkdf_expand_rejects_more_than_255_blocks),
        T(test_blob_keys_derive_equals_extract_then_expand),
        T(test_blob_keys_derive_matches_independent_computation),
        T(test_blob_keys_derive_differs_per_salt),
        T(test_blob_keys_derive_rejects_a_dek_that_is_not_32_bytes),
        T(test_blob_keys_derive_leaves_keys_empty_when_out_of_memory),
        T(test_blob_keys_cleanup_copes_with_half_filled_struct),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
