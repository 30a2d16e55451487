/* run/engine_chunk.c — a big blob's records in chunks: read,
 * handed to whichever worker is free for their crypto, written back at
 * their offsets (with --direct through the O_DIRECT block assembler).  The
 * blob around them, from open to commit, is engine_big.c's. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/header.h"
#include "crypto/record.h"
#include "io/file.h"
#include "io/pool.h"
#include "io/replace.h"
#include "io/ring.h"
#include "blob/blobfile.h"
#include "run/engine_internal.h"

/* --direct: a block of the output being assembled from the edges of two
 * chunks (or the header and a chunk) before its one O_DIRECT write. */
struct renc_blk {
    struct renc_ring_op op;
    struct renc_big *big;
    uint64_t index;
    size_t filled;
    uint8_t *buf;                 /* RENC_DIRECT_ALIGN bytes, aligned */
};

struct renc_chunk {
    struct renc_big *big;
    uint8_t *buf;
    size_t buf_len, len;
    size_t data_off;              /* where the records start in buf */
    uint64_t in_off, first_index;
    int final;
    int rc;
    struct renc_chunk *next;
    struct renc_ring_op wop;
};

/* With O_DIRECT a read starts at the aligned block holding off, and with
 * O_DIRECT writes a buffered read lands as far into the buffer: either way
 * the bytes wanted start this far in, and their block-aligned middle sits
 * aligned in memory (renc_direct_write_chunk writes it from there; the
 * header changes length only by whole blocks, renc_big_open_out). */
static size_t renc_read_lead(const struct renc_big *b, uint64_t off)
{
    return b->direct_in_fd >= 0 || b->direct_out ? (size_t)(off % RENC_DIRECT_ALIGN) : 0;
}

/* The bytes a read must return for its chunk to be whole: a buffered read
 * returns the bytes wanted, an O_DIRECT one the lead before them too. */
static size_t renc_read_want(const struct renc_big *b, size_t lead, size_t len)
{
    return b->direct_in_fd >= 0 ? lead + len : len;
}

/* Crypto of one chunk, by any worker. */
static void renc_chunk_work(struct renc_chunk *c)
{
    struct renc_big *b = c->big;
    struct renc_resealer r;
    int rc = b->e->opts.op == RENC_ENGINE_VERIFY
                 ? renc_resealer_init_verify(&r, &b->plan, b->e->opts.backend)
                 : renc_resealer_init(&r, &b->plan, b->e->opts.backend);
    if (rc == 0) {
        rc = renc_transform_records(&r, &b->plan, c->buf + c->data_off, c->len, c->first_index,
                                    b->count, c->final, NULL);
        renc_resealer_cleanup(&r);
    }
    c->rc = rc;
    pthread_mutex_lock(&b->lock);
    c->next = b->done;
    b->done = c;
    pthread_mutex_unlock(&b->lock);
}

/* Takes one queued chunk and does its crypto; 0 when none was queued. */
int renc_help_one(struct renc_engine *e)
{
    pthread_mutex_lock(&e->lock);
    struct renc_chunk *c = e->queue_head;
    if (c) {
        e->queue_head = c->next;
        if (!e->queue_head)
            e->queue_tail = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (!c)
        return 0;
    renc_chunk_work(c);
    return 1;
}

static void renc_queue_chunk(struct renc_engine *e, struct renc_chunk *c)
{
    c->next = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->queue_tail)
        e->queue_tail->next = c;
    else
        e->queue_head = c;
    e->queue_tail = c;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Releases a chunk that will not be (or has been) written. */
static void renc_chunk_drop(struct renc_chunk *c)
{
    struct renc_big *b = c->big;
    /* A verify's chunk holds only ciphertext (renc_transform_records
     * leaves no plaintext in it): nothing to wipe. */
    if (b->e->opts.op == RENC_ENGINE_VERIFY)
        renc_pool_release_public(b->e->pool, c->buf, c->buf_len);
    else
        renc_pool_release(b->e->pool, c->buf, c->buf_len);
    renc_free(c);
    b->inflight--;
}

/* A read-ahead completed: the chunk goes to the workers. */
static void renc_chunk_read(struct renc_ring_op *op, int result)
{
    struct renc_chunk *c = op->user;
    struct renc_big *b = c->big;
    if (result >= 0 && (size_t)result < renc_read_want(b, c->data_off, c->len))
        result = -RENC_E_TRUNCATED; /* shrank since the scan */
    if (result < 0) {
        if (b->read_rc == 0)
            b->read_rc = result;
        renc_chunk_drop(c);
        return;
    }
    renc_queue_chunk(b->e, c);
}

static void renc_chunk_written(struct renc_ring_op *op, int result)
{
    struct renc_chunk *c = op->user;
    struct renc_big *b = c->big;
    if (result < 0 && b->write_rc == 0)
        b->write_rc = result;
    /* Start writeback of what was just written, so the final durability
     * barrier has little left to flush and the disk works while the next
     * chunks are read and sealed.  Not a durability point by itself. */
    if (result >= 0 && !b->direct_out)
        sync_file_range(b->out_fd, (off64_t)c->wop.offset, (off64_t)c->wop.len,
                        SYNC_FILE_RANGE_WRITE);
    renc_chunk_drop(c);
}

static void renc_blk_written(struct renc_ring_op *op, int result)
{
    struct renc_blk *k = op->user;
    struct renc_big *b = k->big;
    if (result < 0 && b->write_rc == 0)
        b->write_rc = result;
    renc_free(k->buf);
    renc_free(k);
    b->inflight--;
}

/* --direct: adds output bytes [off, off+len) that do not fill whole aligned
 * blocks of their own; a block is written once all its bytes are there (the
 * last one padded, and the file trimmed at the end). */
static int renc_asm_add(struct renc_big *b, struct renc_ring *ring, uint64_t off,
                        const uint8_t *src, size_t len)
{
    while (len > 0) {
        uint64_t idx = off / RENC_DIRECT_ALIGN;
        size_t boff = (size_t)(off % RENC_DIRECT_ALIGN);
        size_t n = RENC_DIRECT_ALIGN - boff < len ? RENC_DIRECT_ALIGN - boff : len;
        struct renc_blk *k = NULL;
        size_t at = 0;
        for (; at < b->nblks && !k; at++)
            if (b->blks[at]->index == idx)
                k = b->blks[at];
        if (k) {
            at--;
        } else {
            if (b->nblks == b->blks_cap) {
                size_t cap = b->blks_cap ? 2 * b->blks_cap : 16;
                struct renc_blk **grown = renc_realloc(b->blks, cap * sizeof *grown);
                RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
                b->blks = grown;
                b->blks_cap = cap;
            }
            k = renc_calloc(1, sizeof *k);
            if (k)
                k->buf = renc_aligned_alloc(RENC_DIRECT_ALIGN, RENC_DIRECT_ALIGN);
            if (!k || !k->buf) {
                renc_free(k);
                return -RENC_E_NOMEM;
            }
            memset(k->buf, 0, RENC_DIRECT_ALIGN);
            k->big = b;
            k->index = idx;
            at = b->nblks;
            b->blks[b->nblks++] = k;
        }
        memcpy(k->buf + boff, src, n);
        k->filled += n;
        uint64_t start = idx * RENC_DIRECT_ALIGN;
        size_t full = b->out_size - start < RENC_DIRECT_ALIGN ? (size_t)(b->out_size - start)
                                                              : RENC_DIRECT_ALIGN;
        if (k->filled == full) {
            b->blks[at] = b->blks[--b->nblks];
            k->op.kind = RENC_RING_WRITE;
            k->op.fd = b->out_fd;
            k->op.buf = k->buf;
            k->op.len = RENC_DIRECT_ALIGN;
            k->op.offset = start;
            k->op.user = k;
            k->op.done = renc_blk_written;
            b->inflight++;
            renc_ring_submit(ring, &k->op);
        }
        off += n;
        src += n;
        len -= n;
    }
    return 0;
}

/* --direct: writes a sealed chunk.  Its block-aligned middle goes straight
 * from the chunk buffer; its edges go to the block assembler.  Returns 1
 * when a write of the chunk buffer was submitted (its completion releases
 * it), 0 when the buffer can be released now, or an error. */
static int renc_direct_write_chunk(struct renc_big *b, struct renc_ring *ring,
                                   struct renc_chunk *c, uint64_t out_start)
{
    const uint64_t A = RENC_DIRECT_ALIGN;
    uint64_t out_end = out_start + c->len;
    uint64_t lo = (out_start + A - 1) / A * A, hi = out_end / A * A;
    const uint8_t *src = c->buf + c->data_off;
    int rc;
    if (hi <= lo)
        return renc_asm_add(b, ring, out_start, src, c->len);
    if ((rc = renc_asm_add(b, ring, out_start, src, (size_t)(lo - out_start))) ||
        (rc = renc_asm_add(b, ring, hi, src + (hi - out_start), (size_t)(out_end - hi))))
        return rc;
    memset(&c->wop, 0, sizeof c->wop);
    c->wop.kind = RENC_RING_WRITE;
    c->wop.fd = b->out_fd;
    c->wop.buf = (uint8_t *)src + (lo - out_start); /* aligned: see renc_read_lead */
    c->wop.len = (size_t)(hi - lo);
    c->wop.offset = lo;
    c->wop.user = c;
    c->wop.done = renc_chunk_written;
    renc_ring_submit(ring, &c->wop);
    return 1;
}

/* How a big blob's records are fed to the workers (renc_big_rekey). */
struct renc_feed {
    int in_fd;
    uint64_t size;                /* the blob as opened */
    uint64_t next_off;            /* where the next chunk starts in the old blob */
    uint64_t index;               /* the next chunk's first record */
    size_t chunk;                 /* the most record bytes a chunk holds */
    size_t buf_len;               /* a chunk's buffer (O_DIRECT: whole blocks around it) */
    unsigned max_inflight;
    int fixed;                    /* records at known offsets: read ahead asynchronously */
    uint64_t rec_size, per_chunk; /* fixed: a record's length, records per chunk */
    int rc;                       /* the first failure: feed no more, drain what is in flight */
};

/* The one set-up of a chunk: records [in_off, in_off + len) of the old
 * blob, the first of them record first_index, read into buf at data_off. */
static struct renc_chunk *renc_chunk_new(struct renc_big *b, uint8_t *buf, size_t buf_len,
                                         size_t data_off, size_t len, uint64_t in_off,
                                         uint64_t first_index, int final)
{
    struct renc_chunk *c = renc_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->big = b;
    c->buf = buf;
    c->buf_len = buf_len;
    c->data_off = data_off;
    c->len = len;
    c->in_off = in_off;
    c->first_index = first_index;
    c->final = final;
    return c;
}

/* A chunk's buffer: waits for one only when none of this blob's chunks is
 * in flight (nothing of its own would free one); otherwise takes one only
 * if free, so the coordinator goes on writing and helping meanwhile. */
static int renc_chunk_buf(struct renc_engine *e, const struct renc_big *b, size_t len,
                          uint8_t **buf)
{
    return b->inflight ? renc_pool_try_acquire(e->pool, len, buf)
                       : renc_pool_acquire(e->pool, len, buf);
}

/* Points op at bytes [off, off + len) of the old blob, read into buf; with
 * O_DIRECT the read covers the whole aligned blocks around them (lead is
 * renc_read_lead's). */
static void renc_chunk_read_op(const struct renc_big *b, struct renc_ring_op *op, int in_fd,
                               uint8_t *buf, uint64_t off, size_t len, size_t lead)
{
    op->kind = RENC_RING_READ;
    op->fd = in_fd;
    op->buf = buf + lead;
    op->len = len;
    op->offset = off;
    if (b->direct_in_fd >= 0) {
        op->fd = b->direct_in_fd;
        op->buf = buf;
        op->offset = off - lead;
        op->len = (lead + len + RENC_DIRECT_ALIGN - 1) / RENC_DIRECT_ALIGN * RENC_DIRECT_ALIGN;
    }
}

/* Step 1, plan: the chunk size, how many chunks go in flight, and, for
 * records of a fixed size, the size the blob must have.  With O_DIRECT
 * writes the new header goes to the block assembler first.  Recovery: roll
 * back (nothing is written yet but into the temporary). */
static void renc_feed_plan(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           int in_fd, uint64_t size, struct renc_feed *f)
{
    memset(f, 0, sizeof *f);
    f->in_fd = in_fd;
    f->size = size;
    f->next_off = b->plan.old_h.header_len;
    /* A chunk holds at least one record of this blob, and about 1 MiB: small
     * enough to stay in cache between the read and the crypto. */
    size_t chunk = renc_record_max_len(renc_header_seg_size(&b->plan.old_h));
    if (chunk < ((size_t)1 << 20))
        chunk = (size_t)1 << 20;
    f->chunk = (chunk + RENC_POOL_ALIGN - 1) & ~(size_t)(RENC_POOL_ALIGN - 1);
    /* With O_DIRECT a read covers whole aligned blocks around the chunk
     * (and with O_DIRECT writes it starts as far into its first block). */
    f->buf_len = b->direct_in_fd >= 0 || b->direct_out ? f->chunk + 2 * RENC_DIRECT_ALIGN
                                                       : f->chunk;
    /* Verify keeps few chunks in flight: reads from the page cache are
     * synchronous copies, and a few buffers reused stay in cache.  A rekey
     * keeps more, so writes and their writeback overlap the next reads;
     * with O_DIRECT reads (from the device, each waited for) more still. */
    f->max_inflight = b->direct_in_fd >= 0                ? RENC_CHUNK_INFLIGHT_DIRECT
                      : e->opts.op == RENC_ENGINE_VERIFY ? e->opts.threads + 1
                                                         : RENC_CHUNK_INFLIGHT;
    if (b->direct_out)
        f->rc = renc_asm_add(b, ring, 0, b->plan.new_hdr, b->plan.new_hdr_len);
    /* Records of a fixed size (no compression, length known) sit at known
     * offsets: chunks are read ahead asynchronously, several at once. */
    const struct renc_header *h = &b->plan.old_h;
    f->rec_size = renc_record_max_len(renc_header_seg_size(h));
    f->fixed = !(h->flags & RENC_FLAG_COMPRESSED) && b->count > 0;
    f->per_chunk = f->chunk / f->rec_size ? f->chunk / f->rec_size : 1;
    if (f->fixed) {
        uint64_t last_len = h->plaintext_len - (b->count - 1) * renc_header_seg_size(h) +
                            RENC_RECORD_OVERHEAD;
        uint64_t expect = h->header_len + (b->count - 1) * f->rec_size + last_len;
        if (size != expect)
            f->rc = size < expect ? -RENC_E_TRUNCATED : -RENC_E_TRAILING;
    }
}

/* Step 2a, feed (records of a fixed size): submits the next chunk's read
 * ahead; its completion queues it for the workers (renc_chunk_read).
 * Returns 1 when a chunk went out.  Recovery: roll back. */
static int renc_feed_ahead(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           struct renc_feed *f)
{
    uint8_t *buf = NULL;
    if (renc_chunk_buf(e, b, f->buf_len, &buf) != 0)
        return 0;
    uint64_t records = b->count - f->index < f->per_chunk ? b->count - f->index : f->per_chunk;
    uint64_t span = f->index + records == b->count ? f->size - f->next_off : records * f->rec_size;
    size_t lead = renc_read_lead(b, f->next_off);
    struct renc_chunk *c = renc_chunk_new(b, buf, f->buf_len, lead, (size_t)span, f->next_off,
                                          f->index, f->index + records == b->count);
    if (!c) {
        renc_pool_release(e->pool, buf, f->buf_len);
        f->rc = -RENC_E_NOMEM;
        return 0;
    }
    renc_chunk_read_op(b, &c->wop, f->in_fd, buf, f->next_off, (size_t)span, lead);
    c->wop.user = c;
    c->wop.done = renc_chunk_read;
    f->next_off += span;
    f->index += records;
    b->inflight++;
    renc_ring_submit(ring, &c->wop);
    return 1;
}

/* Step 2b, feed (records of varying size: compressed, or a count not
 * known): a chunk's extent is known only once it is read, so the read is
 * waited for (other ops in flight keep completing), then the chunk is
 * queued for the workers.  Returns 1 when it tried.  Recovery: roll back. */
static int renc_feed_read(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                          struct renc_feed *f)
{
    uint8_t *buf = NULL;
    if (renc_chunk_buf(e, b, f->buf_len, &buf) != 0)
        return 0;
    struct renc_sync_op rd;
    memset(&rd, 0, sizeof rd);
    size_t want = f->size - f->next_off < f->chunk ? (size_t)(f->size - f->next_off) : f->chunk;
    size_t data_off = renc_read_lead(b, f->next_off);
    renc_chunk_read_op(b, &rd.op, f->in_fd, buf, f->next_off, want, data_off);
    int got = renc_ring_run(ring, &rd);
    size_t span = 0;
    uint64_t records = 0;
    int rc;
    /* A short read only at end of file, past what was wanted. */
    if (got >= 0 && (size_t)got < renc_read_want(b, data_off, want))
        got = -RENC_E_TRUNCATED; /* shrank since the scan */
    uint64_t left = b->count ? b->count - f->index : UINT64_MAX;
    if (got >= 0)
        rc = renc_records_span(&b->plan.old_h, buf + data_off, want, f->chunk, left, &span,
                               &records);
    else
        rc = got;
    if (rc == 0 && records == 0)
        /* Bytes after the last record, or a record longer than
         * what is left. */
        rc = left == 0 ? -RENC_E_TRAILING : -RENC_E_TRUNCATED;
    struct renc_chunk *c = rc ? NULL
                              : renc_chunk_new(b, buf, f->buf_len, data_off, span, f->next_off,
                                               f->index, f->next_off + span == f->size);
    if (rc == 0 && !c)
        rc = -RENC_E_NOMEM;
    if (rc) {
        renc_pool_release(e->pool, buf, f->buf_len);
        f->rc = rc;
        return 1;
    }
    f->next_off += span;
    f->index += records;
    b->inflight++;
    renc_queue_chunk(e, c);
    return 1;
}

/* Step 3, write: chunks whose crypto is done go to the ring, each at its
 * offset in the new blob (the temporary); after a failure, or when nothing
 * is written (verify, dry run), they are released.  Returns 1 when any was
 * taken.  Recovery: roll back. */
static int renc_big_write_done(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                               struct renc_feed *f)
{
    uint64_t old_hl = b->plan.old_h.header_len, new_hl = b->plan.new_hdr_len;
    int progressed = 0;
    pthread_mutex_lock(&b->lock);
    struct renc_chunk *done = b->done;
    b->done = NULL;
    pthread_mutex_unlock(&b->lock);
    while (done) {
        struct renc_chunk *c = done;
        done = c->next;
        progressed = 1;
        if (c->rc == 0) { /* progress shows within a big blob, not only at its end */
            b->credited += c->len;
            atomic_fetch_add(&e->bytes_partial, c->len);
        }
        if (c->rc || f->rc || b->write_rc || e->opts.dry_run || e->opts.op == RENC_ENGINE_VERIFY) {
            if (c->rc && f->rc == 0)
                f->rc = c->rc;
            renc_chunk_drop(c);
            continue;
        }
        if (b->direct_out) {
            int wrc = renc_direct_write_chunk(b, ring, c, c->in_off - old_hl + new_hl);
            if (wrc <= 0) {
                if (wrc < 0 && f->rc == 0)
                    f->rc = wrc;
                renc_chunk_drop(c);
            }
            continue;
        }
        memset(&c->wop, 0, sizeof c->wop);
        c->wop.kind = RENC_RING_WRITE;
        c->wop.fd = b->out_fd;
        c->wop.buf = c->buf + c->data_off;
        c->wop.len = c->len;
        c->wop.offset = c->in_off - old_hl + new_hl;
        c->wop.user = c;
        c->wop.done = renc_chunk_written;
        renc_ring_submit(ring, &c->wop);
    }
    return progressed;
}

/* Step 4, wait: reaps completions; when nothing moved, does one queued
 * chunk's crypto (of any blob), else waits for a completion or yields.  A
 * negative return is the ring failing: fatal for this blob, which the
 * caller rolls back. */
static int renc_big_wait(struct renc_engine *e, struct renc_ring *ring, int progressed)
{
    int reaped = renc_ring_wait(ring, 0);
    if (reaped < 0)
        return reaped;
    if (!progressed && reaped == 0 && !renc_help_one(e)) {
        if (renc_ring_in_flight(ring))
            renc_ring_wait(ring, 1);
        else
            sched_yield();
    }
    return 0;
}

/* Step 5, end: the first failure, or a blob cut short; with O_DIRECT every
 * assembled block must be out by now, and the file is trimmed from its
 * padded last block to its size.  The temporary is complete but not yet
 * durable: the commit point is the caller's (renc_big_commit). */
static int renc_feed_end(struct renc_big *b, const struct renc_feed *f)
{
    int rc = f->rc;
    if (rc == 0 && b->read_rc)
        rc = b->read_rc;
    if (rc == 0 && b->write_rc)
        rc = b->write_rc;
    if (rc == 0 && f->next_off != f->size)
        rc = -RENC_E_TRUNCATED;
    if (b->direct_out) {
        /* Every block is complete once every chunk is written; the last
         * block was written padded, so the file is trimmed to its size. */
        if (rc == 0 && b->nblks)
            rc = -EIO;
        for (size_t i = 0; i < b->nblks; i++) {
            renc_free(b->blks[i]->buf);
            renc_free(b->blks[i]);
        }
        b->nblks = 0;
        renc_free(b->blks);
        b->blks = NULL;
        if (rc == 0 && ftruncate(b->out_fd, (off_t)b->out_size) != 0)
            rc = -errno;
    }
    return rc;
}

/* Rekeys (or verifies) a big blob: reads record-aligned chunks, hands their
 * crypto to the workers, writes each back at its offset (record lengths
 * never change; verify writes nothing).
 *
 * Everything here is written to the temporary only (b->out_fd): no step is
 * a commit point, and the loop drains every chunk in flight before it
 * returns.  On a failure the caller rolls back (removes the temporary): the
 * blob stays wholly old, is noted failed, and the next attempt reads it
 * again; after a crash the resume's sweep removes the temporary. */
int renc_big_rekey(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                   int in_fd, uint64_t size)
{
    struct renc_feed f;
    renc_feed_plan(e, ring, b, in_fd, size, &f);
    while ((f.rc == 0 && b->read_rc == 0 && b->write_rc == 0 && f.next_off < size) ||
           b->inflight > 0) {
        int progressed = 0;
        if (f.rc == 0 && f.fixed && b->read_rc == 0 && b->write_rc == 0 && f.next_off < size &&
            b->inflight < f.max_inflight)
            progressed = renc_feed_ahead(e, ring, b, &f);
        else if (f.rc == 0 && !f.fixed && b->write_rc == 0 && f.next_off < size &&
                 b->inflight < f.max_inflight)
            progressed = renc_feed_read(e, ring, b, &f);
        progressed |= renc_big_write_done(e, ring, b, &f);
        int rc = renc_big_wait(e, ring, progressed);
        if (rc < 0)
            return rc;
    }
    return renc_feed_end(b, &f);
}
