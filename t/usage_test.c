/* t/usage_test.c — provider usage extraction from JSON bodies and single SSE
 * events, as each wire format's adapter reads it: Chat Completions,
 * Messages and Responses, cache fields, TTL buckets, reasoning tokens, bad
 * and hostile values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "api/api.h"
#include "usage.h"

#define HR_WIRE_RESPONSES_TEST 99 /* pseudo-provider: the Responses adapter */

static const struct hr_api *api_of(int p)
{
    if (p == HR_WIRE_RESPONSES_TEST) return &hr_api_openai_responses;
    return p == HR_PROVIDER_ANTHROPIC ? &hr_api_anthropic_messages : &hr_api_openai_chat;
}

static int text_path_checked, text_path_differs, exact_path_checked;

static struct hr_usage from_json(int p, const char *text)
{
    struct hr_usage u;
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);

    memset(&u, 0, sizeof(u));
    if (!j)
        tap_diag("fixture does not parse: %s", err.text);
    api_of(p)->usage_from_json(j, &u);
    json_decref(j);
    /* The relay reads a non-streamed answer from its text, skimming out
     * "usage" (read as text unless it has escapes): it must read what the
     * parse does, on every fixture here. */
    struct hr_usage t;
    memset(&t, 0, sizeof(t));
    hr_api_read_answer(api_of(p), text, strlen(text), &t);
    if (j && memcmp(&t, &u, sizeof t) != 0) {
        text_path_differs++;
        tap_diag("read from the text, differs from the parse: %s (input %llu/%llu, output %llu/%llu, cache read "
                 "%llu/%llu)", text, (unsigned long long)t.input_tokens,
                 (unsigned long long)u.input_tokens, (unsigned long long)t.output_tokens,
                 (unsigned long long)u.output_tokens, (unsigned long long)t.cache_read_tokens,
                 (unsigned long long)u.cache_read_tokens);
    }
    /* A stream's chunks are checked and their members found in one pass
     * (hr_api_read_exact): where it takes a text, it too reads what the
     * parse does. */
    memset(&t, 0, sizeof(t));
    if (hr_api_read_exact(api_of(p), text, strlen(text), &t)) {
        exact_path_checked++;
        if (!j || memcmp(&t, &u, sizeof t) != 0) {
            text_path_differs++;
            tap_diag("read in one checking pass, differs from the parse: %s (input %llu/%llu)", text,
                     (unsigned long long)t.input_tokens, (unsigned long long)u.input_tokens);
        }
    }
    text_path_checked += j != NULL;
    return u;
}

static void sse(int p, const char *ev, const char *data, struct hr_usage *u)
{
    api_of(p)->usage_from_sse(ev, strlen(ev), data, strlen(data), u);
}

static void test_openai_json(void)
{
    struct hr_usage u;

    u = from_json(HR_PROVIDER_OPENAI,
                  "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini-2024-07-18\","
                  "\"choices\":[],\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,"
                  "\"total_tokens\":2306,\"prompt_tokens_details\":{\"cached_tokens\":1920,\"audio_tokens\":0},"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    ok(u.seen, "openai: usage seen");
    is_int(u.input_tokens, 2006 - 1920, "openai: input = prompt - cached");
    is_int(u.output_tokens, 300, "openai: output = completion_tokens");
    is_int(u.cache_read_tokens, 1920, "openai: cache read = cached_tokens");
    is_int(u.cache_write_tokens + u.cache_write_5m_tokens + u.cache_write_1h_tokens, 0,
           "openai: no cache writes");

    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2}}");
    ok(u.seen && u.input_tokens == 10 && u.cache_read_tokens == 0 && u.output_tokens == 2,
       "openai: no prompt_tokens_details means nothing cached");

    u = from_json(HR_PROVIDER_OPENAI,
                  "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":11}}}");
    ok(u.input_tokens == 10 && u.cache_read_tokens == 0,
       "openai: cached > prompt is inconsistent: breakdown dropped, total kept");

    u = from_json(HR_PROVIDER_OPENAI,
                  "{\"model\":42,\"usage\":{\"prompt_tokens\":\"12\",\"completion_tokens\":-5,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":1.5}}}");
    ok(u.seen, "openai bad types: usage still seen");
    ok(u.input_tokens == 0 && u.output_tokens == 0 && u.cache_read_tokens == 0,
       "openai bad types: string, negative and fractional counts ignored");

    u = from_json(HR_PROVIDER_OPENAI,
                  "{\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":1e300,"
                  "\"prompt_tokens_details\":[1]}}");
    ok(u.input_tokens == 0 && u.output_tokens == 0, "openai: absurdly large counts ignored");

    u = from_json(HR_PROVIDER_OPENAI,
                  "{\"usage\":{\"prompt_tokens\":12.0,\"completion_tokens\":3,"
                  "\"prompt_tokens_details\":null}}");
    ok(u.input_tokens == 12 && u.output_tokens == 3, "openai: integral real 12.0 accepted");

    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":null}");
    ok(!u.seen, "openai: usage null is not seen");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":[1,2]}");
    ok(!u.seen, "openai: usage array is not seen");
    u = from_json(HR_PROVIDER_OPENAI, "[{\"usage\":{\"prompt_tokens\":1}}]");
    ok(!u.seen, "openai: body not an object");

    memset(&u, 0, sizeof(u));
    hr_api_openai_chat.usage_from_json(NULL, &u);
    ok(!u.seen, "NULL body is a no-op");
}

static void test_anthropic_json(void)
{
    struct hr_usage u;

    u = from_json(HR_PROVIDER_ANTHROPIC,
                  "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-1-20250805\","
                  "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
                  "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":4000,"
                  "\"cache_read_input_tokens\":50000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1500,"
                  "\"ephemeral_1h_input_tokens\":2500},\"output_tokens\":412,\"service_tier\":\"standard\"}}");
    ok(u.seen, "anthropic: usage seen");
    is_int(u.input_tokens, 25, "anthropic: input_tokens");
    is_int(u.output_tokens, 412, "anthropic: output_tokens");
    is_int(u.cache_read_tokens, 50000, "anthropic: cache_read_input_tokens");
    is_int(u.cache_write_tokens, 4000, "anthropic: cache_creation_input_tokens");
    is_int(u.cache_write_5m_tokens, 1500, "anthropic: 5m bucket");
    is_int(u.cache_write_1h_tokens, 2500, "anthropic: 1h bucket");

    u = from_json(HR_PROVIDER_ANTHROPIC,
                  "{\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":700,"
                  "\"cache_read_input_tokens\":0,\"output_tokens\":9}}");
    ok(u.cache_write_tokens == 700 && u.cache_write_5m_tokens == 700 && u.cache_write_1h_tokens == 0,
       "anthropic: no cache_creation breakdown counts as the default 5m TTL");

    u = from_json(HR_PROVIDER_ANTHROPIC,
                  "{\"usage\":{\"input_tokens\":-1,\"output_tokens\":\"9\",\"cache_read_input_tokens\":true,"
                  "\"cache_creation_input_tokens\":300,\"cache_creation\":[1000]}}");
    ok(u.seen && u.input_tokens == 0 && u.output_tokens == 0 && u.cache_read_tokens == 0,
       "anthropic bad types: negative, string, bool ignored");
    ok(u.cache_write_tokens == 300 && u.cache_write_5m_tokens == 300,
       "anthropic bad types: cache_creation not an object counts as no breakdown");

    u = from_json(HR_PROVIDER_ANTHROPIC,
                  "{\"usage\":{\"cache_creation_input_tokens\":300,"
                  "\"cache_creation\":{\"ephemeral_5m_input_tokens\":{},\"ephemeral_1h_input_tokens\":300}}}");
    ok(u.cache_write_5m_tokens == 0 && u.cache_write_1h_tokens == 300,
       "anthropic: a partly bad breakdown keeps the good bucket");

}

static void test_openai_sse(void)
{
    struct hr_usage u;

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message",
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"x\"}}],\"usage\":null}", &u);
    ok(!u.seen, "openai sse: usage null is not usage");
    sse(HR_PROVIDER_OPENAI, "message", "[DONE]", &u);
    sse(HR_PROVIDER_OPENAI, "message", "not json {", &u);
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\": {\"prompt_tokens\": 5,", &u);
    ok(!u.seen, "openai sse: [DONE], garbage and truncated JSON ignored");
    sse(HR_PROVIDER_OPENAI, "message",
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1\",\"choices\":[],"
        "\"usage\" : {\"prompt_tokens\":100,\"completion_tokens\":20,"
        "\"prompt_tokens_details\":{\"cached_tokens\":64}}}", &u);
    ok(u.seen && u.input_tokens == 36 && u.output_tokens == 20 && u.cache_read_tokens == 64,
       "openai sse: final usage chunk read (spaces around the colon)");
    sse(HR_PROVIDER_OPENAI, "message", "[DONE]", &u);
    ok(u.input_tokens == 36, "openai sse: [DONE] leaves usage alone");

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message",
        "{\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\"}}],\"usage\":null}", &u);
    ok(!u.seen, "openai sse: usage-looking text inside content is not usage");

    memset(&u, 0, sizeof(u));
    {
        static const char d[] = "{\"usage\":{\"prompt_tokens\":3}}";
        hr_api_openai_chat.usage_from_sse(NULL, 0, d, sizeof(d) - 1, &u);
    }
    ok(u.input_tokens == 3, "openai sse: a chunk without an event name is read");
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":40,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":32}}}", &u);
    ok(u.output_tokens == 40 && u.reasoning_tokens == 32, "openai sse: reasoning tokens read, within output");

    /* A chunk's usage is skimmed out unless the skim could read it
     * differently from a whole parse: each case reads as jansson does. */
    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message",
        "{\"model\":\"a\",\"usage\":{\"prompt_tokens\":1},\"mod\\u0065l\":\"gpt-esc\",\"us\\u0061ge\":{\"prompt_tokens\":7}}",
        &u);
    ok(u.seen && u.input_tokens == 7, "openai sse: an escaped usage key repeats the usage key: the last one counts");
    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":2}}", &u);
    ok(u.input_tokens == 2, "openai sse: a repeated usage key: the last one, as jansson keeps it");
    memset(&u, 0, sizeof(u));
    {
        static const char d[] = "{\"usage\":{\"prompt_tokens\":4\0}}";
        hr_api_openai_chat.usage_from_sse(NULL, 0, d, sizeof(d) - 1, &u);
    }
    ok(u.input_tokens == 4, "openai sse: a NUL after a number is dropped, as jansson's lexer drops it");
    memset(&u, 0, sizeof(u));
    {
        static const char d[] = "{\"usage\":{\"prompt_tokens\":4}\0}";
        hr_api_openai_chat.usage_from_sse(NULL, 0, d, sizeof(d) - 1, &u);
    }
    ok(!u.seen, "openai sse: a NUL after an object is not JSON: no usage");
    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\":{\"prompt_tokens\":6},\"choices\":[1,}", &u);
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\":{\"prompt_tokens\":6}} trailing", &u);
    sse(HR_PROVIDER_OPENAI, "message", "[{\"usage\":{\"prompt_tokens\":6}}]", &u);
    ok(!u.seen, "openai sse: usage in invalid JSON or in a chunk that is not an object is not read");
    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_OPENAI, "message", "{\"a\":{},\"b\":\"{\",\"usage\":null,\"c\":[{}]}", &u);
    ok(!u.seen, "openai sse: braces elsewhere and a null usage: no usage");
    sse(HR_PROVIDER_OPENAI, "message", "{\"usage\"\t:\r\n {\"prompt_tokens\":8}}", &u);
    ok(u.seen && u.input_tokens == 8, "openai sse: usage object after tabs, newlines and spaces around the colon");
}

static void test_anthropic_sse(void)
{
    struct hr_usage u;
    static const char start[] =
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-haiku-4-5\",\"content\":[],\"usage\":{\"input_tokens\":30,"
        "\"cache_creation_input_tokens\":900,\"cache_read_input_tokens\":100,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":900},"
        "\"output_tokens\":1}}}";

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_ANTHROPIC, "message_start", start, &u);
    ok(u.seen && u.input_tokens == 30 && u.output_tokens == 1 && u.cache_read_tokens == 100 &&
           u.cache_write_tokens == 900 && u.cache_write_5m_tokens == 0 && u.cache_write_1h_tokens == 900,
       "anthropic sse: message_start usage with 1h bucket");
    sse(HR_PROVIDER_ANTHROPIC, "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"usage\\\"\"}}",
        &u);
    sse(HR_PROVIDER_ANTHROPIC, "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}", &u);
    is_int(u.output_tokens, 15, "anthropic sse: message_delta output_tokens");
    sse(HR_PROVIDER_ANTHROPIC, "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":40,\"input_tokens\":0,"
        "\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}", &u);
    ok(u.output_tokens == 40 && u.input_tokens == 30 && u.cache_read_tokens == 100 &&
           u.cache_write_tokens == 900,
       "anthropic sse: later output wins; zeros in a delta do not clobber message_start");
    sse(HR_PROVIDER_ANTHROPIC, "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":41,\"input_tokens\":31,"
        "\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":900}}", &u);
    ok(u.output_tokens == 41 && u.input_tokens == 31 && u.cache_write_tokens == 900 &&
           u.cache_write_5m_tokens == 0 && u.cache_write_1h_tokens == 900,
       "anthropic sse: newer delta fields taken; a total without breakdown keeps the 1h bucket");
    sse(HR_PROVIDER_ANTHROPIC, "message_delta",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"many\",\"input_tokens\":-4}}", &u);
    ok(u.output_tokens == 41 && u.input_tokens == 31, "anthropic sse: bad delta values ignored");
    sse(HR_PROVIDER_ANTHROPIC, "message_stop", "{\"type\":\"message_stop\"}", &u);
    sse(HR_PROVIDER_ANTHROPIC, "error",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", &u);
    is_int(u.output_tokens, 41, "anthropic sse: message_stop and error change nothing");

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_ANTHROPIC, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"cache_creation_input_tokens\":50,"
        "\"output_tokens\":1}}}", &u);
    ok(u.cache_write_5m_tokens == 50 && u.cache_write_1h_tokens == 0,
       "anthropic sse: message_start without breakdown counts as 5m");

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_ANTHROPIC, "message", start, &u);
    sse(HR_PROVIDER_ANTHROPIC, "message",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}", &u);
    ok(u.input_tokens == 30 && u.output_tokens == 7,
       "anthropic sse: stream without event names falls back to \"type\"");

    memset(&u, 0, sizeof(u));
    sse(HR_PROVIDER_ANTHROPIC, "message_start", "{\"type\":\"message_start\",\"message\":[]}", &u);
    sse(HR_PROVIDER_ANTHROPIC, "message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":7}}", &u);
    sse(HR_PROVIDER_ANTHROPIC, "message_start", "{\"type\":\"message_start\"", &u);
    sse(HR_PROVIDER_ANTHROPIC, "message_delta", "null", &u);
    ok(!u.seen, "anthropic sse: malformed message_start/delta ignored");
}

static void test_responses(void)
{
    struct hr_usage u;
    u = from_json(HR_WIRE_RESPONSES_TEST,
                  "{\"object\":\"response\",\"model\":\"gpt-4.1-2025-04-14\",\"usage\":{\"input_tokens\":120,"
                  "\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":50,"
                  "\"output_tokens_details\":{\"reasoning_tokens\":20},\"total_tokens\":170}}");
    ok(u.seen, "responses: usage seen");
    is_int(u.input_tokens, 20, "responses: uncached input = input_tokens - cached_tokens");
    is_int(u.cache_read_tokens, 100, "responses: cached_tokens are cache reads");
    is_int(u.output_tokens, 50, "responses: output_tokens");
    is_int(u.reasoning_tokens, 20, "responses: reasoning_tokens");
    u = from_json(HR_WIRE_RESPONSES_TEST, "{\"usage\":{\"input_tokens\":5,\"input_tokens_details\":"
                                          "{\"cached_tokens\":9},\"output_tokens\":1,"
                                          "\"output_tokens_details\":{\"reasoning_tokens\":3}}}");
    ok(u.input_tokens == 5 && u.cache_read_tokens == 0, "responses: more cached than input: breakdown dropped");
    is_int(u.reasoning_tokens, 0, "responses: more reasoning than output: ignored");
    u = from_json(HR_WIRE_RESPONSES_TEST, "{\"usage\":{\"input_tokens\":1000,\"input_tokens_details\":"
                                          "{\"cached_tokens\":200,\"cache_write_tokens\":300},\"output_tokens\":5}}");
    ok(u.input_tokens == 500 && u.cache_read_tokens == 200 && u.cache_write_tokens == 300 && u.cache_write_5m_tokens == 300,
       "responses: cache_write_tokens (GPT-5.6 on) are cache writes, not uncached input");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_tokens\":100,\"prompt_tokens_details\":"
                                      "{\"cache_write_tokens\":40},\"completion_tokens\":1}}");
    ok(u.input_tokens == 60 && u.cache_write_tokens == 40, "chat: cache_write_tokens moved out of uncached input");
    u = from_json(HR_WIRE_RESPONSES_TEST, "{\"usage\":{\"input_tokens\":-1,\"output_tokens\":\"7\"}}");
    ok(u.seen && !u.input_tokens && !u.output_tokens, "responses: bad counts ignored");

    memset(&u, 0, sizeof(u));
    sse(HR_WIRE_RESPONSES_TEST, "response.created",
        "{\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4o\",\"usage\":null}}", &u);
    ok(!u.seen, "responses sse: response.created is not read (no usage; it repeats the request)");
    sse(HR_WIRE_RESPONSES_TEST, "response.output_text.delta",
        "{\"type\":\"response.output_text.delta\",\"delta\":\"\\\"usage\\\":{\\\"input_tokens\\\":9}\"}", &u);
    ok(!u.seen, "responses sse: deltas are never read for usage");
    sse(HR_WIRE_RESPONSES_TEST, "response.completed",
        "{\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-4o\",\"usage\":{\"input_tokens\":40,"
        "\"input_tokens_details\":{\"cached_tokens\":8},\"output_tokens\":6,"
        "\"output_tokens_details\":{\"reasoning_tokens\":2}}}}", &u);
    ok(u.input_tokens == 32 && u.cache_read_tokens == 8 && u.output_tokens == 6 && u.reasoning_tokens == 2,
       "responses sse: response.completed carries the usage");
    memset(&u, 0, sizeof(u));
    sse(HR_WIRE_RESPONSES_TEST, "message",
        "{\"type\":\"response.incomplete\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}", &u);
    ok(u.input_tokens == 4, "responses sse: without event names, the type member is used (response.incomplete)");
    memset(&u, 0, sizeof(u));
    sse(HR_WIRE_RESPONSES_TEST, "response.completed", "{\"type\":\"response.completed\",\"response\":[1]}", &u);
    sse(HR_WIRE_RESPONSES_TEST, "response.completed", "{\"type\":", &u);
    ok(!u.seen, "responses sse: malformed response.completed ignored");
}

/* Answers whose usage the relay reads from the text: each goes through
 * from_json, which compares the two readings. */
static void test_answer_text(void)
{
    struct hr_usage u;

    u = from_json(HR_PROVIDER_OPENAI, "{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1e3,\"completion_tokens\":2.0}}");
    ok(u.input_tokens == 1000 && u.output_tokens == 2, "text: counts written as reals are read as the parse reads them");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_\\u0074okens\":10,\"completion_tokens\":2}}");
    ok(u.input_tokens == 10 && u.output_tokens == 2, "text: a key written with an escape is still found (parsed)");
    u = from_json(HR_PROVIDER_OPENAI, "{\"model\":\"gpt\\u002d4o\",\"usage\":{\"prompt_tokens\":5}}");
    ok(u.input_tokens == 5, "text: an escape elsewhere in the answer leaves the usage readable");
    u = from_json(HR_PROVIDER_OPENAI, " { \"usage\" : { \"prompt_tokens\" : 7 , \"prompt_tokens_details\" : "
                                      "{ \"cached_tokens\" : 3 } } , \"model\" : \"m\" } ");
    ok(u.input_tokens == 4 && u.cache_read_tokens == 3, "text: whitespace everywhere");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":9},\"model\":\"a\",\"model\":\"b\"}");
    ok(u.input_tokens == 9, "text: a repeated key counts as its last value, as jansson keeps it");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":-5,"
                                      "\"completion_tokens_details\":{\"reasoning_tokens\":\"7\"}}}");
    ok(u.seen && u.input_tokens == 0 && u.output_tokens == 0 && u.reasoning_tokens == 0,
       "text: insane counts are dropped one by one");
    u = from_json(HR_PROVIDER_OPENAI, "{\"usage\":{\"prompt_tokens\":3,\"prompt_tokens_details\":[1],"
                                      "\"completion_tokens_details\":null},\"model\":\"\"}");
    ok(u.seen && u.input_tokens == 3 && u.cache_read_tokens == 0, "text: details that are not objects are none");
    u = from_json(HR_PROVIDER_ANTHROPIC,
                  "{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":4,"
                  "\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":50,"
                  "\"cache_creation\":{\"ephemeral_5m_input_tokens\":20,\"ephemeral_1h_input_tokens\":30}}}");
    ok(u.cache_write_5m_tokens == 20 && u.cache_write_1h_tokens == 30 && u.cache_read_tokens == 100,
       "text: anthropic's cache write breakdown");
    u = from_json(HR_WIRE_RESPONSES_TEST, "{\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":30,\"input_tokens_details\":"
                                          "{\"cached_tokens\":10},\"output_tokens\":8,\"output_tokens_details\":"
                                          "{\"reasoning_tokens\":6}}}");
    ok(u.input_tokens == 20 && u.reasoning_tokens == 6, "text: responses' names");

    /* The usage is read from whichever end of the answer reaches it first:
     * a decoy "usage" inside a long string near either end, and a real one
     * at the front behind 20 KB of text, read what the parse reads. */
    {
        static char big[24 * 1024];
        char pad[20001];
        memset(pad, 'x', sizeof pad - 1);
        pad[sizeof pad - 1] = 0;
        snprintf(big, sizeof big, "{\"usage\":{\"prompt_tokens\":21},\"content\":\"%s\","
                 "\"tail\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":99}\"}", pad);
        u = from_json(HR_PROVIDER_OPENAI, big);
        ok(u.input_tokens == 21, "text: a usage at the front behind 20 KB, a decoy in a string at the end");
        snprintf(big, sizeof big, "{\"head\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":99}\",\"content\":\"%s\","
                 "\"usage\":{\"prompt_tokens\":22}}", pad);
        u = from_json(HR_PROVIDER_OPENAI, big);
        ok(u.input_tokens == 22, "text: a usage at the end, a decoy in a string at the front");
        snprintf(big, sizeof big, "{\"usage\":{\"prompt_tokens\":1},\"content\":\"%s\","
                 "\"usage\":{\"prompt_tokens\":23}}", pad);
        u = from_json(HR_PROVIDER_OPENAI, big);
        ok(u.input_tokens == 23, "text: two usages 20 KB apart: the last, as jansson keeps");
        snprintf(big, sizeof big, "{\"content\":\"%s\",\"choices\":[{\"usage\":{\"prompt_tokens\":5}}]}", pad);
        u = from_json(HR_PROVIDER_OPENAI, big);
        ok(!u.seen, "text: a usage nested below the root is not the answer's");
    }

    /* More members than the text index holds: the rest are looked up in the text. */
    char many[1024] = "{\"usage\":{";
    for (int i = 0; i < 20; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "\"f%d\":%d,", i, i);
    strcat(many, "\"prompt_tokens\":41,\"prompt_tokens_details\":{\"cached_tokens\":40},\"completion_tokens\":1}}");
    u = from_json(HR_PROVIDER_OPENAI, many);
    ok(u.input_tokens == 1 && u.cache_read_tokens == 40 && u.output_tokens == 1,
       "text: a usage object of 23 members is read whole");

    /* What the parse cannot compare: a usage object that is not JSON reads as none. */
    const char *bad = "{\"model\":\"m\",\"usage\":{\"prompt_tokens\":1,}}";
    memset(&u, 0, sizeof u);
    hr_api_read_answer(&hr_api_openai_chat, bad, strlen(bad), &u);
    ok(!u.seen && u.input_tokens == 0, "text: a usage object that is not valid JSON gives no usage");
    const char *badutf8 = "{\"model\":\"g\xff\",\"usage\":{\"prompt_tokens\":1}}";
    memset(&u, 0, sizeof u);
    hr_api_read_answer(&hr_api_openai_chat, badutf8, strlen(badutf8), &u);
    ok(u.seen && u.input_tokens == 1, "text: a model that is not UTF-8 does not spoil the usage");
    const char *cut = "{\"model\":\"m\",\"usage\":{\"prompt_tokens\":1";
    memset(&u, 0, sizeof u);
    hr_api_read_answer(&hr_api_openai_chat, cut, strlen(cut), &u);
    ok(!u.seen, "text: a cut answer gives nothing");

    /* A chunk of more root members than the one-pass list holds: the usage
     * is found by a skim of the text, the last of that name. */
    {
        char wide[2048] = "{\"model\":\"first\",";
        for (int i = 0; i < 24; i++) snprintf(wide + strlen(wide), sizeof wide - strlen(wide), "\"f%d\":%d,", i, i);
        strcat(wide, "\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}");
        memset(&u, 0, sizeof u);
        ok(hr_api_read_exact(&hr_api_openai_chat, wide, strlen(wide), &u) == 1 &&
               u.input_tokens == 12 && u.output_tokens == 3,
           "one pass: past 16 root members, the last usage of two, as jansson keeps");
    }
    /* A NUL byte after a value, which jansson's lexer drops: left to the parse. */
    {
        static const char nul[] = "{\"model\":\"m\",\"usage\":{\"prompt_tokens\":5\0}}";
        memset(&u, 0, sizeof u);
        ok(hr_api_read_exact(&hr_api_openai_chat, nul, sizeof nul - 1, &u) == 0 &&
               !u.seen,
           "one pass: a text holding a NUL byte is not read (the parse reads it)");
        static const char esc[] = "{\"model\":\"m\\u0031\",\"usage\":{\"prompt_tokens\":5}}";
        ok(hr_api_read_exact(&hr_api_openai_chat, esc, sizeof esc - 1, &u) == 0 &&
               !u.seen,
           "one pass: a text holding an escape is not read (the parse reads it)");
    }

    ok(text_path_checked >= 25 && text_path_differs == 0,
       "every parsed fixture (%d) reads the same from its text (%d differ)", text_path_checked, text_path_differs);
    ok(exact_path_checked >= 20, "the one-pass reading took %d of the fixtures", exact_path_checked);
}

int main(void)
{
    test_openai_json();
    test_anthropic_json();
    test_openai_sse();
    test_anthropic_sse();
    test_responses();
    test_answer_text();
    return tap_exit();
}
