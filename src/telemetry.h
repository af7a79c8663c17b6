/* telemetry.h — the host's side of the anonymous beacon (doc/telemetry.md):
 * whether it runs (HEADROOM_TELEMETRY / --telemetry / --no-telemetry, off
 * wins), the process's install_mode and default stack, the /stats.telemetry
 * block shown while the beacon sink is not loaded, and
 * `headroomd --telemetry-preview`. */
#ifndef HR_TELEMETRY_HOST_H
#define HR_TELEMETRY_HOST_H
#include <stdio.h>
#include <jansson.h>
#include "config.h"

/* After file, environment and flags: resolve install_mode into
 * $HEADROOM_INSTALL_MODE (plugins and the payload read it there), check
 * $HEADROOM_STACK, and load the beacon sink exactly when telemetry is on
 * (a generated `sink beacon { }` unless the file has one, always last so it
 * stops before the sinks whose metrics it reads). 0 or -errno with err. */
int hr_telemetry_setup(struct hr_config *c, char *err, size_t errlen);
/* $HEADROOM_STACK when valid, else NULL: the stack of untagged requests. */
const char *hr_telemetry_default_stack(void);
/* /stats.telemetry while no beacon sink replaces it. */
json_t *hr_telemetry_stats_json(void);
/* Print the payload the beacon would send now; 0, or -1 with err. Needs the
 * stats registry (hr_stats_init). */
int hr_telemetry_preview(const struct hr_config *c, FILE *out, char *err, size_t errlen);
#endif
