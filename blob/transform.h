/* blob/transform.h — what `run` does to one blob, independent of how
 * its bytes are read and written (FORMAT.md §4).
 *
 *   rewrap: a new header whose slots wrap the same DEK under the target; the
 *           same salt, nonce_prefix, context and K_hdr; records unchanged.
 *   rekey:  a new DEK (or one shared by up to share_dek blobs), salt and
 *           nonce_prefix; every record opened and re-sealed, compressed
 *           payloads as they are.  Record lengths never change.
 *
 * The new header keeps the old header_len when it fits in it, so records
 * keep their offsets; otherwise it gets the default padding again.
 */
#ifndef RENC_BLOB_TRANSFORM_H
#define RENC_BLOB_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "crypto/header.h"
#include "keys/keystore.h"

enum renc_run_mode {
    RENC_MODE_REWRAP = 0,
    RENC_MODE_REKEY,
};

struct renc_transform_opts {
    enum renc_run_mode mode;
    const char *target;        /* target ref as given (resolved at new) */
    int keep_old;              /* keep the slot that opened the blob */
    const char *const *drop;   /* refs whose key's slots are removed */
    size_t drop_count;
    unsigned share_dek;        /* rekey: blobs sealed per new DEK (>= 1) */
    int verify;                /* open the new header with the target first */
    enum renc_aead_backend backend;
};

struct renc_transformer;

/* renc_transformer_new: resolves the target to its current version (so a
 * whole run uses one version) and parses the drop refs. */
int renc_transformer_new(struct renc_transformer **out, struct renc_keystore *ks,
                         const struct renc_transform_opts *opts);
void renc_transformer_free(struct renc_transformer *t);
/* The versioned target ref. */
const char *renc_transformer_target(const struct renc_transformer *t);

enum renc_verdict {
    RENC_VERDICT_TRANSFORM = 0,
    RENC_VERDICT_SKIP,         /* already under the target version */
};

/* One blob's plan: its old header opened, its new header built. */
struct renc_blob_plan {
    enum renc_verdict verdict;
    struct renc_header old_h;
    struct renc_header new_h;
    struct renc_opened old;         /* old DEK and keys */
    struct renc_key *new_dek;       /* rekey */
    struct renc_blob_keys new_keys; /* rekey: keys of the new DEK and salt */
    uint8_t *new_hdr;               /* serialized new header */
    size_t new_hdr_len;
    int failed_slot;                /* on failure: the slot named, or -1 */
    char failed_ref[RENC_MAX_REF_LEN + 1];
};

/* renc_transform_plan: parses hdr_bytes (at least the whole header), opens
 * it, decides skip or transform, and builds and (with verify) checks the new
 * header.  On failure the plan holds nothing but failed_slot/failed_ref. */
int renc_transform_plan(struct renc_transformer *t, struct renc_blob_plan *plan,
                        const uint8_t *hdr_bytes, size_t len);
void renc_blob_plan_cleanup(struct renc_blob_plan *plan);

/* A worker's per-blob record state: AES-GCM contexts are per thread, so
 * each thread that reseals records of a blob has its own. */
struct renc_resealer {
    struct renc_aead *from, *to;
    struct renc_zstd *z;  /* verify: decompresses compressed records */
    int verify;           /* open and check every record instead of resealing */
};
int renc_resealer_init(struct renc_resealer *r, const struct renc_blob_plan *plan,
                       enum renc_aead_backend backend);
void renc_resealer_cleanup(struct renc_resealer *r);

/* renc_resealer_init_verify: a resealer that checks records (and
 * decompresses compressed ones) to verify a blob, writing nothing back. */
int renc_resealer_init_verify(struct renc_resealer *r, const struct renc_blob_plan *plan,
                              enum renc_aead_backend backend);

/* renc_transform_records: rekeys in place (or, with a verifying resealer,
 * checks: raw records without writing buf, compressed ones opened in place
 * and their frames wiped, so buf is left with no plaintext either way)
 * whole records in buf[0, len)
 * starting at record first_index.  count is the blob's record count, or 0
 * when unknown; then final says buf ends at the end of the blob (its last
 * record is the last one).  *records_out (may be NULL) gets how many were
 * resealed.  Fails on a record that does not open, a malformed word, a
 * record cut by the buffer end, or a raw segment of the wrong size. */
int renc_transform_records(struct renc_resealer *r, const struct renc_blob_plan *plan,
                           uint8_t *buf, size_t len, uint64_t first_index, uint64_t count,
                           int final, uint64_t *records_out);

/* renc_records_span: walks the record words of buf[0, len) from its start
 * and returns in *span the bytes of the whole records that fit in at most
 * max_bytes (at least one record when one fits in len) and number at most
 * max_records, and their number.
 * For cutting a big blob into record-aligned chunks. */
int renc_records_span(const struct renc_header *h, const uint8_t *buf, size_t len,
                      size_t max_bytes, uint64_t max_records, size_t *span, uint64_t *records);

#endif
