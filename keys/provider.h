/* keys/provider.h — the key-provider table: one struct renc_provider_ops
 * per provider, chosen by the scheme of a key reference ("local:", "akv:";
 * "pkcs11:").  The keystore (keystore.c) dispatches
 * every key operation through it, and callers outside keys/ ask it
 * questions (is this key held remotely, who grants access to it, what is
 * the provider called) instead of testing a reference's prefix.
 *
 * A provider is a table of functions over a state of its own (`void *p`,
 * made by open from the process's struct renc_provider_config).  An op a
 * provider cannot offer is NULL; the keystore then answers
 * -RENC_E_UNSUPPORTED and the CLI says which provider lacks it.  Adding a
 * provider: docs/internals/keys.md, "Adding a provider".
 */
#ifndef RENC_KEYS_PROVIDER_H
#define RENC_KEYS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/header.h"
#include "crypto/kek.h"
#include "crypto/secmem.h"
#include "keys/akv.h"
#include "keys/keyref.h"
#include "keys/keyring.h"

/* Everything the providers are configured with, in one place: the CLI
 * fills it from its option table and the environment (reencrypt/cli.c),
 * tests and benchmarks set only what they use.  A new provider adds its
 * fields here, and its options to the CLI's option table. */
struct renc_provider_config {
    /* Every provider.  open_remote: providers whose keys are held
     * elsewhere (a vault, a token) are opened too; without it only the
     * local keyring serves (tests, benchmarks) and other refs fail
     * -RENC_E_UNSUPPORTED.  Opening contacts nothing: a provider reaches
     * its holder when one of its refs is first used.  note: a one-line
     * note on retries and limits (from any thread; never given secrets);
     * may be NULL. */
    int open_remote;
    void (*note)(void *arg, const char *line);
    void *note_arg;
    /* local: the keyring (borrowed; NULL: no local key is found). */
    struct renc_keyring *keyring;
    /* akv: its options; akv.note and akv.note_arg are taken from note. */
    struct renc_akv_options akv;
    /* pkcs11: the module (--pkcs11-module, RENC_PKCS11_MODULE; a URI's
     * module-path= wins) and the PIN (RENC_PKCS11_PIN; copied into secure
     * memory; a URI's pin-source= wins).  docs/HSM.md. */
    struct {
        const char *module;
        const char *pin;
    } pkcs11;
};

/* What a provider's keys are like: the questions callers ask. */
enum {
    /* Held by a remote service: every wrap and unwrap is a request a
     * worker waits on (runs toward such a key use more workers). */
    RENC_PROVIDER_REMOTE = 1u << 0,
    /* Access and enabled state are set at the holder, outside this tool:
     * the tool finds a key withdrawn or disabled there, locks the
     * environments on it, and `keys restore` checks that the holder serves
     * it again before unlocking them. */
    RENC_PROVIDER_HOLDER_GRANTS = 1u << 1,
    /* Keys of the service's own keyring, named without a scheme on the
     * CLI (`keys create NAME`); BYOK and MMK policy keys must be these. */
    RENC_PROVIDER_KEYRING = 1u << 2,
};

/* One version of a key, as the provider describes it. */
struct renc_provider_version {
    char ref[RENC_MAX_REF_LEN + 1]; /* versioned */
    int enabled;                    /* 0: disabled (or revoked) */
    int revoked;                    /* access withdrawn */
    int64_t nbf, exp;               /* Unix seconds, 0 when absent */
    int may_wrap;                   /* 0, or why new data may not be sealed under it */
    int can_unwrap;                 /* 0, or why its slots would not open now */
};

/* Requests and their fate, as data for the run report.  A provider fills
 * what it has; a local one makes no requests (requests stays 0, and the
 * report says nothing of it). */
struct renc_provider_stats {
    uint64_t requests;      /* requests sent to the holder, retries included */
    uint64_t gets, lists, wraps, unwraps, tokens;
    uint64_t retries;       /* requests sent again after a throttle, server or network error */
    uint64_t throttled;
    uint64_t server_errors;
    uint64_t network_errors;
    uint64_t paced;         /* requests the pacer held back */
    double paced_s;         /* their total wait */
    uint64_t pace_cuts;     /* times a throttle lowered the pace */
    unsigned rate_limit;    /* the pacing ceiling, per rate_window_s */
    unsigned rate_now;      /* the pace at the end */
    double rate_window_s;
};

/* What wrap_target and unwrap_target found: the version to use, and the
 * provider's handle on it for the wrap or unwrap that follows. */
struct renc_provider_target {
    char versioned[RENC_MAX_REF_LEN + 1];
    int alg;           /* the slot algorithm */
    const void *key;   /* the provider's own (local: the cached KEK); may be NULL */
};

struct renc_provider_ops {
    const char *name;       /* "local", "akv" */
    const char *scheme;     /* the reference prefix: "local:", "akv:" */
    enum renc_provider id;  /* the struct renc_keyref provider it serves */
    unsigned caps;          /* RENC_PROVIDER_* */
    const char *display;    /* in reports: "keyring", "key vault" */
    const char *report_key; /* the run report's JSON field for its stats; NULL: none */
    const char *holder;     /* who grants access (messages): "keyring", "vault" */
    const char *key_form;   /* how the CLI names one of its keys */
    const char *managed_at; /* why create, rotate, disable are NULL, or NULL */

    /* open: *p the provider's state, or NULL (and 0) when config does not
     * ask for this provider: its refs then fail -RENC_E_UNSUPPORTED. */
    int (*open)(void **p, const struct renc_provider_config *config);
    void (*close)(void *p);

    /* resolve: the versioned text of ref (its current version when it has
     * none), the key's state checked as the provider does for any use. */
    int (*resolve)(void *p, const struct renc_keyref *ref, char *versioned, size_t max);
    /* wrap_target: the version new data is sealed under and the alg,
     * refused (-RENC_E_KEY_DISABLED, -RENC_E_KEY_EXPIRED, ...) when no new
     * data may be; t->versioned is written whenever the version is known,
     * so a refusal can name it. */
    int (*wrap_target)(void *p, const struct renc_keyref *ref, struct renc_provider_target *t);
    /* wrap: dek under t; versioned (may be NULL) gets the version the
     * holder answered with. */
    int (*wrap)(void *p, const struct renc_provider_target *t, const struct renc_key *dek,
                uint8_t *out, size_t max, size_t *out_len, char *versioned, size_t vmax);
    /* unwrap_target: before any DEK cache: what a slot under the versioned
     * ref with alg needs; fails when the provider knows now that it will
     * not open (state, alg). */
    int (*unwrap_target)(void *p, const struct renc_keyref *versioned, int alg,
                         struct renc_provider_target *t);
    /* unwrap: the DEK of wrapped, into secure memory. */
    int (*unwrap)(void *p, const struct renc_provider_target *t, const uint8_t *wrapped,
                  size_t wrapped_len, struct renc_key **dek);
    /* can_unwrap: 0 when slots under ref would open now; unwraps nothing. */
    int (*can_unwrap)(void *p, const struct renc_keyref *ref);
    /* describe: one version (the current one when ref has none). */
    int (*describe)(void *p, const struct renc_keyref *ref, struct renc_provider_version *out);
    /* list_versions: fn for each version of ref's key. */
    int (*list_versions)(void *p, const struct renc_keyref *ref,
                         int (*fn)(void *arg, const struct renc_provider_version *v), void *arg);
    void (*stats)(void *p, struct renc_provider_stats *out);

    /* Key management, where the tool does it (NULL: at the holder). */
    int (*create)(void *p, const struct renc_keyref *ref, enum renc_kek_type type,
                  unsigned bits);
    int (*rotate)(void *p, const struct renc_keyref *ref, char *versioned, size_t max);
    /* set_state: a version's state, or the whole key's with ref unversioned. */
    int (*set_state)(void *p, const struct renc_keyref *ref, enum renc_key_state state);
};

extern const struct renc_provider_ops renc_provider_local;
extern const struct renc_provider_ops renc_provider_akv;
extern const struct renc_provider_ops renc_provider_pkcs11;

/* renc_providers: the registry, NULL-terminated, in the order reports
 * list them. */
extern const struct renc_provider_ops *const renc_providers[];

/* renc_provider_for: the provider of a parsed ref; NULL when none serves
 * its scheme. */
const struct renc_provider_ops *renc_provider_for(const struct renc_keyref *ref);

/* renc_provider_for_text: the provider whose scheme text starts with;
 * NULL when none (a bare NAME, an unknown scheme).  The ref need not
 * parse. */
const struct renc_provider_ops *renc_provider_for_text(const char *text);

/* renc_provider_caps: the caps of text's provider, 0 when none. */
unsigned renc_provider_caps(const char *text);

/* renc_provider_withdrawn: 1 when a failure rc under key ref means access
 * to the key was withdrawn at its provider, so the environments on it are
 * locked: a revocation, under any provider, or a disable made at a holder
 * that grants access (RENC_PROVIDER_HOLDER_GRANTS). */
int renc_provider_withdrawn(const char *ref, int rc);

#endif
