/* media_tokens.c — what a provider bills for the data in a request, and
 * where each wire format carries it (media_tokens.h). */
#include <string.h>
#include "json_get.h"
#include "media_size.h"
#include "media_tokens.h"

static int type_is(const json_t *object, const char *type)
{
    const char *t = json_string_value(json_object_get(object, "type"));
    return t && !strcmp(t, type);
}

static uint64_t pdf_tokens(const json_t *data)
{
    return HR_MEDIA_PDF_PAGE_TOKENS * hr_media_pdf_pages(json_string_value(data), json_string_length(data));
}

/* An image as Anthropic counts it (its documentation). One whose size
 * cannot be read (a URL, a file id, another format) counts the most. */
#define ANTHROPIC_IMAGE_MAX_TOKENS 1600
static uint64_t anthropic_image_tokens(const json_t *source)
{
    const json_t *data = json_object_get(source, "data");
    uint32_t w32, h32;
    if (!type_is(source, "base64") || !json_is_string(data) ||
        !hr_media_image_size(json_string_value(data), json_string_length(data), &w32, &h32))
        return ANTHROPIC_IMAGE_MAX_TOKENS;
    uint64_t w = w32, h = h32, longest = w > h ? w : h;
    if (longest > 1568) w = w * 1568 / longest, h = h * 1568 / longest;
    uint64_t tokens = (w * h + 749) / 750;
    return tokens < ANTHROPIC_IMAGE_MAX_TOKENS ? tokens : ANTHROPIC_IMAGE_MAX_TOKENS;
}

/* An image as OpenAI bills it (gpt-4o's rule). `url` is the image_url: a
 * data: URL is measured, any other image counts as 1024x1024 (765). */
static uint64_t openai_image_tokens(const char *url, size_t len, const char *detail)
{
    if (detail && !strcmp(detail, "low")) return 85;
    uint32_t w32, h32;
    uint64_t w = 1024, h = 1024;
    if (url && len > 5 && !memcmp(url, "data:", 5) && hr_media_image_size(url, len, &w32, &h32)) w = w32, h = h32;
    uint64_t longest = w > h ? w : h;
    if (longest > 2048) w = w * 2048 / longest, h = h * 2048 / longest;
    uint64_t shortest = w < h ? w : h;
    if (shortest > 768) w = w * 768 / shortest, h = h * 768 / shortest;
    if (!w) w = 1;
    if (!h) h = 1;
    return 85 + 170 * ((w + 511) / 512) * ((h + 511) / 512);
}

/* Blocks of their own, or in a tool_result. */
int hr_media_anthropic_data_tokens(const json_t *object, const char *key, uint64_t *tokens)
{
    if (key[0] == 's' && !strcmp(key, "source")) {
        const json_t *source = json_object_get(object, key);
        if (type_is(object, "image")) {
            *tokens = anthropic_image_tokens(source);
            return 1;
        }
        const json_t *data = json_object_get(source, "data");
        if (type_is(object, "document") && type_is(source, "base64") && json_is_string(data)) {
            *tokens = pdf_tokens(data);
            return 1;
        }
        return 0;
    }
    if ((key[0] == 's' && !strcmp(key, "signature") && type_is(object, "thinking")) ||
        (key[0] == 'd' && !strcmp(key, "data") && type_is(object, "redacted_thinking"))) {
        *tokens = 0;
        return 1;
    }
    return 0;
}

/* Content parts of user turns. */
int hr_media_chat_data_tokens(const json_t *object, const char *key, uint64_t *tokens)
{
    int image = key[0] == 'i' && !strcmp(key, "image_url"), file = key[0] == 'f' && !strcmp(key, "file");
    if (!image && !file) return 0;
    /* the part's payload is under its type's name */
    const char *type = json_string_value(hr_json_get(object, "type"));
    if (!type || strcmp(key, type)) return 0;
    const json_t *v = hr_json_get(object, key);
    if (image) {
        const json_t *url = hr_json_get(v, "url");
        *tokens = openai_image_tokens(json_string_value(url), json_string_length(url),
                                      json_string_value(hr_json_get(v, "detail")));
        return 1;
    }
    const json_t *data = hr_json_get(v, "file_data");
    if (json_is_string(data)) {
        *tokens = pdf_tokens(data);
        return 1;
    }
    return 0;
}

/* Encrypted reasoning: reasoning and compaction items. */
int hr_media_responses_data_tokens(const json_t *object, const char *key, uint64_t *tokens)
{
    if (key[0] == 'e' && !strcmp(key, "encrypted_content")) {
        *tokens = 0;
        return 1;
    }
    if (key[0] == 'i' && !strcmp(key, "image_url") &&
        (type_is(object, "input_image") || type_is(object, "computer_screenshot"))) {
        const json_t *v = json_object_get(object, key);
        *tokens = openai_image_tokens(json_string_value(v), json_string_length(v),
                                      json_string_value(json_object_get(object, "detail")));
        return 1;
    }
    if (key[0] == 'f' && !strcmp(key, "file_id") && type_is(object, "input_image") &&
        !json_object_get(object, "image_url")) { /* an uploaded image: its size is not here */
        *tokens = openai_image_tokens(NULL, 0, json_string_value(json_object_get(object, "detail")));
        return 1;
    }
    const json_t *v = key[0] == 'f' && !strcmp(key, "file_data") ? json_object_get(object, key) : NULL;
    if (json_is_string(v) && type_is(object, "input_file")) {
        *tokens = pdf_tokens(v);
        return 1;
    }
    return 0;
}
