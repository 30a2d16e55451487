#include "common/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef RENC_TEST_HOOKS
static _Atomic uint64_t renc_alloc_calls;
static _Atomic uint64_t renc_alloc_fail_n;
static _Atomic int64_t renc_alloc_live;

/* True when this allocation is the one chosen to fail. */
static int renc_alloc_should_fail(void)
{
    uint64_t n = atomic_fetch_add(&renc_alloc_calls, 1) + 1;
    uint64_t fail = atomic_load(&renc_alloc_fail_n);
    return fail != 0 && n == fail;
}
#define RENC_ALLOC_FAIL() renc_alloc_should_fail()
#define RENC_ALLOC_LIVE(d) atomic_fetch_add(&renc_alloc_live, (d))
#else
#define RENC_ALLOC_FAIL() 0
#define RENC_ALLOC_LIVE(d) ((void)0)
#endif

void *renc_malloc(size_t size)
{
    if (RENC_ALLOC_FAIL())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        RENC_ALLOC_LIVE(1);
    return p;
}

void *renc_calloc(size_t n, size_t size)
{
    if (RENC_ALLOC_FAIL())
        return NULL;
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        RENC_ALLOC_LIVE(1);
    return p;
}

void *renc_realloc(void *p, size_t size)
{
    if (RENC_ALLOC_FAIL())
        return NULL;
    void *q = realloc(p, size ? size : 1);
    if (q && !p)
        RENC_ALLOC_LIVE(1);
    return q;
}

void *renc_aligned_alloc(size_t align, size_t size)
{
    if (RENC_ALLOC_FAIL())
        return NULL;
    size_t rounded = (size + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, rounded ? rounded : align);
    if (p)
        RENC_ALLOC_LIVE(1);
    return p;
}

void renc_free(void *p)
{
    if (!p)
        return;
    RENC_ALLOC_LIVE(-1);
    free(p);
}

char *renc_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = renc_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *renc_strdup(const char *s)
{
    return renc_strndup(s, strlen(s));
}

#ifdef RENC_TEST_HOOKS
void renc_alloc_fail_at(uint64_t n)
{
    atomic_store(&renc_alloc_calls, 0);
    atomic_store(&renc_alloc_fail_n, n);
}
uint64_t renc_alloc_count(void) { return atomic_load(&renc_alloc_calls); }
int64_t renc_alloc_outstanding(void) { return atomic_load(&renc_alloc_live); }
#else
void renc_alloc_fail_at(uint64_t n) { (void)n; }
uint64_t renc_alloc_count(void) { return 0; }
int64_t renc_alloc_outstanding(void) { return 0; }
#endif
