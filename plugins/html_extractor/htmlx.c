/* htmlx.c — HTML to readable text in one pass (see htmlx.h). A tolerant
 * tokenizer: every read is bounds-checked against the input length, so
 * unclosed tags, stray '<', unterminated comments, quotes and truncated
 * input end a construct at the end of the input instead of reading past
 * it. Elements sit on a bounded stack; an end tag closes the nearest open
 * element of its name (and everything above it), end tags with no open
 * match are ignored, and p/li/td/th/tr/dt/dd/option close their open
 * sibling as browsers do. Text of dropped subtrees (script, style, nav,
 * boilerplate, …) is never looked at. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "htmlx.h"

#define MAX_DEPTH 256
#define NAME_MAX_ 15

enum kind {
    K_INLINE,
    K_BLOCK,
    K_VOID,
    K_BREAK,    /* void and a line break: br, hr */
    K_RAW_DROP, /* raw text, dropped: script, style, textarea, … */
    K_TITLE,
    K_DROP,     /* parsed, text dropped: nav, header, footer, aside, form, svg, … */
    K_H,        /* h1..h6 */
    K_LIST,     /* ul, ol, menu */
    K_LI,
    K_TABLE,
    K_TR,
    K_CELL,     /* td, th */
    K_PRE,
    K_A,
    K_MAIN,     /* article, main: a header inside belongs to the content */
    K_HEADER,   /* header: dropped outside article/main */
    K_P,
    K_DTDD,
    K_OPTION,
};

struct tagdef {
    const char *name;
    unsigned char kind;
};

static const struct tagdef tags[] = {
    {"a", K_A}, {"address", K_BLOCK}, {"area", K_VOID}, {"article", K_MAIN}, {"aside", K_DROP},
    {"base", K_VOID}, {"blockquote", K_BLOCK}, {"body", K_BLOCK}, {"br", K_BREAK}, {"button", K_DROP},
    {"canvas", K_DROP}, {"caption", K_BLOCK}, {"center", K_BLOCK}, {"col", K_VOID}, {"dd", K_DTDD},
    {"details", K_BLOCK}, {"dialog", K_DROP}, {"dir", K_LIST}, {"div", K_BLOCK}, {"dl", K_BLOCK}, {"dt", K_DTDD},
    {"embed", K_VOID}, {"fieldset", K_BLOCK}, {"figcaption", K_BLOCK}, {"figure", K_BLOCK}, {"footer", K_DROP},
    {"form", K_DROP}, {"frameset", K_DROP}, {"h1", K_H}, {"h2", K_H}, {"h3", K_H}, {"h4", K_H}, {"h5", K_H},
    {"h6", K_H}, {"head", K_BLOCK}, {"header", K_HEADER}, {"hgroup", K_BLOCK}, {"hr", K_BREAK}, {"html", K_BLOCK},
    {"iframe", K_RAW_DROP}, {"img", K_VOID}, {"input", K_VOID}, {"keygen", K_VOID}, {"li", K_LI}, {"link", K_VOID},
    {"main", K_MAIN}, {"menu", K_LIST}, {"meta", K_VOID}, {"nav", K_DROP}, {"noembed", K_RAW_DROP},
    {"noframes", K_RAW_DROP}, {"noscript", K_DROP}, {"object", K_DROP}, {"ol", K_LIST}, {"option", K_OPTION},
    {"p", K_P}, {"param", K_VOID}, {"plaintext", K_RAW_DROP}, {"pre", K_PRE}, {"script", K_RAW_DROP},
    {"section", K_BLOCK}, {"select", K_DROP}, {"source", K_VOID}, {"style", K_RAW_DROP}, {"summary", K_BLOCK},
    {"svg", K_DROP}, {"table", K_TABLE}, {"tbody", K_BLOCK}, {"td", K_CELL}, {"template", K_DROP},
    {"textarea", K_RAW_DROP}, {"tfoot", K_BLOCK}, {"th", K_CELL}, {"thead", K_BLOCK}, {"title", K_TITLE},
    {"tr", K_TR}, {"track", K_VOID}, {"ul", K_LIST}, {"wbr", K_VOID}, {"xmp", K_RAW_DROP},
};

/* Inline elements whose class never marks boilerplate (a Sphinx
 * "menuselection" span is content). */
static int plain_inline(const char *n)
{
    static const char *const in[] = {"span", "code", "b", "i", "em", "strong", "kbd", "samp", "var", "abbr", "small",
                                     "sub", "sup", "mark", "cite", "q", "tt", "u", "s", "label", "time", "dfn", NULL};
    for (const char *const *p = in; *p; p++)
        if (!strcmp(n, *p))
            return 1;
    return 0;
}

static int tag_kind(const char *n)
{
    size_t lo = 0, hi = sizeof tags / sizeof *tags;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(n, tags[mid].name);
        if (!c)
            return tags[mid].kind;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return K_INLINE;
}

struct el {
    char name[NAME_MAX_ + 1];
    unsigned char kind, drop, level;
    size_t out_off;         /* K_A: output length at the open tag */
    const char *href;       /* K_A: raw href in the input */
    size_t href_len;
};

struct x {
    const struct hr_htmlx_config *cfg;
    const char *in;
    size_t len;
    struct hr_tbuf *b;
    struct el st[MAX_DEPTH];
    int depth, skip, pre, lists, mains, cells;
    int space, pre_nl;      /* whitespace pending; pre: drop the newline right after <pre> */
    size_t line_start;
    char pfx[64];
    size_t pfx_len;
    size_t total, dropped;
    unsigned kinds;         /* D_* bits: what the dropped subtrees were */
};

/* Kinds of dropped subtrees, named in the marker in this order: only those
 * a page had (it named "scripts, styles, navigation, boilerplate" whatever
 * was dropped). */
enum { D_SCRIPT = 1, D_STYLE = 2, D_NAV = 4, D_BOILER = 8, D_FORM = 16, D_HIDDEN = 32, D_EMBED = 64 };
static const char *const drop_names[] = {"scripts", "styles", "navigation", "boilerplate", "forms", "hidden elements",
                                         "embeds", NULL};

/* The kind a dropped element is by its name alone, 0 for one dropped for
 * its attributes. */
static unsigned drop_kind(const char *n)
{
    static const struct {
        const char *n;
        unsigned k;
    } t[] = {{"script", D_SCRIPT}, {"noscript", D_SCRIPT}, {"style", D_STYLE}, {"nav", D_NAV}, {"header", D_BOILER},
             {"footer", D_BOILER}, {"aside", D_BOILER}, {"form", D_FORM}, {"button", D_FORM}, {"select", D_FORM},
             {"textarea", D_FORM}, {"dialog", D_FORM}, {"iframe", D_EMBED}, {"svg", D_EMBED}, {"canvas", D_EMBED},
             {"object", D_EMBED}, {"frameset", D_EMBED}, {"noembed", D_EMBED}, {"noframes", D_EMBED},
             {"template", D_EMBED}, {"xmp", D_EMBED}, {"plaintext", D_EMBED}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(n, t[i].n))
            return t[i].k;
    return 0;
}

static inline int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f'; }
static inline int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline int is_alnum(unsigned char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
static inline unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

static int ci_has(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++) {
        size_t k = 0;
        while (k < wl && lower((unsigned char)s[i + k]) == (unsigned char)w[k])
            k++;
        if (k == wl)
            return 1;
    }
    return 0;
}

static int ci_eq(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    if (n != wl)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (lower((unsigned char)s[k]) != (unsigned char)w[k])
            return 0;
    return 1;
}

/* ------------------------------------------------------------- entities */

struct ent {
    const char *name;
    uint32_t cp;
};
/* Sorted by name (strcmp); 0 = drop (soft hyphen, joiners). */
static const struct ent ents[] = {
    {"AElig", 0xC6}, {"Aacute", 0xC1}, {"Agrave", 0xC0}, {"Auml", 0xC4}, {"Ccedil", 0xC7}, {"Eacute", 0xC9},
    {"Ntilde", 0xD1}, {"Oacute", 0xD3}, {"Ouml", 0xD6}, {"Uuml", 0xDC}, {"aacute", 0xE1}, {"agrave", 0xE0},
    {"alpha", 0x3B1}, {"amp", '&'}, {"apos", '\''}, {"asymp", 0x2248}, {"auml", 0xE4}, {"bdquo", 0x201E},
    {"beta", 0x3B2}, {"brvbar", 0xA6}, {"bull", 0x2022}, {"ccedil", 0xE7}, {"cent", 0xA2}, {"check", 0x2713},
    {"copy", 0xA9}, {"dagger", 0x2020}, {"darr", 0x2193}, {"deg", 0xB0}, {"delta", 0x3B4}, {"divide", 0xF7},
    {"eacute", 0xE9}, {"egrave", 0xE8}, {"emsp", ' '}, {"ensp", ' '}, {"euro", 0x20AC}, {"frac12", 0xBD},
    {"frac14", 0xBC}, {"frac34", 0xBE}, {"ge", 0x2265}, {"gt", '>'}, {"hArr", 0x21D4}, {"harr", 0x2194},
    {"hellip", 0x2026}, {"iacute", 0xED}, {"iexcl", 0xA1}, {"infin", 0x221E}, {"iquest", 0xBF}, {"lArr", 0x21D0},
    {"lambda", 0x3BB}, {"laquo", 0xAB}, {"larr", 0x2190}, {"ldquo", 0x201C}, {"le", 0x2264}, {"lsaquo", 0x2039},
    {"lsquo", 0x2018}, {"lt", '<'}, {"mdash", 0x2014}, {"micro", 0xB5}, {"middot", 0xB7}, {"minus", 0x2212},
    {"mu", 0x3BC}, {"nbsp", ' '}, {"ndash", 0x2013}, {"ne", 0x2260}, {"not", 0xAC}, {"ntilde", 0xF1},
    {"oacute", 0xF3}, {"ouml", 0xF6}, {"para", 0xB6}, {"pi", 0x3C0}, {"plusmn", 0xB1}, {"pound", 0xA3},
    {"quot", '"'}, {"rArr", 0x21D2}, {"raquo", 0xBB}, {"rarr", 0x2192}, {"rdquo", 0x201D}, {"reg", 0xAE},
    {"rsaquo", 0x203A}, {"rsquo", 0x2019}, {"sbquo", 0x201A}, {"sect", 0xA7}, {"shy", 0}, {"sigma", 0x3C3},
    {"sup2", 0xB2}, {"sup3", 0xB3}, {"szlig", 0xDF}, {"thinsp", ' '}, {"times", 0xD7}, {"trade", 0x2122},
    {"uacute", 0xFA}, {"uarr", 0x2191}, {"uuml", 0xFC}, {"yen", 0xA5}, {"zwj", 0}, {"zwnj", 0},
};

static size_t utf8(uint32_t cp, char *u)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* s[*i] is '&' and s[0..e) the text. Writes the decoded bytes to u (up to
 * 4) and advances *i past the reference; an unknown or malformed one
 * decodes to the '&' alone. */
static size_t entity(const char *s, size_t e, size_t *i, char *u)
{
    size_t p = *i + 1;
    if (p < e && s[p] == '#') {
        p++;
        int hex = p < e && (s[p] | 0x20) == 'x';
        p += (size_t)hex;
        uint32_t cp = 0;
        size_t d = 0;
        for (; p < e && d < 8; p++, d++) {
            unsigned char c = (unsigned char)s[p];
            unsigned v = c >= '0' && c <= '9' ? c - '0' : hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : 99;
            if (v == 99)
                break;
            cp = cp * (hex ? 16 : 10) + v;
        }
        if (d) {
            if (p < e && s[p] == ';')
                p++;
            *i = p;
            return utf8(cp ? cp : 0xFFFD, u);
        }
    } else {
        char name[12];
        size_t k = 0;
        while (p < e && k < sizeof name - 1 && is_alnum((unsigned char)s[p]))
            name[k++] = s[p++];
        name[k] = '\0';
        if (k && p < e && s[p] == ';') {
            size_t lo = 0, hi = sizeof ents / sizeof *ents;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(name, ents[mid].name);
                if (!c) {
                    *i = p + 1;
                    return ents[mid].cp ? utf8(ents[mid].cp, u) : 0;
                }
                if (c < 0)
                    hi = mid;
                else
                    lo = mid + 1;
            }
        }
    }
    *i += 1;
    u[0] = '&';
    return 1;
}

/* ------------------------------------------------------------ output */

static void line_break(struct x *x, int force)
{
    if (!force && x->cells) {
        x->space = 1;
        return;
    }
    if (x->b->len > x->line_start) {
        hr_tbuf_putc(x->b, '\n');
        x->line_start = x->b->len;
        x->pfx_len = 0;
    }
    x->space = 0;
}

static void set_pfx(struct x *x, const char *p, size_t n)
{
    if (n > sizeof x->pfx)
        n = sizeof x->pfx;
    memcpy(x->pfx, p, n);
    x->pfx_len = n;
}

/* n > 0 bytes with no whitespace. */
static void put_word(struct x *x, const char *s, size_t n)
{
    if (x->b->len == x->line_start) {
        hr_tbuf_put(x->b, x->pfx, x->pfx_len);
    } else if (x->space && x->b->p[x->b->len - 1] != ' ') {
        hr_tbuf_putc(x->b, ' ');
    }
    x->space = 0;
    hr_tbuf_put(x->b, s, n);
}

/* Text in[i..e) outside tags. */
static void text(struct x *x, size_t i, size_t e)
{
    const char *s = x->in;
    if (x->skip)
        return;
    if (x->pre) {
        if (x->pre_nl && i < e) {
            if (s[i] == '\r')
                i++;
            if (i < e && s[i] == '\n')
                i++;
            x->pre_nl = 0;
        }
        while (i < e) {
            size_t j = i;
            while (j < e && s[j] != '&')
                j++;
            hr_tbuf_put(x->b, s + i, j - i);
            if (j < e) {
                char u[4];
                size_t k = entity(s, e, &j, u);
                hr_tbuf_put(x->b, u, k);
            }
            i = j;
        }
        return;
    }
    while (i < e) {
        unsigned char c = (unsigned char)s[i];
        if (is_ws(c)) {
            x->space = 1;
            i++;
        } else if (c == '&') {
            char u[4];
            size_t k = entity(s, e, &i, u);
            if (k == 1 && u[0] == ' ')
                x->space = 1;
            else if (k)
                put_word(x, u, k);
        } else {
            size_t j = i + 1;
            while (j < e && !is_ws((unsigned char)s[j]) && s[j] != '&')
                j++;
            put_word(x, s + i, j - i);
            i = j;
        }
    }
}

/* Decoded copy of an attribute value. */
static void put_decoded(struct hr_tbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') {
            char u[4];
            size_t k = entity(s, n, &i, u);
            hr_tbuf_put(b, u, k);
        } else {
            size_t j = i;
            while (j < n && s[j] != '&')
                j++;
            hr_tbuf_put(b, s + i, j - i);
            i = j;
        }
    }
}

/* ------------------------------------------------------------ elements */

static void close_el(struct x *x, struct el *el)
{
    struct hr_tbuf *b = x->b;
    if (el->drop) {
        x->skip--;
        return;
    }
    switch (el->kind) {
    case K_LIST:
        x->lists--;
        line_break(x, 0);
        break;
    case K_MAIN:
        x->mains--;
        line_break(x, 0);
        break;
    case K_CELL:
        x->cells--;
        break;
    case K_TR:
    case K_TABLE:
        line_break(x, 1);
        break;
    case K_PRE:
        x->pre--;
        if (!x->skip) {
            if (b->len && b->p[b->len - 1] != '\n')
                hr_tbuf_putc(b, '\n');
            hr_tbuf_put(b, "```\n", 4);
            x->line_start = b->len;
            x->pfx_len = 0;
        }
        break;
    case K_H:
    case K_LI:
        if (b->len == x->line_start)
            x->pfx_len = 0; /* an empty heading or item */
        line_break(x, 0);
        break;
    case K_A:
        if (x->skip || el->out_off > b->len)
            break;
        if (el->href_len && el->href[0] == '#' && b->len - el->out_off <= 4) {
            /* a permalink mark ("#", "¶") after a heading */
            int alnum = 0;
            for (size_t k = el->out_off; k < b->len; k++)
                alnum |= is_alnum((unsigned char)b->p[k]);
            if (!alnum) {
                b->len = el->out_off > x->line_start ? el->out_off : x->line_start;
                if (b->p)
                    b->p[b->len] = '\0';
            }
        } else if (x->cfg->link_urls && b->len > el->out_off &&
                   (ci_has(el->href, el->href_len < 8 ? el->href_len : 8, "http://") ||
                    ci_has(el->href, el->href_len < 8 ? el->href_len : 8, "https://")) &&
                   !(b->len - el->out_off >= el->href_len &&
                     !memcmp(b->p + b->len - el->href_len, el->href, el->href_len))) {
            hr_tbuf_put(b, " (", 2);
            put_decoded(b, el->href, el->href_len);
            hr_tbuf_putc(b, ')');
        }
        break;
    case K_BLOCK:
    case K_P:
    case K_DTDD:
    case K_HEADER:
    case K_OPTION:
        line_break(x, 0);
        break;
    default:
        break;
    }
}

static void pop_to(struct x *x, int k)
{
    while (x->depth > k) {
        x->depth--;
        close_el(x, &x->st[x->depth]);
    }
}

/* Close the nearest open element named n, unless a `stop` element (or the
 * bottom) comes first. */
static void close_sibling(struct x *x, const char *n, const char *n2, const char *stop1, const char *stop2)
{
    for (int k = x->depth - 1; k >= 0; k--) {
        const char *m = x->st[k].name;
        if (!strcmp(m, n) || (n2 && !strcmp(m, n2))) {
            pop_to(x, k);
            return;
        }
        if (!strcmp(m, stop1) || (stop2 && !strcmp(m, stop2)) || !strcmp(m, "table"))
            return;
    }
}

struct attrs {
    const char *href;
    size_t href_len;
    unsigned boiler, role; /* D_NAV or D_BOILER: what the class/id or role says */
    int hidden;            /* hidden, aria-hidden="true", display:none */
};

static const char *const boiler_words[] = {"cookie", "consent", "banner", "advert", "sidebar", "menu", "breadcrumb",
                                           NULL};
static const unsigned boiler_kind[] = {D_BOILER, D_BOILER, D_BOILER, D_BOILER, D_BOILER, D_NAV, D_NAV};

static void open_el(struct x *x, const char *n, int self_closing, const struct attrs *a)
{
    int kind = tag_kind(n);
    x->total++;
    if (kind == K_P || kind == K_LI || kind == K_CELL || kind == K_TR || kind == K_DTDD || kind == K_OPTION ||
        kind == K_H || kind == K_BLOCK || kind == K_LIST || kind == K_TABLE || kind == K_PRE) {
        if (x->depth && !strcmp(x->st[x->depth - 1].name, "p"))
            pop_to(x, x->depth - 1); /* a block closes an open paragraph */
    }
    switch (kind) {
    case K_LI:
        close_sibling(x, "li", NULL, "ul", "ol");
        break;
    case K_CELL:
        close_sibling(x, "td", "th", "tr", NULL);
        break;
    case K_TR:
        close_sibling(x, "tr", NULL, "tbody", "thead");
        break;
    case K_DTDD:
        close_sibling(x, "dt", "dd", "dl", NULL);
        break;
    case K_OPTION:
        close_sibling(x, "option", NULL, "select", NULL);
        break;
    default:
        break;
    }
    if (kind == K_VOID || kind == K_BREAK || (self_closing && kind != K_A)) {
        if (kind == K_BREAK && !x->skip)
            line_break(x, 0);
        if (x->skip)
            x->dropped++;
        return;
    }
    int tag_drop = kind == K_DROP || (kind == K_HEADER && !x->mains),
        boiler = a->boiler && x->cfg->drop_boilerplate && !plain_inline(n);
    int drop = tag_drop || a->hidden || a->role || boiler;
    if (x->skip || drop)
        x->dropped++;
    if (drop && !x->skip) { /* the root of a dropped subtree names its kind */
        unsigned k = tag_drop ? drop_kind(n) : 0;
        x->kinds |= k ? k : a->hidden ? D_HIDDEN : a->role ? a->role : boiler ? a->boiler : D_BOILER;
    }
    if (x->depth == MAX_DEPTH)
        return; /* too deep: treated as inline, its end tag finds no match */
    struct el *el = &x->st[x->depth++];
    memcpy(el->name, n, NAME_MAX_ + 1);
    el->kind = (unsigned char)kind;
    el->drop = (unsigned char)drop;
    el->href = a->href;
    el->href_len = a->href_len;
    el->out_off = x->b->len;
    if (drop) {
        x->skip++;
        return;
    }
    switch (kind) {
    case K_BLOCK:
    case K_P:
    case K_DTDD:
    case K_HEADER:
    case K_OPTION:
        line_break(x, 0);
        break;
    case K_MAIN:
        x->mains++;
        line_break(x, 0);
        break;
    case K_LIST:
        x->lists++;
        line_break(x, 0);
        break;
    case K_LI: {
        line_break(x, 0);
        char p[64];
        size_t ind = x->lists > 1 ? 2 * (size_t)(x->lists - 1) : 0;
        if (ind > sizeof p - 2)
            ind = sizeof p - 2;
        memset(p, ' ', ind);
        p[ind] = '-', p[ind + 1] = ' ';
        if (!x->cells)
            set_pfx(x, p, ind + 2);
        break;
    }
    case K_H: {
        line_break(x, 0);
        int lv = n[1] - '0';
        char p[8];
        memset(p, '#', (size_t)lv);
        p[lv] = ' ';
        if (!x->cells)
            set_pfx(x, p, (size_t)lv + 1);
        break;
    }
    case K_TABLE:
    case K_TR:
        line_break(x, 1);
        break;
    case K_CELL:
        if (!x->skip && x->b->len > x->line_start) {
            hr_tbuf_put(x->b, " | ", 3);
            x->space = 0;
        }
        x->cells++;
        break;
    case K_INLINE:
        /* code blocks side by side in one pre (CommonJS and ES module variants) */
        if (x->pre && !x->skip && !strcmp(n, "code") && x->b->len && x->b->p[x->b->len - 1] != '\n')
            hr_tbuf_putc(x->b, '\n');
        break;
    case K_PRE:
        if (!x->skip) {
            line_break(x, 1);
            hr_tbuf_put(x->b, "```\n", 4);
            x->line_start = x->b->len;
            x->pfx_len = 0;
        }
        x->pre++;
        x->pre_nl = 1;
        break;
    default:
        break;
    }
}

static void end_tag(struct x *x, const char *n)
{
    for (int k = x->depth - 1; k >= 0; k--)
        if (!strcmp(x->st[k].name, n)) {
            pop_to(x, k);
            return;
        }
    if (!strcmp(n, "br") && !x->skip)
        line_break(x, 0); /* </br> reads as <br> in browsers too */
}

/* Position just past "</name" + non-name char at or after i, or len. */
static size_t find_close(const char *s, size_t len, size_t i, const char *name, size_t *content_end)
{
    size_t nl = strlen(name);
    while (i < len) {
        const char *lt = memchr(s + i, '<', len - i);
        if (!lt)
            break;
        size_t p = (size_t)(lt - s);
        if (p + 2 + nl <= len && s[p + 1] == '/' && ci_eq(s + p + 2, nl, name) &&
            (p + 2 + nl == len || !is_alnum((unsigned char)s[p + 2 + nl]))) {
            *content_end = p;
            const char *gt = memchr(s + p, '>', len - p);
            return gt ? (size_t)(gt - s) + 1 : len;
        }
        i = p + 1;
    }
    *content_end = len;
    return len;
}

/* The tag at in[i] == '<' (a start tag: in[i+1] is a letter). Returns the
 * position after it; fills name, attrs, self_closing. len when truncated. */
static size_t parse_tag(struct x *x, size_t i, char *name, struct attrs *a, int *self_closing, int *truncated)
{
    const char *s = x->in;
    size_t len = x->len, k = 0, p = i + 1;
    while (p < len && !is_ws((unsigned char)s[p]) && s[p] != '>' && s[p] != '/') {
        if (k < NAME_MAX_)
            name[k++] = (char)lower((unsigned char)s[p]);
        p++;
    }
    name[k] = '\0';
    memset(a, 0, sizeof *a);
    *self_closing = 0;
    *truncated = 0;
    for (;;) {
        while (p < len && (is_ws((unsigned char)s[p]) || s[p] == '/')) {
            *self_closing = s[p] == '/';
            p++;
        }
        if (p >= len) {
            *truncated = 1;
            return len;
        }
        if (s[p] == '>')
            return p + 1;
        *self_closing = 0;
        size_t an = p;
        while (p < len && !is_ws((unsigned char)s[p]) && s[p] != '=' && s[p] != '>' && s[p] != '/')
            p++;
        size_t anl = p - an;
        while (p < len && is_ws((unsigned char)s[p]))
            p++;
        const char *v = NULL;
        size_t vl = 0;
        if (p < len && s[p] == '=') {
            p++;
            while (p < len && is_ws((unsigned char)s[p]))
                p++;
            if (p < len && (s[p] == '"' || s[p] == '\'')) {
                const char *q = memchr(s + p + 1, s[p], len - p - 1);
                if (!q) {
                    *truncated = 1;
                    return len;
                }
                v = s + p + 1;
                vl = (size_t)(q - v);
                p = (size_t)(q - s) + 1;
            } else {
                v = s + p;
                while (p < len && !is_ws((unsigned char)s[p]) && s[p] != '>')
                    p++;
                vl = (size_t)(s + p - v);
            }
        }
        if (anl == 0) {
            p++; /* a stray '=' */
            continue;
        }
        const char *at = s + an;
        if (ci_eq(at, anl, "href")) {
            a->href = v, a->href_len = vl;
        } else if (ci_eq(at, anl, "id") || ci_eq(at, anl, "class")) {
            for (size_t w = 0; boiler_words[w] && v; w++)
                if (!a->boiler && ci_has(v, vl, boiler_words[w]))
                    a->boiler = boiler_kind[w];
        } else if (ci_eq(at, anl, "role")) {
            if (v && ci_eq(v, vl, "navigation"))
                a->role = D_NAV;
            else if (v && (ci_eq(v, vl, "banner") || ci_eq(v, vl, "contentinfo") || ci_eq(v, vl, "complementary") ||
                           ci_eq(v, vl, "search")))
                a->role = D_BOILER;
        } else if (ci_eq(at, anl, "hidden")) {
            a->hidden = 1;
        } else if (ci_eq(at, anl, "aria-hidden")) {
            a->hidden |= v && ci_eq(v, vl, "true");
        } else if (ci_eq(at, anl, "style")) {
            a->hidden |= v && (ci_has(v, vl, "display:none") || ci_has(v, vl, "display: none"));
        }
    }
}

/* The marker of a page that lost only its markup: "0 of 167 html elements
 * dropped (scripts, styles, …)" named drops that did not happen. Same shape
 * otherwise (the placeholder the driver fills with the hash); without an
 * "N of M" the retrieve API reports no element counts for it. */
static void marker_none_dropped(struct hr_text_out *out, size_t total, size_t len)
{
    hr_tbuf_putf(&out->b, HR_TEXT_MARKER "html markup removed, no element dropped; readable text of a %zu-byte page; "
                 "headroom_retrieve hash=", len);
    out->hash_off[0] = out->b.len;
    hr_tbuf_put(&out->b, HR_TEXTC_PLACEHOLDER "]\n", HR_CCR_HASH_LEN + 2);
    out->n_hash_off = 1;
    out->total = total;
    out->omitted = 0;
}

int hr_htmlx_compress(const void *cfg, const char *in, size_t len, const char *query, struct hr_text_out *out)
{
    (void)query;
    memset(out, 0, sizeof *out);
    struct hr_tbuf body = {0};
    struct x *x = calloc(1, sizeof *x);
    if (!x)
        return -12;
    x->cfg = cfg;
    x->in = in;
    x->len = len;
    x->b = &body;
    size_t i = 0;
    while (i < len && !body.oom) {
        const char *lt = memchr(in + i, '<', len - i);
        size_t e = lt ? (size_t)(lt - in) : len;
        text(x, i, e);
        if (e >= len)
            break;
        i = e;
        unsigned char c1 = e + 1 < len ? (unsigned char)in[e + 1] : 0;
        if (is_alpha(c1)) {
            char name[NAME_MAX_ + 1];
            struct attrs a;
            int sc, trunc;
            size_t p = parse_tag(x, e, name, &a, &sc, &trunc);
            if (trunc)
                break;
            int kind = tag_kind(name);
            if (kind == K_RAW_DROP || kind == K_TITLE) {
                size_t ce;
                size_t after = find_close(in, len, p, name, &ce);
                x->total++;
                if (kind == K_RAW_DROP || x->skip) {
                    if (!x->skip) {
                        unsigned k = drop_kind(name);
                        x->kinds |= k ? k : D_EMBED;
                    }
                    x->dropped++;
                } else {
                    line_break(x, 1);
                    size_t save = x->pfx_len;
                    set_pfx(x, "Title: ", 7);
                    text(x, p, ce);
                    line_break(x, 1);
                    if (body.len == x->line_start)
                        x->pfx_len = save;
                }
                i = after;
            } else {
                open_el(x, name, sc, &a);
                i = p;
            }
        } else if (c1 == '/') {
            size_t p = e + 2;
            if (p < len && is_alpha((unsigned char)in[p])) {
                char name[NAME_MAX_ + 1];
                size_t k = 0;
                while (p < len && !is_ws((unsigned char)in[p]) && in[p] != '>' && in[p] != '/') {
                    if (k < NAME_MAX_)
                        name[k++] = (char)lower((unsigned char)in[p]);
                    p++;
                }
                name[k] = '\0';
                end_tag(x, name);
            }
            const char *gt = p < len ? memchr(in + p, '>', len - p) : NULL;
            i = gt ? (size_t)(gt - in) + 1 : len;
        } else if (c1 == '!' || c1 == '?') {
            if (c1 == '!' && e + 3 < len && in[e + 2] == '-' && in[e + 3] == '-') {
                const char *end = e + 4 <= len ? memmem(in + e + 4, len - e - 4, "-->", 3) : NULL;
                i = end ? (size_t)(end - in) + 3 : len;
            } else {
                const char *gt = memchr(in + e + 1, '>', len - e - 1);
                i = gt ? (size_t)(gt - in) + 1 : len;
            }
        } else {
            text(x, e, e + 1); /* a stray '<' is text */
            i = e + 1;
        }
    }
    pop_to(x, 0);
    line_break(x, 1);
    size_t total = x->total, dropped = x->dropped;
    unsigned kinds = x->kinds;
    free(x);
    int rc = 0;
    if (body.oom) {
        rc = -12;
    } else if (body.len == 0) {
        rc = 1; /* nothing readable: leave the page as it is */
    } else {
        if (dropped) {
            char what[256], names[128] = "";
            size_t nl = 0;
            for (size_t k = 0; drop_names[k]; k++)
                if (kinds & (1u << k))
                    nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%s", nl ? ", " : "", drop_names[k]);
            snprintf(what, sizeof what, "html elements dropped (%s), markup removed; readable text of a %zu-byte page",
                     names, len);
            hr_text_marker(out, what, dropped, total);
        } else {
            marker_none_dropped(out, total, len);
        }
        hr_tbuf_put(&out->b, body.p, body.len);
        if (out->b.oom)
            rc = -12;
        else if (out->b.len >= len)
            rc = 2;
    }
    hr_tbuf_free(&body);
    if (rc)
        hr_text_out_free(out);
    return rc;
}
