/* tests/fuzz/fuzz_roundtrip.c — seal, then open, and nothing but the
 * plaintext comes back (FORMAT.md §2-3), at two levels:
 *
 *   records   crypto/record.h directly, with a fixed K_data and nonce prefix:
 *             the plaintext cut into segments, each sealed as record i (last
 *             on the final one), the records laid back to back, then each
 *             opened both ways (in place, and read-only into scratch).
 *   blob      blob/blobfile.h: renc_blob_seal from a memfd into a memfd
 *             through the keystore (a fixed AES KEK, local:rt/1, and with
 *             option bit 5 a second slot under local:rt2/1), then
 *             renc_blob_verify_mem over the bytes and renc_blob_open into a
 *             memfd.
 *
 * Input: four option bytes, then the plaintext (missing option bytes are 0).
 *   o0 bits 0-2  seg_shift 12 + (v % 5): segments of 4 to 64 KiB
 *   o0 bit 3     compression (zstd level 1; a record stays raw when the frame
 *                would not be smaller)
 *   o0 bit 4     blob: plaintext length unknown (as from stdin)
 *   o0 bit 5     blob: a second key slot
 *   o0 bit 6     blob: no header room (else 64 bytes of padding)
 *   o0 bit 7     blob: kind "backup" with a source-env (else "blob")
 *   o1 o2        where to tamper: a byte offset, taken mod the length
 *   o3           the XOR mask of the tampered byte (0 means 0x01)
 *
 * Checks, abort() if not:
 *   - every level gives back the plaintext byte for byte, with the record
 *     count and (raw records) the exact layout FORMAT.md gives;
 *   - one flipped byte anywhere (header, slot, padding, tag, word, payload,
 *     record tag) makes the blob fail to open, both ways; what open wrote
 *     before failing is a prefix of the plaintext (verify, then release);
 *     at record level exactly the record holding the byte fails;
 *   - the blob cut short anywhere, or with a byte appended, fails;
 *   - records swapped, or the last one dropped, fail to open where they
 *     land.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/header.h"
#include "crypto/hkdf.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "crypto/record.h"
#include "crypto/secmem.h"
#include "blob/blobfile.h"
#include "tests/fuzz/fuzz_tmpdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

#define FUZZ_OPT_LEN 4
#define FUZZ_SEG_SHIFT_MAX 16
#define FUZZ_HEADER_ROOM 64

/* The KEKs of local:rt/1 and local:rt2/1. */
static const uint8_t fuzz_kek[2][32] = {
    {'r', 'e', 'n', 'c', ' ', 'f', 'u', 'z', 'z', ' ', 'r', 'o', 'u', 'n', 'd', ' ',
     't', 'r', 'i', 'p', ' ', 'k', 'e', 'k', 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08},
    {'r', 'e', 'n', 'c', ' ', 'f', 'u', 'z', 'z', ' ', 's', 'e', 'c', 'o', 'n', 'd',
     ' ', 's', 'l', 'o', 't', ' ', 'k', 'e', 'k', 0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97},
};
static const char *const fuzz_refs[2] = {"local:rt", "local:rt2"};
static const uint8_t fuzz_prefix[7] = {'r', 'o', 'u', 'n', 'd', 't', 'r'};

static char fuzz_dir[] = "/tmp/renc-fuzz-roundtrip.XXXXXX";
static struct renc_keyring *fuzz_kr;
static struct renc_keystore *fuzz_ks;
static struct renc_aead *fuzz_aead; /* K_data of DEK 00..1f, salt 60..7f */
static struct renc_zstd *fuzz_z;    /* level 1, segments up to 64 KiB */

static void fuzz_teardown(void)
{
    renc_zstd_free(fuzz_z);
    renc_aead_free(fuzz_aead);
    renc_keystore_free(fuzz_ks);
    renc_keyring_free(fuzz_kr);
    fuzz_rmtree(fuzz_dir);
}

static void fuzz_setup(void)
{
    FUZZ_CHECK(mkdtemp(fuzz_dir) != NULL);
    FUZZ_CHECK(renc_keyring_open(&fuzz_kr, fuzz_dir, 1) == 0);
    atexit(fuzz_teardown);
    for (int i = 0; i < 2; i++) {
        const char *name = fuzz_refs[i] + strlen("local:");
        char path[sizeof fuzz_dir + 32];
        FUZZ_CHECK(renc_keyring_create_key(fuzz_kr, name, RENC_KEK_AES256, 0) == 0);
        /* FORMAT.md: VERSION.key is the 32 raw bytes of the KEK.  Fixed bytes
         * make a failing input reproducible whatever the run. */
        snprintf(path, sizeof path, "%s/%s/1.key", fuzz_dir, name);
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0 && write(fd, fuzz_kek[i], 32) == 32);
        close(fd);
    }
    FUZZ_CHECK(renc_keystore_new(&fuzz_ks, &(struct renc_provider_config){.keyring = fuzz_kr}) ==
               0);

    uint8_t dek_bytes[32], salt[32];
    for (int i = 0; i < 32; i++) {
        dek_bytes[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
    }
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys = {0};
    FUZZ_CHECK(renc_key_from_bytes(&dek, dek_bytes, sizeof dek_bytes) == 0);
    FUZZ_CHECK(renc_blob_keys_derive(&keys, dek, salt) == 0);
    FUZZ_CHECK(renc_aead_new(&fuzz_aead, keys.k_data, RENC_AEAD_BACKEND_AUTO) == 0);
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    FUZZ_CHECK(renc_zstd_new(&fuzz_z, 1, (uint32_t)1 << FUZZ_SEG_SHIFT_MAX) == 0);
}

struct fuzz_opts {
    uint8_t seg_shift;
    int compress, unknown_len, two_slots, no_room, backup;
    size_t flip_at; /* before taking it mod a length */
    uint8_t flip_mask;
};

static uint64_t fuzz_seg_count(size_t len, uint32_t seg)
{
    return len == 0 ? 1 : ((uint64_t)len + seg - 1) / seg;
}

/* ---- records --------------------------------------------------------------- */

/* Opens record i of n at rec (rec_len bytes, a copy is made) both ways;
 * returns 0 and checks the plaintext against want (want_len bytes) when
 * both open, a negative error when both fail; abort() when they disagree. */
static int fuzz_open_record(const uint8_t *rec, size_t rec_len, uint32_t seg, uint8_t flags,
                            uint32_t index, int last, const uint8_t *want, size_t want_len)
{
    size_t parsed = 0;
    if (rec_len < RENC_RECORD_WORD_LEN)
        return -RENC_E_TRUNCATED;
    int rc = renc_record_parse_word(renc_load_be32(rec), flags, seg, &parsed);
    if (rc)
        return rc;
    if (parsed != rec_len)
        return -RENC_E_BAD_RECORD;

    uint8_t *copy = renc_malloc(rec_len);
    uint8_t *scratch = renc_malloc(seg);
    FUZZ_CHECK(copy && scratch);
    memcpy(copy, rec, rec_len);
    const uint8_t *p1 = NULL, *p2 = NULL;
    size_t l1 = 0, l2 = 0;
    int rc1 = renc_record_open_into(fuzz_aead, fuzz_z, &p1, &l1, scratch, rec, rec_len, seg,
                                    fuzz_prefix, index, last);
    if (rc1 == 0) {
        FUZZ_CHECK(l1 == want_len && (want_len == 0 || memcmp(p1, want, want_len) == 0));
    }
    int rc2 = renc_record_open(fuzz_aead, fuzz_z, &p2, &l2, copy, rec_len, seg, fuzz_prefix,
                               index, last);
    FUZZ_CHECK((rc1 == 0) == (rc2 == 0));
    if (rc2 == 0)
        FUZZ_CHECK(l2 == want_len && (want_len == 0 || memcmp(p2, want, want_len) == 0));
    renc_free(scratch);
    renc_free(copy);
    return rc1;
}

static void fuzz_records(const struct fuzz_opts *o, const uint8_t *plain, size_t len)
{
    uint32_t seg = (uint32_t)1 << o->seg_shift;
    uint8_t flags = o->compress ? RENC_FLAG_COMPRESSED : 0;
    uint64_t n = fuzz_seg_count(len, seg);
    size_t cap = (size_t)n * RENC_RECORD_OVERHEAD + len;
    uint8_t *recs = renc_malloc(cap);
    size_t *offs = renc_malloc((size_t)(n + 1) * sizeof *offs);
    FUZZ_CHECK(recs && offs);

    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t seg_len = i + 1 < n ? seg : len - (size_t)i * seg;
        size_t rec_len = 0;
        offs[i] = off;
        FUZZ_CHECK(renc_record_seal(fuzz_aead, o->compress ? fuzz_z : NULL, recs + off,
                                    cap - off, &rec_len, plain + (size_t)i * seg, seg_len,
                                    fuzz_prefix, (uint32_t)i, i + 1 == n) == 0);
        /* A record is never bigger than its raw form. */
        FUZZ_CHECK(rec_len >= RENC_RECORD_OVERHEAD && rec_len <= seg_len + RENC_RECORD_OVERHEAD);
        if (!o->compress)
            FUZZ_CHECK(rec_len == seg_len + RENC_RECORD_OVERHEAD);
        off += rec_len;
    }
    offs[n] = off;

    /* Every record opens, in place and into scratch, to its segment. */
    for (uint64_t i = 0; i < n; i++) {
        size_t seg_len = i + 1 < n ? seg : len - (size_t)i * seg;
        FUZZ_CHECK(fuzz_open_record(recs + offs[i], offs[i + 1] - offs[i], seg, flags,
                                    (uint32_t)i, i + 1 == n, plain + (size_t)i * seg,
                                    seg_len) == 0);
    }

    /* One flipped byte: the record holding it fails, and only that one. */
    size_t at = o->flip_at % off;
    recs[at] ^= o->flip_mask;
    for (uint64_t i = 0; i < n; i++) {
        size_t seg_len = i + 1 < n ? seg : len - (size_t)i * seg;
        int rc = fuzz_open_record(recs + offs[i], offs[i + 1] - offs[i], seg, flags,
                                  (uint32_t)i, i + 1 == n, plain + (size_t)i * seg, seg_len);
        int holds = at >= offs[i] && at < offs[i + 1];
        FUZZ_CHECK(holds ? rc != 0 : rc == 0);
    }
    recs[at] ^= o->flip_mask;

    /* Out of place: record i read as record j (swapped or dropped) fails,
     * and so does the last record read as not last or vice versa. */
    if (n >= 2) {
        uint64_t i = o->flip_at % n, j = (i + 1) % n;
        FUZZ_CHECK(fuzz_open_record(recs + offs[i], offs[i + 1] - offs[i], seg, flags,
                                    (uint32_t)j, j + 1 == n, NULL, 0) != 0);
        /* Dropping the last record makes record n-2 the end: it must not
         * open as the last one. */
        FUZZ_CHECK(fuzz_open_record(recs + offs[n - 2], offs[n - 1] - offs[n - 2], seg, flags,
                                    (uint32_t)(n - 2), 1, NULL, 0) != 0);
    }
    FUZZ_CHECK(fuzz_open_record(recs + offs[n - 1], offs[n] - offs[n - 1], seg, flags,
                                (uint32_t)(n - 1), 0, NULL, 0) != 0);
    renc_free(offs);
    renc_free(recs);
}

/* ---- blob ------------------------------------------------------------------ */

static int fuzz_memfd(const uint8_t *bytes, size_t len)
{
    int fd = memfd_create("renc-fuzz-roundtrip", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, bytes + off, len - off);
        FUZZ_CHECK(n > 0);
        off += (size_t)n;
    }
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

/* The whole content of fd, in a buffer of exactly that size (ASan sees any
 * read past it); *len its length. */
static uint8_t *fuzz_slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    FUZZ_CHECK(end >= 0);
    uint8_t *buf = renc_malloc(end ? (size_t)end : 1);
    FUZZ_CHECK(buf != NULL);
    size_t off = 0;
    while (off < (size_t)end) {
        ssize_t n = pread(fd, buf + off, (size_t)end - off, (off_t)off);
        FUZZ_CHECK(n > 0);
        off += (size_t)n;
    }
    *len = (size_t)end;
    return buf;
}

/* Opens blob (len bytes) both ways.  Returns 0 when both open, with the
 * plaintext checked against want; a negative error when both fail, with
 * whatever renc_blob_open wrote checked to be a prefix of want. */
static int fuzz_open_blob(const uint8_t *blob, size_t len, const uint8_t *want, size_t want_len)
{
    struct renc_blob_status st;
    int rc_mem = renc_blob_verify_mem(fuzz_ks, blob, len, &st);
    if (rc_mem == 0) {
        FUZZ_CHECK(st.plaintext_bytes == want_len && st.slot == 0);
    }

    int in = fuzz_memfd(blob, len);
    int out = memfd_create("renc-fuzz-roundtrip-out", MFD_CLOEXEC);
    FUZZ_CHECK(out >= 0);
    struct renc_header h;
    memset(&h, 0, sizeof h);
    int rc_fd = renc_blob_open(fuzz_ks, in, out, &h, &st);
    size_t got_len = 0;
    uint8_t *got = fuzz_slurp(out, &got_len);
    FUZZ_CHECK((rc_mem == 0) == (rc_fd == 0));
    if (rc_fd == 0) {
        FUZZ_CHECK(st.plaintext_bytes == want_len && got_len == want_len);
        FUZZ_CHECK(h.plaintext_len == RENC_PLAINTEXT_UNKNOWN || h.plaintext_len == want_len);
    } else {
        FUZZ_CHECK(rc_fd < 0 && rc_mem < 0);
        /* Only verified records reach the output. */
        FUZZ_CHECK(got_len <= want_len);
    }
    FUZZ_CHECK(got_len == 0 || memcmp(got, want, got_len) == 0);
    renc_free(got);
    renc_header_cleanup(&h);
    close(out);
    close(in);
    return rc_fd;
}

static void fuzz_blob(const struct fuzz_opts *o, const uint8_t *plain, size_t len)
{
    const char *refs[2] = {fuzz_refs[0], fuzz_refs[1]};
    struct renc_seal_opts so = {
        .env = "fuzz",
        .kind = o->backup ? "backup" : "blob",
        .name = "roundtrip",
        .source_env = o->backup ? "fuzz-source" : NULL,
        .key_refs = refs,
        .key_ref_count = o->two_slots ? 2 : 1,
        .compress_level = o->compress ? 1 : 0,
        .seg_shift = o->seg_shift,
        .header_room = o->no_room ? 0 : FUZZ_HEADER_ROOM,
    };
    uint32_t seg = (uint32_t)1 << o->seg_shift;
    uint64_t n = fuzz_seg_count(len, seg);

    int in = fuzz_memfd(plain, len);
    int out = memfd_create("renc-fuzz-roundtrip-blob", MFD_CLOEXEC);
    FUZZ_CHECK(out >= 0);
    struct renc_blob_status st;
    FUZZ_CHECK(renc_blob_seal(fuzz_ks, &so, in, out,
                              o->unknown_len ? RENC_PLAINTEXT_UNKNOWN : (uint64_t)len, &st) == 0);
    FUZZ_CHECK(st.plaintext_bytes == len && st.records == n);
    size_t blob_len = 0;
    uint8_t *blob = fuzz_slurp(out, &blob_len);
    close(out);
    close(in);

    /* The header says what was asked for. */
    struct renc_header h;
    FUZZ_CHECK(renc_header_parse(&h, blob, blob_len) == 0);
    FUZZ_CHECK(h.seg_shift == o->seg_shift);
    FUZZ_CHECK(h.flags == (o->compress ? RENC_FLAG_COMPRESSED : 0));
    FUZZ_CHECK(h.plaintext_len == (o->unknown_len ? RENC_PLAINTEXT_UNKNOWN : (uint64_t)len));
    FUZZ_CHECK(h.slot_count == so.key_ref_count);
    FUZZ_CHECK(strcmp(h.slots[0].ref, "local:rt/1") == 0);
    if (o->two_slots)
        FUZZ_CHECK(strcmp(h.slots[1].ref, "local:rt2/1") == 0);
    FUZZ_CHECK(h.header_len == renc_header_min_len(&h) + so.header_room);
    FUZZ_CHECK(strcmp(renc_context_get(&h.ctx, "env"), "fuzz") == 0);
    /* Raw records: FORMAT.md's exact layout; compressed ones are never
     * bigger. */
    size_t raw_len = h.header_len + len + (size_t)n * RENC_RECORD_OVERHEAD;
    FUZZ_CHECK(o->compress ? blob_len <= raw_len : blob_len == raw_len);

    FUZZ_CHECK(fuzz_open_blob(blob, blob_len, plain, len) == 0);

    /* One flipped byte anywhere: every byte is under the header tag or a
     * record tag (or a check before them), so the blob must not open. */
    size_t at = o->flip_at % blob_len;
    blob[at] ^= o->flip_mask;
    FUZZ_CHECK(fuzz_open_blob(blob, blob_len, plain, len) != 0);
    blob[at] ^= o->flip_mask;

    /* Cut short anywhere, or one byte longer: refused, whether the header
     * knows the length or not (without it, end of file marks the last
     * record, which must then open with last = 1). */
    size_t cut = (o->flip_at * 31 + o->flip_mask) % blob_len;
    FUZZ_CHECK(fuzz_open_blob(blob, cut, plain, len) != 0);
    uint8_t *longer = renc_malloc(blob_len + 1);
    FUZZ_CHECK(longer != NULL);
    memcpy(longer, blob, blob_len);
    longer[blob_len] = o->flip_mask;
    FUZZ_CHECK(fuzz_open_blob(longer, blob_len + 1, plain, len) != 0);
    renc_free(longer);

    renc_header_cleanup(&h);
    renc_free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ks)
        fuzz_setup();
    uint8_t opt[FUZZ_OPT_LEN] = {0};
    size_t opt_len = size < FUZZ_OPT_LEN ? size : FUZZ_OPT_LEN;
    memcpy(opt, data, opt_len);
    struct fuzz_opts o = {
        .seg_shift = (uint8_t)(RENC_SEG_SHIFT_MIN + (opt[0] & 7) % 5),
        .compress = (opt[0] >> 3) & 1,
        .unknown_len = (opt[0] >> 4) & 1,
        .two_slots = (opt[0] >> 5) & 1,
        .no_room = (opt[0] >> 6) & 1,
        .backup = (opt[0] >> 7) & 1,
        .flip_at = (size_t)opt[1] << 8 | opt[2],
        .flip_mask = opt[3] ? opt[3] : 0x01,
    };
    const uint8_t *plain = data + opt_len;
    size_t len = size - opt_len;

    fuzz_records(&o, plain, len);
    fuzz_blob(&o, plain, len);
    return 0;
}
