/* tests/unit/test_path.c — lexical path tidying: empty and "." components
 * go, ".." stays unless refused, rooted results start with '/', in-place use
 * works, and a result that does not fit is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/path.h"

static void expect(const char *in, unsigned flags, const char *want)
{
    char out[256];
    assert_int_equal(renc_path_tidy(out, sizeof out, in, flags), 0);
    assert_string_equal(out, want);
}

static void test_path_tidy_drops_empty_and_dot_components(void **state)
{
    (void)state;
    expect("a//b/./c/", 0, "a/b/c");
    expect("./a", 0, "a");
    expect("/x/./y//", RENC_PATH_ROOTED, "/x/y");
    expect("x/y", RENC_PATH_ROOTED, "/x/y");
    expect("//", RENC_PATH_ROOTED, "/");
}

static void test_path_tidy_keeps_or_refuses_dotdot(void **state)
{
    (void)state;
    char out[64];
    expect("a/../b", 0, "a/../b");
    assert_int_equal(renc_path_tidy(out, sizeof out, "a/../b", RENC_PATH_NO_DOTDOT),
                     -RENC_E_INVALID);
    assert_int_equal(renc_path_tidy(out, sizeof out, "a/..x/b", RENC_PATH_NO_DOTDOT), 0);
    assert_string_equal(out, "a/..x/b");
}

static void test_path_tidy_refuses_an_empty_relative_result(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(renc_path_tidy(out, sizeof out, "./", 0), -RENC_E_INVALID);
    assert_int_equal(renc_path_tidy(out, sizeof out, "", 0), -RENC_E_INVALID);
}

static void test_path_tidy_works_in_place(void **state)
{
    (void)state;
    char buf[] = "./x//y/./z/";
    assert_int_equal(renc_path_tidy(buf, sizeof buf, buf, RENC_PATH_NO_DOTDOT), 0);
    assert_string_equal(buf, "x/y/z");
}

static void test_path_tidy_refuses_what_does_not_fit(void **state)
{
    (void)state;
    char out[6];
    assert_int_equal(renc_path_tidy(out, sizeof out, "ab/cd", 0), 0);
    assert_int_equal(renc_path_tidy(out, sizeof out, "ab/cd", RENC_PATH_ROOTED), -ENAMETOOLONG);
    assert_int_equal(renc_path_tidy(out, 0, "a", 0), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_tidy_drops_empty_and_dot_components),
        cmocka_unit_test(test_path_tidy_keeps_or_refuses_dotdot),
        cmocka_unit_test(test_path_tidy_refuses_an_empty_relative_result),
        cmocka_unit_test(test_path_tidy_works_in_place),
        cmocka_unit_test(test_path_tidy_refuses_what_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
