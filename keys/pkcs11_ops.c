/* keys/pkcs11_ops.c — wraps and unwraps inside the token, and the key
 * management the tool does there: generate a version, enable or disable
 * one (pkcs11.h). */
#include "keys/pkcs11_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

/* What a slot alg asks of the token: the mechanism, and the class of the
 * object that unwraps (wrap uses the public key for RSA). */
struct renc_p11_mech {
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    int rsa;
};

static int renc_p11_mech_for(struct renc_p11_mech *x, int alg)
{
    memset(x, 0, sizeof *x);
    switch (alg) {
    case RENC_ALG_AES_KWP: x->m.mechanism = CKM_AES_KEY_WRAP_PAD; return 0;
    case RENC_ALG_AES_KW: x->m.mechanism = CKM_AES_KEY_WRAP; return 0;
    case RENC_ALG_RSA_OAEP_256:
        x->oaep = (CK_RSA_PKCS_OAEP_PARAMS){CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
        break;
    case RENC_ALG_RSA_OAEP_SHA1:
        x->oaep = (CK_RSA_PKCS_OAEP_PARAMS){CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
        break;
    default:
        return -RENC_E_BAD_ALG;
    }
    x->m = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &x->oaep, sizeof x->oaep};
    x->rsa = 1;
    return 0;
}

/* A pooled session on the token of a cached handle, without parsing the
 * ref again: 1 when the token needs the full path (renc_p11_session). */
static int renc_p11_take(struct renc_p11 *p, struct renc_p11_token *t, struct renc_p11_sess *s)
{
    int rc = 1, may_open = 0;
    pthread_mutex_lock(&p->lock);
    if (t->found && t->logged_in && p->pid == getpid()) {
        if (t->n_idle) {
            s->h = t->idle[--t->n_idle];
            rc = 0;
        } else {
            may_open = 1;
        }
    }
    CK_SLOT_ID slot = t->slot;
    pthread_mutex_unlock(&p->lock);
    /* Logged in already: logins are per token, not per session. */
    if (may_open &&
        p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->h) == CKR_OK) {
        renc_p11_count(p, &p->st.sessions);
        rc = 0;
    }
    if (rc == 0)
        s->t = t;
    return rc;
}

/* The handle of the versioned ref's object of class cls, and a session on
 * its token. */
static int renc_p11_object(struct renc_p11 *p, const char *versioned, CK_OBJECT_CLASS cls,
                           struct renc_p11_sess *s, CK_OBJECT_HANDLE *h)
{
    struct renc_p11_token *t = NULL;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_handles; i++)
        if (p->handles[i].cls == cls && strcmp(p->handles[i].ref, versioned) == 0) {
            *h = p->handles[i].h;
            t = p->handles[i].t;
        }
    pthread_mutex_unlock(&p->lock);
    if (t && renc_p11_take(p, t, s) == 0)
        return 0;
    struct renc_keyref ref;
    P11KitUri *u = NULL;
    int rc = renc_keyref_parse(&ref, versioned);
    if (rc == 0 && (ref.provider != RENC_PROVIDER_PKCS11 || !ref.version[0]))
        rc = -RENC_E_BAD_KEYREF;
    if (rc == 0)
        rc = renc_p11_uri(versioned, &u);
    if (rc == 0)
        rc = renc_p11_session(p, u, s);
    p11_kit_uri_free(u);
    if (rc)
        return rc;
    uint8_t id[RENC_P11_ID_MAX];
    size_t n = 0;
    CK_ULONG got = 0;
    if (renc_p11_unhex(id, sizeof id, &n, ref.version)) {
        renc_p11_release(p, s, 0);
        return -RENC_E_BAD_KEYREF;
    }
    if ((rc = renc_p11_find(p, s, ref.name, cls, id, n, h, 1, &got)) == 0 && got == 0)
        rc = -RENC_E_KEY_NOT_FOUND;
    if (rc) {
        renc_p11_release(p, s, rc);
        return rc;
    }
    pthread_mutex_lock(&p->lock);
    if (p->n_handles < RENC_P11_HANDLES_MAX && strlen(versioned) < sizeof p->handles[0].ref) {
        struct renc_p11_handle *e = &p->handles[p->n_handles++];
        strcpy(e->ref, versioned);
        e->cls = cls;
        e->h = *h;
        e->t = s->t;
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* After an op under versioned failed with rc: a handle the token no longer
 * knows is dropped (the object was removed, or the token came back). */
static void renc_p11_forget(struct renc_p11 *p, const char *versioned, int rc)
{
    if (rc == -RENC_E_KEY_DISABLED)
        renc_p11_key_forget(p);
    if (rc != -RENC_E_KEY_NOT_FOUND && rc != -RENC_E_HSM_TOKEN)
        return;
    renc_p11_key_forget(p);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_handles;)
        if (strcmp(p->handles[i].ref, versioned) == 0)
            p->handles[i] = p->handles[--p->n_handles];
        else
            i++;
    pthread_mutex_unlock(&p->lock);
}

/* The DEK as a session object the token may hand back: not on the token,
 * not sensitive, extractable; with its value when dek is given (a wrap),
 * without (an unwrap: PROTOCOLS.md 5.3, no CKA_VALUE_LEN either).  Returns
 * the count of attributes written to tpl[6]. */
static CK_ULONG renc_p11_dek_template(CK_ATTRIBUTE *tpl, const struct renc_key *dek)
{
    static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static CK_KEY_TYPE kt = CKK_AES;
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    tpl[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
    tpl[1] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof kt};
    tpl[2] = (CK_ATTRIBUTE){CKA_TOKEN, &no, sizeof no};
    tpl[3] = (CK_ATTRIBUTE){CKA_SENSITIVE, &no, sizeof no};
    tpl[4] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &yes, sizeof yes};
    if (!dek)
        return 5;
    tpl[5] = (CK_ATTRIBUTE){CKA_VALUE, dek->bytes, dek->len};
    return 6;
}

static int renc_p11_wrap_aes(struct renc_p11 *p, struct renc_p11_sess *s, CK_MECHANISM *m,
                             CK_OBJECT_HANDLE kek, const struct renc_key *dek, uint8_t *out,
                             size_t max, size_t *out_len)
{
    /* The DEK becomes a session object only for the C_WrapKey call. */
    CK_ATTRIBUTE tpl[6];
    CK_OBJECT_HANDLE obj;
    CK_RV rv = p->f->C_CreateObject(s->h, tpl, renc_p11_dek_template(tpl, dek), &obj);
    if (rv != CKR_OK)
        return renc_p11_fail(p, "C_CreateObject", rv);
    CK_ULONG n = max;
    rv = p->f->C_WrapKey(s->h, m, kek, obj, out, &n);
    p->f->C_DestroyObject(s->h, obj);
    if (rv == CKR_OK)
        *out_len = n;
    return renc_p11_fail(p, "C_WrapKey", rv);
}

/* The mechanism for alg, and a session with the handle of the object
 * that does the work: the secret key, or the RSA public key (wrap) or
 * private key (unwrap).  Counted in *counter. */
static int renc_p11_begin(struct renc_p11 *p, const char *versioned, int alg, int unwrap,
                          struct renc_p11_mech *x, struct renc_p11_sess *s,
                          CK_OBJECT_HANDLE *kek, uint64_t *counter)
{
    CK_OBJECT_CLASS rsa_cls = unwrap ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
    int rc = renc_p11_mech_for(x, alg);
    if (rc == 0)
        rc = renc_p11_object(p, versioned, x->rsa ? rsa_cls : CKO_SECRET_KEY, s, kek);
    if (rc == 0)
        renc_p11_count(p, counter);
    return rc;
}

int renc_p11_wrap(struct renc_p11 *p, const char *versioned, int alg, const struct renc_key *dek,
                  uint8_t *out, size_t max, size_t *out_len)
{
    struct renc_p11_mech x;
    struct renc_p11_sess s;
    CK_OBJECT_HANDLE kek;
    int rc = renc_p11_begin(p, versioned, alg, 0, &x, &s, &kek, &p->st.wraps);
    if (rc)
        return rc;
    if (!x.rsa) {
        rc = renc_p11_wrap_aes(p, &s, &x.m, kek, dek, out, max, out_len);
    } else {
        CK_ULONG n = max;
        const char *fn = "C_EncryptInit";
        CK_RV rv = p->f->C_EncryptInit(s.h, &x.m, kek);
        if (rv == CKR_OK) {
            rv = p->f->C_Encrypt(s.h, dek->bytes, dek->len, out, &n);
            fn = "C_Encrypt";
        }
        if ((rc = renc_p11_fail(p, fn, rv)) == 0)
            *out_len = n;
    }
    renc_p11_release(p, &s, rc);
    renc_p11_forget(p, versioned, rc);
    return rc;
}

static int renc_p11_unwrap_aes(struct renc_p11 *p, struct renc_p11_sess *s, CK_MECHANISM *m,
                               CK_OBJECT_HANDLE kek, const uint8_t *wrapped, size_t wrapped_len,
                               struct renc_key **dek)
{
    /* The DEK is a session object read once and destroyed at once. */
    CK_ATTRIBUTE tpl[6];
    CK_OBJECT_HANDLE obj;
    CK_RV rv = p->f->C_UnwrapKey(s->h, m, kek, (CK_BYTE_PTR)wrapped, wrapped_len, tpl,
                                 renc_p11_dek_template(tpl, NULL), &obj);
    if (rv != CKR_OK)
        return renc_p11_fail(p, "C_UnwrapKey", rv);
    struct renc_key *k = renc_key_new(64);
    int rc = k ? 0 : -RENC_E_NOMEM;
    CK_ATTRIBUTE a = {CKA_VALUE, k ? k->bytes : NULL, 64};
    if (rc == 0 && (rv = p->f->C_GetAttributeValue(s->h, obj, &a, 1)) != CKR_OK)
        rc = renc_p11_fail(p, "C_GetAttributeValue", rv);
    p->f->C_DestroyObject(s->h, obj);
    if (rc == 0 && a.ulValueLen != 32)
        rc = -RENC_E_UNWRAP; /* a DEK is an AES-256 key, as the RSA path checks */
    if (rc == 0) {
        k->len = a.ulValueLen;
        *dek = k;
    } else {
        renc_key_free(k);
    }
    return rc;
}

static int renc_p11_unwrap_rsa(struct renc_p11 *p, struct renc_p11_sess *s, CK_MECHANISM *m,
                               CK_OBJECT_HANDLE kek, const uint8_t *wrapped, size_t wrapped_len,
                               struct renc_key **dek)
{
    /* PROTOCOLS.md 5.3: the output buffer is at least the modulus, else
     * CKR_BUFFER_TOO_SMALL leaves the operation active. */
    struct renc_key *k = renc_key_new(RENC_MAX_WRAPPED_LEN);
    RENC_RETURN_IF(!k, -RENC_E_NOMEM);
    CK_ULONG n = k->len;
    CK_RV rv = p->f->C_DecryptInit(s->h, m, kek);
    const char *fn = "C_DecryptInit";
    if (rv == CKR_OK) {
        rv = p->f->C_Decrypt(s->h, (CK_BYTE_PTR)wrapped, wrapped_len, k->bytes, &n);
        fn = "C_Decrypt";
    }
    int rc = renc_p11_fail(p, fn, rv);
    if (rc == 0 && n != 32)
        rc = -RENC_E_UNWRAP;
    if (rc == 0) {
        k->len = n;
        *dek = k;
    } else {
        renc_key_free(k);
    }
    return rc;
}

int renc_p11_unwrap(struct renc_p11 *p, const char *versioned, int alg, const uint8_t *wrapped,
                    size_t wrapped_len, struct renc_key **dek)
{
    struct renc_p11_mech x;
    struct renc_p11_sess s;
    CK_OBJECT_HANDLE kek;
    int rc = renc_p11_begin(p, versioned, alg, 1, &x, &s, &kek, &p->st.unwraps);
    if (rc)
        return rc;
    rc = x.rsa ? renc_p11_unwrap_rsa(p, &s, &x.m, kek, wrapped, wrapped_len, dek)
               : renc_p11_unwrap_aes(p, &s, &x.m, kek, wrapped, wrapped_len, dek);
    renc_p11_release(p, &s, rc);
    renc_p11_forget(p, versioned, rc);
    return rc;
}
