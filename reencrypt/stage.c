/* reencrypt/stage.c — see stage.h. */
#include "reencrypt/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "io/ring.h"
#include "reencrypt/cli.h"
#include "env/envdata.h"

#define RENC_STAGE_SWEEP_DEPTH 256

void renc_stage_init(struct renc_stage *s, int replace)
{
    memset(s, 0, sizeof *s);
    s->replace = replace;
    s->root_fd = -1;
    s->dir_fd = -1;
}

/* ---- destinations, without following links ---------------------------- */

static int renc_openat2_dir(int root_fd, const char *rel)
{
#ifdef SYS_openat2
    struct open_how how = {
        .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
#else
    (void)root_fd;
    (void)rel;
    return -ENOSYS;
#endif
}

/* One component below fd: opened as a folder, without following a link;
 * made first when missing and create.  Names a failure's cause. */
static int renc_dest_step(int fd, const char *name, int create, int *out)
{
    int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
        if (mkdirat(fd, name, 0700) != 0 && errno != EEXIST)
            return -errno;
        /* The new folder's entry is durable before anything goes in it:
         * a rolled-forward stage finds its temporaries where it left them. */
        if (fsync(fd) != 0)
            return -errno;
        next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next >= 0) {
        *out = next;
        return 0;
    }
    int e = errno;
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return S_ISLNK(st.st_mode) ? -ELOOP : S_ISDIR(st.st_mode) ? -e : -ENOTDIR;
    return -e;
}

int renc_dest_dir(int root_fd, const char *rel_dir, int create, int *out, char *bad, size_t max)
{
    int fd = rel_dir[0] ? renc_openat2_dir(root_fd, rel_dir) : -ENOENT;
    if (fd >= 0) {
        *out = fd;
        return 0;
    }
    /* openat2 refused or is missing: component by component, which also
     * makes missing folders and names the one that stops the walk. */
    if (fd != -ENOENT && fd != -ELOOP && fd != -ENOTDIR && fd != -EXDEV && fd != -ENOSYS &&
        fd != -EAGAIN && fd != -EPERM)
        return fd;
    char path[4096];
    RENC_RETURN_IF(strlen(rel_dir) >= sizeof path, -ENAMETOOLONG);
    strcpy(path, rel_dir);
    int cur = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (cur < 0)
        return -errno;
    int rc = 0;
    for (char *p = path, *slash; rc == 0 && p && *p; p = slash ? slash + 1 : NULL) {
        slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (strcmp(p, "") == 0 || strcmp(p, ".") == 0)
            continue;
        int next = -1;
        rc = strcmp(p, "..") == 0 ? -EINVAL : renc_dest_step(cur, p, create, &next);
        if (rc) {
            snprintf(bad, max, "%.*s", (int)(p - path + strlen(p)), rel_dir);
            break;
        }
        close(cur);
        cur = next;
    }
    if (rc) {
        close(cur);
        return rc;
    }
    *out = cur;
    return 0;
}

/* The folder of rel (cached: files staged together share folders). */
static int renc_stage_dir_of(struct renc_stage *s, const char *rel, int create, const char **base)
{
    const char *slash = strrchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : 0;
    *base = slash ? slash + 1 : rel;
    RENC_RETURN_IF(n >= sizeof s->dir_rel, -ENAMETOOLONG);
    if (s->dir_fd >= 0 && strlen(s->dir_rel) == n && memcmp(s->dir_rel, rel, n) == 0)
        return 0;
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    s->dir_fd = -1;
    char dir[4096];
    memcpy(dir, rel, n);
    dir[n] = '\0';
    char bad[4096] = "";
    int rc = renc_dest_dir(s->root_fd, dir, create, &s->dir_fd, bad, sizeof bad);
    if (rc) {
        snprintf(s->bad, sizeof s->bad, "%s/%s", s->root, bad[0] ? bad : dir);
        return rc;
    }
    snprintf(s->dir_rel, sizeof s->dir_rel, "%s", dir);
    return 0;
}

/* ---- the stage --------------------------------------------------------- */

static int renc_stage_open_root(const char *data_dir, const char *env, char *root, size_t max,
                                int *fd)
{
    int rc = renc_envdata_path(root, max, data_dir, env, NULL);
    if (rc)
        return rc;
    *fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return *fd < 0 ? -errno : 0;
}

int renc_stage_begin(struct renc_stage *s, struct renc_catalog *cat, const char *data_dir,
                     const char *env, const char *op, const char *request)
{
    int rc = renc_stage_open_root(data_dir, env, s->root, sizeof s->root, &s->root_fd);
    if (rc)
        return rc;
    char rnd[17];
    /* "st" + 16 hex digits: told from a run's id (16 hex digits) at a glance. */
    if ((rc = renc_tmpname_random_tag(rnd)))
        return rc;
    snprintf(s->tag, sizeof s->tag, "st%s", rnd);
    snprintf(s->env, sizeof s->env, "%s", env);
    snprintf(s->op, sizeof s->op, "%s", op);
    s->cat = cat;
    /* Recorded (and durable: synchronous=FULL) before any temporary is made,
     * so that every temporary of this tag is known to be the tool's. */
    if ((rc = renc_catalog_stage_begin(cat, env, s->tag, op, request)))
        return rc;
    s->recorded = 1;
    return 0;
}

static int renc_stage_push(struct renc_stage *s, const char *rel)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **r = renc_realloc(s->rel, cap * sizeof *r);
        RENC_RETURN_IF(!r, -RENC_E_NOMEM);
        s->rel = r;
        s->cap = cap;
    }
    RENC_RETURN_IF(!(s->rel[s->count] = renc_strdup(rel)), -RENC_E_NOMEM);
    s->count++;
    return 0;
}

int renc_stage_open(struct renc_stage *s, const char *rel, int *fd)
{
    char tmp[NAME_MAX + 1];
    const char *base;
    struct stat st;
    RENC_RETURN_IF(s->recorded != 1, -RENC_E_INVALID);
    for (size_t i = 0; i < s->count; i++)
        RENC_RETURN_IF(strcmp(s->rel[i], rel) == 0, -EEXIST);
    int rc = renc_stage_dir_of(s, rel, 1, &base);
    if (rc == 0)
        rc = renc_tmpname_make(tmp, sizeof tmp, base, s->tag);
    if (rc)
        return rc;
    snprintf(s->tmp, sizeof s->tmp, "%s/%s%s%s", s->root, s->dir_rel, s->dir_rel[0] ? "/" : "",
             tmp);
    if (fstatat(s->dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            snprintf(s->bad, sizeof s->bad, "%s/%s", s->root, rel);
            return -ELOOP;
        }
        RENC_RETURN_IF(!s->replace || !S_ISREG(st.st_mode), -EEXIST);
    } else if (errno != ENOENT) {
        return -errno;
    }
    if ((rc = renc_stage_push(s, rel)))
        return rc;
    int out = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        rc = -errno;
        renc_free(s->rel[--s->count]);
        return rc;
    }
    *fd = out;
    return 0;
}

struct renc_stage_sync {
    struct renc_ring_op op;
    int result;
};

static void renc_stage_synced(struct renc_ring_op *op, int result)
{
    ((struct renc_stage_sync *)op)->result = result;
}

/* One barrier point for the pending temporaries: their fdatasyncs go to the
 * kernel together (through io_uring; one by one where it is missing). */
static int renc_stage_sync_pending(struct renc_stage *s)
{
    struct renc_stage_sync ops[RENC_STAGE_BATCH];
    int rc = s->npending ? renc_fault_check("fsync") : 0;
    if (rc == 0 && s->npending && !s->ring && !s->no_ring)
        s->no_ring = renc_ring_new(&s->ring, RENC_STAGE_BATCH) != 0;
    if (rc == 0 && s->ring) {
        for (size_t i = 0; i < s->npending; i++) {
            memset(&ops[i], 0, sizeof ops[i]);
            ops[i].op.kind = RENC_RING_FSYNC;
            ops[i].op.fd = s->pending[i];
            ops[i].op.flags = RENC_RING_DATASYNC;
            ops[i].op.done = renc_stage_synced;
            renc_ring_submit(s->ring, &ops[i].op);
        }
        rc = renc_ring_drain(s->ring);
        for (size_t i = 0; rc == 0 && i < s->npending; i++)
            rc = ops[i].result < 0 ? ops[i].result : 0;
    } else if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < s->npending; i++)
            rc = fdatasync(s->pending[i]) == 0 ? 0 : -errno;
    }
    for (size_t i = 0; i < s->npending; i++) {
        if (close(s->pending[i]) != 0 && rc == 0)
            rc = -errno;
    }
    s->npending = 0;
    return rc;
}

int renc_stage_close(struct renc_stage *s, int fd)
{
    s->pending[s->npending++] = fd;
    return s->npending == RENC_STAGE_BATCH ? renc_stage_sync_pending(s) : 0;
}

/* Renames the temporary of rel (tag) into place below root_fd.  1 when
 * renamed, 0 when there was none (renamed before), or an error. */
static int renc_stage_rename_one(struct renc_stage *s, const char *rel, const char *tag,
                                 int *dirty)
{
    const char *base;
    char tmp[NAME_MAX + 1];
    int rc = renc_stage_dir_of(s, rel, 0, &base);
    if (rc == -ENOENT)
        return 0; /* no folder: neither a temporary nor a final path */
    if (rc == 0)
        rc = renc_tmpname_make(tmp, sizeof tmp, base, tag);
    if (rc)
        return rc;
    /* Commit point of one file: the final path holds the new content. */
    if (renameat(s->dir_fd, tmp, s->dir_fd, base) == 0) {
        *dirty = 1;
        return 1;
    }
    return errno == ENOENT ? 0 : -errno;
}

/* Renames every temporary of tag into place and makes their folders
 * durable.  *renamed counts the renames; *missing the files that are
 * neither a temporary nor a final path. */
static int renc_stage_rename_all(struct renc_stage *s, char *const *rels, size_t count,
                                 const char *tag, size_t *renamed, size_t *missing)
{
    int rc = 0, dirty = 0;
    char cur[4096] = "";
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *slash = strrchr(rels[i], '/');
        size_t n = slash ? (size_t)(slash - rels[i]) : 0;
        if (dirty && (strlen(cur) != n || memcmp(cur, rels[i], n) != 0)) {
            /* Leaving a folder: one barrier for its renames. */
            rc = renc_fault_check("fsync");
            if (rc == 0 && fsync(s->dir_fd) != 0)
                rc = -errno;
            dirty = 0;
        }
        if (rc)
            break;
        snprintf(cur, sizeof cur, "%.*s", (int)n, rels[i]);
        int r = renc_stage_rename_one(s, rels[i], tag, &dirty);
        if (r < 0) {
            rc = r;
        } else if (r == 1) {
            ++*renamed;
        } else {
            struct stat st;
            const char *base = slash ? slash + 1 : rels[i];
            if (s->dir_fd < 0 || strlen(s->dir_rel) != n || memcmp(s->dir_rel, rels[i], n) != 0 ||
                fstatat(s->dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
                ++*missing;
        }
    }
    if (rc == 0 && dirty) {
        rc = renc_fault_check("fsync");
        if (rc == 0 && fsync(s->dir_fd) != 0)
            rc = -errno;
    }
    return rc;
}

int renc_stage_commit(struct renc_stage *s, const struct renc_stage_note *notes, size_t nnotes)
{
    int rc = renc_stage_sync_pending(s);
    if (rc)
        return rc;
    /* Commit point of the set: from this transaction on, the stage is
     * rolled forward (every temporary is durable now). */
    rc = renc_catalog_stage_ready(s->cat, s->tag, (const char *const *)s->rel, s->count, notes,
                                  nnotes);
    if (rc)
        return rc;
    s->recorded = 2;
    size_t renamed = 0, missing = 0;
    rc = renc_stage_rename_all(s, s->rel, s->count, s->tag, &renamed, &missing);
    if (rc == 0 && missing)
        rc = -ENOENT;
    if (rc) {
        renc_err(s->op, "%s: %zu of %zu files in place when it stopped: %s; the next command "
                        "on %s completes it",
                 s->root, renamed, s->count, renc_strerror(rc), s->env);
        return rc;
    }
    rc = renc_catalog_stage_done(s->cat, s->tag, NULL);
    if (rc) {
        renc_err(s->op, "%s: done, but its history row is not written yet (%s); the next "
                        "command on %s writes it",
                 s->env, renc_strerror(rc), s->env);
        return 0; /* the files are in place: the work is done */
    }
    s->recorded = 3;
    return 0;
}

void renc_stage_cleanup(struct renc_stage *s)
{
    for (size_t i = 0; i < s->npending; i++)
        close(s->pending[i]);
    s->npending = 0;
    renc_ring_free(s->ring);
    if (s->recorded == 1) {
        /* Before the commit point: the temporaries go, then the record. */
        int ok = 1;
        for (size_t i = 0; i < s->count; i++) {
            const char *base;
            char tmp[NAME_MAX + 1];
            if (renc_stage_dir_of(s, s->rel[i], 0, &base) != 0 ||
                renc_tmpname_make(tmp, sizeof tmp, base, s->tag) != 0 ||
                (unlinkat(s->dir_fd, tmp, 0) != 0 && errno != ENOENT))
                ok = 0;
        }
        /* A temporary that could not be removed keeps its record, for the
         * next command to remove it. */
        if (ok)
            renc_catalog_stage_drop(s->cat, s->tag);
    }
    for (size_t i = 0; i < s->count; i++)
        renc_free(s->rel[i]);
    renc_free(s->rel);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->root_fd >= 0)
        close(s->root_fd);
    renc_stage_init(s, 0);
}

/* ---- settling what a gone process left -------------------------------- */

/* Removes, below dir_fd (never following a link), the temporaries whose
 * tag is tag; counts them. */
static void renc_stage_sweep(int dir_fd, const char *tag, int depth, size_t *removed)
{
    DIR *d = depth > RENC_STAGE_SWEEP_DEPTH ? NULL : fdopendir(dir_fd);
    if (!d) {
        close(dir_fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char t[RENC_TMP_TAG_MAX + 1];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (renc_tmpname_parse(e->d_name, t, sizeof t, NULL, 0) && strcmp(t, tag) == 0) {
            if (unlinkat(dirfd(d), e->d_name, 0) == 0)
                ++*removed;
            continue;
        }
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            renc_stage_sweep(sub, tag, depth + 1, removed);
    }
    fsync(dirfd(d));
    closedir(d);
}

static void renc_stage_when(char *out, size_t max, int64_t at)
{
    time_t t = (time_t)at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, max, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* A stage cut short before its commit point: its temporaries go. */
static int renc_stage_roll_back(const char *cmd, FILE *say, struct renc_catalog *cat,
                                int root_fd, const struct renc_stage_rec *r)
{
    size_t removed = 0;
    int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0)
        renc_stage_sweep(fd, r->tag, 0, &removed);
    int rc = renc_catalog_stage_drop(cat, r->tag);
    char when[64];
    renc_stage_when(when, sizeof when, r->started);
    if (rc == 0)
        fprintf(say, "%s: an interrupted %s into %s (started %s) had written no file in place: "
               "its %zu temporary files are removed\n",
               cmd, r->op, r->env, when, removed);
    return rc;
}

/* A stage past its commit point: the rest is renamed, the history written. */
static int renc_stage_roll_forward(const char *cmd, FILE *say, struct renc_catalog *cat,
                                   int root_fd, const char *root, const struct renc_stage_rec *r)
{
    struct renc_stage s;
    renc_stage_init(&s, 0);
    s.root_fd = root_fd;
    snprintf(s.root, sizeof s.root, "%s", root);
    snprintf(s.op, sizeof s.op, "%s", cmd);
    size_t renamed = 0, missing = 0;
    int rc = renc_stage_rename_all(&s, r->rels, r->rel_count, r->tag, &renamed, &missing);
    if (s.dir_fd >= 0)
        close(s.dir_fd);
    char when[64];
    renc_stage_when(when, sizeof when, r->started);
    if (rc) {
        renc_err(cmd, "%s: completing an interrupted %s (started %s): %s%s%s", root, r->op,
                 when, renc_strerror(rc), s.bad[0] ? ": " : "", s.bad);
        return rc;
    }
    if (missing) {
        /* Neither a temporary nor a final path: something removed them
         * after the commit point.  Said, never papered over. */
        renc_err(cmd, "%s: an interrupted %s (started %s): %zu of its %zu files are missing "
                      "(removed since?)", root, r->op, when, missing, r->rel_count);
    }
    if ((rc = renc_catalog_stage_done(cat, r->tag, " (completed after an interruption)")))
        return rc;
    fprintf(say, "%s: completed an interrupted %s of %zu files into %s (started %s; %zu renamed "
           "now)\n", cmd, r->op, r->rel_count, r->env, when, renamed);
    return 0;
}

int renc_stage_settle(const char *cmd, FILE *say, struct renc_catalog *cat, const char *data_dir,
                      const char *env, const char *op, const char *request, int *same)
{
    struct renc_stage_rec *recs = NULL;
    size_t n = 0;
    char root[4096];
    int root_fd = -1;
    int rc = renc_catalog_stage_list(cat, env, &recs, &n);
    if (rc || n == 0)
        return rc;
    rc = renc_stage_open_root(data_dir, env, root, sizeof root, &root_fd);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!recs[i].renaming) {
            rc = renc_stage_roll_back(cmd, say, cat, root_fd, &recs[i]);
            continue;
        }
        rc = renc_stage_roll_forward(cmd, say, cat, root_fd, root, &recs[i]);
        if (rc == 0 && same && op && request && request[0] && strcmp(recs[i].op, op) == 0 &&
            strcmp(recs[i].request, request) == 0)
            *same = 1;
    }
    if (root_fd >= 0)
        close(root_fd);
    renc_catalog_stage_free(recs, n);
    return rc;
}

int renc_stage_forget_env(struct renc_catalog *cat, const char *env)
{
    struct renc_stage_rec *recs = NULL;
    size_t n = 0;
    int rc = renc_catalog_stage_list(cat, env, &recs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = renc_catalog_stage_drop(cat, recs[i].tag);
    renc_catalog_stage_free(recs, n);
    return rc;
}
