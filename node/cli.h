/* cli.h: the `liangdi` command line: argv -> one command, and what every command
 * shares (flags, positional arguments, the config, the store opened on first use). */
#ifndef ND_CLI_H
#define ND_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "error.h"
#include "output.h"
#include "schema.h"
#include "store.h"

/* Exit codes: 0 success, 1 a runtime failure, 2 a usage or validation error. */
enum { ND_EXIT_OK = 0, ND_EXIT_RUNTIME = 1, ND_EXIT_USAGE = 2 };

typedef struct nd_cli nd_cli_t;

/* Runs one command line; returns the process exit code. */
int nd_cli_main(int argc, char **argv);

/* A flag's value ("--name 张三" -> "张三"), NULL if not given.  Borrowed. */
const char *nd_cli_flag(const nd_cli_t *cli, const char *name);
/* True if the flag was given (for flags without a value: --mobile). */
bool nd_cli_has(const nd_cli_t *cli, const char *name);
/* The i-th positional argument after the command words, NULL past the end.  Borrowed. */
const char *nd_cli_arg(const nd_cli_t *cli, size_t i);
/* The command's words ("member add").  Borrowed. */
const char *nd_cli_words(const nd_cli_t *cli);
nd_format_t nd_cli_format(const nd_cli_t *cli);
/* The store's path: --db, $LIANGDI_DB, the config's db, or ./liangdi.db.  Borrowed. */
const char *nd_cli_db_path(const nd_cli_t *cli);
/* The config file read (an empty one when there is none).  Borrowed. */
const nd_config_t *nd_cli_config(const nd_cli_t *cli);
/* The keypair file: the config's keyfile, else "<db>.key".  Borrowed. */
const char *nd_cli_keyfile(const nd_cli_t *cli);

/* Runs one line of a batch (argv[0] is a placeholder, as in main's) on `batch`'s store,
 * config and paths, inside the group the batch holds open: only the commands that write
 * records, and none of the flags the batch itself takes (--db, --config, --help).  The
 * command's words go to words[0..wordsz) as soon as they are known ("" before).  0, or
 * the command's LD_E* code with err set. */
int nd_cli_run_line(nd_cli_t *batch, int argc, char **argv, char *words, size_t wordsz,
                    ld_error_t *err);

/* Opens the existing store on first use (LD_EIO naming the path and suggesting
 * `liangdi init` when there is none).  The store stays the cli's. */
nd_store_t *nd_cli_store(nd_cli_t *cli, ld_error_t *err);

/* LD_EINVAL with "WHAT: bad value 'VALUE' (WHY)", VALUE quoted with ld_quote. */
int nd_bad_value(ld_error_t *err, const char *what, const char *value, const char *why);

/* nd_bad_value for an org, named as VALUE, that node `node` keeps, given for a member's
 * home branch here: a member is registered on the node that keeps his branch. */
int nd_bad_org_elsewhere(ld_error_t *err, const char *what, const char *value,
                         const char *node);

/* Checks `value` given for `what` (a flag, "--born") against a field of the schema and
 * returns its stored form in *out (malloc'd, caller frees): dates, months, enum words,
 * money (yuan -> fen), years, node ids, text length; references are resolved by id or
 * name.  LD_EINVAL / LD_ENOTFOUND naming `what` and the value. */
int nd_field_from_text(nd_store_t *store, ld_kind_t kind, const char *field, const char *what,
                       const char *value, char **out, ld_error_t *err);

/* Runs a query into a new table (*out, caller destroys).  Every column is read as
 * text (NULL -> empty); binds[i] (NULL -> SQL NULL) is bound to ?(i+1).  `readable`
 * (for a terminal table) shows an enum column's words in Chinese ("已报到" for
 * reported-in); CSV and JSON keep the words.  0 or LD_E*. */
int nd_cli_query(sqlite3 *db, const char *title, const char *sql, const char *const *binds,
                 size_t nbinds, size_t ncols, const char *const *keys,
                 const char *const *labels, bool readable, nd_table_t **out, ld_error_t *err);

/* nd_cli_query on the cli's store, printed to stdout in the cli's format. */
int nd_cli_list(nd_cli_t *cli, const char *title, const char *sql, const char *const *binds,
                size_t nbinds, size_t ncols, const char *const *keys,
                const char *const *labels, ld_error_t *err);

/* The commands (cmd_members.c, cmd_trips.c, cmd_certificate.c, cmd_support.c, cmd_delete.c,
 * cmd_admin.c):
 * 0 or an LD_E* code with err set. */
int nd_cmd_org_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_org_edit(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_org_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_member_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_member_edit(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_member_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_member_show(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_member_import(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_trip_start(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_trip_report_in(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_trip_end(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_trip_edit(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_trip_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_agreement_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_agreement_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_contact_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_contact_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_visit_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_visit_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_activity_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_activity_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_assess(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_approval_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_care_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_care_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_care_close(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_approval_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_honour_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_honour_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_support_add(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_support_list(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_delete(nd_cli_t *cli, ld_error_t *err);            /* cmd_delete.c */

int nd_cmd_init(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_key(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_key_new(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_broker_set(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_status(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_sync(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_daemon(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_backup(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_compact(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_export(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_digest(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_history(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_conflicts(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_report(nd_cli_t *cli, ld_error_t *err);
int nd_cmd_batch(nd_cli_t *cli, ld_error_t *err);             /* cmd_batch.c */

#endif
