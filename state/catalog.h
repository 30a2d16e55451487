/* state/catalog.h — the environments, their policies and their history
 * (docs/ENVIRONMENTS.md), in SQLite under the state directory (docs/ENVIRONMENTS.md).
 *
 *   STATE/catalog.db   mode 0600, WAL, synchronous=FULL, application_id
 *                      'RENC', user_version 1 (a journal or another database
 *                      there is refused with -RENC_E_BAD_CATALOG)
 *
 * An environment has one policy at a time: mmk (the service-managed key),
 * byok (a customer key imported into the service's keyring) or cmk (a
 * customer-managed key).  Its key_ref is stored unversioned: the policy
 * follows the key's current version.  An environment is locked by the
 * operator (env lock), or by its key (keys revoke); each lock is lifted only
 * by its own command.  Every change is one transaction and writes one
 * history row, so the history is the catalog's audit trail.
 *
 * Connections are not shared between threads; every process opens its own.
 * Two connections serialise their changes (a second waits up to 5 s for the
 * first's transaction, then gets -RENC_E_BUSY).
 *
 * Common to the calls below: every key ref given is parsed
 * (-RENC_E_BAD_KEYREF when it does not) and stored without its version; an
 * id that is not in the catalog (an invalid one included) gives
 * -RENC_E_ENV_NOT_FOUND; a failed call changes nothing and writes no
 * out-parameter (but see set_policy's *cmk_count).
 */
#ifndef RENC_STATE_CATALOG_H
#define RENC_STATE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/header.h"
#include "io/tmpname.h"

#define RENC_ENV_ID_MAX 64
#define RENC_REGION_MAX 64
#define RENC_REASON_MAX 256
#define RENC_CMK_LIMIT_DEFAULT 25
#define RENC_DATA_ROOT_MAX 1023

enum renc_policy {
    RENC_POLICY_MMK = 0,
    RENC_POLICY_BYOK,
    RENC_POLICY_CMK,
};

/* "mmk", "byok", "cmk"; renc_policy_parse returns -RENC_E_INVALID on
 * anything else. */
const char *renc_policy_name(enum renc_policy p);
int renc_policy_parse(const char *s, enum renc_policy *out);

/* renc_env_id_valid: 1 when s is 1..64 characters of [A-Za-z0-9._-], not
 * starting with '.' or '-' (ids are folder names under DATA/). */
int renc_env_id_valid(const char *s);

struct renc_env {
    char id[RENC_ENV_ID_MAX + 1];
    char region[RENC_REGION_MAX + 1];     /* "" when none was given */
    enum renc_policy policy;
    char key_ref[RENC_MAX_REF_LEN + 1];   /* unversioned, e.g. "local:cmk" */
    int locked_by_operator;               /* env lock */
    char key_lock[RENC_REASON_MAX + 1];   /* "" or why its key locked it */
    int64_t created;                      /* unix seconds */
    int64_t policy_since;                 /* when the current policy was set */
    /* The last `run --env` over it: outcome "" (never run), "finished",
     * "failed" or "interrupted", its failed blob count, when it ended and
     * its journal. */
    char last_run[16];
    int64_t last_run_failed;
    int64_t last_run_at;
    char last_run_journal[1024];
    /* Where its data lives: "" for DATA/<id> on this machine, or a blob
     * storage URL (a container, or a prefix in one) under whose <id>/ its
     * blobs/ and backups/ are.  Never holds a SAS: the credentials come
     * from the environment (docs/BLOBSTORAGE.md, "Credentials"). */
    char data_root[RENC_DATA_ROOT_MAX + 1];
};

/* 1 when the environment is locked, whichever lock. */
static inline int renc_env_locked(const struct renc_env *e)
{
    return e->locked_by_operator || e->key_lock[0] != '\0';
}

struct renc_env_event {
    int64_t at;          /* unix seconds */
    char action[32];     /* created, set-policy, lock, unlock, key-lock,
                          * key-unlock, reset, run */
    char detail[512];    /* e.g. "byok local:b -> cmk local:c" */
};

struct renc_catalog;

/* renc_catalog_open: opens STATE/catalog.db, creating it (0600, in a 0700
 * state folder) with create; -ENOENT without create when it is missing (or
 * empty: a creation cut short).  -RENC_E_INSECURE_PERMS when it is open to
 * group or others; -RENC_E_BAD_CATALOG when it is a link, not SQLite, or
 * another database (a journal has the same marks: the tables decide). */
int renc_catalog_open(struct renc_catalog **out, const char *state_dir, int create);
void renc_catalog_close(struct renc_catalog *c);
const char *renc_catalog_path(const struct renc_catalog *c);

/* renc_catalog_create_env: a new environment under policy mmk with
 * mmk_ref (stored unversioned); region may be NULL or "" for none.
 * -RENC_E_ENV_EXISTS when the id is taken, -RENC_E_INVALID on a bad id or
 * region (a region is up to 64 bytes of UTF-8 without control characters). */
int renc_catalog_create_env(struct renc_catalog *c, const char *id, const char *region,
                            const char *mmk_ref);

/* renc_catalog_create_env_at: renc_catalog_create_env with the
 * environment's data root (NULL or "": DATA/<id>).  A root is up to 1023
 * bytes of printable ASCII with no query ('?': a SAS is never stored),
 * else -RENC_E_INVALID; the caller checks it is a URL it can use.  The
 * history row names it. */
int renc_catalog_create_env_at(struct renc_catalog *c, const char *id, const char *region,
                               const char *mmk_ref, const char *data_root);

/* renc_catalog_get: -RENC_E_ENV_NOT_FOUND when there is none. */
int renc_catalog_get(struct renc_catalog *c, const char *id, struct renc_env *out);

/* renc_catalog_list: every environment sorted by id; free with renc_free. */
int renc_catalog_list(struct renc_catalog *c, struct renc_env **out, size_t *count);

/* renc_catalog_set_policy: sets policy and key_ref in one transaction, with
 * its history row ("byok local:b -> cmk local:c").  key_ref may name a
 * version ("local:c/3"); the version is dropped ("local:c"), since the
 * policy follows the key's current version.  Moving an environment to cmk
 * is refused with -RENC_E_CMK_LIMIT when cmk_limit environments already have
 * cmk (checked inside the transaction, so two processes cannot both take the
 * last one); one that already has cmk keeps its place whatever the limit.
 * *cmk_count (may be NULL) receives how many have cmk after the call, on
 * success and also with -RENC_E_CMK_LIMIT (for the message).  A locked
 * environment is refused with -RENC_E_ENV_LOCKED.  policy_since moves only
 * when the policy or the key changes. */
int renc_catalog_set_policy(struct renc_catalog *c, const char *id, enum renc_policy policy,
                            const char *key_ref, unsigned cmk_limit, unsigned *cmk_count);

/* renc_catalog_set_operator_lock: env lock (on=1) or unlock (on=0); the
 * key's lock, if any, is left as it is. */
int renc_catalog_set_operator_lock(struct renc_catalog *c, const char *id, int on);

/* renc_catalog_key_lock: sets key_lock to reason (1..256 bytes, else
 * -RENC_E_INVALID) on every environment whose key_ref is the same key as ref
 * (versions aside), whatever its policy; or clears it (reason NULL) on those
 * of that key that have a key lock, leaving every other environment and
 * every operator lock alone.  One history row per environment touched.  The
 * ids touched, sorted, are returned in *ids and *count (free each and the
 * array with renc_free; either may be NULL). */
int renc_catalog_key_lock(struct renc_catalog *c, const char *ref, const char *reason,
                          char ***ids, size_t *count);

/* renc_catalog_reset: policy back to mmk with mmk_ref, last run cleared,
 * operator lock kept; the key lock is cleared (the environment no longer
 * uses that key, and nothing else would lift it).  Not refused on a locked
 * environment: the caller decides.  Records a reset event; the history and
 * the keys of renc_catalog_env_keys stay (the caller deletes the data
 * first). */
int renc_catalog_reset(struct renc_catalog *c, const char *id, const char *mmk_ref);

/* renc_catalog_note_run: records the outcome of a run over the environment
 * ("finished", "failed", "interrupted", else -RENC_E_INVALID), its failed
 * count (>= 0) and journal (may be NULL; -RENC_E_TOO_BIG over 1023 bytes). */
int renc_catalog_note_run(struct renc_catalog *c, const char *id, const char *outcome,
                          int64_t failed, const char *journal);

/* renc_catalog_note: a history row for an event that changes no column
 * (backup, restore, copy, put): action (1..31 bytes) and detail (up to 511
 * bytes, may be NULL) as given; -RENC_E_TOO_BIG when longer. */
int renc_catalog_note(struct renc_catalog *c, const char *id, const char *action,
                      const char *detail);

/* renc_catalog_history: the environment's events, oldest first; free with
 * renc_free (*out is NULL when *count is 0).  A detail longer than the
 * struct's field (two long akv refs) is cut at a character boundary. */
int renc_catalog_history(struct renc_catalog *c, const char *id,
                         struct renc_env_event **out, size_t *count);

/* renc_catalog_env_keys: every key (unversioned ref) the environment has
 * had as its policy key, the current one first, then the others from the
 * latest to the oldest, each once: the keys it holds for opening its own
 * older blobs and backups.  Free each string and the array with renc_free. */
int renc_catalog_env_keys(struct renc_catalog *c, const char *id, char ***refs, size_t *count);

/* Settings (key/value): "cmk-limit" (default 25; a decimal 0..1000000) and
 * "mmk-key" (default "local:service-mmk"; a key ref).  get writes the
 * default to out when the setting is unset (it stores nothing), and gives
 * -RENC_E_TOO_BIG when the value does not fit max.  Any other key, or a
 * value of the wrong form, is -RENC_E_INVALID. */
int renc_catalog_config_get(struct renc_catalog *c, const char *key, char *out, size_t max);
int renc_catalog_config_set(struct renc_catalog *c, const char *key, const char *value);

/* ---- staged writes (reencrypt/stage.h) ---------------------------------
 *
 * A staged write (put, restore, copy, backup create) is recorded here before
 * it makes its first temporary (state "writing": its tag names the
 * temporaries, so that a crash's leftovers are known to be the tool's), and
 * again, with every final path and the history rows to write when it is
 * done, before its first rename (state "renaming": from then on it is rolled
 * forward).  Its end writes the history rows and forgets it, in one
 * transaction.  Paths are relative to DATA/<env>. */

struct renc_stage_note {
    const char *env, *action, *detail; /* a history row; env NULL: none */
};

struct renc_stage_rec {
    char tag[RENC_TMP_TAG_MAX + 1];
    char env[RENC_ENV_ID_MAX + 1];
    char op[32];
    int64_t started;       /* unix seconds */
    int renaming;          /* 0: writing */
    char *request;         /* what the command was asked (to tell a rerun) */
    char **rels;           /* renaming: the final paths, relative to DATA/<env> */
    size_t rel_count;
};

/* renc_catalog_stage_begin: records a stage of op on env with tag, state
 * writing.  request (may be "") is kept for renc_catalog_stage_list. */
int renc_catalog_stage_begin(struct renc_catalog *c, const char *env, const char *tag,
                             const char *op, const char *request);

/* renc_catalog_stage_ready: in one transaction, the final paths and the
 * history rows (up to 2) of the stage, and its state renaming. */
int renc_catalog_stage_ready(struct renc_catalog *c, const char *tag, const char *const *rels,
                             size_t count, const struct renc_stage_note *notes, size_t nnotes);

/* renc_catalog_stage_done: writes the stage's history rows (a detail
 * suffixed with note, when given) and forgets the stage, in one
 * transaction.  renc_catalog_stage_drop forgets it without history. */
int renc_catalog_stage_done(struct renc_catalog *c, const char *tag, const char *note);
int renc_catalog_stage_drop(struct renc_catalog *c, const char *tag);

/* renc_catalog_stage_list: the stages recorded on env (NULL: every
 * environment), oldest first, with their final paths; free with
 * renc_catalog_stage_free. */
int renc_catalog_stage_list(struct renc_catalog *c, const char *env,
                            struct renc_stage_rec **out, size_t *count);
void renc_catalog_stage_free(struct renc_stage_rec *recs, size_t count);

#endif
