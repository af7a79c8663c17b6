/* metrics.h — the metrics registry as plugins see it: a visit over a
 * consistent snapshot of the live counters (what /metrics and OTLP render). */
#ifndef HR_METRICS_H
#define HR_METRICS_H
#include "headroom/plugin.h"

int hr_metrics_visit(hr_metric_visit_fn fn, void *ud);
#endif
