/* heap.c: the allocator's thresholds, and giving memory back when idle (see heap.h). */
#include "heap.h"

#include "frame.h"
#include "log.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

_Static_assert(LD_HEAP_MMAP_MIN >= 2u * LD_BODY_MAX, "a body and its copy stay in the heap");

bool ld_heap_tune(void)
{
#if defined(__GLIBC__)
    /* Setting either turns off glibc's own adjustment of both, so both are set. */
    return mallopt(M_MMAP_THRESHOLD, (int)LD_HEAP_MMAP_MIN) == 1
           && mallopt(M_TRIM_THRESHOLD, (int)LD_HEAP_KEEP) == 1;
#else
    return false;
#endif
}

bool ld_heap_release(void)
{
#if defined(__GLIBC__)
    if (malloc_trim(0) == 1) {
        ld_debug("freed memory given back to the kernel");
        return true;
    }
#endif
    return false;
}
