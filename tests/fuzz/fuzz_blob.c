/* tests/fuzz/fuzz_blob.c — a whole blob through renc_blob_open: header read
 * and parse, slot unwrap, header tag, then every record (FORMAT.md §2-3).
 *
 * Input: a mode byte, then the blob.
 *   mode bit 0   fix the header up first: when the header parses and slot 0
 *                unwraps under the fuzz keyring, re-serialize it with the K_hdr
 *                of that DEK, so that a mutated header (plaintext_len, flags,
 *                seg_shift, context, padding) still authenticates and the
 *                record reader behind it is reached.
 * The blob is written to a memfd and opened (verify only, nothing written).
 *
 * The keyring is made once per process in a mkdtemp directory (0700) and
 * removed at exit.  It holds one key, local:fuzz/1, whose material is then
 * replaced by a fixed 32 bytes (FORMAT.md §6: VERSION.key is 32 raw bytes),
 * so seeds sealed under the same bytes open: records and their failure paths
 * are reachable, not only the slot failures.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "crypto/header.h"
#include "crypto/hkdf.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "crypto/secmem.h"
#include "blob/blobfile.h"
#include "tests/fuzz/fuzz_tmpdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

/* The KEK of local:fuzz/1; seeds are sealed under the same bytes. */
static const uint8_t fuzz_kek[32] = {
    'r', 'e', 'n', 'c', ' ', 'f', 'u', 'z', 'z', ' ', 'b', 'l', 'o', 'b', ' ', 'k',
    'e', 'k', 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
};

static char fuzz_dir[] = "/tmp/renc-fuzz-keyring.XXXXXX";
static struct renc_keyring *fuzz_kr;
static struct renc_keystore *fuzz_ks;

static void fuzz_teardown(void)
{
    renc_keystore_free(fuzz_ks);
    renc_keyring_free(fuzz_kr);
    fuzz_rmtree(fuzz_dir);
}

static void fuzz_setup(void)
{
    char path[sizeof fuzz_dir + 32];
    if (!mkdtemp(fuzz_dir) || renc_keyring_open(&fuzz_kr, fuzz_dir, 1) != 0 ||
        renc_keyring_create_key(fuzz_kr, "fuzz", RENC_KEK_AES256, 0) != 0)
        abort();
    snprintf(path, sizeof path, "%s/fuzz/1.key", fuzz_dir);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || write(fd, fuzz_kek, sizeof fuzz_kek) != (ssize_t)sizeof fuzz_kek)
        abort();
    close(fd);
    if (renc_keystore_new(&fuzz_ks, &(struct renc_provider_config){.keyring = fuzz_kr}) != 0)
        abort();
    atexit(fuzz_teardown);
}

/* Recomputes the header tag of buf in place with the DEK of slot 0. */
static void fuzz_fix_header(uint8_t *buf, size_t len)
{
    struct renc_header h;
    if (renc_header_parse(&h, buf, len) != 0)
        return;
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys = {0};
    if (renc_keystore_unwrap_slot(fuzz_ks, &h.slots[0], &dek) == 0 &&
        renc_blob_keys_derive(&keys, dek, h.salt) == 0) {
        /* Serializing a parsed header reproduces its bytes (fuzz_header
         * checks that); only the tag changes. */
        FUZZ_CHECK(renc_header_serialize(buf, len, &h, keys.k_hdr) == 0);
        FUZZ_CHECK(renc_header_verify(buf, h.header_len, keys.k_hdr) == 0);
    }
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    renc_header_cleanup(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ks)
        fuzz_setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t blob_len = size - 1;
    uint8_t *blob = renc_malloc(blob_len ? blob_len : 1);
    FUZZ_CHECK(blob != NULL);
    memcpy(blob, data + 1, blob_len);
    if (mode & 1)
        fuzz_fix_header(blob, blob_len);

    int fd = memfd_create("renc-fuzz-blob", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(blob_len == 0 || write(fd, blob, blob_len) == (ssize_t)blob_len);
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);

    struct renc_header h;
    struct renc_blob_status st;
    memset(&h, 0, sizeof h);
    int rc = renc_blob_open(fuzz_ks, fd, -1, &h, &st);
    if (rc == 0) {
        /* What opened is all of the plaintext the header promised. */
        FUZZ_CHECK(h.plaintext_len == RENC_PLAINTEXT_UNKNOWN ||
                   st.plaintext_bytes == h.plaintext_len);
        FUZZ_CHECK(st.records >= 1);
        FUZZ_CHECK(st.slot >= 0 && st.slot < h.slot_count);
    } else {
        FUZZ_CHECK(rc < 0);
        FUZZ_CHECK(st.slot >= -1 && st.slot < RENC_MAX_SLOTS);
    }
    renc_header_cleanup(&h);
    close(fd);
    renc_free(blob);
    return 0;
}
