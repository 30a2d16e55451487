/* tests/unit/test_journal.c — the run journal: rows registered once and
 * keyed by absolute path, notes written only at a flush, finished blobs
 * reported on the next attempt, the lock refusing a second opener, files
 * created 0600 and others' files refused, and in-place header intents
 * settled after a crash: found new, found old, half written (completed),
 * matching neither (left alone, never through a symlink) and gone, each
 * recorded as settled; claims hand out each unfinished blob once; a named
 * run is listed in parts (a listing cut short leaves it unlisted and
 * unfinished, the next one makes the unseen gone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "state/journal.h"
#include "store/scan.h"

#include "tests/unit/tmpdir.h"

static char jpath[256];

static const struct renc_journal_params params = {
    .mode = "rewrap", .target = "local:k/2", .keep_old = 0, .drop = "", .out = "",
    .sources = "/data",
};

static int setup_dir(void **state)
{
    if (setup_tmpdir(state, "/tmp/renc-journal-test.XXXXXX"))
        return -1;
    snprintf(jpath, sizeof jpath, "%s/j.db", dir);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void read_file(const char *path, void *data, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A scan of n fake blobs named DIR/bI (the files need not exist). */
static void fake_scan(struct renc_scan *s, char (*paths)[256], size_t n)
{
    memset(s, 0, sizeof *s);
    s->items = renc_calloc(n, sizeof *s->items);
    assert_non_null(s->items);
    for (size_t i = 0; i < n; i++) {
        snprintf(paths[i], 256, "%s/b%zu", dir, i);
        s->items[i].path = paths[i];
        s->items[i].size = 1000 + i;
    }
    s->count = n;
}

static void test_journal_notes_reach_the_file_only_at_a_flush(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    char paths[4][256];
    struct renc_scan s;
    fake_scan(&s, paths, 4);
    int64_t rows[4];
    uint8_t fin[4];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fin[i], 0);
    renc_journal_note(j, rows[0], RENC_J_DONE, 0, "local:k/1", "local:k/2");
    renc_journal_note(j, rows[1], RENC_J_FAILED, -RENC_E_RECORD_AUTH, "local:k/1", NULL);

    /* A reader sees nothing of the notes before the flush. */
    struct renc_journal *r;
    struct renc_journal_status st;
    assert_int_equal(renc_journal_open_readonly(&r, jpath), 0);
    assert_int_equal(renc_journal_status(r, &st), 0);
    assert_int_equal(st.count[RENC_J_PENDING], 4);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.holder_pid, (long)getpid());
    assert_int_equal(renc_journal_flush(j), 0);
    assert_int_equal(renc_journal_status(r, &st), 0);
    assert_int_equal(st.count[RENC_J_PENDING], 2);
    assert_int_equal(st.count[RENC_J_DONE], 1);
    assert_int_equal(st.count[RENC_J_FAILED], 1);
    assert_int_equal(st.bytes[RENC_J_DONE], 1000);
    assert_string_equal(st.params.target, "local:k/2");
    assert_true(renc_journal_unfinished(&st));
    renc_journal_close(r);

    /* The next attempt: the done blob is finished, the failed one is not. */
    assert_int_equal(renc_journal_end(j, "failed"), 0);
    renc_journal_close(j);
    assert_int_equal(renc_journal_open(&j, jpath, 0, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 1), 0);
    int64_t rows2[4];
    assert_int_equal(renc_journal_register(j, &s, rows2, fin), 0);
    assert_memory_equal(rows, rows2, sizeof rows);
    assert_int_equal(fin[0], 1);
    assert_int_equal(fin[1], 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.attempts, 2);
    renc_journal_close(j);
    renc_free(s.items);
}

static void test_journal_blobs_no_longer_scanned_become_gone(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    char paths[3][256];
    struct renc_scan s;
    fake_scan(&s, paths, 3);
    int64_t rows[3];
    uint8_t fin[3];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    s.count = 2;
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.count[RENC_J_PENDING], 2);
    assert_int_equal(st.count[RENC_J_GONE], 1);
    renc_journal_close(j);
    renc_free(s.items);
}

static void test_journal_a_second_opener_is_refused_until_the_first_closes(void **state)
{
    (void)state;
    struct renc_journal *a, *b = NULL;
    long holder = 0;
    assert_int_equal(renc_journal_open(&a, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_open(&b, jpath, 1, &holder), -RENC_E_BUSY);
    assert_null(b);
    assert_int_equal(holder, (long)getpid());
    renc_journal_close(a);
    assert_int_equal(renc_journal_open(&b, jpath, 1, NULL), 0);
    renc_journal_close(b);
}

static void test_journal_is_private_and_others_are_refused(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    renc_journal_close(j);
    struct stat st;
    assert_int_equal(stat(jpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(chmod(jpath, 0644), 0);
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), -RENC_E_INSECURE_PERMS);
    /* Not a journal at all. */
    char other[300];
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    write_file(other, "hello, this is not SQLite\n", 26);
    assert_int_equal(chmod(other, 0600), 0);
    assert_int_equal(renc_journal_open(&j, other, 0, NULL), -RENC_E_BAD_JOURNAL);
    assert_int_equal(renc_journal_open(&j, "/nonexistent/dir/j.db", 0, NULL), -ENOENT);
}

/* Intents for four blobs whose headers a crash left new, old, half written
 * and replaced by something else: all four settled, the last left as it is
 * and looked at afresh. */
static void test_journal_recovery_settles_each_kind_of_header(void **state)
{
    (void)state;
    enum { HL = 1536 };
    uint8_t old_h[4][HL], new_h[4][HL], disk[HL];
    char paths[4][256];
    struct renc_scan s;
    fake_scan(&s, paths, 4);
    for (int i = 0; i < 4; i++) {
        memset(old_h[i], 'a' + i, HL);
        memset(new_h[i], 'A' + i, HL);
    }
    write_file(paths[0], new_h[0], HL);          /* the overwrite was durable */
    write_file(paths[1], old_h[1], HL);          /* it never happened */
    memcpy(disk, new_h[2], HL);
    memcpy(disk + 512, old_h[2], 512);            /* the middle sector is still old */
    write_file(paths[2], disk, HL);
    memset(disk, 'z', HL);
    write_file(paths[3], disk, HL);              /* someone else's file */

    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    int64_t rows[4];
    uint8_t fin[4];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    const char *p[4];
    const uint8_t *o[4], *n[4];
    size_t len[4];
    for (int i = 0; i < 4; i++) {
        p[i] = paths[i];
        o[i] = old_h[i];
        n[i] = new_h[i];
        len[i] = HL;
    }
    assert_int_equal(renc_journal_header_intents(j, 4, rows, p, o, n, len), 0);
    renc_journal_close(j); /* the crash */

    assert_int_equal(renc_journal_open(&j, jpath, 0, NULL), 0);
    struct renc_recover_stats rs;
    assert_int_equal(renc_journal_recover(j, &rs, NULL, NULL), 0);
    assert_int_equal(rs.found_new, 1);
    assert_int_equal(rs.found_old, 1);
    assert_int_equal(rs.repaired, 1);
    assert_int_equal(rs.replaced, 1);
    assert_int_equal(rs.unresolved, 0);
    read_file(paths[2], disk, HL);
    assert_memory_equal(disk, new_h[2], HL);
    read_file(paths[3], disk, HL);
    for (int i = 0; i < HL; i++)
        assert_int_equal(disk[i], 'z');
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.count[RENC_J_DONE], 2);
    assert_int_equal(st.count[RENC_J_PENDING], 2); /* done again; looked at afresh */
    assert_int_equal(st.count[RENC_J_FAILED], 0);
    assert_int_equal(st.header_intents, 0);
    assert_int_equal(st.settled[RENC_SETTLE_REWRITTEN], 1);
    assert_int_equal(st.settled[RENC_SETTLE_AS_IT_WAS], 1);
    assert_int_equal(st.settled[RENC_SETTLE_COMPLETED], 1);
    assert_int_equal(st.settled[RENC_SETTLE_REPLACED], 1);
    renc_journal_close(j);
    renc_free(s.items);
}

/* A blob removed after the crash settles as gone; a symlink or a folder
 * put in a blob's place is replaced, and a symlink is never followed. */
static void test_journal_recovery_settles_gone_and_never_follows_a_replacement(void **state)
{
    (void)state;
    enum { HL = 600 };
    uint8_t old_h[HL], new_h[HL], disk[HL];
    char paths[3][256];
    struct renc_scan s;
    fake_scan(&s, paths, 3);
    memset(old_h, 'o', HL);
    memset(new_h, 'n', HL);
    for (int i = 0; i < 3; i++)
        write_file(paths[i], old_h, HL);
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    int64_t rows[3];
    uint8_t fin[3];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    const char *p[3] = {paths[0], paths[1], paths[2]};
    const uint8_t *o[3] = {old_h, old_h, old_h}, *n[3] = {new_h, new_h, new_h};
    size_t len[3] = {HL, HL, HL};
    assert_int_equal(renc_journal_header_intents(j, 3, rows, p, o, n, len), 0);
    renc_journal_close(j); /* the crash */

    /* 0: removed.  1: a symlink to a torn copy.  2: a folder in its place. */
    assert_int_equal(unlink(paths[0]), 0);
    char target[300];
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    memcpy(disk, new_h, HL);
    write_file(target, disk, 512); /* first sector new: would be "torn" */
    assert_int_equal(unlink(paths[1]), 0);
    assert_int_equal(symlink(target, paths[1]), 0);
    assert_int_equal(unlink(paths[2]), 0);
    assert_int_equal(mkdir(paths[2], 0700), 0);

    assert_int_equal(renc_journal_open(&j, jpath, 0, NULL), 0);
    struct renc_recover_stats rs;
    assert_int_equal(renc_journal_recover(j, &rs, NULL, NULL), 0);
    assert_int_equal(rs.gone, 1);
    assert_int_equal(rs.replaced, 2);
    assert_int_equal(rs.unresolved, 0);
    read_file(target, disk, 512);
    assert_memory_equal(disk, new_h, 512); /* nothing written through the link */
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.header_intents, 0);
    assert_int_equal(st.settled[RENC_SETTLE_GONE], 1);
    assert_int_equal(st.settled[RENC_SETTLE_REPLACED], 2);
    assert_int_equal(st.count[RENC_J_GONE], 1);
    renc_journal_close(j);
    renc_free(s.items);
}

static void test_journal_a_done_note_clears_its_intent(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    char paths[1][256];
    struct renc_scan s;
    fake_scan(&s, paths, 1);
    int64_t row;
    uint8_t fin;
    assert_int_equal(renc_journal_register(j, &s, &row, &fin), 0);
    uint8_t o[600], n[600];
    memset(o, 1, sizeof o);
    memset(n, 2, sizeof n);
    const char *p = paths[0];
    const uint8_t *op = o, *np = n;
    size_t len = sizeof o;
    assert_int_equal(renc_journal_header_intents(j, 1, &row, &p, &op, &np, &len), 0);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.header_intents, 1);
    renc_journal_note(j, row, RENC_J_DONE, 0, NULL, "local:k/2");
    assert_int_equal(renc_journal_flush(j), 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.header_intents, 0);
    assert_false(renc_journal_unfinished(&st));
    renc_journal_close(j);
    renc_free(s.items);
}

static void test_journal_a_failed_flush_keeps_its_notes_for_the_next(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    char paths[2][256];
    struct renc_scan s;
    fake_scan(&s, paths, 2);
    int64_t rows[2];
    uint8_t fin[2];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    renc_journal_note(j, rows[0], RENC_J_DONE, 0, NULL, "local:k/2");
    renc_fault_reset();
    setenv("RENC_FAULT", "journal:1:EIO", 1);
    assert_int_equal(renc_journal_flush(j), -EIO);
    unsetenv("RENC_FAULT");
    renc_journal_note(j, rows[1], RENC_J_SKIPPED, 0, NULL, NULL);
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.count[RENC_J_PENDING], 2);
    assert_int_equal(renc_journal_flush(j), 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_int_equal(st.count[RENC_J_DONE], 1);
    assert_int_equal(st.count[RENC_J_SKIPPED], 1);
    renc_journal_close(j);
    renc_free(s.items);
}

/* Claims: each pending or failed blob once per attempt, in row order, never
 * one already finished or held by an intent; a new attempt claims afresh. */
static void test_journal_claims_hand_out_each_unfinished_blob_once(void **state)
{
    (void)state;
    struct renc_journal *j;
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    char paths[5][256];
    struct renc_scan s;
    fake_scan(&s, paths, 5);
    int64_t rows[5];
    uint8_t fin[5];
    assert_int_equal(renc_journal_register(j, &s, rows, fin), 0);
    renc_journal_note(j, rows[1], RENC_J_DONE, 0, NULL, "local:k/2");
    renc_journal_note(j, rows[2], RENC_J_FAILED, -RENC_E_RECORD_AUTH, NULL, NULL);
    assert_int_equal(renc_journal_flush(j), 0);
    uint8_t hdr[512] = {0};
    const uint8_t *hp = hdr;
    const char *p4 = paths[4];
    size_t len = sizeof hdr;
    assert_int_equal(renc_journal_header_intents(j, 1, &rows[4], &p4, &hp, &hp, &len), 0);

    struct renc_journal_batch b;
    assert_int_equal(renc_journal_claim(j, 2, &b), 0);
    assert_int_equal(b.count, 2);
    assert_true(b.items[0].row == rows[0] && b.items[1].row == rows[2]);
    assert_string_equal(b.items[0].path, paths[0]);
    assert_int_equal(b.items[1].size, 1002);
    assert_true(b.lease_until == 0);
    renc_journal_batch_cleanup(&b);
    assert_int_equal(renc_journal_claim(j, 2, &b), 0);
    assert_int_equal(b.count, 1);
    assert_true(b.items[0].row == rows[3]);
    renc_journal_batch_cleanup(&b);
    assert_int_equal(renc_journal_claim(j, 2, &b), 0);
    assert_int_equal(b.count, 0);
    renc_journal_batch_cleanup(&b);

    assert_int_equal(renc_journal_end(j, "interrupted"), 0);
    assert_int_equal(renc_journal_start(j, &params, 1), 0);
    assert_int_equal(renc_journal_claim(j, 10, &b), 0);
    assert_int_equal(b.count, 3);
    renc_journal_batch_cleanup(&b);
    renc_journal_close(j);
    renc_free(s.items);
}

/* A part of fake_scan's blobs from..to-1 (paths borrowed). */
static void enlist_range(struct renc_journal *j, const struct renc_scan *all, size_t from,
                         size_t to)
{
    struct renc_scan part = {.items = all->items + from, .count = to - from};
    assert_int_equal(renc_journal_enlist_part(j, &part), 0);
}

static void test_journal_a_named_run_is_listed_in_parts(void **state)
{
    (void)state;
    struct renc_journal *j;
    struct renc_journal_params named = params;
    named.name = "mig";
    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_false(renc_journal_shared(j));
    assert_int_equal(renc_journal_start(j, &named, 0), 0);
    char paths[6][256];
    struct renc_scan s;
    fake_scan(&s, paths, 6);
    s.items[5].etag = "\"0x8D1\"";
    int must = 0;
    assert_int_equal(renc_journal_list_begin(j, &must), 0);
    assert_int_equal(must, 1);
    enlist_range(j, &s, 0, 3);
    /* Cut short: the run is unlisted, so unfinished even with nothing
     * pending once those are done, and the next attempt lists again. */
    struct renc_journal_status st;
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_false(st.listed);
    assert_string_equal(st.params.name, "mig");
    assert_int_equal(st.count[RENC_J_PENDING], 3);
    assert_true(renc_journal_unfinished(&st));
    renc_journal_close(j);

    assert_int_equal(renc_journal_open(&j, jpath, 1, NULL), 0);
    assert_int_equal(renc_journal_start(j, &named, 1), 0);
    assert_int_equal(renc_journal_list_begin(j, &must), 0);
    assert_int_equal(must, 1);
    enlist_range(j, &s, 1, 4); /* b0 is no longer there */
    enlist_range(j, &s, 4, 6);
    assert_int_equal(renc_journal_list_end(j, 1), 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_true(st.listed);
    assert_int_equal(st.count[RENC_J_PENDING], 5);
    assert_int_equal(st.count[RENC_J_GONE], 1);
    struct renc_journal_batch b;
    assert_int_equal(renc_journal_claim(j, 10, &b), 0);
    assert_int_equal(b.count, 5);
    assert_string_equal(b.items[0].path, paths[1]);
    assert_null(b.items[0].etag);
    assert_string_equal(b.items[4].etag, "\"0x8D1\"");
    for (size_t i = 0; i < b.count; i++)
        renc_journal_note(j, b.items[i].row, RENC_J_DONE, 0, NULL, "local:k/2");
    renc_journal_batch_cleanup(&b);
    assert_int_equal(renc_journal_flush(j), 0);
    /* Listed: a later attempt of the named run does not list it again. */
    assert_int_equal(renc_journal_start(j, &named, 1), 0);
    assert_int_equal(renc_journal_list_begin(j, &must), 0);
    assert_int_equal(must, 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_false(renc_journal_unfinished(&st));
    /* An unnamed run is listed by every attempt. */
    assert_int_equal(renc_journal_start(j, &params, 0), 0);
    assert_int_equal(renc_journal_status(j, &st), 0);
    assert_true(st.listed);
    assert_string_equal(st.params.name, "");
    assert_int_equal(renc_journal_list_begin(j, &must), 0);
    assert_int_equal(must, 1);
    renc_journal_close(j);
    renc_free(s.items);
}

static void test_journal_default_path_depends_on_sources_and_out(void **state)
{
    (void)state;
    char a[512], b[512], c[512];
    assert_int_equal(renc_journal_default_path(dir, "/srv/data", "", a, sizeof a), 0);
    assert_int_equal(renc_journal_default_path(dir, "/srv/data", "", b, sizeof b), 0);
    assert_int_equal(renc_journal_default_path(dir, "/srv/data", "/mnt/out", c, sizeof c), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_non_null(strstr(a, "/journals/data-"));
    struct stat st;
    char jd[300];
    snprintf(jd, sizeof jd, "%s/journals", dir);
    assert_int_equal(stat(jd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_journal_notes_reach_the_file_only_at_a_flush),
        T(test_journal_blobs_no_longer_scanned_become_gone),
        T(test_journal_a_second_opener_is_refused_until_the_first_closes),
        T(test_journal_is_private_and_others_are_refused),
        T(test_journal_recovery_settles_each_kind_of_header),
        T(test_journal_recovery_settles_gone_and_never_follows_a_replacement),
        T(test_journal_a_done_note_clears_its_intent),
        T(test_journal_a_failed_flush_keeps_its_notes_for_the_next),
        T(test_journal_claims_hand_out_each_unfinished_blob_once),
        T(test_journal_a_named_run_is_listed_in_parts),
        T(test_journal_default_path_depends_on_sources_and_out),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
