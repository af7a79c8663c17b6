/* state_file.c — see state_file.h. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "state_file.h"

char *hr_expand_tilde(const char *p)
{
    if (p[0] != '~' || (p[1] && p[1] != '/')) return strdup(p);
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : "/";
    }
    char *out;
    return asprintf(&out, "%s%s", home, p + 1) < 0 ? NULL : out;
}

char *hr_state_file(const struct hr_host *host, const char *conf_path, const char *name)
{
    if (conf_path && *conf_path) return hr_expand_tilde(conf_path);
    char *root, *out;
    if (HR_HAS_FIELD(host, struct hr_host, state_dir) && host->state_dir) {
        root = strdup(host->state_dir());
    } else {
        const char *ws = getenv("HEADROOM_WORKSPACE_DIR");
        root = hr_expand_tilde(ws && *ws ? ws : "~/.headroom");
    }
    if (!root) return NULL;
    int rc = asprintf(&out, "%s/%s", root, name);
    free(root);
    return rc < 0 ? NULL : out;
}

int hr_corrupt_name(const char *path, double now, char *dest, size_t destlen)
{
    /* Also what lets gcc -O3 with sanitizers see `dest` is never NULL in
     * the loop (its null check after lstat() left a path to snprintf). */
    if (!dest || !destlen) return -EINVAL;
    time_t t = (time_t)now;
    struct tm tm;
    char stamp[32];
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    struct stat st;
    for (int i = 0; i < 100; i++) {
        if (i) snprintf(dest, destlen, "%s.corrupt-%s-%d", path, stamp, i);
        else snprintf(dest, destlen, "%s.corrupt-%s", path, stamp);
        if (lstat(dest, &st)) return 0;
    }
    return -EEXIST;
}
