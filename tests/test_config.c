/* test_config.c: the node's INI config file: every [node] key, the [report] thresholds,
 * and errors that name the file, the line, the key and the value. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[256];
static char path[300];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/node.conf", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads `text` expecting failure; returns the message. */
static const char *load_fails(const char *text, ld_error_t *err)
{
    write_file(text);
    nd_config_t *c = nd_config_load(path, err);
    cr_assert_null(c, "config should have been refused: %s", text);
    return err->msg;
}

#define KEY "4Z<+GVHwBRc^wigw2oLZv*t05=27vGthn$N6SQ[I"

Test(config, reads_every_node_key_and_the_report_thresholds)
{
    ld_error_t err;
    ld_log_level_t level = LD_LOG_DEBUG;
    write_file("# a comment\n"
               "[node]\n"
               "db = /var/lib/liangdi/node.db\n"
               "broker = tcp://127.0.0.1:7700\n"
               "broker_key = " KEY "\n"
               "keyfile = /var/lib/liangdi/node.key\n"
               "interval = 5m\n"
               "timeout = 30\n"
               "log_level = warn\n"
               "\n"
               "[report]\n"
               "life_warn_months = 4\n"
               "contact_warn_days = 120\n");
    nd_config_t *c = nd_config_load(path, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_str_eq(nd_config_db(c), "/var/lib/liangdi/node.db");
    cr_assert_str_eq(nd_config_broker(c), "tcp://127.0.0.1:7700");
    cr_assert_str_eq(nd_config_broker_key(c), KEY);
    cr_assert_str_eq(nd_config_keyfile(c), "/var/lib/liangdi/node.key");
    cr_assert_eq(nd_config_interval_ms(c), 300000);
    cr_assert_eq(nd_config_timeout_ms(c), 30000);
    cr_assert(nd_config_log_level(c, &level));
    cr_assert_eq(level, LD_LOG_WARN);
    cr_assert_eq(nd_config_report_count(c), 2);
    cr_assert_str_eq(nd_config_report_key(c, 0), "report.life_warn_months");
    cr_assert_str_eq(nd_config_report_value(c, 0), "4");
    cr_assert_str_eq(nd_config_report_key(c, 1), "report.contact_warn_days");
    cr_assert_str_eq(nd_config_path(c), path);
    nd_config_destroy(&c);
    nd_config_destroy(&c);
    cr_assert_null(c);
}

Test(config, leaves_unset_keys_unset)
{
    ld_error_t err;
    ld_log_level_t level;
    write_file("[node]\ndb = x.db\n");
    nd_config_t *c = nd_config_load(path, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_null(nd_config_broker(c));
    cr_assert_null(nd_config_keyfile(c));
    cr_assert_eq(nd_config_interval_ms(c), 0);
    cr_assert_not(nd_config_log_level(c, &level));
    cr_assert_eq(nd_config_report_count(c), 0);
    nd_config_destroy(&c);
}

Test(config, names_file_and_line_of_an_unknown_key)
{
    ld_error_t err;
    char want[400];
    const char *msg = load_fails("[node]\ndb = a.db\n\ncolour = blue\n", &err);
    snprintf(want, sizeof want, "%s:4: unknown key 'colour' in [node]", path);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(err.code, LD_EINVAL);
}

Test(config, names_file_line_and_value_of_a_bad_value)
{
    ld_error_t err;
    char want[400];
    const char *msg = load_fails("[node]\ninterval = often\n", &err);
    snprintf(want, sizeof want, "%s:2: bad value 'often' for interval", path);
    cr_assert(strncmp(msg, want, strlen(want)) == 0, "%s", msg);

    msg = load_fails("[node]\nlog_level = loud\n", &err);
    cr_assert(strstr(msg, ":2: bad value 'loud' for log_level"), "%s", msg);
    msg = load_fails("[node]\nbroker = http://example.org\n", &err);
    cr_assert(strstr(msg, ":2: bad value 'http://example.org' for broker"), "%s", msg);
    msg = load_fails("[node]\nbroker_key = short\n", &err);
    cr_assert(strstr(msg, ":2: bad value 'short' for broker_key"), "%s", msg);
    msg = load_fails("[report]\nlife_warn_months = -1\n", &err);
    cr_assert(strstr(msg, ":2: bad value '-1' for life_warn_months"), "%s", msg);
    msg = load_fails("[report]\nvisit_warn_days = 36501\n", &err);
    cr_assert(strstr(msg, ":2: bad value '36501' for visit_warn_days (expected a whole number "
                          "of days or months, at most 36500)"), "%s", msg);
    msg = load_fails("[report]\nsupport_fund_yuan = 10000.50\n", &err);
    cr_assert(strstr(msg, ":2: bad value '10000.50' for support_fund_yuan (expected a whole "
                          "number of yuan, 0 for none, at most 10000000)"), "%s", msg);
    msg = load_fails("[report]\ntraining_target = 100001\n", &err);
    cr_assert(strstr(msg, ":2: bad value '100001' for training_target (expected a whole "
                          "number of members"), "%s", msg);
}

Test(config, reads_the_yearly_targets_of_help)
{
    ld_error_t err = { 0 };
    write_file("[report]\nsupport_fund_yuan = 2500000\ntraining_target = 0\n");
    nd_config_t *c = nd_config_load(path, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(nd_config_report_count(c), 2);
    cr_assert_str_eq(nd_config_report_key(c, 0), "report.support_fund_yuan");
    cr_assert_str_eq(nd_config_report_value(c, 0), "2500000");
    cr_assert_str_eq(nd_config_report_key(c, 1), "report.training_target");
    cr_assert_str_eq(nd_config_report_value(c, 1), "0");
    nd_config_destroy(&c);
}

Test(config, refuses_a_report_threshold_the_report_does_not_know)
{
    ld_error_t err;
    const char *msg = load_fails("[report]\nlife_warn_months = 4\nmoon_phase_days = 3\n", &err);
    cr_assert(strstr(msg, ":3: unknown key 'moon_phase_days' in [report]"), "%s", msg);
}

Test(config, refuses_an_unknown_section_and_keys_outside_sections)
{
    ld_error_t err;
    const char *msg = load_fails("[node]\ndb = a\n[colours]\nred = 1\n", &err);
    cr_assert(strstr(msg, ":4: unknown section [colours]"), "%s", msg);
    msg = load_fails("db = a\n", &err);
    cr_assert(strstr(msg, ":1: key 'db' outside a section"), "%s", msg);
}

Test(config, reports_a_syntax_error_with_its_line)
{
    ld_error_t err;
    const char *msg = load_fails("[node]\ndb = a\nthis line has no equals sign\n", &err);
    cr_assert(strstr(msg, ":3: syntax error"), "%s", msg);
}

Test(config, reports_the_first_error_when_there_are_several)
{
    ld_error_t err;
    const char *msg = load_fails("[node]\nnonsense\ncolour = red\n", &err);
    cr_assert(strstr(msg, ":2: syntax error"), "%s", msg);
    msg = load_fails("[node]\ncolour = red\nnonsense\n", &err);
    cr_assert(strstr(msg, ":2: unknown key 'colour'"), "%s", msg);
}

Test(config, refuses_a_missing_file_as_an_io_error)
{
    ld_error_t err;
    nd_config_t *c = nd_config_load("/nonexistent/liangdi/node.conf", &err);
    cr_assert_null(c);
    cr_assert_eq(err.code, LD_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/liangdi/node.conf"), "%s", err.msg);
}

Test(config, refuses_a_period_that_does_not_split_the_year)
{
    ld_error_t err = { 0 };
    const char *msg = load_fails("[report]\ncontact_warn_days = 20\nvisit_period_months = 5\n",
                                 &err);
    cr_assert_not_null(strstr(msg, "node.conf:3: bad value '5' for visit_period_months "
                                   "(expected 1, 2, 3, 4, 6 or 12"), "%s", msg);
}

Test(config, refuses_a_directory_named_as_the_file)
{
    ld_error_t err = { 0 };
    cr_assert_null(nd_config_load(dir, &err));
    cr_assert_eq(err.code, LD_EIO);
    cr_assert_not_null(strstr(err.msg, "cannot read config file"), "%s", err.msg);
}

Test(config, refuses_a_line_too_long_to_read_whole)
{
    ld_error_t err;
    char text[1200];
    memset(text, 0, sizeof text);
    strcpy(text, "[node]\ndb = ");
    memset(text + strlen(text), 'a', 1000);
    strcat(text, "\n");
    const char *msg = load_fails(text, &err);
    cr_assert(strstr(msg, ":2: line too long"), "%s", msg);
}

Test(config, parses_durations_with_units)
{
    int ms = 0;
    cr_assert(nd_duration_parse("30s", &ms));
    cr_assert_eq(ms, 30000);
    cr_assert(nd_duration_parse("5m", &ms));
    cr_assert_eq(ms, 300000);
    cr_assert(nd_duration_parse("1h", &ms));
    cr_assert_eq(ms, 3600000);
    cr_assert(nd_duration_parse("90", &ms));
    cr_assert_eq(ms, 90000);
    cr_assert(nd_duration_parse("250ms", &ms));
    cr_assert_eq(ms, 250);
    cr_assert_not(nd_duration_parse("0", &ms));
    cr_assert_not(nd_duration_parse("-5s", &ms));
    cr_assert_not(nd_duration_parse("5 m", &ms));
    cr_assert_not(nd_duration_parse("2d", &ms));
    cr_assert_not(nd_duration_parse("25h", &ms));
    cr_assert_not(nd_duration_parse("", &ms));
}

Test(config, accepts_tcp_and_ipc_endpoints_only)
{
    cr_assert(nd_endpoint_valid("tcp://127.0.0.1:7700"));
    cr_assert(nd_endpoint_valid("tcp://broker.example.org:7700"));
    cr_assert(nd_endpoint_valid("ipc:///run/liangdi/broker.sock"));
    cr_assert_not(nd_endpoint_valid("tcp://127.0.0.1"));
    cr_assert_not(nd_endpoint_valid("tcp://127.0.0.1:0"));
    cr_assert_not(nd_endpoint_valid("tcp://127.0.0.1:70000"));
    cr_assert_not(nd_endpoint_valid("tcp://:7700"));
    cr_assert_not(nd_endpoint_valid("udp://127.0.0.1:7700"));
    cr_assert_not(nd_endpoint_valid("ipc://"));
}

Test(config, accepts_a_list_of_broker_front_ends)
{
    cr_assert(nd_endpoint_list_valid("tcp://127.0.0.1:7700"));
    cr_assert(nd_endpoint_list_valid("tcp://10.0.0.1:7700,tcp://10.0.0.2:7700"));
    cr_assert(nd_endpoint_list_valid("tcp://10.0.0.1:7700 , ipc:///run/liangdi/broker.sock"));
    cr_assert_not(nd_endpoint_list_valid(""));
    cr_assert_not(nd_endpoint_list_valid("tcp://10.0.0.1:7700,"));
    cr_assert_not(nd_endpoint_list_valid(",tcp://10.0.0.1:7700"));
    cr_assert_not(nd_endpoint_list_valid("tcp://10.0.0.1:7700,,tcp://10.0.0.2:7700"));
    cr_assert_not(nd_endpoint_list_valid("tcp://10.0.0.1:7700,http://10.0.0.2"));
    cr_assert(nd_endpoint_list_valid("tcp://h:1,tcp://h:2,tcp://h:3,tcp://h:4,"
                                     "tcp://h:5,tcp://h:6,tcp://h:7,tcp://h:8"));
    cr_assert_not(nd_endpoint_list_valid("tcp://h:1,tcp://h:2,tcp://h:3,tcp://h:4,"
                                         "tcp://h:5,tcp://h:6,tcp://h:7,tcp://h:8,tcp://h:9"));
}

Test(config, reads_several_broker_endpoints_from_the_node_section)
{
    ld_error_t err;
    write_file("[node]\n"
               "broker = tcp://10.0.0.1:7700, tcp://10.0.0.2:7700\n"
               "broker_key = " KEY "\n");
    nd_config_t *c = nd_config_load(path, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_str_eq(nd_config_broker(c), "tcp://10.0.0.1:7700, tcp://10.0.0.2:7700");
    nd_config_destroy(&c);
    const char *msg = load_fails("[node]\nbroker = tcp://10.0.0.1:7700,udp://x:1\n", &err);
    cr_assert(strstr(msg, ":2: bad value 'tcp://10.0.0.1:7700,udp://x:1' for broker"), "%s", msg);
}

Test(config, refuses_a_key_set_twice_naming_both_lines)
{
    ld_error_t err;
    char want[400];
    const char *msg = load_fails("[node]\ndb = a.db\nlog_level = info\n\ndb = b.db\n", &err);
    snprintf(want, sizeof want, "%s:5: 'db' in [node] is set twice (first on line 2; an "
             "indented line counts as the key again)", path);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(err.code, LD_EINVAL);
    /* in a second [node] section, and in [report], alike */
    msg = load_fails("[node]\ntimeout = 10s\n[report]\nvisit_warn_days = 30\n[node]\n"
                     "timeout = 20s\n", &err);
    cr_assert(strstr(msg, ":6: 'timeout' in [node] is set twice (first on line 2") != NULL,
              "%s", msg);
    msg = load_fails("[report]\nvisit_warn_days = 30\nvisit_warn_days = 40\n", &err);
    cr_assert(strstr(msg, ":3: 'visit_warn_days' in [report] is set twice") != NULL, "%s", msg);
    /* an indented line is the key before it again, not a value of its own */
    msg = load_fails("[node]\ndb = a.db\n  b.db\n", &err);
    cr_assert(strstr(msg, ":3: 'db' in [node] is set twice (first on line 2") != NULL, "%s",
              msg);
}
