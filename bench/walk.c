/* bench/walk.c — see walk.h. */
#include "bench/walk.h"

#include <dirent.h>
#include <stdio.h>

int bench_walk(const char *dir, void (*fn)(const char *path, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) {
            if (bench_walk(path, fn, arg))
                rc = -1;
        } else if (e->d_type == DT_REG) {
            fn(path, arg);
        }
    }
    closedir(d);
    return rc;
}
