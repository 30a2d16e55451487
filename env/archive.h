/* env/archive.h — the archive inside a backup (docs/FORMAT.md,
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
#ifndef RENC_ENV_ARCHIVE_H
#define RENC_ENV_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define RENC_ARCHIVE_MAGIC "RENCBAK1"
#define RENC_ARCHIVE_NAME_MAX 4096


/* The writer: entry_begin, entry_data as often as needed, entry_end, for
 * each entry in name order, then writer_finish.  Every byte goes to sink as
 * it is produced.  After any failure (a bad name or length, a call out of
 * turn: -RENC_E_INVALID, or the sink's own error) the writer only fails, with
 * that error: what reached the sink is no archive and must be discarded. */
/* renc_archive_name_ok: 1 when the len bytes at name are a valid entry name
 * (the rules above), which is also what a blob's name under
 * DATA/<env>/blobs/ must be. */
int renc_archive_name_ok(const uint8_t *name, size_t len);

struct renc_archive_writer;

/* renc_archive_writer_new: writes the magic to sink (arg is passed to it). */
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
void renc_archive_writer_free(struct renc_archive_writer *w); /* NULL: nothing */

/* The reader's callbacks; each returns 0 or a negative error that stops it.
 * Any of them may be NULL.  entry_begin's name is NUL-terminated and valid
 * until entry_end returns; entry_data's buf only during the call (it is the
 * fed buffer: content is never copied).  An entry of size 0 gets entry_begin
 * then entry_end; otherwise data totals exactly size before entry_end.  The
 * callbacks run before the end record is read: a consumer that needs the
 * whole archive to be sound holds back until renc_archive_reader_finish. */
struct renc_archive_cb {
    int (*entry_begin)(void *arg, const char *name, uint64_t size);
    int (*entry_data)(void *arg, const uint8_t *buf, size_t len);
    int (*entry_end)(void *arg);
    void *arg;
};

struct renc_archive_reader;

/* renc_archive_reader_new: cb is copied (NULL: check only, no callbacks).
 * The reader holds two names (the one being read and the last one, for
 * the order) and a few bytes of a fixed field, never content. */
int renc_archive_reader_new(struct renc_archive_reader **out, const struct renc_archive_cb *cb);

/* renc_archive_reader_feed: parses len more bytes (any split), calling back
 * as entries begin, fill and end.  -RENC_E_BAD_ARCHIVE on a bad magic, type,
 * name (as the writer refuses), order, bytes after the end record, or an end
 * record whose counts disagree; a callback's error is returned as is.  After
 * any failure the reader only fails, with that error. */
int renc_archive_reader_feed(struct renc_archive_reader *r, const uint8_t *buf, size_t len);

/* renc_archive_reader_finish: -RENC_E_BAD_ARCHIVE unless the end record was
 * read (a cut archive); the totals go to *entries and *bytes (may be NULL). */
int renc_archive_reader_finish(struct renc_archive_reader *r, uint64_t *entries, uint64_t *bytes);
void renc_archive_reader_free(struct renc_archive_reader *r); /* NULL: nothing */

#endif
