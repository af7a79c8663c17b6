/* units_editor.c — a test transform that declares HR_TF_UNITS_ONLY (ABI
 * 1.5): it replaces every unit's text with a short one through unit_replace
 * and then succeeds or fails as configured. The host takes no copy of the
 * body before it, so a failure must be undone from the units' journal
 * alone. With `break_promise yes` it also edits the body outside units and
 * flags body_edited, which the host reports as a warning. It skips units
 * flagged HR_UNIT_HAS_MARKER: with `text` holding a marker, a later
 * instance shows whether the host flagged the replacement (ABI 1.6). With
 * `crash yes` its apply faults, as a plugin's bug would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <headroom/plugin.h>

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("text", HR_CONF_STRING, "[units_editor]", "what every unit's text becomes"),
    HR_CONF_KEY("text_hex", HR_CONF_STRING, "", "the same as hex bytes, when set (bytes a config cannot hold)"),
    HR_CONF_KEY("fail", HR_CONF_BOOL, "no", "return an error after replacing"),
    HR_CONF_KEY("break_promise", HR_CONF_BOOL, "no", "also add x_units_editor to the body and set body_edited"),
    HR_CONF_KEY("crash", HR_CONF_BOOL, "no", "read through a wild pointer in apply (a plugin's crash)"),
    HR_CONF_END,
};

struct state {
    const struct hr_host *host;
    char *text;
    size_t len;
    int fail, break_promise, crash;
};

/* Opaque to the compiler: the read below is a real fault, not undefined
 * behaviour it may drop or a sanitizer may trap on before the kernel. */
volatile uintptr_t units_editor_wild = 16;

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    (void)self;
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    const char *hex = host->conf_string(conf, "text_hex");
    if (*hex) {
        size_t n = strlen(hex) / 2;
        s->text = malloc(n + 1);
        for (size_t i = 0; s->text && i < n; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(s->text);
                free(s);
                return HR_EINVAL;
            }
            s->text[i] = (char)(hi << 4 | lo);
        }
        if (s->text) s->text[n] = '\0';
        s->len = n;
    } else {
        s->text = strdup(host->conf_string(conf, "text"));
        s->len = s->text ? strlen(s->text) : 0;
    }
    if (!s->text) {
        free(s);
        return HR_ENOMEM;
    }
    s->fail = host->conf_bool(conf, "fail");
    s->break_promise = host->conf_bool(conf, "break_promise");
    s->crash = host->conf_bool(conf, "crash");
    *out = s;
    return HR_OK;
}

static void fini(void *st)
{
    struct state *s = st;
    free(s->text);
    free(s);
}

static int apply(void *st, struct hr_request *req)
{
    struct state *s = st;
    if (s->crash && *(volatile int *)units_editor_wild) return HR_OK;
    for (size_t i = 0; i < req->n_units; i++)
        if (!(req->units[i].flags & (HR_UNIT_PROTECTED | HR_UNIT_HAS_MARKER))) /* as a stage must */
            s->host->unit_replace(req, i, s->text, s->len);
    if (s->break_promise) {
        json_object_set_new(req->body, "x_units_editor", json_true());
        req->body_edited = 1;
    }
    return s->fail ? HR_EINVAL : HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "units_editor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "test transform: edits units alone (HR_TF_UNITS_ONLY), then succeeds or fails",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .apply = apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY,
};
