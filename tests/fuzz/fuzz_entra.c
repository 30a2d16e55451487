/* tests/fuzz/fuzz_entra.c — what the Entra token pieces read from outside
 * (azure/entra_internal.h): the Azure CLI's `az account get-access-token`
 * output, and the authority and tenant joined into a token URL.
 *
 * Input: the first byte selects the parser (mod 2), the rest is the text.
 * Checks (abort() if not):
 *   - accepted az output gives a non-empty token of at most
 *     RENC_ENTRA_TOKEN_MAX characters, without blanks or quotes, held in a
 *     key whose length counts its NUL, and a positive expiry;
 *   - a token URL (text = AUTHORITY '\n' TENANT) is the authority without
 *     its trailing slashes, one '/', the tenant and "/oauth2/v2.0/token";
 *     the tenant holds no '/', and the URL ends where it should.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "azure/entra_internal.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void fuzz_cli(const char *s, size_t n)
{
    struct renc_key *tok = NULL;
    int64_t at = 0;
    int rc = renc_entra_cli_parse(s, n, &tok, &at);
    check(rc == 0 || rc == -RENC_E_VAULT_AUTH || rc == -RENC_E_NOMEM);
    if (rc != 0) {
        check(tok == NULL);
        return;
    }
    const char *t = (const char *)tok->bytes;
    size_t len = strlen(t);
    check(len > 0 && len <= RENC_ENTRA_TOKEN_MAX && tok->len == len + 1);
    check(strcspn(t, " \t\r\n\"") == len);
    check(at > 0);
    renc_key_free(tok);
}

static void fuzz_url(char *s)
{
    char *nl = strchr(s, '\n');
    if (!nl)
        return;
    *nl = '\0';
    const char *authority = s, *tenant = nl + 1;
    char url[512];
    if (renc_entra_token_url(url, sizeof url, authority, tenant) != 0)
        return;
    size_t alen = strlen(authority);
    while (alen > 0 && authority[alen - 1] == '/')
        alen--;
    check(alen > 0 && strchr(tenant, '/') == NULL && tenant[0] != '\0');
    check(strncmp(url, authority, alen) == 0 && url[alen] == '/');
    check(url[alen - 1] != '/');
    check(strncmp(url + alen + 1, tenant, strlen(tenant)) == 0);
    check(strcmp(url + alen + 1 + strlen(tenant), "/oauth2/v2.0/token") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] % 2 == 0)
        fuzz_cli(s, size - 1);
    else
        fuzz_url(s);
    free(s);
    return 0;
}
