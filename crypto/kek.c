/* crypto/kek.c — key-encryption keys and the four DEK wrappings of
 * FORMAT.md §2: AES key wrap with (RFC 5649) and without (RFC 3394) padding,
 * and RSA-OAEP with SHA-256 or SHA-1, all through OpenSSL EVP.
 */
#include "crypto/kek.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_DEK_LEN 32
#define RENC_AES_KEK_LEN 32
/* An AES key wrap of a 32-byte DEK, with or without padding: one 8-byte
 * integrity block more than the DEK. */
#define RENC_AES_WRAPPED_LEN 40
/* Key wrap is for keys; this bound keeps every length an int for EVP with
 * room to spare, far beyond any key. */
#define RENC_KEYWRAP_MAX_IN ((size_t)1 << 20)
/* RSA sizes a KEK may have: below 2048 is too weak to wrap a 256-bit DEK;
 * above 8192 the result would not fit a slot (RENC_MAX_WRAPPED_LEN). */
#define RENC_RSA_MIN_BITS 2048
#define RENC_RSA_MAX_BITS 8192

struct renc_kek {
    enum renc_kek_type type;
    struct renc_key *aes; /* RENC_KEK_AES256: 32 bytes in secure memory */
    EVP_PKEY *rsa;        /* RENC_KEK_RSA: the private key */
};

/* ---- AES key wrap ------------------------------------------------------ */

/* Fetched once per process; never freed, they live as long as the process. */
static pthread_once_t renc_wrap_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *renc_wrap_ciphers[2][3];

static void renc_wrap_fetch(void)
{
    static const char *const names[2][3] = {
        { "AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP" },
        { "AES-128-WRAP-PAD", "AES-192-WRAP-PAD", "AES-256-WRAP-PAD" },
    };
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 3; k++)
            renc_wrap_ciphers[p][k] = EVP_CIPHER_fetch(NULL, names[p][k], NULL);
}

/* The wrap cipher for this KEK size, or NULL when OpenSSL lacks it. */
static const EVP_CIPHER *renc_wrap_cipher(int padded, size_t kek_len)
{
    int k = kek_len == 16 ? 0 : kek_len == 24 ? 1 : 2;
    if (pthread_once(&renc_wrap_once, renc_wrap_fetch) != 0)
        return NULL;
    return renc_wrap_ciphers[padded ? 1 : 0][k];
}

/* A context for one wrap or unwrap.  OpenSSL refuses wrap-mode ciphers in
 * EVP unless the caller opts in: their update is one-shot, not streaming. */
static EVP_CIPHER_CTX *renc_wrap_ctx(const EVP_CIPHER *cipher, const uint8_t *kek, int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return NULL;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex2(ctx, cipher, kek, NULL, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int renc_aes_keywrap(uint8_t *out, size_t max_out, size_t *out_len, int padded,
                     const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len)
{
    RENC_RETURN_IF(!out || !out_len || !kek || !in, -RENC_E_INVALID);
    RENC_RETURN_IF(kek_len != 16 && kek_len != 24 && kek_len != 32, -RENC_E_INVALID);
    /* RFC 3394 wraps n >= 2 64-bit blocks; RFC 5649 wraps 1 byte or more. */
    RENC_RETURN_IF(padded ? in_len == 0 : (in_len < 16 || in_len % 8 != 0), -RENC_E_INVALID);
    RENC_RETURN_IF(in_len > RENC_KEYWRAP_MAX_IN, -RENC_E_TOO_BIG);

    size_t need = (padded ? (in_len + 7) / 8 * 8 : in_len) + 8;
    RENC_RETURN_IF(max_out < need, -RENC_E_TOO_BIG);

    const EVP_CIPHER *cipher = renc_wrap_cipher(padded, kek_len);
    RENC_RETURN_IF(!cipher, -RENC_E_CRYPTO);
    EVP_CIPHER_CTX *ctx = renc_wrap_ctx(cipher, kek, 1);
    if (!ctx) {
        ERR_clear_error();
        return -RENC_E_CRYPTO;
    }

    int rc = -RENC_E_CRYPTO;
    int outl = 0, finl = 0;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)in_len) != 1 || (size_t)outl != need)
        goto out_fail;
    /* The wrap happens in the one update; final only closes the operation. */
    if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1 || finl != 0)
        goto out_fail;
    EVP_CIPHER_CTX_free(ctx);
    *out_len = need;
    return 0;

out_fail:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(out, need);
    ERR_clear_error();
    return rc;
}

int renc_aes_keyunwrap(uint8_t *out, size_t max_out, size_t *out_len, int padded,
                       const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len)
{
    RENC_RETURN_IF(!out || !out_len, -RENC_E_INVALID);

    const EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *tmp = NULL, *dst = out;
    size_t scratch = 0;
    int outl = 0, finl = 0;
    int rc = -RENC_E_INVALID;

    if (!kek || (kek_len != 16 && kek_len != 24 && kek_len != 32) || (!in && in_len))
        goto out_fail;
    /* The smallest wraps: one block for RFC 5649, two plus the integrity
     * block for RFC 3394.  Any other length cannot have come from a wrap. */
    rc = -RENC_E_UNWRAP;
    if (in_len < (padded ? 16u : 24u) || in_len % 8 != 0 || in_len > RENC_KEYWRAP_MAX_IN + 16)
        goto out_fail;

    /* The output buffer of an unwrap must be larger than its result:
     * EVP_DecryptUpdate documents room for in_len plus one block, and
     * OpenSSL's RFC 5649 unwrap (CRYPTO_128_unwrap_pad) indeed first copies
     * all in_len input bytes into it and wipes all in_len on failure.  Unless
     * the caller's buffer is that large, unwrap into secure scratch memory
     * and copy out only the verified key. */
    scratch = in_len + 8;
    if (max_out < scratch) {
        tmp = OPENSSL_secure_malloc(scratch);
        if (!tmp) {
            rc = -RENC_E_NOMEM;
            goto out_fail;
        }
        dst = tmp;
    }

    rc = -RENC_E_CRYPTO;
    cipher = renc_wrap_cipher(padded, kek_len);
    if (!cipher || !(ctx = renc_wrap_ctx(cipher, kek, 0)))
        goto out_fail;
    /* A wrong KEK or tampered input fails the integrity check in update. */
    rc = -RENC_E_UNWRAP;
    if (EVP_CipherUpdate(ctx, dst, &outl, in, (int)in_len) != 1 || outl < 0 ||
        (size_t)outl > in_len - 8)
        goto out_fail;
    if (EVP_CipherFinal_ex(ctx, dst + outl, &finl) != 1 || finl != 0)
        goto out_fail;
    rc = -RENC_E_TOO_BIG;
    if ((size_t)outl > max_out)
        goto out_fail;
    if (tmp)
        memcpy(out, tmp, (size_t)outl);
    *out_len = (size_t)outl;
    rc = 0;
    goto out_free;

out_fail:
    /* No unverified or partial key bytes are left in the caller's buffer. */
    OPENSSL_cleanse(out, max_out);
    ERR_clear_error();
out_free:
    if (tmp)
        OPENSSL_secure_clear_free(tmp, scratch);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

/* ---- RSA-OAEP ------------------------------------------------------------ */

/* A context for OAEP with alg's digest for both the label hash and MGF1, and
 * the empty label (OpenSSL's default), as Key Vault's RSA-OAEP-256 (alg 2)
 * and RSA-OAEP (alg 3) define them. */
static int renc_oaep_ctx(EVP_PKEY_CTX **out, EVP_PKEY *pkey, int alg, int encrypt)
{
    const char *md = alg == RENC_ALG_RSA_OAEP_256 ? "SHA256" : "SHA1";
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    RENC_RETURN_IF(!pctx, -RENC_E_NOMEM);
    if ((encrypt ? EVP_PKEY_encrypt_init(pctx) : EVP_PKEY_decrypt_init(pctx)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, md, NULL) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md, NULL) <= 0) {
        EVP_PKEY_CTX_free(pctx);
        return -RENC_E_CRYPTO;
    }
    *out = pctx;
    return 0;
}

static int renc_rsa_wrap(EVP_PKEY *pkey, int alg, uint8_t *out, size_t max_out,
                         size_t *out_len, const struct renc_key *dek)
{
    /* Into a local buffer so out is written only on success. */
    uint8_t tmp[RENC_MAX_WRAPPED_LEN];
    size_t n = 0;
    EVP_PKEY_CTX *pctx = NULL;
    int rc = renc_oaep_ctx(&pctx, pkey, alg, 1);
    if (rc)
        goto out_clear;

    rc = -RENC_E_CRYPTO;
    if (EVP_PKEY_encrypt(pctx, NULL, &n, dek->bytes, dek->len) <= 0)
        goto out_free;
    rc = -RENC_E_TOO_BIG;
    if (n > max_out || n > sizeof(tmp))
        goto out_free;
    n = sizeof(tmp);
    rc = -RENC_E_CRYPTO;
    if (EVP_PKEY_encrypt(pctx, tmp, &n, dek->bytes, dek->len) <= 0 || n > max_out)
        goto out_free;
    memcpy(out, tmp, n);
    *out_len = n;
    rc = 0;

out_free:
    EVP_PKEY_CTX_free(pctx);
out_clear:
    if (rc)
        ERR_clear_error();
    return rc;
}

static int renc_rsa_unwrap(EVP_PKEY *pkey, int alg, struct renc_key **dek,
                           const uint8_t *wrapped, size_t wrapped_len)
{
    int mod_bytes = EVP_PKEY_get_size(pkey);
    RENC_RETURN_IF(mod_bytes <= 0, -RENC_E_CRYPTO);
    /* An OAEP ciphertext is exactly the modulus size. */
    RENC_RETURN_IF(wrapped_len != (size_t)mod_bytes, -RENC_E_UNWRAP);

    /* OpenSSL's constant-time OAEP decoding may write up to the whole
     * buffer, not just the message, so the scratch is key-sized secure
     * memory wiped in full. */
    size_t cap = (size_t)mod_bytes;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *tmp = OPENSSL_secure_malloc(cap);
    RENC_RETURN_IF(!tmp, -RENC_E_NOMEM);

    int rc = renc_oaep_ctx(&pctx, pkey, alg, 0);
    if (rc)
        goto out_free_tmp;
    size_t n = cap;
    rc = -RENC_E_UNWRAP;
    if (EVP_PKEY_decrypt(pctx, tmp, &n, wrapped, wrapped_len) <= 0 || n != RENC_DEK_LEN)
        goto out_free_ctx;
    rc = renc_key_from_bytes(dek, tmp, RENC_DEK_LEN);

out_free_ctx:
    EVP_PKEY_CTX_free(pctx);
out_free_tmp:
    OPENSSL_secure_clear_free(tmp, cap);
    if (rc)
        ERR_clear_error();
    return rc;
}

/* ---- KEK objects ----------------------------------------------------------- */

/* Takes ownership of aes or rsa (exactly one non-NULL) on success and on
 * failure alike. */
static int renc_kek_adopt(struct renc_kek **out, struct renc_key *aes, EVP_PKEY *rsa)
{
    struct renc_kek *kek = renc_calloc(1, sizeof(*kek));
    if (!kek) {
        renc_key_free(aes);
        EVP_PKEY_free(rsa);
        return -RENC_E_NOMEM;
    }
    kek->type = aes ? RENC_KEK_AES256 : RENC_KEK_RSA;
    kek->aes = aes;
    kek->rsa = rsa;
    *out = kek;
    return 0;
}

int renc_kek_generate(struct renc_kek **out, enum renc_kek_type type, unsigned bits)
{
    RENC_RETURN_IF(!out, -RENC_E_INVALID);

    if (type == RENC_KEK_AES256) {
        struct renc_key *aes = NULL;
        int rc = renc_key_random(&aes, RENC_AES_KEK_LEN);
        RENC_RETURN_IF(rc, rc);
        return renc_kek_adopt(out, aes, NULL);
    }
    RENC_RETURN_IF(type != RENC_KEK_RSA, -RENC_E_INVALID);
    /* FORMAT.md §1: the RSA KEK sizes the tool creates. */
    RENC_RETURN_IF(bits != 2048 && bits != 3072 && bits != 4096, -RENC_E_INVALID);

    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (!rsa) {
        ERR_clear_error();
        return -RENC_E_CRYPTO;
    }
    return renc_kek_adopt(out, NULL, rsa);
}

int renc_kek_from_aes(struct renc_kek **out, const uint8_t *material, size_t len)
{
    RENC_RETURN_IF(!out || !material || len != RENC_AES_KEK_LEN, -RENC_E_INVALID);
    struct renc_key *aes = NULL;
    int rc = renc_key_from_bytes(&aes, material, len);
    RENC_RETURN_IF(rc, rc);
    return renc_kek_adopt(out, aes, NULL);
}

/* Never prompt on the terminal for an encrypted PEM: the keyring holds
 * unencrypted keys, and crypto/ must not do I/O of its own. */
static int renc_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int renc_kek_from_pem(struct renc_kek **out, const char *pem, size_t pem_len)
{
    RENC_RETURN_IF(!out || !pem || pem_len == 0, -RENC_E_INVALID);
    RENC_RETURN_IF(pem_len > INT_MAX, -RENC_E_TOO_BIG);

    /* A read-only BIO over the caller's buffer: the PEM text is not copied. */
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    RENC_RETURN_IF(!bio, -RENC_E_NOMEM);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, renc_no_password, NULL);
    BIO_free(bio);
    if (!pkey) {
        ERR_clear_error();
        return -RENC_E_INVALID;
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (!EVP_PKEY_is_a(pkey, "RSA") || bits < RENC_RSA_MIN_BITS || bits > RENC_RSA_MAX_BITS) {
        EVP_PKEY_free(pkey);
        return -RENC_E_KEY_TYPE;
    }
    return renc_kek_adopt(out, NULL, pkey);
}

int renc_kek_export(struct renc_key **out, const struct renc_kek *kek)
{
    RENC_RETURN_IF(!out || !kek, -RENC_E_INVALID);
    if (kek->type == RENC_KEK_AES256)
        return renc_key_dup(out, kek->aes);

    /* A secure-memory BIO: the PEM text is key material, and BIO_free wipes
     * this kind of buffer. */
    BIO *bio = BIO_new(BIO_s_secmem());
    RENC_RETURN_IF(!bio, -RENC_E_NOMEM);
    int rc = -RENC_E_CRYPTO;
    char *data = NULL;
    /* PKCS#8 "PRIVATE KEY", unencrypted: the keyring's file format. */
    if (PEM_write_bio_PrivateKey(bio, kek->rsa, NULL, NULL, 0, NULL, NULL) != 1)
        goto out_free;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data)
        goto out_free;
    rc = renc_key_from_bytes(out, (const uint8_t *)data, (size_t)len);

out_free:
    BIO_free(bio);
    if (rc)
        ERR_clear_error();
    return rc;
}

void renc_kek_free(struct renc_kek *kek)
{
    if (!kek)
        return;
    renc_key_free(kek->aes);
    EVP_PKEY_free(kek->rsa);
    renc_free(kek);
}

enum renc_kek_type renc_kek_type(const struct renc_kek *kek)
{
    return kek ? kek->type : (enum renc_kek_type)0;
}

unsigned renc_kek_bits(const struct renc_kek *kek)
{
    if (!kek)
        return 0;
    if (kek->type == RENC_KEK_AES256)
        return 256;
    int bits = EVP_PKEY_get_bits(kek->rsa);
    return bits > 0 ? (unsigned)bits : 0;
}

enum renc_wrap_alg renc_kek_default_alg(const struct renc_kek *kek)
{
    return kek && kek->type == RENC_KEK_RSA ? RENC_ALG_RSA_OAEP_256 : RENC_ALG_AES_KWP;
}

static int renc_alg_known(int alg)
{
    return alg == RENC_ALG_AES_KWP || alg == RENC_ALG_RSA_OAEP_256 ||
           alg == RENC_ALG_RSA_OAEP_SHA1 || alg == RENC_ALG_AES_KW;
}

int renc_kek_alg_fits(const struct renc_kek *kek, int alg)
{
    if (!kek)
        return 0;
    if (kek->type == RENC_KEK_AES256)
        return alg == RENC_ALG_AES_KWP || alg == RENC_ALG_AES_KW;
    return alg == RENC_ALG_RSA_OAEP_256 || alg == RENC_ALG_RSA_OAEP_SHA1;
}

int renc_kek_wrap(const struct renc_kek *kek, int alg, uint8_t *out, size_t max_out,
                  size_t *out_len, const struct renc_key *dek)
{
    RENC_RETURN_IF(!kek || !out || !out_len || !dek || !dek->bytes, -RENC_E_INVALID);
    RENC_RETURN_IF(!renc_alg_known(alg), -RENC_E_BAD_ALG);
    RENC_RETURN_IF(!renc_kek_alg_fits(kek, alg), -RENC_E_KEY_TYPE);
    /* FORMAT.md §1: every DEK is 32 bytes, and alg 1/4 results are 40. */
    RENC_RETURN_IF(dek->len != RENC_DEK_LEN, -RENC_E_INVALID);

    if (kek->type == RENC_KEK_RSA)
        return renc_rsa_wrap(kek->rsa, alg, out, max_out, out_len, dek);

    RENC_RETURN_IF(max_out < RENC_AES_WRAPPED_LEN, -RENC_E_TOO_BIG);
    /* Into a local buffer so out is written only on success. */
    uint8_t tmp[RENC_AES_WRAPPED_LEN];
    size_t n = 0;
    int rc = renc_aes_keywrap(tmp, sizeof(tmp), &n, alg == RENC_ALG_AES_KWP, kek->aes->bytes,
                              kek->aes->len, dek->bytes, dek->len);
    RENC_RETURN_IF(rc, rc);
    memcpy(out, tmp, n);
    *out_len = n;
    return 0;
}

int renc_kek_unwrap(const struct renc_kek *kek, int alg, struct renc_key **dek,
                    const uint8_t *wrapped, size_t wrapped_len)
{
    RENC_RETURN_IF(!kek || !dek || (!wrapped && wrapped_len), -RENC_E_INVALID);
    RENC_RETURN_IF(!renc_alg_known(alg), -RENC_E_BAD_ALG);
    RENC_RETURN_IF(!renc_kek_alg_fits(kek, alg), -RENC_E_KEY_TYPE);

    if (kek->type == RENC_KEK_RSA)
        return renc_rsa_unwrap(kek->rsa, alg, dek, wrapped, wrapped_len);

    /* A 32-byte DEK wraps to exactly 40 bytes under either AES wrap; an
     * RFC 5649 wrap of a shorter key would also be 40, so the unwrapped
     * length is checked too. */
    RENC_RETURN_IF(wrapped_len != RENC_AES_WRAPPED_LEN, -RENC_E_UNWRAP);
    struct renc_key *key = renc_key_new(RENC_DEK_LEN);
    RENC_RETURN_IF(!key, -RENC_E_NOMEM);
    size_t n = 0;
    int rc = renc_aes_keyunwrap(key->bytes, key->len, &n, alg == RENC_ALG_AES_KWP,
                                kek->aes->bytes, kek->aes->len, wrapped, wrapped_len);
    if (rc == 0 && n != RENC_DEK_LEN)
        rc = -RENC_E_UNWRAP;
    if (rc) {
        renc_key_free(key);
        return rc;
    }
    *dek = key;
    return 0;
}
