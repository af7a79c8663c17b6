/* ws_counters.c — see ws_counters.h. Relaxed atomics: a WebSocket opens or
 * carries a message far less often than a byte moves. */
#include <stdatomic.h>
#include "ws_counters.h"

static atomic_ullong open_now, opened, messages;

void hr_ws_count_open(int delta)
{
    if (delta > 0) {
        atomic_fetch_add_explicit(&open_now, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&opened, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&open_now, 1, memory_order_relaxed);
    }
}

void hr_ws_count_message(void) { atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed); }

unsigned long long hr_ws_open_now(void) { return atomic_load_explicit(&open_now, memory_order_relaxed); }
unsigned long long hr_ws_opened(void) { return atomic_load_explicit(&opened, memory_order_relaxed); }
unsigned long long hr_ws_messages(void) { return atomic_load_explicit(&messages, memory_order_relaxed); }
