/* reencrypt/stage.h — a set of new files that appear together in an
 * environment's data: `put`, `restore`, `copy` and `backup create`.
 *
 * The stage is recorded in the catalog (renc_catalog_stage_begin) with a
 * fresh tag before its first temporary is made; every file is written to
 * a temporary beside its final path, ".NAME.renc-tmp.TAG" (io/tmpname.h,
 * mode 0600), and made durable — in batches of up to RENC_STAGE_BATCH whose
 * barriers go to the kernel together through io_uring (each barrier costs a
 * full device flush).  renc_stage_commit then records every final path and
 * the history rows in one transaction (the commit point of the whole set),
 * renames the temporaries into place and makes their folders durable, and
 * ends the stage with its history rows in one more transaction.
 *
 * A failure before the commit point removes every temporary and the record:
 * the environment is as it was.  A crash before it leaves temporaries whose
 * tag the catalog holds: renc_stage_settle removes them.  A crash after it
 * is rolled forward by renc_stage_settle: every temporary was durable
 * before the first rename, so renaming the rest finishes the operation,
 * whose history row is then written once.  Each final path is wholly old or
 * wholly new at every instant.
 *
 * Destinations are never written through a symbolic link: every folder of
 * a final path is resolved below DATA/<env> without following one (openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or component by component with
 * O_NOFOLLOW where openat2 is missing), missing folders are made (0700)
 * with mkdirat on the resolved parent, and the temporary is created and
 * renamed relative to that folder.  A path that meets a link fails with
 * -ELOOP, the link's path in renc_stage.bad.
 *
 * The caller holds the environment's lock (the flock on DATA/<env> that
 * `run --env` takes too) from before renc_stage_settle to after
 * renc_stage_cleanup: a stage found while holding it belongs to a process
 * that is gone.
 */
#ifndef RENC_APP_STAGE_H
#define RENC_APP_STAGE_H

#include <stddef.h>
#include <stdio.h>

#include "io/tmpname.h"
#include "state/catalog.h"

#define RENC_STAGE_BATCH 64

struct renc_ring;

struct renc_stage {
    struct renc_catalog *cat;
    char env[RENC_ENV_ID_MAX + 1];
    char op[32];
    char tag[RENC_TMP_TAG_MAX + 1];
    char root[4096];               /* DATA/<env>, for messages */
    int root_fd;                   /* DATA/<env>, opened without following a link */
    char **rel;                    /* final paths, relative to DATA/<env> */
    size_t count, cap;
    int replace;                   /* 0: a final path that exists is refused with -EEXIST */
    int recorded;                  /* 1: in the catalog, writing; 2: renaming; 3: ended */
    int dir_fd;                    /* the folder last resolved (files share folders) */
    char dir_rel[4096];
    int pending[RENC_STAGE_BATCH]; /* written, not yet durable */
    size_t npending;
    struct renc_ring *ring;        /* made at the first batch; NULL without io_uring */
    int no_ring;
    char tmp[8704];                /* the temporary last opened (messages name it) */
    char bad[8192];                /* the path a failure is about: a link, a file */
};

void renc_stage_init(struct renc_stage *s, int replace);

/* renc_stage_begin: opens DATA/<env> and records the stage (op, request:
 * what the command was asked, so that a rerun can be told) under a new tag.
 * Nothing is written to the data. */
int renc_stage_begin(struct renc_stage *s, struct renc_catalog *cat, const char *data_dir,
                     const char *env, const char *op, const char *request);

/* renc_stage_open: the temporary of rel (a final path relative to
 * DATA/<env>, e.g. "blobs/a/b"), open for writing in *fd; missing folders
 * are made.  -EEXIST when the final path exists and the stage does not
 * replace, or when it is staged already; -ELOOP when a folder of it, or
 * the final path, is a symbolic link (s->bad names it); -ENOTDIR when a
 * folder of it is not one (s->bad names it). */
int renc_stage_open(struct renc_stage *s, const char *rel, int *fd);

/* renc_stage_close: the last opened temporary is written: fd joins the
 * batch to be made durable (and closed) together; a full batch is made
 * durable now.  On failure every pending fd is closed. */
int renc_stage_close(struct renc_stage *s, int fd);

/* renc_stage_commit: makes the last batch durable, records the final paths
 * and the history rows (notes; env NULL: none), renames every temporary
 * into place and makes their folders durable, then writes the history.
 * A failure before the record leaves the stage to renc_stage_cleanup (it
 * removes everything); after it, the next command on the environment
 * finishes the work (this call says so on stderr). */
int renc_stage_commit(struct renc_stage *s, const struct renc_stage_note *notes, size_t nnotes);

/* renc_stage_cleanup: a stage not committed: removes its temporaries and
 * its record; closes and frees. */
void renc_stage_cleanup(struct renc_stage *s);

/* renc_stage_settle: the stages of env a gone process left: those cut
 * short before their commit point lose their temporaries; the others are
 * completed (renamed, their history written).  Says on say (stdout, or
 * stderr under --json), as cmd, what it did.  *same (may be NULL) is set to 1 when a completed stage was
 * op with this request (not ""): the command asked for is already done. */
int renc_stage_settle(const char *cmd, FILE *say, struct renc_catalog *cat, const char *data_dir,
                      const char *env, const char *op, const char *request, int *same);

/* renc_stage_forget_env: forgets every stage of env (env reset: its files,
 * temporaries included, are deleted). */
int renc_stage_forget_env(struct renc_catalog *cat, const char *env);

/* renc_dest_dir: opens the folder rel_dir below root_fd for *at() calls,
 * never following a symbolic link, making missing folders (0700, their
 * entries made durable) with create.  -ELOOP when a component is a link,
 * -ENOTDIR when it is not a folder; bad (max bytes) then names it,
 * relative to root_fd. */
int renc_dest_dir(int root_fd, const char *rel_dir, int create, int *out, char *bad, size_t max);

#endif
