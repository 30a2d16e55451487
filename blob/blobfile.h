/* blob/blobfile.h — one whole blob, streamed: seal a plaintext stream
 * into RENC v1, open (verify and decrypt) a RENC v1 stream.
 *
 * These are the single-blob paths of `encrypt`, `decrypt` and `verify`; the
 * run pipeline reuses the same header and record codecs record by record.
 */
#ifndef RENC_BLOB_BLOBFILE_H
#define RENC_BLOB_BLOBFILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/header.h"
#include "common/bytes.h"
#include "keys/keystore.h"

struct renc_seal_opts {
    const char *env;            /* required */
    const char *kind;           /* "blob" or "backup"; NULL for none */
    const char *name;           /* logical name; NULL for none */
    const char *source_env;     /* backups: the environment taken from */
    const char *const *key_refs;/* one slot per ref, in order */
    size_t key_ref_count;
    int compress_level;         /* 0 = off */
    uint8_t seg_shift;
    size_t header_room;         /* padding bytes left for later slots */
};

/* Where a failure happened, for messages. */
struct renc_blob_status {
    int slot;                 /* the slot named by a key error, or -1 */
    char ref[RENC_MAX_REF_LEN + 1];
    uint64_t record;          /* the record being read when it failed */
    int in_records;           /* 1 when the failure is in the records */
    uint64_t plaintext_bytes; /* bytes sealed or opened */
    uint64_t records;         /* records sealed or opened */
    int in_output;            /* open: the failure is the sink's (writing the plaintext) */
};

/* renc_blob_seal: reads plaintext from in_fd to its end and writes a RENC
 * v1 blob to out_fd.  known_len is the plaintext length when known
 * (a regular file) or RENC_PLAINTEXT_UNKNOWN (a pipe); with a known length,
 * reading any other number of bytes fails with -RENC_E_LENGTH_MISMATCH. */
int renc_blob_seal(struct renc_keystore *ks, const struct renc_seal_opts *opts,
                   int in_fd, int out_fd, uint64_t known_len, struct renc_blob_status *st);

/* renc_blob_open: reads a RENC v1 blob from in_fd, verifies every record
 * and writes the plaintext to out_fd (-1: verify only, nothing written).
 * Plaintext reaches out_fd only record by record after each tag verified;
 * callers that need all-or-nothing write to a temporary and discard it on
 * failure.  header_out (may be NULL) receives the parsed header. */
int renc_blob_open(struct renc_keystore *ks, int in_fd, int out_fd,
                   struct renc_header *header_out, struct renc_blob_status *st);

/* A push-fed sealer, for plaintext that is produced rather than read from
 * a file: a backup's archive, a restored or copied blob.  It holds one
 * segment; renc_sealer_finish seals what is left as the last record (a
 * whole segment when the length is a multiple of S; an empty one when
 * nothing was written).  With known_len other than RENC_PLAINTEXT_UNKNOWN,
 * writing more, or finishing with fewer, fails with
 * -RENC_E_LENGTH_MISMATCH.  After any failure the sealer only fails.
 *
 * renc_sealer_new writes the header to out_fd at once; each record is
 * written when the segment after it starts (or at finish).  The output is a
 * whole blob only once renc_sealer_finish returned 0; after a failure the
 * caller discards what reached out_fd.  st (may be NULL) is reset, then
 * kept up to date as records are written; it must outlive the sealer.
 * renc_sealer_write copies buf (len may be 0); renc_sealer_finish a
 * second time, or a write after it, fails with -RENC_E_INVALID. */
struct renc_sealer;
int renc_sealer_new(struct renc_sealer **out, struct renc_keystore *ks,
                    const struct renc_seal_opts *opts, int out_fd, uint64_t known_len,
                    struct renc_blob_status *st);
int renc_sealer_write(struct renc_sealer *s, const uint8_t *buf, size_t len);
int renc_sealer_finish(struct renc_sealer *s);
void renc_sealer_free(struct renc_sealer *s); /* wipes its buffers; NULL: nothing */
/* renc_sealer_sink: renc_sealer_write as a renc_sink_fn (arg: the sealer). */
int renc_sealer_sink(void *arg, const uint8_t *buf, size_t len);

/* renc_blob_open_to: renc_blob_open with each verified segment's plaintext
 * handed to sink (NULL: verify only) instead of written to a file.  The
 * sink sees segments in order, each only after its tag (and, for the last,
 * the total length) checked out; an empty segment is not passed on.  The
 * buffer is valid only during the call.  A sink's error stops the open and
 * is returned as is. */
int renc_blob_open_to(struct renc_keystore *ks, int in_fd, renc_sink_fn sink, void *arg,
                      struct renc_header *header_out, struct renc_blob_status *st);

/* renc_blob_read_header: reads and parses the header at the start of fd
 * (no key needed).  *raw (may be NULL) receives the header bytes, freed by
 * the caller with renc_free. */
int renc_blob_read_header(int fd, struct renc_header *out, uint8_t **raw);



/* renc_blob_verify_mem: as renc_blob_open with no output, over a whole blob
 * held in memory or mapped read-only (buf is not written: each record is
 * decrypted into a scratch segment, one pass over the bytes). */
int renc_blob_verify_mem(struct renc_keystore *ks, const uint8_t *buf, size_t len,
                         struct renc_blob_status *st);
#endif
