/* net/http.h — one HTTPS connection to a key provider, over libcurl.
 *
 * A struct renc_http is one curl easy handle: requests made through it reuse
 * its connection (keep-alive) and TLS session.  It is not shared between
 * threads; keys/akv.c keeps a pool of them.  TLS peer and host
 * verification are always on; ca_file adds private CAs to the system's.  Request and
 * response bodies can hold secrets (a DEK, a token, a client secret): the
 * response buffer is wiped when released, and callers wipe what they send.
 */
#ifndef RENC_NET_HTTP_H
#define RENC_NET_HTTP_H

#include <stddef.h>

#define RENC_HTTP_BODY_MAX (1u << 20)

struct renc_http;

struct renc_http_response {
    long status;                 /* HTTP status */
    char *body;                  /* NUL-terminated, len bytes; wiped on cleanup */
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

/* renc_http_request: one request.  headers: NULL-terminated "Name: value"
 * lines (may be NULL); body may be NULL (no body) for GET.  Returns 0 with
 * *resp filled for any HTTP status, -RENC_E_VAULT_NETWORK when no answer came
 * (refused, dropped, TLS failure, timeout), -RENC_E_TOO_BIG when the answer
 * exceeds RENC_HTTP_BODY_MAX.  *resp must be cleaned up in every case. */
int renc_http_request(struct renc_http *h, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len,
                      struct renc_http_response *resp);
void renc_http_response_cleanup(struct renc_http_response *resp);

/* renc_http_escape: URL-encodes s (RFC 3986 unreserved kept) into out. */
int renc_http_escape(char *out, size_t max, const char *s);

#endif
