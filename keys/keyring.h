/* keys/keyring.h — the local keyring, the embedded default key provider
 * (FORMAT.md §6, docs/FORMAT.md "The local keyring").
 *
 *   KEYRING/                 mode 0700, refused when group or others have access
 *   KEYRING/NAME/            mode 0700
 *   KEYRING/NAME/VERSION.key 32 raw bytes, an AES-256 KEK (wraps with alg 1)
 *   KEYRING/NAME/VERSION.pem PEM RSA private key (wraps with alg 2)
 *   KEYRING/NAME/state       text: current version, key and version states
 *
 * Every file is created 0600 and replaced atomically (temporary, fsync,
 * rename, fsync of the directory); changes are serialised by an flock on
 * KEYRING/.lock so two processes never lose each other's update.  The state
 * file is each change's one commit point: a change killed at any point leaves
 * the old state or the new, and the next change of the key sweeps away what
 * the killed one left (keyring.c says what that is).
 */
#ifndef RENC_KEYS_KEYRING_H
#define RENC_KEYS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/kek.h"
#include "keys/keyref.h"

enum renc_key_state {
    RENC_KEY_ENABLED = 0,
    RENC_KEY_DISABLED,  /* versions only: cannot wrap or unwrap */
    RENC_KEY_REVOKED,   /* access withdrawn: every operation refused */
};

struct renc_keyring_version {
    char version[RENC_KEY_VERSION_MAX + 1];
    enum renc_kek_type type;
    enum renc_key_state state;
    int64_t created_unix;
};

struct renc_keyring_key {
    char name[RENC_KEY_NAME_MAX + 1];
    char current[RENC_KEY_VERSION_MAX + 1];
    enum renc_key_state state; /* ENABLED or REVOKED (the whole key) */
    struct renc_keyring_version *versions;
    size_t version_count;
};

struct renc_keyring;

/* renc_keyring_open: opens the keyring at dir; with create, makes it (0700)
 * when missing, and without, a missing dir is an empty keyring (a state
 * that uses only key vault keys has none).  -RENC_E_INSECURE_PERMS when the directory, a key folder or
 * a key file is open to group or others, or owned by another user. */
int renc_keyring_open(struct renc_keyring **out, const char *dir, int create);
void renc_keyring_free(struct renc_keyring *kr);
const char *renc_keyring_dir(const struct renc_keyring *kr);

/* renc_keyring_name_valid: 1 when name can name a local key: 1..128
 * characters of [A-Za-z0-9._-], not starting with '.' (those names are the
 * keyring's own: .lock, temporaries). */
int renc_keyring_name_valid(const char *name);

/* renc_keyring_create_key: a new key NAME with version "1".
 * -RENC_E_KEY_EXISTS when NAME has a committed state; a folder left by a
 * create killed before its commit is swept away and the key made afresh.
 * type RENC_KEK_AES256, or RENC_KEK_RSA with bits 2048/3072/4096. */
int renc_keyring_create_key(struct renc_keyring *kr, const char *name,
                            enum renc_kek_type type, unsigned bits);

/* renc_keyring_rotate: a new version of the same type becomes current; its
 * name is written to version_out.  Killed before its commit (the state's
 * rename), it leaves the old state, and the next change of the key removes
 * the new version's material. */
int renc_keyring_rotate(struct renc_keyring *kr, const char *name,
                        char version_out[RENC_KEY_VERSION_MAX + 1]);

/* renc_keyring_set_state: version NULL sets the whole key's state (ENABLED
 * or REVOKED); otherwise the version's (any state). */
int renc_keyring_set_state(struct renc_keyring *kr, const char *name, const char *version,
                           enum renc_key_state state);

/* renc_keyring_get: a key's record.  Free with renc_keyring_key_cleanup.
 * -RENC_E_KEY_NOT_FOUND also for a key folder without a state file (a
 * create not finished); -RENC_E_BAD_KEYREF for a name that cannot be a
 * key's (renc_keyring_name_valid). */
int renc_keyring_get(struct renc_keyring *kr, const char *name, struct renc_keyring_key *out);
void renc_keyring_key_cleanup(struct renc_keyring_key *key);

/* renc_keyring_list: every key's name, sorted.  Free with
 * renc_keyring_names_free. */
int renc_keyring_list(struct renc_keyring *kr, char ***names, size_t *count);
void renc_keyring_names_free(char **names, size_t count);

/* renc_keyring_load: the KEK of NAME/VERSION (version NULL or "" = current),
 * checking states: -RENC_E_KEY_NOT_FOUND, -RENC_E_KEY_DISABLED,
 * -RENC_E_KEY_REVOKED.  version_out (may be NULL) receives the version.
 * With out NULL only the states are checked and no material is read. */
int renc_keyring_load(struct renc_keyring *kr, const char *name, const char *version,
                      struct renc_kek **out, char version_out[RENC_KEY_VERSION_MAX + 1]);

const char *renc_key_state_name(enum renc_key_state state);

#endif
