/* compress.c — hr_compress: the daemon's pipeline on one request body,
 * in-process (offline) or through POST /v1/compress (attached), with the
 * bytes headroomd forwards (compact JSON when a stage changed the body, the
 * client's own bytes otherwise — proxy.c's rule). */
#include <stdlib.h>
#include <string.h>
#include "sdk.h"
#include "json_dump.h"
#include "json_load.h"
#include "stats_json.h"

void hr_compress_result_free(struct hr_compress_result *r)
{
    if (!r) return;
    free(r->body);
    for (size_t i = 0; i < r->n_tags; i++) free(r->tags[i]);
    free(r->tags);
    free(r->wire_format);
    memset(r, 0, sizeof *r);
}

static int set_body(struct hr_compress_result *out, const char *bytes, size_t len)
{
    out->body = malloc(len + 1);
    if (!out->body) return hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
    memcpy(out->body, bytes, len);
    out->body[len] = '\0';
    out->body_len = len;
    return HEADROOM_OK;
}

static int add_tag(struct hr_compress_result *out, const char *tag)
{
    char **t = realloc(out->tags, (out->n_tags + 1) * sizeof *t);
    if (!t) return hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
    out->tags = t;
    if (!(t[out->n_tags] = strdup(tag))) return hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
    out->n_tags++;
    return HEADROOM_OK;
}

static int compress_remote(hr_client *c, const char *body, size_t len, struct hr_compress_result *out)
{
    struct hr_sdk_answer a;
    int rc = hr_sdk_http(c, "POST", "/v1/compress", body, len, &a);
    if (rc) return rc;
    json_t *v = json_loadb(a.body, a.len, 0, NULL);
    const char *msg = hr_sdk_error_message(v);
    if (a.status != 200 && msg) {
        rc = hr_sdk_fail(a.status == 400 ? HEADROOM_EINVAL : HEADROOM_ENET, "headroomd at %s answered POST "
                         "/v1/compress with HTTP %ld: %.500s", c->url, a.status, msg);
        goto done;
    }
    if (a.status != 200 || !json_is_integer(json_object_get(v, "tokens_before"))) {
        rc = hr_sdk_not_headroomd(c, "POST", "/v1/compress", &a, v ? "JSON without headroomd's fields" : NULL);
        goto done;
    }
    out->tokens_before = (uint64_t)json_integer_value(json_object_get(v, "tokens_before"));
    out->tokens_after = (uint64_t)json_integer_value(json_object_get(v, "tokens_after"));
    out->tokens_saved = out->tokens_before - out->tokens_after;
    const char *wf = json_string_value(json_object_get(v, "wire_format"));
    out->wire_format = strdup(wf ? wf : "");
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(v, "tags"), i, tag) if ((rc = add_tag(out, json_string_value(tag)))) goto done;
    if (!json_is_true(json_object_get(v, "changed"))) {
        rc = set_body(out, body, len); /* unchanged: the client's bytes, as the proxy forwards them */
    } else {
        size_t n;
        char *s = hr_json_dump_compact(json_object_get(v, "request"), &n); /* reals as the client wrote them */
        rc = s ? set_body(out, s, n) : hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
        free(s);
    }
done:
    json_decref(v);
    free(a.body);
    return rc;
}

int hr_compress(hr_client *c, const char *body, size_t len, struct hr_compress_result *out)
{
    hr_sdk_clear_error();
    if (!c || !out || (!body && len)) return hr_sdk_fail(HEADROOM_EINVAL, "hr_compress: client, body and out are required");
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    if (!c->offline) {
        int rc = compress_remote(c, body, len, out);
        if (rc) hr_compress_result_free(out);
        out->struct_size = sizeof *out;
        return rc;
    }
    json_error_t jerr;
    json_t *req = hr_json_load(body ? body : "", len, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return hr_sdk_fail(HEADROOM_EINVAL, "the request must be a JSON object (a chat completions, messages or "
                           "responses request)%s%s", req ? "" : ": ", req ? "" : jerr.text);
    }
    const struct hr_api *api = hr_api_guess("", req);
    if (!json_object_get(req, api->items_key)) {
        json_decref(req);
        return hr_sdk_fail(HEADROOM_EINVAL, "the request has no '%s' field (required for %s)", api->items_key, api->name);
    }
    const char *m = json_string_value(json_object_get(req, "model"));
    char *model = strdup(m ? m : "");
    struct hr_pipeline_result pr;
    hr_pipeline_run(c->plugins.transforms, c->plugins.n_transforms, &c->popts, api, req, model, "", NULL, &pr);
    int rc = HEADROOM_OK;
    out->tokens_before = pr.tokens_before;
    out->tokens_after = pr.tokens_after;
    out->tokens_saved = pr.tokens_before - pr.tokens_after;
    out->wire_format = strdup(api->name);
    for (size_t i = 0; !rc && i < pr.n_stages; i++)
        if (pr.stages[i].tag && *pr.stages[i].tag) rc = add_tag(out, pr.stages[i].tag);
    if (!rc) {
        if (pr.changed) {
            size_t n;
            char *s = hr_json_dump_compact(req, &n); /* as the proxy forwards it: 0.7 stays 0.7 */
            rc = s ? set_body(out, s, n) : hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
            free(s);
        } else {
            rc = set_body(out, body ? body : "", len);
        }
    }
    if (!rc) {
        c->requests++;
        c->tokens_before += pr.tokens_before;
        c->tokens_after += pr.tokens_after;
        c->ratio_sum += pr.tokens_before ? (double)pr.tokens_after / (double)pr.tokens_before : 1.0;
        snprintf(c->last_provider, sizeof c->last_provider, "%s", hr_provider_name(api->provider));
    }
    hr_pipeline_result_free(&pr);
    free(model);
    json_decref(req);
    if (rc) {
        hr_compress_result_free(out);
        out->struct_size = sizeof *out;
    }
    return rc;
}
