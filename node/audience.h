/* audience.h: who must receive a change (the nodes of a member's home org and current
 * trip, an agreement's two parties, an org's keeper and every node it was sent to),
 * and whether this node may write a record at all (read-only once a member has left).
 * Ownership: the audience object borrows the store's sqlite3 handle and caches its
 * own prepared statements; destroy it before closing the handle. */
#ifndef ND_AUDIENCE_H
#define ND_AUDIENCE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include "error.h"
#include "merge.h"
#include "schema.h"

typedef struct nd_audience nd_audience_t;

/* A growing list of distinct node ids. */
typedef struct nd_nodes {
    size_t n, cap;
    char (*ids)[LD_ID_MAX + 1];   /* owned */
} nd_nodes_t;

/* A record named by kind and id. */
typedef struct nd_record_ref {
    ld_kind_t kind;
    char      id[LD_RECORD_ID_MAX + 1];
} nd_record_ref_t;

void nd_nodes_init(nd_nodes_t *l);
void nd_nodes_clear(nd_nodes_t *l);               /* frees; safe twice */
bool nd_nodes_has(const nd_nodes_t *l, const char *id);
/* Appends id unless it is NULL, "", `skip` (may be NULL) or already there.
 * 0 or LD_ENOMEM. */
int nd_nodes_add(nd_nodes_t *l, const char *id, const char *skip, ld_error_t *err);

/* Prepares the queries on db (a migrated store).  NULL on failure, err set. */
nd_audience_t *nd_audience_new(sqlite3 *db, ld_error_t *err);
void nd_audience_destroy(nd_audience_t **self_p);

/* Forgets what the audience remembers of the store's rows (which node keeps an org; a
 * member's org and current trip) for records of `kind`: LD_KIND_ORG, LD_KIND_MEMBER or
 * LD_KIND_TRIP (both: a member's), or LD_KIND_NONE for all of it.  The store calls it
 * when a transaction begins or rolls back and after it writes such a row. */
void nd_audience_forget(nd_audience_t *self, ld_kind_t kind);

/* Notes a member the store has just written under an id made here: its org, and that
 * no trip can name it yet, so neither is looked up for the writes that follow. */
void nd_audience_new_member(nd_audience_t *self, const char *member_id, const char *org);

/* True for member and the kinds that belong to a member (trip, activity, ...). */
bool nd_audience_member_scoped(const ld_kind_def_t *def);
/* True for agreement and the kinds that belong to one (contact, visit). */
bool nd_audience_agreement_scoped(const ld_kind_def_t *def);

/* The member a member-scoped record belongs to (its own id for a member), or NULL.
 * Borrowed from r. */
const char *nd_audience_member_of(const nd_record_t *r);

/* Appends to out the nodes that must receive a change to r, whose state (after the
 * write) is r and is already in the store: a member-scoped record goes to the node of
 * the member's org and of the org of the member's current trip (and a trip also to
 * its own `to` org's node); an agreement, contact or visit to the nodes of the
 * agreement's two orgs; an org to its own node and every node it was sent to.
 * `self_node` is never added.  0 or LD_EIO / LD_ENOMEM. */
int nd_audience_of(nd_audience_t *self, const char *self_node, const nd_record_t *r,
                   nd_nodes_t *out, ld_error_t *err);

/* Appends the nodes of a member as the store has it now (see nd_audience_of). */
int nd_audience_member(nd_audience_t *self, const char *self_node, const char *member_id,
                       nd_nodes_t *out, ld_error_t *err);

/* Whether self_node may write r (its stored state, or the new record on create):
 * member-scoped records only while this node keeps the member's org or the org of the
 * member's current trip; agreement-scoped ones only on a node keeping one of the
 * agreement's two orgs; orgs anywhere.  0, or LD_EDENIED with a message such as
 * "member 张三 is not with this branch (left on 2024-03-01); its records are read-only
 * here", or LD_EIO. */
int nd_audience_check_writable(nd_audience_t *self, const char *self_node,
                               const nd_record_t *r, ld_error_t *err);

/* The org ids r refers to (member.org, trip.to, agreement.outflow/inflow, visit.host,
 * approval.to, org.parent: every reference to an org that is set).  Borrowed from r;
 * returns how many were written into out. */
size_t nd_audience_org_refs(const nd_record_t *r, const char *out[LD_FIELDS_MAX]);

/* Whether org has been sent to node (org_sent); 0 or LD_EIO. */
int nd_audience_org_sent(nd_audience_t *self, const char *org, const char *node, bool *sent,
                         ld_error_t *err);
/* Records that org has been sent to (or is held by) node; 0 or LD_EIO. */
int nd_audience_mark_sent(nd_audience_t *self, const char *org, const char *node,
                          ld_error_t *err);

/* Appends the nodes of an agreement's two orgs as the store has them now. */
int nd_audience_agreement(nd_audience_t *self, const char *self_node, const char *agreement_id,
                          nd_nodes_t *out, ld_error_t *err);

/* Every record that belongs to a member (owner LD_KIND_MEMBER: trips, activities,
 * ...) or an agreement (LD_KIND_AGREEMENT: contacts, visits), tombstones included, by
 * kind then id, not the owner itself; none for other kinds.  *out is malloc'd
 * (caller frees, may be NULL when *n is 0). */
int nd_audience_records_of(nd_audience_t *self, ld_kind_t owner, const char *owner_id,
                           nd_record_ref_t **out, size_t *n, ld_error_t *err);

#endif
