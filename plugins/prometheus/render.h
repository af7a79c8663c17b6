/* render.h — Prometheus text exposition format 0.0.4 built from a metrics
 * walk (hr_host.metrics_visit); kept apart from the plugin so tests link it. */
#ifndef HR_PROM_RENDER_H
#define HR_PROM_RENDER_H
#include <stddef.h>
#include <headroom/plugin.h>

#define HR_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A growable byte buffer; `oom` sticks once an allocation failed so callers
 * check once at the end instead of after every append. */
struct hr_prom_buf {
    char *p;
    size_t len, cap;
    int oom;
};

void hr_prom_buf_put(struct hr_prom_buf *b, const char *s, size_t n);
void hr_prom_buf_puts(struct hr_prom_buf *b, const char *s);
void hr_prom_buf_free(struct hr_prom_buf *b);

/* Label values escape backslash, double quote and newline; HELP text escapes
 * backslash and newline. Invalid UTF-8 becomes U+FFFD: the format is UTF-8
 * and a client-chosen model name must not break a scrape. */
void hr_prom_escape_label(struct hr_prom_buf *b, const char *s);
void hr_prom_escape_help(struct hr_prom_buf *b, const char *s);

/* Shortest text that reads back as the same double; "+Inf", "-Inf", "NaN". */
void hr_prom_format_double(char out[32], double v);
/* Decimals a family's values are printed with, from its unit in the name:
 * _usd 6, percent 2, _ms / _seconds 3; -1 = shortest round-trip as is. */
int hr_prom_decimals_for(const char *family_name);
/* v rounded to `decimals` (numfmt.h), or as hr_prom_format_double when < 0. */
void hr_prom_format_figure(char out[32], double v, int decimals);

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; labels without ':' and not "__*". */
int hr_prom_valid_metric_name(const char *s);
int hr_prom_valid_label_name(const char *s);

/* One render: feed hr_prom_visit to metrics_visit with the render as `ud`,
 * then hr_prom_render_finish. Samples of a family are grouped even when a
 * walk delivers them apart; invalid families, type clashes and duplicate
 * series are dropped and counted rather than emitted as a broken scrape. */
struct hr_prom_render;

struct hr_prom_render *hr_prom_render_new(void);
void hr_prom_visit(void *render, const struct hr_metric_family *family, const struct hr_metric_sample *sample);
/* Samples dropped so far, and why the first one was (static or owned by r). */
size_t hr_prom_render_dropped(const struct hr_prom_render *r, const char **first_reason);
/* The exposition text (NUL-terminated, free() it). Returns 0 or HR_ENOMEM. */
int hr_prom_render_finish(struct hr_prom_render *r, char **out, size_t *len);
void hr_prom_render_free(struct hr_prom_render *r);
#endif
