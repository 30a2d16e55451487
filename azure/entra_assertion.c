/* azure/entra_assertion.c — the client certificate credential
 * (docs/KEYVAULT.md, "Credentials"): the certificate and its key from a PEM or PKCS#12
 * file, and the JWT client assertion signed with that key.
 *
 * The form chosen is the one Microsoft's documentation gives today: PS256
 * (RSASSA-PSS with SHA-256) and the header "x5t#S256", the SHA-256
 * thumbprint of the certificate.  (The older RS256 with "x5t", a SHA-1
 * thumbprint, is still accepted by Entra; SHA-1 is not used here.) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/alloc.h"
#include "common/error.h"
#include "azure/entra_internal.h"

#define RENC_CERT_FILE_MAX (1u << 20)
#define RENC_ASSERTION_LIFE_S 600

struct renc_entra_cert {
    EVP_PKEY *key;
    char x5t_s256[64]; /* base64url of the certificate DER's SHA-256 */
};

/* Base64url without padding of len bytes into out (at least 4*len/3+4). */
static void renc_entra_b64url(char *out, const uint8_t *in, size_t len)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* Certificate and key from the file's bytes: PEM when it has a PEM
 * boundary, else PKCS#12 (DER). */
static int renc_entra_parse_cert(const struct renc_key *file, const char *pass, X509 **cert,
                                 EVP_PKEY **key)
{
    int len = (int)file->len - 1; /* without renc_entra_read_file's NUL */
    BIO *bio = BIO_new_mem_buf(file->bytes, len);
    RENC_RETURN_IF(!bio, -RENC_E_NOMEM);
    if (memmem(file->bytes, (size_t)len, "-----BEGIN ", 11)) {
        *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        bio = BIO_new_mem_buf(file->bytes, len);
        *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(pass ? pass : "")) : NULL;
    } else {
        PKCS12 *p12 = d2i_PKCS12_bio(bio, NULL);
        if (p12 && !PKCS12_parse(p12, pass ? pass : "", key, cert, NULL))
            *key = NULL, *cert = NULL;
        PKCS12_free(p12);
    }
    BIO_free(bio);
    if (*cert && *key)
        return 0;
    X509_free(*cert);
    EVP_PKEY_free(*key);
    *cert = NULL;
    *key = NULL;
    return -RENC_E_VAULT_AUTH;
}

/* The key must be RSA and belong to the certificate. */
static int renc_entra_cert_check(struct renc_entra_cert *c, X509 *cert)
{
    if (EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA)
        return -RENC_E_KEY_TYPE;
    if (X509_check_private_key(cert, c->key) != 1)
        return -RENC_E_VAULT_AUTH;
    uint8_t *der = NULL, md[32];
    int n = i2d_X509(cert, &der);
    RENC_RETURN_IF(n <= 0, -RENC_E_CRYPTO);
    int ok = EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    RENC_RETURN_IF(!ok, -RENC_E_CRYPTO);
    renc_entra_b64url(c->x5t_s256, md, sizeof md);
    return 0;
}

int renc_entra_cert_load(struct renc_entra_cert **out, const char *path,
                         const struct renc_key *password)
{
    struct renc_key *file = NULL;
    int rc = renc_entra_read_file(path, RENC_CERT_FILE_MAX, 0, &file);
    if (rc)
        return rc;
    struct renc_entra_cert *c = renc_calloc(1, sizeof *c);
    X509 *cert = NULL;
    if (!c)
        rc = -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_entra_parse_cert(file, password ? (const char *)password->bytes : NULL, &cert,
                                   &c->key);
    renc_key_free(file);
    if (rc == 0)
        rc = renc_entra_cert_check(c, cert);
    X509_free(cert);
    if (rc) {
        renc_entra_cert_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void renc_entra_cert_free(struct renc_entra_cert *c)
{
    if (!c)
        return;
    EVP_PKEY_free(c->key);
    renc_free(c);
}

/* A random (version 4) GUID, as Entra's jti. */
static int renc_entra_guid(char out[37])
{
    uint8_t b[16];
    RENC_RETURN_IF(RAND_bytes(b, sizeof b) != 1, -RENC_E_CRYPTO);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

/* base64url(header) "." base64url(claims), as plain text (nothing secret). */
static int renc_entra_signing_input(char **out, const struct renc_entra_cert *c,
                                    const char *client_id, const char *aud, int64_t now_s)
{
    char jti[37];
    int rc = renc_entra_guid(jti);
    if (rc)
        return rc;
    json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "PS256", "typ", "JWT", "x5t#S256",
                            c->x5t_s256);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "aud", aud, "iss", client_id,
                               "sub", client_id, "jti", jti, "nbf", (json_int_t)now_s, "iat",
                               (json_int_t)now_s, "exp",
                               (json_int_t)(now_s + RENC_ASSERTION_LIFE_S));
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    char *h = hdr ? json_dumps(hdr, flags) : NULL, *p = claims ? json_dumps(claims, flags) : NULL;
    json_decref(hdr);
    json_decref(claims);
    json_free_t free_fn;
    json_get_alloc_funcs(NULL, &free_fn);
    size_t cap = h && p ? 2 * (strlen(h) + strlen(p)) + 8 : 0;
    char *s = cap ? renc_malloc(cap) : NULL;
    if (s) {
        renc_entra_b64url(s, (const uint8_t *)h, strlen(h));
        size_t n = strlen(s);
        s[n++] = '.';
        renc_entra_b64url(s + n, (const uint8_t *)p, strlen(p));
    }
    free_fn(h);
    free_fn(p);
    RENC_RETURN_IF(!s, -RENC_E_NOMEM);
    *out = s;
    return 0;
}

/* RSASSA-PSS SHA-256 (salt = digest length) of msg. */
static int renc_entra_sign(const struct renc_entra_cert *c, const char *msg, uint8_t *sig,
                           size_t *sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->key) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
             EVP_DigestSign(md, sig, sig_len, (const uint8_t *)msg, strlen(msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -RENC_E_CRYPTO;
}

int renc_entra_assertion(struct renc_key **out, const struct renc_entra_cert *c,
                         const char *client_id, const char *token_url, int64_t now_s)
{
    char *input = NULL;
    int rc = renc_entra_signing_input(&input, c, client_id, token_url, now_s);
    if (rc)
        return rc;
    uint8_t sig[1024];
    size_t sig_len = (size_t)EVP_PKEY_get_size(c->key);
    if (sig_len > sizeof sig)
        rc = -RENC_E_KEY_TYPE; /* RSA keys beyond 8192 bits */
    if (rc == 0)
        rc = renc_entra_sign(c, input, sig, &sig_len);
    size_t cap = strlen(input) + 2 + 4 * sizeof sig / 3 + 4;
    struct renc_key *jwt = rc == 0 ? renc_key_new(cap) : NULL;
    if (rc == 0 && !jwt)
        rc = -RENC_E_NOMEM;
    if (rc == 0) {
        char *s = (char *)jwt->bytes;
        size_t n = strlen(input);
        memcpy(s, input, n);
        s[n++] = '.';
        renc_entra_b64url(s + n, sig, sig_len);
        jwt->len = strlen(s) + 1;
        *out = jwt;
    }
    renc_free(input);
    return rc;
}
