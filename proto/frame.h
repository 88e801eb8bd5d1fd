/* frame.h: the fixed header frame ahead of every protobuf body: the signature
 * "LD", the protocol major version and the message type.  Both sides reject foreign
 * or mismatched traffic here, before parsing anything. */
#ifndef LD_FRAME_H
#define LD_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define LD_HEADER_SIZE   4
#define LD_BODY_MAX      (16u * 1024u * 1024u)   /* largest body either side accepts */
#define LD_FRAMES_MAX    3                       /* routing id + header + body */

typedef enum ld_msg_type {
    LD_MSG_NONE = 0,
    LD_MSG_HELLO,
    LD_MSG_WELCOME,
    LD_MSG_PUSH,
    LD_MSG_PUSH_ACK,
    LD_MSG_FETCH,
    LD_MSG_BATCH,
    LD_MSG_ACK,
    LD_MSG_NOTIFY,
    LD_MSG_ERROR,
    LD_MSG_COUNT
} ld_msg_type_t;

/* "hello", "push", ...; "unknown" out of range. Static. */
const char *ld_msg_type_name(ld_msg_type_t type);

/* Writes the header for `type` at the current protocol version into out. */
void ld_frame_header(ld_msg_type_t type, uint8_t out[LD_HEADER_SIZE]);

/* Parses a header frame.  Returns 0 and sets *type and *version; or LD_EPROTO (wrong
 * size), LD_ESIG (not "LD"), LD_EVERSION (another major version, *version set so the
 * caller can say which side must upgrade), LD_ETYPE (unknown type). */
int ld_frame_parse(const uint8_t *data, size_t len, ld_msg_type_t *type,
                   unsigned *version, ld_error_t *err);

#endif
