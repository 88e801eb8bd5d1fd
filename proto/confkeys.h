/* confkeys.h: the keys a config file has set so far, each with its line, so that a
 * key given twice (or an indented line, which inih reads as the key again) is refused
 * by name instead of the later value silently winning.  Node and broker configs both
 * use it.  Ownership: an ld_confkeys_t owns its copies; ld_confkeys_free releases them. */
#ifndef LD_CONFKEYS_H
#define LD_CONFKEYS_H

#include <stddef.h>

typedef struct ld_confkeys {
    struct ld_confkey *keys;   /* section and name, and the line that set them */
    size_t             n, cap;
} ld_confkeys_t;

/* Notes that `name` of `section` is set on `line`.  Returns 0 if it was not set before,
 * the line that set it first if it was, or -1 when out of memory. */
int ld_confkeys_note(ld_confkeys_t *keys, const char *section, const char *name, int line);

/* Frees the copies and empties the set; safe to call twice. */
void ld_confkeys_free(ld_confkeys_t *keys);

#endif
