/* reencrypt put | backup | restore | copy | restore-check | copy-check — an
 * environment's data, and the restore and copy rules (docs/ENVIRONMENTS.md).
 *
 * Plaintext never touches the disk here: blobs are opened record by record
 * and their plaintext goes straight into a sealer (put, restore, copy) or an
 * archive writer (backup), or nowhere at all (the checks).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/path.h"
#include "crypto/keyref.h"
#include "reencrypt/archive.h"
#include "reencrypt/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/envctl.h"
#include "reencrypt/envdata.h"
#include "reencrypt/rules.h"
#include "reencrypt/scan.h"
#include "reencrypt/session.h"
#include "reencrypt/stage.h"

#define RENC_BACKUP_COMPRESS_LEVEL 3

struct renc_data_args {
    struct renc_global g;
    const char *env, *name, *target, *from, *to;
    int replace, json;
    char **args;
    int arg_count;
};

/* What every command here holds while it works. */
struct renc_data_ctx {
    const char *cmd;
    struct renc_data_args a;
    struct renc_keyring *kr;
    struct renc_keystore *ks;
    struct renc_catalog *cat;
    struct renc_session sess; /* the written environment's lock */
};

static int renc_data_parse(struct renc_data_ctx *c, const char *usage, int argc, char **argv)
{
    static const struct option opts[] = {
        {"env", required_argument, NULL, 'e'},
        {"name", required_argument, NULL, 'n'},
        {"target", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 'T'},
        {"replace", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct renc_data_args *a = &c->a;
    int opt;
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once(c->cmd, opts, "entfT", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'e': a->env = optarg; break;
        case 'n': a->name = optarg; break;
        case 't': a->target = optarg; break;
        case 'f': a->from = optarg; break;
        case 'T': a->to = optarg; break;
        case 'r': a->replace = 1; break;
        case 'j': a->json = 1; break;
        case 'h': fputs(usage, stdout); return RENC_EXIT_OK;
        default: fputs(usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    a->args = argv + optind;
    a->arg_count = argc - optind;
    const char *ids[] = {a->env, a->target, a->from, a->to};
    const char *names[] = {"--env", "--target", "--from", "--to"};
    for (size_t i = 0; i < 4; i++)
        if (ids[i] && !renc_env_id_ok(c->cmd, names[i], ids[i]))
            return RENC_EXIT_USAGE;
    return -1;
}

/* Opens the keys and the catalog.  Returns -1 to continue or an exit. */
static int renc_data_open(struct renc_data_ctx *c)
{
    renc_session_init(&c->sess);
    int rc = renc_open_keys(&c->a.g, 0, &c->kr, &c->ks);
    if (rc) {
        renc_err(c->cmd, "keyring %s: %s", c->a.g.keyring_dir ? c->a.g.keyring_dir : "?",
                 renc_strerror(rc));
        return renc_exit_for(rc);
    }
    if ((rc = renc_envctl_open(&c->a.g, 0, &c->cat))) {
        renc_err(c->cmd, "catalog in %s: %s", c->a.g.state_dir,
                 rc == -ENOENT ? "no environments yet" : renc_strerror(rc));
        return rc == -ENOENT ? RENC_EXIT_USAGE : RENC_EXIT_FAILED;
    }
    return -1;
}

static void renc_data_close(struct renc_data_ctx *c)
{
    renc_session_cleanup(&c->sess);
    renc_catalog_close(c->cat);
    renc_keystore_free(c->ks);
    renc_keyring_free(c->kr);
}

/* Loads an environment that is to be read or written: refused when it is
 * locked.  current (may be NULL) gets its policy key's current version.
 * Returns -1 to continue or an exit. */
static int renc_data_ready(struct renc_data_ctx *c, const char *id, struct renc_env *env,
                           char *current, size_t max)
{
    char why[1024] = "";
    int rc = renc_envctl_ready(c->cat, c->ks, id, env, current, max, why, sizeof why);
    if (rc == 0)
        return -1;
    if (why[0])
        renc_err(c->cmd, "%s", why);
    else
        renc_err(c->cmd, "%s: %s", id, renc_strerror(rc));
    return renc_exit_for(rc);
}

/* Takes the lock on DATA/<id>, which `run --env` holds too.  Returns -1 to
 * continue or an exit. */
static int renc_data_lock(struct renc_data_ctx *c, const char *id)
{
    char path[4096], busy[4096] = "";
    int rc = renc_envdata_create(c->a.g.data_dir, id);
    if (rc == 0)
        rc = renc_envdata_path(path, sizeof path, c->a.g.data_dir, id, NULL);
    const char *src = path;
    if (rc == 0)
        rc = renc_session_lock(&c->sess, &src, 1, NULL, NULL, busy, sizeof busy);
    if (rc == -RENC_E_BUSY) {
        renc_err(c->cmd, "%s: another run is working on environment %s; wait for it to end",
                 busy, id);
        return RENC_EXIT_FAILED;
    }
    if (rc) {
        renc_err(c->cmd, "environment %s: %s", id, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    return -1;
}

/* Restricts the keystore to the keys environment id holds (its policy key
 * and every earlier one).  Returns -1 to continue or an exit. */
static int renc_data_hold_keys(struct renc_data_ctx *c, const char *id, char *list, size_t max)
{
    char **refs = NULL;
    size_t n = 0;
    int rc = renc_catalog_env_keys(c->cat, id, &refs, &n);
    if (rc == 0)
        rc = renc_keystore_restrict(c->ks, (const char *const *)refs, n);
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(list + used, max - used, "%s%s", i ? ", " : "", refs[i]);
        if (w > 0 && (size_t)w < max - used)
            used += (size_t)w;
        renc_free(refs[i]);
    }
    renc_free(refs);
    if (rc) {
        renc_err(c->cmd, "keys of %s: %s", id, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    return -1;
}

/* An environment's blobs, in the bytewise order of their names under
 * DATA/<env>/blobs (the archive's order).  Returns -1 or an exit. */
static int renc_item_rel_cmp(const void *x, const void *y)
{
    return strcmp(((const struct renc_scan_item *)x)->rel, ((const struct renc_scan_item *)y)->rel);
}

static int renc_data_scan_blobs(struct renc_data_ctx *c, const char *id, struct renc_scan *scan)
{
    char path[4096];
    memset(scan, 0, sizeof *scan);
    int rc = renc_envdata_path(path, sizeof path, c->a.g.data_dir, id, "blobs");
    struct stat st;
    if (rc == 0 && stat(path, &st) != 0)
        return -1; /* no data yet */
    if (rc == 0)
        rc = renc_envdata_scan(scan, path);
    if (rc) {
        renc_err(c->cmd, "%s: %s", path, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    for (size_t i = 0; i < scan->error_count; i++)
        renc_err(c->cmd, "%s: %s", scan->errors[i].path, renc_strerror(scan->errors[i].rc));
    if (scan->error_count)
        return RENC_EXIT_FAILED;
    if (scan->count > 1)
        qsort(scan->items, scan->count, sizeof *scan->items, renc_item_rel_cmp);
    return -1;
}

/* Settles the stages a gone process left on environment id (the caller
 * holds its lock): completed, or their temporaries removed.  *same says
 * that the completed one was this very command (op and request).  Returns
 * -1 to go on, or an exit. */
static int renc_data_settle(struct renc_data_ctx *c, const char *id, const char *op,
                            const char *request, int *same)
{
    int rc = renc_stage_settle(c->cmd, stdout, c->cat, c->a.g.data_dir, id, op, request, same);
    if (rc == 0)
        return -1;
    renc_err(c->cmd, "environment %s: an interrupted operation could not be settled: %s; "
                     "nothing else is done", id, renc_strerror(rc));
    return RENC_EXIT_FAILED;
}

/* Begins the staged write of op into environment id.  Returns -1 to go on,
 * or an exit. */
static int renc_data_stage_begin(struct renc_data_ctx *c, struct renc_stage *stage,
                                 const char *id, const char *request)
{
    int rc = renc_stage_begin(stage, c->cat, c->a.g.data_dir, id, c->cmd, request);
    if (rc == 0)
        return -1;
    renc_err(c->cmd, "environment %s: %s: %s; nothing is written", id,
             stage->root[0] ? stage->root : c->a.g.data_dir, renc_strerror(rc));
    return RENC_EXIT_FAILED;
}

/* What a destination's failure says: the path that stopped it (a link, a
 * file where a folder must be, an existing blob), or the temporary being
 * written; never the source. */
static void renc_data_dest_err(struct renc_data_ctx *c, const struct renc_stage *stage,
                               const char *rel, int rc)
{
    if (rc == -ELOOP)
        renc_err(c->cmd, "%s is a symbolic link: not written through; nothing is written",
                 stage->bad);
    else if (rc == -ENOTDIR)
        renc_err(c->cmd, "%s is not a folder: nothing is written", stage->bad);
    else if (rc == -EEXIST)
        renc_err(c->cmd, "%s/%s: %s (--replace replaces it)", stage->root, rel,
                 renc_strerror(rc));
    else
        renc_err(c->cmd, "writing %s: %s; nothing is written",
                 stage->tmp[0] ? stage->tmp : stage->root, renc_strerror(rc));
}

/* A failed renc_stage_commit: before its commit point nothing is in place
 * (said here); after it, renc_stage_commit said what the next command does. */
static void renc_data_commit_err(struct renc_data_ctx *c, const struct renc_stage *stage, int rc)
{
    if (stage->recorded == 1)
        renc_err(c->cmd, "%s: making the new files durable: %s; nothing is written",
                 stage->root, renc_strerror(rc));
}

/* A sealer whose output is the destination: its first failure to write
 * (an errno: a full disk, an I/O error) is kept, so the message can blame
 * the file being written rather than the one being read. */
struct renc_dest_sink {
    struct renc_sealer *sealer;
    int write_rc;
};

static int renc_dest_note(struct renc_dest_sink *d, int rc)
{
    if (rc < 0 && -rc < RENC_E_BASE && d->write_rc == 0)
        d->write_rc = rc;
    return rc;
}

static int renc_dest_write(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_dest_sink *d = arg;
    return renc_dest_note(d, renc_sealer_write(d->sealer, buf, len));
}

/* A growing text: the request a staged write records. */
struct renc_text {
    char *p;
    size_t n, cap;
    int rc;
};

static void renc_text_add(struct renc_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void renc_text_add(struct renc_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->rc || need < 0)
        return;
    if (t->n + (size_t)need + 1 > t->cap) {
        size_t cap = (t->n + (size_t)need + 1) * 2;
        char *grown = renc_realloc(t->p, cap);
        if (!grown) {
            t->rc = -RENC_E_NOMEM;
            return;
        }
        t->p = grown;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)need;
}

/* path's identity in a request: size and modification time. */
static void renc_text_file(struct renc_text *t, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        renc_text_add(t, "\t%s\t%lld\t%lld.%09ld\n", path, (long long)st.st_size,
                      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    else
        renc_text_add(t, "\t%s\n", path);
}

/* ---- put --------------------------------------------------------------- */

static const char renc_put_usage[] =
    "usage: reencrypt put --env ID [--name NAME] [--replace] (FILE | DIR)...\n"
    "seals each FILE into DATA/ID/blobs/ (as NAME, or its own name), and every file below a\n"
    "DIR (as DIR's name, or NAME, then its path below DIR), under the environment's policy\n"
    "key; all or none of them appear.  A blob of that name is refused unless --replace.\n";

/* One file to seal: its path and the blob name it gets. */
struct renc_put_item {
    char *path, *want;
};

struct renc_put_plan {
    struct renc_put_item *items;
    size_t count, cap;
    struct renc_text request; /* every (name, file, size, mtime): tells a rerun */
};

static void renc_put_plan_cleanup(struct renc_put_plan *p)
{
    for (size_t i = 0; i < p->count; i++) {
        renc_free(p->items[i].path);
        renc_free(p->items[i].want);
    }
    renc_free(p->items);
    renc_free(p->request.p);
}

static int renc_put_plan_add(struct renc_put_plan *p, const char *path, const char *want)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        struct renc_put_item *grown = renc_realloc(p->items, cap * sizeof *grown);
        RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
        p->items = grown;
        p->cap = cap;
    }
    struct renc_put_item *it = &p->items[p->count];
    it->path = renc_strdup(path);
    it->want = renc_strdup(want);
    if (!it->path || !it->want) {
        renc_free(it->path);
        renc_free(it->want);
        return -RENC_E_NOMEM;
    }
    p->count++;
    renc_text_add(&p->request, "%s", want);
    renc_text_file(&p->request, path);
    return p->request.rc;
}

/* Seals one file into the environment as `want` (a blob name).  Returns -1
 * to go on, or an exit. */
static int renc_put_one(struct renc_data_ctx *c, const struct renc_env *env,
                        struct renc_stage *stage, const char *in, const char *want,
                        uint64_t *bytes)
{
    char rel[8192];
    if (snprintf(rel, sizeof rel, "blobs/%s", want) >= (int)sizeof rel) {
        renc_err(c->cmd, "%s: %s", in, renc_strerror(-ENAMETOOLONG));
        return RENC_EXIT_USAGE;
    }
    int in_fd = open(in, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (in_fd < 0 || fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = in_fd < 0 ? errno : EISDIR;
        renc_err(c->cmd, "%s: %s", in, in_fd < 0 ? strerror(e) : "not a regular file");
        if (in_fd >= 0)
            close(in_fd);
        return RENC_EXIT_USAGE;
    }
    int out_fd = -1;
    int rc = renc_stage_open(stage, rel, &out_fd);
    if (rc) {
        renc_data_dest_err(c, stage, rel, rc);
        close(in_fd);
        return rc == -EEXIST ? renc_exit_for(rc) : RENC_EXIT_FAILED;
    }
    const char *refs[] = {env->key_ref};
    struct renc_seal_opts so = {
        .env = env->id, .kind = "blob", .name = want, .key_refs = refs, .key_ref_count = 1,
        .seg_shift = RENC_SEG_SHIFT_DEFAULT, .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    struct renc_blob_status bs;
    rc = renc_blob_seal(c->ks, &so, in_fd, out_fd, (uint64_t)st.st_size, &bs);
    close(in_fd);
    int rc2 = renc_stage_close(stage, out_fd);
    if (rc == 0)
        rc = rc2;
    if (rc) {
        if (rc == -RENC_E_LENGTH_MISMATCH)
            renc_blob_err(c->cmd, in, rc, &bs);
        else
            renc_err(c->cmd, "writing %s (from %s): %s; nothing is sealed", stage->tmp, in,
                     renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    *bytes += bs.plaintext_bytes;
    return -1;
}

/* The files of one FILE or DIR argument, added to the plan, each name
 * checked.  Returns -1 to go on, or an exit. */
static int renc_put_gather(struct renc_data_ctx *c, const char *arg, struct renc_put_plan *plan)
{
    struct stat ast;
    if (stat(arg, &ast) != 0) {
        renc_err(c->cmd, "%s: %s", arg, strerror(errno));
        return RENC_EXIT_USAGE;
    }
    /* The tool's own files are never sealed into an environment, and an
     * environment's blobs move with 'copy', not 'put'. */
    char why[PATH_MAX + 64];
    if (renc_global_overlap(&c->a.g, arg, why, sizeof why)) {
        renc_err(c->cmd, "%s: %s, whose files are never sealed into an environment; "
                         "nothing is sealed ('reencrypt copy' moves blobs between "
                         "environments)", arg, why);
        return RENC_EXIT_USAGE;
    }
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    int rc = renc_envdata_scan(&scan, arg);
    for (size_t k = 0; rc == 0 && k < scan.error_count; k++)
        rc = scan.errors[k].rc;
    int status = -1;
    if (rc) {
        renc_err(c->cmd, "%s: %s", scan.error_count ? scan.errors[0].path : arg,
                 renc_strerror(rc));
        status = renc_exit_for(rc);
    }
    /* A reserved name is the tool's temporary: never user data. */
    for (size_t k = 0; status < 0 && k < scan.temp_count; k++) {
        renc_err(c->cmd, "%s: a name of the form .NAME.renc-tmp.TAG is reserved for the "
                         "tool's temporary files; rename it; nothing is sealed", scan.temps[k]);
        status = RENC_EXIT_USAGE;
    }
    char tidy[4096];
    const char *prefix = c->a.name;
    if (!prefix && S_ISDIR(ast.st_mode) && renc_path_tidy(tidy, sizeof tidy, arg, 0) == 0) {
        const char *b = strrchr(tidy, '/');
        prefix = b ? b + 1 : tidy;
    }
    for (size_t k = 0; status < 0 && k < scan.count; k++) {
        char want[8192];
        if (S_ISDIR(ast.st_mode) && prefix && prefix[0] && strcmp(prefix, ".") != 0)
            renc_textf(want, sizeof want, "%s/%s", prefix, scan.items[k].rel);
        else
            renc_textf(want, sizeof want, "%s", prefix ? prefix : scan.items[k].rel);
        const char *wb = strrchr(want, '/');
        const char *ib = strrchr(scan.items[k].path, '/');
        if (renc_tmpname_reserved(wb ? wb + 1 : want) ||
            renc_tmpname_reserved(ib ? ib + 1 : scan.items[k].path)) {
            renc_err(c->cmd, "%s: a name of the form .NAME.renc-tmp.TAG is reserved for the "
                             "tool's temporary files; rename it (or --name); nothing is sealed",
                     scan.items[k].path);
            status = RENC_EXIT_USAGE;
        } else if (!renc_archive_name_ok((const uint8_t *)want, strlen(want))) {
            renc_err(c->cmd, "%s: '%s' cannot name a blob (names are UTF-8, not absolute, "
                             "without empty, '.' or '..' parts; --name gives another)",
                     scan.items[k].path, want);
            status = RENC_EXIT_USAGE;
        } else if ((rc = renc_put_plan_add(plan, scan.items[k].path, want))) {
            renc_err(c->cmd, "%s", renc_strerror(rc));
            status = RENC_EXIT_FAILED;
        }
    }
    renc_scan_cleanup(&scan);
    return status;
}

int renc_cmd_put(int argc, char **argv)
{
    struct renc_data_ctx c = {.cmd = "put"};
    int status = renc_data_parse(&c, renc_put_usage, argc, argv);
    if (status >= 0)
        return status;
    if (!c.a.env || c.a.arg_count < 1 || (c.a.name && c.a.arg_count != 1)) {
        renc_err(c.cmd, "give --env ID and one or more FILEs (--name with one FILE)");
        fputs(renc_put_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    struct renc_env env;
    char current[RENC_MAX_REF_LEN + 1];
    struct renc_stage stage;
    renc_stage_init(&stage, c.a.replace);
    struct renc_put_plan plan;
    memset(&plan, 0, sizeof plan);
    renc_text_add(&plan.request, "replace=%d\n", c.a.replace);
    uint64_t bytes = 0;
    int same = 0;
    if ((status = renc_data_open(&c)) >= 0 ||
        (status = renc_data_ready(&c, c.a.env, &env, current, sizeof current)) >= 0 ||
        (status = renc_data_lock(&c, c.a.env)) >= 0)
        goto out;
    /* Every file is listed and every name checked before anything is written. */
    for (int i = 0; i < c.a.arg_count && status < 0; i++)
        status = renc_put_gather(&c, c.a.args[i], &plan);
    if (status < 0 && plan.request.rc) {
        renc_err(c.cmd, "%s", renc_strerror(plan.request.rc));
        status = RENC_EXIT_FAILED;
    }
    if (status >= 0 ||
        (status = renc_data_settle(&c, env.id, c.cmd, plan.request.p, &same)) >= 0)
        goto out;
    if (same) {
        printf("put: the interrupted put was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if ((status = renc_data_stage_begin(&c, &stage, env.id, plan.request.p)) >= 0)
        goto out;
    for (size_t i = 0; i < plan.count && status < 0; i++)
        status = renc_put_one(&c, &env, &stage, plan.items[i].path, plan.items[i].want, &bytes);
    if (status >= 0)
        goto out;
    char detail[256];
    renc_textf(detail, sizeof detail, "%zu files, %llu bytes, under %s", plan.count,
               (unsigned long long)bytes, current);
    struct renc_stage_note note = {env.id, "put", detail};
    int rc = renc_stage_commit(&stage, &note, 1);
    if (rc) {
        renc_data_commit_err(&c, &stage, rc);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    printf("put: sealed %zu files (%llu bytes) into %s under %s\n", plan.count,
           (unsigned long long)bytes, env.id, current);
    status = RENC_EXIT_OK;
out:
    renc_stage_cleanup(&stage);
    renc_put_plan_cleanup(&plan);
    renc_data_close(&c);
    return status;
}

/* ---- backup ------------------------------------------------------------ */

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
    if (c.a.name) {
        if (!renc_env_id_valid(c.a.name)) {
            renc_err(c.cmd, "--name '%s': 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'",
                     c.a.name);
            return RENC_EXIT_USAGE;
        }
        snprintf(name, sizeof name, "%s", c.a.name);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(name, sizeof name, "backup-%Y%m%dT%H%M%SZ.renc", &tm);
    }
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
    struct renc_blob_status bs;
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
    /* The archive's length is known before it is written: each blob's
     * plaintext length comes from its header. */
    lens = renc_calloc(scan.count ? scan.count : 1, sizeof *lens);
    if (!lens) {
        renc_err(c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        goto out;
    }
    uint64_t total = 8 + 17;
    for (size_t i = 0; i < scan.count; i++) {
        int fd = open(scan.items[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno : renc_blob_plain_len(c.ks, fd, &lens[i], &bs);
        if (fd >= 0)
            close(fd);
        if (rc) {
            renc_blob_err(c.cmd, scan.items[i].path, rc, &bs);
            goto out;
        }
        total += 1 + 2 + strlen(scan.items[i].rel) + 8 + lens[i];
    }
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
    if ((rc = renc_dest_note(&dest, renc_sealer_new(&dest.sealer, c.ks, &so, out_fd, total,
                                                    &sealst))) ||
        (rc = renc_archive_writer_new(&w, renc_dest_write, &dest))) {
        renc_blob_err(c.cmd, dest.write_rc ? stage.tmp : final, rc, &sealst);
        goto out;
    }
    for (size_t i = 0; i < scan.count; i++) {
        const char *path = scan.items[i].path;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno : renc_archive_entry_begin(w, scan.items[i].rel, lens[i]);
        memset(&bs, 0, sizeof bs);
        bs.slot = -1;
        if (rc == 0)
            rc = renc_blob_open_to(c.ks, fd, renc_archive_data_sink, w, NULL, &bs);
        if (rc == 0)
            rc = renc_archive_entry_end(w);
        if (fd >= 0)
            close(fd);
        if (rc && dest.write_rc) {
            renc_err(c.cmd, "writing %s: %s; no backup is made", stage.tmp,
                     renc_strerror(dest.write_rc));
            goto out;
        }
        if (rc) {
            if (rc == -RENC_E_INVALID)
                renc_err(c.cmd, "%s: its name cannot go in a backup (not UTF-8, or too long)",
                         path);
            else if (rc == -RENC_E_LENGTH_MISMATCH)
                renc_err(c.cmd, "%s: changed while the backup was taken", path);
            else
                renc_blob_err(c.cmd, path, rc, &bs);
            goto out;
        }
    }
    uint64_t entries = 0, bytes = 0;
    if ((rc = renc_archive_writer_finish(w, &entries, &bytes)) ||
        (rc = renc_dest_note(&dest, renc_sealer_finish(dest.sealer)))) {
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
    char size[32];
    struct stat st;
    renc_bytes_text(size, sizeof size, stat(final, &st) == 0 ? (uint64_t)st.st_size : 0);
    printf("backup create: %s: %llu blobs (%llu bytes) of %s, sealed under %s, %s on disk\n",
           final, (unsigned long long)entries, (unsigned long long)bytes, env.id, current, size);
    if (scan.skipped_special)
        printf("backup create: %llu symbolic links or special files in %s are never followed: "
               "left out\n", (unsigned long long)scan.skipped_special, env.id);
    if (scan.temp_count)
        printf("backup create: %zu temporary files (.NAME.renc-tmp.TAG) in %s are not data: "
               "left out\n", scan.temp_count, env.id);
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

/* ---- restore and restore-check ---------------------------------------- */

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
    return renc_dest_note(&u->dest,
                          renc_sealer_new(&u->dest.sealer, u->c->ks, &so, u->fd, size, &u->sealst));
}

static int renc_unpack_data(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_unpack *u = arg;
    u->bytes += len;
    return u->dest.sealer ? renc_dest_write(&u->dest, buf, len) : 0;
}

static int renc_unpack_end(void *arg)
{
    struct renc_unpack *u = arg;
    if (!u->dest.sealer)
        return 0;
    int rc = renc_dest_note(&u->dest, renc_sealer_finish(u->dest.sealer));
    renc_sealer_free(u->dest.sealer);
    u->dest.sealer = NULL;
    int rc2 = renc_dest_note(&u->dest, renc_stage_close(u->stage, u->fd));
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

/* What a restore or copy check found. */
struct renc_check_result {
    struct renc_verdict_text verdict;
    int validated, valid, rc;
    char detail[2048];  /* what validation opened, or where it failed */
    uint64_t entries, bytes, records;
    char opened_by[RENC_MAX_REF_LEN + 1];
};

static int renc_check_print(const char *cmd, const char *what, int json,
                            const struct renc_check_result *r)
{
    int yes = r->verdict.allowed && r->valid;
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:b, s:s, s:s, s:b, s:I, s:I, s:I, s:s?, s:s}",
                              "command", cmd, "subject", what, "allowed", r->verdict.allowed,
                              "reason", r->verdict.reason, "validation",
                              !r->validated ? "not run" : r->valid ? "valid" : "invalid",
                              "valid", r->valid, "blobs", (json_int_t)r->entries, "bytes",
                              (json_int_t)r->bytes, "records", (json_int_t)r->records,
                              "opened_by", r->opened_by[0] ? r->opened_by : NULL, "detail",
                              r->detail);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        printf("%s: %s\n", cmd, what);
        printf("  rule        %s: %s\n", r->verdict.allowed ? "allowed" : "refused",
               r->verdict.reason);
        printf("  validation  %s: %s\n",
               !r->validated ? "not run" : r->valid ? "valid" : "invalid", r->detail);
        printf("  verdict     %s\n", yes ? "yes" : "no");
    }
    return yes ? RENC_EXIT_OK : RENC_EXIT_FAILED;
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
    const char *src_id = renc_context_get(&h.ctx, "source-env");
    struct renc_env source;
    int have_source = src_id && renc_catalog_get(c->cat, src_id, &source) == 0;
    renc_rule_restore(&r->verdict, &h, have_source ? &source : NULL, target);
    renc_header_cleanup(&h);
    return -1;
}

static void renc_check_validation(struct renc_check_result *r, int rc,
                                  const struct renc_blob_status *bs, const char *subject,
                                  const char *held)
{
    r->validated = 1;
    r->rc = rc;
    r->valid = rc == 0;
    r->records = bs->records;
    if (bs->ref[0])
        snprintf(r->opened_by, sizeof r->opened_by, "%s", bs->ref);
    char size[32];
    renc_bytes_text(size, sizeof size, r->bytes);
    if (rc == 0)
        renc_textf(r->detail, sizeof r->detail,
                 "%llu blobs, %s, %llu records opened and checked with %s (held: %s)",
                 (unsigned long long)r->entries, size, (unsigned long long)bs->records,
                 r->opened_by[0] ? r->opened_by : "the held keys", held);
    else if (bs->in_records)
        renc_textf(r->detail, sizeof r->detail, "%s: record %llu: %s", subject,
                 (unsigned long long)bs->record, renc_strerror(rc));
    else
        renc_textf(r->detail, sizeof r->detail, "%s: %s%s%s (keys it holds: %s)", subject,
                 renc_strerror(rc), bs->ref[0] ? ", key " : "", bs->ref, held);
}

static int renc_restore_common(int argc, char **argv, int check)
{
    struct renc_data_ctx c = {.cmd = check ? "restore-check" : "restore"};
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
    struct renc_text request = {0};
    renc_text_add(&request, "backup");
    renc_text_file(&request, realpath(path, real) ? real : path);
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
        status = renc_check_print(c.cmd, path, c.a.json, r);
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
        renc_check_validation(r, rc, &bs, path, held);
        status = renc_check_print(c.cmd, path, c.a.json, r);
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

/* ---- copy and copy-check ---------------------------------------------- */

static const char renc_copy_usage[] =
    "usage: reencrypt copy --from A --to B\n"
    "copies A's blobs into DATA/B/blobs/ (same names replaced), sealed under B's policy key,\n"
    "when the copy rule allows it.\n";
static const char renc_copy_check_usage[] =
    "usage: reencrypt copy-check --from A --to B [--json]\n"
    "says whether A may be copied into B and why, and opens every record of A's blobs with\n"
    "the keys B holds; writes nothing.\n";

static int renc_copy_common(int argc, char **argv, int check)
{
    struct renc_data_ctx c = {.cmd = check ? "copy-check" : "copy"};
    const char *usage = check ? renc_copy_check_usage : renc_copy_usage;
    int status = renc_data_parse(&c, usage, argc, argv);
    if (status >= 0)
        return status;
    if (c.a.arg_count != 0 || !c.a.from || !c.a.to || (!check && c.a.json)) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    struct renc_env from, to;
    struct renc_check_result *r = renc_calloc(1, sizeof *r);
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    struct renc_stage stage;
    renc_stage_init(&stage, 1);
    struct renc_dest_sink dest = {0};
    struct renc_text request = {0};
    int same = 0;
    char held[2048] = "", what[256], why[1024] = "";
    snprintf(what, sizeof what, "%s -> %s", c.a.from, c.a.to);
    if (!r) {
        renc_err(c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    if ((status = renc_data_open(&c)) >= 0)
        goto out;
    int rc = renc_envctl_ready(c.cat, c.ks, c.a.from, &from, NULL, 0, why, sizeof why);
    if (rc == 0 || rc == -RENC_E_ENV_LOCKED)
        rc = renc_envctl_ready(c.cat, c.ks, c.a.to, &to, NULL, 0, why, sizeof why);
    if (rc && rc != -RENC_E_ENV_LOCKED) {
        renc_err(c.cmd, "%s", why[0] ? why : renc_strerror(rc));
        status = renc_exit_for(rc);
        goto out;
    }
    renc_rule_copy(&r->verdict, &from, &to);
    if (!check && !r->verdict.allowed) {
        renc_err(c.cmd, "%s -> %s: refused: %s", c.a.from, c.a.to, r->verdict.reason);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    if (r->verdict.rc == -RENC_E_ENV_LOCKED) {
        renc_textf(r->detail, sizeof r->detail, "an environment is locked: nothing is read");
        status = renc_check_print(c.cmd, what, c.a.json, r);
        goto out;
    }
    if ((status = renc_data_hold_keys(&c, to.id, held, sizeof held)) >= 0 ||
        (!check && (status = renc_data_lock(&c, to.id)) >= 0) ||
        (status = renc_data_scan_blobs(&c, from.id, &scan)) >= 0)
        goto out;
    /* The source's blobs, by name, size and time: tells a rerun. */
    renc_text_add(&request, "from=%s\n", from.id);
    for (size_t i = 0; i < scan.count; i++)
        renc_text_file(&request, scan.items[i].path);
    if (request.rc) {
        renc_err(c.cmd, "%s", renc_strerror(request.rc));
        status = RENC_EXIT_FAILED;
        goto out;
    }
    if (!check && (status = renc_data_settle(&c, to.id, c.cmd, request.p, &same)) >= 0)
        goto out;
    if (same) {
        printf("copy: the interrupted copy was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if (!check && (status = renc_data_stage_begin(&c, &stage, to.id, request.p)) >= 0)
        goto out;
    struct renc_blob_status bs = {.slot = -1};
    uint64_t records = 0, failed = 0;
    char refs_seen[1024] = "";
    for (size_t i = 0; i < scan.count; i++) {
        const char *path = scan.items[i].path;
        char rel[8192];
        int out_fd = -1, dest_rc = 0;
        dest.write_rc = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno : 0;
        uint64_t len = RENC_PLAINTEXT_UNKNOWN;
        struct renc_header h;
        memset(&h, 0, sizeof h);
        if (rc == 0 && renc_blob_read_header(fd, &h, NULL) == 0) {
            len = h.plaintext_len;
        }
        const char *name = renc_context_get(&h.ctx, "name");
        if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
            rc = -errno;
        struct renc_blob_status sealst;
        if (rc == 0 && !check) {
            if (snprintf(rel, sizeof rel, "blobs/%s", scan.items[i].rel) >= (int)sizeof rel)
                rc = -ENAMETOOLONG;
            const char *refs[] = {to.key_ref};
            struct renc_seal_opts so = {
                .env = to.id, .kind = "blob", .name = name ? name : scan.items[i].rel,
                .key_refs = refs, .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
                .header_room = RENC_DEFAULT_HEADER_ROOM,
            };
            if (rc == 0)
                rc = dest_rc = renc_stage_open(&stage, rel, &out_fd);
            if (rc == 0)
                rc = renc_dest_note(&dest, renc_sealer_new(&dest.sealer, c.ks, &so, out_fd,
                                                           len, &sealst));
        }
        renc_header_cleanup(&h);
        memset(&bs, 0, sizeof bs);
        bs.slot = -1;
        if (rc == 0)
            rc = renc_blob_open_to(c.ks, fd, dest.sealer ? renc_dest_write : NULL, &dest, NULL,
                                   &bs);
        if (rc == 0 && dest.sealer)
            rc = renc_dest_note(&dest, renc_sealer_finish(dest.sealer));
        renc_sealer_free(dest.sealer);
        dest.sealer = NULL;
        if (out_fd >= 0) {
            int rc2 = renc_dest_note(&dest, renc_stage_close(&stage, out_fd));
            rc = rc ? rc : rc2;
        }
        if (fd >= 0)
            close(fd);
        if (rc) {
            failed++;
            if (check) {
                if (failed == 1)
                    renc_check_validation(r, rc, &bs, path, held);
                continue;
            }
            if (dest_rc)
                renc_data_dest_err(&c, &stage, rel, dest_rc);
            else if (dest.write_rc)
                renc_err(c.cmd, "writing %s (from %s): %s", stage.tmp, path,
                         renc_strerror(dest.write_rc));
            else
                renc_blob_err(c.cmd, path, rc, &bs);
            renc_err(c.cmd, "nothing was copied into %s", to.id);
            status = RENC_EXIT_FAILED;
            goto out;
        }
        r->entries++;
        r->bytes += bs.plaintext_bytes;
        records += bs.records;
        if (bs.ref[0] && !strstr(refs_seen, bs.ref) &&
            strlen(refs_seen) + strlen(bs.ref) + 3 < sizeof refs_seen)
            snprintf(refs_seen + strlen(refs_seen), sizeof refs_seen - strlen(refs_seen),
                     "%s%s", refs_seen[0] ? ", " : "", bs.ref);
    }
    if (check) {
        if (failed) {
            char first[2048];
            renc_textf(first, sizeof first, "%s", r->detail);
            renc_textf(r->detail, sizeof r->detail, "%llu of %zu blobs of %s do not open with "
                     "the keys %s holds; the first: %s",
                     (unsigned long long)failed, scan.count, from.id, to.id, first);
        } else {
            struct renc_blob_status all = {.records = records};
            snprintf(all.ref, sizeof all.ref, "%s", refs_seen);
            renc_check_validation(r, 0, &all, what, held);
        }
        status = renc_check_print(c.cmd, what, c.a.json, r);
        goto out;
    }
    char current[RENC_MAX_REF_LEN + 1] = "", in[512], out_detail[512];
    renc_keystore_resolve(c.ks, current, sizeof current, to.key_ref);
    renc_textf(in, sizeof in, "%llu blobs from %s", (unsigned long long)r->entries, from.id);
    renc_textf(out_detail, sizeof out_detail, "%llu blobs to %s", (unsigned long long)r->entries,
               to.id);
    struct renc_stage_note notes[] = {{to.id, "copy-in", in}, {from.id, "copy-out", out_detail}};
    if ((rc = renc_stage_commit(&stage, notes, 2))) {
        renc_data_commit_err(&c, &stage, rc);
        renc_err(c.cmd, "nothing was copied into %s", to.id);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    printf("copy: %s -> %s: %llu blobs (%llu bytes) copied, sealed under %s (%s)\n", from.id,
           to.id, (unsigned long long)r->entries, (unsigned long long)r->bytes, current,
           r->verdict.reason);
    status = RENC_EXIT_OK;
out:
    renc_sealer_free(dest.sealer);
    renc_free(request.p);
    renc_stage_cleanup(&stage);
    renc_scan_cleanup(&scan);
    renc_free(r);
    renc_data_close(&c);
    return status;
}

int renc_cmd_copy(int argc, char **argv)
{
    return renc_copy_common(argc, argv, 0);
}

int renc_cmd_copy_check(int argc, char **argv)
{
    return renc_copy_common(argc, argv, 1);
}
