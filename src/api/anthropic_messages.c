/* anthropic_messages.c — Anthropic Messages (POST /v1/messages): tool
 * outputs are tool_result blocks of user turns, usage has prompt-cache reads
 * and writes with TTL buckets, errors are {"type":"error","error":{...}}. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "json_load.h"
#include "media_tokens.h"

/* The tool name of tool_use `id`, searched in the turns before `before`. */
static const char *tool_name_for_use(const json_t *messages, size_t before, const char *id)
{
    if (!id) return NULL;
    for (size_t i = before; i-- > 0;) {
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(json_array_get(messages, i), "content"), k, x) {
            const char *cid = json_string_value(json_object_get(x, "id"));
            if (cid && !strcmp(cid, id)) return json_string_value(json_object_get(x, "name"));
        }
    }
    return NULL;
}

static void find_units(json_t *body, hr_api_unit_fn add, void *ud)
{
    json_t *messages = json_object_get(body, "messages"), *m, *block;
    size_t i, k;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || strcmp(role, "user")) continue;
        json_array_foreach(json_object_get(m, "content"), k, block) {
            const char *type = json_string_value(json_object_get(block, "type"));
            /* One carrying cache_control is a unit too (doc/prompt-caching.md). */
            if (!type || strcmp(type, "tool_result")) continue;
            const char *tool = tool_name_for_use(messages, i, json_string_value(json_object_get(block, "tool_use_id")));
            json_t *content = json_object_get(block, "content");
            if (json_is_string(content)) add(ud, block, "content", i, tool);
            else hr_api_add_text_parts(content, i, tool, add, ud);
        }
    }
}

/* `delta`: a message_delta, where the counts other than output_tokens are
 * only taken when non-zero (older API versions send nothing or zeros there;
 * message_start already gave the real values). */
static void read_usage(struct hr_usage *u, const struct hr_api_obj *usage, int delta)
{
    uint64_t v;
    int have_write = 0, have_breakdown = 0;
    if (!hr_api_obj_is(usage)) return;
    u->seen = 1;
    if (hr_api_get_count(usage, "input_tokens", &v) && (v || !delta)) u->input_tokens = v;
    if (hr_api_get_count(usage, "output_tokens", &v)) u->output_tokens = v; /* cumulative: the latest wins */
    if (hr_api_get_count(usage, "cache_read_input_tokens", &v) && (v || !delta)) u->cache_read_tokens = v;
    if (hr_api_get_count(usage, "cache_creation_input_tokens", &v) && (v || !delta)) {
        u->cache_write_tokens = v;
        have_write = 1;
    }
    struct hr_api_obj cc;
    hr_api_obj_get(usage, "cache_creation", &cc);
    if (hr_api_obj_is(&cc)) {
        if (hr_api_get_count(&cc, "ephemeral_5m_input_tokens", &v)) {
            have_breakdown = 1;
            if (v || !delta) u->cache_write_5m_tokens = v;
        }
        if (hr_api_get_count(&cc, "ephemeral_1h_input_tokens", &v)) {
            have_breakdown = 1;
            if (v || !delta) u->cache_write_1h_tokens = v;
        }
    }
    if (have_write && !have_breakdown) {
        /* No per-TTL breakdown (older API versions, or a delta that only
         * repeats the total): writes use the default TTL, 5 minutes. Keep
         * any 1h part an earlier event reported so the buckets still add up. */
        if (u->cache_write_1h_tokens <= u->cache_write_tokens) {
            u->cache_write_5m_tokens = u->cache_write_tokens - u->cache_write_1h_tokens;
        } else {
            u->cache_write_5m_tokens = u->cache_write_tokens;
            u->cache_write_1h_tokens = 0;
        }
    }
}

static void usage_read(const struct hr_api_obj *usage, struct hr_usage *u) { read_usage(u, usage, 0); }

/* The member "usage" of `parent`, read as read_usage does. */
static void usage_of(const json_t *parent, int delta, struct hr_usage *u)
{
    struct hr_api_obj o;
    hr_api_obj_json(&o, json_object_get(parent, "usage"));
    read_usage(u, &o, delta);
}

static void usage_from_json(const json_t *answer, struct hr_usage *u)
{
    if (!json_is_object(answer)) return;
    usage_of(answer, 0, u);
}

static void usage_from_sse(const char *event, size_t event_len, const char *data, size_t len, struct hr_usage *u)
{
    /* Only message_start and message_delta carry usage; the stream is
     * mostly content_block_delta, which must not cost a JSON parse. A
     * stream without event names (proxies that drop them) falls back to
     * the "type" member. */
    if (hr_api_str_is(event, event_len, "message_start") || hr_api_str_is(event, event_len, "message_delta")) {
        /* parse below */
    } else if (hr_api_str_is(event, event_len, "message")) {
        if (!memmem(data, len, "\"message_start\"", 15) && !memmem(data, len, "\"message_delta\"", 15)) return;
    } else {
        return;
    }
    json_t *root = hr_json_load(data, len, NULL); /* json_loadb's result, a few times faster */
    if (json_is_object(root)) {
        const json_t *type = json_object_get(root, "type");
        int start = json_is_string(type) ? !strcmp(json_string_value(type), "message_start")
                                         : hr_api_str_is(event, event_len, "message_start");
        if (start) {
            usage_of(json_object_get(root, "message"), 0, u);
        } else if (!json_is_string(type) || !strcmp(json_string_value(type), "message_delta")) {
            usage_of(root, 1, u);
        }
    }
    json_decref(root);
}

static json_t *error_object(const char *type, const char *message)
{
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message);
}

static json_t *error_body(enum hr_api_error kind, const char *message)
{
    switch (kind) {
    case HR_API_ERR_INVALID_REQUEST: return error_object("invalid_request_error", message);
    case HR_API_ERR_RATE_LIMIT: return error_object("rate_limit_error", message);
    case HR_API_ERR_BUDGET: return error_object("budget_exceeded", message);
    case HR_API_ERR_OVERLOADED: return error_object("overloaded_error", message);
    case HR_API_ERR_UPSTREAM:
    case HR_API_ERR_INTERNAL: break;
    }
    return error_object("api_error", message);
}

static char *stream_error(const char *message) { return hr_api_sse_text("error", error_object("api_error", message)); }

static json_t *tool_def(const char *list, const char *name, const char *description, json_t *schema)
{
    (void)list; /* always tools */
    return json_pack("{s:s,s:s,s:o}", "name", name, "description", description, "input_schema", schema);
}

static const char *tool_def_name(const json_t *tool) { return json_string_value(json_object_get(tool, "name")); }

static size_t answer_calls(const json_t *answer, const json_t **calls, size_t max)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(answer, "content"), i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && !strcmp(type, "tool_use") && n < max) calls[n++] = c;
    }
    return n;
}

static char *call_argument(const json_t *call, const char *name)
{
    const char *v = json_string_value(json_object_get(json_object_get(call, "input"), name));
    return v ? strdup(v) : NULL;
}

static char *call_hash(const json_t *call) { return call_argument(call, "hash"); }
static char *call_query(const json_t *call) { return call_argument(call, "query"); }

static int append_results(json_t *body, const json_t *answer, const json_t *const *calls, size_t n,
                          hr_api_result_fn result)
{
    json_t *messages = json_object_get(body, "messages");
    if (!json_is_array(messages)) return 0;
    json_array_append_new(messages,
                          json_pack("{s:s,s:O}", "role", "assistant", "content", json_object_get(answer, "content")));
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        char *hash = call_hash(calls[i]), *query = call_query(calls[i]);
        json_array_append_new(results, json_pack("{s:s,s:O,s:o}", "type", "tool_result", "tool_use_id",
                                                 json_object_get(calls[i], "id"), "content", result(hash, query)));
        free(hash), free(query);
    }
    json_array_append_new(messages, json_pack("{s:s,s:o}", "role", "user", "content", results));
    return (int)n;
}

/* A tool_use block taken out of the content; stop_reason stays
 * "tool_use": other calls remain. */
static int drop_call(json_t *answer, const json_t *call)
{
    json_t *content = json_object_get(answer, "content");
    for (size_t i = 0; i < json_array_size(content); i++)
        if (json_array_get(content, i) == call) return !json_array_remove(content, i);
    return 0;
}

/* No tool_use left: stop_reason "end_turn" (it said tool_use), and the
 * note as a text block when the model wrote no text (thinking blocks stay
 * before it). */
static void calls_gone(json_t *answer, const char *note)
{
    const char *sr = json_string_value(json_object_get(answer, "stop_reason"));
    if (sr && !strcmp(sr, "tool_use")) json_object_set_new(answer, "stop_reason", json_string("end_turn"));
    json_t *content = json_object_get(answer, "content");
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type")), *text;
        if (type && !strcmp(type, "text") && (text = json_string_value(json_object_get(b, "text"))) && *text) return;
    }
    if (!json_is_array(content)) json_object_set_new(answer, "content", content = json_array());
    json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", note));
}

static const char *const counted[] = {"system", "tools", "messages", NULL};

const struct hr_api hr_api_anthropic_messages = {
    .name = "anthropic_messages",
    .format = HR_WIRE_ANTHROPIC_MESSAGES,
    .provider = HR_PROVIDER_ANTHROPIC,
    .path = "/v1/messages",
    .items_key = "messages",
    .system_key = "system",
    .counted_keys = counted,
    .find_units = find_units,
    .user_text = hr_api_message_user_text,
    .data_tokens = hr_media_anthropic_data_tokens,
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
};
