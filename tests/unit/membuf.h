/* tests/unit/membuf.h — a growing byte buffer that takes what a writer or
 * reader hands on (a renc_sink_fn), for the unit tests and the fuzz
 * targets alike: it needs no cmocka. */
#ifndef RENC_TEST_MEMBUF_H
#define RENC_TEST_MEMBUF_H

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

/* Zero-initialised it is empty; free with membuf_free. */
struct membuf {
    uint8_t *p;
    size_t len, cap;
};

/* membuf_sink: appends buf[len] to the membuf arg; -RENC_E_NOMEM (the
 * bytes so far kept) when it cannot grow. */
__attribute__((unused)) static int membuf_sink(void *arg, const uint8_t *buf, size_t len)
{
    struct membuf *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 64;
        while (cap < m->len + len)
            cap *= 2;
        uint8_t *p = renc_realloc(m->p, cap);
        if (!p)
            return -RENC_E_NOMEM;
        m->p = p;
        m->cap = cap;
    }
    if (len)
        memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

/* membuf_free: frees the bytes and leaves m empty, ready for reuse. */
__attribute__((unused)) static void membuf_free(struct membuf *m)
{
    renc_free(m->p);
    memset(m, 0, sizeof *m);
}

#endif
