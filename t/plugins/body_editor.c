/* body_editor.c — a test transform that edits the request body outside its
 * units (adds a top-level member named by `mark`, as a plugin reordering
 * tools or moving the system prompt would), flags body_edited, and then
 * succeeds or fails as configured. The host must undo exactly the failing
 * stages' edits and keep the others'. With `tool_mark` it also marks the
 * first tool definition, in place; built with -DCOPY_ON_WRITE (cow_editor)
 * it declares HR_TF_COPY_ON_WRITE and marks a copy of the tools array and
 * of that tool instead, so the host snapshots tools by reference. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <headroom/plugin.h>

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("mark", HR_CONF_STRING, "x_edited", "the top-level member this instance adds to the body"),
    HR_CONF_KEY("edit", HR_CONF_BOOL, "yes", "edit the body (no: leave it, succeed or fail only)"),
    HR_CONF_KEY("fail", HR_CONF_BOOL, "no", "return an error after editing"),
    HR_CONF_KEY("tool_mark", HR_CONF_STRING, "", "also set this member on the first tool definition"),
    HR_CONF_END,
};

struct state {
    char *mark, *tool_mark;
    int edit, fail;
};

/* The first tool gets tool_mark: in place, or (COPY_ON_WRITE) in copies of
 * the tool and the array, set into the body. */
static void mark_tool(json_t *body, const char *mark)
{
    json_t *tools = json_object_get(body, "tools");
    if (!json_is_object(json_array_get(tools, 0))) return;
#ifdef COPY_ON_WRITE
    json_t *t = json_copy(json_array_get(tools, 0));
    tools = json_copy(tools);
    json_object_set_new(t, mark, json_true());
    json_array_set_new(tools, 0, t);
    json_object_set_new(body, "tools", tools);
#else
    json_object_set_new(json_array_get(tools, 0), mark, json_true());
#endif
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    (void)self;
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->mark = strdup(host->conf_string(conf, "mark"));
    s->tool_mark = strdup(host->conf_string(conf, "tool_mark"));
    s->edit = host->conf_bool(conf, "edit");
    s->fail = host->conf_bool(conf, "fail");
    *out = s;
    return HR_OK;
}

static void fini(void *st)
{
    struct state *s = st;
    free(s->mark);
    free(s->tool_mark);
    free(s);
}

static int apply(void *st, struct hr_request *req)
{
    struct state *s = st;
    if (s->edit) {
        json_object_set_new(req->body, s->mark, json_true());
        if (*s->tool_mark) mark_tool(req->body, s->tool_mark);
        req->body_edited = 1;
    }
    return s->fail ? HR_EINVAL : HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
#ifdef COPY_ON_WRITE
    .name = "cow_editor",
    .transform_flags = HR_TF_COPY_ON_WRITE,
#else
    .name = "body_editor",
#endif
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "test transform: edits the body outside units, then succeeds or fails",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .apply = apply,
    .content_types = 0,
};
