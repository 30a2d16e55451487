/* azure/blob.h — an Azure Blob Storage REST client: where a container URL
 * points, the account's credentials as Azure's tools name them, request
 * signing, and the operations the blob store (store/azblob.c) builds on
 * (../shared/PROTOCOLS.md section 3; docs/internals/azure.md).
 *
 * Shape:
 *   - struct renc_blob_location: what a URL names (endpoint, account,
 *     container, prefix, a SAS from the URL).  Split and built with
 *     libcurl's URL API (net/url.h), never by hand.
 *   - struct renc_blob_account: the endpoint plus one credential
 *     (SharedKey, SAS or Entra token), shared by every thread, immutable
 *     once made (the token cache inside is thread-safe).
 *   - struct renc_blob_conn: one keep-alive connection (a renc_http); one
 *     per thread, never shared.
 *   - Operations: each one request (retried under the account's retry
 *     policy: 5xx, 408, 429 and no answer, with backoff and jitter), its
 *     answer mapped to the tool's errors:
 *        412 ConditionNotMet, 404 BlobNotFound  -> -RENC_E_CHANGED
 *        409 BlobAlreadyExists (If-None-Match: *) -> -RENC_E_CHANGED
 *        404 ContainerNotFound                  -> -RENC_E_STORE_NOT_FOUND
 *        401/403                                -> -RENC_E_STORE_AUTH
 *        5xx/408 after the retries              -> -RENC_E_STORE_BUSY
 *        no answer after the retries            -> -RENC_E_STORE_NETWORK
 *        anything else unexpected              -> -RENC_E_STORE
 *     and the service's error code (x-ms-error-code) kept in the conn for
 *     the message (renc_blob_last_error).
 *
 * Secrets (an account key, a SAS signature, a token) are never put in a
 * message: renc_blob_location_describe and renc_blob_redact give what may
 * be printed.
 */
#ifndef RENC_AZURE_BLOB_H
#define RENC_AZURE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "azure/token.h"
#include "net/retry.h"

/* The REST version every request sends (Azurite 3.37 accepts it). */
#define RENC_BLOB_API_VERSION "2025-01-05"
/* Longest ETag kept (quoted, as the ETag header gives it). */
#define RENC_BLOB_ETAG_MAX 96
/* Longest block id before base64 (the service's limit). */
#define RENC_BLOB_BLOCK_ID_MAX 64

/* ---- where a URL points ------------------------------------------------ */

struct renc_blob_location {
    char *endpoint;  /* the account's blob endpoint, no trailing '/':
                      * "https://acct.blob.core.windows.net" or, path style,
                      * "http://127.0.0.1:10000/devstoreaccount1" */
    char *account;   /* "acct" */
    char *container; /* "c" */
    char *prefix;    /* "" or the blob-name prefix as given ("dir/sub"), no leading '/' */
    char *sas;       /* the SAS query string from the URL (a secret), or NULL */
    int path_style;  /* 1 when the account is the first path segment */
};

/* renc_blob_is_url: 1 when s names blob storage (https://, http://, az://),
 * 0 for anything else (a local path). */
int renc_blob_is_url(const char *s);

/* renc_blob_parse_url: splits
 *   https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX][?SAS]
 *   (any host of the form ACCOUNT.blob.<suffix>: the other Azure clouds)
 *   http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX][?SAS]   (path style:
 *   an IP address, localhost, or any host not of the form above)
 *   az://ACCOUNT/CONTAINER[/PREFIX]
 * into loc.  az:// takes its endpoint from the connection string's
 * BlobEndpoint when its account matches (so az://devstoreaccount1/c with
 * UseDevelopmentStorage=true reaches Azurite), else
 * https://ACCOUNT.blob.core.windows.net (EndpointSuffix honoured).
 * conn_string may be NULL.  Percent-escapes in the path are decoded into
 * container and prefix.  -RENC_E_INVALID with a reason in why (may be
 * NULL, at least 128 bytes) for a URL that names no container. */
int renc_blob_parse_url(const char *url, const char *conn_string, struct renc_blob_location *loc,
                        char *why, size_t why_max);
void renc_blob_location_cleanup(struct renc_blob_location *loc);

/* renc_blob_location_describe: "ENDPOINT/CONTAINER[/PREFIX]" with no SAS,
 * for messages and the journal's names.  Returns 0 or -RENC_E_TOO_BIG. */
int renc_blob_location_describe(const struct renc_blob_location *loc, char *out, size_t max);

/* renc_blob_redact: url with the value of every sig= query parameter
 * replaced by "REDACTED" (and any other query parameter left), into out. */
int renc_blob_redact(const char *url, char *out, size_t max);

/* ---- the account and its credential ------------------------------------ */

/* Where the credential comes from, first match wins:
 *   1. a SAS in the URL (loc->sas)
 *   2. AZURE_STORAGE_CONNECTION_STRING (AccountName/AccountKey,
 *      SharedAccessSignature, BlobEndpoint, DefaultEndpointsProtocol,
 *      EndpointSuffix; UseDevelopmentStorage=true is Azurite's well-known
 *      account at http://127.0.0.1:10000) when its account is loc's
 *   3. AZURE_STORAGE_ACCOUNT (must equal loc's account) + AZURE_STORAGE_KEY
 *   4. AZURE_STORAGE_SAS_TOKEN
 *   5. Microsoft Entra tokens (scope https://storage.azure.com/.default)
 *      from creds, the same sources as the key vault's.
 * The values are passed in (the caller reads the environment), so tests
 * and the CLI choose. */
struct renc_blob_account_opts {
    const char *connection_string;
    const char *account_name;  /* AZURE_STORAGE_ACCOUNT */
    const char *account_key;   /* AZURE_STORAGE_KEY (base64); copied into secure memory */
    const char *sas_token;     /* AZURE_STORAGE_SAS_TOKEN, with or without a leading '?' */
    const struct renc_azure_credentials *entra; /* NULL: no Entra fallback */
    const char *ca_file;       /* PEM of CAs trusted besides the system's (HTTPS Azurite) */
    long timeout_ms;           /* per request; 0: 60000 */
    unsigned retries;          /* 5xx/408/no answer; 0: the retry policy's default */
    void (*note)(void *arg, const char *line); /* retry notes; may be NULL */
    void *note_arg;
};

enum renc_blob_auth { RENC_BLOB_AUTH_SHARED_KEY = 1, RENC_BLOB_AUTH_SAS, RENC_BLOB_AUTH_ENTRA };

struct renc_blob_account;

/* renc_blob_account_new: the account loc points at, with its credential
 * (o's sources in the order above).  -RENC_E_STORE_AUTH when none applies
 * (why says which were looked at), -RENC_E_INVALID for a malformed
 * connection string or key. */
int renc_blob_account_new(struct renc_blob_account **out, const struct renc_blob_location *loc,
                          const struct renc_blob_account_opts *o, char *why, size_t why_max);
void renc_blob_account_free(struct renc_blob_account *a);
enum renc_blob_auth renc_blob_account_auth(const struct renc_blob_account *a);
/* The retry policy's counts (requests, retries, 5xx, no answer). */
void renc_blob_account_stats(struct renc_blob_account *a, struct renc_retry_stats *st);

/* renc_blob_shared_key_sign: the SharedKey signature (base64 of
 * HMAC-SHA256 under the decoded key) of string_to_sign: exposed for the
 * known-answer test of ../shared/PROTOCOLS.md 3.2. */
int renc_blob_shared_key_sign(const char *key_b64, const char *string_to_sign, char *out,
                              size_t max);

/* ---- one connection ------------------------------------------------------ */

struct renc_blob_conn;
int renc_blob_conn_new(struct renc_blob_conn **out, struct renc_blob_account *a);
void renc_blob_conn_free(struct renc_blob_conn *c);
/* The service's error code of the last failed request ("ConditionNotMet"),
 * its HTTP status, or "" / 0. */
const char *renc_blob_last_error(const struct renc_blob_conn *c, long *status);
/* Bytes sent in request bodies through c so far (what a rewrap's test
 * counts: a header block, not the records). */
uint64_t renc_blob_conn_bytes_sent(const struct renc_blob_conn *c);

/* ---- listing --------------------------------------------------------------- */

struct renc_blob_props;

struct renc_blob_item {
    const char *name;        /* the full blob name */
    uint64_t size;
    const char *etag;        /* quoted, as the ETag header gives it */
    const char *blob_type;   /* "BlockBlob", "PageBlob", "AppendBlob" */
    /* With RENC_BLOB_LIST_METADATA: the version's properties as listed
     * (etag, size, blob type, the five content headers, metadata, tag
     * count), what Get Blob Properties would give for it.  NULL when not
     * asked, and when the listing cannot say: a metadata name the service
     * lists but could not send back (not an identifier, e.g. its
     * "x-ms-invalid-name"): the caller asks Get Blob Properties then. */
    const struct renc_blob_props *props;
    /* With RENC_BLOB_LIST_TAGS: the index tags as renc_blob_get_tags gives
     * them ("k1=v1&k2=v2" URL-encoded, Put Blob's x-ms-tags), "" for none;
     * NULL when not asked. */
    const char *tags;
};

/* What a listing includes besides names, sizes and ETags (include=). */
#define RENC_BLOB_LIST_METADATA 1u
#define RENC_BLOB_LIST_TAGS 2u

/* The service's limits a listed item is held to (memory per item stays
 * bounded): all metadata names and values together, tags per blob. */
#define RENC_BLOB_META_MAX 8192
#define RENC_BLOB_TAGS_MAX 10

/* renc_blob_list_page: one page of List Blobs (restype=container&comp=list,
 * prefix, marker, maxresults <= 5000, include= from the RENC_BLOB_LIST_*
 * flags), parsed as it streams (expat): item is called for each blob as
 * its element closes (the pointers, props and tags included, live until
 * the call returns; a negative return stops the listing and is returned).
 * An item past the limits above is -RENC_E_STORE.
 * marker: "" or NULL for the first page; next_marker gets the page's
 * NextMarker ("" on the last page). */
int renc_blob_list_page(struct renc_blob_conn *c, const char *container, const char *prefix,
                        const char *marker, unsigned maxresults, unsigned include,
                        int (*item)(void *arg, const struct renc_blob_item *it), void *arg,
                        char *next_marker, size_t next_max);

/* ---- reading --------------------------------------------------------------- */

/* A blob's properties, as Get Blob Properties gives them: what a
 * replacement carries over. */
struct renc_blob_props {
    char etag[RENC_BLOB_ETAG_MAX];
    uint64_t size;
    char *content_type, *content_encoding, *content_language, *content_disposition,
        *cache_control;                      /* NULL when not set */
    char **meta_names, **meta_values;        /* x-ms-meta-* (names without the prefix) */
    size_t meta_count;
    unsigned tag_count;                      /* x-ms-tag-count (0 when absent) */
    char blob_type[16];
};
void renc_blob_props_cleanup(struct renc_blob_props *p);

/* renc_blob_head: Get Blob Properties of name.  if_match may be NULL. */
int renc_blob_head(struct renc_blob_conn *c, const char *container, const char *name,
                   const char *if_match, struct renc_blob_props *p);

/* renc_blob_get_range: len bytes at off of name into buf (x-ms-range),
 * with If-Match: if_match (NULL: none), *got the bytes that came (fewer at
 * the blob's end; 0 at or past it, the service's 416 included). */
int renc_blob_get_range(struct renc_blob_conn *c, const char *container, const char *name,
                        const char *if_match, uint64_t off, void *buf, size_t len, size_t *got);

/* renc_blob_get_tags: the blob's index tags as Put Block List's x-ms-tags
 * header wants them ("k1=v1&k2=v2", URL-encoded), into *out (malloc'd; ""
 * for none). */
int renc_blob_get_tags(struct renc_blob_conn *c, const char *container, const char *name,
                       const char *if_match, char **out);

struct renc_blob_block {
    char id[96];   /* base64, as the service lists it */
    uint64_t size;
};
/* renc_blob_block_list: the committed blocks of name (Get Block List,
 * blocklisttype=committed) with If-Match, into *out (malloc'd, *n). A blob
 * put in one Put Blob has none (n 0). */
int renc_blob_block_list(struct renc_blob_conn *c, const char *container, const char *name,
                         const char *if_match, struct renc_blob_block **out, size_t *n);

/* ---- writing --------------------------------------------------------------- */

/* renc_blob_block_id: the base64 block id for (tag, index): every id of
 * the tool has the same encoded length (48 bytes before base64).  tag: at
 * most 32 characters. */
int renc_blob_block_id(const char *tag, uint64_t index, char out[96]);

/* renc_blob_put_block: stages len bytes at data as block id_b64 of name. */
int renc_blob_put_block(struct renc_blob_conn *c, const char *container, const char *name,
                        const char *id_b64, const void *data, size_t len);

/* renc_blob_put_block_list: commits ids as name's content: the first
 * n_new as <Uncommitted> (just staged by the caller), the rest as
 * <Committed> (blocks the blob already has: a rewrap keeps its records so;
 * never <Latest>, which would take an uncommitted block of the same id
 * left by someone else).  With If-Match: if_match (NULL: none), or
 * If-None-Match: * when if_none_match; the properties, metadata and tags
 * of props (may be NULL: none) and tags ("k=v&…" or NULL) set on the new
 * version.  new_etag (may be NULL) gets the committed version's ETag. */
int renc_blob_put_block_list(struct renc_blob_conn *c, const char *container, const char *name,
                             char *const *ids, size_t n, size_t n_new, const char *if_match,
                             int if_none_match,
                             const struct renc_blob_props *props, const char *tags,
                             char new_etag[RENC_BLOB_ETAG_MAX]);

/* renc_blob_put: one Put Blob of len bytes (small blobs): BlockBlob, the
 * same conditions, properties and tags as above. */
int renc_blob_put(struct renc_blob_conn *c, const char *container, const char *name,
                  const void *data, size_t len, const char *if_match, int if_none_match,
                  const struct renc_blob_props *props, const char *tags,
                  char new_etag[RENC_BLOB_ETAG_MAX]);

/* renc_blob_delete: Delete Blob with If-Match (NULL: none). */
int renc_blob_delete(struct renc_blob_conn *c, const char *container, const char *name,
                     const char *if_match);

/* renc_blob_create_container: 0 when made or already there. */
int renc_blob_create_container(struct renc_blob_conn *c, const char *container);

/* ---- what the account keeps besides the current versions ------------------ */

/* renc_blob_retention: whether the service keeps soft-deleted blobs
 * (Get Blob Service Properties: DeleteRetentionPolicy) and, where the
 * listing says so, how many previous versions and soft-deleted blobs lie
 * under prefix (List Blobs with include=versions,deleted; -1 when the
 * service does not tell). */
struct renc_blob_retention {
    int soft_delete;          /* 1 on, 0 off, -1 unknown */
    int64_t old_versions;     /* previous versions under the prefix, or -1 */
    int64_t deleted;          /* soft-deleted blobs under the prefix, or -1 */
};
int renc_blob_retention(struct renc_blob_conn *c, const char *container, const char *prefix,
                        struct renc_blob_retention *r);

#endif
