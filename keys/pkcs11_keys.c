/* keys/pkcs11_keys.c — a key's versions as token objects, and the wraps
 * and unwraps made inside the token (pkcs11.h). */
#include "keys/pkcs11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

int renc_p11_find(struct renc_p11 *p, struct renc_p11_sess *s, const char *label,
                  CK_OBJECT_CLASS cls, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *out,
                  CK_ULONG max, CK_ULONG *n)
{
    CK_ATTRIBUTE tpl[] = {
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, (void *)id, id_len},
    };
    renc_p11_count(p, &p->st.finds);
    CK_RV rv = p->f->C_FindObjectsInit(s->h, tpl, id_len ? 3 : 2);
    if (rv != CKR_OK)
        return renc_p11_fail(p, "C_FindObjectsInit", rv);
    rv = p->f->C_FindObjects(s->h, out, max, n);
    CK_RV rv2 = p->f->C_FindObjectsFinal(s->h);
    return renc_p11_fail(p, "C_FindObjects", rv != CKR_OK ? rv : rv2);
}

static int renc_p11_bool(struct renc_p11 *p, struct renc_p11_sess *s, CK_OBJECT_HANDLE h,
                         CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof v};
    return p->f->C_GetAttributeValue(s->h, h, &a, 1) == CKR_OK && v == CK_TRUE;
}

static int renc_p11_id_cmp(const void *a, const void *b)
{
    const struct renc_p11_obj *x = a, *y = b;
    if (x->id_len != y->id_len)
        return x->id_len < y->id_len ? -1 : 1;
    return memcmp(x->id, y->id, x->id_len);
}

/* The key's versions (one object each: its secret or private key), sorted
 * by CKA_ID; -RENC_E_KEY_NOT_FOUND when there is none. */
static int renc_p11_versions(struct renc_p11 *p, struct renc_p11_sess *s, P11KitUri *u,
                             const char *label, struct renc_p11_obj *v, size_t *n)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_SECRET_KEY, CKO_PRIVATE_KEY};
    CK_ATTRIBUTE *want = p11_kit_uri_get_attribute(u, CKA_CLASS);
    *n = 0;
    for (size_t c = 0; c < 2; c++) {
        if (want && *(CK_OBJECT_CLASS *)want->pValue != classes[c])
            continue;
        CK_OBJECT_HANDLE hs[RENC_P11_VERSIONS_MAX];
        CK_ULONG got = 0;
        int rc = renc_p11_find(p, s, label, classes[c], NULL, 0, hs,
                               RENC_P11_VERSIONS_MAX - *n, &got);
        if (rc)
            return rc;
        for (CK_ULONG i = 0; i < got; i++) {
            struct renc_p11_obj *o = &v[*n];
            CK_ATTRIBUTE a = {CKA_ID, o->id, sizeof o->id};
            if (p->f->C_GetAttributeValue(s->h, hs[i], &a, 1) != CKR_OK || a.ulValueLen == 0)
                continue; /* an object without an id is no version */
            o->h = hs[i];
            o->cls = classes[c];
            o->id_len = a.ulValueLen;
            (*n)++;
        }
    }
    RENC_RETURN_IF(*n == 0, -RENC_E_KEY_NOT_FOUND);
    qsort(v, *n, sizeof *v, renc_p11_id_cmp);
    return 0;
}

/* SoftHSM 2.6 offers OAEP with SHA-1 only, and says so only when asked to
 * use SHA-256: one encryption under the public key tells (once per token). */
static void renc_p11_probe_oaep(struct renc_p11 *p, struct renc_p11_sess *s, CK_OBJECT_HANDLE pub)
{
    if (s->t->oaep256 >= 0)
        return;
    CK_RSA_PKCS_OAEP_PARAMS prm = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &prm, sizeof prm};
    uint8_t in[32] = {0}, out[1024];
    CK_ULONG out_len = sizeof out;
    int ok = s->t->has_oaep && p->f->C_EncryptInit(s->h, &m, pub) == CKR_OK &&
             p->f->C_Encrypt(s->h, in, sizeof in, out, &out_len) == CKR_OK;
    s->t->oaep256 = ok;
}

int renc_p11_describe(struct renc_p11 *p, struct renc_p11_sess *s, const struct renc_keyref *ref,
                      const struct renc_p11_obj *o, struct renc_p11_key *k)
{
    struct renc_keyref r = *ref;
    memset(k, 0, sizeof *k);
    renc_p11_hex(r.version, o->id, o->id_len);
    int rc = renc_keyref_format(k->versioned, sizeof k->versioned, &r);
    if (rc)
        return rc;
    if (o->cls == CKO_SECRET_KEY) {
        k->type = RENC_KEK_AES256;
        k->bits = 256;
        k->can_unwrap = renc_p11_bool(p, s, o->h, CKA_UNWRAP);
        k->can_wrap = renc_p11_bool(p, s, o->h, CKA_WRAP);
        k->default_alg = s->t->has_kwp ? RENC_ALG_AES_KWP : s->t->has_kw ? RENC_ALG_AES_KW : 0;
        k->algs = (s->t->has_kwp ? 1u << RENC_ALG_AES_KWP : 0) |
                  (s->t->has_kw ? 1u << RENC_ALG_AES_KW : 0);
        return 0;
    }
    uint8_t mod[1024];
    CK_ATTRIBUTE a = {CKA_MODULUS, mod, sizeof mod};
    k->type = RENC_KEK_RSA;
    k->bits = p->f->C_GetAttributeValue(s->h, o->h, &a, 1) == CKR_OK ? (unsigned)a.ulValueLen * 8 : 0;
    k->can_unwrap = renc_p11_bool(p, s, o->h, CKA_DECRYPT);
    CK_OBJECT_HANDLE pub;
    CK_ULONG n = 0;
    if (renc_p11_find(p, s, r.name, CKO_PUBLIC_KEY, o->id, o->id_len, &pub, 1, &n) == 0 && n) {
        k->can_wrap = renc_p11_bool(p, s, pub, CKA_ENCRYPT);
        renc_p11_probe_oaep(p, s, pub);
    }
    k->default_alg = s->t->oaep256 == 1 ? RENC_ALG_RSA_OAEP_256
                     : s->t->has_oaep   ? RENC_ALG_RSA_OAEP_SHA1
                                        : 0;
    k->algs = (s->t->oaep256 == 1 ? 1u << RENC_ALG_RSA_OAEP_256 : 0) |
              (s->t->has_oaep ? 1u << RENC_ALG_RSA_OAEP_SHA1 : 0);
    return 0;
}

int renc_p11_with_versions(struct renc_p11 *p, const struct renc_keyref *ref,
                           renc_p11_versions_fn fn, void *arg)
{
    P11KitUri *u = NULL;
    struct renc_p11_sess s;
    struct renc_p11_obj v[RENC_P11_VERSIONS_MAX];
    size_t n = 0;
    int rc = renc_p11_uri(ref->vault, &u);
    if (rc)
        return rc;
    if ((rc = renc_p11_session(p, u, &s)) == 0) {
        rc = renc_p11_versions(p, &s, u, ref->name, v, &n);
        if (rc == 0 || rc == -RENC_E_KEY_NOT_FOUND)
            rc = fn(p, &s, ref, v, rc ? 0 : n, arg);
        renc_p11_release(p, &s, rc);
    }
    p11_kit_uri_free(u);
    return rc;
}

static int renc_p11_get_one(struct renc_p11 *p, struct renc_p11_sess *s,
                            const struct renc_keyref *ref, struct renc_p11_obj *v, size_t n,
                            void *arg)
{
    RENC_RETURN_IF(n == 0, -RENC_E_KEY_NOT_FOUND);
    size_t pick = n - 1; /* the current version: the highest CKA_ID */
    if (ref->version[0]) {
        char hex[RENC_KEY_VERSION_MAX + 1];
        for (pick = 0; pick < n; pick++) {
            renc_p11_hex(hex, v[pick].id, v[pick].id_len);
            if (strcmp(hex, ref->version) == 0)
                break;
        }
        RENC_RETURN_IF(pick == n, -RENC_E_KEY_NOT_FOUND);
    }
    return renc_p11_describe(p, s, ref, &v[pick], arg);
}

static double renc_p11_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int renc_p11_key_get(struct renc_p11 *p, const struct renc_keyref *ref, struct renc_p11_key *out)
{
    char text[RENC_MAX_REF_LEN + 1];
    int rc = renc_keyref_format(text, sizeof text, ref);
    if (rc)
        return rc;
    double now = renc_p11_now();
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_keys; i++)
        if (strcmp(p->keys[i].ref, text) == 0 && now - p->keys[i].at < RENC_P11_KEY_TTL_S) {
            *out = p->keys[i].k;
            pthread_mutex_unlock(&p->lock);
            return 0;
        }
    pthread_mutex_unlock(&p->lock);
    if ((rc = renc_p11_with_versions(p, ref, renc_p11_get_one, out)) != 0)
        return rc;
    pthread_mutex_lock(&p->lock);
    size_t slot = p->n_keys;
    for (size_t i = 0; i < p->n_keys; i++)
        if (strcmp(p->keys[i].ref, text) == 0)
            slot = i; /* refresh in place */
    if (slot == p->n_keys)
        slot = p->n_keys < RENC_P11_KEYS_MAX ? p->n_keys++ : p->next_key++ % RENC_P11_KEYS_MAX;
    strcpy(p->keys[slot].ref, text);
    p->keys[slot].k = *out;
    p->keys[slot].at = now;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void renc_p11_key_forget(struct renc_p11 *p)
{
    pthread_mutex_lock(&p->lock);
    p->n_keys = 0;
    pthread_mutex_unlock(&p->lock);
}

struct renc_p11_list_ctx {
    int (*fn)(void *arg, const struct renc_p11_key *k);
    void *arg;
};

static int renc_p11_list_all(struct renc_p11 *p, struct renc_p11_sess *s,
                             const struct renc_keyref *ref, struct renc_p11_obj *v, size_t n,
                             void *arg)
{
    struct renc_p11_list_ctx *c = arg;
    RENC_RETURN_IF(n == 0, -RENC_E_KEY_NOT_FOUND);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct renc_p11_key k;
        if ((rc = renc_p11_describe(p, s, ref, &v[i], &k)) == 0)
            rc = c->fn(c->arg, &k);
    }
    return rc;
}

int renc_p11_list(struct renc_p11 *p, const struct renc_keyref *ref,
                  int (*fn)(void *arg, const struct renc_p11_key *k), void *arg)
{
    struct renc_p11_list_ctx c = {.fn = fn, .arg = arg};
    return renc_p11_with_versions(p, ref, renc_p11_list_all, &c);
}

int renc_p11_alg_check(struct renc_p11 *p, const struct renc_p11_key *k, int alg)
{
    int aes = alg == RENC_ALG_AES_KWP || alg == RENC_ALG_AES_KW;
    RENC_RETURN_IF(aes != (k->type == RENC_KEK_AES256), -RENC_E_KEY_TYPE);
    if (alg >= 1 && alg <= 4 && (k->algs & (1u << alg)))
        return 0;
    renc_p11_note(p, "pkcs11: the token cannot open slot alg %d under %s (%s)", alg,
                  k->versioned,
                  alg == RENC_ALG_RSA_OAEP_256 ? "its RSA-OAEP offers SHA-1 only"
                                               : "the mechanism is not offered");
    return -RENC_E_UNSUPPORTED;
}
