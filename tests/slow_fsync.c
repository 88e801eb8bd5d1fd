/* slow_fsync.c: a library the broker tests preload into liangdi-broker: fdatasync waits
 * LIANGDI_SLOW_FSYNC_MS milliseconds before it does its work, so that a test can tell
 * whether a reply waited for the disk. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "fdatasync");
        memcpy(&real, &sym, sizeof real);
    }
    const char *ms = getenv("LIANGDI_SLOW_FSYNC_MS");
    long v = ms ? atol(ms) : 0;
    if (v > 0) {
        struct timespec ts = { .tv_sec = v / 1000, .tv_nsec = (v % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    return real(fd);
}
