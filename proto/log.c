/* log.c: the one logger: "TIME name: LEVEL message" lines to stderr, each written
 * with a single write so that lines from several threads do not interleave. */
#include "log.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

ld_log_level_t ld_log_level = LD_LOG_INFO;
static const char *log_name = "liangdi";

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR", "NONE" };

void ld_log_init(const char *name, ld_log_level_t level)
{
    if (name != NULL && name[0] != '\0') {
        const char *slash = strrchr(name, '/');
        log_name = slash != NULL && slash[1] != '\0' ? slash + 1 : name;
    }
    ld_log_level = level;
}

int ld_log_level_parse(const char *text, ld_log_level_t *out)
{
    static const char *const words[] = { "debug", "info", "warn", "error", "none" };
    if (text == NULL)
        return LD_EINVAL;
    for (int i = 0; i <= (int)LD_LOG_NONE; i++) {
        if (strcasecmp(text, words[i]) == 0) {
            *out = (ld_log_level_t)i;
            return 0;
        }
    }
    return LD_EINVAL;
}

void ld_log_write(ld_log_level_t level, const char *fmt, ...)
{
    char line[2048];
    if (level < LD_LOG_DEBUG || level >= LD_LOG_NONE)
        return;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char zone[8];
    if (strftime(zone, sizeof zone, "%z", &tm) == 0)
        zone[0] = '\0';
    snprintf(stamp + n, sizeof stamp - n, ".%03ld%s", ts.tv_nsec / 1000000L, zone);

    int len = snprintf(line, sizeof line, "%s %s: %s ", stamp, log_name, level_names[level]);
    if (len < 0)
        return;
    if ((size_t)len < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - (size_t)len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += m;
    }
    if ((size_t)len >= sizeof line - 1) {
        len = (int)sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';
    ssize_t done = 0;
    while (done < len) {
        ssize_t w = write(STDERR_FILENO, line + done, (size_t)(len - done));
        if (w <= 0)
            break;
        done += w;
    }
}
