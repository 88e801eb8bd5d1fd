/* confkeys.c: the keys a config file has set, with their lines (confkeys.h).  A config
 * file holds a dozen keys: a list searched from the start is enough. */
#include "confkeys.h"

#include <stdlib.h>
#include <string.h>

struct ld_confkey {
    char *section;
    char *name;
    int   line;
};

int ld_confkeys_note(ld_confkeys_t *keys, const char *section, const char *name, int line)
{
    for (size_t i = 0; i < keys->n; i++) {
        if (strcmp(keys->keys[i].section, section) == 0 && strcmp(keys->keys[i].name, name) == 0)
            return keys->keys[i].line > 0 ? keys->keys[i].line : 1;
    }
    if (keys->n == keys->cap) {
        size_t cap = keys->cap ? keys->cap * 2 : 16;
        struct ld_confkey *grown = realloc(keys->keys, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        keys->keys = grown;
        keys->cap = cap;
    }
    char *s = strdup(section), *nm = strdup(name);
    if (s == NULL || nm == NULL) {
        free(s);
        free(nm);
        return -1;
    }
    keys->keys[keys->n++] = (struct ld_confkey){ s, nm, line };
    return 0;
}

void ld_confkeys_free(ld_confkeys_t *keys)
{
    for (size_t i = 0; i < keys->n; i++) {
        free(keys->keys[i].section);
        free(keys->keys[i].name);
    }
    free(keys->keys);
    memset(keys, 0, sizeof *keys);
}
