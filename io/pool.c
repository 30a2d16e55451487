/* io/pool.c — the bounded buffer pool.
 *
 * Invariant (under the mutex): in_use + cached <= budget, where in_use counts
 * the bytes handed out and cached the bytes of released buffers kept for
 * reuse.  So the memory the pool holds never passes its budget: a fresh
 * allocation first frees enough cached buffers of other sizes to make room.
 * Sizes are rounded up to RENC_POOL_ALIGN; a released buffer is kept on the
 * free list of its exact rounded size (a few sizes at a time: the pipeline
 * uses one or two), linked through its own first bytes.
 */
#include "io/pool.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/memcheck.h"

#define RENC_POOL_CLASSES 8

/* A cached buffer, holding no secret (wiped, or only ever ciphertext),
 * with the link in its first bytes. */
struct renc_pool_cached {
    struct renc_pool_cached *next;
};

struct renc_pool_class {
    size_t size;                   /* rounded size; meaningless while empty */
    struct renc_pool_cached *head; /* NULL: the class is free for any size */
};

struct renc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t budget;
    size_t in_use;
    size_t cached;
    size_t peak;
    int cancelled;
    struct renc_pool_class classes[RENC_POOL_CLASSES];
};

/* round_len: len rounded up to RENC_POOL_ALIGN (0 takes one unit); 0 on
 * overflow. */
static size_t round_len(size_t len)
{
    if (len == 0)
        return RENC_POOL_ALIGN;
    if (len > SIZE_MAX - (RENC_POOL_ALIGN - 1))
        return 0;
    return (len + RENC_POOL_ALIGN - 1) & ~(size_t)(RENC_POOL_ALIGN - 1);
}

/* cache_take: a cached buffer of exactly size bytes, or NULL. */
static uint8_t *cache_take(struct renc_pool *pool, size_t size)
{
    for (int i = 0; i < RENC_POOL_CLASSES; i++) {
        struct renc_pool_class *c = &pool->classes[i];
        if (c->head && c->size == size) {
            struct renc_pool_cached *b = c->head;
            c->head = b->next;
            pool->cached -= size;
            return (uint8_t *)b;
        }
    }
    return NULL;
}

/* cache_put: keeps buf (holding no secret) on the free list of its size;
 * 0 when no list is free for that size (the caller frees buf). */
static int cache_put(struct renc_pool *pool, uint8_t *buf, size_t size)
{
    struct renc_pool_class *free_class = NULL;
    for (int i = 0; i < RENC_POOL_CLASSES; i++) {
        struct renc_pool_class *c = &pool->classes[i];
        if (c->head && c->size == size) {
            free_class = c;
            break;
        }
        if (!c->head && !free_class)
            free_class = c;
    }
    if (!free_class)
        return 0;
    struct renc_pool_cached *b = (struct renc_pool_cached *)(void *)buf;
    b->next = free_class->head;
    free_class->head = b;
    free_class->size = size;
    pool->cached += size;
    /* Under memcheck a cached buffer is out of bounds but for its link, so a
     * use after release is an invalid access. */
    RENC_MEM_NOACCESS(buf + sizeof(*b), size - sizeof(*b));
    return 1;
}

/* make_room: unlinks cached buffers until in_use + cached <= budget again;
 * returns them as a list for the caller to free outside the mutex. */
static struct renc_pool_cached *make_room(struct renc_pool *pool)
{
    struct renc_pool_cached *evicted = NULL;
    for (int i = 0; i < RENC_POOL_CLASSES && pool->in_use + pool->cached > pool->budget; i++) {
        struct renc_pool_class *c = &pool->classes[i];
        while (c->head && pool->in_use + pool->cached > pool->budget) {
            struct renc_pool_cached *b = c->head;
            c->head = b->next;
            pool->cached -= c->size;
            b->next = evicted;
            evicted = b;
        }
    }
    return evicted;
}

static void free_list(struct renc_pool_cached *b)
{
    while (b) {
        struct renc_pool_cached *next = b->next;
        renc_free(b);
        b = next;
    }
}

int renc_pool_new(struct renc_pool **out, size_t budget_bytes)
{
    RENC_RETURN_IF(!out || budget_bytes == 0, -RENC_E_INVALID);
    struct renc_pool *pool = renc_calloc(1, sizeof(*pool));
    RENC_RETURN_IF(!pool, -RENC_E_NOMEM);
    int rc = pthread_mutex_init(&pool->mu, NULL);
    if (rc)
        goto out_free_pool;
    rc = pthread_cond_init(&pool->cv, NULL);
    if (rc)
        goto out_destroy_mu;
    pool->budget = budget_bytes;
    *out = pool;
    return 0;

out_destroy_mu:
    pthread_mutex_destroy(&pool->mu);
out_free_pool:
    renc_free(pool);
    return -rc;
}

void renc_pool_free(struct renc_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < RENC_POOL_CLASSES; i++)
        free_list(pool->classes[i].head);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    renc_free(pool);
}

static int pool_acquire(struct renc_pool *pool, size_t len, uint8_t **buf, int wait)
{
    RENC_RETURN_IF(!pool || !buf, -RENC_E_INVALID);
    size_t size = round_len(len);
    RENC_RETURN_IF(size == 0 || size > pool->budget, -RENC_E_TOO_BIG);

    pthread_mutex_lock(&pool->mu);
    for (;;) {
        if (pool->cancelled) {
            pthread_mutex_unlock(&pool->mu);
            return -ECANCELED;
        }
        if (pool->in_use + size <= pool->budget)
            break;
        if (!wait) {
            pthread_mutex_unlock(&pool->mu);
            return -EAGAIN;
        }
        pthread_cond_wait(&pool->cv, &pool->mu);
    }
    /* Reserve the bytes now; the allocation itself runs unlocked. */
    pool->in_use += size;
    if (pool->in_use > pool->peak)
        pool->peak = pool->in_use;
    uint8_t *p = cache_take(pool, size);
    struct renc_pool_cached *evicted = p ? NULL : make_room(pool);
    pthread_mutex_unlock(&pool->mu);

    if (p) {
        /* Wiped on release, or only ever ciphertext (a public release):
         * defined either way, for memcheck, once accessible again; clear
         * the free-list link too. */
        RENC_MEM_DEFINED(p, size);
        memset(p, 0, sizeof(struct renc_pool_cached));
    } else {
        free_list(evicted);
        p = renc_aligned_alloc(RENC_POOL_ALIGN, size);
        if (!p) {
            pthread_mutex_lock(&pool->mu);
            pool->in_use -= size;
            pthread_cond_broadcast(&pool->cv);
            pthread_mutex_unlock(&pool->mu);
            return -RENC_E_NOMEM;
        }
    }
    *buf = p;
    return 0;
}

int renc_pool_acquire(struct renc_pool *pool, size_t len, uint8_t **buf)
{
    return pool_acquire(pool, len, buf, 1);
}

int renc_pool_try_acquire(struct renc_pool *pool, size_t len, uint8_t **buf)
{
    return pool_acquire(pool, len, buf, 0);
}

static void pool_release(struct renc_pool *pool, uint8_t *buf, size_t size)
{
    pthread_mutex_lock(&pool->mu);
    pool->in_use -= size < pool->in_use ? size : pool->in_use;
    /* in_use + cached <= budget held with buf counted in in_use, so it still
     * holds with buf counted in cached instead. */
    if (!pool->cancelled && cache_put(pool, buf, size))
        buf = NULL;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    renc_free(buf);
}

void renc_pool_release(struct renc_pool *pool, uint8_t *buf, size_t len)
{
    if (!pool || !buf)
        return;
    size_t size = round_len(len);
    /* The buffer may hold plaintext: wipe all of it before anyone else can
     * get it, and before it goes back to the allocator. */
    explicit_bzero(buf, size);
    pool_release(pool, buf, size);
}

void renc_pool_release_public(struct renc_pool *pool, uint8_t *buf, size_t len)
{
    if (pool && buf)
        pool_release(pool, buf, round_len(len));
}

void renc_pool_cancel(struct renc_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->cancelled = 1;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

size_t renc_pool_budget(const struct renc_pool *pool)
{
    return pool ? pool->budget : 0;
}

size_t renc_pool_in_use(struct renc_pool *pool)
{
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    size_t n = pool->in_use;
    pthread_mutex_unlock(&pool->mu);
    return n;
}

size_t renc_pool_peak(struct renc_pool *pool)
{
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    size_t n = pool->peak;
    pthread_mutex_unlock(&pool->mu);
    return n;
}
