/* bench/mkcorpus.c — seals a benchmark corpus fast, in one process:
 *
 *   mkcorpus KEYRING REF COUNT SIZE OUTDIR [PER_DIR]
 *
 * COUNT blobs of SIZE random bytes each (each its own DEK, salt and nonce
 * prefix), under OUTDIR/dNNNN/ with PER_DIR (default 1000) blobs a folder.
 * The plaintext is random and not kept: the benchmark checks its results
 * with `reencrypt verify`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "crypto/secmem.h"
#include "io/file.h"
#include "blob/blobfile.h"

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mkcorpus KEYRING REF COUNT SIZE OUTDIR [PER_DIR]\n");
        return 2;
    }
    unsigned long count = strtoul(argv[3], NULL, 10);
    unsigned long long size = strtoull(argv[4], NULL, 10);
    unsigned long per_dir = argc > 6 ? strtoul(argv[6], NULL, 10) : 1000;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    if (renc_secmem_init() || renc_keyring_open(&kr, argv[1], 0) ||
        renc_keystore_new(&ks, &(struct renc_provider_config){.keyring = kr})) {
        fprintf(stderr, "mkcorpus: cannot open keyring %s\n", argv[1]);
        return 1;
    }
    mkdir(argv[5], 0755);
    int mem = memfd_create("plain", 0);
    const size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    int urandom = open("/dev/urandom", O_RDONLY);
    const char *refs[1] = {argv[2]};
    struct renc_seal_opts so = {.env = "bench", .kind = "blob", .key_refs = refs,
                                .key_ref_count = 1, .seg_shift = 20,
                                .header_room = 773};
    for (unsigned long i = 0; i < count; i++) {
        /* Fresh random plaintext for every blob. */
        if (ftruncate(mem, 0) != 0 || lseek(mem, 0, SEEK_SET) != 0)
            return 1;
        for (unsigned long long left = size; left > 0;) {
            size_t n = left < chunk ? (size_t)left : chunk;
            if (read(urandom, buf, n) != (ssize_t)n || write(mem, buf, n) != (ssize_t)n)
                return 1;
            left -= n;
        }
        lseek(mem, 0, SEEK_SET);
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s/d%04lu", argv[5], i / per_dir);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/b%07lu.renc", dir, i);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        struct renc_blob_status st;
        int rc = out < 0 ? -errno : renc_blob_seal(ks, &so, mem, out, size, &st);
        if (out >= 0)
            close(out);
        if (rc) {
            fprintf(stderr, "mkcorpus: %s: %s\n", path, renc_strerror(rc));
            return 1;
        }
    }
    free(buf);
    close(urandom);
    close(mem);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return 0;
}
