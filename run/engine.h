/* run/engine.h — the run pipeline (DESIGN.md §3).
 *
 *   scan --> [read: io_uring] --> [open old / seal new: N workers]
 *        --> [write: io_uring] --> [commit: the store's, by the blob's commit mode]
 *
 * Every worker thread owns one io_uring ring.  Small blobs are handled in
 * batches: opened, read and closed through the ring with the whole batch in
 * flight, transformed in memory, written to temporaries and made durable with
 * the whole batch in flight, renamed, and their directories made durable
 * once for the batch (one durability barrier for many files); under
 * --barrier batch (the default where syncfs reports errors), one syncfs
 * (grouped across the workers) stands for the files' fsyncs and another
 * for the directories'.  A big blob is
 * cut into record-aligned chunks; its reading worker hands each chunk's
 * crypto to whichever worker is free, and writes the results at their
 * offsets through its ring.  Buffers come from a pool bounded by --memory,
 * so memory stays bounded whatever the corpus.  Each blob is wholly old or
 * wholly new at every instant: the store's commit (a checked rename, for a
 * local tree) is the commit point; how each blob is committed (replaced,
 * its header rewritten in place, or mirrored to --out) is decided in one
 * place, renc_commit_mode (engine.c).
 */
#ifndef RENC_RUN_ENGINE_H
#define RENC_RUN_ENGINE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keystore.h"
#include "state/journal.h"
#include "store/scan.h"
#include "store/store.h"
#include "blob/transform.h"

enum renc_engine_op {
    RENC_ENGINE_RUN = 0,
    RENC_ENGINE_VERIFY,
};

/* How a batch of small blobs is made durable (docs/JOURNAL.md). */
enum renc_barrier {
    RENC_BARRIER_DEFAULT = 0, /* batch where syncfs reports errors (Linux >= 5.8), else file */
    RENC_BARRIER_FILE,        /* an fsync per new file, all in flight; each directory once */
    RENC_BARRIER_BATCH,       /* one syncfs for the batch's new files, one for its renames */
};

/* How a rekey writes big blobs' new records (docs/CLI.md, --write-mode). */
enum renc_write_mode {
    RENC_WRITE_DEFAULT = 0,   /* direct with --direct, else buffered (renc_big_write_direct) */
    RENC_WRITE_BUFFERED,      /* through the page cache, writeback started chunk by chunk */
    RENC_WRITE_DIRECT,        /* O_DIRECT from the chunk buffers, many writes in flight */
};

struct renc_engine_opts {
    enum renc_engine_op op;
    unsigned threads;          /* >= 1 */
    size_t memory_bytes;       /* buffer pool budget */
    int fail_fast;
    int dry_run;
    const char *out_dir;       /* --out: where the mirror is (a store is opened over it);
                                * NULL: in place */
    /* The store the scan's items are in (store/store.h; borrowed).  NULL:
     * the engine opens one by the items' names. */
    struct renc_store *store;
    /* The --out store when the caller opened it (blob storage, with its
     * credentials; borrowed).  NULL: opened over out_dir. */
    struct renc_store *out_store;
    enum renc_aead_backend backend;
    atomic_int *stop;          /* set by a signal handler: finish in-flight blobs and stop
                                * (atomic: workers read it while any thread may run the
                                * handler; a lock-free atomic is async-signal-safe) */
    int direct;                /* big blobs: O_DIRECT reads */
    enum renc_write_mode write_mode; /* big blobs' rekeyed records */
    int keep_cache;            /* leave what was read and written in the page cache (else
                                * each blob's pages are dropped once it is done) */
    enum renc_barrier barrier; /* small blobs' durability barriers */
    int identity;              /* benchmarks only: the same file work, no crypto (bytes rewritten as read) */
    /* The journal (may be NULL): each finished blob is noted in it once its
     * outcome is durable; rows[i] is scan item i's row. */
    struct renc_journal *journal;
    const int64_t *rows;
    /* Rewrap rewrites only the header, in place, when the new one fits in
     * the old header_len (needs the journal: the old and new header go into
     * it before the overwrite). */
    int header_in_place;
    /* Temporaries are ".NAME.renc-tmp.<tmp_tag>" (io/tmpname.h): the same
     * name for a blob in every attempt of a run, so a resume (clean_tmp)
     * removes the one a crash left before writing it again.  NULL: a random
     * tag (no journal records it: a crash's leftovers are not swept). */
    const char *tmp_tag;
    int clean_tmp;
    /* The tag of an earlier run forgotten by --restart: its temporaries
     * are removed too (NULL: none). */
    const char *stale_tag;
};

enum renc_item_state {
    RENC_ITEM_PENDING = 0,
    RENC_ITEM_DONE,            /* transformed (or verified) */
    RENC_ITEM_SKIPPED,         /* already under the target */
    RENC_ITEM_NOT_RENC,        /* not a RENC file: left alone */
    RENC_ITEM_FAILED,
};

struct renc_item_result {
    uint8_t state;
    int rc;
    char *ref;                 /* the key ref a failure concerns, or NULL */
};

struct renc_engine_progress {
    uint64_t items_total, items_finished;
    uint64_t items_started;    /* taken by a worker: started - finished are in flight */
    uint64_t done, skipped, not_renc, failed;
    uint64_t in_place;         /* of done: headers rewritten in place */
    uint64_t bytes_total, bytes_finished;
    double elapsed_s;
};

struct renc_engine;

/* renc_engine_min_memory: the least --memory that holds one chunk (the
 * largest record); renc_engine_new fails with -RENC_E_TOO_BIG below it. */
size_t renc_engine_min_memory(void);

/* renc_engine_new: t is the run's transformer (NULL for verify). */
int renc_engine_new(struct renc_engine **out, const struct renc_engine_opts *opts,
                    struct renc_keystore *ks, struct renc_transformer *t,
                    const struct renc_scan *scan);
void renc_engine_free(struct renc_engine *e);

/* renc_engine_run: runs the workers to the end; calls progress (may be NULL)
 * from the calling thread about every interval_ms.  Returns 0 when the
 * engine itself worked (blobs may still have failed: see the results), or a
 * negative error that stopped it. */
int renc_engine_run(struct renc_engine *e, unsigned interval_ms,
                    void (*progress)(const struct renc_engine_progress *p, void *arg), void *arg);

void renc_engine_snapshot(struct renc_engine *e, struct renc_engine_progress *p);
const struct renc_item_result *renc_engine_results(const struct renc_engine *e);
size_t renc_engine_peak_memory(struct renc_engine *e);

/* renc_engine_key_wide: 1 when a blob's error will fail every blob after it
 * (key access withdrawn, key vault unreachable or refusing tokens): the
 * engine then claims nothing new and the run stops early. */
int renc_engine_key_wide(int rc);

/* renc_engine_run_wide: renc_engine_key_wide, or a destination that can
 * take no more (no space, quota, read-only filesystem): the run stops. */
int renc_engine_run_wide(int rc);

/* renc_engine_attrs_lost: RENC_ATTR_* (io/replace.h) that some new file
 * could not keep of its blob's (owner and group, as a non-root user). */
unsigned renc_engine_attrs_lost(struct renc_engine *e);

#endif
