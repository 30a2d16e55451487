/* run/engine_big.c — one big blob from open to commit: its identity,
 * header and plan, then verify, a mirror copy, an in-place header, or a
 * new blob written to a temporary (its records through engine_chunk.c) and
 * committed. */
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

/* Rewrap of a big blob: records are copied unchanged, in the kernel. */
static int renc_big_copy_records(int in_fd, int out_fd, uint64_t in_off, uint64_t out_off,
                                 uint64_t len)
{
    loff_t ioff = (loff_t)in_off, ooff = (loff_t)out_off;
    while (len > 0) {
        int rc = renc_fault_check("write");
        if (rc)
            return rc;
        ssize_t n = copy_file_range(in_fd, &ioff, out_fd, &ooff, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -RENC_E_TRUNCATED;
        len -= (uint64_t)n;
    }
    return 0;
}

/* --direct: the source opened a second time, O_DIRECT, for the records
 * (the store's local fast path: by the path it gives). */
static int renc_open_direct(struct renc_big *b)
{
    struct renc_store *src = b->e->src;
    const char *path = src->ops->ring_path(src, &b->e->scan->items[b->idx]);
    if (!path)
        return -EOPNOTSUPP;
    b->direct_in_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECT);
    if (b->direct_in_fd < 0)
        return errno == EINVAL ? -EOPNOTSUPP : -errno; /* e.g. tmpfs */
    return 0;
}

/* The blob's staging copy dropped: its descriptor closed, the file removed
 * by the store (the blob stays wholly old). */
static void renc_big_abort(struct renc_big *b)
{
    if (b->out_fd >= 0)
        close(b->out_fd);
    b->out_fd = -1;
    b->e->dst->ops->abort(b->e->dst, &b->txn);
}

/* In-place header rewrap of one blob: the old and new header durably into
 * the journal, then the store writes the new header over the old one and
 * makes it durable (putting the old one back on a failure). */
static int renc_header_in_place(struct renc_engine *e, struct renc_big *b)
{
    size_t len = b->plan.new_hdr_len;
    const uint8_t *new_hdr = b->plan.new_hdr, *old_hdr = b->hdr;
    int rc = renc_commit_begin(e, b->idx, RENC_COMMIT_HEADER_IN_PLACE, &b->txn);
    const char *path = b->txn.final;
    if (rc == 0)
        rc = renc_journal_header_intents(e->opts.journal, 1, &e->opts.rows[b->idx], &path,
                                         &old_hdr, &new_hdr, &len);
    if (rc == 0)
        rc = e->dst->ops->write_header(e->dst, &b->txn, &b->st, new_hdr, old_hdr, len);
    return rc;
}

/* Commits a big blob's durable temporary (fd is closed either way): the
 * blob's attributes, fsync, then the checked replacement (renc_commit_txn;
 * under --out: the source checked unchanged, the mirror's file renamed),
 * then the store's barrier (the directory). */
static int renc_big_commit(struct renc_engine *e, size_t idx, int in_fd, const struct stat *st,
                           int fd, struct renc_store_txn *txn)
{
    unsigned lost = 0;
    int rc = renc_copy_attrs(in_fd, st, fd, &lost);
    renc_note_attrs(e, lost);
    if (rc == 0)
        rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc == 0 && !e->opts.keep_cache)
        renc_file_drop_cache(fd); /* durable: its pages are clean, and not read again */
    if (e->own_tmp)
        renc_store_txn_mine(txn, fd);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc) {
        e->dst->ops->abort(e->dst, txn);
        return rc;
    }
    rc = renc_commit_txn(e, idx, st, txn);
    return rc ? rc : e->dst->ops->barrier(e->dst, &txn, 1);
}

/* Makes the temporary durable and puts it in the blob's place
 * (renc_big_commit: the checked rename is the commit point).  The
 * temporary's descriptor is closed either way. */
static int renc_big_commit_out(struct renc_engine *e, struct renc_big *b)
{
    int fd = b->out_fd;
    b->out_fd = -1;
    return renc_big_commit(e, b->idx, b->in_fd, &b->st, fd, &b->txn);
}

/* Bench ceiling (--bench-identity): the whole file copied as it is,
 * committed the same way.  Recovery: roll back (the temporary is removed
 * here on a failure before the commit). */
static int renc_big_identity(struct renc_engine *e, struct renc_big *b)
{
    int rc;
    if ((rc = renc_commit_begin(e, b->idx, renc_commit_mode(e, NULL), &b->txn)) == 0) {
        b->out_fd = open(b->txn.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, b->st.st_mode & 0777);
        rc = b->out_fd < 0 ? -errno : renc_big_copy_records(b->in_fd, b->out_fd, 0, 0, b->size);
        if (rc == 0)
            rc = renc_big_commit_out(e, b);
    }
    if (b->out_fd >= 0)
        renc_big_abort(b);
    return rc;
}

/* Reads the blob's header (up to the largest a header may be). */
static int renc_big_read_header(struct renc_big *b)
{
    b->hdr = renc_malloc(RENC_MAX_HEADER_LEN);
    if (!b->hdr)
        return -RENC_E_NOMEM;
    return b->e->src->ops->read_range(b->e->src, &b->e->scan->items[b->idx], b->in_fd, 0, b->hdr,
                                      RENC_MAX_HEADER_LEN, &b->hdr_len);
}

/* Verify: the records are spread over the workers like a rekey's, opened
 * and checked, and nothing is written (no recovery needed).  *ref: the key
 * ref a failure concerns. */
static int renc_big_verify(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           const char **ref)
{
    int failed = -1;
    int rc;
    if ((rc = renc_header_parse(&b->plan.old_h, b->hdr, b->hdr_len)) == 0 &&
        (rc = renc_keystore_open_header(e->ks, &b->plan.old, &b->plan.old_h, b->hdr, &failed)) !=
            0 &&
        failed >= 0)
        *ref = b->plan.old_h.slots[failed].ref;
    if (rc == 0 && e->opts.direct)
        rc = renc_open_direct(b);
    if (rc == 0) {
        b->count = renc_header_seg_count(&b->plan.old_h);
        rc = renc_big_rekey(e, ring, b, b->in_fd, b->size);
    }
    return rc;
}

/* A blob already under the target.  --out: the mirror is complete, so it
 * is mirrored as it is, in the kernel, committed the same way; in place
 * nothing is written.  Recovery: roll back (the caller removes the
 * temporary); the commit point is renc_big_commit's rename. */
static int renc_big_mirror(struct renc_engine *e, struct renc_big *b)
{
    if (renc_commit_mode(e, &b->plan) != RENC_COMMIT_MIRROR || e->opts.dry_run)
        return 0;
    int rc;
    if ((rc = renc_commit_begin(e, b->idx, RENC_COMMIT_MIRROR, &b->txn)))
        return rc;
    b->out_fd = open(b->txn.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     b->st.st_mode & 0777);
    if (b->out_fd < 0)
        return -errno;
    if ((rc = renc_big_copy_records(b->in_fd, b->out_fd, 0, 0, b->size)))
        return rc;
    return renc_big_commit_out(e, b);
}

/* Whether a rekey writes this run's big blobs O_DIRECT: as asked
 * (--write-mode), else only with --direct.  Measured on this project's
 * machine with the source in the page cache (docs/PERFORMANCE.md), buffered
 * writes with writeback started chunk by chunk were 15-37% faster than
 * O_DIRECT from the chunk buffers (the same number and size of requests
 * reached the disk; more chunks in flight did not close the gap). */
static int renc_big_write_direct(const struct renc_engine *e)
{
    return e->opts.write_mode == RENC_WRITE_DIRECT ||
           (e->opts.write_mode == RENC_WRITE_DEFAULT && e->opts.direct);
}

/* Opens the temporary beside the final path and writes the new header into
 * it (with O_DIRECT the header goes out through the block assembler, in
 * renc_big_rekey).  Recovery: roll back (the caller removes the
 * temporary). */
static int renc_big_open_out(struct renc_engine *e, struct renc_big *b)
{
    int rc;
    if ((rc = renc_commit_begin(e, b->idx, renc_commit_mode(e, &b->plan), &b->txn)))
        return rc;
    /* O_DIRECT writes need the records to keep their place within a
     * block: the header length may change only by whole blocks. */
    b->direct_out = renc_big_write_direct(e) && b->plan.new_dek &&
                    (b->plan.new_hdr_len - b->plan.old_h.header_len) % RENC_DIRECT_ALIGN == 0;
    b->out_size = b->size - b->plan.old_h.header_len + b->plan.new_hdr_len;
    b->out_fd = open(b->txn.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     b->st.st_mode & 0777);
    if (b->out_fd < 0)
        return -errno;
    /* O_DIRECT set once the file exists: a filesystem without it (EINVAL,
     * e.g. tmpfs) then still has the temporary, which by default is
     * written through the page cache; asked for, the blob fails. */
    if (b->direct_out && fcntl(b->out_fd, F_SETFL, O_DIRECT) != 0) {
        if (errno != EINVAL)
            return -errno;
        if (e->opts.write_mode != RENC_WRITE_DEFAULT)
            return -EOPNOTSUPP;
        b->direct_out = 0;
    }
    rc = renc_fault_check("write");
    /* Reserve the whole output at once: O_DIRECT writes that extend a
     * file are serialised by the filesystem, writes inside it are not.
     * Not every filesystem can; then it only costs the speed. */
    if (rc == 0 && b->direct_out)
        (void)fallocate(b->out_fd, 0, 0, (off_t)b->out_size);
    /* With O_DIRECT the header goes out through the block assembler. */
    if (rc == 0 && !b->direct_out &&
        pwrite(b->out_fd, b->plan.new_hdr, b->plan.new_hdr_len, 0) != (ssize_t)b->plan.new_hdr_len)
        rc = errno ? -errno : -EIO;
    return rc;
}

/* The records into the temporary: rekeyed chunk by chunk, or (a rewrap)
 * copied unchanged in the kernel; a dry run rekeys without writing.
 * Recovery: roll back (the caller removes the temporary). */
static int renc_big_records(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b)
{
    int rc = 0;
    if (e->opts.direct && b->plan.new_dek)
        rc = renc_open_direct(b);
    if (rc)
        return rc;
    if (b->plan.new_dek)
        return renc_big_rekey(e, ring, b, b->in_fd, b->size);
    if (!e->opts.dry_run)
        return renc_big_copy_records(b->in_fd, b->out_fd, b->plan.old_h.header_len,
                                     b->plan.new_hdr_len, b->size - b->plan.old_h.header_len);
    return 0;
}

/* One big blob: opened (its identity taken), its header read, then by its
 * plan verified, skipped (mirrored under --out), its header rewritten in
 * place, or a new blob written to a temporary and committed.  The commit
 * point is the checked rename in renc_big_commit (in place: the header's
 * durable write, after its journaled intent).  A failure before it rolls
 * back: the temporary is removed, the blob stays wholly old and is noted
 * failed, and the next attempt reads it again (after a crash the resume's
 * sweep removes the temporary).  The journal notes the outcome only once
 * the commit is durable. */
void renc_run_big(struct renc_engine *e, struct renc_ring *ring, size_t idx)
{
    const struct renc_scan_item *it = &e->scan->items[idx];
    struct renc_big b;
    memset(&b, 0, sizeof b);
    b.e = e;
    b.idx = idx;
    b.out_fd = -1;
    b.direct_in_fd = -1;
    pthread_mutex_init(&b.lock, NULL);
    const char *ref = NULL;
    int rc = 0;

    b.in_fd = -1;
    rc = e->src->ops->open_read(e->src, it, &b.in_fd, &b.st);
    if (rc) {
        renc_finish(e, idx, RENC_ITEM_FAILED, rc, NULL);
        pthread_mutex_destroy(&b.lock);
        return;
    }
    /* The blob as opened (it may have changed since the scan): its commit
     * checks it is still this file. */
    b.size = (uint64_t)b.st.st_size;
    if (e->opts.identity) {
        rc = renc_big_identity(e, &b);
        renc_finish(e, idx, rc ? RENC_ITEM_FAILED : RENC_ITEM_DONE, rc, NULL);
        close(b.in_fd);
        pthread_mutex_destroy(&b.lock);
        return;
    }
    rc = renc_big_read_header(&b);
    if (rc == 0 && (b.hdr_len < 4 || memcmp(b.hdr, "RENC", 4) != 0)) {
        renc_finish(e, idx, RENC_ITEM_NOT_RENC, 0, NULL);
        goto out;
    }
    if (rc == 0 && e->opts.op == RENC_ENGINE_VERIFY) {
        if ((rc = renc_big_verify(e, ring, &b, &ref)))
            goto out_fail;
        renc_finish(e, idx, RENC_ITEM_DONE, 0, NULL);
        goto out;
    }
    if (rc == 0 && (rc = renc_transform_plan(e->t, &b.plan, b.hdr, b.hdr_len)) != 0)
        ref = b.plan.failed_ref;
    if (rc)
        goto out_fail;
    if (b.plan.verdict == RENC_VERDICT_SKIP) {
        if ((rc = renc_big_mirror(e, &b)))
            goto out_fail;
        renc_finish_plan(e, idx, RENC_ITEM_SKIPPED, 0, NULL, &b.plan);
        goto out;
    }
    b.count = renc_header_seg_count(&b.plan.old_h);
    enum renc_commit_mode mode = renc_commit_mode(e, &b.plan);
    if (mode != RENC_COMMIT_MIRROR && b.st.st_nlink > 1 && !e->opts.dry_run) {
        rc = -RENC_E_HARDLINKED; /* see renc_small_mark_write */
        goto out_fail;
    }
    if (mode == RENC_COMMIT_HEADER_IN_PLACE) {
        if ((rc = renc_header_in_place(e, &b)))
            goto out_fail;
        atomic_fetch_add(&e->in_place, 1);
        renc_finish_plan(e, idx, RENC_ITEM_DONE, 0, NULL, &b.plan);
        goto out;
    }
    if (!e->opts.dry_run && (rc = renc_big_open_out(e, &b)))
        goto out_fail;
    if ((rc = renc_big_records(e, ring, &b)))
        goto out_fail;
    /* Commit: durable temporary, the store's commit (the commit point),
     * its barrier. */
    if (!e->opts.dry_run && (rc = renc_big_commit_out(e, &b)))
        goto out_fail; /* the temporary is gone: renc_big_commit removed it */
    renc_finish_plan(e, idx, RENC_ITEM_DONE, 0, NULL, &b.plan);
    goto out;

out_fail:
    if (b.out_fd >= 0)
        renc_big_abort(&b);
    renc_finish(e, idx, RENC_ITEM_FAILED, rc, ref);
out:
    atomic_fetch_sub(&e->bytes_partial, b.credited);
    if (b.out_fd >= 0)
        renc_big_abort(&b);
    if (b.direct_in_fd >= 0)
        close(b.direct_in_fd);
    renc_free(b.hdr);
    if (!e->opts.keep_cache)
        renc_file_drop_cache(b.in_fd);
    close(b.in_fd);
    renc_blob_plan_cleanup(&b.plan);
    pthread_mutex_destroy(&b.lock);
}
