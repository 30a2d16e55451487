/* azure/blob_write.c — the writing operations of azure/blob.h (Put Block,
 * Put Block List, Put Blob, Delete, Create Container) and what the account
 * keeps besides the current versions (../shared/PROTOCOLS.md 3.3). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

int renc_blob_block_id(const char *tag, uint64_t index, char out[96])
{
    size_t n = strlen(tag);
    RENC_RETURN_IF(n > 32, -RENC_E_INVALID);
    /* 32 bytes of tag ('.'-padded) and 16 hex digits: 48 bytes, so every
     * id encodes to the same 64 characters, as one blob's ids must. */
    unsigned char raw[49];
    memset(raw, '.', 32);
    memcpy(raw, tag, n);
    snprintf((char *)raw + 32, 17, "%016" PRIx64, index);
    EVP_EncodeBlock((unsigned char *)out, raw, 48);
    return 0;
}

int renc_blob_put_block(struct renc_blob_conn *c, const char *container, const char *name,
                        const char *id_b64, const void *data, size_t len)
{
    struct renc_blob_req req = {.method = "PUT", .container = container, .name = name,
                                .body = data, .body_len = len, .has_body = 1};
    renc_blob_req_query(&req, "comp", "block");
    renc_blob_req_query(&req, "blockid", id_b64);
    struct renc_blob_answer ans;
    return renc_blob_call_ok(c, &req, &ans);
}

/* The x-ms-* headers that set props on the new version; the "x-ms-meta-"
 * names are made in *names (freed by the caller). */
static int renc_blob_props_headers(struct renc_blob_req *req, const struct renc_blob_props *p,
                                   char ***names)
{
    *names = NULL;
    if (!p)
        return 0;
    static const char *const hname[] = {"x-ms-blob-content-type", "x-ms-blob-content-encoding",
                                        "x-ms-blob-content-language",
                                        "x-ms-blob-content-disposition",
                                        "x-ms-blob-cache-control"};
    const char *hval[] = {p->content_type, p->content_encoding, p->content_language,
                          p->content_disposition, p->cache_control};
    int rc = 0;
    for (size_t i = 0; i < 5 && !rc; i++)
        if (hval[i])
            rc = renc_blob_req_header(req, hname[i], hval[i]);
    RENC_RETURN_IF(rc, rc);
    *names = renc_calloc(p->meta_count + 1, sizeof **names);
    RENC_RETURN_IF(!*names, -RENC_E_NOMEM);
    for (size_t i = 0; i < p->meta_count && !rc; i++) {
        size_t n = strlen(p->meta_names[i]) + 11;
        (*names)[i] = renc_malloc(n);
        if (!(*names)[i])
            return -RENC_E_NOMEM;
        snprintf((*names)[i], n, "x-ms-meta-%s", p->meta_names[i]);
        rc = renc_blob_req_header(req, (*names)[i], p->meta_values[i]);
    }
    return rc;
}

static void renc_blob_free_names(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        renc_free(names[i]);
    renc_free(names);
}

/* A write with its conditions and props; new_etag from the answer. */
static int renc_blob_write(struct renc_blob_conn *c, struct renc_blob_req *req,
                           const char *if_match, int if_none_match,
                           const struct renc_blob_props *props, const char *tags,
                           char new_etag[RENC_BLOB_ETAG_MAX])
{
    char **names = NULL;
    req->if_match = if_match;
    req->if_none_match = if_none_match ? "*" : NULL;
    int rc = renc_blob_props_headers(req, props, &names);
    if (!rc && tags && tags[0])
        rc = renc_blob_req_header(req, "x-ms-tags", tags);
    struct renc_blob_answer ans;
    if (!rc)
        rc = renc_blob_call_ok(c, req, &ans);
    if (!rc && new_etag)
        snprintf(new_etag, RENC_BLOB_ETAG_MAX, "%s", ans.etag);
    renc_blob_free_names(names);
    return rc;
}

static int renc_blob_b64_ok(const char *s)
{
    size_t n = 0;
    for (; *s; s++, n++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '+' || *s == '/' || *s == '='))
            return 0;
    return n > 0 && n < 96;
}

int renc_blob_put_block_list(struct renc_blob_conn *c, const char *container, const char *name,
                             char *const *ids, size_t n, size_t n_new, const char *if_match,
                             int if_none_match, const struct renc_blob_props *props,
                             const char *tags, char new_etag[RENC_BLOB_ETAG_MAX])
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    RENC_RETURN_IF(n > 50000 || n_new > n, -RENC_E_TOO_BIG);
    size_t cap = sizeof head + sizeof tail + n * (96 + 27);
    char *body = renc_malloc(cap), *o = body;
    RENC_RETURN_IF(!body, -RENC_E_NOMEM);
    o += sprintf(o, "%s", head);
    for (size_t i = 0; i < n; i++) {
        if (!renc_blob_b64_ok(ids[i])) {
            renc_free(body);
            return -RENC_E_INVALID; /* ids go into the XML as they are */
        }
        const char *kind = i < n_new ? "Uncommitted" : "Committed";
        o += sprintf(o, "<%s>%s</%s>", kind, ids[i], kind);
    }
    o += sprintf(o, "%s", tail);
    struct renc_blob_req req = {.method = "PUT", .container = container, .name = name,
                                .body = body, .body_len = (size_t)(o - body), .has_body = 1};
    renc_blob_req_query(&req, "comp", "blocklist");
    int rc = renc_blob_write(c, &req, if_match, if_none_match, props, tags, new_etag);
    renc_free(body);
    return rc;
}

int renc_blob_put(struct renc_blob_conn *c, const char *container, const char *name,
                  const void *data, size_t len, const char *if_match, int if_none_match,
                  const struct renc_blob_props *props, const char *tags,
                  char new_etag[RENC_BLOB_ETAG_MAX])
{
    struct renc_blob_req req = {.method = "PUT", .container = container, .name = name,
                                .body = data, .body_len = len, .has_body = 1};
    renc_blob_req_header(&req, "x-ms-blob-type", "BlockBlob");
    return renc_blob_write(c, &req, if_match, if_none_match, props, tags, new_etag);
}

int renc_blob_delete(struct renc_blob_conn *c, const char *container, const char *name,
                     const char *if_match)
{
    struct renc_blob_req req = {
        .method = "DELETE", .container = container, .name = name, .if_match = if_match};
    struct renc_blob_answer ans;
    return renc_blob_call_ok(c, &req, &ans);
}

int renc_blob_create_container(struct renc_blob_conn *c, const char *container)
{
    struct renc_blob_req req = {.method = "PUT", .container = container, .body = "",
                                .has_body = 1};
    renc_blob_req_query(&req, "restype", "container");
    struct renc_blob_answer ans;
    int rc = renc_blob_call(c, &req, &ans);
    RENC_RETURN_IF(rc, rc);
    if (ans.status == 201 || (ans.status == 409 && strcmp(ans.error_code,
                                                          "ContainerAlreadyExists") == 0))
        return 0;
    return renc_blob_map(c, &ans);
}
