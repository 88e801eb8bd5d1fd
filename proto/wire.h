/* wire.h: protobuf's wire format walked field by field without unpacking: how Push and
 * Batch bodies are walked (and counted, codec.c, before any allocation), and how each
 * change's own bytes are found inside them (kept as received, not packed again). */
#ifndef LD_WIRE_H
#define LD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct ld_wire_field {
    uint64_t       number;     /* the field number */
    unsigned       type;       /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t       value;      /* type 0: the varint's value; else 0 */
    const uint8_t *data;       /* type 2: the payload, borrowed from the body; else NULL */
    size_t         len;        /* type 2: the payload's length */
} ld_wire_field_t;

/* Reads the field that starts at p[*pos] (p holds len bytes) into f and moves *pos past
 * it.  Returns 1 when a field was read, 0 at the end of the body, LD_EPROTO (naming the
 * byte) when the body is not well-formed there. */
int ld_wire_next(const uint8_t *p, size_t len, size_t *pos, ld_wire_field_t *f, ld_error_t *err);

/* Reads the entry of a Push (Push.changes = 1) or a Batch (Batch.entries = 1, each an
 * Entry: position = 1, change = 2) that starts at or after body[*pos], past the other
 * top-level fields, and moves *pos beyond it.  `index` numbers the entry from 0 for the
 * messages.  *change gets the change's own bytes and *position the entry's position (0
 * in a Push or when the entry gives none; of one given twice the last, as protobuf
 * reads it).  A Batch entry without a change is refused, and one with two (which
 * protobuf would merge into one): the bytes kept for a change must be exactly the
 * change decoded.  1 an entry was read, 0 none is left, LD_EPROTO (a field
 * of the wrong wire type, a body not well-formed) or LD_EINVAL. */
int ld_wire_next_change(const uint8_t *body, size_t len, bool batch, size_t *pos,
                        size_t index, ld_wire_field_t *change, uint64_t *position,
                        ld_error_t *err);

#endif
