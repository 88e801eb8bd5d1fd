/* main.c: the liangdi-broker program; everything it does is in libbk (cli.c), so
 * that tests link the same code. */
#include "cli.h"
#include "process.h"

int main(int argc, char **argv)
{
    ld_process_init(LD_SQLITE_THREAD_PER_CONN);
    return bk_cli_main(argc, argv);
}
