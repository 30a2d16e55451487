/* tests/fuzz/fuzz_tmpname.c — the temporary-name rule (io/tmpname.h), which
 * decides what the tool may delete.
 *
 * Input: a base name (bytes up to the first NUL, at most NAME_MAX).
 * Checks (abort() if not):
 *   - parse and reserved agree;
 *   - a reserved name starts with '.', ends in ".renc-tmp." and a tag of 8
 *     to 32 characters of [0-9a-z], and make(NAME, TAG) rebuilds it exactly;
 *   - final() of "d/NAME-as-given" is "d/" + the parsed NAME;
 *   - make() with the input as the final name and a valid tag gives a
 *     reserved name whose parse gives the input back (when it fits).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/tmpname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int renc_is_tag_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char base[NAME_MAX + 1];
    size_t n = size < NAME_MAX ? size : NAME_MAX;
    memcpy(base, data, n);
    base[n] = '\0';
    char tag[RENC_TMP_TAG_MAX + 1], name[NAME_MAX + 1];
    int r = renc_tmpname_parse(base, tag, sizeof tag, name, sizeof name);
    if (r != renc_tmpname_reserved(base))
        abort();
    if (r) {
        size_t tl = strlen(tag), len = strlen(base);
        if (base[0] != '.' || tl < RENC_TMP_TAG_MIN || tl > RENC_TMP_TAG_MAX || !name[0])
            abort();
        for (size_t i = 0; i < tl; i++)
            if (!renc_is_tag_char(tag[i]))
                abort();
        size_t ml = strlen(RENC_TMP_MARKER);
        if (len < tl + ml || strncmp(base + len - tl - ml, RENC_TMP_MARKER, ml) != 0 ||
            strcmp(base + len - tl, tag) != 0)
            abort();
        char again[NAME_MAX + 64];
        if (renc_tmpname_make(again, sizeof again, name, tag) == 0 && strcmp(again, base) != 0)
            abort();
        char path[NAME_MAX + 8], final[NAME_MAX + 8];
        memcpy(path, "d/", 2);
        memcpy(path + 2, base, len + 1);
        if (renc_tmpname_final(path, final, sizeof final) != 0 || strncmp(final, "d/", 2) != 0 ||
            strcmp(final + 2, name) != 0)
            abort();
    }
    if (!strchr(base, '/')) {
        char made[NAME_MAX + 64];
        int mrc = renc_tmpname_make(made, sizeof made, base, "0123456789abcdef");
        if (!base[0] && mrc == 0)
            abort(); /* an empty name has no temporary */
        if (mrc == 0) {
            if (!renc_tmpname_parse(made, tag, sizeof tag, name, sizeof name) ||
                strcmp(tag, "0123456789abcdef") != 0 || strcmp(name, base) != 0)
                abort();
        }
    }
    return 0;
}
