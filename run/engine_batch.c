/* run/engine_batch.c — small blobs, in batches (engine.h has the
 * pipeline, engine_internal.h what the engine's files share). */
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

/* A batch item's ring op: result stored, counted down. */
struct renc_batch_op {
    struct renc_ring_op op;
    int *result; /* the item's error, set on failure */
    int *value;  /* the op's non-negative result (a descriptor, a byte count) */
    size_t *left; /* the step's ops not yet done */
};

static void renc_batch_done(struct renc_ring_op *op, int result)
{
    struct renc_batch_op *b = (struct renc_batch_op *)op;
    if (result < 0)
        *b->result = result;
    else
        *b->value = result;
    (*b->left)--;
}

struct renc_small {
    size_t idx;
    uint8_t *buf;
    size_t buf_len;
    size_t len;
    int fd;                  /* the blob as read: kept open until the batch ends */
    int ofd;                 /* the temporary (or, in place, the blob) being written */
    struct stat st;          /* the blob as read (renc_same_file identity) */
    int rc;
    int value;               /* the last op's result */
    int write;               /* 1 when it is to be written */
    int copy_only;           /* --out: already under the target, mirrored as it is */
    int in_place;            /* txn.mode is RENC_COMMIT_HEADER_IN_PLACE */
    uint8_t *old_hdr;        /* in place: the header it replaces (for the journal) */
    struct renc_blob_plan plan;
    struct renc_store_txn txn; /* its new version (renc_commit_begin) */
    struct renc_batch_op op;
};

/* A replaced blob's descriptor being closed through the ring: it outlives
 * its batch (renc_small_close_read). */
struct renc_close_op {
    struct renc_ring_op op;
    int busy;
};

#define RENC_CLOSES_MAX (2 * RENC_BATCH_MAX)

/* A worker's batch: RENC_BATCH_MAX items, filled by renc_batch_add; the
 * closes still in flight from earlier batches; the ops of the step under
 * way not yet done. */
struct renc_batch {
    struct renc_small items[RENC_BATCH_MAX];
    struct renc_close_op closes[RENC_CLOSES_MAX];
    size_t next_close;
    size_t step_left;
};

struct renc_batch *renc_batch_new(void)
{
    return renc_calloc(1, sizeof(struct renc_batch));
}

/* Waits for close op o to be done; 0 when it is, else the ring's -errno
 * (then it may never be). */
static int renc_close_wait(struct renc_ring *ring, const struct renc_close_op *o)
{
    while (o->busy) {
        int rc = renc_ring_wait(ring, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void renc_batch_free(struct renc_batch *b, struct renc_ring *ring)
{
    if (!b)
        return;
    for (size_t i = 0; i < RENC_CLOSES_MAX; i++)
        if (renc_close_wait(ring, &b->closes[i]))
            break; /* a broken ring: renc_ring_free waits for the kernel */
    renc_free(b);
}

void renc_batch_add(struct renc_batch *b, size_t n, size_t idx, uint8_t *buf, size_t buf_len)
{
    struct renc_small *items = b->items;
    memset(&items[n], 0, sizeof items[n]);
    items[n].idx = idx;
    items[n].buf = buf;
    items[n].buf_len = buf_len;
    items[n].fd = -1;
    items[n].ofd = -1;
    items[n].plan.failed_slot = -1;
}

static void renc_small_fail(struct renc_engine *e, struct renc_small *s, int rc, const char *ref)
{
    if (s->rc == 0)
        s->rc = rc;
    renc_finish(e, s->idx, RENC_ITEM_FAILED, s->rc, ref);
    s->write = 0;
}

/* Which items of a batch a step is for. */
enum renc_step_for { RENC_STEP_ALL, RENC_STEP_WRITES };

/* Submits one op per live item and waits for all of them (not for the
 * earlier batches' closes, which go on meanwhile). */
static int renc_batch_step(struct renc_ring *ring, struct renc_batch *b, size_t n,
                           void (*prep)(struct renc_small *, struct renc_batch_op *, void *),
                           void *arg, enum renc_step_for which)
{
    b->step_left = 0;
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &b->items[i];
        if (s->rc || (which != RENC_STEP_ALL && !s->write))
            continue;
        memset(&s->op, 0, sizeof s->op);
        s->op.result = &s->rc;
        s->op.value = &s->value;
        s->op.left = &b->step_left;
        s->op.op.done = renc_batch_done;
        prep(s, &s->op, arg);
        b->step_left++;
        renc_ring_submit(ring, &s->op.op);
    }
    while (b->step_left) {
        int rc = renc_ring_wait(ring, 1);
        if (rc < 0) {
            /* The ring itself failed: no callback runs any more. */
            for (size_t i = 0; i < n; i++)
                if (b->items[i].rc == 0 && (which == RENC_STEP_ALL || b->items[i].write))
                    b->items[i].rc = rc;
            return rc;
        }
    }
    return 0;
}

/* The store's local fast path: the blob opened through the ring by the
 * path the store gives (store/store.h, ring_path). */
static void renc_prep_open_read(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    struct renc_engine *e = arg;
    b->op.kind = RENC_RING_OPENAT;
    b->op.fd = AT_FDCWD;
    b->op.path = e->src->ops->ring_path(e->src, &e->scan->items[s->idx]);
    b->op.open_flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
}

static void renc_prep_read(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_READ;
    b->op.fd = s->fd;
    b->op.buf = s->buf;
    b->op.len = (size_t)((const struct renc_engine *)arg)->scan->items[s->idx].size + 1;
    b->op.offset = 0;
}

/* What a write goes to, opened in the worker itself, not through the ring:
 * an open that creates a file always leaves io_uring's inline path for its
 * worker threads, and a batch's creates all take the same directory's lock,
 * so with the whole batch in flight those threads mostly spun on that lock
 * and took the cores from the workers (docs/PERFORMANCE.md, "Small blobs:
 * the per-blob overhead"). */
static int renc_open_out(const struct renc_small *s, const struct renc_scan *scan)
{
    int fd = s->in_place
                 ? open(s->txn.final, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
                 : open(s->txn.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                        scan->items[s->idx].mode & 07777);
    return fd < 0 ? -errno : fd;
}

static void renc_prep_write(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_WRITE;
    b->op.fd = s->ofd;
    b->op.buf = s->buf;
    b->op.len = s->len;
    b->op.offset = 0;
}

/* A full fsync: the owner, mode, extended attributes and mtime given to the
 * new file are metadata fdatasync may leave behind. */
static void renc_prep_fsync(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_FSYNC;
    b->op.fd = s->ofd;
    b->op.flags = 0;
}

/* A blob is to be written: in place (not --out), one with other hard links
 * is left alone — a new file renamed over this name would leave the other
 * names on the old version, a header written in place would rewrite them
 * too, and they may lie outside the run's sources. */
static void renc_small_mark_write(struct renc_engine *e, struct renc_small *s)
{
    if (renc_commit_mode(e, NULL) != RENC_COMMIT_MIRROR && !e->opts.identity &&
        s->st.st_nlink > 1)
        renc_small_fail(e, s, -RENC_E_HARDLINKED, NULL);
    else
        s->write = 1;
}

/* Passes a blob's records through the plan's resealer, in memory, and puts
 * the new header before them: in place when only the header changes and
 * fits (renc_commit_mode), else a whole new blob for a temporary.  Nothing
 * is written yet: a failure here leaves the blob wholly old. */
static void renc_small_reseal(struct renc_engine *e, struct renc_small *s)
{
    struct renc_blob_plan *p = &s->plan;
    int rc;
    size_t old_hl = p->old_h.header_len;
    struct renc_resealer r;
    if ((rc = renc_resealer_init(&r, p, e->opts.backend)) == 0) {
        rc = renc_transform_records(&r, p, s->buf + old_hl, s->len - old_hl, 0,
                                    renc_header_seg_count(&p->old_h), 1, NULL);
        renc_resealer_cleanup(&r);
    }
    if (rc) {
        renc_small_fail(e, s, rc, NULL);
        return;
    }
    if (e->opts.dry_run) {
        renc_finish(e, s->idx, RENC_ITEM_DONE, 0, NULL);
        return;
    }
    enum renc_commit_mode mode = renc_commit_mode(e, p);
    if (mode == RENC_COMMIT_HEADER_IN_PLACE) {
        /* Only the header changes: it is rewritten where it is. */
        s->old_hdr = renc_malloc(old_hl);
        if (!s->old_hdr || (rc = renc_commit_begin(e, s->idx, mode, &s->txn))) {
            renc_small_fail(e, s, s->old_hdr ? rc : -RENC_E_NOMEM, NULL);
            return;
        }
        memcpy(s->old_hdr, s->buf, old_hl);
        memcpy(s->buf, p->new_hdr, old_hl);
        s->len = old_hl;
        s->in_place = 1;
        renc_small_mark_write(e, s);
        return;
    }
    /* The new blob: the new header, then the records unchanged in length. */
    if (p->new_hdr_len != old_hl) {
        size_t new_len = s->len - old_hl + p->new_hdr_len;
        if (new_len > s->buf_len) {
            uint8_t *grown = renc_malloc(new_len);
            if (!grown) {
                renc_small_fail(e, s, -RENC_E_NOMEM, NULL);
                return;
            }
            memcpy(grown + p->new_hdr_len, s->buf + old_hl, s->len - old_hl);
            renc_pool_release(e->pool, s->buf, s->buf_len);
            s->buf = grown;
            s->buf_len = 0; /* not from the pool */
        } else {
            memmove(s->buf + p->new_hdr_len, s->buf + old_hl, s->len - old_hl);
        }
        s->len = new_len;
    }
    memcpy(s->buf, p->new_hdr, p->new_hdr_len);
    if ((rc = renc_commit_begin(e, s->idx, mode, &s->txn))) {
        renc_small_fail(e, s, rc, NULL);
        return;
    }
    renc_small_mark_write(e, s);
}

/* Transforms (or verifies) one read blob in memory.  Sets s->write when the
 * result is to be written; finishes the item otherwise. */
static void renc_small_transform(struct renc_engine *e, struct renc_small *s)
{
    const struct renc_scan_item *it = &e->scan->items[s->idx];
    if (s->len < 4 || memcmp(s->buf, "RENC", 4) != 0) {
        renc_finish(e, s->idx, RENC_ITEM_NOT_RENC, 0, NULL);
        return;
    }
    if (s->len != (size_t)s->st.st_size) {
        renc_small_fail(e, s, -RENC_E_CHANGED, NULL); /* written to while it was read */
        return;
    }
    (void)it;
    if (e->opts.identity) {
        /* The bare file-work ceiling: every step of a run but the crypto. */
        int rc = renc_commit_begin(e, s->idx, renc_commit_mode(e, NULL), &s->txn);
        if (rc)
            renc_small_fail(e, s, rc, NULL);
        else
            renc_small_mark_write(e, s);
        return;
    }
    if (e->opts.op == RENC_ENGINE_VERIFY) {
        struct renc_blob_status st;
        int rc = renc_blob_verify_mem(e->ks, s->buf, s->len, &st);
        if (rc)
            renc_small_fail(e, s, rc, st.ref);
        else
            renc_finish(e, s->idx, RENC_ITEM_DONE, 0, NULL);
        return;
    }
    struct renc_blob_plan *p = &s->plan;
    int rc = renc_transform_plan(e->t, p, s->buf, s->len);
    if (rc) {
        renc_small_fail(e, s, rc, p->failed_ref);
        return;
    }
    if (p->verdict == RENC_VERDICT_SKIP &&
        (renc_commit_mode(e, p) != RENC_COMMIT_MIRROR || e->opts.dry_run)) {
        renc_finish_plan(e, s->idx, RENC_ITEM_SKIPPED, 0, NULL, p);
        return;
    }
    if (p->verdict == RENC_VERDICT_SKIP) {
        /* --out: the mirror is complete, so a blob already under the target
         * is copied into it as it is (and counted as skipped). */
        if ((rc = renc_commit_begin(e, s->idx, RENC_COMMIT_MIRROR, &s->txn))) {
            renc_small_fail(e, s, rc, NULL);
            return;
        }
        s->copy_only = 1;
        renc_small_mark_write(e, s);
        return;
    }
    renc_small_reseal(e, s);
}

/* The filesystems a batch writes to, each with a descriptor of its own on
 * it (the new files are closed before their renames are made durable). */
struct renc_batch_fs {
    dev_t dev[RENC_BATCH_MAX];
    int fd[RENC_BATCH_MAX];
    size_t n;
};

static int renc_batch_fs_add(struct renc_batch_fs *fs, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    for (size_t i = 0; i < fs->n; i++)
        if (fs->dev[i] == st.st_dev)
            return 0;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return -errno;
    fs->dev[fs->n] = st.st_dev;
    fs->fd[fs->n++] = d;
    return 0;
}

/* The generation of the workers' grouped syncfs that may be under way: a
 * batch takes it before it writes (renc_group_sync). */
static uint64_t renc_group_mark(struct renc_engine *e)
{
    pthread_mutex_lock(&e->sync_lock);
    uint64_t g = e->sync_started;
    pthread_mutex_unlock(&e->sync_lock);
    return g;
}

/* Group commit: what this worker wrote before the call is durable once a
 * syncfs that started after the call has finished: one worker runs it while
 * the others wait, and whoever comes next runs the next for everyone who
 * arrived meanwhile.  Every grouped syncfs goes through one descriptor, so
 * a writeback error is reported by the first syncfs after it; a batch
 * fails when any syncfs since its mark (the generation that may have been
 * running when it began writing) failed.  Another filesystem than the
 * grouped one is synced directly. */
static int renc_group_sync(struct renc_engine *e, dev_t dev, int fd, uint64_t mark)
{
    pthread_mutex_lock(&e->sync_lock);
    if (e->sync_fd < 0 && (e->sync_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0)
        e->sync_dev = dev;
    if (e->sync_fd < 0 || e->sync_dev != dev) {
        pthread_mutex_unlock(&e->sync_lock);
        return renc_file_syncfs(fd);
    }
    uint64_t target = e->sync_started + 1;
    while (e->sync_done < target) {
        if (e->sync_busy) {
            pthread_cond_wait(&e->sync_cond, &e->sync_lock);
            continue;
        }
        e->sync_busy = 1;
        uint64_t gen = ++e->sync_started;
        pthread_mutex_unlock(&e->sync_lock);
        int rc = renc_file_syncfs(e->sync_fd);
        pthread_mutex_lock(&e->sync_lock);
        e->sync_busy = 0;
        e->sync_done = gen;
        if (rc) {
            e->sync_failed = gen;
            e->sync_rc = rc;
        }
        pthread_cond_broadcast(&e->sync_cond);
    }
    int rc = e->sync_failed && e->sync_failed >= mark ? e->sync_rc : 0;
    pthread_mutex_unlock(&e->sync_lock);
    return rc;
}

/* Everything written to the batch's filesystems before the call made
 * durable (mark: renc_group_mark before the writes). */
static int renc_batch_fs_sync(struct renc_engine *e, const struct renc_batch_fs *fs,
                              uint64_t mark)
{
    int rc = 0;
    for (size_t i = 0; i < fs->n; i++) {
        int r = renc_group_sync(e, fs->dev[i], fs->fd[i], mark);
        if (r && rc == 0)
            rc = r;
    }
    return rc;
}

static void renc_batch_fs_close(struct renc_batch_fs *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        close(fs->fd[i]);
    fs->n = 0;
}

/* --barrier batch, first half: the batch's written files (temporaries, or
 * headers written in place) made durable together, one syncfs for each
 * filesystem they are on, where --barrier file gives each its fsync.  On a
 * failure none of them is committed (a header is put back). */
static void renc_batch_sync_writes(struct renc_engine *e, struct renc_small *items, size_t n,
                                   struct renc_batch_fs *fs, uint64_t mark)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (items[i].write && !items[i].rc)
            rc = renc_batch_fs_add(fs, items[i].ofd);
    if (rc == 0)
        rc = renc_batch_fs_sync(e, fs, mark);
    for (size_t i = 0; rc && i < n; i++)
        if (items[i].write && !items[i].rc)
            items[i].rc = rc;
}

/* Makes the batch's commits (renames) durable: under --barrier file, the
 * store's barrier over them (a local tree syncs each directory once, for
 * the whole batch); under --barrier batch, one syncfs per filesystem. */
static int renc_batch_barrier(struct renc_engine *e, struct renc_small *items, size_t n,
                              const struct renc_batch_fs *fs, uint64_t mark)
{
    struct renc_store_txn *txns[RENC_BATCH_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].write && !items[i].rc && !items[i].in_place)
            txns[k++] = &items[i].txn;
    if (e->opts.barrier == RENC_BARRIER_BATCH)
        return k ? renc_batch_fs_sync(e, fs, mark) : 0;
    return e->dst->ops->barrier(e->dst, txns, k);
}

/* Whether the blob as read is gone: replaced in place by its new version
 * (the exchange put the old file aside and removed it), so its pages and
 * blocks go with its last descriptor. */
static int renc_small_replaced(const struct renc_small *s)
{
    return s->write && s->rc == 0 && !s->in_place && s->txn.mode == RENC_COMMIT_REPLACE;
}

static void renc_close_done(struct renc_ring_op *op, int result)
{
    (void)result; /* read-only: closing cannot lose data */
    ((struct renc_close_op *)op)->busy = 0;
}

/* A replaced blob's last descriptor frees its blocks, which on a
 * filesystem mounted with `discard` and no journal waits for the device's
 * discard, one blob after another: these closes go through the ring's
 * workers instead, side by side, while the worker goes on with its next
 * batch (the blob is finished and journaled already; nothing waits for its
 * old blocks).  Two batches' closes at most are in flight: a slot is
 * reused once its close two batches back is done (renc_batch_cap counts
 * their descriptors). */
static void renc_small_close_read(struct renc_engine *e, struct renc_ring *ring,
                                  struct renc_batch *b, struct renc_small *s)
{
    struct renc_close_op *o = &b->closes[b->next_close];
    if (!renc_small_replaced(s) || renc_close_wait(ring, o)) {
        if (!e->opts.keep_cache && !renc_small_replaced(s))
            renc_file_drop_cache(s->fd); /* read once: not worth the cache */
        close(s->fd);                    /* read-only: closing cannot lose data */
    } else {
        memset(o, 0, sizeof *o);
        o->op.kind = RENC_RING_CLOSE;
        o->op.fd = s->fd;
        o->op.flags = RENC_RING_ASYNC;
        o->op.done = renc_close_done;
        o->busy = 1;
        renc_ring_submit(ring, &o->op);
        b->next_close = (b->next_close + 1) % (2 * e->batch_max);
    }
    s->fd = -1;
}

void renc_batch_release(struct renc_engine *e, struct renc_ring *ring, struct renc_batch *b,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &b->items[i];
        if (s->fd >= 0)
            renc_small_close_read(e, ring, b, s);
        if (s->ofd >= 0)
            close(s->ofd);
        if (s->buf_len)
            renc_pool_release(e->pool, s->buf, s->buf_len);
        else if (s->buf) {
            renc_secmem_wipe(s->buf, s->len);
            renc_free(s->buf);
        }
        renc_blob_plan_cleanup(&s->plan);
        renc_free(s->old_hdr);
    }
    (void)renc_ring_flush(ring); /* the closes start now, not at the next step */
}

/* Journals the batch's in-place header intents in one durable commit; on
 * failure those blobs fail, untouched. */
static void renc_batch_intents(struct renc_engine *e, struct renc_small *items, size_t n)
{
    int64_t rows[RENC_BATCH_MAX];
    const char *paths[RENC_BATCH_MAX];
    const uint8_t *olds[RENC_BATCH_MAX], *news[RENC_BATCH_MAX];
    size_t lens[RENC_BATCH_MAX], k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].write || !items[i].in_place)
            continue;
        rows[k] = e->opts.rows[items[i].idx];
        paths[k] = items[i].txn.final;
        olds[k] = items[i].old_hdr;
        news[k] = items[i].buf;
        lens[k] = items[i].len;
        k++;
    }
    if (k == 0)
        return;
    int rc = renc_journal_header_intents(e->opts.journal, k, rows, paths, olds, news, lens);
    if (rc == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (items[i].write && items[i].in_place)
            renc_small_fail(e, &items[i], rc, NULL);
}

/* Reads the batch: open, identity, read, with the whole batch in flight.
 * The descriptors stay open until the batch ends: the identity taken here is
 * what each commit checks it replaces. */
static void renc_batch_read(struct renc_engine *e, struct renc_ring *ring, struct renc_batch *b,
                            size_t n)
{
    struct renc_small *items = b->items;
    renc_batch_step(ring, b, n, renc_prep_open_read, e, RENC_STEP_ALL);
    for (size_t i = 0; i < n; i++) {
        items[i].fd = items[i].rc ? -1 : items[i].value;
        if (items[i].fd >= 0 && fstat(items[i].fd, &items[i].st) != 0)
            items[i].rc = -errno;
    }
    renc_batch_step(ring, b, n, renc_prep_read, e, RENC_STEP_ALL);
    for (size_t i = 0; i < n; i++)
        if (items[i].rc == 0)
            items[i].len = (size_t)items[i].value;
}

/* Opens what each write goes to: the temporary, or in place the blob itself
 * (which must still be the file that was read). */
static void renc_batch_open_out(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write)
            continue;
        if (s->rc == 0 && (s->value = renc_open_out(s, e->scan)) < 0)
            s->rc = s->value;
        if (s->rc) {
            renc_small_fail(e, s, s->rc, NULL);
            continue;
        }
        s->ofd = s->value;
        struct stat now;
        if (s->in_place && (fstat(s->ofd, &now) != 0 || !renc_same_file(&s->st, &now))) {
            /* Replaced or written since it was read: its header is not
             * ours to write (the journal drops the intent). */
            close(s->ofd);
            s->ofd = -1;
            renc_small_fail(e, s, -RENC_E_CHANGED, NULL);
        }
    }
}

/* After the data is written and before it is made durable: the new file
 * gets the blob's owner, mode, extended attributes and mtime; a header
 * written in place keeps the blob's mtime. */
static void renc_batch_attrs(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write || s->rc)
            continue;
        unsigned lost = 0;
        s->rc = s->in_place ? renc_keep_mtime(s->ofd, &s->st)
                            : renc_copy_attrs(s->fd, &s->st, s->ofd, &lost);
        renc_note_attrs(e, lost);
    }
}

/* Closes what was written; a failed write undoes itself. */
static void renc_batch_close_out(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write)
            continue;
        if (s->rc && s->in_place)
            renc_store_fd_restore_header(s->ofd, s->old_hdr, s->len);
        else if (!e->opts.keep_cache)
            renc_file_drop_cache(s->ofd); /* durable by now (its fsync, or the batch's syncfs) */
        if (!s->in_place && e->own_tmp)
            renc_store_txn_mine(&s->txn, s->ofd);
        if (close(s->ofd) != 0 && s->rc == 0)
            s->rc = -errno; /* in place: the journal's intent settles what is there */
        s->ofd = -1;
        if (s->rc && s->in_place) {
            renc_small_fail(e, s, s->rc, NULL);
        } else if (s->rc) {
            e->dst->ops->abort(e->dst, &s->txn);
            renc_small_fail(e, s, s->rc, NULL);
        }
    }
}

/* Commit point: each blob still the one that was read is replaced by its
 * new version (renc_commit_txn: an exchange checked on both sides; under
 * --out, the source is checked and the mirror's file renamed).  A header
 * written in place is committed once durable. */
static void renc_batch_commit(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write || s->rc || s->in_place)
            continue;
        int rc = renc_commit_txn(e, s->idx, &s->st, &s->txn);
        if (rc)
            renc_small_fail(e, s, rc, NULL);
    }
}

void renc_run_batch(struct renc_engine *e, struct renc_ring *ring, struct renc_batch *b, size_t n)
{
    struct renc_small *items = b->items;
    renc_batch_read(e, ring, b, n);
    for (size_t i = 0; i < n; i++) {
        /* Stopping (fail-fast, a run-wide failure, a signal): the rest of
         * the batch is left as it is, untouched and not finished, for the
         * next attempt. */
        if (renc_should_stop(e))
            break;
        if (items[i].rc) {
            renc_small_fail(e, &items[i], items[i].rc, NULL);
            continue;
        }
        renc_small_transform(e, &items[i]);
    }
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= items[i].write;
    if (!any)
        return;

    /* In-place headers: the old and new header of each go durably into the
     * journal, for all of the batch at once, before any is overwritten. */
    renc_batch_intents(e, items, n);

    /* Write: temporaries opened, written, made durable and closed with the
     * whole batch in flight.  Recovery: roll back (remove temporaries). */
    struct renc_batch_fs fs = {.n = 0};
    int batch = e->opts.barrier == RENC_BARRIER_BATCH;
    uint64_t mark = batch ? renc_group_mark(e) : 0;
    renc_batch_open_out(e, items, n);
    renc_batch_step(ring, b, n, renc_prep_write, NULL, RENC_STEP_WRITES);
    renc_batch_attrs(e, items, n);
    if (batch)
        renc_batch_sync_writes(e, items, n, &fs, mark);
    else
        renc_batch_step(ring, b, n, renc_prep_fsync, NULL, RENC_STEP_WRITES);
    renc_batch_close_out(e, items, n);
    mark = batch ? renc_group_mark(e) : 0;
    renc_batch_commit(e, items, n);
    /* One durability barrier for the whole batch's renames. */
    int rc = renc_batch_barrier(e, items, n, &fs, mark);
    renc_batch_fs_close(&fs);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].write)
            continue;
        if (items[i].in_place) {
            atomic_fetch_add(&e->in_place, 1);
            renc_finish_plan(e, items[i].idx, RENC_ITEM_DONE, 0, NULL, &items[i].plan);
        } else if (rc) {
            renc_small_fail(e, &items[i], rc, NULL); /* renamed, durability unknown */
        } else {
            renc_finish_plan(e, items[i].idx,
                             items[i].copy_only ? RENC_ITEM_SKIPPED : RENC_ITEM_DONE, 0, NULL,
                             &items[i].plan);
        }
    }
}
