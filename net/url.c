/* net/url.c — net/url.h over libcurl's URL API (curl_url). */
#include "net/url.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/secmem.h"

void renc_url_cleanup(struct renc_url *u)
{
    renc_free(u->scheme);
    renc_free(u->host);
    renc_free(u->path);
    renc_free(u->query);
    memset(u, 0, sizeof *u);
}

/* One part of h as a renc_malloc'd copy (curl's own allocator stays
 * inside this file); *out NULL when the part is absent and may be. */
static int renc_url_part(CURLU *h, CURLUPart what, unsigned flags, char **out, int optional)
{
    char *v = NULL;
    CURLUcode uc = curl_url_get(h, what, &v, flags);
    *out = NULL;
    if (uc != CURLUE_OK) {
        curl_free(v);
        if (uc == CURLUE_OUT_OF_MEMORY)
            return -RENC_E_NOMEM;
        return optional ? 0 : -RENC_E_INVALID;
    }
    *out = renc_strdup(v);
    curl_free(v);
    return *out ? 0 : -RENC_E_NOMEM;
}

int renc_url_split(struct renc_url *u, const char *url)
{
    memset(u, 0, sizeof *u);
    CURLU *h = curl_url();
    RENC_RETURN_IF(!h, -RENC_E_NOMEM);
    /* Any scheme (az://), and the path exactly as written: a "/./" in a
     * blob name is part of the name, not a dot segment. */
    unsigned flags = CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS;
    int rc = curl_url_set(h, CURLUPART_URL, url, flags) == CURLUE_OK ? 0 : -RENC_E_INVALID;
    char *port = NULL;
    if (!rc)
        rc = renc_url_part(h, CURLUPART_SCHEME, 0, &u->scheme, 0);
    if (!rc)
        rc = renc_url_part(h, CURLUPART_HOST, 0, &u->host, 0);
    if (!rc)
        rc = renc_url_part(h, CURLUPART_PATH, 0, &u->path, 0);
    if (!rc)
        rc = renc_url_part(h, CURLUPART_QUERY, 0, &u->query, 1);
    if (!rc)
        rc = renc_url_part(h, CURLUPART_PORT, 0, &port, 1);
    if (!rc && port)
        u->port = (unsigned)strtoul(port, NULL, 10);
    renc_free(port);
    curl_url_cleanup(h);
    if (!rc && !u->host[0])
        rc = -RENC_E_INVALID;
    if (rc)
        renc_url_cleanup(u);
    return rc;
}

int renc_url_build(char **out, const char *scheme, const char *host, unsigned port,
                   const char *path, const char *query)
{
    *out = NULL;
    RENC_RETURN_IF(!path || path[0] != '/', -RENC_E_INVALID);
    /* Put together as text, then through curl_url whole: setting the path
     * or query as parts would lower-case their escapes ("%2F" -> "%2f"),
     * and a SharedKey signature covers the path exactly as it is sent. */
    size_t n = strlen(scheme) + strlen(host) + strlen(path) + (query ? strlen(query) : 0) + 32;
    char *text = renc_malloc(n), port_text[16] = "";
    RENC_RETURN_IF(!text, -RENC_E_NOMEM);
    if (port)
        snprintf(port_text, sizeof port_text, ":%u", port);
    snprintf(text, n, "%s://%s%s%s%s%s", scheme, host, port_text, path, query ? "?" : "",
             query ? query : "");
    CURLU *h = curl_url();
    unsigned flags = CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS;
    int rc = !h ? -RENC_E_NOMEM
                : curl_url_set(h, CURLUPART_URL, text, flags) == CURLUE_OK ? 0 : -RENC_E_INVALID;
    if (!rc)
        rc = renc_url_part(h, CURLUPART_URL, flags, out, 0);
    curl_url_cleanup(h);
    renc_secmem_wipe(text, n); /* the query may hold a SAS */
    renc_free(text);
    return rc;
}

int renc_url_escape_into(char *out, size_t max, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                    ch == '~' || (keep_slash && ch == '/');
        RENC_RETURN_IF(k + (plain ? 1 : 3) >= max, -RENC_E_TOO_BIG);
        if (plain) {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
    return 0;
}

int renc_url_escape(char **out, const char *s, int keep_slash)
{
    size_t n = strlen(s);
    *out = NULL;
    RENC_RETURN_IF(n > (SIZE_MAX - 1) / 3, -RENC_E_TOO_BIG);
    char *o = renc_malloc(n * 3 + 1);
    RENC_RETURN_IF(!o, -RENC_E_NOMEM);
    int rc = renc_url_escape_into(o, n * 3 + 1, s, keep_slash);
    if (rc) {
        renc_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int renc_url_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int renc_url_unescape(char **out, const char *s, size_t len)
{
    *out = NULL;
    char *o = renc_malloc(len + 1);
    RENC_RETURN_IF(!o, -RENC_E_NOMEM);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int h = i + 2 < len ? renc_url_hexval(s[i + 1]) : -1;
            int l = h >= 0 ? renc_url_hexval(s[i + 2]) : -1;
            if (h < 0 || l < 0) {
                renc_free(o);
                return -RENC_E_INVALID;
            }
            ch = h * 16 + l;
            i += 2;
        }
        if (ch == 0) {
            renc_free(o);
            return -RENC_E_INVALID;
        }
        o[k++] = (char)ch;
    }
    o[k] = '\0';
    *out = o;
    return 0;
}

int renc_url_query_add(char **q, const char *name, const char *value)
{
    char *ev = NULL;
    int rc = renc_url_escape(&ev, value, 0);
    RENC_RETURN_IF(rc, rc);
    size_t old = *q ? strlen(*q) : 0, nl = strlen(name), vl = strlen(ev);
    char *n = renc_realloc(*q, old + 1 + nl + 1 + vl + 1);
    if (!n) {
        renc_free(ev);
        return -RENC_E_NOMEM;
    }
    size_t k = old;
    if (old)
        n[k++] = '&';
    memcpy(n + k, name, nl);
    k += nl;
    n[k++] = '=';
    memcpy(n + k, ev, vl + 1);
    renc_free(ev);
    *q = n;
    return 0;
}
