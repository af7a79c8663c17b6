/* sse.c — incremental text/event-stream parser (WHATWG "event stream
 * interpretation"), bounded in memory, fed with arbitrary chunk splits. */
#include "sse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sse_buf {
    char *p;
    size_t len, cap;
};

struct hr_sse_parser {
    hr_sse_event_fn fn;
    void *ud;
    size_t max;          /* bound on event.len + data.len + current line */
    int err;             /* sticky: once set, feed only returns it */
    int bom_done;        /* the leading-BOM question is settled */
    unsigned bom_seen;   /* BOM bytes matched so far while !bom_done */
    int pending_cr;      /* previous chunk ended in CR: a leading LF belongs to it */
    int in_comment;      /* dropping the rest of a line split across chunks (a comment, or skipped) */
    int skip_oversized;  /* an event over max is skipped, not the end of parsing */
    int skipping;        /* inside such an event: lines are dropped until the blank line */
    size_t skipped;      /* events skipped so far */
    struct sse_buf line; /* a line split across chunks (never a comment) */
    struct sse_buf data; /* data lines, each followed by '\n' as the spec builds it */
    /* The event's one data line so far, still in the chunk being parsed:
     * an event of one line (nearly every one) is handed out from there
     * without a copy. Copied into `data` (direct_flush) before anything
     * else reads the sizes, and before the chunk is gone. */
    const char *direct;
    size_t direct_len;
    int has_direct;
    struct sse_buf event;
};

static const char utf8_bom[3] = {'\xEF', '\xBB', '\xBF'};

/* Keeps one spare byte so the buffer can be handed out NUL-terminated. */
static int buf_reserve(struct sse_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap;
    char *np;

    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 128;
    while (cap < need)
        cap *= 2;
    np = realloc(b->p, cap);
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int buf_append(struct sse_buf *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void buf_release(struct sse_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int direct_flush(struct hr_sse_parser *p)
{
    if (!p->has_direct)
        return 0;
    p->has_direct = 0;
    int rc = buf_append(&p->data, p->direct, p->direct_len);
    return rc ? rc : buf_append(&p->data, "\n", 1);
}

static int dispatch(struct hr_sse_parser *p)
{
    if (p->has_direct) {
        p->has_direct = 0;
        p->fn(p->ud, p->event.len ? p->event.p : "message", p->event.len ? p->event.len : 7, p->direct,
              p->direct_len);
        p->event.len = 0;
        return 0;
    }
    /* The spec dispatches only when the data buffer is non-empty; a bare
     * `data` line makes it "\n", so an event with empty data still fires. */
    if (p->data.len == 0) {
        p->event.len = 0;
        return 0;
    }
    p->data.len--; /* the spec's "remove the last LF" */
    p->data.p[p->data.len] = '\0';
    if (p->event.len)
        p->fn(p->ud, p->event.p, p->event.len, p->data.p, p->data.len);
    else
        p->fn(p->ud, "message", 7, p->data.p, p->data.len);
    p->data.len = 0;
    p->event.len = 0;
    return 0;
}

/* An event outgrew max: end parsing, or (skip_oversized) drop that event
 * and carry on with the next, so usage sent after a huge event is read. */
static int start_skip(struct hr_sse_parser *p)
{
    if (!p->skip_oversized)
        return -E2BIG;
    p->skipping = 1;
    p->skipped++;
    p->data.len = p->event.len = p->line.len = 0;
    return 0;
}

/* One complete line, without its terminator. */
static int process_line(struct hr_sse_parser *p, const char *s, size_t n)
{
    const char *colon, *val;
    size_t flen, vlen;
    int rc;

    if (p->skipping) {
        if (n == 0)
            p->skipping = 0; /* the oversized event ended here; the next one parses */
        return 0;
    }
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return 0;
    if ((rc = direct_flush(p)) != 0)
        return rc;
    /* Same test as stash_partial() makes on the pieces of a split line, so
     * the outcome never depends on where chunks were cut. */
    if (n > p->max || p->data.len + p->event.len > p->max - n)
        return start_skip(p);

    colon = memchr(s, ':', n);
    if (colon) {
        flen = (size_t)(colon - s);
        val = colon + 1;
        vlen = n - flen - 1;
        if (vlen && *val == ' ') {
            val++;
            vlen--;
        }
    } else {
        flen = n;
        val = s + n;
        vlen = 0;
    }

    if (flen == 4 && memcmp(s, "data", 4) == 0) {
        if (p->data.len == 0 && p->line.len == 0) { /* the first line, and not a copy that is reused */
            p->direct = val;
            p->direct_len = vlen;
            p->has_direct = 1;
            return 0;
        }
        if ((rc = buf_append(&p->data, val, vlen)) != 0)
            return rc;
        return buf_append(&p->data, "\n", 1);
    }
    if (flen == 5 && memcmp(s, "event", 5) == 0) {
        p->event.len = 0;
        return buf_append(&p->event, val, vlen);
    }
    /* id, retry and unknown fields: nothing the proxy needs from them. */
    return 0;
}

/* Keep the start of a line whose end has not arrived yet. */
static int stash_partial(struct hr_sse_parser *p, const char *s, size_t n)
{
    size_t have;

    if (n == 0 || p->in_comment)
        return 0;
    if (p->skipping || (p->line.len == 0 && s[0] == ':')) {
        p->in_comment = 1; /* comments can be long (keep-alives, our own): never buffer them */
        return 0;
    }
    have = p->line.len + p->data.len + p->event.len;
    if (n > p->max || have > p->max - n) {
        int rc = start_skip(p);
        p->in_comment = rc == 0; /* the rest of this line goes too */
        return rc;
    }
    return buf_append(&p->line, s, n);
}

static int parse(struct hr_sse_parser *p, const char *s, size_t n)
{
    size_t i = 0, nl = 0, cr = 0, eol;
    int have_nl = 0, have_cr = 0, rc;
    const char *q;

    if (p->pending_cr && n) {
        p->pending_cr = 0;
        if (s[0] == '\n')
            i = 1;
    }
    while (i < n) {
        /* Remember where the next LF and CR are (n = none left) so a chunk is
         * scanned once per character class, whatever mix of endings it uses. */
        if (!have_nl || nl < i) {
            q = memchr(s + i, '\n', n - i);
            nl = q ? (size_t)(q - s) : n;
            have_nl = 1;
        }
        if (!have_cr || cr < i) {
            q = memchr(s + i, '\r', n - i);
            cr = q ? (size_t)(q - s) : n;
            have_cr = 1;
        }
        eol = nl < cr ? nl : cr;
        if (eol == n)
            break;

        if (p->in_comment) {
            p->in_comment = 0;
            rc = 0;
        } else if (p->line.len) {
            rc = stash_partial(p, s + i, eol - i);
            if (rc == 0 && !p->in_comment)
                rc = process_line(p, p->line.p, p->line.len);
            p->in_comment = 0; /* the line ends here either way */
            p->line.len = 0;
        } else {
            rc = process_line(p, s + i, eol - i);
        }
        if (rc)
            return rc;

        i = eol + 1;
        if (s[eol] == '\r') {
            if (i == n)
                p->pending_cr = 1;
            else if (s[i] == '\n')
                i++;
        }
    }
    /* The chunk goes away: an event still open keeps its own copy. */
    if ((rc = direct_flush(p)) != 0)
        return rc;
    return i < n ? stash_partial(p, s + i, n - i) : 0;
}

struct hr_sse_parser *hr_sse_parser_new(hr_sse_event_fn fn, void *ud, size_t max_event_bytes)
{
    struct hr_sse_parser *p;

    if (!fn)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->fn = fn;
    p->ud = ud;
    p->max = max_event_bytes ? max_event_bytes : HR_SSE_DEFAULT_MAX_EVENT;
    return p;
}

void hr_sse_skip_oversized(struct hr_sse_parser *p, int on) { p->skip_oversized = on; }
size_t hr_sse_skipped(const struct hr_sse_parser *p) { return p->skipped; }

int hr_sse_feed(struct hr_sse_parser *p, const char *buf, size_t len)
{
    int rc;

    if (p->err)
        return p->err;
    if (!p->bom_done) {
        /* The BOM itself may arrive split across chunks. */
        while (len && p->bom_seen < 3 && *buf == utf8_bom[p->bom_seen]) {
            p->bom_seen++;
            buf++;
            len--;
        }
        if (p->bom_seen < 3 && len == 0)
            return 0; /* still undecided */
        p->bom_done = 1;
        if (p->bom_seen < 3 && p->bom_seen > 0) {
            /* Not a BOM after all: those bytes start the first line. */
            rc = parse(p, utf8_bom, p->bom_seen);
            if (rc)
                goto fail;
        }
    }
    rc = parse(p, buf, len);
    if (rc)
        goto fail;
    return 0;
fail:
    /* Parsing is over for this stream; give the memory back now rather than
     * when the (possibly long) relay finishes. */
    p->err = rc;
    buf_release(&p->line);
    buf_release(&p->data);
    buf_release(&p->event);
    return rc;
}

void hr_sse_parser_free(struct hr_sse_parser *p)
{
    if (!p)
        return;
    buf_release(&p->line);
    buf_release(&p->data);
    buf_release(&p->event);
    free(p);
}
