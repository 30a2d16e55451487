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

#include <stdint.h>
#include <sys/stat.h>

/* A file's identity while it may be closed: its device and inode, and its
 * birth time where the filesystem keeps one (ext4, XFS, Btrfs, tmpfs): an
 * inode number freed by an unlink is given to the next file created, so the
 * number alone cannot tell a file from its successor.  The birth time is
 * taken at the clock's tick (a few ms): files born in one tick on one inode
 * number look the same. */
struct renc_file_id {
    uint64_t dev, ino;
    int64_t btime_sec;
    uint32_t btime_nsec;
    int has_btime;
};

/* renc_file_id_fd: fd's identity; 0 or -errno (id zeroed). */
int renc_file_id_fd(int fd, struct renc_file_id *id);

/* renc_same_file: 1 when b is the file a described, unchanged. */
int renc_same_file(const struct stat *a, const struct stat *b);

/* renc_replace_checked: the durable temporary tmp (relative to dirfd, or
 * AT_FDCWD) takes final's place if final is still the file `read`
 * describes.  0 when replaced (the old file is unlinked), -RENC_E_CHANGED
 * when final is another file or gone (tmp removed, final untouched), or
 * -errno (tmp removed).  mine (may be NULL: not checked) is the staging
 * file the caller made (renc_file_id_fd): when tmp is no longer that file
 * (another writer of the same name, as a worker whose lease lapsed meets
 * the worker that claimed its blob since), -RENC_E_CHANGED and both are
 * left as they are; checked again after the exchange, which is undone if
 * another's file went in.  The directory is not made durable. */
int renc_replace_checked(int dirfd, const char *tmp, const char *final, const struct stat *read,
                         const struct renc_file_id *mine);

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
