/* schema.h: the record kinds of liangdi.proto and their fields, as one table both
 * sides read: which fields a kind has, of which type, and which words its enums take.
 * Validation (validate.c), the codec (codec.c) and the node's SQL all follow it. */
#ifndef LD_SCHEMA_H
#define LD_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#define LD_PROTOCOL_VERSION 1     /* the frame header's version; bump on wire changes */
#define LD_SCHEMA_VERSION   4     /* the record schema's version; bump on field changes */

/* A text field at most this long (a name, a phone number) is one line; longer ones
 * (addresses, notes) may hold line breaks. */
#define LD_ONE_LINE_MAX 240

typedef enum ld_kind {
    LD_KIND_NONE = 0,
    LD_KIND_ORG,
    LD_KIND_MEMBER,
    LD_KIND_TRIP,
    LD_KIND_AGREEMENT,
    LD_KIND_CONTACT,
    LD_KIND_VISIT,
    LD_KIND_ACTIVITY,
    LD_KIND_ASSESSMENT,
    LD_KIND_APPROVAL,
    LD_KIND_CARE,
    LD_KIND_HONOUR,
    LD_KIND_SUPPORT,
    LD_KIND_COUNT
} ld_kind_t;

typedef enum ld_type {
    LD_T_TEXT,    /* free UTF-8 text, up to max_len bytes */
    LD_T_DATE,    /* "YYYY-MM-DD" */
    LD_T_MONTH,   /* "YYYY-MM" */
    LD_T_ENUM,    /* one of `words`; carried as a protobuf enum (index + 1) */
    LD_T_REF,     /* id of a record of kind `ref`: a UUID, or an org id */
    LD_T_NODE,    /* a node id */
    LD_T_MONEY,   /* fen, as decimal digits in text form */
    LD_T_YEAR     /* 1900..2199 */
} ld_type_t;

typedef struct ld_field_def {
    const char        *name;      /* as in liangdi.proto: "id_number" */
    ld_type_t          type;
    ld_kind_t          ref;       /* LD_T_REF: the kind referred to */
    const char *const *words;     /* LD_T_ENUM: NULL-terminated, proto value = index + 1 */
    size_t             max_len;   /* bytes, for LD_T_TEXT */
    bool               required;  /* must be set when the record is created */
    size_t             steps;     /* LD_T_ENUM: its first `steps` words are stages in this
                                     order and the rest end it (a trip's status): merging
                                     never gives a later stage way to an earlier one; 0 for
                                     a field where the last writer wins */
    const char *const *labels;    /* LD_T_ENUM: what a person reads for each word, in
                                     Chinese, in the order of `words` */
} ld_field_def_t;

typedef struct ld_kind_def {
    ld_kind_t              kind;
    const char            *name;     /* "org", "member", ... */
    const char            *table;    /* the node's SQL table: "orgs", "members", ... */
    const ld_field_def_t  *fields;
    size_t                 nfields;
} ld_kind_def_t;

/* The definition of a kind, or NULL for LD_KIND_NONE and out-of-range values. */
const ld_kind_def_t *ld_schema_kind(ld_kind_t kind);

/* By name ("member"), or NULL. */
const ld_kind_def_t *ld_schema_kind_by_name(const char *name);

/* The field's index in def->fields, or -1. */
int ld_schema_field_index(const ld_kind_def_t *def, const char *name);

/* The index of `word` in an enum field's words, or -1. */
int ld_schema_word_index(const ld_field_def_t *field, const char *word);

/* The index of `label` in an enum field's labels ("女" for gender), or -1. */
int ld_schema_label_index(const ld_field_def_t *field, const char *label);

/* Whether some kind has an enum field named `field`, with labels. */
bool ld_schema_labelled(const char *field);

/* The label of `word` in an enum field named `field` of any kind ("reported-in" of
 * "status": "已报到"), or NULL when no such field has the word.  Static. */
const char *ld_schema_label(const char *field, const char *word);

#endif
