/* test_output.c: the four renderings of a table: terminal alignment by display width
 * (Chinese two columns), CSV quoting and formula guarding, JSON escaping, HTML pages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "text.h"

static char *rendered;

static void cleanup(void)
{
    free(rendered);
    rendered = NULL;
}

TestSuite(output, .fini = cleanup);

/* Renders t in fmt into `rendered` (freed by the suite's fini) and returns it. */
static const char *render(const nd_table_t *t, nd_format_t fmt)
{
    size_t len = 0;
    free(rendered);
    rendered = NULL;
    FILE *f = open_memstream(&rendered, &len);
    cr_assert_not_null(f);
    cr_assert_eq(nd_table_print(t, fmt, f), 0);
    cr_assert_eq(fclose(f), 0);
    return rendered;
}

static nd_table_t *two_columns(const char *title)
{
    const char *keys[] = { "name", "org" };
    const char *labels[] = { "姓名", "党支部" };
    nd_table_t *t = nd_table_new(title, 2, keys, labels);
    cr_assert_not_null(t);
    return t;
}

static void add2(nd_table_t *t, const char *a, const char *b)
{
    const char *row[] = { a, b };
    cr_assert_eq(nd_table_add_row(t, row), 0);
}

/* The display column at which the n-th line's text `needle` starts. */
static size_t column_of(const char *text, int line, const char *needle)
{
    const char *p = text;
    for (int i = 0; i < line; i++) {
        p = strchr(p, '\n');
        cr_assert_not_null(p, "line %d missing", line);
        p++;
    }
    const char *end = strchr(p, '\n');
    const char *hit = strstr(p, needle);
    cr_assert(hit && (!end || hit < end), "'%s' not on line %d", needle, line);
    char *prefix = strndup(p, (size_t) (hit - p));
    size_t w = ld_display_width(prefix);
    free(prefix);
    return w;
}

Test(output, format_names_parse_and_unknown_ones_are_refused)
{
    nd_format_t f = ND_FMT_TABLE;
    cr_assert_eq(nd_format_parse("csv", &f), 0);
    cr_assert_eq(f, ND_FMT_CSV);
    cr_assert_eq(nd_format_parse("json", &f), 0);
    cr_assert_eq(f, ND_FMT_JSON);
    cr_assert_eq(nd_format_parse("html", &f), 0);
    cr_assert_eq(f, ND_FMT_HTML);
    cr_assert_eq(nd_format_parse("table", &f), 0);
    cr_assert_eq(f, ND_FMT_TABLE);
    cr_assert_eq(nd_format_parse("xml", &f), LD_EINVAL);
    cr_assert_eq(nd_format_parse("CSV", &f), LD_EINVAL);
    cr_assert_eq(nd_format_parse(NULL, &f), LD_EINVAL);
    cr_assert_eq(f, ND_FMT_TABLE, "a refused name leaves the output alone");
}

Test(output, terminal_columns_line_up_by_display_width_with_chinese_text)
{
    nd_table_t *t = two_columns(NULL);
    add2(t, "林术平", "龙潭村党支部");
    add2(t, "Li Wei", "dongguan");
    add2(t, "张小平", "亭子村党支部");
    const char *out = render(t, ND_FMT_TABLE);
    /* widest first column: "Li Wei" is 6 columns, "林术平" too; second starts at 8 */
    cr_assert_eq(column_of(out, 0, "党支部"), 8);
    cr_assert_eq(column_of(out, 2, "龙潭村"), 8);
    cr_assert_eq(column_of(out, 3, "dongguan"), 8);
    cr_assert_eq(column_of(out, 4, "亭子村"), 8);
    cr_assert_str_eq(out,
        "姓名    党支部\n"
        "------  ------------\n"
        "林术平  龙潭村党支部\n"
        "Li Wei  dongguan\n"
        "张小平  亭子村党支部\n");
    nd_table_destroy(&t);
}

Test(output, terminal_column_widens_to_the_widest_chinese_cell)
{
    const char *keys[] = { "branch", "n", "women" };
    nd_table_t *t = nd_table_new("流动党员", 3, keys, NULL);
    cr_assert_not_null(t);
    const char *r1[] = { "中共竹园镇外出创业群体广东东莞支部委员会", "123", "10" };
    const char *r2[] = { "x", "28", "3" };
    cr_assert_eq(nd_table_add_row(t, r1), 0);
    cr_assert_eq(nd_table_add_row(t, r2), 0);
    const char *out = render(t, ND_FMT_TABLE);
    /* 20 Chinese characters = 40 columns, then two spaces */
    cr_assert_eq(column_of(out, 1, "n "), 42);
    cr_assert_eq(column_of(out, 3, "123"), 42);
    cr_assert_eq(column_of(out, 4, "28"), 42);
    cr_assert_eq(column_of(out, 3, "10"), 42 + 3 + 2);
    cr_assert_eq(column_of(out, 4, "3"), 42 + 3 + 2);
    cr_assert(strncmp(out, "流动党员\n", strlen("流动党员\n")) == 0, "the title comes first");
    nd_table_destroy(&t);
}

Test(output, terminal_lines_have_no_trailing_blanks_and_controls_become_spaces)
{
    nd_table_t *t = two_columns(NULL);
    add2(t, "a\nb", "tab\there");
    add2(t, "long name here", "");
    const char *out = render(t, ND_FMT_TABLE);
    cr_assert_not_null(strstr(out, "a b "), "a newline in a cell must not break the row");
    cr_assert_not_null(strstr(out, "tab here"));
    for (const char *p = strchr(out, '\n'); p; p = strchr(p + 1, '\n'))
        cr_assert(p == out || p[-1] != ' ', "trailing blank before offset %td", p - out);
    cr_assert_eq(column_of(out, 3, "long name here"), 0);
    nd_table_destroy(&t);
}

Test(output, an_empty_terminal_table_says_none)
{
    nd_table_t *t = two_columns("空表");
    cr_assert_eq(nd_table_rows(t), 0);
    cr_assert_str_eq(render(t, ND_FMT_TABLE),
        "空表\n"
        "姓名  党支部\n"
        "----  ------\n"
        "(none)\n");
    nd_table_destroy(&t);
}

Test(output, csv_starts_with_a_bom_ends_records_with_crlf_and_uses_keys_as_header)
{
    nd_table_t *t = two_columns("ignored in csv");
    add2(t, "林术平", "longtan");
    add2(t, NULL, "tingzi");
    cr_assert_eq(nd_table_rows(t), 2);
    cr_assert_str_eq(render(t, ND_FMT_CSV),
        "\xef\xbb\xbf" "name,org\r\n"
        "林术平,longtan\r\n"
        ",tingzi\r\n");
    nd_table_destroy(&t);
}

Test(output, csv_quotes_commas_quotes_and_line_breaks_as_rfc_4180_says)
{
    nd_table_t *t = two_columns(NULL);
    add2(t, "a,b", "say \"hi\"");
    add2(t, "line1\nline2", "cr\rhere");
    add2(t, "plain", "'already'");
    cr_assert_str_eq(render(t, ND_FMT_CSV),
        "\xef\xbb\xbf" "name,org\r\n"
        "\"a,b\",\"say \"\"hi\"\"\"\r\n"
        "\"line1\nline2\",\"cr\rhere\"\r\n"
        "plain,'already'\r\n");
    nd_table_destroy(&t);
}

Test(output, csv_cells_that_a_spreadsheet_would_run_as_formulas_get_a_quote_prefix)
{
    nd_table_t *t = two_columns(NULL);
    add2(t, "=HYPERLINK(\"http://x\")", "+1");
    add2(t, "-2+3", "@SUM(A1)");
    add2(t, "a=b", "1-2");
    cr_assert_str_eq(render(t, ND_FMT_CSV),
        "\xef\xbb\xbf" "name,org\r\n"
        "\"'=HYPERLINK(\"\"http://x\"\")\",'+1\r\n"
        "'-2+3,'@SUM(A1)\r\n"
        "a=b,1-2\r\n");
    nd_table_destroy(&t);
}

Test(output, json_keeps_column_order_and_escapes_quotes_backslashes_and_controls)
{
    nd_table_t *t = two_columns("流动党员 \"名单\"");
    add2(t, "林术平", "a\\b");
    add2(t, "x\ny\x01", "tab\t\x7f");
    cr_assert_str_eq(render(t, ND_FMT_JSON),
        "{\"title\":\"流动党员 \\\"名单\\\"\",\"rows\":[\n"
        "{\"name\":\"林术平\",\"org\":\"a\\\\b\"},\n"
        "{\"name\":\"x\\u000ay\\u0001\",\"org\":\"tab\\u0009\\u007f\"}\n"
        "]}\n");
    nd_table_destroy(&t);
}

Test(output, json_of_an_untitled_empty_table_has_a_null_title_and_no_rows)
{
    nd_table_t *t = two_columns(NULL);
    cr_assert_str_eq(render(t, ND_FMT_JSON), "{\"title\":null,\"rows\":[]}\n");
    nd_table_destroy(&t);
}

Test(output, json_replaces_invalid_utf8_bytes_and_passes_valid_ones_through)
{
    nd_table_t *t = two_columns(NULL);
    add2(t, "ok\xff", "\xe9\xbe\x99\xe6\xbd\xad");   /* 龙潭 */
    cr_assert_str_eq(render(t, ND_FMT_JSON),
        "{\"title\":null,\"rows\":[\n"
        "{\"name\":\"ok\xef\xbf\xbd\",\"org\":\"龙潭\"}\n"
        "]}\n");
    nd_table_destroy(&t);
}

Test(output, html_is_a_complete_printable_page)
{
    nd_table_t *t = two_columns("流动党员");
    add2(t, "林术平", "龙潭村党支部");
    const char *out = render(t, ND_FMT_HTML);
    cr_assert(strncmp(out, "<!doctype html>\n", 16) == 0);
    cr_assert_not_null(strstr(out, "<meta charset=\"utf-8\">"));
    cr_assert_not_null(strstr(out, "<title>流动党员</title>"));
    cr_assert_not_null(strstr(out, "@media print"));
    cr_assert_not_null(strstr(out, "<th>姓名</th><th>党支部</th>"));
    cr_assert_not_null(strstr(out, "<tr><td>林术平</td><td>龙潭村党支部</td></tr>"));
    cr_assert_not_null(strstr(out, "<body>\n<section>\n<h2>流动党员</h2>\n<table>"));
    size_t len = strlen(out);
    cr_assert(len > 16 && strcmp(out + len - 16, "</body>\n</html>\n") == 0);
    nd_table_destroy(&t);
}

Test(output, escapes_at_either_end_and_side_by_side_keep_the_text_between_them)
{
    nd_table_t *t = two_columns(NULL);
    /* an escape first, last, two together, and between runs of Chinese text */
    add2(t, "\"竹园\"\"镇\"", "<&>龙\xff潭'\n");
    cr_assert_str_eq(render(t, ND_FMT_CSV),
        "\xef\xbb\xbf" "name,org\r\n"
        "\"\"\"竹园\"\"\"\"镇\"\"\",\"<&>龙\xff潭'\n\"\r\n");
    cr_assert_str_eq(render(t, ND_FMT_JSON),
        "{\"title\":null,\"rows\":[\n"
        "{\"name\":\"\\\"竹园\\\"\\\"镇\\\"\",\"org\":\"<&>龙\xef\xbf\xbd潭'\\u000a\"}\n"
        "]}\n");
    cr_assert_not_null(strstr(render(t, ND_FMT_HTML),
        "<td>&quot;竹园&quot;&quot;镇&quot;</td><td>&lt;&amp;&gt;龙\xef\xbf\xbd潭&#39;<br></td>"));
    nd_table_destroy(&t);
}

Test(output, html_escapes_every_title_label_and_cell)
{
    const char *keys[] = { "a", "b" };
    const char *labels[] = { "<b>", "x&y" };
    nd_table_t *t = nd_table_new("<script>alert(1)</script>", 2, keys, labels);
    cr_assert_not_null(t);
    add2(t, "<img src=x onerror=\"go()\">", "it's & more");
    const char *out = render(t, ND_FMT_HTML);
    cr_assert_null(strstr(out, "<script>"));
    cr_assert_null(strstr(out, "<img"));
    cr_assert_null(strstr(out, "<b>"));
    cr_assert_not_null(strstr(out, "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    cr_assert_not_null(strstr(out, "<th>&lt;b&gt;</th><th>x&amp;y</th>"));
    cr_assert_not_null(strstr(out,
        "<td>&lt;img src=x onerror=&quot;go()&quot;&gt;</td><td>it&#39;s &amp; more</td>"));
    nd_table_destroy(&t);
}

Test(output, an_empty_html_table_says_none_across_all_columns)
{
    nd_table_t *t = two_columns(NULL);
    const char *out = render(t, ND_FMT_HTML);
    cr_assert_not_null(strstr(out, "<td class=\"none\" colspan=\"2\">(none)</td>"));
    cr_assert_not_null(strstr(out, "<title>liangdi</title>"));
    nd_table_destroy(&t);
}

Test(output, the_table_copies_its_strings_and_destroy_is_safe_twice)
{
    char key[] = "name", label[] = "姓名", cellv[] = "林术平", cell2[] = "x";
    const char *keys[] = { key, "org" };
    const char *labels[] = { label, NULL };
    nd_table_t *t = nd_table_new("t", 2, keys, labels);
    cr_assert_not_null(t);
    const char *row[] = { cellv, cell2 };
    cr_assert_eq(nd_table_add_row(t, row), 0);
    key[0] = 'X';
    label[0] = 'X';
    cellv[0] = 'X';
    const char *out = render(t, ND_FMT_JSON);
    cr_assert_str_eq(out, "{\"title\":\"t\",\"rows\":[\n{\"name\":\"林术平\",\"org\":\"x\"}\n]}\n");
    cr_assert_not_null(strstr(render(t, ND_FMT_TABLE), "姓名    org\n"),
                       "a NULL label falls back to the key");
    nd_table_destroy(&t);
    cr_assert_null(t);
    nd_table_destroy(&t);
    nd_table_destroy(NULL);
}

Test(output, many_rows_grow_the_table)
{
    const char *keys[] = { "n" };
    nd_table_t *t = nd_table_new(NULL, 1, keys, NULL);
    cr_assert_not_null(t);
    char buf[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        const char *row[] = { buf };
        cr_assert_eq(nd_table_add_row(t, row), 0);
    }
    cr_assert_eq(nd_table_rows(t), 1000);
    const char *out = render(t, ND_FMT_CSV);
    cr_assert_not_null(strstr(out, "\r\n999\r\n"));
    nd_table_destroy(&t);
}

Test(output, cells_beyond_the_first_block_of_text_are_all_kept)
{
    /* 3,000 rows of about 100 bytes each: the table's text takes several blocks */
    const char *keys[] = { "n", "note" };
    nd_table_t *t = nd_table_new(NULL, 2, keys, NULL);
    cr_assert_not_null(t);
    char n[16], note[128];
    for (int i = 0; i < 3000; i++) {
        snprintf(n, sizeof n, "%d", i);
        snprintf(note, sizeof note, "第%d次组织生活，学习党章，缴纳党费，参加志愿服务%d", i, i * 7);
        const char *row[] = { n, note };
        cr_assert_eq(nd_table_add_row(t, row), 0);
    }
    const char *out = render(t, ND_FMT_CSV);
    const char *p = out;
    for (int i = 0; i < 3000; i++) {
        char want[160];
        snprintf(want, sizeof want, "\r\n%d,第%d次组织生活，学习党章，缴纳党费，参加志愿服务%d\r\n",
                 i, i, i * 7);
        p = strstr(p, want);
        cr_assert_not_null(p, "row %d lost or out of order", i);
        p += 2;
    }
    nd_table_destroy(&t);
}

Test(output, kept_rows_are_the_callers_strings_and_print_as_copied_ones_do)
{
    char name[] = "林术平", org[] = "东莞支部";
    nd_table_t *copied = two_columns("流动党员");
    nd_table_t *kept = two_columns("流动党员");
    const char *row[] = { name, org };
    add2(copied, name, org);
    cr_assert_eq(nd_table_add_row_kept(kept, row), 0);
    const char *none[] = { "张小平", NULL };
    add2(copied, "张小平", NULL);
    cr_assert_eq(nd_table_add_row_kept(kept, none), 0);
    for (nd_format_t f = ND_FMT_TABLE; f <= ND_FMT_HTML; f++) {
        char *want = strdup(render(copied, f));
        cr_assert_str_eq(render(kept, f), want, "format %d", (int) f);
        free(want);
    }
    /* not copied: what the caller's string says when printed is what is printed */
    memcpy(name, "李", strlen("李"));
    cr_assert_not_null(strstr(render(kept, ND_FMT_CSV), "\r\n李术平,东莞支部\r\n"));
    cr_assert_not_null(strstr(render(copied, ND_FMT_CSV), "\r\n林术平,东莞支部\r\n"));
    nd_table_destroy(&kept);
    nd_table_destroy(&copied);
}

Test(output, padding_of_two_hundred_blanks_still_lines_up)
{
    const char *keys[] = { "note", "n" };
    nd_table_t *t = nd_table_new(NULL, 2, keys, NULL);
    cr_assert_not_null(t);
    /* 100 Chinese characters: 200 columns, so the short cells get 198 and more blanks */
    char wide[301] = "";
    for (int i = 0; i < 100; i++)
        strcat(wide, "党");
    const char *r1[] = { wide, "1" };
    const char *r2[] = { "短", "2" };
    cr_assert_eq(nd_table_add_row(t, r1), 0);
    cr_assert_eq(nd_table_add_row(t, r2), 0);
    const char *out = render(t, ND_FMT_TABLE);
    cr_assert_eq(column_of(out, 0, " n") + 1, 202);
    cr_assert_eq(column_of(out, 2, "1"), 202);
    cr_assert_eq(column_of(out, 3, "2"), 202);
    const char *line3 = strstr(out, "短");
    cr_assert_not_null(line3);
    cr_assert_eq(strspn(line3 + strlen("短"), " "), 200, "200 blanks after a 2-column cell");
    nd_table_destroy(&t);
}

/* Renders two tables as one document in fmt into `rendered`. */
static const char *render_document(nd_format_t fmt)
{
    nd_table_t *t[2] = { two_columns("一、成员"), two_columns("二、外出") };
    add2(t[0], "林术平", "龙潭村党支部");
    add2(t[1], "张小平", "东莞支部");
    const char *titles[2] = { "一、成员", "二、外出" };
    const nd_meta_t meta[] = { { "as_of", "2011-03-01" }, { "node", "zhuyuan" } };
    size_t len = 0;
    free(rendered);
    rendered = NULL;
    FILE *f = open_memstream(&rendered, &len);
    cr_assert_not_null(f);
    cr_assert_eq(nd_tables_print(t, titles, 2, fmt, "两地双管合规报告", meta, 2, f), 0);
    cr_assert_eq(fclose(f), 0);
    nd_table_destroy(&t[0]);
    nd_table_destroy(&t[1]);
    return rendered;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(output, tables_print_as_one_document_in_every_format)
{
    const char *s = render_document(ND_FMT_TABLE);
    cr_assert_not_null(strstr(s, "林术平"));
    cr_assert_not_null(strstr(s, "\n\n二、外出"), "%s", s);

    s = render_document(ND_FMT_CSV);
    cr_assert_eq(count_of(s, "\xef\xbb\xbf"), 1, "one BOM for the whole document");
    const char *csv_head = "\xef\xbb\xbf一、成员\r\nname,org\r\n林术平,龙潭村党支部\r\n";
    cr_assert_eq(strncmp(s, csv_head, strlen(csv_head)), 0, "%s", s);
    cr_assert_not_null(strstr(s, "\r\n\r\n二、外出\r\nname,org\r\n张小平,东莞支部\r\n"), "%s", s);

    s = render_document(ND_FMT_JSON);
    const char *json_head = "{\"title\":\"两地双管合规报告\",\"as_of\":\"2011-03-01\","
                            "\"node\":\"zhuyuan\",\"tables\":[\n";
    cr_assert_eq(strncmp(s, json_head, strlen(json_head)), 0, "%s", s);
    cr_assert_eq(count_of(s, "\"title\":\"一、成员\""), 1, "%s", s);
    cr_assert_eq(count_of(s, "\"title\":\"二、外出\""), 1, "%s", s);
    cr_assert_not_null(strstr(s, "\n]}\n"), "%s", s);

    s = render_document(ND_FMT_HTML);
    cr_assert_eq(count_of(s, "<html"), 1, "one page: %s", s);
    cr_assert_eq(count_of(s, "</html>"), 1);
    cr_assert_eq(count_of(s, "<table"), 2);
    cr_assert_not_null(strstr(s, "东莞支部"));
}

/* Each table rendered alone (nd_table_print) into a new string. */
static char *alone(const nd_table_t *t, nd_format_t fmt)
{
    return strdup(render(t, fmt));
}

/* s without its last n bytes, into a new string */
static char *cut_end(const char *s, size_t n)
{
    return strndup(s, strlen(s) - n);
}

Test(output, a_document_is_its_tables_rendered_alone_and_joined)
{
    /* the second table is empty (JSON's "]}" without a row, HTML's "(none)" row), and
     * its title needs escaping in HTML */
    nd_table_t *t[2] = { two_columns("一、成员"), two_columns("二、<外出>") };
    add2(t[0], "林术平", "龙潭村党支部");
    add2(t[0], "张\"小\"平", "a,b");
    const char *titles[2] = { "一、成员", "二、<外出>" };
    const nd_meta_t meta[] = { { "as_of", "2011-03-01" } };
    for (nd_format_t fmt = ND_FMT_TABLE; fmt <= ND_FMT_HTML; fmt++) {
        char *a = alone(t[0], fmt), *b = alone(t[1], fmt), *want = NULL;
        const char *bom = "\xef\xbb\xbf";
        switch (fmt) {
        case ND_FMT_TABLE:
            cr_assert(asprintf(&want, "%s\n%s", a, b) > 0);
            break;
        case ND_FMT_CSV:
            cr_assert(asprintf(&want, "%s%s\r\n%s\r\n%s\r\n%s", bom, titles[0],
                               a + strlen(bom), titles[1], b + strlen(bom)) > 0);
            break;
        case ND_FMT_JSON: {
            char *a1 = cut_end(a, 1), *b1 = cut_end(b, 1);
            cr_assert(asprintf(&want, "{\"title\":\"报告\",\"as_of\":\"2011-03-01\",\"tables\":[\n"
                               "%s,\n%s\n]}\n", a1, b1) > 0);
            free(a1);
            free(b1);
            break;
        }
        default: {
            const char *a_body = strstr(a, "<body>\n") + strlen("<body>\n");
            const char *b_body = strstr(b, "<body>\n") + strlen("<body>\n");
            char *head = strndup(a, (size_t) (a_body - a));
            char *a_sec = cut_end(a_body, strlen("</body>\n</html>\n"));
            char *b_sec = cut_end(b_body, strlen("</body>\n</html>\n"));
            cr_assert(asprintf(&want, "%s%s%s</body>\n</html>\n", head, a_sec, b_sec) > 0);
            free(head);
            free(a_sec);
            free(b_sec);
            break;
        }
        }
        size_t len = 0;
        char *doc = NULL;
        FILE *f = open_memstream(&doc, &len);
        cr_assert_not_null(f);
        cr_assert_eq(nd_tables_print(t, titles, 2, fmt, "报告", meta, 1, f), 0);
        cr_assert_eq(fclose(f), 0);
        cr_assert_str_eq(doc, want, "format %d", (int) fmt);
        free(doc);
        free(want);
        free(a);
        free(b);
    }
    nd_table_destroy(&t[0]);
    nd_table_destroy(&t[1]);
}

Test(output, a_document_in_an_unknown_format_is_refused)
{
    nd_table_t *t = two_columns("一");
    const char *titles[] = { "一" };
    cr_assert_eq(nd_tables_print(&t, titles, 1, (nd_format_t) 9, "x", NULL, 0, stdout),
                 LD_EINVAL);
    nd_table_destroy(&t);
}
