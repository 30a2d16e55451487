/* azure/blob_req.c — one blob request: its URL, headers and signature
 * (../shared/PROTOCOLS.md 3.2), sent under the account's retry policy with
 * the body streamed both ways (net/http.h renc_http_stream), its answer's
 * headers read as they come and its status mapped to blob.h's errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

#define RENC_BLOB_SCOPE "https://storage.azure.com/.default"
#define RENC_BLOB_RESOURCE "https://storage.azure.com"
#define RENC_BLOB_ERRBODY_MAX 4096 /* an error body kept for its Code */

int renc_blob_req_query(struct renc_blob_req *r, const char *name, const char *value)
{
    RENC_RETURN_IF(r->nquery >= RENC_BLOB_MAX_QUERY, -RENC_E_TOO_BIG);
    r->query[r->nquery++] = (struct renc_blob_pair){name, value};
    return 0;
}

int renc_blob_req_header(struct renc_blob_req *r, const char *name, const char *value)
{
    RENC_RETURN_IF(r->nx_ms >= RENC_BLOB_MAX_HEADERS, -RENC_E_TOO_BIG);
    r->x_ms[r->nx_ms++] = (struct renc_blob_pair){name, value};
    return 0;
}

/* ---- a growing string ---------------------------------------------------- */
struct renc_blob_sb {
    char *s;
    size_t len, cap;
    int rc;
};

static void renc_blob_sb_add(struct renc_blob_sb *b, const char *s, size_t n)
{
    if (b->rc)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = renc_realloc(b->s, cap);
        if (!ns) {
            b->rc = -RENC_E_NOMEM;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void renc_blob_sb_str(struct renc_blob_sb *b, const char *s)
{
    renc_blob_sb_add(b, s, strlen(s));
}

/* Done: the text in *out, or the error (the text freed). */
static int renc_blob_sb_take(struct renc_blob_sb *b, char **out)
{
    if (b->rc || !b->s) {
        renc_free(b->s);
        return b->rc ? b->rc : -RENC_E_NOMEM;
    }
    *out = b->s;
    return 0;
}

/* ---- the request's text ---------------------------------------------------- */

/* The path as sent: the endpoint's, then the escaped container and name. */
static int renc_blob_path(const struct renc_blob_account *a, const struct renc_blob_req *req,
                          char **out)
{
    struct renc_blob_sb b = {0};
    char *esc = NULL;
    renc_blob_sb_str(&b, a->ep.path);
    renc_blob_sb_str(&b, "/");
    if (req->container) {
        b.rc = b.rc ? b.rc : renc_url_escape(&esc, req->container, 0);
        renc_blob_sb_str(&b, esc ? esc : "");
        renc_free(esc);
        esc = NULL;
    }
    if (req->container && req->name) {
        renc_blob_sb_str(&b, "/");
        b.rc = b.rc ? b.rc : renc_url_escape(&esc, req->name, 1);
        renc_blob_sb_str(&b, esc ? esc : "");
        renc_free(esc);
    }
    return renc_blob_sb_take(&b, out);
}

static int renc_blob_url(const struct renc_blob_account *a, const struct renc_blob_req *req,
                         const char *path, char **out)
{
    char *q = NULL;
    int rc = 0;
    for (size_t i = 0; i < req->nquery && !rc; i++)
        rc = renc_url_query_add(&q, req->query[i].name, req->query[i].value);
    if (!rc && a->auth == RENC_BLOB_AUTH_SAS) {
        /* The SAS goes as written: it is signed over its own encoding. */
        struct renc_blob_sb b = {0};
        renc_blob_sb_str(&b, q ? q : "");
        if (q)
            renc_blob_sb_str(&b, "&");
        renc_blob_sb_add(&b, (const char *)a->sas->bytes, a->sas->len);
        if (q) {
            renc_secmem_wipe(q, strlen(q));
            renc_free(q);
        }
        q = NULL;
        rc = renc_blob_sb_take(&b, &q);
    }
    if (!rc)
        rc = renc_url_build(out, a->ep.scheme, a->ep.host, a->ep.port, path, q);
    if (q) {
        renc_secmem_wipe(q, strlen(q));
        renc_free(q);
    }
    return rc;
}

static int renc_blob_pair_cmp(const void *x, const void *y)
{
    const struct renc_blob_pair *a = x, *b = y;
    return strcasecmp(a->name, b->name);
}

/* "name:value\n" per x-ms-* header, names lower-cased and sorted, values
 * trimmed; x-ms-date and x-ms-version among them. */
static void renc_blob_canonical_headers(struct renc_blob_sb *b, const struct renc_blob_req *req,
                                        const char *date)
{
    struct renc_blob_pair h[RENC_BLOB_MAX_HEADERS + 2];
    size_t n = 0;
    for (size_t i = 0; i < req->nx_ms; i++)
        h[n++] = req->x_ms[i];
    h[n++] = (struct renc_blob_pair){"x-ms-date", date};
    h[n++] = (struct renc_blob_pair){"x-ms-version", RENC_BLOB_API_VERSION};
    qsort(h, n, sizeof h[0], renc_blob_pair_cmp);
    for (size_t i = 0; i < n; i++) {
        for (const char *p = h[i].name; *p; p++) {
            char lc = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            renc_blob_sb_add(b, &lc, 1);
        }
        renc_blob_sb_str(b, ":");
        const char *v = h[i].value, *e = v + strlen(v);
        while (*v == ' ' || *v == '\t')
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        renc_blob_sb_add(b, v, (size_t)(e - v));
        renc_blob_sb_str(b, "\n");
    }
}

int renc_blob_string_to_sign(const struct renc_blob_account *a, const struct renc_blob_req *req,
                             const char *path, const char *date, char **out)
{
    struct renc_blob_sb b = {0};
    char len[32] = "";
    if (req->has_body && req->body_len)
        snprintf(len, sizeof len, "%zu", req->body_len);
    renc_blob_sb_str(&b, req->method);
    renc_blob_sb_str(&b, "\n\n\n"); /* Content-Encoding, Content-Language */
    renc_blob_sb_str(&b, len);
    renc_blob_sb_str(&b, "\n\n\n\n\n"); /* Content-MD5, Content-Type, Date, If-Modified-Since */
    renc_blob_sb_str(&b, req->if_match ? req->if_match : "");
    renc_blob_sb_str(&b, "\n");
    renc_blob_sb_str(&b, req->if_none_match ? req->if_none_match : "");
    renc_blob_sb_str(&b, "\n\n\n"); /* If-Unmodified-Since, Range */
    renc_blob_canonical_headers(&b, req, date);
    renc_blob_sb_str(&b, "/");
    renc_blob_sb_str(&b, a->account);
    renc_blob_sb_str(&b, path);
    struct renc_blob_pair q[RENC_BLOB_MAX_QUERY];
    memcpy(q, req->query, req->nquery * sizeof q[0]);
    qsort(q, req->nquery, sizeof q[0], renc_blob_pair_cmp);
    for (size_t i = 0; i < req->nquery; i++) {
        renc_blob_sb_str(&b, "\n");
        renc_blob_sb_str(&b, q[i].name);
        renc_blob_sb_str(&b, ":");
        renc_blob_sb_str(&b, q[i].value);
    }
    return renc_blob_sb_take(&b, out);
}

/* RFC 1123, by hand: strftime's names follow the locale. */
static void renc_blob_date(char *out, size_t max)
{
    static const char *const day[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, max, "%s, %02d %s %04d %02d:%02d:%02d GMT", day[tm.tm_wday], tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- one send --------------------------------------------------------------- */

/* What one request carries between its sends and its callbacks. */
struct renc_blob_xfer {
    struct renc_blob_conn *c;
    struct renc_blob_req *req;
    struct renc_blob_answer *ans;
    const char *url, *path;
    size_t sent;                 /* of the body, this send */
    char errbody[RENC_BLOB_ERRBODY_MAX];
    size_t errlen;
    long status;
    struct renc_key *token;      /* Entra: this request's token */
};

static int renc_blob_src_read(void *arg, void *buf, size_t max, size_t *got)
{
    struct renc_blob_xfer *x = arg;
    size_t n = x->req->body_len - x->sent;
    n = n < max ? n : max;
    memcpy(buf, (const char *)x->req->body + x->sent, n);
    x->sent += n;
    x->c->bytes_sent += n;
    *got = n;
    return 0;
}

static int renc_blob_sink_write(void *arg, long status, const void *data, size_t len)
{
    struct renc_blob_xfer *x = arg;
    x->status = status;
    if (status < 200 || status >= 300) {
        size_t room = sizeof x->errbody - 1 - x->errlen;
        size_t n = len < room ? len : room; /* the Code comes first: the rest may go */
        memcpy(x->errbody + x->errlen, data, n);
        x->errlen += n;
        return 0;
    }
    return x->req->data ? x->req->data(x->req->arg, status, data, len) : 0;
}

/* A header's value as a heap string in *slot. */
static int renc_blob_keep(char **slot, const char *v, size_t n)
{
    char *d = renc_malloc(n + 1);
    RENC_RETURN_IF(!d, -RENC_E_NOMEM);
    memcpy(d, v, n);
    d[n] = '\0';
    renc_free(*slot);
    *slot = d;
    return 0;
}

static void renc_blob_copy(char *out, size_t max, const char *v, size_t n)
{
    n = n < max - 1 ? n : max - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

int renc_blob_props_add_meta(struct renc_blob_props *p, const char *name, size_t nl,
                             const char *v, size_t vl)
{
    char **names = renc_realloc(p->meta_names, (p->meta_count + 1) * sizeof *names);
    RENC_RETURN_IF(!names, -RENC_E_NOMEM);
    p->meta_names = names;
    char **values = renc_realloc(p->meta_values, (p->meta_count + 1) * sizeof *values);
    RENC_RETURN_IF(!values, -RENC_E_NOMEM);
    p->meta_values = values;
    names[p->meta_count] = values[p->meta_count] = NULL;
    int rc = renc_blob_keep(&names[p->meta_count], name, nl);
    if (!rc)
        rc = renc_blob_keep(&values[p->meta_count], v, vl);
    if (rc) {
        renc_free(names[p->meta_count]);
        return rc;
    }
    p->meta_count++;
    return 0;
}

#define RENC_BLOB_IS(lit) (nl == sizeof(lit) - 1 && strncasecmp(name, lit, nl) == 0)

static int renc_blob_props_header(struct renc_blob_props *p, const char *name, size_t nl,
                                  const char *v, size_t vl)
{
    if (RENC_BLOB_IS("Content-Length"))
        p->size = strtoull(v, NULL, 10);
    else if (RENC_BLOB_IS("Content-Type"))
        return renc_blob_keep(&p->content_type, v, vl);
    else if (RENC_BLOB_IS("Content-Encoding"))
        return renc_blob_keep(&p->content_encoding, v, vl);
    else if (RENC_BLOB_IS("Content-Language"))
        return renc_blob_keep(&p->content_language, v, vl);
    else if (RENC_BLOB_IS("Content-Disposition"))
        return renc_blob_keep(&p->content_disposition, v, vl);
    else if (RENC_BLOB_IS("Cache-Control"))
        return renc_blob_keep(&p->cache_control, v, vl);
    else if (RENC_BLOB_IS("x-ms-tag-count"))
        p->tag_count = (unsigned)strtoul(v, NULL, 10);
    else if (nl > 10 && strncasecmp(name, "x-ms-meta-", 10) == 0)
        return renc_blob_props_add_meta(p, name + 10, nl - 10, v, vl);
    return 0;
}

static int renc_blob_sink_header(void *arg, const char *name, size_t nl, const char *v,
                                 size_t vl)
{
    struct renc_blob_xfer *x = arg;
    if (!name) { /* a new status line: what came before was a 100 Continue */
        memset(x->ans, 0, sizeof *x->ans);
        if (x->req->props)
            renc_blob_props_cleanup(x->req->props);
        return 0;
    }
    if (RENC_BLOB_IS("ETag"))
        renc_blob_copy(x->ans->etag, sizeof x->ans->etag, v, vl);
    else if (RENC_BLOB_IS("x-ms-error-code"))
        renc_blob_copy(x->ans->error_code, sizeof x->ans->error_code, v, vl);
    else if (RENC_BLOB_IS("x-ms-blob-type"))
        renc_blob_copy(x->ans->blob_type, sizeof x->ans->blob_type, v, vl);
    return x->req->props ? renc_blob_props_header(x->req->props, name, nl, v, vl) : 0;
}

/* The Authorization header of this send, into hdr. */
static int renc_blob_auth_header(struct renc_blob_xfer *x, const char *date, char *hdr,
                                 size_t max)
{
    struct renc_blob_account *a = x->c->a;
    hdr[0] = '\0';
    if (a->auth == RENC_BLOB_AUTH_SAS)
        return 0;
    if (a->auth == RENC_BLOB_AUTH_ENTRA) {
        renc_key_free(x->token);
        x->token = NULL;
        int rc = renc_azure_token(a->tokens, x->c->http, a->tenant, RENC_BLOB_SCOPE,
                                  RENC_BLOB_RESOURCE, &x->token);
        RENC_RETURN_IF(rc == -RENC_E_VAULT_AUTH, -RENC_E_STORE_AUTH);
        RENC_RETURN_IF(rc, rc);
        int n = snprintf(hdr, max, "Authorization: Bearer %.*s", (int)x->token->len,
                         (const char *)x->token->bytes);
        RENC_RETURN_IF(n < 0 || (size_t)n >= max, -RENC_E_TOO_BIG);
        return 0;
    }
    char *sts = NULL;
    int rc = renc_blob_string_to_sign(a, x->req, x->path, date, &sts);
    RENC_RETURN_IF(rc, rc);
    memcpy(hdr, "Authorization: ", 15);
    rc = renc_blob_authorization(a, sts, hdr + 15, max - 15);
    renc_free(sts);
    return rc;
}

/* The header lines of one send, into lines (NULL-terminated); their text
 * in one buffer. */
#define RENC_BLOB_HDR_TEXT 65536 /* 8 KiB of metadata and 10 tags, escaped, fit */
static int renc_blob_header_lines(struct renc_blob_xfer *x, const char *date, char *text,
                                  const char **lines, char *auth)
{
    const struct renc_blob_req *r = x->req;
    size_t o = 0, n = 0;
    int len;
    lines[n++] = text;
    len = snprintf(text, RENC_BLOB_HDR_TEXT, "x-ms-date: %s", date);
    o += (size_t)len + 1;
    lines[n++] = text + o;
    len = snprintf(text + o, RENC_BLOB_HDR_TEXT - o, "x-ms-version: %s", RENC_BLOB_API_VERSION);
    o += (size_t)len + 1;
    for (size_t i = 0; i < r->nx_ms + 2; i++) {
        const char *name = i < r->nx_ms ? r->x_ms[i].name : i == r->nx_ms ? "If-Match"
                                                                          : "If-None-Match";
        const char *v = i < r->nx_ms ? r->x_ms[i].value : i == r->nx_ms ? r->if_match
                                                                       : r->if_none_match;
        if (!v)
            continue;
        len = snprintf(text + o, RENC_BLOB_HDR_TEXT - o, "%s: %s", name, v);
        RENC_RETURN_IF(len < 0 || (size_t)len >= RENC_BLOB_HDR_TEXT - o, -RENC_E_TOO_BIG);
        lines[n++] = text + o;
        o += (size_t)len + 1;
    }
    if (auth[0])
        lines[n++] = auth;
    lines[n] = NULL;
    return 0;
}

static int renc_blob_send(void *arg, struct renc_http_response *resp)
{
    struct renc_blob_xfer *x = arg;
    char date[40], auth[16384], *text = renc_malloc(RENC_BLOB_HDR_TEXT); /* auth: a token too */
    const char *lines[RENC_BLOB_MAX_HEADERS + 8];
    RENC_RETURN_IF(!text, -RENC_E_NOMEM);
    renc_blob_date(date, sizeof date);
    memset(x->ans, 0, sizeof *x->ans);
    if (x->req->props)
        renc_blob_props_cleanup(x->req->props);
    x->sent = x->errlen = 0;
    x->status = 0;
    if (x->req->start)
        x->req->start(x->req->arg);
    int rc = renc_blob_auth_header(x, date, auth, sizeof auth);
    if (!rc)
        rc = renc_blob_header_lines(x, date, text, lines, auth);
    if (!rc) {
        struct renc_http_source src = {renc_blob_src_read, x, (long long)x->req->body_len};
        struct renc_http_sink sink = {
            .write = renc_blob_sink_write, .arg = x, .header = renc_blob_sink_header};
        rc = renc_http_stream(x->c->http, x->req->method, x->url, lines,
                              x->req->has_body ? &src : NULL, &sink, resp);
    }
    renc_secmem_wipe(auth, sizeof auth);
    renc_free(text);
    return rc;
}

/* ---- the answer -------------------------------------------------------------- */

int renc_blob_map(struct renc_blob_conn *c, const struct renc_blob_answer *ans)
{
    const char *code = ans->error_code;
    snprintf(c->error_code, sizeof c->error_code, "%s", code);
    c->error_status = ans->status;
    switch (ans->status) {
    case 412:
        return -RENC_E_CHANGED;
    case 404:
        return strcmp(code, "ContainerNotFound") == 0 ? -RENC_E_STORE_NOT_FOUND
                                                      : -RENC_E_CHANGED;
    case 409: /* If-None-Match: * on a blob that is there */
        return strcmp(code, "BlobAlreadyExists") == 0 ? -RENC_E_CHANGED : -RENC_E_STORE;
    case 401:
    case 403:
        return -RENC_E_STORE_AUTH;
    case 408:
        return -RENC_E_STORE_BUSY;
    default:
        return ans->status >= 500 ? -RENC_E_STORE_BUSY : -RENC_E_STORE;
    }
}

/* An error answer without x-ms-error-code: the Code of its XML body. */
static void renc_blob_body_code(struct renc_blob_xfer *x)
{
    if (x->ans->error_code[0] || !x->errlen)
        return;
    struct renc_blob_xml_result res = {0};
    struct renc_blob_xml *xml = NULL;
    if (renc_blob_xml_new(&xml, RENC_BLOB_XML_ERROR, &res) == 0 &&
        renc_blob_xml_feed(xml, x->errbody, x->errlen) == 0)
        snprintf(x->ans->error_code, sizeof x->ans->error_code, "%s", res.code);
    renc_blob_xml_free(xml);
    renc_blob_xml_result_cleanup(&res);
}

/* A failure with no HTTP answer, in blob.h's terms. */
static int renc_blob_net_error(struct renc_blob_conn *c, int rc)
{
    c->error_code[0] = '\0';
    c->error_status = 0;
    if (renc_http_no_answer(rc))
        return -RENC_E_STORE_NETWORK;
    if (rc == -RENC_E_NET_THROTTLED)
        return -RENC_E_STORE_BUSY;
    if (rc == -RENC_E_NET_TOO_BIG)
        return -RENC_E_STORE;
    return rc;
}

static int renc_blob_call_once(struct renc_blob_xfer *x)
{
    struct renc_retry_send s = {renc_blob_send, x, x->req->method, x->path};
    struct renc_http_response resp;
    memset(&resp, 0, sizeof resp);
    int rc = renc_retry_run(&x->c->a->retry, NULL, &s, &resp);
    if (!rc) {
        x->ans->status = resp.status;
        if (resp.status < 200 || resp.status >= 300)
            renc_blob_body_code(x);
    }
    renc_http_response_cleanup(&resp);
    return rc ? renc_blob_net_error(x->c, rc) : 0;
}

int renc_blob_call(struct renc_blob_conn *c, struct renc_blob_req *req,
                   struct renc_blob_answer *ans)
{
    char *path = NULL, *url = NULL;
    int rc = renc_blob_path(c->a, req, &path);
    if (!rc)
        rc = renc_blob_url(c->a, req, path, &url);
    struct renc_blob_xfer *x = rc ? NULL : renc_calloc(1, sizeof *x);
    if (!rc && !x)
        rc = -RENC_E_NOMEM;
    if (!rc) {
        *x = (struct renc_blob_xfer){.c = c, .req = req, .ans = ans, .url = url, .path = path};
        rc = renc_blob_call_once(x);
        /* A token the service no longer takes: once more with a new one. */
        if (!rc && ans->status == 401 && c->a->auth == RENC_BLOB_AUTH_ENTRA && x->token) {
            renc_azure_token_drop(c->a->tokens, c->a->tenant, RENC_BLOB_SCOPE, x->token);
            rc = renc_blob_call_once(x);
        }
        renc_key_free(x->token);
        renc_free(x);
    }
    if (url) {
        renc_secmem_wipe(url, strlen(url)); /* may hold a SAS */
        renc_free(url);
    }
    renc_free(path);
    return rc;
}

int renc_blob_call_ok(struct renc_blob_conn *c, struct renc_blob_req *req,
                      struct renc_blob_answer *ans)
{
    int rc = renc_blob_call(c, req, ans);
    RENC_RETURN_IF(rc, rc);
    return ans->status >= 200 && ans->status < 300 ? 0 : renc_blob_map(c, ans);
}
