/* cli.h: liangdi-broker's command line: init, node, link, run, status and backup.
 * main.c only calls this, so tests link the same code the binary runs. */
#ifndef BK_CLI_H
#define BK_CLI_H

/* Runs the command in argv.  Returns the exit code: 0 done, 1 runtime failure,
 * 2 bad arguments or configuration (with a line naming the argument and value). */
int bk_cli_main(int argc, char **argv);

#endif
