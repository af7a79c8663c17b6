/* history.c — hr_get_history: the durable savings history in the
 * GET /stats-history shape. Attached clients ask the daemon; offline clients
 * start the savings_file sink in-process (it reads the file; it writes only
 * counts it was given, and it is given none) and call its route, so both
 * answers come from the same code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "sdk.h"
#include "host.h"

static const char SINK[] = "savings_file";
static const char ROUTE[] = "/stats-history";

/* `where` answered `status`; a daemon's answer names its status. */
static char *answer(long status, char *body, const char *where, int from_daemon)
{
    if (status == 200) return body;
    json_t *v = json_loads(body ? body : "", 0, NULL);
    json_t *e = json_object_get(v, "error");
    const char *msg = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
    if (status == 404)
        hr_sdk_fail(HEADROOM_ENOTFOUND, "%s has no savings history (no `sink savings_file` configured): add "
                    "`sink savings_file { }` to headroom.conf", where);
    else if (from_daemon)
        hr_sdk_fail(status == 400 ? HEADROOM_EINVAL : HEADROOM_EIO, "%s answered with HTTP %ld: %.400s", where, status,
                    msg ? msg : (body ? body : ""));
    else
        hr_sdk_fail(status == 400 ? HEADROOM_EINVAL : HEADROOM_EIO, "%s: %.400s", where, msg ? msg : (body ? body : ""));
    json_decref(v);
    free(body);
    return NULL;
}

/* Is it headroomd's answer: the history (a JSON document with its lifetime
 * totals, or CSV where asked), or its JSON error? A web server's 404 page is
 * not "no savings_file sink". */
static int from_headroomd(const struct hr_sdk_answer *a)
{
    if (a->status == 200 && !strncmp(a->ctype, "text/csv", 8)) return 1;
    json_t *v = json_loadb(a->body, a->len, 0, NULL);
    int ok = a->status == 200 ? json_is_object(json_object_get(v, "lifetime")) : hr_sdk_error_message(v) != NULL;
    json_decref(v);
    return ok;
}

/* The offline client's savings_file instance, started on first use. */
static struct hr_instance *history_sink(hr_client *c)
{
    if (c->history_sink) return c->history_sink;
    struct hr_instance *in = NULL;
    for (size_t i = 0; i < c->plugins.n_sinks && !in; i++)
        if (!strcmp(c->plugins.sinks[i]->desc->name, SINK)) in = c->plugins.sinks[i];
    char err[2048];
    if (!in) { /* not configured: the sink with its defaults */
        static const char text[] = "sink savings_file {\n}\n";
        if (hr_conf_parse_string("(savings_file defaults)", text, sizeof text - 1, NULL, &c->history_doc, err,
                                 sizeof err)) {
            hr_sdk_fail(HEADROOM_EIO, "%s", err);
            return NULL;
        }
        struct hr_plugin_block blk = {.is_sink = 1, .name = (char *)SINK, .instance = (char *)SINK,
                                      .node = &c->history_doc->root.children[0]};
        struct hr_config tmp = c->cfg;
        tmp.plugins = &blk;
        tmp.n_plugins = 1;
        if (hr_plugins_load(&tmp, &c->history_plugins, err, sizeof err)) {
            hr_sdk_fail(HEADROOM_ECONFIG, "cannot load the savings_file plugin to read the history: %s", err);
            return NULL;
        }
        in = c->history_plugins.sinks[0];
    }
    int rc = in->desc->init(&hr_host_table, in, &in->conf, &in->state);
    if (rc) {
        hr_sdk_fail(HEADROOM_EIO, "the savings_file sink could not start (code %d); see the lines above", rc);
        return NULL;
    }
    in->initialised = 1;
    return c->history_sink = in;
}

char *hr_get_history(hr_client *c, const char *query)
{
    hr_sdk_clear_error();
    if (!c) {
        hr_sdk_fail(HEADROOM_EINVAL, "hr_get_history: client is NULL");
        return NULL;
    }
    if (!query) query = "";
    if (!c->offline) {
        char *path = NULL;
        struct hr_sdk_answer a;
        if (asprintf(&path, "%s%s%s", ROUTE, *query ? "?" : "", query) < 0) return NULL;
        int rc = hr_sdk_http(c, "GET", path, NULL, 0, &a);
        if (!rc && !from_headroomd(&a)) {
            json_t *v = json_loadb(a.body, a.len, 0, NULL);
            hr_sdk_not_headroomd(c, "GET", path, &a, v ? "JSON without headroomd's fields" : NULL);
            json_decref(v);
            free(a.body);
            rc = -1;
        }
        free(path);
        if (rc) return NULL;
        char where[600];
        snprintf(where, sizeof where, "headroomd at %s", c->url);
        return answer(a.status, a.body, where, 1);
    }
    if (!history_sink(c)) return NULL;
    int wrong_method = 0;
    const struct hr_route *r = hr_routes_find("GET", ROUTE, &wrong_method);
    if (!r) {
        hr_sdk_fail(HEADROOM_EIO, "the savings_file plugin registered no %s route", ROUTE);
        return NULL;
    }
    struct hr_http_request req = {.struct_size = sizeof req, .method = "GET", .path = ROUTE, .query = query,
                                  .body = "", .body_len = 0, .from_loopback = 1};
    struct hr_http_response resp = {.struct_size = sizeof resp};
    if (r->fn(r->state, &req, &resp) || !resp.body) {
        if (resp.body && resp.free_body) resp.free_body(resp.body);
        hr_sdk_fail(HEADROOM_EIO, "the savings history could not be built");
        return NULL;
    }
    char *body = malloc(resp.body_len + 1);
    if (body) {
        memcpy(body, resp.body, resp.body_len);
        body[resp.body_len] = '\0';
    }
    if (resp.free_body) resp.free_body(resp.body);
    if (!body) {
        hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
        return NULL;
    }
    return answer(resp.status ? resp.status : 200, body, "the savings history", 0);
}
