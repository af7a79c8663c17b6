/* api_common.c — small helpers the wire-format adapters share: sane token
 * counts, the reported model, OpenAI's error shape, SSE framing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "json_get.h"
#include "json_load.h"
#include "json_pool.h"
#include "json_scan.h"

/* A token count; 0 when absent or not a sane count, so one bad field never
 * spoils the rest of the object. */
int hr_api_get_count(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = hr_json_get(obj, key);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i > HR_USAGE_MAX_TOKENS) return 0;
        *out = (uint64_t)i;
        return 1;
    }
    if (json_is_real(v)) {
        /* Some OpenAI-compatible servers print counts as 12.0. */
        double d = json_real_value(v);
        if (!(d >= 0.0 && d <= (double)HR_USAGE_MAX_TOKENS) || (double)(uint64_t)d != d) return 0;
        *out = (uint64_t)d;
        return 1;
    }
    return 0;
}

#define PICK_MAX 4

json_t *hr_api_pick_members(const char *text, size_t len, const char *const *keys, size_t n)
{
    const char *vals[PICK_MAX];
    size_t vlens[PICK_MAX];
    if (n > PICK_MAX) return NULL;
    hr_json_members(text, len, keys, n, vals, vlens);
    int pooled = hr_json_pool_begin(); /* freed with the request: json_pool.c */
    json_t *picked = json_object();
    for (size_t i = 0; picked && i < n; i++) {
        const char *v = vals[i];
        size_t vlen = vlens[i];
        if (!v) continue;
        /* jansson's json_loadb costs ~7 k instructions even for a short
         * value: a plain string is taken as it is, an object by our loader. */
        json_t *value;
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"' && !memchr(v, '\\', vlen))
            value = json_stringn(v + 1, vlen - 2);
        else if (vlen && v[0] == '{')
            value = hr_json_load(v, vlen, NULL);
        else if (vlen == 4 && !memcmp(v, "null", 4)) /* every chunk's "usage":null with include_usage */
            value = json_null();
        else
            value = json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
        if (value) json_object_set_new(picked, keys[i], value);
    }
    if (pooled) hr_json_pool_end();
    return picked;
}

int hr_api_pick_exact(const char *text, size_t len)
{
    /* An escaped key ("mod\u0065l") is the same key to jansson, not to the
     * skim; a NUL after a value is dropped by jansson's lexer. */
    return !memchr(text, '\\', len) && !memchr(text, '\0', len) && hr_json_scan(text, len, 0, NULL, NULL) == 0;
}

void hr_api_set_model(struct hr_usage *u, const json_t *obj)
{
    const json_t *m = hr_json_get(obj, "model");
    if (!json_is_string(m)) return;
    const char *s = json_string_value(m);
    size_t n = strnlen(s, sizeof(u->model) - 1);
    /* Truncate on a character boundary so the name stays valid UTF-8. */
    if (s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    if (n == 0) return;
    memcpy(u->model, s, n);
    u->model[n] = '\0';
}

int hr_api_str_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return s && n == l && memcmp(s, lit, l) == 0;
}

/* True when the chunk has a `"usage": {` — with include_usage every chunk
 * carries `"usage":null` and only the last one an object. A `"usage"`
 * inside a string value cannot match: its quotes would be escaped. */
static int json_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int hr_api_has_usage_object(const char *d, size_t n)
{
    static const char key[] = "\"usage\"";
    const size_t kl = sizeof(key) - 1;
    /* Read backwards from each '{': spaces, ':', spaces, then the key. The
     * same test as the key followed by them, but a chunk has a few braces
     * and many quotes, and memchr finds a brace at a fraction of memmem's
     * cost (every chunk of a stream is tested). */
    for (const char *p = d, *end = d + n; (p = memchr(p, '{', (size_t)(end - p))) != NULL; p++) {
        const char *q = p;
        while (q > d && json_ws(q[-1])) q--;
        if (q == d || q[-1] != ':') continue;
        q--;
        while (q > d && json_ws(q[-1])) q--;
        if ((size_t)(q - d) >= kl && !memcmp(q - kl, key, kl)) return 1;
    }
    return 0;
}

json_t *hr_api_openai_error(const char *type, const char *code, const char *message)
{
    return json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", message, "type", type, "param", "code", code);
}

char *hr_api_sse_text(const char *event, json_t *obj)
{
    char *json = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!json) return NULL;
    size_t need = strlen(json) + (event ? strlen(event) : 0) + 32;
    char *out = malloc(need);
    if (out) {
        if (event) snprintf(out, need, "event: %s\ndata: %s\n\n", event, json);
        else snprintf(out, need, "data: %s\n\n", json);
    }
    free(json);
    return out;
}

/* Chat and Messages: the last user turn's string, or its first text part. */
int hr_api_is_reminder(const char *text)
{
    while (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t') text++;
    return !strncmp(text, "<system-reminder>", 17);
}

const char *hr_api_user_text(const json_t *item, const char *part_type)
{
    const char *role = json_string_value(hr_json_get(item, "role"));
    if (!role || strcmp(role, "user")) return NULL;
    const json_t *content = hr_json_get(item, "content");
    if (json_is_string(content)) return json_string_value(content);
    size_t k;
    json_t *b;
    json_array_foreach(content, k, b) {
        const char *type = json_string_value(hr_json_get(b, "type"));
        const char *text = json_string_value(hr_json_get(b, "text"));
        if (type && !strcmp(type, part_type) && text && !hr_api_is_reminder(text)) return text;
    }
    return NULL;
}

const char *hr_api_message_user_text(const json_t *message) { return hr_api_user_text(message, "text"); }

/* Text parts of a content array: every {"type":"text","text":…}. A part
 * carrying cache_control is one too: compression is a function of the
 * conversation up to the part, so the provider caches the compressed text
 * and gets the same bytes on every later turn (doc/prompt-caching.md). */
void hr_api_add_text_parts(json_t *content, size_t item, const char *tool, hr_api_unit_fn add, void *ud)
{
    size_t k;
    json_t *part;
    json_array_foreach(content, k, part) {
        const char *type = json_string_value(hr_json_get(part, "type"));
        if (type && !strcmp(type, "text") && json_is_string(hr_json_get(part, "text")))
            add(ud, part, "text", item, tool);
    }
}

/* Models that bill prompt-cache writes (GPT-5.6 on) report them in the
 * input details as cache_write_tokens, inside the input total: moved from
 * uncached input to cache writes, priced at the table's cache_write_5m. */
void hr_api_openai_cache_writes(const json_t *details, struct hr_usage *u)
{
    uint64_t written = 0;
    if (!hr_api_get_count(details, "cache_write_tokens", &written) || !written || written > u->input_tokens) return;
    u->input_tokens -= written;
    u->cache_write_tokens = written;
    u->cache_write_5m_tokens = written;
}

/* OpenAI's usage, under either API's names: the input total includes the
 * cached part (and, from GPT-5.6, the cache writes), the output total the
 * reasoning part. A breakdown larger than its total is nonsense: the total
 * is trusted and the breakdown dropped. */
void hr_api_openai_usage(struct hr_usage *u, const json_t *usage, const struct hr_api_openai_usage_keys *k)
{
    uint64_t input = 0, cached = 0, output = 0, reasoning = 0;
    if (!json_is_object(usage)) return;
    u->seen = 1;
    int have_input = hr_api_get_count(usage, k->input, &input);
    const json_t *details = hr_json_get(usage, k->input_details);
    int have_cached = hr_api_get_count(details, "cached_tokens", &cached);
    if (have_input && have_cached && cached > input) have_cached = 0;
    if (have_cached) u->cache_read_tokens = cached;
    if (have_input) u->input_tokens = input - (have_cached ? cached : 0);
    hr_api_openai_cache_writes(details, u);
    if (hr_api_get_count(usage, k->output, &output)) u->output_tokens = output;
    if (hr_api_get_count(hr_json_get(usage, k->output_details), "reasoning_tokens", &reasoning) &&
        reasoning <= u->output_tokens)
        u->reasoning_tokens = reasoning;
}

char *hr_api_hash_argument(const char *arguments)
{
    json_t *a = arguments ? json_loads(arguments, 0, NULL) : NULL;
    const char *h = json_string_value(hr_json_get(a, "hash"));
    char *out = h ? strdup(h) : NULL;
    json_decref(a);
    return out;
}
