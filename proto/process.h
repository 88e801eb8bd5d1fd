/* process.h: how a liangdi program sets up its libraries before anything else.  Both
 * binaries call it first in main; so do the benchmarks that run libnd in their own
 * process, so that they measure what the binary does. */
#ifndef LD_PROCESS_H
#define LD_PROCESS_H

/* How a program's threads share SQLite. */
typedef enum ld_sqlite_threads {
    LD_SQLITE_ONE_THREAD,        /* one thread uses SQLite (liangdi: libzmq's threads
                                    never touch it): no mutexes at all */
    LD_SQLITE_THREAD_PER_CONN,   /* several threads, each connection used by one only
                                    (liangdi-broker: the server's, the ZAP handler's) */
} ld_sqlite_threads_t;

/* Keeps batches' large buffers in the heap (ld_heap_tune, heap.h), sets SQLite's
 * threading mode to `threads`, and turns off SQLite's memory statistics, which take a
 * global mutex on every allocation (with the node's mutexes, about 3% of applying a
 * batch).  Call before any thread starts and before any other SQLite call; a setting
 * refused (SQLite already in use, an allocator other than glibc's) costs only speed. */
void ld_process_init(ld_sqlite_threads_t threads);

#endif
