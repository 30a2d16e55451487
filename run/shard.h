/* run/shard.h — a static split of a run's blobs into N shards, for engines
 * that start N copies of the tool without a database they share (a Slurm
 * job array, a Kubernetes Indexed Job): shard K of N takes the blobs whose
 * identity hashes to K, each shard with its own journal.
 *
 * A blob's identity is its name relative to its source root (scan item's
 * rel: the path under the tree, or the blob's name under the container
 * prefix), so a tree and the same blobs copied into a container split the
 * same way, and so do two machines that mount the tree at different
 * places.  The hash is the first 8 bytes of SHA-256 of that name, read
 * big-endian, modulo N: stable across machines, builds and versions (a
 * hash table's seeded hash would not be), and even enough that shards
 * differ in size by a few square roots of their count.
 *
 * The split is applied as the listing streams in (renc_shard_list), so a
 * shard holds only its own blobs in memory. */
#ifndef RENC_RUN_SHARD_H
#define RENC_RUN_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "store/scan.h"

#define RENC_SHARD_MAX 1000000u

struct renc_shard {
    uint32_t index, count; /* count 0: not sharded (every blob) */
    char text[24];         /* "K/N": what the journal records */
    char from[96];         /* --shard auto: the variables it was read from */
};

/* renc_shard_parse: "K/N" (0 <= K < N <= RENC_SHARD_MAX) or "auto", which
 * reads the engine's variables: JOB_COMPLETION_INDEX (Kubernetes Indexed
 * Job) with RENC_SHARD_COUNT (Kubernetes gives a pod its index, not the
 * job's completions), or SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT,
 * SLURM_ARRAY_TASK_MIN, _MAX and _STEP (an array need not start at 0:
 * --array=1-4 is shards 0..3 of 4; a sparse one, 1,3,7, is refused).
 * -RENC_E_INVALID with the reason in why (max bytes). */
int renc_shard_parse(struct renc_shard *s, const char *text, char *why, size_t max);

/* renc_shard_hash: the first 8 bytes of SHA-256(rel), big-endian. */
int renc_shard_hash(const char *rel, uint64_t *h);

/* renc_shard_mine: 1 when the blob named rel is the shard's (always, when
 * not sharded), 0 when another's, or a negative error. */
int renc_shard_mine(const struct renc_shard *s, const char *rel);

/* renc_shard_list_each: the store's listing streamed through inner,
 * keeping only the shard's blobs (every blob when s is not sharded);
 * *listed (may be NULL) counts every blob listed.  Nothing is held: a
 * listing of any size goes through in bounded memory. */
struct renc_store;
struct renc_store_list_stats;
int renc_shard_list_each(struct renc_store *store, const struct renc_shard *s,
                         const struct renc_store_lister *inner, uint64_t *listed,
                         struct renc_store_list_stats *stats);

/* renc_shard_list: the store's listing into scan, as renc_store_list_scan
 * does, keeping only the shard's blobs; *listed (may be NULL) counts every
 * blob listed, the shard's and the others'.  Listing errors and reserved
 * temporary names are kept whatever their shard (an unreadable folder may
 * hold blobs of every shard).  At most max blobs are kept (0: no limit):
 * one more stops the listing with -RENC_E_TOO_BIG (what was listed stays
 * in scan), for a caller that takes a longer listing another way. */
struct renc_store;
int renc_shard_list(struct renc_store *store, const struct renc_shard *s, struct renc_scan *scan,
                    size_t max, uint64_t *listed);

#endif
