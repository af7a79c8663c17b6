/* sinks.h — one thread and one bounded queue per sink instance, so a slow
 * disk or network never stalls a request; overflow is counted, not silent.
 * A sink that declares HR_SINK_ON_REQUEST_THREAD (quick, never waits) is
 * called on the request's thread instead. */
#ifndef HR_SINKS_H
#define HR_SINKS_H
#include <jansson.h>
#include "loader.h"

int hr_sinks_start(struct hr_plugins *p, size_t queue_size);
/* Hand `ev` to the sinks that take it on this thread, and copy it into every
 * other sink's queue (drops and counts when a queue is full). */
void hr_sinks_emit(const struct hr_event *ev);
/* Deliver what is queued, then join the threads. */
void hr_sinks_stop(void);
/* {"<name>": {"events": N, "dropped": M, "queued": Q}} */
json_t *hr_sinks_stats_json(void);
#endif
