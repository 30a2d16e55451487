/* store/store.c — choosing a store by the form of what was named, and
 * what every store shares (a listing collected into memory). */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "azure/blob.h"
#include "common/error.h"
#include "store/azblob.h"
#include "store/local.h"

int renc_store_is_url(const char *name)
{
    return name && renc_blob_is_url(name);
}

int renc_store_name_clean(const char *name, char *out, size_t max)
{
    if (renc_store_is_url(name))
        return renc_blob_redact(name, out, max);
    int n = snprintf(out, max, "%s", name);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

/* The one name a store is opened over, when it is one: a root, or a lone
 * source. */
static const char *renc_store_single(const struct renc_store_spec *spec)
{
    if (spec->root)
        return spec->root;
    return !spec->manifest && spec->source_count == 1 ? spec->sources[0] : NULL;
}

int renc_store_open(struct renc_store **out, const struct renc_store_spec *spec)
{
    const char *one = renc_store_single(spec);
    if (one && renc_store_is_url(one)) {
        int rc = renc_store_azblob_new(out, one, spec->blob, spec->why, spec->why_max);
        /* An --out container is made when missing, as an --out folder is. */
        if (rc == 0 && spec->root)
            renc_store_azblob_make_container(*out);
        return rc;
    }
    for (size_t i = 0; !spec->root && i < spec->source_count; i++)
        if (renc_store_is_url(spec->sources[i]))
            return -RENC_E_UNSUPPORTED; /* one container per run, not mixed with paths */
    return renc_store_local_new(out, spec);
}

void renc_store_txn_mine(struct renc_store_txn *txn, int fd)
{
    if (fd < 0 || renc_file_id_fd(fd, &txn->tmp_id) != 0)
        memset(&txn->tmp_id, 0, sizeof txn->tmp_id);
}

void renc_store_free(struct renc_store *s)
{
    if (s)
        s->ops->free(s);
}

int renc_store_list_scan(struct renc_store *s, struct renc_scan *scan)
{
    struct renc_store_lister l;
    renc_scan_lister(scan, &l);
    struct renc_store_list_stats stats;
    memset(&stats, 0, sizeof stats);
    int rc = s->ops->list(s, &l, &stats);
    scan->skipped_special += stats.skipped_special;
    scan->duplicates += stats.duplicates;
    return rc;
}
