/* crypto/keyref.h — key references (FORMAT.md §5).
 *
 *   local:NAME[/VERSION]
 *   akv:https://VAULT/keys/NAME[/VERSION]
 *   pkcs11:...            (parsed as opaque for now)
 *
 * A slot always stores the versioned form; two refs name "the same key" when
 * they are equal with the version removed.
 */
#ifndef RENC_CRYPTO_KEYREF_H
#define RENC_CRYPTO_KEYREF_H

#include <stddef.h>

#define RENC_KEY_NAME_MAX 128
#define RENC_KEY_VERSION_MAX 64
#define RENC_VAULT_MAX 512

enum renc_provider {
    RENC_PROVIDER_LOCAL = 1,
    RENC_PROVIDER_AKV,
    RENC_PROVIDER_PKCS11,
};

struct renc_keyref {
    enum renc_provider provider;
    char vault[RENC_VAULT_MAX + 1];          /* akv: https://host[:port] */
    char name[RENC_KEY_NAME_MAX + 1];
    char version[RENC_KEY_VERSION_MAX + 1];  /* "" when unversioned */
};

/* renc_keyref_parse: -RENC_E_BAD_KEYREF when `s` is not a key reference.
 * Names are 1-128 and versions 1-64 characters of [A-Za-z0-9._-]. */
int renc_keyref_parse(struct renc_keyref *out, const char *s);

/* renc_keyref_format: the canonical text of ref (versioned when it has a
 * version).  -RENC_E_TOO_BIG when it does not fit max_out. */
int renc_keyref_format(char *out, size_t max_out, const struct renc_keyref *ref);

/* renc_keyref_same_key: 1 when a and b name the same key, versions aside. */
int renc_keyref_same_key(const struct renc_keyref *a, const struct renc_keyref *b);

/* renc_keyref_name_valid: 1 when s is 1..max characters of [A-Za-z0-9._-]
 * and not "." or "..". */
int renc_keyref_name_valid(const char *s, size_t max);

#endif
