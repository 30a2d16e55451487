/* tests/fuzz/fuzz_tmpdir.h — the scratch folder a fuzz target keeps its
 * fixture in, removed with everything in it at exit. */
#ifndef RENC_FUZZ_TMPDIR_H
#define RENC_FUZZ_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int fuzz_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* fuzz_rmtree: removes dir and everything below it, following no link. */
static inline void fuzz_rmtree(const char *dir)
{
    nftw(dir, fuzz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
