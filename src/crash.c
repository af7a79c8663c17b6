/* crash.c — see crash.h. Only async-signal-safe calls in the handler: the
 * line is built by hand and written with write(2). */
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "crash.h"

_Thread_local const char *hr_crash_where;

static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static struct sigaction before[sizeof fatal / sizeof *fatal];

static const char *name_of(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    default: return "SIGABRT";
    }
}

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap) buf[at++] = *s++;
    return at;
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    const char *where = hr_crash_where;
    if (where) {
        char line[1024];
        size_t n = put(line, 0, sizeof line, "headroomd: fatal signal ");
        n = put(line, n, sizeof line, name_of(sig));
        n = put(line, n, sizeof line, " in ");
        n = put(line, n, sizeof line, where);
        n = put(line, n, sizeof line, ": the plugin crashed headroomd; remove its block from headroom.conf, or "
                                      "fix it and test it (doc/plugin-guide.md, section 6)\n");
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
    }
    /* What the signal did before: a fault the kernel raised re-runs the
     * faulting instruction once the handler returns, now meeting that
     * action with its own context (a sanitizer's report stays exact); one
     * sent (abort(), raise, kill) is sent again. */
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        if (fatal[i] == sig) sigaction(sig, &before[i], NULL);
    if (sig == SIGABRT || !si || si->si_code <= 0) raise(sig);
}

void hr_crash_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++) sigaction(fatal[i], &sa, &before[i]);
}
