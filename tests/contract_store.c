/* contract_store.c: the SQLite file or the nats-server a broker store contract test
 * runs against (contract_store.h). */
#include "contract_store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HN_WITH_JETSTREAM
#include <nats/nats.h>
#endif

/* True when $LIANGDI_TEST_STORE is "jetstream", false for "sqlite" (the default). */
static bool store_is_jetstream(const char *suite)
{
    const char *name = getenv("LIANGDI_TEST_STORE");
    if (!name || !*name || strcmp(name, "sqlite") == 0)
        return false;
    cr_assert_str_eq(name, "jetstream", "$LIANGDI_TEST_STORE is '%s': sqlite or jetstream",
                     name);
#ifndef HN_WITH_JETSTREAM
    cr_assert_fail("$LIANGDI_TEST_STORE is jetstream, but this test was built without "
                   "libnats: run %s_jetstream", suite);
#else
    (void)suite;
#endif
    return true;
}

#ifdef HN_WITH_JETSTREAM
/* Stops a lone nats-server, printing its log if it had stopped by itself. */
static void nats_stop(jh_nats_t *c)
{
    bool died = false;
    for (size_t i = 0; i < c->n; i++)
        if (!hn_proc_running(&c->servers[i].proc))
            died = true;
    jh_nats_stop(c, died);
    c->n = 0;
}
#endif

void cs_setup(cs_store_t *s, const char *suite, const char *what)
{
    memset(s, 0, sizeof *s);
    s->jetstream = store_is_jetstream(suite);
#ifdef HN_WITH_JETSTREAM
    if (s->jetstream && !jh_nats_server_bin())
        cr_skip_test("nats-server is not installed here (Debian: apt-get install nats-server), "
                     "so %s were not tested on the JetStream store", what);
#else
    (void)what;
#endif
    const char *base = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/%s.XXXXXX", base && *base ? base : "/tmp", suite);
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(s->where, sizeof s->where, "%s/broker.db", s->dir);
#ifdef HN_WITH_JETSTREAM
    if (s->jetstream) {
        cr_assert_eq(jh_nats_start(&s->nats, s->dir, 1), 0, "nats-server did not start");
        snprintf(s->where, sizeof s->where, "%s", s->nats.urls);
    }
#endif
}

void cs_teardown(cs_store_t *s)
{
#ifdef HN_WITH_JETSTREAM
    if (s->jetstream) {
        nats_stop(&s->nats);
        nats_stop(&s->other);
        nats_CloseAndWait(2000);
        hn_tmpdir_remove(s->dir);
        return;
    }
#endif
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    char path[400];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", s->where, suffixes[i]);
        unlink(path);
    }
    rmdir(s->dir);
}

void cs_missing(cs_store_t *s, char *out, size_t size)
{
    snprintf(out, size, "%s/none.db", s->dir);
#ifdef HN_WITH_JETSTREAM
    if (s->jetstream) {
        char other_dir[300];
        snprintf(other_dir, sizeof other_dir, "%s/other", s->dir);
        cr_assert_eq(mkdir(other_dir, 0700), 0);
        cr_assert_eq(jh_nats_start(&s->other, other_dir, 1), 0, "nats-server did not start");
        snprintf(out, size, "%s", s->other.urls);
    }
#endif
}

void cs_assert_not_made(const ld_error_t *err, const char *missing)
{
    cr_assert_eq(err->code, LD_ENOTFOUND, "%s", err->msg);
    cr_assert_not_null(strstr(err->msg, missing), "the message names the store: %s", err->msg);
    cr_assert_not_null(strstr(err->msg, "init"), "and says to make it first: %s", err->msg);
}

void cs_assert_missing_stays_missing(cs_store_t *s, bool (*opens)(const char *at,
                                                                   ld_error_t *err))
{
    char missing[400];
    ld_error_t err;
    cs_missing(s, missing, sizeof missing);
    cr_assert_not(opens(missing, &err));
    cs_assert_not_made(&err, missing);
    cr_assert_not(opens(missing, &err), "nothing is created");
    cr_assert_eq(err.code, LD_ENOTFOUND);
    if (!s->jetstream)
        cr_assert_neq(access(missing, F_OK), 0, "nothing is created");
}
