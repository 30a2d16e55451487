/* reencrypt run | verify — the bulk commands: their options, and the calls
 * one run makes in order (locks, keys, journal, scan, engine, outcome).
 * What those calls need beside them lives in run_paths.c (what the
 * store's --out mirror rules and temp-file sweep found), run_journal.c
 * (the journal and the work list) and run_report.c (progress, summary,
 * --report); cmd_run.h is what they share. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "run/engine.h"
#include "reencrypt/envctl.h"
#include "env/envdata.h"
#include "store/scan.h"
#include "store/store.h"
#include "run/session.h"
#include "reencrypt/stage.h"
#include "blob/transform.h"

/* Long options with no letter of their own (the letters are taken). */
#define RENC_OPT_KEEP_CACHE 0x2001
#define RENC_OPT_BARRIER 0x2002
#define RENC_OPT_WRITE_MODE 0x2003
#define RENC_OPT_RUN 0x2010

static const char renc_run_usage[] =
    "usage: reencrypt run (--env ID... | --all-envs) [--mode rewrap|rekey] [options below]\n"
    "       reencrypt run --to REF [--mode rewrap|rekey] [--out DIR] [--keep-old]\n"
    "         [--drop REF]... [--dry-run] [--share-dek N] [--no-verify] [--fail-fast]\n"
    "         [--threads N] [--memory BYTES] [--progress=bar|json|none] [--report FILE]\n"
    "         [--crypto-backend auto|openssl|ipsec-mb] [--direct] [--keep-cache]\n"
    "         [--barrier file|batch] [--write-mode buffered|direct]\n"
    "         [--journal FILE | --journal postgresql://... [--run NAME] | --no-journal]\n"
    "         [--resume] [--restart] [--copy]\n"
    "         [--shard K/N|auto] [--metrics-file PATH] (SOURCE... | --manifest FILE)\n";
static const char renc_verify_usage[] =
    "usage: reencrypt verify [--threads N] [--memory BYTES] [--progress=bar|json|none] [--direct]\n"
    "         [--keep-cache] [--report FILE] [--shard K/N|auto] [--metrics-file PATH]\n"
    "         (SOURCE... | --manifest FILE | --env ID... | --all-envs)\n";

/* The most --memory may be: the machine's physical memory (and never more
 * than 1 TiB, the most the engine sizes its pools for). */
static uint64_t renc_memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t cap = (uint64_t)1 << 40;
    if (pages <= 0 || page <= 0)
        return cap;
    uint64_t phys = (uint64_t)pages * (uint64_t)page;
    return phys < cap ? phys : cap;
}

/* The options of run and verify whose value is checked: returns -1 when
 * opt is taken, or an exit. */
static int renc_bulk_opt_value(const char *cmd, struct renc_bulk_args *a, int opt)
{
    uint64_t v;
    switch (opt) {
    case 'm':
        if (strcmp(optarg, "rewrap") == 0)
            a->mode = RENC_MODE_REWRAP;
        else if (strcmp(optarg, "rekey") == 0)
            a->mode = RENC_MODE_REKEY;
        else {
            renc_err(cmd, "--mode must be rewrap or rekey");
            return RENC_EXIT_USAGE;
        }
        break;
    case 's':
        if (renc_parse_size(optarg, &v) || v < 1 || v > 1000000) {
            renc_err(cmd, "--share-dek must be 1..1000000");
            return RENC_EXIT_USAGE;
        }
        a->share_dek = (unsigned)v;
        break;
    case 'T':
        if (renc_parse_size(optarg, &v) || v < 1 || v > 1024) {
            renc_err(cmd, "--threads must be 1..1024");
            return RENC_EXIT_USAGE;
        }
        a->threads = (unsigned)v;
        a->threads_given = 1;
        break;
    case 'B':
        if (renc_parse_size(optarg, &v)) {
            renc_err(cmd, "--memory must be a byte count (K, M, G suffixes)");
            return RENC_EXIT_USAGE;
        }
        if (v > renc_memory_limit()) {
            char limit[32];
            renc_bytes_text(limit, sizeof limit, renc_memory_limit());
            renc_err(cmd, "--memory %s is more than this machine's memory: at most %llu "
                          "bytes (%s)", optarg, (unsigned long long)renc_memory_limit(), limit);
            return RENC_EXIT_USAGE;
        }
        a->memory = v;
        break;
    case 'P':
        if (strcmp(optarg, "bar") == 0)
            a->progress = RENC_PROGRESS_BAR;
        else if (strcmp(optarg, "json") == 0)
            a->progress = RENC_PROGRESS_JSON;
        else if (strcmp(optarg, "none") == 0)
            a->progress = RENC_PROGRESS_NONE;
        else {
            renc_err(cmd, "--progress must be bar, json or none");
            return RENC_EXIT_USAGE;
        }
        break;
    case 'C':
        if (renc_aead_backend_parse(optarg, &a->backend) != 0) {
            renc_err(cmd, "--crypto-backend must be auto, openssl or ipsec-mb");
            return RENC_EXIT_USAGE;
        }
        break;
    case RENC_OPT_BARRIER:
        if (strcmp(optarg, "file") == 0)
            a->barrier = RENC_BARRIER_FILE;
        else if (strcmp(optarg, "batch") == 0)
            a->barrier = RENC_BARRIER_BATCH;
        else {
            renc_err(cmd, "--barrier must be file or batch");
            return RENC_EXIT_USAGE;
        }
        break;
    case RENC_OPT_WRITE_MODE:
        if (strcmp(optarg, "buffered") == 0)
            a->write_mode = RENC_WRITE_BUFFERED;
        else if (strcmp(optarg, "direct") == 0)
            a->write_mode = RENC_WRITE_DIRECT;
        else {
            renc_err(cmd, "--write-mode must be buffered or direct");
            return RENC_EXIT_USAGE;
        }
        break;
    case 'K': {
        char why[512];
        if (renc_shard_parse(&a->shard, optarg, why, sizeof why)) {
            renc_err(cmd, "%s", why);
            return RENC_EXIT_USAGE;
        }
        break;
    }
    }
    return -1;
}

/* One option of run or verify (not a global one): returns -1 when taken,
 * or an exit (usage or --help). */
static int renc_bulk_opt(const char *cmd, const char *usage, struct renc_bulk_args *a, int opt)
{
    switch (opt) {
    case 'm': case 's': case 'T': case 'B': case 'P': case 'C': case 'K':
    case RENC_OPT_BARRIER: case RENC_OPT_WRITE_MODE:
        return renc_bulk_opt_value(cmd, a, opt);
    case 't': a->to = optarg; break;
    case 'o': a->out = optarg; break;
    case 'M': a->manifest = optarg; break;
    case 'k': a->keep_old = 1; break;
    case 'd':
        if (a->drop_count == 16) {
            renc_err(cmd, "at most 16 --drop options");
            return RENC_EXIT_USAGE;
        }
        a->drop[a->drop_count++] = optarg;
        break;
    case 'n': a->dry_run = 1; break;
    case 'V': a->no_verify = 1; break;
    case 'F': a->fail_fast = 1; break;
    case 'r': a->report = optarg; break;
    case 'E': a->metrics_file = optarg; break;
    case 'D': a->direct = 1; break;
    case RENC_OPT_KEEP_CACHE: a->keep_cache = 1; break;
    case 'I': a->identity = 1; break; /* undocumented: bench/ ceiling only */
    case 'J': a->journal = optarg; break;
    case RENC_OPT_RUN: a->run_name = optarg; break;
    case 'j': a->no_journal = 1; break;
    case 'R': a->resume = 1; break;
    case 'X': a->restart = 1; break;
    case 'c': a->copy = 1; break;
    case 'e':
        if (a->env_count == 64) {
            renc_err(cmd, "at most 64 --env options (--all-envs takes them all)");
            return RENC_EXIT_USAGE;
        }
        a->envs[a->env_count++] = optarg;
        break;
    case 'A': a->all_envs = 1; break;
    case 'h': fputs(usage, stdout); return RENC_EXIT_OK;
    default: fputs(usage, stderr); return RENC_EXIT_USAGE;
    }
    return -1;
}

/* What to work on: --env IDs (or --all-envs), or SOURCEs, or --manifest,
 * one of them.  Returns -1 to continue, or an exit. */
static int renc_bulk_parse_what(const char *cmd, const char *usage, struct renc_bulk_args *a)
{
    if (a->env_count || a->all_envs) {
        if (a->source_count || a->manifest || (a->env_count && a->all_envs)) {
            renc_err(cmd, "give --env ID (or --all-envs), or SOURCEs, or --manifest: one of them");
            return RENC_EXIT_USAGE;
        }
        /* A journal on a server is shared by the workers of each
         * environment's run (run NAME, or env-ID). */
        if (a->to || a->out || (a->journal && !renc_journal_is_url(a->journal))) {
            renc_err(cmd, "with --env the target is the environment's policy key and its data is "
                          "rewritten in place, each with its own journal: --%s does not apply",
                     a->to ? "to" : a->out ? "out" : "journal FILE");
            return RENC_EXIT_USAGE;
        }
        if (a->run_name && (a->all_envs || a->env_count > 1)) {
            renc_err(cmd, "--run names one run: with several environments each has its own "
                          "(env-ID)");
            return RENC_EXIT_USAGE;
        }
        for (size_t i = 0; i < a->env_count; i++)
            if (!renc_env_id_ok(cmd, "--env", a->envs[i]))
                return RENC_EXIT_USAGE;
        return -1;
    }
    if ((a->source_count == 0) == (a->manifest == NULL)) {
        renc_err(cmd, "give SOURCE directories or files, or --manifest FILE (not both)");
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    return -1;
}

/* Parses the options of run, verify and plan; returns -1 to continue, or an
 * exit code. */
static int renc_bulk_parse(const char *cmd, const char *usage, int argc, char **argv,
                           struct renc_bulk_args *a)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        {"manifest", required_argument, NULL, 'M'},
        {"keep-old", no_argument, NULL, 'k'},
        {"drop", required_argument, NULL, 'd'},
        {"dry-run", no_argument, NULL, 'n'},
        {"share-dek", required_argument, NULL, 's'},
        {"no-verify", no_argument, NULL, 'V'},
        {"fail-fast", no_argument, NULL, 'F'},
        {"threads", required_argument, NULL, 'T'},
        {"memory", required_argument, NULL, 'B'},
        {"progress", required_argument, NULL, 'P'},
        {"report", required_argument, NULL, 'r'},
        {"crypto-backend", required_argument, NULL, 'C'},
        {"direct", no_argument, NULL, 'D'},
        {"keep-cache", no_argument, NULL, RENC_OPT_KEEP_CACHE},
        {"barrier", required_argument, NULL, RENC_OPT_BARRIER},
        {"write-mode", required_argument, NULL, RENC_OPT_WRITE_MODE},
        {"bench-identity", no_argument, NULL, 'I'},
        {"journal", required_argument, NULL, 'J'},
        {"no-journal", no_argument, NULL, 'j'},
        {"resume", no_argument, NULL, 'R'},
        {"restart", no_argument, NULL, 'X'},
        {"copy", no_argument, NULL, 'c'},
        {"env", required_argument, NULL, 'e'},
        {"all-envs", no_argument, NULL, 'A'},
        {"shard", required_argument, NULL, 'K'},
        {"metrics-file", required_argument, NULL, 'E'},
        {"run", required_argument, NULL, RENC_OPT_RUN},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    uint64_t seen = 0; /* the single-valued options given (renc_opt_once) */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 0 ? (unsigned)ncpu : 1;
    a->memory = (uint64_t)256 << 20;
    a->share_dek = 1;
    int opt;
    optind = 1;
    int idx = -1;
    while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (!a->run_only && idx >= 0 &&
            (opt == RENC_OPT_BARRIER || opt == RENC_OPT_WRITE_MODE || opt == RENC_OPT_RUN ||
             (opt < 256 && strchr("tmokdnsVJjRXc", opt))))
            a->run_only = opts[idx].name;
        idx = -1;
        /* --drop and --env add up; the others with a value take one. */
        if (renc_opt_once(cmd, opts, "tmoMsTBPrCJKE", opt, &seen))
            return RENC_EXIT_USAGE;
        int status = renc_bulk_opt(cmd, usage, a, opt);
        if (status >= 0)
            return status;
    }
    a->sources = argv + optind;
    a->source_count = argc - optind;
    return renc_bulk_parse_what(cmd, usage, a);
}

/* Opens the store the blobs are in and lists them; prints listing errors.
 * Returns -1 to continue or an exit. */
static int renc_bulk_scan(const char *cmd, struct renc_bulk_args *a, struct renc_store **store,
                          struct renc_scan *scan, const char *exclude,
                          const struct renc_blob_account_opts *blob, size_t hold_max,
                          int *held_over)
{
    char q[RENC_PATH_QUOTE_MAX], why[512] = "";
    struct renc_store_spec spec = {.sources = (const char *const *)a->sources,
                                   .source_count = (size_t)a->source_count,
                                   .manifest = a->manifest, .exclude = exclude, .blob = blob,
                                   .why = why, .why_max = sizeof why};
    int rc = renc_store_open(store, &spec);
    if (rc == 0) /* a shard keeps its own blobs only, as they are listed */
        rc = renc_shard_list(*store, &a->shard, scan, hold_max, &a->listed);
    if (rc == -RENC_E_TOO_BIG && hold_max) {
        *held_over = 1; /* the caller lists it into the journal instead */
        return -1;
    }
    if (rc) {
        char name[RENC_PATH_QUOTE_MAX];
        if (*store)
            snprintf(name, sizeof name, "%s", (*store)->ops->describe(*store));
        else if (a->manifest)
            QP(name, a->manifest);
        else if (a->source_count == 1 && renc_store_name_clean(a->sources[0], q, sizeof q) == 0)
            snprintf(name, sizeof name, "%s", q);
        else
            snprintf(name, sizeof name, "scan");
        if (rc == -RENC_E_UNSUPPORTED && !*store)
            snprintf(why, sizeof why, "a run takes one container (or prefix in it), not "
                                      "several, nor a container and local paths together");
        renc_err(cmd, "%s: %s%s%s", name, renc_strerror(rc), why[0] ? ": " : "", why);
        return renc_exit_for(rc);
    }
    for (size_t i = 0; i < scan->error_count; i++)
        renc_err(cmd, "%s: %s", QP(q, scan->errors[i].path), renc_strerror(scan->errors[i].rc));
    if (scan->duplicates)
        printf("%s: %llu manifest lines named a file already listed: done once\n", cmd,
               (unsigned long long)scan->duplicates);
    if (scan->skipped_special)
        printf("%s: %llu symbolic links or special files left alone\n", cmd,
               (unsigned long long)scan->skipped_special);
    if (a->shard.count)
        printf("%s: shard %s%s%s%s: %zu of the %llu blobs listed\n", cmd, a->shard.text,
               a->shard.from[0] ? " (from " : "", a->shard.from, a->shard.from[0] ? ")" : "",
               scan->count, (unsigned long long)a->listed);
    return -1;
}

/* Set by SIGINT and SIGTERM (renc_on_signal) and by a journal flush that
 * failed (renc_run_progress_cb): the engine starts no new blob.  Atomic,
 * not volatile sig_atomic_t: the engine's workers read it while the
 * handler may run on any thread (ThreadSanitizer reported the race). */
static atomic_int renc_stop_flag;

static void renc_on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&renc_stop_flag, 1); /* in-flight blobs finish; nothing new is started */
    errno = saved;
}

/* The run's transformer, to target.  Returns -1 to continue or an exit. */
static int renc_bulk_transformer(const char *cmd, const struct renc_bulk_args *a,
                                 struct renc_keystore *ks, const char *target,
                                 struct renc_transformer **t)
{
    struct renc_transform_opts to = {
        .mode = a->mode, .target = target, .keep_old = a->keep_old,
        .drop = a->drop, .drop_count = a->drop_count, .share_dek = a->share_dek,
        .verify = !a->no_verify, .backend = a->backend,
    };
    char versioned[RENC_MAX_REF_LEN + 1];
    int rc = renc_keystore_may_wrap(ks, versioned, sizeof versioned, target);
    if (rc == -RENC_E_KEY_DISABLED || rc == -RENC_E_KEY_EXPIRED) {
        /* Refused before any blob is read: nothing new is sealed under a
         * version its owner disabled or let expire. */
        renc_err(cmd, "target %s: version %s: %s; nothing is sealed under it (enable it, or "
                      "make a new current version)",
                 target, versioned, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (rc == 0)
        rc = renc_transformer_new(t, ks, &to);
    if (rc) {
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(cmd, "target %s: %s", QP(q, target), renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    return -1;
}

/* After the engine: the summary and report, the journal's end with the
 * run's outcome (a failed flush stopped the run: it is a failure, not an
 * interruption), and what the catalog learns (a->outcome).  Returns the
 * exit. */
static int renc_bulk_outcome(struct renc_bulk_run *r, struct renc_progress_ctx *pc)
{
    const char *cmd = r->cmd;
    struct renc_bulk_args *a = r->a;
    char q[RENC_PATH_QUOTE_MAX];
    struct renc_engine_progress p;
    int interrupted = atomic_load(&renc_stop_flag) && pc->journal_rc == 0;
    int status = renc_bulk_finish(cmd, a, r->e, &r->work, r->ks,
                                  r->t ? renc_transformer_target(r->t) : NULL, pc,
                                  r->journaled ? &r->sess : NULL);
    if (r->journaled) {
        renc_engine_snapshot(r->e, &p);
        const char *outcome = pc->journal_rc ? "failed"
                              : interrupted ? "interrupted"
                              : p.failed || r->work.error_count || a->held ||
                                        p.items_finished < p.items_total
                                  ? "failed"
                                  : "finished";
        int rc = pc->journal_rc ? pc->journal_rc : renc_journal_end(r->sess.journal, outcome);
        if (rc) {
            renc_err(cmd, "journal %s: %s; blobs finished since its last commit will be checked "
                          "again (by their headers) when the run is resumed",
                     QP(q, r->sess.journal_path), renc_strerror(rc));
            status = RENC_EXIT_FAILED;
        }
    }
    renc_engine_snapshot(r->e, &p);
    if (interrupted) {
        renc_err(cmd, "interrupted: blobs in flight were finished or left wholly old; "
                      "%llu blobs left; run the same command again to continue%s%s%s",
                 (unsigned long long)(p.items_total - p.items_finished),
                 r->journaled ? " (journal " : "", r->journaled ? QP(q, r->sess.journal_path) : "",
                 r->journaled ? ")" : "");
        status = RENC_EXIT_INTERRUPTED;
    }
    a->failed_total = p.failed + r->work.error_count + a->held;
    a->outcome = interrupted ? "interrupted" : status == RENC_EXIT_OK ? "finished" : "failed";
    if (r->journaled)
        snprintf(a->journal_path, sizeof a->journal_path, "%s", r->sess.journal_path);
    return status;
}

/* The checks of a's options that need no keys and no files: usage
 * errors.  Canonicalises --out into r->out_real.  Returns -1 to go on, or
 * an exit. */
static int renc_bulk_check_args(struct renc_bulk_run *r, const char *usage)
{
    const char *cmd = r->cmd;
    struct renc_bulk_args *a = r->a;
    char q[RENC_PATH_QUOTE_MAX];
    if (r->op == RENC_ENGINE_VERIFY && a->run_only) {
        renc_err(cmd, "--%s is an option of run, not of verify", a->run_only);
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    if (r->op == RENC_ENGINE_RUN && !a->to) {
        renc_err(cmd, "--to REF is required");
        return RENC_EXIT_USAGE;
    }
    struct renc_keyref ref;
    if (a->to && renc_keyref_parse(&ref, a->to) != 0) {
        renc_err(cmd, "'%s': %s", QP(q, a->to), renc_strerror(-RENC_E_BAD_KEYREF));
        return RENC_EXIT_USAGE;
    }
    for (size_t i = 0; i < a->drop_count; i++) {
        if (renc_keyref_parse(&ref, a->drop[i]) != 0) {
            renc_err(cmd, "--drop '%s': %s", QP(q, a->drop[i]), renc_strerror(-RENC_E_BAD_KEYREF));
            return RENC_EXIT_USAGE;
        }
    }
    /* --direct: a worker coordinates one big blob at a time and mostly
     * waits on the device; twice the cores keep twice the blobs in flight,
     * so one blob's durability barriers (device flushes) overlap the other
     * blobs' reads and writes (docs/PERFORMANCE.md: +20% here). */
    if (a->direct && !a->threads_given && a->threads <= 512)
        a->threads *= 2;
    /* A worker waiting on a remote key (a key vault) holds no CPU: toward
     * one, more workers than cores keep its requests in flight (up to the
     * provider's bound) while the rest of the pipeline goes on. */
    if (a->to && (renc_provider_caps(a->to) & RENC_PROVIDER_REMOTE) && !a->threads_given &&
        a->threads < 16)
        a->threads = 16;
    /* Blob storage on either side: a worker waits on its requests, not on
     * the CPU, so more workers keep more of them in flight. */
    int remote = a->out && renc_store_is_url(a->out);
    for (int i = 0; i < a->source_count; i++)
        remote |= renc_store_is_url(a->sources[i]);
    if (remote && !a->threads_given && a->threads < 16)
        a->threads = 16;
    if (renc_store_creds_from(&a->g, &r->creds))
        return RENC_EXIT_USAGE;
    a->out_dir = a->out ? r->out_real : NULL;
    if (a->out) {
        int rc = renc_mirror_out_inside(a, r->out_real, sizeof r->out_real);
        if (rc != 0) {
            if (renc_store_name_clean(a->out, q, sizeof q) != 0)
                snprintf(q, sizeof q, "(a name too long)");
            renc_err(cmd, "--out %s: %s", q,
                     rc > 0 ? "the output directory is inside a source" : renc_strerror(rc));
            return RENC_EXIT_USAGE;
        }
    }
    if (a->memory < renc_engine_min_memory()) {
        renc_err(cmd, "--memory %llu is too small to hold one segment (at least %zu bytes)",
                 (unsigned long long)a->memory, renc_engine_min_memory());
        return RENC_EXIT_USAGE;
    }
    return -1;
}

/* One run at a time over a source or an output directory; an
 * environment's staged writes a killed command left are settled once its
 * lock is held.  Returns -1 to go on, or an exit. */
static int renc_bulk_lock(struct renc_bulk_run *r)
{
    const char *cmd = r->cmd;
    struct renc_bulk_args *a = r->a;
    char q[RENC_PATH_QUOTE_MAX], busy[PATH_MAX] = "";
    int rc = renc_session_lock(&r->sess, (const char *const *)a->sources, (size_t)a->source_count,
                               a->manifest, a->out ? r->out_real : NULL, busy, sizeof busy);
    if (rc) {
        if (rc == -RENC_E_BUSY)
            renc_err(cmd, "%s: another run is working on it, on a folder inside it or on one "
                          "holding it (runs over overlapping trees are refused); wait for it "
                          "to end or stop it", QP(q, busy));
        else
            renc_err(cmd, "%s: %s", QP(q, busy), renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (a->env_cat && !a->dry_run &&
        (rc = renc_stage_settle(cmd, stdout, a->env_cat, a->g.data_dir, a->env_id, NULL,
                                NULL, NULL))) {
        renc_err(cmd, "environment %s: settling an interrupted write: %s", a->env_id,
                 renc_strerror(rc));
        return renc_exit_for(rc);
    }
    return -1;
}

/* The keys, their DEK cache and, for run, the transformer to --to.
 * Returns -1 to go on, or an exit. */
static int renc_bulk_keys(struct renc_bulk_run *r)
{
    char q[RENC_PATH_QUOTE_MAX];
    int rc = renc_open_keys(&r->a->g, 0, &r->kr, &r->ks);
    if (rc) {
        renc_err(r->cmd, "keyring %s: %s", QP(q, r->a->g.keyring_dir), renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    /* 64Ki DEKs of 32 bytes: 2 MiB, within the locked secure heap. */
    if ((rc = renc_keystore_cache_deks(r->ks, 1u << 16))) {
        renc_err(r->cmd, "%s", renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (r->op == RENC_ENGINE_RUN)
        return renc_bulk_transformer(r->cmd, r->a, r->ks, r->a->to, &r->t);
    return -1;
}

/* Lists the blobs, refuses --out mirror paths that would collide or write
 * a source, and sweeps the temporaries earlier attempts left.  Returns -1
 * to go on, or an exit. */
static int renc_bulk_list(struct renc_bulk_run *r)
{
    const char *cmd = r->cmd;
    struct renc_bulk_args *a = r->a;
    char why[512] = "";
    struct renc_store_spec out = {.root = a->out, .blob = &r->creds.blob, .why = why,
                                  .why_max = sizeof why};
    int rc = a->out && renc_store_is_url(a->out) ? renc_store_open(&r->out_store, &out) : 0;
    if (rc) {
        renc_err(cmd, "--out %s: %s%s%s", r->out_real, renc_strerror(rc), why[0] ? ": " : "",
                 why);
        return renc_exit_for(rc);
    }
    int status = renc_bulk_scan(cmd, a, &r->store, &r->scan, a->out ? r->out_real : NULL,
                                &r->creds.blob, r->hold_max, &r->held_over);
    if (status >= 0 || r->held_over)
        return status;
    if (r->op == RENC_ENGINE_RUN && a->out &&
        (status = renc_mirror_check_paths(cmd, a->out, &r->scan)) >= 0)
        return status;
    if (r->op == RENC_ENGINE_RUN && a->out &&
        (status = renc_mirror_check_not_source(cmd, a, r->out_real, &r->scan)) >= 0)
        return status;
    if (r->writes) {
        const char *tags[2] = {r->sess.resumed ? renc_journal_run_id(r->sess.journal) : NULL,
                               r->sess.prev_run_id[0] ? r->sess.prev_run_id : NULL};
        renc_run_sweep_temps(cmd, r->store, &r->scan, tags, r->journaled ? 2 : 0);
    }
    return -1;
}

/* SIGINT and SIGTERM stop the run between blobs (renc_on_signal). */
void renc_bulk_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = renc_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void renc_bulk_engine_opts(const struct renc_bulk_run *r, struct renc_engine_opts *eo)
{
    const struct renc_bulk_args *a = r->a;
    *eo = (struct renc_engine_opts){
        .op = r->op, .threads = a->threads, .memory_bytes = (size_t)a->memory,
        .fail_fast = a->fail_fast, .dry_run = a->dry_run, .out_dir = a->out ? r->out_real : NULL,
        .backend = a->backend, .stop = &renc_stop_flag, .identity = a->identity,
        .direct = a->direct, .keep_cache = a->keep_cache,
        .barrier = a->barrier, .write_mode = a->write_mode, .journal = r->sess.journal,
        .rows = r->rows, .store = r->store,
        .out_store = r->out_store,
        .header_in_place = r->journaled && !a->copy,
        .tmp_tag = r->journaled ? renc_journal_run_id(r->sess.journal) : NULL,
        .clean_tmp = r->sess.resumed,
        .stale_tag = r->journaled && r->sess.prev_run_id[0] ? r->sess.prev_run_id : NULL,
    };
}

/* Runs the engine over r->work and says what it came to.  Returns the
 * exit. */
static int renc_bulk_engine(struct renc_bulk_run *r)
{
    const char *cmd = r->cmd;
    struct renc_bulk_args *a = r->a;
    struct renc_engine_opts eo;
    renc_bulk_engine_opts(r, &eo);
    int rc = renc_engine_new(&r->e, &eo, r->ks, r->t, &r->work);
    if (rc == 0) {
        renc_bulk_catch_signals();
        struct renc_metrics metrics = {.path = a->metrics_file, .cmd = cmd,
                                       .shard = a->shard.count ? a->shard.text : "",
                                       .failed_extra = r->work.error_count + a->held};
        struct renc_progress_ctx pc = {.mode = a->progress, .cmd = cmd,
                                       .journal = r->sess.journal, .stop = &renc_stop_flag,
                                       .metrics = a->metrics_file ? &metrics : NULL};
        if (pc.mode == RENC_PROGRESS_AUTO)
            pc.mode = isatty(STDERR_FILENO) ? RENC_PROGRESS_BAR : RENC_PROGRESS_JSON;
        rc = renc_engine_run(r->e, 200, renc_run_progress_cb, &pc);
        if (rc == 0)
            return renc_bulk_outcome(r, &pc);
    }
    renc_err(cmd, "%s", renc_strerror(rc));
    return RENC_EXIT_FAILED;
}

static void renc_bulk_exec_cleanup(struct renc_bulk_run *r)
{
    renc_engine_free(r->e);
    if (r->work.items != r->scan.items)
        renc_free(r->work.items);
    renc_free(r->rows);
    renc_free(r->finished);
    renc_scan_cleanup(&r->scan);
    renc_store_free(r->store);
    renc_store_free(r->out_store);
    renc_transformer_free(r->t);
    renc_keystore_free(r->ks);
    renc_keyring_free(r->kr);
    renc_session_cleanup(&r->sess);
}

/* A named run in a journal file (--run NAME without a server): listed
 * into the journal and worked in rounds like a shared run, by this process
 * alone.  Returns -1 to go on, or an exit. */
static int renc_bulk_named_args(struct renc_bulk_run *r)
{
    struct renc_bulk_args *a = r->a;
    if (!r->journaled || a->out || a->shard.count) {
        renc_err(r->cmd, "--run names a run listed into its journal: %s",
                 !r->journaled ? "not with --no-journal or --dry-run"
                 : a->out      ? "not with --out (the mirror's collision checks need the whole "
                                 "listing in one place)"
                               : "not with --shard (a shard's run keeps its own journal)");
        return RENC_EXIT_USAGE;
    }
    if (renc_session_set_name(&r->sess, a->run_name)) {
        renc_err(r->cmd, "--run: a name of 1 to 127 bytes");
        return RENC_EXIT_USAGE;
    }
    r->in_rounds = 1;
    return -1;
}

/* A run whose journal is on a server is one worker of a run shared by
 * name: --run NAME, else the location's #run=NAME, else (an environment's
 * run) env-ID, else "default".  Not with --out (the mirror's collision
 * checks need the whole listing in one place) nor --shard (workers share
 * the run without it).  Returns -1 to go on, or an exit. */
static int renc_bulk_shared_args(struct renc_bulk_run *r)
{
    struct renc_bulk_args *a = r->a;
    r->shared = r->journaled && a->journal && renc_journal_is_url(a->journal);
    if (a->run_name && !r->shared)
        return renc_bulk_named_args(r);
    if (!r->shared)
        return -1;
    r->in_rounds = 1;
    if (a->out || a->shard.count) {
        renc_err(r->cmd, "--%s does not go with a journal on a server: %s", a->out ? "out" : "shard",
                 a->out ? "a run shared by many workers works in place"
                        : "the workers of a shared run split it by claims, not shards");
        return RENC_EXIT_USAGE;
    }
    size_t base = strcspn(a->journal, "#");
    const char *named = a->journal[base] ? a->journal + base + 1 : NULL;
    int n;
    if (a->run_name)
        n = snprintf(a->journal_loc, sizeof a->journal_loc, "%.*s#run=%s", (int)base, a->journal,
                     a->run_name);
    else if (!named && a->env_id)
        n = snprintf(a->journal_loc, sizeof a->journal_loc, "%.*s#run=env-%s", (int)base,
                     a->journal, a->env_id);
    else
        n = snprintf(a->journal_loc, sizeof a->journal_loc, "%s", a->journal);
    if (n < 0 || (size_t)n >= sizeof a->journal_loc) {
        renc_err(r->cmd, "--journal: the location is too long");
        return RENC_EXIT_USAGE;
    }
    renc_session_set_shared(&r->sess);
    return -1;
}

/* The store the blobs are in, opened without listing it (a shared run
 * lists once, streamed into the journal).  Returns -1 to go on, or an
 * exit. */
static int renc_bulk_open_store(struct renc_bulk_run *r)
{
    struct renc_bulk_args *a = r->a;
    char why[512] = "", q[RENC_PATH_QUOTE_MAX];
    struct renc_store_spec spec = {.sources = (const char *const *)a->sources,
                                   .source_count = (size_t)a->source_count,
                                   .manifest = a->manifest, .blob = &r->creds.blob,
                                   .why = why, .why_max = sizeof why};
    int rc = renc_store_open(&r->store, &spec);
    if (rc) {
        if (a->manifest)
            QP(q, a->manifest);
        else if (a->source_count != 1 || renc_store_name_clean(a->sources[0], q, sizeof q) != 0)
            snprintf(q, sizeof q, "the sources"); /* a URL's SAS is never printed */
        renc_err(r->cmd, "%s: %s%s%s", q, renc_strerror(rc), why[0] ? ": " : "", why);
        return renc_exit_for(rc);
    }
    return -1;
}

/* The most blobs a run lists into memory before it goes in rounds instead:
 * RENC_LIST_HOLD, else 250,000 (about 60 MiB of list).  Only a run with a
 * journal file in place can (0: no limit): --out's collision checks need
 * the whole list. */
static size_t renc_bulk_hold_max(const struct renc_bulk_run *r)
{
    if (!r->journaled || r->in_rounds || r->a->out)
        return 0;
    const char *env = getenv("RENC_LIST_HOLD");
    char *end;
    unsigned long long v = env && *env ? strtoull(env, &end, 10) : 0;
    return env && *env && !*end && v ? (size_t)v : 250000;
}

/* A listing longer than the run holds: it goes into the journal, streamed,
 * and the run through it in rounds, as a named run's does. */
static int renc_bulk_held_over(struct renc_bulk_run *r)
{
    renc_scan_cleanup(&r->scan);
    memset(&r->scan, 0, sizeof r->scan);
    printf("%s: more than %zu blobs: the listing goes into the journal and the run takes them "
           "from it in rounds\n", r->cmd, r->hold_max);
    fflush(stdout);
    r->in_rounds = 1;
    return renc_run_shared(r);
}

/* One run (or verify) over the sources of a. */
static int renc_bulk_exec(const char *cmd, const char *usage, enum renc_engine_op op,
                          struct renc_bulk_args *a)
{
    struct renc_bulk_run r = {.cmd = cmd, .op = op, .a = a};
    int status = renc_bulk_check_args(&r, usage);
    if (status >= 0)
        return status;
    renc_session_init(&r.sess);
    renc_session_set_shard(&r.sess, a->shard.count ? a->shard.text : NULL);
    r.writes = op == RENC_ENGINE_RUN && !a->dry_run;
    r.journaled = r.writes && !a->no_journal;
    if ((status = renc_bulk_shared_args(&r)) >= 0)
        return status;
    r.want = (struct renc_session_want){
        .mode = a->mode == RENC_MODE_REKEY ? "rekey" : "rewrap", .target_given = a->to,
        .keep_old = a->keep_old, .drop = a->drop, .drop_count = a->drop_count,
        .restart = a->restart,
    };
    const char *given = a->journal; /* a shared run's: with #run=NAME */
    if (r.shared)
        a->journal = a->journal_loc;
    if ((r.writes && (status = renc_bulk_lock(&r)) >= 0) || (status = renc_bulk_keys(&r)) >= 0 ||
        (r.journaled && (status = renc_run_journal_open(cmd, a, &r.sess, &r.want)) >= 0)) {
        a->journal = given;
        goto out;
    }
    a->journal = given;
    if (r.sess.resumed && strcmp(r.sess.target, renc_transformer_target(r.t)) != 0) {
        /* A resumed run keeps the target version it started with. */
        renc_transformer_free(r.t);
        r.t = NULL;
        if ((status = renc_bulk_transformer(cmd, a, r.ks, r.sess.target, &r.t)) >= 0)
            goto out;
    }
    if (r.in_rounds) {
        if ((status = renc_bulk_open_store(&r)) < 0)
            status = renc_run_shared(&r);
        goto out;
    }
    r.hold_max = renc_bulk_hold_max(&r);
    if ((status = renc_bulk_list(&r)) >= 0)
        goto out;
    if (r.held_over) {
        status = renc_bulk_held_over(&r);
        goto out;
    }
    r.work = r.scan;
    if (r.journaled &&
        (status = renc_run_work_list(cmd, a, &r.sess, &r.want, renc_transformer_target(r.t),
                                     &r.scan, &r.work, &r.rows, &r.finished)) >= 0)
        goto out;
    status = renc_bulk_engine(&r);
    if (r.writes)
        renc_store_warn_retained(cmd, r.store);
out:
    renc_bulk_exec_cleanup(&r);
    return status;
}

/* run --env: one run per environment, over DATA/<id>, to its policy key;
 * a locked environment is refused before anything is read, and the next
 * one goes on.  The catalog learns each run's outcome. */
/* A key's access was withdrawn (or a vault key disabled) during the run:
 * every environment on that key is locked, as `keys revoke` would. */
static void renc_lock_withdrawn(const char *cmd, struct renc_catalog *cat,
                                const struct renc_bulk_args *a)
{
    char reason[RENC_REASON_MAX + 1];
    char **ids = NULL;
    size_t n = 0;
    renc_textf(reason, sizeof reason, "key %s %s", a->withdrawn_ref,
               a->withdrawn_rc == -RENC_E_KEY_REVOKED ? "revoked (access withdrawn)" : "disabled");
    int rc = renc_catalog_key_lock(cat, a->withdrawn_ref, reason, &ids, &n);
    if (rc)
        renc_err(cmd, "catalog: locking the environments of %s: %s", a->withdrawn_ref,
                 renc_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        renc_err(cmd, "environment %s locked: %s", ids[i], reason);
        renc_free(ids[i]);
    }
    renc_free(ids);
}

static int renc_bulk_envs(const char *cmd, const char *usage, enum renc_engine_op op,
                          struct renc_bulk_args *a)
{
    struct renc_catalog *cat = NULL;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    struct renc_env *all = NULL;
    size_t n = 0;
    int status = RENC_EXIT_OK;
    int rc = renc_open_keys(&a->g, 0, &kr, &ks);
    if (rc == 0)
        rc = renc_envctl_open(&a->g, 0, &cat);
    if (rc == 0 && a->all_envs)
        rc = renc_catalog_list(cat, &all, &n);
    if (rc) {
        renc_err(cmd, "%s", rc == -ENOENT ? "no environments yet ('reencrypt env create ID')"
                                          : renc_strerror(rc));
        status = renc_exit_for(rc);
        goto out;
    }
    if (!a->all_envs)
        n = a->env_count;
    if (a->all_envs && n == 0)
        printf("%s: no environments in the catalog\n", cmd);
    for (size_t i = 0; i < n && !atomic_load(&renc_stop_flag); i++) {
        const char *id = a->all_envs ? all[i].id : a->envs[i];
        struct renc_env env;
        char why[1024] = "", current[RENC_MAX_REF_LEN + 1] = "", src[4096];
        rc = renc_envctl_ready(cat, ks, id, &env, current, sizeof current, why, sizeof why);
        if (rc == 0) /* DATA/<id>, or ROOT/<id> in blob storage */
            rc = renc_envdata_root(src, sizeof src, a->g.data_dir, &env);
        if (rc == 0 && !env.data_root[0])
            rc = renc_envdata_create(a->g.data_dir, id);
        if (rc) {
            renc_err(cmd, "%s", why[0] ? why : renc_strerror(rc));
            if (status == RENC_EXIT_OK || renc_exit_for(rc) == RENC_EXIT_USAGE)
                status = renc_exit_for(rc);
            continue;
        }
        printf("%s: environment %s: %s %s (current version %s)\n", cmd, id,
               renc_policy_name(env.policy), env.key_ref, current);
        fflush(stdout);
        char *sources[1] = {src};
        a->sources = sources;
        a->source_count = 1;
        a->to = op == RENC_ENGINE_RUN ? env.key_ref : NULL;
        a->finished_before = a->held = a->failed_total = 0;
        a->outcome = NULL;
        a->journal_path[0] = '\0';
        a->withdrawn_ref[0] = '\0';
        a->env_cat = cat;
        a->env_id = id;
        int st = renc_bulk_exec(cmd, usage, op, a);
        a->env_cat = NULL;
        a->env_id = NULL;
        if (a->withdrawn_ref[0])
            renc_lock_withdrawn(cmd, cat, a);
        if (op == RENC_ENGINE_RUN && !a->dry_run && a->outcome) {
            if ((rc = renc_catalog_note_run(cat, id, a->outcome, (int64_t)a->failed_total,
                                            a->journal_path)))
                renc_err(cmd, "catalog: %s: %s", id, renc_strerror(rc));
            struct renc_census c;
            if (renc_catalog_get(cat, id, &env) == 0 &&
                renc_envctl_census(&a->g, &env, env.key_ref, current, &c) == 0) {
                printf("%s: environment %s is %s\n", cmd, id, renc_env_status(&env, &c));
                renc_census_cleanup(&c);
            }
        }
        if (st != RENC_EXIT_OK && (status == RENC_EXIT_OK || st == RENC_EXIT_INTERRUPTED))
            status = st;
    }
out:
    renc_free(all);
    renc_catalog_close(cat);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return status;
}

static int renc_bulk(const char *cmd, const char *usage, enum renc_engine_op op, int argc,
                     char **argv)
{
    struct renc_bulk_args a;
    memset(&a, 0, sizeof a);
    int status = renc_bulk_parse(cmd, usage, argc, argv, &a);
    if (status >= 0)
        return status;
    if (a.env_count || a.all_envs)
        return renc_bulk_envs(cmd, usage, op, &a);
    return renc_bulk_exec(cmd, usage, op, &a);
}

int renc_cmd_run(int argc, char **argv)
{
    return renc_bulk("run", renc_run_usage, RENC_ENGINE_RUN, argc, argv);
}

int renc_cmd_verify(int argc, char **argv)
{
    return renc_bulk("verify", renc_verify_usage, RENC_ENGINE_VERIFY, argc, argv);
}
