/* cmd_common.h: what the commands that write records share: flags turned into a
 * change's fields, the store's one write path, naming the record an argument means, and
 * a one-value query.  The commands are in cmd_members.c, cmd_trips.c, cmd_certificate.c
 * and cmd_support.c. */
#ifndef ND_CMD_COMMON_H
#define ND_CMD_COMMON_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "change.h"
#include "cli.h"
#include "error.h"
#include "schema.h"
#include "store.h"

/* A column of fen (`col`, already quoted, "a.\"amount\"") as yuan text with two
 * decimals, NULL as NULL: a piece of a SELECT. */
#define ND_SQL_YUAN(col) \
    "CASE WHEN " col " IS NULL THEN NULL ELSE printf('%d.%02d', " col " / 100, " col " % 100) END"

/* A flag and the schema field its value goes to; a map ends with { NULL, NULL }. */
typedef struct nd_flag_field {
    const char *flag;
    const char *field;
} nd_flag_field_t;

/* The i-th word of an enum field ("registered" for the trip status 0), or "".  Static. */
const char *nd_rec_schema_word(ld_kind_t kind, const char *field, size_t i);

/* The trip status words: 0 registered and 1 reported in mean "away"; 2.. ended. */
const char *nd_rec_trip_word(size_t i);

/* Sets every flag of `map` the user gave on c, converted by nd_field_from_text.  On an
 * add (`adding`) an empty value is left out rather than set.  0 or an LD_E* code. */
int nd_rec_set_flags(nd_cli_t *cli, nd_store_t *store, ld_change_t *c,
                     const nd_flag_field_t *map, bool adding, ld_error_t *err);

/* Sets a field the command computed itself (a default, a status word). */
int nd_rec_set_field(ld_change_t *c, const char *field, const char *value, ld_error_t *err);

/* Writes c through the store's one write path and prints the record's id.  A change
 * without a record id, or `create`, must make a new record. */
int nd_rec_write(nd_store_t *store, ld_change_t *c, bool create, ld_error_t *err);

/* Resolves the command's first positional argument as a record of `kind`. */
int nd_rec_resolve_arg(nd_cli_t *cli, nd_store_t *store, ld_kind_t kind, const char *what,
                       char id[LD_RECORD_ID_MAX + 1], ld_error_t *err);

/* What a command checks in the change it is about to write (the member's id is in its
 * "member"): 0, or an LD_E* code with err set, and nothing is written. */
typedef int (*nd_rec_check_fn)(nd_cli_t *cli, nd_store_t *store, const ld_change_t *c,
                               ld_error_t *err);

/* Adds a record of `kind` about the member named by the first argument, from `flags`;
 * `word_field` (may be NULL), when the flags leave it unset, takes its enum's first
 * word; `check` (may be NULL) runs before the write.  0 or an LD_E* code. */
int nd_rec_add_about_member(nd_cli_t *cli, ld_kind_t kind, const nd_flag_field_t *flags,
                            const char *word_field, nd_rec_check_fn check, ld_error_t *err);

/* A list's --member filter: the member's id into member and *bind, or *bind NULL when
 * the flag was not given.  0 or what nd_resolve says. */
int nd_rec_member_filter(nd_cli_t *cli, nd_store_t *store, char member[LD_RECORD_ID_MAX + 1],
                         const char **bind, ld_error_t *err);

/* One text value of a query with up to 3 bound texts (NULL ones left unbound): a
 * malloc'd copy into *out, which the caller frees (NULL if no row).  0 or LD_EIO. */
int nd_rec_query_text(sqlite3 *db, const char *sql, const char *a, const char *b,
                      const char *c, char **out, ld_error_t *err);

/* The same for the first two columns of a query with one bound text: malloc'd copies
 * into *first and *second, which the caller frees (both NULL if no row). */
int nd_rec_query_pair(sqlite3 *db, const char *sql, const char *a, char **first,
                      char **second, ld_error_t *err);

#endif
