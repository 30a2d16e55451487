/* tests/unit/test_keyref.c — key references: parsing, and "the same key"
 * (FORMAT.md §5) as the key vault sees it: vault origins compared with
 * case and the default port aside, key names case-blind; local names exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "keys/keyref.h"

static int same(const char *a, const char *b)
{
    struct renc_keyref ra, rb;
    assert_int_equal(renc_keyref_parse(&ra, a), 0);
    assert_int_equal(renc_keyref_parse(&rb, b), 0);
    return renc_keyref_same_key(&ra, &rb);
}

static void test_keyref_same_key_vault_spellings(void **state)
{
    (void)state;
    const char *base = "akv:https://myvault.vault.azure.net/keys/rsak";
    assert_true(same(base, "akv:https://myvault.vault.azure.net/keys/rsak/0a1b"));
    assert_true(same(base, "akv:https://MyVault.Vault.Azure.Net/keys/rsak"));
    assert_true(same(base, "akv:https://myvault.vault.azure.net:443/keys/rsak"));
    assert_true(same(base, "akv:HTTPS://myvault.vault.azure.net/keys/RSAK"));
    assert_false(same(base, "akv:https://myvault.vault.azure.net:8443/keys/rsak"));
    assert_false(same(base, "akv:https://other.vault.azure.net/keys/rsak"));
    assert_false(same(base, "akv:https://myvault.vault.azure.net/keys/rsak2"));
    /* Local key names are file names: exact. */
    assert_true(same("local:kek", "local:kek/2"));
    assert_false(same("local:kek", "local:KEK"));
}

static void test_keyref_same_version(void **state)
{
    (void)state;
    assert_true(renc_keyref_text_same_version(
        "akv:https://v.vault.azure.net/keys/k/0123abcd",
        "akv:https://V.vault.azure.net:443/keys/K/0123ABCD"));
    assert_false(renc_keyref_text_same_version("akv:https://v.vault.azure.net/keys/k/0123abcd",
                                               "akv:https://v.vault.azure.net/keys/k/0123abce"));
    assert_false(renc_keyref_text_same_version("akv:https://v.vault.azure.net/keys/k/1",
                                               "akv:https://v.vault.azure.net/keys/k"));
    assert_false(renc_keyref_text_same_version("local:k/a", "local:k/A"));
    assert_false(renc_keyref_text_same_version("garbage", "local:k/a"));
}

static void test_keyref_parse_keeps_host_spelling(void **state)
{
    (void)state;
    struct renc_keyref r;
    char text[256];
    assert_int_equal(renc_keyref_parse(&r, "akv:HTTPS://MyVault.vault.azure.net:443/keys/K"), 0);
    assert_string_equal(r.vault, "https://MyVault.vault.azure.net:443");
    assert_int_equal(renc_keyref_format(text, sizeof text, &r), 0);
    assert_string_equal(text, "akv:https://MyVault.vault.azure.net:443/keys/K");
    assert_int_equal(renc_keyref_parse(&r, "AKV:https://v/keys/k"), -RENC_E_BAD_KEYREF);
    /* The authority is HOST[:PORT] and nothing else (found by fuzz_keyref:
     * "h:443:443" made two origins of one spelling). */
    static const char *const bad[] = {
        "akv:https://h:443:443/keys/k", "akv:https://u@h/keys/k", "akv:https://h:/keys/k",
        "akv:https://h:1234567/keys/k", "akv:https://h:44a/keys/k", "akv:https://[]/keys/k",
        "akv:https://[::1/keys/k",      "akv:https://h_x/keys/k",  "akv:https://:443/keys/k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(renc_keyref_parse(&r, bad[i]), -RENC_E_BAD_KEYREF);
    assert_int_equal(renc_keyref_parse(&r, "akv:https://[::1]:8443/keys/k"), 0);
    assert_int_equal(renc_keyref_parse(&r, "akv:https://127.0.0.1:8443/keys/k"), 0);
    assert_int_equal(renc_keyref_vault_origin(text, sizeof text, "https://[::1]:443"), 0);
    assert_string_equal(text, "https://[::1]");
    assert_int_equal(renc_keyref_vault_origin(text, sizeof text, "https://H:4430"), 0);
    assert_string_equal(text, "https://h:4430");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyref_same_key_vault_spellings),
        cmocka_unit_test(test_keyref_same_version),
        cmocka_unit_test(test_keyref_parse_keeps_host_spelling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
