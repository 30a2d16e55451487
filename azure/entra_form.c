/* azure/entra_form.c — the token URL of an authority and the
 * client-credentials form (docs/KEYVAULT.md, "Credentials"). */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "azure/entra_internal.h"
#include "net/http.h"

int renc_entra_token_url(char *out, size_t max, const char *authority, const char *tenant)
{
    RENC_RETURN_IF(!authority || !tenant || !tenant[0], -RENC_E_INVALID);
    RENC_RETURN_IF(strpbrk(tenant, "/?#% \t\r\n") != NULL, -RENC_E_INVALID);
    size_t alen = strlen(authority);
    /* "https://host/" -> "https://host": the path is joined with one '/'. */
    while (alen > 0 && authority[alen - 1] == '/')
        alen--;
    RENC_RETURN_IF(alen == 0, -RENC_E_INVALID);
    int n = snprintf(out, max, "%.*s/%s/oauth2/v2.0/token", (int)alen, authority, tenant);
    RENC_RETURN_IF(n < 0 || (size_t)n >= max, -RENC_E_TOO_BIG);
    return 0;
}

#define RENC_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

int renc_entra_form(struct renc_key **out, const char *client_id, const char *scope,
                    const struct renc_key *secret, int assertion)
{
    char escope[1024], eid[512], etype[128];
    int rc;
    if ((rc = renc_http_escape(escope, sizeof escope, scope)) ||
        (rc = renc_http_escape(eid, sizeof eid, client_id)) ||
        (rc = renc_http_escape(etype, sizeof etype, RENC_ASSERTION_TYPE)))
        return rc;
    /* Every byte of the credential may become %XX. */
    size_t cred_len = strlen((const char *)secret->bytes);
    size_t cap = 3 * cred_len + strlen(escope) + strlen(eid) + strlen(etype) + 160;
    struct renc_key *form = renc_key_new(cap);
    RENC_RETURN_IF(!form, -RENC_E_NOMEM);
    int n = assertion
                ? snprintf((char *)form->bytes, cap,
                           "grant_type=client_credentials&client_id=%s&scope=%s"
                           "&client_assertion_type=%s&client_assertion=",
                           eid, escope, etype)
                : snprintf((char *)form->bytes, cap,
                           "grant_type=client_credentials&client_id=%s&scope=%s&client_secret=",
                           eid, escope);
    rc = n < 0 || (size_t)n >= cap ? -RENC_E_TOO_BIG
                                   : renc_http_escape((char *)form->bytes + n, cap - (size_t)n,
                                                      (const char *)secret->bytes);
    if (rc) {
        renc_key_free(form);
        return rc;
    }
    *out = form;
    return 0;
}
