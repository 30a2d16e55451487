/* reencrypt backup create — one sealed archive of an environment's blobs
 * (docs/ENVIRONMENTS.md); shared helpers in cmd_data.c.  The plaintext goes
 * from each opened blob straight into the archive writer.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/workq.h"
#include "keys/keyref.h"
#include "env/archive.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "env/envdata.h"
#include "store/one.h"
#include "store/scan.h"
#include "store/store.h"
#include "run/session.h"
#include "reencrypt/stage.h"

#define RENC_BACKUP_COMPRESS_LEVEL 3

static const char renc_backup_usage[] =
    "usage: reencrypt backup create --env ID [--name NAME] [--threads N] [--memory BYTES]\n"
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

/* One blob in flight: its plaintext opened whole by a worker (buf), or,
 * bigger than a slot's share of --memory, left to the writing thread to
 * stream into the archive. */
struct renc_backup_slot {
    int held;          /* 1: the plaintext is in buf */
    uint64_t len, got; /* len: the header's plaintext length, the most kept */
    struct renc_blob_status bs;
    struct renc_data_held buf; /* kept from blob to blob */
};

/* What backup's workers share. */
struct renc_backup_run {
    struct renc_data_ctx *c;
    struct renc_archive_writer *w;
    const struct renc_scan *scan;
    const uint64_t *lens;
    const struct renc_dest_sink *dest;
    const struct renc_stage *stage;
    struct renc_backup_slot *slots;
    uint64_t cap;
};

static int renc_backup_buf_sink(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_backup_slot *s = arg;
    RENC_RETURN_IF(len > s->len - s->got, -RENC_E_LENGTH_MISMATCH); /* changed since */
    memcpy(s->buf.p + s->got, buf, len);
    s->got += len;
    return 0;
}

static int renc_backup_prep(void *arg, size_t i, unsigned slot)
{
    struct renc_backup_run *b = arg;
    struct renc_backup_slot *s = &b->slots[slot];
    (void)i;
    memset(s, 0, offsetof(struct renc_backup_slot, buf));
    s->bs.slot = -1;
    return 0;
}

/* A worker's part: blob i opened (every record verified) into memory,
 * when it fits its share; its header's length bounds what is kept. */
static int renc_backup_work(void *arg, size_t i, unsigned slot)
{
    struct renc_backup_run *b = arg;
    struct renc_backup_slot *s = &b->slots[slot];
    if (b->lens[i] > b->cap)
        return 0; /* streamed by the writing thread */
    int fd = open(b->scan->items[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = fd < 0 ? -errno : renc_data_held_ready(&s->buf, b->lens[i]);
    s->held = 1;
    s->len = b->lens[i];
    if (rc == 0)
        rc = renc_blob_open_to(b->c->ks, fd, renc_backup_buf_sink, s, NULL, &s->bs);
    if (rc == 0 && s->got != b->lens[i])
        rc = -RENC_E_LENGTH_MISMATCH;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Blob i into the archive as one entry, from memory or streamed. */
static int renc_backup_entry(struct renc_backup_run *b, size_t i, struct renc_backup_slot *s)
{
    int rc = renc_archive_entry_begin(b->w, b->scan->items[i].rel, b->lens[i]);
    if (rc == 0 && s->held && s->got)
        rc = renc_archive_entry_data(b->w, s->buf.p, s->got);
    if (rc == 0 && !s->held) {
        int fd = open(b->scan->items[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno
                    : renc_blob_open_to(b->c->ks, fd, renc_archive_data_sink, b->w, NULL, &s->bs);
        if (fd >= 0)
            close(fd);
    }
    return rc ? rc : renc_archive_entry_end(b->w);
}

/* The writing thread's part, in order: blob i into the archive; a failure
 * says which blob and stops the backup. */
static int renc_backup_done(void *arg, size_t i, unsigned slot, int rc, int stopped)
{
    struct renc_backup_run *b = arg;
    struct renc_backup_slot *s = &b->slots[slot];
    const char *path = b->scan->items[i].path;
    if (rc == 0 && !stopped)
        rc = renc_backup_entry(b, i, s);
    if (stopped || rc == 0)
        return 0;
    if (b->dest->write_rc)
        renc_err(b->c->cmd, "writing %s: %s; no backup is made", b->stage->tmp,
                 renc_strerror(b->dest->write_rc));
    else if (rc == -RENC_E_INVALID)
        renc_err(b->c->cmd, "%s: its name cannot go in a backup (not UTF-8, or too long)", path);
    else if (rc == -RENC_E_LENGTH_MISMATCH)
        renc_err(b->c->cmd, "%s: changed while the backup was taken", path);
    else
        renc_blob_err(b->c->cmd, path, rc, &s->bs);
    return RENC_EXIT_FAILED;
}

/* Opens every blob into archive writer w, one entry each, in order; the
 * opening on the workers (more of them when key_ref, the environment's
 * key, is a key vault's).  Returns -1 to go on, or an exit. */
static int renc_backup_entries(struct renc_data_ctx *c, const char *key_ref,
                               struct renc_archive_writer *w,
                               const struct renc_scan *scan, const uint64_t *lens,
                               const struct renc_dest_sink *dest, const struct renc_stage *stage)
{
    unsigned threads, window = renc_data_window(c, key_ref, 0, &threads);
    struct renc_backup_run b = {.c = c, .w = w, .scan = scan, .lens = lens, .dest = dest,
                                .stage = stage, .cap = renc_data_held_max(c, window),
                                .slots = renc_calloc(window, sizeof *b.slots)};
    if (!b.slots) {
        renc_err(c->cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    static const struct renc_workq_ops ops = {renc_backup_prep, renc_backup_work,
                                              renc_backup_done};
    int stop = renc_workq_run(scan->count, threads, window, &ops, &b);
    for (unsigned k = 0; k < window; k++)
        renc_data_held_free(&b.slots[k].buf);
    renc_free(b.slots);
    return stop ? stop : -1;
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

/* ---- of a data root in blob storage ---------------------------------------- */

/* What a backup in blob storage holds while it is made. */
struct renc_backup_remote {
    struct renc_store_creds *creds;
    struct renc_store *src, *dst; /* URL/ID/blobs, URL/ID/backups */
    struct renc_scan scan;
    uint64_t *lens;
    int tmp_fd; /* one blob's bytes at a time, to open it */
    struct renc_store_txn txn;
    int begun;
    struct renc_store_sealer *ss;
    struct renc_archive_writer *w;
};

static void renc_backup_remote_cleanup(struct renc_backup_remote *b)
{
    renc_archive_writer_free(b->w);
    renc_store_sealer_free(b->ss);
    if (b->begun)
        b->dst->ops->abort(b->dst, &b->txn);
    if (b->tmp_fd >= 0)
        close(b->tmp_fd);
    renc_free(b->lens);
    renc_scan_cleanup(&b->scan);
    renc_store_free(b->src);
    renc_store_free(b->dst);
    renc_free(b->creds);
}

/* Item i's bytes into b->tmp_fd, at offset 0. */
static int renc_backup_fetch(struct renc_backup_remote *b, size_t i)
{
    if (ftruncate(b->tmp_fd, 0) != 0 || lseek(b->tmp_fd, 0, SEEK_SET) != 0)
        return -errno;
    int rc = renc_store_fetch(b->src, &b->scan.items[i], b->tmp_fd);
    if (rc == 0 && lseek(b->tmp_fd, 0, SEEK_SET) != 0)
        rc = -errno;
    return rc;
}

/* 0 when dir has no blob name (a backup is never replaced), -EEXIST
 * when it has, or the service's error. */
static int renc_backup_remote_free_name(struct renc_backup_remote *b, const char *dir,
                                        const char *name)
{
    char url[4400];
    struct renc_store *s = NULL;
    struct renc_scan_item it;
    snprintf(url, sizeof url, "%s/%s", dir, name);
    int rc = renc_store_open_one(&s, &it, url, &b->creds->blob, 0, NULL, 0);
    renc_store_free(s);
    if (rc == 0)
        renc_store_one_cleanup(&it);
    return rc == 0 ? -EEXIST : rc == -ENOENT || rc == -RENC_E_STORE_NOT_FOUND ? 0 : rc;
}

/* The stores, the listing (sorted by name) and each blob's plaintext
 * length (its header's; a blob that does not say is fetched and opened). */
static int renc_backup_remote_open(struct renc_data_ctx *c, const struct renc_env *env,
                                   const char *name, struct renc_backup_remote *b,
                                   uint64_t *total)
{
    char root[4096], src[4200], dst[4200], why[512] = "";
    b->creds = renc_malloc(sizeof *b->creds);
    int rc = b->creds ? renc_store_creds_from(&c->a.g, b->creds) : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_envdata_root(root, sizeof root, c->a.g.data_dir, env);
    snprintf(src, sizeof src, "%s/blobs", root);
    snprintf(dst, sizeof dst, "%s/backups", root);
    const char *sources[1] = {src};
    struct renc_store_spec ss = {.sources = sources, .source_count = 1,
                                 .blob = b->creds ? &b->creds->blob : NULL, .why = why,
                                 .why_max = sizeof why};
    struct renc_store_spec ds = {.root = dst, .blob = ss.blob, .why = why, .why_max = sizeof why};
    if (rc == 0 && (rc = renc_store_open(&b->src, &ss)) == 0)
        rc = renc_store_open(&b->dst, &ds);
    if (rc == 0 && (rc = renc_backup_remote_free_name(b, dst, name)) == -EEXIST) {
        renc_err(c->cmd, "%s/%s: there is a backup of that name; nothing is written", dst, name);
        return renc_exit_for(rc);
    }
    if (rc == 0 && (rc = renc_store_list_scan(b->src, &b->scan)) == -RENC_E_STORE_NOT_FOUND)
        rc = 0; /* no container yet: no blobs */
    if (rc == 0 && b->scan.count > 1)
        qsort(b->scan.items, b->scan.count, sizeof *b->scan.items, renc_data_item_rel_cmp);
    b->lens = rc == 0 ? renc_calloc(b->scan.count + 1, sizeof *b->lens) : NULL;
    b->tmp_fd = open(c->a.g.state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (b->tmp_fd < 0) /* a file system without unnamed files: memory, then */
        b->tmp_fd = memfd_create("renc-backup", MFD_CLOEXEC);
    if (rc == 0 && (!b->lens || b->tmp_fd < 0))
        rc = b->lens ? -errno : -RENC_E_NOMEM;
    if (rc) {
        renc_err(c->cmd, "%s: %s", env->data_root, why[0] ? why : renc_strerror(rc));
        return renc_exit_for(rc);
    }
    *total = 8 + 17;
    for (size_t i = 0; i < b->scan.count; i++) {
        const struct renc_scan_item *it = &b->scan.items[i];
        struct renc_header h;
        struct renc_blob_status bs;
        memset(&h, 0, sizeof h);
        memset(&bs, 0, sizeof bs);
        int bad = 0;
        rc = renc_store_read_header(b->src, it, &h, &bad);
        if (rc == 0 && h.plaintext_len != RENC_PLAINTEXT_UNKNOWN)
            b->lens[i] = h.plaintext_len;
        else if (rc == 0 && (rc = renc_backup_fetch(b, i)) == 0)
            rc = renc_blob_plain_len(c->ks, b->tmp_fd, &b->lens[i], &bs);
        renc_header_cleanup(&h);
        if (rc) {
            renc_blob_err(c->cmd, it->path, rc, &bs);
            return RENC_EXIT_FAILED;
        }
        *total += 1 + 2 + strlen(it->rel) + 8 + b->lens[i];
    }
    return -1;
}

/* Every blob fetched, opened and written into the archive. */
static int renc_backup_remote_entries(struct renc_data_ctx *c, struct renc_backup_remote *b)
{
    for (size_t i = 0; i < b->scan.count; i++) {
        const struct renc_scan_item *it = &b->scan.items[i];
        struct renc_blob_status bs;
        memset(&bs, 0, sizeof bs);
        bs.slot = -1;
        int rc = renc_backup_fetch(b, i);
        if (rc == 0)
            rc = renc_archive_entry_begin(b->w, it->rel, b->lens[i]);
        if (rc == 0)
            rc = renc_blob_open_to(c->ks, b->tmp_fd, renc_archive_data_sink, b->w, NULL, &bs);
        if (rc == 0)
            rc = renc_archive_entry_end(b->w);
        if (rc) {
            if (rc == -RENC_E_LENGTH_MISMATCH || rc == -RENC_E_CHANGED)
                renc_err(c->cmd, "%s: changed while the backup was taken", it->path);
            else
                renc_blob_err(c->cmd, it->path, rc, &bs);
            return RENC_EXIT_FAILED;
        }
    }
    return -1;
}

/* backup create of an environment whose data is in blob storage: its
 * blobs read by ranges, the backup sealed as it is uploaded to
 * URL/ID/backups/NAME in the block layout, visible in one commit. */
static int renc_backup_remote_run(struct renc_data_ctx *c, const struct renc_env *env,
                                  const char *current, const char *name)
{
    struct renc_backup_remote b = {.tmp_fd = -1};
    uint64_t total = 0, entries = 0, bytes = 0;
    int status = renc_backup_remote_open(c, env, name, &b, &total);
    struct renc_scan_item it = {.path = (char *)name, .rel = (char *)name};
    struct renc_store_tags tags = {.tag = "backup"};
    const char *refs[] = {env->key_ref};
    struct renc_seal_opts so = {
        .env = env->id, .kind = "backup", .name = name, .source_env = env->id,
        .key_refs = refs, .key_ref_count = 1, .compress_level = RENC_BACKUP_COMPRESS_LEVEL,
        .seg_shift = RENC_SEG_SHIFT_DEFAULT, .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    struct renc_blob_status sealst;
    int rc = 0;
    if (status < 0 && (rc = b.dst->ops->begin(b.dst, &it, RENC_COMMIT_MIRROR, &tags, &b.txn)) == 0)
        b.begun = 1;
    if (status < 0 && rc == 0 &&
        (rc = renc_store_sealer_new(&b.ss, c->ks, &so, b.dst, &b.txn, total, &sealst)) == 0)
        rc = renc_archive_writer_new(&b.w, renc_store_sealer_sink, b.ss);
    if (status < 0 && rc == 0 && (status = renc_backup_remote_entries(c, &b)) < 0 &&
        (rc = renc_archive_writer_finish(b.w, &entries, &bytes)) == 0 &&
        (rc = renc_store_sealer_finish(b.ss)) == 0) {
        b.begun = 0;
        rc = b.dst->ops->commit(b.dst, &b.txn, NULL); /* commit point */
    }
    if (status < 0 && rc) {
        renc_err(c->cmd, "%s/backups/%s: %s; no backup is made", env->id, name,
                 renc_strerror(rc));
        status = RENC_EXIT_FAILED;
    }
    if (status < 0) {
        char detail[512];
        renc_textf(detail, sizeof detail, "%s: %llu blobs, %llu bytes, under %s", name,
                   (unsigned long long)entries, (unsigned long long)bytes, current);
        if ((rc = renc_catalog_note(c->cat, env->id, "backup", detail)))
            renc_err(c->cmd, "catalog: %s: %s", env->id, renc_strerror(rc));
        printf("backup create: %s/%s: %llu blobs (%llu bytes) of %s, sealed under %s\n",
               b.dst->ops->describe(b.dst), b.txn.final, (unsigned long long)entries,
               (unsigned long long)bytes, env->id, current);
        status = RENC_EXIT_OK;
    }
    renc_backup_remote_cleanup(&b);
    return status;
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
        (status = renc_data_ready(&c, c.a.env, &env, current, sizeof current)) >= 0)
        goto out;
    if (env.data_root[0]) {
        status = renc_backup_remote_run(&c, &env, current, name);
        goto out;
    }
    if ((status = renc_data_lock(&c, c.a.env)) >= 0 ||
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
    if ((status = renc_backup_entries(&c, env.key_ref, w, &scan, lens, &dest, &stage)) >= 0)
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
