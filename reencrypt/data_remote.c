/* The environment-data commands' side of a data root in blob storage
 * (cmd_data.h): an environment's blobs read from ROOT/<id>/blobs as
 * streams, and new blobs staged into it, then committed one by one.
 *
 * What is atomic there: each blob (a Put Block List or Put Blob makes it
 * wholly new at once).  A command that writes many (restore, copy) stages
 * them all first, so a backup or source that fails to open anywhere
 * leaves the target as it was; only a crash among the commits themselves
 * leaves some blobs new and some old, which the same command run again
 * completes (same names are replaced; docs/BLOBSTORAGE.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "blob/blobfile.h"
#include "env/envdata.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/cmd_run.h"
#include "store/one.h"
#include "store/store.h"

/* The store over ROOT/<id>/<sub>, with the credentials the environment
 * variables give.  Returns -1 to go on, or an exit (said why). */
static int renc_remote_store(struct renc_data_ctx *c, const struct renc_env *env,
                             const char *sub, struct renc_store_creds **creds,
                             struct renc_store **s, int is_root)
{
    char root[4096], url[4200], why[512] = "";
    *creds = renc_malloc(sizeof **creds);
    int rc = *creds ? renc_store_creds_from(&c->a.g, *creds) : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_envdata_root(root, sizeof root, c->a.g.data_dir, env);
    if (rc == 0 && snprintf(url, sizeof url, "%s/%s", root, sub) >= (int)sizeof url)
        rc = -ENAMETOOLONG;
    const char *sources[1] = {url};
    struct renc_store_spec spec = {.blob = *creds ? &(*creds)->blob : NULL, .why = why,
                                   .why_max = sizeof why};
    if (is_root)
        spec.root = url;
    else {
        spec.sources = sources;
        spec.source_count = 1;
    }
    if (rc == 0)
        rc = renc_store_open(s, &spec);
    if (rc == 0)
        return -1;
    renc_err(c->cmd, "%s: %s", env->data_root, why[0] ? why : renc_strerror(rc));
    return renc_exit_for(rc);
}

/* ---- reading -------------------------------------------------------------- */

int renc_data_src_open(struct renc_data_ctx *c, const struct renc_env *env,
                       struct renc_data_src *src)
{
    memset(src, 0, sizeof *src);
    if (!env->data_root[0])
        return renc_data_scan_blobs(c, env->id, &src->scan);
    int status = renc_remote_store(c, env, "blobs", &src->creds, &src->store, 0);
    if (status >= 0)
        return status;
    int rc = renc_store_list_scan(src->store, &src->scan);
    if (rc == -RENC_E_STORE_NOT_FOUND)
        return -1; /* no container yet: no blobs, as a missing folder */
    if (rc) {
        renc_err(c->cmd, "%s/%s/blobs: %s", env->data_root, env->id, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    if (src->scan.count > 1)
        qsort(src->scan.items, src->scan.count, sizeof *src->scan.items,
              renc_data_item_rel_cmp);
    return -1;
}

int renc_data_src_read(struct renc_data_src *src, size_t i, int *fd)
{
    *fd = -1;
    if (!src->store) {
        *fd = open(src->scan.items[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return *fd < 0 ? -errno : 0;
    }
    return renc_store_stream_open(&src->stream, src->store, &src->scan.items[i], fd);
}

int renc_data_src_done(struct renc_data_src *src, int fd, int rc)
{
    if (!src->stream) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int fill = renc_store_stream_end(src->stream); /* closes fd */
    src->stream = NULL;
    /* The bytes ended early because reading them failed: that is why. */
    return rc && fill ? fill : rc ? rc : fill;
}

int renc_data_src_header(struct renc_data_src *src, size_t i, int fd, struct renc_header *h,
                         int *have)
{
    int bad = 0;
    if (src->store) { /* fd is a stream: the header by a ranged read of the same version */
        *have = renc_store_read_header(src->store, &src->scan.items[i], h, &bad) == 0;
        return 0;
    }
    *have = renc_blob_read_header(fd, h, NULL) == 0;
    return lseek(fd, 0, SEEK_SET) != 0 ? -errno : 0;
}

void renc_data_src_close(struct renc_data_src *src)
{
    renc_store_stream_end(src->stream);
    renc_scan_cleanup(&src->scan);
    renc_store_free(src->store);
    renc_free(src->creds);
    memset(src, 0, sizeof *src);
}

/* ---- writing -------------------------------------------------------------- */

int renc_data_dst_open(struct renc_data_ctx *c, const struct renc_env *env,
                       struct renc_data_dst *dst)
{
    memset(dst, 0, sizeof *dst);
    return renc_remote_store(c, env, "blobs", &dst->creds, &dst->store, 1);
}

int renc_data_dst_begin(struct renc_data_dst *dst, struct renc_keystore *ks,
                        const struct renc_seal_opts *so, const char *name, uint64_t len)
{
    if (dst->n == dst->cap) {
        size_t cap = dst->cap ? 2 * dst->cap : 64;
        struct renc_store_txn *g = renc_realloc(dst->txns, cap * sizeof *g);
        RENC_RETURN_IF(!g, -RENC_E_NOMEM);
        dst->txns = g;
        dst->cap = cap;
    }
    struct renc_scan_item it = {.path = (char *)name, .rel = (char *)name};
    struct renc_store_tags tags = {.tag = "data"};
    struct renc_store_txn *txn = &dst->txns[dst->n];
    dst->write_rc = 0;
    int rc = dst->store->ops->begin(dst->store, &it, RENC_COMMIT_MIRROR, &tags, txn);
    if (rc == 0)
        dst->n++;
    if (rc == 0)
        rc = renc_store_sealer_new(&dst->ss, ks, so, dst->store, txn, len, &dst->st);
    return rc;
}

int renc_data_dst_write(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_data_dst *dst = arg;
    int rc = renc_store_sealer_write(dst->ss, buf, len);
    if (rc && !dst->write_rc)
        dst->write_rc = rc;
    return rc;
}

int renc_data_dst_end(struct renc_data_dst *dst)
{
    int rc = renc_store_sealer_finish(dst->ss);
    if (rc && !dst->write_rc)
        dst->write_rc = rc;
    renc_store_sealer_free(dst->ss);
    dst->ss = NULL;
    return rc;
}

int renc_data_dst_commit(struct renc_data_ctx *c, struct renc_data_dst *dst)
{
    for (; dst->done < dst->n; dst->done++) {
        struct renc_store_txn *txn = &dst->txns[dst->done];
        int rc = dst->store->ops->commit(dst->store, txn, NULL); /* this blob's commit point */
        if (rc) {
            dst->done++; /* commit freed its staged state either way */
            renc_err(c->cmd, "%s/%s: %s; %zu of %zu blobs are written (the same command "
                             "again writes them all)",
                     dst->store->ops->describe(dst->store), txn->final, renc_strerror(rc),
                     dst->done - 1, dst->n);
            return rc;
        }
    }
    return 0;
}

const char *renc_data_dst_where(const struct renc_data_dst *dst)
{
    return dst->store->ops->describe(dst->store);
}

void renc_data_dst_close(struct renc_data_dst *dst)
{
    renc_store_sealer_free(dst->ss);
    for (size_t i = dst->done; i < dst->n; i++) /* staged, never committed: dropped */
        dst->store->ops->abort(dst->store, &dst->txns[i]);
    renc_free(dst->txns);
    renc_store_free(dst->store);
    renc_free(dst->creds);
    memset(dst, 0, sizeof *dst);
}

/* ---- env reset ------------------------------------------------------------ */

int renc_data_remote_clear(struct renc_data_ctx *c, const struct renc_env *env,
                           uint64_t *files, uint64_t *bytes)
{
    static const char *const subs[] = {"blobs", "backups"};
    int status = -1;
    for (size_t i = 0; i < 2 && status < 0; i++) {
        struct renc_store_creds *creds = NULL;
        struct renc_store *s = NULL;
        struct renc_scan scan;
        memset(&scan, 0, sizeof scan);
        status = renc_remote_store(c, env, subs[i], &creds, &s, 0);
        int rc = status < 0 ? renc_store_list_scan(s, &scan) : 0;
        if (rc == -RENC_E_STORE_NOT_FOUND)
            rc = 0; /* no container: nothing to delete */
        for (size_t k = 0; status < 0 && rc == 0 && k < scan.count; k++) {
            rc = s->ops->remove(s, scan.items[k].path);
            if (rc == -RENC_E_CHANGED || rc == -RENC_E_STORE_NOT_FOUND)
                rc = 0; /* gone already */
            else if (rc == 0) {
                (*files)++;
                *bytes += scan.items[k].size;
            } else {
                renc_err(c->cmd, "%s: %s; %llu blobs deleted so far (the same command again "
                                 "deletes the rest)", scan.items[k].path, renc_strerror(rc),
                         (unsigned long long)*files);
                status = renc_exit_for(rc);
            }
        }
        if (status < 0 && rc) {
            renc_err(c->cmd, "%s: %s", s->ops->describe(s), renc_strerror(rc));
            status = renc_exit_for(rc);
        }
        if (status < 0 && i == 0)
            renc_store_warn_retained(c->cmd, s);
        renc_scan_cleanup(&scan);
        renc_store_free(s);
        renc_free(creds);
    }
    return status;
}
