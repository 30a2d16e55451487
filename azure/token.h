/* azure/token.h — Microsoft Entra access tokens for any Azure service
 * (docs/internals/azure.md; docs/KEYVAULT.md, "Credentials").
 *
 * One struct renc_azure_tokens holds the credential settings, the chain of
 * sources chosen from them, and a cache of tokens per (tenant, scope); it may
 * be shared by threads.  It talks HTTP only through what its caller gives:
 * the connection of each call (the caller's pool) and the retry policy of
 * the hooks (net/retry.h; token requests are never paced).  It knows no
 * service: the key vault (keys/akv.c) asks for https://vault.azure.net/.default,
 * a blob store would ask for https://storage.azure.com/.default.
 */
#ifndef RENC_AZURE_TOKEN_H
#define RENC_AZURE_TOKEN_H

#include <stdint.h>

#include "crypto/secmem.h"
#include "net/http.h"
#include "net/retry.h"

/* Where tokens come from.  By default the chain of the Azure SDKs'
 * DefaultAzureCredential, each step skipped when its settings are absent:
 * client secret (client_id and a secret), client certificate (client_id and
 * client_certificate_path), workload identity (client_id and
 * federated_token_file), managed identity (the App Service endpoint when
 * identity_endpoint and identity_header are set, else the VM metadata
 * endpoint), then the Azure CLI (az_path).  A managed identity that cannot
 * be reached (or an IMDS without an identity) passes on to the next step;
 * any other failure of a step that applies ends the chain with its error.
 * The first step that gives a token is kept for the object's life.  mode
 * forces one step. */
enum renc_azure_cred_mode {
    RENC_AZURE_CRED_DEFAULT = 0,
    RENC_AZURE_CRED_SECRET,
    RENC_AZURE_CRED_CERTIFICATE,
    RENC_AZURE_CRED_WORKLOAD,
    RENC_AZURE_CRED_MANAGED_IDENTITY,
    RENC_AZURE_CRED_CLI,
};

struct renc_azure_credentials {
    enum renc_azure_cred_mode mode;
    const char *tenant;             /* may be NULL: the tenant each call names */
    const char *client_id;
    const char *client_secret;      /* copied into secure memory */
    const char *client_secret_file; /* read into secure memory; 0600 or stricter */
    const char *client_certificate_path;     /* PEM (certificate + key) or PKCS#12 */
    const char *client_certificate_password; /* PKCS#12 / encrypted PEM; copied into
                                                secure memory, dropped once loaded */
    const char *federated_token_file; /* workload identity; read at every request */
    const char *authority;          /* NULL: https://login.microsoftonline.com; a
                                       trailing '/' is dropped */
    const char *identity_endpoint;  /* App Service / Container Apps */
    const char *identity_header;
    const char *imds_endpoint;      /* NULL: http://169.254.169.254 */
    const char *mi_client_id;       /* a user-assigned managed identity */
    const char *az_path;            /* the Azure CLI (found on PATH); NULL: not found */
};

/* What the token object needs from its caller. */
struct renc_azure_token_hooks {
    const char *name;         /* starts each note ("akv"); NULL: "azure" */
    struct renc_retry *retry; /* token requests go through it; must outlive the object */
    /* A one-line note when a source is refused or none gives a token (never
     * with a secret in it); may be NULL.  Called from any thread. */
    void (*note)(void *arg, const char *line);
    void *note_arg;
};

struct renc_azure_tokens;

/* renc_azure_tokens_new: the settings of c are copied (secrets into secure
 * memory), so c's strings need not outlive the call; h is copied.
 * -RENC_E_INVALID without a retry policy. */
int renc_azure_tokens_new(struct renc_azure_tokens **out, const struct renc_azure_credentials *c,
                          const struct renc_azure_token_hooks *h);
void renc_azure_tokens_free(struct renc_azure_tokens *t);

/* renc_azure_token: a token for (tenant, scope), from the cache or fetched
 * now through conn; *token is NUL-terminated text in secure memory that the
 * caller frees.  tenant may be NULL or "" when the settings name one.
 * resource is the scope without "/.default" (managed identities and the
 * CLI ask by resource).  -RENC_E_VAULT_AUTH when no source gave one (a note
 * says what was tried), or a net/ error when a token endpoint that applies
 * gave no answer. */
int renc_azure_token(struct renc_azure_tokens *t, struct renc_http *conn, const char *tenant,
                     const char *scope, const char *resource, struct renc_key **token);

/* renc_azure_token_drop: forgets the cached token for (tenant, scope) when
 * it is still `token` (a 401 said it is no longer good). */
void renc_azure_token_drop(struct renc_azure_tokens *t, const char *tenant, const char *scope,
                           const struct renc_key *token);

/* renc_azure_tokens_requested: the token requests made so far (to token
 * endpoints or the Azure CLI), for statistics. */
uint64_t renc_azure_tokens_requested(struct renc_azure_tokens *t);

#endif
