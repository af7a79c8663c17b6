/* t/sse_test.c — SSE parser: realistic OpenAI/Anthropic streams under every
 * chunking (and line-ending style) give identical events and usage; edge cases. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "api/api.h"
#include "sse.h"
#include "usage.h"
#include "sse_feed_copy.h"

/* ------------------------------------------------------------ recording */

/* Everything a run produced: events serialised into one byte log (lengths
 * first, so NULs and separators inside data cannot fake a match), the
 * folded usage, and the first error feed returned. */
struct rec {
    char *log;
    size_t len, cap;
    int n_events;
    enum hr_provider provider;
    struct hr_usage usage;
    int rc;
};

static void rec_put(struct rec *r, const void *s, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n)
            cap *= 2;
        r->log = realloc(r->log, cap);
        if (!r->log)
            abort();
        r->cap = cap;
    }
    memcpy(r->log + r->len, s, n);
    r->len += n;
}

static void on_event(void *ud, const char *ev, size_t ev_len, const char *data, size_t data_len)
{
    struct rec *r = ud;

    r->n_events++;
    rec_put(r, &ev_len, sizeof(ev_len));
    rec_put(r, ev, ev_len);
    rec_put(r, &data_len, sizeof(data_len));
    rec_put(r, data, data_len);
    /* the parser promises a NUL-terminated event name; data is a view into
     * the chunk or the parser's buffer, valid for the call only */
    if (ev[ev_len] != '\0')
        rec_put(r, "!NUL", 4);
    const struct hr_api *api = r->provider == HR_PROVIDER_ANTHROPIC ? &hr_api_anthropic_messages : &hr_api_openai_chat;
    if (data_len) api->usage_from_sse(ev, ev_len, data, data_len, &r->usage);
}

static void rec_init(struct rec *r, enum hr_provider p)
{
    memset(r, 0, sizeof(*r));
    r->provider = p;
}

static int usage_eq(const struct hr_usage *a, const struct hr_usage *b)
{
    return a->seen == b->seen && a->input_tokens == b->input_tokens &&
           a->output_tokens == b->output_tokens && a->cache_read_tokens == b->cache_read_tokens &&
           a->cache_write_tokens == b->cache_write_tokens &&
           a->cache_write_5m_tokens == b->cache_write_5m_tokens &&
           a->cache_write_1h_tokens == b->cache_write_1h_tokens;
}

static int rec_eq(const struct rec *a, const struct rec *b)
{
    return a->n_events == b->n_events && a->len == b->len &&
           (a->len == 0 || memcmp(a->log, b->log, a->len) == 0) && a->rc == b->rc &&
           usage_eq(&a->usage, &b->usage);
}

/* Feed `s` cut at the given offsets (ascending, within (0, n)). */
static void run_cuts(struct rec *r, enum hr_provider prov, size_t max, const char *s, size_t n,
                     const size_t *cuts, size_t n_cuts)
{
    struct hr_sse_parser *p;
    size_t from = 0, i;
    int rc;

    rec_init(r, prov);
    p = hr_sse_parser_new(on_event, r, max);
    if (!p)
        abort();
    for (i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : n;
        rc = feed_copy(p, s + from, to - from);
        if (rc && !r->rc)
            r->rc = rc;
        from = to;
    }
    hr_sse_parser_free(p);
}

static void run_whole(struct rec *r, enum hr_provider prov, size_t max, const char *s, size_t n)
{
    run_cuts(r, prov, max, s, n, NULL, 0);
}

static void rec_free(struct rec *r)
{
    free(r->log);
    r->log = NULL;
}

/* Deterministic across libcs, unlike rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Every chunking of `s` must reproduce `want`. */
static void check_chunkings(const char *name, enum hr_provider prov, size_t max, const char *s,
                            size_t n, const struct rec *want)
{
    struct rec got;
    size_t *cuts = malloc((n + 1) * sizeof(*cuts));
    size_t k, i, bad;
    int run;

    if (!cuts)
        abort();

    run_whole(&got, prov, max, s, n);
    ok(rec_eq(&got, want), "%s: fed whole", name);
    rec_free(&got);

    bad = 0;
    for (k = 0; k <= n; k++) {
        run_cuts(&got, prov, max, s, n, &k, 1);
        if (!rec_eq(&got, want) && !bad++)
            tap_diag("  first mismatch: split at byte %zu", k);
        rec_free(&got);
    }
    ok(bad == 0, "%s: split at every one of %zu byte boundaries (%zu differ)", name, n + 1, bad);

    for (i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    run_cuts(&got, prov, max, s, n, cuts, n ? n - 1 : 0);
    ok(rec_eq(&got, want), "%s: 1-byte chunks", name);
    rec_free(&got);

    bad = 0;
    for (run = 0; run < 300; run++) {
        size_t nc = 0, at = 0, span = 1 + rng() % 97;
        for (;;) {
            at += 1 + rng() % span;
            if (at >= n)
                break;
            cuts[nc++] = at;
        }
        run_cuts(&got, prov, max, s, n, cuts, nc);
        if (!rec_eq(&got, want) && !bad++)
            tap_diag("  first mismatch: random run %d", run);
        rec_free(&got);
    }
    ok(bad == 0, "%s: 300 random chunkings (%zu differ)", name, bad);
    free(cuts);
}

/* The same stream with every LF turned into CRLF or CR. Safe for these
 * fixtures: no data value contains a newline. */
static char *with_endings(const char *s, size_t n, const char *eol, size_t *out_n)
{
    size_t el = strlen(eol), i, o = 0;
    char *d = malloc(n * el + 1);

    if (!d)
        abort();
    for (i = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(d + o, eol, el);
            o += el;
        } else {
            d[o++] = s[i];
        }
    }
    *out_n = o;
    return d;
}

/* ------------------------------------------------------------- fixtures */

static const char openai_stream[] =
    ": OPENROUTER PROCESSING\n"
    "\n"
    "data: {\"id\":\"chatcmpl-A1b2C3\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-A1b2C3\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Hello \\\"usage\\\": {\"},\"logprobs\":null,\"finish_reason\":null}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-A1b2C3\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\" w\xC3\xB6rld \xE2\x9C\x93 \xF0\x9F\x98\x80\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-A1b2C3\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-A1b2C3\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":1234,\"completion_tokens\":56,\"total_tokens\":1290,"
    "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],"
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
    "\"cache_creation_input_tokens\":3000,\"cache_read_input_tokens\":20000,"
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":1000,\"ephemeral_1h_input_tokens\":2000},"
    "\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"H\xC3\xA9llo \xE2\x80\x94 \xE4\xB8\x96\xE7\x95\x8C\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" and more\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":87}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

static void test_stream(const char *name, enum hr_provider prov, const char *s, size_t n,
                        int want_events, const struct hr_usage *want_usage)
{
    static const char *const eols[] = {"\r\n", "\r"};
    static const char *const eol_names[] = {"CRLF", "CR"};
    struct rec want;
    char label[96];
    size_t i;

    run_whole(&want, prov, 0, s, n);
    is_int(want.rc, 0, "%s: feed returns 0", name);
    is_int(want.n_events, want_events, "%s: %d events", name, want_events);
    ok(usage_eq(&want.usage, want_usage), "%s: usage as expected", name);
    if (!usage_eq(&want.usage, want_usage))
        tap_diag("  got seen=%d in=%llu out=%llu cr=%llu cw=%llu 5m=%llu 1h=%llu",
                 want.usage.seen, (unsigned long long)want.usage.input_tokens,
                 (unsigned long long)want.usage.output_tokens,
                 (unsigned long long)want.usage.cache_read_tokens,
                 (unsigned long long)want.usage.cache_write_tokens,
                 (unsigned long long)want.usage.cache_write_5m_tokens,
                 (unsigned long long)want.usage.cache_write_1h_tokens);

    snprintf(label, sizeof(label), "%s LF", name);
    check_chunkings(label, prov, 0, s, n, &want);
    for (i = 0; i < 2; i++) {
        size_t n2;
        char *s2 = with_endings(s, n, eols[i], &n2);
        snprintf(label, sizeof(label), "%s %s", name, eol_names[i]);
        check_chunkings(label, prov, 0, s2, n2, &want);
        free(s2);
    }
    rec_free(&want);
}

/* ------------------------------------------------------------ edge cases */

/* Collects events as "event|data;" text (data must be printable here). */
struct txt {
    char buf[1024];
    size_t len;
};

static void on_txt(void *ud, const char *ev, size_t ev_len, const char *data, size_t data_len)
{
    struct txt *t = ud;
    int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%.*s|%.*s;", (int)ev_len, ev,
                     (int)data_len, data);
    if (n > 0)
        t->len += (size_t)n < sizeof(t->buf) - t->len ? (size_t)n : 0;
}

/* Feed the pieces given (NULL-terminated) and return the events as text;
 * *rc gets the last feed result. */
static const char *feed_txt(struct txt *t, size_t max, int *rc, ...)
{
    struct hr_sse_parser *p;
    va_list ap;
    const char *piece;

    memset(t, 0, sizeof(*t));
    p = hr_sse_parser_new(on_txt, t, max);
    *rc = 0;
    va_start(ap, rc);
    while ((piece = va_arg(ap, const char *)) != NULL)
        *rc = feed_copy(p, piece, strlen(piece));
    va_end(ap);
    hr_sse_parser_free(p);
    return t->buf;
}

static void test_edges(void)
{
    struct txt t;
    int rc;

    is_str(feed_txt(&t, 0, &rc, "data: a\r\n\r\n", NULL), "message|a;", "CRLF line endings");
    is_str(feed_txt(&t, 0, &rc, "event: x\rdata: a\rdata: b\r\r", NULL), "x|a\nb;",
           "bare CR line endings, multi-line data");
    is_str(feed_txt(&t, 0, &rc, "data: a\r", "\ndata: b\r", "\n", "\r", "\n", NULL),
           "message|a\nb;", "CR at chunk end + LF at next chunk start is one line ending");
    is_str(feed_txt(&t, 0, &rc, "data: a\r", "\r", NULL), "message|a;",
           "CR then CR across chunks is a line end plus a blank line");
    is_str(feed_txt(&t, 0, &rc, "data: a\n\n\n\n", NULL), "message|a;",
           "extra blank lines dispatch nothing");
    is_str(feed_txt(&t, 0, &rc, ": hello\ndata: a\n:mid\ndata: b\n\n", NULL), "message|a\nb;",
           "comment lines are ignored");
    is_str(feed_txt(&t, 16, &rc, ": a comment much longer than the sixteen-byte limit", " still going",
                    "\ndata: ok\n\n", NULL),
           "message|ok;", "a comment split across chunks is dropped, not buffered");
    is_int(rc, 0, "a long comment does not count against the limit");
    is_str(feed_txt(&t, 0, &rc, "data: one\ndata:two\ndata:  three\ndata\ndata:\n\n", NULL),
           "message|one\ntwo\n three\n\n;", "multi-line data; one leading space stripped");
    is_str(feed_txt(&t, 0, &rc, "\xEF\xBB\xBF" "data: a\n\n", NULL), "message|a;", "leading BOM skipped");
    is_str(feed_txt(&t, 0, &rc, "\xEF", "\xBB", "\xBF" "da", "ta: a\n\n", NULL), "message|a;",
           "BOM split across chunks skipped");
    is_str(feed_txt(&t, 0, &rc, "\xEF\xBB", "\n", "data: a\n\n", NULL), "message|a;",
           "half a BOM is ordinary line content");
    is_str(feed_txt(&t, 0, &rc, "\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\n", NULL), "",
           "only one BOM is skipped (the second makes an unknown field)");
    is_str(feed_txt(&t, 0, &rc, "data\n\n", NULL), "message|;",
           "field without colon: data with empty value still dispatches");
    is_str(feed_txt(&t, 0, &rc, "event\ndata: x\n\n", NULL), "message|x;",
           "field without colon: empty event type means message");
    is_str(feed_txt(&t, 0, &rc, "event: lonely\n\ndata: x\n\n", NULL), "message|x;",
           "an event without data is not dispatched and its type is reset");
    is_str(feed_txt(&t, 0, &rc, "id: 7\nretry: 100\nfoo: bar\ndata: x\n\n", NULL), "message|x;",
           "id, retry and unknown fields are ignored");
    is_str(feed_txt(&t, 0, &rc, "event: a\nevent: b\ndata:x\n\ndata: y\n\n", NULL),
           "b|x;message|y;", "last event field wins; type resets after dispatch");
    is_str(feed_txt(&t, 0, &rc, "data: a\n\ndata: unfinished\n", NULL), "message|a;",
           "an unfinished trailing event is discarded");
    is_str(feed_txt(&t, 0, &rc, "data: a\n\ndata: unfinished", NULL), "message|a;",
           "an unfinished trailing line is discarded");

    /* NUL bytes travel by length */
    {
        struct rec r;
        static const char s[] = "data: a\0b\n\n";
        run_whole(&r, HR_PROVIDER_OPENAI, 0, s, sizeof(s) - 1);
        ok(r.n_events == 1 && r.len == 2 * sizeof(size_t) + 7 + 3 &&
               memcmp(r.log + 2 * sizeof(size_t) + 7, "a\0b", 3) == 0,
           "NUL inside data is kept, length-delimited");
        rec_free(&r);
    }

    /* limits */
    {
        char big[200];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        feed_txt(&t, 64, &rc, "data: ok\n\ndata: ", big, "\n\n", NULL);
        is_int(rc, -E2BIG, "a line over the limit returns -E2BIG");
        is_str(t.buf, "message|ok;", "events before the oversized one were delivered");
        feed_txt(&t, 64, &rc, "data: ", big, "\n\n", "data: later\n\n", NULL);
        is_int(rc, -E2BIG, "the error sticks on later feeds");
        is_str(t.buf, "", "nothing parsed after the error");
        feed_txt(&t, 64, &rc, "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n"
                              "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", NULL);
        is_int(rc, -E2BIG, "many small data lines adding up over the limit return -E2BIG");
        feed_txt(&t, 64, &rc, "data: 0123456789\n\ndata: 0123456789\n\ndata: 0123456789\n\n"
                              "data: 0123456789\n\ndata: 0123456789\n\n", NULL);
        is_int(rc, 0, "the limit is per event, not per stream");
        is_int(t.len, 5 * (int)strlen("message|0123456789;"), "all five small events delivered");
    }
    /* over-limit is the same wherever the chunks are cut */
    {
        static const char s[] = "data: 0123456789abcdef\ndata: 0123456789abcdef\n\n"
                                "data: 0123456789abcdef0123456789abcdef0123456789abcdef\n\n";
        struct rec want;
        run_whole(&want, HR_PROVIDER_OPENAI, 48, s, sizeof(s) - 1);
        is_int(want.rc, -E2BIG, "limit 48: second event too large");
        is_int(want.n_events, 1, "limit 48: first event delivered");
        check_chunkings("limit 48", HR_PROVIDER_OPENAI, 48, s, sizeof(s) - 1, &want);
        rec_free(&want);
    }
    {
        static const char at[] = "data: 012345678901234567890123456789012345678901\n\n";
        struct rec r;
        run_whole(&r, HR_PROVIDER_OPENAI, 48, at, sizeof(at) - 1);
        ok(r.rc == 0 && r.n_events == 1, "limit 48: a 48-byte line still parses");
        rec_free(&r);
    }
}

/* skip_oversized: an event over the bound is dropped whole, the ones after
 * it still parse (usage at a stream's end), wherever the chunks are cut. */
static void run_skip(const char *s, size_t n, size_t cut, size_t step, struct txt *t, int *rc, size_t *skipped)
{
    struct hr_sse_parser *p = hr_sse_parser_new(on_txt, t, 48);
    memset(t, 0, sizeof(*t));
    hr_sse_skip_oversized(p, 1);
    *rc = 0;
    for (size_t off = 0; off < n && !*rc;) {
        size_t c = step ? step : (off < cut ? cut - off : n - off);
        if (c > n - off)
            c = n - off;
        *rc = feed_copy(p, s + off, c);
        off += c;
    }
    *skipped = hr_sse_skipped(p);
    hr_sse_parser_free(p);
}

static void test_skip_oversized(void)
{
    static const char s[] = "data: one\n\n"
                            "event: big\ndata: 0123456789012345678901234567890123456789\ndata: 0123456789\n\n"
                            ": a comment\r\n"
                            "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n"
                            "event: usage\ndata: two\n\n";
    size_t n = sizeof(s) - 1, skipped;
    struct txt t;
    int rc, all_same = 1;
    run_skip(s, n, n, 0, &t, &rc, &skipped);
    is_int(rc, 0, "skip_oversized: no error");
    is_str(t.buf, "message|one;usage|two;", "skip_oversized: the events around the oversized ones are delivered");
    is_int((int)skipped, 2, "skip_oversized: both oversized events counted");
    for (size_t cut = 1; cut < n; cut++) {
        run_skip(s, n, cut, 0, &t, &rc, &skipped);
        all_same &= rc == 0 && !strcmp(t.buf, "message|one;usage|two;") && skipped == 2;
    }
    for (size_t step = 1; step < 8; step++) {
        run_skip(s, n, 0, step, &t, &rc, &skipped);
        all_same &= rc == 0 && !strcmp(t.buf, "message|one;usage|two;") && skipped == 2;
    }
    ok(all_same, "skip_oversized: the same result for every cut and every chunk size 1-7");
}

int main(void)
{
    struct hr_usage oa = {0}, an = {0};

    oa.seen = 1;
    oa.input_tokens = 1234 - 1024;
    oa.output_tokens = 56;
    oa.cache_read_tokens = 1024;
    test_stream("openai", HR_PROVIDER_OPENAI, openai_stream, sizeof(openai_stream) - 1, 6, &oa);

    an.seen = 1;
    an.input_tokens = 12;
    an.output_tokens = 87;
    an.cache_read_tokens = 20000;
    an.cache_write_tokens = 3000;
    an.cache_write_5m_tokens = 1000;
    an.cache_write_1h_tokens = 2000;
    test_stream("anthropic", HR_PROVIDER_ANTHROPIC, anthropic_stream, sizeof(anthropic_stream) - 1,
                8, &an);

    test_edges();
    test_skip_oversized();
    return tap_exit();
}
