/* env/rules.h — the restore and copy rules (docs/ENVIRONMENTS.md, "The restore and copy rules"), as pure
 * functions of the catalog records and a backup's header, so that
 * `restore`, `restore-check`, `copy` and `copy-check` give the same verdict
 * with the same words.
 *
 *   restore: a backup may be restored into the environment it was taken
 *            from (its context's source-env), or into another environment
 *            whose policy is a customer key (byok or cmk) that is the same
 *            key (any version) as one the backup is sealed under.
 *   copy:    an environment may be copied only into another environment
 *            whose policy is a customer key, the same key as the source's.
 *   locked:  a locked target (or copy source) refuses both.
 */
#ifndef RENC_ENV_RULES_H
#define RENC_ENV_RULES_H

#include <stddef.h>

#include "crypto/header.h"
#include "state/catalog.h"

struct renc_verdict_text {
    int allowed;          /* 1 allowed, 0 refused */
    int rc;               /* 0, -RENC_E_NOT_ALLOWED or -RENC_E_ENV_LOCKED */
    char reason[1024];    /* one sentence naming the environments and keys */
};

/* renc_rule_restore: may the backup with header h be restored into target?
 * source is the backup's source environment's record, or NULL when the
 * catalog no longer has it (a restore into another environment is then
 * judged by the keys alone).  The verdict today rests on h and target only
 * (the same words whether source is known or not): the checks, in order,
 * are target locked (-RENC_E_ENV_LOCKED), h's kind not "backup", no
 * source-env, target being source-env (allowed), target on mmk, and no slot
 * of h naming target's key (each -RENC_E_NOT_ALLOWED).  Values read from h
 * are quoted without control characters. */
void renc_rule_restore(struct renc_verdict_text *v, const struct renc_header *h,
                       const struct renc_env *source, const struct renc_env *target);

/* renc_rule_copy: may environment from be copied into environment to?
 * Refused, in order: from and to the same environment, to or from locked
 * (-RENC_E_ENV_LOCKED), to or from on mmk, keys that are not the same key
 * (versions aside). */
void renc_rule_copy(struct renc_verdict_text *v, const struct renc_env *from,
                    const struct renc_env *to);

#endif
