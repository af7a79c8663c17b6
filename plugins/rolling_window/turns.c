/* turns.c — groups a request's messages (Chat, Anthropic) or input items
 * (Responses) into turns for `rolling_window` and finds which turns must go
 * together because a tool call and its result span them. */
#include <stdlib.h>
#include <string.h>
#include "window.h"

static const char *role_of(const json_t *m) { return json_string_value(json_object_get(m, "role")); }

/* Text an agent puts in a user message as context, not the user's words:
 * Codex's "# AGENTS.md instructions for DIR" (<INSTRUCTIONS>) and one block
 * wrapped in a tag, as <environment_context>, <user_instructions>,
 * <recommended_plugins> or Claude Code's <system-reminder> are. */
static int is_context_text(const char *s)
{
    if (!s)
        return 0;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    static const char agents_md[] = "# AGENTS.md instructions for ";
    if (!strncmp(s, agents_md, sizeof agents_md - 1))
        return 1;
    if (*s != '<')
        return 0;
    size_t tag = strspn(s + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    if (!tag || s[1 + tag] != '>')
        return 0;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    /* ends with "</" tag ">" */
    return n >= 2 * tag + 5 && s[n - 1] == '>' && !memcmp(s + n - 1 - tag, s + 1, tag) && s[n - 2 - tag] == '/' &&
           s[n - 3 - tag] == '<';
}

/* A user message made only of such context (Codex sends AGENTS.md and its
 * environment as user messages at the start of input): kept as a system
 * message is, or the oldest turns would take the agent's instructions with
 * them. A message with any words of the user's, or an image, is not. */
static int is_agent_context(const json_t *m)
{
    const char *r = role_of(m);
    const json_t *content = json_object_get(m, "content");
    if (!r || strcmp(r, "user"))
        return 0;
    if (json_is_string(content))
        return is_context_text(json_string_value(content));
    size_t i, n = 0;
    json_t *part;
    json_array_foreach(content, i, part) {
        if (!is_context_text(json_string_value(json_object_get(part, "text"))))
            return 0;
        n++;
    }
    return n > 0;
}

static int is_system(const json_t *m)
{
    const char *r = role_of(m);
    return (r && (!strcmp(r, "system") || !strcmp(r, "developer"))) || is_agent_context(m);
}

static int has_tool_result(const json_t *content)
{
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (type && !strcmp(type, "tool_result"))
            return 1;
    }
    return 0;
}

/* A user message with the user's own words; one that returns tool results
 * (Anthropic tool_result blocks) continues the turn of the call. Responses
 * items with a role are messages (their type is "message" or absent); tool
 * calls, their outputs and reasoning items have none, so they stay in the
 * turn of the user message before them. */
static int starts_turn(const json_t *m)
{
    const char *r = role_of(m);
    return r && !strcmp(r, "user") && !has_tool_result(json_object_get(m, "content"));
}

struct call {
    const char *id;
    size_t turn;
};

static int cmp_call(const void *a, const void *b)
{
    const struct call *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->turn > y->turn) - (x->turn < y->turn);
}

static int push(struct call **v, size_t *n, size_t *cap, const char *id, size_t turn)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct call *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -12;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = (struct call){id, turn};
    return 0;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !memcmp(s + n - t, tail, t);
}

/* A Responses item that makes a call (function_call, custom_tool_call,
 * local_shell_call, computer_call, shell_call, apply_patch_call, ...: a
 * call_id, a type not ending in "_output"; mcp_approval_request by its id)
 * when `calls`, or answers one (the "_output" items by call_id, or by id
 * when they carry no call_id as local_shell_call_output does;
 * mcp_approval_response by approval_request_id) otherwise. A call is
 * filed under its id too, so an answer naming either ties them. */
static int collect_item(const json_t *m, const char *type, int calls, size_t turn, struct call **v, size_t *n,
                        size_t *cap)
{
    const char *call_id = json_string_value(json_object_get(m, "call_id"));
    const char *id = json_string_value(json_object_get(m, "id"));
    int rc = 0;
    if (!strcmp(type, "mcp_approval_request"))
        return calls && id ? push(v, n, cap, id, turn) : 0;
    if (!strcmp(type, "mcp_approval_response")) {
        const char *req = json_string_value(json_object_get(m, "approval_request_id"));
        return !calls && req ? push(v, n, cap, req, turn) : 0;
    }
    if (ends_with(type, "_output")) {
        const char *answered = call_id ? call_id : id;
        return !calls && answered ? push(v, n, cap, answered, turn) : 0;
    }
    if (!calls || !call_id)
        return 0;
    if ((rc = push(v, n, cap, call_id, turn)))
        return rc;
    return id && strcmp(id, call_id) ? push(v, n, cap, id, turn) : 0;
}

/* Tool-call ids a message makes (OpenAI tool_calls[].id, Anthropic tool_use
 * blocks, Responses call items) when `calls`; ids it answers (tool_call_id,
 * tool_result.tool_use_id, Responses output items) otherwise. Appends to v;
 * returns -12 on no memory. */
static int collect(const json_t *m, int calls, size_t turn, struct call **v, size_t *n, size_t *cap)
{
    const json_t *openai_calls = json_object_get(m, "tool_calls");
    const char *answered = json_string_value(json_object_get(m, "tool_call_id"));
    const char *item_type = json_string_value(json_object_get(m, "type"));
    size_t i;
    json_t *x;
    int rc = 0;
    if (item_type && !json_object_get(m, "role"))
        return collect_item(m, item_type, calls, turn, v, n, cap);
    if (calls && json_is_array(openai_calls)) {
        json_array_foreach(openai_calls, i, x) {
            const char *id = json_string_value(json_object_get(x, "id"));
            if (id && (rc = push(v, n, cap, id, turn)))
                return rc;
        }
        return 0;
    }
    if (!calls && answered)
        return push(v, n, cap, answered, turn);
    json_array_foreach(json_object_get(m, "content"), i, x) {
        const char *type = json_string_value(json_object_get(x, "type"));
        const char *id = NULL;
        if (!type)
            continue;
        if (calls && (!strcmp(type, "tool_use") || !strcmp(type, "server_tool_use")))
            id = json_string_value(json_object_get(x, "id"));
        else if (!calls && !strcmp(type, "tool_result"))
            id = json_string_value(json_object_get(x, "tool_use_id"));
        if (id && (rc = push(v, n, cap, id, turn)))
            return rc;
    }
    return 0;
}

void hr_rw_turns_free(struct hr_rw_turns *t)
{
    free(t->turn_of);
    free(t->keep);
    free(t->reach);
    memset(t, 0, sizeof *t);
}

/* Whether m makes or answers a tool call: such a message cannot be kept
 * alone, or its partner could go without it (the provider refuses an
 * orphaned tool result). 1, 0, or -12 on no memory. */
static int has_calls(const json_t *m)
{
    struct call *v = NULL;
    size_t n = 0, cap = 0;
    int rc = collect(m, 1, 0, &v, &n, &cap);
    if (!rc)
        rc = collect(m, 0, 0, &v, &n, &cap);
    free(v);
    return rc ? rc : n > 0;
}

int hr_rw_turns_build(const json_t *messages, int anchor_first, struct hr_rw_turns *t)
{
    memset(t, 0, sizeof *t);
    size_t n = json_is_array(messages) ? json_array_size(messages) : 0;
    t->n_msgs = n;
    t->turn_of = calloc(n ? n : 1, sizeof *t->turn_of);
    t->keep = calloc(n ? n : 1, 1);
    t->reach = calloc(n ? n : 1, sizeof *t->reach);
    if (!t->turn_of || !t->keep || !t->reach) {
        hr_rw_turns_free(t);
        return -12;
    }
    size_t cur = 0;
    int seen = 0; /* the current turn has a removable message */
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(messages, i);
        if (is_system(m)) {
            t->keep[i] = 1;
        } else {
            if (starts_turn(m) && seen)
                cur++;
            seen = 1;
        }
        t->turn_of[i] = (int)cur;
    }
    t->n_turns = seen ? cur + 1 : 0;
    for (size_t k = 0; k < t->n_turns; k++)
        t->reach[k] = k;

    /* The first user message with the user's words is the task (Claude
     * Code's first message holds it beside its <system-reminder> blocks): it
     * stays while the turns after it go. One that returns tool results never
     * starts a turn, so it is never the anchor. */
    t->anchor = n;
    for (size_t i = 0; anchor_first && i < n; i++) {
        const json_t *m = json_array_get(messages, i);
        if (t->keep[i] || !starts_turn(m))
            continue;
        int calls = has_calls(m);
        if (calls < 0) {
            hr_rw_turns_free(t);
            return calls;
        }
        if (!calls) {
            t->anchor = i;
            t->keep[i] = 1;
        }
        break;
    }

    /* A call answered in another turn ties the turns between them together. */
    struct call *calls = NULL, *results = NULL;
    size_t nc = 0, cc = 0, nr = 0, cr = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const json_t *m = json_array_get(messages, i);
        if (t->keep[i] || !json_is_object(m))
            continue;
        rc = collect(m, 1, (size_t)t->turn_of[i], &calls, &nc, &cc);
        if (!rc)
            rc = collect(m, 0, (size_t)t->turn_of[i], &results, &nr, &cr);
    }
    if (!rc && nc && nr) {
        qsort(calls, nc, sizeof *calls, cmp_call);
        for (size_t i = 0; i < nr; i++) {
            /* Every call with that id (a repeated id is the client's bug; tie them all). */
            size_t lo = 0, hi = nc;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(calls[mid].id, results[i].id) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t j = lo; j < nc && !strcmp(calls[j].id, results[i].id); j++) {
                size_t a = calls[j].turn, b = results[i].turn;
                if (a > b) {
                    size_t s = a;
                    a = b;
                    b = s;
                }
                if (t->reach[a] < b)
                    t->reach[a] = b;
            }
        }
    }
    free(calls);
    free(results);
    if (rc) {
        hr_rw_turns_free(t);
        return rc;
    }
    return 0;
}

size_t hr_rw_group_end(const struct hr_rw_turns *t, size_t first)
{
    if (first >= t->n_turns)
        return t->n_turns;
    size_t end = t->reach[first];
    for (size_t k = first + 1; k <= end && k < t->n_turns; k++)
        if (t->reach[k] > end)
            end = t->reach[k];
    return end;
}
