/* bench_report.c: times the compliance report over 100,000 mobile members and 1,000,000
 * activity entries (limit: 2 s) and prints the query plans it runs.
 *
 * The bench data is inserted straight into the store's tables with SQL, on purpose: the
 * one write path (nd_store_write) would spend minutes stamping and logging a million
 * changes, and it is not what is measured here.  The orgs go through nd_store_write so
 * that the store is a real one.  Usage: bench_report [members] [activities-per-member]. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "change.h"
#include "process.h"
#include "report.h"
#include "store.h"
#include "text.h"

#define LIMIT_S      2.0
#define BRANCHES     40
#define INFLOWS      5
#define AS_OF        "2011-12-15"

static const char *const life_kinds[] = { "theme-day", "committee", "group", "meeting", "lecture" };

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* A small deterministic generator (xorshift). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned) (rng_state % n);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_report: %s: %s\n", what, msg);
    exit(2);
}

static void check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die(what, sqlite3_errmsg(db));
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    return st;
}

static void exec(sqlite3 *db, const char *sql)
{
    check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}

static void bind(sqlite3_stmt *st, int i, const char *text)
{
    sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
}

static void step_reset(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        die(what, sqlite3_errmsg(db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void write_org(nd_store_t *store, const char *id, const char *name, const char *kind,
                      const char *parent, const char *node)
{
    ld_change_t c;
    ld_error_t err = { 0 };
    ld_change_init(&c);
    c.kind = LD_KIND_ORG;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    if (ld_change_set(&c, "name", name, &err) || ld_change_set(&c, "kind", kind, &err) ||
        (parent && ld_change_set(&c, "parent", parent, &err)) ||
        ld_change_set(&c, "node", node, &err) || nd_store_write(store, &c, &err))
        die("writing an org", err.msg);
    ld_change_clear(&c);
}

/* A UUID-shaped id, unique per (kind, n) for n < 2^32. */
static void fake_uuid(char out[37], unsigned kind, unsigned long n)
{
    snprintf(out, 37, "%08x-%04x-4000-8000-%012" PRIx64, (unsigned) (n & 0xffffffffu),
             kind & 0xffffu, (uint64_t) ((n * 2654435761ul) & 0xffffffffffffull));
}

static void date_of(int32_t day, char out[11])
{
    ld_date_format(day, out);
}

/* Fills the store: orgs through the write path, the rest straight into the tables. */
static void fill(nd_store_t *store, long members, int per_member)
{
    write_org(store, "zhuyuan", "竹园镇党委", "township", NULL, "zhuyuan");
    static const char *const inflow_names[INFLOWS] = {
        "中共竹园镇外出创业群体广东东莞支部委员会", "中共竹园镇外出创业群体广东深圳支部委员会",
        "竹园镇流动党员浙江宁波支部", "竹园镇流动党员福建厦门支部", "竹园镇流动党员重庆主城支部",
    };
    static const char *const inflow_ids[INFLOWS] = { "dongguan", "shenzhen", "ningbo", "xiamen", "zhucheng" };
    for (int i = 0; i < INFLOWS; i++)
        write_org(store, inflow_ids[i], inflow_names[i], "mobile", "zhuyuan", inflow_ids[i]);
    for (int b = 0; b < BRANCHES; b++) {
        char id[16], name[64];
        snprintf(id, sizeof id, "b%02d", b);
        snprintf(name, sizeof name, "第%02d村党支部", b);
        write_org(store, id, name, b < 30 ? "village" : "community", "zhuyuan", "zhuyuan");
    }

    sqlite3 *db = nd_store_db(store);
    exec(db, "BEGIN");
    sqlite3_stmt *mem = prep(db,
        "INSERT INTO \"members\" (\"id\", \"name\", \"org\", \"gender\", \"born\", \"joined\","
        " \"phone\", \"deleted\", \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, ?3, ?4, '1980-01-01', '2005-07-01', '13900000000', 0, 1, 'zhuyuan', '', 'zhuyuan')");
    sqlite3_stmt *trip = prep(db,
        "INSERT INTO \"trips\" (\"id\", \"member\", \"to\", \"started\", \"reported_in\", \"status\","
        " \"deleted\", \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 1, 'zhuyuan', '', 'zhuyuan')");
    sqlite3_stmt *act = prep(db,
        "INSERT INTO \"activities\" (\"id\", \"member\", \"date\", \"kind\", \"month\", \"amount\","
        " \"deleted\", \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 1, 'zhuyuan', '', 'zhuyuan')");
    sqlite3_stmt *ass = prep(db,
        "INSERT INTO \"assessments\" (\"id\", \"member\", \"year\", \"side\", \"grade\","
        " \"deleted\", \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, 2010, ?3, 'competent', 0, 1, 'zhuyuan', '', 'zhuyuan')");
    static const char *const surnames = "刘张李王陈杨谭向冉熊周黄徐余邓何吴蒋彭罗";
    int32_t base = ld_date_join(2010, 1, 1);
    unsigned long nact = 0, nassess = 0;
    for (long i = 0; i < members; i++) {
        char id[37], tid[37], aid[37], name[64], org[16], started[11], reported[11], date[11],
             month[8];
        fake_uuid(id, 1, (unsigned long) i);
        fake_uuid(tid, 2, (unsigned long) i);
        size_t s = (size_t) (i % 20) * 3;       /* a 3-byte character */
        snprintf(name, sizeof name, "%.3s成员%06ld", surnames + s, i);
        snprintf(org, sizeof org, "b%02d", (int) (i % BRANCHES));
        bind(mem, 1, id);
        bind(mem, 2, name);
        bind(mem, 3, org);
        bind(mem, 4, i % 12 == 0 ? "female" : "male");
        step_reset(db, mem, "inserting a member");

        int32_t left = base + (int32_t) rnd(365);
        date_of(left, started);
        date_of(left + 3 + (int32_t) rnd(20), reported);
        unsigned roll = rnd(100);
        bind(trip, 1, tid);
        bind(trip, 2, id);
        bind(trip, 3, (i % 10) < 6 ? "dongguan" : inflow_ids[1 + i % (INFLOWS - 1)]);
        bind(trip, 4, started);
        if (roll >= 3)
            bind(trip, 5, reported);
        bind(trip, 6, roll < 3 ? "registered" : roll < 5 ? "lost-contact" : "reported-in");
        step_reset(db, trip, "inserting a trip");

        /* per_member entries about a month apart up to early December 2011: life and
         * dues alternately, a study now and then; 1 in 8 members stopped months ago */
        int32_t last = ld_date_join(2011, 12, 10);
        if (i % 8 == 7)
            last -= 120 + (int32_t) rnd(120);
        for (int k = 0; k < per_member; k++) {
            int32_t d = last - (per_member - 1 - k) * 30 - (int32_t) rnd(5);
            date_of(d, date);
            fake_uuid(aid, 3, nact++);
            bind(act, 1, aid);
            bind(act, 2, id);
            bind(act, 3, date);
            if (k % 2 == 1) {
                int y, mo, dd;
                ld_date_split(d, &y, &mo, &dd);
                snprintf(month, sizeof month, "%04d-%02d", y, mo);
                bind(act, 4, "dues");
                bind(act, 5, month);
                sqlite3_bind_int(act, 6, 500);
            } else {
                bind(act, 4, k % 10 == 8 ? "study" : life_kinds[k % 5]);
            }
            step_reset(db, act, "inserting an activity");
        }
        for (int side = 0; side < 2; side++) {
            if (rnd(100) < 4)
                continue;
            fake_uuid(aid, 4, nassess++);
            bind(ass, 1, aid);
            bind(ass, 2, id);
            bind(ass, 3, side ? "inflow" : "outflow");
            step_reset(db, ass, "inserting an assessment");
        }
    }
    sqlite3_finalize(mem);
    sqlite3_finalize(trip);
    sqlite3_finalize(act);
    sqlite3_finalize(ass);

    /* agreements between each branch and each inflow branch, a contact and a visit each */
    sqlite3_stmt *agr = prep(db,
        "INSERT INTO \"agreements\" (\"id\", \"outflow\", \"inflow\", \"signed\", \"deleted\","
        " \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, ?3, '2009-12-01', 0, 1, 'zhuyuan', '', 'zhuyuan')");
    sqlite3_stmt *con = prep(db,
        "INSERT INTO \"contacts\" (\"id\", \"agreement\", \"date\", \"channel\", \"deleted\","
        " \"hlc\", \"origin\", \"stamps\", \"created_by\")"
        " VALUES (?1, ?2, ?3, 'phone', 0, 1, 'zhuyuan', '', 'zhuyuan')");
    unsigned long n = 0;
    for (int b = 0; b < BRANCHES; b++)
        for (int f = 0; f < INFLOWS; f++) {
            char id[37], cid[37], org[16];
            fake_uuid(id, 5, n);
            snprintf(org, sizeof org, "b%02d", b);
            bind(agr, 1, id);
            bind(agr, 2, org);
            bind(agr, 3, inflow_ids[f]);
            step_reset(db, agr, "inserting an agreement");
            static const char *const dates[] = { "2010-03-01", "2010-09-01", "2011-03-01", "2011-09-01" };
            for (int h = 0; h < 4; h++) {
                if ((b + f + h) % 7 == 0)
                    continue;
                fake_uuid(cid, 6, n * 4 + (unsigned long) h);
                bind(con, 1, cid);
                bind(con, 2, id);
                bind(con, 3, dates[h]);
                step_reset(db, con, "inserting a contact");
            }
            n++;
        }
    sqlite3_finalize(agr);
    sqlite3_finalize(con);
    exec(db, "COMMIT");
    fprintf(stderr, "bench_report: %ld members, %lu activities, %lu assessments, %lu agreements\n",
            members, nact, nassess, n);
}

/* Counts the plan lines that read all of activities once per row of something else:
 * a SCAN of activities nested in a subquery (indented deeper than the query's top
 * level) or as an inner loop (after another SCAN or SEARCH of the same query).  One
 * scan as a query's only loop is what the report does on purpose. */
static int bad_plan_lines(const char *plan)
{
    int bad = 0, loops = 0;
    for (const char *line = plan; line && *line; ) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int) (len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        size_t indent = strspn(buf, " ");
        if (indent == 0)
            loops = 0;                      /* a query's name: a new block */
        else {
            bool scan = strncmp(buf + indent, "SCAN ", 5) == 0;
            bool loop = scan || strncmp(buf + indent, "SEARCH ", 7) == 0;
            if (scan && strstr(buf, "activities") && (indent > 2 || loops > 0)) {
                printf("per-row scan: %s\n", buf + indent);
                bad++;
            }
            loops += loop;
        }
        line = end ? end + 1 : NULL;
    }
    return bad;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    ld_process_init(LD_SQLITE_ONE_THREAD);     /* as `liangdi` starts: process.h */
    long members = argc > 1 ? atol(argv[1]) : 100000;
    int per_member = argc > 2 ? atoi(argv[2]) : 10;
    if (members <= 0 || per_member <= 0)
        die("usage", "bench_report [members] [activities-per-member]");
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/liangdi-bench-report-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    const char *keep = getenv("LIANGDI_BENCH_KEEP");   /* keep the store at this path */
    if (keep && keep[0])
        snprintf(path, sizeof path, "%s", keep);

    ld_error_t err = { 0 };
    nd_store_t *store = nd_store_open(path, true, &err);
    if (!store)
        die("opening the store", err.msg);
    if (nd_store_init_node(store, "zhuyuan", "竹园镇党委", &err))
        die("init", err.msg);
    double t0 = now_s();
    fill(store, members, per_member);
    fprintf(stderr, "bench_report: data built in %.1f s\n", now_s() - t0);

    int32_t as_of;
    ld_date_parse(AS_OF, &as_of);
    FILE *devnull = fopen("/dev/null", "w");
    if (!devnull)
        die("/dev/null", "cannot open");
    double best = 1e9, first = 0, cpu_best = 1e9;
    for (int run = 0; run < 3; run++) {
        double t = now_s(), cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (nd_report_print(store, as_of, ND_FMT_TABLE, devnull, &err))
            die("report", err.msg);
        t = now_s() - t;
        cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu;
        if (run == 0)
            first = t;
        if (t < best)
            best = t;
        if (cpu < cpu_best)
            cpu_best = cpu;
    }
    double tj = now_s();
    if (nd_report_print(store, as_of, ND_FMT_JSON, devnull, &err))
        die("report", err.msg);
    tj = now_s() - tj;
    fclose(devnull);

    char *plan = NULL;
    size_t plan_len = 0;
    FILE *pf = open_memstream(&plan, &plan_len);
    if (!pf || nd_report_explain(store, as_of, pf, &err))
        die("explain", err.msg);
    fclose(pf);
    printf("query plans (EXPLAIN QUERY PLAN) of the report as of %s:\n%s", AS_OF, plan);
    int bad = bad_plan_lines(plan);
    free(plan);
    nd_store_destroy(&store);
    remove_dir(dir);

    bool ok = best < LIMIT_S && bad == 0;
    double load[1] = { 0 };
    getloadavg(load, 1);
    printf("\nreport over %ld members and %ld activities: first run %.3f s, best of 3 %.3f s "
           "(json %.3f s); limit %.1f s\n", members, members * per_member, first, best, tj, LIMIT_S);
    printf("CPU time of the best run: %.3f s; load average while measuring: %.1f on %ld CPUs%s\n",
           cpu_best, load[0], sysconf(_SC_NPROCESSORS_ONLN),
           best >= LIMIT_S && cpu_best < LIMIT_S ? " (the wall time is the machine's load)" : "");
    printf("plan lines reading activities once per row of something else: %d\n", bad);
    printf("summary: bench_report: %.3f s for %ld members / %ld activities (limit %.1f s), "
           "plans %s: %s\n", best, members, members * per_member, LIMIT_S,
           bad ? "scan activities per row" : "read activities once", ok ? "met" : "NOT met");
    return ok ? 0 : 1;
}
