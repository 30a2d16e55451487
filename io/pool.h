/* io/pool.h — the bounded buffer pool that gives the pipeline backpressure.
 *
 * The pool hands out buffers (aligned for O_DIRECT) while the bytes handed
 * out stay within its budget; an acquire that would pass the budget waits
 * until enough is released.  Memory stays bounded whatever the number or size
 * of blobs.  Thread-safe.
 */
#ifndef RENC_IO_POOL_H
#define RENC_IO_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RENC_POOL_ALIGN 4096

struct renc_pool;

/* renc_pool_new: a pool of budget_bytes in total. */
int renc_pool_new(struct renc_pool **out, size_t budget_bytes);
void renc_pool_free(struct renc_pool *pool);

/* renc_pool_acquire: a buffer of at least len bytes (rounded up to
 * RENC_POOL_ALIGN, aligned to it), waiting while the pool is exhausted.
 * -RENC_E_TOO_BIG when len exceeds the whole budget; -RENC_E_NOMEM when the
 * allocation itself fails; -ECANCELED once renc_pool_cancel was called. */
int renc_pool_acquire(struct renc_pool *pool, size_t len, uint8_t **buf);

/* renc_pool_try_acquire: the same without waiting: -EAGAIN when it would. */
int renc_pool_try_acquire(struct renc_pool *pool, size_t len, uint8_t **buf);

/* renc_pool_release: returns a buffer of the len it was acquired with.  The
 * contents are wiped (they may be plaintext) before reuse. */
void renc_pool_release(struct renc_pool *pool, uint8_t *buf, size_t len);

/* renc_pool_release_public: renc_pool_release for a buffer that never held
 * a secret (only ciphertext, as a verify's chunks): not wiped, which saves
 * writing all of it once more. */
void renc_pool_release_public(struct renc_pool *pool, uint8_t *buf, size_t len);

/* renc_pool_cancel: wakes every waiter with -ECANCELED (a stopping run). */
void renc_pool_cancel(struct renc_pool *pool);

size_t renc_pool_budget(const struct renc_pool *pool);
size_t renc_pool_in_use(struct renc_pool *pool);
size_t renc_pool_peak(struct renc_pool *pool);

#endif
