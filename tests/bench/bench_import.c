/* bench_import.c: times `liangdi member import` of 100,000 members (target: 50,000
 * rows/s) beside SQLite's own rate for the same rows in the same run.
 *
 * The binary is $LIANGDI_BIN, else the build tree's.  The baseline inserts the same
 * rows with one prepared INSERT in one transaction into a table of the same columns
 * (WAL, and the `synchronous` level the store itself uses, read from an open store).
 * Usage: bench_import [rows]. */
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include "store.h"
#include "text.h"
#include "uuid.h"

#define TARGET_ROWS_S 50000.0
#define BRANCHES      40

extern char **environ;

static char dir[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_import: %s: %s\n", what, msg);
    if (dir[0])
        remove_dir();
    exit(2);
}

static const char *liangdi_bin(void)
{
    const char *bin = getenv("LIANGDI_BIN");
    if (bin && bin[0])
        return bin;
#ifdef LIANGDI_BIN_DEFAULT
    return LIANGDI_BIN_DEFAULT;
#else
    return "liangdi";
#endif
}

/* Runs liangdi with args (NULL-terminated), its output to log; returns its exit status. */
static int run(const char *log, const char *const *args)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *) liangdi_bin();
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *) args[i];
    argv[n] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot start", argv[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid", argv[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void must_run(const char *log, const char *const *args)
{
    if (run(log, args) != 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(see %s)\n", log);
        die("liangdi failed", args[2]);
    }
}

/* One member row: name, org, gender, born, joined, phone, id number. */
typedef struct row {
    char name[32], org[24], gender[8], born[11], joined[11], phone[24], idnum[24];
} row_t;

static void make_row(long i, row_t *r)
{
    static const char surnames[] = "刘张李王陈杨谭向冉熊周黄徐余邓何吴蒋彭罗";
    static const char given[] = "平明华军伟强勇斌涛林国建兵波超刚海峰东文术小大成永德志洪光正"
                                "家世天远先春庆秀英兰梅燕玉丽红琴芳凤霞云";
    size_t nsur = (sizeof surnames - 1) / 3, ngiven = (sizeof given - 1) / 3;
    long k = i;
    size_t s = (size_t) (k % (long) nsur);
    k /= (long) nsur;
    size_t g1 = (size_t) (k % (long) ngiven);
    k /= (long) ngiven;
    size_t g2 = (size_t) (k % (long) ngiven);
    k /= (long) ngiven;
    size_t g3 = (size_t) (k % (long) ngiven);
    snprintf(r->name, sizeof r->name, "%.3s%.3s%.3s%.3s", surnames + 3 * s, given + 3 * g1,
             given + 3 * g2, given + 3 * g3);
    snprintf(r->org, sizeof r->org, "b%02ld", i % BRANCHES);
    bool female = i % 12 == 0;
    snprintf(r->gender, sizeof r->gender, "%s", female ? "female" : "male");
    int32_t born = ld_date_join(1960, 1, 1) + (int32_t) (i % 9000);
    int32_t joined = born + 365 * 22 + (int32_t) (i % 2000);
    ld_date_format(born, r->born);
    ld_date_format(joined, r->joined);
    snprintf(r->phone, sizeof r->phone, "139%08ld", i % 100000000);
    /* 18-character resident id: region, birth date, sequence (odd = male), check */
    int y, m, d;
    ld_date_split(born, &y, &m, &d);
    int seq = (int) (i / 9000) * 2 + (female ? 0 : 1);
    char base[24];
    snprintf(base, sizeof base, "500236%04d%02d%02d%03d", y % 10000, m % 100, d % 100,
             (seq % 1000 + 1000) % 1000);
    static const int weight[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    int sum = 0;
    for (int j = 0; j < 17; j++)
        sum += (base[j] - '0') * weight[j];
    memcpy(r->idnum, base, 17);
    r->idnum[17] = "10X98765432"[sum % 11];
    r->idnum[18] = '\0';
}

/* SQLite alone: the same rows, one prepared INSERT, one transaction.  Rows/s. */
static double sqlite_rate(const row_t *rows, long n, int synchronous)
{
    char path[300];
    snprintf(path, sizeof path, "%s/baseline.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %d", synchronous);
    if (sqlite3_exec(db, "PRAGMA page_size = 16384", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE TABLE \"members\" (\"id\" TEXT PRIMARY KEY, \"name\" TEXT,"
                     " \"org\" TEXT, \"gender\" TEXT, \"born\" TEXT, \"joined\" TEXT,"
                     " \"phone\" TEXT, \"id_number\" TEXT);"
                     "CREATE INDEX \"members_org\" ON \"members\" (\"org\")",
                     NULL, NULL, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO \"members\" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &st, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    double t = now_s();
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    for (long i = 0; i < n; i++) {
        char id[LD_UUID_LEN + 1];
        if (ld_uuid_new(id, NULL) != 0)
            die("baseline", "no uuid");
        const char *v[8] = { id, rows[i].name, rows[i].org, rows[i].gender, rows[i].born,
                             rows[i].joined, rows[i].phone, rows[i].idnum };
        for (int c = 0; c < 8; c++)
            sqlite3_bind_text(st, c + 1, v[c], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die("baseline insert", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    t = now_s() - t;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double) n / t;
}

/* The store's own synchronous level, and its member count. */
static void store_facts(const char *db_path, int *synchronous, long *members)
{
    ld_error_t err = { 0 };
    nd_store_t *store = nd_store_open(db_path, false, &err);
    if (!store)
        die("opening the store", err.msg);
    sqlite3_stmt *st = NULL;
    sqlite3 *db = nd_store_db(store);
    if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        die("PRAGMA synchronous", sqlite3_errmsg(db));
    *synchronous = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM \"members\" WHERE \"deleted\" = 0", -1, &st,
                           NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        die("counting members", sqlite3_errmsg(db));
    *members = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    nd_store_destroy(&store);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0)
        die("usage", "bench_import [rows]");
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/liangdi-bench-import-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    char db[300], csv[300], log[300];
    snprintf(db, sizeof db, "%s/zhuyuan.db", dir);
    snprintf(csv, sizeof csv, "%s/members.csv", dir);
    snprintf(log, sizeof log, "%s/liangdi.log", dir);

    row_t *rows = calloc((size_t) n, sizeof *rows);
    if (!rows)
        die("memory", "rows");
    FILE *f = fopen(csv, "w");
    if (!f)
        die("cannot write", csv);
    fputs("name,org,gender,born,joined,phone,id-number\n", f);
    for (long i = 0; i < n; i++) {
        make_row(i, &rows[i]);
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s\n", rows[i].name, rows[i].org, rows[i].gender,
                rows[i].born, rows[i].joined, rows[i].phone, rows[i].idnum);
    }
    if (fclose(f) != 0)
        die("cannot write", csv);

    const char *init[] = { "--db", db, "init", "--node", "zhuyuan", "--name", "竹园镇党委", NULL };
    must_run(log, init);
    const char *town[] = { "--db", db, "org", "add", "zhuyuan", "--name", "竹园镇党委",
                           "--kind", "township", NULL };
    must_run(log, town);
    for (int b = 0; b < BRANCHES; b++) {
        char id[16], name[64];
        snprintf(id, sizeof id, "b%02d", b);
        snprintf(name, sizeof name, "第%02d村党支部", b);
        const char *org[] = { "--db", db, "org", "add", id, "--name", name, "--kind",
                              b < 30 ? "village" : "community", "--parent", "zhuyuan", NULL };
        must_run(log, org);
    }

    const char *import[] = { "--db", db, "member", "import", csv, NULL };
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    double t = now_s();
    must_run(log, import);
    t = now_s() - t;
    getrusage(RUSAGE_CHILDREN, &after);
    double cpu = (double) (after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                 (double) (after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                 (double) (after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                 (double) (after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    double ours = (double) n / t;

    int synchronous = 0;
    long members = 0;
    store_facts(db, &synchronous, &members);
    if (members != n) {
        char msg[96];
        snprintf(msg, sizeof msg, "%ld members in the store after importing %ld", members, n);
        die("import", msg);
    }
    double theirs = sqlite_rate(rows, n, synchronous);
    free(rows);
    remove_dir();

    bool ok = ours >= TARGET_ROWS_S;
    double load[1] = { 0 };
    getloadavg(load, 1);
    printf("member import of %ld rows: %.2f s, %.0f rows/s (liangdi %s)\n", n, t, ours, liangdi_bin());
    printf("the import's CPU time: %.2f s (%.0f rows per CPU second); load average %.1f on %ld CPUs\n",
           cpu, cpu > 0 ? (double) n / cpu : 0.0, load[0], sysconf(_SC_NPROCESSORS_ONLN));
    printf("SQLite alone, same rows, one transaction, synchronous=%d: %.0f rows/s\n",
           synchronous, theirs);
    printf("ratio liangdi / SQLite: %.2f\n", ours / theirs);
    printf("summary: bench_import: %.0f rows/s (SQLite alone %.0f rows/s, ratio %.2f), "
           "target %.0f rows/s: %s\n", ours, theirs, ours / theirs, TARGET_ROWS_S,
           ok ? "met" : "NOT met");
    return ok ? 0 : 1;
}
