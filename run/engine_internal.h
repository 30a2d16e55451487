/* run/engine_internal.h — what the engine's files share (engine.h
 * has the pipeline's shape and the public entry points):
 *
 *   engine.c        the work queue (workers claiming items), results and the
 *                   journal notes, paths and temporaries, the commit helpers
 *                   both paths use, the engine's life cycle
 *   engine_batch.c  small blobs, in batches through the ring
 *   engine_big.c    one big blob from open to commit
 *   engine_chunk.c  a big blob's records in chunks: fed to the workers'
 *                   crypto, written at their offsets (the O_DIRECT block
 *                   assembler with them)
 *   engine_remote.c one blob through the streamed path: read by ranges,
 *                   staged through the store's append (a store with no
 *                   local file: blob storage, on either side)
 *
 * Only the engine's own files include this header. */
#ifndef RENC_RUN_ENGINE_INTERNAL_H
#define RENC_RUN_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "blob/transform.h"
#include "io/ring.h"
#include "io/tmpname.h"
#include "run/engine.h"
#include "store/store.h"

/* Items in a batch: --barrier file's (an fsync each, all in flight), and
 * the most --barrier batch takes (one syncfs stands for them all, so the
 * more the better, bounded by the descriptors: two open per item, and two
 * batches' closes in flight behind it).  The ring holds a batch's ops and
 * those closes. */
#define RENC_BATCH_FILE 32
#define RENC_BATCH_MAX 128
#define RENC_BATCH_BYTES (16u << 20)
#define RENC_RING_DEPTH 512
#define RENC_CHUNK_INFLIGHT 8
#define RENC_CHUNK_INFLIGHT_DIRECT 32 /* --direct (docs/PERFORMANCE.md) */
#define RENC_DIRECT_ALIGN 4096u

struct renc_chunk;
struct renc_blk;
struct renc_small;

struct renc_engine {
    struct renc_engine_opts opts;
    struct renc_keystore *ks;
    struct renc_transformer *t;
    const struct renc_scan *scan;
    struct renc_store *src;   /* where the blobs are read (opts.store, or one of ours) */
    struct renc_store *dst;   /* where new versions are committed: src, or the --out mirror */
    struct renc_store *own_src, *own_dst; /* the ones the engine opened itself */
    enum renc_commit_mode run_mode; /* MIRROR under --out, else REPLACE (renc_commit_mode) */
    int streamed;             /* a store on either side has no local files: every blob
                               * takes the streamed path (engine_remote.c) */
    struct renc_store_tags tags;    /* the temporaries' tags (store/store.h) */
    struct renc_item_result *results;
    struct renc_pool *pool;
    size_t small_max;      /* blobs up to this size go through batches */
    size_t batch_max;      /* items in a batch (RENC_BATCH_FILE .. RENC_BATCH_MAX) */
    /* A run shared by many workers: another worker may come to write this
     * run's staging names (a lease lapsed), so each commit checks that the
     * staging file is its own (renc_store_txn_mine); a run of one process
     * holds its trees' locks and skips the three statx calls a blob. */
    int own_tmp;
    size_t chunk_bytes;    /* the largest chunk: one largest record (sizes --memory) */

    _Atomic size_t next_item;
    _Atomic int stopping;  /* fail-fast or a signal: claim nothing new */
    _Atomic int engine_rc; /* a failure of the engine itself */
    _Atomic uint64_t done, skipped, not_renc, failed, finished, bytes_finished, in_place;
    _Atomic uint64_t bytes_partial; /* of big blobs in flight: chunks through their crypto */
    _Atomic unsigned attrs_lost;    /* RENC_ATTR_* that some new file could not keep */
    char tag[RENC_TMP_TAG_MAX + 1]; /* the temporaries' tag */
    struct timespec start;

    /* Chunks of big blobs waiting for a worker's crypto. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct renc_chunk *queue_head, *queue_tail;
    struct renc_rjob *rjobs; /* streamed blobs spread over the workers (engine_spread.c) */
    /* --barrier batch: the workers' syncfs calls on one filesystem grouped
     * (engine_batch.c): generations started and done, the last failed. */
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    int sync_fd;              /* on the grouped filesystem (kept: its errors), or -1 */
    dev_t sync_dev;
    uint64_t sync_started, sync_done, sync_failed;
    int sync_busy, sync_rc;
    unsigned coordinators; /* workers currently feeding big blobs */
    unsigned workers_running;
};

/* A big blob in flight (engine_big.c runs it, engine_chunk.c feeds its
 * chunks). */
struct renc_big {
    struct renc_engine *e;
    struct renc_blob_plan plan;
    uint64_t count;               /* records, or 0 when unknown */
    pthread_mutex_t lock;
    struct renc_chunk *done;      /* chunks whose crypto finished */
    int out_fd;
    int write_rc;
    unsigned inflight;
    int direct_in_fd;             /* --direct: the source opened O_DIRECT, or -1 */
    int direct_out;               /* out_fd is O_DIRECT (renc_big_write_direct) */
    uint64_t out_size;
    uint64_t credited;            /* bytes counted in e->bytes_partial */
    struct renc_blk **blks;       /* blocks waiting for their other part */
    size_t nblks, blks_cap;
    int read_rc;                  /* a failed read-ahead */
    /* The blob being run (renc_run_big). */
    size_t idx;
    int in_fd;                    /* the blob as read: its identity, kept open to the commit */
    struct stat st;
    uint64_t size;
    uint8_t *hdr;                 /* its header as read */
    size_t hdr_len;
    struct renc_store_txn txn;    /* its new version, once begun */
};

/* A ring op run synchronously (renc_ring_run). */
struct renc_sync_op {
    struct renc_ring_op op;
    int result;
    int finished;
};

/* ---- engine.c ----------------------------------------------------------- */

/* Records item idx's outcome and notes it in the journal (see engine.c). */
void renc_finish_plan(struct renc_engine *e, size_t idx, enum renc_item_state st, int rc,
                      const char *ref, const struct renc_blob_plan *plan);
/* ---- engine_remote.c, engine_spread.c -------------------------------------- */

/* What the records of a streamed blob go through. */
enum renc_pass { RENC_PASS_COPY, RENC_PASS_RESEAL, RENC_PASS_VERIFY };

struct renc_remote {
    struct renc_engine *e;
    size_t idx;
    const struct renc_scan_item *it;
    int fd;                /* a local source's descriptor, or -1 */
    struct stat st;        /* the source's identity as opened */
    uint64_t size;
    uint8_t *buf;          /* one chunk, from the pool */
    size_t buf_len;
    uint64_t buf_off;      /* the blob's offset buf[0] holds */
    size_t buf_have;       /* bytes of the blob in buf */
    struct renc_blob_plan plan;
    struct renc_store_txn txn;
    int begun;             /* txn staged, not yet committed or aborted */
    const char *ref;       /* the key ref a failure concerns */
};

struct renc_rjob;

/* One blob through the streamed path, from open to its journal note. */
void renc_run_remote(struct renc_engine *e, size_t idx);
/* renc_spread_stream: the records of r's blob from `from` spread over the
 * workers in chunks, when they can be cut without reading them first (a
 * copy, or records of a fixed size) and there is more than one chunk;
 * *taken 0: not spread, the caller streams them itself. */
int renc_spread_stream(struct renc_remote *r, uint64_t from, enum renc_pass pass, int *taken);
/* renc_spread_help: one chunk of a spread blob done by this worker; 0 when
 * there was none to take (or no buffer free). */
int renc_spread_help(struct renc_engine *e);
/* renc_spread_wait: 1 after a short wait while some blob is spread or
 * still being worked on (it may yet be), 0 when none is. */
int renc_spread_wait(struct renc_engine *e);

/* Waits up to 2 ms for the engine's condition (the caller holds its lock). */
void renc_engine_nap(struct renc_engine *e);
/* Runs one op through the ring and waits for it. */
int renc_ring_run(struct renc_ring *ring, struct renc_sync_op *s);
/* How plan p's blob is committed (NULL: the run's mode, before a plan). */
enum renc_commit_mode renc_commit_mode(const struct renc_engine *e, const struct renc_blob_plan *p);
/* Where item idx's new version goes, committed by mode (see engine.c). */
int renc_commit_begin(struct renc_engine *e, size_t idx, enum renc_commit_mode mode,
                      struct renc_store_txn *txn);
/* The commit point of item idx's durable staged version (see engine.c). */
int renc_commit_txn(struct renc_engine *e, size_t idx, const struct stat *st,
                    struct renc_store_txn *txn);

static inline void renc_finish(struct renc_engine *e, size_t idx, enum renc_item_state st,
                               int rc, const char *ref)
{
    renc_finish_plan(e, idx, st, rc, ref, NULL);
}

static inline int renc_should_stop(struct renc_engine *e)
{
    return atomic_load(&e->stopping) || (e->opts.stop && atomic_load(e->opts.stop));
}

/* Notes what a new file could not keep of the blob's attributes. */
static inline void renc_note_attrs(struct renc_engine *e, unsigned lost)
{
    if (lost)
        atomic_fetch_or(&e->attrs_lost, lost);
}

/* ---- engine_batch.c ----------------------------------------------------- */

struct renc_batch;
/* A worker's batch: RENC_BATCH_MAX items (renc_batch_free frees it, after
 * the closes it still has in flight through ring). */
struct renc_batch *renc_batch_new(void);
void renc_batch_free(struct renc_batch *b, struct renc_ring *ring);
/* Sets item n of a batch to scan item idx, read into buf (from the pool). */
void renc_batch_add(struct renc_batch *b, size_t n, size_t idx, uint8_t *buf, size_t buf_len);
/* Runs a batch of n small blobs, start to finish. */
void renc_run_batch(struct renc_engine *e, struct renc_ring *ring, struct renc_batch *b,
                    size_t n);
/* Closes, releases and frees what a batch's items hold (the descriptors of
 * replaced blobs through ring, in the background). */
void renc_batch_release(struct renc_engine *e, struct renc_ring *ring, struct renc_batch *b,
                        size_t n);

/* ---- engine_chunk.c ----------------------------------------------------- */

/* Takes one queued chunk and does its crypto; 0 when none was queued. */
int renc_help_one(struct renc_engine *e);
/* Rekeys (or verifies) a big blob's records into its temporary. */
int renc_big_rekey(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b, int in_fd,
                   uint64_t size);

/* ---- engine_big.c ------------------------------------------------------- */

/* Runs big blob idx from open to commit. */
void renc_run_big(struct renc_engine *e, struct renc_ring *ring, size_t idx);

#endif
