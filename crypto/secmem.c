/* crypto/secmem.c — key objects in OpenSSL's secure heap, wiping, constant-time
 * compare and the CSPRNG.
 *
 * The struct renc_key itself comes from renc_malloc (it holds no secret, and
 * allocation-failure tests must be able to reach it); only its bytes come from
 * the secure heap.
 */
#include "crypto/secmem.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/alloc.h"
#include "common/error.h"

/* 4 MiB holds well over 100k 32-byte keys (the heap rounds each allocation up
 * to a power of two, at least RENC_SECURE_HEAP_MIN bytes) and a few RSA PEM
 * exports; it is locked memory, so RLIMIT_MEMLOCK may refuse more. */
#define RENC_SECURE_HEAP_BYTES ((size_t)4 << 20)
#define RENC_SECURE_HEAP_MIN 16

/* AddressSanitizer cannot see inside OpenSSL's secure heap (one mmap'd
 * arena it carves up itself), so an overrun of a key buffer would silently
 * land in the next key.  Sanitizer builds therefore leave the heap off and
 * keys come from ordinary, instrumented malloc; release builds use it. */
#if defined(__SANITIZE_ADDRESS__)
#define RENC_USE_SECURE_HEAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RENC_USE_SECURE_HEAP 0
#endif
#endif
#ifndef RENC_USE_SECURE_HEAP
#define RENC_USE_SECURE_HEAP 1
#endif

static pthread_once_t renc_secmem_once = PTHREAD_ONCE_INIT;
static int renc_secmem_status;

static void renc_secmem_init_once(void)
{
    /* Core dumps and ptrace would both expose every key in memory, locked or
     * not; failing to turn them off is fatal because the caller could not
     * otherwise tell that secrets may end up on disk. */
    struct rlimit no_core = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        renc_secmem_status = -RENC_E_CRYPTO;
        return;
    }

    /* 0 means the heap could not be set up (mmap failed); keys then come
     * from OPENSSL_secure_zalloc's fallback, ordinary memory, still wiped on
     * free.  2 means it is in use but not wholly protected: typically mlock
     * was refused (RLIMIT_MEMLOCK), so the arena may be swapped out; it is
     * still MADV_DONTDUMP where madvise allowed it.  Neither is fatal: an
     * unprivileged container often may not mlock at all. */
    if (RENC_USE_SECURE_HEAP && !CRYPTO_secure_malloc_initialized())
        (void)CRYPTO_secure_malloc_init(RENC_SECURE_HEAP_BYTES, RENC_SECURE_HEAP_MIN);
    renc_secmem_status = 0;
}

int renc_secmem_init(void)
{
    /* Once per process: CRYPTO_secure_malloc_init must not race with itself,
     * and a second call (several tests, or a library user) is harmless. */
    if (pthread_once(&renc_secmem_once, renc_secmem_init_once) != 0)
        return -RENC_E_CRYPTO;
    return renc_secmem_status;
}

struct renc_key *renc_key_new(size_t len)
{
    struct renc_key *key = renc_malloc(sizeof(*key));
    if (!key)
        return NULL;
    /* A zero-length key still gets a (1-byte) buffer so that bytes is never
     * NULL for a live key. */
    key->bytes = OPENSSL_secure_zalloc(len ? len : 1);
    /* A full secure heap must not fail the run: ordinary memory, still
     * wiped on free (OPENSSL_secure_clear_free cleanses and frees a pointer
     * that is not from the secure heap). */
    if (!key->bytes)
        key->bytes = OPENSSL_zalloc(len ? len : 1);
    if (!key->bytes) {
        renc_free(key);
        return NULL;
    }
    key->len = len;
    return key;
}

void renc_key_free(struct renc_key *key)
{
    if (!key)
        return;
    OPENSSL_secure_clear_free(key->bytes, key->len ? key->len : 1);
    renc_free(key);
}

int renc_key_random(struct renc_key **out, size_t len)
{
    RENC_RETURN_IF(!out || len == 0 || len > INT_MAX, -RENC_E_INVALID);

    struct renc_key *key = renc_key_new(len);
    RENC_RETURN_IF(!key, -RENC_E_NOMEM);
    /* The private DRBG: key bytes never come from the generator that also
     * produces public values (salts, nonces). */
    if (RAND_priv_bytes(key->bytes, (int)len) != 1) {
        renc_key_free(key);
        return -RENC_E_CRYPTO;
    }
    *out = key;
    return 0;
}

int renc_key_from_bytes(struct renc_key **out, const uint8_t *bytes, size_t len)
{
    RENC_RETURN_IF(!out || !bytes || len == 0, -RENC_E_INVALID);

    struct renc_key *key = renc_key_new(len);
    RENC_RETURN_IF(!key, -RENC_E_NOMEM);
    memcpy(key->bytes, bytes, len);
    *out = key;
    return 0;
}

int renc_key_dup(struct renc_key **out, const struct renc_key *key)
{
    RENC_RETURN_IF(!key, -RENC_E_INVALID);
    return renc_key_from_bytes(out, key->bytes, key->len);
}

void renc_secmem_wipe(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

int renc_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}

int renc_random_bytes(uint8_t *out, size_t n)
{
    RENC_RETURN_IF(!out && n, -RENC_E_INVALID);
    /* RAND_bytes takes an int; salts and prefixes are short, but a caller
     * asking for more still gets all of it. */
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(out, chunk) != 1)
            return -RENC_E_CRYPTO;
        out += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}
