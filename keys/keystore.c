/* keys/keystore.c — the keystore (keystore.h): every key operation goes to
 * the provider of the ref's scheme through the provider table (provider.h);
 * here are only what all providers share: the DEK cache, the wrap cache,
 * the restriction to some keys and the counters.  No provider is named in
 * this file. */
#include "keys/keystore.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/alloc.h"
#include "common/error.h"
#include "keys/provider.h"

#define RENC_PROVIDERS_MAX 8

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
    /* The state of each provider of the registry (renc_providers[i]),
     * owned; NULL: its refs are not served (-RENC_E_UNSUPPORTED). */
    void *prov[RENC_PROVIDERS_MAX];
    pthread_mutex_t lock;
    struct renc_dek_entry **deks; /* RENC_DEK_BUCKETS chains, NULL: no DEK cache */
    size_t dek_count, dek_max;
    struct renc_wrap_entry **wraps; /* RENC_DEK_BUCKETS chains, with the DEK cache */
    struct renc_key *wrap_id_key;
    size_t wrap_count;
    struct renc_keystore_stats stats;
    struct renc_keyref *allowed; /* renc_keystore_restrict; NULL: any key */
    size_t allowed_count;
};

int renc_keystore_new(struct renc_keystore **out, const struct renc_provider_config *config)
{
    struct renc_keystore *ks = renc_calloc(1, sizeof *ks);
    RENC_RETURN_IF(!ks, -RENC_E_NOMEM);
    pthread_mutex_init(&ks->lock, NULL);
    int rc = 0;
    for (size_t i = 0; rc == 0 && renc_providers[i]; i++)
        rc = i < RENC_PROVIDERS_MAX ? renc_providers[i]->open(&ks->prov[i], config)
                                    : -RENC_E_TOO_BIG;
    if (rc) {
        renc_keystore_free(ks);
        return rc;
    }
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
    for (size_t i = 0; i < RENC_PROVIDERS_MAX && renc_providers[i]; i++)
        if (ks->prov[i])
            renc_providers[i]->close(ks->prov[i]);
    renc_free(ks->allowed);
    pthread_mutex_destroy(&ks->lock);
    renc_free(ks);
}

/* The provider of a parsed ref and its state: -RENC_E_UNSUPPORTED when no
 * provider serves the ref's scheme, or this keystore was not configured
 * with it. */
static int renc_keystore_provider(struct renc_keystore *ks, const struct renc_keyref *ref,
                                  const struct renc_provider_ops **ops, void **state)
{
    for (size_t i = 0; i < RENC_PROVIDERS_MAX && renc_providers[i]; i++) {
        if (renc_providers[i]->id != ref->provider)
            continue;
        RENC_RETURN_IF(!ks->prov[i], -RENC_E_UNSUPPORTED);
        *ops = renc_providers[i];
        *state = ks->prov[i];
        return 0;
    }
    return -RENC_E_UNSUPPORTED;
}

/* Parses ref_text and finds its provider. */
static int renc_keystore_lookup(struct renc_keystore *ks, const char *ref_text,
                                struct renc_keyref *ref, const struct renc_provider_ops **ops,
                                void **state)
{
    int rc = renc_keyref_parse(ref, ref_text);
    return rc ? rc : renc_keystore_provider(ks, ref, ops, state);
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

int renc_keystore_resolve(struct renc_keystore *ks, char *out, size_t max_out, const char *ref)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup(ks, ref, &r, &p, &st);
    return rc ? rc : p->resolve(st, &r, out, max_out);
}

int renc_keystore_may_wrap(struct renc_keystore *ks, char *versioned, size_t max_out,
                           const char *ref)
{
    const struct renc_provider_ops *p;
    struct renc_provider_target t;
    struct renc_keyref r;
    void *st;
    versioned[0] = '\0';
    t.versioned[0] = '\0';
    int rc = renc_keystore_lookup(ks, ref, &r, &p, &st);
    if (rc == 0)
        rc = p->wrap_target(st, &r, &t);
    /* The version is named even when refused, so that the refusal can
     * name it. */
    if (t.versioned[0] && snprintf(versioned, max_out, "%s", t.versioned) >= (int)max_out)
        rc = rc ? rc : -RENC_E_TOO_BIG;
    return rc;
}

int renc_keystore_can_unwrap(struct renc_keystore *ks, const char *ref)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup(ks, ref, &r, &p, &st);
    return rc ? rc : p->can_unwrap(st, &r);
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

/* A wrap of dek under versioned found in the wrap cache: 0 and the slot
 * added to h, -RENC_E_KEY_NOT_FOUND when not cached, or another error. */
static int renc_wrap_cached(struct renc_keystore *ks, struct renc_header *h,
                            const char *versioned, const uint8_t id[32])
{
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    pthread_mutex_lock(&ks->lock);
    for (struct renc_wrap_entry *e = ks->wraps[renc_dek_bucket(id)]; e; e = e->next) {
        if (memcmp(e->id, id, 32) == 0) {
            uint8_t alg = e->alg;
            size_t wlen = e->wrapped_len;
            memcpy(wrapped, e->wrapped, wlen);
            pthread_mutex_unlock(&ks->lock);
            return renc_header_add_slot(h, alg, versioned, wrapped, wlen);
        }
    }
    pthread_mutex_unlock(&ks->lock);
    return -RENC_E_KEY_NOT_FOUND;
}

/* Counts a wrap, and keeps it in the wrap cache when there is one. */
static void renc_wrap_note(struct renc_keystore *ks, const uint8_t id[32], int alg,
                           const uint8_t *wrapped, size_t wlen)
{
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
}

int renc_keystore_wrap_slot(struct renc_keystore *ks, struct renc_header *h, const char *ref,
                            const struct renc_key *dek)
{
    const struct renc_provider_ops *p;
    struct renc_provider_target t;
    struct renc_keyref r;
    void *st;
    char versioned[RENC_MAX_REF_LEN + 1];
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    uint8_t id[32];
    size_t wlen = 0;
    /* Before the wrap cache: a version disabled (or expired) since the
     * last wrap seals nothing more once the provider's answer says so. */
    int rc = renc_keystore_lookup(ks, ref, &r, &p, &st);
    if (rc || (rc = p->wrap_target(st, &r, &t)))
        return rc;
    strcpy(versioned, t.versioned);
    if (ks->wraps) {
        /* One wrap per distinct DEK and target: blobs sharing a DEK share
         * its wrapped form, and a remote provider is asked once. */
        if ((rc = renc_wrap_id(ks, id, versioned, dek)) ||
            (rc = renc_wrap_cached(ks, h, versioned, id)) != -RENC_E_KEY_NOT_FOUND)
            return rc;
    }
    if ((rc = p->wrap(st, &t, dek, wrapped, sizeof wrapped, &wlen, versioned, sizeof versioned)))
        return rc;
    renc_wrap_note(ks, id, t.alg, wrapped, wlen);
    if ((rc = renc_keystore_remember(ks, versioned, wrapped, wlen, dek)))
        return rc;
    return renc_header_add_slot(h, (uint8_t)t.alg, versioned, wrapped, wlen);
}

int renc_keystore_unwrap_slot(struct renc_keystore *ks, const struct renc_slot *slot,
                              struct renc_key **dek)
{
    const struct renc_provider_ops *p = NULL;
    struct renc_provider_target t;
    struct renc_keyref ref;
    void *st = NULL;
    int rc = renc_keyref_parse(&ref, slot->ref);
    if (rc)
        return rc;
    int served = renc_keystore_provider(ks, &ref, &p, &st);
    /* A slot must name one version: an unversioned ref in a slot would
     * silently follow rotation to a key that never wrapped it.  (A scheme
     * no provider serves yet is refused below as unsupported.) */
    RENC_RETURN_IF(renc_provider_for(&ref) && ref.version[0] == '\0', -RENC_E_BAD_KEYREF);
    /* Before the DEK cache: a DEK cached before the restriction must not
     * open a slot the restriction refuses. */
    RENC_RETURN_IF(!renc_keystore_allows(ks, &ref), -RENC_E_KEY_NOT_FOUND);
    if (served)
        return served;
    /* The provider's checks (states, alg) come before the DEK cache too;
     * t.versioned starts as the slot's spelling, which a provider may make
     * canonical. */
    snprintf(t.versioned, sizeof t.versioned, "%s", slot->ref);
    if ((rc = p->unwrap_target(st, &ref, slot->alg, &t)))
        return rc;
    uint8_t id[32];
    if (ks->deks) {
        if ((rc = renc_dek_id(id, t.versioned, slot->wrapped, slot->wrapped_len)))
            return rc;
        if ((rc = renc_dek_lookup(ks, id, dek)) != -RENC_E_KEY_NOT_FOUND)
            return rc;
    }
    rc = p->unwrap(st, &t, slot->wrapped, slot->wrapped_len, dek);
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

size_t renc_keystore_provider_stats(struct renc_keystore *ks,
                                    struct renc_keystore_provider_stats *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < RENC_PROVIDERS_MAX && renc_providers[i] && n < max; i++) {
        if (!ks->prov[i] || !renc_providers[i]->stats)
            continue;
        out[n].ops = renc_providers[i];
        renc_providers[i]->stats(ks->prov[i], &out[n].stats);
        n++;
    }
    return n;
}

/* renc_keystore_lookup, and -RENC_E_UNSUPPORTED when the provider leaves
 * the op at op_offset NULL (to its holder). */
static int renc_keystore_lookup_op(struct renc_keystore *ks, const char *ref_text,
                                   size_t op_offset, struct renc_keyref *ref,
                                   const struct renc_provider_ops **ops, void **state)
{
    void (*fn)(void) = NULL;
    int rc = renc_keystore_lookup(ks, ref_text, ref, ops, state);
    if (rc == 0)
        memcpy(&fn, (const char *)*ops + op_offset, sizeof fn);
    return rc ? rc : fn ? 0 : -RENC_E_UNSUPPORTED;
}

#define RENC_OP(name) offsetof(struct renc_provider_ops, name)

int renc_keystore_describe(struct renc_keystore *ks, const char *ref,
                           struct renc_provider_version *out)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup_op(ks, ref, RENC_OP(describe), &r, &p, &st);
    return rc ? rc : p->describe(st, &r, out);
}

int renc_keystore_list_versions(struct renc_keystore *ks, const char *ref,
                                int (*fn)(void *arg, const struct renc_provider_version *v),
                                void *arg)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup_op(ks, ref, RENC_OP(list_versions), &r, &p, &st);
    return rc ? rc : p->list_versions(st, &r, fn, arg);
}

int renc_keystore_key_create(struct renc_keystore *ks, const char *ref, enum renc_kek_type type,
                             unsigned bits)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup_op(ks, ref, RENC_OP(create), &r, &p, &st);
    return rc ? rc : p->create(st, &r, type, bits);
}

int renc_keystore_key_rotate(struct renc_keystore *ks, const char *ref, char *versioned,
                             size_t max)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup_op(ks, ref, RENC_OP(rotate), &r, &p, &st);
    return rc ? rc : p->rotate(st, &r, versioned, max);
}

int renc_keystore_key_set_state(struct renc_keystore *ks, const char *ref,
                                enum renc_key_state state)
{
    const struct renc_provider_ops *p;
    struct renc_keyref r;
    void *st;
    int rc = renc_keystore_lookup_op(ks, ref, RENC_OP(set_state), &r, &p, &st);
    return rc ? rc : p->set_state(st, &r, state);
}
