/* codec.c: conversion between liangdi's messages (codec.h) and protobuf bytes; the
 * only file that includes the generated protobuf-c code.
 *
 * Records: one generic routine serves all ten kinds.  The kind's name in schema.c is
 * also the name of its member of Change's `record` oneof, so the oneof field, the
 * record's message descriptor and, through it, each field's offset and type are all
 * found by walking the protobuf-c descriptors.  Only the fields named in Change.set
 * are written or read.  Values travel as text in ld_change_t and as their proto types
 * on the wire: enums as value = word index + 1 (0 = cleared), int64 money in fen
 * (-1 = cleared), uint32 years (0 = cleared), strings as they are.
 *
 * Untrusted bytes: every decode checks the size before unpacking (and counts the
 * repeated top-level entries of Push and Batch on the wire, so that a body of many
 * tiny changes is refused before protobuf-c allocates for them), copies only strings
 * that fit, validates every change with ld_change_validate, and frees the unpacked
 * message on every path. */
#include "codec.h"
#include "liangdi.pb-c.h"
#include "wire.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONEY_CLEARED (-1)       /* the wire value of a cleared money field */
#define SOFTWARE_MAX  63         /* bytes of Hello.software */

/* ------------------------------------------------------------------ helpers -- */

/* protobuf-c's unpacking of a change inside a Push or a Batch allocates from an arena
 * (arena.h): its small messages and strings are carved from one block, emptied for
 * the next change, instead of a malloc and a free each (and a walk of the tree to
 * free them).  Freeing one piece does nothing. */
static void *arena_alloc(void *ctx, size_t size)
{
    return ld_arena_alloc(ctx, size);
}

static void arena_free_piece(void *ctx, void *pointer)
{
    (void)ctx;
    (void)pointer;
}

/* Copies src into dst[size] if it fits with its NUL; LD_EINVAL naming `what` if not. */
static int copy_text(char *dst, size_t size, const char *src, const char *what,
                     ld_error_t *err)
{
    if (src == NULL)
        src = "";
    size_t len = strlen(src);
    if (len >= size)
        return ld_error_set(err, LD_EINVAL, "%s: %zu bytes, at most %zu allowed", what, len,
                            size - 1);
    memcpy(dst, src, len + 1);
    return 0;
}

/* Packs any message into a malloc'd buffer (caller frees). */
static int pack_message(const ProtobufCMessage *msg, uint8_t **out, size_t *len,
                        ld_error_t *err)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > LD_BODY_MAX)
        return ld_error_set(err, LD_ETOOBIG, "%s of %zu bytes is over the %u-byte limit",
                            msg->descriptor->short_name, size, LD_BODY_MAX);
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory packing %zu bytes", size);
    size_t done = protobuf_c_message_pack(msg, buf);
    if (done != size) {
        free(buf);
        return ld_error_set(err, LD_EPROTO, "packing %s wrote %zu of %zu bytes",
                            msg->descriptor->short_name, done, size);
    }
    *out = buf;
    *len = size;
    return 0;
}

/* The member of Change's oneof that carries records of `kind`, or NULL (looked up). */
static const ProtobufCFieldDescriptor *find_record_field(ld_kind_t kind)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    if (def == NULL)
        return NULL;
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(&liangdi__change__descriptor, def->name);
    if (fd == NULL || fd->type != PROTOBUF_C_TYPE_MESSAGE ||
        (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
        return NULL;
    return fd;
}

/* The kind carried by oneof case `number`, or LD_KIND_NONE (looked up). */
static ld_kind_t find_record_kind(unsigned number)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(&liangdi__change__descriptor, number);
    if (fd == NULL || (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
        return LD_KIND_NONE;
    const ld_kind_def_t *def = ld_schema_kind_by_name(fd->name);
    return def != NULL ? def->kind : LD_KIND_NONE;
}

/* The descriptors every change needs, found once rather than by name each time: each
 * kind's member of Change's oneof, its record's fields (indexed like the schema's), and
 * the kind of each small oneof case number.  Filled under pthread_once, read-only after. */
#define CASE_MAX 64

static struct {
    const ProtobufCFieldDescriptor *record;
    const ProtobufCFieldDescriptor *fields[LD_FIELDS_MAX];
} wire_kinds[LD_KIND_COUNT];
static ld_kind_t case_kinds[CASE_MAX];
static pthread_once_t wire_once = PTHREAD_ONCE_INIT;

static void wire_tables_init(void)
{
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        const ProtobufCFieldDescriptor *rf = find_record_field((ld_kind_t)k);
        wire_kinds[k].record = rf;
        if (def == NULL || rf == NULL)
            continue;
        for (size_t i = 0; i < def->nfields && i < LD_FIELDS_MAX; i++)
            wire_kinds[k].fields[i] = protobuf_c_message_descriptor_get_field_by_name(
                rf->descriptor, def->fields[i].name);
        if (rf->id < CASE_MAX)
            case_kinds[rf->id] = (ld_kind_t)k;
    }
}

/* The member of Change's oneof that carries records of `kind`, or NULL. */
static const ProtobufCFieldDescriptor *record_field(ld_kind_t kind)
{
    pthread_once(&wire_once, wire_tables_init);
    if ((int)kind <= (int)LD_KIND_NONE || (int)kind >= (int)LD_KIND_COUNT)
        return NULL;
    return wire_kinds[kind].record;
}

/* The wire field of kind's field number idx in the schema, or NULL. */
static const ProtobufCFieldDescriptor *record_field_member(ld_kind_t kind, int idx)
{
    if (record_field(kind) == NULL || idx < 0 || idx >= LD_FIELDS_MAX)
        return NULL;
    return wire_kinds[kind].fields[idx];
}

/* The kind carried by oneof case `number`, or LD_KIND_NONE. */
static ld_kind_t record_kind(unsigned number)
{
    pthread_once(&wire_once, wire_tables_init);
    return number < CASE_MAX ? case_kinds[number] : find_record_kind(number);
}

/* Marks a proto2-style optional scalar as present (proto3 fields have no flag). */
static void mark_present(ProtobufCMessage *rec, const ProtobufCFieldDescriptor *fd)
{
    if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset != 0 &&
        fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)((char *)rec + fd->quantifier_offset) = 1;
}

/* ------------------------------------------------------------ record fields -- */

/* Writes one validated text value into its place in the record message.  Strings are
 * borrowed from the change: the record is freed with free(), not free_unpacked. */
static int field_to_wire(ProtobufCMessage *rec, const ProtobufCFieldDescriptor *fd,
                         const ld_field_def_t *def, const char *value, ld_error_t *err)
{
    if (fd == NULL || fd->label == PROTOBUF_C_LABEL_REPEATED)
        return ld_error_set(err, LD_EINVAL, "%s has no field %s on the wire",
                            rec->descriptor->short_name, def->name);
    void *member = (char *)rec + fd->offset;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
        *(const char **)member = value;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = 0;
        if (value[0] != '\0') {
            int idx = ld_schema_word_index(def, value);
            if (idx < 0)
                return ld_error_set(err, LD_EINVAL, "%s: \"%s\" is not a known word",
                                    def->name, value);
            v = idx + 1;
            if (protobuf_c_enum_descriptor_get_value(fd->descriptor, v) == NULL)
                return ld_error_set(err, LD_EINVAL, "%s: word %s has no wire value %d",
                                    def->name, value, v);
        }
        *(int *)member = v;
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)member = value[0] == '\0' ? MONEY_CLEARED : (int64_t)strtoll(value, NULL, 10);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)member = value[0] == '\0' ? 0 : (uint32_t)strtoul(value, NULL, 10);
        break;
    default:
        return ld_error_set(err, LD_EINVAL, "%s: unsupported wire type %d", def->name,
                            (int)fd->type);
    }
    mark_present(rec, fd);
    return 0;
}

/* Reads one field of an unpacked record as text into buf[size]. */
static int field_from_wire(const ProtobufCMessage *rec, const ProtobufCFieldDescriptor *fd,
                           const ld_field_def_t *def, char *buf, size_t size, const char **text,
                           ld_error_t *err)
{
    if (fd == NULL || fd->label == PROTOBUF_C_LABEL_REPEATED)
        return ld_error_set(err, LD_EINVAL, "%s has no field %s on the wire",
                            rec->descriptor->short_name, def->name);
    const void *member = (const char *)rec + fd->offset;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)member;
        *text = s != NULL ? s : "";
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)member;
        size_t nwords = 0;
        while (def->words != NULL && def->words[nwords] != NULL)
            nwords++;
        if (v == 0) {
            *text = "";
            return 0;
        }
        if (v < 0 || (size_t)v > nwords)
            return ld_error_set(err, LD_EINVAL, "%s: %d is not a known value", def->name, v);
        *text = def->words[v - 1];
        return 0;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)member;
        if (v == MONEY_CLEARED) {
            *text = "";
            return 0;
        }
        if (v < 0)
            return ld_error_set(err, LD_EINVAL, "%s: negative amount %" PRId64, def->name, v);
        snprintf(buf, size, "%" PRId64, v);
        *text = buf;
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = *(const uint32_t *)member;
        if (v == 0) {
            *text = "";
            return 0;
        }
        snprintf(buf, size, "%" PRIu32, v);
        *text = buf;
        return 0;
    }
    default:
        return ld_error_set(err, LD_EINVAL, "%s: unsupported wire type %d", def->name,
                            (int)fd->type);
    }
}

/* ------------------------------------------------------------------ changes -- */

/* A Change message built over an ld_change_t, borrowing its strings.  It must not
 * move once built (the message points into its own arrays). */
#define RECORD_SPACE 512     /* bytes for the record message in place; larger: malloc'd */

typedef struct wire_change {
    Liangdi__Change      msg;
    ProtobufCMessage    *record;                     /* record_space, or malloc'd */
    _Alignas(max_align_t) unsigned char record_space[RECORD_SPACE];
    char                *set[LD_FIELDS_MAX];
    char                *audience[LD_AUDIENCE_MAX];
    Liangdi__FieldStamp  stamp_store[LD_FIELDS_MAX];
    Liangdi__FieldStamp *stamps[LD_FIELDS_MAX];
    Liangdi__FieldStamp  base_store[LD_FIELDS_MAX];
    Liangdi__FieldStamp *bases[LD_FIELDS_MAX];
} wire_change_t;

static void wire_change_free(wire_change_t *w)
{
    if ((void *)w->record != (void *)w->record_space)
        free(w->record);
    w->record = NULL;
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

/* Builds w over c, which must be valid (ld_change_validate).  Only the message and the
 * entries it counts are written: zeroing the whole of w (two kilobytes of stamp slots)
 * cost more than the rest of the build. */
static int wire_change_build(wire_change_t *w, const ld_change_t *c, ld_error_t *err)
{
    w->record = NULL;
    liangdi__change__init(&w->msg);

    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    const ProtobufCFieldDescriptor *rf = record_field(c->kind);
    if (def == NULL || rf == NULL)
        return ld_error_set(err, LD_EINVAL, "change of unknown kind %d", (int)c->kind);
    const ProtobufCMessageDescriptor *rd = rf->descriptor;
    w->record = rd->sizeof_message <= sizeof w->record_space
                ? (ProtobufCMessage *)(void *)w->record_space : malloc(rd->sizeof_message);
    if (w->record == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory building a %s", def->name);
    protobuf_c_message_init(rd, w->record);

    w->msg.record_id = (char *)c->record_id;
    w->msg.origin = (char *)c->origin;
    w->msg.seq = c->seq;
    w->msg.hlc = c->hlc;
    w->msg.deleted = c->deleted;
    w->msg.record_case = (Liangdi__Change__RecordCase)rf->id;
    *(ProtobufCMessage **)((char *)&w->msg + rf->offset) = w->record;

    for (size_t i = 0; i < c->nfields; i++) {
        const ld_field_t *f = &c->fields[i];
        int idx = field_index(def, f->name);
        if (idx < 0)
            return ld_error_set(err, LD_EINVAL, "%s has no field %s", def->name, f->name);
        int rc = field_to_wire(w->record, record_field_member(c->kind, idx), &def->fields[idx],
                               f->value, err);
        if (rc != 0)
            return rc;
        w->set[w->msg.n_set++] = (char *)def->fields[idx].name;
        if (f->hlc != 0) {
            Liangdi__FieldStamp *s = &w->stamp_store[w->msg.n_stamps];
            liangdi__field_stamp__init(s);
            s->field = (char *)def->fields[idx].name;
            s->hlc = f->hlc;
            s->origin = (char *)f->origin;
            w->stamps[w->msg.n_stamps++] = s;
        }
        if (f->base_hlc != 0) {
            Liangdi__FieldStamp *s = &w->base_store[w->msg.n_bases];
            liangdi__field_stamp__init(s);
            s->field = (char *)def->fields[idx].name;
            s->hlc = f->base_hlc;
            s->origin = (char *)f->base_origin;
            w->bases[w->msg.n_bases++] = s;
        }
    }
    w->msg.set = w->set;
    w->msg.stamps = w->stamps;
    w->msg.bases = w->bases;
    for (size_t i = 0; i < c->naudience; i++)
        w->audience[i] = (char *)c->audience[i];
    w->msg.n_audience = c->naudience;
    w->msg.audience = w->audience;
    return 0;
}

/* The index in c->fields of field `name`, or -1. */
static int change_field_slot(const ld_change_t *c, const char *name)
{
    for (size_t i = 0; i < c->nfields; i++) {
        if (strcmp(c->fields[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* Applies Change.stamps (own = true) or Change.bases to the fields of c. */
static int stamps_from_wire(ld_change_t *c, Liangdi__FieldStamp *const *stamps, size_t n,
                            bool own, ld_error_t *err)
{
    const char *what = own ? "stamp" : "base";
    if (n > c->nfields)
        return ld_error_set(err, LD_EINVAL, "%zu %ss for %zu fields", n, what, c->nfields);
    for (size_t i = 0; i < n; i++) {
        const Liangdi__FieldStamp *s = stamps[i];
        const char *name = s->field != NULL ? s->field : "";
        int slot = change_field_slot(c, name);
        if (slot < 0)
            return ld_error_set(err, LD_EINVAL, "a %s names field \"%.64s\", which the change does not set",
                                what, ld_utf8_valid(name, strlen(name)) ? name : "?");
        ld_field_t *f = &c->fields[slot];
        if (s->hlc == 0)
            return ld_error_set(err, LD_EINVAL, "%s of field %s has no clock stamp", what, name);
        if ((own ? f->hlc : f->base_hlc) != 0)
            return ld_error_set(err, LD_EINVAL, "two %ss for field %s", what, name);
        int rc = copy_text(own ? f->origin : f->base_origin, LD_ID_MAX + 1, s->origin,
                           own ? "stamp origin" : "base origin", err);
        if (rc != 0)
            return rc;
        if (own)
            f->hlc = s->hlc;
        else
            f->base_hlc = s->hlc;
    }
    return 0;
}

/* Converts an unpacked Change into c (initialised here) and validates it.  With a text
 * arena, the field values are copied there and marked borrowed, and only the parts of c
 * that are filled are initialised (a change is 4 KB, mostly unused slots; a batch holds
 * thousands).  On failure c is cleared. */
static int change_from_wire(const Liangdi__Change *msg, ld_change_t *c, ld_arena_t *block,
                            ld_error_t *err)
{
    int rc = 0;
    if (block != NULL)
        memset(c, 0, offsetof(ld_change_t, fields));
    else
        ld_change_init(c);

    ld_kind_t kind = record_kind((unsigned)msg->record_case);
    const ld_kind_def_t *def = ld_schema_kind(kind);
    const ProtobufCFieldDescriptor *rf = record_field(kind);
    if (def == NULL || rf == NULL) {
        rc = ld_error_set(err, LD_EINVAL, "change carries no known record (case %d)",
                          (int)msg->record_case);
        goto err;
    }
    const ProtobufCMessage *rec = *(ProtobufCMessage *const *)((const char *)msg + rf->offset);
    if (rec == NULL) {
        rc = ld_error_set(err, LD_EINVAL, "%s change without its record", def->name);
        goto err;
    }
    c->kind = kind;
    rc = copy_text(c->record_id, sizeof c->record_id, msg->record_id, "record id", err);
    if (rc == 0)
        rc = copy_text(c->origin, sizeof c->origin, msg->origin, "origin", err);
    if (rc != 0)
        goto err;
    c->seq = msg->seq;
    c->hlc = msg->hlc;
    c->deleted = msg->deleted != 0;

    if (msg->n_set > def->nfields) {
        rc = ld_error_set(err, LD_EINVAL, "%s change sets %zu fields, the kind has %zu",
                          def->name, msg->n_set, def->nfields);
        goto err;
    }
    /* Fields are added here directly (not by ld_change_set, which looks each name up
     * twice more): bit i of `seen` is def->fields[i], so a name set twice is caught. */
    uint32_t seen = 0;
    for (size_t i = 0; i < msg->n_set; i++) {
        const char *name = msg->set[i] != NULL ? msg->set[i] : "";
        int idx = ld_schema_field_index(def, name);
        if (idx < 0) {
            rc = ld_error_set(err, LD_EINVAL, "%s has no field \"%.64s\"", def->name,
                              ld_utf8_valid(name, strlen(name)) ? name : "?");
            goto err;
        }
        if (idx >= 32 || (seen & (UINT32_C(1) << idx)) != 0) {
            rc = ld_error_set(err, LD_EINVAL, "%s.%s is set twice", def->name,
                              def->fields[idx].name);
            goto err;
        }
        seen |= UINT32_C(1) << idx;
        char buf[32];
        const char *text = NULL;
        rc = field_from_wire(rec, record_field_member(kind, idx), &def->fields[idx], buf,
                             sizeof buf, &text, err);
        if (rc != 0)
            goto err;
        char *copy = block != NULL ? ld_arena_text(block, text, strlen(text)) : strdup(text);
        if (copy == NULL) {
            rc = ld_error_set(err, LD_ENOMEM, "out of memory copying %s.%s", def->name,
                              def->fields[idx].name);
            goto err;
        }
        ld_field_t *f = &c->fields[c->nfields++];     /* n_set <= nfields <= LD_FIELDS_MAX */
        memset(f, 0, sizeof *f);
        f->name = def->fields[idx].name;
        f->value = copy;
        f->borrowed = block != NULL;
    }
    rc = stamps_from_wire(c, msg->stamps, msg->n_stamps, true, err);
    if (rc == 0)
        rc = stamps_from_wire(c, msg->bases, msg->n_bases, false, err);
    if (rc != 0)
        goto err;

    if (msg->n_audience > LD_AUDIENCE_MAX) {
        rc = ld_error_set(err, LD_EINVAL, "audience of %zu nodes, at most %d", msg->n_audience,
                          LD_AUDIENCE_MAX);
        goto err;
    }
    for (size_t i = 0; i < msg->n_audience; i++) {
        rc = copy_text(c->audience[i], LD_ID_MAX + 1, msg->audience[i], "audience node", err);
        if (rc != 0)
            goto err;
    }
    c->naudience = msg->n_audience;

    rc = ld_change_validate(c, err);
    if (rc != 0)
        goto err;
    return 0;
err:
    ld_change_clear(c);
    return rc;
}

int ld_change_pack(const ld_change_t *c, uint8_t **out, size_t *len, ld_error_t *err)
{
    int rc = ld_change_validate(c, err);
    if (rc != 0)
        return rc;
    return ld_change_pack_valid(c, out, len, err);
}

int ld_change_pack_valid(const ld_change_t *c, uint8_t **out, size_t *len, ld_error_t *err)
{
    if (c->nfields > LD_FIELDS_MAX || c->naudience > LD_AUDIENCE_MAX)
        return ld_error_set(err, LD_EINVAL, "change to pack has too many fields or nodes");
    wire_change_t w;
    int rc = wire_change_build(&w, c, err);
    if (rc == 0)
        rc = pack_message(&w.msg.base, out, len, err);
    wire_change_free(&w);
    return rc;
}

int ld_change_pack_buf(const ld_change_t *c, ld_buf_t *b, ld_error_t *err)
{
    if (c->nfields > LD_FIELDS_MAX || c->naudience > LD_AUDIENCE_MAX)
        return ld_error_set(err, LD_EINVAL, "change to pack has too many fields or nodes");
    wire_change_t w;
    int rc = wire_change_build(&w, c, err);
    if (rc == 0) {
        size_t size = protobuf_c_message_get_packed_size(&w.msg.base);
        b->len = 0;
        rc = ld_buf_reserve(b, size > 0 ? size : 1);
        if (rc != 0)
            rc = ld_error_set(err, rc, "change of %zu bytes: %s", size, ld_strerror(rc));
        else if ((b->len = protobuf_c_message_pack(&w.msg.base, b->data)) != size)
            rc = ld_error_set(err, LD_EPROTO, "packing a change wrote %zu of %zu bytes",
                              b->len, size);
    }
    wire_change_free(&w);
    return rc;
}

int ld_change_unpack(const uint8_t *data, size_t len, ld_change_t *c, ld_error_t *err)
{
    ld_change_init(c);
    if (len > LD_BODY_MAX)
        return ld_error_set(err, LD_ETOOBIG, "change of %zu bytes is over the %u-byte limit",
                            len, LD_BODY_MAX);
    Liangdi__Change *msg = liangdi__change__unpack(NULL, len, data);
    if (msg == NULL)
        return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Change", len);
    int rc = change_from_wire(msg, c, NULL, err);
    liangdi__change__free_unpacked(msg, NULL);
    return rc;
}

/* ----------------------------------------------------------------- messages -- */

void ld_msg_init(ld_msg_t *m, ld_msg_type_t type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
}

void ld_msg_clear(ld_msg_t *m)
{
    if (m == NULL)
        return;
    if (m->type == LD_MSG_PUSH || m->type == LD_MSG_BATCH) {
        bool batch = m->type == LD_MSG_BATCH;
        ld_change_t *changes = batch ? m->u.batch.changes : m->u.push.changes;
        size_t n = batch ? m->u.batch.n : m->u.push.n;
        /* Values a caller set after decoding are the changes' own; the array goes whole,
         * so the changes are not zeroed one by one. */
        for (size_t i = 0; changes != NULL && i < n; i++) {
            for (size_t k = 0; k < changes[i].nfields && k < LD_FIELDS_MAX; k++) {
                if (!changes[i].fields[k].borrowed)
                    free(changes[i].fields[k].value);
            }
        }
        ld_arena_release(batch ? &m->u.batch.text : &m->u.push.text);
        free(changes);
        free(batch ? m->u.batch.wire : m->u.push.wire);
        if (batch)
            free(m->u.batch.positions);
    }
    memset(m, 0, sizeof *m);
}

/* Checks a node id from a peer or for one. */
static int check_node_id(const char *id, const char *what, ld_error_t *err)
{
    if (!ld_id_valid(id))
        return ld_error_set(err, LD_EINVAL, "%s: \"%.64s\" is not a node id", what,
                            ld_utf8_valid(id, strlen(id)) ? id : "?");
    return 0;
}

static int check_text(const char *s, size_t max, const char *what, ld_error_t *err)
{
    size_t len = strlen(s);
    if (len > max)
        return ld_error_set(err, LD_EINVAL, "%s: %zu bytes, at most %zu allowed", what, len, max);
    if (!ld_utf8_valid(s, len))
        return ld_error_set(err, LD_EINVAL, "%s is not valid UTF-8 text", what);
    return 0;
}

/* An Error's record id: empty, a UUID or an org id. */
static int check_error_record(const char *id, ld_error_t *err)
{
    if (id[0] != '\0' && !ld_id_valid(id))
        return ld_error_set(err, LD_EINVAL, "error: record id is not an id");
    return 0;
}

/* The length of the longest prefix of s[0..max] that ends on a character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

static int encode_changes(const ld_msg_t *m, ld_buf_t *b, ld_error_t *err)
{
    bool batch = m->type == LD_MSG_BATCH;
    size_t n = batch ? m->u.batch.n : m->u.push.n;
    const ld_change_t *changes = batch ? m->u.batch.changes : m->u.push.changes;
    if (n > LD_BATCH_MAX)
        return ld_error_set(err, LD_ETOOBIG, "%zu changes in one %s, at most %u", n,
                            ld_msg_type_name(m->type), LD_BATCH_MAX);
    if (n > 0 && (changes == NULL || (batch && m->u.batch.positions == NULL)))
        return ld_error_set(err, LD_EINVAL, "%s of %zu changes without the changes",
                            ld_msg_type_name(m->type), n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *packed = NULL;
        size_t len = 0;
        int rc = ld_change_pack(&changes[i], &packed, &len, err);
        if (rc != 0)
            return rc;
        rc = batch ? ld_batch_append(b, m->u.batch.positions[i], packed, len)
                   : ld_push_append(b, packed, len);
        free(packed);
        if (rc != 0)
            return ld_error_set(err, rc, "%s body: %s at change %zu", ld_msg_type_name(m->type),
                                ld_strerror(rc), i + 1);
    }
    if (batch) {
        int rc = ld_batch_finish(b, m->u.batch.remaining);
        if (rc != 0)
            return ld_error_set(err, rc, "batch body: %s", ld_strerror(rc));
    }
    return 0;
}

int ld_msg_encode(const ld_msg_t *m, uint8_t **out, size_t *len, ld_error_t *err)
{
    int rc = 0;
    *out = NULL;
    *len = 0;
    switch (m->type) {
    case LD_MSG_HELLO: {
        if (!memchr(m->u.hello.node_id, '\0', sizeof m->u.hello.node_id) ||
            !memchr(m->u.hello.software, '\0', sizeof m->u.hello.software))
            return ld_error_set(err, LD_EINVAL, "hello node id or software not terminated");
        if ((rc = check_node_id(m->u.hello.node_id, "hello node id", err)) != 0 ||
            (rc = check_text(m->u.hello.software, SOFTWARE_MAX, "hello software", err)) != 0)
            return rc;
        Liangdi__Hello msg = LIANGDI__HELLO__INIT;
        msg.protocol_version = m->u.hello.protocol_version;
        msg.schema_version = m->u.hello.schema_version;
        msg.node_id = (char *)m->u.hello.node_id;
        msg.software = (char *)m->u.hello.software;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_WELCOME: {
        if (!memchr(m->u.welcome.node_id, '\0', sizeof m->u.welcome.node_id))
            return ld_error_set(err, LD_EINVAL, "welcome node id not terminated");
        if ((rc = check_node_id(m->u.welcome.node_id, "welcome node id", err)) != 0)
            return rc;
        Liangdi__Welcome msg = LIANGDI__WELCOME__INIT;
        msg.protocol_version = m->u.welcome.protocol_version;
        msg.schema_version = m->u.welcome.schema_version;
        msg.node_id = (char *)m->u.welcome.node_id;
        msg.pushed_upto = m->u.welcome.pushed_upto;
        msg.mailbox_depth = m->u.welcome.mailbox_depth;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_PUSH:
    case LD_MSG_BATCH: {
        ld_buf_t b = { NULL, 0, 0 };
        rc = encode_changes(m, &b, err);
        if (rc != 0) {
            ld_buf_free(&b);
            return rc;
        }
        if (b.data == NULL) {               /* an empty Push: zero bytes */
            b.data = malloc(1);
            if (b.data == NULL)
                return ld_error_set(err, LD_ENOMEM, "out of memory");
        }
        *out = b.data;
        *len = b.len;
        return 0;
    }
    case LD_MSG_PUSH_ACK: {
        Liangdi__PushAck msg = LIANGDI__PUSH_ACK__INIT;
        msg.upto = m->u.push_ack.upto;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_FETCH: {
        Liangdi__Fetch msg = LIANGDI__FETCH__INIT;
        msg.cursor = m->u.fetch.cursor;
        msg.credit = m->u.fetch.credit;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_ACK: {
        Liangdi__Ack msg = LIANGDI__ACK__INIT;
        msg.upto = m->u.ack.upto;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_NOTIFY: {
        Liangdi__Notify msg = LIANGDI__NOTIFY__INIT;
        msg.mailbox_depth = m->u.notify.mailbox_depth;
        return pack_message(&msg.base, out, len, err);
    }
    case LD_MSG_ERROR: {
        if (!memchr(m->u.error.message, '\0', sizeof m->u.error.message) ||
            !memchr(m->u.error.record_id, '\0', sizeof m->u.error.record_id))
            return ld_error_set(err, LD_EINVAL, "error message or record id not terminated");
        if ((rc = check_text(m->u.error.message, LD_ERROR_MSG_MAX - 1, "error message", err)) != 0 ||
            (rc = check_error_record(m->u.error.record_id, err)) != 0)
            return rc;
        if ((int)m->u.error.code < LD_ERR_UNSPECIFIED || m->u.error.code > LD_ERR_SEQUENCE)
            return ld_error_set(err, LD_EINVAL, "error code %d is not known", (int)m->u.error.code);
        Liangdi__Error msg = LIANGDI__ERROR__INIT;
        msg.code = (Liangdi__ErrorCode)m->u.error.code;
        msg.message = (char *)m->u.error.message;
        msg.record_id = (char *)m->u.error.record_id;
        msg.seq = m->u.error.seq;
        return pack_message(&msg.base, out, len, err);
    }
    default:
        return ld_error_set(err, LD_ETYPE, "cannot encode message type %d", (int)m->type);
    }
}

/* --------------------------------------------------------- change reader -- */

int ld_change_reader_init(ld_change_reader_t *r, ld_msg_type_t type, const uint8_t *body,
                          size_t len, ld_error_t *err)
{
    memset(r, 0, sizeof *r);
    if (type != LD_MSG_PUSH && type != LD_MSG_BATCH)
        return ld_error_set(err, LD_EINVAL, "%s carries no changes", ld_msg_type_name(type));
    r->batch = type == LD_MSG_BATCH;
    const char *what = r->batch ? "batch" : "push";
    if (len > LD_BODY_MAX)
        return ld_error_set(err, LD_ETOOBIG, "%s body of %zu bytes is over the %u-byte limit",
                            ld_msg_type_name(type), len, LD_BODY_MAX);
    if (body == NULL && len > 0)
        return ld_error_set(err, LD_EINVAL, "no body");
    /* The top level, walked once before anything is allocated: the entries counted,
     * each a message, and a Batch's `remaining` (of one given twice the last). */
    size_t pos = 0, count = 0;
    uint64_t remaining = 0;
    ld_wire_field_t f;
    int rc;
    while ((rc = ld_wire_next(body, len, &pos, &f, err)) == 1) {
        if (f.number == 1 && f.type != 2)
            return ld_error_set(err, LD_EPROTO, "%s entry %zu is not a message", what,
                                count + 1);
        if (f.number == 1) {
            count++;
        } else if (r->batch && f.number == 2) {
            if (f.type != 0)
                return ld_error_set(err, LD_EPROTO, "batch field 2 has wire type %u", f.type);
            remaining = f.value;
        }
    }
    if (rc != 0)
        return rc;
    if (count > LD_BATCH_MAX)
        return ld_error_set(err, LD_ETOOBIG, "%s of %zu changes, at most %u", what, count,
                            LD_BATCH_MAX);
    r->body = body;
    r->len = len;
    r->count = count;
    r->remaining = remaining;
    return 0;
}

/* The next entry's bytes (*span) and position (*at), its framing checked: one change
 * in it, and in a Batch a position above the one before.  Moves the reader past it: 1,
 * 0 when every entry was read, or < 0 (the reader stays where it was). */
static int reader_span(ld_change_reader_t *r, ld_wire_field_t *span, uint64_t *at,
                       ld_error_t *err)
{
    size_t i = r->index;
    if (i >= r->count)
        return 0;
    int rc = ld_wire_next_change(r->body, r->len, r->batch, &r->pos, i, span, at, err);
    if (rc == 0)                      /* counted at init: cannot be, but never past it */
        rc = ld_error_set(err, LD_EPROTO, "%s ended before its entry %zu",
                          r->batch ? "batch" : "push", i + 1);
    if (rc < 0)
        return rc;
    if (r->batch && (*at == 0 || (i > 0 && *at <= r->position)))
        return ld_error_set(err, LD_EINVAL, "batch entry %zu: position %" PRIu64
                            " is not after the one before", i + 1, *at);
    r->index = i + 1;
    r->position = *at;
    return 1;
}

int ld_change_reader_next(ld_change_reader_t *r, ld_change_t *c, uint64_t *position,
                          ld_error_t *err)
{
    const char *what = r->batch ? "batch" : "push";
    const char *entry = r->batch ? "entry" : "change";
    size_t i = r->index;
    ld_wire_field_t span;
    uint64_t at = 0;
    *position = 0;
    int rc = reader_span(r, &span, &at, err);
    if (rc == 0)
        return 0;
    if (rc < 0)
        goto fail;
    if (!r->keep)
        ld_arena_reset(&r->text);
    ld_arena_reset(&r->unpacked);
    if (r->unpacked.head == NULL)
        ld_arena_init(&r->unpacked, span.len * 3 + 4096);  /* unpacked, about 2.5 times */
    ProtobufCAllocator alloc = {
        .alloc = arena_alloc, .free = arena_free_piece, .allocator_data = &r->unpacked
    };
    Liangdi__Change *msg = liangdi__change__unpack(&alloc, span.len, span.data);
    if (msg == NULL) {
        rc = ld_error_set(err, LD_EPROTO, "%s %s %zu: %zu bytes are not a valid Change",
                          what, entry, i + 1, span.len);
        goto fail;
    }
    ld_error_t inner;
    rc = change_from_wire(msg, c, &r->text, &inner);
    if (rc != 0) {
        if (r->batch)
            ld_error_set(err, rc, "batch entry %zu (position %" PRIu64 "): %s", i + 1, at,
                         inner.msg);
        else
            ld_error_set(err, rc, "push change %zu: %s", i + 1, inner.msg);
        goto fail;
    }
    c->wire = span.data;
    c->wire_len = span.len;
    *position = at;
    return 1;
fail:
    memset(c, 0, offsetof(ld_change_t, fields));   /* holds nothing, nor the last one */
    r->count = r->index;              /* nothing more is read */
    return rc;
}

void ld_change_reader_clear(ld_change_reader_t *r)
{
    ld_arena_release(&r->text);
    ld_arena_release(&r->unpacked);
}

/* Decodes a Push or a Batch into m: the changes (validated), their positions (a batch),
 * a copy of the body that each change's `wire` points into, and the arena of their
 * field values (borrowed by the changes); read as ld_change_reader reads it, keeping
 * every change. */
static int decode_changes(const uint8_t *body, size_t len, bool batch, ld_msg_t *m,
                          ld_error_t *err)
{
    const char *what = batch ? "batch" : "push";
    ld_change_t **changes = batch ? &m->u.batch.changes : &m->u.push.changes;
    size_t *done = batch ? &m->u.batch.n : &m->u.push.n;
    uint8_t **wire = batch ? &m->u.batch.wire : &m->u.push.wire;
    ld_change_reader_t r;
    int rc = ld_change_reader_init(&r, batch ? LD_MSG_BATCH : LD_MSG_PUSH, body, len, err);
    if (rc != 0)
        return rc;
    size_t n = r.count;
    *wire = malloc(len > 0 ? len : 1);
    if (n > 0) {
        /* Not zeroed: the reader initialises what it fills of each change, and
         * ld_msg_clear looks only at the first n. */
        *changes = reallocarray(NULL, n, sizeof **changes);
        if (batch)
            m->u.batch.positions = calloc(n, sizeof *m->u.batch.positions);
    }
    if (*wire == NULL || (n > 0 && (*changes == NULL ||
                                    (batch && m->u.batch.positions == NULL)))) {
        rc = ld_error_set(err, LD_ENOMEM, "out of memory for a %s of %zu bytes", what, len);
        goto out;
    }
    memcpy(*wire, body, len);
    r.body = *wire;                   /* each change's `wire` points into the copy */
    r.keep = true;
    ld_arena_init(&r.text, len / 2 + 1024);
    if (batch)
        m->u.batch.remaining = r.remaining;
    uint64_t position = 0;
    for (size_t i = 0; i < n; i++) {
        rc = ld_change_reader_next(&r, &(*changes)[i], &position, err);
        if (rc != 1)
            goto out;
        if (batch)
            m->u.batch.positions[i] = position;
        *done = i + 1;
    }
    rc = 0;
out:
    if (batch)
        m->u.batch.text = r.text;     /* moved: the message owns the blocks */
    else
        m->u.push.text = r.text;
    ld_arena_release(&r.unpacked);
    return rc;
}

int ld_batch_peek(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err)
{
    ld_change_reader_t r;
    ld_wire_field_t span;
    uint64_t position = 0;
    ld_msg_init(m, LD_MSG_BATCH);
    /* the framing as a reader checks it, then each entry's, without reading changes */
    int rc = ld_change_reader_init(&r, LD_MSG_BATCH, body, len, err);
    if (rc != 0)
        return rc;
    m->u.batch.remaining = r.remaining;
    if (r.count > 0 && (m->u.batch.positions = calloc(r.count, sizeof(uint64_t))) == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory for %zu positions", r.count);
    while ((rc = reader_span(&r, &span, &position, err)) == 1)
        m->u.batch.positions[r.index - 1] = position;
    m->u.batch.n = r.index;
    if (rc != 0)
        ld_msg_clear(m);
    return rc;
}

static int decode_hello(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err)
{
    Liangdi__Hello *msg = liangdi__hello__unpack(NULL, len, body);
    if (msg == NULL)
        return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Hello", len);
    int rc = check_node_id(msg->node_id, "hello node id", err);
    if (rc == 0)
        rc = check_text(msg->software, SOFTWARE_MAX, "hello software", err);
    if (rc == 0) {
        m->u.hello.protocol_version = msg->protocol_version;
        m->u.hello.schema_version = msg->schema_version;
        snprintf(m->u.hello.node_id, sizeof m->u.hello.node_id, "%s", msg->node_id);
        snprintf(m->u.hello.software, sizeof m->u.hello.software, "%s", msg->software);
    }
    liangdi__hello__free_unpacked(msg, NULL);
    return rc;
}

static int decode_welcome(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err)
{
    Liangdi__Welcome *msg = liangdi__welcome__unpack(NULL, len, body);
    if (msg == NULL)
        return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Welcome", len);
    int rc = check_node_id(msg->node_id, "welcome node id", err);
    if (rc == 0) {
        m->u.welcome.protocol_version = msg->protocol_version;
        m->u.welcome.schema_version = msg->schema_version;
        snprintf(m->u.welcome.node_id, sizeof m->u.welcome.node_id, "%s", msg->node_id);
        m->u.welcome.pushed_upto = msg->pushed_upto;
        m->u.welcome.mailbox_depth = msg->mailbox_depth;
    }
    liangdi__welcome__free_unpacked(msg, NULL);
    return rc;
}

/* An Error's message longer than the struct holds is cut at a character boundary:
 * the human line is worth more than its tail.  A code this side does not know (from a
 * newer peer) reads as LD_ERR_UNSPECIFIED. */
static int decode_error(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err)
{
    Liangdi__Error *msg = liangdi__error__unpack(NULL, len, body);
    if (msg == NULL)
        return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Error", len);
    int rc = check_text(msg->message, LD_BODY_MAX, "error message", err);
    if (rc == 0)
        rc = copy_text(m->u.error.record_id, sizeof m->u.error.record_id, msg->record_id,
                       "error record id", err);
    if (rc == 0)
        rc = check_error_record(m->u.error.record_id, err);
    if (rc == 0) {
        int code = (int)msg->code;
        m->u.error.code = code >= LD_ERR_UNSPECIFIED && code <= LD_ERR_SEQUENCE
                              ? (ld_error_code_t)code : LD_ERR_UNSPECIFIED;
        size_t cut = utf8_cut(msg->message, sizeof m->u.error.message - 1);
        memcpy(m->u.error.message, msg->message, cut);
        m->u.error.message[cut] = '\0';
        m->u.error.seq = msg->seq;
    }
    liangdi__error__free_unpacked(msg, NULL);
    return rc;
}

int ld_msg_decode(ld_msg_type_t type, const uint8_t *body, size_t len, ld_msg_t *m,
                  ld_error_t *err)
{
    int rc = 0;
    ld_msg_init(m, type);
    if (len > LD_BODY_MAX)
        return ld_error_set(err, LD_ETOOBIG, "%s body of %zu bytes is over the %u-byte limit",
                            ld_msg_type_name(type), len, LD_BODY_MAX);
    if (body == NULL && len > 0)
        return ld_error_set(err, LD_EINVAL, "no body");
    static const uint8_t empty[1] = { 0 };
    if (body == NULL)
        body = empty;

    switch (type) {
    case LD_MSG_HELLO:
        rc = decode_hello(body, len, m, err);
        break;
    case LD_MSG_WELCOME:
        rc = decode_welcome(body, len, m, err);
        break;
    case LD_MSG_PUSH:
        rc = decode_changes(body, len, false, m, err);
        break;
    case LD_MSG_BATCH:
        rc = decode_changes(body, len, true, m, err);
        break;
    case LD_MSG_PUSH_ACK: {
        Liangdi__PushAck *msg = liangdi__push_ack__unpack(NULL, len, body);
        if (msg == NULL)
            return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid PushAck", len);
        m->u.push_ack.upto = msg->upto;
        liangdi__push_ack__free_unpacked(msg, NULL);
        break;
    }
    case LD_MSG_FETCH: {
        Liangdi__Fetch *msg = liangdi__fetch__unpack(NULL, len, body);
        if (msg == NULL)
            return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Fetch", len);
        m->u.fetch.cursor = msg->cursor;
        m->u.fetch.credit = msg->credit;
        liangdi__fetch__free_unpacked(msg, NULL);
        break;
    }
    case LD_MSG_ACK: {
        Liangdi__Ack *msg = liangdi__ack__unpack(NULL, len, body);
        if (msg == NULL)
            return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Ack", len);
        m->u.ack.upto = msg->upto;
        liangdi__ack__free_unpacked(msg, NULL);
        break;
    }
    case LD_MSG_NOTIFY: {
        Liangdi__Notify *msg = liangdi__notify__unpack(NULL, len, body);
        if (msg == NULL)
            return ld_error_set(err, LD_EPROTO, "%zu bytes are not a valid Notify", len);
        m->u.notify.mailbox_depth = msg->mailbox_depth;
        liangdi__notify__free_unpacked(msg, NULL);
        break;
    }
    case LD_MSG_ERROR:
        rc = decode_error(body, len, m, err);
        break;
    default:
        return ld_error_set(err, LD_ETYPE, "cannot decode message type %d", (int)type);
    }
    if (rc != 0)
        ld_msg_clear(m);
    return rc;
}
