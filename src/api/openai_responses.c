/* openai_responses.c — OpenAI Responses API (POST /v1/responses), spoken by
 * coding agents such as Codex CLI: the conversation is `input` (a string or
 * a list of items), tool outputs are function_call_output items, usage comes
 * in the answer or in the stream's response.completed event, and tools are
 * flat {"type":"function","name",...}. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "json_load.h"
#include "media_tokens.h"

static int type_is(const json_t *item, const char *type)
{
    const char *t = json_string_value(json_object_get(item, "type"));
    return t && !strcmp(t, type);
}

/* The name of the call `call_id` answers, from the items before `before`
 * (NULL when the call is in a stored earlier response). */
static const char *tool_name_for_call(const json_t *items, size_t before, const char *call_id)
{
    if (!call_id) return NULL;
    for (size_t i = before; i-- > 0;) {
        const json_t *it = json_array_get(items, i);
        if (!type_is(it, "function_call") && !type_is(it, "custom_tool_call")) continue;
        const char *cid = json_string_value(json_object_get(it, "call_id"));
        if (cid && !strcmp(cid, call_id)) return json_string_value(json_object_get(it, "name"));
    }
    return NULL;
}

/* The shell tools' outputs: a local_shell_call_output's `output` text (the
 * Agents SDK's LocalShellTool), and each command's `stdout` and `stderr` of
 * a shell_call_output (the shell tool: [{"stdout","stderr","outcome"}]).
 * Their calls carry no tool name. Returns 1 when `it` is one of them. */
static int shell_units(json_t *it, size_t i, hr_api_unit_fn add, void *ud)
{
    if (type_is(it, "local_shell_call_output")) {
        if (json_is_string(json_object_get(it, "output"))) add(ud, it, "output", i, NULL);
        return 1;
    }
    if (!type_is(it, "shell_call_output")) return 0;
    size_t k;
    json_t *run;
    json_array_foreach(json_object_get(it, "output"), k, run) {
        if (json_is_string(json_object_get(run, "stdout"))) add(ud, run, "stdout", i, NULL);
        if (json_is_string(json_object_get(run, "stderr"))) add(ud, run, "stderr", i, NULL);
    }
    return 1;
}

static void find_units(json_t *body, hr_api_unit_fn add, void *ud)
{
    json_t *items = json_object_get(body, "input"), *it, *part;
    size_t i, k;
    json_array_foreach(items, i, it) {
        if (shell_units(it, i, add, ud)) continue;
        if (!type_is(it, "function_call_output") && !type_is(it, "custom_tool_call_output")) continue;
        const char *tool = tool_name_for_call(items, i, json_string_value(json_object_get(it, "call_id")));
        json_t *output = json_object_get(it, "output");
        if (json_is_string(output)) {
            add(ud, it, "output", i, tool);
            continue;
        }
        /* Content-part form: the text parts are the output. */
        json_array_foreach(output, k, part) {
            if ((type_is(part, "input_text") || type_is(part, "output_text")) &&
                json_is_string(json_object_get(part, "text")))
                add(ud, part, "text", i, tool);
        }
    }
}

static const char *user_text(const json_t *item) { return hr_api_user_text(item, "input_text"); }

/* The Responses API's names for OpenAI's usage fields. */
static const struct hr_api_openai_usage_keys usage_keys = {"input_tokens", "input_tokens_details", "output_tokens",
                                                           "output_tokens_details"};

static void usage_read(const struct hr_api_obj *usage, struct hr_usage *u) { hr_api_openai_usage(u, usage, &usage_keys); }


static void usage_from_json(const json_t *answer, struct hr_usage *u)
{
    if (!json_is_object(answer)) return;
    hr_api_usage_of(&hr_api_openai_responses, answer, u);
}

/* The three final events carry the whole response with its usage. The
 * others (deltas, and response.created, which repeats the request's
 * instructions and tools) are recognised by name and never parsed. */
static const char *const final_events[] = {"response.completed", "response.incomplete", "response.failed", NULL};

static int named(const char *event, size_t event_len, const char *data, size_t len, const char *name)
{
    if (hr_api_str_is(event, event_len, name)) return 1;
    if (!hr_api_str_is(event, event_len, "message")) return 0;
    /* No event names (a proxy dropped them): look for the type member. */
    char pattern[64];
    int n = snprintf(pattern, sizeof pattern, "\"type\":\"%s\"", name);
    return n > 0 && (size_t)n < sizeof pattern && memmem(data, len, pattern, (size_t)n);
}

static void usage_from_sse(const char *event, size_t event_len, const char *data, size_t len, struct hr_usage *u)
{
    int final = 0;
    for (size_t i = 0; final_events[i] && !final; i++) final = named(event, event_len, data, len, final_events[i]);
    if (!final) return;
    json_t *root = hr_json_load(data, len, NULL); /* json_loadb's result, a few times faster */
    const json_t *response = json_object_get(root, "response");
    if (json_is_object(response)) hr_api_usage_of(&hr_api_openai_responses, response, u);
    json_decref(root);
}

static json_t *error_body(enum hr_api_error kind, const char *message)
{
    return hr_api_openai_chat.error_body(kind, message);
}

/* The Responses stream's own error event, which the SDKs raise. */
static char *stream_error(const char *message)
{
    return hr_api_sse_text("error", json_pack("{s:s,s:s,s:s,s:n}", "type", "error", "code", "upstream_error",
                                              "message", message, "param"));
}

/* strict false, said outright: a Responses function tool that omits it is
 * made strict when its schema allows (every property then required), so
 * the model would have to write a `query` on every call and get only the
 * rows matching it, never the whole original. Chat's default is already
 * non-strict. */
static json_t *tool_def(const char *list, const char *name, const char *description, json_t *schema)
{
    (void)list; /* always tools */
    return json_pack("{s:s,s:s,s:s,s:o,s:b}", "type", "function", "name", name, "description", description,
                     "parameters", schema, "strict", 0);
}

static const char *tool_def_name(const json_t *tool) { return json_string_value(json_object_get(tool, "name")); }

/* Output items the client must answer with an item of its own (the
 * server's own tools, web search and the like, need none): a turn holding
 * one besides headroom_retrieve calls goes to the client, as the API
 * refuses a follow-up that leaves a call unanswered. */
static const char *const client_calls[] = {"function_call", "custom_tool_call", "local_shell_call", "shell_call",
                                           "apply_patch_call", "computer_call", "mcp_approval_request", NULL};

static size_t answer_calls(const json_t *answer, const json_t **calls, size_t max)
{
    size_t n = 0, i;
    json_t *it;
    json_array_foreach(json_object_get(answer, "output"), i, it) {
        for (size_t k = 0; client_calls[k] && n < max; k++)
            if (type_is(it, client_calls[k])) {
                calls[n++] = it;
                break;
            }
    }
    return n;
}

static char *call_hash(const json_t *call)
{
    return hr_api_string_argument(json_string_value(json_object_get(call, "arguments")), "hash");
}

static char *call_query(const json_t *call)
{
    return hr_api_string_argument(json_string_value(json_object_get(call, "arguments")), "query");
}

/* `conversation`: "conv_..." or {"id": "conv_..."}. */
static const char *conversation_of(const json_t *body)
{
    const json_t *c = json_object_get(body, "conversation");
    return json_is_object(c) ? json_string_value(json_object_get(c, "id")) : json_string_value(c);
}

/* input += answer.output, then one function_call_output per call: the
 * follow-up the API documents for answering function calls. In a
 * conversation the provider has added the input and the answer to it
 * already: the input is then the results alone (sent again, the items
 * would repeat in it, and one with an id is refused as a duplicate). */
static int append_results(json_t *body, const json_t *answer, const json_t *const *calls, size_t n,
                          hr_api_result_fn result)
{
    json_t *input = json_object_get(body, "input");
    int in_conversation = conversation_of(body) != NULL;
    if (in_conversation) {
        input = json_array();
        if (json_object_set_new(body, "input", input)) return 0;
    } else if (json_is_string(input)) {
        json_t *items = json_pack("[{s:s,s:O}]", "role", "user", "content", input);
        if (!items || json_object_set_new(body, "input", items)) return 0;
        input = items;
    } else if (!input) {
        input = json_array();
        if (json_object_set_new(body, "input", input)) return 0;
    }
    if (!json_is_array(input)) return 0;
    /* With store:false the API keeps no items: sending one back by its id is
     * a 404, so ids go, and so does a reasoning item that cannot be sent
     * back without them (no encrypted_content). */
    int stored = !json_is_false(json_object_get(body, "store"));
    size_t i;
    json_t *it;
    json_array_foreach(in_conversation ? NULL : json_object_get(answer, "output"), i, it) {
        if (!stored && type_is(it, "reasoning") && !json_is_string(json_object_get(it, "encrypted_content")))
            continue;
        json_t *copy = json_deep_copy(it);
        if (!stored) json_object_del(copy, "id");
        json_array_append_new(input, copy);
    }
    for (size_t c = 0; c < n; c++) {
        char *hash = call_hash(calls[c]), *query = call_query(calls[c]);
        json_array_append_new(input, json_pack("{s:s,s:O,s:o}", "type", "function_call_output", "call_id",
                                               json_object_get(calls[c], "call_id"), "output", result(hash, query)));
        free(hash), free(query);
    }
    return (int)n;
}

/* A call item taken out of the answer's output. */
static int drop_call(json_t *answer, const json_t *call)
{
    json_t *output = json_object_get(answer, "output");
    for (size_t i = 0; i < json_array_size(output); i++)
        if (json_array_get(output, i) == call) return !json_array_remove(output, i);
    return 0;
}

/* No call left: a Response has no stop reason to change; an output with no
 * message gets one holding the note (no id: it is not one the provider
 * stored, and a client sending it back sends it without). */
static void calls_gone(json_t *answer, const char *note)
{
    json_t *output = json_object_get(answer, "output");
    size_t i;
    json_t *it;
    json_array_foreach(output, i, it) if (type_is(it, "message")) return;
    if (!json_is_array(output)) json_object_set_new(answer, "output", output = json_array());
    json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:[]}]}", "type", "message", "role", "assistant",
                                            "status", "completed", "content", "type", "output_text", "text", note,
                                            "annotations"));
}

static size_t add_key(char keys[][HR_API_KEY_MAX], size_t n, size_t max, char kind, const char *id)
{
    if (!id || !*id || n >= max) return n;
    int w = snprintf(keys[n], HR_API_KEY_MAX, "%c:%s", kind, id);
    return w > 0 && w < HR_API_KEY_MAX ? n + 1 : n; /* an id too long for a key is not kept */
}

/* A stored response (store is true unless sent false) is continued by its
 * id as previous_response_id; a conversation's items by its id. */
static size_t answer_kept_as(const json_t *body, const json_t *answer, char keys[][HR_API_KEY_MAX], size_t max)
{
    size_t n = 0;
    if (!json_is_false(json_object_get(body, "store")))
        n = add_key(keys, n, max, 'r', json_string_value(json_object_get(answer, "id")));
    return add_key(keys, n, max, 'c', conversation_of(body));
}

static size_t continues_from(const json_t *body, char keys[][HR_API_KEY_MAX], size_t max)
{
    size_t n = add_key(keys, 0, max, 'r', json_string_value(json_object_get(body, "previous_response_id")));
    return add_key(keys, n, max, 'c', conversation_of(body));
}

static int answered(const json_t *input, const char *call_id)
{
    size_t i;
    json_t *it;
    json_array_foreach(input, i, it) {
        const char *type = json_string_value(json_object_get(it, "type")), *cid;
        size_t tl = type ? strlen(type) : 0;
        if (tl > 7 && !strcmp(type + tl - 7, "_output") && (cid = json_string_value(json_object_get(it, "call_id"))) &&
            !strcmp(cid, call_id))
            return 1;
    }
    return 0;
}

/* function_call_output items first: the stored answer's calls come right
 * before what the client sends now. */
static int prepend_results(json_t *body, const json_t *const *calls, size_t n, hr_api_result_fn result)
{
    json_t *input = json_object_get(body, "input");
    if (input && !json_is_array(input) && !json_is_string(input)) return 0;
    json_t *outs = json_array();
    for (size_t c = 0; outs && c < n; c++) {
        const char *call_id = json_string_value(json_object_get(calls[c], "call_id"));
        if (!call_id || (json_is_array(input) && answered(input, call_id))) continue;
        char *hash = call_hash(calls[c]), *query = call_query(calls[c]);
        json_array_append_new(outs, json_pack("{s:s,s:s,s:o}", "type", "function_call_output", "call_id", call_id,
                                              "output", result(hash, query)));
        free(hash), free(query);
    }
    if (json_array_size(outs) && !json_is_array(input)) { /* a text becomes a user item, after them */
        json_t *items = json_is_string(input) ? json_pack("[{s:s,s:O}]", "role", "user", "content", input) : json_array();
        if (!items || json_object_set_new(body, "input", items)) json_array_clear(outs);
        input = items;
    }
    int put = 0;
    for (size_t i = 0; i < json_array_size(outs); i++)
        put += !json_array_insert(input, (size_t)put, json_array_get(outs, i));
    json_decref(outs);
    return put;
}

static const char *const counted[] = {"instructions", "tools", "input", NULL};

const struct hr_api hr_api_openai_responses = {
    .name = "openai_responses",
    .format = HR_WIRE_OPENAI_RESPONSES,
    .provider = HR_PROVIDER_OPENAI,
    .path = "/v1/responses",
    .websocket = 1, /* wss://api.openai.com/v1/responses */
    .items_key = "input",
    .system_key = "instructions",
    .counted_keys = counted,
    .answer_tools_key = "tools", /* a Response echoes the request's tools */
    .find_units = find_units,
    .user_text = user_text,
    .data_tokens = hr_media_responses_data_tokens,
    .usage_from_json = usage_from_json,
    .usage_read = usage_read,
    .usage_from_sse = usage_from_sse,
    .error_body = error_body,
    .stream_error = stream_error,
    .tool_def = tool_def,
    .tool_def_name = tool_def_name,
    .answer_calls = answer_calls,
    .call_name = tool_def_name,
    .call_hash = call_hash,
    .append_results = append_results,
    .drop_call = drop_call,
    .calls_gone = calls_gone,
    .answer_kept_as = answer_kept_as,
    .continues_from = continues_from,
    .prepend_results = prepend_results,
};
