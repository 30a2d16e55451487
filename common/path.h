/* common/path.h — lexical path tidying (no filesystem access). */
#ifndef RENC_COMMON_PATH_H
#define RENC_COMMON_PATH_H

#include <stddef.h>

enum {
    RENC_PATH_ROOTED = 1,    /* the result starts with '/' (an absolute path) */
    RENC_PATH_NO_DOTDOT = 2, /* a ".." component is refused */
};

/* renc_path_tidy: writes in to out (at most max bytes with the NUL) without
 * empty and "." components, joined by single slashes.  out may equal in when
 * RENC_PATH_ROOTED is not set.  ".." is kept as it is (symbolic links make
 * it more than lexical) unless RENC_PATH_NO_DOTDOT refuses it.  Returns 0,
 * -ENAMETOOLONG, or -RENC_E_INVALID for a refused ".." or a relative path
 * with no component left; out is unspecified on failure. */
int renc_path_tidy(char *out, size_t max, const char *in, unsigned flags);

#endif
