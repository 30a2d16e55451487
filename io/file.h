/* io/file.h — plain POSIX file helpers and the crash-safe replace.
 *
 * A new file is written under a temporary name beside its final path, made
 * durable, renamed over the final path, and the directory made durable: at
 * every instant the final path holds either the whole old content or the
 * whole new one.  Errors are -errno, passed through.
 */
#ifndef RENC_IO_FILE_H
#define RENC_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "io/tmpname.h" /* the temporary-name rule */

/* renc_file_read_full: reads up to len bytes at the current offset, retrying
 * short reads and EINTR; *got < len only at end of file. */
int renc_file_read_full(int fd, void *buf, size_t len, size_t *got);

/* renc_file_pread_full: the same at an offset. */
int renc_file_pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got);

/* renc_file_write_full: writes all len bytes, retrying short writes. */
int renc_file_write_full(int fd, const void *buf, size_t len);

/* renc_file_tmp_open: creates the temporary beside final_path (O_EXCL, the
 * given mode); its path goes to tmp_path. */
int renc_file_tmp_open(const char *final_path, mode_t mode, char *tmp_path, size_t max_tmp,
                       int *fd_out);

/* renc_file_commit: fsync(fd), close(fd), rename(tmp, final), fsync of the
 * directory.  The commit point is the rename.  On failure fd is closed and
 * the temporary removed; final_path is untouched. */
int renc_file_commit(int fd, const char *tmp_path, const char *final_path);

/* renc_file_abort: closes fd (if >= 0) and removes the temporary. */
void renc_file_abort(int fd, const char *tmp_path);

/* renc_file_fsync_parent: makes the entry of path in its directory durable. */
int renc_file_fsync_parent(const char *path);

/* renc_file_syncfs: makes everything written to fd's filesystem durable,
 * by anyone (syncfs(2): data, inodes and directory entries, then the
 * device's cache; its writeback errors are reported since Linux 5.8).
 * One call stands for many fsyncs; it also flushes other programs' dirty
 * data on that filesystem (docs/JOURNAL.md). */
int renc_file_syncfs(int fd);

/* renc_file_drop_cache: asks the kernel to drop fd's pages from the page
 * cache (clean ones: call it after the data is durable, or on a file only
 * read).  A bulk run reads and writes each byte once: keeping them would
 * evict everything else the machine caches.  Advice only: no error. */
void renc_file_drop_cache(int fd);

/* Test seam (RENC_TEST_HOOKS builds): the environment variable RENC_FAULT,
 * "OP:N:ERRNO" with OP write, fsync, journal, enlist or commit, fails the
 * N-th write, durability barrier, journal commit, part of a listing
 * entered into the journal or commit of a blob's new version (its rename,
 * for a local tree) of the process with that errno
 * (ENOSPC, EIO or a number); "OP:N:KILL" kills the process there with
 * SIGKILL instead, for crash tests; "OP:N:STOP" stops it there (SIGSTOP)
 * and goes on once it is continued, for a test that changes the world
 * under a run at an exact point. */
int renc_fault_check(const char *op);

#ifdef RENC_TEST_HOOKS
/* renc_fault_reset: zeroes the write and fsync counters of renc_fault_check,
 * so a test can count from its own first write. */
void renc_fault_reset(void);
#endif

#endif
