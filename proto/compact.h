/* compact.h: rewrites a node's or the broker's SQLite store in place (VACUUM), with the
 * page size stores are made with now, holding the store alone while it does. */
#ifndef LD_COMPACT_H
#define LD_COMPACT_H

#include <sqlite3.h>
#include "error.h"

#define LD_COMPACT_PAGE_SIZE 16384   /* what new stores get (node/store.c says why) */

/* What a compaction changed: the bytes of the store file with its WAL, and the page
 * size, before and after. */
typedef struct ld_compact_stats {
    long long bytes_before;
    long long bytes_after;
    int       page_before;
    int       page_after;
} ld_compact_stats_t;

/* Compacts the store at `path` that `db` has open in WAL mode, with no transaction open
 * and no statement stepping: takes the store for this connection alone, leaves WAL mode
 * (the page size of a WAL store cannot change), rewrites every table and index with
 * LD_COMPACT_PAGE_SIZE pages, leaving out the pages deleted rows left free, and goes back
 * to WAL.  The rewrite runs under a rollback journal, synced: a crash or a power cut at
 * any moment leaves the store as it was or compacted, whole.  It needs free space for
 * about twice the store (the new copy and the journal), the copy in the temp folder.
 * Returns 0 with *stats filled, LD_EBUSY when another connection has the store open
 * (nothing is changed), or LD_EIO (for example a full disk: the store is as it was).
 * Afterwards db keeps the store to itself until it is closed: close it next. */
int ld_compact(sqlite3 *db, const char *path, ld_compact_stats_t *stats, ld_error_t *err);

/* Writes what stats tell into out (size bytes, NUL-terminated): "12.3 MB to 5.6 MB,
 * pages of 4096 bytes to 16384". */
void ld_compact_describe(const ld_compact_stats_t *stats, char *out, size_t size);

#endif
