#include "net/http.h"
#include "net/url.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/secmem.h"

struct renc_http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char noproxy[1024];
};

static pthread_once_t renc_http_once = PTHREAD_ONCE_INIT;
static int renc_http_init_rc;

static void renc_http_init_once(void)
{
    renc_http_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -RENC_E_NET_IO;
}

int renc_http_global_init(void)
{
    pthread_once(&renc_http_once, renc_http_init_once);
    return renc_http_init_rc;
}

/* The extra CAs are added to the store libcurl has already filled with the
 * system's (CURLOPT_CAINFO would replace it): a private CA for one vault
 * must not cut the tool off from every other endpoint. */
int renc_http_add_cas(void *x509_store, const char *ca_file)
{
    X509_STORE *st = x509_store;
    BIO *in = BIO_new_file(ca_file, "r");
    RENC_RETURN_IF(!in, -RENC_E_INVALID);
    int added = 0, ok = 1;
    for (;;) {
        X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
        if (!x)
            break;
        /* The same certificate twice is not an error. */
        if (X509_STORE_add_cert(st, x) == 1 ||
            ERR_GET_REASON(ERR_peek_last_error()) == X509_R_CERT_ALREADY_IN_HASH_TABLE)
            added++;
        else
            ok = 0;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(in);
    return ok && added > 0 ? 0 : -RENC_E_INVALID;
}

static CURLcode renc_http_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    (void)curl;
    const char *ca_file = arg;
    return renc_http_add_cas(SSL_CTX_get_cert_store(ssl_ctx), ca_file) == 0
               ? CURLE_OK
               : CURLE_SSL_CACERT_BADFILE;
}

/* Loopback and the VM metadata endpoint never go through a proxy; the
 * operator's NO_PROXY adds to them ("*" alone turns proxies off). */
static int renc_http_noproxy(char *out, size_t max, const char *no_proxy)
{
    static const char always[] = "127.0.0.1,::1,169.254.169.254";
    int n = no_proxy && strcmp(no_proxy, "*") == 0 ? snprintf(out, max, "*")
            : no_proxy && no_proxy[0]              ? snprintf(out, max, "%s,%s", always, no_proxy)
                                                   : snprintf(out, max, "%s", always);
    return n < 0 || (size_t)n >= max ? -RENC_E_TOO_BIG : 0;
}

int renc_http_new(struct renc_http **out, const struct renc_http_opts *o)
{
    int rc = renc_http_global_init();
    if (rc)
        return rc;
    struct renc_http *h = renc_calloc(1, sizeof *h);
    RENC_RETURN_IF(!h, -RENC_E_NOMEM);
    if ((rc = renc_http_noproxy(h->noproxy, sizeof h->noproxy, o->no_proxy))) {
        renc_free(h);
        return rc;
    }
    h->curl = curl_easy_init();
    if (!h->curl) {
        renc_free(h);
        return -RENC_E_NOMEM;
    }
    CURL *c = h->curl;
    long timeout_ms = o->timeout_ms;
    int ok = curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http") == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L) ==
                 CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_USERAGENT, "reencrypt/0.1") == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_NOPROXY, h->noproxy) == CURLE_OK;
    if (ok && o->ca_file) {
        /* The callback needs libcurl's OpenSSL backend (Debian's libcurl4). */
        ok = curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, renc_http_ssl_ctx) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, (void *)o->ca_file) == CURLE_OK;
    }
    if (!ok) {
        renc_http_free(h);
        return o->ca_file ? -RENC_E_UNSUPPORTED : -RENC_E_INVALID;
    }
    *out = h;
    return 0;
}

int renc_http_same_origin(const char *url, const char *base)
{
    CURLU *u = curl_url(), *b = curl_url();
    char *us = NULL, *uh = NULL, *up = NULL, *bs = NULL, *bh = NULL, *bp = NULL;
    int same = u && b && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
               curl_url_set(b, CURLUPART_URL, base, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_SCHEME, &us, 0) == CURLUE_OK &&
               curl_url_get(b, CURLUPART_SCHEME, &bs, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_HOST, &uh, 0) == CURLUE_OK &&
               curl_url_get(b, CURLUPART_HOST, &bh, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_PORT, &up, CURLU_DEFAULT_PORT) == CURLUE_OK &&
               curl_url_get(b, CURLUPART_PORT, &bp, CURLU_DEFAULT_PORT) == CURLUE_OK &&
               strcasecmp(us, bs) == 0 && strcasecmp(uh, bh) == 0 && strcmp(up, bp) == 0;
    curl_free(us);
    curl_free(uh);
    curl_free(up);
    curl_free(bs);
    curl_free(bh);
    curl_free(bp);
    curl_url_cleanup(u);
    curl_url_cleanup(b);
    return same;
}

void renc_http_free(struct renc_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    renc_free(h);
}

/* The buffered call's sink: the body grown as it arrives, refused past
 * max.  The old buffer is wiped before it is freed, since it may hold a
 * secret. */
struct renc_http_buf {
    char *data; /* NUL-terminated */
    size_t len, cap, max;
};

static int renc_http_buf_write(void *arg, long status, const void *data, size_t len)
{
    (void)status; /* an error answer's body is read by the caller too */
    struct renc_http_buf *b = arg;
    RENC_RETURN_IF(len > b->max - b->len, -RENC_E_NET_TOO_BIG);
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *nb = renc_malloc(cap);
        RENC_RETURN_IF(!nb, -RENC_E_NOMEM);
        if (b->data) {
            memcpy(nb, b->data, b->len);
            renc_secmem_wipe(b->data, b->cap);
            renc_free(b->data);
        }
        b->data = nb;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* Copies the value of header line `line` into out when its name is `name`. */
static void renc_http_header_value(const char *line, size_t len, const char *name, char *out,
                                   size_t max)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t vl = (size_t)(end - v) < max - 1 ? (size_t)(end - v) : max - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

/* One request's callbacks and what they came to: a callback's error is
 * kept here and returned instead of libcurl's "aborted by callback". */
struct renc_http_xfer {
    CURL *curl;
    const struct renc_http_source *src;
    const struct renc_http_sink *sink;
    struct renc_http_response *resp;
    int rc;
};

/* A header line to the sink's header callback, cut into name and value. */
static int renc_http_sink_header(const struct renc_http_sink *sink, const char *line,
                                 size_t len)
{
    const char *colon = memchr(line, ':', len), *end = line + len;
    if (!colon)
        return 0; /* the blank line that ends the headers */
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    return sink->header(sink->arg, line, (size_t)(colon - line), v, (size_t)(end - v));
}

static size_t renc_http_header(char *line, size_t size, size_t n, void *arg)
{
    struct renc_http_xfer *x = arg;
    struct renc_http_response *r = x->resp;
    const struct renc_http_sink *sink = x->sink;
    size_t len = size * n;
    int rc = 0;
    /* A new status line (after a 100 Continue) starts the headers over. */
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->retry_after[0] = r->www_authenticate[0] = r->request_id[0] = '\0';
        if (sink && sink->header)
            rc = sink->header(sink->arg, NULL, 0, NULL, 0);
    } else {
        renc_http_header_value(line, len, "Retry-After", r->retry_after, sizeof r->retry_after);
        renc_http_header_value(line, len, "WWW-Authenticate", r->www_authenticate,
                               sizeof r->www_authenticate);
        renc_http_header_value(line, len, "x-ms-request-id", r->request_id,
                               sizeof r->request_id);
        if (sink && sink->header)
            rc = renc_http_sink_header(sink, line, len);
    }
    if (rc) {
        x->rc = rc;
        return 0; /* anything but len aborts */
    }
    return len;
}

static size_t renc_http_write(char *data, size_t size, size_t n, void *arg)
{
    struct renc_http_xfer *x = arg;
    size_t len = size * n;
    if (!x->resp->status) /* the headers are in: a sink can tell an error body */
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->resp->status);
    int rc = x->sink ? x->sink->write(x->sink->arg, x->resp->status, data, len) : 0;
    if (rc) {
        x->rc = rc;
        return len ? 0 : 1; /* anything but len aborts */
    }
    return len;
}

static size_t renc_http_read(char *buf, size_t size, size_t n, void *arg)
{
    struct renc_http_xfer *x = arg;
    size_t got = 0;
    int rc = x->src->read(x->src->arg, buf, size * n, &got);
    if (rc || got > size * n) {
        x->rc = rc ? rc : -RENC_E_INVALID;
        return CURL_READFUNC_ABORT;
    }
    return got;
}

/* libcurl's failure as net/'s own error. */
static int renc_http_curl_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_OUT_OF_MEMORY: return -RENC_E_NOMEM;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return -RENC_E_NET_RESOLVE;
    case CURLE_COULDNT_CONNECT: return -RENC_E_NET_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return -RENC_E_NET_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: return -RENC_E_NET_TLS;
    default: return -RENC_E_NET_IO;
    }
}

int renc_http_no_answer(int rc)
{
    return rc <= -RENC_E_NET_RESOLVE && rc >= -RENC_E_NET_IO;
}

/* The method and the body: a buffered body goes as POST fields (what every
 * vault and token call sends); a streamed one is read as it is sent, with
 * its length when known (else chunked). */
static int renc_http_set_body(CURL *c, const char *method, const char *body, size_t body_len,
                              const struct renc_http_source *src, struct renc_http_xfer *x)
{
    int ok = 1;
    if (body) {
        ok = curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK;
    } else if (src && strcmp(method, "POST") == 0) {
        ok = curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_READFUNCTION, renc_http_read) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_READDATA, x) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)src->len) == CURLE_OK;
    } else if (src) {
        ok = curl_easy_setopt(c, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_READFUNCTION, renc_http_read) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_READDATA, x) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src->len) == CURLE_OK;
    } else if (strcmp(method, "HEAD") == 0) {
        /* Not a custom GET: libcurl would wait for the body the headers announce. */
        return curl_easy_setopt(c, CURLOPT_NOBODY, 1L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK;
    } else {
        ok = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    /* GET and POST are what the options above ask for; PUT is UPLOAD's. */
    int named = strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ||
                (src && !body && strcmp(method, "PUT") == 0);
    return ok && curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, named ? NULL : method) == CURLE_OK;
}

/* The handle must not keep pointers to what the caller frees next, nor a
 * streamed call's upload mode into the next request. */
static void renc_http_reset_body(CURL *c)
{
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, (curl_read_callback)NULL);
    curl_easy_setopt(c, CURLOPT_READDATA, (void *)NULL);
}

/* One request with either body kind (or none). */
static int renc_http_perform(struct renc_http *h, const char *method, const char *url,
                             const char *const *headers, const char *body, size_t body_len,
                             const struct renc_http_source *src,
                             const struct renc_http_sink *sink, struct renc_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *next = curl_slist_append(list, headers[i]);
        if (!next) {
            curl_slist_free_all(list);
            return -RENC_E_NOMEM;
        }
        list = next;
    }
    /* No "Expect: 100-continue" (libcurl sends it for bodies over 1 MiB):
     * a server that does not answer 100 costs a second per upload (curl's
     * wait), and ours are sent whole anyway. */
    struct curl_slist *next = curl_slist_append(list, "Expect:");
    if (!next) {
        curl_slist_free_all(list);
        return -RENC_E_NOMEM;
    }
    list = next;
    CURL *c = h->curl;
    struct renc_http_xfer x = {.curl = c, .src = src, .sink = sink, .resp = resp};
    h->errbuf[0] = '\0';
    int ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HTTPHEADER, list) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, renc_http_write) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEDATA, &x) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, renc_http_header) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HEADERDATA, &x) == CURLE_OK &&
             renc_http_set_body(c, method, body, body_len, src, &x);
    CURLcode cc = ok ? curl_easy_perform(c) : CURLE_FAILED_INIT;
    renc_http_reset_body(c);
    curl_slist_free_all(list);
    if (x.rc)
        return x.rc;
    if (cc != CURLE_OK)
        return renc_http_curl_error(cc);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    return 0;
}

int renc_http_stream(struct renc_http *h, const char *method, const char *url,
                     const char *const *headers, const struct renc_http_source *body,
                     const struct renc_http_sink *sink, struct renc_http_response *resp)
{
    return renc_http_perform(h, method, url, headers, NULL, 0, body, sink, resp);
}

int renc_http_request(struct renc_http *h, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len,
                      struct renc_http_response *resp)
{
    struct renc_http_buf buf = {.max = RENC_HTTP_BODY_MAX};
    struct renc_http_sink sink = {.write = renc_http_buf_write, .arg = &buf};
    int rc = renc_http_perform(h, method, url, headers, body, body_len, NULL, &sink, resp);
    if (rc == 0 && !buf.data)
        rc = renc_http_buf_write(&buf, resp->status, "", 0);
    if (rc) {
        if (buf.data)
            renc_secmem_wipe(buf.data, buf.cap);
        renc_free(buf.data);
        return rc;
    }
    resp->body = buf.data;
    resp->len = buf.len;
    return 0;
}

void renc_http_response_cleanup(struct renc_http_response *resp)
{
    if (resp->body) {
        renc_secmem_wipe(resp->body, resp->len);
        renc_free(resp->body);
    }
    memset(resp, 0, sizeof *resp);
}

int renc_http_escape(char *out, size_t max, const char *s)
{
    return renc_url_escape_into(out, max, s, 0); /* one encoder for net/: url.c's */
}
