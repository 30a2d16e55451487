/* azure/token.c — Microsoft Entra tokens (docs/KEYVAULT.md, "Credentials";
 * docs/internals/azure.md): the credential chain of the Azure SDKs'
 * DefaultAzureCredential — client secret, client certificate, workload
 * identity, managed identity (App Service endpoint or VM metadata
 * endpoint), Azure CLI — or the one source forced by the caller.  Tokens
 * are cached per (tenant, scope) and fetched again about 5 minutes before
 * they expire (or at half their life, when that is shorter).  The sources'
 * pieces are in entra_*.c; this file chooses among them and talks HTTP
 * through the caller's connection and retry policy.  Tokens, secrets,
 * assertions and passwords live in secure memory and never reach a log. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "azure/token.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/note.h"
#include "common/pace.h"
#include "azure/entra_internal.h"

enum renc_source { RENC_SRC_SECRET, RENC_SRC_CERT, RENC_SRC_WORKLOAD, RENC_SRC_MI, RENC_SRC_CLI,
                   RENC_SRC_N };

static const char *const renc_source_name[RENC_SRC_N] = {
    "client secret", "client certificate", "workload identity", "managed identity",
    "Azure CLI"};

struct renc_azure_tokens {
    char *tenant, *client_id, *secret_file, *authority, *endpoint, *identity_header, *imds,
        *mi_client_id, *cert_path, *federated_file, *az;
    struct renc_key *secret;        /* the client secret, once read */
    struct renc_key *cert_password; /* until the certificate is loaded */
    struct renc_entra_cert *cert;   /* loaded at first use */
    enum renc_source chain[RENC_SRC_N];
    size_t nchain;
    int forced;
    int chosen;                     /* the source that gave a token, or -1 */
    pthread_mutex_t lock;           /* the cache and the count */
    pthread_mutex_t fetch;          /* one fetch at a time: others wait, then hit the cache */
    struct renc_entra_cache cache;
    struct renc_azure_token_hooks h;
    uint64_t requests;              /* token requests made (HTTP or az) */
};

/* A note for the operator through the hooks, after the caller's name
 * (never with a secret in it). */
static void renc_token_note(struct renc_azure_tokens *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void renc_token_note(struct renc_azure_tokens *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    renc_note_vsend(t->h.note, t->h.note_arg, t->h.name ? t->h.name : "azure", fmt, ap);
    va_end(ap);
}

static void renc_token_count(struct renc_azure_tokens *t)
{
    pthread_mutex_lock(&t->lock);
    t->requests++;
    pthread_mutex_unlock(&t->lock);
}

uint64_t renc_azure_tokens_requested(struct renc_azure_tokens *t)
{
    pthread_mutex_lock(&t->lock);
    uint64_t n = t->requests;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* What one attempt of a source came to, beyond its return code. */
struct renc_attempt {
    int unavailable; /* the source is not there: the chain goes on */
    char why[160];   /* for the list of what was tried */
};

static int renc_dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (!s || !s[0])
        return 0;
    *out = renc_strdup(s);
    return *out ? 0 : -RENC_E_NOMEM;
}

static int renc_tokens_copy(struct renc_azure_tokens *t, const struct renc_azure_credentials *c)
{
    const char *authority = c->authority ? c->authority : "https://login.microsoftonline.com";
    const char *imds = c->imds_endpoint ? c->imds_endpoint : "http://169.254.169.254";
    int rc;
    if ((rc = renc_dup_opt(&t->tenant, c->tenant)) ||
        (rc = renc_dup_opt(&t->client_id, c->client_id)) ||
        (rc = renc_dup_opt(&t->secret_file, c->client_secret_file)) ||
        (rc = renc_dup_opt(&t->authority, authority)) ||
        (rc = renc_dup_opt(&t->endpoint, c->identity_endpoint)) ||
        (rc = renc_dup_opt(&t->identity_header, c->identity_header)) ||
        (rc = renc_dup_opt(&t->imds, imds)) ||
        (rc = renc_dup_opt(&t->mi_client_id, c->mi_client_id)) ||
        (rc = renc_dup_opt(&t->cert_path, c->client_certificate_path)) ||
        (rc = renc_dup_opt(&t->federated_file, c->federated_token_file)) ||
        (rc = renc_dup_opt(&t->az, c->az_path)))
        return rc;
    if (c->client_secret && c->client_secret[0] &&
        (rc = renc_key_from_bytes(&t->secret, (const uint8_t *)c->client_secret,
                                  strlen(c->client_secret) + 1)))
        return rc;
    if (c->client_certificate_password && c->client_certificate_password[0])
        rc = renc_key_from_bytes(&t->cert_password,
                                 (const uint8_t *)c->client_certificate_password,
                                 strlen(c->client_certificate_password) + 1);
    return rc;
}

/* NULL when source s has what it needs, else which settings it lacks. */
static const char *renc_source_missing(const struct renc_azure_tokens *t, enum renc_source s)
{
    switch (s) {
    case RENC_SRC_SECRET:
        return t->client_id && (t->secret || t->secret_file)
                   ? NULL
                   : "AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_SECRET_FILE";
    case RENC_SRC_CERT:
        return t->client_id && t->cert_path ? NULL
                                            : "AZURE_CLIENT_ID with AZURE_CLIENT_CERTIFICATE_PATH";
    case RENC_SRC_WORKLOAD:
        return t->client_id && t->federated_file
                   ? NULL
                   : "AZURE_CLIENT_ID with AZURE_FEDERATED_TOKEN_FILE";
    default:
        return NULL; /* the metadata endpoint has a default; a missing az is found at use */
    }
}

/* The chain: the forced source, or every source whose settings are there. */
static void renc_tokens_chain(struct renc_azure_tokens *t, enum renc_azure_cred_mode mode)
{
    static const enum renc_source by_mode[] = {
        [RENC_AZURE_CRED_SECRET] = RENC_SRC_SECRET,
        [RENC_AZURE_CRED_CERTIFICATE] = RENC_SRC_CERT,
        [RENC_AZURE_CRED_WORKLOAD] = RENC_SRC_WORKLOAD,
        [RENC_AZURE_CRED_MANAGED_IDENTITY] = RENC_SRC_MI,
        [RENC_AZURE_CRED_CLI] = RENC_SRC_CLI};
    t->chosen = -1;
    if (mode != RENC_AZURE_CRED_DEFAULT && mode <= RENC_AZURE_CRED_CLI) {
        t->forced = 1;
        t->chain[t->nchain++] = by_mode[mode];
        return;
    }
    for (int s = 0; s < RENC_SRC_N; s++)
        if (!renc_source_missing(t, (enum renc_source)s))
            t->chain[t->nchain++] = (enum renc_source)s;
}

int renc_azure_tokens_new(struct renc_azure_tokens **out, const struct renc_azure_credentials *c,
                          const struct renc_azure_token_hooks *h)
{
    RENC_RETURN_IF(!h->retry, -RENC_E_INVALID);
    struct renc_azure_tokens *t = renc_calloc(1, sizeof *t);
    RENC_RETURN_IF(!t, -RENC_E_NOMEM);
    t->h = *h;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->fetch, NULL);
    int rc = renc_tokens_copy(t, c);
    if (rc) {
        renc_azure_tokens_free(t);
        return rc;
    }
    renc_tokens_chain(t, c->mode);
    *out = t;
    return 0;
}

void renc_azure_tokens_free(struct renc_azure_tokens *t)
{
    if (!t)
        return;
    renc_entra_cache_cleanup(&t->cache);
    renc_key_free(t->secret);
    renc_key_free(t->cert_password);
    renc_entra_cert_free(t->cert);
    char *strs[] = {t->tenant, t->client_id, t->secret_file, t->authority, t->endpoint,
                    t->identity_header, t->imds, t->mi_client_id, t->cert_path,
                    t->federated_file, t->az};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        renc_free(strs[i]);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->fetch);
    renc_free(t);
}

/* Reads the client secret file into secure memory: a regular file that
 * only its owner can read, first line only. */
static int renc_read_secret_file(struct renc_azure_tokens *t)
{
    struct renc_key *buf = NULL;
    int rc = renc_entra_read_file(t->secret_file, 4096,
                                  RENC_ENTRA_FILE_NOFOLLOW | RENC_ENTRA_FILE_OWNER_ONLY, &buf);
    if (rc)
        return rc == -RENC_E_TOO_BIG ? -RENC_E_VAULT_AUTH : rc;
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
    if (!tok || !tok[0] || strlen(tok) > RENC_ENTRA_TOKEN_MAX || life <= 0)
        rc = -RENC_E_VAULT_AUTH;
    else
        rc = renc_key_from_bytes(token, (const uint8_t *)tok, strlen(tok) + 1);
    json_decref(root);
    *lifetime_s = life;
    return rc;
}

/* The error code of a refused token request, for the operator: the OAuth
 * "error" and the AADSTS number, never the body as a whole. */
static void renc_token_refused(struct renc_azure_tokens *t, const char *url,
                               const struct renc_http_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->len, 0, NULL);
    const char *err = json_string_value(json_object_get(root, "error"));
    const char *desc = json_string_value(json_object_get(root, "error_description"));
    char code[32] = "";
    if (desc && strncmp(desc, "AADSTS", 6) == 0)
        snprintf(code, sizeof code, " (%.*s)", (int)strcspn(desc, ":"), desc);
    renc_token_note(t, "token request to %s refused: HTTP %ld %s%s", url, resp->status,
                  err ? err : "", code);
    json_decref(root);
}

/* A token endpoint's answer: the token, or a note and -RENC_E_VAULT_AUTH. */
static int renc_token_answer(struct renc_azure_tokens *t, const char *url,
                             struct renc_http_response *resp, struct renc_key **token,
                             int64_t *lifetime)
{
    int rc;
    if (resp->status != 200) {
        renc_token_refused(t, url, resp);
        rc = -RENC_E_VAULT_AUTH;
    } else {
        rc = renc_parse_token(resp->body, resp->len, token, lifetime);
    }
    renc_http_response_cleanup(resp);
    return rc;
}

/* The credential a form source sends: the client secret, a fresh signed
 * assertion, or the federated token file as it is now. */
static int renc_form_credential(struct renc_azure_tokens *t,
                                enum renc_source s, const char *url, struct renc_key **cred)
{
    int rc = 0;
    if (s == RENC_SRC_SECRET) {
        if (!t->secret && (rc = renc_read_secret_file(t)))
            return rc;
        return renc_key_dup(cred, t->secret);
    }
    if (s == RENC_SRC_WORKLOAD) {
        rc = renc_entra_read_federated(t->federated_file, cred);
        if (rc && rc != -RENC_E_NOMEM) {
            renc_token_note(t, "workload identity: the federated token file %s: %s",
                          t->federated_file,
                          rc == -RENC_E_NOT_REGULAR ? "not a regular file"
                          : rc == -RENC_E_VAULT_AUTH ? "empty"
                                                     : renc_strerror(rc));
            rc = -RENC_E_VAULT_AUTH; /* a credential problem, whatever the file's fault */
        }
        return rc;
    }
    if (!t->cert) {
        rc = renc_entra_cert_load(&t->cert, t->cert_path, t->cert_password);
        renc_key_free(t->cert_password); /* read once: never needed again */
        t->cert_password = NULL;
        if (rc && rc != -RENC_E_NOMEM) {
            renc_token_note(t, "client certificate %s: %s", t->cert_path,
                          rc == -RENC_E_VAULT_AUTH
                              ? "not a PEM certificate with its private key, nor a PKCS#12 "
                                "file this password opens"
                          : rc == -RENC_E_NOT_REGULAR ? "not a regular file"
                          : rc == -RENC_E_KEY_TYPE    ? "the key is not an RSA key"
                                                      : renc_strerror(rc));
            return -RENC_E_VAULT_AUTH;
        }
        if (rc)
            return rc;
    }
    return renc_entra_assertion(cred, t->cert, t->client_id, url, (int64_t)time(NULL));
}

/* Client secret, certificate or workload identity: the client-credentials
 * POST to the authority (https only: it carries a credential). */
static int renc_fetch_form(struct renc_azure_tokens *t, struct renc_http *conn,
                           enum renc_source s, const char *tenant, const char *scope,
                           struct renc_key **token, int64_t *lifetime)
{
    const char *tn = t->tenant ? t->tenant : tenant;
    char url[2048];
    if (strncmp(t->authority, "https://", 8) != 0) {
        renc_token_note(t, "authority %s is not https: the client credential is not sent",
                      t->authority);
        return -RENC_E_VAULT_AUTH;
    }
    int rc = renc_entra_token_url(url, sizeof url, t->authority, tn ? tn : "");
    if (rc) {
        renc_token_note(t, "no token URL for authority %s and tenant '%s'", t->authority,
                      tn ? tn : "");
        return -RENC_E_VAULT_AUTH;
    }
    struct renc_key *cred = NULL, *form = NULL;
    if ((rc = renc_form_credential(t, s, url, &cred)))
        return rc;
    rc = renc_entra_form(&form, t->client_id, scope, cred, s != RENC_SRC_SECRET);
    renc_key_free(cred);
    if (rc)
        return rc;
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    struct renc_http_response resp;
    renc_token_count(t);
    rc = renc_retry_request(t->h.retry, NULL, conn, "POST", url, headers, (const char *)form->bytes,
                       strlen((char *)form->bytes), &resp);
    renc_key_free(form);
    return rc ? rc : renc_token_answer(t, url, &resp, token, lifetime);
}

/* A managed identity: the App Service endpoint or the VM metadata endpoint.
 * probe: a later source waits, so no answer at all (or an IMDS without an
 * identity, 400) means "not here" at once, as DefaultAzureCredential's
 * probe does, instead of after the network retries. */
static int renc_fetch_mi(struct renc_azure_tokens *t, struct renc_http *conn,
                         const char *resource, int probe, struct renc_key **token,
                         int64_t *lifetime, struct renc_attempt *at)
{
    char url[2048], eres[1024], ecid[512] = "", hdr[600] = "", e[400];
    int rc = renc_http_escape(eres, sizeof eres, resource);
    if (rc == 0 && t->mi_client_id && (rc = renc_http_escape(e, sizeof e, t->mi_client_id)) == 0)
        snprintf(ecid, sizeof ecid, "&client_id=%s", e);
    if (rc)
        return rc;
    int app = t->endpoint && t->identity_header;
    int n = app ? snprintf(url, sizeof url, "%s?resource=%s&api-version=2019-08-01%s",
                           t->endpoint, eres, ecid)
                : snprintf(url, sizeof url,
                           "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s",
                           t->imds, eres, ecid);
    RENC_RETURN_IF(n < 0 || (size_t)n >= sizeof url, -RENC_E_TOO_BIG);
    if (app)
        snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %s", t->identity_header);
    const char *headers[] = {app ? hdr : "Metadata: true", "Accept: application/json", NULL};
    struct renc_http_response resp;
    renc_token_count(t);
    /* The metadata endpoint answers 404 or 410 while it updates (up to
     * about 70 s): try again with backoff. */
    for (unsigned i = 0;; i++) {
        rc = probe && i == 0 ? renc_http_request(conn, "GET", url, headers, NULL, 0, &resp)
                             : renc_retry_request(t->h.retry, NULL, conn, "GET", url, headers, NULL, 0, &resp);
        if (renc_http_no_answer(rc))
            renc_http_response_cleanup(&resp);
        if (rc || app || (resp.status != 404 && resp.status != 410) || i >= 6)
            break;
        renc_http_response_cleanup(&resp);
        renc_sleep_ns(1000000000ull << i);
    }
    renc_secmem_wipe(hdr, sizeof hdr);
    snprintf(at->why, sizeof at->why, "%s %s", app ? "App Service endpoint" : "IMDS",
             app ? t->endpoint : t->imds);
    if (renc_http_no_answer(rc) || (probe && !app && rc == 0 && resp.status == 400)) {
        at->unavailable = 1;
        snprintf(at->why + strlen(at->why), sizeof at->why - strlen(at->why), ": %s",
                 rc ? "no answer" : "no identity (400)");
        if (rc == 0)
            renc_http_response_cleanup(&resp);
        return rc ? rc : -RENC_E_VAULT_AUTH;
    }
    return rc ? rc : renc_token_answer(t, url, &resp, token, lifetime);
}

/* The Azure CLI, when one was found on PATH. */
static int renc_fetch_cli(struct renc_azure_tokens *t, const char *tenant,
                          const char *resource, struct renc_key **token, int64_t *lifetime,
                          struct renc_attempt *at)
{
    static const char *const why_text[] = {
        [RENC_CLI_NOT_FOUND] = "az could not be run",
        [RENC_CLI_NOT_LOGGED_IN] = "not logged in: run 'az login'",
        [RENC_CLI_FAILED] = "az account get-access-token failed",
        [RENC_CLI_TIMEOUT] = "az did not answer within 60 s",
        [RENC_CLI_BAD_OUTPUT] = "az printed no token (unexpected output)"};
    if (!t->az) {
        at->unavailable = 1;
        snprintf(at->why, sizeof at->why, "az not found on PATH");
        return -RENC_E_VAULT_AUTH;
    }
    enum renc_entra_cli_why why = RENC_CLI_OK;
    int64_t expires_on = 0;
    renc_token_count(t);
    int rc = renc_entra_cli_token(t->az, resource, t->tenant ? t->tenant : tenant,
                                  RENC_ENTRA_CLI_TIMEOUT_MS, token, &expires_on, &why);
    if (rc == 0) {
        *lifetime = expires_on - (int64_t)time(NULL);
        if (*lifetime > 0)
            return 0;
        renc_key_free(*token);
        *token = NULL;
        why = RENC_CLI_BAD_OUTPUT;
        rc = -RENC_E_VAULT_AUTH;
    }
    snprintf(at->why, sizeof at->why, "%s", why == RENC_CLI_OK ? renc_strerror(rc) : why_text[why]);
    at->unavailable = why == RENC_CLI_NOT_FOUND;
    return rc;
}

static int renc_fetch_source(struct renc_azure_tokens *t,
                             struct renc_http *conn, enum renc_source s, int probe,
                             const char *tenant, const char *scope, const char *resource,
                             struct renc_key **token, int64_t *lifetime, struct renc_attempt *at)
{
    const char *missing = renc_source_missing(t, s);
    if (missing) {
        snprintf(at->why, sizeof at->why, "needs %s", missing);
        return -RENC_E_VAULT_AUTH;
    }
    if (s == RENC_SRC_MI)
        return renc_fetch_mi(t, conn, resource, probe, token, lifetime, at);
    if (s == RENC_SRC_CLI)
        return renc_fetch_cli(t, tenant, resource, token, lifetime, at);
    return renc_fetch_form(t, conn, s, tenant, scope, token, lifetime);
}

/* Runs the chain (or the source that worked before); the first source that
 * gives a token is kept.  A source that is not there passes on; any other
 * failure ends the chain.  When nothing gave a token, one note lists what
 * was tried and why each failed. */
static int renc_fetch_token(struct renc_azure_tokens *t, struct renc_http *conn,
                            const char *tenant, const char *scope, const char *resource,
                            struct renc_key **token, int64_t *lifetime)
{
    char tried[600] = "";
    size_t n = t->chosen >= 0 ? 1 : t->nchain;
    for (size_t i = 0; i < n; i++) {
        enum renc_source s = t->chosen >= 0 ? (enum renc_source)t->chosen : t->chain[i];
        struct renc_attempt at = {0, ""};
        int probe = t->chosen < 0 && i + 1 < n;
        int rc = renc_fetch_source(t, conn, s, probe, tenant, scope, resource, token,
                                   lifetime, &at);
        if (rc == 0) {
            t->chosen = (int)s;
            return 0;
        }
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s%s%s%s%s", used ? "; " : "",
                 renc_source_name[s], at.why[0] ? " (" : "", at.why, at.why[0] ? ")" : "");
        /* A source that applies and failed has said why (or its why goes in
         * the list, for the last one): the chain ends there. */
        if (!at.unavailable && (i + 1 < n || !at.why[0]))
            return rc;
        if (!at.unavailable)
            break;
    }
    renc_token_note(t, "no credential gave a token%s; tried: %s (docs/KEYVAULT.md, "
                     "\"Credentials\")",
                  t->forced ? " (--akv-credential)" : "", tried[0] ? tried : "nothing");
    return -RENC_E_VAULT_AUTH;
}

int renc_azure_token(struct renc_azure_tokens *t, struct renc_http *conn,
                   const char *tenant, const char *scope, const char *resource,
                   struct renc_key **token)
{
    pthread_mutex_lock(&t->lock);
    int rc = renc_entra_cache_get(&t->cache, tenant, scope, renc_now_ns(), token);
    pthread_mutex_unlock(&t->lock);
    if (rc != -RENC_E_KEY_NOT_FOUND)
        return rc;
    pthread_mutex_lock(&t->fetch);
    pthread_mutex_lock(&t->lock);
    rc = renc_entra_cache_get(&t->cache, tenant, scope, renc_now_ns(), token);
    pthread_mutex_unlock(&t->lock);
    if (rc != -RENC_E_KEY_NOT_FOUND) {
        pthread_mutex_unlock(&t->fetch);
        return rc; /* another thread fetched it meanwhile */
    }
    int64_t life = 0;
    struct renc_key *fresh = NULL;
    rc = renc_fetch_token(t, conn, tenant, scope, resource, &fresh, &life);
    if (rc == 0)
        rc = renc_key_dup(token, fresh);
    if (rc == 0) {
        int64_t early = life > 600 ? 300 : life / 2;
        pthread_mutex_lock(&t->lock);
        renc_entra_cache_put(&t->cache, tenant, scope, fresh,
                             renc_now_ns() + (uint64_t)(life - early) * 1000000000ull);
        pthread_mutex_unlock(&t->lock);
        fresh = NULL;
    }
    renc_key_free(fresh);
    pthread_mutex_unlock(&t->fetch);
    return rc;
}

void renc_azure_token_drop(struct renc_azure_tokens *t, const char *tenant, const char *scope,
                         const struct renc_key *token)
{
    pthread_mutex_lock(&t->lock);
    renc_entra_cache_drop(&t->cache, tenant, scope, token);
    pthread_mutex_unlock(&t->lock);
}
