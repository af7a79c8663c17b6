/* setup.c — hr_daemon_setup: where a headroomd started with a config (and
 * the HEADROOM_* variables) listens and keeps its state, read exactly as
 * headroomd reads them, for tools that start or find one (`headroom wrap`). */
#include <stdio.h>
#include <string.h>
#include "sdk.h"
#include "state_dir.h"

char *hr_daemon_setup(const char *config_path)
{
    hr_sdk_clear_error();
    struct hr_config cfg;
    char err[2048], ignored[1024];
    if (hr_sdk_load_config(&cfg, config_path, hr_sdk_address_env, ignored, sizeof ignored, err, sizeof err)) {
        hr_config_free(&cfg);
        hr_sdk_fail(HEADROOM_ECONFIG, "%s", err);
        return NULL;
    }
    /* A wildcard address is reached on loopback; an IPv6 literal in brackets. */
    const char *h = cfg.host && *cfg.host ? cfg.host : "127.0.0.1";
    if (!strcmp(h, "0.0.0.0")) h = "127.0.0.1";
    else if (!strcmp(h, "::")) h = "::1";
    char url[400];
    snprintf(url, sizeof url, strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h, cfg.port);
    json_t *o = json_pack("{s:s,s:i,s:s,s:s,s:i}", "host", cfg.host ? cfg.host : "", "port", cfg.port, "url", url,
                          "state_root", hr_state_dir(), "shutdown_timeout", cfg.shutdown_timeout_s);
    /* Not where it listens, but a headroomd started here would refuse it. */
    if (o && *ignored) json_object_set_new(o, "env_error", json_string(ignored));
    hr_config_free(&cfg);
    return hr_sdk_dump(o);
}
