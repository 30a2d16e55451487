/* keys/keyref.h — key references (FORMAT.md §5).
 *
 *   local:NAME[/VERSION]
 *   akv:https://VAULT/keys/NAME[/VERSION]
 *   pkcs11:token=T;object=NAME[;id=%HEX]...   (RFC 7512, keys/pkcs11.h)
 *
 * A slot always stores the versioned form; two refs name "the same key" when
 * they are equal with the version removed.
 */
#ifndef RENC_KEYS_KEYREF_H
#define RENC_KEYS_KEYREF_H

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

/* renc_keyref_same_key: 1 when a and b name the same key, versions aside.
 * For akv: refs the vault's origin is compared with case and an explicit
 * :443 aside, and the key name case-blind, as the service does (it answers
 * with the name as the key was created, whatever spelling was asked). */
int renc_keyref_same_key(const struct renc_keyref *a, const struct renc_keyref *b);

/* renc_keyref_same_version: 1 when a and b name the same key and the same
 * version (or both none); akv versions compare case-blind. */
int renc_keyref_same_version(const struct renc_keyref *a, const struct renc_keyref *b);

/* renc_keyref_text_same_version: renc_keyref_same_version of two ref texts
 * (0 when either does not parse, unless they are equal). */
int renc_keyref_text_same_version(const char *a, const char *b);

/* renc_keyref_text_is_version: renc_keyref_text_same_version of r (whose
 * text is r_text) and text, parsing text only when its spelling could
 * differ from r_text's and still name the same version (vault refs): for
 * a per-blob check against one target parsed once. */
int renc_keyref_text_is_version(const struct renc_keyref *r, const char *r_text,
                                const char *text);

/* renc_keyref_vault_origin: vault ("https://host[:port]") as an origin to
 * compare: lower case, without the default port 443. */
int renc_keyref_vault_origin(char *out, size_t max_out, const char *vault);

/* renc_keyref_name_valid: 1 when s is 1..max characters of [A-Za-z0-9._-]
 * and not "." or "..". */
int renc_keyref_name_valid(const char *s, size_t max);

#endif
