/* fuzz_change.c: fuzz target for the change validator: bytes as stored in an outbox or
 * a mailbox, through ld_change_unpack (decode + ld_change_validate). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_error_t err;
    ld_change_t c;

    int rc = ld_change_unpack(data, size, &c, &err);
    if (rc == 0) {
        /* A change that passed must pass validation again, and survive a round trip. */
        if (ld_change_validate(&c, &err) != 0)
            __builtin_trap();
        uint8_t *out = NULL;
        size_t len = 0;
        if (ld_change_pack(&c, &out, &len, &err) != 0)
            __builtin_trap();
        ld_change_t again;
        if (ld_change_unpack(out, len, &again, &err) != 0)
            __builtin_trap();
        if (again.nfields != c.nfields || again.seq != c.seq || again.hlc != c.hlc)
            __builtin_trap();
        ld_change_clear(&again);
        free(out);
        ld_change_clear(&c);
    } else if (rc >= 0 || err.msg[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
