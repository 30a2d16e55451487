/* bench/blob_ceiling.c — what the blob service itself gives, measured with
 * the project's own client (azure/blob.h) and no crypto: the ceiling that
 * bench/blob.sh prints beside the tool's runs.
 *
 *   blob_ceiling [--threads T] [--phases download,upload,copy,blockcopy]
 *                [--range BYTES] [--block BYTES] SRC_URL DST_URL
 *
 * Credentials: AZURE_STORAGE_CONNECTION_STRING.  Every blob under SRC_URL
 * (a container or prefix) is listed, then, each phase with T threads
 * taking blobs from one shared counter, one keep-alive connection each:
 *   download  each blob read whole (one Get Blob, If-Match on the listed
 *             ETag, as the tool reads; --range: in ranged reads of BYTES,
 *             one after the other, as the tool reads a big blob)
 *   upload    the same names and sizes put under DST_URL as one Put Blob
 *             each (the bytes of one random buffer: the service does not
 *             look at them)
 *   copy      each blob read whole, then put under DST_URL: the data path
 *             of a run without its crypto and its extra requests
 *   blockcopy the copy with each blob put as the tool writes one: Put Block
 *             of --block BYTES at a time (default 16 MiB, the tool's record
 *             block), then Put Block List (a blob of one block or less:
 *             one Put Blob, as the tool puts a small blob)
 * Prints one JSON object: per phase seconds, mb_per_s and blobs_per_s (of
 * the blobs' bytes, counted once, as a run's report counts them) and the
 * requests the client sent (retries included).  Each thread's buffer is
 * allocated and touched before the clock starts: no page faults timed. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "azure/blob.h"
#include "common/error.h"
#include "crypto/secmem.h"

struct ceil_blob {
    char *name; /* the full name under SRC */
    char *rel;  /* the name under SRC's prefix */
    char *etag;
    uint64_t size;
};

struct ceil {
    struct renc_blob_account *src_acct, *dst_acct;
    struct renc_blob_location src, dst;
    char src_prefix[1024], dst_prefix[1024]; /* "" or "dir/" */
    struct ceil_blob *blobs;
    size_t n, cap;
    uint64_t bytes, max_size;
    uint8_t *random;                         /* max_size random bytes (upload) */
    unsigned threads;
    size_t range;                            /* GET in ranges of this many bytes (0: whole) */
    uint8_t **bufs;                          /* one max_size buffer a thread, touched before timing */
    atomic_size_t next;
    atomic_uint slot;
    atomic_int failed;
    size_t block;                            /* blockcopy's block size */
    int phase;                               /* 0 download, 1 upload, 2 copy, 3 blockcopy */
};

#define CEIL_PHASES 4
static const char *const phase_names[CEIL_PHASES] = {"download", "upload", "copy", "blockcopy"};

/* 1 when the comma-separated list names phase exactly. */
static int has_phase(const char *list, const char *phase)
{
    size_t n = strlen(phase);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, phase, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int list_item(void *arg, const struct renc_blob_item *it)
{
    struct ceil *c = arg;
    if (it->blob_type && strcmp(it->blob_type, "BlockBlob") != 0)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->blobs = realloc(c->blobs, c->cap * sizeof *c->blobs);
        if (!c->blobs)
            return -RENC_E_NOMEM;
    }
    struct ceil_blob *b = &c->blobs[c->n++];
    b->name = strdup(it->name);
    b->rel = strdup(it->name + strlen(c->src_prefix));
    b->etag = strdup(it->etag ? it->etag : "");
    b->size = it->size;
    c->bytes += it->size;
    if (it->size > c->max_size)
        c->max_size = it->size;
    return b->name && b->rel && b->etag ? 0 : -RENC_E_NOMEM;
}

static int list_all(struct ceil *c)
{
    struct renc_blob_conn *conn;
    int rc = renc_blob_conn_new(&conn, c->src_acct);
    char marker[1024] = "", next[1024];
    while (rc == 0) {
        rc = renc_blob_list_page(conn, c->src.container, c->src_prefix, marker, 5000, 0, list_item,
                                 c, next, sizeof next);
        if (rc || !next[0])
            break;
        snprintf(marker, sizeof marker, "%s", next);
    }
    renc_blob_conn_free(conn);
    return rc;
}

/* blockcopy's put: size bytes of buf as blocks of c->block, committed. */
static int put_blocks(struct ceil *c, struct renc_blob_conn *dst, const char *name,
                      const uint8_t *buf, uint64_t size)
{
    size_t n = (size_t)((size + c->block - 1) / c->block), made = 0;
    char **ids = calloc(n, sizeof *ids);
    int rc = ids ? 0 : -RENC_E_NOMEM;
    for (; rc == 0 && made < n; made++) {
        uint64_t off = (uint64_t)made * c->block;
        size_t len = size - off < c->block ? (size_t)(size - off) : c->block;
        if (!(ids[made] = malloc(96)))
            rc = -RENC_E_NOMEM;
        if (rc == 0)
            rc = renc_blob_block_id("ceiling", made, ids[made]);
        if (rc == 0)
            rc = renc_blob_put_block(dst, c->dst.container, name, ids[made], buf + off, len);
    }
    if (rc == 0)
        rc = renc_blob_put_block_list(dst, c->dst.container, name, ids, n, n, NULL, 0, NULL,
                                      NULL, NULL);
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

/* One blob of the phase through conns (src, dst) and buf (max_size). */
static int one_blob(struct ceil *c, struct renc_blob_conn *src, struct renc_blob_conn *dst,
                    uint8_t *buf, const struct ceil_blob *b)
{
    int rc = 0;
    for (uint64_t off = 0; c->phase != 1 && rc == 0 && off < b->size;) {
        size_t want = (size_t)(b->size - off), got = 0;
        if (c->range && want > c->range)
            want = c->range;
        rc = renc_blob_get_range(src, c->src.container, b->name, b->etag[0] ? b->etag : NULL, off,
                                 buf + off, want, &got);
        if (rc == 0 && got != want)
            rc = -RENC_E_TRUNCATED;
        off += got;
    }
    char name[2048];
    snprintf(name, sizeof name, "%s%s", c->dst_prefix, b->rel);
    if (rc == 0 && c->phase == 3 && b->size > c->block)
        return put_blocks(c, dst, name, buf, b->size);
    if (rc == 0 && c->phase != 0)
        rc = renc_blob_put(dst, c->dst.container, name, c->phase == 1 ? c->random : buf,
                           (size_t)b->size, NULL, 0, NULL, NULL, NULL);
    return rc;
}

static void *worker(void *arg)
{
    struct ceil *c = arg;
    struct renc_blob_conn *src = NULL, *dst = NULL;
    uint8_t *buf = c->bufs[atomic_fetch_add(&c->slot, 1)];
    int rc = renc_blob_conn_new(&src, c->src_acct);
    if (rc == 0)
        rc = renc_blob_conn_new(&dst, c->dst_acct);
    for (size_t i; rc == 0 && (i = atomic_fetch_add(&c->next, 1)) < c->n;) {
        if ((rc = one_blob(c, src, dst, buf, &c->blobs[i])) != 0)
            fprintf(stderr, "blob_ceiling: %s %s: %s\n", phase_names[c->phase],
                    c->blobs[i].name, renc_strerror(rc));
    }
    if (rc)
        atomic_fetch_add(&c->failed, 1);
    renc_blob_conn_free(src);
    renc_blob_conn_free(dst);
    return NULL;
}

/* One phase with c->threads workers; its figures as JSON into out. */
static int run_phase(struct ceil *c, int phase, char *out, size_t max)
{
    struct renc_retry_stats s0, d0, s1, d1;
    renc_blob_account_stats(c->src_acct, &s0);
    renc_blob_account_stats(c->dst_acct, &d0);
    c->phase = phase;
    atomic_store(&c->next, 0);
    atomic_store(&c->slot, 0);
    pthread_t *t = calloc(c->threads, sizeof *t);
    double t0 = now_s();
    unsigned started = 0;
    for (; t && started < c->threads; started++)
        if (pthread_create(&t[started], NULL, worker, c) != 0)
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    free(t);
    renc_blob_account_stats(c->src_acct, &s1);
    renc_blob_account_stats(c->dst_acct, &d1);
    uint64_t req = s1.requests - s0.requests + d1.requests - d0.requests;
    uint64_t retries = s1.retries - s0.retries + d1.retries - d0.retries;
    snprintf(out, max,
             "\"%s\": {\"seconds\": %.3f, \"mb_per_s\": %.1f, \"blobs_per_s\": %.1f, "
             "\"requests\": %llu, \"retries\": %llu}",
             phase_names[phase], secs, c->bytes / 1e6 / secs, c->n / secs,
             (unsigned long long)req, (unsigned long long)retries);
    return started == c->threads && atomic_load(&c->failed) == 0 ? 0 : 1;
}

static int open_side(const char *url, const char *cs, struct renc_blob_location *loc,
                     struct renc_blob_account **acct, char *prefix, size_t max)
{
    char why[256] = "";
    struct renc_blob_account_opts o = {.connection_string = cs};
    int rc = renc_blob_parse_url(url, cs, loc, why, sizeof why);
    if (rc == 0)
        rc = renc_blob_account_new(acct, loc, &o, why, sizeof why);
    if (rc) {
        fprintf(stderr, "blob_ceiling: %s: %s %s\n", url, renc_strerror(rc), why);
        return rc;
    }
    size_t pl = strlen(loc->prefix);
    snprintf(prefix, max, "%s%s", loc->prefix, pl && loc->prefix[pl - 1] != '/' ? "/" : "");
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: blob_ceiling [--threads T] [--phases download,upload,copy,blockcopy] "
                    "[--range BYTES] [--block BYTES] SRC_URL DST_URL\n");
    return 2;
}

static int prepare(struct ceil *c, const char *src_url, const char *dst_url)
{
    const char *cs = getenv("AZURE_STORAGE_CONNECTION_STRING");
    if (open_side(src_url, cs, &c->src, &c->src_acct, c->src_prefix, sizeof c->src_prefix) ||
        open_side(dst_url, cs, &c->dst, &c->dst_acct, c->dst_prefix, sizeof c->dst_prefix))
        return 1;
    struct renc_blob_conn *conn;
    int rc = renc_blob_conn_new(&conn, c->dst_acct);
    if (rc == 0) {
        rc = renc_blob_create_container(conn, c->dst.container);
        renc_blob_conn_free(conn);
    }
    if (rc == 0)
        rc = list_all(c);
    if (rc == 0 && c->n == 0) {
        fprintf(stderr, "blob_ceiling: no block blobs under %s\n", src_url);
        return 1;
    }
    size_t max = c->max_size ? (size_t)c->max_size : 1;
    if (rc == 0 && (!(c->random = malloc(max)) || !(c->bufs = calloc(c->threads, sizeof *c->bufs))))
        rc = -RENC_E_NOMEM;
    for (uint64_t i = 0; rc == 0 && i < c->max_size; i++)
        c->random[i] = (uint8_t)(rand() >> 7);
    for (unsigned i = 0; rc == 0 && i < c->threads; i++) {
        if (!(c->bufs[i] = malloc(max)))
            rc = -RENC_E_NOMEM;
        else
            memset(c->bufs[i], 1, max); /* touched now: no page faults timed */
    }
    if (rc)
        fprintf(stderr, "blob_ceiling: %s\n", renc_strerror(rc));
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                         {"phases", required_argument, NULL, 'p'},
                                         {"range", required_argument, NULL, 'r'},
                                         {"block", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    struct ceil c;
    memset(&c, 0, sizeof c);
    c.threads = 16;
    c.block = (size_t)16 << 20;
    const char *phases = "download,upload,copy";
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (o == 't')
            c.threads = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'p')
            phases = optarg;
        else if (o == 'r')
            c.range = (size_t)strtoull(optarg, NULL, 10);
        else if (o == 'b')
            c.block = (size_t)strtoull(optarg, NULL, 10);
        else
            return usage();
    }
    if (argc - optind != 2 || c.threads < 1 || c.threads > 1024 || c.block == 0)
        return usage();
    if (renc_secmem_init() || prepare(&c, argv[optind], argv[optind + 1]))
        return 1;
    printf("{\"threads\": %u, \"blobs\": %zu, \"bytes\": %llu", c.threads, c.n,
           (unsigned long long)c.bytes);
    int bad = 0;
    for (int p = 0; p < CEIL_PHASES; p++) {
        if (!has_phase(phases, phase_names[p]))
            continue;
        char fig[512];
        bad |= run_phase(&c, p, fig, sizeof fig);
        printf(", %s", fig);
    }
    printf("}\n");
    for (size_t i = 0; i < c.n; i++) {
        free(c.blobs[i].name);
        free(c.blobs[i].rel);
        free(c.blobs[i].etag);
    }
    free(c.blobs);
    free(c.random);
    for (unsigned i = 0; c.bufs && i < c.threads; i++)
        free(c.bufs[i]);
    free(c.bufs);
    renc_blob_account_free(c.src_acct);
    renc_blob_account_free(c.dst_acct);
    renc_blob_location_cleanup(&c.src);
    renc_blob_location_cleanup(&c.dst);
    return bad;
}
