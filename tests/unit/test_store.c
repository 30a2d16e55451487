/* tests/unit/test_store.c — the store seam's local store (store/store.h,
 * store/local.c) and the --out mirror rules (store/mirror.h): listing
 * streams items, errors and temporaries; a replacement is invisible until
 * its commit and refused when the blob changed, or when its staging name
 * holds another writer's file; the mirror makes its
 * folders; the sweep removes only temporaries of the given tags; the
 * mirror rules find collisions and mirrors onto sources; the blob store's
 * listed props and tags (store/azblob_attrs.h) read back as made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/tmpname.h"
#include "store/azblob_attrs.h"
#include "store/mirror.h"
#include "store/store.h"

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void slurp(const char *path, char *out, size_t max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, max - 1, f);
    out[n] = '\0';
    fclose(f);
}

struct fixture {
    char root[64];
    char src[96];
};

static int setup(void **state)
{
    static struct fixture fx;
    snprintf(fx.root, sizeof fx.root, "/tmp/renc-test-store-XXXXXX");
    if (!mkdtemp(fx.root))
        return -1;
    snprintf(fx.src, sizeof fx.src, "%s/src", fx.root);
    mkdir(fx.src, 0755);
    char p[256];
    snprintf(p, sizeof p, "%s/a", fx.src);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/one.renc", fx.src);
    put(p, "old one");
    snprintf(p, sizeof p, "%s/two.renc", fx.src);
    put(p, "old two");
    snprintf(p, sizeof p, "%s/a/.one.renc.renc-tmp.0123456789abcdef", fx.src);
    put(p, "left by a crash");
    snprintf(p, sizeof p, "%s/a/.one.renc.renc-tmp.ffffffffffffffff", fx.src);
    put(p, "not ours");
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* The fixture's source store, opened and listed. */
struct listed {
    const char *srcs[1];
    struct renc_store *st;
    struct renc_scan scan;
};

static void list_src(struct fixture *fx, struct listed *l)
{
    memset(l, 0, sizeof *l);
    l->srcs[0] = fx->src;
    struct renc_store_spec spec = {.sources = l->srcs, .source_count = 1};
    assert_int_equal(renc_store_open(&l->st, &spec), 0);
    assert_int_equal(renc_store_list_scan(l->st, &l->scan), 0);
}

static void listed_cleanup(struct listed *l)
{
    renc_scan_cleanup(&l->scan);
    renc_store_free(l->st);
}

static void test_store_local_lists_items_and_temporaries(void **state)
{
    struct fixture *fx = *state;
    struct listed l;
    list_src(fx, &l);
    struct renc_store *st = l.st;
    struct renc_scan *sc = &l.scan;
    assert_int_equal(st->ops->kind, RENC_STORE_LOCAL);
    assert_string_equal(st->ops->describe(st), fx->src);
    assert_int_equal(sc->count, 2);
    assert_string_equal(sc->items[0].rel, "a/one.renc");
    assert_string_equal(sc->items[1].rel, "two.renc");
    assert_int_equal(sc->total_bytes, 14);
    assert_int_equal(sc->temp_count, 2);
    assert_string_equal(st->ops->ring_path(st, &sc->items[1]), sc->items[1].path);
    listed_cleanup(&l);
}

static void test_store_local_replace_is_invisible_until_commit(void **state)
{
    struct fixture *fx = *state;
    struct listed l;
    list_src(fx, &l);
    struct renc_store *st = l.st;
    struct renc_scan *sc = &l.scan;
    const struct renc_scan_item *it = &sc->items[1];
    int fd = -1;
    struct stat id;
    assert_int_equal(st->ops->open_read(st, it, &fd, &id), 0);
    char buf[16];
    size_t got = 0;
    assert_int_equal(st->ops->read_range(st, it, fd, 4, buf, sizeof buf, &got), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "two", 3);
    close(fd);

    struct renc_store_tags tags = {.tag = "0123456789abcdef"};
    struct renc_store_txn txn;
    assert_int_equal(st->ops->begin(st, it, RENC_COMMIT_REPLACE, &tags, &txn), 0);
    assert_string_equal(txn.final, it->path);
    assert_true(renc_tmpname_reserved(strrchr(txn.tmp, '/') + 1));
    put(txn.tmp, "new two");
    char now[32];
    slurp(it->path, now, sizeof now);
    assert_string_equal(now, "old two"); /* staged: not visible yet */
    assert_int_equal(st->ops->commit(st, &txn, &id), 0);
    struct renc_store_txn *one = &txn;
    assert_int_equal(st->ops->barrier(st, &one, 1), 0);
    slurp(it->path, now, sizeof now);
    assert_string_equal(now, "new two");
    assert_int_equal(access(txn.tmp, F_OK), -1);

    /* The blob is not the one read any more: the commit refuses it and
     * the staging copy goes. */
    assert_int_equal(st->ops->begin(st, it, RENC_COMMIT_REPLACE, &tags, &txn), 0);
    put(txn.tmp, "newer");
    assert_int_equal(st->ops->commit(st, &txn, &id), -RENC_E_CHANGED);
    assert_int_equal(access(txn.tmp, F_OK), -1);
    slurp(it->path, now, sizeof now);
    assert_string_equal(now, "new two");
    listed_cleanup(&l);
}

/* Two writers of one staging name (a worker frozen past its lease, and the
 * worker that claimed its blob since): the first one's commit finds its
 * file gone from the name and puts nothing in place, the other's file and
 * the blob untouched; the second one's commit goes through. */
static void test_store_local_commit_puts_only_its_own_file(void **state)
{
    struct fixture *fx = *state;
    struct listed l;
    list_src(fx, &l);
    struct renc_store *st = l.st;
    const struct renc_scan_item *it = &l.scan.items[1];
    int fd = -1;
    struct stat id;
    assert_int_equal(st->ops->open_read(st, it, &fd, &id), 0);
    close(fd);
    struct renc_store_tags tags = {.tag = "0123456789abcdef"};
    struct renc_store_txn a, b;
    assert_int_equal(st->ops->begin(st, it, RENC_COMMIT_REPLACE, &tags, &a), 0);
    int afd = open(a.tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(afd >= 0);
    assert_int_equal(write(afd, "from a", 6), 6);
    renc_store_txn_mine(&a, afd);
    close(afd);
    assert_true(a.tmp_id.ino != 0);
    /* b removes a's file (a crashed worker's, as far as b can tell) and
     * writes its own under the same name, a lease later: here 20 ms, more
     * than the clock tick a file's birth time is taken at (the inode
     * number freed by the unlink is usually b's). */
    usleep(20000);
    assert_int_equal(st->ops->begin(st, it, RENC_COMMIT_REPLACE, &tags, &b), 0);
    assert_string_equal(a.tmp, b.tmp);
    assert_int_equal(unlink(b.tmp), 0);
    int bfd = open(b.tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(bfd >= 0);
    assert_int_equal(write(bfd, "from b, half", 12), 12);
    renc_store_txn_mine(&b, bfd);
    close(bfd);

    assert_int_equal(st->ops->commit(st, &a, &id), -RENC_E_CHANGED);
    char now[32];
    slurp(it->path, now, sizeof now);
    assert_string_equal(now, "old two"); /* the blob untouched */
    slurp(b.tmp, now, sizeof now);
    assert_string_equal(now, "from b, half"); /* b's file left alone */
    assert_int_equal(st->ops->commit(st, &b, &id), 0);
    slurp(it->path, now, sizeof now);
    assert_string_equal(now, "from b, half");
    listed_cleanup(&l);
}

static void test_store_local_mirror_makes_folders(void **state)
{
    struct fixture *fx = *state;
    char out[128];
    snprintf(out, sizeof out, "%s/out", fx->root);
    mkdir(out, 0755);
    struct renc_store_spec spec = {.root = out};
    struct renc_store *st = NULL;
    assert_int_equal(renc_store_open(&st, &spec), 0);
    struct renc_scan_item it = {.path = (char *)"elsewhere", .rel = (char *)"a/b/c.renc"};
    struct renc_store_tags tags = {.tag = "0123456789abcdef"};
    struct renc_store_txn txn;
    assert_int_equal(st->ops->begin(st, &it, RENC_COMMIT_MIRROR, &tags, &txn), 0);
    char want[256];
    snprintf(want, sizeof want, "%s/a/b/c.renc", out);
    assert_string_equal(txn.final, want);
    put(txn.tmp, "mirrored");
    assert_int_equal(st->ops->commit(st, &txn, NULL), 0);
    char now[32];
    slurp(want, now, sizeof now);
    assert_string_equal(now, "mirrored");
    renc_store_free(st);
}

static void test_store_local_sweep_removes_only_our_tags(void **state)
{
    struct fixture *fx = *state;
    struct listed l;
    list_src(fx, &l);
    struct renc_store *st = l.st;
    struct renc_scan *sc = &l.scan;
    const char *tags[2] = {"0123456789abcdef", NULL};
    struct renc_store_sweep sw;
    assert_int_equal(st->ops->sweep(st, sc->temps, sc->temp_count, tags, 2, &sw), 0);
    assert_int_equal(sw.removed, 1);
    assert_int_equal(sw.foreign, 1);
    assert_non_null(strstr(sw.example, "ffffffffffffffff"));
    assert_int_equal(access(sw.example, F_OK), 0);
    listed_cleanup(&l);
}

static void test_store_mirror_rules_find_collisions_and_sources(void **state)
{
    struct fixture *fx = *state;
    struct listed l;
    list_src(fx, &l);
    struct renc_scan *sc = &l.scan;
    const char *const *srcs = l.srcs;
    struct renc_mirror_issues m;
    memset(&m, 0, sizeof m);
    assert_int_equal(renc_store_mirror_check_paths(sc, &m), 0);
    assert_int_equal(m.count, 0);
    /* The mirror of SRC under SRC/a would land inside the source. */
    char out[128];
    snprintf(out, sizeof out, "%s/a", fx->src);
    assert_int_equal(renc_store_mirror_check_not_source(out, srcs, 1, sc, &m), 0);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.v[0].why, RENC_MIRROR_IN_SOURCE);
    renc_mirror_issues_cleanup(&m);
    /* Mirrored onto the source itself: each blob would be written over
     * itself. */
    assert_int_equal(renc_store_mirror_check_not_source(fx->src, srcs, 1, sc, &m), 0);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.v[0].why, RENC_MIRROR_SELF);
    renc_mirror_issues_cleanup(&m);
    char real[PATH_MAX];
    assert_int_equal(renc_store_out_inside(out, srcs, 1, real, sizeof real), 1);
    renc_free(sc->items[1].rel);
    sc->items[1].rel = renc_strdup("a/one.renc");
    assert_int_equal(renc_store_mirror_check_paths(sc, &m), 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.v[0].why, RENC_MIRROR_SAME_REL);
    renc_mirror_issues_cleanup(&m);
    listed_cleanup(&l);
}

static void test_store_azblob_attrs_round_trip(void **state)
{
    (void)state;
    char *mn[] = {"owner", "empty"}, *mv[] = {"team a & b", ""};
    struct renc_blob_props in = {.content_type = "text/plain", .content_disposition = "a; b=\"c\"",
                                 .meta_names = mn, .meta_values = mv, .meta_count = 2,
                                 .tag_count = 2};
    const char *tagsets[] = {"a=1&b%20c=x%2By", "", NULL};
    for (size_t k = 0; k < 3; k++) {
        char *attrs = NULL, *tags = NULL;
        struct renc_blob_props out;
        assert_int_equal(renc_azb_attrs_make(&attrs, &in, tagsets[k]), 0);
        assert_non_null(attrs);
        assert_int_equal(renc_azb_attrs_read(attrs, &out, &tags), 0);
        assert_string_equal(out.content_type, "text/plain");
        assert_null(out.content_encoding);
        assert_null(out.content_language);
        assert_string_equal(out.content_disposition, "a; b=\"c\"");
        assert_null(out.cache_control);
        assert_int_equal(out.meta_count, 2);
        assert_string_equal(out.meta_names[0], "owner");
        assert_string_equal(out.meta_values[0], "team a & b");
        assert_string_equal(out.meta_names[1], "empty");
        assert_string_equal(out.meta_values[1], "");
        assert_int_equal(out.tag_count, 2);
        if (tagsets[k])
            assert_string_equal(tags, tagsets[k]);
        else
            assert_null(tags);
        renc_blob_props_cleanup(&out);
        renc_free(tags);
        /* Cut anywhere, the form is refused and nothing is left. */
        for (size_t cut = 0; cut < strlen(attrs); cut++) {
            char *part = strndup(attrs, cut);
            assert_non_null(part);
            assert_int_equal(renc_azb_attrs_read(part, &out, &tags), -RENC_E_INVALID);
            assert_null(tags);
            assert_int_equal(out.meta_count, 0);
            free(part);
        }
        renc_free(attrs);
    }
    /* Not listed, or a value it cannot carry: no attrs (the store asks). */
    char *attrs = (char *)"x";
    assert_int_equal(renc_azb_attrs_make(&attrs, NULL, "a=1"), 0);
    assert_null(attrs);
    mv[1] = "two\nlines";
    assert_int_equal(renc_azb_attrs_make(&attrs, &in, NULL), 0);
    assert_null(attrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_local_lists_items_and_temporaries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_local_replace_is_invisible_until_commit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_local_commit_puts_only_its_own_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_local_mirror_makes_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_local_sweep_removes_only_our_tags, setup,
                                        teardown),
        cmocka_unit_test(test_store_azblob_attrs_round_trip),
        cmocka_unit_test_setup_teardown(test_store_mirror_rules_find_collisions_and_sources,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
