/* frame.c: the 4-byte header frame ("LD", protocol major version, message type)
 * that lets both sides reject foreign or mismatched traffic before parsing a body. */
#include "frame.h"
#include "schema.h"

static const char *const type_names[LD_MSG_COUNT] = {
    [LD_MSG_NONE]     = "none",
    [LD_MSG_HELLO]    = "hello",
    [LD_MSG_WELCOME]  = "welcome",
    [LD_MSG_PUSH]     = "push",
    [LD_MSG_PUSH_ACK] = "push-ack",
    [LD_MSG_FETCH]    = "fetch",
    [LD_MSG_BATCH]    = "batch",
    [LD_MSG_ACK]      = "ack",
    [LD_MSG_NOTIFY]   = "notify",
    [LD_MSG_ERROR]    = "error",
};

const char *ld_msg_type_name(ld_msg_type_t type)
{
    if ((int)type <= (int)LD_MSG_NONE || (int)type >= (int)LD_MSG_COUNT)
        return "unknown";
    return type_names[type];
}

void ld_frame_header(ld_msg_type_t type, uint8_t out[LD_HEADER_SIZE])
{
    out[0] = 'L';
    out[1] = 'D';
    out[2] = LD_PROTOCOL_VERSION;
    out[3] = (uint8_t)type;
}

int ld_frame_parse(const uint8_t *data, size_t len, ld_msg_type_t *type,
                   unsigned *version, ld_error_t *err)
{
    if (data == NULL || len != LD_HEADER_SIZE)
        return ld_error_set(err, LD_EPROTO, "header frame of %zu bytes, expected %d", len,
                            LD_HEADER_SIZE);
    if (data[0] != 'L' || data[1] != 'D')
        return ld_error_set(err, LD_ESIG,
                            "header signature 0x%02x%02x is not \"LD\": not liangdi traffic",
                            data[0], data[1]);
    if (version != NULL)
        *version = data[2];
    if (data[2] != LD_PROTOCOL_VERSION)
        return ld_error_set(err, LD_EVERSION,
                            "protocol version %u, this side speaks %d: the side with the lower version must upgrade",
                            (unsigned)data[2], LD_PROTOCOL_VERSION);
    if (data[3] == LD_MSG_NONE || data[3] >= LD_MSG_COUNT)
        return ld_error_set(err, LD_ETYPE, "unknown message type %u", (unsigned)data[3]);
    if (type != NULL)
        *type = (ld_msg_type_t)data[3];
    return 0;
}
