/* t/fuzz/fuzz_rolling_window.c — libFuzzer-style target for the rolling_window
 * transform (through t/fake_host.c): any request body in, no crash or leak; the
 * system messages survive and the message list never grows; the first user
 * message (the anchor) stays unless the tag says first_user_dropped; a tool
 * result left whose call was sent keeps its call. A body with "input" and
 * no "messages" is a Responses request (its *_output items' string outputs
 * are the units, as the host finds them); a continued one
 * (previous_response_id, conversation) is never changed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "../fake_host.h"
#include "../../plugins/rolling_window/window.h"

extern const struct headroom_plugin headroom_plugin;

static size_t n_system(const json_t *msgs)
{
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *r = json_string_value(json_object_get(m, "role"));
        n += r && (!strcmp(r, "system") || !strcmp(r, "developer"));
    }
    return n;
}

/* Whether an assistant message in msgs makes call `id` (Chat tool_calls,
 * Anthropic tool_use). */
static int has_call(const json_t *msgs, const char *id)
{
    size_t i, j;
    json_t *m, *x;
    json_array_foreach(msgs, i, m) {
        const char *r = json_string_value(json_object_get(m, "role"));
        if (!r || strcmp(r, "assistant"))
            continue;
        json_array_foreach(json_object_get(m, "tool_calls"), j, x) {
            const char *c = json_string_value(json_object_get(x, "id"));
            if (c && !strcmp(c, id))
                return 1;
        }
        json_array_foreach(json_object_get(m, "content"), j, x) {
            const char *t = json_string_value(json_object_get(x, "type")), *c = json_string_value(json_object_get(x, "id"));
            if (t && c && !strcmp(t, "tool_use") && !strcmp(c, id))
                return 1;
        }
    }
    return 0;
}

/* No tool result left (a role "tool" message, a user tool_result block)
 * whose call was in `before` lost that call: the provider refuses it. */
static int results_answered(const json_t *before, const json_t *after)
{
    size_t i, j;
    json_t *m, *x;
    json_array_foreach(after, i, m) {
        const char *r = json_string_value(json_object_get(m, "role"));
        const char *id = json_string_value(json_object_get(m, "tool_call_id"));
        if (r && !strcmp(r, "tool") && id && has_call(before, id) && !has_call(after, id))
            return 0;
        if (!r || strcmp(r, "user"))
            continue;
        json_array_foreach(json_object_get(m, "content"), j, x) {
            const char *t = json_string_value(json_object_get(x, "type"));
            id = json_string_value(json_object_get(x, "tool_use_id"));
            if (t && id && !strcmp(t, "tool_result") && has_call(before, id) && !has_call(after, id))
                return 0;
        }
    }
    return 1;
}

static int contains(const json_t *msgs, const json_t *m)
{
    size_t i;
    json_t *x;
    json_array_foreach(msgs, i, x) if (json_equal(x, m)) return 1;
    return 0;
}

/* The host's Responses units: string outputs of *_output items. */
static void responses_units(struct fh_request *r, json_t *items)
{
    size_t i;
    json_t *it;
    r->req.wire_format = HR_WIRE_OPENAI_RESPONSES;
    json_array_foreach(items, i, it) {
        const char *type = json_string_value(json_object_get(it, "type"));
        json_t *o = json_object_get(it, "output");
        size_t tl = type ? strlen(type) : 0;
        if (tl < 7 || strcmp(type + tl - 7, "_output") || !json_is_string(o) || r->req.n_units == FH_MAX_UNITS)
            continue;
        struct hr_unit *u = &r->units[r->req.n_units];
        *u = (struct hr_unit){.struct_size = sizeof *u, .message_index = (uint32_t)i, .text = json_string_value(o),
                              .len = json_string_length(o), .type = HR_CT_UNKNOWN};
        u->tokens = fh_count_tokens("", u->text, u->len);
        r->target[r->req.n_units] = it;
        r->key[r->req.n_units] = "output";
        r->req.n_units++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hr_instance inst = {"rolling_window"};
    static void *states[4];
    static const char *const budgets[4] = {"16", "64", "256", "2048"};
    if (!states[0]) {
        fh_set_log_level(-1);
        for (int i = 0; i < 4; i++) {
            struct hr_conf conf;
            fh_conf(&conf, headroom_plugin.conf_keys, "max_tokens", budgets[i], NULL);
            if (headroom_plugin.init(fh_host(), &inst, &conf, &states[i]))
                abort();
        }
    }
    if (!size)
        return 0;
    /* The first byte picks the budget and the provider shape. */
    void *s = states[data[0] & 3];
    enum hr_provider p = data[0] & 4 ? HR_PROVIDER_ANTHROPIC : HR_PROVIDER_OPENAI;
    json_t *body = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    int responses = !json_object_get(body, "messages") && json_object_get(body, "input");
    const char *key = responses ? "input" : "messages";
    json_t *msgs = json_object_get(body, key);
    size_t nm = json_array_size(msgs), ns = n_system(msgs);
    const json_t *prev = json_object_get(body, "previous_response_id"), *conv = json_object_get(body, "conversation");
    char *was = responses && ((json_is_string(prev) && json_string_length(prev)) || (conv && !json_is_null(conv)))
                    ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    /* The anchor as rolling_window finds it, and the messages as sent. */
    json_t *anchor = NULL, *orig = json_deep_copy(msgs);
    struct hr_rw_turns t;
    if (hr_rw_turns_build(msgs, 1, &t))
        abort();
    if (t.anchor < t.n_msgs)
        anchor = json_deep_copy(json_array_get(msgs, t.anchor));
    hr_rw_turns_free(&t);
    struct fh_request r;
    fh_request_init(&r, body, p, "");
    if (responses)
        responses_units(&r, msgs);
    if (headroom_plugin.apply(s, &r.req) != HR_OK)
        abort();
    int anchor_dropped = strstr(r.tag, "first_user_dropped") != NULL;
    /* Later stages read every unit's text. */
    for (size_t i = 0; i < r.req.n_units; i++)
        if (!r.units[i].text || strlen(r.units[i].text) != r.units[i].len)
            abort();
    fh_request_free(&r);
    msgs = json_object_get(body, key);
    if (json_array_size(msgs) > nm || n_system(msgs) != ns)
        abort();
    if (anchor && !anchor_dropped && !contains(msgs, anchor))
        abort(); /* the task went without a word */
    if (json_is_array(msgs) && !results_answered(orig, msgs))
        abort(); /* an orphaned tool result */
    json_decref(anchor);
    json_decref(orig);
    if (was) { /* a continued conversation is sent as it came */
        char *now = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        if (!now || strcmp(was, now))
            abort();
        free(now);
        free(was);
    }
    fh_log_clear();
    json_decref(body);
    return 0;
}
