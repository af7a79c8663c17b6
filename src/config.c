/* config.c — the core directives of headroom.conf, their defaults, the
 * HEADROOM_* environment overrides, and value parsing shared with the flags. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "log.h"

enum dtype { D_STRING, D_URL, D_INT, D_SIZE, D_BOOL, D_DOUBLE, D_LOG_LEVEL, D_WORKERS, D_LIST, D_TELEMETRY, D_CHOICE };

struct directive {
    const char *name;
    enum dtype type;
    size_t offset;
    long long min, max;
    const char *env;      /* HEADROOM_* override, or NULL */
    const char *help;
};

#define OFF(f) offsetof(struct hr_config, f)
static const struct directive directives[] = {
    {"host", D_STRING, OFF(host), 0, 0, "HEADROOM_HOST", "address to listen on (default 127.0.0.1)"},
    {"port", D_INT, OFF(port), 0, 65535, "HEADROOM_PORT", "TCP port (default 8787; 0 picks a free port)"},
    {"workers", D_WORKERS, OFF(workers), 1, 256, "HEADROOM_WORKERS", "worker threads: a number or auto (one per core)"},
    {"compress_threads", D_WORKERS, OFF(compress_threads), 1, 256, "HEADROOM_COMPRESS_THREADS", "threads sharing one large request's compression, its worker included: a number (1 = the worker alone) or auto (one per core)"},
    {"openai_api_url", D_URL, OFF(openai_url), 0, 0, "HEADROOM_OPENAI_API_URL", "OpenAI base URL (default https://api.openai.com)"},
    {"anthropic_api_url", D_URL, OFF(anthropic_url), 0, 0, "HEADROOM_ANTHROPIC_API_URL", "Anthropic base URL (default https://api.anthropic.com)"},
    {"chatgpt_api_url", D_URL, OFF(chatgpt_url), 0, 0, "HEADROOM_CHATGPT_API_URL", "where requests carrying ChatGPT-Account-ID go: Codex CLI signed in with a ChatGPT plan (default https://chatgpt.com/backend-api/codex)"},
    {"plugin_dir", D_STRING, OFF(plugin_dir), 0, 0, "HEADROOM_PLUGIN_DIR", "directory holding plugin .so files"},
    {"log_level", D_LOG_LEVEL, OFF(log_level), 0, 0, "HEADROOM_LOG_LEVEL", "error, warn, info or debug (default info)"},
    {"log_file", D_STRING, OFF(log_file), 0, 0, "HEADROOM_LOG_FILE", "JSONL request log written by the request_log sink"},
    {"log_messages", D_BOOL, OFF(log_messages), 0, 0, NULL, "include message bodies in the request log (default no)"},
    {"optimize", D_BOOL, OFF(no_optimize), 0, 0, NULL, "run the transforms (default yes; no = passthrough)"},
    {"balance_connections", D_BOOL, OFF(balance_connections), 0, 0, NULL, "a worker hands a connection it accepts to a worker with fewer open (default no: the kernel's SO_REUSEPORT hash alone spreads them)"},
    {"cut_through", D_BOOL, OFF(no_cut_through), 0, 0, NULL, "forward a body nothing reads (optimize no, non-LLM routes) while it arrives (default yes)"},
    {"websocket", D_BOOL, OFF(no_websocket), 0, 0, NULL, "relay the Responses API's WebSocket mode (GET /v1/responses with Upgrade: websocket), compressing each response.create (default yes; no answers 501)"},
    {"admin_token", D_STRING, OFF(admin_token), 0, 0, "HEADROOM_ADMIN_TOKEN", "token allowing admin endpoints from non-loopback clients"},
    {"api_token", D_STRING, OFF(api_token), 0, 0, "HEADROOM_API_TOKEN", "when set, POST /v1/compress and /v1/retrieve need Authorization: Bearer <token>"},
    {"metrics_token", D_STRING, OFF(metrics_token), 0, 0, "HEADROOM_METRICS_TOKEN", "when set, the Prometheus route (/metrics) needs Authorization: Bearer <token>"},
    {"stats_token", D_STRING, OFF(stats_token), 0, 0, "HEADROOM_STATS_TOKEN", "when set, /stats, /stats-history and /dashboard need Authorization: Bearer <token>"},
    {"allowed_hosts", D_STRING, OFF(allowed_hosts), 0, 0, "HEADROOM_ALLOWED_HOSTS", "Host header names accepted besides localhost and IP addresses (space or comma separated; * = any); others get 403 (DNS rebinding)"},
    {"shutdown_timeout", D_INT, OFF(shutdown_timeout_s), 0, 86400, NULL, "seconds in-flight requests and streams may take to finish after SIGTERM/SIGINT (default 30)"},
    {"max_body_size", D_SIZE, OFF(max_body_bytes), 1024, 1LL << 32, NULL, "largest request body accepted (default 32m)"},
    {"max_header_size", D_SIZE, OFF(max_header_bytes), 1024, 1 << 24, NULL, "largest request header block (default 64k)"},
    {"max_response_size", D_SIZE, OFF(max_response_bytes), 1024, 1LL << 34, NULL, "largest non-streamed upstream answer (default 64m)"},
    {"max_connections", D_INT, OFF(max_connections), 1, 1000000, NULL, "proxied requests in flight per worker, then 503 (default 1024)"},
    {"client_timeout", D_INT, OFF(client_timeout_s), 1, 86400, NULL, "seconds a client may take to send a request (default 60)"},
    {"upstream_connect_timeout_ms", D_INT, OFF(upstream_connect_timeout_ms), 1, 600000, NULL, "upstream connect timeout (default 10000)"},
    {"upstream_timeout", D_INT, OFF(upstream_timeout_s), 1, 86400, NULL, "seconds an upstream answer may take in all (default 600)"},
    {"upstream_keepalive", D_INT, OFF(upstream_keepalive), 1, 10000, NULL, "idle upstream connections kept open per worker (default 32)"},
    {"upstream_idle_timeout", D_INT, OFF(upstream_idle_timeout_s), 1, 3600, NULL, "seconds an idle upstream connection is kept (default 60)"},
    {"upstream_client", D_CHOICE, OFF(upstream_client), 0, 0, "HEADROOM_UPSTREAM_CLIENT", "auto, native or curl: the HTTP client for upstream requests (default auto: native, libcurl when an HTTP proxy is set in the environment)"},
    {"stage_budget_ms", D_INT, OFF(stage_budget_ms), 1, 60000, NULL, "a transform stage slower than this is undone (default 250)"},
    {"min_tokens", D_INT, OFF(min_tokens), 0, 1 << 30, NULL, "tool outputs under this many tokens are left alone (default 200)"},
    {"protect_recent", D_INT, OFF(protect_recent), 0, 1000, NULL, "last N outputs of protected tools are left alone (default 2)"},
    {"protected_tools", D_LIST, OFF(protected_tools), 0, 0, NULL, "tool names whose recent outputs are protected"},
    {"sink_queue_size", D_INT, OFF(sink_queue_size), 1, 1 << 22, NULL, "events buffered per sink before drops are counted (default 4096)"},
    {"ccr_max_size", D_SIZE, OFF(ccr_max_bytes), 0, 1LL << 36, NULL, "bytes of dropped originals kept for retrieval (default 12m)"},
    {"ccr_ttl", D_INT, OFF(ccr_ttl_s), 1, 86400 * 30, NULL, "seconds dropped originals stay retrievable (default 3600)"},
    {"budget", D_DOUBLE, OFF(budget_usd), 0, 0, "HEADROOM_BUDGET", "spend limit in USD per budget_period; over it POSTs to model routes get 429 (default 0 = none)"},
    {"budget_period", D_CHOICE, OFF(budget_period), 0, 0, "HEADROOM_BUDGET_PERIOD", "hourly, daily, weekly (from Monday) or monthly, UTC (default daily)"},
    {"prices", D_STRING, OFF(prices_file), 0, 0, "HEADROOM_PRICES", "model price table (JSON) replacing the installed prices.json"},
    {"telemetry", D_TELEMETRY, OFF(telemetry), 0, 0, "HEADROOM_TELEMETRY", "anonymous usage beacon (beacon sink, doc/telemetry.md): on or off (default off; off here, in the variable or --no-telemetry wins)"},
    {"cache", D_BOOL, OFF(no_cache), 0, 0, NULL, "response cache for non-streaming 200s (default off; on when cache_ttl is set; no forces it off)"},
    {"cache_max_entries", D_INT, OFF(cache_max_entries), 1, 1 << 24, NULL, "answers the response cache keeps (default 1000)"},
    {"cache_max_size", D_SIZE, OFF(cache_max_bytes), 1024, 1LL << 36, NULL, "bytes of answers the response cache keeps (default 64m)"},
    {"cache_ttl", D_INT, OFF(cache_ttl_s), 1, 86400 * 30, NULL, "seconds a cached answer is reused; setting it turns the cache on (default 300)"},
    {"rate_limit", D_BOOL, OFF(no_rate_limit), 0, 0, NULL, "rate limiting (default yes once rate_limit_rpm/tpm is set; no forces it off)"},
    {"rate_limit_rpm", D_INT, OFF(rate_limit_rpm), 0, 1 << 30, NULL, "requests per minute per API key, then 429 (default 0 = no limit)"},
    {"rate_limit_tpm", D_INT, OFF(rate_limit_tpm), 0, 1 << 30, NULL, "input tokens (after compression) per minute per API key (default 0 = no limit)"},
};
#undef OFF
#define N_DIRECTIVES (sizeof directives / sizeof *directives)

/* Booleans stored inverted ("optimize no" sets no_optimize). */
static int inverted(const struct directive *d)
{
    return !strcmp(d->name, "optimize") || !strcmp(d->name, "cache") || !strcmp(d->name, "rate_limit") ||
           !strcmp(d->name, "cut_through") || !strcmp(d->name, "websocket");
}

/* The words a D_CHOICE directive accepts, NULL-terminated (none for a
 * directive this table does not know: every value is then refused). */
static const char *const *choices(const struct directive *d)
{
    static const char *const upstream_clients[] = {"auto", "native", "curl", NULL};
    static const char *const budget_periods[] = {"hourly", "daily", "weekly", "monthly", NULL};
    static const char *const none[] = {NULL};
    if (!strcmp(d->name, "upstream_client")) return upstream_clients;
    if (!strcmp(d->name, "budget_period")) return budget_periods;
    return none;
}

void hr_config_defaults(struct hr_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    c->port = 8787;
    c->workers = 0;
    c->openai_url = strdup("https://api.openai.com");
    c->anthropic_url = strdup("https://api.anthropic.com");
    c->chatgpt_url = strdup("https://chatgpt.com/backend-api/codex");
    c->log_level = HR_LOG_INFO;
    c->max_body_bytes = 32u << 20;
    c->max_header_bytes = 64u << 10;
    c->max_response_bytes = 64u << 20;
    c->max_connections = 1024;
    c->client_timeout_s = 60;
    c->shutdown_timeout_s = 30;
    c->upstream_connect_timeout_ms = 10000;
    c->upstream_timeout_s = 600;
    c->upstream_keepalive = 32;
    c->upstream_idle_timeout_s = 60;
    c->stage_budget_ms = 250;
    c->min_tokens = 200;
    c->protect_recent = 2;
    c->sink_queue_size = 4096;
    c->ccr_max_bytes = 12u << 20; /* with the result caches, an idle daemon stays under ~64 MB (bench/memory) */
    c->ccr_ttl_s = 3600;
    c->telemetry = -1;
    c->no_cache = -1;
    c->cache_max_entries = 1000;
    c->cache_max_bytes = 64u << 20;
    c->backend_prefix = strdup("headroom:");
    c->backend_timeout_ms = 50;
}

int hr_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s) return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return -EINVAL;
    *out = v;
    return 0;
}

int hr_parse_size(const char *s, size_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: return -EINVAL;
        }
        if (end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2]) &&
            !(tolower((unsigned char)end[1]) == 'i' && tolower((unsigned char)end[2]) == 'b' && !end[3]))
            return -EINVAL;
    }
    if (errno || v > (ULLONG_MAX >> shift)) return -EINVAL;
    *out = (size_t)(v << shift);
    return 0;
}

int hr_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"yes", "on", "true", "1"}, *no[] = {"no", "off", "false", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(s, no[i])) { *out = 0; return 0; }
    }
    return -EINVAL;
}

int hr_parse_url(const char *s, char **normalised, char *why, size_t whylen)
{
    const char *rest;
    if (!strncasecmp(s, "http://", 7)) rest = s + 7;
    else if (!strncasecmp(s, "https://", 8)) rest = s + 8;
    else {
        snprintf(why, whylen, "'%s' is not an http:// or https:// URL", s);
        return -EINVAL;
    }
    if (!*rest || *rest == '/' || strpbrk(s, " \t\r\n?#")) {
        snprintf(why, whylen, "'%s' needs a host and no spaces, query or fragment", s);
        return -EINVAL;
    }
    char *u = strdup(s);
    size_t n = strlen(u);
    while (n && u[n - 1] == '/') u[--n] = '\0';
    /* Paths are forwarded as /v1/...: accept a base given with /v1 too. */
    if (n >= 3 && !strcmp(u + n - 3, "/v1")) u[n - 3] = '\0';
    *normalised = u;
    return 0;
}

/* "'x' must be a, b or c" */
static void say_choices(const char *const *choices, const char *value, char *why, size_t whylen)
{
    size_t n = 0, k;
    while (choices[n]) n++;
    k = (size_t)snprintf(why, whylen, "'%s' must be ", value);
    for (size_t i = 0; i < n && k < whylen; i++)
        k += (size_t)snprintf(why + k, whylen - k, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", choices[i]);
}

/* Store `value` into c according to d. `why` explains a bad value. */
static int set_value(struct hr_config *c, const struct directive *d, const char *value, char *why, size_t whylen)
{
    void *field = (char *)c + d->offset;
    long long iv;
    size_t sz;
    int b;
    switch (d->type) {
    case D_STRING:
        free(*(char **)field);
        *(char **)field = strdup(value);
        return 0;
    case D_CHOICE:
        for (const char *const *w = choices(d); *w; w++) {
            if (strcmp(value, *w)) continue;
            free(*(char **)field);
            *(char **)field = strdup(value);
            return 0;
        }
        say_choices(choices(d), value, why, whylen);
        return -EINVAL;
    case D_URL: {
        char *u;
        if (hr_parse_url(value, &u, why, whylen)) return -EINVAL;
        free(*(char **)field);
        *(char **)field = u;
        return 0;
    }
    case D_INT:
        if (hr_parse_int(value, d->min, d->max, &iv)) {
            /* with what the number is (seconds? a count?), as a plugin key's bounds say */
            snprintf(why, whylen, "'%s' must be a whole number from %lld to %lld (%s)", value, d->min, d->max, d->help);
            return -EINVAL;
        }
        *(int *)field = (int)iv;
        return 0;
    case D_WORKERS:
        if (!strcasecmp(value, "auto")) { *(int *)field = 0; return 0; }
        if (hr_parse_int(value, d->min, d->max, &iv)) {
            snprintf(why, whylen, "'%s' must be auto or a number from %lld to %lld", value, d->min, d->max);
            return -EINVAL;
        }
        *(int *)field = (int)iv;
        return 0;
    case D_SIZE:
        if (hr_parse_size(value, &sz) || (long long)sz < d->min || (unsigned long long)sz > (unsigned long long)d->max) {
            snprintf(why, whylen, "'%s' must be a size like 64k, 32m or 1g, at least %lld bytes", value, d->min);
            return -EINVAL;
        }
        *(size_t *)field = sz;
        return 0;
    case D_BOOL:
        if (hr_parse_bool(value, &b)) {
            snprintf(why, whylen, "'%s' must be yes or no", value);
            return -EINVAL;
        }
        *(int *)field = inverted(d) ? !b : b;
        return 0;
    case D_TELEMETRY:
        if (hr_parse_bool(value, &b)) {
            snprintf(why, whylen, "'%s' must be on or off", value);
            return -EINVAL;
        }
        if (*(int *)field != 0) *(int *)field = b; /* off, wherever it was said, wins */
        return 0;
    case D_DOUBLE: {
        char *end;
        double v = strtod(value, &end);
        /* strtod also reads inf, 1e400 (inf) and hex (0x10 = 16): refused. */
        if (*end || !(v >= 0) || !isfinite(v) || strpbrk(value, "xXpP")) {
            snprintf(why, whylen, "'%s' must be a decimal number of at least 0", value);
            return -EINVAL;
        }
        *(double *)field = v;
        return 0;
    }
    case D_LOG_LEVEL: {
        int lv = hr_log_level_parse(value);
        if (lv < 0) {
            snprintf(why, whylen, "'%s' must be error, warn, info or debug", value);
            return -EINVAL;
        }
        *(int *)field = lv;
        return 0;
    }
    case D_LIST:
        break; /* handled by the caller: it takes every argument */
    }
    return -EINVAL;
}

static const struct directive *find_directive(const char *name)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (!strcmp(directives[i].name, name)) return &directives[i];
    return NULL;
}

static int is_set(const char *s) { return s && *s; }

int hr_config_exposed(const struct hr_config *c, char *warning, size_t cap)
{
    const char *h = c->host ? c->host : "";
    if (!strncmp(h, "127.", 4) || !strcmp(h, "::1") || !strcmp(h, "localhost")) return 0;
    int admin = is_set(c->admin_token), stats = is_set(c->stats_token), metrics = is_set(c->metrics_token);
    if (admin && stats && metrics) return 0;
    snprintf(warning, cap,
             "listening on %s, reachable from other machines, without %s%s%s: anyone who can connect sees usage, "
             "cost and savings%s; set these tokens in headroom.conf or listen on 127.0.0.1",
             h, stats ? "" : "stats_token ", metrics ? "" : "metrics_token ", admin ? "" : "admin_token",
             admin ? "" : " and loopback peers (other users, local containers) can reset counters");
    return 1;
}

size_t hr_name_likeness(const char *a, const char *b)
{
    size_t common = 0;
    while (a[common] && a[common] == b[common]) common++;
    return common;
}

/* Closest directive name, for "did you mean" hints. */
static const char *suggest(const char *name)
{
    const char *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        size_t common = hr_name_likeness(directives[i].name, name);
        if (common > best_score) { best_score = common; best = directives[i].name; }
    }
    return best_score >= HR_NAME_LIKE ? best : NULL;
}

static int add_plugin_block(struct hr_config *c, const struct hr_conf_node *n, const char *file, char *err, size_t errlen)
{
    int is_sink = !strcmp(n->name, "sink");
    if (!n->has_block || n->n_args < 1) {
        snprintf(err, errlen, "%s:%d:%d: '%s' needs a plugin name and a block, e.g. `%s %s { }`", file, n->line,
                 n->col, n->name, n->name, is_sink ? "prometheus" : "smart_crusher");
        return -EINVAL;
    }
    const char *name = n->args[0], *instance = name;
    if (n->n_args == 3 && !strcmp(n->args[1], "as")) instance = n->args[2];
    else if (n->n_args != 1) {
        snprintf(err, errlen, "%s:%d:%d: '%s %s' takes only a name, or `NAME as INSTANCE`", file, n->line, n->col,
                 n->name, name);
        return -EINVAL;
    }
    for (const char *p = instance; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_') || (p == instance && !islower((unsigned char)*p))) {
            snprintf(err, errlen, "%s:%d:%d: plugin name '%s' must match [a-z][a-z0-9_]*", file, n->line, n->col, instance);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < c->n_plugins; i++) {
        if (!strcmp(c->plugins[i].instance, instance)) {
            snprintf(err, errlen, "%s:%d:%d: %s '%s' is configured twice (use `%s %s as OTHER_NAME { }` for a second instance)",
                     file, n->line, n->col, n->name, instance, n->name, name);
            return -EINVAL;
        }
    }
    struct hr_plugin_block *p = realloc(c->plugins, (c->n_plugins + 1) * sizeof *p);
    if (!p) return -ENOMEM;
    c->plugins = p;
    p[c->n_plugins].is_sink = is_sink;
    p[c->n_plugins].name = strdup(name);
    p[c->n_plugins].instance = strdup(instance);
    p[c->n_plugins].node = n;
    c->n_plugins++;
    return 0;
}

/* The url as an error message may show it: the password (between the
 * user's ':' and the last '@') masked. */
static const char *masked_url(const char *s, char *buf, size_t len)
{
    const char *rest = strstr(s, "://"), *at = rest ? strrchr(rest + 3, '@') : NULL;
    if (!at) return s;
    rest += 3;
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    snprintf(buf, len, "%.*s%s@%s", (int)((colon ? colon : rest) - s), s, colon ? ":***" : "***", at + 1);
    return buf;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The user or password of a url: RFC 3986 percent-encodes userinfo (a
 * password holding '@', ':' or '/' must be), as redis-py and others read
 * it. A new string, or NULL with `why` (never showing the text: it may be
 * a password). */
static char *url_decode(const char *p, size_t n, const char *what, char *why, size_t whylen)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            *o++ = p[i];
            continue;
        }
        int hi = i + 1 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            snprintf(why, whylen, hi == 0 && lo == 0 ? "the %s holds %%00 (a NUL byte cannot be sent)"
                     : "the %s has a '%%' not followed by two hex digits: percent-encode it ('%%' is %%25, "
                       "'@' %%40, ':' %%3A, '/' %%2F)", what);
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

/* redis://[[user]:password@]host[:port][/db], user and password
 * percent-encoded: 0, or -EINVAL with `why` (the password never shown). */
static int parse_redis_url(struct hr_config *c, const char *s, char *why, size_t whylen)
{
    char shown[600];
    if (strncmp(s, "redis://", 8)) {
        snprintf(why, whylen, "'%.300s' is not a redis:// URL (e.g. redis://127.0.0.1:6379/0; for TLS see doc/fleet.md)",
                 masked_url(s, shown, sizeof shown));
        return -EINVAL;
    }
    masked_url(s, shown, sizeof shown);
    const char *p = s + 8, *at = strrchr(p, '@');
    char *user = NULL, *password = NULL;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(why, whylen, "'%.300s': a user with no ':' before the '@': write redis://:PASSWORD@host for a "
                     "password, redis://USER:PASSWORD@host for a Redis 6 ACL user", shown);
            return -EINVAL;
        }
        if ((colon > p && !(user = url_decode(p, (size_t)(colon - p), "user", why, whylen))) ||
            !(password = url_decode(colon + 1, (size_t)(at - colon - 1), "password", why, whylen))) {
            free(user);
            return -EINVAL;
        }
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    long long port = 6379, db = 0;
    const char *q = p + hl;
    if (!hl || hl > 255) {
        snprintf(why, whylen, "'%.300s' names no host", shown);
        goto bad;
    }
    if (*q == ':') {
        char num[8] = "";
        size_t n = strcspn(q + 1, "/");
        if (n < sizeof num) memcpy(num, q + 1, n), num[n] = '\0';
        if (n >= sizeof num || hr_parse_int(num, 1, 65535, &port)) {
            snprintf(why, whylen, "'%.300s': the port must be 1..65535", shown);
            goto bad;
        }
        q += 1 + n;
    }
    if (*q == '/' && q[1] && hr_parse_int(q + 1, 0, 1 << 20, &db)) {
        snprintf(why, whylen, "'%.300s': the database after / must be a number (0..)", shown);
        goto bad;
    }
    free(c->backend_url);
    free(c->backend_host);
    free(c->backend_user);
    free(c->backend_password);
    c->backend_url = strdup(s);
    c->backend_host = strndup(p, hl);
    c->backend_port = (int)port;
    c->backend_db = (int)db;
    c->backend_user = user;
    c->backend_password = password && *password ? password : (free(password), NULL);
    return 0;
bad:
    free(user);
    free(password);
    return -EINVAL;
}

/* `backend redis { url …; prefix …; timeout_ms …; on_backend_error open|closed; }` */
static int apply_backend(struct hr_config *c, const struct hr_conf_node *n, const char *file, char *err, size_t errlen)
{
    if (!n->has_block || n->n_args != 1 || strcmp(n->args[0], "redis")) {
        snprintf(err, errlen, "%s:%d:%d: backend takes a kind and a block: `backend redis { url redis://127.0.0.1:6379/0; }`"
                 " (redis is the only shared backend; without a backend block state stays in memory)",
                 file, n->line, n->col);
        return -EINVAL;
    }
    int have_url = 0;
    for (size_t i = 0; i < n->n_children; i++) {
        const struct hr_conf_node *k = &n->children[i];
        char why[512] = "";
        int bad = 0;
        if (k->has_block || k->n_args != 1) {
            snprintf(err, errlen, "%s:%d:%d: backend redis: '%s' takes exactly one value", file, k->line, k->col, k->name);
            return -EINVAL;
        }
        const char *v = k->args[0];
        long long x;
        if (!strcmp(k->name, "url")) {
            bad = parse_redis_url(c, v, why, sizeof why);
            have_url = !bad;
        } else if (!strcmp(k->name, "prefix")) {
            /* Keys are built in fixed buffers: a longer prefix would cut
             * them, and different keys would collide. */
            if (strlen(v) > 128) {
                bad = 1;
                snprintf(why, sizeof why, "%zu bytes; at most 128", strlen(v));
            } else {
                free(c->backend_prefix);
                c->backend_prefix = strdup(v);
            }
        } else if (!strcmp(k->name, "timeout_ms")) {
            if ((bad = hr_parse_int(v, 1, 60000, &x))) snprintf(why, sizeof why, "'%s' must be 1..60000 (milliseconds)", v);
            else c->backend_timeout_ms = (int)x;
        } else if (!strcmp(k->name, "on_backend_error")) {
            if (!strcmp(v, "open") || !strcmp(v, "closed")) c->backend_fail_closed = !strcmp(v, "closed");
            else bad = 1, snprintf(why, sizeof why, "'%s' must be open or closed", v);
        } else {
            snprintf(err, errlen, "%s:%d:%d: backend redis: unknown setting '%s' (url, prefix, timeout_ms, on_backend_error)",
                     file, k->line, k->col, k->name);
            return -EINVAL;
        }
        if (bad) {
            snprintf(err, errlen, "%s:%d:%d: backend redis: %s: %s", file, k->arg_lines[0], k->arg_cols[0], k->name, why);
            return -EINVAL;
        }
    }
    if (!have_url) {
        snprintf(err, errlen, "%s:%d:%d: backend redis needs `url redis://HOST:PORT/DB;`", file, n->line, n->col);
        return -EINVAL;
    }
    return 0;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}

int hr_config_apply_file(struct hr_config *c, const char *path, char *err, size_t errlen)
{
    struct hr_conf_doc *doc = NULL;
    if (hr_conf_parse_file(path, NULL, &doc, err, errlen)) return -EINVAL;
    const char *file = doc->file;
    const struct hr_conf_node *backend = NULL;
    for (size_t i = 0; i < doc->root.n_children; i++) {
        const struct hr_conf_node *n = &doc->root.children[i];
        if (!strcmp(n->name, "transform") || !strcmp(n->name, "sink")) {
            if (add_plugin_block(c, n, file, err, errlen)) goto fail;
            continue;
        }
        if (!strcmp(n->name, "backend")) {
            if (backend) { /* one shared state: a second block would silently replace the first */
                snprintf(err, errlen, "%s:%d:%d: a second backend block (the first is at line %d): give one", file,
                         n->line, n->col, backend->line);
                goto fail;
            }
            backend = n;
            if (apply_backend(c, n, file, err, errlen)) goto fail;
            continue;
        }
        const struct directive *d = find_directive(n->name);
        if (!d) {
            const char *s = suggest(n->name);
            snprintf(err, errlen, "%s:%d:%d: unknown directive '%s'%s%s%s (see headroom.conf(5) or headroomd --help-config)",
                     file, n->line, n->col, n->name, s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
            goto fail;
        }
        if (n->has_block) {
            snprintf(err, errlen, "%s:%d:%d: '%s' does not take a block", file, n->line, n->col, n->name);
            goto fail;
        }
        if (d->type == D_LIST) {
            char ***list = (char ***)((char *)c + d->offset);
            free_list(*list, c->n_protected_tools);
            *list = calloc(n->n_args ? n->n_args : 1, sizeof **list);
            for (size_t k = 0; k < n->n_args; k++) (*list)[k] = strdup(n->args[k]);
            c->n_protected_tools = n->n_args;
            continue;
        }
        if (n->n_args != 1) {
            snprintf(err, errlen, "%s:%d:%d: '%s' takes exactly one value, got %zu (quote a value that has spaces)",
                     file, n->line, n->col, n->name, n->n_args);
            goto fail;
        }
        char why[512];
        if (set_value(c, d, n->args[0], why, sizeof why)) {
            snprintf(err, errlen, "%s:%d:%d: %s: %s", file, n->arg_lines[0], n->arg_cols[0], n->name, why);
            goto fail;
        }
    }
    free(c->file);
    c->file = strdup(path);
    if (c->doc) hr_conf_doc_free(c->doc);
    c->doc = doc;
    return 0;
fail:
    /* plugin blocks point into doc: drop them with it */
    for (size_t i = 0; i < c->n_plugins; i++) {
        free(c->plugins[i].name);
        free(c->plugins[i].instance);
    }
    free(c->plugins);
    c->plugins = NULL;
    c->n_plugins = 0;
    hr_conf_doc_free(doc);
    return -EINVAL;
}

int hr_config_apply_env(struct hr_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const struct directive *d = &directives[i];
        const char *v = d->env ? getenv(d->env) : NULL;
        if (!v || !*v) continue;
        char why[512];
        if (set_value(c, d, v, why, sizeof why)) {
            snprintf(err, errlen, "environment variable %s: %s", d->env, why);
            return -EINVAL;
        }
    }
    return 0;
}

int hr_config_validate(const struct hr_config *c, char *err, size_t errlen)
{
    if (!*c->host) {
        snprintf(err, errlen, "host must not be empty (use 127.0.0.1 to stay local)");
        return -EINVAL;
    }
    return 0;
}

void hr_config_free(struct hr_config *c)
{
    free(c->file);
    free(c->host);
    free(c->openai_url);
    free(c->anthropic_url);
    free(c->chatgpt_url);
    free(c->plugin_dir);
    free(c->log_file);
    free(c->admin_token);
    free(c->api_token);
    free(c->metrics_token);
    free(c->stats_token);
    free(c->allowed_hosts);
    free(c->budget_period);
    free(c->upstream_client);
    free(c->prices_file);
    free(c->backend_url);
    free(c->backend_host);
    free(c->backend_user);
    free(c->backend_password);
    free(c->backend_prefix);
    free_list(c->protected_tools, c->n_protected_tools);
    for (size_t i = 0; i < c->n_plugins; i++) {
        free(c->plugins[i].name);
        free(c->plugins[i].instance);
    }
    free(c->plugins);
    if (c->doc) hr_conf_doc_free(c->doc);
    if (c->generated_doc) hr_conf_doc_free(c->generated_doc);
    if (c->telemetry_doc) hr_conf_doc_free(c->telemetry_doc);
    memset(c, 0, sizeof *c);
}

int hr_config_add_request_log(struct hr_config *c, char *err, size_t errlen)
{
    if (!c->log_file || !*c->log_file) return 0;
    for (size_t i = 0; i < c->n_plugins; i++)
        if (!strcmp(c->plugins[i].name, "request_log")) return 0;
    /* Quote the path for the config syntax: \ " and $ are escaped. */
    size_t n = strlen(c->log_file), k = 0;
    char *text = malloc(2 * n + 96);
    if (!text) return -ENOMEM;
    k += (size_t)sprintf(text, "sink request_log {\n path \"");
    for (const char *p = c->log_file; *p; p++) {
        if (*p == '\\' || *p == '"' || *p == '$') text[k++] = '\\';
        text[k++] = *p;
    }
    k += (size_t)sprintf(text + k, "\"\n messages %s\n}\n", c->log_messages ? "yes" : "no");
    struct hr_conf_doc *doc = NULL;
    int rc = hr_conf_parse_string("--log-file", text, k, NULL, &doc, err, errlen);
    free(text);
    if (rc) return rc;
    rc = add_plugin_block(c, &doc->root.children[0], "--log-file", err, errlen);
    if (rc) {
        hr_conf_doc_free(doc);
        return rc;
    }
    c->generated_doc = doc;
    return 0;
}

static int str_differs(const char *a, const char *b) { return (a == NULL) != (b == NULL) || (a && strcmp(a, b)); }

/* Same directive, arguments and children (positions aside). */
static int node_equal(const struct hr_conf_node *a, const struct hr_conf_node *b)
{
    if (str_differs(a->name, b->name) || a->n_args != b->n_args || a->has_block != b->has_block ||
        a->n_children != b->n_children)
        return 0;
    for (size_t i = 0; i < a->n_args; i++)
        if (strcmp(a->args[i], b->args[i])) return 0;
    for (size_t i = 0; i < a->n_children; i++)
        if (!node_equal(&a->children[i], &b->children[i])) return 0;
    return 1;
}

static int field_differs(const struct directive *d, const struct hr_config *a, const struct hr_config *b)
{
    const void *fa = (const char *)a + d->offset, *fb = (const char *)b + d->offset;
    switch (d->type) {
    case D_STRING:
    case D_CHOICE:
    case D_URL: return str_differs(*(char *const *)fa, *(char *const *)fb);
    case D_SIZE: return *(const size_t *)fa != *(const size_t *)fb;
    case D_DOUBLE: return *(const double *)fa != *(const double *)fb;
    case D_LIST:
        if (a->n_protected_tools != b->n_protected_tools) return 1;
        for (size_t i = 0; i < a->n_protected_tools; i++)
            if (strcmp(a->protected_tools[i], b->protected_tools[i])) return 1;
        return 0;
    default: return *(const int *)fa != *(const int *)fb;
    }
}

void hr_config_diff(const struct hr_config *a, const struct hr_config *b, void (*fn)(const char *name, void *ud),
                    void *ud)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (field_differs(&directives[i], a, b)) fn(directives[i].name, ud);
    int same = a->n_plugins == b->n_plugins;
    for (size_t i = 0; same && i < a->n_plugins; i++)
        same = a->plugins[i].is_sink == b->plugins[i].is_sink && !strcmp(a->plugins[i].name, b->plugins[i].name) &&
               !strcmp(a->plugins[i].instance, b->plugins[i].instance) &&
               node_equal(a->plugins[i].node, b->plugins[i].node);
    if (!same) fn("transform/sink blocks", ud);
}

void hr_config_print_directives(FILE *out)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        fprintf(out, "  %-28s %s", directives[i].name, directives[i].help);
        if (directives[i].env) fprintf(out, " [env %s]", directives[i].env);
        fputc('\n', out);
    }
    fprintf(out, "  %-28s %s\n", "transform NAME { … }", "load a transform plugin (in pipeline order)");
    fprintf(out, "  %-28s %s\n", "sink NAME { … }", "load a sink plugin");
    fprintf(out, "  %-28s %s\n", "backend redis { … }",
            "share CCR, response cache, rate limit and budget with other instances (url, prefix, timeout_ms, "
            "on_backend_error open|closed; doc/fleet.md)");
}
