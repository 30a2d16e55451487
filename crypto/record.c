/* crypto/record.c — seal and open one RENC v1 record (FORMAT.md §3). */
#include "crypto/record.h"

#include <string.h>

#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"

struct renc_zstd {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
    uint32_t seg_size;
    uint8_t *scratch; /* seg_size bytes: compressed payload or decompressed segment */
};

int renc_zstd_new(struct renc_zstd **out, int level, uint32_t seg_size)
{
    RENC_RETURN_IF(level < 1 || level > ZSTD_maxCLevel(), -RENC_E_INVALID);
    struct renc_zstd *z = renc_calloc(1, sizeof *z);
    RENC_RETURN_IF(!z, -RENC_E_NOMEM);
    z->cctx = ZSTD_createCCtx();
    z->dctx = ZSTD_createDCtx();
    z->scratch = renc_malloc(seg_size);
    if (!z->cctx || !z->dctx || !z->scratch) {
        renc_zstd_free(z);
        return -RENC_E_NOMEM;
    }
    z->level = level;
    z->seg_size = seg_size;
    *out = z;
    return 0;
}

void renc_zstd_free(struct renc_zstd *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    if (z->scratch)
        renc_secmem_wipe(z->scratch, z->seg_size);
    renc_free(z->scratch);
    renc_free(z);
}

void renc_record_nonce(uint8_t nonce[RENC_AEAD_NONCE_LEN], const uint8_t prefix[7],
                       uint32_t index, int last)
{
    memcpy(nonce, prefix, 7);
    renc_store_be32(nonce + 7, index);
    nonce[11] = last ? 1 : 0;
}

int renc_record_seal(struct renc_aead *aead, struct renc_zstd *z,
                     uint8_t *out, size_t max_out, size_t *out_len,
                     const uint8_t *plain, size_t plain_len,
                     const uint8_t prefix[7], uint32_t index, int last)
{
    RENC_RETURN_IF(plain_len > RENC_RECORD_LEN_MASK, -RENC_E_TOO_BIG);
    RENC_RETURN_IF(max_out < plain_len + RENC_RECORD_OVERHEAD, -RENC_E_TOO_BIG);

    const uint8_t *payload = plain;
    size_t payload_len = plain_len;
    uint32_t word = (uint32_t)plain_len;
    if (z && plain_len > 0) {
        RENC_RETURN_IF(plain_len > z->seg_size, -RENC_E_TOO_BIG);
        /* Capacity plain_len - 1: zstd fails with "dst too small" exactly
         * when the frame would not be smaller, and the raw bytes are stored. */
        size_t n = ZSTD_compressCCtx(z->cctx, z->scratch, plain_len - 1, plain, plain_len,
                                     z->level);
        if (!ZSTD_isError(n) && n < plain_len) {
            payload = z->scratch;
            payload_len = n;
            word = RENC_RECORD_COMPRESSED | (uint32_t)n;
        }
    }

    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    renc_record_nonce(nonce, prefix, index, last);
    renc_store_be32(out, word);
    int rc = renc_aead_seal(aead, out + RENC_RECORD_WORD_LEN,
                            out + RENC_RECORD_WORD_LEN + payload_len, payload, payload_len,
                            nonce, out, RENC_RECORD_WORD_LEN);
    if (rc)
        return rc;
    *out_len = payload_len + RENC_RECORD_OVERHEAD;
    return 0;
}

int renc_record_parse_word(uint32_t word, uint8_t flags, uint32_t seg_size, size_t *record_len)
{
    uint32_t len = word & RENC_RECORD_LEN_MASK;
    if (word & RENC_RECORD_COMPRESSED) {
        RENC_RETURN_IF(!(flags & 0x01u), -RENC_E_BAD_RECORD);
        /* A writer stores the frame only when it is smaller than the
         * segment, and a zstd frame is never empty. */
        RENC_RETURN_IF(len == 0 || len >= seg_size, -RENC_E_BAD_RECORD);
    } else {
        RENC_RETURN_IF(len > seg_size, -RENC_E_BAD_RECORD);
    }
    *record_len = (size_t)len + RENC_RECORD_OVERHEAD;
    return 0;
}

/* A record's word and payload length, checked against its length
 * (rec_len as renc_record_parse_word gave it). */
static int renc_record_split(const uint8_t *rec, size_t rec_len, uint32_t *word,
                             size_t *payload_len)
{
    RENC_RETURN_IF(rec_len < RENC_RECORD_OVERHEAD, -RENC_E_TRUNCATED);
    *word = renc_load_be32(rec);
    *payload_len = rec_len - RENC_RECORD_OVERHEAD;
    RENC_RETURN_IF((*word & RENC_RECORD_LEN_MASK) != *payload_len, -RENC_E_BAD_RECORD);
    return 0;
}

int renc_record_open_into(struct renc_aead *aead, struct renc_zstd *z,
                          const uint8_t **plain, size_t *plain_len, uint8_t *scratch,
                          const uint8_t *rec, size_t rec_len, uint32_t seg_size,
                          const uint8_t prefix[7], uint32_t index, int last)
{
    uint32_t word;
    size_t payload_len;
    int rc = renc_record_split(rec, rec_len, &word, &payload_len);
    if (rc)
        return rc;
    int compressed = (word & RENC_RECORD_COMPRESSED) != 0;
    RENC_RETURN_IF(compressed && !z, -RENC_E_INVALID);
    /* Before decrypting: a failure after it would leave the verified frame
     * in scratch. */
    RENC_RETURN_IF(compressed && seg_size > z->seg_size, -RENC_E_TOO_BIG);

    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    renc_record_nonce(nonce, prefix, index, last);
    const uint8_t *in = rec + RENC_RECORD_WORD_LEN;
    rc = renc_aead_open(aead, scratch, in, payload_len, in + payload_len, nonce, rec,
                        RENC_RECORD_WORD_LEN);
    if (rc)
        return rc;
    if (!compressed) {
        *plain = scratch;
        *plain_len = payload_len;
        return 0;
    }
    /* The frame must hold one segment: at most S bytes, checked against the
     * frame's declared size before any byte is produced. */
    unsigned long long want = ZSTD_getFrameContentSize(scratch, payload_len);
    size_t frame_len = ZSTD_findFrameCompressedSize(scratch, payload_len);
    size_t n = ZSTD_isError(frame_len) || frame_len != payload_len
                   ? (size_t)-1 /* not exactly one frame */
                   : ZSTD_decompressDCtx(z->dctx, z->scratch, seg_size, scratch, payload_len);
    renc_secmem_wipe(scratch, payload_len);
    if (ZSTD_isError(n) || (want != ZSTD_CONTENTSIZE_UNKNOWN && want != n)) {
        renc_secmem_wipe(z->scratch, seg_size);
        return -RENC_E_DECOMPRESS;
    }
    *plain = z->scratch;
    *plain_len = n;
    return 0;
}

int renc_record_open(struct renc_aead *aead, struct renc_zstd *z,
                     const uint8_t **plain, size_t *plain_len,
                     uint8_t *rec, size_t rec_len, uint32_t seg_size,
                     const uint8_t prefix[7], uint32_t index, int last)
{
    RENC_RETURN_IF(rec_len < RENC_RECORD_OVERHEAD, -RENC_E_TRUNCATED);
    /* In place: the payload is its own scratch. */
    return renc_record_open_into(aead, z, plain, plain_len, rec + RENC_RECORD_WORD_LEN, rec,
                                 rec_len, seg_size, prefix, index, last);
}

int renc_record_verify(struct renc_aead *aead, size_t *plain_len, const uint8_t *rec,
                       size_t rec_len, const uint8_t prefix[7], uint32_t index, int last)
{
    uint32_t word;
    size_t payload_len;
    int rc = renc_record_split(rec, rec_len, &word, &payload_len);
    if (rc)
        return rc;
    RENC_RETURN_IF(word & RENC_RECORD_COMPRESSED, -RENC_E_INVALID);
    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    renc_record_nonce(nonce, prefix, index, last);
    const uint8_t *in = rec + RENC_RECORD_WORD_LEN;
    rc = renc_aead_verify(aead, in, payload_len, in + payload_len, nonce, rec,
                              RENC_RECORD_WORD_LEN);
    if (rc == 0)
        *plain_len = payload_len;
    return rc;
}

int renc_record_reseal(struct renc_aead *from, struct renc_aead *to,
                       uint8_t *rec, size_t rec_len,
                       const uint8_t old_prefix[7], const uint8_t new_prefix[7],
                       uint32_t index, int last)
{
    uint32_t word;
    size_t payload_len;
    int rc = renc_record_split(rec, rec_len, &word, &payload_len);
    if (rc)
        return rc;

    uint8_t nonce[RENC_AEAD_NONCE_LEN];
    uint8_t *payload = rec + RENC_RECORD_WORD_LEN;
    renc_record_nonce(nonce, old_prefix, index, last);
    rc = renc_aead_open(from, payload, payload, payload_len, payload + payload_len, nonce, rec,
                        RENC_RECORD_WORD_LEN);
    if (rc)
        return rc;
    renc_record_nonce(nonce, new_prefix, index, last);
    rc = renc_aead_seal(to, payload, payload + payload_len, payload, payload_len,
                        nonce, rec, RENC_RECORD_WORD_LEN);
    if (rc)
        renc_secmem_wipe(payload, payload_len);
    return rc;
}
