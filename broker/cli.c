/* cli.c: liangdi-broker's command line: arguments (options before or after the command
 * words), settings (flag, environment, config file, default), and the commands. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compact.h"
#include "config.h"
#include "db.h"
#include "endpoint.h"
#include "keys.h"
#include "log.h"
#include "mailbox.h"
#include "migrate.h"
#include "registry.h"
#include "server.h"
#include "status.h"
#include "store_spec.h"
#include "text.h"

#define CLI_EXIT_OK      0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE   2
#define CLI_WORDS_MAX    4

/* The options a command line may carry; NULL when not given. */
typedef struct cli_args {
    const char *db;
    const char *store;
    const char *config;
    const char *key;
    const char *key_file;
    const char *name;
    const char *bind;
    const char *log_level;
    const char *from;
    const char *to;
    const char *words[CLI_WORDS_MAX];
    size_t      nwords;
} cli_args_t;

/* What a command accepts besides --db, --store, --key-file and --config. */
enum {
    CLI_OPT_KEY       = 1 << 0,
    CLI_OPT_NAME      = 1 << 1,
    CLI_OPT_BIND      = 1 << 2,
    CLI_OPT_LOG_LEVEL = 1 << 3,
    CLI_OPT_FROM_TO   = 1 << 4,
};

typedef struct cli_ctx {
    cli_args_t      args;
    bk_config_t     cfg;
    bk_store_spec_t store;     /* where registry and mailboxes are */
    const char     *db_path;   /* store.where: the SQLite path or the NATS URL list */
} cli_ctx_t;

typedef int (*cli_cmd_fn)(cli_ctx_t *ctx);

typedef struct cli_cmd {
    const char *word1, *word2;   /* word2 NULL: a one-word command */
    size_t      nargs;           /* words after the command's own */
    unsigned    options;
    const char *usage;
    cli_cmd_fn  run;
} cli_cmd_t;

static volatile sig_atomic_t cli_stop;

static void cli_on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

static int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "liangdi-broker: MESSAGE" and returns the exit code given. */
static int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("liangdi-broker: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* The exit code for an error from a command: a bad value is the caller's (2), anything
 * else is a runtime failure (1). */
static int cli_error(const ld_error_t *err)
{
    return cli_fail(err->code == LD_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME, "%s", err->msg);
}

/* The exit code for an error from a registry change: a node that is not registered, or
 * one already registered or linked, is the caller's argument (2), as a bad value is. */
static int cli_registry_error(const ld_error_t *err)
{
    bool argument = err->code == LD_EINVAL || err->code == LD_ENOTFOUND ||
                    err->code == LD_EEXIST;
    return cli_fail(argument ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME, "%s", err->msg);
}

/* "<db>.key": malloc'd, caller frees; NULL if out of memory. */
static char *cli_key_path(const char *db)
{
    size_t n = strlen(db) + sizeof ".key";
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s.key", db);
    return path;
}

/* The broker's keypair file: --key-file, else the config's key_file, else (SQLite
 * store) "<db>.key".  malloc'd, caller frees; NULL with *code set when there is none
 * (a JetStream store keeps no file of its own to put it beside); with `command`
 * NULL, nothing is printed then. */
static char *cli_key_file(cli_ctx_t *ctx, const char *command, int *code)
{
    const char *given = ctx->args.key_file ? ctx->args.key_file : ctx->cfg.key_file;
    char *path = given ? strdup(given)
               : ctx->store.kind == BK_STORE_SQLITE ? cli_key_path(ctx->db_path) : NULL;
    if (path || !command)
        return path;
    if (given || ctx->store.kind == BK_STORE_SQLITE)
        *code = cli_fail(CLI_EXIT_RUNTIME, "out of memory");
    else
        *code = cli_fail(CLI_EXIT_USAGE, "%s: --key-file FILE is needed with a jetstream store "
                         "(the broker's keypair, shared by every front-end; or key_file in "
                         "the config)", command);
    return NULL;
}

/* Opens the mailboxes of the store. */
static bk_mailbox_t *cli_mailbox(cli_ctx_t *ctx, bool create, ld_error_t *err)
{
    return bk_mailbox_new(ctx->store.mailbox, ctx->db_path, create, err);
}

/* ---- the commands ---- */

/* Makes the keypair for init: read from `from` (an import) when given, else new.
 * Written to `path` unless it is the file read.  *written says whether a file was
 * made (to remove if init fails). */
static int cli_init_keys(ld_keypair_t *kp, const char *from, const char *path, bool *written)
{
    ld_error_t err;
    *written = false;
    if (from) {
        if (ld_keys_load(kp, from, &err) < 0)
            return cli_fail(err.code == LD_EINVAL || err.code == LD_ENOTFOUND
                            ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME, "init: --key-file: %s", err.msg);
        if (strcmp(from, path) == 0)
            return CLI_EXIT_OK;
    } else if (ld_keys_generate(kp, &err) < 0) {
        return cli_error(&err);
    }
    if (ld_keys_save(kp, path, &err) < 0)
        return cli_error(&err);
    *written = true;
    return CLI_EXIT_OK;
}

static int cli_init(cli_ctx_t *ctx)
{
    ld_keypair_t kp;
    ld_error_t err;
    bk_registry_t *registry = NULL;
    bk_mailbox_t *mailbox = NULL;
    int code = CLI_EXIT_RUNTIME;
    bool key_written = false, sqlite = ctx->store.kind == BK_STORE_SQLITE;
    const char *import = ctx->args.key_file ? ctx->args.key_file : ctx->cfg.key_file;
    char *key_path = NULL;
    memset(&kp, 0, sizeof kp);
    if (sqlite) {
        /* the SQLite store's keypair lives beside it; --key-file names one to import */
        key_path = cli_key_path(ctx->db_path);
        if (!key_path)
            return cli_fail(CLI_EXIT_RUNTIME, "out of memory");
        if (access(ctx->db_path, F_OK) == 0) {
            cli_fail(CLI_EXIT_RUNTIME, "%s already exists; init makes a new store only",
                     ctx->db_path);
            goto out;
        }
        if (access(key_path, F_OK) == 0) {
            cli_fail(CLI_EXIT_RUNTIME, "%s already exists; init will not replace a key", key_path);
            goto out;
        }
    } else {
        /* every front-end shares one keypair: an existing --key-file is imported */
        key_path = cli_key_file(ctx, "init", &code);
        if (!key_path)
            goto out;
        import = access(key_path, F_OK) == 0 ? key_path : NULL;
    }
    code = cli_init_keys(&kp, import, key_path, &key_written);
    if (code != CLI_EXIT_OK)
        goto out;
    code = CLI_EXIT_RUNTIME;
    registry = bk_registry_open(ctx->store.registry, ctx->db_path, true, &err);
    if (registry)
        mailbox = cli_mailbox(ctx, true, &err);
    if (!registry || !mailbox) {
        cli_error(&err);
        goto out;
    }
    printf("%s\n", kp.public_key);
    if (sqlite)
        fprintf(stderr, "liangdi-broker: new store %s; its keypair is in %s (mode 0600%s%s). "
                "Give nodes the public key above.\n", ctx->db_path, key_path,
                import ? ", imported from " : "", import ? import : "");
    else
        fprintf(stderr, "liangdi-broker: JetStream store ready; the keypair %s %s (mode 0600): "
                "copy it to every front-end. Give nodes the public key above.\n", key_path,
                import ? "was imported" : "is new");
    code = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
out:
    bk_mailbox_destroy(&mailbox);
    bk_registry_destroy(&registry);
    if (code != CLI_EXIT_OK && key_written) {
        unlink(key_path);
        if (sqlite)
            unlink(ctx->db_path);
    }
    memset(&kp, 0, sizeof kp);
    free(key_path);
    return code;
}

/* Opens the registry of an existing store, or prints why not. */
static bk_registry_t *cli_registry(cli_ctx_t *ctx, int *code)
{
    ld_error_t err;
    bk_registry_t *registry = bk_registry_open(ctx->store.registry, ctx->db_path, false, &err);
    if (!registry)
        *code = cli_error(&err);
    return registry;
}

/* Checks `verb`'s node ID and --key (given, a CURVE public key, not the broker's own);
 * CLI_EXIT_OK, or prints and returns CLI_EXIT_USAGE. */
static int cli_check_node_key(cli_ctx_t *ctx, const char *verb, const char *id)
{
    ld_keypair_t own;
    int code = CLI_EXIT_OK;
    if (!ld_id_valid(id))
        return cli_fail(CLI_EXIT_USAGE, "%s: ID '%s' is not a valid node id (1 to 64 of "
                        "a-z 0-9 . _ -, starting with a letter or digit)", verb, id);
    if (!ctx->args.key)
        return cli_fail(CLI_EXIT_USAGE, "%s: --key PUBLIC_KEY is required", verb);
    if (!ld_key_valid(ctx->args.key))
        return cli_fail(CLI_EXIT_USAGE, "%s: --key '%s' is not a CURVE public key "
                        "(40 characters of Z85)", verb, ctx->args.key);
    /* without a keypair file there is no own key to compare with */
    char *key_path = cli_key_file(ctx, NULL, &code);
    bool own_key = key_path && ld_keys_load(&own, key_path, NULL) == 0
                   && strcmp(own.public_key, ctx->args.key) == 0;
    explicit_bzero(&own, sizeof own);
    free(key_path);
    if (own_key)
        return cli_fail(CLI_EXIT_USAGE, "%s: --key '%s' is the broker's own key", verb,
                        ctx->args.key);
    return CLI_EXIT_OK;
}

static int cli_node_add(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *id = ctx->args.words[2];
    int code = cli_check_node_key(ctx, "node add", id);
    if (code != CLI_EXIT_OK)
        return code;
    if (ctx->args.name && (strlen(ctx->args.name) > BK_NAME_MAX
                           || !ld_utf8_valid(ctx->args.name, strlen(ctx->args.name))))
        return cli_fail(CLI_EXIT_USAGE, "node add: --name is not UTF-8 text of at most %d bytes",
                        BK_NAME_MAX);
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_registry_add_node(registry, id, ctx->args.name, ctx->args.key, &err) < 0)
        code = cli_registry_error(&err);
    else
        fprintf(stderr, "liangdi-broker: node %s registered\n", id);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_node_rekey(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *id = ctx->args.words[2];
    int code = cli_check_node_key(ctx, "node rekey", id);
    if (code != CLI_EXIT_OK)
        return code;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_registry_set_key(registry, id, ctx->args.key, &err) < 0)
        code = cli_registry_error(&err);
    else
        fprintf(stderr, "liangdi-broker: node %s has its new key; the old one is refused from "
                "now on, and is never used again\n", id);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_node_list(cli_ctx_t *ctx)
{
    ld_error_t err;
    int code = CLI_EXIT_OK;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_status_nodes(registry, stdout, &err) < 0)
        code = cli_error(&err);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_node_remove(cli_ctx_t *ctx)
{
    ld_error_t err;
    int code = CLI_EXIT_OK;
    const char *id = ctx->args.words[2];
    if (!ld_id_valid(id))
        return cli_fail(CLI_EXIT_USAGE, "node remove: ID '%s' is not a valid node id", id);
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_registry_remove_node(registry, id, &err) < 0)
        code = cli_registry_error(&err);
    else
        fprintf(stderr, "liangdi-broker: node %s removed; it is refused from now on\n", id);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_link_check(const char *verb, const char *a, const char *b)
{
    if (!ld_id_valid(a))
        return cli_fail(CLI_EXIT_USAGE, "link %s: NODE_A '%s' is not a valid node id", verb, a);
    if (!ld_id_valid(b))
        return cli_fail(CLI_EXIT_USAGE, "link %s: NODE_B '%s' is not a valid node id", verb, b);
    if (strcmp(a, b) == 0)
        return cli_fail(CLI_EXIT_USAGE, "link %s: NODE_A and NODE_B are both '%s'", verb, a);
    return CLI_EXIT_OK;
}

static int cli_link_add(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *a = ctx->args.words[2], *b = ctx->args.words[3];
    int code = cli_link_check("add", a, b);
    if (code != CLI_EXIT_OK)
        return code;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_registry_add_link(registry, a, b, &err) < 0)
        code = cli_registry_error(&err);
    else
        fprintf(stderr, "liangdi-broker: %s and %s linked\n", a, b);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_link_list(cli_ctx_t *ctx)
{
    ld_error_t err;
    int code = CLI_EXIT_OK;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_status_links(registry, stdout, &err) < 0)
        code = cli_error(&err);
    bk_registry_destroy(&registry);
    return code;
}

static int cli_link_remove(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *a = ctx->args.words[2], *b = ctx->args.words[3];
    int code = cli_link_check("remove", a, b);
    if (code != CLI_EXIT_OK)
        return code;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    if (bk_registry_remove_link(registry, a, b, &err) < 0)
        code = cli_registry_error(&err);
    else
        fprintf(stderr, "liangdi-broker: %s and %s unlinked\n", a, b);
    bk_registry_destroy(&registry);
    return code;
}

/* The SQLite store's file, after `status`'s table, and whether compacting would help. */
static int cli_store_space(cli_ctx_t *ctx)
{
    ld_error_t err;
    ld_store_space_t space;
    char said[128];
    sqlite3 *db = bk_db_open(ctx->db_path, false, &err);
    int rc = db != NULL ? ld_store_space(db, ctx->db_path, &space, &err) : err.code;
    bk_db_close(&db);
    if (rc != 0)
        return cli_error(&err);
    ld_store_space_describe(&space, said, sizeof said);
    printf("\nstore: %s, %s\n", ctx->db_path, said);
    if (ld_compact_would_help(&space))
        printf("`liangdi-broker compact`, with `run` stopped, would rewrite it smaller, with "
               "16 KiB pages\n");
    return CLI_EXIT_OK;
}

static int cli_status(cli_ctx_t *ctx)
{
    ld_error_t err;
    int code = CLI_EXIT_OK;
    bk_mailbox_t *mailbox = NULL;
    bk_registry_t *registry = cli_registry(ctx, &code);
    if (!registry)
        return code;
    mailbox = cli_mailbox(ctx, false, &err);
    if (!mailbox || bk_status_print(registry, mailbox, stdout, &err) < 0)
        code = cli_error(&err);
    bk_mailbox_destroy(&mailbox);
    bk_registry_destroy(&registry);
    if (code == CLI_EXIT_OK && ctx->store.kind == BK_STORE_SQLITE)
        code = cli_store_space(ctx);
    return code;
}

static int cli_backup(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *file = ctx->args.words[1];
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *bk = NULL;
    int code = CLI_EXIT_RUNTIME;
    if (!*file)
        return cli_fail(CLI_EXIT_USAGE, "backup: FILE '' is empty");
    if (ctx->store.kind != BK_STORE_SQLITE)
        return cli_fail(CLI_EXIT_USAGE, "backup copies a SQLite store; a JetStream store is "
                        "backed up by NATS itself (stream LIANGDI_MAILBOX, buckets "
                        "LIANGDI_REGISTRY, LIANGDI_HIGHWATER and LIANGDI_STATS)");
    if (access(file, F_OK) == 0)
        return cli_fail(CLI_EXIT_RUNTIME, "backup: %s already exists; choose a new file", file);
    src = bk_db_open(ctx->db_path, false, &err);
    if (!src) {
        code = cli_error(&err);
        goto out;
    }
    if (sqlite3_open_v2(file, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        cli_fail(CLI_EXIT_RUNTIME, "backup: cannot create %s: %s", file,
                 dst ? sqlite3_errmsg(dst) : "out of memory");
        goto out;
    }
    bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk) {
        cli_fail(CLI_EXIT_RUNTIME, "backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    /* One step copies everything under one read transaction: a consistent snapshot
     * even while `run` serves (WAL readers do not block the writer). */
    int rc = sqlite3_backup_step(bk, -1);
    if (rc != SQLITE_DONE) {
        cli_fail(CLI_EXIT_RUNTIME, "backup: copying %s failed: %s", ctx->db_path,
                 sqlite3_errstr(rc));
        goto out;
    }
    if (sqlite3_backup_finish(bk) != SQLITE_OK) {
        bk = NULL;
        cli_fail(CLI_EXIT_RUNTIME, "backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    bk = NULL;
    fprintf(stderr, "liangdi-broker: %s backed up to %s (the keypair %s.key is not in it)\n",
            ctx->db_path, file, ctx->db_path);
    code = CLI_EXIT_OK;
out:
    if (bk)
        sqlite3_backup_finish(bk);
    if (dst)
        sqlite3_close(dst);
    if (code != CLI_EXIT_OK && dst)
        unlink(file);
    bk_db_close(&src);
    return code;
}

static int cli_compact(cli_ctx_t *ctx)
{
    ld_error_t err;
    ld_compact_stats_t stats;
    char said[128];
    int code = CLI_EXIT_RUNTIME;
    if (ctx->store.kind != BK_STORE_SQLITE)
        return cli_fail(CLI_EXIT_USAGE, "compact rewrites a SQLite store; a JetStream store's "
                        "files are NATS's own");
    sqlite3 *db = bk_db_open(ctx->db_path, false, &err);
    if (!db)
        return cli_error(&err);
    int rc = ld_compact(db, ctx->db_path, &stats, &err);
    if (rc == LD_EBUSY) {
        cli_fail(code, "%s; stop `liangdi-broker run` (systemctl stop liangdi-broker) and "
                 "compact again", err.msg);
    } else if (rc != 0) {
        cli_error(&err);
    } else {
        ld_compact_describe(&stats, said, sizeof said);
        fprintf(stderr, "liangdi-broker: compacted %s: %s\n", ctx->db_path, said);
        code = CLI_EXIT_OK;
    }
    bk_db_close(&db);
    return code;
}

static int cli_run(cli_ctx_t *ctx)
{
    ld_error_t err;
    struct sigaction sa;
    bk_server_t *server = NULL;
    int code = CLI_EXIT_RUNTIME;
    char *key_path = cli_key_file(ctx, "run", &code);
    if (!key_path)
        return code;
    code = CLI_EXIT_RUNTIME;
    bk_server_opts_t opts = {
        .db_path              = ctx->db_path,
        .mailbox_ops          = ctx->store.mailbox,
        .registry_ops         = ctx->store.registry,
        .key_path             = key_path,
        .bind                 = ctx->args.bind ? ctx->args.bind
                                : ctx->cfg.bind ? ctx->cfg.bind : BK_BIND_DEFAULT,
        .max_message          = ctx->cfg.max_message,
        .max_peers            = ctx->cfg.max_peers,
        .peer_idle_s          = ctx->cfg.peer_idle_s,
        .handshake_ivl_ms     = ctx->cfg.handshake_ivl_ms,
        .heartbeat_ivl_ms     = ctx->cfg.heartbeat_ivl_ms,
        .heartbeat_timeout_ms = ctx->cfg.heartbeat_timeout_ms,
        .max_clock_drift_ms   = (uint64_t)ctx->cfg.max_clock_drift_s * 1000u,
    };
    if (!ld_endpoint_valid(opts.bind, true)) {
        free(key_path);
        return cli_fail(CLI_EXIT_USAGE, "run: --bind '%s' is not an endpoint tcp://HOST:PORT "
                        "(PORT 1 to 65535, or *) or ipc://PATH", opts.bind);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    server = bk_server_new(&opts, &err);
    if (!server) {
        ld_err("cannot start: %s", err.msg);
        goto out;
    }
    if (bk_server_run(server, &cli_stop, &err) < 0) {
        ld_err("%s", err.msg);
        goto out;
    }
    code = CLI_EXIT_OK;
out:
    bk_server_destroy(&server);
    free(key_path);
    return code;
}

static int cli_migrate(cli_ctx_t *ctx)
{
    ld_error_t err;
    bk_store_spec_t from, to;
    bk_migrate_counts_t counts;
    int code = CLI_EXIT_OK;
    if (!ctx->args.from || !ctx->args.to)
        return cli_fail(CLI_EXIT_USAGE, "migrate: --from STORE and --to STORE are both needed "
                        "(e.g. --from sqlite:/var/lib/liangdi/broker.db --to "
                        "jetstream:nats://10.0.0.1:4222,nats://10.0.0.2:4222)");
    if (bk_store_parse(ctx->args.from, &from, &err) < 0)
        return cli_fail(CLI_EXIT_USAGE, "migrate: --from: %s", err.msg);
    if (bk_store_parse(ctx->args.to, &to, &err) < 0) {
        bk_store_clear(&from);
        return cli_fail(CLI_EXIT_USAGE, "migrate: --to: %s", err.msg);
    }
    char *shown_from = bk_store_shown(from.where), *shown_to = bk_store_shown(to.where);
    if (bk_migrate(&from, &to, &counts, &err) < 0)
        code = cli_error(&err);
    else
        fprintf(stderr, "liangdi-broker: copied %zu nodes, %zu links, %zu retired keys, %zu "
                "high-water marks and %zu mailbox entries from %s to %s\n", counts.nodes,
                counts.links, counts.retired, counts.marks,
                counts.entries, shown_from ? shown_from : "the old store",
                shown_to ? shown_to : "the new store");
    free(shown_from);
    free(shown_to);
    bk_store_clear(&from);
    bk_store_clear(&to);
    return code;
}

static const cli_cmd_t cli_cmds[] = {
    { "init",   NULL,     0, 0, "init [--key-file FILE]", cli_init },
    { "node",   "add",    1, CLI_OPT_KEY | CLI_OPT_NAME,
      "node add ID --key PUBLIC_KEY [--name NAME]", cli_node_add },
    { "node",   "list",   0, 0, "node list", cli_node_list },
    { "node",   "remove", 1, 0, "node remove ID", cli_node_remove },
    { "node",   "rekey",  1, CLI_OPT_KEY, "node rekey ID --key PUBLIC_KEY", cli_node_rekey },
    { "link",   "add",    2, 0, "link add NODE_A NODE_B", cli_link_add },
    { "link",   "list",   0, 0, "link list", cli_link_list },
    { "link",   "remove", 2, 0, "link remove NODE_A NODE_B", cli_link_remove },
    { "run",    NULL,     0, CLI_OPT_BIND | CLI_OPT_LOG_LEVEL,
      "run [--bind ENDPOINT] [--log-level LEVEL] [--key-file FILE]", cli_run },
    { "status", NULL,     0, 0, "status", cli_status },
    { "backup", NULL,     1, 0, "backup FILE", cli_backup },
    { "compact", NULL,    0, 0, "compact", cli_compact },
    { "migrate", NULL,    0, CLI_OPT_FROM_TO, "migrate --from STORE --to STORE", cli_migrate },
};

static void cli_usage(FILE *out)
{
    fputs("usage: liangdi-broker COMMAND [--db PATH | --store STORE] [--config FILE]\n"
          "commands:\n", out);
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        fprintf(out, "  %s\n", cli_cmds[i].usage);
    fputs("--db defaults to $LIANGDI_BROKER_DB, then the config's db, then "
          BK_DB_DEFAULT "\n--store sqlite:PATH is --db PATH (the default store); "
          "--store jetstream:nats://HOST:PORT[,nats://HOST:PORT...] keeps registry and "
          "mailboxes on a NATS JetStream cluster shared by several front-ends", out);
    fputs(bk_store_has_jetstream() ? "\n"
          : " (not in this build: it was made without libnats)\n", out);
    fputs("--key-file is the broker's keypair: beside the SQLite store by default, needed "
          "with jetstream\n--config defaults to $LIANGDI_BROKER_CONFIG, then "
          BK_CONFIG_DEFAULT_PATH " (if present)\n", out);
}

/* Splits argv into options and words.  Returns CLI_EXIT_OK, or prints and returns 2. */
static int cli_parse(int argc, char **argv, cli_args_t *a)
{
    memset(a, 0, sizeof *a);
    const struct { const char *name; const char **slot; } opts[] = {
        { "--db",        &a->db },
        { "--store",     &a->store },
        { "--config",    &a->config },
        { "--key",       &a->key },
        { "--key-file",  &a->key_file },
        { "--from",      &a->from },
        { "--to",        &a->to },
        { "--name",      &a->name },
        { "--bind",      &a->bind },
        { "--log-level", &a->log_level },
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0 && ++i >= argc)
                break;
            if (a->nwords == CLI_WORDS_MAX)
                return cli_fail(CLI_EXIT_USAGE, "unexpected argument '%s'", argv[i]);
            a->words[a->nwords++] = argv[i];
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t k = 0;
        for (; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, arg, name_len) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0])
            return cli_fail(CLI_EXIT_USAGE, "unknown option '%.*s'", (int)name_len, arg);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return cli_fail(CLI_EXIT_USAGE, "option %s needs a value", opts[k].name);
        if (*opts[k].slot)
            return cli_fail(CLI_EXIT_USAGE, "option %s given twice", opts[k].name);
        *opts[k].slot = value;
    }
    return CLI_EXIT_OK;
}

static const cli_cmd_t *cli_find(const cli_args_t *a)
{
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++) {
        const cli_cmd_t *c = &cli_cmds[i];
        if (strcmp(a->words[0], c->word1) != 0)
            continue;
        if (c->word2 && (a->nwords < 2 || strcmp(a->words[1], c->word2) != 0))
            continue;
        return c;
    }
    return NULL;
}

/* Checks that the command got its words and only the options it takes. */
static int cli_check(const cli_cmd_t *c, const cli_args_t *a)
{
    size_t want = (c->word2 ? 2 : 1) + c->nargs;
    if (a->nwords != want)
        return cli_fail(CLI_EXIT_USAGE, "%s '%s'; usage: liangdi-broker %s",
                        a->nwords < want ? "missing an argument after" : "unexpected argument",
                        a->nwords < want ? a->words[a->nwords - 1] : a->words[want], c->usage);
    const struct { unsigned bit; const char *name; const char *value; } given[] = {
        { CLI_OPT_KEY, "--key", a->key },
        { CLI_OPT_NAME, "--name", a->name },
        { CLI_OPT_BIND, "--bind", a->bind },
        { CLI_OPT_LOG_LEVEL, "--log-level", a->log_level },
        { CLI_OPT_FROM_TO, "--from", a->from },
        { CLI_OPT_FROM_TO, "--to", a->to },
    };
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++)
        if (given[i].value && !(c->options & given[i].bit))
            return cli_fail(CLI_EXIT_USAGE, "option %s '%s' does not apply to `%s`",
                            given[i].name, given[i].value, c->usage);
    return CLI_EXIT_OK;
}

/* Reads the config: --config (must exist), else $LIANGDI_BROKER_CONFIG (must exist),
 * else the default path if it exists. */
static int cli_config(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *path = ctx->args.config;
    const char *env = getenv("LIANGDI_BROKER_CONFIG");
    bool required = true;
    if (!path && env && *env)
        path = env;
    if (!path) {
        path = BK_CONFIG_DEFAULT_PATH;
        required = false;
    }
    int rc = bk_config_load(&ctx->cfg, path, &err);
    if (rc == LD_ENOTFOUND && !required)
        return CLI_EXIT_OK;
    if (rc == LD_ENOTFOUND)
        return cli_fail(CLI_EXIT_USAGE, "--config '%s': no such file", path);
    if (rc < 0)
        return cli_fail(CLI_EXIT_USAGE, "%s", err.msg);
    return CLI_EXIT_OK;
}

/* The store: --store, else --db, else $LIANGDI_BROKER_DB, else the config's store,
 * else its db, else the default path. */
static int cli_store(cli_ctx_t *ctx)
{
    ld_error_t err;
    const char *env_db = getenv("LIANGDI_BROKER_DB");
    const char *spec = NULL, *db = NULL;
    if (ctx->args.store && ctx->args.db)
        return cli_fail(CLI_EXIT_USAGE, "--store '%s' and --db '%s': give one of them",
                        ctx->args.store, ctx->args.db);
    if (ctx->args.store)
        spec = ctx->args.store;
    else if (ctx->args.db)
        db = ctx->args.db;
    else if (env_db && *env_db)
        db = env_db;
    else if (ctx->cfg.store)
        spec = ctx->cfg.store;
    else
        db = ctx->cfg.db ? ctx->cfg.db : BK_DB_DEFAULT;
    if (db && !*db)
        return cli_fail(CLI_EXIT_USAGE, "--db '' is empty");
    if (db && strchr(db, ':') && strstr(db, "://"))
        return cli_fail(CLI_EXIT_USAGE, "--db '%s' is a path; a NATS cluster is "
                        "--store jetstream:URLS", db);
    char *text = NULL;
    if (db) {
        size_t n = strlen(db) + sizeof "sqlite:";
        text = malloc(n);
        if (!text)
            return cli_fail(CLI_EXIT_RUNTIME, "out of memory");
        snprintf(text, n, "sqlite:%s", db);
        spec = text;
    }
    int rc = bk_store_parse(spec, &ctx->store, &err);
    free(text);
    if (rc < 0)
        return cli_error(&err);
    ctx->db_path = ctx->store.where;
    return CLI_EXIT_OK;
}

int bk_cli_main(int argc, char **argv)
{
    cli_ctx_t ctx;
    int code;
    memset(&ctx, 0, sizeof ctx);
    bk_config_defaults(&ctx.cfg);
    ld_log_init("liangdi-broker", LD_LOG_INFO);
    code = cli_parse(argc, argv, &ctx.args);
    if (code != CLI_EXIT_OK)
        goto out;
    if (ctx.args.nwords == 0 || strcmp(ctx.args.words[0], "help") == 0) {
        cli_usage(ctx.args.nwords == 0 ? stderr : stdout);
        code = ctx.args.nwords == 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        goto out;
    }
    const cli_cmd_t *cmd = cli_find(&ctx.args);
    if (!cmd) {
        code = cli_fail(CLI_EXIT_USAGE, "unknown command '%s%s%s' (try `liangdi-broker help`)",
                        ctx.args.words[0], ctx.args.nwords > 1 ? " " : "",
                        ctx.args.nwords > 1 ? ctx.args.words[1] : "");
        goto out;
    }
    code = cli_check(cmd, &ctx.args);
    if (code == CLI_EXIT_OK)
        code = cli_config(&ctx);
    if (code != CLI_EXIT_OK)
        goto out;
    ld_log_level_t level = ctx.cfg.log_level;
    if (ctx.args.log_level && ld_log_level_parse(ctx.args.log_level, &level) < 0) {
        code = cli_fail(CLI_EXIT_USAGE, "--log-level '%s' is not one of debug, info, warn, "
                        "error, none", ctx.args.log_level);
        goto out;
    }
    ld_log_init("liangdi-broker", level);
    code = cli_store(&ctx);
    if (code != CLI_EXIT_OK)
        goto out;
    code = cmd->run(&ctx);
out:
    bk_store_clear(&ctx.store);
    bk_config_clear(&ctx.cfg);
    return code;
}
