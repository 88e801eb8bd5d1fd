/* error.c: the names of liangdi's error codes and the ld_error_t that carries a code
 * and one line of explanation out of every fallible call. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ld_strerror(int code)
{
    switch (code) {
    case LD_OK:        return "success";
    case LD_EINVAL:    return "invalid value";
    case LD_ENOMEM:    return "out of memory";
    case LD_EPROTO:    return "malformed message";
    case LD_EVERSION:  return "version mismatch";
    case LD_ETOOBIG:   return "too big";
    case LD_ESIG:      return "not liangdi traffic";
    case LD_ETYPE:     return "unknown message type";
    case LD_EIO:       return "input/output error";
    case LD_ECLOCK:    return "clock stamp too far ahead";
    case LD_EAUTH:     return "authentication refused";
    case LD_ETIMEOUT:  return "timed out";
    case LD_EDENIED:   return "denied";
    case LD_ENOTFOUND: return "not found";
    case LD_EEXIST:    return "already exists";
    case LD_ESCHEMA:   return "schema version mismatch";
    case LD_EBUSY:     return "busy";
    case LD_EAGAIN:    return "failed for now, try again";
    default:           return "unknown error";
    }
}

int ld_error_set(ld_error_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(err->msg, sizeof err->msg, "%s", ld_strerror(code));
    if (err->msg[0] == '\0')
        snprintf(err->msg, sizeof err->msg, "%s", ld_strerror(code));
    return code;
}

void ld_error_clear(ld_error_t *err)
{
    if (err == NULL)
        return;
    err->code = LD_OK;
    err->msg[0] = '\0';
}
