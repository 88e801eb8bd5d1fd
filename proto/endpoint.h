/* endpoint.h: the ZeroMQ endpoints liangdi speaks on, checked before any socket sees
 * them: tcp://HOST:PORT (PORT 1..65535) or ipc://PATH; a bind may also say '*'. */
#ifndef LD_ENDPOINT_H
#define LD_ENDPOINT_H

#include <stdbool.h>

/* Whether text is an endpoint to connect to (tcp://HOST:PORT, ipc://PATH) or, with
 * `bind`, one to bind: there the host may also be '*' (every interface) and the port
 * '*' (one the OS picks). */
bool ld_endpoint_valid(const char *text, bool bind);

#endif
