/* config.h: the node's INI config file (/etc/liangdi/node.conf): the [node] keys that
 * give flags their defaults, and the [report] thresholds passed on as "report.*" settings. */
#ifndef ND_CONFIG_H
#define ND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "collate.h"
#include "error.h"
#include "log.h"

#define ND_CONFIG_DEFAULT_PATH "/etc/liangdi/node.conf"

typedef struct nd_config nd_config_t;

/* An empty config: every key unset.  NULL on allocation failure. */
nd_config_t *nd_config_new(void);

/* Frees the config and NULLs *self_p; safe on NULL and twice. */
void nd_config_destroy(nd_config_t **self_p);

/* Reads `path` into a new config.  On failure returns NULL with err set: LD_EINVAL
 * with "FILE:LINE: unknown key 'x' in [node]" / "FILE:LINE: bad value ..." / a syntax
 * error, LD_EIO if the file cannot be read. */
nd_config_t *nd_config_load(const char *path, ld_error_t *err);

/* The file the config came from, or NULL for an empty config.  Borrowed. */
const char *nd_config_path(const nd_config_t *self);

/* [node] values, NULL when unset.  Borrowed. */
const char *nd_config_db(const nd_config_t *self);
const char *nd_config_broker(const nd_config_t *self);
const char *nd_config_broker_key(const nd_config_t *self);
const char *nd_config_keyfile(const nd_config_t *self);

/* [node] interval and timeout in milliseconds; 0 when unset. */
int nd_config_interval_ms(const nd_config_t *self);
int nd_config_timeout_ms(const nd_config_t *self);

/* [node] log_level; false when unset. */
bool nd_config_log_level(const nd_config_t *self, ld_log_level_t *out);

/* [node] name_order (pinyin or stroke); false when unset. */
bool nd_config_name_order(const nd_config_t *self, nd_name_order_t *out);

/* The [report] thresholds, in file order, as setting names ("report.life_warn_months")
 * and values.  Borrowed; i < nd_config_report_count. */
size_t nd_config_report_count(const nd_config_t *self);
const char *nd_config_report_key(const nd_config_t *self, size_t i);
const char *nd_config_report_value(const nd_config_t *self, size_t i);

/* Parses a duration: "90" (seconds), "30s", "5m", "1h", "500ms"; > 0 and at most a
 * day.  Returns true and sets *ms on success. */
bool nd_duration_parse(const char *text, int *ms);

/* True if text looks like a ZeroMQ endpoint liangdi can connect to:
 * tcp://HOST:PORT or ipc://PATH. */
bool nd_endpoint_valid(const char *text);

/* The most endpoints a node's broker setting may list (front-ends of one broker). */
#define ND_ENDPOINTS_MAX 8

/* True if `list` is 1 to ND_ENDPOINTS_MAX endpoints separated by commas, each valid
 * for nd_endpoint_valid once the blanks around it are trimmed. */
bool nd_endpoint_list_valid(const char *list);

#endif
