/* validate.c — hr_validate_setup: every check headroomd would fail on at
 * start-up (or silently run degraded with), without starting anything:
 * config, plugins and their keys, state root, price table, token tables,
 * upstream URLs, the listening address. Each problem comes with its fix. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sdk.h"
#include "cost.h"
#include "log.h"
#include "state_dir.h"
#include "tokens.h"

struct report {
    json_t *issues, *checks;
};

static void add(struct report *r, const char *check, int ok, const char *message, const char *fix)
{
    json_array_append_new(r->checks, json_pack("{s:s,s:b,s:s,s:s?}", "check", check, "ok", ok, "message", message,
                                               "fix", ok ? NULL : fix));
    if (!ok) {
        char *line = NULL;
        if (asprintf(&line, "%s: %s. Fix: %s", check, message, fix) >= 0) json_array_append_new(r->issues, json_string(line));
        free(line);
    }
}

/* Load each plugin block on its own, so every broken one is reported. */
static void check_plugins(struct report *r, const struct hr_config *cfg)
{
    char err[2048], msg[2300];
    size_t good = 0;
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        struct hr_config one = *cfg;
        one.plugins = &cfg->plugins[i];
        one.n_plugins = 1;
        one.no_optimize = 0;
        struct hr_plugins p;
        if (hr_plugins_load(&one, &p, err, sizeof err)) {
            snprintf(msg, sizeof msg, "%s %s: %s", cfg->plugins[i].is_sink ? "sink" : "transform",
                     cfg->plugins[i].instance, err);
            add(r, "plugins", 0, msg,
                strstr(err, "ABI") ? "rebuild the plugin against this headroomd's include/headroom/plugin.h, or "
                                     "remove its block"
                : strstr(err, "has no setting") || strstr(err, "must be")
                    ? "correct or remove the setting named above (headroom.conf(5) lists each plugin's keys)"
                    : "install the plugin in plugin_dir (or set plugin_dir / HEADROOM_PLUGIN_DIR), or remove its block");
            continue;
        }
        good++;
        hr_plugins_unload(&p);
    }
    if (good == cfg->n_plugins) {
        snprintf(msg, sizeof msg, "%zu plugin%s load with a compatible ABI and valid settings", good, good == 1 ? "" : "s");
        add(r, "plugins", 1, msg, NULL);
    }
}

static void check_prices(struct report *r, const struct hr_config *cfg)
{
    char err[2048];
    if (hr_cost_init(cfg, 1, err, sizeof err)) {
        add(r, "prices", 0, err, "fix the price table named above, or remove `prices` to use the bundled table");
        hr_cost_shutdown();
        return;
    }
    char *desc = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&desc, &n);
    if (f) {
        hr_cost_describe(f);
        fclose(f);
    }
    if (desc && !strncmp(desc, "prices ", 7)) {
        char *nl = strchr(desc, '\n');
        if (nl) *nl = '\0';
        add(r, "prices", 1, desc, NULL);
    } else {
        add(r, "prices", 0, "no price table found: every request would be unpriced (cost and savings in USD are 0)",
            "set `prices /path/to/prices.json` in headroom.conf (HEADROOM_PRICES), or reinstall headroomd's data");
    }
    free(desc);
    hr_cost_shutdown();
}

static void check_url(struct report *r, const char *what, const char *url)
{
    char why[512], msg[700];
    char *norm = NULL;
    if (!url || hr_parse_url(url, &norm, why, sizeof why)) {
        snprintf(msg, sizeof msg, "%s '%s' is not a well-formed URL: %s", what, url ? url : "", url ? why : "missing");
        add(r, "upstreams", 0, msg, "set it to an http:// or https:// base URL, e.g. https://api.openai.com");
    } else if (strncmp(norm, "http://", 7) && strncmp(norm, "https://", 8)) {
        snprintf(msg, sizeof msg, "%s '%s' is not an http(s) URL", what, url);
        add(r, "upstreams", 0, msg, "use an http:// or https:// base URL");
    } else {
        snprintf(msg, sizeof msg, "%s %s", what, norm);
        add(r, "upstreams", 1, msg, NULL);
    }
    free(norm);
}

/* Is a headroomd answering /livez at host:port? */
static int headroomd_answers(const char *host, int port)
{
    char url[600];
    snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host, port);
    hr_client *c = hr_client_attach(url, NULL);
    if (!c) return 0;
    c->timeout_ms = 2000; /* a program that accepts and never answers is not a headroomd */
    struct hr_sdk_answer a;
    int ok = !hr_sdk_http(c, "GET", "/health", NULL, 0, &a) && a.status / 100 == 2 && strstr(a.body, "\"status\"");
    free(a.body);
    hr_client_close(c);
    return ok;
}

static void check_listen(struct report *r, const struct hr_config *cfg)
{
    char msg[700], port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai) {
        snprintf(msg, sizeof msg, "listen address '%s' does not resolve: %s", cfg->host, gai_strerror(gai));
        add(r, "listen", 0, msg, "set `host` (HEADROOM_HOST, --host) to an address of this machine, e.g. 127.0.0.1");
        return;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), e = 0;
    int one = 1;
    if (fd < 0) e = errno;
    else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen)) e = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    if (!e || cfg->port == 0) {
        snprintf(msg, sizeof msg, "%s:%d is free", cfg->host, cfg->port);
        add(r, "listen", 1, msg, NULL);
    } else if (e == EADDRINUSE && headroomd_answers(cfg->host, cfg->port)) {
        snprintf(msg, sizeof msg, "%s:%d is held by a running headroomd (it answers /health)", cfg->host, cfg->port);
        add(r, "listen", 1, msg, NULL);
    } else {
        snprintf(msg, sizeof msg, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(e));
        add(r, "listen", 0, msg,
            e == EADDRINUSE ? "stop the program using that port (ss -ltnp shows it), or set `port` in headroom.conf "
                              "(HEADROOM_PORT, --port)"
            : e == EACCES   ? "ports below 1024 need privileges: use a port from 1024 up (`port`, --port)"
                            : "set `host` to an address of this machine (e.g. 127.0.0.1) and `port` to a free port");
    }
}

/* Not a failure (headroomd starts, and warns): a check that is ok with
 * "warning": true, its message and fix, so doctor shows it and valid stays. */
static void check_exposure(struct report *r, const struct hr_config *cfg)
{
    char warning[512];
    if (!hr_config_exposed(cfg, warning, sizeof warning)) {
        add(r, "exposure", 1, "what headroomd shows is guarded: it listens on loopback, or every token is set", NULL);
        return;
    }
    json_array_append_new(r->checks,
                          json_pack("{s:s,s:b,s:b,s:s,s:s}", "check", "exposure", "ok", 1, "warning", 1, "message",
                                    warning, "fix", "set stats_token, metrics_token and admin_token in headroom.conf "
                                                    "(headroomd(8), HTTP INTERFACE), or set `host 127.0.0.1`"));
}

char *hr_validate_setup(const char *config_path)
{
    hr_sdk_clear_error();
    struct report r = {json_array(), json_array()};
    enum hr_log_level level = hr_log_get_level();
    hr_log_set_level(HR_LOG_ERROR); /* the answer carries the findings; no log noise */
    char err[2048], msg[2300];
    struct hr_config cfg;
    int cfg_ok = !hr_sdk_load_config(&cfg, config_path, NULL, NULL, 0, err, sizeof err);
    if (cfg_ok) {
        if (config_path)
            snprintf(msg, sizeof msg, "%s parses (%zu plugin block%s)", config_path, cfg.n_plugins,
                     cfg.n_plugins == 1 ? "" : "s");
        else /* valid, but a daemon started so compresses nothing: say it */
            snprintf(msg, sizeof msg, "no config given (-c FILE, $HEADROOM_CONFIG): the built-in defaults, with no "
                     "transforms (nothing is compressed) and no sinks");
        add(&r, "config", 1, msg, NULL);
    } else {
        /* The plugins, prices, upstreams and listen checks need the config:
         * on built-in defaults they would pass a port or URL it does not
         * name. They wait until it parses. */
        int unreadable = config_path && access(config_path, R_OK) != 0;
        int env = !strncmp(err, "environment variable ", 21); /* a HEADROOM_* value, not the file */
        add(&r, "config", 0, err,
            unreadable ? "give the path of a readable headroom.conf (-c FILE or $HEADROOM_CONFIG); the plugins, "
                         "prices, upstreams and listen checks run once it parses"
            : env      ? "correct or unset the environment variable named (headroomd(8) ENVIRONMENT); the plugins, "
                         "prices, upstreams and listen checks run once it is valid"
                       : "correct the file at the line and column named (headroom.conf(5) documents each directive; "
                         "`headroomd --help-config` lists them); the plugins, prices, upstreams and listen checks "
                         "run once it parses");
        hr_config_free(&cfg);
    }
    if (cfg_ok) check_plugins(&r, &cfg);
    int rc = hr_state_dir_check(NULL, err, sizeof err);
    if (rc) {
        add(&r, "state_root", 0, err, "create the directory with write permission for this user, or set "
                                      "HEADROOM_WORKSPACE_DIR to one");
    } else {
        snprintf(msg, sizeof msg, "state root %s is writable", hr_state_dir());
        add(&r, "state_root", 1, msg, NULL);
    }
    if (cfg_ok) check_prices(&r, &cfg);
    if (hr_tokens_init(err, sizeof err))
        add(&r, "token_tables", 0, err, "set HEADROOM_DATA_DIR to the directory holding o200k_base.tiktoken and "
                                        "cl100k_base.tiktoken, or reinstall headroomd's data");
    else
        add(&r, "token_tables", 1, "o200k_base and cl100k_base loaded: OpenAI token counts are exact", NULL);
    if (cfg_ok) {
        check_url(&r, "openai_api_url", cfg.openai_url);
        check_url(&r, "anthropic_api_url", cfg.anthropic_url);
        check_listen(&r, &cfg);
        check_exposure(&r, &cfg);
        hr_config_free(&cfg);
    }
    hr_log_set_level(level);
    hr_sdk_clear_error();
    return hr_sdk_dump(json_pack("{s:b,s:o,s:o}", "valid", json_array_size(r.issues) == 0, "issues", r.issues,
                                 "checks", r.checks));
}
