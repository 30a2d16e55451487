/* reencrypt copy | copy-check — one environment's blobs into another,
 * when the copy rule allows it (docs/ENVIRONMENTS.md); shared helpers in
 * cmd_data.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "crypto/keyref.h"
#include "reencrypt/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/envctl.h"
#include "reencrypt/rules.h"
#include "reencrypt/scan.h"
#include "reencrypt/session.h"
#include "reencrypt/stage.h"

static const char renc_copy_usage[] =
    "usage: reencrypt copy --from A --to B\n"
    "copies A's blobs into DATA/B/blobs/ (same names replaced), sealed under B's policy key,\n"
    "when the copy rule allows it.\n";
static const char renc_copy_check_usage[] =
    "usage: reencrypt copy-check --from A --to B [--json]\n"
    "says whether A may be copied into B and why, and opens every record of A's blobs with\n"
    "the keys B holds; writes nothing.\n";

static int renc_copy_common(int argc, char **argv, int check)
{
    struct renc_data_ctx c = {.cmd = check ? "copy-check" : "copy"};
    const char *usage = check ? renc_copy_check_usage : renc_copy_usage;
    int status = renc_data_parse(&c, usage, argc, argv);
    if (status >= 0)
        return status;
    if (c.a.arg_count != 0 || !c.a.from || !c.a.to || (!check && c.a.json)) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    struct renc_env from, to;
    struct renc_check_result *r = renc_calloc(1, sizeof *r);
    struct renc_scan scan;
    memset(&scan, 0, sizeof scan);
    struct renc_stage stage;
    renc_stage_init(&stage, 1);
    struct renc_dest_sink dest = {0};
    struct renc_data_text request = {0};
    int same = 0;
    char held[2048] = "", what[256], why[1024] = "";
    snprintf(what, sizeof what, "%s -> %s", c.a.from, c.a.to);
    if (!r) {
        renc_err(c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    if ((status = renc_data_open(&c)) >= 0)
        goto out;
    int rc = renc_envctl_ready(c.cat, c.ks, c.a.from, &from, NULL, 0, why, sizeof why);
    if (rc == 0 || rc == -RENC_E_ENV_LOCKED)
        rc = renc_envctl_ready(c.cat, c.ks, c.a.to, &to, NULL, 0, why, sizeof why);
    if (rc && rc != -RENC_E_ENV_LOCKED) {
        renc_err(c.cmd, "%s", why[0] ? why : renc_strerror(rc));
        status = renc_exit_for(rc);
        goto out;
    }
    renc_rule_copy(&r->verdict, &from, &to);
    if (!check && !r->verdict.allowed) {
        renc_err(c.cmd, "%s -> %s: refused: %s", c.a.from, c.a.to, r->verdict.reason);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    if (r->verdict.rc == -RENC_E_ENV_LOCKED) {
        renc_textf(r->detail, sizeof r->detail, "an environment is locked: nothing is read");
        status = renc_data_check_print(c.cmd, what, c.a.json, r);
        goto out;
    }
    if ((status = renc_data_hold_keys(&c, to.id, held, sizeof held)) >= 0 ||
        (!check && (status = renc_data_lock(&c, to.id)) >= 0) ||
        (status = renc_data_scan_blobs(&c, from.id, &scan)) >= 0)
        goto out;
    /* The source's blobs, by name, size and time: tells a rerun. */
    renc_data_text_add(&request, "from=%s\n", from.id);
    for (size_t i = 0; i < scan.count; i++)
        renc_data_text_file(&request, scan.items[i].path);
    if (request.rc) {
        renc_err(c.cmd, "%s", renc_strerror(request.rc));
        status = RENC_EXIT_FAILED;
        goto out;
    }
    if (!check && (status = renc_data_settle(&c, to.id, c.cmd, request.p, &same)) >= 0)
        goto out;
    if (same) {
        printf("copy: the interrupted copy was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if (!check && (status = renc_data_stage_begin(&c, &stage, to.id, request.p)) >= 0)
        goto out;
    struct renc_blob_status bs = {.slot = -1};
    uint64_t records = 0, failed = 0;
    char refs_seen[1024] = "";
    for (size_t i = 0; i < scan.count; i++) {
        const char *path = scan.items[i].path;
        char rel[8192];
        int out_fd = -1, dest_rc = 0;
        dest.write_rc = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno : 0;
        uint64_t len = RENC_PLAINTEXT_UNKNOWN;
        struct renc_header h;
        memset(&h, 0, sizeof h);
        if (rc == 0 && renc_blob_read_header(fd, &h, NULL) == 0) {
            len = h.plaintext_len;
        }
        const char *name = renc_context_get(&h.ctx, "name");
        if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
            rc = -errno;
        struct renc_blob_status sealst;
        if (rc == 0 && !check) {
            if (snprintf(rel, sizeof rel, "blobs/%s", scan.items[i].rel) >= (int)sizeof rel)
                rc = -ENAMETOOLONG;
            const char *refs[] = {to.key_ref};
            struct renc_seal_opts so = {
                .env = to.id, .kind = "blob", .name = name ? name : scan.items[i].rel,
                .key_refs = refs, .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
                .header_room = RENC_DEFAULT_HEADER_ROOM,
            };
            if (rc == 0)
                rc = dest_rc = renc_stage_open(&stage, rel, &out_fd);
            if (rc == 0)
                rc = renc_data_dest_note(&dest, renc_sealer_new(&dest.sealer, c.ks, &so, out_fd,
                                                                len, &sealst));
        }
        renc_header_cleanup(&h);
        memset(&bs, 0, sizeof bs);
        bs.slot = -1;
        if (rc == 0)
            rc = renc_blob_open_to(c.ks, fd, dest.sealer ? renc_data_dest_write : NULL, &dest, NULL,
                                   &bs);
        if (rc == 0 && dest.sealer)
            rc = renc_data_dest_note(&dest, renc_sealer_finish(dest.sealer));
        renc_sealer_free(dest.sealer);
        dest.sealer = NULL;
        if (out_fd >= 0) {
            int rc2 = renc_data_dest_note(&dest, renc_stage_close(&stage, out_fd));
            rc = rc ? rc : rc2;
        }
        if (fd >= 0)
            close(fd);
        if (rc) {
            failed++;
            if (check) {
                if (failed == 1)
                    renc_data_check_validation(r, rc, &bs, path, held);
                continue;
            }
            if (dest_rc)
                renc_data_dest_err(&c, &stage, rel, dest_rc);
            else if (dest.write_rc)
                renc_err(c.cmd, "writing %s (from %s): %s", stage.tmp, path,
                         renc_strerror(dest.write_rc));
            else
                renc_blob_err(c.cmd, path, rc, &bs);
            renc_err(c.cmd, "nothing was copied into %s", to.id);
            status = RENC_EXIT_FAILED;
            goto out;
        }
        r->entries++;
        r->bytes += bs.plaintext_bytes;
        records += bs.records;
        if (bs.ref[0] && !strstr(refs_seen, bs.ref) &&
            strlen(refs_seen) + strlen(bs.ref) + 3 < sizeof refs_seen)
            snprintf(refs_seen + strlen(refs_seen), sizeof refs_seen - strlen(refs_seen),
                     "%s%s", refs_seen[0] ? ", " : "", bs.ref);
    }
    if (check) {
        if (failed) {
            char first[2048];
            renc_textf(first, sizeof first, "%s", r->detail);
            renc_textf(r->detail, sizeof r->detail, "%llu of %zu blobs of %s do not open with "
                     "the keys %s holds; the first: %s",
                     (unsigned long long)failed, scan.count, from.id, to.id, first);
        } else {
            struct renc_blob_status all = {.records = records};
            snprintf(all.ref, sizeof all.ref, "%s", refs_seen);
            renc_data_check_validation(r, 0, &all, what, held);
        }
        status = renc_data_check_print(c.cmd, what, c.a.json, r);
        goto out;
    }
    char current[RENC_MAX_REF_LEN + 1] = "", in[512], out_detail[512];
    renc_keystore_resolve(c.ks, current, sizeof current, to.key_ref);
    renc_textf(in, sizeof in, "%llu blobs from %s", (unsigned long long)r->entries, from.id);
    renc_textf(out_detail, sizeof out_detail, "%llu blobs to %s", (unsigned long long)r->entries,
               to.id);
    struct renc_stage_note notes[] = {{to.id, "copy-in", in}, {from.id, "copy-out", out_detail}};
    if ((rc = renc_stage_commit(&stage, notes, 2))) {
        renc_data_commit_err(&c, &stage, rc);
        renc_err(c.cmd, "nothing was copied into %s", to.id);
        status = RENC_EXIT_FAILED;
        goto out;
    }
    printf("copy: %s -> %s: %llu blobs (%llu bytes) copied, sealed under %s (%s)\n", from.id,
           to.id, (unsigned long long)r->entries, (unsigned long long)r->bytes, current,
           r->verdict.reason);
    status = RENC_EXIT_OK;
out:
    renc_sealer_free(dest.sealer);
    renc_free(request.p);
    renc_stage_cleanup(&stage);
    renc_scan_cleanup(&scan);
    renc_free(r);
    renc_data_close(&c);
    return status;
}

int renc_cmd_copy(int argc, char **argv)
{
    return renc_copy_common(argc, argv, 0);
}

int renc_cmd_copy_check(int argc, char **argv)
{
    return renc_copy_common(argc, argv, 1);
}
