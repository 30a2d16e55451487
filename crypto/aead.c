/* crypto/aead.c — AES-256-GCM: the backend choice, and the OpenSSL backend.
 *
 * OpenSSL: one EVP_CIPHER_CTX per object, keyed once in renc_aead_new.  Seal
 * and open re-initialise it with only a nonce (cipher and key NULL), which
 * keeps the AES key schedule and GHASH table and resets the per-message
 * state; the same context serves both directions because GCM uses the
 * forward cipher for both.
 *
 * ipsec-mb lives in aead_ipsec_mb.c behind aead_internal.h.  Arguments are
 * checked here, once, for both.
 */
#include "crypto/aead.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/aead_internal.h"

struct renc_aead {
    enum renc_aead_backend backend; /* OPENSSL or IPSEC_MB, never AUTO */
    EVP_CIPHER_CTX *ctx;            /* OPENSSL */
    struct renc_imb_gcm *imb;       /* IPSEC_MB */
};

/* GCM's limits (NIST SP 800-38D): plaintext at most 2^39 - 256 bits, AAD
 * under 2^64 bits.  Records are far smaller; checking here keeps either
 * library from ever seeing a length it would refuse. */
#define RENC_GCM_MAX_LEN ((((uint64_t)1) << 36) - 32)
#define RENC_GCM_MAX_AAD_LEN ((((uint64_t)1) << 61) - 1)

/* Fetched once per process (a fetch is a locked method-store lookup); never
 * freed, it lives as long as the process. */
static pthread_once_t renc_gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *renc_gcm_cipher;

static void renc_gcm_fetch(void)
{
    renc_gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* EVP takes int lengths; a record is at most 16 MiB plus a word, but feed
 * larger inputs in pieces rather than truncate them.  GCM is a stream mode,
 * so the split points do not change the result.  With out NULL, the bytes
 * are AAD. */
#define RENC_EVP_CHUNK ((size_t)1 << 30)

static int renc_gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
    while (len > 0) {
        size_t chunk = len < RENC_EVP_CHUNK ? len : RENC_EVP_CHUNK;
        int outl = 0;
        if (EVP_CipherUpdate(ctx, out, &outl, in, (int)chunk) != 1)
            return -RENC_E_CRYPTO;
        if (out) {
            /* GCM in OpenSSL's provider does not buffer: all of it comes
             * back at once. */
            if ((size_t)outl != chunk)
                return -RENC_E_CRYPTO;
            out += chunk;
        }
        in += chunk;
        len -= chunk;
    }
    return 0;
}

int renc_aead_backend_parse(const char *name, enum renc_aead_backend *out)
{
    RENC_RETURN_IF(!name || !out, -RENC_E_INVALID);
    static const struct {
        const char *name;
        enum renc_aead_backend backend;
    } names[] = {
        { "auto", RENC_AEAD_BACKEND_AUTO },
        { "openssl", RENC_AEAD_BACKEND_OPENSSL },
        { "ipsec-mb", RENC_AEAD_BACKEND_IPSEC_MB },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].backend;
            return 0;
        }
    }
    return -RENC_E_INVALID;
}

static int renc_aead_openssl_init(struct renc_aead *aead, const struct renc_key *key)
{
    if (pthread_once(&renc_gcm_once, renc_gcm_fetch) != 0 || !renc_gcm_cipher)
        return -RENC_E_CRYPTO;
    aead->ctx = EVP_CIPHER_CTX_new();
    RENC_RETURN_IF(!aead->ctx, -RENC_E_NOMEM);
    /* Key only: the nonce comes with each record.  GCM's default IV length
     * is the 12 bytes RENC uses. */
    if (EVP_EncryptInit_ex2(aead->ctx, renc_gcm_cipher, key->bytes, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_get_iv_length(aead->ctx) != RENC_AEAD_NONCE_LEN) {
        ERR_clear_error();
        return -RENC_E_CRYPTO;
    }
    return 0;
}

int renc_aead_new(struct renc_aead **out, const struct renc_key *key,
                  enum renc_aead_backend backend)
{
    RENC_RETURN_IF(!out || !key || !key->bytes, -RENC_E_INVALID);
    RENC_RETURN_IF(key->len != RENC_AEAD_KEY_LEN, -RENC_E_INVALID);
    RENC_RETURN_IF(backend != RENC_AEAD_BACKEND_AUTO && backend != RENC_AEAD_BACKEND_OPENSSL &&
                       backend != RENC_AEAD_BACKEND_IPSEC_MB,
                   -RENC_E_INVALID);

    /* AUTO: ipsec-mb when it is compiled in and its own CPU detection (run
     * once per process) finds AES-NI and PCLMULQDQ; otherwise OpenSSL, whose
     * provider also picks AES-NI/VAES code where the CPU has it. */
    if (backend == RENC_AEAD_BACKEND_AUTO)
        backend = renc_imb_gcm_available() ? RENC_AEAD_BACKEND_IPSEC_MB
                                           : RENC_AEAD_BACKEND_OPENSSL;
    RENC_RETURN_IF(backend == RENC_AEAD_BACKEND_IPSEC_MB && !renc_imb_gcm_available(),
                   -RENC_E_UNSUPPORTED);

    struct renc_aead *aead = renc_calloc(1, sizeof(*aead));
    RENC_RETURN_IF(!aead, -RENC_E_NOMEM);
    aead->backend = backend;
    int rc = backend == RENC_AEAD_BACKEND_IPSEC_MB ? renc_imb_gcm_new(&aead->imb, key)
                                                   : renc_aead_openssl_init(aead, key);
    if (rc) {
        renc_aead_free(aead);
        return rc;
    }
    *out = aead;
    return 0;
}

void renc_aead_free(struct renc_aead *aead)
{
    if (!aead)
        return;
    /* The provider frees its GCM context (key schedule, H) with
     * OPENSSL_clear_free; the ipsec-mb schedule is wiped by its key
     * object. */
    EVP_CIPHER_CTX_free(aead->ctx);
    renc_imb_gcm_free(aead->imb);
    renc_free(aead);
}

static int renc_aead_openssl_seal(struct renc_aead *aead, uint8_t *out,
                                  uint8_t tag[RENC_AEAD_TAG_LEN], const uint8_t *in, size_t len,
                                  const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                                  const uint8_t *aad, size_t aad_len)
{
    EVP_CIPHER_CTX *ctx = aead->ctx;
    uint8_t fin[RENC_AEAD_TAG_LEN]; /* GCM's final writes nothing here */
    int outl = 0;
    int rc = -RENC_E_CRYPTO;

    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1)
        goto out_fail;
    if ((rc = renc_gcm_update(ctx, NULL, aad, aad_len)) != 0)
        goto out_fail;
    if ((rc = renc_gcm_update(ctx, out, in, len)) != 0)
        goto out_fail;
    rc = -RENC_E_CRYPTO;
    /* GCM's final produces no bytes; it computes the tag. */
    if (EVP_CipherFinal_ex(ctx, fin, &outl) != 1 || outl != 0)
        goto out_fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, RENC_AEAD_TAG_LEN, tag) != 1)
        goto out_fail;
    return 0;

out_fail:
    /* Never hand back a half-sealed record that could be mistaken for a
     * whole one. */
    if (len)
        OPENSSL_cleanse(out, len);
    OPENSSL_cleanse(tag, RENC_AEAD_TAG_LEN);
    ERR_clear_error();
    return rc;
}

static int renc_aead_openssl_open(struct renc_aead *aead, uint8_t *out, const uint8_t *in,
                                  size_t len, const uint8_t tag[RENC_AEAD_TAG_LEN],
                                  const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                                  const uint8_t *aad, size_t aad_len)
{
    EVP_CIPHER_CTX *ctx = aead->ctx;
    uint8_t fin[RENC_AEAD_TAG_LEN]; /* GCM's final writes nothing here */
    int outl = 0;
    int rc = -RENC_E_CRYPTO;

    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) != 1)
        goto out_fail;
    /* OpenSSL copies the tag; the cast only satisfies the ctrl prototype. */
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, RENC_AEAD_TAG_LEN, (void *)tag) != 1)
        goto out_fail;
    if ((rc = renc_gcm_update(ctx, NULL, aad, aad_len)) != 0)
        goto out_fail;
    if ((rc = renc_gcm_update(ctx, out, in, len)) != 0)
        goto out_fail;
    /* The tag is checked here, after all of out was written: that is why a
     * failure must wipe out. */
    if (EVP_CipherFinal_ex(ctx, fin, &outl) != 1 || outl != 0) {
        rc = -RENC_E_RECORD_AUTH;
        goto out_fail;
    }
    return 0;

out_fail:
    /* Verify, then release: no unverified plaintext survives a failure. */
    if (len)
        OPENSSL_cleanse(out, len);
    ERR_clear_error();
    return rc;
}

static int renc_aead_openssl_verify(struct renc_aead *aead, const uint8_t *in, size_t len,
                                    const uint8_t tag[RENC_AEAD_TAG_LEN],
                                    const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                                    const uint8_t *aad, size_t aad_len)
{
    EVP_CIPHER_CTX *ctx = aead->ctx;
    uint8_t piece[RENC_AEAD_VERIFY_PIECE];
    uint8_t fin[RENC_AEAD_TAG_LEN];
    int outl = 0;
    int rc = -RENC_E_CRYPTO;

    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, RENC_AEAD_TAG_LEN, (void *)tag) != 1)
        goto out;
    if ((rc = renc_gcm_update(ctx, NULL, aad, aad_len)) != 0)
        goto out;
    for (size_t off = 0; off < len && rc == 0; off += sizeof(piece)) {
        size_t n = len - off < sizeof(piece) ? len - off : sizeof(piece);
        rc = renc_gcm_update(ctx, piece, in + off, n);
    }
    if (rc == 0 && (EVP_CipherFinal_ex(ctx, fin, &outl) != 1 || outl != 0))
        rc = -RENC_E_RECORD_AUTH;
out:
    OPENSSL_cleanse(piece, len < sizeof(piece) ? len : sizeof(piece));
    ERR_clear_error();
    return rc;
}

/* Both directions check the same things, once, for both backends. */
static int renc_aead_check(const struct renc_aead *aead, const uint8_t *out, const uint8_t *tag,
                           const uint8_t *in, size_t len, const uint8_t *nonce,
                           const uint8_t *aad, size_t aad_len)
{
    RENC_RETURN_IF(!aead || !tag || !nonce, -RENC_E_INVALID);
    RENC_RETURN_IF(len && (!out || !in), -RENC_E_INVALID);
    RENC_RETURN_IF(aad_len && !aad, -RENC_E_INVALID);
    RENC_RETURN_IF((uint64_t)len > RENC_GCM_MAX_LEN, -RENC_E_TOO_BIG);
    RENC_RETURN_IF((uint64_t)aad_len > RENC_GCM_MAX_AAD_LEN, -RENC_E_TOO_BIG);
    return 0;
}

int renc_aead_seal(struct renc_aead *aead, uint8_t *out, uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t *in, size_t len,
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len)
{
    int rc = renc_aead_check(aead, out, tag, in, len, nonce, aad, aad_len);
    if (rc)
        return rc;
    if (aead->backend == RENC_AEAD_BACKEND_IPSEC_MB) {
        renc_imb_gcm_seal(aead->imb, out, tag, in, len, nonce, aad, aad_len);
        return 0;
    }
    return renc_aead_openssl_seal(aead, out, tag, in, len, nonce, aad, aad_len);
}

int renc_aead_open(struct renc_aead *aead, uint8_t *out, const uint8_t *in, size_t len,
                   const uint8_t tag[RENC_AEAD_TAG_LEN],
                   const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                   const uint8_t *aad, size_t aad_len)
{
    int rc = renc_aead_check(aead, out, tag, in, len, nonce, aad, aad_len);
    if (rc)
        return rc;
    if (aead->backend == RENC_AEAD_BACKEND_IPSEC_MB)
        return renc_imb_gcm_open(aead->imb, out, in, len, tag, nonce, aad, aad_len);
    return renc_aead_openssl_open(aead, out, in, len, tag, nonce, aad, aad_len);
}

int renc_aead_verify(struct renc_aead *aead, const uint8_t *in, size_t len,
                     const uint8_t tag[RENC_AEAD_TAG_LEN],
                     const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len)
{
    /* in stands for out in the checks: nothing is written to either. */
    int rc = renc_aead_check(aead, in, tag, in, len, nonce, aad, aad_len);
    if (rc)
        return rc;
    if (aead->backend == RENC_AEAD_BACKEND_IPSEC_MB)
        return renc_imb_gcm_verify(aead->imb, in, len, tag, nonce, aad, aad_len);
    return renc_aead_openssl_verify(aead, in, len, tag, nonce, aad, aad_len);
}

const char *renc_aead_backend_name(const struct renc_aead *aead)
{
    if (!aead)
        return "none";
    return aead->backend == RENC_AEAD_BACKEND_IPSEC_MB ? "ipsec-mb" : "openssl";
}
