/* azure/challenge.c — the Bearer challenge of an Azure service's 401
 * (azure/challenge.h). */
#include "azure/challenge.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

/* The value of param `name` in a WWW-Authenticate header, into out. */
static int renc_challenge_param(const char *hdr, const char *name, char *out, size_t max)
{
    size_t nl = strlen(name);
    for (const char *p = hdr; (p = strstr(p, name)) != NULL; p += nl) {
        if (p > hdr && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *q = p + nl;
        while (*q == ' ')
            q++;
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ')
            q++;
        int quoted = *q == '"';
        q += quoted;
        size_t len = quoted ? strcspn(q, "\"") : strcspn(q, ", ");
        RENC_RETURN_IF(len == 0 || len >= max, -RENC_E_VAULT_AUTH);
        memcpy(out, q, len);
        out[len] = '\0';
        return 0;
    }
    return -RENC_E_VAULT_AUTH;
}

/* The host of an https URL, into out. */
static int renc_challenge_host(const char *url, char *out, size_t max)
{
    const char *h = strstr(url, "://");
    RENC_RETURN_IF(!h, -RENC_E_VAULT_AUTH);
    h += 3;
    size_t n = strcspn(h, ":/");
    RENC_RETURN_IF(n == 0 || n >= max, -RENC_E_VAULT_AUTH);
    memcpy(out, h, n);
    out[n] = '\0';
    return 0;
}

int renc_azure_parse_challenge(const char *hdr, const char *host,
                               struct renc_azure_challenge *out)
{
    char auth[512], rhost[256];
    memset(out, 0, sizeof *out);
    RENC_RETURN_IF(strncasecmp(hdr, "Bearer", 6) != 0, -RENC_E_VAULT_AUTH);
    if (renc_challenge_param(hdr, "authorization", auth, sizeof auth) &&
        renc_challenge_param(hdr, "authorization_uri", auth, sizeof auth))
        return -RENC_E_VAULT_AUTH;
    if (renc_challenge_param(hdr, "resource", out->resource, sizeof out->resource) == 0) {
        int n = snprintf(out->scope, sizeof out->scope, "%s/.default", out->resource);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof out->scope, -RENC_E_VAULT_AUTH);
    } else if (renc_challenge_param(hdr, "scope", out->scope, sizeof out->scope) == 0) {
        snprintf(out->resource, sizeof out->resource, "%s", out->scope);
        char *d = strstr(out->resource, "/.default");
        if (d)
            *d = '\0';
    } else {
        return -RENC_E_VAULT_AUTH;
    }
    int rc = renc_challenge_host(out->resource, rhost, sizeof rhost);
    if (rc)
        return rc;
    /* The resource must be the service's own domain (or a parent of it), so
     * a service cannot send the tool for a token to some other one. */
    size_t vl = strlen(host), rl = strlen(rhost);
    int same = strcasecmp(host, rhost) == 0 ||
               (vl > rl && host[vl - rl - 1] == '.' &&
                strcasecmp(host + vl - rl, rhost) == 0);
    if (!same) {
        out->foreign = 1;
        return -RENC_E_VAULT_AUTH;
    }
    /* The tenant is the authority URL's last path segment. */
    char *t = auth + strlen(auth);
    while (t > auth && t[-1] == '/')
        *--t = '\0';
    char *slash = strrchr(auth, '/');
    RENC_RETURN_IF(!slash || !slash[1] || slash - auth < 8 || strlen(slash + 1) >= sizeof out->tenant,
                   -RENC_E_VAULT_AUTH);
    snprintf(out->tenant, sizeof out->tenant, "%s", slash + 1);
    return 0;
}
