/* body.h: Push and Batch bodies handled on protobuf's wire format directly, without
 * protobuf-c: built from changes already packed (a relay or an outbox never packs a
 * change again).  Reading them, and every change inside them, is codec.h's.
 * Ownership: an ld_buf_t owns its memory (ld_buf_free). */
#ifndef LD_BODY_H
#define LD_BODY_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define LD_BATCH_MAX 4096u      /* changes in one Push or Batch */
/* Bytes a sender fills a Push or a Batch to (the limit is LD_BODY_MAX, frame.h): each
 * is stored in one transaction before it is acked, and a link that drops loses the one
 * in flight, so over a poor link a megabyte is sent again, not sixteen; and the next
 * is read while this one is stored. */
#define LD_BATCH_BYTES (1u << 20)

/* A growing byte buffer for building Push and Batch bodies straight from packed
 * changes, without unpacking them.  Free with ld_buf_free.  The appends return 0,
 * LD_ENOMEM, or LD_ETOOBIG (nothing appended) when the body would pass LD_BODY_MAX;
 * counting changes against LD_BATCH_MAX is the caller's job. */
typedef struct ld_buf { uint8_t *data; size_t len, cap; } ld_buf_t;
void ld_buf_free(ld_buf_t *b);
void ld_buf_reset(ld_buf_t *b);            /* len = 0, keeps the memory */
int  ld_buf_reserve(ld_buf_t *b, size_t more);   /* room for more: 0, LD_ETOOBIG, LD_ENOMEM */
int  ld_push_append(ld_buf_t *b, const uint8_t *change, size_t len);
int  ld_batch_append(ld_buf_t *b, uint64_t position, const uint8_t *change, size_t len);
int  ld_batch_finish(ld_buf_t *b, uint64_t remaining);   /* appends `remaining` */

#endif
