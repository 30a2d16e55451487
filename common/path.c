#include "common/path.h"

#include <errno.h>
#include <string.h>

#include "common/error.h"

int renc_path_tidy(char *out, size_t max, const char *in, unsigned flags)
{
    RENC_RETURN_IF(max == 0, -ENAMETOOLONG);
    size_t w = 0;
    const char *r = in;
    while (*r) {
        while (*r == '/')
            r++;
        const char *seg = r;
        while (*r && *r != '/')
            r++;
        size_t n = (size_t)(r - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        RENC_RETURN_IF((flags & RENC_PATH_NO_DOTDOT) && n == 2 && seg[0] == '.' && seg[1] == '.',
                       -RENC_E_INVALID);
        int slash = (flags & RENC_PATH_ROOTED) || w > 0;
        RENC_RETURN_IF(w + (size_t)slash + n + 1 > max, -ENAMETOOLONG);
        if (slash)
            out[w++] = '/';
        memmove(out + w, seg, n); /* never ahead of r when out == in (not rooted) */
        w += n;
    }
    if (w == 0) {
        RENC_RETURN_IF(!(flags & RENC_PATH_ROOTED), -RENC_E_INVALID);
        RENC_RETURN_IF(max < 2, -ENAMETOOLONG);
        out[w++] = '/';
    }
    out[w] = '\0';
    return 0;
}

const char *renc_path_quote(char *out, size_t max, const char *path)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    if (max == 0)
        return out;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        char esc[5];
        size_t n = 0;
        unsigned char c = *p;
        const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                          : c == '\\' ? "\\\\" : NULL;
        if (named) {
            n = 2;
            memcpy(esc, named, 2);
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            n = 4;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (w + n + 1 > max) {
            /* Cut: "..." in place of the tail (when there is room for it). */
            size_t keep = max > 4 ? max - 4 : 0;
            w = w < keep ? w : keep;
            for (size_t i = 0; i < 3 && w + 1 < max; i++)
                out[w++] = '.';
            break;
        }
        memcpy(out + w, esc, n);
        w += n;
    }
    out[w] = '\0';
    return out;
}
