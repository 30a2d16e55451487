/* tests/e2e/blob_live.c — the blob client (azure/blob.h) against a live
 * service: Azurite, started by tests/e2e/test_blob_client.sh, which passes
 *   AZURE_STORAGE_CONNECTION_STRING  the dev account, with BlobEndpoint
 *   RENC_BLOB_TEST_BASE              http://127.0.0.1:PORT/devstoreaccount1
 *   RENC_BLOB_TEST_SAS               an account SAS made by the script
 *                                    (Python's hmac, not this client)
 * Each step says what it checks; the first failure ends the run (exit 1). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "azure/blob.h"
#include "common/alloc.h"
#include "common/error.h"
#include "crypto/secmem.h"
#include "net/http.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "blob_live.c:%d: %s failed\n", __LINE__, #cond);             \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)
#define CHECK_RC(expr, want)                                                             \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_ != (want)) {                                                             \
            long st_ = 0;                                                                \
            const char *code_ = c ? renc_blob_last_error(c, &st_) : "";                  \
            fprintf(stderr, "blob_live.c:%d: %s = %d (%s; %s, status %ld), want %d\n", __LINE__, \
                    #expr, rc_, renc_strerror(rc_), code_, st_, (want));                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static char container[64];
static struct renc_blob_conn *c;

static struct renc_blob_account *open_account(const char *url, const char *conn_string)
{
    struct renc_blob_location loc;
    char why[512];
    struct renc_blob_account *a = NULL;
    CHECK(renc_blob_parse_url(url, conn_string, &loc, why, sizeof why) == 0);
    struct renc_blob_account_opts o = {.connection_string = conn_string, .timeout_ms = 20000,
                                       .retries = 1};
    int rc = renc_blob_account_new(&a, &loc, &o, why, sizeof why);
    if (rc)
        fprintf(stderr, "account: %s\n", why);
    CHECK(rc == 0);
    renc_blob_location_cleanup(&loc);
    return a;
}

struct names {
    char name[8][64];
    size_t n;
};

static int collect(void *arg, const struct renc_blob_item *it)
{
    struct names *s = arg;
    CHECK(s->n < 8);
    CHECK(it->etag[0] == '"' && strcmp(it->blob_type, "BlockBlob") == 0);
    snprintf(s->name[s->n++], sizeof s->name[0], "%s", it->name);
    return 0;
}

/* Put Blob of five blobs under p/ and one beside; pages of 2 under p/. */
static void step_list(void)
{
    char name[32], body[16], marker[1024] = "";
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "p/b%d", i);
        snprintf(body, sizeof body, "0123456789");
        CHECK_RC(renc_blob_put(c, container, name, body, 10, NULL, 1, NULL, NULL, NULL), 0);
    }
    CHECK_RC(renc_blob_put(c, container, "q/x", "x", 1, NULL, 0, NULL, NULL, NULL), 0);
    struct names s = {0};
    size_t pages = 0;
    do {
        size_t before = s.n;
        CHECK_RC(renc_blob_list_page(c, container, "p/", marker, 2, 0, collect, &s, marker,
                                     sizeof marker), 0);
        CHECK(s.n - before <= 2);
        pages++;
    } while (marker[0]);
    CHECK(s.n == 5 && pages == 3);
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "p/b%zu", i);
        CHECK(strcmp(s.name[i], name) == 0);
    }
    /* If-None-Match: * on a blob that is there. */
    CHECK_RC(renc_blob_put(c, container, "p/b0", "y", 1, NULL, 1, NULL, NULL, NULL), -RENC_E_CHANGED);
}

/* A version's props and tags flattened to one comparable line: the five
 * content headers, the metadata in name order, the tag count, the tags. */
static void flatten(const struct renc_blob_props *p, const char *tags, char *out, size_t max)
{
    const char *h[] = {p->content_type, p->content_encoding, p->content_language,
                       p->content_disposition, p->cache_control};
    size_t at = 0;
    for (size_t i = 0; i < 5; i++)
        at += (size_t)snprintf(out + at, max - at, "%s|", h[i] ? h[i] : "(none)");
    char done[16] = {0};
    CHECK(p->meta_count < sizeof done);
    for (size_t k = 0; k < p->meta_count; k++) {
        size_t m = SIZE_MAX;
        for (size_t i = 0; i < p->meta_count; i++)
            if (!done[i] && (m == SIZE_MAX || strcmp(p->meta_names[i], p->meta_names[m]) < 0))
                m = i;
        done[m] = 1;
        at += (size_t)snprintf(out + at, max - at, "%s=%s|", p->meta_names[m], p->meta_values[m]);
    }
    snprintf(out + at, max - at, "%u|%s", p->tag_count, tags ? tags : "(not listed)");
    CHECK(strlen(out) < max - 1);
}

struct listed {
    char name[4][64], line[4][2048], etag[4][RENC_BLOB_ETAG_MAX];
    int tags_listed[4];
    size_t n;
};

static int collect_props(void *arg, const struct renc_blob_item *it)
{
    struct listed *l = arg;
    CHECK(l->n < 4 && it->props);
    snprintf(l->name[l->n], sizeof l->name[0], "%s", it->name);
    snprintf(l->etag[l->n], sizeof l->etag[0], "%s", it->etag);
    l->tags_listed[l->n] = it->tags != NULL;
    flatten(it->props, it->tags, l->line[l->n++], sizeof l->line[0]);
    return 0;
}

/* include=metadata,tags gives what HEAD and Get Blob Tags give: a blob with
 * every content header, metadata and tags (values that need escaping), and
 * one with none. */
static void step_listed_props(void)
{
    char *mn[] = {"owner", "Note"}, *mv[] = {"team a", "x<y & z"};
    struct renc_blob_props set = {
        .content_type = "text/plain; charset=utf-8", .content_encoding = "gzip",
        .content_language = "fr-CA", .content_disposition = "attachment; filename=\"a b.txt\"",
        .cache_control = "no-cache", .meta_names = mn, .meta_values = mv, .meta_count = 2};
    CHECK_RC(renc_blob_put(c, container, "m/full", "full", 4, NULL, 1, &set,
                           "project=a%20b%2Fc%3Dd&k%2B1=", NULL), 0);
    CHECK_RC(renc_blob_put(c, container, "m/none", "none", 4, NULL, 1, NULL, NULL, NULL), 0);
    struct listed l = {0};
    char marker[256], line[2048];
    CHECK_RC(renc_blob_list_page(c, container, "m/", NULL, 0,
                                 RENC_BLOB_LIST_METADATA | RENC_BLOB_LIST_TAGS, collect_props, &l,
                                 marker, sizeof marker), 0);
    CHECK(l.n == 2 && strcmp(l.name[0], "m/full") == 0 && strcmp(l.name[1], "m/none") == 0);
    for (size_t i = 0; i < l.n; i++) {
        struct renc_blob_props p;
        char *tags = NULL;
        CHECK_RC(renc_blob_head(c, container, l.name[i], l.etag[i], &p), 0);
        CHECK_RC(renc_blob_get_tags(c, container, l.name[i], l.etag[i], &tags), 0);
        flatten(&p, l.tags_listed[i] ? tags : NULL, line, sizeof line);
        if (strcmp(line, l.line[i]) != 0)
            fprintf(stderr, "blob_live: %s listed  %s\nblob_live: %s head    %s\n", l.name[i],
                    l.line[i], l.name[i], line);
        CHECK(strcmp(line, l.line[i]) == 0);
        CHECK(l.tags_listed[i]);
        renc_blob_props_cleanup(&p);
        renc_free(tags);
    }
    CHECK(strstr(l.line[0], "|2|project=a%20b%2Fc%3Dd&k%2B1=") != NULL);
}

/* HEAD, ranged reads (past the end too), If-Match both ways. */
static void step_read(void)
{
    struct renc_blob_props p;
    CHECK_RC(renc_blob_head(c, container, "p/b1", NULL, &p), 0);
    CHECK(p.size == 10 && p.etag[0] == '"' && strcmp(p.blob_type, "BlockBlob") == 0);
    char buf[16];
    size_t got;
    CHECK_RC(renc_blob_get_range(c, container, "p/b1", p.etag, 2, buf, 3, &got), 0);
    CHECK(got == 3 && memcmp(buf, "234", 3) == 0);
    CHECK_RC(renc_blob_get_range(c, container, "p/b1", NULL, 8, buf, 10, &got), 0);
    CHECK(got == 2 && memcmp(buf, "89", 2) == 0);
    CHECK_RC(renc_blob_get_range(c, container, "p/b1", NULL, 10, buf, 4, &got), 0);
    CHECK(got == 0);
    CHECK_RC(renc_blob_get_range(c, container, "p/b1", NULL, 1000, buf, 4, &got), 0);
    CHECK(got == 0);
    CHECK_RC(renc_blob_get_range(c, container, "p/b1", "\"0x8D000000000000\"", 0, buf, 4, &got),
             -RENC_E_CHANGED);
    long status;
    CHECK(strcmp(renc_blob_last_error(c, &status), "ConditionNotMet") == 0 && status == 412);
    CHECK_RC(renc_blob_head(c, container, "p/nothing", NULL, &p), -RENC_E_CHANGED);
    renc_blob_props_cleanup(&p);
    /* A name that needs escaping: the signature covers the path as sent. */
    static const char odd[] = "odd name/\xc3\xa9+%2F&=?.bin";
    CHECK_RC(renc_blob_put(c, container, odd, "odd", 3, NULL, 1, NULL, NULL, NULL), 0);
    CHECK_RC(renc_blob_head(c, container, odd, NULL, &p), 0);
    CHECK(p.size == 3);
    renc_blob_props_cleanup(&p);
    struct names s = {0};
    char marker[256];
    CHECK_RC(renc_blob_list_page(c, container, "odd name/", NULL, 0, 0, collect, &s, marker,
                                 sizeof marker), 0);
    CHECK(s.n == 1 && strcmp(s.name[0], odd) == 0);
    CHECK_RC(renc_blob_delete(c, container, odd, NULL), 0);
    CHECK_RC(renc_blob_put(c, container, "empty", "", 0, NULL, 0, NULL, NULL, NULL), 0);
    CHECK_RC(renc_blob_get_range(c, container, "empty", NULL, 0, buf, 4, &got), 0);
    CHECK(got == 0);
}

#define REC 65536
static char ids[4][96];

static void check_content(const char *hdr, size_t hlen, const char *rec)
{
    size_t total = hlen + 2 * REC, got;
    char *buf = malloc(total + 16);
    CHECK(buf);
    CHECK_RC(renc_blob_get_range(c, container, "big", NULL, 0, buf, total + 16, &got), 0);
    CHECK(got == total && memcmp(buf, hdr, hlen) == 0 && memcmp(buf + hlen, rec, 2 * REC) == 0);
    free(buf);
}

/* Blocks staged and committed; then a new header block with the committed
 * record blocks, under If-Match: only the header travels. */
static void step_blocks(void)
{
    char *rec = malloc(2 * REC), etag1[RENC_BLOB_ETAG_MAX], etag2[RENC_BLOB_ETAG_MAX];
    CHECK(rec);
    for (size_t i = 0; i < 2 * REC; i++)
        rec[i] = (char)(i * 7 + 3);
    CHECK_RC(renc_blob_block_id("hdr", 0, ids[0]), 0);
    CHECK_RC(renc_blob_block_id("rec", 0, ids[1]), 0);
    CHECK_RC(renc_blob_block_id("rec", 1, ids[2]), 0);
    CHECK_RC(renc_blob_block_id("hdr", 1, ids[3]), 0);
    CHECK_RC(renc_blob_put_block(c, container, "big", ids[0], "header-one!", 11), 0);
    CHECK_RC(renc_blob_put_block(c, container, "big", ids[1], rec, REC), 0);
    CHECK_RC(renc_blob_put_block(c, container, "big", ids[2], rec + REC, REC), 0);
    char *meta_n[] = {"purpose", "b"}, *meta_v[] = {"test", "two"};
    struct renc_blob_props props = {.content_type = "application/x-test",
                                    .cache_control = "no-cache", .meta_names = meta_n,
                                    .meta_values = meta_v, .meta_count = 2};
    char *first[] = {ids[0], ids[1], ids[2]};
    CHECK_RC(renc_blob_put_block_list(c, container, "big", first, 3, 3, NULL, 1, &props,
                                      "k1=v1&k2=v%202", etag1), 0);
    check_content("header-one!", 11, rec);
    /* What a rewrap carries over: the properties, metadata and tags. */
    struct renc_blob_props p;
    char *tags;
    CHECK_RC(renc_blob_head(c, container, "big", etag1, &p), 0);
    CHECK(strcmp(p.etag, etag1) == 0 && p.size == 11 + 2 * REC);
    CHECK(p.content_type && strcmp(p.content_type, "application/x-test") == 0);
    CHECK(p.cache_control && strcmp(p.cache_control, "no-cache") == 0);
    CHECK(p.meta_count == 2 && p.tag_count == 2);
    CHECK_RC(renc_blob_get_tags(c, container, "big", NULL, &tags), 0);
    CHECK(strcmp(tags, "k1=v1&k2=v%202") == 0);
    uint64_t sent = renc_blob_conn_bytes_sent(c);
    CHECK_RC(renc_blob_put_block(c, container, "big", ids[3], "header-number-two!", 18), 0);
    char *second[] = {ids[3], ids[1], ids[2]};
    CHECK_RC(renc_blob_put_block_list(c, container, "big", second, 3, 1, etag1, 0, &p, tags,
                                      etag2), 0);
    uint64_t delta = renc_blob_conn_bytes_sent(c) - sent;
    CHECK(delta >= 18 && delta < 18 + 512); /* the header and the block list, no record */
    CHECK(strcmp(etag1, etag2) != 0);
    check_content("header-number-two!", 18, rec);
    struct renc_blob_block *bl;
    size_t n;
    CHECK_RC(renc_blob_block_list(c, container, "big", etag2, &bl, &n), 0);
    CHECK(n == 3 && bl[0].size == 18 && bl[1].size == REC && bl[2].size == REC);
    CHECK(strcmp(bl[0].id, ids[3]) == 0);
    renc_free(bl);
    struct renc_blob_props q;
    CHECK_RC(renc_blob_head(c, container, "big", NULL, &q), 0);
    CHECK(q.content_type && strcmp(q.content_type, "application/x-test") == 0);
    CHECK(q.meta_count == 2 && q.tag_count == 2);
    renc_blob_props_cleanup(&q);
    /* The first commit's ETag is stale now. */
    CHECK_RC(renc_blob_put_block_list(c, container, "big", first, 3, 0, etag1, 0, &p, tags, NULL),
             -RENC_E_CHANGED);
    CHECK_RC(renc_blob_delete(c, container, "big", etag1), -RENC_E_CHANGED);
    CHECK_RC(renc_blob_delete(c, container, "big", etag2), 0);
    CHECK_RC(renc_blob_head(c, container, "big", NULL, &q), -RENC_E_CHANGED);
    renc_blob_props_cleanup(&p);
    renc_free(tags);
    free(rec);
}

/* A block past libcurl's 1 MiB Expect: 100-continue threshold, read back
 * whole and by its last bytes. */
static void step_large(void)
{
    size_t n = 3 * 1024 * 1024 + 1, got;
    char *data = malloc(n), *back = malloc(n), id[96];
    CHECK(data && back);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i ^ (i >> 11));
    CHECK_RC(renc_blob_block_id("large", 0, id), 0);
    CHECK_RC(renc_blob_put_block(c, container, "large", id, data, n), 0);
    char *ids1[] = {id};
    CHECK_RC(renc_blob_put_block_list(c, container, "large", ids1, 1, 1, NULL, 1, NULL, NULL, NULL),
             0);
    CHECK_RC(renc_blob_get_range(c, container, "large", NULL, 0, back, n, &got), 0);
    CHECK(got == n && memcmp(back, data, n) == 0);
    CHECK_RC(renc_blob_get_range(c, container, "large", NULL, n - 5, back, 100, &got), 0);
    CHECK(got == 5 && memcmp(back, data + n - 5, 5) == 0);
    free(data);
    free(back);
}

/* A SAS in the URL (no Authorization header), and a wrong key. */
static void step_auth(const char *base, const char *conn_string)
{
    const char *sas = getenv("RENC_BLOB_TEST_SAS");
    char url[4096];
    struct renc_blob_conn *keep = c;
    if (sas && sas[0]) {
        snprintf(url, sizeof url, "%s/%s?%s", base, container, sas);
        struct renc_blob_account *a = open_account(url, NULL);
        CHECK(renc_blob_account_auth(a) == RENC_BLOB_AUTH_SAS);
        CHECK_RC(renc_blob_conn_new(&c, a), 0);
        struct names s = {0};
        char marker[256];
        CHECK_RC(renc_blob_list_page(c, container, "p/", NULL, 0, 0, collect, &s, marker,
                                     sizeof marker), 0);
        CHECK(s.n == 5 && marker[0] == '\0');
        CHECK_RC(renc_blob_put(c, container, "sas-made", "s", 1, NULL, 0, NULL, NULL, NULL), 0);
        char buf[4];
        size_t got;
        CHECK_RC(renc_blob_get_range(c, container, "sas-made", NULL, 0, buf, 4, &got), 0);
        CHECK(got == 1 && buf[0] == 's');
        renc_blob_conn_free(c);
        renc_blob_account_free(a);
    } else {
        fprintf(stderr, "blob_live: no RENC_BLOB_TEST_SAS, the SAS step is skipped\n");
    }
    /* The dev account with another (valid base64) key: refused. */
    snprintf(url, sizeof url, "%s/%s", base, container);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s;AccountKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", conn_string);
    struct renc_blob_account *a = open_account(url, bad);
    CHECK_RC(renc_blob_conn_new(&c, a), 0);
    struct renc_blob_props p;
    CHECK_RC(renc_blob_head(c, container, "p/b0", NULL, &p), -RENC_E_STORE_AUTH);
    renc_blob_conn_free(c);
    renc_blob_account_free(a);
    c = keep;
}

static void step_misc(void)
{
    char marker[64];
    CHECK_RC(renc_blob_list_page(c, "no-such-container", NULL, NULL, 0, 0, NULL, NULL, marker,
                                 sizeof marker), -RENC_E_STORE_NOT_FOUND);
    long status;
    CHECK(strcmp(renc_blob_last_error(c, &status), "ContainerNotFound") == 0 && status == 404);
    struct renc_blob_retention r;
    CHECK_RC(renc_blob_retention(c, container, "p/", &r), 0);
    CHECK(r.soft_delete != 1); /* Azurite keeps nothing deleted */
    fprintf(stderr, "blob_live: retention soft_delete=%d old_versions=%" PRId64
                    " deleted=%" PRId64 "\n", r.soft_delete, r.old_versions, r.deleted);
}

int main(void)
{
    const char *conn_string = getenv("AZURE_STORAGE_CONNECTION_STRING");
    const char *base = getenv("RENC_BLOB_TEST_BASE");
    if (!conn_string || !base) {
        fprintf(stderr, "blob_live: AZURE_STORAGE_CONNECTION_STRING and RENC_BLOB_TEST_BASE "
                        "are needed (tests/e2e/test_blob_client.sh sets them)\n");
        return 77;
    }
    CHECK(renc_secmem_init() == 0 && renc_http_global_init() == 0);
    snprintf(container, sizeof container, "live-%ld", (long)getpid());
    char url[1024];
    snprintf(url, sizeof url, "%s/%s/some/prefix", base, container);
    struct renc_blob_account *a = open_account(url, conn_string);
    CHECK(renc_blob_account_auth(a) == RENC_BLOB_AUTH_SHARED_KEY);
    CHECK_RC(renc_blob_conn_new(&c, a), 0);
    CHECK_RC(renc_blob_create_container(c, container), 0);
    CHECK_RC(renc_blob_create_container(c, container), 0); /* already there: fine */
    step_list();
    step_read();
    step_listed_props();
    step_blocks();
    step_large();
    step_auth(base, conn_string);
    step_misc();
    struct renc_retry_stats st;
    renc_blob_account_stats(a, &st);
    CHECK(st.requests > 20 && st.retries == 0);
    renc_blob_conn_free(c);
    renc_blob_account_free(a);
    fprintf(stderr, "blob_live: all steps passed (%" PRIu64 " requests)\n", st.requests);
    return 0;
}
