/* t/fuzz/fuzz_textc.c — libFuzzer-style target for the log, search and diff
 * compressors' cores: any bytes in, no crash or leak; a result has its
 * marker with the hash placeholder, and the same input gives the same bytes.
 * The first byte picks the compressor and small settings, so short inputs
 * reach the folding code too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "logc.h"
#include "searchc.h"
#include "diffc.h"
#include "textc.h"

/* The wrapped-text walk (lib/textc.h, hr_wrap_rewrite) over the same bytes
 * taken as a JSON unit: each long string goes to the compressor, or (bit 1
 * of the selector) is cut to its first third, byte-wise, as a careless
 * compressor might (inside a UTF-8 character). */
struct wrap_ctx {
    hr_text_compress_fn fn;
    const void *cfg;
    int cut;
};

static int wrap_fn(void *ctx, const char *s, size_t sl, struct hr_text_out *o)
{
    const struct wrap_ctx *w = ctx;
    if (!w->cut)
        return w->fn(w->cfg, s, sl, "error timeout stream", o);
    memset(o, 0, sizeof *o);
    hr_text_marker(o, "bytes cut", sl - sl / 3, sl);
    hr_tbuf_put(&o->b, s, sl / 3);
    return 0;
}

/* A JSON unit in gives JSON out with the same bytes around the strings it
 * rewrote; a string whose new text cannot be written (not UTF-8) is left as
 * it was, the others still rewritten; and the same input, the same bytes. */
static void wrapped(const char *text, size_t len, const struct wrap_ctx *w)
{
    json_t *in = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    struct hr_text_out a, b;
    struct hr_wrap_str wa[HR_WRAP_MAX], wb[HR_WRAP_MAX];
    size_t na = 0, nb = 0;
    int ra = hr_wrap_rewrite(text, len, 0, 0.0, wrap_fn, (void *)w, &a, wa, &na);
    int rb = hr_wrap_rewrite(text, len, 0, 0.0, wrap_fn, (void *)w, &b, wb, &nb);
    if (ra != rb || (ra < 0 && ra != -12))
        abort();
    if (ra == 0) {
        if (a.b.len != b.b.len || memcmp(a.b.p, b.b.p, a.b.len) || na != nb || !na || na > HR_WRAP_MAX)
            abort();
        if (wa[0].raw_off > a.b.len || memcmp(a.b.p, text, wa[0].raw_off))
            abort(); /* the bytes before the first rewritten string */
        size_t tail = len - (wa[na - 1].raw_off + wa[na - 1].raw_len);
        if (tail > a.b.len || memcmp(a.b.p + a.b.len - tail, text + len - tail, tail))
            abort(); /* and after the last */
        for (size_t x = 0; x < na; x++)
            for (size_t h = 0; h < wa[x].n_hash; h++)
                if (wa[x].hash_at[h] + HR_CCR_HASH_LEN > a.b.len ||
                    memcmp(a.b.p + wa[x].hash_at[h], HR_TEXTC_PLACEHOLDER, HR_CCR_HASH_LEN))
                    abort(); /* each hash where the placeholder is */
        json_t *out = in ? json_loadb(a.b.p, a.b.len, JSON_DECODE_ANY, NULL) : NULL;
        if (in && !out)
            abort();
        json_decref(out);
        hr_tbuf_free(&a.b);
        hr_tbuf_free(&b.b);
    }
    json_decref(in);
}

/* A string's decoding by hand (hr_wrap_unescape) is jansson's: the same
 * bytes, or both refuse it. */
static void unescaped(const char *text, size_t len)
{
    if (len < 2 || text[0] != '"' || text[len - 1] != '"' || !hr_wrap_real_quote(text, len - 1))
        return;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    struct hr_tbuf b;
    int r = hr_wrap_unescape(text, 1, len - 2, &b);
    if (r == -12) {
        json_decref(j);
        return;
    }
    if ((r == 0) != (j != NULL) ||
        (j && (json_string_length(j) != b.len || memcmp(json_string_value(j), b.p, b.len) || b.p[b.len])))
        abort();
    json_decref(j);
    hr_tbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel = size ? data[0] : 0;
    size_t len = size ? size - 1 : 0;
    char *text = malloc(len + 1); /* NUL-terminated, as units are */
    if (!text)
        return 0;
    memcpy(text, size ? (const char *)data + 1 : "", len);
    text[len] = '\0';
    struct hr_logc_config lc = {sel >> 2 & 3, sel >> 4 & 3, sel >> 6, 1 + (sel >> 2 & 7), 4 + (sel >> 5)};
    struct hr_searchc_config sc = {sel >> 2 & 7, 1 + (sel >> 5)};
    struct hr_diffc_config dc = {sel >> 2 & 3};
    hr_text_compress_fn fn = sel % 3 == 0 ? hr_logc_compress : sel % 3 == 1 ? hr_searchc_compress : hr_diffc_compress;
    const void *cfg = sel % 3 == 0 ? (const void *)&lc : sel % 3 == 1 ? (const void *)&sc : (const void *)&dc;
    struct hr_text_out a, b;
    int ra = fn(cfg, text, len, "error timeout stream", &a);
    int rb = fn(cfg, text, len, "error timeout stream", &b);
    if (ra != rb)
        abort();
    if (ra == 0) {
        if (a.b.len != b.b.len || memcmp(a.b.p, b.b.p, a.b.len) || !memmem(a.b.p, a.b.len, "hash=" HR_TEXTC_PLACEHOLDER, 29))
            abort();
        hr_text_out_free(&a);
        hr_text_out_free(&b);
    }
    size_t p = 0;
    while (p < len && (text[p] == ' ' || text[p] == '\n' || text[p] == '\r' || text[p] == '\t'))
        p++;
    if (p < len && (text[p] == '{' || text[p] == '[' || text[p] == '"')) {
        struct wrap_ctx w = {fn, cfg, (sel >> 1) & 1};
        wrapped(text, len, &w);
        unescaped(text + p, len - p);
    }
    free(text);
    return 0;
}
