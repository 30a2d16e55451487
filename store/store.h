/* store/store.h — the store seam: where blobs live, as a table of
 * functions per kind of store (curl's struct Curl_ssl backends are the
 * model).  A store is chosen by the form of what the user named (today a
 * local directory, a file or a manifest; blob storage's container URL
 * next: docs/internals/store.md says how it will fill each entry).
 *
 * Invariant every store keeps: each blob is wholly old or wholly new at
 * every instant.  A replacement is staged where no reader sees it
 * (begin), then made visible in one step that fails if the blob is no
 * longer the one that was read (commit), then made durable (barrier).
 *
 * Only store/ knows what a source is (a directory here); callers hold a
 * struct renc_store and go through its ops.  The local store also offers
 * the fast paths the engine's io_uring pipeline needs (ring_path, the
 * staging file's path in a txn): a store that has none leaves them NULL
 * or empty, and the engine takes the ranged-read path.
 */
#ifndef RENC_STORE_STORE_H
#define RENC_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "io/replace.h"
#include "store/scan.h"

/* The longest name a store hands out for a blob or its staging copy: a
 * path (PATH_MAX) and the temporary's decoration (io/tmpname.h). */
#define RENC_STORE_PATH_MAX 4200

enum renc_store_kind {
    RENC_STORE_LOCAL = 1, /* a local filesystem tree (store/local.c) */
    RENC_STORE_AZBLOB,    /* an Azure Blob Storage container or prefix (store/azblob.c) */
};

/* How one blob's new version is committed; the engine decides it once per
 * blob (run/engine.c, renc_commit_mode), the store carries it out.
 * Blob storage adds its Put Block List commit here (a replacement staged
 * as blocks, made visible by the block list, If-Match on the ETag read). */
enum renc_commit_mode {
    RENC_COMMIT_REPLACE = 0,     /* new blob staged aside, then put in the old one's place
                                  * (local: temporary, barrier, checked rename, dir barrier) */
    RENC_COMMIT_HEADER_IN_PLACE, /* only the header rewritten where it is, the old and new
                                  * header journaled first (a rewrap whose header fits) */
    RENC_COMMIT_MIRROR,          /* the new blob written under --out; the source is only
                                  * checked unchanged, never written */
    RENC_COMMIT_HEADER_BLOCK,    /* a rewrap of a blob laid out as [header][records...]
                                  * blocks: a new header block committed with the record
                                  * blocks it has (commit_header; blob storage) */
};

/* One replacement in progress (renc_store_ops.begin fills it). */
struct renc_store_txn {
    enum renc_commit_mode mode;
    char final[RENC_STORE_PATH_MAX]; /* the blob's name once committed (local: its path) */
    char tmp[RENC_STORE_PATH_MAX];   /* local: the staging file ("" for HEADER_IN_PLACE) */
    int fd;      /* local: the staging file once append opened it, else -1 */
    void *priv;  /* the store's own state of a staged version (blob storage: its
                  * blocks, the properties to carry over); freed by commit or abort */
    uint64_t appended; /* bytes staged through append */
    /* local: the staging file this txn made (ino 0: not known).  Its
     * commit puts only that file in the blob's place: a worker frozen past
     * its lease finds its staging name taken by the worker that claimed
     * the blob since, and is refused (renc_replace_checked). */
    struct renc_file_id tmp_id;
};

/* renc_store_txn_mine: records the staging file open at fd as txn's own
 * (tmp_id), before it is closed. */
void renc_store_txn_mine(struct renc_store_txn *txn, int fd);

/* The temporaries' tags of a run (io/tmpname.h): tag names this run's,
 * stale_tag (may be NULL) a run a --restart forgot; with clean, a
 * staging file a crashed attempt left under tag is removed first. */
struct renc_store_tags {
    const char *tag;
    const char *stale_tag;
    int clean;
};

/* What a listing streams: struct renc_store_lister (store/scan.h). */

struct renc_store_list_stats {
    uint64_t skipped_special; /* symlinks, devices, sockets: never followed */
    uint64_t duplicates;      /* manifest lines naming a blob twice */
};

/* What a temp sweep did (renc_store_ops.sweep). */
struct renc_store_sweep {
    uint64_t removed;        /* staging files of this run's crashed attempts */
    uint64_t foreign;        /* named like ours, not provably ours: left alone */
    char example[RENC_STORE_PATH_MAX]; /* one of the foreign ones */
};

/* What a store keeps besides the current versions (blob storage: previous
 * versions, soft-deleted blobs): data still under the old key after a run.
 * -1: the service does not say. */
struct renc_store_retention {
    int soft_delete;      /* 1 on, 0 off, -1 unknown */
    int64_t old_versions; /* previous versions under the store's prefix */
    int64_t deleted;      /* soft-deleted blobs under it */
};

struct renc_store;

struct renc_store_ops {
    enum renc_store_kind kind;
    const char *kind_name;
    /* describe: a name for messages (a path, or a URL without secrets). */
    const char *(*describe)(const struct renc_store *s);
    /* list: streams the store's blobs in a stable order; a local tree is
     * walked by store/scan.c.  Returns 0 or the error that stopped it. */
    int (*list)(struct renc_store *s, const struct renc_store_lister *l,
                struct renc_store_list_stats *stats);
    /* ring_path: a path the caller may open itself (with io_uring), or NULL
     * when the store has no local file for the blob. */
    const char *(*ring_path)(struct renc_store *s, const struct renc_scan_item *it);
    /* open_read: the blob opened for reading: *fd (local; -1 for a store
     * read by ranges only) and its identity as read (what commit checks). */
    int (*open_read)(struct renc_store *s, const struct renc_scan_item *it, int *fd,
                     struct stat *id);
    /* read_range: len bytes at off of item it, which open_read opened as fd
     * (fewer at its end: *got says how many).  Blob storage reads the
     * version it listed (If-Match on its ETag): a blob changed since gives
     * -RENC_E_CHANGED, never a mix of two versions. */
    int (*read_range)(struct renc_store *s, const struct renc_scan_item *it, int fd, uint64_t off,
                      void *buf, size_t len, size_t *got);
    /* begin: where it's new version goes for mode (MIRROR: under the store's
     * root by it->rel, folders made, never followed; else the blob itself),
     * and its staging file (tags), a crashed attempt's left-over removed. */
    int (*begin)(struct renc_store *s, const struct renc_scan_item *it, enum renc_commit_mode mode,
                 const struct renc_store_tags *tags, struct renc_store_txn *txn);
    /* write_header: HEADER_IN_PLACE: new_hdr (len bytes) over the header of
     * the blob at txn->final, if it is still the one read (id); made
     * durable, mtime kept; on a failure the old header is put back.  The
     * caller has journaled both headers first. */
    int (*write_header)(struct renc_store *s, const struct renc_store_txn *txn,
                        const struct stat *id, const uint8_t *new_hdr, const uint8_t *old_hdr,
                        size_t len);
    /* append: len bytes added to the staged version of txn (a store read
     * and written by ranges: the engine's streamed path).  Local: written
     * to the staging file (opened on the first call).  Blob storage: one
     * block each call, so the first call (the header alone) is the header
     * block a later rewrap replaces. */
    int (*append)(struct renc_store *s, struct renc_store_txn *txn, const void *buf, size_t len);
    /* reserve, stage_at: a staged version written out of order, by many
     * threads (a big blob's chunks spread over the workers).  reserve makes
     * room for n more pieces after what append staged and gives the index
     * of the first; stage_at stages one piece: blob storage by its index
     * (its block's place in the list), a file at its offset in the new
     * version.  NULL: the store takes appends only. */
    int (*reserve)(struct renc_store *s, struct renc_store_txn *txn, uint64_t n,
                   uint64_t *first);
    int (*stage_at)(struct renc_store *s, struct renc_store_txn *txn, uint64_t index,
                    uint64_t offset, const void *buf, size_t len);
    /* commit_header: RENC_COMMIT_HEADER_BLOCK: new_hdr (new_len bytes, any
     * length) becomes the header of the blob txn names, whose header is
     * old_len bytes, keeping its records where they are; only if the blob
     * is still the one read.  -EOPNOTSUPP when the blob is not laid out
     * so (the caller rewrites it whole).  NULL for a store without it. */
    int (*commit_header)(struct renc_store *s, struct renc_store_txn *txn,
                         const struct renc_scan_item *it, const uint8_t *new_hdr, size_t new_len,
                         size_t old_len);
    /* header_layout: 1 when a rewrap of it (its header hdr_len bytes) can
     * go through commit_header, 0 when it would be rewritten whole, or a
     * negative error.  NULL where commit_header is. */
    int (*header_layout)(struct renc_store *s, const struct renc_scan_item *it, size_t hdr_len);
    /* unchanged: 0 when the source blob is still the one read (id),
     * -RENC_E_CHANGED when not. */
    int (*unchanged)(struct renc_store *s, const struct renc_scan_item *it, const struct stat *id);
    /* commit: the commit point: the durable staging copy becomes the blob
     * at txn->final, for REPLACE only if that is still the one read (id).
     * The staging copy is gone afterwards either way. */
    int (*commit)(struct renc_store *s, struct renc_store_txn *txn, const struct stat *id);
    /* barrier: makes the commits of txns durable (local: each directory
     * synced once).  Returns the first error. */
    int (*barrier)(struct renc_store *s, struct renc_store_txn *const *txns, size_t n);
    /* abort: the staging copy removed (the blob stays wholly old). */
    void (*abort)(struct renc_store *s, struct renc_store_txn *txn);
    /* remove: a blob (by the name a txn or listing gave) removed. */
    int (*remove)(struct renc_store *s, const char *name);
    /* sweep: the staging files named in temps (a listing's temp
     * callbacks) whose tag is one of tags are removed; others reported. */
    int (*sweep)(struct renc_store *s, char *const *temps, size_t ntemps,
                 const char *const *tags, size_t ntags, struct renc_store_sweep *out);
    /* retention: what the store keeps besides the current versions; NULL
     * for a store that keeps nothing else (a local tree). */
    int (*retention)(struct renc_store *s, struct renc_store_retention *r);
    void (*free)(struct renc_store *s);
};

/* Every store begins with this (implementations embed it first). */
struct renc_store {
    const struct renc_store_ops *ops;
};

/* What a store is opened over: the SOURCEs, or a manifest naming blobs,
 * or (an --out) one root.  exclude: a tree not to list (the --out). */
struct renc_blob_account_opts;
struct renc_store_spec {
    const char *const *sources;
    size_t source_count;
    const char *manifest;
    const char *exclude;
    const char *root;
    /* Blob storage's credentials (azure/blob.h), for a source or root that
     * is a container URL; NULL: none given (an anonymous or SAS URL). */
    const struct renc_blob_account_opts *blob;
    char *why;       /* may be NULL: why a store could not be opened */
    size_t why_max;
};

/* renc_store_open: the store for spec, chosen by its form: a container
 * URL (https://, http://, az://) is blob storage, anything else a local
 * path.  *out is freed with renc_store_free. */
int renc_store_open(struct renc_store **out, const struct renc_store_spec *spec);
void renc_store_free(struct renc_store *s);

/* renc_store_is_url: 1 when name is a blob storage URL, not a local path. */
int renc_store_is_url(const char *name);

/* renc_store_name_clean: name as it may be printed and recorded (a URL's
 * SAS signature removed; a path as it is), into out. */
int renc_store_name_clean(const char *name, char *out, size_t max);

/* renc_store_list_scan: the whole listing into scan (items, errors,
 * temporaries, counts), for callers that work on a list in memory. */
int renc_store_list_scan(struct renc_store *s, struct renc_scan *scan);

/* renc_store_fd_restore_header: after a failed in-place header write
 * through fd (local fast path): the old header put back through the same
 * descriptor (never by path: the name may be another file by now). */
void renc_store_fd_restore_header(int fd, const uint8_t *old_hdr, size_t len);

#endif
