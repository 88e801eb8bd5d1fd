/* config.h: the broker's settings, from /etc/liangdi/broker.conf (inih, section
 * [broker]) over compiled-in defaults.  A plain struct of values: it has no behaviour. */
#ifndef BK_CONFIG_H
#define BK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "log.h"

#define BK_CONFIG_DEFAULT_PATH "/etc/liangdi/broker.conf"
#define BK_BIND_DEFAULT        "tcp://0.0.0.0:7700"
#define BK_DB_DEFAULT          "./liangdi-broker.db"

typedef struct bk_config {
    char           *db;                 /* owned; NULL: not set */
    char           *store;              /* owned: "sqlite:PATH" or "jetstream:URLS"; NULL: not set */
    char           *key_file;           /* owned: the broker's keypair file; NULL: not set */
    char           *bind;               /* owned; NULL: not set */
    ld_log_level_t  log_level;
    size_t          max_message;        /* ZMQ_MAXMSGSIZE, bytes */
    size_t          max_peers;          /* peers that said Hello, kept at once */
    int             peer_idle_s;        /* a silent peer is forgotten after this */
    int             handshake_ivl_ms;   /* ZMQ_HANDSHAKE_IVL */
    int             heartbeat_ivl_ms;   /* ZMQ_HEARTBEAT_IVL */
    int             heartbeat_timeout_ms;
    int             max_clock_drift_s;  /* changes stamped further ahead are refused */
} bk_config_t;

/* Fills cfg with the defaults (nothing owned yet). */
void bk_config_defaults(bk_config_t *cfg);

/* Reads `path` over cfg.  A missing file is LD_ENOTFOUND (callers ignore it for the
 * default path); an unknown section or key, or a bad value, is LD_EINVAL with a
 * message "FILE:LINE: KEY: what is wrong". */
int bk_config_load(bk_config_t *cfg, const char *path, ld_error_t *err);

/* Frees what cfg owns; safe twice. */
void bk_config_clear(bk_config_t *cfg);

#endif
