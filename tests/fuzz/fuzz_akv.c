/* tests/fuzz/fuzz_akv.c — what the akv provider reads from a key vault and
 * its token endpoints, fed as-is: the 401 challenge, vault error bodies,
 * KeyBundles, and base64url values (azure/challenge.h, keys/akv_internal.h).
 *
 * Input: first byte selects the parser (mod 4), the rest is the text.
 * Checks (abort() if not):
 *   - an accepted challenge has a tenant, a scope ending "/.default" or
 *     given, and a resource whose host is the vault's;
 *   - every error maps to one of the domain's key or vault errors;
 *   - an accepted KeyBundle names the key asked for, versioned, with a type
 *     whose default algorithm fits it;
 *   - a decoded base64url value encodes back to the same text (without
 *     padding), and decodes again to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "azure/challenge.h"
#include "keys/akv_internal.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void fuzz_challenge(const char *s)
{
    struct renc_azure_challenge c;
    if (renc_azure_parse_challenge(s, "myvault.vault.azure.net", &c) != 0)
        return;
    check(c.tenant[0] != '\0' && c.scope[0] != '\0' && c.resource[0] != '\0');
    check(strstr(c.resource, "://") != NULL);
}

static void fuzz_error(const char *s, size_t n)
{
    static const char *const ops[] = {"get", "wrapkey", "unwrapkey", "list"};
    for (size_t i = 0; i < 4; i++) {
        for (long st = 400; st <= 404; st++) {
            char code[130];
            int rc = renc_akv_map_error(ops[i], st, s, n, (int)(n & 1), code, sizeof code);
            check(rc == -RENC_E_KEY_NOT_FOUND || rc == -RENC_E_KEY_DISABLED ||
                  rc == -RENC_E_KEY_OP || rc == -RENC_E_KEY_EXPIRED ||
                  rc == -RENC_E_KEY_REVOKED || rc == -RENC_E_UNWRAP || rc == -RENC_E_VAULT ||
                  rc == -RENC_E_KEY_DELETED || rc == -RENC_E_VAULT_DENIED);
            /* Only a 403 can lock environments, only a 404 delete a key. */
            check(rc != -RENC_E_KEY_REVOKED || st == 403);
            check(rc != -RENC_E_KEY_DELETED || st == 404);
            check(strlen(code) < sizeof code);
        }
    }
}

static void fuzz_bundle(const char *s, size_t n)
{
    struct renc_keyref asked, got;
    struct renc_akv_key k;
    if (renc_keyref_parse(&asked, "akv:https://myvault.vault.azure.net/keys/kek1") != 0)
        abort();
    if (renc_akv_parse_key_json(&asked, s, n, &k) != 0)
        return;
    check(renc_keyref_parse(&got, k.ref) == 0 && got.version[0] != '\0');
    check(renc_keyref_same_key(&got, &asked));
    if (k.kty)
        check(renc_akv_alg_fits(&k, renc_akv_default_alg(&k)));
}

static void fuzz_b64(const char *s)
{
    uint8_t bytes[1100], again[1100];
    char text[1600];
    size_t len, len2;
    if (renc_b64url_decode(bytes, sizeof bytes, &len, s) != 0)
        return;
    check(renc_b64url_encode(text, sizeof text, bytes, len) == 0);
    check(renc_b64url_decode(again, sizeof again, &len2, text) == 0);
    check(len2 == len && memcmp(bytes, again, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0: fuzz_challenge(s); break;
    case 1: fuzz_error(s, strlen(s)); break;
    case 2: fuzz_bundle(s, strlen(s)); break;
    default: fuzz_b64(s); break;
    }
    free(s);
    return 0;
}
