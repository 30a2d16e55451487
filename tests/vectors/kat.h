/* tests/vectors/kat.h — reads the known-answer files in this folder.
 *
 * A file is a list of records separated by "Name = ..." lines; every other
 * line is "Field = hex" (an empty value is a zero-length string), a comment
 * starting with '#', or blank.  Unit tests include this header (the files
 * are found through RENC_VECTORS_DIR) so that the vectors stay data, with
 * their sources named beside them, rather than hex strings in C.
 *
 * Test-only code: it uses plain malloc so that it never disturbs the
 * allocation counters of common/alloc.h that the tests check.
 */
#ifndef RENC_TESTS_KAT_H
#define RENC_TESTS_KAT_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KAT_MAX_FIELDS 12
#define KAT_MAX_LINE 4096

struct kat_field {
    char name[32];
    uint8_t *val; /* never NULL for a present field, even when len is 0 */
    size_t len;
};

struct kat {
    char name[64];
    size_t n;
    struct kat_field f[KAT_MAX_FIELDS];
};

static inline void kat_free(struct kat *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->f[i].val);
    memset(k, 0, sizeof(*k));
}

static inline int kat_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static inline char *kat_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* kat_load: fills *k with record `name` of RENC_VECTORS_DIR/file.  Returns 0,
 * or -1 when the file cannot be read, is malformed, or lacks the record. */
static inline int kat_load(struct kat *k, const char *file, const char *name)
{
    char path[1024];
    char line[KAT_MAX_LINE];
    int in_record = 0, found = 0, bad = 0;

    memset(k, 0, sizeof(*k));
    snprintf(path, sizeof(path), "%s/%s", RENC_VECTORS_DIR, file);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    while (!bad && fgets(line, sizeof(line), fp)) {
        char *s = kat_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            bad = 1;
            break;
        }
        *eq = '\0';
        char *key = kat_trim(s), *val = kat_trim(eq + 1);
        if (strcmp(key, "Name") == 0) {
            if (found)
                break;
            in_record = strcmp(val, name) == 0;
            if (in_record) {
                found = 1;
                snprintf(k->name, sizeof(k->name), "%s", val);
            }
            continue;
        }
        if (!in_record)
            continue;
        size_t hexlen = strlen(val);
        if (k->n == KAT_MAX_FIELDS || hexlen % 2 != 0 || strlen(key) >= sizeof(k->f[0].name)) {
            bad = 1;
            break;
        }
        struct kat_field *f = &k->f[k->n++];
        snprintf(f->name, sizeof(f->name), "%s", key);
        f->len = hexlen / 2;
        f->val = malloc(f->len ? f->len : 1);
        if (!f->val) {
            bad = 1;
            break;
        }
        for (size_t i = 0; i < f->len; i++) {
            int hi = kat_hexval(val[2 * i]), lo = kat_hexval(val[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                bad = 1;
                break;
            }
            f->val[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    fclose(fp);
    if (bad || !found) {
        kat_free(k);
        return -1;
    }
    return 0;
}

/* kat_get: the bytes of `field` and their length, or NULL when absent. */
static inline const uint8_t *kat_get(const struct kat *k, const char *field, size_t *len)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->f[i].name, field) == 0) {
            *len = k->f[i].len;
            return k->f[i].val;
        }
    }
    *len = 0;
    return NULL;
}

#endif
