/* The helpers the environment-data commands share (cmd_data.h): put,
 * backup, restore and copy, and their checks (docs/ENVIRONMENTS.md).
 *
 * Plaintext never touches the disk in any of them: blobs are opened record
 * by record and their plaintext goes straight into a sealer (put, restore,
 * copy) or an archive writer (backup), or nowhere at all (the checks).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "blob/blobfile.h"
#include "keys/provider.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/envctl.h"
#include "env/envdata.h"
#include "store/scan.h"
#include "run/session.h"
#include "reencrypt/stage.h"

/* --threads and --memory, as run takes them.  0, or -1 after saying why. */
static int renc_data_parse_size(const char *cmd, struct renc_data_args *a, int opt,
                                const char *arg)
{
    uint64_t v;
    int ok = renc_parse_size(arg, &v) == 0;
    if (opt == 'N' && (!ok || v < 1 || v > 1024)) {
        renc_err(cmd, "--threads must be 1..1024");
        return -1;
    }
    if (opt == 'M' && (!ok || v < RENC_DATA_BLOB_BYTES || v > ((uint64_t)1 << 40))) {
        renc_err(cmd, "--memory must be a byte count (K, M, G suffixes) of at least %llu "
                      "(one blob's buffers) and at most 1T",
                 (unsigned long long)RENC_DATA_BLOB_BYTES);
        return -1;
    }
    if (opt == 'N') {
        a->threads = (unsigned)v;
        a->threads_given = 1;
    }
    else
        a->memory = v;
    return 0;
}

unsigned renc_data_window(const struct renc_data_ctx *c, const char *key_ref, int remote,
                          unsigned *threads)
{
    uint64_t by_memory = c->a.memory / RENC_DATA_BLOB_BYTES;
    unsigned want = c->a.threads;
    if (!c->a.threads_given && want < 16 && key_ref &&
        (renc_provider_caps(key_ref) & RENC_PROVIDER_REMOTE))
        want = 16;
    /* A few more blobs than workers: while the calling thread stages one
     * (or makes a batch durable), the workers have the next ones. */
    uint64_t window = (uint64_t)want * 4;
    if (window > by_memory)
        window = by_memory;
    if (remote || window < 1)
        window = 1;
    *threads = want < window ? want : (unsigned)window;
    return (unsigned)window;
}

int renc_data_held_ready(struct renc_data_held *h, uint64_t len)
{
    if (len <= h->cap && h->p)
        return 0;
    RENC_RETURN_IF(len > SIZE_MAX, -RENC_E_NOMEM);
    renc_data_held_free(h);
    h->p = renc_malloc(len ? (size_t)len : 1);
    RENC_RETURN_IF(!h->p, -RENC_E_NOMEM);
    h->cap = (size_t)len;
    return 0;
}

uint64_t renc_data_held_max(const struct renc_data_ctx *c, unsigned window)
{
    uint64_t share = c->a.memory / (window ? window : 1);
    return share < RENC_DATA_HELD_MAX ? share : RENC_DATA_HELD_MAX;
}

void renc_data_held_free(struct renc_data_held *h)
{
    if (h->p)
        explicit_bzero(h->p, h->cap);
    renc_free(h->p);
    h->p = NULL;
    h->cap = 0;
}

int renc_data_parse(struct renc_data_ctx *c, const char *usage, int argc, char **argv)
{
    static const struct option opts[] = {
        {"env", required_argument, NULL, 'e'},
        {"name", required_argument, NULL, 'n'},
        {"target", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 'T'},
        {"replace", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 'N'},
        {"memory", required_argument, NULL, 'M'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct renc_data_args *a = &c->a;
    int opt;
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 0 ? (unsigned)ncpu : 1;
    a->memory = (uint64_t)256 << 20;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once(c->cmd, opts, "entfTNM", opt, &seen))
            return RENC_EXIT_USAGE;
        if ((opt == 'N' || opt == 'M') && renc_data_parse_size(c->cmd, a, opt, optarg))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'e': a->env = optarg; break;
        case 'n': a->name = optarg; break;
        case 't': a->target = optarg; break;
        case 'f': a->from = optarg; break;
        case 'T': a->to = optarg; break;
        case 'r': a->replace = 1; break;
        case 'j': a->json = 1; break;
        case 'N': case 'M': break; /* taken above */
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
int renc_data_open(struct renc_data_ctx *c)
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

void renc_data_close(struct renc_data_ctx *c)
{
    renc_session_cleanup(&c->sess);
    renc_catalog_close(c->cat);
    renc_keystore_free(c->ks);
    renc_keyring_free(c->kr);
}

/* Loads an environment that is to be read or written: refused when it is
 * locked.  current (may be NULL) gets its policy key's current version.
 * Returns -1 to continue or an exit. */
int renc_data_ready(struct renc_data_ctx *c, const char *id, struct renc_env *env,
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
int renc_data_lock(struct renc_data_ctx *c, const char *id)
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
int renc_data_hold_keys(struct renc_data_ctx *c, const char *id, char *list, size_t max)
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
int renc_data_item_rel_cmp(const void *x, const void *y)
{
    return strcmp(((const struct renc_scan_item *)x)->rel, ((const struct renc_scan_item *)y)->rel);
}

int renc_data_scan_blobs(struct renc_data_ctx *c, const char *id, struct renc_scan *scan)
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
        qsort(scan->items, scan->count, sizeof *scan->items, renc_data_item_rel_cmp);
    return -1;
}

/* Settles the stages a gone process left on environment id (the caller
 * holds its lock): completed, or their temporaries removed.  *same says
 * that the completed one was this very command (op and request).  Returns
 * -1 to go on, or an exit. */
int renc_data_settle(struct renc_data_ctx *c, const char *id, const char *op,
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
int renc_data_stage_begin(struct renc_data_ctx *c, struct renc_stage *stage,
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
void renc_data_dest_err(struct renc_data_ctx *c, const struct renc_stage *stage,
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
void renc_data_commit_err(struct renc_data_ctx *c, const struct renc_stage *stage, int rc)
{
    if (stage->recorded == 1)
        renc_err(c->cmd, "%s: making the new files durable: %s; nothing is written",
                 stage->root, renc_strerror(rc));
}

int renc_data_dest_note(struct renc_dest_sink *d, int rc)
{
    if (rc < 0 && -rc < RENC_E_BASE && d->write_rc == 0)
        d->write_rc = rc;
    return rc;
}

int renc_data_dest_write(void *arg, const uint8_t *buf, size_t len)
{
    struct renc_dest_sink *d = arg;
    return renc_data_dest_note(d, renc_sealer_write(d->sealer, buf, len));
}

void renc_data_text_add(struct renc_data_text *t, const char *fmt, ...)
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
void renc_data_text_file(struct renc_data_text *t, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        renc_data_text_add(t, "\t%s\t%lld\t%lld.%09ld\n", path, (long long)st.st_size,
                           (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    else
        renc_data_text_add(t, "\t%s\n", path);
}

int renc_data_check_print(const char *cmd, const char *what, int json,
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

void renc_data_check_validation(struct renc_check_result *r, int rc,
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
