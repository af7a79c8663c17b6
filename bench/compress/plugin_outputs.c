/* bench/compress/plugin_outputs.c — what a build's router and smart_crusher
 * make of input files, printed so two builds can be compared byte for byte
 * (bench/compress/same_output.sh): each file becomes one tool output of an
 * OpenAI request, under several queries and max_items, and goes through the
 * plugin .so files of the build given (t/fake_host.c is the host: tokens are
 * bytes / 4, the CCR hash is its own). Each case runs twice, the second time
 * from smart_crusher's result cache, and both must agree.
 * Usage: plugin_outputs PLUGIN_DIR FILE... */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "fake_host.h"
#include "slurp.h"

static const struct headroom_plugin *load(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const struct headroom_plugin *p = h ? dlsym(h, "headroom_plugin") : NULL;
    if (!p) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        exit(2);
    }
    return p;
}

struct run {
    enum hr_content_type type;
    char tag[1024];
    char *text; /* the unit after both plugins, NULL when unchanged */
    size_t len;
};

static void run_case(const struct headroom_plugin *const pl[2], void *const st[2], const char *text, size_t len,
                     const char *query, struct run *out)
{
    json_t *s = json_stringn(text, len);
    json_t *body = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:o}]}", "model", "gpt-4o", "messages", "role", "user",
                             "content", query, "role", "tool", "tool_call_id", "c1", "content", s);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, query);
    json_decref(body);
    out->tag[0] = '\0';
    for (int k = 0; k < 2; k++) {
        r.tag[0] = '\0';
        if (pl[k]->apply(st[k], &r.req) != HR_OK) {
            fprintf(stderr, "%s failed\n", pl[k]->name);
            exit(1);
        }
        snprintf(out->tag + strlen(out->tag), sizeof out->tag - strlen(out->tag), "%s%s", k ? " | " : "", r.tag);
        if (k == 0)
            out->type = r.units[0].type;
    }
    out->text = NULL;
    if (r.replaced) {
        out->len = r.units[0].len;
        out->text = malloc(out->len + 1);
        memcpy(out->text, r.units[0].text, out->len + 1);
    }
    fh_request_free(&r);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PLUGIN_DIR FILE...\n", argv[0]);
        return 2;
    }
    static const char *const queries[] = {"", "why did payment fail", "retry backoff connection pool",
                                          "latency spikes on web-03", "error timeout", "suspended users"};
    static const char *const max_items[] = {"15", "5"};
    const struct headroom_plugin *pl[2] = {load(argv[1], "router"), load(argv[1], "smart_crusher")};
    static struct hr_instance inst[2] = {{"router"}, {"smart_crusher"}};
    fh_set_log_level(HR_LOG_ERROR);
    for (size_t m = 0; m < sizeof max_items / sizeof *max_items; m++) {
        void *st[2] = {NULL, NULL};
        struct hr_conf conf[2];
        fh_conf(&conf[0], pl[0]->conf_keys, NULL);
        fh_conf(&conf[1], pl[1]->conf_keys, "max_items", max_items[m], "min_tokens", "0", NULL);
        for (int k = 0; k < 2; k++)
            if (pl[k]->init(fh_host(), &inst[k], &conf[k], &st[k]) != HR_OK) {
                fprintf(stderr, "%s: init failed\n", pl[k]->name);
                return 1;
            }
        for (int f = 2; f < argc; f++) {
            size_t len;
            char *text = slurp(argv[f], &len);
            if (!text) {
                fprintf(stderr, "cannot read %s\n", argv[f]);
                return 2;
            }
            const char *name = strrchr(argv[f], '/') ? strrchr(argv[f], '/') + 1 : argv[f];
            json_t *probe = json_stringn(text, len);
            if (!probe) { /* not UTF-8, or a NUL inside: never a unit's text */
                printf("== %s: not a string a request can carry\n", name);
                free(text);
                continue;
            }
            json_decref(probe);
            for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
                struct run a, b;
                run_case(pl, st, text, len, queries[q], &a);
                run_case(pl, st, text, len, queries[q], &b); /* from the result caches */
                printf("== %s max_items=%s query=\"%s\" type=%d tag=%s\n", name, max_items[m], queries[q], a.type,
                       a.tag);
                if (a.type != b.type || !a.text != !b.text ||
                    (a.text && (a.len != b.len || memcmp(a.text, b.text, a.len)))) {
                    printf("!! the cached run differs\n");
                    fprintf(stderr, "%s: the cached run differs\n", name);
                }
                if (a.text) {
                    fwrite(a.text, 1, a.len, stdout);
                    putchar('\n');
                } else {
                    printf("(unchanged)\n");
                }
                free(a.text);
                free(b.text);
            }
            free(text);
        }
        for (int k = 0; k < 2; k++) {
            fh_drop_stats(st[k]);
            pl[k]->fini(st[k]);
        }
        fh_reset();
    }
    return 0;
}
