/* env/envdata.c — see envdata.h. */
#include "env/envdata.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/tmpname.h"
#include "keys/keyref.h"
#include "blob/blobfile.h"
#include "crypto/header.h"
#include "store/scan.h"
#include "store/one.h"
#include "store/store.h"

int renc_envdata_path(char *out, size_t max, const char *data_dir, const char *env,
                      const char *sub)
{
    RENC_RETURN_IF(!renc_env_id_valid(env), -RENC_E_INVALID);
    int n = sub ? snprintf(out, max, "%s/%s/%s", data_dir, env, sub)
                : snprintf(out, max, "%s/%s", data_dir, env);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

static int renc_mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int renc_envdata_create(const char *data_dir, const char *env)
{
    char path[4096];
    int rc = renc_mkdir_0700(data_dir);
    if (rc == 0)
        rc = renc_envdata_path(path, sizeof path, data_dir, env, NULL);
    if (rc == 0)
        rc = renc_mkdir_0700(path);
    if (rc == 0)
        rc = renc_envdata_path(path, sizeof path, data_dir, env, "blobs");
    if (rc == 0)
        rc = renc_mkdir_0700(path);
    if (rc == 0)
        rc = renc_envdata_path(path, sizeof path, data_dir, env, "backups");
    if (rc == 0)
        rc = renc_mkdir_0700(path);
    return rc;
}

/* nftw has no argument for its callback: the clear's counters live here,
 * used by one clear at a time (commands are single-threaded there). */
static uint64_t renc_clear_files, renc_clear_bytes;
static const char *renc_clear_root;

static int renc_clear_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (strcmp(path, renc_clear_root) == 0)
        return 0; /* the folder itself stays */
    if (type == FTW_DP)
        return rmdir(path) == 0 ? 0 : -1;
    if (unlink(path) != 0)
        return -1;
    if (type == FTW_F) {
        renc_clear_files++;
        renc_clear_bytes += (uint64_t)st->st_size;
    }
    return 0;
}

int renc_envdata_clear(const char *data_dir, const char *env, uint64_t *files, uint64_t *bytes)
{
    static const char *const subs[] = {"blobs", "backups"};
    renc_clear_files = renc_clear_bytes = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        int rc = renc_envdata_path(path, sizeof path, data_dir, env, subs[i]);
        if (rc)
            return rc;
        renc_clear_root = path;
        /* Depth first, without following symlinks or leaving the file system. */
        if (nftw(path, renc_clear_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 &&
            errno != ENOENT)
            return errno ? -errno : -RENC_E_INVALID;
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (files)
        *files = renc_clear_files;
    if (bytes)
        *bytes = renc_clear_bytes;
    return 0;
}

/* ---- census ------------------------------------------------------------ */

static void renc_keep_path(char **list, uint64_t n, const char *path)
{
    if (n < RENC_CENSUS_LIST)
        list[n] = renc_strdup(path);
}

static int renc_census_note_ref(struct renc_census *c, const char *ref, int backup)
{
    for (size_t i = 0; i < c->ref_count; i++) {
        if (strcmp(c->refs[i].ref, ref) == 0) {
            c->refs[i].blobs += !backup;
            c->refs[i].backups += backup;
            return 0;
        }
    }
    struct renc_census_ref *v = renc_realloc(c->refs, (c->ref_count + 1) * sizeof *v);
    RENC_RETURN_IF(!v, -RENC_E_NOMEM);
    c->refs = v;
    char *copy = renc_strdup(ref);
    RENC_RETURN_IF(!copy, -RENC_E_NOMEM);
    v[c->ref_count++] = (struct renc_census_ref){copy, !backup, (uint64_t)backup};
    return 0;
}

/* Counts one file of the census whose header h was read (rc: how the read
 * went); path names it in the lists. */
static int renc_census_header(struct renc_census *c, const char *path, int backup, uint64_t size,
                              struct renc_header *h, int rc, const struct renc_keyref *policy,
                              const char *current_ref)
{
    if (backup) {
        c->backups++;
        c->backup_bytes += size;
    } else {
        c->blobs++;
        c->blob_bytes += size;
    }
    if (rc == -RENC_E_NOMEM)
        return rc;
    if (rc) {
        renc_keep_path(c->unreadable_paths, c->unreadable++, path);
        return 0;
    }
    int under_policy = 0, under_current = 0;
    for (unsigned i = 0; rc == 0 && i < h->slot_count; i++) {
        struct renc_keyref r;
        if (renc_keyref_parse(&r, h->slots[i].ref) == 0 && renc_keyref_same_key(&r, policy))
            under_policy = 1;
        if (current_ref && renc_keyref_text_same_version(h->slots[i].ref, current_ref))
            under_current = 1;
        rc = renc_census_note_ref(c, h->slots[i].ref, backup);
    }
    if (!under_policy)
        renc_keep_path(c->off_policy_paths, c->off_policy++, path);
    else if (current_ref && !under_current)
        c->old_version++;
    return rc;
}

static int renc_census_file(struct renc_census *c, const struct renc_scan_item *it, int backup,
                            const struct renc_keyref *policy, const char *current_ref)
{
    struct renc_header h;
    memset(&h, 0, sizeof h);
    int fd = open(it->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = fd < 0 ? -errno : renc_blob_read_header(fd, &h, NULL);
    if (fd >= 0)
        close(fd);
    rc = renc_census_header(c, it->path, backup, it->size, &h, rc, policy, current_ref);
    renc_header_cleanup(&h);
    return rc;
}

/* Lists path (below root) as an item of s. */
static int renc_scan_adopt(struct renc_scan *s, const char *root, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0; /* gone since, or replaced: the walk's verdict stands */
    size_t rlen = strlen(root);
    const char *rel = strncmp(path, root, rlen) == 0 && path[rlen] == '/' ? path + rlen + 1 : path;
    return renc_scan_add(s, path, rel, &st);
}

int renc_envdata_scan(struct renc_scan *s, const char *root)
{
    char r[4096];
    size_t len = strlen(root);
    RENC_RETURN_IF(len >= sizeof r, -ENAMETOOLONG);
    memcpy(r, root, len + 1);
    while (len > 1 && r[len - 1] == '/')
        r[--len] = '\0';
    const char *src = r;
    int rc = renc_scan_paths(s, &src, 1, NULL);
    /* The walk may set aside any name containing ".renc-tmp.": only the
     * reserved ones are temporaries; the others are data. */
    size_t kept = 0;
    for (size_t i = 0; i < s->temp_count; i++) {
        const char *slash = strrchr(s->temps[i], '/');
        const char *base = slash ? slash + 1 : s->temps[i];
        if (rc == 0 && !renc_tmpname_reserved(base)) {
            rc = renc_scan_adopt(s, r, s->temps[i]);
            renc_free(s->temps[i]);
        } else {
            s->temps[kept++] = s->temps[i];
        }
    }
    s->temp_count = kept;
    return rc;
}

static int renc_census_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const struct renc_census_ref *)a)->ref,
                  ((const struct renc_census_ref *)b)->ref);
}

int renc_census_take(struct renc_census *c, const char *data_dir, const char *env,
                     const char *policy_ref, const char *current_ref)
{
    static const char *const subs[] = {"blobs", "backups"};
    memset(c, 0, sizeof *c);
    struct renc_keyref policy;
    int rc = renc_keyref_parse(&policy, policy_ref);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        char path[4096];
        if ((rc = renc_envdata_path(path, sizeof path, data_dir, env, subs[i])))
            break;
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* nothing there yet */
        struct renc_scan scan;
        memset(&scan, 0, sizeof scan);
        rc = renc_envdata_scan(&scan, path);
        c->special += scan.skipped_special;
        c->temporaries += scan.temp_count;
        for (size_t k = 0; rc == 0 && k < scan.count; k++)
            rc = renc_census_file(c, &scan.items[k], i == 1, &policy, current_ref);
        for (size_t k = 0; k < scan.error_count; k++)
            renc_keep_path(c->unreadable_paths, c->unreadable++, scan.errors[k].path);
        renc_scan_cleanup(&scan);
    }
    if (rc)
        renc_census_cleanup(c);
    else if (c->ref_count > 1)
        qsort(c->refs, c->ref_count, sizeof *c->refs, renc_census_ref_cmp);
    return rc;
}

/* ---- census of a data root in blob storage ------------------------------ */

int renc_envdata_root(char *out, size_t max, const char *data_dir, const struct renc_env *e)
{
    RENC_RETURN_IF(!renc_env_id_valid(e->id), -RENC_E_INVALID);
    if (!e->data_root[0])
        return renc_envdata_path(out, max, data_dir, e->id, NULL);
    size_t len = strlen(e->data_root);
    while (len > 0 && e->data_root[len - 1] == '/')
        len--;
    int n = snprintf(out, max, "%.*s/%s", (int)len, e->data_root, e->id);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

/* The census of one folder (blobs/ or backups/) below a root in blob
 * storage: listed and read through the store, as a run reads it. */
static int renc_census_store(struct renc_census *c, const char *url, int backup,
                             const struct renc_blob_account_opts *blob,
                             const struct renc_keyref *policy, const char *current_ref)
{
    struct renc_store *s = NULL;
    const char *sources[1] = {url};
    struct renc_store_spec spec = {.sources = sources, .source_count = 1, .blob = blob};
    int rc = renc_store_open(&s, &spec);
    if (rc)
        return rc;
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    rc = renc_store_list_scan(s, &scan);
    if (rc == -RENC_E_STORE_NOT_FOUND)
        rc = 0; /* no container yet: nothing there yet, as a missing folder */
    c->special += scan.skipped_special;
    c->temporaries += scan.temp_count;
    for (size_t k = 0; rc == 0 && k < scan.count; k++) {
        const struct renc_scan_item *it = &scan.items[k];
        struct renc_header h;
        memset(&h, 0, sizeof h);
        int bad = 0, hrc = renc_store_read_header(s, it, &h, &bad);
        if (hrc && !bad)
            rc = hrc; /* the service failed us, not the blob */
        else
            rc = renc_census_header(c, it->path, backup, it->size, &h, hrc, policy,
                                    current_ref);
        renc_header_cleanup(&h);
    }
    for (size_t k = 0; rc == 0 && k < scan.error_count; k++)
        renc_keep_path(c->unreadable_paths, c->unreadable++, scan.errors[k].path);
    renc_scan_cleanup(&scan);
    renc_store_free(s);
    return rc;
}

int renc_census_take_env(struct renc_census *c, const char *data_dir, const struct renc_env *e,
                         const char *policy_ref, const char *current_ref,
                         const struct renc_blob_account_opts *blob)
{
    if (!e->data_root[0])
        return renc_census_take(c, data_dir, e->id, policy_ref, current_ref);
    static const char *const subs[] = {"blobs", "backups"};
    memset(c, 0, sizeof *c);
    struct renc_keyref policy;
    char root[4096], url[4200];
    int rc = renc_keyref_parse(&policy, policy_ref);
    if (rc == 0)
        rc = renc_envdata_root(root, sizeof root, data_dir, e);
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        snprintf(url, sizeof url, "%s/%s", root, subs[i]);
        rc = renc_census_store(c, url, i == 1, blob, &policy, current_ref);
    }
    if (rc)
        renc_census_cleanup(c);
    else if (c->ref_count > 1)
        qsort(c->refs, c->ref_count, sizeof *c->refs, renc_census_ref_cmp);
    return rc;
}

void renc_census_cleanup(struct renc_census *c)
{
    for (size_t i = 0; i < RENC_CENSUS_LIST; i++) {
        renc_free(c->unreadable_paths[i]);
        renc_free(c->off_policy_paths[i]);
    }
    for (size_t i = 0; i < c->ref_count; i++)
        renc_free(c->refs[i].ref);
    renc_free(c->refs);
    memset(c, 0, sizeof *c);
}

void renc_census_count(const struct renc_census *c, const char *ref, uint64_t *blobs,
                       uint64_t *backups)
{
    *blobs = *backups = 0;
    for (size_t i = 0; i < c->ref_count; i++) {
        if (strcmp(c->refs[i].ref, ref) == 0) {
            *blobs = c->refs[i].blobs;
            *backups = c->refs[i].backups;
        }
    }
}

const char *renc_env_status(const struct renc_env *e, const struct renc_census *c)
{
    if (renc_env_locked(e))
        return "locked";
    if (strcmp(e->last_run, "failed") == 0)
        return "failed";
    if (c && (c->off_policy || c->unreadable || c->special))
        return "warning";
    return "encrypted";
}
