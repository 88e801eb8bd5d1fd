/* cmp_common.c: what the comparison clients share: counts from the command line, the
 * records they carry and the tally a receiver keeps of them (see cmp_common.h). */
#include "cmp_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cmp_tally {
    uint64_t  n;
    size_t    size;
    uint8_t  *seen;      /* one bit per sequence number */
    uint64_t  distinct;
    uint64_t  bad;
};

int cmp_parse_count(const char *text, const char *what, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (text == NULL || *text == '\0' || *text == '-') {
        fprintf(stderr, "%s: expected a positive number, got \"%s\"\n", what,
                text ? text : "");
        return -1;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > max) {
        fprintf(stderr, "%s: expected a number from 1 to %" PRIu64 ", got \"%s\"\n",
                what, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static uint8_t filler_byte(uint64_t seq, size_t i)
{
    return (uint8_t)('a' + (seq + i) % 26);
}

void cmp_record_fill(uint8_t *buf, size_t size, uint64_t seq)
{
    for (size_t i = 0; i < 8; i++)
        buf[i] = (uint8_t)(seq >> (8 * i));
    for (size_t i = 8; i < size; i++)
        buf[i] = filler_byte(seq, i);
}

double cmp_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

cmp_tally_t *cmp_tally_new(uint64_t n, size_t size)
{
    cmp_tally_t *self = calloc(1, sizeof *self);

    if (self == NULL)
        return NULL;
    self->n = n;
    self->size = size;
    self->seen = calloc((size_t)(n / 8 + 1), 1);
    if (self->seen == NULL)
        cmp_tally_destroy(&self);
    return self;
}

void cmp_tally_destroy(cmp_tally_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->seen);
    free(*self_p);
    *self_p = NULL;
}

bool cmp_tally_add(cmp_tally_t *self, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t seq = 0;

    if (len != self->size || len < 9)
        goto bad;
    for (size_t i = 0; i < 8; i++)
        seq |= (uint64_t)p[i] << (8 * i);
    if (seq >= self->n)
        goto bad;
    /* Check the filler at both ends: cheap, and catches truncation or mix-ups. */
    if (p[8] != filler_byte(seq, 8) || p[len - 1] != filler_byte(seq, len - 1))
        goto bad;
    if (!(self->seen[seq / 8] & (1u << (seq % 8)))) {
        self->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
        self->distinct++;
    }
    return true;
bad:
    self->bad++;
    return false;
}

uint64_t cmp_tally_distinct(const cmp_tally_t *self)
{
    return self->distinct;
}

uint64_t cmp_tally_bad(const cmp_tally_t *self)
{
    return self->bad;
}

int cmp_tally_check(const cmp_tally_t *self, const char *prog)
{
    if (self->distinct == self->n && self->bad == 0)
        return 0;
    fprintf(stderr, "%s: received %" PRIu64 " of %" PRIu64 " records (%" PRIu64
            " malformed)\n", prog, self->distinct, self->n, self->bad);
    return -1;
}
