/* cmd_batch.c: `liangdi batch FILE`: the record commands of a file (or of standard input,
 * "-"), one per line, run in one process and one transaction: every line is written, or
 * none is and the store stays as it was.  For a booklet's page entered at once, or a
 * script's thousand writes without a thousand process starts.  With --check every line
 * runs and the transaction is rolled back: the file is tried against the store as it is,
 * and nothing is written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "text.h"

#define BATCH_WORDS_MAX 160               /* 64 flags and their values, and arguments */
#define BATCH_LINE_MAX  (1024 * 1024)     /* a longer line is refused */

/* Runs one line (its words in argv[1..argc)); on failure re-words err to name the line
 * and its command. */
static int run_line(nd_cli_t *cli, const char *name, size_t lineno, int argc, char **argv,
                    ld_error_t *err)
{
    ld_error_t line_err;
    char words[64];

    ld_error_clear(&line_err);
    int rc = nd_cli_run_line(cli, argc, argv, words, sizeof words, &line_err);
    if (rc == 0)
        return 0;
    return ld_error_set(err, rc, "%s, line %zu%s%s%s: %s", name, lineno, *words ? " (" : "",
                        words, *words ? ")" : "",
                        line_err.msg[0] ? line_err.msg : ld_strerror(rc));
}

/* Reads and runs every line of f inside the open group; *count is the commands run.
 * 0, or an LD_E* code with err naming the line. */
static int run_lines(nd_cli_t *cli, FILE *f, const char *name, size_t *count,
                     ld_error_t *err)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    char *argv[BATCH_WORDS_MAX + 1];
    ssize_t len;
    int rc = 0;

    argv[0] = "liangdi";
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        size_t nwords = 0;
        lineno++;
        if (len > BATCH_LINE_MAX) {
            rc = ld_error_set(err, LD_EINVAL, "%s, line %zu: longer than %d bytes", name,
                              lineno, BATCH_LINE_MAX);
            break;
        }
        if ((size_t) len != strlen(line)) {
            rc = ld_error_set(err, LD_EINVAL, "%s, line %zu: a NUL byte", name, lineno);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        /* the byte-order mark Notepad puts before a file it saves as UTF-8 */
        size_t bom = lineno == 1 ? ld_utf8_bom_len(line, (size_t) len) : 0;
        char *text = line + bom;
        if (!ld_utf8_valid(text, (size_t) len - bom)) {
            rc = ld_error_set(err, LD_EINVAL, "%s, line %zu: not valid UTF-8 (save the file "
                              "as UTF-8)", name, lineno);
            break;
        }
        ld_error_t split_err;
        ld_error_clear(&split_err);
        rc = nd_batch_split(text, argv + 1, BATCH_WORDS_MAX, &nwords, &split_err);
        if (rc != 0) {
            rc = ld_error_set(err, rc, "%s, line %zu: %s", name, lineno, split_err.msg);
            break;
        }
        if (nwords == 0)
            continue;
        argv[nwords + 1] = NULL;
        rc = run_line(cli, name, lineno, (int) nwords + 1, argv, err);
        if (rc == 0)
            (*count)++;
    }
    if (rc == 0 && ferror(f))
        rc = ld_error_set(err, LD_EIO, "reading %s: %s", name, strerror(errno));
    free(line);
    return rc;
}

/* What the lines print is held back (standard output goes to a memory file while they
 * run) and printed only once the batch is committed: a line that fails takes back the
 * ids printed before it along with their records. */
typedef struct held {
    int fd;       /* the memory file, or -1 */
    int saved;    /* the real standard output, or -1 */
} held_t;

static int hold_output(held_t *h, ld_error_t *err)
{
    h->fd = memfd_create("liangdi-batch", MFD_CLOEXEC);
    h->saved = -1;
    if (h->fd >= 0 && fflush(stdout) == 0)
        h->saved = dup(STDOUT_FILENO);
    if (h->saved >= 0 && dup2(h->fd, STDOUT_FILENO) == STDOUT_FILENO)
        return 0;
    int e = errno;
    if (h->saved >= 0)
        close(h->saved);
    if (h->fd >= 0)
        close(h->fd);
    h->fd = h->saved = -1;
    return ld_error_set(err, LD_EIO, "cannot hold the batch's output: %s", strerror(e));
}

/* Puts standard output back, and prints what was held when `keep`.  0 or LD_EIO. */
static int release_output(held_t *h, bool keep, ld_error_t *err)
{
    int rc = 0;
    char buf[65536];
    ssize_t n;

    fflush(stdout);
    if (dup2(h->saved, STDOUT_FILENO) != STDOUT_FILENO)
        rc = ld_error_set(err, LD_EIO, "cannot restore standard output: %s", strerror(errno));
    if (rc == 0 && keep && lseek(h->fd, 0, SEEK_SET) == 0) {
        while (rc == 0 && (n = read(h->fd, buf, sizeof buf)) > 0)
            if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
                rc = ld_error_set(err, LD_EIO, "the batch is written, but its output could "
                                  "not be printed: %s", strerror(errno));
    }
    close(h->saved);
    close(h->fd);
    return rc;
}

int nd_cmd_batch(nd_cli_t *cli, ld_error_t *err)
{
    const char *path = nd_cli_arg(cli, 0);
    bool from_stdin = strcmp(path, "-") == 0;
    const char *name = from_stdin ? "standard input" : path;
    bool check = nd_cli_has(cli, "check");
    size_t count = 0;
    held_t held;
    FILE *f = NULL;
    bool committed = false;
    int rc;

    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    f = from_stdin ? stdin : fopen(path, "r");
    if (!f)
        return ld_error_set(err, LD_EIO, "cannot open %s: %s", path, strerror(errno));
    rc = hold_output(&held, err);
    if (rc == 0) {
        rc = nd_store_begin(store, err);
        if (rc == 0) {
            rc = run_lines(cli, f, name, &count, err);
            if (rc == 0 && !check)
                rc = nd_store_commit(store, err);
            else
                nd_store_rollback(store);
            committed = rc == 0 && !check;
        }
        int released = release_output(&held, committed, err);
        if (rc == 0)
            rc = released;
    }
    if (rc != 0 && !committed && err->msg[0]) {
        ld_error_t inner = *err;
        ld_error_set(err, rc, "%s; nothing of the batch was written", inner.msg);
    }
    if (!from_stdin)
        fclose(f);
    if (rc == 0 && check)
        fprintf(stderr, "checked %zu command%s from %s: all would be written (nothing "
                "was)\n", count, count == 1 ? "" : "s", name);
    else if (rc == 0)
        fprintf(stderr, "ran %zu command%s from %s, in one transaction\n", count,
                count == 1 ? "" : "s", name);
    return rc;
}
