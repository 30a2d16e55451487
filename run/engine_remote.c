/* run/engine_remote.c — one blob through the streamed path: a blob read
 * from, or written to, a store with no local file (blob storage).  Its
 * bytes come by ranges (read_range), a chunk at a time; records are
 * resealed (rekey), opened (verify) or passed as they are (rewrap, a
 * mirror's copy) in record-aligned chunks; the new version is staged
 * through the store's append (the header first, alone: blob storage makes
 * it the header block) and committed by the store's commit.  A rewrap of
 * a blob the store can re-head commits only a new header
 * (RENC_COMMIT_HEADER_BLOCK).
 *
 * Each worker runs one blob at a time here; many workers keep many
 * requests in flight.  A failure before the commit point drops the staged
 * version (abort): the blob stays wholly old, is noted failed, and the
 * next attempt reads it again. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/header.h"
#include "crypto/record.h"
#include "io/pool.h"
#include "blob/blobfile.h"
#include "run/engine_internal.h"

/* The first read of a blob: its header (at most 64 KiB) and, for a small
 * blob, all of it; a big file that is not RENC costs no more than this. */
#define RENC_REMOTE_FIRST_READ ((size_t)256 << 10)

/* The bytes [off, off + want) of the blob: from buf when it holds them
 * (all of them, or up to the blob's end), else read into it. */
static int renc_remote_window(struct renc_remote *r, uint64_t off, size_t want, int fresh,
                              uint8_t **p, size_t *have)
{
    uint64_t end = r->buf_off + r->buf_have;
    if (!fresh && off >= r->buf_off && off < end) {
        *p = r->buf + (off - r->buf_off);
        *have = end - off < want ? (size_t)(end - off) : want;
        return 0;
    }
    struct renc_store *src = r->e->src;
    size_t got = 0;
    int rc = src->ops->read_range(src, r->it, r->fd, off, r->buf, want, &got);
    if (rc == 0 && got < want)
        rc = -RENC_E_TRUNCATED; /* shorter than listed: it changed */
    r->buf_off = off;
    r->buf_have = rc ? 0 : got;
    *p = r->buf;
    *have = r->buf_have;
    return rc;
}

/* The records of one window: resealed or opened in place.  *span, *records:
 * the whole records taken (0 when one is cut by the window's end). */
static int renc_remote_records(struct renc_remote *r, struct renc_resealer *rs, uint8_t *p,
                               size_t have, uint64_t off, uint64_t index, uint64_t count,
                               size_t *span, uint64_t *records)
{
    uint64_t left = count ? count - index : UINT64_MAX;
    int rc = renc_records_span(&r->plan.old_h, p, have, r->e->chunk_bytes, left, span, records);
    if (rc || *records == 0)
        return rc;
    return renc_transform_records(rs, &r->plan, p, *span, index, count, off + *span == r->size,
                                  NULL);
}

/* buf at its full size (a chunk, or the whole blob), the bytes it holds
 * kept.  The first read takes only what the header needs, so a rewrap
 * that commits a new header block never takes, faults in or wipes a whole
 * chunk (16 MiB and more) for a few KiB.  The small buffer goes back to
 * the pool before the big one is taken: a worker never waits for memory
 * while it holds some. */
static int renc_remote_grow(struct renc_remote *r)
{
    struct renc_engine *e = r->e;
    size_t full = r->size < e->chunk_bytes ? (size_t)r->size + 1 : e->chunk_bytes;
    if (r->buf_len >= full)
        return 0;
    uint8_t *keep = r->buf_have ? renc_malloc(r->buf_have) : NULL;
    RENC_RETURN_IF(r->buf_have && !keep, -RENC_E_NOMEM);
    if (keep)
        memcpy(keep, r->buf, r->buf_have);
    renc_pool_release(e->pool, r->buf, r->buf_len);
    r->buf = NULL;
    int rc = renc_pool_acquire(e->pool, full, &r->buf);
    if (rc == 0) {
        r->buf_len = full;
        if (keep)
            memcpy(r->buf, keep, r->buf_have);
    }
    renc_free(keep); /* the blob's own bytes, as stored: ciphertext and header */
    return rc;
}

/* The blob's bytes from `from` to its end, through buf a chunk at a
 * time: each chunk's records resealed or opened (pass), then staged with
 * the store's append when a version is being written (r->begun). */
static int renc_remote_stream(struct renc_remote *r, uint64_t from, enum renc_pass pass,
                              struct renc_resealer *rs)
{
    struct renc_engine *e = r->e;
    int taken, rc = renc_remote_grow(r);
    if (rc)
        return rc;
    rc = renc_spread_stream(r, from, pass, &taken);
    if (taken)
        return rc;
    uint64_t off = from, index = 0;
    uint64_t count = pass == RENC_PASS_COPY ? 0 : renc_header_seg_count(&r->plan.old_h);
    int fresh = 0;
    while (rc == 0 && off < r->size) {
        size_t want = r->size - off < r->buf_len ? (size_t)(r->size - off) : r->buf_len;
        uint8_t *p;
        size_t have, span;
        uint64_t records = 0;
        if ((rc = renc_remote_window(r, off, want, fresh, &p, &have)))
            break;
        span = have;
        if (pass != RENC_PASS_COPY &&
            (rc = renc_remote_records(r, rs, p, have, off, index, count, &span, &records)) == 0 &&
            records == 0) {
            if (!fresh && have < want) { /* a record cut by what buf held: read it whole */
                fresh = 1;
                continue;
            }
            rc = count && index == count ? -RENC_E_TRAILING : -RENC_E_TRUNCATED;
        }
        fresh = 0;
        if (rc == 0 && r->begun)
            rc = e->dst->ops->append(e->dst, &r->txn, p, span);
        off += span;
        index += records;
    }
    return rc;
}

/* Stages the new version under mode: begun, its header appended. */
static int renc_remote_begin(struct renc_remote *r, enum renc_commit_mode mode,
                             const uint8_t *hdr, size_t hdr_len)
{
    struct renc_engine *e = r->e;
    int rc = renc_commit_begin(e, r->idx, mode, &r->txn);
    if (rc)
        return rc;
    r->begun = 1;
    return hdr_len ? e->dst->ops->append(e->dst, &r->txn, hdr, hdr_len) : 0;
}

/* Commit point (renc_commit_txn: under --out the source checked unchanged
 * first), then the store's barrier. */
static int renc_remote_commit(struct renc_remote *r)
{
    struct renc_engine *e = r->e;
    struct renc_store_txn *txn = &r->txn;
    r->begun = 0;
    int rc = renc_commit_txn(e, r->idx, &r->st, txn);
    return rc ? rc : e->dst->ops->barrier(e->dst, &txn, 1);
}

/* The blob copied as it is into a new version (a mirror of a blob already
 * under the target; the identity ceiling).  hdr_len: its header, appended
 * alone first (so a container gets it as its own block), or 0. */
static int renc_remote_copy(struct renc_remote *r, enum renc_commit_mode mode, size_t hdr_len)
{
    int rc = renc_remote_begin(r, mode, r->buf, hdr_len);
    if (rc == 0)
        rc = renc_remote_stream(r, hdr_len, RENC_PASS_COPY, NULL);
    return rc ? rc : renc_remote_commit(r);
}

/* Verify: the header opened, every record opened and checked; nothing
 * written. */
static int renc_remote_verify(struct renc_remote *r)
{
    struct renc_engine *e = r->e;
    int failed = -1, rc;
    if ((rc = renc_header_parse(&r->plan.old_h, r->buf, r->buf_have)) == 0 &&
        (rc = renc_keystore_open_header(e->ks, &r->plan.old, &r->plan.old_h, r->buf,
                                        &failed)) != 0 &&
        failed >= 0)
        r->ref = r->plan.old_h.slots[failed].ref;
    if (rc)
        return rc;
    struct renc_resealer rs;
    if ((rc = renc_resealer_init_verify(&rs, &r->plan, e->opts.backend)))
        return rc;
    rc = renc_remote_stream(r, r->plan.old_h.header_len, RENC_PASS_VERIFY, &rs);
    renc_resealer_cleanup(&rs);
    return rc;
}

/* A rewrap the store commits as a new header block; -EOPNOTSUPP when the
 * blob is not laid out for it (the caller rewrites it whole). */
static int renc_remote_header_block(struct renc_remote *r)
{
    struct renc_engine *e = r->e;
    int rc = renc_commit_begin(e, r->idx, RENC_COMMIT_HEADER_BLOCK, &r->txn);
    if (rc)
        return rc;
    return e->dst->ops->commit_header(e->dst, &r->txn, r->it, r->plan.new_hdr,
                                      r->plan.new_hdr_len, r->plan.old_h.header_len);
}

/* Run: the plan's new version written (or, a dry run, rekeyed and
 * dropped).  Returns the item's state through *st. */
static int renc_remote_run(struct renc_remote *r, enum renc_item_state *st)
{
    struct renc_engine *e = r->e;
    int rc = renc_transform_plan(e->t, &r->plan, r->buf, r->buf_have);
    if (rc) {
        r->ref = r->plan.failed_ref;
        return rc;
    }
    enum renc_commit_mode mode = renc_commit_mode(e, &r->plan);
    if (r->plan.verdict == RENC_VERDICT_SKIP) {
        *st = RENC_ITEM_SKIPPED;
        return mode == RENC_COMMIT_MIRROR && !e->opts.dry_run
                   ? renc_remote_copy(r, mode, r->plan.old_h.header_len)
                   : 0;
    }
    *st = RENC_ITEM_DONE;
    if (mode == RENC_COMMIT_HEADER_BLOCK) {
        if ((rc = renc_remote_header_block(r)) != -EOPNOTSUPP) {
            if (rc == 0)
                atomic_fetch_add(&e->in_place, 1);
            return rc;
        }
        mode = RENC_COMMIT_REPLACE; /* another layout: rewritten whole, as blocks from now on */
    }
    if (!e->opts.dry_run &&
        (rc = renc_remote_begin(r, mode, r->plan.new_hdr, r->plan.new_hdr_len)))
        return rc;
    uint64_t from = r->plan.old_h.header_len;
    if (!r->plan.new_dek)
        rc = e->opts.dry_run ? 0 : renc_remote_stream(r, from, RENC_PASS_COPY, NULL);
    else {
        struct renc_resealer rs;
        if ((rc = renc_resealer_init(&rs, &r->plan, e->opts.backend)) == 0) {
            rc = renc_remote_stream(r, from, RENC_PASS_RESEAL, &rs);
            renc_resealer_cleanup(&rs);
        }
    }
    return rc || e->opts.dry_run ? rc : renc_remote_commit(r);
}

/* Opens the blob and reads its first chunk (the header in it). */
static int renc_remote_open(struct renc_remote *r)
{
    struct renc_engine *e = r->e;
    int rc = e->src->ops->open_read(e->src, r->it, &r->fd, &r->st);
    if (rc)
        return rc;
    r->size = (uint64_t)r->st.st_size;
    /* The first read, or the blob when it is smaller: a small blob takes
     * (and the pool wipes) only its own size; renc_remote_grow takes a
     * whole chunk when the records are read. */
    r->buf_len = r->size < RENC_REMOTE_FIRST_READ ? (size_t)r->size + 1 : RENC_REMOTE_FIRST_READ;
    if ((rc = renc_pool_acquire(e->pool, r->buf_len, &r->buf)))
        return rc;
    uint8_t *p;
    size_t have;
    size_t want = r->size < RENC_REMOTE_FIRST_READ ? (size_t)r->size : RENC_REMOTE_FIRST_READ;
    return want ? renc_remote_window(r, 0, want, 1, &p, &have) : 0;
}

static int renc_remote_one(struct renc_remote *r, enum renc_item_state *st)
{
    struct renc_engine *e = r->e;
    int rc = renc_remote_open(r);
    if (rc)
        return rc;
    if (e->opts.identity) {
        *st = RENC_ITEM_DONE;
        return renc_remote_copy(r, renc_commit_mode(e, NULL), 0);
    }
    if (r->buf_have < 4 || memcmp(r->buf, "RENC", 4) != 0) {
        *st = RENC_ITEM_NOT_RENC;
        return 0;
    }
    *st = RENC_ITEM_DONE;
    return e->opts.op == RENC_ENGINE_VERIFY ? renc_remote_verify(r) : renc_remote_run(r, st);
}

void renc_run_remote(struct renc_engine *e, size_t idx)
{
    struct renc_remote r;
    memset(&r, 0, sizeof r);
    r.e = e;
    r.idx = idx;
    r.it = &e->scan->items[idx];
    r.fd = -1;
    enum renc_item_state st = RENC_ITEM_FAILED;
    int rc = renc_remote_one(&r, &st);
    if (r.begun)
        e->dst->ops->abort(e->dst, &r.txn);
    if (rc)
        renc_finish(e, idx, RENC_ITEM_FAILED, rc, r.ref);
    else
        renc_finish_plan(e, idx, st, 0, NULL, &r.plan);
    if (r.buf)
        renc_pool_release(e->pool, r.buf, r.buf_len);
    if (r.fd >= 0)
        close(r.fd);
    renc_blob_plan_cleanup(&r.plan);
}
