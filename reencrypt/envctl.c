/* reencrypt/envctl.c — see envctl.h. */
#include "reencrypt/envctl.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "env/envdata.h"
#include "keys/keyref.h"
#include "keys/provider.h"

int renc_envctl_open(struct renc_global *g, int create, struct renc_catalog **cat)
{
    int rc = renc_global_resolve(g, create);
    if (rc == 0)
        rc = renc_catalog_open(cat, g->state_dir, create);
    return rc;
}

int renc_envctl_mmk(struct renc_catalog *cat, struct renc_keyring *kr, char *ref, size_t max,
                    int *created)
{
    struct renc_keyref r;
    *created = 0;
    int rc = renc_catalog_config_get(cat, "mmk-key", ref, max);
    if (rc)
        return rc;
    if ((rc = renc_keyref_parse(&r, ref)))
        return rc;
    /* Only a key of the service's own keyring is made here. */
    if (!(renc_provider_caps(ref) & RENC_PROVIDER_KEYRING))
        return 0;
    rc = renc_keyring_load(kr, r.name, NULL, NULL, NULL);
    if (rc == -RENC_E_KEY_NOT_FOUND) {
        rc = renc_keyring_create_key(kr, r.name, RENC_KEK_AES256, 0);
        *created = rc == 0;
    }
    return rc;
}

void renc_envctl_say_unread(const char *cmd, const struct renc_env *env, const char *what,
                            int rc)
{
    renc_err(cmd, "environment %s: its data%s%s %s: %s", env->id, env->data_root[0] ? " in " : "",
             env->data_root, what, renc_strerror(rc));
}

void renc_envctl_lock_why(const struct renc_env *env, char *why, size_t max)
{
    const struct renc_provider_ops *p = renc_provider_for_text(env->key_ref);
    if (env->key_lock[0] && p && (p->caps & RENC_PROVIDER_HOLDER_GRANTS))
        snprintf(why, max, "environment %s is locked: %s; nothing is read or written (once the "
                           "%s grants access again, 'reencrypt keys restore %s' unlocks it)",
                 env->id, env->key_lock, p->holder, env->key_ref);
    else if (env->key_lock[0])
        snprintf(why, max, "environment %s is locked: %s; nothing is read or written "
                           "('reencrypt keys restore' unlocks it)",
                 env->id, env->key_lock);
    else
        snprintf(why, max, "environment %s is locked by the operator; nothing is read or "
                           "written ('reencrypt env unlock %s' unlocks it)",
                 env->id, env->id);
}

int renc_envctl_ready(struct renc_catalog *cat, struct renc_keystore *ks, const char *id,
                      struct renc_env *env, char *current, size_t max, char *why,
                      size_t why_max)
{
    char buf[RENC_MAX_REF_LEN + 1];
    int rc = renc_catalog_get(cat, id, env);
    if (rc) {
        if (why)
            renc_textf(why, why_max, "environment %s: %s", id, renc_strerror(rc));
        return rc;
    }
    if (!renc_env_locked(env)) {
        rc = renc_keystore_resolve(ks, current ? current : buf, current ? max : sizeof buf,
                                   env->key_ref);
        if (rc == -RENC_E_KEY_REVOKED) {
            /* Access withdrawn outside `keys revoke` (another tool, another
             * host): the catalog learns it now. */
            char reason[RENC_REASON_MAX + 1];
            renc_textf(reason, sizeof reason, "key %s revoked", env->key_ref);
            renc_catalog_key_lock(cat, env->key_ref, reason, NULL, NULL);
            if ((rc = renc_catalog_get(cat, id, env)))
                return rc;
            if (!renc_env_locked(env))
                snprintf(env->key_lock, sizeof env->key_lock, "%s", reason);
        } else if (rc) {
            if (why)
                snprintf(why, why_max, "environment %s: policy key %s: %s", env->id,
                         env->key_ref, renc_strerror(rc));
            return rc;
        }
    }
    if (renc_env_locked(env)) {
        if (why)
            renc_envctl_lock_why(env, why, why_max);
        return -RENC_E_ENV_LOCKED;
    }
    return 0;
}

int renc_envctl_census(const struct renc_global *g, const struct renc_env *env,
                       const char *policy_ref, const char *current, struct renc_census *c)
{
    if (!env->data_root[0])
        return renc_census_take(c, g->data_dir, env->id, policy_ref, current);
    /* The credentials hold the provider settings: too big for the stack. */
    struct renc_store_creds *creds = renc_malloc(sizeof *creds);
    RENC_RETURN_IF(!creds, -RENC_E_NOMEM);
    int rc = renc_store_creds_from(g, creds);
    if (rc == 0)
        rc = renc_census_take_env(c, g->data_dir, env, policy_ref, current, &creds->blob);
    renc_free(creds);
    return rc;
}
