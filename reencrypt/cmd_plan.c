/* reencrypt plan — headers only: what a run would have to do. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "io/file.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_run.h"
#include "store/scan.h"
#include "store/store.h"

static const char renc_plan_usage[] =
    "usage: reencrypt plan [--json] [--check-keys] [--threads N] [--storage-mbps N]\n"
    "                      [--shard K/N|auto] (SOURCE... | --manifest FILE)\n";

/* One group: blobs whose slots name the same key versions. */
struct renc_plan_group {
    char *refs;             /* slot refs joined with " + " */
    uint64_t blobs, bytes;
    int closed;             /* --check-keys: no slot's key version would open now */
    uint64_t *deks;         /* a set of the distinct wrapped DEKs' fingerprints
                             * (open addressing; 0 marks a free slot) */
    size_t dek_count, dek_cap;
};

/* A cheap 64-bit fingerprint (FNV-1a), never 0: only to count distinct
 * wrapped DEKs (an estimate: two that collide count once), not a security
 * boundary. */
static uint64_t renc_fingerprint(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Crypto throughput of one core now, in bytes/s: seals 8 MiB in 1 MiB
 * records with the backend the run would use. */
static double renc_measure_crypto(void)
{
    struct renc_key *k = NULL;
    struct renc_aead *a = NULL;
    size_t seg = 1u << 20;
    uint8_t *buf = renc_calloc(1, seg);
    uint8_t tag[16], nonce[12] = {0};
    double rate = 0;
    if (buf && renc_key_random(&k, 32) == 0 && renc_aead_new(&a, k, RENC_AEAD_BACKEND_AUTO) == 0) {
        struct timespec t0, t1;
        renc_aead_seal(a, buf, tag, buf, seg, nonce, NULL, 0); /* warm up */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 8; i++) {
            nonce[11] = (uint8_t)i;
            renc_aead_seal(a, buf, tag, buf, seg, nonce, NULL, 0);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        rate = s > 0 ? 8.0 * seg / s : 0;
    }
    renc_aead_free(a);
    renc_key_free(k);
    renc_free(buf);
    return rate;
}

/* --check-keys: asks each key version the slots name (once) whether it
 * would open them now, and marks the groups none of whose slots would: a
 * version disabled after blobs were sealed under it, a revoked or deleted
 * key.  Returns the number of such blobs. */
static uint64_t renc_plan_check_keys(struct renc_global *g, struct renc_plan_group *groups,
                                     size_t ngroups, json_t *states)
{
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    uint64_t closed = 0;
    int rc = renc_open_keys(g, 0, &kr, &ks);
    for (size_t k = 0; k < ngroups; k++) {
        char refs[4096];
        snprintf(refs, sizeof refs, "%s", groups[k].refs);
        int open_ok = 0;
        for (char *ref = refs, *next; ref; ref = next) {
            next = strstr(ref, " + ");
            if (next) {
                *next = '\0';
                next += 3;
            }
            json_t *known = json_object_get(states, ref);
            if (!known) {
                int r = rc ? rc : renc_keystore_can_unwrap(ks, ref);
                known = json_string(r ? renc_strerror(r) : "ok");
                json_object_set_new(states, ref, known);
            }
            open_ok |= strcmp(json_string_value(known), "ok") == 0;
        }
        groups[k].closed = !open_ok;
        closed += open_ok ? 0 : groups[k].blobs;
    }
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return closed;
}

/* What --check-keys found, for the reader. */
static void renc_plan_print_keys(const struct renc_plan_group *groups, size_t ngroups,
                                 json_t *states)
{
    const char *ref;
    json_t *v;
    printf("key versions (asked of their providers now):\n");
    json_object_foreach(states, ref, v)
        printf("  %s: %s\n", ref, json_string_value(v));
    for (size_t k = 0; k < ngroups; k++)
        if (groups[k].closed)
            printf("warning: %llu blobs (%llu bytes) have no slot that would open now: %s\n",
                   (unsigned long long)groups[k].blobs, (unsigned long long)groups[k].bytes,
                   groups[k].refs);
}

/* What plan was asked. */
struct renc_plan_args {
    struct renc_global g;
    const char *manifest;
    char **sources;
    int nsrc, json, check_keys;
    unsigned threads;
    double storage_mbps; /* 0: not given */
    struct renc_shard shard; /* --shard: that shard's blobs only */
};

/* Returns -1 to go on, or an exit. */
static int renc_plan_parse(struct renc_plan_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"manifest", required_argument, NULL, 'M'},
        {"threads", required_argument, NULL, 'T'},
        {"storage-mbps", required_argument, NULL, 'S'},
        {"check-keys", no_argument, NULL, 'K'},
        {"shard", required_argument, NULL, 'H'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 0 ? (unsigned)ncpu : 1;
    uint64_t v;
    uint64_t given = 0; /* options with one value given (renc_opt_once) */
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(&a->g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once("plan", opts, "MTSH", opt, &given))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'j': a->json = 1; break;
        case 'K': a->check_keys = 1; break;
        case 'M': a->manifest = optarg; break;
        case 'T':
            if (renc_parse_size(optarg, &v) || v < 1 || v > 1024) {
                renc_err("plan", "--threads must be 1..1024");
                return RENC_EXIT_USAGE;
            }
            a->threads = (unsigned)v;
            break;
        case 'S':
            if (renc_parse_size(optarg, &v) || v < 1 || v > 1000000) {
                renc_err("plan", "--storage-mbps must be 1..1000000");
                return RENC_EXIT_USAGE;
            }
            a->storage_mbps = (double)v;
            break;
        case 'H': {
            char why[512];
            if (renc_shard_parse(&a->shard, optarg, why, sizeof why)) {
                renc_err("plan", "%s", why);
                return RENC_EXIT_USAGE;
            }
            break;
        }
        case 'h': fputs(renc_plan_usage, stdout); return RENC_EXIT_OK;
        default: fputs(renc_plan_usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    a->sources = argv + optind;
    a->nsrc = argc - optind;
    if ((a->nsrc == 0) == (a->manifest == NULL)) {
        fputs(renc_plan_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    return -1;
}

/* What the scan found: the groups, the counts and the estimates. */
struct renc_plan {
    struct renc_plan_group *groups;
    size_t ngroups;
    uint64_t not_renc, bad, renc_bytes, renc_blobs, unwraps;
    double crypto, rekey_s, rewrap_s;
    int layout_known;    /* the store tells whether a rewrap moves only the header */
    uint64_t header_only; /* blobs whose rewrap commits only a new header block */
};

static void renc_plan_cleanup(struct renc_plan *p)
{
    for (size_t k = 0; k < p->ngroups; k++) {
        renc_free(p->groups[k].refs);
        renc_free(p->groups[k].deks);
    }
    renc_free(p->groups);
}

/* The group of blobs whose slots are refs, added when new; NULL when out
 * of memory. */
static struct renc_plan_group *renc_plan_group_get(struct renc_plan *p, const char *refs)
{
    for (size_t k = 0; k < p->ngroups; k++)
        if (strcmp(p->groups[k].refs, refs) == 0)
            return &p->groups[k];
    struct renc_plan_group *grown = renc_realloc(p->groups, (p->ngroups + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    p->groups = grown;
    struct renc_plan_group *grp = &p->groups[p->ngroups++];
    memset(grp, 0, sizeof *grp);
    grp->refs = renc_strdup(refs);
    return grp;
}

/* fp put into a set of cap slots (a power of two, not full); 1 when it
 * was not there. */
static int renc_dek_put(uint64_t *set, size_t cap, uint64_t fp)
{
    for (size_t i = (size_t)(fp * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);;
         i = (i + 1) & (cap - 1)) {
        if (set[i] == fp)
            return 0;
        if (set[i] == 0) {
            set[i] = fp;
            return 1;
        }
    }
}

/* Counts the wrapped DEK fp once per group (an unwrap each), in a hash
 * set kept under half full: a million blobs with a DEK each take 16 MiB
 * and constant time a blob.  Out of memory, it is not counted: the figure
 * is an estimate. */
static void renc_plan_note_dek(struct renc_plan_group *grp, uint64_t fp)
{
    if (2 * (grp->dek_count + 1) > grp->dek_cap) {
        size_t cap = grp->dek_cap ? grp->dek_cap * 2 : 256;
        uint64_t *grown = renc_calloc(cap, sizeof *grown);
        if (!grown)
            return;
        for (size_t i = 0; i < grp->dek_cap; i++)
            if (grp->deks[i])
                renc_dek_put(grown, cap, grp->deks[i]);
        renc_free(grp->deks);
        grp->deks = grown;
        grp->dek_cap = cap;
    }
    grp->dek_count += (size_t)renc_dek_put(grp->deks, grp->dek_cap, fp);
}

/* Reads item's header into hdr and adds it to its group.  Returns 0 to go
 * on (an unreadable or other file counted and said), or -RENC_E_NOMEM to
 * stop the scan. */
static int renc_plan_read_one(struct renc_plan *p, struct renc_store *store,
                              const struct renc_scan_item *item, uint8_t *hdr)
{
    int fd = -1;
    struct stat id;
    size_t got = 0;
    size_t want = item->size < RENC_MAX_HEADER_LEN ? (size_t)item->size : RENC_MAX_HEADER_LEN;
    int rc = store->ops->open_read(store, item, &fd, &id);
    if (rc == 0)
        rc = store->ops->read_range(store, item, fd, 0, hdr, want, &got);
    if (fd >= 0)
        close(fd);
    if (rc) {
        renc_err("plan", "%s: %s", item->path, renc_strerror(rc));
        p->bad++;
        return 0;
    }
    if (got < 4 || memcmp(hdr, "RENC", 4) != 0) {
        p->not_renc++;
        return 0;
    }
    struct renc_header h;
    rc = renc_header_parse(&h, hdr, got);
    if (rc) {
        renc_err("plan", "%s: %s", item->path, renc_strerror(rc));
        p->bad++;
        return 0;
    }
    char refs[4096] = "";
    for (unsigned s = 0; s < h.slot_count; s++) {
        size_t n = strlen(refs);
        snprintf(refs + n, sizeof refs - n, "%s%s", s ? " + " : "", h.slots[s].ref);
    }
    struct renc_plan_group *grp = renc_plan_group_get(p, refs);
    if (!grp) {
        renc_header_cleanup(&h);
        return -RENC_E_NOMEM;
    }
    grp->blobs++;
    grp->bytes += item->size;
    if (store->ops->header_layout) {
        int lay = store->ops->header_layout(store, item, h.header_len);
        p->layout_known = 1;
        if (lay > 0)
            p->header_only++;
        else if (lay < 0)
            renc_err("plan", "%s: its block list: %s", item->path, renc_strerror(lay));
    }
    p->renc_blobs++;
    p->renc_bytes += item->size;
    renc_plan_note_dek(grp, renc_fingerprint(h.slots[0].wrapped, h.slots[0].wrapped_len));
    renc_header_cleanup(&h);
    return 0;
}

/* Estimates: rekey is two AES-GCM passes per byte over all cores; a
 * rewrap by copy is bound by storage.  Storage speed is not measured here
 * (plan writes nothing): give --storage-mbps to include it. */
static void renc_plan_estimate(struct renc_plan *p, const struct renc_plan_args *a)
{
    double storage_mbps = a->storage_mbps;
    p->crypto = renc_measure_crypto() * a->threads;
    p->rekey_s = p->crypto > 0 ? 2.0 * p->renc_bytes / p->crypto : 0;
    p->rewrap_s = storage_mbps > 0 ? 2.0 * p->renc_bytes / (storage_mbps * 1e6) : 0;
    if (storage_mbps > 0 && 2.0 * p->renc_bytes / (storage_mbps * 1e6) > p->rekey_s)
        p->rekey_s = 2.0 * p->renc_bytes / (storage_mbps * 1e6);
    p->unwraps = 0;
    for (size_t k = 0; k < p->ngroups; k++)
        p->unwraps += p->groups[k].dek_count;
}

static void renc_plan_json(const struct renc_plan *p, const struct renc_plan_args *a,
                           json_t *states)
{
    const struct renc_plan_group *groups = p->groups;
    json_t *arr = json_array();
    for (size_t k = 0; k < p->ngroups; k++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:o*}", "keys", groups[k].refs,
                                             "blobs", (json_int_t)groups[k].blobs, "bytes",
                                             (json_int_t)groups[k].bytes, "unwraps",
                                             (json_int_t)groups[k].dek_count, "opens_now",
                                             a->check_keys ? json_boolean(!groups[k].closed)
                                                           : NULL));
    json_t *root = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f}", "groups", arr,
                             "blobs", (json_int_t)p->renc_blobs, "bytes",
                             (json_int_t)p->renc_bytes, "unwraps", (json_int_t)p->unwraps,
                             "not_renc", (json_int_t)p->not_renc, "unreadable",
                             (json_int_t)p->bad, "crypto_mb_per_s", p->crypto / 1e6,
                             "storage_mb_per_s", a->storage_mbps, "estimate_rekey_s", p->rekey_s,
                             "estimate_rewrap_s", p->rewrap_s);
    if (a->check_keys)
        json_object_set(root, "key_versions", states);
    if (p->layout_known)
        json_object_set_new(root, "rewrap_header_only", json_integer((json_int_t)p->header_only));
    if (root && a->shard.count)
        json_object_set_new(root, "shard", json_string(a->shard.text));
    json_dumpf(root, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(root);
}

static void renc_plan_text(const struct renc_plan *p, const struct renc_plan_args *a,
                           json_t *states)
{
    const struct renc_plan_group *groups = p->groups;
    printf("%-48s %10s %14s %10s\n", "KEY SLOTS", "BLOBS", "BYTES", "UNWRAPS");
    for (size_t k = 0; k < p->ngroups; k++)
        printf("%-48s %10llu %14llu %10zu\n", groups[k].refs,
               (unsigned long long)groups[k].blobs, (unsigned long long)groups[k].bytes,
               groups[k].dek_count);
    printf("total: %llu RENC blobs, %llu bytes, %llu unwraps; %llu other files skipped%s\n",
           (unsigned long long)p->renc_blobs, (unsigned long long)p->renc_bytes,
           (unsigned long long)p->unwraps, (unsigned long long)p->not_renc,
           p->bad ? "; some files unreadable (listed above)" : "");
    printf("estimate: rekey %.1f s (two AES-GCM passes at %.0f MB/s on %u threads, measured "
           "now%s)\n", p->rekey_s, p->crypto / 1e6, a->threads,
           a->storage_mbps > 0 ? ", or storage if slower" : "; storage not included");
    if (p->layout_known)
        printf("rewrap in place: %llu of %llu RENC blobs are laid out as [header][records] "
               "blocks and move only a new header block; the rest are rewritten whole (once, "
               "if over 256 KiB; a smaller blob is always one request)\n",
               (unsigned long long)p->header_only, (unsigned long long)p->renc_blobs);
    if (a->check_keys)
        renc_plan_print_keys(groups, p->ngroups, states);
    if (a->storage_mbps > 0)
        printf("estimate: rewrap %.1f s (read and write at %.0f MB/s) plus %llu unwraps\n",
               p->rewrap_s, a->storage_mbps, (unsigned long long)p->unwraps);
    else
        printf("estimate: rewrap is a copy bound by storage: give --storage-mbps N to "
               "estimate it; %llu unwraps\n", (unsigned long long)p->unwraps);
}

/* The plan's listing streamed: each of the shard's blobs has its header
 * read as it is listed (no list of the corpus is held, so a plan over
 * millions of files stays in bounded memory); errors said as they come. */
struct renc_plan_walk {
    struct renc_plan *p;
    struct renc_store *store;
    uint8_t *hdr;
    uint64_t errors, mine;
};

static int renc_plan_walk_item(void *arg, struct renc_scan_item *it)
{
    struct renc_plan_walk *w = arg;
    w->mine++;
    return renc_plan_read_one(w->p, w->store, it, w->hdr);
}

static int renc_plan_walk_error(void *arg, const char *path, int rc)
{
    struct renc_plan_walk *w = arg;
    w->errors++;
    renc_err("plan", "%s: %s", path, renc_strerror(rc));
    return 0;
}

int renc_cmd_plan(int argc, char **argv)
{
    struct renc_plan_args a = {0};
    int status = renc_plan_parse(&a, argc, argv);
    if (status >= 0)
        return status;
    /* The sources are listed by their store, as a run lists them. */
    struct renc_store_creds creds;
    char why[512] = "";
    if (renc_store_creds_from(&a.g, &creds))
        return RENC_EXIT_USAGE;
    struct renc_store_spec spec = {.sources = (const char *const *)a.sources,
                                   .source_count = (size_t)a.nsrc, .manifest = a.manifest,
                                   .blob = &creds.blob, .why = why, .why_max = sizeof why};
    struct renc_store *store = NULL;
    struct renc_plan p = {0};
    struct renc_plan_walk w = {.p = &p, .hdr = renc_malloc(RENC_MAX_HEADER_LEN)};
    int rc = w.hdr ? renc_store_open(&store, &spec) : -RENC_E_NOMEM;
    uint64_t listed = 0;
    struct renc_store_lister l = {.item = renc_plan_walk_item, .error = renc_plan_walk_error,
                                  .arg = &w};
    struct renc_store_list_stats stats;
    w.store = store;
    if (rc == 0) /* a shard's plan: its blobs only */
        rc = renc_shard_list_each(store, &a.shard, &l, &listed, &stats);
    renc_free(w.hdr);
    if (rc) {
        renc_err("plan", "%s%s%s%s%s", store ? store->ops->describe(store) : "",
                 store ? ": " : "", renc_strerror(rc), why[0] ? ": " : "", why);
        renc_store_free(store);
        renc_plan_cleanup(&p);
        return renc_exit_for(rc);
    }
    status = w.errors ? RENC_EXIT_FAILED : RENC_EXIT_OK;
    if (a.shard.count && !a.json)
        printf("shard %s: %llu of the %llu blobs listed\n", a.shard.text,
               (unsigned long long)w.mine, (unsigned long long)listed);
    renc_store_warn_retained("plan", store);
    renc_store_free(store);
    renc_plan_estimate(&p, &a);
    json_t *states = json_object();
    uint64_t closed = a.check_keys ? renc_plan_check_keys(&a.g, p.groups, p.ngroups, states) : 0;
    if (closed)
        status = RENC_EXIT_FAILED;
    if (a.json)
        renc_plan_json(&p, &a, states);
    else
        renc_plan_text(&p, &a, states);
    renc_plan_cleanup(&p);
    json_decref(states);
    return p.bad ? RENC_EXIT_FAILED : status;
}
