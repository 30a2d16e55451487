#include "common/note.h"

#include <stdio.h>

void renc_note_vsend(renc_note_fn *fn, void *arg, const char *prefix, const char *fmt,
                     va_list ap)
{
    if (!fn)
        return;
    char line[512];
    int n = prefix ? snprintf(line, sizeof line, "%s: ", prefix) : 0;
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fn(arg, line);
}
