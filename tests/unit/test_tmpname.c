/* tests/unit/test_tmpname.c — the temporary-name rule (io/tmpname.h): what
 * is reserved and what is data, parse inverting make, the tag's bounds, the
 * NAME_MAX limit, and random tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>

#include "io/tmpname.h"

static void test_tmpname_reserved_names(void **state)
{
    (void)state;
    assert_true(renc_tmpname_reserved(".f.renc.renc-tmp.0123456789abcdef"));
    assert_true(renc_tmpname_reserved(".x.renc-tmp.st0123456789abcdef"));
    assert_true(renc_tmpname_reserved(".x.renc-tmp.0000abcd"));            /* 8: the least */
    assert_true(renc_tmpname_reserved(".a.renc-tmp.b.renc-tmp.0123456789")); /* NAME with the marker */
}

static void test_tmpname_data_names(void **state)
{
    (void)state;
    const char *data[] = {
        "keep.renc-tmp.00000000000000ab",   /* no leading dot */
        "db.renc-tmp.0123456789abcdef",
        ".notes.renc-tmp.77777",            /* tag too short */
        ".x.renc-tmp.0123456789ABCDEF",     /* upper case */
        ".x.renc-tmp.0123456789abcdef0123456789abcdef0", /* 33: too long */
        ".x.renc-tmp.",                     /* no tag */
        "..renc-tmp.0123456789abcdef",      /* empty NAME */
        ".x.renc-tmp.0123-4567",            /* not [0-9a-z] */
        ".renc-tmp.0123456789abcdef",
        "",
        ".",
    };
    for (size_t i = 0; i < sizeof data / sizeof *data; i++) {
        if (renc_tmpname_reserved(data[i]))
            fail_msg("'%s' taken as reserved", data[i]);
    }
}

static void test_tmpname_make_then_parse(void **state)
{
    (void)state;
    char tmp[256], tag[RENC_TMP_TAG_MAX + 1], name[256], final[256];
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "dir/sub/blob.renc", "abcdef0123456789"), 0);
    assert_string_equal(tmp, "dir/sub/.blob.renc.renc-tmp.abcdef0123456789");
    assert_int_equal(renc_tmpname_parse(strrchr(tmp, '/') + 1, tag, sizeof tag, name, sizeof name), 1);
    assert_string_equal(tag, "abcdef0123456789");
    assert_string_equal(name, "blob.renc");
    assert_int_equal(renc_tmpname_final(tmp, final, sizeof final), 0);
    assert_string_equal(final, "dir/sub/blob.renc");
    /* No folder. */
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "b", "abcdef0123456789"), 0);
    assert_string_equal(tmp, ".b.renc-tmp.abcdef0123456789");
    assert_int_equal(renc_tmpname_final(tmp, final, sizeof final), 0);
    assert_string_equal(final, "b");
    assert_int_equal(renc_tmpname_final("dir/plain", final, sizeof final), -EINVAL);
}

static void test_tmpname_refuses_bad_tags_and_long_names(void **state)
{
    (void)state;
    char tmp[1024], base[NAME_MAX + 1];
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "f", "short"), -EINVAL);
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "f", "UPPERCASE0"), -EINVAL);
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "f", NULL), -EINVAL);
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "dir/", "abcdef0123456789"), -EINVAL);
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "", "abcdef0123456789"), -EINVAL);
    /* A base name that fits NAME_MAX alone, not with its decoration. */
    memset(base, 'a', NAME_MAX);
    base[NAME_MAX] = '\0';
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, base, "abcdef0123456789"), -ENAMETOOLONG);
    assert_int_equal(renc_tmpname_make(tmp, 10, "file", "abcdef0123456789"), -ENAMETOOLONG);
    /* parse with too small a tag or name buffer says no rather than cut. */
    char small[4];
    assert_int_equal(renc_tmpname_parse(".f.renc-tmp.abcdef0123456789", small, sizeof small, NULL, 0), 0);
}

static void test_tmpname_random_tags_are_reserved_and_differ(void **state)
{
    (void)state;
    char a[17], b[17], tmp[64];
    assert_int_equal(renc_tmpname_random_tag(a), 0);
    assert_int_equal(renc_tmpname_random_tag(b), 0);
    assert_int_equal(strlen(a), 16);
    assert_string_not_equal(a, b);
    assert_int_equal(renc_tmpname_make(tmp, sizeof tmp, "x", a), 0);
    assert_true(renc_tmpname_reserved(tmp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tmpname_reserved_names),
        cmocka_unit_test(test_tmpname_data_names),
        cmocka_unit_test(test_tmpname_make_then_parse),
        cmocka_unit_test(test_tmpname_refuses_bad_tags_and_long_names),
        cmocka_unit_test(test_tmpname_random_tags_are_reserved_and_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
