/* retrieve_tool.h — the `headroom_retrieve` tool: offered to the model when a
 * request carries retrieval markers, and answered by headroomd itself from
 * the CCR store when the model calls it (non-streamed answers), or taken
 * out of an answer that also calls the client's tools. The shapes
 * of tools, calls and results are the wire format's (src/api/). */
#ifndef HR_RETRIEVE_TOOL_H
#define HR_RETRIEVE_TOOL_H
#include <jansson.h>
#include "api/api.h"
#include "ccr.h"

#define HR_RETRIEVE_TOOL "headroom_retrieve"

/* True when any tool output in `body` carries a retrieval marker. */
int hr_retrieve_needed(const struct hr_api *api, json_t *body);
/* Append the tool definition to the body's tool list (hr_retrieve_tools_key)
 * unless present. Returns 1 when added, 0 when already there or the format
 * cannot offer it to this request, <0 on error. */
int hr_retrieve_tool_add(const struct hr_api *api, json_t *body);
/* The key of the body's tool list the tool joins ("tools"; a legacy Chat
 * request's "functions"), or NULL when it cannot be offered. */
const char *hr_retrieve_tools_key(const struct hr_api *api, const json_t *body);
/* The format's tool definition for that list (new reference). */
json_t *hr_retrieve_tool_def(const struct hr_api *api, const char *list);

/* Inspect a non-streamed answer. Returns 1 when every tool call in it is a
 * headroom_retrieve call (and there is at least one), 0 otherwise. */
int hr_retrieve_only_calls(const struct hr_api *api, const json_t *answer);
/* Append the model's turn and headroomd's answers (the stored originals, or
 * an error text for unknown hashes) to the conversation, ready to re-send.
 * Returns the number of calls answered. */
int hr_retrieve_answer(const struct hr_api *api, json_t *body, const json_t *answer);
/* Remove headroom_retrieve from the tools an answer echoes (Responses do),
 * so the client sees the tools it sent. Returns 1 when the answer changed. */
int hr_retrieve_hide_tool(const struct hr_api *api, json_t *answer);

/* An answer (to `body`) headroomd does not answer itself that calls
 * headroom_retrieve: beside tools the client runs (the client's calls need
 * the client), or alone after `rounds` answered rounds (the limit). The
 * retrieve calls are taken out: the client gets only its own calls, or,
 * with none left (*all set), a finished turn (api->calls_gone: the
 * model's text, or a line saying why there is none). Where the provider
 * keeps the answer (api->answer_kept_as) they are remembered (bounded,
 * with a TTL) for the request that continues from it. Returns the number
 * of calls taken out. */
int hr_retrieve_strip_calls(const struct hr_api *api, const json_t *body, json_t *answer, int rounds, int *all);
/* A request continuing from such a kept answer (previous_response_id, a
 * conversation): one result per call left out, answered from the CCR store,
 * put before its own items (not compressed: the stages ran before). Returns
 * the items added; *tokens their count as the request's count has them.
 * `request_id`: a conversation's calls are forgotten once a request that
 * carried their results is answered (hr_retrieve_settled). */
int hr_retrieve_continue(const struct hr_api *api, json_t *body, const char *model, const char *request_id,
                         uint64_t *tokens);
/* Request `request_id` ended: `ok` when the provider answered it 2xx. */
void hr_retrieve_settled(const char *request_id, int ok);

/* ---- kept calls shared by a fleet (fleet.c, doc/fleet.md): the request
 * continuing from a kept answer may land on another instance. Keys are
 * answer_kept_as's ("r:<response id>", "c:<conversation>"); a value is the
 * calls as a compact JSON array, at most HR_RETRIEVE_KEPT_MAX_BYTES (above
 * it the calls are kept on this instance only, with a WARN). */
#define HR_RETRIEVE_KEPT_MAX_BYTES 65536
#define HR_RETRIEVE_KEPT_TTL_S (24 * 3600) /* here and in the store */
struct hr_retrieve_kept_remote {
    /* Calls kept under `key`: write them; hr_retrieve_kept_stored(key, gen)
     * once the store holds them. */
    void (*put)(const char *key, const char *json, size_t len, unsigned long gen);
    /* A conversation's calls reached the provider (a 2xx): forget `key`
     * unless it holds other calls by now. */
    void (*forget)(const char *key, const char *json, size_t len);
};
/* Before the workers start; NULL: none. */
void hr_retrieve_set_kept_remote(const struct hr_retrieve_kept_remote *r);
void hr_retrieve_kept_stored(const char *key, unsigned long gen);
/* 1 when this process keeps calls under `key` (fresh). */
int hr_retrieve_kept_has(const char *key);
/* The store's value for `key`: kept here too (HR_OK), or HR_EINVAL with
 * *why when it is not calls headroomd keeps (not used). */
int hr_retrieve_kept_adopt(const char *key, const char *json, size_t len, const char **why);
/* The store no longer holds `key`: calls kept here that it held are
 * dropped (another instance carried a conversation's to the provider). */
void hr_retrieve_kept_gone(const char *key);
/* The hashes the calls kept under `key` ask for (up to max). */
size_t hr_retrieve_kept_hashes(const struct hr_api *api, const char *key, char (*out)[HR_CCR_HASH_LEN + 1],
                               size_t max);
#endif
