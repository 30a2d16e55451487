/* common/memcheck.h — Valgrind memcheck annotations for what memcheck cannot
 * see by itself.
 *
 * io_uring: Valgrind (3.19 here) handles io_uring_setup, io_uring_enter and
 * io_uring_register, and the rings are shared memory it takes for defined;
 * but it does not decode SQEs, so the kernel reads and writes our memory out
 * of its sight, after the io_uring_enter that submitted the work returned.
 * Left alone, every byte a read brings in would stay "uninitialised" and
 * every byte a write hands the kernel would go unchecked.  So io/ring.c
 *   - checks, when it prepares the SQE, that a read's buffer is addressable
 *     for the whole length and that every byte of a write is defined;
 *   - marks, at completion, the bytes a read returned (and a statx result)
 *     as defined.
 * Still invisible: memory freed or reused while the kernel owns it (between
 * submission and completion), and the path strings of OPENAT, RENAMEAT,
 * UNLINKAT and STATX ops.  The ring's own SQEs and CQEs are plain memory.
 * And Valgrind 3.19 does not count io_uring_enter among the calls that may
 * block: a thread waiting in it keeps Valgrind's lock, so the process's
 * other threads wait with it (liburing issue #657).  The tool's rings only
 * wait for file I/O, which completes without another thread's help, so a
 * run is serialised but completes; tests/unit/test_ring.c's pipe tests,
 * where a peer thread feeds or drains the pipe, hang under memcheck.
 *
 * The buffer pool (io/pool.c): a cached buffer is inaccessible but for its
 * free-list link until the pool hands it out again (wiped: zeros), so a
 * buffer used after its release is an invalid access, as it would be after
 * free().
 *
 * A simulated crash (io/file.c, RENC_FAULT=OP:N:KILL): memcheck runs its leak
 * check before a SIGKILL the process sends itself ends it, so that check
 * lists whatever was live at the crash.  RENC_MEM_SIMULATED_CRASH first
 * writes RENC_MEM_CRASH_MARK to the log; tests/e2e/lib.sh ignores what
 * follows it (a kill from another process ends the process before any
 * check).
 *
 * Compiled in only with -DRENC_VALGRIND=ON (scripts/build.sh valgrind); in
 * every other build the macros are empty.
 */
#ifndef RENC_COMMON_MEMCHECK_H
#define RENC_COMMON_MEMCHECK_H

#if defined(RENC_VALGRIND) && RENC_VALGRIND
#include <valgrind/memcheck.h>
#define RENC_MEM_DEFINED(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define RENC_MEM_NOACCESS(p, n) ((void)VALGRIND_MAKE_MEM_NOACCESS((p), (n)))
#define RENC_MEM_CHECK_DEFINED(p, n) ((void)VALGRIND_CHECK_MEM_IS_DEFINED((p), (n)))
#define RENC_MEM_CHECK_ADDRESSABLE(p, n) ((void)VALGRIND_CHECK_MEM_IS_ADDRESSABLE((p), (n)))
#define RENC_MEM_SIMULATED_CRASH() ((void)VALGRIND_PRINTF("%s\n", RENC_MEM_CRASH_MARK))
#else
#define RENC_MEM_DEFINED(p, n) ((void)0)
#define RENC_MEM_NOACCESS(p, n) ((void)0)
#define RENC_MEM_CHECK_DEFINED(p, n) ((void)0)
#define RENC_MEM_CHECK_ADDRESSABLE(p, n) ((void)0)
#define RENC_MEM_SIMULATED_CRASH() ((void)0)
#endif

/* The line tests/e2e/lib.sh looks for (keep the two in step). */
#define RENC_MEM_CRASH_MARK "renc: simulated crash (RENC_FAULT KILL): what follows is no leak"

#endif
