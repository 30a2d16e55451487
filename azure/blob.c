/* azure/blob.c — the operations of azure/blob.h, each one request through
 * renc_blob_call (blob_req.c), its XML answers read by blob_xml.c as they
 * stream (../shared/PROTOCOLS.md 3.3). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

/* ---- the connection ---------------------------------------------------------- */

int renc_blob_conn_new(struct renc_blob_conn **out, struct renc_blob_account *a)
{
    *out = NULL;
    struct renc_blob_conn *c = renc_calloc(1, sizeof *c);
    RENC_RETURN_IF(!c, -RENC_E_NOMEM);
    c->a = a;
    struct renc_http_opts o = {.ca_file = a->ca_file, .timeout_ms = a->timeout_ms};
    int rc = renc_http_new(&c->http, &o);
    if (rc) {
        renc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void renc_blob_conn_free(struct renc_blob_conn *c)
{
    if (!c)
        return;
    renc_http_free(c->http);
    renc_free(c);
}

const char *renc_blob_last_error(const struct renc_blob_conn *c, long *status)
{
    if (status)
        *status = c->error_status;
    return c->error_code;
}

uint64_t renc_blob_conn_bytes_sent(const struct renc_blob_conn *c)
{
    return c->bytes_sent;
}

/* ---- XML answers ---------------------------------------------------------------- */

/* A streamed XML answer: the parser starts over with each send; once
 * items have gone to the caller a second send would repeat them, so a
 * failure after that is final. */
struct renc_blob_xmlsink {
    enum renc_blob_xml_kind kind;
    struct renc_blob_xml_result *res;
    struct renc_blob_xml *xml;
    int rc, started, restarted;
};

static void renc_blob_xml_start(void *arg)
{
    struct renc_blob_xmlsink *s = arg;
    if (s->started && s->res->items)
        s->restarted = 1;
    s->started = 1;
    renc_blob_xml_free(s->xml);
    s->xml = NULL;
    int (*item)(void *, const struct renc_blob_item *) = s->res->item;
    void *iarg = s->res->arg;
    unsigned include = s->res->include;
    renc_blob_xml_result_cleanup(s->res); /* what a broken-off send had read */
    s->res->item = item;
    s->res->arg = iarg;
    s->res->include = include;
    if (!s->restarted)
        s->rc = renc_blob_xml_new(&s->xml, s->kind, s->res);
}

static int renc_blob_xml_data(void *arg, long status, const void *p, size_t len)
{
    (void)status;
    struct renc_blob_xmlsink *s = arg;
    RENC_RETURN_IF(s->restarted, -RENC_E_STORE_NETWORK);
    RENC_RETURN_IF(s->rc, s->rc);
    return renc_blob_xml_feed(s->xml, p, len);
}

/* req with its answer read as XML of kind into res. */
static int renc_blob_do_xml(struct renc_blob_conn *c, struct renc_blob_req *req,
                            enum renc_blob_xml_kind kind, struct renc_blob_xml_result *res)
{
    struct renc_blob_xmlsink s = {.kind = kind, .res = res};
    struct renc_blob_answer ans;
    req->data = renc_blob_xml_data;
    req->start = renc_blob_xml_start;
    req->arg = &s;
    int rc = renc_blob_call_ok(c, req, &ans);
    if (!rc && s.restarted)
        rc = -RENC_E_STORE_NETWORK;
    if (!rc)
        rc = s.rc ? s.rc : renc_blob_xml_finish(s.xml);
    renc_blob_xml_free(s.xml);
    return rc;
}

/* ---- listing ------------------------------------------------------------------- */

int renc_blob_list_page(struct renc_blob_conn *c, const char *container, const char *prefix,
                        const char *marker, unsigned maxresults, unsigned include,
                        int (*item)(void *arg, const struct renc_blob_item *it), void *arg,
                        char *next_marker, size_t next_max)
{
    static const char *const what[] = {NULL, "metadata", "tags", "metadata,tags"};
    char maxbuf[16];
    struct renc_blob_req req = {.method = "GET", .container = container};
    renc_blob_req_query(&req, "restype", "container");
    renc_blob_req_query(&req, "comp", "list");
    if (prefix && prefix[0])
        renc_blob_req_query(&req, "prefix", prefix);
    if (marker && marker[0])
        renc_blob_req_query(&req, "marker", marker);
    if (maxresults) {
        snprintf(maxbuf, sizeof maxbuf, "%u", maxresults < 5000 ? maxresults : 5000);
        renc_blob_req_query(&req, "maxresults", maxbuf);
    }
    include &= RENC_BLOB_LIST_METADATA | RENC_BLOB_LIST_TAGS;
    if (include)
        renc_blob_req_query(&req, "include", what[include]);
    struct renc_blob_xml_result res = {.item = item, .arg = arg, .include = include};
    int rc = renc_blob_do_xml(c, &req, RENC_BLOB_XML_LIST, &res);
    const char *nm = res.next_marker ? res.next_marker : "";
    if (!rc && strlen(nm) >= next_max)
        rc = -RENC_E_TOO_BIG;
    if (!rc)
        memcpy(next_marker, nm, strlen(nm) + 1);
    renc_blob_xml_result_cleanup(&res);
    return rc;
}

/* ---- reading --------------------------------------------------------------------- */

void renc_blob_props_cleanup(struct renc_blob_props *p)
{
    if (!p)
        return;
    renc_free(p->content_type);
    renc_free(p->content_encoding);
    renc_free(p->content_language);
    renc_free(p->content_disposition);
    renc_free(p->cache_control);
    for (size_t i = 0; i < p->meta_count; i++) {
        renc_free(p->meta_names[i]);
        renc_free(p->meta_values[i]);
    }
    renc_free(p->meta_names);
    renc_free(p->meta_values);
    memset(p, 0, sizeof *p);
}

int renc_blob_head(struct renc_blob_conn *c, const char *container, const char *name,
                   const char *if_match, struct renc_blob_props *p)
{
    struct renc_blob_props got = {0};
    struct renc_blob_req req = {
        .method = "HEAD", .container = container, .name = name, .if_match = if_match,
        .props = &got};
    struct renc_blob_answer ans;
    int rc = renc_blob_call_ok(c, &req, &ans);
    if (rc) {
        renc_blob_props_cleanup(&got);
        return rc;
    }
    snprintf(got.etag, sizeof got.etag, "%s", ans.etag);
    snprintf(got.blob_type, sizeof got.blob_type, "%s", ans.blob_type);
    *p = got;
    return 0;
}

/* A ranged GET's body into the caller's buffer. */
struct renc_blob_range {
    uint8_t *buf;
    size_t len, got;
    uint64_t skip, skipped; /* a 200 (whole blob) starts at 0, not at off */
};

static void renc_blob_range_start(void *arg)
{
    struct renc_blob_range *r = arg;
    r->got = 0;
    r->skipped = 0;
}

static int renc_blob_range_data(void *arg, long status, const void *p, size_t len)
{
    struct renc_blob_range *r = arg;
    const uint8_t *d = p;
    if (status == 200 && r->skipped < r->skip) {
        size_t n = r->skip - r->skipped < len ? (size_t)(r->skip - r->skipped) : len;
        r->skipped += n;
        d += n;
        len -= n;
    }
    if (status == 200 && len > r->len - r->got)
        len = r->len - r->got; /* the whole blob came: the rest is not asked for */
    RENC_RETURN_IF(len > r->len - r->got, -RENC_E_STORE);
    memcpy(r->buf + r->got, d, len);
    r->got += len;
    return 0;
}

int renc_blob_get_range(struct renc_blob_conn *c, const char *container, const char *name,
                        const char *if_match, uint64_t off, void *buf, size_t len, size_t *got)
{
    *got = 0;
    RENC_RETURN_IF(len == 0, 0);
    RENC_RETURN_IF(off > UINT64_MAX - len, -RENC_E_INVALID);
    char range[64];
    snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
    struct renc_blob_range r = {.buf = buf, .len = len, .skip = off};
    struct renc_blob_req req = {.method = "GET", .container = container, .name = name,
                                .if_match = if_match, .data = renc_blob_range_data,
                                .start = renc_blob_range_start, .arg = &r};
    renc_blob_req_header(&req, "x-ms-range", range);
    struct renc_blob_answer ans;
    int rc = renc_blob_call(c, &req, &ans);
    RENC_RETURN_IF(rc, rc);
    if (ans.status == 416)
        return 0; /* at or past the end */
    RENC_RETURN_IF(ans.status != 200 && ans.status != 206, renc_blob_map(c, &ans));
    *got = r.got;
    return 0;
}

int renc_blob_get_tags(struct renc_blob_conn *c, const char *container, const char *name,
                       const char *if_match, char **out)
{
    *out = NULL;
    struct renc_blob_req req = {
        .method = "GET", .container = container, .name = name, .if_match = if_match};
    renc_blob_req_query(&req, "comp", "tags");
    struct renc_blob_xml_result res = {0};
    int rc = renc_blob_do_xml(c, &req, RENC_BLOB_XML_TAGS, &res);
    if (!rc) {
        *out = res.tags ? res.tags : renc_strdup("");
        res.tags = NULL;
        if (!*out)
            rc = -RENC_E_NOMEM;
    }
    renc_blob_xml_result_cleanup(&res);
    return rc;
}

int renc_blob_block_list(struct renc_blob_conn *c, const char *container, const char *name,
                         const char *if_match, struct renc_blob_block **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct renc_blob_req req = {
        .method = "GET", .container = container, .name = name, .if_match = if_match};
    renc_blob_req_query(&req, "comp", "blocklist");
    renc_blob_req_query(&req, "blocklisttype", "committed");
    struct renc_blob_xml_result res = {0};
    int rc = renc_blob_do_xml(c, &req, RENC_BLOB_XML_BLOCKS, &res);
    if (!rc) {
        *out = res.blocks;
        *n = res.nblocks;
        res.blocks = NULL;
    }
    renc_blob_xml_result_cleanup(&res);
    return rc;
}

/* ---- what the account keeps besides the current versions ------------------------ */

/* Counts, over every page under prefix, what include= brings in. */
static int renc_blob_count(struct renc_blob_conn *c, const char *container, const char *prefix,
                           const char *include, int64_t *versions, int64_t *deleted)
{
    char *marker = renc_strdup("");
    RENC_RETURN_IF(!marker, -RENC_E_NOMEM);
    uint64_t v = 0, d = 0;
    int rc = 0;
    do {
        struct renc_blob_req req = {.method = "GET", .container = container};
        renc_blob_req_query(&req, "restype", "container");
        renc_blob_req_query(&req, "comp", "list");
        renc_blob_req_query(&req, "include", include);
        if (prefix && prefix[0])
            renc_blob_req_query(&req, "prefix", prefix);
        if (marker[0])
            renc_blob_req_query(&req, "marker", marker);
        struct renc_blob_xml_result res = {0};
        rc = renc_blob_do_xml(c, &req, RENC_BLOB_XML_LIST, &res);
        v += res.old_versions;
        d += res.deleted;
        renc_free(marker);
        marker = rc ? NULL : res.next_marker;
        res.next_marker = NULL;
        renc_blob_xml_result_cleanup(&res);
    } while (!rc && marker && marker[0]);
    renc_free(marker);
    if (!rc) {
        *versions = (int64_t)v;
        *deleted = (int64_t)d;
    }
    return rc;
}

int renc_blob_retention(struct renc_blob_conn *c, const char *container, const char *prefix,
                        struct renc_blob_retention *r)
{
    *r = (struct renc_blob_retention){-1, -1, -1};
    struct renc_blob_req req = {.method = "GET"};
    renc_blob_req_query(&req, "restype", "service");
    renc_blob_req_query(&req, "comp", "properties");
    struct renc_blob_xml_result res = {0};
    int rc = renc_blob_do_xml(c, &req, RENC_BLOB_XML_SERVICE, &res);
    if (!rc)
        r->soft_delete = res.soft_delete;
    renc_blob_xml_result_cleanup(&res);
    if (rc && rc != -RENC_E_STORE_AUTH && rc != -RENC_E_STORE)
        return rc; /* a SAS for one container may not read the service's settings */
    int64_t v, d;
    rc = renc_blob_count(c, container, prefix, "versions,deleted", &v, &d);
    if (rc == -RENC_E_STORE) { /* a service without versions (Azurite) */
        rc = renc_blob_count(c, container, prefix, "deleted", &v, &d);
        v = -1;
    }
    if (rc == -RENC_E_STORE)
        return 0; /* not told */
    RENC_RETURN_IF(rc, rc);
    r->old_versions = v;
    r->deleted = d;
    return 0;
}
