/* test_jetstream_harness.c: nats-server processes for the JetStream tests: configs in
 * a temp dir, free loopback ports, readiness by asking JetStream itself (never a sleep). */
#include "test_jetstream_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define JH_READY_MS 15000
#define JH_ASK_MS   500      /* one JetStream account-info request */
#define JH_START_TRIES 3     /* starts of the servers, each on fresh ports */

const char *jh_nats_server_bin(void)
{
    static char found[HN_PATH_MAX];
    static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/usr/local/bin",
                                        "/usr/local/sbin", "/sbin", "/bin" };
    const char *env = getenv("LIANGDI_NATS_SERVER");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    if (path) {
        char *copy = strdup(path), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
            snprintf(found, sizeof found, "%s/nats-server", d);
            if (access(found, X_OK) == 0) {
                free(copy);
                return found;
            }
        }
        free(copy);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(found, sizeof found, "%s/nats-server", dirs[i]);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

int jh_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0
        && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

bool jh_jetstream_ready(const char *urls, int timeout_ms)
{
    int64_t deadline = hn_now_ms() + timeout_ms;
    for (;;) {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsAccountInfo *ai = NULL;
        natsOptions *o = NULL;
        jsOptions jo;
        jsOptions_Init(&jo);
        /* asked before the cluster has a metadata leader, a request is never answered:
         * ask again soon rather than wait out libnats's 5 s */
        jo.Wait = JH_ASK_MS;
        bool ok = natsOptions_Create(&o) == NATS_OK
                  && natsOptions_SetURL(o, urls) == NATS_OK
                  && natsOptions_SetTimeout(o, 1000) == NATS_OK
                  && natsConnection_Connect(&nc, o) == NATS_OK
                  && natsConnection_JetStream(&js, nc, &jo) == NATS_OK
                  && js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
        jsAccountInfo_Destroy(ai);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
        if (ok)
            return true;
        if (hn_now_ms() >= deadline)
            return false;
        hn_poll_pause(100);
    }
}

int jh_stream_replicas(const char *urls, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, urls);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&si, js, stream, NULL, NULL);
    int replicas = -1;
    if (s == NATS_OK)
        replicas = (int)si->Config->Replicas;
    else
        fprintf(stderr, "jetstream harness: stream %s on %s: %s\n", stream, urls,
                natsStatus_GetText(s));
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return replicas;
}

/* Writes server i's config. */
static int jh_write_conf(jh_nats_t *c, size_t i)
{
    jh_server_t *s = &c->servers[i];
    FILE *f = fopen(s->conf, "w");
    if (!f) {
        fprintf(stderr, "jetstream harness: cannot write %s: %s\n", s->conf, strerror(errno));
        return -1;
    }
    fprintf(f, "server_name: %s\nlisten: 127.0.0.1:%d\n"
               "jetstream { store_dir: \"%s/%s\" }\n", s->name, s->port, c->dir, s->name);
    if (c->n > 1) {
        fprintf(f, "cluster {\n  name: liangdi\n  listen: 127.0.0.1:%d\n  routes: [\n",
                s->cluster_port);
        for (size_t k = 0; k < c->n; k++)
            if (k != i)
                fprintf(f, "    nats-route://127.0.0.1:%d\n", c->servers[k].cluster_port);
        fprintf(f, "  ]\n}\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int jh_launch(jh_nats_t *c, size_t i)
{
    jh_server_t *s = &c->servers[i];
    char log[HN_PATH_MAX + 16], name[64];
    const char *bin = jh_nats_server_bin();
    if (!bin)
        return -1;
    snprintf(log, sizeof log, "%s/%s.log", c->dir, s->name);
    snprintf(name, sizeof name, "nats-server %s", s->name);
    const char *argv[] = { bin, "-c", s->conf, NULL };
    size_t from = hn_file_size(log);      /* a restart appends to the same log */
    if (hn_proc_start_tied(&s->proc, name, log, argv) != 0)
        return -1;
    return hn_proc_wait_log(&s->proc, "Server is ready", from, JH_READY_MS, NULL, 0) ? 0 : -1;
}

/* One try of jh_nats_start in dir, on fresh ports; the logs are printed on failure
 * only if `dump`. */
static int jh_nats_try(jh_nats_t *c, const char *dir, size_t n, bool dump)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    c->n = n;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        jh_server_t *s = &c->servers[i];
        snprintf(s->name, sizeof s->name, "n%zu", i + 1);
        snprintf(s->conf, sizeof s->conf, "%s/%s.conf", dir, s->name);
        s->port = jh_free_port();
        s->cluster_port = n > 1 ? jh_free_port() : 0;
        if (s->port < 0 || (n > 1 && s->cluster_port < 0))
            return -1;
        snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
        len += (size_t)snprintf(c->urls + len, sizeof c->urls - len, "%s%s", i ? "," : "", s->url);
    }
    snprintf(c->store, sizeof c->store, "jetstream:%s", c->urls);
    for (size_t i = 0; i < n; i++)
        if (jh_write_conf(c, i) != 0)
            return -1;
    for (size_t i = 0; i < n; i++) {
        if (jh_launch(c, i) != 0) {
            jh_nats_stop(c, dump);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!jh_jetstream_ready(c->servers[i].url, JH_READY_MS)) {
            fprintf(stderr, "jetstream harness: JetStream did not answer on %s within %d ms\n",
                    c->servers[i].url, JH_READY_MS);
            jh_nats_stop(c, dump);
            return -1;
        }
    }
    return 0;
}

int jh_nats_start(jh_nats_t *c, const char *dir, size_t n)
{
    if (n == 0 || n > JH_SERVERS_MAX)
        return -1;
    /* A port found free may be taken by another test before its server binds it (the
     * suites run in parallel): then the cluster does not form, and it starts over on
     * other ports, in a folder of its own. */
    for (int attempt = 1; attempt <= JH_START_TRIES; attempt++) {
        char sub[HN_PATH_MAX - 32];         /* room for "/n1.conf" and the like */
        if (snprintf(sub, sizeof sub, "%s/nats%d", dir, attempt) >= (int)sizeof sub)
            return -1;
        if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "jetstream harness: cannot make %s: %s\n", sub, strerror(errno));
            return -1;
        }
        if (jh_nats_try(c, sub, n, attempt == JH_START_TRIES) == 0)
            return 0;
        if (attempt < JH_START_TRIES)
            fprintf(stderr, "jetstream harness: starting the servers again on other ports\n");
    }
    return -1;
}

int jh_nats_restart(jh_nats_t *c, size_t i)
{
    if (i >= c->n || jh_launch(c, i) != 0)
        return -1;
    return jh_jetstream_ready(c->servers[i].url, JH_READY_MS) ? 0 : -1;
}

void jh_nats_kill(jh_nats_t *c, size_t i)
{
    if (i < c->n)
        hn_proc_signal(&c->servers[i].proc, SIGKILL);
}

void jh_nats_stop(jh_nats_t *c, bool dump)
{
    for (size_t i = 0; i < c->n; i++) {
        hn_proc_stop(&c->servers[i].proc, 10000);
        if (dump)
            hn_proc_dump_log(&c->servers[i].proc);
    }
}

/* The liangdi-broker binary meson test names, or NULL (printed). */
static const char *jh_broker_bin(void)
{
    const char *bin = getenv("LIANGDI_BROKER_BIN");
    if (bin == NULL || *bin == '\0') {
        fprintf(stderr, "jetstream harness: $LIANGDI_BROKER_BIN is not set (run the tests "
                "with `meson test`)\n");
        return NULL;
    }
    return bin;
}

int jh_broker_cli(const char *store, char *out, size_t outsz, const char *const *args)
{
    const char *argv[24] = { jh_broker_bin() };
    size_t n = 1;
    if (argv[0] == NULL)
        return -1;
    for (size_t i = 0; args[i]; i++) {
        if (n >= 20)
            return -1;
        argv[n++] = args[i];
    }
    argv[n++] = "--store";
    argv[n++] = store;
    argv[n] = NULL;
    hn_result_t r;
    if (hn_run(&r, 60000, argv) != 0)
        return -1;
    if (out)
        snprintf(out, outsz, "%s", r.out);
    if (r.status != 0)
        fprintf(stderr, "liangdi-broker %s: exit %d: %s", args[0], r.status, r.err);
    int status = r.status;
    hn_result_free(&r);
    return status;
}

int jh_front_end_start(jh_front_end_t *f, const char *name, const char *log, const char *store,
                       const char *key_file, const char *conf)
{
    static const char ready[] = "ready, listening on ";
    char line[512], bind[128];
    const char *bin = jh_broker_bin();
    if (bin == NULL)
        return -1;
    snprintf(bind, sizeof bind, "%s", f->endpoint[0] ? f->endpoint : "tcp://127.0.0.1:*");
    size_t from = hn_file_size(log);
    const char *argv[] = { bin, "run", "--store", store, "--key-file", key_file, "--bind", bind,
                           conf ? "--config" : NULL, conf, NULL };
    if (hn_proc_start_tied(&f->proc, name, log, argv) != 0)
        return -1;
    if (!hn_proc_wait_log(&f->proc, ready, from, JH_READY_MS * 2, line, sizeof line)) {
        fprintf(stderr, "jetstream harness: %s did not start\n", name);
        hn_proc_dump_log(&f->proc);
        return -1;
    }
    const char *ep = strstr(line, ready) + strlen(ready);
    snprintf(f->endpoint, sizeof f->endpoint, "%.*s", (int)strcspn(ep, " \r\n"), ep);
    return 0;
}
