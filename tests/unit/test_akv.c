/* tests/unit/test_akv.c — the pure parts of the akv provider: the 401
 * challenge and its domain check (azure/challenge.c), the mapping of vault
 * errors to the domain's, KeyBundle parsing (type, size, attributes,
 * key_ops, the kid naming the key asked for), and base64url.  The provider's requests are
 * tested end to end against the local test double (e2e/test_akv*.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "azure/challenge.h"
#include "keys/akv_internal.h"

static void test_challenge_resource(void **state)
{
    (void)state;
    struct renc_azure_challenge c;
    const char *h = "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1\", "
                    "resource=\"https://vault.azure.net\"";
    assert_int_equal(renc_azure_parse_challenge(h, "myvault.vault.azure.net", &c), 0);
    assert_string_equal(c.tenant, "72f988bf-86f1");
    assert_string_equal(c.scope, "https://vault.azure.net/.default");
    assert_string_equal(c.resource, "https://vault.azure.net");
    /* The same host is its own domain (the local test double). */
    h = "Bearer authorization=\"https://127.0.0.1:4443/t1/\", resource=\"https://127.0.0.1\"";
    assert_int_equal(renc_azure_parse_challenge(h, "127.0.0.1", &c), 0);
    assert_string_equal(c.tenant, "t1");
}

static void test_challenge_variants(void **state)
{
    (void)state;
    struct renc_azure_challenge c;
    /* authorization_uri and scope, unquoted order swapped. */
    const char *h = "Bearer scope=\"https://managedhsm.azure.net/.default\", "
                    "authorization_uri=\"https://login.microsoftonline.com/tid\"";
    assert_int_equal(renc_azure_parse_challenge(h, "myhsm.managedhsm.azure.net", &c), 0);
    assert_string_equal(c.tenant, "tid");
    assert_string_equal(c.scope, "https://managedhsm.azure.net/.default");
    assert_string_equal(c.resource, "https://managedhsm.azure.net");
}

static void test_challenge_refused(void **state)
{
    (void)state;
    struct renc_azure_challenge c;
    const char *other = "Bearer authorization=\"https://login.example/t\", "
                        "resource=\"https://vault.example.net\"";
    assert_int_equal(renc_azure_parse_challenge(other, "myvault.vault.azure.net", &c),
                     -RENC_E_VAULT_AUTH);
    assert_int_equal(c.foreign, 1);
    /* A suffix that is not a parent domain. */
    const char *tail = "Bearer authorization=\"https://l/t\", resource=\"https://azure.net\"";
    assert_int_equal(renc_azure_parse_challenge(tail, "evilazure.net", &c), -RENC_E_VAULT_AUTH);
    assert_int_equal(c.foreign, 1);
    /* A parent of the resource is not enough either. */
    const char *deeper = "Bearer authorization=\"https://l/t\", "
                         "resource=\"https://x.vault.azure.net\"";
    assert_int_equal(renc_azure_parse_challenge(deeper, "vault.azure.net", &c), -RENC_E_VAULT_AUTH);
    const char *const bad[] = {
        "Basic realm=\"x\"",
        "Bearer resource=\"https://vault.azure.net\"",                 /* no authority */
        "Bearer authorization=\"https://login.microsoftonline.com/t\"", /* no resource */
        "Bearer authorization=\"https://login.microsoftonline.com\", resource=\"https://vault.azure.net\"",
        "Bearer authorization=\"\", resource=\"https://vault.azure.net\"",
        "Bearer authorization=\"https://l/t\", resource=\"vault.azure.net\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(renc_azure_parse_challenge(bad[i], "myvault.vault.azure.net", &c),
                         -RENC_E_VAULT_AUTH);
}

static int map(const char *op, long status, const char *body, int validity)
{
    return renc_akv_map_error(op, status, body, strlen(body), validity, NULL, 0);
}

static void test_error_mapping(void **state)
{
    (void)state;
    const char *policy = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"The user ... does not "
                         "have keys unwrapKey permission\",\"innererror\":{\"code\":"
                         "\"ForbiddenByPolicy\"}}}";
    const char *disabled = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation unwrapKey "
                           "is not allowed on a disabled key.\",\"innererror\":{\"code\":"
                           "\"KeyDisabled\"}}}";
    const char *ops = "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":\"x\","
                      "\"innererror\":{\"code\":\"KeyOperationForbidden\"}}}}";
    const char *plain403 = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"m\"}}";
    assert_int_equal(map("unwrapkey", 403, policy, 0), -RENC_E_KEY_REVOKED);
    assert_int_equal(map("unwrapkey", 403, disabled, 0), -RENC_E_KEY_DISABLED);
    assert_int_equal(map("wrapkey", 403, ops, 0), -RENC_E_KEY_OP); /* nested innererror */
    assert_int_equal(map("wrapkey", 403, plain403, 1), -RENC_E_KEY_EXPIRED);
    assert_int_equal(map("wrapkey", 403, plain403, 0), -RENC_E_KEY_REVOKED);
    assert_int_equal(map("unwrapkey", 403, plain403, 1), -RENC_E_KEY_REVOKED);
    /* A key the vault does not have is deleted (or never was): key-wide. */
    assert_int_equal(map("get", 404, "{\"error\":{\"code\":\"KeyNotFound\"}}", 0),
                     -RENC_E_KEY_DELETED);
    assert_int_equal(map("unwrapkey", 404, "{\"error\":{\"code\":\"KeyNotFound\"}}", 0),
                     -RENC_E_KEY_DELETED);
    assert_int_equal(map("get", 404, "{\"error\":{\"code\":\"NotFound\"}}", 0),
                     -RENC_E_KEY_NOT_FOUND);
    assert_int_equal(map("unwrapkey", 400, "{\"error\":{\"code\":\"BadParameter\"}}", 0),
                     -RENC_E_UNWRAP);
    assert_int_equal(map("wrapkey", 400, "{\"error\":{\"code\":\"BadParameter\"}}", 0),
                     -RENC_E_VAULT);
    assert_int_equal(map("get", 409, "not json at all", 0), -RENC_E_VAULT);
    assert_int_equal(map("get", 403, "", 0), -RENC_E_KEY_REVOKED);
    char code[64];
    renc_akv_map_error("unwrapkey", 403, policy, strlen(policy), 0, code, sizeof code);
    assert_string_equal(code, "Forbidden/ForbiddenByPolicy");
}

/* A network rule refuses the operator's machine, not the key: never taken
 * as a revocation (which would lock environments). */
static void test_error_mapping_network(void **state)
{
    (void)state;
    const char *firewall = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Client address "
                           "is not authorized and caller is not a trusted service.\\r\\nClient "
                           "address: 10.0.0.1\",\"innererror\":{\"code\":\"ForbiddenByFirewall\"}}}";
    const char *link = "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
                       "\"ForbiddenByConnection\"}}}";
    const char *rbac = "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
                       "\"ForbiddenByRbac\"}}}";
    const char *unknown = "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
                          "\"SomethingNew\"}}}";
    for (int i = 0; i < 3; i++) {
        const char *op = i == 0 ? "get" : i == 1 ? "wrapkey" : "unwrapkey";
        assert_int_equal(map(op, 403, firewall, 1), -RENC_E_VAULT_DENIED);
        assert_int_equal(map(op, 403, link, 0), -RENC_E_VAULT_DENIED);
        assert_int_equal(map(op, 403, rbac, 0), -RENC_E_KEY_REVOKED);
        assert_int_equal(map(op, 403, unknown, 0), -RENC_E_VAULT_DENIED);
    }
    char code[64];
    renc_akv_map_error("get", 403, firewall, strlen(firewall), 0, code, sizeof code);
    assert_string_equal(code, "Forbidden/ForbiddenByFirewall");
}

static void test_mhsm_host(void **state)
{
    (void)state;
    assert_true(renc_akv_is_mhsm_host("contoso.managedhsm.azure.net"));
    assert_true(renc_akv_is_mhsm_host("c.ManagedHSM.azure.cn"));
    assert_false(renc_akv_is_mhsm_host("managedhsm.azure.net"));
    assert_false(renc_akv_is_mhsm_host("contoso.vault.azure.net"));
    assert_false(renc_akv_is_mhsm_host("127.0.0.1"));
}

/* Wrapping is the client's check: the vault wraps under a disabled key. */
static void test_wrap_allowed(void **state)
{
    (void)state;
    struct renc_akv_key k;
    memset(&k, 0, sizeof k);
    k.enabled = 1;
    assert_int_equal(renc_akv_wrap_allowed(&k), 0);
    k.enabled = 0;
    assert_int_equal(renc_akv_wrap_allowed(&k), -RENC_E_KEY_DISABLED);
    k.enabled = 1;
    k.exp = 1000;
    assert_int_equal(renc_akv_wrap_allowed(&k), -RENC_E_KEY_EXPIRED);
    k.exp = 0;
    k.nbf = (int64_t)1 << 40;
    assert_int_equal(renc_akv_wrap_allowed(&k), -RENC_E_KEY_EXPIRED);
}

static void test_key_bundle(void **state)
{
    (void)state;
    struct renc_keyref asked;
    struct renc_akv_key k;
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://v.vault.azure.net/keys/kek1"), 0);
    /* n of 256 bytes (RSA-2048), base64url: 342 characters ('A's decode to zero
     * bytes, which is fine for the size). */
    char n[400];
    memset(n, 'A', 342);
    n[0] = 'x';
    n[342] = '\0';
    char body[1024];
    snprintf(body, sizeof body,
             "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/kek1/78deebed173b48e48f55abf87ed4cf71\","
             "\"kty\":\"RSA-HSM\",\"key_ops\":[\"unwrapKey\",\"decrypt\"],\"n\":\"%s\",\"e\":\"AQAB\"},"
             "\"attributes\":{\"enabled\":false,\"nbf\":1700000000,\"exp\":1900000000}}",
             n);
    assert_int_equal(renc_akv_parse_key_json(&asked, body, strlen(body), &k), 0);
    assert_string_equal(k.ref, "akv:https://v.vault.azure.net/keys/kek1/78deebed173b48e48f55abf87ed4cf71");
    assert_int_equal(k.kty, RENC_AKV_RSA);
    assert_int_equal(k.hsm, 1);
    assert_int_equal(k.bits, 2048);
    assert_int_equal(k.enabled, 0);
    assert_int_equal(k.nbf, 1700000000);
    assert_int_equal(k.exp, 1900000000);
    assert_int_equal(k.ops, RENC_AKV_OP_UNWRAP);
    assert_int_equal(renc_akv_default_alg(&k), 2);
    assert_true(renc_akv_alg_fits(&k, 3));
    assert_false(renc_akv_alg_fits(&k, 4));
    assert_int_equal(renc_akv_documented_limit(k.kty, k.hsm, k.bits), 2000);

    const char *oct = "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/kek1/01\",\"kty\":\"oct-HSM\"},"
                      "\"attributes\":{\"enabled\":true}}";
    assert_int_equal(renc_akv_parse_key_json(&asked, oct, strlen(oct), &k), 0);
    assert_int_equal(k.kty, RENC_AKV_OCT);
    assert_int_equal(k.ops, RENC_AKV_OP_WRAP | RENC_AKV_OP_UNWRAP); /* no key_ops: all */
    assert_int_equal(renc_akv_default_alg(&k), 4);

    const char *ec = "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/kek1/01\",\"kty\":\"EC\"}}";
    assert_int_equal(renc_akv_parse_key_json(&asked, ec, strlen(ec), &k), -RENC_E_KEY_TYPE);
    /* An answer about another key, another vault, or without a version. */
    const char *const wrong[] = {
        "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/other/01\",\"kty\":\"oct\"}}",
        "{\"key\":{\"kid\":\"https://w.vault.azure.net/keys/kek1/01\",\"kty\":\"oct\"}}",
        "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/kek1\",\"kty\":\"oct\"}}",
        "{\"key\":{\"kty\":\"oct\"}}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        assert_int_equal(renc_akv_parse_key_json(&asked, wrong[i], strlen(wrong[i]), &k),
                         -RENC_E_VAULT);
    /* Asked for one version: an answer with another is refused. */
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://v.vault.azure.net/keys/kek1/02"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, oct, strlen(oct), &k), -RENC_E_VAULT);
}

/* The service answers with the name as the key was created and without
 * an explicit default port: the same key as the one asked for. */
static void test_key_bundle_spelling(void **state)
{
    (void)state;
    struct renc_keyref asked;
    struct renc_akv_key k;
    const char *b = "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/rsak/"
                    "0123456789abcdef0123456789abcdef\",\"kty\":\"RSA\",\"n\":\"AQAB\"},"
                    "\"attributes\":{\"enabled\":true}}";
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://V.Vault.Azure.NET:443/keys/RSAK"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, b, strlen(b), &k), 0);
    assert_string_equal(k.ref, "akv:https://v.vault.azure.net/keys/rsak/"
                               "0123456789abcdef0123456789abcdef");
    assert_int_equal(renc_keyref_parse(&asked, "akv:HTTPS://v.vault.azure.net/keys/rsak/"
                                               "0123456789ABCDEF0123456789ABCDEF"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, b, strlen(b), &k), 0);
    /* Another key, another vault or another port is not. */
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://v.vault.azure.net/keys/rsak2"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, b, strlen(b), &k), -RENC_E_VAULT);
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://v.vault.azure.net:8443/keys/rsak"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, b, strlen(b), &k), -RENC_E_VAULT);
    assert_int_equal(renc_keyref_parse(&asked, "akv:https://w.vault.azure.net/keys/rsak"), 0);
    assert_int_equal(renc_akv_parse_key_json(&asked, b, strlen(b), &k), -RENC_E_VAULT);
}

static void test_b64url(void **state)
{
    (void)state;
    uint8_t in[40], out[64];
    char text[128];
    size_t len;
    for (size_t n = 0; n <= sizeof in; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)(i * 37 + 250);
        assert_int_equal(renc_b64url_encode(text, sizeof text, in, n), 0);
        assert_null(strpbrk(text, "+/="));
        assert_int_equal(renc_b64url_decode(out, sizeof out, &len, text), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
    }
    /* Padding accepted; the standard alphabet and stray bytes refused. */
    assert_int_equal(renc_b64url_decode(out, sizeof out, &len, "AQAB"), 0);
    assert_int_equal(len, 3);
    assert_int_equal(renc_b64url_decode(out, sizeof out, &len, "AQ=="), 0);
    assert_int_equal(len, 1);
    assert_int_equal(renc_b64url_decode(out, sizeof out, &len, "a+b/"), -RENC_E_VAULT);
    assert_int_equal(renc_b64url_decode(out, sizeof out, &len, "abcde"), -RENC_E_VAULT);
    assert_int_equal(renc_b64url_decode(out, sizeof out, &len, "ab cd"), -RENC_E_VAULT);
    assert_int_equal(renc_b64url_decode(out, 2, &len, "AQAB"), -RENC_E_TOO_BIG);
    assert_int_equal(renc_b64url_encode(text, 4, in, 3), -RENC_E_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_resource), cmocka_unit_test(test_challenge_variants),
        cmocka_unit_test(test_challenge_refused),  cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_key_bundle),         cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_error_mapping_network), cmocka_unit_test(test_mhsm_host),
        cmocka_unit_test(test_wrap_allowed),       cmocka_unit_test(test_key_bundle_spelling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
