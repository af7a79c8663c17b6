/* bg_thread.c — see bg_thread.h. (Lowering the sink threads' priority was
 * tried, to keep their batches from delaying requests on a busy host: it
 * did not change one connection's p99 measurably, and under sustained load
 * a starved sink drops events, which would make the figures wrong.) */
#include <pthread.h>
#include <stdio.h>
#include "bg_thread.h"

void hr_thread_name(const char *name)
{
    char label[16];
    snprintf(label, sizeof label, "hr-%s", name);
    pthread_setname_np(pthread_self(), label);
}
