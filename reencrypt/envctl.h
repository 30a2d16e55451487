/* reencrypt/envctl.h — what the environment commands share: opening the
 * catalog, the service-managed key, and the check every command that reads
 * or writes an environment's data makes first. */
#ifndef RENC_APP_ENVCTL_H
#define RENC_APP_ENVCTL_H

#include <stddef.h>

#include "keys/keyring.h"
#include "keys/keystore.h"
#include "state/catalog.h"
#include "reencrypt/cli.h"

/* renc_envctl_open: resolves the global options and opens the catalog
 * (creating the state folder and catalog with create). */
int renc_envctl_open(struct renc_global *g, int create, struct renc_catalog **cat);

/* renc_envctl_mmk: the service-managed key's ref (setting "mmk-key",
 * default local:service-mmk) into ref; a local one that does not exist yet
 * is created (AES-256), and *created says so. */
int renc_envctl_mmk(struct renc_catalog *cat, struct renc_keyring *kr, char *ref, size_t max,
                    int *created);

/* renc_envctl_ready: loads environment id into env and checks that it may
 * be worked on: -RENC_E_ENV_LOCKED when it is locked, or when its policy
 * key's access is revoked (the key lock is then recorded in the catalog, as
 * `keys revoke` would have).  why (may be NULL) gets the sentence to print.
 * current (may be NULL) receives the policy key's current versioned ref. */
int renc_envctl_ready(struct renc_catalog *cat, struct renc_keystore *ks, const char *id,
                      struct renc_env *env, char *current, size_t max, char *why,
                      size_t why_max);

/* renc_envctl_census: renc_census_take_env over env's data, with blob
 * storage's credentials from g and the environment when its data root is a
 * container (policy_ref: the key it is counted against). */
struct renc_census;
int renc_envctl_census(const struct renc_global *g, const struct renc_env *env,
                       const char *policy_ref, const char *current, struct renc_census *c);

/* renc_envctl_say_unread: says on stderr, for cmd, that env's data (and
 * where it is, when in blob storage) `what` ("cannot be read", ...), and
 * why (rc, from renc_envctl_census). */
void renc_envctl_say_unread(const char *cmd, const struct renc_env *env, const char *what,
                            int rc);

/* renc_envctl_lock_why: the sentence saying why env is locked. */
void renc_envctl_lock_why(const struct renc_env *env, char *why, size_t max);

#endif
