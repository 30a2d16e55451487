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
    RENC_RING_STATX,     /* size into op->size */
};

#define RENC_RING_DATASYNC 1u

struct renc_ring_op {
    enum renc_ring_kind kind;
    int fd;              /* READ/WRITE/FSYNC/CLOSE/STATX: the file; OPENAT etc: dirfd */
    const char *path;    /* OPENAT, RENAMEAT (from), UNLINKAT, STATX */
    const char *path2;   /* RENAMEAT (to) */
    int open_flags;      /* OPENAT */
    mode_t mode;         /* OPENAT */
    unsigned flags;      /* FSYNC: RENC_RING_DATASYNC */
    uint8_t *buf;        /* READ / WRITE */
    size_t len;
    uint64_t offset;
    uint64_t size;       /* STATX result: file size; also st_mode in `mode` */
    void (*done)(struct renc_ring_op *op, int result); /* result: >= 0 or -errno */
    void *user;          /* for the caller */
    /* Private to the ring: progress of a resubmitted short transfer. */
    size_t priv_done;
    struct renc_ring_op *priv_next;
};

struct renc_ring;

/* renc_ring_new: a ring with `depth` entries (rounded to a power of two,
 * 8..4096).  Falls back to nothing: without io_uring (old kernel, seccomp)
 * it fails with the kernel's -errno, and the caller reports it. */
int renc_ring_new(struct renc_ring **out, unsigned depth);
void renc_ring_free(struct renc_ring *ring);

/* renc_ring_submit: queues op (it must stay valid until its done callback
 * has run).  Never blocks; submission to the kernel happens in
 * renc_ring_wait or renc_ring_flush. */
void renc_ring_submit(struct renc_ring *ring, struct renc_ring_op *op);

/* renc_ring_flush: hands queued operations to the kernel. */
int renc_ring_flush(struct renc_ring *ring);

/* renc_ring_wait: submits what is queued and waits until at least
 * min_complete operations have completed (their callbacks run in this
 * thread), or none is in flight.  Returns the number completed, or -errno
 * when the ring itself fails. */
int renc_ring_wait(struct renc_ring *ring, unsigned min_complete);

/* renc_ring_in_flight: operations submitted or queued and not yet done. */
unsigned renc_ring_in_flight(const struct renc_ring *ring);

/* renc_ring_drain: waits for every operation to complete. */
int renc_ring_drain(struct renc_ring *ring);

#endif
