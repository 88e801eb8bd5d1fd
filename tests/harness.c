/* harness.c: the integration tests' shared helpers: temp dirs, process groups with
 * log files, deadlines instead of sleeps, `liangdi` runs, and store comparison. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "keys.h"
#include "schema.h"
#include "store.h"
#include "text.h"

#ifdef HN_WITH_JETSTREAM
#include <nats/nats.h>
#include "test_jetstream_harness.h"
#endif

#define ARGS_MAX       64
#define POLL_STEP_MS   10
#define CMD_TIMEOUT_MS 60000
#define SYNC_RUN_MAX_MS 900000

/* ------------------------------------------------------------- basics ---- */

int64_t hn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void hn_poll_pause(int ms)
{
    pause_ms(ms);
}

bool hn_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    int64_t deadline = hn_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return true;
        if (hn_now_ms() >= deadline)
            return false;
        pause_ms(POLL_STEP_MS);
    }
}

uint64_t hn_seed(uint64_t fallback)
{
    const char *text = getenv("LIANGDI_TEST_SEED");
    uint64_t seed = fallback;
    if (text != NULL && text[0] != '\0')
        seed = strtoull(text, NULL, 0);
    if (seed == 0)
        seed = 1;
    fprintf(stderr, "harness: seed %llu (set LIANGDI_TEST_SEED to repeat)\n",
            (unsigned long long)seed);
    return seed;
}

uint64_t hn_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717u;
}

/* Formats a path into out[size]; false (and an empty path) if it does not fit. */
static bool path_fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool path_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "harness: path too long: %s...\n", out);
        out[0] = '\0';
        return false;
    }
    return true;
}

size_t hn_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return (size_t)st.st_size;
}

/* ------------------------------------------------------------ processes ---- */

static int status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* hn_proc_start, and with `tied` the process is killed when this one dies. */
static int proc_start(hn_proc_t *p, const char *name, const char *log, const char *const *argv,
                      bool tied)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log, sizeof p->log, "%s", log);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "harness: open %s: %s\n", log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (tied && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(fd);
    p->pid = pid;
    return 0;
}

int hn_proc_start(hn_proc_t *p, const char *name, const char *log, const char *const *argv)
{
    return proc_start(p, name, log, argv, false);
}

int hn_proc_start_tied(hn_proc_t *p, const char *name, const char *log, const char *const *argv)
{
    return proc_start(p, name, log, argv, true);
}

bool hn_proc_running(hn_proc_t *p)
{
    if (p->pid <= 0)
        return false;
    int wstatus = 0;
    pid_t r = waitpid(p->pid, &wstatus, WNOHANG);
    if (r == 0)
        return true;
    if (r == p->pid)
        p->status = status_code(wstatus);
    /* Whatever is left of its group goes with it. */
    kill(-p->pid, SIGKILL);
    p->pid = 0;
    return false;
}

/* Searches the log from `from` for a line containing needle. */
static bool log_has(const char *log, const char *needle, size_t from, char *line, size_t linesz)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return false;
    bool found = false;
    if (fseek(f, (long)from, SEEK_SET) == 0) {
        char *buf = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&buf, &cap, f)) > 0) {
            /* A line still being written is looked at again next time. */
            if (buf[len - 1] != '\n')
                break;
            if (strstr(buf, needle) != NULL) {
                if (line != NULL && linesz > 0) {
                    buf[len - 1] = '\0';
                    snprintf(line, linesz, "%s", buf);
                }
                found = true;
                break;
            }
        }
        free(buf);
    }
    fclose(f);
    return found;
}

bool hn_proc_wait_log(hn_proc_t *p, const char *needle, size_t from, int timeout_ms,
                      char *line, size_t linesz)
{
    int64_t deadline = hn_now_ms() + timeout_ms;
    for (;;) {
        if (log_has(p->log, needle, from, line, linesz))
            return true;
        if (!hn_proc_running(p)) {
            /* It may have written the line just before exiting. */
            if (log_has(p->log, needle, from, line, linesz))
                return true;
            fprintf(stderr, "harness: %s exited (status %d) before logging '%s'\n", p->name,
                    p->status, needle);
            return false;
        }
        if (hn_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s did not log '%s' within %d ms\n", p->name, needle,
                    timeout_ms);
            return false;
        }
        pause_ms(POLL_STEP_MS);
    }
}

void hn_proc_signal(hn_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return;
    kill(-p->pid, sig);
    if (sig == SIGKILL) {
        int wstatus = 0;
        if (waitpid(p->pid, &wstatus, 0) == p->pid)
            p->status = status_code(wstatus);
        p->pid = 0;
    }
}

int hn_proc_wait(hn_proc_t *p, int timeout_ms)
{
    int64_t deadline = hn_now_ms() + timeout_ms;
    while (hn_proc_running(p)) {
        if (hn_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s still running after %d ms; killing it\n", p->name,
                    timeout_ms);
            hn_proc_signal(p, SIGKILL);
            break;
        }
        pause_ms(POLL_STEP_MS);
    }
    return p->status;
}

int hn_proc_stop(hn_proc_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(-p->pid, SIGTERM);
    int64_t deadline = hn_now_ms() + timeout_ms;
    while (hn_proc_running(p)) {
        if (hn_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s did not stop within %d ms of SIGTERM; killing it\n",
                    p->name, timeout_ms);
            hn_proc_signal(p, SIGKILL);
            return p->status;
        }
        pause_ms(POLL_STEP_MS);
    }
    return p->status;
}

void hn_proc_dump_log(const hn_proc_t *p)
{
    if (p->log[0] == '\0')
        return;
    FILE *f = fopen(p->log, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "----- log of %s (%s) -----\n", p->name, p->log);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "----- end of %s -----\n", p->name);
    fclose(f);
}

/* ------------------------------------------------------------ commands ---- */

/* Appends what fd has to *buf; false at EOF or error. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    if (*len + (size_t)n + 1 > *cap) {
        size_t ncap = (*cap == 0 ? 8192 : *cap * 2) + (size_t)n;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return false;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return true;
}

int hn_run(hn_result_t *r, int timeout_ms, const char *const *argv)
{
    int out[2] = { -1, -1 }, err[2] = { -1, -1 };
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        fprintf(stderr, "harness: pipe: %s\n", strerror(errno));
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    out[1] = err[1] = -1;

    size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
    bool oopen = true, eopen = true, timed_out = false;
    int64_t deadline = hn_now_ms() + timeout_ms;
    while (oopen || eopen) {
        struct pollfd fds[2] = { { .fd = oopen ? out[0] : -1, .events = POLLIN },
                                 { .fd = eopen ? err[0] : -1, .events = POLLIN } };
        int64_t left = deadline - hn_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(fds, 2, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (fds[0].revents != 0 && !drain(out[0], &r->out, &olen, &ocap))
            oopen = false;
        if (fds[1].revents != 0 && !drain(err[0], &r->err, &elen, &ecap))
            eopen = false;
    }
    if (timed_out) {
        fprintf(stderr, "harness: %s ran past %d ms; killing it\n", argv[0], timeout_ms);
        kill(-pid, SIGKILL);
    }
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    r->status = timed_out ? -1 : status_code(wstatus);
    close(out[0]);
    close(err[0]);
    if (r->out == NULL)
        r->out = strdup("");
    if (r->err == NULL)
        r->err = strdup("");
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return -1;
}

void hn_result_free(hn_result_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ------------------------------------------------------------ helpers ---- */

static const char *bin(const char *var)
{
    const char *path = getenv(var);
    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "harness: $%s is not set (run the tests with `meson test`)\n", var);
        return "/nonexistent";
    }
    return path;
}

/* Collects NULL-terminated varargs after `first` fixed words into argv. */
static size_t collect(const char **argv, size_t n, va_list ap)
{
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < ARGS_MAX - 4)
        argv[n++] = a;
    return n;
}

/* The first Z85 public key in text, into key. */
static bool find_key(const char *text, char key[HN_KEY_TEXT + 1])
{
    for (const char *p = text; p != NULL && *p != '\0'; p++) {
        size_t len = strcspn(p, " \t\r\n'\"");
        if (len == HN_KEY_TEXT) {
            memcpy(key, p, HN_KEY_TEXT);
            key[HN_KEY_TEXT] = '\0';
            if (ld_key_valid(key))
                return true;
        }
        p += len;
        if (*p == '\0')
            break;
    }
    key[0] = '\0';
    return false;
}

static void report_failure(const char *what, const hn_result_t *r)
{
    fprintf(stderr, "harness: %s failed (status %d)\nstdout: %s\nstderr: %s\n", what, r->status,
            r->out != NULL ? r->out : "", r->err != NULL ? r->err : "");
}

/* ------------------------------------------------- the JetStream cluster ---- */

/* The JetStream world's NATS servers live in test_jetstream_harness.c, built (with
 * libnats) only into the tests compiled with HN_WITH_JETSTREAM; elsewhere asking
 * for that world is an error, not a skip. */
#ifdef HN_WITH_JETSTREAM

/* 0, or HN_SKIP with the reason in w->skip when this machine has no nats-server. */
static int cluster_check(hn_world_t *w)
{
    if (jh_nats_server_bin() != NULL)
        return 0;
    snprintf(w->skip, sizeof w->skip, "nats-server is not installed here (Debian: apt-get "
             "install nats-server), so the sync was not tested on the JetStream store");
    return HN_SKIP;
}

/* Starts the three servers under the world's dir; the store argument into w. */
static int cluster_start(hn_world_t *w)
{
    w->nats = calloc(1, sizeof *w->nats);
    if (w->nats == NULL) {
        fprintf(stderr, "harness: out of memory\n");
        return -1;
    }
    if (jh_nats_start(w->nats, w->dir, JH_SERVERS_MAX) != 0) {
        fprintf(stderr, "harness: the NATS JetStream cluster did not start\n");
        return -1;
    }
    snprintf(w->broker.store, sizeof w->broker.store, "%s", w->nats->store);
    return 0;
}

/* 0 if the broker made its mailbox stream with three replicas, as a cluster's must. */
static int cluster_check_replicas(hn_world_t *w)
{
    int replicas = jh_stream_replicas(w->nats->urls, "LIANGDI_MAILBOX");
    if (replicas == JH_SERVERS_MAX)
        return 0;
    fprintf(stderr, "harness: the broker's mailbox stream has %d replicas, not %d\n", replicas,
            JH_SERVERS_MAX);
    return -1;
}

/* Stops the servers (their logs printed if `dump`) and libnats of this process. */
static void cluster_stop(hn_world_t *w, bool dump)
{
    if (w->nats == NULL)
        return;
    jh_nats_stop(w->nats, dump);
    free(w->nats);
    w->nats = NULL;
    nats_CloseAndWait(2000);
}

#else

static int cluster_check(hn_world_t *w)
{
    (void)w;
    fprintf(stderr, "harness: $LIANGDI_TEST_STORE is jetstream, but this test was built "
            "without the JetStream harness (libnats)\n");
    return -1;
}

static int cluster_start(hn_world_t *w)
{
    (void)w;
    return -1;
}

static int cluster_check_replicas(hn_world_t *w)
{
    (void)w;
    return -1;
}

static void cluster_stop(hn_world_t *w, bool dump)
{
    (void)w;
    (void)dump;
}

#endif

/* ---------------------------------------------------------------- world ---- */

int hn_test_store(hn_store_t *out)
{
    const char *name = getenv("LIANGDI_TEST_STORE");
    *out = HN_STORE_SQLITE;
    if (name == NULL || name[0] == '\0' || strcmp(name, "sqlite") == 0)
        return 0;
    if (strcmp(name, "jetstream") == 0) {
        *out = HN_STORE_JETSTREAM;
        return 0;
    }
    fprintf(stderr, "harness: $LIANGDI_TEST_STORE is '%s': sqlite or jetstream\n", name);
    return -1;
}

int hn_broker_cmd(hn_world_t *w, hn_result_t *r, ...)
{
    const char *argv[ARGS_MAX];
    size_t n = 0;
    argv[n++] = bin("LIANGDI_BROKER_BIN");
    va_list ap;
    va_start(ap, r);
    n = collect(argv, n, ap);
    va_end(ap);
    if (w->store == HN_STORE_JETSTREAM) {
        argv[n++] = "--store";
        argv[n++] = w->broker.store;
        argv[n++] = "--key-file";
        argv[n++] = w->broker.key_file;
    } else {
        argv[n++] = "--db";
        argv[n++] = w->broker.db;
    }
    argv[n] = NULL;
    return hn_run(r, CMD_TIMEOUT_MS, argv);
}

/* Reads the endpoint from a "ready, listening on EP" line into out[size]; 0 or -1. */
static int ready_endpoint(const char *line, char *out, size_t size)
{
    const char *ep = strstr(line, "ready, listening on ") + strlen("ready, listening on ");
    size_t len = strcspn(ep, " \t\r\n,;)");
    if (len == 0 || len >= size) {
        fprintf(stderr, "harness: no endpoint in the broker's ready line: %s\n", line);
        return -1;
    }
    memcpy(out, ep, len);
    out[len] = '\0';
    return 0;
}

/* Starts every front-end on the JetStream store (each on the endpoint it had, once it
 * had one), waits for each to be ready, and sets the endpoint list nodes are given. */
static int front_ends_start(hn_world_t *w)
{
    hn_broker_t *b = &w->broker;
    size_t from[HN_FRONT_ENDS];
    for (size_t i = 0; i < b->nfronts; i++) {
        hn_front_end_t *f = &b->fronts[i];
        char log[HN_PATH_MAX], name[64];
        if (!path_fmt(log, sizeof log, "%s/front-end-%c.log", w->dir, (char)('a' + i)))
            return -1;
        snprintf(name, sizeof name, "liangdi-broker front-end %c", (char)('A' + i));
        from[i] = hn_file_size(log);
        const char *argv[] = { bin("LIANGDI_BROKER_BIN"), "run", "--store", b->store,
                               "--key-file", b->key_file, "--bind", f->bind, NULL };
        if (hn_proc_start_tied(&f->proc, name, log, argv) != 0)
            return -1;
    }
    size_t len = 0;
    for (size_t i = 0; i < b->nfronts; i++) {
        hn_front_end_t *f = &b->fronts[i];
        char line[1024];
        if (!hn_proc_wait_log(&f->proc, "ready, listening on ", from[i], 30000, line,
                              sizeof line)) {
            hn_proc_dump_log(&f->proc);
            return -1;
        }
        if (ready_endpoint(line, f->endpoint, sizeof f->endpoint) != 0)
            return -1;
        /* A restart binds the same port. */
        snprintf(f->bind, sizeof f->bind, "%s", f->endpoint);
        int n = snprintf(b->endpoint + len, sizeof b->endpoint - len, "%s%s", i > 0 ? "," : "",
                         f->endpoint);
        if (n < 0 || (size_t)n >= sizeof b->endpoint - len) {
            fprintf(stderr, "harness: the front-ends' endpoints do not fit in %zu bytes\n",
                    sizeof b->endpoint);
            return -1;
        }
        len += (size_t)n;
    }
    return 0;
}

int hn_broker_start(hn_world_t *w)
{
    if (w->store == HN_STORE_JETSTREAM)
        return front_ends_start(w);
    hn_broker_t *b = &w->broker;
    char log[HN_PATH_MAX];
    path_fmt(log, sizeof log, "%s/broker.log", w->dir);
    size_t from = hn_file_size(log);
    const char *argv[] = { bin("LIANGDI_BROKER_BIN"), "run", "--bind", b->bind, "--db", b->db,
                           NULL };
    if (hn_proc_start(&b->proc, "liangdi-broker", log, argv) != 0)
        return -1;
    char line[1024];
    if (!hn_proc_wait_log(&b->proc, "ready, listening on ", from, 20000, line, sizeof line)) {
        hn_proc_dump_log(&b->proc);
        return -1;
    }
    if (ready_endpoint(line, b->endpoint, sizeof b->endpoint) != 0)
        return -1;
    /* A restart binds the same port. */
    snprintf(b->bind, sizeof b->bind, "%s", b->endpoint);
    return 0;
}

void hn_broker_kill(hn_world_t *w)
{
    hn_proc_signal(&w->broker.proc, SIGKILL);
    for (size_t i = 0; i < w->broker.nfronts; i++)
        hn_proc_signal(&w->broker.fronts[i].proc, SIGKILL);
}

/* Stops p if it runs; false (printed) if it exited other than 0. */
static bool stopped_zero(hn_proc_t *p)
{
    if (p->pid <= 0)
        return true;
    int status = hn_proc_stop(p, 10000);
    if (status != 0)
        fprintf(stderr, "harness: %s exited with status %d on SIGTERM\n", p->name, status);
    return status == 0;
}

int hn_broker_stop(hn_world_t *w)
{
    bool ok = stopped_zero(&w->broker.proc);
    for (size_t i = 0; i < w->broker.nfronts; i++)
        ok = stopped_zero(&w->broker.fronts[i].proc) && ok;
    return ok ? 0 : -1;
}

size_t hn_broker_endpoints(const hn_world_t *w)
{
    return w->store == HN_STORE_JETSTREAM ? w->broker.nfronts : 1;
}

bool hn_names_broker(const hn_world_t *w, const char *text)
{
    if (text == NULL)
        return false;
    if (w->store != HN_STORE_JETSTREAM)
        return w->broker.endpoint[0] != '\0' && strstr(text, w->broker.endpoint) != NULL;
    for (size_t i = 0; i < w->broker.nfronts; i++)
        if (w->broker.fronts[i].endpoint[0] != '\0'
            && strstr(text, w->broker.fronts[i].endpoint) != NULL)
            return true;
    return false;
}

/* `liangdi-broker init` of the world's store; the public key it prints into the world. */
static int broker_init(hn_world_t *w)
{
    hn_result_t r;
    if (hn_broker_cmd(w, &r, "init", NULL) != 0)
        return -1;
    bool ok = r.status == 0 && find_key(r.out, w->broker.key);
    if (!ok)
        report_failure("liangdi-broker init", &r);
    hn_result_free(&r);
    return ok ? 0 : -1;
}

int hn_world_init(hn_world_t *w, const char *tag)
{
    memset(w, 0, sizeof *w);
    if (hn_test_store(&w->store) != 0)
        return -1;
    if (w->store == HN_STORE_JETSTREAM) {
        int rc = cluster_check(w);
        if (rc != 0)
            return rc;
    }
    if (hn_tmpdir_new(tag, w->dir) != 0)
        return -1;
    if (w->store == HN_STORE_SQLITE) {
        path_fmt(w->broker.db, sizeof w->broker.db, "%s/broker.db", w->dir);
        snprintf(w->broker.bind, sizeof w->broker.bind, "tcp://127.0.0.1:*");
        if (broker_init(w) != 0)
            return -1;
        return hn_broker_start(w);
    }

    if (!path_fmt(w->broker.key_file, sizeof w->broker.key_file, "%s/broker.key", w->dir)
        || cluster_start(w) != 0 || broker_init(w) != 0 || cluster_check_replicas(w) != 0)
        return -1;
    w->broker.nfronts = HN_FRONT_ENDS;
    for (size_t i = 0; i < w->broker.nfronts; i++)
        snprintf(w->broker.fronts[i].bind, sizeof w->broker.fronts[i].bind, "tcp://127.0.0.1:*");
    return hn_broker_start(w);
}

/* True if the log holds a report of AddressSanitizer, LeakSanitizer or UBSan. */
static bool log_has_sanitizer_report(const hn_proc_t *p)
{
    static const char *const marks[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                         "runtime error:" };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        if (p->log[0] != '\0' && log_has(p->log, marks[i], 0, NULL, 0)) {
            fprintf(stderr, "harness: %s logged '%s'\n", p->name, marks[i]);
            return true;
        }
    }
    return false;
}

/* Stops p if it runs; false if it exited other than 0 or its log has a report. */
static bool stopped_clean(hn_proc_t *p)
{
    bool ok = stopped_zero(p);
    if (log_has_sanitizer_report(p))
        ok = false;
    return ok;
}

bool hn_world_finish(hn_world_t *w)
{
    bool ok = true;
    for (size_t i = 0; i < w->nnodes; i++)
        ok = stopped_clean(&w->nodes[i].daemon) && ok;
    for (size_t i = 0; i < w->nextra; i++)
        ok = stopped_clean(&w->extra[i]) && ok;
    ok = stopped_clean(&w->broker.proc) && ok;
    for (size_t i = 0; i < w->broker.nfronts; i++)
        ok = stopped_clean(&w->broker.fronts[i].proc) && ok;
    w->passed = ok;
    return ok;
}

void hn_world_fini(hn_world_t *w)
{
    if (w->dir[0] == '\0')
        return;     /* never made, or already ended */
    for (size_t i = 0; i < w->nnodes; i++)
        hn_proc_stop(&w->nodes[i].daemon, 5000);
    for (size_t i = 0; i < w->nextra; i++)
        hn_proc_signal(&w->extra[i], SIGKILL);
    hn_proc_stop(&w->broker.proc, 5000);
    for (size_t i = 0; i < w->broker.nfronts; i++)
        hn_proc_stop(&w->broker.fronts[i].proc, 5000);
    if (!w->passed) {
        hn_proc_dump_log(&w->broker.proc);
        for (size_t i = 0; i < w->broker.nfronts; i++)
            hn_proc_dump_log(&w->broker.fronts[i].proc);
        for (size_t i = 0; i < w->nnodes; i++)
            hn_proc_dump_log(&w->nodes[i].daemon);
        for (size_t i = 0; i < w->nextra; i++)
            hn_proc_dump_log(&w->extra[i]);
    }
    cluster_stop(w, !w->passed);
    if (getenv("LIANGDI_KEEP_TMP") == NULL)
        hn_tmpdir_remove(w->dir);
    else
        fprintf(stderr, "harness: kept %s\n", w->dir);
    w->dir[0] = '\0';
}

void hn_world_fini_quiet(hn_world_t *w)
{
    w->passed = true;
    hn_world_fini(w);
}

static int node_cmd_va(hn_node_t *n, hn_result_t *r, va_list ap)
{
    const char *argv[ARGS_MAX];
    size_t k = 0;
    argv[k++] = bin("LIANGDI_BIN");
    k = collect(argv, k, ap);
    argv[k++] = "--db";
    argv[k++] = n->db;
    argv[k] = NULL;
    return hn_run(r, CMD_TIMEOUT_MS, argv);
}

int hn_node_cmd(hn_node_t *n, hn_result_t *r, ...)
{
    va_list ap;
    va_start(ap, r);
    int rc = node_cmd_va(n, r, ap);
    va_end(ap);
    return rc;
}

/* Runs a liangdi command that must succeed; its first printed word into id (may be
 * NULL).  0 or -1, printing what went wrong. */
static int node_ok(hn_node_t *n, char *id, size_t idsz, ...)
{
    hn_result_t r;
    va_list ap;
    va_start(ap, idsz);
    int rc = node_cmd_va(n, &r, ap);
    va_end(ap);
    if (rc != 0)
        return -1;
    if (r.status != 0 || (id != NULL && hn_printed_id(&r, id, idsz) != 0)) {
        char what[128];
        snprintf(what, sizeof what, "a liangdi command on %s", n->id);
        report_failure(what, &r);
        rc = -1;
    }
    hn_result_free(&r);
    return rc;
}

/* The broker endpoints node number `index` is given: the broker's; on JetStream every
 * front-end's, starting with front-end (index modulo their number), so that the
 * nodes of a test start on different front-ends and meet only in the shared store. */
static void node_endpoints(const hn_world_t *w, size_t index, char *out, size_t size)
{
    const hn_broker_t *b = &w->broker;
    if (w->store != HN_STORE_JETSTREAM || b->nfronts == 0) {
        snprintf(out, size, "%s", b->endpoint);
        return;
    }
    size_t len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < b->nfronts; k++) {
        const hn_front_end_t *f = &b->fronts[(index + k) % b->nfronts];
        int n = snprintf(out + len, size - len, "%s%s", k > 0 ? "," : "", f->endpoint);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
}

hn_node_t *hn_world_node(hn_world_t *w, const char *id, const char *name, bool registered)
{
    char file[128];
    snprintf(file, sizeof file, "%s.db", id);
    return hn_world_node_file(w, id, name, file, registered);
}

hn_node_t *hn_world_node_file(hn_world_t *w, const char *id, const char *name,
                              const char *file, bool registered)
{
    if (w->nnodes == HN_NODES_MAX)
        return NULL;
    hn_node_t *n = &w->nodes[w->nnodes];
    memset(n, 0, sizeof *n);
    snprintf(n->id, sizeof n->id, "%s", id);
    if (!path_fmt(n->db, sizeof n->db, "%s/%s", w->dir, file)
        || !path_fmt(n->log, sizeof n->log, "%s.daemon.log", n->db))
        return NULL;
    memcpy(n->daemon.log, n->log, sizeof n->daemon.log);
    snprintf(n->daemon.name, sizeof n->daemon.name, "liangdi daemon (%s)", id);

    char endpoints[sizeof w->broker.endpoint];
    node_endpoints(w, w->nnodes, endpoints, sizeof endpoints);
    hn_result_t r;
    if (hn_node_cmd(n, &r, "init", "--node", id, "--name", name, "--broker", endpoints,
                    "--broker-key", w->broker.key, NULL) != 0)
        return NULL;
    bool ok = r.status == 0;
    if (ok && !find_key(r.out, n->key)) {
        /* `liangdi key` prints it again. */
        hn_result_t k;
        if (hn_node_cmd(n, &k, "key", NULL) == 0 && k.status == 0)
            find_key(k.out, n->key);
        hn_result_free(&k);
        ok = n->key[0] != '\0';
    }
    if (!ok)
        report_failure("liangdi init", &r);
    hn_result_free(&r);
    if (!ok)
        return NULL;
    w->nnodes++;

    if (registered) {
        if (hn_broker_cmd(w, &r, "node", "add", id, "--key", n->key, "--name", name, NULL) != 0)
            return NULL;
        ok = r.status == 0;
        if (!ok)
            report_failure("liangdi-broker node add", &r);
        hn_result_free(&r);
        if (!ok)
            return NULL;
    }
    return n;
}

int hn_link(hn_world_t *w, const char *a, const char *b)
{
    hn_result_t r;
    if (hn_broker_cmd(w, &r, "link", "add", a, b, NULL) != 0)
        return -1;
    int rc = r.status == 0 ? 0 : -1;
    if (rc != 0)
        report_failure("liangdi-broker link add", &r);
    hn_result_free(&r);
    return rc;
}

int hn_sync(hn_node_t *n)
{
    int64_t pushed, fetched;
    return hn_sync_counts(n, &pushed, &fetched);
}

int hn_sync_counts(hn_node_t *n, int64_t *pushed, int64_t *fetched)
{
    hn_result_t r;
    *pushed = *fetched = -1;
    /* The sync's own 20 s silence limit catches a hang; a long bootstrap may take minutes. */
    const char *argv[] = { bin("LIANGDI_BIN"), "sync", "--timeout", "20", "--db", n->db, NULL };
    if (hn_run(&r, SYNC_RUN_MAX_MS, argv) != 0)
        return -1;
    int status = r.status;
    const char *line = strstr(r.out, "synced: ");
    long long p = -1, f = -1;
    if (line != NULL && sscanf(line, "synced: %lld pushed, %lld fetched", &p, &f) == 2) {
        *pushed = p;
        *fetched = f;
    }
    if (status != 0) {
        char what[128];
        snprintf(what, sizeof what, "liangdi sync on %s", n->id);
        report_failure(what, &r);
    }
    hn_result_free(&r);
    return status;
}

int hn_daemon_start(hn_world_t *w, hn_node_t *n, const char *interval)
{
    (void)w;
    size_t from = hn_file_size(n->log);
    const char *argv[] = { bin("LIANGDI_BIN"), "daemon", "--interval", interval, "--db", n->db,
                           NULL };
    char name[128];
    snprintf(name, sizeof name, "liangdi daemon (%s)", n->id);
    if (hn_proc_start(&n->daemon, name, n->log, argv) != 0)
        return -1;
    if (!hn_proc_wait_log(&n->daemon, "ready, synced with", from, 20000, NULL, 0))
        return -1;
    return 0;
}

hn_proc_t *hn_node_spawn(hn_world_t *w, hn_node_t *n, const char *tag, ...)
{
    const char *argv[ARGS_MAX];
    size_t k = 0;
    argv[k++] = bin("LIANGDI_BIN");
    va_list ap;
    va_start(ap, tag);
    k = collect(argv, k, ap);
    va_end(ap);
    argv[k++] = "--db";
    argv[k++] = n->db;
    argv[k] = NULL;
    char log[HN_PATH_MAX], name[128];
    if (!path_fmt(log, sizeof log, "%s.%s.log", n->db, tag))
        return NULL;
    snprintf(name, sizeof name, "liangdi %s (%s)", tag, n->id);
    hn_proc_t *p = NULL;
    for (size_t i = 0; i < w->nextra && p == NULL; i++) {
        if (strcmp(w->extra[i].log, log) == 0 && !hn_proc_running(&w->extra[i]))
            p = &w->extra[i];
    }
    if (p == NULL) {
        if (w->nextra == HN_NODES_MAX)
            return NULL;
        p = &w->extra[w->nextra++];
    }
    if (hn_proc_start(p, name, log, argv) != 0)
        return NULL;
    return p;
}

int hn_printed_id(const hn_result_t *r, char *out, size_t outsz)
{
    if (r->status != 0 || r->out == NULL)
        return -1;
    const char *p = r->out;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    size_t len = strcspn(p, " \t\r\n");
    if (len == 0 || len >= outsz)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

/* ---------------------------------------------------------- the branches ---- */

int hn_branches(hn_world_t *w, hn_node_t **home, hn_node_t **dongguan)
{
    *home = hn_world_node(w, "home", "竹园镇党委", true);
    *dongguan = hn_world_node(w, "dongguan", "中共竹园镇外出创业群体广东东莞支部委员会", true);
    if (*home == NULL || *dongguan == NULL || hn_link(w, "home", "dongguan") != 0)
        return -1;
    if (node_ok(*home, NULL, 0, "org", "add", "zhuyuan", "--name", "竹园镇党委", "--kind",
                "township", NULL) != 0
        || node_ok(*home, NULL, 0, "org", "add", HN_HOME_ORG, "--name", "龙潭村支部", "--kind",
                   "village", "--parent", "zhuyuan", NULL) != 0
        || node_ok(*home, NULL, 0, "org", "add", HN_MOBILE_ORG, "--name",
                   "中共竹园镇外出创业群体广东东莞支部委员会", "--kind", "mobile", "--parent",
                   "zhuyuan", "--node", "dongguan", NULL) != 0)
        return -1;
    return 0;
}

int hn_mobile_member(hn_node_t *home, const char *name, const char *gender, const char *date,
                     char id[37])
{
    if (node_ok(home, id, 37, "member", "add", "--name", name, "--org", HN_HOME_ORG, "--gender",
                gender, NULL) != 0)
        return -1;
    return node_ok(home, NULL, 0, "trip", "start", id, "--to", HN_MOBILE_ORG, "--date", date,
                   "--employer", "东莞市长安镇五金厂", "--reason", "务工", NULL);
}

int hn_bulk_activities(hn_node_t *n, const char *member, size_t count, const char *tag)
{
    ld_error_t err;
    ld_error_clear(&err);
    int rc = -1;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_store_open(n->db, false, &err);
    if (store == NULL)
        goto out;
    if (nd_store_begin(store, &err) != 0)
        goto out;
    int32_t first = ld_date_join(2010, 1, 1);
    for (size_t i = 0; i < count; i++) {
        char date[11], note[2000];
        ld_date_format(first + (int32_t)(i % 365), date);
        int len = snprintf(note, sizeof note, "%s 第%zu次：学习党章、参加东莞支部主题党日活动并记入党员活动证",
                           tag, i + 1);
        if (len < 0 || (size_t)len >= sizeof note) {
            ld_error_set(&err, LD_ETOOBIG, "a tag of %zu bytes leaves no room for the note",
                         strlen(tag));
            nd_store_rollback(store);
            goto out;
        }
        ld_change_clear(&c);
        c.kind = LD_KIND_ACTIVITY;
        if (ld_change_set(&c, "member", member, &err) != 0
            || ld_change_set(&c, "date", date, &err) != 0
            || ld_change_set(&c, "kind", "study", &err) != 0
            || ld_change_set(&c, "note", note, &err) != 0
            || nd_store_write(store, &c, &err) != 0) {
            nd_store_rollback(store);
            goto out;
        }
    }
    if (nd_store_commit(store, &err) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "harness: writing %zu activities on %s: %s\n", count, n->id, err.msg);
    ld_change_clear(&c);
    nd_store_destroy(&store);
    return rc;
}

/* --------------------------------------------------------------- stores ---- */

static sqlite3 *open_ro(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness: open %s: %s\n", path, db != NULL ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

int64_t hn_query_int(const char *path, const char *sql)
{
    sqlite3 *db = open_ro(path);
    if (db == NULL)
        return -1;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "harness: %s on %s: %s\n", sql, path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

struct hn_watch {
    sqlite3      *db;
    sqlite3_stmt *st;
};

hn_watch_t *hn_watch_open(const char *path, const char *sql)
{
    hn_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->db = open_ro(path);
    if (w->db != NULL && sqlite3_prepare_v2(w->db, sql, -1, &w->st, NULL) == SQLITE_OK)
        return w;
    if (w->db != NULL)
        fprintf(stderr, "harness: %s on %s: %s\n", sql, path, sqlite3_errmsg(w->db));
    hn_watch_close(&w);
    return NULL;
}

int64_t hn_watch_read(hn_watch_t *w)
{
    int64_t v = -1;
    if (sqlite3_step(w->st) == SQLITE_ROW)
        v = sqlite3_column_int64(w->st, 0);
    else
        fprintf(stderr, "harness: watching %s: %s\n", sqlite3_sql(w->st), sqlite3_errmsg(w->db));
    sqlite3_reset(w->st);      /* ends the read, so that the next sees later commits */
    return v;
}

void hn_watch_close(hn_watch_t **w)
{
    if (*w == NULL)
        return;
    sqlite3_finalize((*w)->st);
    sqlite3_close((*w)->db);
    free(*w);
    *w = NULL;
}

/* True if column i of the current rows of a and b hold the same value. */
static bool same_column(sqlite3_stmt *a, sqlite3_stmt *b, int i)
{
    int ta = sqlite3_column_type(a, i), tb = sqlite3_column_type(b, i);
    if (ta != tb)
        return false;
    if (ta == SQLITE_NULL)
        return true;
    if (ta == SQLITE_INTEGER)
        return sqlite3_column_int64(a, i) == sqlite3_column_int64(b, i);
    const void *da = sqlite3_column_blob(a, i);
    int la = sqlite3_column_bytes(a, i);
    const void *db = sqlite3_column_blob(b, i);
    int lb = sqlite3_column_bytes(b, i);
    return la == lb && (la == 0 || memcmp(da, db, (size_t)la) == 0);
}

static int compare_table(sqlite3 *a, sqlite3 *b, const char *table, hn_diff_t *d)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY \"id\"", table);
    sqlite3_stmt *sa = NULL, *sb = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(a, sql, -1, &sa, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(b, sql, -1, &sb, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness: %s: %s / %s\n", sql, sqlite3_errmsg(a), sqlite3_errmsg(b));
        goto out;
    }
    int ncols = sqlite3_column_count(sa);
    if (ncols != sqlite3_column_count(sb)) {
        fprintf(stderr, "harness: table %s has different columns in the two stores\n", table);
        goto out;
    }
    int ra = sqlite3_step(sa), rb = sqlite3_step(sb);
    while (ra == SQLITE_ROW && rb == SQLITE_ROW) {
        const char *ida = (const char *)sqlite3_column_text(sa, 0);
        const char *idb = (const char *)sqlite3_column_text(sb, 0);
        int cmp = strcmp(ida != NULL ? ida : "", idb != NULL ? idb : "");
        if (cmp < 0) {
            d->only_a++;
            ra = sqlite3_step(sa);
            continue;
        }
        if (cmp > 0) {
            d->only_b++;
            rb = sqlite3_step(sb);
            continue;
        }
        d->shared++;
        for (int i = 1; i < ncols; i++) {
            if (same_column(sa, sb, i))
                continue;
            if (d->differ == 0) {
                const char *va = (const char *)sqlite3_column_text(sa, i);
                const char *vb = (const char *)sqlite3_column_text(sb, i);
                snprintf(d->first, sizeof d->first, "%s %s: column %s is '%s' in one store, '%s' in the other",
                         table, ida, sqlite3_column_name(sa, i), va != NULL ? va : "(null)",
                         vb != NULL ? vb : "(null)");
            }
            d->differ++;
            break;
        }
        ra = sqlite3_step(sa);
        rb = sqlite3_step(sb);
    }
    while (ra == SQLITE_ROW) {
        d->only_a++;
        ra = sqlite3_step(sa);
    }
    while (rb == SQLITE_ROW) {
        d->only_b++;
        rb = sqlite3_step(sb);
    }
    if (ra != SQLITE_DONE || rb != SQLITE_DONE) {
        fprintf(stderr, "harness: reading %s: %s / %s\n", table, sqlite3_errmsg(a), sqlite3_errmsg(b));
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    return rc;
}

int hn_compare_stores(const char *db_a, const char *db_b, hn_diff_t *d)
{
    memset(d, 0, sizeof *d);
    sqlite3 *a = open_ro(db_a);
    sqlite3 *b = open_ro(db_b);
    int rc = a != NULL && b != NULL ? 0 : -1;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT && rc == 0; k++)
        rc = compare_table(a, b, ld_schema_kind((ld_kind_t)k)->table, d);
    sqlite3_close(a);
    sqlite3_close(b);
    return rc;
}

int64_t hn_setting_int(const char *path, const char *key)
{
    sqlite3 *db = open_ro(path);
    if (db == NULL)
        return -1;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "SELECT \"value\" FROM \"settings\" WHERE \"key\" = ?1", -1, &st,
                           NULL) == SQLITE_OK
        && sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            v = 0;
    }
    if (v < 0)
        fprintf(stderr, "harness: setting %s of %s: %s\n", key, path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Folds every column of every row of a query into an FNV-1a hash. */
static void digest_query(sqlite3 *db, const char *sql, uint64_t *h)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness: %s: %s\n", sql, sqlite3_errmsg(db));
        *h ^= 1;
        return;
    }
    int ncols = sqlite3_column_count(st);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++) {
            const unsigned char *p = sqlite3_column_text(st, i);
            int len = sqlite3_column_bytes(st, i);
            uint8_t type = (uint8_t)sqlite3_column_type(st, i);
            *h = (*h ^ type) * 1099511628211u;
            for (int j = 0; j < len && p != NULL; j++)
                *h = (*h ^ p[j]) * 1099511628211u;
        }
        *h = (*h ^ 0xff) * 1099511628211u;
    }
    sqlite3_finalize(st);
}

uint64_t hn_store_digest(const char *path)
{
    uint64_t h = 14695981039346656037u;
    sqlite3 *db = open_ro(path);
    if (db == NULL)
        return 0;
    char sql[256];
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY \"id\"",
                 ld_schema_kind((ld_kind_t)k)->table);
        digest_query(db, sql, &h);
    }
    digest_query(db, "SELECT \"record_id\", \"kind\", \"field\", \"winner_value\", \"winner_hlc\","
                     " \"winner_origin\", \"loser_value\", \"loser_hlc\", \"loser_origin\""
                     " FROM \"conflicts\" ORDER BY 1, 3, 8, 9", &h);
    digest_query(db, "SELECT \"origin\", \"seq\" FROM \"changelog\" ORDER BY 1, 2", &h);
    sqlite3_close(db);
    return h;
}
