/* cmp_zmq.c: the transport limit: a raw libzmq DEALER-ROUTER-DEALER relay with CURVE and
 * application acks, holding records in memory (no disk); relay, send and recv modes.
 *
 * The protocol (each message a command frame, then record frames):
 *   sender   -> relay   'P' rec...                 push a batch
 *   relay    -> sender  'A' u32 count              the batch is held
 *   receiver -> relay   'F' u32 credit             give me up to credit records
 *   relay    -> receiver 'B' u32 count rec...      the next records not yet handed out
 *   receiver -> relay   'K' u32 count u8 reply     drop the oldest count records; if reply,
 *   relay    -> receiver 'k'                        confirm (the receiver's last ack)
 * u32 is little endian.  The relay serves one sender and one receiver at a time. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cmp_common.h"

#define PROG         "cmp_zmq"
#define DEADLINE_MS  300000
#define BATCH        4096      /* records per push and per fetch */
#define PUSH_WINDOW  4         /* pushes in flight */
#define FETCH_WINDOW 2         /* fetches in flight */
#define KEY_TEXT     41

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = 1;
}

static int zfail(const char *what)
{
    fprintf(stderr, PROG ": %s: %s\n", what, zmq_strerror(zmq_errno()));
    return -1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int set_int(void *sock, int opt, int value, const char *what)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) != 0)
        return zfail(what);
    return 0;
}

/* Sends a command frame: `tag`, then (if len >= 5) the u32 `value`, then (if len == 6)
 * the byte `flag`; with ZMQ_SNDMORE if `more`. */
static int send_cmd(void *sock, char tag, size_t len, uint32_t value, uint8_t flag, bool more)
{
    uint8_t buf[6];

    buf[0] = (uint8_t)tag;
    put_u32(buf + 1, value);
    buf[5] = flag;
    if (zmq_send(sock, buf, len, more ? ZMQ_SNDMORE : 0) < 0)
        return zfail("send");
    return 0;
}

static bool more_follows(void *sock)
{
    int more = 0;
    size_t len = sizeof more;

    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    return more != 0;
}

static void drain_rest(void *sock)
{
    while (more_follows(sock)) {
        zmq_msg_t m;

        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
    }
}

/* ---- relay ---- */

/* The records held: [head, next) handed out but not acked, [next, tail) waiting.  They
 * live in blocks that never move (a zmq_msg_t must not be copied bytewise). */
#define QUEUE_BLOCK 4096

typedef struct queue {
    zmq_msg_t **blocks;
    size_t      nblocks;
    size_t      head, next, tail;
} queue_t;

static zmq_msg_t *queue_at(queue_t *q, size_t i)
{
    return &q->blocks[i / QUEUE_BLOCK][i % QUEUE_BLOCK];
}

/* The slot at the tail, growing the queue if needed; NULL when out of memory. */
static zmq_msg_t *queue_slot(queue_t *q)
{
    if (q->head == q->tail)
        q->head = q->next = q->tail = 0;
    if (q->tail / QUEUE_BLOCK == q->nblocks) {
        zmq_msg_t **blocks = realloc(q->blocks, (q->nblocks + 1) * sizeof *blocks);

        if (blocks == NULL)
            return NULL;
        q->blocks = blocks;
        q->blocks[q->nblocks] = malloc(QUEUE_BLOCK * sizeof(zmq_msg_t));
        if (q->blocks[q->nblocks] == NULL)
            return NULL;
        q->nblocks++;
    }
    return queue_at(q, q->tail);
}

/* Closes up to `count` of the records handed out, oldest first. */
static void queue_drop(queue_t *q, size_t count)
{
    while (count-- > 0 && q->head < q->next)
        zmq_msg_close(queue_at(q, q->head++));
}

static void queue_free(queue_t *q)
{
    q->next = q->tail;
    queue_drop(q, q->tail);
    for (size_t i = 0; i < q->nblocks; i++)
        free(q->blocks[i]);
    free(q->blocks);
    memset(q, 0, sizeof *q);
}

/* Takes a push's record frames into the queue; returns how many, or -1. */
static long relay_take_push(void *sock, queue_t *q)
{
    long count = 0;

    while (more_follows(sock)) {
        zmq_msg_t *slot = queue_slot(q);

        if (slot == NULL) {
            fprintf(stderr, PROG ": out of memory holding record %zu\n", q->tail);
            drain_rest(sock);
            return -1;
        }
        zmq_msg_init(slot);
        if (zmq_msg_recv(slot, sock, 0) < 0) {
            zmq_msg_close(slot);
            return zfail("receive record");
        }
        q->tail++;
        count++;
    }
    return count;
}

/* Hands out up to `credit` waiting records (reference-counted copies) to `id`. */
static int relay_send_batch(void *sock, zmq_msg_t *id, queue_t *q, uint32_t credit)
{
    size_t k = q->tail - q->next;
    zmq_msg_t out;

    if (k > credit)
        k = credit;
    zmq_msg_init(&out);
    zmq_msg_copy(&out, id);
    if (zmq_msg_send(&out, sock, ZMQ_SNDMORE) < 0) {
        zmq_msg_close(&out);
        return zfail("send to receiver");
    }
    if (send_cmd(sock, 'B', 5, (uint32_t)k, 0, k > 0) < 0)
        return -1;
    for (size_t i = 0; i < k; i++) {
        zmq_msg_init(&out);
        zmq_msg_copy(&out, queue_at(q, q->next + i));
        if (zmq_msg_send(&out, sock, i + 1 < k ? ZMQ_SNDMORE : 0) < 0) {
            zmq_msg_close(&out);
            return zfail("send record");
        }
    }
    q->next += k;
    return 0;
}

static int relay_reply(void *sock, zmq_msg_t *id, char tag, size_t len, uint32_t value)
{
    zmq_msg_t out;

    zmq_msg_init(&out);
    zmq_msg_copy(&out, id);
    if (zmq_msg_send(&out, sock, ZMQ_SNDMORE) < 0) {
        zmq_msg_close(&out);
        return zfail("reply");
    }
    return send_cmd(sock, tag, len, value, 0, false);
}

/* One request from a peer: routing id, command, records. 0, or -1 on a fatal error. */
static int relay_serve_one(void *sock, queue_t *q)
{
    zmq_msg_t id, cmd;
    const uint8_t *c;
    size_t clen;
    int rc = 0;

    zmq_msg_init(&id);
    zmq_msg_init(&cmd);
    if (zmq_msg_recv(&id, sock, 0) < 0) {
        rc = (zmq_errno() == EINTR) ? 0 : zfail("receive");
        goto out;
    }
    if (!more_follows(sock) || zmq_msg_recv(&cmd, sock, 0) < 0) {
        fprintf(stderr, PROG ": a message without a command frame\n");
        goto out;
    }
    c = zmq_msg_data(&cmd);
    clen = zmq_msg_size(&cmd);
    if (clen == 1 && c[0] == 'P') {
        long count = relay_take_push(sock, q);

        if (count < 0)
            rc = -1;
        else
            rc = relay_reply(sock, &id, 'A', 5, (uint32_t)count);
    } else if (clen == 5 && c[0] == 'F') {
        rc = relay_send_batch(sock, &id, q, get_u32(c + 1));
    } else if (clen == 6 && c[0] == 'K') {
        queue_drop(q, get_u32(c + 1));
        if (c[5] != 0)
            rc = relay_reply(sock, &id, 'k', 1, 0);
    } else {
        fprintf(stderr, PROG ": unknown command of %zu bytes\n", clen);
        drain_rest(sock);
    }
out:
    zmq_msg_close(&cmd);
    zmq_msg_close(&id);
    return rc;
}

static int run_relay(void *ctx)
{
    char pub[KEY_TEXT], sec[KEY_TEXT], endpoint[256];
    size_t len = sizeof endpoint;
    struct sigaction sa;
    queue_t q = { 0 };
    void *sock = NULL;
    int rc = -1;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: a blocked receive returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (zmq_curve_keypair(pub, sec) != 0) {
        zfail("CURVE keypair (libzmq without CURVE?)");
        goto out;
    }
    sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (sock == NULL) {
        zfail("ROUTER socket");
        goto out;
    }
    if (set_int(sock, ZMQ_CURVE_SERVER, 1, "CURVE server") < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0 ||
        set_int(sock, ZMQ_ROUTER_MANDATORY, 1, "router mandatory") < 0 ||
        set_int(sock, ZMQ_SNDHWM, 0, "send high-water mark") < 0 ||
        set_int(sock, ZMQ_RCVHWM, 0, "receive high-water mark") < 0 ||
        set_int(sock, ZMQ_LINGER, 0, "linger") < 0)
        goto out;
    if (zmq_bind(sock, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0) {
        zfail("bind tcp://127.0.0.1:*");
        goto out;
    }
    printf("ready %s %s\n", endpoint, pub);
    fflush(stdout);
    while (!stopping) {
        if (relay_serve_one(sock, &q) < 0)
            goto out;
    }
    rc = 0;
out:
    queue_free(&q);
    zmq_close(sock);
    return rc;
}

/* ---- the two clients ---- */

/* A CURVE client DEALER connected to `endpoint` whose server key is `server_key`. */
static void *client_socket(void *ctx, const char *endpoint, const char *server_key)
{
    char pub[KEY_TEXT], sec[KEY_TEXT];
    void *sock = zmq_socket(ctx, ZMQ_DEALER);

    if (sock == NULL) {
        zfail("DEALER socket");
        return NULL;
    }
    if (zmq_curve_keypair(pub, sec) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0) {
        zfail("CURVE client keys");
        goto err;
    }
    if (set_int(sock, ZMQ_SNDHWM, 0, "send high-water mark") < 0 ||
        set_int(sock, ZMQ_RCVHWM, 0, "receive high-water mark") < 0 ||
        set_int(sock, ZMQ_RCVTIMEO, DEADLINE_MS, "receive timeout") < 0 ||
        set_int(sock, ZMQ_LINGER, DEADLINE_MS, "linger") < 0)
        goto err;
    if (zmq_connect(sock, endpoint) != 0) {
        zfail(endpoint);
        goto err;
    }
    return sock;
err:
    zmq_close(sock);
    return NULL;
}

/* Receives a command frame into buf; returns its length or -1. */
static int recv_cmd(void *sock, uint8_t *buf, size_t cap)
{
    int len = zmq_recv(sock, buf, cap, 0);

    if (len < 0)
        return zfail(zmq_errno() == EAGAIN ? "no answer from the relay" : "receive");
    return len;
}

static int run_send(void *ctx, const char *endpoint, const char *key, uint64_t n, size_t size)
{
    void *sock = client_socket(ctx, endpoint, key);
    uint8_t *buf = malloc(size);
    uint64_t sent = 0, acked = 0;
    int inflight = 0, rc = -1;
    uint8_t cmd[8];

    if (sock == NULL || buf == NULL)
        goto out;
    while (acked < n) {
        while (sent < n && inflight < PUSH_WINDOW) {
            uint64_t end = sent + BATCH < n ? sent + BATCH : n;

            if (send_cmd(sock, 'P', 1, 0, 0, true) < 0)
                goto out;
            for (; sent < end; sent++) {
                cmp_record_fill(buf, size, sent);
                if (zmq_send(sock, buf, size, sent + 1 < end ? ZMQ_SNDMORE : 0) < 0) {
                    zfail("send record");
                    goto out;
                }
            }
            inflight++;
        }
        if (recv_cmd(sock, cmd, sizeof cmd) != 5 || cmd[0] != 'A') {
            fprintf(stderr, PROG ": expected an ack from the relay\n");
            goto out;
        }
        acked += get_u32(cmd + 1);
        inflight--;
    }
    rc = 0;
out:
    zmq_close(sock);
    free(buf);
    return rc;
}

static int run_recv(void *ctx, const char *endpoint, const char *key, uint64_t n, size_t size)
{
    void *sock = client_socket(ctx, endpoint, key);
    cmp_tally_t *tally = cmp_tally_new(n, size);
    uint64_t requested = 0;
    int outstanding = 0, rc = -1;
    uint8_t cmd[8];
    zmq_msg_t rec;

    zmq_msg_init(&rec);
    if (sock == NULL || tally == NULL)
        goto out;
    while (cmp_tally_distinct(tally) < n) {
        uint32_t k;
        bool done;

        while (requested < n && outstanding < FETCH_WINDOW) {
            if (send_cmd(sock, 'F', 5, BATCH, 0, false) < 0)
                goto out;
            requested += BATCH;
            outstanding++;
        }
        if (outstanding == 0) {
            fprintf(stderr, PROG ": the relay handed out fewer records than were pushed\n");
            goto out;
        }
        if (recv_cmd(sock, cmd, sizeof cmd) != 5 || cmd[0] != 'B') {
            fprintf(stderr, PROG ": expected a batch from the relay\n");
            goto out;
        }
        outstanding--;
        k = get_u32(cmd + 1);
        if (k < BATCH)
            requested -= BATCH - k;   /* ask again for what was not there */
        for (uint32_t i = 0; i < k; i++) {
            if (zmq_msg_recv(&rec, sock, 0) < 0) {
                zfail("receive record");
                goto out;
            }
            cmp_tally_add(tally, zmq_msg_data(&rec), zmq_msg_size(&rec));
        }
        done = cmp_tally_distinct(tally) >= n;
        if (k > 0 && send_cmd(sock, 'K', 6, k, done ? 1 : 0, false) < 0)
            goto out;
    }
    /* Wait for the relay to confirm the last ack (skipping empty batches still due). */
    for (;;) {
        int len = recv_cmd(sock, cmd, sizeof cmd);

        if (len < 0)
            goto out;
        if (len == 1 && cmd[0] == 'k')
            break;
        drain_rest(sock);
    }
    rc = cmp_tally_check(tally, PROG);
out:
    zmq_msg_close(&rec);
    zmq_close(sock);
    cmp_tally_destroy(&tally);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " relay                 (prints \"ready ENDPOINT SERVER_KEY\")\n"
            "       " PROG " send|recv ENDPOINT SERVER_KEY N SIZE\n");
}

int main(int argc, char **argv)
{
    void *ctx;
    uint64_t n = 0, size = 0;
    int rc = 1;

    if (argc == 2 && strcmp(argv[1], "relay") == 0) {
        ctx = zmq_ctx_new();
        rc = ctx && run_relay(ctx) == 0 ? 0 : 1;
        zmq_ctx_term(ctx);
        return rc;
    }
    if (argc != 6 || (strcmp(argv[1], "send") != 0 && strcmp(argv[1], "recv") != 0)) {
        usage();
        return 2;
    }
    if (strlen(argv[3]) != 40) {
        fprintf(stderr, PROG ": SERVER_KEY must be 40 characters of Z85, got \"%s\"\n", argv[3]);
        return 2;
    }
    if (cmp_parse_count(argv[4], "N", UINT32_MAX, &n) < 0 ||
        cmp_parse_count(argv[5], "SIZE", CMP_RECORD_MAX, &size) < 0)
        return 2;
    if (size < 16) {
        fprintf(stderr, PROG ": SIZE must be at least 16, got %" PRIu64 "\n", size);
        return 2;
    }
    ctx = zmq_ctx_new();
    if (ctx == NULL)
        return 1;
    if (strcmp(argv[1], "send") == 0)
        rc = run_send(ctx, argv[2], argv[3], n, (size_t)size) == 0 ? 0 : 1;
    else
        rc = run_recv(ctx, argv[2], argv[3], n, (size_t)size) == 0 ? 0 : 1;
    zmq_ctx_term(ctx);
    return rc;
}
