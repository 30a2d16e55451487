/* What a run or verify (cmd_run.c) tells while it works and when it ends:
 * the progress display (a bar or JSON lines), the journal recovery's
 * lines, the failures, the summary and the --report file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "keys/provider.h"
#include "io/file.h"
#include "io/replace.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "run/engine.h"
#include "store/scan.h"
#include "run/session.h"

void renc_run_progress_cb(const struct renc_engine_progress *p, void *arg)
{
    struct renc_progress_ctx *c = arg;
    if (c->journal && c->journal_rc == 0) {
        /* The notes of blobs finished since the last tick, in one commit.
         * A journal that cannot be written stops the run: blobs go on being
         * safe, but progress could no longer be resumed from it. */
        c->journal_rc = renc_journal_flush(c->journal);
        if (c->journal_rc)
            atomic_store(c->stop, 1);
    }
    renc_metrics_tick(c->metrics, p, 0);
    double mbps = p->elapsed_s > 0 ? p->bytes_finished / 1e6 / p->elapsed_s : 0;
    double rate = p->elapsed_s > 0 ? p->bytes_finished / p->elapsed_s : 0;
    double eta = rate > 0 ? (p->bytes_total - p->bytes_finished) / rate : -1;
    if (c->mode == RENC_PROGRESS_BAR) {
        char done[32], total[32];
        renc_bytes_text(done, sizeof done, p->bytes_finished);
        renc_bytes_text(total, sizeof total, p->bytes_total);
        double frac = p->bytes_total ? (double)p->bytes_finished / p->bytes_total
                                     : p->items_total ? (double)p->items_finished / p->items_total : 1;
        int width = 30, fill = (int)(frac * width + 0.5);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %llu/%llu blobs  %s/%s  %.1f MB/s  ETA %s%.0fs  ", bar,
                (unsigned long long)p->items_finished, (unsigned long long)p->items_total,
                done, total, mbps, eta < 0 ? "?" : "", eta < 0 ? 0.0 : eta);
        c->drew = 1;
    } else if (c->mode == RENC_PROGRESS_JSON && p->elapsed_s - c->last_json >= 1.0) {
        c->last_json = p->elapsed_s;
        json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}",
                              "type", "progress", "command", c->cmd,
                              "blobs_done", (json_int_t)p->items_finished,
                              "blobs_total", (json_int_t)p->items_total,
                              "failed", (json_int_t)p->failed,
                              "skipped", (json_int_t)p->skipped,
                              "bytes_done", (json_int_t)p->bytes_finished,
                              "bytes_total", (json_int_t)p->bytes_total,
                              "elapsed_s", p->elapsed_s, "mb_per_s", mbps, "eta_s", eta);
        json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(j);
    }
}

int renc_run_write_report(const char *path, json_t *root)
{
    char *text = json_dumps(root, JSON_INDENT(2));
    if (!text)
        return -RENC_E_NOMEM;
    json_malloc_t json_malloc;
    json_free_t json_free; /* jansson's allocator: see renc_json_wipe_on_free */
    json_get_alloc_funcs(&json_malloc, &json_free);
    char tmp[4200];
    int fd;
    int rc = renc_file_tmp_open(path, 0600, tmp, sizeof tmp, &fd);
    if (rc == 0) {
        rc = renc_file_write_full(fd, text, strlen(text));
        if (rc == 0)
            rc = renc_file_write_full(fd, "\n", 1);
        if (rc == 0)
            rc = renc_file_commit(fd, tmp, path);
        else
            renc_file_abort(fd, tmp);
    }
    json_free(text);
    return rc;
}

/* Each header intent a crash left whose outcome is worth a line, as the
 * journal's recovery settles it: said once, by the run that settles it. */
json_t *renc_run_worker_json(const struct renc_journal_worker *w)
{
    return json_pack("{s:I, s:s, s:I, s:f, s:f, s:f, s:s, s:I, s:I, s:b}", "id", (json_int_t)w->id,
                     "host", w->host, "pid", (json_int_t)w->pid, "started", w->started,
                     "heartbeat", w->heartbeat, "ended", w->ended, "outcome", w->outcome,
                     "done", (json_int_t)w->done, "failed", (json_int_t)w->failed, "live", w->live);
}

void renc_run_recover_report(void *arg, const char *path, enum renc_settle what, int rc)
{
    const char *cmd = arg;
    char q[RENC_PATH_QUOTE_MAX];
    renc_path_quote(q, sizeof q, path);
    switch (what) {
    case RENC_SETTLE_COMPLETED:
        printf("%s: recovery: %s: header found half written: completed from the journal\n", cmd,
               q);
        break;
    case RENC_SETTLE_GONE:
        printf("%s: recovery: %s: gone since the crash: nothing to complete, its header write "
               "is settled\n", cmd, q);
        break;
    case RENC_SETTLE_REPLACED:
        printf("%s: recovery: %s: holds neither the old nor the new header: replaced by another "
               "writer: left as it is (and looked at afresh)\n", cmd, q);
        break;
    default:
        renc_err(cmd, "%s: %s; its in-place header write is kept in the journal, and the blob "
                      "left alone, until it can be read", q, renc_strerror(rc));
        break;
    }
}

/* Failures are told one line a blob, up to RENC_LINES_PER_CAUSE for one
 * cause (error and key): past that, one line sums up the rest (a full disk
 * fails every blob in flight the same way; the report and `status
 * --failures 0` list them all). */
#define RENC_LINES_PER_CAUSE 10
#define RENC_MAX_CAUSES 32

struct renc_cause {
    int rc;
    const char *ref; /* the key, or NULL */
    uint64_t count;
    size_t first;    /* the scan item that met it first */
};

struct renc_causes {
    struct renc_cause c[RENC_MAX_CAUSES];
    size_t n;
};

/* The destination can take no more: every blob after it would fail the
 * same way, so the run stops (renc_engine) and says so once. */
static int renc_run_wide_io(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS;
}

static struct renc_cause *renc_cause_of(struct renc_causes *cs, int rc, const char *ref,
                                        size_t idx)
{
    for (size_t k = 0; k < cs->n; k++)
        if (cs->c[k].rc == rc && (cs->c[k].ref == ref ||
                                  (cs->c[k].ref && ref && strcmp(cs->c[k].ref, ref) == 0)))
            return &cs->c[k];
    if (cs->n == RENC_MAX_CAUSES)
        return NULL; /* that many kinds: each told on its own */
    struct renc_cause *c = &cs->c[cs->n++];
    c->rc = rc;
    c->ref = ref;
    c->first = idx;
    return c;
}

/* One failed blob's line, unless its cause was told often enough. */
static void renc_failure_line(const char *cmd, struct renc_causes *cs,
                              const struct renc_scan *scan, size_t i, int rc, const char *ref)
{
    struct renc_cause *c = renc_cause_of(cs, rc, ref, i);
    if (c && ++c->count > RENC_LINES_PER_CAUSE)
        return;
    char q[RENC_PATH_QUOTE_MAX];
    if (ref)
        renc_err(cmd, "%s: %s (key %s)", QP(q, scan->items[i].path), renc_strerror(rc), ref);
    else
        renc_err(cmd, "%s: %s", QP(q, scan->items[i].path), renc_strerror(rc));
}

/* The folder item i is written to: its own, or its mirror's under --out. */
static void renc_out_dir_of(const struct renc_bulk_args *a, const struct renc_scan_item *it,
                          char *out, size_t max)
{
    const char *p = a->out_dir ? it->rel : it->path;
    const char *slash = strrchr(p, '/');
    if (a->out_dir)
        renc_textf(out, max, "%s%s%.*s", a->out_dir, slash ? "/" : "",
                   slash ? (int)(slash - p) : 0, p);
    else if (slash)
        renc_textf(out, max, "%.*s", slash == p ? 1 : (int)(slash - p), p);
    else
        renc_textf(out, max, ".");
}

/* After the failure lines: the rest of each cause told often, and a
 * destination that could take no more, once, with what it left undone. */
static void renc_failure_summary(const char *cmd, const struct renc_bulk_args *a,
                                 const struct renc_causes *cs, const struct renc_scan *scan,
                                 uint64_t not_started)
{
    const struct renc_cause *wide = NULL;
    for (size_t k = 0; k < cs->n; k++) {
        const struct renc_cause *c = &cs->c[k];
        if (!wide && renc_run_wide_io(c->rc))
            wide = c;
        if (c->count <= RENC_LINES_PER_CAUSE)
            continue;
        renc_err(cmd, "%llu more blobs failed the same way: %s%s%s%s ('reencrypt status "
                      "--failures 0' or --report lists them all)",
                 (unsigned long long)(c->count - RENC_LINES_PER_CAUSE), renc_strerror(c->rc),
                 c->ref ? " (key " : "", c->ref ? c->ref : "", c->ref ? ")" : "");
    }
    if (!wide || strcmp(cmd, "run") != 0)
        return;
    char dir[PATH_MAX + 8], q[RENC_PATH_QUOTE_MAX], cause[128];
    renc_out_dir_of(a, &scan->items[wide->first], dir, sizeof dir);
    snprintf(cause, sizeof cause, "%s", renc_strerror(wide->rc));
    if (cause[0] >= 'A' && cause[0] <= 'Z')
        cause[0] = (char)(cause[0] - 'A' + 'a');
    if (not_started)
        renc_err(cmd, "stopped: %s writing %s; %llu blobs not started, resume with the same "
                      "command", cause, QP(q, dir), (unsigned long long)not_started);
    else
        renc_err(cmd, "%s writing %s; run the same command again once it can be written",
                 cause, QP(q, dir));
}

/* One line a failed blob (renc_failure_line), the summary of the causes
 * told often, and the first key found withdrawn at its provider, kept in a
 * for the catalog.  Returns the failures for the report (a JSON array). */
static json_t *renc_bulk_failures(const char *cmd, struct renc_bulk_args *a, struct renc_engine *e,
                                  const struct renc_scan *scan, uint64_t not_started)
{
    const struct renc_item_result *res = renc_engine_results(e);
    json_t *failures = json_array();
    struct renc_causes causes;
    memset(&causes, 0, sizeof causes);
    for (size_t i = 0; i < scan->count; i++) {
        if (res[i].state != RENC_ITEM_FAILED)
            continue;
        renc_failure_line(cmd, &causes, scan, i, res[i].rc, res[i].ref);
        /* Access withdrawn at the key's provider (any provider), or a key
         * disabled at a holder that grants access (a vault): the
         * environments on that key get locked. */
        if (res[i].ref && !a->withdrawn_ref[0] && renc_provider_withdrawn(res[i].ref, res[i].rc)) {
            snprintf(a->withdrawn_ref, sizeof a->withdrawn_ref, "%s", res[i].ref);
            a->withdrawn_rc = res[i].rc;
        }
        json_t *f = json_pack("{s:s, s:s, s:i}", "path", scan->items[i].path, "error",
                              renc_strerror(res[i].rc), "code", -res[i].rc);
        if (res[i].ref)
            json_object_set_new(f, "key", json_string(res[i].ref));
        json_array_append_new(failures, f);
    }
    renc_failure_summary(cmd, a, &causes, scan, not_started);
    for (size_t i = 0; i < scan->error_count; i++)
        json_array_append_new(failures, json_pack("{s:s, s:s, s:i}", "path", scan->errors[i].path,
                                                  "error", renc_strerror(scan->errors[i].rc),
                                                  "code", -scan->errors[i].rc));
    return failures;
}

/* What the run (or verify) came to, its speed and its key work, and the
 * attributes rewritten blobs could not keep. */
static void renc_bulk_say_totals(const char *cmd, const struct renc_bulk_args *a,
                                 struct renc_engine *e, const struct renc_engine_progress *p,
                                 const struct renc_scan *scan, const char *target,
                                 const struct renc_keystore_stats *ks_stats,
                                 const struct renc_session *sess)
{
    char q[RENC_PATH_QUOTE_MAX];
    uint64_t pending = p->items_total - p->items_finished;
    double mbps = p->elapsed_s > 0 ? p->bytes_finished / 1e6 / p->elapsed_s : 0;
    double bps = p->elapsed_s > 0 ? p->items_finished / p->elapsed_s : 0;
    if (strcmp(cmd, "run") == 0) {
        printf("%s%s: %llu blobs %s, %llu skipped (already under %s), %llu not RENC, "
               "%llu failed%s\n",
               cmd, a->dry_run ? " (dry run: nothing written)" : "", (unsigned long long)p->done,
               a->dry_run ? "would change" : "re-encrypted", (unsigned long long)p->skipped,
               target ? target : "the target", (unsigned long long)p->not_renc,
               (unsigned long long)(p->failed + scan->error_count + a->held),
               pending ? " (stopped early)" : "");
        if (p->in_place)
            printf("%s: %llu of them rewrapped by rewriting only their header, in place\n", cmd,
                   (unsigned long long)p->in_place);
        if (sess)
            printf("%s: journal %s, run %s, attempt %u\n", cmd, QP(q, sess->journal_path),
                   renc_journal_run_id(sess->journal), sess->attempt);
        if (a->finished_before)
            printf("%s: %llu more blobs were finished by earlier attempts of this run\n", cmd,
                   (unsigned long long)a->finished_before);
    }
    else
        printf("%s: %llu blobs verified, %llu not RENC, %llu failed%s\n", cmd,
               (unsigned long long)p->done, (unsigned long long)p->not_renc,
               (unsigned long long)(p->failed + scan->error_count + a->held),
               pending ? " (stopped early)" : "");
    printf("%s: %.1f MB in %.2f s: %.1f MB/s, %.0f blobs/s; %llu unwraps, %llu DEK cache hits, "
           "%llu wraps; peak buffers %.1f MiB\n",
           cmd, p->bytes_finished / 1e6, p->elapsed_s, mbps, bps,
           (unsigned long long)ks_stats->unwraps, (unsigned long long)ks_stats->cache_hits,
           (unsigned long long)ks_stats->wraps, renc_engine_peak_memory(e) / 1048576.0);
    unsigned lost = renc_engine_attrs_lost(e);
    if (lost & RENC_ATTR_OWNER)
        fprintf(stderr, "reencrypt: %s: warning: the owner of some rewritten blobs could not be "
                        "kept (only root may give a file to another user); they belong to uid %u "
                        "now\n", cmd, (unsigned)geteuid());
    if (lost & RENC_ATTR_XATTR)
        fprintf(stderr, "reencrypt: %s: warning: some extended attributes of rewritten blobs could "
                        "not be kept (not permitted or not supported here)\n", cmd);
}

/* A provider's requests, retries and pacing, when it made requests (a
 * key vault). */
static void renc_bulk_say_provider(const char *cmd, const char *display,
                                   const struct renc_provider_stats *vs)
{
    char pace_note[96] = "";
    if (vs->pace_cuts)
        snprintf(pace_note, sizeof pace_note, " (lowered %llu times after 429s, %u at the end)",
                 (unsigned long long)vs->pace_cuts, vs->rate_now);
    /* A provider without a pacing window that retried nothing (a token on
     * the machine: pkcs11) has only its counts to say. */
    if (vs->requests && vs->rate_window_s == 0 && !vs->retries)
        printf("%s: %s: %llu requests (%llu unwraps, %llu wraps, %llu key reads, %llu logins)\n",
               cmd, display, (unsigned long long)vs->requests, (unsigned long long)vs->unwraps,
               (unsigned long long)vs->wraps, (unsigned long long)vs->gets,
               (unsigned long long)vs->tokens);
    else if (vs->requests)
        printf("%s: %s: %llu requests (%llu unwraps, %llu wraps, %llu key reads, %llu "
               "tokens), %llu retried (%llu throttled, %llu server errors, %llu network errors); "
               "paced at %u per %.0f s%s, %llu requests held %.1f s in all\n",
               cmd, display, (unsigned long long)vs->requests, (unsigned long long)vs->unwraps,
               (unsigned long long)vs->wraps, (unsigned long long)vs->gets,
               (unsigned long long)vs->tokens, (unsigned long long)vs->retries,
               (unsigned long long)vs->throttled, (unsigned long long)vs->server_errors,
               (unsigned long long)vs->network_errors, vs->rate_limit, vs->rate_window_s,
               pace_note, (unsigned long long)vs->paced, vs->paced_s);
}

/* A provider's statistics in the --report JSON. */
static json_t *renc_provider_stats_json(const struct renc_provider_stats *vs)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:I, s:I}",
        "requests", (json_int_t)vs->requests, "unwraps", (json_int_t)vs->unwraps,
        "wraps", (json_int_t)vs->wraps, "gets", (json_int_t)vs->gets,
        "tokens", (json_int_t)vs->tokens, "retries", (json_int_t)vs->retries,
        "throttled", (json_int_t)vs->throttled,
        "server_errors", (json_int_t)vs->server_errors,
        "network_errors", (json_int_t)vs->network_errors,
        "paced", (json_int_t)vs->paced, "paced_seconds", vs->paced_s,
        "rate_limit", (json_int_t)vs->rate_limit, "rate_window_seconds",
        vs->rate_window_s, "rate_at_end", (json_int_t)vs->rate_now,
        "rate_cuts", (json_int_t)vs->pace_cuts);
}

/* --report FILE: the figures and every failure, as JSON.  Takes failures. */
static void renc_bulk_report(const char *cmd, const struct renc_bulk_args *a,
                             struct renc_engine *e, const struct renc_engine_progress *p,
                             const struct renc_scan *scan, const char *target,
                             const struct renc_keystore_stats *ks_stats,
                             const struct renc_keystore_provider_stats *ps, size_t np,
                             const struct renc_session *sess, json_t *failures)
{
    char q[RENC_PATH_QUOTE_MAX];
    int is_run = strcmp(cmd, "run") == 0;
    uint64_t pending = p->items_total - p->items_finished;
    double mbps = p->elapsed_s > 0 ? p->bytes_finished / 1e6 / p->elapsed_s : 0;
    double bps = p->elapsed_s > 0 ? p->items_finished / p->elapsed_s : 0;
    json_t *root = json_pack(
        "{s:s, s:s?, s:s?, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:f, s:f, s:f, "
        "s:I, s:I, s:I, s:I, s:I, s:o}",
        "command", cmd, "mode", is_run ? (a->mode == RENC_MODE_REKEY ? "rekey" : "rewrap") : NULL,
        "target", target, "dry_run", a->dry_run,
        "blobs", "total", (json_int_t)p->items_total, "done", (json_int_t)p->done,
        "skipped", (json_int_t)p->skipped, "not_renc", (json_int_t)p->not_renc,
        "failed", (json_int_t)(p->failed + scan->error_count + a->held), "pending",
        (json_int_t)pending, "bytes", (json_int_t)p->bytes_finished, "seconds", p->elapsed_s,
        "mb_per_s", mbps, "blobs_per_s", bps, "unwraps", (json_int_t)ks_stats->unwraps,
        "dek_cache_hits", (json_int_t)ks_stats->cache_hits, "wraps", (json_int_t)ks_stats->wraps,
        "threads", (json_int_t)a->threads, "peak_buffer_bytes",
        (json_int_t)renc_engine_peak_memory(e), "failures", failures);
    if (root && is_run) {
        json_object_set_new(root, "in_place", json_integer((json_int_t)p->in_place));
        json_object_set_new(root, "finished_before",
                            json_integer((json_int_t)a->finished_before));
    }
    for (size_t i = 0; root && i < np; i++)
        if (ps[i].stats.requests && ps[i].ops->report_key)
            json_object_set_new(root, ps[i].ops->report_key,
                                renc_provider_stats_json(&ps[i].stats));
    if (root && sess) {
        json_object_set_new(root, "journal", json_string(sess->journal_path));
        json_object_set_new(root, "run_id", json_string(renc_journal_run_id(sess->journal)));
        json_object_set_new(root, "attempt", json_integer(sess->attempt));
    }
    if (root && a->shard.count) /* what a merge of the shards' reports checks */
        json_object_set_new(root, "shard",
                            json_pack("{s:i, s:i, s:I}", "index", (int)a->shard.index, "count",
                                      (int)a->shard.count, "listed", (json_int_t)a->listed));
    int rc = root ? renc_run_write_report(a->report, root) : -RENC_E_NOMEM;
    json_decref(root);
    if (rc)
        renc_err(cmd, "report %s: %s", QP(q, a->report), renc_strerror(rc));
}

int renc_bulk_finish(const char *cmd, struct renc_bulk_args *a, struct renc_engine *e,
                     const struct renc_scan *scan, struct renc_keystore *ks, const char *target,
                     struct renc_progress_ctx *pc, const struct renc_session *sess)
{
    struct renc_engine_progress p;
    renc_engine_snapshot(e, &p);
    if (pc->mode == RENC_PROGRESS_JSON) {
        pc->last_json = -1e9; /* one last line with the final figures */
        renc_run_progress_cb(&p, pc);
    }
    if (pc->drew)
        fputc('\n', stderr);
    if (pc->metrics) { /* the last figures, the report's */
        pc->metrics->failed_extra = scan->error_count + a->held;
        renc_metrics_tick(pc->metrics, &p, 1);
    }
    uint64_t pending = p.items_total - p.items_finished;
    json_t *failures = renc_bulk_failures(cmd, a, e, scan, pending);
    struct renc_keystore_stats ks_stats;
    renc_keystore_stats(ks, &ks_stats);
    renc_bulk_say_totals(cmd, a, e, &p, scan, target, &ks_stats, sess);
    struct renc_keystore_provider_stats ps[8];
    size_t np = renc_keystore_provider_stats(ks, ps, sizeof ps / sizeof ps[0]);
    for (size_t i = 0; i < np; i++)
        renc_bulk_say_provider(cmd, ps[i].ops->display, &ps[i].stats);
    if (a->report)
        renc_bulk_report(cmd, a, e, &p, scan, target, &ks_stats, ps, np, sess, failures);
    else
        json_decref(failures);
    return p.failed + scan->error_count + a->held || pending ? RENC_EXIT_FAILED : RENC_EXIT_OK;
}
