/* change.h: one write to one record, the unit that travels from node to broker to
 * node, in the project's own form (the codec converts it to and from liangdi.proto).
 * Ownership: an ld_change_t owns every string it points to, except the values of fields
 * marked `borrowed` and its `wire` bytes, which belong to the ld_msg_t that decoded it
 * (codec.h) and live as long as that message; ld_change_clear frees what it owns. */
#ifndef LD_CHANGE_H
#define LD_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "schema.h"
#include "text.h"

#define LD_FIELDS_MAX    16    /* more than any kind has */
#define LD_AUDIENCE_MAX  16    /* nodes one change may be addressed to */
#define LD_RECORD_ID_MAX 64    /* a UUID (36) or an org id (<= 64) */

typedef struct ld_field {
    const char *name;     /* borrowed from the schema table */
    char       *value;    /* text form, owned unless `borrowed`; "" clears the field */
    bool        borrowed; /* value belongs to the decoding ld_msg_t: not freed here */
    uint64_t    hlc;      /* 0: the change's own stamp */
    char        origin[LD_ID_MAX + 1];   /* "": the change's own origin */
    uint64_t    base_hlc;                /* the stamp it overwrote; 0: none (new field) */
    char        base_origin[LD_ID_MAX + 1];
} ld_field_t;

typedef struct ld_change {
    ld_kind_t   kind;
    char        record_id[LD_RECORD_ID_MAX + 1];
    char        origin[LD_ID_MAX + 1];
    uint64_t    seq;
    uint64_t    hlc;
    bool        deleted;
    size_t      nfields;
    size_t      naudience;
    /* The change's bytes exactly as they arrived inside a Push or Batch (borrowed from
     * the decoding ld_msg_t), kept so that a relay or a store need not pack it again;
     * NULL for a change built or modified here. */
    const uint8_t *wire;
    size_t      wire_len;
    ld_field_t  fields[LD_FIELDS_MAX];
    char        audience[LD_AUDIENCE_MAX][LD_ID_MAX + 1];
} ld_change_t;

/* Zeroes a change (no fields, no audience). */
void ld_change_init(ld_change_t *c);

/* Frees every field value and zeroes the change; safe on an initialised change. */
void ld_change_clear(ld_change_t *c);

/* Appends field `name` (must exist in the kind's schema) with a copy of `value`.
 * Returns 0, LD_EINVAL (unknown field, or set twice), LD_ETOOBIG or LD_ENOMEM. */
int ld_change_set(ld_change_t *c, const char *name, const char *value, ld_error_t *err);

/* Appends a node to the audience unless it is already there. */
int ld_change_add_audience(ld_change_t *c, const char *node, ld_error_t *err);

/* The value the change sets for `name`, or NULL. Borrowed. */
const char *ld_change_get(const ld_change_t *c, const char *name);

/* Deep copy: dst must be initialised (it is cleared first). */
int ld_change_copy(ld_change_t *dst, const ld_change_t *src, ld_error_t *err);

/* Checks everything a receiver must not trust: kind, ids, seq >= 1, hlc != 0, every
 * field name in the kind's schema and every value of its type (UTF-8, length, date,
 * month, enum word, money, year, reference shape), no field twice, a tombstone with
 * no fields, an audience of valid node ids.  The message names the field and value. */
int ld_change_validate(const ld_change_t *c, ld_error_t *err);

/* Checks one value against one field definition (used by the CLI and CSV import too). */
int ld_field_validate(const ld_field_def_t *def, const char *value, ld_error_t *err);

#endif
