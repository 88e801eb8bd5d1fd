/* log.h: one logger for every liangdi program: printf-checked lines to stderr
 * (journald collects them), filtered by level before the arguments are evaluated. */
#ifndef LD_LOG_H
#define LD_LOG_H

typedef enum { LD_LOG_DEBUG = 0, LD_LOG_INFO, LD_LOG_WARN, LD_LOG_ERROR, LD_LOG_NONE } ld_log_level_t;

extern ld_log_level_t ld_log_level;

/* Sets the level and the program name that prefixes each line. `name` is borrowed
 * and must outlive the program (a string literal or argv[0]). */
void ld_log_init(const char *name, ld_log_level_t level);

/* Parses "debug|info|warn|error|none"; returns 0, or LD_EINVAL leaving *out alone. */
int ld_log_level_parse(const char *text, ld_log_level_t *out);

void ld_log_write(ld_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ld_log(level, ...) \
    do { if ((level) >= ld_log_level) ld_log_write((level), __VA_ARGS__); } while (0)
#define ld_debug(...) ld_log(LD_LOG_DEBUG, __VA_ARGS__)
#define ld_info(...)  ld_log(LD_LOG_INFO, __VA_ARGS__)
#define ld_warn(...)  ld_log(LD_LOG_WARN, __VA_ARGS__)
#define ld_err(...)   ld_log(LD_LOG_ERROR, __VA_ARGS__)

#endif
