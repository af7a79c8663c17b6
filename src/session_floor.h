/* session_floor.h — keeps a conversation's cached prefix stable across turns.
 * Compression is deterministic, so a tool output compressed last turn is
 * compressed identically this turn; the risk is an output sent whole last
 * turn (protected because it was recent) that would be compressed now that
 * it is older. Once the provider reports prompt-cache activity for a
 * session, outputs it received whole below that request's length stay whole. */
#ifndef HR_SESSION_FLOOR_H
#define HR_SESSION_FLOOR_H
#include <stddef.h>
#include <stdint.h>

#define HR_SESSION_MAX_RAW 32

struct hr_session_view {
    size_t floor;                       /* messages [0, floor) are cached upstream */
    size_t n_raw;
    uint64_t raw[HR_SESSION_MAX_RAW];   /* hashes of outputs last sent whole */
};

void hr_session_get(const char *session, struct hr_session_view *out);
/* The one writer, when a request ends: with write_raw, the outputs it sent
 * whole (raw[0..n_raw)); with cached_messages > 0, the provider cached a
 * prefix of that many messages. */
void hr_session_record(const char *session, const uint64_t *raw, size_t n_raw, int write_raw, size_t cached_messages);
uint64_t hr_session_text_hash(const char *text, size_t len);
#endif
