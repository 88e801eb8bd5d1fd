/* keys.c: CURVE keypairs from libzmq and the 0600 files that hold them; a keypair
 * file that group or others may read is refused. */
#include "keys.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>
#include "log.h"

#define KEYFILE_MAX 512   /* a keypair file is two short lines */

int ld_key_valid(const char *text)
{
    if (text == NULL || strlen(text) != LD_KEY_TEXT)
        return 0;
    uint8_t raw[32];
    return zmq_z85_decode(raw, text) != NULL;
}

int ld_keys_generate(ld_keypair_t *kp, ld_error_t *err)
{
    memset(kp, 0, sizeof *kp);
    if (zmq_curve_keypair(kp->public_key, kp->secret_key) != 0)
        return ld_error_set(err, LD_EIO, "cannot make a CURVE keypair: %s (libzmq without CURVE?)",
                            zmq_strerror(zmq_errno()));
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int ld_keys_save(const ld_keypair_t *kp, const char *path, ld_error_t *err)
{
    int rc = 0;
    int fd = -1;
    char text[2 * (LD_KEY_TEXT + 16)];

    if (!ld_key_valid(kp->public_key) || !ld_key_valid(kp->secret_key))
        return ld_error_set(err, LD_EINVAL, "keypair to save into %s is not two Z85 keys", path);
    int n = snprintf(text, sizeof text, "public %s\nsecret %s\n", kp->public_key,
                     kp->secret_key);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            rc = ld_error_set(err, LD_EEXIST, "%s already exists; not overwriting a key file",
                              path);
        else
            rc = ld_error_set(err, LD_EIO, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, (size_t)n) != 0 || fsync(fd) != 0) {
        rc = ld_error_set(err, LD_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = ld_error_set(err, LD_EIO, "cannot close %s: %s", path, strerror(errno));
    explicit_bzero(text, sizeof text);
    return rc;
}

int ld_keys_replace(const ld_keypair_t *kp, const char *path, ld_error_t *err)
{
    char tmp[4096], dir[4096];
    struct stat old;
    bool written = false;
    int rc = 0;
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
        return ld_error_set(err, LD_ETOOBIG, "key file path %s is too long", path);
    if (stat(path, &old) != 0)
        return ld_error_set(err, errno == ENOENT ? LD_ENOTFOUND : LD_EIO,
                            "key file %s: %s", path, strerror(errno));
    /* what an interrupted replacement left is not a key anyone uses */
    if (unlink(tmp) != 0 && errno != ENOENT)
        return ld_error_set(err, LD_EIO, "cannot remove %s: %s", tmp, strerror(errno));
    rc = ld_keys_save(kp, tmp, err);
    written = rc == 0;
    /* the new file keeps the old one's owner (root replacing the service user's key
     * must not leave a file the service cannot read) */
    if (rc == 0 && (old.st_uid != geteuid() || old.st_gid != getegid())
        && chown(tmp, old.st_uid, old.st_gid) != 0)
        rc = ld_error_set(err, LD_EIO, "cannot give %s the owner of %s: %s", tmp, path,
                          strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = ld_error_set(err, LD_EIO, "cannot put %s in place of %s: %s", tmp, path,
                          strerror(errno));
    if (rc != 0)
        goto out;
    written = false;   /* it is the key file now */
    /* the folder is synced too, so that the rename itself survives a power cut */
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)   /* the new keypair is in place all the same */
        ld_warn("%s is replaced, but its folder %s could not be synced: %s", path, dir,
                strerror(errno));
    if (fd >= 0)
        close(fd);
out:
    if (written)
        unlink(tmp);
    return rc;
}

/* Reads "word KEY" from `line` (line number `lineno`) into out. */
static int parse_line(const char *line, const char *word, char out[LD_KEY_TEXT + 1],
                      const char *path, int lineno, ld_error_t *err)
{
    size_t wl = strlen(word);
    if (strncmp(line, word, wl) != 0 || line[wl] != ' ' || !ld_key_valid(line + wl + 1))
        return ld_error_set(err, LD_EINVAL, "%s line %d: expected \"%s\" and a 40-character Z85 key",
                            path, lineno, word);
    memcpy(out, line + wl + 1, LD_KEY_TEXT + 1);
    return 0;
}

int ld_keys_load(ld_keypair_t *kp, const char *path, ld_error_t *err)
{
    int rc = 0;
    char buf[KEYFILE_MAX + 1];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ld_error_set(err, LD_ENOTFOUND, "key file %s does not exist", path);
        return ld_error_set(err, LD_EIO, "cannot open key file %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = ld_error_set(err, LD_EIO, "cannot stat key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ld_error_set(err, LD_EINVAL, "key file %s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = ld_error_set(err, LD_EDENIED,
                          "key file %s has mode %04o: others may read it; run chmod 600 %s",
                          path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, KEYFILE_MAX - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = ld_error_set(err, LD_EIO, "cannot read key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == KEYFILE_MAX) {
            rc = ld_error_set(err, LD_EINVAL, "key file %s is too long for a keypair", path);
            goto out;
        }
    }
    buf[len] = '\0';

    char *save = NULL;
    char *first = strtok_r(buf, "\n", &save);
    char *second = first != NULL ? strtok_r(NULL, "\n", &save) : NULL;
    char *third = second != NULL ? strtok_r(NULL, "\n", &save) : NULL;
    if (first == NULL || second == NULL) {
        rc = ld_error_set(err, LD_EINVAL, "key file %s line %d: missing", path,
                          first == NULL ? 1 : 2);
        goto out;
    }
    if (third != NULL) {
        rc = ld_error_set(err, LD_EINVAL, "key file %s line 3: unexpected text", path);
        goto out;
    }
    ld_keypair_t tmp;
    memset(&tmp, 0, sizeof tmp);
    rc = parse_line(first, "public", tmp.public_key, path, 1, err);
    if (rc == 0)
        rc = parse_line(second, "secret", tmp.secret_key, path, 2, err);
    if (rc == 0)
        *kp = tmp;
    explicit_bzero(&tmp, sizeof tmp);
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}
