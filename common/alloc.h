/* common/alloc.h — the one allocation wrapper.
 *
 * Every heap allocation of the project goes through these, so a test can make
 * the n-th allocation fail and count what is still outstanding (curl's
 * "torture" tests).  Secrets do not come from here: see crypto/secmem.h.
 */
#ifndef RENC_COMMON_ALLOC_H
#define RENC_COMMON_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *renc_malloc(size_t size);
void *renc_calloc(size_t n, size_t size);
void *renc_realloc(void *p, size_t size);
/* renc_aligned_alloc: size rounded up to a multiple of align (a power of 2). */
void *renc_aligned_alloc(size_t align, size_t size);
void renc_free(void *p);
char *renc_strdup(const char *s);
char *renc_strndup(const char *s, size_t n);

/* Test seam: fail the n-th allocation from now (1 = the next one); 0 turns it
 * off.  Returns the number of allocations made since the last call to
 * renc_alloc_fail_at().  Without RENC_TEST_HOOKS these do nothing. */
void renc_alloc_fail_at(uint64_t n);
uint64_t renc_alloc_count(void);
/* Allocations not yet freed (tracked only with RENC_TEST_HOOKS). */
int64_t renc_alloc_outstanding(void);

#endif
