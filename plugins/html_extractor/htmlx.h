/* htmlx.h — html_extractor's core (no host dependency): a fetched HTML page
 * becomes its readable text. Shared by the plugin, its test and the bench. */
#ifndef HR_HTMLX_H
#define HR_HTMLX_H
#include <stddef.h>
#include "textc.h"

struct hr_htmlx_config {
    int link_urls;     /* 1: links to absolute http(s) URLs read "text (url)" */
    int drop_boilerplate; /* 1: drop elements whose id/class says cookie, banner, menu, … */
};

/* hr_text_compress_fn: cfg is a struct hr_htmlx_config. Returns 0 with the
 * marker line and the text, 1 when nothing readable is left, 2 when the
 * text is not smaller, -12 out of memory. */
int hr_htmlx_compress(const void *cfg, const char *text, size_t len, const char *query, struct hr_text_out *out);

#endif
