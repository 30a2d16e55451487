/* run/session.c — see session.h. */
#include "run/session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/keyref.h"
#include "store/scan.h"
#include "store/store.h"
#include "common/path.h"

void renc_session_init(struct renc_session *s)
{
    memset(s, 0, sizeof *s);
}

void renc_session_cleanup(struct renc_session *s)
{
    renc_journal_close(s->journal);
    s->journal = NULL;
    for (size_t i = 0; i < s->nlocks; i++)
        close(s->lock_fds[i]); /* drops the flock */
    s->nlocks = 0;
    renc_free(s->lock_fds);
    s->lock_fds = NULL;
    s->locks_cap = 0;
}

void renc_session_set_shard(struct renc_session *s, const char *shard)
{
    snprintf(s->shard, sizeof s->shard, "%s", shard ? shard : "");
}

int renc_session_set_name(struct renc_session *s, const char *name)
{
    size_t n = strlen(name);
    RENC_RETURN_IF(n == 0 || n >= sizeof s->run_name, -RENC_E_INVALID);
    memcpy(s->run_name, name, n + 1);
    return 0;
}

void renc_session_set_shared(struct renc_session *s)
{
    s->shared = 1;
}

static int renc_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* flock(mode | LOCK_NB) on path (a directory or a file).  A folder above
 * the tree that this user cannot open is passed over (no run of this user
 * can lock it either).  A path that is one this run holds already (the same
 * inode under another name: a bind mount, a hard link) is not locked twice:
 * flock would refuse the run as busy with itself. */
static int renc_session_flock(struct renc_session *s, const char *path, int mode, int above)
{
    if (s->nlocks == s->locks_cap) {
        size_t cap = s->locks_cap ? 2 * s->locks_cap : 16;
        int *grown = renc_realloc(s->lock_fds, cap * sizeof *grown);
        RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
        s->lock_fds = grown;
        s->locks_cap = cap;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return above && (errno == EACCES || errno == EPERM) ? 0 : -errno;
    struct stat st, held;
    for (size_t i = 0; i < s->nlocks && fstat(fd, &st) == 0; i++) {
        if (fstat(s->lock_fds[i], &held) == 0 && held.st_dev == st.st_dev &&
            held.st_ino == st.st_ino) {
            close(fd);
            return 0;
        }
    }
    if (flock(fd, mode | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? -RENC_E_BUSY : -e;
    }
    s->lock_fds[s->nlocks++] = fd;
    return 0;
}

/* One lock to take: a tree's root (exclusive) or a folder above one. */
struct renc_lockreq {
    char *path;
    int exclusive;
};

static int renc_lockreq_cmp(const void *a, const void *b)
{
    return strcmp(((const struct renc_lockreq *)a)->path, ((const struct renc_lockreq *)b)->path);
}

/* Adds root (exclusive, unless shared) and every folder above it (shared)
 * to reqs. */
static int renc_lockreq_add(struct renc_lockreq **reqs, size_t *n, size_t *cap, const char *root,
                            int shared)
{
    size_t len = strlen(root);
    for (size_t end = len;; ) {
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 32;
            struct renc_lockreq *g = renc_realloc(*reqs, c * sizeof *g);
            RENC_RETURN_IF(!g, -RENC_E_NOMEM);
            *reqs = g;
            *cap = c;
        }
        char *p = renc_malloc(end ? end + 1 : 2);
        RENC_RETURN_IF(!p, -RENC_E_NOMEM);
        memcpy(p, end ? root : "/", end ? end : 1);
        p[end ? end : 1] = '\0';
        (*reqs)[(*n)++] = (struct renc_lockreq){p, end == len && !shared};
        if (end <= 1)
            break;
        while (end > 0 && root[end - 1] != '/')
            end--;
        if (end > 1)
            end--; /* drop the slash: "/a/b" -> "/a" */
        else
            end = 0; /* "/" */
    }
    return 0;
}

/* The deepest folder holding every blob the manifest names (canonical). */
static int renc_manifest_root(const char *manifest, char *root, size_t max)
{
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    int rc = renc_scan_manifest(&scan, manifest);
    size_t rlen = 0;
    root[0] = '\0';
    char last[PATH_MAX] = "";
    for (size_t i = 0; rc == 0 && i < scan.count; i++) {
        char dir[PATH_MAX], real[PATH_MAX];
        const char *slash = strrchr(scan.items[i].path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - scan.items[i].path) : 1,
                 slash ? scan.items[i].path : ".");
        if (dir[0] == '\0')
            strcpy(dir, "/");
        if (strcmp(dir, last) == 0)
            continue; /* lines of one folder usually come together */
        snprintf(last, sizeof last, "%s", dir);
        if (!realpath(dir, real))
            continue; /* gone: the scan reports it */
        if (!root[0]) {
            rc = snprintf(root, max, "%s", real) < (int)max ? 0 : -ENAMETOOLONG;
            rlen = strlen(root);
            continue;
        }
        /* Shorten root to the common folder of root and real. */
        size_t k = 0;
        while (k < rlen && root[k] == real[k])
            k++;
        if (!(k == rlen && (real[k] == '/' || real[k] == '\0'))) {
            while (k > 0 && root[k] != '/')
                k--;
            rlen = k ? k : 1;
            root[rlen] = '\0';
        }
    }
    renc_scan_cleanup(&scan);
    if (rc == 0 && !root[0])
        rc = realpath(manifest, root) ? 0 : -errno; /* names nothing: lock the manifest */
    return rc;
}

/* Locks the trees at roots[0..n) and the folders above them, each once,
 * parents first.  A root inside another root is covered by it.  The first
 * nshared roots (a shard's sources) are locked shared. */
static int renc_lock_trees(struct renc_session *s, char **roots, size_t n, size_t nshared,
                           char *busy, size_t max)
{
    struct renc_lockreq *reqs = NULL;
    size_t nreq = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = renc_lockreq_add(&reqs, &nreq, &cap, roots[i], i < nshared);
    if (rc == 0 && nreq > 1)
        qsort(reqs, nreq, sizeof *reqs, renc_lockreq_cmp);
    for (size_t i = 0; rc == 0 && i < nreq; i++) {
        int exclusive = reqs[i].exclusive;
        while (i + 1 < nreq && strcmp(reqs[i].path, reqs[i + 1].path) == 0)
            exclusive |= reqs[++i].exclusive;
        /* A root below an exclusive one is covered by it (the same
         * process's two locks on one folder would conflict). */
        int covered = 0;
        for (size_t k = 0; k < i && !covered; k++) {
            size_t l = strlen(reqs[k].path);
            covered = reqs[k].exclusive && strncmp(reqs[k].path, reqs[i].path, l) == 0 &&
                      (reqs[i].path[l] == '/' || strcmp(reqs[k].path, "/") == 0);
        }
        if (covered)
            continue;
        rc = renc_session_flock(s, reqs[i].path, exclusive ? LOCK_EX : LOCK_SH, !exclusive);
        if (rc)
            snprintf(busy, max, "%s", reqs[i].path);
    }
    for (size_t i = 0; i < nreq; i++)
        renc_free(reqs[i].path);
    renc_free(reqs);
    return rc;
}

int renc_session_lock(struct renc_session *s, const char *const *sources, size_t n,
                      const char *manifest, const char *out, char *busy, size_t max)
{
    size_t count = manifest ? 1 : n;
    char **canon = renc_calloc(count + 2, sizeof *canon);
    RENC_RETURN_IF(!canon, -RENC_E_NOMEM);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *src = manifest ? manifest : sources[i];
        char real[PATH_MAX];
        if (!manifest && renc_store_is_url(src)) {
            /* A container: named without its SAS; no local tree to lock
             * (the journal's own lock keeps a second run of it off). */
            rc = renc_store_name_clean(src, real, sizeof real);
        } else if (!realpath(src, real)) {
            rc = -errno;
            snprintf(busy, max, "%s", src);
            break;
        }
        canon[i] = renc_strdup(real);
        rc = canon[i] ? 0 : -RENC_E_NOMEM;
    }
    if (rc == 0) {
        qsort(canon, count, sizeof *canon, renc_str_cmp);
        size_t w = 0;
        for (size_t i = 0; rc == 0 && i < count; i++) {
            /* One a line: a name's own newline (or any control character,
             * or backslash) is escaped, so the list stays one a line. */
            char q[RENC_PATH_QUOTE_MAX];
            int k = snprintf(s->sources + w, sizeof s->sources - w, "%s%s%s", i ? "\n" : "",
                             manifest ? "manifest:" : "",
                             renc_path_quote(q, sizeof q, canon[i]));
            if (k < 0 || (size_t)k >= sizeof s->sources - w)
                rc = -ENAMETOOLONG;
            else
                w += (size_t)k;
        }
    }
    /* The trees: the sources (a manifest's blobs' folder) and --out. */
    size_t ntrees = count;
    if (rc == 0 && manifest) {
        char root[PATH_MAX];
        if ((rc = renc_manifest_root(manifest, root, sizeof root)) == 0) {
            canon[count] = renc_strdup(root);
            rc = canon[count] ? 0 : -RENC_E_NOMEM;
            ntrees++;
        }
    }
    if (rc == 0 && out) {
        snprintf(s->out, sizeof s->out, "%s", out);
        canon[ntrees] = renc_strdup(out);
        rc = canon[ntrees] ? 0 : -RENC_E_NOMEM;
        ntrees++;
    }
    size_t local = 0;
    for (size_t i = 0; rc == 0 && i < ntrees; i++) {
        char *t = canon[i];
        if (renc_store_is_url(t)) {
            canon[i] = NULL;
            renc_free(t);
        } else {
            canon[i] = NULL;
            canon[local++] = t;
        }
    }
    if (rc == 0)
        rc = renc_lock_trees(s, canon, local, s->shard[0] || s->shared ? local : 0, busy, max);
    for (size_t i = 0; i < count + 2; i++)
        renc_free(canon[i]);
    renc_free(canon);
    return rc;
}

/* The --drop refs, one per line, in the order given. */
static void renc_join_drops(const struct renc_session_want *w, char *out, size_t max)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < w->drop_count && at < max; i++) {
        int k = snprintf(out + at, max - at, "%s%s", i ? "\n" : "", w->drop[i]);
        if (k < 0)
            break;
        at += (size_t)k;
    }
}

/* Why the journal's unfinished run is not the one asked for, or NULL. */
static const char *renc_session_conflict(const struct renc_session *s,
                                         const struct renc_journal_params *p,
                                         const struct renc_session_want *w, char *buf, size_t max)
{
    char drops[4096];
    renc_join_drops(w, drops, sizeof drops);
    struct renc_keyref given, have;
    if (strcmp(p->mode, w->mode) != 0) {
        snprintf(buf, max, "its mode is %s, not %s", p->mode, w->mode);
    } else if (renc_keyref_parse(&given, w->target_given) != 0 ||
               renc_keyref_parse(&have, p->target) != 0 ||
               !renc_keyref_same_key(&given, &have) ||
               (given.version[0] && strcmp(given.version, have.version) != 0)) {
        snprintf(buf, max, "its target is %s, not %s", p->target, w->target_given);
    } else if (p->keep_old != w->keep_old) {
        snprintf(buf, max, "it was %s --keep-old", p->keep_old ? "started with" : "started without");
    } else if (strcmp(p->drop, drops) != 0) {
        snprintf(buf, max, "its --drop refs differ");
    } else if (strcmp(p->out, s->out) != 0) {
        snprintf(buf, max, "its output is %s, not %s", p->out[0] ? p->out : "in place",
                 s->out[0] ? s->out : "in place");
    } else if (strcmp(p->sources, s->sources) != 0) {
        snprintf(buf, max, "it works on other sources");
    } else if (!s->shared && strcmp(p->name ? p->name : "", s->run_name) != 0) {
        const char *had = p->name && p->name[0] ? p->name : NULL;
        snprintf(buf, max, "it is %s%s, not %s%s", had ? "run " : "an unnamed run",
                 had ? had : "", s->run_name[0] ? "run " : "an unnamed run", s->run_name);
    } else if (strcmp(p->shard ? p->shard : "", s->shard) != 0) {
        snprintf(buf, max, "it is %s%s, not %s%s", p->shard && p->shard[0] ? "shard " : "",
                 p->shard && p->shard[0] ? p->shard : "not sharded", s->shard[0] ? "shard " : "",
                 s->shard[0] ? s->shard : "the whole run");
    } else {
        return NULL;
    }
    return buf;
}

/* A shard's default journal is its own: ...-shard-K-of-N.db beside the
 * whole run's, so the N shards of one tree on one machine each keep one. */
static int renc_session_shard_path(struct renc_session *s)
{
    size_t len = strlen(s->journal_path);
    unsigned k, n;
    if (!s->shard[0])
        return 0;
    if (len < 3 || sscanf(s->shard, "%u/%u", &k, &n) != 2)
        return -RENC_E_INVALID;
    int w = snprintf(s->journal_path + len - 3, sizeof s->journal_path - (len - 3),
                     "-shard-%u-of-%u.db", k, n);
    return w < 0 || (size_t)w >= sizeof s->journal_path - (len - 3) ? -ENAMETOOLONG : 0;
}

/* A shared run (a journal on a server): a worker joins the run of that name
 * when its options are the run's, finished or not (a worker that starts
 * late must not begin the run anew); a run with other options, or
 * --restart, starts a new one only when no worker is at it and nothing is
 * left to settle. */
static int renc_session_join(struct renc_session *s, const struct renc_journal_status *st,
                             const struct renc_session_want *want, char *why, size_t why_max)
{
    if (!st->has_run)
        return 0;
    char buf[8400], q[RENC_PATH_QUOTE_MAX];
    const char *c = renc_session_conflict(s, &st->params, want, buf, sizeof buf);
    if (!c && !want->restart) {
        s->resumed = 1;
        s->attempt = st->attempts + 1;
        snprintf(s->target, sizeof s->target, "%s", st->params.target);
        return 0;
    }
    const char *jp = renc_path_quote(q, sizeof q, s->journal_path);
    if (st->running || st->live_workers)
        snprintf(why, why_max, "journal %s: %u workers are at its run (%s to %s)%s%s; wait for "
                               "them to end, or name another run",
                 jp, st->live_workers, st->params.mode, st->params.target,
                 c ? " and " : "", c ? c : "");
    else if (c && renc_journal_unfinished(st) && !want->restart)
        snprintf(why, why_max, "journal %s holds an unfinished run (%s to %s, %llu blobs left) "
                               "and %s; finish it with its own options, or pass --restart",
                 jp, st->params.mode, st->params.target,
                 (unsigned long long)(st->count[RENC_J_PENDING] + st->count[RENC_J_FAILED]), c);
    else if (st->header_intents)
        snprintf(why, why_max, "journal %s: %llu blobs have in-place header writes that could "
                               "not be settled (see status); --restart would forget them",
                 jp, (unsigned long long)st->header_intents);
    else {
        snprintf(s->prev_run_id, sizeof s->prev_run_id, "%s", st->run_id);
        return 0;
    }
    return -RENC_E_INVALID;
}

int renc_session_open(struct renc_session *s, const char *state_dir, const char *path,
                      const struct renc_session_want *want, long *holder, char *why,
                      size_t why_max,
                      void (*report)(void *arg, const char *path, enum renc_settle what,
                                     int rc),
                      void *arg)
{
    int rc = 0;
    if (path) {
        int n = snprintf(s->journal_path, sizeof s->journal_path, "%s", path);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof s->journal_path, -ENAMETOOLONG);
    } else if ((rc = renc_journal_default_path(state_dir, s->sources, s->out, s->journal_path,
                                               sizeof s->journal_path)) ||
               (rc = renc_session_shard_path(s))) {
        return rc;
    }
    if ((rc = renc_journal_open(&s->journal, s->journal_path, 1, holder)))
        return rc;
    /* A crash in the middle of an in-place header write is settled before
     * anything else, whatever this run turns out to be. */
    if ((rc = renc_journal_recover(s->journal, &s->recovered, report, arg)))
        return rc;
    struct renc_journal_status st;
    if ((rc = renc_journal_status(s->journal, &st)))
        return rc;
    s->attempt = 1;
    if (renc_journal_shared(s->journal) || s->run_name[0])
        return renc_session_join(s, &st, want, why, why_max);
    if (!renc_journal_unfinished(&st))
        return 0; /* none, or finished: a new run */
    if (want->restart) {
        if (st.header_intents) {
            snprintf(why, why_max,
                     "%llu blobs have in-place header writes that could not be settled: their "
                     "files cannot be read (see status); make them readable, or remove them, "
                     "and run again: --restart would forget them",
                     (unsigned long long)st.header_intents);
            return -RENC_E_INVALID;
        }
        /* Its temporaries (a crash may have left some) go as blobs are done. */
        snprintf(s->prev_run_id, sizeof s->prev_run_id, "%s", st.run_id);
        return 0;
    }
    char buf[8400], q[RENC_PATH_QUOTE_MAX];
    const char *c = renc_session_conflict(s, &st.params, want, buf, sizeof buf);
    if (c) {
        snprintf(why, why_max,
                 "journal %s holds an unfinished run (%s to %s, %llu blobs left) and %s; "
                 "finish it with its own options, or pass --restart to start a new run "
                 "(nothing is lost: each blob's header says which key it is under), "
                 "or --journal FILE for another journal",
                 renc_path_quote(q, sizeof q, s->journal_path), st.params.mode, st.params.target,
                 (unsigned long long)(st.count[RENC_J_PENDING] + st.count[RENC_J_FAILED]), c);
        return -RENC_E_INVALID;
    }
    s->resumed = 1;
    s->attempt = st.attempts + 1;
    snprintf(s->target, sizeof s->target, "%s", st.params.target);
    return 0;
}

int renc_session_start(struct renc_session *s, const struct renc_session_want *want,
                       const char *target)
{
    char drops[4096];
    renc_join_drops(want, drops, sizeof drops);
    struct renc_journal_params p = {
        .mode = want->mode, .target = target, .keep_old = want->keep_old,
        .drop = drops, .out = s->out, .sources = s->sources, .shard = s->shard,
        .name = s->shared ? NULL : s->run_name,
    };
    return renc_journal_start(s->journal, &p, s->resumed);
}
