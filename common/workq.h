/* common/workq.h — many independent items, each worked on by one of a few
 * threads, everything around that work kept in order on the caller's
 * thread: the environment-data commands (put, copy, copy-check, restore,
 * backup create) seal or open blobs in parallel while their staged write,
 * their messages and their totals stay what one thread going through the
 * list gives.
 *
 * For item i, in index order on the calling thread: prep (make the item
 * ready: open its files, take a staged temporary); then, on a worker
 * thread: work (the costly part: crypto, reading, writing); then, again
 * on the calling thread and in index order: done (given work's result:
 * count, report, hand the written file on).  At most `window` items are
 * between their prep and their done at once, each holding one of window
 * slots (slot numbers 0..window-1, a slot free again once its item's done
 * returned), so what an item holds is bounded by window times one item's.
 *
 * A nonzero return from prep or done stops the run: no item is prepped
 * after it; the items already prepped finish their work and still get
 * their done, with `stopped` set (to release what they hold; what done
 * returns then is ignored).  With threads 1 (or window 1) nothing runs on
 * another thread: prep, work, done, one item after the other.
 */
#ifndef RENC_COMMON_WORKQ_H
#define RENC_COMMON_WORKQ_H

#include <stddef.h>

struct renc_workq;

struct renc_workq_ops {
    /* Calling thread, index order.  Nonzero: stop; i is not worked on and
     * gets no done (prep undoes what it began). */
    int (*prep)(void *arg, size_t i, unsigned slot);
    /* A worker thread (any order among items).  Its result goes to done. */
    int (*work)(void *arg, size_t i, unsigned slot);
    /* Calling thread, index order, after i's work.  Nonzero: stop. */
    int (*done)(void *arg, size_t i, unsigned slot, int rc, int stopped);
};

/* renc_workq_run: runs items 0..count-1 through ops with up to threads
 * workers and window items in flight (both at least 1; window at least
 * threads is useful).  Returns 0 when every item's done returned 0, the
 * or the first nonzero prep or done returned.  Threads that cannot be
 * started are done without (none at all: everything on the calling
 * thread, as with threads 1). */
int renc_workq_run(size_t count, unsigned threads, unsigned window,
                   const struct renc_workq_ops *ops, void *arg);

/* The same, item by item, for a caller whose items arrive as it goes (a
 * backup's entries as its archive is read).  renc_workq_new: a queue with
 * up to threads workers and window slots (ops->prep unused); -RENC_E_NOMEM.
 * renc_workq_slot: the slot of the next item (its index: the number
 * submitted before it), once one is free (done is called meanwhile for the
 * oldest items as they finish): 0, or the stop value (nothing more may be
 * submitted).  renc_workq_submit: the next item, made ready in slot, to a
 * worker.  renc_workq_finish: waits for every item submitted and calls its
 * done (with stopped set when stop, or a done, stopped the queue), frees q
 * (NULL: nothing), and returns the stop value: the first nonzero done, else
 * stop. */
int renc_workq_new(struct renc_workq **out, unsigned threads, unsigned window,
                   const struct renc_workq_ops *ops, void *arg);
int renc_workq_slot(struct renc_workq *q, unsigned *slot);
void renc_workq_submit(struct renc_workq *q, unsigned slot);
int renc_workq_finish(struct renc_workq *q, int stop);

#endif
