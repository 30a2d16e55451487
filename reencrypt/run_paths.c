/* The paths a run (cmd_run.c) writes or removes: where --out mirrors the
 * sources, never onto a source, and the temporaries crashed attempts of
 * the run left beside them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/path.h"
#include "io/tmpname.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "store/scan.h"

/* --out must not lie inside a source (the run would read its own output). */
int renc_mirror_out_inside(const struct renc_bulk_args *a, char *out_real, size_t max)
{
    char buf[PATH_MAX];
    int create = 0;
    if (!realpath(a->out, buf)) {
        if (errno != ENOENT)
            return -errno;
        /* Not there yet: resolve its parent and check before creating it,
         * so that a refused --out leaves no folder inside a source. */
        char parent[PATH_MAX];
        size_t n = strlen(a->out);
        if (n >= sizeof parent)
            return -ENAMETOOLONG;
        memcpy(parent, a->out, n + 1);
        while (n > 1 && parent[n - 1] == '/')
            parent[--n] = '\0';
        char *slash = strrchr(parent, '/');
        const char *base = slash ? slash + 1 : parent;
        const char *dir = ".";
        if (slash == parent)
            dir = "/";
        else if (slash) {
            *slash = '\0';
            dir = parent;
        }
        if (!realpath(dir, buf))
            return -errno;
        size_t bl = strlen(buf);
        int w = snprintf(buf + bl, sizeof buf - bl, "%s%s", bl > 1 ? "/" : "", base);
        if (w < 0 || (size_t)w >= sizeof buf - bl)
            return -ENAMETOOLONG;
        create = 1;
    }
    snprintf(out_real, max, "%s", buf);
    for (int i = 0; i < a->source_count; i++) {
        char src[PATH_MAX];
        if (!realpath(a->sources[i], src))
            continue;
        size_t n = strlen(src);
        if (strncmp(buf, src, n) == 0 && (buf[n] == '/' || buf[n] == '\0'))
            return 1;
    }
    if (create && mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* --out: each blob's mirror path is OUT/REL.  REL is made canonical here (no
 * empty or "." components).  A REL with ".." would leave OUT (a manifest line
 * such as ../src/x.renc can even land on its own source, rewriting it in
 * place), and two blobs with the same REL (one name under two sources, or a
 * manifest naming files as a/x and /a/x) would overwrite each other's mirror:
 * both are refused before anything is written. */
static int renc_rel_canonical(char *rel)
{
    return renc_path_tidy(rel, strlen(rel) + 1, rel, RENC_PATH_NO_DOTDOT) == 0 ? 0 : -1;
}

static int renc_item_rel_cmp(const void *a, const void *b)
{
    const struct renc_scan_item *x = *(const struct renc_scan_item *const *)a;
    const struct renc_scan_item *y = *(const struct renc_scan_item *const *)b;
    return strcmp(x->rel, y->rel);
}

/* Returns -1 to continue or an exit code. */
int renc_mirror_check_paths(const char *cmd, const char *out, struct renc_scan *scan)
{
    int bad = 0;
    for (size_t i = 0; i < scan->count; i++) {
        if (renc_rel_canonical(scan->items[i].rel) != 0) {
            char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "%s: cannot be mirrored under --out %s (its path has '..' or no name)",
                     QP(q1, scan->items[i].path), QP(q2, out));
            bad = 1;
        }
    }
    if (bad || scan->count < 2)
        return bad ? RENC_EXIT_USAGE : -1;
    struct renc_scan_item **v = renc_calloc(scan->count, sizeof *v);
    if (!v) {
        renc_err(cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    for (size_t i = 0; i < scan->count; i++)
        v[i] = &scan->items[i];
    qsort(v, scan->count, sizeof *v, renc_item_rel_cmp);
    for (size_t i = 1; i < scan->count; i++) {
        if (strcmp(v[i - 1]->rel, v[i]->rel) == 0) {
            char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX], q3[RENC_PATH_QUOTE_MAX],
                q4[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "%s and %s would both be written to %s/%s", QP(q1, v[i - 1]->path),
                     QP(q2, v[i]->path), QP(q3, out), QP(q4, v[i]->rel));
            bad = 1;
        }
    }
    renc_free(v);
    return bad ? RENC_EXIT_USAGE : -1;
}

/* ---- --out never writes a source -------------------------------------- */

/* renc_canon_prefix: path made canonical as far as it exists: its longest
 * existing prefix resolved (realpath), the rest appended as it is (it will
 * be created by the run, so no symlink can be in it).  Works for a final
 * component that is a symlink too: it is kept, not followed (a rename over
 * a symlink replaces the link). */
static int renc_canon_prefix(const char *path, char *out, size_t max)
{
    char head[PATH_MAX];
    size_t n = strlen(path);
    RENC_RETURN_IF(n == 0 || n >= sizeof head, -ENAMETOOLONG);
    memcpy(head, path, n + 1);
    /* The last component is never resolved: start from its parent. */
    char *cut = strrchr(head, '/');
    for (;;) {
        char real[PATH_MAX];
        const char *dir = !cut ? "." : cut == head ? "/" : head;
        if (cut)
            *cut = '\0';
        if (realpath(dir, real)) {
            const char *rest = cut ? path + (cut - head) + 1 : path;
            int w = snprintf(out, max, "%s%s%s", real, strcmp(real, "/") ? "/" : "", rest);
            return w < 0 || (size_t)w >= max ? -ENAMETOOLONG : 0;
        }
        if (errno != ENOENT || !cut || cut == head)
            return -errno;
        char *prev = strrchr(head, '/');
        *cut = '/';
        if (!prev) { /* a relative path with no existing folder in it: from "." */
            char here[PATH_MAX];
            RENC_RETURN_IF(!getcwd(here, sizeof here), -errno);
            int w = snprintf(out, max, "%s/%s", here, path);
            return w < 0 || (size_t)w >= max ? -ENAMETOOLONG : 0;
        }
        cut = prev;
    }
}

struct renc_src_id {
    char *canon;   /* canonical path of a source item */
    dev_t dev;
    ino_t ino;
    size_t idx;
};

static int renc_src_by_path(const void *a, const void *b)
{
    return strcmp(((const struct renc_src_id *)a)->canon, ((const struct renc_src_id *)b)->canon);
}

static int renc_src_by_inode(const void *a, const void *b)
{
    const struct renc_src_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino ? 1 : 0;
}

/* 1 when canonical path p is root or lies inside it. */
static int renc_path_within(const char *p, const char *root)
{
    size_t n = strlen(root);
    return strncmp(p, root, n) == 0 && (p[n] == '/' || p[n] == '\0' || strcmp(root, "/") == 0);
}

/* The reason item i's mirror under out would write a source, or NULL. */
static const char *renc_mirror_hits_source(const struct renc_scan *scan, size_t i,
                                           const char *out, struct renc_src_id *by_path,
                                           struct renc_src_id *by_inode, char **roots,
                                           size_t nroots, char *why, size_t max)
{
    char mirror[PATH_MAX], canon[PATH_MAX];
    char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX];
    const struct renc_scan_item *it = &scan->items[i];
    int w = snprintf(mirror, sizeof mirror, "%s/%s", out, it->rel);
    if (w < 0 || (size_t)w >= sizeof mirror || renc_canon_prefix(mirror, canon, sizeof canon))
        return NULL; /* the engine reports a name too long when it gets there */
    struct renc_src_id key = {.canon = canon};
    const struct renc_src_id *hit =
        bsearch(&key, by_path, scan->count, sizeof *by_path, renc_src_by_path);
    struct stat st;
    if (!hit && lstat(mirror, &st) == 0) {
        key.dev = st.st_dev;
        key.ino = st.st_ino;
        hit = bsearch(&key, by_inode, scan->count, sizeof *by_inode, renc_src_by_inode);
    }
    if (hit) {
        renc_path_quote(q1, sizeof q1, it->path);
        if (hit->idx == i)
            renc_textf(why, max, "%s would be written over itself (its mirror is the same file)",
                       q1);
        else
            renc_textf(why, max, "%s would be written over the source %s (its mirror is that file)",
                       q1, renc_path_quote(q2, sizeof q2, scan->items[hit->idx].path));
        return why;
    }
    for (size_t r = 0; r < nroots; r++) {
        if (!renc_path_within(canon, roots[r]))
            continue;
        renc_path_quote(q1, sizeof q1, it->path);
        renc_textf(why, max, "%s would be mirrored to %s, inside the source %s", q1,
                   renc_path_quote(q2, sizeof q2, canon), roots[r]);
        return why;
    }
    return NULL;
}

/* Sources are never written with --out: refuses (exit 2) an --out under
 * which the mirror of a source item would be that item, another source
 * item (also through a hard link or another mount of the same file: same
 * device and inode), or a path inside a source folder.  Paths are compared
 * canonical (symlinks resolved, up to the last component).  Returns -1 to
 * continue or an exit code. */
int renc_mirror_check_not_source(const char *cmd, const struct renc_bulk_args *a,
                                 const char *out, const struct renc_scan *scan)
{
    if (scan->count == 0)
        return -1;
    int status = -1;
    struct renc_src_id *by_path = renc_calloc(scan->count, sizeof *by_path);
    struct renc_src_id *by_inode = renc_calloc(scan->count, sizeof *by_inode);
    char **roots = renc_calloc((size_t)a->source_count + 1, sizeof *roots);
    size_t nroots = 0;
    if (!by_path || !by_inode || !roots)
        goto out_nomem;
    for (size_t i = 0; i < scan->count; i++) {
        char canon[PATH_MAX];
        struct stat st;
        by_path[i].idx = i;
        if (renc_canon_prefix(scan->items[i].path, canon, sizeof canon) != 0 ||
            lstat(scan->items[i].path, &st) != 0) {
            /* Gone since the scan: nothing of it to protect (the engine
             * reports it); a name that cannot match a mirror. */
            snprintf(canon, sizeof canon, "\n%zu", i);
            memset(&st, 0, sizeof st);
            st.st_ino = 0;
        }
        by_path[i].canon = renc_strdup(canon);
        by_path[i].dev = st.st_dev;
        by_path[i].ino = st.st_ino;
        if (!by_path[i].canon)
            goto out_nomem;
    }
    memcpy(by_inode, by_path, scan->count * sizeof *by_inode);
    qsort(by_path, scan->count, sizeof *by_path, renc_src_by_path);
    qsort(by_inode, scan->count, sizeof *by_inode, renc_src_by_inode);
    for (int i = 0; !a->manifest && i < a->source_count; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (lstat(a->sources[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            realpath(a->sources[i], real) && !(roots[nroots++] = renc_strdup(real)))
            goto out_nomem;
    }
    size_t bad = 0;
    for (size_t i = 0; i < scan->count; i++) {
        char why[3 * RENC_PATH_QUOTE_MAX];
        if (!renc_mirror_hits_source(scan, i, out, by_path, by_inode, roots, nroots, why,
                                     sizeof why))
            continue;
        if (bad++ < 5) {
            char q[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "--out %s: %s; sources are never written with --out: choose an "
                          "output folder outside the sources",
                     renc_path_quote(q, sizeof q, a->out), why);
        }
    }
    if (bad > 5)
        renc_err(cmd, "--out: %zu more blobs the same way", bad - 5);
    if (bad)
        status = RENC_EXIT_USAGE;
    goto out;
out_nomem:
    renc_err(cmd, "%s", renc_strerror(-RENC_E_NOMEM));
    status = RENC_EXIT_FAILED;
out:
    for (size_t i = 0; by_path && i < scan->count; i++)
        renc_free(by_path[i].canon);
    for (size_t r = 0; r < nroots; r++)
        renc_free(roots[r]);
    renc_free(by_path);
    renc_free(by_inode);
    renc_free(roots);
    return status;
}

/* Removes the temporaries crashed attempts of this run left in the sources:
 * those whose tag is the run's id (tags: the resumed run's, and the one a
 * --restart forgets), which the journal recorded before any was made.  The
 * caller holds the sources' locks, so no live run is writing them.  Other
 * files with a temporary's name are not provably ours: they are left alone
 * and reported. */
void renc_run_sweep_temps(const char *cmd, const struct renc_scan *scan,
                          const char *const *tags, size_t ntags)
{
    uint64_t removed = 0, foreign = 0;
    const char *example = NULL;
    for (size_t i = 0; i < scan->temp_count; i++) {
        const char *slash = strrchr(scan->temps[i], '/');
        char tag[RENC_TMP_TAG_MAX + 1];
        if (!renc_tmpname_parse(slash ? slash + 1 : scan->temps[i], tag, sizeof tag, NULL, 0))
            continue;
        int ours = 0;
        for (size_t k = 0; k < ntags && !ours; k++)
            ours = tags[k] && strcmp(tags[k], tag) == 0;
        if (ours && unlink(scan->temps[i]) == 0) {
            removed++;
        } else if (!ours) {
            foreign++;
            example = example ? example : scan->temps[i];
        }
    }
    if (removed)
        printf("%s: removed %llu temporary files left by crashed attempts of this run\n", cmd,
               (unsigned long long)removed);
    if (foreign)
        printf("%s: left alone %llu files named like temporaries that this run did not make"
               " (for example %s)\n", cmd, (unsigned long long)foreign, example);
}
