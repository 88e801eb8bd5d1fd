/* text.c: strict UTF-8, terminal display width of Chinese text, node and org ids,
 * calendar dates and months (proleptic Gregorian, China Standard Time) and money. */
#include "text.h"

#include <stdio.h>
#include <string.h>

#define CST_OFFSET_S (8 * 3600)
#define MONEY_FEN_LIMIT 100000000000LL   /* 10^9 yuan in fen */

/* Decodes one code point at s[0..len).  Returns its byte length (1..4), or 0 if the
 * bytes there are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2; c = b0 & 0x1fu; min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3; c = b0 & 0x0fu; min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4; c = b0 & 0x07u; min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* True if any of the eight bytes of w (all below 0x80) is below 0x20. */
static bool any_below_space(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    return ((w - ones * 0x20) & ~w & ones * 0x80) != 0;
}

static bool continuation(unsigned char b)
{
    return (b & 0xc0) == 0x80;
}

size_t ld_utf8_bom_len(const char *s, size_t len)
{
    return len >= 3 && memcmp(s, LD_UTF8_BOM, 3) == 0 ? 3 : 0;
}

/* The same rules as utf8_decode, checked without building code points: text is most
 * of what a node and the broker check on every change, and most of it is Chinese. */
bool ld_utf8_valid(const char *s, size_t len)
{
    if (s == NULL)
        return len == 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char b = p[0];
        if (b < 0x80) {
            /* eight ASCII bytes at a time while none is a control character */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, sizeof w);
                if ((w & UINT64_C(0x8080808080808080)) != 0 || any_below_space(w))
                    break;
                p += 8;
            }
            if (p == end)
                break;
            b = p[0];
        }
        size_t left = (size_t)(end - p);
        if (b < 0x80) {
            if (b < 0x20 && b != '\t' && b != '\n' && b != '\r')
                return false;
            p++;
        } else if (b < 0xc2) {
            return false;                     /* a continuation, or an overlong lead */
        } else if (b < 0xe0) {
            if (left < 2 || !continuation(p[1]))
                return false;
            p += 2;
        } else if (b < 0xf0) {
            /* a run of three-byte characters (most of Chinese) in one loop */
            do {
                if (left < 3 || !continuation(p[1]) || !continuation(p[2])
                    || (b == 0xe0 && p[1] < 0xa0)     /* overlong */
                    || (b == 0xed && p[1] >= 0xa0))   /* a surrogate */
                    return false;
                p += 3;
                left -= 3;
                b = left > 0 ? p[0] : 0;
            } while ((b & 0xf0) == 0xe0);
        } else {
            if (b > 0xf4 || left < 4 || !continuation(p[1]) || !continuation(p[2])
                || !continuation(p[3])
                || (b == 0xf0 && p[1] < 0x90)     /* overlong */
                || (b == 0xf4 && p[1] >= 0x90))   /* past U+10FFFF */
                return false;
            p += 4;
        }
    }
    return true;
}

typedef struct range { uint32_t lo, hi; } range_t;

/* Combining marks and zero-width characters: no column of their own. */
static const range_t zero_width[] = {
    { 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd }, { 0x0610, 0x061a },
    { 0x064b, 0x065f }, { 0x0e31, 0x0e31 }, { 0x0e34, 0x0e3a }, { 0x0e47, 0x0e4e },
    { 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff }, { 0x200b, 0x200f }, { 0x2028, 0x202e },
    { 0x2060, 0x2064 }, { 0x20d0, 0x20ff }, { 0x302a, 0x302d }, { 0x3099, 0x309a },
    { 0xfe00, 0xfe0f }, { 0xfe20, 0xfe2f }, { 0xfeff, 0xfeff }, { 0xe0100, 0xe01ef },
};

/* East Asian wide and fullwidth: two columns. */
static const range_t wide[] = {
    { 0x1100, 0x115f },   /* Hangul Jamo initials */
    { 0x2e80, 0x303e },   /* CJK radicals, Kangxi, ideographic description, CJK punctuation */
    { 0x3041, 0x33ff },   /* kana, bopomofo, Hangul compatibility jamo, CJK compatibility */
    { 0x3400, 0x4dbf },   /* CJK Unified Extension A */
    { 0x4e00, 0x9fff },   /* CJK Unified */
    { 0xa000, 0xa4cf },   /* Yi */
    { 0xa960, 0xa97f },   /* Hangul Jamo Extended-A */
    { 0xac00, 0xd7a3 },   /* Hangul syllables */
    { 0xf900, 0xfaff },   /* CJK compatibility ideographs */
    { 0xfe10, 0xfe19 },   /* vertical forms */
    { 0xfe30, 0xfe6f },   /* CJK compatibility forms, small form variants */
    { 0xff00, 0xff60 },   /* fullwidth forms */
    { 0xffe0, 0xffe6 },   /* fullwidth signs */
    { 0x1f300, 0x1f64f }, /* pictographs, emoticons */
    { 0x1f900, 0x1f9ff }, /* supplemental symbols and pictographs */
    { 0x20000, 0x2fffd }, /* CJK Extensions B.. */
    { 0x30000, 0x3fffd }, /* CJK Extension G.. */
};

static bool in_ranges(uint32_t cp, const range_t *r, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

size_t ld_display_width(const char *s)
{
    if (s == NULL)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    size_t i = 0, width = 0;
    while (i < len) {
        if (p[i] >= 0x20 && p[i] < 0x7f) {   /* printable ASCII: one column */
            width++;
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {            /* not valid: count the byte as one column */
            width++;
            i++;
            continue;
        }
        i += n;
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            continue;
        if (in_ranges(cp, zero_width, sizeof zero_width / sizeof zero_width[0]))
            continue;
        width += in_ranges(cp, wide, sizeof wide / sizeof wide[0]) ? 2 : 1;
    }
    return width;
}

bool ld_id_valid(const char *text)
{
    if (text == NULL)
        return false;
    size_t i = 0;
    for (; text[i] != '\0'; i++) {
        char ch = text[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (i >= LD_ID_MAX)
            return false;
        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
            return false;
    }
    return i > 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
int32_t ld_date_join(int year, int month, int day)
{
    int y = year - (month <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int mp = (month + 9) % 12;
    int doy = (153 * mp + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

void ld_date_split(int32_t days, int *year, int *month, int *day)
{
    int z = days + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int y = yoe + era * 400;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    int d = doy - (153 * mp + 2) / 5 + 1;
    int m = mp < 10 ? mp + 3 : mp - 9;
    *year = y + (m <= 2);
    *month = m;
    *day = d;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n ASCII digits. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool ld_date_parse(const char *text, int32_t *days)
{
    int y, m, d;
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return false;
    if (!digits(text, 4, &y) || !digits(text + 5, 2, &m) || !digits(text + 8, 2, &d))
        return false;
    if (y < LD_YEAR_MIN || y > LD_YEAR_MAX || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    if (days != NULL)
        *days = ld_date_join(y, m, d);
    return true;
}

void ld_date_format(int32_t days, char out[11])
{
    int y, m, d;
    ld_date_split(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        snprintf(out, 11, "0000-00-00");
        return;
    }
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
}

bool ld_month_parse(const char *text, int32_t *months)
{
    int y, m;
    if (text == NULL || strlen(text) != 7 || text[4] != '-')
        return false;
    if (!digits(text, 4, &y) || !digits(text + 5, 2, &m))
        return false;
    if (y < LD_YEAR_MIN || y > LD_YEAR_MAX || m < 1 || m > 12)
        return false;
    if (months != NULL)
        *months = y * 12 + m - 1;
    return true;
}

void ld_month_format(int32_t months, char out[8])
{
    if (months < 0 || months > 9999 * 12 + 11) {
        snprintf(out, 8, "0000-00");
        return;
    }
    snprintf(out, 8, "%04d-%02d", (int)(months / 12), (int)(months % 12) + 1);
}

int32_t ld_date_cst(time_t t)
{
    long long s = (long long)t + CST_OFFSET_S;
    long long d = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    return (int32_t)d;
}

bool ld_money_parse(const char *text, int64_t *fen)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    int64_t yuan = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        if (i >= 9)                 /* 10 digits is >= 10^9 yuan */
            return false;
        yuan = yuan * 10 + (text[i] - '0');
    }
    int64_t cents = 0;
    if (text[i] == '.') {
        i++;
        size_t k = 0;
        for (; text[i] >= '0' && text[i] <= '9'; i++, k++) {
            if (k >= 2)
                return false;
            cents = cents * 10 + (text[i] - '0');
        }
        if (k == 0)
            return false;
        if (k == 1)
            cents *= 10;
    }
    if (text[i] != '\0')
        return false;
    int64_t v = yuan * 100 + cents;
    if (v < 0 || v >= MONEY_FEN_LIMIT)
        return false;
    if (fen != NULL)
        *fen = v;
    return true;
}

void ld_money_format(int64_t fen, char out[24])
{
    const char *sign = "";
    uint64_t v;
    if (fen < 0) {
        sign = "-";
        v = (uint64_t)0 - (uint64_t)fen;
    } else {
        v = (uint64_t)fen;
    }
    snprintf(out, 24, "%s%llu.%02llu", sign, (unsigned long long)(v / 100),
             (unsigned long long)(v % 100));
}

void ld_quote(const char *s, size_t max_in, char *out, size_t outsz)
{
    size_t o = 0, i = 0;
    size_t len = strlen(s);
    if (outsz == 0)
        return;
    while (i < len && i < max_in) {
        unsigned char ch = (unsigned char)s[i];
        size_t n = 1;
        bool keep = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '\'';
        if (ch >= 0xc0) {
            n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
            keep = i + n <= len && ld_utf8_valid(s + i, n);
            if (!keep)
                n = 1;
        }
        size_t need = keep ? n : 4;
        if (o + need + 4 > outsz)
            break;
        if (keep) {
            memcpy(out + o, s + i, n);
            o += n;
        } else {
            snprintf(out + o, outsz - o, "\\x%02x", ch);
            o += 4;
        }
        i += n;
    }
    if (i < len && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

uint64_t ld_text_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}
