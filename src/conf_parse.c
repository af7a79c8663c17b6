/* src/conf_parse.c — lexer and recursive-descent parser for the nginx-like
 * headroom.conf syntax (tokens, quoting, ${VAR} expansion, blocks, limits). */
#include "conf_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Longest piece of user text quoted back in a message. */
#define SNIP_MAX 48

enum tok_kind { T_EOF, T_NEWLINE, T_SEMI, T_LBRACE, T_RBRACE, T_WORD };

struct token {
    enum tok_kind kind;
    int line, col;
    char *text;   /* T_WORD only; owned by whoever holds the token */
    int quoted;   /* any quoting was used */
    int dollar;   /* a `$` appeared, so the text is not what was written */
};

struct sbuf {
    char *b;
    size_t n, cap;
};

struct parser {
    const char *file;
    const unsigned char *s;
    size_t len, pos;
    int line, col;
    hr_conf_getenv_fn getenv_fn;
    char *err;
    size_t errlen;
    int have_peek;
    struct token peek;
    /* The directive that last ended at a newline, so a '{' on the next line
     * can be blamed on it by name. */
    int nl_line;
    char nl_name[SNIP_MAX + 4];
};

/* ---------------------------------------------------------------- helpers */

static int vput_err(char *err, size_t errlen, const char *file, int line, int col,
                    const char *fmt, va_list ap)
{
    int n;

    if (!err || errlen == 0)
        return -EINVAL;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%d:%d: ", file, line, col);
    else
        n = snprintf(err, errlen, "%s: ", file);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    return -EINVAL;
}

static int perr(struct parser *p, int line, int col, const char *fmt, ...) PRINTF_LIKE(4, 5);
static int perr(struct parser *p, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vput_err(p->err, p->errlen, p->file, line, col, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int hr_conf_errorf(const struct hr_conf_doc *doc, int line, int col,
                   char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vput_err(err, errlen, doc && doc->file ? doc->file : "(config)", line, col, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Copy at most SNIP_MAX bytes of src, cut on a character boundary, so user
 * text echoed in a message stays short and valid UTF-8. */
static void snip(char *dst, const char *src, size_t n)
{
    size_t k = n;

    if (k > SNIP_MAX) {
        k = SNIP_MAX;
        while (k > 0 && ((unsigned char)src[k] & 0xC0) == 0x80)
            k--;
    }
    memcpy(dst, src, k);
    strcpy(dst + k, n > k ? "..." : "");
}

static int sb_putc(struct sbuf *sb, char c)
{
    if (sb->n + 1 >= sb->cap) {
        size_t cap = sb->cap ? sb->cap * 2 : 32;
        char *b = realloc(sb->b, cap);
        if (!b)
            return -ENOMEM;
        sb->b = b;
        sb->cap = cap;
    }
    sb->b[sb->n++] = c;
    sb->b[sb->n] = '\0';
    return 0;
}

static int sb_put(struct sbuf *sb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sb_putc(sb, s[i]) < 0)
            return -ENOMEM;
    return 0;
}

/* Make room for element n of an array that holds exactly n elements, without
 * storing a capacity: capacity is the next power of two >= 4, so it is full
 * exactly when n is 0 or a power of two >= 4. */
static int grow(void **arr, size_t n, size_t elsz)
{
    void *q;
    size_t cap;

    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    cap = n ? n * 2 : 4;
    q = realloc(*arr, cap * elsz);
    if (!q)
        return -ENOMEM;
    *arr = q;
    return 0;
}

static void node_free(struct hr_conf_node *n)
{
    for (size_t i = 0; i < n->n_args; i++)
        free(n->args[i]);
    free(n->args);
    free(n->arg_lines);
    free(n->arg_cols);
    for (size_t i = 0; i < n->n_children; i++)
        node_free(&n->children[i]);
    free(n->children);
    free(n->name);
    memset(n, 0, sizeof *n);
}

void hr_conf_doc_free(struct hr_conf_doc *doc)
{
    if (!doc)
        return;
    node_free(&doc->root);
    free(doc->file);
    free(doc);
}

const struct hr_conf_node *hr_conf_find(const struct hr_conf_node *parent, const char *name)
{
    if (!parent || !name)
        return NULL;
    for (size_t i = 0; i < parent->n_children; i++)
        if (strcmp(parent->children[i].name, name) == 0)
            return &parent->children[i];
    return NULL;
}

/* ------------------------------------------------------------ validation */

/* Reject what would confuse the lexer or the operator before lexing, so the
 * lexer can assume valid UTF-8 without control bytes. */
static int check_text(struct parser *p)
{
    const unsigned char *s = p->s;
    int line = 1, col = 1;

    for (size_t i = p->pos; i < p->len;) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;

        if (c == '\n') {
            line++;
            col = 1;
            i++;
            continue;
        }
        if (c == 0)
            return perr(p, line, col, "NUL byte in file (this looks like a binary file; "
                        "the config must be UTF-8 text)");
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F)
            return perr(p, line, col, "control character 0x%02x (remove it; inside "
                        "double quotes write \\t or \\n instead)", c);
        if (c < 0x80) {
            i++;
            col++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3;
        else
            k = 0;
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        for (size_t j = 1; k && j <= k; j++) {
            unsigned d = i + j < p->len ? s[i + j] : 0;
            if (j == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80)
                k = 0;
        }
        if (!k)
            return perr(p, line, col, "invalid UTF-8 (byte 0x%02x; save the file as UTF-8)", c);
        i += k + 1;
        col++;
    }
    return 0;
}

static int name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ lexer */

static int peekc(const struct parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

static void adv(struct parser *p)
{
    unsigned char c = p->s[p->pos++];

    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

/* Copy the whole character at the cursor (1-4 bytes) and step over it. */
static int take_char(struct parser *p, struct sbuf *sb)
{
    do {
        if (sb_putc(sb, (char)p->s[p->pos]) < 0)
            return -ENOMEM;
        adv(p);
    } while (p->pos < p->len && (p->s[p->pos] & 0xC0) == 0x80);
    return 0;
}

/* At a `$`: append `$`, or the expansion of $$ / ${NAME} / ${NAME:-default}. */
static int expand(struct parser *p, struct sbuf *sb)
{
    int line = p->line, col = p->col;
    const char *inner, *def = NULL, *val;
    size_t start, n, name_len, def_len = 0;
    char name[256], shown[SNIP_MAX + 4];

    adv(p);
    if (peekc(p) == '$') {
        adv(p);
        return sb_putc(sb, '$');
    }
    if (peekc(p) != '{')
        return sb_putc(sb, '$');
    adv(p);
    start = p->pos;
    while (peekc(p) != -1 && peekc(p) != '}' && peekc(p) != '\n')
        adv(p);
    if (peekc(p) != '}')
        return perr(p, line, col, "unterminated ${ (add a closing '}' on the same line)");
    inner = (const char *)p->s + start;
    n = p->pos - start;
    adv(p);

    name_len = n;
    for (size_t i = 0; i + 1 < n; i++) {
        if (inner[i] == ':' && inner[i + 1] == '-') {
            name_len = i;
            def = inner + i + 2;
            def_len = n - i - 2;
            break;
        }
    }
    if (!env_name_ok(inner, name_len) || name_len >= sizeof name) {
        snip(shown, inner, n);
        return perr(p, line, col, "bad environment reference '${%s}' (write ${NAME} or "
                    "${NAME:-default}; NAME is letters, digits and '_'; write $$ for a literal $)",
                    shown);
    }
    memcpy(name, inner, name_len);
    name[name_len] = '\0';
    val = p->getenv_fn(name);
    if (val && *val)
        return sb_put(sb, val, strlen(val));
    if (def)
        return sb_put(sb, def, def_len);
    if (val)
        return 0;
    return perr(p, line, col, "environment variable %s is not set (set it, or give a "
                "default: ${%s:-value})", name, name);
}

/* A word may not run straight into another token; say so rather than
 * silently splitting or joining, which would hide a typo. */
static int after_quote_ok(struct parser *p)
{
    int c = peekc(p);

    if (c == -1 || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
        c == ';' || c == '{' || c == '}' || c == '#')
        return 0;
    return perr(p, p->line, p->col, "unexpected text right after a closing quote "
                "(put a space before it, or move it inside the quotes)");
}

static int lex_dquoted(struct parser *p, struct sbuf *sb, struct token *t)
{
    int r;

    adv(p);
    for (;;) {
        int c = peekc(p);

        if (c == -1 || c == '\n')
            return perr(p, t->line, t->col, "unterminated string (add a closing \")");
        if (c == '"') {
            adv(p);
            return after_quote_ok(p);
        }
        if (c == '$') {
            t->dollar = 1;
            if ((r = expand(p, sb)) < 0)
                return r;
            continue;
        }
        if (c != '\\') {
            if ((r = take_char(p, sb)) < 0)
                return r;
            continue;
        }
        {
            int eline = p->line, ecol = p->col;
            char out;

            adv(p);
            switch (peekc(p)) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case 'n': out = '\n'; break;
            case 't': out = '\t'; break;
            case '$': out = '$'; t->dollar = 1; break;
            case -1:
            case '\n':
                return perr(p, t->line, t->col, "unterminated string (add a closing \")");
            default: {
                struct sbuf bad = {0};
                if (take_char(p, &bad) < 0)
                    return -ENOMEM;
                r = perr(p, eline, ecol, "unknown escape '\\%s' in string (known: \\\" \\\\ "
                         "\\n \\t \\$; write \\\\ for a backslash or use 'single quotes')",
                         bad.b);
                free(bad.b);
                return r;
            }
            }
            adv(p);
            if ((r = sb_putc(sb, out)) < 0)
                return r;
        }
    }
}

static int lex_squoted(struct parser *p, struct sbuf *sb, struct token *t)
{
    int r;

    adv(p);
    for (;;) {
        int c = peekc(p);

        if (c == -1 || c == '\n')
            return perr(p, t->line, t->col, "unterminated string (add a closing ')");
        if (c == '\'') {
            adv(p);
            return after_quote_ok(p);
        }
        if ((r = take_char(p, sb)) < 0)
            return r;
    }
}

static int lex_bare(struct parser *p, struct sbuf *sb, struct token *t)
{
    int r;

    for (;;) {
        int c = peekc(p);

        if (c == -1 || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
            c == ';' || c == '{' || c == '}')
            return 0;
        if (c == '"' || c == '\'')
            return perr(p, p->line, p->col, "quote in the middle of a word (quote the "
                        "whole value instead, e.g. \"a b\", or escape it inside double quotes)");
        if (c == '$') {
            t->dollar = 1;
            if ((r = expand(p, sb)) < 0)
                return r;
            continue;
        }
        if ((r = take_char(p, sb)) < 0)
            return r;
    }
}

static int lex(struct parser *p, struct token *t)
{
    struct sbuf sb = {0};
    int c, r;

    memset(t, 0, sizeof *t);
    for (;;) {
        c = peekc(p);
        if (c == ' ' || c == '\t' || c == '\r') {
            adv(p);
        } else if (c == '#') {
            while (peekc(p) != -1 && peekc(p) != '\n')
                adv(p);
        } else {
            break;
        }
    }
    t->line = p->line;
    t->col = p->col;
    switch (c) {
    case -1: t->kind = T_EOF; return 0;
    case '\n': adv(p); t->kind = T_NEWLINE; return 0;
    case ';': adv(p); t->kind = T_SEMI; return 0;
    case '{': adv(p); t->kind = T_LBRACE; return 0;
    case '}': adv(p); t->kind = T_RBRACE; return 0;
    }
    t->kind = T_WORD;
    if (c == '"') {
        t->quoted = 1;
        r = lex_dquoted(p, &sb, t);
    } else if (c == '\'') {
        t->quoted = 1;
        r = lex_squoted(p, &sb, t);
    } else {
        r = lex_bare(p, &sb, t);
    }
    if (r == 0 && !sb.b && (r = sb_putc(&sb, '\0')) == 0)
        sb.n = 0; /* empty string "" still needs an allocation */
    if (r < 0) {
        free(sb.b);
        return r;
    }
    t->text = sb.b;
    return 0;
}

/* ----------------------------------------------------------------- parser */

static int next(struct parser *p, struct token *t)
{
    if (p->have_peek) {
        *t = p->peek;
        p->have_peek = 0;
        return 0;
    }
    return lex(p, t);
}

static void unread(struct parser *p, const struct token *t)
{
    p->peek = *t;
    p->have_peek = 1;
}

static int parse_body(struct parser *p, struct hr_conf_node *parent, int depth);

static int add_arg(struct hr_conf_node *n, struct token *t)
{
    if (grow((void **)&n->args, n->n_args, sizeof *n->args) < 0 ||
        grow((void **)&n->arg_lines, n->n_args, sizeof *n->arg_lines) < 0 ||
        grow((void **)&n->arg_cols, n->n_args, sizeof *n->arg_cols) < 0)
        return -ENOMEM;
    n->args[n->n_args] = t->text;
    n->arg_lines[n->n_args] = t->line;
    n->arg_cols[n->n_args] = t->col;
    n->n_args++;
    t->text = NULL;
    return 0;
}

/* `first` is the directive's name token; this consumes it. */
static int parse_directive(struct parser *p, struct hr_conf_node *parent, int depth,
                           struct token *first)
{
    struct hr_conf_node n;
    struct token t;
    char shown[SNIP_MAX + 4];
    int r = 0;

    memset(&n, 0, sizeof n);
    n.line = first->line;
    n.col = first->col;
    n.name = first->text;
    first->text = NULL;
    snip(shown, n.name, strlen(n.name));
    if (first->quoted) {
        r = perr(p, n.line, n.col, "directive name '%s' must not be quoted (write it "
                 "bare; only arguments may be quoted)", shown);
        goto fail;
    }
    if (first->dollar) {
        r = perr(p, n.line, n.col, "a directive name cannot use $ or ${...} (write the "
                 "name itself; only arguments are expanded)");
        goto fail;
    }
    if (!name_ok(n.name)) {
        r = perr(p, n.line, n.col, "bad directive name '%s' (a name starts with a letter "
                 "or '_' and holds only letters, digits, '_', '.' and '-')", shown);
        goto fail;
    }
    p->nl_line = 0;

    for (;;) {
        if ((r = next(p, &t)) < 0)
            goto fail;
        switch (t.kind) {
        case T_WORD:
            if (n.n_args >= HR_CONF_MAX_ARGS) {
                free(t.text);
                r = perr(p, t.line, t.col, "too many arguments to '%s' (at most %d; "
                         "quote values that contain spaces)", shown, HR_CONF_MAX_ARGS);
                goto fail;
            }
            if ((r = add_arg(&n, &t)) < 0) {
                free(t.text);
                goto fail;
            }
            continue;
        case T_NEWLINE:
            p->nl_line = n.line;
            strcpy(p->nl_name, shown);
            break;
        case T_SEMI:
            break;
        case T_EOF:
        case T_RBRACE:
            unread(p, &t);
            break;
        case T_LBRACE:
            if (depth + 1 > HR_CONF_MAX_DEPTH) {
                r = perr(p, t.line, t.col, "blocks nested too deeply (at most %d levels; "
                         "a '}' is probably missing above)", HR_CONF_MAX_DEPTH);
                goto fail;
            }
            n.has_block = 1;
            if ((r = parse_body(p, &n, depth + 1)) < 0)
                goto fail;
            break;
        }
        break;
    }
    if ((r = grow((void **)&parent->children, parent->n_children, sizeof *parent->children)) < 0)
        goto fail;
    parent->children[parent->n_children++] = n;
    return 0;
fail:
    node_free(&n);
    return r;
}

/* Directives until the `}` closing `parent` (depth > 0) or end of file. */
static int parse_body(struct parser *p, struct hr_conf_node *parent, int depth)
{
    struct token t;
    int r;

    for (;;) {
        if ((r = next(p, &t)) < 0)
            return r;
        switch (t.kind) {
        case T_NEWLINE:
            continue;
        case T_SEMI:
            p->nl_line = 0;
            continue;
        case T_EOF:
            if (depth > 0) {
                char shown[SNIP_MAX + 4];
                snip(shown, parent->name, strlen(parent->name));
                return perr(p, parent->line, parent->col,
                            "unclosed block '%s' opened here (add '}')", shown);
            }
            return 0;
        case T_RBRACE:
            p->nl_line = 0;
            if (depth == 0)
                return perr(p, t.line, t.col, "unexpected '}' (no block is open here)");
            return 0;
        case T_LBRACE:
            if (p->nl_line)
                return perr(p, t.line, t.col, "'{' must be on the same line as its directive "
                            "(move it to the end of line %d, after '%s')", p->nl_line, p->nl_name);
            return perr(p, t.line, t.col, "unexpected '{' (a block needs a directive name "
                        "before it, e.g. 'transform router {')");
        case T_WORD:
            if ((r = parse_directive(p, parent, depth, &t)) < 0)
                return r;
            continue;
        }
    }
}

/* ------------------------------------------------------------ entry points */

static const char *real_getenv(const char *name)
{
    return getenv(name);
}

int hr_conf_parse_string(const char *display_name, const char *text, size_t len,
                         hr_conf_getenv_fn getenv_fn, struct hr_conf_doc **out,
                         char *err, size_t errlen)
{
    struct parser p;
    struct hr_conf_doc *doc;
    int r;

    if (out)
        *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!display_name)
        display_name = "(config)";
    if (!out || (!text && len))
        return -EINVAL;
    memset(&p, 0, sizeof p);
    p.file = display_name;
    p.err = err;
    p.errlen = errlen;
    if (len > HR_CONF_MAX_BYTES) {
        perr(&p, 0, 0, "config too large (over %d bytes; a config is a few KiB, "
             "is this the right file?)", HR_CONF_MAX_BYTES);
        return -EFBIG;
    }
    p.s = (const unsigned char *)text;
    p.len = len;
    p.line = 1;
    p.col = 1;
    p.getenv_fn = getenv_fn ? getenv_fn : real_getenv;
    /* Editors on Windows like to start UTF-8 files with a BOM. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3;
    if ((r = check_text(&p)) < 0)
        return r;

    doc = calloc(1, sizeof *doc);
    if (!doc || !(doc->file = strdup(display_name))) {
        free(doc);
        return -ENOMEM;
    }
    doc->root.has_block = 1;
    if ((r = parse_body(&p, &doc->root, 0)) < 0) {
        if (p.have_peek)
            free(p.peek.text);
        hr_conf_doc_free(doc);
        if (r == -ENOMEM)
            perr(&p, 0, 0, "out of memory while parsing");
        return r;
    }
    *out = doc;
    return 0;
}

int hr_conf_parse_file(const char *path, hr_conf_getenv_fn getenv_fn,
                       struct hr_conf_doc **out, char *err, size_t errlen)
{
    struct parser p;
    char *buf;
    size_t n = 0;
    int fd, e, r;

    if (out)
        *out = NULL;
    if (!path)
        return -EINVAL;
    memset(&p, 0, sizeof p);
    p.file = path;
    p.err = err;
    p.errlen = errlen;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        perr(&p, 0, 0, "cannot open: %s (%s)", strerror(e),
             e == ENOENT ? "pass -c FILE or create it" :
             e == EACCES ? "check the file's permissions and the user headroomd runs as" :
             "pass -c FILE with a readable config file");
        return -e;
    }
    /* One byte over the limit is enough to know the file is too large. */
    buf = malloc(HR_CONF_MAX_BYTES + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t k = read(fd, buf + n, HR_CONF_MAX_BYTES + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            e = errno;
            close(fd);
            free(buf);
            perr(&p, 0, 0, "cannot read: %s (pass -c FILE with a regular config file)",
                 strerror(e));
            return -e;
        }
        if (k == 0 || (n += (size_t)k) == HR_CONF_MAX_BYTES + 1)
            break;
    }
    close(fd);
    r = hr_conf_parse_string(path, buf, n, getenv_fn, out, err, errlen);
    free(buf);
    return r;
}
