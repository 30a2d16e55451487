/* tests/unit/test_aead_backends.c — the AES-256-GCM backends of
 * crypto/aead.h (OpenSSL, ipsec-mb): each against the GCM specification's
 * test cases 13-16, and each against the other, byte for byte, over record
 * lengths from 0 to 1 MiB + 17, with and without AAD, in place and out of
 * place; tamper rejection; choosing and naming a backend.
 *
 * Cases that need ipsec-mb are skipped where it is compiled out or the CPU
 * cannot run it; they decide that before allocating anything, so a skip
 * never leaves an allocation behind for the leak check. */
#include <pthread.h>
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
#define MAX_RECORD (((size_t)1 << 20) + 17)

#define RENC_TEST_OWN_GROUP
#include "tests/unit/leakcheck.h"
static int have_ipsec_mb; /* renc_aead_new accepts RENC_AEAD_BACKEND_IPSEC_MB */

static int setup_group(void **state)
{
    (void)state;
    if (renc_secmem_init() != 0)
        return -1;
    struct renc_key *key = NULL;
    struct renc_aead *aead = NULL;
    if (renc_key_random(&key, RENC_AEAD_KEY_LEN) != 0)
        return -1;
    int rc = renc_aead_new(&aead, key, RENC_AEAD_BACKEND_IPSEC_MB);
    renc_aead_free(aead);
    renc_key_free(key);
    if (rc != 0 && rc != -RENC_E_UNSUPPORTED)
        return -1;
    have_ipsec_mb = rc == 0;
    if (!have_ipsec_mb)
        print_message("ipsec-mb unavailable here: its cases are skipped\n");
    return 0;
}


static void need_ipsec_mb(void)
{
    if (!have_ipsec_mb)
        skip();
}

/* Reproducible test data: splitmix64 from a fixed seed. */
static uint64_t rng_state = 0x5eed0f5eedULL;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
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

static void assert_all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            fail_msg("byte %zu of %zu is %#x after a failed open", i, len, p[i]);
}

static struct renc_aead *aead_new(const struct renc_key *key, enum renc_aead_backend backend)
{
    struct renc_aead *aead = NULL;
    assert_int_equal(renc_aead_new(&aead, key, backend), 0);
    assert_non_null(aead);
    return aead;
}

/* ---- choosing and naming a backend ---- */

static void test_aead_backend_parse_knows_the_three_names(void **state)
{
    (void)state;
    enum renc_aead_backend b = (enum renc_aead_backend)77;
    assert_int_equal(renc_aead_backend_parse("auto", &b), 0);
    assert_int_equal(b, RENC_AEAD_BACKEND_AUTO);
    assert_int_equal(renc_aead_backend_parse("openssl", &b), 0);
    assert_int_equal(b, RENC_AEAD_BACKEND_OPENSSL);
    assert_int_equal(renc_aead_backend_parse("ipsec-mb", &b), 0);
    assert_int_equal(b, RENC_AEAD_BACKEND_IPSEC_MB);
}

static void test_aead_backend_parse_rejects_other_names(void **state)
{
    (void)state;
    static const char *const bad[] = { "", "OpenSSL", "ipsec_mb", "ipsecmb", "ipsec-mb ",
                                       " auto", "aut", "autox", "none" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum renc_aead_backend b = (enum renc_aead_backend)77;
        assert_int_equal(renc_aead_backend_parse(bad[i], &b), -RENC_E_INVALID);
        assert_int_equal(b, 77); /* untouched on failure */
    }
    enum renc_aead_backend b;
    assert_int_equal(renc_aead_backend_parse(NULL, &b), -RENC_E_INVALID);
    assert_int_equal(renc_aead_backend_parse("auto", NULL), -RENC_E_INVALID);
}

static void test_aead_backend_name_is_openssl_when_forced(void **state)
{
    (void)state;
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *aead = aead_new(key, RENC_AEAD_BACKEND_OPENSSL);
    assert_string_equal(renc_aead_backend_name(aead), "openssl");
    renc_aead_free(aead);
    renc_key_free(key);
    assert_string_equal(renc_aead_backend_name(NULL), "none");
}

static void test_aead_backend_name_is_ipsec_mb_when_forced(void **state)
{
    (void)state;
    need_ipsec_mb();
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *aead = aead_new(key, RENC_AEAD_BACKEND_IPSEC_MB);
    assert_string_equal(renc_aead_backend_name(aead), "ipsec-mb");
    renc_aead_free(aead);
    renc_key_free(key);
}

/* AUTO is ipsec-mb exactly where ipsec-mb can be forced. */
static void test_aead_auto_prefers_ipsec_mb_where_available(void **state)
{
    (void)state;
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *aead = aead_new(key, RENC_AEAD_BACKEND_AUTO);
    assert_string_equal(renc_aead_backend_name(aead), have_ipsec_mb ? "ipsec-mb" : "openssl");
    renc_aead_free(aead);
    renc_key_free(key);
}

static void test_aead_forced_ipsec_mb_is_unsupported_where_unavailable(void **state)
{
    (void)state;
    if (have_ipsec_mb)
        skip();
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *aead = (struct renc_aead *)&key; /* any non-NULL sentinel */
    assert_int_equal(renc_aead_new(&aead, key, RENC_AEAD_BACKEND_IPSEC_MB),
                     -RENC_E_UNSUPPORTED);
    assert_ptr_equal(aead, (struct renc_aead *)&key); /* untouched */
    renc_key_free(key);
}

/* Every allocation renc_aead_new makes can fail; each failure is reported
 * as -RENC_E_NOMEM, leaves *out alone and leaks nothing. */
static void check_new_survives_allocation_failures(enum renc_aead_backend backend)
{
#ifdef RENC_TEST_HOOKS
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    int64_t live = renc_alloc_outstanding();
    for (uint64_t n = 1;; n++) {
        struct renc_aead *aead = NULL;
        renc_alloc_fail_at(n);
        int rc = renc_aead_new(&aead, key, backend);
        renc_alloc_fail_at(0);
        if (rc == 0) {
            assert_true(n > 1); /* at least the object itself is allocated */
            renc_aead_free(aead);
            assert_int_equal(renc_alloc_outstanding(), live);
            break;
        }
        assert_int_equal(rc, -RENC_E_NOMEM);
        assert_null(aead);
        assert_int_equal(renc_alloc_outstanding(), live);
        assert_true(n < 64);
    }
    renc_key_free(key);
#else
    (void)backend;
    skip();
#endif
}

static void test_aead_openssl_new_survives_allocation_failures(void **state)
{
    (void)state;
    check_new_survives_allocation_failures(RENC_AEAD_BACKEND_OPENSSL);
}

static void test_aead_ipsec_mb_new_survives_allocation_failures(void **state)
{
    (void)state;
    need_ipsec_mb();
    check_new_survives_allocation_failures(RENC_AEAD_BACKEND_IPSEC_MB);
}

/* ---- known answers, on every backend ---- */

static void check_vector(enum renc_aead_backend backend, const char *name)
{
    struct kat kat;
    size_t key_len, iv_len, aad_len, len, ct_len, tag_len;
    assert_int_equal(kat_load(&kat, GCM_FILE, name), 0);
    const uint8_t *k = kat_get(&kat, "Key", &key_len);
    const uint8_t *iv = kat_get(&kat, "IV", &iv_len);
    const uint8_t *aad = kat_get(&kat, "AAD", &aad_len);
    const uint8_t *pt = kat_get(&kat, "Plaintext", &len);
    const uint8_t *ct = kat_get(&kat, "Ciphertext", &ct_len);
    const uint8_t *want_tag = kat_get(&kat, "Tag", &tag_len);
    assert_true(k && iv && aad && pt && ct && want_tag);
    assert_int_equal(key_len, RENC_AEAD_KEY_LEN);
    assert_int_equal(iv_len, RENC_AEAD_NONCE_LEN);
    assert_int_equal(ct_len, len);
    assert_int_equal(tag_len, RENC_AEAD_TAG_LEN);

    struct renc_key *key = NULL;
    assert_int_equal(renc_key_from_bytes(&key, k, key_len), 0);
    struct renc_aead *aead = aead_new(key, backend);
    renc_key_free(key); /* the context keeps its own schedule */

    uint8_t tag[RENC_AEAD_TAG_LEN];
    uint8_t *out = buf_new(len, 0xaa), *buf = buf_new(len, 0);

    /* Out of place, both ways. */
    assert_int_equal(renc_aead_seal(aead, out, tag, pt, len, iv, aad, aad_len), 0);
    assert_memory_equal(out, ct, len);
    assert_memory_equal(tag, want_tag, RENC_AEAD_TAG_LEN);
    memset(out, 0xaa, len);
    assert_int_equal(renc_aead_open(aead, out, ct, len, want_tag, iv, aad, aad_len), 0);
    assert_memory_equal(out, pt, len);

    /* In place, both ways. */
    memcpy(buf, pt, len);
    assert_int_equal(renc_aead_seal(aead, buf, tag, buf, len, iv, aad, aad_len), 0);
    assert_memory_equal(buf, ct, len);
    assert_memory_equal(tag, want_tag, RENC_AEAD_TAG_LEN);
    assert_int_equal(renc_aead_open(aead, buf, buf, len, want_tag, iv, aad, aad_len), 0);
    assert_memory_equal(buf, pt, len);

    free(buf);
    free(out);
    renc_aead_free(aead);
    kat_free(&kat);
}

static void check_all_vectors(enum renc_aead_backend backend)
{
    check_vector(backend, "gcm-tc13"); /* empty plaintext, no AAD */
    check_vector(backend, "gcm-tc14"); /* one block */
    check_vector(backend, "gcm-tc15"); /* four blocks */
    check_vector(backend, "gcm-tc16"); /* 60 bytes, 20 bytes of AAD */
}

static void test_aead_openssl_matches_gcm_vectors(void **state)
{
    (void)state;
    check_all_vectors(RENC_AEAD_BACKEND_OPENSSL);
}

static void test_aead_ipsec_mb_matches_gcm_vectors(void **state)
{
    (void)state;
    need_ipsec_mb();
    check_all_vectors(RENC_AEAD_BACKEND_IPSEC_MB);
}

static void test_aead_auto_matches_gcm_vectors(void **state)
{
    (void)state;
    check_all_vectors(RENC_AEAD_BACKEND_AUTO);
}

/* ---- the two backends against each other ---- */

/* One key under both backends, and scratch buffers for the largest record.
 * The OpenSSL side works on buffers as malloc returns them; the ipsec-mb
 * side on buffers one byte off, so neither may assume aligned data. */
struct pair {
    struct renc_key *key;
    struct renc_aead *ossl, *imb;
    uint8_t *pt, *ct_ossl, *ct_imb_base, *ct_imb, *out, *out_base_imb, *out_imb;
};

static void pair_init(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(renc_key_random(&p->key, RENC_AEAD_KEY_LEN), 0);
    p->ossl = aead_new(p->key, RENC_AEAD_BACKEND_OPENSSL);
    p->imb = aead_new(p->key, RENC_AEAD_BACKEND_IPSEC_MB);
    p->pt = buf_new(MAX_RECORD, 0);
    p->ct_ossl = buf_new(MAX_RECORD, 0);
    p->ct_imb_base = buf_new(MAX_RECORD + 1, 0);
    p->ct_imb = p->ct_imb_base + 1;
    p->out = buf_new(MAX_RECORD, 0);
    p->out_base_imb = buf_new(MAX_RECORD + 1, 0);
    p->out_imb = p->out_base_imb + 1;
}

static void pair_cleanup(struct pair *p)
{
    free(p->out_base_imb);
    free(p->out);
    free(p->ct_imb_base);
    free(p->ct_ossl);
    free(p->pt);
    renc_aead_free(p->imb);
    renc_aead_free(p->ossl);
    renc_key_free(p->key);
}

/* Seals len random bytes with each backend, out of place and in place, and
 * checks all four records are the same bytes; then opens each backend's
 * record with the other, out of place and in place. */
static void check_cross(struct pair *p, size_t len, const uint8_t *aad, size_t aad_len)
{
    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    uint8_t tag_ossl[RENC_AEAD_TAG_LEN], tag_imb[RENC_AEAD_TAG_LEN], tag[RENC_AEAD_TAG_LEN];
    assert_true(len <= MAX_RECORD);
    rng_fill(nonce, sizeof(nonce));
    rng_fill(p->pt, len);

    /* Out of place. */
    assert_int_equal(renc_aead_seal(p->ossl, p->ct_ossl, tag_ossl, p->pt, len, nonce, aad,
                                    aad_len),
                     0);
    assert_int_equal(renc_aead_seal(p->imb, p->ct_imb, tag_imb, p->pt, len, nonce, aad,
                                    aad_len),
                     0);
    assert_memory_equal(p->ct_imb, p->ct_ossl, len);
    assert_memory_equal(tag_imb, tag_ossl, RENC_AEAD_TAG_LEN);

    /* In place, each backend. */
    memcpy(p->out, p->pt, len);
    assert_int_equal(renc_aead_seal(p->ossl, p->out, tag, p->out, len, nonce, aad, aad_len), 0);
    assert_memory_equal(p->out, p->ct_ossl, len);
    assert_memory_equal(tag, tag_ossl, RENC_AEAD_TAG_LEN);
    memcpy(p->out_imb, p->pt, len);
    assert_int_equal(renc_aead_seal(p->imb, p->out_imb, tag, p->out_imb, len, nonce, aad,
                                    aad_len),
                     0);
    assert_memory_equal(p->out_imb, p->ct_ossl, len);
    assert_memory_equal(tag, tag_ossl, RENC_AEAD_TAG_LEN);

    /* OpenSSL's record opened by ipsec-mb, out of place then in place. */
    memset(p->out_imb, 0xaa, len);
    assert_int_equal(renc_aead_open(p->imb, p->out_imb, p->ct_ossl, len, tag_ossl, nonce, aad,
                                    aad_len),
                     0);
    assert_memory_equal(p->out_imb, p->pt, len);
    memcpy(p->out_imb, p->ct_ossl, len);
    assert_int_equal(renc_aead_open(p->imb, p->out_imb, p->out_imb, len, tag_ossl, nonce, aad,
                                    aad_len),
                     0);
    assert_memory_equal(p->out_imb, p->pt, len);

    /* ipsec-mb's record opened by OpenSSL, out of place then in place. */
    memset(p->out, 0xaa, len);
    assert_int_equal(renc_aead_open(p->ossl, p->out, p->ct_imb, len, tag_imb, nonce, aad,
                                    aad_len),
                     0);
    assert_memory_equal(p->out, p->pt, len);
    memcpy(p->out, p->ct_imb, len);
    assert_int_equal(renc_aead_open(p->ossl, p->out, p->out, len, tag_imb, nonce, aad, aad_len),
                     0);
    assert_memory_equal(p->out, p->pt, len);
}

/* No AAD (NULL), the 4-byte record word RENC uses, an odd length, and more
 * than a few GHASH blocks. */
static void check_cross_all_aad(struct pair *p, size_t len)
{
    uint8_t aad[77];
    rng_fill(aad, sizeof(aad));
    check_cross(p, len, NULL, 0);
    check_cross(p, len, aad, 4);
    check_cross(p, len, aad, 13);
    check_cross(p, len, aad, sizeof(aad));
}

static void test_aead_backends_agree_on_edge_lengths(void **state)
{
    (void)state;
    need_ipsec_mb();
    /* Around every block and vector width the implementations switch on
     * (16, 64, 128, 256 bytes; 4 KiB), and the RENC segment sizes. */
    static const size_t lens[] = {
        0,      1,      15,     16,     17,     31,     32,     33,     47,
        48,     63,     64,     65,     127,    128,    129,    191,    255,
        256,    257,    383,    511,    512,    513,    767,    1023,   1024,
        1025,   4095,   4096,   4097,   65535,  65536,  65537,  (1u << 20) - 1,
        1u << 20, (1u << 20) + 1, (1u << 20) + 15, (1u << 20) + 16, MAX_RECORD,
    };
    struct pair p;
    pair_init(&p);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        check_cross_all_aad(&p, lens[i]);
    pair_cleanup(&p);
}

static void test_aead_backends_agree_on_random_lengths(void **state)
{
    (void)state;
    need_ipsec_mb();
    struct pair p;
    pair_init(&p);
    for (int i = 0; i < 48; i++) {
        /* Half short (where the tails are), half anywhere up to the limit;
         * most are not multiples of 16. */
        size_t len = i % 2 ? (size_t)(rng_next() % 2048) : (size_t)(rng_next() % (MAX_RECORD + 1));
        check_cross_all_aad(&p, len);
    }
    pair_cleanup(&p);
}

/* Several live keys, used in turn: each object's schedule is its own even
 * though the ipsec-mb objects share one library manager. */
static void test_aead_backends_agree_with_several_live_keys(void **state)
{
    (void)state;
    need_ipsec_mb();
    enum { KEYS = 4 };
    struct pair p[KEYS];
    for (int k = 0; k < KEYS; k++)
        pair_init(&p[k]);
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < KEYS; k++)
            check_cross(&p[k], 1000 + (size_t)(round * KEYS + k) * 97, p[k].key->bytes, 4);
    /* Different keys, same input: different records. */
    uint8_t nonce[RENC_AEAD_NONCE_LEN] = { 0 }, t0[RENC_AEAD_TAG_LEN], t1[RENC_AEAD_TAG_LEN];
    assert_int_equal(renc_aead_seal(p[0].imb, p[0].out, t0, NULL, 0, nonce, NULL, 0), 0);
    assert_int_equal(renc_aead_seal(p[1].imb, p[1].out, t1, NULL, 0, nonce, NULL, 0), 0);
    assert_memory_not_equal(t0, t1, RENC_AEAD_TAG_LEN);
    for (int k = 0; k < KEYS; k++)
        pair_cleanup(&p[k]);
}

/* ---- tampering ---- */

/* Seals a record with `sealer`, alters one thing, and checks `opener`
 * refuses it and leaves every byte of out zero, out of place and in place.
 * which: 0 tag, 1 ciphertext, 2 aad, 3 nonce. */
static void check_rejects(struct renc_aead *sealer, struct renc_aead *opener, size_t len,
                          int which)
{
    uint8_t nonce[RENC_AEAD_NONCE_LEN], tag[RENC_AEAD_TAG_LEN], aad[4];
    uint8_t *pt = buf_new(len, 0), *ct = buf_new(len, 0), *out = buf_new(len, 0xaa);
    rng_fill(pt, len);
    rng_fill(nonce, sizeof(nonce));
    rng_fill(aad, sizeof(aad));
    assert_int_equal(renc_aead_seal(sealer, ct, tag, pt, len, nonce, aad, sizeof(aad)), 0);

    size_t at = (size_t)rng_next();
    uint8_t mask = (uint8_t)(1u << (rng_next() % 8));
    switch (which) {
    case 0: tag[at % sizeof(tag)] ^= mask; break;
    case 1: ct[at % len] ^= mask; break;
    case 2: aad[at % sizeof(aad)] ^= mask; break;
    default: nonce[at % sizeof(nonce)] ^= mask; break;
    }

    assert_int_equal(renc_aead_open(opener, out, ct, len, tag, nonce, aad, sizeof(aad)),
                     -RENC_E_RECORD_AUTH);
    assert_all_zero(out, len);
    assert_int_equal(renc_aead_open(opener, ct, ct, len, tag, nonce, aad, sizeof(aad)),
                     -RENC_E_RECORD_AUTH);
    assert_all_zero(ct, len);

    free(out);
    free(ct);
    free(pt);
}

static void check_rejects_everything(int which)
{
    static const size_t lens[] = { 1, 16, 17, 4096 + 5, MAX_RECORD };
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *ossl = aead_new(key, RENC_AEAD_BACKEND_OPENSSL);
    struct renc_aead *imb = aead_new(key, RENC_AEAD_BACKEND_IPSEC_MB);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        check_rejects(ossl, ossl, lens[i], which);
        check_rejects(ossl, imb, lens[i], which);
        check_rejects(imb, imb, lens[i], which);
        check_rejects(imb, ossl, lens[i], which);
    }
    renc_aead_free(imb);
    renc_aead_free(ossl);
    renc_key_free(key);
}

static void test_aead_backends_reject_a_flipped_tag_and_zero_out(void **state)
{
    (void)state;
    need_ipsec_mb();
    check_rejects_everything(0);
}

static void test_aead_backends_reject_a_flipped_ciphertext_bit_and_zero_out(void **state)
{
    (void)state;
    need_ipsec_mb();
    check_rejects_everything(1);
}

static void test_aead_backends_reject_flipped_aad_and_other_nonce(void **state)
{
    (void)state;
    need_ipsec_mb();
    check_rejects_everything(2);
    check_rejects_everything(3);
}

/* A wrong tag on an empty record: nothing to zero, still refused. */
static void test_aead_ipsec_mb_rejects_a_flipped_tag_on_an_empty_record(void **state)
{
    (void)state;
    need_ipsec_mb();
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *imb = aead_new(key, RENC_AEAD_BACKEND_IPSEC_MB);
    uint8_t nonce[RENC_AEAD_NONCE_LEN] = { 1 }, tag[RENC_AEAD_TAG_LEN];
    assert_int_equal(renc_aead_seal(imb, NULL, tag, NULL, 0, nonce, NULL, 0), 0);
    assert_int_equal(renc_aead_open(imb, NULL, NULL, 0, tag, nonce, NULL, 0), 0);
    tag[15] ^= 0x80;
    assert_int_equal(renc_aead_open(imb, NULL, NULL, 0, tag, nonce, NULL, 0),
                     -RENC_E_RECORD_AUTH);
    renc_aead_free(imb);
    renc_key_free(key);
}

/* ---- limits ---- */

/* GCM allows at most 2^36 - 32 bytes under one nonce; both backends refuse
 * more before touching a byte (the buffers here are far shorter). */
static void check_refuses_overlong(enum renc_aead_backend backend)
{
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_random(&key, RENC_AEAD_KEY_LEN), 0);
    struct renc_aead *aead = aead_new(key, backend);
    uint8_t buf[16] = { 0 }, nonce[RENC_AEAD_NONCE_LEN] = { 0 }, tag[RENC_AEAD_TAG_LEN];
    const size_t too_long = ((size_t)1 << 36) - 31;
    assert_int_equal(renc_aead_seal(aead, buf, tag, buf, too_long, nonce, NULL, 0),
                     -RENC_E_TOO_BIG);
    assert_int_equal(renc_aead_open(aead, buf, buf, too_long, tag, nonce, NULL, 0),
                     -RENC_E_TOO_BIG);
    renc_aead_free(aead);
    renc_key_free(key);
}

static void test_aead_backends_refuse_a_record_longer_than_gcm_allows(void **state)
{
    (void)state;
    if (sizeof(size_t) < 8)
        skip();
    check_refuses_overlong(RENC_AEAD_BACKEND_OPENSSL);
    if (have_ipsec_mb)
        check_refuses_overlong(RENC_AEAD_BACKEND_IPSEC_MB);
}

/* ---- threads ---- */

/* Objects on several threads at once (one object per thread, as the API
 * requires) all go through the one shared ipsec-mb manager.  Threads report
 * a count of mismatches; cmocka's asserts stay on the main thread. */
struct worker {
    pthread_t thread;
    uint64_t seed;
    int errors;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    enum { LEN = 70001 };
    struct renc_key *key = NULL;
    struct renc_aead *ossl = NULL, *imb = NULL;
    uint8_t *pt = malloc(LEN), *a = malloc(LEN), *b = malloc(LEN);
    uint8_t nonce[RENC_AEAD_NONCE_LEN] = { 0 }, ta[RENC_AEAD_TAG_LEN], tb[RENC_AEAD_TAG_LEN];
    if (!pt || !a || !b || renc_key_random(&key, RENC_AEAD_KEY_LEN) ||
        renc_aead_new(&ossl, key, RENC_AEAD_BACKEND_OPENSSL) ||
        renc_aead_new(&imb, key, RENC_AEAD_BACKEND_IPSEC_MB)) {
        w->errors = -1;
        goto out;
    }
    for (size_t i = 0; i < LEN; i++)
        pt[i] = (uint8_t)(w->seed + i * 7);
    for (uint64_t r = 0; r < 64; r++) {
        size_t len = (size_t)((w->seed * 31 + r * 977) % LEN);
        memcpy(nonce, &r, sizeof(r));
        if (renc_aead_seal(ossl, a, ta, pt, len, nonce, nonce, 4) ||
            renc_aead_seal(imb, b, tb, pt, len, nonce, nonce, 4) || memcmp(a, b, len) ||
            memcmp(ta, tb, sizeof(ta)) ||
            renc_aead_open(imb, b, b, len, ta, nonce, nonce, 4) || memcmp(b, pt, len))
            w->errors++;
    }
out:
    renc_aead_free(imb);
    renc_aead_free(ossl);
    renc_key_free(key);
    free(b);
    free(a);
    free(pt);
    return NULL;
}

static void test_aead_ipsec_mb_objects_work_on_several_threads(void **state)
{
    (void)state;
    need_ipsec_mb();
    enum { THREADS = 4 };
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].seed = (uint64_t)i + 1;
        w[i].errors = 0;
        assert_int_equal(pthread_create(&w[i].thread, NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        assert_int_equal(w[i].errors, 0);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_aead_backend_parse_knows_the_three_names),
        T(test_aead_backend_parse_rejects_other_names),
        T(test_aead_backend_name_is_openssl_when_forced),
        T(test_aead_backend_name_is_ipsec_mb_when_forced),
        T(test_aead_auto_prefers_ipsec_mb_where_available),
        T(test_aead_forced_ipsec_mb_is_unsupported_where_unavailable),
        T(test_aead_openssl_new_survives_allocation_failures),
        T(test_aead_ipsec_mb_new_survives_allocation_failures),
        T(test_aead_openssl_matches_gcm_vectors),
        T(test_aead_ipsec_mb_matches_gcm_vectors),
        T(test_aead_auto_matches_gcm_vectors),
        T(test_aead_backends_agree_on_edge_lengths),
        T(test_aead_backends_agree_on_random_lengths),
        T(test_aead_backends_agree_with_several_live_keys),
        T(test_aead_backends_reject_a_flipped_tag_and_zero_out),
        T(test_aead_backends_reject_a_flipped_ciphertext_bit_and_zero_out),
        T(test_aead_backends_reject_flipped_aad_and_other_nonce),
        T(test_aead_ipsec_mb_rejects_a_flipped_tag_on_an_empty_record),
        T(test_aead_backends_refuse_a_record_longer_than_gcm_allows),
        T(test_aead_ipsec_mb_objects_work_on_several_threads),
    };
#undef T
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
