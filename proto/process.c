/* process.c: the libraries' process-wide settings (see process.h). */
#include "process.h"

#include <sqlite3.h>

#include "heap.h"

void ld_process_init(ld_sqlite_threads_t threads)
{
    ld_heap_tune();
    sqlite3_config(threads == LD_SQLITE_ONE_THREAD ? SQLITE_CONFIG_SINGLETHREAD
                                                   : SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
