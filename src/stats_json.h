/* stats_json.h — the GET /stats document. */
#ifndef HR_STATS_JSON_H
#define HR_STATS_JSON_H
#include <jansson.h>

/* Build /stats; `loopback` callers also see local paths. */
json_t *hr_stats_json(int loopback);
double hr_round(double v, int decimals);
#endif
