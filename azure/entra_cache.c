/* azure/entra_cache.c — access tokens per (tenant, scope) (docs/KEYVAULT.md,
 * "Credentials").  Not locked: the caller holds its own lock around every call. */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "azure/entra_internal.h"

static int renc_entra_cache_is(const struct renc_entra_cache_ent *e, const char *tenant,
                               const char *scope)
{
    return e->token && strcmp(e->tenant, tenant ? tenant : "") == 0 &&
           strcmp(e->scope, scope) == 0;
}

int renc_entra_cache_get(struct renc_entra_cache *c, const char *tenant, const char *scope,
                         uint64_t now_ns, struct renc_key **out)
{
    for (size_t i = 0; i < RENC_ENTRA_CACHE_SLOTS; i++) {
        struct renc_entra_cache_ent *e = &c->ents[i];
        if (renc_entra_cache_is(e, tenant, scope) && now_ns < e->refresh_ns)
            return renc_key_dup(out, e->token);
    }
    return -RENC_E_KEY_NOT_FOUND;
}

void renc_entra_cache_put(struct renc_entra_cache *c, const char *tenant, const char *scope,
                          struct renc_key *token, uint64_t refresh_ns)
{
    struct renc_entra_cache_ent *e = NULL;
    for (size_t i = 0; i < RENC_ENTRA_CACHE_SLOTS && !e; i++)
        if (renc_entra_cache_is(&c->ents[i], tenant, scope))
            e = &c->ents[i];
    if (!e)
        e = &c->ents[c->next_slot++ % RENC_ENTRA_CACHE_SLOTS];
    renc_key_free(e->token);
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant ? tenant : "");
    snprintf(e->scope, sizeof e->scope, "%s", scope);
    e->token = token;
    e->refresh_ns = refresh_ns;
}

void renc_entra_cache_drop(struct renc_entra_cache *c, const char *tenant, const char *scope,
                           const struct renc_key *token)
{
    for (size_t i = 0; i < RENC_ENTRA_CACHE_SLOTS; i++) {
        struct renc_entra_cache_ent *e = &c->ents[i];
        if (renc_entra_cache_is(e, tenant, scope) && e->token->len == token->len &&
            renc_ct_equal(e->token->bytes, token->bytes, token->len)) {
            renc_key_free(e->token);
            e->token = NULL;
        }
    }
}

void renc_entra_cache_cleanup(struct renc_entra_cache *c)
{
    for (size_t i = 0; i < RENC_ENTRA_CACHE_SLOTS; i++) {
        renc_key_free(c->ents[i].token);
        c->ents[i].token = NULL;
    }
}
