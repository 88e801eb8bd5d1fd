/* import.h: CSV (RFC 4180) parsing from a buffer, one callback per row, and the
 * `member import` that checks every row first and then writes all of them or none. */
#ifndef ND_IMPORT_H
#define ND_IMPORT_H

#include <stddef.h>
#include "error.h"
#include "store.h"

#define ND_CSV_CELLS_MAX 256              /* cells in one row */
#define ND_CSV_CELL_MAX  (64u * 1024u)    /* bytes in one cell */

/* Called once per row with the 1-based line the row starts on and its cells: each
 * NUL-terminated (a cell may hold a NUL byte itself, so lens[i] is its true length);
 * borrowed until the callback returns.  Return 0 to go on, anything else to stop
 * (nd_csv_parse then returns that value; set err). */
typedef int (*nd_csv_row_fn)(void *ctx, size_t line, size_t ncells, const char *const *cells,
                             const size_t *lens, ld_error_t *err);

/* Parses buf[0..len): quoted cells with embedded commas, newlines and doubled quotes,
 * CRLF or LF line ends, an optional UTF-8 BOM; empty lines are skipped.  Returns 0,
 * LD_EINVAL with "line N: ..." for malformed input (an unclosed quote, text after a
 * closing quote, a quote in an unquoted cell, over the limits above), LD_ENOMEM, or
 * what `fn` returned. */
int nd_csv_parse(const char *buf, size_t len, nd_csv_row_fn fn, void *ctx, ld_error_t *err);

/* Imports members from the CSV file at `path`: a header row naming the columns
 * (name, org, gender, born, joined, phone, id-number; name and org required) in any
 * order.  Every row is checked first (org by id or name, dates, words, duplicates of
 * stored members and of other rows); then all rows are written in one store group.
 * On any error nothing is written and err says "FILE:LINE: column COL: bad value 'X'
 * (reason)" (LD_EINVAL), or names the failure (LD_EIO).  *count = rows imported. */
int nd_import_members(nd_store_t *store, const char *path, size_t *count, ld_error_t *err);

/* The same, from a file in `encoding`: NULL or "utf-8", or "gbk" (read as GB18030, of
 * which GBK is a part: what Excel saves a CSV in on Chinese Windows).  A file that is not
 * UTF-8 is refused naming the line, and that --encoding gbk may read it. */
int nd_import_members_in(nd_store_t *store, const char *path, const char *encoding,
                         size_t *count, ld_error_t *err);

#endif
