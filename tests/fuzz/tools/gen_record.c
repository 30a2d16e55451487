/* One-off seed generator for tests/fuzz/corpus/record (not part of the tree).
 * Same constants as tests/fuzz/fuzz_record.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "common/bytes.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/record.h"
#include "crypto/secmem.h"

static const uint8_t prefix[7] = {'f','u','z','z','r','e','c'};
static struct renc_aead *aead;
static struct renc_zstd *z;
static const char *outdir;

static void put(const char *name, uint8_t ctl, const uint8_t *rec, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    fputc(ctl, f);
    fwrite(rec, 1, len, f);
    fclose(f);
}

static uint8_t ctl_of(int flags, int last, int shift, int index)
{
    return (uint8_t)(flags | last << 1 | (shift - 12) << 2 | index << 5);
}

static void sealed(const char *name, int flags, int last, int shift, int index,
                   const uint8_t *plain, size_t len, int compress)
{
    static uint8_t rec[70000];
    size_t n;
    if (renc_record_seal(aead, compress ? z : NULL, rec, sizeof rec, &n, plain, len, prefix,
                         (uint32_t)index, last)) abort();
    put(name, ctl_of(flags, last, shift, index), rec, n);
}

/* A record with any word and payload, sealed properly (so it reaches the
 * decompressor). */
static void crafted(const char *name, int flags, int last, int shift, int index,
                    uint32_t word, const uint8_t *payload, size_t len)
{
    static uint8_t rec[140000];
    uint8_t nonce[12];
    renc_record_nonce(nonce, prefix, (uint32_t)index, last);
    renc_store_be32(rec, word);
    if (renc_aead_seal(aead, rec + 4, rec + 4 + len, payload, len, nonce, rec, 4)) abort();
    put(name, ctl_of(flags, last, shift, index), rec, len + 20);
}

int main(int argc, char **argv)
{
    outdir = argv[1];
    uint8_t dekb[32], salt[32];
    for (int i = 0; i < 32; i++) { dekb[i] = (uint8_t)i; salt[i] = (uint8_t)(0x20 + i); }
    struct renc_key *dek; struct renc_blob_keys keys;
    if (renc_key_from_bytes(&dek, dekb, 32) || renc_blob_keys_derive(&keys, dek, salt) ||
        renc_aead_new(&aead, keys.k_data, RENC_AEAD_BACKEND_AUTO) ||
        renc_zstd_new(&z, 3, 1u << 16)) abort();

    static uint8_t text[70000], rnd[70000];
    const char *words[] = {"alpha ", "beta ", "gamma ", "delta=1\n", "renc ", "{\"k\":42} "};
    size_t p = 0;
    for (int i = 0; p < sizeof text - 16; i++) {
        const char *w = words[(i * 7 + i / 3) % 6];
        memcpy(text + p, w, strlen(w)); p += strlen(w);
    }
    srand(1);
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)rand();

    sealed("raw-empty-last", 0, 1, 12, 0, text, 0, 0);
    sealed("raw-1-last", 0, 1, 12, 0, text, 1, 0);
    sealed("raw-100-idx1-last", 0, 1, 12, 1, rnd, 100, 0);
    sealed("raw-4096-full-notlast", 0, 0, 12, 0, rnd, 4096, 0);
    sealed("raw-8192-s13-idx2", 0, 0, 13, 2, rnd, 8192, 0);
    sealed("raw-3000-s14-last", 1, 1, 14, 7, rnd, 3000, 0);
    sealed("zstd-4096-text", 1, 0, 12, 0, text, 4096, 1);
    sealed("zstd-1000-text-last", 1, 1, 12, 5, text, 1000, 1);
    sealed("zstd-16384-s14-idx3", 1, 0, 14, 3, text, 16384, 1);
    sealed("zstd-20000-s15-last", 1, 1, 15, 1, text, 20000, 1);
    sealed("zstd-rnd-stays-raw", 1, 1, 12, 0, rnd, 2000, 1);

    /* Crafted payloads behind valid tags: the decompressor's refusals. */
    uint8_t frame[140000];
    size_t fn;
    static uint8_t zeros[70000];
    fn = ZSTD_compress(frame, sizeof frame, zeros, 8192, 3);  /* 8 KiB > S=4 KiB */
    crafted("craft-frame-bigger-than-S", 1, 1, 12, 0, 0x80000000u | (uint32_t)fn, frame, fn);
    fn = ZSTD_compress(frame, sizeof frame, text, 1000, 3);
    size_t fn2 = ZSTD_compress(frame + fn, sizeof frame - fn, text, 500, 3);
    crafted("craft-two-frames", 1, 1, 12, 0, 0x80000000u | (uint32_t)(fn + fn2), frame, fn + fn2);
    crafted("craft-frame-plus-junk", 1, 1, 12, 0, 0x80000000u | (uint32_t)(fn + 3), frame, fn + 3);
    crafted("craft-frame-cut", 1, 1, 12, 0, 0x80000000u | (uint32_t)(fn - 4), frame, fn - 4);
    {   /* No content size in the frame header. */
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        fn = ZSTD_compress2(c, frame, sizeof frame, text, 3000);
        crafted("craft-frame-no-size-checksum", 1, 1, 12, 0, 0x80000000u | (uint32_t)fn, frame, fn);
        fn = ZSTD_compress2(c, frame, sizeof frame, zeros, 6000);
        crafted("craft-frame-no-size-too-big", 1, 1, 12, 0, 0x80000000u | (uint32_t)fn, frame, fn);
        ZSTD_freeCCtx(c);
    }
    {   /* A skippable frame: decodes to nothing. */
        uint8_t sk[16] = {0x50, 0x2a, 0x4d, 0x18, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
        crafted("craft-skippable", 1, 1, 12, 0, 0x80000000u | 16, sk, 16);
    }
    crafted("craft-garbage-compressed", 1, 1, 12, 0, 0x80000000u | 64, rnd, 64);
    {   /* Content size says 10, frame holds 1000. */
        fn = ZSTD_compress(frame, sizeof frame, text, 1000, 3);
        crafted("craft-raw-len-too-long", 0, 1, 12, 0, 4097, rnd, 4097);
    }
    /* Mutations of a good record: failures before and at the tag. */
    {
        static uint8_t rec[70000];
        size_t n;
        renc_record_seal(aead, NULL, rec, sizeof rec, &n, text, 300, prefix, 0, 1);
        rec[4 + 10] ^= 1;
        put("mut-flipped-ciphertext", ctl_of(0, 1, 12, 0), rec, n);
        rec[4 + 10] ^= 1;
        put("mut-wrong-last", ctl_of(0, 0, 12, 0), rec, n);
        put("mut-wrong-index", ctl_of(0, 1, 12, 3), rec, n);
        put("mut-truncated", ctl_of(0, 1, 12, 0), rec, n - 7);
        rec[0] |= 0x80;
        put("mut-compressed-bit-no-flag", ctl_of(0, 1, 12, 0), rec, n);
        put("mut-compressed-bit-raw-payload", ctl_of(1, 1, 12, 0), rec, n);
    }
    put("tiny-word-only", ctl_of(0, 1, 12, 0), (const uint8_t *)"\0\0\0\0", 4);
    put("tiny-3", ctl_of(0, 1, 12, 0), (const uint8_t *)"\0\0\0", 3);
    return 0;
}
