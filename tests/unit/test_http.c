/* tests/unit/test_http.c — the pure parts of the HTTP layer: which links
 * count as the same origin (a followed nextLink must), and extra CAs added
 * to the system's trust store rather than replacing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "net/http.h"

static void test_http_same_origin(void **state)
{
    (void)state;
    const char *base = "https://myvault.vault.azure.net";
    /* The service's own nextLink spells the default port out. */
    assert_true(renc_http_same_origin(
        "https://myvault.vault.azure.net:443/keys/k/versions?api-version=7.4&$skiptoken=x", base));
    assert_true(renc_http_same_origin("https://MyVault.Vault.Azure.Net/keys/k/versions", base));
    assert_true(renc_http_same_origin("https://myvault.vault.azure.net/x",
                                      "https://myvault.vault.azure.net:443"));
    assert_true(renc_http_same_origin("https://127.0.0.1:4443/keys/k", "https://127.0.0.1:4443"));
    assert_false(renc_http_same_origin("https://127.0.0.1:4444/keys/k", "https://127.0.0.1:4443"));
    assert_false(renc_http_same_origin("http://myvault.vault.azure.net/keys", base));
    assert_false(renc_http_same_origin("https://evil.example/keys", base));
    assert_false(renc_http_same_origin("https://myvault.vault.azure.net.evil.example/k", base));
    assert_false(renc_http_same_origin("https://myvault.vault.azure.net@evil.example/k", base));
    assert_false(renc_http_same_origin("not a url", base));
}

/* A self-signed certificate as PEM in a temporary file. */
static char *write_test_ca(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"renc test CA",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    static char path[] = "/tmp/renc-test-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return path;
}

static int store_count(X509_STORE *st)
{
    return sk_X509_OBJECT_num(X509_STORE_get0_objects(st));
}

static void test_http_extra_ca_adds(void **state)
{
    (void)state;
    X509_STORE *st = X509_STORE_new();
    assert_non_null(st);
    /* What libcurl loads first: the system bundle, when the machine has it. */
    int system = 0;
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        assert_int_equal(X509_STORE_load_file(st, "/etc/ssl/certs/ca-certificates.crt"), 1);
        system = store_count(st);
        assert_true(system > 0);
    }
    char *ca = write_test_ca();
    assert_int_equal(renc_http_add_cas(st, ca), 0);
    assert_int_equal(store_count(st), system + 1);
    /* Twice is not an error and adds nothing. */
    assert_int_equal(renc_http_add_cas(st, ca), 0);
    assert_int_equal(store_count(st), system + 1);
    unlink(ca);
    assert_int_equal(renc_http_add_cas(st, ca), -RENC_E_INVALID);
    assert_int_equal(renc_http_add_cas(st, "/etc/hostname"), -RENC_E_INVALID);
    X509_STORE_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_same_origin),
        cmocka_unit_test(test_http_extra_ca_adds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
