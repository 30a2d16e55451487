/* reencrypt run | verify | plan — the bulk commands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "crypto/akv.h"
#include "crypto/record.h"
#include "io/file.h"
#include "io/replace.h"
#include "reencrypt/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/engine.h"
#include "reencrypt/envctl.h"
#include "reencrypt/envdata.h"
#include "reencrypt/scan.h"
#include "reencrypt/session.h"
#include "reencrypt/stage.h"
#include "reencrypt/transform.h"

static const char renc_run_usage[] =
    "usage: reencrypt run (--env ID... | --all-envs) [--mode rewrap|rekey] [options below]\n"
    "       reencrypt run --to REF [--mode rewrap|rekey] [--out DIR] [--keep-old]\n"
    "         [--drop REF]... [--dry-run] [--share-dek N] [--no-verify] [--fail-fast]\n"
    "         [--threads N] [--memory BYTES] [--progress=bar|json|none] [--report FILE]\n"
    "         [--crypto-backend auto|openssl|ipsec-mb] [--direct] [--journal FILE | --no-journal]\n"
    "         [--resume] [--restart] [--copy] (SOURCE... | --manifest FILE)\n";
static const char renc_verify_usage[] =
    "usage: reencrypt verify [--threads N] [--memory BYTES] [--progress=bar|json|none] [--direct]\n"
    "         [--report FILE] (SOURCE... | --manifest FILE | --env ID... | --all-envs)\n";

/* QP(buf, path): path quoted for a message (renc_cli_path_quote) into the
 * char array buf. */
#define QP(buf, path) renc_cli_path_quote((buf), sizeof(buf), (path))

enum renc_progress_mode { RENC_PROGRESS_AUTO, RENC_PROGRESS_BAR, RENC_PROGRESS_JSON, RENC_PROGRESS_NONE };

struct renc_bulk_args {
    struct renc_global g;
    const char *to, *out, *manifest, *report;
    const char *drop[16];
    size_t drop_count;
    enum renc_run_mode mode;
    int keep_old, dry_run, no_verify, fail_fast, direct, identity;
    const char *journal;
    int no_journal, resume, restart, copy;
    uint64_t finished_before; /* blobs finished by earlier attempts of the run */
    uint64_t held;            /* blobs held by a header write recovery could not settle */
    const char *out_dir;      /* the canonical --out (NULL: in place) */
    unsigned threads, share_dek;
    int threads_given;
    uint64_t memory;
    enum renc_progress_mode progress;
    enum renc_aead_backend backend;
    char **sources;
    int source_count;
    const char *run_only; /* the first option given that only run takes */
    /* Environments (--env, --all-envs): each is one run over DATA/<id>
     * to its policy key. */
    const char *envs[64];
    size_t env_count;
    int all_envs;
    /* What one run came to, for the catalog. */
    const char *outcome;      /* "finished", "failed", "interrupted" or NULL */
    char withdrawn_ref[RENC_MAX_REF_LEN + 1]; /* a key found revoked or disabled at its vault */
    int withdrawn_rc;
    uint64_t failed_total;
    char journal_path[4096];
    /* An environment's run: its staged writes left by a killed put,
     * restore or copy are settled once its lock is held. */
    struct renc_catalog *env_cat;
    const char *env_id;
};

/* The most --memory may be: the machine's physical memory (and never more
 * than 1 TiB, the most the engine sizes its pools for). */
static uint64_t renc_memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t cap = (uint64_t)1 << 40;
    if (pages <= 0 || page <= 0)
        return cap;
    uint64_t phys = (uint64_t)pages * (uint64_t)page;
    return phys < cap ? phys : cap;
}

/* Parses the options of run, verify and plan; returns -1 to continue, or an
 * exit code. */
static int renc_bulk_parse(const char *cmd, const char *usage, int argc, char **argv,
                           struct renc_bulk_args *a)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        {"manifest", required_argument, NULL, 'M'},
        {"keep-old", no_argument, NULL, 'k'},
        {"drop", required_argument, NULL, 'd'},
        {"dry-run", no_argument, NULL, 'n'},
        {"share-dek", required_argument, NULL, 's'},
        {"no-verify", no_argument, NULL, 'V'},
        {"fail-fast", no_argument, NULL, 'F'},
        {"threads", required_argument, NULL, 'T'},
        {"memory", required_argument, NULL, 'B'},
        {"progress", required_argument, NULL, 'P'},
        {"report", required_argument, NULL, 'r'},
        {"crypto-backend", required_argument, NULL, 'C'},
        {"direct", no_argument, NULL, 'D'},
        {"bench-identity", no_argument, NULL, 'I'},
        {"journal", required_argument, NULL, 'J'},
        {"no-journal", no_argument, NULL, 'j'},
        {"resume", no_argument, NULL, 'R'},
        {"restart", no_argument, NULL, 'X'},
        {"copy", no_argument, NULL, 'c'},
        {"env", required_argument, NULL, 'e'},
        {"all-envs", no_argument, NULL, 'A'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    uint64_t seen = 0; /* the single-valued options given (renc_opt_once) */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 0 ? (unsigned)ncpu : 1;
    a->memory = (uint64_t)256 << 20;
    a->share_dek = 1;
    int opt;
    optind = 1;
    int idx = -1;
    while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (!a->run_only && idx >= 0 && strchr("tmokdnsVJjRXc", opt))
            a->run_only = opts[idx].name;
        idx = -1;
        /* --drop and --env add up; the others with a value take one. */
        if (renc_opt_once(cmd, opts, "tmoMsTBPrCJ", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 't': a->to = optarg; break;
        case 'm':
            if (strcmp(optarg, "rewrap") == 0)
                a->mode = RENC_MODE_REWRAP;
            else if (strcmp(optarg, "rekey") == 0)
                a->mode = RENC_MODE_REKEY;
            else {
                renc_err(cmd, "--mode must be rewrap or rekey");
                return RENC_EXIT_USAGE;
            }
            break;
        case 'o': a->out = optarg; break;
        case 'M': a->manifest = optarg; break;
        case 'k': a->keep_old = 1; break;
        case 'd':
            if (a->drop_count == 16) {
                renc_err(cmd, "at most 16 --drop options");
                return RENC_EXIT_USAGE;
            }
            a->drop[a->drop_count++] = optarg;
            break;
        case 'n': a->dry_run = 1; break;
        case 's':
            if (renc_parse_size(optarg, &v) || v < 1 || v > 1000000) {
                renc_err(cmd, "--share-dek must be 1..1000000");
                return RENC_EXIT_USAGE;
            }
            a->share_dek = (unsigned)v;
            break;
        case 'V': a->no_verify = 1; break;
        case 'F': a->fail_fast = 1; break;
        case 'T':
            if (renc_parse_size(optarg, &v) || v < 1 || v > 1024) {
                renc_err(cmd, "--threads must be 1..1024");
                return RENC_EXIT_USAGE;
            }
            a->threads = (unsigned)v;
            a->threads_given = 1;
            break;
        case 'B':
            if (renc_parse_size(optarg, &v)) {
                renc_err(cmd, "--memory must be a byte count (K, M, G suffixes)");
                return RENC_EXIT_USAGE;
            }
            if (v > renc_memory_limit()) {
                char limit[32];
                renc_bytes_text(limit, sizeof limit, renc_memory_limit());
                renc_err(cmd, "--memory %s is more than this machine's memory: at most %llu "
                              "bytes (%s)", optarg, (unsigned long long)renc_memory_limit(), limit);
                return RENC_EXIT_USAGE;
            }
            a->memory = v;
            break;
        case 'P':
            if (strcmp(optarg, "bar") == 0)
                a->progress = RENC_PROGRESS_BAR;
            else if (strcmp(optarg, "json") == 0)
                a->progress = RENC_PROGRESS_JSON;
            else if (strcmp(optarg, "none") == 0)
                a->progress = RENC_PROGRESS_NONE;
            else {
                renc_err(cmd, "--progress must be bar, json or none");
                return RENC_EXIT_USAGE;
            }
            break;
        case 'r': a->report = optarg; break;
        case 'C':
            if (renc_aead_backend_parse(optarg, &a->backend) != 0) {
                renc_err(cmd, "--crypto-backend must be auto, openssl or ipsec-mb");
                return RENC_EXIT_USAGE;
            }
            break;
        case 'D': a->direct = 1; break;
        case 'I': a->identity = 1; break; /* undocumented: bench/ ceiling only */
        case 'J': a->journal = optarg; break;
        case 'j': a->no_journal = 1; break;
        case 'R': a->resume = 1; break;
        case 'X': a->restart = 1; break;
        case 'c': a->copy = 1; break;
        case 'e':
            if (a->env_count == 64) {
                renc_err(cmd, "at most 64 --env options (--all-envs takes them all)");
                return RENC_EXIT_USAGE;
            }
            a->envs[a->env_count++] = optarg;
            break;
        case 'A': a->all_envs = 1; break;
        case 'h': fputs(usage, stdout); return RENC_EXIT_OK;
        default: fputs(usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    a->sources = argv + optind;
    a->source_count = argc - optind;
    if (a->env_count || a->all_envs) {
        if (a->source_count || a->manifest || (a->env_count && a->all_envs)) {
            renc_err(cmd, "give --env ID (or --all-envs), or SOURCEs, or --manifest: one of them");
            return RENC_EXIT_USAGE;
        }
        if (a->to || a->out || a->journal) {
            renc_err(cmd, "with --env the target is the environment's policy key and its data is "
                          "rewritten in place, each with its own journal: --%s does not apply",
                     a->to ? "to" : a->out ? "out" : "journal");
            return RENC_EXIT_USAGE;
        }
        for (size_t i = 0; i < a->env_count; i++)
            if (!renc_env_id_ok(cmd, "--env", a->envs[i]))
                return RENC_EXIT_USAGE;
        return -1;
    }
    if ((a->source_count == 0) == (a->manifest == NULL)) {
        renc_err(cmd, "give SOURCE directories or files, or --manifest FILE (not both)");
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    return -1;
}

/* Lists the blobs; prints scan errors.  Returns -1 to continue or an exit. */
static int renc_bulk_scan(const char *cmd, struct renc_bulk_args *a, struct renc_scan *scan,
                          const char *exclude)
{
    char q[RENC_PATH_QUOTE_MAX];
    int rc = a->manifest ? renc_scan_manifest(scan, a->manifest)
                         : renc_scan_paths(scan, (const char *const *)a->sources,
                                           (size_t)a->source_count, exclude);
    if (rc) {
        renc_err(cmd, "%s: %s", a->manifest ? QP(q, a->manifest) : "scan", renc_strerror(rc));
        return renc_exit_for(rc);
    }
    for (size_t i = 0; i < scan->error_count; i++)
        renc_err(cmd, "%s: %s", QP(q, scan->errors[i].path), renc_strerror(scan->errors[i].rc));
    if (scan->duplicates)
        printf("%s: %llu manifest lines named a file already listed: done once\n", cmd,
               (unsigned long long)scan->duplicates);
    if (scan->skipped_special)
        printf("%s: %llu symbolic links or special files left alone\n", cmd,
               (unsigned long long)scan->skipped_special);
    return -1;
}

/* --out must not lie inside a source (the run would read its own output). */
static int renc_out_inside_source(const struct renc_bulk_args *a, char *out_real, size_t max)
{
    char buf[PATH_MAX];
    int create = 0;
    if (!realpath(a->out, buf)) {
        if (errno != ENOENT)
            return -errno;
        /* Not there yet: resolve its parent and check before creating it,
         * so that a refused --out leaves no folder inside a source. */
        char parent[PATH_MAX];
        size_t n = strlen(a->out);
        if (n >= sizeof parent)
            return -ENAMETOOLONG;
        memcpy(parent, a->out, n + 1);
        while (n > 1 && parent[n - 1] == '/')
            parent[--n] = '\0';
        char *slash = strrchr(parent, '/');
        const char *base = slash ? slash + 1 : parent;
        const char *dir = ".";
        if (slash == parent)
            dir = "/";
        else if (slash) {
            *slash = '\0';
            dir = parent;
        }
        if (!realpath(dir, buf))
            return -errno;
        size_t bl = strlen(buf);
        int w = snprintf(buf + bl, sizeof buf - bl, "%s%s", bl > 1 ? "/" : "", base);
        if (w < 0 || (size_t)w >= sizeof buf - bl)
            return -ENAMETOOLONG;
        create = 1;
    }
    snprintf(out_real, max, "%s", buf);
    for (int i = 0; i < a->source_count; i++) {
        char src[PATH_MAX];
        if (!realpath(a->sources[i], src))
            continue;
        size_t n = strlen(src);
        if (strncmp(buf, src, n) == 0 && (buf[n] == '/' || buf[n] == '\0'))
            return 1;
    }
    if (create && mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* --out: each blob's mirror path is OUT/REL.  REL is made canonical here (no
 * empty or "." components).  A REL with ".." would leave OUT (a manifest line
 * such as ../src/x.renc can even land on its own source, rewriting it in
 * place), and two blobs with the same REL (one name under two sources, or a
 * manifest naming files as a/x and /a/x) would overwrite each other's mirror:
 * both are refused before anything is written. */
static int renc_rel_canonical(char *rel)
{
    return renc_path_tidy(rel, strlen(rel) + 1, rel, RENC_PATH_NO_DOTDOT) == 0 ? 0 : -1;
}

static int renc_item_rel_cmp(const void *a, const void *b)
{
    const struct renc_scan_item *x = *(const struct renc_scan_item *const *)a;
    const struct renc_scan_item *y = *(const struct renc_scan_item *const *)b;
    return strcmp(x->rel, y->rel);
}

/* Returns -1 to continue or an exit code. */
static int renc_check_mirror_paths(const char *cmd, const char *out, struct renc_scan *scan)
{
    int bad = 0;
    for (size_t i = 0; i < scan->count; i++) {
        if (renc_rel_canonical(scan->items[i].rel) != 0) {
            char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "%s: cannot be mirrored under --out %s (its path has '..' or no name)",
                     QP(q1, scan->items[i].path), QP(q2, out));
            bad = 1;
        }
    }
    if (bad || scan->count < 2)
        return bad ? RENC_EXIT_USAGE : -1;
    struct renc_scan_item **v = renc_calloc(scan->count, sizeof *v);
    if (!v) {
        renc_err(cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    for (size_t i = 0; i < scan->count; i++)
        v[i] = &scan->items[i];
    qsort(v, scan->count, sizeof *v, renc_item_rel_cmp);
    for (size_t i = 1; i < scan->count; i++) {
        if (strcmp(v[i - 1]->rel, v[i]->rel) == 0) {
            char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX], q3[RENC_PATH_QUOTE_MAX],
                q4[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "%s and %s would both be written to %s/%s", QP(q1, v[i - 1]->path),
                     QP(q2, v[i]->path), QP(q3, out), QP(q4, v[i]->rel));
            bad = 1;
        }
    }
    renc_free(v);
    return bad ? RENC_EXIT_USAGE : -1;
}

/* ---- --out never writes a source -------------------------------------- */

/* renc_canon_prefix: path made canonical as far as it exists: its longest
 * existing prefix resolved (realpath), the rest appended as it is (it will
 * be created by the run, so no symlink can be in it).  Works for a final
 * component that is a symlink too: it is kept, not followed (a rename over
 * a symlink replaces the link). */
static int renc_canon_prefix(const char *path, char *out, size_t max)
{
    char head[PATH_MAX];
    size_t n = strlen(path);
    RENC_RETURN_IF(n == 0 || n >= sizeof head, -ENAMETOOLONG);
    memcpy(head, path, n + 1);
    /* The last component is never resolved: start from its parent. */
    char *cut = strrchr(head, '/');
    for (;;) {
        char real[PATH_MAX];
        const char *dir = !cut ? "." : cut == head ? "/" : head;
        if (cut)
            *cut = '\0';
        if (realpath(dir, real)) {
            const char *rest = cut ? path + (cut - head) + 1 : path;
            int w = snprintf(out, max, "%s%s%s", real, strcmp(real, "/") ? "/" : "", rest);
            return w < 0 || (size_t)w >= max ? -ENAMETOOLONG : 0;
        }
        if (errno != ENOENT || !cut || cut == head)
            return -errno;
        char *prev = strrchr(head, '/');
        *cut = '/';
        if (!prev) { /* a relative path with no existing folder in it: from "." */
            char here[PATH_MAX];
            RENC_RETURN_IF(!getcwd(here, sizeof here), -errno);
            int w = snprintf(out, max, "%s/%s", here, path);
            return w < 0 || (size_t)w >= max ? -ENAMETOOLONG : 0;
        }
        cut = prev;
    }
}

struct renc_src_id {
    char *canon;   /* canonical path of a source item */
    dev_t dev;
    ino_t ino;
    size_t idx;
};

static int renc_src_by_path(const void *a, const void *b)
{
    return strcmp(((const struct renc_src_id *)a)->canon, ((const struct renc_src_id *)b)->canon);
}

static int renc_src_by_inode(const void *a, const void *b)
{
    const struct renc_src_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino ? 1 : 0;
}

/* 1 when canonical path p is root or lies inside it. */
static int renc_path_within(const char *p, const char *root)
{
    size_t n = strlen(root);
    return strncmp(p, root, n) == 0 && (p[n] == '/' || p[n] == '\0' || strcmp(root, "/") == 0);
}

/* The reason item i's mirror under out would write a source, or NULL. */
static const char *renc_mirror_hits_source(const struct renc_scan *scan, size_t i,
                                           const char *out, struct renc_src_id *by_path,
                                           struct renc_src_id *by_inode, char **roots,
                                           size_t nroots, char *why, size_t max)
{
    char mirror[PATH_MAX], canon[PATH_MAX];
    char q1[RENC_PATH_QUOTE_MAX], q2[RENC_PATH_QUOTE_MAX];
    const struct renc_scan_item *it = &scan->items[i];
    int w = snprintf(mirror, sizeof mirror, "%s/%s", out, it->rel);
    if (w < 0 || (size_t)w >= sizeof mirror || renc_canon_prefix(mirror, canon, sizeof canon))
        return NULL; /* the engine reports a name too long when it gets there */
    struct renc_src_id key = {.canon = canon};
    const struct renc_src_id *hit =
        bsearch(&key, by_path, scan->count, sizeof *by_path, renc_src_by_path);
    struct stat st;
    if (!hit && lstat(mirror, &st) == 0) {
        key.dev = st.st_dev;
        key.ino = st.st_ino;
        hit = bsearch(&key, by_inode, scan->count, sizeof *by_inode, renc_src_by_inode);
    }
    if (hit) {
        renc_cli_path_quote(q1, sizeof q1, it->path);
        if (hit->idx == i)
            renc_textf(why, max, "%s would be written over itself (its mirror is the same file)",
                       q1);
        else
            renc_textf(why, max, "%s would be written over the source %s (its mirror is that file)",
                       q1, renc_cli_path_quote(q2, sizeof q2, scan->items[hit->idx].path));
        return why;
    }
    for (size_t r = 0; r < nroots; r++) {
        if (!renc_path_within(canon, roots[r]))
            continue;
        renc_cli_path_quote(q1, sizeof q1, it->path);
        renc_textf(why, max, "%s would be mirrored to %s, inside the source %s", q1,
                   renc_cli_path_quote(q2, sizeof q2, canon), roots[r]);
        return why;
    }
    return NULL;
}

/* Sources are never written with --out: refuses (exit 2) an --out under
 * which the mirror of a source item would be that item, another source
 * item (also through a hard link or another mount of the same file: same
 * device and inode), or a path inside a source folder.  Paths are compared
 * canonical (symlinks resolved, up to the last component).  Returns -1 to
 * continue or an exit code. */
static int renc_check_out_not_source(const char *cmd, const struct renc_bulk_args *a,
                                     const char *out, const struct renc_scan *scan)
{
    if (scan->count == 0)
        return -1;
    int status = -1;
    struct renc_src_id *by_path = renc_calloc(scan->count, sizeof *by_path);
    struct renc_src_id *by_inode = renc_calloc(scan->count, sizeof *by_inode);
    char **roots = renc_calloc((size_t)a->source_count + 1, sizeof *roots);
    size_t nroots = 0;
    if (!by_path || !by_inode || !roots)
        goto out_nomem;
    for (size_t i = 0; i < scan->count; i++) {
        char canon[PATH_MAX];
        struct stat st;
        by_path[i].idx = i;
        if (renc_canon_prefix(scan->items[i].path, canon, sizeof canon) != 0 ||
            lstat(scan->items[i].path, &st) != 0) {
            /* Gone since the scan: nothing of it to protect (the engine
             * reports it); a name that cannot match a mirror. */
            snprintf(canon, sizeof canon, "\n%zu", i);
            memset(&st, 0, sizeof st);
            st.st_ino = 0;
        }
        by_path[i].canon = renc_strdup(canon);
        by_path[i].dev = st.st_dev;
        by_path[i].ino = st.st_ino;
        if (!by_path[i].canon)
            goto out_nomem;
    }
    memcpy(by_inode, by_path, scan->count * sizeof *by_inode);
    qsort(by_path, scan->count, sizeof *by_path, renc_src_by_path);
    qsort(by_inode, scan->count, sizeof *by_inode, renc_src_by_inode);
    for (int i = 0; !a->manifest && i < a->source_count; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (lstat(a->sources[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            realpath(a->sources[i], real) && !(roots[nroots++] = renc_strdup(real)))
            goto out_nomem;
    }
    size_t bad = 0;
    for (size_t i = 0; i < scan->count; i++) {
        char why[3 * RENC_PATH_QUOTE_MAX];
        if (!renc_mirror_hits_source(scan, i, out, by_path, by_inode, roots, nroots, why,
                                     sizeof why))
            continue;
        if (bad++ < 5) {
            char q[RENC_PATH_QUOTE_MAX];
            renc_err(cmd, "--out %s: %s; sources are never written with --out: choose an "
                          "output folder outside the sources",
                     renc_cli_path_quote(q, sizeof q, a->out), why);
        }
    }
    if (bad > 5)
        renc_err(cmd, "--out: %zu more blobs the same way", bad - 5);
    if (bad)
        status = RENC_EXIT_USAGE;
    goto out;
out_nomem:
    renc_err(cmd, "%s", renc_strerror(-RENC_E_NOMEM));
    status = RENC_EXIT_FAILED;
out:
    for (size_t i = 0; by_path && i < scan->count; i++)
        renc_free(by_path[i].canon);
    for (size_t r = 0; r < nroots; r++)
        renc_free(roots[r]);
    renc_free(by_path);
    renc_free(by_inode);
    renc_free(roots);
    return status;
}

/* ---- progress --------------------------------------------------------- */

struct renc_progress_ctx {
    enum renc_progress_mode mode;
    const char *cmd;
    double last_json;
    int drew;
    struct renc_journal *journal; /* flushed at every tick */
    int journal_rc;               /* a flush failed: the run is stopped */
};

static atomic_int renc_stop_flag;

static void renc_progress_cb(const struct renc_engine_progress *p, void *arg)
{
    struct renc_progress_ctx *c = arg;
    if (c->journal && c->journal_rc == 0) {
        /* The notes of blobs finished since the last tick, in one commit.
         * A journal that cannot be written stops the run: blobs go on being
         * safe, but progress could no longer be resumed from it. */
        c->journal_rc = renc_journal_flush(c->journal);
        if (c->journal_rc)
            atomic_store(&renc_stop_flag, 1);
    }
    double mbps = p->elapsed_s > 0 ? p->bytes_finished / 1e6 / p->elapsed_s : 0;
    double rate = p->elapsed_s > 0 ? p->bytes_finished / p->elapsed_s : 0;
    double eta = rate > 0 ? (p->bytes_total - p->bytes_finished) / rate : -1;
    if (c->mode == RENC_PROGRESS_BAR) {
        char done[32], total[32];
        renc_bytes_text(done, sizeof done, p->bytes_finished);
        renc_bytes_text(total, sizeof total, p->bytes_total);
        double frac = p->bytes_total ? (double)p->bytes_finished / p->bytes_total
                                     : p->items_total ? (double)p->items_finished / p->items_total : 1;
        int width = 30, fill = (int)(frac * width + 0.5);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %llu/%llu blobs  %s/%s  %.1f MB/s  ETA %s%.0fs  ", bar,
                (unsigned long long)p->items_finished, (unsigned long long)p->items_total,
                done, total, mbps, eta < 0 ? "?" : "", eta < 0 ? 0.0 : eta);
        c->drew = 1;
    } else if (c->mode == RENC_PROGRESS_JSON && p->elapsed_s - c->last_json >= 1.0) {
        c->last_json = p->elapsed_s;
        json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}",
                              "type", "progress", "command", c->cmd,
                              "blobs_done", (json_int_t)p->items_finished,
                              "blobs_total", (json_int_t)p->items_total,
                              "failed", (json_int_t)p->failed,
                              "skipped", (json_int_t)p->skipped,
                              "bytes_done", (json_int_t)p->bytes_finished,
                              "bytes_total", (json_int_t)p->bytes_total,
                              "elapsed_s", p->elapsed_s, "mb_per_s", mbps, "eta_s", eta);
        json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(j);
    }
}

/* ---- summary and report ----------------------------------------------- */

static int renc_write_report(const char *path, json_t *root)
{
    char *text = json_dumps(root, JSON_INDENT(2));
    if (!text)
        return -RENC_E_NOMEM;
    json_malloc_t json_malloc;
    json_free_t json_free; /* jansson's allocator: see renc_json_wipe_on_free */
    json_get_alloc_funcs(&json_malloc, &json_free);
    char tmp[4200];
    int fd;
    int rc = renc_file_tmp_open(path, 0600, tmp, sizeof tmp, &fd);
    if (rc == 0) {
        rc = renc_file_write_full(fd, text, strlen(text));
        if (rc == 0)
            rc = renc_file_write_full(fd, "\n", 1);
        if (rc == 0)
            rc = renc_file_commit(fd, tmp, path);
        else
            renc_file_abort(fd, tmp);
    }
    json_free(text);
    return rc;
}

/* Each header intent a crash left whose outcome is worth a line, as the
 * journal's recovery settles it: said once, by the run that settles it. */
static void renc_recover_report(void *arg, const char *path, enum renc_settle what, int rc)
{
    const char *cmd = arg;
    char q[RENC_PATH_QUOTE_MAX];
    renc_cli_path_quote(q, sizeof q, path);
    switch (what) {
    case RENC_SETTLE_COMPLETED:
        printf("%s: recovery: %s: header found half written: completed from the journal\n", cmd,
               q);
        break;
    case RENC_SETTLE_GONE:
        printf("%s: recovery: %s: gone since the crash: nothing to complete, its header write "
               "is settled\n", cmd, q);
        break;
    case RENC_SETTLE_REPLACED:
        printf("%s: recovery: %s: holds neither the old nor the new header: replaced by another "
               "writer: left as it is (and looked at afresh)\n", cmd, q);
        break;
    default:
        renc_err(cmd, "%s: %s; its in-place header write is kept in the journal, and the blob "
                      "left alone, until it can be read", q, renc_strerror(rc));
        break;
    }
}

/* Failures are told one line a blob, up to RENC_LINES_PER_CAUSE for one
 * cause (error and key): past that, one line sums up the rest (a full disk
 * fails every blob in flight the same way; the report and `status
 * --failures 0` list them all). */
#define RENC_LINES_PER_CAUSE 10
#define RENC_MAX_CAUSES 32

struct renc_cause {
    int rc;
    const char *ref; /* the key, or NULL */
    uint64_t count;
    size_t first;    /* the scan item that met it first */
};

struct renc_causes {
    struct renc_cause c[RENC_MAX_CAUSES];
    size_t n;
};

/* The destination can take no more: every blob after it would fail the
 * same way, so the run stops (renc_engine) and says so once. */
static int renc_run_wide_io(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS;
}

static struct renc_cause *renc_cause_of(struct renc_causes *cs, int rc, const char *ref,
                                        size_t idx)
{
    for (size_t k = 0; k < cs->n; k++)
        if (cs->c[k].rc == rc && (cs->c[k].ref == ref ||
                                  (cs->c[k].ref && ref && strcmp(cs->c[k].ref, ref) == 0)))
            return &cs->c[k];
    if (cs->n == RENC_MAX_CAUSES)
        return NULL; /* that many kinds: each told on its own */
    struct renc_cause *c = &cs->c[cs->n++];
    c->rc = rc;
    c->ref = ref;
    c->first = idx;
    return c;
}

/* One failed blob's line, unless its cause was told often enough. */
static void renc_failure_line(const char *cmd, struct renc_causes *cs,
                              const struct renc_scan *scan, size_t i, int rc, const char *ref)
{
    struct renc_cause *c = renc_cause_of(cs, rc, ref, i);
    if (c && ++c->count > RENC_LINES_PER_CAUSE)
        return;
    char q[RENC_PATH_QUOTE_MAX];
    if (ref)
        renc_err(cmd, "%s: %s (key %s)", QP(q, scan->items[i].path), renc_strerror(rc), ref);
    else
        renc_err(cmd, "%s: %s", QP(q, scan->items[i].path), renc_strerror(rc));
}

/* The folder item i is written to: its own, or its mirror's under --out. */
static void renc_out_dir_of(const struct renc_bulk_args *a, const struct renc_scan_item *it,
                          char *out, size_t max)
{
    const char *p = a->out_dir ? it->rel : it->path;
    const char *slash = strrchr(p, '/');
    if (a->out_dir)
        renc_textf(out, max, "%s%s%.*s", a->out_dir, slash ? "/" : "",
                   slash ? (int)(slash - p) : 0, p);
    else if (slash)
        renc_textf(out, max, "%.*s", slash == p ? 1 : (int)(slash - p), p);
    else
        renc_textf(out, max, ".");
}

/* After the failure lines: the rest of each cause told often, and a
 * destination that could take no more, once, with what it left undone. */
static void renc_failure_summary(const char *cmd, const struct renc_bulk_args *a,
                                 const struct renc_causes *cs, const struct renc_scan *scan,
                                 uint64_t not_started)
{
    const struct renc_cause *wide = NULL;
    for (size_t k = 0; k < cs->n; k++) {
        const struct renc_cause *c = &cs->c[k];
        if (!wide && renc_run_wide_io(c->rc))
            wide = c;
        if (c->count <= RENC_LINES_PER_CAUSE)
            continue;
        renc_err(cmd, "%llu more blobs failed the same way: %s%s%s%s ('reencrypt status "
                      "--failures 0' or --report lists them all)",
                 (unsigned long long)(c->count - RENC_LINES_PER_CAUSE), renc_strerror(c->rc),
                 c->ref ? " (key " : "", c->ref ? c->ref : "", c->ref ? ")" : "");
    }
    if (!wide || strcmp(cmd, "run") != 0)
        return;
    char dir[PATH_MAX + 8], q[RENC_PATH_QUOTE_MAX], cause[128];
    renc_out_dir_of(a, &scan->items[wide->first], dir, sizeof dir);
    snprintf(cause, sizeof cause, "%s", renc_strerror(wide->rc));
    if (cause[0] >= 'A' && cause[0] <= 'Z')
        cause[0] = (char)(cause[0] - 'A' + 'a');
    if (not_started)
        renc_err(cmd, "stopped: %s writing %s; %llu blobs not started, resume with the same "
                      "command", cause, QP(q, dir), (unsigned long long)not_started);
    else
        renc_err(cmd, "%s writing %s; run the same command again once it can be written",
                 cause, QP(q, dir));
}

static int renc_bulk_finish(const char *cmd, struct renc_bulk_args *a, struct renc_engine *e,
                            const struct renc_scan *scan, struct renc_keystore *ks,
                            const char *target, struct renc_progress_ctx *pc,
                            const struct renc_session *sess)
{
    char q[RENC_PATH_QUOTE_MAX];
    struct renc_engine_progress p;
    renc_engine_snapshot(e, &p);
    if (pc->mode == RENC_PROGRESS_JSON) {
        pc->last_json = -1e9; /* one last line with the final figures */
        renc_progress_cb(&p, pc);
    }
    if (pc->drew)
        fputc('\n', stderr);
    const struct renc_item_result *res = renc_engine_results(e);
    json_t *failures = json_array();
    struct renc_causes causes;
    memset(&causes, 0, sizeof causes);
    for (size_t i = 0; i < scan->count; i++) {
        if (res[i].state != RENC_ITEM_FAILED)
            continue;
        renc_failure_line(cmd, &causes, scan, i, res[i].rc, res[i].ref);
        /* Access withdrawn at the key's provider (any provider), or a vault
         * key disabled: the environments on that key get locked. */
        if (res[i].ref && !a->withdrawn_ref[0] &&
            (res[i].rc == -RENC_E_KEY_REVOKED ||
             (res[i].rc == -RENC_E_KEY_DISABLED && strncmp(res[i].ref, "akv:", 4) == 0))) {
            snprintf(a->withdrawn_ref, sizeof a->withdrawn_ref, "%s", res[i].ref);
            a->withdrawn_rc = res[i].rc;
        }
        json_t *f = json_pack("{s:s, s:s, s:i}", "path", scan->items[i].path, "error",
                              renc_strerror(res[i].rc), "code", -res[i].rc);
        if (res[i].ref)
            json_object_set_new(f, "key", json_string(res[i].ref));
        json_array_append_new(failures, f);
    }
    renc_failure_summary(cmd, a, &causes, scan, p.items_total - p.items_finished);
    for (size_t i = 0; i < scan->error_count; i++)
        json_array_append_new(failures, json_pack("{s:s, s:s, s:i}", "path", scan->errors[i].path,
                                                  "error", renc_strerror(scan->errors[i].rc),
                                                  "code", -scan->errors[i].rc));
    uint64_t pending = p.items_total - p.items_finished;
    struct renc_keystore_stats ks_stats;
    renc_keystore_stats(ks, &ks_stats);
    double mbps = p.elapsed_s > 0 ? p.bytes_finished / 1e6 / p.elapsed_s : 0;
    double bps = p.elapsed_s > 0 ? p.items_finished / p.elapsed_s : 0;
    int is_run = strcmp(cmd, "run") == 0;
    if (is_run) {
        printf("%s%s: %llu blobs %s, %llu skipped (already under %s), %llu not RENC, "
               "%llu failed%s\n",
               cmd, a->dry_run ? " (dry run: nothing written)" : "", (unsigned long long)p.done,
               a->dry_run ? "would change" : "re-encrypted", (unsigned long long)p.skipped,
               target ? target : "the target", (unsigned long long)p.not_renc,
               (unsigned long long)(p.failed + scan->error_count + a->held), pending ? " (stopped early)" : "");
        if (p.in_place)
            printf("%s: %llu of them rewrapped by rewriting only their header, in place\n", cmd,
                   (unsigned long long)p.in_place);
        if (sess)
            printf("%s: journal %s, run %s, attempt %u\n", cmd, QP(q, sess->journal_path),
                   renc_journal_run_id(sess->journal), sess->attempt);
        if (a->finished_before)
            printf("%s: %llu more blobs were finished by earlier attempts of this run\n", cmd,
                   (unsigned long long)a->finished_before);
    }
    else
        printf("%s: %llu blobs verified, %llu not RENC, %llu failed%s\n", cmd,
               (unsigned long long)p.done, (unsigned long long)p.not_renc,
               (unsigned long long)(p.failed + scan->error_count + a->held), pending ? " (stopped early)" : "");
    printf("%s: %.1f MB in %.2f s: %.1f MB/s, %.0f blobs/s; %llu unwraps, %llu DEK cache hits, "
           "%llu wraps; peak buffers %.1f MiB\n",
           cmd, p.bytes_finished / 1e6, p.elapsed_s, mbps, bps,
           (unsigned long long)ks_stats.unwraps, (unsigned long long)ks_stats.cache_hits,
           (unsigned long long)ks_stats.wraps, renc_engine_peak_memory(e) / 1048576.0);
    unsigned lost = renc_engine_attrs_lost(e);
    if (lost & RENC_ATTR_OWNER)
        fprintf(stderr, "reencrypt: %s: warning: the owner of some rewritten blobs could not be "
                        "kept (only root may give a file to another user); they belong to uid %u "
                        "now\n", cmd, (unsigned)geteuid());
    if (lost & RENC_ATTR_XATTR)
        fprintf(stderr, "reencrypt: %s: warning: some extended attributes of rewritten blobs could "
                        "not be kept (not permitted or not supported here)\n", cmd);
    struct renc_akv_stats vs;
    memset(&vs, 0, sizeof vs);
    if (renc_keystore_akv(ks))
        renc_akv_stats(renc_keystore_akv(ks), &vs);
    char pace_note[96] = "";
    if (vs.pace_cuts)
        snprintf(pace_note, sizeof pace_note, " (lowered %llu times after 429s, %u at the end)",
                 (unsigned long long)vs.pace_cuts, vs.rate_now);
    if (vs.requests)
        printf("%s: key vault: %llu requests (%llu unwraps, %llu wraps, %llu key reads, %llu "
               "tokens), %llu retried (%llu throttled, %llu server errors, %llu network errors); "
               "paced at %u per %.0f s%s, %llu requests held %.1f s in all\n",
               cmd, (unsigned long long)vs.requests, (unsigned long long)vs.unwraps,
               (unsigned long long)vs.wraps, (unsigned long long)vs.gets,
               (unsigned long long)vs.tokens, (unsigned long long)vs.retries,
               (unsigned long long)vs.throttled, (unsigned long long)vs.server_errors,
               (unsigned long long)vs.network_errors, vs.rate_limit, vs.rate_window_s,
               pace_note, (unsigned long long)vs.paced, vs.paced_s);
    if (a->report) {
        json_t *root = json_pack(
            "{s:s, s:s?, s:s?, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:f, s:f, s:f, "
            "s:I, s:I, s:I, s:I, s:I, s:o}",
            "command", cmd, "mode", is_run ? (a->mode == RENC_MODE_REKEY ? "rekey" : "rewrap") : NULL,
            "target", target, "dry_run", a->dry_run,
            "blobs", "total", (json_int_t)p.items_total, "done", (json_int_t)p.done,
            "skipped", (json_int_t)p.skipped, "not_renc", (json_int_t)p.not_renc,
            "failed", (json_int_t)(p.failed + scan->error_count + a->held), "pending", (json_int_t)pending,
            "bytes", (json_int_t)p.bytes_finished, "seconds", p.elapsed_s, "mb_per_s", mbps,
            "blobs_per_s", bps, "unwraps", (json_int_t)ks_stats.unwraps,
            "dek_cache_hits", (json_int_t)ks_stats.cache_hits, "wraps", (json_int_t)ks_stats.wraps,
            "threads", (json_int_t)a->threads, "peak_buffer_bytes",
            (json_int_t)renc_engine_peak_memory(e), "failures", failures);
        if (root && is_run) {
            json_object_set_new(root, "in_place", json_integer((json_int_t)p.in_place));
            json_object_set_new(root, "finished_before",
                                json_integer((json_int_t)a->finished_before));
        }
        if (root && vs.requests)
            json_object_set_new(
                root, "key_vault",
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:I, s:I}",
                          "requests", (json_int_t)vs.requests, "unwraps", (json_int_t)vs.unwraps,
                          "wraps", (json_int_t)vs.wraps, "gets", (json_int_t)vs.gets,
                          "tokens", (json_int_t)vs.tokens, "retries", (json_int_t)vs.retries,
                          "throttled", (json_int_t)vs.throttled,
                          "server_errors", (json_int_t)vs.server_errors,
                          "network_errors", (json_int_t)vs.network_errors,
                          "paced", (json_int_t)vs.paced, "paced_seconds", vs.paced_s,
                          "rate_limit", (json_int_t)vs.rate_limit, "rate_window_seconds",
                          vs.rate_window_s, "rate_at_end", (json_int_t)vs.rate_now,
                          "rate_cuts", (json_int_t)vs.pace_cuts));
        if (root && sess) {
            json_object_set_new(root, "journal", json_string(sess->journal_path));
            json_object_set_new(root, "run_id", json_string(renc_journal_run_id(sess->journal)));
            json_object_set_new(root, "attempt", json_integer(sess->attempt));
        }
        int rc = root ? renc_write_report(a->report, root) : -RENC_E_NOMEM;
        json_decref(root);
        if (rc)
            renc_err(cmd, "report %s: %s", QP(q, a->report), renc_strerror(rc));
    } else {
        json_decref(failures);
    }
    return p.failed + scan->error_count + a->held || pending ? RENC_EXIT_FAILED : RENC_EXIT_OK;
}

/* renc_stop_flag (above) is atomic, not volatile sig_atomic_t: the engine's
 * workers read it while the handler may run on any thread (ThreadSanitizer
 * reported the race). */

static void renc_on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&renc_stop_flag, 1); /* in-flight blobs finish; nothing new is started */
    errno = saved;
}

/* Removes the temporaries crashed attempts of this run left in the sources:
 * those whose tag is the run's id (tags: the resumed run's, and the one a
 * --restart forgets), which the journal recorded before any was made.  The
 * caller holds the sources' locks, so no live run is writing them.  Other
 * files with a temporary's name are not provably ours: they are left alone
 * and reported. */
static void renc_sweep_temps(const char *cmd, const struct renc_scan *scan,
                             const char *const *tags, size_t ntags)
{
    uint64_t removed = 0, foreign = 0;
    const char *example = NULL;
    for (size_t i = 0; i < scan->temp_count; i++) {
        const char *slash = strrchr(scan->temps[i], '/');
        char tag[RENC_TMP_TAG_MAX + 1];
        if (!renc_tmpname_parse(slash ? slash + 1 : scan->temps[i], tag, sizeof tag, NULL, 0))
            continue;
        int ours = 0;
        for (size_t k = 0; k < ntags && !ours; k++)
            ours = tags[k] && strcmp(tags[k], tag) == 0;
        if (ours && unlink(scan->temps[i]) == 0) {
            removed++;
        } else if (!ours) {
            foreign++;
            example = example ? example : scan->temps[i];
        }
    }
    if (removed)
        printf("%s: removed %llu temporary files left by crashed attempts of this run\n", cmd,
               (unsigned long long)removed);
    if (foreign)
        printf("%s: left alone %llu files named like temporaries that this run did not make"
               " (for example %s)\n", cmd, (unsigned long long)foreign, example);
}

/* The run's transformer, to target.  Returns -1 to continue or an exit. */
static int renc_bulk_transformer(const char *cmd, const struct renc_bulk_args *a,
                                 struct renc_keystore *ks, const char *target,
                                 struct renc_transformer **t)
{
    struct renc_transform_opts to = {
        .mode = a->mode, .target = target, .keep_old = a->keep_old,
        .drop = a->drop, .drop_count = a->drop_count, .share_dek = a->share_dek,
        .verify = !a->no_verify, .backend = a->backend,
    };
    char versioned[RENC_MAX_REF_LEN + 1];
    int rc = renc_keystore_may_wrap(ks, versioned, sizeof versioned, target);
    if (rc == -RENC_E_KEY_DISABLED || rc == -RENC_E_KEY_EXPIRED) {
        /* Refused before any blob is read: nothing new is sealed under a
         * version its owner disabled or let expire. */
        renc_err(cmd, "target %s: version %s: %s; nothing is sealed under it (enable it, or "
                      "make a new current version)",
                 target, versioned, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    if (rc == 0)
        rc = renc_transformer_new(t, ks, &to);
    if (rc) {
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(cmd, "target %s: %s", QP(q, target), renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    return -1;
}

/* One run (or verify) over the sources of a. */
static int renc_bulk_exec(const char *cmd, const char *usage, enum renc_engine_op op,
                          struct renc_bulk_args *a)
{
    int status = -1;
    char q[RENC_PATH_QUOTE_MAX];
    if (op == RENC_ENGINE_VERIFY && a->run_only) {
        renc_err(cmd, "--%s is an option of run, not of verify", a->run_only);
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    if (op == RENC_ENGINE_RUN && !a->to) {
        renc_err(cmd, "--to REF is required");
        return RENC_EXIT_USAGE;
    }
    struct renc_keyref ref;
    if (a->to && renc_keyref_parse(&ref, a->to) != 0) {
        renc_err(cmd, "'%s': %s", QP(q, a->to), renc_strerror(-RENC_E_BAD_KEYREF));
        return RENC_EXIT_USAGE;
    }
    for (size_t i = 0; i < a->drop_count; i++) {
        if (renc_keyref_parse(&ref, a->drop[i]) != 0) {
            renc_err(cmd, "--drop '%s': %s", QP(q, a->drop[i]), renc_strerror(-RENC_E_BAD_KEYREF));
            return RENC_EXIT_USAGE;
        }
    }
    /* A worker waiting on a key vault holds no CPU: toward a vault key,
     * more workers than cores keep the vault's requests in flight (up to
     * the provider's bound) while the rest of the pipeline goes on. */
    if (a->to && strncmp(a->to, "akv:", 4) == 0 && !a->threads_given && a->threads < 16)
        a->threads = 16;
    char out_real[PATH_MAX] = "";
    a->out_dir = a->out ? out_real : NULL;
    if (a->out) {
        int rc = renc_out_inside_source(a, out_real, sizeof out_real);
        if (rc != 0) {
            renc_err(cmd, "--out %s: %s", QP(q, a->out),
                     rc > 0 ? "the output directory is inside a source" : renc_strerror(rc));
            return RENC_EXIT_USAGE;
        }
    }

    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    struct renc_transformer *t = NULL;
    struct renc_engine *e = NULL;
    struct renc_scan scan, work;
    memset(&scan, 0, sizeof scan);
    memset(&work, 0, sizeof work);
    struct renc_session sess;
    renc_session_init(&sess);
    int64_t *rows = NULL;
    uint8_t *finished = NULL;
    int writes = op == RENC_ENGINE_RUN && !a->dry_run;
    int journaled = writes && !a->no_journal;
    struct renc_session_want want = {
        .mode = a->mode == RENC_MODE_REKEY ? "rekey" : "rewrap", .target_given = a->to,
        .keep_old = a->keep_old, .drop = a->drop, .drop_count = a->drop_count,
        .restart = a->restart,
    };
    int rc;
    if (a->memory < renc_engine_min_memory()) {
        renc_err(cmd, "--memory %llu is too small to hold one segment (at least %zu bytes)",
                 (unsigned long long)a->memory, renc_engine_min_memory());
        return RENC_EXIT_USAGE;
    }
    if (writes) {
        /* One run at a time over a source or an output directory. */
        char busy[PATH_MAX] = "";
        rc = renc_session_lock(&sess, (const char *const *)a->sources, (size_t)a->source_count,
                               a->manifest, a->out ? out_real : NULL, busy, sizeof busy);
        if (rc) {
            if (rc == -RENC_E_BUSY)
                renc_err(cmd, "%s: another run is working on it, on a folder inside it or on one "
                              "holding it (runs over overlapping trees are refused); wait for it "
                              "to end or stop it", QP(q, busy));
            else
                renc_err(cmd, "%s: %s", QP(q, busy), renc_strerror(rc));
            status = RENC_EXIT_FAILED;
            goto out;
        }
        if (a->env_cat && !a->dry_run &&
            (rc = renc_stage_settle(cmd, stdout, a->env_cat, a->g.data_dir, a->env_id, NULL,
                                    NULL, NULL))) {
            renc_err(cmd, "environment %s: settling an interrupted write: %s", a->env_id,
                     renc_strerror(rc));
            status = renc_exit_for(rc);
            goto out;
        }
    }
    if ((rc = renc_open_keys(&a->g, 0, &kr, &ks))) {
        renc_err(cmd, "keyring %s: %s", QP(q, a->g.keyring_dir), renc_strerror(rc));
        status = RENC_EXIT_FAILED;
        goto out;
    }
    /* 64Ki DEKs of 32 bytes: 2 MiB, within the locked secure heap. */
    if ((rc = renc_keystore_cache_deks(ks, 1u << 16)))
        goto out_err;
    if (op == RENC_ENGINE_RUN && (status = renc_bulk_transformer(cmd, a, ks, a->to, &t)) >= 0)
        goto out;
    if (journaled) {
        long holder = 0;
        char why[2048] = "";
        if ((rc = renc_global_resolve(&a->g, 1)) == 0)
            rc = renc_session_open(&sess, a->g.state_dir, a->journal, &want, &holder, why,
                                   sizeof why, renc_recover_report, (void *)cmd);
        if (rc == -RENC_E_BUSY) {
            renc_err(cmd, "journal %s is in use by another run (pid %ld); wait for it to end "
                          "or stop it", QP(q, sess.journal_path), holder);
            status = RENC_EXIT_FAILED;
            goto out;
        }
        if (rc == -RENC_E_INVALID) {
            renc_err(cmd, "%s", why);
            status = RENC_EXIT_USAGE;
            goto out;
        }
        if (rc) {
            renc_err(cmd, "journal %s: %s", QP(q, sess.journal_path),
                     renc_strerror(rc));
            status = renc_exit_for(rc);
            goto out;
        }
        const struct renc_recover_stats *r = &sess.recovered;
        if (r->found_new + r->found_old + r->repaired + r->gone + r->replaced + r->unresolved)
            printf("%s: recovered in-place header writes of a crashed attempt: %llu found "
                   "rewritten, %llu found as they were, %llu completed from the journal, "
                   "%llu unresolved",
                   cmd, (unsigned long long)r->found_new, (unsigned long long)r->found_old,
                   (unsigned long long)r->repaired, (unsigned long long)r->unresolved);
        if (r->gone + r->replaced)
            printf("; %llu gone, %llu replaced by another writer (left as they are)",
                   (unsigned long long)r->gone, (unsigned long long)r->replaced);
        if (r->found_new + r->found_old + r->repaired + r->gone + r->replaced + r->unresolved)
            putchar('\n');
    }
    if (sess.resumed && strcmp(sess.target, renc_transformer_target(t)) != 0) {
        /* A resumed run keeps the target version it started with. */
        renc_transformer_free(t);
        t = NULL;
        if ((status = renc_bulk_transformer(cmd, a, ks, sess.target, &t)) >= 0)
            goto out;
    }
    if ((status = renc_bulk_scan(cmd, a, &scan, a->out ? out_real : NULL)) >= 0)
        goto out;
    if (op == RENC_ENGINE_RUN && a->out && (status = renc_check_mirror_paths(cmd, a->out, &scan)) >= 0)
        goto out;
    if (op == RENC_ENGINE_RUN && a->out &&
        (status = renc_check_out_not_source(cmd, a, out_real, &scan)) >= 0)
        goto out;
    if (writes) {
        const char *tags[2] = {sess.resumed ? renc_journal_run_id(sess.journal) : NULL,
                               sess.prev_run_id[0] ? sess.prev_run_id : NULL};
        renc_sweep_temps(cmd, &scan, tags, journaled ? 2 : 0);
    }
    work = scan;
    if (journaled) {
        if ((rc = renc_session_start(&sess, &want, renc_transformer_target(t))))
            goto out_journal;
        rows = renc_calloc(scan.count ? scan.count : 1, sizeof *rows);
        finished = renc_calloc(scan.count ? scan.count : 1, 1);
        work.items = renc_calloc(scan.count ? scan.count : 1, sizeof *work.items);
        if (!rows || !finished || !work.items) {
            rc = -RENC_E_NOMEM;
            goto out_err;
        }
        if ((rc = renc_journal_register(sess.journal, &scan, rows, finished)))
            goto out_journal;
        /* Blobs an earlier attempt finished are not read again. */
        work.count = 0;
        work.total_bytes = 0;
        for (size_t i = 0; i < scan.count; i++) {
            if (finished[i] == 2) {
                renc_err(cmd, "%s: its in-place header write could not be settled (see above); "
                              "left alone (its old and new header are in the journal)",
                         QP(q, scan.items[i].path));
                a->held++;
                continue;
            }
            if (finished[i])
                continue;
            rows[work.count] = rows[i];
            work.items[work.count++] = scan.items[i];
            work.total_bytes += scan.items[i].size;
        }
        a->finished_before = scan.count - work.count - a->held;
        if (sess.resumed)
            printf("%s: resuming run %s (attempt %u, journal %s): %llu blobs finished earlier "
                   "are not read again, %zu to go\n",
                   cmd, renc_journal_run_id(sess.journal), sess.attempt, QP(q, sess.journal_path),
                   (unsigned long long)a->finished_before, work.count);
    }
    struct renc_engine_opts eo = {
        .op = op, .threads = a->threads, .memory_bytes = (size_t)a->memory,
        .fail_fast = a->fail_fast, .dry_run = a->dry_run, .out_dir = a->out ? out_real : NULL,
        .backend = a->backend, .stop = &renc_stop_flag, .identity = a->identity,
        .direct = a->direct, .journal = sess.journal, .rows = rows,
        .header_in_place = journaled && !a->copy,
        .tmp_tag = journaled ? renc_journal_run_id(sess.journal) : NULL,
        .clean_tmp = sess.resumed,
        .stale_tag = journaled && sess.prev_run_id[0] ? sess.prev_run_id : NULL,
    };
    if ((rc = renc_engine_new(&e, &eo, ks, t, &work)))
        goto out_err;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = renc_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct renc_progress_ctx pc = {.mode = a->progress, .cmd = cmd, .journal = sess.journal};
    if (pc.mode == RENC_PROGRESS_AUTO)
        pc.mode = isatty(STDERR_FILENO) ? RENC_PROGRESS_BAR : RENC_PROGRESS_JSON;
    if ((rc = renc_engine_run(e, 200, renc_progress_cb, &pc)))
        goto out_err;
    int interrupted = atomic_load(&renc_stop_flag) && pc.journal_rc == 0;
    status = renc_bulk_finish(cmd, a, e, &work, ks, t ? renc_transformer_target(t) : NULL, &pc,
                              journaled ? &sess : NULL);
    if (journaled) {
        struct renc_engine_progress p;
        renc_engine_snapshot(e, &p);
        const char *outcome = pc.journal_rc ? "failed"
                              : interrupted ? "interrupted"
                              : p.failed || work.error_count || a->held || p.items_finished < p.items_total
                                  ? "failed"
                                  : "finished";
        rc = pc.journal_rc ? pc.journal_rc : renc_journal_end(sess.journal, outcome);
        if (rc) {
            renc_err(cmd, "journal %s: %s; blobs finished since its last commit will be checked "
                          "again (by their headers) when the run is resumed",
                     QP(q, sess.journal_path), renc_strerror(rc));
            status = RENC_EXIT_FAILED;
        }
    }
    if (interrupted) {
        struct renc_engine_progress p;
        renc_engine_snapshot(e, &p);
        renc_err(cmd, "interrupted: blobs in flight were finished or left wholly old; "
                      "%llu blobs left; run the same command again to continue%s%s%s",
                 (unsigned long long)(p.items_total - p.items_finished),
                 journaled ? " (journal " : "", journaled ? QP(q, sess.journal_path) : "",
                 journaled ? ")" : "");
        status = RENC_EXIT_INTERRUPTED;
    }
    {
        struct renc_engine_progress p;
        renc_engine_snapshot(e, &p);
        a->failed_total = p.failed + work.error_count + a->held;
        a->outcome = interrupted ? "interrupted" : status == RENC_EXIT_OK ? "finished" : "failed";
        if (journaled)
            snprintf(a->journal_path, sizeof a->journal_path, "%s", sess.journal_path);
    }
    goto out;

out_journal:
    renc_err(cmd, "journal %s: %s", QP(q, sess.journal_path), renc_strerror(rc));
    status = RENC_EXIT_FAILED;
    goto out;
out_err:
    renc_err(cmd, "%s", renc_strerror(rc));
    status = RENC_EXIT_FAILED;
out:
    renc_engine_free(e);
    if (work.items != scan.items)
        renc_free(work.items);
    renc_free(rows);
    renc_free(finished);
    renc_scan_cleanup(&scan);
    renc_transformer_free(t);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    renc_session_cleanup(&sess);
    return status;
}

/* run --env: one run per environment, over DATA/<id>, to its policy key;
 * a locked environment is refused before anything is read, and the next
 * one goes on.  The catalog learns each run's outcome. */
/* A key's access was withdrawn (or a vault key disabled) during the run:
 * every environment on that key is locked, as `keys revoke` would. */
static void renc_lock_withdrawn(const char *cmd, struct renc_catalog *cat,
                                const struct renc_bulk_args *a)
{
    char reason[RENC_REASON_MAX + 1];
    char **ids = NULL;
    size_t n = 0;
    renc_textf(reason, sizeof reason, "key %s %s", a->withdrawn_ref,
               a->withdrawn_rc == -RENC_E_KEY_REVOKED ? "revoked (access withdrawn)" : "disabled");
    int rc = renc_catalog_key_lock(cat, a->withdrawn_ref, reason, &ids, &n);
    if (rc)
        renc_err(cmd, "catalog: locking the environments of %s: %s", a->withdrawn_ref,
                 renc_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        renc_err(cmd, "environment %s locked: %s", ids[i], reason);
        renc_free(ids[i]);
    }
    renc_free(ids);
}

static int renc_bulk_envs(const char *cmd, const char *usage, enum renc_engine_op op,
                          struct renc_bulk_args *a)
{
    struct renc_catalog *cat = NULL;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    struct renc_env *all = NULL;
    size_t n = 0;
    int status = RENC_EXIT_OK;
    int rc = renc_open_keys(&a->g, 0, &kr, &ks);
    if (rc == 0)
        rc = renc_envctl_open(&a->g, 0, &cat);
    if (rc == 0 && a->all_envs)
        rc = renc_catalog_list(cat, &all, &n);
    if (rc) {
        renc_err(cmd, "%s", rc == -ENOENT ? "no environments yet ('reencrypt env create ID')"
                                          : renc_strerror(rc));
        status = renc_exit_for(rc);
        goto out;
    }
    if (!a->all_envs)
        n = a->env_count;
    if (a->all_envs && n == 0)
        printf("%s: no environments in the catalog\n", cmd);
    for (size_t i = 0; i < n && !atomic_load(&renc_stop_flag); i++) {
        const char *id = a->all_envs ? all[i].id : a->envs[i];
        struct renc_env env;
        char why[1024] = "", current[RENC_MAX_REF_LEN + 1] = "", src[4096];
        rc = renc_envctl_ready(cat, ks, id, &env, current, sizeof current, why, sizeof why);
        if (rc == 0)
            rc = renc_envdata_path(src, sizeof src, a->g.data_dir, id, NULL);
        if (rc == 0)
            rc = renc_envdata_create(a->g.data_dir, id);
        if (rc) {
            renc_err(cmd, "%s", why[0] ? why : renc_strerror(rc));
            if (status == RENC_EXIT_OK || renc_exit_for(rc) == RENC_EXIT_USAGE)
                status = renc_exit_for(rc);
            continue;
        }
        printf("%s: environment %s: %s %s (current version %s)\n", cmd, id,
               renc_policy_name(env.policy), env.key_ref, current);
        fflush(stdout);
        char *sources[1] = {src};
        a->sources = sources;
        a->source_count = 1;
        a->to = op == RENC_ENGINE_RUN ? env.key_ref : NULL;
        a->finished_before = a->held = a->failed_total = 0;
        a->outcome = NULL;
        a->journal_path[0] = '\0';
        a->withdrawn_ref[0] = '\0';
        a->env_cat = cat;
        a->env_id = id;
        int st = renc_bulk_exec(cmd, usage, op, a);
        a->env_cat = NULL;
        a->env_id = NULL;
        if (a->withdrawn_ref[0])
            renc_lock_withdrawn(cmd, cat, a);
        if (op == RENC_ENGINE_RUN && !a->dry_run && a->outcome) {
            if ((rc = renc_catalog_note_run(cat, id, a->outcome, (int64_t)a->failed_total,
                                            a->journal_path)))
                renc_err(cmd, "catalog: %s: %s", id, renc_strerror(rc));
            struct renc_census c;
            if (renc_catalog_get(cat, id, &env) == 0 &&
                renc_census_take(&c, a->g.data_dir, id, env.key_ref, current) == 0) {
                printf("%s: environment %s is %s\n", cmd, id, renc_env_status(&env, &c));
                renc_census_cleanup(&c);
            }
        }
        if (st != RENC_EXIT_OK && (status == RENC_EXIT_OK || st == RENC_EXIT_INTERRUPTED))
            status = st;
    }
out:
    renc_free(all);
    renc_catalog_close(cat);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return status;
}

static int renc_bulk(const char *cmd, const char *usage, enum renc_engine_op op, int argc,
                     char **argv)
{
    struct renc_bulk_args a;
    memset(&a, 0, sizeof a);
    int status = renc_bulk_parse(cmd, usage, argc, argv, &a);
    if (status >= 0)
        return status;
    if (a.env_count || a.all_envs)
        return renc_bulk_envs(cmd, usage, op, &a);
    return renc_bulk_exec(cmd, usage, op, &a);
}

int renc_cmd_run(int argc, char **argv)
{
    return renc_bulk("run", renc_run_usage, RENC_ENGINE_RUN, argc, argv);
}

int renc_cmd_verify(int argc, char **argv)
{
    return renc_bulk("verify", renc_verify_usage, RENC_ENGINE_VERIFY, argc, argv);
}
