/* tmpdir.c: a test's own directory, made and removed whole (tmpdir.h). */
#include "tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int hn_tmpdir_new(const char *tag, char out[HN_PATH_MAX])
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(out, HN_PATH_MAX, "%s/liangdi-%s-XXXXXX", base, tag);
    if (n < 0 || n >= HN_PATH_MAX || mkdtemp(out) == NULL) {
        fprintf(stderr, "tmpdir: mkdtemp under %s: %s\n", base, strerror(errno));
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void hn_tmpdir_remove(const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return;
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
