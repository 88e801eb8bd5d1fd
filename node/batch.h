/* batch.h: a line of a batch file split into words the way a shell splits a command line,
 * without any expansion: blanks separate words; '...' keeps everything inside as it is;
 * "..." too, except that \" and \\ stand for " and \; outside quotes, \ keeps the next
 * character as it is; a word that begins with # starts a comment to the end of the line. */
#ifndef ND_BATCH_H
#define ND_BATCH_H

#include <stddef.h>
#include "error.h"

/* Splits `line` (NUL-terminated, no newline) in place: words[0..*nwords) point into it.
 * 0, or LD_EINVAL with err set (an unterminated quote, a \ at the very end, more than
 * `max` words); *nwords is 0 for a blank or comment line. */
int nd_batch_split(char *line, char **words, size_t max, size_t *nwords, ld_error_t *err);

#endif
