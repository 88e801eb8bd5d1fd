/* test_import.c: the RFC 4180 CSV parser (quotes, embedded newlines, CRLF, BOM, line
 * numbers, malformed input) and `member import`: every row or none, errors by line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "change.h"
#include "import.h"
#include "store.h"

/* ---------------------------------------------------------------- parser ---- */

typedef struct seen {
    size_t rows;
    size_t lines[16];
    size_t ncells[16];
    char   cells[16][8][64];
    size_t lens[16][8];
    size_t stop_after;     /* 0: never stop */
} seen_t;

static int collect(void *ctx, size_t line, size_t ncells, const char *const *cells,
                   const size_t *lens, ld_error_t *err)
{
    seen_t *s = ctx;
    if (s->rows < 16) {
        s->lines[s->rows] = line;
        s->ncells[s->rows] = ncells;
        for (size_t i = 0; i < ncells && i < 8; i++) {
            memcpy(s->cells[s->rows][i], cells[i], lens[i] < 63 ? lens[i] : 63);
            s->lens[s->rows][i] = lens[i];
        }
    }
    s->rows++;
    if (s->stop_after && s->rows == s->stop_after) {
        ld_error_set(err, LD_EINVAL, "stopped");
        return 42;
    }
    return 0;
}

static int parse(const char *text, seen_t *s, ld_error_t *err)
{
    memset(s, 0, sizeof *s);
    return nd_csv_parse(text, strlen(text), collect, s, err);
}

Test(csv, splits_plain_rows_into_cells)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("name,org\n张三,longtan\n", &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.rows, 2);
    cr_assert_eq(s.ncells[1], 2);
    cr_assert_str_eq(s.cells[1][0], "张三");
    cr_assert_str_eq(s.cells[1][1], "longtan");
    cr_assert_eq(s.lines[1], 2);
}

Test(csv, keeps_commas_quotes_and_newlines_inside_quoted_cells)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\nnext,2,3\n", &s, &err),
                 0, "%s", err.msg);
    cr_assert_eq(s.rows, 3);
    cr_assert_str_eq(s.cells[1][0], "x, y");
    cr_assert_str_eq(s.cells[1][1], "say \"hi\"");
    cr_assert_str_eq(s.cells[1][2], "two\nlines");
    cr_assert_eq(s.lines[1], 2);
    cr_assert_eq(s.lines[2], 4, "the row after a two-line cell starts on line 4");
}

Test(csv, accepts_crlf_a_bom_and_no_final_newline)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("\xef\xbb\xbfname,org\r\n张三,longtan\r\n李四,tingzi", &s, &err), 0);
    cr_assert_eq(s.rows, 3);
    cr_assert_str_eq(s.cells[0][0], "name", "the BOM is not part of the first column");
    cr_assert_str_eq(s.cells[1][1], "longtan", "no CR left in the last cell");
    cr_assert_str_eq(s.cells[2][0], "李四");
    cr_assert_eq(s.lines[2], 3);
}

Test(csv, skips_empty_lines_but_counts_them)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a\n\nb\n\n", &s, &err), 0);
    cr_assert_eq(s.rows, 2);
    cr_assert_eq(s.lines[1], 3);
}

Test(csv, keeps_empty_cells_and_quoted_empty_cells)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a,,\"\",d\n", &s, &err), 0);
    cr_assert_eq(s.ncells[0], 4);
    cr_assert_eq(s.lens[0][1], 0);
    cr_assert_eq(s.lens[0][2], 0);
    cr_assert_str_eq(s.cells[0][3], "d");
}

Test(csv, reports_a_nul_byte_through_the_cell_length)
{
    seen_t s;
    ld_error_t err;
    const char text[] = "a\0b,c\n";
    memset(&s, 0, sizeof s);
    cr_assert_eq(nd_csv_parse(text, sizeof text - 1, collect, &s, &err), 0);
    cr_assert_eq(s.lens[0][0], 3);
}

Test(csv, refuses_an_unclosed_quote_naming_its_line)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a,b\n1,\"open\n", &s, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "line 2") && strstr(err.msg, "never closed"), "%s", err.msg);
}

Test(csv, refuses_text_after_a_closing_quote)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a,b\n\"x\"y,2\n", &s, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "line 2"), "%s", err.msg);
}

Test(csv, refuses_a_quote_inside_an_unquoted_cell)
{
    seen_t s;
    ld_error_t err;
    cr_assert_eq(parse("a,b\nx\"y,2\n", &s, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "line 2"), "%s", err.msg);
}

Test(csv, refuses_a_cell_over_the_limit)
{
    size_t n = ND_CSV_CELL_MAX + 10;
    char *text = malloc(n + 2);
    seen_t s;
    ld_error_t err;
    memset(text, 'x', n);
    text[n] = '\n';
    text[n + 1] = '\0';
    cr_assert_eq(parse(text, &s, &err), LD_EINVAL);
    cr_assert_eq(s.rows, 0);
    free(text);
}

Test(csv, stops_when_the_callback_says_so)
{
    seen_t s;
    ld_error_t err;
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    const char *text = "a\nb\nc\n";
    cr_assert_eq(nd_csv_parse(text, strlen(text), collect, &s, &err), 42);
    cr_assert_eq(s.rows, 2);
}

/* ---------------------------------------------------------------- import ---- */

static char dir[256];
static char db_path[300];
static char csv_path[300];
static nd_store_t *store;

static void add_org(const char *id, const char *name, const char *kind)
{
    ld_change_t c;
    ld_error_t err;
    ld_change_init(&c);
    c.kind = LD_KIND_ORG;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    cr_assert_eq(ld_change_set(&c, "name", name, &err), 0);
    cr_assert_eq(ld_change_set(&c, "kind", kind, &err), 0);
    cr_assert_eq(ld_change_set(&c, "node", "zhuyuan", &err), 0);
    cr_assert_eq(nd_store_write(store, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
}

static void import_setup(void)
{
    ld_error_t err;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-import-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/node.db", dir);
    snprintf(csv_path, sizeof csv_path, "%s/members.csv", dir);
    store = nd_store_open(db_path, true, &err);
    cr_assert_not_null(store, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(store, "zhuyuan", "竹园镇党委", &err), 0, "%s", err.msg);
    add_org("longtan", "龙潭村党支部", "village");
    add_org("tingzi", "亭子村党支部", "village");
    add_org("twin-a", "同名支部", "village");
    add_org("twin-b", "同名支部", "village");
}

static void import_teardown(void)
{
    char cmd[400];
    nd_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(import, .init = import_setup, .fini = import_teardown);

static void write_csv(const char *text, size_t len)
{
    FILE *f = fopen(csv_path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static long members(void)
{
    sqlite3_stmt *st = NULL;
    long n = -1;
    cr_assert_eq(sqlite3_prepare_v2(nd_store_db(store), "SELECT count(*) FROM members", -1, &st,
                                    NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Imports text expecting failure; checks nothing was written and returns the message. */
static const char *import_fails(const char *text, ld_error_t *err)
{
    size_t count = 99;
    long before = members();
    write_csv(text, strlen(text));
    cr_assert_neq(nd_import_members(store, csv_path, &count, err), 0, "import should fail");
    cr_assert_eq(count, 0);
    cr_assert_eq(members(), before, "nothing is written when a row is bad");
    return err->msg;
}

Test(import, imports_every_row_with_columns_in_any_order)
{
    ld_error_t err;
    size_t count = 0;
    const char *text = "\xef\xbb\xbfid-number,org,name,born,gender\r\n"
                       "500236196008100173,longtan,林术平,1960-08-10,male\r\n"
                       "500236197808230253,亭子村党支部,\"张,世军\",1978-08-23,\r\n";
    write_csv(text, strlen(text));
    cr_assert_eq(nd_import_members(store, csv_path, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 2);
    cr_assert_eq(members(), 2);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(nd_store_db(store),
                 "SELECT org, coalesce(gender, '') FROM members WHERE name = '张,世军'", -1, &st,
                 NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *) sqlite3_column_text(st, 0), "tingzi",
                     "an org named by name is stored by id");
    cr_assert_str_eq((const char *) sqlite3_column_text(st, 1), "", "an empty cell sets nothing");
    sqlite3_finalize(st);
}

Test(import, writes_nothing_when_the_last_row_has_an_impossible_date)
{
    ld_error_t err;
    char want[400];
    const char *msg = import_fails("name,org,born\n林术平,longtan,1960-08-10\n"
                                   "张世军,longtan,2023-02-30\n", &err);
    snprintf(want, sizeof want, "%s:3: column born: bad value '2023-02-30' (", csv_path);
    cr_assert(strncmp(msg, want, strlen(want)) == 0, "%s", msg);
    cr_assert_eq(err.code, LD_EINVAL);
}

Test(import, names_a_missing_required_column)
{
    ld_error_t err;
    const char *msg = import_fails("name,born\n林术平,1960-08-10\n", &err);
    cr_assert(strstr(msg, ":1: missing column 'org'"), "%s", msg);
}

Test(import, names_an_unknown_column)
{
    ld_error_t err;
    const char *msg = import_fails("name,org,shoe-size\n林术平,longtan,42\n", &err);
    cr_assert(strstr(msg, ":1: unknown column 'shoe-size'"), "%s", msg);
}

Test(import, refuses_non_utf8_bytes_naming_line_and_column)
{
    ld_error_t err;
    const char *msg = import_fails("name,org\n林术平,longtan\n\xff\xfe,longtan\n", &err);
    cr_assert(strstr(msg, ":3: column name: bad value '\\xff\\xfe' (not valid UTF-8"), "%s", msg);
}

Test(import, refuses_an_unknown_or_ambiguous_org)
{
    ld_error_t err;
    const char *msg = import_fails("name,org\n林术平,nowhere\n", &err);
    cr_assert(strstr(msg, ":2: column org: bad value 'nowhere' (no such org"), "%s", msg);
    msg = import_fails("name,org\n林术平,同名支部\n", &err);
    cr_assert(strstr(msg, ":2: column org: bad value '同名支部'"), "%s", msg);
    cr_assert(strstr(msg, "id"), "%s", msg);
}

Test(import, refuses_a_duplicate_id_number_in_the_file_and_in_the_store)
{
    ld_error_t err;
    size_t count;
    const char *msg = import_fails("name,org,id-number\n甲,longtan,500236196008100123\n乙,longtan,500236196008100123\n", &err);
    cr_assert(strstr(msg, ":3: column id-number: bad value '500236196008100123' (a duplicate: line 2"), "%s", msg);

    const char *first = "name,org,id-number\n甲,longtan,500236196008100555\n";
    write_csv(first, strlen(first));
    cr_assert_eq(nd_import_members(store, csv_path, &count, &err), 0, "%s", err.msg);
    msg = import_fails("name,org,id-number\n丙,tingzi,500236196008100555\n", &err);
    cr_assert(strstr(msg, ":2: column id-number: bad value '500236196008100555' (a duplicate: member "), "%s", msg);
}

Test(import, refuses_a_duplicate_name_org_and_birth_date)
{
    ld_error_t err;
    const char *msg = import_fails("name,org,born\n甲,longtan,1970-01-01\n甲,longtan,1970-01-01\n",
                                   &err);
    cr_assert(strstr(msg, ":3: column name: bad value '甲' (a duplicate: line 2"), "%s", msg);
}

Test(import, counts_the_other_bad_rows_after_the_first)
{
    ld_error_t err;
    const char *msg = import_fails("name,org,gender\n甲,longtan,x\n乙,longtan,y\n丙,longtan,z\n",
                                   &err);
    cr_assert(strstr(msg, ":2: column gender: bad value 'x' (expected female|male)"), "%s", msg);
    cr_assert(strstr(msg, "2 more rows have errors"), "%s", msg);
}

Test(import, refuses_a_row_with_the_wrong_number_of_cells)
{
    ld_error_t err;
    const char *msg = import_fails("name,org\n甲,longtan,extra\n", &err);
    cr_assert(strstr(msg, ":2: 3 cells where the header has 2"), "%s", msg);
}

Test(import, refuses_an_empty_file_and_a_malformed_one)
{
    ld_error_t err;
    const char *msg = import_fails("", &err);
    cr_assert(strstr(msg, "header"), "%s", msg);
    msg = import_fails("name,org\n\"甲,longtan\n", &err);
    cr_assert(strstr(msg, ":2: a quoted cell is never closed"), "%s", msg);
}

Test(import, imports_a_large_file_in_one_group)
{
    ld_error_t err;
    size_t count = 0;
    size_t n = 5000;
    char *text = malloc(n * 64 + 64);
    size_t len = (size_t) sprintf(text, "name,org,id-number\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t) sprintf(text + len, "党员%zu,%s,5002361960%08zu\n", i,
                                i % 2 ? "longtan" : "tingzi", i);
    write_csv(text, len);
    free(text);
    uint64_t seq_before = nd_store_last_seq(store);
    cr_assert_eq(nd_import_members(store, csv_path, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, n);
    cr_assert_eq(members(), (long) n);
    cr_assert_eq(nd_store_last_seq(store) - seq_before, n, "one change per row");
}
