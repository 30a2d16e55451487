/* crypto/header.c — RENC v1 header parse and serialize (FORMAT.md §2). */
#include "crypto/header.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"

static const uint8_t renc_magic[4] = {'R', 'E', 'N', 'C'};

int renc_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        /* Reject overlong forms, surrogates and values past U+10FFFF. */
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

int renc_header_peek(uint16_t *header_len, const uint8_t *buf, size_t len)
{
    RENC_RETURN_IF(len < 4 || memcmp(buf, renc_magic, 4) != 0, -RENC_E_BAD_MAGIC);
    RENC_RETURN_IF(len < RENC_PREFIX_LEN, -RENC_E_TRUNCATED);
    RENC_RETURN_IF(buf[4] != RENC_VERSION, -RENC_E_BAD_VERSION);
    RENC_RETURN_IF(buf[5] < RENC_SEG_SHIFT_MIN || buf[5] > RENC_SEG_SHIFT_MAX,
                   -RENC_E_BAD_SEG_SHIFT);
    uint16_t hl = renc_load_be16(buf + 6);
    /* The smallest header: fixed fields, slot_count and one minimal slot
     * (alg, ref_len, wlen) and the tag. */
    RENC_RETURN_IF(hl < RENC_FIXED_LEN + 1 + 5 + RENC_HEADER_TAG_LEN, -RENC_E_BAD_HEADER_LEN);
    *header_len = hl;
    return 0;
}

/* A bounds-checked reader over the header's field area. */
struct renc_cursor {
    const uint8_t *p;
    size_t left;
};

static int renc_cursor_take(struct renc_cursor *c, const uint8_t **out, size_t n)
{
    RENC_RETURN_IF(c->left < n, -RENC_E_BAD_HEADER_LEN);
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

static int renc_cursor_u16(struct renc_cursor *c, uint16_t *v)
{
    const uint8_t *p;
    int rc = renc_cursor_take(c, &p, 2);
    if (rc == 0)
        *v = renc_load_be16(p);
    return rc;
}

static int renc_context_append(struct renc_context *ctx, const uint8_t *k, size_t klen,
                               const uint8_t *v, size_t vlen)
{
    struct renc_ctx_entry *e = renc_realloc(ctx->entries, (ctx->count + 1) * sizeof *e);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    ctx->entries = e;
    e = &ctx->entries[ctx->count];
    e->key = renc_malloc(klen + 1);
    e->value = renc_malloc(vlen + 1);
    if (!e->key || !e->value) {
        renc_free(e->key);
        renc_free(e->value);
        return -RENC_E_NOMEM;
    }
    memcpy(e->key, k, klen);
    e->key[klen] = '\0';
    e->key_len = klen;
    memcpy(e->value, v, vlen);
    e->value[vlen] = '\0';
    e->value_len = vlen;
    ctx->count++;
    return 0;
}

/* Bytewise comparison of two keys of possibly different lengths. */
static int renc_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int renc_parse_context(struct renc_context *ctx, const uint8_t *p, size_t len)
{
    struct renc_cursor c = {p, len};
    int have_env = 0;
    while (c.left > 0) {
        uint16_t klen, vlen;
        const uint8_t *k, *v;
        if (renc_cursor_u16(&c, &klen) || renc_cursor_take(&c, &k, klen) ||
            renc_cursor_u16(&c, &vlen) || renc_cursor_take(&c, &v, vlen))
            return -RENC_E_BAD_CONTEXT;
        RENC_RETURN_IF(!renc_utf8_valid(k, klen) || !renc_utf8_valid(v, vlen),
                       -RENC_E_BAD_CONTEXT);
        /* NUL inside a key or value cannot round-trip through C strings. */
        RENC_RETURN_IF(memchr(k, 0, klen) || memchr(v, 0, vlen), -RENC_E_BAD_CONTEXT);
        if (ctx->count > 0) {
            const struct renc_ctx_entry *prev = &ctx->entries[ctx->count - 1];
            RENC_RETURN_IF(renc_key_cmp(prev->key, prev->key_len, (const char *)k, klen) >= 0,
                           -RENC_E_BAD_CONTEXT);
        }
        if (klen == 3 && memcmp(k, "env", 3) == 0)
            have_env = 1;
        int rc = renc_context_append(ctx, k, klen, v, vlen);
        if (rc)
            return rc;
    }
    RENC_RETURN_IF(!have_env, -RENC_E_NO_ENV);
    return 0;
}

int renc_header_parse(struct renc_header *out, const uint8_t *buf, size_t len)
{
    struct renc_header h;
    uint16_t header_len;
    memset(&h, 0, sizeof h);
    memset(out, 0, sizeof *out);

    int rc = renc_header_peek(&header_len, buf, len);
    if (rc)
        return rc;
    RENC_RETURN_IF(len < header_len, -RENC_E_TRUNCATED);

    h.seg_shift = buf[5];
    h.header_len = header_len;
    h.plaintext_len = renc_load_be64(buf + 8);
    memcpy(h.salt, buf + 16, RENC_SALT_LEN);
    memcpy(h.nonce_prefix, buf + 48, RENC_NONCE_PREFIX_LEN);
    h.flags = buf[55];
    memcpy(h.header_tag, buf + header_len - RENC_HEADER_TAG_LEN, RENC_HEADER_TAG_LEN);

    /* Fields live in [56, header_len - 32). */
    struct renc_cursor c = {buf + 56, (size_t)header_len - 56 - RENC_HEADER_TAG_LEN};
    uint16_t ctx_len;
    const uint8_t *ctx_bytes, *p;
    if ((rc = renc_cursor_u16(&c, &ctx_len)) || (rc = renc_cursor_take(&c, &ctx_bytes, ctx_len)))
        goto fail;
    if ((rc = renc_cursor_take(&c, &p, 1)))
        goto fail;
    h.slot_count = p[0];

    /* Checks in the order FORMAT.md lists them, so the error names the first
     * rule broken: flags, then context, then slots. */
    if (h.flags & ~RENC_FLAG_COMPRESSED) {
        rc = -RENC_E_BAD_FLAGS;
        goto fail;
    }
    if ((rc = renc_parse_context(&h.ctx, ctx_bytes, ctx_len)))
        goto fail;
    if (h.slot_count < 1 || h.slot_count > RENC_MAX_SLOTS) {
        rc = -RENC_E_BAD_SLOT_COUNT;
        goto fail;
    }
    uint8_t count = h.slot_count;
    h.slot_count = 0;
    for (unsigned i = 0; i < count; i++) {
        uint16_t ref_len, wlen;
        const uint8_t *alg, *ref, *wrapped;
        if ((rc = renc_cursor_take(&c, &alg, 1)) || (rc = renc_cursor_u16(&c, &ref_len)) ||
            (rc = renc_cursor_take(&c, &ref, ref_len)) || (rc = renc_cursor_u16(&c, &wlen)) ||
            (rc = renc_cursor_take(&c, &wrapped, wlen)))
            goto fail;
        if (alg[0] < 1 || alg[0] > 4) {
            rc = -RENC_E_BAD_ALG;
            goto fail;
        }
        if (ref_len == 0 || ref_len > RENC_MAX_REF_LEN || memchr(ref, 0, ref_len) ||
            !renc_utf8_valid(ref, ref_len) || wlen == 0) {
            rc = -RENC_E_BAD_HEADER_LEN;
            goto fail;
        }
        char refbuf[RENC_MAX_REF_LEN + 1];
        memcpy(refbuf, ref, ref_len);
        refbuf[ref_len] = '\0';
        if ((rc = renc_header_add_slot(&h, alg[0], refbuf, wrapped, wlen)))
            goto fail;
    }
    /* Whatever is left before the tag is padding and must be zero. */
    for (size_t i = 0; i < c.left; i++) {
        if (c.p[i] != 0) {
            rc = -RENC_E_BAD_PADDING;
            goto fail;
        }
    }
    *out = h;
    return 0;

fail:
    renc_header_cleanup(&h);
    return rc;
}

int renc_header_verify(const uint8_t *buf, size_t header_len, const struct renc_key *k_hdr)
{
    uint8_t mac[32];
    unsigned mac_len = 0;
    RENC_RETURN_IF(header_len < RENC_FIXED_LEN + RENC_HEADER_TAG_LEN, -RENC_E_BAD_HEADER_LEN);
    if (!HMAC(EVP_sha256(), k_hdr->bytes, (int)k_hdr->len, buf,
              header_len - RENC_HEADER_TAG_LEN, mac, &mac_len))
        return -RENC_E_CRYPTO;
    int ok = renc_ct_equal(mac, buf + header_len - RENC_HEADER_TAG_LEN, RENC_HEADER_TAG_LEN);
    renc_secmem_wipe(mac, sizeof mac);
    return ok ? 0 : -RENC_E_HEADER_AUTH;
}

size_t renc_header_min_len(const struct renc_header *h)
{
    size_t n = RENC_FIXED_LEN + 1 + RENC_HEADER_TAG_LEN;
    for (size_t i = 0; i < h->ctx.count; i++)
        n += 4 + h->ctx.entries[i].key_len + h->ctx.entries[i].value_len;
    for (unsigned i = 0; i < h->slot_count; i++)
        n += 5 + h->slots[i].ref_len + h->slots[i].wrapped_len;
    return n;
}

int renc_header_serialize(uint8_t *out, size_t max_out, struct renc_header *h,
                          const struct renc_key *k_hdr)
{
    size_t ctx_len = 0;
    for (size_t i = 0; i < h->ctx.count; i++)
        ctx_len += 4 + h->ctx.entries[i].key_len + h->ctx.entries[i].value_len;
    RENC_RETURN_IF(ctx_len > UINT16_MAX, -RENC_E_TOO_BIG);
    RENC_RETURN_IF(h->slot_count < 1 || h->slot_count > RENC_MAX_SLOTS, -RENC_E_BAD_SLOT_COUNT);
    RENC_RETURN_IF(h->seg_shift < RENC_SEG_SHIFT_MIN || h->seg_shift > RENC_SEG_SHIFT_MAX,
                   -RENC_E_BAD_SEG_SHIFT);
    RENC_RETURN_IF(h->flags & ~RENC_FLAG_COMPRESSED, -RENC_E_BAD_FLAGS);
    RENC_RETURN_IF(!renc_context_get(&h->ctx, "env"), -RENC_E_NO_ENV);
    RENC_RETURN_IF(h->header_len < renc_header_min_len(h), -RENC_E_BAD_HEADER_LEN);
    RENC_RETURN_IF(max_out < h->header_len, -RENC_E_TOO_BIG);

    uint8_t *p = out;
    memcpy(p, renc_magic, 4);
    p[4] = RENC_VERSION;
    p[5] = h->seg_shift;
    renc_store_be16(p + 6, h->header_len);
    renc_store_be64(p + 8, h->plaintext_len);
    memcpy(p + 16, h->salt, RENC_SALT_LEN);
    memcpy(p + 48, h->nonce_prefix, RENC_NONCE_PREFIX_LEN);
    p[55] = h->flags;
    renc_store_be16(p + 56, (uint16_t)ctx_len);
    p += RENC_FIXED_LEN;
    for (size_t i = 0; i < h->ctx.count; i++) {
        const struct renc_ctx_entry *e = &h->ctx.entries[i];
        renc_store_be16(p, (uint16_t)e->key_len);
        memcpy(p + 2, e->key, e->key_len);
        p += 2 + e->key_len;
        renc_store_be16(p, (uint16_t)e->value_len);
        memcpy(p + 2, e->value, e->value_len);
        p += 2 + e->value_len;
    }
    *p++ = h->slot_count;
    for (unsigned i = 0; i < h->slot_count; i++) {
        const struct renc_slot *s = &h->slots[i];
        *p++ = s->alg;
        renc_store_be16(p, (uint16_t)s->ref_len);
        memcpy(p + 2, s->ref, s->ref_len);
        p += 2 + s->ref_len;
        renc_store_be16(p, (uint16_t)s->wrapped_len);
        memcpy(p + 2, s->wrapped, s->wrapped_len);
        p += 2 + s->wrapped_len;
    }
    uint8_t *tag = out + h->header_len - RENC_HEADER_TAG_LEN;
    memset(p, 0, (size_t)(tag - p));

    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), k_hdr->bytes, (int)k_hdr->len, out,
              h->header_len - RENC_HEADER_TAG_LEN, tag, &mac_len))
        return -RENC_E_CRYPTO;
    memcpy(h->header_tag, tag, RENC_HEADER_TAG_LEN);
    return 0;
}

void renc_context_cleanup(struct renc_context *ctx)
{
    for (size_t i = 0; i < ctx->count; i++) {
        renc_free(ctx->entries[i].key);
        renc_free(ctx->entries[i].value);
    }
    renc_free(ctx->entries);
    ctx->entries = NULL;
    ctx->count = 0;
}

void renc_header_cleanup(struct renc_header *h)
{
    renc_context_cleanup(&h->ctx);
    for (unsigned i = 0; i < RENC_MAX_SLOTS; i++) {
        renc_free(h->slots[i].ref);
        renc_free(h->slots[i].wrapped);
    }
    memset(h, 0, sizeof *h);
}

int renc_header_add_slot(struct renc_header *h, uint8_t alg, const char *ref,
                         const uint8_t *wrapped, size_t wrapped_len)
{
    RENC_RETURN_IF(h->slot_count >= RENC_MAX_SLOTS, -RENC_E_BAD_SLOT_COUNT);
    size_t ref_len = strlen(ref);
    RENC_RETURN_IF(ref_len == 0 || ref_len > RENC_MAX_REF_LEN, -RENC_E_TOO_BIG);
    RENC_RETURN_IF(wrapped_len == 0 || wrapped_len > UINT16_MAX, -RENC_E_TOO_BIG);
    struct renc_slot *s = &h->slots[h->slot_count];
    s->ref = renc_strdup(ref);
    s->wrapped = renc_malloc(wrapped_len);
    if (!s->ref || !s->wrapped) {
        renc_free(s->ref);
        renc_free(s->wrapped);
        memset(s, 0, sizeof *s);
        return -RENC_E_NOMEM;
    }
    memcpy(s->wrapped, wrapped, wrapped_len);
    s->alg = alg;
    s->ref_len = ref_len;
    s->wrapped_len = wrapped_len;
    h->slot_count++;
    return 0;
}

void renc_header_remove_slot(struct renc_header *h, unsigned i)
{
    if (i >= h->slot_count)
        return;
    renc_free(h->slots[i].ref);
    renc_free(h->slots[i].wrapped);
    memmove(&h->slots[i], &h->slots[i + 1], (size_t)(h->slot_count - i - 1) * sizeof h->slots[0]);
    h->slot_count--;
    memset(&h->slots[h->slot_count], 0, sizeof h->slots[0]);
}

int renc_header_copy(struct renc_header *dst, const struct renc_header *src)
{
    memset(dst, 0, sizeof *dst);
    dst->seg_shift = src->seg_shift;
    dst->header_len = src->header_len;
    dst->plaintext_len = src->plaintext_len;
    memcpy(dst->salt, src->salt, sizeof dst->salt);
    memcpy(dst->nonce_prefix, src->nonce_prefix, sizeof dst->nonce_prefix);
    dst->flags = src->flags;
    memcpy(dst->header_tag, src->header_tag, sizeof dst->header_tag);
    int rc = 0;
    for (size_t i = 0; i < src->ctx.count && rc == 0; i++) {
        const struct renc_ctx_entry *e = &src->ctx.entries[i];
        rc = renc_context_append(&dst->ctx, (const uint8_t *)e->key, e->key_len,
                                 (const uint8_t *)e->value, e->value_len);
    }
    for (unsigned i = 0; i < src->slot_count && rc == 0; i++)
        rc = renc_header_add_slot(dst, src->slots[i].alg, src->slots[i].ref,
                                  src->slots[i].wrapped, src->slots[i].wrapped_len);
    if (rc)
        renc_header_cleanup(dst);
    return rc;
}

int renc_context_set(struct renc_context *ctx, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value);
    RENC_RETURN_IF(klen > UINT16_MAX || vlen > UINT16_MAX, -RENC_E_TOO_BIG);
    RENC_RETURN_IF(!renc_utf8_valid((const uint8_t *)key, klen) ||
                   !renc_utf8_valid((const uint8_t *)value, vlen), -RENC_E_BAD_CONTEXT);
    size_t pos = 0;
    while (pos < ctx->count) {
        int c = renc_key_cmp(ctx->entries[pos].key, ctx->entries[pos].key_len, key, klen);
        if (c == 0) {
            char *v = renc_strdup(value);
            RENC_RETURN_IF(!v, -RENC_E_NOMEM);
            renc_free(ctx->entries[pos].value);
            ctx->entries[pos].value = v;
            ctx->entries[pos].value_len = vlen;
            return 0;
        }
        if (c > 0)
            break;
        pos++;
    }
    int rc = renc_context_append(ctx, (const uint8_t *)key, klen, (const uint8_t *)value, vlen);
    if (rc)
        return rc;
    /* Move the new last entry into its sorted place. */
    struct renc_ctx_entry e = ctx->entries[ctx->count - 1];
    memmove(&ctx->entries[pos + 1], &ctx->entries[pos], (ctx->count - 1 - pos) * sizeof e);
    ctx->entries[pos] = e;
    return 0;
}

const char *renc_context_get(const struct renc_context *ctx, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < ctx->count; i++)
        if (ctx->entries[i].key_len == klen && memcmp(ctx->entries[i].key, key, klen) == 0)
            return ctx->entries[i].value;
    return NULL;
}

uint64_t renc_header_seg_count(const struct renc_header *h)
{
    if (h->plaintext_len == RENC_PLAINTEXT_UNKNOWN)
        return 0;
    uint64_t s = renc_header_seg_size(h);
    uint64_t n = h->plaintext_len / s + (h->plaintext_len % s != 0);
    return n ? n : 1;
}
