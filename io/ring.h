/* io/ring.h — io_uring, through liburing, for the run pipeline.
 *
 * One struct renc_ring per thread (a ring is not shared).  Operations are
 * submitted with a caller-owned struct renc_ring_op and complete through
 * renc_ring_wait, which calls each op's `done` callback once with the final
 * result.  The ring itself handles the three cases liburing's io_uring-cp
 * example handles: -EAGAIN is retried, a short read or write is resubmitted
 * for the rest (a read stops short only at end of file), and any other
 * failure is passed up as -errno.  At most `depth` operations are in flight;
 * submitting more queues them in the ring's own backlog (no failure).
 */
#ifndef RENC_IO_RING_H
#define RENC_IO_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum renc_ring_kind {
    RENC_RING_OPENAT = 1,
    RENC_RING_CLOSE,
    RENC_RING_READ,      /* pread at offset; result = bytes read (< len only at EOF) */
    RENC_RING_WRITE,     /* pwrite at offset; result = len */
    RENC_RING_FSYNC,     /* fsync, or fdatasync with flags RENC_RING_DATASYNC */
    RENC_RING_RENAMEAT,
    RENC_RING_UNLINKAT,
    RENC_RING_STATX,     /* size into op->size; path NULL or "": fd itself */
};

#define RENC_RING_DATASYNC 1u
/* Any kind: run by io_uring's worker threads, never inline (IOSQE_ASYNC):
 * for ops that may block for long and are many, such as closes that free
 * a removed file's blocks (each a synchronous discard on some
 * filesystems), so that they wait side by side rather than in turn. */
#define RENC_RING_ASYNC 2u

struct renc_ring_op {
    enum renc_ring_kind kind;
    int fd;              /* READ/WRITE/FSYNC/CLOSE/STATX: the file; OPENAT etc: dirfd */
    const char *path;    /* OPENAT, RENAMEAT (from), UNLINKAT, STATX */
    const char *path2;   /* RENAMEAT (to) */
    int open_flags;      /* OPENAT */
    mode_t mode;         /* OPENAT */
    unsigned flags;      /* RENC_RING_ASYNC; FSYNC: RENC_RING_DATASYNC */
    uint8_t *buf;        /* READ / WRITE */
    size_t len;
    uint64_t offset;
    uint64_t size;       /* STATX result: file size; also st_mode in `mode` */
    void (*done)(struct renc_ring_op *op, int result); /* result: >= 0 or -errno */
    void *user;          /* for the caller */
    /* Private to the ring: progress of a resubmitted short transfer (for
     * STATX: which of the ring's statx buffers the op holds), the result
     * waiting for its callback, and the link of the ring's queues. */
    size_t priv_done;
    int priv_result;
    struct renc_ring_op *priv_next;
};

struct renc_ring;

/* renc_ring_new: a ring with `depth` entries (rounded to a power of two,
 * 8..4096).  Falls back to nothing: without io_uring (old kernel, seccomp)
 * it fails with the kernel's -errno, and the caller reports it;
 * -RENC_E_NOMEM when its own allocation fails.  *out is set only on success. */
int renc_ring_new(struct renc_ring **out, unsigned depth);
/* renc_ring_free: call it after renc_ring_drain.  Operations still in the
 * kernel are waited for (it must stop using their buffers), but no callback
 * runs any more.  NULL does nothing. */
void renc_ring_free(struct renc_ring *ring);

/* renc_ring_submit: queues op (it must stay valid until its done callback
 * has run; the callback may free it or submit it again).  Never blocks;
 * submission to the kernel happens in renc_ring_wait or renc_ring_flush.
 * READ and WRITE take len <= INT_MAX (else the result is -EINVAL). */
void renc_ring_submit(struct renc_ring *ring, struct renc_ring_op *op);

/* renc_ring_flush: hands queued operations to the kernel. */
int renc_ring_flush(struct renc_ring *ring);

/* renc_ring_wait: submits what is queued and waits until at least
 * min_complete operations have completed (their callbacks run in this
 * thread), or none is in flight; min_complete 0 reaps what has completed
 * without blocking.  Callbacks may submit and flush, but not wait or drain
 * (-EDEADLK).  Returns the number completed, or -errno when the ring itself
 * fails. */
int renc_ring_wait(struct renc_ring *ring, unsigned min_complete);

/* renc_ring_in_flight: operations submitted or queued and not yet done. */
unsigned renc_ring_in_flight(const struct renc_ring *ring);

/* renc_ring_drain: waits for every operation to complete. */
int renc_ring_drain(struct renc_ring *ring);

#ifdef RENC_TEST_HOOKS
/* renc_ring_fake_eagain (tests only): the next n READ or WRITE completions
 * are taken as -EAGAIN, whatever the kernel did, so the retry path runs
 * (the kernel rarely says -EAGAIN where it can poll instead). */
void renc_ring_fake_eagain(struct renc_ring *ring, unsigned n);
#endif

#endif
