/* io/replace.c — see replace.h. */
#include "io/replace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/error.h"

int renc_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int renc_unchanged_at(int dirfd, const char *path, const struct stat *read)
{
    struct stat now;
    if (fstatat(dirfd, path, &now, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT || errno == ENOTDIR ? -RENC_E_CHANGED : -errno;
    return renc_same_file(read, &now) ? 0 : -RENC_E_CHANGED;
}

int renc_replace_checked(int dirfd, const char *tmp, const char *final, const struct stat *read)
{
    int rc = renc_unchanged_at(dirfd, final, read);
    if (rc) {
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    if (renameat2(dirfd, tmp, dirfd, final, RENAME_EXCHANGE) != 0) {
        rc = -errno;
        if (rc == -EINVAL || rc == -ENOSYS) /* no exchange here: checked, then renamed */
            rc = renameat(dirfd, tmp, dirfd, final) == 0 ? 0 : -errno;
        else if (rc == -ENOENT)
            rc = -RENC_E_CHANGED; /* removed since the check */
        if (rc)
            unlinkat(dirfd, tmp, 0);
        return rc;
    }
    /* What came out is at tmp now: the blob that was read, or a stranger.
     * The exchange itself moved its ctime: the inode and its content's
     * size and mtime tell (the check above saw the ctime unchanged). */
    struct stat out;
    if (fstatat(dirfd, tmp, &out, AT_SYMLINK_NOFOLLOW) == 0 &&
        (out.st_dev != read->st_dev || out.st_ino != read->st_ino ||
         out.st_size != read->st_size || out.st_mtim.tv_sec != read->st_mtim.tv_sec ||
         out.st_mtim.tv_nsec != read->st_mtim.tv_nsec)) {
        if (renameat2(dirfd, tmp, dirfd, final, RENAME_EXCHANGE) != 0)
            return -errno; /* both kept: the stranger at tmp, reported by the sweep */
        unlinkat(dirfd, tmp, 0);
        return -RENC_E_CHANGED;
    }
    unlinkat(dirfd, tmp, 0);
    return 0;
}

/* Copies every extended attribute of src to dst. */
static int renc_copy_xattrs(int src, int dst, unsigned *lost)
{
    char small[1024];
    char *names = small;
    ssize_t len = flistxattr(src, small, sizeof small);
    if (len < 0 && errno == ERANGE) {
        ssize_t need = flistxattr(src, NULL, 0);
        if (need < 0 || !(names = malloc((size_t)need)))
            return need < 0 ? -errno : -ENOMEM;
        len = flistxattr(src, names, (size_t)need);
    }
    if (len < 0) {
        int rc = errno == ENOTSUP ? 0 : -errno;
        if (names != small)
            free(names);
        return rc;
    }
    int rc = 0;
    char vsmall[4096];
    for (ssize_t off = 0; rc == 0 && off < len; off += (ssize_t)strlen(names + off) + 1) {
        const char *name = names + off;
        char *val = vsmall;
        ssize_t vlen = fgetxattr(src, name, vsmall, sizeof vsmall);
        if (vlen < 0 && errno == ERANGE) {
            ssize_t need = fgetxattr(src, name, NULL, 0);
            if (need >= 0 && (val = malloc((size_t)need + 1)))
                vlen = fgetxattr(src, name, val, (size_t)need + 1);
            else
                val = vsmall;
        }
        if (vlen < 0)
            rc = -errno;
        else if (fsetxattr(dst, name, val, (size_t)vlen, 0) != 0) {
            if (errno == EPERM || errno == ENOTSUP || errno == EACCES) {
                /* e.g. trusted.* without privilege; security.* labels are
                 * the system's to give a new file (SELinux, SMACK). */
                if (strncmp(name, "security.", 9) != 0)
                    *lost |= RENC_ATTR_XATTR;
            }
            else
                rc = -errno;
        }
        if (val != vsmall)
            free(val);
    }
    if (names != small)
        free(names);
    return rc;
}

int renc_copy_attrs(int src, const struct stat *st, int dst, unsigned *lost)
{
    if ((st->st_uid != geteuid() || st->st_gid != getegid()) &&
        fchown(dst, st->st_uid, st->st_gid) != 0) {
        if (errno != EPERM)
            return -errno;
        *lost |= RENC_ATTR_OWNER;
        /* At least the group, where the user belongs to it. */
        if (st->st_gid != getegid() && fchown(dst, (uid_t)-1, st->st_gid) != 0 && errno != EPERM)
            return -errno;
    }
    /* After fchown, which clears set-id bits; and past the umask. */
    if (fchmod(dst, st->st_mode & 07777) != 0)
        return -errno;
    int rc = renc_copy_xattrs(src, dst, lost);
    if (rc)
        return rc;
    return renc_keep_mtime(dst, st);
}

int renc_keep_mtime(int fd, const struct stat *st)
{
    struct timespec t[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT}, st->st_mtim};
    return futimens(fd, t) == 0 ? 0 : -errno;
}
