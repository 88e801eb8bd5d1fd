/* test_need_to_know.c: need-to-know end to end with the real binaries, across the home
 * node "zhuyuan", the branch nodes "dongguan" and "shenzhen" and one broker. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "codec.h"
#include "harness.h"

#define ID_MAX    (LD_RECORD_ID_MAX + 1)
#define BOOK_MAX  128
#define REFS_MAX  3
#define ARGV_MAX  16

static hn_world_t world;
static hn_node_t *zhuyuan;
static hn_node_t *dongguan;
static hn_node_t *shenzhen;

/* The orgs of the township, created on zhuyuan: who keeps each, and its parent. */
typedef struct org_def {
    const char *id;
    const char *name;
    const char *kind;
    const char *parent;
    const char *node;
} org_def_t;

static const org_def_t orgs[] = {
    { "zhuyuan",    "竹园镇党委",   "township", NULL,      "zhuyuan" },
    { "longtan",    "龙潭村支部",   "village",  "zhuyuan", "zhuyuan" },
    { "tingzi",     "亭子村支部",   "village",  "zhuyuan", "zhuyuan" },
    { "shuangping", "双坪社区支部", "community", "zhuyuan", "zhuyuan" },
    { "dgb",        "中共竹园镇外出创业群体广东东莞支部委员会", "mobile", "zhuyuan", "dongguan" },
    { "szb",        "中共竹园镇外出创业群体广东深圳支部委员会", "mobile", "zhuyuan", "shenzhen" },
};
#define NORGS (sizeof orgs / sizeof orgs[0])

/* The record tables, as the schema names them. */
static const char *const tables[] = {
    "orgs", "members", "trips", "agreements", "contacts", "visits", "activities",
    "assessments", "approvals", "cares", "honours", "supports",
};
#define NTABLES (sizeof tables / sizeof tables[0])

/* The member-scoped tables: a member's own row, and the rows naming it in "member". */
static const char *const member_tables[] = {
    "members", "trips", "activities", "assessments", "approvals", "cares", "honours",
    "supports",
};
#define NMEMBER_TABLES (sizeof member_tables / sizeof member_tables[0])

/* ------------------------------------------------------------ the world ---- */

static void setup(void)
{
    cr_assert_eq(hn_world_init(&world, "ntk"), 0, "the broker did not start");
    zhuyuan = hn_world_node(&world, "zhuyuan", "竹园镇党委", true);
    dongguan = hn_world_node(&world, "dongguan", orgs[4].name, true);
    shenzhen = hn_world_node(&world, "shenzhen", orgs[5].name, true);
    cr_assert(zhuyuan != NULL && dongguan != NULL && shenzhen != NULL, "a node was not set up");
    cr_assert_eq(hn_link(&world, "zhuyuan", "dongguan"), 0);
    cr_assert_eq(hn_link(&world, "zhuyuan", "shenzhen"), 0);
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(need_to_know, .init = setup, .fini = teardown, .timeout = 300);

/* Runs `liangdi ARGS` on n (args NULL-terminated, at most ARGV_MAX - 1) into r. */
static void run(hn_node_t *n, hn_result_t *r, const char *const *args)
{
    const char *a[ARGV_MAX] = { 0 };
    size_t i = 0;
    for (; i < ARGV_MAX - 1 && args[i] != NULL; i++)
        a[i] = args[i];
    cr_assert_null(args[i], "liangdi %s: more than %d arguments", args[0], ARGV_MAX - 1);
    cr_assert_eq(hn_node_cmd(n, r, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                             a[10], a[11], a[12], a[13], a[14], NULL), 0,
                 "liangdi %s could not be run", a[0]);
}

/* Runs a liangdi command on n that must succeed; the id it prints into id (may be NULL). */
static void ok(hn_node_t *n, char *id, const char *const *args)
{
    hn_result_t r;
    run(n, &r, args);
    cr_assert_eq(r.status, 0, "liangdi %s %s on %s failed: %s", args[0],
                 args[1] != NULL ? args[1] : "", n->id, r.err);
    if (id != NULL)
        cr_assert_eq(hn_printed_id(&r, id, ID_MAX), 0, "no id printed by liangdi %s %s", args[0],
                     args[1] != NULL ? args[1] : "");
    hn_result_free(&r);
}

static void sync_ok(hn_node_t *n)
{
    cr_assert_eq(hn_sync(n), 0, "liangdi sync on %s failed (output above)", n->id);
}

/* The township's orgs, written on zhuyuan. */
static void township(void)
{
    for (size_t i = 0; i < NORGS; i++) {
        const org_def_t *o = &orgs[i];
        ok(zhuyuan, NULL,
           (const char *const[]){ "org", "add", o->id, "--name", o->name, "--kind", o->kind,
                                  "--node", o->node, o->parent != NULL ? "--parent" : NULL,
                                  o->parent, NULL });
    }
}

/* A member of `org` added on zhuyuan; with `to`, on a trip there (trip id into trip). */
static void member(const char *name, const char *org, const char *to, const char *date,
                   char id[ID_MAX], char trip[ID_MAX])
{
    ok(zhuyuan, id,
       (const char *const[]){ "member", "add", "--name", name, "--org", org, "--gender", "male",
                              "--born", "1978-04-12", NULL });
    if (to != NULL)
        ok(zhuyuan, trip,
           (const char *const[]){ "trip", "start", id, "--to", to, "--date", date, "--employer",
                                  "东莞市长安镇五金厂", "--reason", "务工", NULL });
}

/* Zhuyuan moves member a from Dongguan to Shenzhen: it ends the Dongguan trip on
 * 2010-09-30 (transferred) and starts one to Shenzhen on 2010-10-08, whose id goes to
 * trip. */
static void move_to_shenzhen(const char *a, char trip[ID_MAX])
{
    ok(zhuyuan, NULL, (const char *const[]){ "trip", "end", a, "--date", "2010-09-30", "--why",
                                             "transferred", NULL });
    ok(zhuyuan, trip, (const char *const[]){ "trip", "start", a, "--to", "szb", "--date",
                                             "2010-10-08", NULL });
}

/* ------------------------------------------------------------ the stores ---- */

static sqlite3 *open_ro(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    cr_assert_eq(rc, SQLITE_OK, "cannot open %s: %s", path,
                 db != NULL ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    cr_assert_eq(rc, SQLITE_OK, "preparing %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/* One integer from a query on the store at path with up to two text values bound. */
static int64_t query_int(const char *path, const char *sql, const char *a1, const char *a2)
{
    sqlite3 *db = open_ro(path);
    sqlite3_stmt *st = prepare(db, sql);
    if (a1 != NULL)
        cr_assert_eq(sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC), SQLITE_OK);
    if (a2 != NULL)
        cr_assert_eq(sqlite3_bind_text(st, 2, a2, -1, SQLITE_STATIC), SQLITE_OK);
    int rc = sqlite3_step(st);
    cr_assert_eq(rc, SQLITE_ROW, "%s on %s: %s", sql, path, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Whether the store holds a row of `table` (from tables[]) with that id. */
static bool holds(hn_node_t *n, const char *table, const char *id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE \"id\" = ?1", table);
    return query_int(n->db, sql, id, NULL) == 1;
}

/* `liangdi digest --with PEER [--records] --format csv` on n, which must succeed: its
 * output (malloc'd, caller frees). */
static char *digest_of(hn_node_t *n, const char *peer, bool records)
{
    hn_result_t r;
    run(n, &r, (const char *const[]){ "digest", "--with", peer, "--format", "csv",
                                      records ? "--records" : NULL, NULL });
    cr_assert_eq(r.status, 0, "liangdi digest --with %s on %s: %s", peer, n->id, r.err);
    char *out = r.out;
    r.out = NULL;
    hn_result_free(&r);
    return out;
}

/* The lines of a that b lacks, joined by '|', into out. */
static void lines_not_in(const char *a, const char *b, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *line = a; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        bool found = false;
        for (const char *p = b; *p != '\0' && !found;) {
            size_t plen = strcspn(p, "\n");
            found = plen == len && memcmp(p, line, len) == 0;
            p += plen + (p[plen] == '\n');
        }
        if (!found && o + len + 2 < outsz) {
            o += (size_t)snprintf(out + o, outsz - o, "%s%.*s", o > 0 ? "|" : "", (int)len, line);
        }
        line += len + (line[len] == '\n');
    }
}

/* A record to wait for: hn_wait_until(is_held, &held, ms). */
typedef struct held {
    hn_node_t  *node;
    const char *table;
    const char *id;
} held_t;

static bool is_held(void *ctx)
{
    const held_t *h = ctx;
    return holds(h->node, h->table, h->id);
}

/* A field of a record, as text ("" for NULL), into out. */
static void field_of(hn_node_t *n, const char *table, const char *id, const char *field,
                     char *out, size_t outsz)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT \"%s\" FROM \"%s\" WHERE \"id\" = ?1", field, table);
    sqlite3 *db = open_ro(n->db);
    sqlite3_stmt *st = prepare(db, sql);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    cr_assert_eq(rc, SQLITE_ROW, "%s holds no %s %s", n->id, table, id);
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(out, outsz, "%s", v != NULL ? (const char *)v : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A set of ids, read from a store or expected. */
typedef struct idset {
    size_t n;
    char   ids[512][ID_MAX];
} idset_t;

static bool idset_has(const idset_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return true;
    return false;
}

static void idset_add(idset_t *s, const char *id)
{
    if (id == NULL || idset_has(s, id))
        return;
    cr_assert_lt(s->n, sizeof s->ids / sizeof s->ids[0], "too many ids for the test's set");
    snprintf(s->ids[s->n++], ID_MAX, "%s", id);
}

/* Every id one query (selecting a text column) returns, into s (cleared first). */
static void read_ids(const char *path, const char *sql, idset_t *s)
{
    s->n = 0;
    sqlite3 *db = open_ro(path);
    sqlite3_stmt *st = prepare(db, sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        idset_add(s, (const char *)sqlite3_column_text(st, 0));
    cr_assert_eq(rc, SQLITE_DONE, "%s on %s: %s", sql, path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* What a store holds about one member: its records in every member-scoped table (every
 * column) and the change log's entries for them, hashed; and how many of each. */
typedef struct member_view {
    uint64_t hash;
    int64_t  rows;
    int64_t  changes;
} member_view_t;

static void hash_bytes(uint64_t *h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        *h ^= b[i];
        *h *= 1099511628211ULL;
    }
    *h ^= 0xff;                      /* a separator: "ab","c" differs from "a","bc" */
    *h *= 1099511628211ULL;
}

static void hash_row(uint64_t *h, sqlite3_stmt *st)
{
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const void *v = sqlite3_column_blob(st, i);
        hash_bytes(h, v != NULL ? v : "", (size_t)sqlite3_column_bytes(st, i));
    }
}

static member_view_t member_view(hn_node_t *n, const char *member_id)
{
    member_view_t v = { 14695981039346656037ULL, 0, 0 };
    idset_t *ids = calloc(1, sizeof *ids);
    cr_assert_not_null(ids);
    sqlite3 *db = open_ro(n->db);
    for (size_t t = 0; t < NMEMBER_TABLES; t++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" WHERE \"%s\" = ?1 ORDER BY \"id\"",
                 member_tables[t], t == 0 ? "id" : "member");
        sqlite3_stmt *st = prepare(db, sql);
        sqlite3_bind_text(st, 1, member_id, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            hash_row(&v.hash, st);
            idset_add(ids, (const char *)sqlite3_column_text(st, 0));
            v.rows++;
        }
        cr_assert_eq(rc, SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    sqlite3_stmt *log = prepare(db, "SELECT \"origin\", \"seq\", \"hlc\", \"body\" FROM \"changelog\""
                                    " WHERE \"record_id\" = ?1 ORDER BY \"origin\", \"seq\"");
    for (size_t i = 0; i < ids->n; i++) {
        sqlite3_bind_text(log, 1, ids->ids[i], -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(log)) == SQLITE_ROW) {
            hash_row(&v.hash, log);
            v.changes++;
        }
        cr_assert_eq(rc, SQLITE_DONE, "reading the change log: %s", sqlite3_errmsg(db));
        sqlite3_reset(log);
    }
    sqlite3_finalize(log);
    sqlite3_close(db);
    free(ids);
    return v;
}

/* ---------------------------------------------- 1: what each node holds ---- */

/* What the test wrote: each record, the branch node that must hold it besides zhuyuan
 * (NULL: zhuyuan only), and the orgs it refers to. */
typedef struct entry {
    const char *table;
    char        id[ID_MAX];
    const char *branch;
    const char *refs[REFS_MAX];
} entry_t;

typedef struct book {
    size_t  n;
    entry_t e[BOOK_MAX];
} book_t;

static book_t book;

/* Runs a command on n that creates a record and notes it in the book. */
static void create(hn_node_t *n, char *id, const char *table, const char *branch,
                   const char *ref1, const char *ref2, const char *const *args)
{
    char own[ID_MAX];
    char *out = id != NULL ? id : own;
    ok(n, out, args);
    cr_assert_lt(book.n, (size_t)BOOK_MAX);
    entry_t *e = &book.e[book.n++];
    memset(e, 0, sizeof *e);
    e->table = table;
    snprintf(e->id, sizeof e->id, "%s", out);
    e->branch = branch;
    e->refs[0] = ref1;
    e->refs[1] = ref2;
}

/* A member added (and sent on a trip to `to`'s branch) on zhuyuan, noted in the book. */
static void book_member(const char *name, const char *org, const char *to, const char *branch,
                        char id[ID_MAX], char trip[ID_MAX])
{
    create(zhuyuan, id, "members", branch, org, NULL,
           (const char *const[]){ "member", "add", "--name", name, "--org", org, "--gender",
                                  "female", "--born", "1980-02-29", NULL });
    if (to != NULL)
        create(zhuyuan, trip, "trips", branch, to, NULL,
               (const char *const[]){ "trip", "start", id, "--to", to, "--date", "2010-03-01",
                                      "--employer", "深圳市宝安区电子厂", "--reason", "务工",
                                      NULL });
}

static const org_def_t *org_by_id(const char *id)
{
    for (size_t i = 0; i < NORGS; i++)
        if (strcmp(orgs[i].id, id) == 0)
            return &orgs[i];
    cr_assert_fail("no org %s in the test's township", id);
    return NULL;
}

/* The ids of `table` that `node` must hold, from the book: for a branch, the records noted
 * for it, and of orgs the one it keeps, those its records refer to and their parents; for
 * zhuyuan everything. */
static void expected(const char *node, const char *table, idset_t *s)
{
    bool home = strcmp(node, "zhuyuan") == 0;
    s->n = 0;
    if (strcmp(table, "orgs") == 0) {
        for (size_t i = 0; i < NORGS; i++)
            if (home || strcmp(orgs[i].node, node) == 0)
                idset_add(s, orgs[i].id);
        for (size_t i = 0; i < book.n; i++) {
            const entry_t *e = &book.e[i];
            if (e->branch == NULL || strcmp(e->branch, node) != 0)
                continue;
            for (size_t k = 0; k < REFS_MAX; k++)
                idset_add(s, e->refs[k]);
        }
        for (size_t i = 0; i < s->n; i++) {          /* grows as parents are added */
            const org_def_t *o = org_by_id(s->ids[i]);
            idset_add(s, o->parent);
        }
        return;
    }
    for (size_t i = 0; i < book.n; i++) {
        const entry_t *e = &book.e[i];
        if (strcmp(e->table, table) == 0
            && (home || (e->branch != NULL && strcmp(e->branch, node) == 0)))
            idset_add(s, e->id);
    }
}

/* Reads every record table of n and checks it holds exactly what it must; also that its
 * change log names no other record.  Returns how many records it holds. */
static size_t assert_holds_exactly(hn_node_t *n)
{
    idset_t *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    idset_t *all = calloc(1, sizeof *all);
    cr_assert(want != NULL && got != NULL && all != NULL);
    size_t total = 0;
    for (size_t t = 0; t < NTABLES; t++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT \"id\" FROM \"%s\"", tables[t]);
        read_ids(n->db, sql, got);
        expected(n->id, tables[t], want);
        for (size_t i = 0; i < got->n; i++)
            cr_assert(idset_has(want, got->ids[i]),
                      "%s holds %s %s, which is outside its audience", n->id, tables[t],
                      got->ids[i]);
        for (size_t i = 0; i < want->n; i++)
            cr_assert(idset_has(got, want->ids[i]), "%s lacks %s %s, which it must hold",
                      n->id, tables[t], want->ids[i]);
        cr_assert_gt(want->n, 0, "the test wrote no %s for %s", tables[t], n->id);
        for (size_t i = 0; i < want->n; i++)
            idset_add(all, want->ids[i]);
        total += got->n;
    }
    read_ids(n->db, "SELECT DISTINCT \"record_id\" FROM \"changelog\"", got);
    for (size_t i = 0; i < got->n; i++)
        cr_assert(idset_has(all, got->ids[i]),
                  "%s's change log holds a change of %s, which is outside its audience", n->id,
                  got->ids[i]);
    free(want);
    free(got);
    free(all);
    return total;
}

static void assert_agrees_with_zhuyuan(hn_node_t *n, size_t held)
{
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(zhuyuan->db, n->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu records differ between zhuyuan and %s; first: %s", d.differ,
                 n->id, d.first);
    cr_assert_eq(d.only_b, 0, "%s holds %zu records zhuyuan lacks", n->id, d.only_b);
    cr_assert_eq(d.shared, held, "zhuyuan and %s share %zu records, %s holds %zu", n->id,
                 d.shared, n->id, held);
}

Test(need_to_know, a_branch_node_never_receives_a_record_outside_its_audience)
{
    char a[ID_MAX], b[ID_MAX], c[ID_MAX], d[ID_MAX], e[ID_MAX], f[ID_MAX];
    char ta[ID_MAX], tb[ID_MAX], tc[ID_MAX], td[ID_MAX], tf[ID_MAX];
    char ag_ld[ID_MAX], ag_td[ID_MAX], ag_ss[ID_MAX], ag_ls[ID_MAX];
    memset(&book, 0, sizeof book);
    township();

    /* Zhuyuan: two members in Dongguan, two in Shenzhen, one at home; four agreements. */
    book_member("林术平", "longtan", "dgb", "dongguan", a, ta);
    book_member("张小平", "tingzi", "dgb", "dongguan", b, tb);
    book_member("王红梅", "shuangping", "szb", "shenzhen", c, tc);
    book_member("李明", "longtan", "szb", "shenzhen", d, td);
    book_member("陈芳", "tingzi", NULL, NULL, e, NULL);
    book_member("刘强", "shuangping", "dgb", "dongguan", f, tf);
    create(zhuyuan, ag_ld, "agreements", "dongguan", "longtan", "dgb",
           (const char *const[]){ "agreement", "add", "--outflow", "longtan", "--inflow", "dgb",
                                  "--signed", "2010-01-15", "--terms", "龙潭村与东莞支部共管",
                                  NULL });
    create(zhuyuan, ag_td, "agreements", "dongguan", "tingzi", "dgb",
           (const char *const[]){ "agreement", "add", "--outflow", "tingzi", "--inflow", "dgb",
                                  "--signed", "2010-01-15", NULL });
    create(zhuyuan, ag_ss, "agreements", "shenzhen", "shuangping", "szb",
           (const char *const[]){ "agreement", "add", "--outflow", "shuangping", "--inflow",
                                  "szb", "--signed", "2010-02-01", NULL });
    create(zhuyuan, ag_ls, "agreements", "shenzhen", "longtan", "szb",
           (const char *const[]){ "agreement", "add", "--outflow", "longtan", "--inflow", "szb",
                                  "--signed", "2010-02-01", NULL });
    create(zhuyuan, NULL, "cares", "dongguan", NULL, NULL,
           (const char *const[]){ "care", "add", a, "--kind", "elderly", "--date", "2010-03-20",
                                  "--note", "空巢老人：每月上门探望", NULL });
    create(zhuyuan, NULL, "cares", NULL, NULL, NULL,
           (const char *const[]){ "care", "add", e, "--kind", "children", "--date", "2010-03-21",
                                  NULL });
    create(zhuyuan, NULL, "cares", "shenzhen", NULL, NULL,
           (const char *const[]){ "care", "add", c, "--kind", "land-transfer", "--date",
                                  "2010-03-22", NULL });
    create(zhuyuan, NULL, "honours", "dongguan", NULL, NULL,
           (const char *const[]){ "honour", "add", a, "--year", "2009", "--kind", "prosperous",
                                  "--note", "返乡投资办厂", NULL });
    create(zhuyuan, NULL, "honours", NULL, NULL, NULL,
           (const char *const[]){ "honour", "add", e, "--year", "2009", "--kind", "law-abiding",
                                  NULL });
    create(zhuyuan, NULL, "supports", "shenzhen", NULL, NULL,
           (const char *const[]){ "support", "add", c, "--kind", "pairing", "--date",
                                  "2010-03-01", "--helper", "镇组织办王明", NULL });
    create(zhuyuan, NULL, "honours", "shenzhen", NULL, NULL,
           (const char *const[]){ "honour", "add", d, "--year", "2009", "--kind", "law-abiding",
                                  "--date", "2010-01-20", NULL });
    create(zhuyuan, NULL, "supports", "dongguan", NULL, NULL,
           (const char *const[]){ "support", "add", b, "--kind", "training", "--date",
                                  "2010-03-03", "--note", "电工技术培训", NULL });
    create(zhuyuan, NULL, "supports", NULL, NULL, NULL,
           (const char *const[]){ "support", "add", e, "--kind", "fund", "--date", "2010-03-02",
                                  "--amount", "500", NULL });
    create(zhuyuan, NULL, "approvals", "dongguan", "dgb", NULL,
           (const char *const[]){ "approval", "add", b, "--date", "2010-02-20", "--to", "dgb",
                                  "--decision", "approved", NULL });
    create(zhuyuan, NULL, "approvals", NULL, NULL, NULL,
           (const char *const[]){ "approval", "add", e, "--date", "2010-02-21", "--decision",
                                  "pending", NULL });
    create(zhuyuan, NULL, "assessments", "dongguan", NULL, NULL,
           (const char *const[]){ "assess", a, "--year", "2010", "--side", "outflow", "--grade",
                                  "excellent", NULL });
    create(zhuyuan, NULL, "assessments", "shenzhen", NULL, NULL,
           (const char *const[]){ "assess", c, "--year", "2010", "--side", "outflow", "--grade",
                                  "competent", NULL });
    create(zhuyuan, NULL, "assessments", NULL, NULL, NULL,
           (const char *const[]){ "assess", e, "--year", "2010", "--side", "outflow", "--grade",
                                  "competent", NULL });
    create(zhuyuan, NULL, "activities", NULL, NULL, NULL,
           (const char *const[]){ "activity", "add", e, "--date", "2010-03-05", "--kind",
                                  "meeting", NULL });
    create(zhuyuan, NULL, "contacts", "dongguan", NULL, NULL,
           (const char *const[]){ "contact", "add", ag_ld, "--date", "2010-03-10", "--channel",
                                  "phone", NULL });
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    sync_ok(shenzhen);

    /* Each branch writes for its own members and agreements. */
    ok(dongguan, NULL, (const char *const[]){ "trip", "report-in", a, "--date", "2010-03-08", NULL });
    ok(dongguan, NULL, (const char *const[]){ "member", "edit", a, "--phone", "13712345678", NULL });
    create(dongguan, NULL, "activities", "dongguan", NULL, NULL,
           (const char *const[]){ "activity", "add", a, "--date", "2010-04-10", "--kind",
                                  "theme-day", "--note", "东莞支部主题党日", NULL });
    create(dongguan, NULL, "activities", "dongguan", NULL, NULL,
           (const char *const[]){ "activity", "add", b, "--date", "2010-04-30", "--kind", "dues",
                                  "--month", "2010-04", "--amount", "10.00", NULL });
    create(dongguan, NULL, "assessments", "dongguan", NULL, NULL,
           (const char *const[]){ "assess", a, "--year", "2010", "--side", "inflow", "--grade",
                                  "excellent", NULL });
    create(dongguan, NULL, "approvals", "dongguan", NULL, NULL,
           (const char *const[]){ "approval", "add", a, "--date", "2010-04-01", "--decision",
                                  "approved", "--note", "流入地审批", NULL });
    create(dongguan, NULL, "contacts", "dongguan", NULL, NULL,
           (const char *const[]){ "contact", "add", ag_td, "--date", "2010-04-15", "--channel",
                                  "hotline", NULL });
    create(dongguan, NULL, "visits", "dongguan", "dgb", NULL,
           (const char *const[]){ "visit", "add", ag_ld, "--date", "2010-05-01", "--host", "dgb",
                                  "--note", "镇党委到东莞走访", NULL });

    ok(shenzhen, NULL, (const char *const[]){ "trip", "report-in", c, "--date", "2010-03-09", NULL });
    create(shenzhen, NULL, "activities", "shenzhen", NULL, NULL,
           (const char *const[]){ "activity", "add", c, "--date", "2010-04-11", "--kind",
                                  "volunteer", "--note", "深圳宝安社区服务", NULL });
    create(shenzhen, NULL, "activities", "shenzhen", NULL, NULL,
           (const char *const[]){ "activity", "add", d, "--date", "2010-04-12", "--kind",
                                  "study", NULL });
    create(shenzhen, NULL, "assessments", "shenzhen", NULL, NULL,
           (const char *const[]){ "assess", d, "--year", "2010", "--side", "inflow", "--grade",
                                  "competent", NULL });
    create(shenzhen, NULL, "approvals", "shenzhen", "szb", NULL,
           (const char *const[]){ "approval", "add", d, "--date", "2010-04-05", "--to", "szb",
                                  "--decision", "approved", NULL });
    create(shenzhen, NULL, "visits", "shenzhen", "szb", NULL,
           (const char *const[]){ "visit", "add", ag_ss, "--date", "2010-05-02", "--host", "szb",
                                  NULL });
    create(shenzhen, NULL, "contacts", "shenzhen", NULL, NULL,
           (const char *const[]){ "contact", "add", ag_ls, "--date", "2010-04-16", "--channel",
                                  "video", NULL });
    sync_ok(dongguan);
    sync_ok(shenzhen);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    sync_ok(shenzhen);

    /* Zhuyuan again: edits and new records for members of both branches and of home; a
     * member back home from Dongguan, whose new records stay at home. */
    ok(zhuyuan, NULL, (const char *const[]){ "trip", "end", f, "--date", "2010-05-20", "--why",
                                             "returned", NULL });
    create(zhuyuan, NULL, "activities", NULL, NULL, NULL,
           (const char *const[]){ "activity", "add", f, "--date", "2010-06-05", "--kind",
                                  "meeting", "--note", "返乡后参加村支部党员大会", NULL });
    create(zhuyuan, NULL, "cares", NULL, NULL, NULL,
           (const char *const[]){ "care", "add", f, "--kind", "forest-rights", "--date",
                                  "2010-06-06", NULL });
    ok(zhuyuan, NULL, (const char *const[]){ "member", "edit", b, "--phone", "13922223333", NULL });
    ok(zhuyuan, NULL, (const char *const[]){ "member", "edit", e, "--phone", "13933334444", NULL });
    create(zhuyuan, NULL, "activities", "shenzhen", NULL, NULL,
           (const char *const[]){ "activity", "add", d, "--date", "2010-05-31", "--kind", "dues",
                                  "--month", "2010-05", "--amount", "12.50", NULL });
    create(zhuyuan, NULL, "visits", "dongguan", "tingzi", NULL,
           (const char *const[]){ "visit", "add", ag_td, "--date", "2010-06-01", "--host",
                                  "tingzi", NULL });
    create(zhuyuan, NULL, "visits", "shenzhen", "longtan", NULL,
           (const char *const[]){ "visit", "add", ag_ls, "--date", "2010-06-02", "--host",
                                  "longtan", NULL });
    for (int round = 0; round < 2; round++) {
        sync_ok(zhuyuan);
        sync_ok(shenzhen);
        sync_ok(dongguan);
    }

    /* Every store, read directly. */
    size_t at_home = assert_holds_exactly(zhuyuan);
    size_t at_dg = assert_holds_exactly(dongguan);
    size_t at_sz = assert_holds_exactly(shenzhen);
    cr_assert_eq(at_home, NORGS + book.n, "zhuyuan holds %zu records", at_home);
    assert_agrees_with_zhuyuan(dongguan, at_dg);
    assert_agrees_with_zhuyuan(shenzhen, at_sz);

    /* The writes of each branch reached zhuyuan whole. */
    char phone[64];
    field_of(zhuyuan, "members", a, "phone", phone, sizeof phone);
    cr_assert_str_eq(phone, "13712345678");
    field_of(shenzhen, "members", d, "org", phone, sizeof phone);
    cr_assert_str_eq(phone, "longtan");
    field_of(dongguan, "members", b, "phone", phone, sizeof phone);
    cr_assert_str_eq(phone, "13922223333");
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* -------------------------------------------------------- 2: spoofing ---- */

/* Rewrites the change (origin, seq) in the change log of the store at path: unpacks its
 * body, lets `edit` change it, packs it back. */
static void tamper(const char *path, const char *origin, uint64_t seq,
                   void (*edit)(ld_change_t *c))
{
    ld_error_t err;
    ld_change_t c;
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = prepare(db, "SELECT \"body\" FROM \"changelog\" WHERE \"origin\" = ?1"
                                   " AND \"seq\" = ?2");
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no change %s/%" PRIu64 " in %s", origin, seq,
                 path);
    int rc = ld_change_unpack(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                              &c, &err);
    sqlite3_finalize(st);
    cr_assert_eq(rc, 0, "%s", err.msg);
    edit(&c);
    uint8_t *body = NULL;
    size_t len = 0;
    rc = ld_change_pack(&c, &body, &len, &err);
    ld_change_clear(&c);
    cr_assert_eq(rc, 0, "%s", err.msg);
    st = prepare(db, "UPDATE \"changelog\" SET \"body\" = ?3 WHERE \"origin\" = ?1"
                     " AND \"seq\" = ?2");
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    sqlite3_bind_blob(st, 3, body, (int)len, free);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void claim_zhuyuan(ld_change_t *c)
{
    snprintf(c->origin, sizeof c->origin, "zhuyuan");
}

static void address_shenzhen(ld_change_t *c)
{
    ld_error_t err;
    cr_assert_eq(ld_change_add_audience(c, "zhuyuan", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_add_audience(c, "shenzhen", &err), 0, "%s", err.msg);
}

/* With text NULL, how many mailbox entries the broker's store keeps for `node`; with a
 * text (a record id), how many of its mailbox chunks (a push's entries for one node)
 * mention it in their bodies. */
static int64_t broker_entries(const char *node, const char *text)
{
    if (text != NULL)
        return query_int(world.broker.db, "SELECT count(*) FROM \"mailbox_chunks\""
                         " WHERE instr(\"body\", CAST(?1 AS BLOB)) > 0", text, NULL);
    return query_int(world.broker.db, "SELECT coalesce(sum(\"last\" - \"first\" + 1), 0) "
                     "FROM \"mailbox_chunks\" WHERE \"node\" = ?1", node, NULL);
}

/* The broker reclaims a node's mailbox when the node's ACK arrives, which may be just
 * after the node's `sync` has exited. */
static bool mailbox_reclaimed(void *node)
{
    return broker_entries(node, NULL) == 0;
}

static int64_t broker_highwater(const char *origin)
{
    return query_int(world.broker.db, "SELECT coalesce(max(\"seq\"), 0) FROM \"highwater\""
                     " WHERE \"origin\" = ?1", origin, NULL);
}

/* The highest seq of a node's own changes in its store. */
static uint64_t last_own_seq(hn_node_t *n)
{
    return (uint64_t)query_int(n->db, "SELECT coalesce(max(\"seq\"), 0) FROM \"changelog\""
                               " WHERE \"origin\" = ?1", n->id, NULL);
}

Test(need_to_know, a_change_pushed_under_another_nodes_origin_is_refused_and_stored_nowhere)
{
    char a[ID_MAX], ta[ID_MAX], fine[ID_MAX], spoofed[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, ta);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    int64_t hw = broker_highwater("dongguan");

    /* Dongguan writes two activities; the second is made to claim zhuyuan wrote it. */
    ok(dongguan, fine, (const char *const[]){ "activity", "add", a, "--date", "2010-04-01",
                                              "--kind", "study", NULL });
    ok(dongguan, spoofed, (const char *const[]){ "activity", "add", a, "--date", "2010-04-02",
                                                 "--kind", "meeting", NULL });
    uint64_t seq = last_own_seq(dongguan);
    tamper(dongguan->db, "dongguan", seq, claim_zhuyuan);

    hn_result_t r;
    run(dongguan, &r, (const char *const[]){ "sync", "--timeout", "20", NULL });
    cr_assert_eq(r.status, 1, "sync exited %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "refused by the broker"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, spoofed), "the error does not name the change: %s", r.err);
    cr_assert_not_null(strstr(r.err, "has origin zhuyuan, but the sender is dongguan"), "%s",
                       r.err);
    cr_assert_not_null(strstr(r.err, "nothing of this push was stored"), "%s", r.err);
    hn_result_free(&r);

    /* Nothing of the push is in the broker's store, not even the valid first change. */
    cr_assert_eq(broker_highwater("dongguan"), hw);
    cr_assert_eq(broker_entries(NULL, spoofed), 0);
    cr_assert_eq(broker_entries(NULL, fine), 0);
    cr_assert_eq(broker_entries("zhuyuan", NULL), 0);
    sync_ok(zhuyuan);
    cr_assert_not(holds(zhuyuan, "activities", spoofed));
    cr_assert_not(holds(zhuyuan, "activities", fine));
    cr_assert_eq(query_int(zhuyuan->db, "SELECT count(*) FROM \"changelog\" WHERE"
                           " \"record_id\" IN (?1, ?2)", fine, spoofed), 0);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(need_to_know, a_change_addressed_to_an_unlinked_node_is_refused_and_stored_nowhere)
{
    char rv[ID_MAX];
    township();
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    uint64_t sz_digest = hn_store_digest(shenzhen->db);
    cr_assert(hn_wait_until(mailbox_reclaimed, (void *)"shenzhen", 10000),
              "the broker kept entries shenzhen had fetched and acked");

    /* A node linked to zhuyuan only writes a member of its own org, and its outbox is made
     * to address the change to shenzhen too. */
    hn_node_t *rogue = hn_world_node(&world, "rogue", "冒名节点", true);
    cr_assert_not_null(rogue);
    cr_assert_eq(hn_link(&world, "rogue", "zhuyuan"), 0);
    ok(rogue, NULL, (const char *const[]){ "org", "add", "rogue-village", "--name", "冒名村支部",
                                           "--kind", "village", NULL });
    ok(rogue, rv, (const char *const[]){ "member", "add", "--name", "赵冒", "--org",
                                         "rogue-village", NULL });
    uint64_t seq = last_own_seq(rogue);
    cr_assert_geq(seq, 2, "the org and the member were not both logged");
    tamper(rogue->db, "rogue", seq, address_shenzhen);

    hn_result_t r;
    run(rogue, &r, (const char *const[]){ "sync", "--timeout", "20", NULL });
    cr_assert_eq(r.status, 1, "sync exited %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "refused by the broker"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, rv), "the error does not name the change: %s", r.err);
    char what[128];
    snprintf(what, sizeof what, "seq %" PRIu64 " is addressed to node shenzhen", seq);
    cr_assert_not_null(strstr(r.err, what), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "nothing of this push was stored"), "%s", r.err);
    hn_result_free(&r);

    /* Neither the broker's store nor shenzhen's holds anything of it. */
    cr_assert_eq(broker_highwater("rogue"), 0);
    cr_assert_eq(broker_entries(NULL, rv), 0);
    cr_assert_eq(broker_entries(NULL, "rogue-village"), 0);
    cr_assert_eq(broker_entries("shenzhen", NULL), 0);
    cr_assert_eq(broker_entries("zhuyuan", NULL), 0);
    sync_ok(shenzhen);
    sync_ok(zhuyuan);
    cr_assert_eq(hn_store_digest(shenzhen->db), sz_digest, "shenzhen's store changed");
    cr_assert_eq(query_int(shenzhen->db, "SELECT count(*) FROM \"changelog\" WHERE"
                           " \"record_id\" IN (?1, 'rogue-village')", rv, NULL), 0);
    cr_assert_not(holds(zhuyuan, "members", rv));
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ---------------------------------------------------- 3: the member move ---- */

Test(need_to_know, a_member_who_moves_to_shenzhen_takes_the_history_and_dongguan_hears_no_more)
{
    char a[ID_MAX], b[ID_MAX], trip1[ID_MAX], trip_b[ID_MAX], trip2[ID_MAX];
    char act_dg1[ID_MAX], act_dg2[ID_MAX], act_home[ID_MAX], as_dg[ID_MAX], as_home[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip1);
    member("张小平", "tingzi", "dgb", "2010-03-01", b, trip_b);
    sync_ok(zhuyuan);
    sync_ok(dongguan);

    /* Dongguan keeps the member's activity certificate; zhuyuan its own records. */
    ok(dongguan, NULL, (const char *const[]){ "trip", "report-in", a, "--date", "2010-03-06", NULL });
    ok(dongguan, act_dg1, (const char *const[]){ "activity", "add", a, "--date", "2010-04-10",
                                                 "--kind", "theme-day", "--note",
                                                 "东莞支部主题党日", NULL });
    ok(dongguan, act_dg2, (const char *const[]){ "activity", "add", a, "--date", "2010-05-30",
                                                 "--kind", "dues", "--month", "2010-05",
                                                 "--amount", "10.00", NULL });
    ok(dongguan, as_dg, (const char *const[]){ "assess", a, "--year", "2010", "--side", "inflow",
                                               "--grade", "excellent", NULL });
    sync_ok(dongguan);
    ok(zhuyuan, act_home, (const char *const[]){ "activity", "add", a, "--date", "2010-06-01",
                                                 "--kind", "report", "--note", "书面思想汇报",
                                                 NULL });
    ok(zhuyuan, as_home, (const char *const[]){ "assess", a, "--year", "2010", "--side",
                                                "outflow", "--grade", "competent", NULL });
    sync_ok(zhuyuan);
    sync_ok(dongguan);

    /* The move: zhuyuan ends the Dongguan trip and starts one to Shenzhen. */
    ok(zhuyuan, NULL, (const char *const[]){ "trip", "end", a, "--date", "2010-09-30", "--why",
                                             "transferred", NULL });
    ok(zhuyuan, trip2, (const char *const[]){ "trip", "start", a, "--to", "szb", "--date",
                                              "2010-10-08", "--employer", "深圳市宝安区电子厂",
                                              NULL });
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    sync_ok(dongguan);

    /* Shenzhen holds the member's whole history, as zhuyuan has it. */
    const char *history[][2] = {
        { "members", a }, { "trips", trip1 }, { "trips", trip2 }, { "activities", act_dg1 },
        { "activities", act_dg2 }, { "activities", act_home }, { "assessments", as_dg },
        { "assessments", as_home },
    };
    for (size_t i = 0; i < sizeof history / sizeof history[0]; i++)
        cr_assert(holds(shenzhen, history[i][0], history[i][1]), "shenzhen lacks %s %s",
                  history[i][0], history[i][1]);
    member_view_t home_view = member_view(zhuyuan, a), sz_view = member_view(shenzhen, a);
    cr_assert_eq(sz_view.rows, home_view.rows, "shenzhen holds %lld of the member's %lld records",
                 (long long)sz_view.rows, (long long)home_view.rows);
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(zhuyuan->db, shenzhen->db, &d), 0);
    cr_assert_eq(d.differ, 0, "first difference: %s", d.first);
    cr_assert_not(holds(shenzhen, "members", b), "shenzhen holds a member who is in Dongguan");
    char v[64];
    field_of(shenzhen, "activities", act_dg1, "note", v, sizeof v);
    cr_assert_str_eq(v, "东莞支部主题党日");

    /* Dongguan has the trip's end, keeps what it had, and knows nothing of the new trip. */
    field_of(dongguan, "trips", trip1, "status", v, sizeof v);
    cr_assert_str_eq(v, "transferred");
    field_of(dongguan, "trips", trip1, "ended", v, sizeof v);
    cr_assert_str_eq(v, "2010-09-30");
    for (size_t i = 0; i < sizeof history / sizeof history[0]; i++) {
        bool new_trip = strcmp(history[i][1], trip2) == 0;
        cr_assert_eq(holds(dongguan, history[i][0], history[i][1]), !new_trip,
                     "dongguan %s %s %s", new_trip ? "holds" : "lost", history[i][0],
                     history[i][1]);
    }
    cr_assert_not(holds(dongguan, "orgs", "szb"), "dongguan was sent the Shenzhen branch");

    /* Its records of the member are read-only there. */
    hn_result_t r;
    run(dongguan, &r, (const char *const[]){ "activity", "add", a, "--date", "2010-10-20",
                                             "--kind", "meeting", NULL });
    cr_assert_eq(r.status, 1, "a write for a member who left exited %d: %s", r.status, r.out);
    cr_assert_not_null(strstr(r.err, "member 林术平 is not with this branch (left on 2010-09-30); "
                                     "its records are read-only here"), "%s", r.err);
    hn_result_free(&r);
    run(dongguan, &r, (const char *const[]){ "member", "edit", a, "--phone", "13700000000", NULL });
    cr_assert_eq(r.status, 1, "an edit of a member who left exited %d", r.status);
    cr_assert_not_null(strstr(r.err, "its records are read-only here"), "%s", r.err);
    hn_result_free(&r);

    /* More writes about the member at zhuyuan and shenzhen, and about another member of
     * Dongguan; several syncs: Dongguan gets the other member's, none of the mover's. */
    member_view_t dg_before = member_view(dongguan, a);
    ok(zhuyuan, NULL, (const char *const[]){ "member", "edit", a, "--phone", "13912340000", NULL });
    ok(zhuyuan, NULL, (const char *const[]){ "activity", "add", a, "--date", "2010-10-31",
                                             "--kind", "dues", "--month", "2010-10", "--amount",
                                             "12.00", NULL });
    ok(zhuyuan, NULL, (const char *const[]){ "member", "edit", b, "--phone", "13955556666", NULL });
    ok(shenzhen, NULL, (const char *const[]){ "trip", "report-in", a, "--date", "2010-10-09", NULL });
    ok(shenzhen, NULL, (const char *const[]){ "activity", "add", a, "--date", "2010-10-15",
                                              "--kind", "study", "--note", "深圳支部学习", NULL });
    ok(shenzhen, NULL, (const char *const[]){ "assess", a, "--year", "2011", "--side", "inflow",
                                              "--grade", "excellent", NULL });
    for (int round = 0; round < 2; round++) {
        sync_ok(shenzhen);
        sync_ok(zhuyuan);
        sync_ok(dongguan);
    }
    field_of(shenzhen, "members", a, "phone", v, sizeof v);
    cr_assert_str_eq(v, "13912340000");
    field_of(zhuyuan, "trips", trip2, "status", v, sizeof v);
    cr_assert_str_eq(v, "reported-in");
    field_of(dongguan, "members", b, "phone", v, sizeof v);
    cr_assert_str_eq(v, "13955556666", "dongguan stopped receiving its own members' records");

    member_view_t dg_after = member_view(dongguan, a);
    cr_assert_eq(dg_after.rows, dg_before.rows, "dongguan's rows about the member: %lld -> %lld",
                 (long long)dg_before.rows, (long long)dg_after.rows);
    cr_assert_eq(dg_after.changes, dg_before.changes,
                 "dongguan's logged changes about the member: %lld -> %lld",
                 (long long)dg_before.changes, (long long)dg_after.changes);
    cr_assert_eq(dg_after.hash, dg_before.hash, "dongguan's records of the member changed");
    home_view = member_view(zhuyuan, a);
    sz_view = member_view(shenzhen, a);
    cr_assert_eq(sz_view.rows, home_view.rows);
    cr_assert_gt(home_view.rows, dg_after.rows);

    /* The home and each branch agree on what they share: Dongguan the other member and
     * the ended trip, no longer the mover; the two branches co-manage nothing. */
    char *zd = digest_of(zhuyuan, "dongguan", false), *dz = digest_of(dongguan, "zhuyuan", false);
    char *zs = digest_of(zhuyuan, "shenzhen", false), *sz = digest_of(shenzhen, "zhuyuan", false);
    cr_assert_str_eq(zd, dz, "zhuyuan and dongguan disagree:\n%s\n%s", zd, dz);
    cr_assert_str_eq(zs, sz, "zhuyuan and shenzhen disagree:\n%s\n%s", zs, sz);
    cr_assert_not_null(strstr(zd, "\nmember,1,"), "dongguan shares one member:\n%s", zd);
    cr_assert_not_null(strstr(zd, "\ntrip,2,"), "dongguan shares both its trips:\n%s", zd);
    cr_assert_not_null(strstr(zs, "\nmember,1,"), "shenzhen shares the mover:\n%s", zs);
    cr_assert_not_null(strstr(zs, "\nactivity,5,"), "shenzhen shares his history:\n%s", zs);
    free(zd);
    free(dz);
    free(zs);
    free(sz);
    run(shenzhen, &r, (const char *const[]){ "digest", "--with", "dongguan", NULL });
    cr_assert_eq(r.status, 2, "a digest between two branches exited %d", r.status);
    cr_assert_not_null(strstr(r.err, "no trip or agreement here joins"), "%s", r.err);
    hn_result_free(&r);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* An org is edited on the node that made it, which sent it to every node holding it:
 * the Dongguan branch's org, made at zhuyuan, renamed there, reaches Dongguan and
 * Shenzhen (which holds it through a member's history); Dongguan may not rename it. */
Test(need_to_know, an_org_renamed_where_it_was_made_reaches_every_node_that_holds_it)
{
    char a[ID_MAX], trip1[ID_MAX], trip2[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip1);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    move_to_shenzhen(a, trip2);
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    sync_ok(dongguan);
    cr_assert(holds(shenzhen, "orgs", "dgb"), "shenzhen holds the Dongguan branch's org");

    hn_result_t r;
    run(dongguan, &r, (const char *const[]){ "org", "edit", "dgb", "--name", "东莞支部", NULL });
    cr_assert_eq(r.status, 1, "an edit of an org made elsewhere exited %d", r.status);
    cr_assert_not_null(strstr(r.err, "org dgb was made by node zhuyuan: edit it there"), "%s",
                       r.err);
    hn_result_free(&r);

    ok(zhuyuan, NULL, (const char *const[]){ "org", "edit", "dgb", "--name",
                                             "中共竹园镇外出流动党员广东东莞支部委员会", NULL });
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    sync_ok(shenzhen);
    hn_node_t *holders[] = { zhuyuan, dongguan, shenzhen };
    for (size_t i = 0; i < 3; i++) {
        char v[128];
        field_of(holders[i], "orgs", "dgb", "name", v, sizeof v);
        cr_assert_str_eq(v, "中共竹园镇外出流动党员广东东莞支部委员会", "on %s", holders[i]->id);
    }
    char *home = digest_of(zhuyuan, "dongguan", false), *branch = digest_of(dongguan, "zhuyuan", false);
    cr_assert_str_eq(home, branch);
    free(home);
    free(branch);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(need_to_know, a_record_that_differs_between_home_and_branch_shows_in_their_digests)
{
    char a[ID_MAX], trip[ID_MAX], act[ID_MAX], act2[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    ok(dongguan, act, (const char *const[]){ "activity", "add", a, "--date", "2010-04-10",
                                             "--kind", "theme-day", "--note", "主题党日", NULL });
    ok(dongguan, act2, (const char *const[]){ "activity", "add", a, "--date", "2010-05-30",
                                              "--kind", "study", NULL });
    sync_ok(dongguan);
    sync_ok(zhuyuan);
    char *home = digest_of(zhuyuan, "dongguan", false), *branch = digest_of(dongguan, "zhuyuan", false);
    cr_assert_str_eq(home, branch);
    free(branch);

    /* Dongguan's store is put back to an older state of one record, as a restored backup
     * would: the digests differ in the activities and overall, and nowhere else. */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dongguan->db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = prepare(db, "UPDATE \"activities\" SET \"note\" = '旧的' WHERE \"id\" = ?1");
    sqlite3_bind_text(st, 1, act, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    branch = digest_of(dongguan, "zhuyuan", false);
    char differ[512];
    lines_not_in(branch, home, differ, sizeof differ);
    cr_assert(strncmp(differ, "activity,2,", 11) == 0 && strstr(differ, "|all,") != NULL &&
              strchr(strchr(differ, '|') + 1, '|') == NULL,
              "the lines that differ: %s", differ);
    free(home);
    free(branch);

    /* Record by record, the one that differs is named. */
    home = digest_of(zhuyuan, "dongguan", true);
    branch = digest_of(dongguan, "zhuyuan", true);
    lines_not_in(branch, home, differ, sizeof differ);
    cr_assert_null(strchr(differ, '|'), "one record differs: %s", differ);
    cr_assert_not_null(strstr(differ, act), "the record that differs is %s: %s", act, differ);
    cr_assert_not_null(strstr(home, act2), "%s", home);
    free(home);
    free(branch);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ------------------------------------------------- 4: a removed node ---- */

Test(need_to_know, a_removed_node_is_refused_at_once_on_its_open_connection)
{
    char a[ID_MAX], trip[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip);
    sync_ok(zhuyuan);
    cr_assert_eq(hn_daemon_start(&world, dongguan, "1h"), 0, "dongguan's daemon did not get ready");
    held_t fetched = { dongguan, "members", a };
    cr_assert(hn_wait_until(is_held, &fetched, 10000), "dongguan's daemon never fetched the member");

    size_t from = hn_file_size(dongguan->log);
    char broker_log[HN_PATH_MAX];
    snprintf(broker_log, sizeof broker_log, "%s", world.broker.proc.log);
    size_t broker_from = hn_file_size(broker_log);
    hn_result_t r;
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "remove", "dongguan", NULL), 0);
    cr_assert_eq(r.status, 0, "node remove: %s", r.err);
    hn_result_free(&r);

    /* The open connection is refused: the daemon (fetching hourly) is told at once. */
    char line[1024];
    cr_assert(hn_proc_wait_log(&dongguan->daemon, "authentication refused", from, 10000, line,
                               sizeof line),
              "the daemon's connection was not refused");
    cr_assert_not_null(strstr(line, "node dongguan is not registered with this broker (removed)"),
                       "%s", line);
    cr_assert(hn_proc_wait_log(&world.broker.proc, "node dongguan was removed", broker_from, 5000,
                               NULL, 0));
    uint64_t digest = hn_store_digest(dongguan->db);

    /* Zhuyuan writes about the member; dongguan's daemon keeps trying and is refused. */
    ok(zhuyuan, NULL, (const char *const[]){ "member", "edit", a, "--phone", "13800001111", NULL });
    ok(zhuyuan, NULL, (const char *const[]){ "activity", "add", a, "--date", "2010-04-30",
                                             "--kind", "dues", "--month", "2010-04", "--amount",
                                             "10.00", NULL });
    sync_ok(zhuyuan);
    from = hn_file_size(dongguan->log);
    cr_assert(hn_proc_wait_log(&dongguan->daemon, "authentication refused", from, 20000, NULL, 0),
              "the daemon did not try again");
    cr_assert(hn_proc_running(&dongguan->daemon), "the daemon gave up");
    cr_assert_eq(hn_store_digest(dongguan->db), digest, "something reached the removed node");
    char phone[64];
    field_of(dongguan, "members", a, "phone", phone, sizeof phone);
    cr_assert_str_eq(phone, "");

    /* A one-off sync says so. */
    cr_assert_eq(hn_proc_stop(&dongguan->daemon, 10000), 0, "the daemon did not stop cleanly");
    run(dongguan, &r, (const char *const[]){ "sync", "--timeout", "10", NULL });
    cr_assert_eq(r.status, 1, "sync of a removed node exited %d", r.status);
    cr_assert_not_null(strstr(r.err, "authentication refused"), "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_store_digest(dongguan->db), digest);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* What waited for a removed node is not kept at the relay: a node removed can never
 * fetch it, so the running broker deletes it, and only it. */
Test(need_to_know, a_removed_nodes_mailbox_is_emptied_by_the_running_broker)
{
    char a[ID_MAX], trip[ID_MAX], b[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip);
    member("王芳", "longtan", "szb", "2011-06-01", b, trip);
    sync_ok(zhuyuan);               /* neither branch has fetched: both mailboxes hold records */
    int64_t waiting = broker_entries("dongguan", NULL);
    int64_t other = broker_entries("shenzhen", NULL);
    cr_assert_gt(waiting, 0, "nothing waited for dongguan");
    cr_assert_gt(other, 0, "nothing waited for shenzhen");
    cr_assert_gt(broker_entries(NULL, a), 0, "the member is not in the broker's store");

    size_t broker_from = hn_file_size(world.broker.proc.log);
    hn_result_t r;
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "remove", "dongguan", NULL), 0);
    cr_assert_eq(r.status, 0, "node remove: %s", r.err);
    hn_result_free(&r);

    char line[512];
    cr_assert(hn_proc_wait_log(&world.broker.proc, "that waited for removed node dongguan",
                               broker_from, 10000, line, sizeof line),
              "the broker did not empty the removed node's mailbox");
    char count[48];
    snprintf(count, sizeof count, "deleted %lld changes", (long long)waiting);
    cr_assert_not_null(strstr(line, count), "%s (expected %s)", line, count);
    cr_assert_eq(broker_entries("dongguan", NULL), 0);
    cr_assert_eq(broker_entries(NULL, a), 0, "the member's records are still at the relay");
    cr_assert_eq(broker_entries("shenzhen", NULL), other, "another mailbox was touched");
    sync_ok(shenzhen);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ------------------------------------------------------- 5: history ---- */

/* One line of `liangdi history --format csv`. */
typedef struct hline {
    char node[65];
    char field[32];
    char value[128];
    char via[65];
} hline_t;

typedef struct hist {
    size_t  n;
    hline_t l[64];
} hist_t;

/* Splits one CSV line of plain cells (history's values here hold no comma or quote). */
static size_t csv_cells(char *line, char *cells[], size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        cells[n++] = p;
        char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static void history_of(hn_node_t *n, const char *record, hist_t *h)
{
    hn_result_t r;
    run(n, &r, (const char *const[]){ "history", record, "--format", "csv", NULL });
    cr_assert_eq(r.status, 0, "history on %s: %s", n->id, r.err);
    memset(h, 0, sizeof *h);
    char *save = NULL;
    bool header = true;
    for (char *line = strtok_r(r.out, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (header) {
            cr_assert_not_null(strstr(line, "when,node,seq,field,value,via"), "%s", line);
            header = false;
            continue;
        }
        char *cells[6];
        cr_assert_eq(csv_cells(line, cells, 6), 6, "a history line of other than 6 cells: %s",
                     line);
        cr_assert_lt(h->n, sizeof h->l / sizeof h->l[0]);
        hline_t *l = &h->l[h->n++];
        snprintf(l->node, sizeof l->node, "%s", cells[1]);
        snprintf(l->field, sizeof l->field, "%s", cells[3]);
        snprintf(l->value, sizeof l->value, "%s", cells[4]);
        snprintf(l->via, sizeof l->via, "%s", cells[5]);
    }
    hn_result_free(&r);
}

/* A line history must show: which write (in order) it belongs to, node, field, value. */
typedef struct want {
    int         write;
    const char *node;
    const char *field;
    const char *value;
} want_t;

/* Each wanted line is there once, and the lines of write k all come before those of
 * write k + 1. */
static void assert_history(hn_node_t *n, const char *record, const want_t *want, size_t nwant)
{
    hist_t *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    history_of(n, record, h);
    size_t at[32];
    cr_assert_leq(nwant, sizeof at / sizeof at[0]);
    for (size_t i = 0; i < nwant; i++) {
        size_t found = 0, where = 0;
        for (size_t k = 0; k < h->n; k++) {
            if (strcmp(h->l[k].node, want[i].node) == 0 && strcmp(h->l[k].field, want[i].field) == 0
                && strcmp(h->l[k].value, want[i].value) == 0) {
                found++;
                where = k;
            }
        }
        cr_assert_eq(found, 1, "history of %s on %s shows %s %s=%s %zu times", record, n->id,
                     want[i].node, want[i].field, want[i].value, found);
        at[i] = where;
    }
    for (size_t i = 0; i < nwant; i++)
        for (size_t j = 0; j < nwant; j++)
            if (want[i].write < want[j].write)
                cr_assert_lt(at[i], at[j], "history of %s on %s: %s's %s comes after %s's %s",
                             record, n->id, want[i].node, want[i].field, want[j].node,
                             want[j].field);
    free(h);
}

Test(need_to_know, history_names_the_nodes_that_changed_a_record_and_the_fields_in_order)
{
    char a[ID_MAX], trip1[ID_MAX], trip2[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip1);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    ok(dongguan, NULL, (const char *const[]){ "member", "edit", a, "--phone", "13711112222", NULL });
    ok(dongguan, NULL, (const char *const[]){ "trip", "report-in", a, "--date", "2010-03-06", NULL });
    sync_ok(dongguan);
    sync_ok(zhuyuan);
    move_to_shenzhen(a, trip2);
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    ok(shenzhen, NULL, (const char *const[]){ "member", "edit", a, "--phone", "13622223333", NULL });
    sync_ok(shenzhen);
    sync_ok(zhuyuan);
    sync_ok(dongguan);

    /* The member: created at home, its phone changed in Dongguan, then in Shenzhen. */
    const want_t member_lines[] = {
        { 1, "zhuyuan", "name", "林术平" },
        { 1, "zhuyuan", "org", "longtan" },
        { 1, "zhuyuan", "gender", "male" },
        { 1, "zhuyuan", "born", "1978-04-12" },
        { 2, "dongguan", "phone", "13711112222" },
        { 3, "shenzhen", "phone", "13622223333" },
    };
    assert_history(zhuyuan, a, member_lines, 6);
    /* Shenzhen knows the member from zhuyuan's copy: each write still under its author. */
    assert_history(shenzhen, a, member_lines, 6);
    /* Dongguan heard nothing after the member left. */
    assert_history(dongguan, a, member_lines, 5);
    hist_t *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    history_of(dongguan, a, h);
    for (size_t i = 0; i < h->n; i++)
        cr_assert_str_neq(h->l[i].node, "shenzhen", "dongguan's history names shenzhen");
    free(h);

    /* The Dongguan trip: registered at home, reported in at Dongguan, ended at home. */
    const want_t trip_lines[] = {
        { 1, "zhuyuan", "to", "dgb" },
        { 1, "zhuyuan", "started", "2010-03-01" },
        { 1, "zhuyuan", "status", "registered" },
        { 2, "dongguan", "reported_in", "2010-03-06" },
        { 2, "dongguan", "status", "reported-in" },
        { 3, "zhuyuan", "ended", "2010-09-30" },
        { 3, "zhuyuan", "status", "transferred" },
    };
    assert_history(zhuyuan, trip1, trip_lines, 7);
    assert_history(dongguan, trip1, trip_lines, 7);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ------------------------------------------ 3b: a write racing the move ---- */

/* Dongguan, offline, records an activity of a member whom zhuyuan meanwhile moves to
 * Shenzhen: the entry reaches zhuyuan addressed to zhuyuan alone, and zhuyuan, where the
 * member's records now also go to Shenzhen, must pass it on. */
Test(need_to_know, a_write_dongguan_made_before_it_heard_of_the_move_still_reaches_shenzhen)
{
    char a[ID_MAX], trip1[ID_MAX], trip2[ID_MAX], late[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip1);
    sync_ok(zhuyuan);
    sync_ok(dongguan);

    ok(dongguan, late, (const char *const[]){ "activity", "add", a, "--date", "2010-09-28",
                                              "--kind", "volunteer", "--note",
                                              "离开东莞前最后一次志愿服务", NULL });
    move_to_shenzhen(a, trip2);
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    cr_assert(holds(shenzhen, "trips", trip2));
    member_view_t dg_view = member_view(dongguan, a);

    /* Dongguan comes online: its entry goes to zhuyuan, the trip's end comes back. */
    sync_ok(dongguan);
    cr_assert(holds(dongguan, "activities", late));
    char v[64];
    field_of(dongguan, "trips", trip1, "status", v, sizeof v);
    cr_assert_str_eq(v, "transferred");
    /* One round of zhuyuan's takes it in and passes it on. */
    sync_ok(zhuyuan);
    sync_ok(shenzhen);
    cr_assert(holds(zhuyuan, "activities", late));
    cr_assert(holds(shenzhen, "activities", late),
              "the entry Dongguan wrote before it heard of the move never reached Shenzhen");
    for (int round = 0; round < 2; round++) {
        sync_ok(zhuyuan);
        sync_ok(shenzhen);
        sync_ok(dongguan);
    }
    member_view_t home_view = member_view(zhuyuan, a), sz_view = member_view(shenzhen, a);
    cr_assert_eq(sz_view.rows, home_view.rows);
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(zhuyuan->db, shenzhen->db, &d), 0);
    cr_assert_eq(d.differ, 0, "first difference: %s", d.first);
    const want_t late_lines[] = {
        { 1, "dongguan", "note", "离开东莞前最后一次志愿服务" },
        { 1, "dongguan", "kind", "volunteer" },
    };
    assert_history(shenzhen, late, late_lines, 2);

    /* Dongguan got nothing back of it but the trip's end. */
    member_view_t dg_now = member_view(dongguan, a);
    cr_assert_eq(dg_now.rows, dg_view.rows, "dongguan: %lld rows of the member, then %lld",
                 (long long)dg_view.rows, (long long)dg_now.rows);
    cr_assert_eq(dg_now.changes, dg_view.changes + 1,
                 "dongguan: %lld logged changes of the member, then %lld",
                 (long long)dg_view.changes, (long long)dg_now.changes);
    cr_assert_not(holds(dongguan, "trips", trip2));
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(need_to_know, a_write_dongguan_made_before_it_heard_of_the_move_reaches_shenzhen_through_daemons)
{
    char a[ID_MAX], trip1[ID_MAX], trip2[ID_MAX], late[ID_MAX];
    township();
    member("林术平", "longtan", "dgb", "2010-03-01", a, trip1);
    sync_ok(zhuyuan);
    sync_ok(dongguan);
    cr_assert_eq(hn_daemon_start(&world, zhuyuan, "1h"), 0, "zhuyuan's daemon did not get ready");
    cr_assert_eq(hn_daemon_start(&world, shenzhen, "1h"), 0,
                 "shenzhen's daemon did not get ready");

    ok(dongguan, late, (const char *const[]){ "activity", "add", a, "--date", "2010-09-28",
                                              "--kind", "volunteer", NULL });
    move_to_shenzhen(a, trip2);
    held_t moved = { shenzhen, "trips", trip2 };
    cr_assert(hn_wait_until(is_held, &moved, 10000), "shenzhen's daemon never got the new trip");

    /* Dongguan comes online once; the daemons carry its entry on, with no timer. */
    sync_ok(dongguan);
    held_t passed = { shenzhen, "activities", late };
    cr_assert(hn_wait_until(is_held, &passed, 10000),
              "the entry Dongguan wrote before it heard of the move never reached Shenzhen");
    cr_assert(holds(zhuyuan, "activities", late));
    cr_assert_eq(hn_proc_stop(&zhuyuan->daemon, 10000), 0);
    cr_assert_eq(hn_proc_stop(&shenzhen->daemon, 10000), 0);
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(zhuyuan->db, shenzhen->db, &d), 0);
    cr_assert_eq(d.differ, 0, "first difference: %s", d.first);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
