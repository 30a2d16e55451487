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

/* renc_path_quote: path as a message may print it: each control
 * character (a newline, a tab, ESC...) and DEL as a C escape (\n, \t,
 * \x1b), a backslash as \\, everything else as it is; so a name can never
 * break a message's line or forge another one.  Cut with "..." when it does
 * not fit in max (RENC_PATH_QUOTE_MAX holds any path of PATH_MAX bytes).
 * Returns out.  JSON output needs none of this: jansson escapes. */
#define RENC_PATH_QUOTE_MAX (4 * 4096 + 1)
const char *renc_path_quote(char *out, size_t max, const char *path);

#endif
