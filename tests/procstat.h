/* procstat.h: a process's memory as the kernel reports it in /proc/PID/status, and
 * whether glibc's allocator is the one measured; shared by the tests of the allocator's
 * settings and of daemons giving memory back, and by the sync benchmark. */
#ifndef HN_PROCSTAT_H
#define HN_PROCSTAT_H

#include <sys/types.h>

/* The value in kB of a field of /proc/PID/status ("VmRSS", "VmHWM"), or -1 if the
 * process or the field is not there. */
long hn_status_kib(pid_t pid, const char *field);

/* Why glibc's allocator is not the one in use (ASan's or valgrind's stands in for it,
 * in this process and in the programs it starts), or NULL when it is. */
const char *hn_glibc_malloc_absent(void);

#endif
