/* reencrypt restore | restore-check — a backup into an environment, when
 * the restore rule allows it (docs/ENVIRONMENTS.md); shared helpers in
 * cmd_data.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
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

static const char renc_restore_usage[] =
    "usage: reencrypt restore BACKUP --target ID\n"
    "restores a backup's blobs into DATA/ID/blobs/ (same names replaced), sealed under the\n"
    "target's policy key, when the restore rule allows it.\n";
static const char renc_restore_check_usage[] =
    "usage: reencrypt restore-check BACKUP --target ID [--json]\n"
    "says whether the backup may be restored into ID and why, and opens every record of it\n"
    "with the keys ID holds; writes nothing.\n";

/* The archive reader's side of a restore: each entry becomes a staged,
 * sealed blob of the target (restore), or is only counted (check). */
struct renc_unpack {
    struct renc_data_ctx *c;
    const struct renc_env *target;
    int write;                     /* 0: count only (restore-check) */
    struct renc_stage *stage;
    struct renc_dest_sink dest;
    int fd;
    struct renc_blob_status sealst;
    char rel[8192];
    const char *why;               /* a refused entry: why */
    int dest_rc;                   /* a destination's failure (stage->bad, ->tmp) */
    uint64_t entries, bytes;
};

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
    int rc = renc_stage_open(u->stage, u->rel, &u->fd);
    if (rc) {
        u->dest_rc = rc;
        return rc;
    }
    const char *refs[] = {u->target->key_ref};
    struct renc_seal_opts so = {
        .env = u->target->id, .kind = "blob", .name = name, .key_refs = refs,
        .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
        .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    return renc_data_dest_note(&u->dest,
                               renc_sealer_new(&u->dest.sealer, u->c->ks, &so, u->fd, size, &u->sealst));
}

static int renc_unpack_data(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_unpack *u = arg;
    u->bytes += len;
    return u->dest.sealer ? renc_data_dest_write(&u->dest, buf, len) : 0;
}

static int renc_unpack_end(void *arg)
{
    struct renc_unpack *u = arg;
    if (!u->dest.sealer)
        return 0;
    int rc = renc_data_dest_note(&u->dest, renc_sealer_finish(u->dest.sealer));
    renc_sealer_free(u->dest.sealer);
    u->dest.sealer = NULL;
    int rc2 = renc_data_dest_note(&u->dest, renc_stage_close(u->stage, u->fd));
    u->fd = -1;
    return rc ? rc : rc2;
}

static int renc_archive_feed_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_archive_reader_feed(arg, buf, len);
}

/* Opens every record of the backup at fd and feeds its plaintext to the
 * archive reader; *opened_by gets the ref of the slot that opened it. */
static int renc_unpack_run(struct renc_unpack *u, int fd, struct renc_blob_status *bs)
{
    struct renc_archive_cb cb = {renc_unpack_begin, renc_unpack_data, renc_unpack_end, u};
    struct renc_archive_reader *r = NULL;
    u->fd = -1;
    int rc = renc_archive_reader_new(&r, &cb);
    if (rc == 0)
        rc = renc_blob_open_to(u->c->ks, fd, renc_archive_feed_sink, r, NULL, bs);
    if (rc == 0)
        rc = renc_archive_reader_finish(r, NULL, NULL);
    renc_archive_reader_free(r);
    renc_sealer_free(u->dest.sealer);
    u->dest.sealer = NULL;
    if (u->fd >= 0)
        close(u->fd);
    return rc;
}

/* The restore rule for the backup at path into target.  Returns -1 to go
 * on, or an exit; *fd is the open backup, at offset 0. */
static int renc_restore_judge(struct renc_data_ctx *c, const char *path, struct renc_env *target,
                              struct renc_check_result *r, int *fd)
{
    struct renc_header h;
    memset(&h, 0, sizeof h);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = *fd < 0 ? -errno : fstat(*fd, &st) != 0 ? -errno
                              : S_ISREG(st.st_mode) ? 0 : -EISDIR;
    if (rc == 0)
        rc = renc_blob_read_header(*fd, &h, NULL);
    if (rc == 0 && lseek(*fd, 0, SEEK_SET) != 0)
        rc = -errno;
    if (rc) {
        renc_err(c->cmd, "%s: %s", path, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    char why[1024] = "";
    rc = renc_envctl_ready(c->cat, c->ks, c->a.target, target, NULL, 0, why, sizeof why);
    if (rc && rc != -RENC_E_ENV_LOCKED) {
        renc_header_cleanup(&h);
        renc_err(c->cmd, "%s", why[0] ? why : renc_strerror(rc));
        return renc_exit_for(rc);
    }
    int status = renc_data_local(c, target);
    if (status >= 0) {
        renc_header_cleanup(&h);
        return status;
    }
    const char *src_id = renc_context_get(&h.ctx, "source-env");
    struct renc_env source;
    int have_source = src_id && renc_catalog_get(c->cat, src_id, &source) == 0;
    renc_rule_restore(&r->verdict, &h, have_source ? &source : NULL, target);
    renc_header_cleanup(&h);
    return -1;
}

static int renc_restore_common(int argc, char **argv, int check)
{
    /* A check writes nothing into the target: its data may be anywhere. */
    struct renc_data_ctx c = {.cmd = check ? "restore-check" : "restore", .remote_ok = check};
    const char *usage = check ? renc_restore_check_usage : renc_restore_usage;
    int status = renc_data_parse(&c, usage, argc, argv);
    if (status >= 0)
        return status;
    if (c.a.arg_count != 1 || !c.a.target || (!check && c.a.json)) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    const char *path = c.a.args[0];
    struct renc_env target;
    struct renc_check_result *r = renc_calloc(1, sizeof *r);
    struct renc_stage stage;
    renc_stage_init(&stage, 1);
    int fd = -1, same = 0;
    char held[2048] = "", real[PATH_MAX];
    /* The backup, by its real path, size and time: tells a rerun. */
    struct renc_data_text request = {0};
    renc_data_text_add(&request, "backup");
    renc_data_text_file(&request, realpath(path, real) ? real : path);
    if (!r || request.rc) {
        renc_err(c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        renc_free(r);
        renc_free(request.p);
        return RENC_EXIT_FAILED;
    }
    if ((status = renc_data_open(&c)) >= 0 ||
        (status = renc_restore_judge(&c, path, &target, r, &fd)) >= 0)
        goto out;
    if (!check && !r->verdict.allowed) {
        renc_err(c.cmd, "%s -> %s: refused: %s", path, c.a.target, r->verdict.reason);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    if (r->verdict.rc == -RENC_E_ENV_LOCKED) {
        renc_textf(r->detail, sizeof r->detail, "the target is locked: nothing is read");
        status = renc_data_check_print(c.cmd, path, c.a.json, r);
        goto out;
    }
    if ((status = renc_data_hold_keys(&c, target.id, held, sizeof held)) >= 0)
        goto out;
    if (!check && ((status = renc_data_lock(&c, target.id)) >= 0 ||
                   (status = renc_data_settle(&c, target.id, c.cmd, request.p, &same)) >= 0))
        goto out;
    if (same) {
        printf("restore: the interrupted restore was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if (!check && (status = renc_data_stage_begin(&c, &stage, target.id, request.p)) >= 0)
        goto out;
    struct renc_unpack u = {.c = &c, .target = &target, .write = !check, .stage = &stage};
    struct renc_blob_status bs;
    int rc = renc_unpack_run(&u, fd, &bs);
    r->entries = u.entries;
    r->bytes = u.bytes;
    if (check) {
        renc_data_check_validation(r, rc, &bs, path, held);
        status = renc_data_check_print(c.cmd, path, c.a.json, r);
        goto out;
    }
    if (rc) {
        if (u.dest_rc)
            renc_data_dest_err(&c, &stage, u.rel, u.dest_rc);
        else if (u.dest.write_rc)
            renc_err(c.cmd, "writing %s: %s", stage.tmp, renc_strerror(u.dest.write_rc));
        else if (u.why)
            renc_err(c.cmd, "%s: entry %s: %s", path, u.rel + strlen("blobs/"), u.why);
        else
            renc_blob_err(c.cmd, path, rc, &bs);
        renc_err(c.cmd, "nothing was restored into %s", target.id);
        status = u.dest_rc || u.dest.write_rc ? RENC_EXIT_FAILED : renc_exit_for(rc);
        goto out;
    }
    char current[RENC_MAX_REF_LEN + 1] = "", detail[1024];
    renc_keystore_resolve(c.ks, current, sizeof current, target.key_ref);
    renc_textf(detail, sizeof detail, "%s: %llu blobs, %llu bytes, opened with %s", path,
             (unsigned long long)u.entries, (unsigned long long)u.bytes, bs.ref);
    struct renc_stage_note note = {target.id, "restore", detail};
    if ((rc = renc_stage_commit(&stage, &note, 1))) {
        renc_data_commit_err(&c, &stage, rc);
        renc_err(c.cmd, "nothing was restored into %s", target.id);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    printf("restore: %s -> %s: %llu blobs (%llu bytes) restored, opened with %s, sealed "
           "under %s (%s)\n",
           path, target.id, (unsigned long long)u.entries, (unsigned long long)u.bytes, bs.ref,
           current, r->verdict.reason);
    status = RENC_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    renc_stage_cleanup(&stage);
    renc_free(r);
    renc_free(request.p);
    renc_data_close(&c);
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
