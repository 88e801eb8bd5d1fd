/* import.c: an RFC 4180 CSV parser over a buffer (also the fuzz target's entry), and
 * `member import`: check every row, then write them all in one group, or none. */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "cli.h"
#include "log.h"
#include "schema.h"
#include "text.h"

#define IMPORT_FILE_MAX  (1024u * 1024u * 1024u)   /* 1 GiB of CSV */
#define IMPORT_ERRORS_MAX 1000000                  /* counted, only the first is told */

/* ------------------------------------------------------------------ CSV ---- */

typedef struct csv_row {
    char   *data;                        /* the cells' bytes, each followed by a NUL */
    size_t  len, cap;
    size_t  starts[ND_CSV_CELLS_MAX];
    size_t  lens[ND_CSV_CELLS_MAX];
    size_t  ncells;
    size_t  cell_start;
} csv_row_t;

static int csv_put(csv_row_t *row, char ch)
{
    if (row->len + 1 >= row->cap) {
        size_t cap = row->cap ? row->cap * 2 : 1024;
        char *data = realloc(row->data, cap);
        if (!data)
            return LD_ENOMEM;
        row->data = data;
        row->cap = cap;
    }
    row->data[row->len++] = ch;
    return 0;
}

static int csv_end_cell(csv_row_t *row, size_t line, ld_error_t *err)
{
    if (row->ncells == ND_CSV_CELLS_MAX)
        return ld_error_set(err, LD_EINVAL, "line %zu: more than %d cells", line,
                            ND_CSV_CELLS_MAX);
    if (row->len - row->cell_start > ND_CSV_CELL_MAX)
        return ld_error_set(err, LD_EINVAL, "line %zu: cell %zu is longer than %u bytes", line,
                            row->ncells + 1, ND_CSV_CELL_MAX);
    row->starts[row->ncells] = row->cell_start;
    row->lens[row->ncells] = row->len - row->cell_start;
    row->ncells++;
    if (csv_put(row, '\0') != 0)
        return ld_error_set(err, LD_ENOMEM, "out of memory reading CSV");
    row->cell_start = row->len;
    return 0;
}

static int csv_end_row(csv_row_t *row, size_t line, nd_csv_row_fn fn, void *ctx,
                       ld_error_t *err)
{
    const char *cells[ND_CSV_CELLS_MAX];
    int rc = 0;
    /* An empty line is one empty cell: skipped. */
    if (!(row->ncells == 1 && row->lens[0] == 0)) {
        for (size_t i = 0; i < row->ncells; i++)
            cells[i] = row->data + row->starts[i];
        rc = fn(ctx, line, row->ncells, cells, row->lens, err);
    }
    row->len = 0;
    row->ncells = 0;
    row->cell_start = 0;
    return rc;
}

int nd_csv_parse(const char *buf, size_t len, nd_csv_row_fn fn, void *ctx, ld_error_t *err)
{
    csv_row_t row = { 0 };
    size_t i = 0, line = 1, row_line = 1;
    bool quoted = false, at_cell_start = true, after_quote = false;
    int rc = 0;

    i = ld_utf8_bom_len(buf, len);
    while (i < len) {
        char ch = buf[i];
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < len && buf[i + 1] == '"') {
                    if (csv_put(&row, '"') != 0)
                        goto nomem;
                    i += 2;
                    continue;
                }
                quoted = false;
                after_quote = true;
                i++;
                continue;
            }
            if (ch == '\n')
                line++;
            if (csv_put(&row, ch) != 0)
                goto nomem;
        } else if (ch == ',') {
            rc = csv_end_cell(&row, row_line, err);
            if (rc != 0)
                goto out;
            at_cell_start = true;
            after_quote = false;
        } else if (ch == '\n' || ch == '\r') {
            if (ch == '\r' && i + 1 < len && buf[i + 1] == '\n')
                i++;
            rc = csv_end_cell(&row, row_line, err);
            if (rc == 0)
                rc = csv_end_row(&row, row_line, fn, ctx, err);
            if (rc != 0)
                goto out;
            line++;
            row_line = line;
            at_cell_start = true;
            after_quote = false;
        } else if (after_quote) {
            rc = ld_error_set(err, LD_EINVAL, "line %zu: text after a closing quote (cell %zu)",
                              line, row.ncells + 1);
            goto out;
        } else if (ch == '"') {
            if (!at_cell_start) {
                rc = ld_error_set(err, LD_EINVAL, "line %zu: a quote inside an unquoted cell"
                                  " (cell %zu; quote the whole cell and double the quote)",
                                  line, row.ncells + 1);
                goto out;
            }
            quoted = true;
            at_cell_start = false;
        } else {
            at_cell_start = false;
            if (csv_put(&row, ch) != 0)
                goto nomem;
        }
        if (row.len - row.cell_start > ND_CSV_CELL_MAX) {
            rc = ld_error_set(err, LD_EINVAL, "line %zu: cell %zu is longer than %u bytes",
                              line, row.ncells + 1, ND_CSV_CELL_MAX);
            goto out;
        }
        i++;
    }
    if (quoted) {
        rc = ld_error_set(err, LD_EINVAL, "line %zu: a quoted cell is never closed", row_line);
        goto out;
    }
    /* The last row, when the file does not end with a line end. */
    if (row.len > 0 || row.ncells > 0 || after_quote) {
        rc = csv_end_cell(&row, row_line, err);
        if (rc == 0)
            rc = csv_end_row(&row, row_line, fn, ctx, err);
    }
    goto out;
nomem:
    rc = ld_error_set(err, LD_ENOMEM, "out of memory reading CSV");
out:
    free(row.data);
    return rc;
}

/* ------------------------------------------------------------- string map ---- */

/* A string -> string map (open addressing), for org names and duplicate keys. */
typedef struct strmap {
    char  **keys;
    char  **values;
    size_t  cap, n;
} strmap_t;

static uint64_t strmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ull;
    }
    return h;
}

static void strmap_free(strmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static size_t strmap_slot(const strmap_t *m, const char *key)
{
    size_t i = (size_t) strmap_hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static const char *strmap_get(const strmap_t *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = strmap_slot(m, key);
    return m->keys[i] ? m->values[i] : NULL;
}

static int strmap_grow(strmap_t *m)
{
    strmap_t bigger = { 0 };
    bigger.cap = m->cap ? m->cap * 2 : 64;
    bigger.keys = calloc(bigger.cap, sizeof(char *));
    bigger.values = calloc(bigger.cap, sizeof(char *));
    if (!bigger.keys || !bigger.values) {
        free(bigger.keys);
        free(bigger.values);
        return LD_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = strmap_slot(&bigger, m->keys[i]);
        bigger.keys[j] = m->keys[i];
        bigger.values[j] = m->values[i];
    }
    bigger.n = m->n;
    free(m->keys);
    free(m->values);
    *m = bigger;
    return 0;
}

/* Sets key to value (both copied), replacing an existing value. 0 or LD_ENOMEM. */
static int strmap_put(strmap_t *m, const char *key, const char *value)
{
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != 0)
        return LD_ENOMEM;
    size_t i = strmap_slot(m, key);
    char *v = strdup(value);
    if (!v)
        return LD_ENOMEM;
    if (m->keys[i]) {
        free(m->values[i]);
        m->values[i] = v;
        return 0;
    }
    m->keys[i] = strdup(key);
    if (!m->keys[i]) {
        free(v);
        return LD_ENOMEM;
    }
    m->values[i] = v;
    m->n++;
    return 0;
}

/* ---------------------------------------------------------- member import ---- */

enum { COL_NAME, COL_ORG, COL_GENDER, COL_BORN, COL_JOINED, COL_PHONE, COL_ID_NUMBER, NCOLS };

static const char *const import_columns[NCOLS] = {
    "name", "org", "gender", "born", "joined", "phone", "id-number",
};
static const char *const import_fields[NCOLS] = {
    "name", "org", "gender", "born", "joined", "phone", "id_number",
};
/* The headings a roster kept in a Chinese spreadsheet gives the same columns. */
static const char *const import_headings[NCOLS] = {
    "姓名", "党支部", "性别", "出生日期", "入党日期", "联系电话", "身份证号",
};

#define AMBIGUOUS "\x01"   /* an org name two orgs share */

typedef struct import_row {
    size_t line;
    char  *values[NCOLS];    /* stored form; NULL when the column is absent or empty */
} import_row_t;

typedef struct import_ctx {
    nd_store_t   *store;
    const char   *path;
    bool          have_header;
    int           column_of_cell[ND_CSV_CELLS_MAX];   /* -1: none */
    size_t        ncells;
    strmap_t      orgs;            /* org id or name -> id (or AMBIGUOUS) */
    strmap_t      org_nodes;       /* org id -> the node that keeps it, for other nodes' */
    strmap_t      numbers;         /* id number -> "member ID" or "line N" */
    strmap_t      people;          /* name \x1f org \x1f born -> the same */
    import_row_t *rows;
    size_t        nrows, cap;
    size_t        nerrors;
    ld_error_t    first;           /* the first row error */
} import_ctx_t;

static void import_ctx_free(import_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->nrows; i++)
        for (int k = 0; k < NCOLS; k++)
            free(ctx->rows[i].values[k]);
    free(ctx->rows);
    strmap_free(&ctx->orgs);
    strmap_free(&ctx->org_nodes);
    strmap_free(&ctx->numbers);
    strmap_free(&ctx->people);
}

static int import_load_orgs(import_ctx_t *ctx, ld_error_t *err)
{
    sqlite3 *db = nd_store_db(ctx->store);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT \"id\", coalesce(\"name\", ''),"
                                " coalesce(\"node\", '') FROM \"orgs\""
                                " WHERE coalesce(\"deleted\", 0) = 0", -1, &st, NULL);
    const char *self = nd_store_node_id(ctx->store);
    /* Names first, then ids, so an id always wins over a name. */
    strmap_t ids = { 0 };
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text(st, 0);
        const char *name = (const char *) sqlite3_column_text(st, 1);
        if (!id)
            continue;
        const char *node = (const char *) sqlite3_column_text(st, 2);
        if (strmap_put(&ids, id, id) != 0)
            goto nomem;
        if (node && *node && strcmp(node, self) != 0 &&
            strmap_put(&ctx->org_nodes, id, node) != 0)
            goto nomem;
        if (name && *name) {
            const char *seen = strmap_get(&ctx->orgs, name);
            if (strmap_put(&ctx->orgs, name, seen && strcmp(seen, id) != 0 ? AMBIGUOUS : id) != 0)
                goto nomem;
        }
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        strmap_free(&ids);
        return LD_EIO;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < ids.cap; i++)
        if (ids.keys[i] && strmap_put(&ctx->orgs, ids.keys[i], ids.values[i]) != 0)
            goto nomem;
    strmap_free(&ids);
    return 0;
nomem:
    sqlite3_finalize(st);
    strmap_free(&ids);
    return ld_error_set(err, LD_ENOMEM, "out of memory");
}

/* "name \x1f org \x1f born" into *out (malloc'd); 0 or LD_ENOMEM.  Joined by hand: once
 * per row and per stored member, where asprintf showed in the profile. */
static int person_key(char **out, const char *name, const char *org, const char *born)
{
    const char *parts[3] = { name ? name : "", org ? org : "", born ? born : "" };
    size_t lens[3], total = 3;
    for (int i = 0; i < 3; i++)
        total += lens[i] = strlen(parts[i]);
    char *key = malloc(total);
    *out = key;
    if (!key)
        return LD_ENOMEM;
    for (int i = 0; i < 3; i++) {
        memcpy(key, parts[i], lens[i]);
        key += lens[i];
        *key++ = i < 2 ? '\x1f' : '\0';
    }
    return 0;
}

static int import_load_members(import_ctx_t *ctx, ld_error_t *err)
{
    sqlite3 *db = nd_store_db(ctx->store);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT \"id\", coalesce(\"id_number\", ''), coalesce(\"name\", ''),"
                                " coalesce(\"org\", ''), coalesce(\"born\", '') FROM \"members\""
                                " WHERE coalesce(\"deleted\", 0) = 0", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char what[LD_RECORD_ID_MAX + 16];
        char *key = NULL;
        snprintf(what, sizeof what, "member %s", (const char *) sqlite3_column_text(st, 0));
        const char *number = (const char *) sqlite3_column_text(st, 1);
        if (number && *number && strmap_put(&ctx->numbers, number, what) != 0)
            goto nomem;
        if (person_key(&key, (const char *) sqlite3_column_text(st, 2),
                       (const char *) sqlite3_column_text(st, 3),
                       (const char *) sqlite3_column_text(st, 4)) != 0)
            goto nomem;
        int prc = strmap_put(&ctx->people, key, what);
        free(key);
        if (prc != 0)
            goto nomem;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return LD_EIO;
    }
    sqlite3_finalize(st);
    return 0;
nomem:
    sqlite3_finalize(st);
    return ld_error_set(err, LD_ENOMEM, "out of memory");
}

/* Notes a row error: the first is kept whole, the rest counted. */
static int import_row_error(import_ctx_t *ctx, const ld_error_t *e)
{
    if (ctx->nerrors++ == 0)
        ctx->first = *e;
    return ctx->nerrors >= IMPORT_ERRORS_MAX ? LD_EINVAL : 0;
}

static int import_header(import_ctx_t *ctx, size_t line, size_t ncells, const char *const *cells,
                         const size_t *lens, ld_error_t *err)
{
    bool seen[NCOLS] = { false };
    char quoted[256];
    for (size_t i = 0; i < ncells; i++) {
        const char *name = cells[i];
        if (lens[i] != strlen(name) || !ld_utf8_valid(name, lens[i])) {
            ld_quote(name, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_EINVAL, "%s:%zu: column %zu: bad column name '%s'"
                                " (not valid UTF-8)", ctx->path, line, i + 1, quoted);
        }
        int col = -1;
        for (int k = 0; k < NCOLS; k++)
            if (strcmp(name, import_columns[k]) == 0 || strcmp(name, import_fields[k]) == 0 ||
                strcmp(name, import_headings[k]) == 0)
                col = k;
        if (col < 0) {
            ld_quote(name, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(err, LD_EINVAL, "%s:%zu: unknown column '%s' (columns: name,org,"
                                "gender,born,joined,phone,id-number, or 姓名,党支部,性别,出生日期,"
                                "入党日期,联系电话,身份证号)", ctx->path, line, quoted);
        }
        if (seen[col])
            return ld_error_set(err, LD_EINVAL, "%s:%zu: column '%s' given twice", ctx->path, line,
                                import_columns[col]);
        seen[col] = true;
        ctx->column_of_cell[i] = col;
    }
    for (int k = COL_NAME; k <= COL_ORG; k++)
        if (!seen[k])
            return ld_error_set(err, LD_EINVAL, "%s:%zu: missing column '%s' (name and org are"
                                " required)", ctx->path, line, import_columns[k]);
    ctx->ncells = ncells;
    ctx->have_header = true;
    return 0;
}

/* Names a cell for a message: "FILE:LINE: column COL" into what[size].  Only built
 * when a cell is refused: formatting it for every cell cost a tenth of an import. */
static void cell_what(const import_ctx_t *ctx, size_t line, int col, char *what, size_t size)
{
    snprintf(what, size, "%s:%zu: column %s", ctx->path, line, import_columns[col]);
}

/* Checks one cell; on success *out is its stored form (malloc'd, NULL for empty). */
static int import_cell(import_ctx_t *ctx, size_t line, int col, const char *cell, size_t len,
                       char **out, ld_error_t *e)
{
    char what[512];
    char quoted[256];
    *out = NULL;
    if (len != strlen(cell) || !ld_utf8_valid(cell, len)) {
        cell_what(ctx, line, col, what, sizeof what);
        return nd_bad_value(e, what, cell, "not valid UTF-8 text; a file saved by Excel on "
                            "Chinese Windows is GBK: add --encoding gbk");
    }
    if (col == COL_ORG) {
        const char *id = *cell ? strmap_get(&ctx->orgs, cell) : NULL;
        if (!id || strcmp(id, AMBIGUOUS) == 0)
            cell_what(ctx, line, col, what, sizeof what);
        if (!*cell)
            return nd_bad_value(e, what, cell, "an org id or name is needed");
        if (!id) {
            ld_quote(cell, LD_QUOTE_MAX, quoted, sizeof quoted);
            return ld_error_set(e, LD_EINVAL, "%s: bad value '%s' (no such org, by id or name)",
                                what, quoted);
        }
        if (strcmp(id, AMBIGUOUS) == 0)
            return nd_bad_value(e, what, cell, "two orgs have this name; give the org's id");
        const char *keeper = strmap_get(&ctx->org_nodes, id);
        if (keeper) {
            cell_what(ctx, line, col, what, sizeof what);
            return nd_bad_org_elsewhere(e, what, cell, keeper);
        }
        *out = strdup(id);
        return *out ? 0 : ld_error_set(e, LD_ENOMEM, "out of memory");
    }
    /* The check names the cell only when it fails: it runs again with the name then. */
    int rc = nd_field_from_text(ctx->store, LD_KIND_MEMBER, import_fields[col], "", cell, out, e);
    if (rc != 0 && rc != LD_ENOMEM) {
        free(*out);
        *out = NULL;
        cell_what(ctx, line, col, what, sizeof what);
        rc = nd_field_from_text(ctx->store, LD_KIND_MEMBER, import_fields[col], what, cell, out, e);
    }
    if (rc == 0 && **out == '\0') {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Checks a row against stored members and earlier rows, and remembers it. */
static int import_check_duplicates(import_ctx_t *ctx, import_row_t *row, ld_error_t *e)
{
    char here[32];
    char *key = NULL;
    char what[512];
    snprintf(here, sizeof here, "line %zu", row->line);
    const char *number = row->values[COL_ID_NUMBER];
    if (number) {
        const char *other = strmap_get(&ctx->numbers, number);
        if (other) {
            char why[128];
            snprintf(why, sizeof why, "a duplicate: %s has this id number", other);
            snprintf(what, sizeof what, "%s:%zu: column id-number", ctx->path, row->line);
            return nd_bad_value(e, what, number, why);
        }
    }
    if (person_key(&key, row->values[COL_NAME], row->values[COL_ORG], row->values[COL_BORN]) != 0)
        return ld_error_set(e, LD_ENOMEM, "out of memory");
    const char *other = strmap_get(&ctx->people, key);
    if (other) {
        char why[160];
        snprintf(why, sizeof why, "a duplicate: %s has the same name, org and born", other);
        snprintf(what, sizeof what, "%s:%zu: column name", ctx->path, row->line);
        free(key);
        return nd_bad_value(e, what, row->values[COL_NAME], why);
    }
    int rc = strmap_put(&ctx->people, key, here);
    free(key);
    if (rc == 0 && number)
        rc = strmap_put(&ctx->numbers, number, here);
    return rc == 0 ? 0 : ld_error_set(e, LD_ENOMEM, "out of memory");
}

static int import_on_row(void *user, size_t line, size_t ncells, const char *const *cells,
                         const size_t *lens, ld_error_t *err)
{
    import_ctx_t *ctx = user;
    ld_error_t e;
    import_row_t row = { .line = line };
    int rc = 0;
    if (!ctx->have_header)
        return import_header(ctx, line, ncells, cells, lens, err);
    ld_error_clear(&e);
    if (ncells != ctx->ncells) {
        ld_error_set(&e, LD_EINVAL, "%s:%zu: %zu cells where the header has %zu", ctx->path, line,
                     ncells, ctx->ncells);
        return import_row_error(ctx, &e);
    }
    for (size_t i = 0; i < ncells && rc == 0; i++) {
        int col = ctx->column_of_cell[i];
        rc = import_cell(ctx, line, col, cells[i], lens[i], &row.values[col], &e);
    }
    if (rc == 0 && !row.values[COL_NAME]) {
        char what[512];
        snprintf(what, sizeof what, "%s:%zu: column name", ctx->path, line);
        rc = nd_bad_value(&e, what, "", "a name is needed");
    }
    const char *born = row.values[COL_BORN], *joined = row.values[COL_JOINED];
    if (rc == 0 && born && joined && strcmp(joined, born) < 0) {
        char what[512];
        snprintf(what, sizeof what, "%s:%zu: column joined", ctx->path, line);
        rc = nd_bad_value(&e, what, joined, "before the member was born");
    }
    if (rc == 0)
        rc = import_check_duplicates(ctx, &row, &e);
    if (rc == LD_ENOMEM) {
        *err = e;
        goto fail;
    }
    if (rc != 0) {
        rc = import_row_error(ctx, &e);
        if (rc != 0)
            *err = ctx->first;
        goto fail;
    }
    if (ctx->nerrors > 0)      /* the file is refused anyway: keep only counting */
        goto fail;
    if (ctx->nrows == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 1024;
        import_row_t *rows = realloc(ctx->rows, cap * sizeof *rows);
        if (!rows) {
            rc = ld_error_set(err, LD_ENOMEM, "out of memory");
            goto fail;
        }
        ctx->rows = rows;
        ctx->cap = cap;
    }
    ctx->rows[ctx->nrows++] = row;
    return 0;
fail:
    for (int k = 0; k < NCOLS; k++)
        free(row.values[k]);
    return rc;
}

/* Reads the whole file into a malloc'd buffer. */
static int import_read(const char *path, char **buf, size_t *len, ld_error_t *err)
{
    struct stat sb;
    char quoted[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *buf = NULL;
    ld_quote(path, LD_QUOTE_MAX, quoted, sizeof quoted);
    if (fd < 0)
        return ld_error_set(err, errno == ENOENT ? LD_EINVAL : LD_EIO, "FILE: cannot open '%s': %s",
                            quoted, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t) sb.st_size > IMPORT_FILE_MAX) {
        close(fd);
        return ld_error_set(err, LD_EINVAL, "FILE: '%s' is not a regular file of at most 1 GiB",
                            quoted);
    }
    size_t size = (size_t) sb.st_size, got = 0;
    *buf = malloc(size + 1);
    if (!*buf) {
        close(fd);
        return ld_error_set(err, LD_ENOMEM, "out of memory reading '%s'", quoted);
    }
    while (got < size) {
        ssize_t n = read(fd, *buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close(fd);
    if (got != size) {
        free(*buf);
        *buf = NULL;
        return ld_error_set(err, LD_EIO, "cannot read '%s'", quoted);
    }
    (*buf)[size] = '\0';
    *len = size;
    return 0;
}

/* The page cache of the store's connection, in KiB (negative, as PRAGMA cache_size
 * takes it), so an import's one big transaction is not spilled to the WAL page by
 * page before it commits.  Returns the previous value. */
static int import_cache_kib(sqlite3 *db, int kib)
{
    sqlite3_stmt *st = NULL;
    int previous = -2000;
    char sql[64];
    if (sqlite3_prepare_v2(db, "PRAGMA cache_size", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        previous = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql, "PRAGMA cache_size = %d", kib);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        ld_debug("import: cannot set the cache size: %s", sqlite3_errmsg(db));
    return previous;
}

static int import_write(import_ctx_t *ctx, ld_error_t *err)
{
    ld_change_t c;
    sqlite3 *db = nd_store_db(ctx->store);
    /* About 2 KiB of pages per row, up to 256 MiB. */
    size_t want = ctx->nrows * 2 + 8192;
    int previous = import_cache_kib(db, -(int) (want < 262144 ? want : 262144));
    /* Every row was checked above, and the rows go in all or none: no savepoint each. */
    int rc = nd_store_begin_bulk(ctx->store, err);
    if (rc != 0)
        return rc;
    ld_change_init(&c);
    for (size_t i = 0; i < ctx->nrows && rc == 0; i++) {
        import_row_t *row = &ctx->rows[i];
        ld_change_clear(&c);
        c.kind = LD_KIND_MEMBER;
        for (int k = 0; k < NCOLS && rc == 0; k++)
            if (row->values[k])
                rc = ld_change_set(&c, import_fields[k], row->values[k], err);
        if (rc == 0)
            rc = nd_store_create(ctx->store, &c, err);
        if (rc != 0) {
            ld_error_t inner = *err;
            ld_error_set(err, rc, "%s:%zu: %s", ctx->path, row->line, inner.msg);
        }
    }
    ld_change_clear(&c);
    if (rc == 0)
        rc = nd_store_commit(ctx->store, err);
    else
        nd_store_rollback(ctx->store);
    import_cache_kib(db, previous);
    return rc;
}

/* Replaces buf[0..len) (malloc'd) with its UTF-8 form, read as GB18030.  0, or LD_EINVAL
 * naming the line of the first byte that is not GB18030. */
static int import_from_gbk(const char *path, char **buf, size_t *len, ld_error_t *err)
{
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t) -1)
        return ld_error_set(err, LD_EIO, "this system cannot read GB18030 (iconv: %s)",
                            strerror(errno));
    size_t cap = *len * 2 + 4, left_in = *len, left_out = cap;
    char *out = malloc(cap), *in = *buf, *o = out;
    int rc = out ? 0 : ld_error_set(err, LD_ENOMEM, "out of memory reading '%s'", path);
    if (rc == 0 && iconv(cd, &in, &left_in, &o, &left_out) == (size_t) -1) {
        size_t line = 1;
        for (const char *p = *buf; p < in; p++)
            line += *p == '\n';
        rc = ld_error_set(err, LD_EINVAL, "%s:%zu: not GB18030 (GBK) text either", path, line);
    }
    iconv_close(cd);
    if (rc != 0) {
        free(out);
        return rc;
    }
    *o = '\0';
    free(*buf);
    *buf = out;
    *len = (size_t) (o - out);
    return 0;
}

int nd_import_members(nd_store_t *store, const char *path, size_t *count, ld_error_t *err)
{
    return nd_import_members_in(store, path, NULL, count, err);
}

int nd_import_members_in(nd_store_t *store, const char *path, const char *encoding,
                         size_t *count, ld_error_t *err)
{
    import_ctx_t ctx = { .store = store, .path = path };
    char *buf = NULL;
    size_t len = 0;
    *count = 0;
    bool gbk = encoding && strcmp(encoding, "gbk") == 0;
    if (encoding && !gbk && strcmp(encoding, "utf-8") != 0)
        return nd_bad_value(err, "--encoding", encoding, "expected utf-8|gbk");
    int rc = import_read(path, &buf, &len, err);
    if (rc == 0 && gbk)
        rc = import_from_gbk(path, &buf, &len, err);
    if (rc == 0)
        rc = import_load_orgs(&ctx, err);
    if (rc == 0)
        rc = import_load_members(&ctx, err);
    if (rc == 0) {
        rc = nd_csv_parse(buf, len, import_on_row, &ctx, err);
        if (rc != 0 && strncmp(err->msg, "line ", 5) == 0) {
            ld_error_t inner = *err;
            ld_error_set(err, rc, "%s:%s", path, inner.msg + 5);
        }
    }
    if (rc == 0 && !ctx.have_header)
        rc = ld_error_set(err, LD_EINVAL, "%s: empty (a header row naming the columns is needed)",
                          path);
    if (rc == 0 && ctx.nerrors > 0) {
        if (ctx.nerrors == 1)
            rc = ld_error_set(err, LD_EINVAL, "%s; nothing imported", ctx.first.msg);
        else
            rc = ld_error_set(err, LD_EINVAL, "%s; %zu more rows have errors; nothing imported",
                              ctx.first.msg, ctx.nerrors - 1);
    }
    if (rc == 0)
        rc = import_write(&ctx, err);
    if (rc == 0)
        *count = ctx.nrows;
    free(buf);
    import_ctx_free(&ctx);
    return rc;
}
