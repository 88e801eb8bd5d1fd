/* store_write.c: the store's one write path: a local change checked, stamped, merged
 * into its row and logged, with the snapshots its receivers need first, in one
 * transaction level (store.c says how levels nest). */
#include <string.h>

#include "store_int.h"
#include "text.h"

/* The index of field `name` in def, or -1: by address first (a change's field names
 * are the schema's own strings), then by text. */
static int field_index(const ld_kind_def_t *def, const char *name)
{
    for (size_t i = 0; i < def->nfields; i++) {
        if (def->fields[i].name == name)
            return (int)i;
    }
    return ld_schema_field_index(def, name);
}

/* Checks what a local change may hold before anything is read. */
static int check_change(nd_store_t *self, const ld_kind_def_t *def, ld_change_t *c,
                        ld_error_t *err)
{
    if (c->deleted && c->nfields != 0)
        return ld_error_set(err, LD_EINVAL, "%s: a deletion sets no fields", def->name);
    if (!c->deleted && c->nfields == 0)
        return ld_error_set(err, LD_EINVAL, "%s: nothing to write (no fields set)", def->name);
    if (c->nfields > LD_FIELDS_MAX || memchr(c->record_id, '\0', sizeof c->record_id) == NULL)
        return ld_error_set(err, LD_EINVAL, "%s: malformed change", def->name);
    for (size_t i = 0; i < c->nfields; i++) {
        ld_field_t *f = &c->fields[i];
        int idx = field_index(def, f->name);
        if (idx < 0)
            return ld_error_set(err, LD_EINVAL, "%s has no field \"%s\"", def->name,
                                f->name != NULL ? f->name : "");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->fields[j].name, f->name) == 0)
                return ld_error_set(err, LD_EINVAL, "%s.%s is set twice", def->name, f->name);
        }
        int rc = ld_field_validate(&def->fields[idx], f->value != NULL ? f->value : "", err);
        if (rc != 0)
            return rc;
    }
    (void)self;
    return 0;
}

/* A local change once stamped holds what check_change validated, ids, stamps and
 * receivers the store made, and, for each field, the stamp it overwrote as read back
 * from the row: that last is the one part checked here (what ld_change_validate would
 * ask of it), so the whole change need not be validated again as it is logged. */
static int check_bases(const ld_kind_def_t *def, const ld_change_t *c, ld_error_t *err)
{
    for (size_t i = 0; i < c->nfields; i++) {
        const ld_field_t *f = &c->fields[i];
        if (f->base_hlc != 0 && !ld_id_valid(f->base_origin))
            return ld_error_set(err, LD_EIO, "%s %s: the stored stamp of %s has no valid "
                                "origin", def->name, c->record_id, f->name);
    }
    return 0;
}

/* Every required field of a new record is set. */
static int check_required(const ld_kind_def_t *def, const ld_change_t *c, ld_error_t *err)
{
    for (size_t i = 0; i < def->nfields; i++) {
        if (!def->fields[i].required)
            continue;
        const char *v = ld_change_get(c, def->fields[i].name);
        if (v == NULL || v[0] == '\0')
            return ld_error_set(err, LD_EINVAL, "%s: %s is required", def->name,
                                def->fields[i].name);
    }
    return 0;
}

/* Every reference the change sets names a live record here. */
static int check_refs(nd_store_t *self, const ld_kind_def_t *def, const ld_change_t *c,
                      ld_error_t *err)
{
    for (size_t i = 0; i < c->nfields; i++) {
        const ld_field_def_t *fd = &def->fields[field_index(def, c->fields[i].name)];
        const char *v = c->fields[i].value;
        if (fd->type != LD_T_REF || v == NULL || v[0] == '\0')
            continue;
        const ld_kind_def_t *ref = ld_schema_kind(fd->ref);
        uint64_t h = ld_text_hash(v) ^ (uint64_t)ref->kind;
        live_slot_t *slot = strlen(v) <= LD_RECORD_ID_MAX ? &self->live[h % LIVE_SLOTS] : NULL;
        if (slot != NULL && slot->gen == self->live_gen[ref->kind] && slot->kind == ref->kind &&
            strcmp(slot->id, v) == 0)
            continue;
        bool live = false;
        int rc = nd_st_row_live(self, ref, v, &live, err);
        if (rc != 0)
            return rc;
        if (!live)
            return ld_error_set(err, LD_ENOTFOUND, "%s: no %s \"%s\" in this store", fd->name,
                                ref->name, v);
        if (slot != NULL) {
            slot->gen = self->live_gen[ref->kind];
            slot->kind = ref->kind;
            nd_st_copy_text(slot->id, sizeof slot->id, v);
        }
    }
    return 0;
}

/* Gives the record its id: a new UUID for a new one, or the caller's, checked. */
static int choose_id(nd_store_t *self, const ld_kind_def_t *def, ld_change_t *c,
                     ld_error_t *err)
{
    if (c->record_id[0] == '\0') {
        if (def->kind == LD_KIND_ORG)
            return ld_error_set(err, LD_EINVAL, "org: an org needs an id of its own");
        return ld_uuid7_next(&self->ids, ld_hlc_wall_now(), c->record_id, err);
    }
    bool ok = def->kind == LD_KIND_ORG ? ld_id_valid(c->record_id) : ld_uuid_valid(c->record_id);
    if (!ok)
        return ld_error_set(err, LD_EINVAL, "%s id \"%.64s\" is not valid (%s)", def->name,
                            c->record_id, def->kind == LD_KIND_ORG
                            ? "1 to 64 of a-z, 0-9, '.', '_', '-', starting a-z or 0-9"
                            : "a lowercase UUID");
    return 0;
}

typedef enum { WRITE_ANY, WRITE_CREATE } write_mode_t;

/* The write itself, inside a transaction level. */
static int write_in_tx(nd_store_t *self, const ld_kind_def_t *def, ld_change_t *c,
                       write_mode_t mode, ld_error_t *err)
{
    nd_record_t r;
    nd_merge_result_t res;
    nd_nodes_t before, after, audience;
    char owner_id[LD_RECORD_ID_MAX + 1] = "";
    ld_kind_t owner = LD_KIND_NONE;
    bool create = mode == WRITE_CREATE || c->record_id[0] == '\0';
    int rc;

    nd_record_init(&r, def, "");
    memset(&res, 0, sizeof res);
    nd_nodes_init(&before);
    nd_nodes_init(&after);
    nd_nodes_init(&audience);

    bool fresh = c->record_id[0] == '\0';       /* a UUID made here: no row can exist */
    if (create) {
        rc = choose_id(self, def, c, err);
        if (rc != 0)
            goto out;
    }
    if (fresh)
        nd_record_init(&r, def, c->record_id);
    else if ((rc = nd_st_row_load(self, def, c->record_id, &r, err)) != 0)
        goto out;
    bool existed = r.exists;
    if (!create && !r.exists && def->kind == LD_KIND_ORG) {
        create = true;                   /* an org's id is chosen by its creator */
        rc = choose_id(self, def, c, err);
        if (rc != 0)
            goto out;
    }
    if (create && r.exists) {
        rc = ld_error_set(err, LD_EEXIST, "%s %s already exists%s", def->name, c->record_id,
                          nd_record_deleted(&r) ? " (deleted)" : "");
        goto out;
    }
    if (!create && (!r.exists || nd_record_deleted(&r))) {
        rc = ld_error_set(err, LD_ENOTFOUND, "%s %s %s", def->name, c->record_id,
                          r.exists ? "was deleted" : "not found");
        goto out;
    }
    if (create && c->deleted) {
        rc = ld_error_set(err, LD_EINVAL, "%s: a new record cannot be a deletion", def->name);
        goto out;
    }
    if (create && (rc = check_required(def, c, err)) != 0)
        goto out;
    if ((rc = check_refs(self, def, c, err)) != 0)
        goto out;
    if (!create && (rc = nd_audience_check_writable(self->aud, self->node_id, &r, err)) != 0)
        goto out;

    /* Stamp: one clock stamp for the change, each field's base is what it overwrote. */
    c->hlc = ld_hlc_now(&self->clock);
    nd_st_copy_text(c->origin, sizeof c->origin, self->node_id);
    for (size_t i = 0; i < c->nfields; i++) {
        ld_field_t *f = &c->fields[i];
        const nd_slot_t *s = &r.fields[field_index(def, f->name)];
        f->hlc = 0;
        f->origin[0] = '\0';
        f->base_hlc = s->stamp.hlc;
        nd_st_copy_text(f->base_origin, sizeof f->base_origin, s->stamp.origin);
    }
    rc = nd_merge_apply(&r, c, &res, err);
    if (rc != 0)
        goto out;
    if (create && (rc = nd_audience_check_writable(self->aud, self->node_id, &r, err)) != 0)
        goto out;

    /* A trip or member write may move the member to a new branch, an agreement
     * update may change one of its parties: note who had it before. */
    if ((def->kind == LD_KIND_TRIP || (def->kind == LD_KIND_MEMBER && !create)) &&
        nd_audience_member_of(&r) != NULL) {
        owner = LD_KIND_MEMBER;
        nd_st_copy_text(owner_id, sizeof owner_id, nd_audience_member_of(&r));
    } else if (def->kind == LD_KIND_AGREEMENT && !create) {
        owner = LD_KIND_AGREEMENT;
        nd_st_copy_text(owner_id, sizeof owner_id, r.id);
    }
    if (owner != LD_KIND_NONE && (rc = nd_st_owner_nodes(self, owner, owner_id, &before, err)) != 0)
        goto out;

    rc = nd_st_row_save(self, &r, err);
    if (rc == 0 && fresh && def->kind == LD_KIND_MEMBER)
        nd_audience_new_member(self->aud, r.id, nd_record_get(&r, "org"));
    if (rc == 0 && existed)
        rc = nd_st_conflicts_follow(self, &r, &res, err);
    if (rc == 0 && owner != LD_KIND_NONE)
        rc = nd_st_owner_nodes(self, owner, owner_id, &after, err);
    for (size_t i = 0; i < after.n && rc == 0; i++) {
        if (!nd_nodes_has(&before, after.ids[i]))
            rc = nd_st_snapshot_owner(self, owner, owner_id, after.ids[i],
                                      create ? c->record_id : NULL, err);
    }
    if (rc == 0)
        rc = nd_audience_of(self->aud, self->node_id, &r, &audience, err);
    /* A party an agreement update leaves is told so (as a trip's end is). */
    for (size_t i = 0; i < before.n && rc == 0 && owner == LD_KIND_AGREEMENT; i++)
        rc = nd_nodes_add(&audience, before.ids[i], self->node_id, err);
    for (size_t i = 0; i < audience.n && rc == 0; i++) {
        const char *node = audience.ids[i];
        if (def->kind == LD_KIND_ORG) {
            /* An update reaching a node that never had the org: the whole org first. */
            bool sent = create;
            if (!create)
                rc = nd_audience_org_sent(self->aud, r.id, node, &sent, err);
            if (rc == 0)
                rc = nd_audience_mark_sent(self->aud, r.id, node, err);
            if (rc == 0 && !sent)
                rc = nd_st_snapshot(self, LD_KIND_ORG, r.id, node, err);
        }
        if (rc == 0)
            rc = nd_st_send_orgs(self, &r, node, err);
    }
    if (rc == 0)
        rc = check_bases(def, c, err);
    if (rc == 0)
        rc = nd_st_emit(self, c, &audience, true, err);
out:
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
    nd_nodes_clear(&before);
    nd_nodes_clear(&after);
    nd_nodes_clear(&audience);
    return rc;
}

static int write_change(nd_store_t *self, ld_change_t *c, write_mode_t mode, ld_error_t *err)
{
    if (c == NULL)
        return ld_error_set(err, LD_EINVAL, "write: no change given");
    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    if (def == NULL)
        return ld_error_set(err, LD_EINVAL, "write: unknown record kind %d", (int)c->kind);
    if (self->node_id[0] == '\0')
        return ld_error_set(err, LD_EINVAL, "%s: this store has no node id yet (liangdi init)",
                            self->path);
    int rc = check_change(self, def, c, err);
    if (rc != 0)
        return rc;
    char id_before[LD_RECORD_ID_MAX + 1];
    memcpy(id_before, c->record_id, sizeof id_before);
    uint64_t seq = self->last_seq;
    if (self->group && self->bulk && self->depth == 1) {
        /* No savepoint (its undo copied every page a write touched): a write refused
         * by its checks has changed nothing, and one that fails after it began changing
         * the store breaks the group, which can then only be rolled back. */
        if (self->broken)
            return nd_st_broken_group(self, err);
        int changes = sqlite3_total_changes(self->db);
        rc = write_in_tx(self, def, c, mode, err);
        if (rc != 0) {
            self->last_seq = seq;
            nd_st_forget(self, LD_KIND_NONE);
            if (sqlite3_total_changes(self->db) != changes || sqlite3_get_autocommit(self->db))
                self->broken = true;
        }
    } else {
        rc = nd_st_tx_begin(self, err);
        if (rc != 0)
            return rc;
        seq = self->last_seq;
        rc = write_in_tx(self, def, c, mode, err);
        if (nd_st_tx_end(self, rc == 0, seq, err) != 0 && rc == 0)
            rc = err != NULL && err->code != 0 ? err->code : LD_EIO;
    }
    if (rc != 0) {
        memcpy(c->record_id, id_before, sizeof id_before);
        c->seq = 0;
    }
    return rc;
}

int nd_store_write(nd_store_t *self, ld_change_t *c, ld_error_t *err)
{
    return write_change(self, c, WRITE_ANY, err);
}

int nd_store_create(nd_store_t *self, ld_change_t *c, ld_error_t *err)
{
    return write_change(self, c, WRITE_CREATE, err);
}
