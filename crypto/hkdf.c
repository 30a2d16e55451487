/* crypto/hkdf.c — HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF "HKDF",
 * and the RENC v1 key schedule (FORMAT.md §1).
 */
#include "crypto/hkdf.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "common/error.h"

#define RENC_SHA256_LEN 32

/* The info strings of FORMAT.md §1: ASCII, no terminator. */
static const uint8_t renc_info_data[] = { 'r', 'e', 'n', 'c', ' ', 'v', '1', ' ',
                                          'd', 'a', 't', 'a' };
static const uint8_t renc_info_hdr[] = { 'r', 'e', 'n', 'c', ' ', 'v', '1', ' ',
                                         'h', 'e', 'a', 'd', 'e', 'r' };

/* Fetched once for the process: a fetch takes a lock and a method-store
 * lookup, and derive runs once per blob.  Never freed (it lives as long as
 * the process). */
static pthread_once_t renc_hkdf_once = PTHREAD_ONCE_INIT;
static EVP_KDF *renc_hkdf_kdf;

static void renc_hkdf_fetch(void)
{
    renc_hkdf_kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
}

/* One HKDF step (extract-only or expand-only) into out.  OpenSSL copies key,
 * salt and info into its context and clears them when it is freed. */
static int renc_hkdf_run(int mode, uint8_t *out, size_t out_len,
                         const uint8_t *key, size_t key_len,
                         const uint8_t *salt, size_t salt_len,
                         const uint8_t *info, size_t info_len)
{
    /* OSSL_PARAM wants non-const pointers and, for empty strings, some valid
     * address rather than NULL. */
    static const uint8_t empty[1];
    char digest[] = "SHA256";
    OSSL_PARAM params[6];
    size_t n = 0;

    if (pthread_once(&renc_hkdf_once, renc_hkdf_fetch) != 0 || !renc_hkdf_kdf)
        return -RENC_E_CRYPTO;

    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                    (void *)(key_len ? key : empty), key_len);
    if (salt)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)(salt_len ? salt : empty),
                                                        salt_len);
    if (info)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        (void *)(info_len ? info : empty),
                                                        info_len);
    params[n] = OSSL_PARAM_construct_end();

    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(renc_hkdf_kdf);
    if (!kctx)
        return -RENC_E_NOMEM;
    int ok = EVP_KDF_derive(kctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(kctx);
    if (!ok) {
        OPENSSL_cleanse(out, out_len);
        ERR_clear_error();
        return -RENC_E_CRYPTO;
    }
    return 0;
}

int renc_hkdf_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len)
{
    RENC_RETURN_IF(!prk || (!salt && salt_len) || (!ikm && ikm_len), -RENC_E_INVALID);

    /* Computed into a temporary so prk is written only on success.  An empty
     * salt is HMAC with an empty key, which RFC 5869 §2.2 defines as equal to
     * HashLen zero bytes (HMAC zero-pads short keys). */
    uint8_t tmp[RENC_SHA256_LEN];
    static const uint8_t empty[1];
    int rc = renc_hkdf_run(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, tmp, sizeof(tmp), ikm, ikm_len,
                           salt ? salt : empty, salt_len, NULL, 0);
    if (rc == 0)
        memcpy(prk, tmp, sizeof(tmp));
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}

int renc_hkdf_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                     const uint8_t *info, size_t info_len)
{
    RENC_RETURN_IF(!out || out_len == 0 || !prk || prk_len == 0 || (!info && info_len),
                   -RENC_E_INVALID);
    /* RFC 5869 §2.3: L <= 255*HashLen (the block counter is one byte). */
    RENC_RETURN_IF(out_len > 255 * RENC_SHA256_LEN, -RENC_E_TOO_BIG);

    static const uint8_t empty[1];
    /* On failure renc_hkdf_run wipes out: no partial key is left behind. */
    return renc_hkdf_run(EVP_KDF_HKDF_MODE_EXPAND_ONLY, out, out_len, prk, prk_len, NULL, 0,
                         info ? info : empty, info_len);
}

int renc_blob_keys_derive(struct renc_blob_keys *out, const struct renc_key *dek,
                          const uint8_t salt[32])
{
    RENC_RETURN_IF(!out, -RENC_E_INVALID);
    out->k_data = NULL;
    out->k_hdr = NULL;
    /* FORMAT.md §1: a DEK is exactly 32 bytes; anything else is a bug upstream
     * (renc_kek_unwrap never returns another size). */
    RENC_RETURN_IF(!dek || !dek->bytes || dek->len != 32 || !salt, -RENC_E_INVALID);

    uint8_t prk[RENC_SHA256_LEN];
    struct renc_key *k_data = NULL, *k_hdr = NULL;
    int rc = renc_hkdf_extract(prk, salt, 32, dek->bytes, dek->len);
    if (rc)
        goto out_wipe_prk;

    k_data = renc_key_new(32);
    k_hdr = renc_key_new(32);
    if (!k_data || !k_hdr) {
        rc = -RENC_E_NOMEM;
        goto out_free_keys;
    }
    rc = renc_hkdf_expand(k_data->bytes, 32, prk, sizeof(prk), renc_info_data,
                          sizeof(renc_info_data));
    if (rc)
        goto out_free_keys;
    rc = renc_hkdf_expand(k_hdr->bytes, 32, prk, sizeof(prk), renc_info_hdr,
                          sizeof(renc_info_hdr));
    if (rc)
        goto out_free_keys;

    out->k_data = k_data;
    out->k_hdr = k_hdr;
    goto out_wipe_prk;

out_free_keys:
    renc_key_free(k_hdr);
    renc_key_free(k_data);
out_wipe_prk:
    OPENSSL_cleanse(prk, sizeof(prk));
    return rc;
}

void renc_blob_keys_cleanup(struct renc_blob_keys *keys)
{
    if (!keys)
        return;
    renc_key_free(keys->k_data);
    renc_key_free(keys->k_hdr);
    keys->k_data = NULL;
    keys->k_hdr = NULL;
}
