/* keys/keyring.c — the local keyring on disk (see keyring.h for the
 * layout): files, the lock, the sweep, and the key operations.  The state
 * file's text is keyring_state.c's (its format is written there).
 *
 * Material files are named VERSION.key (AES-256) or VERSION.pem (RSA); the
 * type of a version is the extension of the file that exists.
 *
 * Crash safety: the state file is the one commit point of every change.
 * Material is written (and made durable) before the state that names it,
 * so a change killed at any point leaves the old state or the new one:
 *
 *   - a key folder without a state file is an unfinished create: the key
 *     does not exist yet (get says not found, list skips it).  It can hold
 *     version 1's material only; with anything else it is left alone;
 *   - a material file the state does not name, numbered above every
 *     version it names, is an unfinished rotation's: no blob can have been
 *     wrapped under it, as wrapping starts from the state;
 *   - temporaries (".FILE.tmp", and "FILE.tmp.PID" of earlier releases) are
 *     an interrupted write's.
 *
 * Every change first sweeps those away under KEYRING/.lock (renc_key_begin),
 * so the next change of the key redoes what was cut short and no key
 * material is left behind in a file nothing names.  The keyring is the
 * tool's private folder (0700, one writer under the lock): nothing else
 * puts files in a key folder, and only the shapes above are removed.
 */
#include "keys/keyring.h"
#include "keys/keyring_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"

#define RENC_STATE_MAX (64 * 1024)
#define RENC_MATERIAL_MAX (64 * 1024)

struct renc_keyring {
    char *dir;
};

/* Refuses anything group or others can reach, or that another user owns:
 * keys are as private as an ssh key. */
static int renc_check_private(const struct stat *st)
{
    RENC_RETURN_IF((st->st_mode & 077) != 0, -RENC_E_INSECURE_PERMS);
    RENC_RETURN_IF(st->st_uid != geteuid(), -RENC_E_INSECURE_PERMS);
    return 0;
}

static int renc_path(char *out, size_t max, const char *a, const char *b, const char *c)
{
    int n = c ? snprintf(out, max, "%s/%s/%s", a, b, c)
              : b ? snprintf(out, max, "%s/%s", a, b) : snprintf(out, max, "%s", a);
    return n < 0 || (size_t)n >= max ? -RENC_E_TOO_BIG : 0;
}

/* Makes a directory's entries durable. */
static int renc_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* The temporary a file of a key folder is written to: ".NAME.tmp" beside
 * it.  One name, no pid: changes run one at a time under the lock, and a
 * leftover is removed by the next change (renc_key_sweep). */
static int renc_tmp_path(char *out, size_t max, const char *dir, const char *name)
{
    int n = snprintf(out, max, "%s/.%s.tmp", dir, name);
    return n < 0 || (size_t)n >= max ? -RENC_E_TOO_BIG : 0;
}

/* Writes a file atomically with mode 0600: temporary, fsync, rename, fsync
 * of the directory.  With exclusive, an existing file is not replaced.
 * Called under the keyring lock only. */
static int renc_write_private(const char *dir, const char *name, const uint8_t *data,
                              size_t len, int exclusive)
{
    char path[4096], tmp[4200];
    int rc = renc_path(path, sizeof path, dir, name, NULL);
    if (rc || (rc = renc_tmp_path(tmp, sizeof tmp, dir, name)))
        return rc;
    if (unlink(tmp) != 0 && errno != ENOENT) /* an interrupted write's */
        return -errno;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out_unlink;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto out_unlink;
    }
    close(fd);
    fd = -1;
    if (exclusive) {
        /* link() fails with EEXIST rather than replacing a key's material. */
        if (link(tmp, path) != 0) {
            rc = errno == EEXIST ? -RENC_E_KEY_EXISTS : -errno;
            goto out_unlink;
        }
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = -errno;
        goto out_unlink;
    }
    return renc_fsync_dir(dir);

out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

/* Reads a whole private file (at most max bytes) into secure memory. */
static int renc_read_private(const char *path, struct renc_key **out, size_t max)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -RENC_E_KEY_NOT_FOUND : -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    if ((rc = renc_check_private(&st)))
        goto out_close;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        rc = -RENC_E_BAD_KEYRING;
        goto out_close;
    }
    struct renc_key *k = renc_key_new((size_t)st.st_size + 1);
    if (!k) {
        rc = -RENC_E_NOMEM;
        goto out_close;
    }
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, k->bytes + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -RENC_E_BAD_KEYRING;
            renc_key_free(k);
            goto out_close;
        }
        off += (size_t)n;
    }
    k->bytes[off] = '\0'; /* PEM text is handed on as a string */
    k->len = off;
    *out = k;
out_close:
    close(fd);
    return rc;
}

/* Holds KEYRING/.lock for the duration of a change. */
static int renc_keyring_lock(const struct renc_keyring *kr)
{
    char path[4096];
    int rc = renc_path(path, sizeof path, kr->dir, ".lock", NULL);
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) /* no keyring folder (opened without create): no such key */
        return errno == ENOENT ? -RENC_E_KEY_NOT_FOUND : -errno;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            rc = -errno;
            close(fd);
            return rc;
        }
    }
    return fd;
}

static void renc_keyring_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing drops the flock */
}

int renc_keyring_open(struct renc_keyring **out, const char *dir, int create)
{
    struct stat st;
    int missing = 0;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT)
            return -errno;
        if (!create) {
            missing = 1; /* an empty keyring: every local key is not found */
        } else {
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return -errno;
            if (lstat(dir, &st) != 0)
                return -errno;
        }
    }
    if (!missing) {
        RENC_RETURN_IF(!S_ISDIR(st.st_mode), -ENOTDIR);
        int rc = renc_check_private(&st);
        if (rc)
            return rc;
    }
    struct renc_keyring *kr = renc_calloc(1, sizeof *kr);
    RENC_RETURN_IF(!kr, -RENC_E_NOMEM);
    kr->dir = renc_strdup(dir);
    if (!kr->dir) {
        renc_free(kr);
        return -RENC_E_NOMEM;
    }
    *out = kr;
    return 0;
}

void renc_keyring_free(struct renc_keyring *kr)
{
    if (!kr)
        return;
    renc_free(kr->dir);
    renc_free(kr);
}

const char *renc_keyring_dir(const struct renc_keyring *kr)
{
    return kr->dir;
}

/* The type of a version: which material file exists (a
 * renc_keyring_type_fn; ctx is the key's folder). */
static int renc_version_type(void *ctx, const char *version, enum renc_kek_type *type)
{
    const char *keydir = ctx;
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s.key", keydir, version) >= (int)sizeof path)
        return -RENC_E_TOO_BIG;
    if (lstat(path, &st) == 0) {
        *type = RENC_KEK_AES256;
        return 0;
    }
    if (snprintf(path, sizeof path, "%s/%s.pem", keydir, version) >= (int)sizeof path)
        return -RENC_E_TOO_BIG;
    if (lstat(path, &st) == 0) {
        *type = RENC_KEK_RSA;
        return 0;
    }
    return -RENC_E_KEY_NOT_FOUND;
}

int renc_keyring_name_valid(const char *name)
{
    /* Names starting with '.' are the keyring's own (.lock, temporaries). */
    return renc_keyref_name_valid(name, RENC_KEY_NAME_MAX) && name[0] != '.';
}

int renc_keyring_get(struct renc_keyring *kr, const char *name, struct renc_keyring_key *out)
{
    RENC_RETURN_IF(!renc_keyring_name_valid(name), -RENC_E_BAD_KEYREF);
    char keydir[4096], path[4200];
    int rc = renc_path(keydir, sizeof keydir, kr->dir, name, NULL);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(keydir, &st) != 0)
        return errno == ENOENT ? -RENC_E_KEY_NOT_FOUND : -errno;
    RENC_RETURN_IF(!S_ISDIR(st.st_mode), -RENC_E_BAD_KEYRING);
    if ((rc = renc_check_private(&st)))
        return rc;
    if (snprintf(path, sizeof path, "%s/state", keydir) >= (int)sizeof path)
        return -RENC_E_TOO_BIG;
    struct renc_key *text = NULL;
    /* No state file: an unfinished create, so no key (yet). */
    if ((rc = renc_read_private(path, &text, RENC_STATE_MAX)))
        return rc;
    struct renc_keyring_key key;
    memset(&key, 0, sizeof key);
    strcpy(key.name, name);
    rc = renc_keyring_state_parse(&key, (char *)text->bytes, text->len, renc_version_type,
                                  keydir);
    renc_key_free(text);
    if (rc) {
        renc_keyring_key_cleanup(&key);
        return rc;
    }
    *out = key;
    return 0;
}

static int renc_state_write(struct renc_keyring *kr, const struct renc_keyring_key *key)
{
    char *buf = NULL;
    size_t n = 0;
    int rc = renc_keyring_state_format(&buf, &n, key);
    if (rc)
        return rc;
    char keydir[4096];
    rc = renc_path(keydir, sizeof keydir, kr->dir, key->name, NULL);
    if (rc == 0)
        rc = renc_write_private(keydir, "state", (const uint8_t *)buf, n, 0);
    renc_free(buf);
    return rc;
}

/* 1 when s is a non-empty run of decimal digits; its value in *out. */
static int renc_digits(const char *s, size_t len, unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 9)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return 1;
}

/* 1 when base is a temporary of an interrupted write: ".FILE.tmp", or
 * "FILE.tmp.PID" as earlier releases named them. */
static int renc_is_leftover_tmp(const char *base)
{
    size_t n = strlen(base);
    if (base[0] == '.' && n > 5 && strcmp(base + n - 4, ".tmp") == 0)
        return 1;
    const char *t = strstr(base, ".tmp.");
    unsigned long pid;
    return t && t != base && renc_digits(t + 5, strlen(t + 5), &pid);
}

/* 1 when base is a material file, VERSION.key or VERSION.pem; the version
 * is copied to version. */
static int renc_is_material(const char *base, char version[RENC_KEY_VERSION_MAX + 1])
{
    size_t n = strlen(base);
    if (n < 5 || n - 4 > RENC_KEY_VERSION_MAX ||
        (strcmp(base + n - 4, ".key") != 0 && strcmp(base + n - 4, ".pem") != 0))
        return 0;
    memcpy(version, base, n - 4);
    version[n - 4] = '\0';
    return renc_keyref_name_valid(version, RENC_KEY_VERSION_MAX);
}

/* The highest numbered version key names (0 when none is numbered). */
static unsigned long renc_key_highest(const struct renc_keyring_key *key)
{
    unsigned long high = 0, v;
    for (size_t i = 0; i < key->version_count; i++) {
        const char *s = key->versions[i].version;
        if (renc_digits(s, strlen(s), &v) && v > high)
            high = v;
    }
    return high;
}

/* Whether the sweep removes base from the folder of key (NULL: the folder
 * has no state, an unfinished create).  -RENC_E_BAD_KEYRING for a file the
 * keyring never makes in a folder without a state: it is not removed, and
 * neither is the folder. */
static int renc_sweep_verdict(const char *base, const struct renc_keyring_key *key)
{
    char version[RENC_KEY_VERSION_MAX + 1];
    unsigned long v;
    if (renc_is_leftover_tmp(base))
        return 1;
    if (!renc_is_material(base, version))
        return key ? 0 : -RENC_E_BAD_KEYRING;
    /* A create writes version 1 only: other material in a folder without
     * a state is a key that lost its state, not to be deleted. */
    if (!key)
        return strcmp(version, "1") == 0 ? 1 : -RENC_E_BAD_KEYRING;
    for (size_t i = 0; i < key->version_count; i++)
        if (strcmp(key->versions[i].version, version) == 0)
            return 0;
    /* Named by no state, above every version: a rotation cut short before
     * its commit.  Other unnamed files are left alone. */
    return renc_digits(version, strlen(version), &v) && v > renc_key_highest(key);
}

/* renc_key_sweep: under the lock, removes what an interrupted change left in
 * KEYRING/NAME (see the top of this file); key is its committed state, or
 * NULL when it has none, and then the folder itself goes too.  0 also when
 * there is no folder. */
static int renc_key_sweep(struct renc_keyring *kr, const char *name,
                          const struct renc_keyring_key *key)
{
    char keydir[4096], path[4400];
    int rc = renc_path(keydir, sizeof keydir, kr->dir, name, NULL);
    if (rc)
        return rc;
    DIR *d = opendir(keydir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    /* Two passes: nothing is removed from a folder that holds anything the
     * sweep refuses (a state among them, when key is NULL). */
    int removed = 0;
    struct dirent *e;
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        rewinddir(d);
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            int verdict = renc_sweep_verdict(e->d_name, key);
            if (verdict <= 0 || pass == 0) {
                rc = verdict < 0 ? verdict : 0;
                continue;
            }
            if ((rc = renc_path(path, sizeof path, keydir, e->d_name, NULL)) == 0 &&
                unlink(path) != 0 && errno != ENOENT)
                rc = -errno;
            removed = 1;
        }
    }
    closedir(d);
    if (rc == 0 && !key) {
        if (rmdir(keydir) != 0)
            return -errno;
        return renc_fsync_dir(kr->dir);
    }
    if (rc == 0 && removed)
        rc = renc_fsync_dir(keydir);
    return rc;
}

/* renc_key_begin: the first step of every change of key NAME, under the
 * lock: its committed state into key (to be cleaned up by the caller when 0
 * is returned), after the sweep of what an interrupted change left.
 * -RENC_E_KEY_NOT_FOUND when there is no committed state (a folder left by
 * an unfinished create is swept away first). */
static int renc_key_begin(struct renc_keyring *kr, const char *name,
                          struct renc_keyring_key *key)
{
    int rc = renc_keyring_get(kr, name, key);
    if (rc == -RENC_E_KEY_NOT_FOUND) {
        int sw = renc_key_sweep(kr, name, NULL);
        return sw ? sw : rc;
    }
    if (rc)
        return rc;
    if ((rc = renc_key_sweep(kr, name, key)))
        renc_keyring_key_cleanup(key);
    return rc;
}

/* renc_key_tidy: after a change of NAME failed (not killed), what it left
 * is swept at once rather than by the next change.  Best effort: the
 * change's own error is what the caller reports. */
static void renc_key_tidy(struct renc_keyring *kr, const char *name)
{
    struct renc_keyring_key key;
    if (renc_key_begin(kr, name, &key) == 0)
        renc_keyring_key_cleanup(&key);
}

/* Generates a version's material and writes it, refusing to overwrite. */
static int renc_material_create(const char *keydir, const char *version,
                                enum renc_kek_type type, unsigned bits)
{
    struct renc_kek *kek = NULL;
    struct renc_key *material = NULL;
    char file[RENC_KEY_VERSION_MAX + 8];
    int rc = renc_kek_generate(&kek, type, bits);
    if (rc)
        return rc;
    if ((rc = renc_kek_export(&material, kek)))
        goto out_free_kek;
    snprintf(file, sizeof file, "%s.%s", version, type == RENC_KEK_AES256 ? "key" : "pem");
    rc = renc_write_private(keydir, file, material->bytes, material->len, 1);
    renc_key_free(material);
out_free_kek:
    renc_kek_free(kek);
    return rc;
}

int renc_keyring_create_key(struct renc_keyring *kr, const char *name,
                            enum renc_kek_type type, unsigned bits)
{
    RENC_RETURN_IF(!renc_keyring_name_valid(name), -RENC_E_BAD_KEYREF);
    RENC_RETURN_IF(type == RENC_KEK_RSA && bits != 2048 && bits != 3072 && bits != 4096,
                   -RENC_E_INVALID);
    char keydir[4096];
    int rc = renc_path(keydir, sizeof keydir, kr->dir, name, NULL);
    if (rc)
        return rc;
    int lock = renc_keyring_lock(kr);
    if (lock < 0)
        return lock;
    struct renc_keyring_key key;
    memset(&key, 0, sizeof key);
    rc = renc_key_begin(kr, name, &key);
    if (rc == 0) {
        renc_keyring_key_cleanup(&key);
        rc = -RENC_E_KEY_EXISTS;
    }
    if (rc != -RENC_E_KEY_NOT_FOUND)
        goto out_unlock;
    /* The folder, the material, then the state: the commit point.  A kill
     * before the state leaves a folder without one, which the next change
     * of NAME sweeps away. */
    if (mkdir(keydir, 0700) != 0) {
        rc = -errno;
        goto out_unlock;
    }
    strcpy(key.name, name);
    strcpy(key.current, "1");
    key.state = RENC_KEY_ENABLED;
    if ((rc = renc_fsync_dir(kr->dir)) == 0 &&
        (rc = renc_material_create(keydir, "1", type, bits)) == 0 &&
        (rc = renc_keyring_key_add_version(&key, "1", type, RENC_KEY_ENABLED, (int64_t)time(NULL))) == 0)
        rc = renc_state_write(kr, &key); /* commit */
    renc_keyring_key_cleanup(&key);
    if (rc)
        renc_key_tidy(kr, name);
out_unlock:
    renc_keyring_unlock(lock);
    return rc;
}

/* renc_material_load: the KEK in a version's material file, whatever the
 * version's state (callers check states).  *out written only on success. */
static int renc_material_load(struct renc_keyring *kr, const char *name,
                              const struct renc_keyring_version *v, struct renc_kek **out)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s/%s.%s", kr->dir, name, v->version,
                 v->type == RENC_KEK_AES256 ? "key" : "pem") >= (int)sizeof path)
        return -RENC_E_TOO_BIG;
    struct renc_key *material = NULL;
    int rc = renc_read_private(path, &material, RENC_MATERIAL_MAX);
    if (rc)
        return rc;
    struct renc_kek *kek = NULL;
    rc = v->type == RENC_KEK_AES256
             ? renc_kek_from_aes(&kek, material->bytes, material->len)
             : renc_kek_from_pem(&kek, (const char *)material->bytes, material->len);
    renc_key_free(material);
    if (rc)
        return rc == -RENC_E_NOMEM ? rc : -RENC_E_BAD_KEYRING;
    *out = kek;
    return 0;
}

int renc_keyring_rotate(struct renc_keyring *kr, const char *name,
                        char version_out[RENC_KEY_VERSION_MAX + 1])
{
    int lock = renc_keyring_lock(kr);
    if (lock < 0)
        return lock;
    struct renc_keyring_key key;
    int rc = renc_key_begin(kr, name, &key);
    if (rc)
        goto out_unlock;
    if (key.state == RENC_KEY_REVOKED) {
        rc = -RENC_E_KEY_REVOKED;
        goto out_cleanup;
    }
    /* Versions are numbered; the next is one past the highest number.  Its
     * material is written first and named by the state last (the commit):
     * a rotation killed in between left a file the sweep has removed. */
    unsigned long next = renc_key_highest(&key) + 1;
    char version[RENC_KEY_VERSION_MAX + 1];
    snprintf(version, sizeof version, "%lu", next);
    const struct renc_keyring_version *cur = NULL;
    for (size_t i = 0; i < key.version_count; i++)
        if (strcmp(key.versions[i].version, key.current) == 0)
            cur = &key.versions[i];
    unsigned bits = 0;
    if (cur->type == RENC_KEK_RSA) {
        /* A disabled or revoked current version still tells the size to
         * keep: read its material without the state checks of
         * renc_keyring_load (nothing is wrapped or unwrapped with it). */
        struct renc_kek *kek = NULL;
        if ((rc = renc_material_load(kr, name, cur, &kek)))
            goto out_cleanup;
        bits = renc_kek_bits(kek);
        renc_kek_free(kek);
    }
    char keydir[4096];
    renc_path(keydir, sizeof keydir, kr->dir, name, NULL);
    enum renc_kek_type type = cur->type;
    if ((rc = renc_material_create(keydir, version, type, bits)))
        goto out_cleanup;
    if ((rc = renc_keyring_key_add_version(&key, version, type, RENC_KEY_ENABLED, (int64_t)time(NULL))))
        goto out_cleanup;
    strcpy(key.current, version);
    if ((rc = renc_state_write(kr, &key)) == 0) /* commit */
        strcpy(version_out, version);
out_cleanup:
    renc_keyring_key_cleanup(&key);
    if (rc)
        renc_key_tidy(kr, name); /* the new material, unless committed */
out_unlock:
    renc_keyring_unlock(lock);
    return rc;
}

int renc_keyring_set_state(struct renc_keyring *kr, const char *name, const char *version,
                           enum renc_key_state state)
{
    RENC_RETURN_IF(!version && state == RENC_KEY_DISABLED, -RENC_E_INVALID);
    int lock = renc_keyring_lock(kr);
    if (lock < 0)
        return lock;
    struct renc_keyring_key key;
    int rc = renc_key_begin(kr, name, &key);
    if (rc)
        goto out_unlock;
    if (!version) {
        key.state = state;
    } else {
        rc = -RENC_E_KEY_NOT_FOUND;
        for (size_t i = 0; i < key.version_count; i++) {
            if (strcmp(key.versions[i].version, version) == 0) {
                key.versions[i].state = state;
                rc = 0;
            }
        }
    }
    if (rc == 0)
        rc = renc_state_write(kr, &key);
    renc_keyring_key_cleanup(&key);
out_unlock:
    renc_keyring_unlock(lock);
    return rc;
}

static int renc_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int renc_keyring_list(struct renc_keyring *kr, char ***names, size_t *count)
{
    DIR *d = opendir(kr->dir);
    if (!d && errno == ENOENT) {
        *names = NULL; /* no keyring yet: no keys */
        *count = 0;
        return 0;
    }
    if (!d)
        return -errno;
    char **list = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!renc_keyring_name_valid(e->d_name))
            continue;
        char path[4096], state[4200];
        struct stat st;
        if (renc_path(path, sizeof path, kr->dir, e->d_name, NULL) != 0 ||
            lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        /* A folder without a state is a create not finished: no key yet. */
        if (renc_path(state, sizeof state, path, "state", NULL) != 0 ||
            (lstat(state, &st) != 0 && errno == ENOENT))
            continue;
        char **grown = renc_realloc(list, (n + 1) * sizeof *list);
        if (!grown || !(grown[n] = renc_strdup(e->d_name))) {
            if (grown)
                list = grown;
            rc = -RENC_E_NOMEM;
            break;
        }
        list = grown;
        n++;
    }
    closedir(d);
    if (rc) {
        renc_keyring_names_free(list, n);
        return rc;
    }
    if (n > 1)
        qsort(list, n, sizeof *list, renc_name_cmp);
    *names = list;
    *count = n;
    return 0;
}

void renc_keyring_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        renc_free(names[i]);
    renc_free(names);
}

int renc_keyring_load(struct renc_keyring *kr, const char *name, const char *version,
                      struct renc_kek **out, char version_out[RENC_KEY_VERSION_MAX + 1])
{
    struct renc_keyring_key key;
    int rc = renc_keyring_get(kr, name, &key);
    if (rc)
        return rc;
    const char *want = version && version[0] ? version : key.current;
    const struct renc_keyring_version *v = NULL;
    for (size_t i = 0; i < key.version_count; i++)
        if (strcmp(key.versions[i].version, want) == 0)
            v = &key.versions[i];
    if (!v)
        rc = -RENC_E_KEY_NOT_FOUND;
    else if (key.state == RENC_KEY_REVOKED || v->state == RENC_KEY_REVOKED)
        rc = -RENC_E_KEY_REVOKED;
    else if (v->state == RENC_KEY_DISABLED)
        rc = -RENC_E_KEY_DISABLED;
    if (rc)
        goto out_cleanup;
    if (!out) {
        /* A check of the states only. */
        if (version_out)
            strcpy(version_out, v->version);
        goto out_cleanup;
    }

    struct renc_kek *kek = NULL;
    if ((rc = renc_material_load(kr, name, v, &kek)))
        goto out_cleanup;
    *out = kek;
    if (version_out)
        strcpy(version_out, v->version);
out_cleanup:
    renc_keyring_key_cleanup(&key);
    return rc;
}
