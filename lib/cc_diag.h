/* cc_diag.h — what a compiler prints under a diagnostic: the source echo
 * "   12 | code", the caret "      |   ^~~~" and fix-its "  +++ |+#include"
 * (gcc, clang, rustc), a bare caret line "   ^~~~" (older gcc), rustc's
 * "  --> path:2:5" and "   = note: …". The router types such lines as log
 * (not code) and log_compressor keeps them with their error. */
#ifndef HR_CC_DIAG_H
#define HR_CC_DIAG_H
#include <stddef.h>
#include <string.h>

static inline int hr_cc_echo_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    static const char *const lead[] = {"--> ", "= note", "= help"};
    for (size_t k = 0; i && k < sizeof lead / sizeof *lead; k++)
        if (n - i >= strlen(lead[k]) && !memcmp(s + i, lead[k], strlen(lead[k])))
            return 1;
    size_t d = i, sp = 0;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '+'))
        i++;
    int num = i > d;
    while (i < n && s[i] == ' ')
        i++, sp++;
    if (i < n && s[i] == '|' && (num ? sp > 0 : i > 0))
        return 1;
    int marks = 0;
    for (i = d; i < n; i++) {
        if (s[i] == '^' || s[i] == '~')
            marks = 1;
        else if (s[i] != ' ')
            return 0;
    }
    return marks;
}
#endif
