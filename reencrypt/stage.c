/* reencrypt/stage.c — see stage.h. */
#include "reencrypt/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "io/ring.h"
#include "reencrypt/cli.h"

void renc_stage_init(struct renc_stage *s, int replace)
{
    memset(s, 0, sizeof *s);
    s->replace = replace;
}

static int renc_stage_tmp_path(char *out, size_t max, const char *final)
{
    const char *slash = strrchr(final, '/');
    int dir_len = slash ? (int)(slash - final + 1) : 0;
    int n = snprintf(out, max, "%.*s.%s" RENC_TMP_MARKER "%ld", dir_len, final,
                     final + dir_len, (long)getpid());
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

int renc_stage_open(struct renc_stage *s, const char *final_path, int *fd)
{
    char tmp[4096], dir[4096];
    struct stat st;
    for (size_t i = 0; i < s->count; i++)
        RENC_RETURN_IF(strcmp(s->final[i], final_path) == 0, -EEXIST);
    int rc = renc_stage_tmp_path(tmp, sizeof tmp, final_path);
    if (rc)
        return rc;
    const char *slash = strrchr(final_path, '/');
    if (slash && slash != final_path) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - final_path), final_path);
        if ((rc = renc_mkdirs(dir)))
            return rc;
    }
    if (lstat(final_path, &st) == 0) {
        RENC_RETURN_IF(!s->replace || !S_ISREG(st.st_mode), -EEXIST);
    } else if (errno != ENOENT) {
        return -errno;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **t = renc_realloc(s->tmp, cap * sizeof *t);
        if (t)
            s->tmp = t;
        char **f = t ? renc_realloc(s->final, cap * sizeof *f) : NULL;
        if (f)
            s->final = f;
        RENC_RETURN_IF(!t || !f, -RENC_E_NOMEM);
        s->cap = cap;
    }
    char *t = renc_strdup(tmp), *f = renc_strdup(final_path);
    if (!t || !f) {
        renc_free(t);
        renc_free(f);
        return -RENC_E_NOMEM;
    }
    /* A temporary of this pid can only be a dead process's leftover: the
     * caller holds the environment's lock. */
    unlink(tmp);
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        rc = -errno;
        renc_free(t);
        renc_free(f);
        return rc;
    }
    s->tmp[s->count] = t;
    s->final[s->count++] = f;
    *fd = out;
    return 0;
}

struct renc_stage_sync {
    struct renc_ring_op op;
    int result;
};

static void renc_stage_synced(struct renc_ring_op *op, int result)
{
    ((struct renc_stage_sync *)op)->result = result;
}

/* One barrier point for the pending temporaries: their fdatasyncs go to the
 * kernel together (through io_uring; one by one where it is missing). */
static int renc_stage_sync_pending(struct renc_stage *s)
{
    struct renc_stage_sync ops[RENC_STAGE_BATCH];
    int rc = s->npending ? renc_fault_check("fsync") : 0;
    if (rc == 0 && s->npending && !s->ring && !s->no_ring)
        s->no_ring = renc_ring_new(&s->ring, RENC_STAGE_BATCH) != 0;
    if (rc == 0 && s->ring) {
        for (size_t i = 0; i < s->npending; i++) {
            memset(&ops[i], 0, sizeof ops[i]);
            ops[i].op.kind = RENC_RING_FSYNC;
            ops[i].op.fd = s->pending[i];
            ops[i].op.flags = RENC_RING_DATASYNC;
            ops[i].op.done = renc_stage_synced;
            renc_ring_submit(s->ring, &ops[i].op);
        }
        rc = renc_ring_drain(s->ring);
        for (size_t i = 0; rc == 0 && i < s->npending; i++)
            rc = ops[i].result < 0 ? ops[i].result : 0;
    } else if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < s->npending; i++)
            rc = fdatasync(s->pending[i]) == 0 ? 0 : -errno;
    }
    for (size_t i = 0; i < s->npending; i++) {
        if (close(s->pending[i]) != 0 && rc == 0)
            rc = -errno;
    }
    s->npending = 0;
    return rc;
}

int renc_stage_close(struct renc_stage *s, int fd)
{
    s->pending[s->npending++] = fd;
    return s->npending == RENC_STAGE_BATCH ? renc_stage_sync_pending(s) : 0;
}

int renc_stage_commit(struct renc_stage *s)
{
    int rc = renc_stage_sync_pending(s);
    if (rc)
        return rc;
    size_t i = 0;
    for (; i < s->count; i++) {
        /* Commit point of one file: the final path holds the new blob. */
        if (rename(s->tmp[i], s->final[i]) != 0) {
            rc = -errno;
            break;
        }
        renc_free(s->tmp[i]);
        s->tmp[i] = NULL;
    }
    for (size_t k = 0; k < i; k++) {
        /* One barrier per folder: files staged together share folders. */
        const char *a = s->final[k], *sa = strrchr(a, '/');
        const char *b = k ? s->final[k - 1] : NULL, *sb = b ? strrchr(b, '/') : NULL;
        if (sa && sb && sa - a == sb - b && memcmp(a, b, (size_t)(sa - a)) == 0)
            continue;
        int r = renc_file_fsync_parent(s->final[k]);
        if (r && rc == 0)
            rc = r;
    }
    return rc;
}

void renc_stage_cleanup(struct renc_stage *s)
{
    for (size_t i = 0; i < s->npending; i++)
        close(s->pending[i]);
    renc_ring_free(s->ring);
    for (size_t i = 0; i < s->count; i++) {
        if (s->tmp[i])
            unlink(s->tmp[i]);
        renc_free(s->tmp[i]);
        renc_free(s->final[i]);
    }
    renc_free(s->tmp);
    renc_free(s->final);
    memset(s, 0, sizeof *s);
}
