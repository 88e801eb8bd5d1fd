/* zap.c: the broker's ZAP handler: one thread, one REP socket on
 * inproc://zeromq.zap.01, its own registry connection; registered keys only. */
#include "zap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "keys.h"
#include "log.h"
#include "registry.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_FRAMES     7        /* version, id, domain, address, routing id, mechanism, key */
#define ZAP_FRAME_MAX  256

struct bk_zap {
    void           *ctx;
    void           *rep;          /* owned by the thread once it runs */
    void           *stop_tx;      /* main side of the stop pair */
    void           *stop_rx;      /* thread side */
    bk_registry_t  *registry;     /* the thread's own connection */
    pthread_t       thread;
    bool            running;
    atomic_ulong    admitted;
    atomic_ulong    refused;
};

/* One ZAP request, its frames copied out (each at most ZAP_FRAME_MAX bytes). */
typedef struct zap_request {
    size_t  nframes;
    bool    oversized;
    uint8_t frame[ZAP_FRAMES][ZAP_FRAME_MAX];
    size_t  len[ZAP_FRAMES];
} zap_request_t;

static int zap_recv(void *rep, zap_request_t *req)
{
    int more = 0;
    size_t more_len = sizeof more;
    req->nframes = 0;
    req->oversized = false;
    do {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, rep, 0) < 0) {
            zmq_msg_close(&part);
            return -1;
        }
        size_t size = zmq_msg_size(&part);
        if (req->nframes < ZAP_FRAMES) {
            if (size > ZAP_FRAME_MAX) {
                req->oversized = true;
                size = ZAP_FRAME_MAX;
            }
            memcpy(req->frame[req->nframes], zmq_msg_data(&part), size);
            req->len[req->nframes] = size;
        }
        req->nframes++;
        zmq_msg_close(&part);
        if (zmq_getsockopt(rep, ZMQ_RCVMORE, &more, &more_len) < 0)
            return -1;
    } while (more);
    return 0;
}

/* Replies to req.  An admitted connection (key not NULL) carries two properties on
 * every message it brings: User-Id, the node id, and BK_ZAP_KEY_PROPERTY, the public
 * key it was admitted with (the ZAP metadata frame: name length, name, 4-byte value
 * length, value), so that the server can refuse it once the node's key is replaced. */
static void zap_reply(void *rep, const zap_request_t *req, const char *status,
                      const char *text, const char *user_id, const char *key)
{
    static const char name[] = BK_ZAP_KEY_PROPERTY;
    uint8_t meta[1 + sizeof name + 4 + LD_KEY_TEXT];
    size_t meta_len = 0;
    const uint8_t *id = req->nframes > 1 ? req->frame[1] : (const uint8_t *)"";
    size_t id_len = req->nframes > 1 ? req->len[1] : 0;
    if (key != NULL) {
        size_t klen = strlen(key);
        meta[meta_len++] = (uint8_t)(sizeof name - 1);
        memcpy(meta + meta_len, name, sizeof name - 1);
        meta_len += sizeof name - 1;
        for (int shift = 24; shift >= 0; shift -= 8)
            meta[meta_len++] = (uint8_t)(klen >> shift);
        memcpy(meta + meta_len, key, klen);
        meta_len += klen;
    }
    if (zmq_send(rep, "1.0", 3, ZMQ_SNDMORE) < 0
        || zmq_send(rep, id, id_len, ZMQ_SNDMORE) < 0
        || zmq_send(rep, status, strlen(status), ZMQ_SNDMORE) < 0
        || zmq_send(rep, text, strlen(text), ZMQ_SNDMORE) < 0
        || zmq_send(rep, user_id, strlen(user_id), ZMQ_SNDMORE) < 0
        || zmq_send(rep, meta, meta_len, 0) < 0)
        ld_err("zap: cannot reply: %s", zmq_strerror(zmq_errno()));
}

/* The peer address frame as text, for log lines. */
static void zap_address(const zap_request_t *req, char out[ZAP_FRAME_MAX + 1])
{
    size_t n = req->nframes > 3 ? req->len[3] : 0;
    memcpy(out, req->frame[3], n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
}

static void zap_handle(bk_zap_t *self, const zap_request_t *req)
{
    char address[ZAP_FRAME_MAX + 1];
    char key[LD_KEY_TEXT + 1];
    ld_error_t err;
    zap_address(req, address);
    if (req->nframes != ZAP_FRAMES || req->oversized
        || req->len[0] != 3 || memcmp(req->frame[0], "1.0", 3) != 0
        || req->len[5] != 5 || memcmp(req->frame[5], "CURVE", 5) != 0
        || req->len[6] != 32) {
        atomic_fetch_add(&self->refused, 1);
        ld_warn("zap: refused a handshake from %s: not a CURVE request", address);
        zap_reply(self->rep, req, "400", "CURVE only", "", NULL);
        return;
    }
    if (!zmq_z85_encode(key, req->frame[6], 32)) {
        zap_reply(self->rep, req, "500", "cannot encode the key", "", NULL);
        return;
    }
    if (bk_registry_refresh(self->registry, NULL, &err) < 0) {
        /* the previous snapshot stays in force; a failure here must not admit anyone new */
        ld_err("zap: registry refresh failed: %s", err.msg);
        zap_reply(self->rep, req, "500", "registry unavailable", "", NULL);
        atomic_fetch_add(&self->refused, 1);
        return;
    }
    const char *node = bk_registry_node_by_key(self->registry, key);
    bool reloaded = false;
    if (!node && bk_registry_recheck(self->registry, &reloaded, &err) < 0)
        ld_warn("zap: registry reload failed (the previous snapshot stays): %s", err.msg);
    if (reloaded)   /* a registry shared by several front-ends may have just learnt it */
        node = bk_registry_node_by_key(self->registry, key);
    if (!node) {
        atomic_fetch_add(&self->refused, 1);
        ld_warn("zap: refused unknown key %s from %s", key, address);
        zap_reply(self->rep, req, "400", "key not registered", "", NULL);
        return;
    }
    atomic_fetch_add(&self->admitted, 1);
    ld_info("zap: admitted node %s from %s", node, address);
    zap_reply(self->rep, req, "200", "OK", node, key);
}

static void *zap_thread(void *arg)
{
    bk_zap_t *self = arg;
    zap_request_t *req = malloc(sizeof *req);
    if (!req) {
        ld_err("zap: out of memory; no handshake can be admitted");
        return NULL;
    }
    for (;;) {
        zmq_pollitem_t items[2] = {
            { .socket = self->rep, .events = ZMQ_POLLIN },
            { .socket = self->stop_rx, .events = ZMQ_POLLIN },
        };
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ld_err("zap: poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            break;
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        if (zap_recv(self->rep, req) < 0) {
            if (zmq_errno() == ETERM)
                break;
            continue;
        }
        zap_handle(self, req);
    }
    free(req);
    return NULL;
}

bk_zap_t *bk_zap_new(void *zmq_ctx, const bk_registry_ops_t *ops, const char *where,
                     ld_error_t *err)
{
    char stop_ep[64];
    int linger = 0;
    bk_zap_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory starting the ZAP handler");
        return NULL;
    }
    self->ctx = zmq_ctx;
    atomic_init(&self->admitted, 0);
    atomic_init(&self->refused, 0);
    self->registry = bk_registry_open(ops, where, false, err);
    if (!self->registry)
        goto err;
    self->rep = zmq_socket(zmq_ctx, ZMQ_REP);
    self->stop_tx = zmq_socket(zmq_ctx, ZMQ_PAIR);
    self->stop_rx = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (!self->rep || !self->stop_tx || !self->stop_rx) {
        ld_error_set(err, LD_EIO, "zap: cannot make sockets: %s", zmq_strerror(zmq_errno()));
        goto err;
    }
    zmq_setsockopt(self->rep, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->stop_tx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->stop_rx, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->rep, ZAP_ENDPOINT) < 0) {
        ld_error_set(err, LD_EIO, "zap: cannot bind %s: %s", ZAP_ENDPOINT,
                     zmq_strerror(zmq_errno()));
        goto err;
    }
    snprintf(stop_ep, sizeof stop_ep, "inproc://liangdi-zap-stop-%p", (void *)self);
    if (zmq_bind(self->stop_rx, stop_ep) < 0 || zmq_connect(self->stop_tx, stop_ep) < 0) {
        ld_error_set(err, LD_EIO, "zap: cannot wire %s: %s", stop_ep, zmq_strerror(zmq_errno()));
        goto err;
    }
    if (pthread_create(&self->thread, NULL, zap_thread, self) != 0) {
        ld_error_set(err, LD_EIO, "zap: cannot start the handler thread");
        goto err;
    }
    self->running = true;
    return self;
err:
    bk_zap_destroy(&self);
    return NULL;
}

void bk_zap_destroy(bk_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_zap_t *self = *self_p;
    if (self->running) {
        if (zmq_send(self->stop_tx, "stop", 4, 0) < 0)
            ld_err("zap: cannot signal the handler thread: %s", zmq_strerror(zmq_errno()));
        pthread_join(self->thread, NULL);
        self->running = false;
    }
    if (self->rep)
        zmq_close(self->rep);
    if (self->stop_tx)
        zmq_close(self->stop_tx);
    if (self->stop_rx)
        zmq_close(self->stop_rx);
    bk_registry_destroy(&self->registry);
    free(self);
    *self_p = NULL;
}

unsigned long bk_zap_admitted(const bk_zap_t *self)
{
    return atomic_load(&((bk_zap_t *)self)->admitted);
}

unsigned long bk_zap_refused(const bk_zap_t *self)
{
    return atomic_load(&((bk_zap_t *)self)->refused);
}
