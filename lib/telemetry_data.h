/* telemetry_data.h — what the anonymous beacon knows, shared by the host
 * (/stats.telemetry, `headroomd --telemetry-preview`) and the beacon sink,
 * so the preview is built by the very code that builds what is sent
 * (doc/telemetry.md). Everything here reads the metrics registry through a
 * metrics_visit function and the environment the host resolved; nothing
 * reads a request. */
#ifndef HR_TELEMETRY_DATA_H
#define HR_TELEMETRY_DATA_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <headroom/plugin.h>

#define HR_TM_MAX_STACKS 33 /* the registry's 32 stacks and "other" */
#define HR_TM_STACK_LEN 64
#define HR_TM_DOMINANT_PCT 80.0 /* a stack with this share of tagged requests names the process */

/* Aggregates the beacon reports, read from the metrics registry. */
struct hr_tm_counts {
    int ok; /* the walk worked; otherwise headroom_stack is "unknown" */
    uint64_t requests, failed, cached;
    uint64_t tokens_input, tokens_output, tokens_saved;
    uint64_t cache_requests, cache_hits; /* provider prompt cache */
    uint64_t overhead_count;
    double overhead_sum_ms;
    size_t n_stacks;
    struct {
        char name[HR_TM_STACK_LEN + 1];
        uint64_t requests;
    } stacks[HR_TM_MAX_STACKS];
};

/* A stack name as X-Headroom-Stack and HEADROOM_STACK take it:
 * ^[a-z][a-z0-9_]{0,63}$. */
int hr_tm_stack_valid(const char *s);
/* One of wrapped, persistent, on_demand, unknown. */
int hr_tm_install_mode_valid(const char *s);

/* Fill `c` from a metrics walk (hr_host.metrics_visit or the host's own). */
void hr_tm_gather(int (*metrics_visit)(hr_metric_visit_fn fn, void *ud), struct hr_tm_counts *c);

/* headroom_stack: $HEADROOM_STACK when valid; else the stack with at least
 * 80 % of the tagged requests, "mixed" when none has, "proxy" when no
 * request was tagged, "unknown" when the counts could not be read. */
const char *hr_tm_headroom_stack(const struct hr_tm_counts *c, char *buf, size_t buflen);
/* install_mode as the host resolved it into $HEADROOM_INSTALL_MODE, else
 * "unknown". */
const char *hr_tm_install_mode(void);

/* The name the beacon may send for a stack: proxy, mixed, unknown,
 * wrap_<agent> and adapter_<lang>_<provider> from bounded allow-lists;
 * anything else (a name a client made up) is "other". */
const char *hr_tm_public_stack(const char *stack);

/* The random install id kept in <state_dir>/telemetry_id (a UUIDv4 from
 * getrandom, never derived from the host, user or network); created on
 * first use, atomically, so concurrent processes agree. 0, or -errno with
 * `err` naming the file. */
int hr_tm_install_id(const char *state_dir, char out[37], char *err, size_t errlen);

/* The beacon payload (doc/telemetry.md): aggregate counts only. */
json_t *hr_tm_payload(const struct hr_tm_counts *c, const char *install_id, const char *version);
/* The payload as sent and as --telemetry-preview prints it (free()). */
char *hr_tm_dump(const json_t *payload);

/* The identity part of /stats.telemetry: beacon_enabled, headroom_stack,
 * install_mode, requests_by_stack (local names). The caller adds the
 * report counters. */
json_t *hr_tm_stats_block(const struct hr_tm_counts *c, int beacon_enabled);
#endif
