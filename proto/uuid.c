/* uuid.c: version-7 (time-ordered) and version-4 (random) UUIDs from getrandom(2), as
 * lowercase text, and the check that a piece of text is one. */
#include "uuid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Fills buf[len] from getrandom(2); 0 or LD_EIO. */
static int fill_random(uint8_t *buf, size_t len, ld_error_t *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ld_error_set(err, LD_EIO, "getrandom failed: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    return 0;
}

/* The 16 bytes as 8-4-4-4-12 lowercase hex and a NUL in out[37]. */
static void format_uuid(const uint8_t b[16], char out[LD_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

int ld_uuid_new(char out[LD_UUID_LEN + 1], ld_error_t *err)
{
    uint8_t b[16];
    int rc = fill_random(b, sizeof b, err);
    if (rc != 0)
        return rc;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    format_uuid(b, out);
    return 0;
}

void ld_uuid7_init(ld_uuid7_t *g)
{
    memset(g, 0, sizeof *g);
    g->used = sizeof g->random;               /* none drawn yet */
}

int ld_uuid7_next(ld_uuid7_t *g, uint64_t now_ms, char out[LD_UUID_LEN + 1], ld_error_t *err)
{
    uint8_t r[8];
    if (g->used + sizeof r > sizeof g->random) {
        int rc = fill_random(g->random, sizeof g->random, err);
        if (rc != 0)
            return rc;
        g->used = 0;
    }
    memcpy(r, g->random + g->used, sizeof r);
    g->used += sizeof r;
    uint64_t ms = now_ms & 0xffffffffffffull;
    if (ms <= g->ms) {                  /* same millisecond, or the clock stepped back */
        ms = g->ms;
        if (++g->count > 0xfff) {       /* 4,096 ids in one millisecond: borrow the next */
            ms++;
            g->count = 0;
        }
    } else {
        g->count = 0;
    }
    g->ms = ms;
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (g->count >> 8));            /* version 7 */
    b[7] = (uint8_t)(g->count & 0xff);
    b[8] = (uint8_t)(0x80 | (r[0] & 0x3f));               /* RFC 4122 variant */
    memcpy(b + 9, r + 1, 7);
    format_uuid(b, out);
    return 0;
}

bool ld_uuid_valid(const char *text)
{
    if (text == NULL)
        return false;
    for (size_t i = 0; i < LD_UUID_LEN; i++) {
        char ch = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return false;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return false;
        }
    }
    return text[LD_UUID_LEN] == '\0';
}
