/* state/journal_settle.c — renc_journal_recover: settling the in-place
 * header writes a crashed attempt left (journal.h, enum renc_settle).  The
 * files are looked at here, the same for every kind of journal; the kind
 * only lists the open intents and records each outcome (settle_intents). */
#include "state/journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"

/* ---- recovery of in-place header writes ------------------------------- */

enum renc_hdr_found { RENC_HDR_OLD, RENC_HDR_NEW, RENC_HDR_TORN, RENC_HDR_NEITHER };

/* What the whole header region on disk holds. */
static enum renc_hdr_found renc_classify(const uint8_t *disk, const uint8_t *old_h,
                                         const uint8_t *new_h, size_t len)
{
    if (memcmp(disk, new_h, len) == 0)
        return RENC_HDR_NEW;
    if (memcmp(disk, old_h, len) == 0)
        return RENC_HDR_OLD;
    /* A write cut short by a crash leaves each sector old or new. */
    for (size_t off = 0; off < len; off += 512) {
        size_t n = len - off < 512 ? len - off : 512;
        if (memcmp(disk + off, new_h + off, n) != 0 && memcmp(disk + off, old_h + off, n) != 0)
            return RENC_HDR_NEITHER;
    }
    return RENC_HDR_TORN;
}

/* Reads the first len bytes of the file at path into disk (*got of them)
 * and leaves it open in *fd_out, or says why there is nothing to read:
 * 1 gone (no such file), 2 not a regular file (a symlink, a folder, a
 * device: never opened for writing, never followed), or a negative error
 * (the file is there but cannot be read). */
static int renc_settle_read(const char *path, uint8_t *disk, size_t len, size_t *got,
                            int *fd_out)
{
    /* O_NONBLOCK: a FIFO put in the blob's place must not hang the run. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 1 : errno == ELOOP ? 2 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 2;
    }
    int rc = renc_file_pread_full(fd, disk, len, 0, got);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* Writes the new header over a torn one.  The file is opened again for
 * writing: it must still be the inode just read (nothing renamed over the
 * blob in between), and still torn. */
static int renc_settle_complete(const char *path, int rfd, const uint8_t *old_h,
                                const uint8_t *new_h, uint8_t *disk, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat a, b;
    size_t got = 0;
    int rc = fstat(rfd, &a) != 0 || fstat(fd, &b) != 0 ? -errno : 0;
    if (rc == 0 && (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(b.st_mode)))
        rc = 1; /* replaced in between */
    if (rc == 0)
        rc = renc_file_pread_full(rfd, disk, len, 0, &got);
    if (rc == 0 && (got < len || renc_classify(disk, old_h, new_h, len) != RENC_HDR_TORN))
        rc = 1;
    if (rc == 0) /* at offset 0: the file was just opened */
        rc = renc_file_write_full(fd, new_h, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Settles one intent: returns its outcome (enum renc_settle), or a negative
 * error when the blob cannot be read or its repair not made durable (the
 * intent then stays open). */
static int renc_settle_one(const char *path, const uint8_t *old_h, const uint8_t *new_h,
                           size_t len)
{
    uint8_t *disk = renc_malloc(len);
    RENC_RETURN_IF(!disk, -RENC_E_NOMEM);
    size_t got = 0;
    int fd = -1;
    int rc = renc_settle_read(path, disk, len, &got, &fd);
    if (rc == 1 || rc == 2) {
        renc_free(disk);
        return rc == 1 ? RENC_SETTLE_GONE : RENC_SETTLE_REPLACED;
    }
    if (rc < 0) {
        renc_free(disk);
        return rc;
    }
    /* Shorter than the header: an overwrite at offset 0 never shrinks a file. */
    enum renc_hdr_found found =
        got < len ? RENC_HDR_NEITHER : renc_classify(disk, old_h, new_h, len);
    int out = RENC_SETTLE_REPLACED;
    if (found == RENC_HDR_OLD) {
        out = RENC_SETTLE_AS_IT_WAS;
    } else if (found == RENC_HDR_NEW || found == RENC_HDR_TORN) {
        /* The new header was verified before it was journaled: complete it,
         * and make it durable (a header read back as new may still be only
         * in the page cache of a run that was killed). */
        int w = found == RENC_HDR_TORN
                    ? renc_settle_complete(path, fd, old_h, new_h, disk, len)
                    : 0;
        if (w == 1) {
            out = RENC_SETTLE_REPLACED; /* changed under us: left as it is */
        } else {
            if (w == 0)
                w = renc_fault_check("fsync");
            if (w == 0 && fdatasync(fd) != 0)
                w = -errno;
            out = w ? w
                    : found == RENC_HDR_TORN ? RENC_SETTLE_COMPLETED : RENC_SETTLE_REWRITTEN;
        }
    }
    renc_free(disk);
    close(fd); /* read-only: what was written is durable by the fdatasync above */
    return out;
}

/* The blob's state once its intent is settled: done when its new header is
 * durable, gone with its file, otherwise to be looked at again. */
enum renc_jstate renc_journal_settled_state(int out)
{
    switch (out) {
    case RENC_SETTLE_REWRITTEN:
    case RENC_SETTLE_COMPLETED: return RENC_J_DONE;
    case RENC_SETTLE_GONE: return RENC_J_GONE;
    case RENC_SETTLE_AS_IT_WAS:
    case RENC_SETTLE_REPLACED: return RENC_J_PENDING;
    default: return RENC_J_FAILED;
    }
}

static void renc_recover_count(struct renc_recover_stats *s, int out)
{
    switch (out) {
    case RENC_SETTLE_REWRITTEN: s->found_new++; break;
    case RENC_SETTLE_AS_IT_WAS: s->found_old++; break;
    case RENC_SETTLE_COMPLETED: s->repaired++; break;
    case RENC_SETTLE_GONE: s->gone++; break;
    case RENC_SETTLE_REPLACED: s->replaced++; break;
    default: s->unresolved++; break;
    }
}

/* What renc_journal_recover passes through the kind's settle_intents. */
struct renc_recover_ctx {
    struct renc_recover_stats *stats;
    void (*report)(void *arg, const char *path, enum renc_settle what, int rc);
    void *arg;
};

static int renc_recover_settle(void *arg, const struct renc_journal_intent *in)
{
    struct renc_recover_ctx *ctx = arg;
    int out = renc_settle_one(in->path, in->old_hdr, in->new_hdr, in->len);
    renc_recover_count(ctx->stats, out);
    return out;
}

static void renc_recover_settled(void *arg, const struct renc_journal_intent *in, int out)
{
    struct renc_recover_ctx *ctx = arg;
    /* A header found old or new is routine after a crash; any other
     * outcome is worth a line, once: the run that settles it says so. */
    if (ctx->report && out != RENC_SETTLE_REWRITTEN && out != RENC_SETTLE_AS_IT_WAS)
        ctx->report(ctx->arg, in->path, out < 0 ? RENC_SETTLE_COUNT : (enum renc_settle)out,
                    out < 0 ? out : 0);
}

int renc_journal_recover(struct renc_journal *j, struct renc_recover_stats *stats,
                         void (*report)(void *arg, const char *path, enum renc_settle what,
                                        int rc),
                         void *arg)
{
    memset(stats, 0, sizeof *stats);
    struct renc_recover_ctx ctx = {stats, report, arg};
    return j->ops->settle_intents(j, renc_recover_settle, renc_recover_settled, &ctx);
}
