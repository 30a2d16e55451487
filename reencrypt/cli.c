#include "reencrypt/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "keys/akv.h"
#include "state/catalog.h"

/* A count option: 1..max, or 0 when not given. */
static int renc_count_opt(const char *text, unsigned max, unsigned *out)
{
    *out = 0;
    if (!text)
        return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    RENC_RETURN_IF(errno || end == text || *end || text[0] == '-' || v == 0 || v > max,
                   -RENC_E_INVALID);
    *out = (unsigned)v;
    return 0;
}

/* The global options: where each is kept, and for the counts the range. */
static const struct {
    int opt;
    const char *name;
    size_t offset;
    unsigned max; /* 0: a path */
    const char *unit;
} renc_globals[] = {
    {0x1001, "state", offsetof(struct renc_global, state_dir), 0, NULL},
    {0x1002, "keyring", offsetof(struct renc_global, keyring_dir), 0, NULL},
    {0x1003, "data", offsetof(struct renc_global, data_dir), 0, NULL},
    {0x1004, "ca-file", offsetof(struct renc_global, ca_file), 0, NULL},
    {0x1005, "akv-rate", offsetof(struct renc_global, akv_rate), 1000000, " requests per 10 s"},
    {0x1006, "akv-inflight", offsetof(struct renc_global, akv_inflight), 256, ""},
    {0x1007, "akv-throttle-wait", offsetof(struct renc_global, akv_throttle_wait), 86400,
     " seconds"},
    {0x1008, "akv-credential", offsetof(struct renc_global, akv_credential), 0, NULL},
};

/* The values of --akv-credential (and RENC_AKV_CREDENTIAL). */
static const struct {
    const char *name;
    enum renc_azure_cred_mode mode;
} renc_cred_modes[] = {
    {"default", RENC_AZURE_CRED_DEFAULT},
    {"secret", RENC_AZURE_CRED_SECRET},
    {"certificate", RENC_AZURE_CRED_CERTIFICATE},
    {"workload", RENC_AZURE_CRED_WORKLOAD},
    {"managed-identity", RENC_AZURE_CRED_MANAGED_IDENTITY},
    {"cli", RENC_AZURE_CRED_CLI},
};
#define RENC_CRED_MODE_LIST "secret, certificate, workload, managed-identity, cli or default"

static int renc_cred_mode_parse(const char *text, enum renc_azure_cred_mode *out)
{
    *out = RENC_AZURE_CRED_DEFAULT;
    if (!text)
        return 0;
    for (size_t i = 0; i < sizeof renc_cred_modes / sizeof renc_cred_modes[0]; i++)
        if (strcmp(text, renc_cred_modes[i].name) == 0) {
            *out = renc_cred_modes[i].mode;
            return 0;
        }
    return -RENC_E_INVALID;
}

int renc_global_opt(struct renc_global *g, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof renc_globals / sizeof renc_globals[0]; i++) {
        if (renc_globals[i].opt != opt)
            continue;
        const char **slot = (const char **)((char *)g + renc_globals[i].offset);
        unsigned v;
        /* One value each: a second would silently win over the first. */
        if (*slot) {
            fprintf(stderr, "reencrypt: --%s given twice ('%s', '%s'): give it once\n",
                    renc_globals[i].name, *slot, arg);
            return -1;
        }
        enum renc_azure_cred_mode mode;
        if (opt == 0x1008 && renc_cred_mode_parse(arg, &mode)) {
            fprintf(stderr, "reencrypt: --akv-credential '%s': must be " RENC_CRED_MODE_LIST "\n",
                    arg);
            return -1;
        }
        if (renc_globals[i].max && renc_count_opt(arg, renc_globals[i].max, &v)) {
            fprintf(stderr, "reencrypt: --%s '%s': must be 1..%u%s\n", renc_globals[i].name,
                    arg, renc_globals[i].max, renc_globals[i].unit);
            return -1;
        }
        *slot = arg;
        return 1;
    }
    return 0;
}

int renc_env_id_ok(const char *cmd, const char *what, const char *id)
{
    if (renc_env_id_valid(id))
        return 1;
    if (id[0] == '\0')
        renc_err(cmd, "%s: the environment id is empty", what);
    else
        renc_err(cmd, "%s '%s' is not an environment id (1-64 characters of [A-Za-z0-9._-], "
                      "not starting with '.' or '-')", what, id);
    return 0;
}

int renc_opt_once(const char *cmd, const struct option *opts, const char *singles, int opt,
                  uint64_t *seen)
{
    const char *at = opt > 0 && opt < 128 ? strchr(singles, opt) : NULL;
    if (!at)
        return 0;
    uint64_t bit = (uint64_t)1 << ((at - singles) % 64);
    if (!(*seen & bit)) {
        *seen |= bit;
        return 0;
    }
    const char *name = "?";
    for (; opts->name; opts++)
        if (opts->val == opt)
            name = opts->name;
    renc_err(cmd, "--%s given twice: it takes one value, give it once", name);
    return -1;
}

/* 1 when one of the two resolved paths is the other or lies inside it. */
static int renc_paths_nest(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    const char *s = la < lb ? a : b, *l = la < lb ? b : a;
    size_t n = la < lb ? la : lb;
    return strncmp(s, l, n) == 0 && (l[n] == '/' || l[n] == '\0' || (n == 1 && s[0] == '/'));
}

int renc_global_overlap(const struct renc_global *g, const char *path, char *why, size_t max)
{
    char real[PATH_MAX], mine[PATH_MAX];
    if (!realpath(path, real))
        return 0;
    const char *dirs[] = {g->data_dir, g->keyring_dir, g->state_dir};
    const char *names[] = {"the environments' data", "the keyring", "the state directory"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !realpath(dirs[i], mine) || !renc_paths_nest(real, mine))
            continue;
        int holds = strlen(real) <= strlen(mine);
        char q[RENC_PATH_QUOTE_MAX];
        snprintf(why, max, "%s %s (%s)", holds ? "holds" : "lies inside", names[i],
                 renc_path_quote(q, sizeof q, mine));
        return 1;
    }
    return 0;
}

/* mkdir -p with mode 0700 for each created level. */
int renc_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}

int renc_global_resolve(struct renc_global *g, int create)
{
    if (!g->state_dir) {
        const char *home = getenv("RENC_HOME");
        if (home && home[0]) {
            g->state_dir = home;
        } else {
            const char *xdg = getenv("XDG_STATE_HOME");
            const char *h = getenv("HOME");
            int n = xdg && xdg[0]
                        ? snprintf(g->state_buf, sizeof g->state_buf, "%s/reencrypt", xdg)
                        : snprintf(g->state_buf, sizeof g->state_buf, "%s/.local/state/reencrypt",
                                   h && h[0] ? h : ".");
            if (n >= (int)sizeof g->state_buf)
                return -ENAMETOOLONG;
            g->state_dir = g->state_buf;
        }
    }
    if (!g->keyring_dir) {
        if (snprintf(g->keyring_buf, sizeof g->keyring_buf, "%s/keyring", g->state_dir) >=
            (int)sizeof g->keyring_buf)
            return -ENAMETOOLONG;
        g->keyring_dir = g->keyring_buf;
    }
    if (!g->data_dir) {
        const char *d = getenv("RENC_DATA");
        if (d && d[0]) {
            g->data_dir = d;
        } else {
            if (snprintf(g->data_buf, sizeof g->data_buf, "%s/data", g->state_dir) >=
                (int)sizeof g->data_buf)
                return -ENAMETOOLONG;
            g->data_dir = g->data_buf;
        }
    }
    if (create)
        return renc_mkdirs(g->state_dir);
    return 0;
}

static const char *renc_env_or(const char *given, const char *name)
{
    const char *v = given ? given : getenv(name);
    return v && v[0] ? v : NULL;
}


/* The Azure CLI: the first executable `az` in a folder of PATH, as the
 * shell would find it; "" when there is none. */
static void renc_find_az(char *out, size_t max)
{
    const char *path = getenv("PATH");
    out[0] = '\0';
    for (const char *p = path; p && *p;) {
        size_t n = strcspn(p, ":");
        int w = n ? snprintf(out, max, "%.*s/az", (int)n, p) : snprintf(out, max, "./az");
        struct stat st;
        if (w > 0 && (size_t)w < max && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return;
        p += n + (p[n] == ':');
    }
    out[0] = '\0';
}

/* The token sources' settings from the environment (docs/KEYVAULT.md,
 * "Credentials"); the password and the secret are passed on as they are and
 * copied into secure memory by the provider.  -1 (after saying why) when
 * RENC_AKV_CREDENTIAL is not a known value. */
static int renc_akv_credentials_from_env(const struct renc_global *g,
                                         struct renc_azure_credentials *c, char *az, size_t az_max)
{
    const char *mode = renc_env_or(g->akv_credential, "RENC_AKV_CREDENTIAL");
    if (renc_cred_mode_parse(mode, &c->mode)) {
        fprintf(stderr, "reencrypt: RENC_AKV_CREDENTIAL '%s': must be " RENC_CRED_MODE_LIST "\n",
                mode);
        return -1;
    }
    c->tenant = renc_env_or(NULL, "AZURE_TENANT_ID");
    c->client_id = renc_env_or(NULL, "AZURE_CLIENT_ID");
    c->client_secret = renc_env_or(NULL, "AZURE_CLIENT_SECRET");
    c->client_secret_file = renc_env_or(NULL, "AZURE_CLIENT_SECRET_FILE");
    c->client_certificate_path = renc_env_or(NULL, "AZURE_CLIENT_CERTIFICATE_PATH");
    c->client_certificate_password = renc_env_or(NULL, "AZURE_CLIENT_CERTIFICATE_PASSWORD");
    c->federated_token_file = renc_env_or(NULL, "AZURE_FEDERATED_TOKEN_FILE");
    c->authority = renc_env_or(NULL, "AZURE_AUTHORITY_HOST");
    c->identity_endpoint = renc_env_or(NULL, "IDENTITY_ENDPOINT");
    c->identity_header = renc_env_or(NULL, "IDENTITY_HEADER");
    c->imds_endpoint = renc_env_or(NULL, "RENC_IMDS_ENDPOINT");
    /* As DefaultAzureCredential: AZURE_CLIENT_ID also picks a user-assigned
     * managed identity. */
    c->mi_client_id = c->client_id;
    renc_find_az(az, az_max);
    c->az_path = az[0] ? az : NULL;
    return 0;
}

static void renc_akv_note_stderr(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "reencrypt: %s\n", line);
}

/* The akv provider, configured from the options and the environment (the
 * credential variables of docs/KEYVAULT.md).  Nothing is contacted until a
 * command uses an akv: ref. */
static int renc_open_akv(struct renc_global *g, struct renc_akv **out)
{
    struct renc_akv_options o;
    char az[PATH_MAX];
    memset(&o, 0, sizeof o);
    o.ca_file = renc_env_or(g->ca_file, "RENC_CA_FILE");
    o.no_proxy = renc_env_or(NULL, "NO_PROXY");
    if (!o.no_proxy)
        o.no_proxy = renc_env_or(NULL, "no_proxy");
    if (renc_count_opt(renc_env_or(g->akv_rate, "RENC_AKV_RATE"), 1000000, &o.rate_limit)) {
        fprintf(stderr, "reencrypt: --akv-rate (RENC_AKV_RATE) must be 1..1000000 requests "
                        "per 10 s\n");
        return -RENC_E_INVALID;
    }
    if (renc_count_opt(renc_env_or(g->akv_inflight, "RENC_AKV_INFLIGHT"), 256, &o.max_inflight)) {
        fprintf(stderr, "reencrypt: --akv-inflight (RENC_AKV_INFLIGHT) must be 1..256\n");
        return -RENC_E_INVALID;
    }
    unsigned wait_s = 0;
    if (renc_count_opt(renc_env_or(g->akv_throttle_wait, "RENC_AKV_THROTTLE_WAIT"), 86400,
                       &wait_s)) {
        fprintf(stderr, "reencrypt: --akv-throttle-wait (RENC_AKV_THROTTLE_WAIT) must be "
                        "1..86400 seconds\n");
        return -RENC_E_INVALID;
    }
    o.throttle_wait_s = wait_s;
    if (renc_akv_credentials_from_env(g, &o.cred, az, sizeof az))
        return -RENC_E_INVALID;
    o.note = renc_akv_note_stderr;
    return renc_akv_new(out, &o);
}

int renc_open_keys(struct renc_global *g, int create, struct renc_keyring **kr,
                   struct renc_keystore **ks)
{
    int rc = renc_global_resolve(g, create);
    if (rc)
        return rc;
    if ((rc = renc_keyring_open(kr, g->keyring_dir, create)))
        return rc;
    struct renc_akv *akv = NULL;
    if (ks && (rc = renc_open_akv(g, &akv)) == 0 && (rc = renc_keystore_new(ks, *kr)) == 0)
        renc_keystore_set_akv(*ks, akv);
    else if (ks)
        renc_akv_free(akv);
    if (rc) {
        renc_keyring_free(*kr);
        *kr = NULL;
    }
    return rc;
}

void renc_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "reencrypt: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void renc_blob_err(const char *cmd, const char *path_raw, int rc,
                   const struct renc_blob_status *st)
{
    char path[RENC_PATH_QUOTE_MAX];
    renc_path_quote(path, sizeof path, path_raw);
    int key_error = rc == -RENC_E_KEY_NOT_FOUND || rc == -RENC_E_KEY_DISABLED ||
                    rc == -RENC_E_KEY_REVOKED || rc == -RENC_E_KEY_TYPE ||
                    rc == -RENC_E_UNWRAP || rc == -RENC_E_HEADER_AUTH ||
                    rc == -RENC_E_INSECURE_PERMS || rc == -RENC_E_BAD_KEYRING ||
                    rc == -RENC_E_UNSUPPORTED || rc == -RENC_E_BAD_KEYREF ||
                    rc == -RENC_E_KEY_EXPIRED || rc == -RENC_E_KEY_OP ||
                    rc == -RENC_E_VAULT_AUTH || rc == -RENC_E_VAULT_NETWORK ||
                    rc == -RENC_E_VAULT_THROTTLED || rc == -RENC_E_VAULT ||
                    rc == -RENC_E_KEY_DELETED || rc == -RENC_E_VAULT_DENIED;
    if (key_error && st->ref[0])
        renc_err(cmd, "%s: %s (key %s)", path, renc_strerror(rc), st->ref);
    else if (st->in_records)
        renc_err(cmd, "%s: record %llu: %s", path, (unsigned long long)st->record,
                 renc_strerror(rc));
    else
        renc_err(cmd, "%s: %s", path, renc_strerror(rc));
}

void renc_textf(char *out, size_t max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, max, fmt, ap);
    va_end(ap);
}

void renc_bytes_text(char *out, size_t max, uint64_t b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, max, i ? "%.1f %s" : "%.0f %s", v, units[i]);
}

int renc_exit_for(int rc)
{
    switch (-rc) {
    case RENC_E_INVALID:
    case RENC_E_TOO_BIG:
    case RENC_E_BAD_MAGIC:
    case RENC_E_BAD_VERSION:
    case RENC_E_BAD_SEG_SHIFT:
    case RENC_E_BAD_HEADER_LEN:
    case RENC_E_BAD_PADDING:
    case RENC_E_BAD_FLAGS:
    case RENC_E_BAD_CONTEXT:
    case RENC_E_NO_ENV:
    case RENC_E_BAD_SLOT_COUNT:
    case RENC_E_BAD_ALG:
    case RENC_E_HEADER_AUTH:
    case RENC_E_RECORD_AUTH:
    case RENC_E_BAD_RECORD:
    case RENC_E_TRUNCATED:
    case RENC_E_TRAILING:
    case RENC_E_LENGTH_MISMATCH:
    case RENC_E_DECOMPRESS:
    case RENC_E_BAD_KEYREF:
    case RENC_E_ENV_NOT_FOUND:
    case RENC_E_BAD_ARCHIVE:
    case RENC_E_BAD_JOURNAL:
    case RENC_E_BAD_CATALOG:
    case RENC_E_NOT_REGULAR:
    case ENOENT:
    case EISDIR:
    case ENOTDIR:
    case ELOOP:
        return RENC_EXIT_USAGE;
    default:
        return RENC_EXIT_FAILED;
    }
}

int renc_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -RENC_E_INVALID;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return -RENC_E_INVALID;
    *out = (uint64_t)v << shift;
    return 0;
}
