/* net/url.h — URLs split and built with libcurl's URL API, so no layer
 * above parses a URL by hand (docs/internals/net.md, "net/url").
 *
 * renc_url_split gives the parts of a URL as written (path and query still
 * percent-encoded: a signature covers the path as sent); renc_url_unescape
 * decodes one piece once it has been cut out, so an escaped '/' in a blob
 * name stays part of its segment.  renc_url_build goes the other way from
 * already-escaped parts; renc_url_escape and renc_url_query_add make them.
 * Any scheme is accepted ("az://acct/c" splits like "https://...").
 */
#ifndef RENC_NET_URL_H
#define RENC_NET_URL_H

#include <stddef.h>

struct renc_url {
    char *scheme; /* lower case: "https" */
    char *host;   /* as written; an IPv6 address keeps its brackets */
    unsigned port;/* the explicit port, 0 when none was written */
    char *path;   /* percent-encoded as written; "/" when none */
    char *query;  /* without the '?', percent-encoded; NULL when none */
};

/* renc_url_split: the parts of url into *u (heap strings; cleanup frees
 * them).  -RENC_E_INVALID for what libcurl does not take as a URL (no
 * scheme, no host, a bad port), -RENC_E_NOMEM. */
int renc_url_split(struct renc_url *u, const char *url);
void renc_url_cleanup(struct renc_url *u);

/* renc_url_build: scheme://host[:port]path[?query] into *out (malloc'd,
 * renc_free), checked by libcurl's parser.  path must start with '/' and,
 * like query (may be NULL), be escaped already: nothing is encoded or
 * normalised here, escapes keep their case (a signature covers the path
 * as sent).  -RENC_E_INVALID for what does not parse back. */
int renc_url_build(char **out, const char *scheme, const char *host, unsigned port,
                   const char *path, const char *query);

/* renc_url_escape: s percent-encoded (RFC 3986 unreserved kept; '/' kept
 * too when keep_slash, for a path of several segments) into *out
 * (malloc'd). */
int renc_url_escape(char **out, const char *s, int keep_slash);
/* renc_url_escape_into: the same into out (max bytes with the NUL);
 * -RENC_E_TOO_BIG when it does not fit.  No copy is made, so a secret
 * (a client secret in a token form) can be escaped straight into secure
 * memory. */
int renc_url_escape_into(char *out, size_t max, const char *s, int keep_slash);

/* renc_url_unescape: the len bytes at s percent-decoded into *out
 * (malloc'd, NUL-terminated).  '+' stays '+'.  -RENC_E_INVALID for a
 * decoded NUL or a malformed escape. */
int renc_url_unescape(char **out, const char *s, size_t len);

/* renc_url_query_add: appends "name=ESCAPED(value)" to the query *q
 * (malloc'd; NULL starts one), '&'-separated.  name is sent as given. */
int renc_url_query_add(char **q, const char *name, const char *value);

#endif
