/* t/rolling_window_test.c — rolling_window: the model context table, nothing done when
 * a request fits, oldest tool outputs dropped first, then oldest whole turns (OpenAI
 * and Anthropic shapes) with the system prompt, the last two turns and tool call /
 * result pairs kept, honest token accounting, config errors, hostile input. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"
#include "../plugins/rolling_window/window.h"

extern const struct headroom_plugin headroom_plugin;

static struct hr_instance inst = {"rolling_window"};

static void *make_on(const struct hr_host *host, const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct hr_conf conf;
    void *s = NULL;
    fh_conf(&conf, headroom_plugin.conf_keys, k1, v1, k2, v2, NULL);
    return headroom_plugin.init(host, &inst, &conf, &s) ? NULL : s;
}

static void *make(const char *k1, const char *v1, const char *k2, const char *v2)
{
    return make_on(fh_host(), k1, v1, k2, v2);
}

static void drop(void *s)
{
    fh_drop_stats(s);
    headroom_plugin.fini(s);
}

/* A string of n bytes (n/4 fake tokens). */
static json_t *big(size_t n, char c)
{
    char *b = malloc(n + 1);
    memset(b, c, n);
    b[n] = '\0';
    json_t *s = json_string(b);
    free(b);
    return s;
}

/* The request total as the host counts it: every string (fake: ceil(bytes/4))
 * under system, tools and messages, plus 3 per message. */
static long long strings(const json_t *v)
{
    long long n = 0;
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_string(v))
        return (long long)fh_count_tokens("", json_string_value(v), json_string_length(v));
    if (json_is_array(v))
        json_array_foreach(v, i, x) n += strings(x);
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) n += strings(x);
    return n;
}

static long long host_count(const json_t *b)
{
    const json_t *m = json_object_get(b, "messages");
    return strings(json_object_get(b, "system")) + strings(json_object_get(b, "tools")) + strings(m) +
           3 * (long long)json_array_size(m);
}

struct result {
    char tag[512];
    long long saved, removed;
    int body_edited, rc;
};

static struct result run_on(void *s, json_t *body, enum hr_provider p)
{
    struct fh_request r;
    struct result out;
    fh_request_init(&r, body, p, "");
    out.rc = headroom_plugin.apply(s, &r.req);
    snprintf(out.tag, sizeof out.tag, "%s", r.tag);
    out.saved = r.tokens_saved;
    out.removed = r.tokens_removed;
    out.body_edited = r.req.body_edited;
    fh_request_free(&r);
    return out;
}

/* OpenAI agent conversation: system, then `turns` turns of
 * user / assistant tool call / tool result (`tool_bytes`) / assistant text. */
static json_t *openai_conv(const char *model, int turns, size_t tool_bytes)
{
    json_t *m = json_array();
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "system", "content", "You are a coding agent."));
    for (int t = 0; t < turns; t++) {
        char id[32], q[32];
        snprintf(id, sizeof id, "call_%d", t);
        snprintf(q, sizeof q, "question %d", t);
        json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", q));
        json_array_append_new(m, json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                           "tool_calls", "id", id, "type", "function", "function", "name", "grep",
                                           "arguments", "{}"));
        json_array_append_new(m, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", id, "content",
                                           big(tool_bytes, (char)('a' + t % 26))));
        json_array_append_new(m, json_pack("{s:s,s:s}", "role", "assistant", "content", "done"));
    }
    return json_pack("{s:s,s:o}", "model", model, "messages", m);
}

/* Anthropic: top-level system, turns of user text / assistant tool_use /
 * user tool_result / assistant text. */
static json_t *anthropic_conv(int turns, size_t tool_bytes)
{
    json_t *m = json_array();
    for (int t = 0; t < turns; t++) {
        char id[32], q[32];
        snprintf(id, sizeof id, "toolu_%d", t);
        snprintf(q, sizeof q, "question %d", t);
        json_array_append_new(m, json_pack("{s:s,s:[{s:s,s:s}]}", "role", "user", "content", "type", "text", "text", q));
        json_array_append_new(m, json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s,s:{}}]}", "role", "assistant", "content",
                                           "type", "text", "text", "looking", "type", "tool_use", "id", id, "name",
                                           "grep", "input"));
        json_array_append_new(m, json_pack("{s:s,s:[{s:s,s:s,s:o}]}", "role", "user", "content", "type",
                                           "tool_result", "tool_use_id", id, "content",
                                           big(tool_bytes, (char)('a' + t % 26))));
        json_array_append_new(m, json_pack("{s:s,s:s}", "role", "assistant", "content", "done"));
    }
    return json_pack("{s:s,s:s,s:o}", "model", "claude-sonnet-4-5", "system", "Be careful.", "messages", m);
}

/* Every tool result answers a call still present and every call is answered. */
static int pairs_intact(const json_t *body)
{
    const json_t *msgs = json_object_get(body, "messages");
    size_t i, j, k, l;
    json_t *m, *x, *m2, *y;
    json_array_foreach(msgs, i, m) {
        /* calls */
        json_t *calls = json_object_get(m, "tool_calls");
        json_array_foreach(calls, j, x) {
            const char *id = json_string_value(json_object_get(x, "id"));
            int found = 0;
            json_array_foreach(msgs, k, m2) {
                const char *tid = json_string_value(json_object_get(m2, "tool_call_id"));
                found |= tid && !strcmp(tid, id);
            }
            if (!found)
                return 0;
        }
        json_array_foreach(json_object_get(m, "content"), j, x) {
            const char *type = json_string_value(json_object_get(x, "type"));
            const char *id = NULL, *want = NULL;
            if (type && !strcmp(type, "tool_use"))
                id = json_string_value(json_object_get(x, "id")), want = "tool_result";
            else if (type && !strcmp(type, "tool_result"))
                id = json_string_value(json_object_get(x, "tool_use_id")), want = "tool_use";
            if (!id)
                continue;
            int found = 0;
            json_array_foreach(msgs, k, m2) {
                json_array_foreach(json_object_get(m2, "content"), l, y) {
                    const char *t2 = json_string_value(json_object_get(y, "type"));
                    const char *i2 = json_string_value(json_object_get(y, !strcmp(want, "tool_use") ? "id" : "tool_use_id"));
                    found |= t2 && i2 && !strcmp(t2, want) && !strcmp(i2, id);
                }
            }
            if (!found)
                return 0;
        }
        const char *tid = json_string_value(json_object_get(m, "tool_call_id"));
        if (tid) {
            int found = 0;
            json_array_foreach(msgs, k, m2) {
                json_array_foreach(json_object_get(m2, "tool_calls"), l, y) {
                    const char *cid = json_string_value(json_object_get(y, "id"));
                    found |= cid && !strcmp(cid, tid);
                }
            }
            if (!found)
                return 0;
        }
    }
    return 1;
}

static const char *content_of(const json_t *body, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(body, "messages"), i), "content"));
}

static const char *PH = "[older tool output dropped by headroom to fit the context window]";

int main(void)
{
    fh_set_log_level(HR_LOG_ERROR);

    /* Context table. */
    is_int(hr_rw_context_window("gpt-4o"), 128000, "gpt-4o");
    is_int(hr_rw_context_window("gpt-4o-mini-2024-07-18"), 128000, "gpt-4o-mini snapshot");
    is_int(hr_rw_context_window("openai/GPT-4o"), 128000, "router prefix and case ignored");
    is_int(hr_rw_context_window("gpt-4.1-mini"), 1047576, "gpt-4.1-mini");
    is_int(hr_rw_context_window("gpt-4"), 8192, "gpt-4");
    is_int(hr_rw_context_window("gpt-4-0613"), 8192, "gpt-4 snapshot");
    is_int(hr_rw_context_window("gpt-4-turbo-2024-04-09"), 128000, "gpt-4-turbo");
    is_int(hr_rw_context_window("o1-mini"), 128000, "o1-mini");
    is_int(hr_rw_context_window("o3"), 200000, "o3");
    is_int(hr_rw_context_window("o100x"), 0, "o1 does not swallow o100x");
    is_int(hr_rw_context_window("claude-sonnet-4-5-20250929"), 200000, "claude-*");
    is_int(hr_rw_context_window("llama3"), 0, "unknown model");
    is_int(hr_rw_context_window(""), 0, "empty model");
    is_int(hr_rw_context_window(NULL), 0, "no model");

    void *s = make(NULL, NULL, NULL, NULL);
    ok(s != NULL, "init with defaults");

    /* Fits: nothing done. */
    {
        json_t *b = openai_conv("gpt-4o", 6, 4000);
        char *before = json_dumps(b, JSON_COMPACT);
        struct result r = run_on(s, b, HR_PROVIDER_OPENAI);
        char *after = json_dumps(b, JSON_COMPACT);
        is_str(after, before, "request under the gpt-4o budget: body untouched");
        ok(r.tag[0] == '\0' && r.saved == 0 && !r.body_edited, "no tag, no saving, not edited");
        free(before), free(after);
        json_decref(b);
        /* Just over the byte bound but under in tokens: exact count says it fits. */
        void *s2 = make("max_tokens", "5000", NULL, NULL);
        b = openai_conv("gpt-4o", 2, 8000); /* ~4000 tokens, ~16000 bytes */
        before = json_dumps(b, JSON_COMPACT);
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        after = json_dumps(b, JSON_COMPACT);
        ok(host_count(b) <= 5000 && !strcmp(before, after) && r.tag[0] == '\0', "exact count under max_tokens: untouched");
        free(before), free(after);
        json_decref(b);
        drop(s2);
        /* Unknown model: left alone unless default_context is set. */
        b = openai_conv("my-local-llm", 10, 100000);
        r = run_on(s, b, HR_PROVIDER_OPENAI);
        ok(r.tag[0] == '\0' && json_array_size(json_object_get(b, "messages")) == 41, "unknown model: untouched");
        void *s3 = make("default_context", "200000", NULL, NULL);
        r = run_on(s3, b, HR_PROVIDER_OPENAI);
        ok(r.tag[0] != '\0' && host_count(b) <= 200000 - 8192, "default_context: fitted (%s, %lld)", r.tag, host_count(b));
        json_decref(b);
        drop(s3);
    }

    /* OpenAI: oldest tool outputs first. 8 turns, 4000-token outputs (~32.2k). */
    {
        void *s2 = make("max_tokens", "26000", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        long long before = host_count(b);
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        long long after = host_count(b);
        ok(before > 26000 && after <= 26000, "fits after: %lld -> %lld", before, after);
        is_int(r.saved, before - after, "tokens credited = recount difference");
        is_str(r.tag, "rolling_window:outputs=2,turns=0,messages=0", "tag");
        is_str(content_of(b, 3), PH, "oldest tool output replaced by the placeholder");
        is_str(content_of(b, 7), PH, "second oldest too");
        ok(json_string_length(json_object_get(json_array_get(json_object_get(b, "messages"), 11), "content")) == 16000,
           "third tool output kept");
        is_int(json_array_size(json_object_get(b, "messages")), 33, "no message removed");
        ok(!r.body_edited && r.removed == 0, "unit-level only: body structure not edited");
        json_decref(b);
        drop(s2);
    }

    /* OpenAI: outputs are not enough, so whole turns go. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        json_t *orig = json_deep_copy(b);
        long long before = host_count(b);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        long long after = host_count(b);
        ok(after <= 8200, "fits: %lld -> %lld (%s)", before, after, r.tag);
        is_int(r.saved, before - after, "tokens credited (units + stage_tokens_removed) = recount difference");
        ok(r.removed > 0 && r.body_edited, "whole-turn tokens reported through stage_tokens_removed (%lld)", r.removed);
        json_t *m = json_object_get(b, "messages");
        is_str(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system", "system message kept first");
        is_str(json_string_value(json_object_get(json_array_get(m, 1), "role")), "user", "then a user message");
        size_t n = json_array_size(m);
        json_t *om = json_object_get(orig, "messages");
        int last_two = n >= 9;
        for (size_t i = 0; i < 8 && last_two; i++)
            last_two = json_equal(json_array_get(m, n - 8 + i), json_array_get(om, json_array_size(om) - 8 + i));
        ok(last_two, "the last two turns are untouched");
        ok(pairs_intact(b), "tool calls and results kept together");
        ok(strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0"), "tag: %s", r.tag);
        ok(strstr(fh_log(), "INFO:headroom.transforms.rolling_window:request over its context budget") != NULL,
           "INFO log");
        json_t *st = fh_stats("rolling_window");
        ok(json_integer_value(json_object_get(st, "turns_dropped")) > 0 &&
               json_integer_value(json_object_get(st, "turn_tokens_removed")) == r.removed,
           "/stats block counts turns and their tokens");
        json_decref(st);
        /* Determinism. */
        json_t *b2 = json_deep_copy(orig);
        run_on(s2, b2, HR_PROVIDER_OPENAI);
        char *d1 = json_dumps(b, JSON_COMPACT), *d2 = json_dumps(b2, JSON_COMPACT);
        is_str(d2, d1, "same request, byte-identical result");
        free(d1), free(d2);
        json_decref(b2);
        json_decref(b);
        json_decref(orig);
        drop(s2);
    }

    /* Units in dropped messages are emptied and protected for later stages. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        struct fh_request r;
        fh_request_init(&r, b, HR_PROVIDER_OPENAI, "");
        headroom_plugin.apply(s2, &r.req);
        ok((r.units[0].flags & HR_UNIT_PROTECTED) && r.units[0].len == 0 && r.units[0].text && !*r.units[0].text,
           "unit of a dropped message: empty and protected");
        ok(!(r.units[7].flags & HR_UNIT_PROTECTED) && r.units[7].len == 16000, "unit of the last turn: as it was");
        fh_request_free(&r);
        json_decref(b);
        drop(s2);
    }

    /* drop_turns no: outputs only, and a WARN when it still does not fit. */
    {
        void *s2 = make("max_tokens", "8200", "drop_turns", "no");
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        is_int(json_array_size(json_object_get(b, "messages")), 33, "drop_turns no: no message removed");
        is_str(r.tag, "rolling_window:outputs=6,turns=0,messages=0,over_budget", "all but the last two turns' outputs");
        ok(strstr(fh_log(), "WARNING:headroom.transforms.rolling_window:request still over its context budget") != NULL,
           "WARN says it still does not fit and what to do");
        json_decref(b);
        drop(s2);
    }

    /* The last two turns stay even when they alone are over budget. */
    {
        void *s2 = make("max_tokens", "3000", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 4, 16000);
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        json_t *m = json_object_get(b, "messages");
        is_int(json_array_size(m), 9, "system + last two turns left");
        is_str(json_string_value(json_object_get(json_array_get(m, 0), "content")), "You are a coding agent.",
               "system prompt kept");
        is_str(content_of(b, 1), "question 2", "second-to-last turn kept");
        ok(json_string_length(json_object_get(json_array_get(m, 3), "content")) == 16000, "its tool output kept");
        ok(strstr(r.tag, "over_budget") != NULL, "tag says over budget: %s", r.tag);
        json_decref(b);
        drop(s2);
    }

    /* Protected units are never replaced. */
    {
        void *s2 = make("max_tokens", "26000", "drop_turns", "no");
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        struct fh_request r;
        fh_request_init(&r, b, HR_PROVIDER_OPENAI, "");
        r.units[0].flags |= HR_UNIT_PROTECTED;
        headroom_plugin.apply(s2, &r.req);
        ok(json_string_length(json_object_get(json_array_get(json_object_get(b, "messages"), 3), "content")) == 16000,
           "protected oldest output kept");
        is_str(content_of(b, 7), PH, "the next one dropped instead");
        fh_request_free(&r);
        json_decref(b);
        drop(s2);
    }

    /* A tool call answered in the next turn ties the two turns together. */
    {
        void *s2 = make("max_tokens", "3000", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 5, 16000);
        json_t *m = json_object_get(b, "messages");
        /* Move turn 2's tool result after turn 3's user message. */
        json_t *res = json_incref(json_array_get(m, 11));
        json_array_remove(m, 11);
        json_array_insert_new(m, 13, res);
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(pairs_intact(b), "pairs intact when a result lands in a later turn (%s)", r.tag);
        is_str(content_of(b, 1), "question 2", "turns 0 and 1 dropped; turn 2 kept with its answer in turn 3");
        json_decref(b);
        /* Tied to the last two turns: cannot be dropped at all. */
        b = openai_conv("gpt-4o", 4, 16000);
        m = json_object_get(b, "messages");
        res = json_incref(json_array_get(m, 3));
        json_array_remove(m, 3);
        json_array_append_new(m, res); /* turn 0's result at the very end */
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(pairs_intact(b) && json_array_size(json_object_get(b, "messages")) == 17,
           "call answered in the last turn: nothing removed (%s)", r.tag);
        json_decref(b);
        drop(s2);
    }

    /* Anthropic shape. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = anthropic_conv(8, 16000);
        json_t *orig = json_deep_copy(b);
        long long before = host_count(b);
        struct result r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        long long after = host_count(b);
        ok(after <= 8200, "anthropic fits: %lld -> %lld (%s)", before, after, r.tag);
        is_int(r.saved, before - after, "anthropic: tokens credited = recount difference");
        ok(json_equal(json_object_get(b, "system"), json_object_get(orig, "system")), "top-level system untouched");
        json_t *m = json_object_get(b, "messages");
        json_t *first = json_array_get(json_object_get(json_array_get(m, 0), "content"), 0);
        ok(!strcmp(json_string_value(json_object_get(json_array_get(m, 0), "role")), "user") &&
               !strcmp(json_string_value(json_object_get(first, "type")), "text"),
           "first message is a user text message");
        ok(pairs_intact(b), "tool_use / tool_result pairs intact");
        size_t n = json_array_size(m);
        json_t *om = json_object_get(orig, "messages");
        int last_two = 1;
        for (size_t i = 0; i < 8; i++)
            last_two &= json_equal(json_array_get(m, n - 8 + i), json_array_get(om, json_array_size(om) - 8 + i));
        ok(last_two, "last two turns untouched");
        json_decref(b);
        json_decref(orig);
        /* Outputs only: the tool_result content becomes the placeholder. */
        void *s3 = make("max_tokens", "30000", NULL, NULL);
        b = anthropic_conv(8, 16000);
        r = run_on(s3, b, HR_PROVIDER_ANTHROPIC);
        json_t *tr = json_array_get(json_object_get(json_array_get(json_object_get(b, "messages"), 2), "content"), 0);
        is_str(json_string_value(json_object_get(tr, "content")), PH, "tool_result content replaced");
        is_str(json_string_value(json_object_get(tr, "tool_use_id")), "toolu_0", "tool_use_id kept");
        is_str(r.tag, "rolling_window:outputs=1,turns=0,messages=0", "one output was enough");
        json_decref(b);
        drop(s3);
        /* A user message with a tool_result and new text continues the turn. */
        b = anthropic_conv(6, 16000);
        m = json_object_get(b, "messages");
        json_array_append_new(json_object_get(json_array_get(m, 6), "content"),
                              json_pack("{s:s,s:s}", "type", "text", "text", "and also"));
        r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        ok(pairs_intact(b), "mixed tool_result + text message: pairs intact (%s)", r.tag);
        json_decref(b);
        drop(s2);
    }

    /* reserve_output: at most half of a small window. gpt-4: 8192 - 4096. */
    {
        json_t *b = openai_conv("gpt-4-0613", 6, 4000);
        struct result r = run_on(s, b, HR_PROVIDER_OPENAI);
        ok(host_count(b) <= 4096 && r.tag[0], "gpt-4 with reserve 8192: budget 4096 (%lld, %s)", host_count(b), r.tag);
        json_decref(b);
        void *s2 = make("reserve_output", "1000", NULL, NULL);
        b = openai_conv("gpt-4", 8, 4000);
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(host_count(b) <= 7192 && host_count(b) > 4096, "reserve_output 1000: budget 7192 (%lld)", host_count(b));
        json_decref(b);
        drop(s2);
    }

    /* A host without stage_tokens_removed: turns still dropped, a WARN that totals undercount. */
    {
        struct hr_host old = *fh_host();
        old.struct_size = (uint32_t)offsetof(struct hr_host, stage_tokens_removed);
        void *s2 = make_on(&old, "max_tokens", "8200", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        long long before = host_count(b);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(host_count(b) <= 8200 && r.body_edited && r.removed == 0, "old host: fitted, body_edited, nothing claimed");
        ok(r.saved < before - host_count(b), "old host: credited %lld < real %lld (undercount)", r.saved,
           before - host_count(b));
        ok(strstr(fh_log(), "WARNING:headroom.transforms.rolling_window:this headroomd has no stage_tokens_removed()") != NULL,
           "WARN names the missing host function");
        json_decref(b);
        b = openai_conv("gpt-4o", 8, 16000);
        fh_log_clear();
        run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(!strstr(fh_log(), "no stage_tokens_removed"), "warned once");
        json_t *st = fh_stats("rolling_window");
        ok(json_integer_value(json_object_get(st, "tokens_uncounted")) > 0, "/stats tokens_uncounted");
        json_decref(st);
        json_decref(b);
        drop(s2);
    }

    /* Bad config. */
    {
        struct hr_conf conf;
        void *x = NULL;
        fh_set_log_level(-1);
        const char *bad[][2] = {{"max_tokens", "-1"}, {"reserve_output", "-5"}, {"default_context", "-1"},
                                {"placeholder", ""}, {"placeholder", "\xff\xfe"}};
        const char *says[] = {"max_tokens must be", "reserve_output must be", "default_context must be",
                              "placeholder must be 1..1024 bytes", "not UTF-8"};
        for (size_t i = 0; i < 5; i++) {
            fh_log_clear();
            fh_conf(&conf, headroom_plugin.conf_keys, bad[i][0], bad[i][1], NULL);
            is_int(headroom_plugin.init(fh_host(), &inst, &conf, &x), HR_EINVAL, "%s %s refused", bad[i][0], bad[i][1]);
            ok(strstr(fh_log(), says[i]) != NULL, "error says: %s", says[i]);
        }
        fh_set_log_level(HR_LOG_ERROR);
        void *s2 = make("placeholder", "[dropped]", "max_tokens", "26000");
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        run_on(s2, b, HR_PROVIDER_OPENAI);
        is_str(content_of(b, 3), "[dropped]", "custom placeholder");
        json_decref(b);
        drop(s2);
    }

    /* Hostile shapes: no crash, nothing invented. */
    {
        void *s2 = make("max_tokens", "10", NULL, NULL);
        const char *inputs[] = {
            "{\"model\":\"gpt-4o\"}",
            "{\"model\":\"gpt-4o\",\"messages\":{}}",
            "{\"model\":\"gpt-4o\",\"messages\":[1,\"x\",null,[],{}]}",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":7},{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
            "{\"role\":\"assistant\",\"tool_calls\":{\"id\":1}},{\"role\":\"tool\",\"tool_call_id\":5,\"content\":[1,2]},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]},{\"role\":\"user\",\"content\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbb\"},"
            "{\"role\":\"user\",\"content\":\"cccccccccccccccccccccccccccccccc\"},{\"role\":\"user\",\"content\":\"d\"}]}",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\"},{\"id\":\"a\"},{}]},"
            "{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"},"
            "{\"role\":\"user\",\"content\":\"q1\"},{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"y\"},"
            "{\"role\":\"user\",\"content\":\"q2\"},{\"role\":\"user\",\"content\":\"q3\"}]}",
        };
        for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
            json_t *b = json_loads(inputs[i], 0, NULL);
            struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
            is_int(r.rc, HR_OK, "hostile input %zu: ok (%s)", i, r.tag);
            json_decref(b);
        }
        /* Leading assistant message (turn 0 preamble) goes first; user turns stay in order. */
        json_t *b = json_loads(inputs[4], 0, NULL);
        run_on(s2, b, HR_PROVIDER_OPENAI);
        json_t *m = json_object_get(b, "messages");
        is_int(json_array_size(m), 2, "only the last two turns left");
        is_str(json_string_value(json_object_get(json_array_get(m, 0), "content")), "cccccccccccccccccccccccccccccccc",
               "in order");
        json_decref(b);
        b = json_loads(inputs[5], 0, NULL);
        run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(pairs_intact(b), "repeated call ids answered in two turns: pairs intact");
        json_decref(b);
        drop(s2);
    }

    drop(s);
    fh_reset();
    return tap_exit();
}
