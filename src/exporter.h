/* exporter.h — the host side of hr_host.exporter_new/export_post/export_stats:
 * one libcurl thread per exporter, a bounded queue, retries with backoff. */
#ifndef HR_EXPORTER_H
#define HR_EXPORTER_H
#include "headroom/plugin.h"

struct hr_exporter *hr_exporter_new(struct hr_instance *self, const struct hr_export_conf *conf);
int hr_export_post(struct hr_exporter *ex, const void *body, size_t len, uint64_t items);
void hr_export_stats(struct hr_exporter *ex, struct hr_export_stats *out);
/* Stop every exporter: queued bodies get one short last attempt (unless the
 * collector just failed), then threads are joined and memory freed. Call
 * after the plugins' fini, before curl_global_cleanup. */
void hr_exporters_shutdown(void);
#endif
