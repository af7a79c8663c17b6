/* uninstalled.h — whether this binary runs from its build tree (libtool
 * puts it under <builddir>, e.g. src/.libs) rather than installed: it then
 * uses that tree's plugins, prices and config, so an older installed copy
 * never shadows what was just built. HR_ABS_BUILDDIR comes from AM_CPPFLAGS. */
#ifndef HR_UNINSTALLED_H
#define HR_UNINSTALLED_H
#include <string.h>
#include <unistd.h>

static inline int hr_running_uninstalled(void)
{
#ifdef HR_ABS_BUILDDIR
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        size_t b = strlen(HR_ABS_BUILDDIR);
        return !strncmp(exe, HR_ABS_BUILDDIR, b) && exe[b] == '/';
    }
#endif
    return 0;
}
#endif
