/* store/local.c — the local-filesystem store: a tree (or files, or a
 * manifest's list) on this machine.  Listing walks it (store/scan.c);
 * a replacement is staged in a temporary beside the blob (io/tmpname.h),
 * made durable, put in place by a checked rename (io/replace.h), and its
 * directory made durable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "io/replace.h"
#include "io/tmpname.h"
#include "store/local.h"

struct renc_store_local {
    struct renc_store base;
    struct renc_store_spec spec; /* borrowed: the caller keeps it alive */
};

static const struct renc_store_spec *renc_local_spec(const struct renc_store *s)
{
    return &((const struct renc_store_local *)s)->spec;
}

static const char *renc_local_describe(const struct renc_store *s)
{
    const struct renc_store_spec *sp = renc_local_spec(s);
    if (sp->manifest)
        return sp->manifest;
    if (sp->root)
        return sp->root;
    return sp->source_count ? sp->sources[0] : ".";
}

/* A tree's walk streams each item out as it is found (no list of the
 * tree is held: a run over millions of files lists them in bounded
 * memory); a manifest's list is read whole (its duplicates are found
 * across it), then streamed out.  A callback may take an item's strings. */
static int renc_local_list(struct renc_store *s, const struct renc_store_lister *l,
                           struct renc_store_list_stats *stats)
{
    const struct renc_store_spec *sp = renc_local_spec(s);
    if (!sp->manifest) {
        uint64_t special = 0;
        int rc = renc_scan_walk(l, sp->sources, sp->source_count, sp->exclude, &special);
        if (stats) {
            stats->skipped_special = special;
            stats->duplicates = 0;
        }
        return rc;
    }
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    int rc = renc_scan_manifest(&scan, sp->manifest);
    for (size_t i = 0; rc == 0 && l->error && i < scan.error_count; i++)
        rc = l->error(l->arg, scan.errors[i].path, scan.errors[i].rc);
    for (size_t i = 0; rc == 0 && l->temp && i < scan.temp_count; i++)
        rc = l->temp(l->arg, scan.temps[i]);
    for (size_t i = 0; rc == 0 && l->item && i < scan.count; i++)
        rc = l->item(l->arg, &scan.items[i]);
    if (stats) {
        stats->skipped_special = scan.skipped_special;
        stats->duplicates = scan.duplicates;
    }
    renc_scan_cleanup(&scan);
    return rc;
}

static const char *renc_local_ring_path(struct renc_store *s, const struct renc_scan_item *it)
{
    (void)s;
    return it->path;
}

static int renc_local_open_read(struct renc_store *s, const struct renc_scan_item *it, int *fd,
                                struct stat *id)
{
    (void)s;
    int f = open(it->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return -errno;
    if (fstat(f, id) != 0) {
        int rc = -errno;
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

static int renc_local_read_range(struct renc_store *s, const struct renc_scan_item *it, int fd,
                                 uint64_t off, void *buf, size_t len, size_t *got)
{
    (void)s;
    (void)it;
    return renc_file_pread_full(fd, buf, len, off, got);
}

/* The mirror's folders under the root are made or found, never followed:
 * a symbolic link among them would send the blob outside the mirror. */
static int renc_local_mirror_dirs(char *path, size_t root_len)
{
    for (char *p = path + root_len + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int rc = mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
        if (rc == 0 && lstat(path, &st) != 0)
            rc = -errno;
        else if (rc == 0 && !S_ISDIR(st.st_mode))
            rc = -RENC_E_NOT_REGULAR;
        *p = '/';
        if (rc)
            return rc;
    }
    return 0;
}

/* The staging file beside txn->final: tagged with the run's id (the same in
 * every attempt), so a resume removes the one a crash left (clean), and
 * the one of a run --restart forgot (stale_tag). */
static int renc_local_tmp(struct renc_store_txn *txn, const struct renc_store_tags *tags)
{
    int rc = renc_tmpname_make(txn->tmp, sizeof txn->tmp, txn->final, tags->tag);
    if (rc)
        return rc;
    if (tags->clean && unlink(txn->tmp) != 0 && errno != ENOENT)
        return -errno;
    if (tags->stale_tag) {
        char stale[RENC_STORE_PATH_MAX];
        if (renc_tmpname_make(stale, sizeof stale, txn->final, tags->stale_tag) == 0 &&
            unlink(stale) != 0 && errno != ENOENT)
            return -errno;
    }
    return 0;
}

static int renc_local_begin(struct renc_store *s, const struct renc_scan_item *it,
                            enum renc_commit_mode mode, const struct renc_store_tags *tags,
                            struct renc_store_txn *txn)
{
    const struct renc_store_spec *sp = renc_local_spec(s);
    txn->mode = mode;
    txn->tmp[0] = '\0';
    txn->fd = -1;
    txn->priv = NULL;
    txn->appended = 0;
    memset(&txn->tmp_id, 0, sizeof txn->tmp_id);
    int n = mode == RENC_COMMIT_MIRROR
                ? snprintf(txn->final, sizeof txn->final, "%s/%s", sp->root, it->rel)
                : snprintf(txn->final, sizeof txn->final, "%s", it->path);
    if (n < 0 || (size_t)n >= sizeof txn->final)
        return -ENAMETOOLONG;
    int rc = mode == RENC_COMMIT_MIRROR ? renc_local_mirror_dirs(txn->final, strlen(sp->root)) : 0;
    if (rc == 0 && mode != RENC_COMMIT_HEADER_IN_PLACE && tags)
        rc = renc_local_tmp(txn, tags);
    return rc;
}

void renc_store_fd_restore_header(int fd, const uint8_t *old_hdr, size_t len)
{
    /* If this fails too, the journal's intent is left for the next
     * attempt's recovery. */
    if (pwrite(fd, old_hdr, len, 0) == (ssize_t)len)
        (void)fdatasync(fd);
}

static int renc_local_write_header(struct renc_store *s, const struct renc_store_txn *txn,
                                   const struct stat *id, const uint8_t *new_hdr,
                                   const uint8_t *old_hdr, size_t len)
{
    (void)s;
    int fd = open(txn->final, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? -RENC_E_CHANGED : -errno;
    struct stat now;
    if (fstat(fd, &now) != 0 || !renc_same_file(id, &now)) {
        close(fd); /* not the blob that was read: not ours to write */
        return -RENC_E_CHANGED;
    }
    int rc = renc_fault_check("write");
    if (rc == 0 && pwrite(fd, new_hdr, len, 0) != (ssize_t)len)
        rc = errno ? -errno : -EIO;
    if (rc == 0)
        rc = renc_keep_mtime(fd, id);
    if (rc == 0)
        rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc)
        renc_store_fd_restore_header(fd, old_hdr, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno; /* after a durable write: the header is new, as journaled */
    return rc;
}

/* The streamed path's staging file (a blob read from another store):
 * created on the first append, written in order, made durable by commit. */
static int renc_local_append(struct renc_store *s, struct renc_store_txn *txn, const void *buf,
                             size_t len)
{
    (void)s;
    if (txn->fd < 0) {
        txn->fd = open(txn->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (txn->fd < 0)
            return -errno;
    }
    int rc = renc_fault_check("write");
    if (rc == 0)
        rc = renc_file_write_full(txn->fd, buf, len);
    if (rc == 0)
        txn->appended += len;
    return rc;
}

static int renc_local_reserve(struct renc_store *s, struct renc_store_txn *txn, uint64_t n,
                              uint64_t *first)
{
    (void)s;
    (void)n;
    *first = 0;
    return txn->fd >= 0 ? 0 : -RENC_E_INVALID; /* the header was appended first */
}

/* A piece of the staging file at its offset (pwrite: many threads at once). */
static int renc_local_stage_at(struct renc_store *s, struct renc_store_txn *txn, uint64_t index,
                               uint64_t offset, const void *buf, size_t len)
{
    (void)s;
    (void)index;
    int rc = renc_fault_check("write");
    for (size_t done = 0; rc == 0 && done < len;) {
        ssize_t n = pwrite(txn->fd, (const uint8_t *)buf + done, len - done,
                           (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;
        else
            done += (size_t)n;
    }
    return rc;
}

/* An appended staging file made durable and closed before its commit. */
static int renc_local_seal(struct renc_store_txn *txn)
{
    if (txn->fd < 0)
        return 0;
    int rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(txn->fd) != 0)
        rc = -errno;
    if (close(txn->fd) != 0 && rc == 0)
        rc = -errno;
    txn->fd = -1;
    return rc;
}

static int renc_local_unchanged(struct renc_store *s, const struct renc_scan_item *it,
                                const struct stat *id)
{
    (void)s;
    return renc_unchanged_at(AT_FDCWD, it->path, id);
}

/* Commit point.  REPLACE: an exchange checked on both sides; MIRROR: the
 * mirror's file renamed (the caller checked the source unchanged). */
static int renc_local_commit(struct renc_store *s, struct renc_store_txn *txn,
                             const struct stat *id)
{
    (void)s;
    if (txn->fd >= 0) /* the streamed path's staging file, still open */
        renc_store_txn_mine(txn, txn->fd);
    int rc = renc_local_seal(txn);
    if (rc) {
        unlink(txn->tmp);
        return rc;
    }
    if (txn->mode == RENC_COMMIT_REPLACE)
        return renc_replace_checked(AT_FDCWD, txn->tmp, txn->final, id,
                                    txn->tmp_id.ino ? &txn->tmp_id : NULL);
    rc = rename(txn->tmp, txn->final) == 0 ? 0 : -errno;
    if (rc)
        unlink(txn->tmp);
    return rc;
}

/* Each directory of the txns' finals made durable once. */
static int renc_local_barrier(struct renc_store *s, struct renc_store_txn *const *txns, size_t n)
{
    (void)s;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = txns[i]->final, *slash = strrchr(f, '/');
        size_t dl = slash ? (size_t)(slash - f) : 0;
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++) {
            const char *g = txns[k]->final, *gs = strrchr(g, '/');
            seen = (gs ? (size_t)(gs - g) : 0) == dl && (slash != NULL) == (gs != NULL) &&
                   memcmp(f, g, dl) == 0;
        }
        if (seen)
            continue;
        char dir[RENC_STORE_PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)dl : 1, slash ? f : ".");
        if (dir[0] == '\0')
            strcpy(dir, "/");
        int r = renc_fault_check("fsync");
        if (r == 0) {
            int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            r = fd < 0 ? -errno : fsync(fd) == 0 ? 0 : -errno;
            if (fd >= 0)
                close(fd);
        }
        if (r && rc == 0)
            rc = r;
    }
    return rc;
}

static void renc_local_abort(struct renc_store *s, struct renc_store_txn *txn)
{
    (void)s;
    if (txn->fd >= 0)
        close(txn->fd);
    txn->fd = -1;
    if (txn->tmp[0])
        unlink(txn->tmp);
}

static int renc_local_remove(struct renc_store *s, const char *name)
{
    (void)s;
    return unlink(name) == 0 ? 0 : -errno;
}

/* Removes the temporaries crashed attempts of this run left: those whose
 * tag is one the journal recorded before any was made.  The caller holds
 * the sources' locks, so no live run is writing them.  Other files with a
 * temporary's name are not provably ours: left alone and counted. */
static int renc_local_sweep(struct renc_store *s, char *const *temps, size_t ntemps,
                            const char *const *tags, size_t ntags, struct renc_store_sweep *out)
{
    (void)s;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < ntemps; i++) {
        const char *slash = strrchr(temps[i], '/');
        char tag[RENC_TMP_TAG_MAX + 1];
        if (!renc_tmpname_parse(slash ? slash + 1 : temps[i], tag, sizeof tag, NULL, 0))
            continue;
        int ours = 0;
        for (size_t k = 0; k < ntags && !ours; k++)
            ours = tags[k] && strcmp(tags[k], tag) == 0;
        if (ours && unlink(temps[i]) == 0) {
            out->removed++;
        } else if (!ours) {
            if (out->foreign++ == 0)
                snprintf(out->example, sizeof out->example, "%s", temps[i]);
        }
    }
    return 0;
}

static void renc_local_free(struct renc_store *s)
{
    renc_free(s);
}

static const struct renc_store_ops renc_store_local_ops = {
    .kind = RENC_STORE_LOCAL,
    .kind_name = "local",
    .describe = renc_local_describe,
    .list = renc_local_list,
    .ring_path = renc_local_ring_path,
    .open_read = renc_local_open_read,
    .read_range = renc_local_read_range,
    .begin = renc_local_begin,
    .write_header = renc_local_write_header,
    .append = renc_local_append,
    .reserve = renc_local_reserve,
    .stage_at = renc_local_stage_at,
    .unchanged = renc_local_unchanged,
    .commit = renc_local_commit,
    .barrier = renc_local_barrier,
    .abort = renc_local_abort,
    .remove = renc_local_remove,
    .sweep = renc_local_sweep,
    .free = renc_local_free,
};

int renc_store_local_new(struct renc_store **out, const struct renc_store_spec *spec)
{
    struct renc_store_local *l = renc_calloc(1, sizeof *l);
    RENC_RETURN_IF(!l, -RENC_E_NOMEM);
    l->base.ops = &renc_store_local_ops;
    if (spec)
        l->spec = *spec;
    *out = &l->base;
    return 0;
}
