/* keys/provider.c — the provider registry and the questions asked of it
 * (provider.h). */
#include "keys/provider.h"

#include <string.h>

#include "common/error.h"

/* One line per provider; a new one is added here (and in provider.h). */
const struct renc_provider_ops *const renc_providers[] = {
    &renc_provider_local,
    &renc_provider_akv,
    &renc_provider_pkcs11,
    NULL,
};

const struct renc_provider_ops *renc_provider_for(const struct renc_keyref *ref)
{
    for (size_t i = 0; renc_providers[i]; i++)
        if (renc_providers[i]->id == ref->provider)
            return renc_providers[i];
    return NULL;
}

const struct renc_provider_ops *renc_provider_for_text(const char *text)
{
    for (size_t i = 0; renc_providers[i]; i++) {
        const char *s = renc_providers[i]->scheme;
        if (strncmp(text, s, strlen(s)) == 0)
            return renc_providers[i];
    }
    return NULL;
}

unsigned renc_provider_caps(const char *text)
{
    const struct renc_provider_ops *p = renc_provider_for_text(text);
    return p ? p->caps : 0;
}

int renc_provider_withdrawn(const char *ref, int rc)
{
    return rc == -RENC_E_KEY_REVOKED ||
           (rc == -RENC_E_KEY_DISABLED && (renc_provider_caps(ref) & RENC_PROVIDER_HOLDER_GRANTS));
}
