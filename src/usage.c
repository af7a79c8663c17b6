/* usage.c — extracts provider-reported token usage (incl. prompt-cache reads,
 * writes and Anthropic TTL buckets) from response bodies and stream events. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strnlen */
#endif
#include "usage.h"

#include <string.h>

/* Reads a token count; 0 when absent or not a sane count, so one bad field
 * never spoils the rest of the object. */
static int get_count(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i > HR_USAGE_MAX_TOKENS)
            return 0;
        *out = (uint64_t)i;
        return 1;
    }
    if (json_is_real(v)) {
        /* Some OpenAI-compatible servers print counts as 12.0. */
        double d = json_real_value(v);
        if (!(d >= 0.0 && d <= (double)HR_USAGE_MAX_TOKENS) || (double)(uint64_t)d != d)
            return 0;
        *out = (uint64_t)d;
        return 1;
    }
    return 0;
}

static void set_model(struct hr_usage *u, const json_t *obj)
{
    const json_t *m = json_object_get(obj, "model");
    const char *s;
    size_t n;

    if (!json_is_string(m))
        return;
    s = json_string_value(m);
    n = strnlen(s, sizeof(u->model) - 1);
    /* Truncate on a character boundary so the name stays valid UTF-8. */
    if (s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    if (n == 0)
        return;
    memcpy(u->model, s, n);
    u->model[n] = '\0';
}

static int str_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

/* ---------------------------------------------------------------- OpenAI */

static void openai_usage(struct hr_usage *u, const json_t *usage)
{
    uint64_t prompt = 0, cached = 0, completion = 0;
    int have_prompt, have_cached;

    if (!json_is_object(usage))
        return;
    u->seen = 1;
    have_prompt = get_count(usage, "prompt_tokens", &prompt);
    have_cached = get_count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens",
                            &cached);
    /* prompt_tokens includes the cached part; more cached than prompt is
     * nonsense, so trust the total and drop the breakdown. */
    if (have_prompt && have_cached && cached > prompt)
        have_cached = 0;
    if (have_cached)
        u->cache_read_tokens = cached;
    if (have_prompt)
        u->input_tokens = prompt - (have_cached ? cached : 0);
    if (get_count(usage, "completion_tokens", &completion))
        u->output_tokens = completion;
}

static void openai_json(const json_t *body, struct hr_usage *u)
{
    set_model(u, body);
    openai_usage(u, json_object_get(body, "usage"));
}

/* True when the chunk has a `"usage": {` — with include_usage every chunk
 * carries `"usage":null` and only the last one an object, so this spares a
 * JSON parse per streamed token. A `"usage"` inside a string value cannot
 * match: its quotes would be escaped. */
static int has_usage_object(const char *d, size_t n)
{
    static const char key[] = "\"usage\"";
    const char *end = d + n, *q;

    while ((q = memmem(d, (size_t)(end - d), key, sizeof(key) - 1)) != NULL) {
        q += sizeof(key) - 1;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
                q++;
            if (q < end && *q == '{')
                return 1;
        }
        d = q;
    }
    return 0;
}

static void openai_sse(const char *data, size_t len, struct hr_usage *u)
{
    int want_model, want_usage;
    json_t *root;
    size_t i = 0;

    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (i == len || data[i] != '{')
        return; /* "[DONE]" and anything else that is not a chunk object */
    want_model = u->model[0] == '\0' && memmem(data, len, "\"model\"", 7) != NULL;
    want_usage = has_usage_object(data, len);
    if (!want_model && !want_usage)
        return;
    root = json_loadb(data, len, 0, NULL);
    if (json_is_object(root)) {
        if (want_model)
            set_model(u, root);
        if (want_usage)
            openai_usage(u, json_object_get(root, "usage"));
    }
    json_decref(root);
}

/* ------------------------------------------------------------- Anthropic */

/* `delta`: a message_delta, where the counts other than output_tokens are
 * only taken when non-zero (older API versions send nothing or zeros there;
 * message_start already gave the real values). */
static void anthropic_usage(struct hr_usage *u, const json_t *usage, int delta)
{
    const json_t *cc;
    uint64_t v;
    int have_write = 0, have_breakdown = 0;

    if (!json_is_object(usage))
        return;
    u->seen = 1;
    if (get_count(usage, "input_tokens", &v) && (v || !delta))
        u->input_tokens = v;
    if (get_count(usage, "output_tokens", &v)) /* cumulative: the latest wins */
        u->output_tokens = v;
    if (get_count(usage, "cache_read_input_tokens", &v) && (v || !delta))
        u->cache_read_tokens = v;
    if (get_count(usage, "cache_creation_input_tokens", &v) && (v || !delta)) {
        u->cache_write_tokens = v;
        have_write = 1;
    }
    cc = json_object_get(usage, "cache_creation");
    if (json_is_object(cc)) {
        if (get_count(cc, "ephemeral_5m_input_tokens", &v)) {
            have_breakdown = 1;
            if (v || !delta)
                u->cache_write_5m_tokens = v;
        }
        if (get_count(cc, "ephemeral_1h_input_tokens", &v)) {
            have_breakdown = 1;
            if (v || !delta)
                u->cache_write_1h_tokens = v;
        }
    }
    if (have_write && !have_breakdown) {
        /* No per-TTL breakdown (older API versions, or a delta that only
         * repeats the total): writes use the default TTL, which is 5 minutes.
         * Keep any 1h part an earlier event reported so the buckets still
         * add up to the total. */
        if (u->cache_write_1h_tokens <= u->cache_write_tokens) {
            u->cache_write_5m_tokens = u->cache_write_tokens - u->cache_write_1h_tokens;
        } else {
            u->cache_write_5m_tokens = u->cache_write_tokens;
            u->cache_write_1h_tokens = 0;
        }
    }
}

static void anthropic_json(const json_t *body, struct hr_usage *u)
{
    set_model(u, body);
    anthropic_usage(u, json_object_get(body, "usage"), 0);
}

static void anthropic_sse(const char *event, size_t event_len, const char *data, size_t len,
                          struct hr_usage *u)
{
    const json_t *type, *msg;
    json_t *root;
    int start;

    /* Only message_start and message_delta carry usage; the stream is
     * mostly content_block_delta, which must not cost a JSON parse. A
     * stream without event names (proxies that drop them) falls back to
     * the "type" member. */
    if (str_is(event, event_len, "message_start") || str_is(event, event_len, "message_delta")) {
        /* parse below */
    } else if (str_is(event, event_len, "message")) {
        if (!memmem(data, len, "\"message_start\"", 15) && !memmem(data, len, "\"message_delta\"", 15))
            return;
    } else {
        return;
    }
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root))
        goto out;
    type = json_object_get(root, "type");
    if (json_is_string(type))
        start = strcmp(json_string_value(type), "message_start") == 0;
    else
        start = str_is(event, event_len, "message_start");
    if (start) {
        msg = json_object_get(root, "message");
        set_model(u, msg);
        anthropic_usage(u, json_object_get(msg, "usage"), 0);
    } else if (!json_is_string(type) || strcmp(json_string_value(type), "message_delta") == 0) {
        anthropic_usage(u, json_object_get(root, "usage"), 1);
    }
out:
    json_decref(root);
}

/* ---------------------------------------------------------------- public */

static enum hr_provider guess_provider(const json_t *usage)
{
    if (json_object_get(usage, "prompt_tokens") || json_object_get(usage, "completion_tokens"))
        return HR_PROVIDER_OPENAI;
    if (json_object_get(usage, "input_tokens") || json_object_get(usage, "output_tokens"))
        return HR_PROVIDER_ANTHROPIC;
    return HR_PROVIDER_UNKNOWN;
}

void hr_usage_from_json(enum hr_provider p, const json_t *body, struct hr_usage *u)
{
    if (!json_is_object(body) || !u)
        return;
    if (p == HR_PROVIDER_UNKNOWN)
        p = guess_provider(json_object_get(body, "usage"));
    if (p == HR_PROVIDER_OPENAI)
        openai_json(body, u);
    else if (p == HR_PROVIDER_ANTHROPIC)
        anthropic_json(body, u);
}

void hr_usage_from_sse(enum hr_provider p, const char *event, size_t event_len,
                       const char *data, size_t data_len, struct hr_usage *u)
{
    if (!u || !data || !data_len)
        return;
    if (!event) {
        event = "message";
        event_len = 7;
    }
    if (p == HR_PROVIDER_UNKNOWN)
        p = (str_is(event, event_len, "message_start") || str_is(event, event_len, "message_delta"))
                ? HR_PROVIDER_ANTHROPIC : HR_PROVIDER_OPENAI;
    if (p == HR_PROVIDER_OPENAI)
        openai_sse(data, data_len, u);
    else if (p == HR_PROVIDER_ANTHROPIC)
        anthropic_sse(event, event_len, data, data_len, u);
}
