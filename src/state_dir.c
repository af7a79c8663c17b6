/* state_dir.c — resolving the state root once for the host and plugins. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "state_dir.h"

static char dir[4096];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home && *home) return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

static void resolve(void)
{
    const char *ws = getenv("HEADROOM_WORKSPACE_DIR");
    if (ws && *ws && ws[0] == '~' && (ws[1] == '/' || !ws[1])) snprintf(dir, sizeof dir, "%s%s", home_dir(), ws + 1);
    else if (ws && *ws) snprintf(dir, sizeof dir, "%s", ws);
    else snprintf(dir, sizeof dir, "%s/.headroom", home_dir());
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
}

const char *hr_state_dir(void)
{
    pthread_once(&once, resolve);
    return dir;
}

static atomic_ullong write_errors;
static atomic_int last_errno;

void hr_state_write_result(const char *what, int rc)
{
    (void)what;
    if (rc) atomic_fetch_add(&write_errors, 1);
    atomic_store(&last_errno, rc < 0 ? -rc : rc);
}

unsigned long long hr_state_write_errors(void) { return atomic_load(&write_errors); }

const char *hr_state_dir_health(char *buf, unsigned len)
{
    const char *d = hr_state_dir();
    int err = atomic_load(&last_errno);
    if (!err && access(d, W_OK) && errno != ENOENT) err = errno; /* not created yet is fine */
    if (!err) return "ok";
    snprintf(buf, len, "cannot write in %s: %s", d, strerror(err));
    return buf;
}

/* Create and remove a file in `d`: 0 or -errno. */
static int try_write(const char *d)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.headroom-write-test.%ld", d, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return -errno;
    close(fd);
    unlink(path);
    return 0;
}

int hr_state_dir_check(const char *d, char *why, size_t whylen)
{
    if (!d) d = hr_state_dir();
    char probe[4096];
    snprintf(probe, sizeof probe, "%s", d);
    struct stat st;
    int exists = 1;
    /* The directory, or its nearest existing ancestor when it is not there yet. */
    while (stat(probe, &st) != 0) {
        int e = errno;
        if (e != ENOENT) {
            snprintf(why, whylen, "state root %s: cannot reach %s: %s (set HEADROOM_WORKSPACE_DIR to a directory "
                     "you can write)", d, probe, strerror(e));
            return -e;
        }
        exists = 0;
        char *slash = strrchr(probe, '/');
        if (!slash) { snprintf(probe, sizeof probe, "."); continue; }
        if (slash == probe) slash[1] = '\0';
        else *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "state root %s: %s is not a directory (set HEADROOM_WORKSPACE_DIR to a directory "
                 "you can write)", d, probe);
        return -ENOTDIR;
    }
    int rc = try_write(probe);
    if (rc) {
        if (exists)
            snprintf(why, whylen, "state root %s is not writable: %s (fix its permissions, e.g. chmod u+w, or set "
                     "HEADROOM_WORKSPACE_DIR to a directory you can write)", d, strerror(-rc));
        else
            snprintf(why, whylen, "state root %s does not exist and cannot be created: %s is not writable (%s) "
                     "(create it, or set HEADROOM_WORKSPACE_DIR to a directory you can write)", d, probe, strerror(-rc));
        return rc;
    }
    return 0;
}
