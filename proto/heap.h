/* heap.h: how every liangdi program uses the C library's allocator.  A message body is
 * filled to about LD_BATCH_BYTES (1 MiB) and may reach LD_BODY_MAX (16 MiB), and a sync
 * moves one such buffer after another through libzmq and SQLite.  With glibc's
 * defaults each of those large blocks is a fresh mmap, and the heap is given back to
 * the kernel as soon as 128 KiB of its top is free: every batch then pays a page fault
 * for each 4 KiB it touches again.
 *
 * ld_heap_tune keeps such blocks in the heap, and freed memory in the process, while
 * the program works; a daemon calls ld_heap_release once it has been idle a while, so
 * what a burst used goes back to the kernel. */
#ifndef LD_HEAP_H
#define LD_HEAP_H

#include <stdbool.h>

/* Blocks below this come from the heap, not from an mmap of their own: twice the
 * largest body, so a body and the copy of it being built both fit. */
#define LD_HEAP_MMAP_MIN   (32u * 1024u * 1024u)
/* Free memory at the top of the heap kept for reuse rather than given back. */
#define LD_HEAP_KEEP       (64u * 1024u * 1024u)

/* Sets the allocator's thresholds to the above.  Call first thing in main, before any
 * thread starts.  False if the allocator refused them or is not glibc's: nothing else
 * changes then.  (Under ASan or valgrind their own allocator stands in for glibc's, and
 * the thresholds mean nothing.) */
bool ld_heap_tune(void);

/* Gives back to the kernel the free memory every arena holds.  True if some was given
 * back, and then logged at debug level: "freed memory given back to the kernel".  A
 * daemon calls it when idle: it costs a walk over the free blocks, and pages given back
 * are faulted in again when next used. */
bool ld_heap_release(void);

#endif
