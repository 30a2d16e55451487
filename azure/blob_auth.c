/* azure/blob_auth.c — the account, its credential (azure/blob.h, "the
 * account and its credential") and SharedKey signing (../shared/PROTOCOLS.md
 * 3.2).  The decoded account key and a SAS live in secure memory
 * (crypto/secmem.h) and are wiped with the account. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

/* Base64 text to bytes in secure memory; -RENC_E_INVALID when it is not. */
static int renc_blob_decode_key(struct renc_key **out, const char *b64, size_t n)
{
    RENC_RETURN_IF(n == 0 || n % 4 || n > 4096, -RENC_E_INVALID);
    struct renc_key *k = renc_key_new(n / 4 * 3);
    RENC_RETURN_IF(!k, -RENC_E_NOMEM);
    int got = EVP_DecodeBlock(k->bytes, (const unsigned char *)b64, (int)n);
    if (got < 0) {
        renc_key_free(k);
        return -RENC_E_INVALID;
    }
    size_t pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
    k->len = (size_t)got - pad;
    *out = k;
    return 0;
}

int renc_blob_shared_key_sign(const char *key_b64, const char *string_to_sign, char *out,
                              size_t max)
{
    struct renc_key *k = NULL;
    int rc = renc_blob_decode_key(&k, key_b64, strlen(key_b64));
    RENC_RETURN_IF(rc, rc);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    rc = HMAC(EVP_sha256(), k->bytes, (int)k->len, (const unsigned char *)string_to_sign,
              strlen(string_to_sign), md, &mdlen)
             ? 0
             : -RENC_E_INVALID;
    renc_key_free(k);
    if (!rc && max < 4 * ((mdlen + 2) / 3) + 1)
        rc = -RENC_E_TOO_BIG;
    if (!rc)
        EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    renc_secmem_wipe(md, sizeof md);
    return rc;
}

int renc_blob_authorization(const struct renc_blob_account *a, const char *string_to_sign,
                            char *out, size_t max)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    RENC_RETURN_IF(!a->key, -RENC_E_INVALID);
    RENC_RETURN_IF(!HMAC(EVP_sha256(), a->key->bytes, (int)a->key->len,
                         (const unsigned char *)string_to_sign, strlen(string_to_sign), md,
                         &mdlen),
                   -RENC_E_INVALID);
    char sig[64];
    EVP_EncodeBlock((unsigned char *)sig, md, (int)mdlen);
    int n = snprintf(out, max, "SharedKey %s:%s", a->account, sig);
    renc_secmem_wipe(md, sizeof md);
    RENC_RETURN_IF(n < 0 || (size_t)n >= max, -RENC_E_TOO_BIG);
    return 0;
}

/* ---- choosing the credential ---------------------------------------------- */

static int renc_blob_use_key(struct renc_blob_account *a, const char *b64, size_t n)
{
    int rc = renc_blob_decode_key(&a->key, b64, n);
    if (!rc)
        a->auth = RENC_BLOB_AUTH_SHARED_KEY;
    return rc;
}

static int renc_blob_use_sas(struct renc_blob_account *a, const char *sas, size_t n)
{
    if (n && sas[0] == '?') {
        sas++;
        n--;
    }
    RENC_RETURN_IF(n == 0, -RENC_E_INVALID);
    a->sas = renc_key_new(n + 1);
    RENC_RETURN_IF(!a->sas, -RENC_E_NOMEM);
    memcpy(a->sas->bytes, sas, n);
    a->sas->len = n; /* NUL-terminated inside the allocation */
    a->auth = RENC_BLOB_AUTH_SAS;
    return 0;
}

/* 2: the connection string, when its account is loc's. */
static int renc_blob_from_connstr(struct renc_blob_account *a, const char *s, char *why,
                                  size_t why_max)
{
    struct renc_blob_connstr cs;
    int rc = renc_blob_connstr_parse(&cs, s, why, why_max);
    RENC_RETURN_IF(rc, rc);
    if (cs.account && strcasecmp(cs.account, a->account) != 0) {
        renc_blob_connstr_cleanup(&cs);
        return 0;
    }
    if (cs.key) {
        rc = renc_blob_use_key(a, (const char *)cs.key->bytes, cs.key->len);
        if (rc && why)
            snprintf(why, why_max, "the connection string's AccountKey is not base64");
    } else if (cs.sas) {
        rc = renc_blob_use_sas(a, (const char *)cs.sas->bytes, cs.sas->len);
    }
    renc_blob_connstr_cleanup(&cs);
    return rc;
}

static int renc_blob_choose(struct renc_blob_account *a, const struct renc_blob_location *loc,
                            const struct renc_blob_account_opts *o, char *why, size_t why_max)
{
    if (loc->sas)
        return renc_blob_use_sas(a, loc->sas, strlen(loc->sas));
    int rc = 0;
    if (o->connection_string && o->connection_string[0])
        rc = renc_blob_from_connstr(a, o->connection_string, why, why_max);
    if (rc || a->auth)
        return rc;
    if (o->account_name && o->account_key && strcasecmp(o->account_name, a->account) == 0) {
        rc = renc_blob_use_key(a, o->account_key, strlen(o->account_key));
        if (rc && why)
            snprintf(why, why_max, "AZURE_STORAGE_KEY is not base64");
        return rc;
    }
    if (o->sas_token && o->sas_token[0])
        return renc_blob_use_sas(a, o->sas_token, strlen(o->sas_token));
    if (o->entra) {
        struct renc_azure_token_hooks h = {
            .name = "blob", .retry = &a->retry, .note = o->note, .note_arg = o->note_arg};
        rc = renc_azure_tokens_new(&a->tokens, o->entra, &h);
        if (!rc && o->entra->tenant && !(a->tenant = renc_strdup(o->entra->tenant)))
            rc = -RENC_E_NOMEM;
        if (!rc)
            a->auth = RENC_BLOB_AUTH_ENTRA;
        return rc;
    }
    if (why)
        snprintf(why, why_max,
                 "no credential for account %s: looked at a SAS in the URL, "
                 "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY, "
                 "AZURE_STORAGE_SAS_TOKEN and Microsoft Entra",
                 a->account);
    return -RENC_E_STORE_AUTH;
}

int renc_blob_account_new(struct renc_blob_account **out, const struct renc_blob_location *loc,
                          const struct renc_blob_account_opts *o, char *why, size_t why_max)
{
    *out = NULL;
    if (why && why_max)
        why[0] = '\0';
    struct renc_blob_account *a = renc_calloc(1, sizeof *a);
    RENC_RETURN_IF(!a, -RENC_E_NOMEM);
    struct renc_retry_options ro = {
        .name = "blob", .retries = o->retries, .note = o->note, .note_arg = o->note_arg};
    renc_retry_init(&a->retry, &ro);
    a->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
    int rc = renc_url_split(&a->ep, loc->endpoint);
    if (!rc && !(a->account = renc_strdup(loc->account)))
        rc = -RENC_E_NOMEM;
    if (!rc && o->ca_file && !(a->ca_file = renc_strdup(o->ca_file)))
        rc = -RENC_E_NOMEM;
    if (!rc && strcmp(a->ep.path, "/") == 0)
        a->ep.path[0] = '\0'; /* requests append "/CONTAINER" */
    if (!rc)
        rc = renc_blob_choose(a, loc, o, why, why_max);
    if (rc) {
        renc_blob_account_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void renc_blob_account_free(struct renc_blob_account *a)
{
    if (!a)
        return;
    renc_azure_tokens_free(a->tokens);
    renc_key_free(a->key);
    renc_key_free(a->sas);
    renc_retry_cleanup(&a->retry);
    renc_url_cleanup(&a->ep);
    renc_free(a->account);
    renc_free(a->tenant);
    renc_free(a->ca_file);
    renc_free(a);
}

enum renc_blob_auth renc_blob_account_auth(const struct renc_blob_account *a)
{
    return a->auth;
}

void renc_blob_account_stats(struct renc_blob_account *a, struct renc_retry_stats *st)
{
    renc_retry_stats(&a->retry, st);
}
