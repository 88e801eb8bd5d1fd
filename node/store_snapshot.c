/* store_snapshot.c: the snapshots a receiver needs before a change: an org it has not
 * been sent, and the whole history of a member (or an agreement) for a node that has just
 * become one of its receivers.  Each carries every field with the stamp it has here
 * (store.c says why). */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Sends `node` every org r refers to that it has not been sent yet. */
int nd_st_send_orgs(nd_store_t *self, const nd_record_t *r, const char *node, ld_error_t *err)
{
    const char *refs[LD_FIELDS_MAX];
    size_t n = nd_audience_org_refs(r, refs);
    for (size_t i = 0; i < n; i++) {
        if (r->def->kind == LD_KIND_ORG && strcmp(refs[i], r->id) == 0)
            continue;
        bool sent = false;
        int rc = nd_audience_org_sent(self->aud, refs[i], node, &sent, err);
        if (rc == 0 && !sent)
            rc = nd_audience_mark_sent(self->aud, refs[i], node, err);   /* before: no loops */
        if (rc == 0 && !sent)
            rc = nd_st_snapshot(self, LD_KIND_ORG, refs[i], node, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Appends a snapshot of record (kind, id) addressed to node alone, after the orgs it
 * refers to: every written field with its own stamp and base, then a tombstone if it
 * is one.  A record not here is skipped. */
int nd_st_snapshot(nd_store_t *self, ld_kind_t kind, const char *id, const char *node,
                   ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    nd_record_t r;
    ld_change_t c;
    nd_nodes_t to;
    ld_change_init(&c);
    nd_nodes_init(&to);
    int rc = nd_st_row_load(self, def, id, &r, err);
    if (rc != 0)
        return rc;
    if (!r.exists)
        goto out;
    rc = nd_st_send_orgs(self, &r, node, err);
    if (rc == 0)
        rc = nd_nodes_add(&to, node, NULL, err);
    if (rc != 0)
        goto out;
    c.kind = kind;
    nd_st_copy_text(c.record_id, sizeof c.record_id, r.id);
    nd_st_copy_text(c.origin, sizeof c.origin, self->node_id);
    c.hlc = nd_record_latest(&r).hlc;
    for (size_t i = 0; i < def->nfields && rc == 0; i++) {
        const nd_slot_t *s = &r.fields[i];
        if (s->stamp.hlc == 0)
            continue;
        rc = ld_change_set(&c, def->fields[i].name, s->value != NULL ? s->value : "", err);
        if (rc != 0)
            break;
        ld_field_t *f = &c.fields[c.nfields - 1];
        f->hlc = s->stamp.hlc;
        nd_st_copy_text(f->origin, sizeof f->origin, s->stamp.origin);
        f->base_hlc = s->base.hlc;
        nd_st_copy_text(f->base_origin, sizeof f->base_origin, s->base.origin);
    }
    if (rc == 0 && c.nfields > 0)
        rc = nd_st_emit(self, &c, &to, false, err);
    if (rc == 0 && nd_record_deleted(&r)) {
        ld_change_clear(&c);
        c.kind = kind;
        nd_st_copy_text(c.record_id, sizeof c.record_id, r.id);
        nd_st_copy_text(c.origin, sizeof c.origin, self->node_id);
        c.hlc = r.deleted.stamp.hlc;
        c.deleted = true;
        rc = nd_st_emit(self, &c, &to, false, err);
    }
out:
    ld_change_clear(&c);
    nd_nodes_clear(&to);
    nd_record_clear(&r);
    return rc;
}

/* The nodes a member or an agreement goes to now. */
int nd_st_owner_nodes(nd_store_t *self, ld_kind_t owner, const char *id, nd_nodes_t *out,
                      ld_error_t *err)
{
    if (owner == LD_KIND_MEMBER)
        return nd_audience_member(self->aud, self->node_id, id, out, err);
    return nd_audience_agreement(self->aud, self->node_id, id, out, err);
}

/* The whole history for a node that has just become a receiver of a member (the
 * member moved to its branch) or of an agreement (one of its orgs changed): the owner
 * and every record of it, tombstones too, except `skip` (the record being created). */
int nd_st_snapshot_owner(nd_store_t *self, ld_kind_t owner, const char *id, const char *node,
                         const char *skip, ld_error_t *err)
{
    nd_record_ref_t *refs = NULL;
    size_t n = 0;
    int rc = nd_st_snapshot(self, owner, id, node, err);
    if (rc == 0)
        rc = nd_audience_records_of(self->aud, owner, id, &refs, &n, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (skip == NULL || strcmp(refs[i].id, skip) != 0)
            rc = nd_st_snapshot(self, refs[i].kind, refs[i].id, node, err);
    }
    free(refs);
    return rc;
}
