/* codec.h: liangdi's messages in the project's own structs, and their conversion
 * to and from protobuf bytes.  This module is the only one that sees the generated
 * protobuf-c code.  Decoding validates everything (see ld_change_validate).
 * Ownership: an ld_msg_t owns what it points to; ld_msg_clear frees it. */
#ifndef LD_CODEC_H
#define LD_CODEC_H

#include <stdbool.h>
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
 * rising from 1), the changes are not: whoever applies them reads them with a change
 * reader (below), which refuses what this lets through.  A node takes a batch this way
 * into its inbox, whose applying names the batch of a change it cannot read. */
int ld_batch_peek(const uint8_t *body, size_t len, ld_msg_t *m, ld_error_t *err);

/* A Push's or a Batch's changes read and validated one at a time, for a reader that
 * uses each change and lets it go (the broker storing a push, a node applying a batch):
 * it needs the memory of one change, where ld_msg_decode holds all of them at once.
 * Each change is checked as ld_msg_decode checks it, the framing of the body as a
 * whole before the first (at most LD_BATCH_MAX entries, each a message, `remaining` a
 * number); a change that fails ends the reading with the error naming its entry.
 * Ownership: the reader borrows the body, which must outlive it; it owns two arenas,
 * freed by ld_change_reader_clear. */
typedef struct ld_change_reader {
    const uint8_t *body;         /* borrowed */
    size_t         len, pos;     /* the body, and where the next entry starts */
    bool           batch;        /* a Batch (else a Push) */
    bool           keep;         /* every change's texts kept until clear (a decode) */
    size_t         count;        /* entries the body holds */
    size_t         index;        /* entries read so far */
    uint64_t       position;     /* the last entry's position (a Batch) */
    uint64_t       remaining;    /* Batch.remaining; 0 for a Push */
    ld_arena_t     text;         /* the field values of the change last read */
    ld_arena_t     unpacked;     /* protobuf-c's pieces of the change being read */
} ld_change_reader_t;

/* Starts reading a body of type LD_MSG_PUSH or LD_MSG_BATCH: 0, or LD_ETOOBIG,
 * LD_EPROTO, LD_EINVAL (also a type that carries no changes), the reader then empty
 * (clearing it is still safe). */
int ld_change_reader_init(ld_change_reader_t *r, ld_msg_type_t type, const uint8_t *body,
                          size_t len, ld_error_t *err);

/* Reads the next change into c, whose field values are borrowed from the reader until
 * the next call (or, for a reader that keeps them, until clear) and whose `wire` is
 * its bytes in the body; *position gets the entry's position (a Batch; 0 in a Push).
 * c needs no initialising, and owns nothing afterwards.  1 a change was read, 0 none
 * is left, or < 0 (LD_EPROTO, LD_EINVAL, LD_ENOMEM) with err naming the entry; after
 * an error c holds nothing and the reader reads no further. */
int ld_change_reader_next(ld_change_reader_t *r, ld_change_t *c, uint64_t *position,
                          ld_error_t *err);

/* Frees the reader's arenas; the changes it gave out are no longer valid. */
void ld_change_reader_clear(ld_change_reader_t *r);

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
