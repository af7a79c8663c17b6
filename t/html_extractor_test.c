/* t/html_extractor_test.c — html_extractor on real HTML documentation pages
 * shipped in Debian packages (Node.js, Debian Python Policy, libffi) and a
 * generated page with planted needles: every evidence line survives, chrome
 * (scripts, styles, nav, header/footer, cookie banner, sidebar, forms,
 * comments) is gone, entities are decoded; link_urls; and a fuzz-ish pass
 * over truncated and garbled pages (no crash under ASan, never larger). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "htmlx.h"
#include "textc_check.h"

static struct hr_instance inst = {"html_extractor"};

static char *core(const struct hr_htmlx_config *c, const char *html, int *rc)
{
    struct hr_text_out o;
    *rc = hr_htmlx_compress(c, html, strlen(html), "", &o);
    if (*rc)
        return NULL;
    char *s = strdup(strchr(o.b.p, '\n') + 1); /* without the marker line */
    hr_text_out_free(&o);
    return s;
}

/* Every prefix of text[0..upto) and `flips` garbled copies: no crash, and a
 * result is always smaller than its input. Returns the number of failures. */
static int fuzz(const struct hr_htmlx_config *c, const char *text, size_t len, size_t upto, int flips, uint32_t seed)
{
    int bad = 0;
    char *buf = malloc(len + 1);
    for (size_t n = 0; n <= upto && n <= len; n++) {
        memcpy(buf, text, n); /* an exact-size copy: ASan sees any read past n */
        char *exact = malloc(n + 1);
        memcpy(exact, buf, n);
        exact[n] = '\0';
        struct hr_text_out o;
        int rc = hr_htmlx_compress(c, exact, n, "", &o);
        if (rc == 0) {
            bad += o.b.len >= n;
            hr_text_out_free(&o);
        }
        free(exact);
    }
    static const char junk[] = "<>&;/\"'=!-#x \n\0abc";
    for (int k = 0; k < flips; k++) {
        memcpy(buf, text, len);
        for (int f = 0; f < 64; f++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1664525u + 1013904223u;
            buf[at] = (seed >> 9) & 1 ? junk[(seed >> 12) % (sizeof junk - 1)] : (char)(seed >> 16);
        }
        seed = seed * 1664525u + 1013904223u;
        size_t n = len - (seed >> 8) % (len / 4 + 1); /* and cut somewhere in the last quarter */
        char *exact = malloc(n + 1);
        memcpy(exact, buf, n);
        exact[n] = '\0';
        struct hr_text_out o;
        int rc = hr_htmlx_compress(c, exact, n, "", &o);
        if (rc == 0) {
            bad += o.b.len >= n;
            hr_text_out_free(&o);
        }
        free(exact);
    }
    free(buf);
    return bad;
}

int main(void)
{
    void *state;
    struct hr_conf conf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init");
    tc_fixture(state, "nodejs_path", HR_CT_HTML);
    tc_fixture(state, "python_policy", HR_CT_HTML);
    tc_fixture(state, "libffi_closure", HR_CT_HTML);
    tc_fixture(state, "html_needles", HR_CT_HTML);

    size_t len;
    char *in = slurp(HR_FIXTURES "/text/html_needles.txt", &len);
    struct tc_result r = tc_run(state, in, HR_CT_HTML, "", 0);
    const char *gone[] = {"We use cookies", "Accept all", "gtag(", ".c7{", "Subscribe to our newsletter",
                          "All rights reserved", "reference 3", "docs-builder", "Docs ›", "Example Cloud</a>",
                          "<p>", "&amp;", NULL};
    int leaked = 0;
    for (const char **g = gone; *g; g++)
        if (strstr(r.text, *g))
            tap_diag("chrome left in: %s", *g), leaked++;
    is_int(leaked, 0, "needles page: banner, scripts, styles, form, footer, sidebar, breadcrumb, comments, tags gone");
    ok(strstr(r.text, "export status page") && !strstr(r.text, "https://status.example.com"),
       "a link reads as its text (link_urls off by default)");
    ok(!strncmp(r.tag, "html_extractor:kept=", 20), "stage tag %s", r.tag);
    free(r.text);
    r = tc_run(state, in, HR_CT_TEXT, "", 0);
    ok(!strcmp(r.text, in), "a unit typed text is not touched");
    free(r.text), free(in);
    /* A page with nothing to drop (no script, style, nav, ...): its marker
     * said "0 of 364 html elements dropped (scripts, styles, navigation,
     * boilerplate)". */
    char *plain = malloc(40000);
    size_t pl = (size_t)sprintf(plain, "<!DOCTYPE html>\n<html><head><title>Release notes</title></head><body>\n");
    for (int i = 0; i < 120; i++)
        pl += (size_t)sprintf(plain + pl, "<div class=\"entry\"><h3 id=\"v%d\">Version 1.%d</h3>\n<p>Fixed <em>issue</em> "
                              "<code>#%d</code> in the <b>parser</b>.</p></div>\n", i, i, 4000 + i);
    sprintf(plain + pl, "</body></html>\n");
    r = tc_run(state, plain, HR_CT_HTML, "", 0);
    const char *nl = strchr(r.text, '\n');
    ok(r.rc == 0 && !strncmp(r.text, "[headroom: html markup removed, no element dropped; readable text of a ", 71) &&
           nl && strstr(r.text, "-byte page; headroom_retrieve hash=") < nl && !strstr(r.text, "elements dropped") &&
           strstr(r.text, "\n### Version 1.119\nFixed issue #4119 in the parser.\n"),
       "a page with nothing to drop: the marker says markup was removed, not \"0 of N elements dropped\"");
    if (strncmp(r.text, "[headroom: html markup removed", 30))
        tap_diag("%.300s", r.text);
    size_t glen = 0;
    char *orig = r.hash[0] ? fh_ccr_get(r.hash, &glen) : NULL;
    ok(orig && glen == strlen(plain) && !memcmp(orig, plain, glen), "and its hash= returns the page");
    free(orig), free(r.text), free(plain);
    fh_drop_stats(state);
    headroom_plugin.fini(state);

    /* the core directly: structure, entities, links */
    struct hr_htmlx_config c = {0, 1}, cl = {1, 1};
    int rc;
    char *s = core(&c, "<html><head><title>T &amp; U</title><style>p{}</style></head><body>"
                       "<h1>Big</h1><h3>Small</h3><p>a&lt;b&gt;c &quot;q&quot; &#65;&#x42; caf&eacute;&nbsp;x &bogus; &#0;</p>"
                       "<ul><li>one<li>two<ul><li>deep</li></ul></ul><table><tr><th>k<th>v<tr><td>1<td><p>2</p></table>"
                       "<pre>  keep   this\n    indent</pre><p>t<!-- hidden -->u <script>var x='</p>'</script>v</p>"
                       "<div class=\"Cookie-Notice\">no</div><div hidden>no</div><div role=navigation>no</div>"
                       "<p>tail<a href=\"#x\">\xc2\xb6</a></p></body></html>", &rc);
    is_int(rc, 0, "core: a small page extracts");
    is_str(s, "Title: T & U\n# Big\n### Small\na<b>c \"q\" AB caf\xc3\xa9 x &bogus; \xef\xbf\xbd\n- one\n- two\n  - deep\n"
              "k | v\n1 | 2\n```\n  keep   this\n    indent\n```\ntu v\ntail\n",
           "core: title, headings, entities, nested lists, table rows, pre verbatim, comments/scripts/boilerplate dropped");
    free(s);
    const char *linky = "<p>Read <a href=\"https://example.org/a?x=1&amp;y=2\">the spec</a> and "
                        "<a href=\"/rel\">this</a> or <a href=\"https://e.org/\">https://e.org/</a>. "
                        "padding padding padding padding padding padding padding padding</p>";
    char big[2048];
    snprintf(big, sizeof big, "%s<style>%0600d</style>", linky, 0); /* room for the marker line */
    s = core(&cl, big, &rc);
    is_str(s, "Read the spec (https://example.org/a?x=1&y=2) and this or https://e.org/. padding padding padding "
              "padding padding padding padding padding\n", "link_urls: absolute links read \"text (url)\"");
    free(s);
    s = core(&c, "<script>only()</script><style>x{}</style>", &rc);
    is_int(rc, 1, "nothing readable: left as is");
    free(s);
    s = core(&c, "plain text with no markup at all", &rc);
    is_int(rc, 2, "not smaller: left as is");
    free(s);

    /* The marker names the kinds of elements the page lost, and only those:
     * it said "(scripts, styles, navigation, boilerplate)" whatever was
     * dropped (a man page that lost one <style> block, a page that lost a
     * form). */
    static const struct {
        const char *chrome, *want;
    } kinds[] = {
        {"<style>p{margin:0}</style>", "(styles)"},
        {"<nav><a href=\"/\">Home</a></nav>", "(navigation)"},
        {"<div class=\"breadcrumb\">Docs</div>", "(navigation)"},
        {"<script>track()</script><form action=\"/s\"><input name=q><button>Go</button></form>", "(scripts, forms)"},
        {"<div hidden>draft</div><footer>(c) 2026</footer>", "(boilerplate, hidden elements)"},
        {"<iframe src=\"/ad\"></iframe><aside role=complementary>More</aside>", "(boilerplate, embeds)"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char page[8192];
        size_t pn = (size_t)snprintf(page, sizeof page, "<!DOCTYPE html><html><head><title>Notes</title></head><body>%s",
                                     kinds[i].chrome);
        for (int v = 0; v < 40; v++)
            pn += (size_t)snprintf(page + pn, sizeof page - pn, "<p>Fixed <em>issue</em> <code>#%d</code>.</p>\n", 4000 + v);
        snprintf(page + pn, sizeof page - pn, "</body></html>\n");
        struct hr_text_out o;
        rc = hr_htmlx_compress(&c, page, strlen(page), "", &o);
        char want[128];
        snprintf(want, sizeof want, " html elements dropped %s, markup removed; ", kinds[i].want);
        const char *nl2 = rc ? NULL : memchr(o.b.p, '\n', o.b.len);
        const char *at = nl2 ? memmem(o.b.p, (size_t)(nl2 - o.b.p), want, strlen(want)) : NULL;
        ok(at != NULL, "the marker names what was dropped: %s", kinds[i].want);
        if (!at && !rc)
            tap_diag("%.*s", (int)(nl2 ? nl2 - o.b.p : 0), o.b.p);
        if (!rc)
            hr_text_out_free(&o);
    }

    /* malformed: truncated/garbled input never reads out of bounds, never grows */
    const char *names[] = {"html_needles", "nodejs_path", "libffi_closure"};
    for (size_t k = 0; k < 3; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/text/%s.txt", HR_FIXTURES, names[k]);
        in = slurp(path, &len);
        is_int(fuzz(&c, in, len, 3000, 200, 42u + (uint32_t)k), 0, "%s: 3000 prefixes and 200 garbled copies", names[k]);
        is_int(fuzz(&cl, in, len, 300, 50, 7u + (uint32_t)k), 0, "%s: with link_urls", names[k]);
        free(in);
    }
    const char *nasty[] = {"<", "<a", "<a href=\"", "<a href='x", "<!--", "<!-- x --", "<!", "</", "</a", "&", "&#",
                           "&#x", "&#x110000;", "&#99999999999;", "<pre>", "<title>x", "<script>", "<p a=b c='d' e>",
                           "<<<<>>>>", "</p></p></div>", "<svg/><p>ok</p>", "<x y=\"a\"z='b'/>", "&amp", NULL};
    int bad = 0;
    for (const char **p = nasty; *p; p++) {
        struct hr_text_out o;
        size_t n = strlen(*p);
        char *exact = malloc(n + 1);
        memcpy(exact, *p, n + 1);
        if (hr_htmlx_compress(&c, exact, n, "", &o) == 0) {
            bad += o.b.len >= n;
            hr_text_out_free(&o);
        }
        free(exact);
    }
    is_int(bad, 0, "tiny malformed inputs: no crash, never larger");
    char *deep = malloc(300 * 5 + 64);
    size_t k = 0;
    for (int i = 0; i < 300; i++)
        k += (size_t)sprintf(deep + k, "<nav>");
    sprintf(deep + k, "text");
    s = core(&c, deep, &rc);
    is_int(rc, 1, "300 nested nav elements: bounded stack, the text inside is dropped");
    free(s), free(deep);
    fh_reset();
    return tap_exit();
}
