/* seed_township.c: the test fixture that writes the seed's township (deploy/seed) and
 * a deterministic year 2010 of records into a fresh store; see seed_township.h. */
#include "seed_township.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "change.h"
#include "text.h"

#define CSV_FIELDS_MAX 8

/* ------------------------------------------------------------- the rules ---- */

bool seed_is_silent(int i)      { return i % 15 == 14; }
bool seed_is_lost(int i)        { return i % 50 == 37; }
bool seed_never_reported(int i) { return i % 25 == 24; }
bool seed_dues_paid_late(int i) { return !seed_is_silent(i) && i % 20 == 9; }

int seed_last_life_month(int i)
{
    if (seed_is_silent(i))
        return 0;
    return i % 10 == 3 ? 6 : i % 10 == 7 ? 7 : 12;
}

int seed_last_dues_month(int i)
{
    if (seed_is_silent(i))
        return 0;
    return i % 10 == 5 ? 6 : 12;
}

int seed_backpay_month(int i)
{
    if (seed_is_silent(i))
        return 0;
    return i % 12 == 11 ? 1 : i % 12 == 5 ? 2 : 0;
}

bool seed_has_assessment(int i, bool outflow_side)
{
    if (seed_is_silent(i))
        return false;
    return outflow_side ? i % 13 != 6 : i % 9 != 4;
}

bool seed_has_yearly_report(int i)
{
    return !seed_is_silent(i) && i % 11 != 2;
}

bool seed_has_review(int i)
{
    return !seed_is_silent(i) && i % 8 != 5;
}

bool seed_agreement_contact(int j, bool second_half)
{
    return second_half ? j % 4 != 2 : j % 5 != 1;
}

bool seed_agreement_visit(int j)
{
    return j % 3 != 0;
}

/* ------------------------------------------------------------ utilities ---- */

const char *seed_township_dir(void)
{
    static char dir[512];
    const char *root = getenv("LIANGDI_SOURCE_ROOT");
    if (root && root[0]) {
        snprintf(dir, sizeof dir, "%s/deploy/seed", root);
        return dir;
    }
    static const char *const guesses[] = { "deploy/seed", "../deploy/seed", "../../deploy/seed" };
    for (size_t i = 0; i < sizeof guesses / sizeof guesses[0]; i++)
        if (access(guesses[i], R_OK) == 0)
            return guesses[i];
    return "deploy/seed";
}

int seed_write(nd_store_t *store, ld_kind_t kind, const char *record_id, char *id_out,
               ld_error_t *err, ...)
{
    ld_change_t c;
    ld_change_init(&c);
    c.kind = kind;
    snprintf(c.record_id, sizeof c.record_id, "%s", record_id ? record_id : "");
    va_list ap;
    va_start(ap, err);
    int rc = 0;
    const char *name;
    while (rc == 0 && (name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (value && value[0])
            rc = ld_change_set(&c, name, value, err);
    }
    va_end(ap);
    if (rc == 0)
        rc = nd_store_write(store, &c, err);
    if (rc == 0 && id_out) {
        size_t n = strnlen(c.record_id, LD_UUID_LEN);
        memcpy(id_out, c.record_id, n);
        id_out[n] = '\0';
    }
    ld_change_clear(&c);
    return rc;
}

/* Reads a CSV file of the seed (a header, then rows of at most CSV_FIELDS_MAX plain
 * fields: no quoting), calling fn for each row after the header. */
typedef int (*row_fn)(seed_township_t *s, int line, char **fields, size_t n, ld_error_t *err);

static int read_csv(seed_township_t *s, const char *file, size_t want, row_fn fn,
                    ld_error_t *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", seed_township_dir(), file);
    FILE *f = fopen(path, "r");
    if (!f)
        return ld_error_set(err, LD_ENOTFOUND, "%s: cannot open (set LIANGDI_SOURCE_ROOT)", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, lineno = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (lineno == 1 || len == 0)
            continue;
        if (strchr(line, '"')) {
            rc = ld_error_set(err, LD_EINVAL, "%s:%d: quoted fields are not expected", path,
                              lineno);
            break;
        }
        char *fields[CSV_FIELDS_MAX];
        size_t n = 0;
        char *p = line;
        for (;;) {
            if (n == CSV_FIELDS_MAX)
                break;
            fields[n++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (n != want)
            rc = ld_error_set(err, LD_EINVAL, "%s:%d: %zu fields, expected %zu", path, lineno,
                              n, want);
        else
            rc = fn(s, lineno, fields, n, err);
    }
    free(line);
    fclose(f);
    return rc;
}

const seed_member_t *seed_township_member(const seed_township_t *s, const char *name)
{
    for (size_t i = 0; i < s->nmembers; i++)
        if (strcmp(s->members[i].name, name) == 0 || strcmp(s->members[i].id, name) == 0)
            return &s->members[i];
    return NULL;
}

const seed_org_t *seed_township_org(const seed_township_t *s, const char *id)
{
    for (size_t i = 0; i < s->norgs; i++)
        if (strcmp(s->orgs[i].id, id) == 0)
            return &s->orgs[i];
    return NULL;
}

/* ---------------------------------------------------------- the township ---- */

static int org_row(seed_township_t *s, int line, char **f, size_t n, ld_error_t *err)
{
    if (s->norgs == SEED_ORGS_MAX)
        return ld_error_set(err, LD_ETOOBIG, "orgs.csv:%d: more than %d orgs", line,
                            SEED_ORGS_MAX);
    seed_org_t *o = &s->orgs[s->norgs++];
    snprintf(o->id, sizeof o->id, "%s", f[0]);
    snprintf(o->name, sizeof o->name, "%s", f[1]);
    snprintf(o->kind, sizeof o->kind, "%s", f[2]);
    snprintf(o->parent, sizeof o->parent, "%s", f[3]);
    snprintf(o->node, sizeof o->node, "%s", f[4]);
    return seed_write(s->store, LD_KIND_ORG, o->id, NULL, err, "name", o->name,
                      "kind", o->kind, "parent", o->parent, "node", o->node, NULL);
}

static int member_row(seed_township_t *s, int line, char **f, size_t n, ld_error_t *err)
{
    if (s->nmembers == SEED_MEMBERS_MAX)
        return ld_error_set(err, LD_ETOOBIG, "members.csv:%d: too many members", line);
    seed_member_t *m = &s->members[s->nmembers];
    m->index = (int) s->nmembers;
    snprintf(m->name, sizeof m->name, "%s", f[0]);
    snprintf(m->org, sizeof m->org, "%s", f[1]);
    m->female = strcmp(f[2], "female") == 0;
    s->nmembers++;
    return seed_write(s->store, LD_KIND_MEMBER, "", m->id, err, "name", f[0], "org", f[1],
                      "gender", f[2], "born", f[3], "joined", f[4], "phone", f[5],
                      "id_number", f[6], NULL);
}

static int trip_row(seed_township_t *s, int line, char **f, size_t n, ld_error_t *err)
{
    seed_member_t *m = (seed_member_t *) seed_township_member(s, f[0]);
    if (!m)
        return ld_error_set(err, LD_ENOTFOUND, "trips.csv:%d: no member named %s", line, f[0]);
    snprintf(m->inflow, sizeof m->inflow, "%s", f[1]);
    if (!ld_date_parse(f[2], &m->started))
        return ld_error_set(err, LD_EINVAL, "trips.csv:%d: bad date %s", line, f[2]);
    return seed_write(s->store, LD_KIND_TRIP, "", m->trip_id, err, "member", m->id,
                      "to", f[1], "started", f[2], "status", "registered", "employer", f[3],
                      "address", f[4], "reason", "外出务工", NULL);
}

static int agreement_row(seed_township_t *s, int line, char **f, size_t n, ld_error_t *err)
{
    if (s->nagreements == SEED_AGREEMENTS_MAX)
        return ld_error_set(err, LD_ETOOBIG, "agreements.csv:%d: too many", line);
    seed_agreement_t *a = &s->agreements[s->nagreements];
    a->index = (int) s->nagreements;
    snprintf(a->outflow, sizeof a->outflow, "%s", f[0]);
    snprintf(a->inflow, sizeof a->inflow, "%s", f[1]);
    if (!ld_date_parse(f[2], &a->signed_on))
        return ld_error_set(err, LD_EINVAL, "agreements.csv:%d: bad date %s", line, f[2]);
    s->nagreements++;
    return seed_write(s->store, LD_KIND_AGREEMENT, "", a->id, err, "outflow", f[0],
                      "inflow", f[1], "signed", f[2], "terms", "两地双管共管协议", NULL);
}

int seed_township_open(seed_township_t *s, ld_error_t *err)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/liangdi-seed-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return ld_error_set(err, LD_EIO, "mkdtemp failed");
    }
    snprintf(s->db_path, sizeof s->db_path, "%s/zhuyuan.db", s->dir);
    s->store = nd_store_open(s->db_path, true, err);
    if (!s->store)
        return err && err->code ? err->code : LD_EIO;
    int rc = nd_store_init_node(s->store, "zhuyuan", "竹园镇党委", err);
    if (rc)
        return rc;
    rc = nd_store_begin(s->store, err);
    if (rc)
        return rc;
    rc = read_csv(s, "orgs.csv", 5, org_row, err);
    if (!rc)
        rc = read_csv(s, "members.csv", 7, member_row, err);
    if (!rc)
        rc = read_csv(s, "trips.csv", 5, trip_row, err);
    if (!rc)
        rc = read_csv(s, "agreements.csv", 3, agreement_row, err);
    if (!rc)
        return nd_store_commit(s->store, err);
    nd_store_rollback(s->store);
    return rc;
}

/* ------------------------------------------------------------- the year ---- */

static void date_text(int y, int m, int d, char out[11])
{
    ld_date_format(ld_date_join(y, m, d), out);
}

static int write_activity(seed_township_t *s, const seed_member_t *m, const char *date,
                          const char *kind, const char *month, const char *note, ld_error_t *err)
{
    return seed_write(s->store, LD_KIND_ACTIVITY, "", NULL, err, "member", m->id,
                      "date", date, "kind", kind, "month", month,
                      "amount", month ? "200" : NULL, "note", note, NULL);
}

static int member_year(seed_township_t *s, const seed_member_t *m, ld_error_t *err)
{
    int i = m->index, rc = 0;
    char date[11], month[16];

    if (!seed_never_reported(i)) {
        ld_date_format(m->started + (i % 25 == 12 ? 40 : 7), date);
        rc = seed_write(s->store, LD_KIND_TRIP, m->trip_id, NULL, err, "reported_in", date,
                        "status", "reported-in", NULL);
    }
    if (rc == 0 && seed_is_lost(i))
        rc = seed_write(s->store, LD_KIND_TRIP, m->trip_id, NULL, err, "status",
                        "lost-contact", "ended", "2010-10-01", NULL);
    if (rc || seed_is_silent(i))
        return rc;

    for (int mo = 4; mo <= seed_last_life_month(i) && rc == 0; mo++) {
        date_text(2010, mo, 10, date);
        rc = write_activity(s, m, date, "theme-day", NULL, "主题党日", err);
    }
    for (int mo = 4; mo <= seed_last_dues_month(i) && rc == 0; mo++) {
        snprintf(month, sizeof month, "2010-%02d", mo);
        if (seed_dues_paid_late(i) && mo >= 8)
            snprintf(date, sizeof date, "2011-01-05");
        else
            date_text(2010, mo, 15, date);
        rc = write_activity(s, m, date, "dues", month, "按月交纳党费", err);
    }
    if (rc == 0 && seed_backpay_month(i)) {
        snprintf(month, sizeof month, "2010-%02d", seed_backpay_month(i));
        rc = write_activity(s, m, "2010-08-15", "dues", month, "补缴党费", err);
    }
    if (rc == 0 && seed_has_yearly_report(i))
        rc = write_activity(s, m, "2010-12-20", "report", NULL, "2010年度书面报告", err);
    if (rc == 0 && seed_has_review(i))
        rc = write_activity(s, m, "2011-01-10", "review", NULL, "活动证年审", err);
    for (int side = 0; side < 2 && rc == 0; side++)
        if (seed_has_assessment(i, side == 0))
            rc = seed_write(s->store, LD_KIND_ASSESSMENT, "", NULL, err, "member", m->id,
                            "year", "2010", "side", side == 0 ? "outflow" : "inflow",
                            "grade", "competent", "note", "2010年度考核", NULL);
    return rc;
}

static int agreement_year(seed_township_t *s, const seed_agreement_t *a, ld_error_t *err)
{
    int j = a->index, rc = 0;
    if (seed_agreement_contact(j, false))
        rc = seed_write(s->store, LD_KIND_CONTACT, "", NULL, err, "agreement", a->id,
                        "date", "2010-05-20", "channel", "phone", "note", "上半年电联", NULL);
    if (rc == 0 && seed_agreement_contact(j, true))
        rc = seed_write(s->store, LD_KIND_CONTACT, "", NULL, err, "agreement", a->id,
                        "date", "2010-11-20", "channel", "hotline", "note", "下半年电联", NULL);
    if (rc == 0 && seed_agreement_visit(j))
        rc = seed_write(s->store, LD_KIND_VISIT, "", NULL, err, "agreement", a->id,
                        "date", "2010-09-10", "host", a->inflow, "note", "年度互访", NULL);
    return rc;
}

int seed_township_year(seed_township_t *s, ld_error_t *err)
{
    int rc = nd_store_begin(s->store, err);
    for (size_t i = 0; i < s->nmembers && rc == 0; i++)
        rc = member_year(s, &s->members[i], err);
    for (size_t j = 0; j < s->nagreements && rc == 0; j++)
        rc = agreement_year(s, &s->agreements[j], err);
    if (rc == 0)
        return nd_store_commit(s->store, err);
    nd_store_rollback(s->store);
    return rc;
}

void seed_township_close(seed_township_t *s)
{
    nd_store_destroy(&s->store);
    if (!s->dir[0])
        return;
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[600];
            snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}
