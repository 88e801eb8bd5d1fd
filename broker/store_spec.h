/* store_spec.h: which store a broker keeps its registry and mailboxes in, named by one spec:
 * "sqlite:PATH" (or a bare PATH) or "jetstream:nats://HOST:PORT[,nats://HOST:PORT...]".
 * Parsing it gives the two tables of operations and where they open. */
#ifndef BK_STORE_SPEC_H
#define BK_STORE_SPEC_H

#include <stdbool.h>
#include "error.h"
#include "mailbox.h"
#include "registry.h"

typedef enum bk_store_kind {
    BK_STORE_SQLITE = 0,
    BK_STORE_JETSTREAM,
} bk_store_kind_t;

typedef struct bk_store_spec {
    bk_store_kind_t          kind;
    const bk_mailbox_ops_t  *mailbox;
    const bk_registry_ops_t *registry;
    char                    *where;     /* owned: the SQLite path, or the URL list */
} bk_store_spec_t;

/* Parses a spec into out (cleared first; free with bk_store_clear).  LD_EINVAL naming
 * the spec when it is malformed, or names jetstream in a build without libnats. */
int bk_store_parse(const char *text, bk_store_spec_t *out, ld_error_t *err);

/* Frees what a spec owns; safe twice. */
void bk_store_clear(bk_store_spec_t *spec);

/* `where` as shown in messages and logs: a password given in a URL as user:secret@
 * becomes three stars.  malloc'd, caller frees; NULL if out of memory. */
char *bk_store_shown(const char *where);

/* True if this build has the JetStream store (libnats was found). */
bool bk_store_has_jetstream(void);

#endif
