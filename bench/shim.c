/* bench/shim.c — the C side of the benchmarks (see shim.h). */
#include "bench/shim.h"

#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/record.h"
#include "crypto/secmem.h"

/* Open batches hold about this many bytes (at least 4 records): enough that
 * refilling, outside the timed region, is rare, and small enough to stay in
 * a core's L2, where a sealed segment is when the seal rows run. */
#define RENC_BENCH_BATCH_BYTES ((size_t)1 << 20)
#define RENC_BENCH_BATCH_MIN 4
#define RENC_BENCH_ALIGN 64

struct renc_bench_ctx {
    struct renc_aead *aead;
    size_t max_seg;
    uint8_t *work;      /* one record: word, payload, tag */
    uint8_t *sealed;    /* the record (or raw GCM output) the batch copies */
    uint32_t index;     /* the next record index to seal */
    /* The open batch: count copies of one sealed record, stride apart. */
    uint8_t *batch;
    size_t batch_cap;   /* bytes */
    size_t stride;
    int count;
    int raw;
    size_t n;           /* plaintext bytes per copy */
    size_t sealed_len;  /* bytes per copy: record, or ciphertext and tag */
};

static const uint8_t renc_bench_prefix[7] = {'b', 'e', 'n', 'c', 'h', 'r', 'e'};
static const uint8_t renc_bench_aad[4] = {0, 0, 0, 0};

static size_t renc_bench_round(size_t n)
{
    return (n + RENC_BENCH_ALIGN - 1) & ~(size_t)(RENC_BENCH_ALIGN - 1);
}

int renc_bench_ctx_new(struct renc_bench_ctx **out, size_t max_seg_size, const char *backend)
{
    RENC_RETURN_IF(max_seg_size == 0 || max_seg_size > RENC_RECORD_LEN_MASK, -RENC_E_INVALID);
    enum renc_aead_backend be;
    int rc = renc_aead_backend_parse(backend, &be);
    if (rc)
        return rc;
    uint8_t dek_bytes[32], salt[32];
    for (int i = 0; i < 32; i++) {
        dek_bytes[i] = (uint8_t)(0xd0 + i);
        salt[i] = (uint8_t)(0x50 + i);
    }
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys = {0};
    struct renc_bench_ctx *ctx = renc_calloc(1, sizeof *ctx);
    RENC_RETURN_IF(!ctx, -RENC_E_NOMEM);
    rc = renc_key_from_bytes(&dek, dek_bytes, sizeof dek_bytes);
    if (rc == 0)
        rc = renc_blob_keys_derive(&keys, dek, salt);
    if (rc == 0)
        rc = renc_aead_new(&ctx->aead, keys.k_data, be);
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    if (rc)
        goto out_free;

    /* Cache-line aligned, as the record pool's buffers are. */
    size_t rec = renc_bench_round(renc_record_max_len((uint32_t)max_seg_size));
    ctx->batch_cap = rec * RENC_BENCH_BATCH_MIN > RENC_BENCH_BATCH_BYTES
                         ? rec * RENC_BENCH_BATCH_MIN
                         : RENC_BENCH_BATCH_BYTES;
    ctx->work = renc_aligned_alloc(RENC_BENCH_ALIGN, rec);
    ctx->sealed = renc_aligned_alloc(RENC_BENCH_ALIGN, rec);
    ctx->batch = renc_aligned_alloc(RENC_BENCH_ALIGN, ctx->batch_cap);
    if (!ctx->work || !ctx->sealed || !ctx->batch) {
        rc = -RENC_E_NOMEM;
        goto out_free;
    }
    /* Any plaintext will do for speed; a fixed pattern keeps runs alike. */
    for (size_t i = 0; i < rec; i++)
        ctx->work[i] = (uint8_t)(i * 131 + 7);
    ctx->max_seg = max_seg_size;
    *out = ctx;
    return 0;

out_free:
    renc_bench_ctx_free(ctx);
    return rc;
}

void renc_bench_ctx_free(struct renc_bench_ctx *ctx)
{
    if (!ctx)
        return;
    renc_aead_free(ctx->aead);
    renc_free(ctx->work);
    renc_free(ctx->sealed);
    renc_free(ctx->batch);
    renc_free(ctx);
}

const char *renc_bench_backend(const struct renc_bench_ctx *ctx)
{
    return renc_aead_backend_name(ctx->aead);
}

static void renc_bench_nonce(uint8_t nonce[RENC_AEAD_NONCE_LEN], uint32_t index)
{
    renc_record_nonce(nonce, renc_bench_prefix, index, 0);
}

int renc_bench_record_seal(struct renc_bench_ctx *ctx, size_t seg_size)
{
    RENC_RETURN_IF(seg_size > ctx->max_seg, -RENC_E_TOO_BIG);
    size_t rec_len;
    return renc_record_seal(ctx->aead, NULL, ctx->work, renc_record_max_len((uint32_t)seg_size),
                            &rec_len, ctx->work + RENC_RECORD_WORD_LEN, seg_size,
                            renc_bench_prefix, ctx->index++, 0);
}

int renc_bench_aead_seal(struct renc_bench_ctx *ctx, size_t len)
{
    RENC_RETURN_IF(len > ctx->max_seg, -RENC_E_TOO_BIG);
    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    renc_bench_nonce(nonce, ctx->index++);
    return renc_aead_seal(ctx->aead, ctx->work, ctx->work + len, ctx->work, len, nonce,
                          renc_bench_aad, sizeof renc_bench_aad);
}

int renc_bench_open_fill(struct renc_bench_ctx *ctx, int raw, size_t n)
{
    RENC_RETURN_IF(n > ctx->max_seg, -RENC_E_TOO_BIG);
    size_t stride = renc_bench_round(renc_record_max_len((uint32_t)n));
    if (ctx->count == 0 || ctx->raw != raw || ctx->n != n) {
        /* Seal one record (index 0) once; the batch gets copies of it. */
        uint8_t *first = ctx->sealed;
        ctx->count = 0; /* no batch until this seal succeeds */
        int rc;
        size_t len;
        if (raw) {
            uint8_t nonce[RENC_AEAD_NONCE_LEN];
            renc_bench_nonce(nonce, 0);
            rc = renc_aead_seal(ctx->aead, first, first + n, ctx->work, n, nonce,
                                renc_bench_aad, sizeof renc_bench_aad);
            len = n + RENC_AEAD_TAG_LEN;
        } else {
            rc = renc_record_seal(ctx->aead, NULL, first, stride, &len, ctx->work, n,
                                  renc_bench_prefix, 0, 0);
        }
        if (rc)
            return rc;
        size_t count = RENC_BENCH_BATCH_BYTES / stride;
        if (count < RENC_BENCH_BATCH_MIN)
            count = RENC_BENCH_BATCH_MIN;
        ctx->stride = stride;
        ctx->count = (int)count;
        ctx->raw = raw;
        ctx->n = n;
        ctx->sealed_len = len;
    }
    for (int i = 0; i < ctx->count; i++)
        memcpy(ctx->batch + (size_t)i * ctx->stride, ctx->sealed, ctx->sealed_len);
    return ctx->count;
}

int renc_bench_open(struct renc_bench_ctx *ctx, int i)
{
    RENC_RETURN_IF(i < 0 || i >= ctx->count, -RENC_E_INVALID);
    uint8_t *p = ctx->batch + (size_t)i * ctx->stride;
    if (ctx->raw) {
        uint8_t nonce[RENC_AEAD_NONCE_LEN];
        renc_bench_nonce(nonce, 0);
        return renc_aead_open(ctx->aead, p, p, ctx->n, p + ctx->n, nonce, renc_bench_aad,
                              sizeof renc_bench_aad);
    }
    const uint8_t *plain;
    size_t plain_len;
    int rc = renc_record_open(ctx->aead, NULL, &plain, &plain_len, p, ctx->sealed_len,
                              (uint32_t)ctx->n, renc_bench_prefix, 0, 0);
    RENC_RETURN_IF(rc == 0 && plain_len != ctx->n, -RENC_E_LENGTH_MISMATCH);
    return rc;
}
