/* t/fake_host.h — a minimal in-process stand-in for headroomd's struct hr_host, so
 * plugin unit tests and benchmarks can drive a transform without the daemon. */
#ifndef HR_FAKE_HOST_H
#define HR_FAKE_HOST_H

#include <stdint.h>
#include <headroom/plugin.h>

#define FH_MAX_UNITS 64
#define FH_MAX_CONF 16

/* Config block: overrides as key/value text, defaults from the plugin's declaration. */
struct hr_conf {
    const struct hr_conf_key *keys;
    const char *kv[FH_MAX_CONF * 2 + 1];
};

struct hr_instance {
    const char *name;
};

/* A request plus the bookkeeping a host keeps for it. `req` must stay first. */
struct fh_request {
    struct hr_request req;
    struct hr_unit units[FH_MAX_UNITS];
    json_t *target[FH_MAX_UNITS]; /* object holding the unit's text ... */
    const char *key[FH_MAX_UNITS]; /* ... under this key */
    char tag[512];
    int64_t tokens_saved;  /* unit savings plus stage_tokens_removed() */
    int replaced;
    int64_t tokens_removed; /* stage_tokens_removed() alone */
    int protected_writes;   /* unit_replace calls on an HR_UNIT_PROTECTED unit (refused, as the host does) */
};

/* The host table (thread-safe, like the real one). */
const struct hr_host *fh_host(void);
/* Only lines at or below `level` go to stderr (default HR_LOG_WARN); all are captured. */
void fh_set_log_level(int level);
/* Captured log lines ("LEVEL:headroom.transforms.<name>:msg\n"...), and reset. */
const char *fh_log(void);
void fh_log_clear(void);
/* Whether the captured lines contain `needle` (under the log's lock: safe
 * while another thread logs). */
int fh_log_has(const char *needle);
/* The fake token estimator: ceil(bytes / 4). */
size_t fh_count_tokens(const char *model, const char *text, size_t len);

/* Fill a config block: pairs of key, value, ending with NULL. */
void fh_conf(struct hr_conf *conf, const struct hr_conf_key *keys, ...);

/* Build a request over `body` (a reference is taken): finds OpenAI role:"tool" and
 * Anthropic tool_result units, counts their tokens. Returns 0 or -1. */
int fh_request_init(struct fh_request *r, json_t *body, enum hr_provider provider,
                    const char *query);
void fh_request_free(struct fh_request *r);
/* Units are flagged HR_UNIT_HAS_MARKER as the real host flags them. This
 * flags r's units as a host before ABI 1.6 did: the marker key written as
 * JSON or the text marker, not the key escaped in a JSON string. */
void fh_request_flag_as_1_5(struct fh_request *r);

/* Walk every metric family plugins registered with register_metrics (also what
 * the host's metrics_visit walks). Returns 0 or the first source's error. */
int fh_metrics(hr_metric_visit_fn fn, void *ud);

/* Call the /stats block a plugin registered under `key` (new reference or NULL). */
json_t *fh_stats(const char *key);
/* Forget the /stats blocks and metric sources registered with `state` (call
 * before the plugin's fini). */
void fh_drop_stats(void *state);
/* CCR lookup; free() the result. */
char *fh_ccr_get(const char *hash, size_t *len);
/* How many stores went through ccr_put_unit (ABI 1.6). */
int fh_ccr_put_unit_calls(void);
/* Exporters (hr_host.exporter_new): what a plugin asked for and every body
 * it posted, kept in memory; nothing is sent. */
struct fh_export {
    char name[64], url[1024], content_type[64];
    char headers[2048];         /* the "Name: value" headers, each followed by '\n' */
    int gzip;
    unsigned timeout_ms, queue_max;
};
struct fh_body {
    unsigned char *data;
    size_t len;
    uint64_t items;
};
size_t fh_n_exports(void);
const struct fh_export *fh_export(size_t i);
size_t fh_export_posts(size_t i);
/* A copy of body k of exporter i (free it), or NULL. */
unsigned char *fh_export_body(size_t i, size_t k, size_t *len, uint64_t *items);
/* While set, export_post refuses bodies with HR_EAGAIN (a full queue) and counts them dropped. */
void fh_export_set_full(int full);
/* How many times a plugin called hr_host.events_off. */
int fh_events_off_calls(void);

/* Drop every registration, exporter and stored CCR entry. */
void fh_reset(void);

/* What the sink tests share. fh_start: fh_reset, fh_log_clear, then `p`'s
 * init as `inst` with its default config; its state, or NULL when init
 * failed. fh_stop: fh_drop_stats, then its fini. */
void *fh_start(const struct headroom_plugin *p, struct hr_instance *inst);
void fh_stop(const struct headroom_plugin *p, void *state);
/* Unset every variable named in `all` (NULL-terminated), then set the pairs
 * name, value, ..., NULL. */
void fh_env(const char *const *all, const char *name, ...);
/* Captured WARN lines that name `word`. */
int fh_warns_naming(const char *word);

#endif
