/* state/journal_internal.h — what every kind of journal shares: the base
 * each one's object starts with, the queue of notes in it, and the names
 * the journal's rows use.  Only state/ includes it. */
#ifndef RENC_STATE_JOURNAL_INTERNAL_H
#define RENC_STATE_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "state/journal.h"

/* The first member of every kind's journal object (struct
 * renc_journal_sqlite starts with one), so a struct renc_journal * is the
 * kind's own pointer. */
struct renc_journal {
    const struct renc_journal_ops *ops;
    int readonly;
    char run_id[17];
    /* The queue of notes: workers never wait on a commit.  flush_lock
     * keeps flushes in order (a batch taken is written before the next is
     * taken); notes_lock guards the queue itself. */
    pthread_mutex_t flush_lock;
    pthread_mutex_t notes_lock;
    struct renc_journal_outcome *notes;
    size_t nnotes, cap;
};

/* renc_journal_base_init: the base of a journal of kind ops; cleaned up by
 * renc_journal_base_cleanup, which the kind's close calls (it copes with a
 * base that was only zeroed). */
void renc_journal_base_init(struct renc_journal *j, const struct renc_journal_ops *ops,
                            int readonly);
void renc_journal_base_cleanup(struct renc_journal *j);

/* The states' names in the journal's rows ("pending", "done", ...); parse
 * gives RENC_J_PENDING for a name it does not know. */
const char *renc_journal_state_name(enum renc_jstate s);
enum renc_jstate renc_journal_state_parse(const char *s);

/* renc_settle_parse: the outcome named s (renc_settle_name), or
 * RENC_SETTLE_COUNT for none. */
enum renc_settle renc_settle_parse(const char *s);

/* renc_journal_settled_state: the blob's state once its intent is settled
 * with out (an enum renc_settle, or a negative error: failed). */
enum renc_jstate renc_journal_settled_state(int out);

/* renc_journal_abs_path: path made absolute against cwd and lexically
 * tidy: the journal's key for a blob, the same whatever directory a rerun
 * is started from. */
int renc_journal_abs_path(const char *cwd, const char *path, char *out, size_t max);

/* The run's parameters as a kind read them for status: strings the kind
 * owns until its next read or its close. */
struct renc_journal_owned {
    char *mode, *target, *drop, *out, *sources, *shard, *name;
};

/* renc_journal_owned_set: frees what o held, then holds copies of v (mode,
 * target, drop, out, sources, shard, name; NULL reads as "") and points p's
 * strings at them, with keep_old.  0 or -RENC_E_NOMEM. */
int renc_journal_owned_set(struct renc_journal_owned *o, struct renc_journal_params *p,
                           const char *const v[7], int keep_old);
void renc_journal_owned_free(struct renc_journal_owned *o);

/* The kinds of journal. */
extern const struct renc_journal_ops renc_journal_sqlite_ops;
extern const struct renc_journal_ops renc_journal_pg_ops;       /* postgresql:// */
extern const struct renc_journal_ops renc_journal_pg_short_ops; /* postgres:// */

#endif
