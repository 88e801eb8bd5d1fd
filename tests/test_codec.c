/* test_codec.c: every message type round-trips through protobuf bytes, Push and Batch
 * bodies built from packed changes decode to the same changes, and bad bytes are refused. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "liangdi.pb-c.h"
#include "hlc.h"
#include "uuid.h"

#define BASE_MS UINT64_C(1273000000000)   /* 2010-05-04, the seed's report */

/* A valid value of every field type, with Chinese text where text goes. */
static const char *sample_value(const ld_field_def_t *f)
{
    switch (f->type) {
    case LD_T_TEXT:
        if (strcmp(f->name, "phone") == 0)
            return "+86 800-5-12371";
        if (strcmp(f->name, "id_number") == 0)
            return "50023619800101123X";
        if (f->max_len <= 240)
            return "林术平（龙潭村）";
        return "中共竹园镇外出创业群体广东东莞支部委员会：组织生活、党费、学习。\n第二行";
    case LD_T_DATE:   return "2010-05-01";
    case LD_T_MONTH:  return "2010-05";
    case LD_T_REF:    return f->ref == LD_KIND_ORG ? "dongguan-branch"
                                                   : "0f8fad5b-d9cb-469f-a165-70867728950e";
    case LD_T_NODE:   return "zhuyuan";
    case LD_T_MONEY:  return "1234567";
    case LD_T_YEAR:   return "2010";
    case LD_T_ENUM: {
        size_t n = 0;
        while (f->words[n] != NULL)
            n++;
        return f->words[n - 1];              /* the highest wire value */
    }
    }
    return "";
}

/* A change of `kind` setting every field, some with their own stamps and bases. */
static void make_change(ld_change_t *c, ld_kind_t kind, uint64_t seq)
{
    ld_error_t err;
    const ld_kind_def_t *def = ld_schema_kind(kind);
    cr_assert_not_null(def);
    ld_change_init(c);
    c->kind = kind;
    if (kind == LD_KIND_ORG)
        snprintf(c->record_id, sizeof c->record_id, "org-%" PRIu64, seq);
    else
        cr_assert_eq(ld_uuid_new(c->record_id, &err), 0);
    snprintf(c->origin, sizeof c->origin, "zhuyuan");
    c->seq = seq;
    c->hlc = ld_hlc_make(BASE_MS + seq, (uint16_t)seq);
    for (size_t i = 0; i < def->nfields; i++) {
        cr_assert_eq(ld_change_set(c, def->fields[i].name, sample_value(&def->fields[i]), &err),
                     0, "%s.%s: %s", def->name, def->fields[i].name, err.msg);
        ld_field_t *f = &c->fields[i];
        if (i % 2 == 1) {
            f->hlc = ld_hlc_make(BASE_MS - 1000, (uint16_t)i);
            snprintf(f->origin, sizeof f->origin, "dongguan");
        }
        if (i % 3 == 0) {
            f->base_hlc = ld_hlc_make(BASE_MS - 5000, (uint16_t)i);
            snprintf(f->base_origin, sizeof f->base_origin, "shenzhen");
        }
    }
    cr_assert_eq(ld_change_add_audience(c, "zhuyuan", &err), 0);
    cr_assert_eq(ld_change_add_audience(c, "dongguan", &err), 0);
    cr_assert_eq(ld_change_validate(c, &err), 0, "%s", err.msg);
}

static void assert_changes_equal(const ld_change_t *a, const ld_change_t *b)
{
    cr_assert_eq(a->kind, b->kind);
    cr_assert_str_eq(a->record_id, b->record_id);
    cr_assert_str_eq(a->origin, b->origin);
    cr_assert_eq(a->seq, b->seq);
    cr_assert_eq(a->hlc, b->hlc);
    cr_assert_eq(a->deleted, b->deleted);
    cr_assert_eq(a->nfields, b->nfields);
    for (size_t i = 0; i < a->nfields; i++) {
        const ld_field_t *fa = &a->fields[i], *fb = &b->fields[i];
        cr_assert_str_eq(fa->name, fb->name);
        cr_assert_str_eq(fa->value, fb->value, "field %s", fa->name);
        cr_assert_eq(fa->hlc, fb->hlc, "field %s", fa->name);
        cr_assert_str_eq(fa->origin, fb->origin);
        cr_assert_eq(fa->base_hlc, fb->base_hlc, "field %s", fa->name);
        cr_assert_str_eq(fa->base_origin, fb->base_origin);
    }
    cr_assert_eq(a->naudience, b->naudience);
    for (size_t i = 0; i < a->naudience; i++)
        cr_assert_str_eq(a->audience[i], b->audience[i]);
}

/* One change of every kind, in an array the caller frees with free_changes. */
static ld_change_t *all_kinds(size_t *n)
{
    *n = LD_KIND_COUNT - 1;
    ld_change_t *cs = calloc(*n, sizeof *cs);
    cr_assert_not_null(cs);
    for (size_t i = 0; i < *n; i++)
        make_change(&cs[i], (ld_kind_t)(i + 1), i + 1);
    return cs;
}

static void free_changes(ld_change_t *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ld_change_clear(&cs[i]);
    free(cs);
}

/* Encodes m, decodes the bytes as the same type into out. */
static void round_trip(const ld_msg_t *m, ld_msg_t *out)
{
    ld_error_t err;
    uint8_t *body = NULL;
    size_t len = 0;
    cr_assert_eq(ld_msg_encode(m, &body, &len, &err), 0, "encode %s: %s",
                 ld_msg_type_name(m->type), err.msg);
    cr_assert_eq(ld_msg_decode(m->type, body, len, out, &err), 0, "decode %s: %s",
                 ld_msg_type_name(m->type), err.msg);
    cr_assert_eq(out->type, m->type);
    free(body);
}

/* The bytes of a Push holding one change of every kind (caller frees). */
static uint8_t *valid_push(size_t *len)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_PUSH);
    m.u.push.n = n;
    m.u.push.changes = cs;
    uint8_t *body = NULL;
    ld_error_t err;
    cr_assert_eq(ld_msg_encode(&m, &body, len, &err), 0, "%s", err.msg);
    free_changes(cs, n);
    return body;
}

TestSuite(codec);

Test(codec, every_record_kind_round_trips_alone_with_all_fields_set)
{
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        ld_change_t c, d;
        ld_error_t err;
        make_change(&c, (ld_kind_t)k, 7);
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_change_unpack(bytes, len, &d, &err), 0, "%s", err.msg);
        assert_changes_equal(&c, &d);
        free(bytes);
        ld_change_clear(&c);
        ld_change_clear(&d);
    }
}

Test(codec, changes_packed_one_after_another_into_one_buffer_are_the_bytes_of_a_pack_each)
{
    ld_buf_t b = { NULL, 0, 0 };
    for (int pass = 0; pass < 2; pass++) {
        /* Large kinds and small ones in turn: the buffer grows and is reused. */
        for (int k = LD_KIND_COUNT - 1; k > LD_KIND_NONE; k--) {
            ld_change_t c, d;
            ld_error_t err;
            make_change(&c, (ld_kind_t)k, 7);
            uint8_t *bytes = NULL;
            size_t len = 0;
            cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
            cr_assert_eq(ld_change_pack_buf(&c, &b, &err), 0, "%s", err.msg);
            cr_assert_eq(b.len, len);
            cr_assert_eq(memcmp(b.data, bytes, len), 0);
            cr_assert_eq(ld_change_unpack(b.data, b.len, &d, &err), 0, "%s", err.msg);
            assert_changes_equal(&c, &d);
            free(bytes);
            ld_change_clear(&c);
            ld_change_clear(&d);
        }
    }
    ld_buf_free(&b);
}

Test(codec, a_push_of_all_ten_kinds_round_trips)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_PUSH);
    m.u.push.n = n;
    m.u.push.changes = cs;
    round_trip(&m, &out);
    cr_assert_eq(out.u.push.n, n);
    for (size_t i = 0; i < n; i++)
        assert_changes_equal(&cs[i], &out.u.push.changes[i]);
    ld_msg_clear(&out);
    free_changes(cs, n);
}

Test(codec, a_batch_of_all_ten_kinds_round_trips_with_positions_and_remaining)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    uint64_t positions[LD_KIND_COUNT];
    for (size_t i = 0; i < n; i++)
        positions[i] = 100 + 3 * i;
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_BATCH);
    m.u.batch.n = n;
    m.u.batch.changes = cs;
    m.u.batch.positions = positions;
    m.u.batch.remaining = 4242;
    round_trip(&m, &out);
    cr_assert_eq(out.u.batch.n, n);
    cr_assert_eq(out.u.batch.remaining, 4242);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(out.u.batch.positions[i], positions[i]);
        assert_changes_equal(&cs[i], &out.u.batch.changes[i]);
    }
    ld_msg_clear(&out);
    free_changes(cs, n);
}

Test(codec, an_empty_push_and_an_empty_batch_round_trip)
{
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_PUSH);
    round_trip(&m, &out);
    cr_assert_eq(out.u.push.n, 0);
    ld_msg_clear(&out);
    ld_msg_init(&m, LD_MSG_BATCH);
    m.u.batch.remaining = 9;
    round_trip(&m, &out);
    cr_assert_eq(out.u.batch.n, 0);
    cr_assert_eq(out.u.batch.remaining, 9);
    ld_msg_clear(&out);
}

Test(codec, hello_and_welcome_round_trip)
{
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_HELLO);
    m.u.hello.protocol_version = 1;
    m.u.hello.schema_version = 3;
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "dongguan");
    snprintf(m.u.hello.software, sizeof m.u.hello.software, "liangdi 0.1.0 两地");
    round_trip(&m, &out);
    cr_assert_eq(out.u.hello.protocol_version, 1);
    cr_assert_eq(out.u.hello.schema_version, 3);
    cr_assert_str_eq(out.u.hello.node_id, "dongguan");
    cr_assert_str_eq(out.u.hello.software, "liangdi 0.1.0 两地");
    ld_msg_clear(&out);

    ld_msg_init(&m, LD_MSG_WELCOME);
    m.u.welcome.protocol_version = 1;
    m.u.welcome.schema_version = 1;
    snprintf(m.u.welcome.node_id, sizeof m.u.welcome.node_id, "shenzhen.branch_2");
    m.u.welcome.pushed_upto = UINT64_MAX;
    m.u.welcome.mailbox_depth = 151;
    round_trip(&m, &out);
    cr_assert_str_eq(out.u.welcome.node_id, "shenzhen.branch_2");
    cr_assert_eq(out.u.welcome.pushed_upto, UINT64_MAX);
    cr_assert_eq(out.u.welcome.mailbox_depth, 151);
    ld_msg_clear(&out);
}

Test(codec, the_counter_messages_round_trip)
{
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_PUSH_ACK);
    m.u.push_ack.upto = 1287;
    round_trip(&m, &out);
    cr_assert_eq(out.u.push_ack.upto, 1287);

    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = UINT64_C(1) << 40;
    m.u.fetch.credit = 4096;
    round_trip(&m, &out);
    cr_assert_eq(out.u.fetch.cursor, UINT64_C(1) << 40);
    cr_assert_eq(out.u.fetch.credit, 4096);

    ld_msg_init(&m, LD_MSG_ACK);
    m.u.ack.upto = 0;
    round_trip(&m, &out);
    cr_assert_eq(out.u.ack.upto, 0);

    ld_msg_init(&m, LD_MSG_NOTIFY);
    m.u.notify.mailbox_depth = 13;
    round_trip(&m, &out);
    cr_assert_eq(out.u.notify.mailbox_depth, 13);
}

Test(codec, an_error_round_trips_with_its_chinese_message)
{
    ld_msg_t m, out;
    ld_msg_init(&m, LD_MSG_ERROR);
    m.u.error.code = LD_ERR_DENIED;
    snprintf(m.u.error.message, sizeof m.u.error.message, "节点 dongguan 无权发送给 shenzhen");
    snprintf(m.u.error.record_id, sizeof m.u.error.record_id,
             "0f8fad5b-d9cb-469f-a165-70867728950e");
    m.u.error.seq = 42;
    round_trip(&m, &out);
    cr_assert_eq(out.u.error.code, LD_ERR_DENIED);
    cr_assert_str_eq(out.u.error.message, "节点 dongguan 无权发送给 shenzhen");
    cr_assert_str_eq(out.u.error.record_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
    cr_assert_eq(out.u.error.seq, 42);
}

Test(codec, cleared_fields_and_a_zero_amount_round_trip_apart)
{
    ld_change_t c, d;
    ld_error_t err;
    ld_change_init(&c);
    c.kind = LD_KIND_ACTIVITY;
    cr_assert_eq(ld_uuid_new(c.record_id, &err), 0);
    snprintf(c.origin, sizeof c.origin, "dongguan");
    c.seq = 1;
    c.hlc = ld_hlc_make(BASE_MS, 0);
    cr_assert_eq(ld_change_set(&c, "amount", "0", &err), 0);
    cr_assert_eq(ld_change_set(&c, "month", "", &err), 0);
    cr_assert_eq(ld_change_set(&c, "note", "", &err), 0);
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_unpack(bytes, len, &d, &err), 0, "%s", err.msg);
    assert_changes_equal(&c, &d);
    free(bytes);
    ld_change_clear(&d);

    /* A cleared amount, enum and year stay cleared, not zero. */
    ld_change_clear(&c);
    c.kind = LD_KIND_MEMBER;
    cr_assert_eq(ld_uuid_new(c.record_id, &err), 0);
    snprintf(c.origin, sizeof c.origin, "dongguan");
    c.seq = 2;
    c.hlc = ld_hlc_make(BASE_MS, 1);
    cr_assert_eq(ld_change_set(&c, "gender", "", &err), 0);
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_unpack(bytes, len, &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ld_change_get(&d, "gender"), "");
    free(bytes);
    ld_change_clear(&c);
    ld_change_clear(&d);

    ld_change_init(&c);
    c.kind = LD_KIND_ACTIVITY;
    cr_assert_eq(ld_uuid_new(c.record_id, &err), 0);
    snprintf(c.origin, sizeof c.origin, "dongguan");
    c.seq = 3;
    c.hlc = ld_hlc_make(BASE_MS, 2);
    cr_assert_eq(ld_change_set(&c, "amount", "", &err), 0);
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_unpack(bytes, len, &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ld_change_get(&d, "amount"), "");
    free(bytes);
    ld_change_clear(&c);
    ld_change_clear(&d);
}

Test(codec, a_tombstone_round_trips_with_no_fields)
{
    ld_change_t c, d;
    ld_error_t err;
    ld_change_init(&c);
    c.kind = LD_KIND_CARE;
    cr_assert_eq(ld_uuid_new(c.record_id, &err), 0);
    snprintf(c.origin, sizeof c.origin, "zhuyuan");
    c.seq = 9;
    c.hlc = ld_hlc_make(BASE_MS, 9);
    c.deleted = true;
    cr_assert_eq(ld_change_add_audience(&c, "zhuyuan", &err), 0);
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_unpack(bytes, len, &d, &err), 0, "%s", err.msg);
    assert_changes_equal(&c, &d);
    cr_assert(d.deleted);
    free(bytes);
    ld_change_clear(&c);
    ld_change_clear(&d);
}

Test(codec, a_push_built_from_packed_changes_decodes_to_the_same_changes)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_buf_t b = { NULL, 0, 0 };
    ld_error_t err;
    for (size_t i = 0; i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&cs[i], &bytes, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_push_append(&b, bytes, len), 0);
        free(bytes);
    }
    ld_msg_t out;
    cr_assert_eq(ld_msg_decode(LD_MSG_PUSH, b.data, b.len, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(out.u.push.n, n);
    for (size_t i = 0; i < n; i++)
        assert_changes_equal(&cs[i], &out.u.push.changes[i]);
    ld_msg_clear(&out);

    /* The buffer is reusable after a reset, and a second body decodes alike. */
    ld_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(ld_msg_decode(LD_MSG_PUSH, b.data, b.len, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(out.u.push.n, 0);
    ld_msg_clear(&out);
    ld_buf_free(&b);
    ld_buf_free(&b);
    free_changes(cs, n);
}

Test(codec, a_batch_built_from_packed_changes_decodes_to_the_same_entries)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_buf_t b = { NULL, 0, 0 };
    ld_error_t err;
    for (size_t i = 0; i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&cs[i], &bytes, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(&b, UINT64_C(1) << (20 + i), bytes, len), 0);
        free(bytes);
    }
    cr_assert_eq(ld_batch_finish(&b, 300), 0);
    ld_msg_t out;
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, b.data, b.len, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(out.u.batch.n, n);
    cr_assert_eq(out.u.batch.remaining, 300);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(out.u.batch.positions[i], UINT64_C(1) << (20 + i));
        assert_changes_equal(&cs[i], &out.u.batch.changes[i]);
    }
    ld_msg_clear(&out);
    ld_msg_clear(&out);
    ld_buf_free(&b);
    free_changes(cs, n);
}

Test(codec, each_decoded_change_keeps_the_exact_bytes_it_arrived_in)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_buf_t push = { NULL, 0, 0 }, batch = { NULL, 0, 0 };
    uint8_t *bytes[LD_KIND_COUNT] = { NULL };
    size_t lens[LD_KIND_COUNT] = { 0 };
    ld_error_t err;
    cr_assert_leq(n, LD_KIND_COUNT);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ld_change_pack(&cs[i], &bytes[i], &lens[i], &err), 0, "%s", err.msg);
        cr_assert_eq(ld_push_append(&push, bytes[i], lens[i]), 0);
        cr_assert_eq(ld_batch_append(&batch, i + 1, bytes[i], lens[i]), 0);
    }
    cr_assert_eq(ld_batch_finish(&batch, 0), 0);
    ld_msg_t p, b;
    cr_assert_eq(ld_msg_decode(LD_MSG_PUSH, push.data, push.len, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, batch.data, batch.len, &b, &err), 0, "%s", err.msg);
    /* The input buffers go away: the messages hold their own copy. */
    memset(push.data, 0, push.len);
    memset(batch.data, 0, batch.len);
    for (size_t i = 0; i < n; i++) {
        const ld_change_t *pc = &p.u.push.changes[i], *bc = &b.u.batch.changes[i];
        cr_assert_eq(pc->wire_len, lens[i]);
        cr_assert_eq(bc->wire_len, lens[i]);
        cr_assert_eq(memcmp(pc->wire, bytes[i], lens[i]), 0, "push change %zu", i);
        cr_assert_eq(memcmp(bc->wire, bytes[i], lens[i]), 0, "batch change %zu", i);
    }
    /* A copy owns its values and keeps no bytes; changing a change forgets them. */
    ld_change_t copy;
    ld_change_init(&copy);
    cr_assert_eq(ld_change_copy(&copy, &p.u.push.changes[0], &err), 0, "%s", err.msg);
    cr_assert_null(copy.wire);
    ld_msg_clear(&p);
    assert_changes_equal(&cs[0], &copy);
    ld_change_t *bc = &b.u.batch.changes[0];
    cr_assert_eq(ld_change_add_audience(bc, "xinjiang", &err), 0, "%s", err.msg);
    cr_assert_null(bc->wire);
    ld_msg_clear(&b);
    ld_change_clear(&copy);
    for (size_t i = 0; i < n; i++)
        free(bytes[i]);
    ld_buf_free(&push);
    ld_buf_free(&batch);
    free_changes(cs, n);
}

/* Writes tag and a length-delimited payload at out; returns the bytes written. */
static size_t put_len_field(uint8_t *out, uint8_t tag, const uint8_t *data, size_t len)
{
    size_t k = 0;
    out[k++] = tag;
    for (size_t v = len;; v >>= 7) {
        out[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memcpy(out + k, data, len);
    return k + len;
}

Test(codec, a_batch_entry_holding_two_changes_is_refused)
{
    ld_change_t c;
    make_change(&c, LD_KIND_VISIT, 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ld_error_t err;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0, "%s", err.msg);
    cr_assert_lt(len, 1000);
    /* Entry { position = 1, change = C, change = C }: protobuf would merge the two. */
    uint8_t entry[2100], body[2200];
    size_t e = 0;
    entry[e++] = 0x08;
    entry[e++] = 1;
    e += put_len_field(entry + e, 0x12, bytes, len);
    e += put_len_field(entry + e, 0x12, bytes, len);
    size_t k = put_len_field(body, 0x0a, entry, e);
    ld_msg_t out;
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, body, k, &out, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "batch entry 1 holds 2 changes") != NULL, "%s", err.msg);
    cr_assert_eq(ld_batch_peek(body, k, &out, &err), LD_EINVAL, "a peek refuses it alike");
    cr_assert(strstr(err.msg, "batch entry 1 holds 2 changes") != NULL, "%s", err.msg);
    free(bytes);
    ld_change_clear(&c);
}

Test(codec, a_batch_whose_positions_go_backwards_is_refused)
{
    ld_change_t c;
    make_change(&c, LD_KIND_VISIT, 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ld_error_t err;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0);
    ld_buf_t b = { NULL, 0, 0 };
    cr_assert_eq(ld_batch_append(&b, 5, bytes, len), 0);
    cr_assert_eq(ld_batch_append(&b, 5, bytes, len), 0);
    ld_msg_t out;
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, b.data, b.len, &out, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "position") != NULL, "%s", err.msg);
    ld_buf_free(&b);
    free(bytes);
    ld_change_clear(&c);
}

Test(codec, every_truncation_of_a_push_is_refused_or_a_shorter_valid_push)
{
    size_t len;
    uint8_t *body = valid_push(&len);
    size_t refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        ld_msg_t out;
        ld_error_t err;
        ld_error_clear(&err);
        int rc = ld_msg_decode(LD_MSG_PUSH, body, cut, &out, &err);
        if (rc == 0) {
            cr_assert_lt(out.u.push.n, LD_KIND_COUNT - 1);   /* cut at a change boundary */
            ld_msg_clear(&out);
        } else {
            cr_assert_lt(rc, 0);
            cr_assert_neq(err.msg[0], '\0');
            refused++;
        }
    }
    cr_assert_gt(refused, len - 20, "only %zu of %zu truncations refused", refused, len);
    free(body);
}

Test(codec, a_body_over_the_size_limit_is_refused_before_parsing)
{
    size_t len = LD_BODY_MAX + 1;
    uint8_t *big = calloc(1, len);
    cr_assert_not_null(big);
    for (int t = LD_MSG_HELLO; t < LD_MSG_COUNT; t++) {
        ld_msg_t out;
        ld_error_t err;
        cr_assert_eq(ld_msg_decode((ld_msg_type_t)t, big, len, &out, &err), LD_ETOOBIG,
                     "type %s", ld_msg_type_name((ld_msg_type_t)t));
        cr_assert_neq(err.msg[0], '\0');
    }
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(big, len, &c, &err), LD_ETOOBIG);
    free(big);
}

Test(codec, a_push_of_more_than_the_batch_limit_is_refused)
{
    ld_change_t c;
    make_change(&c, LD_KIND_CONTACT, 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ld_error_t err;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), 0);
    ld_buf_t b = { NULL, 0, 0 };
    for (unsigned i = 0; i <= LD_BATCH_MAX; i++)
        cr_assert_eq(ld_push_append(&b, bytes, len), 0);
    ld_msg_t out;
    cr_assert_eq(ld_msg_decode(LD_MSG_PUSH, b.data, b.len, &out, &err), LD_ETOOBIG);
    cr_assert(strstr(err.msg, "4097") != NULL, "%s", err.msg);

    /* and encoding one is refused too */
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_PUSH);
    m.u.push.n = LD_BATCH_MAX + 1;
    m.u.push.changes = &c;                 /* never read: the count is checked first */
    uint8_t *enc = NULL;
    size_t enclen = 0;
    cr_assert_eq(ld_msg_encode(&m, &enc, &enclen, &err), LD_ETOOBIG);
    cr_assert_null(enc);
    ld_buf_free(&b);
    free(bytes);
    ld_change_clear(&c);
}

Test(codec, appending_past_the_body_limit_is_refused_and_appends_nothing)
{
    size_t len = LD_BODY_MAX - 16;
    uint8_t *big = calloc(1, len);
    cr_assert_not_null(big);
    ld_buf_t b = { NULL, 0, 0 };
    cr_assert_eq(ld_push_append(&b, big, len), 0);
    size_t before = b.len;
    cr_assert_eq(ld_push_append(&b, big, 64), LD_ETOOBIG);
    cr_assert_eq(ld_batch_append(&b, 1, big, 64), LD_ETOOBIG);
    cr_assert_eq(b.len, before);
    ld_buf_free(&b);
    free(big);
}

Test(codec, bytes_that_are_not_protobuf_are_refused_as_malformed)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    for (int t = LD_MSG_HELLO; t < LD_MSG_COUNT; t++) {
        ld_msg_t out;
        ld_error_t err;
        ld_error_clear(&err);
        cr_assert_eq(ld_msg_decode((ld_msg_type_t)t, junk, sizeof junk, &out, &err), LD_EPROTO,
                     "type %s", ld_msg_type_name((ld_msg_type_t)t));
        cr_assert_neq(err.msg[0], '\0');
    }
}

Test(codec, an_unknown_message_type_is_refused_both_ways)
{
    ld_msg_t m;
    ld_error_t err;
    uint8_t *out = NULL;
    size_t len = 0;
    ld_msg_init(&m, LD_MSG_COUNT);
    cr_assert_eq(ld_msg_encode(&m, &out, &len, &err), LD_ETYPE);
    cr_assert_eq(ld_msg_decode(LD_MSG_NONE, (const uint8_t *)"", 0, &m, &err), LD_ETYPE);
    cr_assert_eq(ld_msg_decode((ld_msg_type_t)200, (const uint8_t *)"", 0, &m, &err), LD_ETYPE);
}

Test(codec, a_hello_with_a_bad_node_id_is_refused)
{
    ld_msg_t m, out;
    ld_error_t err;
    uint8_t *body = NULL;
    size_t len = 0;
    ld_msg_init(&m, LD_MSG_HELLO);
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "Dongguan");
    cr_assert_eq(ld_msg_encode(&m, &body, &len, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "Dongguan") != NULL, "%s", err.msg);

    /* A peer's Hello with an empty node id (the proto3 default) is refused on decode. */
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = 1;
    cr_assert_eq(ld_msg_encode(&m, &body, &len, &err), 0);
    cr_assert_eq(ld_msg_decode(LD_MSG_HELLO, body, len, &out, &err), LD_EINVAL);
    free(body);
}

Test(codec, a_welcome_or_hello_with_a_long_or_broken_string_is_refused)
{
    /* Hello{node_id=3: "zhuyuan", software=4: 0xC0 0xAF} (an overlong '/') */
    static const uint8_t overlong[] = { 0x1a, 7, 'z', 'h', 'u', 'y', 'u', 'a', 'n',
                                        0x22, 2, 0xc0, 0xaf };
    ld_msg_t out;
    ld_error_t err;
    cr_assert_eq(ld_msg_decode(LD_MSG_HELLO, overlong, sizeof overlong, &out, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "UTF-8") != NULL, "%s", err.msg);

    uint8_t longid[2 + 65 + 2];
    longid[0] = 0x1a;
    longid[1] = 65;
    memset(longid + 2, 'a', 65);
    cr_assert_eq(ld_msg_decode(LD_MSG_WELCOME, longid, 67, &out, &err), LD_EINVAL);
}

Test(codec, an_error_with_an_overlong_message_is_cut_at_a_character_boundary)
{
    /* Error{message=2: 600 bytes of 两 (3 bytes each)} */
    size_t n = 200 * 3;
    uint8_t *body = malloc(3 + n);
    body[0] = 0x12;
    body[1] = (uint8_t)(0x80 | (n & 0x7f));
    body[2] = (uint8_t)(n >> 7);
    for (size_t i = 0; i < 200; i++)
        memcpy(body + 3 + 3 * i, "两", 3);
    ld_msg_t out;
    ld_error_t err;
    cr_assert_eq(ld_msg_decode(LD_MSG_ERROR, body, 3 + n, &out, &err), 0, "%s", err.msg);
    size_t got = strlen(out.u.error.message);
    cr_assert_eq(got, 510);                          /* 170 whole characters */
    cr_assert(ld_utf8_valid(out.u.error.message, got));
    free(body);
}

Test(codec, a_change_with_an_invalid_field_is_refused_naming_it)
{
    ld_change_t c;
    make_change(&c, LD_KIND_MEMBER, 3);
    /* Bypass ld_change_set to plant what a hostile peer could send. */
    free(c.fields[3].value);                         /* born */
    c.fields[3].value = strdup("2023-02-29");
    uint8_t *bytes = NULL;
    size_t len = 0;
    ld_error_t err;
    cr_assert_eq(ld_change_pack(&c, &bytes, &len, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "born") != NULL && strstr(err.msg, "2023-02-29") != NULL,
              "%s", err.msg);
    ld_change_clear(&c);
}

/* ------------------------------------------------- hand-built hostile bytes -- */

/* Appends a length-delimited field. */
static size_t put_bytes(uint8_t *out, uint8_t tag, const void *data, size_t len)
{
    out[0] = tag;
    out[1] = (uint8_t)len;                 /* short fields only */
    memcpy(out + 2, data, len);
    return 2 + len;
}

/* A Visit change (field 15) with `extra` bytes appended inside the Change. */
static size_t visit_change(uint8_t *out, const uint8_t *extra, size_t extra_len)
{
    size_t o = 0;
    o += put_bytes(out + o, 0x0a, "0f8fad5b-d9cb-469f-a165-70867728950e", 36);   /* record_id */
    o += put_bytes(out + o, 0x12, "zhuyuan", 7);                                 /* origin */
    out[o++] = 0x18; out[o++] = 1;                                               /* seq */
    out[o++] = 0x20; out[o++] = 5;                                               /* hlc */
    o += put_bytes(out + o, 0x32, "note", 4);                                    /* set */
    uint8_t visit[32];
    size_t v = put_bytes(visit, 0x22, "好", 3);                                  /* note */
    o += put_bytes(out + o, 0x7a, visit, v);                                     /* visit = 15 */
    if (extra_len > 0)
        memcpy(out + o, extra, extra_len);
    return o + extra_len;
}

Test(codec, hand_built_change_bytes_decode_as_expected)
{
    uint8_t buf[256];
    size_t len = visit_change(buf, NULL, 0);
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(buf, len, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.kind, LD_KIND_VISIT);
    cr_assert_str_eq(ld_change_get(&c, "note"), "好");
    ld_change_clear(&c);
}

Test(codec, a_stamp_or_base_naming_a_field_not_set_is_refused)
{
    uint8_t stamp[32], buf[256];
    size_t s = 0;
    s += put_bytes(stamp + s, 0x0a, "date", 4);
    stamp[s++] = 0x10; stamp[s++] = 9;
    uint8_t wrapped[40];
    size_t w = put_bytes(wrapped, 0x42, stamp, s);                 /* stamps = 8 */
    ld_change_t c;
    ld_error_t err;
    size_t len = visit_change(buf, wrapped, w);
    cr_assert_eq(ld_change_unpack(buf, len, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "date") != NULL, "%s", err.msg);

    wrapped[0] = 0x4a;                                             /* bases = 9 */
    len = visit_change(buf, wrapped, w);
    cr_assert_eq(ld_change_unpack(buf, len, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "date") != NULL, "%s", err.msg);
}

Test(codec, a_field_named_twice_in_set_is_refused)
{
    uint8_t buf[256];
    uint8_t extra[16];
    size_t e = put_bytes(extra, 0x32, "note", 4);                  /* set: note again */
    size_t len = visit_change(buf, extra, e);
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(buf, len, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "visit.note is set twice") != NULL, "%s", err.msg);
}

Test(codec, a_set_name_the_kind_lacks_and_an_unknown_enum_value_are_refused)
{
    uint8_t buf[256];
    uint8_t extra[16];
    size_t e = put_bytes(extra, 0x32, "grade", 5);
    size_t len = visit_change(buf, extra, e);
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(buf, len, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "grade") != NULL, "%s", err.msg);

    /* Contact (field 14) with channel = 9, set = [channel] */
    size_t o = 0;
    o += put_bytes(buf + o, 0x0a, "0f8fad5b-d9cb-469f-a165-70867728950e", 36);
    o += put_bytes(buf + o, 0x12, "zhuyuan", 7);
    buf[o++] = 0x18; buf[o++] = 1;
    buf[o++] = 0x20; buf[o++] = 5;
    o += put_bytes(buf + o, 0x32, "channel", 7);
    uint8_t contact[] = { 0x18, 9 };
    o += put_bytes(buf + o, 0x72, contact, sizeof contact);
    cr_assert_eq(ld_change_unpack(buf, o, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "channel") != NULL, "%s", err.msg);
}

Test(codec, a_negative_amount_on_the_wire_is_refused)
{
    uint8_t buf[256];
    size_t o = 0;
    o += put_bytes(buf + o, 0x0a, "0f8fad5b-d9cb-469f-a165-70867728950e", 36);
    o += put_bytes(buf + o, 0x12, "zhuyuan", 7);
    buf[o++] = 0x18; buf[o++] = 1;
    buf[o++] = 0x20; buf[o++] = 5;
    o += put_bytes(buf + o, 0x32, "amount", 6);
    /* Activity{amount=5: -2} as a ten-byte varint */
    uint8_t activity[] = { 0x28, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    buf[o++] = 0x82; buf[o++] = 0x01;                              /* activity = 16 */
    buf[o++] = sizeof activity;
    memcpy(buf + o, activity, sizeof activity);
    o += sizeof activity;
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(buf, o, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "amount") != NULL, "%s", err.msg);
}

Test(codec, a_change_without_a_record_is_refused)
{
    uint8_t buf[128];
    size_t o = 0;
    o += put_bytes(buf + o, 0x0a, "0f8fad5b-d9cb-469f-a165-70867728950e", 36);
    o += put_bytes(buf + o, 0x12, "zhuyuan", 7);
    buf[o++] = 0x18; buf[o++] = 1;
    buf[o++] = 0x20; buf[o++] = 5;
    ld_change_t c;
    ld_error_t err;
    cr_assert_eq(ld_change_unpack(buf, o, &c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "record") != NULL, "%s", err.msg);
}

/* ------------------------------------------------------------ random input -- */

/* xorshift64*: a seeded, reproducible PRNG. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Decodes `body` as every type: each either decodes to a message that validates (and
 * encodes again) or fails with a code and a message.  Returns how many decoded. */
static size_t refused_by_validation;     /* LD_EINVAL: parsed, then a field failed */

static int decode_every_type(const uint8_t *body, size_t len)
{
    int decoded = 0;
    for (int t = LD_MSG_HELLO; t < LD_MSG_COUNT; t++) {
        ld_msg_t m;
        ld_error_t err;
        ld_error_clear(&err);
        int rc = ld_msg_decode((ld_msg_type_t)t, body, len, &m, &err);
        if (rc != 0) {
            cr_assert_lt(rc, 0);
            cr_assert_geq(rc, LD_ECODE_MIN);
            cr_assert_eq(err.code, rc);
            cr_assert_neq(err.msg[0], '\0', "type %d failed with no message", t);
            if (rc == LD_EINVAL)
                refused_by_validation++;
            continue;
        }
        decoded++;
        if (t == LD_MSG_PUSH) {
            for (size_t i = 0; i < m.u.push.n; i++)
                cr_assert_eq(ld_change_validate(&m.u.push.changes[i], &err), 0, "%s", err.msg);
        } else if (t == LD_MSG_BATCH) {
            for (size_t i = 0; i < m.u.batch.n; i++)
                cr_assert_eq(ld_change_validate(&m.u.batch.changes[i], &err), 0, "%s", err.msg);
        }
        uint8_t *again = NULL;
        size_t again_len = 0;
        cr_assert_eq(ld_msg_encode(&m, &again, &again_len, &err), 0,
                     "decoded %s does not encode: %s", ld_msg_type_name((ld_msg_type_t)t), err.msg);
        free(again);
        ld_msg_clear(&m);
    }
    return decoded;
}

static void check_frame(const uint8_t *data, size_t len)
{
    ld_msg_type_t type = LD_MSG_NONE;
    unsigned version = 0;
    ld_error_t err;
    ld_error_clear(&err);
    int rc = ld_frame_parse(data, len, &type, &version, &err);
    if (rc == 0) {
        cr_assert(type > LD_MSG_NONE && type < LD_MSG_COUNT);
        cr_assert_eq(version, LD_PROTOCOL_VERSION);
    } else {
        cr_assert_lt(rc, 0);
        cr_assert_neq(err.msg[0], '\0');
    }
}

Test(codec, ten_thousand_random_inputs_decode_cleanly_or_fail_with_a_message, .timeout = 600)
{
    uint64_t seed = UINT64_C(0x6c69616e67646921);   /* fixed: failures reproduce */
    size_t push_len;
    uint8_t *push = valid_push(&push_len);
    uint8_t *buf = malloc(4096 + push_len + 64);
    cr_assert_not_null(buf);

    size_t decoded = 0;
    for (int round = 0; round < 10000; round++) {
        size_t len;
        if (round % 2 == 0) {
            len = (size_t)(rng_next(&seed) % 4097);            /* pure noise, 0..4096 */
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rng_next(&seed);
        } else {
            memcpy(buf, push, push_len);                        /* a mutated valid Push */
            len = push_len;
            int edits = 1 + (int)(rng_next(&seed) % 3);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)(rng_next(&seed) % len);
                switch (rng_next(&seed) % 4) {
                case 0: buf[at] = (uint8_t)rng_next(&seed); break;
                case 1: buf[at] ^= (uint8_t)(1u << (rng_next(&seed) % 8)); break;
                case 2: len = at + 1; break;                   /* truncate */
                default:                                        /* insert a byte */
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = (uint8_t)rng_next(&seed);
                    len++;
                    break;
                }
            }
        }
        check_frame(buf, len < LD_HEADER_SIZE ? len : LD_HEADER_SIZE);
        check_frame(buf, len);
        decoded += (size_t)decode_every_type(buf, len);
    }
    /* The inputs reached both outcomes: some decoded, some parsed but failed validation. */
    cr_assert_gt(decoded, 0);
    cr_assert_gt(refused_by_validation, 0);
    cr_log_info("random inputs: %zu decodes succeeded, %zu refused by validation", decoded,
                refused_by_validation);
    /* The unmutated Push itself decodes: the mutations started from a valid message. */
    cr_assert_geq(decode_every_type(push, push_len), 1);
    free(buf);
    free(push);
}

/* ---- a Batch read for its framing alone (ld_batch_peek) ---- */

/* The bytes of one packed visit change, of under 1,000 bytes (caller frees). */
static uint8_t *packed_visit(size_t *len)
{
    ld_change_t c;
    ld_error_t err;
    uint8_t *bytes = NULL;
    make_change(&c, LD_KIND_VISIT, 1);
    cr_assert_eq(ld_change_pack(&c, &bytes, len, &err), 0, "%s", err.msg);
    cr_assert_lt(*len, 1000);
    ld_change_clear(&c);
    return bytes;
}

/* Peeks body and asserts it gives exactly what ld_msg_decode gives of positions, count
 * and remaining; the peek holds no changes. */
static void assert_peek_agrees(const uint8_t *body, size_t len, const ld_msg_t *full)
{
    ld_msg_t peek;
    ld_error_t err;
    cr_assert_eq(ld_batch_peek(body, len, &peek, &err), 0, "%s", err.msg);
    cr_assert_eq(peek.type, LD_MSG_BATCH);
    cr_assert_null(peek.u.batch.changes);
    cr_assert_eq(peek.u.batch.n, full->u.batch.n);
    cr_assert_eq(peek.u.batch.remaining, full->u.batch.remaining);
    for (size_t i = 0; i < full->u.batch.n; i++)
        cr_assert_eq(peek.u.batch.positions[i], full->u.batch.positions[i], "entry %zu", i);
    ld_msg_clear(&peek);
}

/* A Batch body in b of one change of every kind at positions 10, 20, ..., then
 * `remaining`; returns the number of entries. */
static size_t all_kinds_batch(ld_buf_t *b, uint64_t remaining)
{
    size_t n;
    ld_change_t *cs = all_kinds(&n);
    ld_error_t err;
    for (size_t i = 0; i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&cs[i], &bytes, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(b, 10 * (i + 1), bytes, len), 0);
        free(bytes);
    }
    cr_assert_eq(ld_batch_finish(b, remaining), 0);
    free_changes(cs, n);
    return n;
}

Test(codec, a_peeked_batch_gives_the_positions_and_remaining_a_decode_gives)
{
    ld_buf_t b = { NULL, 0, 0 };
    ld_error_t err;
    size_t n = all_kinds_batch(&b, 4321);
    ld_msg_t full;
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, b.data, b.len, &full, &err), 0, "%s", err.msg);
    cr_assert_eq(full.u.batch.n, n);
    assert_peek_agrees(b.data, b.len, &full);
    ld_msg_clear(&full);

    /* An empty batch: no entries, and what remains. */
    ld_buf_reset(&b);
    cr_assert_eq(ld_batch_finish(&b, 7), 0);
    ld_msg_t peek;
    cr_assert_eq(ld_batch_peek(b.data, b.len, &peek, &err), 0, "%s", err.msg);
    cr_assert_eq(peek.u.batch.n, 0);
    cr_assert_eq(peek.u.batch.remaining, 7);
    ld_msg_clear(&peek);
    ld_buf_free(&b);
}

Test(codec, a_peek_does_not_read_the_changes_a_decode_refuses)
{
    size_t len = 0;
    uint8_t *bytes = packed_visit(&len);
    ld_error_t err;
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff };    /* a varint cut short */
    ld_buf_t b = { NULL, 0, 0 };
    cr_assert_eq(ld_batch_append(&b, 3, bytes, len), 0);
    cr_assert_eq(ld_batch_append(&b, 9, garbage, sizeof garbage), 0);
    cr_assert_eq(ld_batch_finish(&b, 0), 0);

    ld_msg_t m;
    cr_assert_eq(ld_batch_peek(b.data, b.len, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.u.batch.n, 2);
    cr_assert_eq(m.u.batch.positions[0], 3);
    cr_assert_eq(m.u.batch.positions[1], 9);
    ld_msg_clear(&m);
    /* The decode that applying does refuses it. */
    cr_assert_neq(ld_msg_decode(LD_MSG_BATCH, b.data, b.len, &m, &err), 0);
    ld_buf_free(&b);
    free(bytes);
}

Test(codec, a_peek_refuses_what_breaks_the_framing_naming_it)
{
    size_t len = 0;
    uint8_t *bytes = packed_visit(&len);
    ld_error_t err;
    ld_msg_t m;
    uint8_t entry[2100], body[2200];
    size_t e, k;

    /* An entry without its change (two changes: see the decode's test). */
    e = 0;
    entry[e++] = 0x08;
    entry[e++] = 4;
    k = put_len_field(body, 0x0a, entry, e);
    cr_assert_eq(ld_batch_peek(body, k, &m, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "batch entry 1 holds 0 changes") != NULL, "%s", err.msg);

    /* Position 0, and a position not after the one before. */
    ld_buf_t b = { NULL, 0, 0 };
    cr_assert_eq(ld_batch_append(&b, 0, bytes, len), 0);
    cr_assert_eq(ld_batch_peek(b.data, b.len, &m, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "batch entry 1: position 0") != NULL, "%s", err.msg);
    ld_buf_reset(&b);
    cr_assert_eq(ld_batch_append(&b, 5, bytes, len), 0);
    cr_assert_eq(ld_batch_append(&b, 5, bytes, len), 0);
    cr_assert_eq(ld_batch_peek(b.data, b.len, &m, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "batch entry 2: position 5") != NULL, "%s", err.msg);

    /* `remaining` as a string, a position as a string. */
    static const uint8_t remaining_len[] = { 0x12, 0x01, 0x05 };
    cr_assert_eq(ld_batch_peek(remaining_len, sizeof remaining_len, &m, &err), LD_EPROTO);
    cr_assert(strstr(err.msg, "batch field 2 has wire type 2") != NULL, "%s", err.msg);
    e = put_len_field(entry, 0x0a, (const uint8_t *)"7", 1);
    e += put_len_field(entry + e, 0x12, bytes, len);
    k = put_len_field(body, 0x0a, entry, e);
    cr_assert_eq(ld_batch_peek(body, k, &m, &err), LD_EPROTO);
    cr_assert(strstr(err.msg, "batch entry 1: field 1 has wire type 2") != NULL, "%s", err.msg);

    /* Keys and lengths protobuf-c would not read as this walk does: a key of six bytes,
     * a key past 32 bits, field number 0, a length of six bytes. */
    static const uint8_t key6[] = { 0x90, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05 };
    static const uint8_t key33[] = { 0x8a, 0x80, 0x80, 0x80, 0x10, 0x00 };
    static const uint8_t field0[] = { 0x00, 0x05 };
    static const uint8_t len6[] = { 0x1a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x41 };
    const struct { const uint8_t *b; size_t n; const char *says; } odd[] = {
        { key6, sizeof key6, "truncated field key at byte 0" },
        { key33, sizeof key33, "is not a field" },
        { field0, sizeof field0, "field key 0 at byte 0 is not a field" },
        { len6, sizeof len6, "truncated length at byte 1" },
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cr_assert_eq(ld_batch_peek(odd[i].b, odd[i].n, &m, &err), LD_EPROTO, "case %zu", i);
        cr_assert(strstr(err.msg, odd[i].says) != NULL, "case %zu: %s", i, err.msg);
        cr_assert_neq(ld_msg_decode(LD_MSG_BATCH, odd[i].b, odd[i].n, &m, &err), 0,
                      "case %zu: the decode refuses it too", i);
    }

    /* A body cut short inside an entry. */
    ld_buf_reset(&b);
    cr_assert_eq(ld_batch_append(&b, 5, bytes, len), 0);
    cr_assert_eq(ld_batch_peek(b.data, b.len - 1, &m, &err), LD_EPROTO);

    /* More entries than a batch may hold: refused before anything is allocated. */
    ld_buf_reset(&b);
    for (uint64_t pos = 1; pos <= LD_BATCH_MAX + 1; pos++)
        cr_assert_eq(ld_batch_append(&b, pos, (const uint8_t *)"", 0), 0);
    cr_assert_eq(ld_batch_peek(b.data, b.len, &m, &err), LD_ETOOBIG);
    cr_assert(strstr(err.msg, "at most 4096") != NULL, "%s", err.msg);

    /* Over the body limit. */
    cr_assert_eq(ld_batch_peek(b.data, (size_t)LD_BODY_MAX + 1, &m, &err), LD_ETOOBIG);
    ld_buf_free(&b);
    free(bytes);
}

Test(codec, on_mutated_batches_a_peek_accepts_every_body_a_decode_accepts_and_agrees)
{
    uint64_t seed = UINT64_C(0x7065656b62617463);   /* fixed: failures reproduce */
    ld_buf_t valid = { NULL, 0, 0 };
    all_kinds_batch(&valid, 99);
    uint8_t *buf = malloc(valid.len + 64);
    cr_assert_not_null(buf);
    size_t both = 0, peek_only = 0, neither = 0;
    for (int round = 0; round < 3000; round++) {
        size_t len = valid.len;
        memcpy(buf, valid.data, len);
        int edits = 1 + (int)(rng_next(&seed) % 2);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rng_next(&seed) % len);
            switch (rng_next(&seed) % 3) {
            case 0: buf[at] = (uint8_t)rng_next(&seed); break;
            case 1: buf[at] ^= (uint8_t)(1u << (rng_next(&seed) % 8)); break;
            default: len = at + 1; break;
            }
        }
        ld_msg_t full, peek;
        ld_error_t derr, perr;
        int drc = ld_msg_decode(LD_MSG_BATCH, buf, len, &full, &derr);
        int prc = ld_batch_peek(buf, len, &peek, &perr);
        if (prc != 0) {
            cr_assert_neq(perr.msg[0], '\0');
            cr_assert_neq(drc, 0, "round %d: the decode took what the peek refused: %s",
                          round, perr.msg);
            neither++;
        } else if (drc == 0) {
            assert_peek_agrees(buf, len, &full);
            both++;
        } else {
            /* a change inside is broken: applying refuses it, naming the entry; never
             * the framing, which the peek has checked */
            cr_assert(strstr(derr.msg, "batch entry") != NULL, "round %d: %s", round, derr.msg);
            peek_only++;
        }
        if (drc == 0)
            ld_msg_clear(&full);
        if (prc == 0)
            ld_msg_clear(&peek);
    }
    cr_assert_gt(both, 0);
    cr_assert_gt(peek_only, 0);
    cr_assert_gt(neither, 0);
    cr_log_info("mutated batches: %zu both read, %zu peeked only, %zu neither", both,
                peek_only, neither);
    free(buf);
    ld_buf_free(&valid);
}

/* ---- a Push or a Batch read a change at a time (ld_change_reader) ---- */

/* Reads every change of body with a reader into a decoded message's order, checking
 * each against full (a decode of the same body): its fields, position and the bytes it
 * borrows from body itself.  The reader's return from its last call. */
static int read_all_agreeing(ld_msg_type_t type, const uint8_t *body, size_t len,
                             const ld_msg_t *full, size_t *read, ld_error_t *err)
{
    ld_change_reader_t r;
    ld_change_t c;
    uint64_t position = 0;
    bool batch = type == LD_MSG_BATCH;
    int rc = ld_change_reader_init(&r, type, body, len, err);
    *read = 0;
    if (rc != 0)
        return rc;
    while ((rc = ld_change_reader_next(&r, &c, &position, err)) == 1) {
        size_t i = (*read)++;
        if (full != NULL) {
            const ld_change_t *want = batch ? &full->u.batch.changes[i] : &full->u.push.changes[i];
            cr_assert_lt(i, batch ? full->u.batch.n : full->u.push.n);
            assert_changes_equal(want, &c);
            cr_assert_eq(position, batch ? full->u.batch.positions[i] : 0);
            cr_assert_eq(c.wire_len, want->wire_len);
            cr_assert_eq(memcmp(c.wire, want->wire, c.wire_len), 0);
        }
        cr_assert(c.wire >= body && c.wire + c.wire_len <= body + len,
                  "change %zu's bytes are not the body's", i);
    }
    ld_change_reader_clear(&r);
    return rc;
}

Test(codec, a_change_reader_reads_a_push_and_a_batch_as_a_decode_does)
{
    ld_error_t err;
    size_t len, read = 0;
    uint8_t *push = valid_push(&len);
    ld_msg_t full;
    cr_assert_eq(ld_msg_decode(LD_MSG_PUSH, push, len, &full, &err), 0, "%s", err.msg);
    cr_assert_eq(read_all_agreeing(LD_MSG_PUSH, push, len, &full, &read, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(read, full.u.push.n);
    ld_msg_clear(&full);
    free(push);

    ld_buf_t b = { NULL, 0, 0 };
    size_t n = all_kinds_batch(&b, 77);
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, b.data, b.len, &full, &err), 0, "%s", err.msg);
    cr_assert_eq(read_all_agreeing(LD_MSG_BATCH, b.data, b.len, &full, &read, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(read, n);
    ld_change_reader_t r;
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_BATCH, b.data, b.len, &err), 0);
    cr_assert_eq(r.count, n);
    cr_assert_eq(r.remaining, 77);
    ld_change_reader_clear(&r);
    ld_change_reader_clear(&r);           /* twice is safe */
    ld_msg_clear(&full);
    ld_buf_free(&b);
}

Test(codec, a_change_reader_stops_at_the_first_change_it_cannot_read_naming_it)
{
    ld_change_t cs[3];
    ld_buf_t b = { NULL, 0, 0 };
    ld_error_t err;
    for (int i = 0; i < 3; i++) {
        make_change(&cs[i], LD_KIND_VISIT, (uint64_t)i + 1);
        if (i == 1)
            cs[i].hlc = 0;                /* packed all the same: no clock stamp */
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack_valid(&cs[i], &bytes, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(&b, 10 * ((uint64_t)i + 1), bytes, len), 0);
        free(bytes);
    }
    cr_assert_eq(ld_batch_finish(&b, 0), 0);
    ld_change_reader_t r;
    ld_change_t c;
    uint64_t position = 0;
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_BATCH, b.data, b.len, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(ld_change_reader_next(&r, &c, &position, &err), 1, "%s", err.msg);
    cr_assert_eq(position, 10);
    assert_changes_equal(&cs[0], &c);
    cr_assert_eq(ld_change_reader_next(&r, &c, &position, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "batch entry 2 (position 20)") != NULL, "%s", err.msg);
    cr_assert_eq(c.nfields, 0, "a change that failed holds nothing");
    cr_assert_eq(ld_change_reader_next(&r, &c, &position, &err), 0, "nothing after it");
    ld_change_reader_clear(&r);
    ld_buf_free(&b);
    for (int i = 0; i < 3; i++)
        ld_change_clear(&cs[i]);
}

Test(codec, a_change_reader_refuses_at_its_start_what_breaks_the_framing)
{
    ld_change_reader_t r;
    ld_error_t err;
    /* a Push of one change more than the limit: empty changes, two bytes each */
    size_t len = 2 * ((size_t)LD_BATCH_MAX + 1);
    uint8_t *body = calloc(len, 1);
    cr_assert_not_null(body);
    for (size_t i = 0; i < len; i += 2)
        body[i] = 0x0a;
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_PUSH, body, len, &err), LD_ETOOBIG);
    cr_assert(strstr(err.msg, "at most") != NULL, "%s", err.msg);
    ld_change_reader_clear(&r);
    free(body);
    const uint8_t not_a_message[] = { 0x08, 0x01 };      /* field 1 as a number */
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_PUSH, not_a_message, 2, &err), LD_EPROTO);
    cr_assert(strstr(err.msg, "push entry 1 is not a message") != NULL, "%s", err.msg);
    const uint8_t remaining_as_bytes[] = { 0x12, 0x00 }; /* Batch.remaining, length-delimited */
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_BATCH, remaining_as_bytes, 2, &err),
                 LD_EPROTO);
    cr_assert(strstr(err.msg, "wire type 2") != NULL, "%s", err.msg);
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_HELLO, not_a_message, 2, &err), LD_EINVAL);
    const uint8_t cut[] = { 0x0a, 0x05, 0x01 };          /* runs past the end */
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_BATCH, cut, 3, &err), LD_EPROTO);
    /* an empty body is an empty Push */
    cr_assert_eq(ld_change_reader_init(&r, LD_MSG_PUSH, NULL, 0, &err), 0, "%s", err.msg);
    ld_change_t c;
    uint64_t position = 1;
    cr_assert_eq(ld_change_reader_next(&r, &c, &position, &err), 0);
    cr_assert_eq(position, 0);
    ld_change_reader_clear(&r);
}

/* Checks a body a reader read whole against protobuf-c's own unpacking of it (the
 * generated code, which the reader does not use): what the reader takes, protobuf-c
 * takes too, with as many entries, the same positions and `remaining`; what protobuf-c
 * refuses, the reader has refused.  rrc is the reader's result, read its count.  True
 * when protobuf-c refused the body. */
static bool assert_protobuf_agrees(ld_msg_type_t type, const uint8_t *body, size_t len,
                                   int rrc, size_t read, int round)
{
    if (type == LD_MSG_PUSH) {
        Liangdi__Push *pb = liangdi__push__unpack(NULL, len, body);
        if (pb == NULL) {
            cr_assert_lt(rrc, 0, "round %d: the reader took a Push protobuf-c refuses", round);
            return true;
        }
        if (rrc == 0)
            cr_assert_eq(pb->n_changes, read, "round %d", round);
        liangdi__push__free_unpacked(pb, NULL);
        return false;
    }
    Liangdi__Batch *pb = liangdi__batch__unpack(NULL, len, body);
    if (pb == NULL) {
        cr_assert_lt(rrc, 0, "round %d: the reader took a Batch protobuf-c refuses", round);
        return true;
    }
    if (rrc == 0) {
        ld_change_reader_t r;
        ld_change_t c;
        ld_error_t err;
        uint64_t position = 0;
        cr_assert_eq(pb->n_entries, read, "round %d", round);
        cr_assert_eq(ld_change_reader_init(&r, type, body, len, &err), 0);
        cr_assert_eq(r.remaining, pb->remaining, "round %d", round);
        for (size_t i = 0; i < read; i++) {
            cr_assert_eq(ld_change_reader_next(&r, &c, &position, &err), 1);
            cr_assert_eq(position, pb->entries[i]->position, "round %d entry %zu", round, i);
            cr_assert_eq(c.seq, pb->entries[i]->change->seq, "round %d entry %zu", round, i);
        }
        ld_change_reader_clear(&r);
    }
    liangdi__batch__free_unpacked(pb, NULL);
    return false;
}

Test(codec, on_mutated_pushes_and_batches_a_reader_agrees_with_the_decode_and_protobuf_c)
{
    uint64_t seed = UINT64_C(0x7265616465727321);   /* fixed: failures reproduce */
    ld_buf_t batch = { NULL, 0, 0 };
    all_kinds_batch(&batch, 5);
    size_t push_len = 0;
    uint8_t *push = valid_push(&push_len);
    size_t most = batch.len > push_len ? batch.len : push_len;
    uint8_t *buf = malloc(most);
    cr_assert_not_null(buf);
    size_t read_whole = 0, refused = 0, protobuf_refused = 0;
    for (int round = 0; round < 2000; round++) {
        ld_msg_type_t type = round % 2 ? LD_MSG_BATCH : LD_MSG_PUSH;
        const uint8_t *valid = type == LD_MSG_BATCH ? batch.data : push;
        size_t len = type == LD_MSG_BATCH ? batch.len : push_len;
        memcpy(buf, valid, len);
        size_t at = (size_t)(rng_next(&seed) % len);
        if (rng_next(&seed) % 4 == 0)
            len = at + 1;
        else
            buf[at] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
        ld_msg_t full;
        ld_error_t derr, rerr;
        size_t read = 0;
        int drc = ld_msg_decode(type, buf, len, &full, &derr);
        int rrc = read_all_agreeing(type, buf, len, drc == 0 ? &full : NULL, &read, &rerr);
        if (assert_protobuf_agrees(type, buf, len, rrc, read, round))
            protobuf_refused++;
        if (drc == 0) {
            cr_assert_eq(rrc, 0, "round %d: the reader refused what a decode took: %s",
                         round, rerr.msg);
            cr_assert_eq(read, type == LD_MSG_BATCH ? full.u.batch.n : full.u.push.n);
            ld_msg_clear(&full);
            read_whole++;
        } else {
            cr_assert_lt(rrc, 0, "round %d: the reader took what a decode refused: %s",
                         round, derr.msg);
            cr_assert_str_eq(rerr.msg, derr.msg, "round %d", round);
            refused++;
        }
    }
    cr_assert_gt(read_whole, 0);
    cr_assert_gt(refused, 0);
    cr_assert_gt(protobuf_refused, 0);
    free(buf);
    free(push);
    ld_buf_free(&batch);
}
