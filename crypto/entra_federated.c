/* crypto/entra_federated.c — the workload identity's federated token file
 * (PROTOCOLS.md §2.4): a service-account JWT the kubelet projects into the
 * pod and rotates, read again at every token request. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "crypto/entra_internal.h"

/* Reads all of fd (size bytes as fstat said; a file that grew meanwhile is
 * cut at that size, one that shrank ends early) into buf. */
static int renc_read_all(int fd, uint8_t *buf, size_t size, size_t *got)
{
    size_t off = 0;
    while (off < size) {
        ssize_t n = read(fd, buf + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    *got = off;
    return 0;
}

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
    /* Followed links: the projected file is ..data/NAME through a link. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -RENC_E_NOT_REGULAR;
    if (rc == 0 && st.st_size > RENC_ENTRA_FEDERATED_MAX)
        rc = -RENC_E_TOO_BIG;
    if (rc == 0 && st.st_size <= 0)
        rc = -RENC_E_VAULT_AUTH;
    struct renc_key *buf = rc == 0 ? renc_key_new((size_t)st.st_size + 1) : NULL;
    if (rc == 0 && !buf)
        rc = -RENC_E_NOMEM;
    size_t got = 0;
    if (rc == 0)
        rc = renc_read_all(fd, buf->bytes, (size_t)st.st_size, &got);
    close(fd);
    if (rc == 0) {
        buf->bytes[got] = '\0';
        /* A NUL inside would cut the assertion short. */
        if (strlen((char *)buf->bytes) != got)
            rc = -RENC_E_VAULT_AUTH;
    }
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
