/* io/replace.c — see replace.h. */
#include "io/replace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int renc_file_id_at(int dirfd, const char *path, int flags, struct renc_file_id *id)
{
    struct statx sx;
    memset(id, 0, sizeof *id);
    if (statx(dirfd, path, flags | AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &sx) != 0)
        return -errno;
    id->dev = ((uint64_t)sx.stx_dev_major << 32) | sx.stx_dev_minor;
    id->ino = sx.stx_ino;
    id->has_btime = (sx.stx_mask & STATX_BTIME) != 0;
    if (id->has_btime) {
        id->btime_sec = sx.stx_btime.tv_sec;
        id->btime_nsec = sx.stx_btime.tv_nsec;
    }
    return 0;
}

int renc_file_id_fd(int fd, struct renc_file_id *id)
{
    return renc_file_id_at(fd, "", AT_EMPTY_PATH, id);
}

/* 1 when the file at path (relative to dirfd) is the one mine describes. */
static int renc_is_mine(int dirfd, const char *path, const struct renc_file_id *mine)
{
    struct renc_file_id at;
    return renc_file_id_at(dirfd, path, 0, &at) == 0 && at.dev == mine->dev &&
           at.ino == mine->ino && at.has_btime == mine->has_btime &&
           at.btime_sec == mine->btime_sec && at.btime_nsec == mine->btime_nsec;
}

int renc_replace_checked(int dirfd, const char *tmp, const char *final, const struct stat *read,
                         const struct renc_file_id *mine)
{
    /* Our staging file gone from its name (another writer removed it and
     * may be writing its own there): nothing of ours to put in place, and
     * the other's file is left alone. */
    if (mine && !renc_is_mine(dirfd, tmp, mine))
        return -RENC_E_CHANGED;
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
    /* What went in must be ours: another writer's staging file may have
     * taken the name since the check above.  Exchanged back at once, both
     * files keep their names. */
    if (mine && !renc_is_mine(dirfd, final, mine)) {
        if (renameat2(dirfd, tmp, dirfd, final, RENAME_EXCHANGE) != 0)
            return -errno;
        return -RENC_E_CHANGED;
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
