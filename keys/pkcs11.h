/* keys/pkcs11.h — keys held in a PKCS#11 token (an HSM), the state under
 * the `pkcs11` provider (provider_pkcs11.c).  docs/HSM.md is the user's
 * page, docs/internals/keys.md ("The pkcs11 provider") the design.
 *
 * A key is the token's objects of one label (CKA_LABEL); its versions are
 * their distinct CKA_IDs, the current one the highest (as a big-endian
 * number).  The module is loaded (dlopen) when a ref is first used and
 * initialised with OS locking; each token gets one login per process and a
 * pool of sessions, one per thread that uses it at once.  DEKs never become
 * token objects that persist: AES unwraps make a session object read once
 * and destroyed, RSA uses C_Encrypt / C_Decrypt.
 *
 * Fork-safety: a PKCS#11 module's state does not survive fork(); every
 * entry point refuses (-RENC_E_HSM_MODULE) in a process other than the one
 * that initialised the module.  The tool forks nothing after opening keys.
 */
#ifndef RENC_KEYS_PKCS11_H
#define RENC_KEYS_PKCS11_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/header.h"
#include "crypto/kek.h"
#include "crypto/secmem.h"
#include "keys/keyref.h"

/* renc_pkcs11_ref_parse: r from an RFC 7512 URI (p11-kit's parser):
 * token= and object= required, id= the version, type= secret-key or
 * private-key, the query only module-path= and pin-source=; anything else
 * (an unknown attribute, pin-value=) is -RENC_E_BAD_KEYREF.  r->vault
 * gets the canonical text without id=, r->name the object label,
 * r->version the id in lower-case hex. */
int renc_pkcs11_ref_parse(struct renc_keyref *r, const char *s);

/* renc_pkcs11_ref_format: the canonical URI of r, with id= when r has a
 * version. */
int renc_pkcs11_ref_format(char *out, size_t max_out, const struct renc_keyref *r);

struct renc_p11;

struct renc_p11_options {
    const char *module; /* --pkcs11-module / RENC_PKCS11_MODULE; may be NULL */
    const char *pin;    /* RENC_PKCS11_PIN; may be NULL; copied */
    void (*note)(void *arg, const char *line);
    void *note_arg;
};

int renc_p11_new(struct renc_p11 **out, const struct renc_p11_options *o);
void renc_p11_free(struct renc_p11 *p);

/* One version as the token holds it. */
struct renc_p11_key {
    char versioned[RENC_MAX_REF_LEN + 1];
    enum renc_kek_type type;
    unsigned bits;      /* RSA modulus bits; 256 for AES */
    int can_unwrap;     /* CKA_UNWRAP (secret key) or CKA_DECRYPT (private key) */
    int can_wrap;       /* CKA_WRAP (secret key) or the public key's CKA_ENCRYPT */
    int default_alg;    /* what the tool seals with on this token (0: none) */
    unsigned algs;      /* 1u << alg for each slot alg the token opens under it */
};

/* renc_p11_key_get: the version ref names (the current one, the highest
 * CKA_ID, when it has none). */
int renc_p11_key_get(struct renc_p11 *p, const struct renc_keyref *ref, struct renc_p11_key *out);

/* renc_p11_alg_check: 0 when the token can open a slot of alg under the
 * key, else -RENC_E_KEY_TYPE (the alg does not fit the key) or
 * -RENC_E_UNSUPPORTED (the token lacks the mechanism; noted). */
int renc_p11_alg_check(struct renc_p11 *p, const struct renc_p11_key *k, int alg);

/* renc_p11_wrap / renc_p11_unwrap: under the versioned ref, in the token. */
int renc_p11_wrap(struct renc_p11 *p, const char *versioned, int alg, const struct renc_key *dek,
                  uint8_t *out, size_t max, size_t *out_len);
int renc_p11_unwrap(struct renc_p11 *p, const char *versioned, int alg, const uint8_t *wrapped,
                    size_t wrapped_len, struct renc_key **dek);

/* renc_p11_list: fn for each version of ref's key, lowest CKA_ID first. */
int renc_p11_list(struct renc_p11 *p, const struct renc_keyref *ref,
                  int (*fn)(void *arg, const struct renc_p11_key *k), void *arg);

/* renc_p11_generate: a new version generated inside the token (sensitive,
 * not extractable, wrap/unwrap only): the key's first (create, ref
 * unversioned, no object of the label yet) or next (the highest CKA_ID
 * plus one, of the current version's type).  versioned gets its ref. */
int renc_p11_generate(struct renc_p11 *p, const struct renc_keyref *ref, int create,
                      enum renc_kek_type type, unsigned bits, char *versioned, size_t max);

/* renc_p11_set_enabled: sets or clears the version's unwrap and wrap
 * attributes; -RENC_E_UNSUPPORTED (noted) when the token does not let
 * them change. */
int renc_p11_set_enabled(struct renc_p11 *p, const struct renc_keyref *versioned, int enabled);

struct renc_p11_stats {
    uint64_t calls, finds, wraps, unwraps, logins, sessions;
};
void renc_p11_stats(struct renc_p11 *p, struct renc_p11_stats *out);

/* renc_p11_rv_error: the tool's code for a PKCS#11 return value;
 * renc_p11_rv_name: its CKR_ name ("CKR_0x..." when unknown, in buf). */
int renc_p11_rv_error(unsigned long rv);
const char *renc_p11_rv_name(unsigned long rv, char *buf, size_t max);

#endif
