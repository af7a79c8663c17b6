/* sse.h — incremental text/event-stream (Server-Sent Events) parser.
 * Feeds arbitrary byte chunks of an upstream stream; calls back once per event. */
#ifndef HR_SSE_H
#define HR_SSE_H

#include <stddef.h>

struct hr_sse_parser;

/* One dispatched event. `event` is "message" when the event had no (or an
 * empty) `event:` field; `data` is the `data:` lines joined with "\n".
 * Both are borrowed for the duration of the call. `event` is NUL-terminated
 * at [event_len]; `data` is not: an event of one data line is handed out
 * from the chunk being fed, without a copy (either may also contain NULs:
 * trust the lengths). The callback must not feed or free the parser that
 * called it. */
typedef void (*hr_sse_event_fn)(void *ud, const char *event, size_t event_len,
                                const char *data, size_t data_len);

/*
 * hr_sse_parser_new
 *   Create a parser following the WHATWG event-stream rules: CRLF, LF or CR
 *   line endings (also split across chunks), leading UTF-8 BOM skipped,
 *   ':' comments ignored, `id` and `retry` ignored (the proxy relays them
 *   untouched; it only reads events for usage).
 * ARGUMENTS
 *   fn, ud           callback and its user data (fn must not be NULL)
 *   max_event_bytes  bound on what one event may hold in memory: the event
 *                    type plus the data so far plus the line being read.
 *                    Comment lines are skipped without buffering and do not
 *                    count. 0 selects HR_SSE_DEFAULT_MAX_EVENT.
 * RETURN VALUE
 *   The parser, or NULL when out of memory.
 */
#define HR_SSE_DEFAULT_MAX_EVENT ((size_t)1 << 20)
struct hr_sse_parser *hr_sse_parser_new(hr_sse_event_fn fn, void *ud, size_t max_event_bytes);

/*
 * hr_sse_feed
 *   Parse the next `len` bytes of the stream; calls fn for every event that
 *   completes inside them. Chunk boundaries never change the result.
 * RETURN VALUE
 *   0, or a negative code that sticks (later calls return it without
 *   parsing): -E2BIG once an event outgrew max_event_bytes, -ENOMEM when a
 *   buffer could not grow. The caller keeps relaying bytes either way; only
 *   usage extraction stops.
 */
int hr_sse_feed(struct hr_sse_parser *p, const char *buf, size_t len);

/* on = 1: an event over max_event_bytes is dropped whole (counted by
 * hr_sse_skipped) and parsing goes on with the next event instead of
 * stopping with -E2BIG, so figures sent after a huge event (usage at the
 * end of a stream) are still read. Results never depend on chunk cuts. */
void hr_sse_skip_oversized(struct hr_sse_parser *p, int on);
size_t hr_sse_skipped(const struct hr_sse_parser *p);

/* Release the parser. An event not yet terminated by a blank line is
 * discarded, as the spec requires at end of stream. NULL is a no-op. */
void hr_sse_parser_free(struct hr_sse_parser *p);

#endif /* HR_SSE_H */
