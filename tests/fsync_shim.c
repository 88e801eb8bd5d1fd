/* fsync_shim.c: a library the broker tests preload into liangdi-broker, so that a test
 * can tell whether a reply waited for the disk, and what the broker does when the disk
 * fails it.  fdatasync first waits LIANGDI_SLOW_FSYNC_MS milliseconds (if set); then,
 * while the file LIANGDI_FAIL_FSYNC_IF names exists, it fails with EIO, and otherwise
 * does its work. */
#include <dlfcn.h>
#include <errno.h>
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
    const char *fail_if = getenv("LIANGDI_FAIL_FSYNC_IF");
    if (fail_if && access(fail_if, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
