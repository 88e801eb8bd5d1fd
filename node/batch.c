/* batch.c: splitting a line of a batch file into words (see batch.h). */
#include "batch.h"

#include <stdbool.h>

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

int nd_batch_split(char *line, char **words, size_t max, size_t *nwords, ld_error_t *err)
{
    char *in = line, *out = line;

    *nwords = 0;
    for (;;) {
        while (is_blank(*in))
            in++;
        if (*in == '\0' || *in == '#')
            return 0;
        if (*nwords == max)
            return ld_error_set(err, LD_EINVAL, "more than %zu words", max);
        /* a word: read from `in`, written unquoted at `out` (never ahead of `in`) */
        words[(*nwords)++] = out;
        while (*in != '\0' && !is_blank(*in)) {
            char c = *in++;
            if (c == '\\') {
                if (*in == '\0')
                    return ld_error_set(err, LD_EINVAL, "a \\ at the end of the line");
                *out++ = *in++;
            } else if (c == '\'') {
                while (*in != '\0' && *in != '\'')
                    *out++ = *in++;
                if (*in == '\0')
                    return ld_error_set(err, LD_EINVAL, "a ' that is never closed");
                in++;
            } else if (c == '"') {
                while (*in != '\0' && *in != '"') {
                    if (*in == '\\' && (in[1] == '"' || in[1] == '\\'))
                        in++;
                    *out++ = *in++;
                }
                if (*in == '\0')
                    return ld_error_set(err, LD_EINVAL, "a \" that is never closed");
                in++;
            } else {
                *out++ = c;
            }
        }
        /* the blank after the word (or the end) becomes its NUL: `in` is past `out` or at
         * the line's own NUL, so nothing still to be read is overwritten */
        bool end = *in == '\0';
        *out++ = '\0';
        if (end)
            return 0;
        in++;
    }
}
