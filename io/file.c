#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/memcheck.h"

#ifdef RENC_TEST_HOOKS
/* The operations counted, in the order of renc_fault_counts. */
static const char *const renc_fault_ops[] = {"write", "fsync", "journal", "commit", "enlist"};
#define RENC_FAULT_OPS (sizeof renc_fault_ops / sizeof renc_fault_ops[0])
static _Atomic unsigned long renc_fault_counts[RENC_FAULT_OPS];

int renc_fault_check(const char *op)
{
    const char *spec = getenv("RENC_FAULT");
    if (!spec)
        return 0;
    size_t oplen = strlen(op);
    if (strncmp(spec, op, oplen) != 0 || spec[oplen] != ':')
        return 0;
    char *end;
    unsigned long n = strtoul(spec + oplen + 1, &end, 10);
    if (*end != ':')
        return 0;
    const char *e = end + 1;
    size_t k = 0;
    while (k < RENC_FAULT_OPS && strcmp(renc_fault_ops[k], op) != 0)
        k++;
    if (k == RENC_FAULT_OPS)
        return 0;
    unsigned long c = atomic_fetch_add(&renc_fault_counts[k], 1) + 1;
    if (c != n)
        return 0;
    if (strcmp(e, "KILL") == 0) {
        RENC_MEM_SIMULATED_CRASH(); /* see common/memcheck.h */
        raise(SIGKILL);             /* crash tests: die at exactly this point */
    }
    if (strcmp(e, "STOP") == 0) {
        raise(SIGSTOP); /* until the test sends SIGCONT */
        return 0;
    }
    int err = strcmp(e, "ENOSPC") == 0 ? ENOSPC : strcmp(e, "EIO") == 0 ? EIO : atoi(e);
    return err > 0 ? -err : 0;
}

void renc_fault_reset(void)
{
    for (size_t k = 0; k < RENC_FAULT_OPS; k++)
        atomic_store(&renc_fault_counts[k], 0);
}
#else
int renc_fault_check(const char *op)
{
    (void)op;
    return 0;
}
#endif

int renc_file_read_full(int fd, void *buf, size_t len, size_t *got)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = read(fd, (uint8_t *)buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    *got = off;
    return 0;
}

int renc_file_pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + off, len - off, (off_t)(offset + off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    *got = off;
    return 0;
}

int renc_file_write_full(int fd, const void *buf, size_t len)
{
    int rc = renc_fault_check("write");
    if (rc)
        return rc;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, (const uint8_t *)buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    return 0;
}

int renc_file_tmp_open(const char *final_path, mode_t mode, char *tmp_path, size_t max_tmp,
                       int *fd_out)
{
    const char *slash = strrchr(final_path, '/');
    int dir_len = slash ? (int)(slash - final_path + 1) : 0;
    const char *base = slash ? slash + 1 : final_path;
    for (int attempt = 0; attempt < 16; attempt++) {
        uint32_t r;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            return -errno;
        int n = snprintf(tmp_path, max_tmp, "%.*s.%s" RENC_TMP_MARKER "%08x", dir_len,
                         final_path, base, r);
        if (n < 0 || (size_t)n >= max_tmp)
            return -ENAMETOOLONG;
        int fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

void renc_file_drop_cache(int fd)
{
    if (fd >= 0)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

int renc_file_syncfs(int fd)
{
    int rc = renc_fault_check("fsync");
    if (rc)
        return rc;
    return syncfs(fd) == 0 ? 0 : -errno;
}

int renc_file_fsync_parent(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    int rc = renc_fault_check("fsync");
    if (rc)
        return rc;
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

void renc_file_abort(int fd, const char *tmp_path)
{
    if (fd >= 0)
        close(fd);
    unlink(tmp_path);
}

int renc_file_commit(int fd, const char *tmp_path, const char *final_path)
{
    int rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc) {
        unlink(tmp_path);
        return rc;
    }
    /* Commit point: after this rename the final path holds the new content. */
    if (rename(tmp_path, final_path) != 0) {
        rc = -errno;
        unlink(tmp_path);
        return rc;
    }
    return renc_file_fsync_parent(final_path);
}
