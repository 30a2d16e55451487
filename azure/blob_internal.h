/* azure/blob_internal.h — what the blob client's files share (blob_url.c,
 * blob_auth.c, blob_req.c, blob.c, blob_xml.c) and the unit tests reach:
 * the connection string, the account and connection objects, one request
 * and its answer, the XML readers.  docs/internals/azure.md, "Blob client".
 */
#ifndef RENC_AZURE_BLOB_INTERNAL_H
#define RENC_AZURE_BLOB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "azure/blob.h"
#include "crypto/secmem.h"
#include "net/http.h"
#include "net/retry.h"
#include "net/url.h"

/* Azurite's well-known development account (public, in Azure's docs). */
#define RENC_BLOB_DEV_ACCOUNT "devstoreaccount1"
#define RENC_BLOB_DEV_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"
#define RENC_BLOB_DEV_KEY \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

/* ---- the connection string (blob_url.c) ---- */
struct renc_blob_connstr {
    char *account, *blob_endpoint, *protocol, *suffix; /* NULL when absent */
    struct renc_key *key; /* AccountKey as written (base64 text), or NULL */
    struct renc_key *sas; /* SharedAccessSignature (no '?'), or NULL */
};
/* renc_blob_connstr_parse: "Name=value;..." (names case-insensitive,
 * values may hold '='); UseDevelopmentStorage=true gives Azurite's account.
 * -RENC_E_INVALID with why for a part without '='. */
int renc_blob_connstr_parse(struct renc_blob_connstr *cs, const char *s, char *why,
                            size_t why_max);
void renc_blob_connstr_cleanup(struct renc_blob_connstr *cs);
/* The blob endpoint the connection string names for account, or NULL. */
int renc_blob_connstr_endpoint(const struct renc_blob_connstr *cs, char **out);

/* ---- the account and one connection ---- */
struct renc_blob_account {
    struct renc_url ep;     /* the endpoint split: path "" or "/ACCOUNT" */
    char *account;
    enum renc_blob_auth auth;
    struct renc_key *key;   /* SharedKey: the decoded account key */
    struct renc_key *sas;   /* SAS: the query string, no '?' */
    struct renc_azure_tokens *tokens; /* Entra */
    char *tenant;           /* Entra: the settings' tenant, or NULL */
    struct renc_retry retry;
    char *ca_file;
    long timeout_ms;
};

struct renc_blob_conn {
    struct renc_blob_account *a;
    struct renc_http *http;
    char error_code[64];
    long error_status;
    uint64_t bytes_sent;
};

/* The signature's Authorization header value for one request (blob_auth.c):
 * "SharedKey ACCOUNT:SIG" into out. */
int renc_blob_authorization(const struct renc_blob_account *a, const char *string_to_sign,
                            char *out, size_t max);

/* ---- one request (blob_req.c) ---- */
#define RENC_BLOB_MAX_QUERY 8
#define RENC_BLOB_MAX_HEADERS 72

struct renc_blob_pair {
    const char *name, *value;
};

/* What an operation asks for.  Query values are given decoded; x-ms-*
 * headers (x_ms) are signed, the conditional ones go in their slots. */
struct renc_blob_req {
    const char *method;
    const char *container; /* NULL: the account (service properties) */
    const char *name;      /* NULL: the container itself */
    struct renc_blob_pair query[RENC_BLOB_MAX_QUERY];
    size_t nquery;
    struct renc_blob_pair x_ms[RENC_BLOB_MAX_HEADERS];
    size_t nx_ms;
    const char *if_match, *if_none_match;
    const void *body; /* PUT: len bytes (may be 0); NULL for GET/HEAD/DELETE */
    size_t body_len;
    int has_body;
    /* The success body, piece by piece; NULL: dropped.  start: a send
     * starts (again, on a retry). */
    int (*data)(void *arg, long status, const void *p, size_t len);
    void (*start)(void *arg);
    void *arg;
    struct renc_blob_props *props; /* HEAD: filled from the headers */
};

/* What came back. */
struct renc_blob_answer {
    long status;
    char etag[RENC_BLOB_ETAG_MAX];
    char error_code[64];
    char blob_type[16];
};

/* renc_blob_call: sends req (retried), the answer's status and headers
 * into *ans; 0 for any HTTP answer (the caller maps it with
 * renc_blob_map), the error otherwise (already mapped). */
int renc_blob_call(struct renc_blob_conn *c, struct renc_blob_req *req,
                   struct renc_blob_answer *ans);
/* renc_blob_call_ok: renc_blob_call, and a non-2xx answer mapped: 0 only
 * for a 2xx. */
int renc_blob_call_ok(struct renc_blob_conn *c, struct renc_blob_req *req,
                      struct renc_blob_answer *ans);
/* renc_blob_map: a non-2xx answer as blob.h's error, kept in c. */
int renc_blob_map(struct renc_blob_conn *c, const struct renc_blob_answer *ans);
/* renc_blob_string_to_sign (tests): the SharedKey text of one request. */
int renc_blob_string_to_sign(const struct renc_blob_account *a, const struct renc_blob_req *req,
                             const char *path, const char *date, char **out);
/* renc_blob_req_add_query / _header: append; -RENC_E_TOO_BIG when full. */
int renc_blob_req_query(struct renc_blob_req *r, const char *name, const char *value);
int renc_blob_req_header(struct renc_blob_req *r, const char *name, const char *value);

/* renc_blob_props_add_meta: one metadata pair (nl, vl bytes) appended to p
 * (a HEAD's x-ms-meta-* header, a listing's Metadata child). */
int renc_blob_props_add_meta(struct renc_blob_props *p, const char *name, size_t nl,
                             const char *v, size_t vl);

/* ---- the XML answers (blob_xml.c): fed piece by piece ---- */
enum renc_blob_xml_kind {
    RENC_BLOB_XML_LIST = 1, /* EnumerationResults */
    RENC_BLOB_XML_BLOCKS,   /* BlockList (committed) */
    RENC_BLOB_XML_TAGS,     /* Tags */
    RENC_BLOB_XML_ERROR,    /* Error: its Code */
    RENC_BLOB_XML_SERVICE,  /* StorageServiceProperties */
};

struct renc_blob_xml_result {
    int (*item)(void *arg, const struct renc_blob_item *it); /* LIST; may be NULL */
    void *arg;
    unsigned include;              /* LIST: RENC_BLOB_LIST_* (props, tags per item) */
    char *next_marker;             /* LIST: "" when the page is the last */
    uint64_t items, old_versions, deleted; /* LIST: counts */
    struct renc_blob_block *blocks; /* BLOCKS */
    size_t nblocks;
    char *tags;                    /* TAGS: "k=v&..." URL-encoded */
    char code[64];                 /* ERROR */
    int soft_delete;               /* SERVICE: 1, 0, -1 when not said */
};

struct renc_blob_xml;
int renc_blob_xml_new(struct renc_blob_xml **out, enum renc_blob_xml_kind kind,
                      struct renc_blob_xml_result *res);
/* renc_blob_xml_feed: the next piece; -RENC_E_STORE for malformed XML or an
 * element past the limits, an item callback's own error. */
int renc_blob_xml_feed(struct renc_blob_xml *x, const void *data, size_t len);
/* renc_blob_xml_finish: the document must be complete. */
int renc_blob_xml_finish(struct renc_blob_xml *x);
void renc_blob_xml_free(struct renc_blob_xml *x);
void renc_blob_xml_result_cleanup(struct renc_blob_xml_result *res);

#endif
