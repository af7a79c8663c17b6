/* t/tokens_test.c — token counter tests: golden counts from the reference tiktoken, edge cases
 * (empty, invalid UTF-8, huge pieces), model mapping, fallback without tables, threads. */
#include "tap.h"
#include "../src/tokens.h"
#include "../src/tokenizer.h"
#include "../src/token_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "slurp.h"

static const char *srcdir;

/* Same LCG as tools/gen_golden_tokens.mjs. */
static char *gen_letters(size_t n)
{
    char *s = malloc(n + 1);
    uint32_t seed = 12345;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        s[i] = (char)('a' + (seed >> 16) % 26);
    }
    s[n] = 0;
    return s;
}

static size_t cnt(enum hr_encoding e, const char *s) { return hr_count_tokens_enc(e, s, strlen(s)); }
static size_t cntn(enum hr_encoding e, const char *s, size_t n) { return hr_count_tokens_enc(e, s, n); }

struct golden { char name[256]; enum hr_encoding enc; size_t want; char *text; size_t len; };
static struct golden gold[512];
static int ngold;

static void test_golden(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/t/tokens/golden.tsv", srcdir);
    FILE *f = fopen(path, "r");
    if (!ok(f != NULL, "open %s", path))
        return;
    char line[1024];
    while (fgets(line, sizeof line, f) && ngold < 512) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char name[256], enc[64];
        size_t want;
        if (sscanf(line, "%255[^\t]\t%63[^\t]\t%zu", name, enc, &want) != 3)
            continue;
        struct golden *g = &gold[ngold];
        snprintf(g->name, sizeof g->name, "%s", name);
        if (hr_encoding_from_name(enc, &g->enc) != 0)
            continue;
        g->want = want;
        if (strncmp(name, "@letters:", 9) == 0) {
            g->len = strtoul(name + 9, NULL, 10);
            g->text = gen_letters(g->len);
        } else {
            snprintf(path, sizeof path, "%s/t/tokens/%s", srcdir, name);
            g->text = slurp(path, &g->len);
            if (!ok(g->text != NULL, "read %s", path))
                continue;
        }
        ngold++;
        is_int(cntn(g->enc, g->text, g->len), want, "golden %s %s", name, enc);
    }
    fclose(f);
    ok(ngold >= 60, "golden file has %d entries", ngold);
}

/* The short-string memo answers what counting answers: for the same text
 * under two encodings (different counts), for texts sharing their first and
 * last bytes (same memo slot candidates), again and again, up to the size
 * limit and past it. */
static void test_short_memo(void)
{
    static const char *const models[] = {"gpt-4o", "gpt-4", "claude-3-5-haiku", ""};
    char text[64];
    int bad = 0, n = 0;
    unsigned seed = 7;
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 2000; k++) {
            size_t len = (size_t)(k % 56);
            seed = seed * 1103515245u + 12345u;
            for (size_t i = 0; i < len; i++) text[i] = " aZ9.{\"\u00e9}x"[(seed >> (i % 24)) % 12];
            if (len > 2) text[0] = 'q', text[len - 1] = 'q'; /* same ends, different middles */
            text[len] = 0;
            for (size_t m = 0; m < 4; m++, n++)
                if (hr_count_tokens_cached(models[m], text, len) != hr_count_tokens(models[m], text, len)) bad++;
        }
    is_int(bad, 0, "short strings: the memo's count = a fresh count");
    ok(n == 24000, "short strings: %d counts compared", n);
    is_int((long long)hr_count_tokens_cached("gpt-4o", "user", 4), 1, "\"user\" is one token, remembered or not");
    is_int((long long)hr_count_tokens_cached("gpt-4o", "user", 4), 1, "... the second time too");
}

/* The short strings every request carries (roles, block types, schema
 * words) stay remembered side by side: a second pass over them counts none
 * again. With one memo slot per hash, "system" and "user" evicted each other
 * and were tokenized on every small chat request. */
static void test_short_memo_keeps_common(void)
{
    static const char *const words[] = {"system", "user", "assistant", "tool", "developer", "text", "tool_use",
                                        "tool_result", "function", "image_url", "input_text", "output_text",
                                        "message", "function_call", "function_call_output", "object", "string",
                                        "array", "integer", "boolean", "type", "auto", "ephemeral", "stop",
                                        "end_turn", "You are a helpful assistant."};
    static const char *const models[] = {"gpt-4o", "gpt-4", "claude-3-5-haiku"};
    const size_t nw = sizeof words / sizeof *words;
    for (size_t m = 0; m < 3; m++) {
        for (size_t i = 0; i < nw; i++) hr_count_tokens_cached(models[m], words[i], strlen(words[i]));
        uint64_t before = hr_token_short_misses();
        int bad = 0;
        for (int pass = 0; pass < 3; pass++)
            for (size_t i = 0; i < nw; i++)
                if (hr_count_tokens_cached(models[m], words[i], strlen(words[i])) !=
                    hr_count_tokens(models[m], words[i], strlen(words[i])))
                    bad++;
        is_int(bad, 0, "%s: %zu common short strings, the memo's counts = fresh counts", models[m], nw);
        is_int((long long)(hr_token_short_misses() - before), 0, "%s: none of them counted again on later passes",
               models[m]);
    }
}

/* Strings past the memo's size (a tool description, an assistant turn, a
 * short tool output) are remembered by content: an agent resends them every
 * turn. The cache answers what counting answers, per encoding, and the
 * second pass over the same texts is all hits. */
static void test_mid_cache(void)
{
    static const char *const models[] = {"gpt-4o", "gpt-4", "claude-3-5-haiku"};
    static char texts[40][1600];
    size_t lens[40];
    unsigned seed = 11;
    for (int k = 0; k < 40; k++) {
        lens[k] = 49 + (size_t)k * 39; /* 49 .. 1570 bytes */
        for (size_t i = 0; i < lens[k]; i++) {
            seed = seed * 1103515245u + 12345u;
            texts[k][i] = "the quick brown fox 0123 {\"k\": [1, 2]}\n"[(seed >> 16) % 38];
        }
        texts[k][lens[k]] = 0;
    }
    int bad = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t h0, l0, h1, l1;
        hr_token_cache_counters(&h0, &l0);
        for (int k = 0; k < 40; k++)
            for (size_t m = 0; m < 3; m++)
                if (hr_count_tokens_cached(models[m], texts[k], lens[k]) != hr_count_tokens(models[m], texts[k], lens[k]))
                    bad++;
        hr_token_cache_counters(&h1, &l1);
        if (pass == 1) {
            is_int((long long)(l1 - l0), 120, "mid-size strings: 120 cache lookups on the second pass");
            is_int((long long)(h1 - h0), 120, "mid-size strings: all of them hits");
        }
    }
    is_int(bad, 0, "mid-size strings (49-1570 bytes): the cache's count = a fresh count, per encoding");
}

static void test_edges(void)
{
    enum hr_encoding O = HR_ENC_O200K_BASE, C = HR_ENC_CL100K_BASE;
    is_int(cntn(O, "", 0), 0, "empty -> 0");
    is_int(cntn(C, NULL, 0), 0, "NULL -> 0");
    is_int(cntn(HR_ENC_ESTIMATE, "", 0), 0, "estimate of empty -> 0");
    /* Small counts checked against the reference by hand. */
    is_int(cnt(O, "Hello world"), 2, "o200k Hello world");
    is_int(cnt(C, "hello, I'm fine 12345"), 8, "cl100k short sentence");
    /* Invalid UTF-8: valid runs count on their own, each bad byte is one token. */
    const char *bad[] = {"ab\xff" "cd", "\xed\xa0\x80", "x\xc0\xaf" "y", "\xe2\x82", "\xf4\x90\x80\x80",
                         "caf\xc3", "\x80\x80\x80", "\xf0\x9f\x98", "ok \xed\xbf\xbf ok"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const uint8_t *s = (const uint8_t *)bad[i];
        size_t n = strlen(bad[i]), want = 0, pos = 0;
        for (int e = 0; e < 2; e++) {
            want = 0;
            pos = 0;
            while (pos < n) {
                size_t v = hr_utf8_valid_prefix(s + pos, n - pos);
                want += cntn((enum hr_encoding)e, (const char *)s + pos, v);
                pos += v;
                if (pos < n) { want++; pos++; }
            }
            is_int(cntn((enum hr_encoding)e, bad[i], n), want, "invalid utf-8 case %zu %s", i,
                   hr_encoding_name((enum hr_encoding)e));
        }
    }
    is_int(cnt(O, "\xed\xa0\x80"), 3, "lone surrogate (CESU) = 3 byte tokens");
    is_int(hr_utf8_valid_prefix((const uint8_t *)"\xe0\x80\x80", 3), 0, "overlong 3-byte rejected");
    is_int(hr_utf8_valid_prefix((const uint8_t *)"\xf0\x9f\x98\x80", 4), 4, "emoji accepted");
    /* Embedded NUL is ordinary text. */
    is_int(cntn(O, "a\0b", 3), cntn(O, "a\0b", 3), "NUL bytes do not truncate");
    ok(cntn(O, "a\0b", 3) >= 2, "NUL counted");
    /* Whitespace and digit runs. */
    char ws[4001];
    memset(ws, ' ', 4000);
    ws[4000] = 0;
    ok(cnt(O, ws) >= 1 && cnt(O, ws) <= 4000, "4000 spaces sane (%zu)", cnt(O, ws));
}

static void test_huge(void)
{
    size_t n = 1 << 20;
    char *s = gen_letters(n);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t co = cntn(HR_ENC_O200K_BASE, s, n), cc = cntn(HR_ENC_CL100K_BASE, s, n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    ok(co > n / 4 && co < n / 1.2, "1 MiB single-word o200k count sane (%zu)", co);
    ok(cc > n / 4 && cc < n / 1.2, "1 MiB single-word cl100k count sane (%zu)", cc);
    ok(secs < 20.0, "1 MiB single word counted in %.2fs (not quadratic)", secs);
    memset(s, 'a', n);
    size_t ca = cntn(HR_ENC_O200K_BASE, s, n);
    ok(ca > 0 && ca < n / 4, "1 MiB of 'a' (%zu tokens)", ca);
    /* A 1 MiB blob without spaces but with punctuation and digits: many short pieces. */
    for (size_t i = 0; i < n; i++)
        s[i] = "aZ9+/=_-."[(i * 7 + i / 3) % 9];
    ok(cntn(HR_ENC_CL100K_BASE, s, n) > n / 10, "1 MiB no-space mixed blob");
    free(s);
}

/* The small (tiktoken's rescan) and heap merges must agree on every piece. */
static void test_merge_equiv(void)
{
    char err[512];
    struct hr_bpe *b = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/data/o200k_base.tiktoken", srcdir);
    if (!ok(hr_bpe_load(path, &b, err, sizeof err) == 0, "direct load of %s", path))
        return;
    uint32_t seed = 7;
    int agree = 1;
    uint8_t buf[128];
    const char *alpha = "aeioustrnl ETAO.,'0123\xc3\xa9\xe6\x97\xa5";
    size_t al = strlen(alpha);
    for (int t = 0; t < 20000 && agree; t++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 2 + (seed >> 16) % 120;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)alpha[(seed >> 16) % al];
        }
        agree = hr_bpe_count_small(b, buf, n) == hr_bpe_count_heap(b, buf, n);
    }
    ok(agree, "small and heap BPE agree on 20000 random pieces");
    is_int(hr_bpe_size(b), 199998, "o200k has 199998 ranks");
    hr_bpe_free(b);
    /* Malformed table files are refused with a line number. */
    char tmp[] = "/tmp/hr_tok_badXXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        ssize_t w = write(fd, "IQ== 0\n!!!! 1\n", 14);
        (void)w;
        close(fd);
        ok(hr_bpe_load(tmp, &b, err, sizeof err) < 0 && strstr(err, ":2:"), "bad table refused: %s", err);
        unlink(tmp);
    }
    ok(hr_bpe_load("/nonexistent/x.tiktoken", &b, err, sizeof err) < 0 && strstr(err, "/nonexistent"),
       "missing table names the file: %s", err);
}

static void test_models(void)
{
    struct { const char *m; enum hr_encoding e; } t[] = {
        {"gpt-4o", HR_ENC_O200K_BASE}, {"gpt-4o-mini-2024-07-18", HR_ENC_O200K_BASE},
        {"gpt-4.1-nano", HR_ENC_O200K_BASE}, {"gpt-5", HR_ENC_O200K_BASE}, {"o1-mini", HR_ENC_O200K_BASE},
        {"o3", HR_ENC_O200K_BASE}, {"o4-mini", HR_ENC_O200K_BASE}, {"chatgpt-4o-latest", HR_ENC_O200K_BASE},
        {"openai/gpt-4o", HR_ENC_O200K_BASE}, {"GPT-4O", HR_ENC_O200K_BASE},
        {"ft:gpt-4o-mini-2024-07-18:acme::AbC123", HR_ENC_O200K_BASE}, {"ft:gpt-3.5-turbo:acme::x", HR_ENC_CL100K_BASE},
        {"openai/ft:gpt-4.1-nano:acme:run:y", HR_ENC_O200K_BASE}, {"ft:", HR_ENC_ESTIMATE}, {"ft:llama-3", HR_ENC_ESTIMATE},
        {"gpt-4", HR_ENC_CL100K_BASE}, {"gpt-4-turbo", HR_ENC_CL100K_BASE}, {"gpt-3.5-turbo", HR_ENC_CL100K_BASE},
        {"text-embedding-3-small", HR_ENC_CL100K_BASE}, {"text-embedding-ada-002", HR_ENC_CL100K_BASE},
        {"claude-sonnet-4-5", HR_ENC_ESTIMATE}, {"claude-3-5-haiku-latest", HR_ENC_ESTIMATE},
        {"llama-3", HR_ENC_ESTIMATE}, {"o100x", HR_ENC_ESTIMATE}, {"", HR_ENC_ESTIMATE}, {NULL, HR_ENC_ESTIMATE},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        is_str(hr_encoding_name(hr_encoding_for_model(t[i].m)), hr_encoding_name(t[i].e), "model %s",
               t[i].m ? t[i].m : "(null)");
    enum hr_encoding e;
    ok(hr_encoding_from_name("p50k_base", &e) < 0, "unknown encoding name refused");
    const char *s = "The quick brown fox jumps over the lazy dog.";
    is_int(hr_count_tokens("gpt-4o", s, strlen(s)), cnt(HR_ENC_O200K_BASE, s), "hr_count_tokens uses the model");
    ok(hr_count_tokens("claude-opus-4", s, strlen(s)) >= cnt(HR_ENC_O200K_BASE, s), "claude estimate >= o200k");
}

/* Without tables (bad HEADROOM_DATA_DIR) init fails with a useful message and counting falls
 * back to the estimator. Runs in a child: the tables load once per process. */
static void test_no_tables(void)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        setenv("HEADROOM_DATA_DIR", "/nonexistent-hr-data", 1);
        char err[512] = "";
        int rc = hr_tokens_init(err, sizeof err);
        size_t c = hr_count_tokens("gpt-4o", "hello world, this is text", 25);
        char out[700];
        int n = snprintf(out, sizeof out, "%d %zu %d %s", rc, c, hr_tokens_exact(HR_ENC_O200K_BASE), err);
        ssize_t w = write(pfd[1], out, (size_t)n);
        (void)w;
        _exit(0);
    }
    close(pfd[1]);
    char buf[700] = "";
    ssize_t r = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    if (r > 0)
        buf[r] = 0;
    int rc = 0, exact = 1;
    size_t c = 0;
    int pos = 0;
    sscanf(buf, "%d %zu %d %n", &rc, &c, &exact, &pos);
    ok(rc < 0, "init fails without tables (rc=%d)", rc);
    ok(strstr(buf, "HEADROOM_DATA_DIR") && strstr(buf, "o200k_base.tiktoken"), "error says what and how: %s",
       buf + pos);
    ok(c >= 4 && c <= 12 && !exact, "fallback estimate works without tables (%zu)", c);
}

static size_t seq[512];
static void *worker(void *arg)
{
    (void)arg;
    char err[256];
    hr_tokens_init(err, sizeof err);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < ngold; i++)
            if (gold[i].len < 200000 && cntn(gold[i].enc, gold[i].text, gold[i].len) != seq[i])
                return (void *)1;
    return NULL;
}

static void test_threads(void)
{
    for (int i = 0; i < ngold; i++)
        seq[i] = gold[i].len < 200000 ? cntn(gold[i].enc, gold[i].text, gold[i].len) : 0;
    pthread_t th[6];
    int bad = 0;
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    is_int(bad, 0, "6 threads counting the corpus concurrently agree with the sequential counts");
}

/* The ASCII fast path finds the same pre-token as the general matcher, for
 * both patterns,
 * at every position: of the corpus, and of random strings built from pieces
 * chosen to sit on its edges (contractions, control bytes, non-ASCII letters,
 * digits, symbols and spaces next to ASCII). */
static void test_ascii_fast_path(void)
{
    static const char *const alpha[] = {"a", "z", "A", "Z", "0", "9", " ", "  ", "\t", "\n", "\r", "\r\n", "'",
        "'s", "'ll", "'re", "'VE", "'T", "\"", "{", "}", ":", ",", ".", "/", "//", "-", "_", "@", "[", "]",
        "\xc3\xa9", "\xc3\x89", "\xd9\xa3", "\xe2\x84\xa2", "\xf0\x9f\x98\x80", "\xc2\xa0", "\xc7\x85",
        "\xca\xb0", "\xe4\xb8\xad", "\x01", "\x7f", "\v", "\f", "\x1c", "\x1f", "\xe2\x80\x83", "RE", "x'"};
    long bad = 0, checked = 0;
    char buf[512];
    unsigned seed = 12345;
    for (int g = 0; g <= ngold + 60000; g++) {
        const uint8_t *s;
        size_t n;
        if (g < ngold) {
            if (gold[g].len > 65536)
                continue; /* every position of one long word would take quadratic time */
            s = (const uint8_t *)gold[g].text;
            n = gold[g].len;
        } else {
            n = 0;
            for (int k = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12; k > 0; k--) {
                const char *p = alpha[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof alpha / sizeof *alpha)];
                memcpy(buf + n, p, strlen(p));
                n += strlen(p);
            }
            s = (const uint8_t *)buf;
        }
        size_t v = hr_utf8_valid_prefix(s, n);
        for (size_t pos = 0; pos < v; pos++) {
            if ((s[pos] & 0xC0) == 0x80)
                continue; /* inside a code point */
            static const enum hr_pretok pts[] = {HR_PRETOK_O200K, HR_PRETOK_CL100K};
            for (size_t k = 0; k < 2; k++) {
                checked++;
                if (hr_pretok_next(pts[k], s, v, pos) != hr_pretok_next_general(pts[k], s, v, pos) && bad++ < 5)
                    tap_diag("fast path (%s) differs at %zu of %s", k ? "cl100k" : "o200k", pos,
                             g < ngold ? gold[g].name : "a random string");
            }
        }
    }
    ok(bad == 0, "ASCII fast path = general matcher at %ld positions (o200k and cl100k)", checked);
}

/* Counting in parts at hr_tokens_split_point gives the whole text's count,
 * whatever the part size, on every corpus text and encoding: the pipeline
 * counts large tool outputs this way, on several threads. */
static void test_parts(void)
{
    static const size_t steps[] = {1, 2, 7, 64, 500, 4096};
    for (int e = HR_ENC_O200K_BASE; e <= HR_ENC_ESTIMATE; e++) {
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
            int bad = 0, cuts = 0;
            for (int g = 0; g < ngold; g++) {
                const char *t = gold[g].text;
                size_t len = gold[g].len, sum = 0;
                for (size_t off = 0; off < len;) {
                    size_t end = hr_tokens_split_point((enum hr_encoding)e, t, len, off + steps[s]);
                    if (end > len || end <= off) {
                        bad++;
                        break;
                    }
                    sum += hr_count_tokens_part((enum hr_encoding)e, t + off, end - off);
                    cuts += end < len;
                    off = end;
                }
                if (hr_count_tokens_total((enum hr_encoding)e, sum, len) != cntn((enum hr_encoding)e, t, len)) {
                    tap_diag("%s: parts of ~%zu bytes disagree", gold[g].name, steps[s]);
                    bad++;
                }
            }
            ok(bad == 0 && (steps[s] > 500 || cuts > 0), "%s: counting in parts of >= %zu bytes (%d cuts) = whole",
               hr_encoding_name((enum hr_encoding)e), steps[s], cuts);
        }
    }
}

int main(void)
{
    srcdir = getenv("srcdir");
    if (!srcdir || !*srcdir)
        srcdir = ".";
    test_no_tables();  /* before anything forks threads */
    if (!getenv("HEADROOM_DATA_DIR")) {
        static char dd[1024];
        snprintf(dd, sizeof dd, "%s/data", srcdir);
        setenv("HEADROOM_DATA_DIR", dd, 1);
    }
    char err[512] = "";
    int rc = hr_tokens_init(err, sizeof err);
    if (!is_int(rc, 0, "hr_tokens_init %s", err))
        return tap_exit();
    ok(hr_tokens_init(err, sizeof err) == 0, "init is idempotent");
    ok(hr_tokens_exact(HR_ENC_O200K_BASE) && hr_tokens_exact(HR_ENC_CL100K_BASE), "exact counts available");
    test_golden();
    test_parts();
    test_ascii_fast_path();
    test_edges();
    test_short_memo();
    test_short_memo_keeps_common();
    test_mid_cache();
    test_models();
    test_merge_equiv();
    test_huge();
    test_threads();
    for (int i = 0; i < ngold; i++)
        free(gold[i].text);
    return tap_exit();
}
