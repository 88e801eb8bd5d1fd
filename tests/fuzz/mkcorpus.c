/* mkcorpus.c: writes the fuzz targets' seed corpora: one packed change of every record
 * kind (corpus/change) and one framed message of every type (corpus/frame). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "schema.h"

static const char *sample_value(const ld_field_def_t *f)
{
    if (strcmp(f->name, "phone") == 0)
        return "138 0000 0000";
    if (strcmp(f->name, "id_number") == 0)
        return "50023619800101123X";
    switch (f->type) {
    case LD_T_TEXT:  return "竹园镇龙潭村 test";
    case LD_T_DATE:  return "2010-05-31";
    case LD_T_MONTH: return "2010-05";
    case LD_T_ENUM:  return f->words[0];
    case LD_T_REF:   return f->ref == LD_KIND_ORG ? "longtan"
                                                  : "0b7e4a52-8d1c-4f3a-9e2b-5c6d7e8f9a01";
    case LD_T_NODE:  return "zhuyuan";
    case LD_T_MONEY: return "5000";
    case LD_T_YEAR:  return "2010";
    }
    return "";
}

static int write_file(const char *dir, const char *name, const uint8_t *a, size_t alen,
                      const uint8_t *b, size_t blen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    int rc = (fwrite(a, 1, alen, f) == alen && (blen == 0 || fwrite(b, 1, blen, f) == blen))
                 ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int sample_change(ld_kind_t kind, ld_change_t *c, ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    ld_change_init(c);
    c->kind = kind;
    snprintf(c->record_id, sizeof c->record_id, "%s",
             kind == LD_KIND_ORG ? "longtan" : "1f0e2d3c-4b5a-4697-8877-665544332211");
    snprintf(c->origin, sizeof c->origin, "zhuyuan");
    c->seq = 7;
    c->hlc = ld_hlc_make(1275350400000ull, 1);   /* 2010-06-01 */
    for (size_t i = 0; i < def->nfields; i++)
        if (ld_change_set(c, def->fields[i].name, sample_value(&def->fields[i]), err) != 0)
            return -1;
    if (ld_change_add_audience(c, "zhuyuan", err) != 0 ||
        ld_change_add_audience(c, "dongguan", err) != 0)
        return -1;
    return ld_change_validate(c, err);
}

/* Writes one framed message: header frame bytes followed by the body. */
static int write_msg(const char *dir, const char *name, const ld_msg_t *m, ld_error_t *err)
{
    uint8_t hdr[LD_HEADER_SIZE];
    uint8_t *body = NULL;
    size_t len = 0;
    ld_frame_header(m->type, hdr);
    if (ld_msg_encode(m, &body, &len, err) != 0)
        return -1;
    int rc = write_file(dir, name, hdr, sizeof hdr, body, len);
    free(body);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CHANGE_DIR FRAME_DIR\n", argv[0]);
        return 2;
    }
    const char *cdir = argv[1], *fdir = argv[2];
    if ((mkdir(cdir, 0755) != 0 && errno != EEXIST) || (mkdir(fdir, 0755) != 0 && errno != EEXIST)) {
        perror("mkdir");
        return 1;
    }
    ld_error_t err;
    ld_change_t all[LD_KIND_COUNT];
    size_t n = 0;
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT; k++) {
        ld_change_t *c = &all[n];
        if (sample_change((ld_kind_t)k, c, &err) != 0) {
            fprintf(stderr, "sample %d: %s\n", k, err.msg);
            return 1;
        }
        uint8_t *packed = NULL;
        size_t len = 0;
        if (ld_change_pack(c, &packed, &len, &err) != 0) {
            fprintf(stderr, "pack: %s\n", err.msg);
            return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "%s", ld_schema_kind((ld_kind_t)k)->name);
        if (write_file(cdir, name, packed, len, NULL, 0) != 0)
            return 1;
        free(packed);
        n++;
    }

    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_HELLO);
    m.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    m.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "dongguan");
    snprintf(m.u.hello.software, sizeof m.u.hello.software, "liangdi 0.1.0");
    int rc = write_msg(fdir, "hello", &m, &err);
    ld_msg_init(&m, LD_MSG_WELCOME);
    m.u.welcome.protocol_version = LD_PROTOCOL_VERSION;
    m.u.welcome.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.welcome.node_id, sizeof m.u.welcome.node_id, "dongguan");
    m.u.welcome.pushed_upto = 41;
    m.u.welcome.mailbox_depth = 3;
    rc |= write_msg(fdir, "welcome", &m, &err);
    ld_msg_init(&m, LD_MSG_PUSH);
    m.u.push.n = n;
    m.u.push.changes = all;
    rc |= write_msg(fdir, "push", &m, &err);
    uint64_t positions[LD_KIND_COUNT];
    for (size_t i = 0; i < n; i++)
        positions[i] = 100 + i;
    ld_msg_init(&m, LD_MSG_BATCH);
    m.u.batch.n = n;
    m.u.batch.changes = all;
    m.u.batch.positions = positions;
    m.u.batch.remaining = 12;
    rc |= write_msg(fdir, "batch", &m, &err);
    ld_msg_init(&m, LD_MSG_PUSH_ACK);
    m.u.push_ack.upto = 41;
    rc |= write_msg(fdir, "push_ack", &m, &err);
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = 99;
    m.u.fetch.credit = 1000;
    rc |= write_msg(fdir, "fetch", &m, &err);
    ld_msg_init(&m, LD_MSG_ACK);
    m.u.ack.upto = 110;
    rc |= write_msg(fdir, "ack", &m, &err);
    ld_msg_init(&m, LD_MSG_NOTIFY);
    m.u.notify.mailbox_depth = 5;
    rc |= write_msg(fdir, "notify", &m, &err);
    ld_msg_init(&m, LD_MSG_ERROR);
    m.u.error.code = LD_ERR_DENIED;
    snprintf(m.u.error.message, sizeof m.u.error.message, "dongguan is not linked to shenzhen");
    snprintf(m.u.error.record_id, sizeof m.u.error.record_id, "1f0e2d3c-4b5a-4697-8877-665544332211");
    m.u.error.seq = 7;
    rc |= write_msg(fdir, "error", &m, &err);
    for (size_t i = 0; i < n; i++)
        ld_change_clear(&all[i]);
    if (rc != 0) {
        fprintf(stderr, "encode: %s\n", err.msg);
        return 1;
    }
    return 0;
}
