/* reencrypt restore | restore-check — a backup into an environment, when
 * the restore rule allows it (docs/ENVIRONMENTS.md); shared helpers in
 * cmd_data.c.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/workq.h"
#include "keys/keyref.h"
#include "env/archive.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/envctl.h"
#include "env/rules.h"
#include "store/scan.h"
#include "run/session.h"
#include "reencrypt/stage.h"
#include "store/one.h"
#include "store/store.h"

static const char renc_restore_usage[] =
    "usage: reencrypt restore BACKUP --target ID [--threads N] [--memory BYTES]\n"
    "restores a backup's blobs into DATA/ID/blobs/ (or ROOT/ID/blobs/ in blob storage; same\n"
    "names replaced), sealed under the target's policy key, when the restore rule allows it.\n"
    "BACKUP is a file or a blob's URL.\n";
static const char renc_restore_check_usage[] =
    "usage: reencrypt restore-check BACKUP --target ID [--json]\n"
    "says whether the backup may be restored into ID and why, and opens every record of it\n"
    "with the keys ID holds; writes nothing.  BACKUP is a file or a blob's URL.\n";

/* One entry of a local restore in flight: its staged temporary, and its
 * plaintext held whole (buf: sealed by a worker) or, bigger than a slot's
 * share of --memory, sealed as the backup is read (on the reading thread;
 * its result in streamed_rc). */
struct renc_restore_slot {
    int fd;
    int held;            /* 1: the plaintext is in buf, for a worker to seal */
    uint64_t len, got;
    int streamed_rc;
    struct renc_dest_sink dest;
    struct renc_blob_status sealst;
    char rel[8192];
    char tmp[sizeof ((struct renc_stage *)0)->tmp];
    struct renc_data_held buf; /* kept from entry to entry */
};

/* The archive reader's side of a restore: each entry becomes a staged,
 * sealed blob of the target (restore), or is only counted (check).  A
 * local target's entries are sealed by workers (common/workq.h); the stage
 * is only ever touched by the reading thread. */
struct renc_unpack {
    struct renc_data_ctx *c;
    const struct renc_env *target;
    int write;                     /* 0: count only (restore-check) */
    struct renc_stage *stage;      /* a local target's staged write */
    struct renc_data_dst *remote;  /* a target in blob storage, else NULL */
    struct renc_workq *q;          /* a local target's workers */
    struct renc_restore_slot *slots;
    unsigned window;
    struct renc_restore_slot *cur; /* the entry being read, NULL between entries */
    uint64_t entry_cap;            /* the most an entry held whole may be */
    int fail_rc;                   /* the first entry that failed in a worker: why */
    int write_rc;                  /* a destination's errno (the temporary in fail_tmp) */
    char fail_tmp[sizeof ((struct renc_stage *)0)->tmp];
    char rel[8192];
    const char *why;               /* a refused entry: why */
    int dest_rc;                   /* a destination's failure (stage->bad, ->tmp) */
    uint64_t entries, bytes;
};

static void renc_unpack_seal_opts(const struct renc_unpack *u, const char *name,
                                  const char **refs, struct renc_seal_opts *so)
{
    refs[0] = u->target->key_ref;
    *so = (struct renc_seal_opts){
        .env = u->target->id, .kind = "blob", .name = name, .key_refs = refs,
        .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
        .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
}

/* A worker's part of an entry: its plaintext, held whole, sealed into its
 * temporary (an entry sealed as it was read: that result). */
static int renc_unpack_work(void *arg, size_t i, unsigned slot)
{
    struct renc_unpack *u = arg;
    struct renc_restore_slot *s = &u->slots[slot];
    (void)i;
    if (!s->held)
        return s->streamed_rc;
    const char *refs[1];
    struct renc_seal_opts so;
    renc_unpack_seal_opts(u, s->rel + strlen("blobs/"), refs, &so);
    int rc = renc_data_dest_note(&s->dest, renc_sealer_new(&s->dest.sealer, u->c->ks, &so,
                                                           s->fd, s->len, &s->sealst));
    if (rc == 0)
        rc = renc_data_dest_write(&s->dest, s->buf.p, s->got);
    if (rc == 0)
        rc = renc_data_dest_note(&s->dest, renc_sealer_finish(s->dest.sealer));
    renc_sealer_free(s->dest.sealer);
    s->dest.sealer = NULL;
    return rc;
}

/* The reading thread's part after an entry, in order: its temporary joins
 * the stage's batch; the first failure is kept, and stops the restore. */
static int renc_unpack_done(void *arg, size_t i, unsigned slot, int rc, int stopped)
{
    struct renc_unpack *u = arg;
    struct renc_restore_slot *s = &u->slots[slot];
    (void)i;
    if (stopped) { /* the stage's cleanup removes the temporary */
        close(s->fd);
        return 0;
    }
    int rc2 = renc_data_dest_note(&s->dest, renc_stage_close(u->stage, s->fd));
    if (rc == 0 && rc2 == 0)
        return 0;
    u->fail_rc = rc ? rc : rc2;
    u->write_rc = s->dest.write_rc;
    memcpy(u->fail_tmp, s->tmp, sizeof u->fail_tmp);
    memcpy(u->rel, s->rel, sizeof u->rel);
    return 1;
}

static const struct renc_workq_ops renc_unpack_ops = {NULL, renc_unpack_work, renc_unpack_done};

/* A local entry begun: a free slot (older entries' results taken
 * meanwhile), its temporary, and where its plaintext goes. */
static int renc_unpack_begin_local(struct renc_unpack *u, const char *name, uint64_t size)
{
    unsigned slot;
    if (renc_workq_slot(u->q, &slot) != 0)
        return u->fail_rc; /* an earlier entry failed: that is why */
    struct renc_restore_slot *s = &u->slots[slot];
    memset(s, 0, offsetof(struct renc_restore_slot, rel));
    s->fd = -1;
    int rc = renc_stage_open(u->stage, u->rel, &s->fd);
    if (rc) {
        u->dest_rc = rc;
        return rc;
    }
    memcpy(s->rel, u->rel, sizeof s->rel);
    memcpy(s->tmp, u->stage->tmp, sizeof s->tmp);
    u->cur = s;
    if (size <= u->entry_cap) {
        s->len = size;
        s->held = 1;
        return renc_data_held_ready(&s->buf, size);
    }
    const char *refs[1];
    struct renc_seal_opts so;
    renc_unpack_seal_opts(u, name, refs, &so);
    return renc_data_dest_note(&s->dest, renc_sealer_new(&s->dest.sealer, u->c->ks, &so, s->fd,
                                                         size, &s->sealst));
}

static int renc_unpack_begin(void *arg, const char *name, uint64_t size)
{
    struct renc_unpack *u = arg;
    u->entries++;
    if (!u->write)
        return 0;
    if (snprintf(u->rel, sizeof u->rel, "blobs/%s", name) >= (int)sizeof u->rel)
        return -ENAMETOOLONG;
    const char *base = strrchr(u->rel, '/') + 1;
    if (renc_tmpname_reserved(base)) {
        u->why = "its name is reserved for the tool's temporary files (.NAME.renc-tmp.TAG)";
        return -RENC_E_BAD_ARCHIVE;
    }
    if (!u->remote)
        return renc_unpack_begin_local(u, name, size);
    const char *refs[1];
    struct renc_seal_opts so;
    renc_unpack_seal_opts(u, name, refs, &so);
    int rc = renc_data_dst_begin(u->remote, u->c->ks, &so, name, size);
    u->dest_rc = rc;
    return rc;
}

static int renc_unpack_data(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_unpack *u = arg;
    u->bytes += len;
    if (u->remote && u->remote->ss)
        return renc_data_dst_write(u->remote, buf, len);
    struct renc_restore_slot *s = u->cur;
    if (!s)
        return 0;
    if (!s->held)
        return renc_data_dest_write(&s->dest, buf, len);
    RENC_RETURN_IF(len > s->len - s->got, -RENC_E_BAD_ARCHIVE);
    memcpy(s->buf.p + s->got, buf, len);
    s->got += len;
    return 0;
}

static int renc_unpack_end(void *arg)
{
    struct renc_unpack *u = arg;
    if (u->remote && u->remote->ss)
        return renc_data_dst_end(u->remote);
    struct renc_restore_slot *s = u->cur;
    if (!s)
        return 0;
    if (s->dest.sealer) { /* sealed as read: finished here */
        s->streamed_rc = renc_data_dest_note(&s->dest, renc_sealer_finish(s->dest.sealer));
        renc_sealer_free(s->dest.sealer);
        s->dest.sealer = NULL;
    }
    u->cur = NULL;
    renc_workq_submit(u->q, (unsigned)(s - u->slots));
    return 0;
}

static int renc_archive_feed_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_archive_reader_feed(arg, buf, len);
}

/* An entry the reading stopped in: what it holds goes (its temporary
 * with the stage). */
static void renc_unpack_drop_cur(struct renc_unpack *u)
{
    struct renc_restore_slot *s = u->cur;
    if (!s)
        return;
    if (s->dest.write_rc && !u->write_rc) { /* writing it is what failed: blame it */
        u->write_rc = s->dest.write_rc;
        memcpy(u->fail_tmp, s->tmp, sizeof u->fail_tmp);
    }
    renc_sealer_free(s->dest.sealer);
    s->dest.sealer = NULL;
    if (s->fd >= 0)
        close(s->fd);
    u->cur = NULL;
}

/* Opens every record of the backup at fd and feeds its plaintext to the
 * archive reader; bs says what opening found.  A failure of an entry in a
 * worker is the reason when there is one (it is the earlier entry). */
static int renc_unpack_run(struct renc_unpack *u, int fd, struct renc_blob_status *bs)
{
    struct renc_archive_cb cb = {renc_unpack_begin, renc_unpack_data, renc_unpack_end, u};
    struct renc_archive_reader *r = NULL;
    int rc = renc_archive_reader_new(&r, &cb);
    if (rc == 0 && u->write && !u->remote) {
        unsigned threads;
        u->window = renc_data_window(u->c, u->target->key_ref, 0, &threads);
        u->entry_cap = renc_data_held_max(u->c, u->window);
        u->slots = renc_calloc(u->window, sizeof *u->slots);
        rc = u->slots ? renc_workq_new(&u->q, threads, u->window, &renc_unpack_ops, u)
                      : -RENC_E_NOMEM;
    }
    if (rc == 0)
        rc = renc_blob_open_to(u->c->ks, fd, renc_archive_feed_sink, r, NULL, bs);
    if (rc == 0)
        rc = renc_archive_reader_finish(r, NULL, NULL);
    renc_archive_reader_free(r);
    renc_unpack_drop_cur(u);
    renc_workq_finish(u->q, rc ? 1 : 0);
    u->q = NULL;
    for (unsigned k = 0; u->slots && k < u->window; k++)
        renc_data_held_free(&u->slots[k].buf);
    renc_free(u->slots);
    u->slots = NULL;
    if (u->fail_rc) {
        u->why = NULL;
        u->dest_rc = 0;
        rc = u->fail_rc;
    }
    return rc;
}

/* The backup a restore reads: a local file (fd, open from the rule's
 * check to the last record, so both see one file), or a blob named by its
 * URL (read by ranges of the version its header came from). */
struct renc_backup_src {
    const char *path;
    int fd;
    struct renc_store_creds *creds;
    struct renc_store *store;
    struct renc_scan_item it;
    struct renc_store_stream *stream;
};

/* The backup's header: from its file (rewound after) or by ranges. */
static int renc_backup_src_header(struct renc_data_ctx *c, struct renc_backup_src *b,
                                  struct renc_header *h)
{
    if (!renc_store_is_url(b->path)) {
        b->fd = open(b->path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        int rc = b->fd < 0 ? -errno : fstat(b->fd, &st) != 0 ? -errno
                             : S_ISREG(st.st_mode) ? 0 : -EISDIR;
        if (rc == 0)
            rc = renc_blob_read_header(b->fd, h, NULL);
        if (rc == 0 && lseek(b->fd, 0, SEEK_SET) != 0)
            rc = -errno;
        return rc;
    }
    char why[512] = "";
    b->creds = renc_malloc(sizeof *b->creds);
    int rc = b->creds ? renc_store_creds_from(&c->a.g, b->creds) : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_store_open_one(&b->store, &b->it, b->path, &b->creds->blob, 0, why,
                                 sizeof why);
    int bad = 0;
    if (rc == 0)
        rc = renc_store_read_header(b->store, &b->it, h, &bad);
    if (rc && why[0])
        renc_err(c->cmd, "%s", why);
    return rc;
}

/* The backup's bytes, in order, from its start. */
static int renc_backup_src_read(struct renc_backup_src *b, int *fd)
{
    if (!b->store) {
        *fd = b->fd;
        return 0;
    }
    return renc_store_stream_open(&b->stream, b->store, &b->it, fd);
}

/* Reading ends: the stream's own failure is the reason when there is one. */
static int renc_backup_src_done(struct renc_backup_src *b, int rc)
{
    int fill = renc_store_stream_end(b->stream);
    b->stream = NULL;
    return rc && fill ? fill : rc ? rc : fill;
}

static void renc_backup_src_cleanup(struct renc_backup_src *b)
{
    renc_store_stream_end(b->stream);
    if (b->fd >= 0)
        close(b->fd);
    if (b->store)
        renc_store_one_cleanup(&b->it);
    renc_store_free(b->store);
    renc_free(b->creds);
}

/* The restore rule for backup b into target.  Returns -1 to go on, or an
 * exit. */
static int renc_restore_judge(struct renc_data_ctx *c, struct renc_backup_src *b,
                              struct renc_env *target, struct renc_check_result *r)
{
    struct renc_header h;
    memset(&h, 0, sizeof h);
    int rc = renc_backup_src_header(c, b, &h);
    if (rc) {
        char q[4200];
        renc_store_name_clean(b->path, q, sizeof q);
        renc_err(c->cmd, "%s: %s", q, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    char why[1024] = "";
    rc = renc_envctl_ready(c->cat, c->ks, c->a.target, target, NULL, 0, why, sizeof why);
    if (rc && rc != -RENC_E_ENV_LOCKED) {
        renc_header_cleanup(&h);
        renc_err(c->cmd, "%s", why[0] ? why : renc_strerror(rc));
        return renc_exit_for(rc);
    }
    const char *src_id = renc_context_get(&h.ctx, "source-env");
    struct renc_env source;
    int have_source = src_id && renc_catalog_get(c->cat, src_id, &source) == 0;
    renc_rule_restore(&r->verdict, &h, have_source ? &source : NULL, target);
    renc_header_cleanup(&h);
    return -1;
}

/* What a restore holds while it runs. */
struct renc_restore {
    struct renc_data_ctx c;
    int check, remote; /* remote: the target's data is in blob storage */
    struct renc_backup_src b;
    struct renc_env target;
    struct renc_check_result *r;
    struct renc_stage stage;
    struct renc_data_dst dst;
    struct renc_data_text request;
    char held[2048], shown[4200]; /* shown: the backup's name, without a SAS */
};

/* After the unpack failed: what stopped it, and that nothing is in. */
static int renc_restore_failed(struct renc_restore *x, struct renc_unpack *u, int rc,
                               const struct renc_blob_status *bs)
{
    const char *cmd = x->c.cmd;
    if (x->remote && (u->dest_rc || x->dst.write_rc))
        renc_err(cmd, "%s/%s: %s", renc_data_dst_where(&x->dst), u->rel + strlen("blobs/"),
                 renc_strerror(rc));
    else if (u->dest_rc)
        renc_data_dest_err(&x->c, &x->stage, u->rel, u->dest_rc);
    else if (u->write_rc)
        renc_err(cmd, "writing %s: %s", u->fail_tmp, renc_strerror(u->write_rc));
    else if (u->why)
        renc_err(cmd, "%s: entry %s: %s", x->shown, u->rel + strlen("blobs/"), u->why);
    else
        renc_blob_err(cmd, x->shown, rc, bs);
    renc_err(cmd, "nothing was restored into %s", x->target.id);
    int dest = u->dest_rc || u->write_rc || (x->remote && x->dst.write_rc);
    return dest ? RENC_EXIT_FAILED : renc_exit_for(rc);
}

/* The restored blobs made visible: the local stage's commit point, or
 * each blob's own in blob storage (then noted in the catalog). */
static int renc_restore_commit(struct renc_restore *x, const struct renc_unpack *u,
                               const struct renc_blob_status *bs)
{
    char current[RENC_MAX_REF_LEN + 1] = "", detail[1024];
    renc_keystore_resolve(x->c.ks, current, sizeof current, x->target.key_ref);
    renc_textf(detail, sizeof detail, "%s: %llu blobs, %llu bytes, opened with %s", x->shown,
               (unsigned long long)u->entries, (unsigned long long)u->bytes, bs->ref);
    struct renc_stage_note note = {x->target.id, "restore", detail};
    int rc = x->remote ? renc_data_dst_commit(&x->c, &x->dst)
                       : renc_stage_commit(&x->stage, &note, 1);
    if (rc && !x->remote) {
        renc_data_commit_err(&x->c, &x->stage, rc);
        renc_err(x->c.cmd, "nothing was restored into %s", x->target.id);
    }
    if (rc)
        return RENC_EXIT_FAILED;
    if (x->remote && (rc = renc_catalog_note(x->c.cat, x->target.id, "restore", detail)))
        renc_err(x->c.cmd, "catalog: %s: %s", x->target.id, renc_strerror(rc));
    printf("restore: %s -> %s: %llu blobs (%llu bytes) restored, opened with %s, sealed "
           "under %s (%s)\n",
           x->shown, x->target.id, (unsigned long long)u->entries,
           (unsigned long long)u->bytes, bs->ref, current, x->r->verdict.reason);
    return RENC_EXIT_OK;
}

/* Opens every record of the backup; a restore seals each entry into the
 * target and commits, a check reports.  Returns an exit. */
static int renc_restore_unpack(struct renc_restore *x)
{
    struct renc_unpack u = {.c = &x->c, .target = &x->target, .write = !x->check,
                            .stage = &x->stage, .remote = x->remote ? &x->dst : NULL};
    struct renc_blob_status bs;
    memset(&bs, 0, sizeof bs);
    int fd = -1;
    int rc = renc_backup_src_read(&x->b, &fd);
    if (rc == 0)
        rc = renc_unpack_run(&u, fd, &bs);
    rc = renc_backup_src_done(&x->b, rc);
    x->r->entries = u.entries;
    x->r->bytes = u.bytes;
    if (x->check) {
        renc_data_check_validation(x->r, rc, &bs, x->shown, x->held);
        return renc_data_check_print(x->c.cmd, x->shown, x->c.a.json, x->r);
    }
    return rc ? renc_restore_failed(x, &u, rc, &bs) : renc_restore_commit(x, &u, &bs);
}

/* The target's writing side: a local one locked, settled and staged; one
 * in blob storage opened.  Returns -1 to go on, or an exit. */
static int renc_restore_prepare(struct renc_restore *x)
{
    int status, same = 0;
    const char *id = x->target.id;
    if (x->remote)
        return renc_data_dst_open(&x->c, &x->target, &x->dst);
    if ((status = renc_data_lock(&x->c, id)) >= 0 ||
        (status = renc_data_settle(&x->c, id, x->c.cmd, x->request.p, &same)) >= 0)
        return status;
    if (same) {
        printf("restore: the interrupted restore was this one: nothing more to do\n");
        return RENC_EXIT_OK;
    }
    return renc_data_stage_begin(&x->c, &x->stage, id, x->request.p);
}

/* The backup's identity in a local target's stage record: its real path,
 * size and time, or its URL and ETag: tells a rerun. */
static void renc_restore_request(struct renc_restore *x)
{
    char real[PATH_MAX];
    renc_data_text_add(&x->request, "backup");
    if (x->b.store)
        renc_data_text_add(&x->request, "\t%s\t%llu\t%s\n", x->shown,
                           (unsigned long long)x->b.it.size, x->b.it.etag ? x->b.it.etag : "");
    else
        renc_data_text_file(&x->request, realpath(x->b.path, real) ? real : x->b.path);
}

static int renc_restore_common(int argc, char **argv, int check)
{
    struct renc_restore x = {.c = {.cmd = check ? "restore-check" : "restore"}, .check = check};
    const char *usage = check ? renc_restore_check_usage : renc_restore_usage;
    int status = renc_data_parse(&x.c, usage, argc, argv);
    if (status >= 0)
        return status;
    if (x.c.a.arg_count != 1 || !x.c.a.target || (!check && x.c.a.json)) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    x.b.path = x.c.a.args[0];
    x.b.fd = -1;
    renc_store_name_clean(x.b.path, x.shown, sizeof x.shown);
    x.r = renc_calloc(1, sizeof *x.r);
    renc_stage_init(&x.stage, 1);
    if (!x.r) {
        renc_err(x.c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    if ((status = renc_data_open(&x.c)) >= 0 ||
        (status = renc_restore_judge(&x.c, &x.b, &x.target, x.r)) >= 0)
        goto out;
    renc_restore_request(&x);
    x.remote = !check && x.target.data_root[0];
    if (x.request.rc) {
        renc_err(x.c.cmd, "%s", renc_strerror(x.request.rc));
        status = RENC_EXIT_FAILED;
    } else if (!check && !x.r->verdict.allowed) {
        renc_err(x.c.cmd, "%s -> %s: refused: %s", x.shown, x.c.a.target, x.r->verdict.reason);
        status = RENC_EXIT_FAILED;
    } else if (x.r->verdict.rc == -RENC_E_ENV_LOCKED) {
        renc_textf(x.r->detail, sizeof x.r->detail, "the target is locked: nothing is read");
        status = renc_data_check_print(x.c.cmd, x.shown, x.c.a.json, x.r);
    } else if ((status = renc_data_hold_keys(&x.c, x.target.id, x.held, sizeof x.held)) < 0 &&
               (check || (status = renc_restore_prepare(&x)) < 0)) {
        status = renc_restore_unpack(&x);
    }
out:
    if (x.remote)
        renc_data_dst_close(&x.dst);
    renc_backup_src_cleanup(&x.b);
    renc_stage_cleanup(&x.stage);
    renc_free(x.r);
    renc_free(x.request.p);
    renc_data_close(&x.c);
    return status;
}

int renc_cmd_restore(int argc, char **argv)
{
    return renc_restore_common(argc, argv, 0);
}

int renc_cmd_restore_check(int argc, char **argv)
{
    return renc_restore_common(argc, argv, 1);
}
