/* src/conf_parse.h — the generic syntax layer of headroom.conf: turns the
 * nginx-like text into a tree of directives. It knows no directive names. */
#ifndef HR_CONF_PARSE_H
#define HR_CONF_PARSE_H

#include <stddef.h>

/* Limits, so a hostile or mistaken file cannot exhaust memory or the stack. */
#define HR_CONF_MAX_BYTES (1024 * 1024) /* whole file */
#define HR_CONF_MAX_DEPTH 8             /* nested blocks */
#define HR_CONF_MAX_ARGS  64            /* arguments of one directive */

/* Looks up an environment variable; returns NULL when it is not set. */
typedef const char *(*hr_conf_getenv_fn)(const char *name);

/* One directive: `name args... ;` or `name args... { children }`.
 * Strings are NUL-terminated UTF-8 with quotes, escapes and ${VAR} already
 * resolved. Positions are 1-based; a column counts characters (code points),
 * a tab counting as one. The root node of a document has name NULL,
 * has_block 1 and line/col 0. */
struct hr_conf_node {
    char *name;
    char **args;
    size_t n_args;
    int has_block;                  /* 1 when a { } followed, even an empty one */
    struct hr_conf_node *children;  /* in file order */
    size_t n_children;
    int line, col;                  /* position of the name */
    int *arg_lines, *arg_cols;      /* position of each arg, for value errors */
};

struct hr_conf_doc {
    char *file;                     /* display name used in every message */
    struct hr_conf_node root;       /* root.children = top-level directives */
};

/*
 * NAME
 *   hr_conf_parse_string — parse config text held in memory.
 * DESCRIPTION
 *   Syntax:
 *   - `#` at the start of a token starts a comment to end of line
 *     (`a#b` is one word, so URLs with fragments need no quotes).
 *   - A bare word is a run of anything but whitespace, `;`, `{`, `}` and
 *     quotes. A quote inside a bare word is an error, as is a word glued to
 *     the end of a quoted string: `a"b"` and `"a"b` are rejected, not joined.
 *   - "double quotes" understand \" \\ \n \t \$; any other escape is an
 *     error. 'single quotes' are literal. Strings cannot span lines.
 *   - In bare words and double quotes, ${NAME} is replaced by the variable's
 *     value (an unset variable is an error), ${NAME:-default} by the value or,
 *     when unset or empty, by the default (taken literally up to the first
 *     `}`), and $$ by `$`. A `$` followed by anything else is kept as is.
 *     The result is never re-split: a value with spaces stays one argument.
 *   - A directive is a name matching [A-Za-z_][A-Za-z0-9_.-]* (bare, no `$`)
 *     followed by arguments, ended by `;`, newline, `}` or end of file.
 *     A block is `name args... {` ... `}` with `{` on the name's line.
 *     Stray `;` are ignored. CRLF line ends and a UTF-8 BOM are accepted.
 *   - The text must be valid UTF-8 without NUL or other control bytes
 *     (tab, CR, LF excepted), at most HR_CONF_MAX_BYTES long.
 * ARGUMENTS
 *   display_name  file name for messages ("headroom.conf").
 *   text, len     the bytes; need not be NUL-terminated; may be NULL if len 0.
 *   getenv_fn     variable lookup; NULL means getenv(3). Tests inject one.
 *   out           receives the document on success; free it with
 *                 hr_conf_doc_free(). Set to NULL on failure.
 *   err, errlen   on failure receives one line
 *                 "file:line:col: what is wrong (how to fix it)", or
 *                 "file: ..." for whole-file problems. May be NULL/0.
 * RETURN VALUE
 *   0; -EINVAL for a syntax or environment error; -EFBIG when too large;
 *   -ENOMEM.
 */
int hr_conf_parse_string(const char *display_name, const char *text, size_t len,
                         hr_conf_getenv_fn getenv_fn, struct hr_conf_doc **out,
                         char *err, size_t errlen);

/*
 * NAME
 *   hr_conf_parse_file — read and parse a config file.
 * DESCRIPTION
 *   As hr_conf_parse_string(), with `path` (as given) as display name.
 *   A file that cannot be opened or read gives
 *   "path: cannot open: <strerror> (hint)".
 * RETURN VALUE
 *   As hr_conf_parse_string(), or -errno when the file cannot be read.
 */
int hr_conf_parse_file(const char *path, hr_conf_getenv_fn getenv_fn,
                       struct hr_conf_doc **out, char *err, size_t errlen);

/*
 * NAME
 *   hr_conf_doc_free — free a document and every node in it. NULL is fine.
 */
void hr_conf_doc_free(struct hr_conf_doc *doc);

/*
 * NAME
 *   hr_conf_find — first child of `parent` called `name`, or NULL.
 * DESCRIPTION
 *   For singleton directives; loop over parent->children for repeated ones.
 */
const struct hr_conf_node *hr_conf_find(const struct hr_conf_node *parent,
                                        const char *name);

/*
 * NAME
 *   hr_conf_errorf — format a value error in the same shape as syntax errors.
 * DESCRIPTION
 *   Writes "file:line:col: " followed by the printf-style message into err,
 *   so the semantic layer (config.c, plugin key checks) can point at a
 *   node's name (node->line/col) or an argument (arg_lines[i]/arg_cols[i]).
 * RETURN VALUE
 *   -EINVAL always, so callers can `return hr_conf_errorf(...)`.
 */
int hr_conf_errorf(const struct hr_conf_doc *doc, int line, int col,
                   char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

#endif
