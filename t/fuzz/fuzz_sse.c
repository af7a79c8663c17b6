/* t/fuzz/fuzz_sse.c — fuzz target: the SSE parser fed in input-chosen chunk
 * sizes, usage extraction (both providers) on every event; a chunked run must
 * match a whole-buffer run exactly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "sse.h"
#include "usage.h"
#include "../sse_feed_copy.h" /* t/ */

/* Input layout: byte 0 = (limit selector << 3) | number of chunk-size bytes
 * (0..7); then that many chunk sizes, used in turn (0 means an empty feed);
 * the rest is the stream. Selector 0 picks the default limit, others a small
 * one (32..992 bytes) so the over-limit path is reached. */

struct run {
    uint64_t hash;
    size_t n_events;
    int rc;
    struct hr_usage oa, an, re;
};

static void mix(struct run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < n; i++)
        r->hash = (r->hash ^ b[i]) * 0x100000001B3ull;
}

static void on_event(void *ud, const char *ev, size_t ev_len, const char *data, size_t data_len)
{
    struct run *r = ud;

    if (ev[ev_len] != '\0')
        abort(); /* promised a NUL-terminated name (data is a view, valid for the call) */
    r->n_events++;
    mix(r, &ev_len, sizeof(ev_len));
    mix(r, ev, ev_len);
    mix(r, &data_len, sizeof(data_len));
    mix(r, data, data_len);
    if (!data_len) return;
    hr_api_openai_chat.usage_from_sse(ev, ev_len, data, data_len, &r->oa);
    hr_api_anthropic_messages.usage_from_sse(ev, ev_len, data, data_len, &r->an);
    hr_api_openai_responses.usage_from_sse(ev, ev_len, data, data_len, &r->re);
}

static int same_usage(const struct hr_usage *a, const struct hr_usage *b)
{
    return a->seen == b->seen && a->input_tokens == b->input_tokens &&
           a->output_tokens == b->output_tokens && a->cache_read_tokens == b->cache_read_tokens &&
           a->cache_write_tokens == b->cache_write_tokens &&
           a->cache_write_5m_tokens == b->cache_write_5m_tokens &&
           a->cache_write_1h_tokens == b->cache_write_1h_tokens;
}

static void check_usage(const struct hr_usage *u)
{
    if (u->input_tokens > HR_USAGE_MAX_TOKENS || u->output_tokens > HR_USAGE_MAX_TOKENS ||
        u->cache_read_tokens > HR_USAGE_MAX_TOKENS || u->cache_write_tokens > HR_USAGE_MAX_TOKENS ||
        u->cache_write_5m_tokens > HR_USAGE_MAX_TOKENS || u->cache_write_1h_tokens > HR_USAGE_MAX_TOKENS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run chunked, whole;
    struct hr_sse_parser *p;
    const uint8_t *sizes;
    const char *s;
    size_t n_sizes, len, max, off = 0, k = 0, zeros = 0;
    int rc;

    if (size == 0)
        return 0;
    n_sizes = data[0] & 7;
    max = (data[0] >> 3) ? (size_t)(data[0] >> 3) * 32 : 0;
    if (size < 1 + n_sizes)
        return 0;
    sizes = data + 1;
    s = (const char *)data + 1 + n_sizes;
    len = size - 1 - n_sizes;

    memset(&chunked, 0, sizeof(chunked));
    memset(&whole, 0, sizeof(whole));
    chunked.hash = whole.hash = 0xCBF29CE484222325ull;

    p = hr_sse_parser_new(on_event, &chunked, max);
    if (!p)
        return 0;
    while (off < len) {
        size_t c = n_sizes ? sizes[k++ % n_sizes] : len;
        if (c == 0 && ++zeros >= n_sizes)
            c = len; /* every size is 0: finish in one piece */
        else if (c)
            zeros = 0;
        if (c > len - off)
            c = len - off;
        rc = feed_copy(p, s + off, c);
        if (rc && !chunked.rc)
            chunked.rc = rc;
        if (chunked.rc && rc != chunked.rc)
            abort(); /* the error must stick */
        off += c;
    }
    hr_sse_parser_free(p);

    p = hr_sse_parser_new(on_event, &whole, max);
    if (!p)
        return 0;
    whole.rc = hr_sse_feed(p, s, len);
    hr_sse_parser_free(p);

    if (chunked.hash != whole.hash || chunked.n_events != whole.n_events || chunked.rc != whole.rc ||
        !same_usage(&chunked.oa, &whole.oa) || !same_usage(&chunked.an, &whole.an) ||
        !same_usage(&chunked.re, &whole.re))
        abort(); /* chunk boundaries changed the result */
    check_usage(&whole.oa);
    check_usage(&whole.an);
    check_usage(&whole.re);
    return 0;
}
