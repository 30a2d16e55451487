/* keys/pkcs11_manage.c — key management inside the token: a new version
 * generated there (never extractable), a version's unwrap and wrap
 * attributes set or cleared (pkcs11.h). */
#include "keys/pkcs11_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"

struct renc_p11_gen {
    const struct renc_keyref *ref;
    int create;
    enum renc_kek_type type;
    unsigned bits;
    char *versioned;
    size_t max;
};

/* The next CKA_ID: the highest plus one, as a big-endian number (one byte
 * longer when it carries out); 01 for a key's first version. */
static size_t renc_p11_next_id(uint8_t *id, const uint8_t *top, size_t n)
{
    if (n == 0) {
        id[0] = 1;
        return 1;
    }
    memcpy(id + 1, top, n);
    id[0] = 0;
    for (size_t i = n; i > 0; i--)
        if (++id[i] != 0)
            break;
    if (id[0] == 0 && id[1] != 0) {
        memmove(id, id + 1, n);
        return n;
    }
    id[0] = 1;
    return n + 1;
}

static int renc_p11_gen_aes(struct renc_p11 *p, struct renc_p11_sess *s, const char *label,
                            const uint8_t *id, size_t id_len)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tpl[] = {
        {CKA_CLASS, &cls, sizeof cls},       {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &len, sizeof len},   {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},     {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},   {CKA_WRAP, &yes, sizeof yes},
        {CKA_UNWRAP, &yes, sizeof yes},      {CKA_ENCRYPT, &no, sizeof no},
        {CKA_DECRYPT, &no, sizeof no},       {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h;
    return renc_p11_fail(p, "C_GenerateKey",
                         p->f->C_GenerateKey(s->h, &m, tpl, sizeof tpl / sizeof tpl[0], &h));
}

static int renc_p11_gen_rsa(struct renc_p11 *p, struct renc_p11_sess *s, const char *label,
                            const uint8_t *id, size_t id_len, unsigned bits)
{
    CK_ULONG mbits = bits;
    CK_BYTE e[] = {1, 0, 1};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof yes},   {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_WRAP, &yes, sizeof yes},    {CKA_VERIFY, &no, sizeof no},
        {CKA_MODULUS_BITS, &mbits, sizeof mbits}, {CKA_PUBLIC_EXPONENT, e, sizeof e},
        {CKA_LABEL, (void *)label, strlen(label)}, {CKA_ID, (void *)id, id_len},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_DECRYPT, &yes, sizeof yes},   {CKA_UNWRAP, &yes, sizeof yes},
        {CKA_SIGN, &no, sizeof no},        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hp, hk;
    return renc_p11_fail(p, "C_GenerateKeyPair",
                         p->f->C_GenerateKeyPair(s->h, &m, pub, sizeof pub / sizeof pub[0], priv,
                                                 sizeof priv / sizeof priv[0], &hp, &hk));
}

static int renc_p11_gen_one(struct renc_p11 *p, struct renc_p11_sess *s,
                            const struct renc_keyref *ref, struct renc_p11_obj *v, size_t n,
                            void *arg)
{
    struct renc_p11_gen *g = arg;
    RENC_RETURN_IF(g->create && n, -RENC_E_KEY_EXISTS);
    RENC_RETURN_IF(!g->create && !n, -RENC_E_KEY_NOT_FOUND);
    enum renc_kek_type type = g->type;
    unsigned bits = g->bits;
    if (!g->create) { /* a rotation keeps the current version's type */
        struct renc_p11_key cur;
        int rc = renc_p11_describe(p, s, ref, &v[n - 1], &cur);
        if (rc)
            return rc;
        type = cur.type;
        bits = cur.bits;
    }
    uint8_t id[RENC_P11_ID_MAX + 1];
    size_t id_len = renc_p11_next_id(id, n ? v[n - 1].id : NULL, n ? v[n - 1].id_len : 0);
    RENC_RETURN_IF(id_len > RENC_P11_ID_MAX, -RENC_E_TOO_BIG);
    int rc = type == RENC_KEK_RSA ? renc_p11_gen_rsa(p, s, ref->name, id, id_len, bits)
                                  : renc_p11_gen_aes(p, s, ref->name, id, id_len);
    if (rc)
        return rc;
    struct renc_keyref r = *ref;
    renc_p11_hex(r.version, id, id_len);
    return renc_keyref_format(g->versioned, g->max, &r);
}

int renc_p11_generate(struct renc_p11 *p, const struct renc_keyref *ref, int create,
                      enum renc_kek_type type, unsigned bits, char *versioned, size_t max)
{
    struct renc_p11_gen g = {ref, create, type, bits, versioned, max};
    RENC_RETURN_IF(ref->version[0], -RENC_E_BAD_KEYREF);
    renc_p11_key_forget(p);
    int rc = renc_p11_with_versions(p, ref, renc_p11_gen_one, &g);
    renc_p11_key_forget(p); /* the current version changed */
    return rc;
}

/* The attributes that let an object of cls take part in wraps. */
static int renc_p11_set_obj(struct renc_p11 *p, struct renc_p11_sess *s, CK_OBJECT_HANDLE h,
                            CK_OBJECT_CLASS cls, int enabled)
{
    CK_BBOOL v = enabled ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE_TYPE t1 = cls == CKO_SECRET_KEY ? CKA_UNWRAP
                           : cls == CKO_PRIVATE_KEY ? CKA_DECRYPT : CKA_ENCRYPT;
    CK_ATTRIBUTE_TYPE t2 = cls == CKO_SECRET_KEY ? CKA_WRAP
                           : cls == CKO_PRIVATE_KEY ? CKA_UNWRAP : CKA_WRAP;
    CK_ATTRIBUTE a[] = {{t1, &v, sizeof v}, {t2, &v, sizeof v}};
    CK_RV rv = p->f->C_SetAttributeValue(s->h, h, a, 2);
    if (rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ACTION_PROHIBITED) {
        renc_p11_note(p, "pkcs11: the token does not let %s change: disable the key at the "
                         "token, or withdraw access there",
                      cls == CKO_SECRET_KEY ? "CKA_UNWRAP" : "CKA_DECRYPT");
        return -RENC_E_UNSUPPORTED;
    }
    return renc_p11_fail(p, "C_SetAttributeValue", rv);
}

static int renc_p11_set_one(struct renc_p11 *p, struct renc_p11_sess *s,
                            const struct renc_keyref *ref, struct renc_p11_obj *v, size_t n,
                            void *arg)
{
    int enabled = *(int *)arg;
    char hex[RENC_KEY_VERSION_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        renc_p11_hex(hex, v[i].id, v[i].id_len);
        if (strcmp(hex, ref->version) != 0)
            continue;
        int rc = renc_p11_set_obj(p, s, v[i].h, v[i].cls, enabled);
        CK_OBJECT_HANDLE pub;
        CK_ULONG got = 0;
        if (rc == 0 && v[i].cls == CKO_PRIVATE_KEY &&
            renc_p11_find(p, s, ref->name, CKO_PUBLIC_KEY, v[i].id, v[i].id_len, &pub, 1,
                          &got) == 0 && got)
            rc = renc_p11_set_obj(p, s, pub, CKO_PUBLIC_KEY, enabled);
        return rc;
    }
    return -RENC_E_KEY_NOT_FOUND;
}

int renc_p11_set_enabled(struct renc_p11 *p, const struct renc_keyref *versioned, int enabled)
{
    RENC_RETURN_IF(!versioned->version[0], -RENC_E_UNSUPPORTED);
    int rc = renc_p11_with_versions(p, versioned, renc_p11_set_one, &enabled);
    renc_p11_key_forget(p);
    return rc;
}
