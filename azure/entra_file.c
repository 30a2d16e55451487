/* azure/entra_file.c — the small secret files the token sources read (the
 * client secret, the federated token, the client certificate), with one
 * set of checks: a regular file, of a bounded size, read whole into secure
 * memory. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "azure/entra_internal.h"

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

static int renc_entra_check_file(int fd, size_t max, unsigned flags, size_t *size)
{
    struct stat st;
    RENC_RETURN_IF(fstat(fd, &st), -errno);
    RENC_RETURN_IF(!S_ISREG(st.st_mode), -RENC_E_NOT_REGULAR);
    RENC_RETURN_IF((flags & RENC_ENTRA_FILE_OWNER_ONLY) && (st.st_mode & 077),
                   -RENC_E_INSECURE_PERMS);
    RENC_RETURN_IF(st.st_size <= 0, -RENC_E_VAULT_AUTH);
    RENC_RETURN_IF((uint64_t)st.st_size > max, -RENC_E_TOO_BIG);
    *size = (size_t)st.st_size;
    return 0;
}

int renc_entra_read_file(const char *path, size_t max, unsigned flags, struct renc_key **out)
{
    int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = open(path, oflags | ((flags & RENC_ENTRA_FILE_NOFOLLOW) ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -errno;
    size_t size = 0, got = 0;
    struct renc_key *buf = NULL;
    int rc = renc_entra_check_file(fd, max, flags, &size);
    if (rc == 0 && !(buf = renc_key_new(size + 1)))
        rc = -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_read_all(fd, buf->bytes, size, &got);
    close(fd);
    if (rc == 0 && got == 0)
        rc = -RENC_E_VAULT_AUTH;
    if (rc) {
        renc_key_free(buf);
        return rc;
    }
    buf->bytes[got] = '\0';
    buf->len = got + 1;
    *out = buf;
    return 0;
}
