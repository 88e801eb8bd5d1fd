/* schema.c: the one table of liangdi's record kinds (liangdi.proto's records): each
 * kind's fields, their types, enum words, lengths and which are required. */
#include "schema.h"

#include <string.h>

#define ORG_NAME_MAX_LEN    LD_ONE_LINE_MAX   /* 80 Chinese characters: a full name */
#define MEMBER_NAME_MAX_LEN 96    /* 32 Chinese characters */
#define PHONE_MAX_LEN  32
#define IDNUM_MAX_LEN  18
#define NOTE_MAX_LEN   2000

/* Enum words: the proto value names without the type prefix, lowercased, '_' -> '-',
 * in value order (index + 1 = proto value). */
static const char *const org_kind_words[] = {
    "township", "village", "community", "mobile", NULL
};
static const char *const gender_words[] = { "female", "male", NULL };
static const char *const trip_status_words[] = {
    "registered", "reported-in", "returned", "transferred", "lost-contact", NULL
};
static const char *const channel_words[] = { "phone", "video", "hotline", "letter", NULL };
static const char *const activity_kind_words[] = {
    "meeting", "committee", "group", "theme-day", "lecture", "life-meeting",
    "appraisal", "dues", "study", "volunteer", "report", "review", "symposium", NULL
};
static const char *const side_words[] = { "outflow", "inflow", NULL };
static const char *const grade_words[] = {
    "excellent", "competent", "basically-competent", "incompetent", NULL
};
static const char *const decision_words[] = { "pending", "approved", "refused", NULL };
static const char *const care_kind_words[] = {
    "elderly", "children", "land-transfer", "forest-rights", NULL
};
static const char *const care_status_words[] = { "open", "closed", NULL };
static const char *const honour_kind_words[] = { "prosperous", "law-abiding", NULL };
static const char *const support_kind_words[] = {
    "pairing", "fund", "training", "employment", NULL
};

/* What a person reads for each word above, in the same order. */
static const char *const org_kind_labels[] = {
    "乡镇党委", "村党支部", "社区党支部", "流动党员党支部", NULL
};
static const char *const gender_labels[] = { "女", "男", NULL };
static const char *const trip_status_labels[] = {
    "已登记", "已报到", "已返乡", "已转出", "失联", NULL
};
static const char *const channel_labels[] = { "电话", "视频", "热线", "信函", NULL };
static const char *const activity_kind_labels[] = {
    "党员大会", "支委会", "党小组会", "主题党日", "党课", "组织生活会",
    "民主评议", "党费", "学习", "志愿服务", "书面报告", "活动证年审", "座谈会", NULL
};
static const char *const side_labels[] = { "流出地", "流入地", NULL };
static const char *const grade_labels[] = { "优秀", "称职", "基本称职", "不称职", NULL };
static const char *const decision_labels[] = { "待批", "批准", "不批准", NULL };
static const char *const care_kind_labels[] = {
    "空巢老人", "留守儿童", "土地流转", "林权登记", NULL
};
static const char *const care_status_labels[] = { "办理中", "已办结", NULL };
static const char *const honour_kind_labels[] = { "勤劳致富能手", "遵纪守法党员", NULL };
static const char *const support_kind_labels[] = {
    "结对帮扶", "帮扶资金", "技术培训", "就业援助", NULL
};

/* Field order follows the proto field numbers. */
static const ld_field_def_t org_fields[] = {
    { "name",   LD_T_TEXT, LD_KIND_NONE, NULL, ORG_NAME_MAX_LEN, true, 0, NULL },
    { "kind",   LD_T_ENUM, LD_KIND_NONE, org_kind_words, 0, true, 0, org_kind_labels },
    { "parent", LD_T_REF,  LD_KIND_ORG,  NULL, 0, false, 0, NULL },
    { "node",   LD_T_NODE, LD_KIND_NONE, NULL, 0, true, 0, NULL },
};

static const ld_field_def_t member_fields[] = {
    { "name",      LD_T_TEXT, LD_KIND_NONE, NULL, MEMBER_NAME_MAX_LEN, true, 0, NULL },
    { "org",       LD_T_REF,  LD_KIND_ORG,  NULL, 0, true, 0, NULL },
    { "gender",    LD_T_ENUM, LD_KIND_NONE, gender_words, 0, false, 0, gender_labels },
    { "born",      LD_T_DATE, LD_KIND_NONE, NULL, 0, false, 0, NULL },
    { "joined",    LD_T_DATE, LD_KIND_NONE, NULL, 0, false, 0, NULL },
    { "phone",     LD_T_TEXT, LD_KIND_NONE, NULL, PHONE_MAX_LEN, false, 0, NULL },
    { "id_number", LD_T_TEXT, LD_KIND_NONE, NULL, IDNUM_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t trip_fields[] = {
    { "member",      LD_T_REF,  LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "to",          LD_T_REF,  LD_KIND_ORG,    NULL, 0, true, 0, NULL },
    { "started",     LD_T_DATE, LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "reported_in", LD_T_DATE, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    { "ended",       LD_T_DATE, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    /* registered, then reported-in, then one of the endings */
    { "status",      LD_T_ENUM, LD_KIND_NONE,   trip_status_words, 0, true, 2, trip_status_labels },
    { "employer",    LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
    { "address",     LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
    { "phone",       LD_T_TEXT, LD_KIND_NONE,   NULL, PHONE_MAX_LEN, false, 0, NULL },
    { "reason",      LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
    /* the length the registration expects, as the day it ends (预计外出至) */
    { "until",       LD_T_DATE, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
};

static const ld_field_def_t agreement_fields[] = {
    { "outflow", LD_T_REF,  LD_KIND_ORG,  NULL, 0, true, 0, NULL },
    { "inflow",  LD_T_REF,  LD_KIND_ORG,  NULL, 0, true, 0, NULL },
    { "signed",  LD_T_DATE, LD_KIND_NONE, NULL, 0, true, 0, NULL },
    { "until",   LD_T_DATE, LD_KIND_NONE, NULL, 0, false, 0, NULL },
    { "terms",   LD_T_TEXT, LD_KIND_NONE, NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t contact_fields[] = {
    { "agreement", LD_T_REF,  LD_KIND_AGREEMENT, NULL, 0, true, 0, NULL },
    { "date",      LD_T_DATE, LD_KIND_NONE,      NULL, 0, true, 0, NULL },
    { "channel",   LD_T_ENUM, LD_KIND_NONE,      channel_words, 0, true, 0, channel_labels },
    { "note",      LD_T_TEXT, LD_KIND_NONE,      NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t visit_fields[] = {
    { "agreement", LD_T_REF,  LD_KIND_AGREEMENT, NULL, 0, true, 0, NULL },
    { "date",      LD_T_DATE, LD_KIND_NONE,      NULL, 0, true, 0, NULL },
    { "host",      LD_T_REF,  LD_KIND_ORG,       NULL, 0, true, 0, NULL },
    { "note",      LD_T_TEXT, LD_KIND_NONE,      NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t activity_fields[] = {
    { "member", LD_T_REF,   LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "date",   LD_T_DATE,  LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "kind",   LD_T_ENUM,  LD_KIND_NONE,   activity_kind_words, 0, true, 0, activity_kind_labels },
    { "month",  LD_T_MONTH, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    { "amount", LD_T_MONEY, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    { "note",   LD_T_TEXT,  LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t assessment_fields[] = {
    { "member", LD_T_REF,  LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "year",   LD_T_YEAR, LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "side",   LD_T_ENUM, LD_KIND_NONE,   side_words, 0, true, 0, side_labels },
    { "grade",  LD_T_ENUM, LD_KIND_NONE,   grade_words, 0, true, 0, grade_labels },
    { "note",   LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t approval_fields[] = {
    { "member",   LD_T_REF,  LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "date",     LD_T_DATE, LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "to",       LD_T_REF,  LD_KIND_ORG,    NULL, 0, false, 0, NULL },
    { "decision", LD_T_ENUM, LD_KIND_NONE,   decision_words, 0, true, 0, decision_labels },
    { "note",     LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t care_fields[] = {
    { "member", LD_T_REF,  LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "kind",   LD_T_ENUM, LD_KIND_NONE,   care_kind_words, 0, true, 0, care_kind_labels },
    { "date",   LD_T_DATE, LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "status", LD_T_ENUM, LD_KIND_NONE,   care_status_words, 0, true, 0, care_status_labels },
    { "note",   LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t honour_fields[] = {
    { "member", LD_T_REF,  LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "year",   LD_T_YEAR, LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "kind",   LD_T_ENUM, LD_KIND_NONE,   honour_kind_words, 0, true, 0, honour_kind_labels },
    { "date",   LD_T_DATE, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    { "note",   LD_T_TEXT, LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

static const ld_field_def_t support_fields[] = {
    { "member", LD_T_REF,   LD_KIND_MEMBER, NULL, 0, true, 0, NULL },
    { "kind",   LD_T_ENUM,  LD_KIND_NONE,   support_kind_words, 0, true, 0, support_kind_labels },
    { "date",   LD_T_DATE,  LD_KIND_NONE,   NULL, 0, true, 0, NULL },
    { "helper", LD_T_TEXT,  LD_KIND_NONE,   NULL, MEMBER_NAME_MAX_LEN, false, 0, NULL },
    { "amount", LD_T_MONEY, LD_KIND_NONE,   NULL, 0, false, 0, NULL },
    { "note",   LD_T_TEXT,  LD_KIND_NONE,   NULL, NOTE_MAX_LEN, false, 0, NULL },
};

#define NFIELDS(a) (sizeof (a) / sizeof (a)[0])

/* Indexed by ld_kind_t. */
static const ld_kind_def_t kinds[LD_KIND_COUNT] = {
    [LD_KIND_ORG]        = { LD_KIND_ORG,        "org",        "orgs",        org_fields, NFIELDS(org_fields) },
    [LD_KIND_MEMBER]     = { LD_KIND_MEMBER,     "member",     "members",     member_fields, NFIELDS(member_fields) },
    [LD_KIND_TRIP]       = { LD_KIND_TRIP,       "trip",       "trips",       trip_fields, NFIELDS(trip_fields) },
    [LD_KIND_AGREEMENT]  = { LD_KIND_AGREEMENT,  "agreement",  "agreements",  agreement_fields, NFIELDS(agreement_fields) },
    [LD_KIND_CONTACT]    = { LD_KIND_CONTACT,    "contact",    "contacts",    contact_fields, NFIELDS(contact_fields) },
    [LD_KIND_VISIT]      = { LD_KIND_VISIT,      "visit",      "visits",      visit_fields, NFIELDS(visit_fields) },
    [LD_KIND_ACTIVITY]   = { LD_KIND_ACTIVITY,   "activity",   "activities",  activity_fields, NFIELDS(activity_fields) },
    [LD_KIND_ASSESSMENT] = { LD_KIND_ASSESSMENT, "assessment", "assessments", assessment_fields, NFIELDS(assessment_fields) },
    [LD_KIND_APPROVAL]   = { LD_KIND_APPROVAL,   "approval",   "approvals",   approval_fields, NFIELDS(approval_fields) },
    [LD_KIND_CARE]       = { LD_KIND_CARE,       "care",       "cares",       care_fields, NFIELDS(care_fields) },
    [LD_KIND_HONOUR]     = { LD_KIND_HONOUR,     "honour",     "honours",     honour_fields, NFIELDS(honour_fields) },
    [LD_KIND_SUPPORT]    = { LD_KIND_SUPPORT,    "support",    "supports",    support_fields, NFIELDS(support_fields) },
};

const ld_kind_def_t *ld_schema_kind(ld_kind_t kind)
{
    if ((int)kind <= (int)LD_KIND_NONE || (int)kind >= (int)LD_KIND_COUNT)
        return NULL;
    return &kinds[kind];
}

const ld_kind_def_t *ld_schema_kind_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        if (strcmp(kinds[k].name, name) == 0)
            return &kinds[k];
    }
    return NULL;
}

int ld_schema_field_index(const ld_kind_def_t *def, const char *name)
{
    if (def == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < def->nfields; i++) {
        if (strcmp(def->fields[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int ld_schema_word_index(const ld_field_def_t *field, const char *word)
{
    if (field == NULL || field->words == NULL || word == NULL)
        return -1;
    for (int i = 0; field->words[i] != NULL; i++) {
        if (strcmp(field->words[i], word) == 0)
            return i;
    }
    return -1;
}

int ld_schema_label_index(const ld_field_def_t *field, const char *label)
{
    if (!field || !field->labels || !label)
        return -1;
    for (int i = 0; field->labels[i]; i++)
        if (strcmp(field->labels[i], label) == 0)
            return i;
    return -1;
}

bool ld_schema_labelled(const char *field)
{
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t) k);
        int f = ld_schema_field_index(def, field);
        if (f >= 0 && def->fields[f].labels)
            return true;
    }
    return false;
}

const char *ld_schema_label(const char *field, const char *word)
{
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t) k);
        int f = ld_schema_field_index(def, field);
        if (f < 0 || !def->fields[f].labels)
            continue;
        int i = ld_schema_word_index(&def->fields[f], word);
        if (i >= 0)
            return def->fields[f].labels[i];
    }
    return NULL;
}
