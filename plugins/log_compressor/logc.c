/* logc.c — log_compressor's selection and rendering: keep errors, warnings
 * (with context), summaries, bounded stack traces, the first and last lines
 * and the few lines the question is about;
 * fold the rest into "… N similar lines like: X" lines; drop progress bars,
 * ANSI escapes and blank runs. */
#include <stdlib.h>
#include <string.h>
#include "bm25.h"
#include "cc_diag.h"
#include "hash.h"
#include "logc.h"

#define EXAMPLE_MAX 160 /* bytes of a dropped line quoted as an example */
#define ANSI_ESC 0x1b

struct ll {
    const char *s;
    uint32_t len;
    uint32_t id;   /* dense template id */
    uint8_t cls;
    uint8_t keep;
    uint8_t lib;   /* a frame inside a library/runtime */
    uint8_t dup;   /* dropped as a repeat of a kept line */
    uint8_t start; /* a passing-test line that announces a test ("=== RUN") */
    uint8_t tb;    /* its part in a Python traceback: TB_EXC, TB_HEAD, TB_LINK */
};

#define TB_EXC 1  /* the line naming the exception */
#define TB_HEAD 2 /* "Traceback (most recent call last):", "Exception Group Traceback (…):" */
#define TB_LINK 3 /* what joins a chain's traces and a group's parts: "During handling of the
                   * above exception, …", a group's "+---- 1 ----" lines, blank lines between */

/* A Python exception as printed: one trace, or traces chained by "During
 * handling …" / "The above exception was the direct cause …", or an
 * exception group with its sub-exceptions; lines [a, b). */
struct tb_chain {
    size_t a, b;
};

/* ESC [ … final, ESC ] … BEL or ESC \, and two-byte ESC x: removed. */
static size_t strip_ansi(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ANSI_ESC) {
            out[o++] = s[i];
            continue;
        }
        if (i + 1 < n && s[i + 1] == '[') {
            i += 2;
            while (i < n && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
                i++;
        } else if (i + 1 < n && s[i + 1] == ']') {
            i += 2;
            while (i < n && s[i] != '\a' && !(s[i] == ANSI_ESC && i + 1 < n && s[i + 1] == '\\'))
                i++;
            if (i < n && s[i] == ANSI_ESC)
                i++;
        } else {
            i++;
        }
    }
    return o;
}

static int lib_frame(const char *s, size_t n)
{
    static const char *const libs[] = {"site-packages", "dist-packages", "/usr/lib", "node_modules", "node:internal",
        "(internal/", "/rustc/", "std::", "core::", "<frozen", "/usr/local/go/", "runtime/", "java.base/",
        "at java.", "at javax.", "at sun.", "at jdk.", "at org.junit.", "/usr/include/", "libc.so", NULL};
    for (const char *const *l = libs; *l; l++)
        if (memmem(s, n, *l, strlen(*l)))
            return 1;
    return 0;
}

/* Template ids: open addressing over the template hashes. */
struct ids {
    uint64_t *h;
    uint32_t *id;
    size_t mask, n;
};

static uint32_t id_of(struct ids *t, uint64_t h)
{
    size_t i = (size_t)(h ^ (h >> 29)) & t->mask;
    while (t->id[i] && t->h[i] != h)
        i = (i + 1) & t->mask;
    if (!t->id[i]) {
        t->h[i] = h;
        t->id[i] = (uint32_t)++t->n;
    }
    return t->id[i] - 1;
}

struct work {
    const struct hr_logc_config *cfg;
    const char *query;  /* the user's question, or "" */
    struct ll *l;
    size_t n;
    uint32_t *count;   /* per template id */
    uint32_t *freq;    /* lines of each template in the whole log */
    size_t n_tmpl;
    struct ids seen;   /* the template table, then exact hashes of kept lines */
    char *clean;       /* ANSI-free copies of lines that had escapes */
    size_t kept, progress;
    struct tb_chain *chains; /* Python exceptions, in order */
    size_t n_chains;
};

/* keep bits: why a line is kept */
#define K_SIGNAL 1  /* error, warning, summary, stack frame: kept whole */
#define K_CONTEXT 2 /* next to a signal */
#define K_EDGE 4    /* among the first or last lines */
#define K_DIAG 8    /* a compiler error's "In function" line, source echo and caret */
#define K_QUERY 16  /* among the lines that best match the question */
#define K_TRACE 32  /* a traceback's exception line, kept with its frames */

/* Keep a stack trace [a, b): all of it when short, else the first and last
 * two frames and project frames, up to max_stack_frames. */
static void keep_stack(struct work *w, size_t a, size_t b)
{
    size_t frames = 0;
    for (size_t i = a; i < b; i++)
        frames += w->l[i].cls == HR_LOGC_FRAME;
    size_t budget = w->cfg->max_stack_frames, seen = 0;
    for (size_t i = a; i < b; i++) {
        if (w->l[i].cls != HR_LOGC_FRAME) {
            w->l[i].keep = i > a && w->l[i - 1].keep; /* the source line goes with its frame */
            continue;
        }
        seen++;
        int edge = seen <= 2 || seen + 2 > frames;
        w->l[i].keep = frames <= budget || edge;
    }
    if (frames <= budget)
        return;
    size_t used = budget < 4 ? budget : 4;
    const struct ll *prev = NULL; /* the frame above: a recursion repeats it, and says nothing new */
    for (size_t i = a; i < b && used < budget; i++) {
        const struct ll *x = &w->l[i], *above = prev;
        if (x->cls != HR_LOGC_FRAME)
            continue;
        prev = x;
        if (above && above->len == x->len && !memcmp(above->s, x->s, x->len))
            continue;
        if (!x->keep && !x->lib) {
            w->l[i].keep = K_SIGNAL;
            if (i + 1 < b && w->l[i + 1].cls == HR_LOGC_FRAME_CONT)
                w->l[i + 1].keep = K_SIGNAL;
            used++;
        }
    }
}

static uint64_t line_hash(const struct ll *x)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: only kept lines and their kin, few */
    for (uint32_t k = 0; k < x->len; k++)
        h = (h ^ (unsigned char)x->s[k]) * 0x100000001b3ULL;
    return hr_mix64(h);
}

static int has(const struct ids *t, uint64_t h)
{
    size_t i = (size_t)(h ^ (h >> 29)) & t->mask;
    while (t->id[i] && t->h[i] != h)
        i = (i + 1) & t->mask;
    return t->id[i] != 0;
}

/* Lines that repeat, byte for byte, a line already kept above carry nothing
 * new (a compiler's diagnostics for a file built into four libraries): they
 * are dropped (and said to be repeats) unless among the first or last lines.
 * Only error, warning and normal lines kept for a reason in `bits`; `seen`
 * ends with the exact hashes of the lines kept. */
static void drop_repeats(struct work *w, struct ids *seen, uint8_t bits)
{
    seen->n = 0;
    memset(seen->id, 0, (seen->mask + 1) * sizeof *seen->id);
    for (size_t i = 0; i < w->n; i++) {
        struct ll *x = &w->l[i];
        if (!x->keep || x->cls == HR_LOGC_BLANK)
            continue;
        size_t before = seen->n;
        id_of(seen, line_hash(x));
        int again = seen->n == before;
        if (again && (x->keep & bits) && !(x->keep & (K_EDGE | K_DIAG | K_TRACE)) &&
            (x->cls == HR_LOGC_ERROR || x->cls == HR_LOGC_WARN || x->cls == HR_LOGC_NORMAL)) {
            x->keep = 0;
            x->dup = 1;
        }
    }
}

/* Dropped lines that are copies of kept ones fold as repeats. Only lines
 * of a template some kept line has, and that is not everywhere in the log
 * (a template that common folds as "similar lines" anyway), are hashed. */
static void mark_repeats(struct work *w, const struct ids *seen)
{
    uint8_t *kept_tmpl = calloc(w->n_tmpl ? w->n_tmpl : 1, 1);
    if (!kept_tmpl)
        return; /* they fold as other lines */
    for (size_t i = 0; i < w->n; i++)
        if (w->l[i].keep && w->freq[w->l[i].id] <= 4 * w->cfg->max_similar)
            kept_tmpl[w->l[i].id] = 1;
    for (size_t i = 0; i < w->n; i++) {
        struct ll *x = &w->l[i];
        if (!x->keep && !x->dup && kept_tmpl[x->id] && x->cls != HR_LOGC_BLANK && x->cls != HR_LOGC_PROGRESS &&
            x->cls != HR_LOGC_PASS && has(seen, line_hash(x)))
            x->dup = 1;
    }
    free(kept_tmpl);
}

static int digit(char c) { return (unsigned)(c - '0') < 10; }

/* "path:12:5: error: …", "path:12: fatal error: …", "path:12:5: warning: …"
 * (gcc, clang): the length of path, else 0. */
static size_t cc_diag_path(const char *s, size_t n)
{
    size_t p = 0;
    while (p < n && s[p] != ':' && s[p] != ' ' && s[p] != '\t')
        p++;
    size_t i = p;
    int nums = 0;
    while (i + 1 < n && s[i] == ':' && digit(s[i + 1])) {
        for (i++; i < n && digit(s[i]);)
            i++;
        nums++;
    }
    if (!p || !nums || i + 2 >= n || s[i] != ':' || s[i + 1] != ' ')
        return 0;
    i += 2;
    return HR_STARTS(s + i, n - i, "error") || HR_STARTS(s + i, n - i, "fatal error") ||
                   HR_STARTS(s + i, n - i, "warning")
               ? p
               : 0;
}

/* A kept compiler error or warning keeps what places it, whatever its
 * template's frequency (a build prints "x.c: In function 'f':" and the echo
 * of a common line for every file): gcc's "path: In function 'f':" (or "At
 * top level:") line above it for the same path, within 40 lines, and the
 * source echo and caret lines under it (up to 6): its context_lines, which
 * frequent templates would otherwise fold. */
#define CC_CONTEXT_BACK 40
#define CC_ECHO_MAX 6
static void keep_cc_context(struct work *w)
{
    struct ll *l = w->l;
    for (size_t i = 0; i < w->n; i++) {
        if (!(l[i].keep & K_SIGNAL) || (l[i].cls != HR_LOGC_ERROR && l[i].cls != HR_LOGC_WARN))
            continue;
        size_t p = cc_diag_path(l[i].s, l[i].len);
        if (!p)
            continue;
        for (size_t k = i, m = 0; k-- > 0 && m < CC_CONTEXT_BACK; m++) {
            const char *s = l[k].s;
            size_t n = l[k].len;
            if (n > p + 2 && !memcmp(s, l[i].s, p) && s[p] == ':' && s[p + 1] == ' ' &&
                (HR_STARTS(s + p + 2, n - p - 2, "In ") || HR_STARTS(s + p + 2, n - p - 2, "At "))) {
                l[k].keep |= K_DIAG;
                break;
            }
        }
        for (size_t k = i + 1; k < w->n && k <= i + CC_ECHO_MAX && hr_cc_echo_line(l[k].s, l[k].len); k++)
            l[k].keep |= K_DIAG;
    }
}

/* Normal lines next to a kept line (context_lines each side), unless their
 * template fills the log (more than max_similar lines): such a line says
 * nothing about it and is counted in the fold instead. */
static void keep_context(struct work *w, size_t i)
{
    const struct hr_logc_config *cfg = w->cfg;
    struct ll *l = w->l;
    size_t a = i > cfg->context_lines ? i - cfg->context_lines : 0;
    size_t b = i + cfg->context_lines < w->n ? i + cfg->context_lines : w->n - 1;
    for (size_t k = a; k <= b; k++)
        if (l[k].cls == HR_LOGC_BLANK || (l[k].cls == HR_LOGC_NORMAL && w->freq[l[k].id] <= cfg->max_similar))
            l[k].keep |= K_CONTEXT;
}

/* The lines the question is about stay, whatever else is folded: up to
 * QUERY_LINES of the best BM25 matches of the question (lib/bm25.c, as
 * smart_crusher and search_compressor rank), each scoring at least half the
 * best (a line sharing one common word of the question is no answer), with
 * their context; the best first, the earlier of equals. Lines already kept,
 * and copies of kept lines, take no slot. Only when the question points at
 * a few lines: when more than 5 % of the lines match that well (at least
 * QUERY_LINES), it names what the log is full of ("which file, function and
 * line?" of a build log: 162 of 919 lines), as smart_crusher reads a quoted
 * name. A few lines, so a question about something else costs little:
 * "what happened to libzstd1?" of a 6,000-line dpkg.log, whose every line
 * names its package, was answered by a fold that named other packages.
 * Returns -1 when out of memory. */
#define QUERY_LINES 3
static int keep_query_matches(struct work *w, const struct ids *seen)
{
    struct ll *l = w->l;
    size_t n = w->n;
    if (!w->query[0] || !n)
        return 0;
    struct hr_bm25_doc *docs = malloc(n * sizeof *docs);
    double *score = malloc(n * sizeof *score);
    int rc = docs && score ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++)
        docs[i] = (struct hr_bm25_doc){l[i].s, l[i].len};
    int hits = rc ? -1 : hr_bm25(w->query, docs, n, 0, score);
    if (hits < 0)
        rc = -1;
    double top = 0;
    for (size_t i = 0; hits > 0 && i < n; i++)
        if (l[i].cls != HR_LOGC_BLANK && l[i].cls != HR_LOGC_PROGRESS && score[i] > top)
            top = score[i];
    size_t good = 0;
    for (size_t i = 0; hits > 0 && i < n; i++)
        good += score[i] > 0 && score[i] * 2 >= top;
    if (good > (n / 20 > QUERY_LINES ? n / 20 : QUERY_LINES))
        hits = 0; /* more than 5 % of the lines: the question names what the log is full of, not a few lines */
    const struct ll *picked[QUERY_LINES];
    for (size_t got = 0; hits > 0 && got < QUERY_LINES;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            const struct ll *x = &l[i];
            if (x->keep || x->cls == HR_LOGC_BLANK || x->cls == HR_LOGC_PROGRESS || score[i] <= 0 ||
                score[i] * 2 < top || (best != SIZE_MAX && score[i] <= score[best]))
                continue;
            int copy = has(seen, line_hash(x)); /* a line kept already, word for word */
            for (size_t k = 0; k < got && !copy; k++)
                copy = picked[k]->len == x->len && !memcmp(picked[k]->s, x->s, x->len);
            if (!copy)
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        l[best].keep |= K_QUERY;
        picked[got++] = &l[best];
        keep_context(w, best);
    }
    free(docs), free(score);
    return rc;
}

/* A Python exception that keeps any line keeps, in each of its traces, the
 * header, the frames keep_stack keeps and the line naming the exception, and
 * what joins them (the "During handling …" line, a group's separators): a
 * chain's second "Traceback (most recent call last):" repeats the first and
 * its exception line may repeat a kept one, but without them the model
 * reads one trace where there were two, or frames without what they raised. */
static void keep_chains(struct work *w)
{
    struct ll *l = w->l;
    for (size_t c = 0; c < w->n_chains; c++) {
        size_t a = w->chains[c].a, b = w->chains[c].b;
        int kept = 0;
        for (size_t k = a; k < b && !kept; k++)
            kept = (l[k].keep & (K_SIGNAL | K_TRACE)) != 0;
        if (!kept)
            continue;
        for (size_t k = a; k < b;) {
            if (l[k].cls == HR_LOGC_FRAME || l[k].cls == HR_LOGC_FRAME_CONT) {
                size_t e = k, any = 0;
                for (; e < b && (l[e].cls == HR_LOGC_FRAME || l[e].cls == HR_LOGC_FRAME_CONT); e++)
                    any |= l[e].keep;
                if (!any)
                    keep_stack(w, k, e);
                k = e;
                continue;
            }
            if (l[k].tb) {
                l[k].keep |= K_SIGNAL | K_TRACE;
                l[k].dup = 0;
            }
            k++;
        }
    }
}

static int select_lines(struct work *w, struct ids *seen)
{
    const struct hr_logc_config *cfg = w->cfg;
    struct ll *l = w->l;
    size_t n = w->n;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = l[i].cls;
        if (c == HR_LOGC_ERROR || c == HR_LOGC_WARN)
            l[i].keep = ++w->count[l[i].id] <= cfg->max_similar;
        w->progress += c == HR_LOGC_PROGRESS;
    }
    /* Summary lines: the last 2 x max_similar of them (the totals come last; a Maven or
     * cargo run prints one per test class or crate before them). */
    size_t summaries = 0;
    for (size_t i = n; i-- > 0;)
        if (l[i].cls == HR_LOGC_SUMMARY)
            l[i].keep = ++summaries <= 2 * cfg->max_similar;
    drop_repeats(w, seen, K_SIGNAL);
    /* context around kept errors and warnings */
    for (size_t i = 0; i < n; i++)
        if (l[i].keep && (l[i].cls == HR_LOGC_ERROR || l[i].cls == HR_LOGC_WARN))
            keep_context(w, i);
    keep_cc_context(w);
    /* stack traces next to a kept error or warning (node --trace-warnings) */
    for (size_t i = 0; i < n;) {
        if (l[i].cls != HR_LOGC_FRAME) {
            i++;
            continue;
        }
        size_t b = i;
        while (b < n && (l[b].cls == HR_LOGC_FRAME || l[b].cls == HR_LOGC_FRAME_CONT))
            b++;
        int near = 0;
        for (size_t k = i > 3 ? i - 3 : 0; k < i && !near; k++)
            near = (l[k].keep & K_SIGNAL) && (l[k].cls == HR_LOGC_ERROR || l[k].cls == HR_LOGC_WARN);
        for (size_t k = b; k < n && k < b + 3 && !near; k++)
            near = (l[k].keep & K_SIGNAL) && (l[k].cls == HR_LOGC_ERROR || l[k].cls == HR_LOGC_WARN);
        if (near)
            keep_stack(w, i, b);
        i = b;
    }
    keep_chains(w);
    /* the first and last lines (passing tests among them fold with the rest) */
    for (size_t i = 0, h = 0; i < n && h < cfg->head_lines; i++)
        if (l[i].cls != HR_LOGC_PROGRESS && l[i].cls != HR_LOGC_BLANK) {
            h++;
            if (l[i].cls != HR_LOGC_PASS)
                l[i].keep |= K_EDGE;
        }
    for (size_t i = n, t = 0; i-- > 0 && t < cfg->tail_lines;)
        if (l[i].cls != HR_LOGC_PROGRESS && l[i].cls != HR_LOGC_BLANK) {
            t++;
            if (l[i].cls != HR_LOGC_PASS)
                l[i].keep |= K_EDGE;
        }
    for (size_t i = 0; i < n; i++)
        if (l[i].cls == HR_LOGC_PROGRESS)
            l[i].keep = 0;
    if (keep_query_matches(w, seen) < 0)
        return -12;
    drop_repeats(w, seen, K_CONTEXT);
    mark_repeats(w, seen);
    return 0;
}

/* One line written out. Normal lines (kept for context or position, or
 * left in a short run) are cut in the middle past LONG_LINE bytes (a 1 KB
 * compiler command line places an error as well by its start and its end);
 * errors, warnings, summaries and frames never are. */
#define LONG_LINE 200
#define CUT_HEAD 120
#define CUT_TAIL 60
static void put_line(struct hr_tbuf *o, const struct ll *x)
{
    if (x->len <= LONG_LINE || (x->keep & (K_SIGNAL | K_QUERY)) || x->cls >= HR_LOGC_FRAME) {
        hr_tbuf_put(o, x->s, x->len);
    } else {
        size_t h = CUT_HEAD, t = x->len - CUT_TAIL;
        while (h && ((unsigned char)x->s[h] & 0xC0) == 0x80)
            h--; /* cut on character boundaries */
        while (t < x->len && ((unsigned char)x->s[t] & 0xC0) == 0x80)
            t++;
        hr_tbuf_put(o, x->s, h);
        hr_tbuf_put(o, " \xe2\x80\xa6 ", 5);
        hr_tbuf_put(o, x->s + t, x->len - t);
    }
    hr_tbuf_putc(o, '\n');
}

static void put_example_max(struct hr_tbuf *o, const struct ll *x, size_t max)
{
    size_t n = x->len;
    const char *s = x->s;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (n > max) {
        n = max;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* cut on a character boundary */
        hr_tbuf_put(o, s, n);
        hr_tbuf_put(o, "\xe2\x80\xa6", 3);
    } else {
        hr_tbuf_put(o, s, n);
    }
    hr_tbuf_putc(o, '\n');
}

static void put_example(struct hr_tbuf *o, const struct ll *x) { put_example_max(o, x, EXAMPLE_MAX); }

#define PASS_GROUP UINT32_MAX       /* passing-test lines fold as one group, */
#define DUP_GROUP (UINT32_MAX - 1) /* and so do repeats of kept lines */
static uint32_t group_of(const struct ll *x)
{
    return x->dup ? DUP_GROUP : x->cls == HR_LOGC_PASS ? PASS_GROUP : x->id;
}

/* "… 12 similar lines like: X", "… 6 lines repeated from above, first: X" */
static void put_group(struct hr_tbuf *o, uint32_t g, size_t k, const struct ll *x)
{
    if (g == DUP_GROUP)
        hr_tbuf_putf(o, "\xe2\x80\xa6 %zu repeats of kept lines, first: ", k);
    else if (g == PASS_GROUP)
        hr_tbuf_putf(o, "\xe2\x80\xa6 %zu passing tests like: ", k);
    else
        hr_tbuf_putf(o, "\xe2\x80\xa6 %zu similar lines like: ", k);
    put_example(o, x);
}

static int folded(const struct ll *x) { return x->cls != HR_LOGC_PROGRESS && x->cls != HR_LOGC_BLANK; }

/* Kinds of lines: when the templates of a long run are too many for its two
 * largest to say what it holds (dpkg.log: a template per package), lines are
 * grouped by their common words alone, in order: words (letters, '_') found
 * in at least 1/KIND_SHARE of the run's lines (at least 3) count, rarer words
 * (package names, paths) and anything with a digit do not. */
#define KIND_MIN_REST 20 /* lines left undescribed before kinds are looked for */
#define KIND_SHARE 50
#define KIND_SHOWN 3     /* kinds named, the 2nd and 3rd when >= 1/20 of the run */
#define KIND_WORDS 8     /* words of a line looked at */
#define KIND_EXAMPLE_MAX 100 /* bytes of each kind's example: up to three lines of them */
#define KIND_PASS 1      /* passing tests and repeats keep their own groups */
#define KIND_DUP 2

static int word_byte(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u || c == '_' || (unsigned)(c - '0') < 10u;
}

/* Calls f(ctx, hash) for the first KIND_WORDS digit-free words of x, in
 * order, until f returns nonzero. */
static void each_word(const struct ll *x, int (*f)(void *, uint64_t), void *ctx)
{
    const unsigned char *s = (const unsigned char *)x->s;
    size_t n = x->len, words = 0;
    for (size_t i = 0; i < n && words < KIND_WORDS;) {
        if (!word_byte(s[i])) {
            i++;
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ULL;
        int digit = 0;
        for (; i < n && word_byte(s[i]); i++) {
            digit |= (unsigned)(s[i] - '0') < 10u;
            h = (h ^ s[i]) * 0x100000001b3ULL;
        }
        if (digit)
            continue;
        words++;
        if (f(ctx, hr_mix64(h)))
            return;
    }
}

struct kinds {
    struct ids words;   /* word hash -> dense id */
    uint32_t *wcount;   /* occurrences of each word in the run */
    uint32_t common;    /* occurrences that make a word common */
    uint64_t key;       /* the line's kind, built word by word */
    size_t used;        /* common words in it */
};

static int count_word(void *ctx, uint64_t h)
{
    struct kinds *k = ctx;
    k->wcount[id_of(&k->words, h)]++;
    return 0;
}

/* Common words make the kind; the first rare one (a package, a path: the
 * line's subject) ends it. */
static int key_word(void *ctx, uint64_t h)
{
    struct kinds *k = ctx;
    if (k->wcount[id_of(&k->words, h)] < k->common)
        return 1;
    k->key = hr_mix64(k->key ^ h);
    k->used++;
    return 0;
}

static int ids_init(struct ids *t, size_t items)
{
    size_t cap = 64;
    while (cap < 2 * items)
        cap *= 2;
    t->h = malloc(cap * sizeof *t->h);
    t->id = calloc(cap, sizeof *t->id);
    t->mask = cap - 1;
    t->n = 0;
    return t->h && t->id ? 0 : -1;
}

/* Say what the folded lines of [a, b) are by their most common kinds, in up
 * to KIND_SHOWN lines; 0 (nothing written) when those describe no more
 * lines than `named`, what the templates' two largest groups describe. */
static int render_kinds(struct work *w, struct hr_tbuf *o, size_t a, size_t b, size_t total, size_t named)
{
    struct kinds k = {.common = total / KIND_SHARE > 3 ? (uint32_t)(total / KIND_SHARE) : 3};
    struct ids keys = {0};
    uint32_t *kcount = NULL, *kfirst = NULL;
    size_t nwords = 0, shown[KIND_SHOWN], cnt[KIND_SHOWN] = {0}, covered = 0, n_shown = 0;
    int rc = 0;
    for (size_t i = a; i < b; i++) /* a bound on the words looked at: a word and a separator */
        nwords += w->l[i].len / 2 + 1 < KIND_WORDS ? w->l[i].len / 2 + 1 : KIND_WORDS;
    if (ids_init(&k.words, nwords) || ids_init(&keys, total) || !(k.wcount = calloc(nwords + 1, sizeof *k.wcount)) ||
        !(kcount = calloc(total, sizeof *kcount)) || !(kfirst = malloc(total * sizeof *kfirst)))
        goto out; /* the templates' summary stands */
    for (size_t i = a; i < b; i++)
        if (folded(&w->l[i]))
            each_word(&w->l[i], count_word, &k);
    for (size_t i = a; i < b; i++) {
        const struct ll *x = &w->l[i];
        if (!folded(x))
            continue;
        uint32_t g = group_of(x);
        k.key = g == DUP_GROUP ? KIND_DUP : g == PASS_GROUP ? KIND_PASS : 0x6b696e64ULL;
        k.used = 0;
        if (g < DUP_GROUP)
            each_word(x, key_word, &k);
        if (g < DUP_GROUP && !k.used) /* no common word first: a kind of its own template */
            k.key = hr_mix64(0x746d706cULL ^ x->id);
        size_t before = keys.n;
        uint32_t id = id_of(&keys, k.key);
        if (keys.n > before)
            kfirst[id] = (uint32_t)(i - a);
        kcount[id]++;
    }
    for (size_t id = 0; id < keys.n; id++) { /* the largest kinds, first seen wins ties */
        size_t c = kcount[id], at = n_shown < KIND_SHOWN ? n_shown : KIND_SHOWN - 1;
        if (c < 2 || (n_shown == KIND_SHOWN && c <= cnt[at]))
            continue;
        while (at > 0 && c > cnt[at - 1]) { /* ids come first seen first: a tie keeps the earlier */
            shown[at] = shown[at - 1], cnt[at] = cnt[at - 1];
            at--;
        }
        shown[at] = id, cnt[at] = c;
        if (n_shown < KIND_SHOWN)
            n_shown++;
    }
    while (n_shown > 1 && cnt[n_shown - 1] * 10 < total)
        n_shown--;
    for (size_t j = 0; j < n_shown; j++)
        covered += cnt[j];
    if (!n_shown || covered <= named)
        goto out;
    for (size_t j = 0; j < n_shown; j++) {
        const struct ll *x = &w->l[a + kfirst[shown[j]]];
        uint32_t g = group_of(x);
        if (j == 0)
            hr_tbuf_putf(o, "\xe2\x80\xa6 %zu lines omitted; ", total);
        else
            hr_tbuf_put(o, "\xe2\x80\xa6   ", 6);
        hr_tbuf_putf(o, "%zu %s: ", cnt[j], g == DUP_GROUP ? "repeats of kept lines, first" :
                                                g == PASS_GROUP ? "passing tests like" : "like");
        put_example_max(o, x, KIND_EXAMPLE_MAX);
    }
    rc = 1;
out:
    free(k.words.h), free(k.words.id), free(k.wcount), free(keys.h), free(keys.id), free(kcount), free(kfirst);
    return rc;
}

/* Lines [a, b) were dropped: say what they were in at most two lines (three
 * when it takes kinds of lines to say). */
static void render_run(struct work *w, struct hr_tbuf *o, size_t a, size_t b, uint32_t *run_count)
{
    size_t total = 0, frames = 0, dups = 0, passes = 0, results = 0, first = SIZE_MAX, example = SIZE_MAX;
    for (size_t i = a; i < b; i++) {
        const struct ll *x = &w->l[i];
        if (!folded(x))
            continue;
        total++;
        frames += x->cls == HR_LOGC_FRAME || x->cls == HR_LOGC_FRAME_CONT;
        dups += x->dup;
        if (first == SIZE_MAX)
            first = i;
        if (x->cls != HR_LOGC_PASS)
            continue;
        passes++;
        if (!x->start && !results++)
            example = i;
        else if (example == SIZE_MAX)
            example = i; /* only announcements so far */
    }
    if (!total)
        return;
    if (total <= 2) { /* a summary line would cost as much as the lines */
        for (size_t i = a; i < b; i++)
            if (folded(&w->l[i])) {
                put_line(o, &w->l[i]);
                w->kept++;
            }
        return;
    }
    if (frames == total) {
        hr_tbuf_putf(o, "    \xe2\x80\xa6 %zu stack frame lines omitted\n", total);
        return;
    }
    if (passes * 5 >= total) { /* a test runner's passing tests, with their bookkeeping lines */
        if (passes == total)
            hr_tbuf_putf(o, "\xe2\x80\xa6 %zu passing tests like: ", total);
        else
            hr_tbuf_putf(o, "\xe2\x80\xa6 %zu lines omitted, with %zu passing tests like: ", total, results);
        put_example(o, &w->l[example]);
        return;
    }
    /* the two largest groups of the run (first seen wins ties) */
    size_t best[2] = {SIZE_MAX, SIZE_MAX}, cnt[2] = {0, 0};
    for (size_t i = a; i < b; i++)
        if (folded(&w->l[i]) && group_of(&w->l[i]) < DUP_GROUP)
            run_count[w->l[i].id]++;
    for (size_t i = a; i < b; i++) {
        const struct ll *x = &w->l[i];
        if (!folded(x))
            continue;
        uint32_t g = group_of(x);
        size_t k = g == PASS_GROUP ? passes : g == DUP_GROUP ? dups : run_count[g];
        if (k < 2 || (best[0] != SIZE_MAX && group_of(&w->l[best[0]]) == g) ||
            (best[1] != SIZE_MAX && group_of(&w->l[best[1]]) == g))
            continue;
        if (k > cnt[0]) {
            best[1] = best[0], cnt[1] = cnt[0];
            best[0] = i, cnt[0] = k;
        } else if (k > cnt[1]) {
            best[1] = i, cnt[1] = k;
        }
    }
    /* cnt[1] is 0 without a second group */
    size_t rest = total - (best[0] != SIZE_MAX ? cnt[0] : 0);
    if (rest >= KIND_MIN_REST && cnt[1] * 4 < rest && render_kinds(w, o, a, b, total, total - rest + cnt[1]))
        rest = 0; /* said by kinds of lines */
    else if (best[0] != SIZE_MAX)
        put_group(o, group_of(&w->l[best[0]]), cnt[0], &w->l[best[0]]);
    if (rest && best[1] != SIZE_MAX && rest == cnt[1]) {
        put_group(o, group_of(&w->l[best[1]]), cnt[1], &w->l[best[1]]);
    } else if (rest && best[1] != SIZE_MAX) {
        uint32_t g = group_of(&w->l[best[1]]);
        hr_tbuf_putf(o, "\xe2\x80\xa6 %zu other lines omitted, %zu %s: ", rest, cnt[1],
                     g == DUP_GROUP ? "repeats of kept lines, first" : g == PASS_GROUP ? "passing tests like" : "like");
        put_example(o, &w->l[best[1]]);
    } else if (rest) {
        size_t f = first;
        while (!folded(&w->l[f]) || (best[0] != SIZE_MAX && group_of(&w->l[f]) == group_of(&w->l[best[0]])))
            f++;
        hr_tbuf_putf(o, "\xe2\x80\xa6 %zu %slines omitted, first: ", rest, best[0] != SIZE_MAX ? "other " : "");
        put_example(o, &w->l[f]);
    }
    for (size_t i = a; i < b; i++)
        if (group_of(&w->l[i]) < DUP_GROUP)
            run_count[w->l[i].id] = 0;
}

static int caret_line(const char *s, size_t n)
{
    size_t marks = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '^' || s[i] == '~')
            marks++;
        else if (s[i] != ' ')
            return 0;
    }
    return marks > 0;
}

/* "queue.Empty", "KeyboardInterrupt", "app.errors.Timeout: pool exhausted":
 * a Python exception's name (dotted or not) alone or before ": message",
 * not an all-capitals word ("INFO: …" is a log line). */
static int exception_line(const char *s, size_t n)
{
    size_t i = 0, seg = 0;
    int lower = 0;
    for (;;) {
        size_t b = i;
        if (i >= n || !(((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') || s[i] == '_'))
            return 0;
        lower = 0;
        while (i < n && (((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') || s[i] == '_' || digit(s[i]))) {
            lower |= s[i] >= 'a' && s[i] <= 'z';
            i++;
        }
        seg = i - b;
        if (i < n && s[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    if (!lower && seg > 1)
        return 0;
    return i == n || (s[i] == ':' && (i + 1 == n || s[i + 1] == ' '));
}

static const char tb_plain[] = "Traceback (most recent call last):";
static const char tb_group[] = "Exception Group Traceback (most recent call last):";

/* A line's text after its syslog/journald or docker compose prefix. */
static const char *body(const struct ll *x, size_t *m)
{
    size_t p = hr_logc_line_prefix(x->s, x->len);
    *m = x->len - p;
    return x->s + p;
}

/* An exception group's gutter at the start of s: spaces, then '|' or '+'
 * and a space ("  | ", "    + "); its length, else 0. A separator line
 * ("  +-+---- 1 ----", "    +--------") or a bare "  |" is all gutter. */
static size_t gutter(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= n || (s[i] != '|' && s[i] != '+'))
        return 0;
    if (i + 1 == n || (s[i] == '+' && s[i + 1] == '-'))
        return n;
    return s[i + 1] == ' ' ? i + 2 : 0;
}

static int empty_body(const struct ll *x)
{
    size_t m;
    const char *s = body(x, &m);
    while (m && (*s == ' ' || *s == '\t'))
        s++, m--;
    return x->cls == HR_LOGC_BLANK || !m;
}

static int chain_text(const char *s, size_t m)
{
    return HR_STARTS(s, m, "During handling of the above exception, another exception occurred:") ||
           HR_STARTS(s, m, "The above exception was the direct cause of the following exception:");
}

static void set_frame(struct ll *x, const char *s, size_t m)
{
    if (x->cls == HR_LOGC_FRAME)
        return;
    while (m && (*s == ' ' || *s == '\t'))
        s++, m--;
    if (HR_STARTS(s, m, "File \"") && memmem(s, m, "\", line ", 8)) { /* a frame behind a group's gutter */
        x->cls = HR_LOGC_FRAME;
        x->lib = lib_frame(x->s, x->len);
    } else {
        x->cls = HR_LOGC_FRAME_CONT;
    }
}

/* A plain trace from its header at i: indented frames, source, caret and
 * "[Previous line repeated N more times]" lines, then at the margin the
 * exception. That last line is what the model needs; it read as a normal
 * line unless its name ended in Error or Exception or its message held an
 * error word (queue.Empty, StopIteration, KeyboardInterrupt, SystemExit: 2
 * were folded). Returns the line after the trace. */
static size_t plain_trace(struct ll *l, size_t n, size_t i)
{
    l[i].tb = TB_HEAD;
    size_t k = i + 1;
    int frames = 0;
    for (; k < n; k++) {
        size_t m;
        const char *s = body(&l[k], &m);
        if (!m || (s[0] != ' ' && s[0] != '\t') || l[k].cls == HR_LOGC_BLANK)
            break;
        set_frame(&l[k], s, m);
        frames += l[k].cls == HR_LOGC_FRAME;
    }
    size_t m;
    const char *s = k < n ? body(&l[k], &m) : NULL;
    if (s && frames && exception_line(s, m)) {
        l[k].cls = HR_LOGC_ERROR;
        l[k].tb = TB_EXC;
        k++;
    }
    return k;
}

/* An exception group (Python 3.11) from its "  + Exception Group Traceback"
 * at i: every line of it has the gutter, its sub-exceptions' traces, nested
 * groups and the exception lines inside ("  | ExceptionGroup: batch (2
 * sub-exceptions)", "    | queue.Empty"). Returns the line after it. */
static size_t group_trace(struct ll *l, size_t n, size_t i)
{
    size_t k = i;
    for (; k < n; k++) {
        size_t m, g;
        const char *s = body(&l[k], &m);
        if (!(g = gutter(s, m)))
            break;
        if (k > i && g < m && s[g - 2] == '+' && HR_STARTS(s + g, m - g, tb_group))
            break; /* the next group, back to back */
        s += g, m -= g;
        if (!m)
            l[k].tb = TB_LINK; /* a separator, a bare "  |" */
        else if (HR_STARTS(s, m, tb_plain) || HR_STARTS(s, m, tb_group))
            l[k].tb = TB_HEAD, l[k].cls = HR_LOGC_ERROR;
        else if (s[0] == ' ' || s[0] == '\t')
            set_frame(&l[k], s, m);
        else if (!chain_text(s, m) && exception_line(s, m))
            l[k].tb = TB_EXC, l[k].cls = HR_LOGC_ERROR;
        else
            l[k].tb = TB_LINK; /* "During handling …", "and 5 more exceptions" */
    }
    return k;
}

/* Whether line i begins a trace: 1 plain, 2 a group. */
static int trace_start(const struct ll *x)
{
    size_t m, g;
    const char *s = body(x, &m);
    if (HR_STARTS(s, m, tb_plain))
        return 1;
    g = gutter(s, m);
    return g && g < m && s[g - 2] == '+' && HR_STARTS(s + g, m - g, tb_group) ? 2 : 0;
}

/* Python exceptions (each line may carry a syslog, journald or docker
 * compose prefix): their lines' classes and parts, and each exception's
 * lines as a chain in w->chains (traces joined by "During handling of the
 * above exception, another exception occurred:" or "The above exception
 * was the direct cause of the following exception:" and blank lines are
 * one). Returns -1 when out of memory. */
static int mark_tracebacks(struct work *w)
{
    struct ll *l = w->l;
    size_t n = w->n, cap = 0;
    for (size_t i = 0; i < n;) {
        int kind = trace_start(&l[i]);
        if (!kind) {
            i++;
            continue;
        }
        size_t a = i, e;
        for (;;) {
            e = kind == 1 ? plain_trace(l, n, i) : group_trace(l, n, i);
            size_t k = e, m;
            for (size_t gap = 0; k < n && gap < 2 && empty_body(&l[k]); gap++)
                k++;
            const char *s = k < n ? body(&l[k], &m) : NULL;
            if (!s || !chain_text(s, m))
                break;
            size_t h = k + 1;
            for (size_t gap = 0; h < n && gap < 2 && empty_body(&l[h]); gap++)
                h++;
            if (h >= n || !(kind = trace_start(&l[h])))
                break;
            for (size_t j = e; j < h; j++)
                l[j].tb = TB_LINK;
            i = h;
        }
        if (w->n_chains == cap) {
            cap = cap ? 2 * cap : 16;
            struct tb_chain *c = realloc(w->chains, cap * sizeof *c);
            if (!c)
                return -1;
            w->chains = c;
        }
        w->chains[w->n_chains++] = (struct tb_chain){a, e};
        i = e > a ? e : a + 1;
    }
    return 0;
}

/* Split, clean (ANSI, '\r' overwrites) and classify every line. */
static int load(struct work *w, const char *text, size_t len)
{
    size_t n;
    struct hr_line *raw = hr_lines_split(text, len, &n);
    if (!raw)
        return len ? -12 : 1;
    int esc = memchr(text, ANSI_ESC, len) != NULL, cr = memchr(text, '\r', len) != NULL;
    w->l = malloc((n ? n : 1) * sizeof *w->l);
    w->clean = esc ? malloc(len + 1) : NULL;
    struct ids ids = {0};
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    ids.h = malloc(cap * sizeof *ids.h);
    ids.id = calloc(cap, sizeof *ids.id);
    ids.mask = cap - 1;
    if (!w->l || (esc && !w->clean) || !ids.h || !ids.id) {
        free(raw), free(ids.h), free(ids.id);
        return -12;
    }
    size_t co = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = text + raw[i].off;
        size_t m = raw[i].len;
        int overwritten = 0;
        if (cr) {
            const char *r = memrchr(s, '\r', m);
            if (r && (size_t)(r - s) + 1 < m) {
                m -= (size_t)(r - s) + 1;
                s = r + 1;
                overwritten = 1;
            } else if (r) {
                m = (size_t)(r - s); /* "\r\r\n" */
            }
        }
        if (esc && memchr(s, ANSI_ESC, m)) {
            size_t k = strip_ansi(s, m, w->clean + co);
            s = w->clean + co;
            m = k;
            co += k;
        }
        uint64_t t;
        struct ll *x = &w->l[i];
        x->s = s;
        x->len = (uint32_t)m;
        x->cls = (uint8_t)hr_logc_classify(s, m, &t);
        if (overwritten && x->cls < HR_LOGC_FRAME)
            x->cls = HR_LOGC_PROGRESS;
        x->keep = 0;
        x->dup = 0;
        x->tb = 0;
        x->start = x->cls == HR_LOGC_PASS && (HR_STARTS(s, m, "=== ") || HR_STARTS(s, m, "# Subtest: ") ||
                                              HR_STARTS(s, m, "[ RUN ") || HR_STARTS(s, m, "    # Subtest: "));
        x->lib = x->cls == HR_LOGC_FRAME && lib_frame(s, m);
        x->id = id_of(&ids, t);
    }
    /* the indented source line under a Python frame */
    for (size_t i = 1; i < n; i++)
        if (w->l[i - 1].cls == HR_LOGC_FRAME && w->l[i].cls != HR_LOGC_FRAME && w->l[i].len &&
            (w->l[i].s[0] == ' ' || w->l[i].s[0] == '\t') && memmem(w->l[i - 1].s, w->l[i - 1].len, "File \"", 6))
            w->l[i].cls = HR_LOGC_FRAME_CONT;
        else if (w->l[i - 1].cls == HR_LOGC_FRAME_CONT && caret_line(w->l[i].s, w->l[i].len))
            w->l[i].cls = HR_LOGC_FRAME_CONT; /* Python 3.11+ "~~~^^^" under the source line */
    /* a Go frame is two lines, "pkg.Func(args)" then "\t/path/file.go:12 +0x1d":
     * the function line is the frame, its file line goes with it */
    for (size_t i = 1; i < n; i++) {
        struct ll *f = &w->l[i - 1], *x = &w->l[i];
        size_t fp = hr_logc_line_prefix(f->s, f->len); /* both may come through journald or compose */
        if (x->cls == HR_LOGC_FRAME && memmem(x->s, x->len, ".go:", 4) && f->cls == HR_LOGC_NORMAL && f->len > fp &&
            f->s[fp] != ' ' && f->s[fp] != '\t' && (f->s[f->len - 1] == ')' || HR_STARTS(f->s + fp, f->len - fp, "created by "))) {
            f->cls = HR_LOGC_FRAME;
            f->lib = x->lib;
            x->cls = HR_LOGC_FRAME_CONT;
        }
    }
    w->n = n;
    w->count = calloc(ids.n ? ids.n : 1, sizeof *w->count);
    w->freq = calloc(ids.n ? ids.n : 1, sizeof *w->freq);
    w->seen = ids;
    w->n_tmpl = ids.n;
    free(raw);
    if (!w->count || !w->freq || mark_tracebacks(w))
        return -12;
    for (size_t i = 0; i < n; i++)
        w->freq[w->l[i].id]++;
    return 0;
}

static void work_free(struct work *w)
{
    free(w->l), free(w->clean), free(w->count), free(w->freq), free(w->seen.h), free(w->seen.id), free(w->chains);
}

int hr_logc_compress(const void *cfgv, const char *text, size_t len, const char *query, struct hr_text_out *out)
{
    struct work w = {.cfg = cfgv, .query = query ? query : ""};
    memset(out, 0, sizeof *out);
    int rc = load(&w, text, len);
    if (rc == 0 && w.n < w.cfg->head_lines + w.cfg->tail_lines + 3)
        rc = 2; /* too short to fold */
    if (rc) {
        work_free(&w);
        return rc;
    }
    if (select_lines(&w, &w.seen)) {
        work_free(&w);
        return -12;
    }
    memset(w.count, 0, w.n_tmpl * sizeof *w.count); /* reused below as per-run counts */
    struct hr_tbuf body = {0};
    for (size_t i = 0; i < w.n;) {
        if (w.l[i].keep) {
            put_line(&body, &w.l[i]);
            w.kept++;
            i++;
            continue;
        }
        size_t b = i;
        while (b < w.n && !w.l[b].keep)
            b++;
        render_run(&w, &body, i, b, w.count);
        i = b;
    }
    char what[64];
    snprintf(what, sizeof what, "log lines omitted%s", w.progress ? ", progress bars dropped" : "");
    if (w.kept == w.n)
        rc = 3; /* nothing folded */
    else
        hr_text_marker(out, what, w.n - w.kept, w.n);
    hr_tbuf_put(&out->b, body.p ? body.p : "", body.len);
    if (body.oom)
        out->b.oom = 1;
    hr_tbuf_free(&body);
    work_free(&w);
    if (rc)
        hr_text_out_free(out);
    return rc;
}

/* Signatures of build and test tools, for text the router did not call a
 * log; looked for in the first and last 16 KiB (errors and summaries sit at
 * the end of a long build). */
int hr_logc_sniff(const char *text, size_t len)
{
    static const char *const sig[] = {"Traceback (most recent call last)", "npm ERR!", "error[E", "make: ***",
        "make[", "--- FAIL", "FAIL\t", "test result:", "BUILD FAILURE", "BUILD SUCCESS", "[INFO] ", "[ERROR] ",
        "short test summary info", "passed in ", "failed in ", ": error: ", ": warning: ", "Ran ", "Compiling ",
        "Step ", " panicked at ", "Exception in thread", "\tat ", "    at ", "Tests:", "FAILED", "npm WARN",
        "] Error ", "not remade because of errors", ": In function ", "collect2: error", "TAP version ",
        "not ok ", "# fail ", "# Subtest: ", NULL};
    const size_t win = 16384;
    size_t head = len < win ? len : win, tail = len > 2 * win ? win : len - head, lines = 0, hits = 0;
    for (size_t i = 0; i < head; i++)
        lines += text[i] == '\n';
    if (lines < 10 && len <= win)
        return 0;
    /* both windows as spans: with `text + len - tail` written in the call, a
     * recoverable -fsanitize=nonnull-attribute build (gcc 12 -O3) went on past
     * its check of the first memmem's text and warned -Wnonnull at the second */
    const char *at[2] = {text, text + (len - tail)};
    const size_t span[2] = {head, tail};
    for (const char *const *s = sig; *s; s++)
        for (int k = 0; k < 2; k++)
            if (span[k] && memmem(at[k], span[k], *s, strlen(*s))) {
                hits++;
                break;
            }
    return hits >= 2;
}
