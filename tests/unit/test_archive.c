/* tests/unit/test_archive.c — the backup archive codec: entries (an empty
 * one and a large one fed in odd splits, one byte at a time too) come back
 * as written; a tiny archive encodes to the bytes archive.h gives; the
 * writer refuses bad names, names out of order or twice, and content
 * longer or shorter than announced; the reader refuses a bad magic or type,
 * every kind of bad name, order, end record counts that disagree, bytes
 * after the end record, and an archive cut at any offset; errors from a
 * callback or a sink come back as they are, and stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "env/archive.h"

#include "tests/unit/leakcheck.h"
#include "tests/unit/membuf.h"

/* ---- helpers --------------------------------------------------------------- */

static void membuf_put(struct membuf *m, const void *buf, size_t len)
{
    assert_int_equal(membuf_sink(m, buf, len), 0);
}

/* A writer into the empty membuf m; the magic goes out at once. */
static struct renc_archive_writer *new_writer(struct membuf *m)
{
    struct renc_archive_writer *w = NULL;
    assert_int_equal(renc_archive_writer_new(&w, membuf_sink, m), 0);
    assert_int_equal(m->len, 8);
    return w;
}

static void free_writer(struct renc_archive_writer *w, struct membuf *m)
{
    renc_archive_writer_free(w);
    membuf_free(m);
}

/* An entry and its content (its size is the content's length). */
struct entry {
    const char *name;
    const char *content;
};

/* Writes a whole archive of the n entries into the empty membuf m; an
 * empty content is given no data call. */
static void write_entries(struct membuf *m, const struct entry *e, size_t n)
{
    struct renc_archive_writer *w = new_writer(m);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(e[i].content);
        assert_int_equal(renc_archive_entry_begin(w, e[i].name, len), 0);
        if (len)
            assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)e[i].content, len), 0);
        assert_int_equal(renc_archive_entry_end(w), 0);
    }
    assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), 0);
    renc_archive_writer_free(w);
}

/* Raw archive pieces, written without any check, for the reader's tests. */
static void raw_magic(struct membuf *m)
{
    membuf_put(m, RENC_ARCHIVE_MAGIC, 8);
}

static void raw_entry(struct membuf *m, const void *name, size_t name_len, uint64_t size,
                      const void *content, size_t content_len)
{
    uint8_t b[8];
    b[0] = 0x01;
    membuf_put(m, b, 1);
    renc_store_be16(b, (uint16_t)name_len);
    membuf_put(m, b, 2);
    membuf_put(m, name, name_len);
    renc_store_be64(b, size);
    membuf_put(m, b, 8);
    membuf_put(m, content, content_len);
}

static void raw_end(struct membuf *m, uint64_t entries, uint64_t bytes)
{
    uint8_t b[8] = {0};
    membuf_put(m, b, 1);
    renc_store_be64(b, entries);
    membuf_put(m, b, 8);
    renc_store_be64(b, bytes);
    membuf_put(m, b, 8);
}

/* The content of the large entry: byte i of a non-repeating-ish pattern. */
static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 2654435761u >> 13 ^ i);
}

/* What the reader's callbacks saw, checked as they come: sizes add up,
 * begin and end pair, content matches the pattern (or the small text). */
#define SEEN_MAX 16
struct seen {
    char names[SEEN_MAX][64];
    uint64_t sizes[SEEN_MAX];
    uint64_t got[SEEN_MAX];
    uint8_t head[SEEN_MAX][16]; /* the first bytes of each content */
    size_t count;
    int open;
    size_t data_calls;
    int fail_begin, fail_data, fail_end; /* return -RENC_E_BUSY at the n-th call */
    int begins, datas, ends;
};

static int seen_begin(void *arg, const char *name, uint64_t size)
{
    struct seen *s = arg;
    assert_false(s->open);
    assert_true(s->count < SEEN_MAX);
    if (++s->begins == s->fail_begin)
        return -RENC_E_BUSY;
    snprintf(s->names[s->count], sizeof s->names[s->count], "%s", name);
    s->sizes[s->count] = size;
    s->got[s->count] = 0;
    s->open = 1;
    return 0;
}

static int seen_data(void *arg, const uint8_t *buf, size_t len)
{
    struct seen *s = arg;
    assert_true(s->open);
    assert_true(len > 0);
    if (++s->datas == s->fail_data)
        return -RENC_E_BUSY;
    size_t i = s->count;
    assert_true(s->got[i] + len <= s->sizes[i]);
    for (size_t k = 0; k < len; k++) {
        uint64_t at = s->got[i] + k;
        if (at < sizeof s->head[i])
            s->head[i][at] = buf[k];
        if (s->sizes[i] > 1000)
            assert_int_equal(buf[k], pattern(at));
    }
    s->got[i] += len;
    s->data_calls++;
    return 0;
}

static int seen_end(void *arg)
{
    struct seen *s = arg;
    assert_true(s->open);
    if (++s->ends == s->fail_end)
        return -RENC_E_BUSY;
    assert_int_equal(s->got[s->count], s->sizes[s->count]);
    s->open = 0;
    s->count++;
    return 0;
}

/* Makes s new, its callback which (0 begin, 1 data, 2 end) to fail at its
 * at-th call. */
static void seen_failing(struct seen *s, int which, int at)
{
    memset(s, 0, sizeof *s);
    if (which == 0)
        s->fail_begin = at;
    else if (which == 1)
        s->fail_data = at;
    else
        s->fail_end = at;
}

static const struct renc_archive_cb *seen_cb(struct seen *s)
{
    static struct renc_archive_cb cb;
    cb.entry_begin = seen_begin;
    cb.entry_data = seen_data;
    cb.entry_end = seen_end;
    cb.arg = s;
    return &cb;
}

/* Feeds buf to a new reader in pieces of the sizes in splits (cycled; 0
 * means all at once); returns the first error of a feed or of finish. */
static int read_split(const uint8_t *buf, size_t len, const size_t *splits, size_t nsplits,
                      struct seen *s, uint64_t *entries, uint64_t *bytes)
{
    struct renc_archive_reader *r = NULL;
    assert_int_equal(renc_archive_reader_new(&r, s ? seen_cb(s) : NULL), 0);
    int rc = 0;
    size_t off = 0;
    for (size_t k = 0; rc == 0 && off < len; k++) {
        size_t n = nsplits && splits[k % nsplits] ? splits[k % nsplits] : len - off;
        if (n > len - off)
            n = len - off;
        rc = renc_archive_reader_feed(r, buf + off, n);
        off += n;
    }
    if (rc == 0)
        rc = renc_archive_reader_finish(r, entries, bytes);
    else /* the error stays */
        assert_int_equal(renc_archive_reader_finish(r, NULL, NULL), rc);
    renc_archive_reader_free(r);
    return rc;
}

static int read_whole(const uint8_t *buf, size_t len)
{
    struct seen s;
    memset(&s, 0, sizeof s);
    int rc = read_split(buf, len, NULL, 0, &s, NULL, NULL);
    /* One byte at a time must end the same way. */
    static const size_t one[] = {1};
    memset(&s, 0, sizeof s);
    assert_int_equal(read_split(buf, len, one, 1, &s, NULL, NULL), rc);
    return rc;
}

/* ---- round trip and encoding ------------------------------------------------ */

#define LARGE_LEN 300007u

static void write_sample(struct membuf *m, uint64_t *entries, uint64_t *bytes)
{
    struct renc_archive_writer *w = NULL;
    assert_int_equal(renc_archive_writer_new(&w, membuf_sink, m), 0);
    assert_int_equal(renc_archive_entry_begin(w, "a", 5), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"hel", 3), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"lo", 2), 0);
    assert_int_equal(renc_archive_entry_end(w), 0);
    assert_int_equal(renc_archive_entry_begin(w, "a/empty", 0), 0);
    assert_int_equal(renc_archive_entry_data(w, NULL, 0), 0);
    assert_int_equal(renc_archive_entry_end(w), 0);
    assert_int_equal(renc_archive_entry_begin(w, "b/large.bin", LARGE_LEN), 0);
    static uint8_t chunk[70000];
    static const size_t steps[] = {1, 4095, 4097, 65536, 13, 70000};
    uint64_t off = 0;
    for (size_t k = 0; off < LARGE_LEN; k++) {
        size_t n = steps[k % 6];
        if (n > LARGE_LEN - off)
            n = (size_t)(LARGE_LEN - off);
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(off + i);
        assert_int_equal(renc_archive_entry_data(w, chunk, n), 0);
        off += n;
    }
    assert_int_equal(renc_archive_entry_end(w), 0);
    assert_int_equal(renc_archive_entry_begin(w, "b/\xc3\xa9t\xc3\xa9/\xe2\x82\xac", 2), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"ok", 2), 0);
    assert_int_equal(renc_archive_entry_end(w), 0);
    assert_int_equal(renc_archive_writer_finish(w, entries, bytes), 0);
    renc_archive_writer_free(w);
}

static void test_archive_round_trip_in_any_split(void **state)
{
    (void)state;
    struct membuf m = {0};
    uint64_t we = 0, wb = 0;
    write_sample(&m, &we, &wb);
    assert_int_equal(we, 4);
    assert_int_equal(wb, 5 + 0 + LARGE_LEN + 2);

    static const size_t whole[] = {0};
    static const size_t one[] = {1};
    static const size_t odd[] = {3, 1, 8, 4099, 2, 65537, 17, 9};
    static const size_t seven[] = {7};
    const size_t *splits[] = {whole, one, odd, seven};
    const size_t nsplits[] = {1, 1, 8, 1};
    for (size_t v = 0; v < 4; v++) {
        struct seen s;
        memset(&s, 0, sizeof s);
        uint64_t re = 0, rb = 0;
        assert_int_equal(read_split(m.p, m.len, splits[v], nsplits[v], &s, &re, &rb), 0);
        assert_int_equal(re, we);
        assert_int_equal(rb, wb);
        assert_int_equal(s.count, 4);
        assert_false(s.open);
        assert_string_equal(s.names[0], "a");
        assert_string_equal(s.names[1], "a/empty");
        assert_string_equal(s.names[2], "b/large.bin");
        assert_string_equal(s.names[3], "b/\xc3\xa9t\xc3\xa9/\xe2\x82\xac");
        assert_int_equal(s.sizes[0], 5);
        assert_int_equal(s.sizes[1], 0);
        assert_int_equal(s.sizes[2], LARGE_LEN);
        assert_int_equal(s.sizes[3], 2);
        assert_memory_equal(s.head[0], "hello", 5);
        assert_memory_equal(s.head[3], "ok", 2);
        /* Content is handed on as fed, never gathered: one byte at a time
         * makes one call per content byte. */
        if (v == 1)
            assert_int_equal(s.data_calls, 5 + LARGE_LEN + 2);
    }
    /* Without callbacks the reader still checks the whole archive. */
    uint64_t re = 0;
    assert_int_equal(read_split(m.p, m.len, odd, 8, NULL, &re, NULL), 0);
    assert_int_equal(re, 4);
    membuf_free(&m);
}

static void test_archive_encodes_a_tiny_archive_byte_for_byte(void **state)
{
    (void)state;
    /* archive.h: magic, then type 1 || name_len(2) || name || size(8) ||
     * content per entry, then type 0 || entry_count(8) || content_bytes(8). */
    static const uint8_t want[] = {
        'R', 'E', 'N', 'C', 'B', 'A', 'K', '1',
        0x01, 0x00, 0x01, 'a', 0, 0, 0, 0, 0, 0, 0, 0x02, 'x', 'y',
        0x01, 0x00, 0x03, 'b', '/', 'c', 0, 0, 0, 0, 0, 0, 0, 0x00,
        0x00, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x02,
    };
    static const struct entry tiny[] = {{"a", "xy"}, {"b/c", ""}};
    struct membuf m = {0};
    write_entries(&m, tiny, 2);
    assert_int_equal(m.len, sizeof want);
    assert_memory_equal(m.p, want, sizeof want);
    assert_int_equal(read_whole(want, sizeof want), 0);
    membuf_free(&m);

    /* No entries at all: magic and an end record of zeros. */
    write_entries(&m, NULL, 0);
    assert_int_equal(m.len, 8 + 17);
    static const uint8_t zeros[17] = {0};
    assert_memory_equal(m.p + 8, zeros, 17);
    assert_int_equal(read_whole(m.p, m.len), 0);
    membuf_free(&m);
}

/* ---- the writer's refusals --------------------------------------------------- */

static char long_name[RENC_ARCHIVE_NAME_MAX + 2];

static const char *bad_names[] = {
    "", ".", "..", "/a", "a/", "a//b", "./a", "a/.", "a/./b", "a/../b", "../a", "/",
    "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", long_name,
};
#define BAD_NAME_COUNT (sizeof bad_names / sizeof bad_names[0])

static void make_long_name(size_t len)
{
    memset(long_name, 'n', len);
    long_name[len] = '\0';
}

static void test_archive_writer_refuses_bad_names(void **state)
{
    (void)state;
    make_long_name(RENC_ARCHIVE_NAME_MAX + 1);
    struct membuf m = {0};
    for (size_t i = 0; i < BAD_NAME_COUNT; i++) {
        struct renc_archive_writer *w = new_writer(&m);
        assert_int_equal(renc_archive_entry_begin(w, bad_names[i], 0), -RENC_E_INVALID);
        assert_int_equal(m.len, 8); /* nothing of the entry went out */
        /* After a failure the writer only fails. */
        assert_int_equal(renc_archive_entry_begin(w, "ok", 0), -RENC_E_INVALID);
        assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), -RENC_E_INVALID);
        free_writer(w, &m);
    }
    /* The longest name allowed, and names that only look odd, are fine. */
    make_long_name(RENC_ARCHIVE_NAME_MAX);
    static const struct entry fine[] = {
        {"...", ""}, {".a", ""}, {"a b/c", ""}, {"a.", ""}, {"a/..b", ""}, {long_name, ""},
    }; /* in order */
    write_entries(&m, fine, 6);
    assert_int_equal(read_whole(m.p, m.len), 0);
    membuf_free(&m);
}

static void test_archive_writer_refuses_names_out_of_order_or_twice(void **state)
{
    (void)state;
    static const char *pairs[][2] = {
        {"b", "a"}, {"a", "a"}, {"a/b", "a"}, {"ab", "a/b"}, {"\xc3\xa9", "z"}, {"a/b", "a/b"},
    };
    struct membuf m = {0};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct renc_archive_writer *w = new_writer(&m);
        assert_int_equal(renc_archive_entry_begin(w, pairs[i][0], 0), 0);
        assert_int_equal(renc_archive_entry_end(w), 0);
        assert_int_equal(renc_archive_entry_begin(w, pairs[i][1], 0), -RENC_E_INVALID);
        free_writer(w, &m);
    }
    /* A name before its own extensions is in order. */
    static const struct entry order[] = {{"a", ""}, {"a/b", ""}, {"a0", ""}, {"b", ""}};
    write_entries(&m, order, 4);
    membuf_free(&m);
}

static void test_archive_writer_refuses_content_other_than_its_size(void **state)
{
    (void)state;
    struct membuf m = {0};
    struct renc_archive_writer *w;

    /* Longer than announced, in one call or over several. */
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 3), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"abcd", 4),
                     -RENC_E_LENGTH_MISMATCH);
    assert_int_equal(renc_archive_entry_end(w), -RENC_E_LENGTH_MISMATCH);
    free_writer(w, &m);

    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 3), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"ab", 2), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"cd", 2),
                     -RENC_E_LENGTH_MISMATCH);
    free_writer(w, &m);

    /* Content for an empty entry. */
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 0), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"x", 1),
                     -RENC_E_LENGTH_MISMATCH);
    free_writer(w, &m);

    /* Shorter than announced. */
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 3), 0);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"ab", 2), 0);
    assert_int_equal(renc_archive_entry_end(w), -RENC_E_LENGTH_MISMATCH);
    assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), -RENC_E_LENGTH_MISMATCH);
    free_writer(w, &m);

    /* Calls out of turn: data or end outside an entry, finish inside one. */
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_data(w, (const uint8_t *)"x", 1), -RENC_E_INVALID);
    free_writer(w, &m);
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_end(w), -RENC_E_INVALID);
    free_writer(w, &m);
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 1), 0);
    assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), -RENC_E_INVALID);
    free_writer(w, &m);
    w = new_writer(&m);
    assert_int_equal(renc_archive_entry_begin(w, "a", 0), 0);
    assert_int_equal(renc_archive_entry_begin(w, "b", 0), -RENC_E_INVALID);
    free_writer(w, &m);
    w = new_writer(&m);
    assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), 0);
    assert_int_equal(renc_archive_entry_begin(w, "a", 0), -RENC_E_INVALID);
    free_writer(w, &m);
}

/* A sink that fails at its n-th call. */
struct failing_sink {
    int calls, fail_at;
};

static int failing_sink_fn(void *arg, const uint8_t *buf, size_t len)
{
    struct failing_sink *f = arg;
    (void)buf;
    (void)len;
    return ++f->calls == f->fail_at ? -RENC_E_BUSY : 0;
}

static void test_archive_writer_passes_sink_errors_back(void **state)
{
    (void)state;
    struct renc_archive_writer *w = NULL;
    struct failing_sink f = {0, 1};
    assert_int_equal(renc_archive_writer_new(&w, failing_sink_fn, &f), -RENC_E_BUSY);
    /* Every later sink call fails in turn: the error comes back from
     * whichever step made it, and every step after that repeats it. */
    for (int at = 2; at <= 7; at++) {
        f = (struct failing_sink){0, at};
        assert_int_equal(renc_archive_writer_new(&w, failing_sink_fn, &f), 0);
        int rc = renc_archive_entry_begin(w, "a", 1);
        if (rc == 0)
            rc = renc_archive_entry_data(w, (const uint8_t *)"x", 1);
        if (rc == 0)
            rc = renc_archive_entry_end(w);
        if (rc == 0)
            rc = renc_archive_writer_finish(w, NULL, NULL);
        assert_int_equal(rc, at <= 6 ? -RENC_E_BUSY : 0);
        if (rc)
            assert_int_equal(renc_archive_writer_finish(w, NULL, NULL), -RENC_E_BUSY);
        renc_archive_writer_free(w);
    }
    renc_archive_writer_free(NULL);
}

/* ---- the reader's refusals --------------------------------------------------- */

static void test_archive_reader_refuses_bad_magic_and_type(void **state)
{
    (void)state;
    struct membuf m = {0};
    membuf_put(&m, "RENCBAK2", 8);
    raw_end(&m, 0, 0);
    assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
    membuf_free(&m);

    /* A RENC blob is not an archive: refused at its 5th byte. */
    struct renc_archive_reader *r = NULL;
    assert_int_equal(renc_archive_reader_new(&r, NULL), 0);
    assert_int_equal(renc_archive_reader_feed(r, (const uint8_t *)"RENC", 4), 0);
    assert_int_equal(renc_archive_reader_feed(r, (const uint8_t *)"\x01", 1),
                     -RENC_E_BAD_ARCHIVE);
    renc_archive_reader_free(r);

    for (unsigned type = 2; type < 256; type += 37) {
        raw_magic(&m);
        uint8_t t = (uint8_t)type;
        membuf_put(&m, &t, 1);
        raw_end(&m, 0, 0);
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
    /* An entry whose type byte is bad after a good entry. */
    raw_magic(&m);
    raw_entry(&m, "a", 1, 1, "x", 1);
    membuf_put(&m, "\x02", 1);
    assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
    membuf_free(&m);
    /* Empty input, and the magic alone, are cut archives. */
    assert_int_equal(read_whole((const uint8_t *)"", 0), -RENC_E_BAD_ARCHIVE);
    assert_int_equal(read_whole((const uint8_t *)RENC_ARCHIVE_MAGIC, 8), -RENC_E_BAD_ARCHIVE);
}

static void test_archive_reader_refuses_bad_names(void **state)
{
    (void)state;
    make_long_name(RENC_ARCHIVE_NAME_MAX + 1);
    struct membuf m = {0};
    for (size_t i = 0; i < BAD_NAME_COUNT; i++) {
        raw_magic(&m);
        raw_entry(&m, bad_names[i], strlen(bad_names[i]), 0, NULL, 0);
        raw_end(&m, 1, 0);
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
    /* A NUL inside, which the writer cannot even be given. */
    static const struct {
        const char *name;
        size_t len;
    } nul[] = {{"a\0b", 3}, {"\0", 1}, {"a\0", 2}};
    for (size_t i = 0; i < 3; i++) {
        raw_magic(&m);
        raw_entry(&m, nul[i].name, nul[i].len, 0, NULL, 0);
        raw_end(&m, 1, 0);
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
    /* A name_len over the maximum is refused before any of the name is
     * kept: the reader never buffers more than a name. */
    struct renc_archive_reader *r = NULL;
    assert_int_equal(renc_archive_reader_new(&r, NULL), 0);
    raw_magic(&m);
    membuf_put(&m, "\x01\xff\xff", 3);
    assert_int_equal(renc_archive_reader_feed(r, m.p, m.len), -RENC_E_BAD_ARCHIVE);
    renc_archive_reader_free(r);
    membuf_free(&m);
    /* The longest name is accepted. */
    make_long_name(RENC_ARCHIVE_NAME_MAX);
    raw_magic(&m);
    raw_entry(&m, long_name, RENC_ARCHIVE_NAME_MAX, 1, "z", 1);
    raw_end(&m, 1, 1);
    assert_int_equal(read_whole(m.p, m.len), 0);
    membuf_free(&m);
}

static void test_archive_reader_refuses_names_out_of_order_or_twice(void **state)
{
    (void)state;
    static const char *pairs[][2] = {{"b", "a"}, {"a", "a"}, {"a/b", "a"}, {"ab", "a/b"}};
    struct membuf m = {0};
    for (size_t i = 0; i < 4; i++) {
        raw_magic(&m);
        raw_entry(&m, pairs[i][0], strlen(pairs[i][0]), 1, "1", 1);
        raw_entry(&m, pairs[i][1], strlen(pairs[i][1]), 1, "2", 1);
        raw_end(&m, 2, 2);
        struct seen s;
        memset(&s, 0, sizeof s);
        assert_int_equal(read_split(m.p, m.len, NULL, 0, &s, NULL, NULL), -RENC_E_BAD_ARCHIVE);
        assert_int_equal(s.count, 1); /* the first entry went through */
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
}

static void test_archive_reader_refuses_wrong_end_counts_and_trailing_bytes(void **state)
{
    (void)state;
    static const uint64_t ends[][2] = {
        {1, 3}, {3, 3}, {2, 2}, {2, 4}, {0, 0}, {2, UINT64_MAX}, {UINT64_MAX, 3},
    };
    struct membuf m = {0};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        raw_magic(&m);
        raw_entry(&m, "a", 1, 1, "1", 1);
        raw_entry(&m, "b", 1, 2, "22", 2);
        raw_end(&m, ends[i][0], ends[i][1]);
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
    /* The right counts, then anything more. */
    static const char *tails[] = {"\x00", "\x01", "x", "RENCBAK1"};
    for (size_t i = 0; i < 4; i++) {
        raw_magic(&m);
        raw_entry(&m, "a", 1, 1, "1", 1);
        raw_end(&m, 1, 1);
        assert_int_equal(read_whole(m.p, m.len), 0);
        membuf_put(&m, tails[i], i == 0 ? 1 : strlen(tails[i]));
        assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
        membuf_free(&m);
    }
    /* A second end record is trailing bytes too. */
    raw_magic(&m);
    raw_end(&m, 0, 0);
    raw_end(&m, 0, 0);
    assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
    membuf_free(&m);
    /* Sizes whose sum does not fit 64 bits. */
    raw_magic(&m);
    raw_entry(&m, "a", 1, UINT64_MAX, NULL, 0);
    membuf_put(&m, "x", 1);
    struct renc_archive_reader *r = NULL;
    assert_int_equal(renc_archive_reader_new(&r, NULL), 0);
    assert_int_equal(renc_archive_reader_feed(r, m.p, m.len), 0);
    assert_int_equal(renc_archive_reader_finish(r, NULL, NULL), -RENC_E_BAD_ARCHIVE);
    renc_archive_reader_free(r);
    membuf_free(&m);
    raw_magic(&m);
    raw_entry(&m, "a", 1, 1, "x", 1);
    raw_entry(&m, "b", 1, UINT64_MAX, NULL, 0);
    assert_int_equal(read_whole(m.p, m.len), -RENC_E_BAD_ARCHIVE);
    membuf_free(&m);
}

static void test_archive_reader_refuses_an_archive_cut_anywhere(void **state)
{
    (void)state;
    static const struct entry entries[] = {{"a", "abc"}, {"b/e", ""}, {"c", "zz"}};
    struct membuf m = {0};
    write_entries(&m, entries, 3);

    assert_int_equal(read_whole(m.p, m.len), 0);
    for (size_t cut = 0; cut < m.len; cut++) {
        struct renc_archive_reader *r = NULL;
        struct seen s;
        memset(&s, 0, sizeof s);
        assert_int_equal(renc_archive_reader_new(&r, seen_cb(&s)), 0);
        /* Every prefix of a good archive feeds without complaint ... */
        assert_int_equal(renc_archive_reader_feed(r, m.p, cut), 0);
        /* ... and fails at finish, whatever was called back before. */
        assert_int_equal(renc_archive_reader_finish(r, NULL, NULL), -RENC_E_BAD_ARCHIVE);
        assert_int_equal(renc_archive_reader_feed(r, m.p + cut, m.len - cut),
                         -RENC_E_BAD_ARCHIVE);
        renc_archive_reader_free(r);
        assert_int_equal(read_whole(m.p, cut), -RENC_E_BAD_ARCHIVE);
    }
    membuf_free(&m);
}

static void test_archive_reader_passes_callback_errors_back(void **state)
{
    (void)state;
    struct membuf m = {0};
    uint64_t we, wb;
    write_sample(&m, &we, &wb);
    static const size_t one[] = {1};
    for (int which = 0; which < 3; which++) {
        for (int at = 1; at <= 3; at++) {
            struct seen s;
            seen_failing(&s, which, at);
            assert_int_equal(read_split(m.p, m.len, NULL, 0, &s, NULL, NULL), -RENC_E_BUSY);
            seen_failing(&s, which, at);
            assert_int_equal(read_split(m.p, m.len, one, 1, &s, NULL, NULL), -RENC_E_BUSY);
            /* It stopped there: nothing was called back after the error. */
            assert_int_equal(which == 0 ? s.begins : which == 1 ? s.datas : s.ends, at);
        }
    }
    /* And the error stays: the next feed returns it without calling back. */
    struct seen s;
    seen_failing(&s, 0, 1);
    struct renc_archive_reader *r = NULL;
    assert_int_equal(renc_archive_reader_new(&r, seen_cb(&s)), 0);
    assert_int_equal(renc_archive_reader_feed(r, m.p, 40), -RENC_E_BUSY);
    assert_int_equal(renc_archive_reader_feed(r, m.p + 40, m.len - 40), -RENC_E_BUSY);
    assert_int_equal(s.begins, 1);
    assert_int_equal(s.datas, 0);
    renc_archive_reader_free(r);
    renc_archive_reader_free(NULL);
    membuf_free(&m);
}

static void test_archive_failed_allocations_leak_nothing(void **state)
{
    (void)state;
    struct membuf m = {0};
    membuf_put(&m, "", 0);
    for (uint64_t n = 1; n <= 2; n++) {
        struct renc_archive_writer *w = NULL;
        struct renc_archive_reader *r = NULL;
        renc_alloc_fail_at(n);
        assert_int_equal(renc_archive_writer_new(&w, membuf_sink, &m), -RENC_E_NOMEM);
        renc_alloc_fail_at(n);
        assert_int_equal(renc_archive_reader_new(&r, NULL), -RENC_E_NOMEM);
    }
    /* The reader allocates only when made: three blocks, then never again. */
    struct renc_archive_reader *r = NULL;
    renc_alloc_fail_at(4);
    assert_int_equal(renc_archive_reader_new(&r, NULL), 0);
    renc_alloc_fail_at(0);
    renc_archive_reader_free(r);
    membuf_free(&m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_archive_round_trip_in_any_split),
        T(test_archive_encodes_a_tiny_archive_byte_for_byte),
        T(test_archive_writer_refuses_bad_names),
        T(test_archive_writer_refuses_names_out_of_order_or_twice),
        T(test_archive_writer_refuses_content_other_than_its_size),
        T(test_archive_writer_passes_sink_errors_back),
        T(test_archive_reader_refuses_bad_magic_and_type),
        T(test_archive_reader_refuses_bad_names),
        T(test_archive_reader_refuses_names_out_of_order_or_twice),
        T(test_archive_reader_refuses_wrong_end_counts_and_trailing_bytes),
        T(test_archive_reader_refuses_an_archive_cut_anywhere),
        T(test_archive_reader_passes_callback_errors_back),
        T(test_archive_failed_allocations_leak_nothing),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
