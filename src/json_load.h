/* json_load.h — parse a request body into a jansson tree, several times
 * faster than json_loadb on bodies made of large strings (agent requests
 * carrying tool outputs). */
#ifndef HR_JSON_LOAD_H
#define HR_JSON_LOAD_H
#include <stddef.h>
#include <jansson.h>

/* The same result as json_loadb(text, len, 0, err): same acceptance, same
 * tree (values, key order, last duplicate key wins). Valid text is checked
 * by the shared scanner (plugins/common/json_scan.c, jansson's rules) and
 * then built in one pass, copying strings whole; text the scanner refuses,
 * or a failed allocation, goes to json_loadb itself, so errors carry
 * jansson's message, line and column. */
json_t *hr_json_load(const char *text, size_t len, json_error_t *err);
/* As hr_json_load, but a key repeated within one object is an error
 * ("duplicate object key 'NAME'" in err->text), as with jansson's
 * JSON_REJECT_DUPLICATES: a request whose meaning depends on which copy a
 * parser keeps is refused rather than read differently here and upstream. */
json_t *hr_json_load_strict(const char *text, size_t len, json_error_t *err);
#endif
