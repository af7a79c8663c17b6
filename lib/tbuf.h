/* tbuf.h — a growable, NUL-terminated output buffer whose out-of-memory
 * state is sticky, so a renderer checks once at the end. Shared by the text
 * compressors and smart_crusher's marker. */
#ifndef HR_TBUF_H
#define HR_TBUF_H
#include <stddef.h>
#include <headroom/plugin.h>

struct hr_tbuf {
    char *p;
    size_t len, cap;
    int oom; /* sticky: every later put is a no-op */
};
void hr_tbuf_put(struct hr_tbuf *b, const void *s, size_t n);
void hr_tbuf_putc(struct hr_tbuf *b, char c);
void hr_tbuf_putf(struct hr_tbuf *b, const char *fmt, ...) HR_PRINTF_LIKE(2, 3);
void hr_tbuf_free(struct hr_tbuf *b);
#endif
