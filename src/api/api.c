/* api.c — the table of wire formats, and finding the one a request speaks. */
#include <string.h>
#include "api.h"
#include "config.h"

/* Adding a wire format: write src/api/<name>.c and list it here. */
static const struct hr_api *const formats[] = {
    &hr_api_openai_chat,
    &hr_api_anthropic_messages,
    &hr_api_openai_responses,
    NULL,
};

const struct hr_api *hr_api_at(size_t i)
{
    return i < sizeof formats / sizeof *formats ? formats[i] : NULL;
}

const struct hr_api *hr_api_for_route(const char *method, const char *path)
{
    if (!method || strcmp(method, "POST")) return NULL;
    for (size_t i = 0; formats[i]; i++)
        if (!strcmp(path, formats[i]->path)) return formats[i];
    return NULL;
}

const struct hr_api *hr_api_for_websocket(const char *path)
{
    for (size_t i = 0; formats[i]; i++)
        if (formats[i]->websocket && !strcmp(path, formats[i]->path)) return formats[i];
    return NULL;
}

const struct hr_api *hr_api_for_format(enum hr_wire_format f)
{
    for (size_t i = 0; formats[i]; i++)
        if (formats[i]->format == f) return formats[i];
    return NULL;
}

const struct hr_api *hr_api_for_passthrough(const char *path)
{
    /* Anthropic's own routes (messages/batches, count_tokens, legacy
     * complete); every other path is OpenAI's. Never a request header: a
     * client header must not be able to send a request (and the key in it)
     * to the other provider. */
    if (!strncmp(path, "/v1/messages", 12) || !strncmp(path, "/v1/complete", 12)) return &hr_api_anthropic_messages;
    return &hr_api_openai_chat;
}

/* Shapes only one format has: Responses' input/instructions, Anthropic's
 * top-level system and tool_result / tool_use blocks. */
static const struct hr_api *shape_of(const json_t *body)
{
    if (json_object_get(body, "input") || json_object_get(body, "instructions")) return &hr_api_openai_responses;
    if (json_object_get(body, "system")) return &hr_api_anthropic_messages;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(body, "messages"), i, m) {
        size_t k;
        json_t *b;
        json_array_foreach(json_object_get(m, "content"), k, b) {
            const char *type = json_string_value(json_object_get(b, "type"));
            if (type && (!strcmp(type, "tool_result") || !strcmp(type, "tool_use"))) return &hr_api_anthropic_messages;
        }
    }
    return &hr_api_openai_chat;
}

const struct hr_api *hr_api_guess(const char *query, const json_t *body)
{
    for (size_t i = 0; query && formats[i]; i++) {
        const char *f = strstr(query, "format=");
        if (f && !strncmp(f + 7, formats[i]->name, strlen(formats[i]->name))) return formats[i];
    }
    if (query && strstr(query, "provider=anthropic")) return &hr_api_anthropic_messages;
    if (query && strstr(query, "provider=openai")) {
        const struct hr_api *a = shape_of(body);
        return a->provider == HR_PROVIDER_OPENAI ? a : &hr_api_openai_chat;
    }
    return shape_of(body);
}

const char *hr_api_upstream_base(const struct hr_api *api, const struct hr_config *cfg, int chatgpt_plan)
{
    if (api->provider == HR_PROVIDER_ANTHROPIC) return cfg->anthropic_url;
    return chatgpt_plan ? cfg->chatgpt_url : cfg->openai_url;
}

const char *hr_api_foreign_credential(const struct hr_api *api)
{
    /* Anthropic's key header never goes to OpenAI. (Authorization stays on
     * both: Anthropic takes OAuth bearer tokens too.) */
    return api->provider == HR_PROVIDER_ANTHROPIC ? NULL : "x-api-key";
}

const char *hr_provider_name(enum hr_provider p)
{
    switch (p) {
    case HR_PROVIDER_OPENAI: return "openai";
    case HR_PROVIDER_ANTHROPIC: return "anthropic";
    default: return "unknown";
    }
}
