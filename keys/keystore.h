/* keys/keystore.h — the keys a process can use, whatever provider holds
 * them, and the two envelope operations built on them: wrap a DEK into a new
 * slot, and open a header (unwrap a DEK from one of its slots and verify the
 * header_tag with it).
 *
 * Every key operation goes to the provider of the ref's scheme through the
 * provider table (provider.h); the keystore owns one state per provider,
 * and the caches every provider shares (DEKs, wraps).  The keystore may be
 * shared by threads.
 */
#ifndef RENC_KEYS_KEYSTORE_H
#define RENC_KEYS_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/header.h"
#include "crypto/hkdf.h"
#include "keys/keyring.h"
#include "keys/provider.h"

struct renc_keystore;

/* renc_keystore_new: a keystore whose providers are opened from config
 * (each provider takes what it needs; one the config does not ask for
 * leaves its refs -RENC_E_UNSUPPORTED).  config is not kept; what it
 * points to (the keyring) is borrowed for the keystore's life. */
int renc_keystore_new(struct renc_keystore **out, const struct renc_provider_config *config);
void renc_keystore_free(struct renc_keystore *ks);

/* renc_keystore_cache_deks: from now on the keystore unwraps each distinct
 * wrapped DEK (same versioned ref, same wrapped bytes) once and keeps the
 * DEK, in secure memory, for up to max_entries of them.  The key's state is
 * still checked on every use, so a revoke or disable takes effect at once;
 * the header tag is still verified per blob. */
int renc_keystore_cache_deks(struct renc_keystore *ks, size_t max_entries);

/* renc_keystore_remember: records that `wrapped` under `ref` (versioned)
 * holds dek, after a wrap, so that verifying the new header needs no second
 * provider call.  Does nothing without a DEK cache. */
int renc_keystore_remember(struct renc_keystore *ks, const char *ref, const uint8_t *wrapped,
                           size_t wrapped_len, const struct renc_key *dek);

/* renc_keystore_restrict: from now on only slots whose ref names the same
 * key as one of refs (versions aside) are tried; any other slot fails as
 * -RENC_E_KEY_NOT_FOUND (renc_keystore_unwrap_slot, a DEK cache hit
 * included), and a header with no allowed slot fails to open with
 * -RENC_E_NO_SLOT (renc_keystore_open_header skips refused slots, so
 * *failed_slot is then -1).  For checking what a target environment can open
 * with the keys it holds.  The refs are copied; n 0 lifts the restriction.
 * A ref that does not parse fails with -RENC_E_BAD_KEYREF and leaves the
 * previous restriction in force.  Call before the keystore is shared by
 * threads. */
int renc_keystore_restrict(struct renc_keystore *ks, const char *const *refs, size_t n);

/* Counters for reports: provider unwraps made, and DEK cache hits. */
struct renc_keystore_stats {
    uint64_t unwraps;
    uint64_t cache_hits;
    uint64_t wraps;
};
void renc_keystore_stats(struct renc_keystore *ks, struct renc_keystore_stats *out);

/* renc_keystore_provider_stats: the statistics of each provider the
 * keystore serves (in registry order), at most max; returns how many were
 * written.  Data only: reencrypt/ prints them. */
struct renc_keystore_provider_stats {
    const struct renc_provider_ops *ops;
    struct renc_provider_stats stats;
};
size_t renc_keystore_provider_stats(struct renc_keystore *ks,
                                    struct renc_keystore_provider_stats *out, size_t max);

/* renc_keystore_resolve: the versioned ref text of `ref` (the current
 * version when ref has none) into out. */
int renc_keystore_resolve(struct renc_keystore *ks, char *out, size_t max_out, const char *ref);

/* renc_keystore_may_wrap: resolves ref like renc_keystore_resolve and says
 * whether new data may be sealed under that version: -RENC_E_KEY_DISABLED
 * or -RENC_E_KEY_EXPIRED (a vault key's attributes) with versioned filled
 * all the same, so that the refusal can name the version. */
int renc_keystore_may_wrap(struct renc_keystore *ks, char *versioned, size_t max_out,
                           const char *ref);

/* renc_keystore_can_unwrap: 0 when the provider would open slots of ref
 * now (its key version exists, is enabled and not revoked), else why not;
 * asks the provider (a vault: one key read, cached 60 s), unwraps nothing. */
int renc_keystore_can_unwrap(struct renc_keystore *ks, const char *ref);

/* renc_keystore_wrap_slot: wraps dek under ref (current version when
 * unversioned) and appends the slot, with the versioned ref, to h. */
int renc_keystore_wrap_slot(struct renc_keystore *ks, struct renc_header *h, const char *ref,
                            const struct renc_key *dek);

/* renc_keystore_unwrap_slot: the DEK of one slot. */
int renc_keystore_unwrap_slot(struct renc_keystore *ks, const struct renc_slot *slot,
                              struct renc_key **dek);

/* The result of opening a header. */
struct renc_opened {
    struct renc_key *dek;
    struct renc_blob_keys keys;
    int slot;  /* the slot that opened it */
};

/* renc_keystore_open_header: tries the slots in order until one unwraps a
 * DEK under which the header_tag of hdr_bytes (h->header_len bytes) verifies.
 * On failure returns the most telling cause over all slots (header tag
 * failure, then unwrap failure, revoked, disabled, wrong type, not found) and
 * writes its slot index to *failed_slot (may be NULL); nothing is kept. */
int renc_keystore_open_header(struct renc_keystore *ks, struct renc_opened *out,
                              const struct renc_header *h, const uint8_t *hdr_bytes,
                              int *failed_slot);
void renc_opened_cleanup(struct renc_opened *o);

/* Key management through the ref's provider.  Each fails
 * -RENC_E_UNSUPPORTED when the provider leaves the op to its holder
 * (renc_provider_for_text(ref)->managed_at says why) or is not served,
 * -RENC_E_BAD_KEYREF when ref does not parse. */

/* renc_keystore_describe: one version of ref (its current one when ref
 * has none). */
int renc_keystore_describe(struct renc_keystore *ks, const char *ref,
                           struct renc_provider_version *out);
/* renc_keystore_list_versions: fn for each version of ref's key; a
 * non-zero return from fn stops the walk and is returned. */
int renc_keystore_list_versions(struct renc_keystore *ks, const char *ref,
                                int (*fn)(void *arg, const struct renc_provider_version *v),
                                void *arg);
/* renc_keystore_key_create: a new key (ref unversioned) with its first
 * version. */
int renc_keystore_key_create(struct renc_keystore *ks, const char *ref, enum renc_kek_type type,
                             unsigned bits);
/* renc_keystore_key_rotate: a new current version; versioned gets its ref. */
int renc_keystore_key_rotate(struct renc_keystore *ks, const char *ref, char *versioned,
                             size_t max);
/* renc_keystore_key_set_state: a version's state, or the whole key's when
 * ref is unversioned (ENABLED or REVOKED only). */
int renc_keystore_key_set_state(struct renc_keystore *ks, const char *ref,
                                enum renc_key_state state);

#endif
