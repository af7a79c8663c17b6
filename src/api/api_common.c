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
#include "json_scan.h"

void hr_api_obj_json(struct hr_api_obj *o, const json_t *j)
{
    o->json = json_is_object(j) ? j : NULL;
    o->text = NULL;
}

int hr_api_obj_text(struct hr_api_obj *o, const char *text, size_t len, int checked)
{
    o->json = NULL;
    o->text = NULL;
    if (checked) {
        if (hr_json_member_list(text, len, o->m, HR_API_OBJ_MEMBERS, &o->n) != 0) return 0;
    } else {
        /* A key written with escapes is the same key to jansson, not to the
         * skim. The pass that checks the text lists its members. */
        if (!len || text[0] != '{' || memchr(text, '\\', len)) return 0;
        if (hr_json_scan_members(text, len, o->m, HR_API_OBJ_MEMBERS, &o->n) != 0) return 0;
    }
    o->text = text;
    o->len = len;
    return 1;
}

int hr_api_obj_is(const struct hr_api_obj *o) { return o->json || o->text; }

/* The value of the text object's member `key` (the last of that name, as jansson keeps). */
static const char *text_member(const struct hr_api_obj *o, const char *key, size_t *vlen)
{
    const char *v;
    if (o->n > HR_API_OBJ_MEMBERS) return hr_json_member(o->text, o->len, key, &v, vlen) ? v : NULL;
    size_t kl = strlen(key);
    for (size_t i = o->n; i-- > 0;)
        if (o->m[i].klen == kl && !memcmp(o->m[i].key, key, kl)) {
            *vlen = o->m[i].vlen;
            return o->m[i].val;
        }
    return NULL;
}

void hr_api_obj_get(const struct hr_api_obj *o, const char *key, struct hr_api_obj *out)
{
    if (o->json) {
        hr_api_obj_json(out, hr_json_get(o->json, key));
        return;
    }
    size_t n;
    const char *v = o->text ? text_member(o, key, &n) : NULL;
    if (v && v[0] == '{') hr_api_obj_text(out, v, n, 1); /* part of checked text */
    else hr_api_obj_json(out, NULL);
}

static int count_of_int(int64_t i, uint64_t *out)
{
    if (i < 0 || (uint64_t)i > HR_USAGE_MAX_TOKENS) return 0;
    *out = (uint64_t)i;
    return 1;
}

/* Some OpenAI-compatible servers print counts as 12.0. */
static int count_of_real(double d, uint64_t *out)
{
    if (!(d >= 0.0 && d <= (double)HR_USAGE_MAX_TOKENS) || (double)(uint64_t)d != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* A token count; 0 when absent or not a sane count, so one bad field never
 * spoils the rest of the object. */
int hr_api_get_count(const struct hr_api_obj *o, const char *key, uint64_t *out)
{
    if (o->json) {
        const json_t *v = hr_json_get(o->json, key);
        if (json_is_integer(v)) return count_of_int(json_integer_value(v), out);
        if (json_is_real(v)) return count_of_real(json_real_value(v), out);
        return 0;
    }
    size_t n;
    const char *v = o->text ? text_member(o, key, &n) : NULL;
    if (!v || !(v[0] == '-' || (unsigned)(v[0] - '0') < 10)) return 0;
    int64_t i;
    double d;
    return hr_json_number(v, n, &i, &d) ? count_of_int(i, out) : count_of_real(d, out);
}

void hr_api_usage_of(const struct hr_api *api, const json_t *parent, struct hr_usage *u)
{
    struct hr_api_obj o;
    hr_api_obj_json(&o, hr_json_get(parent, "usage"));
    api->usage_read(&o, u);
}

/* Usage from the text of the answer's "usage" member (NULL: absent).
 * `exact`: the text it is part of is known valid and free of escapes. */
static void read_usage_value(const struct hr_api *api, const char *v, size_t n, int exact, struct hr_usage *u)
{
    if (!v) return;
    struct hr_api_obj usage;
    if (hr_api_obj_text(&usage, v, n, exact && v[0] == '{')) {
        api->usage_read(&usage, u);
        return;
    }
    json_t *j = hr_json_load(v, n, NULL); /* escapes or not valid: jansson's reading */
    hr_api_obj_json(&usage, j);
    api->usage_read(&usage, u);
    json_decref(j);
}

void hr_api_read_answer(const struct hr_api *api, const char *text, size_t len, struct hr_usage *u)
{
    const char *v = NULL;
    size_t n = 0;
    /* Every provider puts "usage" at or near the end of the answer: read
     * from whichever end reaches it first, not a skim of the whole text
     * (the usage value itself is still checked before it is read). */
    if (!hr_json_member_near(text, len, "usage", &v, &n)) v = NULL;
    read_usage_value(api, v, n, 0, u);
}

int hr_api_read_exact(const struct hr_api *api, const char *text, size_t len, struct hr_usage *u)
{
    /* An escaped key ("usag\u0065") is the same key to jansson, not to the
     * skim; a NUL after a value is dropped by jansson's lexer. */
    if (memchr(text, '\\', len) || memchr(text, '\0', len)) return 0;
    /* The answer itself as a text object: its members listed by the pass
     * that checks it, looked up as a usage object's are. */
    struct hr_api_obj root; /* m[] is filled by the scan: not zeroed first */
    root.json = NULL;
    root.text = text;
    root.len = len;
    if (hr_json_scan_members(text, len, root.m, HR_API_OBJ_MEMBERS, &root.n) != 0) return 0;
    size_t n = 0;
    const char *v = text_member(&root, "usage", &n);
    read_usage_value(api, v, n, 1, u);
    return 1;
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
void hr_api_openai_cache_writes(const struct hr_api_obj *details, struct hr_usage *u)
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
void hr_api_openai_usage(struct hr_usage *u, const struct hr_api_obj *usage, const struct hr_api_openai_usage_keys *k)
{
    uint64_t input = 0, cached = 0, output = 0, reasoning = 0;
    struct hr_api_obj details;
    if (!hr_api_obj_is(usage)) return;
    u->seen = 1;
    int have_input = hr_api_get_count(usage, k->input, &input);
    hr_api_obj_get(usage, k->input_details, &details);
    int have_cached = hr_api_get_count(&details, "cached_tokens", &cached);
    if (have_input && have_cached && cached > input) have_cached = 0;
    if (have_cached) u->cache_read_tokens = cached;
    if (have_input) u->input_tokens = input - (have_cached ? cached : 0);
    hr_api_openai_cache_writes(&details, u);
    if (hr_api_get_count(usage, k->output, &output)) u->output_tokens = output;
    hr_api_obj_get(usage, k->output_details, &details);
    if (hr_api_get_count(&details, "reasoning_tokens", &reasoning) && reasoning <= u->output_tokens)
        u->reasoning_tokens = reasoning;
}

char *hr_api_string_argument(const char *arguments, const char *name)
{
    json_t *a = arguments ? json_loads(arguments, 0, NULL) : NULL;
    const char *h = json_string_value(hr_json_get(a, name));
    char *out = h ? strdup(h) : NULL;
    json_decref(a);
    return out;
}
