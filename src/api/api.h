/* api.h — wire formats as adapters. One adapter per API a client speaks
 * (OpenAI Chat Completions, Anthropic Messages, OpenAI Responses) answers
 * every question whose answer depends on the format: which route it owns,
 * where the tool outputs are, what counts as request tokens, how the
 * provider reports usage, what its errors look like, and how the
 * headroom_retrieve tool is offered and answered. Nothing outside src/api/
 * asks "which provider is this?". Adding a format: one file here, one entry
 * in api.c's table (see doc/wire-formats.md). */
#ifndef HR_API_H
#define HR_API_H
#include <stddef.h>
#include <jansson.h>
#include "json_scan.h"
#include "headroom/plugin.h"
#include "usage.h"

/* What went wrong, as the adapter turns it into the provider's error body. */
enum hr_api_error {
    HR_API_ERR_INVALID_REQUEST = 0, /* 400, 405: the client's request */
    HR_API_ERR_RATE_LIMIT,          /* 429: the per-key rate limit */
    HR_API_ERR_BUDGET,              /* 429: the spending budget */
    HR_API_ERR_OVERLOADED,          /* 503: max_connections */
    HR_API_ERR_UPSTREAM,            /* 502, 504: no answer from the provider */
    HR_API_ERR_INTERNAL,            /* 500: headroomd itself */
};

/* find_units calls this for every tool output text: holder[key] is the JSON
 * string, `item` the index of its message/item in the conversation array. */
typedef void (*hr_api_unit_fn)(void *ud, json_t *holder, const char *key, size_t item, const char *tool_name);

/* Hands back a tool result for a headroom_retrieve call (new reference):
 * the original stored under `hash`, or only what matches `query` (NULL
 * when the call named none). */
typedef json_t *(*hr_api_result_fn)(const char *hash, const char *query);

/* A JSON object as jansson built it (json), or as text indexed by one skim
 * of its members (text): usage readers take either, so a small answer's
 * usage costs no tree. Set by hr_api_obj_json or hr_api_obj_text. */
#define HR_API_OBJ_MEMBERS 16
struct hr_api_obj {
    const json_t *json;
    const char *text; /* NULL: no object, unless json */
    size_t len, n;    /* n members; past HR_API_OBJ_MEMBERS, looked up in text */
    struct hr_json_span m[HR_API_OBJ_MEMBERS];
};

#define HR_API_KEY_MAX 160 /* a kept answer's key: "r:" + a response id, "c:" + a conversation id */

struct hr_api {
    const char *name;                 /* "openai_chat", also the `wire_format` in events and logs */
    enum hr_wire_format format;
    enum hr_provider provider;        /* whose upstream base URL and prices */
    const char *path;                 /* the POST route it owns */
    int websocket;                    /* the route also runs over a WebSocket: GET with Upgrade, one
                                       * `{"type":"response.create",...}` message a request (ws_relay.c) */
    const char *items_key;            /* the conversation array: "messages" or "input" */
    const char *system_key;           /* the system prompt's key, or NULL */
    const char *const *counted_keys;  /* top-level keys whose strings are request tokens */
    const char *answer_tools_key;     /* where an answer echoes the request's tools, or NULL */

    /* ---- the request */
    /* Every tool output of `body` that a transform may compress. */
    void (*find_units)(json_t *body, hr_api_unit_fn add, void *ud);
    /* The text a user turn asks with (relevance queries), or NULL when
     * `item` of the conversation array is not a user turn with text. */
    const char *(*user_text)(const json_t *item);
    /* Whether object[key] is data rather than text the model reads as
     * tokens (an image, a base64 PDF, a thinking block's signature,
     * encrypted reasoning): then its strings are not counted and *tokens is
     * what the provider bills for it instead. NULL: every string is text.
     * Asked of every member the request count walks: cheap on the others.
     * lib/media_tokens.h has each format's (rolling_window counts with them). */
    int (*data_tokens)(const json_t *object, const char *key, uint64_t *tokens);

    /* ---- the answer */
    void (*usage_from_json)(const json_t *answer, struct hr_usage *u);
    /* The answer's "usage" object, parsed or as text (hr_api_read_answer). */
    void (*usage_read)(const struct hr_api_obj *usage, struct hr_usage *u);
    /* One event of a streamed answer; must be cheap on events without usage. */
    void (*usage_from_sse)(const char *event, size_t event_len, const char *data, size_t len, struct hr_usage *u);

    /* ---- errors */
    /* The provider's error body (new reference). */
    json_t *(*error_body)(enum hr_api_error kind, const char *message);
    /* A stream that broke mid-way: the SSE text the SDKs raise (malloc'd). */
    char *(*stream_error)(const char *message);

    /* ---- headroom_retrieve */
    /* The key of the list in `body` the tool joins: "tools", or NULL when
     * it cannot be offered. NULL hook: "tools". */
    const char *(*tools_key)(const json_t *body);
    /* The tool definition in this format, for the list named `list` (new reference). */
    json_t *(*tool_def)(const char *list, const char *name, const char *description, json_t *parameters_schema);
    /* Name of a tool definition in body.tools, or NULL. */
    const char *(*tool_def_name)(const json_t *tool);
    /* Tool calls in a non-streamed answer, up to max; returns how many. */
    size_t (*answer_calls)(const json_t *answer, const json_t **calls, size_t max);
    const char *(*call_name)(const json_t *call);
    /* The call's "hash" argument (malloc'd), or NULL. */
    char *(*call_hash)(const json_t *call);
    /* Append the model's turn and one result per call (from `result`) to the
     * conversation in `body`, ready to send again. Returns calls answered. */
    int (*append_results)(json_t *body, const json_t *answer, const json_t *const *calls, size_t n,
                          hr_api_result_fn result);
    /* Take `call` (one of answer_calls') out of the answer, which keeps
     * other calls: the client gets the answer as if the model had made only
     * those (indexes renumbered where the format has them; the stop reason
     * stays a tool call's). Returns 1 when removed. */
    int (*drop_call)(json_t *answer, const json_t *call);
    /* drop_call took every call out: the stop reason becomes a finished
     * turn's (end_turn, stop), and an answer left without text gets `note`
     * as its text, so the client has an answer to show. NULL: as is. */
    void (*calls_gone)(json_t *answer, const char *note);
    /* The provider keeps the answer and a later request continues from its
     * copy (Responses: stored, or added to a conversation), so a call left
     * out of what the client got still needs a result there: the keys
     * ("r:<response id>", "c:<conversation id>") a request continues from
     * it by, up to `max`; 0 when the client sends the conversation whole.
     * NULL: never. */
    size_t (*answer_kept_as)(const json_t *body, const json_t *answer, char keys[][HR_API_KEY_MAX], size_t max);
    /* The keys `body` continues a kept answer by (as answer_kept_as's). */
    size_t (*continues_from)(const json_t *body, char keys[][HR_API_KEY_MAX], size_t max);
    /* Put one result per call (calls of the answer the request continues
     * from) before the request's own items, skipping a call they answer
     * already (an input given as a string becomes a user item after them).
     * Returns the results put at the front of the items_key array. */
    int (*prepend_results)(json_t *body, const json_t *const *calls, size_t n, hr_api_result_fn result);
};

/* The adapter that owns `method path` (compressed, priced, counted), or NULL. */
const struct hr_api *hr_api_for_route(const char *method, const char *path);
/* The adapter whose route `path` also runs over a WebSocket, or NULL. */
const struct hr_api *hr_api_for_websocket(const char *path);
/* The adapter (provider, error shape) of a route no adapter owns: by path
 * alone (Anthropic's /v1/messages* and /v1/complete, else OpenAI). */
const struct hr_api *hr_api_for_passthrough(const char *path);
/* POST /v1/compress: from ?format= / ?provider= in `query`, else the shape of `body`. */
const struct hr_api *hr_api_guess(const char *query, const json_t *body);
const struct hr_api *hr_api_for_format(enum hr_wire_format f);
/* Every adapter, in table order; NULL past the end. */
const struct hr_api *hr_api_at(size_t i);

/* The provider's base URL from the config (openai_url, anthropic_url; for
 * an OpenAI request from a ChatGPT plan, chatgpt_plan set: chatgpt_url,
 * whose paths have no /v1). */
struct hr_config;
const char *hr_api_upstream_base(const struct hr_api *api, const struct hr_config *cfg, int chatgpt_plan);
/* The other provider's credential header, never forwarded to this one's upstream (or NULL). */
const char *hr_api_foreign_credential(const struct hr_api *api);
/* "openai", "anthropic". */
const char *hr_provider_name(enum hr_provider p);

/* Shared by adapters (api_common.c). */
/* A token count of the object's member `key`; 0 when absent or not a sane count. */
int hr_api_get_count(const struct hr_api_obj *o, const char *key, uint64_t *out);
/* o is the JSON object `j`, or none when j is not an object. */
void hr_api_obj_json(struct hr_api_obj *o, const json_t *j);
/* o is the object `text` and returns 1 when it is valid JSON, an object, and
 * has no escape (a key written with escapes would not be found); else 0.
 * `checked`: the caller knows all that already. */
int hr_api_obj_text(struct hr_api_obj *o, const char *text, size_t len, int checked);
int hr_api_obj_is(const struct hr_api_obj *o);
/* out is o's member `key` when that is an object, else none. */
void hr_api_obj_get(const struct hr_api_obj *o, const char *key, struct hr_api_obj *out);
/* Usage of an answer, read from its text: only the root's "usage" member
 * is found, walking from whichever end of the text reaches it first (the
 * rest is relayed as it came, not checked), and it is read as text when it
 * has no escapes (jansson builds it otherwise). Gives what usage_from_json
 * gives on the parsed answer, whenever the answer parses. */
void hr_api_read_answer(const struct hr_api *api, const char *text, size_t len, struct hr_usage *u);
/* The same, when the text is valid JSON (jansson's rules) without an escape
 * or NUL byte that the skim could read differently from jansson: checked and
 * its members found in one pass. Returns 1 when read, 0 (nothing read) when
 * the text is not such; parse it then. */
int hr_api_read_exact(const struct hr_api *api, const char *text, size_t len, struct hr_usage *u);
/* api->usage_read of parent's "usage" member (none when it is not an object). */
void hr_api_usage_of(const struct hr_api *api, const json_t *parent, struct hr_usage *u);
int hr_api_str_is(const char *s, size_t n, const char *lit);
/* The `"usage": {` test that spares a JSON parse per streamed chunk. */
int hr_api_has_usage_object(const char *data, size_t len);
/* OpenAI usage: Chat and Responses name the same fields differently. */
struct hr_api_openai_usage_keys {
    const char *input, *input_details, *output, *output_details;
};
void hr_api_openai_usage(struct hr_usage *u, const struct hr_api_obj *usage, const struct hr_api_openai_usage_keys *k);
/* A string member (`name`: "hash", "query") of a tool call's JSON
 * `arguments` string (malloc'd), or NULL. */
char *hr_api_string_argument(const char *arguments, const char *name);
/* OpenAI's cache_write_tokens in prompt/input token details (see api_common.c). */
void hr_api_openai_cache_writes(const struct hr_api_obj *details, struct hr_usage *u);
/* {"error":{"message","type","param":null,"code"}}: OpenAI's error shape. */
json_t *hr_api_openai_error(const char *type, const char *code, const char *message);
/* A user turn's string content, or its first `part_type` part ("text";
 * "input_text" in Responses) that is not a client's <system-reminder>; NULL
 * for other items. hr_api_message_user_text: Chat Completions and Messages. */
const char *hr_api_user_text(const json_t *item, const char *part_type);
const char *hr_api_message_user_text(const json_t *message);
/* Whether a text part is a client's <system-reminder> (Claude Code puts
 * them in user turns, before the user's own words), not the user asking. */
int hr_api_is_reminder(const char *text);
/* A tool output given as content parts: every {"type":"text","text"} part
 * is a unit. */
void hr_api_add_text_parts(json_t *content, size_t item, const char *tool, hr_api_unit_fn add, void *ud);
/* "data: <json>\n\n" or "event: NAME\ndata: <json>\n\n" (malloc'd); takes `obj`. */
char *hr_api_sse_text(const char *event, json_t *obj);

extern const struct hr_api hr_api_openai_chat;
extern const struct hr_api hr_api_anthropic_messages;
extern const struct hr_api hr_api_openai_responses;
#endif
