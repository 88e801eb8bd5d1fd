/* db.h: the broker's SQLite connections, opened in one place with the same pragmas
 * (WAL, synchronous=FULL, busy_timeout, a modest cache) and the store's version check. */
#ifndef BK_DB_H
#define BK_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include "error.h"

#define BK_DB_SCHEMA_VERSION 4   /* PRAGMA user_version of a broker store */

/* Opens the store at `path`.  With `create`, a missing file is made and stamped with
 * BK_DB_SCHEMA_VERSION; without, a missing file is LD_ENOTFOUND ("run init first").
 * A store of an older version is brought forward, each step in one transaction; one
 * of a newer version is LD_ESCHEMA.  Returns the connection (caller closes with
 * bk_db_close) or NULL with err set. */
sqlite3 *bk_db_open(const char *path, bool create, ld_error_t *err);

/* Closes a connection opened by bk_db_open and NULLs *db_p; safe on NULL and twice. */
void bk_db_close(sqlite3 **db_p);

/* Runs SQL that binds nothing and returns no rows (schema, BEGIN, COMMIT).  `sql`
 * comes from the compiled-in program, never from input.  0 or LD_EIO. */
int bk_db_exec(sqlite3 *db, const char *sql, ld_error_t *err);

/* Prepares `sql` (compiled-in) into *stmt.  0 or LD_EIO with SQLite's message. */
int bk_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt, ld_error_t *err);

/* Sets err to LD_EIO naming `what` and the connection's last SQLite message. */
int bk_db_fail(sqlite3 *db, const char *what, ld_error_t *err);

/* Rolls back an open transaction, if any; used on error paths. */
void bk_db_rollback(sqlite3 *db);

/* PRAGMA data_version of this connection: it changes when another connection commits. */
int bk_db_data_version(sqlite3 *db, long long *version, ld_error_t *err);

#endif
