/* t/diff_compressor_test.c — diff_compressor on real `git show` (code change,
 * lockfile, binary, rename) and `git log -p -3` of this repository: every
 * added/removed line and hunk header survives, context is trimmed, bulky
 * files fold to one line (which do: lockfiles by name, source maps, not
 * lock.c or a linker script's .map); combined diffs; bad input; skipped
 * units. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "textc_check.h"

static struct hr_instance inst = {"diff_compressor"};

/* Every +/-/@@ line of the input is in the output, unless inside a folded
 * file or a git file header ("--- a/P", "+++ b/P": the diff --git line says it). */
static int changes_kept(const char *in, const char *out, const char *skip_file)
{
    int in_skip = 0, lost = 0;
    for (const char *l = in; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        if (!strncmp(l, "diff --git ", 11))
            in_skip = skip_file && memmem(l, n, skip_file, strlen(skip_file)) != NULL;
        int header = !strncmp(l, "--- a/", 6) || !strncmp(l, "+++ b/", 6) || !strncmp(l, "--- /dev/null", 13) ||
                     !strncmp(l, "+++ /dev/null", 13);
        if (!in_skip && !header && n && (l[0] == '+' || l[0] == '-' || !strncmp(l, "@@", 2))) {
            char *line = strndup(l, n);
            if (!strstr(out, line))
                lost++;
            free(line);
        }
        l = nl ? nl + 1 : l + n;
    }
    return lost;
}

/* Append to g (gcap bytes) at k a git diff of one file: `adds` lines "+<stem> N", or the
 * lines given (each already with its marker column), after a header. */
static size_t git_file(char *g, size_t gcap, size_t k, const char *path, int adds, const char *stem, const char *lines)
{
    k = tap_put(g, gcap, k, "diff --git a/%s b/%s\nindex 1e5548c..52b0cee 100644\n--- a/%s\n+++ b/%s\n", path, path,
            path, path);
    if (lines)
        return tap_put(g, gcap, k, "%s", lines);
    k = tap_put(g, gcap, k, "@@ -0,0 +1,%d @@\n", adds);
    for (int i = 0; i < adds; i++)
        k = tap_put(g, gcap, k, "+%s %d\n", stem, i);
    return k;
}

/* A hunk changing one line in the middle of 60 unchanged ones (worth compressing). */
static const char *padded_change(const char *del, const char *add)
{
    static char h[8000];
    size_t k = tap_put(h, sizeof h, 0, "@@ -1,61 +1,61 @@\n");
    for (int i = 0; i < 30; i++)
        k = tap_put(h, sizeof h, k, " int unchanged_%d;\n", i);
    k = tap_put(h, sizeof h, k, "-%s\n+%s\n", del, add);
    for (int i = 30; i < 60; i++)
        k = tap_put(h, sizeof h, k, " int unchanged_%d;\n", i);
    return h;
}

/* A new file's hunk: `n` lines "+<stem> N" then, when `last` is given,
 * "+<last>". */
static const char *bundle_hunk(const char *stem, int n, const char *last)
{
    static char h[20000];
    size_t k = tap_put(h, sizeof h, 0, "@@ -0,0 +1,%d @@\n", n + (last != NULL));
    for (int i = 0; i < n; i++)
        k = tap_put(h, sizeof h, k, "+%s %d\n", stem, i);
    if (last)
        tap_put(h, sizeof h, k, "+%s\n", last);
    return h;
}

/* A change in the middle of a 40-line file: `before` as context above it
 * and `after` below (either may be NULL), each hunk line given. */
static const char *mid_hunk(int at, const char *before, const char *del, const char *add, const char *after)
{
    static char h[8000];
    size_t k = tap_put(h, sizeof h, 0, "@@ -%d,8 +%d,8 @@\n", at, at);
    if (before)
        k = tap_put(h, sizeof h, k, " %s\n", before);
    for (int i = 0; i < 3; i++)
        k = tap_put(h, sizeof h, k, "   step_%d();\n", i);
    k = tap_put(h, sizeof h, k, "-%s\n+%s\n", del, add);
    for (int i = 3; i < 6; i++)
        k = tap_put(h, sizeof h, k, "   step_%d();\n", i);
    if (after)
        tap_put(h, sizeof h, k, " %s\n", after);
    return h;
}

/* Under dist/, only what is evidently generated folds: a source map line or
 * its .map changed beside it, a "generated" / "DO NOT EDIT" comment at the
 * top, webpack's runtime, tsc's and Babel's __esModule line, esbuild's
 * helpers, a content-hashed name (and, above, minified lines and 1,000
 * changed lines). Hand-written files there - type declarations kept by hand,
 * packaging (qBittorrent's dist/unix, dist/windows; dist/debian) - keep
 * their changes: every dist/ file folded before, the edit reduced to
 * "… generated: +1 -1 lines". */
static void dist_evidence(void *state)
{
    size_t gcap = 200000;
    char *g = tap_xmalloc(gcap);
    size_t k = 0;
    char hunk[8000];
    /* generated */
    k = git_file(g, gcap, k, "dist/index.js", 0, NULL, mid_hunk(7121, NULL, "  retries = 1;", "  retries = 2;", "//# sourceMappingURL=index.js.map"));
    k = git_file(g, gcap, k, "dist/lib/util.js", 0, NULL, mid_hunk(1, "Object.defineProperty(exports, \"__esModule\", { value: true });",
                                                                "  return a;", "  return b;", NULL));
    k = git_file(g, gcap, k, "dist/bundle.js", 0, NULL, mid_hunk(90, "/******/ \t\t// Check if module is in cache", "  x = 1;", "  x = 2;", NULL));
    snprintf(hunk, sizeof hunk, "@@ -1,3 +1,3 @@\n // Code generated by protoc-gen-ts. DO NOT EDIT.\n // source: api.proto\n-const v = 1;\n+const v = 2;\n");
    k = git_file(g, gcap, k, "dist/api_pb.js", 0, NULL, hunk);
    k = git_file(g, gcap, k, "dist/esm/index.mjs", 0, NULL, mid_hunk(1, "var __defProp = Object.defineProperty;", "  y = 1;", "  y = 2;", NULL));
    k = git_file(g, gcap, k, "dist/types.d.ts", 0, NULL, "@@ -3,1 +3,2 @@\n export declare const a: number;\n+export declare const b: number;\n");
    k = git_file(g, gcap, k, "dist/types.d.ts.map", 0, NULL, "@@ -1 +1 @@\n-{\"version\":3,\"file\":\"types.d.ts\",\"mappings\":\"AAAA\"}\n"
                                                              "+{\"version\":3,\"file\":\"types.d.ts\",\"mappings\":\"AAAA;AACA\"}\n");
    k = git_file(g, gcap, k, "dist/assets/index-Bx9s2Lq4.js", 0, NULL, mid_hunk(4, NULL, "  z = 1;", "  z = 2;", NULL));
    /* hand-written */
    k = git_file(g, gcap, k, "dist/index.d.ts", 0, NULL,
                       "@@ -10,3 +10,4 @@ export interface Options {\n   timeout?: number;\n }\n export declare function fetchAll(o: Options): Promise<void>;\n"
                       "+export declare function retry(n: number): Promise<void>;\n");
    k = git_file(g, gcap, k, "dist/debian/control", 0, NULL,
                       "@@ -8,3 +8,3 @@ Architecture: any\n Section: net\n-Depends: ${misc:Depends}, libssl3\n+Depends: ${misc:Depends}, libssl3, zlib1g\n Description: proxy\n");
    k = git_file(g, gcap, k, "dist/unix/org.qbittorrent.qBittorrent.desktop", 0, NULL,
                       "@@ -2,3 +2,3 @@\n [Desktop Entry]\n-Categories=Network;FileTransfer;P2P;Qt;\n+Categories=Network;FileTransfer;P2P;Qt;Utility;\n Exec=qbittorrent %U\n");
    k = git_file(g, gcap, k, "dist/windows/installer.nsi", 0, NULL,
                       mid_hunk(40, "; the uninstaller is generated at build time", "  SetCompressor /SOLID lzma", "  SetCompressor /SOLID zlib", NULL));
    snprintf(hunk, sizeof hunk, "@@ -1,3 +1,3 @@\n # Maintained by hand: see README\n [Unit]\n-After=network.target\n+After=network-online.target\n");
    k = git_file(g, gcap, k, "dist/systemd/app.service", 0, NULL, hunk);
    struct tc_result r = tc_run(state, g, HR_CT_DIFF, "", 0);
    static const char *const made[] = {"dist/index.js", "dist/lib/util.js", "dist/bundle.js", "dist/api_pb.js",
        "dist/esm/index.mjs", "dist/types.d.ts", "dist/types.d.ts.map", "dist/assets/index-Bx9s2Lq4.js"};
    size_t folded = 0;
    for (size_t i = 0; i < sizeof made / sizeof *made; i++) {
        char want[300];
        snprintf(want, sizeof want, "diff --git a/%s b/%s\n\xe2\x80\xa6 generated: ", made[i], made[i]);
        folded += strstr(r.text, want) != NULL;
        if (!strstr(r.text, want))
            tap_diag("not folded: %s", made[i]);
    }
    is_int((long long)folded, (long long)(sizeof made / sizeof *made),
           "under dist/: a source map line or its .map beside it, a DO NOT EDIT header, webpack, __esModule, esbuild "
           "helpers, a hashed name: generated");
    static const char *const hand[] = {"+export declare function retry(n: number): Promise<void>;\n",
        "-Depends: ${misc:Depends}, libssl3\n+Depends: ${misc:Depends}, libssl3, zlib1g\n",
        "+Categories=Network;FileTransfer;P2P;Qt;Utility;\n", "+  SetCompressor /SOLID zlib\n",
        "+After=network-online.target\n"};
    size_t kept = 0;
    for (size_t i = 0; i < sizeof hand / sizeof *hand; i++) {
        kept += strstr(r.text, hand[i]) != NULL;
        if (!strstr(r.text, hand[i]))
            tap_diag("lost: %s", hand[i]);
    }
    is_int((long long)kept, (long long)(sizeof hand / sizeof *hand),
           "hand-written dist/index.d.ts, dist/debian/control, a .desktop, an NSIS script (\"generated\" in a comment "
           "not at its top) and a unit file keep their changes");
    ok(strstr(r.text, ", 8 bulky files)") != NULL, "the marker counts the 8 generated files");
    if (folded + kept != sizeof made / sizeof *made + sizeof hand / sizeof *hand)
        tap_diag("%s", r.text);
    free(r.text), free(g);
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
    size_t k;

    /* git's index and ---/+++ lines repeat the diff --git line; elsewhere they are the only file name */
    size_t gcap = 8000;
    char *g = tap_xmalloc(gcap);
    k = tap_put(g, gcap, 0, "diff --git a/src/x.c b/src/x.c\nindex 1e5548c..52b0cee 100644\n--- a/src/x.c\n+++ b/src/x.c\n"
                        "@@ -1,62 +1,62 @@\n-int a = 1;\n+int a = 2;\n");
    for (int i = 0; i < 60; i++) /* enough unchanged lines to be worth compressing */
        k = tap_put(g, gcap, k, " int unchanged_padding_%d;\n", i);
    k = tap_put(g, gcap, k, "diff --git a/src/old.c b/src/new.c\nsimilarity index 90%%\nrename from src/old.c\n"
                        "rename to src/new.c\nindex 3d74336..ad88625 100644\n--- a/src/old.c\n+++ b/src/new.c\n"
                        "@@ -1,2 +1,2 @@\n-int b = 1;\n+int b = 2;\n"
                        "diff --git a/t/y.c b/t/y.c\nnew file mode 100644\nindex 0000000..02d63bb\n--- /dev/null\n"
                        "+++ b/t/y.c\n@@ -0,0 +1,1 @@\n+int y;\n");
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(r.rc == 0 && !strstr(r.text, "index 1e5548c") && !strstr(r.text, "--- a/src/x.c") && !strstr(r.text, "+++ b/src/x.c") &&
           !strstr(r.text, "--- /dev/null") && !strstr(r.text, "+++ b/t/y.c") && strstr(r.text, "diff --git a/src/x.c b/src/x.c\n@@") &&
           strstr(r.text, "new file mode 100644\n@@ -0,0"),
       "git diff: index lines and ---/+++ lines that repeat the diff --git line are dropped");
    if (!strstr(r.text, "new file mode 100644\n@@ -0,0"))
        tap_diag("%s", r.text);
    ok(strstr(r.text, "--- a/src/old.c\n+++ b/src/new.c\n") && strstr(r.text, "rename from src/old.c") &&
           strstr(r.text, "-int b = 1;\n+int b = 2;"), "a rename keeps its --- a/old +++ b/new lines");
    free(r.text);
    k = tap_put(g, gcap, 0, "--- src/x.c.orig\n+++ src/x.c\n@@ -1,2 +1,2 @@\n-int a = 1;\n+int a = 2;\n unchanged;\n");
    for (int i = 0; i < 80; i++)
        k = tap_put(g, gcap, k, " int filler_%d;\n", i);
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "hash=") && strstr(r.text, "--- src/x.c.orig\n+++ src/x.c\n"),
       "a plain unified diff, compressed, keeps its ---/+++ lines (the only file names)");
    free(r.text), free(g);

    /* Which files fold, and as what. The path is a span of the diff, not a
     * C string: "lock" in a later file ("this block") once made a generated
     * file a "lockfile". A lockfile is one by its name, not by "lock" in it. */
    g = tap_xmalloc(gcap = 100000);
    k = git_file(g, gcap, 0, "web/app.min.js", 80, "var x", NULL);
    k = git_file(g, gcap, k, "src/main.c", 0, NULL, padded_change("return 0;", "return 1;"));
    k = git_file(g, gcap, k, "notes.txt", 0, NULL, "@@ -3,1 +3,2 @@\n line 3\n+this block is new\n");
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "\xe2\x80\xa6 generated: +80 -0 lines, 81 diff lines omitted") && !strstr(r.text, "lockfile"),
       "app.min.js is 'generated' though a later file says 'block'");
    ok(strstr(r.text, ", 1 bulky file)") != NULL, "the marker says '1 bulky file'");
    if (!strstr(r.text, ", 1 bulky file)"))
        tap_diag("%.300s", r.text);
    free(r.text);
    k = git_file(g, gcap, 0, "web/dist/clock.js", 0, NULL, bundle_hunk("var t", 79, "//# sourceMappingURL=clock.js.map"));
    k = git_file(g, gcap, k, "frontend/yarn.lock", 80, "  resolved x", NULL);
    k = git_file(g, gcap, k, "src/lock.c", 0, NULL, padded_change("int held;", "int held = 1;"));
    k = git_file(g, gcap, k, "include/clock.h", 0, NULL, "@@ -1,1 +1,2 @@\n int tick;\n+int tock;\n");
    k = git_file(g, gcap, k, "data/blocklist.txt", 0, NULL, "@@ -1,1 +1,2 @@\n a.example\n+b.example\n");
    k = git_file(g, gcap, k, "docs/Cargo.lock.md", 0, NULL, "@@ -1,1 +1,2 @@\n # Cargo.lock\n+Why it is committed.\n");
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "diff --git a/web/dist/clock.js b/web/dist/clock.js\n\xe2\x80\xa6 generated: +80 -0") &&
           strstr(r.text, "diff --git a/frontend/yarn.lock b/frontend/yarn.lock\n\xe2\x80\xa6 lockfile: +80 -0") &&
           strstr(r.text, ", 2 bulky files)"),
       "dist/clock.js is generated, not a lockfile; yarn.lock in a subdirectory is one; '2 bulky files'");
    ok(strstr(r.text, "+int held = 1;") && strstr(r.text, "+int tock;") && strstr(r.text, "+b.example") &&
           strstr(r.text, "+Why it is committed."),
       "lock.c, clock.h, blocklist.txt and Cargo.lock.md are source: their changes stay");
    free(r.text);

    /* *.map: source maps fold (by name, or by their {"version":3 start);
     * a linker version script or any other .map is source */
    k = git_file(g, gcap, 0, "src/sdk/libheadroom.map", 0, NULL,
                       "@@ -29,3 +29,8 @@ HEADROOM_1.1 {\n         hr_x;\n     local: *;\n };\n+HEADROOM_1.2 {\n"
                       "+    global:\n+        hr_last_http_status;\n+} HEADROOM_1.1;\n+\n");
    k = git_file(g, gcap, k, "src/main.c", 0, NULL, padded_change("return 0;", "return 1;"));
    k = git_file(g, gcap, k, "web/app.js.map", 0, NULL,
                       "@@ -1 +1 @@\n-{\"version\":3,\"sources\":[\"a.ts\"],\"mappings\":\"AAAA\"}\n"
                       "+{\"version\":3,\"sources\":[\"a.ts\"],\"mappings\":\"AAAA;AACA\"}\n");
    k = git_file(g, gcap, k, "static/theme.map", 0, NULL,
                       "@@ -0,0 +1 @@\n+{ \"version\": 3, \"file\": \"theme.css\", \"mappings\": \"AAAA\" }\n");
    k = git_file(g, gcap, k, "levels/one.map", 0, NULL, "@@ -1,1 +1,2 @@\n #####\n+#.@.#\n");
    k = git_file(g, gcap, k, "maps/v.map", 0, NULL, "@@ -0,0 +1 @@\n+{\"version\":30}\n");
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "+HEADROOM_1.2 {\n+    global:\n+        hr_last_http_status;\n+} HEADROOM_1.1;\n+\n") &&
           strstr(r.text, "+#.@.#") && strstr(r.text, "+{\"version\":30}"),
       "a linker version script (libheadroom.map) and other .map files keep every added line");
    ok(strstr(r.text, "diff --git a/web/app.js.map b/web/app.js.map\n\xe2\x80\xa6 generated: +1 -1") &&
           strstr(r.text, "diff --git a/static/theme.map b/static/theme.map\n\xe2\x80\xa6 generated: +1 -0") &&
           strstr(r.text, ", 2 bulky files)"),
       "app.js.map and a .map that begins {\"version\": 3 fold as generated");
    if (!strstr(r.text, "hr_last_http_status"))
        tap_diag("%s", r.text);
    free(r.text), free(g);

    /* A deleted lockfile ("+++ /dev/null": the name is on the "--- a/" line)
     * folds; a deleted source file keeps its lines. */
    g = tap_xmalloc(gcap = 400000);
    k = tap_put(g, gcap, 0, "diff --git a/package-lock.json b/package-lock.json\ndeleted file mode 100644\n"
                        "index 3b18e51..0000000\n--- a/package-lock.json\n+++ /dev/null\n@@ -1,3000 +0,0 @@\n");
    for (int i = 0; i < 3000; i++)
        k = tap_put(g, gcap, k, "-      \"resolved\": \"https://registry.npmjs.org/pkg-%d/-/pkg-%d-1.0.%d.tgz\",\n", i, i, i);
    k = tap_put(g, gcap, k, "diff --git a/src/old.c b/src/old.c\ndeleted file mode 100644\nindex 1e5548c..0000000\n"
                        "--- a/src/old.c\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-int old_helper(void);\n-int old_flag;\n");
    k = git_file(g, gcap, k, "src/main.c", 0, NULL, padded_change("return 0;", "return 1;"));
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "diff --git a/package-lock.json b/package-lock.json\ndeleted file mode 100644\n"
                      "\xe2\x80\xa6 lockfile: +0 -3000 lines, 3001 diff lines omitted\n") && !strstr(r.text, "pkg-17/"),
       "a deleted package-lock.json folds as a lockfile (%zu -> %zu tokens)", r.in_tokens, r.out_tokens);
    ok(strstr(r.text, "-int old_helper(void);\n-int old_flag;\n") && strstr(r.text, "+return 1;"),
       "a deleted source file keeps its removed lines");
    if (!strstr(r.text, "lockfile: +0 -3000"))
        tap_diag("%.600s", r.text);
    free(r.text);
    /* The same in a plain diff -u, whose ---/+++ lines end in a tab and a date. */
    k = tap_put(g, gcap, 0, "--- yarn.lock.orig\t2026-12-07 14:02:11.000000000 +0000\n"
                        "+++ yarn.lock\t2026-12-07 14:05:37.000000000 +0000\n@@ -1,0 +1,400 @@\n");
    for (int i = 0; i < 400; i++)
        k = tap_put(g, gcap, k, "+  resolved \"https://registry.yarnpkg.com/pkg-%d/-/pkg-%d-2.%d.0.tgz\"\n", i, i, i);
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "\n\xe2\x80\xa6 lockfile: +400 -0 lines, 401 diff lines omitted\n") != NULL,
       "diff -u of yarn.lock (a date after the name) folds as a lockfile");
    free(r.text);

    /* Build output under a top-level dist/ folds as under a nested one (a
     * rebuilt bundle: 1,000 changed lines); under build/, JavaScript and CSS
     * a bundler wrote (minified, or named with a content hash) does,
     * hand-written build scripts and config do not. */
    char mini[3000];
    memset(mini, 'x', sizeof mini - 1);
    memcpy(mini, "+!function(e){", 14);
    mini[sizeof mini - 1] = '\0';
    char hunk[3100];
    snprintf(hunk, sizeof hunk, "@@ -1 +1 @@\n-!function(){}\n%s\n", mini);
    k = git_file(g, gcap, 0, "dist/app.js", 1000, "  var bundled =", NULL);
    k = git_file(g, gcap, k, "build/static/js/main.3f2a9c1e.chunk.js", 200, "  a=b", NULL);
    k = git_file(g, gcap, k, "build/static/css/app.css", 0, NULL, hunk);
    k = git_file(g, gcap, k, "web/build/bundle.js", 0, NULL, hunk);
    k = git_file(g, gcap, k, "build/webpack.base.conf.js", 0, NULL,
                       "@@ -10,1 +10,2 @@\n   entry: { app: './src/main.js' },\n+  devtool: 'source-map',\n");
    k = git_file(g, gcap, k, "build/ci/Dockerfile", 0, NULL, "@@ -1,1 +1,2 @@\n FROM debian:12\n+RUN apt-get update\n");
    k = git_file(g, gcap, k, "build/build-2024.js", 0, NULL, "@@ -1,1 +1,2 @@\n require('./check')\n+require('./lint')\n");
    k = git_file(g, gcap, k, "src/distance.c", 0, NULL, padded_change("int d;", "int d = 0;"));
    k = git_file(g, gcap, k, "redist/notes.js", 0, NULL, "@@ -1,1 +1,2 @@\n // notes\n+// more notes\n");
    r = tc_run(state, g, HR_CT_DIFF, "", 0);
    ok(strstr(r.text, "diff --git a/dist/app.js b/dist/app.js\n\xe2\x80\xa6 generated: +1000 -0") != NULL,
       "a rebuilt bundle under a top-level dist/ folds as generated");
    ok(strstr(r.text, "main.3f2a9c1e.chunk.js\n\xe2\x80\xa6 generated: +200 -0") &&
           strstr(r.text, "build/static/css/app.css\n\xe2\x80\xa6 generated: +1 -1") &&
           strstr(r.text, "web/build/bundle.js\n\xe2\x80\xa6 generated: +1 -1") && strstr(r.text, ", 4 bulky files)"),
       "a content-hashed or minified bundle under build/ folds as generated; '4 bulky files'");
    ok(strstr(r.text, "+  devtool: 'source-map',\n") && strstr(r.text, "+RUN apt-get update\n") &&
           strstr(r.text, "+require('./lint')\n") && strstr(r.text, "+int d = 0;\n") && strstr(r.text, "+// more notes\n"),
       "hand-written build/webpack.base.conf.js, build/ci/Dockerfile, build/build-2024.js, src/distance.c and "
       "redist/notes.js keep their lines");
    if (!strstr(r.text, ", 4 bulky files)"))
        tap_diag("%s", r.text);
    free(r.text), free(g);
    dist_evidence(state);

    /* a combined diff (merge) with long unchanged runs */
    size_t ccap = 100000;
    char *cc = tap_xmalloc(ccap);
    k = tap_put(cc, ccap, 0, "diff --cc src/a.c\nindex 1,2..3\n--- a/src/a.c\n+++ b/src/a.c\n@@@ -1,80 -1,80 +1,81 @@@\n");
    for (int i = 0; i < 80; i++)
        k = tap_put(cc, ccap, k, i == 20 || i == 60 ? "++int merged_%d = 1;\n" : "  int unchanged_%d = 0;\n", i);
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
