/* compress_api.c — the compression service: POST /v1/compress runs the
 * pipeline on a request and answers with the compressed messages and their
 * figures, without calling any provider; GET /v1/retrieve/<hash> and
 * POST /v1/retrieve give back a stored original. The shapes are those of
 * the reference Headroom server, which the LiteLLM, Portkey and Kong
 * integrations call; headroomd's own fields come alongside. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/http.h> /* evhttp_parse_query_str */
#include <event2/keyvalq_struct.h>
#include "bm25.h"
#include "ccr.h"
#include "daemon.h"
#include "http_server.h"
#include "json_load.h"
#include "log.h"
#include "retrieve_match.h"
#include "stats_json.h"
#include "tokens.h"

#define LOGGER "headroom.proxy"

/* {"error": {"type", "message"}}: the service's own error shape. */
static void service_error(struct hr_req *req, int status, const char *type, const char *message)
{
    hr_send_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "type", type, "message", message));
}

/* With api_token set, the service needs Authorization: Bearer <token>. */
static int authorised(struct hr_daemon *d, struct hr_req *req)
{
    const char *want = d->cfg->api_token;
    if (!want || !*want) return 1;
    const char *got = hr_req_header(req, "authorization");
    if (got && !strncasecmp(got, "Bearer ", 7) && !strcmp(got + 7, want)) return 1;
    hr_req_add_header(req, "WWW-Authenticate", "Bearer");
    service_error(req, 401, "authentication_error",
                  "this headroomd needs Authorization: Bearer <api_token> (api_token in headroom.conf / HEADROOM_API_TOKEN)");
    return 0;
}

static const char *header_is(struct hr_req *req, const char *name, const char *value)
{
    const char *v = hr_req_header(req, name);
    return v && !strcasecmp(v, value) ? v : NULL;
}

void hr_compress_handle(struct hr_daemon *d, struct hr_req *req, const char *query)
{
    if (!authorised(d, req)) return;
    size_t len;
    const char *raw = hr_req_body(req, &len);
    json_error_t jerr;
    json_t *body = hr_json_load_strict(raw, len, &jerr);
    if (!json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "body must be a chat completions, messages or responses request as a JSON object%s%s",
                 body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        service_error(req, 400, "invalid_request", msg);
        return;
    }
    const struct hr_api *api = hr_api_guess(query, body);
    json_t *items = json_object_get(body, api->items_key);
    if (!items) {
        char msg[160];
        snprintf(msg, sizeof msg, "Missing required field: %s", api->items_key);
        json_decref(body);
        service_error(req, 400, "invalid_request", msg);
        return;
    }
    /* x-headroom-bypass: true hands the messages back untouched. */
    if (header_is(req, "x-headroom-bypass", "true")) {
        hr_send_json(req, 200, json_pack("{s:O,s:i,s:i,s:i,s:f,s:[],s:[]}", "messages", items, "tokens_before", 0,
                                         "tokens_after", 0, "tokens_saved", 0, "compression_ratio", 1.0,
                                         "transforms_applied", "ccr_hashes"));
        json_decref(body);
        return;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    char *model_copy = strdup(model ? model : "");
    struct hr_pipeline_result pr;
    struct hr_pipeline_opts opts = d->popts;
    opts.dry_run = 1;
    hr_pipeline_run(d->plugins.transforms, d->plugins.n_transforms, &opts, api, body, model_copy, "", NULL, &pr);
    json_t *stages = json_array(), *tags = json_array(), *hashes = json_array();
    for (size_t i = 0; i < pr.n_stages; i++) {
        const struct hr_stage_result *s = &pr.stages[i];
        json_array_append_new(stages, json_pack("{s:s,s:f,s:I,s:s,s:b}", "name", s->name, "ms", hr_round(s->ms, 3),
                                                "tokens_saved", (json_int_t)s->tokens_saved, "tag", s->tag,
                                                "failed", s->failed));
        if (s->tag && *s->tag) json_array_append_new(tags, json_string(s->tag));
    }
    for (size_t i = 0; i < pr.n_ccr_hashes; i++) json_array_append_new(hashes, json_string(pr.ccr_hashes[i]));
    uint64_t saved = pr.tokens_before - pr.tokens_after;
    hr_pipeline_log_saving(pr.tokens_before, pr.tokens_after);
    double ratio = pr.tokens_before ? (double)pr.tokens_after / (double)pr.tokens_before : 1.0;
    json_t *out = json_pack("{s:O,s:I,s:I,s:I,s:f,s:O,s:o,s:s,s:s,s:s,s:f,s:O,s:o,s:O}",
                            "messages", json_object_get(body, api->items_key),
                            "tokens_before", (json_int_t)pr.tokens_before, "tokens_after", (json_int_t)pr.tokens_after,
                            "tokens_saved", (json_int_t)saved, "compression_ratio", hr_round(ratio, 4),
                            "transforms_applied", tags, "ccr_hashes", hashes,
                            "provider", hr_provider_name(api->provider), "wire_format", api->name, "model", model_copy,
                            "savings_percent",
                            pr.tokens_before ? hr_round(100.0 * (double)saved / (double)pr.tokens_before, 2) : 0.0,
                            "tags", tags, "stages", stages, "request", body);
    /* Whether the proxy would forward re-serialised JSON rather than the client's bytes. */
    json_object_set_new(out, "changed", json_boolean(pr.changed));
    hr_pipeline_result_free(&pr);
    free(model_copy);
    json_decref(tags);
    json_decref(body);
    hr_send_json(req, 200, out);
}

static void retrieve(struct hr_daemon *d, struct hr_req *req, const char *hash, const char *query)
{
    (void)d;
    size_t len = 0;
    char *data = hr_ccr_get(hash, &len);
    if (!data) {
        char msg[200];
        snprintf(msg, sizeof msg, "no stored original for hash '%.40s': unknown, or expired (originals are kept for "
                 "ccr_ttl seconds)", hash);
        hr_send_json(req, 404, json_pack("{s:{s:s,s:s},s:s}", "error", "type", "not_found", "message", msg,
                                         "hash", hash));
        return;
    }
    struct hr_ccr_info info = {.original_items = -1, .compressed_items = -1};
    hr_ccr_describe(hash, NULL, &info);
    json_t *parsed = json_loadb(data, len, 0, NULL);
    size_t items = json_is_array(parsed) ? json_array_size(parsed) : 1;
    HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved %zu items", hash, items);
    json_t *content = json_stringn(data, len);
    json_t *out = json_pack("{s:s,s:o,s:I,s:I,s:o,s:o,s:I}", "hash", hash, "original_content",
                            content ? content : json_string(""), "original_tokens",
                            (json_int_t)hr_count_tokens(info.model, data, len), "original_item_count",
                            (json_int_t)(info.original_items >= 0 ? (size_t)info.original_items : items),
                            "compressed_item_count",
                            info.compressed_items >= 0 ? json_integer(info.compressed_items) : json_null(), "tool_name",
                            info.tool_name[0] ? json_string(info.tool_name) : json_null(), "retrieval_count",
                            (json_int_t)info.retrieval_count);
    if (query && *query) {
        json_object_set_new(out, "query", json_string(query));
        json_object_set_new(out, "query_matches", hr_retrieve_matches(data, len, parsed, query));
    }
    json_decref(parsed);
    hr_ccr_free(data);
    hr_send_json(req, 200, out);
}

/* The value of `name` in a query string, URL-decoded (malloc'd), or NULL. */
static char *query_param(const char *query, const char *name)
{
    struct evkeyvalq params;
    char *out = NULL;
    if (!query || evhttp_parse_query_str(query, &params)) return NULL;
    const char *v = evhttp_find_header(&params, name);
    if (v) out = strdup(v);
    evhttp_clear_headers(&params);
    return out;
}

void hr_retrieve_handle(struct hr_daemon *d, struct hr_req *req, const char *hash_in_path, const char *query)
{
    if (!authorised(d, req)) return;
    if (hash_in_path) {
        char *q = query_param(query, "query");
        retrieve(d, req, hash_in_path, q);
        free(q);
        return;
    }
    size_t len;
    const char *raw = hr_req_body(req, &len);
    json_t *body = json_loadb(raw, len, 0, NULL);
    const char *hash = json_string_value(json_object_get(body, "hash"));
    if (!hash) service_error(req, 400, "invalid_request", "body must be {\"hash\": \"<24 hex>\", \"query\"?: \"...\"}");
    else retrieve(d, req, hash, json_string_value(json_object_get(body, "query")));
    json_decref(body);
}
