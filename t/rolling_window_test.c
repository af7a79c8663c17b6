/* t/rolling_window_test.c — rolling_window: the model context table, nothing done when
 * a request fits, oldest tool outputs dropped first, then oldest whole turns (OpenAI
 * and Anthropic shapes) with the system prompt, the last two turns and tool call /
 * result pairs kept, honest token accounting (screenshots, PDFs and signatures as
 * their provider bills them), config errors, hostile input; Responses `input`
 * items (calls and outputs paired by call_id, reasoning with its turn,
 * instructions and developer items kept, continued conversations left alone). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
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

/* Tokens inside v: text as the fake host counts it (ceil(bytes/4)), the
 * data this test sends as its provider bills it: the 1280x800 screenshot
 * 1366 (Anthropic) or 1105 (OpenAI), an image by URL 1600 (Anthropic), the
 * 3-page PDF 4500, a signature 0. */
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
    if (!json_is_object(v))
        return n;
    const char *type = json_string_value(json_object_get(v, "type"));
    json_object_foreach((json_t *)v, k, x) {
        if (!strcmp(k, "source") && type && !strcmp(type, "image"))
            n += json_object_get(x, "url") ? 1600 : 1366;
        else if (!strcmp(k, "source") && type && !strcmp(type, "document"))
            n += 4500;
        else if (!strcmp(k, "image_url") && type && !strcmp(type, "image_url"))
            n += 1105;
        else if (strcmp(k, "signature") && strcmp(k, "encrypted_content"))
            n += strings(x);
    }
    return n;
}

/* The request total as the host counts it: every string (fake: ceil(bytes/4))
 * under system, tools and messages, data as billed, plus 3 per message. */
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

/* A Chat tool call and its result of `bytes` bytes, appended to messages. */
static void add_call(json_t *m, const char *id, size_t bytes, char c)
{
    json_array_append_new(m, json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                       "tool_calls", "id", id, "type", "function", "function", "name", "grep",
                                       "arguments", "{}"));
    json_array_append_new(m, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", id, "content", big(bytes, c)));
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
        add_call(m, id, tool_bytes, (char)('a' + t % 26));
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

/* ---- Responses: `input` items, `instructions` */

/* The host's count of a Responses request: instructions, tools, input
 * (a string, or items at 3 tokens each). */
static long long responses_count(const json_t *b)
{
    const json_t *in = json_object_get(b, "input");
    return strings(json_object_get(b, "instructions")) + strings(json_object_get(b, "tools")) + strings(in) +
           3 * (long long)json_array_size(in);
}

/* A Responses request through the fake host: its units are the string
 * outputs of *_output items, as the host's adapter finds them. */
static struct result run_responses(void *s, json_t *body)
{
    struct fh_request r;
    struct result out;
    size_t i;
    json_t *it;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.req.wire_format = HR_WIRE_OPENAI_RESPONSES;
    json_array_foreach(json_object_get(body, "input"), i, it) {
        const char *type = json_string_value(json_object_get(it, "type"));
        json_t *o = json_object_get(it, "output");
        if (!type || (strcmp(type, "function_call_output") && strcmp(type, "custom_tool_call_output")) ||
            !json_is_string(o) || r.req.n_units == FH_MAX_UNITS)
            continue;
        struct hr_unit *u = &r.units[r.req.n_units];
        *u = (struct hr_unit){.struct_size = sizeof *u, .message_index = (uint32_t)i, .text = json_string_value(o),
                              .len = json_string_length(o), .type = HR_CT_UNKNOWN};
        u->tokens = fh_count_tokens("", u->text, u->len);
        r.target[r.req.n_units] = it;
        r.key[r.req.n_units] = "output";
        r.req.n_units++;
    }
    out.rc = headroom_plugin.apply(s, &r.req);
    snprintf(out.tag, sizeof out.tag, "%s", r.tag);
    out.saved = r.tokens_saved;
    out.removed = r.tokens_removed;
    out.body_edited = r.req.body_edited;
    fh_request_free(&r);
    return out;
}

/* Codex-shaped: a developer item, then `turns` turns of user words,
 * reasoning (encrypted), a call (function_call; custom_tool_call in turn 1;
 * local_shell_call in turn 2), its output of `out_bytes`, reasoning, answer. */
static json_t *responses_conv(int turns, size_t out_bytes, size_t ask_bytes)
{
    json_t *in = json_array();
    json_array_append_new(in, json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "type", "message", "role", "developer", "content",
                                        "type", "input_text", "text", "Sandbox: read-only."));
    for (int t = 0; t < turns; t++) {
        char id[32], rs[32];
        snprintf(id, sizeof id, "call_%d", t);
        snprintf(rs, sizeof rs, "rs_%d", t);
        json_array_append_new(in, json_pack("{s:s,s:s,s:[{s:s,s:o}]}", "type", "message", "role", "user", "content",
                                            "type", "input_text", "text", big(ask_bytes + 8, (char)('A' + t % 26))));
        json_array_append_new(in, json_pack("{s:s,s:s,s:[],s:o}", "type", "reasoning", "id", rs, "summary",
                                            "encrypted_content", big(4000, 'E')));
        if (t == 1)
            json_array_append_new(in, json_pack("{s:s,s:s,s:s,s:s}", "type", "custom_tool_call", "call_id", id,
                                                "name", "apply_patch", "input", "*** Begin Patch"));
        else if (t == 2)
            json_array_append_new(in, json_pack("{s:s,s:s,s:s,s:{s:s,s:[s]}}", "type", "local_shell_call", "id",
                                                "lsh_2", "call_id", id, "action", "type", "exec", "command", "ls"));
        else
            json_array_append_new(in, json_pack("{s:s,s:s,s:s,s:s}", "type", "function_call", "call_id", id, "name",
                                                "shell", "arguments", "{}"));
        json_array_append_new(in, json_pack("{s:s,s:s,s:o}", "type", t == 1 ? "custom_tool_call_output"
                                                                         : "function_call_output",
                                            "call_id", id, "output", big(out_bytes, (char)('a' + t % 26))));
        json_array_append_new(in, json_pack("{s:s,s:s,s:[],s:o}", "type", "reasoning", "id", "rs_b", "summary",
                                            "encrypted_content", big(4000, 'E')));
        json_array_append_new(in, json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "type", "message", "role", "assistant",
                                            "content", "type", "output_text", "text", "done"));
    }
    return json_pack("{s:s,s:s,s:[{s:s,s:s}],s:o}", "model", "gpt-4o", "instructions", "You are Codex.", "tools",
                     "type", "function", "name", "shell", "input", in);
}

/* Every *_output item answers a call item present, and every call is answered. */
static int responses_pairs_intact(const json_t *body)
{
    const json_t *in = json_object_get(body, "input");
    size_t i, k;
    json_t *a, *b;
    json_array_foreach(in, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        const char *id = json_string_value(json_object_get(a, "call_id"));
        if (!type || !id)
            continue;
        int out = strstr(type, "_output") != NULL, found = 0;
        json_array_foreach(in, k, b) {
            const char *t2 = json_string_value(json_object_get(b, "type"));
            const char *i2 = json_string_value(json_object_get(b, "call_id"));
            found |= t2 && i2 && !strcmp(i2, id) && (strstr(t2, "_output") != NULL) != out;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- data as a client sends it: a real PNG, a real PDF, in base64 */

static char *b64(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static size_t png_chunk(unsigned char *at, const char *type, const unsigned char *data, uint32_t len)
{
    at[0] = (unsigned char)(len >> 24), at[1] = (unsigned char)(len >> 16), at[2] = (unsigned char)(len >> 8);
    at[3] = (unsigned char)len;
    memcpy(at + 4, type, 4);
    if (len) memcpy(at + 8, data, len);
    uint32_t crc = (uint32_t)crc32(0, at + 4, len + 4);
    at[8 + len] = (unsigned char)(crc >> 24), at[9 + len] = (unsigned char)(crc >> 16);
    at[10 + len] = (unsigned char)(crc >> 8), at[11 + len] = (unsigned char)crc;
    return 12 + len;
}

/* A valid RGB PNG of w x h, base64: the first `noisy` rows random (so it
 * weighs what a screenshot does), the rest white. */
static char *png_b64(uint32_t w, uint32_t h, uint32_t noisy)
{
    size_t row = 1 + (size_t)w * 3, raw_len = row * h;
    unsigned char *raw = malloc(raw_len);
    uint32_t seed = 11;
    for (size_t y = 0; y < h; y++) {
        raw[y * row] = 0;
        for (size_t x = 1; x < row; x++) {
            seed = seed * 1103515245u + 12345u;
            raw[y * row + x] = y < noisy ? (unsigned char)(seed >> 16) : 0xff;
        }
    }
    uLongf zlen = compressBound((uLong)raw_len);
    unsigned char *png = malloc(zlen + 64), ihdr[13] = {0};
    for (int i = 0; i < 4; i++) ihdr[i] = (unsigned char)(w >> (24 - 8 * i)), ihdr[4 + i] = (unsigned char)(h >> (24 - 8 * i));
    ihdr[8] = 8, ihdr[9] = 2; /* 8-bit RGB */
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    size_t n = 8 + png_chunk(png + 8, "IHDR", ihdr, 13);
    unsigned char *z = malloc(zlen);
    compress2(z, &zlen, raw, (uLong)raw_len, 1);
    n += png_chunk(png + n, "IDAT", z, (uint32_t)zlen);
    n += png_chunk(png + n, "IEND", NULL, 0);
    char *out = b64(png, n);
    free(raw), free(z), free(png);
    return out;
}

/* A small PDF of `pages` pages, base64. */
static char *pdf_b64(int pages)
{
    char pdf[4096], kids[1024] = "";
    size_t k = 0;
    for (int i = 0; i < pages; i++) k += (size_t)snprintf(kids + k, sizeof kids - k, "%d 0 R ", 3 + i);
    int n = snprintf(pdf, sizeof pdf, "%%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
                     "2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n", kids, pages);
    for (int i = 0; i < pages; i++)
        n += snprintf(pdf + n, sizeof pdf - (size_t)n,
                      "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n", 3 + i);
    n += snprintf(pdf + n, sizeof pdf - (size_t)n, "trailer\n<< /Root 1 0 R >>\n%%%%EOF\n");
    return b64((const unsigned char *)pdf, (size_t)n);
}

/* Claude Code's turns with a screenshot (a Read of a .png) in each of the
 * last `shots` turns' tool_result, a thinking block with its signature in
 * every assistant turn, and a 3-page PDF in the first user turn. */
static json_t *anthropic_shots(int turns, int shots, const char *shot, const char *pdf)
{
    json_t *b = anthropic_conv(turns, 16000);
    json_t *m = json_object_get(b, "messages");
    char sig[2049];
    memset(sig, 'S', 2048);
    sig[2048] = '\0';
    json_array_append_new(json_object_get(json_array_get(m, 0), "content"),
                          json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "document", "source", "type", "base64",
                                    "media_type", "application/pdf", "data", pdf));
    for (int t = 0; t < turns; t++) {
        json_array_insert_new(json_object_get(json_array_get(m, 4 * (size_t)t + 1), "content"), 0,
                              json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "Check the output.",
                                        "signature", sig));
        if (t < turns - shots)
            continue;
        json_t *tr = json_array_get(json_object_get(json_array_get(m, 4 * (size_t)t + 2), "content"), 0);
        json_t *text = json_incref(json_object_get(tr, "content"));
        json_object_set_new(tr, "content", json_pack("[{s:s,s:o},{s:s,s:{s:s,s:s,s:s}}]", "type", "text", "text", text,
                                                     "type", "image", "source", "type", "base64", "media_type",
                                                     "image/png", "data", shot));
    }
    return b;
}

/* Claude Code's first message: <system-reminder> blocks (CLAUDE.md, the
 * date) and, beside them, the user's task; then anthropic_conv's turns. */
static const char *TASK = "Fix the failing test in t/parser_test.c: the empty-array case returns -1.";

static json_t *claude_code_conv(int turns, size_t tool_bytes, size_t task_pad)
{
    json_t *b = anthropic_conv(turns, tool_bytes);
    json_t *first = json_array_get(json_object_get(b, "messages"), 0);
    char *task = malloc(strlen(TASK) + task_pad + 2);
    strcpy(task, TASK);
    if (task_pad) {
        strcat(task, "\n");
        memset(task + strlen(task), 'L', task_pad); /* a pasted log */
        task[strlen(TASK) + 1 + task_pad] = '\0';
    }
    json_object_set_new(first, "content",
                        json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type", "text", "text",
                                  "<system-reminder>\nAs you answer the user's questions, you can use the following "
                                  "context:\n# claudeMd\nRun `make check` before committing.\n</system-reminder>",
                                  "type", "text", "text",
                                  "<system-reminder>\n# currentDate\nToday's date is 2026-12-07.\n</system-reminder>",
                                  "type", "text", "text", task));
    free(task);
    return b;
}

/* The text of the last text part of message i (a string content too). */
static const char *last_text(const json_t *body, size_t i)
{
    const json_t *c = json_object_get(json_array_get(json_object_get(body, "messages"), i), "content");
    if (json_is_string(c))
        return json_string_value(c);
    return json_string_value(json_object_get(json_array_get(c, json_array_size(c) - 1), "text"));
}

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

    /* drop_turns no: outputs only, oldest first, those of the last two
     * turns last, until it fits. */
    {
        void *s2 = make("max_tokens", "8200", "drop_turns", "no");
        json_t *b = openai_conv("gpt-4o", 8, 16000);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        is_int(json_array_size(json_object_get(b, "messages")), 33, "drop_turns no: no message removed");
        is_str(r.tag, "rolling_window:outputs=7,turns=0,messages=0",
               "the older turns' 6 outputs, then the second-to-last turn's: it fits");
        is_str(content_of(b, 27), PH, "the second-to-last turn's output is the placeholder");
        ok(json_string_length(json_object_get(json_array_get(json_object_get(b, "messages"), 31), "content")) == 16000,
           "the last turn's output kept: the request fits without it going");
        ok(strstr(fh_log(), "dropped 7 older tool outputs (1 of them in the last two turns)") != NULL,
           "the INFO says one came from the last two turns");
        json_decref(b);
        drop(s2);
    }

    /* An agent's run on one prompt is one turn: its older outputs go (they
     * could not before, being in the last two turns), never the results the
     * model is about to read; a WARN when even that does not fit. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 1, 16000);
        json_t *m = json_object_get(b, "messages");
        json_array_remove(m, json_array_size(m) - 1); /* no "done": the agent is still at work */
        for (int c = 1; c <= 7; c++) {
            char id[32];
            snprintf(id, sizeof id, "call_run_%d", c);
            add_call(m, id, 16000, (char)('a' + c));
        }
        long long before = host_count(b);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        long long after = host_count(b);
        size_t n = json_array_size(m);
        ok(before > 8200 && after <= 8200 && strstr(r.tag, "turns=0,") && !strstr(r.tag, "over_budget"),
           "one turn of 8 tool outputs: %lld -> %lld tokens (%s)", before, after, r.tag);
        is_str(content_of(b, 1), "question 0", "the task kept");
        is_str(content_of(b, 3), PH, "the run's oldest output is the placeholder");
        ok(json_string_length(json_object_get(json_array_get(m, n - 1), "content")) == 16000,
           "the newest result, which the model is about to read, kept");
        ok(pairs_intact(b), "every call with its result");
        is_int(r.saved, before - after, "credited = recount difference");
        json_t *st = fh_stats("rolling_window");
        ok(json_integer_value(json_object_get(st, "recent_outputs_dropped")) > 0 &&
               json_integer_value(json_object_get(st, "recent_outputs_dropped")) ==
                   json_integer_value(json_object_get(st, "outputs_dropped")) &&
               json_integer_value(json_object_get(st, "first_user_dropped")) == 0,
           "/stats: every output dropped was in the last two turns (recent_outputs_dropped), no task went");
        json_decref(st);
        json_decref(b);

        /* The newest results alone over the budget: still over, the WARN. */
        b = openai_conv("gpt-4o", 2, 16000);
        m = json_object_get(b, "messages");
        add_call(m, "call_last", 90000, 'z');
        fh_log_clear();
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        n = json_array_size(m);
        ok(strstr(r.tag, "over_budget") != NULL, "the newest result alone over 8200: still over (%s)", r.tag);
        ok(json_string_length(json_object_get(json_array_get(m, n - 1), "content")) == 90000,
           "the newest result kept even so");
        ok(strstr(fh_log(), "WARNING:headroom.transforms.rolling_window:request still over its context budget") != NULL,
           "WARN says it still does not fit and what to do");
        ok(strstr(fh_log(), "raise max_tokens in headroom.conf's rolling_window block") != NULL,
           "the WARN names the budget's key and where it is (not the request's max_tokens)");
        json_decref(b);
        drop(s2);
    }

    /* The last two turns stay even when they alone are over budget (their
     * tool outputs become the placeholder); so does the first user message
     * (the task) when dropping it would not make the request fit either. */
    {
        void *s2 = make("max_tokens", "3000", NULL, NULL);
        json_t *b = openai_conv("gpt-4o", 4, 16000);
        struct result r = run_on(s2, b, HR_PROVIDER_OPENAI);
        json_t *m = json_object_get(b, "messages");
        is_int(json_array_size(m), 10, "system + the first user message + last two turns left");
        is_str(json_string_value(json_object_get(json_array_get(m, 0), "content")), "You are a coding agent.",
               "system prompt kept");
        is_str(content_of(b, 1), "question 0", "the first user message kept: without it the request is over too");
        is_str(content_of(b, 2), "question 2", "second-to-last turn kept");
        is_str(content_of(b, 4), PH, "its tool output is the placeholder (the last resort)");
        is_str(r.tag, "rolling_window:outputs=2,turns=2,messages=7", "it then fits");
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
        ok(!strcmp(content_of(b, 1), "question 0") && !strcmp(content_of(b, 2), "question 2"),
           "turns 0 (but its user message) and 1 dropped; turn 2 kept with its answer in turn 3");
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

    /* Screenshots, PDFs and signatures count as their provider bills them
     * (as the host counts the request): a 1280x800 PNG is 1280*800/750 =
     * 1366 tokens to Anthropic, 85 + 170*6 = 1105 to OpenAI, a PDF 1,500 a
     * page, a signature nothing. As text, the base64 of each screenshot made
     * ~150,000 fake tokens (~450,000 real ones): a conversation of ~38,000
     * was taken for ~490,000, turns dropped that fit, and the WARN said the
     * provider would likely refuse it. */
    {
        char *shot = png_b64(1280, 800, 90), *pdf3 = pdf_b64(3);
        ok(strlen(shot) > 450000, "the screenshot is %zu bytes of base64", strlen(shot));
        json_t *b = anthropic_shots(8, 3, shot, pdf3);
        json_t *orig = json_deep_copy(b);
        long long total = host_count(b);
        fh_log_clear();
        struct result r = run_on(s, b, HR_PROVIDER_ANTHROPIC); /* claude-sonnet-4-5: 200000 - 8192 */
        ok(total < 191808 && json_equal(b, orig) && r.tag[0] == '\0' && !r.body_edited,
           "Anthropic: 8 turns, 3 screenshots, a PDF (%lld tokens as billed) fit 191808: untouched (%s)", total,
           r.tag);
        ok(!strstr(fh_log(), "context budget"), "no over-budget INFO, no 'provider will likely refuse it' WARN");
        json_decref(b);

        /* Over a smaller budget: the log's count is the billed one, turns go
         * until it fits, the screenshots of the last two turns stay. */
        void *s2 = make("max_tokens", "12000", NULL, NULL);
        b = anthropic_shots(8, 3, shot, pdf3);
        long long before = host_count(b);
        fh_log_clear();
        r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        char want[96];
        snprintf(want, sizeof want, "over its context budget (%lld > 12000 tokens", before);
        ok(strstr(fh_log(), want) != NULL, "the INFO counts %lld tokens, as billed", before);
        long long after = host_count(b);
        ok(after <= 12000 && !strstr(r.tag, "turns=0") && !strstr(r.tag, "over_budget") && !strstr(fh_log(), "still over"),
           "fits after dropping older turns: %lld (%s)", after, r.tag);
        is_int(r.saved, before - after, "tokens credited = the billed recount's difference");
        json_t *m = json_object_get(b, "messages"), *om = json_object_get(orig, "messages");
        size_t n = json_array_size(m), on = json_array_size(om);
        /* tool_result content: [text, image]; the text may be the placeholder */
#define SHOT_OF(arr, i) \
    json_array_get(json_object_get(json_array_get(json_object_get(json_array_get(arr, i), "content"), 0), "content"), 1)
        ok(n >= 8 && json_equal(SHOT_OF(m, n - 2), SHOT_OF(om, on - 2)) &&
               json_equal(SHOT_OF(m, n - 6), SHOT_OF(om, on - 6)) && SHOT_OF(m, n - 2),
           "the last two turns' screenshots kept");
#undef SHOT_OF
        ok(json_equal(json_array_get(m, 0), json_array_get(om, 0)),
           "the first user message (with its PDF) kept: the last two turns' older text outputs went instead");
        ok(pairs_intact(b), "tool_use / tool_result pairs intact");
        json_decref(b);
        json_decref(orig);
        drop(s2);

        /* Chat: image_url parts of user turns, gpt-4o (128000 - 8192). */
        char *url = malloc(strlen(shot) + 32);
        sprintf(url, "data:image/png;base64,%s", shot);
        b = openai_conv("gpt-4o", 8, 16000);
        json_t *cm = json_object_get(b, "messages");
        for (size_t t = 5; t < 8; t++) {
            json_t *u = json_array_get(cm, 1 + 4 * t);
            json_t *q = json_incref(json_object_get(u, "content"));
            json_object_set_new(u, "content", json_pack("[{s:s,s:o},{s:s,s:{s:s}}]", "type", "text", "text", q, "type",
                                                        "image_url", "image_url", "url", url));
        }
        orig = json_deep_copy(b);
        total = host_count(b);
        fh_log_clear();
        r = run_on(s, b, HR_PROVIDER_OPENAI);
        ok(total < 119808 && json_equal(b, orig) && r.tag[0] == '\0' && !strstr(fh_log(), "context budget"),
           "Chat: 3 screenshots as image_url parts (%lld tokens as billed) fit gpt-4o: untouched (%s)", total, r.tag);
        json_decref(b);
        json_decref(orig);
        free(url);
        free(shot);
        free(pdf3);
    }

    /* An image by URL is billed 1,600 tokens for a few bytes: a request
     * whose bytes are under the budget is not taken to fit for that. */
    {
        void *s2 = make("max_tokens", "4000", NULL, NULL);
        json_t *m = json_array();
        for (int t = 0; t < 3; t++)
            json_array_append_new(m, json_pack("{s:s,s:[{s:s,s:s},{s:s,s:{s:s,s:s}}]}", "role", "user", "content",
                                               "type", "text", "text", "what is on this page?", "type", "image",
                                               "source", "type", "url", "url", "https://example.com/page.png"));
        json_t *b = json_pack("{s:s,s:o}", "model", "claude-sonnet-4-5", "messages", m);
        struct result r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        is_str(r.tag, "rolling_window:outputs=0,turns=1,messages=1,first_user_dropped",
               "three images by URL (~4,830 tokens in ~250 bytes) over 4000: the oldest turn dropped, the first "
               "user message with it (the request fits only without it)");
        ok(host_count(b) <= 4000 && json_array_size(m) == 2, "the two left fit (%lld)",
           host_count(b));
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

    /* Responses: turns of input items. */
    {
        json_t *in = json_loads(
            "[{\"role\":\"developer\",\"content\":\"rules\"},"
            "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"q0\"}]},"
            "{\"type\":\"reasoning\",\"id\":\"rs_0\",\"encrypted_content\":\"x\"},"
            "{\"type\":\"function_call\",\"id\":\"fc_0\",\"call_id\":\"c0\",\"name\":\"shell\"},"
            "{\"type\":\"function_call_output\",\"call_id\":\"c0\",\"output\":\"o\"},"
            "{\"role\":\"user\",\"content\":\"q1\"},"
            "{\"type\":\"local_shell_call\",\"id\":\"lsh_1\",\"call_id\":\"c1\"},"
            "{\"role\":\"user\",\"content\":\"q2\"},"
            "{\"type\":\"local_shell_call_output\",\"id\":\"lsh_1\",\"output\":\"o\"},"
            "{\"type\":\"mcp_approval_request\",\"id\":\"apr_1\",\"name\":\"deploy\"},"
            "{\"role\":\"system\",\"content\":\"more rules\"},"
            "{\"role\":\"user\",\"content\":\"q3\"},"
            "{\"type\":\"mcp_approval_response\",\"approval_request_id\":\"apr_1\",\"approve\":true},"
            "{\"role\":\"user\",\"content\":\"q4\"},"
            "{\"type\":\"custom_tool_call\",\"call_id\":\"c4\",\"name\":\"apply_patch\"},"
            "{\"role\":\"user\",\"content\":\"q5\"},"
            "{\"type\":\"custom_tool_call_output\",\"call_id\":\"c4\",\"output\":\"o\"},"
            "{\"type\":\"item_reference\",\"id\":\"msg_9\"}]",
            0, NULL);
        struct hr_rw_turns t;
        is_int(hr_rw_turns_build(in, 0, &t), 0, "responses: turns built");
        int want_turn[] = {0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 5, 5, 5};
        int turns_ok = t.n_msgs == 18 && t.n_turns == 6;
        for (size_t i = 0; turns_ok && i < 18; i++)
            turns_ok = t.turn_of[i] == want_turn[i];
        ok(turns_ok, "responses: a turn starts at each user message; reasoning, calls and outputs stay in theirs");
        ok(t.keep[0] && t.keep[10] && !t.keep[2] && !t.keep[8], "responses: developer and system items kept");
        is_int(hr_rw_group_end(&t, 0), 0, "function_call answered in its own turn: alone");
        is_int(hr_rw_group_end(&t, 1), 3, "local_shell_call answered by id in the next turn: tied (and on: turn 2 is tied to 3)");
        is_int(t.reach[1], 2, "local_shell_call_output found by the call's id");
        is_int(hr_rw_group_end(&t, 2), 3, "mcp_approval_request answered in the next turn: tied");
        is_int(hr_rw_group_end(&t, 4), 5, "custom_tool_call answered in the next turn: tied");
        hr_rw_turns_free(&t);
        json_decref(in);

        /* Outputs first, then whole turns; accounting exact; pairs intact. */
        void *s2 = make("max_tokens", "9000", NULL, NULL);
        json_t *b = responses_conv(8, 8000, 0);
        long long before = responses_count(b);
        struct result r = run_responses(s2, b);
        long long after = responses_count(b);
        json_t *items = json_object_get(b, "input");
        ok(before > 9000 && after <= 9000 && strstr(r.tag, "turns=0,"),
           "responses, outputs only: %lld -> %lld (%s)", before, after, r.tag);
        is_int(json_array_size(items), 1 + 8 * 6, "responses, outputs only: no item removed");
        is_int(r.saved, before - after, "responses: tokens credited = recount difference");
        json_decref(b);

        b = responses_conv(8, 8000, 8000);
        json_t *orig = json_deep_copy(b);
        before = responses_count(b);
        fh_log_clear();
        r = run_responses(s2, b);
        after = responses_count(b);
        items = json_object_get(b, "input");
        ok(after <= 9000 && strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0"), "responses, turns: %lld -> %lld (%s)",
           before, after, r.tag);
        is_int(r.saved, before - after, "responses, turns: credited (units + stage_tokens_removed) = recount difference");
        ok(r.removed > 0 && r.body_edited, "responses: removed items reported (%lld)", r.removed);
        is_str(json_string_value(json_object_get(b, "instructions")), "You are Codex.", "responses: instructions kept");
        is_str(json_string_value(json_object_get(json_array_get(items, 0), "role")), "developer",
               "responses: developer item kept first");
        is_str(json_string_value(json_object_get(json_array_get(items, 1), "role")), "user",
               "responses: then a turn's user message");
        size_t n = json_array_size(items), on = json_array_size(json_object_get(orig, "input"));
        /* the developer item, the task (kept: the last two turns' older
         * outputs go instead), then whole turns of 6 items */
        int last_two = n >= 14 && (n - 2) % 6 == 0 &&
                       json_equal(json_array_get(items, 1), json_array_get(json_object_get(orig, "input"), 1));
        for (size_t i = 0; i < 12 && last_two; i++) {
            json_t *it = json_array_get(items, n - 12 + i);
            last_two = json_equal(it, json_array_get(json_object_get(orig, "input"), on - 12 + i)) ||
                       (!strcmp(json_string_value(json_object_get(it, "type")), "function_call_output") &&
                        !strcmp(json_string_value(json_object_get(it, "output")), PH));
        }
        ok(last_two, "responses: the task kept, whole turns of 6 items gone, the last two turns' items kept (older "
                     "outputs as the placeholder)");
        ok(responses_pairs_intact(b), "responses: every call with its output (call_id)");
        ok(strstr(fh_log(), "turns (") && strstr(fh_log(), " items), now "), "responses: the INFO counts items");
        json_decref(orig);
        json_decref(b);

        /* A conversation OpenAI holds: left as sent, with a WARN. */
        const char *stored[] = {"previous_response_id", "conversation"};
        for (int i = 0; i < 2; i++) {
            b = responses_conv(8, 8000, 8000);
            json_object_set_new(b, stored[i], json_string("resp_1"));
            char *was = json_dumps(b, JSON_COMPACT);
            fh_log_clear();
            r = run_responses(s2, b);
            char *now = json_dumps(b, JSON_COMPACT);
            ok(!strcmp(was, now) && r.saved == 0 && !r.body_edited && strstr(r.tag, "continued,over_budget"),
               "responses with %s: sent as it is (%s)", stored[i], r.tag);
            ok(strstr(fh_log(), "WARNING:headroom.transforms.rolling_window:request over its context budget") &&
                   strstr(fh_log(), "can neither count nor drop") && strstr(fh_log(), "truncation"),
               "responses with %s: the WARN says why and what to do", stored[i]);
            free(was), free(now);
            json_decref(b);
        }
        /* An agent's context in user messages (Codex: AGENTS.md and
         * <environment_context> first in input) is kept as a system message
         * is; a message with the user's own words, or an image, is a turn. */
        json_t *ctx_in = json_loads(
            "[{\"type\":\"message\",\"role\":\"user\",\"content\":["
            "{\"type\":\"input_text\",\"text\":\"# AGENTS.md instructions for /repo\\n\\n<INSTRUCTIONS>\\nUse pytest.\\n</INSTRUCTIONS>\"},"
            "{\"type\":\"input_text\",\"text\":\"<environment_context>\\n  <cwd>/repo</cwd>\\n</environment_context>\\n\"}]},"
            "{\"role\":\"user\",\"content\":\"<user_instructions>be brief</user_instructions>\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<system-reminder>x</system-reminder>\"},"
            "{\"type\":\"text\",\"text\":\"fix the bug\"}]},"
            "{\"role\":\"assistant\",\"content\":\"ok\"},"
            "{\"role\":\"user\",\"content\":\"<a>b</c>\"},"
            "{\"role\":\"user\",\"content\":\"<environment_context>\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"<note>see</note>\"},"
            "{\"type\":\"input_image\",\"image_url\":\"https://x/y.png\"}]},"
            "{\"role\":\"user\",\"content\":[]},"
            "{\"role\":\"user\",\"content\":\"  <system-reminder>only</system-reminder>  \"}]",
            0, NULL);
        struct hr_rw_turns ct;
        is_int(hr_rw_turns_build(ctx_in, 0, &ct), 0, "agent context: turns built");
        ok(ct.n_msgs == 9 && ct.keep[0] && ct.keep[1] && ct.keep[8] && !ct.keep[2] && !ct.keep[3] && !ct.keep[4] &&
               !ct.keep[5] && !ct.keep[6] && !ct.keep[7],
           "agent context: AGENTS.md + <environment_context>, <user_instructions>, a lone <system-reminder> kept; "
           "the user's words beside a reminder, a mismatched or unclosed tag, an image, no parts are turns");
        is_int(ct.turn_of[2], 0, "agent context: the first turn starts at the user's words, after the context");
        ok(ct.anchor == ct.n_msgs, "anchor_first off: no anchor");
        hr_rw_turns_free(&ct);
        is_int(hr_rw_turns_build(ctx_in, 1, &ct), 0, "agent context, anchor_first: turns built");
        ok(ct.anchor == 2 && ct.keep[2] && ct.turn_of[2] == 0 && ct.turn_of[3] == 0 && !ct.keep[3] && ct.n_turns == 5,
           "the first message with the user's words (beside a reminder) is the anchor, kept, still starting its turn");
        hr_rw_turns_free(&ct);
        json_decref(ctx_in);
        b = responses_conv(8, 8000, 8000);
        json_t *ctx = json_pack("{s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "type", "message", "role", "user", "content",
                                "type", "input_text", "text", "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>\nrules\n</INSTRUCTIONS>",
                                "type", "input_text", "text", "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>");
        json_array_insert(json_object_get(b, "input"), 1, ctx);
        long long ctx_before = responses_count(b);
        r = run_responses(s2, b);
        items = json_object_get(b, "input");
        ok(strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0") && json_equal(json_array_get(items, 1), ctx) &&
               responses_pairs_intact(b) && r.saved == ctx_before - responses_count(b),
           "responses, turns dropped: Codex's AGENTS.md message stays second, after the developer item (%s)", r.tag);
        json_decref(ctx);
        json_decref(b);

        /* previous_response_id null or "" is not a continuation. */
        b = responses_conv(8, 8000, 8000);
        json_object_set_new(b, "previous_response_id", json_null());
        json_object_set_new(b, "conversation", json_null());
        r = run_responses(s2, b);
        ok(strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0"), "previous_response_id null: turns dropped (%s)", r.tag);
        json_decref(b);

        /* input as a string: counted, nothing to drop, a WARN. */
        json_t *words = big(60000, 'w');
        b = json_pack("{s:s,s:s,s:O}", "model", "gpt-4o", "instructions", "x", "input", words);
        fh_log_clear();
        r = run_responses(s2, b);
        ok(r.rc == HR_OK && json_equal(json_object_get(b, "input"), words) && strstr(r.tag, "over_budget") &&
               strstr(fh_log(), "still over its context budget (15001 > 9000"),
           "responses, input as a string: left alone, counted (%s)", r.tag);
        json_decref(words);
        json_decref(b);

        /* Hostile Responses shapes. */
        const char *hostile[] = {
            "{\"model\":\"gpt-4o\",\"input\":7}",
            "{\"model\":\"gpt-4o\",\"input\":{}}",
            "{\"model\":\"gpt-4o\",\"input\":[1,null,[],{},{\"type\":7},{\"type\":\"\"},{\"type\":\"_output\"}]}",
            "{\"model\":\"gpt-4o\",\"previous_response_id\":5,\"conversation\":null,\"input\":["
            "{\"type\":\"function_call_output\",\"call_id\":1,\"output\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"},"
            "{\"type\":\"function_call\",\"call_id\":\"a\",\"id\":\"a\"},{\"role\":\"user\",\"content\":\"q\"},"
            "{\"type\":\"function_call_output\",\"id\":\"a\"},{\"type\":\"mcp_approval_response\"},"
            "{\"type\":\"mcp_approval_request\"},{\"role\":\"user\",\"content\":\"q2\"},{\"role\":\"user\",\"content\":\"q3\"}]}",
        };
        void *s3 = make("max_tokens", "10", NULL, NULL);
        for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
            b = json_loads(hostile[i], 0, NULL);
            r = run_responses(s3, b);
            is_int(r.rc, HR_OK, "hostile responses input %zu: ok (%s)", i, r.tag);
            json_decref(b);
        }
        drop(s3);
        drop(s2);
    }

    /* The first user message is the task: Claude Code sends it beside its
     * <system-reminder> blocks, Codex after its AGENTS.md message, a Chat
     * client first. It stays while the turns after it go (before, it went
     * with the oldest turn and the model no longer saw what it was asked). */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = claude_code_conv(8, 16000, 0);
        json_t *orig = json_deep_copy(b);
        long long before = host_count(b);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        long long after = host_count(b);
        json_t *m = json_object_get(b, "messages"), *om = json_object_get(orig, "messages");
        ok(before > 8200 && after <= 8200 && strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0") &&
               !strstr(r.tag, "first_user_dropped"),
           "Claude Code shape over budget: %lld -> %lld (%s)", before, after, r.tag);
        ok(json_equal(json_array_get(m, 0), json_array_get(om, 0)),
           "Claude Code: the first message (reminders and the task) is sent first, as it came");
        const char *next = last_text(b, 1);
        ok(next && !strncmp(next, "question ", 9) && strcmp(next, "question 0") &&
               !strcmp(json_string_value(json_object_get(json_array_get(m, 1), "role")), "user"),
           "Claude Code: then the user message of the oldest turn kept (%s)", next ? next : "(none)");
        ok(pairs_intact(b), "Claude Code: tool_use / tool_result pairs intact");
        is_int(r.saved, before - after, "Claude Code: tokens credited = recount difference");
        size_t n = json_array_size(m);
        int last_two = 1;
        for (size_t i = 0; i < 8; i++)
            last_two &= json_equal(json_array_get(m, n - 8 + i), json_array_get(om, json_array_size(om) - 8 + i));
        ok(last_two, "Claude Code: last two turns untouched");
        ok(!strstr(fh_log(), "WARNING"), "Claude Code: no WARN");
        json_decref(b);
        json_decref(orig);

        /* Chat: the first user message stays after the system message. */
        b = openai_conv("gpt-4o", 8, 16000);
        before = host_count(b);
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(host_count(b) <= 8200 && r.saved == before - host_count(b) && pairs_intact(b) &&
               !strcmp(content_of(b, 1), "question 0") && strcmp(content_of(b, 2), "question 1") &&
               !strncmp(content_of(b, 2), "question ", 9),
           "Chat: system, \"question 0\", then the oldest turn kept (%s, %s)", content_of(b, 2), r.tag);
        json_decref(b);
        drop(s2);

        /* Responses (Codex): developer item, AGENTS.md message, the task. */
        s2 = make("max_tokens", "9000", NULL, NULL);
        b = responses_conv(8, 8000, 4000);
        json_t *ctx = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "type", "message", "role", "user", "content", "type",
                                "input_text", "text", "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>\nrules\n</INSTRUCTIONS>");
        json_array_insert_new(json_object_get(b, "input"), 1, ctx);
        orig = json_deep_copy(b);
        before = responses_count(b);
        r = run_responses(s2, b);
        json_t *in = json_object_get(b, "input"), *oin = json_object_get(orig, "input");
        ok(responses_count(b) <= 9000 && r.saved == before - responses_count(b) && responses_pairs_intact(b) &&
               strstr(r.tag, "turns=") && !strstr(r.tag, "turns=0") && !strstr(r.tag, "first_user_dropped"),
           "Responses over budget: %lld -> %lld (%s)", before, responses_count(b), r.tag);
        ok(json_equal(json_array_get(in, 0), json_array_get(oin, 0)) &&
               json_equal(json_array_get(in, 1), json_array_get(oin, 1)) &&
               json_equal(json_array_get(in, 2), json_array_get(oin, 2)),
           "Responses: developer item, AGENTS.md message, then the first user message (the task) as sent");
        const char *role3 = json_string_value(json_object_get(json_array_get(in, 3), "role"));
        ok(role3 && !strcmp(role3, "user") && !json_equal(json_array_get(in, 3), json_array_get(oin, 3)),
           "Responses: then a later turn's user message: the rest of the first turn went");
        json_decref(b);
        json_decref(orig);
        drop(s2);

        /* keep_first_user no: the first user message goes with its turn. */
        s2 = make("max_tokens", "8200", "keep_first_user", "no");
        b = claude_code_conv(8, 16000, 0);
        before = host_count(b);
        r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        next = last_text(b, 0);
        ok(host_count(b) <= 8200 && r.saved == before - host_count(b) && pairs_intact(b) && next &&
               !strncmp(next, "question ", 9),
           "keep_first_user no: the oldest turn goes whole, the task with it (%s)", r.tag);
        json_decref(b);
        drop(s2);
    }

    /* The first user message alone too large for what is left: it goes as the
     * last resort, when the request fits without it and not with it, and a
     * WARN says the model lost the task. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        json_t *b = claude_code_conv(8, 2000, 40000); /* a 10,000-token log pasted with the task */
        long long before = host_count(b);
        fh_log_clear();
        struct result r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        long long after = host_count(b);
        const char *first = last_text(b, 0);
        ok(after <= 8200 && r.saved == before - after && strstr(r.tag, ",first_user_dropped") &&
               !strstr(r.tag, "over_budget") && pairs_intact(b),
           "a 10,000-token first message over a budget of 8200: dropped, fits (%lld -> %lld, %s)", before, after,
           r.tag);
        ok(first && strncmp(first, TASK, strlen(TASK)), "the task is no longer sent (first: %.20s)", first ? first : "");
        ok(strstr(fh_log(), "WARNING:headroom.transforms.rolling_window:dropped the first user message (") &&
               strstr(fh_log(), "which holds the user's task") && strstr(fh_log(), "fits its context budget of 8200"),
           "WARN: the first user message dropped, why and what to do");
        json_t *st = fh_stats("rolling_window");
        ok(json_integer_value(json_object_get(st, "turn_tokens_removed")) == r.removed && r.removed > 10000,
           "its tokens are credited with the turns' (%lld)", r.removed);
        is_int(json_integer_value(json_object_get(st, "first_user_dropped")), 1, "/stats counts the request whose task went");
        json_decref(st);
        json_decref(b);
        /* The same with a first message that fits: only the turns after it go. */
        b = claude_code_conv(8, 2000, 8000);
        r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        first = last_text(b, 0);
        ok(first && !strncmp(first, TASK, strlen(TASK)) && !strstr(r.tag, "first_user_dropped") && host_count(b) <= 8200,
           "a 2,000-token first message: kept (%s)", r.tag);
        json_decref(b);
        drop(s2);
    }

    /* Problem 2: the anchor never splits a tool call from its result. A user
     * message that returns tool results is never the anchor (it continues
     * the turn of the call); a message carrying a call or an answer of its
     * own (hostile Chat shapes) is not anchored either. */
    {
        void *s2 = make("max_tokens", "8200", NULL, NULL);
        /* Anthropic: the conversation starts with an assistant tool_use whose
         * result comes back with the user's words beside it. */
        json_t *b = anthropic_conv(8, 16000);
        json_t *m = json_object_get(b, "messages");
        json_array_insert_new(m, 0, json_pack("{s:s,s:[{s:s,s:s,s:s,s:{}}]}", "role", "assistant", "content", "type",
                                              "tool_use", "id", "toolu_pre", "name", "read", "input"));
        json_object_set_new(json_array_get(m, 1), "content",
                            json_pack("[{s:s,s:s,s:o},{s:s,s:s}]", "type", "tool_result", "tool_use_id", "toolu_pre",
                                      "content", big(8000, 'p'), "type", "text", "text", "question 0"));
        struct hr_rw_turns t;
        is_int(hr_rw_turns_build(m, 1, &t), 0, "tool_result first: turns built");
        ok(t.anchor == 5 && t.turn_of[1] == 0 && !t.keep[1] && t.keep[5],
           "a user message with tool_result and words is not the anchor; the next user words are (%zu)", t.anchor);
        hr_rw_turns_free(&t);
        long long before = host_count(b);
        struct result r = run_on(s2, b, HR_PROVIDER_ANTHROPIC);
        ok(pairs_intact(b) && host_count(b) <= 8200 && r.saved == before - host_count(b) &&
               !strcmp(last_text(b, 0), "question 1"),
           "tool_use first, its result beside the words: they went together, \"question 1\" stays first (%s)", r.tag);
        json_decref(b);

        /* Chat: a first user message that carries tool_calls answered in the
         * next turn (no client does this; a fuzzer does). Anchoring it would
         * keep the call and drop its answer. */
        b = openai_conv("gpt-4o", 8, 16000);
        m = json_object_get(b, "messages");
        json_object_set_new(json_array_get(m, 1), "tool_calls", json_pack("[{s:s}]", "id", "call_x"));
        json_array_insert_new(m, 6, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", "call_x", "content", "x"));
        is_int(hr_rw_turns_build(m, 1, &t), 0, "user message with tool_calls: turns built");
        ok(t.anchor == t.n_msgs && !t.keep[1], "a first user message that makes a call is not the anchor");
        hr_rw_turns_free(&t);
        r = run_on(s2, b, HR_PROVIDER_OPENAI);
        ok(pairs_intact(b) && host_count(b) <= 8200, "no anchor: its turn and the answer's went together (%s)", r.tag);
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
        /* The rest of the first turn goes first; user turns stay in order; the
         * first user message stays (the last two turns alone are over). */
        json_t *b = json_loads(inputs[4], 0, NULL);
        run_on(s2, b, HR_PROVIDER_OPENAI);
        json_t *m = json_object_get(b, "messages");
        is_int(json_array_size(m), 3, "only the first user message and the last two turns left");
        is_str(json_string_value(json_object_get(json_array_get(m, 1), "content")), "cccccccccccccccccccccccccccccccc",
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
