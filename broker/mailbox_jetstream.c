/* mailbox_jetstream.c: the replicated mailbox store: the broker's mailboxes in one NATS
 * JetStream stream, so that several broker front-ends serve the same nodes.
 *
 * The layout.  A node's mailbox is the subject liangdi.mailbox.<node> of the stream
 * LIANGDI_MAILBOX (file storage, three replicas in a cluster, never discarding); a
 * position is the entry's stream sequence, so positions in a mailbox only grow, and
 * are shared by every front-end.  The origins' high-water marks are the key-value
 * bucket LIANGDI_HIGHWATER (origin -> seq), raised by compare-and-set.
 *
 * A push.  Every new change goes to each of its mailboxes as an asynchronous publish
 * carrying Nats-Msg-Id "<origin>:<seq>:<node>"; the push succeeds only when JetStream
 * has acknowledged every one of them, and only then is the mark raised.  A push that
 * failed half way has stored some entries and not raised the mark; the node pushes the
 * same changes again, and the stream's duplicate window (ten minutes) drops what it
 * already holds.  Two front-ends storing the same changes of one origin at once are
 * harmless the same way, and the mark never moves backwards (a failed compare-and-set
 * re-reads it and keeps the higher value).
 *
 * A fetch is an ephemeral pull consumer on the mailbox's subject starting after the
 * cursor, asked for at most `credit` entries and deleted afterwards (fast, and read
 * from the stream's leader).  With a server of the cluster down, the cluster may place
 * such a consumer on it and never answer: then, for a while, fetches read entry by
 * entry with direct gets, which any replica answers and which create nothing (slower;
 * a replica a moment behind may end a fetch early, and the rest comes with the next).
 * A fetch takes entries only while the consumer's deliveries come without a gap, so an
 * entry lost on the way is read again, never skipped.  An ack purges the subject below
 * the acked position.  Depth is the subject's message count.
 *
 * Mailboxes grown by one front-end are announced on liangdi.grown to the others, so
 * each can Notify the nodes connected to it. */
#include "mailbox.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "jetstream.h"
#include "log.h"
#include "text.h"

#define MJ_STREAM          "LIANGDI_MAILBOX"
#define MJ_PREFIX          "liangdi.mailbox."
#define MJ_SUBJECTS        "liangdi.mailbox.>"
#define MJ_HW_BUCKET       "LIANGDI_HIGHWATER"
#define MJ_GROWN_SUBJECT   "liangdi.grown"
#define MJ_DUP_WINDOW_NS   (10LL * 60LL * 1000000000LL)
#define MJ_ACK_WAIT_MS     10000      /* every publish of a push acknowledged within this */
#define MJ_CONSUMER_WAIT_MS 1000      /* a fetch's consumer made and delivering within this */
#define MJ_CONSUMER_PAUSE_MS 30000    /* ... or fetches read by direct get this long */
#define MJ_CONSUMER_IDLE_NS (30LL * 1000000000LL)
#define MJ_CAS_TRIES       16
#define MJ_SUBJECT_MAX     (sizeof MJ_PREFIX + LD_ID_MAX + 1)
#define MJ_MSGID_MAX       (2 * LD_ID_MAX + 32)
#define MJ_GROWN_MAX       65536      /* nodes waiting to be told, at most */
#define MJ_GROWN_BODY      (32 * 1024)

typedef struct mj_store {
    bk_js_t          *js;
    kvStore          *hw;
    natsSubscription *grown_sub;
    char             *instance;        /* this front-end's name on liangdi.grown */
    atomic_uint       pub_failures;    /* refused publishes since the push began */
    bool              published;       /* an asynchronous publish was made */
    uint64_t          floor;           /* positions given from now on are above it */
    int64_t           consumers_back_ms;   /* fetch by consumer again from then on */
    int               pipe_rd, pipe_wr;
    pthread_mutex_t   lock;            /* guards grown[] */
    bool              lock_made;
    char            **grown;           /* owned node ids announced by other front-ends */
    size_t            ngrown, grown_cap;
} mj_store_t;

/* ---- small helpers ---- */

static int64_t mj_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool mj_subject(const char *node, char out[MJ_SUBJECT_MAX])
{
    size_t plen = strlen(MJ_PREFIX);
    memcpy(out, MJ_PREFIX, plen);
    return bk_js_token(node, out + plen, MJ_SUBJECT_MAX - plen);
}

/* Every asynchronous publish's answer.  A failure counts against the push; so does a
 * "duplicate" of sequence 0.  Older nats-servers (fixed in 2.11: nats-server pull
 * requests 6415 and 6486) stage a Nats-Msg-Id with sequence 0 before proposing the
 * message, and a proposal a leader change drops leaves it there for the duplicate
 * window: the push repeated after the failover is then called a duplicate of an entry
 * the stream never stored.  Taken as stored, it would raise the mark past entries that
 * are in no mailbox, and their node would never receive them; as a failure, the node
 * pushes again until the stream stores them (or another front-end's push has). */
static void mj_on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                          void *closure)
{
    mj_store_t *self = closure;
    (void)js;
    if (pae != NULL) {
        if (atomic_fetch_add(&self->pub_failures, 1) == 0)
            ld_warn("jetstream: a mailbox write was not stored: %s%s%s",
                    natsStatus_GetText(pae->Err), pae->ErrText ? ": " : "",
                    pae->ErrText ? pae->ErrText : "");
    } else if (pa != NULL && pa->Duplicate && pa->Sequence == 0) {
        if (atomic_fetch_add(&self->pub_failures, 1) == 0)
            ld_warn("jetstream: a mailbox write on %s was called a duplicate of an entry "
                    "the stream never stored (sequence 0)",
                    msg ? natsMsg_GetSubject(msg) : "?");
    }
    natsMsg_Destroy(msg);
}

/* Drops the publishes still waiting for an acknowledgement, so that no late answer
 * is counted against the next push.  (libnats 3.4 must not be asked before the first
 * asynchronous publish.) */
static void mj_drop_pending(mj_store_t *self)
{
    natsMsgList pending = { 0 };
    if (!self->published)
        return;
    if (js_PublishAsyncGetPendingList(&pending, bk_js_ctx(self->js)) == NATS_OK)
        natsMsgList_Destroy(&pending);
}

/* ---- the high-water marks ---- */

/* The mark of `origin` and the revision it has in the bucket (0, 0: never pushed).
 * Read from the stream's leader (a stream message get), not with the bucket's own get:
 * that one is a direct get, which any replica of a three-server cluster may answer
 * before it has the mark the last push raised, so that the next push of the same node
 * would look as if it skipped ahead. */
static int mj_hw_get(mj_store_t *self, const char *origin, uint64_t *seq, uint64_t *rev,
                     ld_error_t *err)
{
    char key[LD_ID_MAX + 1], subject[LD_ID_MAX + 64], text[24];
    natsMsg *msg = NULL;
    const char *op = NULL;
    if (!bk_js_token(origin, key, sizeof key))
        return ld_error_set(err, LD_EINVAL, "'%s' is not a node id", origin);
    snprintf(subject, sizeof subject, "$KV.%s.%s", MJ_HW_BUCKET, key);
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&msg, bk_js_ctx(self->js), "KV_" MJ_HW_BUCKET, subject, NULL,
                                 &jerr);
    *seq = 0;
    *rev = 0;
    if (s == NATS_NOT_FOUND)
        return 0;
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "reading the high-water mark of %s", origin);
    int rc = 0;
    int len = natsMsg_GetDataLength(msg);
    *rev = natsMsg_GetSequence(msg);
    if (natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK) {
        /* a deleted or purged mark: none, but the next write must follow it */
    } else if (len <= 0 || len >= (int)sizeof text) {
        rc = ld_error_set(err, LD_EIO, "the high-water mark of %s is not a number", origin);
    } else {
        char *end = NULL;
        memcpy(text, natsMsg_GetData(msg), (size_t)len);
        text[len] = '\0';
        *seq = strtoull(text, &end, 10);
        if (!end || *end)
            rc = ld_error_set(err, LD_EIO, "the high-water mark of %s is '%s', not a number",
                              origin, text);
    }
    natsMsg_Destroy(msg);
    return rc;
}

/* Raises the mark of `origin` to `seq` from revision `rev`, re-reading on a conflict
 * and keeping whichever mark is higher.  *upto is the mark afterwards. */
static int mj_hw_raise(mj_store_t *self, const char *origin, uint64_t seq, uint64_t rev,
                       uint64_t *upto, ld_error_t *err)
{
    char key[LD_ID_MAX + 1], text[24];
    if (!bk_js_token(origin, key, sizeof key))
        return ld_error_set(err, LD_EINVAL, "'%s' is not a node id", origin);
    int len = snprintf(text, sizeof text, "%llu", (unsigned long long)seq);
    for (int tries = 0; tries < MJ_CAS_TRIES; tries++) {
        uint64_t written = 0, now = 0;
        natsStatus s = rev == 0 ? kvStore_Create(&written, self->hw, key, text, len)
                                : kvStore_Update(&written, self->hw, key, text, len, rev);
        if (s == NATS_OK) {
            *upto = seq;
            return 0;
        }
        ld_debug("raising the mark of %s to %llu: %s; reading it again", origin,
                 (unsigned long long)seq, natsStatus_GetText(s));
        int rc = mj_hw_get(self, origin, &now, &rev, err);
        if (rc < 0)
            return rc;
        if (now >= seq) {
            *upto = now;
            return 0;
        }
    }
    return ld_error_set(err, LD_EIO, "could not raise the high-water mark of %s to %llu "
                        "after %d tries", origin, (unsigned long long)seq, MJ_CAS_TRIES);
}

/* ---- telling the other front-ends ---- */

static int mj_cmp_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Announces the mailboxes a push grew: "<instance>\n<node>\n<node>..." in messages of
 * at most MJ_GROWN_BODY bytes.  Best effort: a node not told still fetches on its timer. */
static void mj_announce(mj_store_t *self, const bk_push_item_t *items, size_t n,
                        uint64_t hw_before)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].seq > hw_before)
            total += items[i].nto;
    if (total == 0)
        return;
    const char **nodes = malloc(total * sizeof *nodes);
    char *body = malloc(MJ_GROWN_BODY);
    if (!nodes || !body)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; items[i].seq > hw_before && j < items[i].nto; j++)
            nodes[k++] = items[i].to[j];
    if (k > 1)
        qsort(nodes, k, sizeof *nodes, mj_cmp_text);
    size_t head = (size_t)snprintf(body, MJ_GROWN_BODY, "%s\n", self->instance);
    size_t len = head;
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && strcmp(nodes[i], nodes[i - 1]) == 0)
            continue;
        size_t nlen = strlen(nodes[i]);
        if (len + nlen + 1 > MJ_GROWN_BODY) {
            natsConnection_Publish(bk_js_conn(self->js), MJ_GROWN_SUBJECT, body, (int)len);
            len = head;
        }
        memcpy(body + len, nodes[i], nlen);
        body[len + nlen] = '\n';
        len += nlen + 1;
    }
    if (len > head)
        natsConnection_Publish(bk_js_conn(self->js), MJ_GROWN_SUBJECT, body, (int)len);
out:
    free(nodes);
    free(body);
}

/* On a libnats thread: queues the nodes another front-end announced and wakes the
 * server through the pipe. */
static void mj_on_grown(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    mj_store_t *self = closure;
    (void)nc;
    (void)sub;
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    size_t ilen = strlen(self->instance);
    bool queued = false;
    bool own = data && len > (int)ilen && memcmp(data, self->instance, ilen) == 0
               && data[ilen] == '\n';
    if (data && len > 0 && !own) {
        const char *end = data + len;
        const char *nl = memchr(data, '\n', (size_t)len);
        const char *p = nl ? nl + 1 : end;     /* after the sender's name line */
        pthread_mutex_lock(&self->lock);
        while (p < end) {
            nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            char id[LD_ID_MAX + 1];
            if (n > 0 && n <= LD_ID_MAX) {
                memcpy(id, p, n);
                id[n] = '\0';
                if (ld_id_valid(id) && self->ngrown < MJ_GROWN_MAX) {
                    if (self->ngrown == self->grown_cap) {
                        size_t cap = self->grown_cap ? self->grown_cap * 2 : 64;
                        char **grown = realloc(self->grown, cap * sizeof *grown);
                        if (grown) {
                            self->grown = grown;
                            self->grown_cap = cap;
                        }
                    }
                    if (self->ngrown < self->grown_cap
                        && (self->grown[self->ngrown] = strdup(id)) != NULL) {
                        self->ngrown++;
                        queued = true;
                    }
                }
            }
            p = nl ? nl + 1 : end;
        }
        pthread_mutex_unlock(&self->lock);
    }
    if (queued && write(self->pipe_wr, "g", 1) < 0) {
        /* the pipe is full: the server has a wake-up waiting already */
    }
    natsMsg_Destroy(msg);
}

static int mj_grown_fd(void *store)
{
    return ((mj_store_t *)store)->pipe_rd;
}

static int mj_take_grown(void *store, bk_grown_fn fn, void *ctx, ld_error_t *err)
{
    mj_store_t *self = store;
    char drain[256];
    (void)err;
    while (read(self->pipe_rd, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&self->lock);
    char **grown = self->grown;
    size_t n = self->ngrown;
    self->grown = NULL;
    self->ngrown = 0;
    self->grown_cap = 0;
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < n; i++) {
        fn(ctx, grown[i]);
        free(grown[i]);
    }
    free(grown);
    return 0;
}

/* ---- open and close ---- */

static void mj_close(void **store_p)
{
    if (!store_p || !*store_p)
        return;
    mj_store_t *self = *store_p;
    if (self->grown_sub) {
        /* a callback under way finishes before the store goes */
        if (natsSubscription_Drain(self->grown_sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(self->grown_sub, 2000);
        natsSubscription_Destroy(self->grown_sub);
    }
    if (self->js)
        mj_drop_pending(self);
    if (self->hw)
        kvStore_Destroy(self->hw);
    bk_js_destroy(&self->js);
    natsInbox_Destroy(self->instance);
    if (self->pipe_rd >= 0)
        close(self->pipe_rd);
    if (self->pipe_wr >= 0)
        close(self->pipe_wr);
    for (size_t i = 0; i < self->ngrown; i++)
        free(self->grown[i]);
    free(self->grown);
    if (self->lock_made)
        pthread_mutex_destroy(&self->lock);
    free(self);
    *store_p = NULL;
}

static void *mj_open(const char *urls, bool create, ld_error_t *err)
{
    int fds[2];
    jsStreamConfig sc;
    const char *subjects[] = { MJ_SUBJECTS };
    mj_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening the mailbox store");
        return NULL;
    }
    self->pipe_rd = self->pipe_wr = -1;
    atomic_init(&self->pub_failures, 0);
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        ld_error_set(err, LD_ENOMEM, "cannot make a mutex");
        goto err;
    }
    self->lock_made = true;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        ld_error_set(err, LD_EIO, "cannot make a pipe for mailbox announcements");
        goto err;
    }
    self->pipe_rd = fds[0];
    self->pipe_wr = fds[1];
    self->js = bk_js_new(urls, mj_on_pub_ack, self, err);
    if (!self->js)
        goto err;
    jsStreamConfig_Init(&sc);
    sc.Name = MJ_STREAM;
    sc.Description = "liangdi broker mailboxes: one subject per node";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Discard = js_DiscardNew;          /* full: refuse new writes, never drop old ones */
    sc.Duplicates = MJ_DUP_WINDOW_NS;
    sc.DenyDelete = true;
    sc.AllowDirect = true;               /* fetches read by direct get */
    if (bk_js_stream(self->js, &sc, create, err) < 0
        || bk_js_kv(self->js, MJ_HW_BUCKET, create, &self->hw, err) < 0)
        goto err;
    natsStatus s = natsInbox_Create(&self->instance);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&self->grown_sub, bk_js_conn(self->js), MJ_GROWN_SUBJECT,
                                     mj_on_grown, self);
    if (s == NATS_OK)   /* the server has the subscription before anything is announced */
        s = natsConnection_FlushTimeout(bk_js_conn(self->js), BK_JS_WAIT_MS);
    if (s != NATS_OK) {
        bk_js_fail(err, s, 0, "jetstream: subscribing to %s", MJ_GROWN_SUBJECT);
        goto err;
    }
    return self;
err:
    {
        void *p = self;
        mj_close(&p);
    }
    return NULL;
}

/* ---- the operations ---- */

static int mj_push_batch(void *store, const char *origin, const bk_push_item_t *items,
                         size_t n, uint64_t *upto, size_t *stored, ld_error_t *err)
{
    mj_store_t *self = store;
    jsCtx *js = bk_js_ctx(self->js);
    uint64_t hw = 0, rev = 0, expect;
    size_t nstored = 0, nwrites = 0;
    int rc = mj_hw_get(self, origin, &hw, &rev, err);
    if (rc < 0)
        return rc;
    /* Every check before the first write: a refused push writes nothing. */
    expect = hw;
    for (size_t i = 0; i < n; i++) {
        if (items[i].seq <= expect)
            continue;            /* already stored: a repeated push */
        if (items[i].seq != expect + 1)
            return ld_error_set(err, LD_EINVAL, "change seq %llu of %s skips ahead of %llu",
                                (unsigned long long)items[i].seq, origin,
                                (unsigned long long)expect);
        expect = items[i].seq;
        nstored++;
    }
    if (nstored == 0) {
        *upto = hw;
        *stored = 0;
        return 0;
    }
    atomic_store(&self->pub_failures, 0);
    for (size_t i = 0; i < n; i++) {
        const bk_push_item_t *it = &items[i];
        if (it->seq <= hw)
            continue;
        for (size_t j = 0; j < it->nto; j++) {
            char subject[MJ_SUBJECT_MAX], msgid[MJ_MSGID_MAX];
            jsPubOptions po;
            if (!mj_subject(it->to[j], subject) || it->len > (size_t)INT32_MAX) {
                rc = ld_error_set(err, LD_EINVAL, "cannot address mailbox '%s'", it->to[j]);
                goto err;
            }
            snprintf(msgid, sizeof msgid, "%s:%llu:%s", origin, (unsigned long long)it->seq,
                     it->to[j]);
            jsPubOptions_Init(&po);
            po.MsgId = msgid;
            natsStatus s = js_PublishAsync(js, subject, it->body, (int)it->len, &po);
            self->published = true;
            if (s != NATS_OK) {
                rc = bk_js_fail(err, s, 0, "storing change %llu of %s for %s",
                                (unsigned long long)it->seq, origin, it->to[j]);
                goto err;
            }
            nwrites++;
        }
    }
    if (nwrites > 0) {
        jsPubOptions co;
        jsPubOptions_Init(&co);
        co.MaxWait = MJ_ACK_WAIT_MS;
        natsStatus s = js_PublishAsyncComplete(js, &co);
        if (s != NATS_OK) {
            rc = bk_js_fail(err, s, 0, "not every one of %zu mailbox writes was acknowledged "
                            "within %d ms", nwrites, MJ_ACK_WAIT_MS);
            goto err;
        }
        unsigned failed = atomic_load(&self->pub_failures);
        if (failed > 0) {
            rc = ld_error_set(err, LD_EIO, "JetStream refused %u of %zu mailbox writes", failed,
                              nwrites);
            goto err;
        }
    }
    rc = mj_hw_raise(self, origin, expect, rev, upto, err);
    if (rc < 0)
        return rc;
    *stored = nstored;
    mj_announce(self, items, n, hw);
    return 0;
err:
    mj_drop_pending(self);
    return rc;
}

/* The number of entries in a mailbox (its subject's message count, from the stream's
 * leader). */
static int mj_count(mj_store_t *self, const char *node, const char *subject, uint64_t *count,
                    ld_error_t *err)
{
    jsOptions o;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = subject;
    natsStatus s = js_GetStreamInfo(&si, bk_js_ctx(self->js), MJ_STREAM, &o, &jerr);
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "reading the depth of the mailbox of %s", node);
    *count = 0;
    for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++)
        if (strcmp(si->State.Subjects->List[i].Subject, subject) == 0)
            *count = si->State.Subjects->List[i].Msgs;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Of a consumer's message: its stream sequence, the count pending after it, and its
 * delivery number (1 for the consumer's first, 2 for its second...). */
static int mj_meta(natsMsg *msg, uint64_t *position, uint64_t *pending, uint64_t *delivery,
                   ld_error_t *err)
{
    jsMsgMetaData *md = NULL;
    natsStatus s = natsMsg_GetMetaData(&md, msg);
    if (s != NATS_OK)
        return bk_js_fail(err, s, 0, "reading a mailbox entry's position");
    *position = md->Sequence.Stream;
    *pending = md->NumPending;
    *delivery = md->Sequence.Consumer;
    jsMsgMetaData_Destroy(md);
    return 0;
}

/* The fast way: an ephemeral pull consumer on the subject, starting after the cursor,
 * asked for at most `credit` entries (read from the stream's leader) and deleted
 * afterwards.  *used is false when no consumer could be had in MJ_CONSUMER_WAIT_MS, or
 * it delivered nothing it announced: then nothing was taken, and the caller reads
 * another way.
 *
 * Deliveries can be lost on the way (the server relaying them dies): the consumer does
 * not resend (it asks for no acks), and what comes after a lost one must not be taken,
 * or the node's cursor would pass the lost entry and the next ack purge it.  So the
 * entries are taken only while their delivery numbers run 1, 2, 3...; at the first gap
 * the fetch ends, and the next one starts again after the last entry taken (or, when
 * the first delivery is the one lost, this one reads another way). */
static int mj_fetch_consumer(mj_store_t *self, const char *node, const char *subject,
                             uint64_t after, uint32_t credit, bk_fetch_fn fn, void *ctx,
                             uint64_t *remaining, bool *used, ld_error_t *err)
{
    jsCtx *js = bk_js_ctx(self->js);
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    natsSubscription *sub = NULL;
    natsMsgList list = { 0 };
    jsOptions quick;
    jsErrCode jerr = 0;
    int taken = 0, rc = 0;

    *used = false;
    jsOptions_Init(&quick);
    quick.Wait = MJ_CONSUMER_WAIT_MS;
    jsConsumerConfig_Init(&cc);
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = after + 1;
    cc.AckPolicy = js_AckNone;
    cc.FilterSubject = subject;
    cc.MemoryStorage = true;
    cc.Replicas = 1;
    cc.InactiveThreshold = MJ_CONSUMER_IDLE_NS;
    natsStatus s = js_AddConsumer(&ci, js, MJ_STREAM, &cc, &quick, &jerr);
    if (s != NATS_OK) {
        ld_debug("jetstream: no consumer for the mailbox of %s: %s", node,
                 natsStatus_GetText(s));
        return 0;
    }
    uint64_t pending = ci->NumPending;
    *remaining = pending;
    if (credit == 0 || pending == 0) {
        *used = true;
        goto out;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = MJ_STREAM;
    so.Consumer = ci->Name;
    so.Config.MemoryStorage = true;
    s = js_PullSubscribe(&sub, js, subject, NULL, &quick, &so, &jerr);
    if (s != NATS_OK)
        goto out;
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = (int)(credit < pending ? credit : pending);
    fr.Expires = (int64_t)MJ_CONSUMER_WAIT_MS * 1000000;
    s = natsSubscription_FetchRequest(&list, sub, &fr);
    if ((s != NATS_OK && s != NATS_TIMEOUT) || list.Count == 0)
        goto out;                       /* announced, not delivered: read another way */
    *used = true;
    *remaining = 0;
    uint64_t last_pending = 0, delivery = 0;
    int i = 0;
    for (; i < list.Count; i++) {
        uint64_t position = 0, before = last_pending;
        rc = mj_meta(list.Msgs[i], &position, &last_pending, &delivery, err);
        if (rc < 0)
            goto out;
        if (delivery != (uint64_t)i + 1) {
            ld_warn("jetstream: the mailbox of %s delivered entry %llu as number %llu, not "
                    "%d: deliveries were lost; taking only the %d before it", node,
                    (unsigned long long)position, (unsigned long long)delivery, i + 1, i);
            if (i == 0) {
                *used = false;          /* nothing taken: read another way */
                *remaining = pending;
                goto out;
            }
            /* what was pending after the last entry taken: the lost ones and the rest */
            *remaining = before > 0 ? before : 1;
            goto out;
        }
        if (position <= after)
            continue;
        int took = fn(ctx, position, (const uint8_t *)natsMsg_GetData(list.Msgs[i]),
                      (size_t)natsMsg_GetDataLength(list.Msgs[i]));
        if (took < 0) {
            rc = ld_error_set(err, took, "fetch of %s stopped at position %llu", node,
                              (unsigned long long)position);
            goto out;
        }
        if (took > 0)
            break;
        taken++;
    }
    if (i < list.Count) {
        /* stopped early: what was delivered but not taken, and what is after it */
        uint64_t position = 0;
        rc = mj_meta(list.Msgs[list.Count - 1], &position, &last_pending, &delivery, err);
        if (rc < 0)
            goto out;
        *remaining = (uint64_t)(list.Count - i) + last_pending;
    } else {
        *remaining = last_pending;
    }
out:
    natsMsgList_Destroy(&list);
    if (sub)
        natsSubscription_Destroy(sub);
    if (ci) {
        jerr = 0;
        s = js_DeleteConsumer(js, MJ_STREAM, ci->Name, &quick, &jerr);
        if (s != NATS_OK)
            ld_debug("jetstream: consumer %s not deleted (it expires by itself): %s", ci->Name,
                     natsStatus_GetText(s));
        jsConsumerInfo_Destroy(ci);
    }
    return rc < 0 ? rc : taken;
}

/* The way that always works: entries one by one with direct gets ("the next message of
 * this subject from this sequence on"), which any replica answers and which leave
 * nothing behind on the servers.  A replica a moment behind may end the fetch early. */
static int mj_fetch_direct(mj_store_t *self, const char *node, const char *subject,
                           uint64_t after, uint32_t credit, bk_fetch_fn fn, void *ctx,
                           uint64_t *remaining, ld_error_t *err)
{
    uint64_t count = 0, next = after + 1;
    int taken = 0;
    bool ended = false;           /* the mailbox has nothing after the last entry read */

    *remaining = 0;
    int rc = mj_count(self, node, subject, &count, err);
    if (rc < 0 || count == 0)
        return rc;
    while ((uint32_t)taken < credit) {
        jsDirectGetMsgOptions dg;
        natsMsg *msg = NULL;
        jsDirectGetMsgOptions_Init(&dg);
        dg.Sequence = next;
        dg.NextBySubject = subject;
        natsStatus s = js_DirectGetMsg(&msg, bk_js_ctx(self->js), MJ_STREAM, NULL, &dg);
        if (s == NATS_NOT_FOUND) {
            ended = true;
            break;
        }
        if (s != NATS_OK)
            return bk_js_fail(err, s, 0, "reading the mailbox of %s after position %llu", node,
                              (unsigned long long)(next - 1));
        uint64_t position = natsMsg_GetSequence(msg);
        if (position < next) {
            natsMsg_Destroy(msg);
            return ld_error_set(err, LD_EIO, "the mailbox of %s gave position %llu when asked "
                                "for one from %llu", node, (unsigned long long)position,
                                (unsigned long long)next);
        }
        int took = fn(ctx, position, (const uint8_t *)natsMsg_GetData(msg),
                      (size_t)natsMsg_GetDataLength(msg));
        natsMsg_Destroy(msg);
        if (took < 0)
            return ld_error_set(err, took, "fetch of %s stopped at position %llu", node,
                                (unsigned long long)position);
        if (took > 0)
            break;
        taken++;
        next = position + 1;
    }
    /* Stopped by the credit or the caller: at least one may remain; how many is the
     * mailbox's count less what was read (entries at or below the cursor not yet acked
     * make this an over-count, never an under-count). */
    if (!ended)
        *remaining = count > (uint64_t)taken ? count - (uint64_t)taken : 1;
    return taken;
}

static int mj_fetch(void *store, const char *node, uint64_t after, uint32_t credit,
                    bk_fetch_fn fn, void *ctx, uint64_t *remaining, ld_error_t *err)
{
    mj_store_t *self = store;
    char subject[MJ_SUBJECT_MAX];
    *remaining = 0;
    if (!mj_subject(node, subject))
        return ld_error_set(err, LD_EINVAL, "cannot address mailbox '%s'", node);
    if (after == UINT64_MAX)
        return 0;
    int64_t now = mj_now_ms();
    if (now >= self->consumers_back_ms) {
        bool used = false;
        int n = mj_fetch_consumer(self, node, subject, after, credit, fn, ctx, remaining, &used,
                                  err);
        if (used || n < 0)
            return n;
        /* With a server of the cluster down, a consumer may be placed on it and never
         * come, or its deliveries be lost on the way: read by direct get for a while. */
        self->consumers_back_ms = now + MJ_CONSUMER_PAUSE_MS;
        ld_warn("jetstream: no consumer delivered the mailbox of %s within %d ms; reading "
                "mailboxes by direct get for %d s", node, MJ_CONSUMER_WAIT_MS,
                MJ_CONSUMER_PAUSE_MS / 1000);
    }
    return mj_fetch_direct(self, node, subject, after, credit, fn, ctx, remaining, err);
}

static int mj_ack(void *store, const char *node, uint64_t upto, ld_error_t *err)
{
    mj_store_t *self = store;
    char subject[MJ_SUBJECT_MAX];
    jsOptions o;
    jsErrCode jerr = 0;
    if (!mj_subject(node, subject))
        return ld_error_set(err, LD_EINVAL, "cannot address mailbox '%s'", node);
    if (upto == 0)
        return 0;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subject;
    /* Everything below upto + 1; a position no stream reaches (UINT64_MAX: the whole
     * mailbox) is no sequence at all, since the server's JSON takes nothing past
     * INT64_MAX: the whole subject is purged. */
    if (upto < INT64_MAX)
        o.Stream.Purge.Sequence = upto + 1;
    natsStatus s = js_PurgeStream(bk_js_ctx(self->js), MJ_STREAM, &o, &jerr);
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "reclaiming the mailbox of %s up to %llu", node,
                          (unsigned long long)upto);
    return 0;
}

static int mj_depth(void *store, const char *node, uint64_t *depth, ld_error_t *err)
{
    char subject[MJ_SUBJECT_MAX];
    if (!mj_subject(node, subject))
        return ld_error_set(err, LD_EINVAL, "cannot address mailbox '%s'", node);
    return mj_count(store, node, subject, depth, err);
}

static int mj_pushed_upto(void *store, const char *origin, uint64_t *seq, ld_error_t *err)
{
    uint64_t rev = 0;
    return mj_hw_get(store, origin, seq, &rev, err);
}

/* ---- migration target ---- */

static int mj_import_mark(void *store, const char *origin, uint64_t seq, ld_error_t *err)
{
    uint64_t now = 0, rev = 0, upto = 0;
    int rc = mj_hw_get(store, origin, &now, &rev, err);
    if (rc < 0 || now >= seq)
        return rc;
    return mj_hw_raise(store, origin, seq, rev, &upto, err);
}

/* Makes every position the stream gives from now on greater than `floor`: a stream
 * still below it must be empty, and is moved past it by a purge. */
static int mj_raise_floor(mj_store_t *self, uint64_t floor, ld_error_t *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (self->floor >= floor)
        return 0;
    natsStatus s = js_GetStreamInfo(&si, bk_js_ctx(self->js), MJ_STREAM, NULL, &jerr);
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "reading stream %s", MJ_STREAM);
    uint64_t last = si->State.LastSeq, msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (last < floor) {
        if (msgs > 0)
            return ld_error_set(err, LD_EEXIST, "stream %s already holds entries, at positions "
                                "up to %llu, below the %llu the old store gave: copy into a "
                                "store no front-end has served yet", MJ_STREAM,
                                (unsigned long long)last, (unsigned long long)floor);
        jsOptions o;
        jsOptions_Init(&o);
        o.Stream.Purge.Sequence = floor + 1;     /* the next entry gets floor + 1 */
        s = js_PurgeStream(bk_js_ctx(self->js), MJ_STREAM, &o, &jerr);
        if (s != NATS_OK)
            return bk_js_fail(err, s, jerr, "moving stream %s past position %llu", MJ_STREAM,
                              (unsigned long long)floor);
    }
    self->floor = floor;
    return 0;
}

static int mj_import_entry(void *store, const char *node, uint64_t floor, uint64_t old_position,
                           const uint8_t *body, size_t len, ld_error_t *err)
{
    mj_store_t *self = store;
    char subject[MJ_SUBJECT_MAX], msgid[MJ_MSGID_MAX];
    jsPubOptions po;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (!mj_subject(node, subject) || len > (size_t)INT32_MAX)
        return ld_error_set(err, LD_EINVAL, "cannot address mailbox '%s'", node);
    int rc = mj_raise_floor(self, floor, err);
    if (rc < 0)
        return rc;
    snprintf(msgid, sizeof msgid, "copied:%s:%llu", node, (unsigned long long)old_position);
    jsPubOptions_Init(&po);
    po.MsgId = msgid;
    natsStatus s = js_Publish(&pa, bk_js_ctx(self->js), subject, body, (int)len, &po, &jerr);
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "copying entry %llu of the mailbox of %s",
                          (unsigned long long)old_position, node);
    bool below = pa->Sequence <= floor;
    jsPubAck_Destroy(pa);
    if (below)
        return ld_error_set(err, LD_EIO, "entry %llu of the mailbox of %s was stored at or "
                            "below position %llu", (unsigned long long)old_position, node,
                            (unsigned long long)floor);
    return 0;
}

const bk_mailbox_ops_t bk_mailbox_jetstream = {
    .name        = "jetstream",
    .open        = mj_open,
    .close       = mj_close,
    .push_batch  = mj_push_batch,
    .fetch       = mj_fetch,
    .ack         = mj_ack,
    .depth       = mj_depth,
    .pushed_upto = mj_pushed_upto,
    .grown_fd    = mj_grown_fd,
    .take_grown  = mj_take_grown,
    .import_mark  = mj_import_mark,
    .import_entry = mj_import_entry,
};
