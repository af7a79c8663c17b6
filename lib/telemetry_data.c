/* telemetry_data.c — the beacon's aggregates, identity and payload (see
 * telemetry.h), shared by the host and the beacon sink. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "numfmt.h"
#include "telemetry_data.h"

int hr_tm_stack_valid(const char *s)
{
    if (!s || !islower((unsigned char)s[0])) return 0;
    size_t n = 1;
    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')) return 0;
    return n <= HR_TM_STACK_LEN;
}

int hr_tm_install_mode_valid(const char *s)
{
    return s && (!strcmp(s, "wrapped") || !strcmp(s, "persistent") || !strcmp(s, "on_demand") || !strcmp(s, "unknown"));
}

/* ------------------------------------------------------------ gathering */

static uint64_t u64(double v) { return v > 0 ? (uint64_t)(v + 0.5) : 0; }

static void visit(void *ud, const struct hr_metric_family *f, const struct hr_metric_sample *s)
{
    struct hr_tm_counts *c = ud;
    const char *n = f->name;
    if (!strcmp(n, "headroom_requests_total")) c->requests = u64(s->value);
    else if (!strcmp(n, "headroom_requests_failed_total")) c->failed = u64(s->value);
    else if (!strcmp(n, "headroom_requests_cached_total")) c->cached = u64(s->value);
    else if (!strcmp(n, "headroom_tokens_input_total")) c->tokens_input = u64(s->value);
    else if (!strcmp(n, "headroom_tokens_output_total")) c->tokens_output = u64(s->value);
    else if (!strcmp(n, "headroom_tokens_saved_total")) c->tokens_saved = u64(s->value);
    else if (!strcmp(n, "headroom_provider_cache_requests_total")) c->cache_requests += u64(s->value);
    else if (!strcmp(n, "headroom_provider_cache_hit_requests_total")) c->cache_hits += u64(s->value);
    else if (!strcmp(n, "headroom_overhead_ms") && f->type == HR_METRIC_HISTOGRAM) {
        c->overhead_count = s->count;
        c->overhead_sum_ms = s->sum;
    } else if (!strcmp(n, "headroom_requests_by_stack") && f->n_labels == 1 && s->label_values && s->label_values[0] &&
               c->n_stacks < HR_TM_MAX_STACKS && s->value > 0) {
        snprintf(c->stacks[c->n_stacks].name, sizeof c->stacks[0].name, "%s", s->label_values[0]);
        c->stacks[c->n_stacks++].requests = u64(s->value);
    }
}

void hr_tm_gather(int (*metrics_visit)(hr_metric_visit_fn fn, void *ud), struct hr_tm_counts *c)
{
    memset(c, 0, sizeof *c);
    c->ok = metrics_visit && metrics_visit(visit, c) == HR_OK;
}

const char *hr_tm_headroom_stack(const struct hr_tm_counts *c, char *buf, size_t buflen)
{
    const char *env = getenv("HEADROOM_STACK");
    if (env && hr_tm_stack_valid(env)) {
        snprintf(buf, buflen, "%s", env);
        return buf;
    }
    if (!c->ok) return "unknown";
    uint64_t tagged = 0, best = 0;
    size_t best_i = 0;
    for (size_t i = 0; i < c->n_stacks; i++) {
        tagged += c->stacks[i].requests;
        if (c->stacks[i].requests > best) best = c->stacks[i].requests, best_i = i;
    }
    if (!tagged) return "proxy";
    /* "other" is many stacks folded together: it never names the process. */
    if (100.0 * (double)best >= HR_TM_DOMINANT_PCT * (double)tagged && strcmp(c->stacks[best_i].name, "other")) {
        snprintf(buf, buflen, "%s", c->stacks[best_i].name);
        return buf;
    }
    return "mixed";
}

const char *hr_tm_install_mode(void)
{
    const char *m = getenv("HEADROOM_INSTALL_MODE");
    return hr_tm_install_mode_valid(m) ? m : "unknown";
}

/* ------------------------------------------------------- public names */

static const char *const AGENTS[] = {"claude", "codex", "aider", "generic", "cursor", "gemini", "opencode", "goose",
                                     "cline", "continue", "copilot", "amp", "openhands", "qwen", NULL};
static const char *const LANGS[] = {"py", "python", "ts", "js", "node", "go", "rust", "java", "ruby", "dotnet", "php", NULL};
static const char *const PROVIDERS[] = {"openai", "anthropic", "google", "gemini", "bedrock", "vertex", "azure",
                                        "litellm", "langchain", "openrouter", "mistral", "groq", NULL};

static int in_list(const char *const *list, const char *s, size_t n)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == n && !strncmp(list[i], s, n)) return 1;
    return 0;
}

const char *hr_tm_public_stack(const char *s)
{
    if (!s) return "other";
    if (!strcmp(s, "proxy") || !strcmp(s, "mixed") || !strcmp(s, "unknown")) return s;
    if (!strncmp(s, "wrap_", 5) && in_list(AGENTS, s + 5, strlen(s + 5))) return s;
    if (!strncmp(s, "adapter_", 8)) {
        const char *lang = s + 8, *us = strchr(lang, '_');
        if (us && in_list(LANGS, lang, (size_t)(us - lang)) && in_list(PROVIDERS, us + 1, strlen(us + 1))) return s;
    }
    return "other";
}

/* ----------------------------------------------------------- install id */

static int uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[36] == '\0' || s[36] == '\n';
}

static int read_id(const char *path, char out[37])
{
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    char line[64] = "";
    int ok = fgets(line, sizeof line, f) && uuid_valid(line);
    fclose(f);
    if (!ok) return -EINVAL;
    memcpy(out, line, 36);
    out[36] = '\0';
    return 0;
}

static int new_uuid(char out[37])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return -EIO; /* no weak fallback for an id */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);                        /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);                        /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int hr_tm_install_id(const char *state_dir, char out[37], char *err, size_t errlen)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/telemetry_id", state_dir);
    int rc = read_id(path, out);
    if (rc == 0) return 0;
    int damaged = rc == -EINVAL;
    if (mkdir(state_dir, 0700) && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create the state directory %s: %s", state_dir, strerror(errno));
        return rc;
    }
    if ((rc = new_uuid(out))) {
        snprintf(err, errlen, "no random bytes for the install id (getrandom failed)");
        return rc;
    }
    snprintf(tmp, sizeof tmp, "%s/.telemetry_id.%ld.tmp", state_dir, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return rc;
    }
    char line[38];
    snprintf(line, sizeof line, "%s\n", out);
    int w = write(fd, line, 37) == 37 && fsync(fd) == 0;
    close(fd);
    if (!w) {
        rc = -EIO;
        snprintf(err, errlen, "cannot write %s", tmp);
        unlink(tmp);
        return rc;
    }
    /* link() fails when another process created the id first: use theirs.
     * A damaged file is replaced. */
    if (damaged ? rename(tmp, path) : link(tmp, path)) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST && read_id(path, out) == 0) return 0;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    if (!damaged) unlink(tmp);
    return 0;
}

/* ------------------------------------------------------------- payload */

static const char *os_family(void)
{
#if defined(__linux__)
    return "linux";
#elif defined(__APPLE__)
    return "darwin";
#elif defined(__FreeBSD__)
    return "freebsd";
#elif defined(__OpenBSD__)
    return "openbsd";
#elif defined(__NetBSD__)
    return "netbsd";
#else
    return "other";
#endif
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? hr_numfmt_round(100.0 * (double)part / (double)whole, HR_DECIMALS_PERCENT) + 0.0 : 0.0;
}

json_t *hr_tm_payload(const struct hr_tm_counts *c, const char *install_id, const char *version)
{
    char buf[HR_TM_STACK_LEN + 1];
    json_t *by = json_object();
    for (size_t i = 0; i < c->n_stacks; i++) {
        const char *name = hr_tm_public_stack(c->stacks[i].name);
        json_t *old = json_object_get(by, name);
        json_int_t n = (json_int_t)c->stacks[i].requests + (old ? json_integer_value(old) : 0);
        json_object_set_new(by, name, json_integer(n));
    }
    double overhead = c->overhead_count ? c->overhead_sum_ms / (double)c->overhead_count : 0.0;
    return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "schema_version", 1,
                     "install_id", install_id, "version", version, "os", os_family(), "headroom_stack",
                     hr_tm_public_stack(hr_tm_headroom_stack(c, buf, sizeof buf)), "install_mode", hr_tm_install_mode(),
                     "requests_by_stack", by, "requests_total", (json_int_t)c->requests, "requests_failed",
                     (json_int_t)c->failed, "requests_cached", (json_int_t)c->cached, "tokens_input",
                     (json_int_t)c->tokens_input, "tokens_output", (json_int_t)c->tokens_output, "tokens_saved",
                     (json_int_t)c->tokens_saved, "savings_percent", pct(c->tokens_saved, c->tokens_input),
                     "cache_hit_rate", pct(c->cache_hits, c->cache_requests), "average_overhead_ms",
                     hr_numfmt_round(overhead, HR_DECIMALS_MS) + 0.0);
}

char *hr_tm_dump(const json_t *payload)
{
    return json_dumps(payload, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(HR_JSON_FIGURES_PRECISION));
}

json_t *hr_tm_stats_block(const struct hr_tm_counts *c, int beacon_enabled)
{
    char buf[HR_TM_STACK_LEN + 1];
    json_t *by = json_object();
    for (size_t i = 0; i < c->n_stacks; i++)
        json_object_set_new(by, c->stacks[i].name, json_integer((json_int_t)c->stacks[i].requests));
    return json_pack("{s:b,s:s,s:s,s:o}", "beacon_enabled", beacon_enabled, "headroom_stack",
                     hr_tm_headroom_stack(c, buf, sizeof buf), "install_mode", hr_tm_install_mode(), "requests_by_stack", by);
}
