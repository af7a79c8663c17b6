/* t/aligner_test.c — cache_aligner: tool sorting, schema key canonicalisation, volatile
 * values in the system prompt, per-session prefix change tracking (bounded), the
 * optional cache_control breakpoint, its register_metrics families, and concurrent
 * use, through t/fake_host.c. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"

extern const struct headroom_plugin headroom_plugin;

static struct hr_instance inst = {"cache_aligner"};

static void *make(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct hr_conf conf;
    void *s = NULL;
    fh_conf(&conf, headroom_plugin.conf_keys, k1, v1, k2, v2, NULL);
    if (headroom_plugin.init(fh_host(), &inst, &conf, &s))
        return NULL;
    return s;
}

static json_t *openai(const char *system, const char *tools_json)
{
    json_t *b = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "system",
                          "content", system, "role", "user", "content", "hi");
    json_object_set_new(b, "tools", json_loads(tools_json, 0, NULL));
    return b;
}

/* Apply once; returns the stage tag (static buffer). */
static const char *run(void *s, json_t *body, enum hr_provider p, const char *session, size_t floor)
{
    static _Thread_local char tag[512];
    struct fh_request r;
    fh_request_init(&r, body, p, "");
    r.req.session_id = session;
    r.req.protected_floor = floor;
    headroom_plugin.apply(s, &r.req);
    snprintf(tag, sizeof tag, "%s", r.tag);
    fh_request_free(&r);
    return tag;
}

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"search\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"query\":{\"type\":\"string\",\"description\":\"q\"},\"limit\":{\"type\":\"integer\"}},"
    "\"required\":[\"query\",\"limit\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"bash\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"cmd\":{\"type\":\"string\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"edit\",\"parameters\":{\"properties\":{},\"type\":\"object\"}}}]";

static json_int_t stat2(const char *a, const char *b)
{
    json_t *st = fh_stats("cache_aligner");
    json_t *v = json_object_get(st, a);
    if (b)
        v = json_object_get(v, b);
    json_int_t r = json_integer_value(v);
    json_decref(st);
    return r;
}

static json_int_t waste(const char *kind, const char *what)
{
    json_t *st = fh_stats("cache_aligner");
    json_int_t r = json_integer_value(json_object_get(json_object_get(json_object_get(st, "waste_signals"), kind), what));
    json_decref(st);
    return r;
}

/* One series of a register_metrics family, read through the fake host. */
struct mget {
    const char *family, *label;
    double value;
    int found;
    enum hr_metric_type type;
    const char *label_name;
};

static void mvisit(void *ud, const struct hr_metric_family *f, const struct hr_metric_sample *smp)
{
    struct mget *g = ud;
    if (strcmp(f->name, g->family) || f->n_labels != 1 || strcmp(smp->label_values[0], g->label))
        return;
    g->found++;
    g->value = smp->value;
    g->type = f->type;
    g->label_name = f->label_names[0];
}

static struct mget metric(const char *family, const char *label)
{
    struct mget g = {family, label, 0, 0, 0, NULL};
    fh_metrics(mvisit, &g);
    return g;
}

struct thr { void *s; int id; };

static void *worker(void *arg)
{
    struct thr *t = arg;
    char sid[32];
    for (int i = 0; i < 300; i++) {
        json_t *b = openai(i % 2 ? "static prompt" : "Today is 2025-01-31", TOOLS);
        snprintf(sid, sizeof sid, "s%d", (t->id * 7 + i) % 40);
        run(t->s, b, HR_PROVIDER_OPENAI, sid, (size_t)(i % 3));
        json_decref(b);
    }
    return NULL;
}

int main(void)
{
    fh_set_log_level(HR_LOG_WARN);
    void *s = make(NULL, NULL, NULL, NULL);
    ok(s != NULL, "init with defaults");

    json_t *b = openai("You are a coding agent.", TOOLS);
    json_t *orig = json_deep_copy(b);
    const char *tag = run(s, b, HR_PROVIDER_OPENAI, "", 0);
    ok(strstr(tag, "tools_sorted") && strstr(tag, "schema_keys="), "tag: %s", tag);
    json_t *tools = json_object_get(b, "tools");
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name")), "bash",
           "tools sorted: bash first");
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(tools, 2), "function"), "name")), "search",
           "tools sorted: search last");
    char *dump = json_dumps(json_array_get(tools, 2), JSON_COMPACT);
    is_str(dump, "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"parameters\":{\"properties\":{\"query\":"
                 "{\"description\":\"q\",\"type\":\"string\"},\"limit\":{\"type\":\"integer\"}},\"required\":[\"query\",\"limit\"],"
                 "\"type\":\"object\"}}}",
           "schema keys sorted recursively inside parameters; the properties' order and required's kept");
    free(dump);
    /* Same content as before, only the order differs. */
    json_t *ot = json_object_get(orig, "tools");
    int same = json_array_size(ot) == json_array_size(tools);
    for (size_t i = 0; i < json_array_size(ot); i++) {
        int found = 0;
        for (size_t j = 0; j < json_array_size(tools); j++)
            found |= json_equal(json_array_get(ot, i), json_array_get(tools, j));
        same &= found;
    }
    ok(same, "tool definitions unchanged in meaning");
    ok(json_equal(json_object_get(orig, "messages"), json_object_get(b, "messages")), "messages untouched");
    char *once = json_dumps(b, JSON_COMPACT);
    tag = run(s, b, HR_PROVIDER_OPENAI, "", 0);
    char *twice = json_dumps(b, JSON_COMPACT);
    is_str(twice, once, "second pass is a no-op (idempotent)");
    is_str(tag, "", "no tag when nothing happened");
    free(once);
    free(twice);
    json_decref(b);
    json_decref(orig);

    /* Deterministic whatever the client order. */
    {
        json_t *t1 = json_loads(TOOLS, 0, NULL);
        json_t *rev = json_array();
        for (size_t i = json_array_size(t1); i-- > 0;)
            json_array_append(rev, json_array_get(t1, i));
        char *revs = json_dumps(rev, 0);
        json_t *b1 = openai("x", TOOLS), *b2 = openai("x", revs);
        run(s, b1, HR_PROVIDER_OPENAI, "", 0);
        run(s, b2, HR_PROVIDER_OPENAI, "", 0);
        char *d1 = json_dumps(b1, JSON_COMPACT), *d2 = json_dumps(b2, JSON_COMPACT);
        is_str(d1, d2, "two client orders give byte-identical bodies");
        free(d1), free(d2), free(revs);
        json_decref(b1), json_decref(b2), json_decref(t1), json_decref(rev);
    }

    /* Anthropic tools with a client breakpoint keep their order. */
    {
        json_t *ab = json_loads("{\"model\":\"claude\",\"system\":\"s\",\"messages\":[],\"tools\":["
                                "{\"name\":\"zeta\",\"input_schema\":{\"type\":\"object\"}},"
                                "{\"name\":\"alpha\",\"input_schema\":{\"type\":\"object\"},\"cache_control\":{\"type\":\"ephemeral\"}}]}",
                                0, NULL);
        run(s, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        is_str(json_string_value(json_object_get(json_array_get(json_object_get(ab, "tools"), 0), "name")), "zeta",
               "tools with cache_control keep the client order");
        json_decref(ab);
        ab = json_loads("{\"model\":\"claude\",\"messages\":[],\"tools\":[{\"name\":\"zeta\",\"input_schema\":"
                        "{\"type\":\"object\",\"properties\":{\"b\":{},\"a\":{}}}},{\"name\":\"alpha\",\"input_schema\":{}}]}",
                        0, NULL);
        run(s, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        char *d = json_dumps(json_object_get(ab, "tools"), JSON_COMPACT);
        is_str(d, "[{\"name\":\"alpha\",\"input_schema\":{}},{\"name\":\"zeta\",\"input_schema\":{\"properties\":{\"b\":{},\"a\":{}},"
                  "\"type\":\"object\"}}]",
               "anthropic tools sorted by name, input_schema keys sorted, its properties in the client's order; tool "
               "object keys untouched");
        free(d);
        json_decref(ab);
        /* A strict tool asks for its reasoning before its answer: the model
         * writes the arguments in the properties' order, so it stays. A
         * property named "properties" is a name too, and the schemas under
         * the names are made canonical. */
        ab = json_loads("{\"model\":\"gpt-4o\",\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{"
                        "\"name\":\"answer\",\"strict\":true,\"parameters\":{\"type\":\"object\",\"properties\":{"
                        "\"reasoning\":{\"type\":\"string\"},\"final_answer\":{\"type\":\"string\"},\"properties\":{"
                        "\"type\":\"object\",\"properties\":{\"z\":{\"type\":\"string\"},\"y\":{\"type\":\"string\",\"description\":\"d\"}}}},"
                        "\"required\":[\"reasoning\",\"final_answer\",\"properties\"],\"additionalProperties\":false}}}]}",
                        0, NULL);
        run(s, ab, HR_PROVIDER_OPENAI, "", 0);
        d = json_dumps(json_object_get(json_object_get(json_array_get(json_object_get(ab, "tools"), 0), "function"),
                                       "parameters"), JSON_COMPACT);
        is_str(d, "{\"additionalProperties\":false,\"properties\":{\"reasoning\":{\"type\":\"string\"},\"final_answer\":"
                  "{\"type\":\"string\"},\"properties\":{\"properties\":{\"z\":{\"type\":\"string\"},\"y\":{\"description\":"
                  "\"d\",\"type\":\"string\"}},\"type\":\"object\"}},\"required\":[\"reasoning\",\"final_answer\","
                  "\"properties\"],\"type\":\"object\"}",
               "strict tool: reasoning stays before final_answer, nested properties keep their order, keywords sorted");
        free(d);
        json_decref(ab);
        /* Objects inside arrays (anyOf, items), at every depth; values kept. */
        ab = json_loads("{\"model\":\"claude\",\"messages\":[],\"tools\":[{\"name\":\"t\",\"input_schema\":"
                        "{\"type\":\"object\",\"properties\":{\"x\":{\"anyOf\":[{\"type\":\"string\",\"description\":\"d\"},"
                        "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0}}]}}}}]}",
                        0, NULL);
        run(s, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        d = json_dumps(json_object_get(ab, "tools"), JSON_COMPACT);
        is_str(d, "[{\"name\":\"t\",\"input_schema\":{\"properties\":{\"x\":{\"anyOf\":[{\"description\":\"d\",\"type\":"
                  "\"string\"},{\"items\":{\"minimum\":0,\"type\":\"integer\"},\"type\":\"array\"}]}},\"type\":\"object\"}}]",
               "schema objects inside arrays sorted too, at every depth");
        free(d);
        json_decref(ab);
    }

    /* Volatile values. */
    {
        json_int_t d0 = waste("dynamic_date", "requests"), v0 = waste("volatile", "requests");
        json_t *vb = openai("You are helpful. Current date: 2025-01-31. Be brief and accurate in answers.", "[]");
        tag = run(s, vb, HR_PROVIDER_OPENAI, "", 0);
        ok(strstr(tag, "dynamic_date=") != NULL, "ISO date reported: %s", tag);
        is_int(waste("dynamic_date", "requests"), d0 + 1, "dynamic_date request counted");
        ok(waste("dynamic_date", "tokens") >= 10, "dynamic_date tokens from the date to the end (%lld)",
           (long long)waste("dynamic_date", "tokens"));
        json_decref(vb);
        /* The same prompt again (an agent's every turn) is answered from the
         * memo: the same tag and the same tokens added each time, and a
         * prompt differing in one digit is scanned afresh. */
        {
            const char *p1 = "Be brief. Today's date is 2026-12-05. Answer in English, cite files by path.";
            char tags[3][512];
            json_int_t added[3];
            for (int k = 0; k < 3; k++) {
                json_int_t t0 = waste("dynamic_date", "tokens");
                vb = openai(p1, "[]");
                snprintf(tags[k], sizeof tags[k], "%s", run(s, vb, HR_PROVIDER_OPENAI, "", 0));
                json_decref(vb);
                added[k] = waste("dynamic_date", "tokens") - t0;
            }
            ok(added[0] > 0 && added[1] == added[0] && added[2] == added[0] && !strcmp(tags[0], tags[1]) &&
                   !strcmp(tags[0], tags[2]),
               "the same prompt three times: %s, +%lld tokens each time", tags[0], (long long)added[0]);
            vb = openai("Be brief. Answer in English, cite files by path. Today's date is 2026-12-05.", "[]");
            json_int_t t0 = waste("dynamic_date", "tokens");
            run(s, vb, HR_PROVIDER_OPENAI, "", 0);
            json_decref(vb);
            ok(waste("dynamic_date", "tokens") - t0 < added[0],
               "the date moved to the end: fewer tokens from it to the end (%lld < %lld)",
               (long long)(waste("dynamic_date", "tokens") - t0), (long long)added[0]);
        }
        const char *dated[] = {"It is 14:05 now.", "Today is Monday.", "as of January 5, 2025", "t=1718000000 s",
                               "date 31/01/2025"};
        for (size_t i = 0; i < sizeof dated / sizeof *dated; i++) {
            vb = openai(dated[i], "[]");
            ok(strstr(run(s, vb, HR_PROVIDER_OPENAI, "", 0), "dynamic_date") != NULL, "date found in \"%s\"", dated[i]);
            json_decref(vb);
        }
        const char *ids[] = {"request 3f2a9c1e-7b4d-4e2a-9f1c-0a1b2c3d4e5f here", "trace req_01HZX3K9QWERTY7788 ok"};
        for (size_t i = 0; i < 2; i++) {
            vb = openai(ids[i], "[]");
            ok(strstr(run(s, vb, HR_PROVIDER_OPENAI, "", 0), "volatile=") != NULL, "id found in \"%s\"", ids[i]);
            json_decref(vb);
        }
        is_int(waste("volatile", "requests"), v0 + 2, "volatile requests counted");
        const char *clean[] = {"You are a helpful assistant. Use API version 2 and port 8080.",
                               "Follow PEP 8. Ratio 3:2 is fine? no: use 1.5x", "internationalization_settings"};
        for (size_t i = 0; i < sizeof clean / sizeof *clean; i++) {
            vb = openai(clean[i], "[]");
            is_str(run(s, vb, HR_PROVIDER_OPENAI, "", 0), "", "nothing volatile in \"%s\"", clean[i]);
            json_decref(vb);
        }
        /* Anthropic system blocks. */
        vb = json_loads("{\"model\":\"c\",\"system\":[{\"type\":\"text\",\"text\":\"static\"},"
                        "{\"type\":\"text\",\"text\":\"now: 2025-02-01\"}],\"messages\":[]}", 0, NULL);
        ok(strstr(run(s, vb, HR_PROVIDER_ANTHROPIC, "", 0), "dynamic_date") != NULL, "date in an Anthropic system block");
        json_decref(vb);
    }

    /* Prefix tracking. */
    {
        fh_log_clear();
        json_int_t c0 = stat2("prefix_changes", NULL);
        json_t *pb = openai("stable", TOOLS);
        json_array_append_new(json_object_get(pb, "messages"), json_pack("{s:s,s:s}", "role", "assistant", "content", "a1"));
        run(s, pb, HR_PROVIDER_OPENAI, "sess-A", 2);
        run(s, pb, HR_PROVIDER_OPENAI, "sess-A", 3);
        is_int(stat2("prefix_changes", NULL), c0, "same prefix (growing floor): no change");
        json_array_append_new(json_object_get(pb, "tools"),
                              json_loads("{\"type\":\"function\",\"function\":{\"name\":\"new\"}}", 0, NULL));
        tag = run(s, pb, HR_PROVIDER_OPENAI, "sess-A", 3);
        is_int(stat2("prefix_changes", NULL), c0 + 1, "a new tool is a prefix change");
        ok(strstr(tag, "prefix_changed") != NULL, "tag says prefix_changed");
        ok(strstr(fh_log(), "INFO:headroom.transforms.cache_aligner:stable prefix changed for session sess-A: tools") != NULL,
           "INFO log names session and part");
        run(s, pb, HR_PROVIDER_OPENAI, "sess-A", 3);
        is_int(stat2("prefix_changes", NULL), c0 + 1, "reported once per change");
        json_object_set_new(json_array_get(json_object_get(pb, "messages"), 1), "content", json_string("edited"));
        run(s, pb, HR_PROVIDER_OPENAI, "sess-A", 3);
        is_int(stat2("prefix_changes_by_part", "messages"), 1, "an edited protected message is a change");
        run(s, pb, HR_PROVIDER_OPENAI, "sess-B", 3);
        is_int(stat2("prefix_changes", NULL), c0 + 2, "a new session is not a change");
        json_decref(pb);
        /* An Anthropic session whose system prompt changes. */
        json_t *ab = json_loads("{\"model\":\"claude\",\"system\":\"v1\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                                0, NULL);
        run(s, ab, HR_PROVIDER_ANTHROPIC, "sess-C", 0);
        json_object_set_new(ab, "system", json_string("v2"));
        run(s, ab, HR_PROVIDER_ANTHROPIC, "sess-C", 0);
        json_decref(ab);
        is_int(stat2("prefix_changes", NULL), c0 + 3, "anthropic system change counted");
        /* Claude Code moves its breakpoint to the newest message every turn. */
        json_t *t1 = json_loads("{\"model\":\"claude\",\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":"
                                "[{\"type\":\"text\",\"text\":\"q\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
                                0, NULL);
        json_t *t2 = json_loads("{\"model\":\"claude\",\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":"
                                "[{\"type\":\"text\",\"text\":\"q\"}]},{\"role\":\"assistant\",\"content\":\"a\"},"
                                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q2\",\"cache_control\":"
                                "{\"type\":\"ephemeral\"}}]}]}",
                                0, NULL);
        run(s, t1, HR_PROVIDER_ANTHROPIC, "sess-D", 1);
        run(s, t2, HR_PROVIDER_ANTHROPIC, "sess-D", 3);
        is_int(stat2("prefix_changes", NULL), c0 + 3, "a breakpoint moved to the newest message is not a prefix change");
        json_t *first = json_array_get(json_object_get(json_array_get(json_object_get(t2, "messages"), 0), "content"), 0);
        json_object_set_new(first, "text", json_string("q edited"));
        run(s, t2, HR_PROVIDER_ANTHROPIC, "sess-D", 3);
        is_int(stat2("prefix_changes", NULL), c0 + 4, "but an edited text under it still is");
        json_decref(t1);
        json_decref(t2);
    }

    /* register_metrics: the waste-signal and cache-bust families. */
    {
        struct mget d = metric("headroom_waste_signal_tokens_total", "dynamic_date");
        struct mget v = metric("headroom_waste_signal_tokens_total", "volatile");
        is_int(d.found, 1, "waste_signal{signal=dynamic_date} published once");
        ok(d.type == HR_METRIC_COUNTER && d.label_name && !strcmp(d.label_name, "signal"),
           "waste_signal is a counter labelled signal");
        is_int((long long)d.value, waste("dynamic_date", "tokens"), "dynamic_date metric = /stats tokens (%.0f)", d.value);
        ok(d.value > 0, "dynamic_date tokens counted");
        is_int(v.found, 1, "waste_signal{signal=volatile} published once");
        is_int((long long)v.value, waste("volatile", "tokens"), "volatile metric = /stats tokens (%.0f)", v.value);
        struct mget bo = metric("headroom_cache_bust_total", "openai");
        struct mget ba = metric("headroom_cache_bust_total", "anthropic");
        ok(bo.found == 1 && ba.found == 1, "cache_bust published for openai and anthropic");
        ok(bo.type == HR_METRIC_COUNTER && bo.label_name && !strcmp(bo.label_name, "provider"),
           "cache_bust is a counter labelled provider");
        is_int((long long)bo.value, 2, "openai prefix changes: a tool added, a protected message edited");
        is_int((long long)ba.value, 2, "anthropic prefix changes: two");
        is_int((long long)(bo.value + ba.value), stat2("prefix_changes", NULL), "per-provider busts sum to prefix_changes");
        is_int(stat2("prefix_changes_by_provider", "anthropic"), 2, "/stats prefix_changes_by_provider.anthropic");
    }
    /* add_cache_control. */
    {
        void *s2 = make("add_cache_control", "yes", "max_sessions", "2");
        json_t *ab = json_loads("{\"model\":\"c\",\"system\":\"be nice\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, NULL);
        ok(strstr(run(s2, ab, HR_PROVIDER_ANTHROPIC, "", 0), "cache_control") != NULL, "breakpoint added");
        char *d = json_dumps(json_object_get(ab, "system"), JSON_COMPACT);
        is_str(d, "[{\"type\":\"text\",\"text\":\"be nice\",\"cache_control\":{\"type\":\"ephemeral\"}}]",
               "string system becomes one text block with the breakpoint");
        free(d);
        run(s2, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        d = json_dumps(json_object_get(ab, "system"), JSON_COMPACT);
        ok(strstr(d, "cache_control") && !strstr(strstr(d, "cache_control") + 1, "cache_control"),
           "second pass: still one breakpoint");
        free(d);
        json_decref(ab);
        ab = json_loads("{\"model\":\"c\",\"tools\":[{\"name\":\"b\"},{\"name\":\"a\"}],\"messages\":[]}", 0, NULL);
        run(s2, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        ok(json_object_get(json_array_get(json_object_get(ab, "tools"), 1), "cache_control") &&
               !json_object_get(json_array_get(json_object_get(ab, "tools"), 0), "cache_control"),
           "no system: breakpoint on the last tool (after sorting)");
        json_decref(ab);
        ab = json_loads("{\"model\":\"c\",\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"x\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}", 0, NULL);
        run(s2, ab, HR_PROVIDER_ANTHROPIC, "", 0);
        ok(json_is_string(json_object_get(ab, "system")), "client breakpoint present: nothing added");
        json_decref(ab);
        ab = openai("sys", "[]");
        run(s2, ab, HR_PROVIDER_OPENAI, "", 0);
        d = json_dumps(ab, 0);
        ok(d && !strstr(d, "cache_control"), "OpenAI request: nothing added");
        free(d);
        json_decref(ab);
        /* Bounded session table. */
        json_t *pb = openai("p", "[]");
        run(s2, pb, HR_PROVIDER_OPENAI, "x1", 0);
        run(s2, pb, HR_PROVIDER_OPENAI, "x2", 0);
        run(s2, pb, HR_PROVIDER_OPENAI, "x1", 0);
        run(s2, pb, HR_PROVIDER_OPENAI, "x3", 0);
        is_int(stat2("sessions", NULL), 2, "session table capped at max_sessions");
        is_int(stat2("sessions_evicted", NULL), 1, "least recently used session evicted");
        json_decref(pb);
        fh_drop_stats(s2);
        headroom_plugin.fini(s2);
    }
    /* Metrics only for what is switched on; a host without register_metrics still works. */
    {
        void *s5 = make("detect_volatile", "no", "track_prefix", "no");
        ok(s5 != NULL, "init with detection and tracking off");
        is_int(metric("headroom_waste_signal_tokens_total", "dynamic_date").found, 1,
               "detect_volatile no + track_prefix no: no families registered");
        fh_drop_stats(s5);
        headroom_plugin.fini(s5);
        struct hr_host old = *fh_host();
        old.struct_size = (uint32_t)offsetof(struct hr_host, register_metrics);
        struct hr_conf conf;
        void *s6 = NULL;
        fh_conf(&conf, headroom_plugin.conf_keys, NULL);
        is_int(headroom_plugin.init(&old, &inst, &conf, &s6), HR_OK, "host without register_metrics: init works");
        is_int(metric("headroom_cache_bust_total", "openai").found, 1, "and registers no metrics");
        json_t *vb = openai("Today is 2025-01-31", "[]");
        ok(strstr(run(s6, vb, HR_PROVIDER_OPENAI, "", 0), "dynamic_date") != NULL, "and still detects");
        json_decref(vb);
        fh_drop_stats(s6);
        headroom_plugin.fini(s6);
    }
    /* sort_tools no. */
    {
        void *s3 = make("sort_tools", "no", "canonical_schemas", "no");
        json_t *b3 = openai("x", TOOLS);
        char *before = json_dumps(b3, JSON_COMPACT);
        run(s3, b3, HR_PROVIDER_OPENAI, "", 0);
        char *after = json_dumps(b3, JSON_COMPACT);
        is_str(after, before, "sort_tools no + canonical_schemas no: body untouched");
        free(before), free(after);
        json_decref(b3);
        fh_drop_stats(s3);
        headroom_plugin.fini(s3);
    }
    /* Concurrent apply on one state. */
    {
        pthread_t th[4];
        struct thr a[4];
        for (int i = 0; i < 4; i++) {
            a[i] = (struct thr){s, i};
            pthread_create(&th[i], NULL, worker, &a[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        ok(stat2("sessions", NULL) >= 40, "concurrent apply: sessions tracked (%lld)", (long long)stat2("sessions", NULL));
    }
    {
        struct hr_conf bad;
        void *s4 = NULL;
        fh_set_log_level(-1);
        fh_log_clear(); /* the concurrent run filled the capture with INFO lines */
        fh_conf(&bad, headroom_plugin.conf_keys, "max_sessions", "0", NULL);
        is_int(headroom_plugin.init(fh_host(), &inst, &bad, &s4), HR_EINVAL, "max_sessions 0 refused");
        ok(strstr(fh_log(), "max_sessions must be 1..10000000 (got 0)") != NULL, "error names the key and range");
    }
    headroom_plugin.fini(s);
    fh_reset();
    return tap_exit();
}
