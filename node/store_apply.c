/* store_apply.c: the apply path: changes from elsewhere, logged once each (by origin and
 * seq), merged into their rows, their conflicts logged, and passed on to a receiver the
 * writer missed; one change, or a batch in one transaction with the cursor. */
#include <inttypes.h>
#include <string.h>

#include "codec.h"
#include "store_int.h"

/* Whether the writer of c addressed it to node. */
static bool addressed_to(const ld_change_t *c, const char *node)
{
    for (size_t i = 0; i < c->naudience; i++) {
        if (strcmp(c->audience[i], node) == 0)
            return true;
    }
    return false;
}

/* A change from elsewhere may name fewer receivers than this node now would: it was
 * written before its writer heard that the member moved to another branch (or that the
 * agreement changed party).  Each receiver of the member (or agreement) it missed gets
 * the record from here, whole, as a snapshot that keeps every field's own stamp and
 * author.  Only a node that may write the record passes it on (the member's home and
 * current branch, an agreement's parties): its receivers are nodes it is linked to. */
static int pass_on(nd_store_t *self, const nd_record_t *r, const ld_change_t *c,
                   ld_error_t *err)
{
    ld_kind_t owner = LD_KIND_NONE;
    const char *owner_id = NULL;
    if (nd_audience_member_scoped(r->def)) {
        owner = LD_KIND_MEMBER;
        owner_id = nd_audience_member_of(r);
    } else if (nd_audience_agreement_scoped(r->def)) {
        owner = LD_KIND_AGREEMENT;
        owner_id = r->def->kind == LD_KIND_AGREEMENT ? r->id : nd_record_get(r, "agreement");
    }
    if (owner_id == NULL || owner_id[0] == '\0' || strcmp(c->origin, self->node_id) == 0)
        return 0;
    nd_nodes_t to;
    nd_nodes_init(&to);
    int rc = nd_st_owner_nodes(self, owner, owner_id, &to, err);
    size_t missed = 0;
    for (size_t i = 0; i < to.n && rc == 0; i++) {
        if (strcmp(to.ids[i], c->origin) != 0 && !addressed_to(c, to.ids[i]))
            memmove(to.ids[missed++], to.ids[i], sizeof to.ids[i]);
    }
    if (rc == 0 && missed > 0) {
        ld_error_t denied;
        ld_error_clear(&denied);
        rc = nd_audience_check_writable(self->aud, self->node_id, r, &denied);
        if (rc == LD_EDENIED) {
            missed = 0;               /* read-only here: its receivers are not ours */
            rc = 0;
        } else if (rc != 0) {
            ld_error_set(err, rc, "%s", denied.msg);
        }
    }
    for (size_t i = 0; i < missed && rc == 0; i++)
        rc = nd_st_snapshot(self, r->def->kind, r->id, to.ids[i], err);
    nd_nodes_clear(&to);
    return rc;
}

/* Applies one validated change inside a transaction level.  The change log comes
 * first: a change it already holds (known by origin and seq) was applied before and is
 * skipped, and the one statement both asks and appends.  Whatever fails after it takes
 * the log row with it, as the caller rolls the level back. */
static int apply_in_tx(nd_store_t *self, const ld_change_t *c, ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    bool added = false;
    int rc = nd_st_log_add(self, c, ST_LOG_APPLY, true, &added, err);
    if (rc != 0 || !added)
        return rc;

    uint64_t newest = c->hlc;
    for (size_t i = 0; i < c->nfields; i++) {
        if (c->fields[i].hlc > newest)
            newest = c->fields[i].hlc;
    }
    ld_error_t inner;
    rc = ld_hlc_merge(&self->clock, newest, &inner);
    if (rc != 0)
        return ld_error_set(err, rc, "change %s/%" PRIu64 " to %s %s: %s", c->origin, c->seq,
                            def->name, c->record_id, inner.msg);

    /* Most changes from elsewhere make a record new here: merged into an empty record
     * and inserted, unless a row is there, which is then read and merged into. */
    nd_record_t r;
    nd_merge_result_t res;
    bool existed = true, inserted = false;
    nd_record_init(&r, def, c->record_id);
    rc = nd_merge_apply(&r, c, &res, err);
    if (rc == 0 && res.changed)
        rc = nd_st_row_write(self, &r, self->row_new[def->kind], &inserted, err);
    if (rc == 0 && inserted) {
        existed = false;
    } else if (rc == 0) {
        nd_merge_result_clear(&res);
        nd_record_clear(&r);
        rc = nd_st_row_load(self, def, c->record_id, &r, err);
        if (rc != 0)
            return rc;
        existed = r.exists;
        rc = nd_merge_apply(&r, c, &res, err);
        if (rc == 0 && res.changed)
            rc = nd_st_row_save(self, &r, err);
    }
    if (rc == 0)
        rc = nd_st_conflicts_log(self, &r, &res, err);
    /* A record new here has no conflicts logged to follow. */
    if (rc == 0 && existed)
        rc = nd_st_conflicts_follow(self, &r, &res, err);
    if (rc == 0 && res.changed)
        rc = pass_on(self, &r, c, err);
    if (rc == 0 && def->kind == LD_KIND_ORG && strcmp(c->origin, self->node_id) != 0)
        rc = nd_audience_mark_sent(self->aud, c->record_id, c->origin, err);
    if (rc == 0 && strcmp(c->origin, self->node_id) == 0 && c->seq > self->last_seq)
        self->last_seq = c->seq;
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
    return rc;
}

/* Opens a transaction level for applying; *seq gets the own seq that nd_st_tx_end
 * restores if the level rolls back. */
static int apply_begin(nd_store_t *self, uint64_t *seq, ld_error_t *err)
{
    *seq = self->last_seq;
    int rc = nd_st_tx_begin(self, err);
    if (rc == 0 && self->depth == 1)
        *seq = self->last_seq;
    return rc;
}

/* Closes the level apply_begin opened: kept if rc is 0, else rolled back.  The result
 * of the whole: rc, or the closing's own failure. */
static int apply_end(nd_store_t *self, int rc, uint64_t seq, ld_error_t *err)
{
    if (nd_st_tx_end(self, rc == 0, seq, err) != 0 && rc == 0)
        rc = err != NULL && err->code != 0 ? err->code : LD_EIO;
    return rc;
}

int nd_store_apply(nd_store_t *self, const ld_change_t *c, ld_error_t *err)
{
    if (c == NULL)
        return ld_error_set(err, LD_EINVAL, "apply: no change given");
    uint64_t seq = 0;
    int rc = ld_change_validate(c, err);
    if (rc == 0)
        rc = apply_begin(self, &seq, err);
    if (rc != 0)
        return rc;
    return apply_end(self, apply_in_tx(self, c, err), seq, err);
}

/* Applies changes[0..n) in one transaction and moves the cursor to `cursor` in it;
 * each change is validated first. */
int nd_store_apply_batch(nd_store_t *self, const ld_change_t *changes, size_t n,
                         uint64_t cursor, ld_error_t *err)
{
    if (changes == NULL && n > 0)
        return ld_error_set(err, LD_EINVAL, "apply: no changes given");
    uint64_t seq = 0;
    int rc = apply_begin(self, &seq, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = ld_change_validate(&changes[i], err);
        if (rc == 0)
            rc = apply_in_tx(self, &changes[i], err);
    }
    if (rc == 0)
        rc = nd_st_setting_put_u64(self, KEY_CURSOR, cursor, err);
    return apply_end(self, rc, seq, err);
}

/* Applies the changes of a Batch body above position `after`, read one at a time, in
 * one transaction; when `cursor` is not NULL it moves the cursor to *cursor in it.
 * The reader validates each change as a decode does. */
static int apply_body(nd_store_t *self, const uint8_t *body, size_t len, uint64_t after,
                      const uint64_t *cursor, size_t *applied, ld_error_t *err)
{
    ld_change_reader_t r;
    ld_change_t c;
    uint64_t position = 0;
    size_t done = 0;
    if (applied != NULL)
        *applied = 0;
    uint64_t seq = 0;
    int rc = ld_change_reader_init(&r, LD_MSG_BATCH, body, len, err);
    if (rc != 0)
        return rc;
    rc = apply_begin(self, &seq, err);
    if (rc != 0)
        goto out;
    int got;
    ld_error_t inner;
    ld_error_clear(&inner);
    while ((got = ld_change_reader_next(&r, &c, &position, err)) == 1) {
        if (position <= after)
            continue;                 /* taken before: applied already */
        rc = apply_in_tx(self, &c, &inner);
        if (rc != 0) {
            ld_error_set(err, rc, "batch entry %zu (position %" PRIu64 "): %s", r.index,
                         position, inner.msg);
            break;
        }
        done++;
    }
    if (rc == 0 && got < 0)
        rc = got;
    if (rc == 0 && cursor != NULL)
        rc = nd_st_setting_put_u64(self, KEY_CURSOR, *cursor, err);
    rc = apply_end(self, rc, seq, err);
    if (rc == 0 && applied != NULL)
        *applied = done;
out:
    ld_change_reader_clear(&r);
    return rc;
}

int nd_store_apply_body(nd_store_t *self, const uint8_t *body, size_t len, uint64_t after,
                        uint64_t cursor, size_t *applied, ld_error_t *err)
{
    return apply_body(self, body, len, after, &cursor, applied, err);
}

int nd_store_apply_taken(nd_store_t *self, const uint8_t *body, size_t len, uint64_t after,
                         size_t *applied, ld_error_t *err)
{
    return apply_body(self, body, len, after, NULL, applied, err);
}
