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
/* After the pipeline: the outputs this request sends whole. */
void hr_session_set_raw(const char *session, const uint64_t *raw, size_t n);
/* After the answer: the provider cached a request of n_messages messages. */
void hr_session_set_floor(const char *session, size_t n_messages);
uint64_t hr_session_text_hash(const char *text, size_t len);
#endif
