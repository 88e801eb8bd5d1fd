/* test_audience.c: who receives what: members and their records, agreements, orgs
 * and the org snapshots a receiver needs first, the member who moves from one branch
 * to another, the read-only refusal on a branch the member has left, and the digests of
 * what a home and a branch share (digest.h). */
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "digest.h"
#include "hlc.h"
#include "store.h"

static char dir[PATH_MAX];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-audience-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(audience, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ helpers ---- */

static nd_store_t *open_node(const char *node)
{
    char path[PATH_MAX + 64];
    ld_error_t err;
    snprintf(path, sizeof path, "%s/%s.db", dir, node);
    nd_store_t *s = nd_store_open(path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, node, node, &err), 0, "%s", err.msg);
    return s;
}

/* Writes a record (id NULL = new) from name, value pairs ending in NULL. */
static int put(nd_store_t *s, ld_kind_t kind, const char *id, char *id_out, ld_error_t *err, ...)
{
    ld_change_t c;
    ld_change_init(&c);
    c.kind = kind;
    if (id != NULL)
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
    va_list ap;
    va_start(ap, err);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        cr_assert_eq(ld_change_set(&c, name, value, NULL), 0, "set %s", name);
    }
    va_end(ap);
    int rc = nd_store_write(s, &c, err);
    if (rc == 0 && id_out != NULL)
        strcpy(id_out, c.record_id);
    ld_change_clear(&c);
    return rc;
}

/* put() that must succeed. */
static void must_put(nd_store_t *s, ld_kind_t kind, const char *id, char *id_out, ...)
{
    ld_change_t c;
    ld_error_t err;
    ld_change_init(&c);
    c.kind = kind;
    if (id != NULL)
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
    va_list ap;
    va_start(ap, id_out);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        cr_assert_eq(ld_change_set(&c, name, value, NULL), 0, "set %s", name);
    }
    va_end(ap);
    cr_assert_eq(nd_store_write(s, &c, &err), 0, "%s", err.msg);
    if (id_out != NULL)
        strcpy(id_out, c.record_id);
    ld_change_clear(&c);
}

typedef struct collect {
    ld_change_t *changes;
    size_t n, cap;
} collect_t;

static int collect_one(void *ctx, uint64_t seq, const uint8_t *body, size_t len)
{
    collect_t *col = ctx;
    if (col->n == col->cap) {
        col->cap = col->cap ? col->cap * 2 : 16;
        col->changes = realloc(col->changes, col->cap * sizeof *col->changes);
        cr_assert_not_null(col->changes);
    }
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(body, len, &col->changes[col->n], &err), 0, "%s", err.msg);
    col->n++;
    return 0;
}

/* s's own changes after seq `after`, unpacked. */
static void outbox(nd_store_t *s, uint64_t after, collect_t *col)
{
    ld_error_t err;
    memset(col, 0, sizeof *col);
    int n = nd_store_outbox(s, after, SIZE_MAX, collect_one, col, &err);
    cr_assert_geq(n, 0, "%s", err.msg);
}

static void free_changes(collect_t *col)
{
    for (size_t i = 0; i < col->n; i++)
        ld_change_clear(&col->changes[i]);
    free(col->changes);
    memset(col, 0, sizeof *col);
}

/* The audience of a change as "a,b" (sorted), into out[256]. */
static const char *audience_text(const ld_change_t *c, char out[256])
{
    const char *sorted[LD_AUDIENCE_MAX];
    for (size_t i = 0; i < c->naudience; i++) {
        size_t j = i;
        while (j > 0 && strcmp(sorted[j - 1], c->audience[i]) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = c->audience[i];
    }
    out[0] = '\0';
    for (size_t i = 0; i < c->naudience; i++) {
        strcat(out, i ? "," : "");
        strcat(out, sorted[i]);
    }
    return out;
}

/* The audience of the last change s wrote. */
static const char *last_audience(nd_store_t *s, char out[256])
{
    collect_t col;
    uint64_t last = nd_store_last_seq(s);
    cr_assert_gt(last, 0);
    outbox(s, last - 1, &col);
    cr_assert_eq(col.n, 1);
    audience_text(&col.changes[0], out);
    free_changes(&col);
    return out;
}

static bool addressed_to(const ld_change_t *c, const char *node)
{
    for (size_t i = 0; i < c->naudience; i++) {
        if (strcmp(c->audience[i], node) == 0)
            return true;
    }
    return false;
}

/* Plays the broker: applies to `to` every change of `from` addressed to it.  Returns
 * how many were addressed to it. */
static size_t deliver(nd_store_t *from, nd_store_t *to)
{
    collect_t col;
    ld_error_t err;
    size_t n = 0;
    outbox(from, 0, &col);
    for (size_t i = 0; i < col.n; i++) {
        if (!addressed_to(&col.changes[i], nd_store_node_id(to)))
            continue;
        cr_assert_eq(nd_store_apply(to, &col.changes[i], &err), 0, "%s", err.msg);
        n++;
    }
    free_changes(&col);
    return n;
}

static long long count(nd_store_t *s, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    sqlite3 *db = nd_store_db(s);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The whole row of a record as text, NULL if absent.  Caller frees. */
static char *row_text(nd_store_t *s, const char *table, const char *id)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    sqlite3 *db = nd_store_db(s);
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" WHERE \"id\" = ?1", table);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    char *buf = NULL;
    size_t len = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        FILE *f = open_memstream(&buf, &len);
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            fprintf(f, "%s%s", i ? "|" : "", t != NULL ? (const char *)t : "NULL");
        }
        fclose(f);
    }
    sqlite3_finalize(st);
    return buf;
}

/* Asserts both stores hold the very same row (values, stamps, creator). */
static void assert_same_row(nd_store_t *a, nd_store_t *b, const char *table, const char *id)
{
    char *ra = row_text(a, table, id), *rb = row_text(b, table, id);
    cr_assert_not_null(ra, "%s %s missing in %s", table, id, nd_store_node_id(a));
    cr_assert_not_null(rb, "%s %s missing in %s", table, id, nd_store_node_id(b));
    cr_assert_str_eq(ra, rb);
    free(ra);
    free(rb);
}

/* The township (zhuyuan, longtan kept by home), the Dongguan and Shenzhen branches
 * (kept by dg and sz), and member 张三 of longtan, written at home. */
static void township(nd_store_t *home, char member[37])
{
    must_put(home, LD_KIND_ORG, "zhuyuan", NULL, "name", "竹园镇党委", "kind", "township",
             "node", "home", NULL);
    must_put(home, LD_KIND_ORG, "longtan", NULL, "name", "龙潭村支部", "kind", "village",
             "parent", "zhuyuan", "node", "home", NULL);
    must_put(home, LD_KIND_ORG, "dongguan", NULL, "name", "广东东莞支部", "kind", "mobile",
             "node", "dg", NULL);
    must_put(home, LD_KIND_ORG, "shenzhen", NULL, "name", "深圳支部", "kind", "mobile",
             "node", "sz", NULL);
    must_put(home, LD_KIND_MEMBER, NULL, member, "name", "张三", "org", "longtan",
             "gender", "male", NULL);
}

/* ------------------------------------------------------------------- tests ---- */

Test(audience, a_member_who_stays_home_goes_to_no_other_node)
{
    char member[37], act[37], aud[256];
    nd_store_t *home = open_node("home");
    township(home, member);
    cr_assert_str_eq(last_audience(home, aud), "");
    must_put(home, LD_KIND_ACTIVITY, NULL, act, "member", member, "date", "2010-05-04",
             "kind", "meeting", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    must_put(home, LD_KIND_CARE, NULL, NULL, "member", member, "kind", "elderly",
             "date", "2010-05-04", "status", "open", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    nd_store_destroy(&home);
}

Test(audience, an_org_goes_to_the_node_that_keeps_it_and_is_remembered_as_sent)
{
    char member[37], aud[256];
    nd_store_t *home = open_node("home");
    township(home, member);
    collect_t col;
    outbox(home, 0, &col);
    cr_assert_eq(col.n, 5);
    cr_assert_str_eq(audience_text(&col.changes[0], aud), "");          /* zhuyuan: home's */
    cr_assert_str_eq(audience_text(&col.changes[2], aud), "dg");        /* dongguan */
    cr_assert_str_eq(audience_text(&col.changes[3], aud), "sz");        /* shenzhen */
    free_changes(&col);
    cr_assert_eq(count(home, "SELECT count(*) FROM org_sent WHERE org = ?1 AND node = 'dg'",
                       "dongguan"), 1);
    must_put(home, LD_KIND_ORG, "dongguan", NULL, "name", "东莞支部", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    nd_store_destroy(&home);
}

Test(audience, a_trip_gives_the_branch_the_members_history_and_its_orgs_first)
{
    ld_error_t err;
    char member[37], act[37], gone[37], as[37], care[37], trip[37], aud[256];
    nd_store_t *home = open_node("home"), *dg = open_node("dg");
    township(home, member);
    must_put(home, LD_KIND_ACTIVITY, NULL, act, "member", member, "date", "2010-01-10",
             "kind", "dues", "month", "2010-01", "amount", "200", NULL);
    must_put(home, LD_KIND_ACTIVITY, NULL, gone, "member", member, "date", "2010-01-11",
             "kind", "meeting", NULL);
    ld_change_t del;
    ld_change_init(&del);
    del.kind = LD_KIND_ACTIVITY;
    strcpy(del.record_id, gone);
    del.deleted = true;
    cr_assert_eq(nd_store_write(home, &del, &err), 0, "%s", err.msg);
    ld_change_clear(&del);
    must_put(home, LD_KIND_ASSESSMENT, NULL, as, "member", member, "year", "2009",
             "side", "outflow", "grade", "competent", NULL);
    must_put(home, LD_KIND_CARE, NULL, care, "member", member, "kind", "children",
             "date", "2010-02-01", "status", "open", NULL);
    must_put(home, LD_KIND_APPROVAL, NULL, NULL, "member", member, "date", "2010-02-20",
             "to", "dongguan", "decision", "approved", NULL);
    uint64_t before = nd_store_last_seq(home);
    cr_assert_eq(count(dg, "SELECT count(*) FROM members", NULL), 0);

    must_put(home, LD_KIND_TRIP, NULL, trip, "member", member, "to", "dongguan",
             "started", "2010-03-01", "status", "registered", "employer", "东莞某电子厂", NULL);

    collect_t col;
    outbox(home, before, &col);
    /* zhuyuan and longtan (the member's org and its parent), the member, two
     * activities (one a fields snapshot and its tombstone), the assessment, the care
     * case, the approval, then the trip itself, last. */
    cr_assert_eq(col.n, 10, "%zu changes", col.n);
    for (size_t i = 0; i < col.n; i++) {
        cr_assert_str_eq(audience_text(&col.changes[i], aud), "dg", "change %zu to %s", i, aud);
        cr_assert_str_eq(col.changes[i].origin, "home");
    }
    cr_assert_eq(col.changes[0].kind, LD_KIND_ORG);
    cr_assert_eq(col.changes[1].kind, LD_KIND_ORG);
    cr_assert_eq(col.changes[2].kind, LD_KIND_MEMBER);
    ld_change_t *last = &col.changes[col.n - 1];
    cr_assert_eq(last->kind, LD_KIND_TRIP);
    cr_assert_str_eq(last->record_id, trip);
    cr_assert_eq(last->seq, nd_store_last_seq(home));
    /* A snapshot field keeps the stamp it has at home. */
    cr_assert_neq(col.changes[2].fields[0].hlc, 0);
    cr_assert_str_eq(col.changes[2].fields[0].origin, "home");
    cr_assert_lt(col.changes[2].fields[0].hlc, last->hlc);
    free_changes(&col);

    cr_assert_eq(deliver(home, dg), 11);          /* and the dongguan org from before */
    assert_same_row(home, dg, "members", member);
    assert_same_row(home, dg, "activities", act);
    assert_same_row(home, dg, "activities", gone);
    assert_same_row(home, dg, "assessments", as);
    assert_same_row(home, dg, "cares", care);
    assert_same_row(home, dg, "trips", trip);
    assert_same_row(home, dg, "orgs", "longtan");
    assert_same_row(home, dg, "orgs", "zhuyuan");
    assert_same_row(home, dg, "orgs", "dongguan");
    cr_assert_eq(count(dg, "SELECT deleted FROM activities WHERE id = ?1", gone), 1);
    cr_assert_eq(count(dg, "SELECT count(*) FROM orgs WHERE id = 'shenzhen'", NULL), 0);
    cr_assert_eq(count(home, "SELECT count(*) FROM org_sent WHERE node = 'dg'", NULL), 3);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

/* home and dg after member 张三 has started a trip to Dongguan and dg has it all. */
static void on_trip(nd_store_t **home, nd_store_t **dg, char member[37], char trip[37])
{
    *home = open_node("home");
    *dg = open_node("dg");
    township(*home, member);
    must_put(*home, LD_KIND_TRIP, NULL, trip, "member", member, "to", "dongguan",
             "started", "2010-03-01", "status", "registered", NULL);
    cr_assert_gt(deliver(*home, *dg), 0);
}

Test(audience, a_travelling_members_records_go_to_home_and_to_the_branch)
{
    char member[37], trip[37], aud[256];
    nd_store_t *home, *dg;
    on_trip(&home, &dg, member, trip);
    must_put(dg, LD_KIND_TRIP, trip, NULL, "status", "reported-in", "reported_in", "2010-03-05",
             NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");
    must_put(dg, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-03-20",
             "kind", "theme-day", NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");
    must_put(dg, LD_KIND_ASSESSMENT, NULL, NULL, "member", member, "year", "2010",
             "side", "inflow", "grade", "excellent", NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");
    must_put(dg, LD_KIND_MEMBER, member, NULL, "phone", "13900000000", NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-03-21",
             "kind", "dues", "month", "2010-03", "amount", "200", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    /* dg had the member's orgs from home: it sends no snapshot of its own back. */
    cr_assert_eq(count(dg, "SELECT count(*) FROM changelog WHERE origin = 'dg' AND kind = 'org'",
                       NULL), 0);
    deliver(dg, home);
    cr_assert_eq(count(home, "SELECT count(*) FROM activities WHERE kind = 'theme-day'", NULL), 1);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

Test(audience, an_agreement_its_contacts_and_visits_go_to_both_parties)
{
    ld_error_t err;
    char member[37], agreement[37], aud[256];
    nd_store_t *home = open_node("home"), *dg = open_node("dg"), *sz = open_node("sz");
    township(home, member);
    must_put(home, LD_KIND_AGREEMENT, NULL, agreement, "outflow", "longtan", "inflow", "dongguan",
             "signed", "2010-01-15", "terms", "双方共管", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    must_put(home, LD_KIND_CONTACT, NULL, NULL, "agreement", agreement, "date", "2010-04-01",
             "channel", "phone", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    must_put(home, LD_KIND_VISIT, NULL, NULL, "agreement", agreement, "date", "2010-05-01",
             "host", "dongguan", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    deliver(home, dg);
    cr_assert_eq(count(dg, "SELECT count(*) FROM agreements", NULL), 1);
    cr_assert_eq(count(dg, "SELECT count(*) FROM orgs WHERE id = 'longtan'", NULL), 1);
    must_put(dg, LD_KIND_CONTACT, NULL, NULL, "agreement", agreement, "date", "2010-10-01",
             "channel", "video", NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");

    /* A third node holding the agreement keeps neither org: read-only there. */
    collect_t col;
    outbox(home, 0, &col);
    for (size_t i = 0; i < col.n; i++)
        cr_assert_eq(nd_store_apply(sz, &col.changes[i], &err), 0, "%s", err.msg);
    free_changes(&col);
    cr_assert_eq(put(sz, LD_KIND_CONTACT, NULL, NULL, &err, "agreement", agreement,
                     "date", "2010-10-02", "channel", "phone", NULL), LD_EDENIED);
    cr_assert(strstr(err.msg, "longtan") != NULL && strstr(err.msg, "dongguan") != NULL &&
              strstr(err.msg, "read-only") != NULL, "%s", err.msg);
    cr_assert_eq(put(sz, LD_KIND_AGREEMENT, agreement, NULL, &err, "terms", "x", NULL),
                 LD_EDENIED);
    cr_assert_not(nd_store_is_mine(sz, LD_KIND_AGREEMENT, agreement));
    cr_assert(nd_store_is_mine(dg, LD_KIND_AGREEMENT, agreement));
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
    nd_store_destroy(&sz);
}

Test(audience, an_org_change_goes_to_every_node_it_was_sent_to)
{
    char member[37], trip[37], aud[256];
    nd_store_t *home, *dg;
    on_trip(&home, &dg, member, trip);
    must_put(home, LD_KIND_ORG, "longtan", NULL, "name", "龙潭村党支部", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    must_put(home, LD_KIND_ORG, "zhuyuan", NULL, "name", "中共竹园镇委员会", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    /* A new org below longtan is sent along once, before the org that names it. */
    must_put(home, LD_KIND_ORG, "longtan-2", NULL, "name", "龙潭村第二支部", "kind", "village",
             "parent", "longtan", "node", "home", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    deliver(home, dg);
    cr_assert_eq(count(dg, "SELECT count(*) FROM orgs WHERE name = '龙潭村党支部'", NULL), 1);
    cr_assert_eq(count(dg, "SELECT count(*) FROM orgs WHERE id = 'longtan-2'", NULL), 0);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

Test(audience, an_org_handed_to_another_node_reaches_it_whole)
{
    char member[37], aud[256];
    nd_store_t *home = open_node("home"), *sz = open_node("sz");
    township(home, member);
    must_put(home, LD_KIND_ORG, "huizhou", NULL, "name", "惠州支部", "kind", "mobile",
             "parent", "zhuyuan", "node", "home", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    uint64_t before = nd_store_last_seq(home);
    must_put(home, LD_KIND_ORG, "huizhou", NULL, "node", "sz", NULL);
    collect_t col;
    outbox(home, before, &col);
    /* zhuyuan (its parent), the whole of huizhou, then the change. */
    cr_assert_eq(col.n, 3);
    cr_assert_str_eq(col.changes[0].record_id, "zhuyuan");
    cr_assert_str_eq(col.changes[1].record_id, "huizhou");
    cr_assert_not_null(ld_change_get(&col.changes[1], "name"));
    cr_assert_eq(col.changes[2].nfields, 1);
    for (size_t i = 0; i < col.n; i++)
        cr_assert_str_eq(audience_text(&col.changes[i], aud), "sz");
    free_changes(&col);
    deliver(home, sz);
    assert_same_row(home, sz, "orgs", "huizhou");
    assert_same_row(home, sz, "orgs", "zhuyuan");
    nd_store_destroy(&home);
    nd_store_destroy(&sz);
}

Test(audience, an_agreement_that_changes_party_goes_whole_to_the_new_one_and_tells_the_old)
{
    char member[37], agreement[37], contact[37], visit[37], aud[256];
    nd_store_t *home = open_node("home"), *dg = open_node("dg"), *sz = open_node("sz");
    township(home, member);
    must_put(home, LD_KIND_AGREEMENT, NULL, agreement, "outflow", "longtan", "inflow", "dongguan",
             "signed", "2010-01-15", NULL);
    must_put(home, LD_KIND_CONTACT, NULL, contact, "agreement", agreement, "date", "2010-04-01",
             "channel", "phone", NULL);
    must_put(home, LD_KIND_VISIT, NULL, visit, "agreement", agreement, "date", "2010-05-01",
             "host", "dongguan", NULL);
    deliver(home, dg);
    deliver(home, sz);
    cr_assert_eq(count(sz, "SELECT count(*) FROM agreements", NULL), 0);

    must_put(home, LD_KIND_AGREEMENT, agreement, NULL, "inflow", "shenzhen", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg,sz");
    deliver(home, dg);
    deliver(home, sz);
    assert_same_row(home, sz, "agreements", agreement);
    assert_same_row(home, sz, "contacts", contact);
    assert_same_row(home, sz, "visits", visit);
    assert_same_row(home, dg, "agreements", agreement);
    /* From now on its records go to Shenzhen, and Dongguan may only read them. */
    must_put(home, LD_KIND_CONTACT, NULL, NULL, "agreement", agreement, "date", "2010-10-01",
             "channel", "video", NULL);
    cr_assert_str_eq(last_audience(home, aud), "sz");
    cr_assert_not(nd_store_is_mine(dg, LD_KIND_AGREEMENT, agreement));
    cr_assert(nd_store_is_mine(sz, LD_KIND_CONTACT, contact));
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
    nd_store_destroy(&sz);
}

Test(audience, an_org_known_to_more_nodes_than_one_change_may_name_is_sent_in_parts)
{
    ld_error_t err;
    char aud[256];
    nd_store_t *home = open_node("home");
    must_put(home, LD_KIND_ORG, "zhuyuan", NULL, "name", "竹园镇党委", "kind", "township",
             "node", "home", NULL);
    /* 20 nodes have sent us (so hold) zhuyuan. */
    for (int i = 0; i < 20; i++) {
        ld_change_t c;
        ld_change_init(&c);
        c.kind = LD_KIND_ORG;
        strcpy(c.record_id, "zhuyuan");
        snprintf(c.origin, sizeof c.origin, "node%02d", i);
        c.seq = 1;
        c.hlc = ld_hlc_make(ld_hlc_wall_now() - 100000, (uint16_t)i);
        cr_assert_eq(ld_change_set(&c, "kind", "township", NULL), 0);
        cr_assert_eq(nd_store_apply(home, &c, &err), 0, "%s", err.msg);
        ld_change_clear(&c);
    }
    uint64_t before = nd_store_last_seq(home);
    must_put(home, LD_KIND_ORG, "zhuyuan", NULL, "name", "中共竹园镇委员会", NULL);
    collect_t col;
    outbox(home, before, &col);
    cr_assert_eq(col.n, 2);
    cr_assert_eq(col.changes[0].naudience, LD_AUDIENCE_MAX);
    cr_assert_eq(col.changes[1].naudience, 20 - LD_AUDIENCE_MAX);
    cr_assert_eq(col.changes[0].hlc, col.changes[1].hlc);
    cr_assert_str_eq(audience_text(&col.changes[1], aud), "node16,node17,node18,node19");
    free_changes(&col);
    nd_store_destroy(&home);
}

Test(audience, a_member_who_moves_branches_takes_the_history_and_leaves_the_old_one_read_only)
{
    ld_error_t err;
    char member[37], trip[37], trip2[37], act_dg[37], aud[256];
    nd_store_t *home, *dg, *sz;
    on_trip(&home, &dg, member, trip);
    sz = open_node("sz");
    deliver(home, sz);                                   /* the shenzhen org */
    cr_assert_eq(count(sz, "SELECT count(*) FROM members", NULL), 0);

    /* Dongguan records an activity; home hears of it. */
    must_put(dg, LD_KIND_ACTIVITY, NULL, act_dg, "member", member, "date", "2010-04-10",
             "kind", "volunteer", "note", "社区服务", NULL);
    deliver(dg, home);

    /* Home ends the Dongguan trip: Dongguan is told. */
    must_put(home, LD_KIND_TRIP, trip, NULL, "status", "returned", "ended", "2010-06-30", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");

    /* Home starts a trip to Shenzhen: Shenzhen gets everything, Dongguan nothing. */
    uint64_t before = nd_store_last_seq(home);
    must_put(home, LD_KIND_TRIP, NULL, trip2, "member", member, "to", "shenzhen",
             "started", "2010-07-05", "status", "registered", NULL);
    collect_t col;
    outbox(home, before, &col);
    for (size_t i = 0; i < col.n; i++)
        cr_assert_str_eq(audience_text(&col.changes[i], aud), "sz", "change %zu", i);
    free_changes(&col);
    long long dg_had = count(dg, "SELECT count(*) FROM changelog", NULL);
    deliver(home, dg);
    deliver(home, sz);
    cr_assert_eq(count(dg, "SELECT count(*) FROM changelog", NULL), dg_had + 1);  /* trip end */
    cr_assert_eq(count(dg, "SELECT count(*) FROM trips WHERE id = ?1", trip2), 0);
    cr_assert_eq(count(dg, "SELECT count(*) FROM trips WHERE status = 'returned'", NULL), 1);

    assert_same_row(home, sz, "members", member);
    assert_same_row(home, sz, "trips", trip);
    assert_same_row(home, sz, "trips", trip2);
    assert_same_row(home, sz, "activities", act_dg);
    assert_same_row(home, sz, "orgs", "longtan");
    assert_same_row(home, sz, "orgs", "dongguan");

    /* From now on the member's records go home and to Shenzhen only. */
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-07-20",
             "kind", "dues", "month", "2010-07", "amount", "200", NULL);
    cr_assert_str_eq(last_audience(home, aud), "sz");
    must_put(sz, LD_KIND_TRIP, trip2, NULL, "status", "reported-in", "reported_in", "2010-07-08",
             NULL);
    cr_assert_str_eq(last_audience(sz, aud), "home");
    cr_assert(nd_store_is_mine(sz, LD_KIND_MEMBER, member));
    cr_assert(nd_store_is_mine(home, LD_KIND_MEMBER, member));
    cr_assert_not(nd_store_is_mine(dg, LD_KIND_MEMBER, member));
    cr_assert_not(nd_store_is_mine(dg, LD_KIND_ACTIVITY, act_dg));

    /* Dongguan keeps what it had, read-only. */
    cr_assert_eq(count(dg, "SELECT count(*) FROM activities WHERE id = ?1", act_dg), 1);
    cr_assert_eq(put(dg, LD_KIND_ACTIVITY, NULL, NULL, &err, "member", member, "date", "2010-07-21",
                     "kind", "meeting", NULL), LD_EDENIED);
    cr_assert_str_eq(err.msg, "member 张三 is not with this branch (left on 2010-06-30); "
                              "its records are read-only here");
    cr_assert_eq(put(dg, LD_KIND_ACTIVITY, act_dg, NULL, &err, "note", "改", NULL), LD_EDENIED);
    cr_assert_eq(put(dg, LD_KIND_MEMBER, member, NULL, &err, "phone", "1", NULL), LD_EDENIED);
    ld_change_t del;
    ld_change_init(&del);
    del.kind = LD_KIND_ACTIVITY;
    strcpy(del.record_id, act_dg);
    del.deleted = true;
    cr_assert_eq(nd_store_write(dg, &del, &err), LD_EDENIED);
    ld_change_clear(&del);
    cr_assert_eq(count(dg, "SELECT count(*) FROM changelog WHERE origin = 'dg'", NULL), 1);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
    nd_store_destroy(&sz);
}

Test(audience, a_branch_may_not_write_a_member_it_never_had)
{
    ld_error_t err;
    char member[37];
    nd_store_t *home = open_node("home"), *dg = open_node("dg");
    township(home, member);
    collect_t col;
    outbox(home, 0, &col);
    for (size_t i = 0; i < col.n; i++)
        cr_assert_eq(nd_store_apply(dg, &col.changes[i], &err), 0, "%s", err.msg);
    free_changes(&col);
    cr_assert_eq(put(dg, LD_KIND_ACTIVITY, NULL, NULL, &err, "member", member, "date", "2010-07-21",
                     "kind", "meeting", NULL), LD_EDENIED);
    cr_assert_str_eq(err.msg, "member 张三 is not with this branch; its records are read-only here");
    cr_assert_eq(put(dg, LD_KIND_MEMBER, NULL, NULL, &err, "name", "李四", "org", "longtan", NULL),
                 LD_EDENIED);
    cr_assert_eq(count(dg, "SELECT count(*) FROM changelog WHERE origin = 'dg'", NULL), 0);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

Test(audience, audiences_follow_trips_and_org_moves_within_a_group_and_writes_by_another_handle)
{
    ld_error_t err;
    char member[37], fresh[37], trip[37], aud[256];
    nd_store_t *home = open_node("home");
    township(home, member);

    cr_assert_eq(nd_store_begin(home, &err), 0, "%s", err.msg);
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-03-01",
             "kind", "meeting", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    must_put(home, LD_KIND_TRIP, NULL, trip, "member", member, "to", "dongguan",
             "started", "2010-03-02", "status", "registered", NULL);
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-03-03",
             "kind", "dues", "month", "2010-03", "amount", "200", NULL);
    cr_assert_str_eq(last_audience(home, aud), "dg");
    /* A member made in the group, then sent away in it. */
    must_put(home, LD_KIND_MEMBER, NULL, fresh, "name", "李四", "org", "longtan", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", fresh, "date", "2010-03-04",
             "kind", "study", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    must_put(home, LD_KIND_TRIP, NULL, NULL, "member", fresh, "to", "shenzhen",
             "started", "2010-03-05", "status", "registered", NULL);
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", fresh, "date", "2010-03-06",
             "kind", "study", NULL);
    cr_assert_str_eq(last_audience(home, aud), "sz");
    /* The Dongguan branch handed to the Shenzhen node. */
    must_put(home, LD_KIND_ORG, "dongguan", NULL, "node", "sz", NULL);
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-03-07",
             "kind", "study", NULL);
    cr_assert_str_eq(last_audience(home, aud), "sz");
    cr_assert_eq(nd_store_commit(home, &err), 0, "%s", err.msg);

    /* Another handle on the file (the CLI beside the daemon) ends the trip. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/home.db", dir);
    nd_store_t *cli = nd_store_open(path, false, &err);
    cr_assert_not_null(cli, "%s", err.msg);
    must_put(cli, LD_KIND_TRIP, trip, NULL, "status", "returned", "ended", "2010-04-01", NULL);
    nd_store_destroy(&cli);
    must_put(home, LD_KIND_ACTIVITY, NULL, NULL, "member", member, "date", "2010-04-02",
             "kind", "study", NULL);
    cr_assert_str_eq(last_audience(home, aud), "");
    nd_store_destroy(&home);
}

/* ---------------------------------------------------------------- digests ---- */

/* Whether two digests of the same pair, one from each side, say the same. */
static bool digests_agree(const nd_digest_t *a, const nd_digest_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static nd_digest_t digest(nd_store_t *s, const char *peer)
{
    nd_digest_t d;
    ld_error_t err;
    cr_assert_eq(nd_digest(nd_store_db(s), nd_store_node_id(s), peer, &d, NULL, NULL, &err), 0,
                 "%s", err.msg);
    return d;
}

Test(audience, home_and_branch_digest_what_they_share_alike_and_a_change_in_flight_shows)
{
    char member[37], other[37], trip[37], act[37], aud[256];
    nd_store_t *home = open_node("home"), *dg = open_node("dg");
    township(home, member);
    must_put(home, LD_KIND_MEMBER, NULL, other, "name", "李四", "org", "longtan", NULL);
    must_put(home, LD_KIND_TRIP, NULL, trip, "member", member, "to", "dongguan",
             "started", "2010-03-01", "status", "registered", NULL);
    deliver(home, dg);
    must_put(dg, LD_KIND_ACTIVITY, NULL, act, "member", member, "date", "2010-04-10",
             "kind", "theme-day", NULL);
    cr_assert_str_eq(last_audience(dg, aud), "home");
    deliver(dg, home);

    nd_digest_t h = digest(home, "dg"), b = digest(dg, "home");
    cr_assert(digests_agree(&h, &b), "home and dg disagree after delivery both ways");
    cr_assert_eq(h.kinds[LD_KIND_MEMBER].records, 1, "李四 stays at home: not shared");
    cr_assert_eq(h.kinds[LD_KIND_TRIP].records, 1);
    cr_assert_eq(h.kinds[LD_KIND_ACTIVITY].records, 1);
    cr_assert_eq(digest(home, "sz").all.records, 1, "only the Shenzhen org is shared with sz");

    /* A value written at home and not yet delivered: that kind and the whole differ. */
    must_put(home, LD_KIND_MEMBER, member, NULL, "phone", "13800000000", NULL);
    h = digest(home, "dg");
    b = digest(dg, "home");
    cr_assert_neq(memcmp(h.kinds[LD_KIND_MEMBER].digest, b.kinds[LD_KIND_MEMBER].digest,
                         ND_DIGEST_BYTES), 0);
    cr_assert_neq(memcmp(h.all.digest, b.all.digest, ND_DIGEST_BYTES), 0);
    cr_assert_eq(memcmp(h.kinds[LD_KIND_ACTIVITY].digest, b.kinds[LD_KIND_ACTIVITY].digest,
                        ND_DIGEST_BYTES), 0);
    deliver(home, dg);
    h = digest(home, "dg");
    b = digest(dg, "home");
    cr_assert(digests_agree(&h, &b), "home and dg disagree once the change arrived");
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

Test(audience, an_agreement_its_contacts_and_visits_are_digested_alike_on_both_sides)
{
    char member[37], agreement[37];
    nd_store_t *home = open_node("home"), *dg = open_node("dg");
    township(home, member);
    must_put(home, LD_KIND_AGREEMENT, NULL, agreement, "outflow", "longtan", "inflow", "dongguan",
             "signed", "2010-01-15", NULL);
    must_put(home, LD_KIND_VISIT, NULL, NULL, "agreement", agreement, "date", "2010-05-01",
             "host", "longtan", NULL);
    deliver(home, dg);
    must_put(dg, LD_KIND_CONTACT, NULL, NULL, "agreement", agreement, "date", "2010-04-01",
             "channel", "hotline", NULL);
    deliver(dg, home);
    nd_digest_t h = digest(home, "dg"), b = digest(dg, "home");
    cr_assert(digests_agree(&h, &b), "home and dg disagree on their agreement");
    cr_assert_eq(h.kinds[LD_KIND_AGREEMENT].records, 1);
    cr_assert_eq(h.kinds[LD_KIND_CONTACT].records, 1);
    cr_assert_eq(h.kinds[LD_KIND_VISIT].records, 1);
    cr_assert_eq(h.kinds[LD_KIND_MEMBER].records, 0, "张三 never left home");
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

/* The home ends the Dongguan trip and starts one to Shenzhen while Dongguan, not yet
 * told, records that the member reported in, later by the clock.  The ending stands on
 * both sides (a later stage is never given way to an earlier one), the report-in is
 * logged as the race's loser on both, and the two digests agree: the member has moved
 * on, the ended trip is still shared. */
Test(audience, a_trip_ended_at_home_while_the_branch_reported_him_in_stays_ended_on_both_sides)
{
    char member[37], trip[37];
    nd_store_t *home = open_node("home"), *dg = open_node("dg");
    township(home, member);
    must_put(home, LD_KIND_TRIP, NULL, trip, "member", member, "to", "dongguan",
             "started", "2010-03-01", "status", "registered", NULL);
    deliver(home, dg);
    must_put(home, LD_KIND_TRIP, trip, NULL, "status", "transferred", "ended", "2010-09-30",
             NULL);
    must_put(home, LD_KIND_TRIP, NULL, NULL, "member", member, "to", "shenzhen",
             "started", "2010-10-08", "status", "registered", NULL);
    must_put(dg, LD_KIND_TRIP, trip, NULL, "status", "reported-in", "reported_in",
             "2010-03-06", NULL);
    deliver(home, dg);
    deliver(dg, home);
    nd_store_t *sides[] = { home, dg };
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(count(sides[i], "SELECT count(*) FROM trips WHERE id = ?1 AND "
                                     "status = 'transferred' AND ended = '2010-09-30' AND "
                                     "reported_in = '2010-03-06'", trip), 1,
                     "%s: the trip is ended, with both dates", nd_store_node_id(sides[i]));
        cr_assert_eq(count(sides[i], "SELECT count(*) FROM conflicts WHERE field = 'status' "
                                     "AND winner_value = 'transferred' AND loser_value = "
                                     "'reported-in'", NULL), 1,
                     "%s: the report-in is logged as the loser", nd_store_node_id(sides[i]));
    }
    assert_same_row(home, dg, "trips", trip);
    nd_digest_t h = digest(home, "dg"), b = digest(dg, "home");
    cr_assert(digests_agree(&h, &b), "home and dg disagree after the race");
    cr_assert_eq(h.kinds[LD_KIND_MEMBER].records, 0, "the member moved on");
    cr_assert_eq(h.kinds[LD_KIND_TRIP].records, 1, "the ended trip is still shared");
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}
