/* tests/unit/test_catalog.c — the environment catalog: environments created,
 * listed and found, ids and regions checked, policies set with their history
 * and unversioned key refs, the cmk limit (also between two connections
 * racing for the last place), the operator's and the key's locks, reset,
 * runs, the keys an environment has had, settings, and the file: private,
 * persistent, and refused when it is not a catalog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/alloc.h"
#include "common/error.h"
#include "state/catalog.h"
#include "state/journal.h"

#include "tests/unit/tmpdir.h"

#define MMK "local:service-mmk"

static char dbpath[256];

static int setup_dir(void **state)
{
    if (setup_tmpdir(state, "/tmp/renc-catalog-test.XXXXXX"))
        return -1;
    snprintf(dbpath, sizeof dbpath, "%s/catalog.db", dir);
    return 0;
}

static struct renc_catalog *open_catalog(void)
{
    struct renc_catalog *c = NULL;
    assert_int_equal(renc_catalog_open(&c, dir, 1), 0);
    assert_non_null(c);
    return c;
}

/* A new catalog holding the environments ids (up to a NULL), each on mmk. */
static struct renc_catalog *open_catalog_with(const char *const *ids)
{
    struct renc_catalog *c = open_catalog();
    for (size_t i = 0; ids[i]; i++)
        assert_int_equal(renc_catalog_create_env(c, ids[i], "", MMK), 0);
    return c;
}

/* Frees n strings and their array (s may be NULL). */
static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        renc_free(s[i]);
    renc_free(s);
}

static enum renc_policy policy_of(struct renc_catalog *c, const char *id)
{
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, id, &e), 0);
    return e.policy;
}

/* The last history row of id. */
static void last_event(struct renc_catalog *c, const char *id, struct renc_env_event *out)
{
    struct renc_env_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_history(c, id, &ev, &n), 0);
    assert_true(n > 0);
    *out = ev[n - 1];
    renc_free(ev);
}

static size_t history_len(struct renc_catalog *c, const char *id)
{
    struct renc_env_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_history(c, id, &ev, &n), 0);
    renc_free(ev);
    return n;
}

static void test_catalog_create_get_and_list_sorted(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_string_equal(renc_catalog_path(c), dbpath);
    struct renc_env *all = NULL;
    size_t n = 99;
    assert_int_equal(renc_catalog_list(c, &all, &n), 0);
    assert_int_equal(n, 0);
    renc_free(all);

    assert_int_equal(renc_catalog_create_env(c, "prod", "eu-west", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "dev", NULL, "local:service-mmk/3"), 0);
    assert_int_equal(renc_catalog_create_env(c, "Stage_2.b-x", "", MMK), 0);

    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_string_equal(e.id, "prod");
    assert_string_equal(e.region, "eu-west");
    assert_int_equal(e.policy, RENC_POLICY_MMK);
    assert_string_equal(e.key_ref, MMK);
    assert_int_equal(e.locked_by_operator, 0);
    assert_string_equal(e.key_lock, "");
    assert_false(renc_env_locked(&e));
    assert_true(e.created > 0);
    assert_int_equal(e.policy_since, e.created);
    assert_string_equal(e.last_run, "");
    /* Stored unversioned. */
    assert_int_equal(renc_catalog_get(c, "dev", &e), 0);
    assert_string_equal(e.key_ref, MMK);
    assert_string_equal(e.region, "");

    /* Not found leaves out alone. */
    memset(&e, 0x5a, sizeof e);
    assert_int_equal(renc_catalog_get(c, "nope", &e), -RENC_E_ENV_NOT_FOUND);
    assert_int_equal((unsigned char)e.id[0], 0x5a);

    assert_int_equal(renc_catalog_list(c, &all, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(all[0].id, "Stage_2.b-x");
    assert_string_equal(all[1].id, "dev");
    assert_string_equal(all[2].id, "prod");
    assert_string_equal(all[2].region, "eu-west");
    renc_free(all);

    struct renc_env_event ev;
    last_event(c, "prod", &ev);
    assert_string_equal(ev.action, "created");
    assert_string_equal(ev.detail, "mmk local:service-mmk, region eu-west");
    renc_catalog_close(c);
}

static void test_catalog_refuses_a_taken_id(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "eu", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "prod", "us", MMK), -RENC_E_ENV_EXISTS);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_string_equal(e.region, "eu");
    assert_int_equal(history_len(c, "prod"), 1);
    renc_catalog_close(c);
}

static void test_catalog_refuses_bad_ids_regions_and_refs(void **state)
{
    (void)state;
    char long_id[RENC_ENV_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *bad[] = {"", ".x", "-x", "a/b", "/", "a b", " a", "a\n", "é", long_id, NULL};
    for (int i = 0; bad[i]; i++)
        assert_false(renc_env_id_valid(bad[i]));
    assert_false(renc_env_id_valid(NULL));
    char max_id[RENC_ENV_ID_MAX + 1]; /* exactly 64 */
    memset(max_id, 'a', sizeof max_id - 1);
    max_id[sizeof max_id - 1] = '\0';
    assert_true(renc_env_id_valid(max_id));
    assert_true(renc_env_id_valid("_x"));
    assert_true(renc_env_id_valid("a.b_c-D9"));
    assert_true(renc_env_id_valid("x."));

    struct renc_catalog *c = open_catalog();
    for (int i = 0; bad[i]; i++)
        assert_int_equal(renc_catalog_create_env(c, bad[i], "", MMK), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, NULL, "", MMK), -RENC_E_INVALID);
    char long_region[RENC_REGION_MAX + 2];
    memset(long_region, 'r', sizeof long_region - 1);
    long_region[sizeof long_region - 1] = '\0';
    assert_int_equal(renc_catalog_create_env(c, "e", long_region, MMK), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, "e", "eu\nwest", MMK), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, "e", "eu\x7f", MMK), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, "e", "\xff\xfe", MMK), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, "e", "eu-west", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "f", "eu", "nope:k"), -RENC_E_BAD_KEYREF);
    assert_int_equal(renc_catalog_create_env(c, "f", "eu", NULL), -RENC_E_BAD_KEYREF);
    /* Printable UTF-8 and 64 bytes are fine. */
    long_region[RENC_REGION_MAX] = '\0';
    assert_int_equal(renc_catalog_create_env(c, "g", long_region, MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "h", "Zürich", MMK), 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "h", &e), 0);
    assert_string_equal(e.region, "Zürich");

    struct renc_env *all = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_list(c, &all, &n), 0);
    assert_int_equal(n, 3); /* e, g, h */
    renc_free(all);
    assert_int_equal(renc_catalog_set_policy(c, "e", RENC_POLICY_BYOK, "bad", 25, NULL),
                     -RENC_E_BAD_KEYREF);
    assert_int_equal(renc_catalog_set_policy(c, "e", (enum renc_policy)7, "local:a", 25, NULL),
                     -RENC_E_INVALID);
    assert_int_equal(renc_catalog_set_policy(c, "zz", RENC_POLICY_BYOK, "local:a", 25, NULL),
                     -RENC_E_ENV_NOT_FOUND);
    renc_catalog_close(c);
}

static void test_catalog_policy_names_parse_both_ways(void **state)
{
    (void)state;
    enum renc_policy p;
    for (int i = RENC_POLICY_MMK; i <= RENC_POLICY_CMK; i++) {
        assert_int_equal(renc_policy_parse(renc_policy_name((enum renc_policy)i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_string_equal(renc_policy_name(RENC_POLICY_BYOK), "byok");
    assert_int_equal(renc_policy_parse("CMK", &p), -RENC_E_INVALID);
    assert_int_equal(renc_policy_parse("", &p), -RENC_E_INVALID);
    assert_int_equal(renc_policy_parse(NULL, &p), -RENC_E_INVALID);
}

static void test_catalog_set_policy_round_trips_with_history(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "eu", MMK), 0);
    unsigned cmk = 99;
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_BYOK, "local:b/1", 25, &cmk),
                     0);
    assert_int_equal(cmk, 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_int_equal(e.policy, RENC_POLICY_BYOK);
    assert_string_equal(e.key_ref, "local:b");
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_CMK,
                                             "akv:https://vault.example:8443/keys/c/abc123", 25,
                                             &cmk),
                     0);
    assert_int_equal(cmk, 1);
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_int_equal(e.policy, RENC_POLICY_CMK);
    assert_string_equal(e.key_ref, "akv:https://vault.example:8443/keys/c");
    assert_int_equal(renc_catalog_note(c, "prod", "backup", "backup b1 of 3 blobs"), 0);

    struct renc_env_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_history(c, "prod", &ev, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(ev[0].action, "created");
    assert_string_equal(ev[1].action, "set-policy");
    assert_string_equal(ev[1].detail, "mmk local:service-mmk -> byok local:b");
    assert_string_equal(ev[2].action, "set-policy");
    assert_string_equal(ev[2].detail,
                        "byok local:b -> cmk akv:https://vault.example:8443/keys/c");
    assert_string_equal(ev[3].action, "backup");
    assert_string_equal(ev[3].detail, "backup b1 of 3 blobs");
    for (size_t i = 0; i < n; i++)
        assert_true(ev[i].at >= e.created);
    renc_free(ev);

    assert_int_equal(renc_catalog_history(c, "nope", &ev, &n), -RENC_E_ENV_NOT_FOUND);
    assert_int_equal(renc_catalog_note(c, "nope", "backup", "x"), -RENC_E_ENV_NOT_FOUND);
    assert_int_equal(renc_catalog_note(c, "prod", "", "x"), -RENC_E_INVALID);
    char big[600];
    memset(big, 'd', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(renc_catalog_note(c, "prod", "backup", big), -RENC_E_TOO_BIG);
    assert_int_equal(history_len(c, "prod"), 4);
    renc_catalog_close(c);
}

static void test_catalog_cmk_limit_counts_environments_not_calls(void **state)
{
    (void)state;
    const char *const ids[] = {"a", "b", "c", "d", NULL};
    struct renc_catalog *c = open_catalog_with(ids);
    unsigned cmk = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(renc_catalog_set_policy(c, ids[i], RENC_POLICY_CMK, "local:cmk", 3,
                                                 &cmk),
                         0);
        assert_int_equal(cmk, (unsigned)i + 1);
    }
    /* The fourth is refused and changes nothing. */
    size_t before = history_len(c, "d");
    cmk = 0;
    assert_int_equal(renc_catalog_set_policy(c, "d", RENC_POLICY_CMK, "local:cmk", 3, &cmk),
                     -RENC_E_CMK_LIMIT);
    assert_int_equal(cmk, 3);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "d", &e), 0);
    assert_int_equal(e.policy, RENC_POLICY_MMK);
    assert_string_equal(e.key_ref, MMK);
    assert_int_equal(history_len(c, "d"), before);
    /* Other policies are not limited. */
    assert_int_equal(renc_catalog_set_policy(c, "d", RENC_POLICY_BYOK, "local:b", 3, NULL), 0);
    /* Re-setting cmk on a cmk environment takes no new place. */
    assert_int_equal(renc_catalog_set_policy(c, "a", RENC_POLICY_CMK, "local:cmk2/4", 3, &cmk),
                     0);
    assert_int_equal(cmk, 3);
    /* One goes back to byok: another may take its place. */
    assert_int_equal(renc_catalog_set_policy(c, "b", RENC_POLICY_BYOK, "local:b", 3, &cmk), 0);
    assert_int_equal(cmk, 2);
    assert_int_equal(renc_catalog_set_policy(c, "d", RENC_POLICY_CMK, "local:cmk", 3, &cmk), 0);
    assert_int_equal(cmk, 3);
    assert_int_equal(policy_of(c, "d"), RENC_POLICY_CMK);
    assert_int_equal(policy_of(c, "b"), RENC_POLICY_BYOK);
    /* A limit of zero refuses every new one. */
    assert_int_equal(renc_catalog_set_policy(c, "b", RENC_POLICY_CMK, "local:cmk", 0, NULL),
                     -RENC_E_CMK_LIMIT);
    renc_catalog_close(c);
}

static void test_catalog_locked_environment_refuses_set_policy(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "dev", "", MMK), 0);
    assert_int_equal(renc_catalog_set_operator_lock(c, "prod", 1), 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_int_equal(e.locked_by_operator, 1);
    assert_true(renc_env_locked(&e));
    size_t before = history_len(c, "prod");
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_BYOK, "local:b", 25, NULL),
                     -RENC_E_ENV_LOCKED);
    assert_int_equal(policy_of(c, "prod"), RENC_POLICY_MMK);
    assert_int_equal(history_len(c, "prod"), before);
    struct renc_env_event ev;
    last_event(c, "prod", &ev);
    assert_string_equal(ev.action, "lock");
    assert_string_equal(ev.detail, "locked by the operator");

    assert_int_equal(renc_catalog_set_operator_lock(c, "prod", 0), 0);
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_false(renc_env_locked(&e));
    last_event(c, "prod", &ev);
    assert_string_equal(ev.action, "unlock");
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_BYOK, "local:b", 25, NULL),
                     0);

    /* Locked by its key: refused as well. */
    assert_int_equal(renc_catalog_key_lock(c, "local:b", "key local:b revoked", NULL, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_CMK, "local:c", 25, NULL),
                     -RENC_E_ENV_LOCKED);
    assert_int_equal(policy_of(c, "prod"), RENC_POLICY_BYOK);
    assert_int_equal(renc_catalog_set_operator_lock(c, "nope", 1), -RENC_E_ENV_NOT_FOUND);
    renc_catalog_close(c);
}

static void test_catalog_key_lock_matches_the_key_and_clears_only_its_own(void **state)
{
    (void)state;
    const char *const ids[] = {"e1", "e2", "e3", "e4", "e5", NULL};
    struct renc_catalog *c = open_catalog_with(ids);
    assert_int_equal(renc_catalog_set_policy(c, "e1", RENC_POLICY_BYOK, "local:k", 25, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c, "e2", RENC_POLICY_CMK, "local:k/2", 25, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c, "e3", RENC_POLICY_BYOK, "local:other", 25, NULL),
                     0);
    assert_int_equal(renc_catalog_set_policy(c, "e4", RENC_POLICY_BYOK, "local:k.old", 25, NULL),
                     0);

    char **touched = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_key_lock(c, "local:k/7", "key local:k revoked", &touched, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(touched[0], "e1");
    assert_string_equal(touched[1], "e2");
    free_strings(touched, n);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "e2", &e), 0);
    assert_string_equal(e.key_lock, "key local:k revoked");
    assert_int_equal(e.locked_by_operator, 0);
    assert_true(renc_env_locked(&e));
    assert_int_equal(renc_catalog_get(c, "e4", &e), 0);
    assert_false(renc_env_locked(&e));
    struct renc_env_event ev;
    last_event(c, "e1", &ev);
    assert_string_equal(ev.action, "key-lock");
    assert_string_equal(ev.detail, "key local:k revoked");

    /* Another key locks e3; e5 moves to local:k after the lock. */
    assert_int_equal(renc_catalog_key_lock(c, "local:other", "key local:other revoked", NULL,
                                           NULL),
                     0);
    assert_int_equal(renc_catalog_set_policy(c, "e5", RENC_POLICY_BYOK, "local:k", 25, NULL), 0);
    size_t e5_before = history_len(c, "e5");

    /* Clearing local:k lifts only the locks it had set. */
    assert_int_equal(renc_catalog_key_lock(c, "local:k", NULL, &touched, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(touched[0], "e1");
    assert_string_equal(touched[1], "e2");
    free_strings(touched, n);
    assert_int_equal(renc_catalog_get(c, "e1", &e), 0);
    assert_false(renc_env_locked(&e));
    assert_int_equal(renc_catalog_get(c, "e3", &e), 0);
    assert_string_equal(e.key_lock, "key local:other revoked");
    assert_int_equal(history_len(c, "e5"), e5_before);
    last_event(c, "e2", &ev);
    assert_string_equal(ev.action, "key-unlock");
    assert_string_equal(ev.detail, "key lock lifted (was: key local:k revoked)");

    /* The operator's lock is not the key's to lift. */
    assert_int_equal(renc_catalog_set_operator_lock(c, "e3", 1), 0);
    assert_int_equal(renc_catalog_key_lock(c, "local:other", NULL, &touched, &n), 0);
    assert_int_equal(n, 1);
    free_strings(touched, n);
    assert_int_equal(renc_catalog_get(c, "e3", &e), 0);
    assert_string_equal(e.key_lock, "");
    assert_int_equal(e.locked_by_operator, 1);

    /* Nothing to do is not an error. */
    assert_int_equal(renc_catalog_key_lock(c, "local:unused", NULL, &touched, &n), 0);
    assert_int_equal(n, 0);
    renc_free(touched);
    assert_int_equal(renc_catalog_key_lock(c, "not a ref", "x", NULL, NULL), -RENC_E_BAD_KEYREF);
    assert_int_equal(renc_catalog_key_lock(c, "local:k", "", NULL, NULL), -RENC_E_INVALID);
    renc_catalog_close(c);
}

static void test_catalog_reset_reverts_to_mmk_and_keeps_history(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "eu", MMK), 0);
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_CMK, "local:c", 25, NULL), 0);
    assert_int_equal(renc_catalog_note_run(c, "prod", "failed", 2, "/s/journals/j.db"), 0);
    assert_int_equal(renc_catalog_set_operator_lock(c, "prod", 1), 0);
    assert_int_equal(renc_catalog_key_lock(c, "local:c", "key local:c revoked", NULL, NULL), 0);
    size_t before = history_len(c, "prod");

    assert_int_equal(renc_catalog_reset(c, "prod", "local:mmk2/5"), 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_int_equal(e.policy, RENC_POLICY_MMK);
    assert_string_equal(e.key_ref, "local:mmk2");
    assert_string_equal(e.region, "eu");
    assert_string_equal(e.last_run, "");
    assert_int_equal(e.last_run_failed, 0);
    assert_int_equal(e.last_run_at, 0);
    assert_string_equal(e.last_run_journal, "");
    assert_int_equal(e.locked_by_operator, 1); /* kept */
    assert_string_equal(e.key_lock, "");       /* went with the key */

    struct renc_env_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_history(c, "prod", &ev, &n), 0);
    assert_int_equal(n, before + 1);
    assert_string_equal(ev[0].action, "created");
    assert_string_equal(ev[n - 1].action, "reset");
    assert_string_equal(ev[n - 1].detail, "cmk local:c -> mmk local:mmk2");
    renc_free(ev);

    /* A cmk place is given back. */
    unsigned cmk = 9;
    assert_int_equal(renc_catalog_create_env(c, "x", "", MMK), 0);
    assert_int_equal(renc_catalog_set_policy(c, "x", RENC_POLICY_CMK, "local:c", 1, &cmk), 0);
    assert_int_equal(cmk, 1);
    assert_int_equal(renc_catalog_reset(c, "nope", MMK), -RENC_E_ENV_NOT_FOUND);
    assert_int_equal(renc_catalog_reset(c, "x", "bad"), -RENC_E_BAD_KEYREF);
    renc_catalog_close(c);
}

static void test_catalog_note_run_records_the_outcome(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "", MMK), 0);
    assert_int_equal(renc_catalog_note_run(c, "prod", "failed", 3, "/state/journals/p.db"), 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_string_equal(e.last_run, "failed");
    assert_int_equal(e.last_run_failed, 3);
    assert_true(e.last_run_at >= e.created);
    assert_string_equal(e.last_run_journal, "/state/journals/p.db");
    struct renc_env_event ev;
    last_event(c, "prod", &ev);
    assert_string_equal(ev.action, "run");
    assert_string_equal(ev.detail, "failed, 3 failed, journal /state/journals/p.db");

    assert_int_equal(renc_catalog_note_run(c, "prod", "finished", 0, NULL), 0);
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_string_equal(e.last_run, "finished");
    assert_string_equal(e.last_run_journal, "");
    assert_int_equal(renc_catalog_note_run(c, "prod", "interrupted", 0, "j"), 0);

    assert_int_equal(renc_catalog_note_run(c, "prod", "done", 0, NULL), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_note_run(c, "prod", NULL, 0, NULL), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_note_run(c, "prod", "failed", -1, NULL), -RENC_E_INVALID);
    char big[1100];
    memset(big, 'j', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(renc_catalog_note_run(c, "prod", "failed", 1, big), -RENC_E_TOO_BIG);
    assert_int_equal(renc_catalog_note_run(c, "nope", "failed", 1, NULL), -RENC_E_ENV_NOT_FOUND);
    assert_int_equal(renc_catalog_get(c, "prod", &e), 0);
    assert_string_equal(e.last_run, "interrupted");
    renc_catalog_close(c);
}

static void test_catalog_stage_is_recorded_then_ended_with_its_history(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "dr", "", MMK), 0);
    assert_int_equal(renc_catalog_stage_begin(c, "prod", "st0123456789abcdef", "copy", "req"), 0);
    struct renc_stage_rec *r = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_stage_list(c, "prod", &r, &n), 0);
    assert_int_equal(n, 1);
    assert_false(r[0].renaming);
    assert_string_equal(r[0].op, "copy");
    assert_string_equal(r[0].request, "req");
    assert_int_equal(r[0].rel_count, 0);
    renc_catalog_stage_free(r, n);

    /* The commit point: the final paths and the history rows, together. */
    const char *rels[] = {"blobs/a", "blobs/b/c"};
    struct renc_stage_note notes[] = {{"prod", "copy-in", "2 blobs from dr"},
                                      {"dr", "copy-out", "2 blobs to prod"}};
    assert_int_equal(renc_catalog_stage_ready(c, "st0123456789abcdef", rels, 2, notes, 2), 0);
    /* Only a stage being written moves to renaming. */
    assert_int_equal(renc_catalog_stage_ready(c, "st0123456789abcdef", rels, 0, NULL, 0),
                     -RENC_E_CATALOG);
    assert_int_equal(renc_catalog_stage_list(c, NULL, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_true(r[0].renaming);
    assert_int_equal(r[0].rel_count, 2);
    assert_string_equal(r[0].rels[1], "blobs/b/c");
    renc_catalog_stage_free(r, n);

    assert_int_equal(renc_catalog_stage_done(c, "st0123456789abcdef", " (late)"), 0);
    struct renc_env_event ev;
    last_event(c, "prod", &ev);
    assert_string_equal(ev.action, "copy-in");
    assert_string_equal(ev.detail, "2 blobs from dr (late)");
    last_event(c, "dr", &ev);
    assert_string_equal(ev.action, "copy-out");
    assert_int_equal(renc_catalog_stage_list(c, NULL, &r, &n), 0);
    assert_int_equal(n, 0);
    renc_catalog_stage_free(r, n);

    /* Dropped: no history. */
    assert_int_equal(renc_catalog_stage_begin(c, "dr", "st1111111111111111", "put", ""), 0);
    assert_int_equal(renc_catalog_stage_drop(c, "st1111111111111111"), 0);
    assert_int_equal(renc_catalog_stage_list(c, "dr", &r, &n), 0);
    assert_int_equal(n, 0);
    renc_catalog_stage_free(r, n);
    last_event(c, "dr", &ev);
    assert_string_equal(ev.action, "copy-out");
    renc_catalog_close(c);
}

static void test_catalog_env_keys_latest_first_each_once(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "", MMK), 0);
    assert_int_equal(renc_catalog_create_env(c, "other", "", MMK), 0);
    char **refs = NULL;
    size_t n = 0;
    assert_int_equal(renc_catalog_env_keys(c, "prod", &refs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0], MMK);
    free_strings(refs, n);

    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_BYOK, "local:a/1", 25, NULL),
                     0);
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_CMK, "local:b", 25, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_BYOK, "local:a/3", 25, NULL),
                     0);
    assert_int_equal(renc_catalog_set_policy(c, "other", RENC_POLICY_BYOK, "local:z", 25, NULL),
                     0);
    assert_int_equal(renc_catalog_env_keys(c, "prod", &refs, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(refs[0], "local:a");
    assert_string_equal(refs[1], "local:b");
    assert_string_equal(refs[2], MMK);
    free_strings(refs, n);

    /* A reset brings the mmk key back to the front; the others stay. */
    assert_int_equal(renc_catalog_reset(c, "prod", MMK), 0);
    assert_int_equal(renc_catalog_env_keys(c, "prod", &refs, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(refs[0], MMK);
    assert_string_equal(refs[1], "local:a");
    assert_string_equal(refs[2], "local:b");
    free_strings(refs, n);

    assert_int_equal(renc_catalog_env_keys(c, "nope", &refs, &n), -RENC_E_ENV_NOT_FOUND);
    renc_catalog_close(c);
}

static void test_catalog_config_defaults_and_settings(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    char v[64];
    assert_int_equal(renc_catalog_config_get(c, "cmk-limit", v, sizeof v), 0);
    assert_string_equal(v, "25");
    assert_int_equal(renc_catalog_config_get(c, "mmk-key", v, sizeof v), 0);
    assert_string_equal(v, "local:service-mmk");
    assert_int_equal(renc_catalog_config_get(c, "mmk-key", v, 5), -RENC_E_TOO_BIG);
    assert_int_equal(renc_catalog_config_get(c, "colour", v, sizeof v), -RENC_E_INVALID);

    assert_int_equal(renc_catalog_config_set(c, "cmk-limit", "3"), 0);
    assert_int_equal(renc_catalog_config_set(c, "cmk-limit", "40"), 0);
    assert_int_equal(renc_catalog_config_set(c, "mmk-key", "local:mmk2"), 0);
    assert_int_equal(renc_catalog_config_set(c, "cmk-limit", "abc"), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_config_set(c, "cmk-limit", "-1"), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_config_set(c, "cmk-limit", ""), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_config_set(c, "mmk-key", "mmk"), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_config_set(c, "colour", "blue"), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_config_get(c, "cmk-limit", v, sizeof v), 0);
    assert_string_equal(v, "40");
    renc_catalog_close(c);

    c = open_catalog();
    assert_int_equal(renc_catalog_config_get(c, "mmk-key", v, sizeof v), 0);
    assert_string_equal(v, "local:mmk2");
    renc_catalog_close(c);
}

static void test_catalog_persists_across_close_and_reopen(void **state)
{
    (void)state;
    struct renc_catalog *c = NULL;
    assert_int_equal(renc_catalog_open(&c, dir, 0), -ENOENT);
    assert_null(c);
    c = open_catalog();
    assert_int_equal(renc_catalog_create_env(c, "prod", "eu", MMK), 0);
    assert_int_equal(renc_catalog_set_policy(c, "prod", RENC_POLICY_CMK, "local:c/2", 25, NULL), 0);
    assert_int_equal(renc_catalog_set_operator_lock(c, "prod", 1), 0);
    struct renc_env before;
    assert_int_equal(renc_catalog_get(c, "prod", &before), 0);
    renc_catalog_close(c);

    assert_int_equal(renc_catalog_open(&c, dir, 0), 0);
    struct renc_env after;
    assert_int_equal(renc_catalog_get(c, "prod", &after), 0);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(history_len(c, "prod"), 3);
    renc_catalog_close(c);

    /* Private: the file 0600, the state folder (made here) 0700. */
    struct stat st;
    assert_int_equal(stat(dbpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/state", dir);
    assert_int_equal(renc_catalog_open(&c, sub, 1), 0);
    renc_catalog_close(c);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    renc_catalog_close(NULL);
}

static void test_catalog_refuses_a_file_open_to_others(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    renc_catalog_close(c);
    assert_int_equal(chmod(dbpath, 0644), 0);
    c = NULL;
    assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_INSECURE_PERMS);
    assert_null(c);
    assert_int_equal(chmod(dbpath, 0620), 0);
    assert_int_equal(renc_catalog_open(&c, dir, 0), -RENC_E_INSECURE_PERMS);
    assert_int_equal(chmod(dbpath, 0600), 0);
    assert_int_equal(renc_catalog_open(&c, dir, 0), 0);
    renc_catalog_close(c);
}

static void write_db_file(const char *bytes, size_t len)
{
    int fd = open(dbpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
}

static void test_catalog_refuses_files_that_are_not_catalogs(void **state)
{
    (void)state;
    struct renc_catalog *c = NULL;
    /* Bytes that are not SQLite. */
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_db_file(junk, sizeof junk);
    assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_BAD_CATALOG);
    assert_int_equal(renc_catalog_open(&c, dir, 0), -RENC_E_BAD_CATALOG);
    assert_int_equal(unlink(dbpath), 0);

    /* A journal: the same application_id and user_version, other tables. */
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, dbpath, 1, NULL), 0);
    renc_journal_close(j);
    assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_BAD_CATALOG);
    assert_int_equal(unlink(dbpath), 0);

    /* Someone else's database, with and without an application_id. */
    for (int with_id = 0; with_id < 2; with_id++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      with_id ? "PRAGMA application_id=1234; CREATE TABLE t(x);"
                                              : "CREATE TABLE env(x);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(chmod(dbpath, 0600), 0);
        assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_BAD_CATALOG);
        assert_int_equal(unlink(dbpath), 0);
    }

    /* A catalog of a newer schema. */
    c = open_catalog();
    renc_catalog_close(c);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    c = NULL;
    assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_BAD_CATALOG);
    assert_null(c);

    /* An empty file (a creation cut short) is as good as none. */
    assert_int_equal(unlink(dbpath), 0);
    write_db_file("", 0);
    assert_int_equal(renc_catalog_open(&c, dir, 0), -ENOENT);
    c = open_catalog();
    renc_catalog_close(c);

    /* A link is not followed. */
    assert_int_equal(unlink(dbpath), 0);
    char target[300];
    snprintf(target, sizeof target, "%s/elsewhere.db", dir);
    assert_int_equal(symlink(target, dbpath), 0);
    assert_int_equal(renc_catalog_open(&c, dir, 1), -RENC_E_BAD_CATALOG);
}

/* Two processes' worth of connections racing for the last cmk place. */
struct racer {
    const char *env;
    pthread_barrier_t *start;
    int rc;
};

static void *race_for_cmk(void *arg)
{
    struct racer *r = arg;
    struct renc_catalog *c = NULL;
    r->rc = renc_catalog_open(&c, dir, 0);
    pthread_barrier_wait(r->start);
    if (r->rc == 0)
        r->rc = renc_catalog_set_policy(c, r->env, RENC_POLICY_CMK, "local:cmk", 3, NULL);
    renc_catalog_close(c);
    return NULL;
}

static void test_catalog_two_connections_race_for_the_last_cmk_place(void **state)
{
    (void)state;
    const char *const ids[] = {"a", "b", "x", "y", NULL};
    struct renc_catalog *c = open_catalog_with(ids);
    assert_int_equal(renc_catalog_set_policy(c, "a", RENC_POLICY_CMK, "local:cmk", 3, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c, "b", RENC_POLICY_CMK, "local:cmk", 3, NULL), 0);

    /* Interleaved calls on two connections: the second sees the first. */
    struct renc_catalog *c2 = open_catalog();
    assert_int_equal(renc_catalog_set_policy(c, "x", RENC_POLICY_CMK, "local:cmk", 3, NULL), 0);
    assert_int_equal(renc_catalog_set_policy(c2, "y", RENC_POLICY_CMK, "local:cmk", 3, NULL),
                     -RENC_E_CMK_LIMIT);
    assert_int_equal(renc_catalog_set_policy(c2, "x", RENC_POLICY_BYOK, "local:b", 3, NULL), 0);
    assert_int_equal(policy_of(c, "x"), RENC_POLICY_BYOK);
    renc_catalog_close(c2);

    /* Threads, each with its own connection, started together. */
    for (int round = 0; round < 10; round++) {
        pthread_barrier_t start;
        assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
        struct racer r[2] = {{"x", &start, -1}, {"y", &start, -1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, race_for_cmk, &r[i]), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        pthread_barrier_destroy(&start);
        int won = (r[0].rc == 0) + (r[1].rc == 0);
        int lost = (r[0].rc == -RENC_E_CMK_LIMIT) + (r[1].rc == -RENC_E_CMK_LIMIT);
        assert_int_equal(won, 1);
        assert_int_equal(lost, 1);
        const char *winner = r[0].rc == 0 ? "x" : "y";
        const char *loser = r[0].rc == 0 ? "y" : "x";
        assert_int_equal(policy_of(c, winner), RENC_POLICY_CMK);
        assert_int_not_equal(policy_of(c, loser), RENC_POLICY_CMK);
        assert_int_equal(renc_catalog_set_policy(c, winner, RENC_POLICY_BYOK, "local:b", 3, NULL),
                         0);
    }
    renc_catalog_close(c);
}

/* What one of the calls that return arrays gave back. */
struct returned {
    struct renc_env *envs;
    struct renc_env_event *events;
    char **strings;
    size_t count;
};

static int list_envs(struct renc_catalog *c, struct returned *r)
{
    return renc_catalog_list(c, &r->envs, &r->count);
}

static int history_of_a(struct renc_catalog *c, struct returned *r)
{
    return renc_catalog_history(c, "a", &r->events, &r->count);
}

static int env_keys_of_a(struct renc_catalog *c, struct returned *r)
{
    return renc_catalog_env_keys(c, "a", &r->strings, &r->count);
}

static int key_lock_j(struct renc_catalog *c, struct returned *r)
{
    return renc_catalog_key_lock(c, "local:j", "key local:j revoked", &r->strings, &r->count);
}

/* call with its n-th allocation failing, for n = 1, 2, ... until it
 * succeeds: each failure is -RENC_E_NOMEM and keeps nothing, nor changes
 * anything (a is not key-locked); the success gives back three items. */
static void fail_each_allocation(struct renc_catalog *c,
                                 int (*call)(struct renc_catalog *c, struct returned *r))
{
    int rc = -1;
    for (uint64_t n = 1; rc != 0; n++) {
        struct returned r = {0};
        renc_alloc_fail_at(n);
        rc = call(c, &r);
        renc_alloc_fail_at(0);
        if (rc == 0) {
            assert_int_equal(r.count, 3);
        } else {
            assert_int_equal(rc, -RENC_E_NOMEM);
            assert_true(!r.envs && !r.events && !r.strings && r.count == 0);
            /* Rolled back: nobody is locked yet. */
            struct renc_env e;
            assert_int_equal(renc_catalog_get(c, "a", &e), 0);
            assert_false(renc_env_locked(&e));
        }
        renc_free(r.envs);
        renc_free(r.events);
        free_strings(r.strings, r.count);
    }
}

/* Every allocation of the calls that return arrays failing in turn:
 * -RENC_E_NOMEM, nothing kept, nothing changed; then success. */
static void test_catalog_failed_allocations_leave_nothing_behind(void **state)
{
    (void)state;
    const char *const ids[] = {"a", "b", "c", NULL};
    struct renc_catalog *c = open_catalog_with(ids);
    for (int i = 0; ids[i]; i++) {
        assert_int_equal(renc_catalog_set_policy(c, ids[i], RENC_POLICY_BYOK, "local:k", 25,
                                                 NULL),
                         0);
        assert_int_equal(renc_catalog_set_policy(c, ids[i], RENC_POLICY_BYOK, "local:j", 25,
                                                 NULL),
                         0);
    }
    fail_each_allocation(c, list_envs);
    fail_each_allocation(c, history_of_a);
    fail_each_allocation(c, env_keys_of_a);
    fail_each_allocation(c, key_lock_j); /* last: its success locks a */
    renc_alloc_fail_at(1);
    struct renc_catalog *c2 = NULL;
    assert_int_equal(renc_catalog_open(&c2, dir, 0), -RENC_E_NOMEM);
    renc_alloc_fail_at(0);
    renc_catalog_close(c);
}

/* An environment keeps its data root (a container URL); one with a SAS is
 * refused, and a catalog made before the column gets it on open, its
 * environments local. */
static void test_catalog_data_root_is_kept_and_added_to_old_catalogs(void **state)
{
    (void)state;
    struct renc_catalog *c = open_catalog();
    const char *url = "http://127.0.0.1:10000/devstoreaccount1/data";
    assert_int_equal(renc_catalog_create_env_at(c, "cloud", "", MMK, url), 0);
    assert_int_equal(renc_catalog_create_env_at(c, "sas", "", MMK, "az://a/c?sv=1&sig=x"),
                     -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env_at(c, "sp", "", MMK, "az://a/c d"), -RENC_E_INVALID);
    assert_int_equal(renc_catalog_create_env(c, "local", "", MMK), 0);
    struct renc_env e;
    assert_int_equal(renc_catalog_get(c, "cloud", &e), 0);
    assert_string_equal(e.data_root, url);
    assert_int_equal(renc_catalog_get(c, "local", &e), 0);
    assert_string_equal(e.data_root, "");
    assert_int_equal(renc_catalog_get(c, "sas", &e), -RENC_E_ENV_NOT_FOUND);
    renc_catalog_close(c);

    /* The catalog as an older tool made it: no data_root column. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE env DROP COLUMN data_root", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    c = open_catalog();
    assert_int_equal(renc_catalog_get(c, "cloud", &e), 0);
    assert_string_equal(e.data_root, "");
    assert_int_equal(renc_catalog_create_env_at(c, "cloud2", "", MMK, url), 0);
    assert_int_equal(renc_catalog_get(c, "cloud2", &e), 0);
    assert_string_equal(e.data_root, url);
    renc_catalog_close(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_catalog_create_get_and_list_sorted),
        T(test_catalog_refuses_a_taken_id),
        T(test_catalog_refuses_bad_ids_regions_and_refs),
        T(test_catalog_policy_names_parse_both_ways),
        T(test_catalog_set_policy_round_trips_with_history),
        T(test_catalog_cmk_limit_counts_environments_not_calls),
        T(test_catalog_locked_environment_refuses_set_policy),
        T(test_catalog_key_lock_matches_the_key_and_clears_only_its_own),
        T(test_catalog_reset_reverts_to_mmk_and_keeps_history),
        T(test_catalog_note_run_records_the_outcome),
        T(test_catalog_stage_is_recorded_then_ended_with_its_history),
        T(test_catalog_env_keys_latest_first_each_once),
        T(test_catalog_config_defaults_and_settings),
        T(test_catalog_persists_across_close_and_reopen),
        T(test_catalog_data_root_is_kept_and_added_to_old_catalogs),
        T(test_catalog_refuses_a_file_open_to_others),
        T(test_catalog_refuses_files_that_are_not_catalogs),
        T(test_catalog_two_connections_race_for_the_last_cmk_place),
        T(test_catalog_failed_allocations_leave_nothing_behind),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
