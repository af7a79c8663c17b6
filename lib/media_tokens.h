/* media_tokens.h — what a provider bills for the data in a request (images,
 * base64 PDFs, thinking signatures, encrypted reasoning) rather than the
 * text of their base64, and where each wire format carries it. Here, not in
 * src/api, so that a plugin counting a request (rolling_window) counts it as
 * the host does. */
#ifndef HR_MEDIA_TOKENS_H
#define HR_MEDIA_TOKENS_H
#include <stdint.h>
#include <jansson.h>

/* What a provider bills for one PDF page (text and page image), as its
 * documentation estimates (Anthropic: 1,500 to 3,000). */
#define HR_MEDIA_PDF_PAGE_TOKENS 1500

/* Whether object[key] is data rather than text the model reads as tokens,
 * and then (*tokens) what the provider bills for it, in a request of each
 * wire format (the shape of struct hr_api's data_tokens hook). Asked of
 * every member a request count walks: cheap on the others.
 *
 * Anthropic Messages: image blocks width x height / 750 once the long edge
 * is at most 1568 px, at most 1,600 (1,600 when the size cannot be read);
 * base64 document blocks 1,500 a page; a thinking block's signature and a
 * redacted_thinking block's data 0. */
int hr_media_anthropic_data_tokens(const json_t *object, const char *key, uint64_t *tokens);
/* Chat Completions: image_url parts by OpenAI's tile rule (85 with detail
 * "low"; else 85 + 170 per 512-px tile once fitted in 2048x2048 and the
 * short side at most 768; 765 for an image by URL); file parts with
 * file_data 1,500 a PDF page. */
int hr_media_chat_data_tokens(const json_t *object, const char *key, uint64_t *tokens);
/* Responses: input_image and computer_screenshot image_url (or an uploaded
 * input_image's file_id) by the tile rule, input_file file_data 1,500 a
 * page, encrypted_content 0. */
int hr_media_responses_data_tokens(const json_t *object, const char *key, uint64_t *tokens);

#endif
