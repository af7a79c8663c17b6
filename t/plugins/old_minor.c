/* old_minor.c — a sink as a plugin author built it against ABI 1.1, before
 * conf keys had bounds and events a wire format: its descriptor and key
 * table have the 1.1 sizes. headroomd 1.2 must load it, read its settings
 * with the 1.1 stride and hand it events; GET /old_minor shows what it got. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "json_reply.h"

/* struct hr_conf_key as 1.0 and 1.1 define it. */
struct conf_key_1_1 {
    const char *name;
    enum hr_conf_type type;
    const char *default_value;
    const char *help;
};

static const struct conf_key_1_1 keys[] = {
    {"greeting", HR_CONF_STRING, "hello", "a string setting"},
    {"limit", HR_CONF_INT, "7", "an int setting after it (read with the wrong stride, it would be garbage)"},
    {"label", HR_CONF_STRING, "old", "a third setting"},
    {NULL, 0, NULL, NULL},
};

struct state {
    const struct hr_host *host;
    const struct hr_conf *conf;
    pthread_mutex_t mu;
    unsigned long events;
    char last_model[64];
};

static int show(void *st, const struct hr_http_request *req, struct hr_http_response *resp)
{
    (void)req;
    struct state *s = st;
    pthread_mutex_lock(&s->mu);
    char *body = NULL;
    int n = asprintf(&body, "{\"greeting\":\"%s\",\"limit\":%lld,\"label\":\"%s\",\"events\":%lu,\"last_model\":\"%s\"}",
                     s->host->conf_string(s->conf, "greeting"), s->host->conf_int(s->conf, "limit"),
                     s->host->conf_string(s->conf, "label"), s->events, s->last_model);
    pthread_mutex_unlock(&s->mu);
    return json_reply(resp, body, n);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->conf = conf;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return host->register_route(self, "GET", "/old_minor", show, s);
}

static void fini(void *st)
{
    struct state *s = st;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void on_event(void *st, const struct hr_event *ev)
{
    struct state *s = st;
    pthread_mutex_lock(&s->mu);
    s->events++;
    snprintf(s->last_model, sizeof s->last_model, "%s", ev->model ? ev->model : "");
    pthread_mutex_unlock(&s->mu);
}

/* The 1.1 descriptor ends with reopen. */
HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    .struct_size = offsetof(struct headroom_plugin, reopen) + sizeof(void (*)(void *)),
    .abi_major = 1,
    .abi_minor = 1,
    .name = "old_minor",
    .kind = HR_PLUGIN_SINK,
    .version = "1.1.0",
    .description = "a sink built against ABI 1.1",
    .conf_keys = (const struct hr_conf_key *)(const void *)keys,
    .init = init,
    .fini = fini,
    .on_event = on_event,
};
