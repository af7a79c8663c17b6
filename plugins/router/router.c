/* router.c — the `router` transform: detects each candidate unit's content type
 * (exact for JSON, a bounded line sample otherwise), writes it into the unit, tags
 * the stage and keeps per-type counters for /stats. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "cc_diag.h"
#include "json_scan.h"
#include "memo.h"

/* Types of outputs at least this long are remembered by content: an agent
 * resends them every turn, and a JSON scan of a big one costs ~1 ms/MB. */
#define MEMO_MIN_BYTES 4096
#define MEMO_BYTES (1u << 20)

static const char *const ct_names[HR_CT__COUNT] = {
    "unknown", "json_array", "json_object", "log", "search", "diff", "code", "html", "text",
};

struct router {
    const struct hr_host *host;
    struct hr_instance *self;
    size_t sample_bytes;
    size_t sample_lines;
    atomic_ullong counts[HR_CT__COUNT];
    struct hr_memo *memo; /* content type by content; NULL before ABI 1.1 */
};

static const struct hr_conf_key router_keys[] = {
    HR_CONF_KEY_RANGE("sample_bytes", HR_CONF_INT, "8192", "bytes of a non-JSON unit looked at to guess its type", 64, 16777216),
    HR_CONF_KEY_RANGE("sample_lines", HR_CONF_INT, "64", "lines of that sample looked at", 1, 100000),
    HR_CONF_END,
};

static int starts(const char *s, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && memcmp(s, p, l) == 0;
}

static int starts_ci(const char *s, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && strncasecmp(s, p, l) == 0;
}

/* `path:123:` or `path:123-` at line start (grep -n, rg, ag, git grep; `path:12:5:`
 * with columns), or grep -C's context line `path-123-`. A path has a '.' or '/'
 * (a timestamp such as "2024-06-01T10:00" has neither), or is a plain name such as
 * "Makefile" with a letter in it and no '-'. */
static int search_line(const char *s, size_t n)
{
    size_t i = 0;
    int pathy = 0, letter = 0, dash = 0;
    while (i < n && s[i] != ':' && !isspace((unsigned char)s[i])) {
        pathy |= s[i] == '.' || s[i] == '/';
        letter |= isalpha((unsigned char)s[i]) != 0;
        dash |= s[i] == '-';
        i++;
    }
    if (i > 0 && i < n && s[i] == ':' && (pathy || (letter && !dash))) {
        size_t d = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i > d && i < n && (s[i] == ':' || s[i] == '-'))
            return 1;
    }
    /* Context line: a "-123-" in the first word, after a path. */
    size_t w = 0;
    while (w < n && !isspace((unsigned char)s[w]))
        w++;
    for (size_t e = w; e > 0; e--) {
        if (s[e - 1] != '-' || e < 3)
            continue;
        size_t d = e - 1;
        while (d > 0 && isdigit((unsigned char)s[d - 1]))
            d--;
        if (d < e - 1 && d > 1 && s[d - 1] == '-' && (memchr(s, '.', d - 1) || memchr(s, '/', d - 1)))
            return 1;
    }
    return 0;
}

/* Under a file-name heading (rg --heading, ag --group, git grep --heading): `123:`,
 * `123-` (context) or `123:45:` (column). */
static int numbered_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    return i > 0 && i < n && (s[i] == ':' || s[i] == '-');
}

/* A file-name heading: one word with a '.' or '/', no ':'. */
static int heading_line(const char *s, size_t n)
{
    int pathy = 0;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)s[i]) || s[i] == ':')
            return 0;
        pathy |= s[i] == '.' || s[i] == '/';
    }
    return pathy && n < 512;
}

static int level_word(const char *s, size_t n)
{
    static const char *const lv[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE", "FATAL",
                                     "CRITICAL", "NOTICE", NULL};
    for (size_t i = 0; i < n; i++) {
        if (i && isalpha((unsigned char)s[i - 1]))
            continue;
        for (const char *const *w = lv; *w; w++)
            if (starts(s + i, n - i, *w) &&
                (i + strlen(*w) == n || !isalpha((unsigned char)s[i + strlen(*w)])))
                return 1;
    }
    return 0;
}

/* A date or a clock time near the start of the line. */
static int timestamp_prefix(const char *s, size_t n)
{
    size_t lim = n < 32 ? n : 32;
    for (size_t i = 0; i + 5 <= lim; i++) {
        const unsigned char *p = (const unsigned char *)s + i;
        if (i + 10 <= n && isdigit(p[0]) && isdigit(p[1]) && isdigit(p[2]) && isdigit(p[3]) &&
            (p[4] == '-' || p[4] == '/') && isdigit(p[5]) && isdigit(p[6]))
            return 1;
        if (isdigit(p[0]) && isdigit(p[1]) && p[2] == ':' && isdigit(p[3]) && isdigit(p[4]))
            return 1;
    }
    return 0;
}

/* Compiler, linker and make output: gcc/clang diagnostics "path:12:5: error: …"
 * (warning, note, fatal error; "path:12: …" too), gcc's context lines
 * "path: In function 'f':", "path: At top level:", "In file included from …" and
 * the "                 from …" lines under it, rustc's "error[E0425]: …", make's
 * "make: *** …", "make[2]: …" and "Makefile:3: *** …", and ld, collect2, cc1. */
static int diag_line(const char *s, size_t n)
{
    static const char *const what[] = {"error:", "warning:", "note:", "fatal error:", "*** ", "In function ",
        "In member function ", "In static member function ", "In constructor ", "In destructor ",
        "In lambda function", "In instantiation of ", "At top level:", "At global scope:", NULL};
    static const char *const tools[] = {"make", "gmake", "ninja", "ld", "collect2", "cc1", "cc1plus", "gcc", "g++",
                                        "cc", "clang", NULL};
    if (starts(s, n, "In file included from ") || starts(s, n, "error[E") || starts(s, n, "error: ") ||
        starts(s, n, "warning: "))
        return 1;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= 8 && starts(s + i, n - i, "from ")) { /* "                 from x.h:3," */
        const char *c = memchr(s + i, ':', n - i);
        return c && c + 1 < s + n && isdigit((unsigned char)c[1]);
    }
    if (i)
        return 0;
    int pathy = 0;
    while (i < n && s[i] != ':' && !isspace((unsigned char)s[i])) {
        pathy |= s[i] == '.' || s[i] == '/';
        i++;
    }
    if (i == 0 || i >= n || s[i] != ':')
        return 0;
    size_t w = i; /* the first word, s[0..w) */
    for (const char *const *t = tools; *t; t++) { /* "make: ", "make[1]: ", "/usr/bin/ld: " */
        size_t l = strlen(*t);
        if (w >= l && !memcmp(s + w - l, *t, l) && (w == l || s[w - l - 1] == '/'))
            return 1;
        if (w > l + 2 && !memcmp(s, *t, l) && s[l] == '[' && s[w - 1] == ']')
            return 1;
    }
    if (!pathy && !starts(s, w, "Makefile") && !starts(s, w, "makefile") && !starts(s, w, "<command-line>"))
        return 0;
    i++;
    for (int k = 0; k < 2 && i < n && isdigit((unsigned char)s[i]); k++) { /* ":12:", ":12:5:" */
        size_t d = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i >= n || s[i] != ':') {
            i = d;
            break;
        }
        i++;
    }
    if (i >= n || s[i] != ' ')
        return 0;
    i++;
    for (const char *const *t = what; *t; t++)
        if (starts(s + i, n - i, *t))
            return 1;
    return 0;
}

/* One record of a JSON-lines log: a line that is a JSON object ({"…":…})
 * with a level or time key (Caddy, Traefik, nginx log_format json, pino,
 * zap, logrus, slog, bunyan, Docker's json-file, ECS, Serilog's CLEF).
 * Such a line ends in '}' (a code line) and may hold "path-12-" in a date
 * (a grep context line): a JSON-lines log typed as code or search went
 * upstream whole. JSON rows without such a key (jq -c of data) are not
 * read as log lines. */
static int json_log_line(const char *s, size_t n)
{
    static const char *const keys[] = {"\"level\":", "\"severity\":", "\"lvl\":", "\"log.level\":",
        "\"levelname\":", "\"loglevel\":", "\"ts\":", "\"@timestamp\":", "\"@t\":", "\"time", "\"timestamp\":",
        "\"datetime\":", NULL};
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n < 8 || s[0] != '{' || s[1] != '"' || s[n - 1] != '}')
        return 0;
    for (const char *const *k = keys; *k; k++) {
        size_t kl = strlen(*k);
        for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), *k, kl)); p++) {
            if (p[kl - 1] == ':')
                return 1;
            /* "time…": a key that begins so ("time", "time_local", "timeMillis"),
             * not a value ("timeout") */
            size_t i = (size_t)(p - s) + kl, end = i + 24;
            while (i < n && i < end && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            if (i + 1 < n && s[i] == '"' && s[i + 1] == ':')
                return 1;
        }
    }
    return 0;
}

static int code_line(const char *s, size_t n)
{
    static const char *const kw[] = {"def ", "class ", "import ", "from ", "#include", "function ",
        "fn ", "pub ", "return", "const ", "let ", "var ", "package ", "func ", "public ",
        "private ", "static ", "if (", "for (", "while (", "} else", "#define", "using ", NULL};
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (!n)
        return 0;
    for (const char *const *k = kw; *k; k++)
        if (starts(s, n, *k))
            return 1;
    char last = s[n - 1];
    return last == '{' || last == '}' || last == ';' || (last == ':' && n > 1 && s[0] != '#') ||
           starts(s, n, "//") || starts(s, n, "/*");
}

static enum hr_content_type sniff_text(const struct router *r, const char *text, size_t len)
{
    size_t lim = len < r->sample_bytes ? len : r->sample_bytes;
    size_t lines = 0, blank = 0, diff_hdr = 0, hunk = 0, search = 0, log = 0, code = 0, tag = 0, diag = 0;
    int in_group = 0, prev_heading = 0, prev_search = 0; /* heading-grouped search output */
    int in_diag = 0; /* after a compiler diagnostic: its source echo and caret lines */
    while (lim && isspace((unsigned char)*text))
        text++, lim--, len--;
    if (starts_ci(text, lim, "<!doctype html") || starts_ci(text, lim, "<html"))
        return HR_CT_HTML;
    if (starts(text, lim, "diff --git ") || starts(text, lim, "--- a/") || starts(text, lim, "Index: "))
        diff_hdr++;
    for (size_t i = 0; i < lim && lines < r->sample_lines;) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', lim - i);
        size_t n = nl ? (size_t)(nl - s) : lim - i;
        i += n + 1;
        if (!nl && i < len && lines > 0)
            break; /* a cut line at the end of the sample says little */
        lines++;
        if (n == 0 || (n == 1 && s[0] == '\r')) {
            blank++;
            in_group = prev_heading = in_diag = 0;
            continue;
        }
        /* Build output: a log line, neither search output (gcc's "x.c:3:5:") nor
         * code (its source echoes end in ';' or '}', "In function 'f':" in ':'). */
        size_t dn = s[n - 1] == '\r' ? n - 1 : n;
        if (diag_line(s, dn) || (in_diag && hr_cc_echo_line(s, dn))) {
            diag++;
            in_diag = 1;
            in_group = prev_heading = prev_search = 0;
            continue;
        }
        in_diag = 0;
        if (json_log_line(s, n)) {
            log++;
            in_group = prev_heading = prev_search = 0;
            continue;
        }
        size_t before_search = search;
        if (starts(s, n, "diff --git ") || starts(s, n, "+++ ") || starts(s, n, "--- "))
            diff_hdr++;
        else if (starts(s, n, "@@ ") && memmem(s + 3, n - 3, " @@", 3))
            hunk++;
        if (search_line(s, n)) {
            search++;
        } else if (numbered_line(s, n) && (in_group || prev_heading)) {
            search += 1 + prev_heading; /* the heading above it counts too */
            in_group = 1;
        } else if (n == 2 && s[0] == '-' && s[1] == '-') {
            search += in_group || prev_search; /* context-group separator */
        } else {
            in_group = 0;
        }
        prev_search = search > before_search;
        prev_heading = heading_line(s, n);
        if (timestamp_prefix(s, n) || level_word(s, n < 40 ? n : 40))
            log++;
        if (code_line(s, n))
            code++;
        if (s[0] == '<' && n > 1 && (isalpha((unsigned char)s[1]) || s[1] == '/' || s[1] == '!'))
            tag++;
    }
    size_t used = lines - blank;
    if (used == 0)
        return HR_CT_TEXT;
    if (hunk && diff_hdr)
        return HR_CT_DIFF;
    if (search * 2 >= used)
        return HR_CT_SEARCH;
    if (tag * 2 >= used && memmem(text, lim, "</", 2))
        return HR_CT_HTML;
    if ((log + diag) * 2 >= used || (diag >= 2 && diag >= code && diag * 10 >= used * 3))
        return HR_CT_LOG; /* compiler output among commands, before the code bar */
    if (code >= 2 && code * 10 >= used * 3)
        return HR_CT_CODE;
    return HR_CT_TEXT;
}

/* Detect one text's type; exported for tests through the plugin only. JSON is
 * validated as jansson's json_loadb would (duplicate keys allowed) without building
 * a tree; out of memory (wide objects only) counts as not JSON, as a failed load did. */
static enum hr_content_type detect(const struct router *r, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i < len && (text[i] == '[' || text[i] == '{')) {
        struct hr_json_info info;
        if (hr_json_scan(text, len, 0, &info, NULL) == 0)
            return info.root == '[' ? HR_CT_JSON_ARRAY : HR_CT_JSON_OBJECT;
    }
    return sniff_text(r, text, len);
}

static json_t *router_stats(void *state)
{
    struct router *r = state;
    json_t *types = json_object();
    for (int t = HR_CT_JSON_ARRAY; t < HR_CT__COUNT; t++)
        json_object_set_new(types, ct_names[t], json_integer((json_int_t)atomic_load(&r->counts[t])));
    return json_pack("{s:o}", "content_types", types);
}

static void router_fini(void *state)
{
    struct router *r = state;
    hr_memo_free(r->memo);
    free(r);
}

static int router_init(const struct hr_host *host, struct hr_instance *self,
                       const struct hr_conf *conf, void **state)
{
    long long sb = host->conf_int(conf, "sample_bytes"), sl = host->conf_int(conf, "sample_lines");
    if (sb < 64 || sb > (1 << 24) || sl < 1 || sl > 100000) {
        host->log(self, HR_LOG_ERROR,
                  "bad config: sample_bytes must be 64..16777216 (got %lld), sample_lines 1..100000 (got %lld)",
                  sb, sl);
        return HR_EINVAL;
    }
    struct router *r = calloc(1, sizeof *r);
    if (!r)
        return HR_ENOMEM;
    r->host = host;
    r->self = self;
    r->sample_bytes = (size_t)sb;
    r->sample_lines = (size_t)sl;
    for (int t = 0; t < HR_CT__COUNT; t++)
        atomic_init(&r->counts[t], 0);
    if (HR_HAS_FIELD(host, struct hr_host, parallel_for))
        r->memo = hr_memo_new(MEMO_BYTES);
    int rc = host->register_stats(self, "router", router_stats, r);
    if (rc != HR_OK) {
        router_fini(r);
        return rc;
    }
    *state = r;
    return HR_OK;
}

struct detect_job {
    const struct router *r;
    struct hr_unit *units;
    struct hr_memo_key *keys; /* len 0: not remembered */
};

static void detect_one(void *ctx, size_t i)
{
    struct detect_job *j = ctx;
    struct hr_unit *u = &j->units[i];
    size_t len;
    unsigned char *known = j->keys[i].len ? hr_memo_get(j->r->memo, &j->keys[i], &len) : NULL;
    if (known && len == 1 && *known < HR_CT__COUNT) {
        u->type = (enum hr_content_type)*known;
    } else {
        u->type = detect(j->r, u->text, u->len);
        unsigned char t = (unsigned char)u->type;
        if (j->keys[i].len)
            hr_memo_put(j->r->memo, &j->keys[i], &t, 1);
    }
    free(known);
}

static int router_apply(void *state, struct hr_request *req)
{
    struct router *r = state;
    if (!req->n_units)
        return HR_OK; /* no tool output: nothing to classify, count or tag */
    size_t seen[HR_CT__COUNT] = {0};
    struct detect_job job = {r, req->units, calloc(req->n_units ? req->n_units : 1, sizeof *job.keys)};
    if (!job.keys)
        return HR_ENOMEM;
    for (size_t i = 0; r->memo && i < req->n_units; i++)
        if (req->units[i].len >= MEMO_MIN_BYTES) {
            r->host->unit_hash(req, i, job.keys[i].hash);
            job.keys[i].len = req->units[i].len;
        }
    if (r->memo)
        r->host->parallel_for(req->n_units, detect_one, &job);
    else
        for (size_t i = 0; i < req->n_units; i++)
            detect_one(&job, i);
    free(job.keys);
    for (size_t i = 0; i < req->n_units; i++) {
        enum hr_content_type t = req->units[i].type;
        seen[t]++;
        atomic_fetch_add_explicit(&r->counts[t], 1, memory_order_relaxed);
    }
    char tag[256];
    size_t l = (size_t)snprintf(tag, sizeof tag, "router:");
    int any = 0;
    for (int t = HR_CT_JSON_ARRAY; t < HR_CT__COUNT; t++) {
        if (!seen[t])
            continue;
        int w = snprintf(tag + l, sizeof tag - l, "%s%s=%zu", any ? "," : "", ct_names[t], seen[t]);
        if (w < 0 || (size_t)w >= sizeof tag - l)
            break;
        l += (size_t)w;
        any = 1;
    }
    if (any)
        r->host->stage_tag(req, tag);
    return HR_OK;
}

/* POST /stats/reset: the per-type counts and the result-cache counters. */
static void router_reset(void *state)
{
    struct router *r = state;
    for (int t = 0; t < HR_CT__COUNT; t++)
        atomic_store(&r->counts[t], 0);
    hr_memo_reset_counters(r->memo);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "router",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "detects the content type of each tool output (json, log, search, diff, code, html, text)",
    .conf_keys = router_keys,
    .init = router_init,
    .fini = router_fini,
    .apply = router_apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = 0,
    .reset = router_reset,
};
