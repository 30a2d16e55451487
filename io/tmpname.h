/* io/tmpname.h — the one rule for the tool's temporary files.
 *
 * A temporary sits beside the file it will replace, as
 *
 *     DIR/.NAME.renc-tmp.TAG        TAG: 8 to 32 characters of [0-9a-z]
 *
 * Such a name is reserved: the tool refuses it as user data (put) and never
 * treats it as a blob (run, verify, backup).  A name that merely contains
 * ".renc-tmp." (no leading dot, or another tail) is an ordinary file.
 *
 * The name alone proves nothing: a user can create one.  The tool deletes a
 * reserved name only when its TAG is one the tool itself recorded durably
 * before it made the file — a run's id in its journal, a staged operation's
 * tag in the catalog — never on the name's shape, nor on a pid that looks
 * dead.  Reserved names with other tags are left alone and reported.
 */
#ifndef RENC_IO_TMPNAME_H
#define RENC_IO_TMPNAME_H

#include <stddef.h>

#define RENC_TMP_MARKER ".renc-tmp."
#define RENC_TMP_TAG_MIN 8
#define RENC_TMP_TAG_MAX 32

/* renc_tmpname_make: the temporary for final (a path) with tag: "DIR/.NAME
 * .renc-tmp.TAG".  -ENAMETOOLONG when it does not fit in max (or the base
 * name with its decoration exceeds NAME_MAX), -EINVAL for a bad tag. */
int renc_tmpname_make(char *out, size_t max, const char *final, const char *tag);

/* renc_tmpname_parse: 1 when base (a name, no '/') is a reserved temporary
 * name; then, when given, the tag (NUL-terminated, tag_max >= 33) and the
 * name of the file it stands for (NUL-terminated) are copied out.  0
 * otherwise. */
int renc_tmpname_parse(const char *base, char *tag, size_t tag_max, char *name,
                       size_t name_max);

/* renc_tmpname_reserved: renc_tmpname_parse without the copies. */
int renc_tmpname_reserved(const char *base);

/* renc_tmpname_final: for a temporary's path, the path of the file it
 * stands for (its directory + NAME).  -EINVAL when path is not reserved. */
int renc_tmpname_final(const char *path, char *out, size_t max);

/* renc_tmpname_random_tag: 16 random hex digits (NUL-terminated). */
int renc_tmpname_random_tag(char tag[17]);

#endif
