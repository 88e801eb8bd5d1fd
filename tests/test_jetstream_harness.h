/* test_jetstream_harness.h: what the JetStream tests share: real nats-server processes
 * on loopback (one alone, or three in a JetStream cluster), each with its own store
 * directory and free ports, started and stopped by the test, and the skip when the
 * machine has no nats-server.  Built on harness.h's processes and deadlines. */
#ifndef JH_HARNESS_H
#define JH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include "harness.h"

#define JH_SERVERS_MAX 3
#define JH_URLS_MAX    256

typedef struct jh_server {
    char      name[16];
    char      conf[HN_PATH_MAX];
    char      url[64];
    int       port;
    int       cluster_port;
    hn_proc_t proc;
} jh_server_t;

typedef struct jh_nats {
    char        dir[HN_PATH_MAX];
    size_t      n;
    jh_server_t servers[JH_SERVERS_MAX];
    char        urls[JH_URLS_MAX];     /* "nats://127.0.0.1:P1,nats://..." */
    char        store[JH_URLS_MAX + 16];   /* "jetstream:" + urls */
} jh_nats_t;

/* The nats-server binary ($LIANGDI_NATS_SERVER, else PATH, /usr/sbin, /usr/local/bin),
 * or NULL when this machine has none.  Borrowed. */
const char *jh_nats_server_bin(void);

/* A TCP port on 127.0.0.1 that nothing listens on now, or -1. */
int jh_free_port(void);

/* Writes the configs and starts `n` servers (1: a lone JetStream server; 3: a
 * JetStream cluster) under dir, and waits until JetStream answers on every one.
 * 0 or -1 (printed, with the servers' logs). */
int jh_nats_start(jh_nats_t *c, const char *dir, size_t n);

/* Restarts server i (same config, same store) and waits until JetStream answers there. */
int jh_nats_restart(jh_nats_t *c, size_t i);

/* kill -9 of server i. */
void jh_nats_kill(jh_nats_t *c, size_t i);

/* Waits until JetStream answers an account-info request through `urls`. */
bool jh_jetstream_ready(const char *urls, int timeout_ms);

/* The replicas of JetStream stream `stream` as reached through `urls`, or -1
 * (printed) when it cannot be read. */
int jh_stream_replicas(const char *urls, const char *stream);

/* A liangdi-broker front-end on a JetStream store: its process and the endpoint it
 * said it listens on. */
typedef struct jh_front_end {
    char      endpoint[128];
    hn_proc_t proc;
} jh_front_end_t;

/* Runs `liangdi-broker ARGS... --store STORE` (args NULL-terminated, at most 20); its
 * exit status (its stderr printed when not 0), its stdout into out (may be NULL), or
 * -1 when it could not be run at all. */
int jh_broker_cli(const char *store, char *out, size_t outsz, const char *const *args);

/* Starts `liangdi-broker run --store STORE --key-file KEY_FILE [--config CONF]`, named
 * `name`, logging to `log`, bound to f's endpoint when it has one (a restart keeps its
 * port), else to a port the OS picks; waits for "ready, listening on EP" and keeps EP
 * in f.  0 or -1 (printed). */
int jh_front_end_start(jh_front_end_t *f, const char *name, const char *log, const char *store,
                       const char *key_file, const char *conf);

/* Stops every server (SIGTERM, then SIGKILL); prints their logs if `dump`. */
void jh_nats_stop(jh_nats_t *c, bool dump);

#endif
