/* window.h — internals of the `rolling_window` transform shared by its files and
 * its tests: the model context table and the turn analysis of a message list. */
#ifndef HR_RW_WINDOW_H
#define HR_RW_WINDOW_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Context window (input + output tokens) of a model name, from a small built-in
 * table of common OpenAI and Anthropic models; 0 when unknown. A router prefix
 * ("openai/gpt-4o") is ignored. */
long hr_rw_context_window(const char *model);

/* How the messages of one request group into turns. A turn starts at a user
 * message that carries the user's own words (not one that only returns tool
 * results) and runs to the next such message; messages before the first one
 * form turn 0. System/developer messages, and user messages made only of an
 * agent's context (Codex's AGENTS.md and <environment_context>), are marked
 * `keep` and never removed. With `anchor_first`, the first message that
 * starts a turn (the user's task) is marked `keep` too and named in `anchor`,
 * unless it makes or answers a tool call: it still starts its turn, whose
 * other messages may go; rolling_window drops it only as a last resort. */
struct hr_rw_turns {
    size_t n_msgs;
    size_t n_turns;
    size_t anchor;     /* the anchored first user message, or n_msgs when none */
    int *turn_of;      /* per message: its turn */
    unsigned char *keep; /* per message: system/developer, an agent's context, the anchor */
    /* per turn: the last turn that must be removed together with it, because a
     * tool call in one is answered by a tool result in the other */
    size_t *reach;
};

/* Analyse `messages` (any JSON: non-arrays give zero messages). Returns 0 or
 * HR_ENOMEM-style -12. Free with hr_rw_turns_free. */
int hr_rw_turns_build(const json_t *messages, int anchor_first, struct hr_rw_turns *out);
void hr_rw_turns_free(struct hr_rw_turns *t);

/* Last turn of the removal group that starts at turn `first` (its pairing
 * closure), or n_turns when there is none. */
size_t hr_rw_group_end(const struct hr_rw_turns *t, size_t first);

#endif
