/* searchc.h — search_compressor's core (no host dependency): parse grep -rn,
 * rg, ag and git grep output, pick the matches to keep, render. Shared by the
 * plugin, its unit test and bench/compress. */
#ifndef HR_SEARCHC_H
#define HR_SEARCHC_H
#include <stddef.h>
#include "textc.h"

struct hr_searchc_config {
    size_t max_matches;   /* matches kept in all (besides each file's first) */
    size_t max_per_file;  /* of those, at most this many in one file */
};

/* hr_text_compress_fn: cfg is a struct hr_searchc_config; `query` steers BM25. */
int hr_searchc_compress(const void *cfg, const char *text, size_t len, const char *query, struct hr_text_out *out);

#endif
