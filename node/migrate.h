/* migrate.h: the store's schema versions (PRAGMA user_version) and the migrations
 * that bring an older store forward, each in its own transaction. */
#ifndef ND_MIGRATE_H
#define ND_MIGRATE_H

#include <sqlite3.h>
#include "error.h"

/* The store schema version this liangdi writes: the number of migrations it knows. */
#define ND_STORE_SCHEMA_VERSION 8

/* The store's user_version into *version.  0 or LD_EIO. */
int nd_migrate_version(sqlite3 *db, int *version, ld_error_t *err);

/* Runs every migration the store at `path` (for messages) has not had yet, each in
 * one transaction that also sets user_version.  A store of a newer version is refused:
 * LD_ESCHEMA, "<path>: store schema version N is newer than this liangdi (M); upgrade
 * liangdi".  0, or LD_EIO (naming the statement and SQLite's message). */
int nd_migrate(sqlite3 *db, const char *path, ld_error_t *err);

#endif
