/* reencrypt/run_shared.c — one worker of a run shared through a journal on
 * a server (--journal postgresql://...): any number of these, on any
 * machines, started by an engine (a Slurm array, a Kubernetes Indexed
 * Job) with the same options, share one run.
 *
 *   join     the run of the journal's name (run/session.c: a late worker
 *            joins a finished run rather than start it anew)
 *   list     once per run: the worker that takes the run's listing lock
 *            streams the listing into the journal in parts of 2,000 (the
 *            others claim the parts as they land), so no worker holds the
 *            whole list: memory stays bounded by --memory whatever the count
 *   claim    a round: up to 512 blobs that start within 256 MiB, under a
 *            lease renewed every quarter lease from the progress tick; the
 *            engine runs the round to its end (its workers share it), each
 *            blob noted only once durable, as in any run
 *   wait     nothing to claim: while the run is unlisted or another worker
 *            holds a live lease, look again (a dead worker's claims come
 *            back when its lease lapses; its half-done header writes are
 *            settled here); else the run is over
 *
 * The run's totals are the journal's: the summary and --report say them
 * for the whole run (every worker's), beside this worker's own figures.
 * The exit code is this worker's, as for any run.
 *
 * A journal file's run goes the same way when it is named (--run NAME) or
 * its listing is longer than a run holds (cmd_run.c): one process, rounds
 * of 16,384, no lease to renew (the run's flock), no workers to show, and
 * the temporaries its crashed attempts left swept once it is listed. */
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/provider.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "run/engine.h"
#include "run/shard.h"
#include "state/journal.h"
#include "store/store.h"

/* A round: enough blobs for every thread's batches, few enough that the
 * run spreads over the workers (a round's end waits for its last blob).  A
 * shared worker's first round is 512 blobs; while its rounds take less than
 * a second (tiny blobs: each round's claim, engine and flush cost about as
 * much as its work), the next is twice as many, up to 16,384.  A named run
 * in a journal file has one worker: its rounds are as large as keeps their
 * list small (a few MiB) from the start, so that their ends cost little. */
#define RENC_ROUND_MAX 512
#define RENC_ROUND_BYTES ((uint64_t)256 << 20)
#define RENC_ROUND_QUICK_S 1.0
#define RENC_FILE_ROUND_MAX 16384
#define RENC_FILE_ROUND_BYTES ((uint64_t)16 << 30)
#define RENC_LIST_PART 2000

struct renc_shared {
    struct renc_bulk_run *r;
    struct renc_progress_ctx *pc;
    struct renc_engine_progress sum; /* the rounds before this one */
    uint64_t rounds;
    double last_renew;               /* monotonic seconds */
    double renew_every;
    struct timespec start;
    int many;                        /* shared by many workers (a server's journal) */
    const char *who;                 /* "this worker", or (a file's run) "this attempt" */
    /* The listing, when this worker makes it; temps: the temporaries it
     * met (a file's run sweeps them). */
    struct renc_scan part, temps;
    uint64_t listed, list_errors;
    int list_rc;
};

static double renc_shared_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the listing, once per run ------------------------------------------ */

static int renc_shared_flush_part(struct renc_shared *sh)
{
    int rc = renc_journal_enlist_part(sh->r->sess.journal, &sh->part);
    renc_scan_cleanup(&sh->part);
    memset(&sh->part, 0, sizeof sh->part);
    return rc;
}

static int renc_shared_item(void *arg, struct renc_scan_item *it)
{
    struct renc_shared *sh = arg;
    sh->listed++;
    int rc = renc_scan_take(&sh->part, it);
    if (rc == 0 && sh->part.count >= RENC_LIST_PART)
        rc = renc_shared_flush_part(sh);
    return rc;
}

static int renc_shared_list_error(void *arg, const char *path, int rc)
{
    struct renc_shared *sh = arg;
    char q[RENC_PATH_QUOTE_MAX];
    renc_err(sh->r->cmd, "%s: %s", QP(q, path), renc_strerror(rc));
    sh->list_errors++;
    return 0;
}

static int renc_shared_list_temp(void *arg, const char *path)
{
    /* A shared run's: a temporary a crashed worker left is removed when its
     * blob is claimed again (the name is the run's: clean_tmp), not here: a
     * live worker may be writing it.  A file's run is this process's alone
     * (its trees locked): the ones its crashed attempts left are swept
     * once listed, as any run's. */
    struct renc_shared *sh = arg;
    return sh->many ? 0 : renc_scan_add_temp(&sh->temps, path);
}

/* A file's run: the temporaries its crashed attempts (or the run a
 * --restart forgot) left, removed once the listing is whole. */
static void renc_shared_sweep(struct renc_shared *sh)
{
    struct renc_bulk_run *r = sh->r;
    const char *tags[2] = {renc_journal_run_id(r->sess.journal),
                           r->sess.prev_run_id[0] ? r->sess.prev_run_id : NULL};
    if (sh->temps.temp_count)
        renc_run_sweep_temps(r->cmd, r->store, &sh->temps, tags, 2);
}

/* The run listed by this worker when no other has listed it or is
 * listing it.  Returns -1 to go on, or an exit. */
static int renc_shared_list(struct renc_shared *sh)
{
    struct renc_bulk_run *r = sh->r;
    int must = 0;
    int rc = renc_journal_list_begin(r->sess.journal, &must);
    if (rc == 0 && must) {
        struct renc_store_lister l = {.item = renc_shared_item, .error = renc_shared_list_error,
                                      .temp = renc_shared_list_temp, .arg = sh};
        struct renc_store_list_stats stats;
        memset(&stats, 0, sizeof stats);
        /* A shard's run (a journal file's: a server's has none) lists
         * its own blobs only, as they stream in. */
        rc = renc_shard_list_each(r->store, &r->a->shard, &l, NULL, &stats);
        if (rc == 0)
            rc = renc_shared_flush_part(sh);
        renc_scan_cleanup(&sh->part);
        memset(&sh->part, 0, sizeof sh->part);
        int erc = renc_journal_list_end(r->sess.journal, rc == 0);
        rc = rc ? rc : erc;
        if (rc == 0)
            printf("%s: listed the run: %llu blobs entered in the journal%s\n", r->cmd,
                   (unsigned long long)sh->listed, sh->list_errors ? " (some entries could not "
                                                                     "be listed: above)" : "");
        fflush(stdout); /* a worker's log says it even if the worker dies */
        if (rc == 0)
            renc_shared_sweep(sh);
        renc_scan_cleanup(&sh->temps);
    }
    if (rc) {
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(r->cmd, "listing into journal %s: %s", QP(q, r->sess.journal_path),
                 renc_strerror(rc));
        return renc_exit_for(rc);
    }
    return -1;
}

/* ---- rounds --------------------------------------------------------------- */

/* p's counts added to sum's (elapsed aside). */
static void renc_shared_add(struct renc_engine_progress *sum, const struct renc_engine_progress *p)
{
    sum->items_total += p->items_total;
    sum->items_finished += p->items_finished;
    sum->items_started += p->items_started;
    sum->done += p->done;
    sum->skipped += p->skipped;
    sum->not_renc += p->not_renc;
    sum->failed += p->failed;
    sum->in_place += p->in_place;
    sum->bytes_total += p->bytes_total;
    sum->bytes_finished += p->bytes_finished;
}

/* The round's progress added to the rounds before it; the leases renewed
 * every quarter lease (a renewal that fails stops this worker: its claims
 * may go to another). */
static void renc_shared_progress(const struct renc_engine_progress *p, void *arg)
{
    struct renc_shared *sh = arg;
    struct renc_engine_progress all = *p;
    renc_shared_add(&all, &sh->sum);
    all.elapsed_s = renc_shared_now() - ((double)sh->start.tv_sec + sh->start.tv_nsec / 1e9);
    double now = renc_shared_now();
    if (now - sh->last_renew >= sh->renew_every && sh->pc->journal_rc == 0) {
        sh->last_renew = now;
        int rc = renc_journal_renew(sh->r->sess.journal);
        if (rc) {
            sh->pc->journal_rc = rc;
            atomic_store(sh->pc->stop, 1);
        }
    }
    renc_run_progress_cb(&all, sh->pc);
}

/* The claimed blobs as a scan the engine takes (rows[i]: item i's row). */
static int renc_shared_scan(const struct renc_journal_batch *b, struct renc_scan *scan,
                            int64_t **rows)
{
    memset(scan, 0, sizeof *scan);
    *rows = renc_calloc(b->count, sizeof **rows);
    RENC_RETURN_IF(!*rows, -RENC_E_NOMEM);
    for (size_t i = 0; i < b->count; i++) {
        const struct renc_journal_item *ji = &b->items[i];
        /* The mode the staging file is made with (0600): the blob's own
         * is set on it from the file as opened. */
        struct renc_scan_item it = {.path = renc_strdup(ji->path), .rel = renc_strdup(ji->path),
                                    .size = ji->size, .mode = S_IFREG | 0600,
                                    .etag = ji->etag ? renc_strdup(ji->etag) : NULL};
        int rc = it.path && it.rel && (it.etag || !ji->etag) ? renc_scan_take(scan, &it)
                                                             : -RENC_E_NOMEM;
        renc_free(it.path);
        renc_free(it.rel);
        renc_free(it.etag);
        if (rc)
            return rc;
        (*rows)[i] = ji->row;
        scan->total_bytes += ji->size;
    }
    return 0;
}

/* Each failed blob of a round, one line; a key found withdrawn is kept for
 * the catalog (an environment's run). */
static void renc_shared_failures(struct renc_shared *sh, struct renc_engine *e,
                                 const struct renc_scan *scan)
{
    struct renc_bulk_args *a = sh->r->a;
    const struct renc_item_result *res = renc_engine_results(e);
    char q[RENC_PATH_QUOTE_MAX];
    for (size_t i = 0; i < scan->count; i++) {
        if (res[i].state != RENC_ITEM_FAILED)
            continue;
        const char *ref = res[i].ref && res[i].ref[0] ? res[i].ref : NULL;
        renc_err(sh->r->cmd, "%s: %s%s%s%s", QP(q, scan->items[i].path), renc_strerror(res[i].rc),
                 ref ? " (key " : "", ref ? ref : "", ref ? ")" : "");
        if (ref && !a->withdrawn_ref[0] && renc_provider_withdrawn(ref, res[i].rc)) {
            snprintf(a->withdrawn_ref, sizeof a->withdrawn_ref, "%s", ref);
            a->withdrawn_rc = res[i].rc;
        }
    }
}

/* One claimed batch through the engine, to its end. */
static int renc_shared_round(struct renc_shared *sh, const struct renc_journal_batch *b,
                             size_t *peak)
{
    struct renc_bulk_run *r = sh->r;
    struct renc_scan scan;
    int64_t *rows = NULL;
    struct renc_engine *e = NULL;
    int rc = renc_shared_scan(b, &scan, &rows);
    struct renc_engine_opts eo;
    renc_bulk_engine_opts(r, &eo);
    eo.rows = rows;
    /* The temporaries are named by the run (its id): a blob claimed again
     * after its worker died has that worker's removed first. */
    eo.clean_tmp = 1;
    if (rc == 0)
        rc = renc_engine_new(&e, &eo, r->ks, r->t, &scan);
    if (rc == 0)
        rc = renc_engine_run(e, 200, renc_shared_progress, sh);
    if (rc == 0) {
        struct renc_engine_progress p;
        renc_engine_snapshot(e, &p);
        renc_shared_add(&sh->sum, &p);
        renc_shared_failures(sh, e, &scan);
        size_t m = renc_engine_peak_memory(e);
        *peak = m > *peak ? m : *peak;
        sh->rounds++;
    }
    renc_engine_free(e);
    renc_free(rows);
    renc_scan_cleanup(&scan);
    return rc;
}

/* ---- the end of the run ---------------------------------------------------- */

/* 1 when the run is over for this worker: listed, and no worker holds a
 * live lease (what is left is failures this worker tried, or blobs held by
 * header writes that cannot be settled).  0: look again (*listed says
 * whether the run is listed). */
static int renc_shared_over(struct renc_shared *sh, int *listed, int *rc)
{
    struct renc_journal *j = sh->r->sess.journal;
    struct renc_journal_status st;
    if ((*rc = renc_journal_flush(j)) || (*rc = renc_journal_status(j, &st)))
        return 1;
    *listed = st.listed;
    return st.listed && !st.running;
}

/* Waits a little (a second, or less with a short lease) before looking
 * again; stops at once on a signal. */
static void renc_shared_nap(struct renc_shared *sh)
{
    double wait = sh->renew_every < 1 ? sh->renew_every : 1;
    for (double t = 0; t < wait && !atomic_load(sh->pc->stop); t += 0.05)
        nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
}

/* Claims and runs rounds until the run is over or this worker is stopped.
 * Returns 0, or the error that stopped it. */
static int renc_shared_loop(struct renc_shared *sh, size_t *peak)
{
    struct renc_bulk_run *r = sh->r;
    int rc = 0, listed = 0;
    size_t max = sh->many ? RENC_ROUND_MAX : RENC_FILE_ROUND_MAX;
    uint64_t max_bytes = sh->many ? RENC_ROUND_BYTES : RENC_FILE_ROUND_BYTES;
    while (!atomic_load(sh->pc->stop) && sh->pc->journal_rc == 0) {
        struct renc_journal_batch b;
        if ((rc = renc_journal_claim_upto(r->sess.journal, max, max_bytes, &b)))
            break;
        if (b.count) {
            double t0 = renc_shared_now();
            rc = renc_shared_round(sh, &b, peak);
            if (b.count == max && max < RENC_FILE_ROUND_MAX &&
                renc_shared_now() - t0 < RENC_ROUND_QUICK_S)
                max *= 2;
            renc_journal_batch_cleanup(&b);
            if (rc || (r->a->fail_fast && sh->sum.failed))
                break; /* --fail-fast: no next round after a failure */
            continue;
        }
        renc_journal_batch_cleanup(&b); /* none claimed: what the claim made for them */
        if (renc_shared_over(sh, &listed, &rc) || rc)
            break;
        /* Unlisted and no one listing: the lister died (its lock went with
         * it), so this worker lists the run. */
        if (!listed && renc_shared_list(sh) >= 0)
            return -RENC_E_JOURNAL; /* said why */
        renc_shared_nap(sh);
        (void)renc_journal_renew(r->sess.journal); /* the heartbeat while waiting */
        struct renc_recover_stats rs;
        memset(&rs, 0, sizeof rs);
        if ((rc = renc_journal_recover(r->sess.journal, &rs, renc_run_recover_report,
                                       (void *)r->cmd)))
            break;
    }
    return rc ? rc : sh->pc->journal_rc;
}

/* One line a worker, for the summary and status. */
static void renc_shared_say_worker(void *arg, const struct renc_journal_worker *w)
{
    const char *cmd = arg;
    printf("%s:   worker %lld %s pid %ld: %llu blobs, %llu failed, %s\n", cmd, (long long)w->id,
           w->host, w->pid, (unsigned long long)w->done, (unsigned long long)w->failed,
           w->ended > 0 ? w->outcome : w->live ? "working" : "silent (lease lapsed)");
}

/* This worker's figures, then the run's (every worker's) from the journal. */
static void renc_shared_say(struct renc_shared *sh, const struct renc_journal_status *st,
                            size_t peak)
{
    struct renc_bulk_run *r = sh->r;
    const struct renc_engine_progress *p = &sh->sum;
    double secs = renc_shared_now() - ((double)sh->start.tv_sec + sh->start.tv_nsec / 1e9);
    printf("%s: %s: %llu blobs re-encrypted, %llu skipped, %llu not RENC, %llu failed "
           "in %llu round%s; %.1f MB in %.2f s: %.1f MB/s, %.0f blobs/s; peak buffers %.1f MiB\n",
           r->cmd, sh->who, (unsigned long long)p->done, (unsigned long long)p->skipped,
           (unsigned long long)p->not_renc, (unsigned long long)p->failed,
           (unsigned long long)sh->rounds, sh->rounds == 1 ? "" : "s", p->bytes_finished / 1e6, secs,
           secs > 0 ? p->bytes_finished / 1e6 / secs : 0, secs > 0 ? p->items_finished / secs : 0,
           peak / 1048576.0);
    uint64_t total = 0;
    for (int k = 0; k < RENC_J_COUNT; k++)
        total += st->count[k];
    char q[RENC_PATH_QUOTE_MAX];
    printf("%s: run %s (journal %s): %llu of %llu blobs finished (%llu done, %llu skipped, "
           "%llu not RENC), %llu pending, %llu failed, %llu gone; %s\n",
           r->cmd, st->run_id, QP(q, r->sess.journal_path),
           (unsigned long long)(st->count[RENC_J_DONE] + st->count[RENC_J_SKIPPED] +
                                st->count[RENC_J_NOT_RENC]),
           (unsigned long long)(total - st->count[RENC_J_GONE]),
           (unsigned long long)st->count[RENC_J_DONE], (unsigned long long)st->count[RENC_J_SKIPPED],
           (unsigned long long)st->count[RENC_J_NOT_RENC],
           (unsigned long long)st->count[RENC_J_PENDING],
           (unsigned long long)st->count[RENC_J_FAILED], (unsigned long long)st->count[RENC_J_GONE],
           !sh->many      ? (renc_journal_unfinished(st) ? "unfinished" : "finished")
           : st->running ? "other workers are still at it"
                         : "no worker holds a lease");
    renc_journal_workers(r->sess.journal, renc_shared_say_worker, (void *)r->cmd);
}

/* ---- the merged report -------------------------------------------------------- */

static void renc_shared_json_failure(void *arg, const char *path, const char *error, int code,
                                     const char *ref)
{
    json_t *f = json_pack("{s:s, s:s, s:i}", "path", path, "error", error, "code", code);
    if (f && ref && ref[0])
        json_object_set_new(f, "key", json_string(ref));
    json_array_append_new(arg, f);
}

static void renc_shared_json_worker(void *arg, const struct renc_journal_worker *w)
{
    json_array_append_new(arg, renc_run_worker_json(w));
}

/* --report FILE: the whole run as the journal holds it (every worker's
 * blobs, failures and workers), and this worker's own figures. */
static void renc_shared_report(struct renc_shared *sh, const struct renc_journal_status *st,
                               size_t peak)
{
    struct renc_bulk_run *r = sh->r;
    const struct renc_engine_progress *p = &sh->sum;
    json_t *failures = json_array(), *workers = json_array();
    renc_journal_failures(r->sess.journal, 0, renc_shared_json_failure, failures);
    renc_journal_workers(r->sess.journal, renc_shared_json_worker, workers);
    uint64_t total = 0;
    for (int k = 0; k < RENC_J_COUNT; k++)
        total += st->count[k];
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:o, s:o,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "command", r->cmd, "mode", st->params.mode, "target", st->params.target,
        "journal", r->sess.journal_path, "run_id", st->run_id, "running", st->running,
        "blobs", "total", (json_int_t)(total - st->count[RENC_J_GONE]),
        "done", (json_int_t)st->count[RENC_J_DONE], "skipped", (json_int_t)st->count[RENC_J_SKIPPED],
        "not_renc", (json_int_t)st->count[RENC_J_NOT_RENC],
        "failed", (json_int_t)st->count[RENC_J_FAILED], "pending",
        (json_int_t)st->count[RENC_J_PENDING], "gone", (json_int_t)st->count[RENC_J_GONE],
        "header_intents", (json_int_t)st->header_intents, "failures", failures, "workers", workers,
        sh->many ? "this_worker" : "this_attempt", "rounds", (json_int_t)sh->rounds, "done", (json_int_t)p->done,
        "skipped", (json_int_t)p->skipped, "not_renc", (json_int_t)p->not_renc,
        "failed", (json_int_t)p->failed, "bytes", (json_int_t)p->bytes_finished,
        "peak_buffer_bytes", (json_int_t)peak);
    int rc = root ? renc_run_write_report(r->a->report, root) : -RENC_E_NOMEM;
    json_decref(root);
    if (rc) {
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(r->cmd, "report %s: %s", QP(q, r->a->report), renc_strerror(rc));
    }
}

/* ---- the worker ------------------------------------------------------------- */

/* The worker's end: its row closed with its outcome, the summary, the
 * report, what the catalog learns.  Returns the exit. */
static int renc_shared_finish(struct renc_shared *sh, int rc, size_t peak)
{
    struct renc_bulk_run *r = sh->r;
    struct renc_bulk_args *a = r->a;
    char q[RENC_PATH_QUOTE_MAX];
    int interrupted = atomic_load(sh->pc->stop) && sh->pc->journal_rc == 0 && rc == 0;
    const char *outcome = rc ? "failed" : interrupted ? "interrupted"
                                        : sh->sum.failed ? "failed" : "finished";
    if (sh->pc->drew)
        fputc('\n', stderr);
    int erc = renc_journal_end(r->sess.journal, outcome);
    struct renc_journal_status st;
    int src = renc_journal_status(r->sess.journal, &st);
    if (rc || erc || src) {
        renc_err(r->cmd, "journal %s: %s; %s", QP(q, r->sess.journal_path),
                 renc_strerror(rc ? rc : erc ? erc : src),
                 sh->many ? "this worker's claims lapse with their lease and go to another"
                          : "what is not noted done is done by the next attempt");
        outcome = "failed";
    }
    if (src == 0) {
        renc_shared_say(sh, &st, peak);
        if (a->report)
            renc_shared_report(sh, &st, peak);
    }
    sh->sum.elapsed_s = renc_shared_now() - ((double)sh->start.tv_sec + sh->start.tv_nsec / 1e9);
    if (sh->pc->metrics)
        renc_metrics_tick(sh->pc->metrics, &sh->sum, 1);
    a->failed_total = sh->sum.failed;
    a->outcome = outcome;
    snprintf(a->journal_path, sizeof a->journal_path, "%s", r->sess.journal_path);
    if (interrupted) {
        renc_err(r->cmd, "interrupted: blobs in flight were finished or left wholly old; %s",
                 sh->many ? "this worker's other claims are given back to the run"
                          : "run it again to go on");
        return RENC_EXIT_INTERRUPTED;
    }
    return strcmp(outcome, "finished") == 0 ? RENC_EXIT_OK : RENC_EXIT_FAILED;
}

int renc_run_shared(struct renc_bulk_run *r)
{
    int rc = renc_session_start(&r->sess, &r->want, renc_transformer_target(r->t));
    if (rc) {
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(r->cmd, "journal %s: %s", QP(q, r->sess.journal_path), renc_strerror(rc));
        return renc_exit_for(rc);
    }
    struct renc_engine_opts eo;
    renc_bulk_engine_opts(r, &eo);
    struct renc_metrics metrics = {.path = r->a->metrics_file, .cmd = r->cmd, .shard = ""};
    struct renc_progress_ctx pc = {.mode = r->a->progress, .cmd = r->cmd,
                                   .journal = r->sess.journal, .stop = eo.stop,
                                   .metrics = r->a->metrics_file ? &metrics : NULL};
    if (pc.mode == RENC_PROGRESS_AUTO)
        pc.mode = isatty(STDERR_FILENO) ? RENC_PROGRESS_BAR : RENC_PROGRESS_JSON;
    struct renc_shared sh = {.r = r, .pc = &pc, .many = renc_journal_shared(r->sess.journal)};
    sh.who = sh.many ? "this worker" : "this attempt";
    double lease = renc_journal_lease_s(r->sess.journal);
    sh.renew_every = lease > 0 ? lease / 4 : 60;
    sh.last_renew = renc_shared_now();
    clock_gettime(CLOCK_MONOTONIC, &sh.start);
    if (sh.many)
        printf("%s: worker %ld %s run %s (journal %s)\n", r->cmd, (long)getpid(),
               r->sess.resumed ? "joins" : "starts", renc_journal_run_id(r->sess.journal),
               r->sess.journal_path);
    else if (r->sess.run_name[0])
        printf("%s: run %s (%s) %s (journal %s)\n", r->cmd, r->sess.run_name,
               renc_journal_run_id(r->sess.journal), r->sess.resumed ? "goes on" : "starts",
               r->sess.journal_path);
    else
        printf("%s: run %s %s (journal %s)\n", r->cmd, renc_journal_run_id(r->sess.journal),
               r->sess.resumed ? "goes on" : "starts", r->sess.journal_path);
    fflush(stdout);
    renc_bulk_catch_signals();
    int status = renc_shared_list(&sh);
    if (status >= 0) {
        renc_journal_end(r->sess.journal, "failed");
        return status;
    }
    size_t peak = 0;
    rc = renc_shared_loop(&sh, &peak);
    return renc_shared_finish(&sh, rc, peak);
}
