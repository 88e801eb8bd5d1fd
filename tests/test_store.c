/* test_store.c: the node's store: the one write path (row and change log in one
 * transaction, refusals that leave the file untouched), tombstones, groups, settings,
 * the outbox, and the apply path (idempotent, order-independent, conflicts, clocks). */
#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hlc.h"
#include "store.h"
#include "uuid.h"

static char dir[PATH_MAX];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-store-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
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

TestSuite(store, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ helpers ---- */

static void store_path(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.db", dir, name);
}

/* Opens (creating) store `name`; makes it node `node` unless node is NULL. */
static nd_store_t *open_store(const char *name, const char *node)
{
    char path[PATH_MAX + 64];
    ld_error_t err;
    store_path(name, path, sizeof path);
    nd_store_t *s = nd_store_open(path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    if (node != NULL)
        cr_assert_eq(nd_store_init_node(s, node, node, &err), 0, "%s", err.msg);
    return s;
}

/* Writes a record of `kind` (id NULL or "" = new): name, value pairs ending in NULL.
 * Returns the store's code; the record's id goes to id_out (may be NULL). */
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

static int delete_record(nd_store_t *s, ld_kind_t kind, const char *id, ld_error_t *err)
{
    ld_change_t c;
    ld_change_init(&c);
    c.kind = kind;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    c.deleted = true;
    int rc = nd_store_write(s, &c, err);
    ld_change_clear(&c);
    return rc;
}

/* The home township of the seed: orgs zhuyuan (township), longtan (village) kept by
 * node "home", dongguan (mobile branch) kept by node "dg"; member 张三 of longtan. */
static void world(nd_store_t *s, char member[37])
{
    ld_error_t err;
    cr_assert_eq(put(s, LD_KIND_ORG, "zhuyuan", NULL, &err, "name", "竹园镇党委", "kind", "township",
                     "node", "home", NULL), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ORG, "longtan", NULL, &err, "name", "龙潭村支部", "kind", "village",
                     "parent", "zhuyuan", "node", "home", NULL), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ORG, "dongguan", NULL, &err, "name", "广东东莞支部", "kind", "mobile",
                     "node", "dg", NULL), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, member, &err, "name", "张三", "org", "longtan",
                     "gender", "male", NULL), 0, "%s", err.msg);
}

/* One column of one row as text (NULL: no row or NULL value); caller frees. */
static char *query_text(nd_store_t *s, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    sqlite3 *db = nd_store_db(s);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static long long query_int(nd_store_t *s, const char *sql, const char *arg)
{
    char *t = query_text(s, sql, arg);
    long long v = t != NULL ? strtoll(t, NULL, 10) : -1;
    free(t);
    return v;
}

/* Asserts that column `col` of record `id` in `table` reads `want` (NULL = NULL). */
static void assert_column(nd_store_t *s, const char *table, const char *id, const char *col,
                          const char *want)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT \"%s\" FROM \"%s\" WHERE \"id\" = ?1", col, table);
    char *got = query_text(s, sql, id);
    if (want == NULL)
        cr_assert_null(got, "%s.%s of %s is %s", table, col, id, got);
    else
        cr_assert(got != NULL && strcmp(got, want) == 0, "%s.%s of %s is %s, want %s", table,
                  col, id, got != NULL ? got : "NULL", want);
    free(got);
}

/* Every change in `from`'s log, unpacked, in seq order; *n set.  Caller frees with
 * free_changes. */
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
    cr_assert_eq(col->changes[col->n].seq, seq);
    col->n++;
    return 0;
}

static void outbox(nd_store_t *s, uint64_t after, collect_t *col)
{
    ld_error_t err;
    memset(col, 0, sizeof *col);
    int n = nd_store_outbox(s, after, SIZE_MAX, collect_one, col, &err);
    cr_assert_geq(n, 0, "%s", err.msg);
    cr_assert_eq((size_t)n, col->n);
}

static void free_changes(collect_t *col)
{
    for (size_t i = 0; i < col->n; i++)
        ld_change_clear(&col->changes[i]);
    free(col->changes);
    memset(col, 0, sizeof *col);
}

static bool addressed_to(const ld_change_t *c, const char *node)
{
    for (size_t i = 0; i < c->naudience; i++) {
        if (strcmp(c->audience[i], node) == 0)
            return true;
    }
    return false;
}

/* Plays the broker: applies to `to` every change of `from` addressed to to's node. */
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

/* Writes every row of `sql` to f, cells separated by '|', rows by '\n'. */
static void dump_rows(sqlite3 *db, const char *sql, FILE *f)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    fprintf(f, "== %s\n", sql);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            fprintf(f, "%s%s", i ? "|" : "", t != NULL ? (const char *)t : "NULL");
        }
        fputc('\n', f);
    }
    sqlite3_finalize(st);
}

/* Every table of a store in a stable order, without the change log's and the
 * conflict log's local times and row ids.  Caller frees. */
static char *dump(nd_store_t *s)
{
    char *buf = NULL, sql[256];
    size_t len = 0;
    sqlite3 *db = nd_store_db(s);
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY \"id\"",
                 ld_schema_kind((ld_kind_t)k)->table);
        dump_rows(db, sql, f);
    }
    dump_rows(db, "SELECT \"record_id\", \"kind\", \"field\", \"winner_value\", \"winner_hlc\", "
                  "\"winner_origin\", \"loser_value\", \"loser_hlc\", \"loser_origin\" FROM "
                  "\"conflicts\" ORDER BY \"record_id\", \"field\", \"loser_hlc\", \"loser_origin\"",
              f);
    dump_rows(db, "SELECT \"origin\", \"seq\", \"record_id\", \"kind\", \"hlc\", \"deleted\", "
                  "hex(\"body\") FROM \"changelog\" ORDER BY \"origin\", \"seq\"", f);
    dump_rows(db, "SELECT * FROM \"org_sent\" ORDER BY \"org\", \"node\"", f);
    fclose(f);
    return buf;
}

/* FNV-1a of a file's bytes (0 for a missing file, which is distinct from an empty one). */
static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    uint64_t h = 1469598103934665603ull;
    int ch;
    while ((ch = fgetc(f)) != EOF) {
        h ^= (uint64_t)(unsigned char)ch;
        h *= 1099511628211ull;
    }
    fclose(f);
    return h ^ 1;
}

/* The store's files after a checkpoint, as one hash. */
static uint64_t store_hash(nd_store_t *s, const char *name)
{
    char path[PATH_MAX + 64], wal[PATH_MAX + 80];
    cr_assert_eq(sqlite3_wal_checkpoint_v2(nd_store_db(s), NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                           NULL, NULL), SQLITE_OK);
    store_path(name, path, sizeof path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    return file_hash(path) * 31 + file_hash(wal);
}

/* A hand-made change from elsewhere. */
static void mk(ld_change_t *c, ld_kind_t kind, const char *id, const char *origin, uint64_t seq,
               uint64_t hlc)
{
    ld_change_init(c);
    c->kind = kind;
    strcpy(c->record_id, id);
    strcpy(c->origin, origin);
    c->seq = seq;
    c->hlc = hlc;
}

static void set_based(ld_change_t *c, const char *name, const char *value, uint64_t base_hlc,
                      const char *base_origin)
{
    cr_assert_eq(ld_change_set(c, name, value, NULL), 0);
    ld_field_t *f = &c->fields[c->nfields - 1];
    f->base_hlc = base_hlc;
    strcpy(f->base_origin, base_origin);
}

/* A stamp one minute ago plus `plus`: in the past, so no clock refuses it. */
static uint64_t past(uint64_t plus)
{
    static uint64_t base;
    if (base == 0)
        base = ld_hlc_make(ld_hlc_wall_now() - 60000, 0);
    return base + plus;
}

/* ------------------------------------------------------------- node, settings ---- */

Test(store, a_new_store_has_no_node_until_init_and_init_happens_once)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", NULL);
    cr_assert_str_eq(nd_store_node_id(s), "");
    cr_assert_eq(put(s, LD_KIND_ORG, "zhuyuan", NULL, &err, "name", "竹园", "kind", "township",
                     "node", "home", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "no node id") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, "Bad Id", "x", &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "Bad Id") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, "home", "竹园镇党委", &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, "other", "x", &err), LD_EEXIST);
    cr_assert_str_eq(nd_store_node_id(s), "home");
    cr_assert_str_eq(nd_store_node_name(s), "竹园镇党委");
    nd_store_destroy(&s);

    s = open_store("a", NULL);
    cr_assert_str_eq(nd_store_node_id(s), "home");
    cr_assert_str_eq(nd_store_node_name(s), "竹园镇党委");
    nd_store_destroy(&s);
}

Test(store, settings_are_kept_and_the_stores_own_keys_are_refused)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "home");
    cr_assert_null(nd_store_setting(s, "broker.endpoint"));
    cr_assert_eq(nd_store_set_setting(s, "broker.endpoint", "tcp://127.0.0.1:7700", &err), 0);
    char *v = nd_store_setting(s, "broker.endpoint");
    cr_assert_str_eq(v, "tcp://127.0.0.1:7700");
    free(v);
    cr_assert_eq(nd_store_set_setting(s, "broker.endpoint", NULL, &err), 0);
    cr_assert_null(nd_store_setting(s, "broker.endpoint"));
    cr_assert_eq(nd_store_set_setting(s, "node_id", "x", &err), LD_EDENIED);
    cr_assert(strstr(err.msg, "node_id") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_set_setting(s, "report.x", "\xff", &err), LD_EINVAL);
    nd_store_destroy(&s);
}

/* ---------------------------------------------------------------- the write ---- */

Test(store, a_write_stores_the_row_and_one_change_in_the_log)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert(ld_uuid_valid(member));
    assert_column(s, "members", member, "name", "张三");
    assert_column(s, "members", member, "org", "longtan");
    assert_column(s, "members", member, "gender", "male");
    assert_column(s, "members", member, "born", NULL);
    assert_column(s, "members", member, "deleted", "0");
    assert_column(s, "members", member, "origin", "home");
    assert_column(s, "members", member, "created_by", "home");
    cr_assert_eq(nd_store_last_seq(s), 4);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog WHERE record_id = ?1", member), 1);
    cr_assert_eq(query_int(s, "SELECT seq FROM changelog WHERE record_id = ?1", member), 4);
    /* The row's stamp is the change's. */
    cr_assert_eq(query_int(s, "SELECT hlc FROM members WHERE id = ?1", member),
                 query_int(s, "SELECT hlc FROM changelog WHERE record_id = ?1", member));

    collect_t col;
    outbox(s, 3, &col);
    cr_assert_eq(col.n, 1);
    ld_change_t *c = &col.changes[0];
    cr_assert_eq(c->kind, LD_KIND_MEMBER);
    cr_assert_str_eq(c->record_id, member);
    cr_assert_str_eq(c->origin, "home");
    cr_assert_eq(c->seq, 4);
    cr_assert_str_eq(ld_change_get(c, "name"), "张三");
    cr_assert_str_eq(ld_change_get(c, "gender"), "male");
    cr_assert_eq(c->fields[0].base_hlc, 0);
    free_changes(&col);

    /* An update carries only what it sets, with the stamp each field had as its base. */
    uint64_t created_hlc = (uint64_t)query_int(s, "SELECT hlc FROM members WHERE id = ?1", member);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "phone", "13800000000", NULL), 0,
                 "%s", err.msg);
    outbox(s, 4, &col);
    cr_assert_eq(col.n, 1);
    cr_assert_eq(col.changes[0].nfields, 1);
    cr_assert_eq(col.changes[0].fields[0].base_hlc, 0);        /* phone was never set */
    cr_assert_gt(col.changes[0].hlc, created_hlc);
    free_changes(&col);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "name", "张三丰", NULL), 0);
    outbox(s, 5, &col);
    cr_assert_eq(col.changes[0].fields[0].base_hlc, created_hlc);
    cr_assert_str_eq(col.changes[0].fields[0].base_origin, "home");
    free_changes(&col);
    assert_column(s, "members", member, "name", "张三丰");
    nd_store_destroy(&s);
}

Test(store, money_and_years_are_stored_as_integers)
{
    ld_error_t err;
    char member[37], act[37], as[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, NULL, act, &err, "member", member, "date", "2010-05-04",
                     "kind", "dues", "month", "2010-05", "amount", "1050", NULL), 0, "%s", err.msg);
    cr_assert_eq(query_int(s, "SELECT typeof(amount) = 'integer' AND amount = 1050 FROM activities "
                              "WHERE id = ?1", act), 1);
    cr_assert_eq(put(s, LD_KIND_ASSESSMENT, NULL, as, &err, "member", member, "year", "2009",
                     "side", "inflow", "grade", "excellent", NULL), 0, "%s", err.msg);
    cr_assert_eq(query_int(s, "SELECT typeof(year) = 'integer' AND year = 2009 FROM assessments "
                              "WHERE id = ?1", as), 1);
    ld_change_t got;
    ld_change_init(&got);
    cr_assert_eq(nd_store_get(s, LD_KIND_ACTIVITY, act, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ld_change_get(&got, "amount"), "1050");
    ld_change_clear(&got);
    nd_store_destroy(&s);
}

Test(store, a_reference_to_a_missing_record_is_refused_naming_field_and_value)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "李四", "org", "nowhere", NULL),
                 LD_ENOTFOUND);
    cr_assert(strstr(err.msg, "org") != NULL && strstr(err.msg, "nowhere") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_TRIP, NULL, NULL, &err, "member", "00000000-0000-4000-8000-000000000000",
                     "to", "dongguan", "started", "2010-03-01", "status", "registered", NULL),
                 LD_ENOTFOUND);
    cr_assert(strstr(err.msg, "member") != NULL &&
              strstr(err.msg, "00000000-0000-4000-8000-000000000000") != NULL, "%s", err.msg);
    /* A deleted record cannot be referred to either. */
    cr_assert_eq(put(s, LD_KIND_ORG, "gone", NULL, &err, "name", "撤销", "kind", "village",
                     "node", "home", NULL), 0);
    cr_assert_eq(delete_record(s, LD_KIND_ORG, "gone", &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "李四", "org", "gone", NULL),
                 LD_ENOTFOUND);
    nd_store_destroy(&s);
}

Test(store, invalid_values_and_missing_required_fields_are_refused)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "born", "2023-02-29", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "born") != NULL && strstr(err.msg, "2023-02-29") != NULL, "%s",
              err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "org", "longtan", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "name") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "name", "", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "name") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, NULL, NULL, &err, "member", member, "date", "2010-05-04",
                     "kind", "dues", "amount", "-5", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "amount") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "name", "\xe5\xbc", NULL), LD_EINVAL);

    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, member);
    cr_assert_eq(nd_store_write(s, &c, &err), LD_EINVAL);          /* nothing to write */
    c.kind = LD_KIND_NONE;
    cr_assert_eq(nd_store_write(s, &c, &err), LD_EINVAL);
    ld_change_clear(&c);
    cr_assert_eq(nd_store_last_seq(s), 4);
    nd_store_destroy(&s);
}

Test(store, a_refused_write_leaves_the_store_file_byte_for_byte_unchanged)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    uint64_t before = store_hash(s, "a");
    /* Refused at each stage: validation, reference, existence, after the row is read. */
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "李四", "org", "nowhere", NULL),
                 LD_ENOTFOUND);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "born", "1980-13-01", NULL), LD_EINVAL);
    cr_assert_eq(put(s, LD_KIND_MEMBER, "00000000-0000-4000-8000-000000000000", NULL, &err,
                     "phone", "1", NULL), LD_ENOTFOUND);
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ORG;
    strcpy(c.record_id, "longtan");
    cr_assert_eq(ld_change_set(&c, "name", "x", NULL), 0);
    cr_assert_eq(nd_store_create(s, &c, &err), LD_EEXIST);
    ld_change_clear(&c);
    cr_assert_eq(store_hash(s, "a"), before);

    /* And the seq it would have used is not lost: the next write takes 5. */
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "phone", "1", NULL), 0);
    cr_assert_eq(nd_store_last_seq(s), 5);
    cr_assert_neq(store_hash(s, "a"), before);
    nd_store_destroy(&s);
}

static void exec_sql(nd_store_t *s, const char *sql)
{
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(nd_store_db(s), sql, NULL, NULL, &msg), SQLITE_OK, "%s", msg);
}

Test(store, a_write_that_fails_after_its_row_leaves_neither_row_nor_change)
{
    ld_error_t err;
    char member[37], m2[37], m3[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    /* The change log refuses one record, as a full disk would. */
    exec_sql(s, "CREATE TRIGGER \"boom\" BEFORE INSERT ON \"changelog\" "
                "WHEN NEW.\"record_id\" = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(put(s, LD_KIND_ORG, "boom", NULL, &err, "name", "x", "kind", "village",
                     "node", "home", NULL), LD_EIO);
    cr_assert(strstr(err.msg, "disk full") != NULL, "%s", err.msg);
    cr_assert_not(nd_store_exists(s, LD_KIND_ORG, "boom"));
    cr_assert_eq(store_hash(s, "a"), before);

    /* Inside a group only the failed write is undone; the group goes on. */
    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m2, &err, "name", "李四", "org", "longtan", NULL), 0);
    cr_assert_eq(put(s, LD_KIND_ORG, "boom", NULL, &err, "name", "x", "kind", "village",
                     "node", "home", NULL), LD_EIO);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m3, &err, "name", "王五", "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_commit(s, &err), 0, "%s", err.msg);
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m2));
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m3));
    cr_assert_not(nd_store_exists(s, LD_KIND_ORG, "boom"));
    cr_assert_eq(query_int(s, "SELECT count(*) FROM orgs WHERE id = 'boom'", NULL), 0);
    cr_assert_eq(query_int(s, "SELECT seq FROM changelog WHERE record_id = ?1", m3), 6);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 6);
    nd_store_destroy(&s);
}

Test(store, a_bulk_group_goes_on_past_a_refused_write_and_a_write_failing_part_way_breaks_it)
{
    ld_error_t err;
    char member[37], m2[37], m3[37], m4[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(nd_store_begin_bulk(s, &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_begin_bulk(s, &err), LD_EBUSY);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m2, &err, "name", "李四", "org", "longtan", NULL), 0);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "赵六", "org", "nowhere", NULL),
                 LD_ENOTFOUND);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m3, &err, "name", "王五", "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_commit(s, &err), 0, "%s", err.msg);
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m2));
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m3));
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 6);
    cr_assert_eq(query_int(s, "SELECT max(seq) FROM changelog", NULL), 6);

    /* The change log refuses one record after its row went in, as a full disk would. */
    exec_sql(s, "CREATE TRIGGER \"boom\" BEFORE INSERT ON \"changelog\" "
                "WHEN NEW.\"record_id\" = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(nd_store_begin_bulk(s, &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m4, &err, "name", "孙七", "org", "longtan", NULL), 0);
    cr_assert_eq(put(s, LD_KIND_ORG, "boom", NULL, &err, "name", "x", "kind", "village",
                     "node", "home", NULL), LD_EIO);
    cr_assert(strstr(err.msg, "disk full") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "周八", "org", "longtan", NULL),
                 LD_EIO);
    cr_assert(strstr(err.msg, "roll it back") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_commit(s, &err), LD_EIO);
    cr_assert_eq(store_hash(s, "a"), before);
    cr_assert_not(nd_store_exists(s, LD_KIND_MEMBER, m4));
    cr_assert_eq(nd_store_last_seq(s), 6);
    /* The group is over: the store takes writes again. */
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m4, &err, "name", "孙七", "org", "longtan", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(nd_store_last_seq(s), 7);
    nd_store_destroy(&s);
}

Test(store, a_write_over_a_stored_stamp_with_a_broken_origin_is_refused_and_logs_nothing)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    /* The row's stamp of name names no valid node (a store edited by hand). */
    char *stamps = query_text(s, "SELECT stamps FROM members WHERE id = ?1", member);
    cr_assert_not_null(stamps);
    char *line = strstr(stamps, "name ");
    cr_assert_not_null(line, "%s", stamps);
    char *origin = strchr(line + 5, ' ') + 1;          /* "name HLC ORIGIN ..." */
    memcpy(origin, "BAD!", 4);                          /* "home" has four bytes too */
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(nd_store_db(s), "UPDATE members SET stamps = ?1 WHERE id = ?2",
                                    -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, stamps, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, member, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    free(stamps);

    uint64_t seq = nd_store_last_seq(s);
    cr_assert_neq(put(s, LD_KIND_MEMBER, member, NULL, &err, "name", "张三丰", NULL), 0);
    cr_assert(strstr(err.msg, "name") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_last_seq(s), seq);
    assert_column(s, "members", member, "name", "张三");
    nd_store_destroy(&s);
}

Test(store, a_trip_whose_change_fails_leaves_none_of_the_snapshots_before_it)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    exec_sql(s, "CREATE TRIGGER \"boom\" BEFORE INSERT ON \"changelog\" "
                "WHEN NEW.\"kind\" = 'trip' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(put(s, LD_KIND_TRIP, NULL, NULL, &err, "member", member, "to", "dongguan",
                     "started", "2010-03-01", "status", "registered", NULL), LD_EIO);
    cr_assert_eq(store_hash(s, "a"), before);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM org_sent WHERE node = 'dg'", NULL), 1);
    cr_assert_eq(nd_store_last_seq(s), 4);
    exec_sql(s, "DROP TRIGGER \"boom\"");
    cr_assert_eq(put(s, LD_KIND_TRIP, NULL, NULL, &err, "member", member, "to", "dongguan",
                     "started", "2010-03-01", "status", "registered", NULL), 0, "%s", err.msg);
    /* longtan, zhuyuan and the member went first, then the trip. */
    cr_assert_eq(nd_store_last_seq(s), 8);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM org_sent WHERE node = 'dg'", NULL), 3);
    nd_store_destroy(&s);
}

Test(store, an_update_of_a_missing_record_is_not_found)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_MEMBER, "00000000-0000-4000-8000-000000000000", NULL, &err,
                     "phone", "1", NULL), LD_ENOTFOUND);
    cr_assert(strstr(err.msg, "00000000-0000-4000-8000-000000000000") != NULL, "%s", err.msg);
    nd_store_destroy(&s);
}

Test(store, creating_a_record_whose_id_exists_is_refused)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ORG;
    strcpy(c.record_id, "longtan");
    cr_assert_eq(ld_change_set(&c, "name", "龙潭", NULL), 0);
    cr_assert_eq(ld_change_set(&c, "kind", "village", NULL), 0);
    cr_assert_eq(ld_change_set(&c, "node", "home", NULL), 0);
    cr_assert_eq(nd_store_create(s, &c, &err), LD_EEXIST);
    cr_assert(strstr(err.msg, "longtan") != NULL, "%s", err.msg);
    ld_change_clear(&c);

    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, member);
    cr_assert_eq(ld_change_set(&c, "name", "王五", NULL), 0);
    cr_assert_eq(ld_change_set(&c, "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_create(s, &c, &err), LD_EEXIST);
    ld_change_clear(&c);

    /* A deleted id stays taken. */
    cr_assert_eq(delete_record(s, LD_KIND_MEMBER, member, &err), 0, "%s", err.msg);
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, member);
    cr_assert_eq(ld_change_set(&c, "name", "王五", NULL), 0);
    cr_assert_eq(ld_change_set(&c, "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_create(s, &c, &err), LD_EEXIST);
    cr_assert(strstr(err.msg, "deleted") != NULL, "%s", err.msg);
    ld_change_clear(&c);
    nd_store_destroy(&s);
}

Test(store, an_org_id_is_chosen_by_its_creator_and_other_ids_are_uuids)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "home");
    cr_assert_eq(put(s, LD_KIND_ORG, NULL, NULL, &err, "name", "x", "kind", "village", "node",
                     "home", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "org") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ORG, "Not Valid", NULL, &err, "name", "x", "kind", "village",
                     "node", "home", NULL), LD_EINVAL);
    cr_assert(strstr(err.msg, "Not Valid") != NULL, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ORG, "shilong", NULL, &err, "name", "石龙村", "kind", "village",
                     "node", "home", NULL), 0, "%s", err.msg);
    assert_column(s, "orgs", "shilong", "name", "石龙村");
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, "not-a-uuid");
    cr_assert_eq(ld_change_set(&c, "name", "王五", NULL), 0);
    cr_assert_eq(ld_change_set(&c, "org", "shilong", NULL), 0);
    cr_assert_eq(nd_store_create(s, &c, &err), LD_EINVAL);
    ld_change_clear(&c);
    nd_store_destroy(&s);
}

Test(store, new_record_ids_are_distinct_uuids_that_sort_in_the_order_they_were_made)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "home");
    cr_assert_eq(put(s, LD_KIND_ORG, "longtan", NULL, &err, "name", "龙潭村支部", "kind", "village",
                     "node", "home", NULL), 0, "%s", err.msg);
    /* More than one millisecond's count (4,096) in one group: the order holds past it. */
    enum { N = 5000 };
    static char ids[N][37];
    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "党员%d", i);
        cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, ids[i], &err, "name", name, "org", "longtan",
                         NULL), 0, "%s", err.msg);
    }
    cr_assert_eq(nd_store_commit(s, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        cr_assert(ld_uuid_valid(ids[i]), "%s", ids[i]);
        cr_assert_eq(ids[i][14], '7', "version nibble in %s", ids[i]);
        cr_assert(strchr("89ab", ids[i][19]) != NULL, "variant in %s", ids[i]);
        if (i > 0)
            cr_assert_lt(strcmp(ids[i - 1], ids[i]), 0, "%s then %s", ids[i - 1], ids[i]);
    }
    nd_store_destroy(&s);
}

Test(store, a_reference_to_a_record_deleted_since_the_last_write_is_refused)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    /* In one group: the member is named, deleted, then named again. */
    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, NULL, NULL, &err, "member", member, "date", "2010-05-04",
                     "kind", "meeting", NULL), 0, "%s", err.msg);
    cr_assert_eq(delete_record(s, LD_KIND_MEMBER, member, &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, NULL, NULL, &err, "member", member, "date", "2010-05-05",
                     "kind", "meeting", NULL), LD_ENOTFOUND);
    cr_assert_eq(nd_store_commit(s, &err), 0, "%s", err.msg);

    /* Another handle on the file deletes an org this one has just named. */
    cr_assert_eq(put(s, LD_KIND_ORG, "shilong", NULL, &err, "name", "石龙村", "kind", "village",
                     "node", "home", NULL), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_ORG, "xinmin", NULL, &err, "name", "新民村", "kind", "village",
                     "parent", "shilong", "node", "home", NULL), 0, "%s", err.msg);
    char path[PATH_MAX + 64];
    store_path("a", path, sizeof path);
    nd_store_t *other = nd_store_open(path, false, &err);
    cr_assert_not_null(other, "%s", err.msg);
    cr_assert_eq(delete_record(other, LD_KIND_ORG, "shilong", &err), 0, "%s", err.msg);
    nd_store_destroy(&other);
    cr_assert_eq(put(s, LD_KIND_ORG, "dongfeng", NULL, &err, "name", "东风村", "kind", "village",
                     "parent", "shilong", "node", "home", NULL), LD_ENOTFOUND);
    cr_assert(strstr(err.msg, "shilong") != NULL, "%s", err.msg);
    nd_store_destroy(&s);
}

Test(store, a_deletion_is_a_tombstone_that_keeps_the_row_and_is_logged)
{
    ld_error_t err;
    char member[37], act[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, NULL, act, &err, "member", member, "date", "2010-05-04",
                     "kind", "meeting", NULL), 0, "%s", err.msg);
    cr_assert(nd_store_exists(s, LD_KIND_ACTIVITY, act));
    cr_assert_eq(delete_record(s, LD_KIND_ACTIVITY, act, &err), 0, "%s", err.msg);
    cr_assert_not(nd_store_exists(s, LD_KIND_ACTIVITY, act));
    assert_column(s, "activities", act, "deleted", "1");
    assert_column(s, "activities", act, "kind", "meeting");
    cr_assert_eq(query_int(s, "SELECT deleted FROM changelog WHERE record_id = ?1 ORDER BY seq DESC",
                           act), 1);
    char *stamps = query_text(s, "SELECT stamps FROM activities WHERE id = ?1", act);
    cr_assert(strstr(stamps, "\ndeleted ") != NULL, "%s", stamps);
    free(stamps);

    ld_change_t got;
    ld_change_init(&got);
    cr_assert_eq(nd_store_get(s, LD_KIND_ACTIVITY, act, &got, &err), 0, "%s", err.msg);
    cr_assert(got.deleted);
    ld_change_clear(&got);

    /* Gone for writers: no update, no second deletion, no new reference. */
    cr_assert_eq(put(s, LD_KIND_ACTIVITY, act, NULL, &err, "note", "x", NULL), LD_ENOTFOUND);
    cr_assert(strstr(err.msg, "deleted") != NULL, "%s", err.msg);
    cr_assert_eq(delete_record(s, LD_KIND_ACTIVITY, act, &err), LD_ENOTFOUND);
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ACTIVITY;
    strcpy(c.record_id, act);
    c.deleted = true;
    cr_assert_eq(ld_change_set(&c, "note", "x", NULL), 0);
    cr_assert_eq(nd_store_write(s, &c, &err), LD_EINVAL);          /* deletion with fields */
    ld_change_clear(&c);
    nd_store_destroy(&s);
}

Test(store, an_empty_value_clears_an_optional_field)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "phone", "13800000000", NULL), 0);
    assert_column(s, "members", member, "phone", "13800000000");
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "phone", "", NULL), 0, "%s", err.msg);
    assert_column(s, "members", member, "phone", NULL);
    nd_store_destroy(&s);
}

Test(store, nd_store_get_reads_a_record_with_its_stamps)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    ld_change_t got;
    ld_change_init(&got);
    cr_assert_eq(nd_store_get(s, LD_KIND_MEMBER, member, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.record_id, member);
    cr_assert_str_eq(ld_change_get(&got, "name"), "张三");
    cr_assert_null(ld_change_get(&got, "phone"));
    cr_assert_str_eq(got.fields[0].origin, "home");
    cr_assert_eq(got.fields[0].hlc, got.hlc);
    cr_assert_not(got.deleted);
    cr_assert_eq(nd_store_get(s, LD_KIND_MEMBER, "00000000-0000-4000-8000-000000000000", &got,
                              &err), LD_ENOTFOUND);
    cr_assert_eq(got.nfields, 0);
    ld_change_clear(&got);
    nd_store_destroy(&s);
}

Test(store, stamps_grow_across_writes_and_reopening)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    uint64_t h1 = (uint64_t)query_int(s, "SELECT max(hlc) FROM changelog", NULL);
    nd_store_destroy(&s);
    s = open_store("a", NULL);
    cr_assert_eq(nd_store_last_seq(s), 4);
    cr_assert_eq(put(s, LD_KIND_MEMBER, member, NULL, &err, "phone", "1", NULL), 0, "%s", err.msg);
    cr_assert_eq(query_int(s, "SELECT max(seq) FROM changelog", NULL), 5);
    uint64_t h2 = (uint64_t)query_int(s, "SELECT hlc FROM changelog WHERE seq = 5", NULL);
    cr_assert_gt(h2, h1);
    char *clock = nd_store_setting(s, "clock");
    cr_assert_not_null(clock);
    cr_assert_eq(strtoull(clock, NULL, 10), h2);
    free(clock);
    nd_store_destroy(&s);
}

Test(store, two_handles_on_one_file_share_the_sequence)
{
    /* The CLI and the daemon open the same store; neither may reuse a seq. */
    ld_error_t err;
    char member[37];
    nd_store_t *a = open_store("a", "home");
    world(a, member);
    nd_store_t *b = open_store("a", NULL);
    cr_assert_eq(put(a, LD_KIND_MEMBER, member, NULL, &err, "phone", "1", NULL), 0, "%s", err.msg);
    cr_assert_eq(nd_store_last_seq(b), 5);
    cr_assert_eq(put(b, LD_KIND_MEMBER, member, NULL, &err, "phone", "2", NULL), 0, "%s", err.msg);
    cr_assert_eq(put(a, LD_KIND_MEMBER, member, NULL, &err, "phone", "3", NULL), 0, "%s", err.msg);
    cr_assert_eq(nd_store_last_seq(a), 7);
    cr_assert_eq(query_int(a, "SELECT count(*) FROM changelog", NULL), 7);
    /* Stamps still grow in seq order across the two handles. */
    cr_assert_eq(query_int(a, "SELECT count(*) FROM changelog c1 JOIN changelog c2 "
                              "ON c2.seq = c1.seq + 1 WHERE c2.hlc <= c1.hlc", NULL), 0);
    assert_column(a, "members", member, "phone", "3");
    nd_store_destroy(&a);
    nd_store_destroy(&b);
}

Test(store, a_store_held_by_another_writer_past_the_busy_timeout_is_busy)
{
    ld_error_t err;
    char member[37];
    nd_store_t *a = open_store("a", "home");
    world(a, member);
    nd_store_t *b = open_store("a", NULL);
    sqlite3_busy_timeout(nd_store_db(b), 50);          /* the test need not wait 5 s */
    cr_assert_eq(nd_store_begin(a, &err), 0, "%s", err.msg);
    cr_assert_eq(put(a, LD_KIND_MEMBER, member, NULL, &err, "phone", "1", NULL), 0);
    cr_assert_eq(put(b, LD_KIND_MEMBER, member, NULL, &err, "phone", "2", NULL), LD_EBUSY);
    cr_assert(strstr(err.msg, "a.db") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_commit(a, &err), 0, "%s", err.msg);
    cr_assert_eq(put(b, LD_KIND_MEMBER, member, NULL, &err, "phone", "2", NULL), 0, "%s", err.msg);
    cr_assert_eq(nd_store_last_seq(a), 6);
    nd_store_destroy(&a);
    nd_store_destroy(&b);
}

/* ----------------------------------------------------------------- groups ---- */

Test(store, a_group_commits_all_its_writes_or_none)
{
    ld_error_t err;
    char member[37], m2[37], m3[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_begin(s, &err), LD_EBUSY);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m2, &err, "name", "李四", "org", "longtan", NULL), 0);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m3, &err, "name", "王五", "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_last_seq(s), 6);
    nd_store_rollback(s);
    cr_assert_not(nd_store_exists(s, LD_KIND_MEMBER, m2));
    cr_assert_eq(nd_store_last_seq(s), 4);
    cr_assert_eq(store_hash(s, "a"), before);

    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m2, &err, "name", "李四", "org", "longtan", NULL), 0);
    /* A refused write inside the group leaves nothing, and the group goes on. */
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, NULL, &err, "name", "赵六", "org", "nowhere", NULL),
                 LD_ENOTFOUND);
    cr_assert_eq(put(s, LD_KIND_MEMBER, NULL, m3, &err, "name", "王五", "org", "longtan", NULL), 0);
    cr_assert_eq(nd_store_commit(s, &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_commit(s, &err), LD_EINVAL);
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m2));
    cr_assert(nd_store_exists(s, LD_KIND_MEMBER, m3));
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 6);
    cr_assert_eq(query_int(s, "SELECT max(seq) FROM changelog", NULL), 6);
    nd_store_destroy(&s);
}

/* ----------------------------------------------------------------- outbox ---- */

static int stop_after_two(void *ctx, uint64_t seq, const uint8_t *body, size_t len)
{
    int *n = ctx;
    return ++*n == 2;
}

Test(store, the_outbox_gives_own_changes_after_a_seq_in_order)
{
    ld_error_t err;
    char member[37];
    nd_store_t *s = open_store("a", "home");
    world(s, member);
    ld_change_t c;
    mk(&c, LD_KIND_MEMBER, member, "dg", 1, past(1));
    set_based(&c, "phone", "1", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);     /* not ours: not in it */
    ld_change_clear(&c);

    collect_t col;
    outbox(s, 0, &col);
    cr_assert_eq(col.n, 4);
    for (size_t i = 0; i < col.n; i++) {
        cr_assert_eq(col.changes[i].seq, i + 1);
        cr_assert_str_eq(col.changes[i].origin, "home");
    }
    free_changes(&col);
    outbox(s, 2, &col);
    cr_assert_eq(col.n, 2);
    cr_assert_eq(col.changes[0].seq, 3);
    free_changes(&col);
    memset(&col, 0, sizeof col);
    cr_assert_eq(nd_store_outbox(s, 0, 3, collect_one, &col, &err), 3);
    free_changes(&col);
    int n = 0;
    cr_assert_eq(nd_store_outbox(s, 0, 100, stop_after_two, &n, &err), 2);
    cr_assert_eq(nd_store_outbox(s, 4, 100, stop_after_two, &n, &err), 0);
    cr_assert_eq(nd_store_outbox(s, 0, 100, NULL, NULL, &err), LD_EINVAL);
    nd_store_destroy(&s);
}

Test(store, pushed_upto_never_moves_backwards)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "home");
    cr_assert_eq(nd_store_pushed_upto(s), 0);
    cr_assert_eq(nd_store_set_pushed_upto(s, 7, &err), 0);
    cr_assert_eq(nd_store_set_pushed_upto(s, 3, &err), 0);
    cr_assert_eq(nd_store_pushed_upto(s), 7);
    nd_store_destroy(&s);
    s = open_store("a", NULL);
    cr_assert_eq(nd_store_pushed_upto(s), 7);
    nd_store_destroy(&s);
}

/* ------------------------------------------------------------------ apply ---- */

Test(store, applying_a_change_twice_changes_nothing)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "dg");
    ld_change_t c;
    mk(&c, LD_KIND_ORG, "longtan", "home", 1, past(1));
    set_based(&c, "name", "龙潭村支部", 0, "");
    set_based(&c, "kind", "village", 0, "");
    set_based(&c, "node", "home", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    char *first = dump(s);
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    char *second = dump(s);
    cr_assert_str_eq(first, second);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 1);
    assert_column(s, "orgs", "longtan", "name", "龙潭村支部");
    assert_column(s, "orgs", "longtan", "created_by", "home");
    /* A change that is known by origin and seq is skipped even if its body differs. */
    ld_change_clear(&c);
    mk(&c, LD_KIND_ORG, "longtan", "home", 1, past(2));
    set_based(&c, "name", "别的", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    assert_column(s, "orgs", "longtan", "name", "龙潭村支部");
    ld_change_clear(&c);
    free(first);
    free(second);
    nd_store_destroy(&s);
}

Test(store, applied_records_need_not_arrive_after_what_they_refer_to)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "dg");
    ld_change_t c;
    mk(&c, LD_KIND_MEMBER, "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a01", "home", 4, past(4));
    set_based(&c, "name", "张三", 0, "");
    set_based(&c, "org", "longtan", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    assert_column(s, "members", "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a01", "org", "longtan");
    nd_store_destroy(&s);
}

Test(store, an_invalid_change_is_refused_by_apply)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "dg");
    ld_change_t c;
    mk(&c, LD_KIND_MEMBER, "not-a-uuid", "home", 1, past(1));
    set_based(&c, "name", "x", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), LD_EINVAL);
    ld_change_clear(&c);
    mk(&c, LD_KIND_MEMBER, "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a01", "home", 0, past(1));
    set_based(&c, "name", "x", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), LD_EINVAL);
    ld_change_clear(&c);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 0);
    nd_store_destroy(&s);
}

Test(store, a_change_stamped_too_far_ahead_is_refused_and_leaves_nothing)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "dg");
    uint64_t ahead = ld_hlc_make(ld_hlc_wall_now() + 10 * 60 * 1000, 0);
    ld_change_t c;
    mk(&c, LD_KIND_ORG, "longtan", "home", 1, ahead);
    set_based(&c, "name", "龙潭", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), LD_ECLOCK);
    cr_assert(strstr(err.msg, "home/1") != NULL && strstr(err.msg, "longtan") != NULL, "%s",
              err.msg);
    ld_change_clear(&c);
    /* A field stamp far ahead is refused too, even when the change's own is not. */
    mk(&c, LD_KIND_ORG, "longtan", "home", 1, past(1));
    set_based(&c, "name", "龙潭", 0, "");
    c.fields[0].hlc = ahead;
    strcpy(c.fields[0].origin, "home");
    cr_assert_eq(nd_store_apply(s, &c, &err), LD_ECLOCK);
    ld_change_clear(&c);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM orgs", NULL), 0);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 0);

    /* A minute ahead is within the allowed drift, and later local stamps order after it. */
    uint64_t soon = ld_hlc_make(ld_hlc_wall_now() + 60 * 1000, 0);
    mk(&c, LD_KIND_ORG, "longtan", "home", 1, soon);
    set_based(&c, "name", "龙潭", 0, "");
    set_based(&c, "kind", "village", 0, "");
    set_based(&c, "node", "dg", 0, "");
    cr_assert_eq(nd_store_apply(s, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    cr_assert_eq(put(s, LD_KIND_ORG, "longtan", NULL, &err, "name", "龙潭村", NULL), 0, "%s", err.msg);
    cr_assert_gt((uint64_t)query_int(s, "SELECT hlc FROM orgs WHERE id = 'longtan'", NULL), soon);
    assert_column(s, "orgs", "longtan", "name", "龙潭村");
    nd_store_destroy(&s);
}

Test(store, a_batch_and_its_cursor_commit_together_or_not_at_all)
{
    ld_error_t err;
    nd_store_t *s = open_store("a", "dg");
    ld_change_t batch[3];
    mk(&batch[0], LD_KIND_ORG, "longtan", "home", 1, past(1));
    set_based(&batch[0], "name", "龙潭", 0, "");
    mk(&batch[1], LD_KIND_ORG, "shilong", "home", 2, past(2));
    set_based(&batch[1], "name", "石龙", 0, "");
    mk(&batch[2], LD_KIND_ORG, "future", "home", 3, ld_hlc_make(ld_hlc_wall_now() + 3600000, 0));
    set_based(&batch[2], "name", "未来", 0, "");
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(nd_store_apply_batch(s, batch, 3, 30, &err), LD_ECLOCK);
    cr_assert_eq(nd_store_cursor(s), 0);
    cr_assert_eq(store_hash(s, "a"), before);
    cr_assert_eq(nd_store_apply_batch(s, batch, 2, 20, &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_cursor(s), 20);
    cr_assert(nd_store_exists(s, LD_KIND_ORG, "longtan"));
    cr_assert(nd_store_exists(s, LD_KIND_ORG, "shilong"));
    /* Redelivery of the same batch is harmless. */
    cr_assert_eq(nd_store_apply_batch(s, batch, 2, 20, &err), 0, "%s", err.msg);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 2);
    for (int i = 0; i < 3; i++)
        ld_change_clear(&batch[i]);
    nd_store_destroy(&s);
}

/* A Batch body packed from changes[0..n) at positions 10, 20, ...; the changes are
 * packed as they are, valid or not. */
static void batch_body(ld_buf_t *body, const ld_change_t *changes, size_t n)
{
    ld_error_t err;
    for (size_t i = 0; i < n; i++) {
        uint8_t *packed = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack_valid(&changes[i], &packed, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(body, (uint64_t)(i + 1) * 10, packed, len), 0);
        free(packed);
    }
    cr_assert_eq(ld_batch_finish(body, 0), 0);
}

Test(store, a_batch_body_applies_once_with_its_cursor_and_a_bad_change_leaves_nothing)
{
    ld_error_t err;
    size_t applied = 99;
    nd_store_t *s = open_store("a", "dg");
    ld_change_t batch[2];
    mk(&batch[0], LD_KIND_ORG, "longtan", "home", 1, past(1));
    set_based(&batch[0], "name", "龙潭", 0, "");
    mk(&batch[1], LD_KIND_ORG, "shilong", "home", 2, past(2));
    set_based(&batch[1], "name", "石龙", 0, "");

    /* The second change has no clock stamp: the first, applied already inside the
     * transaction, goes back with it, and the cursor stays. */
    uint64_t stamp = batch[1].hlc;
    batch[1].hlc = 0;
    ld_buf_t bad = { NULL, 0, 0 };
    batch_body(&bad, batch, 2);
    batch[1].hlc = stamp;
    uint64_t before = store_hash(s, "a");
    cr_assert_eq(nd_store_apply_body(s, bad.data, bad.len, 0, 20, &applied, &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "batch entry 2 (position 20)"), "%s", err.msg);
    cr_assert_eq(applied, 0);
    cr_assert_eq(nd_store_cursor(s), 0);
    cr_assert_eq(store_hash(s, "a"), before);

    ld_buf_t body = { NULL, 0, 0 };
    batch_body(&body, batch, 2);
    /* Above position 10 only: the first change was taken before. */
    cr_assert_eq(nd_store_apply_body(s, body.data, body.len, 10, 20, &applied, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(applied, 1);
    cr_assert_eq(nd_store_cursor(s), 20);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM orgs WHERE id = 'longtan'", NULL), 0);
    assert_column(s, "orgs", "shilong", "name", "石龙");

    cr_assert_eq(nd_store_apply_body(s, body.data, body.len, 0, 20, &applied, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(applied, 2);
    assert_column(s, "orgs", "longtan", "name", "龙潭");
    /* Redelivered: skipped, the log keeps one of each. */
    cr_assert_eq(nd_store_apply_taken(s, body.data, body.len, 0, &applied, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM changelog", NULL), 2);
    ld_buf_free(&bad);
    ld_buf_free(&body);
    for (int i = 0; i < 2; i++)
        ld_change_clear(&batch[i]);
    nd_store_destroy(&s);
}

/* The changes of a small history of member M and org longtan, from three nodes:
 * aa creates M; bb and cc race on phone over aa's; aa and bb race on name (equal
 * stamps: bb wins by origin); cc deletes M; aa sets born afterwards; bb writes the
 * org; aa clears bb's org name concurrently with cc renaming it. */
#define M_ID "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a01"
#define NHISTORY 10

static void history(ld_change_t h[NHISTORY])
{
    mk(&h[0], LD_KIND_MEMBER, M_ID, "aa", 1, past(10));
    set_based(&h[0], "name", "张三", 0, "");
    set_based(&h[0], "org", "longtan", 0, "");
    set_based(&h[0], "phone", "111", 0, "");
    mk(&h[1], LD_KIND_MEMBER, M_ID, "bb", 1, past(50));
    set_based(&h[1], "phone", "222", past(10), "aa");
    mk(&h[2], LD_KIND_MEMBER, M_ID, "cc", 1, past(70));
    set_based(&h[2], "phone", "333", past(10), "aa");
    mk(&h[3], LD_KIND_MEMBER, M_ID, "aa", 2, past(60));
    set_based(&h[3], "name", "张三丰", past(10), "aa");
    set_based(&h[3], "gender", "male", 0, "");
    mk(&h[4], LD_KIND_MEMBER, M_ID, "bb", 2, past(60));
    set_based(&h[4], "name", "李四", past(10), "aa");
    mk(&h[5], LD_KIND_MEMBER, M_ID, "cc", 2, past(90));
    h[5].deleted = true;
    mk(&h[6], LD_KIND_MEMBER, M_ID, "aa", 3, past(100));
    set_based(&h[6], "born", "1980-01-02", 0, "");
    mk(&h[7], LD_KIND_ORG, "longtan", "bb", 3, past(20));
    set_based(&h[7], "name", "龙潭村支部", 0, "");
    set_based(&h[7], "kind", "village", 0, "");
    set_based(&h[7], "node", "bb", 0, "");
    mk(&h[8], LD_KIND_ORG, "longtan", "cc", 3, past(30));
    set_based(&h[8], "parent", "zhuyuan", 0, "");
    set_based(&h[8], "name", "龙潭村", past(20), "bb");
    mk(&h[9], LD_KIND_ORG, "longtan", "aa", 4, past(40));
    set_based(&h[9], "name", "龙潭", past(20), "bb");
}

Test(store, applying_the_same_changes_in_any_order_gives_the_same_tables)
{
    ld_change_t h[NHISTORY];
    ld_error_t err;
    history(h);
    char *reference = NULL;
    uint32_t rnd = 12345;
    for (int round = 0; round < 10; round++) {
        /* Round 0 in order, round 1 reversed, then shuffles with some changes twice. */
        size_t order[2 * NHISTORY], n = NHISTORY;
        for (size_t i = 0; i < NHISTORY; i++)
            order[i] = round == 1 ? NHISTORY - 1 - i : i;
        if (round >= 2) {
            for (size_t i = NHISTORY - 1; i > 0; i--) {
                rnd = rnd * 1103515245u + 12345u;
                size_t j = (rnd >> 16) % (i + 1);
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int d = 0; d < round % 4; d++) {
                rnd = rnd * 1103515245u + 12345u;
                order[n++] = (rnd >> 16) % NHISTORY;
            }
        }
        char name[32];
        snprintf(name, sizeof name, "order%d", round);
        nd_store_t *s = open_store(name, "zz");
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(nd_store_apply(s, &h[order[i]], &err), 0, "%s", err.msg);
        char *d = dump(s);
        if (reference == NULL) {
            reference = d;
            /* The winners and the logged losers are the ones the rule names. */
            assert_column(s, "members", M_ID, "phone", "333");
            assert_column(s, "members", M_ID, "name", "李四");
            assert_column(s, "members", M_ID, "gender", "male");
            assert_column(s, "members", M_ID, "born", "1980-01-02");
            assert_column(s, "members", M_ID, "deleted", "1");
            assert_column(s, "members", M_ID, "created_by", "aa");
            assert_column(s, "members", M_ID, "origin", "aa");
            assert_column(s, "orgs", "longtan", "name", "龙潭");
            assert_column(s, "orgs", "longtan", "parent", "zhuyuan");
            cr_assert_eq(query_int(s, "SELECT count(*) FROM conflicts", NULL), 3);
            char *l = query_text(s, "SELECT group_concat(field || ':' || loser_value || '<' || "
                                    "winner_value, ',') FROM (SELECT * FROM conflicts ORDER BY "
                                    "field, loser_value)", NULL);
            cr_assert_str_eq(l, "name:张三丰<李四,name:龙潭村<龙潭,phone:222<333");
            free(l);
        } else {
            cr_assert_str_eq(d, reference, "order %d differs", round);
            free(d);
        }
        nd_store_destroy(&s);
    }
    free(reference);
    for (int i = 0; i < NHISTORY; i++)
        ld_change_clear(&h[i]);
}

/* Two nodes that both may write member M: home keeps M's org, dg keeps the org of
 * M's current trip.  Each has delivered everything to the other. */
static void two_nodes(nd_store_t **home, nd_store_t **dg, char member[37])
{
    ld_error_t err;
    *home = open_store("home", "home");
    *dg = open_store("dg", "dg");
    world(*home, member);
    cr_assert_eq(put(*home, LD_KIND_TRIP, NULL, NULL, &err, "member", member, "to", "dongguan",
                     "started", "2010-03-01", "status", "registered", NULL), 0, "%s", err.msg);
    cr_assert_gt(deliver(*home, *dg), 0);
    cr_assert(nd_store_is_mine(*dg, LD_KIND_MEMBER, member));
}

Test(store, concurrent_edits_of_different_fields_both_survive)
{
    ld_error_t err;
    char member[37];
    nd_store_t *home, *dg;
    two_nodes(&home, &dg, member);
    cr_assert_eq(put(home, LD_KIND_MEMBER, member, NULL, &err, "phone", "13800000000", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(put(dg, LD_KIND_MEMBER, member, NULL, &err, "id_number", "500236198001020011",
                     NULL), 0, "%s", err.msg);
    deliver(home, dg);
    deliver(dg, home);
    for (int i = 0; i < 2; i++) {
        nd_store_t *s = i ? dg : home;
        assert_column(s, "members", member, "phone", "13800000000");
        assert_column(s, "members", member, "id_number", "500236198001020011");
        cr_assert_eq(nd_store_conflict_count(s), 0);
    }
    char *a = query_text(home, "SELECT stamps FROM members WHERE id = ?1", member);
    char *b = query_text(dg, "SELECT stamps FROM members WHERE id = ?1", member);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}

Test(store, a_same_field_race_picks_one_winner_and_both_log_the_same_loser)
{
    ld_error_t err;
    char member[37];
    nd_store_t *home, *dg;
    two_nodes(&home, &dg, member);
    cr_assert_eq(put(home, LD_KIND_MEMBER, member, NULL, &err, "phone", "111", NULL), 0);
    cr_assert_eq(put(dg, LD_KIND_MEMBER, member, NULL, &err, "phone", "222", NULL), 0);
    /* The stamps both writes got: the higher (hlc, origin) must win everywhere. */
    long long h_home = query_int(home, "SELECT hlc FROM changelog WHERE origin = 'home' "
                                       "ORDER BY seq DESC LIMIT 1", NULL);
    long long h_dg = query_int(dg, "SELECT hlc FROM changelog WHERE origin = 'dg' "
                                   "ORDER BY seq DESC LIMIT 1", NULL);
    bool dg_wins = h_dg > h_home || (h_dg == h_home && strcmp("dg", "home") > 0);
    const char *winner = dg_wins ? "222" : "111";
    char want[128];
    snprintf(want, sizeof want, "phone|%s|%s|%lld|", dg_wins ? "111" : "222",
             dg_wins ? "home" : "dg", dg_wins ? h_home : h_dg);
    deliver(home, dg);
    deliver(dg, home);
    static const char *const sql =
        "SELECT field || '|' || loser_value || '|' || loser_origin || '|' || loser_hlc || '|' || "
        "winner_value || '|' || winner_origin || '|' || winner_hlc FROM conflicts";
    char *at_home = query_text(home, sql, NULL), *at_dg = query_text(dg, sql, NULL);
    cr_assert_not_null(at_home);
    cr_assert_str_eq(at_home, at_dg);
    cr_assert(strncmp(at_home, want, strlen(want)) == 0, "%s, want %s...", at_home, want);
    cr_assert_eq(nd_store_conflict_count(home), 1);
    cr_assert_eq(nd_store_conflict_count(dg), 1);
    assert_column(home, "members", member, "phone", winner);
    assert_column(dg, "members", member, "phone", winner);
    free(at_home);
    free(at_dg);

    /* Redelivery logs nothing twice. */
    deliver(home, dg);
    deliver(dg, home);
    cr_assert_eq(nd_store_conflict_count(home), 1);
    cr_assert_eq(nd_store_conflict_count(dg), 1);

    /* A later edit on either side moves the logged winner on both. */
    cr_assert_eq(put(home, LD_KIND_MEMBER, member, NULL, &err, "phone", "333", NULL), 0);
    deliver(home, dg);
    at_home = query_text(home, sql, NULL);
    at_dg = query_text(dg, sql, NULL);
    cr_assert_str_eq(at_home, at_dg);
    cr_assert(strstr(at_home, "|333|home|") != NULL, "%s", at_home);
    free(at_home);
    free(at_dg);
    nd_store_destroy(&home);
    nd_store_destroy(&dg);
}
