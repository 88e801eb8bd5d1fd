/* contract_store.h: the broker store a contract test (test_mailbox, test_registry) runs
 * against, as $LIANGDI_TEST_STORE names it: SQLite (the default), a file in a temp dir
 * of the test's own; or JetStream, a nats-server of the test's own (built with
 * HN_WITH_JETSTREAM, as the `_jetstream` variants are).  Criterion asserts inside:
 * call these from a test or its setup and teardown. */
#ifndef CONTRACT_STORE_H
#define CONTRACT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include "error.h"
#ifdef HN_WITH_JETSTREAM
#include "test_jetstream_harness.h"
#endif

typedef struct cs_store {
    bool jetstream;            /* the store under test is JetStream, else SQLite */
    char dir[256];             /* the test's temp dir */
    char where[320];           /* the store: its SQLite file, or the NATS URL list */
#ifdef HN_WITH_JETSTREAM
    jh_nats_t nats;            /* the store's server */
    jh_nats_t other;           /* one on which no store was made (cs_missing) */
#endif
} cs_store_t;

/* Chooses the store, makes the temp dir (named after `suite`) and, for JetStream,
 * starts its server; skips the test, saying that `what` was not tested, when
 * nats-server is not installed. */
void cs_setup(cs_store_t *s, const char *suite, const char *what);

/* Stops the servers and removes the temp dir with everything in it. */
void cs_teardown(cs_store_t *s);

/* A place of the same kind where no store was ever made, into out[size]: a file path
 * in the temp dir, or the URLs of a second server. */
void cs_missing(cs_store_t *s, char *out, size_t size);

/* Asserts what opening the store at `missing` (cs_missing) without create left in err:
 * not found, naming the store and saying to run init. */
void cs_assert_not_made(const ld_error_t *err, const char *missing);

/* Asserts that opening a place where no store was made (cs_missing) without create
 * fails as cs_assert_not_made says, twice, and makes nothing there.  `opens` opens (and
 * closes) the store under test at `at`, true if it could. */
void cs_assert_missing_stays_missing(cs_store_t *s, bool (*opens)(const char *at,
                                                                   ld_error_t *err));

#endif
