/* collate.c: names by pinyin or by strokes, through ICU's collator for "zh".  One per store
 * (nd_store_open), used from the thread that uses the store; ICU's collator is opened
 * at the first comparison (a few milliseconds), so that a command that sorts no names
 * pays nothing.  Should ICU fail then, texts compare byte by byte: the order stays
 * total. */
#include "collate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucol.h>
#include <unicode/ustring.h>

#define KEY_TEXT_MAX 256      /* UTF-16 units of a text a sort key is made for */
#define KEY_BYTES_MAX 1024

struct nd_collate {
    UCollator      *coll;     /* NULL until first used */
    bool            failed;   /* ICU gave none */
    nd_name_order_t order;
};

bool nd_name_order_parse(const char *text, nd_name_order_t *out)
{
    if (strcmp(text, "pinyin") == 0 || strcmp(text, "拼音") == 0)
        *out = ND_NAMES_PINYIN;
    else if (strcmp(text, "stroke") == 0 || strcmp(text, "笔画") == 0)
        *out = ND_NAMES_STROKE;
    else
        return false;
    return true;
}

nd_collate_t *nd_collate_new(ld_error_t *err)
{
    nd_collate_t *self = calloc(1, sizeof *self);
    if (!self)
        ld_error_set(err, LD_ENOMEM, "collate: out of memory");
    return self;
}

/* ICU's collator, opened on first use; NULL if ICU has none. */
static UCollator *collator(nd_collate_t *self)
{
    if (!self->coll && !self->failed) {
        UErrorCode status = U_ZERO_ERROR;
        self->coll = ucol_open(self->order == ND_NAMES_STROKE ? "zh@collation=stroke" : "zh",
                               &status);
        if (U_FAILURE(status)) {
            if (self->coll)
                ucol_close(self->coll);
            self->coll = NULL;
            self->failed = true;
        }
    }
    return self->coll;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (unsigned char) a[i] < (unsigned char) b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

void nd_collate_destroy(nd_collate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->coll)
        ucol_close((*self_p)->coll);
    free(*self_p);
    *self_p = NULL;
}

void nd_collate_set_order(nd_collate_t *self, nd_name_order_t order)
{
    if (order == self->order)
        return;
    if (self->coll)
        ucol_close(self->coll);
    self->coll = NULL;             /* opened again, in the new order, when next used */
    self->failed = false;
    self->order = order;
}

int nd_collate_cmp(nd_collate_t *self, const char *a, size_t alen, const char *b, size_t blen)
{
    UCollator *coll = collator(self);
    UErrorCode status = U_ZERO_ERROR;
    if (!coll || alen > INT32_MAX || blen > INT32_MAX)
        return bytes_cmp(a, alen, b, blen);
    UCollationResult r = ucol_strcollUTF8(coll, a, (int32_t) alen, b, (int32_t) blen, &status);
    if (U_FAILURE(status))         /* (ICU reads a byte that is not UTF-8 as U+FFFD) */
        return bytes_cmp(a, alen, b, blen);
    return r == UCOL_LESS ? -1 : r == UCOL_GREATER ? 1 : 0;
}

static int collate_sql(void *ctx, int alen, const void *a, int blen, const void *b)
{
    return nd_collate_cmp(ctx, a, (size_t) alen, b, (size_t) blen);
}

int nd_collate_register(nd_collate_t *self, sqlite3 *db, ld_error_t *err)
{
    if (sqlite3_create_collation_v2(db, "zh", SQLITE_UTF8, self, collate_sql, NULL) != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "collate: cannot add the collation zh: %s",
                            sqlite3_errmsg(db));
    return 0;
}

int nd_collate_key(nd_collate_t *self, const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    UChar wide[KEY_TEXT_MAX];
    uint8_t key[KEY_BYTES_MAX];
    int32_t wlen = 0;
    UErrorCode status = U_ZERO_ERROR;
    if (size == 0)
        return -1;
    out[0] = '\0';
    UCollator *coll = collator(self);
    if (!coll)
        return -1;
    u_strFromUTF8(wide, KEY_TEXT_MAX, &wlen, text, -1, &status);
    if (U_FAILURE(status) || wlen > KEY_TEXT_MAX)
        return -1;
    int32_t n = ucol_getSortKey(coll, wide, wlen, key, KEY_BYTES_MAX);
    if (n <= 0 || n > KEY_BYTES_MAX)
        return -1;
    n--;                                    /* the key's own terminating zero */
    if ((size_t) n * 2 + 1 > size)
        return -1;
    for (int32_t i = 0; i < n; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
