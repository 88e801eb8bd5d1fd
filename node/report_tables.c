/* report_tables.c: the compliance report as tables: its parameters, the findings of each
 * section in order (breaches first, then by branch and name), the mobile members counted
 * by branch, the township's work counted by kind, and the findings counted by duty. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report_int.h"

/* ---------------------------------------------------------------- tables ---- */

typedef struct group_row {
    int         group;      /* 0 township, 1 inflow, 2 outflow */
    const char *id, *name;  /* borrowed */
    long        mobile, women;
} group_row_t;

static int finding_cmp(const void *a, const void *b)
{
    const finding_t *x = a, *y = b;
    if (x->level != y->level)
        return x->level == ND_LEVEL_BREACH ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (int) x->duty - (int) y->duty;
}

static const char *const finding_keys[CELLS_MAX] = {
    "level", "member", "org", "inflow", "duty", "date", "elapsed", "note",
};
static const char *const finding_labels[CELLS_MAX] = {
    "级别", "姓名", "流出地党支部", "流入地党支部", "事项", "日期", "时长", "说明",
};
static const char *const agreement_keys[CELLS_MAX] = {
    "level", "outflow", "inflow", "duty", "period", "due", "last", "note",
};
static const char *const agreement_labels[CELLS_MAX] = {
    "级别", "流出地党支部", "流入地党支部", "事项", "期间", "截止日期", "最近一次", "说明",
};

static nd_table_t *findings_table(report_t *r, int sect, const char *title)
{
    findings_t *f = &r->sect[sect];
    nd_table_t *t = sect == 0
        ? nd_table_new(title, CELLS_MAX, agreement_keys, agreement_labels)
        : nd_table_new(title, CELLS_MAX, finding_keys, finding_labels);
    if (!t)
        return NULL;
    if (f->n > 1)
        qsort(f->v, f->n, sizeof *f->v, finding_cmp);
    /* the findings outlive the tables (nd_report_print destroys these first) */
    for (size_t i = 0; i < f->n; i++)
        if (nd_table_add_row_kept(t, (const char *const *) f->v[i].cells)) {
            nd_table_destroy(&t);
            return NULL;
        }
    return t;
}

static nd_table_t *parameters_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "item", "value" };
    static const char *const labels[] = { "项目", "值" };
    nd_table_t *t = nd_table_new(title, 2, keys, labels);
    if (!t)
        return NULL;
    char node[256];
    snprintf(node, sizeof node, "%s %s", nd_store_node_id(r->store),
             nd_store_node_name(r->store));
    const char *row0[] = { "截至日期", r->as_of_text };
    const char *row1[] = { "本节点", node };
    int rc = nd_table_add_row(t, row0);
    if (!rc)
        rc = nd_table_add_row(t, row1);
    const char *key, *label;
    int v;
    for (size_t i = 0; !rc && nd_rp_setting(r, i, &key, &label, &v); i++) {
        char item[160], value[16];
        snprintf(item, sizeof item, "%s (%s)", label, key);
        snprintf(value, sizeof value, "%d", v);
        const char *row[] = { item, value };
        rc = nd_table_add_row(t, row);
    }
    if (rc)
        nd_table_destroy(&t);
    return t;
}

static int group_cmp(const void *a, const void *b)
{
    const group_row_t *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    return strcmp(x->id, y->id);
}

/* The index of the row of `group` for org `id` (and `name`: both borrowed), added if
 * missing; -1 when memory runs out. */
static long group_find(group_row_t **rows, size_t *n, size_t *cap, int group,
                       const char *id, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if ((*rows)[i].group == group && strcmp((*rows)[i].id, id) == 0)
            return (long) i;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        group_row_t *grown = realloc(*rows, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *rows = grown;
        *cap = ncap;
    }
    group_row_t *g = &(*rows)[*n];
    memset(g, 0, sizeof *g);
    g->group = group;
    g->id = id;
    g->name = name;
    return (long) (*n)++;
}

/* Mobile members and women among them: all this store holds (the township's, on the
 * node that keeps the township; otherwise this node's), each inflow branch, each home
 * branch (every branch the store holds, with none too). */
static nd_table_t *totals_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "group", "org", "mobile", "women" };
    static const char *const labels[] = { "类别", "党组织", "流动党员", "其中女党员" };
    static const char *const group_names[] = { "全镇", "流入地", "流出地", "合计" };
    group_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    nd_table_t *t = NULL;
    bool ok = true;
    const char *township = NULL;
    for (size_t i = 0; i < r->norgs && ok; i++) {
        const org_t *o = &r->orgs[i];
        if (strcmp(o->kind, "township") == 0 && o->here && !township)
            township = o->name;
        else if (strcmp(o->kind, "mobile") == 0)
            ok = group_find(&rows, &n, &cap, 1, o->id, o->name) >= 0;
        else if (strcmp(o->kind, "village") == 0 || strcmp(o->kind, "community") == 0)
            ok = group_find(&rows, &n, &cap, 2, o->id, o->name) >= 0;
    }
    long total = 0, women = 0;
    for (size_t i = 0; i < r->npeople && ok; i++) {
        const person_t *m = &r->people[i];
        if (!m->mobile)
            continue;
        long in = group_find(&rows, &n, &cap, 1, m->inflow, m->inflow_name);
        long home = in >= 0 ? group_find(&rows, &n, &cap, 2, m->org, m->org_name) : -1;
        ok = in >= 0 && home >= 0;
        if (!ok)
            break;
        rows[in].mobile++;
        rows[home].mobile++;
        total++;
        if (m->female) {
            rows[in].women++;
            rows[home].women++;
            women++;
        }
    }
    if (!ok)
        goto nomem;
    if (n > 1)
        qsort(rows, n, sizeof *rows, group_cmp);
    t = nd_table_new(title, 4, keys, labels);
    if (!t)
        goto nomem;
    char a[24], b[24];
    snprintf(a, sizeof a, "%ld", total);
    snprintf(b, sizeof b, "%ld", women);
    /* a branch holds only the members it co-manages: its total is not the township's */
    const char *row0[] = { group_names[township ? 0 : 3],
                           township ? township : nd_store_node_name(r->store), a, b };
    if (nd_table_add_row(t, row0))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%ld", rows[i].mobile);
        snprintf(b, sizeof b, "%ld", rows[i].women);
        const char *row[] = { group_names[rows[i].group], rows[i].name, a, b };
        if (nd_table_add_row(t, row))
            goto nomem;
    }
    goto out;
nomem:
    nd_rp_fail_nomem(r);
    nd_table_destroy(&t);
out:
    free(rows);
    return t;
}

/* A row of work_table: `item`, `kind` (in Chinese), the counts c, the amount only
 * where `amounts`, and a target with the share of it done when target > 0: `done` of
 * `target` (both in fen where `amounts`).  0 or -1. */
static int work_row(nd_table_t *t, const char *item, const char *kind, const work_count_t *c,
                    bool amounts, int64_t done, int64_t target)
{
    char entries[24], members[24], yuan[32] = "", goal[32] = "", share[32] = "";
    snprintf(entries, sizeof entries, "%ld", c->entries);
    snprintf(members, sizeof members, "%ld", c->members);
    if (amounts && c->fen > 0)
        snprintf(yuan, sizeof yuan, "%" PRId64 ".%02" PRId64, c->fen / 100, c->fen % 100);
    if (target > 0) {
        if (amounts)
            snprintf(goal, sizeof goal, "%" PRId64 ".%02" PRId64, target / 100, target % 100);
        else
            snprintf(goal, sizeof goal, "%" PRId64, target);
        snprintf(share, sizeof share, "%.1f%%", 100.0 * (double)done / (double)target);
    }
    const char *row[] = { item, kind, entries, members, yuan, goal, share };
    return nd_table_add_row(t, row) ? -1 : 0;
}

/* The township's work: last year's honours and this year's help, by kind; on the node
 * that keeps the township, the grants beside the year's fund, and the members trained
 * or helped into work beside the year's target. */
static nd_table_t *work_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "item", "kind", "entries", "members", "amount",
                                        "target", "done" };
    static const char *const labels[] = { "项目", "类别", "人次", "人数", "金额（元）",
                                          "年度目标", "完成" };
    nd_table_t *t = nd_table_new(title, 7, keys, labels);
    if (!t)
        return NULL;
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    char honours[32], help[48];
    snprintf(honours, sizeof honours, "%d年度表彰", y - 1);
    snprintf(help, sizeof help, "%d年帮扶（至 %s）", y, r->as_of_text);
    const ld_field_def_t *honour = nd_rp_kind_field(LD_KIND_HONOUR);
    const ld_field_def_t *support = nd_rp_kind_field(LD_KIND_SUPPORT);
    int fund = r->keeps_township ? ld_schema_word_index(support, "fund") : -1;
    int64_t trained_target = r->keeps_township ? r->rules.training_target : 0;
    int rc = 0;
    for (int i = 0; !rc && i < ND_RP_KINDS_MAX && honour->words[i]; i++)
        rc = work_row(t, honours, honour->labels[i], &r->honoured[i], false, 0, 0);
    for (int i = 0; !rc && i < ND_RP_KINDS_MAX && support->words[i]; i++)
        rc = work_row(t, help, support->labels[i], &r->helped[i], true, r->helped[i].fen,
                      i == fund ? (int64_t)r->rules.support_fund_yuan * 100 : 0);
    if (!rc)
        rc = work_row(t, help, "技术培训与就业援助（合计）", &r->trained, false,
                      r->trained.members, trained_target);
    if (rc)
        nd_table_destroy(&t);
    return t;
}

static nd_table_t *counts_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "duty", "breaches", "warnings" };
    static const char *const labels[] = { "事项", "超期", "预警" };
    nd_table_t *t = nd_table_new(title, 3, keys, labels);
    if (!t)
        return NULL;
    for (int d = 0; d < DUTY_COUNT; d++) {
        char a[24], b[24];
        snprintf(a, sizeof a, "%ld", r->counts[d][ND_LEVEL_BREACH]);
        snprintf(b, sizeof b, "%ld", r->counts[d][ND_LEVEL_WARNING]);
        const char *row[] = { nd_rp_duty_name(r, (duty_t) d), a, b };
        if (nd_table_add_row(t, row)) {
            nd_table_destroy(&t);
            return NULL;
        }
    }
    return t;
}

void nd_rp_tables(report_t *r, const char *const titles[ND_RP_TABLES],
                  nd_table_t *tables[ND_RP_TABLES])
{
    tables[0] = parameters_table(r, titles[0]);
    tables[1] = findings_table(r, 0, titles[1]);
    tables[2] = findings_table(r, 1, titles[2]);
    tables[3] = findings_table(r, 2, titles[3]);
    tables[4] = totals_table(r, titles[4]);
    tables[5] = work_table(r, titles[5]);
    tables[6] = counts_table(r, titles[6]);
}
