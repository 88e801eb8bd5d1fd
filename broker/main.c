/* main.c: the liangdi-broker program; everything it does is in libbk (cli.c), so
 * that tests link the same code. */
#include <sqlite3.h>
#include "cli.h"
#include "heap.h"

int main(int argc, char **argv)
{
    /* Batches' large buffers stay in the heap (heap.h); a refusal costs only speed. */
    ld_heap_tune();
    /* Each SQLite connection here is used by one thread only (the server's, or the ZAP
     * handler's own): no per-connection mutexes, and no memory statistics, which take
     * a global one on every allocation.  Before any other SQLite call, or refused. */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return bk_cli_main(argc, argv);
}
