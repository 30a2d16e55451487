/* tests/unit/test_entra.c — the Entra token pieces (azure/entra_*.c): the
 * authority's token URL, the client-credentials form, the token cache keyed
 * by (tenant, scope), the federated token file, the certificate's JWT client
 * assertion (decoded and its signature verified here with OpenSSL), and the
 * Azure CLI (its output parser; a child that hangs, fails or is missing).
 * The token requests themselves are tested end to end against the local
 * test double (e2e/test_akv_creds.sh). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "azure/entra_internal.h"
#include "tests/unit/tmpdir.h"

static int setup_entra(void **state)
{
    return setup_tmpdir(state, "/tmp/renc-entra-test.XXXXXX");
}

static void write_file(const char *name, const void *data, size_t len, char *path, size_t max)
{
    snprintf(path, max, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* ---- the token URL and the form ------------------------------------------- */

static void test_entra_token_url_joins_with_one_slash(void **state)
{
    (void)state;
    char url[256];
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://login.microsoftonline.com/",
                                          "t1"), 0);
    assert_string_equal(url, "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://a.example//", "t1"), 0);
    assert_string_equal(url, "https://a.example/t1/oauth2/v2.0/token");
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://a.example:8443", "t-2"), 0);
    assert_string_equal(url, "https://a.example:8443/t-2/oauth2/v2.0/token");
}

static void test_entra_token_url_refuses_bad_input(void **state)
{
    (void)state;
    char url[64];
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://a", ""), -RENC_E_INVALID);
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://a", "t/x"), -RENC_E_INVALID);
    assert_int_equal(renc_entra_token_url(url, sizeof url, "https://a", "t?x"), -RENC_E_INVALID);
    assert_int_equal(renc_entra_token_url(url, sizeof url, "///", "t"), -RENC_E_INVALID);
    assert_int_equal(renc_entra_token_url(url, 20, "https://a.example", "t"), -RENC_E_TOO_BIG);
}

static void test_entra_form_escapes_the_credential(void **state)
{
    (void)state;
    struct renc_key *cred = NULL, *form = NULL;
    const char *text = "a+b/c=d&e";
    assert_int_equal(renc_key_from_bytes(&cred, (const uint8_t *)text, strlen(text) + 1), 0);
    assert_int_equal(renc_entra_form(&form, "app 1", "https://v/.default", cred, 0), 0);
    assert_string_equal((char *)form->bytes,
                        "grant_type=client_credentials&client_id=app%201&scope=https%3A%2F%2Fv%2F."
                        "default&client_secret=a%2Bb%2Fc%3Dd%26e");
    renc_key_free(form);
    assert_int_equal(renc_entra_form(&form, "app", "s", cred, 1), 0);
    assert_non_null(strstr((char *)form->bytes,
                           "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                           "assertion-type%3Ajwt-bearer&client_assertion=a%2Bb%2Fc%3Dd%26e"));
    assert_null(strstr((char *)form->bytes, "client_secret"));
    renc_key_free(form);
    renc_key_free(cred);
}

/* ---- the cache --------------------------------------------------------------- */

static struct renc_key *text_key(const char *s)
{
    struct renc_key *k = NULL;
    assert_int_equal(renc_key_from_bytes(&k, (const uint8_t *)s, strlen(s) + 1), 0);
    return k;
}

static void test_entra_cache_keys_by_tenant_and_scope(void **state)
{
    (void)state;
    struct renc_entra_cache c;
    memset(&c, 0, sizeof c);
    const char *scope = "https://vault.azure.net/.default";
    struct renc_key *got = NULL;
    renc_entra_cache_put(&c, "tenant-a", scope, text_key("token-a"), 1000);
    /* The same scope in another tenant is another token. */
    assert_int_equal(renc_entra_cache_get(&c, "tenant-b", scope, 10, &got), -RENC_E_KEY_NOT_FOUND);
    renc_entra_cache_put(&c, "tenant-b", scope, text_key("token-b"), 1000);
    assert_int_equal(renc_entra_cache_get(&c, "tenant-a", scope, 10, &got), 0);
    assert_string_equal((char *)got->bytes, "token-a");
    renc_key_free(got);
    assert_int_equal(renc_entra_cache_get(&c, "tenant-b", scope, 10, &got), 0);
    assert_string_equal((char *)got->bytes, "token-b");
    /* Dropping tenant-b's token leaves tenant-a's. */
    renc_entra_cache_drop(&c, "tenant-b", scope, got);
    renc_key_free(got);
    assert_int_equal(renc_entra_cache_get(&c, "tenant-b", scope, 10, &got), -RENC_E_KEY_NOT_FOUND);
    assert_int_equal(renc_entra_cache_get(&c, "tenant-a", scope, 10, &got), 0);
    renc_key_free(got);
    /* Past its refresh time a token is not served. */
    assert_int_equal(renc_entra_cache_get(&c, "tenant-a", scope, 1000, &got), -RENC_E_KEY_NOT_FOUND);
    /* A drop of a token that is no longer the cached one does nothing. */
    struct renc_key *old = text_key("token-old");
    renc_entra_cache_drop(&c, "tenant-a", scope, old);
    renc_key_free(old);
    assert_int_equal(renc_entra_cache_get(&c, "tenant-a", scope, 999, &got), 0);
    renc_key_free(got);
    renc_entra_cache_cleanup(&c);
}

/* ---- the federated token file ---------------------------------------------- */

static void test_entra_federated_file_trimmed_and_reread(void **state)
{
    (void)state;
    char path[256], link[300];
    struct renc_key *k = NULL;
    write_file("token", "  eyJhbGciOi.x.y\n", 17, path, sizeof path);
    assert_int_equal(renc_entra_read_federated(path, &k), 0);
    assert_string_equal((char *)k->bytes, "eyJhbGciOi.x.y");
    assert_int_equal(k->len, strlen("eyJhbGciOi.x.y") + 1);
    renc_key_free(k);
    /* Rotated: the next read sees the new content, through a link. */
    write_file("token", "second.token.z", 14, path, sizeof path);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink("token", link), 0);
    assert_int_equal(renc_entra_read_federated(link, &k), 0);
    assert_string_equal((char *)k->bytes, "second.token.z");
    renc_key_free(k);
}

static void test_entra_federated_file_refused(void **state)
{
    (void)state;
    char path[256];
    struct renc_key *k = NULL;
    assert_int_equal(renc_entra_read_federated(dir, &k), -RENC_E_NOT_REGULAR);
    write_file("empty", " \n", 2, path, sizeof path);
    assert_int_equal(renc_entra_read_federated(path, &k), -RENC_E_VAULT_AUTH);
    static char big[RENC_ENTRA_FEDERATED_MAX + 1];
    memset(big, 'a', sizeof big);
    write_file("big", big, sizeof big, path, sizeof path);
    assert_int_equal(renc_entra_read_federated(path, &k), -RENC_E_TOO_BIG);
    write_file("nul", "ab\0cd", 5, path, sizeof path);
    assert_int_equal(renc_entra_read_federated(path, &k), -RENC_E_VAULT_AUTH);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(renc_entra_read_federated(path, &k), -ENOENT);
    assert_null(k);
}

/* ---- the certificate assertion ----------------------------------------------- */

/* A self-signed certificate for key. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* Writes cert + key as PEM to dir/name. */
static void write_pem(const char *name, X509 *x, EVP_PKEY *key, char *path, size_t max)
{
    snprintf(path, max, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(PEM_write_X509(f, x) == 1);
    assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
}

static size_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t max)
{
    char buf[4096];
    assert_true(n + 4 < sizeof buf);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        buf[k++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (k % 4)
        buf[k++] = '=';
    buf[k] = '\0';
    int len = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)k);
    assert_true(len >= 0 && (size_t)len <= max);
    size_t pad = n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0;
    return (size_t)len - pad;
}

static json_t *jwt_part(const char *s, size_t n)
{
    uint8_t buf[2048];
    size_t len = b64url_decode(s, n, buf, sizeof buf);
    json_t *j = json_loadb((const char *)buf, len, 0, NULL);
    assert_non_null(j);
    return j;
}

/* Checks the assertion's header, claims and PS256 signature against x. */
static void check_assertion(const char *jwt, X509 *x, const char *client, const char *aud,
                            int64_t now)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    json_t *h = jwt_part(jwt, (size_t)(d1 - jwt)), *c = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "PS256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    uint8_t *der = NULL, md[32], t[64];
    int dn = i2d_X509(x, &der);
    EVP_Digest(der, (size_t)dn, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    const char *x5t = json_string_value(json_object_get(h, "x5t#S256"));
    assert_non_null(x5t);
    assert_int_equal(b64url_decode(x5t, strlen(x5t), t, sizeof t), 32);
    assert_memory_equal(t, md, 32);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), aud);
    assert_string_equal(json_string_value(json_object_get(c, "iss")), client);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), client);
    assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 36);
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")), now);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), now + 600);
    json_decref(h);
    json_decref(c);
    uint8_t sig[1024];
    size_t sig_len = b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *p = NULL;
    assert_int_equal(EVP_DigestVerifyInit(md_ctx, &p, EVP_sha256(), NULL, X509_get0_pubkey(x)), 1);
    EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(p, 32);
    assert_int_equal(EVP_DigestVerify(md_ctx, sig, sig_len, (const uint8_t *)jwt,
                                      (size_t)(d2 - jwt)), 1);
    /* A flipped byte of the signed text fails. */
    char *bad = strdup(jwt);
    bad[5] ^= 1;
    EVP_DigestVerifyInit(md_ctx, &p, EVP_sha256(), NULL, X509_get0_pubkey(x));
    EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(p, 32);
    assert_int_not_equal(EVP_DigestVerify(md_ctx, sig, sig_len, (const uint8_t *)bad,
                                          (size_t)(d2 - jwt)), 1);
    free(bad);
    EVP_MD_CTX_free(md_ctx);
}

static void test_entra_assertion_pem_ps256(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = make_cert(key);
    char path[256];
    write_pem("app.pem", x, key, path, sizeof path);
    struct renc_entra_cert *c = NULL;
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), 0);
    struct renc_key *a = NULL, *b = NULL;
    const char *aud = "https://login.example/t1/oauth2/v2.0/token";
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(renc_entra_assertion(&a, c, "client-1", aud, now), 0);
    check_assertion((char *)a->bytes, x, "client-1", aud, now);
    /* Each assertion has its own jti. */
    assert_int_equal(renc_entra_assertion(&b, c, "client-1", aud, now), 0);
    assert_string_not_equal((char *)a->bytes, (char *)b->bytes);
    renc_key_free(a);
    renc_key_free(b);
    renc_entra_cert_free(c);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_entra_assertion_pkcs12_password(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = make_cert(key);
    PKCS12 *p12 = PKCS12_create("s3cret pass", "app", key, x, NULL, NID_aes_256_cbc,
                                NID_aes_256_cbc, 2048, 2048, 0);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    char path[256];
    write_file("app.p12", der, (size_t)n, path, sizeof path);
    OPENSSL_free(der);
    PKCS12_free(p12);
    struct renc_key *pw = text_key("s3cret pass"), *wrong = text_key("wrong");
    struct renc_entra_cert *c = NULL;
    assert_int_equal(renc_entra_cert_load(&c, path, wrong), -RENC_E_VAULT_AUTH);
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), -RENC_E_VAULT_AUTH);
    assert_int_equal(renc_entra_cert_load(&c, path, pw), 0);
    struct renc_key *a = NULL;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(renc_entra_assertion(&a, c, "c2", "https://x/t/oauth2/v2.0/token", now), 0);
    check_assertion((char *)a->bytes, x, "c2", "https://x/t/oauth2/v2.0/token", now);
    renc_key_free(a);
    renc_entra_cert_free(c);
    renc_key_free(pw);
    renc_key_free(wrong);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_entra_cert_refused(void **state)
{
    (void)state;
    char path[256];
    struct renc_entra_cert *c = NULL;
    /* The key of another certificate. */
    EVP_PKEY *k1 = EVP_RSA_gen(2048), *k2 = EVP_RSA_gen(2048);
    X509 *x1 = make_cert(k1);
    write_pem("mismatch.pem", x1, k2, path, sizeof path);
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), -RENC_E_VAULT_AUTH);
    /* Not RSA. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    X509 *xe = make_cert(ec);
    write_pem("ec.pem", xe, ec, path, sizeof path);
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), -RENC_E_KEY_TYPE);
    /* A certificate without its key; garbage; a folder. */
    snprintf(path, sizeof path, "%s/nokey.pem", dir);
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, x1);
    fclose(f);
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), -RENC_E_VAULT_AUTH);
    write_file("junk", "not a certificate", 17, path, sizeof path);
    assert_int_equal(renc_entra_cert_load(&c, path, NULL), -RENC_E_VAULT_AUTH);
    assert_int_equal(renc_entra_cert_load(&c, dir, NULL), -RENC_E_NOT_REGULAR);
    assert_null(c);
    X509_free(x1);
    X509_free(xe);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(ec);
}

/* ---- the Azure CLI --------------------------------------------------------------- */

static void test_entra_cli_parse_expires_on(void **state)
{
    (void)state;
    struct renc_key *tok = NULL;
    int64_t at = 0;
    const char *j = "{\"accessToken\":\"eyJ0.abc.def\",\"expiresOn\":\"2030-01-01 00:00:00.000000\","
                    "\"expires_on\":1893456000,\"tokenType\":\"Bearer\"}";
    assert_int_equal(renc_entra_cli_parse(j, strlen(j), &tok, &at), 0);
    assert_string_equal((char *)tok->bytes, "eyJ0.abc.def");
    assert_int_equal(at, 1893456000); /* expires_on wins over expiresOn */
    renc_key_free(tok);
    j = "{\"accessToken\":\"t\",\"expires_on\":\"1893456000\"}";
    assert_int_equal(renc_entra_cli_parse(j, strlen(j), &tok, &at), 0);
    assert_int_equal(at, 1893456000);
    renc_key_free(tok);
}

static void test_entra_cli_parse_local_time(void **state)
{
    (void)state;
    struct renc_key *tok = NULL;
    int64_t at = 0;
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 6, .tm_hour = 13,
                    .tm_min = 45, .tm_sec = 12, .tm_isdst = -1};
    int64_t want = (int64_t)mktime(&tm);
    const char *j = "{\"accessToken\":\"tok\",\"expiresOn\":\"2026-12-06 13:45:12.123456\"}";
    assert_int_equal(renc_entra_cli_parse(j, strlen(j), &tok, &at), 0);
    assert_int_equal(at, want);
    renc_key_free(tok);
    j = "{\"accessToken\":\"tok\",\"expiresOn\":\"2026-12-06 13:45:12\"}";
    assert_int_equal(renc_entra_cli_parse(j, strlen(j), &tok, &at), 0);
    assert_int_equal(at, want);
    renc_key_free(tok);
}

static void test_entra_cli_parse_refuses_bad_output(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "not json", "[]", "{}",
        "{\"accessToken\":\"t\"}",
        "{\"expires_on\":1893456000}",
        "{\"accessToken\":\"\",\"expires_on\":1893456000}",
        "{\"accessToken\":7,\"expires_on\":1893456000}",
        "{\"accessToken\":\"t\",\"expires_on\":-5}",
        "{\"accessToken\":\"t\",\"expires_on\":\"12x\"}",
        "{\"accessToken\":\"t\",\"expires_on\":true}",
        "{\"accessToken\":\"t\",\"expiresOn\":\"2026-13-06 13:45:12\"}",
        "{\"accessToken\":\"t\",\"expiresOn\":\"2026-12-06T13:45:12Z\"}",
        "{\"accessToken\":\"t\",\"expiresOn\":\"2026-12-06 13:45:12.5x\"}",
        "{\"accessToken\":\"a b\",\"expires_on\":1893456000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct renc_key *tok = NULL;
        int64_t at = 0;
        assert_int_equal(renc_entra_cli_parse(bad[i], strlen(bad[i]), &tok, &at), -RENC_E_VAULT_AUTH);
        assert_null(tok);
    }
}

/* An executable script dir/name with body. */
static void write_script(const char *name, const char *body, char *path, size_t max)
{
    write_file(name, body, strlen(body), path, max);
    assert_int_equal(chmod(path, 0700), 0);
}

static void test_entra_cli_child_outcomes(void **state)
{
    (void)state;
    char path[256];
    struct renc_key *tok = NULL;
    int64_t at = 0;
    enum renc_entra_cli_why why;
    write_script("az-ok", "#!/bin/sh\n[ \"$5 $6 $7 $8 $9\" = '--output json --tenant t1 ' ] || exit 3\n"
                          "echo '{\"accessToken\":\"tk\",\"expires_on\":1893456000}'\n",
                 path, sizeof path);
    assert_int_equal(renc_entra_cli_token(path, "https://vault.azure.net", "t1", 10000, &tok, &at,
                                          &why), 0);
    assert_int_equal(why, RENC_CLI_OK);
    assert_string_equal((char *)tok->bytes, "tk");
    renc_key_free(tok);
    tok = NULL;
    write_script("az-out", "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\n"
                           "exit 1\n", path, sizeof path);
    assert_int_equal(renc_entra_cli_token(path, "https://v", NULL, 10000, &tok, &at, &why),
                     -RENC_E_VAULT_AUTH);
    assert_int_equal(why, RENC_CLI_NOT_LOGGED_IN);
    write_script("az-bad", "#!/bin/sh\necho hello\n", path, sizeof path);
    assert_int_equal(renc_entra_cli_token(path, "https://v", NULL, 10000, &tok, &at, &why),
                     -RENC_E_VAULT_AUTH);
    assert_int_equal(why, RENC_CLI_BAD_OUTPUT);
    /* A child that hangs is killed after the timeout, and reaped. */
    write_script("az-hang", "#!/bin/sh\nexec sleep 30\n", path, sizeof path);
    assert_int_equal(renc_entra_cli_token(path, "https://v", NULL, 300, &tok, &at, &why),
                     -RENC_E_VAULT_AUTH);
    assert_int_equal(why, RENC_CLI_TIMEOUT);
    snprintf(path, sizeof path, "%s/no-such-az", dir);
    assert_int_equal(renc_entra_cli_token(path, "https://v", NULL, 1000, &tok, &at, &why),
                     -RENC_E_VAULT_AUTH);
    assert_int_equal(why, RENC_CLI_NOT_FOUND);
    /* A resource or tenant that az would read as an option. */
    assert_int_equal(renc_entra_cli_token(path, "--debug", NULL, 1000, &tok, &at, &why),
                     -RENC_E_INVALID);
    assert_int_equal(renc_entra_cli_token(path, "https://v", "-x", 1000, &tok, &at, &why),
                     -RENC_E_INVALID);
    assert_null(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entra_token_url_joins_with_one_slash),
        cmocka_unit_test(test_entra_token_url_refuses_bad_input),
        cmocka_unit_test_setup_teardown(test_entra_form_escapes_the_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entra_cache_keys_by_tenant_and_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entra_federated_file_trimmed_and_reread, setup_entra,
                                        teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_entra_federated_file_refused, setup_entra,
                                        teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_entra_assertion_pem_ps256, setup_entra,
                                        teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_entra_assertion_pkcs12_password, setup_entra,
                                        teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_entra_cert_refused, setup_entra, teardown_tmpdir),
        cmocka_unit_test(test_entra_cli_parse_expires_on),
        cmocka_unit_test(test_entra_cli_parse_local_time),
        cmocka_unit_test_setup_teardown(test_entra_cli_parse_refuses_bad_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entra_cli_child_outcomes, setup_entra,
                                        teardown_tmpdir),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
