/* output.c: a table of text cells rendered four ways: a terminal table aligned by
 * display width, spreadsheet-safe CSV, stable JSON and a printable HTML page.
 *
 * The renderings are byte-for-byte stable (scripts and tests compare them):
 *
 *   table  [title LF] labels LF rule LF rows LF; columns padded by display width and
 *          separated by two spaces, no trailing blanks; control characters in a cell
 *          shown as spaces and invalid UTF-8 as '?', so that one row stays one line;
 *          an empty table shows "(none)" under the rule.
 *   csv    UTF-8 BOM, the keys as header, CRLF after every record; a cell is quoted
 *          when it holds , " CR or LF (quotes doubled); a cell starting with = + - @
 *          TAB or CR gets a leading ' so no spreadsheet runs it as a formula.  No title.
 *   json   {"title":...,"rows":[ LF {"key":"value",...} (,LF ...) LF ]} LF: keys in
 *          column order, every value a string, control characters as \u00XX, '"' and
 *          '\' escaped, valid UTF-8 passed through (invalid bytes become U+FFFD).
 *   html   a complete page: doctype, <meta charset="utf-8">, print CSS, and between
 *          "<body>\n" and "</body>\n" one <section> with <h2>title</h2> and the table;
 *          every title, label and cell HTML-escaped. */
#include "output.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "text.h"

struct nd_table {
    char   *title;      /* NULL: none */
    size_t  ncols;
    char  **keys;       /* ncols ASCII keys */
    char  **labels;     /* ncols labels (the key when none was given) */
    const char **cells; /* nrows * ncols, row-major, never NULL entries: in `text`,
                           or the caller's (nd_table_add_row_kept) */
    size_t  nrows;
    size_t  cap;        /* rows allocated */
    ld_arena_t text;    /* the cells' bytes: a report has millions of them */
};

static const char *const format_names[] = { "table", "csv", "json", "html" };

int nd_format_parse(const char *text, nd_format_t *out)
{
    if (text)
        for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
            if (strcmp(text, format_names[i]) == 0) {
                *out = (nd_format_t) i;
                return 0;
            }
    return LD_EINVAL;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

nd_table_t *nd_table_new(const char *title, size_t ncols, const char *const *keys,
                         const char *const *labels)
{
    nd_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ncols = ncols;
    ld_arena_init(&self->text, 64 * 1024);
    if (title && !(self->title = strdup(title)))
        goto err;
    self->keys = calloc(ncols ? ncols : 1, sizeof *self->keys);
    self->labels = calloc(ncols ? ncols : 1, sizeof *self->labels);
    if (!self->keys || !self->labels)
        goto err;
    for (size_t i = 0; i < ncols; i++) {
        const char *label = labels && labels[i] ? labels[i] : keys[i];
        if (!(self->keys[i] = dup_or_empty(keys[i])) || !(self->labels[i] = dup_or_empty(label)))
            goto err;
    }
    return self;
err:
    nd_table_destroy(&self);
    return NULL;
}

void nd_table_destroy(nd_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nd_table_t *self = *self_p;
    ld_arena_release(&self->text);
    free(self->cells);
    for (size_t i = 0; self->keys && i < self->ncols; i++)
        free(self->keys[i]);
    for (size_t i = 0; self->labels && i < self->ncols; i++)
        free(self->labels[i]);
    free(self->keys);
    free(self->labels);
    free(self->title);
    free(self);
    *self_p = NULL;
}

/* Room for one more row: its ncols slots, or NULL when out of memory. */
static const char **new_row(nd_table_t *self)
{
    if (self->nrows == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        size_t width = self->ncols ? self->ncols : 1;
        if (cap > SIZE_MAX / width / sizeof(char *))
            return NULL;
        const char **grown = realloc(self->cells, cap * width * sizeof(char *));
        if (!grown)
            return NULL;
        self->cells = grown;
        self->cap = cap;
    }
    return self->cells + self->nrows * self->ncols;
}

int nd_table_add_row(nd_table_t *self, const char *const *cells)
{
    const char **row = new_row(self);
    if (!row)
        return LD_ENOMEM;
    for (size_t i = 0; i < self->ncols; i++) {
        const char *cell = cells[i] ? cells[i] : "";
        if (!(row[i] = ld_arena_text(&self->text, cell, strlen(cell))))
            return LD_ENOMEM;      /* the pieces already copied go with the arena */
    }
    self->nrows++;
    return 0;
}

int nd_table_add_row_kept(nd_table_t *self, const char *const *cells)
{
    const char **row = new_row(self);
    if (!row)
        return LD_ENOMEM;
    for (size_t i = 0; i < self->ncols; i++)
        row[i] = cells[i] ? cells[i] : "";
    self->nrows++;
    return 0;
}

size_t nd_table_rows(const nd_table_t *self)
{
    return self->nrows;
}

static const char *cell(const nd_table_t *self, size_t row, size_t col)
{
    return self->cells[row * self->ncols + col];
}

/* The length of the well-formed UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not one (s must be NUL-terminated). */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;   /* bounds of the second byte */
    if (b >= 0xc2 && b <= 0xdf)
        n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        if (b == 0xe0)
            lo = 0xa0;                    /* no overlongs */
        else if (b == 0xed)
            hi = 0x9f;                    /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;                    /* <= U+10FFFF */
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* ---------------------------------------------------------------- table ---- */

/* True if s shows on one terminal line as it is: valid UTF-8, no C0 control, no DEL. */
static bool terminal_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
            return false;
        p += n;
    }
    return true;
}

/* A copy of s fit for one terminal line: C0 controls and DEL become spaces, invalid
 * UTF-8 bytes '?'.  Caller frees; NULL on allocation failure. */
static char *terminal_text(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *) s;
    size_t o = 0;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            out[o++] = '?';
            p++;
        } else if (n == 1) {
            out[o++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char) *p;
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends n bytes of text to the line being built in *buf (of *cap bytes, *len used),
 * then `pad` blanks.  0 or LD_ENOMEM. */
static int line_add(char **buf, size_t *cap, size_t *len, const char *text, size_t n,
                    size_t pad)
{
    size_t need = *len + n + pad + 1;
    if (need > *cap) {
        size_t grown_cap = *cap ? *cap : 256;
        while (grown_cap < need)
            grown_cap *= 2;
        char *grown = realloc(*buf, grown_cap);
        if (!grown)
            return LD_ENOMEM;
        *buf = grown;
        *cap = grown_cap;
    }
    memcpy(*buf + *len, text, n);
    memset(*buf + *len + n, ' ', pad);
    *len += n + pad;
    return 0;
}

static int print_terminal(const nd_table_t *self, FILE *out)
{
    int rc = LD_ENOMEM;
    size_t ncells = self->nrows * self->ncols, nall = ncells + self->ncols;
    /* shown[0..ncols) are the labels, then the cells row by row; copies only of the
     * few that need cleaning (owned[i] set) */
    const char **shown = calloc(nall + 1, sizeof *shown);
    char **owned = calloc(nall + 1, sizeof *owned);
    size_t *cw = calloc(nall + 1, sizeof *cw);
    size_t *width = calloc(self->ncols + 1, sizeof *width);
    char *line = NULL;                    /* the line being written, line_cap bytes */
    size_t line_cap = 0;
    if (!shown || !owned || !cw || !width)
        goto out;
    for (size_t i = 0; i < nall; i++) {
        const char *text = i < self->ncols ? self->labels[i] : self->cells[i - self->ncols];
        if (!terminal_clean(text) && !(text = owned[i] = terminal_text(text)))
            goto out;
        shown[i] = text;
        cw[i] = ld_display_width(text);
        size_t col = i % self->ncols;
        if (cw[i] > width[col])
            width[col] = cw[i];
    }
    rc = LD_EIO;
    if (self->title) {
        char *title = terminal_text(self->title);
        if (!title) {
            rc = LD_ENOMEM;
            goto out;
        }
        int e = fprintf(out, "%s\n", title);
        free(title);
        if (e < 0)
            goto out;
    }
    for (size_t r = 0; r <= self->nrows; r++) {
        size_t first = r * self->ncols;
        size_t used = self->ncols;        /* trailing empty cells get no padding */
        while (used > 0 && shown[first + used - 1][0] == '\0')
            used--;
        /* each line built whole and written once: a report has millions of cells */
        size_t len = 0;
        for (size_t c = 0; c <= used; c++) {
            const char *text = c < used ? shown[first + c] : "";
            size_t pad = c + 1 < used ? width[c] + 2 - cw[first + c] : 0;
            if (line_add(&line, &line_cap, &len, text, strlen(text), pad)) {
                rc = LD_ENOMEM;
                goto out;
            }
        }
        line[len++] = '\n';              /* line_add leaves room for one more byte */
        if (fwrite(line, 1, len, out) != len)
            goto out;
        if (r == 0) {   /* the rule under the labels */
            for (size_t c = 0; c < self->ncols; c++) {
                size_t n = width[c] + (c + 1 == self->ncols ? 0 : 2);
                for (size_t k = 0; k < n; k++)
                    if (putc(k < width[c] ? '-' : ' ', out) == EOF)
                        goto out;
            }
            if (putc('\n', out) == EOF)
                goto out;
            if (self->nrows == 0 && fputs("(none)\n", out) == EOF)
                goto out;
        }
    }
    rc = 0;
out:
    if (owned)
        for (size_t i = 0; i < nall; i++)
            free(owned[i]);
    free(owned);
    free(shown);
    free(cw);
    free(width);
    free(line);
    return rc;
}

/* ------------------------------------------------------------------ csv ---- */

static int csv_cell(FILE *out, const char *s)
{
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
                   s[0] == '\t' || s[0] == '\r';
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote && putc('"', out) == EOF)
        return LD_EIO;
    if (formula && putc('\'', out) == EOF)
        return LD_EIO;
    /* a quote is doubled: each run up to and with one is written, then one more */
    const char *p = s, *q;
    while ((q = strchr(p, '"')) != NULL) {
        size_t n = (size_t) (q - p) + 1;
        if (fwrite(p, 1, n, out) != n || putc('"', out) == EOF)
            return LD_EIO;
        p = q + 1;
    }
    if (fputs(p, out) == EOF)
        return LD_EIO;
    if (quote && putc('"', out) == EOF)
        return LD_EIO;
    return 0;
}

static int csv_record(FILE *out, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && putc(',', out) == EOF)
            return LD_EIO;
        if (csv_cell(out, cells[i]))
            return LD_EIO;
    }
    return fputs("\r\n", out) == EOF ? LD_EIO : 0;
}

/* The header record and the rows: a CSV file without its BOM. */
static int csv_records(const nd_table_t *self, FILE *out)
{
    if (csv_record(out, (const char *const *) self->keys, self->ncols))
        return LD_EIO;
    for (size_t r = 0; r < self->nrows; r++)
        if (csv_record(out, self->cells + r * self->ncols, self->ncols))
            return LD_EIO;
    return 0;
}

static int print_csv(const nd_table_t *self, FILE *out)
{
    if (fputs(LD_UTF8_BOM, out) == EOF)
        return LD_EIO;
    return csv_records(self, out);
}

/* ----------------------------------------------------------------- json ---- */

/* Writes p[0..n) if n > 0; true if writing failed. */
static bool put_run(FILE *out, const unsigned char *p, size_t n)
{
    return n > 0 && fwrite(p, 1, n, out) != n;
}

static int json_string(FILE *out, const char *s)
{
    if (putc('"', out) == EOF)
        return LD_EIO;
    /* what needs no escape is written in runs, not a sequence at a time */
    const unsigned char *p = (const unsigned char *) s, *run = p;
    while (*p) {
        size_t n = utf8_seq_len(p);
        bool plain = n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\');
        if (plain) {
            p += n;
            continue;
        }
        int e = put_run(out, run, (size_t) (p - run));
        if (n == 0) {
            e = e || fputs("\xef\xbf\xbd", out) == EOF;    /* U+FFFD */
            n = 1;
        } else if (*p == '"' || *p == '\\') {
            e = e || putc('\\', out) == EOF || putc(*p, out) == EOF;
        } else {
            e = e || fprintf(out, "\\u%04x", (unsigned) *p) < 0;
        }
        if (e)
            return LD_EIO;
        p += n;
        run = p;
    }
    if (put_run(out, run, (size_t) (p - run)))
        return LD_EIO;
    return putc('"', out) == EOF ? LD_EIO : 0;
}

/* The table's JSON object, without the line break after it. */
static int json_object(const nd_table_t *self, FILE *out)
{
    if (fputs("{\"title\":", out) == EOF)
        return LD_EIO;
    if (self->title ? json_string(out, self->title) : (fputs("null", out) == EOF))
        return LD_EIO;
    if (fputs(",\"rows\":[", out) == EOF)
        return LD_EIO;
    for (size_t r = 0; r < self->nrows; r++) {
        if (fputs(r ? ",\n{" : "\n{", out) == EOF)
            return LD_EIO;
        for (size_t c = 0; c < self->ncols; c++) {
            if (c && putc(',', out) == EOF)
                return LD_EIO;
            if (json_string(out, self->keys[c]) || putc(':', out) == EOF ||
                json_string(out, cell(self, r, c)))
                return LD_EIO;
        }
        if (putc('}', out) == EOF)
            return LD_EIO;
    }
    return fputs(self->nrows ? "\n]}" : "]}", out) == EOF ? LD_EIO : 0;
}

static int print_json(const nd_table_t *self, FILE *out)
{
    return json_object(self, out) || putc('\n', out) == EOF ? LD_EIO : 0;
}

/* ----------------------------------------------------------------- html ---- */

static int html_text(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *) s, *run = p;
    while (*p) {
        size_t n = utf8_seq_len(p);
        const char *esc = NULL;
        if (n == 0)
            esc = "\xef\xbf\xbd";
        else if (n == 1) {
            switch (*p) {
            case '&':  esc = "&amp;"; break;
            case '<':  esc = "&lt;"; break;
            case '>':  esc = "&gt;"; break;
            case '"':  esc = "&quot;"; break;
            case '\'': esc = "&#39;"; break;
            case '\n': esc = "<br>"; break;
            default:   esc = *p < 0x20 || *p == 0x7f ? " " : NULL; break;
            }
        }
        if (!esc) {                    /* written in runs, not a sequence at a time */
            p += n;
            continue;
        }
        if (put_run(out, run, (size_t) (p - run)) || fputs(esc, out) == EOF)
            return LD_EIO;
        p += n ? n : 1;
        run = p;
    }
    return put_run(out, run, (size_t) (p - run)) ? LD_EIO : 0;
}

static const char html_style[] =
    "<style>\n"
    "body { font-family: \"Noto Sans CJK SC\", \"Source Han Sans SC\", \"Microsoft YaHei\","
    " sans-serif; margin: 1.5em; color: #000; }\n"
    "h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }\n"
    "table { border-collapse: collapse; width: 100%; margin-bottom: 1em; }\n"
    "th, td { border: 1px solid #555; padding: .25em .5em; text-align: left;"
    " vertical-align: top; }\n"
    "th { background: #eee; }\n"
    "td.none { text-align: center; color: #555; }\n"
    "@media print {\n"
    "  @page { size: A4 landscape; margin: 12mm; }\n"
    "  body { margin: 0; font-size: 10pt; }\n"
    "  thead { display: table-header-group; }\n"
    "  tr, td, th { page-break-inside: avoid; }\n"
    "  th { background: none; }\n"
    "}\n"
    "</style>\n";

/* An HTML page up to and with "<body>\n", titled `title` (NULL: "liangdi"). */
static int html_head(const char *title, FILE *out)
{
    if (fputs("<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<title>", out) == EOF)
        return LD_EIO;
    if (html_text(out, title ? title : "liangdi"))
        return LD_EIO;
    if (fputs("</title>\n", out) == EOF || fputs(html_style, out) == EOF ||
        fputs("</head>\n<body>\n", out) == EOF)
        return LD_EIO;
    return 0;
}

/* The table as a <section> of a page's body. */
static int html_section(const nd_table_t *self, FILE *out)
{
    if (fputs("<section>\n", out) == EOF)
        return LD_EIO;
    if (self->title) {
        if (fputs("<h2>", out) == EOF || html_text(out, self->title) ||
            fputs("</h2>\n", out) == EOF)
            return LD_EIO;
    }
    if (fputs("<table>\n<thead><tr>", out) == EOF)
        return LD_EIO;
    for (size_t c = 0; c < self->ncols; c++)
        if (fputs("<th>", out) == EOF || html_text(out, self->labels[c]) ||
            fputs("</th>", out) == EOF)
            return LD_EIO;
    if (fputs("</tr></thead>\n<tbody>\n", out) == EOF)
        return LD_EIO;
    if (self->nrows == 0 &&
        fprintf(out, "<tr><td class=\"none\" colspan=\"%zu\">(none)</td></tr>\n",
                self->ncols ? self->ncols : 1) < 0)
        return LD_EIO;
    for (size_t r = 0; r < self->nrows; r++) {
        if (fputs("<tr>", out) == EOF)
            return LD_EIO;
        for (size_t c = 0; c < self->ncols; c++)
            if (fputs("<td>", out) == EOF || html_text(out, cell(self, r, c)) ||
                fputs("</td>", out) == EOF)
                return LD_EIO;
        if (fputs("</tr>\n", out) == EOF)
            return LD_EIO;
    }
    return fputs("</tbody>\n</table>\n</section>\n", out) == EOF ? LD_EIO : 0;
}

static const char html_end[] = "</body>\n</html>\n";

static int print_html(const nd_table_t *self, FILE *out)
{
    if (html_head(self->title, out) || html_section(self, out) || fputs(html_end, out) == EOF)
        return LD_EIO;
    return 0;
}

int nd_table_print(const nd_table_t *self, nd_format_t fmt, FILE *out)
{
    int rc;
    switch (fmt) {
    case ND_FMT_TABLE: rc = print_terminal(self, out); break;
    case ND_FMT_CSV:   rc = print_csv(self, out); break;
    case ND_FMT_JSON:  rc = print_json(self, out); break;
    case ND_FMT_HTML:  rc = print_html(self, out); break;
    default:           return LD_EINVAL;
    }
    if (rc == 0 && ferror(out))
        rc = LD_EIO;
    return rc;
}

/* ------------------------------------------------------------- documents ---- */

/* Each table is written straight to `out` in the part of the format a document takes
 * of it: a report's tables run to tens of megabytes. */
int nd_tables_print(nd_table_t *const *tables, const char *const *titles, size_t n,
                    nd_format_t fmt, const char *title, const nd_meta_t *meta, size_t nmeta,
                    FILE *out)
{
    bool bad = false;
    int rc = 0;
    switch (fmt) {
    case ND_FMT_TABLE:
        for (size_t i = 0; i < n && !rc; i++)
            rc = (i && putc('\n', out) == EOF) ? LD_EIO : print_terminal(tables[i], out);
        break;
    case ND_FMT_CSV:
        bad = fputs(LD_UTF8_BOM, out) == EOF;
        for (size_t i = 0; i < n && !bad; i++)
            bad = (i && fputs("\r\n", out) == EOF) || csv_cell(out, titles[i]) ||
                  fputs("\r\n", out) == EOF || csv_records(tables[i], out);
        break;
    case ND_FMT_JSON:
        bad = fputs("{\"title\":", out) == EOF || json_string(out, title);
        for (size_t m = 0; m < nmeta && !bad; m++)
            bad = putc(',', out) == EOF || json_string(out, meta[m].key) ||
                  putc(':', out) == EOF || json_string(out, meta[m].value);
        bad = bad || fputs(",\"tables\":[\n", out) == EOF;
        for (size_t i = 0; i < n && !bad; i++)
            bad = (i && fputs(",\n", out) == EOF) || json_object(tables[i], out);
        bad = bad || fputs("\n]}\n", out) == EOF;
        break;
    case ND_FMT_HTML:                /* one page, headed as the first table's would be */
        if (n == 0)
            break;
        bad = html_head(tables[0]->title, out);
        for (size_t i = 0; i < n && !bad; i++)
            bad = html_section(tables[i], out);
        bad = bad || fputs(html_end, out) == EOF;
        break;
    default:
        return LD_EINVAL;
    }
    if (bad)
        rc = LD_EIO;
    if (rc == 0 && ferror(out))
        rc = LD_EIO;
    return rc;
}
