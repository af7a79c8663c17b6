/* url_shown.h — a URL as logs and /stats may show it: user:password@ as
 * ***@, the query and fragment cut. Also for a value that is not a valid URL
 * (a typo'd scheme): the warning that says so must not print its password. */
#ifndef HR_URL_SHOWN_H
#define HR_URL_SHOWN_H
#include <stdio.h>
#include <string.h>

static inline void hr_url_shown(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *slash = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(slash - host));
    const char *rest = at ? at + 1 : host;
    snprintf(out, n, "%.*s%s%.*s", (int)(host - url), url, at ? "***@" : "", (int)strcspn(rest, "?#"), rest);
}
#endif
