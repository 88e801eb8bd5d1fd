/* store_spec.c: the broker's store spec: "sqlite:PATH" (or a bare PATH) or
 * "jetstream:URLS", turned into the mailbox and registry tables of operations. */
#include "store_spec.h"

#include <stdlib.h>
#include <string.h>
#ifdef BK_HAVE_JETSTREAM
#include "jetstream.h"
#endif

bool bk_store_has_jetstream(void)
{
#ifdef BK_HAVE_JETSTREAM
    return true;
#else
    return false;
#endif
}

void bk_store_clear(bk_store_spec_t *spec)
{
    if (!spec)
        return;
    free(spec->where);
    memset(spec, 0, sizeof *spec);
}

int bk_store_parse(const char *text, bk_store_spec_t *out, ld_error_t *err)
{
    static const char sqlite_prefix[] = "sqlite:", js_prefix[] = "jetstream:";
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return ld_error_set(err, LD_EINVAL, "--store '' is empty (expected sqlite:PATH or "
                            "jetstream:nats://HOST:PORT[,...])");
    const char *where = text;
    if (strncmp(text, js_prefix, sizeof js_prefix - 1) == 0) {
        where = text + sizeof js_prefix - 1;
#ifdef BK_HAVE_JETSTREAM
        ld_error_t why;
        int rc = bk_js_urls_check(where, &why);
        if (rc < 0)
            return ld_error_set(err, rc, "--store '%s': %s", text, why.msg);
        out->kind = BK_STORE_JETSTREAM;
        out->mailbox = &bk_mailbox_jetstream;
        out->registry = &bk_registry_jetstream;
#else
        return ld_error_set(err, LD_EINVAL, "--store '%s': this liangdi-broker was built "
                            "without libnats, so it has no JetStream store (install "
                            "libnats-dev and build again)", text);
#endif
    } else {
        if (strncmp(text, sqlite_prefix, sizeof sqlite_prefix - 1) == 0)
            where = text + sizeof sqlite_prefix - 1;
        else if (strchr(text, ':') && strstr(text, "://"))
            return ld_error_set(err, LD_EINVAL, "--store '%s' is neither sqlite:PATH nor "
                                "jetstream:nats://HOST:PORT[,...]", text);
        if (!*where)
            return ld_error_set(err, LD_EINVAL, "--store '%s' names no file", text);
        out->kind = BK_STORE_SQLITE;
        out->mailbox = &bk_mailbox_sqlite;
        out->registry = &bk_registry_sqlite;
    }
    out->where = strdup(where);
    if (!out->where)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    return 0;
}

char *bk_store_shown(const char *urls)
{
    char *out = malloc(strlen(urls) + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (const char *p = urls; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *scheme = strstr(p, "://");
        const char *at = memchr(p, '@', len);
        if (scheme && at && scheme < at && (size_t)(scheme - p) < len) {
            size_t head = (size_t)(scheme - p) + 3;
            memcpy(out + n, p, head);
            n += head;
            memcpy(out + n, "***", 3);         /* never longer: userinfo has a '@' too */
            n += 3;
            memcpy(out + n, at, len - (size_t)(at - p));
            n += len - (size_t)(at - p);
        } else {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
        if (*p == ',')
            out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}
