/* reencrypt/cmd_run.h — what the run and verify commands (cmd_run.c) share
 * with their path rules (run_paths.c) and their progress display and
 * reports (run_report.c) and its journal (run_journal.c): the parsed
 * options and the progress context.
 */
#ifndef RENC_APP_CMD_RUN_H
#define RENC_APP_CMD_RUN_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/aead.h"
#include "keys/keystore.h"
#include "state/catalog.h"
#include "reencrypt/cli.h"
#include "run/engine.h"
#include "state/journal.h"
#include "store/scan.h"
#include "run/session.h"
#include "run/shard.h"
#include "blob/transform.h"

/* QP(buf, path): path quoted for a message (renc_path_quote) into the
 * char array buf. */
#define QP(buf, path) renc_path_quote((buf), sizeof(buf), (path))

enum renc_progress_mode { RENC_PROGRESS_AUTO, RENC_PROGRESS_BAR, RENC_PROGRESS_JSON, RENC_PROGRESS_NONE };

struct renc_bulk_args {
    struct renc_global g;
    const char *to, *out, *manifest, *report;
    const char *drop[16];
    size_t drop_count;
    enum renc_run_mode mode;
    int keep_old, dry_run, no_verify, fail_fast, direct, identity, keep_cache;
    enum renc_barrier barrier; /* --barrier (0: the engine's default) */
    enum renc_write_mode write_mode; /* --write-mode (0: the engine's default) */
    const char *journal;
    const char *run_name;     /* --run NAME: the run in a journal on a server */
    char journal_loc[4200];   /* the server journal's location with #run=NAME */
    int no_journal, resume, restart, copy;
    uint64_t finished_before; /* blobs finished by earlier attempts of the run */
    uint64_t held;            /* blobs held by a header write recovery could not settle */
    const char *out_dir;      /* the canonical --out (NULL: in place) */
    unsigned threads, share_dek;
    int threads_given;
    uint64_t memory;
    enum renc_progress_mode progress;
    enum renc_aead_backend backend;
    char **sources;
    int source_count;
    const char *run_only; /* the first option given that only run takes */
    const char *metrics_file; /* --metrics-file PATH */
    struct renc_shard shard; /* --shard K/N (count 0: every blob) */
    uint64_t listed;         /* blobs the listing found, every shard's */
    /* Environments (--env, --all-envs): each is one run over DATA/<id>
     * to its policy key. */
    const char *envs[64];
    size_t env_count;
    int all_envs;
    /* What one run came to, for the catalog. */
    const char *outcome;      /* "finished", "failed", "interrupted" or NULL */
    char withdrawn_ref[RENC_MAX_REF_LEN + 1]; /* a key found revoked or disabled at its vault */
    int withdrawn_rc;
    uint64_t failed_total;
    char journal_path[4096];
    /* An environment's run: its staged writes left by a killed put,
     * restore or copy are settled once its lock is held. */
    struct renc_catalog *env_cat;
    const char *env_id;
};

/* --metrics-file: run_metrics.c's state (renc_metrics_tick). */
struct renc_metrics {
    const char *path;      /* NULL: no file */
    const char *cmd;
    const char *shard;     /* "K/N" or "" */
    uint64_t failed_extra; /* failures outside the engine: listing errors, held blobs */
    double start;          /* Unix time the engine started (set at the first write) */
    double last;           /* the engine's elapsed time at the last write */
    int written, said;
};

struct renc_progress_ctx {
    enum renc_progress_mode mode;
    const char *cmd;
    double last_json;
    int drew;
    struct renc_journal *journal; /* flushed at every tick */
    int journal_rc;               /* a flush failed: the run is stopped */
    atomic_int *stop;             /* set when a flush fails */
    struct renc_metrics *metrics; /* --metrics-file, or NULL */
};

/* One run (or verify) while it works (cmd_run.c, run_shared.c): what
 * renc_bulk_exec acquires, in the order renc_bulk_exec_cleanup releases
 * it. */
struct renc_bulk_run {
    const char *cmd;
    enum renc_engine_op op;
    struct renc_bulk_args *a;
    int writes, journaled;
    int shared;              /* one worker of a run shared through a server's journal */
    int in_rounds;           /* listed into the journal and claimed in rounds (run_shared.c):
                              * a shared run, or a named one in a journal file */
    size_t hold_max;         /* the most blobs a run lists into memory (0: no limit) */
    int held_over;           /* its listing had more: it goes in rounds instead */
    char out_real[PATH_MAX]; /* the canonical --out (a container: without its SAS), or "" */
    struct renc_store_creds creds; /* blob storage's credentials */
    struct renc_store *out_store;  /* an --out container, opened here with creds */
    struct renc_session_want want;
    struct renc_session sess;
    struct renc_keyring *kr;
    struct renc_keystore *ks;
    struct renc_transformer *t;
    struct renc_store *store; /* where the blobs are (store/store.h) */
    struct renc_scan scan, work; /* work: the blobs left to do, a subset of scan */
    int64_t *rows;
    uint8_t *finished;
    struct renc_engine *e;
};

/* renc_bulk_engine_opts: the engine's options for r (its journal, rows,
 * stores, stop flag). */
void renc_bulk_engine_opts(const struct renc_bulk_run *r, struct renc_engine_opts *eo);
/* renc_bulk_catch_signals: SIGINT and SIGTERM stop the run between blobs. */
void renc_bulk_catch_signals(void);

/* ---- run_shared.c: a run listed into its journal: one worker of a run
 * shared through a journal on a server, or a journal file's run that is
 * named or too long to hold */

/* renc_run_shared: joins, lists (once per run), claims and runs rounds
 * until the run is over; r's keys, transformer, store and journal are
 * open.  Returns the exit. */
int renc_run_shared(struct renc_bulk_run *r);

/* ---- run_paths.c: where a run writes, and what crashed attempts left,
 * as the run says them (the rules are the store's: store/mirror.h) */

/* renc_mirror_out_inside: 1 when --out lies inside a source (the run would
 * read its own output), 0 when not (out_real gets --out canonical), or a
 * negative error; a missing --out is created once it is known to be
 * outside every source. */
int renc_mirror_out_inside(const struct renc_bulk_args *a, char *out_real, size_t max);
/* renc_mirror_check_paths, renc_mirror_check_not_source: the --out mirror
 * rules; each returns -1 to continue or an exit code (said why). */
int renc_mirror_check_paths(const char *cmd, const char *out, struct renc_scan *scan);
int renc_mirror_check_not_source(const char *cmd, const struct renc_bulk_args *a,
                                 const char *out, const struct renc_scan *scan);
/* renc_run_sweep_temps: the store's temp sweep over the temporaries the
 * listing met, and what it did said. */
struct renc_store;
void renc_run_sweep_temps(const char *cmd, struct renc_store *store, const struct renc_scan *scan,
                          const char *const *tags, size_t ntags);
/* renc_store_warn_retained: a warning when the store keeps previous
 * versions or soft-deleted blobs (data still under old keys). */
void renc_store_warn_retained(const char *cmd, struct renc_store *store);

/* ---- run_journal.c: the run's journal and the work list it leaves */

/* renc_run_journal_open, renc_run_work_list: each returns -1 to continue
 * or an exit code (said why). */
int renc_run_journal_open(const char *cmd, struct renc_bulk_args *a, struct renc_session *sess,
                          const struct renc_session_want *want);
/* renc_journal_say_password: when rc is open's refusal of a server journal
 * whose location holds a password, says so (without the location) and
 * returns 1; else 0. */
int renc_journal_say_password(const char *cmd, const char *where, int rc);
int renc_run_work_list(const char *cmd, struct renc_bulk_args *a, struct renc_session *sess,
                       const struct renc_session_want *want, const char *target,
                       const struct renc_scan *scan, struct renc_scan *work, int64_t **rows,
                       uint8_t **finished);

/* ---- run_metrics.c: --metrics-file */

/* renc_metrics_tick: writes m's file (atomically) when it has not been
 * written for a few seconds, or at once when final (the run is over). */
void renc_metrics_tick(struct renc_metrics *m, const struct renc_engine_progress *p, int final);

/* ---- run_report.c: progress, recovery lines, the summary and --report */

/* renc_run_progress_cb: the engine's progress callback; arg is a struct
 * renc_progress_ctx.  It flushes the journal too. */
void renc_run_progress_cb(const struct renc_engine_progress *p, void *arg);
/* renc_run_recover_report: the journal's recovery callback; arg is cmd. */
void renc_run_recover_report(void *arg, const char *path, enum renc_settle what, int rc);
/* renc_run_worker_json: a shared run's worker as status and --report show
 * it. */
json_t *renc_run_worker_json(const struct renc_journal_worker *w);
/* renc_run_write_report: root as JSON into path (atomically, 0600). */
int renc_run_write_report(const char *path, json_t *root);
/* renc_bulk_finish: the failures, the summary and the --report of one run
 * or verify over scan; returns its exit code. */
int renc_bulk_finish(const char *cmd, struct renc_bulk_args *a, struct renc_engine *e,
                     const struct renc_scan *scan, struct renc_keystore *ks, const char *target,
                     struct renc_progress_ctx *pc, const struct renc_session *sess);

#endif
