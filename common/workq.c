/* common/workq.c — see workq.h. */
#include "common/workq.h"

#include <pthread.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_WORKQ_MAX_THREADS 1024

struct renc_workq {
    pthread_mutex_t lock;
    pthread_cond_t work_cv; /* an item is queued, or quit */
    pthread_cond_t done_cv; /* an item's work finished */
    const struct renc_workq_ops *ops;
    void *arg;
    unsigned window, started;
    pthread_t *tids;        /* none started: everything on the calling thread */
    size_t next, first;     /* items submitted; items done */
    int stop;               /* the first nonzero done (or the caller's stop) */
    int *rc;                /* per slot: its work's result */
    unsigned char *finished;
    unsigned *fifo;         /* queued slots, oldest first */
    unsigned head, queued;
    int quit;
    int inited;             /* the lock and conditions exist */
};

static void *renc_workq_worker(void *p)
{
    struct renc_workq *q = p;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->queued && !q->quit)
            pthread_cond_wait(&q->work_cv, &q->lock);
        if (!q->queued)
            break; /* quit, and nothing left */
        unsigned slot = q->fifo[q->head];
        q->head = (q->head + 1) % q->window;
        q->queued--;
        /* Items hold slots in turn: the item in slot s is the only one
         * between first and next whose index is s modulo window. */
        size_t i = q->first + (slot + q->window - q->first % q->window) % q->window;
        pthread_mutex_unlock(&q->lock);
        int rc = q->ops->work(q->arg, i, slot);
        pthread_mutex_lock(&q->lock);
        q->rc[slot] = rc;
        q->finished[slot] = 1;
        pthread_cond_broadcast(&q->done_cv);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int renc_workq_new(struct renc_workq **out, unsigned threads, unsigned window,
                   const struct renc_workq_ops *ops, void *arg)
{
    struct renc_workq *q = renc_calloc(1, sizeof *q);
    RENC_RETURN_IF(!q, -RENC_E_NOMEM);
    if (window < 1)
        window = 1;
    if (threads > RENC_WORKQ_MAX_THREADS)
        threads = RENC_WORKQ_MAX_THREADS;
    if (threads > window)
        threads = window;
    *q = (struct renc_workq){.ops = ops, .arg = arg, .window = window};
    q->rc = renc_calloc(window, sizeof *q->rc);
    q->finished = renc_calloc(window, 1);
    q->fifo = renc_calloc(window, sizeof *q->fifo);
    q->tids = threads > 1 ? renc_calloc(threads, sizeof *q->tids) : NULL;
    if (!q->rc || !q->finished || !q->fifo || (threads > 1 && !q->tids)) {
        renc_workq_finish(q, 0);
        return -RENC_E_NOMEM;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work_cv, NULL);
    pthread_cond_init(&q->done_cv, NULL);
    q->inited = 1;
    while (threads > 1 && q->started < threads &&
           pthread_create(&q->tids[q->started], NULL, renc_workq_worker, q) == 0)
        q->started++;
    *out = q;
    return 0;
}

/* The oldest item's done, once its work finished. */
static void renc_workq_done_oldest(struct renc_workq *q)
{
    unsigned slot = (unsigned)(q->first % q->window);
    pthread_mutex_lock(&q->lock);
    while (!q->finished[slot])
        pthread_cond_wait(&q->done_cv, &q->lock);
    int rc = q->rc[slot];
    pthread_mutex_unlock(&q->lock);
    int r = q->ops->done(q->arg, q->first, slot, rc, q->stop != 0);
    pthread_mutex_lock(&q->lock);
    q->first++;
    pthread_mutex_unlock(&q->lock);
    if (!q->stop)
        q->stop = r;
}

int renc_workq_slot(struct renc_workq *q, unsigned *slot)
{
    while (!q->stop && q->next - q->first >= q->window)
        renc_workq_done_oldest(q);
    if (q->stop)
        return q->stop;
    *slot = (unsigned)(q->next % q->window);
    return 0;
}

void renc_workq_submit(struct renc_workq *q, unsigned slot)
{
    size_t i = q->next;
    if (q->started == 0) { /* one thread: the work and its done now */
        q->next++;
        int r = q->ops->done(q->arg, i, slot, q->ops->work(q->arg, i, slot), 0);
        q->first++;
        if (!q->stop)
            q->stop = r;
        return;
    }
    pthread_mutex_lock(&q->lock);
    q->next++;
    q->finished[slot] = 0;
    q->fifo[(q->head + q->queued) % q->window] = slot;
    q->queued++;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->lock);
}

int renc_workq_finish(struct renc_workq *q, int stop)
{
    if (!q)
        return stop;
    if (!q->stop)
        q->stop = stop;
    while (q->rc && q->first < q->next)
        renc_workq_done_oldest(q);
    if (q->started) {
        pthread_mutex_lock(&q->lock);
        q->quit = 1;
        pthread_cond_broadcast(&q->work_cv);
        pthread_mutex_unlock(&q->lock);
        for (unsigned t = 0; t < q->started; t++)
            pthread_join(q->tids[t], NULL);
    }
    int out = q->stop;
    if (q->inited) {
        pthread_cond_destroy(&q->done_cv);
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->lock);
    }
    renc_free(q->tids);
    renc_free(q->fifo);
    renc_free(q->finished);
    renc_free(q->rc);
    renc_free(q);
    return out;
}

int renc_workq_run(size_t count, unsigned threads, unsigned window,
                   const struct renc_workq_ops *ops, void *arg)
{
    struct renc_workq *q = NULL;
    int stop = 0;
    unsigned slot = 0;
    if (renc_workq_new(&q, threads, window, ops, arg) != 0) {
        /* No memory for the queue: one item after the other, all here. */
        for (size_t i = 0; stop == 0 && i < count; i++)
            if ((stop = ops->prep(arg, i, 0)) == 0)
                stop = ops->done(arg, i, 0, ops->work(arg, i, 0), 0);
        return stop;
    }
    for (size_t i = 0; stop == 0 && i < count; i++) {
        if ((stop = renc_workq_slot(q, &slot)) == 0 && (stop = ops->prep(arg, i, slot)) == 0)
            renc_workq_submit(q, slot);
    }
    return renc_workq_finish(q, stop);
}
