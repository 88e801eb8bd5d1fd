/* process.h: how a process running the node's code sets up its libraries before
 * anything else.  The `liangdi` binary calls it first in main; so do the benchmarks
 * that run libnd in their own process, so that they measure what the binary does. */
#ifndef ND_PROCESS_H
#define ND_PROCESS_H

/* Keeps batches' large buffers in the heap (ld_heap_tune), and puts SQLite in
 * single-thread mode without memory statistics: one thread of the process uses SQLite
 * (libzmq's threads never touch it), so its mutexes, and the global one its statistics
 * take on every allocation, are pure cost (about 3% of applying a batch).  Call before
 * any thread starts and before any other SQLite call; a setting refused (SQLite already
 * in use, an allocator other than glibc's) costs only speed. */
void nd_process_init(void);

#endif
