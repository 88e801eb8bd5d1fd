/* keys.h: CURVE keypairs and the files that hold them.  A secret key lives in a
 * file of mode 0600 that only its owner can read; a file others can read is refused. */
#ifndef LD_KEYS_H
#define LD_KEYS_H

#include "error.h"

#define LD_KEY_TEXT 40   /* Z85 text of a 32-byte key */

typedef struct ld_keypair {
    char public_key[LD_KEY_TEXT + 1];
    char secret_key[LD_KEY_TEXT + 1];
} ld_keypair_t;

/* Makes a new keypair with zmq_curve_keypair. 0 or LD_EIO (libzmq without CURVE). */
int ld_keys_generate(ld_keypair_t *kp, ld_error_t *err);

/* Writes the keypair to `path` (created 0600, refusing to overwrite: LD_EEXIST). The
 * file holds two lines: "public KEY" and "secret KEY". */
int ld_keys_save(const ld_keypair_t *kp, const char *path, ld_error_t *err);

/* Replaces the keypair file at `path`, which must exist, with kp: written beside it
 * (path + ".new", 0600, the old file's owner), synced, renamed over it and the folder
 * synced, so that a crash leaves the old keypair or the new one, whole (a folder that
 * cannot be synced is only warned about: the new keypair is in place).  LD_ENOTFOUND
 * when there is none; after any other failure the old keypair is still there. */
int ld_keys_replace(const ld_keypair_t *kp, const char *path, ld_error_t *err);

/* Reads a keypair file; LD_EDENIED if group or others may read it, LD_EINVAL (naming
 * the file and line) if it is malformed, LD_ENOTFOUND if missing. */
int ld_keys_load(ld_keypair_t *kp, const char *path, ld_error_t *err);

/* True if text is 40 characters of Z85 that decode to a 32-byte key. */
int ld_key_valid(const char *text);

#endif
