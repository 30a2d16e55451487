/* store/mirror.c — the --out mirror rules (store/mirror.h): --out outside
 * every source, one canonical mirror path per blob, and no mirror path
 * that is, or lies inside, a source. */
#include "store/mirror.h"

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

/* out not there yet: its parent resolved and its name appended, so that
 * a refused --out leaves no folder inside a source. */
static int renc_out_parent_real(const char *out, char *buf, size_t max)
{
    char parent[PATH_MAX];
    size_t n = strlen(out);
    if (n >= sizeof parent)
        return -ENAMETOOLONG;
    memcpy(parent, out, n + 1);
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
    int w = snprintf(buf + bl, max - bl, "%s%s", bl > 1 ? "/" : "", base);
    return w < 0 || (size_t)w >= max - bl ? -ENAMETOOLONG : 0;
}

int renc_store_out_inside(const char *out, const char *const *sources, size_t n,
                          char *out_real, size_t max)
{
    char buf[PATH_MAX];
    int create = 0;
    if (!realpath(out, buf)) {
        if (errno != ENOENT)
            return -errno;
        int rc = renc_out_parent_real(out, buf, sizeof buf);
        if (rc)
            return rc;
        create = 1;
    }
    snprintf(out_real, max, "%s", buf);
    for (size_t i = 0; i < n; i++) {
        char src[PATH_MAX];
        if (!realpath(sources[i], src))
            continue;
        size_t sl = strlen(src);
        if (strncmp(buf, src, sl) == 0 && (buf[sl] == '/' || buf[sl] == '\0'))
            return 1;
    }
    if (create && mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int renc_issue_add(struct renc_mirror_issues *m, enum renc_mirror_why why, size_t item,
                          size_t other, const char *canon, const char *root)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        struct renc_mirror_issue *v = renc_realloc(m->v, cap * sizeof *v);
        RENC_RETURN_IF(!v, -RENC_E_NOMEM);
        m->v = v;
        m->cap = cap;
    }
    struct renc_mirror_issue *is = &m->v[m->count];
    memset(is, 0, sizeof *is);
    is->why = why;
    is->item = item;
    is->other = other;
    if ((canon && !(is->canon = renc_strdup(canon))) || (root && !(is->root = renc_strdup(root)))) {
        renc_free(is->canon);
        return -RENC_E_NOMEM;
    }
    m->count++;
    return 0;
}

void renc_mirror_issues_cleanup(struct renc_mirror_issues *m)
{
    for (size_t i = 0; i < m->count; i++) {
        renc_free(m->v[i].canon);
        renc_free(m->v[i].root);
    }
    renc_free(m->v);
    memset(m, 0, sizeof *m);
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

int renc_store_mirror_check_paths(struct renc_scan *scan, struct renc_mirror_issues *out)
{
    int rc = 0;
    for (size_t i = 0; i < scan->count && rc == 0; i++)
        if (renc_rel_canonical(scan->items[i].rel) != 0)
            rc = renc_issue_add(out, RENC_MIRROR_BAD_REL, i, i, NULL, NULL);
    if (rc || out->count || scan->count < 2)
        return rc;
    struct renc_scan_item **v = renc_calloc(scan->count, sizeof *v);
    RENC_RETURN_IF(!v, -RENC_E_NOMEM);
    for (size_t i = 0; i < scan->count; i++)
        v[i] = &scan->items[i];
    qsort(v, scan->count, sizeof *v, renc_item_rel_cmp);
    for (size_t i = 1; i < scan->count && rc == 0; i++)
        if (strcmp(v[i - 1]->rel, v[i]->rel) == 0)
            rc = renc_issue_add(out, RENC_MIRROR_SAME_REL, (size_t)(v[i - 1] - scan->items),
                                (size_t)(v[i] - scan->items), NULL, NULL);
    renc_free(v);
    return rc;
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

/* The sources' identities, sorted by canonical path and by inode, and the
 * canonical source folders. */
struct renc_src_index {
    struct renc_src_id *by_path, *by_inode;
    char **roots;
    size_t count, nroots;
};

static void renc_src_index_cleanup(struct renc_src_index *x)
{
    for (size_t i = 0; x->by_path && i < x->count; i++)
        renc_free(x->by_path[i].canon);
    for (size_t r = 0; r < x->nroots; r++)
        renc_free(x->roots[r]);
    renc_free(x->by_path);
    renc_free(x->by_inode);
    renc_free(x->roots);
}

static int renc_src_index_build(struct renc_src_index *x, const char *const *sources, size_t n,
                                const struct renc_scan *scan)
{
    x->count = scan->count;
    x->by_path = renc_calloc(scan->count, sizeof *x->by_path);
    x->by_inode = renc_calloc(scan->count, sizeof *x->by_inode);
    x->roots = renc_calloc(n + 1, sizeof *x->roots);
    RENC_RETURN_IF(!x->by_path || !x->by_inode || !x->roots, -RENC_E_NOMEM);
    for (size_t i = 0; i < scan->count; i++) {
        char canon[PATH_MAX];
        struct stat st;
        x->by_path[i].idx = i;
        if (renc_canon_prefix(scan->items[i].path, canon, sizeof canon) != 0 ||
            lstat(scan->items[i].path, &st) != 0) {
            /* Gone since the scan: nothing of it to protect (the engine
             * reports it); a name that cannot match a mirror. */
            snprintf(canon, sizeof canon, "\n%zu", i);
            memset(&st, 0, sizeof st);
            st.st_ino = 0;
        }
        x->by_path[i].canon = renc_strdup(canon);
        x->by_path[i].dev = st.st_dev;
        x->by_path[i].ino = st.st_ino;
        RENC_RETURN_IF(!x->by_path[i].canon, -RENC_E_NOMEM);
    }
    memcpy(x->by_inode, x->by_path, scan->count * sizeof *x->by_inode);
    qsort(x->by_path, scan->count, sizeof *x->by_path, renc_src_by_path);
    qsort(x->by_inode, scan->count, sizeof *x->by_inode, renc_src_by_inode);
    for (size_t i = 0; i < n; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (lstat(sources[i], &st) == 0 && S_ISDIR(st.st_mode) && realpath(sources[i], real) &&
            !(x->roots[x->nroots++] = renc_strdup(real)))
            return -RENC_E_NOMEM;
    }
    return 0;
}

/* Adds to out why item i's mirror under out_dir would write a source, if
 * it would. */
static int renc_mirror_hits_source(const struct renc_scan *scan, size_t i, const char *out_dir,
                                   const struct renc_src_index *x, struct renc_mirror_issues *out)
{
    char mirror[PATH_MAX], canon[PATH_MAX];
    const struct renc_scan_item *it = &scan->items[i];
    int w = snprintf(mirror, sizeof mirror, "%s/%s", out_dir, it->rel);
    if (w < 0 || (size_t)w >= sizeof mirror || renc_canon_prefix(mirror, canon, sizeof canon))
        return 0; /* the engine reports a name too long when it gets there */
    struct renc_src_id key = {.canon = canon};
    const struct renc_src_id *hit =
        bsearch(&key, x->by_path, scan->count, sizeof *x->by_path, renc_src_by_path);
    struct stat st;
    if (!hit && lstat(mirror, &st) == 0) {
        key.dev = st.st_dev;
        key.ino = st.st_ino;
        hit = bsearch(&key, x->by_inode, scan->count, sizeof *x->by_inode, renc_src_by_inode);
    }
    if (hit)
        return renc_issue_add(out, hit->idx == i ? RENC_MIRROR_SELF : RENC_MIRROR_OVER_SOURCE,
                              i, hit->idx, NULL, NULL);
    for (size_t r = 0; r < x->nroots; r++)
        if (renc_path_within(canon, x->roots[r]))
            return renc_issue_add(out, RENC_MIRROR_IN_SOURCE, i, i, canon, x->roots[r]);
    return 0;
}

int renc_store_mirror_check_not_source(const char *out_dir, const char *const *sources,
                                       size_t n, const struct renc_scan *scan,
                                       struct renc_mirror_issues *out)
{
    if (scan->count == 0)
        return 0;
    struct renc_src_index x;
    memset(&x, 0, sizeof x);
    int rc = renc_src_index_build(&x, sources, n, scan);
    for (size_t i = 0; rc == 0 && i < scan->count; i++)
        rc = renc_mirror_hits_source(scan, i, out_dir, &x, out);
    renc_src_index_cleanup(&x);
    return rc;
}
