/* resolve.h: naming members, orgs and agreements on the command line: by id, or by
 * name where the name is unambiguous (an agreement by "OUTFLOW-ORG/INFLOW-ORG"). */
#ifndef ND_RESOLVE_H
#define ND_RESOLVE_H

#include "change.h"
#include "error.h"
#include "schema.h"
#include "store.h"

/* Finds the live record of `kind` that `text` names and writes its id into out.
 * `what` names the argument in messages ("--org", "MEMBER").  Returns 0;
 * LD_ENOTFOUND ("--org: no org '龙潭'"); LD_EINVAL when the name is ambiguous, the
 * message listing the candidates' ids; LD_EIO on a database failure. */
int nd_resolve(nd_store_t *store, ld_kind_t kind, const char *text, const char *what,
               char out[LD_RECORD_ID_MAX + 1], ld_error_t *err);

/* The kind of the record whose id is `id` (live or deleted) into *kind, LD_KIND_NONE
 * when no table holds it.  0 or LD_EIO. */
int nd_resolve_kind(nd_store_t *store, const char *id, ld_kind_t *kind, ld_error_t *err);

#endif
