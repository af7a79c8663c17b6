/* json_load.h — parse a request body into a jansson tree, several times
 * faster than json_loadb on bodies made of large strings (agent requests
 * carrying tool outputs). */
#ifndef HR_JSON_LOAD_H
#define HR_JSON_LOAD_H
#include <stddef.h>
#include <jansson.h>

/* The same result as json_loadb(text, len, 0, err): same acceptance, same
 * tree (values, key order, last duplicate key wins), but for an integer
 * beyond int64 (up to 308 digits), which is valid JSON jansson refuses:
 * here it is a real holding its nearest double, written back by
 * hr_json_dump_compact as it was spelled. Valid text is checked
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

/* Numbers as the client spelled them (json_load.c). A tree built here
 * keeps the text of each number whose shortest form (hr_json_real_text;
 * -0 as 0) may differ from it (1e-05, 2.50, 1E5, -0), for as long as the
 * tree lives, in a table of the loading thread's own (a tree written on
 * another thread is written shortest). hr_json_dump_compact writes it:
 * hr_json_spellings_live() (0 when no tree this thread loaded has such a
 * number: nothing to look up), then hr_json_spelling(node) for each real
 * and integer: the text (no NUL) and its length when the node was read
 * with one and still holds that value, else NULL. */
int hr_json_spellings_live(void);
const char *hr_json_spelling(const json_t *number, size_t *len);
/* Frees this thread's tables whose tree is gone (each load does it too):
 * called when a request ends, so an idle worker keeps no dead tree. */
void hr_json_spellings_sweep(void);
/* to is a copy of from (json_deep_copy): its numbers take from's
 * spellings, so a copy put back in place of the original (an undo) is
 * written as the client wrote it. */
void hr_json_spellings_copied(const json_t *from, const json_t *to);
#endif
