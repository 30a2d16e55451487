/* state/sqlerr.h — SQLite result codes as this project's errors, for
 * the two databases it keeps (the run journal and the catalog).  Each passes
 * its own codes for "not our file" and "the database failed". */
#ifndef RENC_STATE_SQLERR_H
#define RENC_STATE_SQLERR_H

#include <errno.h>

#include <sqlite3.h>

#include "common/error.h"

static inline int renc_sqlite_rc(int rc, int bad_file, int failed)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_IOERR: return -EIO;
    case SQLITE_NOMEM: return -RENC_E_NOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return -RENC_E_BUSY;
    case SQLITE_NOTADB: case SQLITE_CORRUPT: return bad_file;
    case SQLITE_CANTOPEN: return -EACCES;
    case SQLITE_READONLY: return -EROFS;
    default: return failed;
    }
}

#endif
