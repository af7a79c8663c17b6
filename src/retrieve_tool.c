/* retrieve_tool.c — offering, detecting and answering headroom_retrieve
 * calls; the format's adapter knows where tools, calls and results go. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ccr.h"
#include "log.h"
#include "pipeline.h"
#include "retrieve_match.h"
#include "retrieve_tool.h"

#define MAX_CALLS 64
#define PER_MESSAGE_OVERHEAD 3 /* as hr_request_tokens counts a message */
#define LOGGER "headroom.proxy"
#define DESCRIPTION                                                                                         \
    "Fetch the full original of a tool output that headroom compressed. A compressed output carries a "  \
    "marker naming what was omitted and hash=<hash> (a {\"_headroom\": {...}} object in JSON, a "         \
    "\"[headroom: ...]\" line in text); call this with that hash when you need what was omitted."

const char *hr_retrieve_tools_key(const struct hr_api *api, const json_t *body)
{
    return api->tools_key ? api->tools_key(body) : "tools";
}

json_t *hr_retrieve_tool_def(const struct hr_api *api, const char *list)
{
    json_t *schema = json_pack("{s:s,s:{s:{s:s,s:s},s:{s:s,s:s}},s:[s]}", "type", "object", "properties", "hash",
                               "type", "string", "description", "the 24 hex digits after hash= in the marker", "query",
                               "type", "string", "description",
                               "optional words to look for: only the best-matching rows or lines come back",
                               "required", "hash");
    return api->tool_def(list, HR_RETRIEVE_TOOL, DESCRIPTION, schema);
}

struct marker_scan {
    int found;
};

static void scan_unit(void *ud, json_t *holder, const char *key, size_t item, const char *tool)
{
    (void)item;
    (void)tool;
    struct marker_scan *s = ud;
    const char *text = json_string_value(json_object_get(holder, key));
    /* The marker object as JSON, or escaped inside a JSON string (rows that
     * came as text in MCP content or {"output": ...}, crushed in place). */
    if (text && (strstr(text, "{\"" HR_MARKER_KEY "\":") || strstr(text, "{\\\"" HR_MARKER_KEY "\\\":") ||
                 strstr(text, HR_TEXT_MARKER)))
        s->found = 1;
}

int hr_retrieve_needed(const struct hr_api *api, json_t *body)
{
    struct marker_scan s = {0};
    api->find_units(body, scan_unit, &s);
    return s.found;
}

int hr_retrieve_tool_add(const struct hr_api *api, json_t *body)
{
    const char *key = hr_retrieve_tools_key(api, body);
    if (!key) return 0; /* the format cannot offer it to this request */
    json_t *tools = json_object_get(body, key);
    if (tools && !json_is_array(tools)) return HR_EINVAL;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *name = api->tool_def_name(t);
        if (name && !strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    if (!tools) {
        tools = json_array();
        json_object_set_new(body, key, tools);
    }
    return json_array_append_new(tools, hr_retrieve_tool_def(api, key)) ? HR_ENOMEM : 1;
}

int hr_retrieve_only_calls(const struct hr_api *api, const json_t *answer)
{
    const json_t *calls[MAX_CALLS];
    size_t n = api->answer_calls(answer, calls, MAX_CALLS);
    if (!n || n == MAX_CALLS) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = api->call_name(calls[i]);
        if (!name || strcmp(name, HR_RETRIEVE_TOOL)) return 0;
    }
    return 1;
}

/* hr_api_result_fn: the stored original (or what of it matches the
 * query), or why there is none. */
static json_t *result_text(const char *hash, const char *query)
{
    size_t len = 0;
    char *data = hash ? hr_ccr_get(hash, &len) : NULL;
    if (!data) {
        char msg[200];
        snprintf(msg, sizeof msg, "headroom_retrieve: no stored original for hash '%s' (unknown or expired)",
                 hash ? hash : "");
        return json_string(msg);
    }
    if (query && *query) {
        json_t *s = hr_retrieve_match_text(data, len, query);
        HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved the matches of a query", hash);
        hr_ccr_free(data);
        return s;
    }
    json_t *parsed = json_loadb(data, len, 0, NULL);
    HR_INFO("headroom.cache.compression_store", "CCR cache hit: hash=%s, retrieved %zu items", hash,
            json_is_array(parsed) ? json_array_size(parsed) : (size_t)1);
    json_decref(parsed);
    json_t *s = json_stringn(data, len);
    hr_ccr_free(data);
    return s ? s : json_string("headroom_retrieve: stored original is not valid UTF-8");
}

int hr_retrieve_answer(const struct hr_api *api, json_t *body, const json_t *answer)
{
    const json_t *calls[MAX_CALLS];
    size_t n = api->answer_calls(answer, calls, MAX_CALLS);
    if (!n) return 0;
    return api->append_results(body, answer, calls, n, result_text);
}

int hr_retrieve_hide_tool(const struct hr_api *api, json_t *answer)
{
    json_t *tools = api->answer_tools_key ? json_object_get(answer, api->answer_tools_key) : NULL;
    int changed = 0;
    for (size_t i = json_array_size(tools); i-- > 0;) {
        const char *name = api->tool_def_name(json_array_get(tools, i));
        if (name && !strcmp(name, HR_RETRIEVE_TOOL) && !json_array_remove(tools, i)) changed = 1;
    }
    return changed;
}

/* ---- calls left out of a kept answer
 * A Responses answer is stored by the provider (store defaults to true) or
 * added to a conversation; the request that continues from it sends only
 * new items, and the API refuses it ("No tool output found for function
 * call ...") unless every call of the stored answer has an output, those
 * the client never saw included. They are kept here until then: up to
 * KEPT_MAX answers, each for KEPT_TTL_S (an agent answers its calls in
 * seconds; a person approving a patch may take hours), the oldest given up
 * first. In memory, per instance: a restart forgets them. */
#define KEPT_MAX 1024
#define KEPT_TTL_S HR_RETRIEVE_KEPT_TTL_S

struct kept {
    char key[HR_API_KEY_MAX];
    time_t at;             /* 0: a free slot */
    json_t *calls;         /* copies of the calls taken out */
    char claimed_by[48];   /* the last request carrying their results into a conversation */
    /* With a shared store (fleet.c): the value as it was written or read
     * there, and whether the store holds it (confirmed, or read from it). */
    char *shared_json;
    size_t shared_len;
    unsigned long gen;     /* names this put in the store's answer */
    int shared;
};

static struct kept kept[KEPT_MAX];
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static int kept_n, kept_claims; /* slots in use, claimed: read unlocked to skip the lock */
static unsigned long kept_gen;  /* under kept_lock */
static const struct hr_retrieve_kept_remote *kept_remote; /* set before the workers start */

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1; /* never 0 */
}

static void kept_free(struct kept *k)
{
    json_decref(k->calls);
    free(k->shared_json);
    if (k->claimed_by[0]) __atomic_sub_fetch(&kept_claims, 1, __ATOMIC_RELAXED);
    memset(k, 0, sizeof *k);
    __atomic_sub_fetch(&kept_n, 1, __ATOMIC_RELAXED);
}

void hr_retrieve_set_kept_remote(const struct hr_retrieve_kept_remote *r) { kept_remote = r; }

/* Under kept_lock: a slot for `key` (its old entry, expired ones and, when
 * full, the oldest given up). */
static struct kept *kept_slot_locked(const char *key, time_t now)
{
    struct kept *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < KEPT_MAX; i++) {
        struct kept *k = &kept[i];
        if (k->at && (!strcmp(k->key, key) || now - k->at > KEPT_TTL_S)) kept_free(k);
        if (!k->at) slot = slot ? slot : k;
        else if (!oldest || k->at < oldest->at) oldest = k;
    }
    if (!slot) { /* full: the oldest goes */
        kept_free(oldest);
        slot = oldest;
    }
    size_t len = strnlen(key, sizeof slot->key - 1);
    memcpy(slot->key, key, len);
    slot->key[len] = '\0';
    slot->at = now;
    __atomic_add_fetch(&kept_n, 1, __ATOMIC_RELAXED);
    return slot;
}

static void kept_put(const char *key, const json_t *calls)
{
    const struct hr_retrieve_kept_remote *remote = kept_remote;
    char *json = remote ? json_dumps(calls, JSON_COMPACT) : NULL;
    size_t len = json ? strlen(json) : 0;
    if (json && len > HR_RETRIEVE_KEPT_MAX_BYTES) {
        /* Only a model writing a huge query gets here (64 calls of a few
         * hundred bytes are far below): kept on this instance alone. */
        HR_WARN(LOGGER, "headroom_retrieve calls left out of %s take %zu bytes as JSON, over the %d a fleet shares: "
                "kept on this instance only; a request continuing from it on another instance gets no output for "
                "them, and the provider refuses it (400 'No tool output found for function call')", key + 2, len,
                HR_RETRIEVE_KEPT_MAX_BYTES);
        free(json);
        json = NULL;
    }
    pthread_mutex_lock(&kept_lock);
    struct kept *slot = kept_slot_locked(key, now_s());
    slot->calls = json_deep_copy(calls); /* touched only under the lock */
    unsigned long gen = slot->gen = ++kept_gen;
    if (json) {
        slot->shared_json = strdup(json);
        slot->shared_len = slot->shared_json ? len : 0;
    }
    pthread_mutex_unlock(&kept_lock);
    if (json) remote->put(key, json, len, gen);
    free(json);
}

void hr_retrieve_kept_stored(const char *key, unsigned long gen)
{
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX; i++)
        if (kept[i].at && kept[i].gen == gen && !strcmp(kept[i].key, key)) kept[i].shared = 1;
    pthread_mutex_unlock(&kept_lock);
}

int hr_retrieve_kept_has(const char *key)
{
    if (!__atomic_load_n(&kept_n, __ATOMIC_RELAXED)) return 0;
    int has = 0;
    time_t now = now_s();
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX && !has; i++)
        has = kept[i].at && now - kept[i].at <= KEPT_TTL_S && !strcmp(kept[i].key, key);
    pthread_mutex_unlock(&kept_lock);
    return has;
}

int hr_retrieve_kept_adopt(const char *key, const char *json, size_t len, const char **why)
{
    *why = NULL;
    if (len > HR_RETRIEVE_KEPT_MAX_BYTES) *why = "larger than headroomd writes";
    json_t *calls = *why ? NULL : json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    size_t i, n = json_array_size(calls);
    json_t *c;
    if (!*why && !calls) *why = "not JSON";
    else if (!*why && (!json_is_array(calls) || !n || n > MAX_CALLS)) *why = "not a list of 1 to 64 calls";
    json_array_foreach(calls, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (!json_is_string(json_object_get(c, "call_id")) || !json_is_string(json_object_get(c, "arguments")) ||
            !name || strcmp(name, HR_RETRIEVE_TOOL)) {
            *why = "a call without a call_id, arguments or the name " HR_RETRIEVE_TOOL;
            break;
        }
    }
    if (*why) {
        json_decref(calls);
        return HR_EINVAL;
    }
    pthread_mutex_lock(&kept_lock);
    struct kept *same = NULL;
    for (i = 0; i < KEPT_MAX && !same; i++)
        if (kept[i].at && !strcmp(kept[i].key, key) && kept[i].shared_len == len && kept[i].shared_json &&
            !memcmp(kept[i].shared_json, json, len))
            same = &kept[i];
    if (same) { /* ours already (a claim on it stands) */
        same->shared = 1;
        json_decref(calls);
    } else {
        struct kept *slot = kept_slot_locked(key, now_s());
        slot->calls = calls;
        slot->gen = ++kept_gen;
        slot->shared_json = malloc(len + 1);
        if (slot->shared_json) {
            memcpy(slot->shared_json, json, len);
            slot->shared_json[len] = '\0';
            slot->shared_len = len;
        }
        slot->shared = 1;
    }
    pthread_mutex_unlock(&kept_lock);
    return HR_OK;
}

void hr_retrieve_kept_gone(const char *key)
{
    if (!__atomic_load_n(&kept_n, __ATOMIC_RELAXED)) return;
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX; i++)
        if (kept[i].at && kept[i].shared && !strcmp(kept[i].key, key)) kept_free(&kept[i]);
    pthread_mutex_unlock(&kept_lock);
}

/* hr_api_result_fn has no user pointer: hr_retrieve_kept_hashes notes the
 * hashes here while the adapter walks the calls. */
static _Thread_local struct { char (*out)[HR_CCR_HASH_LEN + 1]; size_t n, max; } noting;

static json_t *note_hash(const char *hash, const char *query)
{
    (void)query;
    if (hash && noting.n < noting.max && strlen(hash) == HR_CCR_HASH_LEN)
        memcpy(noting.out[noting.n++], hash, HR_CCR_HASH_LEN + 1);
    return json_string("");
}

size_t hr_retrieve_kept_hashes(const struct hr_api *api, const char *key, char (*out)[HR_CCR_HASH_LEN + 1],
                               size_t max)
{
    if (!api->prepend_results || !__atomic_load_n(&kept_n, __ATOMIC_RELAXED)) return 0;
    json_t *calls = NULL;
    time_t now = now_s();
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX && !calls; i++)
        if (kept[i].at && now - kept[i].at <= KEPT_TTL_S && !strcmp(kept[i].key, key))
            calls = json_deep_copy(kept[i].calls);
    pthread_mutex_unlock(&kept_lock);
    const json_t *list[MAX_CALLS];
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c) if (n < MAX_CALLS) list[n++] = c;
    json_t *scratch = json_pack("{s:[]}", api->items_key);
    noting.out = out;
    noting.n = 0;
    noting.max = max;
    if (n && scratch) api->prepend_results(scratch, list, n, note_hash);
    json_decref(scratch);
    json_decref(calls);
    return noting.n;
}

/* A copy of the calls kept under `key` (NULL: none); a conversation's are
 * claimed by `request_id`. */
static json_t *kept_get(const char *key, const char *request_id)
{
    json_t *calls = NULL;
    time_t now = now_s();
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX; i++) {
        struct kept *k = &kept[i];
        if (!k->at || strcmp(k->key, key)) continue;
        if (now - k->at > KEPT_TTL_S) {
            kept_free(k);
            break;
        }
        calls = json_deep_copy(k->calls);
        if (key[0] == 'c' && request_id) {
            if (!k->claimed_by[0]) __atomic_add_fetch(&kept_claims, 1, __ATOMIC_RELAXED);
            snprintf(k->claimed_by, sizeof k->claimed_by, "%s", request_id);
        }
        break;
    }
    pthread_mutex_unlock(&kept_lock);
    return calls;
}

void hr_retrieve_settled(const char *request_id, int ok)
{
    if (!request_id || !__atomic_load_n(&kept_claims, __ATOMIC_RELAXED)) return;
    /* What the shared store is told to forget, once the lock is released. */
    struct { char key[HR_API_KEY_MAX]; char *json; size_t len; } gone[2];
    size_t n_gone = 0;
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX; i++) {
        struct kept *k = &kept[i];
        if (!k->at || strcmp(k->claimed_by, request_id)) continue;
        if (ok) { /* the conversation has the results now */
            if (kept_remote && k->shared_json && n_gone < 2) {
                memcpy(gone[n_gone].key, k->key, sizeof k->key);
                gone[n_gone].json = k->shared_json;
                gone[n_gone++].len = k->shared_len;
                k->shared_json = NULL; /* ours now */
            }
            kept_free(k);
        } else { /* not added: the next request carries them again */
            k->claimed_by[0] = '\0';
            __atomic_sub_fetch(&kept_claims, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&kept_lock);
    for (size_t i = 0; i < n_gone; i++) {
        kept_remote->forget(gone[i].key, gone[i].json, gone[i].len);
        free(gone[i].json);
    }
}

static int is_retrieve(const struct hr_api *api, const json_t *call)
{
    const char *name = api->call_name(call);
    return name && !strcmp(name, HR_RETRIEVE_TOOL);
}

int hr_retrieve_strip_calls(const struct hr_api *api, const json_t *body, json_t *answer, int rounds, int *all)
{
    *all = 0;
    if (!api->drop_call) return 0;
    const json_t *calls[MAX_CALLS];
    size_t n = api->answer_calls(answer, calls, MAX_CALLS), ours = 0;
    for (size_t i = 0; i < n; i++) ours += is_retrieve(api, calls[i]);
    if (!ours) return 0;
    char keys[2][HR_API_KEY_MAX];
    size_t n_keys = api->answer_kept_as ? api->answer_kept_as(body, answer, keys, 2) : 0;
    json_t *left_out = n_keys ? json_array() : NULL;
    int dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_retrieve(api, calls[i])) continue;
        if (left_out) json_array_append_new(left_out, json_deep_copy(calls[i]));
        dropped += api->drop_call(answer, calls[i]); /* calls[i] is gone now */
    }
    for (size_t k = 0; dropped && left_out && k < n_keys; k++) kept_put(keys[k], left_out);
    json_decref(left_out);
    if (dropped && ours == n && api->calls_gone && !api->answer_calls(answer, calls, MAX_CALLS)) {
        /* Only ours, and not answered (the rounds are spent): the client
         * gets a finished turn, with the model's text or, without one, a
         * line saying why there is none. */
        char note[400];
        if (rounds > 0)
            snprintf(note, sizeof note, "[headroom: the model asked to read compressed tool outputs in full "
                     "(headroom_retrieve) %d times in a row; headroomd answered %d of those and stopped there, so "
                     "this turn has no answer. Send a message to go on.]", rounds + 1, rounds);
        else
            snprintf(note, sizeof note, "[headroom: the model asked to read a compressed tool output in full "
                     "(headroom_retrieve) and headroomd could not answer it, so this turn has no answer. Send a "
                     "message to go on.]");
        api->calls_gone(answer, note);
        *all = 1;
    }
    return dropped;
}

int hr_retrieve_continue(const struct hr_api *api, json_t *body, const char *model, const char *request_id,
                         uint64_t *tokens)
{
    *tokens = 0;
    if (!api->continues_from || !api->prepend_results || !__atomic_load_n(&kept_n, __ATOMIC_RELAXED)) return 0;
    char keys[2][HR_API_KEY_MAX];
    size_t n_keys = api->continues_from(body, keys, 2);
    int added = 0;
    for (size_t k = 0; k < n_keys; k++) {
        json_t *calls = kept_get(keys[k], request_id);
        if (!calls) continue;
        const json_t *list[MAX_CALLS];
        size_t n = 0, i;
        json_t *c;
        json_array_foreach(calls, i, c) if (n < MAX_CALLS) list[n++] = c;
        json_t *items = json_object_get(body, api->items_key);
        json_t *text = json_is_string(items) ? json_incref(items) : NULL; /* becomes an item: counted already */
        int put = api->prepend_results(body, list, n, result_text);
        items = json_object_get(body, api->items_key);
        for (i = 0; put > 0 && i < (size_t)put; i++)
            *tokens += PER_MESSAGE_OVERHEAD + hr_json_tokens(model, json_array_get(items, i));
        if (put > 0 && text) /* the user item the text became, after the results */
            *tokens += PER_MESSAGE_OVERHEAD + hr_json_tokens(model, json_array_get(items, (size_t)put)) -
                       hr_json_tokens(model, text);
        if (put > 0) {
            HR_INFO(LOGGER, "%s: %d headroom_retrieve call%s of %s (left out of the answer the client got) answered "
                    "from the CCR store before the client's input", request_id ? request_id : "-", put,
                    put == 1 ? "" : "s", keys[k] + 2);
            added += put;
        }
        json_decref(text);
        json_decref(calls);
    }
    return added;
}
