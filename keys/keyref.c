#include "keys/keyref.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "keys/pkcs11.h"

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

/* 1 when s[0..n) is HOST[:PORT]: a DNS name (letters, digits, '-', '.') or
 * a bracketed IPv6 literal, and a port of 1-5 digits.  Anything else (user
 * info, a second colon, a path) would make two spellings of one vault
 * compare apart, or a URL other than the one shown. */
static int renc_keyref_authority_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '[') {
        while (i < n && s[i] != ']')
            i++;
        RENC_RETURN_IF(i == n || i < 3, 0);
        for (size_t k = 1; k < i; k++)
            RENC_RETURN_IF(!isxdigit((unsigned char)s[k]) && s[k] != ':' && s[k] != '.', 0);
        i++;
    } else {
        while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
            i++;
        RENC_RETURN_IF(i == 0, 0);
    }
    if (i == n)
        return 1;
    RENC_RETURN_IF(s[i] != ':' || n - i < 2 || n - i > 6, 0);
    for (i++; i < n; i++)
        RENC_RETURN_IF(!isdigit((unsigned char)s[i]), 0);
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
    } else if (strncmp(s, "akv:", 4) == 0 && strncasecmp(s + 4, "https://", 8) == 0) {
        r.provider = RENC_PROVIDER_AKV;
        const char *host = s + 12;
        const char *keys = strstr(host, "/keys/");
        if (!keys || keys == host || (size_t)(keys - s - 4) > RENC_VAULT_MAX)
            return -RENC_E_BAD_KEYREF;
        RENC_RETURN_IF(!renc_keyref_authority_valid(host, (size_t)(keys - host)),
                       -RENC_E_BAD_KEYREF);
        /* The scheme is written in lower case; the host keeps its spelling
         * (the service answers with its own, see renc_keyref_same_key). */
        memcpy(r.vault, "https://", 8);
        memcpy(r.vault + 8, host, (size_t)(keys - host));
        r.vault[keys - s - 4] = '\0';
        rc = renc_keyref_split(&r, keys + 6);
    } else if (strncmp(s, "pkcs11:", 7) == 0) {
        /* RFC 7512 URIs: the canonical text without id= in vault, the
         * object label as name, the id as version (pkcs11_uri.c). */
        rc = renc_pkcs11_ref_parse(&r, s);
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
        return renc_pkcs11_ref_format(out, max_out, r);
    default:
        return -RENC_E_INVALID;
    }
    RENC_RETURN_IF(n < 0 || (size_t)n >= max_out, -RENC_E_TOO_BIG);
    return 0;
}

int renc_keyref_vault_origin(char *out, size_t max_out, const char *vault)
{
    size_t n = strlen(vault);
    RENC_RETURN_IF(n >= max_out, -RENC_E_TOO_BIG);
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)((vault[i] >= 'A' && vault[i] <= 'Z') ? vault[i] - 'A' + 'a' : vault[i]);
    /* https's default port is no part of the origin ("host:443" is "host";
     * an IPv6 literal "[::1]:443" is "[::1]"). */
    if (n > 4 && strcmp(out + n - 4, ":443") == 0 && strncmp(out, "https://", 8) == 0)
        out[n - 4] = '\0';
    return 0;
}

/* Vault hosts are compared as origins (case and the default port aside)
 * and key names case-blind, as the service treats them; local names are
 * file names and stay exact. */
int renc_keyref_same_key(const struct renc_keyref *a, const struct renc_keyref *b)
{
    if (a->provider != b->provider)
        return 0;
    if (a->provider != RENC_PROVIDER_AKV)
        return strcmp(a->vault, b->vault) == 0 && strcmp(a->name, b->name) == 0;
    char va[RENC_VAULT_MAX + 1], vb[RENC_VAULT_MAX + 1];
    return renc_keyref_vault_origin(va, sizeof va, a->vault) == 0 &&
           renc_keyref_vault_origin(vb, sizeof vb, b->vault) == 0 && strcmp(va, vb) == 0 &&
           strcasecmp(a->name, b->name) == 0;
}

int renc_keyref_same_version(const struct renc_keyref *a, const struct renc_keyref *b)
{
    if (!renc_keyref_same_key(a, b))
        return 0;
    return a->provider == RENC_PROVIDER_AKV ? strcasecmp(a->version, b->version) == 0
                                            : strcmp(a->version, b->version) == 0;
}

int renc_keyref_text_same_version(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 1;
    /* Local and pkcs11 refs are equal only as the same text: parse only
     * the vault refs, which per blob (a slot against the target) are the
     * only ones that can differ in spelling. */
    if (strncmp(a, "akv:", 4) != 0 || strncmp(b, "akv:", 4) != 0)
        return 0;
    struct renc_keyref ra, rb;
    return renc_keyref_parse(&ra, a) == 0 && renc_keyref_parse(&rb, b) == 0 &&
           renc_keyref_same_version(&ra, &rb);
}

int renc_keyref_text_is_version(const struct renc_keyref *r, const char *r_text, const char *text)
{
    if (strcmp(r_text, text) == 0)
        return 1;
    struct renc_keyref t;
    return r->provider == RENC_PROVIDER_AKV && strncmp(text, "akv:", 4) == 0 &&
           renc_keyref_parse(&t, text) == 0 && renc_keyref_same_version(&t, r);
}
