/* body.c: Push and Batch bodies on protobuf's wire format, written by hand
 * (body.h).  The tags are Push.changes = 1, Batch.entries = 1, Batch.remaining = 2,
 * Entry.position = 1 and Entry.change = 2, as in liangdi.proto. */
#include "body.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(ld_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

int ld_buf_reserve(ld_buf_t *b, size_t more)
{
    if (more > LD_BODY_MAX || b->len > LD_BODY_MAX - more)
        return LD_ETOOBIG;
    size_t need = b->len + more;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap > 0 ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL)
        return LD_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

void ld_buf_free(ld_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ld_buf_reset(ld_buf_t *b)
{
    b->len = 0;
}

/* Wire tags: (field number << 3) | wire type. */
#define TAG_PUSH_CHANGES    0x0a   /* Push.changes = 1, length-delimited */
#define TAG_BATCH_ENTRIES   0x0a   /* Batch.entries = 1, length-delimited */
#define TAG_BATCH_REMAINING 0x10   /* Batch.remaining = 2, varint */
#define TAG_ENTRY_POSITION  0x08   /* Entry.position = 1, varint */
#define TAG_ENTRY_CHANGE    0x12   /* Entry.change = 2, length-delimited */

/* Writes a length-delimited field, tag then length then bytes, into room reserved. */
static void put_bytes_field(ld_buf_t *b, uint8_t tag, const uint8_t *data, size_t len)
{
    b->data[b->len++] = tag;
    put_varint(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

int ld_push_append(ld_buf_t *b, const uint8_t *change, size_t len)
{
    if (len > LD_BODY_MAX)
        return LD_ETOOBIG;
    int rc = ld_buf_reserve(b, 1 + varint_size(len) + len);
    if (rc != 0)
        return rc;
    put_bytes_field(b, TAG_PUSH_CHANGES, change, len);
    return 0;
}

int ld_batch_append(ld_buf_t *b, uint64_t position, const uint8_t *change, size_t len)
{
    if (len > LD_BODY_MAX)
        return LD_ETOOBIG;
    size_t entry = 1 + varint_size(position) + 1 + varint_size(len) + len;
    int rc = ld_buf_reserve(b, 1 + varint_size(entry) + entry);
    if (rc != 0)
        return rc;
    b->data[b->len++] = TAG_BATCH_ENTRIES;
    put_varint(b, entry);
    b->data[b->len++] = TAG_ENTRY_POSITION;
    put_varint(b, position);
    put_bytes_field(b, TAG_ENTRY_CHANGE, change, len);
    return 0;
}

int ld_batch_finish(ld_buf_t *b, uint64_t remaining)
{
    int rc = ld_buf_reserve(b, 1 + varint_size(remaining));
    if (rc != 0)
        return rc;
    b->data[b->len++] = TAG_BATCH_REMAINING;
    put_varint(b, remaining);
    return 0;
}
