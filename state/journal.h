/* state/journal.h — a run's journal: one row per blob, behind an
 * interface (struct renc_journal_ops below) chosen by where the journal
 * lives: a path is a SQLite file in WAL mode (state/journal_sqlite.c;
 * docs/JOURNAL.md has the schema), postgresql://... a database many
 * workers share (state/journal_pg*.c).
 * docs/internals/state.md says what each operation promises.
 *
 * The journal is never ahead of durability: a blob is noted done only after
 * its new content, the rename and the directory are durable, and notes are
 * written in batches (renc_journal_flush, a few times a second).  A note
 * lost in a crash costs nothing but a header read: on resume the blob's own
 * header says whether it is under the target already.
 *
 * In-place header rewrap is the one write that needs the journal first: the
 * old and new header go into it durably before the overwrite
 * (renc_journal_header_intents), and renc_journal_recover repairs any header
 * a crash left half written.
 *
 * One run at a time (SQLite): renc_journal_open takes an exclusive flock
 * on "PATH.lock", which the kernel drops when the process dies, so a
 * crashed run never leaves it stuck; a journal shared by many workers will
 * hand out claims under leases instead (renc_journal_claim).  All
 * functions are thread-safe.
 */
#ifndef RENC_STATE_JOURNAL_H
#define RENC_STATE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/scan.h"

enum renc_jstate {
    RENC_J_PENDING = 0,
    RENC_J_DONE,      /* transformed, durably */
    RENC_J_SKIPPED,   /* already under the target */
    RENC_J_NOT_RENC,  /* not a RENC file: left alone */
    RENC_J_FAILED,    /* the last attempt failed: retried on resume */
    RENC_J_GONE,      /* no longer found by the scan */
    RENC_J_COUNT
};

/* What the recovery of one header intent found, and did (docs/JOURNAL.md).
 * Every intent ends in one of these, or stays open when its blob cannot be
 * read (renc_recover_stats.unresolved): a settled intent is recorded in the
 * journal (table header_settled) and never holds a later run back. */
enum renc_settle {
    RENC_SETTLE_REWRITTEN = 0, /* the new header on disk: made durable, blob done */
    RENC_SETTLE_AS_IT_WAS,     /* the old header on disk: the blob is done again */
    RENC_SETTLE_COMPLETED,     /* each sector old or new: new header written, blob done */
    RENC_SETTLE_GONE,          /* nothing at the blob's path any more: blob gone */
    RENC_SETTLE_REPLACED,      /* something there holds neither header: left as it is,
                                * and looked at afresh like any file the scan finds */
    RENC_SETTLE_COUNT
};

/* What identifies a run: a rerun with other parameters is another run. */
struct renc_journal_params {
    const char *mode;     /* "rewrap" or "rekey" */
    const char *target;   /* the versioned target ref */
    int keep_old;
    const char *drop;     /* the --drop refs, one per line ("" for none) */
    const char *out;      /* the canonical --out directory ("" for in place) */
    const char *sources;  /* canonical sources (or "manifest:PATH"), one per line */
    const char *shard;    /* "K/N" (run/shard.h), or "" for every blob; NULL reads as "" */
    /* The run's name in a journal file (--run NAME: a run listed into the
     * journal and worked in rounds), or ""; NULL reads as "".  A server's
     * journal names its runs by location (#run=NAME) and leaves it NULL. */
    const char *name;
};

struct renc_journal_status {
    char run_id[17];
    int has_run;
    int running;          /* another process holds the lock */
    long holder_pid;      /* its pid, when running */
    struct renc_journal_params params; /* strings owned by the journal */
    uint64_t count[RENC_J_COUNT];
    uint64_t bytes[RENC_J_COUNT];
    uint64_t header_intents;          /* open: not settled yet */
    uint64_t settled[RENC_SETTLE_COUNT]; /* intents of this run settled after a crash */
    unsigned attempts;
    double created, updated;          /* Unix times */
    double last_started, last_ended; /* the last attempt; last_ended 0 while it runs */
    uint64_t last_blobs, last_bytes; /* finished by the last attempt */
    char last_outcome[32];
    int listed;           /* the run's whole listing is in the journal (a shared run's
                           * first worker lists it; a file's run: 1 unless it is named
                           * and its listing was cut short) */
    unsigned live_workers; /* workers with a live lease or a recent heartbeat (shared runs) */
};

struct renc_journal;

/* renc_journal_open: opens (creating, 0600 in a 0700 directory, when
 * create is set) the journal at path and takes its lock.  -RENC_E_BUSY when
 * another run holds it (*holder_pid gets its pid, when known);
 * -RENC_E_INSECURE_PERMS when group or others can read it;
 * -RENC_E_BAD_JOURNAL when it is not one of ours. */
int renc_journal_open(struct renc_journal **out, const char *path, int create, long *holder_pid);

/* renc_journal_is_url: 1 when where names a journal on a server
 * (postgresql://, postgres://), 0 for a file.  A server's location with a
 * password in it is refused by open (-RENC_E_INSECURE_PERMS): locations are
 * printed and recorded, passwords go in PGPASSWORD or PGPASSFILE. */
int renc_journal_is_url(const char *where);

/* renc_journal_open_readonly: for `status` while a run may be going on. */
int renc_journal_open_readonly(struct renc_journal **out, const char *path);

void renc_journal_close(struct renc_journal *j);

/* renc_journal_status: the run's parameters, counts and times. */
int renc_journal_status(struct renc_journal *j, struct renc_journal_status *st);

/* renc_journal_unfinished: 1 when the journal holds a run with blobs
 * pending or failed, or header writes to recover, or whose listing is not
 * whole. */
int renc_journal_unfinished(const struct renc_journal_status *st);

/* renc_journal_start: starts a new run with params (forgetting any earlier
 * one) or, with resume, a new attempt of the run in the journal.  On a
 * server's journal a new run replaces the run renc_journal_status last
 * showed: when another worker has made a new one since, this one joins it
 * (workers started together make one run). */
int renc_journal_start(struct renc_journal *j, const struct renc_journal_params *p, int resume);
const char *renc_journal_run_id(const struct renc_journal *j);

/* renc_journal_register: enters each scanned blob (pending when new) and
 * gives its row id in rows[i], and in finished[i] 1 when an earlier attempt
 * finished it (done, skipped or not RENC: not to be read again), 2 when it
 * is held by an in-place header write recovery could not settle (not to be
 * touched), else 0.  Blobs of the run that the scan no longer finds become
 * gone. */
int renc_journal_register(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                          uint8_t *finished);

/* renc_journal_note: queues a blob's outcome until the next flush.  Call it
 * only once the outcome is durable.  old_ref and new_ref may be NULL. */
void renc_journal_note(struct renc_journal *j, int64_t row, enum renc_jstate st, int rc,
                       const char *old_ref, const char *new_ref);

/* renc_journal_flush: writes the queued notes in one transaction. */
int renc_journal_flush(struct renc_journal *j);

/* renc_journal_header_intents: records, durably, that each blob rows[i]
 * (at paths[i]) is about to have its header old[i] (len[i] bytes at offset
 * 0) overwritten by new[i] of the same length. */
int renc_journal_header_intents(struct renc_journal *j, size_t n, const int64_t *rows,
                                const char *const *paths, const uint8_t *const *old_hdr,
                                const uint8_t *const *new_hdr, const size_t *len);

/* renc_settle_name: the outcome's name in the journal and in JSON
 * ("rewritten", "as_it_was", "completed", "gone", "replaced"). */
const char *renc_settle_name(enum renc_settle s);

/* renc_journal_recover: settles every header intent left by an earlier
 * attempt (see enum renc_settle).  A header is written only onto a regular
 * file (opened without following a symlink) whose whole header region holds
 * each 512-byte sector as the old or the new header, never onto anything
 * else.  An intent whose blob cannot be read (a permission, an I/O error)
 * stays open, its blob failed and held.  report (may be NULL) is called for
 * each intent completed, gone, replaced or left open (rc < 0); path is the
 * blob's absolute path. */
struct renc_recover_stats {
    uint64_t found_new, found_old, repaired, gone, replaced, unresolved;
};
int renc_journal_recover(struct renc_journal *j, struct renc_recover_stats *st,
                         void (*report)(void *arg, const char *path, enum renc_settle what,
                                        int rc),
                         void *arg);

/* renc_journal_end: closes the current attempt with its outcome
 * ("finished", "failed", "interrupted"). */
int renc_journal_end(struct renc_journal *j, const char *outcome);

/* renc_journal_failures: calls fn for each failed blob, at most limit
 * (0: all), in path order. */
int renc_journal_failures(struct renc_journal *j, size_t limit,
                          void (*fn)(void *arg, const char *path, const char *error, int code,
                                     const char *ref),
                          void *arg);

/* renc_journal_default_path: STATE/journals/<name>-<hash>.db for a run
 * over the canonical sources and out directory. */
int renc_journal_default_path(const char *state_dir, const char *sources, const char *out,
                              char *path, size_t max);

/* ---- claiming work ------------------------------------------------------
 *
 * A batch of blobs to work on, taken from the journal's pending and failed
 * rows.  Today's engine takes its work list from renc_journal_register (and
 * shares it among its workers itself); claims are the interface issue 17's
 * workers on many machines will share a run through. */

struct renc_journal_item {
    int64_t row;      /* the blob's row: what renc_journal_note takes */
    uint64_t size;    /* as the last listing saw it */
    char *path;       /* absolute (a blob in a container: its URL); owned by the batch */
    char *etag;       /* the version listed (blob storage), or NULL; owned by the batch */
};

struct renc_journal_batch {
    struct renc_journal_item *items;
    size_t count;
    /* When the claim lapses unless renewed (Unix time); 0 when it lasts as
     * long as the journal is open (SQLite: the run's flock is the lease). */
    double lease_until;
};

/* renc_journal_claim: up to max blobs of the run that are pending or
 * failed, not yet claimed in this attempt and not held by an unsettled
 * header intent, in row order, into *out (count 0: none left).  Each blob
 * is claimed at most once per attempt (renc_journal_start begins afresh),
 * whatever its note says; a crash gives the claims back to the next
 * attempt, which redoes at most what was claimed and not noted.  Free with
 * renc_journal_batch_cleanup; on failure *out is left empty. */
int renc_journal_claim(struct renc_journal *j, size_t max, struct renc_journal_batch *out);

/* renc_journal_claim_upto: as renc_journal_claim, and no more blobs than
 * start within max_bytes (the first one always: a blob larger than the
 * budget is claimed alone), so that one worker does not take a whole run
 * of big blobs from the others. */
int renc_journal_claim_upto(struct renc_journal *j, size_t max, uint64_t max_bytes,
                            struct renc_journal_batch *out);

/* ---- a run listed into the journal --------------------------------------
 *
 * A journal on a server (PostgreSQL) holds runs by name that any number of
 * workers, on any machines, share: the listing goes in once, streamed in
 * parts by the first worker that takes the run's listing lock, while every
 * worker claims batches under leases it renews; a worker that dies lets
 * its lease lapse and another claims its batch again.  A file's journal
 * (SQLite) is one process's (renc_journal_shared says 0): a named run in it
 * (--run NAME) is listed and claimed through the same calls, so that no
 * process holds its whole list, with no lease (the run's flock is one) and
 * no workers to show. */

/* renc_journal_shared: 1 when many workers share the journal's runs. */
int renc_journal_shared(const struct renc_journal *j);

/* renc_journal_list_begin: *must 1 when this worker is to list the run
 * (the run's listing lock taken: no other worker lists it meanwhile); 0
 * when the run is listed already or another worker is listing it.  A
 * listing begun again (the last one was cut short) marks every blob of the
 * run unseen until a part enters it. */
int renc_journal_list_begin(struct renc_journal *j, int *must);
/* renc_journal_enlist_part: part of the listing entered (new blobs
 * pending; blobs already known keep their state), in one transaction, so
 * that workers can claim them while the rest is listed. */
int renc_journal_enlist_part(struct renc_journal *j, const struct renc_scan *part);
/* renc_journal_list_end: ok: the listing is whole (blobs of the run it no
 * longer found become gone, the run is listed); else only the lock is
 * released, and another worker lists the run again. */
int renc_journal_list_end(struct renc_journal *j, int ok);

/* renc_journal_renew: this worker's claims held for another lease, and
 * its heartbeat. */
int renc_journal_renew(struct renc_journal *j);
/* renc_journal_lease_s: how long a claim lasts unless renewed (0: as long
 * as the journal is open). */
double renc_journal_lease_s(const struct renc_journal *j);

/* One worker of a shared run, as status shows it. */
struct renc_journal_worker {
    int64_t id;
    char host[256];
    long pid;
    double started, heartbeat, ended; /* Unix times; ended 0 while it works */
    char outcome[32];                 /* "" while it works */
    uint64_t done, failed;            /* blobs it noted */
    int live;                         /* not ended, and heard from within a lease */
};

/* renc_journal_workers: fn for each worker of the run, in the order they
 * started (none for a file's journal). */
int renc_journal_workers(struct renc_journal *j,
                         void (*fn)(void *arg, const struct renc_journal_worker *w), void *arg);

/* renc_journal_batch_cleanup: frees what a claim gave; the batch is left
 * empty (cleaning an empty one does nothing). */
void renc_journal_batch_cleanup(struct renc_journal_batch *b);

/* ---- the interface a journal implements ----------------------------------
 *
 * One table per kind of journal, as curl's struct Curl_ssl is one per TLS
 * backend: renc_journal_open picks it by the location's form (a scheme
 * prefix; a plain path is SQLite) and every renc_journal_* call goes
 * through it.  What stays above the table, the same for every kind: the
 * queue of notes (renc_journal_note only queues; flush hands the batch to
 * write_outcomes), the settling of header intents on disk (the kind only
 * lists and records them), the names of states and outcomes, and the
 * default location.  Each function returns 0 or a negative error as the
 * public call it serves says; docs/internals/state.md says how SQLite does
 * each and how PostgreSQL will. */

/* One queued outcome: what renc_journal_note was given. */
struct renc_journal_outcome {
    int64_t row;
    int rc;                   /* 0, or the blob's error */
    enum renc_jstate state;
    char *old_ref, *new_ref;  /* NULL when not given */
};

/* One open header intent, as the journal holds it (borrowed for one call). */
struct renc_journal_intent {
    int64_t row;
    const char *path;         /* absolute */
    const uint8_t *old_hdr, *new_hdr;
    size_t len;
};

struct renc_journal_ops {
    const char *name;         /* "sqlite" */
    int shared;               /* 1: many workers share its runs (renc_journal_shared) */
    /* The location prefix this kind serves ("postgresql://"); NULL for the
     * one that takes every other location, a file path. */
    const char *scheme;
    /* open, open_readonly: as renc_journal_open(_readonly); the journal
     * they make starts with renc_journal_base_init (journal_internal.h). */
    int (*open)(struct renc_journal **out, const char *where, int create, long *holder_pid);
    int (*open_readonly)(struct renc_journal **out, const char *where);
    /* close: releases everything (the queue is flushed already). */
    void (*close)(struct renc_journal *j);
    /* start: a new run or a new attempt (renc_journal_start); sets the run
     * id in the journal's base and forgets this process's claims. */
    int (*start)(struct renc_journal *j, const struct renc_journal_params *p, int resume);
    /* enlist: the work list (renc_journal_register), in one transaction. */
    int (*enlist)(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                  uint8_t *finished);
    /* claim: up to max blobs, those that start within max_bytes (0: no
     * limit; the first one always). */
    int (*claim)(struct renc_journal *j, size_t max, uint64_t max_bytes,
                 struct renc_journal_batch *out);
    /* write_outcomes: n queued notes in one durable transaction, the header
     * intent of each blob done (or found changed) removed with it; on
     * failure nothing of them is written (the caller queues them again). */
    int (*write_outcomes)(struct renc_journal *j, const struct renc_journal_outcome *o,
                          size_t n);
    int (*header_intents)(struct renc_journal *j, size_t n, const int64_t *rows,
                          const char *const *paths, const uint8_t *const *old_hdr,
                          const uint8_t *const *new_hdr, const size_t *len);
    /* settle_intents: for each open intent, settle(arg, intent) looks at
     * the disk and returns an enum renc_settle or a negative error; the
     * kind records it durably in one transaction (the blob's state,
     * the settled row, the intent gone; an error leaves the intent open and
     * the blob failed), then calls settled(arg, intent, out). */
    int (*settle_intents)(struct renc_journal *j,
                          int (*settle)(void *arg, const struct renc_journal_intent *in),
                          void (*settled)(void *arg, const struct renc_journal_intent *in,
                                          int out),
                          void *arg);
    int (*status)(struct renc_journal *j, struct renc_journal_status *st);
    /* end: closes the attempt (the queue is flushed already). */
    int (*end)(struct renc_journal *j, const char *outcome);
    int (*failures)(struct renc_journal *j, size_t limit,
                    void (*fn)(void *arg, const char *path, const char *error, int code,
                               const char *ref),
                    void *arg);
    /* A run listed into the journal: the listing lock and the listing in
     * parts; a shared run's (NULL for a kind whose runs are one process's):
     * renewing leases, the workers, the lease's length. */
    int (*list_begin)(struct renc_journal *j, int *must);
    int (*enlist_part)(struct renc_journal *j, const struct renc_scan *part);
    int (*list_end)(struct renc_journal *j, int ok);
    int (*renew)(struct renc_journal *j);
    int (*workers)(struct renc_journal *j,
                   void (*fn)(void *arg, const struct renc_journal_worker *w), void *arg);
    double (*lease_s)(const struct renc_journal *j);
};

#endif
