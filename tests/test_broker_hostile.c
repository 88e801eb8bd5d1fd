/* test_broker_hostile.c: the real liangdi-broker under hostile input: garbage from an
 * authenticated peer, oversized and many-part messages, unauthenticated TCP clients,
 * signals; afterwards it still serves and its store passes PRAGMA integrity_check. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "keys.h"
#include "schema.h"

/* ------------------------------------------------------------ the harness -- */

typedef struct broker {
    char   dir[256];
    char   db[320];
    char   conf[320];
    char   log[512];             /* outside dir: kept until the runner has seen the result */
    char   endpoint[256];
    char   public_key[LD_KEY_TEXT + 1];
    pid_t  pid;
} broker_t;

static broker_t bk;
static void *zctx;
static ld_keypair_t key_home, key_dongguan, key_shenzhen, key_stranger;

/* Sockets still open, closed by teardown when a failed assertion skipped peer_close
 * (zmq_ctx_term waits for every socket). */
static void *open_socks[64];

static void track(void *sock, bool open)
{
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++) {
        if (open && !open_socks[i]) {
            open_socks[i] = sock;
            return;
        }
        if (!open && open_socks[i] == sock) {
            open_socks[i] = NULL;
            return;
        }
    }
    cr_assert_not(open, "too many sockets open at once");
}

/* Deadlines stretch under valgrind (meson test --setup valgrind). */
static int64_t scaled(int64_t ms)
{
    return getenv("LIANGDI_UNDER_VALGRIND") ? ms * 20 : ms;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

static const char *tmpbase(void)
{
    const char *base = getenv("TMPDIR");
    return base && *base ? base : "/tmp";
}

static const char *broker_bin(void)
{
    const char *bin = getenv("LIANGDI_BROKER_BIN");
    cr_assert(bin && *bin, "LIANGDI_BROKER_BIN is not set (run through meson test)");
    return bin;
}

/* The whole broker log, malloc'd (caller frees); "" if there is none. */
static char *read_file(const char *path, size_t from)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (f && fseek(f, (long)from, SEEK_SET) == 0) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (len + n + 1 > cap) {
                cap = (len + n + 1) * 2;
                char *grown = realloc(text, cap);
                cr_assert_not_null(grown);
                text = grown;
            }
            memcpy(text + len, chunk, n);
            len += n;
        }
    }
    if (f)
        fclose(f);
    if (!text)
        return strdup("");
    text[len] = '\0';
    return text;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Runs the broker CLI with `args` (NULL-terminated, after the program name), stdout
 * into out[outsz], stderr appended to the log.  Returns its exit code. */
static int cli(char *out, size_t outsz, const char *const *args)
{
    const char *argv[16] = { "liangdi-broker" };
    size_t n = 1;
    for (; args[n - 1]; n++) {
        cr_assert_lt(n, 15);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int logfd = open(bk.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(pipefd[0]);
        execv(broker_bin(), (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    char sink[256];
    for (;;) {
        char *dst = out && len + 1 < outsz ? out + len : sink;
        size_t room = out && len + 1 < outsz ? outsz - len - 1 : sizeof sink;
        ssize_t got = read(pipefd[0], dst, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (dst != sink)
            len += (size_t)got;
    }
    close(pipefd[0]);
    if (out && outsz)
        out[len] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define CLI(out, outsz, ...) cli((out), (outsz), (const char *const[]){ __VA_ARGS__, NULL })

/* Starts `liangdi-broker run` in its own process group and waits for its ready line. */
static void broker_start(void)
{
    off_t from = file_size(bk.log);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setpgid(0, 0);
        int logfd = open(bk.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        execl(broker_bin(), "liangdi-broker", "run", "--db", bk.db, "--config", bk.conf,
              "--bind", "tcp://127.0.0.1:*", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    bk.pid = pid;
    int64_t deadline = now_ms() + scaled(15000);
    for (;;) {
        char *text = read_file(bk.log, (size_t)from);
        const char *ready = strstr(text, "ready, listening on ");
        if (ready) {
            ready += strlen("ready, listening on ");
            size_t n = strcspn(ready, " \r\n");
            cr_assert_lt(n, sizeof bk.endpoint);
            memcpy(bk.endpoint, ready, n);
            bk.endpoint[n] = '\0';
            free(text);
            return;
        }
        free(text);
        int status;
        cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the broker exited before it was ready");
        cr_assert_lt(now_ms(), deadline, "no ready line within the deadline");
        nap();
    }
}

/* Sends `sig` to the broker's process group and waits for it to exit; returns its
 * exit status (or -1 if it did not exit in time). */
static int broker_stop(int sig)
{
    int status = 0;
    if (bk.pid <= 0)
        return -1;
    kill(-bk.pid, sig);
    int64_t deadline = now_ms() + scaled(10000);
    for (;;) {
        pid_t got = waitpid(bk.pid, &status, WNOHANG);
        if (got == bk.pid) {
            bk.pid = 0;
            return status;
        }
        if (now_ms() > deadline)
            return -1;
        nap();
    }
}

/* Ends a test: SIGTERM, and the broker must exit 0 (a sanitizer report at exit, or a
 * leak, would make it fail; the report is in the log printed on failure). */
static void assert_clean_stop(void)
{
    if (bk.pid <= 0)
        return;
    int status = broker_stop(SIGTERM);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "on SIGTERM the broker exits 0 (status 0x%x)", (unsigned)status);
}

static void write_conf(const char *extra)
{
    FILE *f = fopen(bk.conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "[broker]\nlog_level = debug\n%s", extra ? extra : "");
    fclose(f);
}

static void setup(void)
{
    ld_error_t err;
    snprintf(bk.dir, sizeof bk.dir, "%s/test_broker.XXXXXX", tmpbase());
    cr_assert_not_null(mkdtemp(bk.dir));
    snprintf(bk.db, sizeof bk.db, "%s/broker.db", bk.dir);
    snprintf(bk.conf, sizeof bk.conf, "%s/broker.conf", bk.dir);
    snprintf(bk.log, sizeof bk.log, "%s/liangdi-broker-test.%s.%d.log", tmpbase(),
             criterion_current_test->name, (int)getppid());
    unlink(bk.log);
    write_conf(NULL);
    char out[256];
    cr_assert_eq(CLI(out, sizeof out, "init", "--db", bk.db), 0);
    cr_assert_eq(strlen(out), LD_KEY_TEXT + 1, "init prints the public key: %s", out);
    memcpy(bk.public_key, out, LD_KEY_TEXT);
    bk.public_key[LD_KEY_TEXT] = '\0';
    cr_assert(ld_key_valid(bk.public_key));

    cr_assert_eq(ld_keys_generate(&key_home, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_dongguan, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_shenzhen, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_stranger, &err), 0);
    cr_assert_eq(CLI(NULL, 0, "node", "add", "home", "--key", key_home.public_key,
                     "--name", "竹园镇党委", "--db", bk.db), 0);
    cr_assert_eq(CLI(NULL, 0, "--db", bk.db, "node", "add", "dongguan", "--key",
                     key_dongguan.public_key, "--name", "东莞流动党支部"), 0);
    cr_assert_eq(CLI(NULL, 0, "node", "add", "shenzhen", "--name", "深圳流动党支部", "--key",
                     key_shenzhen.public_key, "--db", bk.db), 0);
    cr_assert_eq(CLI(NULL, 0, "link", "add", "home", "dongguan", "--db", bk.db), 0);
    zctx = zmq_ctx_new();
    cr_assert_not_null(zctx);
}

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void)
{
    if (bk.pid > 0 && broker_stop(SIGTERM) < 0) {
        kill(-bk.pid, SIGKILL);
        waitpid(bk.pid, NULL, 0);
        bk.pid = 0;
    }
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++) {
        if (open_socks[i])
            zmq_close(open_socks[i]);
        open_socks[i] = NULL;
    }
    if (zctx) {
        zmq_ctx_term(zctx);
        zctx = NULL;
    }
    rm_dir(bk.dir);
}

/* In the runner: print the broker's log for a test that failed, then remove it. */
ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
    char path[512];
    snprintf(path, sizeof path, "%s/liangdi-broker-test.%s.%d.log", tmpbase(),
             stats->test->name, (int)getpid());
    if (stats->test_status != CR_STATUS_PASSED || stats->crashed || stats->timed_out) {
        char *text = read_file(path, 0);
        fprintf(stderr, "---- liangdi-broker log for %s ----\n%s---- end of log ----\n",
                stats->test->name, text);
        free(text);
    }
    unlink(path);
}

/* ---------------------------------------------------------- a node, raw -- */

typedef struct peer {
    void *sock;
    void *monitor;
} peer_t;

static peer_t peer_open(const ld_keypair_t *kp)
{
    peer_t p = { 0 };
    int linger = 0;
    p.sock = zmq_socket(zctx, ZMQ_DEALER);
    cr_assert_not_null(p.sock);
    track(p.sock, true);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_LINGER, &linger, sizeof linger), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_SERVERKEY, bk.public_key, LD_KEY_TEXT), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_PUBLICKEY, kp->public_key, LD_KEY_TEXT), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_SECRETKEY, kp->secret_key, LD_KEY_TEXT), 0);
    return p;
}

static void peer_connect(peer_t *p)
{
    cr_assert_eq(zmq_connect(p->sock, bk.endpoint), 0, "connect %s", bk.endpoint);
}

static void peer_close(peer_t *p)
{
    if (p->monitor) {
        zmq_socket_monitor(p->sock, NULL, 0);
        track(p->monitor, false);
        zmq_close(p->monitor);
    }
    if (p->sock) {
        track(p->sock, false);
        zmq_close(p->sock);
    }
    memset(p, 0, sizeof *p);
}

static void send_raw(peer_t *p, const void *header, size_t hlen, const void *body, size_t blen)
{
    cr_assert_eq(zmq_send(p->sock, header, hlen, ZMQ_SNDMORE), (int)hlen);
    cr_assert_eq(zmq_send(p->sock, body, blen, 0), (int)blen);
}

static void send_msg(peer_t *p, const ld_msg_t *m)
{
    uint8_t header[LD_HEADER_SIZE], *body = NULL;
    size_t len = 0;
    ld_error_t err;
    ld_frame_header(m->type, header);
    cr_assert_eq(ld_msg_encode(m, &body, &len, &err), 0, "%s", err.msg);
    send_raw(p, header, sizeof header, body, len);
    free(body);
}

/* Waits up to timeout_ms for one message and decodes it into m.  Returns its type,
 * or LD_MSG_NONE when nothing came. */
static ld_msg_type_t recv_msg(peer_t *p, int timeout_ms, ld_msg_t *m)
{
    zmq_pollitem_t item = { .socket = p->sock, .events = ZMQ_POLLIN };
    int64_t deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return LD_MSG_NONE;
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        cr_assert_geq(rc, 0);
        if (rc > 0)
            break;
    }
    zmq_msg_t header, body;
    int more = 0;
    size_t more_len = sizeof more;
    zmq_msg_init(&header);
    zmq_msg_init(&body);
    cr_assert_geq(zmq_msg_recv(&header, p->sock, 0), 0);
    cr_assert_eq(zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &more_len), 0);
    cr_assert(more, "the broker sends a header frame and a body frame");
    cr_assert_geq(zmq_msg_recv(&body, p->sock, 0), 0);
    cr_assert_eq(zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &more_len), 0);
    cr_assert_not(more, "no third frame");
    ld_msg_type_t type = LD_MSG_NONE;
    unsigned version = 0;
    ld_error_t err;
    cr_assert_eq(ld_frame_parse(zmq_msg_data(&header), zmq_msg_size(&header), &type, &version,
                                &err), 0, "%s", err.msg);
    cr_assert_eq(ld_msg_decode(type, zmq_msg_data(&body), zmq_msg_size(&body), m, &err), 0,
                 "%s", err.msg);
    zmq_msg_close(&header);
    zmq_msg_close(&body);
    return type;
}

/* Receives the next message, which must be of `type` within the default deadline. */
static void expect(peer_t *p, ld_msg_type_t type, ld_msg_t *m)
{
    ld_msg_type_t got = recv_msg(p, 5000, m);
    if (got == LD_MSG_ERROR && type != LD_MSG_ERROR)
        cr_assert_fail("expected %s, got error %d: %s", ld_msg_type_name(type),
                       (int)m->u.error.code, m->u.error.message);
    cr_assert_eq(got, type, "expected %s, got %s", ld_msg_type_name(type),
                 got == LD_MSG_NONE ? "nothing" : ld_msg_type_name(got));
}

static void expect_error(peer_t *p, ld_error_code_t code, ld_msg_t *m)
{
    expect(p, LD_MSG_ERROR, m);
    cr_assert_eq(m->u.error.code, code, "error code %d, expected %d: %s",
                 (int)m->u.error.code, (int)code, m->u.error.message);
}

static void send_hello(peer_t *p, const char *node_id)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_HELLO);
    m.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    m.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "%s", node_id);
    snprintf(m.u.hello.software, sizeof m.u.hello.software, "test_broker_protocol");
    send_msg(p, &m);
    ld_msg_clear(&m);
}

/* A connected node that has said Hello; *welcome (may be NULL) gets the Welcome. */
static peer_t node_open(const char *id, const ld_keypair_t *kp, ld_msg_t *welcome)
{
    ld_msg_t m;
    peer_t p = peer_open(kp);
    peer_connect(&p);
    send_hello(&p, id);
    expect(&p, LD_MSG_WELCOME, &m);
    cr_assert_str_eq(m.u.welcome.node_id, id);
    if (welcome)
        *welcome = m;
    else
        ld_msg_clear(&m);
    return p;
}

/* An org change by `origin` with seq, addressed to the given nodes. */
static void make_change(ld_change_t *c, const char *origin, uint64_t seq,
                        const char *const *audience, size_t naudience)
{
    ld_error_t err;
    ld_change_init(c);
    c->kind = LD_KIND_ORG;
    snprintf(c->record_id, sizeof c->record_id, "org-%s-%llu", origin, (unsigned long long)seq);
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    c->seq = seq;
    c->hlc = ld_hlc_make(ld_hlc_wall_now(), 0);
    cr_assert_eq(ld_change_set(c, "name", "竹园镇龙潭村党支部", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(c, "kind", "village", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(c, "node", origin, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < naudience; i++)
        cr_assert_eq(ld_change_add_audience(c, audience[i], &err), 0, "%s", err.msg);
}

static const char *const aud_home_dongguan[] = { "home", "dongguan" };

/* A Push of seqs first..last by `origin` to `audience`; the caller clears it. */
static void make_push(ld_msg_t *m, const char *origin, uint64_t first, uint64_t last,
                      const char *const *audience, size_t naudience)
{
    ld_msg_init(m, LD_MSG_PUSH);
    m->u.push.n = (size_t)(last - first + 1);
    m->u.push.changes = calloc(m->u.push.n, sizeof *m->u.push.changes);
    cr_assert_not_null(m->u.push.changes);
    for (size_t i = 0; i < m->u.push.n; i++)
        make_change(&m->u.push.changes[i], origin, first + i, audience, naudience);
}

/* Pushes and expects a PushAck up to `upto`. */
static void push_ok(peer_t *p, const char *origin, uint64_t first, uint64_t last,
                    uint64_t upto)
{
    ld_msg_t m, ack;
    make_push(&m, origin, first, last, aud_home_dongguan, 2);
    send_msg(p, &m);
    ld_msg_clear(&m);
    expect(p, LD_MSG_PUSH_ACK, &ack);
    cr_assert_eq(ack.u.push_ack.upto, upto);
    ld_msg_clear(&ack);
}

static void send_fetch(peer_t *p, uint64_t cursor, uint32_t credit)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = cursor;
    m.u.fetch.credit = credit;
    send_msg(p, &m);
    ld_msg_clear(&m);
}

/* The mailbox depth and own high-water mark a fresh Hello reports for `id`. */
static void welcome_of(const char *id, const ld_keypair_t *kp, uint64_t *depth,
                       uint64_t *pushed_upto)
{
    ld_msg_t w;
    peer_t p = node_open(id, kp, &w);
    if (depth)
        *depth = w.u.welcome.mailbox_depth;
    if (pushed_upto)
        *pushed_upto = w.u.welcome.pushed_upto;
    ld_msg_clear(&w);
    peer_close(&p);
}

static uint64_t depth_of(const char *id, const ld_keypair_t *kp)
{
    uint64_t depth = 0;
    welcome_of(id, kp, &depth, NULL);
    return depth;
}


/* ------------------------------------------------------- hostile helpers -- */

/* A deterministic byte stream, so that a failure can be replayed. */
static uint32_t rng_state = 20100512u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void random_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)rng();
}

/* The store the running broker uses passes SQLite's own check. */
static void assert_store_intact(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(bk.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The broker is alive and a well-behaved node gets its whole round served: Hello,
 * Push (acked), and the other side's Fetch sees it. */
static void assert_still_serves(void)
{
    int status = 0;
    ld_msg_t w, b;
    cr_assert_eq(waitpid(bk.pid, &status, WNOHANG), 0, "the broker is still running");
    peer_t home = node_open("home", &key_home, &w);
    uint64_t next = w.u.welcome.pushed_upto + 1;
    ld_msg_clear(&w);
    push_ok(&home, "home", next, next, next);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    uint64_t cursor = 0, last_seq = 0, remaining = 0;
    do {
        send_fetch(&dg, cursor, LD_BATCH_MAX);
        expect(&dg, LD_MSG_BATCH, &b);
        if (b.u.batch.n > 0) {
            cursor = b.u.batch.positions[b.u.batch.n - 1];
            last_seq = b.u.batch.changes[b.u.batch.n - 1].seq;
        }
        remaining = b.u.batch.remaining;
        ld_msg_clear(&b);
    } while (remaining > 0);
    cr_assert_eq(last_seq, next, "the last change in dongguan's mailbox is the one just pushed");
    peer_close(&dg);
    peer_close(&home);
    assert_store_intact();
}

static int port_of(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    return atoi(colon + 1);
}

/* A plain TCP connection to the broker's port, no ZeroMQ, no CURVE. */
static int tcp_open(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(bk.endpoint)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
    return fd;
}

TestSuite(broker_hostile, .init = setup, .fini = teardown, .timeout = 180);

/* --------------------------------------------------------------- tests -- */

Test(broker_hostile, random_frames_from_an_authenticated_peer_get_bad_message_and_nothing_else)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    for (int i = 0; i < 200; i++) {
        uint8_t frames[3][64];
        size_t nframes = 1 + rng() % 3, len[3];
        for (size_t f = 0; f < nframes; f++) {
            len[f] = rng() % sizeof frames[f];
            random_bytes(frames[f], len[f]);
        }
        if (i % 2 == 0 && nframes >= 2) {
            /* half of them with a valid header, so that the body parser is what refuses */
            ld_frame_header((ld_msg_type_t)(LD_MSG_HELLO + (rng() % 4) * 2), frames[0]);
            len[0] = LD_HEADER_SIZE;
            if (frames[1][0] == 0x08 || len[1] == 0) {  /* keep the body from being valid */
                frames[1][0] = 0xff;
                len[1] = len[1] ? len[1] : 1;
            }
        }
        for (size_t f = 0; f < nframes; f++)
            cr_assert_eq(zmq_send(p.sock, frames[f], len[f], f + 1 < nframes ? ZMQ_SNDMORE : 0),
                         (int)len[f]);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        ld_msg_clear(&e);
    }
    cr_assert_eq(recv_msg(&p, 200, &e), LD_MSG_NONE, "one refusal per message");
    peer_close(&p);
    assert_still_serves();
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "bad header"), "each refusal is logged");
    free(log);
    assert_clean_stop();
}

Test(broker_hostile, truncated_protobufs_are_refused_and_store_nothing)
{
    ld_msg_t push, e;
    ld_error_t err;
    uint8_t header[LD_HEADER_SIZE], *body = NULL;
    size_t len = 0;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, 3, aud_home_dongguan, 2);
    cr_assert_eq(ld_msg_encode(&push, &body, &len, &err), 0, "%s", err.msg);
    ld_msg_clear(&push);
    ld_frame_header(LD_MSG_PUSH, header);
    const size_t cuts[] = { 1, 2, 5, 10, 40 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        send_raw(&p, header, sizeof header, body, len - cuts[i]);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        cr_assert_not_null(strstr(e.u.error.message, "push"), "%s", e.u.error.message);
        ld_msg_clear(&e);
    }
    free(body);
    ld_msg_t hello;
    ld_msg_init(&hello, LD_MSG_HELLO);
    hello.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    hello.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(hello.u.hello.node_id, sizeof hello.u.hello.node_id, "home");
    snprintf(hello.u.hello.software, sizeof hello.u.hello.software, "truncated");
    cr_assert_eq(ld_msg_encode(&hello, &body, &len, &err), 0);
    ld_msg_clear(&hello);
    ld_frame_header(LD_MSG_HELLO, header);
    send_raw(&p, header, sizeof header, body, len - 1);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    ld_msg_clear(&e);
    free(body);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, an_oversized_frame_drops_that_connection_only)
{
    write_conf("max_message = 1048576\n");
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    size_t big = 2u * 1024u * 1024u;
    uint8_t *body = calloc(1, big);
    cr_assert_not_null(body);
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_PUSH, header);
    send_raw(&p, header, sizeof header, body, big);
    free(body);
    ld_msg_t m;
    cr_assert_eq(recv_msg(&p, 1000, &m), LD_MSG_NONE, "nothing is served for an oversized frame");
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_ten_thousand_part_message_is_drained_and_refused)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_FETCH, header);
    cr_assert_eq(zmq_send(p.sock, header, sizeof header, ZMQ_SNDMORE), LD_HEADER_SIZE);
    for (int i = 1; i < 10000; i++)
        cr_assert_eq(zmq_send(p.sock, "x", 1, i + 1 < 10000 ? ZMQ_SNDMORE : 0), 1);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "10000 frames"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    /* the same connection is served on */
    send_fetch(&p, 0, 10);
    expect(&p, LD_MSG_BATCH, &e);
    ld_msg_clear(&e);
    peer_close(&p);
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "10001 frames"), "the drop is logged:\n%s", log);
    free(log);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_replayed_hello_is_answered_again_and_changes_nothing)
{
    ld_msg_t w;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    push_ok(&p, "home", 1, 2, 2);
    for (int i = 0; i < 3; i++) {
        send_hello(&p, "home");
        expect(&p, LD_MSG_WELCOME, &w);
        cr_assert_eq(w.u.welcome.pushed_upto, 2);
        ld_msg_clear(&w);
    }
    push_ok(&p, "home", 3, 3, 3);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 3);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, message_types_a_node_does_not_send_are_refused)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    const uint8_t types[] = { 0, LD_MSG_WELCOME, LD_MSG_PUSH_ACK, LD_MSG_BATCH, LD_MSG_NOTIFY,
                              LD_MSG_ERROR, LD_MSG_COUNT, 200, 255 };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t header[LD_HEADER_SIZE];
        ld_frame_header(LD_MSG_HELLO, header);
        header[3] = types[i];
        send_raw(&p, header, sizeof header, "", 0);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        ld_msg_clear(&e);
    }
    peer_close(&p);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, unauthenticated_tcp_clients_do_not_stop_the_broker)
{
    broker_start();
    int silent = tcp_open();
    int noisy = tcp_open();
    uint8_t junk[4096];
    for (int i = 0; i < 16; i++) {
        random_bytes(junk, sizeof junk);
        if (send(noisy, junk, sizeof junk, MSG_NOSIGNAL) < 0)
            break;                    /* the broker hung up on it: fine */
    }
    /* a fake ZMTP greeting that never finishes the CURVE handshake */
    int half = tcp_open();
    uint8_t greeting[64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'C', 'U', 'R', 'V', 'E' };
    cr_assert_eq(send(half, greeting, sizeof greeting, MSG_NOSIGNAL), (ssize_t)sizeof greeting);
    assert_still_serves();
    close(silent);
    close(noisy);
    close(half);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, the_peer_table_is_bounded_and_forgets_the_longest_silent)
{
    ld_msg_t e;
    write_conf("max_peers = 2\n");
    broker_start();
    peer_t first = node_open("home", &key_home, NULL);
    peer_t second = node_open("home", &key_home, NULL);
    peer_t third = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&first, 0, 1);
    expect_error(&first, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "HELLO"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    send_fetch(&third, 0, 1);
    expect(&third, LD_MSG_BATCH, &e);
    ld_msg_clear(&e);
    peer_close(&first);
    peer_close(&second);
    peer_close(&third);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, sigterm_exits_zero_and_a_restart_keeps_every_mailbox)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 5, 5);
    peer_close(&home);
    int status = broker_stop(SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    broker_start();
    uint64_t depth = 0, pushed = 0;
    welcome_of("home", &key_home, NULL, &pushed);
    cr_assert_eq(pushed, 5);
    welcome_of("dongguan", &key_dongguan, &depth, NULL);
    cr_assert_eq(depth, 5);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 5);
    cr_assert_eq(b.u.batch.positions[4], 5);
    ld_msg_clear(&b);
    peer_close(&dg);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_sigterm_during_a_push_stores_all_of_it_or_none)
{
    ld_msg_t push;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, LD_BATCH_MAX, aud_home_dongguan, 2);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    int status = broker_stop(SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    peer_close(&home);
    broker_start();
    uint64_t depth = 9, pushed = 9;
    welcome_of("home", &key_home, NULL, &pushed);
    welcome_of("dongguan", &key_dongguan, &depth, NULL);
    cr_assert(pushed == 0 || pushed == LD_BATCH_MAX, "pushed_upto %llu", (unsigned long long)pushed);
    cr_assert_eq(depth, pushed, "the mailbox holds exactly what the mark says");
    assert_still_serves();
    assert_clean_stop();
}
