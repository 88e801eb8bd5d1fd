/* test_collate.c: names by pinyin or by strokes (collate.h): the comparison, the hex sort
 * keys that the report orders its findings by, and the collation "zh" on a store's
 * connection. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "collate.h"
#include "store.h"
#include "tmpdir.h"

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

Test(collate, surnames_go_by_pinyin_where_code_points_would_not)
{
    ld_error_t err = { 0 };
    nd_collate_t *c = nd_collate_new(&err);
    cr_assert_not_null(c, "%s", err.msg);
    /* by code point 张 (U+5F20) sorts before 李 (U+674E); by pinyin zhang comes after li */
    cr_assert_lt(strcmp("张", "李"), 0);
    const char *pinyin[] = { "李四", "欧阳明", "王五", "张三", "张小平", "赵六" };
    for (size_t i = 0; i + 1 < sizeof pinyin / sizeof pinyin[0]; i++)
        cr_assert_lt(nd_collate_cmp(c, pinyin[i], strlen(pinyin[i]), pinyin[i + 1],
                                    strlen(pinyin[i + 1])), 0, "%s before %s", pinyin[i],
                     pinyin[i + 1]);
    cr_assert_eq(nd_collate_cmp(c, "林术平", strlen("林术平"), "林术平", strlen("林术平")), 0);
    /* text that is not UTF-8 (ICU reads U+FFFD for a bad byte) still has a place */
    cr_assert_eq(nd_collate_cmp(c, "\xff", 1, "张三", strlen("张三")),
                 -nd_collate_cmp(c, "张三", strlen("张三"), "\xff", 1));
    nd_collate_destroy(&c);
    nd_collate_destroy(&c);
    cr_assert_null(c);
}

Test(collate, by_strokes_the_surname_with_fewer_strokes_comes_first)
{
    ld_error_t err = { 0 };
    nd_collate_t *c = nd_collate_new(&err);
    cr_assert_not_null(c, "%s", err.msg);
    /* 丁 2 strokes, 王 4, 刘 6, 李 7, 林 8, 赵 9, 黄 11: by pinyin (ding, huang, li, lin,
     * liu, wang, zhao) 黄 would be second and 王 sixth */
    const char *strokes[] = { "丁一", "王五", "刘强", "李四", "林术平", "赵六", "黄晓明" };
    size_t n = sizeof strokes / sizeof strokes[0];
    cr_assert_lt(nd_collate_cmp(c, "黄晓明", strlen("黄晓明"), "王五", strlen("王五")), 0,
                 "by pinyin before the order is set");
    nd_collate_set_order(c, ND_NAMES_STROKE);
    char keys[sizeof strokes / sizeof strokes[0]][512];
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(nd_collate_key(c, strokes[i], keys[i], sizeof keys[i]), 0);
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_lt(nd_collate_cmp(c, strokes[i], strlen(strokes[i]), strokes[i + 1],
                                    strlen(strokes[i + 1])), 0, "%s before %s", strokes[i],
                     strokes[i + 1]);
        cr_assert_lt(strcmp(keys[i], keys[i + 1]), 0, "%s's key before %s's", strokes[i],
                     strokes[i + 1]);
    }
    /* and back */
    nd_collate_set_order(c, ND_NAMES_PINYIN);
    cr_assert_lt(nd_collate_cmp(c, "黄晓明", strlen("黄晓明"), "王五", strlen("王五")), 0);

    nd_name_order_t order = ND_NAMES_PINYIN;
    cr_assert(nd_name_order_parse("stroke", &order) && order == ND_NAMES_STROKE);
    cr_assert(nd_name_order_parse("拼音", &order) && order == ND_NAMES_PINYIN);
    cr_assert(nd_name_order_parse("笔画", &order) && order == ND_NAMES_STROKE);
    cr_assert_not(nd_name_order_parse("strokes", &order));
    nd_collate_destroy(&c);
}

Test(collate, hex_keys_order_as_the_collator_does)
{
    ld_error_t err = { 0 };
    nd_collate_t *c = nd_collate_new(&err);
    cr_assert_not_null(c, "%s", err.msg);
    const char *names[] = { "赵六", "张三", "", "王五", "李四", "张小平", "欧阳明", "Li Si",
                            "林术平", "林", "彭翠花", "冉洪明", "唐超", "张三" };
    size_t n = sizeof names / sizeof names[0];
    char keys[sizeof names / sizeof names[0]][512];
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(nd_collate_key(c, names[i], keys[i], sizeof keys[i]), 0, "%s", names[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(sign(strcmp(keys[i], keys[j])),
                         sign(nd_collate_cmp(c, names[i], strlen(names[i]), names[j],
                                             strlen(names[j]))),
                         "%s vs %s", names[i], names[j]);
    char tiny[4];
    cr_assert_eq(nd_collate_key(c, "张三", tiny, sizeof tiny), -1, "a key that does not fit");
    cr_assert_str_eq(tiny, "");
    cr_assert_eq(nd_collate_key(c, "\xff", keys[0], sizeof keys[0]), -1, "not UTF-8");
    nd_collate_destroy(&c);
}

Test(collate, a_store_connection_orders_by_pinyin_with_collate_zh)
{
    char dir[HN_PATH_MAX], path[HN_PATH_MAX + 16];
    cr_assert_eq(hn_tmpdir_new("collate", dir), 0);
    snprintf(path, sizeof path, "%s/t.db", dir);
    ld_error_t err = { 0 };
    nd_store_t *store = nd_store_open(path, true, &err);
    cr_assert_not_null(store, "%s", err.msg);
    sqlite3 *db = nd_store_db(store);
    cr_assert_eq(sqlite3_exec(db, "CREATE TEMP TABLE t(name TEXT);"
                                  "INSERT INTO t VALUES ('赵六'), ('张三'), ('王五'), ('李四');",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT name FROM t ORDER BY name COLLATE \"zh\"", -1,
                                    &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    const char *want[] = { "李四", "王五", "张三", "赵六" };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *) sqlite3_column_text(st, 0), want[i]);
    }
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    nd_store_destroy(&store);
    hn_tmpdir_remove(dir);
}
