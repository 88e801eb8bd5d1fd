/* config.c: the broker's settings, from /etc/liangdi/broker.conf (inih, section
 * [broker]) over compiled-in defaults; a bad line names file, line and key. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "confkeys.h"
#include "endpoint.h"
#include "frame.h"
#include "text.h"

/* The reader counts lines, so that a handler can name the line it is on. */
typedef struct cfg_parse {
    bk_config_t *cfg;
    const char  *path;
    FILE        *file;
    int          line;
    ld_error_t  *err;
    bool         failed;
    ld_confkeys_t seen;        /* the keys set so far, with their lines */
} cfg_parse_t;

void bk_config_defaults(bk_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = LD_LOG_INFO;
    cfg->max_message = LD_BODY_MAX + 64u * 1024u;
    cfg->max_peers = 1024;
    cfg->peer_idle_s = 3600;
    cfg->handshake_ivl_ms = 5000;
    cfg->heartbeat_ivl_ms = 10000;
    cfg->heartbeat_timeout_ms = 30000;
    cfg->max_clock_drift_s = 300;
}

void bk_config_clear(bk_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->db);
    free(cfg->bind);
    free(cfg->store);
    free(cfg->key_file);
    cfg->db = NULL;
    cfg->bind = NULL;
    cfg->store = NULL;
    cfg->key_file = NULL;
}

/* inih's line reader: one whole line, or NULL at the end of the file.  A line longer
 * than inih's buffer would be read as two lines (and its tail taken for a setting),
 * and a read error must not pass for the end: both stop the parse as failed. */
static char *cfg_reader(char *str, int num, void *stream)
{
    cfg_parse_t *p = stream;
    char *got = fgets(str, num, p->file);
    if (!got) {
        if (ferror(p->file) && !p->failed) {
            ld_error_set(p->err, LD_EIO, "cannot read config file %s: %s", p->path,
                         strerror(errno ? errno : EIO));
            p->failed = true;
        }
        return NULL;
    }
    p->line++;
    size_t len = strlen(got);
    if (len == (size_t)num - 1 && got[len - 1] != '\n' && !feof(p->file)) {
        ld_error_set(p->err, LD_EINVAL, "%s:%d: line longer than %d bytes", p->path, p->line,
                     num - 2);
        p->failed = true;
        return NULL;
    }
    return got;
}

static int cfg_bad(cfg_parse_t *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records what is wrong with `key` on the current line; returns 0 (inih: stop). */
static int cfg_bad(cfg_parse_t *p, const char *key, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ld_error_set(p->err, LD_EINVAL, "%s:%d: %s: %s", p->path, p->line, key, what);
    p->failed = true;
    return 0;
}

/* A whole number in [lo, hi], in decimal. */
static bool cfg_number(const char *value, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
    cfg_parse_t *p = user;
    bk_config_t *cfg = p->cfg;
    long long v = 0;
    if (p->failed)
        return 0;
    if (strcmp(section, "broker") != 0) {
        char key[160];
        snprintf(key, sizeof key, "[%s] %s", section, name);
        return cfg_bad(p, key, "unknown section '%s' (the only one is [broker])", section);
    }
    if (!ld_utf8_valid(value, strlen(value)))
        return cfg_bad(p, name, "value is not UTF-8");
    int first = ld_confkeys_note(&p->seen, section, name, p->line);
    if (first < 0) {
        ld_error_set(p->err, LD_ENOMEM, "out of memory reading %s", p->path);
        p->failed = true;
        return 0;
    }
    if (first > 0)
        return cfg_bad(p, name, "set twice (first on line %d; an indented line counts as the "
                       "key again)", first);
    if (strcmp(name, "db") == 0) {
        if (!*value)
            return cfg_bad(p, name, "empty path");
        free(cfg->db);
        cfg->db = strdup(value);
    } else if (strcmp(name, "store") == 0) {
        if (strncmp(value, "sqlite:", 7) != 0 && strncmp(value, "jetstream:", 10) != 0)
            return cfg_bad(p, name, "'%s' is neither sqlite:PATH nor "
                           "jetstream:nats://HOST:PORT[,...]", value);
        free(cfg->store);
        cfg->store = strdup(value);
    } else if (strcmp(name, "key_file") == 0) {
        if (!*value)
            return cfg_bad(p, name, "empty path");
        free(cfg->key_file);
        cfg->key_file = strdup(value);
    } else if (strcmp(name, "bind") == 0) {
        if (!ld_endpoint_valid(value, true))
            return cfg_bad(p, name, "'%s' is not an endpoint tcp://HOST:PORT (PORT 1 to "
                           "65535, or *) or ipc://PATH", value);
        free(cfg->bind);
        cfg->bind = strdup(value);
    } else if (strcmp(name, "log_level") == 0) {
        if (ld_log_level_parse(value, &cfg->log_level) < 0)
            return cfg_bad(p, name, "'%s' is not one of debug, info, warn, error, none", value);
    } else if (strcmp(name, "max_message") == 0) {
        if (!cfg_number(value, 4096, (long long)LD_BODY_MAX + 1024 * 1024, &v))
            return cfg_bad(p, name, "'%s' is not a size in bytes from 4096 to 17825792", value);
        cfg->max_message = (size_t)v;
    } else if (strcmp(name, "max_peers") == 0) {
        if (!cfg_number(value, 1, 1000000, &v))
            return cfg_bad(p, name, "'%s' is not a count from 1 to 1000000", value);
        cfg->max_peers = (size_t)v;
    } else if (strcmp(name, "peer_idle_s") == 0) {
        if (!cfg_number(value, 1, 7 * 24 * 3600, &v))
            return cfg_bad(p, name, "'%s' is not a number of seconds from 1 to 604800", value);
        cfg->peer_idle_s = (int)v;
    } else if (strcmp(name, "handshake_ivl_ms") == 0) {
        if (!cfg_number(value, 100, 600000, &v))
            return cfg_bad(p, name, "'%s' is not a number of milliseconds from 100 to 600000", value);
        cfg->handshake_ivl_ms = (int)v;
    } else if (strcmp(name, "heartbeat_ivl_ms") == 0) {
        if (!cfg_number(value, 0, 3600000, &v))
            return cfg_bad(p, name, "'%s' is not a number of milliseconds from 0 (off) to 3600000", value);
        cfg->heartbeat_ivl_ms = (int)v;
    } else if (strcmp(name, "heartbeat_timeout_ms") == 0) {
        if (!cfg_number(value, 0, 3600000, &v))
            return cfg_bad(p, name, "'%s' is not a number of milliseconds from 0 to 3600000", value);
        cfg->heartbeat_timeout_ms = (int)v;
    } else if (strcmp(name, "max_clock_drift_s") == 0) {
        if (!cfg_number(value, 1, 24 * 3600, &v))
            return cfg_bad(p, name, "'%s' is not a number of seconds from 1 to 86400", value);
        cfg->max_clock_drift_s = (int)v;
    } else {
        return cfg_bad(p, name, "unknown key (known: db, store, key_file, bind, log_level, "
                       "max_message, max_peers, "
                       "peer_idle_s, handshake_ivl_ms, heartbeat_ivl_ms, heartbeat_timeout_ms, "
                       "max_clock_drift_s)");
    }
    if ((strcmp(name, "db") == 0 && !cfg->db) || (strcmp(name, "bind") == 0 && !cfg->bind)
        || (strcmp(name, "store") == 0 && !cfg->store)
        || (strcmp(name, "key_file") == 0 && !cfg->key_file)) {
        ld_error_set(p->err, LD_ENOMEM, "out of memory reading %s", p->path);
        p->failed = true;
        return 0;
    }
    return 1;
}

int bk_config_load(bk_config_t *cfg, const char *path, ld_error_t *err)
{
    cfg_parse_t p = { .cfg = cfg, .path = path, .err = err };
    p.file = fopen(path, "r");
    if (!p.file) {
        if (errno == ENOENT)
            return ld_error_set(err, LD_ENOTFOUND, "config file %s does not exist", path);
        return ld_error_set(err, LD_EIO, "cannot read config file %s: %s", path, strerror(errno));
    }
    int rc = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
    fclose(p.file);
    ld_confkeys_free(&p.seen);
    if (p.failed)
        return err ? err->code : LD_EINVAL;
    if (rc != 0)
        return ld_error_set(err, rc < 0 ? LD_EIO : LD_EINVAL, rc < 0
                            ? "%s: cannot be read (line %d)"
                            : "%s:%d: not a key = value line or [section]", path, rc);
    return 0;
}
