/* reencrypt/stage.h — a set of new files that appear together: `put`,
 * `restore` and `copy` write every blob to a temporary beside its final
 * path (".NAME.renc-tmp.<pid>", mode 0600) and make it durable; only when
 * all are written does renc_stage_commit rename them into place, and make
 * their folders durable.  A failure before that removes every temporary
 * and leaves the environment as it was; each final path is wholly old or
 * wholly new at every instant.  A crash leaves temporaries named by a dead
 * process id, which the next `run` over the environment sweeps.
 */
#ifndef RENC_APP_STAGE_H
#define RENC_APP_STAGE_H

#include <stddef.h>

struct renc_stage {
    char **tmp, **final;
    size_t count, cap;
    int replace;  /* 0: a final path that exists is refused with -EEXIST */
};

void renc_stage_init(struct renc_stage *s, int replace);

/* renc_stage_open: the temporary of final_path (its folders are made, 0700),
 * open for writing in *fd.  -EEXIST when final_path exists and the stage
 * does not replace, or when final_path is staged already. */
int renc_stage_open(struct renc_stage *s, const char *final_path, int *fd);

/* renc_stage_close: makes the last opened temporary durable and closes
 * fd (closed either way). */
int renc_stage_close(struct renc_stage *s, int fd);

/* renc_stage_commit: renames every temporary into place (the commit point
 * of each file) and makes their folders durable. */
int renc_stage_commit(struct renc_stage *s);

/* renc_stage_cleanup: removes the temporaries not committed; frees. */
void renc_stage_cleanup(struct renc_stage *s);

#endif
