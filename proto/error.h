/* error.h: liangdi's error codes (negative, errno-style) and the message that goes
 * with one.  Every fallible function returns 0 or one of these and fills an ld_error_t. */
#ifndef LD_ERROR_H
#define LD_ERROR_H

#include <stddef.h>

enum {
    LD_OK        = 0,
    LD_EINVAL    = -1,   /* bad argument or value from a user or a peer */
    LD_ENOMEM    = -2,
    LD_EPROTO    = -3,   /* malformed frame or message */
    LD_EVERSION  = -4,   /* protocol or schema version mismatch */
    LD_ETOOBIG   = -5,   /* over a size or count limit */
    LD_ESIG      = -6,   /* foreign traffic: wrong header signature */
    LD_ETYPE     = -7,   /* unknown message type */
    LD_EIO       = -8,   /* file, socket or database failure */
    LD_ECLOCK    = -9,   /* a clock stamp too far ahead */
    LD_EAUTH     = -10,  /* authentication refused */
    LD_ETIMEOUT  = -11,
    LD_EDENIED   = -12,  /* refused by policy (links, audience, read-only) */
    LD_ENOTFOUND = -13,
    LD_EEXIST    = -14,
    LD_ESCHEMA   = -15,  /* store or peer schema newer than this binary */
    LD_EBUSY     = -16,
    LD_EAGAIN    = -17,  /* a peer failed for now (its store): trying again may serve */
    LD_ECODE_MIN = -17
};

#define LD_ERROR_MSG_MAX 512

/* The error a call leaves behind: its code and one line naming what was wrong. */
typedef struct ld_error {
    int  code;
    char msg[LD_ERROR_MSG_MAX];
} ld_error_t;

/* A static, never-NULL name for a code ("invalid value", "timed out", ...). */
const char *ld_strerror(int code);

/* Sets err (which may be NULL) to code and a printf-formatted message; returns code,
 * so that `return ld_error_set(err, LD_EINVAL, "...")` reads naturally. */
int ld_error_set(ld_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (may be NULL) to LD_OK and an empty message. */
void ld_error_clear(ld_error_t *err);

#endif
