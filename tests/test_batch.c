/* test_batch.c: a line of a batch file split into words (nd_batch_split): blanks,
 * quotes and backslashes as a shell reads them, comments, and the lines it refuses. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"

#define MAX 8

static char buf[512];
static char *words[MAX];
static size_t n;
static ld_error_t err;

/* Splits `line` (copied); the return code of nd_batch_split. */
static int split(const char *line)
{
    snprintf(buf, sizeof buf, "%s", line);
    ld_error_clear(&err);
    n = 99;
    return nd_batch_split(buf, words, MAX, &n, &err);
}

/* Asserts that `line` splits into exactly the NULL-terminated words given. */
static void splits_to(const char *line, ...)
{
    va_list ap;
    size_t i = 0;
    cr_assert_eq(split(line), 0, "'%s' refused: %s", line, err.msg);
    va_start(ap, line);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *), i++) {
        cr_assert_lt(i, n, "'%s': only %zu words, '%s' missing", line, n, w);
        cr_assert_str_eq(words[i], w, "'%s': word %zu", line, i);
    }
    va_end(ap);
    cr_assert_eq(n, i, "'%s': %zu words, want %zu", line, n, i);
}

Test(batch_split, blanks_separate_words_and_any_run_of_them_is_one_separator)
{
    splits_to("activity add 林术平 --date 2010-03-25", "activity", "add", "林术平", "--date",
              "2010-03-25", NULL);
    splits_to(" \t assess\t\t张三   --year 2009 \t", "assess", "张三", "--year", "2009", NULL);
    splits_to("", NULL);
    splits_to(" \t ", NULL);
}

Test(batch_split, quotes_keep_blanks_and_join_with_what_touches_them)
{
    splits_to("--note '主题党日 (三月)'", "--note", "主题党日 (三月)", NULL);
    splits_to("--note \"流动党员热线 800-5-12371\"", "--note", "流动党员热线 800-5-12371", NULL);
    splits_to("a'b c'd \"e f\"g", "ab cd", "e fg", NULL);
    splits_to("--parent ''", "--parent", "", NULL);
    splits_to("\"\" x", "", "x", NULL);
    splits_to("'a\\b' '\"'", "a\\b", "\"", NULL);   /* nothing is special inside '...' */
    splits_to("\"say \\\"hi\\\" \\\\ \\n\"", "say \"hi\" \\ \\n", NULL);
    splits_to("'it'\\''s'", "it's", NULL);
}

Test(batch_split, a_backslash_outside_quotes_keeps_the_next_character)
{
    splits_to("a\\ b c\\'d \\#e", "a b", "c'd", "#e", NULL);
    splits_to("\\\\", "\\", NULL);
}

Test(batch_split, a_word_starting_with_a_hash_starts_a_comment)
{
    splits_to("# the whole line", NULL);
    splits_to("   # indented", NULL);
    splits_to("assess 张三 # a remark 'unclosed", "assess", "张三", NULL);
    splits_to("note 第#1条 x", "note", "第#1条", "x", NULL);
    splits_to("'#not' \"#a comment\"", "#not", "#a comment", NULL);
}

Test(batch_split, refuses_unclosed_quotes_a_final_backslash_and_too_many_words)
{
    cr_assert_eq(split("--note '未完"), LD_EINVAL);
    cr_assert(strstr(err.msg, "a ' that is never closed"), "%s", err.msg);
    cr_assert_eq(split("--note \"未完 \\\""), LD_EINVAL);
    cr_assert(strstr(err.msg, "a \" that is never closed"), "%s", err.msg);
    cr_assert_eq(split("a b\\"), LD_EINVAL);
    cr_assert(strstr(err.msg, "a \\ at the end of the line"), "%s", err.msg);
    cr_assert_eq(split("1 2 3 4 5 6 7 8"), 0);
    cr_assert_eq(n, 8);
    cr_assert_eq(split("1 2 3 4 5 6 7 8 9"), LD_EINVAL);
    cr_assert(strstr(err.msg, "more than 8 words"), "%s", err.msg);
    cr_assert_eq(split("1 2 3 4 5 6 7 8 # a comment is not a word"), 0);
}
