/* A run's journal (cmd_run.c): opening or resuming it, which first settles
 * the in-place header writes a crashed attempt left, and the work list it
 * leaves: the blobs no earlier attempt finished.
 */
#include <stdint.h>
#include <stdio.h>

#include "common/alloc.h"
#include "common/error.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "state/journal.h"
#include "store/scan.h"
#include "run/session.h"

/* What the journal's recovery of a crashed attempt did, in one line. */
static void renc_bulk_say_recovered(const char *cmd, const struct renc_recover_stats *r)
{
    if (r->found_new + r->found_old + r->repaired + r->gone + r->replaced + r->unresolved)
        printf("%s: recovered in-place header writes of a crashed attempt: %llu found "
               "rewritten, %llu found as they were, %llu completed from the journal, "
               "%llu unresolved",
               cmd, (unsigned long long)r->found_new, (unsigned long long)r->found_old,
               (unsigned long long)r->repaired, (unsigned long long)r->unresolved);
    if (r->gone + r->replaced)
        printf("; %llu gone, %llu replaced by another writer (left as they are)",
               (unsigned long long)r->gone, (unsigned long long)r->replaced);
    if (r->found_new + r->found_old + r->repaired + r->gone + r->replaced + r->unresolved)
        putchar('\n');
}

int renc_journal_say_password(const char *cmd, const char *where, int rc)
{
    if (rc != -RENC_E_INSECURE_PERMS || !renc_journal_is_url(where))
        return 0;
    /* Not echoed: the location holds the password. */
    renc_err(cmd, "--journal: a password in the journal's location is refused (locations are "
                  "printed and recorded): give it in PGPASSWORD or a PGPASSFILE");
    return 1;
}

/* Opens (or resumes) the run's journal; its recovery settles the header
 * writes a crash left.  Returns -1 to go on, or an exit. */
int renc_run_journal_open(const char *cmd, struct renc_bulk_args *a, struct renc_session *sess,
                          const struct renc_session_want *want)
{
    char q[RENC_PATH_QUOTE_MAX];
    long holder = 0;
    char why[2048] = "";
    int rc = renc_global_resolve(&a->g, 1);
    if (rc == 0)
        rc = renc_session_open(sess, a->g.state_dir, a->journal, want, &holder, why,
                               sizeof why, renc_run_recover_report, (void *)cmd);
    if (rc == -RENC_E_BUSY) {
        renc_err(cmd, "journal %s is in use by another run (pid %ld); wait for it to end "
                      "or stop it", QP(q, sess->journal_path), holder);
        return RENC_EXIT_FAILED;
    }
    if (rc == -RENC_E_INVALID) {
        renc_err(cmd, "%s", why);
        return RENC_EXIT_USAGE;
    }
    if (renc_journal_say_password(cmd, sess->journal_path, rc))
        return RENC_EXIT_USAGE;
    if (rc) {
        renc_err(cmd, "journal %s: %s", QP(q, sess->journal_path),
                 renc_strerror(rc));
        return renc_exit_for(rc);
    }
    renc_bulk_say_recovered(cmd, &sess->recovered);
    return -1;
}

/* The journal learns the run's blobs; those an earlier attempt finished
 * are not read again (work keeps the rest), and those whose header
 * write recovery could not settle are held.  *rows, *finished and
 * work->items are the caller's to free.  Returns -1 to go on, or an
 * exit. */
int renc_run_work_list(const char *cmd, struct renc_bulk_args *a, struct renc_session *sess,
                       const struct renc_session_want *want, const char *target,
                       const struct renc_scan *scan, struct renc_scan *work, int64_t **rows,
                       uint8_t **finished)
{
    char q[RENC_PATH_QUOTE_MAX];
    int rc = renc_session_start(sess, want, target);
    if (rc)
        goto out_journal;
    *rows = renc_calloc(scan->count ? scan->count : 1, sizeof **rows);
    *finished = renc_calloc(scan->count ? scan->count : 1, 1);
    work->items = renc_calloc(scan->count ? scan->count : 1, sizeof *work->items);
    if (!*rows || !*finished || !work->items) {
        renc_err(cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    if ((rc = renc_journal_register(sess->journal, scan, *rows, *finished)))
        goto out_journal;
    work->count = 0;
    work->total_bytes = 0;
    for (size_t i = 0; i < scan->count; i++) {
        if ((*finished)[i] == 2) {
            renc_err(cmd, "%s: its in-place header write could not be settled (see above); "
                          "left alone (its old and new header are in the journal)",
                     QP(q, scan->items[i].path));
            a->held++;
            continue;
        }
        if ((*finished)[i])
            continue;
        (*rows)[work->count] = (*rows)[i];
        work->items[work->count++] = scan->items[i];
        work->total_bytes += scan->items[i].size;
    }
    a->finished_before = scan->count - work->count - a->held;
    if (sess->resumed)
        printf("%s: resuming run %s (attempt %u, journal %s): %llu blobs finished earlier "
               "are not read again, %zu to go\n",
               cmd, renc_journal_run_id(sess->journal), sess->attempt,
               QP(q, sess->journal_path), (unsigned long long)a->finished_before, work->count);
    return -1;
out_journal:
    renc_err(cmd, "journal %s: %s", QP(q, sess->journal_path), renc_strerror(rc));
    return RENC_EXIT_FAILED;
}

