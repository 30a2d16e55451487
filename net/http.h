/* net/http.h — one HTTPS connection, over libcurl (docs/internals/net.md).
 *
 * A struct renc_http is one curl easy handle: requests made through it reuse
 * its connection (keep-alive) and TLS session.  It is not shared between
 * threads; a caller keeps a pool of them (keys/akv.c does).  TLS peer and
 * host verification are always on; ca_file adds private CAs to the system's.
 *
 * Two ways to send: renc_http_request buffers the whole answer (at most
 * RENC_HTTP_BODY_MAX: vault and token calls), renc_http_stream hands the
 * answer to a sink piece by piece and reads the request body from a source,
 * so a body of any size passes without being held (blob gets and puts).
 * Buffered bodies can hold secrets (a DEK, a token, a client secret): the
 * response buffer is wiped when released, and callers wipe what they send.
 *
 * Errors are net/'s own: -RENC_E_NET_* (renc_http_no_answer tells the ones
 * where no answer came), -RENC_E_NOMEM, or a source's or sink's own error.
 * A caller maps them into its domain at its boundary.
 */
#ifndef RENC_NET_HTTP_H
#define RENC_NET_HTTP_H

#include <stddef.h>

#define RENC_HTTP_BODY_MAX (1u << 20)

struct renc_http;

struct renc_http_response {
    long status;                 /* HTTP status */
    char *body;                  /* NUL-terminated, len bytes; wiped on cleanup;
                                    NULL after a streamed call */
    size_t len;
    char retry_after[32];        /* the Retry-After header, or "" */
    char www_authenticate[1024]; /* the WWW-Authenticate header, or "" */
    char request_id[96];         /* x-ms-request-id, or "" */
};

/* renc_http_global_init: once per process, before any thread uses curl. */
int renc_http_global_init(void);

struct renc_http_opts {
    const char *ca_file;  /* PEM bundle of CAs trusted besides the system's; may be NULL.
                           * The string must outlive the connection. */
    long timeout_ms;      /* bounds a whole request */
    const char *no_proxy; /* the operator's NO_PROXY list; may be NULL */
};

/* renc_http_new: a connection.  Loopback and 169.254.169.254 never go
 * through a proxy; no_proxy adds hosts to that ("*": no proxy at all).
 * -RENC_E_UNSUPPORTED when extra CAs are asked of a libcurl without the
 * OpenSSL backend. */
int renc_http_new(struct renc_http **out, const struct renc_http_opts *o);

/* renc_http_add_cas: adds the certificates of the PEM file ca_file to an
 * OpenSSL X509_STORE (what renc_http_new does for each TLS context);
 * -RENC_E_INVALID when the file holds none or cannot be read. */
int renc_http_add_cas(void *x509_store, const char *ca_file);

/* renc_http_same_origin: 1 when url has base's scheme, host (case aside)
 * and port (an explicit default port equals none), as a followed link must. */
int renc_http_same_origin(const char *url, const char *base);
void renc_http_free(struct renc_http *h);

/* renc_http_request: one request, its answer buffered.  headers:
 * NULL-terminated "Name: value" lines (may be NULL); body may be NULL (no
 * body) for GET.  Returns 0 with *resp filled for any HTTP status (body
 * never NULL), -RENC_E_NET_* when no answer came (resolve, connect, TLS,
 * timeout, broken off), -RENC_E_NET_TOO_BIG when the answer exceeds
 * RENC_HTTP_BODY_MAX.  *resp must be cleaned up in every case. */
int renc_http_request(struct renc_http *h, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len,
                      struct renc_http_response *resp);
void renc_http_response_cleanup(struct renc_http_response *resp);

/* renc_http_no_answer: 1 for the errors where no HTTP answer came (the
 * transport ones a retry policy sends again): -RENC_E_NET_RESOLVE, _CONNECT,
 * _TLS, _TIMEOUT, _IO.  Not -RENC_E_NET_TOO_BIG: an answer came. */
int renc_http_no_answer(int rc);

/* A response body sink.  write gets each piece of the body as it arrives,
 * with the answer's status (known before the first piece, so a sink can
 * keep an error body apart from data); a negative return aborts the
 * request, and renc_http_stream returns that error. */
struct renc_http_sink {
    int (*write)(void *arg, long status, const void *data, size_t len);
    void *arg;
    /* May be NULL.  Each response header as it arrives: name and value
     * (surrounding blanks trimmed), not NUL-terminated; name NULL when a
     * new status line starts the headers over (after a 100 Continue).  A
     * negative return aborts the request as write's does. */
    int (*header)(void *arg, const char *name, size_t name_len, const char *value,
                  size_t value_len);
};

/* A request body source.  read fills at most max bytes of buf and sets
 * *got (0: the body is done); a negative return aborts the request and is
 * returned.  len: the body's length in bytes (sent as Content-Length), or
 * -1 when not known (sent chunked).  A source is read once: to send again
 * (a retry) the caller starts a new one. */
struct renc_http_source {
    int (*read)(void *arg, void *buf, size_t max, size_t *got);
    void *arg;
    long long len;
};

/* renc_http_stream: one request with a streamed body.  body may be NULL
 * (none); POST sends it as the request body, any other method as an
 * upload (PUT).  sink may be NULL (the answer's body is dropped).  Returns
 * as renc_http_request, with resp->body NULL: the body went to the sink.
 * Nothing is buffered, so there is no size cap. */
int renc_http_stream(struct renc_http *h, const char *method, const char *url,
                     const char *const *headers, const struct renc_http_source *body,
                     const struct renc_http_sink *sink, struct renc_http_response *resp);

/* renc_http_escape: URL-encodes s (RFC 3986 unreserved kept) into out. */
int renc_http_escape(char *out, size_t max, const char *s);

#endif
