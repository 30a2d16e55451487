#include "net/http.h"

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
    renc_http_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -RENC_E_VAULT_NETWORK;
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

/* The response body: grown as it arrives, refused past the bound.  The
 * old buffer is wiped before it is freed, since it may hold a secret. */
struct renc_http_sink {
    struct renc_http_response *resp;
    size_t cap;
    int too_big;
};

static size_t renc_http_write(char *data, size_t size, size_t n, void *arg)
{
    struct renc_http_sink *s = arg;
    struct renc_http_response *r = s->resp;
    size_t len = size * n;
    if (r->len + len > RENC_HTTP_BODY_MAX) {
        s->too_big = 1;
        return 0;
    }
    if (r->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *nb = renc_malloc(cap);
        if (!nb)
            return 0;
        if (r->body) {
            memcpy(nb, r->body, r->len);
            renc_secmem_wipe(r->body, s->cap);
            renc_free(r->body);
        }
        r->body = nb;
        s->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
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

static size_t renc_http_header(char *line, size_t size, size_t n, void *arg)
{
    struct renc_http_response *r = arg;
    size_t len = size * n;
    /* A new status line (after a 100 Continue) starts the headers over. */
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->retry_after[0] = r->www_authenticate[0] = r->request_id[0] = '\0';
        return len;
    }
    renc_http_header_value(line, len, "Retry-After", r->retry_after, sizeof r->retry_after);
    renc_http_header_value(line, len, "WWW-Authenticate", r->www_authenticate,
                           sizeof r->www_authenticate);
    renc_http_header_value(line, len, "x-ms-request-id", r->request_id, sizeof r->request_id);
    return len;
}

int renc_http_request(struct renc_http *h, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len,
                      struct renc_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    struct renc_http_sink sink = {.resp = resp};
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *next = curl_slist_append(list, headers[i]);
        if (!next) {
            curl_slist_free_all(list);
            return -RENC_E_NOMEM;
        }
        list = next;
    }
    CURL *c = h->curl;
    h->errbuf[0] = '\0';
    int ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HTTPHEADER, list) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, renc_http_write) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, renc_http_header) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_HEADERDATA, resp) == CURLE_OK;
    if (ok && body) {
        ok = curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK;
    } else if (ok) {
        ok = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    if (ok && strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        ok = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    else if (ok)
        ok = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK;
    CURLcode cc = ok ? curl_easy_perform(c) : CURLE_FAILED_INIT;
    /* The handle must not keep pointers to what the caller frees next. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_slist_free_all(list);
    if (sink.too_big)
        return -RENC_E_TOO_BIG;
    if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && !sink.too_big))
        return -RENC_E_NOMEM;
    if (cc != CURLE_OK)
        return -RENC_E_VAULT_NETWORK;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) {
        resp->body = renc_malloc(1);
        RENC_RETURN_IF(!resp->body, -RENC_E_NOMEM);
        resp->body[0] = '\0';
    }
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
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        RENC_RETURN_IF(o + (plain ? 1 : 3) >= max, -RENC_E_TOO_BIG);
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return 0;
}
