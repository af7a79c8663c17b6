/* t/fuzz/http_harness.h — a whole headroomd (one worker, the router,
 * smart_crusher and cache_aligner transforms, price table, response cache,
 * rate limit) on a loopback port, with an in-process upstream that answers
 * each proxied request with chosen bytes. Fuzz targets send raw client
 * bytes and read the answer to the end, so a request travels the real path:
 * evhttp parsing, routing, limits, the pipeline, forwarding, the relay. */
#ifndef HR_FUZZ_HTTP_HARNESS_H
#define HR_FUZZ_HTTP_HARNESS_H
#include <stddef.h>
#include <stdint.h>

/* Start everything once (LLVMFuzzerInitialize), with or without the
 * response cache (a cached answer never reaches the relay). Aborts on failure. */
void hh_start(int response_cache);

/* What the upstream sends back to the next proxied requests: the raw bytes
 * of an HTTP response (status line, headers, body). NULL = a well-formed
 * answer in the shape the request asked for (JSON or SSE, either provider). */
void hh_set_upstream(const uint8_t *bytes, size_t len);

/* Connect, send `len` bytes, read one answer (framed by Content-Length or
 * chunks, or to the daemon's close). A request cut short is half-closed at
 * once. patience_ms > 0: half-close too when no answer starts that long
 * after a request that looked complete (arbitrary bytes can fool the
 * framing check); 0: the request is well-formed, wait for the answer. No
 * answer 10 s after a half-close (or at all with patience 0) aborts: a hang.
 * Returns the bytes read (0 when the daemon sent nothing); the first ones
 * (up to cap) go to `out` when it is not NULL. */
size_t hh_exchange(const uint8_t *req, size_t len, char *out, size_t cap, int patience_ms);
#endif
