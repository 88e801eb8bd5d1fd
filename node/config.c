/* config.c: reads the node's INI config file with inih, checking every key and value
 * and naming the file and line of the first one that is wrong. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confkeys.h"
#include "endpoint.h"
#include "keys.h"
#include "rules.h"
#include "text.h"

#define CONFIG_REPORT_MAX 64
#define CONFIG_LINE_MAX   4096

struct nd_config {
    char          *path;
    char          *db;
    char          *broker;
    char          *broker_key;
    char          *keyfile;
    int            interval_ms;
    int            timeout_ms;
    bool           has_log_level;
    ld_log_level_t log_level;
    bool           has_name_order;
    nd_name_order_t name_order;
    size_t         nreport;
    char          *report_keys[CONFIG_REPORT_MAX];
    char          *report_values[CONFIG_REPORT_MAX];
};

/* What the reader and the handler share while one file is parsed. */
typedef struct config_parse {
    nd_config_t *config;
    FILE        *file;
    const char  *path;
    int          line;         /* the line last handed to inih */
    int          error_line;   /* the first error found here, 0: none */
    char         error[LD_ERROR_MSG_MAX];
    bool         failed_alloc;
    char        *buf;          /* getline's buffer */
    size_t       bufsize;
    ld_confkeys_t seen;        /* the keys set so far, with their lines */
} config_parse_t;

nd_config_t *nd_config_new(void)
{
    return calloc(1, sizeof(nd_config_t));
}

void nd_config_destroy(nd_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nd_config_t *self = *self_p;
    free(self->path);
    free(self->db);
    free(self->broker);
    free(self->broker_key);
    free(self->keyfile);
    for (size_t i = 0; i < self->nreport; i++) {
        free(self->report_keys[i]);
        free(self->report_values[i]);
    }
    free(self);
    *self_p = NULL;
}

bool nd_duration_parse(const char *text, int *ms)
{
    if (!text || !*text)
        return false;
    const char *p = text;
    int64_t n = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p - '0');
        if (n > 86400000)
            return false;
        p++;
    }
    int64_t unit;
    if (strcmp(p, "") == 0 || strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * 1000;
    else
        return false;
    int64_t total = n * unit;
    if (total <= 0 || total > 86400000)
        return false;
    *ms = (int) total;
    return true;
}

bool nd_endpoint_valid(const char *text)
{
    return ld_endpoint_valid(text, false);
}

bool nd_endpoint_list_valid(const char *list)
{
    char one[300];
    size_t n = 0;
    if (list == NULL)
        return false;
    for (const char *p = list;; p++) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 || len >= sizeof one || ++n > ND_ENDPOINTS_MAX)
            return false;
        memcpy(one, p, len);
        one[len] = '\0';
        if (!nd_endpoint_valid(one))
            return false;
        if (comma == NULL)
            return true;
        p = comma;
    }
}

/* Records the first error of the parse at the current line. */
static int config_fail(config_parse_t *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int config_fail(config_parse_t *ps, const char *fmt, ...)
{
    if (ps->error_line == 0) {
        va_list ap;
        va_start(ap, fmt);
        ps->error_line = ps->line;
        vsnprintf(ps->error, sizeof ps->error, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int config_set_text(config_parse_t *ps, char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy) {
        ps->failed_alloc = true;
        return 0;
    }
    free(*slot);
    *slot = copy;
    return 1;
}

/* A threshold or a target: a whole number 0..max (at most 8 digits). */
static bool config_count_valid(const char *value, long max)
{
    if (!*value || strlen(value) > 8)
        return false;
    for (const char *p = value; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return atol(value) <= max;
}

static int config_node_key(config_parse_t *ps, const char *name, const char *value)
{
    nd_config_t *c = ps->config;
    if (strcmp(name, "db") == 0 || strcmp(name, "keyfile") == 0) {
        if (!*value)
            return config_fail(ps, "bad value '%s' for %s (a path is needed)", value, name);
        return config_set_text(ps, strcmp(name, "db") == 0 ? &c->db : &c->keyfile, value);
    }
    if (strcmp(name, "broker") == 0) {
        if (!nd_endpoint_list_valid(value))
            return config_fail(ps, "bad value '%s' for %s (expected tcp://HOST:PORT or ipc://PATH,"
                               " or up to %d of them separated by commas)", value, name,
                               ND_ENDPOINTS_MAX);
        return config_set_text(ps, &c->broker, value);
    }
    if (strcmp(name, "broker_key") == 0) {
        if (!ld_key_valid(value))
            return config_fail(ps, "bad value '%s' for %s (expected a 40-character Z85 public key)",
                               value, name);
        return config_set_text(ps, &c->broker_key, value);
    }
    if (strcmp(name, "interval") == 0 || strcmp(name, "timeout") == 0) {
        int ms;
        if (!nd_duration_parse(value, &ms))
            return config_fail(ps, "bad value '%s' for %s (expected seconds, or 30s, 5m, 1h)",
                               value, name);
        if (strcmp(name, "interval") == 0)
            c->interval_ms = ms;
        else
            c->timeout_ms = ms;
        return 1;
    }
    if (strcmp(name, "log_level") == 0) {
        if (ld_log_level_parse(value, &c->log_level) != 0)
            return config_fail(ps, "bad value '%s' for %s (expected debug|info|warn|error|none)",
                               value, name);
        c->has_log_level = true;
        return 1;
    }
    if (strcmp(name, "name_order") == 0) {
        if (!nd_name_order_parse(value, &c->name_order))
            return config_fail(ps, "bad value '%s' for %s (expected pinyin or stroke)", value,
                               name);
        c->has_name_order = true;
        return 1;
    }
    return config_fail(ps, "unknown key '%s' in [%s]", name, "node");
}

static int config_report_key(config_parse_t *ps, const char *name, const char *value)
{
    nd_config_t *c = ps->config;
    const nd_rule_setting_t *rule = nd_rule_setting_named(name);
    if (!rule)
        return config_fail(ps, "unknown key '%s' in [%s]", name, "report");
    if (!config_count_valid(value, rule->max))
        return config_fail(ps, "bad value '%s' for %s (expected a whole number of %s, at most "
                           "%d)", value, name, rule->unit, rule->max);
    if (strstr(name, "_period_months") && !nd_period_months_valid(atoi(value)))
        return config_fail(ps, "bad value '%s' for %s (expected 1, 2, 3, 4, 6 or 12: months that "
                           "split a year evenly)", value, name);
    if (c->nreport == CONFIG_REPORT_MAX)
        return config_fail(ps, "too many keys in [report] (at most %d)", CONFIG_REPORT_MAX);
    char *k = strdup(rule->key);
    char *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        ps->failed_alloc = true;
        return 0;
    }
    c->report_keys[c->nreport] = k;
    c->report_values[c->nreport] = v;
    c->nreport++;
    return 1;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    config_parse_t *ps = user;
    if (!ld_utf8_valid(name, strlen(name)) || !ld_utf8_valid(value, strlen(value))
        || !ld_utf8_valid(section, strlen(section)))
        return config_fail(ps, "not valid UTF-8");
    if (strcmp(section, "node") == 0 || strcmp(section, "report") == 0) {
        int first = ld_confkeys_note(&ps->seen, section, name, ps->line);
        if (first < 0) {
            ps->failed_alloc = true;
            return 0;
        }
        if (first > 0)
            return config_fail(ps, "'%s' in [%s] is set twice (first on line %d; an "
                               "indented line counts as the key again)", name, section, first);
    }
    if (strcmp(section, "node") == 0)
        return config_node_key(ps, name, value);
    if (strcmp(section, "report") == 0)
        return config_report_key(ps, name, value);
    if (*section == '\0')
        return config_fail(ps, "key '%s' outside a section (expected [node] or [report] first)",
                           name);
    return config_fail(ps, "unknown section [%s] (expected [node] or [report])", section);
}

/* inih's line reader: counts lines so the handler can name them, and refuses lines
 * longer than inih can hold rather than letting it split them. */
static char *config_reader(char *str, int num, void *stream)
{
    config_parse_t *ps = stream;
    ssize_t n = getline(&ps->buf, &ps->bufsize, ps->file);
    if (n < 0)
        return NULL;
    ps->line++;
    if (n >= num - 1 || n > CONFIG_LINE_MAX) {
        if (ps->error_line == 0) {
            ps->error_line = ps->line;
            snprintf(ps->error, sizeof ps->error, "line too long (at most %d bytes)", num - 2);
        }
        snprintf(str, (size_t) num, ";\n");
        return str;
    }
    memcpy(str, ps->buf, (size_t) n + 1);
    return str;
}

nd_config_t *nd_config_load(const char *path, ld_error_t *err)
{
    config_parse_t ps = {0};
    nd_config_t *config = nd_config_new();
    if (!config) {
        ld_error_set(err, LD_ENOMEM, "out of memory reading config");
        return NULL;
    }
    config->path = strdup(path);
    if (!config->path) {
        ld_error_set(err, LD_ENOMEM, "out of memory reading config");
        goto err;
    }
    ps.config = config;
    ps.path = path;
    ps.file = fopen(path, "r");
    if (!ps.file) {
        ld_error_set(err, LD_EIO, "cannot read config file '%s': %s", path, strerror(errno));
        goto err;
    }
    int rc = ini_parse_stream(config_reader, &ps, config_handler, &ps);
    /* a read error (a directory named as the file) is not the end of the file */
    if (ferror(ps.file)) {
        ld_error_set(err, LD_EIO, "cannot read config file '%s': %s", path,
                     strerror(errno ? errno : EIO));
        goto err;
    }
    if (ps.failed_alloc) {
        ld_error_set(err, LD_ENOMEM, "out of memory reading config '%s'", path);
        goto err;
    }
    if (rc < 0) {
        ld_error_set(err, LD_EIO, "cannot read config file '%s'", path);
        goto err;
    }
    if (rc > 0 && (ps.error_line == 0 || rc < ps.error_line)) {
        ld_error_set(err, LD_EINVAL, "%s:%d: syntax error (expected 'key = value' or '[section]')",
                     path, rc);
        goto err;
    }
    if (ps.error_line > 0) {
        ld_error_set(err, LD_EINVAL, "%s:%d: %s", path, ps.error_line, ps.error);
        goto err;
    }
    fclose(ps.file);
    free(ps.buf);
    ld_confkeys_free(&ps.seen);
    return config;
err:
    if (ps.file)
        fclose(ps.file);
    free(ps.buf);
    ld_confkeys_free(&ps.seen);
    nd_config_destroy(&config);
    return NULL;
}

const char *nd_config_path(const nd_config_t *self) { return self ? self->path : NULL; }
const char *nd_config_db(const nd_config_t *self) { return self ? self->db : NULL; }
const char *nd_config_broker(const nd_config_t *self) { return self ? self->broker : NULL; }
const char *nd_config_broker_key(const nd_config_t *self) { return self ? self->broker_key : NULL; }
const char *nd_config_keyfile(const nd_config_t *self) { return self ? self->keyfile : NULL; }
int nd_config_interval_ms(const nd_config_t *self) { return self ? self->interval_ms : 0; }
int nd_config_timeout_ms(const nd_config_t *self) { return self ? self->timeout_ms : 0; }

bool nd_config_log_level(const nd_config_t *self, ld_log_level_t *out)
{
    if (!self || !self->has_log_level)
        return false;
    *out = self->log_level;
    return true;
}

bool nd_config_name_order(const nd_config_t *self, nd_name_order_t *out)
{
    if (!self || !self->has_name_order)
        return false;
    *out = self->name_order;
    return true;
}

size_t nd_config_report_count(const nd_config_t *self) { return self ? self->nreport : 0; }

const char *nd_config_report_key(const nd_config_t *self, size_t i)
{
    return self && i < self->nreport ? self->report_keys[i] : NULL;
}

const char *nd_config_report_value(const nd_config_t *self, size_t i)
{
    return self && i < self->nreport ? self->report_values[i] : NULL;
}
