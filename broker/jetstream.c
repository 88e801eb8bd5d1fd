/* jetstream.c: the broker's one wrapper of libnats: connecting to a URL list with
 * endless reconnects, the JetStream context, streams and buckets made on init, and
 * libnats's status codes and last-error text turned into one LD_EIO line. */
#include "jetstream.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "store_spec.h"

#define JS_CONNECT_MS      2000
#define JS_RECONNECT_MS    250
#define JS_PING_MS         2000
#define JS_PINGS_OUT       2
#define JS_MAX_PENDING     65536      /* asynchronous publishes in flight */
#define JS_PLACE_WAIT_MS   20000      /* a new cluster may not have placed its peers yet */
#define JS_PLACE_PAUSE_MS  250

struct bk_js {
    natsConnection *nc;
    jsCtx          *js;
    char           *urls;     /* as shown in messages: passwords masked */
};

/* libnats is opened implicitly by the first connection; the last bk_js closed in the
 * process closes it again, so that a process ends with nothing of it left running. */
static pthread_mutex_t js_lib_lock = PTHREAD_MUTEX_INITIALIZER;
static int js_lib_users;

int bk_js_fail(ld_error_t *err, natsStatus s, jsErrCode jerr, const char *fmt, ...)
{
    char what[256];
    char code[48] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    natsStatus last_status = NATS_OK;
    const char *last = nats_GetLastError(&last_status);
    if (last_status != s)
        last = NULL;            /* the text of an earlier failure, not of this one */
    if (jerr != 0)
        snprintf(code, sizeof code, " (JetStream error %d)", (int)jerr);
    return ld_error_set(err, LD_EIO, "%s: %s%s%s%s", what, natsStatus_GetText(s), code,
                        last && *last ? ": " : "", last && *last ? last : "");
}

/* Splits a URL list into owned strings; *n of them.  0 or LD_EINVAL / LD_ENOMEM. */
static int js_split(const char *urls, char **out, int *n, ld_error_t *err)
{
    *n = 0;
    const char *p = urls;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (*n == BK_JS_URLS_MAX) {
            ld_error_set(err, LD_EINVAL, "jetstream: more than %d servers in '%s'",
                         BK_JS_URLS_MAX, urls);
            goto err;
        }
        out[*n] = strndup(p, len);
        if (!out[*n]) {
            ld_error_set(err, LD_ENOMEM, "out of memory");
            goto err;
        }
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
err:
    for (int i = 0; i < *n; i++)
        free(out[i]);
    *n = 0;
    return err ? err->code : LD_EINVAL;
}

/* True if `url` is nats://HOST:PORT with a port of 1..65535. */
static bool js_url_valid(const char *url)
{
    if (strncmp(url, "nats://", 7) != 0)
        return false;
    const char *host = url + 7;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    for (const char *h = host; h < colon; h++)
        if ((unsigned char)*h <= ' ' || *h == '/' || *h == ',' || (unsigned char)*h >= 0x7f)
            return false;
    const char *port = colon + 1;
    long value = 0;
    if (!*port || strlen(port) > 5)
        return false;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
        value = value * 10 + (*q - '0');
    }
    return value >= 1 && value <= 65535;
}

int bk_js_urls_check(const char *urls, ld_error_t *err)
{
    char *list[BK_JS_URLS_MAX];
    int n = 0;
    if (!urls || !*urls)
        return ld_error_set(err, LD_EINVAL, "jetstream: no server named (expected "
                            "nats://HOST:PORT[,nats://HOST:PORT...])");
    int rc = js_split(urls, list, &n, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        if (!js_url_valid(list[i]))
            rc = ld_error_set(err, LD_EINVAL, "jetstream: '%s' is not nats://HOST:PORT", list[i]);
    for (int i = 0; i < n; i++)
        free(list[i]);
    return rc;
}

static void js_on_disconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    if (!natsConnection_IsClosed(nc))
        ld_warn("jetstream: lost the link to a NATS server; reconnecting");
}

static void js_on_reconnected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    (void)closure;
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    ld_info("jetstream: reconnected to %s", url);
}

static void js_on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    ld_warn("jetstream: %s", natsStatus_GetText(s));
}

static void js_lib_release(void)
{
    pthread_mutex_lock(&js_lib_lock);
    if (js_lib_users > 0 && --js_lib_users == 0)
        nats_CloseAndWait(2000);
    pthread_mutex_unlock(&js_lib_lock);
}

bk_js_t *bk_js_new(const char *urls, jsPubAckHandler on_pub_ack, void *closure,
                   ld_error_t *err)
{
    char *list[BK_JS_URLS_MAX];
    int n = 0;
    natsOptions *opts = NULL;
    jsOptions jo;
    natsStatus s;
    bool counted = false;
    bk_js_t *self = NULL;

    if (bk_js_urls_check(urls, err) < 0)
        return NULL;
    self = calloc(1, sizeof *self);
    if (!self || !(self->urls = bk_store_shown(urls))) {
        ld_error_set(err, LD_ENOMEM, "out of memory connecting to NATS");
        goto err;
    }
    if (js_split(urls, list, &n, err) < 0)
        goto err;
    pthread_mutex_lock(&js_lib_lock);
    js_lib_users++;
    pthread_mutex_unlock(&js_lib_lock);
    counted = true;
    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, (const char **)list, n);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "liangdi-broker");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, JS_CONNECT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, JS_RECONNECT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(opts, JS_PING_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(opts, JS_PINGS_OUT);
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, js_on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, js_on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(opts, js_on_error, NULL);
    for (int i = 0; i < n; i++)
        free(list[i]);
    if (s != NATS_OK) {
        bk_js_fail(err, s, 0, "jetstream: connection options");
        goto err;
    }
    s = natsConnection_Connect(&self->nc, opts);
    if (s != NATS_OK) {
        bk_js_fail(err, s, 0, "jetstream: cannot connect to %s", self->urls);
        goto err;
    }
    jsOptions_Init(&jo);
    jo.Wait = BK_JS_WAIT_MS;
    jo.PublishAsync.MaxPending = JS_MAX_PENDING;
    /* every acknowledgement, not only the errors: a "duplicate" may be one of nothing */
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = closure;
    s = natsConnection_JetStream(&self->js, self->nc, &jo);
    if (s != NATS_OK) {
        bk_js_fail(err, s, 0, "jetstream: no JetStream context on %s", self->urls);
        goto err;
    }
    natsOptions_Destroy(opts);
    return self;
err:
    natsOptions_Destroy(opts);
    if (self && !counted) {
        free(self->urls);
        free(self);
        return NULL;
    }
    bk_js_destroy(&self);
    return NULL;
}

void bk_js_destroy(bk_js_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_js_t *self = *self_p;
    jsCtx_Destroy(self->js);
    if (self->nc) {
        natsConnection_Close(self->nc);
        natsConnection_Destroy(self->nc);
    }
    free(self->urls);
    free(self);
    *self_p = NULL;
    js_lib_release();
}

natsConnection *bk_js_conn(const bk_js_t *self)
{
    return self->nc;
}

jsCtx *bk_js_ctx(const bk_js_t *self)
{
    return self->js;
}

const char *bk_js_urls(const bk_js_t *self)
{
    return self->urls;
}

int bk_js_replicas(const bk_js_t *self)
{
    char **servers = NULL;
    int count = 0;
    if (natsConnection_GetServers(self->nc, &servers, &count) != NATS_OK)
        return 1;
    for (int i = 0; i < count; i++)
        free(servers[i]);
    free(servers);
    return count >= 3 ? 3 : 1;
}

/* True when a stream or bucket could not be read or made only because the cluster is
 * still forming (it has just started, or a server is rejoining): a request that timed
 * out, a system not available yet, or too few servers up to place the replicas.  Then,
 * after JS_PLACE_PAUSE_MS, it is worth asking again, until *waited_ms reaches
 * JS_PLACE_WAIT_MS. */
static bool cluster_forming(natsStatus s, jsErrCode jerr, int *waited_ms)
{
    if (s == NATS_OK || s == NATS_NOT_FOUND || *waited_ms >= JS_PLACE_WAIT_MS)
        return false;
    const char *last = nats_GetLastError(NULL);
    /* the key-value calls give no JetStream error code, only its text */
    bool forming = s == NATS_TIMEOUT || jerr == JSClusterNoPeersErr ||
                   jerr == JSClusterNotAvailErr ||
                   (last != NULL && (strstr(last, "no suitable peers") != NULL ||
                                     strstr(last, "JetStream system temporarily unavailable")
                                     != NULL));
    if (!forming)
        return false;
    struct timespec pause = { 0, JS_PLACE_PAUSE_MS * 1000000L };
    nanosleep(&pause, NULL);           /* retry: the cluster is still forming */
    *waited_ms += JS_PLACE_PAUSE_MS;
    return true;
}

int bk_js_stream(bk_js_t *self, jsStreamConfig *cfg, bool create, ld_error_t *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    bool made = false;
    int waited = 0;
    cfg->Replicas = bk_js_replicas(self);
    do {
        jerr = 0;
        s = js_GetStreamInfo(&si, self->js, cfg->Name, NULL, &jerr);
        if (s == NATS_NOT_FOUND && create) {
            jerr = 0;
            s = js_AddStream(&si, self->js, cfg, NULL, &jerr);
            made = s == NATS_OK;
        }
    } while (cluster_forming(s, jerr, &waited));
    if (s == NATS_NOT_FOUND)
        return ld_error_set(err, LD_ENOTFOUND, "jetstream: no stream %s on %s (run "
                            "`liangdi-broker init --store jetstream:%s` first)", cfg->Name,
                            self->urls, self->urls);
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "jetstream: cannot %s stream %s (%d replicas) on %s",
                          create ? "read or make" : "read", cfg->Name, (int)cfg->Replicas,
                          self->urls);
    jsStreamInfo_Destroy(si);
    if (made)
        ld_info("jetstream: made stream %s with %d replicas", cfg->Name, (int)cfg->Replicas);
    return 0;
}

int bk_js_kv(bk_js_t *self, const char *bucket, bool create, kvStore **kv, ld_error_t *err)
{
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket;
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = bk_js_replicas(self);
    natsStatus s;
    bool made = false;
    int waited = 0;
    do {
        *kv = NULL;
        s = js_KeyValue(kv, self->js, bucket);
        if (s == NATS_NOT_FOUND && create) {
            s = js_CreateKeyValue(kv, self->js, &cfg);
            made = s == NATS_OK;
        }
    } while (cluster_forming(s, 0, &waited));
    if (s == NATS_NOT_FOUND)
        return ld_error_set(err, LD_ENOTFOUND, "jetstream: no bucket %s on %s (run "
                            "`liangdi-broker init --store jetstream:%s` first)", bucket,
                            self->urls, self->urls);
    if (s != NATS_OK)
        return bk_js_fail(err, s, 0, "jetstream: cannot %s bucket %s (%d replicas) on %s",
                          create ? "open or make" : "open", bucket, cfg.Replicas, self->urls);
    if (made)
        ld_info("jetstream: made bucket %s with %d replicas", bucket, cfg.Replicas);
    return 0;
}

bool bk_js_token(const char *id, char *out, size_t size)
{
    size_t len = strlen(id);
    if (len == 0 || len >= size)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = id[i] == '.' ? '=' : id[i];
    out[len] = '\0';
    return true;
}

void bk_js_untoken(char *token)
{
    for (char *p = token; *p; p++)
        if (*p == '=')
            *p = '.';
}
