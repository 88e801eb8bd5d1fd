/* test_deploy.c: the deployment as an operator meets it: units that systemd accepts,
 * `meson install` putting every file where the README says, and the quickstart demo. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"

#define DEPLOY_MAX_FILES 64

static const char *const service_units[] = {
    "liangdi-broker.service", "liangdi-node.service", "liangdi-sync.service",
};
#define N_SERVICES (sizeof service_units / sizeof service_units[0])

#define DEPLOY_MAX_STRINGS 512

static char tmp_root[HN_PATH_MAX];
static const char *source_root;
static const char *build_root;
static const char *destdir;
static const char *prefix;

/* Strings made by str(), freed together at teardown. */
static char *strings[DEPLOY_MAX_STRINGS];
static size_t nstrings;

/* ------------------------------------------------------------ helpers ---- */

static void teardown(void);

/* Skips the running test.  Criterion does not run the suite's .fini after a skip, so
 * this ends the test's fixture (its temp dir) itself first. */
#define SKIP(...)                  \
    do {                           \
        teardown();                \
        cr_skip_test(__VA_ARGS__); \
    } while (0)

/* A formatted string that lives until the end of the test (freed at teardown). */
static const char *str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *str(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && s, "out of memory");
    cr_assert_lt(nstrings, DEPLOY_MAX_STRINGS, "too many strings");
    strings[nstrings++] = s;
    return s;
}

/* The whole of a file, NUL-terminated (caller frees), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *bigger = realloc(buf, cap + 65536);
            if (!bigger) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
            cap += 65536;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void spew(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, true, "cannot write %s", path);
}

/* The full path of `program` on $PATH (or itself if it holds a '/'), or NULL. */
static const char *which(const char *program)
{
    const char *path = getenv("PATH");
    if (strchr(program, '/'))
        return program;
    while (path && *path) {
        size_t len = strcspn(path, ":");
        const char *full = str("%.*s/%s", (int) len, path, program);
        if (access(full, X_OK) == 0)
            return full;
        path += len;
        if (*path == ':')
            path++;
    }
    return NULL;
}

/* Runs argv (argv[0] looked up on $PATH) for at most `limit_s` seconds, with its
 * stdout followed by its stderr in *output (caller frees).  Returns the exit status,
 * 128 + signal, or -1 if it could not start or ran past its limit. */
static int run(char *const argv[], int limit_s, char **output)
{
    const char *program = which(argv[0]);
    cr_assert_not_null(program, "%s is not on PATH", argv[0]);
    size_t argc = 0;
    while (argv[argc])
        argc++;
    const char **args = calloc(argc + 1, sizeof *args);
    cr_assert_not_null(args);
    args[0] = program;
    for (size_t i = 1; i < argc; i++)
        args[i] = argv[i];
    hn_result_t r;
    int rc = hn_run(&r, limit_s * 1000, args);
    free(args);
    cr_assert_eq(rc, 0, "cannot run %s", program);
    cr_assert_geq(asprintf(output, "%s%s", r.out ? r.out : "", r.err ? r.err : ""), 0);
    rc = r.status;
    hn_result_free(&r);
    return rc;
}

/* Under `meson test --setup valgrind` every child is traced too: tests that run
 * meson, systemd-analyze, groff or the quickstart skip there, as they check files and
 * scripts, not liangdi's memory (the commands and batches the quickstart runs are
 * traced in test_cli and the sync tests). */
static void skip_under_valgrind(const char *what)
{
    const char *v = getenv("LIANGDI_UNDER_VALGRIND");
    if (v && *v && strcmp(v, "0") != 0)
        SKIP("not run under valgrind: %s", what);
}

/* The last `n` bytes of a command's output, for failure messages. */
static const char *tail(const char *text, size_t n)
{
    size_t len = strlen(text);
    return len > n ? text + len - n : text;
}

/* Reads the build's install prefix from meson's introspection file. */
static void read_prefix(void)
{
    const char *path = str("%s/meson-info/intro-buildoptions.json", build_root);
    char *json = slurp(path);
    cr_assert_not_null(json, "cannot read %s", path);
    const char *p = strstr(json, "\"name\": \"prefix\"");
    cr_assert_not_null(p, "no prefix option in %s", path);
    p = strstr(p, "\"value\": \"");
    cr_assert_not_null(p, "no prefix value in %s", path);
    p += strlen("\"value\": \"");
    size_t len = strcspn(p, "\"");
    cr_assert_gt(len, 0, "empty prefix in %s", path);
    prefix = str("%.*s", (int) len, p);
    free(json);
}

/* `meson install --destdir` of the build the tests run from, into tmp_root/dest. */
static void install_to_destdir(void)
{
    char *out;
    destdir = str("%s/dest", tmp_root);
    char *argv[] = { "meson", "install", "-C", (char *) build_root, "--no-rebuild", "--quiet",
                     "--destdir", (char *) destdir, NULL };
    int rc = run(argv, 300, &out);
    cr_assert_eq(rc, 0, "meson install --destdir failed (%d):\n%s", rc, tail(out, 4000));
    free(out);
    read_prefix();
}

/* DESTDIR + PREFIX + "/" + rest. */
static const char *installed(const char *rest)
{
    return str("%s%s/%s", destdir, prefix, rest);
}

/* The PREFIX/... paths of the README's "installed-files" block (caller frees each). */
static size_t readme_installed_files(char *files[], size_t max)
{
    const char *path = str("%s/README.md", source_root);
    char *readme = slurp(path);
    cr_assert_not_null(readme, "cannot read %s", path);
    char *start = strstr(readme, "<!-- installed-files");
    cr_assert_not_null(start, "README.md has no installed-files block");
    char *end = strstr(start, "<!-- /installed-files -->");
    cr_assert_not_null(end, "README.md's installed-files block is not closed");
    *end = '\0';
    size_t n = 0;
    for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "PREFIX/", 7) != 0)
            continue;
        size_t len = strcspn(line + 7, " \t");
        cr_assert_lt(n, max, "too many files in README.md's installed-files block");
        files[n] = strndup(line + 7, len);
        cr_assert_not_null(files[n]);
        n++;
    }
    free(readme);
    return n;
}

/* Every regular file under dir, as paths relative to `base` (caller frees each). */
static void list_files(const char *base, const char *dir, char *files[], size_t max, size_t *n)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        const char *path = str("%s/%s", dir, e->d_name);
        struct stat st;
        cr_assert_eq(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            list_files(base, path, files, max, n);
        } else {
            cr_assert_lt(*n, max, "more than %zu files installed", max);
            files[(*n)++] = strdup(path + strlen(base) + 1);
        }
    }
    closedir(d);
}

/* A copy of `text` with every occurrence of `from` replaced by `to` (caller frees). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to), count = 0;
    for (const char *p = strstr(text, from); p; p = strstr(p + flen, from))
        count++;
    char *outbuf = malloc(strlen(text) + count * (tlen > flen ? tlen - flen : 0) + 1);
    cr_assert_not_null(outbuf);
    char *o = outbuf;
    const char *p = text, *hit;
    while ((hit = strstr(p, from))) {
        memcpy(o, p, (size_t) (hit - p));
        o += hit - p;
        memcpy(o, to, tlen);
        o += tlen;
        p = hit + flen;
    }
    strcpy(o, p);
    return outbuf;
}

/* The value of the first "Key=" line of a unit file (caller frees), or NULL. */
static char *unit_value(const char *unit_text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = unit_text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, key, klen) == 0 && line[klen] == '=')
            return strndup(line + klen + 1, strcspn(line + klen + 1, "\n"));
    }
    return NULL;
}

/* The source text of a man page with roff's escapes for '-' and fonts taken out. */
static char *man_text(const char *name)
{
    const char *path = str("%s/deploy/man/%s", source_root, name);
    char *roff = slurp(path);
    cr_assert_not_null(roff, "cannot read %s", path);
    char *a = replace_all(roff, "\\-", "-");
    char *b = replace_all(a, "\\fB", "");
    char *c = replace_all(b, "\\fR", "");
    char *d = replace_all(c, "\\fI", "");
    free(roff);
    free(a);
    free(b);
    free(c);
    return d;
}

/* Checks that every command the program lists in its help (lines "  WORDS ...", where
 * WORDS are the leading lowercase words before the arguments or a two-space gap) is
 * named in the man page; returns how many commands were checked. */
static size_t check_help_against_man(const char *program, const char *help, const char *page)
{
    char *out;
    char *argv[] = { (char *) program, (char *) help, NULL };
    int rc = run(argv, 30, &out);
    cr_assert_eq(rc, 0, "%s %s failed (%d):\n%s", program, help, rc, tail(out, 2000));
    char *man = man_text(page);
    size_t checked = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  ", 2) != 0 || line[2] < 'a' || line[2] > 'z')
            continue;
        char *words = line + 2;
        char *gap = strstr(words, "  ");
        if (gap)
            *gap = '\0';
        size_t len = 0;
        while (words[len] >= 'a' && words[len] <= 'z') {
            len += strspn(words + len, "abcdefghijklmnopqrstuvwxyz-");
            if (words[len] != ' ' || words[len + 1] < 'a' || words[len + 1] > 'z')
                break;
            len++;
        }
        words[len] = '\0';
        cr_expect(strstr(man, words) != NULL, "%s: command '%s' is not in the man page %s",
                  program, words, page);
        checked++;
    }
    free(man);
    free(out);
    return checked;
}

/* A copy of an example config with its commented "; key = NUMBER" lines switched on. */
static void example_with_defaults_on(const char *example, const char *dest)
{
    const char *path = str("%s/deploy/%s", source_root, example);
    char *text = slurp(path);
    cr_assert_not_null(text, "cannot read %s", path);
    FILE *f = fopen(dest, "w");
    cr_assert_not_null(f);
    int switched = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *p = line + 2;
        bool numeric = strncmp(line, "; ", 2) == 0 && *p >= 'a' && *p <= 'z';
        if (numeric) {
            p += strspn(p, "abcdefghijklmnopqrstuvwxyz_");
            numeric = strncmp(p, " = ", 3) == 0 && p[3] && strspn(p + 3, "0123456789") ==
                      strlen(p + 3);
        }
        fprintf(f, "%s\n", numeric ? line + 2 : line);
        switched += numeric;
    }
    fclose(f);
    free(text);
    cr_assert_gt(switched, 0, "%s has no commented numeric defaults", example);
}

/* True if a live process has `needle` in its command line or working directory;
 * names it in `who`. */
static bool process_mentions(const char *needle, char *who, size_t who_size)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
            continue;
        char cmd[8192] = "", cwd[PATH_MAX] = "";
        int fd = open(str("/proc/%s/cmdline", e->d_name), O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, cmd, sizeof cmd - 1);
            close(fd);
            for (ssize_t i = 0; i < n; i++)
                if (cmd[i] == '\0')
                    cmd[i] = ' ';
            cmd[n > 0 ? n : 0] = '\0';
        }
        ssize_t n = readlink(str("/proc/%s/cwd", e->d_name), cwd, sizeof cwd - 1);
        cwd[n > 0 ? n : 0] = '\0';
        if (strstr(cmd, needle) || strstr(cwd, needle)) {
            snprintf(who, who_size, "pid %s: %.200s", e->d_name, *cmd ? cmd : cwd);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* The first member of trips.csv who went to `branch`, for need-to-know checks. */
static char *first_member_of(const char *branch)
{
    const char *path = str("%s/deploy/seed/trips.csv", source_root);
    char *csv = slurp(path);
    cr_assert_not_null(csv, "cannot read %s", path);
    char *name = NULL;
    for (char *line = strtok(csv, "\n"); line && !name; line = strtok(NULL, "\n")) {
        char *comma = strchr(line, ',');
        if (comma && strncmp(comma + 1, branch, strlen(branch)) == 0 &&
            comma[1 + strlen(branch)] == ',')
            name = strndup(line, (size_t) (comma - line));
    }
    free(csv);
    cr_assert_not_null(name, "no member went to %s in trips.csv", branch);
    return name;
}

/* -------------------------------------------------------------- suite ---- */

static void setup(void)
{
    const char *bin = getenv("LIANGDI_BIN");
    const char *src = getenv("LIANGDI_SOURCE_ROOT");
    cr_assert_not_null(bin, "LIANGDI_BIN is not set (run under meson test)");
    cr_assert_not_null(src, "LIANGDI_SOURCE_ROOT is not set (run under meson test)");
    source_root = src;
    /* LIANGDI_BIN is BUILD/node/liangdi. */
    char *build = (char *) str("%s", bin);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(build, '/');
        cr_assert_not_null(slash, "cannot find the build directory from %s", bin);
        *slash = '\0';
    }
    build_root = build;
    cr_assert_eq(hn_tmpdir_new("deploy", tmp_root), 0, "cannot make a temp dir");
}

static void teardown(void)
{
    hn_tmpdir_remove(tmp_root);
    tmp_root[0] = '\0';
    for (size_t i = 0; i < nstrings; i++)
        free(strings[i]);
    nstrings = 0;
}

TestSuite(deploy, .init = setup, .fini = teardown, .timeout = 900);

Test(deploy, install_puts_every_file_where_the_readme_says_and_nothing_else)
{
    char *listed[DEPLOY_MAX_FILES], *found[DEPLOY_MAX_FILES];
    skip_under_valgrind("meson install runs Python");
    size_t nlisted = readme_installed_files(listed, DEPLOY_MAX_FILES), nfound = 0;
    cr_assert_geq(nlisted, 13, "README.md lists only %zu installed files", nlisted);
    install_to_destdir();
    for (size_t i = 0; i < nlisted; i++) {
        const char *path = installed(listed[i]);
        struct stat st;
        cr_expect_eq(stat(path, &st) == 0 && S_ISREG(st.st_mode), true,
                     "README.md says PREFIX/%s is installed, but %s is not there", listed[i],
                     path);
    }
    const char *root = str("%s%s", destdir, prefix);
    list_files(root, root, found, DEPLOY_MAX_FILES, &nfound);
    for (size_t i = 0; i < nfound; i++) {
        bool in_readme = false;
        for (size_t j = 0; j < nlisted && !in_readme; j++)
            in_readme = strcmp(found[i], listed[j]) == 0;
        cr_expect(in_readme, "PREFIX/%s is installed but README.md does not say so", found[i]);
        free(found[i]);
    }
    for (size_t i = 0; i < nlisted; i++)
        free(listed[i]);
}

Test(deploy, installed_units_start_the_installed_binaries_with_the_etc_configs)
{
    static const char *const expected[N_SERVICES][2] = {
        { "liangdi-broker", "run --config /etc/liangdi/broker.conf" },
        { "liangdi", "daemon --config /etc/liangdi/node.conf" },
        { "liangdi", "sync --config /etc/liangdi/node.conf" },
    };
    skip_under_valgrind("meson install runs Python");
    install_to_destdir();
    for (size_t i = 0; i < N_SERVICES; i++) {
        const char *path = installed(str("lib/systemd/system/%s", service_units[i]));
        char *unit = slurp(path);
        cr_assert_not_null(unit, "%s is not installed", path);
        char *exec = unit_value(unit, "ExecStart");
        cr_assert_not_null(exec, "%s has no ExecStart=", service_units[i]);
        const char *want = str("%s/bin/%s %s", prefix, expected[i][0], expected[i][1]);
        cr_expect_str_eq(exec, want, "%s starts '%s', not '%s'", service_units[i], exec, want);
        path = installed(str("bin/%s", expected[i][0]));
        cr_expect_eq(access(path, X_OK), 0, "%s's binary %s is not installed", service_units[i],
                     path);
        free(exec);
        free(unit);
    }
}

Test(deploy, units_are_hardened_and_run_as_the_liangdi_user)
{
    static const char *const required[] = {
        "User=liangdi", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
        "NoNewPrivileges=yes", "StateDirectory=liangdi", "ConfigurationDirectory=liangdi",
        "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service", "Restart=on-failure",
        "Environment=GLIBC_TUNABLES=glibc.malloc.hugetlb=1",
    };
    for (size_t i = 0; i < N_SERVICES; i++) {
        const char *path = str("%s/deploy/systemd/%s", source_root, service_units[i]);
        char *unit = slurp(path);
        cr_assert_not_null(unit, "cannot read %s", path);
        for (size_t j = 0; j < sizeof required / sizeof required[0]; j++)
            cr_expect_not_null(strstr(unit, required[j]), "%s lacks '%s'", service_units[i],
                               required[j]);
        free(unit);
    }
    char *sync = slurp(str("%s/deploy/systemd/liangdi-sync.service", source_root));
    cr_assert_not_null(sync);
    cr_expect_not_null(strstr(sync, "Type=oneshot"), "liangdi-sync.service is not a oneshot");
    free(sync);
    char *timer = slurp(str("%s/deploy/systemd/liangdi-sync.timer", source_root));
    cr_assert_not_null(timer);
    static const char *const timing[] = {
        "OnBootSec=2min", "OnUnitActiveSec=15min", "Persistent=true", "RandomizedDelaySec=",
        "Unit=liangdi-sync.service",
    };
    for (size_t j = 0; j < sizeof timing / sizeof timing[0]; j++)
        cr_expect_not_null(strstr(timer, timing[j]), "liangdi-sync.timer lacks '%s'", timing[j]);
    free(timer);
}

/* Copies the installed units into tmp_root/units with their PREFIX/bin paths pointed
 * at the binaries under DESTDIR (systemd-analyze checks that ExecStart= exists), and
 * puts their paths into argv[first..first+4); MANPATH is set so that Documentation=
 * man: links resolve to the installed pages. */
static void units_for_analysis(char *argv[], size_t first)
{
    static const char *const units[] = {
        "liangdi-broker.service", "liangdi-node.service", "liangdi-sync.service",
        "liangdi-sync.timer",
    };
    const char *unit_dir = str("%s/units", tmp_root);
    cr_assert_eq(mkdir(unit_dir, 0755), 0);
    const char *from = str("%s/bin/", prefix);
    const char *to = str("%s%s/bin/", destdir, prefix);
    for (size_t i = 0; i < 4; i++) {
        const char *path = installed(str("lib/systemd/system/%s", units[i]));
        char *unit = slurp(path);
        cr_assert_not_null(unit, "%s is not installed", path);
        char *moved = replace_all(unit, from, to);
        const char *copy = str("%s/%s", unit_dir, units[i]);
        spew(copy, moved);
        argv[first + i] = (char *) copy;
        free(moved);
        free(unit);
    }
    setenv("MANPATH", str("%s%s/share/man", destdir, prefix), 1);
}

Test(deploy, installed_units_pass_systemd_analyze_verify)
{
    if (!which("systemd-analyze"))
        SKIP("systemd-analyze is not installed here, so the units were not verified");
    skip_under_valgrind("meson install runs Python");
    install_to_destdir();
    char *argv[2 + 4 + 1] = { "systemd-analyze", "verify" };
    units_for_analysis(argv, 2);
    argv[6] = NULL;
    char *out;
    int rc = run(argv, 120, &out);
    cr_expect_eq(rc, 0, "systemd-analyze verify failed (%d):\n%s", rc, tail(out, 4000));
    cr_expect_str_empty(out, "systemd-analyze verify complained:\n%s", tail(out, 4000));
    free(out);
}

Test(deploy, installed_services_rate_under_2_0_on_systemd_analyze_security)
{
    if (!which("systemd-analyze"))
        SKIP("systemd-analyze is not installed here, so the units were not rated");
    skip_under_valgrind("meson install runs Python");
    install_to_destdir();
    /* --threshold counts tenths: 20 is the "2.0" systemd-analyze prints. */
    char *argv[4 + 4 + 1] = { "systemd-analyze", "security", "--offline=true",
                              "--threshold=20" };
    units_for_analysis(argv, 4);
    argv[7] = NULL;   /* the services only, not the timer */
    char *out;
    int rc = run(argv, 120, &out);
    cr_expect_eq(rc, 0, "a service's exposure is over 2.0 (%d):\n%s", rc, tail(out, 6000));
    free(out);
}

Test(deploy, installed_sysusers_file_creates_the_liangdi_user)
{
    if (!which("systemd-sysusers"))
        SKIP("systemd-sysusers is not installed here, so the user file was not tried");
    skip_under_valgrind("meson install runs Python");
    install_to_destdir();
    const char *root = str("%s/sysroot", tmp_root);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(str("%s/etc", root), 0755), 0);
    char *argv[] = { "systemd-sysusers", "--dry-run", "--root", (char *) root,
                     (char *) installed("lib/sysusers.d/liangdi.conf"), NULL };
    char *out;
    int rc = run(argv, 60, &out);
    cr_expect_eq(rc, 0, "systemd-sysusers refused the file (%d):\n%s", rc, tail(out, 2000));
    cr_expect_not_null(strstr(out, "Creating user 'liangdi'"),
                       "systemd-sysusers would not create the user liangdi:\n%s", tail(out, 2000));
    free(out);
}

Test(deploy, example_configs_with_every_default_switched_on_are_accepted)
{
    const char *liangdi = getenv("LIANGDI_BIN");
    const char *broker = getenv("LIANGDI_BROKER_BIN");
    cr_assert_not_null(broker, "LIANGDI_BROKER_BIN is not set");
    char *out;
    const char *conf = str("%s/node.conf", tmp_root);
    const char *db = str("%s/node.db", tmp_root);
    example_with_defaults_on("node.conf.example", conf);
    char *node_argv[] = { (char *) liangdi, "--config", (char *) conf, "--db", (char *) db,
                          "init", "--node",
                          "zhuyuan", "--name", "竹园镇党委", NULL };
    int rc = run(node_argv, 60, &out);
    cr_expect_eq(rc, 0, "liangdi refused its example config (%d):\n%s", rc, tail(out, 2000));
    free(out);

    conf = str("%s/broker.conf", tmp_root);
    db = str("%s/broker.db", tmp_root);
    example_with_defaults_on("broker.conf.example", conf);
    char *broker_argv[] = { (char *) broker, "--config", (char *) conf, "--db", (char *) db,
                            "init", NULL };
    rc = run(broker_argv, 60, &out);
    cr_expect_eq(rc, 0, "liangdi-broker refused its example config (%d):\n%s", rc,
                 tail(out, 2000));
    free(out);
}

Test(deploy, man_pages_name_every_command_the_binaries_offer)
{
    size_t node_cmds = check_help_against_man(getenv("LIANGDI_BIN"), "--help", "liangdi.1");
    cr_expect_geq(node_cmds, 20, "liangdi --help listed only %zu commands", node_cmds);
    size_t broker_cmds = check_help_against_man(getenv("LIANGDI_BROKER_BIN"), "help",
                                                 "liangdi-broker.1");
    cr_expect_geq(broker_cmds, 5, "liangdi-broker --help listed only %zu commands", broker_cmds);
}

Test(deploy, man_pages_render_without_warnings)
{
    if (!which("groff"))
        SKIP("groff is not installed here, so the man pages were not rendered");
    skip_under_valgrind("groff is not liangdi");
    static const char *const pages[] = { "liangdi.1", "liangdi-broker.1" };
    for (size_t i = 0; i < 2; i++) {
        char *out;
        const char *path = str("%s/deploy/man/%s", source_root, pages[i]);
        char *argv[] = { "groff", "-man", "-ww", "-z", "-K", "utf8", "-Tutf8", (char *) path,
                         NULL };
        int rc = run(argv, 60, &out);
        cr_expect_eq(rc, 0, "groff failed on %s (%d):\n%s", pages[i], rc, tail(out, 2000));
        cr_expect_str_empty(out, "groff warns about %s:\n%s", pages[i], tail(out, 2000));
        free(out);
    }
}

Test(deploy, quickstart_runs_twice_prints_both_reports_agrees_on_digests_and_leaves_no_process_behind)
{
    skip_under_valgrind("the quickstart is a script that starts a broker and three nodes");
    char who[512];
    const char *script = str("%s/deploy/quickstart.sh", source_root);
    const char *demo = str("%s/demo", tmp_root);
    char *dongguan_member = first_member_of("dongguan");
    char *shenzhen_member = first_member_of("shenzhen");
    for (int round = 1; round <= 2; round++) {
        char *out;
        char *argv[] = { "bash", (char *) script, (char *) demo, NULL };
        int64_t t0 = hn_now_ms();
        int rc = run(argv, 600, &out);
        cr_assert_eq(rc, 0, "quickstart run %d exited %d after %.0f s:\n%s", round, rc,
                     (double) (hn_now_ms() - t0) / 1000.0, tail(out, 6000));
        const char *report = strstr(out, "compliance report as of 2010-07-01");
        cr_assert_not_null(report, "run %d printed no report heading:\n%s", round,
                           tail(out, 3000));
        const char *members = strstr(report, "Dongguan branch's view of its own members");
        cr_assert_not_null(members, "run %d printed no Dongguan member list:\n%s", round,
                           tail(out, 3000));
        cr_expect_gt(members - report, 200, "run %d: the report is empty:\n%s", round,
                     tail(out, 3000));
        cr_expect_not_null(strstr(members, dongguan_member),
                           "run %d: Dongguan does not list its member %s:\n%s", round,
                           dongguan_member, tail(out, 3000));
        cr_expect_null(strstr(members, shenzhen_member),
                       "run %d: Dongguan lists %s, a Shenzhen member:\n%s", round,
                       shenzhen_member, tail(out, 3000));
        cr_expect_not_null(strstr(members, "zhuyuan and dongguan  agree on "),
                           "run %d: no digest agreement with Dongguan:\n%s", round,
                           tail(out, 3000));
        cr_expect_not_null(strstr(members, "zhuyuan and shenzhen  agree on "),
                           "run %d: no digest agreement with Shenzhen:\n%s", round,
                           tail(out, 3000));
        cr_expect(!process_mentions(demo, who, sizeof who),
                  "run %d left a process behind: %s", round, who);
        free(out);
    }
    free(dongguan_member);
    free(shenzhen_member);
}
