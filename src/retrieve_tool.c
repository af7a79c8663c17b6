/* retrieve_tool.c — offering, detecting and answering headroom_retrieve
 * calls; the format's adapter knows where tools, calls and results go. */
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "log.h"
#include "retrieve_match.h"
#include "retrieve_tool.h"

#define MAX_CALLS 64
#define DESCRIPTION                                                                                         \
    "Fetch the full original of a tool output that headroom compressed. A compressed output carries a "  \
    "marker naming what was omitted and hash=<hash> (a {\"_headroom\": {...}} object in JSON, a "         \
    "\"[headroom: ...]\" line in text); call this with that hash when you need what was omitted."

const char *hr_retrieve_tools_key(const struct hr_api *api, const json_t *body)
{
    return api->tools_key ? api->tools_key(body) : "tools";
}

json_t *hr_retrieve_tool_def(const struct hr_api *api, const char *list)
{
    json_t *schema = json_pack("{s:s,s:{s:{s:s,s:s},s:{s:s,s:s}},s:[s]}", "type", "object", "properties", "hash",
                               "type", "string", "description", "the 24 hex digits after hash= in the marker", "query",
                               "type", "string", "description",
                               "optional words to look for: only the best-matching rows or lines come back",
                               "required", "hash");
    return api->tool_def(list, HR_RETRIEVE_TOOL, DESCRIPTION, schema);
}

struct marker_scan {
    int found;
};

static void scan_unit(void *ud, json_t *holder, const char *key, size_t item, const char *tool)
{
    (void)item;
    (void)tool;
    struct marker_scan *s = ud;
    const char *text = json_string_value(json_object_get(holder, key));
    if (text && (strstr(text, "{\"" HR_MARKER_KEY "\":") || strstr(text, HR_TEXT_MARKER))) s->found = 1;
}

int hr_retrieve_needed(const struct hr_api *api, json_t *body)
{
    struct marker_scan s = {0};
    api->find_units(body, scan_unit, &s);
    return s.found;
}

int hr_retrieve_tool_add(const struct hr_api *api, json_t *body)
{
    const char *key = hr_retrieve_tools_key(api, body);
    if (!key) return 0; /* the format cannot offer it to this request */
    json_t *tools = json_object_get(body, key);
    if (tools && !json_is_array(tools)) return HR_EINVAL;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *name = api->tool_def_name(t);
        if (name && !strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    if (!tools) {
        tools = json_array();
        json_object_set_new(body, key, tools);
    }
    return json_array_append_new(tools, hr_retrieve_tool_def(api, key)) ? HR_ENOMEM : 1;
}

int hr_retrieve_only_calls(const struct hr_api *api, const json_t *answer)
{
    const json_t *calls[MAX_CALLS];
    size_t n = api->answer_calls(answer, calls, MAX_CALLS);
    if (!n || n == MAX_CALLS) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = api->call_name(calls[i]);
        if (!name || strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    return 1;
}

/* hr_api_result_fn: the stored original (or what of it matches the
 * query), or why there is none. */
static json_t *result_text(const char *hash, const char *query)
{
    size_t len = 0;
    char *data = hash ? hr_ccr_get(hash, &len) : NULL;
    if (!data) {
        char msg[200];
        snprintf(msg, sizeof msg, "headroom_retrieve: no stored original for hash '%s' (unknown or expired)",
                 hash ? hash : "");
        return json_string(msg);
    }
    if (query && *query) {
        json_t *s = hr_retrieve_match_text(data, len, query);
        HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved the matches of a query", hash);
        hr_ccr_free(data);
        return s;
    }
    json_t *parsed = json_loadb(data, len, 0, NULL);
    HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved %zu items", hash,
            json_is_array(parsed) ? json_array_size(parsed) : (size_t)1);
    json_decref(parsed);
    json_t *s = json_stringn(data, len);
    hr_ccr_free(data);
    return s ? s : json_string("headroom_retrieve: stored original is not valid UTF-8");
}

int hr_retrieve_answer(const struct hr_api *api, json_t *body, const json_t *answer)
{
    const json_t *calls[MAX_CALLS];
    size_t n = api->answer_calls(answer, calls, MAX_CALLS);
    if (!n) return 0;
    return api->append_results(body, answer, calls, n, result_text);
}

int hr_retrieve_hide_tool(const struct hr_api *api, json_t *answer)
{
    json_t *tools = api->answer_tools_key ? json_object_get(answer, api->answer_tools_key) : NULL;
    int changed = 0;
    for (size_t i = json_array_size(tools); i-- > 0;) {
        const char *name = api->tool_def_name(json_array_get(tools, i));
        if (name && !strcmp(name, HR_RETRIEVE_TOOL) && !json_array_remove(tools, i)) changed = 1;
    }
    return changed;
}
