/* bench_sync.c: sync throughput against its limits, measured in the same run: end to
 * end (node A's outbox -> broker -> node B applied; the median of three runs), a
 * 1,000,000-change bootstrap, and the broker's peak memory with 1,000,000 changes
 * queued for 1,000 nodes.
 *
 * Everything runs the real binaries (liangdi, liangdi-broker) on 127.0.0.1 with every
 * store at synchronous=FULL.  The limits it prints beside the results:
 *  - a raw libzmq relay: DEALER -> ROUTER -> DEALER, CURVE, 100-byte messages, no disk;
 *  - SQLite's batched insert rate of 100-byte rows with WAL and synchronous=FULL.
 * Where the time goes beyond them: a node applies each change with a field-level
 * merge (read the row, write it, log the change), several statements per change. 
 * Options scale it down for a quick look: --bootstrap N --e2e N --nodes N --queued N.
 * The binaries come from $LIANGDI_BIN / $LIANGDI_BROKER_BIN, else the build tree. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "change.h"
#include "harness.h"
#include "keys.h"
#include "procstat.h"
#include "store.h"
#include "text.h"

#define RECORD_BYTES   100
#define RELAY_MESSAGES 2000000
#define SQLITE_ROWS    1000000
#define SQLITE_BATCH   4096
#define E2E_RUNS       3         /* end-to-end runs; the median counts */

/* What the run measured against the three targets (issue figures). */
typedef struct bench_result {
    double boot_secs;    /* the bootstrap, scaled to 1,000,000 changes when scaled down */
    double e2e;          /* changes/s end to end */
    long   rss_kb;       /* the broker's peak with the backlog queued; -1 unknown */
} bench_result_t;

typedef struct bench_opts {
    size_t bootstrap;    /* changes a new node fetches in its first sync */
    size_t e2e;          /* changes timed from A's outbox to B's store */
    size_t nodes;        /* registered nodes for the memory test */
    size_t queued;       /* changes queued for them */
} bench_opts_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double seconds_since(int64_t t0)
{
    return (double)(hn_now_ms() - t0) / 1000.0;
}

/* The world being measured, stopped and removed if the bench dies. */
static hn_world_t *current_world;

static void die(const char *what)
{
    fprintf(stderr, "bench_sync: %s\n", what);
    if (current_world != NULL)
        hn_world_fini(current_world);
    exit(1);
}

/* ------------------------------------------------------------ the relay limit ---- */

typedef struct relay_ctx {
    void       *zctx;
    const char *endpoint;
    const char *server_public;   /* NULL: no CURVE */
    size_t      messages;
    int64_t     done_ms;
} relay_ctx_t;

static int curve_client(void *sock, const char *server_public)
{
    if (server_public == NULL)
        return 0;
    ld_keypair_t kp;
    ld_error_t err;
    if (ld_keys_generate(&kp, &err) != 0)
        return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, LD_KEY_TEXT + 1) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp.public_key, LD_KEY_TEXT + 1) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp.secret_key, LD_KEY_TEXT + 1) != 0)
        return -1;
    return 0;
}

static void *relay_receiver(void *arg)
{
    relay_ctx_t *rc = arg;
    void *sock = zmq_socket(rc->zctx, ZMQ_DEALER);
    int hwm = 100000;
    zmq_setsockopt(sock, ZMQ_ROUTING_ID, "B", 1);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (curve_client(sock, rc->server_public) != 0 || zmq_connect(sock, rc->endpoint) != 0)
        die("relay receiver setup");
    /* Say hello so that the relay knows the route. */
    zmq_send(sock, "hi", 2, 0);
    char buf[RECORD_BYTES + 16];
    for (size_t i = 0; i < rc->messages; i++) {
        if (zmq_recv(sock, buf, sizeof buf, 0) < 0)
            die("relay receiver recv");
    }
    __atomic_store_n(&rc->done_ms, hn_now_ms(), __ATOMIC_RELEASE);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(sock);
    return NULL;
}

static void *relay_sender(void *arg)
{
    relay_ctx_t *rc = arg;
    int zero = 0, hwm = 100000;
    void *sock = zmq_socket(rc->zctx, ZMQ_DEALER);
    zmq_setsockopt(sock, ZMQ_ROUTING_ID, "A", 1);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (curve_client(sock, rc->server_public) != 0 || zmq_connect(sock, rc->endpoint) != 0)
        die("relay sender setup");
    char record[RECORD_BYTES];
    memset(record, 'x', sizeof record);
    for (size_t i = 0; i < rc->messages; i++) {
        if (zmq_send(sock, record, sizeof record, 0) < 0)
            die("relay sender send");
    }
    /* Stay until everything is through: closing would drop what is queued. */
    while (__atomic_load_n(&rc->done_ms, __ATOMIC_ACQUIRE) == 0)
        hn_poll_pause(10);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(sock);
    return NULL;
}

/* Messages per second through a ROUTER relaying DEALER to DEALER (CURVE or plain). */
static double measure_relay(size_t messages, bool curve)
{
    ld_keypair_t server;
    ld_error_t err;
    if (ld_keys_generate(&server, &err) != 0)
        die("relay keys");
    void *zctx = zmq_ctx_new();
    void *router = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, zero = 0, hwm = 100000;
    if (curve) {
        zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, server.secret_key, LD_KEY_TEXT + 1);
    }
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Block at the high-water mark instead of dropping (a ROUTER's default). */
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (zmq_bind(router, "tcp://127.0.0.1:*") != 0)
        die("relay bind");
    char endpoint[128];
    size_t len = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len);

    relay_ctx_t rc = { .zctx = zctx, .endpoint = endpoint,
                       .server_public = curve ? server.public_key : NULL,
                       .messages = messages, .done_ms = 0 };
    pthread_t receiver, sender;
    if (pthread_create(&receiver, NULL, relay_receiver, &rc) != 0)
        die("relay thread");

    /* The receiver's hello: [id "B"] ["hi"] */
    char id[256], buf[RECORD_BYTES + 16];
    int idlen = zmq_recv(router, id, sizeof id, 0);
    zmq_recv(router, buf, sizeof buf, 0);
    if (idlen != 1 || id[0] != 'B')
        die("relay hello");

    int64_t t0 = hn_now_ms();
    if (pthread_create(&sender, NULL, relay_sender, &rc) != 0)
        die("relay thread");
    for (size_t relayed = 0; relayed < messages; relayed++) {
        if (zmq_recv(router, id, sizeof id, 0) < 0)
            die("relay recv");
        int n = zmq_recv(router, buf, sizeof buf, 0);
        if (n < 0 || zmq_send(router, "B", 1, ZMQ_SNDMORE) < 0 || zmq_send(router, buf, (size_t)n, 0) < 0)
            die("relay forward");
    }
    pthread_join(receiver, NULL);
    pthread_join(sender, NULL);
    double secs = (double)(rc.done_ms - t0) / 1000.0;
    zmq_close(router);
    zmq_ctx_term(zctx);
    return (double)messages / secs;
}

/* ------------------------------------------------------------ the SQLite limit ---- */

/* Rows per second: 100-byte rows appended to a rowid table (the cheapest insert there
 * is), WAL, synchronous=FULL, SQLITE_BATCH rows a commit. */
static double measure_sqlite(const char *dir, size_t rows)
{
    char path[HN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sqlite-limit.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite open");
    sqlite3_exec(db, "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO t (seq, body) VALUES (?1, ?2)", -1, &st, NULL) != SQLITE_OK)
        die("sqlite prepare");
    char body[RECORD_BYTES];
    memset(body, 'x', sizeof body);
    int64_t t0 = hn_now_ms();
    for (size_t i = 0; i < rows; i += SQLITE_BATCH) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (size_t j = i; j < i + SQLITE_BATCH && j < rows; j++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)j + 1);
            sqlite3_bind_blob(st, 2, body, sizeof body, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                die("sqlite insert");
            sqlite3_reset(st);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die("sqlite commit");
    }
    double secs = seconds_since(t0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double)rows / secs;
}

/* ------------------------------------------------------------- the real thing ---- */

/* Writes n activities of ~100 bytes for `member` through A's write path. */
static double write_outbox(hn_node_t *a, const char *member, size_t n, const char *tag)
{
    int64_t t0 = hn_now_ms();
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < 100000 ? n - done : 100000;
        if (hn_bulk_activities(a, member, chunk, tag) != 0)
            die("writing the outbox");
        done += chunk;
    }
    return (double)n / seconds_since(t0);
}

static int64_t applied_from(const hn_node_t *n, const char *origin)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"changelog\" WHERE \"origin\" = '%s'", origin);
    return hn_query_int(n->db, sql);
}

/* The wait for B is a lookup of A's last change by its key, cheap enough to poll
 * without taking CPU from the processes measured; the full count is checked after. */
typedef struct last_wait {
    const hn_node_t *node;
    int64_t          seq;
} last_wait_t;

static bool reached(void *ctx)
{
    const last_wait_t *w = ctx;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"changelog\" WHERE \"origin\" = 'a' AND "
             "\"seq\" = %" PRId64, w->seq);
    return hn_query_int(w->node->db, sql) == 1;
}

static void bootstrap_and_e2e(const bench_opts_t *o, double relay, double sqlite_rate,
                              bench_result_t *res)
{
    hn_world_t w;
    current_world = &w;
    if (hn_world_init(&w, "bench") != 0)
        die("starting the broker");
    hn_node_t *a = hn_world_node(&w, "a", "竹园镇党委", true);
    hn_node_t *b = hn_world_node(&w, "b", "东莞支部", true);
    if (a == NULL || b == NULL || hn_link(&w, "a", "b") != 0)
        die("setting up the nodes");
    hn_result_t r;
    const char *orgs[][9] = {
        { "org", "add", "town", "--name", "竹园镇党委", "--kind", "township", NULL, NULL },
        { "org", "add", "village", "--name", "龙潭村支部", "--kind", "village", NULL, NULL },
        { "org", "add", "mobile", "--name", "东莞支部", "--kind", "mobile", "--node", "b" },
    };
    for (size_t i = 0; i < 3; i++) {
        if (hn_node_cmd(a, &r, orgs[i][0], orgs[i][1], orgs[i][2], orgs[i][3], orgs[i][4],
                        orgs[i][5], orgs[i][6], orgs[i][7], orgs[i][8], NULL) != 0 || r.status != 0)
            die("adding orgs");
        hn_result_free(&r);
    }
    char member[37];
    if (hn_node_cmd(a, &r, "member", "add", "--name", "张三", "--org", "village", NULL) != 0
        || hn_printed_id(&r, member, sizeof member) != 0)
        die("adding a member");
    hn_result_free(&r);
    if (hn_node_cmd(a, &r, "trip", "start", member, "--to", "mobile", "--date", "2010-03-01", NULL) != 0
        || r.status != 0)
        die("starting a trip");
    hn_result_free(&r);

    /* Bootstrap: B has never synced; A's outbox holds the backlog. */
    double write_rate = write_outbox(a, member, o->bootstrap, "bootstrap");
    printf("outbox writes (nd_store_write, grouped): %.0f changes/s\n", write_rate);
    int64_t pushed = 0, fetched = 0;
    int64_t t0 = hn_now_ms();
    if (hn_sync_counts(a, &pushed, &fetched) != 0)
        die("A's push");
    double push_secs = seconds_since(t0);
    printf("push of %" PRId64 " changes, A -> broker: %.1f s, %.0f changes/s\n", pushed, push_secs,
           (double)pushed / push_secs);
    t0 = hn_now_ms();
    if (hn_sync_counts(b, &pushed, &fetched) != 0)
        die("B's bootstrap");
    double boot_secs = seconds_since(t0);
    res->boot_secs = boot_secs * 1000000.0 / (double)o->bootstrap;
    printf("bootstrap of %" PRId64 " changes, broker -> new node B: %.1f s, %.0f changes/s "
           "(target < 30 s for 1,000,000: %s)\n", fetched, boot_secs, (double)fetched / boot_secs,
           o->bootstrap >= 1000000 ? (boot_secs < 30.0 ? "met" : "MISSED") : "scaled down");

    /* End to end: A's outbox to B's store, both online; E2E_RUNS times (B's daemon
     * stays up), the median of them counting. */
    if (hn_daemon_start(&w, b, "1h") != 0)
        die("B's daemon");
    double runs[E2E_RUNS];
    for (int run = 0; run < E2E_RUNS; run++) {
        write_outbox(a, member, o->e2e, "e2e");
        int64_t base = applied_from(b, "a");
        last_wait_t lw = { b, hn_query_int(a->db, "SELECT max(\"seq\") FROM \"changelog\" "
                                                "WHERE \"origin\" = 'a'") };
        t0 = hn_now_ms();
        hn_proc_t *push = hn_node_spawn(&w, a, "sync", "sync", NULL);
        if (push == NULL)
            die("A's sync");
        if (!hn_wait_until(reached, &lw, 600000))
            die("B never got A's last change");
        double e2e_secs = seconds_since(t0);
        runs[run] = (double)o->e2e / e2e_secs;
        if (hn_proc_wait(push, 60000) != 0)
            die("A's sync failed");
        if (applied_from(b, "a") != base + (int64_t)o->e2e)
            die("B's last change arrived but not every change before it");
        printf("end to end, A outbox -> broker -> B applied, run %d of %d: %zu changes in "
               "%.2f s = %.0f changes/s\n", run + 1, E2E_RUNS, o->e2e, e2e_secs, runs[run]);
    }
    qsort(runs, E2E_RUNS, sizeof runs[0], cmp_double);
    double e2e = runs[E2E_RUNS / 2];
    res->e2e = e2e;
    printf("end to end, the median of %d: %.0f changes/s\n", E2E_RUNS, e2e);
    printf("  limits measured in this run: libzmq relay %.0f msg/s (%.1f%% of it), "
           "SQLite batched inserts %.0f rows/s (%.1f%% of it); target 100,000 changes/s: %s\n",
           relay, 100.0 * e2e / relay, sqlite_rate, 100.0 * e2e / sqlite_rate,
           e2e >= 100000.0 ? "met" : "MISSED");
    hn_world_finish(&w);
    hn_world_fini(&w);
    current_world = NULL;
}

/* ------------------------------------------------------------ broker memory ---- */

static void broker_memory(const bench_opts_t *o, bench_result_t *res)
{
    hn_world_t w;
    current_world = &w;
    if (hn_world_init(&w, "bench-rss") != 0)
        die("starting the broker");
    hn_node_t *a = hn_world_node(&w, "a", "竹园镇党委", true);
    if (a == NULL)
        die("node a");
    hn_result_t r;
    if (hn_node_cmd(a, &r, "org", "add", "village", "--name", "龙潭村支部", "--kind", "village",
                    NULL) != 0 || r.status != 0)
        die("village");
    hn_result_free(&r);

    /* The nodes: registered and linked with A; one mobile org and one member each. */
    int64_t t0 = hn_now_ms();
    ld_error_t err;
    nd_store_t *store = nd_store_open(a->db, false, &err);
    if (store == NULL || nd_store_begin(store, &err) != 0)
        die(err.msg);
    char (*members)[LD_RECORD_ID_MAX + 1] = calloc(o->nodes, sizeof *members);
    if (members == NULL)
        die("out of memory");
    for (size_t i = 0; i < o->nodes; i++) {
        char id[32], org[32], name[64];
        snprintf(id, sizeof id, "n%04zu", i);
        snprintf(org, sizeof org, "org%04zu", i);
        snprintf(name, sizeof name, "流动党支部%zu", i);
        ld_keypair_t kp;
        if (ld_keys_generate(&kp, &err) != 0)
            die(err.msg);
        if (hn_broker_cmd(&w, &r, "node", "add", id, "--key", kp.public_key, NULL) != 0 || r.status != 0)
            die("node add");
        hn_result_free(&r);
        if (hn_link(&w, "a", id) != 0)
            die("link add");

        ld_change_t c;
        ld_change_init(&c);
        c.kind = LD_KIND_ORG;
        snprintf(c.record_id, sizeof c.record_id, "%s", org);
        if (ld_change_set(&c, "name", name, &err) != 0 || ld_change_set(&c, "kind", "mobile", &err) != 0
            || ld_change_set(&c, "node", id, &err) != 0 || nd_store_write(store, &c, &err) != 0)
            die(err.msg);
        ld_change_clear(&c);
        c.kind = LD_KIND_MEMBER;
        if (ld_change_set(&c, "name", "流动党员", &err) != 0
            || ld_change_set(&c, "org", "village", &err) != 0 || nd_store_write(store, &c, &err) != 0)
            die(err.msg);
        snprintf(members[i], sizeof members[i], "%s", c.record_id);
        ld_change_clear(&c);
        c.kind = LD_KIND_TRIP;
        if (ld_change_set(&c, "member", members[i], &err) != 0 || ld_change_set(&c, "to", org, &err) != 0
            || ld_change_set(&c, "started", "2010-03-01", &err) != 0
            || ld_change_set(&c, "status", "registered", &err) != 0 || nd_store_write(store, &c, &err) != 0)
            die(err.msg);
        ld_change_clear(&c);
    }
    if (nd_store_commit(store, &err) != 0)
        die(err.msg);
    nd_store_destroy(&store);
    printf("%zu nodes registered and linked in %.1f s\n", o->nodes, seconds_since(t0));

    /* The backlog: o->queued activities spread over the members, pushed by A. */
    hn_node_t view = *a;
    size_t per = o->queued / o->nodes;
    for (size_t i = 0; i < o->nodes; i++) {
        if (hn_bulk_activities(&view, members[i], per, "queued") != 0)
            die("writing the backlog");
    }
    long before = hn_status_kib(w.broker.proc.pid, "VmHWM");
    t0 = hn_now_ms();
    int64_t pushed = 0, fetched = 0;
    if (hn_sync_counts(a, &pushed, &fetched) != 0)
        die("A's push");
    double secs = seconds_since(t0);
    long after = hn_status_kib(w.broker.proc.pid, "VmHWM");
    res->rss_kb = after;
    printf("broker with %" PRId64 " changes queued for %zu nodes (pushed in %.1f s): peak RSS "
           "(VmHWM) %.1f MB (%.1f MB before the push); target < 64 MB: %s\n", pushed, o->nodes, secs,
           (double)after / 1024.0, (double)before / 1024.0,
           after >= 0 && after < 64 * 1024 ? "met" : "MISSED");
    free(members);
    hn_world_finish(&w);
    hn_world_fini(&w);
    current_world = NULL;
}

static size_t size_arg(const char *text)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || v == 0)
        die("a count must be a positive number");
    return (size_t)v;
}

int main(int argc, char **argv)
{
    bench_opts_t o = { .bootstrap = 1000000, .e2e = 200000, .nodes = 1000, .queued = 1000000 };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bootstrap") == 0)
            o.bootstrap = size_arg(argv[i + 1]);
        else if (strcmp(argv[i], "--e2e") == 0)
            o.e2e = size_arg(argv[i + 1]);
        else if (strcmp(argv[i], "--nodes") == 0)
            o.nodes = size_arg(argv[i + 1]);
        else if (strcmp(argv[i], "--queued") == 0)
            o.queued = size_arg(argv[i + 1]);
        else
            die("usage: bench_sync [--bootstrap N] [--e2e N] [--nodes N] [--queued N]");
    }
#ifdef LIANGDI_BIN_PATH
    setenv("LIANGDI_BIN", LIANGDI_BIN_PATH, 0);
    setenv("LIANGDI_BROKER_BIN", LIANGDI_BROKER_BIN_PATH, 0);
#endif
    char dir[HN_PATH_MAX];
    if (hn_tmpdir_new("bench-limits", dir) != 0)
        die("temp dir");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bench_sync: %zu-change bootstrap, %zu changes end to end, %zu changes queued for "
           "%zu nodes; records of ~%d bytes, synchronous=FULL everywhere\n",
           o.bootstrap, o.e2e, o.queued, o.nodes, RECORD_BYTES);
    double plain = measure_relay(RELAY_MESSAGES, false);
    double relay = measure_relay(RELAY_MESSAGES, true);
    printf("limit: libzmq DEALER -> ROUTER -> DEALER relay (tcp loopback): %.0f msg/s plain, "
           "%.0f msg/s with CURVE (what liangdi uses)\n", plain, relay);
    double sqlite_rate = measure_sqlite(dir, SQLITE_ROWS);
    printf("limit: SQLite batched inserts (WAL, synchronous=FULL, %d a commit): %.0f rows/s\n",
           SQLITE_BATCH, sqlite_rate);
    hn_tmpdir_remove(dir);

    bench_result_t res = { 0 };
    bootstrap_and_e2e(&o, relay, sqlite_rate, &res);
    broker_memory(&o, &res);
    bool met = res.e2e >= 100000.0 && res.boot_secs < 30.0 && res.rss_kb >= 0
               && res.rss_kb < 64 * 1024;
    /* The targets are for the full sizes; a scaled-down run only shows figures. */
    bool scaled = o.bootstrap < 1000000 || o.queued < 1000000 || o.nodes < 1000;
    printf("summary: bench_sync: end to end %.0f changes/s (target 100000, %.2f of the CURVE "
           "relay), bootstrap %.1f s per 1,000,000 changes (target 30 s), broker peak RSS "
           "%.1f MB with the backlog queued (target 64 MB): %s\n", res.e2e, res.e2e / relay,
           res.boot_secs, (double)res.rss_kb / 1024.0,
           scaled ? "scaled down, not judged" : met ? "met" : "NOT met");
    return met || scaled ? 0 : 1;
}
