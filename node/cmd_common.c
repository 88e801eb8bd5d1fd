/* cmd_common.c: what the commands that write records share (cmd_common.h). */
#include "cmd_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

/* The i-th word of an enum field ("registered" for the trip status 0). */
const char *nd_rec_schema_word(ld_kind_t kind, const char *field, size_t i)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    int idx = def ? ld_schema_field_index(def, field) : -1;
    if (idx < 0 || !def->fields[idx].words)
        return "";
    for (size_t k = 0; k <= i; k++)
        if (!def->fields[idx].words[k])
            return "";
    return def->fields[idx].words[i];
}

/* Sets every flag of `map` the user gave on c, converted by nd_field_from_text.  On
 * an add (`adding`) an empty value is left out rather than set. */
int nd_rec_set_flags(nd_cli_t *cli, nd_store_t *store, ld_change_t *c, const nd_flag_field_t *map,
                     bool adding, ld_error_t *err)
{
    for (size_t i = 0; map[i].flag; i++) {
        const char *value = nd_cli_flag(cli, map[i].flag);
        char what[48];
        char *stored = NULL;
        if (!value)
            continue;
        snprintf(what, sizeof what, "--%s", map[i].flag);
        int rc = nd_field_from_text(store, c->kind, map[i].field, what, value, &stored, err);
        if (rc == 0 && !(adding && *stored == '\0'))
            rc = ld_change_set(c, map[i].field, stored, err);
        free(stored);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets a field the command computed itself (a default, a status word). */
int nd_rec_set_field(ld_change_t *c, const char *field, const char *value, ld_error_t *err)
{
    return ld_change_set(c, field, value, err);
}

/* Writes c through the store's one write path and prints the record's id.  A change
 * without a record id, or `create`, must make a new record. */
int nd_rec_write(nd_store_t *store, ld_change_t *c, bool create, ld_error_t *err)
{
    int rc = create || c->record_id[0] == '\0' ? nd_store_create(store, c, err)
                                                : nd_store_write(store, c, err);
    if (rc == 0)
        printf("%s\n", c->record_id);
    return rc;
}

/* Resolves the command's first positional argument as a record of `kind`. */
int nd_rec_resolve_arg(nd_cli_t *cli, nd_store_t *store, ld_kind_t kind, const char *what,
                       char id[LD_RECORD_ID_MAX + 1], ld_error_t *err)
{
    return nd_resolve(store, kind, nd_cli_arg(cli, 0), what, id, err);
}

/* The first `n` text columns of the first row of a query with up to 3 bound texts, each
 * a malloc'd copy into out[i] (all NULL if no row).  0 or LD_EIO. */
static int query_texts(sqlite3 *db, const char *sql, const char *a, const char *b,
                       const char *c, char **out, int n, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    const char *binds[3] = { a, b, c };
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++)
        if (binds[i])
            rc = sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            rc = SQLITE_DONE;
            for (int i = 0; i < n && rc == SQLITE_DONE; i++) {
                const unsigned char *v = sqlite3_column_text(st, i);
                out[i] = strdup(v ? (const char *) v : "");
                rc = out[i] ? SQLITE_DONE : SQLITE_NOMEM;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        for (int i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
        return LD_EIO;
    }
    sqlite3_finalize(st);
    return 0;
}

int nd_rec_query_text(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
                      char **out, ld_error_t *err)
{
    return query_texts(db, sql, a, b, c, out, 1, err);
}

int nd_rec_query_pair(sqlite3 *db, const char *sql, const char *a, char **first,
                      char **second, ld_error_t *err)
{
    char *out[2];
    int rc = query_texts(db, sql, a, NULL, NULL, out, 2, err);
    *first = out[0];
    *second = out[1];
    return rc;
}

/* The trip status words: 0 registered and 1 reported in mean "away"; 2.. ended. */
const char *nd_rec_trip_word(size_t i)
{
    return nd_rec_schema_word(LD_KIND_TRIP, "status", i);
}

int nd_rec_member_filter(nd_cli_t *cli, nd_store_t *store, char member[LD_RECORD_ID_MAX + 1],
                         const char **bind, ld_error_t *err)
{
    const char *flag = nd_cli_flag(cli, "member");
    *bind = NULL;
    if (!flag)
        return 0;
    int rc = nd_resolve(store, LD_KIND_MEMBER, flag, "--member", member, err);
    if (rc == 0)
        *bind = member;
    return rc;
}

int nd_rec_add_about_member(nd_cli_t *cli, ld_kind_t kind, const nd_flag_field_t *flags,
                            const char *word_field, nd_rec_check_fn check, ld_error_t *err)
{
    char member[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = kind;
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "member", member, err);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && word_field && !ld_change_get(&c, word_field))
        rc = nd_rec_set_field(&c, word_field, nd_rec_schema_word(kind, word_field, 0), err);
    if (rc == 0 && check)
        rc = check(cli, store, &c, err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}
