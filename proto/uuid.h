/* uuid.h: random (version 4) UUIDs as 36-character lowercase text, the ids of
 * every record a node creates. */
#ifndef LD_UUID_H
#define LD_UUID_H

#include <stdbool.h>
#include "error.h"

#define LD_UUID_LEN 36

/* Writes a new UUID and its NUL into out[37] from getrandom(2); 0 or LD_EIO. */
int ld_uuid_new(char out[LD_UUID_LEN + 1], ld_error_t *err);

/* True if text is exactly a lowercase 8-4-4-4-12 hex UUID. */
bool ld_uuid_valid(const char *text);

#endif
