/* cmp_jetstream.c: the NATS JetStream contestant (libnats): a file-storage stream and a
 * durable pull consumer; async publish with acks, then batched pulls with acks. */
#include <inttypes.h>
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmp_common.h"

#define PROG          "cmp_jetstream"
#define STREAM        "CMP"
#define SUBJECT       "cmp.records"
#define DURABLE       "cmp-receiver"
#define DEADLINE_MS   300000
#define MAX_PENDING   16384    /* async publishes in flight (the library's default is 4,000) */
#define FETCH_BATCH   4096     /* messages per pull, the same batch liangdi pushes */
#define FETCH_WAIT_MS 5000

/* Publish acks counted by the library's thread. */
typedef struct pub_tally {
    atomic_uint_fast64_t ok;
    atomic_uint_fast64_t failed;
} pub_tally_t;

static int fail(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, PROG ": %s: %s", what, natsStatus_GetText(s));
    if (jerr != 0)
        fprintf(stderr, " (JetStream error %d)", (int)jerr);
    fprintf(stderr, "%s%s\n", nats_GetLastError(NULL) ? ": " : "",
            nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
    return -1;
}

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    pub_tally_t *t = closure;

    if (pa != NULL) {
        atomic_fetch_add(&t->ok, 1);
    } else {
        if (atomic_fetch_add(&t->failed, 1) == 0 && pae != NULL)
            fprintf(stderr, PROG ": publish refused: %s (%s)\n", natsStatus_GetText(pae->Err),
                    pae->ErrText ? pae->ErrText : "");
    }
    natsMsg_Destroy(msg);
}

/* The consumer both setup and drain name, so that drain binds to what setup made. */
static void consumer_config(jsConsumerConfig *cc)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = DURABLE;
    cc->AckPolicy = js_AckAll;          /* one ack covers the batch before it */
    cc->DeliverPolicy = js_DeliverAll;
    cc->FilterSubject = SUBJECT;
    cc->MaxAckPending = 4 * FETCH_BATCH;  /* the default, 1,000, would stall a batch */
}

/* The stream (file storage, one replica) and the receiver's durable consumer, made before
 * anything is timed, as the receiver's first visit. */
static int run_setup(natsConnection *nc)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsConsumerInfo *ci = NULL;
    jsStreamConfig sc;
    jsConsumerConfig cc;
    const char *subjects[] = { SUBJECT };
    jsErrCode jerr = 0;
    natsStatus s;
    int rc = -1;

    s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fail("JetStream context", s, 0);
        goto out;
    }
    jsStreamConfig_Init(&sc);
    sc.Name = STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = 1;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        fail("add stream " STREAM, s, jerr);
        goto out;
    }
    consumer_config(&cc);
    s = js_AddConsumer(&ci, js, STREAM, &cc, NULL, &jerr);
    if (s != NATS_OK) {
        fail("add consumer " DURABLE, s, jerr);
        goto out;
    }
    rc = 0;
out:
    jsConsumerInfo_Destroy(ci);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return rc;
}

/* The sender: n records published asynchronously; done when JetStream acked them all. */
static int run_store(natsConnection *nc, uint64_t n, size_t size)
{
    jsCtx *js = NULL;
    jsOptions jo;
    jsPubOptions po;
    pub_tally_t tally;
    uint8_t *buf = malloc(size);
    struct timespec pause = { 0, 1000 * 1000 };
    double deadline;
    natsStatus s;
    int rc = -1;

    atomic_init(&tally.ok, 0);
    atomic_init(&tally.failed, 0);
    if (buf == NULL)
        goto out;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_PENDING;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = &tally;
    jo.PublishAsync.StallWait = DEADLINE_MS;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        fail("JetStream context", s, 0);
        goto out;
    }
    for (uint64_t seq = 0; seq < n; seq++) {
        cmp_record_fill(buf, size, seq);
        s = js_PublishAsync(js, SUBJECT, buf, (int)size, NULL);
        if (s != NATS_OK) {
            fail("publish", s, 0);
            goto out;
        }
    }
    jsPubOptions_Init(&po);
    po.MaxWait = DEADLINE_MS;
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK) {
        fail("waiting for publish acks", s, 0);
        goto out;
    }
    /* The library counts an ack before it calls the handler: wait for the handlers too. */
    deadline = cmp_now() + DEADLINE_MS / 1000.0;
    while (atomic_load(&tally.ok) + atomic_load(&tally.failed) < n && cmp_now() < deadline)
        nanosleep(&pause, NULL);
    if (atomic_load(&tally.ok) != n) {
        fprintf(stderr, PROG ": %" PRIu64 " of %" PRIu64 " publishes acked, %" PRIu64
                " refused\n", (uint64_t)atomic_load(&tally.ok), n,
                (uint64_t)atomic_load(&tally.failed));
        goto out;
    }
    rc = 0;
out:
    jsCtx_Destroy(js);
    free(buf);
    return rc;
}

/* The receiver comes back: pulls in batches, acking the last message of each batch
 * (AckAll), the final ack synchronously; done when all n distinct records are in. */
static int run_drain(natsConnection *nc, uint64_t n, size_t size)
{
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    cmp_tally_t *tally = cmp_tally_new(n, size);
    jsErrCode jerr = 0;
    natsStatus s;
    int rc = -1;

    if (tally == NULL)
        goto out;
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fail("JetStream context", s, 0);
        goto out;
    }
    jsSubOptions_Init(&so);
    so.Stream = STREAM;
    consumer_config(&so.Config);
    s = js_PullSubscribe(&sub, js, SUBJECT, DURABLE, NULL, &so, &jerr);
    if (s != NATS_OK) {
        fail("pull subscribe " DURABLE, s, jerr);
        goto out;
    }
    while (cmp_tally_distinct(tally) < n) {
        natsMsgList list = { 0 };
        bool last_batch;

        s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, FETCH_WAIT_MS, &jerr);
        if (s != NATS_OK) {
            fail("fetch", s, jerr);
            natsMsgList_Destroy(&list);
            goto out;
        }
        for (int i = 0; i < list.Count; i++)
            cmp_tally_add(tally, natsMsg_GetData(list.Msgs[i]),
                          (size_t)natsMsg_GetDataLength(list.Msgs[i]));
        last_batch = cmp_tally_distinct(tally) >= n;
        if (list.Count > 0) {
            natsMsg *m = list.Msgs[list.Count - 1];

            s = last_batch ? natsMsg_AckSync(m, NULL, &jerr) : natsMsg_Ack(m, NULL);
            if (s != NATS_OK) {
                fail("ack", s, jerr);
                natsMsgList_Destroy(&list);
                goto out;
            }
        }
        natsMsgList_Destroy(&list);
    }
    rc = cmp_tally_check(tally, PROG);
out:
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    cmp_tally_destroy(&tally);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " setup URL\n"
            "       " PROG " store|drain URL N SIZE\n");
}

int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    natsStatus s;
    uint64_t n = 0, size = 0;
    int rc = 1;

    if (argc < 3 || (strcmp(argv[1], "setup") != 0 && argc != 5)) {
        usage();
        return 2;
    }
    if (argc == 5 && (cmp_parse_count(argv[3], "N", UINT32_MAX, &n) < 0 ||
                      cmp_parse_count(argv[4], "SIZE", CMP_RECORD_MAX, &size) < 0))
        return 2;
    if (argc == 5 && size < 16) {
        fprintf(stderr, PROG ": SIZE must be at least 16, got %" PRIu64 "\n", size);
        return 2;
    }
    s = natsConnection_ConnectTo(&nc, argv[2]);
    if (s != NATS_OK) {
        fail(argv[2], s, 0);
        goto out;
    }
    if (strcmp(argv[1], "setup") == 0)
        rc = run_setup(nc) == 0 ? 0 : 1;
    else if (strcmp(argv[1], "store") == 0)
        rc = run_store(nc, n, (size_t)size) == 0 ? 0 : 1;
    else if (strcmp(argv[1], "drain") == 0)
        rc = run_drain(nc, n, (size_t)size) == 0 ? 0 : 1;
    else
        usage();
out:
    if (nc != NULL) {
        natsConnection_Flush(nc);
        natsConnection_Destroy(nc);
    }
    nats_CloseAndWait(5000);   /* lets the library's threads finish and free */
    return rc;
}
