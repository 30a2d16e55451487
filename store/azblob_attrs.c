/* store/azblob_attrs.c — a listed version's props and tags in one string.
 *
 * The form, one field a line (no value the service sends holds a line
 * break; one that would is not carried):
 *   "1 TAG_COUNT TAGS_LISTED META_COUNT"
 *   content type, encoding, language, disposition, cache control ("": unset)
 *   META_COUNT pairs of lines: name, value
 *   the tags ("k=v&..." URL-encoded), when TAGS_LISTED is 1
 */
#include "store/azblob_attrs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

static void renc_azb_attrs_headers(const struct renc_blob_props *p, const char *h[5])
{
    h[0] = p->content_type;
    h[1] = p->content_encoding;
    h[2] = p->content_language;
    h[3] = p->content_disposition;
    h[4] = p->cache_control;
}

/* Appends v and a line break at *at (room counted by the caller). */
static void renc_azb_attrs_line(char *out, size_t *at, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    memcpy(out + *at, v ? v : "", n);
    out[*at + n] = '\n';
    *at += n + 1;
}

int renc_azb_attrs_make(char **out, const struct renc_blob_props *p, const char *tags)
{
    *out = NULL;
    if (!p)
        return 0;
    const char *h[5];
    renc_azb_attrs_headers(p, h);
    size_t len = 64 + (tags ? strlen(tags) + 1 : 0);
    for (size_t i = 0; i < 5; i++)
        len += (h[i] ? strlen(h[i]) : 0) + 1;
    for (size_t i = 0; i < p->meta_count; i++)
        len += strlen(p->meta_names[i]) + strlen(p->meta_values[i]) + 2;
    for (size_t i = 0; i < 5; i++)
        if (h[i] && strchr(h[i], '\n'))
            return 0;
    for (size_t i = 0; i < p->meta_count; i++)
        if (strchr(p->meta_names[i], '\n') || strchr(p->meta_values[i], '\n'))
            return 0;
    if (tags && strchr(tags, '\n'))
        return 0;
    char *s = renc_malloc(len + 1);
    RENC_RETURN_IF(!s, -RENC_E_NOMEM);
    size_t at = (size_t)snprintf(s, 64, "1 %u %d %zu\n", p->tag_count, tags != NULL,
                                 p->meta_count);
    for (size_t i = 0; i < 5; i++)
        renc_azb_attrs_line(s, &at, h[i]);
    for (size_t i = 0; i < p->meta_count; i++) {
        renc_azb_attrs_line(s, &at, p->meta_names[i]);
        renc_azb_attrs_line(s, &at, p->meta_values[i]);
    }
    if (tags)
        renc_azb_attrs_line(s, &at, tags);
    s[at] = '\0';
    *out = s;
    return 0;
}

/* The next line of *s into *out (malloc'd; NULL for "" when empty_null). */
static int renc_azb_attrs_take(const char **s, char **out, int empty_null)
{
    const char *nl = strchr(*s, '\n');
    RENC_RETURN_IF(!nl, -RENC_E_INVALID);
    size_t n = (size_t)(nl - *s);
    *out = NULL;
    if (n || !empty_null) {
        *out = renc_malloc(n + 1);
        RENC_RETURN_IF(!*out, -RENC_E_NOMEM);
        memcpy(*out, *s, n);
        (*out)[n] = '\0';
    }
    *s = nl + 1;
    return 0;
}

static int renc_azb_attrs_parse(const char *s, struct renc_blob_props *p, char **tags)
{
    unsigned tag_count;
    int listed, used = 0;
    size_t meta;
    if (sscanf(s, "1 %u %d %zu\n%n", &tag_count, &listed, &meta, &used) != 3 || !used ||
        meta > RENC_BLOB_META_MAX || (listed != 0 && listed != 1))
        return -RENC_E_INVALID;
    s += used;
    p->tag_count = tag_count;
    char **slot[] = {&p->content_type, &p->content_encoding, &p->content_language,
                     &p->content_disposition, &p->cache_control};
    int rc = 0;
    for (size_t i = 0; i < 5 && !rc; i++)
        rc = renc_azb_attrs_take(&s, slot[i], 1);
    if (!rc && meta) {
        p->meta_names = renc_calloc(meta, sizeof *p->meta_names);
        p->meta_values = renc_calloc(meta, sizeof *p->meta_values);
        rc = p->meta_names && p->meta_values ? 0 : -RENC_E_NOMEM;
    }
    while (!rc && p->meta_count < meta) {
        size_t i = p->meta_count++; /* counted first: a half-made pair is cleaned up too */
        rc = renc_azb_attrs_take(&s, &p->meta_names[i], 0);
        if (!rc)
            rc = renc_azb_attrs_take(&s, &p->meta_values[i], 0);
    }
    if (!rc && listed)
        rc = renc_azb_attrs_take(&s, tags, 0);
    if (!rc && *s)
        rc = -RENC_E_INVALID;
    return rc;
}

int renc_azb_attrs_read(const char *attrs, struct renc_blob_props *p, char **tags)
{
    memset(p, 0, sizeof *p);
    *tags = NULL;
    int rc = renc_azb_attrs_parse(attrs, p, tags);
    if (rc) {
        renc_blob_props_cleanup(p);
        renc_free(*tags);
        *tags = NULL;
    }
    return rc;
}
