/* session_floor.c — a fixed-size, lossy table (session hash -> view):
 * forgetting a session only costs one turn of prompt-cache misses. */
#include <pthread.h>
#include <string.h>
#include "hash.h"
#include "session_floor.h"

#define SLOTS 4096

struct slot {
    uint64_t key;
    struct hr_session_view v;
};

static struct slot slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t hr_session_text_hash(const char *text, size_t len)
{
    uint64_t a, b;
    hr_hash128(text, len, &a, &b);
    return a ^ (b << 1);
}

static uint64_t key_of(const char *session) { return hr_session_text_hash(session, strlen(session)) | 1; }

void hr_session_get(const char *session, struct hr_session_view *out)
{
    memset(out, 0, sizeof *out);
    if (!session || !*session) return;
    uint64_t k = key_of(session);
    pthread_mutex_lock(&lock);
    if (slots[k % SLOTS].key == k) *out = slots[k % SLOTS].v;
    pthread_mutex_unlock(&lock);
}

/* The slot for `session`, taken over when another session held it. */
static struct slot *claim(uint64_t k)
{
    struct slot *s = &slots[k % SLOTS];
    if (s->key != k) *s = (struct slot){.key = k};
    return s;
}

void hr_session_record(const char *session, const uint64_t *raw, size_t n_raw, int write_raw, size_t cached_messages)
{
    if (!session || !*session || (!write_raw && !cached_messages)) return;
    uint64_t k = key_of(session);
    if (n_raw > HR_SESSION_MAX_RAW) n_raw = HR_SESSION_MAX_RAW;
    pthread_mutex_lock(&lock);
    struct slot *s = claim(k);
    if (write_raw) {
        memcpy(s->v.raw, raw, n_raw * sizeof *raw);
        s->v.n_raw = n_raw;
    }
    if (s->v.floor < cached_messages) s->v.floor = cached_messages;
    pthread_mutex_unlock(&lock);
}
