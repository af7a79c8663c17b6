/* retrieve_tool.c — building, detecting and answering headroom_retrieve calls. */
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "log.h"
#include "retrieve_tool.h"

#define DESCRIPTION                                                                                         \
    "Fetch the full original of a tool output that headroom compressed. Compressed outputs contain an "    \
    "object {\"_headroom\": {..., \"retrieve\": \"<hash>\"}} listing which rows were kept; call this with " \
    "that hash when you need rows that were omitted."

json_t *hr_retrieve_tool_def(enum hr_provider p)
{
    json_t *schema = json_pack("{s:s,s:{s:{s:s,s:s}},s:[s]}", "type", "object", "properties", "hash", "type", "string",
                               "description", "the value of _headroom.retrieve", "required", "hash");
    if (p == HR_PROVIDER_ANTHROPIC)
        return json_pack("{s:s,s:s,s:o}", "name", HR_RETRIEVE_TOOL, "description", DESCRIPTION, "input_schema", schema);
    return json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function", "function", "name", HR_RETRIEVE_TOOL, "description",
                     DESCRIPTION, "parameters", schema);
}

static int has_marker_text(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && strstr(s, "{\"" HR_MARKER_KEY "\":") != NULL;
}

/* A tool output's texts: a string, or text parts/blocks. */
static int content_has_marker(const json_t *content)
{
    if (has_marker_text(content)) return 1;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        if (has_marker_text(json_object_get(part, "text"))) return 1;
    }
    return 0;
}

int hr_retrieve_needed(const json_t *body, enum hr_provider p)
{
    size_t i, k;
    json_t *m, *b;
    json_array_foreach(json_object_get(body, "messages"), i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) continue;
        if (p == HR_PROVIDER_OPENAI && !strcmp(role, "tool") && content_has_marker(json_object_get(m, "content")))
            return 1;
        if (p == HR_PROVIDER_ANTHROPIC && !strcmp(role, "user")) {
            json_array_foreach(json_object_get(m, "content"), k, b) {
                const char *type = json_string_value(json_object_get(b, "type"));
                if (type && !strcmp(type, "tool_result") && content_has_marker(json_object_get(b, "content"))) return 1;
            }
        }
    }
    return 0;
}

static const char *tool_name(const json_t *tool, enum hr_provider p)
{
    return json_string_value(p == HR_PROVIDER_ANTHROPIC ? json_object_get(tool, "name")
                                                        : json_object_get(json_object_get(tool, "function"), "name"));
}

int hr_retrieve_tool_add(json_t *body, enum hr_provider p)
{
    json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_array(tools)) return HR_EINVAL;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *name = tool_name(t, p);
        if (name && !strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    if (!tools) {
        tools = json_array();
        json_object_set_new(body, "tools", tools);
    }
    return json_array_append_new(tools, hr_retrieve_tool_def(p)) ? HR_ENOMEM : 1;
}

/* Calls in an answer: OpenAI choices[0].message.tool_calls, Anthropic content[] tool_use. */
static size_t collect_calls(const json_t *answer, enum hr_provider p, const json_t **calls, size_t max)
{
    size_t n = 0, i;
    json_t *c;
    if (p == HR_PROVIDER_ANTHROPIC) {
        json_array_foreach(json_object_get(answer, "content"), i, c) {
            const char *type = json_string_value(json_object_get(c, "type"));
            if (type && !strcmp(type, "tool_use") && n < max) calls[n++] = c;
        }
    } else {
        const json_t *msg = json_object_get(json_array_get(json_object_get(answer, "choices"), 0), "message");
        json_array_foreach(json_object_get(msg, "tool_calls"), i, c) if (n < max) calls[n++] = c;
    }
    return n;
}

static const char *call_name(const json_t *call, enum hr_provider p)
{
    return json_string_value(p == HR_PROVIDER_ANTHROPIC ? json_object_get(call, "name")
                                                        : json_object_get(json_object_get(call, "function"), "name"));
}

int hr_retrieve_only_calls(const json_t *answer, enum hr_provider p)
{
    const json_t *calls[64];
    size_t n = collect_calls(answer, p, calls, 64);
    if (!n || n == 64) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = call_name(calls[i], p);
        if (!name || strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    return 1;
}

/* The hash argument of a call, or NULL. */
static char *call_hash(const json_t *call, enum hr_provider p)
{
    if (p == HR_PROVIDER_ANTHROPIC) {
        const char *h = json_string_value(json_object_get(json_object_get(call, "input"), "hash"));
        return h ? strdup(h) : NULL;
    }
    const char *args = json_string_value(json_object_get(json_object_get(call, "function"), "arguments"));
    json_t *a = args ? json_loads(args, 0, NULL) : NULL;
    const char *h = json_string_value(json_object_get(a, "hash"));
    char *out = h ? strdup(h) : NULL;
    json_decref(a);
    return out;
}

static json_t *result_text(const char *hash)
{
    size_t len = 0;
    char *data = hash ? hr_ccr_get(hash, &len) : NULL;
    if (!data) {
        char msg[200];
        snprintf(msg, sizeof msg, "headroom_retrieve: no stored original for hash '%s' (unknown or expired)",
                 hash ? hash : "");
        return json_string(msg);
    }
    json_t *parsed = json_loadb(data, len, 0, NULL);
    HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved %zu items", hash,
            json_is_array(parsed) ? json_array_size(parsed) : (size_t)1);
    json_decref(parsed);
    json_t *s = json_stringn(data, len);
    hr_ccr_free(data);
    return s ? s : json_string("headroom_retrieve: stored original is not valid UTF-8");
}

int hr_retrieve_answer(json_t *body, const json_t *answer, enum hr_provider p)
{
    json_t *messages = json_object_get(body, "messages");
    const json_t *calls[64];
    size_t n = collect_calls(answer, p, calls, 64);
    if (!json_is_array(messages) || !n) return 0;
    if (p == HR_PROVIDER_ANTHROPIC) {
        json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "assistant", "content",
                                                  json_object_get(answer, "content")));
        json_t *results = json_array();
        for (size_t i = 0; i < n; i++) {
            char *hash = call_hash(calls[i], p);
            json_array_append_new(results, json_pack("{s:s,s:O,s:o}", "type", "tool_result", "tool_use_id",
                                                     json_object_get(calls[i], "id"), "content", result_text(hash)));
            free(hash);
        }
        json_array_append_new(messages, json_pack("{s:s,s:o}", "role", "user", "content", results));
    } else {
        const json_t *msg = json_object_get(json_array_get(json_object_get(answer, "choices"), 0), "message");
        json_t *turn = json_deep_copy(msg);
        json_object_del(turn, "refusal");
        json_object_del(turn, "annotations");
        json_array_append_new(messages, turn);
        for (size_t i = 0; i < n; i++) {
            char *hash = call_hash(calls[i], p);
            json_array_append_new(messages, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id",
                                                      json_object_get(calls[i], "id"), "content", result_text(hash)));
            free(hash);
        }
    }
    return (int)n;
}
