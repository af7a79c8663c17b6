/* compress_api.c — POST /v1/compress: run the pipeline on a request body and
 * return the compressed request with its token figures, without calling any
 * provider. Useful for SDKs that only want compression, and for checking
 * what headroomd would send. The wire format comes from ?format=NAME or
 * ?provider=, else from the body's shape (src/api/api.c). */
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include "daemon.h"
#include "json_load.h"
#include "stats_json.h"

void hr_compress_handle(struct hr_daemon *d, struct evhttp_request *req, const char *query)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    json_t *body = hr_json_load(len ? (const char *)evbuffer_pullup(in, -1) : "", len, &jerr);
    if (!json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "body must be a chat completions, messages or responses request as a JSON object%s%s",
                 body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        hr_send_json(req, 400, hr_api_openai_chat.error_body(HR_API_ERR_INVALID_REQUEST, msg));
        return;
    }
    const struct hr_api *api = hr_api_guess(query, body);
    const char *model = json_string_value(json_object_get(body, "model"));
    char *model_copy = strdup(model ? model : "");
    struct hr_pipeline_result pr;
    struct hr_pipeline_opts opts = d->popts;
    opts.dry_run = 1;
    hr_pipeline_run(d->plugins.transforms, d->plugins.n_transforms, &opts, api, body, model_copy, "", NULL, &pr);
    json_t *stages = json_array(), *tags = json_array();
    for (size_t i = 0; i < pr.n_stages; i++) {
        const struct hr_stage_result *s = &pr.stages[i];
        json_array_append_new(stages, json_pack("{s:s,s:f,s:I,s:s,s:b}", "name", s->name, "ms", hr_round(s->ms, 3),
                                                "tokens_saved", (json_int_t)s->tokens_saved, "tag", s->tag,
                                                "failed", s->failed));
        if (s->tag && *s->tag) json_array_append_new(tags, json_string(s->tag));
    }
    uint64_t saved = pr.tokens_before - pr.tokens_after;
    hr_pipeline_log_saving(pr.tokens_before, pr.tokens_after);
    json_t *out = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:o,s:o,s:O}", "provider", hr_provider_name(api->provider),
                            "wire_format", api->name, "model", model_copy, "tokens_before", (json_int_t)pr.tokens_before, "tokens_after",
                            (json_int_t)pr.tokens_after, "tokens_saved", (json_int_t)saved, "savings_percent",
                            pr.tokens_before ? hr_round(100.0 * (double)saved / (double)pr.tokens_before, 2) : 0.0,
                            "tags", tags, "stages", stages, "request", body);
    hr_pipeline_result_free(&pr);
    free(model_copy);
    json_decref(body);
    hr_send_json(req, 200, out);
}
