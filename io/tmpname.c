/* io/tmpname.c — see tmpname.h. */
#include "io/tmpname.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static int renc_tag_ok(const char *tag, size_t len)
{
    if (len < RENC_TMP_TAG_MIN || len > RENC_TMP_TAG_MAX)
        return 0;
    return strspn(tag, "0123456789abcdefghijklmnopqrstuvwxyz") == len;
}

int renc_tmpname_make(char *out, size_t max, const char *final, const char *tag)
{
    if (!tag || !renc_tag_ok(tag, strlen(tag)))
        return -EINVAL;
    const char *slash = strrchr(final, '/');
    int dir_len = slash ? (int)(slash - final + 1) : 0;
    const char *base = slash ? slash + 1 : final;
    if (!base[0])
        return -EINVAL; /* "dir/": no name to stand for */
    if (1 + strlen(base) + strlen(RENC_TMP_MARKER) + strlen(tag) > NAME_MAX)
        return -ENAMETOOLONG;
    int n = snprintf(out, max, "%.*s.%s" RENC_TMP_MARKER "%s", dir_len, final, base, tag);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

int renc_tmpname_parse(const char *base, char *tag, size_t tag_max, char *name,
                       size_t name_max)
{
    if (base[0] != '.' || strchr(base, '/'))
        return 0;
    /* The last marker: NAME itself may contain ".renc-tmp.". */
    const char *m = NULL;
    for (const char *p = base + 1; (p = strstr(p, RENC_TMP_MARKER)) != NULL; p++)
        m = p;
    if (!m || m == base + 1)
        return 0; /* no marker, or an empty NAME */
    const char *t = m + strlen(RENC_TMP_MARKER);
    size_t tlen = strlen(t);
    if (!renc_tag_ok(t, tlen))
        return 0;
    if (tag) {
        if (tag_max <= tlen)
            return 0;
        memcpy(tag, t, tlen + 1);
    }
    if (name) {
        size_t nlen = (size_t)(m - (base + 1));
        if (name_max <= nlen)
            return 0;
        memcpy(name, base + 1, nlen);
        name[nlen] = '\0';
    }
    return 1;
}

int renc_tmpname_reserved(const char *base)
{
    return renc_tmpname_parse(base, NULL, 0, NULL, 0);
}

int renc_tmpname_final(const char *path, char *out, size_t max)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char name[NAME_MAX + 1];
    if (!renc_tmpname_parse(base, NULL, 0, name, sizeof name))
        return -EINVAL;
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    int n = snprintf(out, max, "%.*s%s", dir_len, path, name);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

int renc_tmpname_random_tag(char tag[17])
{
    uint8_t r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return errno ? -errno : -EIO;
    for (int i = 0; i < 8; i++)
        snprintf(tag + 2 * i, 3, "%02x", r[i]);
    return 0;
}
