/* store/one.c — see one.h. */
#include "store/one.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "azure/blob.h"
#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"

/* The URL of the folder that holds the blob url names: its last name
 * dropped, its query (a SAS) kept. */
static int renc_one_parent(const char *url, char *out, size_t max)
{
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);
    size_t cut = plen;
    while (cut > 0 && url[cut - 1] != '/')
        cut--;
    RENC_RETURN_IF(cut < 2, -RENC_E_INVALID);
    int n = snprintf(out, max, "%.*s%s", (int)(cut - 1), url, q ? q : "");
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

/* The blob's size and ETag (Get Blob Properties), on a connection of its
 * own: the store's are its own business. */
static int renc_one_head(const struct renc_blob_location *loc,
                         const struct renc_blob_account_opts *o, struct renc_scan_item *it,
                         char *why, size_t why_max)
{
    struct renc_blob_account *acct = NULL;
    struct renc_blob_conn *c = NULL;
    struct renc_blob_props p;
    memset(&p, 0, sizeof p);
    int rc = renc_blob_account_new(&acct, loc, o, why, why_max);
    if (rc == 0)
        rc = renc_blob_conn_new(&c, acct);
    if (rc == 0)
        rc = renc_blob_head(c, loc->container, loc->prefix, NULL, &p);
    if (rc == -RENC_E_CHANGED) /* 404 BlobNotFound, without an If-Match */
        rc = -ENOENT;
    if (rc == 0 && p.blob_type[0] && strcmp(p.blob_type, "BlockBlob") != 0)
        rc = -RENC_E_UNSUPPORTED; /* page and append blobs are not worked on */
    if (rc == 0) {
        it->size = p.size;
        if (!(it->etag = renc_strdup(p.etag)))
            rc = -RENC_E_NOMEM;
    }
    renc_blob_props_cleanup(&p);
    renc_blob_conn_free(c);
    renc_blob_account_free(acct);
    return rc;
}

int renc_store_open_one(struct renc_store **out, struct renc_scan_item *it, const char *url,
                        const struct renc_blob_account_opts *o, int for_write, char *why,
                        size_t why_max)
{
    struct renc_blob_location loc;
    memset(&loc, 0, sizeof loc);
    memset(it, 0, sizeof *it);
    char parent[RENC_STORE_PATH_MAX];
    int rc = renc_blob_parse_url(url, o ? o->connection_string : NULL, &loc, why, why_max);
    size_t plen = rc == 0 ? strlen(loc.prefix) : 0;
    if (rc == 0 && (plen == 0 || loc.prefix[plen - 1] == '/'))
        rc = -RENC_E_INVALID; /* a container or a folder, not one blob */
    if (rc == 0)
        rc = renc_one_parent(url, parent, sizeof parent);
    if (rc == 0) {
        const char *base = strrchr(loc.prefix, '/');
        size_t len = strlen(loc.endpoint) + strlen(loc.container) + plen + 3;
        it->path = renc_malloc(len);
        it->rel = renc_strdup(base ? base + 1 : loc.prefix);
        it->mode = 0100644;
        rc = it->path && it->rel ? 0 : -RENC_E_NOMEM;
        if (rc == 0)
            snprintf(it->path, len, "%s/%s/%s", loc.endpoint, loc.container, loc.prefix);
    }
    if (rc == 0 && !for_write)
        rc = renc_one_head(&loc, o, it, why, why_max);
    const char *sources[1] = {parent};
    struct renc_store_spec spec = {.sources = for_write ? NULL : sources,
                                   .source_count = for_write ? 0 : 1,
                                   .root = for_write ? parent : NULL, .blob = o, .why = why,
                                   .why_max = why_max};
    if (rc == 0)
        rc = renc_store_open(out, &spec);
    renc_blob_location_cleanup(&loc);
    if (rc)
        renc_store_one_cleanup(it);
    return rc;
}

void renc_store_one_cleanup(struct renc_scan_item *it)
{
    renc_free(it->path);
    renc_free(it->rel);
    renc_free(it->etag);
    memset(it, 0, sizeof *it);
}

int renc_store_read_header(struct renc_store *s, const struct renc_scan_item *it,
                           struct renc_header *h, int *bad)
{
    *bad = 0;
    if (it->size < RENC_PREFIX_LEN) {
        *bad = 1;
        return -RENC_E_TRUNCATED;
    }
    int fd = -1;
    struct stat id;
    int rc = s->ops->open_read(s, it, &fd, &id);
    if (rc)
        return rc;
    uint8_t prefix[RENC_PREFIX_LEN], *buf = NULL;
    size_t got = 0;
    uint16_t hlen = 0;
    rc = s->ops->read_range(s, it, fd, 0, prefix, sizeof prefix, &got);
    if (rc == 0 && (rc = renc_header_peek(&hlen, prefix, got)))
        *bad = 1;
    if (rc == 0 && !(buf = renc_malloc(hlen)))
        rc = -RENC_E_NOMEM;
    if (rc == 0)
        rc = s->ops->read_range(s, it, fd, 0, buf, hlen, &got);
    if (rc == 0 && got != hlen) {
        *bad = 1;
        rc = -RENC_E_TRUNCATED;
    }
    if (rc == 0 && (rc = renc_header_parse(h, buf, hlen)))
        *bad = 1;
    renc_free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int renc_store_fetch(struct renc_store *s, const struct renc_scan_item *it, int fd)
{
    size_t cap = 4u << 20;
    uint8_t *buf = renc_malloc(cap);
    int rc = buf ? 0 : -RENC_E_NOMEM, rfd = -1;
    struct stat id;
    if (rc == 0)
        rc = s->ops->open_read(s, it, &rfd, &id);
    for (uint64_t off = 0; rc == 0 && off < it->size;) {
        size_t want = it->size - off < cap ? (size_t)(it->size - off) : cap, got = 0;
        rc = s->ops->read_range(s, it, rfd, off, buf, want, &got);
        if (rc == 0 && got != want)
            rc = -RENC_E_TRUNCATED; /* shorter than found: it changed */
        if (rc == 0)
            rc = renc_file_write_full(fd, buf, got);
        off += got;
    }
    if (rfd >= 0)
        close(rfd);
    renc_free(buf);
    return rc;
}

/* ---- a blob as a stream ------------------------------------------------- */

struct renc_store_stream {
    struct renc_store *s;
    const struct renc_scan_item *it;
    int rfd, wfd;  /* the pipe's ends; rfd -1 for a local file handed out as is */
    int rc;        /* what filling found */
    int threaded;
    pthread_t thread;
};

static void *renc_stream_fill(void *arg)
{
    struct renc_store_stream *st = arg;
    /* A reader that stops early closes its end: the write then fails with
     * EPIPE here rather than a SIGPIPE killing the process. */
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
    st->rc = renc_store_fetch(st->s, st->it, st->wfd);
    close(st->wfd);
    st->wfd = -1;
    return NULL;
}

int renc_store_stream_open(struct renc_store_stream **out, struct renc_store *s,
                           const struct renc_scan_item *it, int *fd)
{
    *out = NULL;
    *fd = -1;
    struct renc_store_stream *st = renc_calloc(1, sizeof *st);
    RENC_RETURN_IF(!st, -RENC_E_NOMEM);
    st->s = s;
    st->it = it;
    st->rfd = st->wfd = -1;
    int rc = 0;
    if (s->ops->ring_path && s->ops->ring_path(s, it)) { /* a local file: itself */
        struct stat id;
        rc = s->ops->open_read(s, it, fd, &id);
    } else {
        int p[2];
        rc = pipe2(p, O_CLOEXEC) == 0 ? 0 : -errno;
        if (rc == 0) {
            st->rfd = *fd = p[0];
            st->wfd = p[1];
            (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20); /* fewer wakeups; the default works too */
            rc = -pthread_create(&st->thread, NULL, renc_stream_fill, st);
            st->threaded = rc == 0;
        }
    }
    if (rc) {
        if (*fd >= 0)
            close(*fd);
        if (st->wfd >= 0)
            close(st->wfd);
        renc_free(st);
        *fd = -1;
        return rc;
    }
    if (st->rfd < 0)
        st->rfd = *fd;
    *out = st;
    return 0;
}

int renc_store_stream_end(struct renc_store_stream *st)
{
    if (!st)
        return 0;
    close(st->rfd); /* first: a filler blocked on a full pipe gets EPIPE */
    if (st->threaded)
        pthread_join(st->thread, NULL);
    int rc = st->rc == -EPIPE ? 0 : st->rc; /* the reader stopped: its reason stands */
    renc_free(st);
    return rc;
}
