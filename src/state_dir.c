/* state_dir.c — resolving the state root once for the host and plugins. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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

const char *hr_state_dir_check(char *buf, unsigned len)
{
    const char *d = hr_state_dir();
    int err = atomic_load(&last_errno);
    if (!err && access(d, W_OK) && errno != ENOENT) err = errno; /* not created yet is fine */
    if (!err) return "ok";
    snprintf(buf, len, "cannot write in %s: %s", d, strerror(err));
    return buf;
}
