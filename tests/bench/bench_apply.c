/* bench_apply.c: times the node's two ends of sync on ~100-byte activity records: the
 * local write path (row + outbox) and the apply path (read a Batch's changes, apply them
 * with its cursor).
 *
 * Store A (the home township) writes N study activities of one mobile member through
 * nd_store_write, in groups of 4,096 writes per transaction (a second store writes the
 * same in bulk groups, for comparison).  A's outbox is then framed into Batch bodies of
 * 4,096 entries, as the broker sends them, and store B (the Dongguan branch) applies
 * each body with nd_store_apply_body (its changes read and validated one at a time, as
 * a node applies a batch), one transaction per batch; a decode of every body alone
 * (ld_msg_decode) is timed after it, to show what reading the changes costs.
 * Every store runs with synchronous=FULL (the store's own setting), so every transaction
 * ends in an fsync.  Beside them: SQLite alone inserting the same packed bodies into one
 * table in transactions of 4,096, synchronous=FULL.  The apply is run twice: the
 * activities of one member, then as many spread over 1,000 members (their index entries
 * land all over it, as a township's real traffic does).
 * Usage: bench_apply [changes]. */
#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "process.h"
#include "store.h"
#include "text.h"

#define TARGET_APPLY_S 100000.0     /* changes/s the apply path must beat (issue 4) */
#define CHUNK          4096u        /* writes per group, changes per Batch */

#define SPREAD         1000u        /* members the second apply run spreads over */

typedef char member_id_t[LD_RECORD_ID_MAX + 1];

static char dir[512];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
           (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_apply: %s: %s\n", what, msg);
    if (dir[0])
        remove_dir();
    exit(2);
}

static nd_store_t *open_node(const char *name, const char *id, const char *title)
{
    char path[700];
    ld_error_t err = { 0 };
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    nd_store_t *s = nd_store_open(path, true, &err);
    if (!s || nd_store_init_node(s, id, title, &err) != 0)
        die("opening a store", err.msg);
    return s;
}

/* Creates a record of `kind` from NULL-terminated name/value pairs; its id into id. */
static void create(nd_store_t *s, ld_kind_t kind, const char *id, char *out_id,
                   const char *const *pairs)
{
    ld_change_t c;
    ld_error_t err = { 0 };
    ld_change_init(&c);
    c.kind = kind;
    if (id)
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
    for (size_t i = 0; pairs[i]; i += 2)
        if (ld_change_set(&c, pairs[i], pairs[i + 1], &err) != 0)
            die("building a record", err.msg);
    if (nd_store_create(s, &c, &err) != 0)
        die("creating a record", err.msg);
    if (out_id)
        memcpy(out_id, c.record_id, LD_RECORD_ID_MAX + 1);
    ld_change_clear(&c);
}

/* A store `name` made node "zhuyuan": the township and the Dongguan branch, and
 * `nmembers` members of the township now on a trip to Dongguan (their ids into
 * members[]), so every activity of theirs goes to Dongguan. */
static nd_store_t *township(const char *name, member_id_t *members, size_t nmembers)
{
    nd_store_t *s = open_node(name, "zhuyuan", "竹园镇党委");
    create(s, LD_KIND_ORG, "zhuyuan", NULL, (const char *const[]) {
        "name", "竹园镇党委", "kind", "township", "node", "zhuyuan", NULL });
    create(s, LD_KIND_ORG, "dongguan", NULL, (const char *const[]) {
        "name", "中共竹园镇外出创业群体广东东莞支部委员会", "kind", "mobile", "node", "dongguan", NULL });
    for (size_t i = 0; i < nmembers; i++) {
        create(s, LD_KIND_MEMBER, NULL, members[i], (const char *const[]) {
            "name", "林术平", "org", "zhuyuan", NULL });
        create(s, LD_KIND_TRIP, NULL, NULL, (const char *const[]) {
            "member", members[i], "to", "dongguan", "started", "2010-03-01",
            "status", "registered", NULL });
    }
    return s;
}

/* Writes n activities of ~100 bytes, to the members in turn, CHUNK per group (a bulk
 * group if `bulk`: no savepoint per write).  Returns seconds. */
static double write_activities(nd_store_t *a, const member_id_t *members, size_t nmembers,
                               size_t n, bool bulk)
{
    ld_change_t c;
    ld_error_t err = { 0 };
    ld_change_init(&c);
    int32_t first = ld_date_join(2010, 1, 1);
    double t = now_s();
    for (size_t done = 0; done < n;) {
        if ((bulk ? nd_store_begin_bulk(a, &err) : nd_store_begin(a, &err)) != 0)
            die("begin", err.msg);
        for (size_t k = 0; k < CHUNK && done < n; k++, done++) {
            char date[11], note[160];
            ld_date_format(first + (int32_t) (done % 365), date);
            snprintf(note, sizeof note, "第%zu次：学习党章、参加东莞支部主题党日活动并记入党员活动证",
                     done + 1);
            ld_change_clear(&c);
            c.kind = LD_KIND_ACTIVITY;
            if (ld_change_set(&c, "member", members[done % nmembers], &err) != 0 ||
                ld_change_set(&c, "date", date, &err) != 0 ||
                ld_change_set(&c, "kind", "study", &err) != 0 ||
                ld_change_set(&c, "note", note, &err) != 0 ||
                nd_store_write(a, &c, &err) != 0)
                die("writing an activity", err.msg);
        }
        if (nd_store_commit(a, &err) != 0)
            die("commit", err.msg);
    }
    t = now_s() - t;
    ld_change_clear(&c);
    return t;
}

/* The outbox, framed into Batch bodies of CHUNK entries. */
typedef struct framing {
    ld_buf_t *bodies;
    size_t    nbodies, cap, in_last;
    uint64_t  position;
    uint64_t  bytes;
} framing_t;

static int frame_one(void *ctx, uint64_t seq, const uint8_t *change, size_t len)
{
    framing_t *f = ctx;
    (void) seq;
    if (f->nbodies == 0 || f->in_last == CHUNK) {
        if (f->nbodies == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->bodies = realloc(f->bodies, f->cap * sizeof *f->bodies);
            if (!f->bodies)
                die("memory", "batch bodies");
        }
        memset(&f->bodies[f->nbodies++], 0, sizeof f->bodies[0]);
        f->in_last = 0;
    }
    if (ld_batch_append(&f->bodies[f->nbodies - 1], ++f->position, change, len) != 0)
        die("framing a batch", "ld_batch_append");
    f->in_last++;
    f->bytes += len;
    return 0;
}

/* SQLite alone: the packed bodies into one table, CHUNK rows per transaction. */
static double sqlite_rate(const framing_t *f, size_t n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/baseline.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; "
                     "PRAGMA synchronous = FULL;"
                     "CREATE TABLE \"changes\" (\"position\" INTEGER PRIMARY KEY, \"body\" BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO \"changes\" VALUES (?1, ?2)", -1, &st, NULL) != SQLITE_OK)
        die("baseline", sqlite3_errmsg(db));
    /* Same sizes as the real bodies: their average. */
    size_t len = n ? (size_t) (f->bytes / n) : 1;
    uint8_t *body = calloc(1, len);
    if (!body)
        die("memory", "baseline body");
    double t = now_s();
    for (size_t done = 0; done < n;) {
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            die("baseline", sqlite3_errmsg(db));
        for (size_t k = 0; k < CHUNK && done < n; k++, done++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64) done + 1);
            sqlite3_bind_blob(st, 2, body, (int) len, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                die("baseline insert", sqlite3_errmsg(db));
            sqlite3_reset(st);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die("baseline", sqlite3_errmsg(db));
    }
    t = now_s() - t;
    free(body);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double) n / t;
}

/* What applying one store's outbox at another measured. */
typedef struct applied {
    size_t total;            /* changes: the activities and the snapshots before them */
    double bytes;            /* their average packed size */
    double t_apply;          /* reading each batch's changes and applying them */
    double t_decode;         /* a decode of every batch alone, not part of t_apply */
    double cpu;
} applied_t;

/* Frames the outbox of `a` into Batch bodies (into *f, owned by the caller) and has a
 * new store `name`, node "dongguan", apply every batch with its cursor, one
 * transaction each; what it measured into *out. */
static void apply_outbox(nd_store_t *a, const char *name, framing_t *f, applied_t *out)
{
    ld_error_t err = { 0 };
    if (nd_store_outbox(a, 0, SIZE_MAX, frame_one, f, &err) < 0)
        die("reading the outbox", err.msg);
    for (size_t i = 0; i < f->nbodies; i++)
        if (ld_batch_finish(&f->bodies[i], f->position - (i + 1 < f->nbodies ? (i + 1) * CHUNK : f->position)) != 0)
            die("framing a batch", "ld_batch_finish");

    nd_store_t *b = open_node(name, "dongguan", "东莞支部");
    memset(out, 0, sizeof *out);
    double cpu = cpu_s();
    uint64_t cursor = 0;
    for (size_t i = 0; i < f->nbodies; i++) {
        double t0 = now_s();
        size_t applied = 0;
        ld_msg_t m;
        if (ld_batch_peek(f->bodies[i].data, f->bodies[i].len, &m, &err) != 0 || m.u.batch.n == 0)
            die("framing a batch", err.msg);
        uint64_t last = m.u.batch.positions[m.u.batch.n - 1];
        ld_msg_clear(&m);
        if (nd_store_apply_body(b, f->bodies[i].data, f->bodies[i].len, cursor, last, &applied,
                                &err) != 0)
            die("applying a batch", err.msg);
        cursor = last;
        out->t_apply += now_s() - t0;
    }
    /* how much of it is reading the changes: every batch decoded alone, afterwards */
    for (size_t i = 0; i < f->nbodies; i++) {
        ld_msg_t m;
        double t0 = now_s();
        if (ld_msg_decode(LD_MSG_BATCH, f->bodies[i].data, f->bodies[i].len, &m, &err) != 0)
            die("decoding a batch", err.msg);
        ld_msg_clear(&m);
        out->t_decode += now_s() - t0;
    }
    out->cpu = cpu_s() - cpu;
    if (nd_store_cursor(b) != f->position)
        die("apply", "the cursor did not reach the last position");
    nd_store_destroy(&b);
    out->total = (size_t) f->position;
    out->bytes = out->total ? (double) f->bytes / (double) out->total : 0;
}

static void framing_free(framing_t *f)
{
    for (size_t i = 0; i < f->nbodies; i++)
        ld_buf_free(&f->bodies[i]);
    free(f->bodies);
    memset(f, 0, sizeof *f);
}

static void print_apply(const char *what, const applied_t *a)
{
    printf("apply, %s: %zu changes of ~%.0f bytes packed, batches of %u, each read a change "
           "at a time and applied: %.2f s, %.0f changes/s (CPU %.2f s; a decode of every "
           "batch alone takes %.2f s)\n", what, a->total, a->bytes, CHUNK, a->t_apply,
           (double) a->total / a->t_apply, a->cpu, a->t_decode);
}

int main(int argc, char **argv)
{
    ld_process_init(LD_SQLITE_ONE_THREAD);     /* as `liangdi` starts: process.h */
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0)
        die("usage", "bench_apply [changes]");
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/liangdi-bench-apply-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);

    /* A: the township with one member now in Dongguan, so every activity goes there. */
    member_id_t member;
    nd_store_t *a = township("zhuyuan", &member, 1);
    double cpu = cpu_s();
    double t_write = write_activities(a, &member, 1, (size_t) n, false);
    double cpu_write = cpu_s() - cpu;

    /* The same writes into a store of their own in bulk groups (as an import does). */
    member_id_t member_c;
    nd_store_t *c = township("bulk", &member_c, 1);
    cpu = cpu_s();
    double t_bulk = write_activities(c, &member_c, 1, (size_t) n, true);
    double cpu_bulk = cpu_s() - cpu;
    nd_store_destroy(&c);

    /* B: Dongguan applies A's outbox. */
    framing_t f = { 0 };
    applied_t one;
    apply_outbox(a, "dongguan", &f, &one);
    nd_store_destroy(&a);
    double theirs = sqlite_rate(&f, one.total);
    framing_free(&f);

    /* The same number of activities spread over SPREAD members in turn: each batch
     * then adds to the index of a member's activities in places all over it. */
    member_id_t *members = calloc(SPREAD, sizeof *members);
    if (!members)
        die("memory", "member ids");
    nd_store_t *d = township("spread", members, SPREAD);
    write_activities(d, members, SPREAD, (size_t) n, true);
    applied_t spread;
    apply_outbox(d, "dongguan-spread", &f, &spread);
    nd_store_destroy(&d);
    framing_free(&f);
    free(members);
    remove_dir();

    double write_rate = (double) n / t_write;
    double bulk_rate = (double) n / t_bulk;
    double apply_rate = (double) one.total / one.t_apply;
    double spread_rate = (double) spread.total / spread.t_apply;
    bool ok = apply_rate >= TARGET_APPLY_S;
    double load[1] = { 0 };
    getloadavg(load, 1);
    printf("write: %ld activities through nd_store_write, %u per transaction: %.2f s, "
           "%.0f changes/s (CPU %.2f s)\n", n, CHUNK, t_write, write_rate, cpu_write);
    printf("write, bulk groups (nd_store_begin_bulk): %.2f s, %.0f changes/s (CPU %.2f s)\n",
           t_bulk, bulk_rate, cpu_bulk);
    print_apply("one member", &one);
    char what[64];
    snprintf(what, sizeof what, "spread over %u members", SPREAD);
    print_apply(what, &spread);
    printf("SQLite alone, the same bodies, %u rows per transaction, synchronous=FULL: %.0f rows/s\n",
           CHUNK, theirs);
    printf("load average %.1f on %ld CPUs\n", load[0], sysconf(_SC_NPROCESSORS_ONLN));
    printf("summary: bench_apply: apply %.0f changes/s (%.0f spread over %u members), write "
           "%.0f changes/s (SQLite alone %.0f rows/s, ratio %.2f), target apply %.0f changes/s: "
           "%s\n", apply_rate, spread_rate, SPREAD, write_rate, theirs, apply_rate / theirs,
           TARGET_APPLY_S, ok ? "met" : "NOT met");
    return ok ? 0 : 1;
}
