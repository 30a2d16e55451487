/* crypto/aead_ipsec_mb.c — AES-256-GCM through Intel's multi-buffer crypto
 * library (ipsec-mb), the faster backend of crypto/aead.h.
 *
 * Only the library's direct GCM API is used: IMB_AES256_GCM_PRE expands a
 * key once, and IMB_AES256_GCM_ENC / _DEC do a whole record in one call with
 * a 12-byte IV.  On a CPU with VAES and VPCLMULQDQ these run the AVX-512
 * code, about three times OpenSSL 3.0's speed per core on 1 MiB records.
 *
 * One IMB_MGR for the whole process.  The direct API only reads the
 * manager's table of function pointers (each call takes the key schedule and
 * a per-call context, never the manager), so after init_mb_mgr_auto the
 * manager is immutable and any number of threads may share it.  A manager
 * per object would cost ~200 KiB and ~185 us (measured: allocation, CPU
 * detection and the library's self-test) on every renc_aead_new, and there are two per blob.  Never
 * call the job or burst API through renc_imb_mgr: those do write it.
 *
 * Nor is imb_get_errno() consulted per call: in this library version the
 * direct API reports errors through one process-wide, unsynchronised int.
 * Instead aead.c rules out every argument the library would reject (NULL
 * with a non-zero length, over-long input) before calling in.
 */
#include "crypto/aead_internal.h"

#ifdef RENC_HAVE_IPSEC_MB

#include <pthread.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "common/alloc.h"
#include "common/error.h"

/* The library wants the key schedule 64-byte aligned (its vector code may
 * load it with aligned instructions).  Its header only declares that
 * alignment when LINUX is defined, as the library's own build does; so this
 * file does not rely on the type's alignment, and rounds the size up to
 * what the library itself sees (1024 bytes). */
#define RENC_IMB_ALIGN 64
#define RENC_IMB_KEY_DATA_BYTES \
    ((sizeof(struct gcm_key_data) + RENC_IMB_ALIGN - 1) & ~(size_t)(RENC_IMB_ALIGN - 1))

struct renc_imb_gcm {
    struct renc_key *mem;    /* secure memory holding the schedule */
    struct gcm_key_data *kd; /* inside mem, 64-byte aligned */
};

/* Set once by renc_imb_detect, then only read; never freed (it lives as long
 * as the process).  NULL when the backend is unavailable. */
static pthread_once_t renc_imb_once = PTHREAD_ONCE_INIT;
static IMB_MGR *renc_imb_mgr;

static void renc_imb_detect(void)
{
    /* The headers must not be newer than the library: the IMB_* macros read
     * function pointers at offsets fixed by the header, and the library only
     * ever appends to IMB_MGR. */
    if (imb_get_version() < IMB_VERSION_NUM)
        return;
    IMB_MGR *mgr = alloc_mb_mgr(0);
    if (!mgr)
        return;
    IMB_ARCH arch = IMB_ARCH_NONE;
    init_mb_mgr_auto(mgr, &arch);

    /* IMB_ARCH_NOAESNI is the library's software AES: slower than OpenSSL,
     * so the CPU "supports" ipsec-mb only with AES-NI and carry-less
     * multiply.  A library built with self-tests must also have passed
     * them. */
    const uint64_t need = IMB_FEATURE_AESNI | IMB_FEATURE_PCLMULQDQ;
    int self_test_ok = !(mgr->features & IMB_FEATURE_SELF_TEST) ||
                       (mgr->features & IMB_FEATURE_SELF_TEST_PASS);
    if (imb_get_errno(mgr) != 0 || arch < IMB_ARCH_SSE || (mgr->features & need) != need ||
        !self_test_ok || !mgr->gcm256_pre || !mgr->gcm256_enc || !mgr->gcm256_dec) {
        free_mb_mgr(mgr);
        return;
    }
    renc_imb_mgr = mgr;
}

int renc_imb_gcm_available(void)
{
    if (pthread_once(&renc_imb_once, renc_imb_detect) != 0)
        return 0;
    return renc_imb_mgr != NULL;
}

/* A secure buffer for the schedule.  OpenSSL's secure heap is a buddy
 * allocator, so a 1 KiB block is 1 KiB-aligned and the exact size fits; its
 * fallback (no heap: sanitizer builds, no mlock) is malloc, 16-byte
 * aligned, and then 63 bytes of slack let the schedule start on a
 * boundary. */
static struct renc_key *renc_imb_key_mem(struct gcm_key_data **kd)
{
    struct renc_key *mem = renc_key_new(RENC_IMB_KEY_DATA_BYTES);
    if (mem && ((uintptr_t)mem->bytes & (RENC_IMB_ALIGN - 1)) != 0) {
        renc_key_free(mem);
        mem = renc_key_new(RENC_IMB_KEY_DATA_BYTES + RENC_IMB_ALIGN - 1);
    }
    if (!mem)
        return NULL;
    uintptr_t p = ((uintptr_t)mem->bytes + RENC_IMB_ALIGN - 1) & ~(uintptr_t)(RENC_IMB_ALIGN - 1);
    *kd = (struct gcm_key_data *)p;
    return mem;
}

int renc_imb_gcm_new(struct renc_imb_gcm **out, const struct renc_key *key)
{
    RENC_RETURN_IF(!renc_imb_gcm_available(), -RENC_E_UNSUPPORTED);

    struct renc_imb_gcm *g = renc_malloc(sizeof(*g));
    RENC_RETURN_IF(!g, -RENC_E_NOMEM);
    g->mem = renc_imb_key_mem(&g->kd);
    if (!g->mem) {
        renc_free(g);
        return -RENC_E_NOMEM;
    }
    /* Round keys and the GHASH table of H.  A library built with SAFE_DATA
     * (Debian's is: IMB_FEATURE_SAFE_DATA) also clears key material from
     * the registers and stack it used. */
    IMB_AES256_GCM_PRE(renc_imb_mgr, key->bytes, g->kd);
    *out = g;
    return 0;
}

void renc_imb_gcm_free(struct renc_imb_gcm *g)
{
    if (!g)
        return;
    renc_key_free(g->mem); /* wipes the schedule */
    renc_free(g);
}

/* The library's parameter checks reject NULL even where the length is 0 in
 * some versions; an empty input gets this address instead.  Never written:
 * nothing is written through a zero-length pointer. */
static uint8_t renc_imb_empty[RENC_IMB_ALIGN];

void renc_imb_gcm_seal(const struct renc_imb_gcm *g, uint8_t *out,
                       uint8_t tag[RENC_AEAD_TAG_LEN], const uint8_t *in, size_t len,
                       const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len)
{
    /* Holds a keystream block and the running GHASH: wiped after use. */
    _Alignas(RENC_IMB_ALIGN) struct gcm_context_data ctx;
    IMB_AES256_GCM_ENC(renc_imb_mgr, g->kd, &ctx, len ? out : renc_imb_empty,
                       len ? in : renc_imb_empty, (uint64_t)len, nonce,
                       aad_len ? aad : renc_imb_empty, (uint64_t)aad_len, tag,
                       RENC_AEAD_TAG_LEN);
    renc_secmem_wipe(&ctx, sizeof(ctx));
}

int renc_imb_gcm_open(const struct renc_imb_gcm *g, uint8_t *out, const uint8_t *in,
                      size_t len, const uint8_t tag[RENC_AEAD_TAG_LEN],
                      const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                      const uint8_t *aad, size_t aad_len)
{
    _Alignas(RENC_IMB_ALIGN) struct gcm_context_data ctx;
    uint8_t expect[RENC_AEAD_TAG_LEN];

    /* Start from a value that cannot match: if the call ever returned
     * without writing the tag, the record is refused, not accepted. */
    for (size_t i = 0; i < sizeof(expect); i++)
        expect[i] = (uint8_t)~tag[i];
    /* The library decrypts into out and computes the tag over `in` in the
     * same pass; it does not check the tag.  So out holds unverified
     * plaintext until the comparison below. */
    IMB_AES256_GCM_DEC(renc_imb_mgr, g->kd, &ctx, len ? out : renc_imb_empty,
                       len ? in : renc_imb_empty, (uint64_t)len, nonce,
                       aad_len ? aad : renc_imb_empty, (uint64_t)aad_len, expect,
                       RENC_AEAD_TAG_LEN);
    renc_secmem_wipe(&ctx, sizeof(ctx));
    int ok = renc_ct_equal(expect, tag, RENC_AEAD_TAG_LEN);
    renc_secmem_wipe(expect, sizeof(expect));
    if (!ok) {
        /* Verify, then release: no unverified plaintext survives. */
        renc_secmem_wipe(out, len);
        return -RENC_E_RECORD_AUTH;
    }
    return 0;
}

int renc_imb_gcm_verify(const struct renc_imb_gcm *g, const uint8_t *in, size_t len,
                        const uint8_t tag[RENC_AEAD_TAG_LEN],
                        const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                        const uint8_t *aad, size_t aad_len)
{
    _Alignas(RENC_IMB_ALIGN) struct gcm_context_data ctx;
    _Alignas(RENC_IMB_ALIGN) uint8_t piece[RENC_AEAD_VERIFY_PIECE];
    uint8_t expect[RENC_AEAD_TAG_LEN];

    for (size_t i = 0; i < sizeof(expect); i++)
        expect[i] = (uint8_t)~tag[i]; /* as in renc_imb_gcm_open */
    IMB_AES256_GCM_INIT(renc_imb_mgr, g->kd, &ctx, nonce, aad_len ? aad : renc_imb_empty,
                        (uint64_t)aad_len);
    for (size_t off = 0; off < len; off += sizeof(piece)) {
        size_t n = len - off < sizeof(piece) ? len - off : sizeof(piece);
        IMB_AES256_GCM_DEC_UPDATE(renc_imb_mgr, g->kd, &ctx, piece, in + off, (uint64_t)n);
    }
    IMB_AES256_GCM_DEC_FINALIZE(renc_imb_mgr, g->kd, &ctx, expect, RENC_AEAD_TAG_LEN);
    renc_secmem_wipe(&ctx, sizeof(ctx));
    renc_secmem_wipe(piece, len < sizeof(piece) ? len : sizeof(piece));
    int ok = renc_ct_equal(expect, tag, RENC_AEAD_TAG_LEN);
    renc_secmem_wipe(expect, sizeof(expect));
    return ok ? 0 : -RENC_E_RECORD_AUTH;
}

#else /* !RENC_HAVE_IPSEC_MB */

#include "common/error.h"

/* Compiled out: AUTO means OpenSSL, and forcing ipsec-mb is refused. */
int renc_imb_gcm_available(void)
{
    return 0;
}

int renc_imb_gcm_new(struct renc_imb_gcm **out, const struct renc_key *key)
{
    (void)out;
    (void)key;
    return -RENC_E_UNSUPPORTED;
}

void renc_imb_gcm_free(struct renc_imb_gcm *g)
{
    (void)g;
}

void renc_imb_gcm_seal(const struct renc_imb_gcm *g, uint8_t *out,
                       uint8_t tag[RENC_AEAD_TAG_LEN], const uint8_t *in, size_t len,
                       const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len)
{
    /* Unreachable: no struct renc_imb_gcm can exist in this build. */
    (void)g, (void)in, (void)nonce, (void)aad, (void)aad_len;
    renc_secmem_wipe(out, len);
    renc_secmem_wipe(tag, RENC_AEAD_TAG_LEN);
}

int renc_imb_gcm_open(const struct renc_imb_gcm *g, uint8_t *out, const uint8_t *in,
                      size_t len, const uint8_t tag[RENC_AEAD_TAG_LEN],
                      const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                      const uint8_t *aad, size_t aad_len)
{
    (void)g, (void)in, (void)tag, (void)nonce, (void)aad, (void)aad_len;
    renc_secmem_wipe(out, len);
    return -RENC_E_UNSUPPORTED;
}

int renc_imb_gcm_verify(const struct renc_imb_gcm *g, const uint8_t *in, size_t len,
                        const uint8_t tag[RENC_AEAD_TAG_LEN],
                        const uint8_t nonce[RENC_AEAD_NONCE_LEN],
                        const uint8_t *aad, size_t aad_len)
{
    (void)g, (void)in, (void)len, (void)tag, (void)nonce, (void)aad, (void)aad_len;
    return -RENC_E_UNSUPPORTED;
}

#endif
