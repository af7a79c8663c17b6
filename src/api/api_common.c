/* api_common.c — small helpers the wire-format adapters share: sane token
 * counts, the reported model, OpenAI's error shape, SSE framing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <zlib.h>
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

/* ---- images and documents sent as data (the adapters' data_tokens) */

/* The base64 payload of `data`: after the comma of a data: URL. */
static const char *base64_payload(const char *data, size_t len, size_t *n)
{
    if (len > 5 && !memcmp(data, "data:", 5)) {
        const char *comma = memchr(data, ',', len);
        if (!comma) return NULL;
        *n = len - (size_t)(comma + 1 - data);
        return comma + 1;
    }
    *n = len;
    return data;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Bytes [off, off + cnt) of the decoded payload into out (cnt <= 64); 0
 * when they are past its end or not base64. Random access: a JPEG's size
 * may come after tens of kilobytes of metadata, skipped unread. */
static int b64_read(const char *s, size_t n, size_t off, unsigned char *out, size_t cnt)
{
    unsigned char buf[72];
    size_t g0 = off / 3, g1 = (off + cnt + 2) / 3, k = 0;
    if (cnt > 64 || g1 > n / 4 + (n % 4 != 0)) return 0;
    for (size_t g = g0; g < g1; g++) {
        uint32_t v = 0;
        int pad = 0;
        for (size_t i = 0; i < 4; i++) {
            size_t at = g * 4 + i;
            int d = at < n ? b64_value((unsigned char)s[at]) : -1;
            if (d < 0) {
                if (at < n && s[at] != '=') return 0;
                d = 0;
                pad++;
            }
            v = v << 6 | (uint32_t)d;
        }
        buf[k++] = (unsigned char)(v >> 16);
        buf[k++] = (unsigned char)(v >> 8);
        buf[k++] = (unsigned char)v;
        if (pad && (g + 1) * 3 - (size_t)pad < off + cnt) return 0;
    }
    memcpy(out, buf + off % 3, cnt);
    return 1;
}

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le24(const unsigned char *p) { return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }

/* A JPEG's size from its first start-of-frame segment (SOF0-15 but DHT,
 * JPG, DAC), walking the segments from the start. */
static int jpeg_size(const char *s, size_t n, uint32_t *w, uint32_t *h)
{
    size_t at = 2;
    unsigned char m[9];
    for (int seg = 0; seg < 256 && b64_read(s, n, at, m, 4); seg++) {
        if (m[0] != 0xFF) return 0;
        if (m[1] == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        if ((m[1] >= 0xD0 && m[1] <= 0xD7) || m[1] == 0x01) { /* no length */
            at += 2;
            continue;
        }
        if (m[1] >= 0xC0 && m[1] <= 0xCF && m[1] != 0xC4 && m[1] != 0xC8 && m[1] != 0xCC) {
            if (!b64_read(s, n, at, m, 9)) return 0;
            *h = be16(m + 5);
            *w = be16(m + 7);
            return *w && *h;
        }
        if (m[1] == 0xD9 || m[1] == 0xDA) return 0; /* end, or scan data before any frame */
        at += 2 + be16(m + 2);
    }
    return 0;
}

int hr_api_image_size(const char *data, size_t len, uint32_t *w, uint32_t *h)
{
    size_t n;
    const char *s = base64_payload(data, len, &n);
    unsigned char b[30];
    *w = *h = 0;
    if (!s || !b64_read(s, n, 0, b, 12)) return 0;
    if (!memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        if (!b64_read(s, n, 0, b, 24) || memcmp(b + 12, "IHDR", 4)) return 0;
        *w = be32(b + 16);
        *h = be32(b + 20);
    } else if (b[0] == 0xFF && b[1] == 0xD8) {
        return jpeg_size(s, n, w, h);
    } else if (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)) {
        *w = le16(b + 6);
        *h = le16(b + 8);
    } else if (!memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) {
        if (!b64_read(s, n, 0, b, 30)) return 0;
        if (!memcmp(b + 12, "VP8 ", 4) && b[23] == 0x9D && b[24] == 0x01 && b[25] == 0x2A) {
            *w = le16(b + 26) & 0x3FFF;
            *h = le16(b + 28) & 0x3FFF;
        } else if (!memcmp(b + 12, "VP8L", 4) && b[20] == 0x2F) {
            uint32_t bits = (uint32_t)b[21] | (uint32_t)b[22] << 8 | (uint32_t)b[23] << 16 | (uint32_t)b[24] << 24;
            *w = (bits & 0x3FFF) + 1;
            *h = (bits >> 14 & 0x3FFF) + 1;
        } else if (!memcmp(b + 12, "VP8X", 4)) {
            *w = le24(b + 24) + 1;
            *h = le24(b + 27) + 1;
        }
    }
    if (*w > 100000 || *h > 100000) *w = *h = 0; /* not a real header */
    return *w && *h;
}

/* `/Type /Page` not followed by a name character (so not /Pages), starting
 * before `limit` (the text may go on to n). */
static uint64_t count_page_objects(const unsigned char *p, size_t n, size_t limit)
{
    uint64_t pages = 0;
    for (const unsigned char *q = p, *end = p + n; (q = memmem(q, (size_t)(end - q), "/Type", 5)) != NULL;) {
        if ((size_t)(q - p) >= limit) break;
        q += 5;
        while (q < end && (*q == ' ' || *q == '\r' || *q == '\n' || *q == '\t')) q++;
        if ((size_t)(end - q) >= 5 && !memcmp(q, "/Page", 5)) {
            q += 5;
            if (q == end || !((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')))
                pages++;
        }
    }
    return pages;
}

/* PDF 1.5 on packs objects, the pages too, in deflated object streams
 * (`/Type /ObjStm`): their page objects, reading at most 8 MB inflated
 * (object streams hold dictionaries, not page contents: a few hundred KB
 * for hundreds of pages). */
#define PDF_INFLATE_MAX (8u << 20)
#define PDF_MATCH_MAX 24 /* the longest `/Type /Page` counted across two reads */
static uint64_t object_stream_pages(const unsigned char *p, size_t n)
{
    uint64_t pages = 0;
    size_t inflated = 0;
    unsigned char out[65536];
    for (const unsigned char *q = p, *end = p + n; inflated < PDF_INFLATE_MAX &&
                                                   (q = memmem(q, (size_t)(end - q), "/ObjStm", 7)) != NULL;) {
        q += 7;
        size_t dict = (size_t)(end - q) < 4096 ? (size_t)(end - q) : 4096;
        const unsigned char *s = memmem(q, dict, "stream", 6);
        if (!s) continue;
        s += 6;
        if (s < end && *s == '\r') s++;
        if (s < end && *s == '\n') s++;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit(&z) != Z_OK) break;
        z.next_in = (unsigned char *)(uintptr_t)s;
        z.avail_in = (size_t)(end - s) > UINT_MAX ? UINT_MAX : (uInt)(end - s);
        size_t keep = 0;
        int rc;
        do {
            z.next_out = out + keep;
            z.avail_out = (uInt)(sizeof out - keep);
            rc = inflate(&z, Z_NO_FLUSH);
            size_t have = sizeof out - z.avail_out, fresh = have - keep;
            inflated += fresh;
            int last = rc != Z_OK || !fresh || inflated >= PDF_INFLATE_MAX;
            /* a match starting in the last bytes is counted with the next read */
            size_t limit = last || have < PDF_MATCH_MAX ? have : have - PDF_MATCH_MAX;
            pages += count_page_objects(out, have, limit);
            keep = have - limit;
            memmove(out, out + limit, keep);
            if (last) break;
        } while (1);
        inflateEnd(&z);
        q = s;
    }
    return pages;
}

uint64_t hr_api_pdf_pages(const char *data, size_t len)
{
    size_t n;
    const char *s = base64_payload(data, len, &n);
    if (!s || n < 4) return 1;
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return 1;
    size_t k = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64_value((unsigned char)s[i]);
        if (d < 0) continue; /* padding, line breaks */
        v = v << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (unsigned char)(v >> bits);
        }
    }
    uint64_t pages = count_page_objects(buf, k, k);
    if (!pages) pages = object_stream_pages(buf, k);
    if (!pages) {
        /* None found (object streams in another coding, say): a
         * linearized file says how many pages it has (/N) in its first object. */
        size_t head = k < 1024 ? k : 1024;
        const unsigned char *lin = memmem(buf, head, "/Linearized", 11);
        const unsigned char *np = lin ? memmem(lin, head - (size_t)(lin - buf), "/N ", 3) : NULL;
        for (const unsigned char *d = np ? np + 3 : NULL, *end = buf + head; d && d < end && *d >= '0' && *d <= '9'; d++)
            pages = pages < 100000 ? pages * 10 + (uint64_t)(*d - '0') : pages;
    }
    free(buf);
    return pages ? pages : 1;
}

uint64_t hr_api_openai_image_tokens(const char *url, size_t len, const char *detail)
{
    if (detail && !strcmp(detail, "low")) return 85;
    uint32_t w32, h32;
    uint64_t w = 1024, h = 1024;
    if (url && len > 5 && !memcmp(url, "data:", 5) && hr_api_image_size(url, len, &w32, &h32)) w = w32, h = h32;
    uint64_t longest = w > h ? w : h;
    if (longest > 2048) w = w * 2048 / longest, h = h * 2048 / longest;
    uint64_t shortest = w < h ? w : h;
    if (shortest > 768) w = w * 768 / shortest, h = h * 768 / shortest;
    if (!w) w = 1;
    if (!h) h = 1;
    return 85 + 170 * ((w + 511) / 512) * ((h + 511) / 512);
}
