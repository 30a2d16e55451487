#include "keys/keystore.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/akv.h"

#define RENC_KEK_CACHE_MAX 64

struct renc_kek_entry {
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_kek *kek;
};

/* A cached DEK, found by a digest of its slot's ref and wrapped bytes (both
 * public); the same wrapped bytes under the same KEK version always unwrap to
 * the same DEK. */
struct renc_dek_entry {
    uint8_t id[32];
    struct renc_key *dek;
    struct renc_dek_entry *next;
};

#define RENC_DEK_BUCKETS 4096

/* A cached wrap: the slot a DEK got under a target, found by an HMAC of the
 * target ref and the DEK under a random per-process key (so the table holds
 * nothing that tells a DEK). */
struct renc_wrap_entry {
    uint8_t id[32];
    uint8_t alg;
    uint16_t wrapped_len;
    struct renc_wrap_entry *next;
    uint8_t wrapped[]; /* wrapped_len bytes */
};

struct renc_keystore {
    struct renc_keyring *local;
    struct renc_akv *akv; /* owned; NULL: akv: refs are not supported */
    pthread_mutex_t lock;
    struct renc_kek_entry cache[RENC_KEK_CACHE_MAX];
    size_t cached;
    struct renc_dek_entry **deks; /* RENC_DEK_BUCKETS chains, NULL: no DEK cache */
    size_t dek_count, dek_max;
    struct renc_wrap_entry **wraps; /* RENC_DEK_BUCKETS chains, with the DEK cache */
    struct renc_key *wrap_id_key;
    size_t wrap_count;
    struct renc_keystore_stats stats;
    struct renc_keyref *allowed; /* renc_keystore_restrict; NULL: any key */
    size_t allowed_count;
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
    for (size_t b = 0; ks->deks && b < RENC_DEK_BUCKETS; b++) {
        struct renc_dek_entry *e = ks->deks[b];
        while (e) {
            struct renc_dek_entry *next = e->next;
            renc_key_free(e->dek);
            renc_free(e);
            e = next;
        }
    }
    renc_free(ks->deks);
    for (size_t b = 0; ks->wraps && b < RENC_DEK_BUCKETS; b++) {
        struct renc_wrap_entry *e = ks->wraps[b];
        while (e) {
            struct renc_wrap_entry *next = e->next;
            renc_free(e);
            e = next;
        }
    }
    renc_free(ks->wraps);
    renc_key_free(ks->wrap_id_key);
    for (size_t i = 0; i < ks->cached; i++)
        renc_kek_free(ks->cache[i].kek);
    renc_free(ks->allowed);
    renc_akv_free(ks->akv);
    pthread_mutex_destroy(&ks->lock);
    renc_free(ks);
}

void renc_keystore_set_akv(struct renc_keystore *ks, struct renc_akv *akv)
{
    renc_akv_free(ks->akv);
    ks->akv = akv;
}

struct renc_akv *renc_keystore_akv(struct renc_keystore *ks)
{
    return ks->akv;
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

static int renc_dek_id(uint8_t id[32], const char *ref, const uint8_t *wrapped, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, ref, strlen(ref) + 1) && EVP_DigestUpdate(md, wrapped, len) &&
             EVP_DigestFinal_ex(md, id, NULL);
    EVP_MD_CTX_free(md);
    return ok ? 0 : -RENC_E_CRYPTO;
}

static size_t renc_dek_bucket(const uint8_t id[32])
{
    return (id[0] | (size_t)id[1] << 8) % RENC_DEK_BUCKETS;
}

static int renc_dek_lookup(struct renc_keystore *ks, const uint8_t id[32], struct renc_key **dek)
{
    int rc = -RENC_E_KEY_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    for (struct renc_dek_entry *e = ks->deks[renc_dek_bucket(id)]; e; e = e->next) {
        if (memcmp(e->id, id, 32) == 0) {
            rc = renc_key_dup(dek, e->dek);
            if (rc == 0)
                ks->stats.cache_hits++;
            break;
        }
    }
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

static int renc_dek_insert(struct renc_keystore *ks, const uint8_t id[32],
                           const struct renc_key *dek)
{
    struct renc_dek_entry *e = renc_calloc(1, sizeof *e);
    RENC_RETURN_IF(!e, -RENC_E_NOMEM);
    int rc = renc_key_dup(&e->dek, dek);
    if (rc) {
        renc_free(e);
        return rc;
    }
    memcpy(e->id, id, 32);
    pthread_mutex_lock(&ks->lock);
    size_t b = renc_dek_bucket(id);
    int dup = 0;
    for (struct renc_dek_entry *x = ks->deks[b]; x; x = x->next)
        dup |= memcmp(x->id, id, 32) == 0;
    if (dup || ks->dek_count >= ks->dek_max) {
        /* Already there, or full: not caching only costs an unwrap later. */
        pthread_mutex_unlock(&ks->lock);
        renc_key_free(e->dek);
        renc_free(e);
        return 0;
    }
    e->next = ks->deks[b];
    ks->deks[b] = e;
    ks->dek_count++;
    pthread_mutex_unlock(&ks->lock);
    return 0;
}

int renc_keystore_cache_deks(struct renc_keystore *ks, size_t max_entries)
{
    if (ks->deks)
        return 0;
    ks->deks = renc_calloc(RENC_DEK_BUCKETS, sizeof *ks->deks);
    ks->wraps = renc_calloc(RENC_DEK_BUCKETS, sizeof *ks->wraps);
    int rc = ks->deks && ks->wraps ? renc_key_random(&ks->wrap_id_key, 32) : -RENC_E_NOMEM;
    if (rc) {
        renc_free(ks->deks);
        renc_free(ks->wraps);
        ks->deks = NULL;
        ks->wraps = NULL;
        return rc;
    }
    ks->dek_max = max_entries;
    return 0;
}

int renc_keystore_remember(struct renc_keystore *ks, const char *ref, const uint8_t *wrapped,
                           size_t wrapped_len, const struct renc_key *dek)
{
    if (!ks->deks)
        return 0;
    uint8_t id[32];
    int rc = renc_dek_id(id, ref, wrapped, wrapped_len);
    return rc ? rc : renc_dek_insert(ks, id, dek);
}

int renc_keystore_restrict(struct renc_keystore *ks, const char *const *refs, size_t n)
{
    struct renc_keyref *allowed = NULL;
    if (n > 0) {
        allowed = renc_calloc(n, sizeof *allowed);
        RENC_RETURN_IF(!allowed, -RENC_E_NOMEM);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = renc_keyref_parse(&allowed[i], refs[i]);
        if (rc) {
            renc_free(allowed); /* the old restriction stays as it was */
            return rc;
        }
    }
    renc_free(ks->allowed);
    ks->allowed = allowed;
    ks->allowed_count = n;
    return 0;
}

/* 1 when the restriction (if any) lets slots under ref be tried. */
static int renc_keystore_allows(const struct renc_keystore *ks, const struct renc_keyref *ref)
{
    if (!ks->allowed)
        return 1;
    for (size_t i = 0; i < ks->allowed_count; i++) {
        if (renc_keyref_same_key(&ks->allowed[i], ref))
            return 1;
    }
    return 0;
}

void renc_keystore_stats(struct renc_keystore *ks, struct renc_keystore_stats *out)
{
    pthread_mutex_lock(&ks->lock);
    *out = ks->stats;
    pthread_mutex_unlock(&ks->lock);
}

/* The vault's view of an akv: ref (the latest version when unversioned). */
static int renc_keystore_akv_key(struct renc_keystore *ks, const char *ref_text,
                                 struct renc_akv_key *k)
{
    struct renc_keyref ref;
    int rc = renc_keyref_parse(&ref, ref_text);
    if (rc)
        return rc;
    RENC_RETURN_IF(!ks->akv, -RENC_E_UNSUPPORTED);
    return renc_akv_get_key(ks->akv, &ref, k);
}

static int renc_is_akv(const char *ref)
{
    return strncmp(ref, "akv:", 4) == 0;
}

int renc_keystore_resolve(struct renc_keystore *ks, char *out, size_t max_out, const char *ref)
{
    if (renc_is_akv(ref)) {
        struct renc_akv_key k;
        int rc = renc_keystore_akv_key(ks, ref, &k);
        if (rc == 0 && snprintf(out, max_out, "%s", k.ref) >= (int)max_out)
            rc = -RENC_E_TOO_BIG;
        return rc;
    }
    const struct renc_kek *kek;
    return renc_keystore_kek(ks, ref, &kek, out, max_out);
}

int renc_keystore_may_wrap(struct renc_keystore *ks, char *versioned, size_t max_out,
                           const char *ref)
{
    versioned[0] = '\0';
    if (!renc_is_akv(ref)) {
        const struct renc_kek *kek; /* the keyring refuses a disabled version itself */
        return renc_keystore_kek(ks, ref, &kek, versioned, max_out);
    }
    struct renc_akv_key k;
    int rc = renc_keystore_akv_key(ks, ref, &k);
    if (rc == 0 && snprintf(versioned, max_out, "%s", k.ref) >= (int)max_out)
        rc = -RENC_E_TOO_BIG;
    return rc ? rc : renc_akv_wrap_allowed(&k);
}

int renc_keystore_can_unwrap(struct renc_keystore *ks, const char *ref)
{
    if (!renc_is_akv(ref)) {
        const struct renc_kek *kek;
        char versioned[RENC_MAX_REF_LEN + 1];
        return renc_keystore_kek(ks, ref, &kek, versioned, sizeof versioned);
    }
    struct renc_akv_key k;
    int rc = renc_keystore_akv_key(ks, ref, &k);
    /* The vault refuses unwraps under a disabled version; an expired one
     * still unwraps (docs/KEYVAULT.md, "What the vault's answers do"). */
    return rc ? rc : k.enabled ? 0 : -RENC_E_KEY_DISABLED;
}

/* The identity of (target, DEK) in the wrap cache. */
static int renc_wrap_id(struct renc_keystore *ks, uint8_t id[32], const char *versioned,
                        const struct renc_key *dek)
{
    uint8_t msg[RENC_MAX_REF_LEN + 1 + 64];
    size_t n = strlen(versioned) + 1;
    RENC_RETURN_IF(dek->len > 64, -RENC_E_INVALID);
    memcpy(msg, versioned, n);
    memcpy(msg + n, dek->bytes, dek->len);
    unsigned len = 0;
    int ok = HMAC(EVP_sha256(), ks->wrap_id_key->bytes, (int)ks->wrap_id_key->len, msg,
                  n + dek->len, id, &len) != NULL;
    renc_secmem_wipe(msg, sizeof msg);
    return ok ? 0 : -RENC_E_CRYPTO;
}

int renc_keystore_wrap_slot(struct renc_keystore *ks, struct renc_header *h, const char *ref,
                            const struct renc_key *dek)
{
    const struct renc_kek *kek = NULL;
    struct renc_akv_key akv_key;
    char versioned[RENC_MAX_REF_LEN + 1];
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    uint8_t id[32];
    size_t wlen = 0;
    int akv = renc_is_akv(ref);
    int rc = akv ? renc_keystore_akv_key(ks, ref, &akv_key)
                 : renc_keystore_kek(ks, ref, &kek, versioned, sizeof versioned);
    /* Before the wrap cache: a version disabled (or expired) since the
     * last wrap seals nothing more once the vault's answer says so. */
    if (rc == 0 && akv)
        rc = renc_akv_wrap_allowed(&akv_key);
    if (rc)
        return rc;
    if (akv)
        strcpy(versioned, akv_key.ref);
    if (ks->wraps) {
        /* One wrap per distinct DEK and target: blobs sharing a DEK share
         * its wrapped form, and a key vault is asked once. */
        if ((rc = renc_wrap_id(ks, id, versioned, dek)))
            return rc;
        pthread_mutex_lock(&ks->lock);
        for (struct renc_wrap_entry *e = ks->wraps[renc_dek_bucket(id)]; e; e = e->next) {
            if (memcmp(e->id, id, 32) == 0) {
                uint8_t alg = e->alg;
                wlen = e->wrapped_len;
                memcpy(wrapped, e->wrapped, wlen);
                pthread_mutex_unlock(&ks->lock);
                return renc_header_add_slot(h, alg, versioned, wrapped, wlen);
            }
        }
        pthread_mutex_unlock(&ks->lock);
    }
    int alg;
    if (akv) {
        /* The slot names the versioned kid the vault answers with. */
        struct renc_keyref vref;
        alg = renc_akv_default_alg(&akv_key);
        if ((rc = renc_keyref_parse(&vref, versioned)) ||
            (rc = renc_akv_wrap(ks->akv, &vref, alg, dek, wrapped, sizeof wrapped, &wlen,
                                versioned, sizeof versioned)))
            return rc;
    } else {
        alg = renc_kek_default_alg(kek);
        if ((rc = renc_kek_wrap(kek, alg, wrapped, sizeof wrapped, &wlen, dek)))
            return rc;
    }
    pthread_mutex_lock(&ks->lock);
    ks->stats.wraps++;
    if (ks->wraps && ks->wrap_count < ks->dek_max) {
        struct renc_wrap_entry *e = renc_malloc(sizeof *e + wlen);
        if (e) {
            memcpy(e->id, id, 32);
            e->alg = (uint8_t)alg;
            e->wrapped_len = (uint16_t)wlen;
            memcpy(e->wrapped, wrapped, wlen);
            e->next = ks->wraps[renc_dek_bucket(id)];
            ks->wraps[renc_dek_bucket(id)] = e;
            ks->wrap_count++;
        }
    }
    pthread_mutex_unlock(&ks->lock);
    if ((rc = renc_keystore_remember(ks, versioned, wrapped, wlen, dek)))
        return rc;
    return renc_header_add_slot(h, (uint8_t)alg, versioned, wrapped, wlen);
}

int renc_keystore_unwrap_slot(struct renc_keystore *ks, const struct renc_slot *slot,
                              struct renc_key **dek)
{
    const struct renc_kek *kek = NULL;
    char versioned[RENC_MAX_REF_LEN + 1];
    struct renc_keyref ref;
    int rc = renc_keyref_parse(&ref, slot->ref);
    if (rc)
        return rc;
    /* A slot must name one version: an unversioned ref in a slot would
     * silently follow rotation to a key that never wrapped it. */
    RENC_RETURN_IF(ref.provider != RENC_PROVIDER_PKCS11 && ref.version[0] == '\0',
                   -RENC_E_BAD_KEYREF);
    /* Before the DEK cache: a DEK cached before the restriction must not
     * open a slot the restriction refuses. */
    RENC_RETURN_IF(!renc_keystore_allows(ks, &ref), -RENC_E_KEY_NOT_FOUND);
    int akv = ref.provider == RENC_PROVIDER_AKV;
    if (akv) {
        /* The vault checks the key's state on each unwrap; a DEK cache hit
         * does not ask it (that is the cache's purpose). */
        RENC_RETURN_IF(!ks->akv, -RENC_E_UNSUPPORTED);
        snprintf(versioned, sizeof versioned, "%s", slot->ref);
    } else {
        if ((rc = renc_keystore_kek(ks, slot->ref, &kek, versioned, sizeof versioned)))
            return rc;
        RENC_RETURN_IF(!renc_kek_alg_fits(kek, slot->alg), -RENC_E_KEY_TYPE);
    }
    uint8_t id[32];
    if (ks->deks) {
        if ((rc = renc_dek_id(id, versioned, slot->wrapped, slot->wrapped_len)))
            return rc;
        if ((rc = renc_dek_lookup(ks, id, dek)) != -RENC_E_KEY_NOT_FOUND)
            return rc;
    }
    rc = akv ? renc_akv_unwrap(ks->akv, &ref, slot->alg, slot->wrapped, slot->wrapped_len, dek)
             : renc_kek_unwrap(kek, slot->alg, dek, slot->wrapped, slot->wrapped_len);
    pthread_mutex_lock(&ks->lock);
    ks->stats.unwraps++;
    pthread_mutex_unlock(&ks->lock);
    if (rc == 0 && ks->deks && (rc = renc_dek_insert(ks, id, *dek))) {
        renc_key_free(*dek);
        *dek = NULL;
    }
    return rc;
}

/* How telling an error is when choosing which one to report. */
static int renc_open_error_rank(int rc)
{
    switch (-rc) {
    case RENC_E_HEADER_AUTH: return 9;
    case RENC_E_UNWRAP: return 8;
    case RENC_E_KEY_REVOKED: return 7;
    case RENC_E_KEY_DELETED: return 7;
    case RENC_E_VAULT_DENIED: return 7;
    case RENC_E_KEY_DISABLED: return 6;
    case RENC_E_KEY_TYPE: return 5;
    case RENC_E_KEY_OP: return 5;
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
        struct renc_keyref ref;
        memset(&o, 0, sizeof o);
        /* A slot the restriction refuses (one whose ref does not even
         * parse names no allowed key) is skipped, not reported: with no
         * allowed slot at all the header fails with -RENC_E_NO_SLOT. */
        if (ks->allowed && (renc_keyref_parse(&ref, h->slots[i].ref) != 0 ||
                            !renc_keystore_allows(ks, &ref)))
            continue;
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
