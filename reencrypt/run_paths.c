/* The paths a run (cmd_run.c) writes or removes, as the run says them:
 * where --out mirrors the sources, never onto a source, and the
 * temporaries crashed attempts of the run left beside them.  The rules
 * themselves are the store's (store/mirror.h, renc_store_ops.sweep); this
 * file prints what they found.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/path.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "store/mirror.h"
#include "store/scan.h"
#include "store/store.h"

/* --out must not lie inside a source (the run would read its own output). */
int renc_mirror_out_inside(const struct renc_bulk_args *a, char *out_real, size_t max)
{
    /* A container and a local tree never hold one another; an --out
     * container is named without its SAS from here on. */
    if (renc_store_is_url(a->out))
        return renc_store_name_clean(a->out, out_real, max);
    int remote = 0;
    for (int i = 0; i < a->source_count; i++)
        remote |= renc_store_is_url(a->sources[i]);
    if (remote) /* a local --out for a container: made and canonical, nothing to hold it */
        return renc_store_out_inside(a->out, NULL, 0, out_real, max);
    return renc_store_out_inside(a->out, (const char *const *)a->sources,
                                 (size_t)a->source_count, out_real, max);
}

/* Returns -1 to continue or an exit code. */
int renc_mirror_check_paths(const char *cmd, const char *out, struct renc_scan *scan)
{
    struct renc_mirror_issues m;
    memset(&m, 0, sizeof m);
    int rc = renc_store_mirror_check_paths(scan, &m);
    for (size_t k = 0; k < m.count; k++) {
        const struct renc_scan_item *it = &scan->items[m.v[k].item];
        char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX], q3[RENC_PATH_QUOTE_MAX],
            q4[RENC_PATH_QUOTE_MAX];
        if (m.v[k].why == RENC_MIRROR_BAD_REL)
            renc_err(cmd, "%s: cannot be mirrored under --out %s (its path has '..' or no name)",
                     QP(q1, it->path), QP(q2, out));
        else
            renc_err(cmd, "%s and %s would both be written to %s/%s", QP(q1, it->path),
                     QP(q2, scan->items[m.v[k].other].path), QP(q3, out), QP(q4, it->rel));
    }
    int status = m.count ? RENC_EXIT_USAGE : -1;
    renc_mirror_issues_cleanup(&m);
    if (rc) {
        renc_err(cmd, "%s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    return status;
}

/* Why issue k would write a source, as a message says it. */
static void renc_mirror_why_text(char *why, size_t max, const struct renc_scan *scan,
                                 const struct renc_mirror_issue *is)
{
    char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX];
    QP(q1, scan->items[is->item].path);
    if (is->why == RENC_MIRROR_SELF)
        renc_textf(why, max, "%s would be written over itself (its mirror is the same file)", q1);
    else if (is->why == RENC_MIRROR_OVER_SOURCE)
        renc_textf(why, max, "%s would be written over the source %s (its mirror is that file)",
                   q1, QP(q2, scan->items[is->other].path));
    else
        renc_textf(why, max, "%s would be mirrored to %s, inside the source %s", q1,
                   QP(q2, is->canon), is->root);
}

/* Sources are never written with --out: refuses (exit 2) an --out under
 * which the mirror of a source item would be that item, another source
 * item, or a path inside a source folder (store/mirror.h).  Returns -1 to
 * continue or an exit code. */
int renc_mirror_check_not_source(const char *cmd, const struct renc_bulk_args *a,
                                 const char *out, const struct renc_scan *scan)
{
    struct renc_mirror_issues m;
    memset(&m, 0, sizeof m);
    if (renc_store_is_url(out) || (a->source_count && renc_store_is_url(a->sources[0])))
        return -1; /* one side in blob storage: the mirror cannot be a source file */
    int rc = renc_store_mirror_check_not_source(out, (const char *const *)a->sources,
                                                a->manifest ? 0 : (size_t)a->source_count,
                                                scan, &m);
    if (rc) {
        renc_mirror_issues_cleanup(&m);
        renc_err(cmd, "%s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    for (size_t k = 0; k < m.count && k < 5; k++) {
        char why[3 * RENC_PATH_QUOTE_MAX], q[RENC_PATH_QUOTE_MAX];
        renc_mirror_why_text(why, sizeof why, scan, &m.v[k]);
        renc_err(cmd, "--out %s: %s; sources are never written with --out: choose an "
                      "output folder outside the sources",
                 QP(q, a->out), why);
    }
    if (m.count > 5)
        renc_err(cmd, "--out: %zu more blobs the same way", m.count - 5);
    int status = m.count ? RENC_EXIT_USAGE : -1;
    renc_mirror_issues_cleanup(&m);
    return status;
}

/* Removes the temporaries crashed attempts of this run left in the sources
 * (the store's sweep: tags are the resumed run's id and the one a
 * --restart forgets, which the journal recorded before any was made), and
 * says what it removed and what it left alone. */
void renc_run_sweep_temps(const char *cmd, struct renc_store *store, const struct renc_scan *scan,
                          const char *const *tags, size_t ntags)
{
    struct renc_store_sweep sw;
    if (store->ops->sweep(store, scan->temps, scan->temp_count, tags, ntags, &sw) != 0)
        return;
    if (sw.removed)
        printf("%s: removed %llu temporary files left by crashed attempts of this run\n", cmd,
               (unsigned long long)sw.removed);
    if (sw.foreign)
        printf("%s: left alone %llu files named like temporaries that this run did not make"
               " (for example %s)\n", cmd, (unsigned long long)sw.foreign, sw.example);
}

/* What blob storage keeps besides the current versions (previous versions,
 * soft-deleted blobs) still holds data under the old keys: plan and run
 * say so (on stderr: plan's --json stays JSON), with the counts the
 * service gives. */
void renc_store_warn_retained(const char *cmd, struct renc_store *store)
{
    struct renc_store_retention r;
    if (!store->ops->retention || store->ops->retention(store, &r) != 0)
        return;
    if (r.old_versions > 0 || r.deleted > 0)
        renc_err(cmd, "warning: %s also holds %lld previous versions and %lld soft-deleted "
                      "blobs: they keep their data under the keys they were written with until "
                      "the account's retention removes them; keep those key versions until then",
               store->ops->describe(store), (long long)(r.old_versions > 0 ? r.old_versions : 0),
               (long long)(r.deleted > 0 ? r.deleted : 0));
    else if (r.soft_delete == 1)
        renc_err(cmd, "warning: the account keeps deleted blobs for a while (soft delete): "
                      "blobs deleted before this run may still hold data under old keys");
}
