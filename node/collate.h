/* collate.h: people's names in the order a Chinese reader looks them up: by pinyin, as
 * a dictionary or a spreadsheet sorts them (ICU's "zh" collation), not by code point
 * (张 before 李 by code point; 李 li, 王 wang, 张 zhang, 赵 zhao by pinyin); or, as party
 * rosters list them, by the strokes of the surname (姓氏笔画: 丁 2, 王 4, 李 7, 赵 9). */
#ifndef ND_COLLATE_H
#define ND_COLLATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct nd_collate nd_collate_t;

typedef enum nd_name_order {
    ND_NAMES_PINYIN = 0,      /* ICU "zh" */
    ND_NAMES_STROKE           /* ICU "zh@collation=stroke" */
} nd_name_order_t;

/* "pinyin" or "stroke" (or 拼音, 笔画) into *out; false for anything else. */
bool nd_name_order_parse(const char *text, nd_name_order_t *out);

/* A collator (cheap: ICU's is opened at the first comparison); NULL with err set when
 * out of memory.  Owned by the caller. */
nd_collate_t *nd_collate_new(ld_error_t *err);

/* Frees *self_p and NULLs it; safe on NULL. */
void nd_collate_destroy(nd_collate_t **self_p);

/* Orders names by `order` from now on (pinyin until this is called). */
void nd_collate_set_order(nd_collate_t *self, nd_name_order_t order);

/* <0, 0 or >0 as UTF-8 text a sorts before, with or after b. */
int nd_collate_cmp(nd_collate_t *self, const char *a, size_t alen, const char *b, size_t blen);

/* Adds the collation "zh" (nd_collate_cmp) to connection db: ORDER BY x COLLATE "zh".
 * self must outlive db's use of it. */
int nd_collate_register(nd_collate_t *self, sqlite3 *db, ld_error_t *err);

/* Writes text's sort key into out (size bytes) as lowercase hex, which strcmp orders as
 * nd_collate_cmp orders the texts; 0, or -1 (out empty) when out is too small or text is
 * not UTF-8. */
int nd_collate_key(nd_collate_t *self, const char *text, char *out, size_t size);

#endif
