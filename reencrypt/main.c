/* reencrypt — bulk re-encryption of envelope-encrypted data.  See README.md
 * and docs/CLI.md. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "keys/akv.h"
#include "crypto/secmem.h"
#include "reencrypt/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} renc_commands[] = {
    {"keys", renc_cmd_keys, "manage the local keyring (create, list, versions, rotate, disable, enable, revoke, restore)"},
    {"env", renc_cmd_env, "manage environments (create, list, show, set-policy, lock, unlock, reset, config)"},
    {"put", renc_cmd_put, "seal files into an environment under its policy key"},
    {"backup", renc_cmd_backup, "take a backup of an environment's blobs (backup create)"},
    {"restore", renc_cmd_restore, "restore a backup into an environment, when the rules allow"},
    {"copy", renc_cmd_copy, "copy an environment's blobs into another, when the rules allow"},
    {"restore-check", renc_cmd_restore_check, "may this backup be restored there? the rule and a full validation"},
    {"copy-check", renc_cmd_copy_check, "may this environment be copied there? the rule and a full validation"},
    {"encrypt", renc_cmd_encrypt, "seal one file (or stdin) into a RENC v1 blob"},
    {"decrypt", renc_cmd_decrypt, "open one RENC v1 blob, verifying every record"},
    {"inspect", renc_cmd_inspect, "print a blob's header as JSON (no key needed)"},
    {"plan", renc_cmd_plan, "read headers only: blobs, bytes and unwraps per key, and time estimates"},
    {"run", renc_cmd_run, "bring every blob of environments, a tree or a manifest under a target key"},
    {"verify", renc_cmd_verify, "open every record of every blob, writing nothing"},
    {"status", renc_cmd_status, "a run's progress, failures and what is left, from its journal"},
};

static void renc_usage(FILE *f)
{
    fprintf(f, "usage: reencrypt COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof renc_commands / sizeof renc_commands[0]; i++)
        fprintf(f, "  %-13s %s\n", renc_commands[i].name, renc_commands[i].summary);
    fprintf(f, "\nevery command takes --state DIR (default $RENC_HOME, else "
               "~/.local/state/reencrypt), --keyring DIR (default STATE/keyring)\n"
               "and --data DIR (default $RENC_DATA, else STATE/data).\n"
               "'reencrypt COMMAND --help' tells more; docs/CLI.md tells all.\n");
}

#ifdef RENC_TEST_HOOKS
/* Test seam: RENC_ALLOC_FAIL=N fails the process's N-th allocation through
 * common/alloc (tests/e2e/test_allocfail.sh sweeps N).  At exit it says when
 * the process made fewer than N, so a sweep knows where to stop. */
static uint64_t renc_alloc_fail_n;

static void renc_alloc_fail_report(void)
{
    uint64_t made = renc_alloc_count();
    if (made < renc_alloc_fail_n)
        fprintf(stderr, "reencrypt: test hook: RENC_ALLOC_FAIL=%llu not reached (%llu "
                        "allocations)\n",
                (unsigned long long)renc_alloc_fail_n, (unsigned long long)made);
}

static void renc_alloc_fail_setup(void)
{
    const char *v = getenv("RENC_ALLOC_FAIL");
    if (!v || !v[0])
        return;
    renc_alloc_fail_n = strtoull(v, NULL, 10);
    renc_alloc_fail_at(renc_alloc_fail_n);
    atexit(renc_alloc_fail_report);
}
#endif

/* SQLite allocates and frees about 90 KiB for each statement it runs in a
 * transaction (a run's journal runs one or two per blob); with glibc's
 * default trim threshold each free gave the heap's top back to the kernel
 * and the next statement faulted it in again, zeroed: two brk calls and
 * 45 page faults per blob.  A fixed threshold keeps that much at the top.
 * (It also fixes the mmap threshold at its default, 128 KiB.) */
static void renc_malloc_tune(void)
{
#ifdef M_TRIM_THRESHOLD
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif
}

int main(int argc, char **argv)
{
#ifdef RENC_TEST_HOOKS
    renc_alloc_fail_setup();
#endif
    renc_malloc_tune();
    if (argc < 2) {
        renc_usage(stderr);
        return RENC_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        renc_usage(stdout);
        return RENC_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
#ifdef RENC_TEST_HOOKS
        printf("reencrypt 0.1.0 (RENC v1), a test build: the test seams RENC_FAULT and "
               "RENC_ALLOC_FAIL are compiled in\n");
#else
        printf("reencrypt 0.1.0 (RENC v1)\n");
#endif
        return RENC_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof renc_commands / sizeof renc_commands[0]; i++) {
        if (strcmp(argv[1], renc_commands[i].name) == 0) {
            /* Before any key is loaded: no core dumps, locked key memory;
             * before any JSON exists: JSON (vault answers) wiped on free. */
            if (renc_secmem_init() != 0) {
                fprintf(stderr, "reencrypt: cannot set up secure memory\n");
                return RENC_EXIT_FAILED;
            }
            renc_json_wipe_on_free();
            return renc_commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "reencrypt: unknown command '%s'\n", argv[1]);
    renc_usage(stderr);
    return RENC_EXIT_USAGE;
}
