/* azure/entra_federated.c — the workload identity's federated token file
 * (docs/KEYVAULT.md, "Credentials"): a service-account JWT the kubelet projects into the
 * pod and rotates, read again at every token request. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "azure/entra_internal.h"

/* Trims ASCII whitespace at both ends of the text in k (in place). */
static void renc_trim_key_text(struct renc_key *k, size_t len)
{
    char *s = (char *)k->bytes;
    size_t start = 0;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    while (start < len && isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, len - start);
    renc_secmem_wipe(s + (len - start), k->len - (len - start));
    k->len = len - start + 1;
}

int renc_entra_read_federated(const char *path, struct renc_key **out)
{
    /* Links are followed: the projected file is ..data/NAME through one. */
    struct renc_key *buf = NULL;
    int rc = renc_entra_read_file(path, RENC_ENTRA_FEDERATED_MAX, 0, &buf);
    if (rc)
        return rc;
    size_t got = buf->len - 1;
    /* A NUL inside would cut the assertion short. */
    if (strlen((char *)buf->bytes) != got)
        rc = -RENC_E_VAULT_AUTH;
    if (rc == 0) {
        renc_trim_key_text(buf, got);
        if (buf->len == 1)
            rc = -RENC_E_VAULT_AUTH;
    }
    if (rc) {
        renc_key_free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}
