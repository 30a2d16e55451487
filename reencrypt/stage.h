/* reencrypt/stage.h — a set of new files that appear together: `put`,
 * `restore` and `copy` write every blob to a temporary beside its final
 * path (".NAME.renc-tmp.<pid>", mode 0600) and make it durable; only when
 * all are written does renc_stage_commit rename them into place, and make
 * their folders durable.  Temporaries are made durable in batches of up to
 * RENC_STAGE_BATCH, their barriers in flight together through io_uring
 * (one file at a time, each barrier costs a full device flush).  A failure before that removes every temporary
 * and leaves the environment as it was; each final path is wholly old or
 * wholly new at every instant.  A crash leaves temporaries named by a dead
 * process id, which the next `run` over the environment sweeps.
 */
#ifndef RENC_APP_STAGE_H
#define RENC_APP_STAGE_H

#include <stddef.h>

#define RENC_STAGE_BATCH 64

struct renc_ring;

struct renc_stage {
    char **tmp, **final;
    size_t count, cap;
    int replace;  /* 0: a final path that exists is refused with -EEXIST */
    int pending[RENC_STAGE_BATCH]; /* written, closed by renc_stage_close, not yet durable */
    size_t npending;
    struct renc_ring *ring;        /* made at the first batch; NULL without io_uring */
    int no_ring;
};

void renc_stage_init(struct renc_stage *s, int replace);

/* renc_stage_open: the temporary of final_path (its folders are made, 0700),
 * open for writing in *fd.  -EEXIST when final_path exists and the stage
 * does not replace, or when final_path is staged already. */
int renc_stage_open(struct renc_stage *s, const char *final_path, int *fd);

/* renc_stage_close: the last opened temporary is written: fd joins the
 * batch to be made durable (and closed) together; a full batch is made
 * durable now.  On failure every pending fd is closed. */
int renc_stage_close(struct renc_stage *s, int fd);

/* renc_stage_commit: makes the last batch durable, then renames every
 * temporary into place (the commit point of each file) and makes their
 * folders durable. */
int renc_stage_commit(struct renc_stage *s);

/* renc_stage_cleanup: removes the temporaries not committed; frees. */
void renc_stage_cleanup(struct renc_stage *s);

#endif
