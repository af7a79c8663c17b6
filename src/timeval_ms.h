/* timeval_ms.h — a libevent timeout from milliseconds (a negative one, a
 * deadline already past, is 0: the timer fires on the next loop turn). */
#ifndef HR_TIMEVAL_MS_H
#define HR_TIMEVAL_MS_H

#include <sys/time.h>

static inline struct timeval hr_timeval_ms(double ms)
{
    if (!(ms > 0)) ms = 0;
    long long whole = (long long)ms;
    return (struct timeval){(time_t)(whole / 1000), (suseconds_t)(whole % 1000 * 1000)};
}

#endif
