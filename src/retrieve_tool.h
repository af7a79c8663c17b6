/* retrieve_tool.h — the `headroom_retrieve` tool: offered to the model when a
 * request carries retrieval markers, and answered by headroomd itself from
 * the CCR store when the model calls it (non-streamed answers). */
#ifndef HR_RETRIEVE_TOOL_H
#define HR_RETRIEVE_TOOL_H
#include <jansson.h>
#include "headroom/plugin.h"

#define HR_RETRIEVE_TOOL "headroom_retrieve"

/* True when any tool output in `body` carries a retrieval marker. */
int hr_retrieve_needed(const json_t *body, enum hr_provider p);
/* Append the tool definition to body.tools unless present. Returns 1 when
 * added, 0 when already there, <0 on error. */
int hr_retrieve_tool_add(json_t *body, enum hr_provider p);
/* The provider's tool definition (new reference). */
json_t *hr_retrieve_tool_def(enum hr_provider p);

/* Inspect a non-streamed answer. Returns 1 when every tool call in it is a
 * headroom_retrieve call (and there is at least one), 0 otherwise. */
int hr_retrieve_only_calls(const json_t *answer, enum hr_provider p);
/* Append the model's turn and headroomd's answers (the stored originals, or
 * an error text for unknown hashes) to body.messages, ready to re-send.
 * Returns the number of calls answered. */
int hr_retrieve_answer(json_t *body, const json_t *answer, enum hr_provider p);
#endif
