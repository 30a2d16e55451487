/* run/engine.c — see engine.h for the shape of the pipeline, and
 * engine_internal.h for how it is split across files.  This file: the work
 * queue (workers claiming items), results and their journal notes, paths
 * and temporaries, the commit mode and the commit helpers both paths use,
 * the engine's life cycle. */
#include "run/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/header.h"
#include "crypto/record.h"
#include "io/file.h"
#include "io/pool.h"
#include "io/ring.h"
#include "blob/blobfile.h"
#include "run/engine_internal.h"

/* ---- results ---------------------------------------------------------- */

int renc_engine_key_wide(int rc)
{
    return rc == -RENC_E_KEY_REVOKED || rc == -RENC_E_KEY_DELETED || rc == -RENC_E_VAULT_AUTH ||
           rc == -RENC_E_VAULT_DENIED || rc == -RENC_E_VAULT_NETWORK ||
           rc == -RENC_E_VAULT_THROTTLED || rc == -RENC_E_HSM_LOGIN ||
           rc == -RENC_E_HSM_TOKEN || rc == -RENC_E_HSM_MODULE;
}

int renc_engine_run_wide(int rc)
{
    /* The destination filesystem is full, read-only or failing, or the
     * storage account refuses us, is gone or cannot be reached after the
     * retries: every blob after this one would fail the same way. */
    return renc_engine_key_wide(rc) || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS ||
           rc == -RENC_E_STORE_AUTH || rc == -RENC_E_STORE_NOT_FOUND ||
           rc == -RENC_E_STORE_NETWORK || rc == -RENC_E_STORE_BUSY;
}

/* A blob found already under the target on a resume, or in a shared
 * run, may be one a killed attempt committed between its exchange and the
 * removal of its staging file (which then holds the old version): that
 * staging file, named by the run, is removed here, since no attempt will
 * stage this blob again.  Local trees in place only (a mirror's are swept;
 * blob storage has no staging files). */
static void renc_forget_tmp(struct renc_engine *e, size_t idx)
{
    if (!e->opts.clean_tmp || e->run_mode == RENC_COMMIT_MIRROR || e->opts.dry_run ||
        e->dst->ops->kind != RENC_STORE_LOCAL)
        return;
    struct renc_store_txn txn;
    if (renc_commit_begin(e, idx, RENC_COMMIT_REPLACE, &txn) == 0)
        e->dst->ops->abort(e->dst, &txn);
}

/* Records item idx's outcome (durable by now, for a written blob) and
 * notes it in the journal.  plan (may be NULL) names the keys involved. */
void renc_finish_plan(struct renc_engine *e, size_t idx, enum renc_item_state st, int rc,
                      const char *ref, const struct renc_blob_plan *plan)
{
    struct renc_item_result *r = &e->results[idx];
    r->state = (uint8_t)st;
    r->rc = rc;
    if (ref && ref[0])
        r->ref = renc_strdup(ref);
    enum renc_jstate js = RENC_J_FAILED;
    switch (st) {
    case RENC_ITEM_DONE: atomic_fetch_add(&e->done, 1); js = RENC_J_DONE; break;
    case RENC_ITEM_SKIPPED:
        atomic_fetch_add(&e->skipped, 1);
        js = RENC_J_SKIPPED;
        renc_forget_tmp(e, idx);
        break;
    case RENC_ITEM_NOT_RENC: atomic_fetch_add(&e->not_renc, 1); js = RENC_J_NOT_RENC; break;
    default:
        atomic_fetch_add(&e->failed, 1);
        /* A key whose access is withdrawn, or a vault that cannot be reached
         * even after retries, fails every blob that follows: stop now, and
         * leave the rest wholly old for the resume. */
        if (e->opts.fail_fast || renc_engine_run_wide(rc))
            atomic_store(&e->stopping, 1);
        break;
    }
    if (e->opts.journal && e->opts.op == RENC_ENGINE_RUN && !e->opts.dry_run) {
        const char *old_ref = ref, *new_ref = NULL;
        if (plan && plan->old.dek && plan->old.slot >= 0 &&
            plan->old.slot < (int)plan->old_h.slot_count)
            old_ref = plan->old_h.slots[plan->old.slot].ref;
        if (js == RENC_J_DONE)
            new_ref = renc_transformer_target(e->t);
        renc_journal_note(e->opts.journal, e->opts.rows[idx], js, rc, old_ref, new_ref);
    }
    atomic_fetch_add(&e->finished, 1);
    atomic_fetch_add(&e->bytes_finished, e->scan->items[idx].size);
}

/* ---- ring helpers ----------------------------------------------------- */

static void renc_sync_done(struct renc_ring_op *op, int result)
{
    struct renc_sync_op *s = (struct renc_sync_op *)op;
    s->result = result;
    s->finished = 1;
}

/* Runs one op through the ring and waits for it (other ops in flight keep
 * completing meanwhile). */
int renc_ring_run(struct renc_ring *ring, struct renc_sync_op *s)
{
    s->op.done = renc_sync_done;
    s->finished = 0;
    renc_ring_submit(ring, &s->op);
    while (!s->finished) {
        int rc = renc_ring_wait(ring, 1);
        if (rc < 0)
            return rc;
    }
    return s->result;
}

/* ---- the commit mode ------------------------------------------------- */

/* renc_commit_mode: how the new version of a blob with plan p is committed,
 * decided here and nowhere else (p NULL: the run's mode, before a blob has
 * a plan).  Under --out the new blob goes to the mirror and the source is
 * never written.  In place, a rewrap whose new header has the old one's
 * length rewrites only the header where it is, with the journal holding
 * both across the overwrite; everything else is a replacement staged aside
 * and renamed over the blob.  In blob storage a rewrap commits a new header
 * block with the record blocks the blob already has (the store says when
 * the blob is not laid out so; engine_remote.c then rewrites it whole). */
enum renc_commit_mode renc_commit_mode(const struct renc_engine *e, const struct renc_blob_plan *p)
{
    if (e->run_mode == RENC_COMMIT_MIRROR || !p)
        return e->run_mode;
    if (e->dst->ops->commit_header && !p->new_dek && !e->opts.dry_run)
        return RENC_COMMIT_HEADER_BLOCK;
    if (e->opts.header_in_place && e->opts.journal && !e->opts.dry_run && !p->new_dek &&
        p->new_hdr_len == p->old_h.header_len)
        return RENC_COMMIT_HEADER_IN_PLACE;
    return RENC_COMMIT_REPLACE;
}

/* Where item idx's new version goes (under --out its mirror, folders made)
 * and, but for a header in place, the staging temporary beside it: tagged
 * with the journal's run id (the same in every attempt, recorded before
 * any temporary is made), else a random tag of this engine; on a resume
 * the one a crashed attempt left is removed first. */
int renc_commit_begin(struct renc_engine *e, size_t idx, enum renc_commit_mode mode,
                      struct renc_store_txn *txn)
{
    return e->dst->ops->begin(e->dst, &e->scan->items[idx], mode, &e->tags, txn);
}

/* Commit point: item idx's durable staged version replaces the blob if it
 * is still the one that was read (st): in place an exchange checked on
 * both sides; under --out the source checked unchanged, then the mirror's
 * file put in place.  The staging copy is gone afterwards either way. */
int renc_commit_txn(struct renc_engine *e, size_t idx, const struct stat *st,
                    struct renc_store_txn *txn)
{
    /* (The test seam: a crash between a staged version durable and its
     * commit.) */
    int frc = renc_fault_check("commit");
    if (frc) {
        e->dst->ops->abort(e->dst, txn);
        return frc;
    }
    if (txn->mode == RENC_COMMIT_MIRROR) {
        int rc = e->src->ops->unchanged(e->src, &e->scan->items[idx], st);
        if (rc) {
            e->dst->ops->abort(e->dst, txn);
            return rc;
        }
    }
    return e->dst->ops->commit(e->dst, txn, st);
}

/* ---- workers ---------------------------------------------------------- */

void renc_engine_nap(struct renc_engine *e)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 2000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&e->cond, &e->lock, &ts);
}

/* A worker of the streamed path: a chunk of a blob spread over the
 * workers first, then a blob of its own; with none left, it helps until no
 * blob is worked on (one still being read may yet be spread). */
static void renc_worker_streamed(struct renc_engine *e)
{
    for (;;) {
        if (renc_spread_help(e))
            continue;
        size_t idx = renc_should_stop(e) ? SIZE_MAX : atomic_fetch_add(&e->next_item, 1);
        if (idx >= e->scan->count) {
            if (!renc_spread_wait(e))
                return;
            continue;
        }
        pthread_mutex_lock(&e->lock);
        e->coordinators++;
        pthread_mutex_unlock(&e->lock);
        renc_run_remote(e, idx);
        pthread_mutex_lock(&e->lock);
        e->coordinators--;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
}

static void *renc_worker_main(void *arg)
{
    struct renc_engine *e = arg;
    struct renc_ring *ring = NULL;
    struct renc_batch *batch = renc_batch_new();
    int rc = batch ? renc_ring_new(&ring, RENC_RING_DEPTH) : -RENC_E_NOMEM;
    if (rc) {
        int zero = 0;
        atomic_compare_exchange_strong(&e->engine_rc, &zero, rc);
        atomic_store(&e->stopping, 1);
    }
    if (rc == 0 && e->streamed)
        renc_worker_streamed(e);
    while (rc == 0 && !e->streamed) {
        if (renc_help_one(e))
            continue;
        size_t n = 0, bytes = 0;
        ssize_t big = -1;
        while (!renc_should_stop(e) && n < e->batch_max && bytes < RENC_BATCH_BYTES) {
            size_t idx = atomic_fetch_add(&e->next_item, 1);
            if (idx >= e->scan->count)
                break;
            const struct renc_scan_item *it = &e->scan->items[idx];
            if (it->size > e->small_max) {
                big = (ssize_t)idx;
                break;
            }
            uint8_t *buf;
            /* One byte more shows a file that grew since the scan; the rest
             * is room for a new header larger than the old one, so the new
             * blob is assembled in the same pool buffer. */
            size_t want = (size_t)it->size + 1 + 8192;
            int arc = n == 0 ? renc_pool_acquire(e->pool, want, &buf)
                             : renc_pool_try_acquire(e->pool, want, &buf);
            if (arc == -EAGAIN) {
                /* Pool busy: run what we have, this one waits for later. */
                arc = renc_pool_acquire(e->pool, want, &buf);
            }
            if (arc) {
                renc_finish(e, idx, RENC_ITEM_FAILED, arc, NULL);
                continue;
            }
            renc_batch_add(batch, n, idx, buf, want);
            n++;
            bytes += want;
        }
        if (n) {
            renc_run_batch(e, ring, batch, n);
            renc_batch_release(e, ring, batch, n);
        }
        if (big >= 0) {
            pthread_mutex_lock(&e->lock);
            e->coordinators++;
            pthread_mutex_unlock(&e->lock);
            renc_run_big(e, ring, (size_t)big);
            pthread_mutex_lock(&e->lock);
            e->coordinators--;
            pthread_cond_broadcast(&e->cond);
            pthread_mutex_unlock(&e->lock);
        }
        if (n == 0 && big < 0) {
            /* Nothing left to claim: help big blobs until none is fed. */
            pthread_mutex_lock(&e->lock);
            if (!e->queue_head && e->coordinators == 0) {
                pthread_mutex_unlock(&e->lock);
                break;
            }
            if (!e->queue_head)
                renc_engine_nap(e);
            pthread_mutex_unlock(&e->lock);
        }
    }
    renc_batch_free(batch, ring);
    renc_ring_free(ring);
    pthread_mutex_lock(&e->lock);
    e->workers_running--;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- the engine ------------------------------------------------------- */

/* A chunk must hold the largest record (16 MiB segments) with room. */
static size_t renc_engine_chunk_bytes(void)
{
    size_t chunk = (size_t)4 << 20;
    size_t max_record = renc_record_max_len(1u << RENC_SEG_SHIFT_MAX);
    if (chunk < max_record)
        chunk = (max_record + RENC_POOL_ALIGN - 1) & ~(size_t)(RENC_POOL_ALIGN - 1);
    return chunk;
}

size_t renc_engine_min_memory(void)
{
    return renc_engine_chunk_bytes() + RENC_POOL_ALIGN;
}

/* The engine's stores: the caller's source store (or one for the items'
 * names), and the --out mirror's. */
static int renc_engine_stores(struct renc_engine *e)
{
    struct renc_store_spec none = {0}, out = {.root = e->opts.out_dir};
    int rc = 0;
    e->src = e->opts.store;
    if (!e->src && (rc = renc_store_open(&e->own_src, &none)) == 0)
        e->src = e->own_src;
    e->dst = e->src;
    if (e->opts.out_store)
        e->dst = e->opts.out_store;
    else if (rc == 0 && e->opts.out_dir && (rc = renc_store_open(&e->own_dst, &out)) == 0)
        e->dst = e->own_dst;
    if (rc == 0)
        e->streamed = e->src->ops->kind != RENC_STORE_LOCAL ||
                      e->dst->ops->kind != RENC_STORE_LOCAL;
    return rc;
}

/* The default --barrier: batch, where the kernel's syncfs reports
 * write-back errors (Linux 5.8 and later: docs/JOURNAL.md), else file.
 * On a quiet machine batch was ahead in every round (3,007 against 2,535
 * blobs/s, docs/PERFORMANCE.md), and 4-19% ahead under load. */
static enum renc_barrier renc_barrier_default(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return RENC_BARRIER_FILE;
    return major > 5 || (major == 5 && minor >= 8) ? RENC_BARRIER_BATCH : RENC_BARRIER_FILE;
}

/* --barrier batch's items per batch: as many as the descriptors allow (two
 * per item in every worker's batch, and two batches' closes in flight
 * behind it: within half of the process's limit), at least --barrier
 * file's. */
static size_t renc_batch_cap(unsigned threads)
{
    struct rlimit rl;
    size_t cap = RENC_BATCH_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 8 / threads < cap)
        cap = (size_t)(rl.rlim_cur / 8 / threads);
    return cap < RENC_BATCH_FILE ? RENC_BATCH_FILE : cap;
}

int renc_engine_new(struct renc_engine **out, const struct renc_engine_opts *opts,
                    struct renc_keystore *ks, struct renc_transformer *t,
                    const struct renc_scan *scan)
{
    RENC_RETURN_IF(opts->threads == 0, -RENC_E_INVALID);
    RENC_RETURN_IF(opts->op == RENC_ENGINE_RUN && !t, -RENC_E_INVALID);
    size_t chunk = renc_engine_chunk_bytes();
    RENC_RETURN_IF(opts->memory_bytes < renc_engine_min_memory(), -RENC_E_TOO_BIG);

    struct renc_engine *e = renc_calloc(1, sizeof *e);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    e->opts = *opts;
    e->ks = ks;
    e->t = t;
    e->scan = scan;
    e->chunk_bytes = chunk;
    e->run_mode = opts->out_dir ? RENC_COMMIT_MIRROR : RENC_COMMIT_REPLACE;
    if (e->opts.barrier == RENC_BARRIER_DEFAULT)
        e->opts.barrier = renc_barrier_default();
    e->batch_max = e->opts.barrier == RENC_BARRIER_BATCH ? renc_batch_cap(opts->threads)
                                                         : RENC_BATCH_FILE;
    e->own_tmp = opts->journal && renc_journal_shared(opts->journal);
    e->tags = (struct renc_store_tags){.tag = e->tag, .stale_tag = opts->stale_tag,
                                       .clean = opts->clean_tmp};
    /* Small enough to be read whole: a quarter of the pool per worker, at
     * most 4 MiB, so the batches of all workers fit together. */
    e->small_max = opts->memory_bytes / (4 * opts->threads);
    if (e->small_max > ((size_t)4 << 20))
        e->small_max = (size_t)4 << 20;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    pthread_mutex_init(&e->sync_lock, NULL);
    pthread_cond_init(&e->sync_cond, NULL);
    e->sync_fd = -1;
    e->results = renc_calloc(scan->count ? scan->count : 1, sizeof *e->results);
    int rc = e->results ? renc_pool_new(&e->pool, opts->memory_bytes) : -RENC_E_NOMEM;
    if (rc == 0 && opts->tmp_tag)
        rc = snprintf(e->tag, sizeof e->tag, "%s", opts->tmp_tag) < (int)sizeof e->tag
                 ? 0 : -RENC_E_INVALID;
    else if (rc == 0)
        rc = renc_tmpname_random_tag(e->tag);
    if (rc == 0)
        rc = renc_engine_stores(e);
    if (rc) {
        renc_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void renc_engine_free(struct renc_engine *e)
{
    if (!e)
        return;
    if (e->results)
        for (size_t i = 0; i < e->scan->count; i++)
            renc_free(e->results[i].ref);
    renc_free(e->results);
    renc_pool_free(e->pool);
    renc_store_free(e->own_dst);
    renc_store_free(e->own_src);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->sync_lock);
    pthread_cond_destroy(&e->sync_cond);
    if (e->sync_fd >= 0)
        close(e->sync_fd);
    renc_free(e);
}

void renc_engine_snapshot(struct renc_engine *e, struct renc_engine_progress *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    p->items_total = e->scan->count;
    p->items_finished = atomic_load(&e->finished);
    /* next_item runs past the end by one per worker that found none left. */
    size_t next = atomic_load(&e->next_item);
    p->items_started = next < e->scan->count ? next : e->scan->count;
    if (p->items_started < p->items_finished)
        p->items_started = p->items_finished;
    p->done = atomic_load(&e->done);
    p->skipped = atomic_load(&e->skipped);
    p->not_renc = atomic_load(&e->not_renc);
    p->in_place = atomic_load(&e->in_place);
    p->failed = atomic_load(&e->failed);
    p->bytes_total = e->scan->total_bytes;
    p->bytes_finished = atomic_load(&e->bytes_finished) + atomic_load(&e->bytes_partial);
    if (p->bytes_finished > p->bytes_total)
        p->bytes_finished = p->bytes_total;
    p->elapsed_s = (double)(now.tv_sec - e->start.tv_sec) +
                   (double)(now.tv_nsec - e->start.tv_nsec) / 1e9;
}

int renc_engine_run(struct renc_engine *e, unsigned interval_ms,
                    void (*progress)(const struct renc_engine_progress *p, void *arg), void *arg)
{
    clock_gettime(CLOCK_MONOTONIC, &e->start);
    pthread_t *th = renc_calloc(e->opts.threads, sizeof *th);
    RENC_RETURN_IF(!th, -RENC_E_NOMEM);
    unsigned started = 0;
    pthread_mutex_lock(&e->lock);
    for (; started < e->opts.threads; started++) {
        if (pthread_create(&th[started], NULL, renc_worker_main, e) != 0)
            break;
        e->workers_running++;
    }
    double last_ms = 0;
    while (e->workers_running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)interval_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
        if (e->opts.stop && atomic_load(e->opts.stop))
            atomic_store(&e->stopping, 1);
        /* Workers wake this thread for their own reasons (a chunk queued, a
         * worker done); progress goes out once per interval. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double now_ms = (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
        if (progress && now_ms - last_ms >= interval_ms) {
            last_ms = now_ms;
            pthread_mutex_unlock(&e->lock);
            struct renc_engine_progress p;
            renc_engine_snapshot(e, &p);
            progress(&p, arg);
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    renc_free(th);
    if (started == 0)
        return -EAGAIN;
    return atomic_load(&e->engine_rc);
}

const struct renc_item_result *renc_engine_results(const struct renc_engine *e)
{
    return e->results;
}

unsigned renc_engine_attrs_lost(struct renc_engine *e)
{
    return atomic_load(&e->attrs_lost);
}

size_t renc_engine_peak_memory(struct renc_engine *e)
{
    return renc_pool_peak(e->pool);
}
