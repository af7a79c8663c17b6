/* json_get.h — json_object_get for the small objects a chat request is made
 * of (a message, a content part, a usage block). jansson hashes the key on
 * every lookup (~170 instructions); walking an object of a few members and
 * comparing keys costs about half that. Same result for any object: keys
 * are unique, compared by length and bytes as jansson does. */
#ifndef HR_JSON_GET_H
#define HR_JSON_GET_H
#include <string.h>
#include <jansson.h>

/* Past this many members, hashing is the cheaper way. */
#define HR_JSON_GET_WALK 4

static inline json_t *hr_json_get(const json_t *obj, const char *key)
{
    if (!key || !json_is_object(obj) || json_object_size(obj) > HR_JSON_GET_WALK) return json_object_get(obj, key);
    size_t n = strlen(key);
    for (void *it = json_object_iter((json_t *)obj); it; it = json_object_iter_next((json_t *)obj, it))
        if (json_object_iter_key_len(it) == n && !memcmp(json_object_iter_key(it), key, n))
            return json_object_iter_value(it);
    return NULL;
}
#endif
