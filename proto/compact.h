/* compact.h: rewrites a node's or the broker's SQLite store in place (VACUUM), with the
 * page size stores are made with now, holding the store alone while it does. */
#ifndef LD_COMPACT_H
#define LD_COMPACT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include "error.h"

/* The page size a node's or the broker's store is made with (node/store.c says why), and
 * that compacting gives an older one. */
#define LD_STORE_PAGE_SIZE 16384

/* What a compaction changed: the bytes of the store file with its WAL, and the page
 * size, before and after; and how long it took. */
typedef struct ld_compact_stats {
    long long bytes_before;
    long long bytes_after;
    int       page_before;
    int       page_after;
    double    seconds;
} ld_compact_stats_t;

/* Compacts the store at `path` that `db` has open in WAL mode, with no transaction open
 * and no statement stepping: takes the store for this connection alone, leaves WAL mode
 * (the page size of a WAL store cannot change), rewrites every table and index with
 * LD_STORE_PAGE_SIZE pages, leaving out the pages deleted rows left free, and goes back
 * to WAL.  The rewrite runs under a rollback journal, synced: a crash or a power cut at
 * any moment leaves the store as it was or compacted, whole.  It needs free space for
 * about twice the store (the new copy and the journal), the copy in the temp folder.
 * Returns 0 with *stats filled, LD_EBUSY when another connection has the store open
 * (nothing is changed), or LD_EIO (for example a full disk: the store is as it was).
 * Afterwards db keeps the store to itself until it is closed: close it next. */
int ld_compact(sqlite3 *db, const char *path, ld_compact_stats_t *stats, ld_error_t *err);

/* Writes what stats tell into out (size bytes, NUL-terminated): "12.3 MB to 5.6 MB,
 * pages of 4096 bytes to 16384, in 0.9 s". */
void ld_compact_describe(const ld_compact_stats_t *stats, char *out, size_t size);

/* How a store uses its file: the bytes of the file with its WAL, the page size, and
 * how many pages there are and how many of them are free (left by deleted rows). */
typedef struct ld_store_space {
    long long bytes;
    int       page_size;
    long long pages;
    long long free_pages;
} ld_store_space_t;

/* Reads how the store at `path` that db has open uses its file.  0 or LD_EIO. */
int ld_store_space(sqlite3 *db, const char *path, ld_store_space_t *space, ld_error_t *err);

/* Whether compacting would help: pages smaller than LD_STORE_PAGE_SIZE, or at least a
 * quarter of the file, and 1 MB, free. */
bool ld_compact_would_help(const ld_store_space_t *space);

/* Writes what space tells into out (size bytes, NUL-terminated): "245.0 MB, pages of
 * 16384 bytes, 0.2 MB of them free". */
void ld_store_space_describe(const ld_store_space_t *space, char *out, size_t size);

#endif
