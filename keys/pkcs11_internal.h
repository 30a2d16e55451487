/* keys/pkcs11_internal.h — what pkcs11.c (module, tokens, sessions,
 * errors) and pkcs11_keys.c (objects, wraps) share. */
#ifndef RENC_KEYS_PKCS11_INTERNAL_H
#define RENC_KEYS_PKCS11_INTERNAL_H

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <pthread.h>
#include <sys/types.h>

#include "keys/pkcs11.h"

#define RENC_P11_TOKENS_MAX 8
#define RENC_P11_IDLE_MAX 64
#define RENC_P11_NOTED_MAX 32
#define RENC_P11_HANDLES_MAX 64

struct renc_p11_token {
    CK_TOKEN_INFO want;     /* the URI's token attributes (zero: any) */
    CK_SLOT_ID slot;
    int found, logged_in;
    int has_kwp, has_kw, has_oaep; /* from the mechanism list */
    int oaep256;            /* -1 not probed yet, 0 SHA-1 only, 1 SHA-256 too */
    CK_SESSION_HANDLE idle[RENC_P11_IDLE_MAX];
    size_t n_idle;
};

/* An object handle kept for a versioned ref: handles stay valid across an
 * application's sessions; a handle the token no longer knows is dropped. */
struct renc_p11_handle {
    char ref[RENC_MAX_REF_LEN + 1];
    CK_OBJECT_CLASS cls;
    CK_OBJECT_HANDLE h;
    struct renc_p11_token *t;
};

/* What renc_p11_key_get found for a ref, kept RENC_P11_KEY_TTL_S: a run's
 * every blob asks for the target's current version, and listing a label's
 * objects is the token's slowest call (as the vault's key reads are cached
 * 60 s).  The token still checks each wrap and unwrap itself. */
#define RENC_P11_KEYS_MAX 8
#define RENC_P11_KEY_TTL_S 60.0
struct renc_p11_cached_key {
    char ref[RENC_MAX_REF_LEN + 1];
    struct renc_p11_key k;
    double at; /* CLOCK_MONOTONIC seconds */
};

struct renc_p11 {
    pthread_mutex_t lock;
    struct renc_p11_options o;
    struct renc_key *pin;   /* RENC_PKCS11_PIN, in secure memory; may be NULL */
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    char module[4096];
    pid_t pid;
    int finalize;           /* we initialised the module */
    struct renc_p11_token tokens[RENC_P11_TOKENS_MAX];
    size_t n_tokens;
    struct renc_p11_cached_key keys[RENC_P11_KEYS_MAX];
    size_t n_keys, next_key;
    struct renc_p11_handle handles[RENC_P11_HANDLES_MAX];
    size_t n_handles;
    pthread_mutex_t note_lock; /* apart: errors are noted under p->lock too */
    CK_RV noted[RENC_P11_NOTED_MAX];
    size_t n_noted;
    struct renc_p11_stats st;
};

/* A session taken from a token's pool, logged in. */
struct renc_p11_sess {
    struct renc_p11_token *t;
    CK_SESSION_HANDLE h;
};

/* renc_p11_session: a session on the token u names (loading the module,
 * finding the token, logging in as needed). */
int renc_p11_session(struct renc_p11 *p, P11KitUri *u, struct renc_p11_sess *s);
/* renc_p11_release: back to the pool; closed instead after rc says the
 * session or token is gone (the token is looked up again next time). */
void renc_p11_release(struct renc_p11 *p, struct renc_p11_sess *s, int rc);
/* renc_p11_fail: the tool's code for rv from call fn, noting the CKR_ name
 * once per distinct value (CKR_OK: 0). */
int renc_p11_fail(struct renc_p11 *p, const char *fn, CK_RV rv);
void renc_p11_note(struct renc_p11 *p, const char *fmt, ...);
void renc_p11_count(struct renc_p11 *p, uint64_t *counter);

/* renc_p11_find: objects of label and cls (and id when id_len) in s, at
 * most max (pkcs11_keys.c). */
int renc_p11_find(struct renc_p11 *p, struct renc_p11_sess *s, const char *label,
                  CK_OBJECT_CLASS cls, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *out,
                  CK_ULONG max, CK_ULONG *n);

#define RENC_P11_VERSIONS_MAX 64
#define RENC_P11_ID_MAX (RENC_KEY_VERSION_MAX / 2)

/* One object of a key's label, as listed: a version. */
struct renc_p11_obj {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls; /* CKO_SECRET_KEY or CKO_PRIVATE_KEY */
    uint8_t id[RENC_P11_ID_MAX];
    CK_ULONG id_len;
};

/* renc_p11_with_versions: fn over a session on ref's token with the key's
 * versions v[0..n) sorted by CKA_ID (n 0: none); its result returned. */
typedef int (*renc_p11_versions_fn)(struct renc_p11 *p, struct renc_p11_sess *s,
                                    const struct renc_keyref *ref, struct renc_p11_obj *v,
                                    size_t n, void *arg);
int renc_p11_with_versions(struct renc_p11 *p, const struct renc_keyref *ref,
                           renc_p11_versions_fn fn, void *arg);
/* renc_p11_describe: k from version o of ref's key. */
int renc_p11_describe(struct renc_p11 *p, struct renc_p11_sess *s, const struct renc_keyref *ref,
                      const struct renc_p11_obj *o, struct renc_p11_key *k);
/* renc_p11_key_forget: empties renc_p11_key_get's cache (after a change
 * made in the token, or a failure that says it changed). */
void renc_p11_key_forget(struct renc_p11 *p);
/* renc_p11_hex: n bytes as lower-case hex (2n + 1 bytes of out);
 * renc_p11_unhex: the reverse, at most max bytes (pkcs11_uri.c). */
void renc_p11_hex(char *out, const uint8_t *b, size_t n);
int renc_p11_unhex(uint8_t *out, size_t max, size_t *out_len, const char *hex);

/* renc_p11_uri: u parsed from a ref's text (free with p11_kit_uri_free). */
int renc_p11_uri(const char *text, P11KitUri **u);

#endif
