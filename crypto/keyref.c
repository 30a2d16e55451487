#include "crypto/keyref.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"

int renc_keyref_name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Splits "NAME[/VERSION]" into the ref. */
static int renc_keyref_split(struct renc_keyref *r, const char *s)
{
    const char *slash = strchr(s, '/');
    size_t name_len = slash ? (size_t)(slash - s) : strlen(s);
    RENC_RETURN_IF(name_len == 0 || name_len > RENC_KEY_NAME_MAX, -RENC_E_BAD_KEYREF);
    memcpy(r->name, s, name_len);
    r->name[name_len] = '\0';
    RENC_RETURN_IF(!renc_keyref_name_valid(r->name, RENC_KEY_NAME_MAX), -RENC_E_BAD_KEYREF);
    if (slash) {
        const char *v = slash + 1;
        RENC_RETURN_IF(!renc_keyref_name_valid(v, RENC_KEY_VERSION_MAX), -RENC_E_BAD_KEYREF);
        strcpy(r->version, v);
    }
    return 0;
}

int renc_keyref_parse(struct renc_keyref *out, const char *s)
{
    struct renc_keyref r;
    memset(&r, 0, sizeof r);
    int rc = -RENC_E_BAD_KEYREF;
    if (strncmp(s, "local:", 6) == 0) {
        r.provider = RENC_PROVIDER_LOCAL;
        rc = renc_keyref_split(&r, s + 6);
    } else if (strncmp(s, "akv:https://", 12) == 0) {
        r.provider = RENC_PROVIDER_AKV;
        const char *host = s + 12;
        const char *keys = strstr(host, "/keys/");
        if (!keys || keys == host || (size_t)(keys - s - 4) > RENC_VAULT_MAX)
            return -RENC_E_BAD_KEYREF;
        for (const char *c = host; c < keys; c++)
            if (*c == '/' || *c == '?' || *c == '#' || *c == '@' || *c <= ' ')
                return -RENC_E_BAD_KEYREF;
        memcpy(r.vault, s + 4, (size_t)(keys - s - 4));
        r.vault[keys - s - 4] = '\0';
        rc = renc_keyref_split(&r, keys + 6);
    } else if (strncmp(s, "pkcs11:", 7) == 0 && s[7] != '\0') {
        /* RFC 7512 URIs are kept whole as the "name" until the provider
         * exists; they carry no version. */
        r.provider = RENC_PROVIDER_PKCS11;
        RENC_RETURN_IF(strlen(s) > RENC_VAULT_MAX, -RENC_E_BAD_KEYREF);
        strcpy(r.vault, s);
        rc = 0;
    }
    if (rc == 0)
        *out = r;
    return rc;
}

int renc_keyref_format(char *out, size_t max_out, const struct renc_keyref *r)
{
    int n;
    const char *sep = r->version[0] ? "/" : "";
    switch (r->provider) {
    case RENC_PROVIDER_LOCAL:
        n = snprintf(out, max_out, "local:%s%s%s", r->name, sep, r->version);
        break;
    case RENC_PROVIDER_AKV:
        n = snprintf(out, max_out, "akv:%s/keys/%s%s%s", r->vault, r->name, sep, r->version);
        break;
    case RENC_PROVIDER_PKCS11:
        n = snprintf(out, max_out, "%s", r->vault);
        break;
    default:
        return -RENC_E_INVALID;
    }
    RENC_RETURN_IF(n < 0 || (size_t)n >= max_out, -RENC_E_TOO_BIG);
    return 0;
}

int renc_keyref_same_key(const struct renc_keyref *a, const struct renc_keyref *b)
{
    return a->provider == b->provider && strcmp(a->vault, b->vault) == 0 &&
           strcmp(a->name, b->name) == 0;
}
