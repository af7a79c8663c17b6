/* t/diff_compressor_test.c — diff_compressor on real `git show` (code change,
 * lockfile, binary, rename) and `git log -p -3` of this repository: every
 * added/removed line and hunk header survives, context is trimmed, bulky
 * files fold to one line; combined diffs; bad input; skipped units. */
#include <stdlib.h>
#include <string.h>
#include "textc_check.h"

static struct hr_instance inst = {"diff_compressor"};

/* Every +/-/@@ line of the input is in the output, unless inside a folded file. */
static int changes_kept(const char *in, const char *out, const char *skip_file)
{
    int in_skip = 0, lost = 0;
    for (const char *l = in; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        if (!strncmp(l, "diff --git ", 11))
            in_skip = skip_file && memmem(l, n, skip_file, strlen(skip_file)) != NULL;
        if (!in_skip && n && (l[0] == '+' || l[0] == '-' || !strncmp(l, "@@", 2))) {
            char *line = strndup(l, n);
            if (!strstr(out, line))
                lost++;
            free(line);
        }
        l = nl ? nl + 1 : l + n;
    }
    return lost;
}

int main(void)
{
    void *state;
    struct hr_conf conf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init");
    tc_fixture(state, "git_show_mixed", HR_CT_DIFF);
    tc_fixture(state, "git_log_p", HR_CT_DIFF);
    size_t len;
    char *in = slurp(HR_FIXTURES "/text/git_log_p.txt", &len);
    struct tc_result r = tc_run(state, in, HR_CT_DIFF, "", 0);
    is_int(changes_kept(in, r.text, NULL), 0, "git log -p: every added, removed and hunk header line kept");
    free(r.text), free(in);
    in = slurp(HR_FIXTURES "/text/git_show_mixed.txt", &len);
    r = tc_run(state, in, HR_CT_DIFF, "", 0);
    is_int(changes_kept(in, r.text, "package-lock.json"), 0, "git show: every change line kept outside the lockfile");
    ok(!strstr(r.text, "\"version\": \"1.0.3-patched\""), "the lockfile's lines are folded");
    free(r.text), free(in);

    /* a combined diff (merge) with long unchanged runs */
    char *cc = malloc(100000);
    size_t k = (size_t)sprintf(cc, "diff --cc src/a.c\nindex 1,2..3\n--- a/src/a.c\n+++ b/src/a.c\n@@@ -1,80 -1,80 +1,81 @@@\n");
    for (int i = 0; i < 80; i++)
        k += (size_t)sprintf(cc + k, i == 20 || i == 60 ? "++int merged_%d = 1;\n" : "  int unchanged_%d = 0;\n", i);
    r = tc_run(state, cc, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "++int merged_20 = 1;") && strstr(r.text, "++int merged_60 = 1;") &&
           strstr(r.text, "\xe2\x80\xa6 35 unchanged lines") && strstr(r.text, "@@@ -1,80"),
       "combined diff: merge lines and header kept, the 35 lines between folded");
    ok(strstr(r.text, "unchanged_18 ") && strstr(r.text, "unchanged_62 ") && !strstr(r.text, "unchanged_17 ") &&
           !strstr(r.text, "unchanged_0 "), "context_lines 2 on each side; leading/trailing context beyond it dropped");
    free(r.text), free(cc);
    r = tc_run(state, "@@ nothing\n+x\n-y\n", HR_CT_DIFF, "", 0);
    is_int(r.rc, 0, "bad input: apply returns 0");
    free(r.text);
    in = slurp(HR_FIXTURES "/text/git_log_p.txt", &len);
    r = tc_run(state, in, HR_CT_TEXT, "", 0);
    ok(!strcmp(r.text, in), "a unit typed text is not touched");
    free(r.text), free(in);
    fh_drop_stats(state);
    headroom_plugin.fini(state);
    fh_reset();
    return tap_exit();
}
