/* harness.h: what every integration test shares: a temp dir, the real liangdi and
 * liangdi-broker binaries run as process groups with their output in log files,
 * waiting for a log line or a condition with a deadline, running one `liangdi`
 * command and capturing its output, and comparing two nodes' stores field by field.
 *
 * A test keeps one hn_world_t: hn_world_init makes the temp dir and starts a broker,
 * hn_world_node adds a registered node, hn_world_fini kills every process group,
 * prints every log unless hn_world_finish said all was well, and removes the temp dir.
 * The binaries come from $LIANGDI_BIN and $LIANGDI_BROKER_BIN (set by meson).
 *
 * The broker's store is $LIANGDI_TEST_STORE: "sqlite" (the default) is one broker on
 * its SQLite file; "jetstream" is a three-server NATS JetStream cluster with two broker
 * front-ends sharing one keypair, registry and mailboxes, every node given both
 * front-ends' endpoints (in turn, so that neighbours start on different ones).  The
 * same world functions serve both: hn_broker_kill kills every front-end, broker
 * commands go to the shared store.  The JetStream world needs a harness built with
 * HN_WITH_JETSTREAM (libnats, test_jetstream_harness.c) and a nats-server. */
#ifndef HN_HARNESS_H
#define HN_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "tmpdir.h"

#define HN_KEY_TEXT   40
#define HN_NODES_MAX  8

/* ------------------------------------------------------------- basics ---- */

/* Milliseconds on a monotonic clock. */
int64_t hn_now_ms(void);

/* The size of a file, 0 if it does not exist. */
size_t hn_file_size(const char *path);

/* The seed of a test's PRNG: $LIANGDI_TEST_SEED, else `fallback`; printed so that a
 * failing run can be repeated. */
uint64_t hn_seed(uint64_t fallback);
/* The next number of a xorshift64* sequence (state must not be 0). */
uint64_t hn_rand(uint64_t *state);

/* ------------------------------------------------------------ processes ---- */

/* A process started in its own process group, stdout and stderr appended to `log`. */
typedef struct hn_proc {
    pid_t pid;                 /* also its process group; 0 when not running */
    int   status;              /* exit code, or 128 + signal, once reaped */
    char  name[128];
    char  log[HN_PATH_MAX];
} hn_proc_t;

/* Starts argv[0] (a path) with argv; 0 or -1. */
int hn_proc_start(hn_proc_t *p, const char *name, const char *log, const char *const *argv);

/* hn_proc_start, except that the process is killed when the test process dies, so a
 * test that crashes leaves no server behind. */
int hn_proc_start_tied(hn_proc_t *p, const char *name, const char *log, const char *const *argv);

/* True while it runs (reaps it, setting status, once it has exited). */
bool hn_proc_running(hn_proc_t *p);

/* Waits until the log holds a line containing `needle` at or after byte `from`; copies
 * that line into `line` (may be NULL).  False at the deadline or if the process exits. */
bool hn_proc_wait_log(hn_proc_t *p, const char *needle, size_t from, int timeout_ms,
                      char *line, size_t linesz);

/* Sends `sig` to the whole process group; for SIGKILL also reaps the process. */
void hn_proc_signal(hn_proc_t *p, int sig);

/* Waits up to timeout_ms for the process to exit by itself (SIGKILL after that).
 * Returns its status (128 + signal if killed); the status it had if already reaped. */
int hn_proc_wait(hn_proc_t *p, int timeout_ms);

/* SIGTERM, then waits up to timeout_ms for the exit (SIGKILL after it).  Returns the
 * exit status (128 + signal if killed), or -1 if nothing was running. */
int hn_proc_stop(hn_proc_t *p, int timeout_ms);

/* Copies the log to stderr, framed with the process's name. */
void hn_proc_dump_log(const hn_proc_t *p);

/* ------------------------------------------------------------ commands ---- */

/* One finished command: exit code (or 128 + signal; -1 if it ran past its deadline
 * and was killed), its stdout and stderr (owned, NUL-terminated). */
typedef struct hn_result {
    int   status;
    char *out;
    char *err;
} hn_result_t;

/* Runs argv (argv[0] a path) to completion within timeout_ms; 0 or -1 (could not
 * start).  Free the result with hn_result_free. */
int hn_run(hn_result_t *r, int timeout_ms, const char *const *argv);
void hn_result_free(hn_result_t *r);

/* ---------------------------------------------------------------- world ---- */

/* Where the world's broker keeps its registry and mailboxes. */
typedef enum hn_store {
    HN_STORE_SQLITE = 0,       /* one broker, its SQLite file */
    HN_STORE_JETSTREAM         /* a three-server JetStream cluster, HN_FRONT_ENDS front-ends */
} hn_store_t;

#define HN_FRONT_ENDS  2
#define HN_STORE_TEXT  320

/* hn_world_init's answer when this machine cannot run the world's store (no
 * nats-server); the reason is in the world's `skip`. */
#define HN_SKIP        1

/* One broker front-end on the JetStream store. */
typedef struct hn_front_end {
    char      bind[128];         /* "tcp://127.0.0.1:*" until the first start */
    char      endpoint[128];     /* the real endpoint from its ready line */
    hn_proc_t proc;
} hn_front_end_t;

typedef struct hn_broker {
    char      db[HN_PATH_MAX];   /* the SQLite store ("" on JetStream) */
    char      bind[128];         /* "tcp://127.0.0.1:*" until the first start */
    char      endpoint[128];     /* what nodes are given: the broker's real endpoint from
                                    its ready line, or on JetStream every front-end's,
                                    comma-separated */
    char      key[HN_KEY_TEXT + 1];
    hn_proc_t proc;              /* the SQLite broker (not running on JetStream) */
    /* the JetStream store */
    char      store[HN_STORE_TEXT];     /* --store jetstream:URLS */
    char      key_file[HN_PATH_MAX];    /* the front-ends' shared keypair */
    size_t    nfronts;
    hn_front_end_t fronts[HN_FRONT_ENDS];
} hn_broker_t;

typedef struct hn_node {
    char      id[65];
    char      db[HN_PATH_MAX];
    char      key[HN_KEY_TEXT + 1];
    char      log[HN_PATH_MAX];  /* the daemon's log */
    hn_proc_t daemon;
} hn_node_t;

struct jh_nats;

typedef struct hn_world {
    char        dir[HN_PATH_MAX];
    hn_store_t  store;
    hn_broker_t broker;
    size_t      nnodes;
    hn_node_t   nodes[HN_NODES_MAX];
    hn_proc_t   extra[HN_NODES_MAX];   /* other processes a test started */
    size_t      nextra;
    bool        passed;
    struct jh_nats *nats;              /* the JetStream cluster (owned), or NULL */
    char        skip[256];             /* why hn_world_init answered HN_SKIP */
} hn_world_t;

/* The store $LIANGDI_TEST_STORE names ("sqlite", the default, or "jetstream"); -1 (and
 * a message) for anything else. */
int hn_test_store(hn_store_t *out);

/* Makes the temp dir and the broker on the store of $LIANGDI_TEST_STORE: on SQLite,
 * `liangdi-broker init` and the broker on tcp://127.0.0.1:* (its port read from the
 * ready line); on JetStream, the three NATS servers, `init` of the shared store and
 * both front-ends.  0, HN_SKIP (no nats-server here: w->skip says so), or -1
 * (printed). */
int hn_world_init(hn_world_t *w, const char *tag);

/* Ends a test that got this far: stops the daemons and the broker with SIGTERM and
 * checks that each exited 0 and that no log holds a sanitizer report.  If so, marks
 * the test passed (hn_world_fini then keeps the logs to itself) and returns true. */
bool hn_world_finish(hn_world_t *w);

/* Stops every process, prints the logs of a test that did not pass, removes the dir.
 * A second call does nothing. */
void hn_world_fini(hn_world_t *w);

/* hn_world_fini without the logs: for a test that skips from its body, as Criterion
 * does not run a suite's .fini after cr_skip_test. */
void hn_world_fini_quiet(hn_world_t *w);

/* Starts the broker again (same store, same endpoint), every front-end on JetStream,
 * and waits for each to be ready.  0 or -1. */
int hn_broker_start(hn_world_t *w);
/* kill -9 of the broker's process group; of every front-end's on JetStream. */
void hn_broker_kill(hn_world_t *w);
/* SIGTERM to the broker (every front-end), waiting for each to exit; 0 if each
 * exited 0, else -1 (printed). */
int hn_broker_stop(hn_world_t *w);

/* How many endpoints the nodes are given (1, or a front-end each on JetStream). */
size_t hn_broker_endpoints(const hn_world_t *w);
/* True if text names one of the broker's endpoints (a front-end's on JetStream). */
bool hn_names_broker(const hn_world_t *w, const char *text);

/* Runs `liangdi-broker ARGS... --db DB` (NULL-terminated args); on JetStream
 * `... --store jetstream:URLS --key-file KEY`, the registry every front-end reads. */
int hn_broker_cmd(hn_world_t *w, hn_result_t *r, ...);

/* `liangdi init --node ID --name NAME --broker EP --broker-key KEY`, and, if
 * `registered`, `liangdi-broker node add ID --key ITS_KEY`.  NULL on failure.  On
 * JetStream EP is every front-end's endpoint, the list starting with front-end
 * (node's index modulo HN_FRONT_ENDS). */
hn_node_t *hn_world_node(hn_world_t *w, const char *id, const char *name, bool registered);

/* The same, with the store in `file` (under the world's dir) instead of "<id>.db". */
hn_node_t *hn_world_node_file(hn_world_t *w, const char *id, const char *name,
                              const char *file, bool registered);

/* `liangdi-broker link add A B`; 0 or -1. */
int hn_link(hn_world_t *w, const char *a, const char *b);

/* Runs `liangdi ARGS... --db NODE_DB` (NULL-terminated), 60 s at most. */
int hn_node_cmd(hn_node_t *n, hn_result_t *r, ...);

/* `liangdi sync --timeout 20` on the node (a silence limit: a long sync may run for
 * minutes); returns its exit status, and prints its stderr when that is not 0. */
int hn_sync(hn_node_t *n);

/* The same, also reading "synced: P pushed, F fetched, ..." from its output into
 * *pushed and *fetched (-1 when not printed). */
int hn_sync_counts(hn_node_t *n, int64_t *pushed, int64_t *fetched);

/* Starts `liangdi daemon` on the node and waits for "ready, synced with"; 0 or -1. */
int hn_daemon_start(hn_world_t *w, hn_node_t *n, const char *interval);

/* Starts `liangdi ARGS... --db NODE_DB` in the background (log: <db>.<tag>.log); the
 * world keeps it (a finished one's slot of the same tag is reused).  NULL on failure. */
hn_proc_t *hn_node_spawn(hn_world_t *w, hn_node_t *n, const char *tag, ...);

/* The first record id a command printed (the first line of its stdout, trimmed)
 * into out; 0 or -1. */
int hn_printed_id(const hn_result_t *r, char *out, size_t outsz);

/* ---------------------------------------------------------- the branches ---- */

/* The two branches of the tests: node "home" (the Zhuyuan town committee, orgs
 * "zhuyuan" township and "longtan" village) and node "dongguan" (org "dgb", the
 * Dongguan mobile branch, created at home and kept by node dongguan), registered and
 * linked.  0 or -1. */
#define HN_HOME_ORG     "longtan"
#define HN_MOBILE_ORG   "dgb"
int hn_branches(hn_world_t *w, hn_node_t **home, hn_node_t **dongguan);

/* At `home`: a member of HN_HOME_ORG (gender "female"/"male") on a trip to
 * HN_MOBILE_ORG since `date`; the member's id into id[37].  0 or -1. */
int hn_mobile_member(hn_node_t *home, const char *name, const char *gender, const char *date,
                     char id[37]);

/* Writes `count` activity entries (study, ~100 bytes each, plus the length of `tag`,
 * which begins each note: at most 1,800 bytes) for `member` through the node's own
 * write path (nd_store_write) in one group: fast bulk data.  0 or -1. */
int hn_bulk_activities(hn_node_t *n, const char *member, size_t count, const char *tag);

/* --------------------------------------------------------------- stores ---- */

/* A numeric setting of a store ("cursor", "pushed_upto"); 0 if unset, -1 on failure. */
int64_t hn_setting_int(const char *db, const char *key);

/* A digest of every record table, the conflict log and the change log's keys: equal
 * digests mean the store's records did not change. */
uint64_t hn_store_digest(const char *db);

/* Runs a query returning one integer on a store opened read-only; -1 on failure. */
int64_t hn_query_int(const char *db, const char *sql);

/* One query returning an integer, kept prepared on a store opened read-only once: for
 * loops that watch a store change, where opening it for every look would take longer
 * than the writer's steps (under the sanitizers, several milliseconds).  Each read sees
 * the latest commit. */
typedef struct hn_watch hn_watch_t;

/* NULL on failure (said on stderr).  The caller closes it with hn_watch_close. */
hn_watch_t *hn_watch_open(const char *db, const char *sql);

/* The query's value now; -1 on failure. */
int64_t hn_watch_read(hn_watch_t *w);

void hn_watch_close(hn_watch_t **w);

/* How two stores compare over the records both hold. */
typedef struct hn_diff {
    size_t shared;           /* records (any kind) present in both */
    size_t differ;           /* of those, how many differ in some column */
    size_t only_a, only_b;   /* records present in one store only */
    char   first[1024];      /* the first difference, described */
} hn_diff_t;

/* Compares every record table of two stores: for each record id both hold, every
 * column (fields, tombstone, stamps, origin).  0, or -1 if a store cannot be read. */
int hn_compare_stores(const char *db_a, const char *db_b, hn_diff_t *d);

/* The pause between two looks of a polling loop (that has its own deadline). */
void hn_poll_pause(int ms);

/* Waits until `cond(ctx)` is true, polling every 10 ms; false at the deadline. */
bool hn_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

#endif
