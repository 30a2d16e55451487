/* reencrypt encrypt | decrypt | inspect — one blob at a time. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "store/one.h"
#include "store/store.h"

static const char renc_encrypt_usage[] =
    "usage: reencrypt encrypt --env ENV --key REF [--key REF ...] [--kind blob|backup]\n"
    "         [--name NAME] [--compress[=LEVEL]] [--segment-size BYTES]\n"
    "         [--header-room BYTES] IN OUT|URL\n";
static const char renc_decrypt_usage[] = "usage: reencrypt decrypt IN|URL OUT\n";
static const char renc_inspect_usage[] = "usage: reencrypt inspect BLOB|URL\n";

/* ---- one blob in blob storage (store/one.h) ------------------------------ */

/* One blob named by URL, opened as an item of its folder's store. */
struct renc_one {
    struct renc_store_creds *creds;
    struct renc_store *store;
    struct renc_scan_item it; /* it.path: the URL without its SAS, for messages */
};

static void renc_one_close(struct renc_one *o)
{
    renc_store_free(o->store);
    renc_store_one_cleanup(&o->it);
    renc_free(o->creds);
    memset(o, 0, sizeof *o);
}

/* Opens url (for_write: a blob to be written).  Returns 0 or an exit. */
static int renc_one_open(const char *cmd, const struct renc_global *g, const char *url,
                         int for_write, struct renc_one *o)
{
    memset(o, 0, sizeof *o);
    char why[512] = "", clean[RENC_STORE_PATH_MAX];
    o->creds = renc_malloc(sizeof *o->creds);
    int rc = o->creds ? renc_store_creds_from(g, o->creds) : -RENC_E_NOMEM;
    if (rc == 0)
        rc = renc_store_open_one(&o->store, &o->it, url, &o->creds->blob, for_write, why,
                                 sizeof why);
    if (rc) {
        if (renc_store_name_clean(url, clean, sizeof clean) != 0)
            snprintf(clean, sizeof clean, "the URL");
        renc_err(cmd, "%s: %s", clean,
                 why[0] ? why : rc == -RENC_E_INVALID ? "names a container or a folder, not "
                                                        "one blob" : renc_strerror(rc));
        renc_one_close(o);
        return rc == -RENC_E_INVALID ? RENC_EXIT_USAGE : renc_exit_for(rc);
    }
    return 0;
}

/* The blob's bytes into an unnamed private file (beside near, else in
 * memory), read by ranges of the version found; *fd at offset 0. */
static int renc_one_fetch(struct renc_one *o, const char *near, int *fd)
{
    char dir[4096];
    const char *slash = strrchr(near, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - near) + (slash == near) : 1,
             slash ? near : ".");
    int f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (f < 0)
        f = memfd_create("renc-blob", MFD_CLOEXEC);
    RENC_RETURN_IF(f < 0, -errno);
    int rc = renc_store_fetch(o->store, &o->it, f);
    if (rc == 0 && lseek(f, 0, SEEK_SET) != 0)
        rc = -errno;
    if (rc) {
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

/* encrypt IN URL: sealed as it is uploaded, in the block layout, made
 * visible in one commit (a blob of that name is replaced). */
static int renc_encrypt_to_url(const struct renc_global *g, struct renc_keystore *ks,
                               const struct renc_seal_opts *so, const char *in, int in_fd,
                               uint64_t size, const char *url)
{
    struct renc_one o;
    int status = renc_one_open("encrypt", g, url, 1, &o);
    if (status)
        return status;
    struct renc_store_txn txn;
    struct renc_store_tags tags = {.tag = "encrypt"};
    struct renc_blob_status st;
    memset(&st, 0, sizeof st);
    int rc = o.store->ops->begin(o.store, &o.it, RENC_COMMIT_MIRROR, &tags, &txn);
    int begun = rc == 0;
    if (rc == 0)
        rc = renc_seal_to_store(ks, so, o.store, &txn, in_fd, size, &st);
    if (rc == 0) {
        begun = 0;
        rc = o.store->ops->commit(o.store, &txn, NULL); /* commit point */
    }
    if (begun && rc)
        o.store->ops->abort(o.store, &txn);
    if (rc) {
        renc_blob_err("encrypt", rc == -RENC_E_LENGTH_MISMATCH ? in : o.it.path, rc, &st);
        status = rc == -RENC_E_BAD_KEYREF ? RENC_EXIT_USAGE : RENC_EXIT_FAILED;
    } else {
        printf("sealed %s -> %s: %llu bytes in %llu records\n", in, o.it.path,
               (unsigned long long)st.plaintext_bytes, (unsigned long long)st.records);
    }
    renc_one_close(&o);
    return status;
}

/* Names the key slot in a message when the failure concerns one. */
/* Opens an input that must be a regular file (or "-" when allowed). */
static int renc_open_input(const char *cmd, const char *path, int allow_stdin, int *fd,
                           uint64_t *size)
{
    if (allow_stdin && strcmp(path, "-") == 0) {
        *fd = STDIN_FILENO;
        *size = RENC_PLAINTEXT_UNKNOWN;
        return 0;
    }
    int f = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (f < 0)
        rc = -errno;
    else if (fstat(f, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    if (rc) {
        if (f >= 0)
            close(f);
        renc_err(cmd, "%s: %s", path, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    *fd = f;
    *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : RENC_PLAINTEXT_UNKNOWN;
    return 0;
}

/* encrypt's options into g, so and refs (so->key_refs points at refs);
 * -1 to go on, or an exit code (after saying why). */
static int renc_encrypt_opts(int argc, char **argv, struct renc_global *g,
                             struct renc_seal_opts *so, const char **refs)
{
    static const struct option opts[] = {
        {"env", required_argument, NULL, 'e'},
        {"key", required_argument, NULL, 'k'},
        {"kind", required_argument, NULL, 'K'},
        {"name", required_argument, NULL, 'n'},
        {"source-env", required_argument, NULL, 's'},
        {"compress", optional_argument, NULL, 'c'},
        {"segment-size", required_argument, NULL, 'S'},
        {"header-room", required_argument, NULL, 'R'},
        RENC_GLOBAL_OPTS,
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int opt;
    uint64_t seen = 0; /* options with one value given (renc_opt_once) */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        if (renc_opt_once("encrypt", opts, "eKnscSR", opt, &seen))
            return RENC_EXIT_USAGE;
        switch (opt) {
        case 'e': so->env = optarg; break;
        case 'k':
            if (so->key_ref_count == RENC_MAX_SLOTS) {
                renc_err("encrypt", "at most %d --key options (one slot each)", RENC_MAX_SLOTS);
                return RENC_EXIT_USAGE;
            }
            refs[so->key_ref_count++] = optarg;
            break;
        case 'K': so->kind = optarg; break;
        case 'n': so->name = optarg; break;
        case 's': so->source_env = optarg; break;
        case 'c':
            so->compress_level = 3;
            if (optarg && (renc_parse_size(optarg, &v) || v < 1 || v > 19)) {
                renc_err("encrypt", "--compress level must be 1..19");
                return RENC_EXIT_USAGE;
            }
            if (optarg)
                so->compress_level = (int)v;
            break;
        case 'S':
            if (renc_parse_size(optarg, &v) || v < (1u << RENC_SEG_SHIFT_MIN) ||
                v > (1u << RENC_SEG_SHIFT_MAX) || (v & (v - 1))) {
                renc_err("encrypt", "--segment-size must be a power of two from 4K to 16M");
                return RENC_EXIT_USAGE;
            }
            so->seg_shift = (uint8_t)__builtin_ctzll(v);
            break;
        case 'R':
            if (renc_parse_size(optarg, &v) || v > 60000) {
                renc_err("encrypt", "--header-room must be 0..60000 bytes");
                return RENC_EXIT_USAGE;
            }
            so->header_room = (size_t)v;
            break;
        case 'h': fputs(renc_encrypt_usage, stdout); return RENC_EXIT_OK;
        default: fputs(renc_encrypt_usage, stderr); return RENC_EXIT_USAGE;
        }
    }
    so->key_refs = refs;
    return -1;
}

/* The operands and option values encrypt needs together: -1 when they
 * hold, or an exit code (after saying why).  Names the blob from IN when
 * --name is not given. */
static int renc_encrypt_check(int argc, char **argv, struct renc_seal_opts *so)
{
    if (argc - optind != 2 || !so->env || so->key_ref_count == 0) {
        fputs(renc_encrypt_usage, stderr);
        return RENC_EXIT_USAGE;
    }
    if (!renc_env_id_ok("encrypt", "--env", so->env) ||
        (so->source_env && !renc_env_id_ok("encrypt", "--source-env", so->source_env)))
        return RENC_EXIT_USAGE;
    if (strcmp(so->kind, "blob") != 0 && strcmp(so->kind, "backup") != 0) {
        renc_err("encrypt", "--kind must be blob or backup");
        return RENC_EXIT_USAGE;
    }
    for (size_t i = 0; i < so->key_ref_count; i++) {
        struct renc_keyref r;
        if (renc_keyref_parse(&r, so->key_refs[i]) != 0) {
            renc_err("encrypt", "'%s': %s", so->key_refs[i], renc_strerror(-RENC_E_BAD_KEYREF));
            return RENC_EXIT_USAGE;
        }
    }
    const char *in = argv[optind];
    if (!so->name && strcmp(in, "-") != 0) {
        const char *slash = strrchr(in, '/');
        so->name = slash ? slash + 1 : in;
    }
    if (so->name && !renc_utf8_valid((const uint8_t *)so->name, strlen(so->name))) {
        renc_err("encrypt", "%s: the blob's name '%s' is not UTF-8 (a header's context is); "
                            "give another with --name", in, so->name);
        return RENC_EXIT_USAGE;
    }
    return -1;
}

/* Seals in_fd (size bytes) to a temporary beside out, committed once
 * every record is written; the exit code. */
static int renc_encrypt_to(struct renc_keystore *ks, const struct renc_seal_opts *so,
                           const char *in, int in_fd, uint64_t size, const char *out)
{
    char tmp[4096];
    int out_fd = -1;
    int rc = renc_file_tmp_open(out, 0644, tmp, sizeof tmp, &out_fd);
    if (rc) {
        renc_err("encrypt", "%s: %s", out, renc_strerror(rc));
        return RENC_EXIT_FAILED;
    }
    struct renc_blob_status st;
    rc = renc_blob_seal(ks, so, in_fd, out_fd, size, &st);
    if (rc == 0)
        rc = renc_file_commit(out_fd, tmp, out);
    else
        renc_file_abort(out_fd, tmp);
    if (rc) {
        renc_blob_err("encrypt", rc == -RENC_E_LENGTH_MISMATCH ? in : out, rc, &st);
        /* A key ref that does not parse, or an OUT that cannot be a file
         * (a folder, a missing folder), is bad usage; the rest failed work. */
        return rc == -RENC_E_BAD_KEYREF || rc == -EISDIR || rc == -ENOTDIR || rc == -ENOENT
                   ? RENC_EXIT_USAGE
                   : RENC_EXIT_FAILED;
    }
    printf("sealed %s -> %s: %llu bytes in %llu records\n", in, out,
           (unsigned long long)st.plaintext_bytes, (unsigned long long)st.records);
    return RENC_EXIT_OK;
}

int renc_cmd_encrypt(int argc, char **argv)
{
    struct renc_global g = {0};
    struct renc_seal_opts so = {
        .kind = "blob", .seg_shift = RENC_SEG_SHIFT_DEFAULT,
        .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    const char *refs[RENC_MAX_SLOTS];
    int status = renc_encrypt_opts(argc, argv, &g, &so, refs);
    if (status >= 0 || (status = renc_encrypt_check(argc, argv, &so)) >= 0)
        return status;
    const char *in = argv[optind], *out = argv[optind + 1];
    int in_fd;
    uint64_t size;
    if ((status = renc_open_input("encrypt", in, 1, &in_fd, &size)))
        return status;
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    int rc = renc_open_keys(&g, 0, &kr, &ks);
    if (rc) {
        renc_err("encrypt", "keyring %s: %s", g.keyring_dir, renc_strerror(rc));
        status = renc_exit_for(rc) == RENC_EXIT_USAGE ? RENC_EXIT_FAILED : renc_exit_for(rc);
    } else if (renc_store_is_url(out)) {
        status = size == RENC_PLAINTEXT_UNKNOWN
                     ? (renc_err("encrypt", "a blob in storage is sealed from a file, not "
                                            "from standard input"),
                        RENC_EXIT_USAGE)
                     : renc_encrypt_to_url(&g, ks, &so, in, in_fd, size, out);
    } else {
        status = renc_encrypt_to(ks, &so, in, in_fd, size, out);
    }
    if (in_fd != STDIN_FILENO)
        close(in_fd);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    return status;
}

/* Options of a command that takes only the global ones and `nargs`
 * operands; returns -1 to go on, or an exit code. */
static int renc_parse_plain(int argc, char **argv, const char *usage, int nargs,
                            struct renc_global *g)
{
    static const struct option opts[] = {RENC_GLOBAL_OPTS, {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int took = renc_global_opt(g, opt, optarg);
        if (took < 0)
            return RENC_EXIT_USAGE; /* said why */
        if (took)
            continue;
        fputs(usage, opt == 'h' ? stdout : stderr);
        return opt == 'h' ? RENC_EXIT_OK : RENC_EXIT_USAGE;
    }
    if (argc - optind != nargs) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    return -1;
}

int renc_cmd_decrypt(int argc, char **argv)
{
    struct renc_global g = {0};
    int status = renc_parse_plain(argc, argv, renc_decrypt_usage, 2, &g);
    if (status >= 0)
        return status;
    const char *in = argv[optind], *out = argv[optind + 1];
    int in_fd = -1, out_fd = -1;
    uint64_t size;
    struct renc_one one;
    memset(&one, 0, sizeof one);
    if (renc_store_is_url(in)) {
        if ((status = renc_one_open("decrypt", &g, in, 0, &one)))
            return status;
        int rc = renc_one_fetch(&one, out, &in_fd);
        in = one.it.path; /* messages name it without its SAS */
        if (rc) {
            renc_err("decrypt", "%s: %s", in, renc_strerror(rc));
            renc_one_close(&one);
            return renc_exit_for(rc);
        }
    } else if ((status = renc_open_input("decrypt", in, 0, &in_fd, &size))) {
        return status;
    }
    struct renc_keyring *kr = NULL;
    struct renc_keystore *ks = NULL;
    char tmp[4096];
    int rc = renc_open_keys(&g, 0, &kr, &ks);
    if (rc) {
        renc_err("decrypt", "keyring %s: %s", g.keyring_dir, renc_strerror(rc));
        status = RENC_EXIT_FAILED;
        goto out_close;
    }
    /* Plaintext goes to a private temporary and is renamed into place only
     * once every record verified: a failure leaves no partial plaintext. */
    if ((rc = renc_file_tmp_open(out, 0600, tmp, sizeof tmp, &out_fd))) {
        renc_err("decrypt", "%s: %s", out, renc_strerror(rc));
        status = RENC_EXIT_FAILED;
        goto out_close;
    }
    struct renc_blob_status st;
    rc = renc_blob_open(ks, in_fd, out_fd, NULL, &st);
    if (rc == 0) {
        rc = renc_file_commit(out_fd, tmp, out);
        if (rc)
            renc_err("decrypt", "%s: %s", out, renc_strerror(rc));
    } else {
        renc_file_abort(out_fd, tmp);
        if (st.in_output) /* writing the plaintext failed, not reading the blob */
            renc_err("decrypt", "%s: %s", out, renc_strerror(rc));
        else
            renc_blob_err("decrypt", in, rc, &st);
    }
    if (rc)
        status = renc_exit_for(rc);
    else
        printf("opened %s -> %s: %llu bytes in %llu records verified (key %s)\n", in, out,
               (unsigned long long)st.plaintext_bytes, (unsigned long long)st.records, st.ref);
out_close:
    if (in_fd >= 0)
        close(in_fd);
    renc_keystore_free(ks);
    renc_keyring_free(kr);
    renc_one_close(&one);
    return status;
}

static const char *renc_alg_name(uint8_t alg)
{
    switch (alg) {
    case 1: return "A256KWP";
    case 2: return "RSA-OAEP-256";
    case 3: return "RSA-OAEP";
    case 4: return "A256KW";
    }
    return "unknown";
}

static char *renc_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    return out;
}

/* Prints h as JSON (path: what it names) and releases it. */
static int renc_inspect_print(const char *path, struct renc_header *hp)
{
    struct renc_header h = *hp;
    char hex[2 * RENC_SALT_LEN + 1];
    json_t *ctx = json_object(), *slots = json_array();
    for (size_t i = 0; i < h.ctx.count; i++)
        json_object_set_new(ctx, h.ctx.entries[i].key, json_string(h.ctx.entries[i].value));
    for (unsigned i = 0; i < h.slot_count; i++)
        json_array_append_new(slots, json_pack("{s:i, s:s, s:s, s:i}", "alg", h.slots[i].alg,
                                               "alg_name", renc_alg_name(h.slots[i].alg),
                                               "ref", h.slots[i].ref, "wrapped_len",
                                               (int)h.slots[i].wrapped_len));
    json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:i}", "file", path, "version", RENC_VERSION,
                             "seg_shift", h.seg_shift, "segment_size",
                             (int)renc_header_seg_size(&h), "header_len", h.header_len);
    json_object_set_new(root, "plaintext_len",
                        h.plaintext_len == RENC_PLAINTEXT_UNKNOWN
                            ? json_null() : json_integer((json_int_t)h.plaintext_len));
    if (h.plaintext_len != RENC_PLAINTEXT_UNKNOWN)
        json_object_set_new(root, "segments", json_integer((json_int_t)renc_header_seg_count(&h)));
    json_object_set_new(root, "flags", json_pack("{s:i, s:b}", "value", h.flags, "compressed",
                                                 (h.flags & RENC_FLAG_COMPRESSED) != 0));
    json_object_set_new(root, "salt", json_string(renc_hex(h.salt, RENC_SALT_LEN, hex)));
    json_object_set_new(root, "nonce_prefix",
                        json_string(renc_hex(h.nonce_prefix, RENC_NONCE_PREFIX_LEN, hex)));
    json_object_set_new(root, "context", ctx);
    json_object_set_new(root, "slots", slots);
    json_object_set_new(root, "padding_bytes",
                        json_integer((json_int_t)(h.header_len - renc_header_min_len(&h))));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
    renc_header_cleanup(&h);
    return RENC_EXIT_OK;
}

/* inspect URL: the header read by ranges, nothing else fetched. */
static int renc_inspect_url(const struct renc_global *g, const char *url)
{
    struct renc_one one;
    int status = renc_one_open("inspect", g, url, 0, &one);
    if (status)
        return status;
    struct renc_header h;
    memset(&h, 0, sizeof h);
    int bad = 0, rc = renc_store_read_header(one.store, &one.it, &h, &bad);
    if (rc) {
        renc_err("inspect", "%s: %s", one.it.path, renc_strerror(rc));
        status = renc_exit_for(rc);
    } else {
        status = renc_inspect_print(one.it.path, &h);
    }
    renc_one_close(&one);
    return status;
}

int renc_cmd_inspect(int argc, char **argv)
{
    struct renc_global g = {0};
    int status = renc_parse_plain(argc, argv, renc_inspect_usage, 1, &g);
    if (status >= 0)
        return status;
    const char *path = argv[optind];
    if (renc_store_is_url(path))
        return renc_inspect_url(&g, path);
    int fd;
    uint64_t size;
    if ((status = renc_open_input("inspect", path, 0, &fd, &size)))
        return status;
    struct renc_header h;
    int rc = renc_blob_read_header(fd, &h, NULL);
    close(fd);
    if (rc) {
        renc_err("inspect", "%s: %s", path, renc_strerror(rc));
        return renc_exit_for(rc);
    }
    return renc_inspect_print(path, &h);
}
