/* slow_sink.c — a sink called on the request's thread (HR_SINK_ON_REQUEST_THREAD)
 * that takes `delay_ms` for each event, as a slow durable sink would.
 * GET /slow_sink: how many events it has taken. A test plugin: it shows
 * whether a request is accounted before its client has the answer. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <headroom/plugin.h>
#include "json_reply.h"

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_RANGE("delay_ms", HR_CONF_INT, "200", "time each event takes", 0, 10000),
    HR_CONF_END,
};

struct state {
    long long delay_ms;
    atomic_ullong events;
};

static void on_event(void *st, const struct hr_event *ev)
{
    (void)ev;
    struct state *s = st;
    struct timespec ts = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    atomic_fetch_add(&s->events, 1); /* after the delay: counted when the sink is done with it */
}

static int show(void *st, const struct hr_http_request *req, struct hr_http_response *resp)
{
    (void)req;
    struct state *s = st;
    char *body = NULL;
    int n = asprintf(&body, "{\"events\":%llu}", (unsigned long long)atomic_load(&s->events));
    return json_reply(resp, body, n);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->delay_ms = host->conf_int(conf, "delay_ms");
    *out = s;
    return host->register_route(self, "GET", "/slow_sink", show, s);
}

static void fini(void *st) { free(st); }

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "slow_sink",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "takes delay_ms for each event, on the request's thread (a test plugin)",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .on_event = on_event,
    .sink_flags = HR_SINK_ON_REQUEST_THREAD,
};
