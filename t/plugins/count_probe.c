/* count_probe.c — a test transform that checks the host's token counts of
 * units against count_tokens of their text, and shows what it found in
 * GET /stats under its name. Built twice:
 *  - count_probe (HR_TF_COUNTS_ON_DEMAND): asks unit_tokens_at_least and,
 *    with `full yes`, unit_tokens; a long never-seen output must still be
 *    uncounted (HR_TOKENS_UNKNOWN) after a small question;
 *  - count_probe_eager (no flag, -DPROBE_EAGER): hr_unit.tokens must be the
 *    exact count of every unit, whatever earlier stages left open;
 *  - count_probe_idle (-DPROBE_NEEDS_UNITS): as count_probe, declaring
 *    HR_TF_NEEDS_UNITS (ABI 1.8), so the host calls it only for requests
 *    with units. Every variant counts its apply calls ("applied").
 * It never edits the request. */
#include <stdatomic.h>
#include <stdlib.h>
#include <jansson.h>
#include <headroom/plugin.h>

#if defined(PROBE_EAGER)
#define PROBE_NAME "count_probe_eager"
#define PROBE_FLAGS 0u
#elif defined(PROBE_NEEDS_UNITS)
#define PROBE_NAME "count_probe_idle"
#define PROBE_FLAGS (HR_TF_COUNTS_ON_DEMAND | HR_TF_NEEDS_UNITS)
#else
#define PROBE_NAME "count_probe"
#define PROBE_FLAGS HR_TF_COUNTS_ON_DEMAND
#endif

/* A text this long is never counted whole to answer "at least 50". */
#define LONG_TEXT (64 * 1024)

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("full", HR_CONF_BOOL, "no", "also ask for whole counts (unit_tokens, at_least(count + 1))"),
    HR_CONF_END,
};

struct state {
    const struct hr_host *host;
    struct hr_instance *self;
    int full;
    atomic_ullong applied, units, unknown, partial, mismatches;
};

static json_t *stats(void *st)
{
    struct state *s = st;
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "applied", (json_int_t)atomic_load(&s->applied), "units",
                     (json_int_t)atomic_load(&s->units), "unknown",
                     (json_int_t)atomic_load(&s->unknown), "partial", (json_int_t)atomic_load(&s->partial),
                     "mismatches", (json_int_t)atomic_load(&s->mismatches));
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->self = self;
    s->full = host->conf_bool(conf, "full");
    if (host->register_stats(self, PROBE_NAME, stats, s) != HR_OK) {
        free(s);
        return HR_EINVAL;
    }
    *out = s;
    return HR_OK;
}

static void fini(void *st) { free(st); }

static void mismatch(struct state *s, size_t i, const char *what, size_t got, size_t want)
{
    s->host->log(s->self, HR_LOG_ERROR, "unit %zu: %s is %zu, count_tokens says %zu", i, what, got, want);
    atomic_fetch_add(&s->mismatches, 1);
}

static int apply(void *st, struct hr_request *req)
{
    struct state *s = st;
    const struct hr_host *h = s->host;
    atomic_fetch_add(&s->applied, 1);
    for (size_t i = 0; i < req->n_units; i++) {
        struct hr_unit *u = &req->units[i];
        size_t exact = h->count_tokens(req->model, u->text, u->len);
        atomic_fetch_add(&s->units, 1);
#ifdef PROBE_EAGER
        if (u->tokens != exact) mismatch(s, i, "hr_unit.tokens", u->tokens, exact);
#else
        if (u->tokens == HR_TOKENS_UNKNOWN) atomic_fetch_add(&s->unknown, 1);
        else if (u->tokens != exact) mismatch(s, i, "hr_unit.tokens", u->tokens, exact);
        size_t small = exact < 50 ? exact : 50;
        if (!h->unit_tokens_at_least(req, i, small)) mismatch(s, i, "at_least(small) = 0, small", small, exact);
        if (u->len >= LONG_TEXT && u->tokens == HR_TOKENS_UNKNOWN) atomic_fetch_add(&s->partial, 1);
        if (s->full) {
            if (!h->unit_tokens_at_least(req, i, exact)) mismatch(s, i, "at_least(count) = 0, count", exact, exact);
            if (h->unit_tokens_at_least(req, i, exact + 1)) mismatch(s, i, "at_least(count + 1) = 1, count", exact, exact);
            size_t whole = h->unit_tokens(req, i);
            if (whole != exact) mismatch(s, i, "unit_tokens", whole, exact);
            if (u->tokens != exact) mismatch(s, i, "hr_unit.tokens after unit_tokens", u->tokens, exact);
        }
#endif
    }
    return HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = PROBE_NAME,
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "test transform: checks the host's unit token counts against count_tokens",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .apply = apply,
    .content_types = 0,
    .transform_flags = PROBE_FLAGS,
};
