/* azure/blob_url.c — what a blob URL and a connection string name
 * (azure/blob.h, "where a URL points"; ../shared/PROTOCOLS.md 3.1, 3.4).
 * URLs are split with net/url.h; only the percent-decoding of the pieces
 * and the redaction scan are done here. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

#define RENC_BLOB_DEFAULT_SUFFIX "core.windows.net"

static void renc_blob_why(char *why, size_t max, const char *text)
{
    if (why && max)
        snprintf(why, max, "%s", text);
}

int renc_blob_is_url(const char *s)
{
    return s && (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0 ||
                 strncasecmp(s, "az://", 5) == 0);
}

void renc_blob_location_cleanup(struct renc_blob_location *loc)
{
    if (!loc)
        return;
    renc_free(loc->endpoint);
    renc_free(loc->account);
    renc_free(loc->container);
    renc_free(loc->prefix);
    if (loc->sas) {
        renc_secmem_wipe(loc->sas, strlen(loc->sas));
        renc_free(loc->sas);
    }
    memset(loc, 0, sizeof *loc);
}

/* ---- the connection string ---------------------------------------------- */

void renc_blob_connstr_cleanup(struct renc_blob_connstr *cs)
{
    renc_free(cs->account);
    renc_free(cs->blob_endpoint);
    renc_free(cs->protocol);
    renc_free(cs->suffix);
    renc_key_free(cs->key);
    renc_key_free(cs->sas);
    memset(cs, 0, sizeof *cs);
}

/* A secret value as NUL-terminated text in secure memory. */
static int renc_blob_secret(struct renc_key **out, const char *v)
{
    size_t n = strlen(v);
    struct renc_key *k = renc_key_new(n + 1);
    RENC_RETURN_IF(!k, -RENC_E_NOMEM);
    memcpy(k->bytes, v, n);
    k->len = n; /* the NUL stays in the allocation, outside len */
    renc_key_free(*out);
    *out = k;
    return 0;
}

static int renc_blob_setstr(char **slot, const char *v)
{
    char *d = renc_strdup(v);
    RENC_RETURN_IF(!d, -RENC_E_NOMEM);
    renc_free(*slot);
    *slot = d;
    return 0;
}

/* One "Name=value" part. */
static int renc_blob_connstr_part(struct renc_blob_connstr *cs, const char *name, const char *v)
{
    if (strcasecmp(name, "AccountName") == 0)
        return renc_blob_setstr(&cs->account, v);
    if (strcasecmp(name, "AccountKey") == 0)
        return renc_blob_secret(&cs->key, v);
    if (strcasecmp(name, "SharedAccessSignature") == 0)
        return renc_blob_secret(&cs->sas, v[0] == '?' ? v + 1 : v);
    if (strcasecmp(name, "BlobEndpoint") == 0)
        return renc_blob_setstr(&cs->blob_endpoint, v);
    if (strcasecmp(name, "DefaultEndpointsProtocol") == 0)
        return renc_blob_setstr(&cs->protocol, v);
    if (strcasecmp(name, "EndpointSuffix") == 0)
        return renc_blob_setstr(&cs->suffix, v);
    if (strcasecmp(name, "UseDevelopmentStorage") == 0 && strcasecmp(v, "true") == 0) {
        int rc = renc_blob_setstr(&cs->account, RENC_BLOB_DEV_ACCOUNT);
        if (!rc)
            rc = renc_blob_secret(&cs->key, RENC_BLOB_DEV_KEY);
        if (!rc && !cs->blob_endpoint)
            rc = renc_blob_setstr(&cs->blob_endpoint, RENC_BLOB_DEV_ENDPOINT);
        return rc;
    }
    return 0; /* QueueEndpoint and the like: not ours */
}

int renc_blob_connstr_parse(struct renc_blob_connstr *cs, const char *s, char *why,
                            size_t why_max)
{
    memset(cs, 0, sizeof *cs);
    size_t n = strlen(s);
    char *work = renc_malloc(n + 1); /* holds the key: wiped below */
    RENC_RETURN_IF(!work, -RENC_E_NOMEM);
    memcpy(work, s, n + 1);
    int rc = 0;
    char *save = NULL;
    for (char *part = strtok_r(work, ";", &save); part && !rc; part = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*part))
            part++;
        if (!*part)
            continue;
        char *eq = strchr(part, '=');
        if (!eq || eq == part) {
            renc_blob_why(why, why_max, "the connection string has a part without Name=value");
            rc = -RENC_E_INVALID;
            break;
        }
        *eq = '\0';
        rc = renc_blob_connstr_part(cs, part, eq + 1);
    }
    renc_secmem_wipe(work, n + 1);
    renc_free(work);
    if (rc)
        renc_blob_connstr_cleanup(cs);
    return rc;
}

/* Drops the trailing '/'s of an endpoint. */
static void renc_blob_trim_slash(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
}

/* https://ACCOUNT.blob.core.windows.net, or another protocol and suffix. */
static int renc_blob_default_endpoint(const char *proto, const char *account,
                                      const char *suffix, char **out)
{
    proto = proto ? proto : "https";
    suffix = suffix ? suffix : RENC_BLOB_DEFAULT_SUFFIX;
    size_t n = strlen(proto) + strlen(account) + strlen(suffix) + 16;
    *out = renc_malloc(n);
    RENC_RETURN_IF(!*out, -RENC_E_NOMEM);
    snprintf(*out, n, "%s://%s.blob.%s", proto, account, suffix);
    return 0;
}

int renc_blob_connstr_endpoint(const struct renc_blob_connstr *cs, char **out)
{
    *out = NULL;
    if (cs->blob_endpoint) {
        *out = renc_strdup(cs->blob_endpoint);
        RENC_RETURN_IF(!*out, -RENC_E_NOMEM);
    } else if (cs->account) {
        int rc = renc_blob_default_endpoint(cs->protocol, cs->account, cs->suffix, out);
        RENC_RETURN_IF(rc, rc);
    } else {
        return 0;
    }
    renc_blob_trim_slash(*out);
    return 0;
}

/* ---- URLs ------------------------------------------------------------------ */

/* "ACCOUNT.blob.SUFFIX": the account, or 0 when host is not of that form. */
static int renc_blob_account_host(const char *host, char *account, size_t max)
{
    const char *dot = strchr(host, '.');
    if (!dot || dot == host || (size_t)(dot - host) >= max)
        return 0;
    if (strncasecmp(dot, ".blob.", 6) != 0 || !dot[6])
        return 0;
    for (const char *p = host; p < dot; p++)
        if (!isalnum((unsigned char)*p))
            return 0;
    memcpy(account, host, (size_t)(dot - host));
    account[dot - host] = '\0';
    for (char *p = account; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 1;
}

/* Container names: 3-63 of [a-z0-9-], or the special $root / $web. */
static int renc_blob_container_ok(const char *c)
{
    if (strcmp(c, "$root") == 0 || strcmp(c, "$web") == 0)
        return 1;
    size_t n = strlen(c);
    if (n < 3 || n > 63 || c[0] == '-' || c[n - 1] == '-')
        return 0;
    for (; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-'))
            return 0;
    return 1;
}

/* Cuts the first segment off the encoded path *p (no leading '/' left),
 * decoded into *seg. */
static int renc_blob_take_segment(const char **p, char **seg)
{
    const char *s = *p;
    while (*s == '/')
        s++;
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    *p = e ? e + 1 : s + n;
    return renc_url_unescape(seg, s, n);
}

/* The endpoint of an az:// URL's account. */
static int renc_blob_az_endpoint(const char *account, const char *conn_string, char **out,
                                 char *why, size_t why_max)
{
    struct renc_blob_connstr cs = {0};
    *out = NULL;
    if (conn_string) {
        int rc = renc_blob_connstr_parse(&cs, conn_string, why, why_max);
        RENC_RETURN_IF(rc, rc);
    }
    int rc = 0;
    if (cs.account && strcasecmp(cs.account, account) == 0)
        rc = renc_blob_connstr_endpoint(&cs, out);
    else
        rc = renc_blob_default_endpoint(cs.protocol, account, cs.suffix, out);
    renc_blob_connstr_cleanup(&cs);
    return rc;
}

/* The endpoint of an http(s) URL: scheme://host[:port][/ACCOUNT]. */
static int renc_blob_http_endpoint(const struct renc_url *u, const char *account_path,
                                   char **out)
{
    char *path = NULL;
    int rc = 0;
    if (account_path) {
        rc = renc_url_escape(&path, account_path, 0);
        RENC_RETURN_IF(rc, rc);
        size_t n = strlen(path);
        char *p = renc_malloc(n + 2);
        if (!p) {
            renc_free(path);
            return -RENC_E_NOMEM;
        }
        p[0] = '/';
        memcpy(p + 1, path, n + 1);
        renc_free(path);
        path = p;
    }
    char *host = renc_strdup(u->host); /* DNS names: one spelling in names and messages */
    if (!host) {
        renc_free(path);
        return -RENC_E_NOMEM;
    }
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rc = renc_url_build(out, u->scheme, host, u->port, path ? path : "/", NULL);
    renc_free(host);
    renc_free(path);
    if (!rc)
        renc_blob_trim_slash(*out);
    return rc;
}

/* Where the account is named: the host, the first path segment, or az://'s
 * host.  Fills loc's endpoint and account; *rest: the path after them. */
static int renc_blob_locate(const struct renc_url *u, const char *conn_string,
                            struct renc_blob_location *loc, const char **rest, char *why,
                            size_t why_max)
{
    char acct[64];
    *rest = u->path;
    if (strcmp(u->scheme, "az") == 0) {
        RENC_RETURN_IF(!(loc->account = renc_strdup(u->host)), -RENC_E_NOMEM);
        int rc = renc_blob_az_endpoint(u->host, conn_string, &loc->endpoint, why, why_max);
        RENC_RETURN_IF(rc, rc);
        struct renc_url ep;
        rc = renc_url_split(&ep, loc->endpoint);
        if (rc) {
            renc_blob_why(why, why_max, "the connection string's BlobEndpoint is not a URL");
            return rc;
        }
        loc->path_style = strcmp(ep.path, "/") != 0;
        renc_url_cleanup(&ep);
        return 0;
    }
    if (renc_blob_account_host(u->host, acct, sizeof acct)) {
        RENC_RETURN_IF(!(loc->account = renc_strdup(acct)), -RENC_E_NOMEM);
        return renc_blob_http_endpoint(u, NULL, &loc->endpoint);
    }
    loc->path_style = 1;
    int rc = renc_blob_take_segment(rest, &loc->account);
    RENC_RETURN_IF(rc, rc);
    if (!loc->account[0]) {
        renc_blob_why(why, why_max, "the URL names no storage account (http://HOST:PORT/ACCOUNT/CONTAINER)");
        return -RENC_E_INVALID;
    }
    return renc_blob_http_endpoint(u, loc->account, &loc->endpoint);
}

static int renc_blob_parse_parts(const struct renc_url *u, const char *conn_string,
                                 struct renc_blob_location *loc, char *why, size_t why_max)
{
    if (strcmp(u->scheme, "https") != 0 && strcmp(u->scheme, "http") != 0 &&
        strcmp(u->scheme, "az") != 0) {
        renc_blob_why(why, why_max, "not a blob URL (https://, http:// or az://)");
        return -RENC_E_INVALID;
    }
    const char *rest;
    int rc = renc_blob_locate(u, conn_string, loc, &rest, why, why_max);
    RENC_RETURN_IF(rc, rc);
    rc = renc_blob_take_segment(&rest, &loc->container);
    RENC_RETURN_IF(rc, rc);
    if (!loc->container[0]) {
        renc_blob_why(why, why_max, "the URL names no container");
        return -RENC_E_INVALID;
    }
    if (!renc_blob_container_ok(loc->container)) {
        renc_blob_why(why, why_max, "not a container name (3-63 of a-z, 0-9 and '-')");
        return -RENC_E_INVALID;
    }
    rc = renc_url_unescape(&loc->prefix, rest, strlen(rest));
    RENC_RETURN_IF(rc, rc);
    if (u->query && u->query[0])
        RENC_RETURN_IF(!(loc->sas = renc_strdup(u->query)), -RENC_E_NOMEM);
    return 0;
}

int renc_blob_parse_url(const char *url, const char *conn_string, struct renc_blob_location *loc,
                        char *why, size_t why_max)
{
    memset(loc, 0, sizeof *loc);
    renc_blob_why(why, why_max, "");
    struct renc_url u;
    int rc = renc_url_split(&u, url);
    if (rc) {
        renc_blob_why(why, why_max, "not a URL");
        return rc;
    }
    rc = renc_blob_parse_parts(&u, conn_string, loc, why, why_max);
    renc_url_cleanup(&u);
    if (rc) {
        if (why && !why[0])
            renc_blob_why(why, why_max, rc == -RENC_E_NOMEM ? "out of memory"
                                                             : "a malformed percent-escape");
        renc_blob_location_cleanup(loc);
    }
    return rc;
}

int renc_blob_location_describe(const struct renc_blob_location *loc, char *out, size_t max)
{
    int n = snprintf(out, max, "%s/%s%s%s", loc->endpoint, loc->container,
                     loc->prefix && loc->prefix[0] ? "/" : "", loc->prefix ? loc->prefix : "");
    RENC_RETURN_IF(n < 0 || (size_t)n >= max, -RENC_E_TOO_BIG);
    return 0;
}

/* Scanned by hand, not split: a message may need a URL redacted that does
 * not parse, and nothing of it may leak then either. */
int renc_blob_redact(const char *url, char *out, size_t max)
{
    static const char mask[] = "REDACTED";
    const char *q = strchr(url, '?');
    size_t o = 0;
    for (const char *p = url; *p;) {
        int param_start = q && p > q && (p[-1] == '?' || p[-1] == '&');
        if (param_start && strncasecmp(p, "sig=", 4) == 0) {
            RENC_RETURN_IF(o + 4 + sizeof mask > max, -RENC_E_TOO_BIG);
            memcpy(out + o, p, 4);
            memcpy(out + o + 4, mask, sizeof mask - 1);
            o += 4 + sizeof mask - 1;
            p += 4;
            while (*p && *p != '&' && *p != '#')
                p++;
            continue;
        }
        RENC_RETURN_IF(o + 2 > max, -RENC_E_TOO_BIG);
        out[o++] = *p++;
    }
    RENC_RETURN_IF(o + 1 > max, -RENC_E_TOO_BIG);
    out[o] = '\0';
    return 0;
}
