/* tests/unit/test_pkcs11.c — pkcs11: references (RFC 7512 through p11-kit:
 * the canonical text, the id as the version, what is refused) and the
 * mapping of PKCS#11 return values to the tool's codes.  The provider
 * against a token is tests/e2e/test_pkcs11.sh (SoftHSM2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "keys/keyref.h"
#include "keys/pkcs11.h"
#include "keys/provider.h"

static void test_pkcs11_ref_canonical_and_versioned(void **state)
{
    (void)state;
    struct renc_keyref r, r2;
    char text[RENC_MAX_REF_LEN + 1];
    /* Attribute order, and the case of percent-escapes, are spelling. */
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:object=kek;token=My%20T;id=%0a%FF"), 0);
    assert_int_equal(r.provider, RENC_PROVIDER_PKCS11);
    assert_string_equal(r.name, "kek");
    assert_string_equal(r.version, "0aff");
    assert_string_equal(r.vault, "pkcs11:token=My%20T;object=kek");
    assert_int_equal(renc_keyref_format(text, sizeof text, &r), 0);
    assert_string_equal(text, "pkcs11:token=My%20T;id=%0A%FF;object=kek");
    assert_int_equal(renc_keyref_parse(&r2, "pkcs11:token=My%20T;object=kek"), 0);
    assert_true(renc_keyref_same_key(&r, &r2));
    assert_false(renc_keyref_same_version(&r, &r2));
    assert_int_equal(renc_keyref_parse(&r2, text), 0);
    assert_true(renc_keyref_same_version(&r, &r2));
    /* Another token, another object: another key. */
    assert_int_equal(renc_keyref_parse(&r2, "pkcs11:token=Other;object=kek;id=%0a%ff"), 0);
    assert_false(renc_keyref_same_key(&r, &r2));
    /* The module and the PIN's source are kept; the id goes before them. */
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:token=T;object=k;id=%01?module-path=/m.so"), 0);
    assert_int_equal(renc_keyref_format(text, sizeof text, &r), 0);
    assert_string_equal(text, "pkcs11:token=T;id=%01;object=k?module-path=%2Fm.so");
}

static void test_pkcs11_ref_refuses_unknown_and_secrets(void **state)
{
    (void)state;
    struct renc_keyref r;
    static const char *bad[] = {
        "pkcs11:",                                   /* no token, no object */
        "pkcs11:token=T",                            /* no object */
        "pkcs11:object=k",                           /* no token */
        "pkcs11:token=T;object=k;colour=blue",       /* unknown attribute */
        "pkcs11:token=T;object=k?pin-value=1234",    /* a PIN in a reference */
        "pkcs11:token=T;object=k?vendor-x=1",        /* unknown query */
        "pkcs11:token=T;object=k;type=cert",         /* not a key */
        "pkcs11:token=T;object=k;type=public-key",   /* wraps only; unwraps need the private key */
        "pkcs11:token=T;object=k%00x",               /* NUL in the label */
        "pkcs11:token=T;object=k;id=%zz",            /* bad encoding */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(renc_keyref_parse(&r, bad[i]), -RENC_E_BAD_KEYREF);
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:token=T;object=k;type=secret-key"), 0);
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:token=T;object=k?pin-source=file:/p"), 0);
}

static void test_pkcs11_rv_mapped_and_named(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(renc_p11_rv_error(0x0 /* CKR_OK */), 0);
    assert_int_equal(renc_p11_rv_error(0xA0 /* CKR_PIN_INCORRECT */), -RENC_E_HSM_LOGIN);
    assert_int_equal(renc_p11_rv_error(0x32 /* CKR_DEVICE_REMOVED */), -RENC_E_HSM_TOKEN);
    assert_int_equal(renc_p11_rv_error(0x60 /* CKR_KEY_HANDLE_INVALID */), -RENC_E_KEY_NOT_FOUND);
    assert_int_equal(renc_p11_rv_error(0x68 /* CKR_KEY_FUNCTION_NOT_PERMITTED */),
                     -RENC_E_KEY_DISABLED);
    assert_int_equal(renc_p11_rv_error(0x70 /* CKR_MECHANISM_INVALID */), -RENC_E_KEY_TYPE);
    assert_int_equal(renc_p11_rv_error(0x110 /* CKR_WRAPPED_KEY_INVALID */), -RENC_E_UNWRAP);
    assert_int_equal(renc_p11_rv_error(0x6 /* CKR_FUNCTION_FAILED */), -RENC_E_HSM);
    assert_string_equal(renc_p11_rv_name(0xA0, buf, sizeof buf), "CKR_PIN_INCORRECT");
    assert_string_equal(renc_p11_rv_name(0x32, buf, sizeof buf), "CKR_DEVICE_REMOVED");
    assert_string_equal(renc_p11_rv_name(0x12345, buf, sizeof buf), "CKR_0x12345");
}

static void test_pkcs11_provider_without_module_says_so(void **state)
{
    (void)state;
    struct renc_provider_config config = {.open_remote = 1};
    void *p = NULL;
    struct renc_keyref r;
    char v[RENC_MAX_REF_LEN + 1];
    assert_int_equal(renc_provider_pkcs11.open(&p, &config), 0);
    assert_non_null(p);
    assert_int_equal(renc_keyref_parse(&r, "pkcs11:token=T;object=k"), 0);
    assert_int_equal(renc_provider_pkcs11.resolve(p, &r, v, sizeof v), -RENC_E_HSM_MODULE);
    config.pkcs11.module = "/nonexistent/libnothing.so";
    renc_provider_pkcs11.close(p);
    assert_int_equal(renc_provider_pkcs11.open(&p, &config), 0);
    assert_int_equal(renc_provider_pkcs11.resolve(p, &r, v, sizeof v), -RENC_E_HSM_MODULE);
    renc_provider_pkcs11.close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcs11_ref_canonical_and_versioned),
        cmocka_unit_test(test_pkcs11_ref_refuses_unknown_and_secrets),
        cmocka_unit_test(test_pkcs11_rv_mapped_and_named),
        cmocka_unit_test(test_pkcs11_provider_without_module_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
