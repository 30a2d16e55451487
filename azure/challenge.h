/* azure/challenge.h — what an Azure service's 401 asks for: its
 * WWW-Authenticate Bearer challenge names the authority (whose last path
 * segment is the tenant) and the resource or scope a token must be for.
 * The key vault answers so to a request without a token (keys/akv.c learns
 * its tenant and scope from it); a blob store answers the same way. */
#ifndef RENC_AZURE_CHALLENGE_H
#define RENC_AZURE_CHALLENGE_H

struct renc_azure_challenge {
    char tenant[128];
    char scope[512];    /* resource + "/.default", or the scope given */
    char resource[512]; /* the scope without "/.default" */
    int foreign;        /* the resource is not the service's domain (refused) */
};

/* renc_azure_parse_challenge: tenant (the authorization URL's last segment)
 * and scope (resource + "/.default", or the scope given) from a Bearer
 * challenge; -RENC_E_VAULT_AUTH when malformed or when the resource is not
 * host's own domain or a parent of it (then out->foreign is 1, so that a
 * service cannot send the tool for a token to another). */
int renc_azure_parse_challenge(const char *hdr, const char *host,
                               struct renc_azure_challenge *out);

#endif
