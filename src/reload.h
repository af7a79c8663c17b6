/* reload.h — applying a re-read config to the running daemon (SIGHUP). */
#ifndef HR_RELOAD_H
#define HR_RELOAD_H
#include <stddef.h>
#include "config.h"

struct hr_daemon;

/*
 * hr_reload_apply
 *   Compare `fresh` (defaults, file, environment and flags read again) with
 *   the running settings; apply log_level, prices (the table is read again
 *   even when only its file changed), budget, rate limits, body/header/
 *   response size limits, max_connections, client_timeout and the upstream
 *   timeouts; log one INFO line with what was applied and one WARN line
 *   naming what changed but needs a restart. -1 with err set when the new
 *   prices or budget cannot be loaded: then nothing changed.
 */
int hr_reload_apply(struct hr_daemon *d, const struct hr_config *fresh, char *err, size_t errlen);
#endif
