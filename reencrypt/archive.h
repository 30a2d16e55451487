/* reencrypt/archive.h — the archive inside a backup (docs/FORMAT.md,
 * "Backups").  A backup is one RENC v1 blob (context kind=backup,
 * source-env=ENV) whose plaintext is this archive:
 *
 *   magic "RENCBAK1" (8 bytes)
 *   entries, each:  type 0x01 (1) || name_len (2, BE) || name
 *                   || size (8, BE) || content (size bytes)
 *   end:            type 0x00 (1) || entry_count (8, BE) || content_bytes (8, BE)
 *
 * Names are the blob's path under DATA/ENV/blobs/ ('/'-separated, UTF-8,
 * 1..4096 bytes, no empty, "." or ".." component, no leading '/', no NUL),
 * each at most once and in strictly ascending bytewise order; content is
 * the blob's plaintext.  Nothing may follow the end record.  The RENC
 * records authenticate the bytes; the archive's own checks (order, counts,
 * the end record) make a cut or reordered archive fail on its own terms too.
 *
 * Both sides stream: the writer pushes bytes to a sink (a sealer), the
 * reader is fed bytes as they are opened and calls back per entry, so
 * neither ever holds a whole blob.
 */
#ifndef RENC_APP_ARCHIVE_H
#define RENC_APP_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define RENC_ARCHIVE_MAGIC "RENCBAK1"
#define RENC_ARCHIVE_NAME_MAX 4096


struct renc_archive_writer;

/* renc_archive_writer_new: writes the magic to sink. */
int renc_archive_writer_new(struct renc_archive_writer **out, renc_sink_fn sink, void *arg);

/* renc_archive_entry_begin: starts an entry of exactly size bytes;
 * -RENC_E_INVALID on a bad name or one not after the previous name. */
int renc_archive_entry_begin(struct renc_archive_writer *w, const char *name, uint64_t size);
/* renc_archive_entry_data: more content; -RENC_E_LENGTH_MISMATCH beyond size. */
int renc_archive_entry_data(struct renc_archive_writer *w, const uint8_t *buf, size_t len);
/* renc_archive_entry_end: -RENC_E_LENGTH_MISMATCH when short of size. */
int renc_archive_entry_end(struct renc_archive_writer *w);

/* renc_archive_writer_finish: writes the end record (after the last
 * entry_end); the totals go to *entries and *bytes (may be NULL). */
int renc_archive_writer_finish(struct renc_archive_writer *w, uint64_t *entries, uint64_t *bytes);
void renc_archive_writer_free(struct renc_archive_writer *w);

/* The reader's callbacks; each returns 0 or a negative error that stops it. */
struct renc_archive_cb {
    int (*entry_begin)(void *arg, const char *name, uint64_t size);
    int (*entry_data)(void *arg, const uint8_t *buf, size_t len);
    int (*entry_end)(void *arg);
    void *arg;
};

struct renc_archive_reader;

int renc_archive_reader_new(struct renc_archive_reader **out, const struct renc_archive_cb *cb);

/* renc_archive_reader_feed: parses len more bytes (any split), calling back
 * as entries begin, fill and end.  -RENC_E_BAD_ARCHIVE on a bad magic, type,
 * name (as the writer refuses), order, bytes after the end record, or an end
 * record whose counts disagree; a callback's error is returned as is. */
int renc_archive_reader_feed(struct renc_archive_reader *r, const uint8_t *buf, size_t len);

/* renc_archive_reader_finish: -RENC_E_BAD_ARCHIVE unless the end record was
 * read (a cut archive); the totals go to *entries and *bytes (may be NULL). */
int renc_archive_reader_finish(struct renc_archive_reader *r, uint64_t *entries, uint64_t *bytes);
void renc_archive_reader_free(struct renc_archive_reader *r);

#endif
