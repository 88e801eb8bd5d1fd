/* cmd_admin.c: the commands that run the node rather than its records: init, key,
 * broker set, status, sync, daemon, backup, compact, export, digest, history, conflicts
 * and report. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "cli.h"
#include "codec.h"
#include "compact.h"
#include "digest.h"
#include "hlc.h"
#include "inbox.h"
#include "keys.h"
#include "report.h"
#include "resolve.h"
#include "sync.h"
#include "text.h"

#define SYNC_TIMEOUT_DEFAULT_MS  30000
#define PROBE_TIMEOUT_DEFAULT_MS 3000

/* "YYYY-MM-DD HH:MM:SS" in China Standard Time for unix milliseconds. */
static void format_cst(uint64_t ms, char out[32])
{
    time_t t = (time_t) (ms / 1000) + 8 * 3600;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, 32, "?");
}

static void remove_store_files(const char *db)
{
    char path[PATH_MAX];
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
}

/* Checks "ENDPOINT[,ENDPOINT...]" for `what`. */
static int check_endpoints(const char *what, const char *list, ld_error_t *err)
{
    char why[96];
    if (nd_endpoint_list_valid(list))
        return 0;
    snprintf(why, sizeof why, "expected tcp://HOST:PORT or ipc://PATH, or up to %d of them"
             " separated by commas", ND_ENDPOINTS_MAX);
    return nd_bad_value(err, what, list, why);
}

static int check_key(const char *what, const char *key, ld_error_t *err)
{
    if (!ld_key_valid(key))
        return nd_bad_value(err, what, key, "expected the broker's 40-character Z85 public key");
    return 0;
}

/* Makes this node's keypair in `path` unless one is there; prints the public key. */
static int ensure_keypair(const char *path, ld_error_t *err)
{
    ld_keypair_t kp;
    int rc = ld_keys_load(&kp, path, err);
    if (rc == LD_ENOTFOUND) {
        rc = ld_keys_generate(&kp, err);
        if (rc == 0)
            rc = ld_keys_save(&kp, path, err);
    }
    if (rc == 0)
        printf("%s\n", kp.public_key);
    else if (rc == LD_ENOTFOUND || rc == LD_EEXIST)
        rc = LD_EIO;
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    return rc;
}

/* Writes the broker's endpoint and key (either may be NULL: kept), in one transaction:
 * a store never holds one broker's endpoint with another's key. */
static int set_broker(nd_store_t *store, const char *endpoint, const char *key,
                      ld_error_t *err)
{
    const char *pairs[2][2] = { { "broker.endpoint", endpoint }, { "broker.key", key } };
    int rc = nd_store_begin(store, err);
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!pairs[i][1])
            continue;
        char *current = nd_store_setting(store, pairs[i][0]);
        bool same = current && strcmp(current, pairs[i][1]) == 0;
        free(current);
        if (!same)
            rc = nd_store_set_setting(store, pairs[i][0], pairs[i][1], err);
    }
    if (rc == 0)
        return nd_store_commit(store, err);
    nd_store_rollback(store);
    return rc;
}

/* The config file's broker, when it names one, replaces the store's. */
static int apply_config_broker(nd_cli_t *cli, nd_store_t *store, ld_error_t *err)
{
    const char *endpoint = nd_config_broker(nd_cli_config(cli));
    const char *key = nd_config_broker_key(nd_cli_config(cli));
    return endpoint || key ? set_broker(store, endpoint, key, err) : 0;
}

/* ------------------------------------------------------------------ init ---- */

int nd_cmd_init(nd_cli_t *cli, ld_error_t *err)
{
    const char *node = nd_cli_flag(cli, "node");
    const char *name = nd_cli_flag(cli, "name");
    const char *broker = nd_cli_flag(cli, "broker");
    const char *broker_key = nd_cli_flag(cli, "broker-key");
    const char *db = nd_cli_db_path(cli);
    nd_store_t *store = NULL;
    int rc;

    if (!ld_id_valid(node))
        return nd_bad_value(err, "--node", node, "a node id is 1 to 64 of a-z, 0-9, '.', '_', '-',"
                            " starting a-z or 0-9");
    if (!*name || strlen(name) > 200)
        return nd_bad_value(err, "--name", name, "a name of 1 to 200 bytes is needed");
    if (!broker && !broker_key) {
        broker = nd_config_broker(nd_cli_config(cli));
        broker_key = nd_config_broker_key(nd_cli_config(cli));
    }
    if (broker && !broker_key)
        return ld_error_set(err, LD_EINVAL, "missing --broker-key (--broker needs the broker's"
                            " public key)");
    if (broker_key && !broker)
        return ld_error_set(err, LD_EINVAL, "missing --broker (--broker-key goes with it)");
    if (broker && (rc = check_endpoints("--broker", broker, err)) != 0)
        return rc;
    if (broker_key && (rc = check_key("--broker-key", broker_key, err)) != 0)
        return rc;
    if (access(db, F_OK) == 0)
        return ld_error_set(err, LD_EEXIST, "--db: a store already exists at '%s'", db);
    if (broker && access(nd_cli_keyfile(cli), F_OK) == 0)
        return ld_error_set(err, LD_EEXIST, "a keypair file already exists at '%s' (move it away"
                            " or use 'liangdi broker set' on the existing store)",
                            nd_cli_keyfile(cli));
    store = nd_store_open(db, true, err);
    if (!store)
        return err->code ? err->code : LD_EIO;
    rc = nd_store_init_node(store, node, name, err);
    if (rc == 0 && broker) {
        rc = nd_store_set_setting(store, "broker.endpoint", broker, err);
        if (rc == 0)
            rc = nd_store_set_setting(store, "broker.key", broker_key, err);
        if (rc == 0)
            rc = ensure_keypair(nd_cli_keyfile(cli), err);
    }
    nd_store_destroy(&store);
    if (rc != 0) {
        remove_store_files(db);
        return rc;
    }
    fprintf(stderr, "liangdi: node '%s' (%s) ready in %s\n", node, name, db);
    return 0;
}

int nd_cmd_key(nd_cli_t *cli, ld_error_t *err)
{
    ld_keypair_t kp;
    int rc = ld_keys_load(&kp, nd_cli_keyfile(cli), err);
    if (rc == LD_ENOTFOUND)
        return ld_error_set(err, LD_EIO, "no keypair at '%s' (made by 'liangdi init --broker ...'"
                            " or 'liangdi broker set')", nd_cli_keyfile(cli));
    if (rc != 0)
        return rc == LD_EINVAL ? LD_EIO : rc;
    printf("%s\n", kp.public_key);
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    return 0;
}

int nd_cmd_key_new(nd_cli_t *cli, ld_error_t *err)
{
    ld_keypair_t kp;
    const char *path = nd_cli_keyfile(cli);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = ld_keys_load(&kp, path, err);
    if (rc == LD_ENOTFOUND)
        return ld_error_set(err, LD_EIO, "no keypair at '%s' to replace (made by 'liangdi init "
                            "--broker ...' or 'liangdi broker set')", path);
    if (rc == 0)
        rc = ld_keys_generate(&kp, err);
    if (rc == 0)
        rc = ld_keys_replace(&kp, path, err);
    if (rc == 0) {
        printf("%s\n", kp.public_key);
        fprintf(stderr, "liangdi: a new keypair is in %s; the old one is gone. Until the broker "
                "knows the new key this node cannot sync: on the broker, run\n"
                "  liangdi-broker node rekey %s --key %s\n"
                "(a running 'liangdi daemon' takes the new key at its next connection)\n",
                path, nd_store_node_id(store), kp.public_key);
    }
    explicit_bzero(kp.secret_key, sizeof kp.secret_key);
    return rc == LD_EINVAL ? LD_EIO : rc;
}

int nd_cmd_broker_set(nd_cli_t *cli, ld_error_t *err)
{
    const char *endpoint = nd_cli_arg(cli, 0);
    const char *key = nd_cli_flag(cli, "key");
    int rc = check_endpoints("ENDPOINT", endpoint, err);
    if (rc == 0)
        rc = check_key("--key", key, err);
    if (rc != 0)
        return rc;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    rc = ensure_keypair(nd_cli_keyfile(cli), err);
    if (rc == 0)
        rc = set_broker(store, endpoint, key, err);
    return rc;
}

/* ---------------------------------------------------------------- status ---- */

static int status_row(nd_table_t *t, const char *item, const char *value, ld_error_t *err)
{
    const char *cells[2] = { item, value };
    if (nd_table_add_row(t, cells) != 0)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    return 0;
}

static int count_live(sqlite3 *db, const char *table, int64_t *n, ld_error_t *err)
{
    char sql[160];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE coalesce(\"deleted\", 0) = 0",
             table);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    return 0;
}

static nd_sync_opts_t sync_opts(nd_cli_t *cli, int timeout_ms)
{
    nd_sync_opts_t opts = { 0 };
    opts.keyfile = nd_cli_keyfile(cli);
    opts.timeout_ms = timeout_ms;
    opts.interval_ms = nd_config_interval_ms(nd_cli_config(cli));
    if (opts.interval_ms == 0)
        opts.interval_ms = 60000;
    opts.progress = isatty(STDERR_FILENO) == 1;
    return opts;
}

int nd_cmd_status(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "item", "value" };
    char buf[LD_ERROR_MSG_MAX + 64];
    nd_table_t *t = NULL;
    char *endpoint = NULL, *last = NULL, *last_error = NULL;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    sqlite3 *db = nd_store_db(store);
    int rc = 0;
    /* the config file's broker is shown and probed, not written: status only reads */
    const char *config_endpoint = nd_config_broker(nd_cli_config(cli));
    const char *config_key = nd_config_broker_key(nd_cli_config(cli));
    t = nd_table_new("status", 2, keys, NULL);
    if (!t)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    rc = status_row(t, "node", nd_store_node_id(store), err);
    if (rc == 0)
        rc = status_row(t, "name", nd_store_node_name(store), err);
    if (rc == 0)
        rc = status_row(t, "store", nd_cli_db_path(cli), err);
    ld_store_space_t space;
    if (rc == 0)
        rc = ld_store_space(db, nd_cli_db_path(cli), &space, err);
    if (rc == 0) {
        ld_store_space_describe(&space, buf, sizeof buf);
        rc = status_row(t, "store file", buf, err);
    }
    if (rc == 0 && ld_compact_would_help(&space))
        rc = status_row(t, "compact", "`liangdi compact`, with the daemon stopped, would "
                        "rewrite the store smaller, with 16 KiB pages", err);
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT && rc == 0; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t) k);
        int64_t n = 0;
        rc = count_live(db, def->table, &n, err);
        snprintf(buf, sizeof buf, "%" PRId64, n);
        char item[64];
        snprintf(item, sizeof item, "records: %s", def->table);
        if (rc == 0)
            rc = status_row(t, item, buf, err);
    }
    uint64_t last_seq = nd_store_last_seq(store), pushed = nd_store_pushed_upto(store);
    snprintf(buf, sizeof buf, "%" PRIu64 " (written up to %" PRIu64 ", broker has up to %" PRIu64 ")",
             last_seq > pushed ? last_seq - pushed : 0, last_seq, pushed);
    if (rc == 0)
        rc = status_row(t, "outbox", buf, err);
    snprintf(buf, sizeof buf, "%" PRIu64, nd_store_cursor(store));
    if (rc == 0)
        rc = status_row(t, "cursor", buf, err);
    uint64_t inbox_batches = 0, inbox_changes = 0;
    if (rc == 0)
        rc = nd_inbox_depth(store, &inbox_batches, &inbox_changes, err);
    if (rc == 0 && inbox_batches > 0) {
        snprintf(buf, sizeof buf, "%" PRIu64 " changes in %" PRIu64 " %s taken from the "
                 "broker, not applied yet (`liangdi sync` applies them)", inbox_changes,
                 inbox_batches, inbox_batches == 1 ? "batch" : "batches");
        rc = status_row(t, "inbox", buf, err);
    }
    last = nd_store_setting(store, "sync.last");
    last_error = nd_store_setting(store, "sync.last_error");
    if (last && *last) {
        format_cst(strtoull(last, NULL, 10), buf);
        strcat(buf, " CST");
    } else {
        snprintf(buf, sizeof buf, "never");
    }
    if (rc == 0)
        rc = status_row(t, "last sync", buf, err);
    if (rc == 0 && last_error && *last_error)
        rc = status_row(t, "last sync error", last_error, err);
    endpoint = config_endpoint ? strdup(config_endpoint)
                               : nd_store_setting(store, "broker.endpoint");
    if (rc == 0)
        rc = status_row(t, "broker", endpoint && *endpoint ? endpoint : "(none set)", err);
    if (rc == 0 && endpoint && *endpoint) {
        int timeout = nd_config_timeout_ms(nd_cli_config(cli));
        nd_sync_opts_t opts = sync_opts(cli, timeout && timeout < PROBE_TIMEOUT_DEFAULT_MS
                                             ? timeout : PROBE_TIMEOUT_DEFAULT_MS);
        opts.endpoints = config_endpoint;
        opts.server_key = config_key;
        ld_error_t perr;
        ld_error_clear(&perr);
        if (nd_sync_probe(store, nd_cli_db_path(cli), &opts, &perr) == 0)
            snprintf(buf, sizeof buf, "yes");
        else
            snprintf(buf, sizeof buf, "no (%s)", perr.msg[0] ? perr.msg : ld_strerror(perr.code));
        rc = status_row(t, "broker reachable", buf, err);
    }
    if (rc == 0) {
        rc = nd_table_print(t, nd_cli_format(cli), stdout);
        if (rc != 0)
            ld_error_set(err, rc, "cannot write the status");
    }
    free(endpoint);
    free(last);
    free(last_error);
    nd_table_destroy(&t);
    return rc;
}

/* ------------------------------------------------------------ sync, daemon ---- */

int nd_cmd_sync(nd_cli_t *cli, ld_error_t *err)
{
    const char *flag = nd_cli_flag(cli, "timeout");
    int timeout = nd_config_timeout_ms(nd_cli_config(cli));
    nd_sync_result_t result = { 0 };
    if (flag && !nd_duration_parse(flag, &timeout))
        return nd_bad_value(err, "--timeout", flag, "expected seconds (1 to 86400), or 30s, 5m, 1h");
    if (timeout == 0)
        timeout = SYNC_TIMEOUT_DEFAULT_MS;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = apply_config_broker(cli, store, err);
    if (rc != 0)
        return rc;
    nd_sync_opts_t opts = sync_opts(cli, timeout);
    rc = nd_sync_once(store, nd_cli_db_path(cli), &opts, &result, err);
    if (rc != 0)
        return rc == LD_EINVAL ? LD_EINVAL : (rc == LD_ENOTFOUND || rc == LD_EEXIST ? LD_EIO : rc);
    printf("synced: %" PRIu64 " pushed, %" PRIu64 " fetched, %" PRIu64 " conflicts\n",
           result.pushed, result.fetched, result.conflicts);
    return 0;
}

int nd_cmd_daemon(nd_cli_t *cli, ld_error_t *err)
{
    const char *flag = nd_cli_flag(cli, "interval");
    int interval = nd_config_interval_ms(nd_cli_config(cli));
    int timeout = nd_config_timeout_ms(nd_cli_config(cli));
    if (flag && !nd_duration_parse(flag, &interval))
        return nd_bad_value(err, "--interval", flag, "expected a duration: 30s, 5m, 1h (or seconds)");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = apply_config_broker(cli, store, err);
    if (rc != 0)
        return rc;
    nd_sync_opts_t opts = sync_opts(cli, timeout ? timeout : SYNC_TIMEOUT_DEFAULT_MS);
    opts.progress = false;
    if (interval)
        opts.interval_ms = interval;
    rc = nd_daemon_run(store, nd_cli_db_path(cli), &opts, err);
    return rc == LD_ENOTFOUND || rc == LD_EEXIST ? LD_EIO : rc;
}

/* ---------------------------------------------------------------- backup ---- */

/* The refusal of a FILE to back up into that exists. */
static int backup_exists(const char *file, ld_error_t *err)
{
    return ld_error_set(err, LD_EEXIST, "FILE: '%s' already exists: give a new name (a backup "
                        "never replaces a file)", file);
}

int nd_cmd_backup(nd_cli_t *cli, ld_error_t *err)
{
    const char *file = nd_cli_arg(cli, 0);
    char *tmp = NULL;
    char real_db[PATH_MAX], real_file[PATH_MAX];
    sqlite3 *dest = NULL;
    sqlite3_backup *bk = NULL;
    int rc;
    if (!*file)
        return nd_bad_value(err, "FILE", file, "a path is needed");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    if (realpath(nd_cli_db_path(cli), real_db) && realpath(file, real_file)
        && strcmp(real_db, real_file) == 0)
        return nd_bad_value(err, "FILE", file, "that is the store itself");
    /* a backup never replaces a file: it could be the keypair, or the last good backup */
    if (access(file, F_OK) == 0)
        return backup_exists(file, err);
    if (asprintf(&tmp, "%s.tmp-%ld", file, (long) getpid()) < 0)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    unlink(tmp);
    rc = sqlite3_open_v2(tmp, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = ld_error_set(err, LD_EIO, "FILE: cannot create '%s': %s", tmp,
                          dest ? sqlite3_errmsg(dest) : "out of memory");
        goto out;
    }
    bk = sqlite3_backup_init(dest, "main", nd_store_db(store), "main");
    if (!bk) {
        rc = ld_error_set(err, LD_EIO, "backup: %s", sqlite3_errmsg(dest));
        goto out;
    }
    /* One step copies every page under one read transaction: a consistent snapshot
     * that a writer (the daemon, in WAL mode) does not disturb. */
    do {
        rc = sqlite3_backup_step(bk, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(50);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    int pages = sqlite3_backup_pagecount(bk);
    int frc = sqlite3_backup_finish(bk);
    bk = NULL;
    if (rc != SQLITE_DONE || frc != SQLITE_OK) {
        rc = ld_error_set(err, LD_EIO, "backup to '%s': %s", file, sqlite3_errmsg(dest));
        goto out;
    }
    rc = sqlite3_close(dest);
    dest = NULL;
    if (rc != SQLITE_OK) {
        rc = ld_error_set(err, LD_EIO, "backup to '%s': closing failed", file);
        goto out;
    }
    /* a file made under that name meanwhile is not replaced either; a file system that
     * cannot promise it (EINVAL) gets the check made above, once more */
    int moved = renameat2(AT_FDCWD, tmp, AT_FDCWD, file, RENAME_NOREPLACE);
    if (moved != 0 && (errno == EINVAL || errno == ENOSYS)) {
        errno = EEXIST;
        moved = access(file, F_OK) == 0 ? -1 : rename(tmp, file);
    }
    if (moved != 0) {
        rc = errno == EEXIST ? backup_exists(file, err)
             : ld_error_set(err, LD_EIO, "FILE: cannot write '%s': %s", file, strerror(errno));
        goto out;
    }
    fprintf(stderr, "liangdi: backup of %s written to %s (%d pages)\n", nd_cli_db_path(cli), file,
            pages);
    rc = 0;
out:
    if (bk)
        sqlite3_backup_finish(bk);
    if (dest)
        sqlite3_close(dest);
    unlink(tmp);
    free(tmp);
    return rc;
}

/* --------------------------------------------------------------- compact ---- */

int nd_cmd_compact(nd_cli_t *cli, ld_error_t *err)
{
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    ld_compact_stats_t stats;
    ld_error_t inner;
    char said[128];
    int rc = ld_compact(nd_store_db(store), nd_cli_db_path(cli), &stats, &inner);
    if (rc == LD_EBUSY)
        return ld_error_set(err, rc, "%s; stop what has it open: `liangdi daemon` and the "
                            "sync timer (systemctl stop liangdi-node liangdi-sync.timer), "
                            "then compact again", inner.msg);
    if (rc != 0)
        return ld_error_set(err, rc, "%s", inner.msg);
    ld_compact_describe(&stats, said, sizeof said);
    fprintf(stderr, "liangdi: compacted %s: %s\n", nd_cli_db_path(cli), said);
    return 0;
}

/* ---------------------------------------------------------------- export ---- */

/* Writes s as a JSON string. */
static void json_string(FILE *out, const char *s, size_t len)
{
    bool valid = ld_utf8_valid(s, len);
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\r')
            fputs("\\r", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch < 0x20 || ch == 0x7f || (!valid && ch >= 0x80))
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_column(FILE *out, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        fputs("null", out);
        break;
    case SQLITE_INTEGER:
        fprintf(out, "%lld", (long long) sqlite3_column_int64(st, col));
        break;
    case SQLITE_FLOAT:
        fprintf(out, "%.17g", sqlite3_column_double(st, col));
        break;
    default: {
        const char *s = (const char *) sqlite3_column_text(st, col);
        json_string(out, s ? s : "", (size_t) sqlite3_column_bytes(st, col));
        break;
    }
    }
}

static int export_kind(sqlite3 *db, const ld_kind_def_t *def, FILE *out, ld_error_t *err)
{
    char sql[1024];
    size_t used = (size_t) snprintf(sql, sizeof sql, "SELECT \"id\", \"hlc\", \"origin\", "
                                    "coalesce(\"deleted\", 0)");
    for (size_t i = 0; i < def->nfields && used < sizeof sql; i++)
        used += (size_t) snprintf(sql + used, sizeof sql - used, ", \"%s\"", def->fields[i].name);
    if (used < sizeof sql)
        snprintf(sql + used, sizeof sql - used, " FROM \"%s\" ORDER BY \"id\"", def->table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    bool first = true;
    fprintf(out, "    ");
    json_string(out, def->name, strlen(def->name));
    fprintf(out, ": [");
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        fprintf(out, "%s\n      {\"id\": ", first ? "" : ",");
        json_column(out, st, 0);
        fprintf(out, ", \"hlc\": ");
        json_column(out, st, 1);
        fprintf(out, ", \"origin\": ");
        json_column(out, st, 2);
        fprintf(out, ", \"deleted\": %s, \"fields\": {",
                sqlite3_column_int(st, 3) ? "true" : "false");
        for (size_t i = 0; i < def->nfields; i++) {
            fprintf(out, "%s", i ? ", " : "");
            json_string(out, def->fields[i].name, strlen(def->fields[i].name));
            fprintf(out, ": ");
            json_column(out, st, 4 + (int) i);
        }
        fprintf(out, "}}");
        first = false;
        rc = SQLITE_OK;
    }
    fprintf(out, "%s]", first ? "" : "\n    ");
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    return 0;
}

int nd_cmd_export(nd_cli_t *cli, ld_error_t *err)
{
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    sqlite3 *db = nd_store_db(store);
    int rc = 0;
    /* One read transaction: every kind from the same snapshot. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    printf("{\n  \"node\": ");
    json_string(stdout, nd_store_node_id(store), strlen(nd_store_node_id(store)));
    printf(",\n  \"name\": ");
    json_string(stdout, nd_store_node_name(store), strlen(nd_store_node_name(store)));
    printf(",\n  \"schema_version\": %d,\n  \"records\": {\n", LD_SCHEMA_VERSION);
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT && rc == 0; k++) {
        rc = export_kind(db, ld_schema_kind((ld_kind_t) k), stdout, err);
        printf("%s\n", k + 1 < LD_KIND_COUNT ? "," : "");
    }
    printf("  }\n}\n");
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* ---------------------------------------------------------------- digest ---- */

/* One row of `digest --records`. */
static int digest_record_row(void *ctx, const ld_kind_def_t *def, const char *id,
                             const uint8_t digest[ND_DIGEST_BYTES])
{
    char text[ND_DIGEST_TEXT + ND_DIGEST_BYTES / 2];
    nd_digest_text(digest, ND_DIGEST_BYTES / 2, text);
    const char *cells[] = { def->name, id, text };
    return nd_table_add_row(ctx, cells);
}

int nd_cmd_digest(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const kind_keys[] = { "kind", "records", "digest" };
    static const char *const record_keys[] = { "kind", "id", "digest" };
    const char *peer = nd_cli_flag(cli, "with");
    bool per_record = nd_cli_has(cli, "records");
    char title[256], when[32], text[ND_DIGEST_TEXT + ND_DIGEST_BYTES / 2], count[32];
    nd_digest_t d;
    bool comparable = false;
    if (!ld_id_valid(peer))
        return nd_bad_value(err, "--with", peer, "expected a node id");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    const char *self = nd_store_node_id(store);
    if (strcmp(peer, self) == 0)
        return nd_bad_value(err, "--with", peer, "that is this node");
    int rc = nd_digest_comparable(nd_store_db(store), self, peer, &comparable, err);
    if (rc != 0)
        return rc;
    if (!comparable)
        return nd_bad_value(err, "--with", peer, "no trip or agreement here joins an org of "
                            "this node to one of that node's; `liangdi org list` shows each "
                            "org's node");

    uint64_t last_seq = nd_store_last_seq(store), pushed = nd_store_pushed_upto(store);
    format_cst(ld_hlc_wall_now(), when);
    snprintf(title, sizeof title, "records %s shares with %s, %s CST (outbox: %" PRIu64
             " not yet at the broker)", self, peer, when,
             last_seq > pushed ? last_seq - pushed : 0);
    nd_table_t *t = per_record ? nd_table_new(title, 3, record_keys, NULL)
                               : nd_table_new(title, 3, kind_keys, NULL);
    if (!t)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    rc = nd_digest(nd_store_db(store), self, peer, &d, per_record ? digest_record_row : NULL,
                   t, err);
    if (rc == LD_ENOMEM && err->code == 0)
        ld_error_set(err, rc, "out of memory");
    for (int k = LD_KIND_ORG; k <= LD_KIND_COUNT && rc == 0 && !per_record; k++) {
        const nd_digest_kind_t *dk = k < LD_KIND_COUNT ? &d.kinds[k] : &d.all;
        snprintf(count, sizeof count, "%zu", dk->records);
        nd_digest_text(dk->digest, 4, text);
        const char *cells[] = { k < LD_KIND_COUNT ? ld_schema_kind((ld_kind_t)k)->name : "all",
                                count, text };
        rc = nd_table_add_row(t, cells);
        if (rc != 0)
            ld_error_set(err, rc, "out of memory");
    }
    if (rc == 0)
        rc = nd_table_print(t, nd_cli_format(cli), stdout);
    if (rc == LD_EIO && err->code == 0)
        ld_error_set(err, rc, "writing the digest failed");
    nd_table_destroy(&t);
    return rc;
}

/* --------------------------------------------------------------- history ---- */

/* One line of a record's history: a field's value as its author wrote it. */
typedef struct history_line {
    uint64_t hlc;                         /* the author's stamp */
    char     author[LD_ID_MAX + 1];
    uint64_t seq;                         /* 0: known only from a copy */
    char     via[LD_ID_MAX + 1];          /* the node that sent a copy, or "" */
    char     field[32];
    char    *value;                       /* owned */
} history_line_t;

typedef struct history {
    history_line_t *lines;
    size_t          n, cap;
} history_t;

static void history_free(history_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->lines[i].value);
    free(h->lines);
    memset(h, 0, sizeof *h);
}

/* Adds a line unless the same write (field, stamp, author) is already there: a record
 * re-sent whole to another branch carries its fields' original stamps, and those are
 * the same writes, not new ones.  A line known from its own change beats one known
 * only from a copy.  0 or LD_ENOMEM. */
static int history_add(history_t *h, const char *field, const char *value, uint64_t hlc,
                       const char *author, uint64_t seq, const char *via)
{
    for (size_t i = 0; i < h->n; i++) {
        history_line_t *l = &h->lines[i];
        if (l->hlc == hlc && strcmp(l->author, author) == 0 && strcmp(l->field, field) == 0) {
            if (l->seq == 0 && seq != 0) {
                l->seq = seq;
                l->via[0] = '\0';
            }
            return 0;
        }
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        history_line_t *grown = realloc(h->lines, cap * sizeof *grown);
        if (!grown)
            return LD_ENOMEM;
        h->lines = grown;
        h->cap = cap;
    }
    history_line_t *l = &h->lines[h->n];
    memset(l, 0, sizeof *l);
    l->value = strdup(value);
    if (!l->value)
        return LD_ENOMEM;
    l->hlc = hlc;
    l->seq = seq;
    snprintf(l->author, sizeof l->author, "%s", author);
    snprintf(l->via, sizeof l->via, "%s", via);
    snprintf(l->field, sizeof l->field, "%s", field);
    h->n++;
    return 0;
}

static int history_order(const void *a, const void *b)
{
    const history_line_t *x = a, *y = b;
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    return strcmp(x->author, y->author);
}

/* Reads the record's changes from the change log into h, one line per field written. */
static int history_read(sqlite3 *db, const char *id, history_t *h, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT \"origin\", \"seq\", \"hlc\", \"deleted\", \"body\""
                                " FROM \"changelog\" WHERE \"record_id\" = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int out = 0;
    while (rc == SQLITE_OK && out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *origin = (const char *) sqlite3_column_text(st, 0);
        uint64_t seq = (uint64_t) sqlite3_column_int64(st, 1);
        uint64_t hlc = (uint64_t) sqlite3_column_int64(st, 2);
        ld_change_t c;
        ld_error_t uerr;
        const void *body = sqlite3_column_blob(st, 4);
        int len = sqlite3_column_bytes(st, 4);
        if (ld_change_unpack(body, (size_t) len, &c, &uerr) != 0) {
            out = history_add(h, "(unreadable)", uerr.msg, hlc, origin, seq, "");
            continue;
        }
        if (c.deleted)
            out = history_add(h, "(deleted)", "", hlc, origin, seq, "");
        for (size_t i = 0; i < c.nfields && out == 0; i++) {
            const ld_field_t *f = &c.fields[i];
            bool copy = f->hlc != 0 && (f->hlc != hlc || (f->origin[0] && strcmp(f->origin, origin)));
            const char *author = f->origin[0] ? f->origin : origin;
            out = copy ? history_add(h, f->name, f->value, f->hlc, author, 0, origin)
                       : history_add(h, f->name, f->value, hlc, origin, seq, "");
        }
        ld_change_clear(&c);
    }
    if (out != 0)
        rc = ld_error_set(err, LD_ENOMEM, "out of memory");
    else if (rc != SQLITE_DONE)
        rc = ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    else
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

int nd_cmd_history(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "when", "node", "seq", "field", "value", "via" };
    static const char *const labels[] = { "when (CST)", "node", "seq", "field", "value",
                                          "copy sent by" };
    char id[LD_RECORD_ID_MAX + 1];
    const char *text = nd_cli_arg(cli, 0);
    nd_table_t *t = NULL;
    history_t h = { 0 };
    int rc = 0;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    sqlite3 *db = nd_store_db(store);
    ld_kind_t kind = LD_KIND_NONE;
    rc = nd_resolve_kind(store, text, &kind, err);
    if (rc != 0)
        return rc;
    if (kind != LD_KIND_NONE) {
        snprintf(id, sizeof id, "%s", text);
    } else {
        /* Not an id: a member, org or agreement by name. */
        static const ld_kind_t named[] = { LD_KIND_MEMBER, LD_KIND_ORG, LD_KIND_AGREEMENT };
        rc = LD_ENOTFOUND;
        for (size_t i = 0; i < 3 && rc == LD_ENOTFOUND; i++)
            rc = nd_resolve(store, named[i], text, "RECORD", id, err);
        if (rc == LD_ENOTFOUND) {
            char quoted[256];
            ld_quote(text, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_ENOTFOUND, "RECORD: no record '%s' (by id, or a member,"
                                " org or agreement by name)", quoted);
        }
        if (rc != 0)
            return rc;
    }
    rc = history_read(db, id, &h, err);
    if (rc != 0)
        goto out;
    qsort(h.lines, h.n, sizeof *h.lines, history_order);
    t = nd_table_new("history", 6, keys, labels);
    if (!t) {
        rc = ld_error_set(err, LD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < h.n; i++) {
        history_line_t *l = &h.lines[i];
        char when[32], seq[24];
        format_cst(ld_hlc_ms(l->hlc), when);
        if (l->seq)
            snprintf(seq, sizeof seq, "%llu", (unsigned long long) l->seq);
        else
            seq[0] = '\0';
        const char *cells[6] = { when, l->author, seq, l->field, l->value, l->via };
        if (nd_table_add_row(t, cells) != 0) {
            rc = ld_error_set(err, LD_ENOMEM, "out of memory");
            goto out;
        }
    }
    rc = nd_table_print(t, nd_cli_format(cli), stdout);
    if (rc != 0)
        ld_error_set(err, rc, "cannot write the history");
out:
    nd_table_destroy(&t);
    history_free(&h);
    return rc;
}

int nd_cmd_conflicts(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = {
        "at", "kind", "record", "field", "winner_value", "winner_node", "winner_when",
        "loser_value", "loser_node", "loser_when",
    };
    static const char *const labels[] = {
        "at (CST)", "kind", "record", "field", "kept", "kept from", "kept written (CST)",
        "lost", "lost from", "lost written (CST)",
    };
    return nd_cli_list(cli, "conflicts",
        "SELECT CASE typeof(\"at\") WHEN 'integer' THEN"
        "   strftime('%Y-%m-%d %H:%M:%S', \"at\" / 1000, 'unixepoch', '+8 hours') ELSE \"at\" END,"
        " \"kind\", \"record_id\", \"field\", \"winner_value\", \"winner_origin\","
        " strftime('%Y-%m-%d %H:%M:%S', (\"winner_hlc\" >> 16) / 1000, 'unixepoch', '+8 hours'),"
        " \"loser_value\", \"loser_origin\","
        " strftime('%Y-%m-%d %H:%M:%S', (\"loser_hlc\" >> 16) / 1000, 'unixepoch', '+8 hours')"
        " FROM \"conflicts\" ORDER BY \"at\" DESC, \"id\" DESC",
        NULL, 0, 10, keys, labels, err);
}

/* ---------------------------------------------------------------- report ---- */

int nd_cmd_report(nd_cli_t *cli, ld_error_t *err)
{
    const char *as_of_text = nd_cli_flag(cli, "as-of");
    const nd_config_t *config = nd_cli_config(cli);
    int32_t as_of;
    int rc;
    if (as_of_text && !ld_date_parse(as_of_text, &as_of))
        return nd_bad_value(err, "--as-of", as_of_text, strlen(as_of_text) == 10
                            ? "no such date" : "expected a date YYYY-MM-DD");
    if (!as_of_text)
        as_of = ld_date_cst(time(NULL));
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    if (nd_config_report_count(config) == 0)
        return nd_report_print(store, as_of, nd_cli_format(cli), stdout, err);
    /* The config's thresholds hold for this report only: set inside a group that is
     * rolled back, so the store keeps its own. */
    rc = nd_store_begin(store, err);
    for (size_t i = 0; rc == 0 && i < nd_config_report_count(config); i++)
        rc = nd_store_set_setting(store, nd_config_report_key(config, i),
                                  nd_config_report_value(config, i), err);
    if (rc == 0)
        rc = nd_report_print(store, as_of, nd_cli_format(cli), stdout, err);
    nd_store_rollback(store);
    return rc;
}
