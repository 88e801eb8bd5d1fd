/* audience.c: who must receive a change and whether this node may write a record,
 * from the store's orgs, members, trips, agreements and org_sent tables.
 *
 * Caches.  Every member-scoped write asks which node keeps the member's org and the org
 * of its current trip, two or three times over (may it write, who receives it); an
 * import or a batch of activities asks the same of the same few orgs and members
 * thousands of times.  The answers are kept in two small direct-mapped tables (an org's
 * node; a member's org and current trip) that only ever hold what the store held when
 * they were read.  The store keeps them true: it calls nd_audience_forget when a
 * transaction begins (another process may have written in between), when one rolls
 * back, and whenever it writes an org, member or trip row. */
#include "audience.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define ORG_SLOTS    256           /* org -> node, direct-mapped by hash */
#define MEMBER_SLOTS 64            /* member -> org, current trip's org */

/* A slot holds an answer only while its generation is its table's: forgetting a whole
 * table is one increment. */
typedef struct org_slot {
    uint64_t gen;
    char org[LD_ID_MAX + 1];
    char node[LD_ID_MAX + 1];      /* "" if the org is not here */
} org_slot_t;

typedef struct member_slot {
    uint64_t gen;
    char id[LD_RECORD_ID_MAX + 1];
    bool has_org, has_trip;        /* which of the two below are known */
    char org[LD_ID_MAX + 1];       /* "" if the member is not here */
    char trip_to[LD_ID_MAX + 1];   /* "" if no current trip */
} member_slot_t;

struct nd_audience {
    sqlite3      *db;                  /* borrowed */
    sqlite3_stmt *org_node;            /* ?1 org -> node */
    sqlite3_stmt *member_row;          /* ?1 member -> org, name */
    sqlite3_stmt *current_trip_to;     /* ?1 member, ?2 ?3 live statuses -> to */
    sqlite3_stmt *agreement_orgs;      /* ?1 agreement -> outflow, inflow */
    sqlite3_stmt *sent_nodes;          /* ?1 org -> node... */
    sqlite3_stmt *sent_has;            /* ?1 org, ?2 node */
    sqlite3_stmt *sent_add;            /* ?1 org, ?2 node */
    sqlite3_stmt *left_on;             /* ?1 member, ?2 node -> ended */
    sqlite3_stmt *by_member[LD_KIND_COUNT];     /* ?1 member -> id... */
    sqlite3_stmt *by_agreement[LD_KIND_COUNT];  /* ?1 agreement -> id... */
    const char   *live_status[2];      /* trip statuses of a current trip */
    uint64_t      org_gen, member_gen; /* the generation of each table's live slots */
    org_slot_t    orgs[ORG_SLOTS];
    member_slot_t members[MEMBER_SLOTS];
};

/* ------------------------------------------------------------------ nd_nodes ---- */

/* Copies src (NULL = "") into dst[size], cut short if it does not fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

void nd_nodes_init(nd_nodes_t *l)
{
    memset(l, 0, sizeof *l);
}

void nd_nodes_clear(nd_nodes_t *l)
{
    if (l == NULL)
        return;
    free(l->ids);
    memset(l, 0, sizeof *l);
}

bool nd_nodes_has(const nd_nodes_t *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->ids[i], id) == 0)
            return true;
    }
    return false;
}

int nd_nodes_add(nd_nodes_t *l, const char *id, const char *skip, ld_error_t *err)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > LD_ID_MAX)
        return 0;
    if ((skip != NULL && strcmp(id, skip) == 0) || nd_nodes_has(l, id))
        return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap == 0 ? 4 : l->cap * 2;
        void *nids = realloc(l->ids, ncap * sizeof l->ids[0]);
        if (nids == NULL)
            return ld_error_set(err, LD_ENOMEM, "out of memory listing nodes");
        l->ids = nids;
        l->cap = ncap;
    }
    copy_text(l->ids[l->n++], LD_ID_MAX + 1, id);
    return 0;
}

/* ------------------------------------------------------------- statements ---- */

static int prepare(nd_audience_t *self, sqlite3_stmt **st, const char *sql, ld_error_t *err)
{
    int rc = sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "store: preparing %.80s: %s", sql,
                            sqlite3_errmsg(self->db));
    return 0;
}

static int db_error(nd_audience_t *self, const char *what, ld_error_t *err)
{
    return ld_error_set(err, LD_EIO, "store: %s: %s", what, sqlite3_errmsg(self->db));
}

static int bind_text(sqlite3_stmt *st, int i, const char *text)
{
    return sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* Copies column col of the current row into out[size] ("" for NULL). */
static void column_copy(sqlite3_stmt *st, int col, char *out, size_t size)
{
    copy_text(out, size, (const char *)sqlite3_column_text(st, col));
}

/* The field index of a reference named `name` to kind `ref` in def, or -1. */
static int ref_field(const ld_kind_def_t *def, const char *name, ld_kind_t ref)
{
    int idx = ld_schema_field_index(def, name);
    if (idx < 0 || def->fields[idx].type != LD_T_REF || def->fields[idx].ref != ref)
        return -1;
    return idx;
}

nd_audience_t *nd_audience_new(sqlite3 *db, ld_error_t *err)
{
    nd_audience_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        ld_error_set(err, LD_ENOMEM, "out of memory making the audience queries");
        return NULL;
    }
    self->db = db;
    self->org_gen = self->member_gen = 1;    /* calloc'd slots (generation 0) are empty */
    const ld_kind_def_t *trip = ld_schema_kind(LD_KIND_TRIP);
    int status = ld_schema_field_index(trip, "status");
    if (status < 0 || trip->fields[status].words == NULL ||
        trip->fields[status].words[0] == NULL || trip->fields[status].words[1] == NULL) {
        ld_error_set(err, LD_EINVAL, "schema: trip has no status words");
        goto err;
    }
    /* registered, reported-in: the first two statuses (liangdi.proto TripStatus 1, 2). */
    self->live_status[0] = trip->fields[status].words[0];
    self->live_status[1] = trip->fields[status].words[1];

    if (prepare(self, &self->org_node,
                "SELECT \"node\" FROM \"orgs\" WHERE \"id\" = ?1", err) != 0 ||
        prepare(self, &self->member_row,
                "SELECT \"org\", \"name\" FROM \"members\" WHERE \"id\" = ?1", err) != 0 ||
        prepare(self, &self->current_trip_to,
                "SELECT \"to\" FROM \"trips\" WHERE \"member\" = ?1 AND \"deleted\" = 0 "
                "AND \"status\" IN (?2, ?3) ORDER BY \"started\" DESC, \"id\" DESC LIMIT 1",
                err) != 0 ||
        prepare(self, &self->agreement_orgs,
                "SELECT \"outflow\", \"inflow\" FROM \"agreements\" WHERE \"id\" = ?1",
                err) != 0 ||
        prepare(self, &self->sent_nodes,
                "SELECT \"node\" FROM \"org_sent\" WHERE \"org\" = ?1 ORDER BY \"node\"",
                err) != 0 ||
        prepare(self, &self->sent_has,
                "SELECT 1 FROM \"org_sent\" WHERE \"org\" = ?1 AND \"node\" = ?2", err) != 0 ||
        prepare(self, &self->sent_add,
                "INSERT OR IGNORE INTO \"org_sent\" (\"org\", \"node\") VALUES (?1, ?2)",
                err) != 0 ||
        prepare(self, &self->left_on,
                "SELECT \"t\".\"ended\" FROM \"trips\" AS \"t\" JOIN \"orgs\" AS \"o\" "
                "ON \"o\".\"id\" = \"t\".\"to\" WHERE \"t\".\"member\" = ?1 "
                "AND \"o\".\"node\" = ?2 AND \"t\".\"deleted\" = 0 "
                "ORDER BY \"t\".\"started\" DESC, \"t\".\"id\" DESC LIMIT 1", err) != 0)
        goto err;

    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        char sql[256];
        if (k != LD_KIND_MEMBER && ref_field(def, "member", LD_KIND_MEMBER) >= 0) {
            snprintf(sql, sizeof sql, "SELECT \"id\" FROM \"%s\" WHERE \"member\" = ?1 "
                     "ORDER BY \"id\"", def->table);
            if (prepare(self, &self->by_member[k], sql, err) != 0)
                goto err;
        }
        if (k != LD_KIND_AGREEMENT && ref_field(def, "agreement", LD_KIND_AGREEMENT) >= 0) {
            snprintf(sql, sizeof sql, "SELECT \"id\" FROM \"%s\" WHERE \"agreement\" = ?1 "
                     "ORDER BY \"id\"", def->table);
            if (prepare(self, &self->by_agreement[k], sql, err) != 0)
                goto err;
        }
    }
    return self;
err:
    nd_audience_destroy(&self);
    return NULL;
}

void nd_audience_destroy(nd_audience_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    nd_audience_t *self = *self_p;
    sqlite3_finalize(self->org_node);
    sqlite3_finalize(self->member_row);
    sqlite3_finalize(self->current_trip_to);
    sqlite3_finalize(self->agreement_orgs);
    sqlite3_finalize(self->sent_nodes);
    sqlite3_finalize(self->sent_has);
    sqlite3_finalize(self->sent_add);
    sqlite3_finalize(self->left_on);
    for (int k = 0; k < LD_KIND_COUNT; k++) {
        sqlite3_finalize(self->by_member[k]);
        sqlite3_finalize(self->by_agreement[k]);
    }
    free(self);
    *self_p = NULL;
}

/* ----------------------------------------------------------------- lookups ---- */

void nd_audience_forget(nd_audience_t *self, ld_kind_t kind)
{
    if (self == NULL)
        return;
    if (kind == LD_KIND_NONE || kind == LD_KIND_ORG)
        self->org_gen++;
    if (kind == LD_KIND_NONE || kind == LD_KIND_MEMBER || kind == LD_KIND_TRIP)
        self->member_gen++;
}

/* The cache slot of member (emptied and claimed for it if it held another). */
static member_slot_t *member_slot(nd_audience_t *self, const char *member)
{
    member_slot_t *m = &self->members[ld_text_hash(member) % MEMBER_SLOTS];
    if (m->gen != self->member_gen || strcmp(m->id, member) != 0) {
        m->gen = self->member_gen;
        m->has_org = m->has_trip = false;
        copy_text(m->id, sizeof m->id, member);
    }
    return m;
}

void nd_audience_new_member(nd_audience_t *self, const char *member_id, const char *org)
{
    if (self == NULL || member_id == NULL || member_id[0] == '\0' ||
        strlen(member_id) > LD_RECORD_ID_MAX)
        return;
    member_slot_t *m = member_slot(self, member_id);
    m->has_org = true;
    copy_text(m->org, sizeof m->org, org);
    m->has_trip = true;
    m->trip_to[0] = '\0';
}

/* The node keeping org into out[LD_ID_MAX + 1] ("" if unknown); 0 or LD_EIO. */
static int org_node(nd_audience_t *self, const char *org, char *out, ld_error_t *err)
{
    out[0] = '\0';
    if (org == NULL || org[0] == '\0')
        return 0;
    bool cacheable = strlen(org) <= LD_ID_MAX;
    org_slot_t *slot = &self->orgs[ld_text_hash(org) % ORG_SLOTS];
    if (cacheable && slot->gen == self->org_gen && strcmp(slot->org, org) == 0) {
        memcpy(out, slot->node, sizeof slot->node);
        return 0;
    }
    sqlite3_stmt *st = self->org_node;
    int ret = 0;
    bind_text(st, 1, org);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        column_copy(st, 0, out, LD_ID_MAX + 1);
    else if (rc != SQLITE_DONE)
        ret = db_error(self, "reading an org's node", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ret == 0 && cacheable) {
        slot->gen = self->org_gen;
        copy_text(slot->org, sizeof slot->org, org);
        memcpy(slot->node, out, sizeof slot->node);
    }
    return ret;
}

/* The member's org and name (each "" if unknown; name may be NULL); 0 or LD_EIO. */
static int member_row(nd_audience_t *self, const char *member, char org[LD_ID_MAX + 1],
                      char *name, size_t name_size, ld_error_t *err)
{
    org[0] = '\0';
    if (name != NULL)
        name[0] = '\0';
    bool cacheable = strlen(member) <= LD_RECORD_ID_MAX;
    member_slot_t *m = cacheable ? member_slot(self, member) : NULL;
    if (m != NULL && m->has_org && name == NULL) {
        memcpy(org, m->org, sizeof m->org);
        return 0;
    }
    sqlite3_stmt *st = self->member_row;
    int ret = 0;
    bind_text(st, 1, member);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        column_copy(st, 0, org, LD_ID_MAX + 1);
        if (name != NULL)
            column_copy(st, 1, name, name_size);
    } else if (rc != SQLITE_DONE) {
        ret = db_error(self, "reading a member", err);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ret == 0 && m != NULL) {
        m->has_org = true;
        memcpy(m->org, org, sizeof m->org);
    }
    return ret;
}

/* The org of the member's current trip ("" if none); 0 or LD_EIO. */
static int current_trip_to(nd_audience_t *self, const char *member, char to[LD_ID_MAX + 1],
                           ld_error_t *err)
{
    to[0] = '\0';
    bool cacheable = strlen(member) <= LD_RECORD_ID_MAX;
    member_slot_t *m = cacheable ? member_slot(self, member) : NULL;
    if (m != NULL && m->has_trip) {
        memcpy(to, m->trip_to, sizeof m->trip_to);
        return 0;
    }
    sqlite3_stmt *st = self->current_trip_to;
    int ret = 0;
    bind_text(st, 1, member);
    bind_text(st, 2, self->live_status[0]);
    bind_text(st, 3, self->live_status[1]);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        column_copy(st, 0, to, LD_ID_MAX + 1);
    else if (rc != SQLITE_DONE)
        ret = db_error(self, "reading a member's current trip", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ret == 0 && m != NULL) {
        m->has_trip = true;
        memcpy(m->trip_to, to, sizeof m->trip_to);
    }
    return ret;
}

/* The two orgs of an agreement ("" if unknown); 0 or LD_EIO. */
static int agreement_orgs(nd_audience_t *self, const char *agreement,
                          char outflow[LD_ID_MAX + 1], char inflow[LD_ID_MAX + 1],
                          ld_error_t *err)
{
    outflow[0] = inflow[0] = '\0';
    if (agreement == NULL)
        return 0;
    sqlite3_stmt *st = self->agreement_orgs;
    int ret = 0;
    bind_text(st, 1, agreement);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        column_copy(st, 0, outflow, LD_ID_MAX + 1);
        column_copy(st, 1, inflow, LD_ID_MAX + 1);
    } else if (rc != SQLITE_DONE) {
        ret = db_error(self, "reading an agreement", err);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

bool nd_audience_member_scoped(const ld_kind_def_t *def)
{
    return def != NULL &&
           (def->kind == LD_KIND_MEMBER || ref_field(def, "member", LD_KIND_MEMBER) >= 0);
}

bool nd_audience_agreement_scoped(const ld_kind_def_t *def)
{
    return def != NULL && (def->kind == LD_KIND_AGREEMENT ||
                           ref_field(def, "agreement", LD_KIND_AGREEMENT) >= 0);
}

const char *nd_audience_member_of(const nd_record_t *r)
{
    if (r->def->kind == LD_KIND_MEMBER)
        return r->id;
    int idx = ref_field(r->def, "member", LD_KIND_MEMBER);
    return idx < 0 ? NULL : r->fields[idx].value;
}

/* The agreement's two orgs for an agreement-scoped record r. */
static int record_agreement_orgs(nd_audience_t *self, const nd_record_t *r,
                                 char outflow[LD_ID_MAX + 1], char inflow[LD_ID_MAX + 1],
                                 ld_error_t *err)
{
    if (r->def->kind == LD_KIND_AGREEMENT) {
        const char *o = nd_record_get(r, "outflow"), *i = nd_record_get(r, "inflow");
        snprintf(outflow, LD_ID_MAX + 1, "%s", o != NULL ? o : "");
        snprintf(inflow, LD_ID_MAX + 1, "%s", i != NULL ? i : "");
        return 0;
    }
    int idx = ref_field(r->def, "agreement", LD_KIND_AGREEMENT);
    return agreement_orgs(self, idx < 0 ? NULL : r->fields[idx].value, outflow, inflow, err);
}

/* Nodes of a member whose home org is `org` (from the record being written, or the
 * store when NULL). */
static int member_nodes(nd_audience_t *self, const char *self_node, const char *member,
                        const char *org, nd_nodes_t *out, ld_error_t *err)
{
    char home[LD_ID_MAX + 1], node[LD_ID_MAX + 1], to[LD_ID_MAX + 1];
    int rc = 0;
    if (org == NULL) {
        rc = member_row(self, member, home, NULL, 0, err);
        org = home;
    }
    if (rc == 0)
        rc = org_node(self, org, node, err);
    if (rc == 0)
        rc = nd_nodes_add(out, node, self_node, err);
    if (rc == 0)
        rc = current_trip_to(self, member, to, err);
    if (rc == 0)
        rc = org_node(self, to, node, err);
    if (rc == 0)
        rc = nd_nodes_add(out, node, self_node, err);
    return rc;
}

int nd_audience_member(nd_audience_t *self, const char *self_node, const char *member_id,
                       nd_nodes_t *out, ld_error_t *err)
{
    return member_nodes(self, self_node, member_id, NULL, out, err);
}

/* Nodes of an agreement between orgs outflow and inflow. */
static int agreement_nodes(nd_audience_t *self, const char *self_node, const char *outflow,
                           const char *inflow, nd_nodes_t *out, ld_error_t *err)
{
    char node[LD_ID_MAX + 1];
    int rc = org_node(self, outflow, node, err);
    if (rc == 0)
        rc = nd_nodes_add(out, node, self_node, err);
    if (rc == 0)
        rc = org_node(self, inflow, node, err);
    if (rc == 0)
        rc = nd_nodes_add(out, node, self_node, err);
    return rc;
}

int nd_audience_agreement(nd_audience_t *self, const char *self_node, const char *agreement_id,
                          nd_nodes_t *out, ld_error_t *err)
{
    char outflow[LD_ID_MAX + 1], inflow[LD_ID_MAX + 1];
    int rc = agreement_orgs(self, agreement_id, outflow, inflow, err);
    if (rc == 0)
        rc = agreement_nodes(self, self_node, outflow, inflow, out, err);
    return rc;
}

/* Nodes an org goes to: its own node and every node it was sent to. */
static int org_nodes(nd_audience_t *self, const char *self_node, const nd_record_t *r,
                     nd_nodes_t *out, ld_error_t *err)
{
    int rc = nd_nodes_add(out, nd_record_get(r, "node"), self_node, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = self->sent_nodes;
    bind_text(st, 1, r->id);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = nd_nodes_add(out, (const char *)sqlite3_column_text(st, 0), self_node, err);
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(self, "reading where an org was sent", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int nd_audience_of(nd_audience_t *self, const char *self_node, const nd_record_t *r,
                   nd_nodes_t *out, ld_error_t *err)
{
    char node[LD_ID_MAX + 1];
    int rc = 0;
    if (r->def->kind == LD_KIND_ORG)
        return org_nodes(self, self_node, r, out, err);
    if (nd_audience_member_scoped(r->def)) {
        const char *member = nd_audience_member_of(r);
        if (member == NULL)
            return 0;
        rc = member_nodes(self, self_node, member,
                          r->def->kind == LD_KIND_MEMBER ? nd_record_get(r, "org") : NULL,
                          out, err);
        if (rc == 0 && r->def->kind == LD_KIND_TRIP) {
            /* Ending a trip tells the branch the member left. */
            rc = org_node(self, nd_record_get(r, "to"), node, err);
            if (rc == 0)
                rc = nd_nodes_add(out, node, self_node, err);
        }
        return rc;
    }
    if (nd_audience_agreement_scoped(r->def)) {
        char outflow[LD_ID_MAX + 1], inflow[LD_ID_MAX + 1];
        rc = record_agreement_orgs(self, r, outflow, inflow, err);
        if (rc == 0)
            rc = agreement_nodes(self, self_node, outflow, inflow, out, err);
        return rc;
    }
    return 0;
}

/* The date the member's latest trip to a branch of this node ended, into out[11]
 * ("" if unknown). */
static int left_on(nd_audience_t *self, const char *self_node, const char *member, char *out,
                   ld_error_t *err)
{
    out[0] = '\0';
    sqlite3_stmt *st = self->left_on;
    int ret = 0;
    bind_text(st, 1, member);
    bind_text(st, 2, self_node);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        column_copy(st, 0, out, 11);
    else if (rc != SQLITE_DONE)
        ret = db_error(self, "reading a member's trips", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int check_member(nd_audience_t *self, const char *self_node, const nd_record_t *r,
                        ld_error_t *err)
{
    const char *member = nd_audience_member_of(r);
    char org[LD_ID_MAX + 1], name[256], node[LD_ID_MAX + 1], to[LD_ID_MAX + 1];
    if (member == NULL)
        return 0;
    int rc = 0;
    if (r->def->kind == LD_KIND_MEMBER) {
        /* The record itself: a new member is not in the store yet. */
        copy_text(org, sizeof org, nd_record_get(r, "org"));
        copy_text(name, sizeof name, nd_record_get(r, "name"));
    } else {
        rc = member_row(self, member, org, NULL, 0, err);
        name[0] = '\0';
    }
    if (rc == 0)
        rc = org_node(self, org, node, err);
    if (rc != 0 || strcmp(node, self_node) == 0)
        return rc;
    rc = current_trip_to(self, member, to, err);
    if (rc == 0)
        rc = org_node(self, to, node, err);
    if (rc != 0 || strcmp(node, self_node) == 0)
        return rc;
    char date[11];
    rc = left_on(self, self_node, member, date, err);
    if (rc == 0 && r->def->kind != LD_KIND_MEMBER)
        rc = member_row(self, member, org, name, sizeof name, err);   /* for the message */
    if (rc != 0)
        return rc;
    const char *who = name[0] != '\0' ? name : member;
    if (date[0] != '\0')
        return ld_error_set(err, LD_EDENIED, "member %s is not with this branch (left on %s); "
                            "its records are read-only here", who, date);
    return ld_error_set(err, LD_EDENIED, "member %s is not with this branch; its records are "
                        "read-only here", who);
}

static int check_agreement(nd_audience_t *self, const char *self_node, const nd_record_t *r,
                           ld_error_t *err)
{
    char outflow[LD_ID_MAX + 1], inflow[LD_ID_MAX + 1], node[LD_ID_MAX + 1];
    int rc = record_agreement_orgs(self, r, outflow, inflow, err);
    if (rc == 0)
        rc = org_node(self, outflow, node, err);
    if (rc != 0 || strcmp(node, self_node) == 0)
        return rc;
    rc = org_node(self, inflow, node, err);
    if (rc != 0 || strcmp(node, self_node) == 0)
        return rc;
    return ld_error_set(err, LD_EDENIED, "agreement between %s and %s: neither org is kept by "
                        "this node; its records are read-only here",
                        outflow[0] != '\0' ? outflow : "?", inflow[0] != '\0' ? inflow : "?");
}

int nd_audience_check_writable(nd_audience_t *self, const char *self_node,
                               const nd_record_t *r, ld_error_t *err)
{
    if (nd_audience_member_scoped(r->def))
        return check_member(self, self_node, r, err);
    if (nd_audience_agreement_scoped(r->def))
        return check_agreement(self, self_node, r, err);
    return 0;
}

size_t nd_audience_org_refs(const nd_record_t *r, const char *out[LD_FIELDS_MAX])
{
    size_t n = 0;
    for (size_t i = 0; i < r->def->nfields && n < LD_FIELDS_MAX; i++) {
        const ld_field_def_t *f = &r->def->fields[i];
        if (f->type == LD_T_REF && f->ref == LD_KIND_ORG && r->fields[i].value != NULL &&
            r->fields[i].value[0] != '\0')
            out[n++] = r->fields[i].value;
    }
    return n;
}

int nd_audience_org_sent(nd_audience_t *self, const char *org, const char *node, bool *sent,
                         ld_error_t *err)
{
    sqlite3_stmt *st = self->sent_has;
    int ret = 0;
    bind_text(st, 1, org);
    bind_text(st, 2, node);
    int rc = sqlite3_step(st);
    *sent = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = db_error(self, "reading org_sent", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int nd_audience_mark_sent(nd_audience_t *self, const char *org, const char *node,
                          ld_error_t *err)
{
    sqlite3_stmt *st = self->sent_add;
    int ret = 0;
    bind_text(st, 1, org);
    bind_text(st, 2, node);
    if (sqlite3_step(st) != SQLITE_DONE)
        ret = db_error(self, "writing org_sent", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int nd_audience_records_of(nd_audience_t *self, ld_kind_t owner, const char *owner_id,
                           nd_record_ref_t **out, size_t *n, ld_error_t *err)
{
    sqlite3_stmt *const *by = owner == LD_KIND_MEMBER ? self->by_member
                            : owner == LD_KIND_AGREEMENT ? self->by_agreement : NULL;
    nd_record_ref_t *list = NULL;
    size_t len = 0, cap = 0;
    int ret = 0;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT && ret == 0; k++) {
        sqlite3_stmt *st = by != NULL ? by[k] : NULL;
        if (st == NULL)
            continue;
        bind_text(st, 1, owner_id);
        int rc = SQLITE_DONE;
        while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (len == cap) {
                size_t ncap = cap == 0 ? 16 : cap * 2;
                nd_record_ref_t *nl = realloc(list, ncap * sizeof *nl);
                if (nl == NULL) {
                    ret = ld_error_set(err, LD_ENOMEM, "out of memory listing records of %s",
                                       owner_id);
                    break;
                }
                list = nl;
                cap = ncap;
            }
            list[len].kind = (ld_kind_t)k;
            column_copy(st, 0, list[len].id, sizeof list[len].id);
            len++;
        }
        if (ret == 0 && rc != SQLITE_DONE)
            ret = db_error(self, "listing the records of a member or agreement", err);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (ret != 0) {
        free(list);
        list = NULL;
        len = 0;
    }
    *out = list;
    *n = len;
    return ret;
}
