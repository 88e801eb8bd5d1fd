/* main.c: the liangdi-broker program; everything it does is in libbk (cli.c), so
 * that tests link the same code. */
#include "cli.h"

int main(int argc, char **argv)
{
    return bk_cli_main(argc, argv);
}
