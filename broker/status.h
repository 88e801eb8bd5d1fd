/* status.h: what the broker's listing commands print: nodes, links, and the status
 * table (last seen, mailbox depth, pushed, fetched), aligned by display width. */
#ifndef BK_STATUS_H
#define BK_STATUS_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "error.h"
#include "mailbox.h"
#include "registry.h"

/* `node list`: id, name, key, state.  0 or a negative LD_E* code. */
int bk_status_nodes(bk_registry_t *registry, FILE *out, ld_error_t *err);

/* `link list`: one line per link. */
int bk_status_links(bk_registry_t *registry, FILE *out, ld_error_t *err);

/* `status`: per node id, name, last seen (China Standard Time), mailbox depth, pushed,
 * fetched, and whether it was removed. */
int bk_status_print(bk_registry_t *registry, bk_mailbox_t *mailbox, FILE *out,
                    ld_error_t *err);

/* Writes "YYYY-MM-DD HH:MM CST" for unix time t (or "-" for 0) into out[24]. */
void bk_status_time(int64_t t, char out[24]);

#endif
