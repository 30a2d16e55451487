/* tests/unit/test_http.c — the HTTP layer: which links count as the same
 * origin (a followed nextLink must), extra CAs added to the system's trust
 * store rather than replacing it, and, against a small HTTP/1.1 server on
 * loopback started here, streamed bodies both ways, the buffered call's
 * cap, net/'s own errors and the retry policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "net/http.h"
#include "net/retry.h"

static void test_http_same_origin(void **state)
{
    (void)state;
    const char *base = "https://myvault.vault.azure.net";
    /* The service's own nextLink spells the default port out. */
    assert_true(renc_http_same_origin(
        "https://myvault.vault.azure.net:443/keys/k/versions?api-version=7.4&$skiptoken=x", base));
    assert_true(renc_http_same_origin("https://MyVault.Vault.Azure.Net/keys/k/versions", base));
    assert_true(renc_http_same_origin("https://myvault.vault.azure.net/x",
                                      "https://myvault.vault.azure.net:443"));
    assert_true(renc_http_same_origin("https://127.0.0.1:4443/keys/k", "https://127.0.0.1:4443"));
    assert_false(renc_http_same_origin("https://127.0.0.1:4444/keys/k", "https://127.0.0.1:4443"));
    assert_false(renc_http_same_origin("http://myvault.vault.azure.net/keys", base));
    assert_false(renc_http_same_origin("https://evil.example/keys", base));
    assert_false(renc_http_same_origin("https://myvault.vault.azure.net.evil.example/k", base));
    assert_false(renc_http_same_origin("https://myvault.vault.azure.net@evil.example/k", base));
    assert_false(renc_http_same_origin("not a url", base));
}

/* A self-signed certificate as PEM in a temporary file. */
static char *write_test_ca(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"renc test CA",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    static char path[] = "/tmp/renc-test-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return path;
}

static int store_count(X509_STORE *st)
{
    return sk_X509_OBJECT_num(X509_STORE_get0_objects(st));
}

static void test_http_extra_ca_adds(void **state)
{
    (void)state;
    X509_STORE *st = X509_STORE_new();
    assert_non_null(st);
    /* What libcurl loads first: the system bundle, when the machine has it. */
    int system = 0;
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        assert_int_equal(X509_STORE_load_file(st, "/etc/ssl/certs/ca-certificates.crt"), 1);
        system = store_count(st);
        assert_true(system > 0);
    }
    char *ca = write_test_ca();
    assert_int_equal(renc_http_add_cas(st, ca), 0);
    assert_int_equal(store_count(st), system + 1);
    /* Twice is not an error and adds nothing. */
    assert_int_equal(renc_http_add_cas(st, ca), 0);
    assert_int_equal(store_count(st), system + 1);
    unlink(ca);
    assert_int_equal(renc_http_add_cas(st, ca), -RENC_E_INVALID);
    assert_int_equal(renc_http_add_cas(st, "/etc/hostname"), -RENC_E_INVALID);
    X509_STORE_free(st);
}

/* ---- a loopback HTTP/1.1 server: one request per connection -------- */

struct server {
    int fd;
    unsigned short port;
    pthread_t thread;
    int flaky_left; /* /flaky answers 503 this many times more */
};

/* The byte at offset i of a /big body. */
static unsigned char pattern(uint64_t i)
{
    return (unsigned char)(i * 131 + (i >> 12));
}

static int read_line(int fd, char *line, size_t max)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        if (c != '\r' && n + 1 < max)
            line[n++] = c;
    }
    line[n] = '\0';
    return (int)n;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL); /* the client may hang up */
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Reads n bytes of an upload into its length and sum. */
static int read_bytes(int fd, long long n, uint64_t *len, uint64_t *sum)
{
    unsigned char buf[65536];
    while (n > 0) {
        ssize_t k = read(fd, buf, n < (long long)sizeof buf ? (size_t)n : sizeof buf);
        if (k <= 0)
            return -1;
        for (ssize_t i = 0; i < k; i++)
            *sum += buf[i] * (*len + (uint64_t)i + 1);
        *len += (uint64_t)k;
        n -= k;
    }
    return 0;
}

/* Reads an upload (Content-Length, or chunked when clen < 0): its length
 * and a position-weighted sum. */
static void read_body(int fd, long long clen, uint64_t *len, uint64_t *sum)
{
    char line[64];
    *len = *sum = 0;
    if (clen >= 0) {
        read_bytes(fd, clen, len, sum);
        return;
    }
    for (;;) {
        if (read_line(fd, line, sizeof line) < 0)
            return;
        long long n = strtoll(line, NULL, 16);
        if (n == 0) {
            while (read_line(fd, line, sizeof line) > 0) /* trailers */
                ;
            return;
        }
        if (read_bytes(fd, n, len, sum) || read_line(fd, line, sizeof line) < 0)
            return;
    }
}

static void answer(int fd, int status, const char *extra, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     strlen(body), extra);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, strlen(body));
}

static void serve_one(struct server *sv, int fd)
{
    char req[512], line[512], method[16] = "", path[256] = "";
    long long clen = 0;
    int chunked = 0, expect = 0;
    if (read_line(fd, req, sizeof req) <= 0)
        return;
    sscanf(req, "%15s %255s", method, path);
    while (read_line(fd, line, sizeof line) > 0) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtoll(line + 15, NULL, 10);
        if (strncasecmp(line, "Transfer-Encoding: chunked", 26) == 0)
            chunked = 1;
        if (strncasecmp(line, "Expect: 100-continue", 20) == 0)
            expect = 1;
    }
    if (expect)
        write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (strncmp(path, "/big?n=", 7) == 0) {
        uint64_t n = strtoull(path + 7, NULL, 10);
        char head[128];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nConnection: close\r\n\r\n",
                          (unsigned long long)n);
        write_all(fd, head, (size_t)hl);
        unsigned char buf[65536];
        for (uint64_t off = 0; off < n;) {
            size_t k = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
            for (size_t i = 0; i < k; i++)
                buf[i] = pattern(off + i);
            write_all(fd, buf, k);
            off += k;
        }
    } else if (strcmp(path, "/upload") == 0) {
        uint64_t len, sum;
        read_body(fd, chunked ? -1 : clen, &len, &sum);
        char body[96];
        snprintf(body, sizeof body, "%s %llu %llu", method, (unsigned long long)len,
                 (unsigned long long)sum);
        answer(fd, 201, "", body);
    } else if (strcmp(path, "/flaky") == 0) {
        if (sv->flaky_left > 0) {
            sv->flaky_left--;
            answer(fd, 503, "", "busy");
        } else {
            answer(fd, 200, "", "fine");
        }
    } else if (strcmp(path, "/flaky408") == 0) {
        if (sv->flaky_left > 0) {
            sv->flaky_left--;
            answer(fd, 408, "", "timed out");
        } else {
            answer(fd, 200, "", "fine");
        }
    } else if (strcmp(path, "/throttle") == 0) {
        answer(fd, 429, "Retry-After: 0\r\n", "slow down");
    } else {
        answer(fd, 404, "x-ms-request-id: r-1\r\n", "{\"error\":\"none here\"}");
    }
}

static void *serve(void *arg)
{
    struct server *sv = arg;
    for (;;) {
        int fd = accept(sv->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve_one(sv, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

static int server_start(void **state)
{
    struct server *sv = calloc(1, sizeof *sv);
    assert_non_null(sv);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sv->fd, 8), 0);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &al), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
    *state = sv;
    return 0;
}

static int server_stop(void **state)
{
    struct server *sv = *state;
    shutdown(sv->fd, SHUT_RDWR); /* accept fails: the thread ends */
    pthread_join(sv->thread, NULL);
    close(sv->fd);
    free(sv);
    return 0;
}

static void url_of(char *out, size_t max, const struct server *sv, const char *path)
{
    snprintf(out, max, "http://127.0.0.1:%u%s", sv->port, path);
}

static struct renc_http *conn_new(void)
{
    struct renc_http *h = NULL;
    struct renc_http_opts o = {.timeout_ms = 20000, .no_proxy = "*"};
    assert_int_equal(renc_http_new(&h, &o), 0);
    return h;
}

/* A sink that checks the /big pattern as the body arrives. */
struct check_sink {
    uint64_t len;
    long status;
    size_t writes;
    int bad;
    int fail_at; /* a write number that fails with -RENC_E_INVALID; 0: none */
};

static int check_write(void *arg, long status, const void *data, size_t len)
{
    struct check_sink *c = arg;
    const unsigned char *p = data;
    c->status = status;
    if (++c->writes == (size_t)c->fail_at)
        return -RENC_E_INVALID;
    for (size_t i = 0; i < len; i++)
        c->bad |= p[i] != pattern(c->len + i);
    c->len += len;
    return 0;
}

static void test_http_stream_get_to_sink(void **state)
{
    struct server *sv = *state;
    struct renc_http *h = conn_new();
    char url[128];
    uint64_t n = 8ull << 20; /* 8 MiB: eight times the buffered cap */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/big?n=%llu", sv->port, (unsigned long long)n);
    struct check_sink c = {0};
    struct renc_http_sink sink = {.write = check_write, .arg = &c};
    struct renc_http_response resp;
    assert_int_equal(renc_http_stream(h, "GET", url, NULL, NULL, &sink, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_null(resp.body);
    assert_int_equal(c.len, n);
    assert_int_equal(c.status, 200);
    assert_false(c.bad);
    assert_true(c.writes > 1); /* it came in pieces, not held whole */
    renc_http_response_cleanup(&resp);
    /* The sink sees an error answer's status before its body. */
    url_of(url, sizeof url, sv, "/nothing");
    memset(&c, 0, sizeof c);
    assert_int_equal(renc_http_stream(h, "GET", url, NULL, NULL, &sink, &resp), 0);
    assert_int_equal(resp.status, 404);
    assert_int_equal(c.status, 404);
    assert_string_equal(resp.request_id, "r-1");
    renc_http_response_cleanup(&resp);
    renc_http_free(h);
}

static void test_http_sink_error_aborts(void **state)
{
    struct server *sv = *state;
    struct renc_http *h = conn_new();
    char url[128];
    url_of(url, sizeof url, sv, "/big?n=4194304");
    struct check_sink c = {.fail_at = 2};
    struct renc_http_sink sink = {.write = check_write, .arg = &c};
    struct renc_http_response resp;
    assert_int_equal(renc_http_stream(h, "GET", url, NULL, NULL, &sink, &resp), -RENC_E_INVALID);
    renc_http_response_cleanup(&resp);
    assert_true(c.len < 4194304);
    renc_http_free(h);
}

static void test_http_buffered_cap_refuses(void **state)
{
    struct server *sv = *state;
    struct renc_http *h = conn_new();
    char url[128];
    struct renc_http_response resp;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/big?n=%u", sv->port, RENC_HTTP_BODY_MAX);
    assert_int_equal(renc_http_request(h, "GET", url, NULL, NULL, 0, &resp), 0);
    assert_int_equal(resp.len, RENC_HTTP_BODY_MAX);
    assert_int_equal((unsigned char)resp.body[12345], pattern(12345));
    renc_http_response_cleanup(&resp);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/big?n=%u", sv->port, RENC_HTTP_BODY_MAX + 1);
    assert_int_equal(renc_http_request(h, "GET", url, NULL, NULL, 0, &resp), -RENC_E_NET_TOO_BIG);
    assert_null(resp.body);
    renc_http_response_cleanup(&resp);
    assert_false(renc_http_no_answer(-RENC_E_NET_TOO_BIG));
    renc_http_free(h);
}

/* A source of `len` bytes of the pattern, handed out in odd pieces. */
struct pattern_source {
    uint64_t off, len;
};

static int pattern_read(void *arg, void *buf, size_t max, size_t *got)
{
    struct pattern_source *p = arg;
    size_t k = max < 7777 ? max : 7777;
    if (k > p->len - p->off)
        k = (size_t)(p->len - p->off);
    for (size_t i = 0; i < k; i++)
        ((unsigned char *)buf)[i] = pattern(p->off + i);
    p->off += k;
    *got = k;
    return 0;
}

/* A sink that keeps a short answer as text. */
struct text_sink {
    char text[128];
    size_t len;
};

static int text_write(void *arg, long status, const void *data, size_t len)
{
    (void)status;
    struct text_sink *t = arg;
    if (len >= sizeof t->text - t->len)
        return -RENC_E_TOO_BIG;
    memcpy(t->text + t->len, data, len);
    t->len += len;
    t->text[t->len] = '\0';
    return 0;
}

/* Streams len bytes up with method, of known length or chunked, and checks
 * that the server got each byte in its place. */
static void upload(const struct server *sv, const char *method, uint64_t len, int known)
{
    struct renc_http *h = conn_new();
    char url[128], want[96];
    url_of(url, sizeof url, sv, "/upload");
    uint64_t sum = 0;
    for (uint64_t i = 0; i < len; i++)
        sum += pattern(i) * (i + 1);
    snprintf(want, sizeof want, "%s %llu %llu", method, (unsigned long long)len,
             (unsigned long long)sum);
    struct pattern_source ps = {0, len};
    struct renc_http_source src = {pattern_read, &ps, known ? (long long)len : -1};
    struct text_sink t = {"", 0};
    struct renc_http_sink sink = {.write = text_write, .arg = &t};
    struct renc_http_response resp;
    assert_int_equal(renc_http_stream(h, method, url, NULL, &src, &sink, &resp), 0);
    assert_int_equal(resp.status, 201);
    assert_string_equal(t.text, want);
    renc_http_response_cleanup(&resp);
    renc_http_free(h);
}

static void test_http_stream_upload(void **state)
{
    struct server *sv = *state;
    upload(sv, "PUT", 5ull << 20, 1);  /* 5 MiB, Content-Length */
    upload(sv, "PUT", 3ull << 20, 0);  /* 3 MiB, chunked */
    upload(sv, "POST", 2ull << 20, 1); /* POST streams too */
    upload(sv, "PUT", 0, 1);           /* an empty body is a body */
}

static int failing_read(void *arg, void *buf, size_t max, size_t *got)
{
    (void)arg;
    (void)buf;
    (void)max;
    (void)got;
    return -RENC_E_CHANGED;
}

static void test_http_source_error_aborts(void **state)
{
    struct server *sv = *state;
    struct renc_http *h = conn_new();
    char url[128];
    url_of(url, sizeof url, sv, "/upload");
    struct renc_http_source src = {failing_read, NULL, 1000};
    struct renc_http_response resp;
    assert_int_equal(renc_http_stream(h, "PUT", url, NULL, &src, NULL, &resp), -RENC_E_CHANGED);
    renc_http_response_cleanup(&resp);
    renc_http_free(h);
}

/* The retry policy's counts, as data. */
static void check_counts(struct renc_retry *r, uint64_t requests, uint64_t retries,
                         uint64_t throttled, uint64_t server_errors, uint64_t network_errors)
{
    struct renc_retry_stats st;
    renc_retry_stats(r, &st);
    assert_int_equal(st.requests, requests);
    assert_int_equal(st.retries, retries);
    assert_int_equal(st.throttled, throttled);
    assert_int_equal(st.server_errors, server_errors);
    assert_int_equal(st.network_errors, network_errors);
}

static char last_note[512];
static void keep_note(void *arg, const char *line)
{
    (void)arg;
    snprintf(last_note, sizeof last_note, "%s", line);
}

static void test_http_no_answer_is_net_error(void **state)
{
    (void)state;
    struct renc_http *h = conn_new();
    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", ntohs(a.sin_port));
    struct renc_http_response resp;
    int rc = renc_http_request(h, "GET", url, NULL, NULL, 0, &resp);
    renc_http_response_cleanup(&resp);
    assert_int_equal(rc, -RENC_E_NET_CONNECT);
    assert_true(renc_http_no_answer(rc));
    assert_false(renc_http_no_answer(-RENC_E_VAULT_NETWORK));
    /* The retry policy sends it again, then gives up with the same error. */
    struct renc_retry r;
    struct renc_retry_options ro = {.retries = 1};
    renc_retry_init(&r, &ro);
    assert_int_equal(renc_retry_request(&r, NULL, h, "GET", url, NULL, NULL, 0, &resp),
                     -RENC_E_NET_CONNECT);
    renc_http_response_cleanup(&resp);
    check_counts(&r, 2, 1, 0, 0, 2);
    renc_retry_cleanup(&r);
    renc_http_free(h);
}

static int answered;
static void count_answered(void *arg)
{
    (void)arg;
    answered++;
}

static void test_retry_policy_5xx_and_429(void **state)
{
    struct server *sv = *state;
    struct renc_http *h = conn_new();
    struct renc_retry r;
    struct renc_retry_options ro = {.name = "t", .throttle_wait_s = 2.5, .note = keep_note};
    renc_retry_init(&r, &ro);
    struct renc_pace pace;
    renc_pace_init(&pace, 0, 10);
    struct renc_retry_call call = {&pace, NULL, count_answered, NULL};
    char url[128];
    struct renc_http_response resp;
    /* Two 503s, then the answer: sent three times. */
    sv->flaky_left = 2;
    url_of(url, sizeof url, sv, "/flaky");
    assert_int_equal(renc_retry_request(&r, &call, h, "GET", url, NULL, NULL, 0, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "fine");
    renc_http_response_cleanup(&resp);
    assert_int_equal(answered, 1);
    /* A 408 (the server timed the request out) is sent again too. */
    sv->flaky_left = 1;
    url_of(url, sizeof url, sv, "/flaky408");
    assert_int_equal(renc_retry_request(&r, &call, h, "GET", url, NULL, NULL, 0, &resp), 0);
    assert_int_equal(resp.status, 200);
    renc_http_response_cleanup(&resp);
    assert_int_equal(answered, 2);
    /* 429s past throttle_wait_s (1 s, then 2 s > 2.5 s in all): given up. */
    url_of(url, sizeof url, sv, "/throttle");
    assert_int_equal(renc_retry_request(&r, &call, h, "GET", url, NULL, NULL, 0, &resp),
                     -RENC_E_NET_THROTTLED);
    renc_http_response_cleanup(&resp);
    check_counts(&r, 7, 4, 2, 3, 0);
    assert_int_equal(answered, 2);
    char want[200];
    snprintf(want, sizeof want, "t: GET %s: throttled (429) 2 times over 3 s, giving up", url);
    assert_string_equal(last_note, want);
    assert_int_equal(renc_retry_after_ns("2"), 2000000000ull);
    assert_int_equal(renc_retry_after_ns("999"), 120000000000ull);
    assert_int_equal(renc_retry_after_ns("Wed, 21 Oct 2015 07:28:00 GMT"), 1000000000ull);
    assert_int_equal(renc_retry_after_ns(""), 0);
    renc_pace_destroy(&pace);
    renc_retry_cleanup(&r);
    renc_http_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_same_origin),
        cmocka_unit_test(test_http_extra_ca_adds),
        cmocka_unit_test(test_http_stream_get_to_sink),
        cmocka_unit_test(test_http_sink_error_aborts),
        cmocka_unit_test(test_http_buffered_cap_refuses),
        cmocka_unit_test(test_http_stream_upload),
        cmocka_unit_test(test_http_source_error_aborts),
        cmocka_unit_test(test_http_no_answer_is_net_error),
        cmocka_unit_test(test_retry_policy_5xx_and_429),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
