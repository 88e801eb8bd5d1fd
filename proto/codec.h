/* codec.h: liangdi's messages in the project's own structs, and their conversion
 * to and from protobuf bytes.  This module is the only one that sees the generated
 * protobuf-c code.  Decoding validates everything (see ld_change_validate).
 * Ownership: an ld_msg_t owns what it points to; ld_msg_clear frees it. */
#ifndef LD_CODEC_H
#define LD_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "body.h"
#include "change.h"
#include "error.h"
#include "frame.h"

typedef enum ld_error_code {
    LD_ERR_UNSPECIFIED = 0, LD_ERR_BAD_MESSAGE, LD_ERR_VERSION, LD_ERR_AUTH,
    LD_ERR_DENIED, LD_ERR_CLOCK, LD_ERR_INTERNAL, LD_ERR_SEQUENCE
} ld_error_code_t;

typedef struct ld_msg {
    ld_msg_type_t type;
    union {
        struct { uint32_t protocol_version, schema_version;
                 char node_id[LD_ID_MAX + 1]; char software[64]; } hello;
        struct { uint32_t protocol_version, schema_version;
                 char node_id[LD_ID_MAX + 1];
                 uint64_t pushed_upto, mailbox_depth; } welcome;
        /* push and batch own: the changes, the copy of the body their `wire` points
         * into, and the arena of the field values they borrow. */
        struct { size_t n; ld_change_t *changes; uint8_t *wire; ld_arena_t text; } push;
        struct { uint64_t upto; } push_ack;
        struct { uint64_t cursor; uint32_t credit; } fetch;
        struct { size_t n; uint64_t *positions; ld_change_t *changes;
                 uint64_t remaining; uint8_t *wire; ld_arena_t text; } batch;
        struct { uint64_t upto; } ack;
        struct { uint64_t mailbox_depth; } notify;
        struct { ld_error_code_t code; char message[LD_ERROR_MSG_MAX];
                 char record_id[LD_RECORD_ID_MAX + 1]; uint64_t seq; } error;
    } u;
} ld_msg_t;

/* Zeroes m and sets its type. */
void ld_msg_init(ld_msg_t *m, ld_msg_type_t type);

/* Frees what m owns and zeroes it; safe to call twice. */
void ld_msg_clear(ld_msg_t *m);

/* Packs m's body.  On success *out is malloc'd (caller frees) and 0 is returned. */
int ld_msg_encode(const ld_msg_t *m, uint8_t **out, size_t *len, ld_error_t *err);

/* On the wire a cleared field (value "") is an enum 0, a year 0 or an amount of -1.
 * An Error message longer than the struct holds is cut at a character boundary, and
 * an Error code this side does not know reads as LD_ERR_UNSPECIFIED. */

/* Unpacks and validates a body of the given type into m (initialised by this call).
 * On failure m holds nothing and the error names what was wrong: LD_EPROTO (not a
 * valid protobuf), LD_ETOOBIG (over LD_BODY_MAX or LD_BATCH_MAX), LD_EINVAL (a field
 * that fails validation). */
int ld_msg_decode(ld_msg_type_t type, const uint8_t *body, size_t len, ld_msg_t *m,
                  ld_error_t *err);

/* Reads a Batch body for its framing alone, without decoding its changes: m (initialised
 * here, cleared by the caller) gets the entries' positions, their count and
 * `remaining`; m->u.batch.changes stays NULL.  The framing is checked as ld_msg_decode
 * checks it (well-formed, at most LD_BATCH_MAX entries, one change in each, positions
 * rising from 1), the changes are not: whoever applies them decodes them with
 * ld_msg_decode, which refuses what this lets through.  A node takes a batch this way
 * into its inbox, whose applying names the batch of a change it cannot read. */
int ld_batch_peek(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err);

/* One change alone, as stored in outboxes and mailboxes. *out is malloc'd. */
int ld_change_pack(const ld_change_t *c, uint8_t **out, size_t *len, ld_error_t *err);
/* The same for a change already known valid: one that ld_change_validate passed, or a
 * decode returned, and that has not changed since (the node's store packs every change
 * it writes or applies this way, after checking it).  It is not validated again. */
int ld_change_pack_valid(const ld_change_t *c, uint8_t **out, size_t *len, ld_error_t *err);
/* Unpacks and validates; c is initialised by this call and owns its strings. */
int ld_change_unpack(const uint8_t *data, size_t len, ld_change_t *c, ld_error_t *err);

/* Packs a change known valid (as for ld_change_pack_valid) into b, in place of what b
 * held, reusing its memory: b->data[0..b->len) is the change.  0, LD_ETOOBIG, LD_ENOMEM. */
int  ld_change_pack_buf(const ld_change_t *c, ld_buf_t *b, ld_error_t *err);

#endif
