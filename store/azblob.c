/* store/azblob.c — the blob-storage store: a container (or a prefix in
 * it) of an Azure Blob Storage account, through azure/blob.h.
 *
 * The invariant holds by the service's own atomic step: a new version is
 * staged as uncommitted blocks (invisible to readers) and made visible by
 * one Put Block List carrying If-Match on the ETag the listing saw, so a
 * blob someone else changed during the run is never overwritten (412:
 * -RENC_E_CHANGED), and every read of a blob carries the same If-Match,
 * so a run never mixes two versions.  The blocks a run leaves uncommitted
 * when it crashes are invisible and expire with the service's garbage
 * collection; each staged version's block ids carry a random part of its
 * own, so no attempt can pick up another's block.
 *
 * A blob this store writes is laid out as blocks [header][records...]: a
 * rewrap then stages one new header block and commits it with the record
 * blocks the blob already has (commit_header), moving only the header.
 * docs/internals/store.md has the op-by-op mapping.
 */
#include "store/azblob.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "azure/blob.h"
#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "store/azblob_attrs.h"

struct renc_store_azblob {
    struct renc_store base;
    struct renc_blob_location loc;
    struct renc_blob_account *acct;
    char base_url[RENC_STORE_PATH_MAX]; /* ENDPOINT/CONTAINER, no SAS: items' paths start so */
    char prefix[RENC_STORE_PATH_MAX];   /* "" or "dir/": what listing and mirror names start with */
    pthread_mutex_t lock;               /* the connection pool */
    struct renc_blob_conn **idle;
    size_t nidle, idle_cap;
    _Atomic uint64_t kept;              /* small versions' bytes held for their Put Blob */
};

/* A blob up to this size is written in one Put Blob (under If-Match, so
 * as atomic as a block list): one request instead of three, and a rewrap
 * of it moves no more requests than a header block would. */
#define RENC_AZB_SINGLE_MAX ((uint64_t)256 << 10)

/* What all small versions staged at once may hold in memory: a command
 * that stages many blobs before committing any (put, restore, copy) has
 * the ones past it staged as blocks instead, so its memory stays bounded
 * whatever the count.  The engine's workers hold far less. */
#define RENC_AZB_KEPT_MAX ((uint64_t)64 << 20)

/* A staged version (txn->priv). */
struct renc_azblob_txn {
    char etag[RENC_BLOB_ETAG_MAX]; /* the version read: the commit's If-Match ("" none) */
    char tag[32];                  /* this version's block-id tag: random, its own */
    char **ids;                    /* blocks staged, in order */
    size_t n, cap;
    int single;                    /* a small blob: kept in buf, committed by one Put Blob */
    uint8_t *buf;
    size_t len, buf_cap;
    _Atomic uint64_t *kept;        /* the store's count of bytes kept, which buf_cap is in */
    size_t first_len;              /* the first append (the header), kept apart */
    struct renc_blob_props props;  /* carried over to the new version */
    char *tags;                    /* index tags carried over, or NULL */
    int have_props;
};

static struct renc_store_azblob *renc_azb(struct renc_store *s)
{
    return (struct renc_store_azblob *)s;
}

/* ---- connections: one per thread at a time, kept for reuse -------------- */

static int renc_azb_conn(struct renc_store_azblob *z, struct renc_blob_conn **c)
{
    pthread_mutex_lock(&z->lock);
    *c = z->nidle ? z->idle[--z->nidle] : NULL;
    pthread_mutex_unlock(&z->lock);
    return *c ? 0 : renc_blob_conn_new(c, z->acct);
}

static void renc_azb_release(struct renc_store_azblob *z, struct renc_blob_conn *c)
{
    pthread_mutex_lock(&z->lock);
    if (z->nidle == z->idle_cap) {
        size_t cap = z->idle_cap ? 2 * z->idle_cap : 16;
        struct renc_blob_conn **g = renc_realloc(z->idle, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&z->lock);
            renc_blob_conn_free(c);
            return;
        }
        z->idle = g;
        z->idle_cap = cap;
    }
    z->idle[z->nidle++] = c;
    pthread_mutex_unlock(&z->lock);
}

void renc_store_azblob_make_container(struct renc_store *s)
{
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    if (renc_azb_conn(z, &c) == 0) {
        (void)renc_blob_create_container(c, z->loc.container);
        renc_azb_release(z, c);
    }
}

/* ---- names ------------------------------------------------------------------ */

/* An item's path is BASE_URL/NAME: the blob's name is what follows. */
static const char *renc_azb_name(const struct renc_store_azblob *z, const char *path)
{
    size_t bl = strlen(z->base_url);
    if (strncmp(path, z->base_url, bl) == 0 && path[bl] == '/')
        return path + bl + 1;
    return path; /* already a blob name (a txn's final) */
}

static const char *renc_azb_describe(const struct renc_store *s)
{
    return ((const struct renc_store_azblob *)s)->base_url;
}

/* ---- listing -------------------------------------------------------------- */

struct renc_azb_lister {
    struct renc_store_azblob *z;
    const struct renc_store_lister *l;
    struct renc_store_list_stats *stats;
};

/* One listed blob streamed out as an item: its path the URL (no SAS), rel
 * its name under the prefix, its ETag the version the run reads and
 * replaces, its attrs the props and tags that version carries (so that
 * rewriting it needs no HEAD).  Page and append blobs are not ours to
 * rewrite as blocks: counted and left alone. */
static int renc_azb_list_item(void *arg, const struct renc_blob_item *bi)
{
    struct renc_azb_lister *al = arg;
    if (bi->blob_type && strcmp(bi->blob_type, "BlockBlob") != 0) {
        if (al->stats)
            al->stats->skipped_special++;
        return 0;
    }
    size_t pl = strlen(al->z->prefix);
    const char *rel = strncmp(bi->name, al->z->prefix, pl) == 0 ? bi->name + pl : bi->name;
    if (!rel[0] || !al->l->item)
        return 0;
    size_t len = strlen(al->z->base_url) + 1 + strlen(bi->name) + 1;
    struct renc_scan_item it = {.path = renc_malloc(len), .rel = renc_strdup(rel),
                                .etag = renc_strdup(bi->etag ? bi->etag : ""),
                                .size = bi->size, .mode = S_IFREG | 0644};
    int rc = it.path && it.rel && it.etag ? 0 : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_azb_attrs_make(&it.attrs, bi->props, bi->tags);
    if (rc == 0) {
        snprintf(it.path, len, "%s/%s", al->z->base_url, bi->name);
        rc = al->l->item(al->l->arg, &it);
    }
    renc_free(it.path);
    renc_free(it.rel);
    renc_free(it.etag);
    renc_free(it.attrs);
    return rc;
}

/* List Blobs page by page (5,000 a page, the service's most), each item
 * streamed out as it is parsed: memory does not grow with the container. */
static int renc_azb_list(struct renc_store *s, const struct renc_store_lister *l,
                         struct renc_store_list_stats *stats)
{
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    struct renc_azb_lister al = {.z = z, .l = l, .stats = stats};
    char marker[1024] = "", next[1024];
    do {
        rc = renc_blob_list_page(c, z->loc.container, z->prefix, marker, 5000,
                                 RENC_BLOB_LIST_METADATA | RENC_BLOB_LIST_TAGS,
                                 renc_azb_list_item, &al, next, sizeof next);
        snprintf(marker, sizeof marker, "%s", next);
    } while (rc == 0 && marker[0]);
    renc_azb_release(z, c);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

static const char *renc_azb_ring_path(struct renc_store *s, const struct renc_scan_item *it)
{
    (void)s;
    (void)it;
    return NULL; /* no local file: the engine reads by ranges */
}

/* The identity is the ETag the listing saw (kept in the item); a read of
 * any other version fails, so nothing is fetched here. */
static int renc_azb_open_read(struct renc_store *s, const struct renc_scan_item *it, int *fd,
                              struct stat *id)
{
    (void)s;
    memset(id, 0, sizeof *id);
    id->st_size = (off_t)it->size;
    id->st_mode = S_IFREG | 0644;
    id->st_nlink = 1;
    *fd = -1;
    return 0;
}

static int renc_azb_read_range(struct renc_store *s, const struct renc_scan_item *it, int fd,
                               uint64_t off, void *buf, size_t len, size_t *got)
{
    (void)fd;
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    rc = renc_blob_get_range(c, z->loc.container, renc_azb_name(z, it->path),
                             it->etag && it->etag[0] ? it->etag : NULL, off, buf, len, got);
    renc_azb_release(z, c);
    return rc;
}

static int renc_azb_unchanged(struct renc_store *s, const struct renc_scan_item *it,
                              const struct stat *id)
{
    (void)id;
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    struct renc_blob_props p;
    memset(&p, 0, sizeof p);
    rc = renc_blob_head(c, z->loc.container, renc_azb_name(z, it->path), it->etag, &p);
    renc_blob_props_cleanup(&p);
    renc_azb_release(z, c);
    return rc;
}

/* ---- staging and committing ------------------------------------------------ */

/* A small version's buffer freed, and its bytes out of the store's count. */
static void renc_azb_unkeep(struct renc_azblob_txn *t)
{
    if (t->kept && t->buf_cap)
        atomic_fetch_sub(t->kept, t->buf_cap);
    renc_free(t->buf);
    t->buf = NULL;
    t->len = t->buf_cap = 0;
}

static void renc_azb_txn_free(struct renc_store_txn *txn)
{
    struct renc_azblob_txn *t = txn->priv;
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        renc_free(t->ids[i]);
    renc_free(t->ids);
    renc_azb_unkeep(t);
    if (t->have_props)
        renc_blob_props_cleanup(&t->props);
    renc_free(t->tags);
    renc_free(t);
    txn->priv = NULL;
}

/* What the new version carries over from the one read: its content
 * headers, metadata and index tags.  As the listing gave them when it did
 * (attrs; the commit's If-Match on the listed ETag makes them exactly that
 * version's), else read under If-Match (a changed blob stops here); the
 * tags asked for when the listing had none to give but says there are. */
static int renc_azb_carry(struct renc_store_azblob *z, const struct renc_scan_item *it,
                          const char *name, struct renc_azblob_txn *t)
{
    int listed = it->attrs && renc_azb_attrs_read(it->attrs, &t->props, &t->tags) == 0;
    t->have_props = 1;
    if (listed && (t->tags || t->props.tag_count == 0))
        return 0;
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    if (!listed)
        rc = renc_blob_head(c, z->loc.container, name, t->etag, &t->props);
    if (rc == 0 && t->props.tag_count > 0 && !t->tags)
        rc = renc_blob_get_tags(c, z->loc.container, name, t->etag, &t->tags);
    renc_azb_release(z, c);
    return rc;
}

/* A random tag of 24 hex digits for one staged version's block ids. */
static int renc_azb_random_tag(char *out, size_t max)
{
    unsigned char r[12];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -errno;
    for (size_t i = 0; i < sizeof r && 2 * i + 2 < max; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

static int renc_azb_begin(struct renc_store *s, const struct renc_scan_item *it,
                          enum renc_commit_mode mode, const struct renc_store_tags *tags,
                          struct renc_store_txn *txn)
{
    (void)tags;
    struct renc_store_azblob *z = renc_azb(s);
    memset(txn, 0, sizeof *txn);
    txn->mode = mode;
    txn->fd = -1;
    if (mode == RENC_COMMIT_HEADER_BLOCK && it->size <= RENC_AZB_SINGLE_MAX)
        return -EOPNOTSUPP; /* a small blob is one piece: rewritten whole, in one request */
    int n = mode == RENC_COMMIT_MIRROR
                ? snprintf(txn->final, sizeof txn->final, "%s%s", z->prefix, it->rel)
                : snprintf(txn->final, sizeof txn->final, "%s", renc_azb_name(z, it->path));
    if (n < 0 || (size_t)n >= sizeof txn->final)
        return -ENAMETOOLONG;
    struct renc_azblob_txn *t = renc_calloc(1, sizeof *t);
    RENC_RETURN_IF(!t, -RENC_E_NOMEM);
    txn->priv = t;
    t->kept = &z->kept;
    /* Small, or of a size not known yet (a file being sealed): kept for one
     * Put Blob until it grows past the limit (renc_azb_unsingle). */
    t->single = mode != RENC_COMMIT_HEADER_BLOCK && it->size <= RENC_AZB_SINGLE_MAX;
    int rc = renc_azb_random_tag(t->tag, sizeof t->tag);
    if (rc == 0 && mode != RENC_COMMIT_MIRROR) {
        snprintf(t->etag, sizeof t->etag, "%s", it->etag ? it->etag : "");
        rc = renc_azb_carry(z, it, txn->final, t);
    }
    if (rc)
        renc_azb_txn_free(txn);
    return rc;
}

/* Stages one block (and remembers its id for the commit). */
static int renc_azb_stage(struct renc_store_azblob *z, struct renc_store_txn *txn,
                          const void *buf, size_t len)
{
    struct renc_azblob_txn *t = txn->priv;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **g = renc_realloc(t->ids, cap * sizeof *g);
        RENC_RETURN_IF(!g, -RENC_E_NOMEM);
        t->ids = g;
        t->cap = cap;
    }
    char id[96];
    int rc = renc_fault_check("write"); /* crash tests: die before a block is staged */
    if (rc == 0)
        rc = renc_blob_block_id(t->tag, t->n, id);
    struct renc_blob_conn *c;
    if (rc == 0 && (rc = renc_azb_conn(z, &c)) == 0) {
        rc = renc_blob_put_block(c, z->loc.container, txn->final, id, buf, len);
        renc_azb_release(z, c);
    }
    if (rc == 0 && !(t->ids[t->n] = renc_strdup(id)))
        rc = -RENC_E_NOMEM;
    if (rc == 0) {
        t->n++;
        txn->appended += len;
    }
    return rc;
}

static int renc_azb_unsingle(struct renc_store_azblob *z, struct renc_store_txn *txn);

/* Room for n blocks staged out of order after those appended (their ids
 * filled in by stage_at, each by its own thread). */
static int renc_azb_reserve(struct renc_store *s, struct renc_store_txn *txn, uint64_t n,
                            uint64_t *first)
{
    struct renc_azblob_txn *t = txn->priv;
    RENC_RETURN_IF(!t, -RENC_E_INVALID);
    int rc = t->single ? renc_azb_unsingle(renc_azb(s), txn) : 0;
    RENC_RETURN_IF(rc, rc);
    RENC_RETURN_IF(t->n + n > 50000, -RENC_E_TOO_BIG); /* the service's committed-block limit */
    if (t->n + n > t->cap) {
        char **g = renc_realloc(t->ids, (t->n + n) * sizeof *g);
        RENC_RETURN_IF(!g, -RENC_E_NOMEM);
        t->ids = g;
        t->cap = t->n + n;
    }
    memset(t->ids + t->n, 0, n * sizeof *t->ids);
    *first = t->n;
    t->n += n;
    return 0;
}

static int renc_azb_stage_at(struct renc_store *s, struct renc_store_txn *txn, uint64_t index,
                             uint64_t offset, const void *buf, size_t len)
{
    (void)offset;
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_azblob_txn *t = txn->priv;
    RENC_RETURN_IF(!t || index >= t->n || t->ids[index], -RENC_E_INVALID);
    char id[96];
    int rc = renc_fault_check("write");
    if (rc == 0)
        rc = renc_blob_block_id(t->tag, index, id);
    struct renc_blob_conn *c;
    if (rc == 0 && (rc = renc_azb_conn(z, &c)) == 0) {
        rc = renc_blob_put_block(c, z->loc.container, txn->final, id, buf, len);
        renc_azb_release(z, c);
    }
    if (rc == 0 && !(t->ids[index] = renc_strdup(id)))
        rc = -RENC_E_NOMEM;
    return rc;
}

/* A small blob's bytes kept for its one Put Blob. */
static int renc_azb_keep(struct renc_azblob_txn *t, const void *buf, size_t len)
{
    if (t->len + len > t->buf_cap) {
        size_t cap = t->buf_cap ? t->buf_cap : 4096;
        while (cap < t->len + len)
            cap *= 2;
        uint8_t *g = renc_realloc(t->buf, cap);
        RENC_RETURN_IF(!g, -RENC_E_NOMEM);
        atomic_fetch_add(t->kept, cap - t->buf_cap);
        t->buf = g;
        t->buf_cap = cap;
    }
    memcpy(t->buf + t->len, buf, len);
    t->len += len;
    return 0;
}

/* A version begun as small (its size was small, or not known) that grew
 * past the limit: what it kept is staged as blocks, the header (the first
 * append) alone, and it goes on as blocks. */
static int renc_azb_unsingle(struct renc_store_azblob *z, struct renc_store_txn *txn)
{
    struct renc_azblob_txn *t = txn->priv;
    uint64_t appended = txn->appended;
    t->single = 0;
    int rc = t->first_len ? renc_azb_stage(z, txn, t->buf, t->first_len) : 0;
    if (rc == 0 && t->len > t->first_len)
        rc = renc_azb_stage(z, txn, t->buf + t->first_len, t->len - t->first_len);
    txn->appended = appended;
    renc_azb_unkeep(t);
    return rc;
}

static int renc_azb_append(struct renc_store *s, struct renc_store_txn *txn, const void *buf,
                           size_t len)
{
    struct renc_azblob_txn *t = txn->priv;
    RENC_RETURN_IF(!t, -RENC_E_INVALID);
    if (!len)
        return 0;
    int rc = 0;
    if (t->single && (t->len + len > RENC_AZB_SINGLE_MAX ||
                      atomic_load(t->kept) + len > RENC_AZB_KEPT_MAX))
        rc = renc_azb_unsingle(renc_azb(s), txn);
    if (rc || !t->single)
        return rc ? rc : renc_azb_stage(renc_azb(s), txn, buf, len);
    if (t->len == 0)
        t->first_len = len;
    if ((rc = renc_azb_keep(t, buf, len)) == 0)
        txn->appended += len;
    return rc;
}

/* After a 412 on a commit: 1 when the blob's committed blocks are exactly
 * ids, i.e. the commit that answered 412 was a retry of our own commit
 * that had gone through (its answer lost with the connection), not
 * another writer's change. */
static int renc_azb_ours(struct renc_store_azblob *z, struct renc_blob_conn *c, const char *name,
                         char *const *ids, size_t n)
{
    struct renc_blob_block *bl = NULL;
    size_t m = 0;
    int ours = renc_blob_block_list(c, z->loc.container, name, NULL, &bl, &m) == 0 && m == n;
    for (size_t i = 0; ours && i < n; i++)
        ours = strcmp(bl[i].id, ids[i]) == 0;
    renc_free(bl);
    return ours;
}

/* After a 412 on a Put Blob: 1 when the blob holds exactly our bytes (the
 * retry of a Put Blob that had gone through, as renc_azb_ours). */
static int renc_azb_ours_bytes(struct renc_store_azblob *z, struct renc_blob_conn *c,
                               const char *name, const struct renc_azblob_txn *t)
{
    uint8_t *cur = renc_malloc(t->len + 1);
    size_t got = 0;
    int ours = cur && renc_blob_get_range(c, z->loc.container, name, NULL, 0, cur, t->len + 1,
                                          &got) == 0 &&
               got == t->len && memcmp(cur, t->buf, t->len) == 0;
    renc_free(cur);
    return ours;
}

/* A small blob's commit point: one Put Blob under If-Match. */
static int renc_azb_put_single(struct renc_store_azblob *z, const char *name, const char *if_match,
                               const struct renc_azblob_txn *t)
{
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    rc = renc_fault_check("fsync"); /* crash tests: die just before the commit point */
    if (rc == 0)
        rc = renc_blob_put(c, z->loc.container, name, t->buf, t->len, if_match, 0,
                           t->have_props ? &t->props : NULL, t->tags, NULL);
    if (rc == -RENC_E_CHANGED && renc_azb_ours_bytes(z, c, name, t))
        rc = 0;
    renc_azb_release(z, c);
    return rc;
}

/* Put Block List (see renc_blob_put_block_list), a 412 checked against
 * our own commit having gone through already (renc_azb_ours). */
static int renc_azb_put_list(struct renc_store_azblob *z, const char *name, char *const *ids,
                             size_t n, size_t n_new, const char *if_match,
                             const struct renc_azblob_txn *t)
{
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    rc = renc_fault_check("fsync"); /* crash tests: die just before the commit point */
    if (rc == 0)
        rc = renc_blob_put_block_list(c, z->loc.container, name, ids, n, n_new, if_match, 0,
                                      t->have_props ? &t->props : NULL, t->tags, NULL);
    if (rc == -RENC_E_CHANGED && n > 0 && renc_azb_ours(z, c, name, ids, n))
        rc = 0;
    renc_azb_release(z, c);
    return rc;
}

/* Commit point: Put Block List of the staged blocks.  In place, only onto
 * the version read (If-Match: a 412 is a blob changed during the run, left
 * as its other writer made it); a mirror's copy replaces what its name
 * held.  The blocks and the carried properties are dropped either way. */
static int renc_azb_commit(struct renc_store *s, struct renc_store_txn *txn,
                           const struct stat *id)
{
    (void)id;
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_azblob_txn *t = txn->priv;
    RENC_RETURN_IF(!t, -RENC_E_INVALID);
    for (size_t i = 0; i < t->n; i++)
        if (!t->ids[i]) { /* a reserved block never staged: nothing to commit */
            renc_azb_txn_free(txn);
            return -RENC_E_INVALID;
        }
    int guarded = txn->mode != RENC_COMMIT_MIRROR && t->etag[0];
    const char *if_match = guarded ? t->etag : NULL;
    int rc = t->single ? renc_azb_put_single(z, txn->final, if_match, t)
                       : renc_azb_put_list(z, txn->final, t->ids, t->n, t->n, if_match, t);
    renc_azb_txn_free(txn);
    return rc;
}

/* The blob's committed blocks, when it is laid out as [header][records...]
 * with ids of the one length every id of a blob must share; else
 * -EOPNOTSUPP (a blob put in one piece: rewritten whole the first time). */
static int renc_azb_layout(struct renc_blob_conn *c, const char *container, const char *name,
                           const char *etag, size_t old_len, struct renc_blob_block **bl,
                           size_t *n)
{
    int rc = renc_blob_block_list(c, container, name, etag, bl, n);
    if (rc)
        return rc;
    char probe[96];
    if ((rc = renc_blob_block_id("probe", 0, probe)))
        return rc;
    if (*n == 0 || (*bl)[0].size != old_len)
        return -EOPNOTSUPP;
    for (size_t i = 0; i < *n; i++)
        if (strlen((*bl)[i].id) != strlen(probe))
            return -EOPNOTSUPP;
    return 0;
}

/* RENC_COMMIT_HEADER_BLOCK: one new header block staged, committed with
 * the record blocks the blob already holds (as <Committed>), under
 * If-Match on the version read: only the header's bytes travel. */
static int renc_azb_commit_header(struct renc_store *s, struct renc_store_txn *txn,
                                  const struct renc_scan_item *it, const uint8_t *new_hdr,
                                  size_t new_len, size_t old_len)
{
    (void)it;
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_azblob_txn *t = txn->priv;
    RENC_RETURN_IF(!t, -RENC_E_INVALID);
    struct renc_blob_conn *c;
    struct renc_blob_block *bl = NULL;
    size_t n = 0;
    int rc = renc_azb_conn(z, &c);
    if (rc == 0) {
        rc = renc_azb_layout(c, z->loc.container, txn->final, t->etag, old_len, &bl, &n);
        renc_azb_release(z, c);
    }
    if (rc == 0)
        rc = renc_azb_stage(z, txn, new_hdr, new_len);
    char **ids = rc == 0 ? renc_calloc(n, sizeof *ids) : NULL;
    if (rc == 0 && !ids)
        rc = -RENC_E_NOMEM;
    if (rc == 0) {
        ids[0] = t->ids[0];
        for (size_t i = 1; i < n; i++)
            ids[i] = bl[i].id;
        rc = renc_azb_put_list(z, txn->final, ids, n, 1, t->etag, t);
    }
    renc_free(ids);
    renc_free(bl);
    renc_azb_txn_free(txn);
    return rc;
}

static int renc_azb_header_layout(struct renc_store *s, const struct renc_scan_item *it,
                                  size_t hdr_len)
{
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    struct renc_blob_block *bl = NULL;
    size_t n = 0;
    int rc = renc_azb_conn(z, &c);
    if (rc)
        return rc;
    rc = renc_azb_layout(c, z->loc.container, renc_azb_name(z, it->path), it->etag, hdr_len,
                         &bl, &n);
    renc_azb_release(z, c);
    renc_free(bl);
    return rc == 0 ? 1 : rc == -EOPNOTSUPP ? 0 : rc;
}

static int renc_azb_barrier(struct renc_store *s, struct renc_store_txn *const *txns, size_t n)
{
    (void)s;
    (void)txns;
    (void)n;
    return 0; /* Put Block List is durable when it answers */
}

static void renc_azb_abort(struct renc_store *s, struct renc_store_txn *txn)
{
    (void)s;
    renc_azb_txn_free(txn); /* uncommitted blocks are invisible and expire */
}

static int renc_azb_remove(struct renc_store *s, const char *name)
{
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    int rc = renc_azb_conn(z, &c);
    if (rc == 0) {
        rc = renc_blob_delete(c, z->loc.container, renc_azb_name(z, name), NULL);
        renc_azb_release(z, c);
    }
    return rc;
}

static int renc_azb_sweep(struct renc_store *s, char *const *temps, size_t ntemps,
                          const char *const *tags, size_t ntags, struct renc_store_sweep *out)
{
    (void)s;
    (void)temps;
    (void)ntemps;
    (void)tags;
    (void)ntags;
    memset(out, 0, sizeof *out); /* nothing to sweep: staged blocks are never visible */
    return 0;
}

static int renc_azb_retention(struct renc_store *s, struct renc_store_retention *r)
{
    struct renc_store_azblob *z = renc_azb(s);
    struct renc_blob_conn *c;
    struct renc_blob_retention br = {.soft_delete = -1, .old_versions = -1, .deleted = -1};
    int rc = renc_azb_conn(z, &c);
    if (rc == 0) {
        rc = renc_blob_retention(c, z->loc.container, z->prefix, &br);
        renc_azb_release(z, c);
    }
    *r = (struct renc_store_retention){br.soft_delete, br.old_versions, br.deleted};
    return rc;
}

static void renc_azb_free(struct renc_store *s)
{
    struct renc_store_azblob *z = renc_azb(s);
    for (size_t i = 0; i < z->nidle; i++)
        renc_blob_conn_free(z->idle[i]);
    renc_free(z->idle);
    renc_blob_account_free(z->acct);
    renc_blob_location_cleanup(&z->loc);
    pthread_mutex_destroy(&z->lock);
    renc_free(z);
}

static const struct renc_store_ops renc_store_azblob_ops = {
    .kind = RENC_STORE_AZBLOB,
    .kind_name = "azure-blob",
    .describe = renc_azb_describe,
    .list = renc_azb_list,
    .ring_path = renc_azb_ring_path,
    .open_read = renc_azb_open_read,
    .read_range = renc_azb_read_range,
    .begin = renc_azb_begin,
    .write_header = NULL,
    .append = renc_azb_append,
    .reserve = renc_azb_reserve,
    .stage_at = renc_azb_stage_at,
    .commit_header = renc_azb_commit_header,
    .header_layout = renc_azb_header_layout,
    .unchanged = renc_azb_unchanged,
    .commit = renc_azb_commit,
    .barrier = renc_azb_barrier,
    .abort = renc_azb_abort,
    .remove = renc_azb_remove,
    .sweep = renc_azb_sweep,
    .retention = renc_azb_retention,
    .free = renc_azb_free,
};

/* The names the store hands out: BASE_URL (ENDPOINT/CONTAINER) and the
 * listing prefix as a folder ("dir/"). */
static int renc_azb_names(struct renc_store_azblob *z)
{
    int n = snprintf(z->base_url, sizeof z->base_url, "%s/%s", z->loc.endpoint, z->loc.container);
    if (n < 0 || (size_t)n >= sizeof z->base_url)
        return -ENAMETOOLONG;
    size_t pl = strlen(z->loc.prefix);
    n = snprintf(z->prefix, sizeof z->prefix, "%s%s", z->loc.prefix,
                 pl && z->loc.prefix[pl - 1] != '/' ? "/" : "");
    return n < 0 || (size_t)n >= sizeof z->prefix ? -ENAMETOOLONG : 0;
}

int renc_store_azblob_new(struct renc_store **out, const char *url,
                          const struct renc_blob_account_opts *o, char *why, size_t why_max)
{
    struct renc_store_azblob *z = renc_calloc(1, sizeof *z);
    RENC_RETURN_IF(!z, -RENC_E_NOMEM);
    z->base.ops = &renc_store_azblob_ops;
    pthread_mutex_init(&z->lock, NULL);
    struct renc_blob_account_opts none;
    memset(&none, 0, sizeof none);
    int rc = renc_blob_parse_url(url, o ? o->connection_string : NULL, &z->loc, why, why_max);
    if (rc == 0)
        rc = renc_azb_names(z);
    if (rc == 0)
        rc = renc_blob_account_new(&z->acct, &z->loc, o ? o : &none, why, why_max);
    if (rc) {
        renc_azb_free(&z->base);
        return rc;
    }
    *out = &z->base;
    return 0;
}
