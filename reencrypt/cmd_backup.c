/* reencrypt backup create — one sealed archive of an environment's blobs
 * (docs/ENVIRONMENTS.md); shared helpers in cmd_data.c.  The plaintext goes
 * from each opened blob straight into the archive writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/keyref.h"
#include "env/archive.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "store/scan.h"
#include "run/session.h"
#include "reencrypt/stage.h"

#define RENC_BACKUP_COMPRESS_LEVEL 3

static const char renc_backup_usage[] =
    "usage: reencrypt backup create --env ID [--name NAME]\n"
    "writes one backup of the environment's blobs to DATA/ID/backups/NAME (default\n"
    "backup-<UTC time>.renc), sealed under its policy key.\n";

static int renc_archive_data_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_archive_entry_data(arg, buf, len);
}

/* The plaintext length of a blob: from its header, or by opening it when
 * the header does not say. */
static int renc_blob_plain_len(struct renc_keystore *ks, int fd, uint64_t *len,
                               struct renc_blob_status *bs)
{
    struct renc_header h;
    memset(&h, 0, sizeof h);
    memset(bs, 0, sizeof *bs);
    bs->slot = -1;
    int rc = renc_blob_read_header(fd, &h, NULL);
    if (rc == 0 && h.plaintext_len != RENC_PLAINTEXT_UNKNOWN) {
        *len = h.plaintext_len;
    } else if (rc == 0) {
        if (lseek(fd, 0, SEEK_SET) != 0)
            rc = -errno;
        else if ((rc = renc_blob_open_to(ks, fd, NULL, NULL, NULL, bs)) == 0)
            *len = bs->plaintext_bytes;
    }
    renc_header_cleanup(&h);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = -errno;
    return rc;
}

/* The backup's name: --name, or one made of the UTC time.  Returns -1 to
 * go on, or an exit. */
static int renc_backup_name(const struct renc_data_ctx *c, char *name, size_t max)
{
    if (c->a.name) {
        if (!renc_env_id_valid(c->a.name)) {
            renc_err(c->cmd, "--name '%s': 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'",
                     c->a.name);
            return RENC_EXIT_USAGE;
        }
        snprintf(name, max, "%s", c->a.name);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(name, max, "backup-%Y%m%dT%H%M%SZ.renc", &tm);
    }
    return -1;
}

/* The archive's length is known before it is written: each blob's
 * plaintext length (lens) comes from its header.  Returns -1 to go on, or
 * an exit. */
static int renc_backup_lengths(struct renc_data_ctx *c, const struct renc_scan *scan,
                               uint64_t *lens, uint64_t *total)
{
    struct renc_blob_status bs;
    *total = 8 + 17;
    for (size_t i = 0; i < scan->count; i++) {
        int fd = open(scan->items[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int rc = fd < 0 ? -errno : renc_blob_plain_len(c->ks, fd, &lens[i], &bs);
        if (fd >= 0)
            close(fd);
        if (rc) {
            renc_blob_err(c->cmd, scan->items[i].path, rc, &bs);
            return RENC_EXIT_FAILED;
        }
        *total += 1 + 2 + strlen(scan->items[i].rel) + 8 + lens[i];
    }
    return -1;
}

/* Opens every blob into archive writer w, one entry each.  Returns -1 to
 * go on, or an exit. */
static int renc_backup_entries(struct renc_data_ctx *c, struct renc_archive_writer *w,
                               const struct renc_scan *scan, const uint64_t *lens,
                               const struct renc_dest_sink *dest, const struct renc_stage *stage)
{
    struct renc_blob_status bs;
    for (size_t i = 0; i < scan->count; i++) {
        const char *path = scan->items[i].path;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int rc = fd < 0 ? -errno : renc_archive_entry_begin(w, scan->items[i].rel, lens[i]);
        memset(&bs, 0, sizeof bs);
        bs.slot = -1;
        if (rc == 0)
            rc = renc_blob_open_to(c->ks, fd, renc_archive_data_sink, w, NULL, &bs);
        if (rc == 0)
            rc = renc_archive_entry_end(w);
        if (fd >= 0)
            close(fd);
        if (rc && dest->write_rc) {
            renc_err(c->cmd, "writing %s: %s; no backup is made", stage->tmp,
                     renc_strerror(dest->write_rc));
            return RENC_EXIT_FAILED;
        }
        if (rc) {
            if (rc == -RENC_E_INVALID)
                renc_err(c->cmd, "%s: its name cannot go in a backup (not UTF-8, or too long)",
                         path);
            else if (rc == -RENC_E_LENGTH_MISMATCH)
                renc_err(c->cmd, "%s: changed while the backup was taken", path);
            else
                renc_blob_err(c->cmd, path, rc, &bs);
            return RENC_EXIT_FAILED;
        }
    }
    return -1;
}

/* What was made, and what was left out. */
static void renc_backup_say(const char *final, uint64_t entries, uint64_t bytes,
                            const struct renc_env *env, const char *current,
                            const struct renc_scan *scan)
{
    char size[32];
    struct stat st;
    renc_bytes_text(size, sizeof size, stat(final, &st) == 0 ? (uint64_t)st.st_size : 0);
    printf("backup create: %s: %llu blobs (%llu bytes) of %s, sealed under %s, %s on disk\n",
           final, (unsigned long long)entries, (unsigned long long)bytes, env->id, current, size);
    if (scan->skipped_special)
        printf("backup create: %llu symbolic links or special files in %s are never followed: "
               "left out\n", (unsigned long long)scan->skipped_special, env->id);
    if (scan->temp_count)
        printf("backup create: %zu temporary files (.NAME.renc-tmp.TAG) in %s are not data: "
               "left out\n", scan->temp_count, env->id);
}

int renc_cmd_backup(int argc, char **argv)
{
    struct renc_data_ctx c = {.cmd = "backup create"};
    int status = renc_data_parse(&c, renc_backup_usage, argc, argv);
    if (status >= 0)
        return status;
    if (c.a.arg_count != 1 || strcmp(c.a.args[0], "create") != 0 || !c.a.env) {
        fputs(renc_backup_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    char name[128];
    if ((status = renc_backup_name(&c, name, sizeof name)) >= 0)
        return status;
    struct renc_env env;
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    struct renc_stage stage;
    renc_stage_init(&stage, 0);
    struct renc_dest_sink dest = {0};
    struct renc_archive_writer *w = NULL;
    uint64_t *lens = NULL;
    int out_fd = -1, rc = 0, same = 0;
    char current[RENC_MAX_REF_LEN + 1], final[8192], rel[256], request[256] = "";
    /* A rerun of a named backup is the same request; an unnamed one makes
     * a new backup (a new name) whatever was interrupted. */
    if (c.a.name)
        snprintf(request, sizeof request, "name=%s", name);
    if ((status = renc_data_open(&c)) >= 0 ||
        (status = renc_data_ready(&c, c.a.env, &env, current, sizeof current)) >= 0 ||
        (status = renc_data_lock(&c, c.a.env)) >= 0 ||
        (status = renc_data_settle(&c, c.a.env, c.cmd, request, &same)) >= 0)
        goto out;
    if (same) {
        printf("backup create: the interrupted backup was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if ((status = renc_data_scan_blobs(&c, c.a.env, &scan)) >= 0)
        goto out;
    status = RENC_EXIT_FAILED;
    lens = renc_calloc(scan.count ? scan.count : 1, sizeof *lens);
    if (!lens) {
        renc_err(c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        goto out;
    }
    uint64_t total;
    if ((status = renc_backup_lengths(&c, &scan, lens, &total)) >= 0)
        goto out;
    snprintf(rel, sizeof rel, "backups/%s", name);
    if ((status = renc_data_stage_begin(&c, &stage, env.id, request)) >= 0)
        goto out;
    status = RENC_EXIT_FAILED;
    snprintf(final, sizeof final, "%s/%s", stage.root, rel);
    if ((rc = renc_stage_open(&stage, rel, &out_fd))) {
        renc_data_dest_err(&c, &stage, rel, rc);
        goto out;
    }
    const char *refs[] = {env.key_ref};
    struct renc_seal_opts so = {
        .env = env.id, .kind = "backup", .name = name, .source_env = env.id,
        .key_refs = refs, .key_ref_count = 1, .compress_level = RENC_BACKUP_COMPRESS_LEVEL,
        .seg_shift = RENC_SEG_SHIFT_DEFAULT, .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    struct renc_blob_status sealst;
    if ((rc = renc_data_dest_note(&dest, renc_sealer_new(&dest.sealer, c.ks, &so, out_fd, total,
                                                         &sealst))) ||
        (rc = renc_archive_writer_new(&w, renc_data_dest_write, &dest))) {
        renc_blob_err(c.cmd, dest.write_rc ? stage.tmp : final, rc, &sealst);
        goto out;
    }
    if ((status = renc_backup_entries(&c, w, &scan, lens, &dest, &stage)) >= 0)
        goto out;
    status = RENC_EXIT_FAILED;
    uint64_t entries = 0, bytes = 0;
    if ((rc = renc_archive_writer_finish(w, &entries, &bytes)) ||
        (rc = renc_data_dest_note(&dest, renc_sealer_finish(dest.sealer)))) {
        if (dest.write_rc)
            renc_err(c.cmd, "writing %s: %s; no backup is made", stage.tmp, renc_strerror(rc));
        else
            renc_blob_err(c.cmd, final, rc, &sealst);
        goto out;
    }
    rc = renc_stage_close(&stage, out_fd);
    out_fd = -1;
    if (rc) {
        renc_err(c.cmd, "writing %s: %s; no backup is made", stage.tmp, renc_strerror(rc));
        goto out;
    }
    char detail[512];
    renc_textf(detail, sizeof detail, "%s: %llu blobs, %llu bytes, under %s", name,
               (unsigned long long)entries, (unsigned long long)bytes, current);
    struct renc_stage_note note = {env.id, "backup", detail};
    if ((rc = renc_stage_commit(&stage, &note, 1))) {
        renc_data_commit_err(&c, &stage, rc);
        goto out;
    }
    renc_backup_say(final, entries, bytes, &env, current, &scan);
    status = RENC_EXIT_OK;
out:
    if (out_fd >= 0)
        close(out_fd);
    renc_archive_writer_free(w);
    renc_sealer_free(dest.sealer);
    renc_stage_cleanup(&stage);
    renc_free(lens);
    renc_scan_cleanup(&scan);
    renc_data_close(&c);
    return status;
}
