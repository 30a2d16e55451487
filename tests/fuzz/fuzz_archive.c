/* tests/fuzz/fuzz_archive.c — the backup archive reader (env/archive.h)
 * fed untrusted bytes in two chunks.
 *
 * Input: two bytes (big-endian) choosing where to split, taken mod the
 * archive's length + 1, then the archive bytes.
 *
 * Checks, abort() if not:
 *   - the callbacks come in order: begin, data adding up to exactly the size
 *     begun (never an empty data call), end; names valid C strings of
 *     1..NAME_MAX bytes, each after the one before;
 *   - at a successful finish, the totals equal what was called back, and
 *     the writer, given the same entries, writes the input byte for byte
 *     (the encoding is canonical);
 *   - the outcome does not depend on the split: two chunks, one, and one
 *     byte at a time all succeed, or all fail with the same error;
 *   - once a feed failed, finish fails with the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "env/archive.h"
#include "tests/unit/membuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

struct fuzz_entry {
    char *name;
    uint64_t size;
    size_t off; /* where its content starts in fuzz_seen.content */
};

/* What the callbacks saw; content is kept (it came from the input, so it
 * is never more than the input) so the writer can be given the same
 * entries. */
struct fuzz_seen {
    struct fuzz_entry *e;
    size_t count, cap;
    int open;
    uint64_t got;
    struct membuf content;
};

static int fuzz_begin(void *arg, const char *name, uint64_t size)
{
    struct fuzz_seen *s = arg;
    FUZZ_CHECK(!s->open);
    size_t len = strlen(name);
    FUZZ_CHECK(len >= 1 && len <= RENC_ARCHIVE_NAME_MAX);
    /* No NUL inside a name: strcmp is the bytewise order. */
    if (s->count > 0)
        FUZZ_CHECK(strcmp(s->e[s->count - 1].name, name) < 0);
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct fuzz_entry *e = renc_realloc(s->e, cap * sizeof *e);
        FUZZ_CHECK(e != NULL);
        s->e = e;
        s->cap = cap;
    }
    struct fuzz_entry *e = &s->e[s->count];
    e->name = renc_strdup(name);
    FUZZ_CHECK(e->name != NULL);
    e->size = size;
    e->off = s->content.len;
    s->open = 1;
    s->got = 0;
    return 0;
}

static int fuzz_data(void *arg, const uint8_t *buf, size_t len)
{
    struct fuzz_seen *s = arg;
    FUZZ_CHECK(s->open && len > 0);
    FUZZ_CHECK(len <= s->e[s->count].size - s->got);
    s->got += len;
    FUZZ_CHECK(membuf_sink(&s->content, buf, len) == 0);
    return 0;
}

static int fuzz_end(void *arg)
{
    struct fuzz_seen *s = arg;
    FUZZ_CHECK(s->open && s->got == s->e[s->count].size);
    s->open = 0;
    s->count++;
    return 0;
}

static void fuzz_seen_free(struct fuzz_seen *s)
{
    for (size_t i = 0; i < s->count + (size_t)s->open; i++)
        renc_free(s->e[i].name);
    renc_free(s->e);
    membuf_free(&s->content);
}

/* The writer given the entries seen must write exactly the input. */
static void fuzz_rewrite(const struct fuzz_seen *s, const uint8_t *want, size_t want_len)
{
    struct membuf o = {0};
    struct renc_archive_writer *w = NULL;
    FUZZ_CHECK(renc_archive_writer_new(&w, membuf_sink, &o) == 0);
    for (size_t i = 0; i < s->count; i++) {
        const struct fuzz_entry *e = &s->e[i];
        FUZZ_CHECK(renc_archive_entry_begin(w, e->name, e->size) == 0);
        const uint8_t *content = e->size ? s->content.p + e->off : NULL;
        FUZZ_CHECK(renc_archive_entry_data(w, content, (size_t)e->size) == 0);
        FUZZ_CHECK(renc_archive_entry_end(w) == 0);
    }
    uint64_t entries = 0, bytes = 0;
    FUZZ_CHECK(renc_archive_writer_finish(w, &entries, &bytes) == 0);
    FUZZ_CHECK(entries == s->count && bytes == s->content.len);
    FUZZ_CHECK(o.len == want_len && memcmp(o.p, want, want_len) == 0);
    renc_archive_writer_free(w);
    membuf_free(&o);
}

/* Reads buf fed as pieces cut at cuts[0..ncuts) (ascending, within len);
 * step 1 instead feeds one byte at a time.  Returns the outcome. */
static int fuzz_read(const uint8_t *buf, size_t len, const size_t *cuts, size_t ncuts, int step1,
                     int rewrite)
{
    struct fuzz_seen seen = {0}, *s = &seen;
    struct renc_archive_cb cb = {fuzz_begin, fuzz_data, fuzz_end, s};
    struct renc_archive_reader *r = NULL;
    FUZZ_CHECK(renc_archive_reader_new(&r, &cb) == 0);
    int rc = 0;
    size_t off = 0;
    if (step1) {
        for (; rc == 0 && off < len; off++)
            rc = renc_archive_reader_feed(r, buf + off, 1);
    } else {
        for (size_t k = 0; rc == 0 && k <= ncuts; k++) {
            size_t end = k < ncuts ? cuts[k] : len;
            rc = renc_archive_reader_feed(r, buf + off, end - off);
            off = end;
        }
    }
    uint64_t entries = UINT64_MAX, bytes = UINT64_MAX;
    int frc = renc_archive_reader_finish(r, &entries, &bytes);
    if (rc) {
        FUZZ_CHECK(rc < 0 && frc == rc); /* the failure stays */
        FUZZ_CHECK(entries == UINT64_MAX && bytes == UINT64_MAX);
    } else {
        rc = frc;
    }
    if (rc == 0) {
        FUZZ_CHECK(!s->open && entries == s->count && bytes == s->content.len);
        if (rewrite)
            fuzz_rewrite(s, buf, len);
    } else {
        FUZZ_CHECK(rc == -RENC_E_BAD_ARCHIVE);
    }
    renc_archive_reader_free(r);
    fuzz_seen_free(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]);
    const uint8_t *buf = data + 2;
    size_t len = size - 2;
    split %= len + 1;

    int rc = fuzz_read(buf, len, &split, 1, 0, 1);
    FUZZ_CHECK(fuzz_read(buf, len, NULL, 0, 0, 0) == rc);
    if (len <= 4096)
        FUZZ_CHECK(fuzz_read(buf, len, NULL, 0, 1, 0) == rc);
    return 0;
}
