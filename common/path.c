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
