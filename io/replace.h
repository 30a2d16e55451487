/* io/replace.h — replacing a file with exactly the one that was read.
 *
 * A run reads a blob, works on it for a while, then replaces it.  Another
 * writer may have replaced (by rename), rewritten or removed it meanwhile;
 * its update must win.  So every commit checks it replaces exactly what it
 * read:
 *
 *   identity    st_dev, st_ino, size, mtime and ctime as fstat'ed on the
 *               descriptor the content was read from (ctime moves on any
 *               write, chmod or rename of the inode and cannot be set back)
 *   exchange    renameat2(RENAME_EXCHANGE) swaps the new file in and the
 *               current one out in one step; the one that came out is
 *               compared with the identity, and if it is not what was read
 *               the two are swapped back: the other writer's file returns
 *               to its name, untouched, and the new one is removed
 *
 * A check just before the exchange makes the swap-back rare; a crash in the
 * microseconds between an exchange that brought out a stranger's file and
 * its swap-back leaves that file under the temporary's name, where the
 * sweep (which removes only the tool's own temporaries by their tag) finds
 * and reports it — docs/JOURNAL.md says so.  Where the filesystem has no
 * RENAME_EXCHANGE the check is made just before a plain rename.
 *
 * An in-place header write reopens the path and compares the identity of
 * what it opened before writing.  A writer that rewrites a file in place
 * (without rename) between that check and the write is not detected: only
 * cooperative locking could, and other writers do not take ours.
 */
#ifndef RENC_IO_REPLACE_H
#define RENC_IO_REPLACE_H

#include <sys/stat.h>

/* renc_same_file: 1 when b is the file a described, unchanged. */
int renc_same_file(const struct stat *a, const struct stat *b);

/* renc_replace_checked: the durable temporary tmp (relative to dirfd, or
 * AT_FDCWD) takes final's place if final is still the file `read`
 * describes.  0 when replaced (the old file is unlinked), -RENC_E_CHANGED
 * when final is another file or gone (tmp removed, final untouched), or
 * -errno (tmp removed).  The directory is not made durable. */
int renc_replace_checked(int dirfd, const char *tmp, const char *final, const struct stat *read);

/* renc_unchanged_at: 0 when path (relative to dirfd) is still the file
 * `read` describes, -RENC_E_CHANGED when it is not (or is gone), -errno. */
int renc_unchanged_at(int dirfd, const char *path, const struct stat *read);

/* What renc_copy_attrs could not keep. */
#define RENC_ATTR_OWNER 1u   /* owner or group: not permitted */
#define RENC_ATTR_XATTR 2u   /* an extended attribute: not permitted or not supported */

/* renc_copy_attrs: gives the new file dst the owner, group, permission bits,
 * extended attributes (ACLs included) and modification time of the file
 * described by st (open as src).  Returns 0 with *lost flagging what was not
 * permitted (a non-root user cannot give a file to another user), or -errno
 * on any other failure. */
int renc_copy_attrs(int src, const struct stat *st, int dst, unsigned *lost);

/* renc_keep_mtime: sets fd's modification time back to st's (after an
 * in-place write). */
int renc_keep_mtime(int fd, const struct stat *st);

#endif
