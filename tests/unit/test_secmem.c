/* tests/unit/test_secmem.c — key objects, wiping, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/secmem.h"

#include "tests/unit/leakcheck.h"

static void test_secmem_init_disables_core_dumps(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(rl.rlim_max, 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}

static void test_secmem_init_twice_is_harmless(void **state)
{
    (void)state;
    assert_int_equal(renc_secmem_init(), 0);
    assert_int_equal(renc_secmem_init(), 0);
}

static void test_key_new_is_zeroed(void **state)
{
    (void)state;
    static const uint8_t zero[64];
    struct renc_key *key = renc_key_new(sizeof(zero));
    assert_non_null(key);
    assert_non_null(key->bytes);
    assert_int_equal(key->len, sizeof(zero));
    assert_memory_equal(key->bytes, zero, sizeof(zero));
    renc_key_free(key);
}

static void test_key_random_keys_differ(void **state)
{
    (void)state;
    struct renc_key *a = NULL, *b = NULL;
    assert_int_equal(renc_key_random(&a, 32), 0);
    assert_int_equal(renc_key_random(&b, 32), 0);
    assert_int_equal(a->len, 32);
    assert_int_equal(b->len, 32);
    /* Two 256-bit draws collide with probability 2^-256. */
    assert_memory_not_equal(a->bytes, b->bytes, 32);
    static const uint8_t zero[32];
    assert_memory_not_equal(a->bytes, zero, 32);
    renc_key_free(a);
    renc_key_free(b);
}

static void test_key_random_rejects_zero_length(void **state)
{
    (void)state;
    static struct renc_key sentinel;
    struct renc_key *out = &sentinel;
    assert_int_equal(renc_key_random(&out, 0), -RENC_E_INVALID);
    assert_ptr_equal(out, &sentinel);
}

static void test_key_random_leaves_out_unset_when_out_of_memory(void **state)
{
    (void)state;
#ifdef RENC_TEST_HOOKS
    static struct renc_key sentinel;
    struct renc_key *out = &sentinel;
    renc_alloc_fail_at(1); /* the struct renc_key */
    assert_int_equal(renc_key_random(&out, 32), -RENC_E_NOMEM);
    renc_alloc_fail_at(0);
    assert_ptr_equal(out, &sentinel);
#else
    skip();
#endif
}

static void test_key_new_returns_null_when_out_of_memory(void **state)
{
    (void)state;
#ifdef RENC_TEST_HOOKS
    renc_alloc_fail_at(1);
    assert_null(renc_key_new(32));
#else
    skip();
#endif
}

static void test_key_from_bytes_copies(void **state)
{
    (void)state;
    uint8_t material[32];
    for (size_t i = 0; i < sizeof(material); i++)
        material[i] = (uint8_t)(i * 7 + 1);
    struct renc_key *key = NULL;
    assert_int_equal(renc_key_from_bytes(&key, material, sizeof(material)), 0);
    assert_ptr_not_equal(key->bytes, material);
    assert_memory_equal(key->bytes, material, sizeof(material));
    /* The key owns its copy: changing the source does not change it. */
    material[0] ^= 0xff;
    assert_int_not_equal(key->bytes[0], material[0]);
    renc_key_free(key);
}

static void test_key_dup_copies_into_new_memory(void **state)
{
    (void)state;
    struct renc_key *a = NULL, *b = NULL;
    assert_int_equal(renc_key_random(&a, 48), 0);
    assert_int_equal(renc_key_dup(&b, a), 0);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a->bytes, b->bytes);
    assert_int_equal(b->len, 48);
    assert_memory_equal(a->bytes, b->bytes, 48);
    renc_key_free(a);
    /* b stays valid after its source is gone. */
    assert_int_equal(b->len, 48);
    renc_key_free(b);
}

static void test_key_dup_rejects_null(void **state)
{
    (void)state;
    struct renc_key *out = NULL;
    assert_int_equal(renc_key_dup(&out, NULL), -RENC_E_INVALID);
    assert_null(out);
}

static void test_key_free_null_is_noop(void **state)
{
    (void)state;
    renc_key_free(NULL);
}

static void test_ct_equal_detects_equal_and_each_differing_byte(void **state)
{
    (void)state;
    uint8_t a[33], b[33];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)i;
    assert_int_equal(renc_ct_equal(a, b, sizeof(a)), 1);
    for (size_t i = 0; i < sizeof(a); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(renc_ct_equal(a, b, sizeof(a)), 0);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(renc_ct_equal(a, b, sizeof(a)), 1);
}

static void test_ct_equal_of_nothing_is_equal(void **state)
{
    (void)state;
    uint8_t a = 1, b = 2;
    assert_int_equal(renc_ct_equal(&a, &b, 0), 1);
}

static void test_secmem_wipe_zeroes(void **state)
{
    (void)state;
    uint8_t buf[40];
    memset(buf, 0xa5, sizeof(buf));
    renc_secmem_wipe(buf + 4, 32);
    static const uint8_t zero[32];
    assert_memory_equal(buf + 4, zero, 32);
    assert_int_equal(buf[3], 0xa5);
    assert_int_equal(buf[36], 0xa5);
    renc_secmem_wipe(NULL, 0);
}

static void test_random_bytes_fill_and_differ(void **state)
{
    (void)state;
    uint8_t a[32] = { 0 }, b[32] = { 0 };
    assert_int_equal(renc_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(renc_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(renc_random_bytes(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secmem_init_disables_core_dumps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secmem_init_twice_is_harmless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_new_is_zeroed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_random_keys_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_random_rejects_zero_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_random_leaves_out_unset_when_out_of_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_new_returns_null_when_out_of_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_from_bytes_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_dup_copies_into_new_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_dup_rejects_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_free_null_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ct_equal_detects_equal_and_each_differing_byte,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ct_equal_of_nothing_is_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secmem_wipe_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes_fill_and_differ, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
