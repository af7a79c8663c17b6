/* json_dump.h — serialise the body headroomd forwards. */
#ifndef HR_JSON_DUMP_H
#define HR_JSON_DUMP_H
#include <stddef.h>
#include <jansson.h>

/* Exactly json_dumps(root, JSON_COMPACT): the same bytes, or NULL where it
 * gives NULL (invalid UTF-8 in a string, a cycle, out of memory), several
 * times faster on long strings. *len is the text's length (0 with NULL).
 * Free the text with free(). */
char *hr_json_dump_compact(const json_t *root, size_t *len);
#endif
