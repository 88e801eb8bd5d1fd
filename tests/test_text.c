/* test_text.c: UTF-8 validity, display width of Chinese text, ids, dates and months
 * in China Standard Time, and money. */
#include <criterion/criterion.h>
#include <string.h>

#include "text.h"

TestSuite(text);

static bool valid(const char *s)
{
    return ld_utf8_valid(s, strlen(s));
}

Test(text, well_formed_utf8_is_valid)
{
    cr_assert(valid(""));
    cr_assert(valid("abc"));
    cr_assert(valid("两地双管"));
    cr_assert(valid("tab\tand\r\nnewline"));
    cr_assert(valid("\xc2\x80"));                     /* U+0080 */
    cr_assert(valid("\xef\xbf\xbf"));                 /* U+FFFF */
    cr_assert(valid("\xf0\xa0\x80\x80"));             /* U+20000, CJK Extension B */
    cr_assert(valid("\xf4\x8f\xbf\xbf"));             /* U+10FFFF */
}

Test(text, malformed_utf8_is_refused)
{
    cr_assert_not(valid("\x80"));                     /* a lone continuation */
    cr_assert_not(valid("\xc0\x80"));                 /* overlong NUL */
    cr_assert_not(valid("\xc1\xbf"));                 /* overlong */
    cr_assert_not(valid("\xe0\x9f\xbf"));             /* overlong three-byte */
    cr_assert_not(valid("\xf0\x8f\xbf\xbf"));         /* overlong four-byte */
    cr_assert_not(valid("\xed\xa0\x80"));             /* U+D800 surrogate */
    cr_assert_not(valid("\xed\xbf\xbf"));             /* U+DFFF surrogate */
    cr_assert_not(valid("\xf4\x90\x80\x80"));         /* U+110000 */
    cr_assert_not(valid("\xf5\x80\x80\x80"));
    cr_assert_not(valid("\xff"));
    cr_assert_not(valid("\xe4\xb8"));                 /* cut short */
    cr_assert_not(valid("\xe4\x41\x41"));             /* continuation missing */
    cr_assert_not(valid("bell\x07"));
    cr_assert_not(valid("\x1b[31m"));
    cr_assert_not(ld_utf8_valid("a\0b", 3), "an embedded NUL");
    cr_assert(ld_utf8_valid("两", 3));
    cr_assert_not(ld_utf8_valid("两", 2), "the length is honoured");
}

Test(text, chinese_and_fullwidth_take_two_columns)
{
    cr_assert_eq(ld_display_width(""), 0);
    cr_assert_eq(ld_display_width("abc"), 3);
    cr_assert_eq(ld_display_width("林术平"), 6);
    cr_assert_eq(ld_display_width("龙潭村 tingzi"), 13);
    cr_assert_eq(ld_display_width("，。「」"), 8);          /* CJK punctuation */
    cr_assert_eq(ld_display_width("ＡＢ１"), 6);            /* fullwidth forms */
    cr_assert_eq(ld_display_width("한국"), 4);              /* Hangul */
    cr_assert_eq(ld_display_width("ひらがなカタカナ"), 16);  /* kana */
    cr_assert_eq(ld_display_width("\xf0\xa0\x80\x80"), 2);  /* CJK Extension B */
    cr_assert_eq(ld_display_width("ｱ"), 1);                 /* halfwidth katakana */
}

Test(text, combining_marks_take_no_column)
{
    cr_assert_eq(ld_display_width("e\xcc\x81"), 1);          /* e + combining acute */
    cr_assert_eq(ld_display_width("a\xe2\x80\x8b" "b"), 2);  /* zero-width space */
    cr_assert_eq(ld_display_width("か\xe3\x82\x99"), 2);     /* kana voiced mark */
}

Test(text, ids_are_lowercase_ascii_starting_with_a_letter_or_digit)
{
    cr_assert(ld_id_valid("zhuyuan"));
    cr_assert(ld_id_valid("dongguan-branch"));
    cr_assert(ld_id_valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    cr_assert(ld_id_valid("a.b_c-9"));
    cr_assert_not(ld_id_valid(""));
    cr_assert_not(ld_id_valid(NULL));
    cr_assert_not(ld_id_valid("-lead"));
    cr_assert_not(ld_id_valid(".hidden"));
    cr_assert_not(ld_id_valid("Upper"));
    cr_assert_not(ld_id_valid("with space"));
    cr_assert_not(ld_id_valid("东莞"));
    cr_assert_not(ld_id_valid("a/b"));
    char id[LD_ID_MAX + 2];
    memset(id, 'a', LD_ID_MAX);
    id[LD_ID_MAX] = '\0';
    cr_assert(ld_id_valid(id));
    id[LD_ID_MAX] = 'a';
    id[LD_ID_MAX + 1] = '\0';
    cr_assert_not(ld_id_valid(id));
}

Test(text, every_day_from_1900_to_2199_formats_and_parses_back)
{
    int32_t first, last;
    cr_assert(ld_date_parse("1900-01-01", &first));
    cr_assert(ld_date_parse("2199-12-31", &last));
    cr_assert_eq(last - first + 1, 300 * 365 + 73, "75 multiples of 4, less 1900 and 2100");
    char text[11];
    int prev_y = 1899, prev_m = 12, prev_d = 31;
    for (int32_t d = first; d <= last; d++) {
        ld_date_format(d, text);
        int32_t back;
        cr_assert(ld_date_parse(text, &back), "%s", text);
        cr_assert_eq(back, d, "%s", text);
        int y, m, dd;
        ld_date_split(d, &y, &m, &dd);
        cr_assert_eq(ld_date_join(y, m, dd), d);
        bool next = (y == prev_y && m == prev_m && dd == prev_d + 1) ||
                    (y == prev_y && m == prev_m + 1 && dd == 1) ||
                    (y == prev_y + 1 && m == 1 && dd == 1 && prev_m == 12);
        cr_assert(next, "%s follows %d-%d-%d", text, prev_y, prev_m, prev_d);
        prev_y = y;
        prev_m = m;
        prev_d = dd;
    }
}

Test(text, the_epoch_and_known_dates_have_their_day_numbers)
{
    int32_t d;
    cr_assert(ld_date_parse("1970-01-01", &d));
    cr_assert_eq(d, 0);
    cr_assert(ld_date_parse("2010-05-04", &d));
    cr_assert_eq(d, 14733);
    cr_assert(ld_date_parse("1969-12-31", &d));
    cr_assert_eq(d, -1);
    char text[11];
    ld_date_format(-25567, text);
    cr_assert_str_eq(text, "1900-01-01");
}

Test(text, impossible_or_out_of_range_dates_are_refused)
{
    const char *bad[] = {
        "2023-02-29", "1900-02-29", "2100-02-29", "2010-04-31", "2010-06-31", "2010-00-01",
        "2010-13-01", "2010-01-00", "2010-01-32", "1899-12-31", "2200-01-01", "10-05-01",
        "2010-5-01", "2010-05-1", "2010-05-01T00", " 2010-05-01", "2010_05_01", "", "２０１０-05-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(ld_date_parse(bad[i], NULL), "%s", bad[i]);
    cr_assert_not(ld_date_parse(NULL, NULL));
    cr_assert(ld_date_parse("2000-02-29", NULL));
    cr_assert(ld_date_parse("2024-02-29", NULL));
}

Test(text, months_parse_and_format)
{
    int32_t m;
    cr_assert(ld_month_parse("2010-05", &m));
    cr_assert_eq(m, 2010 * 12 + 4);
    char text[8];
    ld_month_format(m, text);
    cr_assert_str_eq(text, "2010-05");
    ld_month_format(1900 * 12, text);
    cr_assert_str_eq(text, "1900-01");
    cr_assert_not(ld_month_parse("2010-00", &m));
    cr_assert_not(ld_month_parse("2010-13", &m));
    cr_assert_not(ld_month_parse("1899-12", &m));
    cr_assert_not(ld_month_parse("2200-01", &m));
    cr_assert_not(ld_month_parse("2010-5", &m));
    cr_assert_not(ld_month_parse("2010-05-01", &m));
}

Test(text, today_in_china_standard_time_turns_at_16_00_utc)
{
    cr_assert_eq(ld_date_cst(0), 0);
    cr_assert_eq(ld_date_cst(16 * 3600 - 1), 0);
    cr_assert_eq(ld_date_cst(16 * 3600), 1, "midnight in Beijing is 16:00 UTC");
    cr_assert_eq(ld_date_cst(-8 * 3600), 0);
    cr_assert_eq(ld_date_cst(-8 * 3600 - 1), -1);
    /* 2010-05-03 20:00 UTC is 2010-05-04 04:00 in Beijing */
    cr_assert_eq(ld_date_cst((time_t)1272916800), 14733);
}

Test(text, money_parses_yuan_into_fen)
{
    int64_t fen;
    cr_assert(ld_money_parse("123", &fen));
    cr_assert_eq(fen, 12300);
    cr_assert(ld_money_parse("123.4", &fen));
    cr_assert_eq(fen, 12340);
    cr_assert(ld_money_parse("123.45", &fen));
    cr_assert_eq(fen, 12345);
    cr_assert(ld_money_parse("0", &fen));
    cr_assert_eq(fen, 0);
    cr_assert(ld_money_parse("999999999.99", &fen));
    cr_assert_eq(fen, INT64_C(99999999999));
    const char *bad[] = { "", "-1", "1.234", "1.", ".5", "1e3", "1,000", "1000000000",
                          "12 ", "+5", "五十" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(ld_money_parse(bad[i], &fen), "%s", bad[i]);
}

Test(text, money_formats_as_yuan_with_two_decimals)
{
    char out[24];
    ld_money_format(12345, out);
    cr_assert_str_eq(out, "123.45");
    ld_money_format(5, out);
    cr_assert_str_eq(out, "0.05");
    ld_money_format(0, out);
    cr_assert_str_eq(out, "0.00");
    ld_money_format(-250, out);
    cr_assert_str_eq(out, "-2.50");
    ld_money_format(INT64_MIN, out);
    cr_assert_str_eq(out, "-92233720368547758.08");
}

Test(text, quoting_keeps_chinese_and_escapes_bad_bytes_quotes_and_controls)
{
    char out[64];
    ld_quote("林术平", LD_QUOTE_MAX, out, sizeof out);
    cr_assert_str_eq(out, "林术平");
    ld_quote("a\xff" "b\n'\"", LD_QUOTE_MAX, out, sizeof out);
    cr_assert_str_eq(out, "a\\xffb\\x0a\\x27\\x22");
    /* A truncated multibyte character is escaped byte by byte, never copied half. */
    ld_quote("\xe6\x9e", LD_QUOTE_MAX, out, sizeof out);
    cr_assert_str_eq(out, "\\xe6\\x9e");
}

Test(text, quoting_cuts_long_text_with_an_ellipsis_and_always_terminates)
{
    char out[16];
    ld_quote("abcdefghijklmnopqrstuvwxyz", LD_QUOTE_MAX, out, sizeof out);
    cr_assert_eq(strlen(out), 15);
    cr_assert_str_eq(out, "abcdefghijkl...");
    ld_quote("abcdef", 3, out, sizeof out);
    cr_assert_str_eq(out, "abc...");
    char tiny[1];
    ld_quote("abc", LD_QUOTE_MAX, tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "");
}

/* An independent reading of the rules, one code point at a time: well-formed UTF-8
 * (no overlong form, no surrogate, nothing past U+10FFFF) with no control character
 * but tab, LF and CR. */
static bool oracle_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3
                 : (b & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || i + n > len)
            return false;
        uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1fu) : n == 3 ? (b & 0x0fu) : (b & 0x07u);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        static const uint32_t least[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
            return false;
        i += n;
    }
    return true;
}

/* Checks buf[0..len) alone and inside ASCII runs of every length around the 8-byte
 * steps the validator takes. */
static void check_against_oracle(const unsigned char *seq, size_t n)
{
    bool want = oracle_valid(seq, n);
    cr_assert_eq(ld_utf8_valid((const char *)seq, n), want, "%02x %02x %02x %02x (%zu)",
                 seq[0], n > 1 ? seq[1] : 0, n > 2 ? seq[2] : 0, n > 3 ? seq[3] : 0, n);
    unsigned char buf[32];
    for (size_t pre = 0; pre <= 9; pre++) {
        memset(buf, 'a', sizeof buf);
        memcpy(buf + pre, seq, n);
        cr_assert_eq(ld_utf8_valid((const char *)buf, pre + n + 9), want,
                     "%02x.. (%zu) after %zu ASCII bytes", seq[0], n, pre);
    }
}

Test(text, every_sequence_of_up_to_three_bytes_is_judged_as_the_rules_say)
{
    unsigned char s[4] = { 0 };
    size_t valid3 = 0;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check_against_oracle(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check_against_oracle(s, 2);
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                bool want = oracle_valid(s, 3);
                cr_assert_eq(ld_utf8_valid((const char *)s, 3), want, "%02x %02x %02x", a, b, c);
                valid3 += want;
            }
        }
    }
    /* 0x20..0x7f plus tab, LF and CR make 99 one-byte characters; three valid bytes:
     * 99^3 + 2 * 99 * 1920 (a two-byte one and ASCII, either way round) + 61,440
     * three-byte characters (U+0800..U+FFFF less 2,048 surrogates). */
    cr_assert_eq(valid3, 99u * 99 * 99 + 2u * 99 * 1920 + 61440u, "%zu", valid3);
    for (unsigned a = 0xc0; a < 256; a++) {          /* leads in ASCII context */
        for (unsigned b = 0; b < 256; b += 5) {
            s[0] = (unsigned char)a;
            s[1] = (unsigned char)b;
            s[2] = 0x80;
            check_against_oracle(s, 2);
            check_against_oracle(s, 3);
        }
    }
}

Test(text, four_byte_sequences_and_their_edges_are_judged_as_the_rules_say)
{
    static const unsigned char tails[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                           0xbf, 0xc0, 0xe4, 0xff };
    unsigned char s[4];
    for (unsigned a = 0xe0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t c = 0; c < sizeof tails; c++)
                for (size_t d = 0; d < sizeof tails; d++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = tails[c];
                    s[3] = tails[d];
                    check_against_oracle(s, 4);
                    check_against_oracle(s, 3);
                }
}

Test(text, random_mixed_text_is_judged_as_the_rules_say)
{
    static const char *const pieces[] = { "a", "Zz", "\t", "\n", "\r", "两", "地", "。",
                                          "\xf0\xa0\x80\x80", "\xc2\xa9", "abcdefgh", " ",
                                          "\x07", "\x80", "\xed\xa0\x80", "\xe4\xb8",
                                          "\xe0\x80\x80" };
    uint64_t seed = UINT64_C(0x7574663832303236);
    unsigned char buf[256];
    size_t judged_valid = 0, judged_invalid = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        int parts = (int)(seed % 12);
        for (int k = 0; k < parts; k++) {
            seed = seed * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
            /* mostly well-formed pieces, a broken one now and then */
            size_t pick = (size_t)(seed >> 33) % (sizeof pieces / sizeof pieces[0]);
            if (pick >= 12 && (seed >> 20) % 8 != 0)
                pick %= 12;
            size_t n = strlen(pieces[pick]);
            memcpy(buf + len, pieces[pick], n);
            len += n;
        }
        seed = seed * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        bool want = oracle_valid(buf, len);
        cr_assert_eq(ld_utf8_valid((const char *)buf, len), want, "round %d", round);
        if (want)
            judged_valid++;
        else
            judged_invalid++;
    }
    cr_assert_gt(judged_valid, 1000);
    cr_assert_gt(judged_invalid, 1000);
}

/* The published FNV-1a 64-bit test vectors, and a Chinese id hashed byte by byte. */
Test(text, text_hash_is_fnv_1a_64)
{
    cr_assert_eq(ld_text_hash(""), UINT64_C(0xcbf29ce484222325));
    cr_assert_eq(ld_text_hash("a"), UINT64_C(0xaf63dc4c8601ec8c));
    cr_assert_eq(ld_text_hash("foobar"), UINT64_C(0x85944171f73967e8));
    cr_assert_neq(ld_text_hash("竹园镇"), ld_text_hash("竹园"));
}

Test(text, a_byte_order_mark_is_measured_only_at_the_start_and_whole)
{
    cr_assert_eq(ld_utf8_bom_len(LD_UTF8_BOM "姓名", 9), 3);
    cr_assert_eq(ld_utf8_bom_len(LD_UTF8_BOM, 3), 3);
    cr_assert_eq(ld_utf8_bom_len(LD_UTF8_BOM, 2), 0, "a mark cut short is not one");
    cr_assert_eq(ld_utf8_bom_len("姓名" LD_UTF8_BOM, 9), 0);
    cr_assert_eq(ld_utf8_bom_len("", 0), 0);
}
