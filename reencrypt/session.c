/* reencrypt/session.c — see session.h. */
#include "reencrypt/session.h"

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
#include "crypto/keyref.h"
#include "reencrypt/cli.h"

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
}

static int renc_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* flock(LOCK_EX | LOCK_NB) on path (a directory or a file).  A path that
 * is one this run holds already (the same inode under another name: a bind
 * mount, a hard link) is not locked twice: flock would refuse the run as
 * busy with itself. */
static int renc_session_flock(struct renc_session *s, const char *path)
{
    RENC_RETURN_IF(s->nlocks == RENC_SESSION_MAX_LOCKS, -RENC_E_TOO_BIG);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st, held;
    for (size_t i = 0; i < s->nlocks && fstat(fd, &st) == 0; i++) {
        if (fstat(s->lock_fds[i], &held) == 0 && held.st_dev == st.st_dev &&
            held.st_ino == st.st_ino) {
            close(fd);
            return 0;
        }
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? -RENC_E_BUSY : -e;
    }
    s->lock_fds[s->nlocks++] = fd;
    return 0;
}

int renc_session_lock(struct renc_session *s, const char *const *sources, size_t n,
                      const char *manifest, const char *out, char *busy, size_t max)
{
    size_t count = manifest ? 1 : n;
    RENC_RETURN_IF(count + 1 > RENC_SESSION_MAX_LOCKS, -RENC_E_TOO_BIG);
    char **canon = renc_calloc(count ? count : 1, sizeof *canon);
    RENC_RETURN_IF(!canon, -RENC_E_NOMEM);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *src = manifest ? manifest : sources[i];
        char real[PATH_MAX];
        if (!realpath(src, real)) {
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
                             renc_cli_path_quote(q, sizeof q, canon[i]));
            if (k < 0 || (size_t)k >= sizeof s->sources - w)
                rc = -ENAMETOOLONG;
            else
                w += (size_t)k;
        }
    }
    /* The locks: a source over which another run is working is refused. */
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (i && strcmp(canon[i], canon[i - 1]) == 0)
            continue;
        if ((rc = renc_session_flock(s, canon[i])))
            snprintf(busy, max, "%s", canon[i]);
    }
    if (rc == 0 && out) {
        snprintf(s->out, sizeof s->out, "%s", out);
        if ((rc = renc_session_flock(s, out)))
            snprintf(busy, max, "%s", out);
    }
    for (size_t i = 0; i < count; i++)
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
    } else {
        return NULL;
    }
    return buf;
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
                                               sizeof s->journal_path))) {
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
                 renc_cli_path_quote(q, sizeof q, s->journal_path), st.params.mode, st.params.target,
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
        .drop = drops, .out = s->out, .sources = s->sources,
    };
    return renc_journal_start(s->journal, &p, s->resumed);
}
