/* common/workq.c — see workq.h. */
#include "common/workq.h"

#include <pthread.h>
#include <stdint.h>

#include "common/alloc.h"

#define RENC_WORKQ_MAX_THREADS 1024

struct renc_workq {
    pthread_mutex_t lock;
    pthread_cond_t work_cv; /* an item is queued, or quit */
    pthread_cond_t done_cv; /* an item's work finished */
    const struct renc_workq_ops *ops;
    void *arg;
    unsigned window;
    size_t *item;           /* per slot: the item it holds */
    int *rc;                /* per slot: its work's result */
    unsigned char *finished;
    unsigned *fifo;         /* queued slots, oldest first */
    unsigned head, queued;
    int quit;
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
        size_t i = q->item[slot];
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

/* One thread: prep, work, done, item after item. */
static int renc_workq_inline(size_t count, const struct renc_workq_ops *ops, void *arg)
{
    for (size_t i = 0; i < count; i++) {
        int stop = ops->prep(arg, i, 0);
        if (stop)
            return stop;
        if ((stop = ops->done(arg, i, 0, ops->work(arg, i, 0), 0)))
            return stop;
    }
    return 0;
}

static void renc_workq_queue(struct renc_workq *q, size_t i, unsigned slot)
{
    pthread_mutex_lock(&q->lock);
    q->item[slot] = i;
    q->finished[slot] = 0;
    q->fifo[(q->head + q->queued) % q->window] = slot;
    q->queued++;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->lock);
}

static int renc_workq_wait(struct renc_workq *q, unsigned slot)
{
    pthread_mutex_lock(&q->lock);
    while (!q->finished[slot])
        pthread_cond_wait(&q->done_cv, &q->lock);
    int rc = q->rc[slot];
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/* The calling thread's loop: preps while a slot is free, else takes the
 * oldest item's result (items are prepped, and done, in index order, so
 * item i holds slot i % window). */
static int renc_workq_drive(struct renc_workq *q, size_t count)
{
    size_t next = 0, first = 0;
    int stop = 0;
    while (first < next || (!stop && next < count)) {
        if (!stop && next < count && next - first < q->window) {
            unsigned slot = (unsigned)(next % q->window);
            if ((stop = q->ops->prep(q->arg, next, slot)) == 0)
                renc_workq_queue(q, next++, slot);
            continue;
        }
        unsigned slot = (unsigned)(first % q->window);
        int rc = renc_workq_wait(q, slot);
        int r = q->ops->done(q->arg, first++, slot, rc, stop != 0);
        if (!stop)
            stop = r;
    }
    return stop;
}

int renc_workq_run(size_t count, unsigned threads, unsigned window,
                   const struct renc_workq_ops *ops, void *arg)
{
    if (threads > RENC_WORKQ_MAX_THREADS)
        threads = RENC_WORKQ_MAX_THREADS;
    if (threads > window)
        threads = window;
    if (threads <= 1 || count <= 1)
        return renc_workq_inline(count, ops, arg);
    struct renc_workq q = {.ops = ops, .arg = arg, .window = window};
    pthread_t *tids = renc_calloc(threads, sizeof *tids);
    q.item = renc_calloc(window, sizeof *q.item);
    q.rc = renc_calloc(window, sizeof *q.rc);
    q.finished = renc_calloc(window, 1);
    q.fifo = renc_calloc(window, sizeof *q.fifo);
    unsigned started = 0;
    int ok = tids && q.item && q.rc && q.finished && q.fifo;
    if (ok) {
        pthread_mutex_init(&q.lock, NULL);
        pthread_cond_init(&q.work_cv, NULL);
        pthread_cond_init(&q.done_cv, NULL);
        while (started < threads &&
               pthread_create(&tids[started], NULL, renc_workq_worker, &q) == 0)
            started++;
    }
    int stop;
    if (started == 0) {
        stop = renc_workq_inline(count, ops, arg); /* no thread (or no memory for one) */
    } else {
        stop = renc_workq_drive(&q, count);
        pthread_mutex_lock(&q.lock);
        q.quit = 1;
        pthread_cond_broadcast(&q.work_cv);
        pthread_mutex_unlock(&q.lock);
        for (unsigned t = 0; t < started; t++)
            pthread_join(tids[t], NULL);
    }
    if (ok) {
        pthread_cond_destroy(&q.done_cv);
        pthread_cond_destroy(&q.work_cv);
        pthread_mutex_destroy(&q.lock);
    }
    renc_free(q.fifo);
    renc_free(q.finished);
    renc_free(q.rc);
    renc_free(q.item);
    renc_free(tids);
    return stop;
}
