/* fuzz_frame.c: fuzz target for the frame decoder: a header frame and a body, as a
 * peer would send them, through ld_frame_parse and ld_msg_decode; a Batch body also
 * through ld_batch_peek, which must read every body the decode reads, alike, and a Push
 * or a Batch body through a change reader (as the broker stores a push and a node
 * applies a batch), which must read exactly the bodies the decode reads, and nothing
 * protobuf-c's own unpacking refuses, with as many entries as it finds. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "liangdi.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads body a change at a time; traps unless it reads as the decode did (rc, m). */
static void read_as_decoded(ld_msg_type_t type, const uint8_t *body, size_t len, int rc,
                            const ld_msg_t *m)
{
    ld_change_reader_t r;
    ld_change_t c;
    ld_error_t err;
    uint64_t position = 0;
    size_t n = 0;
    int got = ld_change_reader_init(&r, type, body, len, &err);
    while (got == 0 && (got = ld_change_reader_next(&r, &c, &position, &err)) == 1) {
        const ld_change_t *want = NULL;
        if (rc == 0)
            want = type == LD_MSG_BATCH ? &m->u.batch.changes[n] : &m->u.push.changes[n];
        if (rc == 0 && (c.seq != want->seq || c.wire_len != want->wire_len ||
                        c.nfields != want->nfields ||
                        (type == LD_MSG_BATCH && position != m->u.batch.positions[n])))
            __builtin_trap();
        n++;
        got = 0;
    }
    if ((rc == 0) != (got == 0) || (got < 0 && err.msg[0] == '\0'))
        __builtin_trap();
    if (rc == 0 && n != (type == LD_MSG_BATCH ? m->u.batch.n : m->u.push.n))
        __builtin_trap();
    ld_change_reader_clear(&r);
    /* the generated code, which the reader does not use, as a second judge */
    size_t entries = 0;
    bool unpacked;
    if (type == LD_MSG_PUSH) {
        Liangdi__Push *pb = liangdi__push__unpack(NULL, len, body);
        unpacked = pb != NULL;
        entries = pb != NULL ? pb->n_changes : 0;
        if (pb != NULL)
            liangdi__push__free_unpacked(pb, NULL);
    } else {
        Liangdi__Batch *pb = liangdi__batch__unpack(NULL, len, body);
        unpacked = pb != NULL;
        entries = pb != NULL ? pb->n_entries : 0;
        if (pb != NULL)
            liangdi__batch__free_unpacked(pb, NULL);
    }
    if (got == 0 && (!unpacked || entries != n))
        __builtin_trap();
}

/* Input layout: the first LD_HEADER_SIZE bytes are the header frame, the rest the body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_error_t err;
    ld_msg_type_t type;
    unsigned version;
    size_t hlen = size < LD_HEADER_SIZE ? size : LD_HEADER_SIZE;

    if (ld_frame_parse(data, hlen, &type, &version, &err) != 0) {
        if (err.code >= 0 || err.msg[0] == '\0')
            __builtin_trap();   /* a refusal must carry a code and a message */
        return 0;
    }
    ld_msg_t msg;
    int rc = ld_msg_decode(type, data + hlen, size - hlen, &msg, &err);
    if (type == LD_MSG_BATCH) {
        ld_msg_t peek;
        ld_error_t perr;
        int prc = ld_batch_peek(data + hlen, size - hlen, &peek, &perr);
        if (prc != 0 && (rc == 0 || prc >= 0 || perr.msg[0] == '\0'))
            __builtin_trap();   /* refused what the decode read, or without a message */
        if (prc == 0 && rc == 0) {
            if (peek.u.batch.n != msg.u.batch.n ||
                peek.u.batch.remaining != msg.u.batch.remaining)
                __builtin_trap();
            for (size_t i = 0; i < msg.u.batch.n; i++)
                if (peek.u.batch.positions[i] != msg.u.batch.positions[i])
                    __builtin_trap();
        }
        if (prc == 0)
            ld_msg_clear(&peek);
    }
    if (type == LD_MSG_PUSH || type == LD_MSG_BATCH)
        read_as_decoded(type, data + hlen, size - hlen, rc, &msg);
    if (rc == 0) {
        /* What decodes must encode again. */
        uint8_t *out = NULL;
        size_t len = 0;
        if (ld_msg_encode(&msg, &out, &len, &err) != 0)
            __builtin_trap();
        free(out);
        ld_msg_clear(&msg);
    } else if (rc >= 0 || err.msg[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
