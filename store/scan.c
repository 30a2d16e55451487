#include "store/scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/tmpname.h"

#define RENC_SCAN_MAX_DEPTH 256

/* Moves it->path, rel, etag and attrs into a new item of s (it keeps NULLs). */
int renc_scan_take(struct renc_scan *s, struct renc_scan_item *it)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct renc_scan_item *items = renc_realloc(s->items, cap * sizeof *items);
        RENC_RETURN_IF(!items, -RENC_E_NOMEM);
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = *it;
    it->path = it->rel = it->etag = it->attrs = NULL;
    s->total_bytes += it->size;
    return 0;
}

int renc_scan_add(struct renc_scan *s, const char *path, const char *rel,
                         const struct stat *st)
{
    struct renc_scan_item it = {.path = renc_strdup(path), .rel = renc_strdup(rel),
                                .size = (uint64_t)st->st_size, .mode = st->st_mode};
    int rc = it.path && it.rel ? renc_scan_take(s, &it) : -RENC_E_NOMEM;
    renc_free(it.path);
    renc_free(it.rel);
    return rc;
}

int renc_scan_add_error(struct renc_scan *s, const char *path, int rc)
{
    struct renc_scan_error *e = renc_realloc(s->errors, (s->error_count + 1) * sizeof *e);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    s->errors = e;
    e[s->error_count].path = renc_strdup(path);
    RENC_RETURN_IF(!e[s->error_count].path, -RENC_E_NOMEM);
    e[s->error_count++].rc = rc;
    return 0;
}

static int renc_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A temporary of this tool, not listed: kept so a run can remove the
 * stale ones a crash left (see renc_scan.temps). */
int renc_scan_add_temp(struct renc_scan *s, const char *path)
{
    if (s->temp_count == s->temp_cap) {
        size_t cap = s->temp_cap ? 2 * s->temp_cap : 16;
        char **grown = renc_realloc(s->temps, cap * sizeof *grown);
        RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
        s->temps = grown;
        s->temp_cap = cap;
    }
    char *copy = renc_strdup(path);
    RENC_RETURN_IF(!copy, -RENC_E_NOMEM);
    s->temps[s->temp_count++] = copy;
    return 0;
}

/* One item out through l (which may take its strings). */
static int renc_walk_item(const struct renc_store_lister *l, const char *path, const char *rel,
                          const struct stat *st)
{
    if (!l->item)
        return 0;
    struct renc_scan_item it = {.path = renc_strdup(path), .rel = renc_strdup(rel),
                                .size = (uint64_t)st->st_size, .mode = st->st_mode};
    int rc = it.path && it.rel ? l->item(l->arg, &it) : -RENC_E_NOMEM;
    renc_free(it.path);
    renc_free(it.rel);
    return rc;
}

static int renc_walk_error(const struct renc_store_lister *l, const char *path, int rc)
{
    return l->error ? l->error(l->arg, path, rc) : 0;
}

/* dir's entries, sorted by name (the caller frees them); -RENC_E_NOMEM. */
static int renc_walk_names(DIR *d, char ***out, size_t *count)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = renc_realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = -RENC_E_NOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[n] = renc_strdup(e->d_name))) {
            rc = -RENC_E_NOMEM;
            break;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, renc_name_cmp);
    *out = names;
    *count = n;
    return rc;
}

/* Walks dir (path, and rel relative to the root) depth-first in name
 * order, streaming what it finds through l: only one folder's names are
 * held at each depth, never the tree's list. */
static int renc_walk_dir(const struct renc_store_lister *l, uint64_t *special, const char *path,
                         const char *rel, const char *exclude, int depth)
{
    if (depth > RENC_SCAN_MAX_DEPTH)
        return renc_walk_error(l, path, -ELOOP);
    DIR *d = opendir(path);
    if (!d)
        return renc_walk_error(l, path, -errno);
    char **names = NULL;
    size_t n = 0;
    int rc = renc_walk_names(d, &names, &n);
    closedir(d);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char child[4096], child_rel[4096];
        int a = snprintf(child, sizeof child, "%s/%s", path, names[i]);
        int b = rel[0] ? snprintf(child_rel, sizeof child_rel, "%s/%s", rel, names[i])
                       : snprintf(child_rel, sizeof child_rel, "%s", names[i]);
        if (a < 0 || b < 0 || (size_t)a >= sizeof child || (size_t)b >= sizeof child_rel) {
            rc = renc_walk_error(l, path, -ENAMETOOLONG);
            continue;
        }
        struct stat st;
        if (lstat(child, &st) != 0) {
            /* Gone since the folder was read (another run's temporary
             * renamed onto its blob, a file deleted): not there to list. */
            if (errno != ENOENT)
                rc = renc_walk_error(l, child, -errno);
            continue;
        }
        if (exclude && strcmp(child, exclude) == 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = renc_walk_dir(l, special, child, child_rel, exclude, depth + 1);
        else if (S_ISREG(st.st_mode) && renc_tmpname_reserved(names[i]))
            rc = l->temp ? l->temp(l->arg, child) : 0;
        else if (S_ISREG(st.st_mode))
            rc = renc_walk_item(l, child, child_rel, &st);
        else
            (*special)++;
    }
    for (size_t i = 0; i < n; i++)
        renc_free(names[i]);
    renc_free(names);
    return rc;
}

int renc_scan_walk(const struct renc_store_lister *l, const char *const *sources, size_t n,
                   const char *exclude, uint64_t *skipped_special)
{
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        int rc;
        if (lstat(sources[i], &st) != 0) {
            rc = renc_walk_error(l, sources[i], -errno);
        } else if (S_ISDIR(st.st_mode)) {
            char root[4096];
            size_t len = strlen(sources[i]);
            if (len >= sizeof root)
                return -ENAMETOOLONG;
            memcpy(root, sources[i], len + 1);
            while (len > 1 && root[len - 1] == '/')
                root[--len] = '\0';
            rc = renc_walk_dir(l, skipped_special, root, "", exclude, 0);
        } else if (S_ISREG(st.st_mode)) {
            const char *slash = strrchr(sources[i], '/');
            rc = renc_walk_item(l, sources[i], slash ? slash + 1 : sources[i], &st);
        } else {
            rc = renc_walk_error(l, sources[i], -RENC_E_NOT_REGULAR);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int renc_scan_sink_item(void *arg, struct renc_scan_item *it)
{
    return renc_scan_take(arg, it);
}

static int renc_scan_sink_error(void *arg, const char *path, int rc)
{
    return renc_scan_add_error(arg, path, rc);
}

static int renc_scan_sink_temp(void *arg, const char *path)
{
    return renc_scan_add_temp(arg, path);
}

void renc_scan_lister(struct renc_scan *s, struct renc_store_lister *l)
{
    *l = (struct renc_store_lister){.item = renc_scan_sink_item, .error = renc_scan_sink_error,
                                    .temp = renc_scan_sink_temp, .arg = s};
}

int renc_scan_paths(struct renc_scan *s, const char *const *sources, size_t n,
                    const char *exclude)
{
    struct renc_store_lister l;
    renc_scan_lister(s, &l);
    return renc_scan_walk(&l, sources, n, exclude, &s->skipped_special);
}

/* A set of strings (open addressing), for the manifest's duplicates. */
struct renc_seen {
    char **slots;
    size_t cap, count;
};

static uint64_t renc_hash(const char *p)
{
    uint64_t h = 1469598103934665603ull;
    while (*p)
        h = (h ^ (uint8_t)*p++) * 1099511628211ull;
    return h;
}

/* 1 when key was already there, 0 when added, or an error. */
static int renc_seen_add(struct renc_seen *set, const char *key)
{
    if (2 * (set->count + 1) > set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 1024;
        char **slots = renc_calloc(cap, sizeof *slots);
        RENC_RETURN_IF(!slots, -RENC_E_NOMEM);
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i])
                continue;
            size_t j = renc_hash(set->slots[i]) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        renc_free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = renc_hash(key) & (set->cap - 1);
    for (; set->slots[j]; j = (j + 1) & (set->cap - 1))
        if (strcmp(set->slots[j], key) == 0)
            return 1;
    RENC_RETURN_IF(!(set->slots[j] = renc_strdup(key)), -RENC_E_NOMEM);
    set->count++;
    return 0;
}

static void renc_seen_cleanup(struct renc_seen *set)
{
    for (size_t i = 0; i < set->cap; i++)
        renc_free(set->slots[i]);
    renc_free(set->slots);
}

/* One line of a manifest, as getline gives it (with its newline, if any;
 * line[len] is a NUL that line holds room for).  Lists the file it names,
 * counts it as a duplicate, or records an error against it (or against the
 * manifest, `name`, for a NUL byte inside the line).  Returns 0, or an
 * error that must stop the scan (out of memory). */
static int renc_manifest_line(struct renc_scan *s, struct renc_seen *seen, const char *name,
                              char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    if (len != strlen(line))
        return renc_scan_add_error(s, name, -RENC_E_INVALID); /* NUL inside a line */
    struct stat st;
    if (lstat(line, &st) != 0)
        return renc_scan_add_error(s, line, -errno);
    if (!S_ISREG(st.st_mode))
        return renc_scan_add_error(s, line, S_ISDIR(st.st_mode) ? -EISDIR : -RENC_E_NOT_REGULAR);
    /* One file named two ways (a/x, ./a/x, /abs/a/x) is one blob. */
    char canon[PATH_MAX];
    const char *key = realpath(line, canon) ? canon : line;
    int dup = renc_seen_add(seen, key);
    if (dup < 0)
        return dup;
    if (dup) {
        s->duplicates++;
        return 0;
    }
    const char *rel = line;
    while (*rel == '/')
        rel++;
    return renc_scan_add(s, line, rel, &st);
}

int renc_scan_manifest(struct renc_scan *s, const char *manifest)
{
    struct renc_seen seen = {0};
    FILE *f = fopen(manifest, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    /* Streamed line by line: a manifest of millions of paths is never held
     * whole.  renc_scan_manifest_buf splits the same way. */
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0)
        rc = renc_manifest_line(s, &seen, manifest, line, (size_t)len);
    free(line);
    fclose(f);
    renc_seen_cleanup(&seen);
    return rc;
}

int renc_scan_manifest_buf(struct renc_scan *s, const char *name, const char *buf, size_t len)
{
    struct renc_seen seen = {0};
    char *line = NULL;
    size_t cap = 0, off = 0;
    int rc = 0;
    /* As getline does: a line runs to its '\n' inclusive, or to the end of
     * the buffer; each is copied out, NUL-terminated, for the line parser
     * (which cuts it in place). */
    while (rc == 0 && off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) + 1 : len - off;
        if (n + 1 > cap) {
            char *grown = renc_realloc(line, n + 1);
            if (!grown) {
                rc = -RENC_E_NOMEM;
                break;
            }
            line = grown;
            cap = n + 1;
        }
        memcpy(line, buf + off, n);
        line[n] = '\0';
        off += n;
        rc = renc_manifest_line(s, &seen, name, line, n);
    }
    renc_free(line);
    renc_seen_cleanup(&seen);
    return rc;
}

void renc_scan_cleanup(struct renc_scan *s)
{
    for (size_t i = 0; i < s->count; i++) {
        renc_free(s->items[i].path);
        renc_free(s->items[i].rel);
        renc_free(s->items[i].etag);
        renc_free(s->items[i].attrs);
    }
    for (size_t i = 0; i < s->error_count; i++)
        renc_free(s->errors[i].path);
    for (size_t i = 0; i < s->temp_count; i++)
        renc_free(s->temps[i]);
    renc_free(s->items);
    renc_free(s->errors);
    renc_free(s->temps);
    memset(s, 0, sizeof *s);
}
