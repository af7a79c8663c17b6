/* diffc.h — diff_compressor's core (no host dependency): unified and combined
 * diffs, git show, git log -p. Shared by the plugin, its test and the bench. */
#ifndef HR_DIFFC_H
#define HR_DIFFC_H
#include <stddef.h>
#include "textc.h"

struct hr_diffc_config {
    size_t context_lines; /* unchanged lines kept next to each change */
};

/* hr_text_compress_fn: cfg is a struct hr_diffc_config. */
int hr_diffc_compress(const void *cfg, const char *text, size_t len, const char *query, struct hr_text_out *out);

#endif
