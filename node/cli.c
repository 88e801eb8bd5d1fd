/* cli.c: the `liangdi` command line: splits argv into command words, flags and
 * arguments, checks them against the command table, and runs one command. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "change.h"
#include "collate.h"
#include "log.h"
#include "resolve.h"
#include "text.h"

#ifndef LIANGDI_VERSION
#define LIANGDI_VERSION "0.1.0"
#endif

#define CLI_FLAGS_MAX 64
#define CLI_ARGS_MAX  16

/* Which --format values a command takes. */
enum {
    FMT_NONE  = 0,
    FMT_LIST  = (1u << ND_FMT_TABLE) | (1u << ND_FMT_CSV) | (1u << ND_FMT_JSON),
    FMT_ALL   = FMT_LIST | (1u << ND_FMT_HTML),
};

typedef struct cli_command {
    const char *words;         /* "member add" */
    int       (*run)(nd_cli_t *cli, ld_error_t *err);
    const char *args;          /* positional arguments, space-separated: "MEMBER" */
    const char *flags;         /* flags that take a value, space-separated */
    const char *bools;         /* flags without a value */
    const char *required;      /* flags that must be given */
    unsigned    formats;
    const char *usage;         /* the synopsis after the command words */
    const char *summary;
} cli_command_t;

static const cli_command_t cli_commands[] = {
    { "init", nd_cmd_init, "", "node name broker broker-key", "", "node name", FMT_NONE,
      "--node ID --name NAME [--broker ENDPOINT --broker-key KEY]",
      "create this node's store (and, with a broker, its CURVE keypair)" },
    { "org add", nd_cmd_org_add, "ID", "name kind parent node", "", "name kind", FMT_NONE,
      "ID --name NAME --kind township|village|community|mobile [--parent ORG] [--node NODE]",
      "add an organisation" },
    { "org edit", nd_cmd_org_edit, "ORG", "name kind parent", "", "", FMT_NONE,
      "ORG [--name NAME] [--kind K] [--parent ORG]",
      "rename an organisation or change its kind or parent (--parent '' clears it)" },
    { "org list", nd_cmd_org_list, "", "", "", "", FMT_LIST, "", "list organisations" },
    { "member add", nd_cmd_member_add, "", "name org gender born joined phone id-number", "",
      "name org", FMT_NONE,
      "--name NAME --org ORG [--gender female|male] [--born DATE] [--joined DATE] [--phone P]"
      " [--id-number X]",
      "add a party member" },
    { "member edit", nd_cmd_member_edit, "MEMBER", "name org gender born joined phone id-number",
      "", "", FMT_NONE,
      "MEMBER [--name NAME] [--org ORG] [--gender female|male] [--born DATE] [--joined DATE]"
      " [--phone P] [--id-number X]",
      "change a member's details (an empty value clears an optional one)" },
    { "member list", nd_cmd_member_list, "", "org", "mobile", "", FMT_LIST, "[--org ORG] [--mobile]",
      "list members (--mobile: those away on a trip)" },
    { "member show", nd_cmd_member_show, "MEMBER", "", "", "", FMT_LIST, "MEMBER",
      "a member with trips, activities, assessments, approvals, care cases, honours and help" },
    { "member import", nd_cmd_member_import, "FILE", "encoding", "", "", FMT_NONE,
      "FILE.csv [--encoding utf-8|gbk]",
      "import members from CSV (name,org,gender,born,joined,phone,id-number): all rows or none" },
    { "trip start", nd_cmd_trip_start, "MEMBER", "to date until employer address phone reason",
      "", "to date", FMT_NONE,
      "MEMBER --to ORG --date DATE [--until DATE] [--employer E] [--address A] [--phone P] "
      "[--reason R]",
      "register a member's outflow to an inflow branch (--until: expected away until)" },
    { "trip report-in", nd_cmd_trip_report_in, "MEMBER", "date", "", "date", FMT_NONE,
      "MEMBER --date DATE", "the member reported in at the inflow branch" },
    { "trip end", nd_cmd_trip_end, "MEMBER", "date why", "", "date why", FMT_NONE,
      "MEMBER --date DATE --why returned|transferred|lost-contact", "end the member's trip" },
    { "trip edit", nd_cmd_trip_edit, "MEMBER", "until employer address phone reason", "", "",
      FMT_NONE, "MEMBER [--until DATE] [--employer E] [--address A] [--phone P] [--reason R]",
      "change what the registration of the member's trip under way says" },
    { "trip list", nd_cmd_trip_list, "", "member", "", "", FMT_LIST, "[--member MEMBER]",
      "list trips" },
    { "agreement add", nd_cmd_agreement_add, "", "outflow inflow signed until terms", "",
      "outflow inflow signed", FMT_NONE,
      "--outflow ORG --inflow ORG --signed DATE [--until DATE] [--terms TEXT]",
      "record a co-management agreement" },
    { "agreement list", nd_cmd_agreement_list, "", "", "", "", FMT_LIST, "", "list agreements" },
    { "contact add", nd_cmd_contact_add, "AGREEMENT", "date channel note", "", "date", FMT_NONE,
      "AGREEMENT --date DATE [--channel phone|video|hotline|letter] [--note TEXT]",
      "record the semiannual contact under an agreement (its id, or OUTFLOW/INFLOW)" },
    { "contact list", nd_cmd_contact_list, "", "", "", "", FMT_LIST, "", "list contacts" },
    { "visit add", nd_cmd_visit_add, "AGREEMENT", "date host note", "", "date host", FMT_NONE,
      "AGREEMENT --date DATE --host ORG [--note TEXT]",
      "record the annual visit under an agreement (its id, or OUTFLOW/INFLOW)" },
    { "visit list", nd_cmd_visit_list, "", "", "", "", FMT_LIST, "", "list visits" },
    { "activity add", nd_cmd_activity_add, "MEMBER", "date kind month amount note", "",
      "date kind", FMT_NONE,
      "MEMBER --date DATE --kind meeting|committee|group|theme-day|lecture|life-meeting|"
      "appraisal|dues|study|volunteer|report|review|symposium [--month YYYY-MM] [--amount YUAN]"
      " [--note TEXT]",
      "record a line of the activity certificate (dues need --month and --amount)" },
    { "activity list", nd_cmd_activity_list, "", "member", "", "", FMT_LIST, "[--member MEMBER]",
      "list activity records" },
    { "assess", nd_cmd_assess, "MEMBER", "year side grade note", "", "year side grade", FMT_NONE,
      "MEMBER --year YYYY --side outflow|inflow"
      " --grade excellent|competent|basically-competent|incompetent [--note TEXT]",
      "record one side's yearly assessment of a member" },
    { "approval add", nd_cmd_approval_add, "MEMBER", "date to decision note", "", "date", FMT_NONE,
      "MEMBER --date DATE [--to ORG] [--decision pending|approved|refused] [--note TEXT]",
      "record an outflow approval" },
    { "approval list", nd_cmd_approval_list, "", "member", "", "", FMT_LIST,
      "[--member MEMBER]", "list outflow approvals" },
    { "care add", nd_cmd_care_add, "MEMBER", "kind date status note", "", "kind date", FMT_NONE,
      "MEMBER --kind elderly|children|land-transfer|forest-rights --date DATE"
      " [--status open|closed] [--note TEXT]",
      "record a home-care case for a member's family" },
    { "care list", nd_cmd_care_list, "", "member", "open", "", FMT_LIST,
      "[--member MEMBER] [--open]", "list home-care cases (--open: those not closed)" },
    { "care close", nd_cmd_care_close, "CASE", "note", "", "", FMT_NONE, "CASE [--note TEXT]",
      "close a home-care case" },
    { "honour add", nd_cmd_honour_add, "MEMBER", "year kind date note", "", "year kind",
      FMT_NONE, "MEMBER --year YYYY --kind prosperous|law-abiding [--date DATE] [--note TEXT]",
      "record a member chosen in the yearly selection (勤劳致富能手, 遵纪守法党员)" },
    { "honour list", nd_cmd_honour_list, "", "member year", "", "", FMT_LIST,
      "[--member MEMBER] [--year YYYY]", "list honoured members, by year" },
    { "support add", nd_cmd_support_add, "MEMBER", "kind date helper amount note", "",
      "kind date", FMT_NONE,
      "MEMBER --kind pairing|fund|training|employment --date DATE [--helper NAME]"
      " [--amount YUAN] [--note TEXT]",
      "record help for a member in difficulty (a pairing needs --helper, a grant --amount)" },
    { "support list", nd_cmd_support_list, "", "member kind", "", "", FMT_LIST,
      "[--member MEMBER] [--kind K]", "list the help given to members in difficulty" },
    { "delete", nd_cmd_delete, "RECORD", "", "", "", FMT_NONE, "RECORD",
      "delete an entry made by mistake, on every node that holds it" },
    { "batch", nd_cmd_batch, "FILE", "", "check", "", FMT_NONE, "FILE|- [--check]",
      "run a file of record commands, one per line, in one transaction: all lines or none" },
    { "export", nd_cmd_export, "", "", "", "", FMT_NONE, "",
      "every record this node holds, as one JSON document" },
    { "digest", nd_cmd_digest, "", "with", "records", "with", FMT_LIST, "--with NODE [--records]",
      "digests of the records shared with another node, to compare with its own" },
    { "report", nd_cmd_report, "", "as-of", "", "", FMT_ALL,
      "[--as-of DATE] [--format table|csv|json|html]", "the compliance report" },
    { "history", nd_cmd_history, "RECORD", "", "", "", FMT_LIST, "RECORD",
      "every change of a record: when, which node, which fields" },
    { "conflicts", nd_cmd_conflicts, "", "", "", "", FMT_LIST, "",
      "the conflict log, newest first" },
    { "status", nd_cmd_status, "", "", "", "", FMT_LIST, "",
      "this node, its records, outbox, cursor and broker" },
    { "key", nd_cmd_key, "", "", "", "", FMT_NONE, "", "print this node's public key" },
    { "key new", nd_cmd_key_new, "", "", "", "", FMT_NONE, "",
      "replace this node's keypair (then: liangdi-broker node rekey on the broker)" },
    { "broker set", nd_cmd_broker_set, "ENDPOINT", "key", "", "key", FMT_NONE,
      "ENDPOINT --key KEY", "set the broker this node syncs with" },
    { "sync", nd_cmd_sync, "", "timeout", "", "", FMT_NONE, "[--timeout SECONDS]",
      "one round with the broker: push everything, fetch everything" },
    { "daemon", nd_cmd_daemon, "", "interval", "", "", FMT_NONE, "[--interval DURATION]",
      "stay connected and sync continuously (DURATION: 30s, 5m, 1h)" },
    { "backup", nd_cmd_backup, "FILE", "", "", "", FMT_NONE, "FILE",
      "write a consistent copy of the store, safe while the daemon runs" },
    { "compact", nd_cmd_compact, "", "", "", "", FMT_NONE, "",
      "rewrite the store smaller, with 16 KiB pages (stop the daemon first)" },
};

/* The commands a batch may hold: those that write records through the store's groups.
 * Not member import (a group of its own), nor the node's own business (init, keys, the
 * broker, sync, backup) nor the lists and reports. */
static const char *const cli_batch_commands[] = {
    "org add", "org edit", "member add", "member edit", "trip start", "trip report-in",
    "trip end", "trip edit", "agreement add", "contact add", "visit add", "activity add",
    "assess", "approval add", "care add", "care close", "honour add", "support add",
    "delete",
};

#define CLI_NCOMMANDS (sizeof cli_commands / sizeof cli_commands[0])

struct nd_cli {
    const cli_command_t *cmd;
    char        words[64];
    size_t      nflags;
    const char *flag_names[CLI_FLAGS_MAX];   /* borrowed from argv (without "--") */
    size_t      flag_lens[CLI_FLAGS_MAX];
    const char *flag_values[CLI_FLAGS_MAX];  /* borrowed from argv; NULL for a bool */
    size_t      nargs;
    const char *args[CLI_ARGS_MAX];
    nd_format_t format;
    char       *db_path;
    char       *keyfile;
    nd_config_t *config;
    nd_store_t  *store;
};

/* ---------------------------------------------------------------- helpers ---- */

int nd_bad_value(ld_error_t *err, const char *what, const char *value, const char *why)
{
    char quoted[512];
    ld_quote(value, LD_QUOTE_MAX, quoted, sizeof quoted);
    return ld_error_set(err, LD_EINVAL, "%s: bad value '%s' (%s)", what, quoted, why);
}

int nd_bad_org_elsewhere(ld_error_t *err, const char *what, const char *value,
                         const char *node)
{
    char why[160];
    snprintf(why, sizeof why, "kept by node %s: a member is registered on the node that "
             "keeps his branch", node);
    return nd_bad_value(err, what, value, why);
}

static bool word_in(const char *list, const char *word, size_t len)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t) (end - p) : strlen(p);
        if (n > 0 && n == len && memcmp(p, word, len) == 0)
            return true;
        p += n;
    }
    return false;
}

static size_t count_words(const char *list)
{
    size_t n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* The i-th word of a space-separated list into out. */
static void nth_word(const char *list, size_t i, char *out, size_t outsz)
{
    const char *p = list;
    size_t n = 0;
    out[0] = '\0';
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end == p)
            break;
        if (n++ == i) {
            size_t len = (size_t) (end - p) < outsz - 1 ? (size_t) (end - p) : outsz - 1;
            memcpy(out, p, len);
            out[len] = '\0';
            return;
        }
        p = end;
    }
}

static const char *format_words(unsigned formats)
{
    return formats == FMT_ALL ? "table|csv|json|html" : "table|csv|json";
}

/* Words joined with '|' for an enum field, into out. */
static void enum_words(const ld_field_def_t *def, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; def->words && def->words[i]; i++) {
        int w = snprintf(out + o, outsz - o, "%s%s", i ? "|" : "", def->words[i]);
        if (w < 0 || (size_t) w >= outsz - o)
            break;
        o += (size_t) w;
    }
}

static bool looks_like_date(const char *s)
{
    if (strlen(s) != 10)
        return false;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return false;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* The length of the white space character that the n bytes at p begin with (ASCII, or
 * the ideographic space U+3000 a Chinese keyboard types), or 0. */
static size_t space_len(const char *p, size_t n)
{
    if (n >= 1 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        return 1;
    return n >= 3 && memcmp(p, "\xe3\x80\x80", 3) == 0 ? 3 : 0;
}

/* A copy of text without the white space around it (caller frees), or NULL. */
static char *trimmed(const char *text)
{
    size_t n = strlen(text), len;
    while ((len = space_len(text, n)) > 0) {
        text += len;
        n -= len;
    }
    for (;;) {
        if (n >= 1 && space_len(text + n - 1, 1) == 1)
            n--;
        else if (n >= 3 && space_len(text + n - 3, 3) == 3)
            n -= 3;
        else
            break;
    }
    return strndup(text, n);
}

static int field_from_text(nd_store_t *store, ld_kind_t kind, const char *field,
                           const char *what, const char *value, char **out, ld_error_t *err);

int nd_field_from_text(nd_store_t *store, ld_kind_t kind, const char *field, const char *what,
                       const char *value, char **out, ld_error_t *err)
{
    /* a name is looked up as typed: " 李四 " would be a second 李四 */
    if (strcmp(field, "name") != 0 || !ld_utf8_valid(value, strlen(value)))
        return field_from_text(store, kind, field, what, value, out, err);
    char *name = trimmed(value);
    if (!name)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    int rc = *name || !*value ? field_from_text(store, kind, field, what, name, out, err)
                              : nd_bad_value(err, what, value, "a name is needed, not only spaces");
    free(name);
    return rc;
}

static int field_from_text(nd_store_t *store, ld_kind_t kind, const char *field,
                           const char *what, const char *value, char **out, ld_error_t *err)
{
    const ld_kind_def_t *kdef = ld_schema_kind(kind);
    int idx = kdef ? ld_schema_field_index(kdef, field) : -1;
    char buf[LD_RECORD_ID_MAX + 32];
    char why[256];
    *out = NULL;
    if (idx < 0)
        return ld_error_set(err, LD_EINVAL, "%s: no field '%s' in the schema", what, field);
    const ld_field_def_t *def = &kdef->fields[idx];
    if (!ld_utf8_valid(value, strlen(value)))
        return nd_bad_value(err, what, value, "not valid UTF-8 text");
    if (*value == '\0') {
        if (def->required)
            return nd_bad_value(err, what, value, "a value is needed");
        *out = strdup("");
        return *out ? 0 : ld_error_set(err, LD_ENOMEM, "out of memory");
    }
    const char *stored = value;
    switch (def->type) {
    case LD_T_TEXT:
        if (def->max_len && strlen(value) > def->max_len) {
            snprintf(why, sizeof why, "longer than %zu bytes", def->max_len);
            return nd_bad_value(err, what, value, why);
        }
        break;
    case LD_T_DATE: {
        int32_t days, today = ld_date_cst(time(NULL));
        if (!ld_date_parse(value, &days)) {
            int year = looks_like_date(value) ? atoi(value) : 0;
            return nd_bad_value(err, what, value, !looks_like_date(value)
                                ? "expected a date YYYY-MM-DD"
                                : year < LD_YEAR_MIN || year > LD_YEAR_MAX
                                ? "years run from 1900 to 2199"
                                : "no such date");
        }
        /* what happened is recorded when it has happened; only an agreement's end and a
         * departure registered beforehand may lie ahead */
        if (days > today && strcmp(def->name, "until") != 0 &&
            !(kind == LD_KIND_TRIP && strcmp(def->name, "started") == 0)) {
            char day[11];
            ld_date_format(today, day);
            snprintf(why, sizeof why, "after today, %s (China Standard Time)", day);
            return nd_bad_value(err, what, value, why);
        }
        break;
    }
    case LD_T_MONTH: {
        int32_t months;
        if (!ld_month_parse(value, &months))
            return nd_bad_value(err, what, value, "expected a month YYYY-MM");
        break;
    }
    case LD_T_ENUM: {
        /* the word, or the Chinese a table shows for it ("女" for female) */
        int word = ld_schema_word_index(def, value);
        int label = word < 0 ? ld_schema_label_index(def, value) : -1;
        if (label >= 0) {
            stored = def->words[label];
        } else if (word < 0) {
            char words[200];
            enum_words(def, words, sizeof words);
            snprintf(why, sizeof why, "expected %s", words);
            return nd_bad_value(err, what, value, why);
        }
        break;
    }
    case LD_T_REF: {
        int rc = nd_resolve(store, def->ref, value, what, buf, err);
        if (rc != 0)
            return rc;
        stored = buf;
        break;
    }
    case LD_T_NODE:
        if (!ld_id_valid(value))
            return nd_bad_value(err, what, value,
                                "expected a node id: a-z, 0-9, '.', '_', '-', up to 64");
        break;
    case LD_T_MONEY: {
        int64_t fen;
        if (value[0] == '-')
            return nd_bad_value(err, what, value, "must not be negative");
        if (!ld_money_parse(value, &fen))
            return nd_bad_value(err, what, value,
                                "expected yuan with at most 2 decimals, e.g. 12.50");
        snprintf(buf, sizeof buf, "%" PRId64, fen);
        stored = buf;
        break;
    }
    case LD_T_YEAR: {
        bool digits = strlen(value) == 4;
        for (const char *p = value; digits && *p; p++)
            digits = *p >= '0' && *p <= '9';
        if (!digits || atoi(value) < LD_YEAR_MIN || atoi(value) > LD_YEAR_MAX)
            return nd_bad_value(err, what, value, "expected a year 1900..2199");
        break;
    }
    }
    ld_error_t verr;
    ld_error_clear(&verr);
    if (ld_field_validate(def, stored, &verr) != 0)
        return nd_bad_value(err, what, value, verr.msg[0] ? verr.msg : "not valid here");
    *out = strdup(stored);
    return *out ? 0 : ld_error_set(err, LD_ENOMEM, "out of memory");
}

/* The enum field a list column shows, when a person reads it in Chinese; NULL if none.
 * A member list calls the status of the trip under way "trip_status". */
static const char *enum_column(const char *key)
{
    const char *field = strcmp(key, "trip_status") == 0 ? "status" : key;
    return ld_schema_labelled(field) ? field : NULL;
}

int nd_cli_query(sqlite3 *db, const char *title, const char *sql, const char *const *binds,
                 size_t nbinds, size_t ncols, const char *const *keys,
                 const char *const *labels, bool readable, nd_table_t **out, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    nd_table_t *table = NULL;
    const char *cells[32];
    int rc;
    *out = NULL;
    if (ncols > 32)
        return ld_error_set(err, LD_EINVAL, "too many columns");
    table = nd_table_new(title, ncols, keys, labels);
    if (!table)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto db_fail;
    for (size_t i = 0; i < nbinds; i++) {
        rc = binds[i] ? sqlite3_bind_text(st, (int) i + 1, binds[i], -1, SQLITE_STATIC)
                      : sqlite3_bind_null(st, (int) i + 1);
        if (rc != SQLITE_OK)
            goto db_fail;
    }
    const char *fields[32];        /* per column: the enum field it shows, or NULL */
    for (size_t i = 0; i < ncols; i++)
        fields[i] = readable ? enum_column(keys[i]) : NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (size_t i = 0; i < ncols; i++) {
            cells[i] = (const char *) sqlite3_column_text(st, (int) i);
            const char *label = fields[i] && cells[i] ? ld_schema_label(fields[i], cells[i])
                                                       : NULL;
            if (label)
                cells[i] = label;
        }
        if (nd_table_add_row(table, cells) != 0) {
            rc = ld_error_set(err, LD_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        goto db_fail;
    *out = table;
    table = NULL;
    rc = 0;
    goto out;
db_fail:
    rc = ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    nd_table_destroy(&table);
    return rc;
}

int nd_cli_list(nd_cli_t *cli, const char *title, const char *sql, const char *const *binds,
                size_t nbinds, size_t ncols, const char *const *keys,
                const char *const *labels, ld_error_t *err)
{
    nd_table_t *table = NULL;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_cli_query(nd_store_db(store), title, sql, binds, nbinds, ncols, keys, labels,
                          cli->format == ND_FMT_TABLE, &table, err);
    if (rc == 0) {
        rc = nd_table_print(table, cli->format, stdout);
        if (rc != 0)
            ld_error_set(err, rc, "cannot write the list: %s", strerror(errno));
    }
    nd_table_destroy(&table);
    return rc;
}

/* ------------------------------------------------------------ accessors ---- */

const char *nd_cli_flag(const nd_cli_t *cli, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < cli->nflags; i++)
        if (cli->flag_lens[i] == len && memcmp(cli->flag_names[i], name, len) == 0)
            return cli->flag_values[i];
    return NULL;
}

bool nd_cli_has(const nd_cli_t *cli, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < cli->nflags; i++)
        if (cli->flag_lens[i] == len && memcmp(cli->flag_names[i], name, len) == 0)
            return true;
    return false;
}

const char *nd_cli_arg(const nd_cli_t *cli, size_t i)
{
    return i < cli->nargs ? cli->args[i] : NULL;
}

const char *nd_cli_words(const nd_cli_t *cli) { return cli->words; }
nd_format_t nd_cli_format(const nd_cli_t *cli) { return cli->format; }
const char *nd_cli_db_path(const nd_cli_t *cli) { return cli->db_path; }
const nd_config_t *nd_cli_config(const nd_cli_t *cli) { return cli->config; }
const char *nd_cli_keyfile(const nd_cli_t *cli) { return cli->keyfile; }

nd_store_t *nd_cli_store(nd_cli_t *cli, ld_error_t *err)
{
    if (cli->store)
        return cli->store;
    if (access(cli->db_path, F_OK) != 0) {
        ld_error_set(err, LD_EIO, "no store at '%s' (create one with 'liangdi init --node ID"
                     " --name NAME', or name it with --db)", cli->db_path);
        return NULL;
    }
    cli->store = nd_store_open(cli->db_path, false, err);
    nd_name_order_t order;
    if (cli->store && nd_config_name_order(cli->config, &order))
        nd_collate_set_order(nd_store_collate(cli->store), order);
    return cli->store;
}

/* ------------------------------------------------------------ parsing ---- */

static void print_usage(FILE *out, const cli_command_t *cmd)
{
    fprintf(out, "usage: liangdi %s%s%s\n  %s\n", cmd->words, *cmd->usage ? " " : "",
            cmd->usage, cmd->summary);
    fprintf(out, "options: --db PATH, --config FILE%s%s%s\n",
            cmd->formats ? ", --format " : "", cmd->formats ? format_words(cmd->formats) : "",
            ", --help");
}

static void print_help(FILE *out, const char *group)
{
    size_t glen = group ? strlen(group) : 0;
    fprintf(out, "liangdi: the records of mobile party members, kept in step between their"
                 " home township and their branches\n\n");
    fprintf(out, "usage: liangdi COMMAND [ARGUMENTS] [--db PATH] [--config FILE]"
                 " [--format table|csv|json]\n\ncommands:\n");
    for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (group && !(strncmp(c->words, group, glen) == 0 && c->words[glen] == ' '))
            continue;
        fprintf(out, "  %-16s %s\n", c->words, c->summary);
    }
    fprintf(out, "\n'liangdi COMMAND --help' shows a command's arguments.\n"
                 "--db defaults to $LIANGDI_DB, then the config's db, then ./liangdi.db;"
                 " --config to $LIANGDI_CONFIG, then " ND_CONFIG_DEFAULT_PATH ".\n"
                 "Exit status: 0 done, 1 a runtime failure, 2 a usage or validation error.\n");
}

/* True for --help, --version and every command's switches (its `bools`). */
static bool flag_takes_no_value(const char *name, size_t len)
{
    if (word_in("help version", name, len))
        return true;
    for (size_t i = 0; i < CLI_NCOMMANDS; i++)
        if (word_in(cli_commands[i].bools, name, len))
            return true;
    return false;
}

/* True if `arg` is "--NAME" or "--NAME=..." for a flag some command knows.  Anything
 * else after a flag that takes a value is that value, even when it starts with "--":
 * a Z85 key may (one in about 7,000 does). */
static bool names_a_flag(const char *arg)
{
    if (arg[0] != '-' || arg[1] != '-' || arg[2] == '\0')
        return false;
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    if (word_in("db config help version format", name, len))
        return true;
    for (size_t i = 0; i < CLI_NCOMMANDS; i++)
        if (word_in(cli_commands[i].flags, name, len) || word_in(cli_commands[i].bools, name, len))
            return true;
    return false;
}

/* Splits argv into flags and positionals.  0, or LD_EINVAL with err set. */
static int cli_tokenize(nd_cli_t *cli, int argc, char **argv, const char **pos, size_t *npos,
                        ld_error_t *err)
{
    char quoted[256];
    bool only_positionals = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *tok = argv[i];
        if (!only_positionals && strcmp(tok, "--") == 0) {
            only_positionals = true;
            continue;
        }
        if (!only_positionals && strcmp(tok, "-h") == 0)
            tok = "--help";
        if (only_positionals || tok[0] != '-' || strcmp(tok, "-") == 0) {
            if (*npos >= CLI_ARGS_MAX + 4) {
                ld_quote(tok, LD_QUOTE_MAX, quoted, sizeof quoted);
                return ld_error_set(err, LD_EINVAL, "unexpected argument '%s'", quoted);
            }
            pos[(*npos)++] = tok;
            continue;
        }
        if (tok[1] != '-' || tok[2] == '\0') {
            ld_quote(tok, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_EINVAL, "unknown flag '%s' (flags are spelt --name)",
                                quoted);
        }
        const char *name = tok + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen(name);
        const char *value = NULL;
        if (!ld_utf8_valid(name, len)) {
            ld_quote(tok, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_EINVAL, "unknown flag '%s'", quoted);
        }
        if (flag_takes_no_value(name, len)) {
            if (eq)
                return ld_error_set(err, LD_EINVAL, "--%.*s takes no value", (int) len, name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && !names_a_flag(argv[i + 1])) {
            value = argv[++i];
        } else {
            return ld_error_set(err, LD_EINVAL, "--%.*s: missing value", (int) len, name);
        }
        for (size_t k = 0; k < cli->nflags; k++)
            if (cli->flag_lens[k] == len && memcmp(cli->flag_names[k], name, len) == 0)
                return ld_error_set(err, LD_EINVAL, "--%.*s given twice", (int) len, name);
        if (cli->nflags == CLI_FLAGS_MAX)
            return ld_error_set(err, LD_EINVAL, "too many flags");
        if (value && !ld_utf8_valid(value, strlen(value))) {
            char what[80];
            snprintf(what, sizeof what, "--%.*s", (int) (len < 60 ? len : 60), name);
            return nd_bad_value(err, what, value, "not valid UTF-8");
        }
        cli->flag_names[cli->nflags] = name;
        cli->flag_lens[cli->nflags] = len;
        cli->flag_values[cli->nflags] = value;
        cli->nflags++;
    }
    return 0;
}

/* The command whose words are the longest prefix of the positionals, or NULL. */
static const cli_command_t *cli_match(const char **pos, size_t npos, size_t *used)
{
    const cli_command_t *best = NULL;
    size_t best_words = 0;
    for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
        const cli_command_t *c = &cli_commands[i];
        size_t n = count_words(c->words);
        if (n > npos || n <= best_words)
            continue;
        bool match = true;
        char w[32];
        for (size_t k = 0; k < n && match; k++) {
            nth_word(c->words, k, w, sizeof w);
            match = strcmp(w, pos[k]) == 0;
        }
        if (match) {
            best = c;
            best_words = n;
        }
    }
    *used = best_words;
    return best;
}

static bool is_group(const char *word)
{
    size_t len = strlen(word);
    for (size_t i = 0; i < CLI_NCOMMANDS; i++)
        if (strncmp(cli_commands[i].words, word, len) == 0 && cli_commands[i].words[len] == ' ')
            return true;
    return false;
}

/* Checks flags and positionals against the command. 0 or LD_EINVAL. */
static int cli_check(nd_cli_t *cli, const char **pos, size_t npos, ld_error_t *err)
{
    const cli_command_t *c = cli->cmd;
    char quoted[256];
    for (size_t i = 0; i < cli->nflags; i++) {
        const char *name = cli->flag_names[i];
        size_t len = cli->flag_lens[i];
        bool ok = word_in("db config help", name, len) || word_in(c->flags, name, len)
                  || word_in(c->bools, name, len)
                  || (c->formats && word_in("format", name, len));
        if (!ok) {
            char flag[128];
            snprintf(flag, sizeof flag, "--%.*s", (int) len, name);
            ld_quote(flag, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_EINVAL, "unknown flag '%s' for '%s' (usage: liangdi %s %s)",
                                quoted, c->words, c->words, c->usage);
        }
        if (word_in(c->bools, name, len) && cli->flag_values[i])
            return ld_error_set(err, LD_EINVAL, "--%.*s takes no value", (int) len, name);
    }
    size_t want = count_words(c->args);
    if (npos > want) {
        ld_quote(pos[want], LD_QUOTE_MAX, quoted, sizeof quoted);
        return ld_error_set(err, LD_EINVAL, "unexpected argument '%s' (usage: liangdi %s %s)",
                            quoted, c->words, c->usage);
    }
    if (npos < want) {
        char name[32];
        nth_word(c->args, npos, name, sizeof name);
        return ld_error_set(err, LD_EINVAL, "missing %s (usage: liangdi %s %s)", name, c->words,
                            c->usage);
    }
    for (size_t i = 0; i < npos; i++) {
        if (!ld_utf8_valid(pos[i], strlen(pos[i]))) {
            char name[32];
            nth_word(c->args, i, name, sizeof name);
            return nd_bad_value(err, name, pos[i], "not valid UTF-8");
        }
        cli->args[cli->nargs++] = pos[i];
    }
    size_t nreq = count_words(c->required);
    for (size_t i = 0; i < nreq; i++) {
        char name[32];
        nth_word(c->required, i, name, sizeof name);
        if (!nd_cli_flag(cli, name))
            return ld_error_set(err, LD_EINVAL, "missing --%s (usage: liangdi %s %s)", name,
                                c->words, c->usage);
    }
    const char *fmt = nd_cli_flag(cli, "format");
    if (fmt) {
        nd_format_t f;
        if (nd_format_parse(fmt, &f) != 0 || !(c->formats & (1u << f))) {
            char why[64];
            snprintf(why, sizeof why, "expected %s", format_words(c->formats));
            return nd_bad_value(err, "--format", fmt, why);
        }
        cli->format = f;
    }
    return 0;
}

/* Finds the config: --config, $LIANGDI_CONFIG, or the default file if it exists. */
static int cli_load_config(nd_cli_t *cli, ld_error_t *err)
{
    const char *path = nd_cli_flag(cli, "config");
    const char *env = getenv("LIANGDI_CONFIG");
    if (!path && env && *env)
        path = env;
    if (!path && access(ND_CONFIG_DEFAULT_PATH, F_OK) == 0)
        path = ND_CONFIG_DEFAULT_PATH;
    if (!path) {
        cli->config = nd_config_new();
        return cli->config ? 0 : ld_error_set(err, LD_ENOMEM, "out of memory");
    }
    if (access(path, F_OK) != 0)
        return nd_bad_value(err, "--config", path, "no such file");
    cli->config = nd_config_load(path, err);
    if (!cli->config)
        return err->code == LD_EIO ? LD_EIO : LD_EINVAL;
    ld_log_level_t level;
    if (nd_config_log_level(cli->config, &level))
        ld_log_level = level;
    return 0;
}

static int cli_paths(nd_cli_t *cli, ld_error_t *err)
{
    const char *db = nd_cli_flag(cli, "db");
    const char *env = getenv("LIANGDI_DB");
    if (db && !*db)
        return nd_bad_value(err, "--db", db, "a path is needed");
    if (!db && env && *env)
        db = env;
    if (!db)
        db = nd_config_db(cli->config);
    if (!db)
        db = "liangdi.db";
    cli->db_path = strdup(db);
    const char *keyfile = nd_config_keyfile(cli->config);
    if (keyfile)
        cli->keyfile = strdup(keyfile);
    else if (cli->db_path && asprintf(&cli->keyfile, "%s.key", cli->db_path) < 0)
        cli->keyfile = NULL;
    if (!cli->db_path || !cli->keyfile)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    return 0;
}

static int exit_code_for(int code)
{
    switch (code) {
    case LD_OK:
        return ND_EXIT_OK;
    case LD_EINVAL:
    case LD_ENOTFOUND:
    case LD_EEXIST:
        return ND_EXIT_USAGE;
    default:
        return ND_EXIT_RUNTIME;
    }
}

/* The error for positionals that name no command: none at all, a group's name without
 * its command word, or words no command has.  LD_EINVAL. */
static int cli_no_command(const char **pos, size_t npos, ld_error_t *err)
{
    char quoted[256];
    if (npos == 0)
        return ld_error_set(err, LD_EINVAL, "no command given");
    if (is_group(pos[0]) && npos == 1)
        return ld_error_set(err, LD_EINVAL, "'%s' needs a command word", pos[0]);
    if (is_group(pos[0])) {
        ld_quote(pos[1], LD_QUOTE_MAX, quoted, sizeof quoted);
        return ld_error_set(err, LD_EINVAL, "unknown command '%s %s' (see 'liangdi %s --help')",
                            pos[0], quoted, pos[0]);
    }
    ld_quote(pos[0], LD_QUOTE_MAX, quoted, sizeof quoted);
    return ld_error_set(err, LD_EINVAL, "unknown command '%s' (see 'liangdi --help')", quoted);
}

static bool batch_allows(const cli_command_t *cmd)
{
    for (size_t i = 0; i < sizeof cli_batch_commands / sizeof cli_batch_commands[0]; i++)
        if (strcmp(cli_batch_commands[i], cmd->words) == 0)
            return true;
    return false;
}

int nd_cli_run_line(nd_cli_t *batch, int argc, char **argv, char *words, size_t wordsz,
                    ld_error_t *err)
{
    nd_cli_t line = {0};
    const char *pos[CLI_ARGS_MAX + 4];
    size_t npos = 0, used = 0;

    snprintf(words, wordsz, "%s", "");
    line.format = ND_FMT_TABLE;
    int rc = cli_tokenize(&line, argc, argv, pos, &npos, err);
    if (rc != 0)
        return rc;
    line.cmd = cli_match(pos, npos, &used);
    if (!line.cmd)
        return cli_no_command(pos, npos, err);
    snprintf(line.words, sizeof line.words, "%s", line.cmd->words);
    snprintf(words, wordsz, "%s", line.cmd->words);
    if (!batch_allows(line.cmd))
        return ld_error_set(err, LD_EINVAL, "'%s' cannot be part of a batch, which holds "
                            "the commands that record (add, edit, assess, delete...)",
                            line.cmd->words);
    for (size_t i = 0; i < line.nflags; i++)
        if (word_in("db config help", line.flag_names[i], line.flag_lens[i]))
            return ld_error_set(err, LD_EINVAL, "--%.*s is given to the batch itself, not "
                                "to a line of it", (int) line.flag_lens[i],
                                line.flag_names[i]);
    rc = cli_check(&line, pos + used, npos - used, err);
    if (rc != 0)
        return rc;
    line.db_path = batch->db_path;
    line.keyfile = batch->keyfile;
    line.config = batch->config;
    line.store = batch->store;
    if (!line.store)
        return ld_error_set(err, LD_EINVAL, "a batch's store is opened before its lines run");
    return line.cmd->run(&line, err);
}

int nd_cli_main(int argc, char **argv)
{
    nd_cli_t cli = {0};
    ld_error_t err;
    const char *pos[CLI_ARGS_MAX + 4];
    size_t npos = 0, used = 0;
    int rc;

    ld_error_clear(&err);
    ld_log_init("liangdi", LD_LOG_INFO);
    cli.format = ND_FMT_TABLE;
    rc = cli_tokenize(&cli, argc, argv, pos, &npos, &err);
    if (rc != 0)
        goto out;
    if (nd_cli_has(&cli, "version") && npos == 0) {
        printf("liangdi %s (protocol %d, schema %d)\n", LIANGDI_VERSION, LD_PROTOCOL_VERSION,
               LD_SCHEMA_VERSION);
        goto out;
    }
    cli.cmd = cli_match(pos, npos, &used);
    if (!cli.cmd) {
        /* no command, or a group's name alone: its help, on stdout when asked for */
        const char *group = npos == 1 && is_group(pos[0]) ? pos[0] : NULL;
        if (npos == 0 || group) {
            bool asked = nd_cli_has(&cli, "help");
            print_help(asked ? stdout : stderr, group);
            if (asked)
                goto out;
        }
        rc = cli_no_command(pos, npos, &err);
        goto out;
    }
    snprintf(cli.words, sizeof cli.words, "%s", cli.cmd->words);
    if (nd_cli_has(&cli, "help")) {
        print_usage(stdout, cli.cmd);
        goto out;
    }
    rc = cli_check(&cli, pos + used, npos - used, &err);
    if (rc == 0)
        rc = cli_load_config(&cli, &err);
    if (rc == 0)
        rc = cli_paths(&cli, &err);
    if (rc == 0)
        rc = cli.cmd->run(&cli, &err);
out:
    if (rc != 0) {
        fflush(stdout);
        if (cli.cmd)
            fprintf(stderr, "liangdi %s: %s\n", cli.words, err.msg[0] ? err.msg : ld_strerror(rc));
        else
            fprintf(stderr, "liangdi: %s\n", err.msg[0] ? err.msg : ld_strerror(rc));
    }
    nd_store_destroy(&cli.store);
    nd_config_destroy(&cli.config);
    free(cli.db_path);
    free(cli.keyfile);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "liangdi: cannot write output: %s\n", strerror(errno));
        return ND_EXIT_RUNTIME;
    }
    return exit_code_for(rc);
}
