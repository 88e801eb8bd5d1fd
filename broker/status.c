/* status.c: what the broker's listing commands print: nodes, links, and the status
 * table, in columns aligned by display width (a Chinese character takes two). */
#include "status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "text.h"

#define ST_COLS_MAX 8

/* A table of owned cells, printed once every row is in. */
typedef struct st_table {
    size_t   ncols;
    char   **cells;          /* rows * ncols */
    size_t   nrows, cap;
    bool     failed;
} st_table_t;

static void st_add(st_table_t *t, const char *const *row)
{
    if (t->failed)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof *grown);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->cells = grown;
        t->cap = cap;
    }
    char **cells = &t->cells[t->nrows * t->ncols];
    for (size_t c = 0; c < t->ncols; c++) {
        const char *text = row[c] ? row[c] : "";
        /* a stored name is shown only if it is valid UTF-8 */
        cells[c] = strdup(ld_utf8_valid(text, strlen(text)) ? text : "?");
        if (!cells[c])
            t->failed = true;
    }
    t->nrows++;
}

static void st_free(st_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

static int st_print(st_table_t *t, FILE *out, ld_error_t *err)
{
    size_t width[ST_COLS_MAX] = { 0 };
    if (t->failed)
        return ld_error_set(err, LD_ENOMEM, "out of memory building the table");
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = ld_display_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, out);
            if (c + 1 < t->ncols) {
                size_t pad = width[c] - ld_display_width(cell) + 2;
                for (size_t i = 0; i < pad; i++)
                    fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
    if (fflush(out) != 0 || ferror(out))
        return ld_error_set(err, LD_EIO, "cannot write the table");
    return 0;
}

void bk_status_time(int64_t t, char out[24])
{
    struct tm tm;
    time_t cst = (time_t)t + 8 * 3600;      /* China Standard Time: UTC+8, no DST */
    if (t <= 0 || !gmtime_r(&cst, &tm) || strftime(out, 24, "%Y-%m-%d %H:%M CST", &tm) == 0)
        strcpy(out, "-");
}

static int st_node_row(void *ctx, const bk_node_info_t *n)
{
    const char *row[4] = { n->id, n->name, n->key, n->removed ? "removed" : "active" };
    st_add(ctx, row);
    return 0;
}

int bk_status_nodes(bk_registry_t *registry, FILE *out, ld_error_t *err)
{
    static const char *const head[4] = { "ID", "NAME", "KEY", "STATE" };
    st_table_t t = { .ncols = 4 };
    st_add(&t, head);
    int rc = bk_registry_each_node(registry, st_node_row, &t, err);
    if (rc == 0)
        rc = st_print(&t, out, err);
    st_free(&t);
    return rc;
}

static int st_link_row(void *ctx, const char *a, const char *b)
{
    const char *row[2] = { a, b };
    st_add(ctx, row);
    return 0;
}

int bk_status_links(bk_registry_t *registry, FILE *out, ld_error_t *err)
{
    static const char *const head[2] = { "NODE_A", "NODE_B" };
    st_table_t t = { .ncols = 2 };
    st_add(&t, head);
    int rc = bk_registry_each_link(registry, st_link_row, &t, err);
    if (rc == 0)
        rc = st_print(&t, out, err);
    st_free(&t);
    return rc;
}

typedef struct st_status_ctx {
    st_table_t    table;
    bk_mailbox_t *mailbox;
    ld_error_t   *err;
    int           rc;
} st_status_ctx_t;

static int st_status_row(void *ctx, const bk_node_info_t *n)
{
    st_status_ctx_t *s = ctx;
    char seen[24], depth[24], pushed[24], fetched[24];
    uint64_t d = 0;
    s->rc = bk_mailbox_depth(s->mailbox, n->id, &d, s->err);
    if (s->rc < 0)
        return 1;
    bk_status_time(n->last_seen, seen);
    snprintf(depth, sizeof depth, "%" PRIu64, d);
    snprintf(pushed, sizeof pushed, "%" PRIu64, n->pushed);
    snprintf(fetched, sizeof fetched, "%" PRIu64, n->fetched);
    const char *row[7] = { n->id, n->name, seen, depth, pushed, fetched,
                           n->removed ? "yes" : "no" };
    st_add(&s->table, row);
    return 0;
}

int bk_status_print(bk_registry_t *registry, bk_mailbox_t *mailbox, FILE *out,
                    ld_error_t *err)
{
    static const char *const head[7] = { "ID", "NAME", "LAST SEEN", "DEPTH", "PUSHED",
                                         "FETCHED", "REMOVED" };
    st_status_ctx_t s = { .table = { .ncols = 7 }, .mailbox = mailbox, .err = err };
    st_add(&s.table, head);
    int rc = bk_registry_each_node(registry, st_status_row, &s, err);
    if (rc == 0)
        rc = s.rc;
    if (rc == 0)
        rc = st_print(&s.table, out, err);
    st_free(&s.table);
    return rc;
}
