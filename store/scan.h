/* store/scan.h — the list of blobs a run, plan or verify works on. */
#ifndef RENC_STORE_SCAN_H
#define RENC_STORE_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct renc_scan_item {
    char *path;   /* as opened */
    char *rel;    /* relative to its source root (mirror path under --out) */
    uint64_t size;
    uint32_t mode;
    char *etag;   /* blob storage: the version listed (quoted ETag); NULL for a file */
    char *attrs;  /* what the listing said of that version besides (blob storage: its
                   * props and tags, store/azblob_attrs.h), opaque to all but the store
                   * that listed it; NULL when it said nothing */
};

struct renc_scan_error {
    char *path;
    int rc;
};

struct renc_scan {
    struct renc_scan_item *items;
    size_t count, cap;
    struct renc_scan_error *errors; /* unreadable entries, missing manifest lines */
    size_t error_count;
    uint64_t skipped_special;       /* symlinks, devices, sockets: never followed */
    uint64_t duplicates;            /* manifest lines naming a file twice */
    uint64_t total_bytes;
    char **temps;                   /* reserved temporary names (io/tmpname.h) met by the
                                     * walk: never listed as blobs */
    size_t temp_count, temp_cap;
};

/* What a listing streams: each callback returns 0 to go on, or a negative
 * error that stops the listing (and is returned by it).  item may take
 * it->path and it->rel (leaving NULL behind): the lister frees the rest.
 * Any callback may be NULL.  (A store's list streams through one too:
 * store/store.h.) */
struct renc_store_lister {
    int (*item)(void *arg, struct renc_scan_item *it);
    int (*error)(void *arg, const char *path, int rc); /* an entry that could not be listed */
    int (*temp)(void *arg, const char *path);          /* a reserved temporary name met */
    void *arg;
};

/* renc_scan_walk: renc_scan_paths's walk, each item, error and temporary
 * streamed through l as it is found (one folder's names held at a time,
 * never the tree's list); *skipped_special counts what is neither file nor
 * folder. */
int renc_scan_walk(const struct renc_store_lister *l, const char *const *sources, size_t n,
                   const char *exclude, uint64_t *skipped_special);

/* renc_scan_lister: a lister that appends what it is given to s (items,
 * errors, temporaries). */
void renc_scan_lister(struct renc_scan *s, struct renc_store_lister *l);

/* renc_scan_paths: walks each source (a directory, recursively, without
 * following symlinks — so a symlink loop cannot trap it; or a single file)
 * and lists its regular files in a stable (sorted) order.  Paths under
 * `exclude` (an --out directory; may be NULL) are not listed. */
int renc_scan_paths(struct renc_scan *s, const char *const *sources, size_t n,
                    const char *exclude);

/* renc_scan_manifest: one path per line ('#' comments and blank lines
 * ignored); duplicates are listed once and counted; a missing or
 * non-regular file is recorded in errors. */
int renc_scan_manifest(struct renc_scan *s, const char *manifest);

/* renc_scan_manifest_buf: renc_scan_manifest over a manifest's bytes held in
 * memory (len bytes at buf, no NUL needed); `name` is what an error about
 * the manifest itself (a NUL byte inside a line) is recorded against.  Lines
 * end at '\n' (a last line without one counts too); trailing '\r's are
 * dropped.  Returns 0, or a negative error (out of memory) that stopped the
 * scan; entries listed so far stay in s either way. */
int renc_scan_manifest_buf(struct renc_scan *s, const char *name, const char *buf, size_t len);

/* renc_scan_add: lists one regular file (st: its lstat) as an item. */
struct stat;
int renc_scan_add(struct renc_scan *s, const char *path, const char *rel, const struct stat *st);

/* renc_scan_take: it appended to s, its path, rel, etag and attrs moved
 * (it keeps NULLs); renc_scan_add_error, renc_scan_add_temp: an unlisted entry, a
 * reserved temporary name met (both copied).  0 or -RENC_E_NOMEM. */
int renc_scan_take(struct renc_scan *s, struct renc_scan_item *it);
int renc_scan_add_error(struct renc_scan *s, const char *path, int rc);
int renc_scan_add_temp(struct renc_scan *s, const char *path);

void renc_scan_cleanup(struct renc_scan *s);

#endif
