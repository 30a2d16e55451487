#include "crypto/http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/secmem.h"

struct renc_http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
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

int renc_http_new(struct renc_http **out, const char *ca_file, long timeout_ms)
{
    int rc = renc_http_global_init();
    if (rc)
        return rc;
    struct renc_http *h = renc_calloc(1, sizeof *h);
    RENC_RETURN_IF(!h, -RENC_E_NOMEM);
    h->curl = curl_easy_init();
    if (!h->curl) {
        renc_free(h);
        return -RENC_E_NOMEM;
    }
    CURL *c = h->curl;
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
             /* Loopback and the VM metadata endpoint never go through a proxy. */
             curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,169.254.169.254") == CURLE_OK &&
             (!ca_file || curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) == CURLE_OK);
    if (!ok) {
        renc_http_free(h);
        return -RENC_E_INVALID;
    }
    *out = h;
    return 0;
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
