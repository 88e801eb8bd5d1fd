/* process.c: the libraries' process-wide settings for a node (see process.h). */
#include "process.h"

#include <sqlite3.h>

#include "heap.h"

void nd_process_init(void)
{
    ld_heap_tune();
    sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
