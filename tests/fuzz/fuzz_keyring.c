/* tests/fuzz/fuzz_keyring.c — the local keyring's parsers (docs/FORMAT.md
 * "The local keyring"): the state file KEYRING/NAME/state, and the two kinds
 * of key material file, VERSION.key (32 raw bytes) and VERSION.pem (PEM
 * PKCS#8 RSA private key).  No file is touched: the state parser is the one
 * renc_keyring_get uses (keys/keyring_internal.h), with the file system
 * question it asks (which material file a version has) answered here; the
 * material parsers are the ones renc_keyring_load hands a file's bytes to.
 *
 * Input: a mode byte, then the file's bytes.
 *   mode & 3 == 0 or 3   a state file.  A version's type comes from its name:
 *                        one starting with 'x' has no material file (the state
 *                        file is then refused), "eio" fails with -EIO (which
 *                        must be passed up), otherwise the low bit of its last
 *                        character, flipped by mode bit 2, picks .key or .pem.
 *   mode & 3 == 1        a VERSION.pem file (renc_kek_from_pem).
 *   mode & 3 == 2        a VERSION.key file (renc_kek_from_aes).
 * Checks:
 *   - state: never crashes; fails only with the documented errors; a NUL
 *     byte anywhere is refused (it used to end the text silently); what
 *     parses satisfies the documented invariants (a valid current naming a
 *     listed version, distinct valid version names, the whole key enabled
 *     or revoked) and is canonical: formatting it (what renc_state_write
 *     stores) and parsing that gives the same record, and formatting again
 *     the same text;
 *   - material: a failed load leaves *out untouched; a loaded KEK has the
 *     type and size the format allows, wraps a DEK that unwraps to the same
 *     bytes (AES always; RSA when the private key is consistent, which a
 *     mutated one need not be), and exports material that loads again to
 *     the same key (AES: the same 32 bytes).  abort() if not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/kek.h"
#include "keys/keyring.h"
#include "keys/keyring_internal.h"
#include "crypto/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

/* The DEK wrapped with each KEK that loads. */
static const uint8_t fuzz_dek[32] = {
    'r', 'e', 'n', 'c', ' ', 'f', 'u', 'z', 'z', ' ', 'k', 'e', 'y', 'r', 'i', 'n',
    'g', ' ', 'd', 'e', 'k', 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba,
};

/* ---- the state file -------------------------------------------------------- */

static int fuzz_version_type(void *ctx, const char *version, enum renc_kek_type *type)
{
    unsigned flip = *(const unsigned *)ctx;
    if (version[0] == 'x')
        return -RENC_E_KEY_NOT_FOUND;
    if (strcmp(version, "eio") == 0)
        return -EIO;
    unsigned bit = ((unsigned)(uint8_t)version[strlen(version) - 1] ^ flip) & 1u;
    *type = bit ? RENC_KEK_RSA : RENC_KEK_AES256;
    return 0;
}

static int fuzz_parse_copy(struct renc_keyring_key *key, const uint8_t *text, size_t len,
                           unsigned flip)
{
    /* Exactly len + 1 bytes on the heap (as renc_read_private reads the
     * file), so ASan sees any read past the NUL. */
    char *buf = renc_malloc(len + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(key, 0, sizeof *key);
    strcpy(key->name, "fuzz");
    int rc = renc_keyring_state_parse(key, buf, len, fuzz_version_type, &flip);
    renc_free(buf);
    return rc;
}

static void fuzz_check_key(const struct renc_keyring_key *key)
{
    FUZZ_CHECK(key->state == RENC_KEY_ENABLED || key->state == RENC_KEY_REVOKED);
    FUZZ_CHECK(renc_keyref_name_valid(key->current, RENC_KEY_VERSION_MAX));
    FUZZ_CHECK(key->version_count >= 1 && key->version_count <= 1024);
    int current_found = 0;
    for (size_t i = 0; i < key->version_count; i++) {
        const struct renc_keyring_version *v = &key->versions[i];
        FUZZ_CHECK(renc_keyref_name_valid(v->version, RENC_KEY_VERSION_MAX));
        FUZZ_CHECK(v->version[0] != 'x' && strcmp(v->version, "eio") != 0);
        FUZZ_CHECK(v->type == RENC_KEK_AES256 || v->type == RENC_KEK_RSA);
        FUZZ_CHECK(v->state == RENC_KEY_ENABLED || v->state == RENC_KEY_DISABLED ||
                   v->state == RENC_KEY_REVOKED);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(key->versions[j].version, v->version) != 0);
        if (strcmp(v->version, key->current) == 0)
            current_found = 1;
    }
    FUZZ_CHECK(current_found);
}

static int fuzz_key_equal(const struct renc_keyring_key *a, const struct renc_keyring_key *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->current, b->current) != 0 ||
        a->state != b->state || a->version_count != b->version_count)
        return 0;
    for (size_t i = 0; i < a->version_count; i++) {
        const struct renc_keyring_version *x = &a->versions[i], *y = &b->versions[i];
        if (strcmp(x->version, y->version) != 0 || x->type != y->type ||
            x->state != y->state || x->created_unix != y->created_unix)
            return 0;
    }
    return 1;
}

static void fuzz_state(const uint8_t *text, size_t len, unsigned flip)
{
    struct renc_keyring_key key;
    int rc = fuzz_parse_copy(&key, text, len, flip);
    if (rc != 0) {
        FUZZ_CHECK(rc == -RENC_E_BAD_KEYRING || rc == -RENC_E_TOO_BIG || rc == -EIO);
        /* -EIO comes only from the callback, for a version named "eio". */
        if (rc == -EIO)
            FUZZ_CHECK(len >= 3 && memmem(text, len, "eio", 3) != NULL);
        renc_keyring_key_cleanup(&key);
        return;
    }
    /* A NUL byte anywhere is refused, never taken for the end of the text. */
    FUZZ_CHECK(memchr(text, '\0', len) == NULL);
    fuzz_check_key(&key);

    char *out = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(renc_keyring_state_format(&out, &out_len, &key) == 0);
    FUZZ_CHECK(out != NULL && strlen(out) == out_len);

    struct renc_keyring_key again;
    FUZZ_CHECK(fuzz_parse_copy(&again, (const uint8_t *)out, out_len, flip) == 0);
    FUZZ_CHECK(fuzz_key_equal(&key, &again));

    char *out2 = NULL;
    size_t out2_len = 0;
    FUZZ_CHECK(renc_keyring_state_format(&out2, &out2_len, &again) == 0);
    FUZZ_CHECK(out2_len == out_len && memcmp(out, out2, out_len) == 0);

    renc_free(out2);
    renc_free(out);
    renc_keyring_key_cleanup(&again);
    renc_keyring_key_cleanup(&key);
}

/* ---- key material ---------------------------------------------------------- */

/* Wraps fuzz_dek under kek with alg; 1 when it unwraps to the same bytes,
 * 0 when the unwrap fails (an inconsistent RSA key), abort() on a wrong DEK. */
static int fuzz_wrap_unwrap(const struct renc_kek *kek, int alg)
{
    struct renc_key *dek = NULL, *back = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t wrapped_len = 0;
    FUZZ_CHECK(renc_key_from_bytes(&dek, fuzz_dek, sizeof fuzz_dek) == 0);
    int rc = renc_kek_wrap(kek, alg, wrapped, sizeof wrapped, &wrapped_len, dek);
    int ok = 0;
    if (rc == 0) {
        FUZZ_CHECK(wrapped_len >= 1 && wrapped_len <= sizeof wrapped);
        if (renc_kek_type(kek) == RENC_KEK_AES256)
            FUZZ_CHECK(wrapped_len == 40);
        else
            FUZZ_CHECK(wrapped_len == (renc_kek_bits(kek) + 7) / 8);
        rc = renc_kek_unwrap(kek, alg, &back, wrapped, wrapped_len);
        if (rc == 0) {
            FUZZ_CHECK(back->len == sizeof fuzz_dek);
            FUZZ_CHECK(memcmp(back->bytes, fuzz_dek, sizeof fuzz_dek) == 0);
            ok = 1;
        } else {
            FUZZ_CHECK(rc < 0 && back == NULL);
        }
        /* One flipped bit: the unwrap must refuse it, never return a DEK. */
        wrapped[wrapped_len / 2] ^= 0x04;
        struct renc_key *bad = NULL;
        rc = renc_kek_unwrap(kek, alg, &bad, wrapped, wrapped_len);
        if (rc == 0) {
            /* Only RSA could ever decode a tampered OAEP block to 32 bytes,
             * with negligible probability; never to the same DEK. */
            FUZZ_CHECK(renc_kek_type(kek) == RENC_KEK_RSA);
            FUZZ_CHECK(memcmp(bad->bytes, fuzz_dek, sizeof fuzz_dek) != 0);
        }
        renc_key_free(bad);
    } else {
        /* AES always wraps; a broken RSA key may refuse to. */
        FUZZ_CHECK(renc_kek_type(kek) == RENC_KEK_RSA && rc < 0);
    }
    renc_key_free(back);
    renc_key_free(dek);
    return ok;
}

static void fuzz_pem(const uint8_t *pem, size_t len)
{
    struct renc_kek *sentinel = (struct renc_kek *)&sentinel;
    struct renc_kek *kek = sentinel;
    int rc = renc_kek_from_pem(&kek, (const char *)pem, len);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && kek == sentinel);
        return;
    }
    FUZZ_CHECK(kek != NULL && kek != sentinel);
    FUZZ_CHECK(renc_kek_type(kek) == RENC_KEK_RSA);
    unsigned bits = renc_kek_bits(kek);
    FUZZ_CHECK(bits >= 2048 && bits <= 8192);
    FUZZ_CHECK(renc_kek_default_alg(kek) == RENC_ALG_RSA_OAEP_256);
    FUZZ_CHECK(!renc_kek_alg_fits(kek, RENC_ALG_AES_KWP) && !renc_kek_alg_fits(kek, RENC_ALG_AES_KW));
    (void)fuzz_wrap_unwrap(kek, RENC_ALG_RSA_OAEP_256);
    (void)fuzz_wrap_unwrap(kek, RENC_ALG_RSA_OAEP_SHA1);

    /* What the keyring would store loads again to a key of the same size,
     * and exports to the same text. */
    struct renc_key *material = NULL;
    FUZZ_CHECK(renc_kek_export(&material, kek) == 0);
    struct renc_kek *again = NULL;
    FUZZ_CHECK(renc_kek_from_pem(&again, (const char *)material->bytes, material->len) == 0);
    FUZZ_CHECK(renc_kek_bits(again) == bits);
    struct renc_key *material2 = NULL;
    FUZZ_CHECK(renc_kek_export(&material2, again) == 0);
    FUZZ_CHECK(material2->len == material->len &&
               memcmp(material2->bytes, material->bytes, material->len) == 0);
    renc_key_free(material2);
    renc_key_free(material);
    renc_kek_free(again);
    renc_kek_free(kek);
}

static void fuzz_aes(const uint8_t *material, size_t len)
{
    struct renc_kek *sentinel = (struct renc_kek *)&sentinel;
    struct renc_kek *kek = sentinel;
    int rc = renc_kek_from_aes(&kek, material, len);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && kek == sentinel && len != 32);
        return;
    }
    FUZZ_CHECK(len == 32);
    FUZZ_CHECK(renc_kek_type(kek) == RENC_KEK_AES256 && renc_kek_bits(kek) == 256);
    FUZZ_CHECK(fuzz_wrap_unwrap(kek, RENC_ALG_AES_KWP) == 1);
    FUZZ_CHECK(fuzz_wrap_unwrap(kek, RENC_ALG_AES_KW) == 1);
    /* An RSA algorithm does not fit an AES key. */
    struct renc_key *dek = NULL;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t wrapped_len = 0;
    FUZZ_CHECK(renc_key_from_bytes(&dek, fuzz_dek, sizeof fuzz_dek) == 0);
    FUZZ_CHECK(renc_kek_wrap(kek, RENC_ALG_RSA_OAEP_256, wrapped, sizeof wrapped, &wrapped_len,
                             dek) == -RENC_E_KEY_TYPE);
    renc_key_free(dek);
    struct renc_key *out = NULL;
    FUZZ_CHECK(renc_kek_export(&out, kek) == 0);
    FUZZ_CHECK(out->len == 32 && memcmp(out->bytes, material, 32) == 0);
    renc_key_free(out);
    renc_kek_free(kek);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    switch (mode & 3u) {
    case 1:
        fuzz_pem(rest, rest_len);
        break;
    case 2:
        fuzz_aes(rest, rest_len);
        break;
    default:
        fuzz_state(rest, rest_len, (mode >> 2) & 1u);
        break;
    }
    return 0;
}
