/* tests/unit/test_shard.c — the static split (run/shard.h): the hash is the
 * documented one (first 8 bytes of SHA-256 of the name, big-endian: the
 * values below are Python's hashlib), K/N and auto are read as documented
 * (Kubernetes, Slurm arrays starting anywhere or stepping), and bad values
 * are refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "run/shard.h"

static const char *const renc_engine_vars[] = {
    "JOB_COMPLETION_INDEX", "RENC_SHARD_COUNT", "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof renc_engine_vars / sizeof *renc_engine_vars; i++)
        unsetenv(renc_engine_vars[i]);
    return 0;
}

static void test_shard_hash_is_sha256_prefix(void **state)
{
    (void)state;
    uint64_t h;
    assert_int_equal(renc_shard_hash("d0/f0.renc", &h), 0);
    assert_true(h == 0x777f1695ede442fcull);
    assert_int_equal(renc_shard_hash("a/b.renc", &h), 0);
    assert_true(h == 0xaf000045cfbe2845ull);
    assert_int_equal(renc_shard_hash("", &h), 0);
    assert_true(h == 0xe3b0c44298fc1c14ull);
}

static void test_shard_mine_splits_by_hash(void **state)
{
    (void)state;
    struct renc_shard s;
    char why[256];
    assert_int_equal(renc_shard_parse(&s, "0/4", why, sizeof why), 0);
    assert_int_equal(renc_shard_mine(&s, "d0/f0.renc"), 1); /* 0x...fc % 4 == 0 */
    assert_int_equal(renc_shard_mine(&s, "a/b.renc"), 0);   /* % 4 == 1 */
    assert_int_equal(renc_shard_parse(&s, "1/4", why, sizeof why), 0);
    assert_int_equal(renc_shard_mine(&s, "a/b.renc"), 1);
    assert_int_equal(renc_shard_mine(NULL, "a/b.renc"), 1); /* not sharded: every blob */
    /* Every name falls in exactly one of N shards. */
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "x/%d.renc", i);
        int owners = 0;
        for (unsigned k = 0; k < 7; k++) {
            char t[16];
            snprintf(t, sizeof t, "%u/7", k);
            assert_int_equal(renc_shard_parse(&s, t, why, sizeof why), 0);
            owners += renc_shard_mine(&s, name);
        }
        assert_int_equal(owners, 1);
    }
}

static void refused(const char *text, const char *word)
{
    struct renc_shard s;
    char why[512] = "";
    assert_int_equal(renc_shard_parse(&s, text, why, sizeof why), -RENC_E_INVALID);
    if (!strstr(why, word))
        fail_msg("--shard %s: '%s' lacks '%s'", text, why, word);
}

static void test_shard_parse_refuses_bad_values(void **state)
{
    (void)state;
    refused("4/4", "numbered from 0 to 3");
    refused("1/0", "count must be 1..");
    refused("0/1000001", "count must be 1..");
    refused("x", "K/N");
    refused("1", "K/N");
    refused("-1/4", "K/N");
    refused("1/4x", "K/N");
    refused("/4", "K/N");
    refused(" 1/4", "K/N");
    refused("auto", "give --shard K/N");
    struct renc_shard s;
    char why[64];
    assert_int_equal(renc_shard_parse(&s, "3/8", why, sizeof why), 0);
    assert_int_equal(s.index, 3);
    assert_int_equal(s.count, 8);
    assert_string_equal(s.text, "3/8");
    assert_string_equal(s.from, "");
}

static void test_shard_auto_kubernetes(void **state)
{
    (void)state;
    struct renc_shard s;
    char why[512];
    setenv("JOB_COMPLETION_INDEX", "2", 1);
    refused("auto", "RENC_SHARD_COUNT");
    setenv("RENC_SHARD_COUNT", "5", 1);
    assert_int_equal(renc_shard_parse(&s, "auto", why, sizeof why), 0);
    assert_string_equal(s.text, "2/5");
    assert_non_null(strstr(s.from, "JOB_COMPLETION_INDEX"));
    setenv("RENC_SHARD_COUNT", "2", 1);
    refused("auto", "numbered from 0 to 1");
    setenv("RENC_SHARD_COUNT", "two", 1);
    refused("auto", "RENC_SHARD_COUNT is not a number");
}

static void test_shard_auto_slurm(void **state)
{
    (void)state;
    struct renc_shard s;
    char why[512];
    /* --array=0-3, task 3 */
    setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    assert_int_equal(renc_shard_parse(&s, "auto", why, sizeof why), 0);
    assert_string_equal(s.text, "3/4");
    /* --array=1-4: task 1 is shard 0 */
    setenv("SLURM_ARRAY_TASK_ID", "1", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "4", 1);
    assert_int_equal(renc_shard_parse(&s, "auto", why, sizeof why), 0);
    assert_string_equal(s.text, "0/4");
    /* --array=10-16:2 (10,12,14,16), task 14 */
    setenv("SLURM_ARRAY_TASK_ID", "14", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "10", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "16", 1);
    setenv("SLURM_ARRAY_TASK_STEP", "2", 1);
    assert_int_equal(renc_shard_parse(&s, "auto", why, sizeof why), 0);
    assert_string_equal(s.text, "2/4");
    /* --array=1,3,7: three tasks, not evenly spaced */
    unsetenv("SLURM_ARRAY_TASK_STEP");
    setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "3", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "7", 1);
    refused("auto", "not evenly spaced");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    refused("auto", "SLURM_ARRAY_TASK_COUNT is not set");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_shard_hash_is_sha256_prefix, clear_env),
        cmocka_unit_test_setup(test_shard_mine_splits_by_hash, clear_env),
        cmocka_unit_test_setup(test_shard_parse_refuses_bad_values, clear_env),
        cmocka_unit_test_setup(test_shard_auto_kubernetes, clear_env),
        cmocka_unit_test_setup(test_shard_auto_slurm, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
