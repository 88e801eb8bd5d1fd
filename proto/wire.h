/* wire.h: protobuf's wire format walked field by field without unpacking: how Push and
 * Batch bodies are counted before any allocation, and how each change's own bytes are
 * found inside them (to be kept as received rather than packed again). */
#ifndef LD_WIRE_H
#define LD_WIRE_H

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

#endif
