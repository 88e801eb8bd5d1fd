/* text.h: the checks and measures every side applies to text it did not write:
 * UTF-8 validity, display width of Chinese text, dates and months in China
 * Standard Time, the shape of ids, and a hash of ids for in-memory tables. */
#ifndef LD_TEXT_H
#define LD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LD_ID_MAX 64          /* node and org ids: [a-z0-9][a-z0-9._-]{0,63} */

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)
 * with no NUL and no C0 control other than \t \n \r. */
bool ld_utf8_valid(const char *s, size_t len);

/* The byte-order mark Windows programs (Excel, Notepad) put before UTF-8 text, and that
 * our CSV writes for them. */
#define LD_UTF8_BOM "\xef\xbb\xbf"

/* The length of a byte-order mark at the start of s[0..len): 3, or 0 without one. */
size_t ld_utf8_bom_len(const char *s, size_t len);

/* Columns `s` takes in a terminal: CJK and fullwidth forms count 2, combining marks 0,
 * others 1.  `s` must be valid UTF-8. */
size_t ld_display_width(const char *s);

/* True if text is a node or org id: 1..64 of [a-z0-9._-], starting with [a-z0-9]. */
bool ld_id_valid(const char *text);

/* A calendar date as days since 1970-01-01; parse of exactly "YYYY-MM-DD" with a real
 * day (2023-02-29 is refused), years 1900..2199.  Returns true on success. */
bool ld_date_parse(const char *text, int32_t *days);

/* Writes "YYYY-MM-DD" and NUL into out[11]. */
void ld_date_format(int32_t days, char out[11]);

/* The years a date or a month may name. */
#define LD_YEAR_MIN 1900
#define LD_YEAR_MAX 2199

/* "YYYY-MM" (years 1900..2199): months since year 0 (year * 12 + month - 1). */
bool ld_month_parse(const char *text, int32_t *months);
void ld_month_format(int32_t months, char out[8]);

/* Year, month (1-12), day (1-31) of a day number, and back. */
void ld_date_split(int32_t days, int *year, int *month, int *day);
int32_t ld_date_join(int year, int month, int day);

/* Today's date in China Standard Time (UTC+8, no DST) at wall time `t`. */
int32_t ld_date_cst(time_t t);

/* Money in fen from "123", "123.4" or "123.45" yuan, >= 0 and < 10^9 yuan. */
bool ld_money_parse(const char *text, int64_t *fen);
/* Writes "123.45" and NUL into out[24]. */
void ld_money_format(int64_t fen, char out[24]);

/* Writes a printable, shortened copy of untrusted text into out[outsz] for an error
 * message: printable ASCII and well-formed multibyte characters kept, quotes, backslashes
 * and every other byte as \xNN, at most `max_in` input bytes, then "..." if cut.
 * Always NUL-terminates (outsz > 0). */
void ld_quote(const char *s, size_t max_in, char *out, size_t outsz);

/* The 64-bit FNV-1a hash of a NUL-terminated string: for in-memory tables keyed by an id
 * (never stored, never sent). */
uint64_t ld_text_hash(const char *s);

#define LD_QUOTE_MAX 200   /* input bytes an error message quotes by default */

#endif
