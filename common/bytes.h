/* common/bytes.h — big-endian load/store, as every RENC integer is. */
#ifndef RENC_COMMON_BYTES_H
#define RENC_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Where a stream of bytes goes (a sealer, an archive parser, a file):
 * returns 0, or a negative error that stops the producer. */
typedef int (*renc_sink_fn)(void *arg, const uint8_t *buf, size_t len);

static inline uint16_t renc_load_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t renc_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t renc_load_be64(const uint8_t *p)
{
    return (uint64_t)renc_load_be32(p) << 32 | renc_load_be32(p + 4);
}

static inline void renc_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void renc_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void renc_store_be64(uint8_t *p, uint64_t v)
{
    renc_store_be32(p, (uint32_t)(v >> 32));
    renc_store_be32(p + 4, (uint32_t)v);
}

#endif
