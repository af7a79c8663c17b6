/* json_pool.h — the nodes of a tree our loader builds come from a block
 * the thread keeps, not from malloc (see json_pool.c). */
#ifndef HR_JSON_POOL_H
#define HR_JSON_POOL_H

/* The daemon's main(), once, before any jansson value exists and before
 * any thread: jansson's allocator becomes the pool's (process-wide; what
 * is allocated outside hr_json_pool_begin/end still comes from malloc and
 * still goes back to free). Not called by the SDK or the tests: there the
 * pool is never used. No effect under AddressSanitizer, which should see
 * every node. */
void hr_json_pool_install(void);
/* Around building one tree on this thread: returns 1 when the pool serves
 * the allocations until the matching hr_json_pool_end (0: not installed,
 * or no block); pairs nest. Nothing allocated in between may be handed to
 * free() directly (json_dumps' text, for one): keep such calls outside. */
int hr_json_pool_begin(void);
void hr_json_pool_end(void);
#endif
