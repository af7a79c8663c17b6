/* t/conf_parse_test.c — TAP tests for the config syntax layer (src/conf_parse.c):
 * good syntax from inline text and $srcdir/t/conf/good, every error from t/conf/bad. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "conf_parse.h"

static char err[1024];

/* tap.h's is_str() tests its arguments for NULL, which -Waddress rejects for
 * arrays; passing them through a function hides the array. */
static const char *S(const char *s)
{
    return s;
}

/* The environment the tests see; the real one never leaks in. */
static const char *test_getenv(const char *name)
{
    if (strcmp(name, "HR_TEST_HOME") == 0)
        return "/home/test";
    if (strcmp(name, "HR_TEST_EMPTY") == 0)
        return "";
    if (strcmp(name, "HR_TEST_SPACES") == 0)
        return "a b ; { } #c";
    return NULL;
}

static struct hr_conf_doc *parse(const char *text)
{
    struct hr_conf_doc *doc = NULL;
    int r = hr_conf_parse_string("t.conf", text, strlen(text), test_getenv, &doc, err, sizeof err);

    if (r != 0)
        tap_diag("  parse failed (%d): %s", r, err);
    return doc;
}

/* Parse text that must fail; checks the whole message. */
static void bad(const char *text, const char *want)
{
    struct hr_conf_doc *doc = NULL;
    int r = hr_conf_parse_string("t.conf", text, strlen(text), test_getenv, &doc, err, sizeof err);

    ok(r < 0 && doc == NULL, "rejects: %s", want);
    is_str(S(err), S(want), "  message");
    hr_conf_doc_free(doc);
}

/* First argument of the first top-level directive of `text`, or NULL. */
static char arg0[1024];
static const char *first_arg(const char *text)
{
    struct hr_conf_doc *doc = parse(text);

    if (!doc || doc->root.n_children < 1 || doc->root.children[0].n_args < 1) {
        hr_conf_doc_free(doc);
        return NULL;
    }
    snprintf(arg0, sizeof arg0, "%s", doc->root.children[0].args[0]);
    hr_conf_doc_free(doc);
    return arg0;
}

static void test_example_file(const char *srcdir)
{
    char path[4096];
    struct hr_conf_doc *doc = NULL;
    const struct hr_conf_node *r, *n;
    int rc;

    snprintf(path, sizeof path, "%s/t/conf/good/example.conf", srcdir);
    rc = hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err);
    if (!is_int(rc, 0, "example.conf parses")) {
        tap_diag("  %s", err);
        return;
    }
    is_str(doc->file, S(path), "doc->file is the path as given");
    r = &doc->root;
    is_int(r->n_children, 7, "7 top-level directives");
    n = hr_conf_find(r, "host");
    ok(n && n->n_args == 1 && strcmp(n->args[0], "127.0.0.1") == 0, "host 127.0.0.1");
    ok(n && n->line == 2 && n->col == 1 && n->arg_lines[0] == 2 && n->arg_cols[0] == 6,
       "host positions 2:1, arg 2:6");
    n = hr_conf_find(r, "port");
    ok(n && n->n_args == 1 && strcmp(n->args[0], "8787") == 0 && !n->has_block,
       "port 8787; with trailing comment");
    n = hr_conf_find(r, "openai_api_url");
    ok(n && n->n_args == 1 && strcmp(n->args[0], "https://api.openai.com") == 0, "quoted URL");
    n = hr_conf_find(r, "log_file");
    ok(n && n->n_args == 1 && strcmp(n->args[0], "/var/log/headroom.jsonl") == 0,
       "${HEADROOM_LOG_FILE:-...} falls back to the default");
    n = hr_conf_find(r, "transform");
    ok(n && n->n_args == 1 && strcmp(n->args[0], "smart_crusher") == 0 && n->has_block &&
       n->n_children == 2, "transform smart_crusher block with 2 children");
    if (n && n->n_children == 2) {
        const struct hr_conf_node *c = &n->children[1];
        ok(strcmp(n->children[0].name, "max_items") == 0 && n->children[0].n_args == 1 &&
           strcmp(n->children[0].args[0], "15") == 0, "  max_items 15;");
        ok(strcmp(c->name, "protect_tools") == 0 && c->n_args == 2 &&
           strcmp(c->args[0], "read_file") == 0 && strcmp(c->args[1], "edit_file") == 0 &&
           c->line == 8 && c->col == 5 && c->arg_cols[1] == 29,
           "  protect_tools read_file edit_file at 8:5, second arg col 29");
    }
    n = &r->children[5];
    ok(strcmp(n->name, "sink") == 0 && n->has_block && n->n_children == 0,
       "sink prometheus { } is an empty block");
    n = &r->children[6];
    ok(strcmp(n->name, "transform") == 0 && n->has_block && n->n_children == 0 &&
       strcmp(n->args[0], "router") == 0, "transform router {} is an empty block");
    hr_conf_doc_free(doc);
}

static void test_crlf_bom_files(const char *srcdir)
{
    char path[4096];
    struct hr_conf_doc *doc = NULL;
    const struct hr_conf_node *n;

    snprintf(path, sizeof path, "%s/t/conf/good/crlf.conf", srcdir);
    if (!is_int(hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err), 0, "crlf.conf parses"))
        tap_diag("  %s", err);
    if (doc) {
        n = hr_conf_find(&doc->root, "port");
        ok(n && strcmp(n->args[0], "8787") == 0 && n->line == 3, "CRLF: no stray \\r in args, lines counted");
        n = hr_conf_find(&doc->root, "transform");
        n = n ? hr_conf_find(n, "mode") : NULL;
        ok(n && strcmp(n->args[0], "fast") == 0, "CRLF: quoted string before \\r\\n");
    }
    hr_conf_doc_free(doc);
    doc = NULL;

    snprintf(path, sizeof path, "%s/t/conf/good/bom_nested.conf", srcdir);
    if (!is_int(hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err), 0, "bom_nested.conf parses"))
        tap_diag("  %s", err);
    if (doc) {
        n = hr_conf_find(&doc->root, "name");
        ok(n && n->line == 2 && n->col == 1 && n->n_args == 2 &&
           strcmp(n->args[0], "caf\xc3\xa9 \"quoted\"") == 0 &&
           strcmp(n->args[1], "lit ${X} \\n") == 0, "BOM skipped; escapes; single quotes literal");
        n = hr_conf_find(&doc->root, "a");
        n = n ? hr_conf_find(n, "b") : NULL;
        n = n ? hr_conf_find(n, "c") : NULL;
        n = n ? hr_conf_find(n, "d") : NULL;
        ok(n && n->n_args == 1 && strcmp(n->args[0], "1") == 0, "a { b { c { d 1 } } } on one line");
        n = hr_conf_find(&doc->root, "empty");
        ok(n && n->n_args == 1 && n->args[0][0] == '\0', "\"\" is an empty argument");
    }
    hr_conf_doc_free(doc);
}

static void test_inline_good(void)
{
    struct hr_conf_doc *doc;
    const struct hr_conf_node *n;
    char big[2048];

    doc = parse("");
    ok(doc && doc->root.n_children == 0 && doc->root.has_block && !doc->root.name, "empty text");
    hr_conf_doc_free(doc);
    doc = parse("# only a comment\n\n   \t# another\n;;\n");
    ok(doc && doc->root.n_children == 0, "comments, blank lines and stray ';' only");
    hr_conf_doc_free(doc);

    doc = parse("a 1; b 2 3;c\nd");
    ok(doc && doc->root.n_children == 4 && doc->root.children[1].n_args == 2 &&
       doc->root.children[2].n_args == 0 && strcmp(doc->root.children[3].name, "d") == 0,
       "';' and newline both end directives; last one ends at EOF");
    hr_conf_doc_free(doc);

    doc = parse("blk x { a 1; b 2 } after 3\n");
    ok(doc && doc->root.n_children == 2 && doc->root.children[0].n_children == 2 &&
       strcmp(doc->root.children[0].children[1].args[0], "2") == 0 &&
       strcmp(doc->root.children[1].name, "after") == 0,
       "'}' ends the last directive of a block; a directive may follow on the line");
    hr_conf_doc_free(doc);

    doc = parse("x{y}\nz {\n}\n");
    ok(doc && doc->root.n_children == 2 && doc->root.children[0].n_args == 0 &&
       doc->root.children[0].n_children == 1, "x{y} needs no spaces");
    hr_conf_doc_free(doc);

    doc = parse("  x \"h\xc3\xa9llo\" y\n\tz 1\n");
    n = doc ? &doc->root.children[0] : NULL;
    ok(n && n->col == 3 && n->arg_cols[0] == 5 && n->arg_cols[1] == 13,
       "columns count characters, not bytes");
    ok(doc && doc->root.children[1].line == 2 && doc->root.children[1].col == 2,
       "a tab is one column");
    hr_conf_doc_free(doc);

    doc = parse("Name_1.x-y 1\n_z 2\n");
    ok(doc && doc->root.n_children == 2, "names may hold _ . - and digits, start with _");
    hr_conf_doc_free(doc);

    is_str(first_arg("x \"a\\\"b\\\\c\\nd\\te\\$f\""), "a\"b\\c\nd\te$f", "double-quote escapes");
    is_str(first_arg("x 'a\\n$HOME ${X} \"'"), "a\\n$HOME ${X} \"", "single quotes are literal");
    is_str(first_arg("x ${HR_TEST_HOME}/sub"), "/home/test/sub", "${VAR} in a bare word");
    is_str(first_arg("x \"<${HR_TEST_HOME}>\""), "</home/test>", "${VAR} in double quotes");
    is_str(first_arg("x ${HR_TEST_UNSET:-def val}"), "def val", "default may hold spaces, stays one arg");
    is_str(first_arg("x ${HR_TEST_UNSET:-}"), "", "empty default");
    is_str(first_arg("x ${HR_TEST_EMPTY:-d}"), "d", ":- also applies to an empty variable");
    is_str(first_arg("x ${HR_TEST_EMPTY}."), ".", "a set but empty variable is fine");
    is_str(first_arg("x ${HR_TEST_SPACES}"), "a b ; { } #c", "expansions are not re-split");
    is_str(first_arg("x ${HR_TEST_HOME:-no}"), "/home/test", "set variable wins over default");
    is_str(first_arg("x $$HOME"), "$HOME", "$$ is a literal $");
    is_str(first_arg("x \"$${HR_TEST_HOME}\""), "${HR_TEST_HOME}", "$${...} is not expanded");
    is_str(first_arg("x a$b$"), "a$b$", "a lone $ is kept");
    is_str(first_arg("x a#b # comment"), "a#b", "# inside a word is not a comment");
    is_str(first_arg("x \"a\"#c"), "a", "# right after a quote starts a comment");
    is_str(first_arg("x \"a # b ; {\""), "a # b ; {", "specials inside quotes");

    {
        char *p = big;
        p += sprintf(p, "list");
        for (int i = 0; i < HR_CONF_MAX_ARGS; i++)
            p += sprintf(p, " a%d", i);
        doc = parse(big);
        ok(doc && doc->root.children[0].n_args == HR_CONF_MAX_ARGS &&
           strcmp(doc->root.children[0].args[63], "a63") == 0, "exactly %d args is fine",
           HR_CONF_MAX_ARGS);
        hr_conf_doc_free(doc);
    }
    doc = parse("a{a{a{a{a{a{a{a{leaf 1}}}}}}}}");
    n = doc ? &doc->root : NULL;
    for (int i = 0; n && i < HR_CONF_MAX_DEPTH; i++)
        n = n->n_children == 1 ? &n->children[0] : NULL;
    ok(n && n->n_children == 1 && strcmp(n->children[0].name, "leaf") == 0,
       "exactly %d nested blocks is fine", HR_CONF_MAX_DEPTH);
    hr_conf_doc_free(doc);

    doc = parse("a 1\nb 2\n");
    ok(doc && hr_conf_find(&doc->root, "b") == &doc->root.children[1] &&
       hr_conf_find(&doc->root, "c") == NULL, "hr_conf_find");
    if (doc) {
        int r = hr_conf_errorf(doc, doc->root.children[1].arg_lines[0],
                               doc->root.children[1].arg_cols[0], err, sizeof err,
                               "'%s' is not a number", "2x");
        ok(r == -EINVAL && strcmp(err, "t.conf:2:3: '2x' is not a number") == 0,
           "hr_conf_errorf formats file:line:col");
    }
    hr_conf_doc_free(doc);

    {
        /* NULL lookup means the real environment. */
        struct hr_conf_doc *d = NULL;
        const char *t = "x ${HR_CONF_PARSE_TEST_VAR}";
        setenv("HR_CONF_PARSE_TEST_VAR", "from-env", 1);
        ok(hr_conf_parse_string("t.conf", t, strlen(t), NULL, &d, err, sizeof err) == 0 && d &&
           strcmp(d->root.children[0].args[0], "from-env") == 0, "getenv_fn NULL uses getenv");
        hr_conf_doc_free(d);
        unsetenv("HR_CONF_PARSE_TEST_VAR");
    }
    doc = parse("x 1");
    ok(doc != NULL, "text need not end with a newline");
    hr_conf_doc_free(doc);
    {
        /* Not NUL-terminated: only len bytes may be read. */
        char *buf = malloc(5);
        struct hr_conf_doc *d = NULL;
        memcpy(buf, "ab cd", 5);
        ok(hr_conf_parse_string("t.conf", buf, 5, test_getenv, &d, err, sizeof err) == 0 &&
           d && strcmp(d->root.children[0].args[0], "cd") == 0, "honours len without a NUL");
        hr_conf_doc_free(d);
        free(buf);
    }
}

static void test_inline_bad(void)
{
    bad("a {\n  b \"x\n}\n", "t.conf:2:5: unterminated string (add a closing \")");
    bad("a \"x\\\n\"", "t.conf:1:3: unterminated string (add a closing \")");
    bad("a 'x", "t.conf:1:3: unterminated string (add a closing ')");
    bad("a 1\n}\n", "t.conf:2:1: unexpected '}' (no block is open here)");
    bad("a {\n b {\n }\n", "t.conf:1:1: unclosed block 'a' opened here (add '}')");
    bad("x\n  y {\n", "t.conf:2:3: unclosed block 'y' opened here (add '}')");
    bad("transform router\n\n# c\n{ }",
        "t.conf:4:1: '{' must be on the same line as its directive (move it to the end of "
        "line 1, after 'transform')");
    bad("{", "t.conf:1:1: unexpected '{' (a block needs a directive name before it, e.g. "
        "'transform router {')");
    bad("x ${HR_TEST_UNSET}", "t.conf:1:3: environment variable HR_TEST_UNSET is not set "
        "(set it, or give a default: ${HR_TEST_UNSET:-value})");
    bad("x \"a${HR_TEST_UNSET}\"", "t.conf:1:5: environment variable HR_TEST_UNSET is not set "
        "(set it, or give a default: ${HR_TEST_UNSET:-value})");
    bad("x ${}", "t.conf:1:3: bad environment reference '${}' (write ${NAME} or "
        "${NAME:-default}; NAME is letters, digits and '_'; write $$ for a literal $)");
    bad("x ${A-b}", "t.conf:1:3: bad environment reference '${A-b}' (write ${NAME} or "
        "${NAME:-default}; NAME is letters, digits and '_'; write $$ for a literal $)");
    bad("x ${A\n}", "t.conf:1:3: unterminated ${ (add a closing '}' on the same line)");
    bad("x \"\\x\"", "t.conf:1:4: unknown escape '\\x' in string (known: \\\" \\\\ \\n \\t \\$; "
        "write \\\\ for a backslash or use 'single quotes')");
    bad("x \"\\\xc3\xa9\"", "t.conf:1:4: unknown escape '\\\xc3\xa9' in string (known: \\\" "
        "\\\\ \\n \\t \\$; write \\\\ for a backslash or use 'single quotes')");
    bad("x it's", "t.conf:1:5: quote in the middle of a word (quote the whole value instead, "
        "e.g. \"a b\", or escape it inside double quotes)");
    bad("x 'a''b'", "t.conf:1:6: unexpected text right after a closing quote (put a space "
        "before it, or move it inside the quotes)");
    bad("1x", "t.conf:1:1: bad directive name '1x' (a name starts with a letter or '_' and "
        "holds only letters, digits, '_', '.' and '-')");
    bad("a/b 1", "t.conf:1:1: bad directive name 'a/b' (a name starts with a letter or '_' and "
        "holds only letters, digits, '_', '.' and '-')");
    bad("${HR_TEST_HOME} 1", "t.conf:1:1: a directive name cannot use $ or ${...} (write "
        "the name itself; only arguments are expanded)");
    bad("a$$b 1", "t.conf:1:1: a directive name cannot use $ or ${...} (write "
        "the name itself; only arguments are expanded)");
    bad("'x' 1", "t.conf:1:1: directive name 'x' must not be quoted (write it bare; only "
        "arguments may be quoted)");
    bad("a { b { c { d { e { f { g { h { i {", "t.conf:1:35: blocks nested too deeply (at most "
        "8 levels; a '}' is probably missing above)");
    {
        static const char nul[] = "a 1\nb \0";
        struct hr_conf_doc *doc = NULL;
        int r = hr_conf_parse_string("t.conf", nul, sizeof nul - 1, test_getenv, &doc, err, sizeof err);
        ok(r == -EINVAL && strcmp(err, "t.conf:2:3: NUL byte in file (this looks like a binary "
           "file; the config must be UTF-8 text)") == 0, "NUL byte rejected with position");
    }
    bad("a \x7f", "t.conf:1:3: control character 0x7f (remove it; inside double quotes write "
        "\\t or \\n instead)");
    bad("a \xc0\x80", "t.conf:1:3: invalid UTF-8 (byte 0xc0; save the file as UTF-8)");
    bad("a \xe0\x80\x80", "t.conf:1:3: invalid UTF-8 (byte 0xe0; save the file as UTF-8)");
    bad("a \xf4\x90\x80\x80", "t.conf:1:3: invalid UTF-8 (byte 0xf4; save the file as UTF-8)");
    bad("a \xe2\x82", "t.conf:1:3: invalid UTF-8 (byte 0xe2; save the file as UTF-8)");
    bad("\xc3\xa9\xc3\xa9 \xff", "t.conf:1:4: invalid UTF-8 (byte 0xff; save the file as UTF-8)");
    {
        /* The name echoed in a message is cut short, on a character boundary. */
        char name[300];
        memset(name, 'x', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        name[0] = '9';
        bad(name, "t.conf:1:1: bad directive name '9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
            "(a name starts with a letter or '_' and holds only letters, digits, '_', '.' and '-')");
    }
    {
        /* 9 then 40 two-byte characters: the cut must not split one. */
        char name[100] = "9";
        for (int i = 0; i < 40; i++)
            strcat(name, "\xc3\xa9");
        bad(name, "t.conf:1:1: bad directive name '9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...' (a name "
            "starts with a letter or '_' and holds only letters, digits, '_', '.' and '-')");
    }
    {
        size_t n = HR_CONF_MAX_BYTES + 1;
        char *huge = malloc(n);
        struct hr_conf_doc *doc = NULL;
        int r;
        memset(huge, '#', n);
        r = hr_conf_parse_string("t.conf", huge, n, test_getenv, &doc, err, sizeof err);
        ok(r == -EFBIG && !doc && strncmp(err, "t.conf: config too large", 24) == 0,
           "over 1 MiB is refused: %s", err);
        r = hr_conf_parse_string("t.conf", huge, n - 1, test_getenv, &doc, err, sizeof err);
        ok(r == 0 && doc, "exactly 1 MiB is accepted");
        hr_conf_doc_free(doc);
        free(huge);
    }
    {
        char small[8];
        struct hr_conf_doc *doc = NULL;
        int r = hr_conf_parse_string("t.conf", "}", 1, test_getenv, &doc, small, sizeof small);
        ok(r == -EINVAL && strlen(small) == sizeof small - 1, "message truncated to errlen");
        r = hr_conf_parse_string("t.conf", "}", 1, test_getenv, &doc, NULL, 0);
        ok(r == -EINVAL, "err may be NULL");
    }
}

static void test_files(const char *srcdir)
{
    char path[4400], dir[4096];
    struct hr_conf_doc *doc = NULL;
    DIR *d;
    struct dirent *e;
    int r, n = 0;

    snprintf(path, sizeof path, "%s/t/conf/no-such-file.conf", srcdir);
    r = hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err);
    {
        char want[5000];
        snprintf(want, sizeof want, "%s: cannot open: No such file or directory (pass -c FILE "
                 "or create it)", path);
        ok(r == -ENOENT && !doc, "missing file gives -ENOENT");
        is_str(S(err), S(want), "  message");
    }
    snprintf(path, sizeof path, "%s/t/conf", srcdir);
    r = hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err);
    ok(r == -EISDIR && strstr(err, ": cannot read: Is a directory"), "a directory is refused: %s", err);

    /* Each bad fixture states its expected "line:col: message" prefix on
     * line 1 as "# expect: ...", so adding a case is adding a file. */
    snprintf(dir, sizeof dir, "%s/t/conf/bad", srcdir);
    d = opendir(dir);
    if (!ok(d != NULL, "open %s", dir))
        return;
    while ((e = readdir(d))) {
        char expect[512] = "", want[5000];
        FILE *f;
        size_t len;

        len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        f = fopen(path, "rb");
        if (!f || !fgets(expect, sizeof expect, f) || strncmp(expect, "# expect: ", 10) != 0) {
            ok(0, "%s has a '# expect: ' first line", path);
            if (f)
                fclose(f);
            continue;
        }
        fclose(f);
        expect[strcspn(expect, "\n")] = '\0';
        snprintf(want, sizeof want, "%s:%s", path, expect + 10);
        r = hr_conf_parse_file(path, test_getenv, &doc, err, sizeof err);
        if (!ok(r < 0 && !doc && strncmp(err, want, strlen(want)) == 0, "%s", e->d_name))
            tap_diag("  got  %s\n#   want %s...", err, want);
        hr_conf_doc_free(doc);
        doc = NULL;
        n++;
    }
    closedir(d);
    ok(n >= 15, "found the bad fixtures (%d)", n);
}

int main(void)
{
    const char *srcdir = getenv("srcdir");

    if (!srcdir || !*srcdir)
        srcdir = ".";
    test_example_file(srcdir);
    test_crlf_bom_files(srcdir);
    test_inline_good();
    test_inline_bad();
    test_files(srcdir);
    return tap_exit();
}
