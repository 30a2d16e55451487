/* tests/unit/test_blob.c — the blob client's pieces that need no service
 * (azure/blob_*.c, net/url.c): SharedKey signing against the worked example
 * of ../shared/PROTOCOLS.md 3.2 (its signature computed independently with
 * Python's hmac), the URL forms and their refusals, redaction, connection
 * strings, the credential order, block ids, and the XML answers fed in
 * pieces of every size.  The requests themselves are tested against Azurite
 * (tests/e2e/test_blob_client.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "azure/blob_internal.h"
#include "common/error.h"
#include "tests/unit/leakcheck.h"

#define DEV_CONN "UseDevelopmentStorage=true"
#define SIGNED_EXAMPLE                                                                      \
    "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Mon, 23 Nov 2026 15:14:24 GMT\nx-ms-version:2025-01-05\n" \
    "/devstoreaccount1/devstoreaccount1/kek-test\ncomp:list\nmarker:dir/a.bin\nmaxresults:1\n"   \
    "prefix:dir/\nrestype:container"
/* python3: base64(hmac.new(b64decode(DEV_KEY), SIGNED_EXAMPLE, sha256)) */
#define SIGNED_EXAMPLE_SIG "XnkxJ4lxVCAkTRmHLYG4o8CJBijVB0XSgKn62jpUZ6I="

static void test_blob_shared_key_known_answer(void **state)
{
    (void)state;
    char sig[64];
    assert_int_equal(renc_blob_shared_key_sign(RENC_BLOB_DEV_KEY, SIGNED_EXAMPLE, sig, sizeof sig), 0);
    assert_string_equal(sig, SIGNED_EXAMPLE_SIG);
    assert_int_equal(renc_blob_shared_key_sign("not base64!", "x", sig, sizeof sig),
                     -RENC_E_INVALID);
    assert_int_equal(renc_blob_shared_key_sign(RENC_BLOB_DEV_KEY, "x", sig, 10), -RENC_E_TOO_BIG);
}

/* The request a List Blobs page makes gives the example's text to sign,
 * and the account's Authorization carries its signature. */
static void test_blob_string_to_sign_matches_example(void **state)
{
    (void)state;
    struct renc_blob_location loc;
    struct renc_blob_account *a;
    struct renc_blob_account_opts o = {.connection_string = DEV_CONN};
    assert_int_equal(renc_blob_parse_url("http://127.0.0.1:10000/devstoreaccount1/kek-test", NULL,
                                         &loc, NULL, 0), 0);
    assert_int_equal(renc_blob_account_new(&a, &loc, &o, NULL, 0), 0);
    assert_int_equal(renc_blob_account_auth(a), RENC_BLOB_AUTH_SHARED_KEY);
    struct renc_blob_req req = {.method = "GET", .container = "kek-test"};
    renc_blob_req_query(&req, "restype", "container");
    renc_blob_req_query(&req, "comp", "list");
    renc_blob_req_query(&req, "prefix", "dir/");
    renc_blob_req_query(&req, "marker", "dir/a.bin");
    renc_blob_req_query(&req, "maxresults", "1");
    char *sts = NULL, auth[256];
    assert_int_equal(renc_blob_string_to_sign(a, &req, "/devstoreaccount1/kek-test",
                                              "Mon, 23 Nov 2026 15:14:24 GMT", &sts), 0);
    assert_string_equal(sts, SIGNED_EXAMPLE);
    assert_int_equal(renc_blob_authorization(a, sts, auth, sizeof auth), 0);
    assert_string_equal(auth, "SharedKey devstoreaccount1:" SIGNED_EXAMPLE_SIG);
    renc_free(sts);
    /* A PUT with a body, conditions and x-ms headers: their slots. */
    struct renc_blob_req put = {.method = "PUT", .container = "c", .name = "b", .body = "abc",
                                .body_len = 3, .has_body = 1, .if_match = "\"0x1\""};
    renc_blob_req_header(&put, "x-ms-meta-Zeta", " z ");
    renc_blob_req_header(&put, "x-ms-blob-type", "BlockBlob");
    assert_int_equal(renc_blob_string_to_sign(a, &put, "/devstoreaccount1/c/b", "D", &sts), 0);
    assert_string_equal(sts, "PUT\n\n\n3\n\n\n\n\n\"0x1\"\n\n\n\nx-ms-blob-type:BlockBlob\n"
                             "x-ms-date:D\nx-ms-meta-zeta:z\nx-ms-version:2025-01-05\n"
                             "/devstoreaccount1/devstoreaccount1/c/b");
    renc_free(sts);
    renc_blob_account_free(a);
    renc_blob_location_cleanup(&loc);
}

static void expect_url(const char *url, const char *conn, const char *endpoint,
                       const char *account, const char *container, const char *prefix,
                       const char *sas, int path_style)
{
    struct renc_blob_location loc;
    char why[128];
    assert_int_equal(renc_blob_parse_url(url, conn, &loc, why, sizeof why), 0);
    assert_string_equal(loc.endpoint, endpoint);
    assert_string_equal(loc.account, account);
    assert_string_equal(loc.container, container);
    assert_string_equal(loc.prefix, prefix);
    if (sas)
        assert_string_equal(loc.sas, sas);
    else
        assert_null(loc.sas);
    assert_int_equal(loc.path_style, path_style);
    renc_blob_location_cleanup(&loc);
}

static void expect_bad_url(const char *url, const char *why_has)
{
    struct renc_blob_location loc;
    char why[128];
    assert_int_equal(renc_blob_parse_url(url, NULL, &loc, why, sizeof why), -RENC_E_INVALID);
    assert_non_null(strstr(why, why_has));
    assert_null(loc.endpoint);
}

static void test_blob_url_forms(void **state)
{
    (void)state;
    expect_url("https://acct.blob.core.windows.net/c01/dir/sub", NULL,
               "https://acct.blob.core.windows.net", "acct", "c01", "dir/sub", NULL, 0);
    expect_url("https://Acct.blob.core.chinacloudapi.cn/c01", NULL,
               "https://acct.blob.core.chinacloudapi.cn", "acct", "c01", "", NULL, 0);
    expect_url("http://127.0.0.1:10000/devstoreaccount1/c01/p", NULL,
               "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "c01", "p", NULL, 1);
    expect_url("http://localhost:4/acct/c01/", NULL, "http://localhost:4/acct", "acct", "c01", "",
               NULL, 1);
    expect_url("https://acct.blob.core.windows.net/c01/a%20b/%2Fx?sv=1&sig=S%2B", NULL,
               "https://acct.blob.core.windows.net", "acct", "c01", "a b//x", "sv=1&sig=S%2B", 0);
    expect_url("az://acct/c01/x", NULL, "https://acct.blob.core.windows.net", "acct", "c01", "x",
               NULL, 0);
    expect_url("az://devstoreaccount1/c01", DEV_CONN, RENC_BLOB_DEV_ENDPOINT, "devstoreaccount1",
               "c01", "", NULL, 1);
    expect_url("az://acct/c01", "AccountName=other;EndpointSuffix=core.usgovcloudapi.net",
               "https://acct.blob.core.usgovcloudapi.net", "acct", "c01", "", NULL, 0);
    expect_url("az://acct/c01", "AccountName=acct;BlobEndpoint=https://h.example:8443/",
               "https://h.example:8443", "acct", "c01", "", NULL, 0);
    expect_bad_url("https://acct.blob.core.windows.net/", "no container");
    expect_bad_url("https://acct.blob.core.windows.net", "no container");
    expect_bad_url("http://127.0.0.1:10000/devstoreaccount1", "no container");
    expect_bad_url("ftp://acct.blob.core.windows.net/c01", "not a blob URL");
    expect_bad_url("https://acct.blob.core.windows.net/Bad_Name", "container name");
    expect_bad_url("https://acct.blob.core.windows.net/c01/a%zz", "percent-escape");
    expect_bad_url("/local/path", "not a URL");
    assert_true(renc_blob_is_url("HTTPS://x/y"));
    assert_true(renc_blob_is_url("az://a/c"));
    assert_false(renc_blob_is_url("/tmp/x"));
    assert_false(renc_blob_is_url("file:///tmp/x"));
}

static void test_blob_describe_and_redact(void **state)
{
    (void)state;
    struct renc_blob_location loc;
    char out[256];
    assert_int_equal(renc_blob_parse_url("https://a1.blob.core.windows.net/c01/p?sig=SECRET",
                                         NULL, &loc, NULL, 0), 0);
    assert_int_equal(renc_blob_location_describe(&loc, out, sizeof out), 0);
    assert_string_equal(out, "https://a1.blob.core.windows.net/c01/p");
    assert_int_equal(renc_blob_location_describe(&loc, out, 10), -RENC_E_TOO_BIG);
    renc_blob_location_cleanup(&loc);
    assert_int_equal(renc_blob_redact("https://h/c?sv=1&sig=abc%2B&se=2&SIG=x#f", out, sizeof out), 0);
    assert_string_equal(out, "https://h/c?sv=1&sig=REDACTED&se=2&SIG=REDACTED#f");
    assert_int_equal(renc_blob_redact("https://h/c/sig=x", out, sizeof out), 0);
    assert_string_equal(out, "https://h/c/sig=x");
    assert_int_equal(renc_blob_redact("https://h/c?xsig=1&sig=", out, sizeof out), 0);
    assert_string_equal(out, "https://h/c?xsig=1&sig=REDACTED");
    assert_int_equal(renc_blob_redact("https://h/c?sig=abcdef", out, 16), -RENC_E_TOO_BIG);
}

static void test_blob_connection_string(void **state)
{
    (void)state;
    struct renc_blob_connstr cs;
    char *ep;
    assert_int_equal(renc_blob_connstr_parse(&cs, DEV_CONN, NULL, 0), 0);
    assert_string_equal(cs.account, "devstoreaccount1");
    assert_string_equal((const char *)cs.key->bytes, RENC_BLOB_DEV_KEY);
    assert_int_equal(renc_blob_connstr_endpoint(&cs, &ep), 0);
    assert_string_equal(ep, RENC_BLOB_DEV_ENDPOINT);
    renc_free(ep);
    renc_blob_connstr_cleanup(&cs);
    assert_int_equal(renc_blob_connstr_parse(&cs,
        " DefaultEndpointsProtocol=http;AccountName=a1;AccountKey=AAAA==;EndpointSuffix=x.net;;"
        "QueueEndpoint=q", NULL, 0), 0);
    assert_int_equal(renc_blob_connstr_endpoint(&cs, &ep), 0);
    assert_string_equal(ep, "http://a1.blob.x.net");
    renc_free(ep);
    renc_blob_connstr_cleanup(&cs);
    assert_int_equal(renc_blob_connstr_parse(&cs,
        "BlobEndpoint=https://h/;SharedAccessSignature=?sv=1&sig=a=b", NULL, 0), 0);
    assert_null(cs.account);
    assert_string_equal((const char *)cs.sas->bytes, "sv=1&sig=a=b");
    renc_blob_connstr_cleanup(&cs);
    char why[128];
    assert_int_equal(renc_blob_connstr_parse(&cs, "AccountName", why, sizeof why), -RENC_E_INVALID);
    assert_non_null(strstr(why, "Name=value"));
}

static enum renc_blob_auth auth_of(const char *url, const struct renc_blob_account_opts *o, int *rc)
{
    struct renc_blob_location loc;
    struct renc_blob_account *a = NULL;
    char why[512];
    assert_int_equal(renc_blob_parse_url(url, o->connection_string, &loc, NULL, 0), 0);
    *rc = renc_blob_account_new(&a, &loc, o, why, sizeof why);
    enum renc_blob_auth auth = a ? renc_blob_account_auth(a) : 0;
    renc_blob_account_free(a);
    renc_blob_location_cleanup(&loc);
    return auth;
}

static void test_blob_credential_order(void **state)
{
    (void)state;
    int rc;
    struct renc_blob_account_opts o = {.connection_string = DEV_CONN, .sas_token = "?sv=1&sig=x"};
    assert_int_equal(auth_of("http://127.0.0.1:1/devstoreaccount1/c01?sv=1&sig=y", &o, &rc),
                     RENC_BLOB_AUTH_SAS);
    assert_int_equal(auth_of("http://127.0.0.1:1/devstoreaccount1/c01", &o, &rc),
                     RENC_BLOB_AUTH_SHARED_KEY);
    /* The connection string's account is another: the next sources. */
    assert_int_equal(auth_of("https://a1.blob.core.windows.net/c01", &o, &rc), RENC_BLOB_AUTH_SAS);
    struct renc_blob_account_opts k = {.account_name = "a1", .account_key = RENC_BLOB_DEV_KEY};
    assert_int_equal(auth_of("https://a1.blob.core.windows.net/c01", &k, &rc),
                     RENC_BLOB_AUTH_SHARED_KEY);
    k.account_name = "a2";
    assert_int_equal(auth_of("https://a1.blob.core.windows.net/c01", &k, &rc), 0);
    assert_int_equal(rc, -RENC_E_STORE_AUTH);
    struct renc_blob_account_opts bad = {.account_name = "a1", .account_key = "%%%%"};
    assert_int_equal(auth_of("https://a1.blob.core.windows.net/c01", &bad, &rc), 0);
    assert_int_equal(rc, -RENC_E_INVALID);
    struct renc_azure_credentials creds = {.tenant = "t"};
    struct renc_blob_account_opts e = {.entra = &creds};
    assert_int_equal(auth_of("https://a1.blob.core.windows.net/c01", &e, &rc),
                     RENC_BLOB_AUTH_ENTRA);
}

static void test_blob_block_ids_equal_length(void **state)
{
    (void)state;
    char a[96], b[96];
    assert_int_equal(renc_blob_block_id("h", 0, a), 0);
    assert_int_equal(renc_blob_block_id("0123456789abcdef0123456789abcdef", UINT64_MAX, b), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strlen(b), 64);
    assert_string_not_equal(a, b);
    assert_int_equal(renc_blob_block_id("0123456789abcdef0123456789abcdefX", 0, b),
                     -RENC_E_INVALID);
}

static void test_url_split_build_escape(void **state)
{
    (void)state;
    struct renc_url u;
    assert_int_equal(renc_url_split(&u, "HTTP://[::1]:8080/a%2Fb/c?x=1&y"), 0);
    assert_string_equal(u.scheme, "http");
    assert_string_equal(u.host, "[::1]");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.path, "/a%2Fb/c");
    assert_string_equal(u.query, "x=1&y");
    renc_url_cleanup(&u);
    assert_int_equal(renc_url_split(&u, "az://acct"), 0);
    assert_string_equal(u.path, "/");
    assert_null(u.query);
    renc_url_cleanup(&u);
    assert_int_equal(renc_url_split(&u, "no scheme"), -RENC_E_INVALID);
    char *s;
    assert_int_equal(renc_url_build(&s, "https", "h", 0, "/a%20b/./c", "q=%2B"), 0);
    assert_string_equal(s, "https://h/a%20b/./c?q=%2B");
    renc_free(s);
    /* Escapes keep their case: a signature covers the path as sent. */
    assert_int_equal(renc_url_build(&s, "http", "[::1]", 1, "/x%2Fy%C3%A9", "q=%2F"), 0);
    assert_string_equal(s, "http://[::1]:1/x%2Fy%C3%A9?q=%2F");
    renc_free(s);
    assert_int_equal(renc_url_build(&s, "http", "127.0.0.1", 10000, "/x", NULL), 0);
    assert_string_equal(s, "http://127.0.0.1:10000/x");
    renc_free(s);
    assert_int_equal(renc_url_escape(&s, "a b/c+~", 1), 0);
    assert_string_equal(s, "a%20b/c%2B~");
    renc_free(s);
    assert_int_equal(renc_url_escape(&s, "a/b", 0), 0);
    assert_string_equal(s, "a%2Fb");
    renc_free(s);
    assert_int_equal(renc_url_unescape(&s, "a%2fb+c", 7), 0);
    assert_string_equal(s, "a/b+c");
    renc_free(s);
    assert_int_equal(renc_url_unescape(&s, "a%00", 4), -RENC_E_INVALID);
    assert_int_equal(renc_url_unescape(&s, "a%2", 3), -RENC_E_INVALID);
    char *q = NULL;
    assert_int_equal(renc_url_query_add(&q, "a", "x y&z"), 0);
    assert_int_equal(renc_url_query_add(&q, "b", ""), 0);
    assert_string_equal(q, "a=x%20y%26z&b=");
    renc_free(q);
}

static void test_blob_error_map(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *code;
        int want;
    } cases[] = {
        {412, "ConditionNotMet", -RENC_E_CHANGED},
        {404, "BlobNotFound", -RENC_E_CHANGED},
        {404, "ContainerNotFound", -RENC_E_STORE_NOT_FOUND},
        {409, "BlobAlreadyExists", -RENC_E_CHANGED},
        {409, "LeaseIdMissing", -RENC_E_STORE},
        {401, "", -RENC_E_STORE_AUTH},
        {403, "AuthorizationFailure", -RENC_E_STORE_AUTH},
        {503, "ServerBusy", -RENC_E_STORE_BUSY},
        {500, "OperationTimedOut", -RENC_E_STORE_BUSY},
        {408, "", -RENC_E_STORE_BUSY},
        {400, "InvalidHeaderValue", -RENC_E_STORE},
    };
    struct renc_blob_conn c = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct renc_blob_answer ans = {.status = cases[i].status};
        snprintf(ans.error_code, sizeof ans.error_code, "%s", cases[i].code);
        assert_int_equal(renc_blob_map(&c, &ans), cases[i].want);
        long st;
        assert_string_equal(renc_blob_last_error(&c, &st), cases[i].code);
        assert_int_equal(st, cases[i].status);
    }
}

/* ---- XML, fed in pieces of every size ---- */

static const char list_page[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<EnumerationResults ServiceEndpoint=\"http://127.0.0.1:10000/devstoreaccount1\" "
    "ContainerName=\"kek-test\"><Prefix>dir/</Prefix><Marker/><MaxResults>2</MaxResults>"
    "<Blobs><Blob><Name>dir/a&amp;b.bin</Name><Properties><Creation-Time>x</Creation-Time>"
    "<Etag>0x2130223BBC361C0</Etag><Content-Length>6</Content-Length>"
    "<BlobType>BlockBlob</BlobType></Properties>"
    "<Metadata><encryptiondata>{\"x\":1}</encryptiondata><Name>not the blob's</Name></Metadata>"
    "</Blob><Blob><Name>dir/\xc3\xa9t\xc3\xa9</Name><Properties><Etag>\"0x9\"</Etag>"
    "<Content-Length>18446744073709551615</Content-Length><BlobType>PageBlob</BlobType>"
    "</Properties></Blob></Blobs><NextMarker>dir/\xc3\xa9t\xc3\xa9</NextMarker>"
    "</EnumerationResults>";

static const char list_last[] =
    "<EnumerationResults><Blobs><Blob><Name>v</Name><VersionId>1</VersionId>"
    "<IsCurrentVersion>true</IsCurrentVersion><Properties/></Blob>"
    "<Blob><Name>v</Name><VersionId>0</VersionId><Properties/></Blob>"
    "<Blob><Name>d</Name><Deleted>true</Deleted><Properties/></Blob></Blobs>"
    "<NextMarker/></EnumerationResults>";

struct seen {
    char names[4][64];
    char etags[4][32];
    uint64_t sizes[4];
    size_t n;
    int stop_at; /* 1-based: return an error at this item */
};

static int seen_item(void *arg, const struct renc_blob_item *it)
{
    struct seen *s = arg;
    if (s->stop_at && (int)s->n + 1 == s->stop_at)
        return -RENC_E_CHANGED;
    snprintf(s->names[s->n], sizeof s->names[0], "%s", it->name);
    snprintf(s->etags[s->n], sizeof s->etags[0], "%s", it->etag);
    s->sizes[s->n++] = it->size;
    return 0;
}

/* Feeds doc in pieces of `step` bytes; the parser's and finish's result. */
static int feed(enum renc_blob_xml_kind kind, const char *doc, size_t len, size_t step,
                struct renc_blob_xml_result *res)
{
    struct renc_blob_xml *x;
    assert_int_equal(renc_blob_xml_new(&x, kind, res), 0);
    int rc = 0;
    for (size_t off = 0; off < len && !rc; off += step)
        rc = renc_blob_xml_feed(x, doc + off, len - off < step ? len - off : step);
    if (!rc)
        rc = renc_blob_xml_finish(x);
    renc_blob_xml_free(x);
    return rc;
}

static void test_blob_xml_list_in_pieces(void **state)
{
    (void)state;
    size_t len = sizeof list_page - 1;
    for (size_t step = 1; step <= len; step++) {
        struct seen s = {0};
        struct renc_blob_xml_result res = {.item = seen_item, .arg = &s};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, list_page, len, step, &res), 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.names[0], "dir/a&b.bin");
        assert_string_equal(s.etags[0], "\"0x2130223BBC361C0\"");
        assert_int_equal(s.sizes[0], 6);
        assert_string_equal(s.names[1], "dir/\xc3\xa9t\xc3\xa9");
        assert_string_equal(s.etags[1], "\"0x9\"");
        assert_true(s.sizes[1] == UINT64_MAX);
        assert_string_equal(res.next_marker, "dir/\xc3\xa9t\xc3\xa9");
        renc_blob_xml_result_cleanup(&res);
    }
    len = sizeof list_last - 1;
    for (size_t step = 1; step <= len; step++) {
        struct renc_blob_xml_result res = {0};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, list_last, len, step, &res), 0);
        assert_string_equal(res.next_marker, "");
        assert_int_equal(res.items, 3);
        assert_int_equal(res.old_versions, 1);
        assert_int_equal(res.deleted, 1);
        renc_blob_xml_result_cleanup(&res);
    }
    /* An item callback's error stops the page and is returned. */
    struct seen s = {.stop_at = 2};
    struct renc_blob_xml_result res = {.item = seen_item, .arg = &s};
    assert_int_equal(feed(RENC_BLOB_XML_LIST, list_page, sizeof list_page - 1, 7, &res),
                     -RENC_E_CHANGED);
    assert_int_equal(s.n, 1);
    renc_blob_xml_result_cleanup(&res);
}

/* ---- a listing with include=metadata,tags ---- */

static const char list_props[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>"
    "<Blob><Name>a</Name><Properties><Etag>0x1</Etag><Content-Length>6</Content-Length>"
    "<Content-Type>text/plain; charset=utf-8</Content-Type><Content-Encoding>gzip"
    "</Content-Encoding><Content-Language>fr-CA</Content-Language><Content-Disposition>"
    "attachment; filename=\"a &amp; b.txt\"</Content-Disposition><Cache-Control>no-cache"
    "</Cache-Control><BlobType>BlockBlob</BlobType><TagCount>2</TagCount></Properties>"
    "<Metadata><owner>team a</owner><Note>x&lt;y</Note></Metadata>"
    "<Tags><TagSet><Tag><Key>project</Key><Value>a b/c=d&amp;e</Value></Tag>"
    "<Tag><Key>k+1</Key><Value></Value></Tag></TagSet></Tags></Blob>"
    "<Blob><Name>b</Name><Properties><Etag>0x2</Etag><Content-Length>0</Content-Length>"
    "<Content-Type>application/octet-stream</Content-Type><Content-Encoding />"
    "<Content-Language/><Cache-Control/><BlobType>BlockBlob</BlobType></Properties>"
    "<Metadata/><Tags><TagSet/></Tags></Blob>"
    "<Blob><Name>c</Name><Properties><Etag>0x3</Etag><Content-Length>1</Content-Length>"
    "<BlobType>BlockBlob</BlobType></Properties><Metadata><x-ms-invalid-name>bad-name"
    "</x-ms-invalid-name></Metadata></Blob>"
    "</Blobs><NextMarker/></EnumerationResults>";

struct listed {
    char text[3][1024]; /* each item's props and tags, flattened */
    size_t n;
};

static void put(char *out, size_t max, const char *what, const char *v)
{
    size_t at = strlen(out);
    snprintf(out + at, max - at, "%s=%s;", what, v ? v : "(null)");
}

static int listed_item(void *arg, const struct renc_blob_item *it)
{
    struct listed *l = arg;
    char *o = l->text[l->n++];
    size_t max = sizeof l->text[0];
    o[0] = '\0';
    put(o, max, "tags", it->tags);
    const struct renc_blob_props *p = it->props;
    if (!p)
        return 0;
    assert_string_equal(p->etag, it->etag);
    assert_string_equal(p->blob_type, it->blob_type);
    assert_true(p->size == it->size);
    put(o, max, "type", p->content_type);
    put(o, max, "enc", p->content_encoding);
    put(o, max, "lang", p->content_language);
    put(o, max, "disp", p->content_disposition);
    put(o, max, "cache", p->cache_control);
    for (size_t i = 0; i < p->meta_count; i++)
        put(o, max, p->meta_names[i], p->meta_values[i]);
    char n[16];
    snprintf(n, sizeof n, "%u", p->tag_count);
    put(o, max, "count", n);
    return 0;
}

static void test_blob_xml_list_props_tags(void **state)
{
    (void)state;
    size_t len = sizeof list_props - 1;
    for (size_t step = 1; step <= len; step++) {
        struct listed l = {0};
        struct renc_blob_xml_result res = {
            .item = listed_item, .arg = &l,
            .include = RENC_BLOB_LIST_METADATA | RENC_BLOB_LIST_TAGS};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, list_props, len, step, &res), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.text[0],
                            "tags=project=a%20b%2Fc%3Dd%26e&k%2B1=;type=text/plain; charset=utf-8;"
                            "enc=gzip;lang=fr-CA;disp=attachment; filename=\"a & b.txt\";"
                            "cache=no-cache;owner=team a;Note=x<y;count=2;");
        assert_string_equal(l.text[1], "tags=;type=application/octet-stream;enc=(null);"
                                       "lang=(null);disp=(null);cache=(null);count=0;");
        assert_string_equal(l.text[2], "tags=;"); /* a name it cannot send back: no props */
        renc_blob_xml_result_cleanup(&res);
    }
    /* Not asked: neither props nor tags, whatever the answer holds. */
    struct listed l = {0};
    struct renc_blob_xml_result res = {.item = listed_item, .arg = &l};
    assert_int_equal(feed(RENC_BLOB_XML_LIST, list_props, len, 5, &res), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.text[0], "tags=(null);");
    renc_blob_xml_result_cleanup(&res);
}

static void test_blob_xml_list_props_limits(void **state)
{
    (void)state;
    static const char head[] = "<EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
                               "<Etag>0x1</Etag></Properties>";
    static const char tail[] = "</Blob></Blobs></EnumerationResults>";
    char *doc = malloc(16384);
    assert_non_null(doc);
    /* Metadata: 8 KiB of names and values is the most; one byte more is refused. */
    for (int over = 0; over <= 1; over++) {
        strcpy(doc, head);
        strcat(doc, "<Metadata><m>");
        size_t at = strlen(doc);
        memset(doc + at, 'v', RENC_BLOB_META_MAX - 1 + (size_t)over);
        strcpy(doc + at + RENC_BLOB_META_MAX - 1 + over, "</m></Metadata>");
        strcat(doc, tail);
        struct listed l = {0};
        struct renc_blob_xml_result r = {.item = listed_item, .arg = &l,
                                         .include = RENC_BLOB_LIST_METADATA};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, doc, strlen(doc), 997, &r),
                         over ? -RENC_E_STORE : 0);
        renc_blob_xml_result_cleanup(&r);
    }
    /* Tags: ten at most; a tag with no key, a nested metadata value. */
    for (int n = 10; n <= 11; n++) {
        strcpy(doc, head);
        strcat(doc, "<Tags><TagSet>");
        for (int i = 0; i < n; i++)
            sprintf(doc + strlen(doc), "<Tag><Key>k%d</Key><Value>v</Value></Tag>", i);
        strcat(doc, "</TagSet></Tags>");
        strcat(doc, tail);
        struct listed l = {0};
        struct renc_blob_xml_result r = {.item = listed_item, .arg = &l,
                                         .include = RENC_BLOB_LIST_TAGS};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, doc, strlen(doc), 13, &r),
                         n > 10 ? -RENC_E_STORE : 0);
        renc_blob_xml_result_cleanup(&r);
    }
    static const char *const bad[] = {
        "<Tags><TagSet><Tag><Value>v</Value></Tag></TagSet></Tags>",
        "<Metadata><m><n>x</n></m></Metadata>",
        "<Properties><TagCount>11</TagCount></Properties>",
        "<Properties><TagCount>x</TagCount></Properties>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, 16384, "%s%s%s", head, bad[i], tail);
        struct listed l = {0};
        struct renc_blob_xml_result r = {.item = listed_item, .arg = &l,
                                         .include = RENC_BLOB_LIST_METADATA | RENC_BLOB_LIST_TAGS};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, doc, strlen(doc), 4, &r), -RENC_E_STORE);
        renc_blob_xml_result_cleanup(&r);
    }
    free(doc);
}

static void test_blob_xml_blocks_tags_error_service(void **state)
{
    (void)state;
    static const char blocks[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><CommittedBlocks>"
        "<Block><Name>aGRyMg==</Name><Size>18</Size></Block>"
        "<Block><Name>cmVjMQ==</Name><Size>1048576</Size></Block></CommittedBlocks>"
        "<UncommittedBlocks><Block><Name>eA==</Name><Size>1</Size></Block></UncommittedBlocks>"
        "</BlockList>";
    static const char tags[] =
        "<Tags><TagSet><Tag><Key>k 1</Key><Value>v&amp;1</Value></Tag>"
        "<Tag><Key>k2</Key><Value/></Tag></TagSet></Tags>";
    static const char error[] =
        "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ConditionNotMet</Code>"
        "<Message>The condition specified using HTTP conditional header(s) is not met.\n"
        "RequestId:x\nTime:y</Message></Error>";
    static const char service[] =
        "<StorageServiceProperties><Logging><Enabled>false</Enabled></Logging>"
        "<DeleteRetentionPolicy><Enabled>true</Enabled><Days>7</Days></DeleteRetentionPolicy>"
        "</StorageServiceProperties>";
    for (size_t step = 1; step <= sizeof blocks; step++) {
        struct renc_blob_xml_result r = {0};
        assert_int_equal(feed(RENC_BLOB_XML_BLOCKS, blocks, sizeof blocks - 1, step, &r), 0);
        assert_int_equal(r.nblocks, 2);
        assert_string_equal(r.blocks[0].id, "aGRyMg==");
        assert_int_equal(r.blocks[0].size, 18);
        assert_int_equal(r.blocks[1].size, 1048576);
        renc_blob_xml_result_cleanup(&r);
    }
    for (size_t step = 1; step <= sizeof tags; step++) {
        struct renc_blob_xml_result r = {0};
        assert_int_equal(feed(RENC_BLOB_XML_TAGS, tags, sizeof tags - 1, step, &r), 0);
        assert_string_equal(r.tags, "k%201=v%261&k2=");
        renc_blob_xml_result_cleanup(&r);
    }
    for (size_t step = 1; step <= sizeof error; step++) {
        struct renc_blob_xml_result r = {0};
        assert_int_equal(feed(RENC_BLOB_XML_ERROR, error, sizeof error - 1, step, &r), 0);
        assert_string_equal(r.code, "ConditionNotMet");
        renc_blob_xml_result_cleanup(&r);
    }
    for (size_t step = 1; step <= sizeof service; step++) {
        struct renc_blob_xml_result r = {0};
        assert_int_equal(feed(RENC_BLOB_XML_SERVICE, service, sizeof service - 1, step, &r), 0);
        assert_int_equal(r.soft_delete, 1);
        renc_blob_xml_result_cleanup(&r);
    }
    struct renc_blob_xml_result r = {0};
    assert_int_equal(feed(RENC_BLOB_XML_SERVICE, "<StorageServiceProperties/>", 27, 5, &r), 0);
    assert_int_equal(r.soft_delete, -1);
    renc_blob_xml_result_cleanup(&r);
}

static void test_blob_xml_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                                              /* no root */
        "<EnumerationResults><Blobs>",                   /* cut short */
        "<EnumerationResults></Blobs>",                  /* mismatched */
        "<Other/>",                                      /* the wrong answer */
        "<EnumerationResults><Blobs><Blob><Properties/></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Content-Length>-1"
        "</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Content-Length>"
        "99999999999999999999</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        "<!DOCTYPE r [<!ENTITY a \"aaaa\">]><EnumerationResults>&a;</EnumerationResults>",
        "<EnumerationResults><NextMarker>&undefined;</NextMarker></EnumerationResults>",
        "<EnumerationResults/><EnumerationResults/>",
        "<EnumerationResults>\x01</EnumerationResults>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct renc_blob_xml_result r = {0};
        assert_int_equal(feed(RENC_BLOB_XML_LIST, bad[i], strlen(bad[i]), 3, &r), -RENC_E_STORE);
        renc_blob_xml_result_cleanup(&r);
    }
    /* Nesting past the limit, and a name past the text bound. */
    char deep[2048] = "<EnumerationResults>";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    struct renc_blob_xml_result r = {0};
    assert_int_equal(feed(RENC_BLOB_XML_LIST, deep, strlen(deep), 64, &r), -RENC_E_STORE);
    char *big = malloc(10000);
    strcpy(big, "<EnumerationResults><NextMarker>");
    memset(big + strlen(big), 'x', 5000);
    strcpy(big + 32 + 5000, "</NextMarker></EnumerationResults>");
    assert_int_equal(feed(RENC_BLOB_XML_LIST, big, strlen(big), 100, &r), -RENC_E_STORE);
    renc_blob_xml_result_cleanup(&r);
    free(big);
    /* Block ids longer than the service's are refused, not cut. */
    char blk[400];
    snprintf(blk, sizeof blk, "<BlockList><CommittedBlocks><Block><Name>%0120d</Name><Size>1"
                              "</Size></Block></CommittedBlocks></BlockList>", 0);
    assert_int_equal(feed(RENC_BLOB_XML_BLOCKS, blk, strlen(blk), 9, &r), -RENC_E_STORE);
    renc_blob_xml_result_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blob_shared_key_known_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_string_to_sign_matches_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_describe_and_redact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_connection_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_credential_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_block_ids_equal_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_split_build_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_error_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_xml_list_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_xml_list_props_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_xml_list_props_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_xml_blocks_tags_error_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_xml_refuses_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
