/* bench/walk.h — the plain benchmark programs' tree walk (baseline_loop,
 * filework): every regular file under a directory, depth first, names
 * starting with a dot skipped. */
#ifndef RENC_BENCH_WALK_H
#define RENC_BENCH_WALK_H

/* Calls fn(path, arg) for each regular file under dir; 0, or -1 when a
 * directory cannot be opened (the rest is still walked). */
int bench_walk(const char *dir, void (*fn)(const char *path, void *arg), void *arg);

#endif
