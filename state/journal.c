/* state/journal.c — see journal.h: the calls every kind of journal shares.
 * It picks the kind by the location's form, keeps the queue of notes and
 * hands each batch to the kind's write_outcomes, and passes the rest
 * through the kind's table.  The settling of header intents on disk is in
 * journal_settle.c; SQLite is journal_sqlite*.c. */
#include "state/journal_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/path.h"
#include "io/file.h"

/* The kinds of journal, tried in order; the one without a scheme takes
 * every location the others do not (postgresql://... goes here, issue 17). */
static const struct renc_journal_ops *const renc_journal_kinds[] = {
    &renc_journal_pg_ops,
    &renc_journal_pg_short_ops,
    &renc_journal_sqlite_ops,
};

static const char *const renc_jstate_names[RENC_J_COUNT] = {
    "pending", "done", "skipped", "not_renc", "failed", "gone",
};

static const char *const renc_settle_names[RENC_SETTLE_COUNT] = {
    "rewritten", "as_it_was", "completed", "gone", "replaced",
};

const char *renc_journal_state_name(enum renc_jstate s)
{
    return (unsigned)s < RENC_J_COUNT ? renc_jstate_names[s] : "?";
}

enum renc_jstate renc_journal_state_parse(const char *s)
{
    for (int i = 0; i < RENC_J_COUNT; i++)
        if (s && strcmp(s, renc_jstate_names[i]) == 0)
            return (enum renc_jstate)i;
    return RENC_J_PENDING;
}

const char *renc_settle_name(enum renc_settle s)
{
    return (unsigned)s < RENC_SETTLE_COUNT ? renc_settle_names[s] : "?";
}

enum renc_settle renc_settle_parse(const char *s)
{
    for (int k = 0; k < RENC_SETTLE_COUNT; k++)
        if (s && strcmp(s, renc_settle_names[k]) == 0)
            return (enum renc_settle)k;
    return RENC_SETTLE_COUNT;
}

int renc_journal_abs_path(const char *cwd, const char *path, char *out, size_t max)
{
    if (strstr(path, "://")) { /* a blob's URL: its own key already */
        int n = snprintf(out, max, "%s", path);
        return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
    }
    char tmp[8192];
    int n = path[0] == '/' ? snprintf(tmp, sizeof tmp, "%s", path)
                           : snprintf(tmp, sizeof tmp, "%s/%s", cwd, path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    return renc_path_tidy(out, max, tmp, RENC_PATH_ROOTED);
}

void renc_journal_owned_free(struct renc_journal_owned *o)
{
    char **f[] = {&o->mode, &o->target, &o->drop, &o->out, &o->sources, &o->shard, &o->name};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        renc_free(*f[i]);
        *f[i] = NULL;
    }
}

int renc_journal_owned_set(struct renc_journal_owned *o, struct renc_journal_params *p,
                           const char *const v[7], int keep_old)
{
    renc_journal_owned_free(o);
    char **f[] = {&o->mode, &o->target, &o->drop, &o->out, &o->sources, &o->shard, &o->name};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!(*f[i] = renc_strdup(v[i] ? v[i] : "")))
            return -RENC_E_NOMEM;
    *p = (struct renc_journal_params){o->mode,    o->target, keep_old, o->drop,
                                      o->out,     o->sources, o->shard, o->name};
    return 0;
}

/* ---- the base and the choice of kind ----------------------------------- */

void renc_journal_base_init(struct renc_journal *j, const struct renc_journal_ops *ops,
                            int readonly)
{
    memset(j, 0, sizeof *j);
    j->ops = ops;
    j->readonly = readonly;
    pthread_mutex_init(&j->flush_lock, NULL);
    pthread_mutex_init(&j->notes_lock, NULL);
}

static void renc_journal_outcomes_free(struct renc_journal_outcome *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        renc_free(o[i].old_ref);
        renc_free(o[i].new_ref);
    }
    renc_free(o);
}

void renc_journal_base_cleanup(struct renc_journal *j)
{
    if (!j->ops)
        return; /* only zeroed: nothing was made */
    renc_journal_outcomes_free(j->notes, j->nnotes);
    j->notes = NULL;
    j->nnotes = j->cap = 0;
    pthread_mutex_destroy(&j->flush_lock);
    pthread_mutex_destroy(&j->notes_lock);
    j->ops = NULL;
}

/* The kind that serves location where. */
static const struct renc_journal_ops *renc_journal_kind(const char *where)
{
    const struct renc_journal_ops *fallback = NULL;
    size_t n = sizeof renc_journal_kinds / sizeof renc_journal_kinds[0];
    for (size_t i = 0; i < n; i++) {
        const char *scheme = renc_journal_kinds[i]->scheme;
        if (!scheme)
            fallback = renc_journal_kinds[i];
        else if (strncmp(where, scheme, strlen(scheme)) == 0)
            return renc_journal_kinds[i];
    }
    return fallback;
}

int renc_journal_is_url(const char *where)
{
    return renc_journal_kind(where)->scheme != NULL;
}

int renc_journal_open(struct renc_journal **out, const char *path, int create, long *holder_pid)
{
    return renc_journal_kind(path)->open(out, path, create, holder_pid);
}

int renc_journal_open_readonly(struct renc_journal **out, const char *path)
{
    return renc_journal_kind(path)->open_readonly(out, path);
}

void renc_journal_close(struct renc_journal *j)
{
    if (!j)
        return;
    if (!j->readonly)
        renc_journal_flush(j);
    j->ops->close(j);
}

const char *renc_journal_run_id(const struct renc_journal *j)
{
    return j->run_id;
}

/* ---- the run, through the kind's table --------------------------------- */

int renc_journal_status(struct renc_journal *j, struct renc_journal_status *st)
{
    memset(st, 0, sizeof *st);
    return j->ops->status(j, st);
}

int renc_journal_unfinished(const struct renc_journal_status *s)
{
    return s->has_run && (!s->listed || s->count[RENC_J_PENDING] || s->count[RENC_J_FAILED] ||
                          s->header_intents);
}

int renc_journal_start(struct renc_journal *j, const struct renc_journal_params *p, int resume)
{
    return j->ops->start(j, p, resume);
}

int renc_journal_register(struct renc_journal *j, const struct renc_scan *scan, int64_t *rows,
                          uint8_t *finished)
{
    return j->ops->enlist(j, scan, rows, finished);
}

int renc_journal_claim(struct renc_journal *j, size_t max, struct renc_journal_batch *out)
{
    return renc_journal_claim_upto(j, max, 0, out);
}

int renc_journal_claim_upto(struct renc_journal *j, size_t max, uint64_t max_bytes,
                            struct renc_journal_batch *out)
{
    memset(out, 0, sizeof *out);
    return max ? j->ops->claim(j, max, max_bytes, out) : 0;
}

void renc_journal_batch_cleanup(struct renc_journal_batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        renc_free(b->items[i].path);
        renc_free(b->items[i].etag);
    }
    renc_free(b->items);
    memset(b, 0, sizeof *b);
}

int renc_journal_header_intents(struct renc_journal *j, size_t n, const int64_t *rows,
                                const char *const *paths, const uint8_t *const *old_hdr,
                                const uint8_t *const *new_hdr, const size_t *len)
{
    return j->ops->header_intents(j, n, rows, paths, old_hdr, new_hdr, len);
}

int renc_journal_end(struct renc_journal *j, const char *outcome)
{
    int rc = renc_journal_flush(j);
    int r2 = j->ops->end(j, outcome);
    return rc ? rc : r2;
}

int renc_journal_failures(struct renc_journal *j, size_t limit,
                          void (*fn)(void *arg, const char *path, const char *error, int code,
                                     const char *ref),
                          void *arg)
{
    return j->ops->failures(j, limit, fn, arg);
}

/* ---- a shared run ---------------------------------------------------------- */

int renc_journal_shared(const struct renc_journal *j)
{
    return j->ops->shared;
}

int renc_journal_list_begin(struct renc_journal *j, int *must)
{
    *must = 0;
    return j->ops->list_begin ? j->ops->list_begin(j, must) : -RENC_E_UNSUPPORTED;
}

int renc_journal_enlist_part(struct renc_journal *j, const struct renc_scan *part)
{
    if (!j->ops->enlist_part)
        return -RENC_E_UNSUPPORTED;
    int rc = part->count ? renc_fault_check("enlist") : 0;
    return rc || !part->count ? rc : j->ops->enlist_part(j, part);
}

int renc_journal_list_end(struct renc_journal *j, int ok)
{
    return j->ops->list_end ? j->ops->list_end(j, ok) : -RENC_E_UNSUPPORTED;
}

int renc_journal_renew(struct renc_journal *j)
{
    return j->ops->renew ? j->ops->renew(j) : 0;
}

double renc_journal_lease_s(const struct renc_journal *j)
{
    return j->ops->lease_s ? j->ops->lease_s(j) : 0;
}

int renc_journal_workers(struct renc_journal *j,
                         void (*fn)(void *arg, const struct renc_journal_worker *w), void *arg)
{
    return j->ops->workers ? j->ops->workers(j, fn, arg) : 0;
}

/* ---- the queue of notes ------------------------------------------------- */

void renc_journal_note(struct renc_journal *j, int64_t row, enum renc_jstate st, int rc,
                       const char *old_ref, const char *new_ref)
{
    pthread_mutex_lock(&j->notes_lock);
    if (j->nnotes == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 256;
        struct renc_journal_outcome *grown = renc_realloc(j->notes, cap * sizeof *grown);
        if (!grown) {
            /* Not noted: a resume reads this blob's header again. */
            pthread_mutex_unlock(&j->notes_lock);
            return;
        }
        j->notes = grown;
        j->cap = cap;
    }
    struct renc_journal_outcome *n = &j->notes[j->nnotes++];
    n->row = row;
    n->state = st;
    n->rc = rc;
    n->old_ref = old_ref && old_ref[0] ? renc_strdup(old_ref) : NULL;
    n->new_ref = new_ref && new_ref[0] ? renc_strdup(new_ref) : NULL;
    pthread_mutex_unlock(&j->notes_lock);
}

/* Gives queued notes back to the queue, ahead of newer ones (a failed
 * flush keeps them for the next). */
static void renc_journal_requeue(struct renc_journal *j, struct renc_journal_outcome *notes,
                                 size_t n)
{
    pthread_mutex_lock(&j->notes_lock);
    size_t total = n + j->nnotes;
    struct renc_journal_outcome *all = renc_realloc(notes, (total + 1) * sizeof *all);
    if (all) {
        if (j->nnotes)
            memcpy(all + n, j->notes, j->nnotes * sizeof *all);
        renc_free(j->notes);
        j->notes = all;
        j->nnotes = total;
        j->cap = total + 1;
        notes = NULL;
        n = 0;
    }
    pthread_mutex_unlock(&j->notes_lock);
    /* Could not keep them: a resume reads the headers. */
    renc_journal_outcomes_free(notes, n);
}

int renc_journal_flush(struct renc_journal *j)
{
    if (j->readonly)
        return 0;
    pthread_mutex_lock(&j->flush_lock);
    /* Take the queue as it is; workers go on noting into a fresh one while
     * this commits (the commit waits for the disk). */
    pthread_mutex_lock(&j->notes_lock);
    struct renc_journal_outcome *notes = j->notes;
    size_t nnotes = j->nnotes;
    j->notes = NULL;
    j->nnotes = j->cap = 0;
    pthread_mutex_unlock(&j->notes_lock);
    int rc = nnotes ? j->ops->write_outcomes(j, notes, nnotes) : 0;
    pthread_mutex_unlock(&j->flush_lock);
    if (rc)
        renc_journal_requeue(j, notes, nnotes);
    else
        renc_journal_outcomes_free(notes, nnotes);
    return rc;
}

/* ---- the default location ------------------------------------------------ */

int renc_journal_default_path(const char *state_dir, const char *sources, const char *out,
                              char *path, size_t max)
{
    /* FNV-1a over what identifies the run's blobs: not a secret, a name. */
    uint64_t h = 1469598103934665603ull;
    for (const char *s = sources; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
    for (const char *s = out; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    /* A readable prefix: the last component of the first source. */
    char name[33];
    size_t first = strcspn(sources, "\n");
    size_t start = first;
    while (start > 0 && sources[start - 1] != '/')
        start--;
    size_t k = 0;
    for (size_t i = start; i < first && k < sizeof name - 1; i++) {
        char c = sources[i];
        name[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '.' || c == '-' || c == '_'
                        ? c
                        : '_';
    }
    name[k] = '\0';
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s/journals", state_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    n = snprintf(path, max, "%s/%s%s%016llx.db", dir, name, k ? "-" : "", (unsigned long long)h);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}
