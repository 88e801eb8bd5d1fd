/* daemon.c: `liangdi daemon`: stays connected to the broker, pushes whenever the store
 * changes, fetches on Notify and on the interval, and reconnects with backoff.
 *
 * With several endpoints (front-ends of one broker store), a session whose front-end
 * refuses connections for FAILOVER_MS, falls silent or fails moves on to the next one,
 * after the same backoff; Welcome's pushed_upto and the cursor make that safe.
 *
 * Local writes come from other processes (the CLI), so the daemon watches the store:
 * SQLite's PRAGMA data_version changes on this connection whenever another connection
 * commits, and it is read every WATCH_MS.  Link drops are retried by libzmq itself
 * (1 s doubling to 60 s); a broker that holds the link but stops answering, or
 * refuses us, gets a new connection after the same backoff.  SIGTERM and SIGINT end
 * the loop between two steps; the socket closes with a bounded linger. */
#include "sync.h"
#include "conn.h"
#include "heap.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>

#define WATCH_MS                100
#define DAEMON_INTERVAL_DEFAULT 60000
#define DAEMON_TIMEOUT_DEFAULT  30000
#define BACKOFF_MIN_MS          1000
#define BACKOFF_MAX_MS          60000
#define FAILOVER_MS             3000    /* connections refused this long: next endpoint */
#define IDLE_RELEASE_MS         1000    /* this long without traffic: freed memory goes back */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static const nd_conn_opts_t daemon_conn_opts = {
    .reconnect_ivl_ms = BACKOFF_MIN_MS,
    .reconnect_ivl_max_ms = BACKOFF_MAX_MS,
    .heartbeat_ivl_ms = 5000,
    .linger_ms = 1000,
};

/* PRAGMA data_version of the store's connection, or -1 if it cannot be read. */
static int64_t data_version(nd_store_t *store)
{
    sqlite3_stmt *stmt = NULL;
    int64_t version = -1;
    int rc = sqlite3_prepare_v2(nd_store_db(store), "PRAGMA data_version", -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        ld_warn("reading PRAGMA data_version: %s", sqlite3_errmsg(nd_store_db(store)));
        goto out;
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        version = sqlite3_column_int64(stmt, 0);
    else
        ld_warn("reading PRAGMA data_version: %s", sqlite3_errmsg(nd_store_db(store)));
out:
    sqlite3_finalize(stmt);
    return version;
}

/* Sleeps ms, waking early for a stop signal. */
static void pause_ms(int ms)
{
    while (ms > 0 && stop_signal == 0) {
        int step = ms < WATCH_MS ? ms : WATCH_MS;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

typedef struct daemon_state {
    nd_store_t               *store;
    const nd_broker_config_t *cfg;
    int                       interval_ms;
    int                       timeout_ms;
    bool                      ready_logged;
    bool                      welcomed;    /* during the last session */
} daemon_state_t;

/* One connection's life: until a stop signal (0), or a failure that wants a new
 * connection (< 0, err set).  *move_on says the next endpoint should be tried. */
static int session(daemon_state_t *st, const char *endpoint, bool *move_on, ld_error_t *err)
{
    int rc = 0;
    bool activity = false;
    bool unreachable_logged = false;
    bool welcomed_here = false;      /* this session was welcomed before (a link came back) */
    int64_t last_traffic = -1;       /* ms of the last traffic; -1: none since memory was
                                      * last given back */

    *move_on = false;
    nd_conn_t *conn = nd_conn_new(st->store, endpoint, st->cfg->server_key, &st->cfg->keys,
                                  &daemon_conn_opts, err);
    if (conn == NULL)
        return err->code != 0 ? err->code : LD_EIO;
    nd_conn_push(conn);
    nd_conn_fetch(conn);

    int64_t version = data_version(st->store);
    int64_t now = nd_conn_now_ms();
    int64_t next_watch = now + WATCH_MS;
    int64_t next_fetch = now + st->interval_ms;

    while (stop_signal == 0) {
        int64_t wake = next_watch < next_fetch ? next_watch : next_fetch;
        nd_conn_event_t ev;
        rc = nd_conn_step(conn, wake, &ev, err);
        if (rc != 0)
            break;
        now = nd_conn_now_ms();

        if (ev == ND_CONN_WELCOMED || ev == ND_CONN_PUSHED || ev == ND_CONN_FETCHED
            || ev == ND_CONN_NOTIFIED)
            last_traffic = now;
        switch (ev) {
        case ND_CONN_WELCOMED:
            if (!st->ready_logged)
                ld_info("ready, synced with %s", endpoint);
            else
                ld_info("session with %s up again", endpoint);
            /* A Notify sent while the link was down was lost: a link that comes back
             * pushes and fetches whatever waits (the session's first did at its start). */
            if (welcomed_here) {
                nd_conn_push(conn);
                nd_conn_fetch(conn);
            }
            welcomed_here = true;
            st->ready_logged = true;
            st->welcomed = true;
            unreachable_logged = false;
            activity = true;
            break;
        case ND_CONN_LOST:
            ld_warn("lost the link to %s; reconnecting", endpoint);
            break;
        case ND_CONN_NOTIFIED:
            nd_conn_fetch(conn);
            break;
        case ND_CONN_FETCHED:
            /* Applying may have added changes of this node's own (a record passed on to
             * the branch a member has moved to): the store's own writes do not show in
             * its data_version. */
            nd_conn_push(conn);
            activity = true;
            break;
        case ND_CONN_PUSHED:
            activity = true;
            break;
        default:
            break;
        }

        if (now >= next_watch) {
            next_watch = now + WATCH_MS;
            int64_t v = data_version(st->store);
            if (v != version) {
                version = v;
                nd_conn_push(conn);
            }
        }
        if (now >= next_fetch) {
            next_fetch = now + st->interval_ms;
            nd_conn_push(conn);
            nd_conn_fetch(conn);
        }
        if (activity && nd_conn_welcomed(conn) && !nd_conn_pushing(conn)
            && !nd_conn_fetching(conn)) {
            activity = false;
            nd_conn_record_outcome(st->store, 0, NULL);
        }
        /* Idle a while after a round: what the batches used, and the store's cache,
         * go back to the kernel. */
        if (last_traffic >= 0 && !activity && now - last_traffic >= IDLE_RELEASE_MS) {
            last_traffic = -1;
            nd_store_shrink(st->store);
            ld_heap_release();
        }

        if (st->cfg->nendpoints > 1 && nd_conn_unreachable(conn, now, FAILOVER_MS)) {
            *move_on = true;
            rc = ld_error_set(err, LD_ETIMEOUT, "broker unreachable at %s (connections to it "
                              "fail)", endpoint);
            break;
        }
        int64_t silent = now - nd_conn_last_heard(conn);
        if (nd_conn_waiting(conn) && silent > st->timeout_ms) {
            rc = ld_error_set(err, LD_ETIMEOUT, "the broker at %s stopped answering (nothing within %d s)",
                              endpoint, (st->timeout_ms + 999) / 1000);
            break;
        }
        if (!nd_conn_welcomed(conn) && silent > st->timeout_ms) {
            if (st->cfg->nendpoints > 1) {
                *move_on = true;
                rc = ld_error_set(err, LD_ETIMEOUT, "broker unreachable at %s (no answer within %d s: %s)",
                                  endpoint, (st->timeout_ms + 999) / 1000, nd_conn_link_state(conn));
                break;
            }
            if (!unreachable_logged) {
                ld_warn("broker unreachable at %s (no answer within %d s: %s); still trying",
                        endpoint, (st->timeout_ms + 999) / 1000, nd_conn_link_state(conn));
                unreachable_logged = true;
            }
        }
    }
    if (rc != 0)
        nd_conn_set_linger(conn, 0);
    nd_conn_destroy(&conn);
    return rc;
}

/* Reads the keypair and the broker settings again before a new connection, so that
 * `liangdi key new` (after `node rekey` on the broker) and `liangdi broker set` take
 * effect without a restart.  What cannot be read leaves *cfg as it was, with a warning;
 * a new list of endpoints is tried from its first. */
static void reload_config(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                          nd_broker_config_t *cfg, size_t *ep)
{
    nd_broker_config_t fresh;
    ld_error_t err;
    if (nd_broker_config_load(store, db_path, opts != NULL ? opts->keyfile : NULL,
                                   opts != NULL ? opts->endpoints : NULL,
                                   opts != NULL ? opts->server_key : NULL, &fresh,
                                   &err) != 0) {
        ld_warn("reading the broker settings and keypair again: %s; keeping those in use",
                err.msg);
        return;
    }
    if (strcmp(fresh.keys.public_key, cfg->keys.public_key) != 0)
        ld_info("this node has a new key, %s: using it from now on", fresh.keys.public_key);
    bool same_list = fresh.nendpoints == cfg->nendpoints;
    for (size_t i = 0; same_list && i < fresh.nendpoints; i++)
        same_list = strcmp(fresh.endpoints[i], cfg->endpoints[i]) == 0;
    nd_broker_config_clear(cfg);
    *cfg = fresh;
    explicit_bzero(&fresh, sizeof fresh);   /* the secret key lives on in *cfg only */
    if (!same_list)                         /* `broker set` gave another list: its first */
        *ep = 0;
}

int nd_daemon_run(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                  ld_error_t *err)
{
    nd_broker_config_t cfg;
    struct sigaction old_term, old_int;
    int rc = nd_broker_config_load(store, db_path, opts != NULL ? opts->keyfile : NULL,
                                   opts != NULL ? opts->endpoints : NULL,
                                   opts != NULL ? opts->server_key : NULL, &cfg, err);
    if (rc != 0)
        return rc;

    daemon_state_t st = {
        .store = store,
        .cfg = &cfg,
        .interval_ms = opts != NULL && opts->interval_ms > 0 ? opts->interval_ms
                                                             : DAEMON_INTERVAL_DEFAULT,
        .timeout_ms = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms
                                                           : DAEMON_TIMEOUT_DEFAULT,
        .ready_logged = false,
        .welcomed = false,
    };

    /* No SA_RESTART: a signal must interrupt zmq_poll and nanosleep. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);

    ld_info("daemon starting: broker %s%s, fetch every %d ms", cfg.endpoints[0],
            cfg.nendpoints > 1 ? " (and others)" : "", st.interval_ms);
    size_t ep = 0;
    int backoff = BACKOFF_MIN_MS;
    bool first = true;
    while (stop_signal == 0) {
        ld_error_t serr;
        ld_error_clear(&serr);
        bool move_on = false;
        if (!first)
            reload_config(store, db_path, opts, &cfg, &ep);
        first = false;
        st.welcomed = false;
        int src = session(&st, cfg.endpoints[ep], &move_on, &serr);
        if (stop_signal != 0)
            break;
        if (src == LD_EINVAL) {
            /* A bad endpoint: retrying cannot help. */
            rc = ld_error_set(err, src, "%s", serr.msg);
            break;
        }
        if (st.welcomed)
            backoff = BACKOFF_MIN_MS;
        nd_conn_record_outcome(store, src != 0 ? src : LD_EIO, &serr);
        if (move_on || src != 0)
            ep = (ep + 1) % cfg.nendpoints;
        if (cfg.nendpoints > 1)
            ld_warn("%s; retrying in %d s with %s", serr.msg, backoff / 1000, cfg.endpoints[ep]);
        else
            ld_warn("%s; retrying in %d s", serr.msg, backoff / 1000);
        pause_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (stop_signal != 0)
        ld_info("stopping on signal %d", (int)stop_signal);

    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    nd_broker_config_clear(&cfg);
    return rc;
}
