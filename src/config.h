/* config.h — headroomd settings: defaults, then the config file, then
 * HEADROOM_* environment variables, then command-line flags. */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H
#include <stddef.h>
#include "conf_parse.h"

/* One `transform NAME { … }` or `sink NAME { … }` block, in file order. */
struct hr_plugin_block {
    int is_sink;
    char *name;                        /* plugin name (.so base name) */
    char *instance;                    /* `as NAME` or the plugin name */
    const struct hr_conf_node *node;   /* the block, for key lookup and errors */
};

struct hr_config {
    char *file;                        /* config path, or NULL */
    char *host;
    int port;
    int workers;                       /* 0 = auto (one per core) */
    int compress_threads;              /* 0 = auto (one per core); 1 = no helpers */
    char *openai_url;                  /* base URL without a trailing /v1 */
    char *anthropic_url;
    char *chatgpt_url;                 /* ChatGPT-plan Codex requests (ChatGPT-Account-ID) */
    char *plugin_dir;                  /* NULL = build tree or $(pkglibdir) */
    int log_level;
    char *log_file;                    /* request log (request_log sink) */
    int log_messages;
    int no_optimize;                   /* passthrough: no transforms */
    int balance_connections;           /* balance_connections yes: hand accepted connections to the least busy worker */
    int no_cut_through;                /* cut_through no: bodies read whole before forwarding */
    int no_websocket;                  /* websocket no: WebSocket upgrades get 501 */
    char *admin_token;
    char *api_token;            /* guards /v1/compress and /v1/retrieve when set */
    char *metrics_token;               /* guards the prometheus route when set */
    char *stats_token;                 /* guards /stats, /stats-history, /dashboard when set */
    char *allowed_hosts;               /* Host names accepted besides loopback names and IP literals */
    int shutdown_timeout_s;            /* drain: seconds in-flight requests get on SIGTERM */
    size_t max_body_bytes;
    size_t max_header_bytes;
    size_t max_response_bytes;
    int max_connections;
    int client_timeout_s;
    int upstream_connect_timeout_ms;
    int upstream_timeout_s;
    int upstream_keepalive;             /* idle upstream connections per worker */
    int upstream_idle_timeout_s;
    char *upstream_client;              /* auto (NULL), native or curl */
    int stage_budget_ms;               /* a stage over this is undone (fail open) */
    int min_tokens;                    /* units smaller than this are not candidates */
    int protect_recent;                /* last N outputs of protected tools stay as they are */
    char **protected_tools;
    size_t n_protected_tools;
    int sink_queue_size;
    size_t ccr_max_bytes;
    int ccr_ttl_s;
    /* reserved for later features; parsed so configs stay forward-compatible */
    double budget_usd;
    char *budget_period;
    char *prices_file;                 /* price table; NULL = the installed conf/prices.json */
    int telemetry;                     /* -1 unset, 0 off, 1 on; off from any source wins */
    int no_cache;                      /* -1 unset (cache off unless cache_ttl is set), 0 on, 1 off */
    int no_rate_limit;
    /* response cache and rate limit (respcache.c, ratelimit.c) */
    int cache_max_entries;
    size_t cache_max_bytes;
    int cache_ttl_s;                   /* 0 = not set (300 s when the cache is on) */
    int rate_limit_rpm, rate_limit_tpm; /* 0 = no limit */
    /* `backend redis { … }` (fleet.c): NULL url = state stays in this process */
    char *backend_url;                 /* redis://[[user]:password@]host[:port][/db] as written */
    char *backend_host;
    int backend_port, backend_db;
    char *backend_user;                /* percent-decoded; NULL: none */
    char *backend_password;            /* percent-decoded; NULL: none */
    char *backend_prefix;              /* key prefix, default "headroom:" */
    int backend_timeout_ms;            /* one operation's limit, default 50 */
    int backend_fail_closed;           /* on_backend_error closed */
    struct hr_plugin_block *plugins;
    size_t n_plugins;
    struct hr_conf_doc *doc;
    struct hr_conf_doc *generated_doc;  /* blocks implied by flags (--log-file) */
    struct hr_conf_doc *telemetry_doc;  /* `sink beacon { }` implied by --telemetry (telemetry.c) */
};

/* Fill defaults. */
void hr_config_defaults(struct hr_config *c);
/* Apply a parsed file. Errors are file:line:col: message in err. */
int hr_config_apply_file(struct hr_config *c, const char *path, char *err, size_t errlen);
/* Apply HEADROOM_* variables; err names the variable. */
int hr_config_apply_env(struct hr_config *c, char *err, size_t errlen);
/* --log-file / log_file imply `sink request_log { path …; messages … }`
 * unless the config has its own request_log block. */
int hr_config_add_request_log(struct hr_config *c, char *err, size_t errlen);
/* Check cross-field rules after everything was applied. */
int hr_config_validate(const struct hr_config *c, char *err, size_t errlen);
/* Whether c listens where other machines can reach it without every token
 * that guards what it shows; `warning` (cap bytes) then says what is open
 * and how to close it. headroomd logs it at start, `headroom doctor`
 * reports it. */
int hr_config_exposed(const struct hr_config *c, char *warning, size_t cap);
/* "Did you mean" hints: the leading characters two names share; a name
 * sharing at least HR_NAME_LIKE with a typo is offered for it. */
size_t hr_name_likeness(const char *a, const char *b);
#define HR_NAME_LIKE 3
void hr_config_free(struct hr_config *c);

/* Shared value parsers (used for flags too). 0 or -EINVAL. */
int hr_parse_int(const char *s, long long min, long long max, long long *out);
int hr_parse_size(const char *s, size_t *out);   /* 1024, 64k, 32m, 1g */
int hr_parse_bool(const char *s, int *out);      /* yes/no, on/off, true/false, 1/0 */
int hr_parse_url(const char *s, char **normalised, char *why, size_t whylen);
/* Calls fn with the name of every core directive whose value differs
 * between a and b, and with "transform/sink blocks" when the plugin blocks
 * differ (a reload reports what changed). */
void hr_config_diff(const struct hr_config *a, const struct hr_config *b, void (*fn)(const char *name, void *ud),
                    void *ud);
/* Print every core directive with its help text. */
void hr_config_print_directives(FILE *out);
#endif
