/* t/textc_check.h — shared checks of the text-compressor unit tests: run one
 * tool output through a plugin on the fake host, and hold a fixture to its
 * question's evidence lines and its savings floor. Header-only (one test
 * program per plugin includes it). */
#ifndef HR_TEXTC_CHECK_H
#define HR_TEXTC_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "fake_host.h"
#include "slurp.h"
#include "tap.h"

extern const struct headroom_plugin headroom_plugin;

struct tc_result {
    char *text;       /* the unit's text after apply (malloc) */
    size_t in_tokens, out_tokens;
    int rc;
    char tag[512];
    char hash[HR_CCR_HASH_LEN + 1]; /* from "hash=", or "" */
};

/* One tool output of `type` through apply(); `flags` go on the unit. */
static inline struct tc_result tc_run(void *state, const char *text, enum hr_content_type type, const char *query,
                                      uint32_t flags)
{
    struct tc_result res = {0};
    json_t *body = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "user",
                             "content", query ? query : "", "role", "tool", "tool_call_id", "c1", "content", text);
    struct fh_request r;
    if (!body || fh_request_init(&r, body, HR_PROVIDER_OPENAI, query ? query : "") != 0) {
        res.rc = -1;
        json_decref(body);
        return res;
    }
    json_decref(body);
    if (r.req.n_units == 1) {
        r.units[0].type = type;
        r.units[0].flags |= flags;
        res.in_tokens = r.units[0].tokens;
    }
    res.rc = headroom_plugin.apply(state, &r.req);
    if (r.req.n_units == 1) {
        res.text = strdup(r.units[0].text);
        res.out_tokens = r.units[0].tokens;
        const char *h = strstr(res.text, "hash=");
        if (h && strlen(h + 5) >= HR_CCR_HASH_LEN) {
            memcpy(res.hash, h + 5, HR_CCR_HASH_LEN);
            res.hash[HR_CCR_HASH_LEN] = '\0';
        }
    } else {
        res.text = strdup(text); /* under min_tokens: not a unit */
        res.in_tokens = res.out_tokens = fh_count_tokens("", text, strlen(text));
    }
    snprintf(res.tag, sizeof res.tag, "%s", r.tag);
    fh_request_free(&r);
    return res;
}

static inline double tc_savings(const struct tc_result *r)
{
    return r->in_tokens ? 1.0 - (double)r->out_tokens / (double)r->in_tokens : 0;
}

/* Fixture NAME in HR_FIXTURES/text: NAME.txt is the tool output; NAME.evidence
 * holds "# question …", "floor 0.NN", optional "query …", then one
 * evidence substring per line that the compressed text must contain.
 * Checks evidence, floor, marker, CCR round trip and determinism; returns the
 * savings measured. */
static inline double tc_fixture(void *state, const char *name, enum hr_content_type type)
{
    char path[1024];
    size_t len, elen;
    snprintf(path, sizeof path, "%s/text/%s.txt", HR_FIXTURES, name);
    char *text = slurp(path, &len);
    snprintf(path, sizeof path, "%s/text/%s.evidence", HR_FIXTURES, name);
    char *ev = slurp(path, &elen);
    if (!ok(text && ev, "%s: fixture and evidence readable", name)) {
        free(text), free(ev);
        return 0;
    }
    double floor = 0;
    char query[512] = "";
    for (char *l = ev; *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(l, "floor ", 6))
            floor = strtod(l + 6, NULL);
        else if (!strncmp(l, "query ", 6))
            snprintf(query, sizeof query, "%s", l + 6);
        l = nl ? nl + 1 : l + strlen(l);
    }
    int puts_before = fh_ccr_put_unit_calls();
    struct tc_result a = tc_run(state, text, type, query, 0);
    struct tc_result b = tc_run(state, text, type, query, 0);
    ok(fh_ccr_put_unit_calls() > puts_before, "%s: the original is stored through ccr_put_unit (ABI 1.6)", name);
    is_int(a.rc, 0, "%s: apply returns 0", name);
    size_t n_ev = 0, found = 0;
    for (char *l = ev; l < ev + elen; l += strlen(l) + 1) {
        if (!*l || l[0] == '#' || !strncmp(l, "floor ", 6) || !strncmp(l, "query ", 6))
            continue;
        n_ev++;
        if (strstr(a.text, l))
            found++;
        else
            tap_diag("%s: evidence line lost: %s", name, l);
    }
    double s = tc_savings(&a);
    ok(n_ev > 0 && found == n_ev, "%s: %zu/%zu evidence lines survive", name, found, n_ev);
    ok(s >= floor, "%s: saves %.1f%% of tokens (floor %.0f%%; %zu -> %zu)", name, 100 * s, 100 * floor,
       a.in_tokens, a.out_tokens);
    ok(a.hash[0] && !strncmp(a.text, HR_TEXT_MARKER, strlen(HR_TEXT_MARKER)), "%s: marker line first, with hash=", name);
    size_t glen = 0;
    char *orig = a.hash[0] ? fh_ccr_get(a.hash, &glen) : NULL;
    ok(orig && glen == len && !memcmp(orig, text, len), "%s: CCR returns the original bytes", name);
    ok(a.text && b.text && !strcmp(a.text, b.text), "%s: byte-identical on a second run", name);
    free(orig), free(a.text), free(b.text), free(text), free(ev);
    return s;
}
#endif
