/* cmp_mosquitto.c: the Mosquitto contestant (libmosquitto, MQTT 3.1.1, QoS 1, a
 * persistent session for the receiver), one phase per run: register, store or drain. */
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmp_common.h"

#define PROG          "cmp_mosquitto"
#define TOPIC         "cmp/records"
#define SENDER_ID     "cmp-sender"
#define RECEIVER_ID   "cmp-receiver"
#define DEADLINE_S    300
#define KEEPALIVE_S   60
#define WINDOW        200     /* QoS 1 messages in flight from the client (default 20) */

/* What the network thread reports to the main thread, under `lock`. */
typedef struct bench {
    pthread_mutex_t lock;
    pthread_cond_t  cond;
    int             connack;      /* -1 until CONNACK, then its return code */
    bool            subscribed;
    uint64_t        sent;         /* records published (main thread) */
    uint64_t        acked;        /* PUBACKs received */
    uint64_t        window;       /* publishes allowed in flight */
    uint64_t        target;       /* acks or records to wait for */
    cmp_tally_t    *tally;        /* drain: records received; borrowed */
} bench_t;

typedef bool (*bench_done_fn)(const bench_t *b);

static bool connack_arrived(const bench_t *b) { return b->connack >= 0; }
static bool suback_arrived(const bench_t *b)  { return b->subscribed; }
static bool all_acked(const bench_t *b)       { return b->acked >= b->target; }
static bool window_open(const bench_t *b)     { return b->sent - b->acked < b->window; }
static bool all_received(const bench_t *b)
{
    return cmp_tally_distinct(b->tally) >= b->target;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    bench_t *b = obj;

    pthread_mutex_lock(&b->lock);
    b->connack = rc;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count,
                         const int *granted)
{
    bench_t *b = obj;

    pthread_mutex_lock(&b->lock);
    b->subscribed = count == 1 && granted[0] == 1;
    if (!b->subscribed)
        fprintf(stderr, PROG ": the broker did not grant QoS 1 on " TOPIC "\n");
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    bench_t *b = obj;

    pthread_mutex_lock(&b->lock);
    b->acked++;
    if (b->acked >= b->target || b->sent - b->acked == b->window - 1)
        pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    bench_t *b = obj;

    pthread_mutex_lock(&b->lock);
    cmp_tally_add(b->tally, m->payload, (size_t)m->payloadlen);
    if (cmp_tally_distinct(b->tally) >= b->target)
        pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Waits until done(b) or the deadline; 0, or -1 after printing what was awaited. */
static int bench_wait(bench_t *b, bench_done_fn done, const char *what)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&b->lock);
    while (!done(b) && rc == 0)
        rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
    if (!done(b)) {
        fprintf(stderr, PROG ": no %s within %d s (acked %" PRIu64 ")\n", what,
                DEADLINE_S, b->acked);
        rc = -1;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static int bench_init(bench_t *b)
{
    pthread_condattr_t attr;

    memset(b, 0, sizeof *b);
    b->connack = -1;
    b->window = WINDOW;
    if (pthread_mutex_init(&b->lock, NULL) != 0)
        return -1;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&b->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        return -1;
    }
    pthread_condattr_destroy(&attr);
    return 0;
}

static void bench_fini(bench_t *b)
{
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

/* Connects `mosq` to host:port, starts its network thread and waits for CONNACK.
 * 0, or -1 with the reason printed. */
static int start(struct mosquitto *mosq, bench_t *b, const char *host, int port)
{
    int rc = mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, (int)b->window);

    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, PROG ": send maximum %" PRIu64 ": %s\n", b->window,
                mosquitto_strerror(rc));
        return -1;
    }
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_message_callback_set(mosq, on_message);
    rc = mosquitto_connect(mosq, host, port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, PROG ": connect to %s:%d: %s\n", host, port, mosquitto_strerror(rc));
        return -1;
    }
    rc = mosquitto_loop_start(mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, PROG ": network thread: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    if (bench_wait(b, connack_arrived, "CONNACK") < 0)
        return -1;
    if (b->connack != 0) {
        fprintf(stderr, PROG ": connection refused: %s\n", mosquitto_connack_string(b->connack));
        return -1;
    }
    return 0;
}

static void stop(struct mosquitto *mosq)
{
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
}

/* The receiver's first visit: a persistent session subscribed at QoS 1. */
static int run_register(bench_t *b, const char *host, int port)
{
    struct mosquitto *mosq = mosquitto_new(RECEIVER_ID, false, b);
    int rc = -1;

    if (mosq == NULL || start(mosq, b, host, port) < 0)
        goto out;
    if (mosquitto_subscribe(mosq, NULL, TOPIC, 1) != MOSQ_ERR_SUCCESS)
        goto out;
    if (bench_wait(b, suback_arrived, "SUBACK") < 0)
        goto out;
    rc = 0;
out:
    if (mosq != NULL) {
        stop(mosq);
        mosquitto_destroy(mosq);
    }
    return rc;
}

/* The sender: n records published at QoS 1; done when the broker has acked them all. */
static int run_store(bench_t *b, const char *host, int port, uint64_t n, size_t size)
{
    struct mosquitto *mosq = mosquitto_new(SENDER_ID, true, b);
    uint8_t *buf = malloc(size);
    int rc = -1;

    b->target = n;
    if (mosq == NULL || buf == NULL || start(mosq, b, host, port) < 0)
        goto out;
    for (uint64_t seq = 0; seq < n; seq++) {
        int prc;

        /* libmosquitto scans its whole outgoing queue on every PUBACK: publishing
         * everything at once is quadratic, so keep at most `window` unacked. */
        if (bench_wait(b, window_open, "PUBACK to open the window") < 0)
            goto out;
        pthread_mutex_lock(&b->lock);
        b->sent++;
        pthread_mutex_unlock(&b->lock);
        cmp_record_fill(buf, size, seq);
        prc = mosquitto_publish(mosq, NULL, TOPIC, (int)size, buf, 1, false);
        if (prc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, PROG ": publish of record %" PRIu64 ": %s\n", seq,
                    mosquitto_strerror(prc));
            goto out;
        }
    }
    if (bench_wait(b, all_acked, "PUBACK for every record") < 0)
        goto out;
    rc = 0;
out:
    if (mosq != NULL) {
        stop(mosq);
        mosquitto_destroy(mosq);
    }
    free(buf);
    return rc;
}

/* The receiver comes back: its session's queue is delivered and acked (libmosquitto
 * sends PUBACK for each); done when all n distinct records are in. */
static int run_drain(bench_t *b, const char *host, int port, uint64_t n, size_t size)
{
    struct mosquitto *mosq = NULL;
    int rc = -1;

    b->target = n;
    b->tally = cmp_tally_new(n, size);
    if (b->tally == NULL)
        goto out;
    mosq = mosquitto_new(RECEIVER_ID, false, b);
    if (mosq == NULL || start(mosq, b, host, port) < 0)
        goto out;
    if (bench_wait(b, all_received, "delivery of every record") < 0)
        goto out;
    rc = 0;
out:
    if (mosq != NULL) {
        stop(mosq);
        mosquitto_destroy(mosq);
    }
    if (rc == 0)
        rc = cmp_tally_check(b->tally, PROG);
    cmp_tally_destroy(&b->tally);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " register HOST PORT\n"
            "       " PROG " store|drain HOST PORT N SIZE\n");
}

int main(int argc, char **argv)
{
    bench_t b;
    uint64_t port = 0, n = 0, size = 0;
    int rc = 1;

    if (argc < 4 || (strcmp(argv[1], "register") != 0 && argc != 6)) {
        usage();
        return 2;
    }
    if (cmp_parse_count(argv[3], "PORT", 65535, &port) < 0)
        return 2;
    if (argc == 6 && (cmp_parse_count(argv[4], "N", UINT32_MAX, &n) < 0 ||
                      cmp_parse_count(argv[5], "SIZE", CMP_RECORD_MAX, &size) < 0))
        return 2;
    if (argc == 6 && size < 16) {
        fprintf(stderr, PROG ": SIZE must be at least 16, got %" PRIu64 "\n", size);
        return 2;
    }
    if (bench_init(&b) < 0)
        return 1;
    mosquitto_lib_init();
    if (strcmp(argv[1], "register") == 0)
        rc = run_register(&b, argv[2], (int)port) == 0 ? 0 : 1;
    else if (strcmp(argv[1], "store") == 0)
        rc = run_store(&b, argv[2], (int)port, n, (size_t)size) == 0 ? 0 : 1;
    else if (strcmp(argv[1], "drain") == 0)
        rc = run_drain(&b, argv[2], (int)port, n, (size_t)size) == 0 ? 0 : 1;
    else
        usage();
    mosquitto_lib_cleanup();
    bench_fini(&b);
    return rc;
}
