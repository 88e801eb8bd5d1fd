/* broker_peer.h: the broker tests' harness (broker_peer.c): start and stop the real
 * liangdi-broker on its SQLite store in a temp dir with fresh node keys; the nodes that
 * talk to it are node_peer.h's, aimed at it by setup. */
#ifndef BROKER_PEER_H
#define BROKER_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "node_peer.h"

typedef struct broker {
    char   dir[256];
    char   db[320];
    char   conf[320];
    char   log[512];             /* outside dir: kept until the runner has seen the result */
    char   endpoint[256];
    char   public_key[LD_KEY_TEXT + 1];
    pid_t  pid;
} broker_t;

#define CLI(out, outsz, ...) cli((out), (outsz), (const char *const[]){ __VA_ARGS__, NULL })

extern broker_t bk;

void nap(void);
const char *tmpbase(void);
const char *broker_bin(void);
char *read_file(const char *path, size_t from);
off_t file_size(const char *path);
int cli(char *out, size_t outsz, const char *const *args);
void broker_start(void);
int broker_stop(int sig);
void assert_clean_stop(void);
void write_conf(const char *extra);
void setup(void);
void rm_dir(const char *dir);
void teardown(void);

#endif
