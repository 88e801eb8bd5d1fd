/* test_keys.c: CURVE keypairs: generated, saved to a 0600 file that is never
 * overwritten, replaced whole, loaded back, and refused when others may read the file. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

static char dir[256];
static char path[300];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-keys-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/node.key", dir);
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(keys, .init = setup, .fini = teardown);

static void write_file(const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cr_assert_eq(chmod(path, mode), 0);
}

Test(keys, a_generated_keypair_is_two_distinct_valid_keys)
{
    ld_keypair_t a, b;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&a, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&b, &err), 0, "%s", err.msg);
    cr_assert(ld_key_valid(a.public_key));
    cr_assert(ld_key_valid(a.secret_key));
    cr_assert_str_neq(a.public_key, a.secret_key);
    cr_assert_str_neq(a.secret_key, b.secret_key);
}

Test(keys, a_saved_keypair_loads_back_from_a_0600_file)
{
    mode_t old = umask(0);                  /* even a permissive umask gets 0600 */
    ld_keypair_t kp, back;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    cr_assert_eq(ld_keys_save(&kp, path, &err), 0, "%s", err.msg);
    umask(old);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_assert_eq(ld_keys_load(&back, path, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back.public_key, kp.public_key);
    cr_assert_str_eq(back.secret_key, kp.secret_key);
}

Test(keys, the_file_holds_a_public_and_a_secret_line)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    cr_assert_eq(ld_keys_save(&kp, path, &err), 0);
    char want[128], got[128] = "";
    snprintf(want, sizeof want, "public %s\nsecret %s\n", kp.public_key, kp.secret_key);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    cr_assert_str_eq(got, want);
}

Test(keys, saving_over_an_existing_file_is_refused)
{
    ld_keypair_t kp, other, back;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    cr_assert_eq(ld_keys_generate(&other, &err), 0);
    cr_assert_eq(ld_keys_save(&kp, path, &err), 0);
    cr_assert_eq(ld_keys_save(&other, path, &err), LD_EEXIST);
    cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
    cr_assert_eq(ld_keys_load(&back, path, &err), 0);
    cr_assert_str_eq(back.secret_key, kp.secret_key, "the first key is intact");
}

Test(keys, a_replaced_keypair_takes_the_old_ones_place_whole_and_private)
{
    ld_keypair_t old, fresh, loaded;
    ld_error_t err;
    struct stat st;
    char stale[320];
    cr_assert_eq(ld_keys_generate(&old, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_save(&old, path, &err), 0, "%s", err.msg);
    /* what an interrupted replacement left beside it is not in the way */
    snprintf(stale, sizeof stale, "%s.new", path);
    int fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(ld_keys_generate(&fresh, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_replace(&fresh, path, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_load(&loaded, path, &err), 0, "%s", err.msg);
    cr_assert_str_eq(loaded.public_key, fresh.public_key);
    cr_assert_str_eq(loaded.secret_key, fresh.secret_key);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_neq(access(stale, F_OK), 0, "nothing is left beside it");
}

Test(keys, replacing_a_keypair_that_is_not_there_is_not_found_and_makes_none)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_replace(&kp, path, &err), LD_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_neq(access(path, F_OK), 0);
}

Test(keys, a_file_others_may_read_is_refused_with_advice)
{
    ld_keypair_t kp, back;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    cr_assert_eq(ld_keys_save(&kp, path, &err), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    memset(&back, 0, sizeof back);
    cr_assert_eq(ld_keys_load(&back, path, &err), LD_EDENIED);
    cr_assert(strstr(err.msg, path) != NULL, "names the file: %s", err.msg);
    cr_assert(strstr(err.msg, "0644") != NULL, "names the mode: %s", err.msg);
    cr_assert(strstr(err.msg, "chmod 600") != NULL, "says what to do: %s", err.msg);
    cr_assert_eq(back.secret_key[0], '\0', "nothing is loaded");

    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_eq(ld_keys_load(&back, path, &err), LD_EDENIED);
    cr_assert_eq(chmod(path, 0604), 0);
    cr_assert_eq(ld_keys_load(&back, path, &err), LD_EDENIED);
    cr_assert_eq(chmod(path, 0400), 0);
    cr_assert_eq(ld_keys_load(&back, path, &err), 0, "owner-only read is fine: %s", err.msg);
}

Test(keys, a_missing_file_is_not_found)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_load(&kp, path, &err), LD_ENOTFOUND);
    cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
}

Test(keys, a_malformed_file_is_refused_naming_the_line)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    char text[160];

    snprintf(text, sizeof text, "public %s\nsecret %.39s\n", kp.public_key, kp.secret_key);
    write_file(text, 0600);
    cr_assert_eq(ld_keys_load(&kp, path, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "line 2") != NULL, "%s", err.msg);

    snprintf(text, sizeof text, "secret %s\npublic %s\n", kp.secret_key, kp.public_key);
    write_file(text, 0600);
    cr_assert_eq(ld_keys_load(&kp, path, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "line 1") != NULL, "%s", err.msg);

    write_file("public only\n", 0600);
    cr_assert_eq(ld_keys_load(&kp, path, &err), LD_EINVAL);

    write_file("", 0600);
    cr_assert_eq(ld_keys_load(&kp, path, &err), LD_EINVAL);
}

Test(keys, key_validity_is_forty_characters_of_z85)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0);
    cr_assert(ld_key_valid(kp.public_key));
    char bad[LD_KEY_TEXT + 2];
    memcpy(bad, kp.public_key, LD_KEY_TEXT + 1);
    bad[5] = '"';                               /* not in the Z85 alphabet */
    cr_assert_not(ld_key_valid(bad));
    cr_assert_not(ld_key_valid("short"));
    cr_assert_not(ld_key_valid(""));
    cr_assert_not(ld_key_valid(NULL));
    memcpy(bad, kp.public_key, LD_KEY_TEXT);
    bad[LD_KEY_TEXT] = 'a';
    bad[LD_KEY_TEXT + 1] = '\0';
    cr_assert_not(ld_key_valid(bad));
}
