/* t/sse_feed_copy.h — hr_sse_feed on a heap copy of exactly the piece, freed
 * when it returns: under ASan a read past the piece, or a pointer into it
 * kept past the call (an event handed out later from a chunk that is gone),
 * fails the run. For t/sse_test.c and t/fuzz/fuzz_sse.c. */
#ifndef HR_T_SSE_FEED_COPY_H
#define HR_T_SSE_FEED_COPY_H
#include <stdlib.h>
#include <string.h>
#include "sse.h"

static inline int feed_copy(struct hr_sse_parser *p, const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, s, n);
    int rc = hr_sse_feed(p, copy, n);
    free(copy);
    return rc;
}
#endif
