/* tests/fuzz/fuzz_record.c — the RENC v1 record codec (FORMAT.md §3).
 *
 * Input: a control byte, then the bytes of one record.
 *   control bit 0     the header's flags bit 0 (segments may be compressed)
 *   control bit 1     last
 *   control bits 2-4  seg_shift - 12, taken mod 5: S from 4 KiB to 64 KiB
 *   control bits 5-7  the record index
 * Keys are fixed: K_data derived (renc_blob_keys_derive) from a constant DEK
 * and salt, with a constant nonce prefix, so seeds sealed with them open.
 *
 * Two halves, both on every input:
 *   open     renc_record_parse_word, then renc_record_open of the record (cut
 *            to the length the word gives) must never crash; what opens is at
 *            most S bytes; renc_record_reseal succeeds exactly when open does
 *            and what it reseals opens to the same plaintext.
 *   round    the rest of the input, cut to S, is sealed as a segment without
 *   trip     and with compression; each record's word must parse to its own
 *            length and open to the same bytes.  abort() if not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/header.h"
#include "crypto/hkdf.h"
#include "crypto/record.h"
#include "crypto/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

#define FUZZ_SEG_SHIFT_MAX 16

/* The constants seeds are made with: DEK 00..1f, salt 20..3f, prefix
 * "fuzzrec", and a second prefix for reseal. */
static const uint8_t fuzz_prefix[7] = {'f', 'u', 'z', 'z', 'r', 'e', 'c'};
static const uint8_t fuzz_prefix2[7] = {'r', 'e', 's', 'e', 'a', 'l', '2'};

struct fuzz_state {
    struct renc_aead *aead;   /* K_data of DEK 00..1f, salt 20..3f */
    struct renc_aead *aead2;  /* K_data of the same DEK, salt 40..5f (reseal target) */
    struct renc_zstd *z;      /* level 1, S up to 64 KiB */
    uint8_t *rec;             /* scratch records */
    uint8_t *rec2;
};

static struct renc_aead *fuzz_aead(uint8_t salt_base)
{
    uint8_t dek_bytes[32], salt[32];
    for (int i = 0; i < 32; i++) {
        dek_bytes[i] = (uint8_t)i;
        salt[i] = (uint8_t)(salt_base + i);
    }
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys = {0};
    struct renc_aead *aead = NULL;
    if (renc_key_from_bytes(&dek, dek_bytes, sizeof dek_bytes) != 0 ||
        renc_blob_keys_derive(&keys, dek, salt) != 0 ||
        renc_aead_new(&aead, keys.k_data, RENC_AEAD_BACKEND_AUTO) != 0)
        abort();
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    return aead;
}

static struct fuzz_state *fuzz_state(void)
{
    static struct fuzz_state st;
    if (st.aead)
        return &st;
    st.aead = fuzz_aead(0x20);
    st.aead2 = fuzz_aead(0x40);
    if (renc_zstd_new(&st.z, 1, (uint32_t)1 << FUZZ_SEG_SHIFT_MAX) != 0)
        abort();
    st.rec = renc_malloc(renc_record_max_len((uint32_t)1 << FUZZ_SEG_SHIFT_MAX));
    st.rec2 = renc_malloc(renc_record_max_len((uint32_t)1 << FUZZ_SEG_SHIFT_MAX));
    FUZZ_CHECK(st.rec && st.rec2);
    return &st;
}

/* Reads every byte, so that ASan sees an out-of-bounds plaintext. */
static uint8_t fuzz_touch(const uint8_t *p, size_t n)
{
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= p[i];
    return x;
}

static void fuzz_open(struct fuzz_state *st, const uint8_t *rec_in, size_t rec_avail,
                      uint8_t flags, uint32_t seg, uint32_t index, int last)
{
    if (rec_avail < RENC_RECORD_WORD_LEN)
        return;
    size_t rec_len;
    if (renc_record_parse_word(renc_load_be32(rec_in), flags, seg, &rec_len) != 0)
        return;
    FUZZ_CHECK(rec_len >= RENC_RECORD_OVERHEAD && rec_len <= renc_record_max_len(seg));
    /* A short input is a truncated record: open must refuse it. */
    size_t n = rec_avail < rec_len ? rec_avail : rec_len;

    /* Exactly n bytes on the heap, so ASan catches a read or write past it. */
    uint8_t *rec = renc_malloc(n ? n : 1);
    uint8_t *copy = renc_malloc(n ? n : 1);
    FUZZ_CHECK(rec && copy);
    memcpy(rec, rec_in, n);
    memcpy(copy, rec_in, n);

    const uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rc = renc_record_open(st->aead, st->z, &plain, &plain_len, rec, n, seg, fuzz_prefix,
                              index, last);
    if (n < rec_len)
        FUZZ_CHECK(rc != 0);
    if (rc == 0) {
        FUZZ_CHECK(plain != NULL && plain_len <= seg);
        (void)fuzz_touch(plain, plain_len);
    } else {
        /* Verify, then release: a failed open leaves no plaintext behind in
         * the record's payload area. */
        FUZZ_CHECK(rc < 0);
    }

    /* Reseal (rekey without decompression) checks the tag but not the
     * frame: it succeeds whenever the tag verifies, and what it reseals then
     * opens under the new key exactly as the original did (same result, same
     * plaintext length). */
    int rc2 = renc_record_reseal(st->aead, st->aead2, copy, n, fuzz_prefix, fuzz_prefix2,
                                 index, last);
    if (rc == 0 || rc == -RENC_E_DECOMPRESS)
        FUZZ_CHECK(rc2 == 0);
    if (rc2 == 0) {
        const uint8_t *plain2 = NULL;
        size_t plain2_len = 0;
        int rc3 = renc_record_open(st->aead2, st->z, &plain2, &plain2_len, copy, n, seg,
                                   fuzz_prefix2, index, last);
        FUZZ_CHECK(rc3 == rc);
        /* plain may live in z's scratch, which this open reused; the raw
         * case can be compared byte for byte. */
        if (rc3 == 0) {
            FUZZ_CHECK(plain2_len == plain_len);
            if (!(renc_load_be32(rec_in) & RENC_RECORD_COMPRESSED))
                FUZZ_CHECK(memcmp(plain2, rec + RENC_RECORD_WORD_LEN, plain_len) == 0);
        }
    } else {
        FUZZ_CHECK(rc != 0);
    }
    renc_free(copy);
    renc_free(rec);
}

static void fuzz_round_trip(struct fuzz_state *st, const uint8_t *plain, size_t len,
                            uint32_t seg, uint32_t index, int last, int compress)
{
    struct renc_zstd *z = compress ? st->z : NULL;
    uint8_t flags = compress ? 0x01u : 0;
    size_t rec_len = 0;
    FUZZ_CHECK(renc_record_seal(st->aead, z, st->rec, renc_record_max_len(seg), &rec_len,
                                plain, len, fuzz_prefix, index, last) == 0);
    FUZZ_CHECK(rec_len >= RENC_RECORD_OVERHEAD && rec_len <= renc_record_max_len(len));
    uint32_t word = renc_load_be32(st->rec);
    if (!compress)
        FUZZ_CHECK(word == (uint32_t)len);

    size_t parsed_len;
    FUZZ_CHECK(renc_record_parse_word(word, flags, seg, &parsed_len) == 0);
    FUZZ_CHECK(parsed_len == rec_len);

    /* A flipped bit anywhere must make it fail (tag or word check). */
    if (rec_len > 0) {
        memcpy(st->rec2, st->rec, rec_len);
        st->rec2[(len * 7 + index) % rec_len] ^= 0x10;
        const uint8_t *p;
        size_t pl;
        FUZZ_CHECK(renc_record_open(st->aead, st->z, &p, &pl, st->rec2, rec_len, seg,
                                    fuzz_prefix, index, last) != 0);
    }
    /* So must the wrong position: the other value of last. */
    memcpy(st->rec2, st->rec, rec_len);
    {
        const uint8_t *p;
        size_t pl;
        FUZZ_CHECK(renc_record_open(st->aead, st->z, &p, &pl, st->rec2, rec_len, seg,
                                    fuzz_prefix, index, !last) != 0);
    }

    const uint8_t *out = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(renc_record_open(st->aead, st->z, &out, &out_len, st->rec, rec_len, seg,
                                fuzz_prefix, index, last) == 0);
    FUZZ_CHECK(out_len == len);
    FUZZ_CHECK(len == 0 || memcmp(out, plain, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_state *st = fuzz_state();
    uint8_t ctl = data[0];
    uint8_t flags = ctl & 0x01u;
    int last = (ctl >> 1) & 1;
    uint32_t seg = (uint32_t)1 << (RENC_SEG_SHIFT_MIN + ((ctl >> 2) & 7) % 5);
    uint32_t index = ctl >> 5;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;

    fuzz_open(st, rest, rest_len, flags, seg, index, last);

    size_t plain_len = rest_len < seg ? rest_len : seg;
    fuzz_round_trip(st, rest, plain_len, seg, index, last, 0);
    fuzz_round_trip(st, rest, plain_len, seg, index, last, 1);
    return 0;
}
