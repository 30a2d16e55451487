/* keys/keyring_internal.h — the codec of the keyring's state file
 * (docs/FORMAT.md "The local keyring"), without the file system, so that a
 * fuzz target and tests can drive the very parser renc_keyring_get uses.
 *
 * keys/keyring_state.c implements this; nothing outside keys/ and tests/
 * includes it.
 */
#ifndef RENC_KEYS_KEYRING_INTERNAL_H
#define RENC_KEYS_KEYRING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keyring.h"

/* A version's type is the extension of its material file (.key or .pem), so
 * the parser asks.  Returns 0 and sets *type, -RENC_E_KEY_NOT_FOUND when the
 * version has no material file (the state file is then malformed), or any
 * other error, which the parser passes up unchanged. */
typedef int (*renc_keyring_type_fn)(void *ctx, const char *version, enum renc_kek_type *type);

/* renc_keyring_state_parse: parses a state file's text, len bytes at text
 * followed by a NUL (text[len] == '\0'), into key, whose name the caller has
 * set and whose other fields are zero.  text is modified (cut into lines in
 * place).  Returns 0 or -RENC_E_BAD_KEYRING (malformed, or a NUL byte
 * inside), -RENC_E_TOO_BIG (over 1024 versions), -RENC_E_NOMEM, or what
 * version_type returned.  On failure key may hold some versions: the caller
 * frees it with renc_keyring_key_cleanup either way. */
int renc_keyring_state_parse(struct renc_keyring_key *key, char *text, size_t len,
                             renc_keyring_type_fn version_type, void *ctx);

/* renc_keyring_state_format: the state file's text for key, in a new buffer
 * (renc_malloc, NUL-terminated, the caller frees it with renc_free);
 * *out_len is its length without the NUL.  *out is written only on
 * success. */
int renc_keyring_state_format(char **out, size_t *out_len, const struct renc_keyring_key *key);

/* renc_keyring_key_add_version: appends a version to key's record (not to
 * any file).  -RENC_E_TOO_BIG past 1024 versions, -RENC_E_NOMEM; key is
 * unchanged on failure. */
int renc_keyring_key_add_version(struct renc_keyring_key *key, const char *version,
                                 enum renc_kek_type type, enum renc_key_state state,
                                 int64_t created);

#endif
