/* t/search_compressor_test.c — search_compressor on real `grep -rn` and
 * `git grep --heading` output of this tree: the matches a question needs
 * survive (BM25 on the question), every file keeps its first match, dropped
 * matches are counted per file; diagnostics kept; bad input; skipped units. */
#include <stdlib.h>
#include <string.h>
#include "textc_check.h"

static struct hr_instance inst = {"search_compressor"};

static char *many(const char *fmt, int n)
{
    char *s = malloc((size_t)n * 160 + 1);
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, fmt, i % 9, i, i);
    s[k] = '\0';
    return s;
}

int main(void)
{
    void *state;
    struct hr_conf conf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init");
    tc_fixture(state, "grep_rn_src", HR_CT_SEARCH);
    tc_fixture(state, "git_grep_heading", HR_CT_SEARCH);

    char *g = many("src/mod%d.c:%d:    counter_%d += 1;\n", 600);
    struct tc_result r = tc_run(state, g, HR_CT_SEARCH, "", 0);
    ok(strstr(r.text, "src/mod0.c:0:") && strstr(r.text, "src/mod8.c:8:"), "no query: every file keeps its first match");
    ok(strstr(r.text, "more matches in src/mod3.c") != NULL, "dropped matches counted per file");
    ok(r.out_tokens * 5 < r.in_tokens, "600 matches in 9 files shrink (%zu -> %zu)", r.in_tokens, r.out_tokens);
    free(r.text);
    r = tc_run(state, g, HR_CT_SEARCH, "what happens to counter_417", 0);
    ok(strstr(r.text, "counter_417 += 1") != NULL, "the match the question names is kept");
    free(r.text);
    strcpy(strstr(g, "src/mod5.c:203:"), "src/mod5.c:203:7: error: 'counter_203' undeclared\n");
    r = tc_run(state, g, HR_CT_SEARCH, "", 0);
    ok(strstr(r.text, "error: 'counter_203' undeclared") != NULL, "a compiler diagnostic in grep-like output is kept");
    free(r.text);
    r = tc_run(state, g, HR_CT_LOG, "", 0);
    ok(!strcmp(r.text, g), "a unit typed log is left to log_compressor");
    free(r.text), free(g);
    r = tc_run(state, "not:search\nat:all\nreally\n", HR_CT_SEARCH, "", 0);
    is_int(r.rc, 0, "bad input: apply returns 0");
    free(r.text);
    g = many("no path here %d %d %d words words words words words words words\n", 400);
    r = tc_run(state, g, HR_CT_SEARCH, "", 0);
    ok(!strcmp(r.text, g), "text without path:line: prefixes is left as is");
    free(r.text), free(g);
    fh_drop_stats(state);
    headroom_plugin.fini(state);
    fh_reset();
    return tap_exit();
}
