/* reencrypt/engine.c — see engine.h for the shape of the pipeline. */
#include "reencrypt/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/header.h"
#include "crypto/record.h"
#include "io/file.h"
#include "io/pool.h"
#include "io/replace.h"
#include "io/ring.h"
#include "reencrypt/blobfile.h"

#define RENC_BATCH_MAX 32
#define RENC_BATCH_BYTES (16u << 20)
#define RENC_RING_DEPTH 256
#define RENC_CHUNK_INFLIGHT 8

struct renc_chunk;

struct renc_engine {
    struct renc_engine_opts opts;
    struct renc_keystore *ks;
    struct renc_transformer *t;
    const struct renc_scan *scan;
    struct renc_item_result *results;
    struct renc_pool *pool;
    size_t small_max;      /* blobs up to this size go through batches */
    size_t chunk_bytes;    /* the largest chunk: one largest record (sizes --memory) */

    _Atomic size_t next_item;
    _Atomic int stopping;  /* fail-fast or a signal: claim nothing new */
    _Atomic int engine_rc; /* a failure of the engine itself */
    _Atomic uint64_t done, skipped, not_renc, failed, finished, bytes_finished, in_place;
    _Atomic uint64_t bytes_partial; /* of big blobs in flight: chunks through their crypto */
    _Atomic unsigned attrs_lost;    /* RENC_ATTR_* that some new file could not keep */
    char tag[RENC_TMP_TAG_MAX + 1]; /* the temporaries' tag */
    struct timespec start;

    /* Chunks of big blobs waiting for a worker's crypto. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct renc_chunk *queue_head, *queue_tail;
    unsigned coordinators; /* workers currently feeding big blobs */
    unsigned workers_running;
};

/* ---- results ---------------------------------------------------------- */

int renc_engine_key_wide(int rc)
{
    return rc == -RENC_E_KEY_REVOKED || rc == -RENC_E_KEY_DELETED || rc == -RENC_E_VAULT_AUTH ||
           rc == -RENC_E_VAULT_DENIED || rc == -RENC_E_VAULT_NETWORK ||
           rc == -RENC_E_VAULT_THROTTLED;
}

int renc_engine_run_wide(int rc)
{
    /* The destination filesystem is full, read-only or failing: every blob
     * after this one would fail the same way. */
    return renc_engine_key_wide(rc) || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS;
}

/* Records item idx's outcome (durable by now, for a written blob) and
 * notes it in the journal.  plan (may be NULL) names the keys involved. */
static void renc_finish_plan(struct renc_engine *e, size_t idx, enum renc_item_state st, int rc,
                             const char *ref, const struct renc_blob_plan *plan)
{
    struct renc_item_result *r = &e->results[idx];
    r->state = (uint8_t)st;
    r->rc = rc;
    if (ref && ref[0])
        r->ref = renc_strdup(ref);
    enum renc_jstate js = RENC_J_FAILED;
    switch (st) {
    case RENC_ITEM_DONE: atomic_fetch_add(&e->done, 1); js = RENC_J_DONE; break;
    case RENC_ITEM_SKIPPED: atomic_fetch_add(&e->skipped, 1); js = RENC_J_SKIPPED; break;
    case RENC_ITEM_NOT_RENC: atomic_fetch_add(&e->not_renc, 1); js = RENC_J_NOT_RENC; break;
    default:
        atomic_fetch_add(&e->failed, 1);
        /* A key whose access is withdrawn, or a vault that cannot be reached
         * even after retries, fails every blob that follows: stop now, and
         * leave the rest wholly old for the resume. */
        if (e->opts.fail_fast || renc_engine_run_wide(rc))
            atomic_store(&e->stopping, 1);
        break;
    }
    if (e->opts.journal && e->opts.op == RENC_ENGINE_RUN && !e->opts.dry_run) {
        const char *old_ref = ref, *new_ref = NULL;
        if (plan && plan->old.dek && plan->old.slot >= 0 &&
            plan->old.slot < (int)plan->old_h.slot_count)
            old_ref = plan->old_h.slots[plan->old.slot].ref;
        if (js == RENC_J_DONE)
            new_ref = renc_transformer_target(e->t);
        renc_journal_note(e->opts.journal, e->opts.rows[idx], js, rc, old_ref, new_ref);
    }
    atomic_fetch_add(&e->finished, 1);
    atomic_fetch_add(&e->bytes_finished, e->scan->items[idx].size);
}

static void renc_finish(struct renc_engine *e, size_t idx, enum renc_item_state st, int rc,
                        const char *ref)
{
    renc_finish_plan(e, idx, st, rc, ref, NULL);
}

static int renc_should_stop(struct renc_engine *e)
{
    return atomic_load(&e->stopping) || (e->opts.stop && atomic_load(e->opts.stop));
}

/* The final path of item idx (the original, or its mirror under --out) and
 * the parent directories created for it. */
static int renc_final_path(struct renc_engine *e, size_t idx, char *out, size_t max)
{
    const struct renc_scan_item *it = &e->scan->items[idx];
    if (!e->opts.out_dir) {
        int n = snprintf(out, max, "%s", it->path);
        return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
    }
    int n = snprintf(out, max, "%s/%s", e->opts.out_dir, it->rel);
    if (n < 0 || (size_t)n >= max)
        return -ENAMETOOLONG;
    /* The mirror's folders are made or found, never followed: a symbolic
     * link among them would send the blob outside the mirror. */
    for (char *p = out + strlen(e->opts.out_dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int rc = mkdir(out, 0755) == 0 || errno == EEXIST ? 0 : -errno;
        if (rc == 0 && lstat(out, &st) != 0)
            rc = -errno;
        else if (rc == 0 && !S_ISDIR(st.st_mode))
            rc = -RENC_E_NOT_REGULAR;
        *p = '/';
        if (rc)
            return rc;
    }
    return 0;
}

/* The temporary beside a final path (io/tmpname.h): tagged with the
 * journal's run id (the same in every attempt, recorded before any
 * temporary is made), else a random tag of this engine.  With clean_tmp one
 * left by a crashed attempt is removed first. */
static int renc_tmp_path(struct renc_engine *e, const char *final, char *out, size_t max)
{
    int rc = renc_tmpname_make(out, max, final, e->tag);
    if (rc)
        return rc;
    if (e->opts.clean_tmp && unlink(out) != 0 && errno != ENOENT)
        return -errno;
    if (e->opts.stale_tag) {
        char stale[4200];
        if (renc_tmpname_make(stale, sizeof stale, final, e->opts.stale_tag) == 0 &&
            unlink(stale) != 0 && errno != ENOENT)
            return -errno;
    }
    return 0;
}

/* ---- ring helpers ----------------------------------------------------- */

struct renc_sync_op {
    struct renc_ring_op op;
    int result;
    int finished;
};

static void renc_sync_done(struct renc_ring_op *op, int result)
{
    struct renc_sync_op *s = (struct renc_sync_op *)op;
    s->result = result;
    s->finished = 1;
}

/* Runs one op through the ring and waits for it (other ops in flight keep
 * completing meanwhile). */
static int renc_ring_run(struct renc_ring *ring, struct renc_sync_op *s)
{
    s->op.done = renc_sync_done;
    s->finished = 0;
    renc_ring_submit(ring, &s->op);
    while (!s->finished) {
        int rc = renc_ring_wait(ring, 1);
        if (rc < 0)
            return rc;
    }
    return s->result;
}

/* A batch item's ring op: result stored, counted down. */
struct renc_batch_op {
    struct renc_ring_op op;
    int *result; /* the item's error, set on failure */
    int *value;  /* the op's non-negative result (a descriptor, a byte count) */
};

static void renc_batch_done(struct renc_ring_op *op, int result)
{
    struct renc_batch_op *b = (struct renc_batch_op *)op;
    if (result < 0)
        *b->result = result;
    else
        *b->value = result;
}

/* ---- small blobs, in batches ------------------------------------------ */

struct renc_small {
    size_t idx;
    uint8_t *buf;
    size_t buf_len;
    size_t len;
    int fd;                  /* the blob as read: kept open until the batch ends */
    int ofd;                 /* the temporary (or, in place, the blob) being written */
    struct stat st;          /* the blob as read (renc_same_file identity) */
    int rc;
    int value;               /* the last op's result */
    int write;               /* 1 when it is to be written */
    int copy_only;           /* --out: already under the target, mirrored as it is */
    int in_place;            /* rewrap: only the header is rewritten, in place */
    uint8_t *old_hdr;        /* in place: the header it replaces (for the journal) */
    struct renc_blob_plan plan;
    char final[4096];
    char tmp[4200];
    struct renc_batch_op ops[2];
};

static void renc_small_fail(struct renc_engine *e, struct renc_small *s, int rc, const char *ref)
{
    if (s->rc == 0)
        s->rc = rc;
    renc_finish(e, s->idx, RENC_ITEM_FAILED, s->rc, ref);
    s->write = 0;
}

/* Which items of a batch a step is for. */
enum renc_step_for { RENC_STEP_ALL, RENC_STEP_WRITES };

/* Submits one op per live item and waits for all. */
static int renc_batch_step(struct renc_ring *ring, struct renc_small *items, size_t n,
                           void (*prep)(struct renc_small *, struct renc_batch_op *, void *),
                           void *arg, enum renc_step_for which)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (s->rc || (which != RENC_STEP_ALL && !s->write))
            continue;
        memset(&s->ops[0], 0, sizeof s->ops[0]);
        s->ops[0].result = &s->rc;
        s->ops[0].value = &s->value;
        s->ops[0].op.done = renc_batch_done;
        prep(s, &s->ops[0], arg);
        renc_ring_submit(ring, &s->ops[0].op);
    }
    return renc_ring_drain(ring);
}

static void renc_prep_open_read(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    const struct renc_scan *scan = arg;
    b->op.kind = RENC_RING_OPENAT;
    b->op.fd = AT_FDCWD;
    b->op.path = scan->items[s->idx].path;
    b->op.open_flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
}

static void renc_prep_read(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_READ;
    b->op.fd = s->fd;
    b->op.buf = s->buf;
    b->op.len = (size_t)((const struct renc_scan *)arg)->items[s->idx].size + 1;
    b->op.offset = 0;
}

static void renc_prep_open_tmp(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    const struct renc_scan *scan = arg;
    b->op.kind = RENC_RING_OPENAT;
    b->op.fd = AT_FDCWD;
    b->op.path = s->in_place ? s->final : s->tmp;
    b->op.open_flags = s->in_place ? O_WRONLY | O_CLOEXEC | O_NOFOLLOW
                                   : O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    b->op.mode = scan->items[s->idx].mode & 07777;
}

static void renc_prep_write(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_WRITE;
    b->op.fd = s->ofd;
    b->op.buf = s->buf;
    b->op.len = s->len;
    b->op.offset = 0;
}

/* A full fsync: the owner, mode, extended attributes and mtime given to the
 * new file are metadata fdatasync may leave behind. */
static void renc_prep_fsync(struct renc_small *s, struct renc_batch_op *b, void *arg)
{
    b->op.kind = RENC_RING_FSYNC;
    b->op.fd = s->ofd;
    b->op.flags = 0;
}

/* In-place header rewrap: a rewrap in place whose new header has the old
 * one's length, with a journal to hold both across the overwrite. */
static int renc_in_place_ok(const struct renc_engine *e, const struct renc_blob_plan *p)
{
    return e->opts.header_in_place && e->opts.journal && !e->opts.out_dir && !e->opts.dry_run &&
           !p->new_dek && p->new_hdr_len == p->old_h.header_len;
}

/* After a failed in-place header write: puts the old header back through
 * the descriptor that was written (never by path: the name may be another
 * file by now), so the blob is wholly old again (if this fails too, the
 * journal's intent is left for the next attempt's recovery). */
static void renc_restore_header(int fd, const uint8_t *old_hdr, size_t len)
{
    if (pwrite(fd, old_hdr, len, 0) == (ssize_t)len)
        (void)fdatasync(fd);
}

/* A blob is to be written: in place (not --out), one with other hard links
 * is left alone — a new file renamed over this name would leave the other
 * names on the old version, a header written in place would rewrite them
 * too, and they may lie outside the run's sources. */
static void renc_small_mark_write(struct renc_engine *e, struct renc_small *s)
{
    if (!e->opts.out_dir && !e->opts.identity && s->st.st_nlink > 1)
        renc_small_fail(e, s, -RENC_E_HARDLINKED, NULL);
    else
        s->write = 1;
}

/* Passes a blob's records through the plan's resealer, in memory, and puts
 * the new header before them: in place when only the header changes and
 * fits (renc_in_place_ok), else a whole new blob for a temporary.  Nothing
 * is written yet: a failure here leaves the blob wholly old. */
static void renc_small_reseal(struct renc_engine *e, struct renc_small *s)
{
    struct renc_blob_plan *p = &s->plan;
    int rc;
    size_t old_hl = p->old_h.header_len;
    struct renc_resealer r;
    if ((rc = renc_resealer_init(&r, p, e->opts.backend)) == 0) {
        rc = renc_transform_records(&r, p, s->buf + old_hl, s->len - old_hl, 0,
                                    renc_header_seg_count(&p->old_h), 1, NULL);
        renc_resealer_cleanup(&r);
    }
    if (rc) {
        renc_small_fail(e, s, rc, NULL);
        return;
    }
    if (e->opts.dry_run) {
        renc_finish(e, s->idx, RENC_ITEM_DONE, 0, NULL);
        return;
    }
    if (renc_in_place_ok(e, p)) {
        /* Only the header changes: it is rewritten where it is. */
        s->old_hdr = renc_malloc(old_hl);
        if (!s->old_hdr || (rc = renc_final_path(e, s->idx, s->final, sizeof s->final))) {
            renc_small_fail(e, s, s->old_hdr ? rc : -RENC_E_NOMEM, NULL);
            return;
        }
        memcpy(s->old_hdr, s->buf, old_hl);
        memcpy(s->buf, p->new_hdr, old_hl);
        s->len = old_hl;
        s->in_place = 1;
        renc_small_mark_write(e, s);
        return;
    }
    /* The new blob: the new header, then the records unchanged in length. */
    if (p->new_hdr_len != old_hl) {
        size_t new_len = s->len - old_hl + p->new_hdr_len;
        if (new_len > s->buf_len) {
            uint8_t *grown = renc_malloc(new_len);
            if (!grown) {
                renc_small_fail(e, s, -RENC_E_NOMEM, NULL);
                return;
            }
            memcpy(grown + p->new_hdr_len, s->buf + old_hl, s->len - old_hl);
            renc_pool_release(e->pool, s->buf, s->buf_len);
            s->buf = grown;
            s->buf_len = 0; /* not from the pool */
        } else {
            memmove(s->buf + p->new_hdr_len, s->buf + old_hl, s->len - old_hl);
        }
        s->len = new_len;
    }
    memcpy(s->buf, p->new_hdr, p->new_hdr_len);
    if ((rc = renc_final_path(e, s->idx, s->final, sizeof s->final)) ||
        (rc = renc_tmp_path(e, s->final, s->tmp, sizeof s->tmp))) {
        renc_small_fail(e, s, rc, NULL);
        return;
    }
    renc_small_mark_write(e, s);
}

/* Transforms (or verifies) one read blob in memory.  Sets s->write when the
 * result is to be written; finishes the item otherwise. */
static void renc_small_transform(struct renc_engine *e, struct renc_small *s)
{
    const struct renc_scan_item *it = &e->scan->items[s->idx];
    if (s->len < 4 || memcmp(s->buf, "RENC", 4) != 0) {
        renc_finish(e, s->idx, RENC_ITEM_NOT_RENC, 0, NULL);
        return;
    }
    if (s->len != (size_t)s->st.st_size) {
        renc_small_fail(e, s, -RENC_E_CHANGED, NULL); /* written to while it was read */
        return;
    }
    (void)it;
    if (e->opts.identity) {
        /* The bare file-work ceiling: every step of a run but the crypto. */
        int rc = renc_final_path(e, s->idx, s->final, sizeof s->final);
        if (rc == 0)
            rc = renc_tmp_path(e, s->final, s->tmp, sizeof s->tmp);
        if (rc)
            renc_small_fail(e, s, rc, NULL);
        else
            renc_small_mark_write(e, s);
        return;
    }
    if (e->opts.op == RENC_ENGINE_VERIFY) {
        struct renc_blob_status st;
        int rc = renc_blob_verify_mem(e->ks, s->buf, s->len, &st);
        if (rc)
            renc_small_fail(e, s, rc, st.ref);
        else
            renc_finish(e, s->idx, RENC_ITEM_DONE, 0, NULL);
        return;
    }
    struct renc_blob_plan *p = &s->plan;
    int rc = renc_transform_plan(e->t, p, s->buf, s->len);
    if (rc) {
        renc_small_fail(e, s, rc, p->failed_ref);
        return;
    }
    if (p->verdict == RENC_VERDICT_SKIP && (!e->opts.out_dir || e->opts.dry_run)) {
        renc_finish_plan(e, s->idx, RENC_ITEM_SKIPPED, 0, NULL, p);
        return;
    }
    if (p->verdict == RENC_VERDICT_SKIP) {
        /* --out: the mirror is complete, so a blob already under the target
         * is copied into it as it is (and counted as skipped). */
        if ((rc = renc_final_path(e, s->idx, s->final, sizeof s->final)) ||
            (rc = renc_tmp_path(e, s->final, s->tmp, sizeof s->tmp))) {
            renc_small_fail(e, s, rc, NULL);
            return;
        }
        s->copy_only = 1;
        renc_small_mark_write(e, s);
        return;
    }
    renc_small_reseal(e, s);
}

/* Makes the directories of the batch's renamed files durable, once each. */
static int renc_sync_dirs(struct renc_small *items, size_t n)
{
    char done[RENC_BATCH_MAX][4096];
    size_t ndone = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].write || items[i].rc || items[i].in_place)
            continue;
        char dir[4096];
        const char *slash = strrchr(items[i].final, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - items[i].final) : 1,
                 slash ? items[i].final : ".");
        if (dir[0] == '\0')
            strcpy(dir, "/");
        int seen = 0;
        for (size_t k = 0; k < ndone && !seen; k++)
            seen = strcmp(done[k], dir) == 0;
        if (seen)
            continue;
        strcpy(done[ndone++], dir);
        int r = renc_fault_check("fsync");
        if (r == 0) {
            int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            r = fd < 0 ? -errno : fsync(fd) == 0 ? 0 : -errno;
            if (fd >= 0)
                close(fd);
        }
        if (r && rc == 0)
            rc = r;
    }
    return rc;
}

static void renc_batch_release(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].fd >= 0)
            close(items[i].fd); /* read-only: closing cannot lose data */
        if (items[i].ofd >= 0)
            close(items[i].ofd);
        if (items[i].buf_len)
            renc_pool_release(e->pool, items[i].buf, items[i].buf_len);
        else if (items[i].buf) {
            renc_secmem_wipe(items[i].buf, items[i].len);
            renc_free(items[i].buf);
        }
        renc_blob_plan_cleanup(&items[i].plan);
        renc_free(items[i].old_hdr);
    }
}

/* Journals the batch's in-place header intents in one durable commit; on
 * failure those blobs fail, untouched. */
static void renc_batch_intents(struct renc_engine *e, struct renc_small *items, size_t n)
{
    int64_t rows[RENC_BATCH_MAX];
    const char *paths[RENC_BATCH_MAX];
    const uint8_t *olds[RENC_BATCH_MAX], *news[RENC_BATCH_MAX];
    size_t lens[RENC_BATCH_MAX], k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].write || !items[i].in_place)
            continue;
        rows[k] = e->opts.rows[items[i].idx];
        paths[k] = items[i].final;
        olds[k] = items[i].old_hdr;
        news[k] = items[i].buf;
        lens[k] = items[i].len;
        k++;
    }
    if (k == 0)
        return;
    int rc = renc_journal_header_intents(e->opts.journal, k, rows, paths, olds, news, lens);
    if (rc == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (items[i].write && items[i].in_place)
            renc_small_fail(e, &items[i], rc, NULL);
}

/* Notes what a new file could not keep of the blob's attributes. */
static void renc_note_attrs(struct renc_engine *e, unsigned lost)
{
    if (lost)
        atomic_fetch_or(&e->attrs_lost, lost);
}

/* Reads the batch: open, identity, read, with the whole batch in flight.
 * The descriptors stay open until the batch ends: the identity taken here is
 * what each commit checks it replaces. */
static void renc_batch_read(struct renc_engine *e, struct renc_ring *ring,
                            struct renc_small *items, size_t n)
{
    renc_batch_step(ring, items, n, renc_prep_open_read, (void *)e->scan, RENC_STEP_ALL);
    for (size_t i = 0; i < n; i++) {
        items[i].fd = items[i].rc ? -1 : items[i].value;
        if (items[i].fd >= 0 && fstat(items[i].fd, &items[i].st) != 0)
            items[i].rc = -errno;
    }
    renc_batch_step(ring, items, n, renc_prep_read, (void *)e->scan, RENC_STEP_ALL);
    for (size_t i = 0; i < n; i++)
        if (items[i].rc == 0)
            items[i].len = (size_t)items[i].value;
}

/* Opens what each write goes to: the temporary, or in place the blob itself
 * (which must still be the file that was read). */
static void renc_batch_open_out(struct renc_engine *e, struct renc_ring *ring,
                                struct renc_small *items, size_t n)
{
    renc_batch_step(ring, items, n, renc_prep_open_tmp, (void *)e->scan, RENC_STEP_WRITES);
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write)
            continue;
        if (s->rc) {
            renc_small_fail(e, s, s->rc, NULL);
            continue;
        }
        s->ofd = s->value;
        struct stat now;
        if (s->in_place && (fstat(s->ofd, &now) != 0 || !renc_same_file(&s->st, &now))) {
            /* Replaced or written since it was read: its header is not
             * ours to write (the journal drops the intent). */
            close(s->ofd);
            s->ofd = -1;
            renc_small_fail(e, s, -RENC_E_CHANGED, NULL);
        }
    }
}

/* After the data is written and before it is made durable: the new file
 * gets the blob's owner, mode, extended attributes and mtime; a header
 * written in place keeps the blob's mtime. */
static void renc_batch_attrs(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write || s->rc)
            continue;
        unsigned lost = 0;
        s->rc = s->in_place ? renc_keep_mtime(s->ofd, &s->st)
                            : renc_copy_attrs(s->fd, &s->st, s->ofd, &lost);
        renc_note_attrs(e, lost);
    }
}

/* Closes what was written; a failed write undoes itself. */
static void renc_batch_close_out(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write)
            continue;
        if (s->rc && s->in_place)
            renc_restore_header(s->ofd, s->old_hdr, s->len);
        if (close(s->ofd) != 0 && s->rc == 0)
            s->rc = -errno; /* in place: the journal's intent settles what is there */
        s->ofd = -1;
        if (s->rc && s->in_place) {
            renc_small_fail(e, s, s->rc, NULL);
        } else if (s->rc) {
            unlink(s->tmp);
            renc_small_fail(e, s, s->rc, NULL);
        }
    }
}

/* Replaces item idx's final file with the durable temporary tmp, if the
 * blob is still the one that was read (st): in place an exchange checked on
 * both sides; under --out the source checked unchanged, then the mirror's
 * file renamed.  tmp is gone afterwards either way. */
static int renc_commit_checked(struct renc_engine *e, size_t idx, const struct stat *st,
                               const char *tmp, const char *final)
{
    if (!e->opts.out_dir)
        return renc_replace_checked(AT_FDCWD, tmp, final, st);
    int rc = renc_unchanged_at(AT_FDCWD, e->scan->items[idx].path, st);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Commit point: each blob still the one that was read is replaced by its
 * new version (an exchange checked on both sides; under --out, the source
 * is checked and the mirror's file renamed).  A header written in place is
 * committed once durable. */
static void renc_batch_commit(struct renc_engine *e, struct renc_small *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct renc_small *s = &items[i];
        if (!s->write || s->rc || s->in_place)
            continue;
        int rc = renc_commit_checked(e, s->idx, &s->st, s->tmp, s->final);
        if (rc)
            renc_small_fail(e, s, rc, NULL);
    }
}

static void renc_run_batch(struct renc_engine *e, struct renc_ring *ring,
                           struct renc_small *items, size_t n)
{
    renc_batch_read(e, ring, items, n);
    for (size_t i = 0; i < n; i++) {
        /* Stopping (fail-fast, a run-wide failure, a signal): the rest of
         * the batch is left as it is, untouched and not finished, for the
         * next attempt. */
        if (renc_should_stop(e))
            break;
        if (items[i].rc) {
            renc_small_fail(e, &items[i], items[i].rc, NULL);
            continue;
        }
        renc_small_transform(e, &items[i]);
    }
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= items[i].write;
    if (!any)
        return;

    /* In-place headers: the old and new header of each go durably into the
     * journal, for all of the batch at once, before any is overwritten. */
    renc_batch_intents(e, items, n);

    /* Write: temporaries opened, written, made durable and closed with the
     * whole batch in flight.  Recovery: roll back (remove temporaries). */
    renc_batch_open_out(e, ring, items, n);
    renc_batch_step(ring, items, n, renc_prep_write, NULL, RENC_STEP_WRITES);
    renc_batch_attrs(e, items, n);
    renc_batch_step(ring, items, n, renc_prep_fsync, NULL, RENC_STEP_WRITES);
    renc_batch_close_out(e, items, n);
    renc_batch_commit(e, items, n);
    /* One durability barrier per directory for the whole batch. */
    int rc = renc_sync_dirs(items, n);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].write)
            continue;
        if (items[i].in_place) {
            atomic_fetch_add(&e->in_place, 1);
            renc_finish_plan(e, items[i].idx, RENC_ITEM_DONE, 0, NULL, &items[i].plan);
        } else if (rc) {
            renc_small_fail(e, &items[i], rc, NULL); /* renamed, durability unknown */
        } else {
            renc_finish_plan(e, items[i].idx,
                             items[i].copy_only ? RENC_ITEM_SKIPPED : RENC_ITEM_DONE, 0, NULL,
                             &items[i].plan);
        }
    }
}

/* ---- big blobs, in chunks --------------------------------------------- */

/* --direct: a block of the output being assembled from the edges of two
 * chunks (or the header and a chunk) before its one O_DIRECT write. */
struct renc_blk {
    struct renc_ring_op op;
    struct renc_big *big;
    uint64_t index;
    size_t filled;
    uint8_t *buf;                 /* RENC_DIRECT_ALIGN bytes, aligned */
};

#define RENC_DIRECT_ALIGN 4096u

struct renc_big {
    struct renc_engine *e;
    struct renc_blob_plan plan;
    uint64_t count;               /* records, or 0 when unknown */
    pthread_mutex_t lock;
    struct renc_chunk *done;      /* chunks whose crypto finished */
    int out_fd;
    int write_rc;
    unsigned inflight;
    int direct_in_fd;             /* --direct: the source opened O_DIRECT, or -1 */
    int direct_out;               /* --direct: out_fd is O_DIRECT */
    uint64_t out_size;
    uint64_t credited;            /* bytes counted in e->bytes_partial */
    struct renc_blk **blks;       /* blocks waiting for their other part */
    size_t nblks, blks_cap;
    int read_rc;                  /* a failed read-ahead */
    /* The blob being run (renc_run_big). */
    size_t idx;
    int in_fd;                    /* the blob as read: its identity, kept open to the commit */
    struct stat st;
    uint64_t size;
    uint8_t *hdr;                 /* its header as read */
    size_t hdr_len;
    char final[4096];
    char tmp[4200];
};

struct renc_chunk {
    struct renc_big *big;
    uint8_t *buf;
    size_t buf_len, len;
    size_t data_off;              /* where the records start in buf */
    uint64_t in_off, first_index;
    int final;
    int rc;
    struct renc_chunk *next;
    struct renc_ring_op wop;
};

/* Crypto of one chunk, by any worker. */
static void renc_chunk_work(struct renc_chunk *c)
{
    struct renc_big *b = c->big;
    struct renc_resealer r;
    int rc = b->e->opts.op == RENC_ENGINE_VERIFY
                 ? renc_resealer_init_verify(&r, &b->plan, b->e->opts.backend)
                 : renc_resealer_init(&r, &b->plan, b->e->opts.backend);
    if (rc == 0) {
        rc = renc_transform_records(&r, &b->plan, c->buf + c->data_off, c->len, c->first_index,
                                    b->count, c->final, NULL);
        renc_resealer_cleanup(&r);
    }
    c->rc = rc;
    pthread_mutex_lock(&b->lock);
    c->next = b->done;
    b->done = c;
    pthread_mutex_unlock(&b->lock);
}

/* Takes one queued chunk and does its crypto; 0 when none was queued. */
static int renc_help_one(struct renc_engine *e)
{
    pthread_mutex_lock(&e->lock);
    struct renc_chunk *c = e->queue_head;
    if (c) {
        e->queue_head = c->next;
        if (!e->queue_head)
            e->queue_tail = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (!c)
        return 0;
    renc_chunk_work(c);
    return 1;
}

static void renc_queue_chunk(struct renc_engine *e, struct renc_chunk *c)
{
    c->next = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->queue_tail)
        e->queue_tail->next = c;
    else
        e->queue_head = c;
    e->queue_tail = c;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Releases a chunk that will not be (or has been) written. */
static void renc_chunk_drop(struct renc_chunk *c)
{
    struct renc_big *b = c->big;
    renc_pool_release(b->e->pool, c->buf, c->buf_len);
    renc_free(c);
    b->inflight--;
}

/* A read-ahead completed: the chunk goes to the workers. */
static void renc_chunk_read(struct renc_ring_op *op, int result)
{
    struct renc_chunk *c = op->user;
    struct renc_big *b = c->big;
    if (result >= 0 && (size_t)result < c->data_off + c->len)
        result = -RENC_E_TRUNCATED; /* shrank since the scan */
    if (result < 0) {
        if (b->read_rc == 0)
            b->read_rc = result;
        renc_chunk_drop(c);
        return;
    }
    renc_queue_chunk(b->e, c);
}

static void renc_chunk_written(struct renc_ring_op *op, int result)
{
    struct renc_chunk *c = op->user;
    struct renc_big *b = c->big;
    if (result < 0 && b->write_rc == 0)
        b->write_rc = result;
    /* Start writeback of what was just written, so the final durability
     * barrier has little left to flush and the disk works while the next
     * chunks are read and sealed.  Not a durability point by itself. */
    if (result >= 0 && !b->direct_out)
        sync_file_range(b->out_fd, (off64_t)c->wop.offset, (off64_t)c->wop.len,
                        SYNC_FILE_RANGE_WRITE);
    renc_chunk_drop(c);
}

static void renc_blk_written(struct renc_ring_op *op, int result)
{
    struct renc_blk *k = op->user;
    struct renc_big *b = k->big;
    if (result < 0 && b->write_rc == 0)
        b->write_rc = result;
    renc_free(k->buf);
    renc_free(k);
    b->inflight--;
}

/* --direct: adds output bytes [off, off+len) that do not fill whole aligned
 * blocks of their own; a block is written once all its bytes are there (the
 * last one padded, and the file trimmed at the end). */
static int renc_asm_add(struct renc_big *b, struct renc_ring *ring, uint64_t off,
                        const uint8_t *src, size_t len)
{
    while (len > 0) {
        uint64_t idx = off / RENC_DIRECT_ALIGN;
        size_t boff = (size_t)(off % RENC_DIRECT_ALIGN);
        size_t n = RENC_DIRECT_ALIGN - boff < len ? RENC_DIRECT_ALIGN - boff : len;
        struct renc_blk *k = NULL;
        size_t at = 0;
        for (; at < b->nblks && !k; at++)
            if (b->blks[at]->index == idx)
                k = b->blks[at];
        if (k) {
            at--;
        } else {
            if (b->nblks == b->blks_cap) {
                size_t cap = b->blks_cap ? 2 * b->blks_cap : 16;
                struct renc_blk **grown = renc_realloc(b->blks, cap * sizeof *grown);
                RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
                b->blks = grown;
                b->blks_cap = cap;
            }
            k = renc_calloc(1, sizeof *k);
            if (k)
                k->buf = renc_aligned_alloc(RENC_DIRECT_ALIGN, RENC_DIRECT_ALIGN);
            if (!k || !k->buf) {
                renc_free(k);
                return -RENC_E_NOMEM;
            }
            memset(k->buf, 0, RENC_DIRECT_ALIGN);
            k->big = b;
            k->index = idx;
            at = b->nblks;
            b->blks[b->nblks++] = k;
        }
        memcpy(k->buf + boff, src, n);
        k->filled += n;
        uint64_t start = idx * RENC_DIRECT_ALIGN;
        size_t full = b->out_size - start < RENC_DIRECT_ALIGN ? (size_t)(b->out_size - start)
                                                              : RENC_DIRECT_ALIGN;
        if (k->filled == full) {
            b->blks[at] = b->blks[--b->nblks];
            k->op.kind = RENC_RING_WRITE;
            k->op.fd = b->out_fd;
            k->op.buf = k->buf;
            k->op.len = RENC_DIRECT_ALIGN;
            k->op.offset = start;
            k->op.user = k;
            k->op.done = renc_blk_written;
            b->inflight++;
            renc_ring_submit(ring, &k->op);
        }
        off += n;
        src += n;
        len -= n;
    }
    return 0;
}

/* --direct: writes a sealed chunk.  Its block-aligned middle goes straight
 * from the chunk buffer; its edges go to the block assembler.  Returns 1
 * when a write of the chunk buffer was submitted (its completion releases
 * it), 0 when the buffer can be released now, or an error. */
static int renc_direct_write_chunk(struct renc_big *b, struct renc_ring *ring,
                                   struct renc_chunk *c, uint64_t out_start)
{
    const uint64_t A = RENC_DIRECT_ALIGN;
    uint64_t out_end = out_start + c->len;
    uint64_t lo = (out_start + A - 1) / A * A, hi = out_end / A * A;
    const uint8_t *src = c->buf + c->data_off;
    int rc;
    if (hi <= lo)
        return renc_asm_add(b, ring, out_start, src, c->len);
    if ((rc = renc_asm_add(b, ring, out_start, src, (size_t)(lo - out_start))) ||
        (rc = renc_asm_add(b, ring, hi, src + (hi - out_start), (size_t)(out_end - hi))))
        return rc;
    memset(&c->wop, 0, sizeof c->wop);
    c->wop.kind = RENC_RING_WRITE;
    c->wop.fd = b->out_fd;
    c->wop.buf = (uint8_t *)src + (lo - out_start); /* aligned: see renc_run_big */
    c->wop.len = (size_t)(hi - lo);
    c->wop.offset = lo;
    c->wop.user = c;
    c->wop.done = renc_chunk_written;
    renc_ring_submit(ring, &c->wop);
    return 1;
}

/* How a big blob's records are fed to the workers (renc_big_rekey). */
struct renc_feed {
    int in_fd;
    uint64_t size;                /* the blob as opened */
    uint64_t next_off;            /* where the next chunk starts in the old blob */
    uint64_t index;               /* the next chunk's first record */
    size_t chunk;                 /* the most record bytes a chunk holds */
    size_t buf_len;               /* a chunk's buffer (O_DIRECT: whole blocks around it) */
    unsigned max_inflight;
    int fixed;                    /* records at known offsets: read ahead asynchronously */
    uint64_t rec_size, per_chunk; /* fixed: a record's length, records per chunk */
    int rc;                       /* the first failure: feed no more, drain what is in flight */
};

/* The one set-up of a chunk: records [in_off, in_off + len) of the old
 * blob, the first of them record first_index, read into buf at data_off. */
static struct renc_chunk *renc_chunk_new(struct renc_big *b, uint8_t *buf, size_t buf_len,
                                         size_t data_off, size_t len, uint64_t in_off,
                                         uint64_t first_index, int final)
{
    struct renc_chunk *c = renc_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->big = b;
    c->buf = buf;
    c->buf_len = buf_len;
    c->data_off = data_off;
    c->len = len;
    c->in_off = in_off;
    c->first_index = first_index;
    c->final = final;
    return c;
}

/* A chunk's buffer: waits for one only when none of this blob's chunks is
 * in flight (nothing of its own would free one); otherwise takes one only
 * if free, so the coordinator goes on writing and helping meanwhile. */
static int renc_chunk_buf(struct renc_engine *e, const struct renc_big *b, size_t len,
                          uint8_t **buf)
{
    return b->inflight ? renc_pool_try_acquire(e->pool, len, buf)
                       : renc_pool_acquire(e->pool, len, buf);
}

/* With O_DIRECT a read starts at the aligned block holding off: the bytes
 * wanted start this far into the buffer. */
static size_t renc_read_lead(const struct renc_big *b, uint64_t off)
{
    return b->direct_in_fd >= 0 ? (size_t)(off % RENC_DIRECT_ALIGN) : 0;
}

/* Points op at bytes [off, off + len) of the old blob, read into buf; with
 * O_DIRECT the read covers the whole aligned blocks around them (lead is
 * renc_read_lead's). */
static void renc_chunk_read_op(const struct renc_big *b, struct renc_ring_op *op, int in_fd,
                               uint8_t *buf, uint64_t off, size_t len, size_t lead)
{
    op->kind = RENC_RING_READ;
    op->fd = in_fd;
    op->buf = buf;
    op->len = len;
    op->offset = off;
    if (b->direct_in_fd >= 0) {
        op->fd = b->direct_in_fd;
        op->offset = off - lead;
        op->len = (lead + len + RENC_DIRECT_ALIGN - 1) / RENC_DIRECT_ALIGN * RENC_DIRECT_ALIGN;
    }
}

/* Step 1, plan: the chunk size, how many chunks go in flight, and, for
 * records of a fixed size, the size the blob must have.  With O_DIRECT
 * writes the new header goes to the block assembler first.  Recovery: roll
 * back (nothing is written yet but into the temporary). */
static void renc_feed_plan(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           int in_fd, uint64_t size, struct renc_feed *f)
{
    memset(f, 0, sizeof *f);
    f->in_fd = in_fd;
    f->size = size;
    f->next_off = b->plan.old_h.header_len;
    /* A chunk holds at least one record of this blob, and about 1 MiB: small
     * enough to stay in cache between the read and the crypto. */
    size_t chunk = renc_record_max_len(renc_header_seg_size(&b->plan.old_h));
    if (chunk < ((size_t)1 << 20))
        chunk = (size_t)1 << 20;
    f->chunk = (chunk + RENC_POOL_ALIGN - 1) & ~(size_t)(RENC_POOL_ALIGN - 1);
    /* With O_DIRECT a read covers whole aligned blocks around the chunk. */
    f->buf_len = b->direct_in_fd >= 0 ? f->chunk + 2 * RENC_DIRECT_ALIGN : f->chunk;
    /* Verify keeps few chunks in flight: reads from the page cache are
     * synchronous copies, and a few buffers reused stay in cache.  A rekey
     * keeps more, so writes and their writeback overlap the next reads. */
    f->max_inflight = e->opts.op == RENC_ENGINE_VERIFY && b->direct_in_fd < 0
                          ? e->opts.threads + 1 : RENC_CHUNK_INFLIGHT;
    if (b->direct_out)
        f->rc = renc_asm_add(b, ring, 0, b->plan.new_hdr, b->plan.new_hdr_len);
    /* Records of a fixed size (no compression, length known) sit at known
     * offsets: chunks are read ahead asynchronously, several at once. */
    const struct renc_header *h = &b->plan.old_h;
    f->rec_size = renc_record_max_len(renc_header_seg_size(h));
    f->fixed = !(h->flags & RENC_FLAG_COMPRESSED) && b->count > 0;
    f->per_chunk = f->chunk / f->rec_size ? f->chunk / f->rec_size : 1;
    if (f->fixed) {
        uint64_t last_len = h->plaintext_len - (b->count - 1) * renc_header_seg_size(h) +
                            RENC_RECORD_OVERHEAD;
        uint64_t expect = h->header_len + (b->count - 1) * f->rec_size + last_len;
        if (size != expect)
            f->rc = size < expect ? -RENC_E_TRUNCATED : -RENC_E_TRAILING;
    }
}

/* Step 2a, feed (records of a fixed size): submits the next chunk's read
 * ahead; its completion queues it for the workers (renc_chunk_read).
 * Returns 1 when a chunk went out.  Recovery: roll back. */
static int renc_feed_ahead(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           struct renc_feed *f)
{
    uint8_t *buf = NULL;
    if (renc_chunk_buf(e, b, f->buf_len, &buf) != 0)
        return 0;
    uint64_t records = b->count - f->index < f->per_chunk ? b->count - f->index : f->per_chunk;
    uint64_t span = f->index + records == b->count ? f->size - f->next_off : records * f->rec_size;
    size_t lead = renc_read_lead(b, f->next_off);
    struct renc_chunk *c = renc_chunk_new(b, buf, f->buf_len, lead, (size_t)span, f->next_off,
                                          f->index, f->index + records == b->count);
    if (!c) {
        renc_pool_release(e->pool, buf, f->buf_len);
        f->rc = -RENC_E_NOMEM;
        return 0;
    }
    renc_chunk_read_op(b, &c->wop, f->in_fd, buf, f->next_off, (size_t)span, lead);
    c->wop.user = c;
    c->wop.done = renc_chunk_read;
    f->next_off += span;
    f->index += records;
    b->inflight++;
    renc_ring_submit(ring, &c->wop);
    return 1;
}

/* Step 2b, feed (records of varying size: compressed, or a count not
 * known): a chunk's extent is known only once it is read, so the read is
 * waited for (other ops in flight keep completing), then the chunk is
 * queued for the workers.  Returns 1 when it tried.  Recovery: roll back. */
static int renc_feed_read(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                          struct renc_feed *f)
{
    uint8_t *buf = NULL;
    if (renc_chunk_buf(e, b, f->buf_len, &buf) != 0)
        return 0;
    struct renc_sync_op rd;
    memset(&rd, 0, sizeof rd);
    size_t want = f->size - f->next_off < f->chunk ? (size_t)(f->size - f->next_off) : f->chunk;
    size_t data_off = renc_read_lead(b, f->next_off);
    renc_chunk_read_op(b, &rd.op, f->in_fd, buf, f->next_off, want, data_off);
    int got = renc_ring_run(ring, &rd);
    size_t span = 0;
    uint64_t records = 0;
    int rc;
    /* A short read only at end of file, past what was wanted. */
    if (got >= 0 && (size_t)got < data_off + want)
        got = -RENC_E_TRUNCATED; /* shrank since the scan */
    uint64_t left = b->count ? b->count - f->index : UINT64_MAX;
    if (got >= 0)
        rc = renc_records_span(&b->plan.old_h, buf + data_off, want, f->chunk, left, &span,
                               &records);
    else
        rc = got;
    if (rc == 0 && records == 0)
        /* Bytes after the last record, or a record longer than
         * what is left. */
        rc = left == 0 ? -RENC_E_TRAILING : -RENC_E_TRUNCATED;
    struct renc_chunk *c = rc ? NULL
                              : renc_chunk_new(b, buf, f->buf_len, data_off, span, f->next_off,
                                               f->index, f->next_off + span == f->size);
    if (rc == 0 && !c)
        rc = -RENC_E_NOMEM;
    if (rc) {
        renc_pool_release(e->pool, buf, f->buf_len);
        f->rc = rc;
        return 1;
    }
    f->next_off += span;
    f->index += records;
    b->inflight++;
    renc_queue_chunk(e, c);
    return 1;
}

/* Step 3, write: chunks whose crypto is done go to the ring, each at its
 * offset in the new blob (the temporary); after a failure, or when nothing
 * is written (verify, dry run), they are released.  Returns 1 when any was
 * taken.  Recovery: roll back. */
static int renc_big_write_done(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                               struct renc_feed *f)
{
    uint64_t old_hl = b->plan.old_h.header_len, new_hl = b->plan.new_hdr_len;
    int progressed = 0;
    pthread_mutex_lock(&b->lock);
    struct renc_chunk *done = b->done;
    b->done = NULL;
    pthread_mutex_unlock(&b->lock);
    while (done) {
        struct renc_chunk *c = done;
        done = c->next;
        progressed = 1;
        if (c->rc == 0) { /* progress shows within a big blob, not only at its end */
            b->credited += c->len;
            atomic_fetch_add(&e->bytes_partial, c->len);
        }
        if (c->rc || f->rc || b->write_rc || e->opts.dry_run || e->opts.op == RENC_ENGINE_VERIFY) {
            if (c->rc && f->rc == 0)
                f->rc = c->rc;
            renc_chunk_drop(c);
            continue;
        }
        if (b->direct_out) {
            int wrc = renc_direct_write_chunk(b, ring, c, c->in_off - old_hl + new_hl);
            if (wrc <= 0) {
                if (wrc < 0 && f->rc == 0)
                    f->rc = wrc;
                renc_chunk_drop(c);
            }
            continue;
        }
        memset(&c->wop, 0, sizeof c->wop);
        c->wop.kind = RENC_RING_WRITE;
        c->wop.fd = b->out_fd;
        c->wop.buf = c->buf + c->data_off;
        c->wop.len = c->len;
        c->wop.offset = c->in_off - old_hl + new_hl;
        c->wop.user = c;
        c->wop.done = renc_chunk_written;
        renc_ring_submit(ring, &c->wop);
    }
    return progressed;
}

/* Step 4, wait: reaps completions; when nothing moved, does one queued
 * chunk's crypto (of any blob), else waits for a completion or yields.  A
 * negative return is the ring failing: fatal for this blob, which the
 * caller rolls back. */
static int renc_big_wait(struct renc_engine *e, struct renc_ring *ring, int progressed)
{
    int reaped = renc_ring_wait(ring, 0);
    if (reaped < 0)
        return reaped;
    if (!progressed && reaped == 0 && !renc_help_one(e)) {
        if (renc_ring_in_flight(ring))
            renc_ring_wait(ring, 1);
        else
            sched_yield();
    }
    return 0;
}

/* Step 5, end: the first failure, or a blob cut short; with O_DIRECT every
 * assembled block must be out by now, and the file is trimmed from its
 * padded last block to its size.  The temporary is complete but not yet
 * durable: the commit point is the caller's (renc_big_commit). */
static int renc_feed_end(struct renc_big *b, const struct renc_feed *f)
{
    int rc = f->rc;
    if (rc == 0 && b->read_rc)
        rc = b->read_rc;
    if (rc == 0 && b->write_rc)
        rc = b->write_rc;
    if (rc == 0 && f->next_off != f->size)
        rc = -RENC_E_TRUNCATED;
    if (b->direct_out) {
        /* Every block is complete once every chunk is written; the last
         * block was written padded, so the file is trimmed to its size. */
        if (rc == 0 && b->nblks)
            rc = -EIO;
        for (size_t i = 0; i < b->nblks; i++) {
            renc_free(b->blks[i]->buf);
            renc_free(b->blks[i]);
        }
        b->nblks = 0;
        renc_free(b->blks);
        b->blks = NULL;
        if (rc == 0 && ftruncate(b->out_fd, (off_t)b->out_size) != 0)
            rc = -errno;
    }
    return rc;
}

/* Rekeys (or verifies) a big blob: reads record-aligned chunks, hands their
 * crypto to the workers, writes each back at its offset (record lengths
 * never change; verify writes nothing).
 *
 * Everything here is written to the temporary only (b->out_fd): no step is
 * a commit point, and the loop drains every chunk in flight before it
 * returns.  On a failure the caller rolls back (removes the temporary): the
 * blob stays wholly old, is noted failed, and the next attempt reads it
 * again; after a crash the resume's sweep removes the temporary. */
static int renc_big_rekey(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                          int in_fd, uint64_t size)
{
    struct renc_feed f;
    renc_feed_plan(e, ring, b, in_fd, size, &f);
    while ((f.rc == 0 && b->read_rc == 0 && b->write_rc == 0 && f.next_off < size) ||
           b->inflight > 0) {
        int progressed = 0;
        if (f.rc == 0 && f.fixed && b->read_rc == 0 && b->write_rc == 0 && f.next_off < size &&
            b->inflight < f.max_inflight)
            progressed = renc_feed_ahead(e, ring, b, &f);
        else if (f.rc == 0 && !f.fixed && b->write_rc == 0 && f.next_off < size &&
                 b->inflight < f.max_inflight)
            progressed = renc_feed_read(e, ring, b, &f);
        progressed |= renc_big_write_done(e, ring, b, &f);
        int rc = renc_big_wait(e, ring, progressed);
        if (rc < 0)
            return rc;
    }
    return renc_feed_end(b, &f);
}

/* Rewrap of a big blob: records are copied unchanged, in the kernel. */
static int renc_big_copy_records(int in_fd, int out_fd, uint64_t in_off, uint64_t out_off,
                                 uint64_t len)
{
    loff_t ioff = (loff_t)in_off, ooff = (loff_t)out_off;
    while (len > 0) {
        int rc = renc_fault_check("write");
        if (rc)
            return rc;
        ssize_t n = copy_file_range(in_fd, &ioff, out_fd, &ooff, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -RENC_E_TRUNCATED;
        len -= (uint64_t)n;
    }
    return 0;
}

/* --direct: the source opened a second time, O_DIRECT, for the records. */
static int renc_open_direct(struct renc_big *b, const char *path)
{
    b->direct_in_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECT);
    if (b->direct_in_fd < 0)
        return errno == EINVAL ? -EOPNOTSUPP : -errno; /* e.g. tmpfs */
    return 0;
}

/* In-place header rewrap of one blob: the old and new header durably into
 * the journal, then the new header over the old one and made durable.  On
 * a failure the old header is put back. */
static int renc_header_in_place(struct renc_engine *e, size_t idx, const char *path,
                                const uint8_t *old_hdr, const struct renc_blob_plan *p,
                                const struct stat *st)
{
    size_t len = p->new_hdr_len;
    const uint8_t *new_hdr = p->new_hdr;
    int rc = renc_journal_header_intents(e->opts.journal, 1, &e->opts.rows[idx], &path,
                                         &old_hdr, &new_hdr, &len);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? -RENC_E_CHANGED : -errno;
    struct stat now;
    if (fstat(fd, &now) != 0 || !renc_same_file(st, &now)) {
        close(fd); /* not the blob that was read: not ours to write */
        return -RENC_E_CHANGED;
    }
    rc = renc_fault_check("write");
    if (rc == 0 && pwrite(fd, new_hdr, len, 0) != (ssize_t)len)
        rc = errno ? -errno : -EIO;
    if (rc == 0)
        rc = renc_keep_mtime(fd, st);
    if (rc == 0)
        rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc)
        renc_restore_header(fd, old_hdr, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno; /* after a durable write: the header is new, as journaled */
    return rc;
}

/* Commits a big blob's durable temporary (fd is closed either way): the
 * blob's attributes, fsync, then the checked replacement (under --out: the
 * source checked unchanged, the mirror's file renamed), then the directory. */
static int renc_big_commit(struct renc_engine *e, size_t idx, int in_fd, const struct stat *st,
                           int fd, const char *tmp, const char *final)
{
    unsigned lost = 0;
    int rc = renc_copy_attrs(in_fd, st, fd, &lost);
    renc_note_attrs(e, lost);
    if (rc == 0)
        rc = renc_fault_check("fsync");
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    rc = renc_commit_checked(e, idx, st, tmp, final);
    return rc ? rc : renc_file_fsync_parent(final);
}

/* Makes the temporary durable and puts it in the blob's place
 * (renc_big_commit: the checked rename is the commit point).  The
 * temporary's descriptor is closed either way. */
static int renc_big_commit_out(struct renc_engine *e, struct renc_big *b)
{
    int fd = b->out_fd;
    b->out_fd = -1;
    return renc_big_commit(e, b->idx, b->in_fd, &b->st, fd, b->tmp, b->final);
}

/* Bench ceiling (--bench-identity): the whole file copied as it is,
 * committed the same way.  Recovery: roll back (the temporary is removed
 * here on a failure before the commit). */
static int renc_big_identity(struct renc_engine *e, struct renc_big *b)
{
    int rc;
    if ((rc = renc_final_path(e, b->idx, b->final, sizeof b->final)) == 0 &&
        (rc = renc_tmp_path(e, b->final, b->tmp, sizeof b->tmp)) == 0) {
        b->out_fd = open(b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, b->st.st_mode & 0777);
        rc = b->out_fd < 0 ? -errno : renc_big_copy_records(b->in_fd, b->out_fd, 0, 0, b->size);
        if (rc == 0)
            rc = renc_big_commit_out(e, b);
    }
    if (b->out_fd >= 0)
        renc_file_abort(b->out_fd, b->tmp);
    return rc;
}

/* Reads the blob's header (up to the largest a header may be). */
static int renc_big_read_header(struct renc_big *b)
{
    b->hdr = renc_malloc(RENC_MAX_HEADER_LEN);
    if (!b->hdr)
        return -RENC_E_NOMEM;
    return renc_file_pread_full(b->in_fd, b->hdr, RENC_MAX_HEADER_LEN, 0, &b->hdr_len);
}

/* Verify: the records are spread over the workers like a rekey's, opened
 * and checked, and nothing is written (no recovery needed).  *ref: the key
 * ref a failure concerns. */
static int renc_big_verify(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b,
                           const char **ref)
{
    int failed = -1;
    int rc;
    if ((rc = renc_header_parse(&b->plan.old_h, b->hdr, b->hdr_len)) == 0 &&
        (rc = renc_keystore_open_header(e->ks, &b->plan.old, &b->plan.old_h, b->hdr, &failed)) !=
            0 &&
        failed >= 0)
        *ref = b->plan.old_h.slots[failed].ref;
    if (rc == 0 && e->opts.direct)
        rc = renc_open_direct(b, e->scan->items[b->idx].path);
    if (rc == 0) {
        b->count = renc_header_seg_count(&b->plan.old_h);
        rc = renc_big_rekey(e, ring, b, b->in_fd, b->size);
    }
    return rc;
}

/* A blob already under the target.  --out: the mirror is complete, so it
 * is mirrored as it is, in the kernel, committed the same way; in place
 * nothing is written.  Recovery: roll back (the caller removes the
 * temporary); the commit point is renc_big_commit's rename. */
static int renc_big_mirror(struct renc_engine *e, struct renc_big *b)
{
    if (!e->opts.out_dir || e->opts.dry_run)
        return 0;
    int rc;
    if ((rc = renc_final_path(e, b->idx, b->final, sizeof b->final)) ||
        (rc = renc_tmp_path(e, b->final, b->tmp, sizeof b->tmp)))
        return rc;
    b->out_fd = open(b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     b->st.st_mode & 0777);
    if (b->out_fd < 0)
        return -errno;
    if ((rc = renc_big_copy_records(b->in_fd, b->out_fd, 0, 0, b->size)))
        return rc;
    return renc_big_commit_out(e, b);
}

/* Opens the temporary beside the final path and writes the new header into
 * it (with O_DIRECT the header goes out through the block assembler, in
 * renc_big_rekey).  Recovery: roll back (the caller removes the
 * temporary). */
static int renc_big_open_out(struct renc_engine *e, struct renc_big *b)
{
    int rc;
    if ((rc = renc_final_path(e, b->idx, b->final, sizeof b->final)) ||
        (rc = renc_tmp_path(e, b->final, b->tmp, sizeof b->tmp)))
        return rc;
    /* O_DIRECT writes need the records to keep their place within a
     * block: the header length may change only by whole blocks. */
    b->direct_out = e->opts.direct && b->plan.new_dek &&
                    (b->plan.new_hdr_len - b->plan.old_h.header_len) % RENC_DIRECT_ALIGN == 0;
    b->out_size = b->size - b->plan.old_h.header_len + b->plan.new_hdr_len;
    b->out_fd = open(b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW |
                                 (b->direct_out ? O_DIRECT : 0), b->st.st_mode & 0777);
    if (b->out_fd < 0)
        return errno == EINVAL && b->direct_out ? -EOPNOTSUPP : -errno;
    rc = renc_fault_check("write");
    /* Reserve the whole output at once: O_DIRECT writes that extend a
     * file are serialised by the filesystem, writes inside it are not.
     * Not every filesystem can; then it only costs the speed. */
    if (rc == 0 && b->direct_out)
        (void)fallocate(b->out_fd, 0, 0, (off_t)b->out_size);
    /* With O_DIRECT the header goes out through the block assembler. */
    if (rc == 0 && !b->direct_out &&
        pwrite(b->out_fd, b->plan.new_hdr, b->plan.new_hdr_len, 0) != (ssize_t)b->plan.new_hdr_len)
        rc = errno ? -errno : -EIO;
    return rc;
}

/* The records into the temporary: rekeyed chunk by chunk, or (a rewrap)
 * copied unchanged in the kernel; a dry run rekeys without writing.
 * Recovery: roll back (the caller removes the temporary). */
static int renc_big_records(struct renc_engine *e, struct renc_ring *ring, struct renc_big *b)
{
    int rc = 0;
    if (e->opts.direct && b->plan.new_dek)
        rc = renc_open_direct(b, e->scan->items[b->idx].path);
    if (rc)
        return rc;
    if (b->plan.new_dek)
        return renc_big_rekey(e, ring, b, b->in_fd, b->size);
    if (!e->opts.dry_run)
        return renc_big_copy_records(b->in_fd, b->out_fd, b->plan.old_h.header_len,
                                     b->plan.new_hdr_len, b->size - b->plan.old_h.header_len);
    return 0;
}

/* One big blob: opened (its identity taken), its header read, then by its
 * plan verified, skipped (mirrored under --out), its header rewritten in
 * place, or a new blob written to a temporary and committed.  The commit
 * point is the checked rename in renc_big_commit (in place: the header's
 * durable write, after its journaled intent).  A failure before it rolls
 * back: the temporary is removed, the blob stays wholly old and is noted
 * failed, and the next attempt reads it again (after a crash the resume's
 * sweep removes the temporary).  The journal notes the outcome only once
 * the commit is durable. */
static void renc_run_big(struct renc_engine *e, struct renc_ring *ring, size_t idx)
{
    const struct renc_scan_item *it = &e->scan->items[idx];
    struct renc_big b;
    memset(&b, 0, sizeof b);
    b.e = e;
    b.idx = idx;
    b.out_fd = -1;
    b.direct_in_fd = -1;
    pthread_mutex_init(&b.lock, NULL);
    const char *ref = NULL;
    int rc = 0;

    b.in_fd = open(it->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (b.in_fd < 0 || fstat(b.in_fd, &b.st) != 0) {
        renc_finish(e, idx, RENC_ITEM_FAILED, -errno, NULL);
        if (b.in_fd >= 0)
            close(b.in_fd);
        pthread_mutex_destroy(&b.lock);
        return;
    }
    /* The blob as opened (it may have changed since the scan): its commit
     * checks it is still this file. */
    b.size = (uint64_t)b.st.st_size;
    if (e->opts.identity) {
        rc = renc_big_identity(e, &b);
        renc_finish(e, idx, rc ? RENC_ITEM_FAILED : RENC_ITEM_DONE, rc, NULL);
        close(b.in_fd);
        pthread_mutex_destroy(&b.lock);
        return;
    }
    rc = renc_big_read_header(&b);
    if (rc == 0 && (b.hdr_len < 4 || memcmp(b.hdr, "RENC", 4) != 0)) {
        renc_finish(e, idx, RENC_ITEM_NOT_RENC, 0, NULL);
        goto out;
    }
    if (rc == 0 && e->opts.op == RENC_ENGINE_VERIFY) {
        if ((rc = renc_big_verify(e, ring, &b, &ref)))
            goto out_fail;
        renc_finish(e, idx, RENC_ITEM_DONE, 0, NULL);
        goto out;
    }
    if (rc == 0 && (rc = renc_transform_plan(e->t, &b.plan, b.hdr, b.hdr_len)) != 0)
        ref = b.plan.failed_ref;
    if (rc)
        goto out_fail;
    if (b.plan.verdict == RENC_VERDICT_SKIP) {
        if ((rc = renc_big_mirror(e, &b)))
            goto out_fail;
        renc_finish_plan(e, idx, RENC_ITEM_SKIPPED, 0, NULL, &b.plan);
        goto out;
    }
    b.count = renc_header_seg_count(&b.plan.old_h);
    if (!e->opts.out_dir && b.st.st_nlink > 1 && !e->opts.dry_run) {
        rc = -RENC_E_HARDLINKED; /* see renc_small_mark_write */
        goto out_fail;
    }
    if (renc_in_place_ok(e, &b.plan)) {
        if ((rc = renc_header_in_place(e, idx, it->path, b.hdr, &b.plan, &b.st)))
            goto out_fail;
        atomic_fetch_add(&e->in_place, 1);
        renc_finish_plan(e, idx, RENC_ITEM_DONE, 0, NULL, &b.plan);
        goto out;
    }
    if (!e->opts.dry_run && (rc = renc_big_open_out(e, &b)))
        goto out_fail;
    if ((rc = renc_big_records(e, ring, &b)))
        goto out_fail;
    /* Commit: durable temporary, rename (the commit point), directory. */
    if (!e->opts.dry_run && (rc = renc_big_commit_out(e, &b)))
        goto out_fail; /* the temporary is gone: renc_big_commit removed it */
    renc_finish_plan(e, idx, RENC_ITEM_DONE, 0, NULL, &b.plan);
    goto out;

out_fail:
    if (b.out_fd >= 0)
        renc_file_abort(b.out_fd, b.tmp);
    b.out_fd = -1;
    renc_finish(e, idx, RENC_ITEM_FAILED, rc, ref);
out:
    atomic_fetch_sub(&e->bytes_partial, b.credited);
    if (b.out_fd >= 0)
        renc_file_abort(b.out_fd, b.tmp);
    if (b.direct_in_fd >= 0)
        close(b.direct_in_fd);
    renc_free(b.hdr);
    close(b.in_fd);
    renc_blob_plan_cleanup(&b.plan);
    pthread_mutex_destroy(&b.lock);
}

/* ---- workers ---------------------------------------------------------- */

static void *renc_worker_main(void *arg)
{
    struct renc_engine *e = arg;
    struct renc_ring *ring = NULL;
    struct renc_small *items = renc_calloc(RENC_BATCH_MAX, sizeof *items);
    int rc = items ? renc_ring_new(&ring, RENC_RING_DEPTH) : -RENC_E_NOMEM;
    if (rc) {
        int zero = 0;
        atomic_compare_exchange_strong(&e->engine_rc, &zero, rc);
        atomic_store(&e->stopping, 1);
    }
    while (rc == 0) {
        if (renc_help_one(e))
            continue;
        size_t n = 0, bytes = 0;
        ssize_t big = -1;
        while (!renc_should_stop(e) && n < RENC_BATCH_MAX && bytes < RENC_BATCH_BYTES) {
            size_t idx = atomic_fetch_add(&e->next_item, 1);
            if (idx >= e->scan->count)
                break;
            const struct renc_scan_item *it = &e->scan->items[idx];
            if (it->size > e->small_max) {
                big = (ssize_t)idx;
                break;
            }
            uint8_t *buf;
            /* One byte more shows a file that grew since the scan; the rest
             * is room for a new header larger than the old one, so the new
             * blob is assembled in the same pool buffer. */
            size_t want = (size_t)it->size + 1 + 8192;
            int arc = n == 0 ? renc_pool_acquire(e->pool, want, &buf)
                             : renc_pool_try_acquire(e->pool, want, &buf);
            if (arc == -EAGAIN) {
                /* Pool busy: run what we have, this one waits for later. */
                arc = renc_pool_acquire(e->pool, want, &buf);
            }
            if (arc) {
                renc_finish(e, idx, RENC_ITEM_FAILED, arc, NULL);
                continue;
            }
            memset(&items[n], 0, sizeof items[n]);
            items[n].idx = idx;
            items[n].buf = buf;
            items[n].buf_len = want;
            items[n].fd = -1;
            items[n].ofd = -1;
            items[n].plan.failed_slot = -1;
            n++;
            bytes += want;
        }
        if (n) {
            renc_run_batch(e, ring, items, n);
            renc_batch_release(e, items, n);
        }
        if (big >= 0) {
            pthread_mutex_lock(&e->lock);
            e->coordinators++;
            pthread_mutex_unlock(&e->lock);
            renc_run_big(e, ring, (size_t)big);
            pthread_mutex_lock(&e->lock);
            e->coordinators--;
            pthread_cond_broadcast(&e->cond);
            pthread_mutex_unlock(&e->lock);
        }
        if (n == 0 && big < 0) {
            /* Nothing left to claim: help big blobs until none is fed. */
            pthread_mutex_lock(&e->lock);
            if (!e->queue_head && e->coordinators == 0) {
                pthread_mutex_unlock(&e->lock);
                break;
            }
            if (!e->queue_head) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 2000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&e->cond, &e->lock, &ts);
            }
            pthread_mutex_unlock(&e->lock);
        }
    }
    renc_ring_free(ring);
    renc_free(items);
    pthread_mutex_lock(&e->lock);
    e->workers_running--;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- the engine ------------------------------------------------------- */

/* A chunk must hold the largest record (16 MiB segments) with room. */
static size_t renc_engine_chunk_bytes(void)
{
    size_t chunk = (size_t)4 << 20;
    size_t max_record = renc_record_max_len(1u << RENC_SEG_SHIFT_MAX);
    if (chunk < max_record)
        chunk = (max_record + RENC_POOL_ALIGN - 1) & ~(size_t)(RENC_POOL_ALIGN - 1);
    return chunk;
}

size_t renc_engine_min_memory(void)
{
    return renc_engine_chunk_bytes() + RENC_POOL_ALIGN;
}

int renc_engine_new(struct renc_engine **out, const struct renc_engine_opts *opts,
                    struct renc_keystore *ks, struct renc_transformer *t,
                    const struct renc_scan *scan)
{
    RENC_RETURN_IF(opts->threads == 0, -RENC_E_INVALID);
    RENC_RETURN_IF(opts->op == RENC_ENGINE_RUN && !t, -RENC_E_INVALID);
    size_t chunk = renc_engine_chunk_bytes();
    RENC_RETURN_IF(opts->memory_bytes < renc_engine_min_memory(), -RENC_E_TOO_BIG);

    struct renc_engine *e = renc_calloc(1, sizeof *e);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    e->opts = *opts;
    e->ks = ks;
    e->t = t;
    e->scan = scan;
    e->chunk_bytes = chunk;
    /* Small enough to be read whole: a quarter of the pool per worker, at
     * most 4 MiB, so the batches of all workers fit together. */
    e->small_max = opts->memory_bytes / (4 * opts->threads);
    if (e->small_max > ((size_t)4 << 20))
        e->small_max = (size_t)4 << 20;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->results = renc_calloc(scan->count ? scan->count : 1, sizeof *e->results);
    int rc = e->results ? renc_pool_new(&e->pool, opts->memory_bytes) : -RENC_E_NOMEM;
    if (rc == 0 && opts->tmp_tag)
        rc = snprintf(e->tag, sizeof e->tag, "%s", opts->tmp_tag) < (int)sizeof e->tag
                 ? 0 : -RENC_E_INVALID;
    else if (rc == 0)
        rc = renc_tmpname_random_tag(e->tag);
    if (rc) {
        renc_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void renc_engine_free(struct renc_engine *e)
{
    if (!e)
        return;
    if (e->results)
        for (size_t i = 0; i < e->scan->count; i++)
            renc_free(e->results[i].ref);
    renc_free(e->results);
    renc_pool_free(e->pool);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    renc_free(e);
}

void renc_engine_snapshot(struct renc_engine *e, struct renc_engine_progress *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    p->items_total = e->scan->count;
    p->items_finished = atomic_load(&e->finished);
    p->done = atomic_load(&e->done);
    p->skipped = atomic_load(&e->skipped);
    p->not_renc = atomic_load(&e->not_renc);
    p->in_place = atomic_load(&e->in_place);
    p->failed = atomic_load(&e->failed);
    p->bytes_total = e->scan->total_bytes;
    p->bytes_finished = atomic_load(&e->bytes_finished) + atomic_load(&e->bytes_partial);
    if (p->bytes_finished > p->bytes_total)
        p->bytes_finished = p->bytes_total;
    p->elapsed_s = (double)(now.tv_sec - e->start.tv_sec) +
                   (double)(now.tv_nsec - e->start.tv_nsec) / 1e9;
}

int renc_engine_run(struct renc_engine *e, unsigned interval_ms,
                    void (*progress)(const struct renc_engine_progress *p, void *arg), void *arg)
{
    clock_gettime(CLOCK_MONOTONIC, &e->start);
    pthread_t *th = renc_calloc(e->opts.threads, sizeof *th);
    RENC_RETURN_IF(!th, -RENC_E_NOMEM);
    unsigned started = 0;
    pthread_mutex_lock(&e->lock);
    for (; started < e->opts.threads; started++) {
        if (pthread_create(&th[started], NULL, renc_worker_main, e) != 0)
            break;
        e->workers_running++;
    }
    double last_ms = 0;
    while (e->workers_running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)interval_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
        if (e->opts.stop && atomic_load(e->opts.stop))
            atomic_store(&e->stopping, 1);
        /* Workers wake this thread for their own reasons (a chunk queued, a
         * worker done); progress goes out once per interval. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double now_ms = (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
        if (progress && now_ms - last_ms >= interval_ms) {
            last_ms = now_ms;
            pthread_mutex_unlock(&e->lock);
            struct renc_engine_progress p;
            renc_engine_snapshot(e, &p);
            progress(&p, arg);
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    renc_free(th);
    if (started == 0)
        return -EAGAIN;
    return atomic_load(&e->engine_rc);
}

const struct renc_item_result *renc_engine_results(const struct renc_engine *e)
{
    return e->results;
}

unsigned renc_engine_attrs_lost(struct renc_engine *e)
{
    return atomic_load(&e->attrs_lost);
}

size_t renc_engine_peak_memory(struct renc_engine *e)
{
    return renc_pool_peak(e->pool);
}
