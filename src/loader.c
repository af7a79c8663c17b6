/* loader.c — finds plugin .so files, refuses ABI mismatches with a message
 * naming both versions and the file, and validates config blocks against the
 * keys each plugin declares. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "loader.h"
#include "uninstalled.h"

/* The v1.0 descriptor ends with on_event: anything smaller is not a plugin. */
#define MIN_DESCRIPTOR_SIZE (offsetof(struct headroom_plugin, on_event) + sizeof(void (*)(void)))

const char *hr_default_plugin_dir(void)
{
#ifdef HR_ABS_BUILDDIR
    if (hr_running_uninstalled()) return HR_ABS_BUILDDIR "/plugins/.libs"; /* the freshly built plugins */
#endif
#ifdef HR_PKGLIBDIR
    return HR_PKGLIBDIR;
#else
    return "/usr/local/lib/headroomd";
#endif
}

static const char *type_name(enum hr_conf_type t)
{
    switch (t) {
    case HR_CONF_INT: return "a whole number";
    case HR_CONF_BOOL: return "yes or no";
    case HR_CONF_DOUBLE: return "a number";
    default: return "a string";
    }
}

/* "must be at least 0", "must be from 1 to 60" for an error message. */
static void describe_bounds(const struct hr_conf_key *k, char *out, size_t outlen)
{
    int lo = (k->flags & HR_CONF_MIN) != 0, hi = (k->flags & HR_CONF_MAX) != 0;
    if (lo && hi) snprintf(out, outlen, "from %g to %g", k->min, k->max);
    else if (lo) snprintf(out, outlen, "at least %g", k->min);
    else snprintf(out, outlen, "at most %g", k->max);
}

/* 0, -EINVAL for the wrong type, -ERANGE for a value out of the key's bounds. */
static int check_value(const struct hr_conf_key *k, const char *v)
{
    long long i;
    int b;
    char *end;
    double x;
    switch (k->type) {
    case HR_CONF_INT:
        if (hr_parse_int(v, -(1LL << 62), 1LL << 62, &i)) return -EINVAL;
        x = (double)i;
        break;
    case HR_CONF_BOOL: return hr_parse_bool(v, &b);
    case HR_CONF_DOUBLE:
        x = strtod(v, &end);
        if (!*v || *end) return -EINVAL;
        break;
    default: return 0;
    }
    if (((k->flags & HR_CONF_MIN) && x < k->min) || ((k->flags & HR_CONF_MAX) && x > k->max)) return -ERANGE;
    return 0;
}

/* The 1.0/1.1 layout of struct hr_conf_key: the stride of key tables in
 * plugins built before 1.2. */
struct conf_key_1_0 {
    const char *name;
    enum hr_conf_type type;
    const char *default_value;
    const char *help;
};

/* The plugin's key table in the current layout, owned by the host. */
static struct hr_conf_key *copy_keys(const struct headroom_plugin *d, size_t *n_out)
{
    const struct conf_key_1_0 *old = (const void *)d->conf_keys;
    int current = d->abi_minor >= 2;
    size_t n = 0;
    if (d->conf_keys)
        while (current ? d->conf_keys[n].name != NULL : old[n].name != NULL) n++;
    struct hr_conf_key *keys = calloc(n + 1, sizeof *keys);
    if (!keys) return NULL;
    for (size_t i = 0; i < n; i++)
        keys[i] = current ? d->conf_keys[i]
                          : (struct hr_conf_key){old[i].name, old[i].type, old[i].default_value, old[i].help, 0, 0, 0};
    *n_out = n;
    return keys;
}

static int bind_conf(struct hr_instance *in, const struct hr_plugin_block *blk, const char *file, char *err, size_t errlen)
{
    size_t n = 0;
    struct hr_conf_key *keys = copy_keys(in->desc, &n);
    if (!keys) return -ENOMEM;
    in->conf.keys = keys;
    in->conf.n_keys = n;
    in->conf.values = calloc(n ? n : 1, sizeof(char *));
    if (!in->conf.values) return -ENOMEM;
    const struct hr_conf_node *node = blk->node;
    for (size_t i = 0; i < node->n_children; i++) {
        const struct hr_conf_node *c = &node->children[i];
        size_t k = 0;
        while (k < n && strcmp(keys[k].name, c->name)) k++;
        if (k == n) {
            int len = snprintf(err, errlen, "%s:%d:%d: %s %s has no setting '%s'; it accepts:", file, c->line, c->col,
                               blk->is_sink ? "sink" : "transform", blk->name, c->name);
            for (size_t j = 0; j < n && len > 0 && (size_t)len < errlen; j++)
                len += snprintf(err + len, errlen - (size_t)len, " %s", keys[j].name);
            if (n == 0 && len > 0 && (size_t)len < errlen) snprintf(err + len, errlen - (size_t)len, " no settings");
            return -EINVAL;
        }
        if (c->has_block || c->n_args != 1) {
            snprintf(err, errlen, "%s:%d:%d: '%s' takes exactly one value (%s)", file, c->line, c->col, c->name,
                     type_name(keys[k].type));
            return -EINVAL;
        }
        int rc = check_value(&keys[k], c->args[0]);
        if (rc == -ERANGE) {
            char bounds[96];
            describe_bounds(&keys[k], bounds, sizeof bounds);
            snprintf(err, errlen, "%s:%d:%d: %s %s: %s: '%s' must be %s (%s)", file, c->arg_lines[0],
                     c->arg_cols[0], blk->is_sink ? "sink" : "transform", blk->name, c->name, c->args[0], bounds,
                     keys[k].help ? keys[k].help : "see --check-config");
            return -EINVAL;
        }
        if (rc) { /* the block and what the value is, as for a bound */
            snprintf(err, errlen, "%s:%d:%d: %s %s: %s: '%s' must be %s (%s)", file, c->arg_lines[0], c->arg_cols[0],
                     blk->is_sink ? "sink" : "transform", blk->name, c->name, c->args[0], type_name(keys[k].type),
                     keys[k].help ? keys[k].help : "see --check-config");
            return -EINVAL;
        }
        free(in->conf.values[k]);
        in->conf.values[k] = strdup(c->args[0]);
    }
    for (size_t k = 0; k < n; k++) {
        if ((keys[k].flags & HR_CONF_REQUIRED) && !in->conf.values[k]) {
            snprintf(err, errlen, "%s:%d:%d: %s %s needs '%s' set (%s)", file, node->line, node->col,
                     blk->is_sink ? "sink" : "transform", blk->name, keys[k].name, keys[k].help ? keys[k].help : "");
            return -EINVAL;
        }
    }
    return 0;
}

static void free_instance(struct hr_instance *in)
{
    if (!in) return;
    if (in->conf.values)
        for (size_t i = 0; i < in->conf.n_keys; i++) free(in->conf.values[i]);
    free(in->conf.values);
    free((void *)in->conf.keys);
    if (in->handle) lt_dlclose((lt_dlhandle)in->handle);
    free(in->path);
    free(in->name);
    free(in->logger);
    free(in->where);
    free(in->label);
    free(in);
}

/* The plugin in dir whose name is most like `name` (a typo in the config),
 * into out; 0 when none is near. */
static int closest_plugin(const char *dir, const char *name, char *out, size_t outlen)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t best = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 3 || strcmp(de->d_name + n - 3, ".so")) continue;
        size_t like = hr_name_likeness(de->d_name, name);
        if (like > best && like >= HR_NAME_LIKE && n - 3 < outlen) {
            best = like;
            memcpy(out, de->d_name, n - 3);
            out[n - 3] = '\0';
        }
    }
    closedir(d);
    return best > 0;
}

static struct hr_instance *open_plugin(const char *dir, const struct hr_plugin_block *blk, const char *file,
                                       char *err, size_t errlen)
{
    const char *kind = blk->is_sink ? "sink" : "transform";
    struct hr_instance *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    size_t plen = strlen(dir) + strlen(blk->name) + 8;
    in->path = malloc(plen);
    snprintf(in->path, plen, "%s/%s.so", dir, blk->name);
    if (access(in->path, R_OK) != 0) {
        int e = errno;
        char near[128];
        if (e == ENOENT && closest_plugin(dir, blk->name, near, sizeof near))
            snprintf(err, errlen, "%s:%d:%d: %s '%s': no plugin file %s; did you mean '%s'? (or set plugin_dir or "
                     "--plugin-dir to the directory holding %s.so)", file, blk->node->line, blk->node->col, kind,
                     blk->name, in->path, near, blk->name);
        else
            snprintf(err, errlen, "%s:%d:%d: %s '%s': no plugin file %s (%s); set plugin_dir or --plugin-dir to the directory holding %s.so",
                     file, blk->node->line, blk->node->col, kind, blk->name, in->path, strerror(e), blk->name);
        goto fail;
    }
    /* libltdl says "file not found" for any dlopen failure (a file that is
     * not a shared object, a missing library), and binds lazily: a plugin
     * calling a function nothing defines passed --check-config and took
     * headroomd down on its first call. Opening it with RTLD_NOW first
     * resolves every symbol now and keeps the loader's own reason. */
    void *probe = dlopen(in->path, RTLD_NOW | RTLD_LOCAL);
    if (!probe) {
        const char *why = dlerror();
        size_t plen = strlen(in->path);
        if (why && !strncmp(why, in->path, plen) && !strncmp(why + plen, ": ", 2)) why += plen + 2; /* named already */
        snprintf(err, errlen, "%s: cannot load: %s%s", in->path, why ? why : "unknown error",
                 why && strstr(why, "undefined symbol")
                     ? " (the plugin uses it, and neither it, the libraries it links, nor headroomd define it: "
                       "link its library, or fix the name)"
                     : "");
        goto fail;
    }
    in->handle = lt_dlopen(in->path);
    dlclose(probe); /* the object stays loaded through in->handle */
    if (!in->handle) {
        snprintf(err, errlen, "%s: cannot load: %s", in->path, lt_dlerror());
        goto fail;
    }
    const struct headroom_plugin *d = lt_dlsym((lt_dlhandle)in->handle, HEADROOM_PLUGIN_SYMBOL);
    if (!d) {
        snprintf(err, errlen, "%s: not a headroomd plugin (no '%s' symbol; export it with HR_PLUGIN_EXPORT)", in->path,
                 HEADROOM_PLUGIN_SYMBOL);
        goto fail;
    }
    /* A descriptor without HR_PLUGIN_HEADER has all three zero: rebuilding
     * would not help, the header line would. */
    if (d->abi_major == 0 && d->struct_size == 0) {
        snprintf(err, errlen, "%s: descriptor has no ABI version (struct_size 0, ABI 0.0); start it with "
                 "HR_PLUGIN_HEADER", in->path);
        goto fail;
    }
    if (d->abi_major != HR_ABI_MAJOR) {
        snprintf(err, errlen, "%s: plugin ABI %u.%u does not match headroomd plugin ABI %d.%d; rebuild the plugin against this headroomd's headroom/plugin.h",
                 in->path, d->abi_major, d->abi_minor, HR_ABI_MAJOR, HR_ABI_MINOR);
        goto fail;
    }
    /* A newer minor may lay out its tables (conf keys) in a way this host
     * cannot read: refuse it rather than misread its settings. */
    if (d->abi_minor > HR_ABI_MINOR) {
        snprintf(err, errlen, "%s: plugin built for ABI %u.%u, newer than this headroomd's %d.%d; upgrade headroomd or rebuild the plugin against this headroomd's headroom/plugin.h",
                 in->path, d->abi_major, d->abi_minor, HR_ABI_MAJOR, HR_ABI_MINOR);
        goto fail;
    }
    if (d->struct_size < MIN_DESCRIPTOR_SIZE) {
        snprintf(err, errlen, "%s: descriptor is %u bytes, smaller than ABI %d.0's %zu; start it with HR_PLUGIN_HEADER",
                 in->path, d->struct_size, HR_ABI_MAJOR, (size_t)MIN_DESCRIPTOR_SIZE);
        goto fail;
    }
    if (!d->name || strcmp(d->name, blk->name)) {
        snprintf(err, errlen, "%s: plugin calls itself '%s', expected '%s' (the file name and .name must agree)",
                 in->path, d->name ? d->name : "(null)", blk->name);
        goto fail;
    }
    int want = blk->is_sink ? HR_PLUGIN_SINK : HR_PLUGIN_TRANSFORM;
    /* An unset .kind (0) is neither: "load it with `transform x`" would be
     * what the config already says. */
    if (d->kind != HR_PLUGIN_TRANSFORM && d->kind != HR_PLUGIN_SINK) {
        snprintf(err, errlen, "%s: descriptor's .kind is %d, neither HR_PLUGIN_TRANSFORM nor HR_PLUGIN_SINK; set "
                 ".kind = %s", in->path, (int)d->kind, blk->is_sink ? "HR_PLUGIN_SINK" : "HR_PLUGIN_TRANSFORM");
        goto fail;
    }
    if ((int)d->kind != want) {
        snprintf(err, errlen, "%s:%d:%d: '%s' is a %s plugin; load it with `%s %s { }`", file, blk->node->line,
                 blk->node->col, blk->name, d->kind == HR_PLUGIN_SINK ? "sink" : "transform",
                 d->kind == HR_PLUGIN_SINK ? "sink" : "transform", blk->name);
        goto fail;
    }
    /* on_event is optional since 1.2 (a sink that only reads registries). */
    if (!d->init || (want == HR_PLUGIN_TRANSFORM && !d->apply) ||
        (want == HR_PLUGIN_SINK && !d->on_event && d->abi_minor < 2)) {
        snprintf(err, errlen, "%s: descriptor lacks %s", in->path,
                 !d->init ? "init" : want == HR_PLUGIN_SINK ? "on_event" : "apply");
        goto fail;
    }
    in->desc = d;
    in->name = strdup(blk->instance);
    if (asprintf(&in->where, "%s:%d:%d", file, blk->node->line, blk->node->col) < 0) in->where = NULL;
    if (asprintf(&in->label, "%s '%s' (%s)", kind, blk->instance, in->path) < 0) in->label = NULL;
    size_t llen = strlen(blk->instance) + 32;
    in->logger = malloc(llen);
    snprintf(in->logger, llen, "headroom.%s.%s", blk->is_sink ? "sinks" : "transforms", blk->instance);
    if (bind_conf(in, blk, file, err, errlen)) goto fail;
    return in;
fail:
    free_instance(in);
    return NULL;
}

static int push(struct hr_instance ***arr, size_t *n, struct hr_instance *in)
{
    struct hr_instance **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) return -ENOMEM;
    a[(*n)++] = in;
    *arr = a;
    return 0;
}

int hr_plugins_load(const struct hr_config *c, struct hr_plugins *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (lt_dlinit() != 0) {
        snprintf(err, errlen, "libltdl: %s", lt_dlerror());
        return -EIO;
    }
    const char *dir = c->plugin_dir ? c->plugin_dir : hr_default_plugin_dir();
    for (size_t i = 0; i < c->n_plugins; i++) {
        const struct hr_plugin_block *blk = &c->plugins[i];
        if (!blk->is_sink && c->no_optimize) continue; /* passthrough: transforms not even loaded */
        struct hr_instance *in = open_plugin(dir, blk, c->file ? c->file : "(config)", err, errlen);
        if (!in) {
            hr_plugins_unload(out);
            return -EINVAL;
        }
        if (blk->is_sink) push(&out->sinks, &out->n_sinks, in);
        else {
            in->stage_index = out->n_transforms;
            push(&out->transforms, &out->n_transforms, in);
        }
    }
    return 0;
}

/* ", HR_EINVAL" for an init's return code, "" for one the ABI does not name. */
static const char *code_name(int rc)
{
    switch (rc) {
    case HR_EINVAL: return ", HR_EINVAL";
    case HR_ENOMEM: return ", HR_ENOMEM";
    case HR_EAGAIN: return ", HR_EAGAIN";
    case HR_ENOTSMALLER: return ", HR_ENOTSMALLER";
    default: return "";
    }
}

int hr_plugins_init(struct hr_plugins *p, const struct hr_host *host, char *err, size_t errlen)
{
    struct hr_instance **lists[2] = {p->transforms, p->sinks};
    size_t counts[2] = {p->n_transforms, p->n_sinks};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            struct hr_instance *in = lists[l][i];
            unsigned complaints = atomic_load(&in->complaints);
            int rc = in->desc->init(host, in, &in->conf, &in->state);
            if (rc) {
                /* "see the lines above" pointed at nothing when init logged no reason */
                int said = atomic_load(&in->complaints) != complaints;
                snprintf(err, errlen, "%s: %s '%s' failed to start (init returned %d%s)%s", in->where ? in->where : "?",
                         l ? "sink" : "transform", in->name, rc, code_name(rc),
                         said ? "; see the lines above"
                              : " and logged no reason; its init should log one with host->log before returning "
                                "an error");
                return rc < 0 ? rc : -EINVAL;
            }
            in->initialised = 1;
        }
    }
    return 0;
}

static void unload_list(struct hr_instance **list, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        if (list[i]->initialised && list[i]->desc->fini) list[i]->desc->fini(list[i]->state);
        free_instance(list[i]);
    }
    free(list);
}

void hr_plugins_unload(struct hr_plugins *p)
{
    unload_list(p->sinks, p->n_sinks);
    unload_list(p->transforms, p->n_transforms);
    memset(p, 0, sizeof *p);
    lt_dlexit();
}

void hr_plugins_reset(const struct hr_plugins *p)
{
    struct hr_instance **lists[2] = {p->transforms, p->sinks};
    size_t counts[2] = {p->n_transforms, p->n_sinks};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            const struct hr_instance *in = lists[l][i];
            if (in->initialised && HR_HAS_FIELD(in->desc, struct headroom_plugin, reset) && in->desc->reset)
                in->desc->reset(in->state);
        }
}

void hr_plugins_describe(const struct hr_plugins *p, FILE *out)
{
    struct hr_instance **lists[2] = {p->transforms, p->sinks};
    size_t counts[2] = {p->n_transforms, p->n_sinks};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            const struct hr_instance *in = lists[l][i];
            fprintf(out, "%s %s: %s %s (ABI %u.%u) %s\n", l ? "sink" : "transform", in->name, in->desc->name,
                    in->desc->version ? in->desc->version : "", in->desc->abi_major, in->desc->abi_minor, in->path);
            for (size_t k = 0; k < in->conf.n_keys; k++) {
                const struct hr_conf_key *key = &in->conf.keys[k];
                fprintf(out, "    %-22s = %-12s %s\n", key->name,
                        in->conf.values[k] ? in->conf.values[k] : key->default_value ? key->default_value : "",
                        key->help ? key->help : "");
            }
        }
    }
}
