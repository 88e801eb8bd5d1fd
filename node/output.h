/* output.h: a table of text cells and its four renderings: a terminal table aligned
 * by display width (Chinese counts two columns), CSV a spreadsheet opens correctly
 * (UTF-8 BOM, CRLF, RFC 4180 quoting), stable JSON, and a printable HTML page.
 * Ownership: the table copies every string it is given. */
#ifndef ND_OUTPUT_H
#define ND_OUTPUT_H

#include <stdio.h>
#include "error.h"

typedef enum nd_format { ND_FMT_TABLE = 0, ND_FMT_CSV, ND_FMT_JSON, ND_FMT_HTML } nd_format_t;

typedef struct nd_table nd_table_t;

/* "table|csv|json|html" -> format; LD_EINVAL otherwise. */
int nd_format_parse(const char *text, nd_format_t *out);

/* A table with a title (may be NULL) and `ncols` column keys.  Keys are ASCII
 * (JSON member names, CSV header); labels (may be NULL) are what a person reads in
 * table and HTML output.  NULL on allocation failure. */
nd_table_t *nd_table_new(const char *title, size_t ncols, const char *const *keys,
                         const char *const *labels);
void nd_table_destroy(nd_table_t **self_p);

/* Appends a row of ncols cells (NULL cell = empty), copied. 0 or LD_ENOMEM. */
int nd_table_add_row(nd_table_t *self, const char *const *cells);

/* The same without copying the cells: they stay the caller's, and must stay valid and
 * unchanged until the table is destroyed.  For rows already kept elsewhere while the
 * table is printed (a report's hundreds of thousands of findings). */
int nd_table_add_row_kept(nd_table_t *self, const char *const *cells);

size_t nd_table_rows(const nd_table_t *self);

/* Writes the table to `out` in `fmt`. 0, LD_EIO, or LD_ENOMEM (a terminal table could
 * not be laid out). */
int nd_table_print(const nd_table_t *self, nd_format_t fmt, FILE *out);

/* A name and a text, for the head of a document's JSON object. */
typedef struct nd_meta { const char *key, *value; } nd_meta_t;

/* Writes tables[0..n) (titled titles[0..n)) as one document: on a terminal, one table
 * after another; as CSV, one BOM, then each table led by a record of its title; as JSON,
 * one object {"title": title, each of meta[0..nmeta) as a member, "tables": [...]}; as
 * HTML, one page.  Each table is written as it is rendered, so a failure leaves what
 * came before it written: 0, LD_ENOMEM (a terminal table could not be laid out), LD_EIO
 * (writing failed) or LD_EINVAL (no such format, and nothing written). */
int nd_tables_print(nd_table_t *const *tables, const char *const *titles, size_t n,
                    nd_format_t fmt, const char *title, const nd_meta_t *meta, size_t nmeta,
                    FILE *out);

#endif
