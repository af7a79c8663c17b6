/* timer_store.c — a sink that stores originals from a timer (the
 * housekeeping thread, not a worker's), as a plugin batching retrievable
 * data off the request path would. With backend redis each store wakes
 * every worker's loop to send it; the housekeeping thread outlives the
 * workers at shutdown (joined after them), so its stores keep coming while
 * the main thread frees the workers' wake events. GET /timer_store: how
 * many it stored. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "json_reply.h"

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_RANGE("per_tick", HR_CONF_INT, "200", "originals stored per timer tick", 1, 100000),
    HR_CONF_END,
};

struct state {
    const struct hr_host *host;
    long long per_tick;
    atomic_ullong stored, failed;
};

/* Every tick stores per_tick originals no store has seen yet. */
static void tick(void *st)
{
    struct state *s = st;
    char data[96], hash[HR_CCR_HASH_LEN + 1];
    for (long long i = 0; i < s->per_tick; i++) {
        unsigned long long k = atomic_fetch_add(&s->stored, 1);
        int n = snprintf(data, sizeof data, "timer_store original %llu: a line a plugin keeps for retrieval", k);
        if (s->host->ccr_put(data, (size_t)n, hash) != HR_OK) atomic_fetch_add(&s->failed, 1);
    }
}

static int show(void *st, const struct hr_http_request *req, struct hr_http_response *resp)
{
    (void)req;
    struct state *s = st;
    char *body = NULL;
    int n = asprintf(&body, "{\"stored\":%llu,\"failed\":%llu}", (unsigned long long)atomic_load(&s->stored),
                     (unsigned long long)atomic_load(&s->failed));
    return json_reply(resp, body, n);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->per_tick = host->conf_int(conf, "per_tick");
    *out = s;
    int rc = host->register_route(self, "GET", "/timer_store", show, s);
    return rc ? rc : host->add_timer(self, 1, tick, s);
}

static void fini(void *st) { free(st); }

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "timer_store",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "stores originals from a housekeeping timer (a test plugin)",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
};
