/* reencrypt/cmd_data.h — what the environment-data commands (put, backup,
 * restore, restore-check, copy, copy-check: cmd_put.c, cmd_backup.c,
 * cmd_restore.c, cmd_copy.c) share: their options, the keys, catalog and
 * lock they hold, the staged write's messages, and the check report.
 *
 * The helpers that return "-1 or an exit" have printed why when they
 * return an exit code; the caller only passes it on.
 */
#ifndef RENC_APP_CMD_DATA_H
#define RENC_APP_CMD_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blobfile.h"
#include "state/catalog.h"
#include "reencrypt/cli.h"
#include "env/rules.h"
#include "store/scan.h"
#include "run/session.h"
#include "reencrypt/stage.h"

struct renc_data_args {
    struct renc_global g;
    const char *env, *name, *target, *from, *to;
    int replace, json;
    unsigned threads;    /* --threads: workers sealing or opening blobs (default: the cores) */
    int threads_given;
    uint64_t memory;     /* --memory: what the blobs in flight may hold */
    char **args;
    int arg_count;
};

/* What every command here holds while it works. */
struct renc_data_ctx {
    const char *cmd;
    struct renc_data_args a;
    struct renc_keyring *kr;
    struct renc_keystore *ks;
    struct renc_catalog *cat;
    struct renc_session sess; /* the written environment's lock */
};


/* A sealer whose output is the destination: its first failure to write
 * (an errno: a full disk, an I/O error) is kept, so the message can blame
 * the file being written rather than the one being read. */
struct renc_dest_sink {
    struct renc_sealer *sealer;
    int write_rc;
};

/* A growing text: the request a staged write records. */
struct renc_data_text {
    char *p;
    size_t n, cap;
    int rc;
};

/* What a restore or copy check found. */
struct renc_check_result {
    struct renc_verdict_text verdict;
    int validated, valid, rc;
    char detail[2048];  /* what validation opened, or where it failed */
    uint64_t entries, bytes, records;
    char opened_by[RENC_MAX_REF_LEN + 1];
};

/* renc_data_parse: the options of every data command.  Returns -1 to
 * continue or an exit (usage printed, or --help answered). */
int renc_data_parse(struct renc_data_ctx *c, const char *usage, int argc, char **argv);
/* renc_data_window: how many blobs a command works on at once (each holds
 * at most RENC_DATA_BLOB_BYTES of buffers), from --memory, and into
 * *threads the workers for them, from --threads: the arguments of
 * renc_workq_run (common/workq.h).  Blobs sealed under key_ref, a key held
 * by a remote provider (a key vault: each wrap is a round trip), get 16
 * workers unless --threads says otherwise, as run does.  A destination or
 * source in blob storage is written or read one blob at a time (remote
 * 1): 1, 1. */
#define RENC_DATA_BLOB_BYTES ((uint64_t)4 << 20)
unsigned renc_data_window(const struct renc_data_ctx *c, const char *key_ref, int remote,
                          unsigned *threads);

/* renc_data_held: the buffer a slot holds a blob's whole plaintext in
 * (restore, backup create), kept from one blob to the next of the same
 * slot: a fresh mapping per blob would cost its page faults and, with
 * workers running, the unmapping's cross-CPU flushes.  _ready grows it to
 * len bytes (-RENC_E_NOMEM); _free wipes (plaintext) and frees it. */
struct renc_data_held {
    uint8_t *p;
    size_t cap;
};
int renc_data_held_ready(struct renc_data_held *h, uint64_t len);
/* renc_data_held_max: the most a slot holds whole: its share of --memory,
 * and never more than RENC_DATA_HELD_MAX.  Bigger blobs stream through
 * the one reading or writing thread, as they did before the workers: held
 * whole, each byte costs one more pass through memory (a copy, out of the
 * cache), which measured slower than streaming on a busy 2-core machine,
 * while for small blobs the per-blob work (files, key wraps) the workers
 * share dominates (docs/PERFORMANCE.md). */
#define RENC_DATA_HELD_MAX ((uint64_t)1 << 20)
uint64_t renc_data_held_max(const struct renc_data_ctx *c, unsigned window);
void renc_data_held_free(struct renc_data_held *h);

/* renc_data_open: opens the keys and the catalog.  Returns -1 or an exit.
 * renc_data_close undoes it, and copes with a context never opened past
 * renc_data_open's first step. */
int renc_data_open(struct renc_data_ctx *c);
void renc_data_close(struct renc_data_ctx *c);
int renc_data_ready(struct renc_data_ctx *c, const char *id, struct renc_env *env,
                    char *current, size_t max);

/* renc_seal_to_store (cmd_put.c): seals in_fd (len bytes; a regular
 * file's) into the version txn stages, as blocks [header][records...]
 * within the engine's chunk, so a later rewrap moves only a new header
 * block.  Memory stays near one block.  The caller began txn and commits
 * or aborts it. */
struct renc_store;
struct renc_store_txn;
int renc_seal_to_store(struct renc_keystore *ks, const struct renc_seal_opts *so,
                       struct renc_store *s, struct renc_store_txn *txn, int in_fd, uint64_t len,
                       struct renc_blob_status *bs);

/* renc_store_sealer: the push-fed form of renc_seal_to_store (as
 * renc_sealer, blob/blobfile.h): new stages the header block, write
 * seals plaintext (len bytes in all, or RENC_PLAINTEXT_UNKNOWN), finish
 * the last record and stages what is left.  _sink is write as a
 * renc_sink_fn (arg: the store sealer). */
struct renc_store_sealer;
int renc_store_sealer_new(struct renc_store_sealer **out, struct renc_keystore *ks,
                          const struct renc_seal_opts *so, struct renc_store *s,
                          struct renc_store_txn *txn, uint64_t len, struct renc_blob_status *bs);
int renc_store_sealer_write(struct renc_store_sealer *ss, const uint8_t *buf, size_t len);
int renc_store_sealer_sink(void *arg, const uint8_t *buf, size_t len);
int renc_store_sealer_finish(struct renc_store_sealer *ss);
void renc_store_sealer_free(struct renc_store_sealer *ss); /* NULL: nothing */
int renc_data_lock(struct renc_data_ctx *c, const char *id);
int renc_data_hold_keys(struct renc_data_ctx *c, const char *id, char *list, size_t max);
int renc_data_scan_blobs(struct renc_data_ctx *c, const char *id, struct renc_scan *scan);
/* qsort's order of scan items by rel, bytewise (the archive's order). */
int renc_data_item_rel_cmp(const void *x, const void *y);
int renc_data_settle(struct renc_data_ctx *c, const char *id, const char *op,
                     const char *request, int *same);
int renc_data_stage_begin(struct renc_data_ctx *c, struct renc_stage *stage,
                          const char *id, const char *request);
void renc_data_dest_err(struct renc_data_ctx *c, const struct renc_stage *stage,
                        const char *rel, int rc);
void renc_data_commit_err(struct renc_data_ctx *c, const struct renc_stage *stage, int rc);

/* renc_data_dest_note: keeps rc as d's first write failure when it is an
 * errno; returns rc.  renc_data_dest_write is a renc_blob_open_to sink
 * writing into d's sealer. */
int renc_data_dest_note(struct renc_dest_sink *d, int rc);
int renc_data_dest_write(void *arg, const uint8_t *buf, size_t len);

/* renc_data_text_add appends to t; its first allocation failure stays in
 * t->rc and makes later calls do nothing.  The caller frees t->p. */
void renc_data_text_add(struct renc_data_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void renc_data_text_file(struct renc_data_text *t, const char *path);

/* renc_data_check_print: prints a check's report (text or JSON) about
 * what; returns the check's exit code.  renc_data_check_validation records
 * what opening the blobs found (rc, bs) in r. */
int renc_data_check_print(const char *cmd, const char *what, int json,
                          const struct renc_check_result *r);
/* An environment's blobs as copy reads them (data_remote.c): DATA/<id>/blobs
 * (scan items are paths; store NULL) or ROOT/<id>/blobs in blob storage,
 * listed in name order.  renc_data_src_read opens item i as a descriptor
 * read in order (a stream for blob storage); renc_data_src_done closes it
 * and returns rc, or the reading's own failure when that is why the bytes
 * ended.  The _open functions return -1 to go on, or an exit. */
struct renc_store_stream;
struct renc_store_creds;
struct renc_data_src {
    struct renc_store *store;
    struct renc_store_creds *creds;
    struct renc_scan scan;
    struct renc_store_stream *stream;
};
int renc_data_src_open(struct renc_data_ctx *c, const struct renc_env *env,
                       struct renc_data_src *src);
int renc_data_src_read(struct renc_data_src *src, size_t i, int *fd);
int renc_data_src_done(struct renc_data_src *src, int fd, int rc);
/* renc_data_src_header: item i's header, *have 1 when it parsed (else h
 * is left empty, and opening the blob explains): a local file's from fd
 * (as renc_data_src_read opened it, then rewound), so the header and the
 * records are one file's.  Returns 0, or the rewind's failure. */
int renc_data_src_header(struct renc_data_src *src, size_t i, int fd, struct renc_header *h,
                         int *have);
void renc_data_src_close(struct renc_data_src *src);

/* New blobs of an environment in blob storage (ROOT/<id>/blobs): each
 * begun, sealed through _write (a renc_sink_fn) and ended in turn, all
 * staged before any is committed; renc_data_dst_commit makes them visible
 * one by one (says which failed); renc_data_dst_close drops what was not
 * committed.  st is the current blob's sealing status, write_rc the
 * first failure sealing or staging it (the destination's, not the
 * source's). */
struct renc_data_dst {
    struct renc_store *store;
    struct renc_store_creds *creds;
    struct renc_store_txn *txns;
    size_t n, cap, done;
    struct renc_store_sealer *ss;
    struct renc_blob_status st;
    int write_rc;
};
int renc_data_dst_open(struct renc_data_ctx *c, const struct renc_env *env,
                       struct renc_data_dst *dst);
int renc_data_dst_begin(struct renc_data_dst *dst, struct renc_keystore *ks,
                        const struct renc_seal_opts *so, const char *name, uint64_t len);
int renc_data_dst_write(void *arg, const uint8_t *buf, size_t len);
int renc_data_dst_end(struct renc_data_dst *dst);
int renc_data_dst_commit(struct renc_data_ctx *c, struct renc_data_dst *dst);
const char *renc_data_dst_where(const struct renc_data_dst *dst);
void renc_data_dst_close(struct renc_data_dst *dst);

/* renc_data_remote_clear: every blob and backup of env, whose data is in
 * blob storage, deleted (counted into *files, *bytes; a blob gone already
 * is not counted).  Returns -1 when all are gone, or an exit (said which
 * one failed; the same call again deletes the rest). */
int renc_data_remote_clear(struct renc_data_ctx *c, const struct renc_env *env,
                           uint64_t *files, uint64_t *bytes);

void renc_data_check_validation(struct renc_check_result *r, int rc,
                                const struct renc_blob_status *bs, const char *subject,
                                const char *held);

#endif
