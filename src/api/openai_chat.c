/* openai_chat.c — OpenAI Chat Completions (POST /v1/chat/completions):
 * tool outputs are role:"tool" messages, usage is prompt/completion tokens,
 * tools are {"type":"function","function":{...}}. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "json_get.h"
#include "json_load.h"
#include "media_tokens.h"

/* The name of tool call `id` (a function, or a custom tool), searched in the assistant turns before `before`. */
static const char *tool_name_for_call(const json_t *messages, size_t before, const char *id)
{
    if (!id) return NULL;
    for (size_t i = before; i-- > 0;) {
        size_t k;
        json_t *x;
        json_array_foreach(hr_json_get(json_array_get(messages, i), "tool_calls"), k, x) {
            const char *cid = json_string_value(hr_json_get(x, "id"));
            if (!cid || strcmp(cid, id)) continue;
            const json_t *name = hr_json_get(hr_json_get(x, "function"), "name");
            return json_string_value(name ? name : hr_json_get(hr_json_get(x, "custom"), "name"));
        }
    }
    return NULL;
}

static void find_units(json_t *body, hr_api_unit_fn add, void *ud)
{
    json_t *messages = hr_json_get(body, "messages"), *m;
    size_t i;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(hr_json_get(m, "role")), *tool;
        if (!role) continue;
        if (!strcmp(role, "tool")) tool = tool_name_for_call(messages, i, json_string_value(hr_json_get(m, "tool_call_id")));
        else if (!strcmp(role, "function")) tool = json_string_value(hr_json_get(m, "name")); /* legacy functions */
        else continue;
        json_t *content = hr_json_get(m, "content");
        if (json_is_string(content)) add(ud, m, "content", i, tool);
        else hr_api_add_text_parts(content, i, tool, add, ud);
    }
}

/* Chat Completions' names for OpenAI's usage fields. */
static const struct hr_api_openai_usage_keys usage_keys = {"prompt_tokens", "prompt_tokens_details", "completion_tokens",
                                                           "completion_tokens_details"};

static void usage_read(const struct hr_api_obj *usage, struct hr_usage *u) { hr_api_openai_usage(u, usage, &usage_keys); }


static void usage_from_json(const json_t *answer, struct hr_usage *u)
{
    if (!json_is_object(answer)) return;
    hr_api_usage_of(&hr_api_openai_chat, answer, u);
}

static void usage_from_sse(const char *event, size_t event_len, const char *data, size_t len, struct hr_usage *u)
{
    (void)event;
    (void)event_len;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
    if (i == len || data[i] != '{') return; /* "[DONE]" and anything else that is not a chunk object */
    if (!hr_api_has_usage_object(data, len)) return; /* every chunk but the last, with include_usage */
    /* The chunk's choices are not read: only "usage", from the text when
     * that reads it as the whole parse would. */
    if (hr_api_read_exact(&hr_api_openai_chat, data, len, u)) return;
    json_t *root = hr_json_load(data, len, NULL); /* json_loadb's result */
    if (json_is_object(root)) hr_api_usage_of(&hr_api_openai_chat, root, u);
    json_decref(root);
}

static json_t *error_body(enum hr_api_error kind, const char *message)
{
    switch (kind) {
    case HR_API_ERR_INVALID_REQUEST: return hr_api_openai_error("invalid_request_error", NULL, message);
    case HR_API_ERR_RATE_LIMIT: return hr_api_openai_error("rate_limit_exceeded", "rate_limit_exceeded", message);
    case HR_API_ERR_BUDGET: return hr_api_openai_error("budget_exceeded", "budget_exceeded", message);
    case HR_API_ERR_OVERLOADED: return hr_api_openai_error("overloaded_error", NULL, message);
    case HR_API_ERR_UPSTREAM: return hr_api_openai_error("upstream_error", NULL, message);
    case HR_API_ERR_INTERNAL: break;
    }
    return hr_api_openai_error("api_error", NULL, message);
}

static char *stream_error(const char *message)
{
    return hr_api_sse_text(NULL, json_pack("{s:{s:s,s:s}}", "error", "message", message, "type", "upstream_error"));
}

/* A request with the legacy `functions` list gets the tool there: the API
 * refuses `tools` beside it. One asking for n > 1 choices gets none: the
 * calls of one choice cannot be answered for all of them. */
static const char *tools_key(const json_t *body)
{
    const json_t *n = hr_json_get(body, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1) return NULL;
    return json_is_array(hr_json_get(body, "functions")) && !hr_json_get(body, "tools") ? "functions" : "tools";
}

static json_t *tool_def(const char *list, const char *name, const char *description, json_t *schema)
{
    if (!strcmp(list, "functions"))
        return json_pack("{s:s,s:s,s:o}", "name", name, "description", description, "parameters", schema);
    return json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function", "function", "name", name, "description",
                     description, "parameters", schema);
}

/* A tool or a call: {"function":{"name",...}}, or a legacy function (call)
 * {"name",...}. */
static const json_t *function_of(const json_t *tool)
{
    const json_t *f = hr_json_get(tool, "function");
    return f ? f : tool;
}

static const char *tool_def_name(const json_t *tool)
{
    return json_string_value(hr_json_get(function_of(tool), "name"));
}

/* The first choice's tool_calls, or its legacy function_call. */
static size_t answer_calls(const json_t *answer, const json_t **calls, size_t max)
{
    const json_t *msg = hr_json_get(json_array_get(hr_json_get(answer, "choices"), 0), "message");
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(hr_json_get(msg, "tool_calls"), i, c) if (n < max) calls[n++] = c;
    const json_t *legacy = hr_json_get(msg, "function_call");
    if (json_is_object(legacy) && n < max) calls[n++] = legacy;
    return n;
}

static const char *call_name(const json_t *call) { return tool_def_name(call); }

static char *call_argument(const json_t *call, const char *name)
{
    return hr_api_string_argument(json_string_value(hr_json_get(function_of(call), "arguments")), name);
}

static char *call_hash(const json_t *call) { return call_argument(call, "hash"); }
static char *call_query(const json_t *call) { return call_argument(call, "query"); }

static int append_results(json_t *body, const json_t *answer, const json_t *const *calls, size_t n,
                          hr_api_result_fn result)
{
    json_t *messages = hr_json_get(body, "messages");
    if (!json_is_array(messages)) return 0;
    json_t *turn = json_deep_copy(hr_json_get(json_array_get(hr_json_get(answer, "choices"), 0), "message"));
    json_object_del(turn, "refusal");
    json_object_del(turn, "annotations");
    json_array_append_new(messages, turn);
    for (size_t i = 0; i < n; i++) {
        char *hash = call_hash(calls[i]), *query = call_query(calls[i]);
        if (hr_json_get(calls[i], "function")) /* a tool call */
            json_array_append_new(messages, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id",
                                                      hr_json_get(calls[i], "id"), "content", result(hash, query)));
        else /* a legacy function call: answered by a function message */
            json_array_append_new(messages, json_pack("{s:s,s:O,s:o}", "role", "function", "name",
                                                      hr_json_get(calls[i], "name"), "content", result(hash, query)));
        free(hash), free(query);
    }
    return (int)n;
}

/* A parallel call taken out of choices[].message.tool_calls (or its
 * function_call); the others keep their ids, and an `index` some providers
 * give them is renumbered so the client sees 0, 1, ... as if only those were
 * made. finish_reason stays "tool_calls": calls remain. */
static int drop_call(json_t *answer, const json_t *call)
{
    size_t c, i;
    json_t *choice, *x;
    json_array_foreach(hr_json_get(answer, "choices"), c, choice) {
        json_t *msg = hr_json_get(choice, "message"), *calls = hr_json_get(msg, "tool_calls");
        if (hr_json_get(msg, "function_call") == call) return !json_object_del(msg, "function_call");
        json_array_foreach(calls, i, x) {
            if (x != call) continue;
            if (json_array_remove(calls, i)) return 0;
            json_array_foreach(calls, i, x) {
                if (json_is_integer(hr_json_get(x, "index"))) json_object_set_new(x, "index", json_integer((json_int_t)i));
            }
            return 1;
        }
    }
    return 0;
}

/* No call left: finish_reason "stop" (it said tool_calls or
 * function_call), an empty tool_calls list gone, and the note as the
 * content when the model wrote none. */
static void calls_gone(json_t *answer, const char *note)
{
    size_t c;
    json_t *choice;
    json_array_foreach(hr_json_get(answer, "choices"), c, choice) {
        json_t *msg = hr_json_get(choice, "message");
        if (!json_is_object(msg) || json_array_size(hr_json_get(msg, "tool_calls")) ||
            json_is_object(hr_json_get(msg, "function_call")))
            continue;
        json_object_del(msg, "tool_calls");
        const char *fr = json_string_value(hr_json_get(choice, "finish_reason"));
        if (fr && (!strcmp(fr, "tool_calls") || !strcmp(fr, "function_call")))
            json_object_set_new(choice, "finish_reason", json_string("stop"));
        const char *text = json_string_value(hr_json_get(msg, "content"));
        if ((!text || !*text) && !json_is_string(hr_json_get(msg, "refusal")))
            json_object_set_new(msg, "content", json_string(note));
    }
}

static const char *const counted[] = {"system", "tools", "messages", NULL};

const struct hr_api hr_api_openai_chat = {
    .name = "openai_chat",
    .format = HR_WIRE_OPENAI_CHAT,
    .provider = HR_PROVIDER_OPENAI,
    .path = "/v1/chat/completions",
    .items_key = "messages",
    .system_key = "system",
    .counted_keys = counted,
    .find_units = find_units,
    .user_text = hr_api_message_user_text,
    .data_tokens = hr_media_chat_data_tokens,
    .usage_from_json = usage_from_json,
    .usage_read = usage_read,
    .usage_from_sse = usage_from_sse,
    .error_body = error_body,
    .stream_error = stream_error,
    .tools_key = tools_key,
    .tool_def = tool_def,
    .tool_def_name = tool_def_name,
    .answer_calls = answer_calls,
    .call_name = call_name,
    .call_hash = call_hash,
    .append_results = append_results,
    .drop_call = drop_call,
    .calls_gone = calls_gone,
};
