/* reencrypt put — seals files into an environment under its policy key
 * (docs/ENVIRONMENTS.md); shared helpers in cmd_data.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/path.h"
#include "common/workq.h"
#include "keys/keyref.h"
#include "env/archive.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "env/envdata.h"
#include "io/file.h"
#include "store/scan.h"
#include "store/store.h"
#include "run/session.h"
#include "reencrypt/stage.h"

static const char renc_put_usage[] =
    "usage: reencrypt put --env ID [--name NAME] [--replace] [--threads N] [--memory BYTES]\n"
    "         (FILE | DIR)...\n"
    "seals each FILE into DATA/ID/blobs/ (as NAME, or its own name), and every file below a\n"
    "DIR (as DIR's name, or NAME, then its path below DIR), under the environment's policy\n"
    "key; all or none of them appear.  A blob of that name is refused unless --replace.\n"
    "An environment whose data is in blob storage gets them in URL/ID/blobs/.\n";

/* One file to seal: its path and the blob name it gets. */
struct renc_put_item {
    char *path, *want;
};

struct renc_put_plan {
    struct renc_put_item *items;
    size_t count, cap;
    struct renc_data_text request; /* every (name, file, size, mtime): tells a rerun */
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
    renc_data_text_add(&p->request, "%s", want);
    renc_data_text_file(&p->request, path);
    return p->request.rc;
}

/* One file in flight: opened and staged on the calling thread, sealed on
 * a worker, handed to the stage's batch on the calling thread again. */
struct renc_put_slot {
    int in_fd, out_fd;
    uint64_t size;
    struct renc_blob_status bs;
    char tmp[sizeof ((struct renc_stage *)0)->tmp]; /* its temporary, for messages */
};

/* What put's workers share: the files, their slots, the stage, the total. */
struct renc_put_run {
    struct renc_data_ctx *c;
    const struct renc_env *env;
    const struct renc_put_plan *plan;
    struct renc_stage *stage;
    struct renc_put_slot *slots;
    uint64_t bytes;
};

/* Opens file i and its temporary (as blobs/<want>).  Returns 0, or an
 * exit (said why): the run stops. */
static int renc_put_prep(void *arg, size_t i, unsigned slot)
{
    struct renc_put_run *p = arg;
    struct renc_data_ctx *c = p->c;
    struct renc_put_slot *s = &p->slots[slot];
    const char *in = p->plan->items[i].path;
    char rel[8192];
    if (snprintf(rel, sizeof rel, "blobs/%s", p->plan->items[i].want) >= (int)sizeof rel) {
        renc_err(c->cmd, "%s: %s", in, renc_strerror(-ENAMETOOLONG));
        return RENC_EXIT_USAGE;
    }
    s->in_fd = open(in, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (s->in_fd < 0 || fstat(s->in_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = s->in_fd < 0 ? errno : EISDIR;
        renc_err(c->cmd, "%s: %s", in, s->in_fd < 0 ? strerror(e) : "not a regular file");
        if (s->in_fd >= 0)
            close(s->in_fd);
        return RENC_EXIT_USAGE;
    }
    s->size = (uint64_t)st.st_size;
    s->out_fd = -1;
    int rc = renc_stage_open(p->stage, rel, &s->out_fd);
    if (rc) {
        renc_data_dest_err(c, p->stage, rel, rc);
        close(s->in_fd);
        return rc == -EEXIST ? renc_exit_for(rc) : RENC_EXIT_FAILED;
    }
    memcpy(s->tmp, p->stage->tmp, sizeof s->tmp);
    return 0;
}

/* Seals file i into its temporary, under the environment's policy key. */
static int renc_put_work(void *arg, size_t i, unsigned slot)
{
    struct renc_put_run *p = arg;
    struct renc_put_slot *s = &p->slots[slot];
    const char *refs[] = {p->env->key_ref};
    struct renc_seal_opts so = {
        .env = p->env->id, .kind = "blob", .name = p->plan->items[i].want, .key_refs = refs,
        .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
        .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    memset(&s->bs, 0, sizeof s->bs);
    int rc = renc_blob_seal(p->c->ks, &so, s->in_fd, s->out_fd, s->size, &s->bs);
    close(s->in_fd);
    return rc;
}

/* File i sealed: its temporary joins the stage's batch to be made
 * durable; a failure says which and stops the run. */
static int renc_put_done(void *arg, size_t i, unsigned slot, int rc, int stopped)
{
    struct renc_put_run *p = arg;
    struct renc_put_slot *s = &p->slots[slot];
    if (stopped) { /* the stage's cleanup removes the temporary */
        close(s->out_fd);
        return 0;
    }
    int rc2 = renc_stage_close(p->stage, s->out_fd);
    if (rc == 0)
        rc = rc2;
    if (rc == -RENC_E_LENGTH_MISMATCH) {
        renc_blob_err(p->c->cmd, p->plan->items[i].path, rc, &s->bs);
    } else if (rc) {
        renc_err(p->c->cmd, "writing %s (from %s): %s; nothing is sealed", s->tmp,
                 p->plan->items[i].path, renc_strerror(rc));
    }
    if (rc)
        return RENC_EXIT_FAILED;
    p->bytes += s->bs.plaintext_bytes;
    return 0;
}

/* Seals every file of the plan into the stage, on the workers.  Returns
 * -1 to go on, or an exit. */
static int renc_put_all(struct renc_data_ctx *c, const struct renc_env *env,
                        struct renc_stage *stage, const struct renc_put_plan *plan,
                        uint64_t *bytes)
{
    unsigned threads;
    unsigned window = renc_data_window(c, env->key_ref, 0, &threads);
    struct renc_put_run p = {.c = c, .env = env, .plan = plan, .stage = stage,
                             .slots = renc_calloc(window, sizeof *p.slots)};
    if (!p.slots) {
        renc_err(c->cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    static const struct renc_workq_ops ops = {renc_put_prep, renc_put_work, renc_put_done};
    int stop = renc_workq_run(plan->count, threads, window, &ops, &p);
    renc_free(p.slots);
    *bytes = p.bytes;
    return stop ? stop : -1;
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

/* ---- into a data root in blob storage ------------------------------------ */

/* The blocks a blob's records are uploaded in hold whole records and stay
 * within the engine's chunk (4 MiB), as the blocks it writes itself: the
 * plaintext is read 64 KiB at a time, and what is sealed is drained into
 * a block once one more record (a segment and its tag) might not fit. */
#define RENC_PUT_READ_BYTES (64u << 10)
#define RENC_PUT_BLOCK_BYTES (4u << 20)
#define RENC_PUT_RECORD_ROOM 4096u /* a record's bytes beyond its segment */

/* The sealer writes into a memory file; each drain moves what it holds
 * into one block of txn and empties it, so memory stays near one block. */
struct renc_put_pipe {
    struct renc_store *store;
    struct renc_store_txn *txn;
    int mfd;
    uint8_t *buf;
    size_t cap;
};

static int renc_put_drain(struct renc_put_pipe *p)
{
    off_t end = lseek(p->mfd, 0, SEEK_CUR);
    if (end <= 0)
        return end < 0 ? -errno : 0;
    if ((size_t)end > p->cap) {
        uint8_t *g = renc_realloc(p->buf, (size_t)end);
        RENC_RETURN_IF(!g, -RENC_E_NOMEM);
        p->buf = g;
        p->cap = (size_t)end;
    }
    size_t got = 0;
    int rc = lseek(p->mfd, 0, SEEK_SET) == 0 ? renc_file_read_full(p->mfd, p->buf, (size_t)end,
                                                                    &got)
                                             : -errno;
    if (rc == 0 && got != (size_t)end)
        rc = -RENC_E_TRUNCATED;
    if (rc == 0)
        rc = p->store->ops->append(p->store, p->txn, p->buf, got);
    if (rc == 0 && (ftruncate(p->mfd, 0) != 0 || lseek(p->mfd, 0, SEEK_SET) != 0))
        rc = -errno;
    return rc;
}

/* A push-fed sealer into a staged version (cmd_data.h). */
struct renc_store_sealer {
    struct renc_put_pipe p;
    struct renc_sealer *sealer;
    off_t drain_at; /* one more record might not fit the block: drain */
};

void renc_store_sealer_free(struct renc_store_sealer *ss)
{
    if (!ss)
        return;
    renc_sealer_free(ss->sealer);
    if (ss->p.mfd >= 0)
        close(ss->p.mfd);
    renc_free(ss->p.buf);
    renc_free(ss);
}

int renc_store_sealer_new(struct renc_store_sealer **out, struct renc_keystore *ks,
                          const struct renc_seal_opts *so, struct renc_store *s,
                          struct renc_store_txn *txn, uint64_t len, struct renc_blob_status *bs)
{
    struct renc_store_sealer *ss = renc_calloc(1, sizeof *ss);
    RENC_RETURN_IF(!ss, -RENC_E_NOMEM);
    uint64_t seg = (uint64_t)1 << so->seg_shift;
    ss->drain_at = seg + RENC_PUT_RECORD_ROOM >= RENC_PUT_BLOCK_BYTES
                       ? 1
                       : (off_t)(RENC_PUT_BLOCK_BYTES - seg - RENC_PUT_RECORD_ROOM);
    ss->p = (struct renc_put_pipe){.store = s, .txn = txn,
                                   .mfd = memfd_create("renc-seal", MFD_CLOEXEC)};
    int rc = ss->p.mfd < 0 ? -errno : renc_sealer_new(&ss->sealer, ks, so, ss->p.mfd, len, bs);
    if (rc == 0)
        rc = renc_put_drain(&ss->p); /* the header alone: the block a rewrap replaces */
    if (rc) {
        renc_store_sealer_free(ss);
        return rc;
    }
    *out = ss;
    return 0;
}

int renc_store_sealer_write(struct renc_store_sealer *ss, const uint8_t *buf, size_t len)
{
    int rc = renc_sealer_write(ss->sealer, buf, len);
    if (rc == 0 && lseek(ss->p.mfd, 0, SEEK_CUR) >= ss->drain_at)
        rc = renc_put_drain(&ss->p);
    return rc;
}

int renc_store_sealer_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_store_sealer_write(arg, buf, len);
}

int renc_store_sealer_finish(struct renc_store_sealer *ss)
{
    int rc = renc_sealer_finish(ss->sealer);
    return rc ? rc : renc_put_drain(&ss->p);
}

int renc_seal_to_store(struct renc_keystore *ks, const struct renc_seal_opts *so,
                       struct renc_store *s, struct renc_store_txn *txn, int in_fd, uint64_t len,
                       struct renc_blob_status *bs)
{
    struct renc_store_sealer *ss = NULL;
    uint8_t *in = renc_malloc(RENC_PUT_READ_BYTES);
    int rc = in ? renc_store_sealer_new(&ss, ks, so, s, txn, len, bs) : -RENC_E_NOMEM;
    for (size_t got = 1; rc == 0 && got > 0;)
        if ((rc = renc_file_read_full(in_fd, in, RENC_PUT_READ_BYTES, &got)) == 0)
            rc = renc_store_sealer_write(ss, in, got);
    if (rc == 0)
        rc = renc_store_sealer_finish(ss);
    renc_store_sealer_free(ss);
    renc_free(in);
    return rc;
}

/* Stages one file as blob `want` under the store's root (nothing visible
 * until its commit).  Returns -1 to go on, or an exit. */
static int renc_put_stage_remote(struct renc_data_ctx *c, const struct renc_env *env,
                                 struct renc_store *st, struct renc_store_txn *txn,
                                 const char *in, const char *want, uint64_t *bytes)
{
    int in_fd = open(in, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (in_fd < 0 || fstat(in_fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        renc_err(c->cmd, "%s: %s", in, in_fd < 0 ? strerror(errno) : "not a regular file");
        if (in_fd >= 0)
            close(in_fd);
        return RENC_EXIT_USAGE;
    }
    struct renc_scan_item it = {.path = (char *)want, .rel = (char *)want};
    struct renc_store_tags tags = {.tag = "put"};
    int rc = st->ops->begin(st, &it, RENC_COMMIT_MIRROR, &tags, txn);
    const char *refs[] = {env->key_ref};
    struct renc_seal_opts so = {
        .env = env->id, .kind = "blob", .name = want, .key_refs = refs, .key_ref_count = 1,
        .seg_shift = RENC_SEG_SHIFT_DEFAULT, .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    struct renc_blob_status bs;
    memset(&bs, 0, sizeof bs);
    if (rc == 0)
        rc = renc_seal_to_store(c->ks, &so, st, txn, in_fd, (uint64_t)sb.st_size, &bs);
    close(in_fd);
    if (rc == -RENC_E_LENGTH_MISMATCH) {
        renc_blob_err(c->cmd, in, rc, &bs);
    } else if (rc) {
        renc_err(c->cmd, "%s%s (from %s): %s; nothing is put", txn->final[0] ? "" : want,
                 txn->final, in, renc_strerror(rc));
    }
    if (rc)
        return RENC_EXIT_FAILED;
    *bytes += bs.plaintext_bytes;
    return -1;
}

/* Refuses (without --replace) a name the environment already has.
 * Returns -1 to go on, or an exit. */
static int renc_put_check_names(struct renc_data_ctx *c, struct renc_store *s,
                                const struct renc_put_plan *plan)
{
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    int rc = renc_store_list_scan(s, &scan);
    int status = -1;
    if (rc) {
        renc_err(c->cmd, "%s: %s", s->ops->describe(s), renc_strerror(rc));
        status = renc_exit_for(rc);
    }
    for (size_t i = 0; status < 0 && !c->a.replace && i < plan->count; i++) {
        for (size_t k = 0; k < scan.count; k++) {
            if (strcmp(scan.items[k].rel, plan->items[i].want) == 0) {
                renc_err(c->cmd, "%s: the environment has a blob of that name; --replace "
                                 "replaces it; nothing is put", scan.items[k].path);
                status = renc_exit_for(-EEXIST);
                break;
            }
        }
    }
    renc_scan_cleanup(&scan);
    return status;
}

/* Stages every file, then commits each: nothing is visible until all are
 * staged (a failure before leaves only uncommitted blocks, which the
 * service drops); the commits are one per blob, so a crash among them
 * leaves the first ones put.  Returns an exit. */
static int renc_put_remote_all(struct renc_data_ctx *c, const struct renc_env *env,
                               struct renc_store *s, const struct renc_put_plan *plan,
                               uint64_t *bytes)
{
    struct renc_store_txn *txns = renc_calloc(plan->count ? plan->count : 1, sizeof *txns);
    int status = -1;
    if (!txns) {
        renc_err(c->cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        status = RENC_EXIT_FAILED;
    }
    size_t staged = 0, done = 0;
    for (; status < 0 && staged < plan->count; staged++)
        status = renc_put_stage_remote(c, env, s, &txns[staged], plan->items[staged].path,
                                       plan->items[staged].want, bytes);
    for (; status < 0 && done < plan->count; done++) {
        int rc = s->ops->commit(s, &txns[done], NULL); /* commit point of this blob */
        if (rc) {
            renc_err(c->cmd, "%s/%s: %s; %zu of %zu files are put", s->ops->describe(s),
                     txns[done].final, renc_strerror(rc), done, plan->count);
            status = RENC_EXIT_FAILED;
        }
    }
    for (size_t i = done; i < staged; i++) /* staged, never committed: dropped */
        s->ops->abort(s, &txns[i]);
    renc_free(txns);
    return status;
}

/* put into an environment whose data is in blob storage: URL/ID/blobs/. */
static int renc_put_remote(struct renc_data_ctx *c, const struct renc_env *env,
                           const char *current, struct renc_put_plan *plan)
{
    char root[4096];
    struct renc_store *s = NULL;
    struct renc_store_creds *creds = renc_malloc(sizeof *creds);
    char why[512] = "";
    int rc = creds ? renc_store_creds_from(&c->a.g, creds) : -RENC_E_NOMEM;
    if (rc == 0 && (rc = renc_envdata_root(root, sizeof root - 8, c->a.g.data_dir, env)) == 0)
        strcat(root, "/blobs");
    struct renc_store_spec spec = {.root = root, .blob = creds ? &creds->blob : NULL,
                                   .why = why, .why_max = sizeof why};
    if (rc == 0)
        rc = renc_store_open(&s, &spec);
    int status = -1;
    uint64_t bytes = 0;
    if (rc) {
        renc_err(c->cmd, "%s: %s", env->data_root, why[0] ? why : renc_strerror(rc));
        status = renc_exit_for(rc);
    }
    if (status < 0)
        status = renc_put_check_names(c, s, plan);
    if (status < 0)
        status = renc_put_remote_all(c, env, s, plan, &bytes);
    if (status < 0) {
        char detail[256];
        renc_textf(detail, sizeof detail, "%zu files, %llu bytes, under %s", plan->count,
                   (unsigned long long)bytes, current);
        if ((rc = renc_catalog_note(c->cat, env->id, "put", detail)))
            renc_err(c->cmd, "catalog: %s: %s", env->id, renc_strerror(rc));
        printf("put: sealed %zu files (%llu bytes) into %s under %s, in %s/\n", plan->count,
               (unsigned long long)bytes, env->id, current, root);
        status = RENC_EXIT_OK;
    }
    renc_store_free(s);
    renc_free(creds);
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
    renc_data_text_add(&plan.request, "replace=%d\n", c.a.replace);
    uint64_t bytes = 0;
    int same = 0;
    if ((status = renc_data_open(&c)) >= 0 ||
        (status = renc_data_ready(&c, c.a.env, &env, current, sizeof current)) >= 0 ||
        (!env.data_root[0] && (status = renc_data_lock(&c, c.a.env)) >= 0))
        goto out;
    /* Every file is listed and every name checked before anything is written. */
    for (int i = 0; i < c.a.arg_count && status < 0; i++)
        status = renc_put_gather(&c, c.a.args[i], &plan);
    if (status < 0 && plan.request.rc) {
        renc_err(c.cmd, "%s", renc_strerror(plan.request.rc));
        status = RENC_EXIT_FAILED;
    }
    if (status < 0 && env.data_root[0]) {
        status = renc_put_remote(&c, &env, current, &plan);
        goto out;
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
    if ((status = renc_put_all(&c, &env, &stage, &plan, &bytes)) >= 0)
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
