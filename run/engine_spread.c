/* run/engine_spread.c — a big blob of the streamed path (engine_remote.c)
 * spread over the workers: its records are cut into chunks whose bounds
 * are known without reading them (records of a fixed size, or a plain
 * copy), and any worker with nothing else to do takes one: reads its
 * range, reseals or opens it with a resealer of its own, and stages it out
 * of order (the store's reserve and stage_at: in blob storage a block whose
 * place in the list is its index).  The worker that opened the blob takes
 * chunks too, waits for the others, and commits; a failure of any chunk
 * fails the blob before its commit, so it stays wholly old. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/error.h"
#include "crypto/header.h"
#include "crypto/record.h"
#include "io/pool.h"
#include "run/engine_internal.h"

struct renc_rjob {
    struct renc_remote *r;
    enum renc_pass pass;
    uint64_t from, step;     /* the records start at from; chunk k at from + k * step */
    uint64_t per_chunk;      /* records in a chunk (0: a copy) */
    uint64_t count;          /* the blob's records */
    uint64_t nchunks;
    uint64_t first_block;    /* the store's index of chunk 0 (reserve) */
    uint64_t out_base;       /* chunk 0's offset in the new version */
    /* Under the engine's lock: */
    uint64_t next;           /* the next chunk to take */
    unsigned active;         /* workers in one of its chunks */
    int rc;                  /* the first failure */
    struct renc_rjob *link;
};

/* Chunk k of j through buf: read, resealed or opened, staged. */
static int renc_rjob_chunk(struct renc_rjob *j, uint64_t k, uint8_t *buf)
{
    struct renc_remote *r = j->r;
    struct renc_engine *e = r->e;
    uint64_t off = j->from + k * j->step;
    size_t len = (size_t)(r->size - off < j->step ? r->size - off : j->step);
    size_t got = 0;
    int rc = e->src->ops->read_range(e->src, r->it, r->fd, off, buf, len, &got);
    if (rc == 0 && got < len)
        rc = -RENC_E_TRUNCATED;
    if (rc == 0 && j->pass != RENC_PASS_COPY) {
        struct renc_resealer rs;
        rc = j->pass == RENC_PASS_VERIFY ? renc_resealer_init_verify(&rs, &r->plan, e->opts.backend)
                                         : renc_resealer_init(&rs, &r->plan, e->opts.backend);
        if (rc == 0) {
            rc = renc_transform_records(&rs, &r->plan, buf, len, k * j->per_chunk, j->count,
                                        off + len == r->size, NULL);
            renc_resealer_cleanup(&rs);
        }
    }
    if (rc == 0 && r->begun)
        rc = e->dst->ops->stage_at(e->dst, &r->txn, j->first_block + k,
                                   j->out_base + (off - j->from), buf, len);
    return rc;
}

/* Chunks of one blob in flight at most: like the local path's read-ahead
 * (RENC_CHUNK_INFLIGHT), enough to overlap requests with the crypto
 * without one blob taking every worker and buffer. */
#define RENC_SPREAD_INFLIGHT 4u

/* Under the engine's lock: the next chunk of j, when there is one. */
static int renc_rjob_claim(struct renc_rjob *j, uint64_t *k)
{
    if (j->rc || j->next >= j->nchunks || j->active >= RENC_SPREAD_INFLIGHT)
        return 0;
    *k = j->next++;
    j->active++;
    return 1;
}

static void renc_rjob_done(struct renc_engine *e, struct renc_rjob *j, int rc)
{
    pthread_mutex_lock(&e->lock);
    if (rc && !j->rc)
        j->rc = rc;
    j->active--;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Under the engine's lock: 1 when some job has a chunk a helper may take. */
static int renc_rjob_open(const struct renc_engine *e)
{
    for (const struct renc_rjob *j = e->rjobs; j; j = j->link)
        if (!j->rc && j->next < j->nchunks && j->active < RENC_SPREAD_INFLIGHT)
            return 1;
    return 0;
}

int renc_spread_help(struct renc_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int any = renc_rjob_open(e);
    pthread_mutex_unlock(&e->lock);
    uint8_t *buf;
    /* A buffer first, never waited for: a worker that claimed a chunk and
     * then waited for memory could hold up the blob's owner forever. */
    if (!any || renc_pool_try_acquire(e->pool, e->chunk_bytes, &buf) != 0)
        return 0;
    struct renc_rjob *j;
    uint64_t k = 0;
    pthread_mutex_lock(&e->lock);
    for (j = e->rjobs; j && !renc_rjob_claim(j, &k); j = j->link)
        ;
    pthread_mutex_unlock(&e->lock);
    if (j)
        renc_rjob_done(e, j, renc_rjob_chunk(j, k, buf));
    renc_pool_release(e->pool, buf, e->chunk_bytes);
    return j != NULL;
}

int renc_spread_wait(struct renc_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int any = e->rjobs != NULL || e->coordinators > 0;
    if (any)
        renc_engine_nap(e);
    pthread_mutex_unlock(&e->lock);
    return any;
}

/* How j's records are cut: chunks of whole records of a fixed size (the
 * blob's length checked against its header first), or any bounds for a
 * copy.  0 when they cannot be cut unread (compressed, or a count not
 * known): the caller streams them. */
static int renc_rjob_cut(struct renc_rjob *j, int *rc)
{
    struct renc_remote *r = j->r;
    size_t chunk = r->buf_len;
    *rc = 0;
    j->step = chunk;
    if (j->pass != RENC_PASS_COPY) {
        const struct renc_header *h = &r->plan.old_h;
        j->count = renc_header_seg_count(h);
        if ((h->flags & RENC_FLAG_COMPRESSED) || j->count == 0)
            return 0;
        uint64_t rec = renc_record_max_len(renc_header_seg_size(h));
        uint64_t last = h->plaintext_len - (j->count - 1) * renc_header_seg_size(h) +
                        RENC_RECORD_OVERHEAD;
        uint64_t expect = h->header_len + (j->count - 1) * rec + last;
        if (r->size != expect)
            *rc = r->size < expect ? -RENC_E_TRUNCATED : -RENC_E_TRAILING;
        j->per_chunk = chunk / rec ? chunk / rec : 1;
        j->step = j->per_chunk * rec;
    }
    j->nchunks = (r->size - j->from + j->step - 1) / j->step;
    return 1;
}

/* The owner's part: chunks taken until none is left, then the helpers
 * waited for; the job leaves the list. */
static int renc_rjob_own(struct renc_engine *e, struct renc_rjob *j)
{
    pthread_mutex_lock(&e->lock);
    j->link = e->rjobs;
    e->rjobs = j;
    pthread_cond_broadcast(&e->cond);
    uint64_t k;
    for (;;) {
        if (renc_rjob_claim(j, &k)) {
            pthread_mutex_unlock(&e->lock);
            int rc = renc_rjob_chunk(j, k, j->r->buf);
            pthread_mutex_lock(&e->lock);
            if (rc && !j->rc)
                j->rc = rc;
            j->active--;
            pthread_cond_broadcast(&e->cond);
            continue;
        }
        if (j->active == 0 && (j->rc || j->next >= j->nchunks))
            break; /* every chunk done (or one failed and the rest let go) */
        pthread_cond_wait(&e->cond, &e->lock);
    }
    struct renc_rjob **p = &e->rjobs;
    while (*p != j)
        p = &(*p)->link;
    *p = j->link;
    pthread_mutex_unlock(&e->lock);
    return j->rc;
}

int renc_spread_stream(struct renc_remote *r, uint64_t from, enum renc_pass pass, int *taken)
{
    struct renc_engine *e = r->e;
    struct renc_rjob j = {.r = r, .pass = pass, .from = from};
    int rc;
    *taken = 0;
    if (e->opts.threads < 2 || r->size <= from || r->size - from <= r->buf_len ||
        (r->begun && !e->dst->ops->stage_at))
        return 0;
    if (!renc_rjob_cut(&j, &rc))
        return 0;
    *taken = 1;
    if (rc)
        return rc;
    r->buf_off = r->buf_have = 0; /* buf is now a chunk buffer like the helpers' */
    if (r->begun) {
        j.out_base = r->txn.appended;
        if ((rc = e->dst->ops->reserve(e->dst, &r->txn, j.nchunks, &j.first_block)))
            return rc;
    }
    return renc_rjob_own(e, &j);
}
