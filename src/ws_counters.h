/* ws_counters.h — counters of relayed WebSockets (ws_relay.c counts, /metrics
 * reads them: metrics.c is in the core library, the relay in the daemon). */
#ifndef HR_WS_COUNTERS_H
#define HR_WS_COUNTERS_H

/* A relay started (+1) or ended (-1). */
void hr_ws_count_open(int delta);
/* A response.create relayed. */
void hr_ws_count_message(void);

/* Open now, opened since start, response.create messages carried. */
unsigned long long hr_ws_open_now(void);
unsigned long long hr_ws_opened(void);
unsigned long long hr_ws_messages(void);
#endif
