/* searchc.c — search_compressor's core: matches grouped by file; each
 * file's first match, compiler diagnostics, and the matches most relevant to
 * the user's question (BM25) are kept; dropped matches are counted per file. */
#include <stdlib.h>
#include <string.h>
#include "bm25.h"
#include "searchc.h"

#ifndef REL_FLOOR
#define REL_FLOOR 0.5
#endif

enum { M_OTHER = 0, M_MATCH, M_CONTEXT, M_SEP, M_HEADING };

struct m {
    const char *s;   /* whole line */
    uint32_t len;
    uint32_t path_len; /* bytes of the path at s (for M_HEADING the whole line) */
    uint32_t file;     /* index into files */
    uint8_t kind;
    uint8_t keep;
};

struct file {
    const char *path;
    uint32_t path_len;
    uint32_t matches, kept;
    uint32_t last; /* its last line: the dropped count goes after it */
};

/* Files by path (open addressing), so interleaved output still groups. */
struct ftab {
    uint32_t *slot; /* file index + 1, 0 = empty */
    size_t mask;
};

static size_t file_of(struct ftab *t, struct file *f, size_t *nf, const char *path, size_t plen)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < plen; i++)
        h = (h ^ (unsigned char)path[i]) * 0x100000001b3ULL;
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t k = t->slot[i];
        if (!k) {
            f[*nf] = (struct file){path, (uint32_t)plen, 0, 0, 0};
            t->slot[i] = (uint32_t)++*nf;
            return *nf - 1;
        }
        if (f[k - 1].path_len == plen && !memcmp(f[k - 1].path, path, plen))
            return k - 1;
    }
}

static int digit(char c) { return c >= '0' && c <= '9'; }

/* "path:123:" or (sep '-') "path-123-" at the start of s: the path length, or 0.
 * git grep on a revision prints "HEAD:path:123:": the first ":digits:" wins. */
static size_t path_prefix(const char *s, size_t n, char sep)
{
    for (size_t i = 1; i + 2 < n; i++) {
        if (s[i] != sep)
            continue;
        size_t j = i + 1;
        while (j < n && digit(s[j]))
            j++;
        if (j > i + 1 && j < n && s[j] == sep)
            return i;
    }
    return 0;
}

/* "123:" or "123-" at the start (ripgrep's heading mode). */
static int numbered(const char *s, size_t n)
{
    size_t j = 0;
    while (j < n && digit(s[j]))
        j++;
    return j > 0 && j < n && (s[j] == ':' || s[j] == '-');
}

/* A compiler diagnostic ("path:12:5: error: …") is never dropped. */
static int diagnostic(const char *s, size_t n)
{
    return memmem(s, n, ": error:", 8) || memmem(s, n, ": warning:", 10) || memmem(s, n, ": fatal error:", 14);
}

int hr_searchc_compress(const void *cfgv, const char *text, size_t len, const char *query, struct hr_text_out *out)
{
    const struct hr_searchc_config *cfg = cfgv;
    memset(out, 0, sizeof *out);
    size_t n;
    struct hr_line *lines = hr_lines_split(text, len, &n);
    if (!lines)
        return len ? -12 : 1;
    struct m *m = calloc(n ? n : 1, sizeof *m);
    struct file *f = calloc(n ? n : 1, sizeof *f);
    struct hr_bm25_doc *docs = malloc((n ? n : 1) * sizeof *docs);
    double *score = malloc((n ? n : 1) * sizeof *score);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    struct ftab ft = {NULL, 0};
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ft.slot = calloc(cap, sizeof *ft.slot);
    ft.mask = cap - 1;
    int rc = m && f && docs && score && order && ft.slot ? 0 : -12;
    size_t nf = 0, matches = 0, cur = SIZE_MAX;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *s = text + lines[i].off;
        size_t l = lines[i].len, p;
        m[i] = (struct m){.s = s, .len = (uint32_t)l};
        if (l == 2 && s[0] == '-' && s[1] == '-') {
            m[i].kind = M_SEP;
            continue;
        }
        const char *path = NULL;
        size_t plen = 0;
        if ((p = path_prefix(s, l, ':'))) {
            m[i].kind = M_MATCH, path = s, plen = p;
        } else if (cur != SIZE_MAX && l > f[cur].path_len && !memcmp(s, f[cur].path, f[cur].path_len) &&
                   s[f[cur].path_len] == '-' && path_prefix(s, l, '-')) {
            m[i].kind = M_CONTEXT, path = s, plen = f[cur].path_len;
        } else if (cur != SIZE_MAX && f[cur].path_len && numbered(s, l) && i && m[i - 1].kind != M_OTHER &&
                   m[i - 1].kind != M_SEP) {
            m[i].kind = memchr(s, ':', l) && s[strspn(s, "0123456789")] == ':' ? M_MATCH : M_CONTEXT;
            m[i].file = (uint32_t)cur;
            m[i].path_len = 0;
            f[cur].last = (uint32_t)i;
        } else if (l && i + 1 < n && numbered(text + lines[i + 1].off, lines[i + 1].len) &&
                   !path_prefix(s, l, ':')) {
            m[i].kind = M_HEADING, path = s, plen = l; /* rg/ag heading: the file on its own line */
        } else {
            continue; /* other text ("Binary file … matches", blank lines) stays as it is */
        }
        if (path) {
            if (cur == SIZE_MAX || f[cur].path_len != plen || memcmp(f[cur].path, path, plen))
                cur = file_of(&ft, f, &nf, path, plen);
            if (cur == SIZE_MAX) {
                rc = -12;
                break;
            }
            f[cur].last = (uint32_t)i;
            m[i].file = (uint32_t)cur;
            m[i].path_len = (uint32_t)plen;
        }
        if (m[i].kind == M_MATCH) {
            docs[matches] = (struct hr_bm25_doc){s, l};
            order[matches++] = i;
            f[cur].matches++;
        }
    }
    if (rc == 0 && matches < 4)
        rc = 2; /* not search output, or too little of it */
    /* A heading group's matches are scored with their file's path in front,
     * as "path:LINE:text" lines are: the same search keeps the same matches
     * whichever way it was printed. */
    char *joined = NULL;
    size_t jlen = 0;
    for (size_t k = 0; rc == 0 && k < matches; k++)
        if (!m[order[k]].path_len)
            jlen += f[m[order[k]].file].path_len + 1 + m[order[k]].len;
    if (jlen && !(joined = malloc(jlen)))
        rc = -12;
    for (size_t k = 0, at = 0; rc == 0 && jlen && k < matches; k++) {
        const struct m *x = &m[order[k]];
        if (x->path_len)
            continue;
        const struct file *xf = &f[x->file];
        memcpy(joined + at, xf->path, xf->path_len);
        joined[at + xf->path_len] = ' ';
        memcpy(joined + at + xf->path_len + 1, x->s, x->len);
        docs[k] = (struct hr_bm25_doc){joined + at, xf->path_len + 1 + x->len};
        at += docs[k].len;
    }
    if (rc == 0 && hr_bm25(query, docs, matches, 0, score) < 0)
        rc = -12;
    free(joined);
    if (rc) {
        free(lines), free(m), free(f), free(docs), free(score), free(order), free(ft.slot);
        return rc;
    }
    /* every file's first match, and diagnostics */
    size_t kept = 0;
    for (size_t k = 0; k < matches; k++) {
        struct m *x = &m[order[k]];
        if (f[x->file].kept == 0 || diagnostic(x->s, x->len)) {
            x->keep = 1;
            f[x->file].kept++;
            kept++;
        }
    }
    /* then by relevance, best first (earlier wins ties), within the caps,
     * among the matches that score at least REL_FLOOR of the best one: a
     * line sharing only a common word of the question is not relevant */
    double top = 0;
    for (size_t k = 0; k < matches; k++)
        if (score[k] > top)
            top = score[k];
    size_t room = cfg->max_matches;
    for (size_t picked = 0; picked < room;) {
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < matches; k++) {
            struct m *x = &m[order[k]];
            if (x->keep || score[k] <= 0 || score[k] < REL_FLOOR * top || f[x->file].kept >= cfg->max_per_file + 1)
                continue;
            if (best == SIZE_MAX || score[k] > score[best])
                best = k;
        }
        if (best == SIZE_MAX)
            break;
        m[order[best]].keep = 1;
        f[m[order[best]].file].kept++;
        kept++, picked++;
    }
    size_t dropped_total = matches - kept;
    if (dropped_total == 0) {
        free(lines), free(m), free(f), free(docs), free(score), free(order), free(ft.slot);
        return 3;
    }
    /* a context line stays when it touches a kept match of its file */
    for (size_t i = 0; i < n; i++)
        if (m[i].kind == M_CONTEXT &&
            ((i && m[i - 1].keep == 1 && m[i - 1].file == m[i].file) ||
             (i + 1 < n && m[i + 1].keep == 1 && m[i + 1].file == m[i].file)))
            m[i].keep = 2;
    char what[160];
    snprintf(what, sizeof what, "search matches omitted in %zu files", nf);
    hr_text_marker(out, what, dropped_total, matches);
    /* kept lines in input order; after a file's last line, what it lost */
    uint32_t *dropped = calloc(nf ? nf : 1, sizeof *dropped);
    if (!dropped) {
        hr_text_out_free(out);
        free(lines), free(m), free(f), free(docs), free(score), free(order), free(ft.slot);
        return -12;
    }
    for (size_t i = 0; i < n; i++)
        dropped[m[i].file] += m[i].kind == M_MATCH && !m[i].keep;
    size_t shown = SIZE_MAX; /* file of the last line written */
    for (size_t i = 0; i < n; i++) {
        struct m *x = &m[i];
        int filed = x->kind == M_MATCH || x->kind == M_CONTEXT || x->kind == M_HEADING;
        if (x->keep || x->kind == M_HEADING || (x->kind == M_OTHER && x->len)) {
            hr_tbuf_put(&out->b, x->s, x->len);
            if (x->kind == M_HEADING && dropped[x->file]) {
                /* a heading group's count goes on its path line: one line less */
                hr_tbuf_putf(&out->b, " (%u more match%s)", dropped[x->file], dropped[x->file] > 1 ? "es" : "");
                dropped[x->file] = 0;
            }
            hr_tbuf_putc(&out->b, '\n');
            shown = filed ? x->file : SIZE_MAX;
        }
        if (!filed || f[x->file].last != i || !dropped[x->file])
            continue;
        /* the path only when the line above is another file's (interleaved output) */
        hr_tbuf_putf(&out->b, "\xe2\x80\xa6 %u more match%s", dropped[x->file], dropped[x->file] > 1 ? "es" : "");
        if (shown != x->file)
            hr_tbuf_putf(&out->b, " in %.*s", (int)f[x->file].path_len, f[x->file].path);
        hr_tbuf_putc(&out->b, '\n');
    }
    free(dropped);
    free(lines), free(m), free(f), free(docs), free(score), free(order), free(ft.slot);
    return 0;
}
