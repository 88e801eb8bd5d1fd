/* test_schema.c: schema.c against the generated protobuf-c descriptors: every record
 * field of liangdi.proto is in the schema and vice versa, with matching types and words. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "liangdi.pb-c.h"
#include "schema.h"

TestSuite(schema);

/* The enum word for a proto value name: "TRIP_STATUS_REPORTED_IN" with the prefix
 * "TRIP_STATUS_" becomes "reported-in". */
static void word_of(const char *value_name, const char *prefix, char *out, size_t size)
{
    size_t plen = strlen(prefix);
    cr_assert_eq(strncmp(value_name, prefix, plen), 0, "%s lacks prefix %s", value_name, prefix);
    size_t o = 0;
    for (const char *p = value_name + plen; *p != '\0' && o + 1 < size; p++)
        out[o++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    out[o] = '\0';
}

/* The oneof member of Change carrying records of `def`. */
static const ProtobufCFieldDescriptor *record_member(const ld_kind_def_t *def)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(&liangdi__change__descriptor, def->name);
    cr_assert_not_null(fd, "Change has no member %s", def->name);
    cr_assert(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF, "%s is not in the record oneof", def->name);
    cr_assert_eq(fd->type, PROTOBUF_C_TYPE_MESSAGE);
    return fd;
}

static void check_enum(const ld_kind_def_t *def, const ld_field_def_t *f,
                       const ProtobufCEnumDescriptor *ed)
{
    cr_assert_not_null(f->words, "%s.%s has no words", def->name, f->name);
    /* The prefix is what precedes UNSPECIFIED in the zero value's name. */
    const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(ed, 0);
    cr_assert_not_null(zero);
    const char *tail = strstr(zero->name, "UNSPECIFIED");
    cr_assert_not_null(tail, "%s", zero->name);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%.*s", (int)(tail - zero->name), zero->name);

    size_t nwords = 0;
    while (f->words[nwords] != NULL)
        nwords++;
    cr_assert_eq(nwords + 1, ed->n_values, "%s.%s: %zu words for %u enum values", def->name,
                 f->name, nwords, ed->n_values);
    for (size_t i = 0; i < nwords; i++) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, (int)i + 1);
        cr_assert_not_null(v, "%s.%s: no value %zu", def->name, f->name, i + 1);
        char word[64];
        word_of(v->name, prefix, word, sizeof word);
        cr_assert_str_eq(f->words[i], word, "%s.%s value %zu", def->name, f->name, i + 1);
        cr_assert_eq(ld_schema_word_index(f, word), (int)i);
    }
}

static void check_field_type(const ld_kind_def_t *def, const ld_field_def_t *f,
                             const ProtobufCFieldDescriptor *pf)
{
    cr_assert_neq(pf->label, PROTOBUF_C_LABEL_REPEATED, "%s.%s", def->name, f->name);
    switch (f->type) {
    case LD_T_TEXT:
    case LD_T_DATE:
    case LD_T_MONTH:
    case LD_T_REF:
    case LD_T_NODE:
        cr_assert_eq(pf->type, PROTOBUF_C_TYPE_STRING, "%s.%s is not a string", def->name, f->name);
        break;
    case LD_T_ENUM:
        cr_assert_eq(pf->type, PROTOBUF_C_TYPE_ENUM, "%s.%s is not an enum", def->name, f->name);
        check_enum(def, f, pf->descriptor);
        break;
    case LD_T_MONEY:
        cr_assert_eq(pf->type, PROTOBUF_C_TYPE_INT64, "%s.%s is not int64", def->name, f->name);
        break;
    case LD_T_YEAR:
        cr_assert_eq(pf->type, PROTOBUF_C_TYPE_UINT32, "%s.%s is not uint32", def->name, f->name);
        break;
    }
    if (f->type == LD_T_TEXT)
        cr_assert_gt(f->max_len, 0, "%s.%s has no length limit", def->name, f->name);
    if (f->type == LD_T_REF)
        cr_assert_not_null(ld_schema_kind(f->ref), "%s.%s refers to nothing", def->name, f->name);
    else
        cr_assert_eq(f->ref, LD_KIND_NONE);
    if (f->type != LD_T_ENUM)
        cr_assert_null(f->words);
}

Test(schema, every_proto_record_field_is_in_the_schema_and_back)
{
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        cr_assert_not_null(def);
        cr_assert_eq(def->kind, (ld_kind_t)k);
        const ProtobufCMessageDescriptor *md = record_member(def)->descriptor;
        cr_assert_eq(def->nfields, md->n_fields, "%s: %zu schema fields, %u in the proto",
                     def->name, def->nfields, md->n_fields);
        for (size_t i = 0; i < def->nfields; i++) {
            const ld_field_def_t *f = &def->fields[i];
            const ProtobufCFieldDescriptor *pf =
                protobuf_c_message_descriptor_get_field_by_name(md, f->name);
            cr_assert_not_null(pf, "%s.%s is not in liangdi.proto", def->name, f->name);
            check_field_type(def, f, pf);
        }
        for (unsigned i = 0; i < md->n_fields; i++)
            cr_assert_geq(ld_schema_field_index(def, md->fields[i].name), 0,
                          "proto field %s.%s is missing from schema.c", def->name,
                          md->fields[i].name);
        cr_assert_leq(def->nfields, 16, "LD_FIELDS_MAX must hold every field");
    }
}

Test(schema, every_record_in_the_change_oneof_is_a_schema_kind)
{
    const ProtobufCMessageDescriptor *cd = &liangdi__change__descriptor;
    unsigned members = 0;
    for (unsigned i = 0; i < cd->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &cd->fields[i];
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
            continue;
        members++;
        cr_assert_not_null(ld_schema_kind_by_name(fd->name), "Change.%s has no kind", fd->name);
    }
    cr_assert_eq(members, LD_KIND_COUNT - 1);
}

Test(schema, kinds_have_their_tables_and_field_order_follows_the_proto)
{
    static const char *const tables[LD_KIND_COUNT] = {
        NULL, "orgs", "members", "trips", "agreements", "contacts", "visits", "activities",
        "assessments", "approvals", "cares", "honours", "supports",
    };
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        cr_assert_str_eq(def->table, tables[k]);
        cr_assert_eq(ld_schema_kind_by_name(def->name), def);
        const ProtobufCMessageDescriptor *md = record_member(def)->descriptor;
        for (size_t i = 0; i < def->nfields; i++) {
            const ProtobufCFieldDescriptor *pf =
                protobuf_c_message_descriptor_get_field_by_name(md, def->fields[i].name);
            cr_assert_eq(pf->id, (unsigned)i + 1, "%s.%s is field %u", def->name,
                         def->fields[i].name, pf->id);
        }
    }
}

/* "name,kind,node" */
static void assert_required(const char *kind, const char *list)
{
    const ld_kind_def_t *def = ld_schema_kind_by_name(kind);
    cr_assert_not_null(def);
    char want[128];
    snprintf(want, sizeof want, ",%s,", list);
    for (size_t i = 0; i < def->nfields; i++) {
        char key[40];
        snprintf(key, sizeof key, ",%s,", def->fields[i].name);
        bool listed = strstr(want, key) != NULL;
        cr_assert_eq(def->fields[i].required, listed, "%s.%s required should be %d", kind,
                     def->fields[i].name, listed);
    }
}

Test(schema, the_required_fields_are_those_a_record_cannot_do_without)
{
    assert_required("org", "name,kind,node");
    assert_required("member", "name,org");
    assert_required("trip", "member,to,started,status");
    assert_required("agreement", "outflow,inflow,signed");
    assert_required("contact", "agreement,date,channel");
    assert_required("visit", "agreement,date,host");
    assert_required("activity", "member,date,kind");
    assert_required("assessment", "member,year,side,grade");
    assert_required("approval", "member,date,decision");
    assert_required("care", "member,kind,date,status");
}

Test(schema, references_point_at_the_right_kinds)
{
    const struct { const char *kind, *field; ld_kind_t ref; } refs[] = {
        { "org", "parent", LD_KIND_ORG },       { "member", "org", LD_KIND_ORG },
        { "trip", "member", LD_KIND_MEMBER },   { "trip", "to", LD_KIND_ORG },
        { "agreement", "outflow", LD_KIND_ORG }, { "agreement", "inflow", LD_KIND_ORG },
        { "contact", "agreement", LD_KIND_AGREEMENT }, { "visit", "agreement", LD_KIND_AGREEMENT },
        { "visit", "host", LD_KIND_ORG },       { "approval", "to", LD_KIND_ORG },
        { "activity", "member", LD_KIND_MEMBER }, { "care", "member", LD_KIND_MEMBER },
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        const ld_kind_def_t *def = ld_schema_kind_by_name(refs[i].kind);
        int idx = ld_schema_field_index(def, refs[i].field);
        cr_assert_geq(idx, 0);
        cr_assert_eq(def->fields[idx].type, LD_T_REF, "%s.%s", refs[i].kind, refs[i].field);
        cr_assert_eq(def->fields[idx].ref, refs[i].ref, "%s.%s", refs[i].kind, refs[i].field);
    }
    const ld_kind_def_t *org = ld_schema_kind(LD_KIND_ORG);
    cr_assert_eq(org->fields[ld_schema_field_index(org, "node")].type, LD_T_NODE);
}

Test(schema, lookups_of_unknown_names_and_kinds_find_nothing)
{
    cr_assert_null(ld_schema_kind(LD_KIND_NONE));
    cr_assert_null(ld_schema_kind(LD_KIND_COUNT));
    cr_assert_null(ld_schema_kind((ld_kind_t)-3));
    cr_assert_null(ld_schema_kind_by_name("person"));
    cr_assert_null(ld_schema_kind_by_name(NULL));
    cr_assert_null(ld_schema_kind_by_name("orgs"));
    const ld_kind_def_t *m = ld_schema_kind(LD_KIND_MEMBER);
    cr_assert_eq(ld_schema_field_index(m, "salary"), -1);
    cr_assert_eq(ld_schema_field_index(m, NULL), -1);
    cr_assert_eq(ld_schema_word_index(&m->fields[0], "female"), -1, "name has no words");
    int g = ld_schema_field_index(m, "gender");
    cr_assert_eq(ld_schema_word_index(&m->fields[g], "male"), 1);
    cr_assert_eq(ld_schema_word_index(&m->fields[g], "Male"), -1);
}

Test(schema, text_lengths_follow_what_each_field_holds)
{
    const struct { const char *kind, *field; size_t max; } lens[] = {
        { "org", "name", 240 },      { "member", "name", 96 },   { "member", "phone", 32 },
        { "trip", "phone", 32 },     { "member", "id_number", 18 }, { "trip", "employer", 2000 },
        { "trip", "address", 2000 }, { "trip", "reason", 2000 },  { "agreement", "terms", 2000 },
        { "contact", "note", 2000 }, { "care", "note", 2000 },
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        const ld_kind_def_t *def = ld_schema_kind_by_name(lens[i].kind);
        int idx = ld_schema_field_index(def, lens[i].field);
        cr_assert_geq(idx, 0);
        cr_assert_eq(def->fields[idx].max_len, lens[i].max, "%s.%s", lens[i].kind, lens[i].field);
    }
}

Test(schema, every_enum_word_has_one_chinese_label_and_a_table_finds_it)
{
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t) k);
        for (size_t f = 0; f < def->nfields; f++) {
            const ld_field_def_t *field = &def->fields[f];
            if (field->type != LD_T_ENUM)
                continue;
            cr_assert_not_null(field->labels, "%s.%s has no labels", def->name, field->name);
            size_t i = 0;
            for (; field->words[i]; i++) {
                cr_assert_not_null(field->labels[i], "%s.%s: no label for %s", def->name,
                                   field->name, field->words[i]);
                cr_assert_eq(ld_schema_label_index(field, field->labels[i]), (int) i,
                             "%s.%s: label %s twice", def->name, field->name, field->labels[i]);
                cr_assert_lt(ld_schema_word_index(field, field->labels[i]), 0);
                cr_assert_str_eq(ld_schema_label(field->name, field->words[i]), field->labels[i],
                                 "%s.%s: %s", def->name, field->name, field->words[i]);
            }
            cr_assert_null(field->labels[i], "%s.%s: more labels than words", def->name,
                           field->name);
        }
    }
    cr_assert_str_eq(ld_schema_label("status", "reported-in"), "已报到");
    cr_assert_str_eq(ld_schema_label("status", "closed"), "已办结");
    cr_assert_null(ld_schema_label("status", "member"));
    cr_assert_null(ld_schema_label("note", "dues"));
}
