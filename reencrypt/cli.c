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
#include "keys/provider.h"
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

/* What a global option's value is, and so how it is checked and where it
 * goes in struct renc_provider_config. */
enum renc_gopt_kind {
    RENC_GOPT_DIR,     /* the tool's own folders: struct renc_global only */
    RENC_GOPT_PATH,    /* const char * */
    RENC_GOPT_COUNT,   /* unsigned, 1..max */
    RENC_GOPT_SECONDS, /* double, from a count of 1..max seconds */
    RENC_GOPT_CRED,    /* enum renc_azure_cred_mode, by name (renc_cred_modes) */
};

#define RENC_G(field) offsetof(struct renc_global, field)
#define RENC_CFG(field) offsetof(struct renc_provider_config, field)

/* The global options: where each is kept as given, the variable that
 * stands in for it, where it goes in the providers' configuration, and
 * for the counts the range.  A new provider's options are new rows here
 * (and lines in RENC_GLOBAL_OPTS), with fields of its own in struct
 * renc_provider_config. */
static const struct renc_global_def {
    int opt;
    const char *name;
    size_t given;
    const char *env;
    size_t config;
    enum renc_gopt_kind kind;
    unsigned max;
    const char *unit;
} renc_globals[] = {
    {0x1001, "state", RENC_G(state_dir), NULL, 0, RENC_GOPT_DIR, 0, NULL},
    {0x1002, "keyring", RENC_G(keyring_dir), NULL, 0, RENC_GOPT_DIR, 0, NULL},
    {0x1003, "data", RENC_G(data_dir), NULL, 0, RENC_GOPT_DIR, 0, NULL},
    {0x1004, "ca-file", RENC_G(provider_opt[0]), "RENC_CA_FILE", RENC_CFG(akv.ca_file),
     RENC_GOPT_PATH, 0, NULL},
    {0x1005, "akv-rate", RENC_G(provider_opt[1]), "RENC_AKV_RATE", RENC_CFG(akv.rate_limit),
     RENC_GOPT_COUNT, 1000000, " requests per 10 s"},
    {0x1006, "akv-inflight", RENC_G(provider_opt[2]), "RENC_AKV_INFLIGHT",
     RENC_CFG(akv.max_inflight), RENC_GOPT_COUNT, 256, ""},
    {0x1007, "akv-throttle-wait", RENC_G(provider_opt[3]), "RENC_AKV_THROTTLE_WAIT",
     RENC_CFG(akv.throttle_wait_s), RENC_GOPT_SECONDS, 86400, " seconds"},
    {0x1008, "akv-credential", RENC_G(provider_opt[4]), "RENC_AKV_CREDENTIAL",
     RENC_CFG(akv.cred.mode), RENC_GOPT_CRED, 0, NULL},
    {0x1009, "pkcs11-module", RENC_G(provider_opt[5]), "RENC_PKCS11_MODULE",
     RENC_CFG(pkcs11.module), RENC_GOPT_PATH, 0, NULL},
};

/* Provider settings only the environment gives (docs/KEYVAULT.md,
 * "Credentials"): the variable, and where it goes when set and the field
 * is still empty.  Secrets are passed on as they are and copied into
 * secure memory by the provider. */
static const struct {
    const char *env;
    size_t config;
} renc_provider_env[] = {
    {"NO_PROXY", RENC_CFG(akv.no_proxy)},
    {"no_proxy", RENC_CFG(akv.no_proxy)},
    {"AZURE_TENANT_ID", RENC_CFG(akv.cred.tenant)},
    {"AZURE_CLIENT_ID", RENC_CFG(akv.cred.client_id)},
    /* As DefaultAzureCredential: AZURE_CLIENT_ID also picks a
     * user-assigned managed identity. */
    {"AZURE_CLIENT_ID", RENC_CFG(akv.cred.mi_client_id)},
    {"AZURE_CLIENT_SECRET", RENC_CFG(akv.cred.client_secret)},
    {"AZURE_CLIENT_SECRET_FILE", RENC_CFG(akv.cred.client_secret_file)},
    {"AZURE_CLIENT_CERTIFICATE_PATH", RENC_CFG(akv.cred.client_certificate_path)},
    {"AZURE_CLIENT_CERTIFICATE_PASSWORD", RENC_CFG(akv.cred.client_certificate_password)},
    {"AZURE_FEDERATED_TOKEN_FILE", RENC_CFG(akv.cred.federated_token_file)},
    {"AZURE_AUTHORITY_HOST", RENC_CFG(akv.cred.authority)},
    {"IDENTITY_ENDPOINT", RENC_CFG(akv.cred.identity_endpoint)},
    {"IDENTITY_HEADER", RENC_CFG(akv.cred.identity_header)},
    {"RENC_IMDS_ENDPOINT", RENC_CFG(akv.cred.imds_endpoint)},
    /* The token's PIN: never an option (it would show in ps). */
    {"RENC_PKCS11_PIN", RENC_CFG(pkcs11.pin)},
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
        const char **slot = (const char **)((char *)g + renc_globals[i].given);
        unsigned v;
        /* One value each: a second would silently win over the first. */
        if (*slot) {
            fprintf(stderr, "reencrypt: --%s given twice ('%s', '%s'): give it once\n",
                    renc_globals[i].name, *slot, arg);
            return -1;
        }
        enum renc_gopt_kind kind = renc_globals[i].kind;
        enum renc_azure_cred_mode mode;
        if (kind == RENC_GOPT_CRED && renc_cred_mode_parse(arg, &mode)) {
            fprintf(stderr, "reencrypt: --%s '%s': must be " RENC_CRED_MODE_LIST "\n",
                    renc_globals[i].name, arg);
            return -1;
        }
        if ((kind == RENC_GOPT_COUNT || kind == RENC_GOPT_SECONDS) &&
            renc_count_opt(arg, renc_globals[i].max, &v)) {
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

static void renc_note_stderr(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "reencrypt: %s\n", line);
}

/* One option's value (given, or from its variable) into config.  -1
 * after saying why when the variable's value is out of range (a given
 * value was checked when it was given). */
static int renc_global_to_config(const struct renc_global *g, const struct renc_global_def *d,
                                 struct renc_provider_config *config)
{
    if (d->kind == RENC_GOPT_DIR)
        return 0; /* the tool's own folders: not a provider's */
    const char *text = renc_env_or(*(const char *const *)((const char *)g + d->given), d->env);
    void *field = (char *)config + d->config;
    unsigned v = 0;
    switch (d->kind) {
    case RENC_GOPT_DIR:
        return 0;
    case RENC_GOPT_PATH:
        *(const char **)field = text;
        return 0;
    case RENC_GOPT_CRED:
        if (renc_cred_mode_parse(text, (enum renc_azure_cred_mode *)field) == 0)
            return 0;
        fprintf(stderr, "reencrypt: %s '%s': must be " RENC_CRED_MODE_LIST "\n", d->env, text);
        return -1;
    case RENC_GOPT_COUNT:
    case RENC_GOPT_SECONDS:
        if (renc_count_opt(text, d->max, &v)) {
            fprintf(stderr, "reencrypt: --%s (%s) must be 1..%u%s\n", d->name, d->env, d->max,
                    d->unit);
            return -1;
        }
        if (d->kind == RENC_GOPT_COUNT)
            *(unsigned *)field = v;
        else
            *(double *)field = v;
        return 0;
    }
    return 0;
}

/* The providers' configuration from the options and the environment.
 * Nothing is contacted here, nor when the keystore opens: a provider
 * reaches its holder when a command first uses one of its refs.  az is
 * the caller's buffer for the Azure CLI's path. */
static int renc_provider_config_from(const struct renc_global *g, struct renc_keyring *kr,
                                     struct renc_provider_config *config, char *az, size_t az_max)
{
    memset(config, 0, sizeof *config);
    config->keyring = kr;
    config->open_remote = 1;
    config->note = renc_note_stderr;
    for (size_t i = 0; i < sizeof renc_globals / sizeof renc_globals[0]; i++)
        if (renc_global_to_config(g, &renc_globals[i], config))
            return -RENC_E_INVALID;
    for (size_t i = 0; i < sizeof renc_provider_env / sizeof renc_provider_env[0]; i++) {
        const char **field = (const char **)((char *)config + renc_provider_env[i].config);
        if (!*field)
            *field = renc_env_or(NULL, renc_provider_env[i].env);
    }
    renc_find_az(az, az_max);
    config->akv.cred.az_path = az[0] ? az : NULL;
    return 0;
}

/* Blob storage's credentials: the variables Azure's own tools read
 * (azure/blob.h says in which order they apply), the Microsoft Entra
 * sources the key vault's tokens come from, and --ca-file. */
int renc_store_creds_from(const struct renc_global *g, struct renc_store_creds *c)
{
    memset(c, 0, sizeof *c);
    int rc = renc_provider_config_from(g, NULL, &c->config, c->az, sizeof c->az);
    if (rc)
        return rc;
    c->blob = (struct renc_blob_account_opts){
        .connection_string = getenv("AZURE_STORAGE_CONNECTION_STRING"),
        .account_name = getenv("AZURE_STORAGE_ACCOUNT"),
        .account_key = getenv("AZURE_STORAGE_KEY"),
        .sas_token = getenv("AZURE_STORAGE_SAS_TOKEN"),
        .entra = &c->config.akv.cred,
        .ca_file = c->config.akv.ca_file,
        .note = renc_note_stderr,
    };
    return 0;
}

int renc_open_keys(struct renc_global *g, int create, struct renc_keyring **kr,
                   struct renc_keystore **ks)
{
    struct renc_provider_config config;
    char az[PATH_MAX];
    int rc = renc_global_resolve(g, create);
    if (rc)
        return rc;
    if ((rc = renc_keyring_open(kr, g->keyring_dir, create)))
        return rc;
    if (ks && (rc = renc_provider_config_from(g, *kr, &config, az, sizeof az)) == 0)
        rc = renc_keystore_new(ks, &config);
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
                    rc == -RENC_E_KEY_DELETED || rc == -RENC_E_VAULT_DENIED ||
                    rc == -RENC_E_HSM_MODULE || rc == -RENC_E_HSM_LOGIN ||
                    rc == -RENC_E_HSM_TOKEN || rc == -RENC_E_HSM;
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
