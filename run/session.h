/* run/session.h — what makes a `run` resumable and exclusive: the
 * locks on its sources and output, and its journal.
 *
 *   renc_session_lock      flock each source root (and --out): a second run
 *                          over the same source is refused while the first
 *                          lives; the kernel drops the locks of a dead one
 *   renc_session_open      the journal (default STATE/journals/...), its
 *                          lock, recovery of half-written headers, and the
 *                          decision: a new run, or the next attempt of the
 *                          unfinished one (refused when they conflict)
 */
#ifndef RENC_RUN_SESSION_H
#define RENC_RUN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "state/journal.h"

struct renc_session {
    int *lock_fds;               /* flocks on the trees it works on (see renc_session_lock) */
    size_t nlocks, locks_cap;
    char sources[16384];         /* canonical sources, one per line, sorted, each
                                  * escaped (renc_path_quote) */
    char out[4096];              /* canonical --out, or "" */
    char shard[24];              /* "K/N" (run/shard.h), or "": every blob */
    int shared;                  /* one worker of a run shared through a server's journal */
    char run_name[128];          /* --run NAME with a journal file, or "" */
    struct renc_journal *journal;
    char journal_path[4096];
    int resumed;                 /* 1: the next attempt of an unfinished run */
    char target[512];            /* the versioned target the run uses (resumed) */
    char prev_run_id[17];        /* --restart: the unfinished run it forgets */
    struct renc_recover_stats recovered;
    unsigned attempt;            /* this attempt's number */
};

/* What the operator asked for. */
struct renc_session_want {
    const char *mode;            /* "rewrap" or "rekey" */
    const char *target_given;    /* --to as given */
    int keep_old;
    const char *const *drop;
    size_t drop_count;
    int restart;                 /* --restart: forget an unfinished run */
};

void renc_session_init(struct renc_session *s);
void renc_session_cleanup(struct renc_session *s);

/* renc_session_lock: canonicalises the sources (or the manifest, which
 * then stands for its blobs) and out (may be NULL), and locks the trees the
 * run works on so that no other run works on an overlapping one: an
 * exclusive flock on each tree's root (a manifest's: the deepest folder
 * holding all its blobs) and a shared one on each folder above it, the way
 * a database locks a row with intent locks on its table.  A run over T then
 * excludes runs over T, anything inside T and anything holding T, and two
 * runs over T/a and T/b go together.  The kernel drops the locks of a dead
 * run.  -RENC_E_BUSY names in *busy (max bytes) the folder or file another
 * run holds.  A shard's run (s->shard set first, renc_session_set_shard)
 * locks its trees' roots shared, not exclusive: the shards of one tree work
 * on disjoint blobs and go together, while a run over the whole tree (or
 * inside it, or holding it) is still refused beside them. */
int renc_session_lock(struct renc_session *s, const char *const *sources, size_t n,
                      const char *manifest, const char *out, char *busy, size_t max);

/* renc_session_set_shard: the session is shard ("K/N") of its run: its
 * locks (renc_session_lock), its default journal and its run parameters.
 * NULL or "": the whole run. */
void renc_session_set_shard(struct renc_session *s, const char *shard);

/* renc_session_set_name: the session is the run NAME in a journal file: a
 * run listed into the journal and worked in rounds (reencrypt/run_shared.c).
 * Like a server's run it is joined, finished or not, when its options are
 * the same; another name is another run (a file holds one: it starts anew
 * when the one there is finished, else it is refused).  -RENC_E_INVALID
 * when the name is empty or longer than 127 bytes. */
int renc_session_set_name(struct renc_session *s, const char *name);

/* renc_session_set_shared: the session is one worker of a run many share
 * through a journal on a server: its trees are locked shared (as a
 * shard's), and renc_session_open joins the run of the journal's name. */
void renc_session_set_shared(struct renc_session *s);

/* renc_session_open: opens the journal at path (NULL: the default under
 * state_dir; a shard's is its own, ...-shard-K-of-N.db), settles its header intents (report is called for each one
 * whose outcome is worth a line: renc_journal_recover), and
 * decides whether this is a new run or the next attempt of the journal's
 * unfinished one.  On a conflict returns -RENC_E_INVALID with the reason in
 * why.  -RENC_E_BUSY when another run holds the journal (*holder its pid). */
int renc_session_open(struct renc_session *s, const char *state_dir, const char *path,
                      const struct renc_session_want *want, long *holder, char *why,
                      size_t why_max,
                      void (*report)(void *arg, const char *path, enum renc_settle what,
                                     int rc),
                      void *arg);

/* renc_session_start: records the run (new) or the attempt (resumed);
 * target is the versioned target ref. */
int renc_session_start(struct renc_session *s, const struct renc_session_want *want,
                       const char *target);

#endif
