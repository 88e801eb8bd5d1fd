/* wire.c: one protobuf field at a time, checked against the end of the body: keys,
 * varints, fixed widths and length-delimited payloads (see wire.h). */
#include "wire.h"

#include <inttypes.h>

/* Reads a varint of at most `most` bytes at p[*pos]; LD_EPROTO naming `what` if it is
 * cut short or longer.  protobuf-c reads keys and lengths in at most 5 bytes (32 bits),
 * other varints in at most 10: a walk that took more would find fields it never sees. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, unsigned most, uint64_t *out,
                       const char *what, ld_error_t *err)
{
    uint64_t v = 0;
    size_t at = *pos;
    for (unsigned shift = 0;; shift += 7) {
        if (*pos >= len || shift >= 7 * most)
            return ld_error_set(err, LD_EPROTO, "truncated %s at byte %zu", what, at);
        uint8_t byte = p[(*pos)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0)
            break;
    }
    *out = v;
    return 0;
}

int ld_wire_next(const uint8_t *p, size_t len, size_t *pos, ld_wire_field_t *f, ld_error_t *err)
{
    uint64_t key = 0, n = 0;
    if (*pos >= len)
        return 0;
    size_t at = *pos;
    int rc = read_varint(p, len, pos, 5, &key, "field key", err);
    if (rc != 0)
        return rc;
    if (key > UINT32_MAX || key >> 3 == 0)
        return ld_error_set(err, LD_EPROTO, "field key %" PRIu64 " at byte %zu is not a field",
                            key, at);
    f->number = key >> 3;
    f->type = (unsigned)(key & 7);
    f->value = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->type) {
    case 0:
        return read_varint(p, len, pos, 10, &f->value, "varint", err) == 0 ? 1 : LD_EPROTO;
    case 1:
    case 5: {
        size_t width = f->type == 1 ? 8 : 4;
        if (len - *pos < width)
            return ld_error_set(err, LD_EPROTO, "truncated fixed%zu at byte %zu", width * 8, *pos);
        *pos += width;
        return 1;
    }
    case 2:
        if (read_varint(p, len, pos, 5, &n, "length", err) != 0)
            return LD_EPROTO;
        if (n > len - *pos)
            return ld_error_set(err, LD_EPROTO, "field %" PRIu64 " of %" PRIu64
                                " bytes runs past the end", f->number, n);
        f->data = p + *pos;
        f->len = (size_t)n;
        *pos += (size_t)n;
        return 1;
    default:
        return ld_error_set(err, LD_EPROTO, "wire type %u at byte %zu", f->type, *pos);
    }
}

int ld_wire_next_change(const uint8_t *body, size_t len, bool batch, size_t *pos,
                        size_t index, ld_wire_field_t *change, uint64_t *position,
                        ld_error_t *err)
{
    const char *what = batch ? "batch" : "push";
    ld_wire_field_t f;
    int rc;
    while ((rc = ld_wire_next(body, len, pos, &f, err)) == 1 && f.number != 1)
        ;
    if (rc != 1)
        return rc;
    if (f.type != 2)
        return ld_error_set(err, LD_EPROTO, "%s entry %zu is not a message", what, index + 1);
    *position = 0;
    if (!batch) {
        *change = f;
        return 1;
    }
    size_t epos = 0, found = 0;
    ld_wire_field_t e;
    while ((rc = ld_wire_next(f.data, f.len, &epos, &e, err)) == 1) {
        if ((e.number == 1 && e.type != 0) || (e.number == 2 && e.type != 2))
            return ld_error_set(err, LD_EPROTO, "batch entry %zu: field %" PRIu64
                                " has wire type %u", index + 1, e.number, e.type);
        if (e.number == 1) {
            *position = e.value;
        } else if (e.number == 2) {
            *change = e;
            found++;
        }
    }
    if (rc != 0)
        return rc;
    if (found != 1)
        return ld_error_set(err, LD_EINVAL, "batch entry %zu holds %zu changes", index + 1, found);
    return 1;
}
