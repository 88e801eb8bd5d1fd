/* merge.c: field-level last-writer-wins for one record, the stamps text each row
 * keeps, and the conflict decision that makes both sides of a race log the same loser.
 *
 * Every field carries the stamp (hlc, origin) of the write that set it and the stamp
 * that write overwrote (its base).  Merging keeps, per field, the value with the
 * higher stamp; equal stamps are the same write seen twice and change nothing.  A field
 * whose values are stages (a trip's status: registered, reported in, ended; schema.h
 * `steps`) first keeps the later stage, then the higher stamp: a branch that records a
 * report-in while the home ends the trip cannot bring the trip back.  Either way the
 * order is total, so the result is independent of the order and the number of times
 * changes arrive.
 * The tombstone is the pseudo-field "deleted" whose only value is "1", and the
 * "created" stamp is the lowest stamp ever merged (a minimum, so order-independent).
 */
#include "merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELETED_NAME "deleted"
#define CREATED_NAME "created"

int nd_stamp_cmp(const nd_stamp_t *a, const nd_stamp_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    int c = strcmp(a->origin, b->origin);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/* Copies src (NULL = "") into dst[size], cut short if it does not fit.  The hot
 * paths copy ids and origins a lot; this spares them printf. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

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

static void stamp_set(nd_stamp_t *s, uint64_t hlc, const char *origin)
{
    s->hlc = hlc;
    copy_text(s->origin, sizeof s->origin, origin);
}

static bool values_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

void nd_record_init(nd_record_t *r, const ld_kind_def_t *def, const char *id)
{
    memset(r, 0, sizeof *r);
    r->def = def;
    copy_text(r->id, sizeof r->id, id);
}

void nd_record_clear(nd_record_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < LD_FIELDS_MAX; i++)
        free(r->fields[i].value);
    free(r->deleted.value);
    const ld_kind_def_t *def = r->def;
    char id[LD_RECORD_ID_MAX + 1];
    memcpy(id, r->id, sizeof id);
    memset(r, 0, sizeof *r);
    r->def = def;
    memcpy(r->id, id, sizeof id);
}

bool nd_record_deleted(const nd_record_t *r)
{
    return r->deleted.value != NULL;
}

const char *nd_record_get(const nd_record_t *r, const char *name)
{
    int idx = ld_schema_field_index(r->def, name);
    return idx < 0 ? NULL : r->fields[idx].value;
}

nd_stamp_t nd_record_latest(const nd_record_t *r)
{
    nd_stamp_t best = r->deleted.stamp;
    for (size_t i = 0; r->def != NULL && i < r->def->nfields; i++) {
        if (nd_stamp_cmp(&r->fields[i].stamp, &best) > 0)
            best = r->fields[i].stamp;
    }
    return best;
}

/* Appends n bytes of text to out at *o. */
static void put_bytes(char *out, size_t *o, const char *text, size_t n)
{
    memcpy(out + *o, text, n);
    *o += n;
}

/* Appends the decimal digits of v to out at *o, two at a time (the stamps column is
 * written for every row saved, and its 13-to-17-digit stamps were most of its cost). */
static void put_u64(char *out, size_t *o, uint64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char digits[20];
    size_t n = sizeof digits;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        digits[--n] = pairs[d + 1];
        digits[--n] = pairs[d];
    }
    if (v >= 10) {
        digits[--n] = pairs[v * 2 + 1];
        digits[--n] = pairs[v * 2];
    } else {
        digits[--n] = (char)('0' + v);
    }
    put_bytes(out, o, digits + n, sizeof digits - n);
}

/* The most one stamps line takes: its name, two stamps ("hlc origin" each, the origin
 * at most LD_ID_MAX bytes or "-"), three spaces and the line end. */
static size_t line_max(const char *name)
{
    return strlen(name) + 2 * (20 + 1 + LD_ID_MAX) + 3 + 1;
}

/* Appends one stamps line to out at *o, which has room for line_max(name) bytes: the
 * short form "name =" when the stamp is *prev's and there is no base.  *prev becomes
 * this line's stamp. */
static void put_line(char *out, size_t *o, const char *name, const nd_stamp_t *stamp,
                     const nd_stamp_t *base, const nd_stamp_t **prev)
{
    bool same = *prev != NULL && base->hlc == 0 && (*prev)->hlc == stamp->hlc &&
                strcmp((*prev)->origin, stamp->origin) == 0;
    *prev = stamp;
    put_bytes(out, o, name, strlen(name));
    out[(*o)++] = ' ';
    if (same) {
        out[(*o)++] = '=';
        out[(*o)++] = '\n';
        return;
    }
    put_u64(out, o, stamp->hlc);
    out[(*o)++] = ' ';
    if (stamp->origin[0] != '\0')
        put_bytes(out, o, stamp->origin, strnlen(stamp->origin, LD_ID_MAX));
    else
        out[(*o)++] = '-';
    out[(*o)++] = ' ';
    put_u64(out, o, base->hlc);
    out[(*o)++] = ' ';
    if (base->origin[0] != '\0')
        put_bytes(out, o, base->origin, strnlen(base->origin, LD_ID_MAX));
    else
        out[(*o)++] = '-';
    out[(*o)++] = '\n';
}

char *nd_stamps_encode(const nd_record_t *r)
{
    char *buf = NULL;
    size_t cap = 0;
    if (nd_stamps_encode_buf(r, &buf, &cap) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int nd_stamps_encode_buf(const nd_record_t *r, char **bufp, size_t *capp)
{
    static const nd_stamp_t none;
    size_t cap = 1;                      /* sized once: no growing line by line */
    for (size_t i = 0; i < r->def->nfields; i++) {
        if (r->fields[i].stamp.hlc != 0)
            cap += line_max(r->def->fields[i].name);
    }
    cap += line_max(DELETED_NAME) + line_max(CREATED_NAME);
    if (cap > *capp) {
        char *grown = realloc(*bufp, cap);
        if (grown == NULL)
            return LD_ENOMEM;
        *bufp = grown;
        *capp = cap;
    }
    char *buf = *bufp;
    size_t len = 0;
    const nd_stamp_t *prev = NULL;
    for (size_t i = 0; i < r->def->nfields; i++) {
        const nd_slot_t *s = &r->fields[i];
        if (s->stamp.hlc != 0)
            put_line(buf, &len, r->def->fields[i].name, &s->stamp, &s->base, &prev);
    }
    if (r->deleted.stamp.hlc != 0)
        put_line(buf, &len, DELETED_NAME, &r->deleted.stamp, &r->deleted.base, &prev);
    if (r->created.hlc != 0)
        put_line(buf, &len, CREATED_NAME, &r->created, &none, &prev);
    buf[len] = '\0';
    return 0;
}

/* Parses "hlc origin" at *p into s, advancing *p past the origin; false if malformed. */
static bool parse_stamp(const char **p, nd_stamp_t *s)
{
    char *end;
    const char *q = *p;
    if (*q < '0' || *q > '9')
        return false;
    unsigned long long v = strtoull(q, &end, 10);
    if (*end != ' ')
        return false;
    q = end + 1;
    size_t n = strcspn(q, " \n");
    if (n == 0 || n > LD_ID_MAX)
        return false;
    s->hlc = (uint64_t)v;
    if (n == 1 && q[0] == '-')
        s->origin[0] = '\0';
    else {
        memcpy(s->origin, q, n);
        s->origin[n] = '\0';
    }
    *p = q + n;
    return true;
}

int nd_stamps_decode(nd_record_t *r, const char *text, ld_error_t *err)
{
    const char *p = text != NULL ? text : "";
    int line = 0;
    nd_stamp_t prev;
    bool have_prev = false;
    while (*p != '\0') {
        line++;
        size_t n = strcspn(p, " ");
        char name[64];
        if (n == 0 || n >= sizeof name || p[n] != ' ')
            goto bad;
        memcpy(name, p, n);
        name[n] = '\0';
        p += n + 1;
        nd_stamp_t stamp, base;
        if (p[0] == '=' && p[1] == '\n') {         /* the line before's stamp, no base */
            if (!have_prev)
                goto bad;
            stamp = prev;
            memset(&base, 0, sizeof base);
            p += 2;
        } else if (!parse_stamp(&p, &stamp) || *p++ != ' ' || !parse_stamp(&p, &base) ||
                   *p++ != '\n') {
            goto bad;
        }
        prev = stamp;
        have_prev = true;
        if (strcmp(name, DELETED_NAME) == 0) {
            r->deleted.stamp = stamp;
            r->deleted.base = base;
        } else if (strcmp(name, CREATED_NAME) == 0) {
            r->created = stamp;
        } else {
            int idx = ld_schema_field_index(r->def, name);
            if (idx < 0)
                goto bad;
            r->fields[idx].stamp = stamp;
            r->fields[idx].base = base;
        }
    }
    return 0;
bad:
    return ld_error_set(err, LD_EIO, "%s %s: stamps line %d is malformed", r->def->name,
                        r->id, line);
}

/* Duplicates a value that may be NULL; *ok is cleared when out of memory. */
static char *dup_value(const char *v, bool *ok)
{
    if (v == NULL)
        return NULL;
    char *d = strdup(v);
    if (d == NULL)
        *ok = false;
    return d;
}

static int log_conflict(nd_merge_result_t *res, const char *field, const char *winner_value,
                        const nd_stamp_t *winner, const char *loser_value,
                        const nd_stamp_t *loser, ld_error_t *err)
{
    if (res->nconflicts >= LD_FIELDS_MAX)
        return 0;   /* cannot happen: one conflict per field at most */
    nd_conflict_t *k = &res->conflicts[res->nconflicts];
    bool ok = true;
    k->field = field;
    k->winner_value = dup_value(winner_value, &ok);
    k->loser_value = dup_value(loser_value, &ok);
    k->winner = *winner;
    k->loser = *loser;
    res->nconflicts++;
    if (!ok)
        return ld_error_set(err, LD_ENOMEM, "out of memory logging a conflict on %s", field);
    return 0;
}

/* The stage of value in a field of stages (schema.h `steps`): its word's index, the
 * endings all `steps`; 0 for an unset value and for any other field. */
static size_t stage_of(const ld_field_def_t *fd, const char *value)
{
    if (fd == NULL || fd->steps == 0 || value == NULL)
        return 0;
    for (size_t i = 0; i < fd->steps && fd->words[i] != NULL; i++) {
        if (strcmp(fd->words[i], value) == 0)
            return i;
    }
    return fd->steps;
}

/* Merges one incoming value (NULL = unset) with its stamp and base into slot.
 * fd is the field (NULL: the tombstone, never logged as a conflict).  Sets *won when
 * the incoming value replaced the stored one. */
static int merge_slot(nd_slot_t *slot, const ld_field_def_t *fd, const char *value,
                      const nd_stamp_t *stamp, const nd_stamp_t *base,
                      nd_merge_result_t *res, bool *won, ld_error_t *err)
{
    const char *field = fd != NULL ? fd->name : NULL;
    *won = false;
    int cmp = nd_stamp_cmp(stamp, &slot->stamp);
    size_t stage = stage_of(fd, value), stored = stage_of(fd, slot->value);
    if (cmp != 0 && stage != stored && slot->stamp.hlc != 0)
        cmp = stage < stored ? -1 : 1;
    if (cmp == 0)
        return 0;                       /* the same write again */
    bool differ = !values_equal(slot->value, value);
    if (cmp < 0) {
        /* Loses.  Concurrent unless the stored write overwrote exactly this one. */
        if (field != NULL && differ && nd_stamp_cmp(&slot->base, stamp) != 0)
            return log_conflict(res, field, slot->value, &slot->stamp, value, stamp, err);
        return 0;
    }
    char *copy = NULL;
    if (value != NULL) {
        copy = strdup(value);
        if (copy == NULL)
            return ld_error_set(err, LD_ENOMEM, "out of memory merging %s",
                                field != NULL ? field : DELETED_NAME);
    }
    int rc = 0;
    /* Wins.  The stored value lost a race if its writer's base is not our stamp. */
    if (field != NULL && differ && slot->stamp.hlc != 0 && nd_stamp_cmp(&slot->stamp, base) != 0)
        rc = log_conflict(res, field, value, stamp, slot->value, &slot->stamp, err);
    free(slot->value);
    slot->value = copy;
    slot->stamp = *stamp;
    slot->base = *base;
    *won = true;
    res->changed = true;
    return rc;
}

int nd_merge_apply(nd_record_t *r, const ld_change_t *c, nd_merge_result_t *res,
                   ld_error_t *err)
{
    memset(res, 0, sizeof *res);
    nd_stamp_t lowest = { 0, "" };
    int rc = 0;
    for (size_t i = 0; i < c->nfields; i++) {
        const ld_field_t *f = &c->fields[i];
        int idx = field_index(r->def, f->name);
        if (idx < 0)
            return ld_error_set(err, LD_EINVAL, "%s has no field \"%s\"", r->def->name,
                                f->name != NULL ? f->name : "");
        nd_stamp_t stamp, base;
        stamp_set(&stamp, f->hlc != 0 ? f->hlc : c->hlc,
                  f->origin[0] != '\0' ? f->origin : c->origin);
        stamp_set(&base, f->base_hlc, f->base_origin);
        if (lowest.hlc == 0 || nd_stamp_cmp(&stamp, &lowest) < 0)
            lowest = stamp;
        const char *value = f->value != NULL && f->value[0] != '\0' ? f->value : NULL;
        bool won = false;
        rc = merge_slot(&r->fields[idx], &r->def->fields[idx], value, &stamp, &base,
                        res, &won, err);
        if (won)
            res->won[res->nwon++] = idx;
        if (rc != 0)
            return rc;
    }
    if (c->deleted) {
        nd_stamp_t stamp, base = { 0, "" };
        stamp_set(&stamp, c->hlc, c->origin);
        if (lowest.hlc == 0 || nd_stamp_cmp(&stamp, &lowest) < 0)
            lowest = stamp;
        bool won = false;
        rc = merge_slot(&r->deleted, NULL, "1", &stamp, &base, res, &won, err);
        if (rc != 0)
            return rc;
    }
    if (lowest.hlc != 0 && (r->created.hlc == 0 || nd_stamp_cmp(&lowest, &r->created) < 0)) {
        r->created = lowest;
        res->changed = true;
    }
    if (!r->exists && res->changed)
        r->exists = true;
    return 0;
}

void nd_merge_result_clear(nd_merge_result_t *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->nconflicts && i < LD_FIELDS_MAX; i++) {
        free(res->conflicts[i].winner_value);
        free(res->conflicts[i].loser_value);
    }
    memset(res, 0, sizeof *res);
}
