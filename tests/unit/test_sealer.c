/* tests/unit/test_sealer.c — the push-fed sealer and the open-to-a-sink
 * path (blob/blobfile.h), and the keystore's restriction to some keys
 * (keys/keystore.h): blobs sealed by pushing odd splits open back to the
 * same bytes at every segment boundary, with and without compression, with
 * the length known or not; a known length the input misses either way
 * fails; the sealer lays out the same records as renc_blob_seal; open_to
 * with no sink only verifies and a sink's error stops it; a blob with slots
 * under two keys opens when either key is allowed, not when neither is, and
 * a DEK cached before the restriction does not get around it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/header.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "crypto/record.h"
#include "blob/blobfile.h"

#include "tests/unit/membuf.h"
#include "tests/unit/tmpdir.h"

#define SHIFT 12
#define S ((size_t)1 << SHIFT)

static struct renc_keyring *kr;
static struct renc_keystore *ks;
static const char *const two_refs[] = {"local:ka", "local:kb"};

/* Per test, in its own folder (tmpdir.h): a keyring with the AES keys
 * ka and kb, and a keystore over it (its KEK cache grows as it is used, so
 * it must not outlive the test). */
static int setup_keys(void **state)
{
    if (setup_tmpdir(state, "/tmp/renc-sealer-test.XXXXXX"))
        return -1;
    if (renc_keyring_open(&kr, dir, 1) || renc_keyring_create_key(kr, "ka", RENC_KEK_AES256, 0) ||
        renc_keyring_create_key(kr, "kb", RENC_KEK_AES256, 0) ||
        renc_keystore_new(&ks, &(struct renc_provider_config){.keyring = kr}))
        return -1;
    return 0;
}

static int teardown_keys(void **state)
{
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    ks = NULL;
    kr = NULL;
    return teardown_tmpdir(state);
}

static struct renc_seal_opts opts_for(int compress, size_t nrefs)
{
    struct renc_seal_opts o = {
        .env = "test",
        .kind = "blob",
        .name = "sealer",
        .key_refs = two_refs,
        .key_ref_count = nrefs,
        .compress_level = compress ? 3 : 0,
        .seg_shift = SHIFT,
        .header_room = 64,
    };
    return o;
}

/* Plaintext that compresses (text) or does not (a hash-like pattern). */
static uint8_t *make_plain(size_t len, int text)
{
    static const char s[] = "the quick brown fox jumps over the lazy dog 0123456789\n";
    uint8_t *p = renc_malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = text ? (uint8_t)s[i % (sizeof s - 1)] : (uint8_t)((i * 2654435761u) >> 11 ^ i);
    return p;
}

/* An empty memfd for a blob to be written to. */
static int blob_memfd(void)
{
    int fd = memfd_create("renc-sealer-blob", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static int memfd_with(const uint8_t *bytes, size_t len)
{
    int fd = memfd_create("renc-sealer-test", MFD_CLOEXEC);
    assert_true(fd >= 0);
    if (len)
        assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* The whole content of fd; *len its length.  Leaves the offset at 0. */
static uint8_t *slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    uint8_t *buf = renc_malloc(end ? (size_t)end : 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)end, 0), (ssize_t)end);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    *len = (size_t)end;
    return buf;
}

/* A sink gathering what open_to hands on in m; fails at its fail_at-th
 * call. */
struct gather {
    struct membuf m;
    int calls, fail_at;
};

static int gather_sink(void *arg, const uint8_t *buf, size_t len)
{
    struct gather *g = arg;
    if (++g->calls == g->fail_at)
        return -RENC_E_BUSY;
    assert_true(len > 0 && len <= S);
    assert_int_equal(membuf_sink(&g->m, buf, len), 0);
    return 0;
}

/* Seals plain by pushing it in pieces of the sizes in splits (cycled) into
 * a new memfd, which is returned at offset 0. */
static int seal_pushed(const struct renc_seal_opts *o, const uint8_t *plain, size_t len,
                       uint64_t known_len, const size_t *splits, size_t nsplits,
                       struct renc_blob_status *st)
{
    int fd = blob_memfd();
    struct renc_sealer *s = NULL;
    assert_int_equal(renc_sealer_new(&s, ks, o, fd, known_len, st), 0);
    size_t off = 0;
    for (size_t k = 0; off < len; k++) {
        size_t n = splits[k % nsplits];
        if (n > len - off)
            n = len - off;
        /* Every other piece through the sink form. */
        if (k % 2)
            assert_int_equal(renc_sealer_sink(s, plain + off, n), 0);
        else
            assert_int_equal(renc_sealer_write(s, plain + off, n), 0);
        off += n;
    }
    assert_int_equal(renc_sealer_write(s, plain, 0), 0);
    assert_int_equal(renc_sealer_finish(s), 0);
    renc_sealer_free(s);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* plain[len] sealed under the first nrefs of ka and kb, uncompressed, with
 * known_len for its length, pushed in pieces of split bytes: a memfd at
 * offset 0. */
static int seal_simply(size_t nrefs, const uint8_t *plain, size_t len, uint64_t known_len,
                       size_t split)
{
    struct renc_seal_opts o = opts_for(0, nrefs);
    struct renc_blob_status st;
    return seal_pushed(&o, plain, len, known_len, &split, 1, &st);
}

/* The record lengths of a whole blob in memory, walked by their words;
 * returns the count. */
static size_t record_lengths(const uint8_t *blob, size_t len, size_t *lens, size_t max)
{
    struct renc_header h;
    assert_int_equal(renc_header_parse(&h, blob, len), 0);
    size_t off = h.header_len, n = 0;
    while (off < len) {
        size_t rec_len;
        assert_true(len - off >= RENC_RECORD_WORD_LEN);
        assert_int_equal(renc_record_parse_word(renc_load_be32(blob + off), h.flags,
                                                renc_header_seg_size(&h), &rec_len), 0);
        assert_true(n < max);
        lens[n++] = rec_len;
        off += rec_len;
    }
    assert_int_equal(off, len);
    renc_header_cleanup(&h);
    return n;
}

/* ---- round trips ------------------------------------------------------------ */

static void test_sealer_blobs_open_back_at_every_segment_boundary(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, S - 1, S, S + 1, 2 * S, 3 * S + 7};
    static const size_t odd[] = {1, 7, 4095, 3, 4097, 1000, 8192, 2};
    static const size_t whole[] = {SIZE_MAX};
    for (int compress = 0; compress < 2; compress++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            for (int known = 0; known < 2; known++) {
                size_t len = lens[i];
                uint8_t *plain = make_plain(len, compress);
                struct renc_seal_opts o = opts_for(compress, 1);
                struct renc_blob_status st;
                int fd = seal_pushed(&o, plain, len,
                                     known ? (uint64_t)len : RENC_PLAINTEXT_UNKNOWN,
                                     known ? whole : odd, known ? 1 : 8, &st);
                size_t want_records = len == 0 ? 1 : (len + S - 1) / S;
                assert_int_equal(st.plaintext_bytes, len);
                assert_int_equal(st.records, want_records);

                struct gather g = {0};
                struct renc_header h;
                memset(&h, 0, sizeof h);
                struct renc_blob_status ost;
                assert_int_equal(renc_blob_open_to(ks, fd, gather_sink, &g, &h, &ost), 0);
                assert_int_equal(g.m.len, len);
                if (len)
                    assert_memory_equal(g.m.p, plain, len);
                assert_int_equal(ost.records, want_records);
                assert_int_equal(ost.plaintext_bytes, len);
                assert_int_equal(h.plaintext_len, known ? (uint64_t)len : RENC_PLAINTEXT_UNKNOWN);
                assert_int_equal(h.flags, compress ? RENC_FLAG_COMPRESSED : 0);
                assert_int_equal(h.seg_shift, SHIFT);

                /* FORMAT.md: every record but the last carries S bytes, the
                 * last the rest (a full one for a multiple of S, an empty one
                 * for nothing); raw records show it in their lengths. */
                size_t blob_len;
                uint8_t *blob = slurp(fd, &blob_len);
                size_t rl[8];
                assert_int_equal(record_lengths(blob, blob_len, rl, 8), want_records);
                if (!compress) {
                    for (size_t r = 0; r < want_records; r++) {
                        size_t seg_len = r + 1 < want_records ? S : len - r * S;
                        assert_int_equal(rl[r], seg_len + RENC_RECORD_OVERHEAD);
                    }
                } else if (len >= S) {
                    assert_true(rl[0] < S + RENC_RECORD_OVERHEAD); /* text compresses */
                }
                assert_int_equal(renc_blob_verify_mem(ks, blob, blob_len, &ost), 0);
                assert_int_equal(ost.plaintext_bytes, len);

                renc_free(blob);
                renc_header_cleanup(&h);
                membuf_free(&g.m);
                renc_free(plain);
                close(fd);
            }
        }
    }
}

static void test_sealer_known_length_missed_either_way_fails(void **state)
{
    (void)state;
    struct renc_seal_opts o = opts_for(0, 1);
    uint8_t *plain = make_plain(3 * S, 0);
    static const uint64_t known[] = {0, 10, S, 2 * S};
    for (size_t i = 0; i < 4; i++) {
        /* More than announced: the write that goes past fails, and so does
         * everything after it. */
        int fd = blob_memfd();
        struct renc_sealer *s = NULL;
        struct renc_blob_status st;
        assert_int_equal(renc_sealer_new(&s, ks, &o, fd, known[i], &st), 0);
        if (known[i])
            assert_int_equal(renc_sealer_write(s, plain, (size_t)known[i] - 1), 0);
        assert_int_equal(renc_sealer_write(s, plain, known[i] ? 2 : 1), -RENC_E_LENGTH_MISMATCH);
        assert_int_equal(renc_sealer_write(s, plain, 0), -RENC_E_LENGTH_MISMATCH);
        assert_int_equal(renc_sealer_finish(s), -RENC_E_LENGTH_MISMATCH);
        renc_sealer_free(s);
        close(fd);

        /* Fewer than announced: finish fails, writing no last record. */
        if (known[i] == 0)
            continue;
        fd = blob_memfd();
        assert_int_equal(renc_sealer_new(&s, ks, &o, fd, known[i], &st), 0);
        assert_int_equal(renc_sealer_write(s, plain, (size_t)known[i] - 1), 0);
        assert_int_equal(renc_sealer_finish(s), -RENC_E_LENGTH_MISMATCH);
        assert_int_equal(renc_sealer_write(s, plain, 1), -RENC_E_LENGTH_MISMATCH);
        renc_sealer_free(s);
        /* What reached the file is no blob. */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_not_equal(renc_blob_open_to(ks, fd, NULL, NULL, NULL, &st), 0);
        close(fd);
    }

    /* renc_blob_seal keeps its contract on top of the sealer: a file
     * shorter or longer than its known length fails. */
    int in = memfd_with(plain, 2 * S);
    int out = blob_memfd();
    struct renc_blob_status st;
    assert_int_equal(renc_blob_seal(ks, &o, in, out, 2 * S + 1, &st), -RENC_E_LENGTH_MISMATCH);
    assert_int_equal(lseek(in, 0, SEEK_SET), 0);
    assert_int_equal(renc_blob_seal(ks, &o, in, out, 2 * S - 1, &st), -RENC_E_LENGTH_MISMATCH);
    close(out);
    close(in);

    /* A finished sealer takes nothing more. */
    int fd = blob_memfd();
    struct renc_sealer *s = NULL;
    assert_int_equal(renc_sealer_new(&s, ks, &o, fd, RENC_PLAINTEXT_UNKNOWN, NULL), 0);
    assert_int_equal(renc_sealer_finish(s), 0);
    assert_int_equal(renc_sealer_write(s, plain, 1), -RENC_E_INVALID);
    assert_int_equal(renc_sealer_finish(s), -RENC_E_INVALID);
    renc_sealer_free(s);
    renc_sealer_free(NULL);
    close(fd);

    /* Options the sealer cannot honour fail before anything is written. */
    fd = blob_memfd();
    struct renc_seal_opts bad = o;
    bad.env = NULL;
    assert_int_equal(renc_sealer_new(&s, ks, &bad, fd, 0, &st), -RENC_E_INVALID);
    bad = o;
    bad.key_ref_count = 0;
    assert_int_equal(renc_sealer_new(&s, ks, &bad, fd, 0, &st), -RENC_E_INVALID);
    static const char *const missing[] = {"local:nosuchkey"};
    bad.key_refs = missing;
    bad.key_ref_count = 1;
    assert_int_equal(renc_sealer_new(&s, ks, &bad, fd, 0, &st), -RENC_E_KEY_NOT_FOUND);
    assert_int_equal(st.slot, 0);
    assert_string_equal(st.ref, "local:nosuchkey");
    assert_int_equal(lseek(fd, 0, SEEK_END), 0);
    close(fd);
    renc_free(plain);
}

static void test_sealer_lays_out_the_records_renc_blob_seal_does(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 5, S, 2 * S + 100, 3 * S};
    static const size_t odd[] = {13, 4096, 1, 5000};
    for (int compress = 0; compress < 2; compress++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            for (int known = 0; known < 2; known++) {
                size_t len = lens[i];
                uint64_t kl = known ? (uint64_t)len : RENC_PLAINTEXT_UNKNOWN;
                uint8_t *plain = make_plain(len, 1);
                struct renc_seal_opts o = opts_for(compress, 2);
                struct renc_blob_status st1, st2;
                int pushed = seal_pushed(&o, plain, len, kl, odd, 4, &st1);
                int in = memfd_with(plain, len);
                int out = blob_memfd();
                assert_int_equal(renc_blob_seal(ks, &o, in, out, kl, &st2), 0);
                assert_int_equal(st1.records, st2.records);
                assert_int_equal(st1.plaintext_bytes, st2.plaintext_bytes);

                size_t l1, l2, r1[8], r2[8];
                uint8_t *b1 = slurp(pushed, &l1), *b2 = slurp(out, &l2);
                size_t n1 = record_lengths(b1, l1, r1, 8);
                assert_int_equal(n1, record_lengths(b2, l2, r2, 8));
                assert_memory_equal(r1, r2, n1 * sizeof r1[0]);
                assert_int_equal(l1, l2);
                /* Same header shape: same length, slots and plaintext_len. */
                struct renc_header h1, h2;
                assert_int_equal(renc_header_parse(&h1, b1, l1), 0);
                assert_int_equal(renc_header_parse(&h2, b2, l2), 0);
                assert_int_equal(h1.header_len, h2.header_len);
                assert_int_equal(h1.plaintext_len, h2.plaintext_len);
                assert_int_equal(h1.slot_count, 2);
                assert_int_equal(h2.slot_count, 2);
                assert_string_equal(h1.slots[0].ref, h2.slots[0].ref);
                assert_string_equal(h1.slots[1].ref, h2.slots[1].ref);

                /* And renc_blob_open (on top of open_to) reads both back. */
                for (int b = 0; b < 2; b++) {
                    int fd = b ? out : pushed;
                    int back = memfd_create("renc-sealer-plain", MFD_CLOEXEC);
                    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
                    assert_int_equal(renc_blob_open(ks, fd, back, NULL, &st2), 0);
                    size_t got_len;
                    uint8_t *got = slurp(back, &got_len);
                    assert_int_equal(got_len, len);
                    if (len)
                        assert_memory_equal(got, plain, len);
                    renc_free(got);
                    close(back);
                }
                renc_header_cleanup(&h1);
                renc_header_cleanup(&h2);
                renc_free(b1);
                renc_free(b2);
                renc_free(plain);
                close(out);
                close(in);
                close(pushed);
            }
        }
    }
}

/* ---- open_to ------------------------------------------------------------------ */

static void test_sealer_open_to_without_sink_only_verifies(void **state)
{
    (void)state;
    size_t len = 2 * S + 9;
    uint8_t *plain = make_plain(len, 0);
    int fd = seal_simply(1, plain, len, len, SIZE_MAX);
    struct renc_blob_status st;
    assert_int_equal(renc_blob_open_to(ks, fd, NULL, NULL, NULL, &st), 0);
    assert_int_equal(st.plaintext_bytes, len);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.slot, 0);
    assert_string_equal(st.ref, "local:ka/1");

    /* A flipped byte in the last record: verification fails, and a sink
     * would have had only the records before it. */
    size_t blob_len;
    uint8_t *blob = slurp(fd, &blob_len);
    blob[blob_len - 1] ^= 1;
    int bad = memfd_with(blob, blob_len);
    assert_int_equal(renc_blob_open_to(ks, bad, NULL, NULL, NULL, &st), -RENC_E_RECORD_AUTH);
    assert_int_equal(lseek(bad, 0, SEEK_SET), 0);
    struct gather g = {0};
    assert_int_equal(renc_blob_open_to(ks, bad, gather_sink, &g, NULL, &st), -RENC_E_RECORD_AUTH);
    assert_int_equal(g.m.len, 2 * S);
    assert_memory_equal(g.m.p, plain, 2 * S);
    assert_int_equal(st.record, 2);
    membuf_free(&g.m);
    close(bad);
    renc_free(blob);
    renc_free(plain);
    close(fd);
}

static void test_sealer_open_to_stops_at_a_sink_error(void **state)
{
    (void)state;
    size_t len = 3 * S + 7;
    uint8_t *plain = make_plain(len, 0);
    int fd = seal_simply(1, plain, len, RENC_PLAINTEXT_UNKNOWN, 333);
    struct renc_blob_status st;
    for (int at = 1; at <= 4; at++) {
        struct gather g = {0};
        g.fail_at = at;
        struct renc_header h;
        memset(&h, 0, sizeof h);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(renc_blob_open_to(ks, fd, gather_sink, &g, &h, &st), -RENC_E_BUSY);
        assert_int_equal(g.calls, at); /* nothing after the failing call */
        assert_int_equal(g.m.len, (size_t)(at - 1) * S);
        assert_int_equal(st.record, (uint64_t)(at - 1));
        assert_int_equal(h.header_len, 0); /* header_out untouched on failure */
        membuf_free(&g.m);
    }
    renc_free(plain);
    close(fd);
}

/* ---- keystore restriction ------------------------------------------------------ */

/* A blob of a few bytes under both keys, as a memfd at offset 0. */
static int two_key_blob(void)
{
    return seal_simply(2, (const uint8_t *)"restricted", 10, 10, SIZE_MAX);
}

/* renc_blob_open_to on fd from its start must return rc, through slot (or
 * failing at it; -1 for none), and hand on the whole content or nothing. */
static void expect_open(int fd, int rc, int slot)
{
    struct renc_blob_status st;
    struct gather g = {0};
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(renc_blob_open_to(ks, fd, gather_sink, &g, NULL, &st), rc);
    if (rc == 0) {
        assert_int_equal(g.m.len, 10);
        assert_memory_equal(g.m.p, "restricted", 10);
    } else {
        assert_int_equal(g.m.len, 0);
    }
    membuf_free(&g.m);
    assert_int_equal(st.slot, slot);
}

/* The header of the blob in fd, read from its start, and its raw bytes
 * (free with renc_free). */
static uint8_t *read_header(int fd, struct renc_header *h)
{
    uint8_t *raw = NULL;
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(renc_blob_read_header(fd, h, &raw), 0);
    return raw;
}

static void test_sealer_restricted_keystore_opens_only_allowed_slots(void **state)
{
    (void)state;
    int fd = two_key_blob();
    expect_open(fd, 0, 0);

    /* Each restriction in turn, and how the blob then opens. */
    static const char *const only_a[] = {"local:ka"};
    static const char *const only_b[] = {"local:kb/1"}; /* versions aside */
    static const char *const others[] = {"local:kc", "local:kab", "local:k"};
    static const char *const b_and_other[] = {"local:kc", "local:kb/99"};
    static const struct {
        const char *const *refs;
        size_t n;
        int rc, slot;
    } allowed[] = {
        {only_a, 1, 0, 0},
        {only_b, 1, 0, 1},
        {b_and_other, 2, 0, 1},
        {others, 3, -RENC_E_NO_SLOT, -1},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        assert_int_equal(renc_keystore_restrict(ks, allowed[i].refs, allowed[i].n), 0);
        expect_open(fd, allowed[i].rc, allowed[i].slot);
    }

    /* Slot by slot: a refused slot is not found. */
    struct renc_header h;
    uint8_t *raw = read_header(fd, &h);
    struct renc_key *dek = NULL;
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[0], &dek), -RENC_E_KEY_NOT_FOUND);
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[1], &dek), -RENC_E_KEY_NOT_FOUND);
    assert_null(dek);
    struct renc_opened op;
    int failed = 7;
    assert_int_equal(renc_keystore_open_header(ks, &op, &h, raw, &failed), -RENC_E_NO_SLOT);
    assert_int_equal(failed, -1);

    /* A ref that does not parse is refused and the restriction stays. */
    static const char *const junk[] = {"local:ka", "not a ref"};
    assert_int_equal(renc_keystore_restrict(ks, junk, 2), -RENC_E_BAD_KEYREF);
    expect_open(fd, -RENC_E_NO_SLOT, -1);

    /* n 0 lifts it. */
    assert_int_equal(renc_keystore_restrict(ks, NULL, 0), 0);
    expect_open(fd, 0, 0);
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[1], &dek), 0);
    renc_key_free(dek);

    /* An allowed slot that fails still says why (not "no slot"). */
    assert_int_equal(renc_keystore_restrict(ks, only_b, 1), 0);
    assert_int_equal(renc_keyring_set_state(kr, "kb", "1", RENC_KEY_DISABLED), 0);
    expect_open(fd, -RENC_E_KEY_DISABLED, 1);

    renc_header_cleanup(&h);
    renc_free(raw);
    close(fd);
}

static void test_sealer_cached_dek_does_not_bypass_the_restriction(void **state)
{
    (void)state;
    assert_int_equal(renc_keystore_cache_deks(ks, 16), 0);
    int fd = two_key_blob(); /* the wraps are remembered in the cache */
    struct renc_keystore_stats before, after;
    expect_open(fd, 0, 0);
    renc_keystore_stats(ks, &before);
    assert_true(before.cache_hits >= 1); /* opened from the cache */

    static const char *const neither[] = {"local:kc"};
    assert_int_equal(renc_keystore_restrict(ks, neither, 1), 0);
    expect_open(fd, -RENC_E_NO_SLOT, -1);
    struct renc_header h;
    uint8_t *raw = read_header(fd, &h);
    struct renc_key *dek = NULL;
    assert_int_equal(renc_keystore_unwrap_slot(ks, &h.slots[0], &dek), -RENC_E_KEY_NOT_FOUND);
    assert_null(dek);
    renc_keystore_stats(ks, &after);
    assert_int_equal(after.cache_hits, before.cache_hits);
    assert_int_equal(after.unwraps, before.unwraps);

    /* Allowing the second key opens through its slot, from the cache. */
    static const char *const only_b[] = {"local:kb"};
    assert_int_equal(renc_keystore_restrict(ks, only_b, 1), 0);
    expect_open(fd, 0, 1);
    renc_keystore_stats(ks, &after);
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
    assert_int_equal(after.unwraps, before.unwraps);

    renc_header_cleanup(&h);
    renc_free(raw);
    close(fd);
}

static void test_sealer_failed_allocations_leak_nothing(void **state)
{
    (void)state;
    struct renc_seal_opts o = opts_for(1, 2);
    /* Fail the n-th allocation of renc_sealer_new for every n until it
     * makes none that fails: each failure gives back what it took. */
    for (uint64_t n = 1;; n++) {
        int fd = blob_memfd();
        struct renc_sealer *s = NULL;
        renc_alloc_fail_at(n);
        int rc = renc_sealer_new(&s, ks, &o, fd, RENC_PLAINTEXT_UNKNOWN, NULL);
        renc_alloc_fail_at(0);
        close(fd);
        if (rc == 0) {
            renc_sealer_free(s);
            break;
        }
        assert_true(rc < 0);
        assert_null(s);
        assert_true(n < 200);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_keys, teardown_keys)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sealer_blobs_open_back_at_every_segment_boundary),
        T(test_sealer_known_length_missed_either_way_fails),
        T(test_sealer_lays_out_the_records_renc_blob_seal_does),
        T(test_sealer_open_to_without_sink_only_verifies),
        T(test_sealer_open_to_stops_at_a_sink_error),
        T(test_sealer_restricted_keystore_opens_only_allowed_slots),
        T(test_sealer_cached_dek_does_not_bypass_the_restriction),
        T(test_sealer_failed_allocations_leak_nothing),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
