/* t/fake_host.c — the fake hr_host used by plugin unit tests and bench/compress:
 * logging to a capture buffer, config defaults from the key table, a bytes/4 token
 * estimator, unit replacement that keeps the JSON body in sync, an in-memory CCR,
 * /stats blocks and register_metrics sources. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fake_host.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int log_level = HR_LOG_WARN;
static char logbuf[1 << 16];
static size_t loglen;

struct ccr_entry {
    struct ccr_entry *next;
    char hash[HR_CCR_HASH_LEN + 1];
    char *data;
    size_t len;
};
static struct ccr_entry *ccr;

struct stats_reg {
    char key[64];
    json_t *(*fn)(void *);
    void *state;
};
static struct stats_reg stats[16];
static size_t n_stats;

struct metrics_reg {
    int (*fn)(void *state, hr_metric_visit_fn visit, void *ud);
    void *state;
};
static struct metrics_reg mregs[16];
static size_t n_mregs;

void fh_set_log_level(int level) { log_level = level; }

const char *fh_log(void) { return logbuf; }

int fh_log_has(const char *needle)
{
    pthread_mutex_lock(&mu);
    int found = strstr(logbuf, needle) != NULL;
    pthread_mutex_unlock(&mu);
    return found;
}

void fh_log_clear(void)
{
    pthread_mutex_lock(&mu);
    loglen = 0;
    logbuf[0] = '\0';
    pthread_mutex_unlock(&mu);
}

static void fh_logf(const struct hr_instance *self, enum hr_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[4300];
    int n = snprintf(line, sizeof line, "%s:headroom.transforms.%s:%s\n",
                     names[level <= HR_LOG_DEBUG ? level : HR_LOG_DEBUG],
                     self && self->name ? self->name : "?", msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    pthread_mutex_lock(&mu);
    if ((int)level <= log_level)
        fputs(line, stderr);
    if (loglen + (size_t)n < sizeof logbuf) {
        memcpy(logbuf + loglen, line, (size_t)n + 1);
        loglen += (size_t)n;
    }
    pthread_mutex_unlock(&mu);
}

static int fh_log_enabled(enum hr_log_level level)
{
    (void)level;
    return 1; /* tests read DEBUG lines from the capture */
}

static const char *conf_lookup(const struct hr_conf *conf, const char *key)
{
    for (size_t i = 0; conf && conf->kv[i]; i += 2)
        if (strcmp(conf->kv[i], key) == 0)
            return conf->kv[i + 1];
    for (const struct hr_conf_key *k = conf ? conf->keys : NULL; k && k->name; k++)
        if (strcmp(k->name, key) == 0)
            return k->default_value;
    return NULL;
}

void fh_conf(struct hr_conf *conf, const struct hr_conf_key *keys, ...)
{
    va_list ap;
    size_t n = 0;
    memset(conf, 0, sizeof *conf);
    conf->keys = keys;
    va_start(ap, keys);
    for (const char *k; (k = va_arg(ap, const char *)) && n < FH_MAX_CONF * 2;) {
        conf->kv[n++] = k;
        conf->kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
}

static const char *fh_conf_string(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key);
    return v ? v : "";
}

static long long fh_conf_int(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

static int fh_conf_bool(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key);
    return v && (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"));
}

static double fh_conf_double(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key);
    return v ? strtod(v, NULL) : 0;
}

size_t fh_count_tokens(const char *model, const char *text, size_t len)
{
    (void)model;
    (void)text;
    return (len + 3) / 4;
}

/* HR_UNIT_HAS_MARKER by the real host's rule (src/pipeline.c, flag_marker;
 * t/stage_rollback_test.py and t/crush_test.c check both on the same
 * texts): the marker key written as JSON, the same escaped in a JSON string
 * (rows carried as text), or the text marker. strstr as there: nothing
 * after a NUL in the text is searched. */
static int fh_has_marker(const char *text)
{
    return text && (strstr(text, "\"" HR_MARKER_KEY "\"") || strstr(text, "\\\"" HR_MARKER_KEY "\\\"") ||
                    strstr(text, HR_TEXT_MARKER));
}

static void fh_flag_marker(struct hr_unit *u)
{
    u->flags = fh_has_marker(u->text) ? u->flags | HR_UNIT_HAS_MARKER : u->flags & ~HR_UNIT_HAS_MARKER;
}

void fh_request_flag_as_1_5(struct fh_request *r)
{
    for (size_t i = 0; i < r->req.n_units; i++) {
        struct hr_unit *u = &r->units[i];
        int has = u->text && (strstr(u->text, "\"" HR_MARKER_KEY "\"") || strstr(u->text, HR_TEXT_MARKER));
        u->flags = has ? u->flags | HR_UNIT_HAS_MARKER : u->flags & ~HR_UNIT_HAS_MARKER;
    }
}

static int fh_unit_replace(struct hr_request *req, size_t i, const char *text, size_t len)
{
    struct fh_request *r = (struct fh_request *)req;
    /* The host's answers, in its order (src/pipeline.c hr_pipeline_unit_replace). */
    if (!text || i >= req->n_units)
        return HR_EINVAL;
    struct hr_unit *u = &r->units[i];
    if (u->flags & HR_UNIT_PROTECTED) {
        r->protected_writes++; /* a test can assert a plugin never tries */
        return HR_EINVAL;
    }
    size_t t = fh_count_tokens(req->model, text, len);
    if (t >= u->tokens)
        return HR_ENOTSMALLER;
    json_t *s = json_stringn(text, len);
    if (!s)
        return HR_EINVAL; /* not UTF-8 (json_stringn's only refusal short of memory) */
    if (json_object_set_new(r->target[i], r->key[i], s))
        return HR_ENOMEM;
    s = json_object_get(r->target[i], r->key[i]);
    r->tokens_saved += (int64_t)(u->tokens - t);
    u->text = json_string_value(s);
    u->len = json_string_length(s);
    u->tokens = t;
    fh_flag_marker(u); /* as a 1.6 host: the marker flag follows the text */
    r->replaced++;
    return HR_OK;
}

/* Two FNV-1a lanes: plenty for tests, where texts are few. */
static void fh_unit_hash(struct hr_request *req, size_t i, uint64_t out[2])
{
    struct fh_request *r = (struct fh_request *)req;
    out[0] = 1469598103934665603ULL;
    out[1] = 0x9e3779b97f4a7c15ULL;
    if (i >= req->n_units)
        return;
    for (size_t k = 0; k < r->units[i].len; k++) {
        unsigned char c = (unsigned char)r->units[i].text[k];
        out[0] = (out[0] ^ c) * 1099511628211ULL;
        out[1] = (out[1] ^ c) * 0x100000001b3ULL + k;
    }
}

/* Real threads, so plugin tests exercise concurrent calls: this thread and
 * one more claim indices from a shared counter. */
struct fh_par {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n, next;
};

static void *fh_par_worker(void *arg)
{
    struct fh_par *p = arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        size_t i = p->next++;
        pthread_mutex_unlock(&mu);
        if (i >= p->n)
            return NULL;
        p->fn(p->ctx, i);
    }
}

static double fh_now(void) { return 1700000000.0; }

static const char *fh_state_dir(void) { return "/nonexistent/headroom-fake-host"; }

static void fh_parallel_for(size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    struct fh_par p = {fn, ctx, n, 0};
    pthread_t t;
    int helper = n > 1 && pthread_create(&t, NULL, fh_par_worker, &p) == 0;
    fh_par_worker(&p);
    if (helper)
        pthread_join(t, NULL);
}

static void fh_stage_tokens_removed(struct hr_request *req, uint64_t tokens)
{
    struct fh_request *r = (struct fh_request *)req;
    r->tokens_saved += (int64_t)tokens;
    r->tokens_removed += (int64_t)tokens;
    req->body_edited = 1;
}

static void fh_stage_tag(struct hr_request *req, const char *tag)
{
    struct fh_request *r = (struct fh_request *)req;
    snprintf(r->tag, sizeof r->tag, "%s", tag);
}

static void hash24(const char *data, size_t len, char out[HR_CCR_HASH_LEN + 1])
{
    uint64_t a = 1469598103934665603ULL, b = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < len; i++) {
        a = (a ^ (unsigned char)data[i]) * 1099511628211ULL;
        b = (b ^ (unsigned char)data[i]) * 0x100000001b3ULL + (b >> 29);
    }
    snprintf(out, HR_CCR_HASH_LEN + 1, "%016llx%08llx", (unsigned long long)a,
             (unsigned long long)(b & 0xffffffffULL));
}

static int ccr_put_unit_calls; /* ccr_put_unit, 1.6 */

static int fh_ccr_put(const char *data, size_t len, char hash_out[HR_CCR_HASH_LEN + 1])
{
    hash24(data, len, hash_out);
    pthread_mutex_lock(&mu);
    for (struct ccr_entry *e = ccr; e; e = e->next)
        if (!strcmp(e->hash, hash_out)) {
            pthread_mutex_unlock(&mu);
            return HR_OK;
        }
    struct ccr_entry *e = calloc(1, sizeof *e);
    if (e)
        e->data = malloc(len + 1);
    if (!e || !e->data) {
        free(e);
        pthread_mutex_unlock(&mu);
        return HR_ENOMEM;
    }
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->len = len;
    memcpy(e->hash, hash_out, HR_CCR_HASH_LEN + 1);
    e->next = ccr;
    ccr = e;
    pthread_mutex_unlock(&mu);
    return HR_OK;
}

char *fh_ccr_get(const char *hash, size_t *len)
{
    char *out = NULL;
    pthread_mutex_lock(&mu);
    for (struct ccr_entry *e = ccr; e; e = e->next)
        if (!strcmp(e->hash, hash)) {
            out = malloc(e->len + 1);
            if (out) {
                memcpy(out, e->data, e->len + 1);
                *len = e->len;
            }
            break;
        }
    pthread_mutex_unlock(&mu);
    return out;
}

static char *fh_ccr_get_cb(const char *hash, size_t *len) { return fh_ccr_get(hash, len); }
static void fh_ccr_free(char *data) { free(data); }

static int fh_register_route(struct hr_instance *self, const char *method, const char *path,
                             hr_route_fn fn, void *state)
{
    (void)self, (void)method, (void)path, (void)fn, (void)state;
    return HR_OK;
}

static int fh_register_stats(struct hr_instance *self, const char *key,
                             json_t *(*fn)(void *state), void *state)
{
    (void)self;
    pthread_mutex_lock(&mu);
    if (n_stats == sizeof stats / sizeof stats[0]) {
        pthread_mutex_unlock(&mu);
        return HR_ENOMEM;
    }
    snprintf(stats[n_stats].key, sizeof stats[n_stats].key, "%s", key);
    stats[n_stats].fn = fn;
    stats[n_stats].state = state;
    n_stats++;
    pthread_mutex_unlock(&mu);
    return HR_OK;
}

json_t *fh_stats(const char *key)
{
    for (size_t i = n_stats; i-- > 0;)
        if (!strcmp(stats[i].key, key))
            return stats[i].fn(stats[i].state);
    return NULL;
}

void fh_drop_stats(void *state)
{
    pthread_mutex_lock(&mu);
    size_t k = 0;
    for (size_t i = 0; i < n_stats; i++)
        if (stats[i].state != state)
            stats[k++] = stats[i];
    n_stats = k;
    k = 0;
    for (size_t i = 0; i < n_mregs; i++)
        if (mregs[i].state != state)
            mregs[k++] = mregs[i];
    n_mregs = k;
    pthread_mutex_unlock(&mu);
}

static int fh_register_metrics(struct hr_instance *self, int (*fn)(void *, hr_metric_visit_fn, void *), void *state)
{
    (void)self;
    if (!fn)
        return HR_EINVAL;
    pthread_mutex_lock(&mu);
    if (n_mregs == sizeof mregs / sizeof mregs[0]) {
        pthread_mutex_unlock(&mu);
        return HR_ENOMEM;
    }
    mregs[n_mregs++] = (struct metrics_reg){fn, state};
    pthread_mutex_unlock(&mu);
    return HR_OK;
}

int fh_metrics(hr_metric_visit_fn fn, void *ud)
{
    for (size_t i = 0; i < n_mregs; i++) {
        int rc = mregs[i].fn(mregs[i].state, fn, ud);
        if (rc)
            return rc;
    }
    return HR_OK;
}

static int fh_add_timer(struct hr_instance *self, unsigned ms, void (*fn)(void *), void *state)
{
    (void)self, (void)ms, (void)fn, (void)state;
    return HR_OK;
}

static int fh_metrics_visit(hr_metric_visit_fn fn, void *ud) { return fh_metrics(fn, ud); }

/* ---- exporters: every conf and body recorded, nothing sent ---- */

struct hr_exporter {
    struct fh_export info;
    struct fh_body *bodies;     /* under mu */
    size_t n_bodies;
    uint64_t dropped;
};
static struct hr_exporter *exps[8];
static size_t n_exps;
static int exp_full, events_off_calls;

static struct hr_exporter *fh_exporter_new(struct hr_instance *self, const struct hr_export_conf *c)
{
    (void)self;
    pthread_mutex_lock(&mu);
    struct hr_exporter *e = n_exps < sizeof exps / sizeof *exps ? calloc(1, sizeof *e) : NULL;
    if (e) {
        snprintf(e->info.name, sizeof e->info.name, "%s", c->name ? c->name : "");
        snprintf(e->info.url, sizeof e->info.url, "%s", c->url ? c->url : "");
        snprintf(e->info.content_type, sizeof e->info.content_type, "%s", c->content_type ? c->content_type : "");
        size_t hl = 0;
        for (size_t i = 0; c->headers && c->headers[i]; i++) {
            int n = snprintf(e->info.headers + hl, sizeof e->info.headers - hl, "%s\n", c->headers[i]);
            if (n < 0 || (size_t)n >= sizeof e->info.headers - hl)
                break;
            hl += (size_t)n;
        }
        e->info.gzip = c->gzip;
        e->info.timeout_ms = c->timeout_ms;
        e->info.queue_max = c->queue_max;
        exps[n_exps++] = e;
    }
    pthread_mutex_unlock(&mu);
    return e;
}

static int fh_export_post(struct hr_exporter *e, const void *body, size_t len, uint64_t items)
{
    pthread_mutex_lock(&mu);
    int rc = HR_OK;
    struct fh_body *nb = exp_full ? NULL : realloc(e->bodies, (e->n_bodies + 1) * sizeof *nb);
    unsigned char *copy = nb ? malloc(len ? len : 1) : NULL;
    if (nb) e->bodies = nb;
    if (!copy) {
        e->dropped++;
        rc = exp_full ? HR_EAGAIN : HR_ENOMEM;
    } else {
        memcpy(copy, body, len);
        e->bodies[e->n_bodies++] = (struct fh_body){copy, len, items};
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static void fh_export_stats(struct hr_exporter *e, struct hr_export_stats *out)
{
    pthread_mutex_lock(&mu);
    uint64_t items = 0;
    for (size_t i = 0; i < e->n_bodies; i++) items += e->bodies[i].items;
    *out = (struct hr_export_stats){.struct_size = sizeof *out, .ok = e->n_bodies, .items_ok = items, .dropped = e->dropped};
    pthread_mutex_unlock(&mu);
}

static void fh_events_off(struct hr_instance *self)
{
    (void)self;
    pthread_mutex_lock(&mu);
    events_off_calls++;
    pthread_mutex_unlock(&mu);
}

size_t fh_n_exports(void)
{
    pthread_mutex_lock(&mu);
    size_t n = n_exps;
    pthread_mutex_unlock(&mu);
    return n;
}

const struct fh_export *fh_export(size_t i) { return i < fh_n_exports() ? &exps[i]->info : NULL; }

size_t fh_export_posts(size_t i)
{
    pthread_mutex_lock(&mu);
    size_t n = i < n_exps ? exps[i]->n_bodies : 0;
    pthread_mutex_unlock(&mu);
    return n;
}

unsigned char *fh_export_body(size_t i, size_t k, size_t *len, uint64_t *items)
{
    pthread_mutex_lock(&mu);
    unsigned char *out = NULL;
    if (i < n_exps && k < exps[i]->n_bodies && (out = malloc(exps[i]->bodies[k].len + 1))) {
        memcpy(out, exps[i]->bodies[k].data, exps[i]->bodies[k].len);
        *len = exps[i]->bodies[k].len;
        if (items) *items = exps[i]->bodies[k].items;
    }
    pthread_mutex_unlock(&mu);
    return out;
}

void fh_export_set_full(int full)
{
    pthread_mutex_lock(&mu);
    exp_full = full;
    pthread_mutex_unlock(&mu);
}

int fh_events_off_calls(void)
{
    pthread_mutex_lock(&mu);
    int n = events_off_calls;
    pthread_mutex_unlock(&mu);
    return n;
}

void fh_reset(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_exps; i++) {
        for (size_t k = 0; k < exps[i]->n_bodies; k++) free(exps[i]->bodies[k].data);
        free(exps[i]->bodies);
        free(exps[i]);
    }
    n_exps = 0;
    exp_full = 0;
    events_off_calls = 0;
    n_stats = 0;
    n_mregs = 0;
    while (ccr) {
        struct ccr_entry *e = ccr;
        ccr = e->next;
        free(e->data);
        free(e);
    }
    pthread_mutex_unlock(&mu);
}

void *fh_start(const struct headroom_plugin *p, struct hr_instance *inst)
{
    struct hr_conf conf;
    void *s = NULL;
    fh_reset();
    fh_log_clear();
    fh_conf(&conf, p->conf_keys, NULL);
    return p->init(fh_host(), inst, &conf, &s) ? NULL : s;
}

void fh_stop(const struct headroom_plugin *p, void *state)
{
    fh_drop_stats(state);
    p->fini(state);
}

void fh_env(const char *const *all, const char *name, ...)
{
    for (size_t i = 0; all[i]; i++) unsetenv(all[i]);
    va_list ap;
    va_start(ap, name);
    for (const char *k = name; k; k = va_arg(ap, const char *)) setenv(k, va_arg(ap, const char *), 1);
    va_end(ap);
}

int fh_warns_naming(const char *word)
{
    int n = 0;
    for (const char *line = fh_log(); *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[4400];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        if (!strncmp(buf, "WARN", 4) && strstr(buf, word)) n++;
        line += len + (nl ? 1 : 0);
    }
    return n;
}

/* Units are counted when the request is built (fh_request_init): the
 * answers come from those counts. */
static int fh_unit_tokens_at_least(struct hr_request *req, size_t i, size_t n)
{
    return i < req->n_units && req->units[i].tokens >= n;
}

static size_t fh_unit_tokens(struct hr_request *req, size_t i)
{
    return i < req->n_units ? req->units[i].tokens : 0;
}

static int fh_ccr_put_unit(struct hr_request *req, size_t i, char hash_out[HR_CCR_HASH_LEN + 1])
{
    if (i >= req->n_units)
        return HR_EINVAL;
    ccr_put_unit_calls++;
    return fh_ccr_put(req->units[i].text, req->units[i].len, hash_out);
}

int fh_ccr_put_unit_calls(void) { return ccr_put_unit_calls; }

static const struct hr_host host = {
    .struct_size = sizeof(struct hr_host),
    .abi_major = HR_ABI_MAJOR,
    .abi_minor = HR_ABI_MINOR,
    .log = fh_logf,
    .log_enabled = fh_log_enabled,
    .conf_string = fh_conf_string,
    .conf_int = fh_conf_int,
    .conf_bool = fh_conf_bool,
    .conf_double = fh_conf_double,
    .count_tokens = fh_count_tokens,
    .unit_replace = fh_unit_replace,
    .stage_tag = fh_stage_tag,
    .ccr_put = fh_ccr_put,
    .ccr_get = fh_ccr_get_cb,
    .ccr_free = fh_ccr_free,
    .register_route = fh_register_route,
    .register_stats = fh_register_stats,
    .add_timer = fh_add_timer,
    .metrics_visit = fh_metrics_visit,
    .register_metrics = fh_register_metrics,
    .stage_tokens_removed = fh_stage_tokens_removed,
    .unit_hash = fh_unit_hash,
    .parallel_for = fh_parallel_for,
    .now = fh_now,
    .state_dir = fh_state_dir,
    .exporter_new = fh_exporter_new,
    .export_post = fh_export_post,
    .export_stats = fh_export_stats,
    .events_off = fh_events_off,
    .unit_tokens_at_least = fh_unit_tokens_at_least,
    .unit_tokens = fh_unit_tokens,
    .ccr_put_unit = fh_ccr_put_unit,
};

const struct hr_host *fh_host(void) { return &host; }

static void add_unit(struct fh_request *r, size_t msg, json_t *target, const char *key,
                     json_t *name)
{
    if (r->req.n_units == FH_MAX_UNITS)
        return;
    size_t i = r->req.n_units++;
    json_t *s = json_object_get(target, key);
    struct hr_unit *u = &r->units[i];
    u->struct_size = sizeof *u;
    u->message_index = (uint32_t)msg;
    u->text = json_string_value(s);
    u->len = json_string_length(s);
    u->tokens = fh_count_tokens(r->req.model, u->text, u->len);
    u->type = HR_CT_UNKNOWN;
    u->tool_name = json_string_value(name);
    u->flags = 0;
    fh_flag_marker(u);
    r->target[i] = target;
    r->key[i] = key;
}

int fh_request_init(struct fh_request *r, json_t *body, enum hr_provider provider,
                    const char *query)
{
    memset(r, 0, sizeof *r);
    r->req.struct_size = sizeof r->req;
    r->req.provider = provider;
    r->req.wire_format = provider == HR_PROVIDER_ANTHROPIC ? HR_WIRE_ANTHROPIC_MESSAGES : HR_WIRE_OPENAI_CHAT;
    r->req.model = json_string_value(json_object_get(body, "model"));
    if (!r->req.model)
        r->req.model = "";
    r->req.stack = "";
    r->req.session_id = "test-session";
    r->req.body = json_incref(body);
    r->req.units = r->units;
    r->req.query = query ? query : "";
    json_t *msgs = json_object_get(body, "messages");
    size_t mi;
    json_t *m;
    json_array_foreach(msgs, mi, m) {
        json_t *content = json_object_get(m, "content");
        const char *role = json_string_value(json_object_get(m, "role"));
        if (provider == HR_PROVIDER_OPENAI && role && !strcmp(role, "tool")) {
            if (json_is_string(content)) {
                add_unit(r, mi, m, "content", json_object_get(m, "name"));
            } else if (json_is_array(content)) {
                size_t pi;
                json_t *p;
                json_array_foreach(content, pi, p)
                    if (json_is_string(json_object_get(p, "text")))
                        add_unit(r, mi, p, "text", json_object_get(m, "name"));
            }
        } else if (provider == HR_PROVIDER_ANTHROPIC && json_is_array(content)) {
            size_t bi;
            json_t *b;
            json_array_foreach(content, bi, b) {
                const char *type = json_string_value(json_object_get(b, "type"));
                if (!type || strcmp(type, "tool_result"))
                    continue;
                json_t *c = json_object_get(b, "content");
                if (json_is_string(c)) {
                    add_unit(r, mi, b, "content", NULL);
                } else if (json_is_array(c)) {
                    size_t ci;
                    json_t *cb;
                    json_array_foreach(c, ci, cb)
                        if (json_is_string(json_object_get(cb, "text")))
                            add_unit(r, mi, cb, "text", NULL);
                }
            }
        }
    }
    return 0;
}

void fh_request_free(struct fh_request *r)
{
    json_decref(r->req.body);
    memset(r, 0, sizeof *r);
}
