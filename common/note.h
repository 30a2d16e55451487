/* common/note.h — the one-line notes a lower layer hands up for the
 * operator.  Only reencrypt/ prints: a provider, store or policy is given a
 * note hook (function and argument) and calls it with a formatted line. */
#ifndef RENC_COMMON_NOTE_H
#define RENC_COMMON_NOTE_H

#include <stdarg.h>

/* A note hook: called from any thread with one line, never a secret. */
typedef void renc_note_fn(void *arg, const char *line);

/* renc_note_vsend: formats "PREFIX: " (when prefix is not NULL) and fmt
 * into one line of at most 511 bytes (longer is cut) and gives it to fn;
 * nothing when fn is NULL. */
void renc_note_vsend(renc_note_fn *fn, void *arg, const char *prefix, const char *fmt,
                     va_list ap) __attribute__((format(printf, 4, 0)));

#endif
