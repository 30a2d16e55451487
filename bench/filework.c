/* bench/filework.c — the small-file ceiling (bench/e2e.sh): only the file
 * work a rekey in place does, no crypto, one thread, plain POSIX calls, with
 * one of the durability barriers a run could use:
 *
 *   for each file: open, read, close; write the bytes to a temporary beside
 *   it; barrier; rename over it; barrier.
 *
 *   filework DIR fdatasync   one fdatasync per temporary, then its rename;
 *                            the directories fsynced every 64 files
 *   filework DIR syncfs:N    N temporaries written, one syncfs, their N
 *                            renames, one syncfs
 *
 * Every file of DIR (recursively) is rewritten with its own bytes; prints
 * one JSON line.  The list of files is taken before the clock starts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/walk.h"

#define DIR_EVERY 64

static char **g_paths;
static size_t g_n, g_cap;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "filework: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void collect(const char *path, void *arg)
{
    (void)arg;
    if (g_n == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 1024;
        g_paths = realloc(g_paths, g_cap * sizeof *g_paths);
        if (!g_paths)
            die("realloc", path);
    }
    g_paths[g_n++] = strdup(path);
}

/* Reads path whole and writes its bytes to path's temporary (tmp), which
 * is fdatasync'ed when sync is set. */
static void rewrite(const char *path, const char *tmp, int sync)
{
    static char *buf;
    static size_t cap;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die("open", path);
    size_t len = (size_t)st.st_size;
    if (len > cap) {
        cap = len;
        buf = realloc(buf, cap);
        if (!buf)
            die("realloc", path);
    }
    if (read(fd, buf, len) != (ssize_t)len)
        die("read", path);
    close(fd);
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0 || write(out, buf, len) != (ssize_t)len)
        die("write", tmp);
    if (sync && fdatasync(out) != 0)
        die("fdatasync", tmp);
    close(out);
}

static void tmp_of(const char *path, char *tmp, size_t cap)
{
    snprintf(tmp, cap, "%s.fw-tmp", path);
}

static void fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        die("fsync", dir);
    close(fd);
}

/* One fdatasync per file before its rename; the directory (of the last
 * file) fsynced every DIR_EVERY renames and at the end. */
static void run_fdatasync(void)
{
    char tmp[4200];
    for (size_t i = 0; i < g_n; i++) {
        tmp_of(g_paths[i], tmp, sizeof tmp);
        rewrite(g_paths[i], tmp, 1);
        if (rename(tmp, g_paths[i]) != 0)
            die("rename", tmp);
        if ((i + 1) % DIR_EVERY == 0 || i + 1 == g_n)
            fsync_dir_of(g_paths[i]);
    }
}

/* Batches of n: n temporaries, one syncfs, n renames, one syncfs. */
static void run_syncfs(size_t n)
{
    char tmp[4200];
    int fs = open(g_paths[0], O_RDONLY | O_CLOEXEC);
    if (fs < 0)
        die("open", g_paths[0]);
    for (size_t at = 0; at < g_n; at += n) {
        size_t end = at + n < g_n ? at + n : g_n;
        for (size_t i = at; i < end; i++) {
            tmp_of(g_paths[i], tmp, sizeof tmp);
            rewrite(g_paths[i], tmp, 0);
        }
        if (syncfs(fs) != 0)
            die("syncfs", g_paths[0]);
        for (size_t i = at; i < end; i++) {
            tmp_of(g_paths[i], tmp, sizeof tmp);
            if (rename(tmp, g_paths[i]) != 0)
                die("rename", tmp);
        }
        if (syncfs(fs) != 0)
            die("syncfs", g_paths[0]);
    }
    close(fs);
}

int main(int argc, char **argv)
{
    size_t batch = 0;
    if (argc != 3 || (strcmp(argv[2], "fdatasync") != 0 &&
                      (sscanf(argv[2], "syncfs:%zu", &batch) != 1 || batch == 0))) {
        fprintf(stderr, "usage: filework DIR fdatasync|syncfs:N\n");
        return 2;
    }
    if (bench_walk(argv[1], collect, NULL))
        die("opendir", argv[1]);
    if (g_n == 0) {
        fprintf(stderr, "filework: no files under %s\n", argv[1]);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (batch)
        run_syncfs(batch);
    else
        run_fdatasync();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"strategy\": \"%s\", \"files\": %zu, \"seconds\": %.3f, \"files_per_s\": %.1f}\n",
           argv[2], g_n, s, (double)g_n / s);
    for (size_t i = 0; i < g_n; i++)
        free(g_paths[i]);
    free(g_paths);
    return 0;
}
