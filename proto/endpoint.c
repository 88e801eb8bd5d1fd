/* endpoint.c: the shape of a ZeroMQ endpoint, checked before any socket sees it
 * (endpoint.h). */
#include "endpoint.h"

#include <string.h>

#define IPC_PATH_MAX 255     /* a Unix socket path is shorter than 108 anyway */

bool ld_endpoint_valid(const char *text, bool bind)
{
    if (!text)
        return false;
    if (strncmp(text, "ipc://", 6) == 0)
        return strlen(text) > 6 && strlen(text) <= IPC_PATH_MAX;
    if (strncmp(text, "tcp://", 6) != 0)
        return false;
    const char *host = text + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    for (const char *h = host; h < colon; h++) {
        unsigned char ch = (unsigned char) *h;
        if (ch <= ' ' || ch == '/' || ch >= 0x7f || (ch == '*' && !bind))
            return false;
    }
    const char *port = colon + 1;
    if (bind && strcmp(port, "*") == 0)
        return true;
    if (!*port || strlen(port) > 5)
        return false;
    long value = 0;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
        value = value * 10 + (*q - '0');
    }
    return value >= 1 && value <= 65535;
}
