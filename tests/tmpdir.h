/* tmpdir.h: a test's own directory under $TMPDIR (or /tmp), made and removed whole;
 * shared by the integration harness and the unit tests that keep files. */
#ifndef HN_TMPDIR_H
#define HN_TMPDIR_H

#define HN_PATH_MAX   512

/* A new directory under $TMPDIR (or /tmp) into out; 0 or -1 (printed). */
int hn_tmpdir_new(const char *tag, char out[HN_PATH_MAX]);
/* Removes a directory tree; safe on "" and on a missing one. */
void hn_tmpdir_remove(const char *dir);

#endif
