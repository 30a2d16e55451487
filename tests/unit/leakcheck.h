/* tests/unit/leakcheck.h — the fixtures the unit tests share: secure memory
 * set up once per group, and every test giving back all it allocated (the
 * allocation wrapper counts what is outstanding). */
#ifndef RENC_TEST_LEAKCHECK_H
#define RENC_TEST_LEAKCHECK_H

#include <stdint.h>

#include "common/alloc.h"
#include "crypto/secmem.h"

static int64_t live_before;

/* A test file with a group fixture of its own defines RENC_TEST_OWN_GROUP. */
#ifndef RENC_TEST_OWN_GROUP
__attribute__((unused)) static int setup_group(void **state)
{
    (void)state;
    return renc_secmem_init() == 0 ? 0 : -1;
}
#endif

__attribute__((unused)) static int setup(void **state)
{
    (void)state;
    live_before = renc_alloc_outstanding();
    return 0;
}

__attribute__((unused)) static int teardown(void **state)
{
    (void)state;
    renc_alloc_fail_at(0);
    return renc_alloc_outstanding() == live_before ? 0 : -1;
}

#endif
