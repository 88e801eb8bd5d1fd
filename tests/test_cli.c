/* test_cli.c: the `liangdi` binary run as a user would: every command's success and
 * failure, exit codes (2 usage, 1 runtime), and a store left byte-for-byte unchanged. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "change.h"
#include "codec.h"
#include "hlc.h"
#include "inbox.h"
#include "store.h"

#define ARGS_MAX 40

typedef struct run {
    int   status;     /* exit code, or 128 + signal */
    char *out;
    char *err;
} run_t;

static char dir[256];
static char db[300];
static char bin[1024];
static char stdin_path[320];   /* what the command reads on standard input; "" /dev/null */
static run_t last;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (f) {
        size_t got;
        while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
            n += got;
            if (n == cap) {
                cap *= 2;
                buf = realloc(buf, cap + 1);
            }
        }
        fclose(f);
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void run_free(void)
{
    free(last.out);
    free(last.err);
    memset(&last, 0, sizeof last);
}

/* Runs liangdi with argv (NULL-terminated) in the temp dir; result in `last`. */
static int runv(const char *const *args)
{
    char out_path[320], err_path[320];
    const char *argv[ARGS_MAX + 2];
    size_t n = 0;
    run_free();
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    argv[n++] = bin;
    for (size_t i = 0; args[i] && n < ARGS_MAX + 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open(stdin_path[0] ? stdin_path : "/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0 || chdir(dir) != 0)
            _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, (char *const *) argv);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    last.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    last.out = slurp(out_path, NULL);
    last.err = slurp(err_path, NULL);
    return last.status;
}

static int run(const char *first, ...)
{
    const char *args[ARGS_MAX + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < ARGS_MAX; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return runv(args);
}

/* Runs and asserts the exit code, showing the output when it differs. */
#define RUN(code, ...)                                                                    \
    do {                                                                                  \
        int rc_ = run(__VA_ARGS__, NULL);                                                 \
        cr_assert_eq(rc_, (code), "exit %d, want %d\nstdout: %s\nstderr: %s", rc_, (code), \
                     last.out, last.err);                                                 \
    } while (0)

#define OUT_HAS(text) cr_assert(strstr(last.out, (text)), "stdout lacks '%s':\n%s\nstderr: %s", \
                                (text), last.out, last.err)
#define ERR_HAS(text) cr_assert(strstr(last.err, (text)), "stderr lacks '%s':\n%s", (text), last.err)
#define OUT_LACKS(text) cr_assert_null(strstr(last.out, (text)), "stdout has '%s':\n%s", (text), \
                                       last.out)

/* The store's bytes (db and any WAL), to prove a failure changed nothing. */
typedef struct snapshot {
    char  *db, *wal;
    size_t db_len, wal_len;
} snapshot_t;

static snapshot_t snap(void)
{
    snapshot_t s;
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", db);
    s.db = slurp(db, &s.db_len);
    s.wal = slurp(wal, &s.wal_len);
    return s;
}

static void assert_unchanged(snapshot_t *before)
{
    snapshot_t now = snap();
    cr_assert(before->db_len > 0, "the store exists");
    cr_assert(now.db_len == before->db_len && memcmp(now.db, before->db, now.db_len) == 0,
              "the store file changed");
    cr_assert(now.wal_len == before->wal_len && memcmp(now.wal, before->wal, now.wal_len) == 0,
              "the store's WAL changed");
    free(now.db);
    free(now.wal);
    free(before->db);
    free(before->wal);
}

/* Runs a command that must fail with `code`, leave the store as it was, and say `msg`. */
#define FAILS_UNCHANGED(code, msg, ...)                                                   \
    do {                                                                                  \
        snapshot_t before_ = snap();                                                      \
        RUN((code), __VA_ARGS__);                                                         \
        ERR_HAS(msg);                                                                     \
        cr_assert_eq(last.out[0], '\0', "nothing on stdout: %s", last.out);               \
        assert_unchanged(&before_);                                                       \
    } while (0)

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    const char *b = getenv("LIANGDI_BIN");
    cr_assert_not_null(b, "LIANGDI_BIN is set by meson test");
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(dir, sizeof dir, "%s/ld-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/node.db", dir);
    setenv("LIANGDI_DB", db, 1);
    unsetenv("LIANGDI_CONFIG");
}

static void teardown(void)
{
    char cmd[400];
    run_free();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* No per-test timeout: meson test has one, longer under valgrind. */
TestSuite(cli, .init = setup, .fini = teardown);

/* Writes text into the file `name` of the test's folder. */
static void write_text(const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* A store with the township, two of its village branches and the mobile branch in
 * Dongguan; the orgs are one batch (the `org add` tests run the command alone). */
static void township(void)
{
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园镇党委");
    write_text("township.txt",
               "org add zhuyuan --name 竹园镇党委 --kind township\n"
               "org add longtan --name 龙潭村党支部 --kind village --parent zhuyuan\n"
               "org add tingzi --name 亭子村党支部 --kind village --parent zhuyuan\n"
               "org add dongguan --name 东莞流动党支部 --kind mobile --node dongguan\n");
    RUN(0, "batch", "township.txt");
}

/* Adds a member and returns the id printed (static buffer). */
static const char *member(const char *name, const char *org, const char *born)
{
    static char id[64];
    RUN(0, "member", "add", "--name", name, "--org", org, "--born", born);
    cr_assert_eq(strlen(last.out), 37, "one UUID line: %s", last.out);
    memcpy(id, last.out, 36);
    id[36] = '\0';
    return id;
}

static long query_int(const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* ------------------------------------------------------------- usage ---- */

Test(cli, prints_its_version_and_help)
{
    RUN(0, "--version");
    OUT_HAS("liangdi ");
    RUN(0, "--help");
    OUT_HAS("member add");
    OUT_HAS("report");
    RUN(0, "member", "add", "--help");
    OUT_HAS("usage: liangdi member add --name NAME --org ORG");
    RUN(0, "trip", "--help");
    OUT_HAS("trip report-in");
}

Test(cli, refuses_an_unknown_command_with_exit_2)
{
    RUN(2, "fly");
    ERR_HAS("unknown command 'fly'");
    RUN(2, "member", "fly");
    ERR_HAS("unknown command 'member fly'");
    RUN(2, NULL);
    ERR_HAS("no command given");
}

Test(cli, refuses_an_unknown_flag_and_a_missing_value)
{
    township();
    FAILS_UNCHANGED(2, "unknown flag '--colour'", "member", "add", "--name", "甲", "--org",
                    "longtan", "--colour", "red");
    FAILS_UNCHANGED(2, "--name: missing value", "member", "add", "--org", "longtan", "--name");
    FAILS_UNCHANGED(2, "--name: missing value", "member", "add", "--name", "--org", "longtan");
    FAILS_UNCHANGED(2, "missing --org", "member", "add", "--name", "甲");
    FAILS_UNCHANGED(2, "missing MEMBER", "trip", "start", "--to", "dongguan", "--date",
                    "2010-02-20");
    FAILS_UNCHANGED(2, "unexpected argument 'extra'", "org", "list", "extra");
    FAILS_UNCHANGED(2, "--name given twice", "member", "add", "--name", "甲", "--name", "乙",
                    "--org", "longtan");
}

Test(cli, refuses_a_wrong_format)
{
    township();
    FAILS_UNCHANGED(2, "--format: bad value 'xml' (expected table|csv|json)", "org", "list",
                    "--format", "xml");
    FAILS_UNCHANGED(2, "--format: bad value 'html'", "org", "list", "--format", "html");
    FAILS_UNCHANGED(2, "unknown flag '--format'", "member", "add", "--name", "甲", "--org",
                    "longtan", "--format", "json");
}

Test(cli, refuses_non_utf8_bytes_in_an_argument)
{
    township();
    FAILS_UNCHANGED(2, "--name: bad value '\\xff\\xfe' (not valid UTF-8)", "member", "add",
                    "--name", "\xff\xfe", "--org", "longtan");
    FAILS_UNCHANGED(2, "MEMBER: bad value 'a\\xc3' (not valid UTF-8)", "member", "show", "a\xc3");
}

Test(cli, says_so_when_there_is_no_store)
{
    RUN(1, "org", "list");
    ERR_HAS("no store at");
    ERR_HAS("liangdi init");
}

Test(cli, takes_db_before_or_after_the_command_words)
{
    char other[400];
    snprintf(other, sizeof other, "%s/other.db", dir);
    RUN(0, "--db", other, "init", "--node", "dongguan", "--name", "东莞");
    RUN(0, "status", "--db", other);
    OUT_HAS("dongguan");
    RUN(0, "--db", other, "status");
    OUT_HAS("东莞");
}

/* -------------------------------------------------------------- init ---- */

Test(cli, init_creates_a_store_once)
{
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园镇党委");
    RUN(0, "status");
    OUT_HAS("zhuyuan");
    OUT_HAS("竹园镇党委");
    FAILS_UNCHANGED(2, "already exists", "init", "--node", "other", "--name", "x");
}

Test(cli, init_refuses_a_bad_node_id_and_creates_nothing)
{
    RUN(2, "init", "--node", "Bad Id", "--name", "x");
    ERR_HAS("--node: bad value 'Bad Id'");
    cr_assert_neq(access(db, F_OK), 0, "no store was created");
    RUN(2, "init", "--node", "a", "--name", "x", "--broker", "tcp://127.0.0.1:7700");
    ERR_HAS("missing --broker-key");
    cr_assert_neq(access(db, F_OK), 0, "no store was created");
}

Test(cli, init_with_a_broker_makes_a_private_keypair_and_prints_its_public_key)
{
    char keyfile[400];
    struct stat sb;
    char pub[64];
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园", "--broker", "tcp://127.0.0.1:1",
        "--broker-key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    cr_assert_eq(strlen(last.out), 41, "a 40-character key: %s", last.out);
    snprintf(pub, sizeof pub, "%s", last.out);
    snprintf(keyfile, sizeof keyfile, "%s.key", db);
    cr_assert_eq(stat(keyfile, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    RUN(0, "key");
    cr_assert_str_eq(last.out, pub);
}

Test(cli, a_key_that_starts_with_two_dashes_is_a_value_not_a_flag)
{
    /* Z85 keys may start with "--" (about one in 7,000): after --broker-key it is the
     * value, while a real flag there is still a missing value. */
    static const char key[] = "--h590rJua1Qkhq2)}4G4gS)W5Ft->6=4P585:Cl";
    RUN(2, "init", "--node", "zhuyuan", "--name", "竹园", "--broker", "tcp://127.0.0.1:1",
        "--broker-key", "--format", "csv");
    ERR_HAS("--broker-key: missing value");
    cr_assert_neq(access(db, F_OK), 0, "no store was created");
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园", "--broker", "tcp://127.0.0.1:1",
        "--broker-key", key);
    cr_assert_eq(query_int("SELECT count(*) FROM \"settings\" WHERE \"key\" = 'broker.key' "
                           "AND \"value\" = '--h590rJua1Qkhq2)}4G4gS)W5Ft->6=4P585:Cl'"), 1);
}

Test(cli, key_without_a_keypair_is_a_runtime_error)
{
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园");
    RUN(1, "key");
    ERR_HAS("no keypair");
}

Test(cli, key_new_replaces_the_keypair_and_says_what_the_broker_must_run)
{
    char pub[64];
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园", "--broker", "tcp://127.0.0.1:1",
        "--broker-key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    snprintf(pub, sizeof pub, "%s", last.out);
    RUN(0, "key", "new");
    cr_assert_eq(strlen(last.out), 41, "a 40-character key: %s", last.out);
    cr_assert_str_neq(last.out, pub);
    snprintf(pub, sizeof pub, "%s", last.out);
    pub[40] = '\0';
    ERR_HAS("liangdi-broker node rekey zhuyuan --key ");
    ERR_HAS(pub);
    RUN(0, "key");
    cr_assert_eq(strncmp(last.out, pub, 40), 0, "key prints the new one: %s", last.out);
}

Test(cli, key_new_without_a_keypair_is_a_runtime_error_and_makes_none)
{
    char keyfile[400];
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园");
    RUN(1, "key", "new");
    ERR_HAS("no keypair");
    snprintf(keyfile, sizeof keyfile, "%s.key", db);
    cr_assert_neq(access(keyfile, F_OK), 0, "no keypair was made");
}

Test(cli, broker_set_checks_endpoint_and_key)
{
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园");
    FAILS_UNCHANGED(2, "--key: bad value 'nope'", "broker", "set", "tcp://127.0.0.1:7700",
                    "--key", "nope");
    FAILS_UNCHANGED(2, "ENDPOINT: bad value 'http://x'", "broker", "set", "http://x", "--key",
                    "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    RUN(0, "broker", "set", "tcp://127.0.0.1:1", "--key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    cr_assert_eq(strlen(last.out), 41, "prints the node's new public key: %s", last.out);
    RUN(0, "key");
    RUN(0, "status", "--format", "csv");
    OUT_HAS("tcp://127.0.0.1:1");
}

Test(cli, status_counts_the_changes_waiting_in_the_inbox)
{
    RUN(0, "init", "--node", "dongguan", "--name", "东莞支部");
    RUN(0, "status");
    OUT_LACKS("inbox");

    /* A batch of two orgs taken from the broker and not applied yet. */
    ld_error_t err;
    ld_buf_t body = { NULL, 0, 0 };
    for (uint64_t seq = 1; seq <= 2; seq++) {
        ld_change_t c;
        ld_change_init(&c);
        c.kind = LD_KIND_ORG;
        snprintf(c.record_id, sizeof c.record_id, "org-%llu", (unsigned long long)seq);
        strcpy(c.origin, "zhuyuan");
        c.seq = seq;
        c.hlc = ld_hlc_make(ld_hlc_wall_now() - 60000, (uint16_t)seq);
        cr_assert_eq(ld_change_set(&c, "name", "龙潭村党支部", &err), 0, "%s", err.msg);
        cr_assert_eq(ld_change_set(&c, "kind", "village", &err), 0, "%s", err.msg);
        uint8_t *packed = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&c, &packed, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(&body, seq, packed, len), 0);
        free(packed);
        ld_change_clear(&c);
    }
    cr_assert_eq(ld_batch_finish(&body, 0), 0);
    nd_store_t *s = nd_store_open(db, false, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(nd_inbox_put(s, body.data, body.len, 0, 2, 2, &err), 0, "%s", err.msg);
    nd_store_destroy(&s);
    ld_buf_free(&body);

    RUN(0, "status");
    OUT_HAS("2 changes in 1 batch taken from the broker, not applied yet");
    RUN(0, "status", "--format", "csv");
    OUT_HAS("inbox,");
}

/* ------------------------------------------------------------- orgs ---- */

Test(cli, org_add_lists_and_refuses_duplicates_and_bad_kinds)
{
    township();
    RUN(0, "org", "list", "--format", "csv");
    OUT_HAS("longtan");
    OUT_HAS("龙潭村党支部");
    FAILS_UNCHANGED(2, "org 'longtan' already exists", "org", "add", "longtan", "--name", "x",
                    "--kind", "village");
    FAILS_UNCHANGED(2, "--kind: bad value 'city' (expected township|village|community|mobile)",
                    "org", "add", "x1", "--name", "x", "--kind", "city");
    FAILS_UNCHANGED(2, "--parent: no org 'nowhere'", "org", "add", "x1", "--name", "x", "--kind",
                    "village", "--parent", "nowhere");
    FAILS_UNCHANGED(2, "ID: bad value 'Big Org'", "org", "add", "Big Org", "--name", "x",
                    "--kind", "village");
}

/* ----------------------------------------------------------- members ---- */

Test(cli, org_edit_renames_moves_and_refuses_bad_edits_leaving_the_store_as_it_was)
{
    township();
    RUN(0, "org", "edit", "longtan", "--name", "龙潭村党支部");
    OUT_HAS("longtan");
    RUN(0, "org", "edit", "龙潭村党支部", "--kind", "community", "--parent", "");
    RUN(0, "org", "list", "--format", "csv");
    OUT_HAS("longtan,龙潭村党支部,community,,zhuyuan");
    RUN(0, "org", "edit", "longtan", "--parent", "zhuyuan");
    FAILS_UNCHANGED(2, "no org 'nowhere'", "org", "edit", "nowhere", "--name", "x");
    FAILS_UNCHANGED(2, "nothing to change", "org", "edit", "longtan");
    FAILS_UNCHANGED(2, "the org itself or one of its branches", "org", "edit", "zhuyuan",
                    "--parent", "longtan");
    FAILS_UNCHANGED(2, "the org itself or one of its branches", "org", "edit", "zhuyuan",
                    "--parent", "zhuyuan");
    FAILS_UNCHANGED(2, "expected township|village|community|mobile", "org", "edit", "longtan",
                    "--kind", "town");
    FAILS_UNCHANGED(2, "--name: bad value ''", "org", "edit", "longtan", "--name", "");
    FAILS_UNCHANGED(2, "unknown flag '--node'", "org", "edit", "longtan", "--node", "dongguan");
}

Test(cli, member_add_prints_the_new_id_and_list_shows_the_member)
{
    township();
    const char *id = member("林术平", "龙潭村党支部", "1960-08-10");
    char saved[64];
    snprintf(saved, sizeof saved, "%s", id);
    RUN(0, "member", "list", "--format", "csv");
    OUT_HAS(saved);
    OUT_HAS("林术平");
    RUN(0, "member", "list");
    OUT_HAS("林术平");
    RUN(0, "member", "list", "--org", "tingzi", "--format", "csv");
    OUT_LACKS("林术平");
}

Test(cli, member_list_orders_a_branch_by_pinyin_not_by_code_point)
{
    township();
    /* by code point 张 (U+5F20) 李 (U+674E) 王 (U+738B) 赵 (U+8D75) */
    const char *added[] = { "赵六", "张三", "王五", "李四" };
    for (size_t i = 0; i < 4; i++)
        member(added[i], "龙潭村党支部", "1970-01-01");
    RUN(0, "member", "list", "--org", "longtan");
    const char *li = strstr(last.out, "李四"), *wang = strstr(last.out, "王五");
    const char *zhang = strstr(last.out, "张三"), *zhao = strstr(last.out, "赵六");
    cr_assert(li && wang && zhang && zhao, "%s", last.out);
    cr_assert(li < wang && wang < zhang && zhang < zhao, "li wang zhang zhao:\n%s", last.out);
}

Test(cli, with_name_order_stroke_lists_and_the_report_go_by_the_surnames_strokes)
{
    township();
    /* by pinyin: 黄 huang, 李 li, 王 wang, 赵 zhao; by strokes: 王 4, 李 7, 赵 9, 黄 11 */
    const char *added[] = { "赵六", "黄晓明", "王五", "李四" };
    for (size_t i = 0; i < 4; i++)
        member(added[i], "龙潭村党支部", "1970-01-01");
    RUN(0, "member", "list", "--org", "longtan");
    cr_assert(strstr(last.out, "黄晓明") < strstr(last.out, "王五"), "pinyin:\n%s", last.out);
    write_text("stroke.conf", "[node]\nname_order = stroke\n");
    RUN(0, "--config", "stroke.conf", "member", "list", "--org", "longtan");
    const char *wang = strstr(last.out, "王五"), *li = strstr(last.out, "李四");
    const char *zhao = strstr(last.out, "赵六"), *huang = strstr(last.out, "黄晓明");
    cr_assert(wang && li && zhao && huang, "%s", last.out);
    cr_assert(wang < li && li < zhao && zhao < huang, "wang li zhao huang:\n%s", last.out);
    /* the report's members in one branch, by the same order */
    for (size_t i = 0; i < 4; i++)
        RUN(0, "trip", "start", added[i], "--to", "dongguan", "--date", "2010-01-05");
    RUN(0, "--config", "stroke.conf", "report", "--as-of", "2010-09-01", "--format", "csv");
    const char *section = strstr(last.out, "二、");
    cr_assert_not_null(section, "%s", last.out);
    wang = strstr(section, "王五");
    li = strstr(section, "李四");
    zhao = strstr(section, "赵六");
    huang = strstr(section, "黄晓明");
    cr_assert(wang && li && zhao && huang, "%s", section);
    cr_assert(wang < li && li < zhao && zhao < huang, "wang li zhao huang:\n%s", section);
    write_text("bad3.conf", "[node]\nname_order = surname\n");
    FAILS_UNCHANGED(2, "bad3.conf:2: bad value 'surname' for name_order (expected pinyin or"
                    " stroke)", "--config", "bad3.conf", "member", "list");
}

Test(cli, names_are_kept_without_the_spaces_around_them_and_may_be_long)
{
    township();
    RUN(0, "member", "add", "--name", " 李四\xe3\x80\x80", "--org", "longtan");
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '李四'"), 1);
    RUN(0, "member", "show", "李四");
    OUT_HAS("李四");
    FAILS_UNCHANGED(2, "--name: bad value '\xe3\x80\x80 ' (a name is needed, not only spaces)",
                    "member", "add", "--name", "\xe3\x80\x80 ", "--org", "longtan");
    /* 25 characters, 75 bytes: a branch's full name */
    RUN(0, "org", "add", "baoan", "--name", "中共竹园镇外出创业群体广东省深圳市宝安区支部委员会",
        "--kind", "mobile");
    RUN(0, "org", "list", "--format", "csv");
    OUT_HAS("中共竹园镇外出创业群体广东省深圳市宝安区支部委员会");
}

Test(cli, member_add_refuses_impossible_dates_and_unknown_orgs)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    FAILS_UNCHANGED(2, "--born: bad value '2023-02-30' (no such date)", "member", "add",
                    "--name", "甲", "--org", "longtan", "--born", "2023-02-30");
    FAILS_UNCHANGED(2, "--joined: bad value '1990/01/01'", "member", "add", "--name", "甲",
                    "--org", "longtan", "--joined", "1990/01/01");
    FAILS_UNCHANGED(2, "--org: no org 'atlantis'", "member", "add", "--name", "甲", "--org",
                    "atlantis");
    FAILS_UNCHANGED(2, "--gender: bad value 'x' (expected female|male)", "member", "add",
                    "--name", "甲", "--org", "longtan", "--gender", "x");
    FAILS_UNCHANGED(2, "--born: bad value '2199-01-01' (after today, ", "member", "add",
                    "--name", "甲", "--org", "longtan", "--born", "2199-01-01");
    FAILS_UNCHANGED(2, "--born: bad value '1800-01-01' (years run from 1900 to 2199)", "member",
                    "add", "--name", "甲", "--org", "longtan", "--born", "1800-01-01");
    FAILS_UNCHANGED(2, "--joined: bad value '1950-01-01' (before --born)", "member", "add",
                    "--name", "甲", "--org", "longtan", "--born", "1990-01-01", "--joined",
                    "1950-01-01");
    FAILS_UNCHANGED(2, "--org: bad value 'dongguan' (kept by node dongguan: a member is "
                    "registered on the node that keeps his branch)", "member", "add", "--name",
                    "甲", "--org", "dongguan");
    const char *id = member("乙", "longtan", "1970-01-01");
    FAILS_UNCHANGED(2, "--org: bad value '东莞流动党支部' (kept by node dongguan", "member", "edit",
                    id, "--org", "东莞流动党支部");
    /* born 1970: an edit cannot make him join before it, nor be born after joining */
    FAILS_UNCHANGED(2, "--joined: bad value '1960-01-01' (before the member was born)", "member",
                    "edit", id, "--joined", "1960-01-01");
    RUN(0, "member", "edit", id, "--joined", "1995-07-01");
    FAILS_UNCHANGED(2, "--born: bad value '2000-01-01' (after the member joined)", "member",
                    "edit", id, "--born", "2000-01-01");
    FAILS_UNCHANGED(2, "--date: bad value '2199-02-20' (after today, ", "activity", "add", id,
                    "--date", "2199-02-20", "--kind", "study");
    /* an agreement's end may lie ahead */
    RUN(0, "agreement", "add", "--outflow", "longtan", "--inflow", "dongguan", "--signed",
        "2010-01-10", "--until", "2199-12-31");
}

Test(cli, member_add_refuses_a_duplicate_with_the_existing_id)
{
    township();
    RUN(0, "member", "add", "--name", "林术平", "--org", "longtan", "--born", "1960-08-10",
        "--id-number", "500236196008100173");
    char id[64];
    snprintf(id, sizeof id, "%.36s", last.out);
    FAILS_UNCHANGED(2, id, "member", "add", "--name", "别人", "--org", "tingzi",
                    "--id-number", "500236196008100173");
    ERR_HAS("500236196008100173");
    FAILS_UNCHANGED(2, id, "member", "add", "--name", "林术平", "--org", "longtan", "--born",
                    "1960-08-10");
    /* The same name elsewhere, or born another day, is another person. */
    member("林术平", "tingzi", "1960-08-10");
    member("林术平", "longtan", "1961-01-01");
}

Test(cli, members_named_ambiguously_must_be_named_by_id)
{
    township();
    char a[64], b[64];
    snprintf(a, sizeof a, "%s", member("张三", "longtan", "1970-01-01"));
    snprintf(b, sizeof b, "%s", member("张三", "tingzi", "1970-01-01"));
    FAILS_UNCHANGED(2, "'张三' names 2 members", "member", "show", "张三");
    ERR_HAS(a);
    ERR_HAS(b);
    RUN(0, "member", "show", a);
    OUT_HAS("张三");
}

Test(cli, member_edit_changes_fields_and_refuses_bad_input)
{
    township();
    char id[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "member", "edit", "林术平", "--phone", "13800000000");
    cr_assert_str_eq(strtok(last.out, "\n"), id);
    RUN(0, "member", "show", id, "--format", "csv");
    OUT_HAS("13800000000");
    FAILS_UNCHANGED(2, "MEMBER: no member '王五'", "member", "edit", "王五", "--phone", "1");
    FAILS_UNCHANGED(2, "nothing to change", "member", "edit", id);
    FAILS_UNCHANGED(2, "--born: bad value '1960-13-01'", "member", "edit", id, "--born",
                    "1960-13-01");
    FAILS_UNCHANGED(2, "--name: bad value ''", "member", "edit", id, "--name", "");
}

Test(cli, member_show_prints_the_member_and_everything_about_them)
{
    township();
    char id[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "trip", "start", id, "--to", "dongguan", "--date", "2010-02-20", "--employer", "塑胶厂");
    RUN(0, "activity", "add", id, "--date", "2010-03-01", "--kind", "dues", "--month", "2010-03",
        "--amount", "12.5");
    RUN(0, "assess", id, "--year", "2010", "--side", "inflow", "--grade", "excellent");
    RUN(0, "approval", "add", id, "--date", "2010-02-01", "--to", "dongguan");
    RUN(0, "care", "add", id, "--kind", "elderly", "--date", "2010-04-01");
    RUN(0, "member", "show", id);
    OUT_HAS("林术平");
    OUT_HAS("塑胶厂");
    OUT_HAS("12.50");
    /* a table reads in Chinese; CSV and JSON keep the schema's words */
    OUT_HAS("优秀");
    OUT_HAS("待批");
    OUT_HAS("空巢老人");
    OUT_HAS("流入地");
    OUT_HAS("姓名 name");
    OUT_LACKS("excellent");
    RUN(0, "member", "show", id, "--format", "csv");
    OUT_HAS(",excellent,");
    OUT_HAS(",elderly,");
    /* and the Chinese is taken where the word is */
    RUN(0, "assess", id, "--year", "2009", "--side", "流出地", "--grade", "称职");
    cr_assert_eq(query_int("SELECT count(*) FROM assessments WHERE year = 2009"
                           " AND side = 'outflow' AND grade = 'competent'"), 1);
    FAILS_UNCHANGED(2, "--grade: bad value '很好' (expected excellent|competent|", "assess", id,
                    "--year", "2008", "--side", "inflow", "--grade", "很好");
    RUN(0, "member", "show", id, "--format", "json");
    cr_assert_eq(last.out[0], '{');
    OUT_HAS("\"trips\"");
    OUT_HAS("\"cares\"");
    RUN(0, "member", "show", id, "--format", "csv");
    cr_assert_eq(strncmp(last.out, "\xef\xbb\xbf", 3), 0, "the file begins with a BOM");
    cr_assert_null(strstr(last.out + 3, "\xef\xbb\xbf"), "and has no other:\n%s", last.out);
    OUT_HAS("\r\n\r\nid,date,kind,month,amount,note\r\n");
}

Test(cli, member_import_writes_all_rows_or_none)
{
    township();
    write_text("good.csv", "name,org,born,id-number\n甲,longtan,1970-01-01,500236197001010011\n"
                           "\"乙, 二\",亭子村党支部,1971-02-03,500236197102030022\n");
    RUN(0, "member", "import", "good.csv");
    ERR_HAS("imported 2 members");
    cr_assert_eq(query_int("SELECT count(*) FROM members"), 2);
    write_text("bad.csv", "name,org,born\n丙,longtan,1970-01-01\n丁,longtan,2023-02-30\n");
    FAILS_UNCHANGED(2, "bad.csv:3: column born: bad value '2023-02-30'", "member", "import",
                    "bad.csv");
    write_text("missing.csv", "name,born\n丙,1970-01-01\n");
    FAILS_UNCHANGED(2, "missing.csv:1: missing column 'org'", "member", "import", "missing.csv");
    write_text("unknown.csv", "name,org,hobby\n丙,longtan,chess\n");
    FAILS_UNCHANGED(2, "unknown.csv:1: unknown column 'hobby'", "member", "import", "unknown.csv");
    write_text("latin1.csv", "name,org\n\xd6sten,longtan\n");
    FAILS_UNCHANGED(2, "latin1.csv:2: column name: bad value '\\xd6sten' (not valid UTF-8",
                    "member", "import", "latin1.csv");
    write_text("dup.csv", "name,org,id-number\n戊,tingzi,500236197102030022\n");
    FAILS_UNCHANGED(2, "dup.csv:2: column id-number: bad value '500236197102030022' (a duplicate: member", "member",
                    "import", "dup.csv");
    write_text("roster.csv", "姓名,党支部,性别,出生日期\n壬,龙潭村党支部,女,1975-03-04\n"
                             "癸,longtan,男,1976-05-06\n");
    RUN(0, "member", "import", "roster.csv");
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '壬' AND gender = 'female'"
                           " AND org = 'longtan'"), 1);
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '癸' AND gender = 'male'"),
                 1);
    /* what Excel saves on Chinese Windows: 子鼠 and 丑牛 of 龙潭村党支部, in GBK */
    write_text("gbk.csv", "name,org\n\xd7\xd3\xca\xf3,longtan\n"
                          "\xb3\xf3\xc5\xa3,\xc1\xfa\xcc\xb6\xb4\xe5\xb5\xb3\xd6\xa7\xb2\xbf\n");
    FAILS_UNCHANGED(2, "gbk.csv:2: column name: bad value", "member", "import", "gbk.csv");
    ERR_HAS("add --encoding gbk");
    FAILS_UNCHANGED(2, "--encoding: bad value 'latin1' (expected utf-8|gbk)", "member", "import",
                    "gbk.csv", "--encoding", "latin1");
    RUN(0, "member", "import", "gbk.csv", "--encoding", "gbk");
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name IN ('子鼠', '丑牛')"
                           " AND org = 'longtan'"), 2);
    write_text("elsewhere.csv", "name,org\n庚,longtan\n辛,dongguan\n");
    FAILS_UNCHANGED(2, "elsewhere.csv:3: column org: bad value 'dongguan' (kept by node "
                    "dongguan", "member", "import", "elsewhere.csv");
    write_text("order.csv", "name,org,born,joined\n己,longtan,1990-01-01,1950-01-01\n");
    FAILS_UNCHANGED(2, "order.csv:2: column joined: bad value '1950-01-01' (before the member "
                    "was born)", "member", "import", "order.csv");
    FAILS_UNCHANGED(2, "cannot open", "member", "import", "nonexistent.csv");
    cr_assert_eq(query_int("SELECT count(*) FROM members"), 6);
}

/* ------------------------------------------------------------- batch ---- */

/* The number of lines of `text` that are one UUID each, and nothing else. */
static size_t id_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; ) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        cr_assert_eq(len, 36, "a line of stdout that is not an id: '%.*s'", (int) len, p);
        n++;
        p += len + (nl != NULL);
    }
    return n;
}

Test(cli, batch_runs_every_line_in_one_transaction_and_prints_the_ids_in_order)
{
    township();
    char text[1200];
    char first[40];
    snprintf(first, sizeof first, "%s", member("林术平", "longtan", "1970-01-01"));
    snprintf(text, sizeof text,
             "\xEF\xBB\xBF# 林术平's page of the booklet, and a member who joined this "
             "month (saved by Notepad, with a byte-order mark)\n"
             "\n"
             "activity add %s --date 2010-03-25 --kind theme-day --note '主题党日 (三月)'\n"
             "\t activity add 林术平 --date 2010-03-25 --kind dues --month 2010-03 --amount 10"
             "  # 党费\r\n"
             "member add --name \"张 \\\"小\\\" 平\" --org tingzi --born 1985-04-01\n"
             "activity add '张 \"小\" 平' --date 2010-03-28 --kind study --note it\\'s\n"
             "assess 林术平 --year 2009 --side outflow --grade competent\n",
             first);
    write_text("page.txt", text);
    RUN(0, "batch", "page.txt");
    ERR_HAS("ran 5 commands from page.txt, in one transaction");
    cr_assert_eq(id_lines(last.out), 5, "one id per command:\n%s", last.out);
    /* the member added on line 5 is named on line 6, before anything is committed */
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '张 \"小\" 平'"), 1);
    cr_assert_eq(query_int("SELECT count(*) FROM activities a JOIN members m ON m.id = a.member"
                           " WHERE m.name = '张 \"小\" 平' AND a.note = 'it''s'"), 1);
    cr_assert_eq(query_int("SELECT count(*) FROM activities WHERE note = '主题党日 (三月)'"), 1);
    cr_assert_eq(query_int("SELECT count(*) FROM activities WHERE kind = 'dues' AND "
                           "month = '2010-03' AND note IS NULL"), 1);
    cr_assert_eq(query_int("SELECT count(*) FROM assessments"), 1);
    /* the printed ids are the records', in the file's order */
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM activities WHERE id = '%.36s' AND "
             "kind = 'theme-day'", last.out);
    cr_assert_eq(query_int(sql), 1, "the first id is the first line's activity");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM members WHERE id = '%.36s'",
             last.out + 2 * 37);
    cr_assert_eq(query_int(sql), 1, "the third id is the member added on line 5");
}

Test(cli, batch_with_a_bad_line_writes_nothing_prints_no_id_and_names_the_line)
{
    township();
    member("林术平", "longtan", "1970-01-01");
    write_text("page.txt", "activity add 林术平 --date 2010-03-25 --kind theme-day\n"
                           "member add --name 张小平 --org tingzi\n"
                           "activity add 林术平 --date 2010-02-30 --kind study\n"
                           "activity add 林术平 --date 2010-04-25 --kind theme-day\n");
    FAILS_UNCHANGED(2, "page.txt, line 3 (activity add): --date: bad value '2010-02-30'",
                    "batch", "page.txt");
    ERR_HAS("; nothing of the batch was written");
    cr_assert_eq(query_int("SELECT count(*) FROM activities"), 0);
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '张小平'"), 0);
    /* a write refused part way through its command (a second dues for one month) */
    write_text("dues.txt", "activity add 林术平 --date 2010-03-25 --kind dues --month 2010-03 "
                           "--amount 10\n"
                           "activity add 林术平 --date 2010-03-26 --kind dues --month 2010-03 "
                           "--amount 10\n");
    FAILS_UNCHANGED(2, "dues.txt, line 2 (activity add): --month: the dues for 2010-03 are "
                    "already recorded", "batch", "dues.txt");
}

Test(cli, batch_refuses_other_commands_and_lines_it_cannot_read_leaving_the_store_as_it_was)
{
    township();
    member("林术平", "longtan", "1970-01-01");
    write_text("sync.txt", "activity add 林术平 --date 2010-03-25 --kind study\nsync\n");
    FAILS_UNCHANGED(2, "sync.txt, line 2 (sync): 'sync' cannot be part of a batch", "batch",
                    "sync.txt");
    write_text("import.txt", "member import roster.csv\n");
    FAILS_UNCHANGED(2, "line 1 (member import): 'member import' cannot be part of a batch",
                    "batch", "import.txt");
    write_text("nested.txt", "batch nested.txt\n");
    FAILS_UNCHANGED(2, "line 1 (batch): 'batch' cannot be part of a batch", "batch",
                    "nested.txt");
    write_text("db.txt", "activity add 林术平 --date 2010-03-25 --kind study --db other.db\n");
    FAILS_UNCHANGED(2, "line 1 (activity add): --db is given to the batch itself", "batch",
                    "db.txt");
    write_text("unknown.txt", "\n# two\nactivity ad 林术平\n");
    FAILS_UNCHANGED(2, "unknown.txt, line 3: unknown command 'activity ad' (see 'liangdi "
                    "activity --help')", "batch", "unknown.txt");
    write_text("quote.txt", "activity add 林术平 --date 2010-03-25 --kind study --note '未完\n");
    FAILS_UNCHANGED(2, "quote.txt, line 1: a ' that is never closed", "batch", "quote.txt");
    write_text("args.txt", "activity add 林术平 --date 2010-03-25 --kind study extra\n");
    FAILS_UNCHANGED(2, "line 1 (activity add): unexpected argument 'extra'", "batch",
                    "args.txt");
    write_text("latin1.txt", "activity add 林术平 --date 2010-03-25 --kind study --note \xd6\n");
    FAILS_UNCHANGED(2, "latin1.txt, line 1: not valid UTF-8 (save the file as UTF-8)",
                    "batch", "latin1.txt");
    write_text("bom.txt", "activity add 林术平 --date 2010-03-25 --kind study\n"
                          "\xEF\xBB\xBF" "activity add 林术平 --date 2010-03-26 --kind study\n");
    FAILS_UNCHANGED(2, "bom.txt, line 2: unknown command", "batch", "bom.txt");
    FAILS_UNCHANGED(2, "missing FILE", "batch");
    FAILS_UNCHANGED(1, "cannot open nonexistent.txt", "batch", "nonexistent.txt");
    cr_assert_eq(query_int("SELECT count(*) FROM activities"), 0);
}

Test(cli, batch_check_tries_every_line_against_the_store_and_writes_nothing)
{
    township();
    member("林术平", "longtan", "1970-01-01");
    write_text("page.txt", "member add --name 张小平 --org tingzi\n"
                           "activity add 张小平 --date 2010-03-25 --kind theme-day\n"
                           "activity add 林术平 --date 2010-03-25 --kind dues --month 2010-03 "
                           "--amount 10\n");
    snapshot_t before = snap();
    RUN(0, "batch", "page.txt", "--check");
    ERR_HAS("checked 3 commands from page.txt: all would be written (nothing was)");
    cr_assert_eq(last.out[0], '\0', "no id of a record that was not written: %s", last.out);
    assert_unchanged(&before);
    /* a line that only fails against what the store holds: the dues already paid */
    RUN(0, "activity", "add", "林术平", "--date", "2010-03-20", "--kind", "dues", "--month",
        "2010-03", "--amount", "10");
    FAILS_UNCHANGED(2, "page.txt, line 3 (activity add): --month: the dues for 2010-03 are "
                    "already recorded", "batch", "page.txt", "--check");
    cr_assert_eq(query_int("SELECT count(*) FROM members WHERE name = '张小平'"), 0);
}

Test(cli, batch_reads_standard_input_given_as_a_dash)
{
    township();
    member("林术平", "longtan", "1970-01-01");
    write_text("in.txt", "activity add 林术平 --date 2010-03-25 --kind study\n"
                         "activity add 林术平 --date 2010-04-25 --kind study\n");
    snprintf(stdin_path, sizeof stdin_path, "%s/in.txt", dir);
    RUN(0, "batch", "-");
    stdin_path[0] = '\0';
    ERR_HAS("ran 2 commands from standard input");
    cr_assert_eq(id_lines(last.out), 2);
    cr_assert_eq(query_int("SELECT count(*) FROM activities"), 2);
    write_text("empty.txt", "# nothing yet\n\n");
    RUN(0, "batch", "empty.txt");
    ERR_HAS("ran 0 commands from empty.txt");
    cr_assert_eq(last.out[0], '\0');
}

Test(cli, lists_refuse_unknown_filters_and_formats)
{
    township();
    FAILS_UNCHANGED(2, "--org: no org 'nowhere'", "member", "list", "--org", "nowhere");
    FAILS_UNCHANGED(2, "--member: no member 'nobody'", "trip", "list", "--member", "nobody");
    FAILS_UNCHANGED(2, "--member: no member 'nobody'", "activity", "list", "--member", "nobody");
    FAILS_UNCHANGED(2, "--format: bad value 'xml'", "conflicts", "--format", "xml");
    FAILS_UNCHANGED(2, "--format: bad value 'html'", "history", "x", "--format", "html");
    FAILS_UNCHANGED(2, "unknown flag '--mobile' for 'trip list'", "trip", "list", "--mobile");
    FAILS_UNCHANGED(2, "--mobile takes no value", "member", "list", "--mobile=yes");
}

Test(cli, commands_on_a_missing_store_fail_at_runtime)
{
    RUN(1, "export");
    ERR_HAS("no store at");
    RUN(1, "member", "add", "--name", "甲", "--org", "longtan");
    ERR_HAS("no store at");
    RUN(1, "backup", "copy.db");
    cr_assert_neq(access(db, F_OK), 0, "no store was made");
}

/* -------------------------------------------------------------- trips ---- */

Test(cli, trips_start_report_in_and_end)
{
    township();
    char id[64], trip[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    FAILS_UNCHANGED(2, "--to: bad value 'longtan' (龙潭村党支部 is a village org, not an inflow "
                    "branch (an org of kind mobile))", "trip", "start", id, "--to", "longtan",
                    "--date", "2010-02-20");
    FAILS_UNCHANGED(2, "--to: bad value 'tingzi'", "trip", "start", id, "--to", "tingzi",
                    "--date", "2010-02-20");
    FAILS_UNCHANGED(2, "--until: bad value '2010-02-19' (before the trip's start 2010-02-20)",
                    "trip", "start", id, "--to", "dongguan", "--date", "2010-02-20", "--until",
                    "2010-02-19");
    FAILS_UNCHANGED(2, "--until: bad value '2010-02-30' (no such date)", "trip", "start", id,
                    "--to", "dongguan", "--date", "2010-02-20", "--until", "2010-02-30");
    RUN(0, "trip", "start", "林术平", "--to", "东莞流动党支部", "--date", "2010-02-20",
        "--until", "2199-02-20", "--reason", "务工");
    snprintf(trip, sizeof trip, "%.36s", last.out);
    cr_assert_eq(query_int("SELECT count(*) FROM trips WHERE \"until\" = '2199-02-20'"), 1,
                 "the expected end may lie ahead");
    /* what the registration says may change while the member is away */
    FAILS_UNCHANGED(2, "nothing to change", "trip", "edit", id);
    FAILS_UNCHANGED(2, "--until: bad value '2010-01-01' (before the trip's start 2010-02-20)",
                    "trip", "edit", id, "--until", "2010-01-01");
    RUN(0, "trip", "edit", "林术平", "--until", "2198-12-31", "--employer", "东莞市凤岗镇电子厂");
    cr_assert_eq(query_int("SELECT count(*) FROM trips WHERE \"until\" = '2198-12-31' AND "
                           "employer = '东莞市凤岗镇电子厂' AND reason = '务工' AND "
                           "started = '2010-02-20'"), 1, "only the fields given change");
    RUN(0, "member", "list", "--mobile", "--format", "csv");
    OUT_HAS("林术平");
    FAILS_UNCHANGED(2, "already away on trip", "trip", "start", id, "--to", "dongguan", "--date",
                    "2010-03-01");
    FAILS_UNCHANGED(2, "--date: bad value '2010-01-01' (before the trip's start 2010-02-20)",
                    "trip", "report-in", id, "--date", "2010-01-01");
    FAILS_UNCHANGED(2, "--date: bad value '2199-03-01' (after today, ", "trip", "report-in", id,
                    "--date", "2199-03-01");
    RUN(0, "trip", "report-in", id, "--date", "2010-03-01");
    cr_assert_str_eq(strtok(last.out, "\n"), trip);
    FAILS_UNCHANGED(2, "already reported in", "trip", "report-in", id, "--date", "2010-03-02");
    FAILS_UNCHANGED(2, "--why: bad value 'bored' (expected returned|transferred|lost-contact)",
                    "trip", "end", id, "--date", "2010-12-01", "--why", "bored");
    FAILS_UNCHANGED(2, "--date: bad value '2199-12-01' (after today, ", "trip", "end", id,
                    "--date", "2199-12-01", "--why", "returned");
    RUN(0, "trip", "end", id, "--date", "2010-12-01", "--why", "已返乡");
    RUN(0, "trip", "list", "--member", id, "--format", "csv");
    OUT_HAS("id,member,name,to,started,until,reported_in,ended,status,");
    OUT_HAS(",2010-02-20,2198-12-31,2010-03-01,2010-12-01,returned,东莞市凤岗镇电子厂,");
    RUN(0, "member", "show", id);
    OUT_HAS("预计外出至 until");
    OUT_HAS("2198-12-31");
    RUN(0, "member", "list", "--mobile", "--format", "csv");
    OUT_LACKS("林术平");
    FAILS_UNCHANGED(2, "is not away on a trip", "trip", "end", id, "--date", "2010-12-02",
                    "--why", "returned");
    FAILS_UNCHANGED(2, "is not away on a trip", "trip", "edit", id, "--phone", "13900000000");
}

/* -------------------------------------------------------- agreements ---- */

Test(cli, agreements_contacts_and_visits)
{
    township();
    RUN(0, "agreement", "add", "--outflow", "longtan", "--inflow", "dongguan", "--signed",
        "2009-12-10", "--terms", "共管");
    char ag[64];
    snprintf(ag, sizeof ag, "%.36s", last.out);
    FAILS_UNCHANGED(2, "--until: bad value '2009-01-01' (before --signed)", "agreement", "add",
                    "--outflow", "tingzi", "--inflow", "dongguan", "--signed", "2009-12-10",
                    "--until", "2009-01-01");
    FAILS_UNCHANGED(2, "the same org as --outflow", "agreement", "add", "--outflow", "tingzi",
                    "--inflow", "亭子村党支部", "--signed", "2009-12-10");
    FAILS_UNCHANGED(2, "--inflow: longtan and dongguan already have agreement ", "agreement",
                    "add", "--outflow", "longtan", "--inflow", "dongguan", "--signed",
                    "2010-01-10");
    FAILS_UNCHANGED(2, "--outflow: bad value 'dongguan' (东莞流动党支部 is an inflow branch (kind "
                    "mobile), not a home branch)", "agreement", "add", "--outflow", "dongguan",
                    "--inflow", "tingzi", "--signed", "2010-01-10");
    FAILS_UNCHANGED(2, "--inflow: bad value 'longtan' (龙潭村党支部 is a village org, not an "
                    "inflow branch", "agreement", "add", "--outflow", "tingzi", "--inflow",
                    "longtan", "--signed", "2010-01-10");
    cr_assert_eq(query_int("SELECT count(*) FROM agreements"), 1);
    /* an agreement that ended may be followed by a new one, not overlapped */
    RUN(0, "org", "add", "shenzhen", "--name", "深圳流动党支部", "--kind", "mobile", "--node",
        "shenzhen");
    RUN(0, "agreement", "add", "--outflow", "tingzi", "--inflow", "shenzhen", "--signed",
        "2009-01-01", "--until", "2009-12-31");
    FAILS_UNCHANGED(2, "in force on 2009-12-31", "agreement", "add", "--outflow", "tingzi",
                    "--inflow", "shenzhen", "--signed", "2009-12-31");
    RUN(0, "agreement", "add", "--outflow", "tingzi", "--inflow", "shenzhen", "--signed",
        "2010-01-01");
    char current[64];
    snprintf(current, sizeof current, "%.36s", last.out);
    cr_assert_eq(query_int("SELECT count(*) FROM agreements"), 3);
    /* named by its two branches, the pair means the agreement in force */
    RUN(0, "contact", "add", "亭子村党支部/深圳流动党支部", "--date", "2010-03-02");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE agreement = '%s'", current);
    cr_assert_eq(query_int(sql), 1);
    RUN(0, "contact", "add", "龙潭村党支部/东莞流动党支部", "--date", "2010-03-01", "--note", "电话");
    RUN(0, "contact", "add", ag, "--date", "2010-09-01", "--channel", "hotline");
    FAILS_UNCHANGED(2, "--channel: bad value 'pigeon'", "contact", "add", ag, "--date",
                    "2010-09-02", "--channel", "pigeon");
    FAILS_UNCHANGED(2, "AGREEMENT: no agreement 'tingzi/dongguan'", "contact", "add",
                    "tingzi/dongguan", "--date", "2010-09-02");
    RUN(0, "visit", "add", ag, "--date", "2010-05-01", "--host", "dongguan");
    FAILS_UNCHANGED(2, "--host: bad value 'tingzi' (not one of the agreement's two orgs)",
                    "visit", "add", ag, "--date", "2010-05-01", "--host", "tingzi");
    RUN(0, "agreement", "list", "--format", "csv");
    OUT_HAS("龙潭村党支部");
    OUT_HAS("2009-12-10");
    RUN(0, "contact", "list", "--format", "json");
    OUT_HAS("hotline");
    OUT_HAS("phone");
    RUN(0, "visit", "list");
    OUT_HAS("2010-05-01");
}

/* --------------------------------------------------------- activities ---- */

Test(cli, dues_need_a_month_and_a_non_negative_amount)
{
    township();
    char id[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "activity", "add", id, "--date", "2010-03-05", "--kind", "dues", "--month", "2010-03",
        "--amount", "0.5");
    RUN(0, "activity", "add", id, "--date", "2010-03-06", "--kind", "theme-day", "--note", "学习");
    FAILS_UNCHANGED(2, "--amount: bad value '-5' (must not be negative)", "activity", "add", id,
                    "--date", "2010-03-05", "--kind", "dues", "--month", "2010-03", "--amount", "-5");
    FAILS_UNCHANGED(2, "--amount: bad value '1.234'", "activity", "add", id, "--date",
                    "2010-03-05", "--kind", "dues", "--month", "2010-03", "--amount", "1.234");
    FAILS_UNCHANGED(2, "missing --month", "activity", "add", id, "--date", "2010-03-05", "--kind",
                    "dues", "--amount", "5");
    FAILS_UNCHANGED(2, "--month: bad value '2010-13'", "activity", "add", id, "--date",
                    "2010-03-05", "--kind", "dues", "--month", "2010-13", "--amount", "5");
    FAILS_UNCHANGED(2, "--kind: bad value 'party'", "activity", "add", id, "--date", "2010-03-05",
                    "--kind", "party");
    FAILS_UNCHANGED(2, "--month: the dues for 2010-03 are already recorded (", "activity",
                    "add", id, "--date", "2010-03-20", "--kind", "dues", "--month", "2010-03",
                    "--amount", "0.5");
    FAILS_UNCHANGED(2, "--month: bad value '2010-03' (only dues are paid for a month)",
                    "activity", "add", id, "--date", "2010-03-07", "--kind", "meeting",
                    "--month", "2010-03");
    FAILS_UNCHANGED(2, "--amount: bad value '0.00' (dues paid are more than 0)", "activity",
                    "add", id, "--date", "2010-04-05", "--kind", "dues", "--month", "2010-04",
                    "--amount", "0.00");
    RUN(0, "activity", "list", "--member", "林术平", "--format", "csv");
    OUT_HAS("0.50");
    OUT_HAS("theme-day");
}

Test(cli, assessments_approvals_and_care_cases)
{
    township();
    char id[64], first[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "assess", id, "--year", "2010", "--side", "outflow", "--grade", "competent",
        "--note", "表现良好");
    snprintf(first, sizeof first, "%.36s", last.out);
    RUN(0, "assess", id, "--year", "2010", "--side", "outflow", "--grade", "excellent");
    cr_assert_str_eq(strtok(last.out, "\n"), first, "assessing again corrects the same record");
    cr_assert_not_null(strstr(last.err, "the 2010 outflow assessment of "), "%s", last.err);
    cr_assert_not_null(strstr(last.err, " was competent; it is now excellent"), "%s", last.err);
    cr_assert_eq(query_int("SELECT count(*) FROM assessments WHERE grade = 'excellent'"
                           " AND coalesce(note, '') = ''"), 1,
                 "the note of the assessment replaced goes with it");
    FAILS_UNCHANGED(2, "--grade: bad value 'great'", "assess", id, "--year", "2010", "--side",
                    "inflow", "--grade", "great");
    FAILS_UNCHANGED(2, "--year: bad value '10'", "assess", id, "--year", "10", "--side", "inflow",
                    "--grade", "competent");
    RUN(0, "approval", "add", id, "--date", "2010-01-15", "--decision", "approved");
    FAILS_UNCHANGED(2, "--decision: bad value 'maybe'", "approval", "add", id, "--date",
                    "2010-01-15", "--decision", "maybe");
    RUN(0, "care", "add", id, "--kind", "land-transfer", "--date", "2010-04-01", "--status",
        "closed");
    FAILS_UNCHANGED(2, "--kind: bad value 'pets'", "care", "add", id, "--kind", "pets", "--date",
                    "2010-04-01");
    FAILS_UNCHANGED(2, "MEMBER: no member 'nobody'", "care", "add", "nobody", "--kind", "elderly",
                    "--date", "2010-04-01");
    cr_assert_eq(query_int("SELECT count(*) FROM assessments"), 1);
    RUN(0, "approval", "list", "--member", "林术平", "--format", "csv");
    OUT_HAS("2010-01-15,,approved");
    RUN(0, "care", "add", id, "--kind", "elderly", "--date", "2010-05-01", "--note", "空巢老人");
    char care[64];
    snprintf(care, sizeof care, "%.36s", last.out);
    RUN(0, "care", "list", "--open", "--format", "csv");
    OUT_HAS(care);
    OUT_LACKS("land-transfer");
    RUN(0, "care", "close", care, "--note", "已安排邻居照看");
    RUN(0, "care", "list", "--open", "--format", "csv");
    OUT_LACKS(care);
    RUN(0, "care", "list", "--member", id, "--format", "csv");
    OUT_HAS("空巢老人；结案：已安排邻居照看");
    FAILS_UNCHANGED(2, "is already closed", "care", "close", care);
    FAILS_UNCHANGED(2, "CASE: no care case 'nosuch'", "care", "close", "nosuch");
}

Test(cli, honours_are_given_once_a_year_each_and_listed_by_year_then_pinyin)
{
    township();
    char lin[64], zhang[64], honour[64];
    snprintf(lin, sizeof lin, "%s", member("林术平", "longtan", "1960-08-10"));
    snprintf(zhang, sizeof zhang, "%s", member("张小平", "tingzi", "1972-03-02"));
    /* 张小平 first, so that the list's pinyin order (lin before zhang) is not the order
     * they were written in */
    RUN(0, "honour", "add", zhang, "--year", "2009", "--kind", "prosperous", "--date",
        "2010-01-20", "--note", "返乡投资办厂");
    RUN(0, "honour", "add", lin, "--year", "2009", "--kind", "prosperous");
    snprintf(honour, sizeof honour, "%.36s", last.out);
    RUN(0, "honour", "add", zhang, "--year", "2009", "--kind", "law-abiding");
    RUN(0, "honour", "add", lin, "--year", "2008", "--kind", "law-abiding");

    FAILS_UNCHANGED(2, "already holds the 2009 prosperous honour", "honour", "add", zhang,
                    "--year", "2009", "--kind", "prosperous");
    FAILS_UNCHANGED(2, "--kind: bad value 'brave'", "honour", "add", lin, "--year", "2010",
                    "--kind", "brave");
    FAILS_UNCHANGED(2, "--date: bad value '2009-12-31' (a year's honours are given in that"
                    " year or after it)", "honour", "add", lin, "--year", "2010", "--kind",
                    "prosperous", "--date", "2009-12-31");
    FAILS_UNCHANGED(2, "--year", "honour", "add", lin, "--kind", "prosperous");
    FAILS_UNCHANGED(2, "MEMBER: no member 'nobody'", "honour", "add", "nobody", "--year", "2010",
                    "--kind", "prosperous");

    /* 2008 before 2009; within 2009 勤劳致富能手 before 遵纪守法党员, and 林 before 张 */
    RUN(0, "honour", "list", "--format", "csv");
    const char *y2008 = strstr(last.out, ",2008,law-abiding,");
    const char *lin09 = strstr(last.out, ",2009,prosperous,") ;
    const char *zhang09 = lin09 ? strstr(lin09 + 1, ",2009,prosperous,") : NULL;
    const char *lawful09 = strstr(last.out, ",2009,law-abiding,");
    cr_assert(y2008 && lin09 && zhang09 && lawful09, "%s", last.out);
    cr_assert(y2008 < lin09 && zhang09 < lawful09, "%s", last.out);
    cr_assert(strstr(lin09, "林术平") < strstr(lin09, "张小平"), "%s", last.out);
    OUT_HAS("张小平,亭子村党支部,2010-01-20,返乡投资办厂");
    RUN(0, "honour", "list", "--year", "2008", "--format", "csv");
    OUT_HAS("林术平,龙潭村党支部");
    OUT_LACKS("2009");
    FAILS_UNCHANGED(2, "--year: bad value 'last'", "honour", "list", "--year", "last");
    RUN(0, "honour", "list");
    OUT_HAS("勤劳致富能手");
    OUT_HAS("遵纪守法党员");
    RUN(0, "member", "show", zhang);
    OUT_HAS("返乡投资办厂");

    /* a mistaken entry deleted can be given again */
    RUN(0, "delete", honour);
    RUN(0, "honour", "add", lin, "--year", "2009", "--kind", "prosperous");
}

Test(cli, help_for_members_in_difficulty_needs_what_its_kind_needs)
{
    township();
    char lin[64], zhang[64];
    snprintf(lin, sizeof lin, "%s", member("林术平", "longtan", "1960-08-10"));
    snprintf(zhang, sizeof zhang, "%s", member("张小平", "tingzi", "1972-03-02"));
    RUN(0, "support", "add", lin, "--kind", "pairing", "--date", "2010-03-01", "--helper",
        "镇组织办王明", "--note", "每月走访");
    RUN(0, "support", "add", lin, "--kind", "fund", "--date", "2010-03-15", "--amount", "500");
    RUN(0, "support", "add", zhang, "--kind", "training", "--date", "2010-04-01");
    RUN(0, "support", "add", zhang, "--kind", "employment", "--date", "2010-04-20");

    FAILS_UNCHANGED(2, "missing --helper", "support", "add", zhang, "--kind", "pairing",
                    "--date", "2010-03-01");
    FAILS_UNCHANGED(2, "--helper: bad value '王明' (only a pairing has a helper)", "support",
                    "add", zhang, "--kind", "fund", "--date", "2010-03-01", "--amount", "200",
                    "--helper", "王明");
    FAILS_UNCHANGED(2, "missing --amount", "support", "add", zhang, "--kind", "fund", "--date",
                    "2010-03-01");
    FAILS_UNCHANGED(2, "--amount: bad value '0' (a grant is more than 0)", "support", "add",
                    zhang, "--kind", "fund", "--date", "2010-03-01", "--amount", "0");
    FAILS_UNCHANGED(2, "only a grant from the fund has an amount", "support", "add", zhang,
                    "--kind", "training", "--date", "2010-03-01", "--amount", "200");
    FAILS_UNCHANGED(2, "--amount: bad value '-5'", "support", "add", zhang, "--kind", "fund",
                    "--date", "2010-03-01", "--amount", "-5");
    FAILS_UNCHANGED(2, "--kind: bad value 'loan'", "support", "add", zhang, "--kind", "loan",
                    "--date", "2010-03-01");
    FAILS_UNCHANGED(2, "--date", "support", "add", zhang, "--kind", "training");

    RUN(0, "support", "list", "--format", "csv");
    OUT_HAS("林术平,pairing,2010-03-01,镇组织办王明,,每月走访");
    OUT_HAS("林术平,fund,2010-03-15,,500.00,");
    RUN(0, "support", "list", "--kind", "fund", "--format", "csv");
    OUT_HAS("500.00");
    OUT_LACKS("pairing");
    OUT_LACKS("张小平");
    RUN(0, "support", "list", "--member", "张小平", "--format", "csv");
    OUT_HAS("training");
    OUT_HAS("employment");
    OUT_LACKS("林术平");
    FAILS_UNCHANGED(2, "--kind: bad value 'loan'", "support", "list", "--kind", "loan");
    RUN(0, "support", "list");
    OUT_HAS("结对帮扶");
    OUT_HAS("帮扶人 helper");
    RUN(0, "member", "show", lin, "--format", "csv");
    OUT_HAS("镇组织办王明");
}

Test(cli, delete_makes_a_mistaken_entry_a_tombstone_and_refuses_what_others_hang_off)
{
    township();
    char id[64], dues[64], ag[64], contact[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "activity", "add", id, "--date", "2010-03-05", "--kind", "dues", "--month", "2010-03",
        "--amount", "5");
    snprintf(dues, sizeof dues, "%.36s", last.out);
    RUN(0, "delete", dues);
    cr_assert_str_eq(strtok(last.out, "\n"), dues);
    ERR_HAS("activity ");
    cr_assert_eq(query_int("SELECT count(*) FROM activities WHERE deleted = 1"), 1);
    RUN(0, "activity", "list", "--format", "csv");
    OUT_LACKS(dues);
    RUN(0, "history", dues);
    OUT_HAS("(deleted)");
    FAILS_UNCHANGED(2, "was deleted", "delete", dues);
    FAILS_UNCHANGED(2, "RECORD: no record 'nosuch'", "delete", "nosuch");
    FAILS_UNCHANGED(2, "members and orgs are not deleted", "delete", id);
    FAILS_UNCHANGED(2, "members and orgs are not deleted", "delete", "longtan");
    RUN(0, "trip", "start", id, "--to", "dongguan", "--date", "2010-02-20");
    char trip[64];
    snprintf(trip, sizeof trip, "%.36s", last.out);
    FAILS_UNCHANGED(2, "a trip is ended ('liangdi trip end'), not deleted", "delete", trip);
    RUN(0, "agreement", "add", "--outflow", "longtan", "--inflow", "dongguan", "--signed",
        "2009-12-10");
    snprintf(ag, sizeof ag, "%.36s", last.out);
    RUN(0, "contact", "add", ag, "--date", "2010-03-01");
    snprintf(contact, sizeof contact, "%.36s", last.out);
    FAILS_UNCHANGED(2, "still has 1 contact(s) and visit(s): delete those first", "delete", ag);
    RUN(0, "delete", contact);
    RUN(0, "delete", ag);
    cr_assert_eq(query_int("SELECT count(*) FROM agreements WHERE deleted = 0"), 0);
    RUN(0, "agreement", "add", "--outflow", "longtan", "--inflow", "dongguan", "--signed",
        "2010-01-10");
}

/* ---------------------------------------------- export, history, report ---- */

Test(cli, export_is_one_stable_json_document)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    RUN(0, "export");
    char *first = strdup(last.out);
    cr_assert_eq(first[0], '{');
    OUT_HAS("\"records\"");
    OUT_HAS("\"org\": [");
    OUT_HAS("\"member\": [");
    OUT_HAS("\"care\": [");
    OUT_HAS("\"name\": \"林术平\"");
    OUT_HAS("\"hlc\": ");
    OUT_HAS("\"origin\": \"zhuyuan\"");
    RUN(0, "export");
    cr_assert_str_eq(last.out, first, "two exports of the same store are identical");
    free(first);
}

Test(cli, history_lists_every_change_of_a_record)
{
    township();
    char id[64];
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "member", "edit", id, "--phone", "13800000000");
    RUN(0, "history", id, "--format", "csv");
    OUT_HAS("zhuyuan");
    OUT_HAS("phone");
    OUT_HAS("13800000000");
    OUT_HAS("1960-08-10");
    RUN(0, "history", "林术平");
    OUT_HAS("13800000000");
    FAILS_UNCHANGED(2, "RECORD: no record 'nothing'", "history", "nothing");
}

/* A member re-sent whole to the branch of a new trip carries its fields' original stamps:
 * history lists each write once, by its author, not again as the copy's. */
Test(cli, history_lists_a_record_re_sent_to_a_branch_once)
{
    township();
    char id[64];
    snprintf(id, sizeof id, "%s", member("张小平", "tingzi", "1968-11-02"));
    RUN(0, "trip", "start", id, "--to", "dongguan", "--date", "2010-03-01");
    RUN(0, "history", id, "--format", "csv");
    const char *first = strstr(last.out, "1968-11-02");
    cr_assert(first != NULL, "history lacks the birth date:\n%s", last.out);
    cr_assert_null(strstr(first + 1, "1968-11-02"),
                   "the birth date is listed twice:\n%s", last.out);
}

Test(cli, conflicts_lists_the_conflict_log)
{
    township();
    RUN(0, "conflicts", "--format", "csv");
    OUT_HAS("record");
    OUT_LACKS("phone");
}

Test(cli, conflicts_shows_the_kept_and_the_lost_value_of_a_race)
{
    ld_error_t err;
    ld_change_t c;
    char id[64];
    township();
    snprintf(id, sizeof id, "%s", member("林术平", "longtan", "1960-08-10"));
    RUN(0, "member", "edit", id, "--phone", "13800000001");
    /* Dongguan changed the phone a second before this node's write, never having seen it. */
    long long ours = query_int("SELECT hlc FROM members");
    nd_store_t *s = nd_store_open(db, false, &err);
    cr_assert_not_null(s, "%s", err.msg);
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    snprintf(c.origin, sizeof c.origin, "dongguan");
    c.seq = 1;
    c.hlc = ld_hlc_make(ld_hlc_ms((uint64_t) ours) - 1000, 0);
    cr_assert_eq(ld_change_set(&c, "phone", "13900000002", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_add_audience(&c, "zhuyuan", &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    nd_store_destroy(&s);
    RUN(0, "conflicts", "--format", "csv");
    OUT_HAS("member");
    OUT_HAS(id);
    OUT_HAS("phone,13800000001,zhuyuan");
    OUT_HAS("13900000002,dongguan");
}

Test(cli, report_runs_and_refuses_a_bad_date)
{
    township();
    RUN(0, "report", "--as-of", "2010-07-01");
    RUN(0, "report", "--as-of", "2010-07-01", "--format", "html");
    OUT_HAS("<");
    FAILS_UNCHANGED(2, "--as-of: bad value '2010-02-30' (no such date)", "report", "--as-of",
                    "2010-02-30");
}

/* ------------------------------------------------- status, sync, backup ---- */

Test(cli, status_counts_records_and_says_an_unreachable_broker_is_unreachable)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    RUN(0, "status", "--format", "csv");
    OUT_HAS("records: members,1");
    OUT_HAS("records: orgs,4");
    OUT_HAS("never");
    OUT_LACKS("broker reachable");
    RUN(0, "broker", "set", "tcp://127.0.0.1:9", "--key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    RUN(0, "status", "--format", "csv");
    OUT_HAS("broker reachable,no (");
}

Test(cli, sync_without_a_broker_or_with_an_unreachable_one_fails_in_one_line)
{
    township();
    RUN(2, "sync");
    ERR_HAS("no broker set");
    FAILS_UNCHANGED(2, "--timeout: bad value 'soon'", "sync", "--timeout", "soon");
    RUN(0, "broker", "set", "tcp://127.0.0.1:9", "--key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    RUN(1, "sync", "--timeout", "1");
    ERR_HAS("unreachable");
    FAILS_UNCHANGED(2, "--interval: bad value 'often'", "daemon", "--interval", "often");
}

/* Starts `liangdi daemon` against an unreachable broker, its stderr in daemon.err, and
 * waits (up to 20 s) until it says so: from then on it has the store open. */
static pid_t start_daemon(void)
{
    char err_path[320], conf[400];
    RUN(0, "broker", "set", "tcp://127.0.0.1:9", "--key", "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I");
    write_text("d.conf", "[node]\ntimeout = 1\nlog_level = info\n");
    snprintf(err_path, sizeof err_path, "%s/daemon.err", dir);
    snprintf(conf, sizeof conf, "%s/d.conf", dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o = open("/dev/null", O_WRONLY);
        if (e < 0 || o < 0)
            _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execl(bin, bin, "daemon", "--interval", "1s", "--config", conf, (char *) NULL);
        _exit(127);
    }
    char *text = NULL;
    for (int i = 0; i < 400; i++) {
        free(text);
        text = slurp(err_path, NULL);
        if (strstr(text, "still trying"))
            break;
        usleep(50 * 1000);   /* poll until the deadline */
    }
    bool said = strstr(text, "unreachable") != NULL;
    if (!said)
        kill(pid, SIGKILL);
    cr_assert(said, "daemon said: %s", text);
    free(text);
    return pid;
}

/* Stops the daemon with SIGTERM: it must exit 0 within 10 s. */
static void stop_daemon(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 200 && done == 0; i++) {
        done = waitpid(pid, &st, WNOHANG);
        if (done == 0)
            usleep(50 * 1000);   /* poll until the deadline */
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("the daemon did not stop within 10 s of SIGTERM");
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon exit status %d", st);
}

Test(cli, daemon_keeps_trying_an_unreachable_broker_and_stops_cleanly_on_sigterm)
{
    township();
    stop_daemon(start_daemon());
}

Test(cli, backup_writes_a_consistent_copy)
{
    char copy[400];
    township();
    member("林术平", "longtan", "1960-08-10");
    RUN(0, "backup", "copy.db");
    snprintf(copy, sizeof copy, "%s/copy.db", dir);
    RUN(0, "--db", copy, "member", "list", "--format", "csv");
    OUT_HAS("林术平");
    RUN(2, "backup", db);
    ERR_HAS("the store itself");
    /* never over a file: the keypair beside the store, or an earlier backup */
    char key[400];
    snprintf(key, sizeof key, "%s.key", db);
    write_text("node.db.key", "keypair\n");
    FAILS_UNCHANGED(2, "already exists: give a new name", "backup", key);
    FAILS_UNCHANGED(2, "already exists", "backup", "copy.db");
    size_t len = 0;
    char *kept = slurp(key, &len);
    cr_assert_str_eq(kept, "keypair\n", "the file named is left as it was");
    free(kept);
}

Test(cli, digest_lists_what_is_shared_with_a_branch_and_refuses_other_nodes)
{
    township();
    const char *id = member("林术平", "longtan", "1960-08-10");
    member("张厚英", "tingzi", "1972-03-01");                      /* stays at home */
    RUN(0, "trip", "start", id, "--to", "dongguan", "--date", "2010-02-20");
    RUN(0, "digest", "--with", "dongguan");
    OUT_HAS("records zhuyuan shares with dongguan");
    OUT_HAS("member      1 ");
    OUT_HAS("trip        1 ");
    OUT_HAS("all         ");
    RUN(0, "digest", "--with", "dongguan", "--records", "--format", "csv");
    OUT_HAS(id);
    FAILS_UNCHANGED(2, "missing --with", "digest");
    FAILS_UNCHANGED(2, "that is this node", "digest", "--with", "zhuyuan");
    FAILS_UNCHANGED(2, "expected a node id", "digest", "--with", "东莞");
    FAILS_UNCHANGED(2, "no trip or agreement here joins", "digest", "--with", "shenzhen");
}

/* Rewrites the store with 4 KiB pages, as stores made before 16 KiB pages were. */
static void make_pages_4k(void)
{
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 4096; "
                              "VACUUM; PRAGMA journal_mode = WAL;", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    cr_assert_eq(query_int("PRAGMA page_size"), 4096);
}

Test(cli, compact_gives_an_old_store_16_KiB_pages_and_keeps_every_record)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    member("张厚英", "tingzi", "1972-03-01");
    make_pages_4k();
    RUN(0, "status");
    OUT_HAS("pages of 4096 bytes");
    OUT_HAS("`liangdi compact`, with the daemon stopped");
    RUN(0, "export");
    char *before = strdup(last.out);
    RUN(0, "compact");
    ERR_HAS("compacted");
    ERR_HAS("pages of 4096 bytes to 16384");
    cr_assert_eq(last.out[0], '\0', "nothing on stdout: %s", last.out);
    cr_assert_eq(query_int("PRAGMA page_size"), 16384);
    RUN(0, "export");
    cr_assert_str_eq(last.out, before, "the same records after compacting");
    free(before);
    RUN(0, "status");
    OUT_HAS("pages of 16384 bytes");
    OUT_LACKS("`liangdi compact`");
    RUN(0, "member", "add", "--name", "王亚", "--org", "longtan");   /* and it takes writes */
}

/* A compaction cut short between its steps leaves the store out of WAL mode, whole: the
 * next command puts it back. */
Test(cli, a_store_left_out_of_wal_mode_is_put_back_by_the_next_command)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    RUN(0, "member", "list", "--format", "csv");
    OUT_HAS("林术平");
    RUN(0, "member", "add", "--name", "王亚", "--org", "longtan");
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

Test(cli, compact_refuses_while_the_daemon_has_the_store_and_changes_nothing)
{
    township();
    member("林术平", "longtan", "1960-08-10");
    make_pages_4k();
    RUN(0, "export");
    char *before = strdup(last.out);
    pid_t daemon = start_daemon();
    RUN(1, "compact");
    ERR_HAS("open in another process");
    ERR_HAS("stop what has it open: `liangdi daemon` and the sync timer");
    cr_assert_eq(query_int("PRAGMA page_size"), 4096);
    stop_daemon(daemon);
    RUN(0, "export");
    cr_assert_str_eq(last.out, before);
    RUN(0, "compact");
    cr_assert_eq(query_int("PRAGMA page_size"), 16384);
    free(before);
}

Test(cli, compact_takes_no_arguments_and_needs_a_store)
{
    RUN(1, "compact");
    ERR_HAS("no store");
    township();
    FAILS_UNCHANGED(2, "unexpected argument", "compact", "now");
}

/* -------------------------------------------------------------- config ---- */

Test(cli, config_gives_the_db_and_flags_override_it)
{
    char conf[512], other[400];
    snprintf(other, sizeof other, "%s/from-config.db", dir);
    snprintf(conf, sizeof conf, "[node]\ndb = %s\n", other);
    write_text("node.conf", conf);
    unsetenv("LIANGDI_DB");
    RUN(0, "--config", "node.conf", "init", "--node", "dongguan", "--name", "东莞");
    cr_assert_eq(access(other, F_OK), 0, "the config's db was used");
    RUN(0, "--config", "node.conf", "--db", db, "init", "--node", "zhuyuan", "--name", "竹园");
    cr_assert_eq(access(db, F_OK), 0, "--db overrides the config");
    setenv("LIANGDI_CONFIG", "node.conf", 1);
    RUN(0, "status", "--format", "csv");
    OUT_HAS("dongguan");
}

Test(cli, status_shows_and_probes_the_config_broker_without_writing_it)
{
    RUN(0, "init", "--node", "zhuyuan", "--name", "竹园镇党委", "--broker", "tcp://127.0.0.1:1",
        "--broker-key", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    write_text("node.conf", "[node]\nbroker = tcp://127.0.0.1:2\n");
    snapshot_t before = snap();
    RUN(0, "--config", "node.conf", "status", "--format", "csv");
    OUT_HAS("tcp://127.0.0.1:2");
    OUT_LACKS("tcp://127.0.0.1:1");
    assert_unchanged(&before);
    RUN(0, "status", "--format", "csv");
    OUT_HAS("tcp://127.0.0.1:1");
}

Test(cli, config_report_thresholds_hold_for_the_report_without_being_stored)
{
    township();
    write_text("r.conf", "[report]\nlife_warn_months = 2\n");
    snapshot_t before = snap();
    RUN(0, "report", "--config", "r.conf", "--as-of", "2010-07-01", "--format", "csv");
    OUT_HAS("report.life_warn_months),2");
    assert_unchanged(&before);
    RUN(0, "report", "--as-of", "2010-07-01", "--format", "csv");
    OUT_HAS("report.life_warn_months),5");
}

Test(cli, config_errors_name_file_and_line_with_exit_2)
{
    township();
    write_text("bad.conf", "[node]\ntimeout = 5\ncolour = blue\n");
    FAILS_UNCHANGED(2, "bad.conf:3: unknown key 'colour' in [node]", "--config", "bad.conf",
                    "org", "list");
    write_text("bad2.conf", "[node]\ninterval = often\n");
    FAILS_UNCHANGED(2, "bad2.conf:2: bad value 'often' for interval", "org", "list", "--config",
                    "bad2.conf");
    FAILS_UNCHANGED(2, "--config: bad value 'absent.conf' (no such file)", "org", "list",
                    "--config", "absent.conf");
}
