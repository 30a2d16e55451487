/* store/mirror.h — the rules for writing a mirror of the sources (run
 * --out): where it may lie, and which blobs it must refuse.  They print
 * nothing: each returns what it found, and the command says it. */
#ifndef RENC_STORE_MIRROR_H
#define RENC_STORE_MIRROR_H

#include <stddef.h>

#include "store/scan.h"

/* renc_store_out_inside: 1 when out lies inside one of the sources (the
 * run would read its own output), 0 when not (out_real gets out made
 * canonical), or a negative error; a missing out is created once it is
 * known to be outside every source. */
int renc_store_out_inside(const char *out, const char *const *sources, size_t n,
                          char *out_real, size_t max);

enum renc_mirror_why {
    RENC_MIRROR_BAD_REL = 1, /* item's path has '..' or no name */
    RENC_MIRROR_SAME_REL,    /* item and other would have the same mirror */
    RENC_MIRROR_SELF,        /* item's mirror is item itself */
    RENC_MIRROR_OVER_SOURCE, /* item's mirror is the source item other */
    RENC_MIRROR_IN_SOURCE,   /* item's mirror (canon) lies inside the source root */
};

struct renc_mirror_issue {
    enum renc_mirror_why why;
    size_t item, other;      /* scan indexes */
    char *canon, *root;      /* RENC_MIRROR_IN_SOURCE only */
};

struct renc_mirror_issues {
    struct renc_mirror_issue *v;
    size_t count, cap;
};

/* renc_store_mirror_check_paths: each item's rel made canonical (no empty
 * or "." components); the items whose rel has ".." or no name, else
 * (when there are none) each pair with the same rel, are added to out.
 * 0 or -RENC_E_NOMEM. */
int renc_store_mirror_check_paths(struct renc_scan *scan, struct renc_mirror_issues *out);

/* renc_store_mirror_check_not_source: adds to out each item whose mirror
 * under out_dir (canonical) would be that item, another source item (also
 * through a hard link or another mount: same device and inode), or a path
 * inside a source folder (sources: the SOURCEs, none for a manifest).
 * 0 or -RENC_E_NOMEM. */
int renc_store_mirror_check_not_source(const char *out_dir, const char *const *sources,
                                       size_t n, const struct renc_scan *scan,
                                       struct renc_mirror_issues *out);

void renc_mirror_issues_cleanup(struct renc_mirror_issues *m);

#endif
