/* azure/entra_cli.c — a token from the Azure CLI (docs/KEYVAULT.md, "Credentials"), for
 * operators at a terminal who ran `az login`:
 *   az account get-access-token --resource R --output json [--tenant T]
 * run with posix_spawn (an argv array, no shell), its standard output read
 * through a pipe into secure memory, its standard error only searched for
 * "az login", killed and reaped after a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/pace.h"
#include "azure/entra_internal.h"

extern char **environ;

#define RENC_CLI_ERR_MAX 8192

/* What the child left: its output (secure), the head of its stderr, status. */
struct renc_cli_run {
    struct renc_key *out;
    size_t out_len;
    char err[RENC_CLI_ERR_MAX + 1];
    size_t err_len;
    int status;    /* from waitpid */
    int timed_out;
    int overflow;  /* more output than RENC_ENTRA_CLI_OUT_MAX */
};

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" in local time, to Unix seconds. */
static int renc_cli_local_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
        return -RENC_E_VAULT_AUTH;
    const char *rest = s + used;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    RENC_RETURN_IF(*rest != '\0', -RENC_E_VAULT_AUTH);
    RENC_RETURN_IF(tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
                       tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970,
                   -RENC_E_VAULT_AUTH);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1; /* local time, daylight saving as it applies then */
    time_t t = mktime(&tm);
    RENC_RETURN_IF(t == (time_t)-1, -RENC_E_VAULT_AUTH);
    *out = (int64_t)t;
    return 0;
}

/* expires_on: a number, or a string of digits. */
static int renc_cli_epoch(json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    RENC_RETURN_IF(!s || !s[0] || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s),
                   -RENC_E_VAULT_AUTH);
    *out = strtoll(s, NULL, 10);
    return *out > 0 ? 0 : -RENC_E_VAULT_AUTH;
}

int renc_entra_cli_parse(const char *json, size_t len, struct renc_key **token,
                         int64_t *expires_on)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *tok = json_string_value(json_object_get(root, "accessToken"));
    json_t *on = json_object_get(root, "expires_on");
    const char *local = json_string_value(json_object_get(root, "expiresOn"));
    int64_t at = 0;
    int rc = on ? renc_cli_epoch(on, &at)
                : local ? renc_cli_local_time(local, &at) : -RENC_E_VAULT_AUTH;
    if (rc == 0 && (!tok || !tok[0] || strlen(tok) > RENC_ENTRA_TOKEN_MAX ||
                    strcspn(tok, " \t\r\n\"") != strlen(tok)))
        rc = -RENC_E_VAULT_AUTH;
    if (rc == 0)
        rc = renc_key_from_bytes(token, (const uint8_t *)tok, strlen(tok) + 1);
    if (rc == 0)
        *expires_on = at;
    json_decref(root);
    return rc;
}

/* Starts az with stdout and stderr on pipes, stdin on /dev/null. */
static int renc_cli_spawn(const char *az, char *const argv[], pid_t *pid, int *out_fd,
                          int *err_fd)
{
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC))
        return -errno;
    if (pipe2(e, O_CLOEXEC)) {
        int rc = -errno;
        close(o[0]), close(o[1]);
        return rc;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* no descriptor of ours leaks */
#endif
    /* Default signal handling and no blocked signals in the child. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(pid, az, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(o[1]);
    close(e[1]);
    if (rc) {
        close(o[0]);
        close(e[0]);
        return -rc;
    }
    *out_fd = o[0];
    *err_fd = e[0];
    return 0;
}

/* One read from fd into the run's stdout or stderr buffer; 1 at EOF. */
static int renc_cli_drain(struct renc_cli_run *r, int fd, int is_out)
{
    char scratch[4096];
    char *dst = scratch;
    size_t room = sizeof scratch;
    if (is_out && r->out_len < RENC_ENTRA_CLI_OUT_MAX) {
        dst = (char *)r->out->bytes + r->out_len;
        room = RENC_ENTRA_CLI_OUT_MAX - r->out_len;
    } else if (!is_out && r->err_len < RENC_CLI_ERR_MAX) {
        dst = r->err + r->err_len;
        room = RENC_CLI_ERR_MAX - r->err_len;
    }
    ssize_t n = read(fd, dst, room);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0)
        return 1;
    if (dst == scratch && is_out)
        r->overflow = 1;
    else if (is_out)
        r->out_len += (size_t)n;
    else if (dst != scratch)
        r->err_len += (size_t)n;
    renc_secmem_wipe(scratch, sizeof scratch);
    return 0;
}

/* Reads both pipes until both close or the deadline passes. */
static void renc_cli_collect(struct renc_cli_run *r, int out_fd, int err_fd, long timeout_ms)
{
    uint64_t deadline = renc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        uint64_t now = renc_now_ns();
        if (now >= deadline) {
            r->timed_out = 1;
            return;
        }
        int left_ms = (int)((deadline - now) / 1000000ull) + 1;
        int n = poll(p, 2, left_ms);
        if (n < 0 && errno != EINTR)
            return;
        for (int i = 0; i < 2 && n > 0; i++)
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                renc_cli_drain(r, p[i].fd, i == 0))
                p[i].fd = -1;
    }
}

static void renc_cli_reap(struct renc_cli_run *r, pid_t pid)
{
    if (r->timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
        ;
}

/* The argument vector; resource and tenant come from the vault's challenge
 * or the environment: one starting with '-' would be read as an option. */
static int renc_cli_argv(const char *az, const char *resource, const char *tenant,
                         const char *argv[12])
{
    RENC_RETURN_IF(!resource || !resource[0] || resource[0] == '-', -RENC_E_INVALID);
    RENC_RETURN_IF(tenant && tenant[0] == '-', -RENC_E_INVALID);
    size_t n = 0;
    argv[n++] = az;
    argv[n++] = "account";
    argv[n++] = "get-access-token";
    argv[n++] = "--resource";
    argv[n++] = resource;
    argv[n++] = "--output";
    argv[n++] = "json";
    if (tenant && tenant[0]) {
        argv[n++] = "--tenant";
        argv[n++] = tenant;
    }
    argv[n] = NULL;
    return 0;
}

/* What the run's end says. */
static enum renc_entra_cli_why renc_cli_outcome(const struct renc_cli_run *r)
{
    if (r->timed_out)
        return RENC_CLI_TIMEOUT;
    int ok = WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
    if (ok)
        return r->overflow ? RENC_CLI_BAD_OUTPUT : RENC_CLI_OK;
    /* posix_spawn reports exec failures itself; a shell wrapper that could
     * not find its target exits 127. */
    if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 127)
        return RENC_CLI_NOT_FOUND;
    return strcasestr(r->err, "az login") ? RENC_CLI_NOT_LOGGED_IN : RENC_CLI_FAILED;
}

int renc_entra_cli_token(const char *az, const char *resource, const char *tenant,
                         long timeout_ms, struct renc_key **token, int64_t *expires_on,
                         enum renc_entra_cli_why *why)
{
    const char *argv[12];
    *why = RENC_CLI_FAILED;
    int rc = renc_cli_argv(az, resource, tenant, argv);
    if (rc)
        return rc;
    struct renc_cli_run *r = renc_calloc(1, sizeof *r);
    RENC_RETURN_IF(!r, -RENC_E_NOMEM);
    r->out = renc_key_new(RENC_ENTRA_CLI_OUT_MAX + 1);
    pid_t pid;
    int out_fd = -1, err_fd = -1;
    rc = r->out ? renc_cli_spawn(az, (char *const *)argv, &pid, &out_fd, &err_fd)
                : -RENC_E_NOMEM;
    if (rc) {
        *why = rc == -RENC_E_NOMEM ? RENC_CLI_FAILED : RENC_CLI_NOT_FOUND;
        renc_key_free(r->out);
        renc_free(r);
        return rc == -RENC_E_NOMEM ? rc : -RENC_E_VAULT_AUTH;
    }
    renc_cli_collect(r, out_fd, err_fd, timeout_ms);
    close(out_fd);
    close(err_fd);
    renc_cli_reap(r, pid);
    *why = renc_cli_outcome(r);
    rc = -RENC_E_VAULT_AUTH;
    if (*why == RENC_CLI_OK &&
        renc_entra_cli_parse((const char *)r->out->bytes, r->out_len, token, expires_on) != 0)
        *why = RENC_CLI_BAD_OUTPUT;
    else if (*why == RENC_CLI_OK)
        rc = 0;
    renc_key_free(r->out);
    renc_secmem_wipe(r->err, sizeof r->err);
    renc_free(r);
    return rc;
}
