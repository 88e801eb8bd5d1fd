/* test_frame.c: the header frame: written at the current version, parsed back, and
 * foreign, mismatched, short and unknown-type headers refused with a message. */
#include <criterion/criterion.h>
#include <string.h>

#include "frame.h"
#include "schema.h"

TestSuite(frame);

Test(frame, every_message_type_round_trips_through_its_header)
{
    for (int t = LD_MSG_HELLO; t < LD_MSG_COUNT; t++) {
        uint8_t h[LD_HEADER_SIZE];
        ld_frame_header((ld_msg_type_t)t, h);
        cr_assert_eq(h[0], 'L');
        cr_assert_eq(h[1], 'D');
        ld_msg_type_t type = LD_MSG_NONE;
        unsigned version = 0;
        ld_error_t err;
        cr_assert_eq(ld_frame_parse(h, sizeof h, &type, &version, &err), 0, "%s", err.msg);
        cr_assert_eq(type, (ld_msg_type_t)t);
        cr_assert_eq(version, LD_PROTOCOL_VERSION);
    }
}

Test(frame, a_header_of_the_wrong_size_is_malformed)
{
    uint8_t h[LD_HEADER_SIZE + 1];
    ld_frame_header(LD_MSG_PUSH, h);
    h[LD_HEADER_SIZE] = 0;
    ld_msg_type_t type;
    unsigned version;
    ld_error_t err;
    for (size_t len = 0; len <= sizeof h; len++) {
        if (len == LD_HEADER_SIZE)
            continue;
        ld_error_clear(&err);
        cr_assert_eq(ld_frame_parse(h, len, &type, &version, &err), LD_EPROTO, "len %zu", len);
        cr_assert(strstr(err.msg, "header") != NULL, "%s", err.msg);
    }
    cr_assert_eq(ld_frame_parse(NULL, 0, &type, &version, &err), LD_EPROTO);
}

Test(frame, a_foreign_signature_is_refused_as_not_liangdi_traffic)
{
    const uint8_t http[LD_HEADER_SIZE] = { 'G', 'E', 'T', ' ' };
    const uint8_t swapped[LD_HEADER_SIZE] = { 'D', 'L', LD_PROTOCOL_VERSION, LD_MSG_HELLO };
    ld_msg_type_t type;
    unsigned version;
    ld_error_t err;
    cr_assert_eq(ld_frame_parse(http, sizeof http, &type, &version, &err), LD_ESIG);
    cr_assert(strstr(err.msg, "LD") != NULL, "%s", err.msg);
    cr_assert_eq(ld_frame_parse(swapped, sizeof swapped, &type, &version, &err), LD_ESIG);
}

Test(frame, another_protocol_version_is_refused_and_reported)
{
    uint8_t h[LD_HEADER_SIZE] = { 'L', 'D', LD_PROTOCOL_VERSION + 1, LD_MSG_HELLO };
    ld_msg_type_t type;
    unsigned version = 0;
    ld_error_t err;
    cr_assert_eq(ld_frame_parse(h, sizeof h, &type, &version, &err), LD_EVERSION);
    cr_assert_eq(version, LD_PROTOCOL_VERSION + 1, "the caller learns the peer's version");
    cr_assert(strstr(err.msg, "upgrade") != NULL, "%s", err.msg);
    h[2] = 0;
    cr_assert_eq(ld_frame_parse(h, sizeof h, &type, &version, &err), LD_EVERSION);
    cr_assert_eq(version, 0);
}

Test(frame, an_unknown_message_type_is_refused)
{
    uint8_t h[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_HELLO, h);
    ld_msg_type_t type;
    unsigned version;
    ld_error_t err;
    const uint8_t bad[] = { LD_MSG_NONE, LD_MSG_COUNT, 0x7f, 0xff };
    for (size_t i = 0; i < sizeof bad; i++) {
        h[3] = bad[i];
        cr_assert_eq(ld_frame_parse(h, sizeof h, &type, &version, &err), LD_ETYPE, "type %u",
                     bad[i]);
        cr_assert_neq(err.msg[0], '\0');
    }
}

Test(frame, every_type_has_a_name_and_out_of_range_is_unknown)
{
    cr_assert_str_eq(ld_msg_type_name(LD_MSG_HELLO), "hello");
    cr_assert_str_eq(ld_msg_type_name(LD_MSG_PUSH_ACK), "push-ack");
    cr_assert_str_eq(ld_msg_type_name(LD_MSG_ERROR), "error");
    cr_assert_str_eq(ld_msg_type_name(LD_MSG_NONE), "unknown");
    cr_assert_str_eq(ld_msg_type_name(LD_MSG_COUNT), "unknown");
    cr_assert_str_eq(ld_msg_type_name((ld_msg_type_t)-1), "unknown");
    for (int t = LD_MSG_HELLO; t < LD_MSG_COUNT; t++)
        cr_assert_str_neq(ld_msg_type_name((ld_msg_type_t)t), "unknown");
}

Test(frame, the_header_layout_is_the_documented_one)
{
    uint8_t h[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_ERROR, h);
    const uint8_t want[LD_HEADER_SIZE] = { 'L', 'D', LD_PROTOCOL_VERSION, 9 };
    cr_assert_arr_eq(h, want, sizeof want);
}
