/* run/shard.c — see shard.h. */
#include "run/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "crypto/digest.h"
#include "store/store.h"

/* A decimal number, nothing else (no sign, no spaces, no suffix). */
static int renc_shard_num(const char *t, uint64_t *v)
{
    if (!t || !*t || strlen(t) > 9)
        return -1;
    uint64_t n = 0;
    for (const char *p = t; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *v = n;
    return 0;
}

static int renc_shard_set(struct renc_shard *s, uint64_t k, uint64_t n, char *why, size_t max)
{
    if (n < 1 || n > RENC_SHARD_MAX) {
        snprintf(why, max, "the shard count must be 1..%u, not %llu", RENC_SHARD_MAX,
                 (unsigned long long)n);
        return -RENC_E_INVALID;
    }
    if (k >= n) {
        snprintf(why, max, "shard %llu of %llu does not exist: shards are numbered from 0 "
                           "to %llu", (unsigned long long)k, (unsigned long long)n,
                 (unsigned long long)(n - 1));
        return -RENC_E_INVALID;
    }
    s->index = (uint32_t)k;
    s->count = (uint32_t)n;
    snprintf(s->text, sizeof s->text, "%u/%u", s->index, s->count);
    return 0;
}

/* A variable's value as a number; the reason in why when it is not one. */
static int renc_shard_env(const char *name, uint64_t *v, char *why, size_t max)
{
    const char *t = getenv(name);
    if (renc_shard_num(t, v) == 0)
        return 0;
    if (t)
        snprintf(why, max, "--shard auto: %s is not a number", name);
    else
        snprintf(why, max, "--shard auto: %s is not set", name);
    return -RENC_E_INVALID;
}

/* A Kubernetes Indexed Job: the pod's index; the count is ours to pass. */
static int renc_shard_kubernetes(struct renc_shard *s, char *why, size_t max)
{
    uint64_t k, n;
    if (renc_shard_env("JOB_COMPLETION_INDEX", &k, why, max))
        return -RENC_E_INVALID;
    if (!getenv("RENC_SHARD_COUNT")) {
        snprintf(why, max, "--shard auto: JOB_COMPLETION_INDEX is set but Kubernetes does not "
                           "tell a pod the job's completions: set RENC_SHARD_COUNT to the "
                           "Job's spec.completions");
        return -RENC_E_INVALID;
    }
    if (renc_shard_env("RENC_SHARD_COUNT", &n, why, max))
        return -RENC_E_INVALID;
    snprintf(s->from, sizeof s->from, "JOB_COMPLETION_INDEX and RENC_SHARD_COUNT");
    return renc_shard_set(s, k, n, why, max);
}

/* A Slurm job array: the task's place among the array's tasks, which may
 * start anywhere and step by any amount, but must not have holes. */
static int renc_shard_slurm(struct renc_shard *s, char *why, size_t max)
{
    uint64_t id, n, lo = 0, hi, step = 1;
    if (renc_shard_env("SLURM_ARRAY_TASK_ID", &id, why, max) ||
        renc_shard_env("SLURM_ARRAY_TASK_COUNT", &n, why, max) ||
        (getenv("SLURM_ARRAY_TASK_MIN") &&
         renc_shard_env("SLURM_ARRAY_TASK_MIN", &lo, why, max)) ||
        (getenv("SLURM_ARRAY_TASK_STEP") &&
         renc_shard_env("SLURM_ARRAY_TASK_STEP", &step, why, max)))
        return -RENC_E_INVALID;
    hi = lo + (n ? n - 1 : 0) * step;
    if (getenv("SLURM_ARRAY_TASK_MAX") && renc_shard_env("SLURM_ARRAY_TASK_MAX", &hi, why, max))
        return -RENC_E_INVALID;
    if (step == 0 || id < lo || (id - lo) % step || n == 0 || hi != lo + (n - 1) * step) {
        snprintf(why, max, "--shard auto: the Slurm array (tasks %llu..%llu, step %llu, %llu "
                           "tasks) is not evenly spaced, or task %llu is not one of it: give "
                           "--array=0-%llu (or any start, one step), or --shard K/N",
                 (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)step,
                 (unsigned long long)n, (unsigned long long)id,
                 (unsigned long long)(n ? n - 1 : 0));
        return -RENC_E_INVALID;
    }
    snprintf(s->from, sizeof s->from, "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT");
    return renc_shard_set(s, (id - lo) / step, n, why, max);
}

int renc_shard_parse(struct renc_shard *s, const char *text, char *why, size_t max)
{
    memset(s, 0, sizeof *s);
    if (strcmp(text, "auto") == 0) {
        if (getenv("JOB_COMPLETION_INDEX"))
            return renc_shard_kubernetes(s, why, max);
        if (getenv("SLURM_ARRAY_TASK_ID"))
            return renc_shard_slurm(s, why, max);
        snprintf(why, max, "--shard auto: not in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX "
                           "with RENC_SHARD_COUNT) nor a Slurm job array (SLURM_ARRAY_TASK_ID "
                           "with SLURM_ARRAY_TASK_COUNT): give --shard K/N");
        return -RENC_E_INVALID;
    }
    const char *slash = strchr(text, '/');
    char k[16];
    uint64_t kv, nv;
    size_t klen = slash ? (size_t)(slash - text) : 0;
    if (!slash || klen >= sizeof k) {
        snprintf(why, max, "--shard must be K/N (0 <= K < N) or auto");
        return -RENC_E_INVALID;
    }
    memcpy(k, text, klen);
    k[klen] = '\0';
    if (renc_shard_num(k, &kv) || renc_shard_num(slash + 1, &nv)) {
        snprintf(why, max, "--shard must be K/N (0 <= K < N) or auto");
        return -RENC_E_INVALID;
    }
    int rc = renc_shard_set(s, kv, nv, why, max);
    if (rc) {
        char inner[160];
        snprintf(inner, sizeof inner, "%s", why);
        snprintf(why, max, "--shard %s: %s", text, inner);
    }
    return rc;
}

int renc_shard_hash(const char *rel, uint64_t *h)
{
    uint8_t d[RENC_SHA256_BYTES];
    int rc = renc_sha256(rel, strlen(rel), d);
    if (rc)
        return rc;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | d[i];
    *h = v;
    return 0;
}

int renc_shard_mine(const struct renc_shard *s, const char *rel)
{
    if (!s || s->count == 0)
        return 1;
    uint64_t h;
    int rc = renc_shard_hash(rel, &h);
    return rc ? rc : h % s->count == s->index;
}

struct renc_shard_lister {
    const struct renc_shard *shard;
    const struct renc_store_lister *inner;
    uint64_t listed;
};

static int renc_shard_item(void *arg, struct renc_scan_item *it)
{
    struct renc_shard_lister *l = arg;
    l->listed++;
    int mine = renc_shard_mine(l->shard, it->rel ? it->rel : it->path);
    if (mine <= 0)
        return mine; /* another's: the store frees it */
    return l->inner->item ? l->inner->item(l->inner->arg, it) : 0;
}

static int renc_shard_error(void *arg, const char *path, int rc)
{
    const struct renc_store_lister *in = ((struct renc_shard_lister *)arg)->inner;
    return in->error ? in->error(in->arg, path, rc) : 0;
}

static int renc_shard_temp(void *arg, const char *path)
{
    const struct renc_store_lister *in = ((struct renc_shard_lister *)arg)->inner;
    return in->temp ? in->temp(in->arg, path) : 0;
}

int renc_shard_list_each(struct renc_store *store, const struct renc_shard *s,
                         const struct renc_store_lister *inner, uint64_t *listed,
                         struct renc_store_list_stats *stats)
{
    struct renc_shard_lister sl = {.shard = s, .inner = inner};
    struct renc_store_lister l = {.item = renc_shard_item, .error = renc_shard_error,
                                  .temp = renc_shard_temp, .arg = &sl};
    memset(stats, 0, sizeof *stats);
    int rc = store->ops->list(store, &l, stats);
    if (listed)
        *listed = sl.listed;
    return rc;
}

/* The scan's lister, stopped at its max-th blob. */
struct renc_capped_lister {
    struct renc_store_lister scan;
    const struct renc_scan *s;
    size_t max;
};

static int renc_capped_item(void *arg, struct renc_scan_item *it)
{
    struct renc_capped_lister *c = arg;
    if (c->max && c->s->count >= c->max)
        return -RENC_E_TOO_BIG; /* the store frees it */
    return c->scan.item(c->scan.arg, it);
}

static int renc_capped_error(void *arg, const char *path, int rc)
{
    struct renc_capped_lister *c = arg;
    return c->scan.error(c->scan.arg, path, rc);
}

static int renc_capped_temp(void *arg, const char *path)
{
    struct renc_capped_lister *c = arg;
    return c->scan.temp(c->scan.arg, path);
}

int renc_shard_list(struct renc_store *store, const struct renc_shard *s, struct renc_scan *scan,
                    size_t max, uint64_t *listed)
{
    struct renc_capped_lister c = {.s = scan, .max = max};
    renc_scan_lister(scan, &c.scan);
    struct renc_store_lister l = {.item = renc_capped_item, .error = renc_capped_error,
                                  .temp = renc_capped_temp, .arg = &c};
    struct renc_store_list_stats stats;
    memset(&stats, 0, sizeof stats);
    int rc = renc_shard_list_each(store, s, max ? &l : &c.scan, listed, &stats);
    scan->skipped_special += stats.skipped_special;
    scan->duplicates += stats.duplicates;
    return rc;
}
