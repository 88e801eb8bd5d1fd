/* main.c: the `liangdi` binary: everything it does is in libnd, starting at
 * nd_cli_main, so tests link the same code. */
#include "cli.h"
#include "process.h"

int main(int argc, char **argv)
{
    ld_process_init(LD_SQLITE_ONE_THREAD);
    return nd_cli_main(argc, argv);
}
