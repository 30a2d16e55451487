/* tests/unit/tmpdir.h — the fixture of the unit tests that work on files:
 * each test gets a new private folder, dir, made after the leak check's
 * baseline and removed with all in it before the leak check. */
#ifndef RENC_TEST_TMPDIR_H
#define RENC_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/leakcheck.h"

/* The test's folder, as mkdtemp made it. */
static char dir[64];

/* setup_tmpdir: setup (leakcheck.h), then a new folder in dir made from
 * template ("/tmp/renc-<module>-test.XXXXXX"); -1 when either fails. */
__attribute__((unused)) static int setup_tmpdir(void **state, const char *template)
{
    if (setup(state) || strlen(template) >= sizeof dir)
        return -1;
    return mkdtemp(strcpy(dir, template)) ? 0 : -1;
}

/* teardown_tmpdir: removes dir and all in it, then teardown (leakcheck.h). */
__attribute__((unused)) static int teardown_tmpdir(void **state)
{
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    return teardown(state);
}

#endif
