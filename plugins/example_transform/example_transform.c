/* example_transform.c — the plugin-writing guide's example: strips ANSI
 * colour/cursor escape sequences from tool outputs (shell tools love them;
 * models gain nothing from them) and optionally squeezes runs of blank lines.
 * Build it, load it with `transform example_transform { }`, and watch its
 * stage appear in /stats.pipeline_timing. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <headroom/plugin.h>

struct state {
    const struct hr_host *host;
    struct hr_instance *self;
    int squeeze_blank_lines;
    size_t max_blank_lines;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("squeeze_blank_lines", HR_CONF_BOOL, "yes", "collapse runs of blank lines"),
    HR_CONF_KEY_MIN("max_blank_lines", HR_CONF_INT, "1", "blank lines kept in a row when squeezing", 0),
    HR_CONF_END,
};

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->self = self;
    s->squeeze_blank_lines = host->conf_bool(conf, "squeeze_blank_lines");
    long long max = host->conf_int(conf, "max_blank_lines");
    if (max < 0) {
        host->log(self, HR_LOG_ERROR, "max_blank_lines must be 0 or more, got %lld", max);
        free(s);
        return HR_EINVAL;
    }
    s->max_blank_lines = (size_t)max;
    *out = s;
    return HR_OK;
}

static void fini(void *state) { free(state); }

/* Length of an escape sequence starting at p (ESC [ params final-byte), or 0. */
static size_t escape_len(const char *p, const char *end)
{
    if (p + 1 >= end || p[0] != '\x1b' || p[1] != '[') return 0;
    const char *q = p + 2;
    while (q < end && ((*q >= '0' && *q <= '9') || *q == ';' || *q == '?')) q++;
    return q < end && *q >= '@' && *q <= '~' ? (size_t)(q - p) + 1 : 0;
}

/* Writes the cleaned text to out (at most len bytes); returns its length. */
static size_t clean(const struct state *s, const char *in, size_t len, char *out)
{
    const char *p = in, *end = in + len;
    size_t n = 0, blank_run = 0;
    int line_has_text = 0;
    while (p < end) {
        size_t esc = escape_len(p, end);
        if (esc) {
            p += esc;
            continue;
        }
        if (*p == '\n') {
            if (!line_has_text) blank_run++;
            else blank_run = 0;
            line_has_text = 0;
            if (s->squeeze_blank_lines && blank_run > s->max_blank_lines) {
                p++;
                continue;
            }
        } else if (*p != ' ' && *p != '\t' && *p != '\r') {
            line_has_text = 1;
        }
        out[n++] = *p++;
    }
    return n;
}

static int apply(void *state, struct hr_request *req)
{
    struct state *s = state;
    size_t changed = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        if (u->flags & (HR_UNIT_PROTECTED | HR_UNIT_HAS_MARKER)) continue;
        char *out = malloc(u->len + 1);
        if (!out) return HR_ENOMEM; /* the host undoes this stage's changes */
        size_t n = clean(s, u->text, u->len, out);
        /* The host refuses a text that is not smaller in tokens: that is fine. */
        if (n < u->len && s->host->unit_replace(req, i, out, n) == HR_OK) changed++;
        free(out);
    }
    if (changed) {
        char tag[64];
        snprintf(tag, sizeof tag, "example_transform:cleaned=%zu", changed);
        s->host->stage_tag(req, tag);
    }
    return HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "example_transform",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "strips ANSI escape sequences and squeezes blank lines in tool outputs",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .apply = apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS, /* reads no unit token count; edits units alone */
    .content_types = 0, /* any content type */
};
