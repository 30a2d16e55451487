/* tests/fuzz/fuzz_manifest.c — the manifest parser of `run --manifest`,
 * `plan --manifest` and `verify --manifest` (store/scan.h): one path per
 * line, '#' comments and blank lines ignored, a file named twice (in any
 * spelling) listed once and counted, a missing or non-regular file recorded
 * as an error.
 *
 * Input: the manifest's bytes.  Relative paths resolve in a fixture folder
 * made once per process (mkdtemp, removed at exit), so that seeds can name
 * real files: a, b, empty, "with space", "#hash", sub/c, sub/deeper/d, a
 * folder sub, a symlink link-a -> a, a symlinked folder ldir -> sub, a
 * dangling symlink and a FIFO.  The process is in the fixture only while
 * one input runs.  The scanner only calls lstat and realpath, so a path
 * outside the fixture is looked at, never opened or created; a missing one
 * is a scan error.
 *
 * Checks (abort() if not):
 *   - the buffer parser and the file parser (the same bytes in a memfd, read
 *     by renc_scan_manifest through /proc/self/fd) agree exactly: items,
 *     errors, duplicates, counters;
 *   - every line that is neither blank nor a comment becomes exactly one
 *     item, error or duplicate (a model of the line rules written here);
 *   - every item is a regular file of the size listed, its rel is its path
 *     without leading '/', total_bytes is their sum, and no two items have
 *     the same canonical path (two hard links are two files to the scanner,
 *     and here).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store/scan.h"
#include "tests/fuzz/fuzz_tmpdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
    do { if (!(cond)) abort(); } while (0)

static char fuzz_dir[] = "/tmp/renc-fuzz-manifest.XXXXXX";
static int fuzz_home = -1; /* the folder the process started in */

static void fuzz_teardown(void)
{
    fuzz_rmtree(fuzz_dir);
    if (fuzz_home >= 0)
        close(fuzz_home);
}

static void fuzz_file(const char *rel, const char *text)
{
    char path[sizeof fuzz_dir + 64];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t n = strlen(text);
    FUZZ_CHECK(fd >= 0 && write(fd, text, n) == (ssize_t)n);
    close(fd);
}

static void fuzz_setup(void)
{
    char path[sizeof fuzz_dir + 64];
    FUZZ_CHECK(mkdtemp(fuzz_dir) != NULL);
    fuzz_home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(fuzz_home >= 0);
    atexit(fuzz_teardown);
    static const char *const dirs[] = {"sub", "sub/deeper"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, dirs[i]);
        FUZZ_CHECK(mkdir(path, 0700) == 0);
    }
    fuzz_file("a", "aaa");
    fuzz_file("b", "bbbbbbb");
    fuzz_file("empty", "");
    fuzz_file("with space", "space");
    fuzz_file("#hash", "hash");
    fuzz_file("sub/c", "cccccccccccc");
    fuzz_file("sub/deeper/d", "dd");
    static const char *const links[][2] = {
        {"a", "link-a"}, {"sub", "ldir"}, {"nowhere", "dangling"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, links[i][1]);
        FUZZ_CHECK(symlink(links[i][0], path) == 0);
    }
    snprintf(path, sizeof path, "%s/fifo", fuzz_dir);
    FUZZ_CHECK(mkfifo(path, 0600) == 0);
}

/* The line rules, written again: how many lines name a path. */
static size_t fuzz_count_lines(const uint8_t *data, size_t size)
{
    size_t count = 0, off = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end - off;
        while (len > 0 && data[off + len - 1] == '\r')
            len--;
        if (len > 0 && data[off] != '#')
            count++;
        off = nl ? end + 1 : size;
    }
    return count;
}

static void fuzz_check_scan(const struct renc_scan *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->count; i++) {
        const struct renc_scan_item *it = &s->items[i];
        struct stat st;
        FUZZ_CHECK(it->path && it->rel && it->path[0] != '\0');
        FUZZ_CHECK(lstat(it->path, &st) == 0 && S_ISREG(st.st_mode));
        FUZZ_CHECK(it->size == (uint64_t)st.st_size && it->mode == st.st_mode);
        const char *rel = it->path;
        while (*rel == '/')
            rel++;
        FUZZ_CHECK(strcmp(rel, it->rel) == 0);
        total += it->size;
    }
    FUZZ_CHECK(total == s->total_bytes);
    for (size_t i = 0; i < s->error_count; i++)
        FUZZ_CHECK(s->errors[i].path != NULL && s->errors[i].rc < 0);

    /* No file twice, in the scanner's sense: no two items resolve to the
     * same canonical path.  Items are few (a manifest can only name the
     * fixture's six files, and whatever of the system it spells out), but
     * bound the quadratic check anyway. */
    if (s->count > 64)
        return;
    static char canon[64][PATH_MAX];
    for (size_t i = 0; i < s->count; i++) {
        FUZZ_CHECK(realpath(s->items[i].path, canon[i]) != NULL);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(canon[i], canon[j]) != 0);
    }
}

static int fuzz_scan_equal(const struct renc_scan *x, const struct renc_scan *y)
{
    if (x->count != y->count || x->error_count != y->error_count ||
        x->duplicates != y->duplicates || x->skipped_special != y->skipped_special ||
        x->total_bytes != y->total_bytes)
        return 0;
    for (size_t i = 0; i < x->count; i++) {
        const struct renc_scan_item *a = &x->items[i], *b = &y->items[i];
        if (strcmp(a->path, b->path) != 0 || strcmp(a->rel, b->rel) != 0 ||
            a->size != b->size || a->mode != b->mode)
            return 0;
    }
    for (size_t i = 0; i < x->error_count; i++)
        if (strcmp(x->errors[i].path, y->errors[i].path) != 0 ||
            x->errors[i].rc != y->errors[i].rc)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_home < 0)
        fuzz_setup();

    /* The same bytes as a file, for renc_scan_manifest; no disk involved. */
    int fd = memfd_create("renc-fuzz-manifest", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    char name[64];
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);

    FUZZ_CHECK(chdir(fuzz_dir) == 0);

    /* Exactly size bytes on the heap, no NUL after them. */
    char *buf = renc_malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    struct renc_scan from_buf, from_file;
    memset(&from_buf, 0, sizeof from_buf);
    memset(&from_file, 0, sizeof from_file);
    int rc_buf = renc_scan_manifest_buf(&from_buf, name, buf, size);
    int rc_file = renc_scan_manifest(&from_file, name);
    renc_free(buf);

    FUZZ_CHECK(rc_buf == 0 && rc_file == 0);
    FUZZ_CHECK(fuzz_scan_equal(&from_buf, &from_file));
    FUZZ_CHECK(from_buf.count + from_buf.error_count + from_buf.duplicates ==
               fuzz_count_lines(data, size));
    FUZZ_CHECK(from_buf.skipped_special == 0); /* a manifest's specials are errors */
    fuzz_check_scan(&from_buf);

    renc_scan_cleanup(&from_file);
    renc_scan_cleanup(&from_buf);
    FUZZ_CHECK(fchdir(fuzz_home) == 0);
    close(fd);
    return 0;
}
