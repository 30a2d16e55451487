/* azure/blob_xml.c — the service's XML answers read with expat as they
 * stream (../shared/PROTOCOLS.md 3.1, 3.3): List Blobs (one item at a time:
 * memory stays one item whatever the page), Get Block List, Get Blob Tags,
 * an Error's Code, the service properties' DeleteRetentionPolicy.
 *
 * A listed blob's content headers, metadata and tags (include=metadata,tags)
 * are held for that one item, within the service's own limits
 * (RENC_BLOB_META_MAX bytes of metadata, RENC_BLOB_TAGS_MAX tags): a page
 * of 5,000 items costs one item's memory.
 *
 * Only the elements named below are read, each at its full path from the
 * root (text kept up to RENC_BLOB_XML_TEXT bytes); anything else is
 * skipped.  A DOCTYPE is refused (no entities, no expansion), as is a root
 * other than the answer's, nesting past RENC_BLOB_XML_DEPTH, and any
 * malformed XML: -RENC_E_STORE. */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/blob_internal.h"
#include "common/alloc.h"
#include "common/error.h"

#define RENC_BLOB_XML_DEPTH 32
#define RENC_BLOB_XML_PATH 512
#define RENC_BLOB_XML_TEXT 4096 /* a blob name is at most 1024 characters */
/* A metadata value may take all of the metadata's bytes. */
#define RENC_BLOB_XML_META_TEXT (RENC_BLOB_META_MAX + 1)

/* The fields one element at a path fills. */
enum renc_blob_field {
    F_NONE,
    F_NEXT_MARKER, F_NAME, F_SIZE, F_ETAG, F_TYPE, F_DELETED, F_VERSION, F_CURRENT, /* LIST */
    F_CTYPE, F_CENC, F_CLANG, F_CDISP, F_CACHE, F_TAG_COUNT, F_META,   /* LIST with props */
    F_BLOCK_NAME, F_BLOCK_SIZE,                                              /* BLOCKS */
    F_TAG_KEY, F_TAG_VALUE,                                                  /* TAGS */
    F_CODE,                                                                  /* ERROR */
    F_RETENTION,                                                             /* SERVICE */
};

static const struct {
    enum renc_blob_xml_kind kind;
    const char *path;
    enum renc_blob_field field;
} renc_blob_paths[] = {
    {RENC_BLOB_XML_LIST, "/EnumerationResults/NextMarker", F_NEXT_MARKER},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Name", F_NAME},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Content-Length", F_SIZE},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Etag", F_ETAG},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/BlobType", F_TYPE},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Content-Type", F_CTYPE},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Content-Encoding", F_CENC},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Content-Language", F_CLANG},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Content-Disposition",
     F_CDISP},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/Cache-Control", F_CACHE},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Properties/TagCount", F_TAG_COUNT},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Tags/TagSet/Tag/Key", F_TAG_KEY},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Tags/TagSet/Tag/Value", F_TAG_VALUE},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/Deleted", F_DELETED},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/VersionId", F_VERSION},
    {RENC_BLOB_XML_LIST, "/EnumerationResults/Blobs/Blob/IsCurrentVersion", F_CURRENT},
    {RENC_BLOB_XML_BLOCKS, "/BlockList/CommittedBlocks/Block/Name", F_BLOCK_NAME},
    {RENC_BLOB_XML_BLOCKS, "/BlockList/CommittedBlocks/Block/Size", F_BLOCK_SIZE},
    {RENC_BLOB_XML_TAGS, "/Tags/TagSet/Tag/Key", F_TAG_KEY},
    {RENC_BLOB_XML_TAGS, "/Tags/TagSet/Tag/Value", F_TAG_VALUE},
    {RENC_BLOB_XML_ERROR, "/Error/Code", F_CODE},
    {RENC_BLOB_XML_SERVICE, "/StorageServiceProperties/DeleteRetentionPolicy/Enabled",
     F_RETENTION},
};

/* The element that closes a record: a blob, a block, a tag. */
static const char *const renc_blob_record[] = {
    [RENC_BLOB_XML_LIST] = "/EnumerationResults/Blobs/Blob",
    [RENC_BLOB_XML_BLOCKS] = "/BlockList/CommittedBlocks/Block",
    [RENC_BLOB_XML_TAGS] = "/Tags/TagSet/Tag",
    [RENC_BLOB_XML_ERROR] = NULL,
    [RENC_BLOB_XML_SERVICE] = NULL,
};

/* Where a listed blob's metadata and tags lie. */
#define RENC_BLOB_XML_META "/EnumerationResults/Blobs/Blob/Metadata"
#define RENC_BLOB_XML_LTAG "/EnumerationResults/Blobs/Blob/Tags/TagSet/Tag"

static const char *const renc_blob_root[] = {
    [RENC_BLOB_XML_LIST] = "EnumerationResults", [RENC_BLOB_XML_BLOCKS] = "BlockList",
    [RENC_BLOB_XML_TAGS] = "Tags", [RENC_BLOB_XML_ERROR] = "Error",
    [RENC_BLOB_XML_SERVICE] = "StorageServiceProperties",
};

struct renc_blob_xml {
    XML_Parser p;
    enum renc_blob_xml_kind kind;
    struct renc_blob_xml_result *res;
    int rc;
    unsigned depth;
    size_t plen[RENC_BLOB_XML_DEPTH + 1];
    char path[RENC_BLOB_XML_PATH];
    enum renc_blob_field field; /* of the element whose text is being read */
    char text[RENC_BLOB_XML_META_TEXT];
    size_t tlen;
    /* The record being read. */
    char *name, *key, *value; /* key, value: of a tag */
    char etag[RENC_BLOB_ETAG_MAX], type[16];
    uint64_t size;
    int have_size, deleted, has_version, current;
    struct renc_blob_props props; /* LIST with include: content headers, metadata */
    size_t meta_bytes;
    int meta_unusable;            /* a name that cannot be sent back */
    char *tags;                   /* LIST with include=tags: "k=v&..." */
    unsigned ntags;
    size_t blocks_cap;
};

static void renc_blob_xml_fail(struct renc_blob_xml *x, int rc)
{
    if (!x->rc)
        x->rc = rc;
    XML_StopParser(x->p, XML_FALSE);
}

static int renc_blob_xml_number(const char *s, uint64_t *out)
{
    if (!*s)
        return -RENC_E_STORE;
    uint64_t v = 0;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - d) / 10)
            return -RENC_E_STORE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int renc_blob_xml_dup(char **slot, const char *s)
{
    renc_free(*slot);
    *slot = renc_strdup(s);
    return *slot ? 0 : -RENC_E_NOMEM;
}

static void renc_blob_xml_record_reset(struct renc_blob_xml *x)
{
    renc_free(x->name);
    renc_free(x->key);
    renc_free(x->value);
    x->name = x->key = x->value = NULL;
    x->etag[0] = x->type[0] = '\0';
    x->size = 0;
    x->have_size = x->deleted = x->has_version = x->current = 0;
    renc_blob_props_cleanup(&x->props);
    renc_free(x->tags);
    x->tags = NULL;
    x->meta_bytes = 0;
    x->meta_unusable = 0;
    x->ntags = 0;
}

/* A listed content header: "" (the service lists unset ones empty) is
 * unset, as a HEAD without the header. */
static int renc_blob_xml_header(char **slot, const char *t)
{
    renc_free(*slot);
    *slot = NULL;
    return t[0] ? renc_blob_xml_dup(slot, t) : 0;
}

/* One <Metadata> child: its element name (the path's last part) and text.
 * A name that is no identifier (the service's x-ms-invalid-name stands for
 * one it could not send) cannot be carried in an x-ms-meta- header. */
static int renc_blob_xml_meta(struct renc_blob_xml *x, const char *t)
{
    const char *name = x->path + sizeof RENC_BLOB_XML_META;
    size_t nl = strlen(name), tl = strlen(t);
    RENC_RETURN_IF(nl + tl > RENC_BLOB_META_MAX - x->meta_bytes, -RENC_E_STORE);
    x->meta_bytes += nl + tl;
    for (size_t i = 0; i < nl; i++)
        if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
              (name[i] >= 'A' && name[i] <= 'Z') || (i && name[i] >= '0' && name[i] <= '9')))
            x->meta_unusable = 1;
    return renc_blob_props_add_meta(&x->props, name, nl, t, tl);
}

/* An element's text, read whole, into its field. */
static int renc_blob_xml_field(struct renc_blob_xml *x, const char *t)
{
    struct renc_blob_xml_result *r = x->res;
    switch (x->field) {
    case F_NEXT_MARKER: return renc_blob_xml_dup(&r->next_marker, t);
    case F_NAME:
    case F_BLOCK_NAME: return renc_blob_xml_dup(&x->name, t);
    case F_TAG_KEY: return renc_blob_xml_dup(&x->key, t);
    case F_TAG_VALUE: return renc_blob_xml_dup(&x->value, t);
    case F_CTYPE: return renc_blob_xml_header(&x->props.content_type, t);
    case F_CENC: return renc_blob_xml_header(&x->props.content_encoding, t);
    case F_CLANG: return renc_blob_xml_header(&x->props.content_language, t);
    case F_CDISP: return renc_blob_xml_header(&x->props.content_disposition, t);
    case F_CACHE: return renc_blob_xml_header(&x->props.cache_control, t);
    case F_TAG_COUNT: {
        uint64_t n = 0;
        int rc = renc_blob_xml_number(t, &n);
        RENC_RETURN_IF(rc || n > RENC_BLOB_TAGS_MAX, -RENC_E_STORE);
        x->props.tag_count = (unsigned)n;
        return 0;
    }
    case F_META: return renc_blob_xml_meta(x, t);
    case F_SIZE:
    case F_BLOCK_SIZE: x->have_size = 1; return renc_blob_xml_number(t, &x->size);
    case F_ETAG: {
        int q = t[0] == '"';
        int n = snprintf(x->etag, sizeof x->etag, q ? "%s" : "\"%s\"", t);
        return n < 0 || (size_t)n >= sizeof x->etag ? -RENC_E_STORE : 0;
    }
    case F_TYPE:
        RENC_RETURN_IF(strlen(t) >= sizeof x->type, -RENC_E_STORE);
        memcpy(x->type, t, strlen(t) + 1);
        return 0;
    case F_DELETED: x->deleted = strcmp(t, "true") == 0; return 0;
    case F_VERSION: x->has_version = t[0] != '\0'; return 0;
    case F_CURRENT: x->current = strcmp(t, "true") == 0; return 0;
    case F_CODE: {
        size_t n = strlen(t) < sizeof r->code - 1 ? strlen(t) : sizeof r->code - 1;
        memcpy(r->code, t, n);
        r->code[n] = '\0';
        return 0;
    }
    case F_RETENTION: r->soft_delete = strcmp(t, "true") == 0; return 0;
    default: return 0;
    }
}

static int renc_blob_xml_blob(struct renc_blob_xml *x)
{
    struct renc_blob_xml_result *r = x->res;
    RENC_RETURN_IF(!x->name, -RENC_E_STORE);
    if (x->has_version && !x->current)
        r->old_versions++;
    if (x->deleted)
        r->deleted++;
    r->items++;
    if (!r->item)
        return 0;
    struct renc_blob_item it = {x->name, x->size, x->etag, x->type, NULL, NULL};
    if ((r->include & RENC_BLOB_LIST_METADATA) && !x->meta_unusable) {
        struct renc_blob_props *p = &x->props;
        memcpy(p->etag, x->etag, sizeof p->etag);
        memcpy(p->blob_type, x->type, sizeof p->blob_type);
        p->size = x->size;
        it.props = p;
    }
    if (r->include & RENC_BLOB_LIST_TAGS)
        it.tags = x->tags ? x->tags : "";
    return r->item(r->arg, &it);
}

static int renc_blob_xml_block(struct renc_blob_xml *x)
{
    struct renc_blob_xml_result *r = x->res;
    RENC_RETURN_IF(!x->name || !x->have_size, -RENC_E_STORE);
    RENC_RETURN_IF(strlen(x->name) >= sizeof r->blocks[0].id, -RENC_E_STORE);
    if (r->nblocks == x->blocks_cap) {
        RENC_RETURN_IF(r->nblocks >= 100000, -RENC_E_STORE); /* past the service's limits */
        size_t cap = x->blocks_cap ? x->blocks_cap * 2 : 16;
        struct renc_blob_block *b = renc_realloc(r->blocks, cap * sizeof *b);
        RENC_RETURN_IF(!b, -RENC_E_NOMEM);
        r->blocks = b;
        x->blocks_cap = cap;
    }
    struct renc_blob_block *b = &r->blocks[r->nblocks++];
    memset(b, 0, sizeof *b);
    memcpy(b->id, x->name, strlen(x->name) + 1);
    b->size = x->size;
    return 0;
}

/* A tag as "k=v", URL-encoded, appended to *tags with '&'. */
static int renc_blob_xml_tag(struct renc_blob_xml *x, char **tags)
{
    RENC_RETURN_IF(!x->key, -RENC_E_STORE);
    char *k = NULL, *v = NULL;
    int rc = renc_url_escape(&k, x->key, 0);
    if (!rc)
        rc = renc_url_escape(&v, x->value ? x->value : "", 0);
    size_t old = *tags ? strlen(*tags) : 0;
    char *t = rc ? NULL : renc_realloc(*tags, old + strlen(k) + strlen(v) + 3);
    if (!rc && !t)
        rc = -RENC_E_NOMEM;
    if (!rc) {
        sprintf(t + old, "%s%s=%s", old ? "&" : "", k, v);
        *tags = t;
    }
    renc_free(k);
    renc_free(v);
    renc_free(x->key);
    renc_free(x->value);
    x->key = x->value = NULL;
    return rc;
}

/* A listed blob's tag, within the service's limit on their number. */
static int renc_blob_xml_list_tag(struct renc_blob_xml *x)
{
    RENC_RETURN_IF(++x->ntags > RENC_BLOB_TAGS_MAX, -RENC_E_STORE);
    return renc_blob_xml_tag(x, &x->tags);
}

static void XMLCALL renc_blob_xml_start_el(void *arg, const XML_Char *el, const XML_Char **attr)
{
    (void)attr;
    struct renc_blob_xml *x = arg;
    if (x->rc) /* stopped: expat may still hand over the rest of a tag */
        return;
    size_t n = strlen(el);
    if (x->depth == 0 && strcmp(el, renc_blob_root[x->kind]) != 0)
        return renc_blob_xml_fail(x, -RENC_E_STORE);
    if (x->depth >= RENC_BLOB_XML_DEPTH || x->plen[x->depth] + n + 2 > sizeof x->path)
        return renc_blob_xml_fail(x, -RENC_E_STORE);
    size_t at = x->plen[x->depth];
    x->path[at] = '/';
    memcpy(x->path + at + 1, el, n + 1);
    x->plen[++x->depth] = at + 1 + n;
    x->field = F_NONE;
    x->tlen = 0;
    for (size_t i = 0; i < sizeof renc_blob_paths / sizeof renc_blob_paths[0]; i++)
        if (renc_blob_paths[i].kind == x->kind && strcmp(renc_blob_paths[i].path, x->path) == 0)
            x->field = renc_blob_paths[i].field;
    if (x->kind == RENC_BLOB_XML_LIST && at == sizeof RENC_BLOB_XML_META - 1 &&
        memcmp(x->path, RENC_BLOB_XML_META, at) == 0)
        x->field = F_META;
    else if (x->kind == RENC_BLOB_XML_LIST && at > sizeof RENC_BLOB_XML_META &&
             memcmp(x->path, RENC_BLOB_XML_META "/", sizeof RENC_BLOB_XML_META) == 0)
        return renc_blob_xml_fail(x, -RENC_E_STORE); /* a metadata value is text only */
    const char *rec = renc_blob_record[x->kind];
    if (rec && strcmp(rec, x->path) == 0)
        renc_blob_xml_record_reset(x);
}

static void XMLCALL renc_blob_xml_text(void *arg, const XML_Char *s, int len)
{
    struct renc_blob_xml *x = arg;
    if (x->rc || x->field == F_NONE)
        return;
    size_t max = x->field == F_META ? RENC_BLOB_XML_META_TEXT : RENC_BLOB_XML_TEXT;
    if ((size_t)len >= max - x->tlen)
        return renc_blob_xml_fail(x, -RENC_E_STORE);
    memcpy(x->text + x->tlen, s, (size_t)len);
    x->tlen += (size_t)len;
}

static void XMLCALL renc_blob_xml_end_el(void *arg, const XML_Char *el)
{
    (void)el;
    struct renc_blob_xml *x = arg;
    if (x->rc)
        return;
    int rc = 0;
    if (x->field != F_NONE) {
        x->text[x->tlen] = '\0';
        rc = renc_blob_xml_field(x, x->text);
        x->field = F_NONE;
    }
    const char *rec = renc_blob_record[x->kind];
    if (!rc && rec && strcmp(rec, x->path) == 0) {
        rc = x->kind == RENC_BLOB_XML_LIST     ? renc_blob_xml_blob(x)
             : x->kind == RENC_BLOB_XML_BLOCKS ? renc_blob_xml_block(x)
                                               : renc_blob_xml_tag(x, &x->res->tags);
        renc_blob_xml_record_reset(x);
    } else if (!rc && x->kind == RENC_BLOB_XML_LIST && strcmp(x->path, RENC_BLOB_XML_LTAG) == 0) {
        rc = renc_blob_xml_list_tag(x);
    }
    if (rc)
        return renc_blob_xml_fail(x, rc);
    x->path[x->plen[--x->depth]] = '\0';
}

static void XMLCALL renc_blob_xml_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                                          const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    renc_blob_xml_fail(arg, -RENC_E_STORE); /* no entities of any kind */
}

int renc_blob_xml_new(struct renc_blob_xml **out, enum renc_blob_xml_kind kind,
                      struct renc_blob_xml_result *res)
{
    *out = NULL;
    RENC_RETURN_IF(kind < RENC_BLOB_XML_LIST || kind > RENC_BLOB_XML_SERVICE, -RENC_E_INVALID);
    struct renc_blob_xml *x = renc_calloc(1, sizeof *x);
    RENC_RETURN_IF(!x, -RENC_E_NOMEM);
    x->p = XML_ParserCreate("UTF-8");
    if (!x->p) {
        renc_free(x);
        return -RENC_E_NOMEM;
    }
    x->kind = kind;
    x->res = res;
    if (kind == RENC_BLOB_XML_SERVICE)
        res->soft_delete = -1;
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, renc_blob_xml_start_el, renc_blob_xml_end_el);
    XML_SetCharacterDataHandler(x->p, renc_blob_xml_text);
    XML_SetStartDoctypeDeclHandler(x->p, renc_blob_xml_doctype);
    *out = x;
    return 0;
}

static int renc_blob_xml_parse(struct renc_blob_xml *x, const char *data, size_t len, int final)
{
    RENC_RETURN_IF(!x, -RENC_E_STORE);
    RENC_RETURN_IF(x->rc, x->rc);
    while (len || final) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len;
        int last = final && (size_t)n == len;
        if (XML_Parse(x->p, data, n, last) != XML_STATUS_OK) {
            if (!x->rc)
                x->rc = -RENC_E_STORE;
            return x->rc;
        }
        data += n;
        len -= (size_t)n;
        if (last)
            break;
    }
    return x->rc;
}

int renc_blob_xml_feed(struct renc_blob_xml *x, const void *data, size_t len)
{
    return renc_blob_xml_parse(x, data, len, 0);
}

int renc_blob_xml_finish(struct renc_blob_xml *x)
{
    return renc_blob_xml_parse(x, "", 0, 1); /* not NULL: the loop steps the pointer */
}

void renc_blob_xml_free(struct renc_blob_xml *x)
{
    if (!x)
        return;
    XML_ParserFree(x->p);
    renc_blob_xml_record_reset(x);
    renc_free(x);
}

void renc_blob_xml_result_cleanup(struct renc_blob_xml_result *res)
{
    renc_free(res->next_marker);
    renc_free(res->blocks);
    renc_free(res->tags);
    memset(res, 0, sizeof *res);
}
