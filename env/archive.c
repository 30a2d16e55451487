/* env/archive.c — the backup archive codec (env/archive.h).
 *
 * The writer and the reader share one name rule and one order rule, so
 * whatever the writer emits the reader accepts and nothing else.  The
 * reader is a push parser: fed any split of the bytes, it keeps only the
 * field it is in the middle of (at most 16 bytes, or a name) and hands
 * content straight from the caller's buffer to the callbacks.
 */
#include "env/archive.h"

#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/header.h"

#define RENC_ARCHIVE_MAGIC_LEN 8
#define RENC_ARCHIVE_TYPE_END 0x00
#define RENC_ARCHIVE_TYPE_ENTRY 0x01
#define RENC_ARCHIVE_END_FIELDS 16 /* entry_count(8) || content_bytes(8) */

/* 1 when the len bytes at name are a valid entry name: 1..NAME_MAX bytes of
 * UTF-8 without NUL, '/'-separated components none of which is empty, "."
 * or ".." (so no leading, trailing or doubled '/'). */
int renc_archive_name_ok(const uint8_t *name, size_t len)
{
    if (len == 0 || len > RENC_ARCHIVE_NAME_MAX)
        return 0;
    if (memchr(name, '\0', len) || !renc_utf8_valid(name, len))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || (n == 1 && name[start] == '.') ||
            (n == 2 && name[start] == '.' && name[start + 1] == '.'))
            return 0;
        start = i + 1;
    }
    return 1;
}

/* Bytewise order of two names: <0, 0 or >0, a prefix before the longer. */
static int renc_archive_name_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* ---- writer ---------------------------------------------------------------- */

struct renc_archive_writer {
    renc_sink_fn sink;
    void *arg;
    char *prev;        /* the last name begun, NAME_MAX + 1 bytes */
    size_t prev_len;   /* 0: no entry yet */
    int in_entry;
    uint64_t left;     /* content bytes the open entry still owes */
    uint64_t entries, bytes;
    int rc;            /* sticky: after a failure the writer only fails */
    int finished;
};

int renc_archive_writer_new(struct renc_archive_writer **out, renc_sink_fn sink, void *arg)
{
    RENC_RETURN_IF(!sink, -RENC_E_INVALID);
    struct renc_archive_writer *w = renc_calloc(1, sizeof *w);
    RENC_RETURN_IF(!w, -RENC_E_NOMEM);
    int rc = -RENC_E_NOMEM;
    if (!(w->prev = renc_malloc(RENC_ARCHIVE_NAME_MAX + 1)))
        goto out_free;
    w->sink = sink;
    w->arg = arg;
    if ((rc = sink(arg, (const uint8_t *)RENC_ARCHIVE_MAGIC, RENC_ARCHIVE_MAGIC_LEN)))
        goto out_free;
    *out = w;
    return 0;
out_free:
    renc_archive_writer_free(w);
    return rc;
}

void renc_archive_writer_free(struct renc_archive_writer *w)
{
    if (!w)
        return;
    renc_free(w->prev);
    renc_free(w);
}

/* Records the first failure; every later call returns it. */
static int renc_archive_writer_fail(struct renc_archive_writer *w, int rc)
{
    w->rc = rc;
    return rc;
}

int renc_archive_entry_begin(struct renc_archive_writer *w, const char *name, uint64_t size)
{
    RENC_RETURN_IF(w->rc, w->rc);
    if (w->in_entry || w->finished || !name)
        return renc_archive_writer_fail(w, -RENC_E_INVALID);
    size_t len = strnlen(name, RENC_ARCHIVE_NAME_MAX + 1);
    if (!renc_archive_name_ok((const uint8_t *)name, len))
        return renc_archive_writer_fail(w, -RENC_E_INVALID);
    if (w->prev_len && renc_archive_name_cmp(w->prev, w->prev_len, name, len) >= 0)
        return renc_archive_writer_fail(w, -RENC_E_INVALID); /* out of order, or twice */
    if (size > UINT64_MAX - w->bytes)
        return renc_archive_writer_fail(w, -RENC_E_TOO_BIG);

    uint8_t head[1 + 2];
    uint8_t size_be[8];
    head[0] = RENC_ARCHIVE_TYPE_ENTRY;
    renc_store_be16(head + 1, (uint16_t)len);
    renc_store_be64(size_be, size);
    int rc = w->sink(w->arg, head, sizeof head);
    if (rc == 0)
        rc = w->sink(w->arg, (const uint8_t *)name, len);
    if (rc == 0)
        rc = w->sink(w->arg, size_be, sizeof size_be);
    if (rc)
        return renc_archive_writer_fail(w, rc);
    memcpy(w->prev, name, len);
    w->prev_len = len;
    w->in_entry = 1;
    w->left = size;
    w->entries++;
    w->bytes += size;
    return 0;
}

int renc_archive_entry_data(struct renc_archive_writer *w, const uint8_t *buf, size_t len)
{
    RENC_RETURN_IF(w->rc, w->rc);
    if (!w->in_entry)
        return renc_archive_writer_fail(w, -RENC_E_INVALID);
    if (len > w->left)
        return renc_archive_writer_fail(w, -RENC_E_LENGTH_MISMATCH);
    if (len == 0)
        return 0;
    int rc = w->sink(w->arg, buf, len);
    if (rc)
        return renc_archive_writer_fail(w, rc);
    w->left -= len;
    return 0;
}

int renc_archive_entry_end(struct renc_archive_writer *w)
{
    RENC_RETURN_IF(w->rc, w->rc);
    if (!w->in_entry)
        return renc_archive_writer_fail(w, -RENC_E_INVALID);
    if (w->left)
        return renc_archive_writer_fail(w, -RENC_E_LENGTH_MISMATCH);
    w->in_entry = 0;
    return 0;
}

int renc_archive_writer_finish(struct renc_archive_writer *w, uint64_t *entries, uint64_t *bytes)
{
    RENC_RETURN_IF(w->rc, w->rc);
    if (w->in_entry || w->finished)
        return renc_archive_writer_fail(w, -RENC_E_INVALID);
    uint8_t end[1 + RENC_ARCHIVE_END_FIELDS];
    end[0] = RENC_ARCHIVE_TYPE_END;
    renc_store_be64(end + 1, w->entries);
    renc_store_be64(end + 9, w->bytes);
    int rc = w->sink(w->arg, end, sizeof end);
    if (rc)
        return renc_archive_writer_fail(w, rc);
    w->finished = 1;
    if (entries)
        *entries = w->entries;
    if (bytes)
        *bytes = w->bytes;
    return 0;
}

/* ---- reader ---------------------------------------------------------------- */

enum renc_archive_state {
    RENC_AR_MAGIC,    /* fixed: the magic, checked byte by byte */
    RENC_AR_TYPE,     /* one byte */
    RENC_AR_NAME_LEN, /* fixed: 2 bytes */
    RENC_AR_NAME,     /* name_len bytes into name */
    RENC_AR_SIZE,     /* fixed: 8 bytes */
    RENC_AR_CONTENT,  /* left bytes, passed through */
    RENC_AR_END,      /* fixed: 16 bytes */
    RENC_AR_DONE,     /* nothing more may come */
};

struct renc_archive_reader {
    struct renc_archive_cb cb;
    enum renc_archive_state state;
    uint8_t fix[RENC_ARCHIVE_END_FIELDS]; /* the fixed-size field being read */
    size_t fix_got, fix_need;
    char *name, *prev;          /* NAME_MAX + 1 bytes each, swapped per entry */
    size_t name_len, name_got, prev_len; /* prev_len 0: no entry yet */
    uint64_t left;              /* content bytes still to come */
    uint64_t entries, bytes;
    int rc;                     /* sticky: after a failure the reader only fails */
};

int renc_archive_reader_new(struct renc_archive_reader **out, const struct renc_archive_cb *cb)
{
    struct renc_archive_reader *r = renc_calloc(1, sizeof *r);
    RENC_RETURN_IF(!r, -RENC_E_NOMEM);
    r->name = renc_malloc(RENC_ARCHIVE_NAME_MAX + 1);
    r->prev = renc_malloc(RENC_ARCHIVE_NAME_MAX + 1);
    if (!r->name || !r->prev) {
        renc_archive_reader_free(r);
        return -RENC_E_NOMEM;
    }
    if (cb)
        r->cb = *cb;
    r->state = RENC_AR_MAGIC;
    r->fix_need = RENC_ARCHIVE_MAGIC_LEN;
    *out = r;
    return 0;
}

void renc_archive_reader_free(struct renc_archive_reader *r)
{
    if (!r)
        return;
    renc_free(r->name);
    renc_free(r->prev);
    renc_free(r);
}

static void renc_archive_expect(struct renc_archive_reader *r, enum renc_archive_state state,
                                size_t need)
{
    r->state = state;
    r->fix_got = 0;
    r->fix_need = need;
}

/* The entry's content is complete: tell the caller, wait for a type. */
static int renc_archive_entry_done(struct renc_archive_reader *r)
{
    renc_archive_expect(r, RENC_AR_TYPE, 1);
    return r->cb.entry_end ? r->cb.entry_end(r->cb.arg) : 0;
}

/* A name has been read whole: check it and its place after the last one. */
static int renc_archive_name_read(struct renc_archive_reader *r)
{
    RENC_RETURN_IF(!renc_archive_name_ok((const uint8_t *)r->name, r->name_len),
                   -RENC_E_BAD_ARCHIVE);
    RENC_RETURN_IF(r->prev_len &&
                   renc_archive_name_cmp(r->prev, r->prev_len, r->name, r->name_len) >= 0,
                   -RENC_E_BAD_ARCHIVE);
    r->name[r->name_len] = '\0';
    renc_archive_expect(r, RENC_AR_SIZE, 8);
    return 0;
}

/* A fixed-size field is complete in r->fix: act on it. */
static int renc_archive_field(struct renc_archive_reader *r)
{
    switch (r->state) {
    case RENC_AR_MAGIC:
        renc_archive_expect(r, RENC_AR_TYPE, 1);
        return 0;
    case RENC_AR_TYPE:
        if (r->fix[0] == RENC_ARCHIVE_TYPE_ENTRY) {
            renc_archive_expect(r, RENC_AR_NAME_LEN, 2);
            return 0;
        }
        RENC_RETURN_IF(r->fix[0] != RENC_ARCHIVE_TYPE_END, -RENC_E_BAD_ARCHIVE);
        renc_archive_expect(r, RENC_AR_END, RENC_ARCHIVE_END_FIELDS);
        return 0;
    case RENC_AR_NAME_LEN:
        r->name_len = renc_load_be16(r->fix);
        RENC_RETURN_IF(r->name_len == 0 || r->name_len > RENC_ARCHIVE_NAME_MAX,
                       -RENC_E_BAD_ARCHIVE);
        r->name_got = 0;
        renc_archive_expect(r, RENC_AR_NAME, 0);
        return 0;
    case RENC_AR_SIZE: {
        uint64_t size = renc_load_be64(r->fix);
        RENC_RETURN_IF(size > UINT64_MAX - r->bytes, -RENC_E_BAD_ARCHIVE);
        /* The name is now the last one begun. */
        char *t = r->prev;
        r->prev = r->name;
        r->prev_len = r->name_len;
        r->name = t;
        r->entries++;
        r->bytes += size;
        r->left = size;
        r->state = RENC_AR_CONTENT;
        int rc = r->cb.entry_begin ? r->cb.entry_begin(r->cb.arg, r->prev, size) : 0;
        if (rc == 0 && size == 0)
            rc = renc_archive_entry_done(r);
        return rc;
    }
    case RENC_AR_END:
        RENC_RETURN_IF(renc_load_be64(r->fix) != r->entries ||
                       renc_load_be64(r->fix + 8) != r->bytes,
                       -RENC_E_BAD_ARCHIVE);
        renc_archive_expect(r, RENC_AR_DONE, 0);
        return 0;
    default:
        return -RENC_E_INVALID; /* not a fixed-size state */
    }
}

/* Takes what it can of buf for the current state; *used gets how much. */
static int renc_archive_step(struct renc_archive_reader *r, const uint8_t *buf, size_t len,
                             size_t *used)
{
    size_t n;
    switch (r->state) {
    case RENC_AR_DONE:
        return -RENC_E_BAD_ARCHIVE; /* bytes after the end record */
    case RENC_AR_NAME:
        n = r->name_len - r->name_got < len ? r->name_len - r->name_got : len;
        memcpy(r->name + r->name_got, buf, n);
        r->name_got += n;
        *used = n;
        return r->name_got == r->name_len ? renc_archive_name_read(r) : 0;
    case RENC_AR_CONTENT: {
        n = r->left < len ? (size_t)r->left : len;
        *used = n;
        r->left -= n;
        int rc = r->cb.entry_data ? r->cb.entry_data(r->cb.arg, buf, n) : 0;
        if (rc == 0 && r->left == 0)
            rc = renc_archive_entry_done(r);
        return rc;
    }
    case RENC_AR_MAGIC:
        /* Byte by byte, so that a wrong file fails at its first byte. */
        RENC_RETURN_IF(buf[0] != (uint8_t)RENC_ARCHIVE_MAGIC[r->fix_got], -RENC_E_BAD_ARCHIVE);
        *used = 1;
        return ++r->fix_got == r->fix_need ? renc_archive_field(r) : 0;
    default:
        n = r->fix_need - r->fix_got < len ? r->fix_need - r->fix_got : len;
        memcpy(r->fix + r->fix_got, buf, n);
        r->fix_got += n;
        *used = n;
        return r->fix_got == r->fix_need ? renc_archive_field(r) : 0;
    }
}

int renc_archive_reader_feed(struct renc_archive_reader *r, const uint8_t *buf, size_t len)
{
    RENC_RETURN_IF(r->rc, r->rc);
    while (len > 0) {
        size_t used = 0;
        int rc = renc_archive_step(r, buf, len, &used);
        if (rc) {
            r->rc = rc;
            return rc;
        }
        buf += used;
        len -= used;
    }
    return 0;
}

int renc_archive_reader_finish(struct renc_archive_reader *r, uint64_t *entries, uint64_t *bytes)
{
    RENC_RETURN_IF(r->rc, r->rc);
    if (r->state != RENC_AR_DONE) {
        r->rc = -RENC_E_BAD_ARCHIVE; /* cut before the end of its end record */
        return r->rc;
    }
    if (entries)
        *entries = r->entries;
    if (bytes)
        *bytes = r->bytes;
    return 0;
}
