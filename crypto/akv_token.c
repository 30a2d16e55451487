/* crypto/akv_token.c — tokens for key vaults (PROTOCOLS.md §2): client
 * credentials, the App Service identity endpoint, or the VM metadata
 * endpoint; cached per (tenant, scope) and fetched again about 5 minutes
 * before they expire (or at half their life, when that is shorter).  Tokens
 * and the client secret live in secure memory and never reach a log. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/pace.h"
#include "crypto/akv_internal.h"

#define RENC_TOKEN_SLOTS 8
#define RENC_TOKEN_MAX 8000

enum renc_cred_kind { RENC_CRED_CLIENT_SECRET = 1, RENC_CRED_APP_SERVICE, RENC_CRED_IMDS };

struct renc_token_ent {
    char scope[512];
    struct renc_key *token; /* NUL-terminated text */
    uint64_t refresh_ns;    /* CLOCK_MONOTONIC: fetch again from here on */
};

struct renc_akv_tokens {
    enum renc_cred_kind kind;
    char *tenant, *client_id, *secret_file, *authority, *endpoint, *identity_header, *imds,
        *mi_client_id;
    struct renc_key *secret; /* the client secret, once read */
    pthread_mutex_t lock;    /* the cache */
    pthread_mutex_t fetch;   /* one fetch at a time: others wait, then hit the cache */
    struct renc_token_ent ents[RENC_TOKEN_SLOTS];
    size_t next_slot;
};

static int renc_dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (!s || !s[0])
        return 0;
    *out = renc_strdup(s);
    return *out ? 0 : -RENC_E_NOMEM;
}

int renc_akv_tokens_new(struct renc_akv_tokens **out, const struct renc_akv_credentials *c)
{
    struct renc_akv_tokens *t = renc_calloc(1, sizeof *t);
    RENC_RETURN_IF(!t, -RENC_E_NOMEM);
    int rc = renc_dup_opt(&t->tenant, c->tenant);
    if (!rc)
        rc = renc_dup_opt(&t->client_id, c->client_id);
    if (!rc)
        rc = renc_dup_opt(&t->secret_file, c->client_secret_file);
    if (!rc)
        rc = renc_dup_opt(&t->authority, c->authority ? c->authority
                                                      : "https://login.microsoftonline.com");
    if (!rc)
        rc = renc_dup_opt(&t->endpoint, c->identity_endpoint);
    if (!rc)
        rc = renc_dup_opt(&t->identity_header, c->identity_header);
    if (!rc)
        rc = renc_dup_opt(&t->imds, c->imds_endpoint ? c->imds_endpoint : "http://169.254.169.254");
    if (!rc)
        rc = renc_dup_opt(&t->mi_client_id, c->mi_client_id);
    if (!rc && c->client_secret && c->client_secret[0])
        rc = renc_key_from_bytes(&t->secret, (const uint8_t *)c->client_secret,
                                 strlen(c->client_secret) + 1);
    if (rc) {
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->fetch, NULL);
        renc_akv_tokens_free(t);
        return rc;
    }
    if (t->client_id && (t->secret || t->secret_file))
        t->kind = RENC_CRED_CLIENT_SECRET;
    else if (t->endpoint && t->identity_header)
        t->kind = RENC_CRED_APP_SERVICE;
    else
        t->kind = RENC_CRED_IMDS;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->fetch, NULL);
    *out = t;
    return 0;
}

void renc_akv_tokens_free(struct renc_akv_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < RENC_TOKEN_SLOTS; i++)
        renc_key_free(t->ents[i].token);
    renc_key_free(t->secret);
    renc_free(t->tenant);
    renc_free(t->client_id);
    renc_free(t->secret_file);
    renc_free(t->authority);
    renc_free(t->endpoint);
    renc_free(t->identity_header);
    renc_free(t->imds);
    renc_free(t->mi_client_id);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->fetch);
    renc_free(t);
}

/* Reads the client secret file into secure memory: a regular file that
 * only its owner can read, first line only. */
static int renc_read_secret_file(struct renc_akv_tokens *t)
{
    int fd = open(t->secret_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -RENC_E_NOT_REGULAR;
    if (rc == 0 && (st.st_mode & 077))
        rc = -RENC_E_INSECURE_PERMS;
    if (rc == 0 && (st.st_size <= 0 || st.st_size > 4096))
        rc = -RENC_E_VAULT_AUTH;
    struct renc_key *buf = rc == 0 ? renc_key_new((size_t)st.st_size + 1) : NULL;
    if (rc == 0 && !buf)
        rc = -RENC_E_NOMEM;
    if (rc == 0) {
        ssize_t got = read(fd, buf->bytes, (size_t)st.st_size);
        if (got != st.st_size)
            rc = got < 0 ? -errno : -RENC_E_VAULT_AUTH;
    }
    close(fd);
    if (rc) {
        renc_key_free(buf);
        return rc;
    }
    buf->bytes[st.st_size] = '\0';
    buf->bytes[strcspn((char *)buf->bytes, "\r\n")] = '\0';
    buf->len = strlen((char *)buf->bytes) + 1;
    if (buf->len == 1) {
        renc_key_free(buf);
        return -RENC_E_VAULT_AUTH;
    }
    t->secret = buf;
    return 0;
}

/* The token and its lifetime from a token endpoint's JSON.  expires_in is a
 * number or (IMDS) a string; App Service gives only expires_on, epoch
 * seconds as a string. */
static int renc_parse_token(const char *body, size_t len, struct renc_key **token,
                            int64_t *lifetime_s)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *tok = json_string_value(json_object_get(root, "access_token"));
    json_t *in = json_object_get(root, "expires_in"), *on = json_object_get(root, "expires_on");
    int64_t life = -1;
    if (json_is_integer(in))
        life = (int64_t)json_integer_value(in);
    else if (json_is_string(in))
        life = strtoll(json_string_value(in), NULL, 10);
    else if (json_is_string(on) || json_is_integer(on)) {
        int64_t at = json_is_integer(on) ? (int64_t)json_integer_value(on)
                                         : strtoll(json_string_value(on), NULL, 10);
        life = at > 0 ? at - (int64_t)time(NULL) : -1;
    }
    int rc = 0;
    if (!tok || !tok[0] || strlen(tok) > RENC_TOKEN_MAX || life <= 0)
        rc = -RENC_E_VAULT_AUTH;
    else
        rc = renc_key_from_bytes(token, (const uint8_t *)tok, strlen(tok) + 1);
    json_decref(root);
    *lifetime_s = life;
    return rc;
}

/* The error code of a refused token request, for the operator: the OAuth
 * "error" and the AADSTS number, never the body as a whole. */
static void renc_token_refused(struct renc_akv *a, const char *url,
                               const struct renc_http_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->len, 0, NULL);
    const char *err = json_string_value(json_object_get(root, "error"));
    const char *desc = json_string_value(json_object_get(root, "error_description"));
    char code[32] = "";
    if (desc && strncmp(desc, "AADSTS", 6) == 0)
        snprintf(code, sizeof code, " (%.*s)", (int)strcspn(desc, ":"), desc);
    renc_akv_note(a, "akv: token request to %s refused: HTTP %ld %s%s", url, resp->status,
                  err ? err : "", code);
    json_decref(root);
}

/* Fetches a token through conn. */
static int renc_fetch_token(struct renc_akv *a, struct renc_akv_tokens *t, struct renc_http *conn,
                            const char *tenant, const char *scope, const char *resource,
                            struct renc_key **token, int64_t *lifetime)
{
    char url[2048], eres[1024], ecid[512] = "", hdr[600];
    struct renc_http_response resp;
    int rc = renc_http_escape(eres, sizeof eres, resource);
    if (rc)
        return rc;
    if (t->mi_client_id && t->kind != RENC_CRED_CLIENT_SECRET) {
        char e[400];
        if ((rc = renc_http_escape(e, sizeof e, t->mi_client_id)))
            return rc;
        snprintf(ecid, sizeof ecid, "&client_id=%s", e);
    }
    renc_akv_count_token(a);
    if (t->kind == RENC_CRED_CLIENT_SECRET) {
        const char *tn = t->tenant ? t->tenant : tenant;
        RENC_RETURN_IF(!tn || !tn[0], -RENC_E_VAULT_AUTH);
        /* The secret goes to the authority over TLS only. */
        if (strncmp(t->authority, "https://", 8) != 0) {
            renc_akv_note(a, "akv: authority %s is not https: the client secret is not sent",
                          t->authority);
            return -RENC_E_VAULT_AUTH;
        }
        if (!t->secret && (rc = renc_read_secret_file(t)))
            return rc;
        int n = snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", t->authority, tn);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url, -RENC_E_TOO_BIG);
        /* The form, with the secret, in secure memory. */
        char escope[1024], eid[512];
        if ((rc = renc_http_escape(escope, sizeof escope, scope)) ||
            (rc = renc_http_escape(eid, sizeof eid, t->client_id)))
            return rc;
        size_t cap = 3 * t->secret->len + strlen(escope) + strlen(eid) + 128;
        struct renc_key *form = renc_key_new(cap);
        RENC_RETURN_IF(!form, -RENC_E_NOMEM);
        n = snprintf((char *)form->bytes, cap, "grant_type=client_credentials&client_id=%s&scope=%s&client_secret=",
                     eid, escope);
        rc = renc_http_escape((char *)form->bytes + n, cap - (size_t)n, (const char *)t->secret->bytes);
        const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                 "Accept: application/json", NULL};
        if (rc == 0)
            rc = renc_akv_send(a, conn, "POST", url, headers, (const char *)form->bytes,
                               strlen((char *)form->bytes), &resp);
        renc_key_free(form);
        if (rc)
            return rc;
    } else if (t->kind == RENC_CRED_APP_SERVICE) {
        int n = snprintf(url, sizeof url, "%s?resource=%s&api-version=2019-08-01%s", t->endpoint,
                         eres, ecid);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url, -RENC_E_TOO_BIG);
        n = snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %s", t->identity_header);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof hdr, -RENC_E_TOO_BIG);
        const char *headers[] = {hdr, "Accept: application/json", NULL};
        rc = renc_akv_send(a, conn, "GET", url, headers, NULL, 0, &resp);
        renc_secmem_wipe(hdr, sizeof hdr);
        if (rc)
            return rc;
    } else {
        int n = snprintf(url, sizeof url,
                         "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s",
                         t->imds, eres, ecid);
        RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url, -RENC_E_TOO_BIG);
        const char *headers[] = {"Metadata: true", "Accept: application/json", NULL};
        /* The metadata endpoint answers 404 or 410 while it updates (up to
         * about 70 s): try again with backoff. */
        for (unsigned i = 0;; i++) {
            if ((rc = renc_akv_send(a, conn, "GET", url, headers, NULL, 0, &resp)))
                return rc;
            if ((resp.status != 404 && resp.status != 410) || i >= 6)
                break;
            renc_http_response_cleanup(&resp);
            renc_sleep_ns(1000000000ull << i);
        }
    }
    if (resp.status != 200) {
        renc_token_refused(a, url, &resp);
        renc_http_response_cleanup(&resp);
        return -RENC_E_VAULT_AUTH;
    }
    rc = renc_parse_token(resp.body, resp.len, token, lifetime);
    renc_http_response_cleanup(&resp);
    return rc;
}

static int renc_cached_token(struct renc_akv_tokens *t, const char *scope, struct renc_key **out)
{
    uint64_t now = renc_now_ns();
    int rc = -RENC_E_KEY_NOT_FOUND;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < RENC_TOKEN_SLOTS; i++) {
        struct renc_token_ent *e = &t->ents[i];
        if (e->token && strcmp(e->scope, scope) == 0 && now < e->refresh_ns) {
            rc = renc_key_dup(out, e->token);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int renc_akv_token(struct renc_akv *a, struct renc_akv_tokens *t, struct renc_http *conn,
                   const char *tenant, const char *scope, const char *resource,
                   struct renc_key **token)
{
    int rc = renc_cached_token(t, scope, token);
    if (rc != -RENC_E_KEY_NOT_FOUND)
        return rc;
    pthread_mutex_lock(&t->fetch);
    if ((rc = renc_cached_token(t, scope, token)) != -RENC_E_KEY_NOT_FOUND) {
        pthread_mutex_unlock(&t->fetch);
        return rc; /* another thread fetched it meanwhile */
    }
    int64_t life = 0;
    struct renc_key *fresh = NULL;
    rc = renc_fetch_token(a, t, conn, tenant, scope, resource, &fresh, &life);
    if (rc == 0)
        rc = renc_key_dup(token, fresh);
    if (rc == 0) {
        int64_t early = life > 600 ? 300 : life / 2;
        pthread_mutex_lock(&t->lock);
        struct renc_token_ent *e = NULL;
        for (size_t i = 0; i < RENC_TOKEN_SLOTS && !e; i++)
            if (t->ents[i].token && strcmp(t->ents[i].scope, scope) == 0)
                e = &t->ents[i];
        if (!e)
            e = &t->ents[t->next_slot++ % RENC_TOKEN_SLOTS];
        renc_key_free(e->token);
        snprintf(e->scope, sizeof e->scope, "%s", scope);
        e->token = fresh;
        fresh = NULL;
        e->refresh_ns = renc_now_ns() + (uint64_t)(life - early) * 1000000000ull;
        pthread_mutex_unlock(&t->lock);
    }
    renc_key_free(fresh);
    pthread_mutex_unlock(&t->fetch);
    return rc;
}

void renc_akv_token_drop(struct renc_akv_tokens *t, const char *scope, const struct renc_key *token)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < RENC_TOKEN_SLOTS; i++) {
        struct renc_token_ent *e = &t->ents[i];
        if (e->token && strcmp(e->scope, scope) == 0 && e->token->len == token->len &&
            memcmp(e->token->bytes, token->bytes, token->len) == 0) {
            renc_key_free(e->token);
            e->token = NULL;
        }
    }
    pthread_mutex_unlock(&t->lock);
}
