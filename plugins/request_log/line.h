/* line.h — turns one completed-request event into one JSONL line of the
 * request log (pure: no I/O, no host), so unit tests and the fuzzer reach it. */
#ifndef HR_RLOG_LINE_H
#define HR_RLOG_LINE_H

#include <stddef.h>
#include <headroom/plugin.h>

/* Build the line for `ev`, ending in '\n', in a malloc'd buffer (*out, *len;
 * free it with free). With `with_request` and a request body in the event,
 * the line carries `request`: the body parsed as JSON, or the body as a
 * string when it is not JSON. Returns 0 or HR_ENOMEM. */
int hr_rlog_format(const struct hr_event *ev, int with_request, char **out, size_t *len);

/* `ts` (Unix seconds) as UTC ISO-8601 with milliseconds and Z, e.g.
 * "2026-11-25T20:22:22.123Z". `out` holds at least 32 bytes. */
void hr_rlog_timestamp(double ts, char out[32]);

/* The client's body as a JSON value: parsed when it is JSON, else a string
 * (invalid UTF-8 replaced by U+FFFD). Never NULL unless out of memory. */
json_t *hr_rlog_body_json(const char *body, size_t len);

#endif
