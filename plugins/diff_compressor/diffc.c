/* diffc.c — diff_compressor's core: every added and removed line, hunk
 * header and commit header stays (git's index and ---/+++ lines, which
 * repeat the diff --git line, go); unchanged context is trimmed to
 * context_lines around changes; lockfile, generated, binary and pure-rename
 * file diffs become one line with their counts. */
#include <stdlib.h>
#include <string.h>
#include "diffc.h"

enum { L_TEXT = 0, L_FILE, L_FHDR, L_HUNK, L_ADD, L_DEL, L_CTX, L_NOTE, L_GONE };

static int ends(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && !memcmp(s + n - k, suf, k);
}

/* A diff line whose text, after the marker columns, begins a source map:
 * {"version":3 (blanks allowed between the tokens), as bundlers and
 * compilers write the one-line JSON of a source map. */
static int source_map_start(const char *s, size_t l)
{
    static const char *const toks[] = {"{", "\"version\"", ":", "3", NULL};
    size_t i = 0;
    while (i < l && (s[i] == '+' || s[i] == '-' || s[i] == ' ' || s[i] == '\t'))
        i++;
    for (const char *const *t = toks; *t; t++) {
        size_t m = strlen(*t);
        while (i < l && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (l - i < m || memcmp(s + i, *t, m))
            return 0;
        i += m;
    }
    return i == l || s[i] < '0' || s[i] > '9';
}

/* A file name with a bundler's content hash in it: a part between '.' or
 * '-' of 8 or more letters and digits, with both (main.3f2a9c1e.chunk.js,
 * index-Bx9s2Lq4.js). */
static int hashed_name(const char *b, size_t n)
{
    for (size_t i = 0, j; i < n; i = j + 1) {
        size_t digits = 0, letters = 0, other = 0;
        for (j = i; j < n && b[j] != '.' && b[j] != '-'; j++) {
            unsigned char c = (unsigned char)b[j];
            if ((unsigned)(c - '0') < 10u)
                digits++;
            else if ((unsigned)((c | 0x20) - 'a') < 26u)
                letters++;
            else
                other++;
        }
        if (i > 0 && j < n && j - i >= 8 && digits && letters && !other)
            return 1; /* a middle part: not the name's first word nor its extension */
    }
    return 0;
}

/* A build/ directory (top level or nested) holds hand-written build scripts
 * and config too (Vue CLI 2's build/webpack.base.conf.js, build/ci/…): only
 * JavaScript and CSS that a bundler wrote — minified (a changed line of
 * MINIFIED_LINE bytes or more) or content-hashed — is generated there. */
#define MINIFIED_LINE 1000
static int build_output(const char *p, size_t n, size_t b, size_t longest)
{
    if (!(HR_STARTS(p, n, "build/") || memmem(p, n, "/build/", 7)))
        return 0;
    if (!(ends(p, n, ".js") || ends(p, n, ".mjs") || ends(p, n, ".cjs") || ends(p, n, ".css")))
        return 0;
    return longest >= MINIFIED_LINE || hashed_name(p + b, n - b);
}

/* Under a dist/ directory (top level or nested) sit a package's built
 * files and, in many repositories, hand-written ones: packaging
 * (dist/debian/control, dist/rpm/app.spec, dist/systemd/app.service) and
 * type declarations kept by hand (dist/index.d.ts). A file there is
 * generated only on evidence a tool wrote it: a line only a tool writes
 * (tool_line()), its source map changed beside it, a changed line of
 * MINIFIED_LINE bytes or more, a content-hashed name, or DIST_REBUILT
 * changed lines (a rebuilt bundle: the largest hand edit under dist/ in
 * qBittorrent's last 300 dist/ commits changes 691 lines, a license text;
 * the next 146). */
#define DIST_REBUILT 1000
static int dist_dir(const char *p, size_t n)
{
    return HR_STARTS(p, n, "dist/") || memmem(p, n, "/dist/", 6) != NULL;
}

static int has_ci(const char *s, size_t n, const char *w)
{
    size_t m = strlen(w);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && (s[i + k] | 0x20) == w[k])
            k++;
        if (k == m)
            return 1;
    }
    return 0;
}

/* A line of a file's diff (marker columns included) that only a tool
 * writes: a source map reference, webpack's runtime, the __esModule line tsc
 * and Babel emit, esbuild's helpers; or, among the file's first lines
 * (`top`), a comment saying it was generated ("// Code generated … DO NOT
 * EDIT.", an auto-generated block comment, "# @generated"). */
static int tool_line(const char *s, size_t l, int top)
{
    static const char *const marks[] = {"# sourceMappingURL=", "__webpack_require__", "/******/",
        "Object.defineProperty(exports, \"__esModule\"", "var __defProp = Object.defineProperty", NULL};
    for (const char *const *m = marks; *m; m++)
        if (memmem(s, l, *m, strlen(*m)))
            return 1;
    if (!top)
        return 0;
    size_t i = 0;
    while (i < l && (s[i] == '+' || s[i] == '-' || s[i] == ' ' || s[i] == '\t'))
        i++;
    if (!(HR_STARTS(s + i, l - i, "//") || HR_STARTS(s + i, l - i, "/*") || HR_STARTS(s + i, l - i, "#") ||
          HR_STARTS(s + i, l - i, "*") || HR_STARTS(s + i, l - i, "<!--") || HR_STARTS(s + i, l - i, "--") ||
          HR_STARTS(s + i, l - i, ";")))
        return 0;
    return has_ci(s + i, l - i, "generated") || has_ci(s + i, l - i, "do not edit");
}

/* "@@ -1,5 +1,6 @@", "@@ -0,0 +1,80 @@": a hunk starting at the file's top. */
static int hunk_at_top(const char *s, size_t l)
{
    for (size_t i = 2; i + 1 < l; i++) {
        if ((s[i] != '-' && s[i] != '+') || s[i - 1] != ' ')
            continue;
        size_t v = 0, k = i + 1;
        for (; k < l && k < i + 12 && s[k] >= '0' && s[k] <= '9'; k++)
            v = v * 10 + (size_t)(s[k] - '0');
        if (k > i + 1 && v <= 1)
            return 1;
    }
    return 0;
}

/* Why a file's diff folds: "lockfile" (by its name: package-lock.json, not
 * blocklist.txt or clock.h), "generated" (by suffix or directory), or NULL.
 * p is the path's n bytes inside the diff, not NUL-terminated: every test is
 * bounded by n. A *.map is generated only when a source map: named so
 * (app.js.map) or, when `first` (the file's first changed or context line)
 * begins one; other .map files (linker version scripts, …) are source.
 * `longest`: the file's longest changed line, in bytes; `made`: evidence a
 * tool wrote it (for dist/). */
static const char *bulky_kind(const char *p, size_t n, const char *first, size_t first_len, size_t longest, int made)
{
    static const char *const locks[] = {"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock",
        "poetry.lock", "Gemfile.lock", "composer.lock", "go.sum", "Pipfile.lock", "uv.lock", "bun.lockb", NULL};
    static const char *const sufs[] = {".min.js", ".min.css", ".js.map", ".mjs.map", ".cjs.map", ".css.map",
        ".d.ts.map", ".pb.go", "_pb2.py", ".snap", ".svg", NULL};
    size_t b = n;
    while (b && p[b - 1] != '/')
        b--;
    for (const char *const *x = locks; *x; x++)
        if (n - b == strlen(*x) && !memcmp(p + b, *x, n - b))
            return "lockfile";
    for (const char *const *x = sufs; *x; x++)
        if (ends(p, n, *x))
            return "generated";
    if (first && ends(p, n, ".map") && source_map_start(first, first_len))
        return "generated";
    if (dist_dir(p, n) && (made || longest >= MINIFIED_LINE || hashed_name(p + b, n - b)))
        return "generated";
    if (memmem(p, n, "/generated/", 11) || memmem(p, n, ".generated.", 11) || build_output(p, n, b, longest))
        return "generated";
    return NULL;
}

/* Lines of a git file header that repeat what "diff --git a/P b/P" says:
 * "index 1e5548c..52b0cee 100644" (blob ids a model cannot use) and the
 * "--- a/P" / "+++ b/P" pair (or /dev/null beside "new/deleted file mode"). */
static int redundant_header(const char *s, size_t l, const char *git_path, size_t git_len)
{
    if (HR_STARTS(s, l, "index ") && memmem(s, l, "..", 2))
        return 1;
    if (!git_path || l < 4 || !(HR_STARTS(s, l, "--- ") || HR_STARTS(s, l, "+++ ")))
        return 0;
    const char *p = s + 4;
    size_t m = l - 4;
    if (m == 9 && !memcmp(p, "/dev/null", 9))
        return 1;
    return m == git_len + 2 && (HR_STARTS(p, m, "a/") || HR_STARTS(p, m, "b/")) && !memcmp(p + 2, git_path, git_len);
}

/* "diff --git a/P b/P": P, when both sides name the same path. */
static const char *git_path(const char *s, size_t l, size_t *plen)
{
    /* 13 + k + 3 + k bytes with k >= 1 (an odd length of 18 or more): a
     * shorter line made k wrap around and read far past the line. */
    if (l < 18 || !HR_STARTS(s, l, "diff --git a/") || (l - 13) % 2 == 0)
        return NULL;
    size_t k = (l - 13 - 3) / 2; /* "a/P b/P": P twice, " b/" between */
    const char *a = s + 13, *b = a + k;
    if (!HR_STARTS(b, l - (size_t)(b - s), " b/") || memcmp(a, b + 3, k))
        return NULL;
    *plen = k;
    return a;
}

struct file {
    size_t first, end;   /* lines [first, end) */
    size_t adds, dels;
    const char *path;
    size_t path_len;
    const char *why;     /* non-NULL: collapse to one line */
    const char *git;     /* the path of "diff --git a/P b/P", or NULL */
    size_t git_len;
};

/* The file's path from its "--- " and "+++ " lines: the new name, or the
 * old one when the file is deleted ("+++ /dev/null": a removed
 * package-lock.json is a lockfile too). Without git's a/ and b/, and up to
 * a tab (diff -u writes "\t<date>" after the name). */
static void header_path(struct file *f, const char *s, size_t l)
{
    const char *p = s + 4;
    size_t m = l - 4;
    const char *tab = memchr(p, '\t', m);
    if (tab)
        m = (size_t)(tab - p);
    if (m == 9 && !memcmp(p, "/dev/null", 9))
        return;
    if (s[0] == '-' && f->path)
        return; /* "--- " after "+++ ": not a header pair */
    if (s[0] == '+' ? HR_STARTS(p, m, "b/") : HR_STARTS(p, m, "a/")) /* literals: HR_STARTS takes their sizeof */
        p += 2, m -= 2;
    f->path = p;
    f->path_len = m;
}

int hr_diffc_compress(const void *cfgv, const char *text, size_t len, const char *query, struct hr_text_out *out)
{
    (void)query;
    const struct hr_diffc_config *cfg = cfgv;
    memset(out, 0, sizeof *out);
    size_t n;
    struct hr_line *ln = hr_lines_split(text, len, &n);
    if (!ln)
        return len ? -12 : 1;
    unsigned char *kind = calloc(n ? n : 1, 1), *keep = calloc(n ? n : 1, 1);
    struct file *f = calloc(n ? n : 1, sizeof *f);
    if (!kind || !keep || !f) {
        free(ln), free(kind), free(keep), free(f);
        return -12;
    }
    size_t nf = 0, cols = 1, hunks = 0, headers = 0;
    int in_hunk = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = text + ln[i].off;
        size_t l = ln[i].len;
        if (HR_STARTS(s, l, "diff --git ") || HR_STARTS(s, l, "diff --cc ") || HR_STARTS(s, l, "diff --combined ") ||
            (HR_STARTS(s, l, "--- ") && !in_hunk && i + 1 < n && HR_STARTS(text + ln[i + 1].off, ln[i + 1].len, "+++ ") &&
             (i == 0 || kind[i - 1] != L_FHDR))) {
            if (nf)
                f[nf - 1].end = i;
            f[nf++] = (struct file){.first = i};
            f[nf - 1].git = git_path(s, l, &f[nf - 1].git_len);
            if (HR_STARTS(s, l, "--- ") && l > 4)
                header_path(&f[nf - 1], s, l); /* a plain diff -u: its "--- " line starts the file */
            kind[i] = L_FILE;
            in_hunk = 0;
            continue;
        }
        if (HR_STARTS(s, l, "commit ") || HR_STARTS(s, l, "From ")) {
            if (nf && !f[nf - 1].end)
                f[nf - 1].end = i;
            in_hunk = 0;
        }
        if (l > 3 && s[0] == '@' && s[1] == '@') {
            cols = 0;
            while (cols < l && s[cols] == '@')
                cols++;
            cols--; /* "@@" one column, "@@@" two (combined) */
            kind[i] = L_HUNK;
            in_hunk = 1;
            hunks++;
            continue;
        }
        if (in_hunk && nf && !f[nf - 1].end) {
            if (l == 0 || (s[0] != ' ' && s[0] != '+' && s[0] != '-' && s[0] != '\\')) {
                in_hunk = 0; /* end of the hunk: text after it */
            } else if (s[0] == '\\') {
                kind[i] = L_NOTE;
                continue;
            } else {
                int add = 0, del = 0;
                for (size_t c = 0; c < cols && c < l; c++)
                    add |= s[c] == '+', del |= s[c] == '-';
                kind[i] = add ? L_ADD : del ? L_DEL : L_CTX;
                f[nf - 1].adds += add;
                f[nf - 1].dels += del && !add;
                continue;
            }
        }
        if (nf && !f[nf - 1].end && !in_hunk) {
            kind[i] = L_FHDR;
            if (HR_STARTS(s, l, "Binary files ") || HR_STARTS(s, l, "GIT binary patch"))
                f[nf - 1].why = "binary";
            else if (HR_STARTS(s, l, "similarity index 100%"))
                f[nf - 1].why = "renamed, content unchanged";
            else if ((HR_STARTS(s, l, "+++ ") || HR_STARTS(s, l, "--- ")) && l > 4)
                header_path(&f[nf - 1], s, l);
        }
    }
    if (nf && !f[nf - 1].end)
        f[nf - 1].end = n;
    if (!nf || !hunks) {
        free(ln), free(kind), free(keep), free(f);
        return 2; /* not a diff */
    }
    for (size_t k = 0; k < nf; k++) {
        if (f[k].why || !f[k].path)
            continue;
        const char *first = NULL; /* for a *.map: its first changed or context line */
        size_t first_len = 0, longest = 0;
        if (ends(f[k].path, f[k].path_len, ".map"))
            for (size_t i = f[k].first; i < f[k].end && !first; i++)
                if (kind[i] == L_ADD || kind[i] == L_DEL || kind[i] == L_CTX)
                    first = text + ln[i].off, first_len = ln[i].len;
        for (size_t i = f[k].first; i < f[k].end; i++)
            if ((kind[i] == L_ADD || kind[i] == L_DEL) && ln[i].len > longest)
                longest = ln[i].len;
        int made = f[k].adds + f[k].dels >= DIST_REBUILT;
        if (!made && dist_dir(f[k].path, f[k].path_len)) {
            for (size_t i = f[k].first, top = 0; i < f[k].end && !made; i++) {
                if (kind[i] == L_HUNK)
                    top = hunk_at_top(text + ln[i].off, ln[i].len) ? 5 : 0;
                else if (kind[i] == L_ADD || kind[i] == L_DEL || kind[i] == L_CTX) {
                    made = tool_line(text + ln[i].off, ln[i].len, top > 0);
                    top -= top > 0;
                }
            }
            for (size_t j = 0; j < nf && !made; j++) /* its source map, NAME.map, changed beside it */
                made = j != k && f[j].path && f[j].path_len == f[k].path_len + 4 &&
                       !memcmp(f[j].path, f[k].path, f[k].path_len) && !memcmp(f[j].path + f[k].path_len, ".map", 4);
        }
        f[k].why = bulky_kind(f[k].path, f[k].path_len, first, first_len, longest, made);
    }
    /* keep everything but context far from a change and redundant git headers */
    for (size_t i = 0, fi = 0; i < n; i++) {
        while (fi < nf && f[fi].end <= i)
            fi++;
        keep[i] = kind[i] != L_CTX;
        if (kind[i] == L_FHDR && fi < nf && i >= f[fi].first &&
            redundant_header(text + ln[i].off, ln[i].len, f[fi].git, f[fi].git_len))
            keep[i] = 0, kind[i] = L_GONE, headers++;
    }
    size_t c = cfg->context_lines;
    for (size_t i = 0; i < n; i++) {
        if (kind[i] != L_ADD && kind[i] != L_DEL)
            continue;
        for (size_t k = i; k-- > 0 && i - k <= c && kind[k] == L_CTX;)
            keep[k] = 1;
        for (size_t k = i + 1; k < n && k - i <= c && kind[k] == L_CTX; k++)
            keep[k] = 1;
    }
    size_t dropped = 0, collapsed = 0;
    struct hr_tbuf body = {0};
    for (size_t i = 0, fi = 0; i < n;) {
        while (fi < nf && f[fi].end <= i)
            fi++;
        if (fi < nf && f[fi].first == i && f[fi].why) {
            /* headers stay (rename from/to, Binary files … differ); hunks go */
            size_t gone = 0;
            for (; i < f[fi].end; i++) {
                if (kind[i] == L_FILE || kind[i] == L_FHDR) {
                    hr_tbuf_put(&body, text + ln[i].off, ln[i].len);
                    hr_tbuf_putc(&body, '\n');
                } else if (kind[i] == L_GONE) {
                    dropped++;
                } else {
                    gone++;
                }
            }
            if (gone)
                hr_tbuf_putf(&body, "\xe2\x80\xa6 %s: +%zu -%zu lines, %zu diff lines omitted\n", f[fi].why,
                             f[fi].adds, f[fi].dels, gone);
            dropped += gone;
            collapsed++;
            continue;
        }
        if (keep[i] || kind[i] == L_GONE) {
            if (keep[i]) {
                hr_tbuf_put(&body, text + ln[i].off, ln[i].len);
                hr_tbuf_putc(&body, '\n');
            } else {
                dropped++;
            }
            i++;
            continue;
        }
        size_t e = i;
        while (e < n && !keep[e] && kind[e] != L_GONE && !(fi < nf && f[fi].end == e))
            e++;
        if (e == i)
            e++;
        int edge = (i && kind[i - 1] == L_HUNK) || e == n || kind[e] == L_HUNK || kind[e] == L_FILE ||
                   kind[e] == L_TEXT || kind[e] == L_FHDR;
        if (edge && kind[i] == L_CTX) {
            dropped += e - i; /* leading/trailing context: the hunk header already says where */
        } else if (e - i == 1) {
            hr_tbuf_put(&body, text + ln[i].off, ln[i].len);
            hr_tbuf_putc(&body, '\n');
        } else {
            hr_tbuf_putf(&body, "\xe2\x80\xa6 %zu unchanged lines\n", e - i);
            dropped += e - i;
        }
        i = e;
    }
    int rc = 0;
    if (!dropped) {
        rc = 3;
    } else {
        char what[200], h[64] = "", b[48] = "";
        if (headers)
            snprintf(h, sizeof h, ", %zu index/---/+++ lines", headers);
        if (collapsed)
            snprintf(b, sizeof b, ", %zu bulky file%s", collapsed, collapsed == 1 ? "" : "s");
        snprintf(what, sizeof what, "diff lines omitted (context beyond %zu lines%s%s)", c, h, b);
        hr_text_marker(out, what, dropped, n);
        hr_tbuf_put(&out->b, body.p ? body.p : "", body.len);
        if (body.oom)
            out->b.oom = 1;
    }
    hr_tbuf_free(&body);
    free(ln), free(kind), free(keep), free(f);
    if (rc)
        hr_text_out_free(out);
    return rc;
}
