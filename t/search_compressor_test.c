/* t/search_compressor_test.c — search_compressor on real `grep -rn` and
 * `git grep --heading` output of this tree: the matches a question needs
 * survive (BM25 on the question; relevance kept above half the best score),
 * every file keeps its first match, dropped
 * matches are counted per file; --heading groups scored like path:LINE:
 * lines; diagnostics kept; bad input; skipped units. */
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
    /* grouped output (grep -rn): 2 files of 60 matches; 12 lines hold both
     * words of the question, 48 only the common one, the rest neither */
    g = malloc(120 * 96 + 1);
    size_t k = 0;
    for (int i = 0; i < 120; i++) {
        int line = i % 60 + 1;
        const char *file = i < 60 ? "src/a.c" : "src/b.c";
        if (i % 10 == 3)
            k += (size_t)sprintf(g + k, "%s:%d:    flag_%d = read_stream(body);\n", file, line, i);
        else if (i % 10 < 5)
            k += (size_t)sprintf(g + k, "%s:%d:    size_%d = body->len;\n", file, line, i);
        else
            k += (size_t)sprintf(g + k, "%s:%d:    counter_%d += 1;\n", file, line, i);
    }
    r = tc_run(state, g, HR_CT_SEARCH, "where is the stream read from the body", 0);
    size_t strong = 0, weak = 0;
    for (const char *p = r.text; (p = strstr(p, "= read_stream(body);")); p++)
        strong++;
    for (const char *p = r.text; (p = strstr(p, "= body->len;")); p++)
        weak++;
    ok(strong == 10 && weak <= 2, "matches kept by relevance score at least half the best: %zu of 12 naming both words "
       "(5 per file), %zu of 48 sharing one common word (each file's first)", strong, weak);
    ok(strstr(r.text, "\xe2\x80\xa6 54 more matches\n") && !strstr(r.text, "more matches in src/a.c"),
       "grouped output: the dropped count follows the file's own lines, without repeating its path");
    if (!strstr(r.text, "\xe2\x80\xa6 54 more matches\n"))
        tap_diag("%s", r.text);
    free(r.text), free(g);
    /* the same search printed as path:LINE:text and as git grep --heading
     * groups: the question names a file ("otel") but no word of its lines,
     * so only the path tells; both keep the same matches */
    char *flat = malloc(32 * 64 + 1), *grouped = malloc(32 * 64 + 1);
    size_t kf = 0, kg = 0;
    for (int i = 0; i < 32; i++) {
        const char *file = i < 8 ? "plugins/otel/otel.c" : i < 16 ? "src/alpha.c" : i < 24 ? "src/beta.c" : "src/gamma.c";
        if (i % 8 == 0)
            kg += (size_t)sprintf(grouped + kg, "%s%s\n", i ? "\n" : "", file);
        kf += (size_t)sprintf(flat + kf, "%s:%d:    v_%d = strdup(s);\n", file, 10 + i, i);
        kg += (size_t)sprintf(grouped + kg, "%d:    v_%d = strdup(s);\n", 10 + i, i);
    }
    struct tc_result rf = tc_run(state, flat, HR_CT_SEARCH, "what does the otel sink strdup", 0);
    r = tc_run(state, grouped, HR_CT_SEARCH, "what does the otel sink strdup", 0);
    size_t nflat = 0, ngrouped = 0, same = 1;
    for (int i = 0; i < 32; i++) {
        char want[48];
        snprintf(want, sizeof want, "%d:    v_%d = strdup(s);", 10 + i, i);
        int a = strstr(rf.text, want) != NULL, b = strstr(r.text, want) != NULL;
        nflat += a, ngrouped += b, same &= a == b;
    }
    ok(same && nflat == 9, "heading groups are scored with their path, as path:LINE: lines are: %zu and %zu matches "
       "kept, the same ones (the otel file's first and 5 more, each other file's first)", nflat, ngrouped);
    ok(strstr(r.text, "\nsrc/alpha.c (7 more matches)\n18:    v_8 = strdup(s);\n") &&
       strstr(r.text, "\nplugins/otel/otel.c (2 more matches)\n") && !strstr(r.text, "\xe2\x80\xa6"),
       "--heading groups: the dropped count is on the path line, no count line after the group");
    free(rf.text), free(r.text), free(flat), free(grouped);
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
