/* procstat.h: a process's memory as the kernel reports it in /proc/PID/status; shared by
 * the tests that check a daemon gives memory back and by the sync benchmark. */
#ifndef HN_PROCSTAT_H
#define HN_PROCSTAT_H

#include <sys/types.h>

/* The value in kB of a field of /proc/PID/status ("VmRSS", "VmHWM"), or -1 if the
 * process or the field is not there. */
long hn_status_kib(pid_t pid, const char *field);

#endif
