/* tests/unit/test_ring.c — the io_uring ring: each op kind on real files,
 * more ops than the ring's depth chained through callbacks, short reads and
 * writes resubmitted, -EAGAIN retried, errors passed up, injected faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "io/file.h"
#include "io/ring.h"

static char tmp_dir[PATH_MAX];
static int64_t live_before;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int setup_group(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/renc_test_ring.XXXXXX", base ? base : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_group(void **state)
{
    (void)state;
    return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Every test must give back what it allocated. */
static int setup(void **state)
{
    (void)state;
    live_before = renc_alloc_outstanding();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    renc_alloc_fail_at(0);
    unsetenv("RENC_FAULT");
    return renc_alloc_outstanding() == live_before ? 0 : -1;
}

static void path_in_tmp(char *out, size_t max_out, const char *name)
{
    int n = snprintf(out, max_out, "%s/%s", tmp_dir, name);
    assert_true(n > 0 && (size_t)n < max_out);
}

/* A deterministic byte pattern: byte i of a stream seeded with seed. */
static uint8_t pattern_byte(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i >> 3) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint8_t)(z >> ((i & 7) * 8));
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(seed, offset + i);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    assert_int_equal(close(fd), 0);
}

/* One op run to completion on its own. */
struct result {
    int calls;
    int value;
};

static void record_result(struct renc_ring_op *op, int result)
{
    struct result *r = op->user;
    r->calls++;
    r->value = result;
}

static int run_op(struct renc_ring *ring, struct renc_ring_op *op)
{
    struct result r = {0, 0};
    op->done = record_result;
    op->user = &r;
    renc_ring_submit(ring, op);
    assert_int_equal(renc_ring_drain(ring), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(renc_ring_in_flight(ring), 0);
    return r.value;
}

static int ring_open(struct renc_ring *ring, int dirfd, const char *path, int flags, mode_t mode)
{
    struct renc_ring_op op = {.kind = RENC_RING_OPENAT, .fd = dirfd, .path = path,
                              .open_flags = flags, .mode = mode};
    return run_op(ring, &op);
}

static int ring_rw(struct renc_ring *ring, enum renc_ring_kind kind, int fd, uint8_t *buf,
                   size_t len, uint64_t offset)
{
    struct renc_ring_op op = {.kind = kind, .fd = fd, .buf = buf, .len = len, .offset = offset};
    return run_op(ring, &op);
}

static int ring_simple(struct renc_ring *ring, enum renc_ring_kind kind, int fd, unsigned flags)
{
    struct renc_ring_op op = {.kind = kind, .fd = fd, .flags = flags};
    return run_op(ring, &op);
}

static void test_ring_write_fsync_read_back(void **state)
{
    (void)state;
    enum { LEN = 300000 };
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    uint8_t *data = renc_malloc(LEN), *back = renc_malloc(LEN);
    assert_non_null(data);
    assert_non_null(back);
    fill_pattern(data, LEN, 1, 0);

    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "roundtrip");
    int fd = ring_open(ring, AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ring_rw(ring, RENC_RING_WRITE, fd, data, LEN, 0), LEN);
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, fd, 0), 0);
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, fd, RENC_RING_DATASYNC), 0);
    memset(back, 0, LEN);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, LEN, 0), LEN);
    assert_memory_equal(back, data, LEN);
    /* At an offset, and the close through the ring. */
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, 1000, 12345), 1000);
    assert_memory_equal(back, data + 12345, 1000);
    assert_int_equal(ring_simple(ring, RENC_RING_CLOSE, fd, 0), 0);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, 10, 0), -EBADF);

    /* Seen the same by plain POSIX reads. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    size_t got = 0;
    memset(back, 0, LEN);
    assert_int_equal(renc_file_pread_full(fd, back, LEN, 0, &got), 0);
    assert_int_equal(got, LEN);
    assert_memory_equal(back, data, LEN);
    close(fd);

    renc_free(back);
    renc_free(data);
    renc_ring_free(ring);
}

/* openat -> write -> fsync -> close, each step submitted from the previous
 * one's callback; the job frees itself at the end. */
struct chain_stats {
    struct renc_ring *ring;
    int finished;
    int failed;
};

struct file_job {
    struct renc_ring_op op;
    struct chain_stats *stats;
    char path[PATH_MAX];
    uint8_t data[100];
};

static void job_step(struct renc_ring_op *op, int result)
{
    struct file_job *job = op->user;
    struct chain_stats *stats = job->stats;
    if (result < 0) {
        stats->failed++;
        renc_free(job);
        return;
    }
    switch (op->kind) {
    case RENC_RING_OPENAT:
        op->kind = RENC_RING_WRITE;
        op->fd = result;
        op->buf = job->data;
        op->len = sizeof(job->data);
        op->offset = 0;
        break;
    case RENC_RING_WRITE:
        if ((size_t)result != sizeof(job->data))
            stats->failed++;
        op->kind = RENC_RING_FSYNC;
        op->flags = RENC_RING_DATASYNC;
        break;
    case RENC_RING_FSYNC:
        op->kind = RENC_RING_CLOSE;
        break;
    default:
        stats->finished++;
        renc_free(job); /* the ring must not touch op after this */
        return;
    }
    renc_ring_submit(stats->ring, op);
}

static void test_ring_chains_many_more_ops_than_depth(void **state)
{
    (void)state;
    enum { FILES = 200, DEPTH = 32 };
    struct chain_stats stats = {NULL, 0, 0};
    assert_int_equal(renc_ring_new(&stats.ring, DEPTH), 0);
    for (int i = 0; i < FILES; i++) {
        struct file_job *job = renc_calloc(1, sizeof(*job));
        assert_non_null(job);
        job->stats = &stats;
        char name[64];
        snprintf(name, sizeof(name), "chain-%03d", i);
        path_in_tmp(job->path, sizeof(job->path), name);
        fill_pattern(job->data, sizeof(job->data), (uint64_t)i + 100, 0);
        job->op = (struct renc_ring_op){.kind = RENC_RING_OPENAT, .fd = AT_FDCWD,
                                        .path = job->path,
                                        .open_flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                        .mode = 0600, .done = job_step, .user = job};
        renc_ring_submit(stats.ring, &job->op);
    }
    assert_int_equal(renc_ring_in_flight(stats.ring), FILES);
    assert_int_equal(renc_ring_drain(stats.ring), 0);
    assert_int_equal(renc_ring_in_flight(stats.ring), 0);
    assert_int_equal(stats.failed, 0);
    assert_int_equal(stats.finished, FILES);
    renc_ring_free(stats.ring);

    for (int i = 0; i < FILES; i++) {
        char name[64], path[PATH_MAX];
        snprintf(name, sizeof(name), "chain-%03d", i);
        path_in_tmp(path, sizeof(path), name);
        uint8_t want[100], got[101];
        fill_pattern(want, sizeof(want), (uint64_t)i + 100, 0);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        size_t n = 0;
        assert_int_equal(renc_file_read_full(fd, got, sizeof(got), &n), 0);
        close(fd);
        assert_int_equal(n, sizeof(want));
        assert_memory_equal(got, want, sizeof(want));
    }
}

static void test_ring_read_past_eof_returns_what_is_there(void **state)
{
    (void)state;
    uint8_t data[1000], back[4096];
    fill_pattern(data, sizeof(data), 2, 0);
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "short");
    write_file(path, data, sizeof(data));

    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    int fd = ring_open(ring, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, sizeof(back), 0), sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, sizeof(back), 500), 500);
    assert_memory_equal(back, data + 500, 500);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, sizeof(back), 1000), 0);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, sizeof(back), 5000), 0);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, 0, 0), 0);
    assert_int_equal(ring_simple(ring, RENC_RING_CLOSE, fd, 0), 0);
    renc_ring_free(ring);
}

/* 64 MiB in 1 MiB chunks, 16 reads in flight: each completion checks its
 * chunk and reads the next one not yet asked for. */
struct big_read {
    struct renc_ring *ring;
    uint64_t next_offset;
    uint64_t file_len;
    int chunks_ok;
    int chunks_bad;
};

struct big_chunk {
    struct renc_ring_op op;
    struct big_read *br;
};

enum { BIG_CHUNK = 1 << 20, BIG_LEN = 64 << 20, BIG_IN_FLIGHT = 16 };

static void big_chunk_done(struct renc_ring_op *op, int result)
{
    struct big_chunk *c = op->user;
    struct big_read *br = c->br;
    int ok = result == BIG_CHUNK;
    for (size_t i = 0; ok && i < BIG_CHUNK; i++)
        ok = op->buf[i] == pattern_byte(3, op->offset + i);
    if (ok)
        br->chunks_ok++;
    else
        br->chunks_bad++;
    if (br->next_offset < br->file_len) {
        op->offset = br->next_offset;
        br->next_offset += BIG_CHUNK;
        renc_ring_submit(br->ring, op);
    }
}

static void test_ring_reads_64mib_in_1mib_chunks(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "big");
    uint8_t *data = renc_malloc(BIG_LEN);
    assert_non_null(data);
    fill_pattern(data, BIG_LEN, 3, 0);
    write_file(path, data, BIG_LEN);
    renc_free(data);

    struct big_read br = {NULL, 0, BIG_LEN, 0, 0};
    assert_int_equal(renc_ring_new(&br.ring, BIG_IN_FLIGHT), 0);
    int fd = ring_open(br.ring, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct big_chunk chunks[BIG_IN_FLIGHT];
    for (int i = 0; i < BIG_IN_FLIGHT; i++) {
        uint8_t *buf = renc_aligned_alloc(4096, BIG_CHUNK);
        assert_non_null(buf);
        chunks[i].br = &br;
        chunks[i].op = (struct renc_ring_op){.kind = RENC_RING_READ, .fd = fd, .buf = buf,
                                             .len = BIG_CHUNK, .offset = br.next_offset,
                                             .done = big_chunk_done, .user = &chunks[i]};
        br.next_offset += BIG_CHUNK;
        renc_ring_submit(br.ring, &chunks[i].op);
    }
    assert_int_equal(renc_ring_drain(br.ring), 0);
    assert_int_equal(br.chunks_bad, 0);
    assert_int_equal(br.chunks_ok, BIG_LEN / BIG_CHUNK);
    for (int i = 0; i < BIG_IN_FLIGHT; i++)
        renc_free(chunks[i].op.buf);
    assert_int_equal(ring_simple(br.ring, RENC_RING_CLOSE, fd, 0), 0);
    renc_ring_free(br.ring);
    unlink(path);
}

static void test_ring_openat_missing_file_passes_enoent_up(void **state)
{
    (void)state;
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "no-such-file");
    assert_int_equal(ring_open(ring, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0), -ENOENT);
    renc_ring_free(ring);
}

static void test_ring_renameat_unlinkat_statx_in_a_directory(void **state)
{
    (void)state;
    uint8_t data[777];
    fill_pattern(data, sizeof(data), 4, 0);
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "from");
    write_file(path, data, sizeof(data));
    int dirfd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dirfd >= 0);

    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    /* Names relative to op->fd, the directory. */
    struct renc_ring_op op = {.kind = RENC_RING_RENAMEAT, .fd = dirfd, .path = "from",
                              .path2 = "to"};
    assert_int_equal(run_op(ring, &op), 0);
    assert_int_equal(faccessat(dirfd, "from", F_OK, 0), -1);
    assert_int_equal(faccessat(dirfd, "to", F_OK, 0), 0);
    op = (struct renc_ring_op){.kind = RENC_RING_RENAMEAT, .fd = dirfd, .path = "from",
                               .path2 = "to"};
    assert_int_equal(run_op(ring, &op), -ENOENT);

    op = (struct renc_ring_op){.kind = RENC_RING_STATX, .fd = dirfd, .path = "to"};
    assert_int_equal(run_op(ring, &op), 0);
    assert_int_equal(op.size, sizeof(data));
    assert_true(S_ISREG(op.mode));
    assert_int_equal(op.mode & 07777, 0600);

    /* STATX of the descriptor itself. */
    int fd = openat(dirfd, "to", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    op = (struct renc_ring_op){.kind = RENC_RING_STATX, .fd = fd, .path = NULL};
    assert_int_equal(run_op(ring, &op), 0);
    assert_int_equal(op.size, sizeof(data));
    close(fd);

    op = (struct renc_ring_op){.kind = RENC_RING_UNLINKAT, .fd = dirfd, .path = "to"};
    assert_int_equal(run_op(ring, &op), 0);
    assert_int_equal(faccessat(dirfd, "to", F_OK, 0), -1);
    /* A failed STATX leaves size and mode alone. */
    op = (struct renc_ring_op){.kind = RENC_RING_STATX, .fd = dirfd, .path = "to",
                               .size = 42, .mode = 042};
    assert_int_equal(run_op(ring, &op), -ENOENT);
    assert_int_equal(op.size, 42);
    assert_int_equal(op.mode, 042);
    op = (struct renc_ring_op){.kind = RENC_RING_UNLINKAT, .fd = dirfd, .path = "to"};
    assert_int_equal(run_op(ring, &op), -ENOENT);

    renc_ring_free(ring);
    close(dirfd);
}

/* Many STATX in flight at once, more than the ring has statx buffers. */
static void test_ring_many_statx_in_flight(void **state)
{
    (void)state;
    enum { N = 40 };
    char path[PATH_MAX];
    uint8_t data[N];
    memset(data, 'x', sizeof(data));
    struct renc_ring_op ops[N];
    struct result results[N];
    char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "statx-%02d", i);
        path_in_tmp(path, sizeof(path), names[i]);
        write_file(path, data, (size_t)i);
    }
    int dirfd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dirfd >= 0);
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    for (int i = 0; i < N; i++) {
        results[i] = (struct result){0, 0};
        ops[i] = (struct renc_ring_op){.kind = RENC_RING_STATX, .fd = dirfd, .path = names[i],
                                       .size = 999, .done = record_result, .user = &results[i]};
        renc_ring_submit(ring, &ops[i]);
    }
    assert_int_equal(renc_ring_drain(ring), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i].calls, 1);
        assert_int_equal(results[i].value, 0);
        assert_int_equal(ops[i].size, (uint64_t)i);
    }
    renc_ring_free(ring);
    close(dirfd);
}

static void test_ring_injected_fault_fails_exactly_the_third_write(void **state)
{
    (void)state;
    enum { N = 5, LEN = 1000 };
    uint8_t data[N][LEN];
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "faulty");
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    int fd = ring_open(ring, AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);

    assert_int_equal(setenv("RENC_FAULT", "write:3:ENOSPC", 1), 0);
    renc_fault_reset();
    struct renc_ring_op ops[N];
    struct result results[N];
    for (int i = 0; i < N; i++) {
        fill_pattern(data[i], LEN, 5, (uint64_t)i * LEN);
        results[i] = (struct result){0, 0};
        ops[i] = (struct renc_ring_op){.kind = RENC_RING_WRITE, .fd = fd, .buf = data[i],
                                       .len = LEN, .offset = (uint64_t)i * LEN,
                                       .done = record_result, .user = &results[i]};
        renc_ring_submit(ring, &ops[i]);
    }
    assert_int_equal(renc_ring_drain(ring), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i].calls, 1);
        assert_int_equal(results[i].value, i == 2 ? -ENOSPC : LEN);
    }
    /* The failed write never reached the file: a hole reads as zeros. */
    uint8_t back[LEN], zero[LEN];
    memset(zero, 0, sizeof(zero));
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, LEN, 2 * LEN), LEN);
    assert_memory_equal(back, zero, LEN);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, LEN, 3 * LEN), LEN);
    assert_memory_equal(back, data[3], LEN);

    /* Fsyncs count on their own. */
    assert_int_equal(setenv("RENC_FAULT", "fsync:2:EIO", 1), 0);
    renc_fault_reset();
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, fd, 0), 0);
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, fd, RENC_RING_DATASYNC), -EIO);
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, fd, 0), 0);
    unsetenv("RENC_FAULT");
    renc_fault_reset();

    assert_int_equal(ring_simple(ring, RENC_RING_CLOSE, fd, 0), 0);
    renc_ring_free(ring);
}

/* A pipe gives short reads and writes, and -EAGAIN when non-blocking. */
struct pipe_peer {
    int fd;
    size_t len;
    useconds_t pause_us;
    uint8_t *buf;
    size_t moved;
};

static void *pipe_writer(void *arg)
{
    struct pipe_peer *p = arg;
    usleep(p->pause_us);
    for (size_t off = 0; off < p->len;) {
        size_t n = p->len - off < 1000 ? p->len - off : 1000;
        ssize_t w = write(p->fd, p->buf + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
        p->moved = off;
        usleep(200);
    }
    close(p->fd);
    return NULL;
}

static void *pipe_reader(void *arg)
{
    struct pipe_peer *p = arg;
    for (;;) {
        usleep(p->pause_us);
        ssize_t n = read(p->fd, p->buf + p->moved, p->len - p->moved < 4096 ? p->len - p->moved : 4096);
        if (n <= 0)
            break;
        p->moved += (size_t)n;
    }
    return NULL;
}

static void test_ring_read_resubmits_short_reads_until_eof(void **state)
{
    (void)state;
    enum { LEN = 64000 };
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    uint8_t *data = renc_malloc(LEN), *back = renc_malloc(LEN + 100);
    assert_non_null(data);
    assert_non_null(back);
    fill_pattern(data, LEN, 6, 0);
    struct pipe_peer peer = {fds[1], LEN, 1000, data, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pipe_writer, &peer), 0);

    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    /* The writer dribbles 1000 bytes at a time: one read of more than all
     * of it comes back with all of it, at end of file. */
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fds[0], back, LEN + 100, 0), LEN);
    assert_memory_equal(back, data, LEN);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(fds[0]);
    renc_ring_free(ring);
    renc_free(back);
    renc_free(data);
}

static void test_ring_write_resubmits_short_writes(void **state)
{
    (void)state;
    enum { LEN = 1 << 20 };
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    uint8_t *data = renc_malloc(LEN), *back = renc_malloc(LEN);
    assert_non_null(data);
    assert_non_null(back);
    fill_pattern(data, LEN, 7, 0);
    struct pipe_peer peer = {fds[0], LEN, 100, back, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pipe_reader, &peer), 0);

    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    /* The pipe holds 64 KiB: the write goes through in pieces. */
    assert_int_equal(ring_rw(ring, RENC_RING_WRITE, fds[1], data, LEN, 0), LEN);
    close(fds[1]);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(peer.moved, LEN);
    assert_memory_equal(back, data, LEN);
    close(fds[0]);
    renc_ring_free(ring);
    renc_free(back);
    renc_free(data);
}

static void test_ring_retries_eagain(void **state)
{
    (void)state;
    enum { LEN = 3000 };
    int fds[2];
    /* Non-blocking ends: where the kernel does not arm a poll it answers
     * -EAGAIN until the other side moves, and the ring retries. */
    assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    uint8_t data[LEN], back[LEN];
    fill_pattern(data, LEN, 8, 0);
    struct pipe_peer peer = {fds[1], LEN, 20000, data, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pipe_writer, &peer), 0);

    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fds[0], back, LEN, 0), LEN);
    assert_memory_equal(back, data, LEN);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(fds[0]);

    /* A write into a full pipe. */
    assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    size_t filled = 0;
    uint8_t junk[4096];
    memset(junk, 0, sizeof(junk));
    for (;;) {
        ssize_t n = write(fds[1], junk, sizeof(junk));
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            break;
        }
        filled += (size_t)n;
    }
    uint8_t *sink = renc_malloc(filled + LEN);
    assert_non_null(sink);
    int rfl = fcntl(fds[0], F_GETFL);
    assert_int_equal(fcntl(fds[0], F_SETFL, rfl & ~O_NONBLOCK), 0);
    struct pipe_peer reader = {fds[0], filled + LEN, 20000, sink, 0};
    assert_int_equal(pthread_create(&t, NULL, pipe_reader, &reader), 0);
    assert_int_equal(ring_rw(ring, RENC_RING_WRITE, fds[1], data, LEN, 0), LEN);
    close(fds[1]);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(reader.moved, filled + LEN);
    assert_memory_equal(sink + filled, data, LEN);
    close(fds[0]);
    renc_free(sink);

    /* Retries of a file read and write, the kernel's answers overridden. */
    char path[PATH_MAX];
    path_in_tmp(path, sizeof(path), "eagain");
    int fd = ring_open(ring, AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    renc_ring_fake_eagain(ring, 3);
    assert_int_equal(ring_rw(ring, RENC_RING_WRITE, fd, data, LEN, 100), LEN);
    renc_ring_fake_eagain(ring, 2);
    memset(back, 0, sizeof(back));
    assert_int_equal(ring_rw(ring, RENC_RING_READ, fd, back, LEN, 100), LEN);
    assert_memory_equal(back, data, LEN);
    renc_ring_fake_eagain(ring, 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 100 + LEN);
    assert_int_equal(ring_simple(ring, RENC_RING_CLOSE, fd, 0), 0);
    renc_ring_free(ring);
}

static void test_ring_wait_zero_does_not_block(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    uint8_t back[4];
    struct result r = {0, 0};
    struct renc_ring_op op = {.kind = RENC_RING_READ, .fd = fds[0], .buf = back,
                              .len = sizeof(back), .done = record_result, .user = &r};
    renc_ring_submit(ring, &op);
    assert_int_equal(renc_ring_flush(ring), 0);
    assert_int_equal(renc_ring_wait(ring, 0), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(renc_ring_in_flight(ring), 1);

    assert_int_equal(write(fds[1], "abcd", 4), 4);
    close(fds[1]);
    assert_int_equal(renc_ring_wait(ring, 1), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.value, 4);
    assert_memory_equal(back, "abcd", 4);
    assert_int_equal(renc_ring_in_flight(ring), 0);
    /* Nothing in flight: wait returns at once. */
    assert_int_equal(renc_ring_wait(ring, 5), 0);
    close(fds[0]);
    renc_ring_free(ring);
}

static void test_ring_free_cancels_what_is_still_in_flight(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    uint8_t back[2][16];
    struct result r[3] = {{0, 0}, {0, 0}, {0, 0}};
    /* Two reads that would wait for ever, and one never handed over. */
    struct renc_ring_op ops[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = (struct renc_ring_op){.kind = RENC_RING_READ, .fd = fds[0], .buf = back[i % 2],
                                       .len = 16, .done = record_result, .user = &r[i]};
        renc_ring_submit(ring, &ops[i]);
        if (i == 1)
            assert_int_equal(renc_ring_flush(ring), 0);
    }
    assert_int_equal(renc_ring_wait(ring, 0), 0);
    assert_int_equal(renc_ring_in_flight(ring), 3);
    renc_ring_free(ring); /* returns, and runs no callback */
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 0);
    close(fds[0]);
    close(fds[1]);
}

struct reentry {
    struct renc_ring *ring;
    int wait_rc;
    int drain_rc;
};

static void try_wait_inside(struct renc_ring_op *op, int result)
{
    struct reentry *re = op->user;
    if (result >= 0)
        close(result);
    re->wait_rc = renc_ring_wait(re->ring, 1);
    re->drain_rc = renc_ring_drain(re->ring);
}

static void test_ring_wait_from_a_callback_is_refused(void **state)
{
    (void)state;
    struct reentry re = {NULL, 0, 0};
    assert_int_equal(renc_ring_new(&re.ring, 8), 0);
    struct renc_ring_op op = {.kind = RENC_RING_OPENAT, .fd = AT_FDCWD, .path = "/",
                              .open_flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                              .done = try_wait_inside, .user = &re};
    renc_ring_submit(re.ring, &op);
    assert_int_equal(renc_ring_drain(re.ring), 0);
    assert_int_equal(re.wait_rc, -EDEADLK);
    assert_int_equal(re.drain_rc, -EDEADLK);
    renc_ring_free(re.ring);
}

static void test_ring_rejects_bad_ops(void **state)
{
    (void)state;
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 8), 0);
    uint8_t byte;
    assert_int_equal(ring_rw(ring, RENC_RING_READ, 0, &byte, (size_t)INT_MAX + 1, 0), -EINVAL);
    assert_int_equal(ring_rw(ring, RENC_RING_WRITE, 1, &byte, (size_t)INT_MAX + 1, 0), -EINVAL);
    struct renc_ring_op op = {.kind = (enum renc_ring_kind)99};
    assert_int_equal(run_op(ring, &op), -EINVAL);
    assert_int_equal(ring_simple(ring, RENC_RING_FSYNC, -1, 0), -EBADF);
    renc_ring_free(ring);
}

static void test_ring_new_out_of_memory_leaves_out_unset(void **state)
{
    (void)state;
    for (uint64_t n = 1; n <= 3; n++) {
        struct renc_ring *ring = (struct renc_ring *)&n;
        renc_alloc_fail_at(n);
        assert_int_equal(renc_ring_new(&ring, 8), -RENC_E_NOMEM);
        assert_ptr_equal(ring, (struct renc_ring *)&n);
    }
    renc_alloc_fail_at(0);
    renc_ring_free(NULL);
}

static void test_ring_depth_is_clamped(void **state)
{
    (void)state;
    /* Below 8 and above 4096 still make a working ring. */
    unsigned depths[] = {0, 1, 9, 100000};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        struct renc_ring *ring = NULL;
        assert_int_equal(renc_ring_new(&ring, depths[i]), 0);
        assert_true(ring_open(ring, AT_FDCWD, "/no/such/renc/path", O_RDONLY, 0) == -ENOENT);
        renc_ring_free(ring);
    }
}

/* RENC_RING_ASYNC: ops run by io_uring's worker threads complete as inline
 * ones do; many closes of removed files (each freeing the file's blocks)
 * in flight at once all close their descriptors. */
static void test_ring_async_ops_and_closes_of_removed_files(void **state)
{
    (void)state;
    enum { N = 64, LEN = 16384 };
    struct renc_ring *ring = NULL;
    assert_int_equal(renc_ring_new(&ring, 16), 0);
    uint8_t data[LEN], back[LEN];
    fill_pattern(data, LEN, 7, 0);
    int fds[N];
    for (int i = 0; i < N; i++) {
        char path[PATH_MAX], name[32];
        snprintf(name, sizeof name, "async%d", i);
        path_in_tmp(path, sizeof(path), name);
        fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fds[i] >= 0);
        assert_int_equal(write(fds[i], data, LEN), LEN);
        assert_int_equal(unlink(path), 0);
    }
    struct renc_ring_op rd = {.kind = RENC_RING_READ, .fd = fds[0], .buf = back, .len = LEN,
                              .flags = RENC_RING_ASYNC};
    assert_int_equal(run_op(ring, &rd), LEN);
    assert_memory_equal(back, data, LEN);
    struct renc_ring_op ops[N];
    struct result res[N];
    for (int i = 0; i < N; i++) {
        ops[i] = (struct renc_ring_op){.kind = RENC_RING_CLOSE, .fd = fds[i],
                                       .flags = RENC_RING_ASYNC, .done = record_result,
                                       .user = &res[i]};
        res[i] = (struct result){0, -1};
        renc_ring_submit(ring, &ops[i]);
    }
    assert_int_equal(renc_ring_drain(ring), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].value, 0);
        assert_int_equal(fcntl(fds[i], F_GETFD), -1);
    }
    renc_ring_free(ring);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ring_write_fsync_read_back),
        T(test_ring_chains_many_more_ops_than_depth),
        T(test_ring_read_past_eof_returns_what_is_there),
        T(test_ring_reads_64mib_in_1mib_chunks),
        T(test_ring_openat_missing_file_passes_enoent_up),
        T(test_ring_renameat_unlinkat_statx_in_a_directory),
        T(test_ring_many_statx_in_flight),
        T(test_ring_injected_fault_fails_exactly_the_third_write),
        T(test_ring_read_resubmits_short_reads_until_eof),
        T(test_ring_write_resubmits_short_writes),
        T(test_ring_retries_eagain),
        T(test_ring_wait_zero_does_not_block),
        T(test_ring_wait_from_a_callback_is_refused),
        T(test_ring_free_cancels_what_is_still_in_flight),
        T(test_ring_rejects_bad_ops),
        T(test_ring_new_out_of_memory_leaves_out_unset),
        T(test_ring_depth_is_clamped),
        T(test_ring_async_ops_and_closes_of_removed_files),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
