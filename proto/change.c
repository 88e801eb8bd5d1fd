/* change.c: building, copying and validating ld_change_t, the unit of replication.
 * Validation is the gate every untrusted change passes: see ld_change_validate. */
#include "change.h"
#include "uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONEY_FEN_DIGITS_MAX 11     /* < 10^9 yuan = 10^11 fen */
#define QUOTE_MAX 48                /* bytes of a bad value quoted in a message */

/* Writes a printable, shortened form of an untrusted value into out[QUOTE_MAX * 4 + 8]. */
static void quote_value(const char *value, char *out, size_t outlen)
{
    ld_quote(value, QUOTE_MAX, out, outlen);
}

_Static_assert(LD_FIELDS_MAX <= 32, "ld_change_validate keeps the fields it saw in 32 bits");

/* The index of field `name` in def, or -1.  A change's field names are the schema's
 * own strings (ld_change_set and the codec store those), so they are found by address
 * first, and by text only if that fails. */
static int field_index(const ld_kind_def_t *def, const char *name)
{
    for (size_t i = 0; i < def->nfields; i++) {
        if (def->fields[i].name == name)
            return (int)i;
    }
    return ld_schema_field_index(def, name);
}

/* True if the fixed-size buffer holds a NUL, i.e. is a C string. */
static bool terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

void ld_change_init(ld_change_t *c)
{
    memset(c, 0, sizeof *c);
}

void ld_change_clear(ld_change_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nfields && i < LD_FIELDS_MAX; i++) {
        if (!c->fields[i].borrowed)
            free(c->fields[i].value);
    }
    memset(c, 0, sizeof *c);
}

int ld_change_set(ld_change_t *c, const char *name, const char *value, ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    if (def == NULL)
        return ld_error_set(err, LD_EINVAL, "change has no record kind (%d)", (int)c->kind);
    if (name == NULL || value == NULL)
        return ld_error_set(err, LD_EINVAL, "field name and value must not be NULL");
    int idx = ld_schema_field_index(def, name);
    if (idx < 0) {
        char q[QUOTE_MAX * 4 + 8];
        quote_value(name, q, sizeof q);
        return ld_error_set(err, LD_EINVAL, "%s has no field \"%s\"", def->name, q);
    }
    if (ld_change_get(c, name) != NULL)
        return ld_error_set(err, LD_EINVAL, "%s.%s is set twice", def->name, name);
    if (c->nfields >= LD_FIELDS_MAX)
        return ld_error_set(err, LD_ETOOBIG, "more than %d fields in one change", LD_FIELDS_MAX);
    char *copy = strdup(value);
    if (copy == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory copying %s.%s", def->name, name);
    ld_field_t *f = &c->fields[c->nfields++];
    memset(f, 0, sizeof *f);
    f->name = def->fields[idx].name;
    f->value = copy;
    c->wire = NULL;                        /* the bytes received no longer say this */
    c->wire_len = 0;
    return 0;
}

int ld_change_add_audience(ld_change_t *c, const char *node, ld_error_t *err)
{
    if (!ld_id_valid(node)) {
        char q[QUOTE_MAX * 4 + 8];
        quote_value(node != NULL ? node : "", q, sizeof q);
        return ld_error_set(err, LD_EINVAL, "audience: \"%s\" is not a node id", q);
    }
    for (size_t i = 0; i < c->naudience; i++) {
        if (strcmp(c->audience[i], node) == 0)
            return 0;
    }
    if (c->naudience >= LD_AUDIENCE_MAX)
        return ld_error_set(err, LD_ETOOBIG, "more than %d nodes in one audience",
                            LD_AUDIENCE_MAX);
    size_t len = strlen(node);             /* <= LD_ID_MAX: ld_id_valid checked it */
    memcpy(c->audience[c->naudience++], node, len + 1);
    c->wire = NULL;
    c->wire_len = 0;
    return 0;
}

const char *ld_change_get(const ld_change_t *c, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < c->nfields && i < LD_FIELDS_MAX; i++) {
        if (c->fields[i].name != NULL && strcmp(c->fields[i].name, name) == 0)
            return c->fields[i].value;
    }
    return NULL;
}

int ld_change_copy(ld_change_t *dst, const ld_change_t *src, ld_error_t *err)
{
    if (dst == src)
        return 0;
    ld_change_clear(dst);
    if (src->nfields > LD_FIELDS_MAX || src->naudience > LD_AUDIENCE_MAX)
        return ld_error_set(err, LD_EINVAL, "change to copy has too many fields or nodes");
    *dst = *src;
    dst->wire = NULL;                  /* the copy owns everything it points to */
    dst->wire_len = 0;
    for (size_t i = 0; i < src->nfields; i++) {
        dst->fields[i].value = NULL;
        dst->fields[i].borrowed = false;
    }
    for (size_t i = 0; i < src->nfields; i++) {
        const char *v = src->fields[i].value != NULL ? src->fields[i].value : "";
        dst->fields[i].value = strdup(v);
        if (dst->fields[i].value == NULL) {
            ld_change_clear(dst);
            return ld_error_set(err, LD_ENOMEM, "out of memory copying a change");
        }
    }
    return 0;
}

/* LD_EINVAL with "field: "value" why", the value quoted safely (only on failure). */
static int bad_value(const ld_field_def_t *def, const char *value, ld_error_t *err,
                     const char *why)
{
    char q[QUOTE_MAX * 4 + 8];
    quote_value(value, q, sizeof q);
    return ld_error_set(err, LD_EINVAL, "%s: \"%s\" %s", def->name, q, why);
}

/* Text of one of the shapes the schema gives by field name: phone numbers and
 * resident id numbers; 0 or LD_EINVAL. */
static int text_shape(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    size_t len = strlen(value);
    if (strcmp(def->name, "phone") == 0) {
        for (size_t i = 0; i < len; i++) {
            char ch = value[i];
            if (!((ch >= '0' && ch <= '9') || ch == ' ' || ch == '+' || ch == '-'))
                return bad_value(def, value, err,
                                 "is not a phone number (digits, spaces, '+' and '-')");
        }
        return 0;
    }
    if (strcmp(def->name, "id_number") == 0) {
        bool ok = len == 18;
        for (size_t i = 0; ok && i < 17; i++)
            ok = value[i] >= '0' && value[i] <= '9';
        ok = ok && ((value[17] >= '0' && value[17] <= '9') || value[17] == 'X');
        if (!ok)
            return bad_value(def, value, err,
                             "is not an id number (17 digits, then a digit or X)");
        return 0;
    }
    return 0;
}

static int validate_text(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    size_t len = strlen(value);
    if (len > def->max_len)
        return ld_error_set(err, LD_EINVAL, "%s: %zu bytes is longer than the %zu allowed",
                            def->name, len, def->max_len);
    if (!ld_utf8_valid(value, len))
        return bad_value(def, value, err, "is not valid UTF-8 text");
    if (def->max_len <= LD_ONE_LINE_MAX && strpbrk(value, "\t\r\n") != NULL)
        return bad_value(def, value, err, "must be one line");
    return text_shape(def, value, err);
}

static int validate_money(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= MONEY_FEN_DIGITS_MAX && !(len > 1 && value[0] == '0');
    for (size_t i = 0; ok && i < len; i++)
        ok = value[i] >= '0' && value[i] <= '9';
    if (!ok)
        return bad_value(def, value, err,
                         "is not an amount in fen (0 to 99999999999, digits only)");
    return 0;
}

static int validate_year(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    bool ok = strlen(value) == 4;
    int y = 0;
    for (size_t i = 0; ok && i < 4; i++) {
        ok = value[i] >= '0' && value[i] <= '9';
        y = y * 10 + (value[i] - '0');
    }
    if (!ok || y < 1900 || y > 2199)
        return bad_value(def, value, err, "is not a year from 1900 to 2199");
    return 0;
}

static int validate_ref(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    if (def->ref == LD_KIND_ORG) {
        if (!ld_id_valid(value))
            return bad_value(def, value, err, "is not an org id ([a-z0-9._-], up to 64)");
        return 0;
    }
    if (!ld_uuid_valid(value)) {
        const ld_kind_def_t *k = ld_schema_kind(def->ref);
        char why[64];
        snprintf(why, sizeof why, "is not a %s id (a lowercase UUID)",
                 k != NULL ? k->name : "record");
        return bad_value(def, value, err, why);
    }
    return 0;
}

int ld_field_validate(const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    if (def == NULL)
        return ld_error_set(err, LD_EINVAL, "no field definition");
    if (value == NULL)
        return ld_error_set(err, LD_EINVAL, "%s: no value", def->name);
    if (value[0] == '\0') {
        if (def->required)
            return ld_error_set(err, LD_EINVAL, "%s is required and cannot be empty", def->name);
        return 0;
    }
    switch (def->type) {
    case LD_T_TEXT:
        return validate_text(def, value, err);
    case LD_T_DATE:
        if (!ld_date_parse(value, NULL))
            return bad_value(def, value, err,
                             "is not a date (YYYY-MM-DD, a real day, 1900 to 2199)");
        return 0;
    case LD_T_MONTH:
        if (!ld_month_parse(value, NULL))
            return bad_value(def, value, err, "is not a month (YYYY-MM, 1900 to 2199)");
        return 0;
    case LD_T_ENUM:
        if (ld_schema_word_index(def, value) < 0) {
            char words[256] = "is not one of: ";
            size_t o = strlen(words);
            for (size_t i = 0; def->words != NULL && def->words[i] != NULL; i++) {
                int n = snprintf(words + o, sizeof words - o, "%s%s", i ? ", " : "",
                                 def->words[i]);
                if (n < 0 || (size_t)n >= sizeof words - o)
                    break;
                o += (size_t)n;
            }
            return bad_value(def, value, err, words);
        }
        return 0;
    case LD_T_REF:
        return validate_ref(def, value, err);
    case LD_T_NODE:
        if (!ld_id_valid(value))
            return bad_value(def, value, err, "is not a node id ([a-z0-9._-], up to 64)");
        return 0;
    case LD_T_MONEY:
        return validate_money(def, value, err);
    case LD_T_YEAR:
        return validate_year(def, value, err);
    }
    return ld_error_set(err, LD_EINVAL, "%s: unknown field type %d", def->name, (int)def->type);
}

/* A field's own stamp and base: empty, or a non-zero stamp with a valid origin. */
static int validate_stamps(const ld_kind_def_t *def, const ld_field_t *f, ld_error_t *err)
{
    if (!terminated(f->origin, sizeof f->origin) ||
        !terminated(f->base_origin, sizeof f->base_origin))
        return ld_error_set(err, LD_EINVAL, "%s.%s: stamp origin is not terminated",
                            def->name, f->name);
    if (f->origin[0] != '\0' && (f->hlc == 0 || !ld_id_valid(f->origin))) {
        char q[QUOTE_MAX * 4 + 8];
        quote_value(f->origin, q, sizeof q);
        return ld_error_set(err, LD_EINVAL, "%s.%s: bad stamp origin \"%s\"",
                            def->name, f->name, q);
    }
    if (f->base_hlc == 0 && f->base_origin[0] != '\0')
        return ld_error_set(err, LD_EINVAL, "%s.%s: base origin without a base stamp",
                            def->name, f->name);
    if (f->base_hlc != 0 && !ld_id_valid(f->base_origin))
        return ld_error_set(err, LD_EINVAL, "%s.%s: base stamp without a valid base origin",
                            def->name, f->name);
    return 0;
}

int ld_change_validate(const ld_change_t *c, ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    if (def == NULL)
        return ld_error_set(err, LD_EINVAL, "change: unknown record kind %d", (int)c->kind);
    if (!terminated(c->record_id, sizeof c->record_id) ||
        !terminated(c->origin, sizeof c->origin))
        return ld_error_set(err, LD_EINVAL, "%s change: id or origin is not terminated",
                            def->name);

    char q[QUOTE_MAX * 4 + 8];
    bool id_ok = c->kind == LD_KIND_ORG ? ld_id_valid(c->record_id)
                                        : ld_uuid_valid(c->record_id);
    if (!id_ok) {
        quote_value(c->record_id, q, sizeof q);
        return ld_error_set(err, LD_EINVAL, "%s change: \"%s\" is not a valid %s id",
                            def->name, q, c->kind == LD_KIND_ORG ? "org" : "record (UUID)");
    }
    if (!ld_id_valid(c->origin)) {
        quote_value(c->origin, q, sizeof q);
        return ld_error_set(err, LD_EINVAL, "%s %s: origin \"%s\" is not a node id",
                            def->name, c->record_id, q);
    }
    if (c->seq == 0)
        return ld_error_set(err, LD_EINVAL, "%s %s: seq must be 1 or more", def->name,
                            c->record_id);
    if (c->hlc == 0)
        return ld_error_set(err, LD_EINVAL, "%s %s: no clock stamp", def->name, c->record_id);
    if (c->nfields > LD_FIELDS_MAX || c->nfields > def->nfields)
        return ld_error_set(err, LD_EINVAL, "%s %s: %zu fields, more than the kind has",
                            def->name, c->record_id, c->nfields);
    if (c->deleted && c->nfields != 0)
        return ld_error_set(err, LD_EINVAL, "%s %s: a deletion sets no fields", def->name,
                            c->record_id);

    uint32_t seen = 0;                  /* bit i: def->fields[i] is set (LD_FIELDS_MAX <= 32) */
    for (size_t i = 0; i < c->nfields; i++) {
        const ld_field_t *f = &c->fields[i];
        int idx = f->name != NULL ? field_index(def, f->name) : -1;
        if (idx < 0) {
            quote_value(f->name != NULL ? f->name : "", q, sizeof q);
            return ld_error_set(err, LD_EINVAL, "%s %s: no field \"%s\" in %s", def->name,
                                c->record_id, q, def->name);
        }
        if (seen & (UINT32_C(1) << idx))
            return ld_error_set(err, LD_EINVAL, "%s %s: field %s set twice", def->name,
                                c->record_id, def->fields[idx].name);
        seen |= UINT32_C(1) << idx;
        ld_error_t inner;
        int rc = ld_field_validate(&def->fields[idx], f->value, &inner);
        if (rc == 0)
            rc = validate_stamps(def, f, &inner);
        if (rc != 0)
            return ld_error_set(err, rc, "%s %s: %s", def->name, c->record_id, inner.msg);
    }

    if (c->naudience > LD_AUDIENCE_MAX)
        return ld_error_set(err, LD_EINVAL, "%s %s: audience of %zu nodes, at most %d",
                            def->name, c->record_id, c->naudience, LD_AUDIENCE_MAX);
    for (size_t i = 0; i < c->naudience; i++) {
        if (!terminated(c->audience[i], sizeof c->audience[i]) ||
            !ld_id_valid(c->audience[i])) {
            quote_value(terminated(c->audience[i], sizeof c->audience[i]) ? c->audience[i] : "",
                        q, sizeof q);
            return ld_error_set(err, LD_EINVAL, "%s %s: audience \"%s\" is not a node id",
                                def->name, c->record_id, q);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->audience[i], c->audience[j]) == 0)
                return ld_error_set(err, LD_EINVAL, "%s %s: node %s twice in the audience",
                                    def->name, c->record_id, c->audience[i]);
        }
    }
    return 0;
}
