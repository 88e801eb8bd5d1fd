/* broker_peer.c: what the broker's own tests share: the real liangdi-broker started in a
 * temp dir with fresh keys, and a raw CURVE DEALER that speaks to it as a node would. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "broker_peer.h"


broker_t bk;
void *zctx;
ld_keypair_t key_home, key_dongguan, key_shenzhen, key_stranger;

/* Sockets still open, closed by teardown when a failed assertion skipped peer_close
 * (zmq_ctx_term waits for every socket). */
void *open_socks[64];

void track(void *sock, bool open)
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
int64_t scaled(int64_t ms)
{
    return getenv("LIANGDI_UNDER_VALGRIND") ? ms * 20 : ms;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void nap(void)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

const char *tmpbase(void)
{
    const char *base = getenv("TMPDIR");
    return base && *base ? base : "/tmp";
}

const char *broker_bin(void)
{
    const char *bin = getenv("LIANGDI_BROKER_BIN");
    cr_assert(bin && *bin, "LIANGDI_BROKER_BIN is not set (run through meson test)");
    return bin;
}

/* The whole broker log, malloc'd (caller frees); "" if there is none. */
char *read_file(const char *path, size_t from)
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

off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Runs the broker CLI with `args` (NULL-terminated, after the program name), stdout
 * into out[outsz], stderr appended to the log.  Returns its exit code. */
int cli(char *out, size_t outsz, const char *const *args)
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


/* Starts `liangdi-broker run` in its own process group and waits for its ready line. */
void broker_start(void)
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
int broker_stop(int sig)
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
void assert_clean_stop(void)
{
    if (bk.pid <= 0)
        return;
    int status = broker_stop(SIGTERM);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "on SIGTERM the broker exits 0 (status 0x%x)", (unsigned)status);
}

void write_conf(const char *extra)
{
    FILE *f = fopen(bk.conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "[broker]\nlog_level = debug\n%s", extra ? extra : "");
    fclose(f);
}

void setup(void)
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

void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

void teardown(void)
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


peer_t peer_open(const ld_keypair_t *kp)
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

void peer_connect(peer_t *p)
{
    cr_assert_eq(zmq_connect(p->sock, bk.endpoint), 0, "connect %s", bk.endpoint);
}

void peer_close(peer_t *p)
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

void send_raw(peer_t *p, const void *header, size_t hlen, const void *body, size_t blen)
{
    cr_assert_eq(zmq_send(p->sock, header, hlen, ZMQ_SNDMORE), (int)hlen);
    cr_assert_eq(zmq_send(p->sock, body, blen, 0), (int)blen);
}

void send_msg(peer_t *p, const ld_msg_t *m)
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
ld_msg_type_t recv_msg(peer_t *p, int timeout_ms, ld_msg_t *m)
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
void expect(peer_t *p, ld_msg_type_t type, ld_msg_t *m)
{
    ld_msg_type_t got = recv_msg(p, 5000, m);
    if (got == LD_MSG_ERROR && type != LD_MSG_ERROR)
        cr_assert_fail("expected %s, got error %d: %s", ld_msg_type_name(type),
                       (int)m->u.error.code, m->u.error.message);
    cr_assert_eq(got, type, "expected %s, got %s", ld_msg_type_name(type),
                 got == LD_MSG_NONE ? "nothing" : ld_msg_type_name(got));
}

void expect_error(peer_t *p, ld_error_code_t code, ld_msg_t *m)
{
    expect(p, LD_MSG_ERROR, m);
    cr_assert_eq(m->u.error.code, code, "error code %d, expected %d: %s",
                 (int)m->u.error.code, (int)code, m->u.error.message);
}

void send_hello(peer_t *p, const char *node_id)
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
peer_t node_open(const char *id, const ld_keypair_t *kp, ld_msg_t *welcome)
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
void make_change(ld_change_t *c, const char *origin, uint64_t seq,
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

const char *const aud_home_dongguan[] = { "home", "dongguan" };

/* A Push of seqs first..last by `origin` to `audience`; the caller clears it. */
void make_push(ld_msg_t *m, const char *origin, uint64_t first, uint64_t last,
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
void push_ok(peer_t *p, const char *origin, uint64_t first, uint64_t last,
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

void send_fetch(peer_t *p, uint64_t cursor, uint32_t credit)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = cursor;
    m.u.fetch.credit = credit;
    send_msg(p, &m);
    ld_msg_clear(&m);
}
