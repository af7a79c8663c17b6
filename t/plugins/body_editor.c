/* body_editor.c — a test transform that edits the request body outside its
 * units (adds a top-level member named by `mark`, as a plugin reordering
 * tools or moving the system prompt would), flags body_edited, and then
 * succeeds or fails as configured. The host must undo exactly the failing
 * stages' edits and keep the others'. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <headroom/plugin.h>

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("mark", HR_CONF_STRING, "x_edited", "the top-level member this instance adds to the body"),
    HR_CONF_KEY("edit", HR_CONF_BOOL, "yes", "edit the body (no: leave it, succeed or fail only)"),
    HR_CONF_KEY("fail", HR_CONF_BOOL, "no", "return an error after editing"),
    HR_CONF_END,
};

struct state {
    char *mark;
    int edit, fail;
};

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    (void)self;
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->mark = strdup(host->conf_string(conf, "mark"));
    s->edit = host->conf_bool(conf, "edit");
    s->fail = host->conf_bool(conf, "fail");
    *out = s;
    return HR_OK;
}

static void fini(void *st)
{
    struct state *s = st;
    free(s->mark);
    free(s);
}

static int apply(void *st, struct hr_request *req)
{
    struct state *s = st;
    if (s->edit) {
        json_object_set_new(req->body, s->mark, json_true());
        req->body_edited = 1;
    }
    return s->fail ? HR_EINVAL : HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "body_editor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "test transform: edits the body outside units, then succeeds or fails",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .apply = apply,
    .content_types = 0,
};
