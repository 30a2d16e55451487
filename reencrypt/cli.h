/* reencrypt/cli.h — what every command shares: the state directory, the
 * keyring, messages and exit codes.  Only reencrypt/ prints. */
#ifndef RENC_APP_CLI_H
#define RENC_APP_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "azure/blob.h"
#include "common/path.h"
#include "keys/keyring.h"
#include "keys/keystore.h"
#include "keys/provider.h"
#include "blob/blobfile.h"

/* Exit codes (docs/CLI.md). */
enum renc_exit {
    RENC_EXIT_OK = 0,
    RENC_EXIT_FAILED = 1, /* the work failed: a key, an I/O error, a blob */
    RENC_EXIT_USAGE = 2,  /* bad usage or bad input */
    RENC_EXIT_INTERRUPTED = 130, /* stopped by SIGINT or SIGTERM */
};

#define RENC_PROVIDER_OPTS_MAX 16

/* Options every command takes. */
struct renc_global {
    const char *state_dir;   /* --state, $RENC_HOME, or the default */
    const char *keyring_dir; /* --keyring, or STATE/keyring */
    const char *data_dir;    /* --data, $RENC_DATA, or STATE/data: DATA/<env>/blobs|backups */
    /* The key providers' options as given (--ca-file, --akv-rate, ...),
     * one per row of the option table in cli.c, which says where each goes
     * in struct renc_provider_config and which variable stands in for it. */
    const char *provider_opt[RENC_PROVIDER_OPTS_MAX];
    char state_buf[4096];
    char keyring_buf[4096];
    char data_buf[4096];
};

/* Long options shared by all commands, and their handler: returns 1 when it
 * took the option, 0 when opt is not one of them, and -1 (after saying why
 * on stderr) when the value is out of range or the option was given before:
 * the command then exits RENC_EXIT_USAGE.  A key provider's option is one
 * line here and one row in cli.c's option table. */
#define RENC_GLOBAL_OPTS \
    {"state", required_argument, NULL, 0x1001}, \
    {"keyring", required_argument, NULL, 0x1002}, \
    {"data", required_argument, NULL, 0x1003}, \
    {"ca-file", required_argument, NULL, 0x1004}, \
    {"akv-rate", required_argument, NULL, 0x1005}, \
    {"akv-inflight", required_argument, NULL, 0x1006}, \
    {"akv-throttle-wait", required_argument, NULL, 0x1007}, \
    {"akv-credential", required_argument, NULL, 0x1008}, \
    {"pkcs11-module", required_argument, NULL, 0x1009}, \
    {"help", no_argument, NULL, 'h'}
int renc_global_opt(struct renc_global *g, int opt, const char *arg);

/* Blob storage's credentials from the environment and g (cli.c). */
struct renc_store_creds {
    struct renc_blob_account_opts blob;
    struct renc_provider_config config; /* the Entra settings blob.entra points into */
    char az[4096];
};
int renc_store_creds_from(const struct renc_global *g, struct renc_store_creds *c);

/* renc_opt_once: in a getopt loop, for an option that takes one value (its
 * val among the characters of singles, at most 64): 0 the first time, and
 * -1, after saying so, when it is given again, which the command refuses
 * (RENC_EXIT_USAGE) rather than let the last value silently win.  seen is
 * the caller's record, 0 before the loop.  0 for any other option. */
int renc_opt_once(const char *cmd, const struct option *opts, const char *singles, int opt,
                  uint64_t *seen);

/* renc_env_id_ok: 1 when id is an environment id (renc_env_id_valid, the
 * one rule for them); else says why ("CMD: WHAT: ...", what naming the
 * option or operand) and returns 0: the command then exits
 * RENC_EXIT_USAGE. */
int renc_env_id_ok(const char *cmd, const char *what, const char *id);

/* renc_global_overlap: when `path` holds one of the tool's own folders (the
 * environments' data, the keyring, the state directory) or lies inside one,
 * says which in `why` ("holds the keyring (DIR)") and returns 1; else 0
 * (also when path does not resolve). */
int renc_global_overlap(const struct renc_global *g, const char *path, char *why, size_t max);

/* renc_global_resolve: fills in defaults; creates the state directory (0700)
 * when create is set. */
int renc_global_resolve(struct renc_global *g, int create);

/* renc_mkdirs: mkdir -p, each level it creates with mode 0700. */
int renc_mkdirs(const char *path);

/* Opens the keyring and a keystore over it, its providers configured from
 * the options and the environment (cli.c's option table). */
int renc_open_keys(struct renc_global *g, int create, struct renc_keyring **kr,
                   struct renc_keystore **ks);

/* Messages: "reencrypt: <cmd>: <what>" on stderr. */
void renc_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* renc_blob_err: one blob's failure: the key ref for a key error, the
 * record for a record error, else the cause. */
void renc_blob_err(const char *cmd, const char *path, int rc, const struct renc_blob_status *st);

/* renc_textf: snprintf for message text, which may be cut at max. */
void renc_textf(char *out, size_t max, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* renc_bytes_text: b as "512 B", "37.4 MiB" (powers of 1024). */
void renc_bytes_text(char *out, size_t max, uint64_t b);

/* renc_parse_size: a byte count or number with an optional K, M or G
 * suffix (powers of 1024); -RENC_E_INVALID when s is not one. */
int renc_parse_size(const char *s, uint64_t *out);

/* renc_exit_for: the exit code a failure maps to: bad input and usage 2,
 * everything else 1. */
int renc_exit_for(int rc);

/* Each command: argv[0] is the command name. */
int renc_cmd_keys(int argc, char **argv);
int renc_cmd_encrypt(int argc, char **argv);
int renc_cmd_decrypt(int argc, char **argv);
int renc_cmd_inspect(int argc, char **argv);
int renc_cmd_run(int argc, char **argv);
int renc_cmd_verify(int argc, char **argv);
int renc_cmd_plan(int argc, char **argv);
int renc_cmd_status(int argc, char **argv);
int renc_cmd_env(int argc, char **argv);
int renc_cmd_put(int argc, char **argv);
int renc_cmd_backup(int argc, char **argv);
int renc_cmd_restore(int argc, char **argv);
int renc_cmd_copy(int argc, char **argv);
int renc_cmd_restore_check(int argc, char **argv);
int renc_cmd_copy_check(int argc, char **argv);

#endif
