/* procstat.c: fields of /proc/PID/status, and which allocator is in use (procstat.h). */
#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long hn_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t len = strlen(field);
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

const char *hn_glibc_malloc_absent(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return "ASan's allocator stands in for glibc's";
#endif
    if (getenv("LIANGDI_UNDER_VALGRIND") != NULL)
        return "valgrind's allocator stands in for glibc's";
    return NULL;
}
