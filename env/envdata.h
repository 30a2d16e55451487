/* env/envdata.h — an environment's data on disk, and what its
 * headers say (docs/ENVIRONMENTS.md).
 *
 *   DATA/<env>/blobs/...     its blobs (any tree below), RENC v1 files
 *   DATA/<env>/backups/...   its backups, RENC v1 files of kind "backup"
 *
 * The census reads headers only (no key is needed): how many blobs and
 * backups, their bytes, and under which key versions they are sealed.  It
 * is what `env show`, `env list`, `keys versions` and `keys disable` stand
 * on, and what the encryption status is computed from.
 */
#ifndef RENC_ENV_ENVDATA_H
#define RENC_ENV_ENVDATA_H

#include <stddef.h>
#include <stdint.h>

#include "state/catalog.h"
#include "store/scan.h"

#define RENC_CENSUS_LIST 20 /* paths kept per list, for messages */

/* renc_envdata_path: DATA/<env> (sub NULL), DATA/<env>/blobs or
 * DATA/<env>/backups into out. */
int renc_envdata_path(char *out, size_t max, const char *data_dir, const char *env,
                      const char *sub);

/* renc_envdata_create: makes DATA/<env>/blobs and backups (0700). */
int renc_envdata_create(const char *data_dir, const char *env);

/* renc_envdata_clear: removes every file and folder below DATA/<env>/blobs
 * and backups (the two folders stay); counts what it removed.  Symbolic
 * links are removed, never followed. */
int renc_envdata_clear(const char *data_dir, const char *env, uint64_t *files, uint64_t *bytes);

/* Files with a slot under one versioned ref. */
struct renc_census_ref {
    char *ref;
    uint64_t blobs, backups;
};

struct renc_census {
    uint64_t blobs, blob_bytes;
    uint64_t backups, backup_bytes;
    /* Files that are not RENC v1 or whose header does not parse. */
    uint64_t unreadable;
    char *unreadable_paths[RENC_CENSUS_LIST];
    /* Files with no slot under the policy key (any version). */
    uint64_t off_policy;
    char *off_policy_paths[RENC_CENSUS_LIST];
    /* Files under the policy key, but none under its current version. */
    uint64_t old_version;
    /* Symbolic links and special files in the data: never followed, so
     * whatever they stand for is not covered (not counted, not checked). */
    uint64_t special;
    /* Reserved temporaries (.NAME.renc-tmp.TAG): work under way, or left by
     * a crash that the next command on the environment settles. */
    uint64_t temporaries;
    struct renc_census_ref *refs; /* sorted by ref */
    size_t ref_count;
};

/* renc_envdata_scan: renc_scan_paths over one root, where a name that
 * merely contains ".renc-tmp." is listed as the ordinary file it is; only
 * reserved temporary names (io/tmpname.h) stay in s->temps, unlisted. */
int renc_envdata_scan(struct renc_scan *s, const char *root);

/* renc_census_take: reads every header below DATA/<env>.  policy_ref is
 * the environment's key (unversioned); current_ref its current version
 * (NULL when it cannot be told, e.g. a revoked key: old_version stays 0). */
int renc_census_take(struct renc_census *c, const char *data_dir, const char *env,
                     const char *policy_ref, const char *current_ref);
void renc_census_cleanup(struct renc_census *c);

/* renc_envdata_root: where environment e's data is: DATA/<id>, or, for
 * an environment whose data root is in blob storage, ROOT/<id> (a URL
 * without credentials); blobs/ and backups/ are below it either way. */
int renc_envdata_root(char *out, size_t max, const char *data_dir, const struct renc_env *e);

/* renc_census_take_env: renc_census_take over environment e's data
 * wherever it is: a data root in blob storage is listed and its headers
 * read by ranges through the store (blob: the credentials; NULL: none).
 * A blob the service would not hand over stops the census with its
 * error; one that is not RENC v1 is counted unreadable, as on a disk. */
struct renc_blob_account_opts;
int renc_census_take_env(struct renc_census *c, const char *data_dir, const struct renc_env *e,
                         const char *policy_ref, const char *current_ref,
                         const struct renc_blob_account_opts *blob);

/* renc_census_count: blobs and backups with a slot under ref (versioned:
 * exactly that version). */
void renc_census_count(const struct renc_census *c, const char *ref, uint64_t *blobs,
                       uint64_t *backups);

/* renc_env_status: "locked", "failed" (the last run left errors),
 * "warning" (files not under the policy key, unreadable, or symbolic links
 * and special files in the data) or
 * "encrypted". */
const char *renc_env_status(const struct renc_env *e, const struct renc_census *c);

#endif
