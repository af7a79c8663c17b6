/* main.c — headroomd: settings from defaults, the config file, HEADROOM_*
 * variables and flags (in that order of strength), then plugins, sinks,
 * workers, and a signal loop for clean shutdown. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include "bg_thread.h"
#include "budget.h"
#include "ccr.h"
#include "fleet.h"
#include "cost.h"
#include "ratelimit.h"
#include "respcache.h"
#include "config.h"
#include "crash.h"
#include "daemon.h"
#include "host.h"
#include "log.h"
#include "json_pool.h"
#include "mem_trim.h"
#include "par.h"
#include "reload.h"
#include "sdnotify.h"
#include "sinks.h"
#include "state_dir.h"
#include "exporter.h"
#include "stats.h"
#include "telemetry.h"
#include "tokens.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#define LOGGER "headroom.server"

enum {
    OPT_HOST = 256, OPT_PORT, OPT_WORKERS, OPT_OPENAI, OPT_ANTHROPIC, OPT_PLUGIN_DIR, OPT_LOG_LEVEL, OPT_LOG_FILE,
    OPT_LOG_MESSAGES, OPT_NO_OPTIMIZE, OPT_CHECK, OPT_HELP_CONFIG, OPT_BUDGET, OPT_BUDGET_PERIOD, OPT_TELEMETRY,
    OPT_NO_TELEMETRY, OPT_NO_CACHE, OPT_NO_RATE_LIMIT,
    OPT_RATE_LIMIT_RPM, OPT_RATE_LIMIT_TPM, OPT_TELEMETRY_PREVIEW,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"openai-api-url", required_argument, NULL, OPT_OPENAI},
    {"anthropic-api-url", required_argument, NULL, OPT_ANTHROPIC},
    {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"log-messages", no_argument, NULL, OPT_LOG_MESSAGES},
    {"no-optimize", no_argument, NULL, OPT_NO_OPTIMIZE},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
    {"budget", required_argument, NULL, OPT_BUDGET},
    {"budget-period", required_argument, NULL, OPT_BUDGET_PERIOD},
    {"telemetry", no_argument, NULL, OPT_TELEMETRY},
    {"no-telemetry", no_argument, NULL, OPT_NO_TELEMETRY},
    {"telemetry-preview", no_argument, NULL, OPT_TELEMETRY_PREVIEW},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"no-rate-limit", no_argument, NULL, OPT_NO_RATE_LIMIT},
    {"rate-limit-rpm", required_argument, NULL, OPT_RATE_LIMIT_RPM},
    {"rate-limit-tpm", required_argument, NULL, OPT_RATE_LIMIT_TPM},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: headroomd [-c FILE] [options]\n"
            "A local proxy for OpenAI and Anthropic APIs that compresses tool outputs and reports the savings.\n\n"
            "  -c, --config FILE          config file (see headroom.conf(5))\n"
            "      --host ADDR            listen address (default 127.0.0.1)\n"
            "      --port N               listen port (default 8787)\n"
            "      --workers N|auto       worker threads (default auto: one per core)\n"
            "      --openai-api-url URL   OpenAI base URL (default https://api.openai.com)\n"
            "      --anthropic-api-url URL  Anthropic base URL (default https://api.anthropic.com)\n"
            "      --plugin-dir DIR       where plugin .so files are\n"
            "      --log-level LEVEL      error, warn, info or debug (default info)\n"
            "      --log-file FILE        JSONL request log (request_log sink)\n"
            "      --log-messages         include message bodies in the request log\n"
            "      --no-optimize          passthrough: forward requests unchanged\n"
            "      --budget USD           spend limit per budget period, then 429 on model routes (default none)\n"
            "      --budget-period P      hourly, daily, weekly (from Monday) or monthly, UTC (default daily)\n"
            "      --telemetry            send the anonymous usage beacon (aggregate counts; default off)\n"
            "      --no-telemetry         never send it, whatever the file or HEADROOM_TELEMETRY say\n"
            "      --telemetry-preview    print the beacon report this process would send now, and exit\n"
            "      --no-cache             response cache off, even if the file sets cache or cache_ttl\n"
            "      --rate-limit-rpm N     requests per minute per API key, then 429 (default: no limit)\n"
            "      --rate-limit-tpm N     input tokens per minute per API key, then 429 (default: no limit)\n"
            "      --no-rate-limit        rate limit off, whatever the file or the other flags set\n"
            "      --check-config         parse the config, load plugins, check their settings (without\n"
            "                             starting them), report, exit 0 or 1\n"
            "      --help-config          list config directives\n"
            "  -V, --version              print the version\n"
            "  -h, --help                 this help\n\n"
            "Flags override the config file; HEADROOM_* variables override the file too.\n");
}

struct flag {
    int opt;
    const char *arg;
};

/* Apply one flag on top of file and environment. */
static int apply_flag(struct hr_config *c, const struct flag *f, char *err, size_t errlen)
{
    long long v;
    char why[512];
    char *u;
    int lv;
    switch (f->opt) {
    case OPT_HOST: free(c->host); c->host = strdup(f->arg); return 0;
    case OPT_PORT:
        if (hr_parse_int(f->arg, 0, 65535, &v)) break;
        c->port = (int)v;
        return 0;
    case OPT_WORKERS:
        if (!strcmp(f->arg, "auto")) { c->workers = 0; return 0; }
        if (hr_parse_int(f->arg, 1, 256, &v)) break;
        c->workers = (int)v;
        return 0;
    case OPT_OPENAI:
    case OPT_ANTHROPIC:
        if (hr_parse_url(f->arg, &u, why, sizeof why)) {
            snprintf(err, errlen, "--%s: %s", f->opt == OPT_OPENAI ? "openai-api-url" : "anthropic-api-url", why);
            return -EINVAL;
        }
        if (f->opt == OPT_OPENAI) { free(c->openai_url); c->openai_url = u; }
        else { free(c->anthropic_url); c->anthropic_url = u; }
        return 0;
    case OPT_PLUGIN_DIR: free(c->plugin_dir); c->plugin_dir = strdup(f->arg); return 0;
    case OPT_LOG_LEVEL:
        if ((lv = hr_log_level_parse(f->arg)) < 0) break;
        c->log_level = lv;
        return 0;
    case OPT_LOG_FILE: free(c->log_file); c->log_file = strdup(f->arg); return 0;
    case OPT_LOG_MESSAGES: c->log_messages = 1; return 0;
    case OPT_NO_OPTIMIZE: c->no_optimize = 1; return 0;
    case OPT_BUDGET: {
        char *end;
        double b = strtod(f->arg, &end);
        if (*end || !(b >= 0)) break;
        c->budget_usd = b;
        return 0;
    }
    case OPT_BUDGET_PERIOD:
        if (hr_budget_period_parse(f->arg) < 0) break;
        free(c->budget_period);
        c->budget_period = strdup(f->arg);
        return 0;
    case OPT_TELEMETRY: if (c->telemetry != 0) c->telemetry = 1; return 0; /* --no-telemetry always wins */
    case OPT_NO_TELEMETRY: c->telemetry = 0; return 0;
    case OPT_NO_CACHE: c->no_cache = 1; return 0;
    case OPT_NO_RATE_LIMIT: c->no_rate_limit = 1; return 0;
    case OPT_RATE_LIMIT_RPM:
    case OPT_RATE_LIMIT_TPM:
        if (hr_parse_int(f->arg, 0, 1 << 30, &v)) {
            snprintf(err, errlen, "invalid value '%s' for --rate-limit-%s (expected a whole number from 0 to %d; 0 = no limit)",
                     f->arg, f->opt == OPT_RATE_LIMIT_RPM ? "rpm" : "tpm", 1 << 30);
            return -EINVAL;
        }
        if (f->opt == OPT_RATE_LIMIT_RPM) c->rate_limit_rpm = (int)v;
        else c->rate_limit_tpm = (int)v;
        return 0;
    }
    const char *hint = f->opt == OPT_LOG_LEVEL       ? "error, warn, info or debug"
                       : f->opt == OPT_WORKERS       ? "auto or 1-256"
                       : f->opt == OPT_PORT          ? "0-65535"
                       : f->opt == OPT_BUDGET_PERIOD ? "hourly, daily, weekly or monthly"
                                                     : "a number";
    snprintf(err, errlen, "invalid value '%s' for %s (expected %s)", f->arg,
             f->opt == OPT_PORT ? "--port" : f->opt == OPT_WORKERS ? "--workers" : f->opt == OPT_LOG_LEVEL ? "--log-level"
             : f->opt == OPT_BUDGET_PERIOD ? "--budget-period" : "--budget",
             hint);
    return -EINVAL;
}

/* Defaults, then the file, HEADROOM_* variables and flags: at start and
 * again on SIGHUP. */
static int load_config(struct hr_config *c, const char *conf_path, const struct flag *flags, size_t n_flags, char *err,
                       size_t errlen)
{
    int rc = 0;
    if (conf_path && hr_config_apply_file(c, conf_path, err, errlen)) rc = -1;
    if (!rc && hr_config_apply_env(c, err, errlen)) rc = -1;
    for (size_t i = 0; !rc && i < n_flags; i++)
        if (apply_flag(c, &flags[i], err, errlen)) rc = -1;
    if (!rc && hr_config_validate(c, err, errlen)) rc = -1;
    if (!rc && hr_config_add_request_log(c, err, errlen)) rc = -1;
    if (!rc && hr_telemetry_setup(c, err, errlen)) rc = -1;
    return rc;
}

/* SIGHUP: read the config again and apply what can change while running. */
static void reload(struct hr_daemon *d, const char *conf_path, const struct flag *flags, size_t n_flags)
{
    char err[2048];
    struct hr_config fresh;
    hr_sd_reloading();
    hr_config_defaults(&fresh);
    if (load_config(&fresh, conf_path, flags, n_flags, err, sizeof err) || hr_reload_apply(d, &fresh, err, sizeof err))
        HR_ERROR(LOGGER, "reload failed, still running with the previous settings: %s", err);
    hr_config_free(&fresh);
    hr_sd_ready("serving");
}

static pthread_mutex_t hk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_cond = PTHREAD_COND_INITIALIZER;
static int hk_stop;

/* Housekeeping: plugin timers, off the request path. */
static void *housekeeping(void *arg)
{
    (void)arg;
    hr_thread_name("housekeep");
    pthread_mutex_lock(&hk_lock);
    while (!hk_stop) {
        pthread_mutex_unlock(&hk_lock);
        double now = hr_monotonic_ms();
        unsigned wait_ms = hr_timers_run(now);
        hr_mem_trim_tick(now);
        if (wait_ms > 1000) wait_ms = 1000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&hk_lock);
        if (!hk_stop) pthread_cond_timedwait(&hk_cond, &hk_lock, &ts);
    }
    pthread_mutex_unlock(&hk_lock);
    return NULL;
}

/* Leak-free early exits: sanitizer and valgrind runs treat a leak as failure
 * (and LeakSanitizer's exit drops buffered stdout, e.g. --version's line). */
static int early_exit(struct hr_config *c, struct flag *flags, int code)
{
    free(flags);
    hr_config_free(c);
    return code;
}

int main(int argc, char **argv)
{
    hr_mem_init(); /* before the first thread */
    hr_json_pool_install(); /* before the first jansson value */
    struct hr_config cfg;
    hr_config_defaults(&cfg);
    const char *conf_path = getenv("HEADROOM_CONFIG");
    struct flag *flags = calloc((size_t)argc + 1, sizeof *flags);
    size_t n_flags = 0;
    int check_only = 0, preview = 0, opt;
    char err[2048];
    while ((opt = getopt_long(argc, argv, "c:Vh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'V': printf("headroomd %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, HR_ABI_MAJOR, HR_ABI_MINOR); return early_exit(&cfg, flags, 0);
        case 'h': usage(stdout); return early_exit(&cfg, flags, 0);
        case OPT_CHECK: check_only = 1; break;
        case OPT_TELEMETRY_PREVIEW: preview = 1; break;
        case OPT_HELP_CONFIG: hr_config_print_directives(stdout); return early_exit(&cfg, flags, 0);
        case '?': fprintf(stderr, "Try 'headroomd --help'.\n"); return early_exit(&cfg, flags, 2);
        default: flags[n_flags++] = (struct flag){opt, optarg}; break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "headroomd: unexpected argument '%s' (the config file goes after -c)\n", argv[optind]);
        return early_exit(&cfg, flags, 2);
    }
    if (load_config(&cfg, conf_path, flags, n_flags, err, sizeof err)) {
        fprintf(stderr, "headroomd: %s\n", err);
        return early_exit(&cfg, flags, 1);
    }
    hr_log_set_level(cfg.log_level);
    if (hr_tokens_init(err, sizeof err)) HR_WARN("headroom.tokens", "%s; token counts are estimates", err);
    if (hr_cost_init(&cfg, check_only, err, sizeof err)) { /* price table and budget */
        fprintf(stderr, "headroomd: %s\n", err);
        hr_cost_shutdown();
        return early_exit(&cfg, flags, 1);
    }
    if (preview) { /* the payload from this process's state; nothing is sent */
        hr_stats_init(1, NULL, 0);
        int rc = hr_telemetry_preview(&cfg, stdout, err, sizeof err);
        if (rc) fprintf(stderr, "headroomd: --telemetry-preview: %s\n", err);
        hr_stats_shutdown();
        hr_cost_shutdown();
        return early_exit(&cfg, flags, rc ? 1 : 0);
    }

    struct hr_daemon d = {.cfg = &cfg, .listen_fd = -1};
    if (hr_plugins_load(&cfg, &d.plugins, err, sizeof err)) {
        fprintf(stderr, "headroomd: %s\n", err);
        hr_cost_shutdown();
        return early_exit(&cfg, flags, 1);
    }
    if (check_only) {
        /* Every key was checked against its declared type, bounds and
         * required flag while loading; init is not run, so the check
         * creates no files, binds no ports and starts no threads. */
        if (hr_state_dir_check(NULL, err, sizeof err)) { /* the daemon could not keep budget, savings, metrics */
            fprintf(stderr, "headroomd: %s\n", err);
            hr_cost_shutdown();
            hr_plugins_unload(&d.plugins);
            hr_host_registries_free();
            hr_config_free(&cfg);
            return 1;
        }
        printf("%s: OK\n", cfg.file ? cfg.file : "(no config file)");
        printf("listen %s:%d, workers %s, openai %s, anthropic %s\n", cfg.host, cfg.port,
               cfg.workers ? "fixed" : "auto", cfg.openai_url, cfg.anthropic_url);
        hr_plugins_describe(&d.plugins, stdout);
        hr_cost_describe(stdout);
        if (cfg.backend_url)
            printf("shared state in Redis at %s:%d/%d, prefix %s, timeout_ms %d, on_backend_error %s (not contacted)\n",
                   cfg.backend_host, cfg.backend_port, cfg.backend_db, cfg.backend_prefix, cfg.backend_timeout_ms,
                   cfg.backend_fail_closed ? "closed" : "open");
        hr_cost_shutdown();
        hr_plugins_unload(&d.plugins);
        hr_host_registries_free();
        return early_exit(&cfg, flags, 0);
    }
    if (!conf_path) HR_INFO(LOGGER, "no config file (-c): running with defaults%s", cfg.n_plugins ? "" : " and no plugins");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d.n_workers = cfg.workers ? (size_t)cfg.workers : (size_t)(cores > 0 ? cores : 1);
    d.popts = (struct hr_pipeline_opts){.min_tokens = cfg.min_tokens,
                                        .protect_recent = cfg.protect_recent,
                                        .protected_tools = cfg.protected_tools,
                                        .n_protected_tools = cfg.n_protected_tools,
                                        .stage_budget_ms = (double)cfg.stage_budget_ms};
    const char **stage_names = calloc(d.plugins.n_transforms + 1, sizeof *stage_names);
    for (size_t i = 0; i < d.plugins.n_transforms; i++) stage_names[i] = d.plugins.transforms[i]->name;
    hr_stats_init(d.n_workers, stage_names, d.plugins.n_transforms);
    hr_stats_set_passthrough(cfg.no_optimize);
    free(stage_names);
    hr_ccr_init_memory(cfg.ccr_max_bytes, (unsigned)cfg.ccr_ttl_s);
    hr_cost_start_flusher();
    hr_respcache_setup(&cfg);
    hr_ratelimit_setup(&cfg);
    hr_fleet_setup(&cfg, err, sizeof err);

    /* Signals go to the main thread only: block them before threads start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit fails the write (counted), it does not kill the daemon */
    hr_crash_install(); /* a plugin that crashes is named */

    int exit_code = 1;
    pthread_t hk = 0;
    size_t compress_threads = cfg.compress_threads ? (size_t)cfg.compress_threads : (size_t)(cores > 0 ? cores : 1);
    if (hr_par_start((unsigned)compress_threads - 1))
        HR_WARN(LOGGER, "cannot start compression helper threads: large requests are compressed by their worker alone");
    if (hr_plugins_init(&d.plugins, &hr_host_table, err, sizeof err)) {
        HR_ERROR(LOGGER, "%s", err);
        goto out;
    }
    if (hr_sinks_start(&d.plugins, (size_t)cfg.sink_queue_size)) {
        HR_ERROR(LOGGER, "cannot start sink threads");
        goto out_sinks;
    }
    if (hr_server_start(&d, err, sizeof err)) {
        HR_ERROR(LOGGER, "%s", err);
        hr_server_stop(&d);
        goto out_sinks;
    }
    pthread_create(&hk, NULL, housekeeping, NULL);
    struct event_base **bases = calloc(d.n_workers, sizeof *bases);
    for (size_t i = 0; bases && i < d.n_workers; i++) bases[i] = d.workers[i].base;
    if (bases && hr_watchdog_start(bases, d.n_workers)) HR_WARN(LOGGER, "cannot start the systemd watchdog thread");
    HR_INFO(LOGGER, "headroomd %s listening on http://%s:%d (%zu workers, %u compression helpers, %zu transforms, %zu sinks%s)",
            PACKAGE_VERSION, cfg.host, d.port, d.n_workers, hr_par_helpers(), d.plugins.n_transforms, d.plugins.n_sinks,
            cfg.no_optimize ? ", passthrough" : "");
    hr_sd_ready("serving");
    for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig == SIGHUP) {
            HR_INFO(LOGGER, "SIGHUP received: reloading the config, reopening sink files");
            reload(&d, conf_path, flags, n_flags);
            for (size_t i = 0; i < d.plugins.n_sinks; i++) {
                const struct hr_instance *in = d.plugins.sinks[i];
                if (HR_HAS_FIELD(in->desc, struct headroom_plugin, reopen) && in->desc->reopen)
                    in->desc->reopen(in->state);
            }
            continue;
        }
        HR_INFO(LOGGER, "%s received: draining (up to shutdown_timeout %d s; a second signal exits at once)",
                sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_timeout_s);
        break;
    }
    hr_sd_stopping("shutting down");
    if (hr_server_drain(&d, &sigs)) _exit(1); /* the watchdog keeps pinging while requests drain */
    hr_watchdog_stop();
    free(bases);
    hr_server_stop(&d);
    pthread_mutex_lock(&hk_lock);
    hk_stop = 1;
    pthread_cond_signal(&hk_cond);
    pthread_mutex_unlock(&hk_lock);
    pthread_join(hk, NULL);
    exit_code = 0;
out_sinks:
    hr_sinks_stop();
    hr_timers_run_all(); /* last flush of what timers batch */
out:
    hr_par_stop();
    hr_plugins_unload(&d.plugins);
    hr_exporters_shutdown(); /* after the sinks' fini: their last exports go out */
    hr_host_registries_free();
    hr_cost_shutdown(); /* writes the budget's last spend */
    hr_ccr_shutdown();
    hr_respcache_shutdown();
    hr_ratelimit_shutdown();
    hr_fleet_shutdown();
    hr_stats_shutdown();
    curl_global_cleanup();
    hr_config_free(&cfg);
    free(flags);
    HR_INFO(LOGGER, "stopped");
    return exit_code;
}
