/* refusals.h — requests refused before reaching a provider, counted by reason. */
#ifndef HR_REFUSALS_H
#define HR_REFUSALS_H
#include <stddef.h>

/* headroom_refusals_total{reason}, in this order. */
enum hr_refusal {
    HR_REFUSE_BODY_TOO_LARGE, HR_REFUSE_HEADERS_TOO_LARGE, HR_REFUSE_BAD_REQUEST, HR_REFUSE_SLOW_CLIENT,
    HR_REFUSE_NOT_IMPLEMENTED, HR_REFUSE_DRAINING, HR_REFUSE_OVERLOADED, HR_REFUSE_HOST, HR_REFUSE_CROSS_SITE,
    HR_REFUSE_UNAUTHORIZED, HR_REFUSE_BAD_PATH, HR_REFUSE_N
};

void hr_guard_count(enum hr_refusal r);
const char *hr_guard_refusal_name(size_t i);      /* NULL past the last */
unsigned long long hr_guard_refusals(size_t i);
void hr_guard_count_accept_error(void);
unsigned long long hr_guard_accept_errors(void);
#endif
