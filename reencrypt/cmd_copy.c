/* reencrypt copy | copy-check — one environment's blobs into another,
 * when the copy rule allows it (docs/ENVIRONMENTS.md); shared helpers in
 * cmd_data.c.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/workq.h"
#include "keys/keyref.h"
#include "blob/blobfile.h"
#include "reencrypt/cli.h"
#include "reencrypt/cmd_data.h"
#include "reencrypt/envctl.h"
#include "env/rules.h"
#include "store/scan.h"
#include "run/session.h"
#include "reencrypt/stage.h"

static const char renc_copy_usage[] =
    "usage: reencrypt copy --from A --to B [--threads N] [--memory BYTES]\n"
    "copies A's blobs into DATA/B/blobs/ (same names replaced), sealed under B's policy key,\n"
    "when the copy rule allows it.\n";
static const char renc_copy_check_usage[] =
    "usage: reencrypt copy-check --from A --to B [--json] [--threads N] [--memory BYTES]\n"
    "says whether A may be copied into B and why, and opens every record of A's blobs with\n"
    "the keys B holds; writes nothing.\n";

/* One blob in flight: its source read, its destination staged (rel, the
 * temporary tmp) and sealed; what each side found. */
struct renc_copy_slot {
    int fd, out_fd, dest_rc;
    struct renc_dest_sink dest;
    struct renc_blob_status seal_st; /* the sealer's; outlives it */
    struct renc_blob_status bs;      /* what opening the source found */
    char rel[8192];
    char tmp[sizeof ((struct renc_stage *)0)->tmp];
};

/* One copy or copy-check while it runs. */
struct renc_copy {
    struct renc_data_ctx c;
    int check;
    struct renc_env from, to;
    struct renc_check_result *r;
    struct renc_data_src src;  /* A's blobs: a folder or blob storage */
    struct renc_data_dst dst;  /* B's, when its data is in blob storage (remote_to) */
    int remote_to;
    struct renc_stage stage;   /* B's, when local */
    struct renc_copy_slot *slots; /* the blobs in flight (common/workq.h) */
    uint64_t records, failed;
    char held[2048], what[256];
    char refs_seen[1024]; /* the keys that opened the blobs, for the check */
};

/* Loads both environments and judges the copy rule.  Returns -1 to go on,
 * or an exit (a refused copy, or a check that stops at a locked one). */
static int renc_copy_judge(struct renc_copy *k)
{
    struct renc_data_ctx *c = &k->c;
    struct renc_check_result *r = k->r;
    char why[1024] = "";
    int rc = renc_envctl_ready(c->cat, c->ks, c->a.from, &k->from, NULL, 0, why, sizeof why);
    if (rc == 0 || rc == -RENC_E_ENV_LOCKED)
        rc = renc_envctl_ready(c->cat, c->ks, c->a.to, &k->to, NULL, 0, why, sizeof why);
    if (rc && rc != -RENC_E_ENV_LOCKED) {
        renc_err(c->cmd, "%s", why[0] ? why : renc_strerror(rc));
        return renc_exit_for(rc);
    }
    renc_rule_copy(&r->verdict, &k->from, &k->to);
    if (!k->check && !r->verdict.allowed) {
        renc_err(c->cmd, "%s -> %s: refused: %s", c->a.from, c->a.to, r->verdict.reason);
        return RENC_EXIT_FAILED;
    }
    if (r->verdict.rc == -RENC_E_ENV_LOCKED) {
        renc_textf(r->detail, sizeof r->detail, "an environment is locked: nothing is read");
        return renc_data_check_print(c->cmd, k->what, c->a.json, r);
    }
    return -1;
}

/* The source's blobs, by name, size and time (or ETag): tells a rerun.
 * Returns -1 to go on, or an exit. */
static int renc_copy_request(struct renc_copy *k, struct renc_data_text *request)
{
    renc_data_text_add(request, "from=%s\n", k->from.id);
    for (size_t i = 0; i < k->src.scan.count; i++) {
        const struct renc_scan_item *it = &k->src.scan.items[i];
        if (it->etag)
            renc_data_text_add(request, "\t%s\t%llu\t%s\n", it->path,
                               (unsigned long long)it->size, it->etag);
        else
            renc_data_text_file(request, it->path);
    }
    if (!request->rc)
        return -1;
    renc_err(k->c.cmd, "%s", renc_strerror(request->rc));
    return RENC_EXIT_FAILED;
}

/* For a copy, the sealer of blob i's destination (its staged temporary,
 * or a blob in blob storage) under the target's policy key, its plaintext
 * length and name taken from the source's header; s->dest_rc keeps a
 * failure the destination caused. */
static int renc_copy_dest_open(struct renc_copy *k, struct renc_copy_slot *s, size_t i)
{
    const struct renc_scan_item *it = &k->src.scan.items[i];
    struct renc_header h;
    memset(&h, 0, sizeof h);
    uint64_t len = RENC_PLAINTEXT_UNKNOWN;
    int have = 0;
    int rc = renc_data_src_header(&k->src, i, s->fd, &h, &have);
    if (rc) {
        renc_header_cleanup(&h);
        return rc;
    }
    if (have)
        len = h.plaintext_len; /* else opening the blob says what is wrong */
    const char *name = renc_context_get(&h.ctx, "name");
    const char *refs[] = {k->to.key_ref};
    struct renc_seal_opts so = {
        .env = k->to.id, .kind = "blob", .name = name ? name : it->rel, .key_refs = refs,
        .key_ref_count = 1, .seg_shift = RENC_SEG_SHIFT_DEFAULT,
        .header_room = RENC_DEFAULT_HEADER_ROOM,
    };
    if (k->remote_to)
        rc = s->dest_rc = renc_data_dst_begin(&k->dst, k->c.ks, &so, it->rel, len);
    else
        rc = renc_data_dest_note(&s->dest, renc_sealer_new(&s->dest.sealer, k->c.ks, &so,
                                                           s->out_fd, len, &s->seal_st));
    renc_header_cleanup(&h);
    return rc;
}

/* The destination's end of a blob: its last record sealed (the staged
 * temporary is handed to the stage by the calling thread). */
static int renc_copy_dest_close(struct renc_copy *k, struct renc_copy_slot *s, int rc)
{
    if (k->remote_to) {
        int rc2 = k->dst.ss ? renc_data_dst_end(&k->dst) : 0;
        return rc ? rc : rc2;
    }
    if (rc == 0 && s->dest.sealer)
        rc = renc_data_dest_note(&s->dest, renc_sealer_finish(s->dest.sealer));
    renc_sealer_free(s->dest.sealer);
    s->dest.sealer = NULL;
    return rc;
}

/* The calling thread's part before blob i: for a local copy, its staged
 * temporary.  Returns 0, or an exit (said why): the copy stops. */
static int renc_copy_prep(void *arg, size_t i, unsigned slot)
{
    struct renc_copy *k = arg;
    struct renc_copy_slot *s = &k->slots[slot];
    memset(s, 0, offsetof(struct renc_copy_slot, rel));
    s->fd = s->out_fd = -1;
    s->bs.slot = -1;
    s->rel[0] = s->tmp[0] = '\0';
    if (snprintf(s->rel, sizeof s->rel, "blobs/%s", k->src.scan.items[i].rel) >=
        (int)sizeof s->rel)
        s->dest_rc = -ENAMETOOLONG;
    else if (!k->check && !k->remote_to)
        s->dest_rc = renc_stage_open(&k->stage, s->rel, &s->out_fd);
    if (k->check || !s->dest_rc) {
        memcpy(s->tmp, k->stage.tmp, sizeof s->tmp);
        return 0;
    }
    renc_data_dest_err(&k->c, &k->stage, s->rel, s->dest_rc);
    renc_err(k->c.cmd, "nothing was copied into %s", k->to.id);
    return RENC_EXIT_FAILED;
}

/* A worker's part of blob i: opens every record of the source and, for a
 * copy, seals its plaintext into the destination.  s->bs says what opening
 * found. */
static int renc_copy_work(void *arg, size_t i, unsigned slot)
{
    struct renc_copy *k = arg;
    struct renc_copy_slot *s = &k->slots[slot];
    int rc = renc_data_src_read(&k->src, i, &s->fd);
    if (rc == 0 && !k->check)
        rc = renc_copy_dest_open(k, s, i);
    renc_sink_fn sink = k->check ? NULL : k->remote_to ? renc_data_dst_write
                                                       : renc_data_dest_write;
    void *sarg = k->remote_to ? (void *)&k->dst : (void *)&s->dest;
    if (rc == 0)
        rc = renc_blob_open_to(k->c.ks, s->fd, sink, sarg, NULL, &s->bs);
    rc = renc_data_src_done(&k->src, s->fd, rc);
    s->fd = -1;
    return k->check ? rc : renc_copy_dest_close(k, s, rc);
}

/* Why blob i (path) was not copied: the destination's failure, or the
 * source's. */
static void renc_copy_blob_err(struct renc_copy *k, struct renc_copy_slot *s, const char *path,
                               int rc)
{
    if (k->remote_to && (s->dest_rc || k->dst.write_rc))
        renc_err(k->c.cmd, "%s/%s (from %s): %s", renc_data_dst_where(&k->dst),
                 s->rel + strlen("blobs/"), path, renc_strerror(rc));
    else if (s->dest_rc)
        renc_data_dest_err(&k->c, &k->stage, s->rel, s->dest_rc);
    else if (s->dest.write_rc)
        renc_err(k->c.cmd, "writing %s (from %s): %s", s->tmp, path,
                 renc_strerror(s->dest.write_rc));
    else
        renc_blob_err(k->c.cmd, path, rc, &s->bs);
    renc_err(k->c.cmd, "nothing was copied into %s", k->to.id);
}

/* The calling thread's part after blob i, in order: a local copy's
 * temporary joins the stage's batch; the totals.  A copy stops at the
 * first failure; a check counts the failures and keeps the first. */
static int renc_copy_done(void *arg, size_t i, unsigned slot, int rc, int stopped)
{
    struct renc_copy *k = arg;
    struct renc_copy_slot *s = &k->slots[slot];
    struct renc_check_result *r = k->r;
    const char *path = k->src.scan.items[i].path;
    if (s->out_fd >= 0 && stopped)
        close(s->out_fd); /* the stage's cleanup removes it */
    else if (s->out_fd >= 0) {
        int rc2 = renc_data_dest_note(&s->dest, renc_stage_close(&k->stage, s->out_fd));
        rc = rc ? rc : rc2;
    }
    if (stopped)
        return 0;
    if (rc) {
        k->failed++;
        if (k->check) {
            if (k->failed == 1)
                renc_data_check_validation(r, rc, &s->bs, path, k->held);
            return 0;
        }
        renc_copy_blob_err(k, s, path, rc);
        return RENC_EXIT_FAILED;
    }
    r->entries++;
    r->bytes += s->bs.plaintext_bytes;
    k->records += s->bs.records;
    size_t used = strlen(k->refs_seen);
    if (s->bs.ref[0] && !strstr(k->refs_seen, s->bs.ref) &&
        used + strlen(s->bs.ref) + 3 < sizeof k->refs_seen)
        renc_textf(k->refs_seen + used, sizeof k->refs_seen - used, "%s%s",
                   k->refs_seen[0] ? ", " : "", s->bs.ref);
    return 0;
}

/* Copies (or, for the check, opens) every source blob, several at once
 * where both sides are local folders.  Returns -1 to go on, or an exit. */
static int renc_copy_blobs(struct renc_copy *k)
{
    unsigned threads;
    unsigned window = renc_data_window(&k->c, k->to.key_ref, k->remote_to || k->src.store, &threads);
    k->slots = renc_calloc(window, sizeof *k->slots);
    if (!k->slots) {
        renc_err(k->c.cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    static const struct renc_workq_ops ops = {renc_copy_prep, renc_copy_work, renc_copy_done};
    int stop = renc_workq_run(k->src.scan.count, threads, window, &ops, k);
    renc_free(k->slots);
    k->slots = NULL;
    return stop ? stop : -1;
}

/* The check's report once every blob was tried. */
static int renc_copy_check_report(struct renc_copy *k)
{
    struct renc_check_result *r = k->r;
    if (k->failed) {
        char first[2048];
        renc_textf(first, sizeof first, "%s", r->detail);
        renc_textf(r->detail, sizeof r->detail, "%llu of %zu blobs of %s do not open with "
                 "the keys %s holds; the first: %s",
                 (unsigned long long)k->failed, k->src.scan.count, k->from.id, k->to.id, first);
    } else {
        struct renc_blob_status all = {.records = k->records};
        snprintf(all.ref, sizeof all.ref, "%s", k->refs_seen);
        renc_data_check_validation(r, 0, &all, k->what, k->held);
    }
    return renc_data_check_print(k->c.cmd, k->what, k->c.a.json, r);
}

/* Puts the staged blobs in place (the commit point is inside
 * renc_stage_commit) and says what was done. */
static int renc_copy_commit(struct renc_copy *k)
{
    struct renc_check_result *r = k->r;
    char current[RENC_MAX_REF_LEN + 1] = "", in[512], out_detail[512];
    renc_keystore_resolve(k->c.ks, current, sizeof current, k->to.key_ref);
    renc_textf(in, sizeof in, "%llu blobs from %s", (unsigned long long)r->entries, k->from.id);
    renc_textf(out_detail, sizeof out_detail, "%llu blobs to %s", (unsigned long long)r->entries,
               k->to.id);
    struct renc_stage_note notes[] = {{k->to.id, "copy-in", in},
                                      {k->from.id, "copy-out", out_detail}};
    int rc = k->remote_to ? renc_data_dst_commit(&k->c, &k->dst)
                          : renc_stage_commit(&k->stage, notes, 2);
    if (rc && k->remote_to)
        return RENC_EXIT_FAILED; /* said which blob, and how many are in */
    if (rc) {
        renc_data_commit_err(&k->c, &k->stage, rc);
        renc_err(k->c.cmd, "nothing was copied into %s", k->to.id);
        return RENC_EXIT_FAILED;
    }
    for (size_t i = 0; k->remote_to && i < 2; i++) /* a local stage notes them itself */
        if ((rc = renc_catalog_note(k->c.cat, notes[i].env, notes[i].action, notes[i].detail)))
            renc_err(k->c.cmd, "catalog: %s: %s", notes[i].env, renc_strerror(rc));
    printf("copy: %s -> %s: %llu blobs (%llu bytes) copied, sealed under %s (%s)\n", k->from.id,
           k->to.id, (unsigned long long)r->entries, (unsigned long long)r->bytes, current,
           r->verdict.reason);
    return RENC_EXIT_OK;
}

static int renc_copy_common(int argc, char **argv, int check)
{
    struct renc_copy k = {.c = {.cmd = check ? "copy-check" : "copy"}, .check = check};
    struct renc_data_ctx *c = &k.c;
    const char *usage = check ? renc_copy_check_usage : renc_copy_usage;
    int status = renc_data_parse(c, usage, argc, argv);
    if (status >= 0)
        return status;
    if (c->a.arg_count != 0 || !c->a.from || !c->a.to || (!check && c->a.json)) {
        fputs(usage, stderr);
        return RENC_EXIT_USAGE;
    }
    k.r = renc_calloc(1, sizeof *k.r);
    renc_stage_init(&k.stage, 1);
    struct renc_data_text request = {0};
    int same = 0;
    snprintf(k.what, sizeof k.what, "%s -> %s", c->a.from, c->a.to);
    if (!k.r) {
        renc_err(c->cmd, "%s", renc_strerror(-RENC_E_NOMEM));
        return RENC_EXIT_FAILED;
    }
    if ((status = renc_data_open(c)) >= 0 || (status = renc_copy_judge(&k)) >= 0)
        goto out;
    /* B in blob storage: no local lock or stage; each blob's commit is
     * atomic, and a rerun after a crash among them completes the copy. */
    k.remote_to = !check && k.to.data_root[0];
    int staged = !check && !k.remote_to;
    if ((status = renc_data_hold_keys(c, k.to.id, k.held, sizeof k.held)) >= 0 ||
        (staged && (status = renc_data_lock(c, k.to.id)) >= 0) ||
        (status = renc_data_src_open(c, &k.from, &k.src)) >= 0 ||
        (status = renc_copy_request(&k, &request)) >= 0)
        goto out;
    if (staged && (status = renc_data_settle(c, k.to.id, c->cmd, request.p, &same)) >= 0)
        goto out;
    if (same) {
        printf("copy: the interrupted copy was this one: nothing more to do\n");
        status = RENC_EXIT_OK;
        goto out;
    }
    if ((staged && (status = renc_data_stage_begin(c, &k.stage, k.to.id, request.p)) >= 0) ||
        (k.remote_to && (status = renc_data_dst_open(c, &k.to, &k.dst)) >= 0))
        goto out;
    if ((status = renc_copy_blobs(&k)) >= 0)
        goto out;
    status = check ? renc_copy_check_report(&k) : renc_copy_commit(&k);
out:
    renc_free(request.p);
    renc_stage_cleanup(&k.stage);
    if (k.remote_to)
        renc_data_dst_close(&k.dst);
    renc_data_src_close(&k.src);
    renc_free(k.r);
    renc_data_close(c);
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
