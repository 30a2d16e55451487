/* reencrypt status — a run's progress and result, from its journal.
 *
 * Reads the journal read-only (SQLite WAL: never blocks the run), so it
 * works while the run is going, after it stopped and after a crash. */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "common/error.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "env/envdata.h"
#include "reencrypt/envctl.h"
#include "state/catalog.h"
#include "store/store.h"
#include "state/journal.h"

static const char renc_status_usage[] =
    "usage: reencrypt status [--journal FILE | --journal postgresql://... | --env ID]\n"
    "                        [--run NAME] [--json] [--failures N]\n"
    "  --run NAME: the run of that name (a journal file holds one: it must be that one)\n"
    "  --env ID: the journal of 'run --env ID' ('env show ID' tells the environment's status)\n"
    "  without either: the most recently updated journal under STATE/journals\n";

/* The most recently written journal under STATE/journals. */
static int renc_latest_journal(const char *state_dir, char *out, size_t max, unsigned *count)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/journals", state_dir);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *de;
    double best = -1;
    *count = 0;
    int rc = -ENOENT;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".db") != 0)
            continue;
        (*count)++;
        char path[4400], wal[4500];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(wal, sizeof wal, "%s-wal", path);
        struct stat st;
        double t = -1;
        if (stat(path, &st) == 0)
            t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
        if (stat(wal, &st) == 0 && (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 > t)
            t = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
        if (t > best) {
            best = t;
            snprintf(out, max, "%s", path);
            rc = 0;
        }
    }
    closedir(d);
    return rc;
}

/* running, finished, interrupted, failed, crashed (an attempt that never
 * ended and whose process is gone), or none. */
static const char *renc_run_state(const struct renc_journal_status *st)
{
    if (!st->has_run)
        return "none";
    if (st->running)
        return "running";
    if (st->attempts && st->last_ended == 0)
        return "crashed";
    return st->last_outcome[0] ? st->last_outcome : "stopped";
}

static void renc_time_str(char *out, size_t max, double t)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&s, &tm)) {
        snprintf(out, max, "-");
        return;
    }
    strftime(out, max, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct renc_fail_ctx {
    json_t *arr;
    int json;
};

static void renc_status_failure(void *arg, const char *path, const char *error, int code,
                                const char *ref)
{
    struct renc_fail_ctx *c = arg;
    if (c->json) {
        json_t *f = json_pack("{s:s, s:s, s:i}", "path", path, "error", error, "code", code);
        if (f && ref)
            json_object_set_new(f, "key", json_string(ref));
        json_array_append_new(c->arr, f);
    } else {
        char q[RENC_PATH_QUOTE_MAX];
        printf("  %s: %s%s%s%s\n", renc_path_quote(q, sizeof q, path), error,
               ref ? " (key " : "", ref ? ref : "", ref ? ")" : "");
    }
}

/* The header intents a crash left that recovery settled, by outcome. */
static void renc_status_settled(const struct renc_journal_status *st)
{
    static const char *const what[RENC_SETTLE_COUNT] = {
        "found rewritten", "found as they were (done again)", "completed from the journal",
        "gone (no file there any more)", "replaced by another writer (left as they are)",
    };
    uint64_t all = 0;
    for (int k = 0; k < RENC_SETTLE_COUNT; k++)
        all += st->settled[k];
    if (!all)
        return;
    printf("%s%llu in-place header writes settled after a crash:",
           st->header_intents ? "          " : "headers   ", (unsigned long long)all);
    const char *sep = " ";
    for (int k = 0; k < RENC_SETTLE_COUNT; k++) {
        if (!st->settled[k])
            continue;
        printf("%s%llu %s", sep, (unsigned long long)st->settled[k], what[k]);
        sep = ", ";
    }
    putchar('\n');
}

/* What status was asked. */
struct renc_status_args {
    struct renc_global g;
    const char *path, *env, *run;
    char loc[4200];           /* a server journal's location with #run=NAME */
    int json;
    uint64_t max_failures;
};

/* Returns -1 to go on, or an exit. */
static int renc_status_parse(struct renc_status_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"journal", required_argument, NULL, 'J'},
        {"json", no_argument, NULL, 'j'},
        {"failures", required_argument, NULL, 'f'},
        {"env", required_argument, NULL, 'e'},
        {"run", required_argument, NULL, 'r'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once("status", opts, "Jfer", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'J': a->path = optarg; break;
        case 'e': a->env = optarg; break;
        case 'r': a->run = optarg; break;
        case 'j': a->json = 1; break;
        case 'f':
            if (renc_parse_size(optarg, &a->max_failures) != 0) {
                renc_err("status", "--failures must be a count (0: all)");
                return RENC_EXIT_USAGE;
            }
            break;
        case 'h': fputs(renc_status_usage, stdout); return RENC_EXIT_OK;
        default: fputs(renc_status_usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(renc_status_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    /* A journal file holds one run: --run then checks that it is NAME. */
    if (a->run && a->path && renc_journal_is_url(a->path)) {
        int n = snprintf(a->loc, sizeof a->loc, "%.*s#run=%s", (int)strcspn(a->path, "#"),
                         a->path, a->run);
        if (n < 0 || (size_t)n >= sizeof a->loc) {
            renc_err("status", "--journal: the location is too long");
            return RENC_EXIT_USAGE;
        }
        a->path = a->loc;
    }
    return -1;
}

/* Where run --env works on environment a->env: DATA/<id>, or ROOT/<id>
 * when the catalog gives it a data root in blob storage. */
static int renc_status_env_root(struct renc_status_args *a, char *dir, size_t max)
{
    struct renc_catalog *cat = NULL;
    struct renc_env env;
    int rc = renc_envctl_open(&a->g, 0, &cat);
    if (rc == 0 && renc_catalog_get(cat, a->env, &env) == 0 && env.data_root[0])
        rc = renc_envdata_root(dir, max, a->g.data_dir, &env);
    else if (rc == 0 || rc == -ENOENT) /* no catalog: the default folder still tells */
        rc = renc_global_resolve(&a->g, 0) ? -EINVAL
             : renc_envdata_path(dir, max, a->g.data_dir, a->env, NULL);
    renc_catalog_close(cat);
    return rc;
}

/* The journal run --env keeps: the default one for its one source.
 * Returns -1 to go on, or an exit. */
static int renc_status_env_journal(struct renc_status_args *a, char *found, size_t max)
{
    char dir[4096], real[PATH_MAX];
    if (a->path) {
        renc_err("status", "give --journal or --env, not both");
        return RENC_EXIT_USAGE;
    }
    if (!renc_env_id_ok("status", "--env", a->env))
        return RENC_EXIT_USAGE;
    int rc = renc_status_env_root(a, dir, sizeof dir);
    if (rc == 0 && renc_store_is_url(dir))
        rc = renc_store_name_clean(dir, real, sizeof real);
    else if (rc == 0 && !realpath(dir, real))
        rc = -errno;
    /* The run keys its journal by the source as its journal stores it. */
    char stored[RENC_PATH_QUOTE_MAX];
    if (rc == 0)
        rc = renc_journal_default_path(a->g.state_dir,
                                       renc_path_quote(stored, sizeof stored, real), "",
                                       found, max);
    if (rc == 0 && access(found, F_OK) != 0)
        rc = -ENOENT;
    if (rc) {
        renc_err("status", "environment %s has no run journal (%s): 'reencrypt run --env %s' "
                           "keeps one", a->env, renc_strerror(rc), a->env);
        return RENC_EXIT_USAGE;
    }
    a->path = found;
    return -1;
}

/* Which journal: --journal, --env's, or the latest.  Returns -1 to go on,
 * or an exit. */
static int renc_status_find(struct renc_status_args *a, char *found, size_t max,
                            unsigned *journals)
{
    int status = a->env ? renc_status_env_journal(a, found, max) : -1;
    if (status >= 0 || a->path)
        return status;
    int rc = renc_global_resolve(&a->g, 0);
    if (rc == 0)
        rc = renc_latest_journal(a->g.state_dir, found, max, journals);
    if (rc) {
        char qs[RENC_PATH_QUOTE_MAX];
        renc_err("status", "no journal under %s/journals (a run keeps one there unless "
                           "given --journal or --no-journal)",
                 renc_path_quote(qs, sizeof qs, a->g.state_dir ? a->g.state_dir : ""));
        return RENC_EXIT_USAGE;
    }
    a->path = found;
    return -1;
}

/* The figures both outputs show, from the journal's counts. */
struct renc_status_figures {
    uint64_t total, total_bytes, left, left_bytes;
    double secs, bps, mbps, eta; /* eta < 0: no estimate */
    const char *state;
    char started[32], updated[32];
};

static void renc_status_figure(struct renc_status_figures *f, const struct renc_journal_status *st)
{
    memset(f, 0, sizeof *f);
    for (int k = 0; k < RENC_J_COUNT; k++) {
        if (k == RENC_J_GONE)
            continue;
        f->total += st->count[k];
        f->total_bytes += st->bytes[k];
    }
    f->left = st->count[RENC_J_PENDING] + st->count[RENC_J_FAILED];
    f->left_bytes = st->bytes[RENC_J_PENDING] + st->bytes[RENC_J_FAILED];
    double end = st->running ? st->updated : st->last_ended > 0 ? st->last_ended : st->updated;
    f->secs = st->attempts && end > st->last_started ? end - st->last_started : 0;
    f->bps = f->secs > 0 ? st->last_blobs / f->secs : 0;
    f->mbps = f->secs > 0 ? st->last_bytes / 1e6 / f->secs : 0;
    /* Time left only for a run going on: a stopped one has no rate now. */
    f->eta = !st->running ? -1 : f->mbps > 0 ? f->left_bytes / 1e6 / f->mbps
                               : f->bps > 0 ? f->left / f->bps : -1;
    f->state = renc_run_state(st);
    renc_time_str(f->started, sizeof f->started, st->last_started);
    renc_time_str(f->updated, sizeof f->updated, st->updated);
}

/* A shared run's workers (a journal on a server), as JSON and as lines. */
static void renc_status_worker_json(void *arg, const struct renc_journal_worker *w)
{
    json_array_append_new(arg, renc_run_worker_json(w));
}

static void renc_status_worker_line(void *arg, const struct renc_journal_worker *w)
{
    (void)arg;
    char hb[64];
    renc_time_str(hb, sizeof hb, w->heartbeat);
    printf("          %lld  %s pid %ld: %llu blobs, %llu failed; last heard %s; %s\n",
           (long long)w->id, w->host, w->pid, (unsigned long long)w->done,
           (unsigned long long)w->failed, hb,
           w->ended > 0 ? w->outcome : w->live ? "working" : "silent (its claims lapse)");
}

static void renc_status_json(struct renc_journal *j, const struct renc_status_args *a,
                             const struct renc_journal_status *st,
                             const struct renc_status_figures *f)
{
    struct renc_fail_ctx fc = {.json = 1};
    fc.arr = json_array();
    renc_journal_failures(j, (size_t)a->max_failures, renc_status_failure, &fc);
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I}, s:I, s:s, s:s, s:f, s:f, s:o}",
        "journal", a->path, "run_id", st->run_id, "state", f->state,
        "mode", st->params.mode ? st->params.mode : "",
        "target", st->params.target ? st->params.target : "",
        "out", st->params.out ? st->params.out : "", "attempts", (int)st->attempts,
        "blobs", "total", (json_int_t)f->total, "pending", (json_int_t)st->count[RENC_J_PENDING],
        "done", (json_int_t)st->count[RENC_J_DONE],
        "skipped", (json_int_t)st->count[RENC_J_SKIPPED],
        "not_renc", (json_int_t)st->count[RENC_J_NOT_RENC],
        "failed", (json_int_t)st->count[RENC_J_FAILED],
        "gone", (json_int_t)st->count[RENC_J_GONE],
        "bytes", "total", (json_int_t)f->total_bytes,
        "finished", (json_int_t)(f->total_bytes - f->left_bytes), "left",
        (json_int_t)f->left_bytes, "header_intents", (json_int_t)st->header_intents,
        "attempt_started", f->started, "updated", f->updated, "blobs_per_s", f->bps,
        "mb_per_s", f->mbps, "failures", fc.arr);
    if (root && st->running)
        json_object_set_new(root, "pid", json_integer(st->holder_pid));
    if (root && st->params.shard && st->params.shard[0])
        json_object_set_new(root, "shard", json_string(st->params.shard));
    if (root && st->params.name && st->params.name[0])
        json_object_set_new(root, "name", json_string(st->params.name));
    json_t *settled = root ? json_object() : NULL;
    for (int k = 0; settled && k < RENC_SETTLE_COUNT; k++)
        json_object_set_new(settled, renc_settle_name((enum renc_settle)k),
                            json_integer((json_int_t)st->settled[k]));
    if (settled)
        json_object_set_new(root, "header_settled", settled);
    if (root)
        json_object_set_new(root, "eta_s", f->eta >= 0 ? json_real(f->eta) : json_null());
    if (root && renc_journal_shared(j)) {
        json_t *workers = json_array();
        renc_journal_workers(j, renc_status_worker_json, workers);
        json_object_set_new(root, "workers", workers);
        json_object_set_new(root, "live_workers", json_integer(st->live_workers));
        json_object_set_new(root, "listed", json_boolean(st->listed));
    }
    json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

/* One source a line, escaped as the run stored it (a journal of an older
 * run may hold a raw control character: escaped here). */
static void renc_status_sources(const struct renc_journal_status *st)
{
    char q[RENC_PATH_QUOTE_MAX];
    printf("sources   ");
    for (const char *s = st->params.sources; *s;) {
        size_t n = strcspn(s, "\n");
        char one[4200];
        snprintf(one, sizeof one, "%.*s", (int)n, s);
        int raw = 0;
        for (const unsigned char *c = (const unsigned char *)one; *c; c++)
            raw |= *c < 0x20 || *c == 0x7f;
        fputs(raw ? renc_path_quote(q, sizeof q, one) : one, stdout);
        s += n;
        if (*s == '\n' && *++s)
            fputs("\n          ", stdout);
    }
    printf("\n");
}

/* The state, progress and rate lines. */
static void renc_status_progress(const struct renc_journal_status *st,
                                 const struct renc_status_figures *f)
{
    if (st->running)
        printf("state     running (pid %ld), attempt %u since %s\n", st->holder_pid,
               st->attempts, f->started);
    else
        printf("state     %s (attempt %u, started %s)\n", f->state, st->attempts, f->started);
    printf("progress  %llu of %llu blobs finished (%.1f%%), %.1f of %.1f MB\n",
           (unsigned long long)(f->total - f->left), (unsigned long long)f->total,
           f->total ? 100.0 * (f->total - f->left) / f->total : 100.0,
           (f->total_bytes - f->left_bytes) / 1e6, f->total_bytes / 1e6);
    printf("          %llu done, %llu skipped (already under the target), %llu not RENC, "
           "%llu failed, %llu pending%s",
           (unsigned long long)st->count[RENC_J_DONE],
           (unsigned long long)st->count[RENC_J_SKIPPED],
           (unsigned long long)st->count[RENC_J_NOT_RENC],
           (unsigned long long)st->count[RENC_J_FAILED],
           (unsigned long long)st->count[RENC_J_PENDING], st->count[RENC_J_GONE] ? "" : "\n");
    if (st->count[RENC_J_GONE])
        printf(", %llu gone (no longer found)\n", (unsigned long long)st->count[RENC_J_GONE]);
    if (f->secs > 0)
        printf("rate      %.0f blobs/s, %.1f MB/s in the last attempt%s", f->bps, f->mbps,
               f->left && f->eta >= 0 ? "" : "\n");
    if (f->secs > 0 && f->left && f->eta >= 0)
        printf("; about %.0f s left at that rate\n", f->eta);
}

static void renc_status_text(struct renc_journal *j, const struct renc_status_args *a,
                             unsigned journals, const struct renc_journal_status *st,
                             const struct renc_status_figures *f)
{
    char q[RENC_PATH_QUOTE_MAX];
    uint64_t max_failures = a->max_failures;
    printf("journal   %s%s\n", renc_path_quote(q, sizeof q, a->path),
           journals > 1 ? "  (the latest of several: --journal FILE)" : "");
    if (!st->has_run) {
        printf("run       none recorded\n");
        return;
    }
    if (st->params.name && st->params.name[0])
        printf("run       %s (%s): ", st->params.name, st->run_id);
    else
        printf("run       %s: ", st->run_id);
    printf("%s to %s, %s\n", st->params.mode, st->params.target,
           st->params.out[0] ? renc_path_quote(q, sizeof q, st->params.out) : "in place");
    renc_status_sources(st);
    if (st->params.shard && st->params.shard[0])
        printf("shard     %s (this journal holds that shard's blobs only)\n", st->params.shard);
    renc_status_progress(st, f);
    if (renc_journal_shared(j)) {
        printf("workers   %u live%s\n", st->live_workers,
               st->listed ? "" : "; the run is still being listed");
        renc_journal_workers(j, renc_status_worker_line, NULL);
    }
    if (st->header_intents)
        printf("headers   %llu in-place header writes not yet settled: the next run settles "
               "them first\n", (unsigned long long)st->header_intents);
    renc_status_settled(st);
    if (st->count[RENC_J_FAILED]) {
        struct renc_fail_ctx fc = {.json = 0};
        printf("failures  (%s%llu)\n", max_failures && st->count[RENC_J_FAILED] > max_failures
                                            ? "first " : "",
               (unsigned long long)(max_failures && st->count[RENC_J_FAILED] > max_failures
                                        ? max_failures : st->count[RENC_J_FAILED]));
        renc_journal_failures(j, (size_t)max_failures, renc_status_failure, &fc);
    }
    if (!st->running && (f->left || st->header_intents))
        printf("next      run the same command again (or with --resume) to continue\n");
}

int renc_cmd_status(int argc, char **argv)
{
    struct renc_status_args a = {.max_failures = 20};
    char found[4400];
    unsigned journals = 1;
    int status = renc_status_parse(&a, argc, argv);
    if (status >= 0 || (status = renc_status_find(&a, found, sizeof found, &journals)) >= 0)
        return status;
    struct renc_journal *j = NULL;
    char qp[RENC_PATH_QUOTE_MAX];
    int rc = renc_journal_open_readonly(&j, a.path);
    if (renc_journal_say_password("status", a.path, rc))
        return RENC_EXIT_USAGE;
    if (rc) {
        renc_err("status", "journal %s: %s", renc_path_quote(qp, sizeof qp, a.path),
                 renc_strerror(rc));
        return renc_exit_for(rc) == RENC_EXIT_USAGE || rc == -ENOENT ? RENC_EXIT_USAGE
                                                                     : RENC_EXIT_FAILED;
    }
    struct renc_journal_status st;
    if ((rc = renc_journal_status(j, &st))) {
        renc_err("status", "journal %s: %s", renc_path_quote(qp, sizeof qp, a.path),
                 renc_strerror(rc));
        status = RENC_EXIT_FAILED;
        goto out_close;
    }
    if (a.run && !renc_journal_shared(j) &&
        (!st.has_run || strcmp(st.params.name ? st.params.name : "", a.run) != 0)) {
        const char *had = st.has_run && st.params.name[0] ? st.params.name : "";
        renc_err("status", "journal %s holds %s%s, not run %s",
                 renc_path_quote(qp, sizeof qp, a.path),
                 !st.has_run ? "no run" : had[0] ? "run " : "an unnamed run", had, a.run);
        status = RENC_EXIT_FAILED;
        goto out_close;
    }
    struct renc_status_figures f;
    renc_status_figure(&f, &st);
    if (a.json)
        renc_status_json(j, &a, &st, &f);
    else
        renc_status_text(j, &a, journals, &st, &f);
    status = RENC_EXIT_OK;
out_close:
    renc_journal_close(j);
    return status;
}
