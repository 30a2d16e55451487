/* io/ring.c — io_uring through liburing: one ring per thread.
 *
 * An op goes through three queues:
 *   backlog  submitted by the caller, waiting for a slot (FIFO);
 *   slot     an SQE prepared or in the kernel; at most `depth` ops hold one,
 *            so the SQ (depth entries) always has room for their SQEs and
 *            the CQ (2 * depth) never overflows;
 *   ready    finished, result in priv_result, callback not yet run.
 * An op keeps its slot across resubmissions (-EAGAIN, short transfers), so a
 * resubmission never needs a free slot.  Callbacks run only from
 * renc_ring_wait, after the CQ has been advanced, so a callback may submit
 * (or free) ops freely.
 */
#include "io/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <liburing.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/memcheck.h"
#include "io/file.h"

#define RENC_RING_MIN_DEPTH 8u
#define RENC_RING_MAX_DEPTH 4096u

struct renc_ring_queue {
    struct renc_ring_op *head, *tail;
    unsigned n;
};

struct renc_ring {
    struct io_uring uring;
    unsigned depth;
    unsigned in_slots;             /* ops holding a slot */
    struct renc_ring_queue backlog;
    struct renc_ring_queue ready;
    int in_wait;                   /* renc_ring_wait is running callbacks */
    /* One statx buffer per slot: a STATX op in a slot holds the buffer whose
     * index is in its priv_done (it has no transfer progress to keep). */
    struct statx *stx;
    unsigned *stx_free;            /* stack of free buffer indices */
    unsigned stx_nfree;
    unsigned fake_eagain;          /* test hook: see renc_ring_fake_eagain */
};

static void queue_push(struct renc_ring_queue *q, struct renc_ring_op *op)
{
    op->priv_next = NULL;
    if (q->tail)
        q->tail->priv_next = op;
    else
        q->head = op;
    q->tail = op;
    q->n++;
}

static struct renc_ring_op *queue_pop(struct renc_ring_queue *q)
{
    struct renc_ring_op *op = q->head;
    if (!op)
        return NULL;
    q->head = op->priv_next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    op->priv_next = NULL;
    return op;
}

/* finish: the op is done with result; its callback runs from the ready
 * queue. */
static void finish(struct renc_ring *ring, struct renc_ring_op *op, int result)
{
    op->priv_result = result;
    queue_push(&ring->ready, op);
}

static void complete(struct renc_ring *ring, struct renc_ring_op *op, int result);

static struct io_uring_sqe *get_sqe(struct renc_ring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->uring);
    if (!sqe) {
        /* Not reached while slots <= SQ entries; submitting frees the SQ. */
        io_uring_submit(&ring->uring);
        sqe = io_uring_get_sqe(&ring->uring);
    }
    return sqe;
}

/* prep: an SQE for what is left of op.  The op already holds a slot. */
static void prep(struct renc_ring *ring, struct renc_ring_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    if (!sqe) {
        complete(ring, op, -EBUSY);
        return;
    }
    switch (op->kind) {
    case RENC_RING_OPENAT:
        io_uring_prep_openat(sqe, op->fd, op->path, op->open_flags, op->mode);
        break;
    case RENC_RING_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case RENC_RING_READ:
        /* Memcheck cannot see the kernel's side of an SQE (common/memcheck.h):
         * the buffer must be there for all of the read... */
        RENC_MEM_CHECK_ADDRESSABLE(op->buf + op->priv_done, op->len - op->priv_done);
        io_uring_prep_read(sqe, op->fd, op->buf + op->priv_done,
                           (unsigned)(op->len - op->priv_done), op->offset + op->priv_done);
        break;
    case RENC_RING_WRITE:
        /* ...and every byte written must be initialised. */
        RENC_MEM_CHECK_DEFINED(op->buf + op->priv_done, op->len - op->priv_done);
        io_uring_prep_write(sqe, op->fd, op->buf + op->priv_done,
                            (unsigned)(op->len - op->priv_done), op->offset + op->priv_done);
        break;
    case RENC_RING_FSYNC:
        io_uring_prep_fsync(sqe, op->fd,
                            (op->flags & RENC_RING_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
        break;
    case RENC_RING_RENAMEAT:
        io_uring_prep_renameat(sqe, op->fd, op->path, op->fd, op->path2, 0);
        break;
    case RENC_RING_UNLINKAT:
        io_uring_prep_unlinkat(sqe, op->fd, op->path, 0);
        break;
    case RENC_RING_STATX: {
        int empty = !op->path || !op->path[0];
        io_uring_prep_statx(sqe, op->fd, empty ? "" : op->path,
                            AT_STATX_SYNC_AS_STAT | (empty ? AT_EMPTY_PATH : 0),
                            STATX_TYPE | STATX_MODE | STATX_SIZE, &ring->stx[op->priv_done]);
        break;
    }
    }
    if (op->flags & RENC_RING_ASYNC)
        io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
    io_uring_sqe_set_data(sqe, op);
}

/* start: gives op a slot and its first SQE, or finishes it at once (an
 * injected fault, a bad argument). */
static void start(struct renc_ring *ring, struct renc_ring_op *op)
{
    int rc = 0;
    op->priv_done = 0;
    switch (op->kind) {
    case RENC_RING_WRITE:
        rc = renc_fault_check("write");
        /* fall through */
    case RENC_RING_READ:
        if (rc == 0 && op->len > INT_MAX)
            rc = -EINVAL;
        break;
    case RENC_RING_FSYNC:
        rc = renc_fault_check("fsync");
        break;
    case RENC_RING_STATX:
        op->priv_done = ring->stx_free[--ring->stx_nfree];
        break;
    case RENC_RING_OPENAT:
    case RENC_RING_CLOSE:
    case RENC_RING_RENAMEAT:
    case RENC_RING_UNLINKAT:
        break;
    default:
        rc = -EINVAL;
        break;
    }
    if (rc) {
        finish(ring, op, rc);
        return;
    }
    ring->in_slots++;
    prep(ring, op);
}

/* fill: moves backlog ops into free slots, in submission order. */
static void fill(struct renc_ring *ring)
{
    while (ring->in_slots < ring->depth && ring->backlog.n)
        start(ring, queue_pop(&ring->backlog));
}

/* complete: op leaves its slot with result. */
static void complete(struct renc_ring *ring, struct renc_ring_op *op, int result)
{
    if (op->kind == RENC_RING_STATX) {
        const struct statx *stx = &ring->stx[op->priv_done];
        if (result == 0) {
            RENC_MEM_DEFINED(stx, sizeof(*stx)); /* the kernel filled it */
            op->size = stx->stx_size;
            op->mode = stx->stx_mode;
        }
        ring->stx_free[ring->stx_nfree++] = (unsigned)op->priv_done;
    }
    ring->in_slots--;
    finish(ring, op, result);
}

/* on_cqe: the three cases of io_uring-cp: retry -EAGAIN, resubmit the rest
 * of a short transfer, pass any other result up. */
static void on_cqe(struct renc_ring *ring, struct renc_ring_op *op, int res)
{
#ifdef RENC_TEST_HOOKS
    /* Redoing a READ or WRITE from its last progress is harmless. */
    if (ring->fake_eagain && res >= 0 &&
        (op->kind == RENC_RING_READ || op->kind == RENC_RING_WRITE)) {
        ring->fake_eagain--;
        res = -EAGAIN;
    }
#endif
    /* A close is never retried: the descriptor may already be gone. */
    if (res == -EAGAIN || (res == -EINTR && op->kind != RENC_RING_CLOSE)) {
        prep(ring, op);
        return;
    }
    if (res < 0 || (op->kind != RENC_RING_READ && op->kind != RENC_RING_WRITE)) {
        complete(ring, op, res);
        return;
    }
    /* The kernel filled res bytes of a read's buffer (memcheck cannot know). */
    if (op->kind == RENC_RING_READ && res > 0)
        RENC_MEM_DEFINED(op->buf + op->priv_done, (size_t)res);
    size_t left = op->len - op->priv_done;
    if (res == 0 && left > 0) {
        /* End of file for a read; a write that makes no progress would
         * loop for ever. */
        complete(ring, op, op->kind == RENC_RING_READ ? (int)op->priv_done : -EIO);
        return;
    }
    op->priv_done += (size_t)res;
    if (op->priv_done < op->len) {
        prep(ring, op);
        return;
    }
    complete(ring, op, (int)op->priv_done);
}

/* reap: handles every CQE posted so far; returns how many. */
static unsigned reap(struct renc_ring *ring)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring->uring, head, cqe) {
        struct renc_ring_op *op = io_uring_cqe_get_data(cqe);
        n++;
        if (op)
            on_cqe(ring, op, cqe->res);
    }
    io_uring_cq_advance(&ring->uring, n);
    return n;
}

/* run_ready: runs the callbacks of finished ops; returns how many.  An op
 * leaves the queue before its callback, which may free or resubmit it. */
static unsigned run_ready(struct renc_ring *ring)
{
    unsigned n = 0;
    struct renc_ring_op *op;
    while ((op = queue_pop(&ring->ready)) != NULL) {
        n++;
        if (op->done)
            op->done(op, op->priv_result);
    }
    return n;
}

/* Transient refusals of io_uring_enter: the ops stay queued in the SQ and
 * the next call submits them. */
static int submit_rc(int rc)
{
    return rc == -EINTR || rc == -EAGAIN || rc == -EBUSY ? 0 : rc;
}

int renc_ring_new(struct renc_ring **out, unsigned depth)
{
    RENC_RETURN_IF(!out, -EINVAL);
    unsigned d = RENC_RING_MIN_DEPTH;
    while (d < depth && d < RENC_RING_MAX_DEPTH)
        d <<= 1;

    int rc = -RENC_E_NOMEM;
    struct renc_ring *ring = renc_calloc(1, sizeof(*ring));
    if (!ring)
        return rc;
    ring->depth = d;
    ring->stx = renc_calloc(d, sizeof(*ring->stx));
    if (!ring->stx)
        goto out_free_ring;
    ring->stx_free = renc_calloc(d, sizeof(*ring->stx_free));
    if (!ring->stx_free)
        goto out_free_stx;
    for (unsigned i = 0; i < d; i++)
        ring->stx_free[i] = i;
    ring->stx_nfree = d;

    /* SUBMIT_ALL (5.18) keeps submitting past an SQE that fails to start;
     * older kernels refuse the flag, and then the ring works without it.
     * No SQPOLL (a kernel thread per ring) and no COOP_TASKRUN (completions
     * would wait for our next syscall). */
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_SUBMIT_ALL;
    rc = io_uring_queue_init_params(d, &ring->uring, &params);
    if (rc == -EINVAL) {
        memset(&params, 0, sizeof(params));
        rc = io_uring_queue_init_params(d, &ring->uring, &params);
    }
    if (rc < 0)
        goto out_free_stx_free;
    *out = ring;
    return 0;

out_free_stx_free:
    renc_free(ring->stx_free);
out_free_stx:
    renc_free(ring->stx);
out_free_ring:
    renc_free(ring);
    return rc;
}

void renc_ring_free(struct renc_ring *ring)
{
    if (!ring)
        return;
    /* Every op in a slot has exactly one SQE or CQE outstanding (nothing is
     * resubmitted here).  Cancel them all (one that never ends, such as a
     * read of an idle pipe, would hang us), then wait for each CQE so the
     * kernel is done with their buffers before the caller frees those.  A
     * kernel without CANCEL_ANY (before 5.19) fails the cancel; then only
     * the wait remains. */
    if (ring->in_slots) {
        io_uring_submit(&ring->uring);
        struct io_uring_sqe *sqe = get_sqe(ring);
        if (sqe) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data(sqe, NULL);
        }
    }
    while (ring->in_slots) {
        int rc = io_uring_submit_and_wait(&ring->uring, 1);
        if (rc < 0 && submit_rc(rc) != 0)
            break;
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring->uring, head, cqe) {
            n++;
            if (io_uring_cqe_get_data(cqe))
                ring->in_slots--;
        }
        io_uring_cq_advance(&ring->uring, n);
    }
    io_uring_queue_exit(&ring->uring);
    renc_free(ring->stx_free);
    renc_free(ring->stx);
    renc_free(ring);
}

void renc_ring_submit(struct renc_ring *ring, struct renc_ring_op *op)
{
    if (!ring || !op)
        return;
    queue_push(&ring->backlog, op);
}

int renc_ring_flush(struct renc_ring *ring)
{
    RENC_RETURN_IF(!ring, -EINVAL);
    fill(ring);
    int rc = io_uring_submit(&ring->uring);
    return rc < 0 ? submit_rc(rc) : 0;
}

int renc_ring_wait(struct renc_ring *ring, unsigned min_complete)
{
    RENC_RETURN_IF(!ring, -EINVAL);
    RENC_RETURN_IF(ring->in_wait, -EDEADLK);
    ring->in_wait = 1;
    unsigned completed = 0;
    int reaped = 0;
    int rc;
    for (;;) {
        fill(ring);
        if (ring->ready.n) {
            completed += run_ready(ring);
            continue; /* the callbacks may have submitted more */
        }
        int enough = min_complete ? completed >= min_complete : reaped;
        if (enough || ring->in_slots == 0) {
            rc = submit_rc(io_uring_submit(&ring->uring));
            break;
        }
        /* Never wait for more CQEs than ops in slots: a resubmission posts
         * a CQE without completing, so completions are counted above. */
        unsigned want = 0;
        if (min_complete) {
            want = min_complete - completed;
            if (want > ring->in_slots)
                want = ring->in_slots;
        }
        rc = io_uring_submit_and_wait(&ring->uring, want);
        if (rc < 0 && submit_rc(rc) < 0)
            break;
        reap(ring);
        reaped = 1;
    }
    ring->in_wait = 0;
    return rc < 0 ? rc : (int)completed;
}

unsigned renc_ring_in_flight(const struct renc_ring *ring)
{
    return ring ? ring->in_slots + ring->backlog.n + ring->ready.n : 0;
}

#ifdef RENC_TEST_HOOKS
void renc_ring_fake_eagain(struct renc_ring *ring, unsigned n)
{
    if (ring)
        ring->fake_eagain = n;
}
#endif

int renc_ring_drain(struct renc_ring *ring)
{
    RENC_RETURN_IF(!ring, -EINVAL);
    RENC_RETURN_IF(ring->in_wait, -EDEADLK);
    while (renc_ring_in_flight(ring)) {
        int rc = renc_ring_wait(ring, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}
