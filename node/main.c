/* main.c: the `liangdi` binary: everything it does is in libnd, starting at
 * nd_cli_main, so tests link the same code. */
#include <sqlite3.h>
#include "cli.h"
#include "heap.h"

int main(int argc, char **argv)
{
    /* Batches' large buffers stay in the heap (heap.h); a refusal costs only speed. */
    ld_heap_tune();
    /* One thread of this process uses SQLite (libzmq's threads never touch it): no
     * mutexes, and no memory statistics, which take one on every allocation; together
     * about 3% of applying a batch.  Before any other SQLite call, or refused. */
    sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return nd_cli_main(argc, argv);
}
