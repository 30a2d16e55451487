/* store/store.c — choosing a store by the form of what was named, and
 * what every store shares (a listing collected into memory). */
#include "store/store.h"

#include <string.h>

#include "common/error.h"
#include "store/local.h"

int renc_store_open(struct renc_store **out, const struct renc_store_spec *spec)
{
    /* Every form is a local path today; a blob container URL will pick
     * the blob-storage store here (docs/internals/store.md). */
    return renc_store_local_new(out, spec);
}

void renc_store_free(struct renc_store *s)
{
    if (s)
        s->ops->free(s);
}

static int renc_collect_item(void *arg, struct renc_scan_item *it)
{
    return renc_scan_take(arg, it);
}

static int renc_collect_error(void *arg, const char *path, int rc)
{
    return renc_scan_add_error(arg, path, rc);
}

static int renc_collect_temp(void *arg, const char *path)
{
    return renc_scan_add_temp(arg, path);
}

int renc_store_list_scan(struct renc_store *s, struct renc_scan *scan)
{
    struct renc_store_lister l = {.item = renc_collect_item, .error = renc_collect_error,
                                  .temp = renc_collect_temp, .arg = scan};
    struct renc_store_list_stats stats;
    memset(&stats, 0, sizeof stats);
    int rc = s->ops->list(s, &l, &stats);
    scan->skipped_special += stats.skipped_special;
    scan->duplicates += stats.duplicates;
    return rc;
}
