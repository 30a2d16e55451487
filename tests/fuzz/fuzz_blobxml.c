/* tests/fuzz/fuzz_blobxml.c — what the blob client reads from the storage
 * service and from its operator (azure/blob_xml.c, azure/blob_url.c).
 *
 * Input: byte 0 selects (mod 6) List Blobs, Get Block List, Get Blob Tags,
 * an Error, the service properties, or a URL, and (byte 0 / 6, mod 4) what
 * a listing includes (RENC_BLOB_LIST_METADATA, _TAGS); byte 1 the piece
 * size the XML is fed in (1..256); the rest is the text.
 * Checks (abort() if not):
 *   - the XML gives the same answer fed in pieces and whole;
 *   - an accepted item has a name and a quoted ETag, props and tags only
 *     when asked, its props within the service's limits and matching the
 *     item, a block an id that fits, tags only URL-encoded text;
 *   - a malformed answer is -RENC_E_STORE, nothing else;
 *   - an accepted URL names a container and describes itself, and redaction
 *     leaves no sig= value but REDACTED.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

struct tally {
    uint64_t n, bytes;
    unsigned include;
};

static void check_tags(const char *tags)
{
    for (const char *p = tags; p && *p; p++)
        check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%=&",
                     *p) != NULL);
}

/* The sizes of an item's props and tags, so pieces and whole compare. */
static uint64_t props_bytes(const struct renc_blob_item *it)
{
    const struct renc_blob_props *p = it->props;
    uint64_t n = it->tags ? strlen(it->tags) + 1 : 0, meta = 0;
    if (!p)
        return n;
    check(strcmp(p->etag, it->etag) == 0 && strcmp(p->blob_type, it->blob_type) == 0);
    check(p->size == it->size && p->tag_count <= RENC_BLOB_TAGS_MAX);
    const char *h[] = {p->content_type, p->content_encoding, p->content_language,
                       p->content_disposition, p->cache_control};
    for (size_t i = 0; i < 5; i++)
        n += h[i] ? strlen(h[i]) + 1 : 0;
    for (size_t i = 0; i < p->meta_count; i++)
        meta += strlen(p->meta_names[i]) + strlen(p->meta_values[i]);
    check(meta <= RENC_BLOB_META_MAX);
    return n + meta + p->meta_count + p->tag_count;
}

static int on_item(void *arg, const struct renc_blob_item *it)
{
    struct tally *t = arg;
    check(it->name && it->etag && it->blob_type);
    check(strlen(it->etag) < RENC_BLOB_ETAG_MAX);
    check(it->etag[0] == '\0' || (it->etag[0] == '"' && it->etag[strlen(it->etag) - 1] == '"'));
    check(!it->props || (t->include & RENC_BLOB_LIST_METADATA));
    check(!it->tags == !(t->include & RENC_BLOB_LIST_TAGS));
    check_tags(it->tags);
    t->n++;
    t->bytes += strlen(it->name) + props_bytes(it);
    return 0;
}

static int parse(enum renc_blob_xml_kind kind, const char *s, size_t n, size_t step,
                 struct renc_blob_xml_result *res, struct tally *t)
{
    struct renc_blob_xml *x;
    memset(res, 0, sizeof *res);
    res->item = on_item;
    res->arg = t;
    res->include = t->include;
    if (renc_blob_xml_new(&x, kind, res))
        return -RENC_E_NOMEM;
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += step)
        rc = renc_blob_xml_feed(x, s + off, n - off < step ? n - off : step);
    if (!rc)
        rc = renc_blob_xml_finish(x);
    renc_blob_xml_free(x);
    check(rc == 0 || rc == -RENC_E_STORE || rc == -RENC_E_NOMEM);
    return rc;
}

static void fuzz_xml(enum renc_blob_xml_kind kind, unsigned include, const char *s, size_t n,
                     size_t step)
{
    struct renc_blob_xml_result a, b;
    struct tally ta = {.include = include}, tb = {.include = include};
    int ra = parse(kind, s, n, step, &a, &ta);
    int rb = parse(kind, s, n, n ? n : 1, &b, &tb);
    check(ra == rb);
    if (ra == 0) {
        check(ta.n == tb.n && ta.bytes == tb.bytes && a.nblocks == b.nblocks);
        check(strcmp(a.code, b.code) == 0 && a.soft_delete == b.soft_delete);
        check(!a.next_marker == !b.next_marker &&
              (!a.next_marker || strcmp(a.next_marker, b.next_marker) == 0));
        for (size_t i = 0; i < a.nblocks; i++)
            check(strlen(a.blocks[i].id) < sizeof a.blocks[i].id &&
                  strcmp(a.blocks[i].id, b.blocks[i].id) == 0);
        check_tags(a.tags);
    }
    renc_blob_xml_result_cleanup(&a);
    renc_blob_xml_result_cleanup(&b);
}

static void fuzz_url(const char *s)
{
    struct renc_blob_location loc;
    char why[160], out[4096];
    if (renc_blob_parse_url(s, "UseDevelopmentStorage=true", &loc, why, sizeof why) == 0) {
        check(loc.container[0] && loc.account[0] && loc.endpoint[0]);
        check(renc_blob_location_describe(&loc, out, sizeof out) == 0 ||
              strlen(loc.endpoint) + strlen(loc.container) + strlen(loc.prefix) + 2 >= sizeof out);
        renc_blob_location_cleanup(&loc);
    } else {
        check(why[0] != '\0');
    }
    if (renc_blob_redact(s, out, sizeof out) == 0) {
        const char *q = strchr(out, '?');
        for (const char *p = q; p && (p = strstr(p, "sig=")) != NULL; p += 4)
            if (p[-1] == '?' || p[-1] == '&')
                check(strncmp(p + 4, "REDACTED", 8) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    unsigned sel = data[0] % 6;
    size_t step = (size_t)data[1] + 1;
    char *s = renc_malloc(size - 1);
    if (!s)
        return 0;
    memcpy(s, data + 2, size - 2);
    s[size - 2] = '\0';
    if (sel == 5)
        fuzz_url(s);
    else
        fuzz_xml((enum renc_blob_xml_kind)(sel + 1), (data[0] / 6u) % 4u, s, size - 2, step);
    renc_free(s);
    return 0;
}
