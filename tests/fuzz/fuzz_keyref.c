/* tests/fuzz/fuzz_keyref.c — key references (keys/keyref.h): the parser
 * every slot, policy and command-line ref goes through, and "the same key".
 *
 * Input: two refs separated by the first NUL (the second may be empty).
 * Checks (abort() if not):
 *   - an accepted ref formats back to a text that parses to the same ref,
 *     and to itself again (canonical form is a fixed point);
 *   - same_key and same_version are reflexive and symmetric, and
 *     same_version implies same_key;
 *   - the vault origin is idempotent and never longer than the vault.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys/keyref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int parse_round_trip(const char *s, struct renc_keyref *r)
{
    if (renc_keyref_parse(r, s) != 0)
        return 0;
    char text[2048], again[2048];
    struct renc_keyref r2;
    check(renc_keyref_format(text, sizeof text, r) == 0);
    check(renc_keyref_parse(&r2, text) == 0);
    check(memcmp(r, &r2, sizeof r2) == 0);
    check(renc_keyref_format(again, sizeof again, &r2) == 0 && strcmp(text, again) == 0);
    check(renc_keyref_same_key(r, r) && renc_keyref_same_version(r, r));
    if (r->provider == RENC_PROVIDER_AKV) {
        char o1[RENC_VAULT_MAX + 1], o2[RENC_VAULT_MAX + 1];
        check(renc_keyref_vault_origin(o1, sizeof o1, r->vault) == 0);
        check(strlen(o1) <= strlen(r->vault));
        check(renc_keyref_vault_origin(o2, sizeof o2, o1) == 0 && strcmp(o1, o2) == 0);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 2);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = s[size + 1] = '\0';
    const char *b = s + strlen(s) + 1;
    if (b > s + size)
        b = s + size;
    struct renc_keyref ra, rb;
    int a_ok = parse_round_trip(s, &ra), b_ok = parse_round_trip(b, &rb);
    if (a_ok && b_ok) {
        int sk = renc_keyref_same_key(&ra, &rb), sv = renc_keyref_same_version(&ra, &rb);
        check(sk == renc_keyref_same_key(&rb, &ra));
        check(sv == renc_keyref_same_version(&rb, &ra));
        check(!sv || sk);
        check(sv == renc_keyref_text_same_version(s, b));
    }
    free(s);
    return 0;
}
