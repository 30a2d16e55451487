#include "crypto/keystore.h"

#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_KEK_CACHE_MAX 64

struct renc_kek_entry {
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_kek *kek;
};

struct renc_keystore {
    struct renc_keyring *local;
    pthread_mutex_t lock;
    struct renc_kek_entry cache[RENC_KEK_CACHE_MAX];
    size_t cached;
};

int renc_keystore_new(struct renc_keystore **out, struct renc_keyring *local)
{
    struct renc_keystore *ks = renc_calloc(1, sizeof *ks);
    RENC_RETURN_IF(!ks, -RENC_E_NOMEM);
    ks->local = local;
    pthread_mutex_init(&ks->lock, NULL);
    *out = ks;
    return 0;
}

void renc_keystore_free(struct renc_keystore *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->cached; i++)
        renc_kek_free(ks->cache[i].kek);
    pthread_mutex_destroy(&ks->lock);
    renc_free(ks);
}

/* Loads the KEK of a versioned or unversioned ref; *versioned gets the
 * versioned text.  The KEK stays owned by the cache. */
static int renc_keystore_kek(struct renc_keystore *ks, const char *ref_text,
                             const struct renc_kek **kek_out, char *versioned, size_t max)
{
    struct renc_keyref ref;
    int rc = renc_keyref_parse(&ref, ref_text);
    if (rc)
        return rc;
    if (ref.provider != RENC_PROVIDER_LOCAL)
        return -RENC_E_UNSUPPORTED;
    RENC_RETURN_IF(!ks->local, -RENC_E_KEY_NOT_FOUND);

    /* States first, on every call: a revoke or disable takes effect at once
     * even for a KEK already cached. */
    if ((rc = renc_keyring_load(ks->local, ref.name, ref.version, NULL, ref.version)))
        return rc;
    if ((rc = renc_keyref_format(versioned, max, &ref)))
        return rc;
    pthread_mutex_lock(&ks->lock);
    for (size_t i = 0; i < ks->cached; i++) {
        if (strcmp(ks->cache[i].ref, versioned) == 0) {
            *kek_out = ks->cache[i].kek;
            pthread_mutex_unlock(&ks->lock);
            return 0;
        }
    }
    struct renc_kek *kek = NULL;
    if (ks->cached >= RENC_KEK_CACHE_MAX)
        rc = -RENC_E_TOO_BIG; /* more distinct KEKs in one run than cached */
    else if ((rc = renc_keyring_load(ks->local, ref.name, ref.version, &kek, NULL)) == 0) {
        strcpy(ks->cache[ks->cached].ref, versioned);
        ks->cache[ks->cached++].kek = kek;
        *kek_out = kek;
    }
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int renc_keystore_resolve(struct renc_keystore *ks, char *out, size_t max_out, const char *ref)
{
    const struct renc_kek *kek;
    return renc_keystore_kek(ks, ref, &kek, out, max_out);
}

int renc_keystore_wrap_slot(struct renc_keystore *ks, struct renc_header *h, const char *ref,
                            const struct renc_key *dek)
{
    const struct renc_kek *kek;
    char versioned[RENC_MAX_REF_LEN + 1];
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t wlen = 0;
    int rc = renc_keystore_kek(ks, ref, &kek, versioned, sizeof versioned);
    if (rc)
        return rc;
    int alg = renc_kek_default_alg(kek);
    if ((rc = renc_kek_wrap(kek, alg, wrapped, sizeof wrapped, &wlen, dek)))
        return rc;
    return renc_header_add_slot(h, (uint8_t)alg, versioned, wrapped, wlen);
}

int renc_keystore_unwrap_slot(struct renc_keystore *ks, const struct renc_slot *slot,
                              struct renc_key **dek)
{
    const struct renc_kek *kek;
    char versioned[RENC_MAX_REF_LEN + 1];
    struct renc_keyref ref;
    int rc = renc_keyref_parse(&ref, slot->ref);
    if (rc)
        return rc;
    /* A slot must name one version: an unversioned ref in a slot would
     * silently follow rotation to a key that never wrapped it. */
    RENC_RETURN_IF(ref.provider != RENC_PROVIDER_PKCS11 && ref.version[0] == '\0',
                   -RENC_E_BAD_KEYREF);
    if ((rc = renc_keystore_kek(ks, slot->ref, &kek, versioned, sizeof versioned)))
        return rc;
    RENC_RETURN_IF(!renc_kek_alg_fits(kek, slot->alg), -RENC_E_KEY_TYPE);
    return renc_kek_unwrap(kek, slot->alg, dek, slot->wrapped, slot->wrapped_len);
}

/* How telling an error is when choosing which one to report. */
static int renc_open_error_rank(int rc)
{
    switch (-rc) {
    case RENC_E_HEADER_AUTH: return 9;
    case RENC_E_UNWRAP: return 8;
    case RENC_E_KEY_REVOKED: return 7;
    case RENC_E_KEY_DISABLED: return 6;
    case RENC_E_KEY_TYPE: return 5;
    case RENC_E_INSECURE_PERMS: return 4;
    case RENC_E_BAD_KEYRING: return 4;
    case RENC_E_KEY_NOT_FOUND: return 2;
    case RENC_E_UNSUPPORTED: return 1;
    default: return 3;
    }
}

void renc_opened_cleanup(struct renc_opened *o)
{
    renc_key_free(o->dek);
    renc_blob_keys_cleanup(&o->keys);
    memset(o, 0, sizeof *o);
    o->slot = -1;
}

int renc_keystore_open_header(struct renc_keystore *ks, struct renc_opened *out,
                              const struct renc_header *h, const uint8_t *hdr_bytes,
                              int *failed_slot)
{
    int best_rc = -RENC_E_NO_SLOT, best_slot = -1;
    for (unsigned i = 0; i < h->slot_count; i++) {
        struct renc_opened o;
        memset(&o, 0, sizeof o);
        int rc = renc_keystore_unwrap_slot(ks, &h->slots[i], &o.dek);
        if (rc == 0)
            rc = renc_blob_keys_derive(&o.keys, o.dek, h->salt);
        if (rc == 0)
            rc = renc_header_verify(hdr_bytes, h->header_len, o.keys.k_hdr);
        if (rc == 0) {
            o.slot = (int)i;
            *out = o;
            return 0;
        }
        renc_opened_cleanup(&o);
        if (rc == -RENC_E_NOMEM)
            return rc;
        if (best_slot < 0 || renc_open_error_rank(rc) > renc_open_error_rank(best_rc)) {
            best_rc = rc;
            best_slot = (int)i;
        }
    }
    if (failed_slot)
        *failed_slot = best_slot;
    return best_rc;
}
