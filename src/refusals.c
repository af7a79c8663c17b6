/* refusals.c — counters of requests refused before they reached a
 * provider, by reason, and of failed accepts (headroom_refusals_total,
 * headroom_accept_errors_total). Rare events: one relaxed atomic each. */
#include <stdatomic.h>
#include "refusals.h"

static const char *const refusal_names[HR_REFUSE_N] = {
    "body_too_large", "headers_too_large", "bad_request", "slow_client", "not_implemented", "draining",
    "overloaded", "host_not_allowed", "cross_site", "unauthorized", "bad_path",
};
static atomic_ullong refusals[HR_REFUSE_N];
static atomic_ullong accept_errors;

void hr_guard_count(enum hr_refusal r)
{
    if ((unsigned)r < HR_REFUSE_N) atomic_fetch_add_explicit(&refusals[r], 1, memory_order_relaxed);
}

const char *hr_guard_refusal_name(size_t i) { return i < HR_REFUSE_N ? refusal_names[i] : NULL; }
unsigned long long hr_guard_refusals(size_t i) { return i < HR_REFUSE_N ? atomic_load(&refusals[i]) : 0; }
void hr_guard_count_accept_error(void) { atomic_fetch_add(&accept_errors, 1); }
unsigned long long hr_guard_accept_errors(void) { return atomic_load(&accept_errors); }
