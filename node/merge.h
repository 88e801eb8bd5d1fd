/* merge.h: field-level last-writer-wins for one record: the per-field stamps a row
 * keeps (and their compact text form in its "stamps" column), and the merge of a change.
 * Ownership: an nd_record_t owns its values; nd_record_clear frees them. */
#ifndef ND_MERGE_H
#define ND_MERGE_H

#include <stdbool.h>
#include <stdint.h>
#include "change.h"
#include "error.h"
#include "schema.h"

/* Who wrote a value and when; hlc 0 = never written.  Stamps order by hlc, then by
 * origin (byte order), so every node picks the same winner. */
typedef struct nd_stamp {
    uint64_t hlc;
    char     origin[LD_ID_MAX + 1];
} nd_stamp_t;

/* One field of a stored record (or the "deleted" pseudo-field). */
typedef struct nd_slot {
    char       *value;     /* owned; NULL = unset */
    nd_stamp_t  stamp;     /* the write that set it */
    nd_stamp_t  base;      /* the stamp that write overwrote (hlc 0: none) */
} nd_slot_t;

/* A record as the store keeps it: values, per-field stamps, the tombstone and the
 * lowest stamp ever merged (its origin is the row's created_by). */
typedef struct nd_record {
    const ld_kind_def_t *def;
    char        id[LD_RECORD_ID_MAX + 1];
    bool        exists;                 /* a row is stored (or now must be) */
    nd_slot_t   fields[LD_FIELDS_MAX];  /* indexed like def->fields */
    nd_slot_t   deleted;                /* value "1" once tombstoned */
    nd_stamp_t  created;
} nd_record_t;

/* One same-field race: the value that lost, and the field's current winner. */
typedef struct nd_conflict {
    const char *field;                  /* borrowed: a schema field name */
    char       *winner_value;           /* owned, NULL = unset */
    char       *loser_value;            /* owned, NULL = unset */
    nd_stamp_t  winner;
    nd_stamp_t  loser;
} nd_conflict_t;

/* What merging a change did. */
typedef struct nd_merge_result {
    bool          changed;                   /* the row must be written */
    size_t        nwon;                      /* fields whose winner changed ... */
    int           won[LD_FIELDS_MAX];        /* ... their indexes in def->fields */
    size_t        nconflicts;
    nd_conflict_t conflicts[LD_FIELDS_MAX];
} nd_merge_result_t;

/* Compares two stamps: < 0, 0, > 0. */
int nd_stamp_cmp(const nd_stamp_t *a, const nd_stamp_t *b);

/* Sets r to an empty (not stored) record of kind def with the given id. */
void nd_record_init(nd_record_t *r, const ld_kind_def_t *def, const char *id);

/* Frees the values and empties r (keeping def and id); safe twice. */
void nd_record_clear(nd_record_t *r);

/* True if the record is a tombstone. */
bool nd_record_deleted(const nd_record_t *r);

/* The value of field `name`, or NULL if unset or not a field.  Borrowed. */
const char *nd_record_get(const nd_record_t *r, const char *name);

/* The highest stamp of the record (fields and tombstone): the row's hlc and origin. */
nd_stamp_t nd_record_latest(const nd_record_t *r);

/* The "stamps" column text: one line "name hlc origin base_hlc base_origin" per
 * written field in schema order, then "deleted ..." and "created ...", with "-" for
 * an empty origin; a line whose stamp is the line before's and that has no base is
 * written "name =" (a record written in one change: one full line, then names).  Returns a malloc'd string (caller frees), NULL if out of memory. */
char *nd_stamps_encode(const nd_record_t *r);
/* The same text into *buf, of *cap bytes, grown (realloc) if it must be: for a caller
 * that writes many rows with one buffer.  *buf stays the caller's to free.  0 or
 * LD_ENOMEM (*buf and *cap as they were). */
int nd_stamps_encode_buf(const nd_record_t *r, char **buf, size_t *cap);

/* Reads a "stamps" column into r's stamps (values are left alone).  0, or LD_EIO
 * naming the record and line if the text is not what nd_stamps_encode writes. */
int nd_stamps_decode(nd_record_t *r, const char *text, ld_error_t *err);

/* Merges change c (of r's kind, already validated) into r: per field, the stamp is the
 * field's own (hlc, origin) or else the change's; the higher stamp wins.  A race is
 * logged in res when the values differ and
 *   - the incoming value wins but the stored stamp is not the incoming base (its
 *     writer never saw our value): the loser is the stored value; or
 *   - the incoming value loses and the stored value's base is not the incoming stamp:
 *     the loser is the incoming value.
 * Both nodes of a race thus log the same loser.  A tombstone is the pseudo-field
 * "deleted" under the same rule.  res is initialised by this call; free it with
 * nd_merge_result_clear.  0, or LD_EINVAL (unknown field) / LD_ENOMEM. */
int nd_merge_apply(nd_record_t *r, const ld_change_t *c, nd_merge_result_t *res,
                   ld_error_t *err);

/* Frees what res owns; safe twice. */
void nd_merge_result_clear(nd_merge_result_t *res);

#endif
