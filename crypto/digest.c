/* crypto/digest.c — SHA-256 through OpenSSL's one-shot EVP_Digest. */
#include "crypto/digest.h"

#include <openssl/evp.h>

#include "common/error.h"

int renc_sha256(const void *data, size_t len, uint8_t out[RENC_SHA256_BYTES])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != RENC_SHA256_BYTES)
        return -RENC_E_CRYPTO;
    return 0;
}
