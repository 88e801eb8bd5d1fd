/* test_broker_config.c: the broker's INI config file: a line too long to read whole, a
 * path that is not a file, and a bind endpoint whose port cannot be, are refused with
 * the file and line named, and no setting is taken from them. */
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
    snprintf(dir, sizeof dir, "%s/ld-bkconfig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/broker.conf", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(broker_config, .init = setup, .fini = teardown);

/* Loads `text` (from `file`, or from the test's broker.conf when NULL). */
static int load(const char *file, const char *text, bk_config_t *cfg, ld_error_t *err)
{
    if (text) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
    }
    bk_config_defaults(cfg);
    ld_error_clear(err);
    return bk_config_load(cfg, file ? file : path, err);
}

Test(broker_config, reads_db_and_a_bind_whose_port_the_os_picks)
{
    bk_config_t cfg;
    ld_error_t err;
    cr_assert_eq(load(NULL, "[broker]\ndb = /var/lib/liangdi/broker.db\n"
                            "bind = tcp://127.0.0.1:*\n", &cfg, &err), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.db, "/var/lib/liangdi/broker.db");
    cr_assert_str_eq(cfg.bind, "tcp://127.0.0.1:*");
    bk_config_clear(&cfg);
}

Test(broker_config, a_line_too_long_to_read_whole_is_refused_not_split_in_two)
{
    /* split at inih's buffer, the tail of this line would read as "x.db" for db */
    char text[600], dirpart[300];
    memset(dirpart, 'd', 190);
    dirpart[190] = '\0';
    snprintf(text, sizeof text, "[broker]\ndb = /%s/ db = x.db\n", dirpart);
    bk_config_t cfg;
    ld_error_t err;
    cr_assert_neq(load(NULL, text, &cfg, &err), 0);
    cr_assert_not_null(strstr(err.msg, "broker.conf:2: line longer than"), "%s", err.msg);
    cr_assert_null(cfg.db, "no db taken from a line read in part");
    bk_config_clear(&cfg);
}

Test(broker_config, a_directory_is_not_a_config_file)
{
    bk_config_t cfg;
    ld_error_t err;
    cr_assert_neq(load(dir, NULL, &cfg, &err), 0);
    cr_assert_not_null(strstr(err.msg, "cannot read config file"), "%s", err.msg);
    bk_config_clear(&cfg);
}

Test(broker_config, a_bind_port_out_of_range_is_refused)
{
    const char *bad[] = { "tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://", "tcp://:5555",
                          "tcp://127.0.0.1:55a", "udp://127.0.0.1:5555", "ipc://" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "[broker]\nbind = %s\n", bad[i]);
        bk_config_t cfg;
        ld_error_t err;
        cr_assert_neq(load(NULL, text, &cfg, &err), 0, "%s was taken", bad[i]);
        cr_assert_not_null(strstr(err.msg, "broker.conf:2: bind: "), "%s", err.msg);
        cr_assert_null(cfg.bind);
        bk_config_clear(&cfg);
    }
}

Test(broker_config, a_key_set_twice_is_refused_naming_both_lines)
{
    bk_config_t cfg;
    ld_error_t err;
    cr_assert_eq(load(NULL, "[broker]\nbind = tcp://127.0.0.1:*\nlog_level = info\n"
                            "bind = tcp://127.0.0.1:7000\n", &cfg, &err), LD_EINVAL);
    char want[400];
    snprintf(want, sizeof want, "%s:4: bind: set twice (first on line 2; an indented line "
             "counts as the key again)", path);
    cr_assert_str_eq(err.msg, want);
    bk_config_clear(&cfg);
    cr_assert_eq(load(NULL, "[broker]\ndb = a.db\n    b.db\n", &cfg, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, ":3: db: set twice (first on line 2") != NULL, "%s", err.msg);
    bk_config_clear(&cfg);
}
