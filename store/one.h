/* store/one.h — one blob named by its URL, as an item of the store over the
 * folder that holds it: what `inspect`, `decrypt` and `encrypt` of a single
 * blob in blob storage go through, and a header read by ranges (the census
 * of a data root in blob storage reads its headers so). */
#ifndef RENC_STORE_ONE_H
#define RENC_STORE_ONE_H

#include <stddef.h>

#include "crypto/header.h"
#include "store/store.h"

/* renc_store_open_one: url names one blob (a container URL with the blob's
 * name as its prefix, SAS and all); *out is blob storage's store over the
 * folder that holds it, and it the blob as an item of that store: path its
 * URL without SAS, rel its last name, and, unless for_write, its size and
 * ETag from the service (a later read of another version fails).  With
 * for_write the folder's container is made when missing and nothing is
 * asked of the blob.  -RENC_E_INVALID when url names a container or a
 * folder, not a blob; the service's error when the blob cannot be had.
 * it is released with renc_scan_item_cleanup-style frees (path, rel,
 * etag: renc_store_one_cleanup); *out with renc_store_free. */
int renc_store_open_one(struct renc_store **out, struct renc_scan_item *it, const char *url,
                        const struct renc_blob_account_opts *o, int for_write, char *why,
                        size_t why_max);
void renc_store_one_cleanup(struct renc_scan_item *it);

/* renc_store_read_header: the header of item it of s, read and parsed by
 * ranges (the version s listed or found: a changed blob gives
 * -RENC_E_CHANGED).  *bad is 1 when the failure is the blob's own (not a
 * RENC v1 file, too short), 0 when the read failed.  h is left empty on
 * failure. */
int renc_store_read_header(struct renc_store *s, const struct renc_scan_item *it,
                           struct renc_header *h, int *bad);

/* renc_store_fetch: item it's bytes (it->size of them, the version s
 * listed or found) written to fd at its offset, read a range at a time. */
int renc_store_fetch(struct renc_store *s, const struct renc_scan_item *it, int fd);

/* renc_store_stream_open: item it's bytes as a descriptor read in order
 * (*fd), for readers that take a file (an archive, a blob opened record
 * by record) without a copy of it on disk or in memory: a local store's
 * own file, or a pipe that a thread of its own fills through
 * renc_store_fetch.  renc_store_stream_end closes *fd, waits for the
 * thread and returns what filling the pipe found: 0, or the store's error
 * (a blob changed since it was listed, the network), which is the reason
 * when the reader saw the bytes end early.  It frees st (NULL: 0). */
struct renc_store_stream;
int renc_store_stream_open(struct renc_store_stream **out, struct renc_store *s,
                           const struct renc_scan_item *it, int *fd);
int renc_store_stream_end(struct renc_store_stream *st);

#endif
