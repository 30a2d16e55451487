/* tests/unit/test_rules.c — the restore and copy rules: every branch, with
 * the words of its verdict (the commands print them as they are). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "crypto/header.h"
#include "state/catalog.h"
#include "env/rules.h"

#include "tests/unit/leakcheck.h"

static const uint8_t wrapped[40] = {1, 2, 3};

static struct renc_env env(const char *id, enum renc_policy p, const char *key_ref)
{
    struct renc_env e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", id);
    e.policy = p;
    snprintf(e.key_ref, sizeof e.key_ref, "%s", key_ref);
    return e;
}

/* A backup's header: context env, kind and source-env (each skipped when
 * NULL) and up to three slots. */
static void backup(struct renc_header *h, const char *kind, const char *source_env,
                   const char *ref1, const char *ref2, const char *ref3)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(renc_context_set(&h->ctx, "env", source_env ? source_env : "x"), 0);
    if (kind)
        assert_int_equal(renc_context_set(&h->ctx, "kind", kind), 0);
    if (source_env)
        assert_int_equal(renc_context_set(&h->ctx, "source-env", source_env), 0);
    const char *refs[] = {ref1, ref2, ref3};
    for (int i = 0; i < 3; i++)
        if (refs[i])
            assert_int_equal(renc_header_add_slot(h, 1, refs[i], wrapped, sizeof wrapped), 0);
}

static void expect(const struct renc_verdict_text *v, int rc, const char *reason)
{
    assert_int_equal(v->rc, rc);
    assert_int_equal(v->allowed, rc == 0);
    assert_string_equal(v->reason, reason);
}

/* The restore rule for the backup h (src: its source environment, NULL
 * when gone) into dst must say rc and reason. */
static void expect_restore(const struct renc_header *h, const struct renc_env *src,
                           const struct renc_env *dst, int rc, const char *reason)
{
    struct renc_verdict_text v;
    renc_rule_restore(&v, h, src, dst);
    expect(&v, rc, reason);
}

/* The copy rule from from into to must say rc and reason. */
static void expect_copy(const struct renc_env *from, const struct renc_env *to, int rc,
                        const char *reason)
{
    struct renc_verdict_text v;
    renc_rule_copy(&v, from, to);
    expect(&v, rc, reason);
}

/* ---- restore ---------------------------------------------------------- */

static void test_rules_restore_into_a_locked_target_is_refused(void **state)
{
    (void)state;
    struct renc_header h;
    backup(&h, "backup", "prod", "local:cmk/1", NULL, NULL);
    struct renc_env src = env("prod", RENC_POLICY_CMK, "local:cmk");
    struct renc_env dst = env("prod", RENC_POLICY_CMK, "local:cmk");

    /* Even into its own environment. */
    dst.locked_by_operator = 1;
    expect_restore(&h, &src, &dst, -RENC_E_ENV_LOCKED,
                   "environment prod is locked by the operator, so nothing may be restored "
                   "into it");

    snprintf(dst.key_lock, sizeof dst.key_lock, "key local:cmk revoked");
    expect_restore(&h, &src, &dst, -RENC_E_ENV_LOCKED,
                   "environment prod is locked by the operator and by its key (key local:cmk "
                   "revoked), so nothing may be restored into it");

    dst.locked_by_operator = 0;
    expect_restore(&h, NULL, &dst, -RENC_E_ENV_LOCKED,
                   "environment prod is locked by its key (key local:cmk revoked), so nothing "
                   "may be restored into it");
    renc_header_cleanup(&h);
}

static void test_rules_restore_needs_a_backup(void **state)
{
    (void)state;
    /* The kind and source-env of the file's context (NULL: none), and why
     * it is refused.  A value from the file is quoted without its control
     * characters. */
    static const struct {
        const char *kind, *source_env, *reason;
    } not_backups[] = {
        {"blob", "prod", "the file is not a backup (kind=blob)"},
        {NULL, "prod", "the file is not a backup (kind=none)"},
        {"blob\n\x1b[31mok", "prod", "the file is not a backup (kind=blob??[31mok)"},
        {"backup", NULL, "the backup names no source environment (its context has no source-env)"},
    };
    struct renc_env dst = env("prod", RENC_POLICY_CMK, "local:cmk");
    for (size_t i = 0; i < sizeof not_backups / sizeof not_backups[0]; i++) {
        struct renc_header h;
        backup(&h, not_backups[i].kind, not_backups[i].source_env, "local:cmk/1", NULL, NULL);
        expect_restore(&h, NULL, &dst, -RENC_E_NOT_ALLOWED, not_backups[i].reason);
        renc_header_cleanup(&h);
    }
}

static void test_rules_restore_into_its_own_environment_is_allowed(void **state)
{
    (void)state;
    struct renc_header h;
    /* Whatever the keys: the environment it was taken from, now on mmk. */
    backup(&h, "backup", "prod", "local:old-byok/4", NULL, NULL);
    struct renc_env dst = env("prod", RENC_POLICY_MMK, "local:service-mmk");
    expect_restore(&h, &dst, &dst, 0, "restore into its own environment prod");
    expect_restore(&h, NULL, &dst, 0, "restore into its own environment prod");
    renc_header_cleanup(&h);
}

static void test_rules_restore_elsewhere_needs_a_customer_key(void **state)
{
    (void)state;
    struct renc_header h;
    backup(&h, "backup", "prod", "local:service-mmk/1", NULL, NULL);
    struct renc_env src = env("prod", RENC_POLICY_MMK, "local:service-mmk");
    struct renc_env dst = env("test", RENC_POLICY_MMK, "local:service-mmk");
    expect_restore(&h, &src, &dst, -RENC_E_NOT_ALLOWED,
                   "test uses the service-managed key local:service-mmk, and a backup of prod "
                   "may be restored elsewhere only into an environment with the same customer "
                   "key");
    renc_header_cleanup(&h);
}

static void test_rules_restore_elsewhere_with_the_same_key_is_allowed(void **state)
{
    (void)state;
    struct renc_header h;
    /* Another version of the same key, in the second slot. */
    backup(&h, "backup", "prod", "local:service-mmk/1", "local:cmk/1", NULL);
    struct renc_env src = env("prod", RENC_POLICY_CMK, "local:cmk");
    struct renc_env dst = env("test", RENC_POLICY_CMK, "local:cmk");
    expect_restore(&h, &src, &dst, 0,
                   "the backup of prod is sealed under local:cmk/1, the same customer key as "
                   "test's cmk key local:cmk");
    /* The source environment gone from the catalog: the keys alone decide. */
    dst = env("test", RENC_POLICY_BYOK, "local:cmk");
    expect_restore(&h, NULL, &dst, 0,
                   "the backup of prod is sealed under local:cmk/1, the same customer key as "
                   "test's byok key local:cmk");
    renc_header_cleanup(&h);

    backup(&h, "backup", "prod", "akv:https://v.example/keys/cmk/abc", NULL, NULL);
    dst = env("test", RENC_POLICY_CMK, "akv:https://v.example/keys/cmk");
    struct renc_verdict_text v;
    renc_rule_restore(&v, &h, NULL, &dst);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.allowed, 1);
    renc_header_cleanup(&h);
}

static void test_rules_restore_elsewhere_with_another_key_is_refused(void **state)
{
    (void)state;
    struct renc_header h;
    backup(&h, "backup", "prod", "local:a/1", "local:b/2", NULL);
    struct renc_env src = env("prod", RENC_POLICY_BYOK, "local:b");
    struct renc_env dst = env("test", RENC_POLICY_BYOK, "local:c");
    expect_restore(&h, &src, &dst, -RENC_E_NOT_ALLOWED,
                   "the backup of prod is sealed under local:a/1, local:b/2, not under test's "
                   "byok key local:c (a backup may be restored elsewhere only into an "
                   "environment with the same customer key)");
    renc_header_cleanup(&h);

    /* A key of the same name in another vault is another key. */
    backup(&h, "backup", "prod", "akv:https://one.example/keys/k/1", NULL, NULL);
    dst = env("test", RENC_POLICY_CMK, "akv:https://two.example/keys/k");
    expect_restore(&h, NULL, &dst, -RENC_E_NOT_ALLOWED,
                   "the backup of prod is sealed under akv:https://one.example/keys/k/1, not "
                   "under test's cmk key akv:https://two.example/keys/k (a backup may be "
                   "restored elsewhere only into an environment with the same customer key)");
    renc_header_cleanup(&h);
}

/* ---- copy ------------------------------------------------------------- */

static void test_rules_copy_into_itself_is_refused(void **state)
{
    (void)state;
    struct renc_env a = env("prod", RENC_POLICY_CMK, "local:cmk");
    expect_copy(&a, &a, -RENC_E_NOT_ALLOWED, "environment prod cannot be copied into itself");
}

static void test_rules_copy_with_a_locked_side_is_refused(void **state)
{
    (void)state;
    struct renc_env from = env("prod", RENC_POLICY_CMK, "local:cmk");
    struct renc_env to = env("test", RENC_POLICY_CMK, "local:cmk");
    to.locked_by_operator = 1;
    expect_copy(&from, &to, -RENC_E_ENV_LOCKED,
                "environment test is locked by the operator, so nothing may be copied into it");
    to.locked_by_operator = 0;
    snprintf(from.key_lock, sizeof from.key_lock, "key local:cmk revoked");
    expect_copy(&from, &to, -RENC_E_ENV_LOCKED,
                "environment prod is locked by its key (key local:cmk revoked), so nothing may "
                "be copied from it");
}

static void test_rules_copy_needs_a_customer_key_on_both_sides(void **state)
{
    (void)state;
    struct renc_env from = env("prod", RENC_POLICY_CMK, "local:cmk");
    struct renc_env to = env("test", RENC_POLICY_MMK, "local:service-mmk");
    expect_copy(&from, &to, -RENC_E_NOT_ALLOWED,
                "copy is allowed only into an environment encrypted with the same customer "
                "key; test uses the service-managed key local:service-mmk");

    /* Both on the same service-managed key: still no customer key. */
    from = env("prod", RENC_POLICY_MMK, "local:service-mmk");
    to = env("test", RENC_POLICY_BYOK, "local:service-mmk");
    expect_copy(&from, &to, -RENC_E_NOT_ALLOWED,
                "copy is allowed only from an environment encrypted with a customer key; "
                "prod uses the service-managed key local:service-mmk");
}

static void test_rules_copy_needs_the_same_key(void **state)
{
    (void)state;
    struct renc_env from = env("prod", RENC_POLICY_BYOK, "local:a");
    struct renc_env to = env("test", RENC_POLICY_CMK, "local:b");
    expect_copy(&from, &to, -RENC_E_NOT_ALLOWED,
                "copy is allowed only into an environment encrypted with the same customer "
                "key; prod uses byok local:a and test uses cmk local:b");
}

static void test_rules_copy_with_the_same_key_is_allowed(void **state)
{
    (void)state;
    struct renc_env from = env("prod", RENC_POLICY_BYOK, "local:cmk");
    struct renc_env to = env("test", RENC_POLICY_CMK, "local:cmk");
    expect_copy(&from, &to, 0, "prod and test share the customer key local:cmk");
    from.policy = RENC_POLICY_CMK;
    expect_copy(&to, &from, 0, "test and prod share the customer key local:cmk");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rules_restore_into_a_locked_target_is_refused),
        T(test_rules_restore_needs_a_backup),
        T(test_rules_restore_into_its_own_environment_is_allowed),
        T(test_rules_restore_elsewhere_needs_a_customer_key),
        T(test_rules_restore_elsewhere_with_the_same_key_is_allowed),
        T(test_rules_restore_elsewhere_with_another_key_is_refused),
        T(test_rules_copy_into_itself_is_refused),
        T(test_rules_copy_with_a_locked_side_is_refused),
        T(test_rules_copy_needs_a_customer_key_on_both_sides),
        T(test_rules_copy_needs_the_same_key),
        T(test_rules_copy_with_the_same_key_is_allowed),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
