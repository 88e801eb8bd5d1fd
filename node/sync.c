/* sync.c: `liangdi sync` and `liangdi status`'s probe: one round with the broker (push
 * the whole outbox, then fetch the whole mailbox), with a deadline on every wait.
 *
 * The timeout is a silence limit: the round fails when the broker has said nothing for
 * that long (unreachable, refusing the handshake, or gone quiet), not when a long
 * bootstrap simply takes longer than it.  A lost link within a round reconnects and
 * resumes where Welcome's pushed_upto and the stored cursor say.  With several
 * endpoints (front-ends of one broker store), the next is tried when one refuses
 * connections for FAILOVER_MS, falls silent, or fails; Welcome's pushed_upto and the
 * cursor make the round resume there without losing or repeating anything.  A broker
 * that answers with a failure of its own store is tried again within the timeout. */
#include "sync.h"
#include "conn.h"
#include "inbox.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYNC_TIMEOUT_MS_DEFAULT  30000
#define PROGRESS_EVERY_MS        250
#define FAILOVER_MS              2000    /* connections refused this long: next endpoint */
#define FAILOVER_LOOK_MS         250
#define RETRY_MIN_MS             250     /* a failing broker: first pause before again */
#define RETRY_MAX_MS             4000

static const nd_conn_opts_t sync_conn_opts = {
    .reconnect_ivl_ms = 100,
    .reconnect_ivl_max_ms = 2000,
    .heartbeat_ivl_ms = 2000,
    .linger_ms = 1000,
    /* A sync runs while a link is there: it takes a backlog first and applies it after. */
    .take_first = true,
};

static int timeout_of(const nd_sync_opts_t *opts)
{
    return opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : SYNC_TIMEOUT_MS_DEFAULT;
}

static void print_progress(nd_store_t *store, const nd_conn_t *conn, bool final)
{
    nd_conn_stats_t st;
    nd_conn_get_stats(conn, &st);
    uint64_t last = nd_store_last_seq(store);
    uint64_t acked = nd_store_pushed_upto(store);
    uint64_t total = st.pushed + (last > acked ? last - acked : 0);
    fprintf(stderr, "\rpushed %" PRIu64 "/%" PRIu64 ", fetched %" PRIu64 " (%" PRIu64 " left)%s",
            st.pushed, total, st.fetched, st.remaining, final ? "\n" : "   ");
    fflush(stderr);
}

/* The line shown while the inbox is applied: changes applied of those taken. */
typedef struct applying_line {
    int64_t next_ms;            /* when the line is shown again */
    bool    open;               /* shown, and not ended with a newline yet */
} applying_line_t;

static void print_applying(void *ctx, uint64_t applied, uint64_t waiting)
{
    applying_line_t *line = ctx;
    int64_t now = nd_conn_now_ms();
    bool done = applied >= waiting;
    if (!done && now < line->next_ms)
        return;
    line->next_ms = now + PROGRESS_EVERY_MS;
    line->open = !done;
    fprintf(stderr, "\rapplied %" PRIu64 "/%" PRIu64 " changes taken from the broker%s",
            applied, waiting, done ? "\n" : "   ");
    fflush(stderr);
}

/* Ends a line an apply that stopped short left open, before anything else is printed. */
static void end_applying(applying_line_t *line)
{
    if (line->open)
        fputc('\n', stderr);
    line->open = false;
}

/* The error for a round that heard nothing within its timeout. */
static int silence_error(const nd_conn_t *conn, int timeout_ms, ld_error_t *err)
{
    nd_conn_stats_t st;
    nd_conn_get_stats(conn, &st);
    if (st.welcomes == 0)
        return ld_error_set(err, LD_ETIMEOUT,
                            "broker unreachable at %s (no answer within %d s: %s)",
                            nd_conn_endpoint(conn), (timeout_ms + 999) / 1000,
                            nd_conn_link_state(conn));
    return ld_error_set(err, LD_ETIMEOUT, "the broker at %s stopped answering (nothing within %d s)",
                        nd_conn_endpoint(conn), (timeout_ms + 999) / 1000);
}

/* What a round should do: both directions, or only Hello. */
typedef enum { ROUND_SYNC, ROUND_PROBE } round_kind_t;

/* One round with one endpoint.  *welcomed tells the caller whether the broker there
 * answered at all.  With `others` (more endpoints to try), a broker that refuses
 * connections for FAILOVER_MS is given up without waiting out the timeout.  The
 * counts are added to *result. */
static int round_with(nd_store_t *store, const nd_broker_config_t *cfg, const char *endpoint,
                      const nd_sync_opts_t *opts, round_kind_t kind, bool others,
                      nd_sync_result_t *result, bool *welcomed, ld_error_t *err)
{
    int rc = 0;
    int timeout_ms = timeout_of(opts);
    bool progress = kind == ROUND_SYNC && opts != NULL && opts->progress;
    bool fetching = false;
    int64_t next_progress = 0;
    uint64_t conflicts_before = nd_store_conflict_count(store);

    *welcomed = false;
    nd_conn_opts_t conn_opts = sync_conn_opts;
    applying_line_t line = { 0 };
    if (progress) {
        conn_opts.applying = print_applying;
        conn_opts.applying_ctx = &line;
    }
    nd_conn_t *conn = nd_conn_new(store, endpoint, cfg->server_key, &cfg->keys, &conn_opts,
                                  err);
    if (conn == NULL)
        return err != NULL && err->code != 0 ? err->code : LD_EIO;

    for (;;) {
        int64_t now = nd_conn_now_ms();
        int64_t deadline = nd_conn_last_heard(conn) + timeout_ms;
        if (progress && now >= next_progress) {
            end_applying(&line);
            print_progress(store, conn, false);
            next_progress = now + PROGRESS_EVERY_MS;
        }
        int64_t wake = deadline;
        if (progress && next_progress < wake)
            wake = next_progress;
        if (others && now + FAILOVER_LOOK_MS < wake)
            wake = now + FAILOVER_LOOK_MS;

        nd_conn_event_t ev;
        rc = nd_conn_step(conn, wake, &ev, err);
        if (rc != 0)
            break;
        if (others && nd_conn_unreachable(conn, nd_conn_now_ms(), FAILOVER_MS)) {
            rc = ld_error_set(err, LD_ETIMEOUT, "broker unreachable at %s (connections to it "
                              "fail)", endpoint);
            break;
        }
        if (ev == ND_CONN_TIMEOUT && nd_conn_now_ms() >= nd_conn_last_heard(conn) + timeout_ms) {
            rc = silence_error(conn, timeout_ms, err);
            break;
        }
        if (ev == ND_CONN_WELCOMED) {
            if (!*welcomed) {
                ld_debug("welcomed by %s", endpoint);
                if (kind == ROUND_PROBE)
                    break;
                nd_conn_push(conn);
            }
            *welcomed = true;
        }
        if (!nd_conn_welcomed(conn))
            continue;
        /* Applying a batch may have added changes of this node's own (a record passed on
         * to the branch a member has moved to): they go in this round too. */
        if (ev == ND_CONN_FETCHED)
            nd_conn_push(conn);
        if (!fetching && !nd_conn_pushing(conn)) {
            fetching = true;
            nd_conn_fetch(conn);
        }
        if (fetching && !nd_conn_fetching(conn) && !nd_conn_pushing(conn))
            break;
    }

    end_applying(&line);
    if (progress && *welcomed)
        print_progress(store, conn, true);
    if (result != NULL) {
        nd_conn_stats_t st;
        nd_conn_get_stats(conn, &st);
        result->pushed += st.pushed;
        result->fetched += st.fetched;
        uint64_t conflicts_now = nd_store_conflict_count(store);
        result->conflicts += conflicts_now > conflicts_before ? conflicts_now - conflicts_before : 0;
    }
    if (rc != 0)
        nd_conn_set_linger(conn, 0);
    nd_conn_destroy(&conn);
    return rc;
}

/* Sleeps ms milliseconds (a signal may end it early). */
static void pause_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* One pass over the endpoints: the first that serves, or the error of the last. */
static int round_pass(nd_store_t *store, const nd_broker_config_t *cfg, const nd_sync_opts_t *opts,
                      round_kind_t kind, nd_sync_result_t *result, ld_error_t *err)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        bool welcomed = false;
        rc = round_with(store, cfg, cfg->endpoints[i], opts, kind, i + 1 < cfg->nendpoints,
                        result, &welcomed, err);
        /* Unreachable, silent or failing: the next front-end may serve; a refusal
         * (authentication, version, policy) would be the same on every one. */
        if (rc == 0 || (rc != LD_ETIMEOUT && rc != LD_EIO && rc != LD_EAGAIN))
            break;
        if (i + 1 < cfg->nendpoints)
            ld_warn("%s; trying %s", err != NULL ? err->msg : "broker unreachable",
                    cfg->endpoints[i + 1]);
    }
    return rc;
}

/* In a sync, a broker that answers but fails (its store refused or timed out:
 * LD_EAGAIN) is tried again, with a growing pause, until it has failed for as long as
 * the timeout allows with nothing done in between; each new pass resumes where the
 * broker's acks and the cursor say, so nothing is sent or applied twice. */
static int run_round(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                     round_kind_t kind, nd_sync_result_t *result, ld_error_t *err)
{
    nd_broker_config_t cfg;
    int rc = nd_broker_config_load(store, db_path, opts != NULL ? opts->keyfile : NULL,
                                   opts != NULL ? opts->endpoints : NULL,
                                   opts != NULL ? opts->server_key : NULL, &cfg, err);
    if (rc != 0)
        return rc;
    int64_t failing_since = 0;
    int pause = RETRY_MIN_MS;
    for (;;) {
        uint64_t done_before = result != NULL ? result->pushed + result->fetched : 0;
        rc = round_pass(store, &cfg, opts, kind, result, err);
        /* A probe has its answer: the broker is there, and failing. */
        if (rc != LD_EAGAIN || kind == ROUND_PROBE)
            break;
        int64_t now = nd_conn_now_ms();
        bool progressed = result != NULL && result->pushed + result->fetched > done_before;
        if (failing_since == 0 || progressed) {
            failing_since = now;
            pause = RETRY_MIN_MS;
        }
        if (now - failing_since + pause > timeout_of(opts))
            break;
        ld_warn("%s; trying again in %d ms", err != NULL ? err->msg : "the broker failed", pause);
        pause_ms(pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
    nd_broker_config_clear(&cfg);
    return rc;
}

int nd_sync_once(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                 nd_sync_result_t *result, ld_error_t *err)
{
    ld_error_t local;
    if (err == NULL)
        err = &local;
    ld_error_clear(err);
    if (result != NULL)
        memset(result, 0, sizeof *result);
    int rc = run_round(store, db_path, opts, ROUND_SYNC, result, err);
    /* What was taken is applied whatever became of the round (a timeout, a lost link,
     * a refusal): a failed sync leaves nothing waiting that it could apply.  A round
     * that failed keeps its own error; one that did not fails with the apply's. */
    ld_error_t aerr;
    ld_error_clear(&aerr);
    applying_line_t line = { 0 };
    bool progress = opts != NULL && opts->progress;
    int arc = nd_inbox_apply(store, progress ? print_applying : NULL, &line, NULL, &aerr);
    end_applying(&line);
    if (arc != 0 && rc == 0)
        rc = ld_error_set(err, arc, "%s", aerr.msg);
    else if (arc != 0)
        ld_warn("%s", aerr.msg);
    nd_conn_record_outcome(store, rc, err);
    return rc;
}

int nd_sync_probe(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                  ld_error_t *err)
{
    return run_round(store, db_path, opts, ROUND_PROBE, NULL, err);
}
