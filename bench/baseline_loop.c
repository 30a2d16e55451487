/* bench/baseline_loop.c — the plain loop the pipeline is measured against:
 * one file at a time, one thread, POSIX calls:
 *
 *   for each blob: open, read, close; rekey it in memory (the same crypto
 *   as `run --mode rekey`); open a temporary, write, fsync, close, rename;
 *   fsync the directory.
 *
 *   baseline_loop KEYRING TARGET_REF DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "crypto/secmem.h"
#include "io/file.h"
#include "blob/transform.h"
#include "bench/walk.h"

static struct renc_transformer *g_t;
static unsigned long g_done, g_failed;

static int rekey_one(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    struct stat st;
    fstat(fd, &st);
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len + 8192);
    int rc = renc_file_read_full(fd, buf, len, &got);
    close(fd);
    struct renc_blob_plan p;
    if (rc == 0)
        rc = renc_transform_plan(g_t, &p, buf, got);
    if (rc == 0 && p.verdict == RENC_VERDICT_TRANSFORM) {
        struct renc_resealer r;
        size_t hl = p.old_h.header_len;
        rc = renc_resealer_init(&r, &p, RENC_AEAD_BACKEND_AUTO);
        if (rc == 0)
            rc = renc_transform_records(&r, &p, buf + hl, len - hl, 0,
                                        renc_header_seg_count(&p.old_h), 1, NULL);
        renc_resealer_cleanup(&r);
        char tmp[4200];
        int out = -1;
        if (rc == 0)
            rc = renc_file_tmp_open(path, 0644, tmp, sizeof tmp, &out);
        if (rc == 0) {
            rc = renc_file_write_full(out, p.new_hdr, p.new_hdr_len);
            if (rc == 0)
                rc = renc_file_write_full(out, buf + hl, len - hl);
            rc = rc ? (renc_file_abort(out, tmp), rc) : renc_file_commit(out, tmp, path);
        }
    }
    if (rc == 0)
        renc_blob_plan_cleanup(&p);
    free(buf);
    return rc;
}

static void rekey_counted(const char *path, void *arg)
{
    (void)arg;
    if (rekey_one(path) == 0)
        g_done++;
    else
        g_failed++;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: baseline_loop KEYRING TARGET_REF DIR\n");
        return 2;
    }
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    struct renc_transform_opts o = {.mode = RENC_MODE_REKEY, .target = argv[2], .verify = 1};
    if (renc_secmem_init() || renc_keyring_open(&kr, argv[1], 0) ||
        renc_keystore_new(&ks, &(struct renc_provider_config){.keyring = kr}) ||
        renc_keystore_cache_deks(ks, 1 << 16) || renc_transformer_new(&g_t, ks, &o)) {
        fprintf(stderr, "baseline_loop: cannot open keyring or target\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bench_walk(argv[3], rekey_counted, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"blobs\": %lu, \"failed\": %lu, \"seconds\": %.3f, \"blobs_per_s\": %.1f}\n", g_done,
           g_failed, s, g_done / s);
    renc_transformer_free(g_t);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return g_failed ? 1 : 0;
}
