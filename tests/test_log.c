/* test_log.c: the logger writes "TIME name: LEVEL message" lines to stderr, filters by
 * level before evaluating arguments, and parses level names. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

static char dir[256];
static char path[300];
static int saved_stderr = -1;

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-log-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/stderr", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void restore_stderr(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
}

static void teardown(void)
{
    restore_stderr();
    unlink(path);
    rmdir(dir);
}

TestSuite(log, .init = setup, .fini = teardown);

/* What has been logged so far (static buffer). */
static const char *captured(void)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int evaluated;

static int count_evaluation(void)
{
    return ++evaluated;
}

Test(log, a_line_has_an_iso_time_the_name_the_level_and_the_message)
{
    ld_log_init("/usr/bin/liangdi-broker", LD_LOG_INFO);
    ld_info("ready, listening on %s", "tcp://127.0.0.1:5670");
    ld_err("节点 %s 被拒绝", "dongguan");
    const char *out = captured();
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[-+][0-9]{4} "
                         "liangdi-broker: INFO ready, listening on tcp://127\\.0\\.0\\.1:5670\n"
                         "[0-9]{4}-[^ ]+ liangdi-broker: ERROR 节点 dongguan 被拒绝\n$",
                         REG_EXTENDED), 0);
    cr_assert_eq(regexec(&re, out, 0, NULL, 0), 0, "got: %s", out);
    regfree(&re);
}

Test(log, lines_below_the_level_are_not_written_nor_their_arguments_evaluated)
{
    ld_log_init("liangdi", LD_LOG_WARN);
    evaluated = 0;
    ld_debug("debug %d", count_evaluation());
    ld_info("info %d", count_evaluation());
    cr_assert_eq(evaluated, 0);
    ld_warn("warn %d", count_evaluation());
    cr_assert_eq(evaluated, 1);
    const char *out = captured();
    cr_assert(strstr(out, "WARN warn 1") != NULL, "%s", out);
    cr_assert_null(strstr(out, "INFO"));
    cr_assert_null(strstr(out, "DEBUG"));
}

Test(log, level_none_silences_everything)
{
    ld_log_init("liangdi", LD_LOG_NONE);
    ld_err("should not appear");
    cr_assert_str_eq(captured(), "");
}

Test(log, a_very_long_message_is_cut_to_one_line)
{
    ld_log_init("liangdi", LD_LOG_DEBUG);
    char *long_text = malloc(10000);
    memset(long_text, 'x', 9999);
    long_text[9999] = '\0';
    ld_debug("%s", long_text);
    free(long_text);
    const char *out = captured();
    size_t len = strlen(out);
    cr_assert_gt(len, 100);
    cr_assert_eq(out[len - 1], '\n');
    cr_assert_eq(strchr(out, '\n'), out + len - 1, "exactly one line");
    cr_assert(strstr(out, "...\n") != NULL, "the cut is marked");
}

Test(log, level_names_parse_and_bad_ones_leave_the_output_alone)
{
    ld_log_level_t level = LD_LOG_ERROR;
    cr_assert_eq(ld_log_level_parse("debug", &level), 0);
    cr_assert_eq(level, LD_LOG_DEBUG);
    cr_assert_eq(ld_log_level_parse("INFO", &level), 0);
    cr_assert_eq(level, LD_LOG_INFO);
    cr_assert_eq(ld_log_level_parse("warn", &level), 0);
    cr_assert_eq(level, LD_LOG_WARN);
    cr_assert_eq(ld_log_level_parse("error", &level), 0);
    cr_assert_eq(level, LD_LOG_ERROR);
    cr_assert_eq(ld_log_level_parse("none", &level), 0);
    cr_assert_eq(level, LD_LOG_NONE);
    cr_assert_eq(ld_log_level_parse("verbose", &level), LD_EINVAL);
    cr_assert_eq(ld_log_level_parse(NULL, &level), LD_EINVAL);
    cr_assert_eq(level, LD_LOG_NONE);
}
