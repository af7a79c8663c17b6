/* json_dump.h — serialise the body headroomd forwards. */
#ifndef HR_JSON_DUMP_H
#define HR_JSON_DUMP_H
#include <stddef.h>
#include <jansson.h>

/* json_dumps(root, JSON_COMPACT)'s bytes, or NULL where it gives NULL
 * (invalid UTF-8 in a string, a cycle, out of memory), several times faster
 * on long strings; but a number of a tree hr_json_load built is written as
 * its text was spelled while it holds that value (json_load.h: 1e-05, 2.50,
 * -0), and any other real as hr_json_real_text writes it.
 * *len is the text's length (0 with NULL). Free the text with free(). */
char *hr_json_dump_compact(const json_t *root, size_t *len);
/* The shortest text jansson's formatting gives d (%.15g, else %.16g, else
 * %.17g) that reads back to the same double, bit for bit: 0.7 as "0.7",
 * 1e300 as "1e300", 100.0 as "100.0", -0.0 as "-0.0". Written to buf (not
 * NUL-terminated when it fills buf); its length, 0 when it does not fit
 * (32 bytes always do). */
size_t hr_json_real_text(double d, char *buf, size_t size);
#endif
