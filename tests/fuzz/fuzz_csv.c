/* fuzz_csv.c: fuzz target for the CSV importer's parser (nd_csv_parse), the first code
 * to touch a file a user hands to `liangdi member import`. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t rows;
    size_t last_line;
} csv_seen_t;

/* Checks what the parser promises each callback: cells within limits, each terminated
 * at its length, lines that never go backwards. */
static int check_row(void *ctx, size_t line, size_t ncells, const char *const *cells,
                     const size_t *lens, ld_error_t *err)
{
    csv_seen_t *seen = ctx;
    (void)err;
    if (ncells == 0 || ncells > ND_CSV_CELLS_MAX || line == 0 || line < seen->last_line)
        __builtin_trap();
    for (size_t i = 0; i < ncells; i++) {
        if (lens[i] > ND_CSV_CELL_MAX || cells[i][lens[i]] != '\0')
            __builtin_trap();
    }
    seen->last_line = line;
    seen->rows++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    csv_seen_t seen = { 0, 0 };
    ld_error_t err;
    int rc = nd_csv_parse((const char *)data, size, check_row, &seen, &err);
    if (rc != 0 && (rc > 0 || err.msg[0] == '\0'))
        __builtin_trap();
    return 0;
}
