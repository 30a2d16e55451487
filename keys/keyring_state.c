/* keys/keyring_state.c — the keyring's state file as text, apart from the
 * file system (keyring_internal.h): the codec renc_keyring_get and the
 * keyring's changes use, and that fuzz_keyring drives directly.
 *
 * The state file, KEYRING/NAME/state, is line-oriented text:
 *
 *   renc-keyring-state 1
 *   current VERSION
 *   key enabled|revoked
 *   version VERSION enabled|disabled|revoked CREATED_UNIX
 *   ...
 *
 * A version's type is not in the text: it is the extension of the version's
 * material file (VERSION.key or VERSION.pem), which the parser asks its
 * caller for.
 */
#include "keys/keyring_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_MAX_VERSIONS 1024

const char *renc_key_state_name(enum renc_key_state state)
{
    switch (state) {
    case RENC_KEY_ENABLED: return "enabled";
    case RENC_KEY_DISABLED: return "disabled";
    case RENC_KEY_REVOKED: return "revoked";
    }
    return "unknown";
}

static int renc_state_from_name(const char *s, enum renc_key_state *out)
{
    if (strcmp(s, "enabled") == 0)
        *out = RENC_KEY_ENABLED;
    else if (strcmp(s, "disabled") == 0)
        *out = RENC_KEY_DISABLED;
    else if (strcmp(s, "revoked") == 0)
        *out = RENC_KEY_REVOKED;
    else
        return -RENC_E_BAD_KEYRING;
    return 0;
}

void renc_keyring_key_cleanup(struct renc_keyring_key *key)
{
    renc_free(key->versions);
    memset(key, 0, sizeof *key);
}

int renc_keyring_key_add_version(struct renc_keyring_key *key, const char *version,
                                 enum renc_kek_type type, enum renc_key_state state,
                                 int64_t created)
{
    RENC_RETURN_IF(key->version_count >= RENC_MAX_VERSIONS, -RENC_E_TOO_BIG);
    struct renc_keyring_version *v =
        renc_realloc(key->versions, (key->version_count + 1) * sizeof *v);
    RENC_RETURN_IF(!v, -RENC_E_NOMEM);
    key->versions = v;
    v = &key->versions[key->version_count++];
    memset(v, 0, sizeof *v);
    strcpy(v->version, version);
    v->type = type;
    v->state = state;
    v->created_unix = created;
    return 0;
}

int renc_keyring_state_parse(struct renc_keyring_key *key, char *text, size_t len,
                             renc_keyring_type_fn version_type, void *ctx)
{
    /* The tool never writes a NUL; one inside the text (a damaged file)
     * would otherwise end it silently, dropping the lines after it, a "key
     * revoked" among them. */
    RENC_RETURN_IF(strlen(text) != len, -RENC_E_BAD_KEYRING);
    char *save = NULL;
    int line_no = 0, have_key = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char w1[32], w2[RENC_KEY_VERSION_MAX + 2], w3[16], extra[2];
        int64_t created = 0;
        line_no++;
        if (line_no == 1) {
            if (strcmp(line, "renc-keyring-state 1") != 0)
                return -RENC_E_BAD_KEYRING;
            continue;
        }
        int n = sscanf(line, "%31s %65s %15s %" SCNd64 " %1s", w1, w2, w3, &created, extra);
        if (n == 2 && strcmp(w1, "current") == 0) {
            RENC_RETURN_IF(!renc_keyref_name_valid(w2, RENC_KEY_VERSION_MAX),
                           -RENC_E_BAD_KEYRING);
            strcpy(key->current, w2);
        } else if (n == 2 && strcmp(w1, "key") == 0) {
            enum renc_key_state st;
            if (renc_state_from_name(w2, &st) || st == RENC_KEY_DISABLED)
                return -RENC_E_BAD_KEYRING;
            key->state = st;
            have_key = 1;
        } else if (n == 4 && strcmp(w1, "version") == 0) {
            enum renc_key_state st;
            enum renc_kek_type type;
            RENC_RETURN_IF(!renc_keyref_name_valid(w2, RENC_KEY_VERSION_MAX),
                           -RENC_E_BAD_KEYRING);
            RENC_RETURN_IF(renc_state_from_name(w3, &st), -RENC_E_BAD_KEYRING);
            for (size_t i = 0; i < key->version_count; i++)
                RENC_RETURN_IF(strcmp(key->versions[i].version, w2) == 0, -RENC_E_BAD_KEYRING);
            int rc = version_type(ctx, w2, &type);
            if (rc)
                return rc == -RENC_E_KEY_NOT_FOUND ? -RENC_E_BAD_KEYRING : rc;
            if ((rc = renc_keyring_key_add_version(key, w2, type, st, created)))
                return rc;
        } else {
            return -RENC_E_BAD_KEYRING;
        }
    }
    RENC_RETURN_IF(line_no == 0 || !have_key || key->current[0] == '\0' ||
                   key->version_count == 0, -RENC_E_BAD_KEYRING);
    for (size_t i = 0; i < key->version_count; i++)
        if (strcmp(key->versions[i].version, key->current) == 0)
            return 0;
    return -RENC_E_BAD_KEYRING; /* current names no version */
}

int renc_keyring_state_format(char **out, size_t *out_len, const struct renc_keyring_key *key)
{
    /* The first three lines take at most 21 + 8 + 64 + 1 + 12 bytes; a
     * version line at most 8 + 64 + 1 + 8 + 1 + 20 + 1 (the longest state
     * name, the longest int64). */
    size_t cap = 128 + key->version_count * (RENC_KEY_VERSION_MAX + 48);
    char *buf = renc_malloc(cap);
    RENC_RETURN_IF(!buf, -RENC_E_NOMEM);
    size_t n = (size_t)snprintf(buf, cap, "renc-keyring-state 1\ncurrent %s\nkey %s\n",
                                key->current, renc_key_state_name(key->state));
    for (size_t i = 0; i < key->version_count; i++) {
        const struct renc_keyring_version *v = &key->versions[i];
        n += (size_t)snprintf(buf + n, cap - n, "version %s %s %" PRId64 "\n", v->version,
                              renc_key_state_name(v->state), v->created_unix);
    }
    *out = buf;
    *out_len = n;
    return 0;
}

