/* tests/unit/test_keystore.c — the key-provider table (keys/provider.h)
 * and the keystore's dispatch through it (keys/keystore.h): a ref goes to
 * the provider of its scheme; the registry answers the questions callers
 * ask instead of testing prefixes; a provider the configuration does not
 * open, or a scheme no provider serves, is unsupported; the local
 * provider's table wraps, unwraps, describes, lists and manages keys; an
 * op a provider leaves NULL (the vault's create) is unsupported; a DEK
 * cache hit still asks the provider about the key's state first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "crypto/header.h"
#include "crypto/secmem.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "keys/provider.h"

#include "tests/unit/tmpdir.h"

static struct renc_keyring *kr;
static struct renc_keystore *ks;

/* Per test, in its own folder: a keyring with the AES key ka, and a
 * keystore over it with only the local provider open. */
static int setup_keys(void **state)
{
    if (setup_tmpdir(state, "/tmp/renc-keystore-test.XXXXXX"))
        return -1;
    if (renc_keyring_open(&kr, dir, 1) || renc_keyring_create_key(kr, "ka", RENC_KEK_AES256, 0) ||
        renc_keystore_new(&ks, &(struct renc_provider_config){.keyring = kr}))
        return -1;
    return 0;
}

static int teardown_keys(void **state)
{
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    ks = NULL;
    kr = NULL;
    return teardown_tmpdir(state);
}

static void test_provider_for_text_picks_by_scheme(void **state)
{
    (void)state;
    assert_ptr_equal(renc_provider_for_text("local:ka"), &renc_provider_local);
    assert_ptr_equal(renc_provider_for_text("akv:https://v.example/keys/k"), &renc_provider_akv);
    assert_null(renc_provider_for_text("ka"));
    assert_ptr_equal(renc_provider_for_text("pkcs11:token=t;object=k"), &renc_provider_pkcs11);
    struct renc_keyref r;
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:token=t;object=k"), 0);
    assert_ptr_equal(renc_provider_for(&r), &renc_provider_pkcs11);
    assert_int_equal(renc_keyref_parse(&r, "akv:https://v.example/keys/k/1"), 0);
    assert_ptr_equal(renc_provider_for(&r), &renc_provider_akv);
}

static void test_provider_questions_replace_prefix_tests(void **state)
{
    (void)state;
    assert_true(renc_provider_caps("akv:https://v.example/keys/k") & RENC_PROVIDER_REMOTE);
    assert_true(renc_provider_caps("akv:https://v.example/keys/k") &
                RENC_PROVIDER_HOLDER_GRANTS);
    assert_false(renc_provider_caps("local:ka") & RENC_PROVIDER_REMOTE);
    assert_true(renc_provider_caps("local:ka") & RENC_PROVIDER_KEYRING);
    assert_int_equal(renc_provider_caps("nothing"), 0);
    /* A revocation withdraws access under any provider; a disable only
     * where the holder grants access. */
    assert_true(renc_provider_withdrawn("local:ka/1", -RENC_E_KEY_REVOKED));
    assert_false(renc_provider_withdrawn("local:ka/1", -RENC_E_KEY_DISABLED));
    assert_true(renc_provider_withdrawn("akv:https://v.example/keys/k/1", -RENC_E_KEY_DISABLED));
    assert_false(renc_provider_withdrawn("akv:https://v.example/keys/k/1",
                                         -RENC_E_VAULT_NETWORK));
}

static void test_keystore_refuses_unopened_and_unknown_providers(void **state)
{
    (void)state;
    char out[RENC_MAX_REF_LEN + 1];
    /* The configuration did not ask for remote providers. */
    assert_int_equal(renc_keystore_resolve(ks, out, sizeof out, "akv:https://v.example/keys/k"),
                     -RENC_E_UNSUPPORTED);
    assert_int_equal(renc_keystore_resolve(ks, out, sizeof out, "pkcs11:token=t;object=k"),
                     -RENC_E_UNSUPPORTED);
    assert_int_equal(renc_keystore_resolve(ks, out, sizeof out, "nope:x"), -RENC_E_BAD_KEYREF);
    struct renc_keystore_provider_stats ps[4];
    size_t n = renc_keystore_provider_stats(ks, ps, 4);
    assert_int_equal(n, 1);
    assert_ptr_equal(ps[0].ops, &renc_provider_local);
    assert_int_equal(ps[0].stats.requests, 0);
}

static void test_keystore_wraps_and_unwraps_through_local_table(void **state)
{
    (void)state;
    struct renc_header h;
    struct renc_key *dek = NULL, *back = NULL;
    memset(&h, 0, sizeof h);
    assert_int_equal(renc_key_random(&dek, 32), 0);
    assert_int_equal(renc_keystore_wrap_slot(ks, &h, "local:ka", dek), 0);
    assert_int_equal(h.slot_count, 1);
    assert_string_equal(h.slots[0].ref, "local:ka/1");
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[0], &back), 0);
    assert_memory_equal(back->bytes, dek->bytes, 32);
    renc_key_free(back);
    back = NULL;

    /* A DEK cache hit still asks the provider about the key's state. */
    assert_int_equal(renc_keystore_cache_deks(ks, 16), 0);
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[0], &back), 0);
    renc_key_free(back);
    back = NULL;
    assert_int_equal(renc_keystore_key_set_state(ks, "local:ka/1", RENC_KEY_DISABLED), 0);
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[0], &back), -RENC_E_KEY_DISABLED);
    assert_null(back);
    char v[RENC_MAX_REF_LEN + 1];
    assert_int_equal(renc_keystore_may_wrap(ks, v, sizeof v, "local:ka"), -RENC_E_KEY_DISABLED);
    renc_key_free(dek);
    renc_header_cleanup(&h);
}

struct versions_seen {
    int count;
    char last[RENC_MAX_REF_LEN + 1];
};

static int count_version(void *arg, const struct renc_provider_version *v)
{
    struct versions_seen *s = arg;
    s->count++;
    snprintf(s->last, sizeof s->last, "%s", v->ref);
    return 0;
}

static void test_local_table_manages_and_describes_keys(void **state)
{
    (void)state;
    char v[RENC_MAX_REF_LEN + 1];
    struct renc_provider_version d;
    assert_int_equal(renc_keystore_key_create(ks, "local:kc", RENC_KEK_AES256, 0), 0);
    assert_int_equal(renc_keystore_key_create(ks, "local:kc", RENC_KEK_AES256, 0),
                     -RENC_E_KEY_EXISTS);
    assert_int_equal(renc_keystore_key_rotate(ks, "local:kc", v, sizeof v), 0);
    assert_string_equal(v, "local:kc/2");
    assert_int_equal(renc_keystore_resolve(ks, v, sizeof v, "local:kc"), 0);
    assert_string_equal(v, "local:kc/2");
    struct versions_seen seen = {0};
    assert_int_equal(renc_keystore_list_versions(ks, "local:kc", count_version, &seen), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.last, "local:kc/2");

    assert_int_equal(renc_keystore_key_set_state(ks, "local:kc/1", RENC_KEY_DISABLED), 0);
    assert_int_equal(renc_keystore_describe(ks, "local:kc/1", &d), 0);
    assert_false(d.enabled);
    assert_int_equal(d.may_wrap, -RENC_E_KEY_DISABLED);
    assert_int_equal(renc_keystore_describe(ks, "local:kc", &d), 0);
    assert_string_equal(d.ref, "local:kc/2");
    assert_true(d.enabled);
    assert_int_equal(d.can_unwrap, 0);

    assert_int_equal(renc_keystore_key_set_state(ks, "local:kc", RENC_KEY_REVOKED), 0);
    assert_int_equal(renc_keystore_can_unwrap(ks, "local:kc/2"), -RENC_E_KEY_REVOKED);
    assert_int_equal(renc_keystore_describe(ks, "local:kc/2", &d), 0);
    assert_true(d.revoked);
}

static void test_null_op_is_unsupported(void **state)
{
    (void)state;
    struct renc_keystore *remote = NULL;
    struct renc_provider_config config = {.open_remote = 1, .keyring = kr};
    /* Opening the vault provider contacts nothing. */
    assert_int_equal(renc_keystore_new(&remote, &config), 0);
    assert_null(renc_provider_akv.create);
    assert_non_null(renc_provider_akv.managed_at);
    assert_int_equal(renc_keystore_key_create(remote, "akv:https://127.0.0.1:9/keys/k",
                                              RENC_KEK_AES256, 0),
                     -RENC_E_UNSUPPORTED);
    char v[RENC_MAX_REF_LEN + 1];
    assert_int_equal(renc_keystore_key_rotate(remote, "akv:https://127.0.0.1:9/keys/k", v,
                                              sizeof v),
                     -RENC_E_UNSUPPORTED);
    struct renc_keystore_provider_stats ps[4];
    assert_int_equal(renc_keystore_provider_stats(remote, ps, 4), 3);
    assert_ptr_equal(ps[1].ops, &renc_provider_akv);
    assert_int_equal(ps[1].stats.requests, 0);
    /* Nor does the pkcs11 provider: no module is loaded until a ref is used. */
    assert_ptr_equal(ps[2].ops, &renc_provider_pkcs11);
    assert_int_equal(ps[2].stats.requests, 0);
    renc_keystore_free(remote);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_for_text_picks_by_scheme),
        cmocka_unit_test(test_provider_questions_replace_prefix_tests),
        cmocka_unit_test_setup_teardown(test_keystore_refuses_unopened_and_unknown_providers,
                                        setup_keys, teardown_keys),
        cmocka_unit_test_setup_teardown(test_keystore_wraps_and_unwraps_through_local_table,
                                        setup_keys, teardown_keys),
        cmocka_unit_test_setup_teardown(test_local_table_manages_and_describes_keys, setup_keys,
                                        teardown_keys),
        cmocka_unit_test_setup_teardown(test_null_op_is_unsupported, setup_keys, teardown_keys),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
