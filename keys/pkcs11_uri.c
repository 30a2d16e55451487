/* keys/pkcs11_uri.c — pkcs11: key references (RFC 7512) through p11-kit's
 * URI parser (pkcs11.h).  The canonical text is p11-kit's own formatting,
 * so two spellings of one object compare equal as text. */
#include "keys/pkcs11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* The query attributes the tool reads; any other (pin-value= above all:
 * a PIN is never part of a reference) is refused. */
static int renc_pkcs11_query_ok(const char *s)
{
    const char *q = strchr(s, '?');
    while (q && *q) {
        q++;
        size_t n = strcspn(q, "=&");
        if (!((n == 11 && strncmp(q, "module-path", n) == 0) ||
              (n == 10 && strncmp(q, "pin-source", n) == 0)))
            return 0;
        q = strchr(q, '&');
    }
    return 1;
}

void renc_p11_hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    out[2 * n] = '\0';
}

int renc_p11_unhex(uint8_t *out, size_t max, size_t *out_len, const char *hex)
{
    size_t n = strlen(hex) / 2;
    RENC_RETURN_IF(n > max || strlen(hex) % 2, -RENC_E_INVALID);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        RENC_RETURN_IF(sscanf(hex + 2 * i, "%2x", &v) != 1, -RENC_E_INVALID);
        out[i] = (uint8_t)v;
    }
    *out_len = n;
    return 0;
}

/* The URI's fields into r; u is parsed. */
static int renc_pkcs11_fields(struct renc_keyref *r, P11KitUri *u)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
    CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(u, CKA_LABEL);
    CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(u, CKA_ID);
    CK_ATTRIBUTE *cls = p11_kit_uri_get_attribute(u, CKA_CLASS);
    RENC_RETURN_IF(p11_kit_uri_any_unrecognized(u) || p11_kit_uri_get_pin_value(u),
                   -RENC_E_BAD_KEYREF);
    RENC_RETURN_IF(ti->label[0] == 0 || ti->label[0] == ' ', -RENC_E_BAD_KEYREF);
    RENC_RETURN_IF(!label || label->ulValueLen == 0 || label->ulValueLen > RENC_KEY_NAME_MAX,
                   -RENC_E_BAD_KEYREF);
    memcpy(r->name, label->pValue, label->ulValueLen);
    r->name[label->ulValueLen] = '\0';
    RENC_RETURN_IF(strlen(r->name) != label->ulValueLen, -RENC_E_BAD_KEYREF);
    if (cls) {
        CK_OBJECT_CLASS c = *(CK_OBJECT_CLASS *)cls->pValue;
        RENC_RETURN_IF(c != CKO_SECRET_KEY && c != CKO_PRIVATE_KEY, -RENC_E_BAD_KEYREF);
    }
    if (id) {
        RENC_RETURN_IF(id->ulValueLen == 0 || id->ulValueLen > RENC_P11_ID_MAX,
                       -RENC_E_BAD_KEYREF);
        renc_p11_hex(r->version, id->pValue, id->ulValueLen);
    }
    return 0;
}

static int renc_pkcs11_text(char *out, size_t max, P11KitUri *u)
{
    char *s = NULL;
    RENC_RETURN_IF(p11_kit_uri_format(u, P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK,
                   -RENC_E_BAD_KEYREF);
    int rc = strlen(s) < max ? 0 : -RENC_E_BAD_KEYREF;
    if (rc == 0)
        strcpy(out, s);
    free(s);
    return rc;
}

int renc_pkcs11_ref_parse(struct renc_keyref *out, const char *s)
{
    struct renc_keyref r;
    memset(&r, 0, sizeof r);
    r.provider = RENC_PROVIDER_PKCS11;
    RENC_RETURN_IF(strlen(s) > RENC_MAX_REF_LEN || !renc_pkcs11_query_ok(s), -RENC_E_BAD_KEYREF);
    P11KitUri *u = p11_kit_uri_new();
    RENC_RETURN_IF(!u, -RENC_E_NOMEM);
    int rc = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, u) == P11_KIT_URI_OK ? 0
                                                                            : -RENC_E_BAD_KEYREF;
    if (rc == 0)
        rc = renc_pkcs11_fields(&r, u);
    if (rc == 0) {
        p11_kit_uri_clear_attribute(u, CKA_ID);
        rc = renc_pkcs11_text(r.vault, sizeof r.vault, u);
    }
    p11_kit_uri_free(u);
    if (rc == 0)
        *out = r;
    return rc;
}

int renc_pkcs11_ref_format(char *out, size_t max_out, const struct renc_keyref *r)
{
    uint8_t id[RENC_P11_ID_MAX];
    size_t n = 0;
    int rc = renc_p11_unhex(id, sizeof id, &n, r->version);
    if (rc)
        return rc;
    P11KitUri *u = p11_kit_uri_new();
    RENC_RETURN_IF(!u, -RENC_E_NOMEM);
    rc = p11_kit_uri_parse(r->vault, P11_KIT_URI_FOR_ANY, u) == P11_KIT_URI_OK ? 0
                                                                         : -RENC_E_INVALID;
    CK_ATTRIBUTE a = {CKA_ID, id, n};
    if (rc == 0 && n && p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
        rc = -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_pkcs11_text(out, max_out, u) ? -RENC_E_TOO_BIG : 0;
    p11_kit_uri_free(u);
    return rc;
}
