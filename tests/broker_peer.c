/* broker_peer.c: what the broker's own tests share: the real liangdi-broker started in a
 * temp dir with fresh keys, the node peers (node_peer.c) aimed at it. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "keys.h"
#include "schema.h"

/* ------------------------------------------------------------ the harness -- */
#include "broker_peer.h"


broker_t bk;
void nap(void)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

const char *tmpbase(void)
{
    const char *base = getenv("TMPDIR");
    return base && *base ? base : "/tmp";
}

const char *broker_bin(void)
{
    const char *bin = getenv("LIANGDI_BROKER_BIN");
    cr_assert(bin && *bin, "LIANGDI_BROKER_BIN is not set (run through meson test)");
    return bin;
}

/* The whole broker log, malloc'd (caller frees); "" if there is none. */
char *read_file(const char *path, size_t from)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (f && fseek(f, (long)from, SEEK_SET) == 0) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (len + n + 1 > cap) {
                cap = (len + n + 1) * 2;
                char *grown = realloc(text, cap);
                cr_assert_not_null(grown);
                text = grown;
            }
            memcpy(text + len, chunk, n);
            len += n;
        }
    }
    if (f)
        fclose(f);
    if (!text)
        return strdup("");
    text[len] = '\0';
    return text;
}

off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Runs the broker CLI with `args` (NULL-terminated, after the program name), stdout
 * into out[outsz], stderr appended to the log.  Returns its exit code. */
int cli(char *out, size_t outsz, const char *const *args)
{
    const char *argv[16] = { "liangdi-broker" };
    size_t n = 1;
    for (; args[n - 1]; n++) {
        cr_assert_lt(n, 15);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int logfd = open(bk.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(pipefd[0]);
        execv(broker_bin(), (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    char sink[256];
    for (;;) {
        char *dst = out && len + 1 < outsz ? out + len : sink;
        size_t room = out && len + 1 < outsz ? outsz - len - 1 : sizeof sink;
        ssize_t got = read(pipefd[0], dst, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (dst != sink)
            len += (size_t)got;
    }
    close(pipefd[0]);
    if (out && outsz)
        out[len] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}


/* Starts `liangdi-broker run` in its own process group and waits for its ready line. */
void broker_start(void)
{
    off_t from = file_size(bk.log);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setpgid(0, 0);
        int logfd = open(bk.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        execl(broker_bin(), "liangdi-broker", "run", "--db", bk.db, "--config", bk.conf,
              "--bind", "tcp://127.0.0.1:*", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    bk.pid = pid;
    int64_t deadline = now_ms() + scaled(15000);
    for (;;) {
        char *text = read_file(bk.log, (size_t)from);
        const char *ready = strstr(text, "ready, listening on ");
        if (ready) {
            ready += strlen("ready, listening on ");
            size_t n = strcspn(ready, " \r\n");
            cr_assert_lt(n, sizeof bk.endpoint);
            memcpy(bk.endpoint, ready, n);
            bk.endpoint[n] = '\0';
            free(text);
            return;
        }
        free(text);
        int status;
        cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the broker exited before it was ready");
        cr_assert_lt(now_ms(), deadline, "no ready line within the deadline");
        nap();
    }
}

/* Sends `sig` to the broker's process group and waits for it to exit; returns its
 * exit status (or -1 if it did not exit in time). */
int broker_stop(int sig)
{
    int status = 0;
    if (bk.pid <= 0)
        return -1;
    kill(-bk.pid, sig);
    int64_t deadline = now_ms() + scaled(10000);
    for (;;) {
        pid_t got = waitpid(bk.pid, &status, WNOHANG);
        if (got == bk.pid) {
            bk.pid = 0;
            return status;
        }
        if (now_ms() > deadline)
            return -1;
        nap();
    }
}

/* Ends a test: SIGTERM, and the broker must exit 0 (a sanitizer report at exit, or a
 * leak, would make it fail; the report is in the log printed on failure). */
void assert_clean_stop(void)
{
    if (bk.pid <= 0)
        return;
    int status = broker_stop(SIGTERM);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "on SIGTERM the broker exits 0 (status 0x%x)", (unsigned)status);
}

void write_conf(const char *extra)
{
    FILE *f = fopen(bk.conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "[broker]\nlog_level = debug\n%s", extra ? extra : "");
    fclose(f);
}

void setup(void)
{
    ld_error_t err;
    snprintf(bk.dir, sizeof bk.dir, "%s/test_broker.XXXXXX", tmpbase());
    cr_assert_not_null(mkdtemp(bk.dir));
    snprintf(bk.db, sizeof bk.db, "%s/broker.db", bk.dir);
    snprintf(bk.conf, sizeof bk.conf, "%s/broker.conf", bk.dir);
    snprintf(bk.log, sizeof bk.log, "%s/liangdi-broker-test.%s.%d.log", tmpbase(),
             criterion_current_test->name, (int)getppid());
    unlink(bk.log);
    write_conf(NULL);
    char out[256];
    cr_assert_eq(CLI(out, sizeof out, "init", "--db", bk.db), 0);
    cr_assert_eq(strlen(out), LD_KEY_TEXT + 1, "init prints the public key: %s", out);
    memcpy(bk.public_key, out, LD_KEY_TEXT);
    bk.public_key[LD_KEY_TEXT] = '\0';
    cr_assert(ld_key_valid(bk.public_key));

    cr_assert_eq(ld_keys_generate(&key_home, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_dongguan, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_shenzhen, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_stranger, &err), 0);
    cr_assert_eq(CLI(NULL, 0, "node", "add", "home", "--key", key_home.public_key,
                     "--name", "竹园镇党委", "--db", bk.db), 0);
    cr_assert_eq(CLI(NULL, 0, "--db", bk.db, "node", "add", "dongguan", "--key",
                     key_dongguan.public_key, "--name", "东莞流动党支部"), 0);
    cr_assert_eq(CLI(NULL, 0, "node", "add", "shenzhen", "--name", "深圳流动党支部", "--key",
                     key_shenzhen.public_key, "--db", bk.db), 0);
    cr_assert_eq(CLI(NULL, 0, "link", "add", "home", "dongguan", "--db", bk.db), 0);
    zctx = zmq_ctx_new();
    cr_assert_not_null(zctx);
    peer_endpoint = bk.endpoint;       /* filled in by broker_start */
    peer_server_key = bk.public_key;
}

void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

void teardown(void)
{
    if (bk.pid > 0 && broker_stop(SIGTERM) < 0) {
        kill(-bk.pid, SIGKILL);
        waitpid(bk.pid, NULL, 0);
        bk.pid = 0;
    }
    peers_close_all();
    rm_dir(bk.dir);
}

/* In the runner: print the broker's log for a test that failed, then remove it. */
ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
    char path[512];
    snprintf(path, sizeof path, "%s/liangdi-broker-test.%s.%d.log", tmpbase(),
             stats->test->name, (int)getpid());
    if (stats->test_status != CR_STATUS_PASSED || stats->crashed || stats->timed_out) {
        char *text = read_file(path, 0);
        fprintf(stderr, "---- liangdi-broker log for %s ----\n%s---- end of log ----\n",
                stats->test->name, text);
        free(text);
    }
    unlink(path);
}

