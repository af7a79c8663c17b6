/* fleet.c — `backend redis`: the CCR store, the response cache, rate-limit
 * buckets and budget spend shared by every headroomd pointing at one Redis.
 *
 * The request path (proxy.c, admission.c) stays synchronous. A request that
 * needs shared state waits in a small continuation (struct hr_fleet_wait)
 * while its worker serves others: budget spend and cached answer are read
 * together (pipelined), then the rate-limit script runs unless the request
 * is already settled; then the route runs again with the answers at hand,
 * which the cache backend and the rate-limit hook below read. Writes
 * (stored originals, cached answers, spend, tokens) are sent without
 * waiting. Originals another instance stored are fetched into this
 * process's CCR store before the synchronous retrieve code looks. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <event2/event.h>
#include "body_codec.h"
#include "ccr.h"
#include "cost.h"
#include "fleet.h"
#include "host.h"
#include "http_server.h"
#include "json_load.h"
#include "log.h"
#include "proxy.h"
#include "ratelimit.h"
#include "redis_conn.h"
#include "warn_gate.h"
#include "respcache.h"
#include "retrieve_tool.h"
#include "stats.h"
#include "stats_json.h"

#define LOGGER "headroom.backend"
#define MAX_FETCH 64               /* originals fetched for one retrieve round */

enum kind { K_BUDGET_READ, K_BUDGET_ADD, K_RATE, K_CACHE_GET, K_CACHE_PUT, K_CCR_GET, K_CCR_PUT, K_KEPT_GET,
            K_KEPT_PUT, N_KINDS };
static const char *const kind_names[N_KINDS] = {"budget_read", "budget_add", "rate_limit", "cache_get",
                                                "cache_put", "ccr_get", "ccr_put", "kept_get", "kept_put"};

/* Token bucket per key, as ratelimit.c keeps it in memory, refilled by
 * Redis's own clock (instances' clocks may differ). ARGV: rpm, tpm, mode
 * ("admit": take one request if there is room for it and a token; "tokens":
 * take ARGV[4] tokens, maybe into debt). Returns the waits in ms before a
 * request and a token would fit (0, 0 = admitted). */
static const char RATE_SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
    "local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local v = redis.call('HMGET', KEYS[1], 'r', 'k', 'at')\n"
    "local r, k, at = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])\n"
    "if not at then r, k, at = rpm, tpm, now end\n"
    "local dt = now - at\n"
    "if dt < 0 then dt = 0 end\n"
    "r = math.min(rpm, r + dt * rpm / 60)\n"
    "k = math.min(tpm, k + dt * tpm / 60)\n"
    "local wr, wk = 0, 0\n"
    "if ARGV[3] == 'admit' then\n"
    "  if rpm > 0 and r < 1 then wr = (1 - r) * 60 / rpm end\n"
    "  if tpm > 0 and k < 1 then wk = (1 - k) * 60 / tpm end\n"
    "  if wr == 0 and wk == 0 and rpm > 0 then r = r - 1 end\n"
    "elseif tpm > 0 then\n"
    "  k = k - tonumber(ARGV[4])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'r', tostring(r), 'k', tostring(k), 'at', tostring(now))\n"
    "local ttl = 61\n"
    "if tpm > 0 and k < 0 then ttl = ttl + math.ceil(-k * 60 / tpm) end\n"
    "redis.call('EXPIRE', KEYS[1], ttl)\n"
    "return {math.ceil(wr * 1000), math.ceil(wk * 1000)}\n";

/* Spend in whole micro-dollars (every cost is rounded to them), so N
 * instances add up exactly; the key lives a day past its period. Each add
 * carries its stream (a worker of this process) and a number increasing
 * per stream; KEYS[2] keeps each stream's last number applied, and an add
 * whose number is not above it is a copy of one already counted: the total
 * is returned, nothing added. ARGV: micro-dollars, expiry, stream, number.
 * The reads come first, so a refusal (a key of the wrong type) adds nothing. */
static const char BUDGET_SCRIPT[] =
    "local last = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')\n"
    "if tonumber(ARGV[4]) <= last then return tonumber(redis.call('GET', KEYS[1]) or '0') end\n"
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])\n"
    "redis.call('EXPIREAT', KEYS[1], ARGV[2])\n"
    "redis.call('EXPIREAT', KEYS[2], ARGV[2])\n"
    "return v\n";

struct budget_add;

struct fleet_worker {
    struct hr_rconn *conn;
    struct event *drain;            /* sends originals stored on helper threads */
    struct hr_fleet_wait *waits;    /* every wait of this worker, freed at stop if still pending */
    char stream[40];                /* "<process id>.<worker>": the numbers of its spend adds are its own */
    unsigned long long seq;         /* the last number given */
    struct budget_add *lost;        /* adds written without an answer, by number: sent again first */
    struct budget_add *resending;   /* the first of them, sent again, waiting for its answer */
    struct budget_add *sending;     /* every add written, answer awaited (resending too): freed at stop */
    struct ccr_push *pushes;        /* originals written, answer awaited (freed at stop if never answered) */
    int flushing;                   /* originals of the unsent queue written, answers awaited */
    int in_flush;                   /* flush_unsent is running (an answer at once must not re-enter it) */
    /* A Content-Encoding body decoded by hr_fleet_defer for a request it let
     * go at once: the proxy takes it (hr_fleet_take_decoded), not decoding
     * again; dropped at the next defer. */
    struct hr_req *dec_req;
    char *dec;
    size_t dec_len;
};

struct outbox_item {
    char hash[HR_CCR_HASH_LEN + 1];
    char *data;
    size_t len;
    double expires;                 /* hr_now() seconds: stored + ccr_ttl */
    struct outbox_item *next;
};

/* An original Redis did not get (down, or no answer): its address only;
 * the bytes are read from the local store when it is sent. */
struct unsent {
    char hash[HR_CCR_HASH_LEN + 1];
    size_t len;
    double expires;
    struct unsent *prev, *next;     /* oldest first */
    struct unsent *next_in_bucket;
};

#define UNSENT_BUCKETS 1024
#define UNSENT_MAX_ENTRIES 16384    /* besides the byte cap: ccr_max_size */
#define FLUSH_BATCH 32              /* originals in flight at once when sending the queue */
#define FLUSH_BATCH_BYTES (1u << 20)

static struct {
    int on;
    struct hr_rconn_settings s;
    char *host, *password, *prefix, *url;
    int fail_closed;
    unsigned cache_ttl_s, ccr_ttl_s;
    struct fleet_worker *workers;
    size_t n_workers;
    char *user;                     /* ACL user from the url, or NULL */
    char proc_id[17];               /* random per process: names its spend streams */
    pthread_mutex_t lock;           /* outbox, unsent spend, figures below */
    struct outbox_item *outbox;
    long long unsent_micro;         /* spend Redis did not count (down, refused): sent with the next add */
    time_t unsent_start, unsent_end;
    const char *unsent_period;
    long long lost_micro;           /* spend of the workers' lost adds: counted once they are answered */
    unsigned long long fail_open, fail_closed_n, ccr_fetched, ccr_missing;
    unsigned long long ccr_mismatched; /* fetched bytes that were not the address's */
    unsigned long long cache_invalid;  /* cached answers read back that cache_put did not write */
    struct hr_warn_gate open_warn, mismatch_warn, invalid_warn; /* a line each at most every 10 s */
    /* kept headroom_retrieve calls not written, not read, not usable */
    struct hr_warn_gate kept_put_warn, kept_get_warn, kept_invalid_warn;
    size_t max_answer_bytes;        /* max_response_size at start: the largest answer cached */
    /* Originals stored while Redis could not take them, sent once it is
     * back: at most ccr_max_size bytes of them (what the local store can
     * hold) and UNSENT_MAX_ENTRIES, the oldest dropped first. */
    struct unsent *unsent_head, *unsent_tail, *unsent_index[UNSENT_BUCKETS];
    size_t unsent_n, unsent_bytes, unsent_cap_bytes;
    unsigned long long unsent_sent, unsent_dropped, unsent_expired, unsent_evicted;
} fl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_long n_waiting; /* waits of every worker, for /stats */
static _Thread_local struct hr_rconn *tl_conn;
static _Thread_local struct fleet_worker *tl_fw;
static _Thread_local struct hr_fleet_wait *tl_current;

struct hr_fleet_wait {
    struct hr_worker *w;
    struct hr_req *req;
    hr_fleet_dispatch_fn again;
    int stage, pending;
    double t_arrived;               /* monotonic ms: latency and overhead count the wait */
    int strict_failed;              /* a budget or rate-limit answer is missing */
    int let_through;                /* ... and on_backend_error open let it through (counted once) */
    int unchecked_refused;          /* ... and on_backend_error closed refuses it (a message's wait) */
    json_t *body;
    char *decoded;                  /* the body sent with Content-Encoding, decoded (NULL: none) */
    size_t decoded_len;
    const char *budget_period;
    time_t budget_start;
    int want_budget, want_cache, want_rate;
    uint8_t cache_key[HR_RESPCACHE_KEY_LEN];
    int cache_hit;
    struct hr_respcache_entry entry;
    uint8_t rate_key[HR_SHA256_LEN];
    uint64_t rpm, tpm;              /* the limits the script was given */
    int rate_limited;
    struct hr_ratelimit_verdict verdict;
    /* kept headroom_retrieve calls a Responses request continues from (stage 1) */
    const struct hr_api *api;
    char kept_keys[2][HR_API_KEY_MAX];
    size_t n_kept, kept_replies;
    /* originals to fetch: a retrieve's (only those), or the kept calls' (stage 2) */
    int only_originals;
    char (*hashes)[HR_CCR_HASH_LEN + 1];
    size_t n_hashes;
    size_t replies;                 /* originals answered so far (in the order asked) */
    struct proxy_req *p;            /* a retrieve round (NULL once cancelled) */
    void (*resume)(struct proxy_req *p);
    int abandoned;                  /* answered at shutdown: free once Redis has answered */
    struct hr_fleet_wait *prev, *next; /* fleet_worker.waits */
};

int hr_fleet_enabled(void) { return fl.on; }

const char *hr_fleet_unready(void)
{
    if (!fl.on || !fl.fail_closed || hr_rconn_all_up()) return NULL;
    const char *period;
    time_t start, end;
    if (!hr_ratelimit_enabled() && !hr_cost_budget_period(hr_clock_now(), &period, &start, &end)) return NULL;
    return "the shared state backend (Redis) is unavailable and on_backend_error is closed: requests that need "
           "the budget or rate limit get 503 until it is back";
}

/* For the "Redis unavailable" WARN: the mode and what it does to requests
 * (a reload may switch the budget or rate limit on or off: asked each time). */
static const char *down_effect(void)
{
    const char *period;
    time_t start, end;
    int strict = hr_ratelimit_enabled() || hr_cost_budget_period(hr_clock_now(), &period, &start, &end);
    if (!strict)
        return fl.fail_closed ? "on_backend_error closed, but no budget or rate limit to check: requests go on"
                              : "on_backend_error open, no budget or rate limit to check: requests go on";
    return fl.fail_closed ? "on_backend_error closed: model requests get 503"
                          : "on_backend_error open: budget and rate limit unchecked";
}

static size_t make_key(char *out, size_t cap, const char *what, const char *id)
{
    int n = snprintf(out, cap, "%s%s%s", fl.prefix, what, id);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void ignore_reply(void *ud, int status, const redisReply *r)
{
    (void)ud;
    (void)status;
    (void)r;
}

/* A budget or rate-limit answer is missing and on_backend_error is open:
 * the request goes on unchecked, loudly (a line at most every 10 s, with
 * the number of such requests since the last one). */
static void note_fail_open(struct hr_fleet_wait *x, const char *what)
{
    pthread_mutex_lock(&fl.lock);
    if (!x->let_through++) fl.fail_open++;
    unsigned long long quiet = 0;
    int say = hr_warn_gate_pass(&fl.open_warn, hr_now(), 10, &quiet);
    pthread_mutex_unlock(&fl.lock);
    if (say && quiet)
        HR_WARN(LOGGER, "Redis did not answer: %s not enforced for this request (on_backend_error open; set "
                "on_backend_error closed to refuse instead); %llu more unchecked since the last such line", what,
                quiet);
    else if (say)
        HR_WARN(LOGGER, "Redis did not answer: %s not enforced for this request (on_backend_error open; set "
                "on_backend_error closed to refuse instead)", what);
}

/* ------------------------------------------------------------ CCR */

/* One original written to Redis, until its answer: without one (Redis down,
 * or the connection lost first) it joins the unsent queue. */
struct ccr_push {
    struct fleet_worker *fw;
    char hash[HR_CCR_HASH_LEN + 1];
    size_t len;
    double expires;
    int from_queue;                 /* sent by flush_unsent */
    int renew;                      /* an EXPIRE only: Redis was known to hold it */
    struct ccr_push *prev, *next;   /* fw->pushes */
};

/* Addresses Redis took from this process (lossy: a slot holds the last one
 * that fell in it). An agent resends every tool output each turn, so the
 * same originals are stored again and again: one Redis holds already only
 * has its expiry renewed (EXPIRE, a few bytes), its bytes go again only if
 * Redis answers that it lacks it (expired, evicted, flushed). */
#define IN_REDIS_SLOTS 4096
static char in_redis[IN_REDIS_SLOTS][HR_CCR_HASH_LEN + 1]; /* under fl.lock */

static size_t in_redis_slot(const char *hash)
{
    size_t h = 0;
    for (int i = 0; i < 12; i++) h = h * 16 + (size_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return h % IN_REDIS_SLOTS;
}

static int in_redis_known(const char *hash)
{
    pthread_mutex_lock(&fl.lock);
    int known = !strcmp(in_redis[in_redis_slot(hash)], hash);
    pthread_mutex_unlock(&fl.lock);
    return known;
}

static void in_redis_note(const char *hash, int held)
{
    pthread_mutex_lock(&fl.lock);
    char *slot = in_redis[in_redis_slot(hash)];
    if (held) memcpy(slot, hash, HR_CCR_HASH_LEN + 1);
    else if (!strcmp(slot, hash)) slot[0] = '\0';
    pthread_mutex_unlock(&fl.lock);
}

static size_t unsent_bucket(const char *hash)
{
    size_t h = 0;
    for (int i = 0; i < 8; i++) h = h * 31 + (unsigned char)hash[i];
    return h % UNSENT_BUCKETS;
}

static struct unsent *unsent_find_locked(const char *hash)
{
    for (struct unsent *u = fl.unsent_index[unsent_bucket(hash)]; u; u = u->next_in_bucket)
        if (!strcmp(u->hash, hash)) return u;
    return NULL;
}

static void unsent_unlink_locked(struct unsent *u)
{
    struct unsent **pp = &fl.unsent_index[unsent_bucket(u->hash)];
    while (*pp != u) pp = &(*pp)->next_in_bucket;
    *pp = u->next_in_bucket;
    if (u->prev) u->prev->next = u->next;
    else fl.unsent_head = u->next;
    if (u->next) u->next->prev = u->prev;
    else fl.unsent_tail = u->prev;
    fl.unsent_n--;
    fl.unsent_bytes -= u->len;
}

/* Keep the address of an original Redis did not get; one already kept
 * gets the later expiry. The oldest go first past the caps. */
static void unsent_add(const char *hash, size_t len, double expires)
{
    pthread_mutex_lock(&fl.lock);
    struct unsent *u = unsent_find_locked(hash);
    if (u) {
        if (expires > u->expires) u->expires = expires;
        pthread_mutex_unlock(&fl.lock);
        return;
    }
    if (len > fl.unsent_cap_bytes || !(u = calloc(1, sizeof *u))) {
        fl.unsent_dropped++;
        pthread_mutex_unlock(&fl.lock);
        return;
    }
    memcpy(u->hash, hash, sizeof u->hash);
    u->len = len;
    u->expires = expires;
    size_t b = unsent_bucket(hash);
    u->next_in_bucket = fl.unsent_index[b];
    fl.unsent_index[b] = u;
    u->prev = fl.unsent_tail;
    if (fl.unsent_tail) fl.unsent_tail->next = u;
    else fl.unsent_head = u;
    fl.unsent_tail = u;
    fl.unsent_n++;
    fl.unsent_bytes += len;
    while (fl.unsent_head != u && (fl.unsent_bytes > fl.unsent_cap_bytes || fl.unsent_n > UNSENT_MAX_ENTRIES)) {
        struct unsent *old = fl.unsent_head;
        unsent_unlink_locked(old);
        free(old);
        fl.unsent_dropped++;
    }
    pthread_mutex_unlock(&fl.lock);
}

static void flush_unsent(struct fleet_worker *fw);
static void ccr_send(struct fleet_worker *fw, const char *hash, const char *data, size_t len, double expires,
                     unsigned ttl_s, int from_queue);

static void ccr_pushed(void *ud, int status, const redisReply *r)
{
    struct ccr_push *p = ud;
    struct fleet_worker *fw = p->fw;
    if (p->prev) p->prev->next = p->next;
    else fw->pushes = p->next;
    if (p->next) p->next->prev = p->prev;
    if (status == HR_RCONN_UNSENT || status == HR_RCONN_LOST) {
        /* SET NX of the same bytes: sending it twice is harmless. */
        in_redis_note(p->hash, 0);
        unsent_add(p->hash, p->len, p->expires);
    } else if (status == HR_RCONN_REFUSED) {
        in_redis_note(p->hash, 0); /* not stored (an error reply): the next store sends the bytes */
    } else if (status == HR_RCONN_OK && p->renew && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        /* Redis lost it (expired, evicted, flushed): the bytes go again,
         * read back from this process's store (which just stored them). */
        in_redis_note(p->hash, 0);
        double now = hr_now(), expires = 0;
        size_t len = 0;
        char *data = hr_ccr_peek_local(p->hash, &len, &expires);
        if (data && p->expires - now >= 1) ccr_send(fw, p->hash, data, len, p->expires, (unsigned)(p->expires - now), 0);
        hr_ccr_free(data);
    } else if (status == HR_RCONN_OK) {
        in_redis_note(p->hash, 1);
        if (p->from_queue) {
            pthread_mutex_lock(&fl.lock);
            fl.unsent_sent++;
            pthread_mutex_unlock(&fl.lock);
        }
    }
    int next = p->from_queue && !--fw->flushing;
    free(p);
    if (next) flush_unsent(fw); /* the batch is answered: the next one */
}

/* An original stored again (an agent resends its tool outputs every turn)
 * lives ccr_ttl from now here: so it does in Redis, or after ccr_ttl from
 * its first store another instance could no longer answer for it. NX: an
 * address keeps what markers in flight point to. */
static const char CCR_PUT_SCRIPT[] =
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
    "return 1\n";

/* The original for ttl_s more seconds. One from the unsent queue goes with
 * what it has left, which must not cut short a later store's: SET NX only.
 * One Redis took from this process before goes as an EXPIRE (its bytes
 * follow only if Redis answers 0: it lacks it). */
static void ccr_send(struct fleet_worker *fw, const char *hash, const char *data, size_t len, double expires,
                     unsigned ttl_s, int from_queue)
{
    char key[256], ttl[16];
    size_t kl = make_key(key, sizeof key, "ccr:", hash);
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    int renew = !from_queue && in_redis_known(hash);
    /* Noted as sent now, not when answered: the next turn's store (often on
     * another worker, before this answer) then renews instead of sending the
     * bytes again; should it reach Redis first, Redis answers 0 and the
     * bytes go then. A store that fails forgets it. */
    if (!renew) in_redis_note(hash, 1);
    const char *set_argv[] = {"SET", key, data, "NX", "EX", ttl};
    size_t set_lens[] = {3, kl, len, 2, 2, strlen(ttl)};
    const char *eval_argv[] = {"EVAL", CCR_PUT_SCRIPT, "1", key, data, ttl};
    size_t eval_lens[] = {4, sizeof CCR_PUT_SCRIPT - 1, 1, kl, len, strlen(ttl)};
    const char *expire_argv[] = {"EXPIRE", key, ttl};
    size_t expire_lens[] = {6, kl, strlen(ttl)};
    const char **argv = renew ? expire_argv : from_queue ? set_argv : eval_argv;
    const size_t *lens = renew ? expire_lens : from_queue ? set_lens : eval_lens;
    int argc = renew ? 3 : 6;
    struct ccr_push *p = calloc(1, sizeof *p);
    if (!p) {
        hr_rconn_command(fw->conn, K_CCR_PUT, argc, argv, lens, ignore_reply, NULL);
        return;
    }
    *p = (struct ccr_push){.fw = fw, .len = len, .expires = expires, .from_queue = from_queue, .renew = renew,
                           .next = fw->pushes};
    memcpy(p->hash, hash, sizeof p->hash);
    if (fw->pushes) fw->pushes->prev = p;
    fw->pushes = p;
    if (from_queue) fw->flushing++;
    hr_rconn_command(fw->conn, K_CCR_PUT, argc, argv, lens, ccr_pushed, p);
}

/* Send the originals Redis missed, a batch at a time (the answers to one
 * batch send the next), so a long queue neither floods the connection nor
 * outlasts timeout_ms. Each goes with the time it has left of ccr_ttl, as
 * this process holds it; one expired or no longer held here is dropped. */
static void flush_unsent(struct fleet_worker *fw)
{
    if (fw->in_flush) return;
    fw->in_flush = 1;
    /* Another batch at once only when nothing of this one is in flight
     * (all dropped, or failed at once): bounded, whatever fails. */
    for (int round = 0; round < 64 && !fw->flushing && hr_rconn_connected(fw->conn); round++) {
        struct unsent *batch[FLUSH_BATCH];
        size_t n = 0, bytes = 0;
        pthread_mutex_lock(&fl.lock);
        while (fl.unsent_head && n < FLUSH_BATCH && bytes < FLUSH_BATCH_BYTES) {
            struct unsent *u = fl.unsent_head;
            unsent_unlink_locked(u);
            batch[n++] = u;
            bytes += u->len;
        }
        pthread_mutex_unlock(&fl.lock);
        if (!n) break;
        unsigned long long expired = 0, evicted = 0;
        for (size_t i = 0; i < n; i++) {
            struct unsent *u = batch[i];
            double now = hr_now(), local_expires = 0;
            size_t len = 0;
            char *data = u->expires - now >= 1 ? hr_ccr_peek_local(u->hash, &len, &local_expires) : NULL;
            if (u->expires - now < 1) expired++;
            else if (!data || local_expires - now < 1) evicted++;
            else ccr_send(fw, u->hash, data, len, local_expires, (unsigned)(local_expires - now), 1);
            hr_ccr_free(data);
            free(u);
        }
        if (expired || evicted) {
            pthread_mutex_lock(&fl.lock);
            fl.unsent_expired += expired;
            fl.unsent_evicted += evicted;
            pthread_mutex_unlock(&fl.lock);
        }
    }
    fw->in_flush = 0;
}

/* With fl.lock held: wake every worker's loop to send what another thread
 * stored. The lock because the main thread frees a stopped worker's event
 * (hr_fleet_worker_stop) while plugin timers or other threads may still
 * store an original or add spend: they then find it NULL, never freed. */
static void wake_drains_locked(void)
{
    for (size_t i = 0; i < fl.n_workers; i++)
        if (fl.workers[i].drain) event_active(fl.workers[i].drain, EV_READ, 0);
}

static void ccr_put_remote(void *ctx, const char *hash, const char *data, size_t len)
{
    (void)ctx;
    double expires = hr_now() + fl.ccr_ttl_s;
    if (tl_fw) {
        ccr_send(tl_fw, hash, data, len, expires, fl.ccr_ttl_s, 0);
        return;
    }
    /* A compression helper thread: a worker's loop sends it. */
    struct outbox_item *it = calloc(1, sizeof *it);
    if (!it || !(it->data = malloc(len ? len : 1))) {
        free(it);
        return;
    }
    memcpy(it->hash, hash, sizeof it->hash);
    memcpy(it->data, data, len);
    it->len = len;
    it->expires = expires;
    pthread_mutex_lock(&fl.lock);
    it->next = fl.outbox;
    fl.outbox = it;
    wake_drains_locked();
    pthread_mutex_unlock(&fl.lock);
}

static void budget_add_now(struct fleet_worker *fw, const char *period, time_t start, time_t end, long long micro);

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fleet_worker *fw = arg;
    pthread_mutex_lock(&fl.lock);
    struct outbox_item *it = fl.outbox;
    fl.outbox = NULL;
    pthread_mutex_unlock(&fl.lock);
    while (it) {
        struct outbox_item *next = it->next;
        double left = it->expires - hr_now();
        if (left >= 1) ccr_send(fw, it->hash, it->data, it->len, it->expires, (unsigned)left, 0);
        free(it->data);
        free(it);
        it = next;
    }
    budget_add_now(fw, NULL, 0, 0, 0); /* spend counted off the workers' threads */
}

/* ------------------------------------------------------------ budget */

/* Each worker's adds of spend are numbered (its stream; BUDGET_SCRIPT
 * applies a number once). An add written without an answer (a timeout, a
 * lost connection) may have run, or may yet run when a stalled Redis
 * resumes: it is kept and sent again with its number, so it counts once
 * whichever copy arrives first. That holds while no higher number of the
 * stream is applied before it is settled, so a stream with lost adds sends
 * them again one at a time, in order, on its next connection, and holds new
 * spend until they are answered. Spend that never reached Redis (down) or
 * that Redis refused did not count: it is held and sent, merged, with the
 * stream's next add. So the shared total stays exact, only later. */
struct budget_add {
    struct fleet_worker *fw;
    const char *period;
    time_t start, end;
    long long micro;
    unsigned long long seq;
    int resend;                     /* a lost add, sent again */
    struct budget_add *next;        /* fw->lost, by number */
    struct budget_add *sprev, *snext; /* fw->sending while its answer is awaited */
};

/* Spend Redis did not count, sent with the next add. A past period's is
 * dropped once a later period's comes: it is no longer enforced. */
static void hold(const char *period, time_t start, time_t end, long long micro)
{
    pthread_mutex_lock(&fl.lock);
    if (!fl.unsent_period || start > fl.unsent_start) {
        fl.unsent_micro = 0;
        fl.unsent_start = start;
        fl.unsent_end = end;
        fl.unsent_period = period;
    }
    if (start == fl.unsent_start) fl.unsent_micro += micro;
    pthread_mutex_unlock(&fl.lock);
}

static void budget_added(void *ud, int status, const redisReply *r);

static void budget_send(struct budget_add *a)
{
    char id[64], key[256], seen[256], amount[24], expire[24], seq[24];
    snprintf(id, sizeof id, "%s:%lld", a->period, (long long)a->start);
    size_t kl = make_key(key, sizeof key, "budget:", id);
    size_t sl = make_key(seen, sizeof seen, "budget_seq:", id);
    snprintf(amount, sizeof amount, "%lld", a->micro);
    snprintf(expire, sizeof expire, "%lld", (long long)a->end + 86400);
    snprintf(seq, sizeof seq, "%llu", a->seq);
    const char *argv[] = {"EVAL", BUDGET_SCRIPT, "2", key, seen, amount, expire, a->fw->stream, seq};
    size_t lens[] = {4, sizeof BUDGET_SCRIPT - 1, 1, kl, sl, strlen(amount), strlen(expire), strlen(a->fw->stream),
                     strlen(seq)};
    struct fleet_worker *fw = a->fw;
    a->sprev = NULL;
    a->snext = fw->sending;
    if (fw->sending) fw->sending->sprev = a;
    fw->sending = a;
    hr_rconn_command(fw->conn, K_BUDGET_ADD, 9, argv, lens, budget_added, a);
}

static void send_new(struct fleet_worker *fw, const char *period, time_t start, time_t end, long long micro)
{
    struct budget_add *a = malloc(sizeof *a);
    if (!a) {
        hold(period, start, end, micro);
        return;
    }
    *a = (struct budget_add){.fw = fw, .period = period, .start = start, .end = end, .micro = micro, .seq = ++fw->seq};
    budget_send(a);
}

/* The first lost add, sent again (its answer sends the next). */
static void resend_next(struct fleet_worker *fw)
{
    struct budget_add *a = fw->lost;
    fw->lost = a->next;
    a->next = NULL;
    a->resend = 1;
    fw->resending = a;
    budget_send(a);
}

static void keep_lost(struct fleet_worker *fw, struct budget_add *a)
{
    struct budget_add **p = &fw->lost;
    while (*p && (*p)->seq < a->seq) p = &(*p)->next;
    a->next = *p;
    *p = a;
}

/* New spend on this worker's stream (micro 0: only what is held): sent
 * with the next number, with the held spend; held while the stream settles
 * lost adds or Redis is down. */
static void budget_add_now(struct fleet_worker *fw, const char *period, time_t start, time_t end, long long micro)
{
    if (fw->lost || fw->resending || !hr_rconn_sendable(fw->conn)) {
        if (micro > 0) hold(period, start, end, micro);
        /* Redis refused a lost add sent again: try again now and then. */
        if (fw->lost && !fw->resending && hr_rconn_connected(fw->conn)) resend_next(fw);
        return;
    }
    pthread_mutex_lock(&fl.lock);
    long long held = fl.unsent_micro;
    time_t hs = fl.unsent_start, he = fl.unsent_end;
    const char *hp = fl.unsent_period;
    fl.unsent_micro = 0;
    pthread_mutex_unlock(&fl.lock);
    if (held > 0 && micro > 0 && hs == start) micro += held;
    else if (held > 0) send_new(fw, hp, hs, he, held);
    if (micro > 0) send_new(fw, period, start, end, micro);
}

static void budget_added(void *ud, int status, const redisReply *r)
{
    struct budget_add *a = ud;
    struct fleet_worker *fw = a->fw;
    if (a->sprev) a->sprev->snext = a->snext;
    else fw->sending = a->snext;
    if (a->snext) a->snext->sprev = a->sprev;
    if (a->resend) fw->resending = NULL;
    if (status == HR_RCONN_OK && r->type == REDIS_REPLY_INTEGER) {
        hr_cost_budget_observe(a->start, (double)r->integer / 1e6);
        int settled = a->resend;
        if (settled) {
            pthread_mutex_lock(&fl.lock);
            fl.lost_micro -= a->micro;
            pthread_mutex_unlock(&fl.lock);
        }
        free(a);
        if (settled && fw->lost) resend_next(fw);
        else if (settled) budget_add_now(fw, NULL, 0, 0, 0); /* what was held meanwhile */
        return;
    }
    if (a->resend || status == HR_RCONN_LOST) {
        /* It may have run, or may yet: sent again with its number. */
        if (!a->resend) {
            pthread_mutex_lock(&fl.lock);
            fl.lost_micro += a->micro;
            pthread_mutex_unlock(&fl.lock);
        }
        keep_lost(fw, a);
        return;
    }
    /* Never written, or refused: it did not count. */
    hold(a->period, a->start, a->end, a->micro);
    free(a);
}

static void budget_add_remote(void *ctx, double usd, double now)
{
    (void)ctx;
    const char *period;
    time_t start, end;
    long long micro = llround(usd * 1e6);
    if (micro <= 0 || !hr_cost_budget_period(now, &period, &start, &end)) return;
    if (tl_fw) {
        budget_add_now(tl_fw, period, start, end, micro);
        return;
    }
    /* Not a worker's thread: a worker's loop sends it. */
    hold(period, start, end, micro);
    pthread_mutex_lock(&fl.lock);
    wake_drains_locked();
    pthread_mutex_unlock(&fl.lock);
}

static void on_conn_up(struct hr_rconn *c, void *ud)
{
    (void)c;
    struct fleet_worker *fw = ud;
    pthread_mutex_lock(&fl.lock);
    size_t unsent = fl.unsent_n, unsent_bytes = fl.unsent_bytes;
    pthread_mutex_unlock(&fl.lock);
    if (unsent) {
        HR_INFO(LOGGER, "worker %zu: sending the %zu original%s (%zu bytes) stored while Redis could not take them",
                (size_t)(fw - fl.workers), unsent, unsent == 1 ? "" : "s", unsent_bytes);
        flush_unsent(fw);
    }
    pthread_mutex_lock(&fl.lock);
    long long held = fl.unsent_micro, lost = fl.lost_micro;
    pthread_mutex_unlock(&fl.lock);
    if (fw->lost && !fw->resending) {
        HR_INFO(LOGGER, "worker %zu: sending again the spend Redis did not answer for before the connection was lost "
                "(it counts once, whether or not it had arrived), then $%.6f held meanwhile; $%.6f in all is "
                "not yet confirmed", (size_t)(fw - fl.workers), (double)held / 1e6, (double)(held + lost) / 1e6);
        resend_next(fw);
    } else if (held > 0) {
        HR_INFO(LOGGER, "sending $%.6f of spend Redis missed while it was unavailable", (double)held / 1e6);
        budget_add_now(fw, NULL, 0, 0, 0);
    }
}

/* ------------------------------------------------------------ response cache */

static int cache_get(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now, struct hr_respcache_entry *out)
{
    (void)ctx;
    (void)now;
    struct hr_fleet_wait *x = tl_current;
    if (!x || !x->cache_hit || memcmp(x->cache_key, key, HR_RESPCACHE_KEY_LEN)) return HR_RESPCACHE_MISS;
    *out = x->entry; /* handed over */
    memset(&x->entry, 0, sizeof x->entry);
    x->cache_hit = 0;
    return HR_OK;
}

/* A content type cache_put stores and cache_decode accepts: it goes out as
 * a header, so printable ASCII (no CR, LF, NUL, ESC or other control byte),
 * no space at either end, and no longer than what hr_admit_cache_store can
 * read back from an answer (255). NULL, or what is wrong. */
#define CACHE_CT_MAX 255
#define TOKENS_MAX 9999999999999999999ULL /* 19 digits, as cache_decode reads them */
static const char *ct_invalid(const char *ct, size_t n)
{
    if (!n || n > CACHE_CT_MAX) return "a content type length out of range";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ct[i] < 0x20 || (unsigned char)ct[i] > 0x7e)
            return "a content type with a control or non-ASCII byte";
    if (ct[0] == ' ' || ct[n - 1] == ' ') return "a content type with a space at an end";
    return NULL;
}

/* Stored as one string: "HR1 status before after cost ctype_len\n" ctype body. */
static int cache_put(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now,
                     const struct hr_respcache_entry *e)
{
    (void)ctx;
    (void)now;
    if (!tl_conn) return HR_EINVAL;
    const char *ct = e->content_type ? e->content_type : "application/json";
    size_t ctl = strlen(ct);
    /* What cache_decode would refuse is not stored (it would be a miss and a WARN). */
    if (e->status != 200 || ct_invalid(ct, ctl) || e->body_len > fl.max_answer_bytes || !(e->cost_usd >= 0) ||
        e->cost_usd >= 1e6 || e->tokens_before > TOKENS_MAX || e->tokens_after > TOKENS_MAX)
        return HR_EINVAL;
    char head[160];
    int hl = snprintf(head, sizeof head, "HR1 %d %llu %llu %.6f %zu\n", e->status, (unsigned long long)e->tokens_before,
                      (unsigned long long)e->tokens_after, e->cost_usd, ctl);
    if (hl < 0 || (size_t)hl >= sizeof head) return HR_EINVAL; /* a cost past %.6f's width: not cached */
    size_t total = (size_t)hl + ctl + e->body_len;
    char *val = malloc(total);
    if (!val) return HR_ENOMEM;
    memcpy(val, head, (size_t)hl);
    memcpy(val + hl, ct, ctl);
    memcpy(val + hl + ctl, e->body, e->body_len);
    char id[2 * HR_RESPCACHE_KEY_LEN + 1], k[256], ttl[16];
    hex(key, HR_RESPCACHE_KEY_LEN, id);
    size_t kl = make_key(k, sizeof k, "cache:", id);
    snprintf(ttl, sizeof ttl, "%u", fl.cache_ttl_s);
    const char *argv[] = {"SET", k, val, "EX", ttl};
    size_t lens[] = {3, kl, total, 2, strlen(ttl)};
    hr_rconn_command(tl_conn, K_CACHE_PUT, 5, argv, lens, ignore_reply, NULL);
    free(val);
    return HR_OK;
}

/* A decimal number of at most `digits` digits, then `end`; 0, or -1. */
static int take_uint(const char **p, const char *lim, int digits, char end, unsigned long long *out)
{
    const char *q = *p;
    unsigned long long v = 0;
    int n = 0;
    while (q < lim && *q >= '0' && *q <= '9' && n < digits) {
        v = v * 10 + (unsigned long long)(*q++ - '0');
        n++;
    }
    if (!n || q >= lim || *q != end) return -1;
    *p = q + 1;
    *out = v;
    return 0;
}

static const char DECODE_OOM[] = "out of memory"; /* not the entry's fault: no WARN */

/* Anything sharing the prefix can write a cache key, and the content type
 * goes out as a header, the status as the status line, the body after
 * them: every field must be what cache_put writes, or the entry is not
 * used. NULL and `e` filled, or why not (for the WARN: never Redis's bytes). */
static const char *cache_decode(const char *s, size_t len, struct hr_respcache_entry *e)
{
    const char *lim = s + len, *p = s;
    unsigned long long status, before, after, ctl, ip, fp = 0;
    if (len < 4 || memcmp(s, "HR1 ", 4)) return "not headroomd's format";
    p += 4;
    if (take_uint(&p, lim, 3, ' ', &status)) return "no status";
    /* hr_admit_cache_store caches 200s only */
    if (status != 200) return "a status other than 200";
    if (take_uint(&p, lim, 19, ' ', &before) || take_uint(&p, lim, 19, ' ', &after))
        return "a token count that is not a number";
    /* The cost as %.6f writes it: digits, a point, six digits. */
    if (take_uint(&p, lim, 7, '.', &ip)) return "a cost that is not a dollar amount";
    const char *f0 = p;
    if (take_uint(&p, lim, 6, ' ', &fp) || p - f0 != 7) return "a cost that is not a dollar amount";
    if (take_uint(&p, lim, 4, '\n', &ctl)) return "no content type length";
    if ((size_t)(lim - p) < ctl) return "shorter than its content type";
    const char *bad = ct_invalid(p, ctl);
    if (bad) return bad;
    size_t body_len = (size_t)(lim - p) - ctl;
    if (body_len > fl.max_answer_bytes) return "a body over this instance's max_response_size";
    e->status = (int)status;
    e->tokens_before = before;
    e->tokens_after = after;
    e->cost_usd = (double)ip + (double)fp / 1e6;
    e->content_type = strndup(p, ctl);
    e->body_len = body_len;
    e->body = malloc(e->body_len ? e->body_len : 1);
    if (!e->content_type || !e->body) {
        hr_respcache_entry_free(e);
        return DECODE_OOM;
    }
    memcpy(e->body, p + ctl, e->body_len);
    return NULL;
}

static void cache_stats(void *ctx, json_t *o)
{
    (void)ctx;
    json_object_set_new(o, "backend", json_string("redis"));
    json_object_set_new(o, "ttl_seconds", json_integer((json_int_t)fl.cache_ttl_s));
}

static void cache_destroy(void *ctx) { (void)ctx; }

/* ------------------------------------------------------------ rate limit */

static void rate_tokens_send(const uint8_t key[HR_SHA256_LEN], uint64_t tokens, uint64_t per_min_r, uint64_t per_min_t)
{
    char id[2 * HR_SHA256_LEN + 1], k[256], rpm[24], tpm[24], n[24];
    hex(key, HR_SHA256_LEN, id);
    size_t kl = make_key(k, sizeof k, "rl:", id);
    snprintf(rpm, sizeof rpm, "%llu", (unsigned long long)per_min_r);
    snprintf(tpm, sizeof tpm, "%llu", (unsigned long long)per_min_t);
    snprintf(n, sizeof n, "%llu", (unsigned long long)tokens);
    const char *argv[] = {"EVAL", RATE_SCRIPT, "1", k, rpm, tpm, "tokens", n};
    size_t lens[] = {4, sizeof RATE_SCRIPT - 1, 1, kl, strlen(rpm), strlen(tpm), 6, strlen(n)};
    hr_rconn_command(tl_conn, K_RATE, 8, argv, lens, ignore_reply, NULL);
}

/* hr_ratelimit_admit in fleet mode: the verdict the wait fetched (the
 * request was charged then); tokens are charged after compression without
 * waiting, so a request may overdraw tpm and the next ones wait. The limits
 * are read each time: a SIGHUP reload changes them (ratelimit.c). */
static int rate_remote(void *ctx, const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge,
                       struct hr_ratelimit_verdict *v)
{
    (void)ctx;
    if (charge) {
        uint64_t rpm, tpm;
        hr_ratelimit_limits(&rpm, &tpm);
        if (tpm && tokens && tl_conn) rate_tokens_send(key, tokens, rpm, tpm);
        return HR_OK;
    }
    struct hr_fleet_wait *x = tl_current;
    if (x && x->rate_limited && !memcmp(x->rate_key, key, HR_SHA256_LEN)) {
        if (v) *v = x->verdict;
        return HR_RATELIMIT_LIMITED;
    }
    return HR_OK;
}

/* ------------------------------------------------------------ the wait */

/* Linked into the worker's list, so a wait Redis never answers (the worker
 * stopped first) is still found and freed. */
static struct hr_fleet_wait *wait_new(struct hr_worker *w)
{
    struct hr_fleet_wait *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    struct fleet_worker *fw = &fl.workers[w->index];
    x->w = w;
    x->next = fw->waits;
    if (fw->waits) fw->waits->prev = x;
    fw->waits = x;
    atomic_fetch_add(&n_waiting, 1);
    return x;
}

static void wait_free(struct hr_fleet_wait *x)
{
    struct fleet_worker *fw = &fl.workers[x->w->index];
    if (x->prev) x->prev->next = x->next;
    else fw->waits = x->next;
    if (x->next) x->next->prev = x->prev;
    atomic_fetch_sub(&n_waiting, 1);
    json_decref(x->body);
    free(x->decoded);
    hr_respcache_entry_free(&x->entry);
    free(x->hashes);
    free(x);
}

static void run_stage(struct hr_fleet_wait *x);
static int valid_hash(const char *h);

static void op_done(struct hr_fleet_wait *x)
{
    if (--x->pending) return;
    if (x->abandoned) wait_free(x);
    else run_stage(x);
}

static void budget_read(void *ud, int status, const redisReply *r)
{
    (void)status;
    struct hr_fleet_wait *x = ud;
    if (!r) x->strict_failed = 1;
    else if (r->type == REDIS_REPLY_STRING) hr_cost_budget_observe(x->budget_start, strtod(r->str, NULL) / 1e6);
    op_done(x);
}

/* A cached answer in Redis that cache_put did not write: a WARN at most
 * every 10 s, with the number left out since. `why` is ours, never the
 * value's bytes (they may hold a CR or an escape sequence). */
static void warn_invalid(const uint8_t key[HR_RESPCACHE_KEY_LEN], const char *why, size_t len)
{
    pthread_mutex_lock(&fl.lock);
    fl.cache_invalid++;
    unsigned long long quiet = 0;
    int say = hr_warn_gate_pass(&fl.invalid_warn, hr_now(), 10, &quiet);
    pthread_mutex_unlock(&fl.lock);
    if (say) {
        char id[2 * HR_RESPCACHE_KEY_LEN + 1], more[96] = "";
        hex(key, HR_RESPCACHE_KEY_LEN, id);
        if (quiet) snprintf(more, sizeof more, " (and %llu more since the last such line)", quiet);
        HR_WARN(LOGGER, "cached answer %scache:%s in Redis (%zu bytes) is not one headroomd stored: %s; not used, the "
                "request goes upstream; something else writes %scache:* keys, or the value was damaged%s", fl.prefix,
                id, len, why, fl.prefix, more);
    }
}

static void cache_read(void *ud, int status, const redisReply *r)
{
    (void)status;
    struct hr_fleet_wait *x = ud;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *why = cache_decode(r->str, r->len, &x->entry);
        if (!why) x->cache_hit = 1;
        else if (why != DECODE_OOM) warn_invalid(x->cache_key, why, r->len);
    }
    op_done(x);
}

static int wait_ms_to_s(long long ms)
{
    if (ms > 86400000LL) return 86400; /* Redis's number, whatever it is: no overflow below */
    long long s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
}

static void rate_read(void *ud, int status, const redisReply *r)
{
    (void)status;
    struct hr_fleet_wait *x = ud;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        x->strict_failed = 1;
    } else {
        long long wr = r->element[0]->integer, wk = r->element[1]->integer;
        if (wr > 0 || wk > 0) {
            int tok = wk > wr;
            x->rate_limited = 1;
            x->verdict.retry_after_s = wait_ms_to_s(tok ? wk : wr);
            x->verdict.limit = tok ? "tokens" : "requests";
            x->verdict.per_minute = tok ? x->tpm : x->rpm;
        }
    }
    op_done(x);
}

/* Other bytes under an address (a key damaged, or written by something
 * else sharing the prefix): a WARN at most every 10 s, with the number
 * left out since. */
static void warn_mismatch(const char *hash, size_t len)
{
    pthread_mutex_lock(&fl.lock);
    fl.ccr_mismatched++;
    unsigned long long quiet = 0;
    int say = hr_warn_gate_pass(&fl.mismatch_warn, hr_now(), 10, &quiet);
    pthread_mutex_unlock(&fl.lock);
    if (say) {
        char more[96] = "";
        if (quiet) snprintf(more, sizeof more, " (and %llu more since the last such line)", quiet);
        HR_WARN(LOGGER, "CCR address %s in Redis holds other bytes (%zu; their SHA-256 does not start with it): not "
                "used, the retrieval misses; something else writes %sccr:* keys, or the value was damaged%s", hash, len,
                fl.prefix, more);
    }
}

static void ccr_read(void *ud, int status, const redisReply *r)
{
    (void)status;
    /* Answers (failures included) come in the order the GETs were sent. */
    struct hr_fleet_wait *x = ud;
    size_t i = x->replies++;
    char got[HR_CCR_HASH_LEN + 1];
    if (i < x->n_hashes && r && r->type == REDIS_REPLY_STRING) {
        /* An address names its content: other bytes would be served as
         * the original a marker points to. */
        hr_ccr_hash(r->str, r->len, got);
        if (strcmp(got, x->hashes[i])) {
            warn_mismatch(x->hashes[i], r->len);
            r = NULL;
        }
    }
    if (i < x->n_hashes) {
        if (r && r->type == REDIS_REPLY_STRING) {
            hr_ccr_put_local(x->hashes[i], r->str, r->len);
            pthread_mutex_lock(&fl.lock);
            fl.ccr_fetched++;
            pthread_mutex_unlock(&fl.lock);
        } else {
            pthread_mutex_lock(&fl.lock);
            fl.ccr_missing++;
            pthread_mutex_unlock(&fl.lock);
        }
    }
    op_done(x);
}

static void send_get(struct hr_fleet_wait *x, int kind, const char *what, const char *id, hr_rconn_done_fn done)
{
    char key[160 + HR_API_KEY_MAX]; /* prefix (at most 128), what, id (a kept key at most HR_API_KEY_MAX - 1) */
    size_t kl = make_key(key, sizeof key, what, id);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, kl};
    x->pending++;
    hr_rconn_command(tl_conn, kind, 2, argv, lens, done, x);
}

/* ------------------------------------------------------------ kept calls
 * headroom_retrieve calls headroomd took out of a Responses answer the
 * provider keeps (retrieve_tool.c): the request continuing from it must
 * carry their outputs, and may land on another instance. `<prefix>kept:<key>`
 * (key "r:<response id>" or "c:<conversation>") holds them for as long as
 * an instance keeps them (HR_RETRIEVE_KEPT_TTL_S). */

/* A conversation's calls, once a request carried them to the provider: gone
 * unless the key holds other calls by now (a later answer's). EXPIRE 0
 * deletes (Redis's documented rule), within the ACL doc/fleet.md lists. */
static const char KEPT_FORGET_SCRIPT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], 0) end\n"
    "return 0\n";

/* `fmt` takes two strings. */
static void warn_kept(struct hr_warn_gate *gate, const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&fl.lock);
    unsigned long long quiet = 0;
    int say = hr_warn_gate_pass(gate, hr_now(), 10, &quiet);
    pthread_mutex_unlock(&fl.lock);
    if (!say) return;
    char more[96] = "";
    if (quiet) snprintf(more, sizeof more, " (and %llu more such since the last line)", quiet);
    char line[1200];
    snprintf(line, sizeof line, fmt, a, b);
    HR_WARN(LOGGER, "%s%s", line, more);
}

struct kept_put_ud {
    char key[HR_API_KEY_MAX];
    unsigned long gen;
};

static void kept_written(void *ud, int status, const redisReply *r)
{
    (void)status;
    struct kept_put_ud *u = ud;
    if (r && r->type == REDIS_REPLY_STATUS) hr_retrieve_kept_stored(u->key, u->gen);
    else
        warn_kept(&fl.kept_put_warn, "headroom_retrieve calls left out of %s were not written to Redis (%s): kept "
                  "on this instance only; a request continuing from it on another instance gets no output for them "
                  "and the provider refuses it (400 'No tool output found for function call')", u->key + 2,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : "unavailable");
    free(u);
}

static void kept_put_remote(const char *key, const char *json, size_t len, unsigned long gen)
{
    struct kept_put_ud *u = tl_conn ? malloc(sizeof *u) : NULL;
    if (!u) return; /* not on a worker (none strips calls elsewhere), or out of memory: kept here only */
    snprintf(u->key, sizeof u->key, "%s", key);
    u->gen = gen;
    char k[160 + HR_API_KEY_MAX], ttl[16];
    size_t kl = make_key(k, sizeof k, "kept:", key);
    snprintf(ttl, sizeof ttl, "%d", HR_RETRIEVE_KEPT_TTL_S);
    const char *argv[] = {"SET", k, json, "EX", ttl};
    size_t lens[] = {3, kl, len, 2, strlen(ttl)};
    hr_rconn_command(tl_conn, K_KEPT_PUT, 5, argv, lens, kept_written, u);
}

static void kept_forget_remote(const char *key, const char *json, size_t len)
{
    if (!tl_conn) return;
    char k[160 + HR_API_KEY_MAX];
    size_t kl = make_key(k, sizeof k, "kept:", key);
    const char *argv[] = {"EVAL", KEPT_FORGET_SCRIPT, "1", k, json};
    size_t lens[] = {4, sizeof KEPT_FORGET_SCRIPT - 1, 1, kl, len};
    hr_rconn_command(tl_conn, K_KEPT_PUT, 5, argv, lens, ignore_reply, NULL);
}

static const struct hr_retrieve_kept_remote kept_remote = {kept_put_remote, kept_forget_remote};

/* Answers come in the order the GETs were sent (kept_keys'). */
static void kept_read(void *ud, int status, const redisReply *r)
{
    (void)status;
    struct hr_fleet_wait *x = ud;
    size_t i = x->kept_replies++;
    const char *key = i < x->n_kept ? x->kept_keys[i] : NULL, *why;
    if (!key) {
    } else if (r && r->type == REDIS_REPLY_STRING) {
        if (hr_retrieve_kept_adopt(key, r->str, r->len, &why)) {
            char k[160 + HR_API_KEY_MAX];
            make_key(k, sizeof k, "kept:", key);
            warn_kept(&fl.kept_invalid_warn, "%s in Redis is not headroom_retrieve calls headroomd kept (%s): not used, "
                      "the request goes as the client sent it; something else writes kept:* keys under this prefix, "
                      "or the value was damaged", k, why);
        }
    } else if (r && r->type == REDIS_REPLY_NIL) {
        hr_retrieve_kept_gone(key); /* a conversation's calls another instance carried to the provider */
    } else if (!hr_retrieve_kept_has(key)) {
        warn_kept(&fl.kept_get_warn, "Redis did not answer: a request continuing from %s goes without the outputs "
                  "of any headroom_retrieve calls another instance left out of that answer (%s); if there were some, "
                  "the provider refuses it (400 'No tool output found for function call'): retry once Redis is back",
                  key + 2, r && r->type == REDIS_REPLY_ERROR ? r->str : "unavailable");
    }
    op_done(x);
}

/* Stage 2: the originals the kept calls ask for that this process lacks
 * (stored by the instance that kept them). */
static void kept_originals(struct hr_fleet_wait *x)
{
    char want[MAX_FETCH][HR_CCR_HASH_LEN + 1];
    size_t n = 0;
    for (size_t i = 0; i < x->n_kept && n < MAX_FETCH; i++)
        n += hr_retrieve_kept_hashes(x->api, x->kept_keys[i], want + n, MAX_FETCH - n);
    if (!n || !(x->hashes = calloc(n, sizeof *x->hashes))) return;
    for (size_t i = 0; i < n; i++) {
        if (!valid_hash(want[i]) || hr_ccr_has_local(want[i])) continue;
        size_t k = 0;
        while (k < x->n_hashes && strcmp(x->hashes[k], want[i])) k++;
        if (k == x->n_hashes) memcpy(x->hashes[x->n_hashes++], want[i], HR_CCR_HASH_LEN + 1);
    }
    for (size_t i = 0; i < x->n_hashes; i++) send_get(x, K_CCR_GET, "ccr:", x->hashes[i], ccr_read);
}

/* A Responses request continuing from a kept answer (previous_response_id,
 * conversation): its keys to read in stage 1. A response's calls never
 * change, so one this instance keeps is not read; a conversation's are
 * always read, since another instance may have carried them to the
 * provider meanwhile. The bytes are looked at first: a request that does
 * not continue is not parsed here. */
static void want_kept(struct hr_fleet_wait *x, const struct hr_api *api, const char *raw, size_t len)
{
    if (!x->body && (!raw || (!memmem(raw, len, "\"previous_response_id\"", 22) &&
                              !memmem(raw, len, "\"conversation\"", 14))))
        return;
    json_error_t jerr;
    if (!x->body) x->body = hr_json_load_strict(raw, len, &jerr);
    if (!json_is_object(x->body)) return;
    char keys[2][HR_API_KEY_MAX];
    size_t n = api->continues_from(x->body, keys, 2);
    for (size_t k = 0; k < n; k++)
        if (keys[k][0] == 'c' || !hr_retrieve_kept_has(keys[k])) memcpy(x->kept_keys[x->n_kept++], keys[k], sizeof keys[k]);
    x->api = api;
}

static const struct hr_api *api_of(struct hr_req *req, const char *path)
{
    (void)req; /* the route alone names the provider (doc/hardening.md) */
    const struct hr_api *owner = hr_api_for_route("POST", path);
    return owner ? owner : hr_api_for_passthrough(path);
}

static const char UNCHECKED_MSG[] =
    "headroomd cannot reach its shared state (Redis) to check the budget or rate limit, and "
    "on_backend_error is closed; retry shortly, or see doc/fleet.md";

static void count_fail_closed(void)
{
    pthread_mutex_lock(&fl.lock);
    fl.fail_closed_n++;
    pthread_mutex_unlock(&fl.lock);
}

/* on_backend_error closed: a budget or rate limit that cannot be checked
 * refuses the request. */
static void refuse(struct hr_fleet_wait *x)
{
    count_fail_closed();
    char path[2048], id[40];
    const char *uri = hr_req_uri(x->req);
    snprintf(path, sizeof path, "%.*s", (int)strcspn(uri, "?"), uri);
    const struct hr_api *api = api_of(x->req, path);
    snprintf(id, sizeof id, "hr-%zx-%llx", x->w->index, ++x->w->next_request);
    hr_req_add_header(x->req, "Retry-After", "1");
    hr_req_add_header(x->req, "x-headroom-request-id", id);
    hr_send_api_error(x->req, api, 503, HR_API_ERR_OVERLOADED, UNCHECKED_MSG);
    hr_stats_count_rejected(503, 0, 0);
    hr_acct_refusal(x->w, id, api, path, NULL, 503, "shared state backend unavailable");
}

static void finish(struct hr_fleet_wait *x)
{
    if (x->abandoned) {
        wait_free(x);
        return;
    }
    if (x->p || x->resume) { /* a retrieve round, or a WebSocket message's rate verdict */
        if (x->p) {
            struct hr_fleet_wait *saved = tl_current;
            tl_current = x; /* what hr_ratelimit_admit and hr_fleet_unchecked_refused read */
            x->p->fleet_wait = NULL;
            x->resume(x->p);
            tl_current = saved;
        }
        wait_free(x);
        return;
    }
    if (hr_req_gone(x->req)) { /* the client went away meanwhile */
        hr_req_discard(x->req);
        wait_free(x);
        return;
    }
    struct hr_fleet_wait *saved = tl_current;
    tl_current = x;
    x->again(x->req, x->w);
    tl_current = saved;
    wait_free(x);
}

/* Go on from the worker's loop rather than from inside hiredis's reply
 * handler, so what the request writes to Redis next (a spend increment)
 * goes on the wire at once, ahead of the answer to the client. */
static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg);
}

static void finish_soon(struct hr_fleet_wait *x)
{
    static const struct timeval now = {0, 0};
    if (event_base_once(x->w->base, -1, EV_TIMEOUT, finish_cb, x, &now)) finish(x);
}

static int budget_refuses(void)
{
    char msg[320];
    long ra;
    return hr_cost_budget_gate(msg, sizeof msg, &ra);
}

static void run_stage(struct hr_fleet_wait *x)
{
    for (;;) {
        x->stage++;
        x->pending = 1; /* held until this stage's commands are all sent */
        if (x->only_originals) {
            if (x->stage > 1) {
                finish_soon(x);
                return;
            }
            for (size_t i = 0; i < x->n_hashes; i++) send_get(x, K_CCR_GET, "ccr:", x->hashes[i], ccr_read);
        } else if (x->stage == 1) {
            if (x->want_budget) {
                char id[64];
                snprintf(id, sizeof id, "%s:%lld", x->budget_period, (long long)x->budget_start);
                send_get(x, K_BUDGET_READ, "budget:", id, budget_read);
            }
            if (x->want_cache) {
                char id[2 * HR_RESPCACHE_KEY_LEN + 1];
                hex(x->cache_key, HR_RESPCACHE_KEY_LEN, id);
                send_get(x, K_CACHE_GET, "cache:", id, cache_read);
            }
            for (size_t i = 0; i < x->n_kept; i++) send_get(x, K_KEPT_GET, "kept:", x->kept_keys[i], kept_read);
        } else if (x->stage == 2) {
            if (x->strict_failed) {
                if (fl.fail_closed) {
                    refuse(x);
                    wait_free(x);
                    return;
                }
                /* the rate limit's script goes to the same Redis: name both */
                note_fail_open(x, x->want_rate ? "the budget and the rate limit" : "the budget");
                x->strict_failed = 0;
            }
            if (x->want_rate) hr_ratelimit_limits(&x->rpm, &x->tpm); /* as a reload left them */
            if (x->want_rate && (x->rpm || x->tpm) && !x->cache_hit && !budget_refuses()) {
                char id[2 * HR_SHA256_LEN + 1], k[256], rpm[24], tpm[24];
                hex(x->rate_key, HR_SHA256_LEN, id);
                size_t kl = make_key(k, sizeof k, "rl:", id);
                snprintf(rpm, sizeof rpm, "%llu", (unsigned long long)x->rpm);
                snprintf(tpm, sizeof tpm, "%llu", (unsigned long long)x->tpm);
                const char *argv[] = {"EVAL", RATE_SCRIPT, "1", k, rpm, tpm, "admit"};
                size_t lens[] = {4, sizeof RATE_SCRIPT - 1, 1, kl, strlen(rpm), strlen(tpm), 5};
                x->pending++;
                hr_rconn_command(tl_conn, K_RATE, 7, argv, lens, rate_read, x);
            }
            if (x->n_kept) kept_originals(x); /* in the same round trip as the rate script */
        } else {
            if (x->strict_failed) {
                if (fl.fail_closed && !x->req) { /* a message: its resume refuses it */
                    count_fail_closed();
                    x->unchecked_refused = 1;
                } else if (fl.fail_closed) {
                    refuse(x);
                    wait_free(x);
                    return;
                } else {
                    note_fail_open(x, "the rate limit");
                }
            }
            finish_soon(x);
            return;
        }
        if (--x->pending) return; /* the last answer runs the next stage */
    }
}

static int valid_hash(const char *h)
{
    return h && strlen(h) == HR_CCR_HASH_LEN && strspn(h, "0123456789abcdef") == HR_CCR_HASH_LEN;
}

/* Fetch the originals in `hashes` this process lacks; 1 when waiting. */
static int fetch_originals(struct hr_fleet_wait *x, const char *const *hashes, size_t n)
{
    x->hashes = calloc(n ? n : 1, sizeof *x->hashes);
    if (!x->hashes) return 0;
    x->only_originals = 1;
    for (size_t i = 0; i < n && x->n_hashes < MAX_FETCH; i++) {
        if (!valid_hash(hashes[i]) || hr_ccr_has_local(hashes[i])) continue;
        size_t k = 0;
        while (k < x->n_hashes && strcmp(x->hashes[k], hashes[i])) k++;
        if (k == x->n_hashes) memcpy(x->hashes[x->n_hashes++], hashes[i], HR_CCR_HASH_LEN + 1);
    }
    if (!x->n_hashes) return 0;
    run_stage(x);
    return 1;
}

/* The last request's decoded body, if the proxy did not take it (a request
 * refused before reading its body): another request may reuse its address. */
static void drop_decoded(struct fleet_worker *fw)
{
    free(fw->dec);
    fw->dec = NULL;
    fw->dec_req = NULL;
}

/* A body sent with Content-Encoding (gzip, deflate, zstd: the openai SDKs,
 * Codex) decoded into x->decoded, within max_body_size as the proxy reads
 * it; 0 when it came as it is or cannot be read (the proxy answers that). */
static int decode_body(struct hr_fleet_wait *x, struct hr_req *req, const char *raw, size_t len)
{
    enum hr_codec c = hr_codec_parse(hr_req_header(req, "content-encoding"));
    if (c == HR_CODEC_IDENTITY || c == HR_CODEC_UNSUPPORTED) return 0;
    char why[160];
    return hr_codec_decode(c, raw, len, x->w->d->cfg->max_body_bytes, &x->decoded, &x->decoded_len, why,
                           sizeof why) == HR_CODEC_OK;
}

int hr_fleet_defer(struct hr_worker *w, struct hr_req *req, const char *path, hr_fleet_dispatch_fn again)
{
    if (tl_fw && tl_fw->dec) drop_decoded(tl_fw);
    /* Draining: a new request is refused at once, without asking Redis. */
    if (!fl.on || !tl_conn || (tl_current && tl_current->req == req) || atomic_load(&w->d->stopping)) return 0;
    const char *method = hr_req_method(req);
    struct hr_fleet_wait *x = wait_new(w);
    if (!x) return 0;
    x->req = req;
    x->again = again;
    x->t_arrived = hr_monotonic_ms();
    size_t len;
    const char *raw = hr_req_body(req, &len);
    /* Retrieval: originals stored by another instance. */
    if (!strncmp(path, "/v1/retrieve", 12)) {
        const char *hash = NULL;
        json_t *body = NULL;
        if (!strcmp(method, "GET") && path[12] == '/') hash = path + 13;
        else if (!strcmp(method, "POST") && !path[12]) {
            body = json_loadb(raw, len, 0, NULL);
            hash = json_string_value(json_object_get(body, "hash"));
        }
        int waiting = hash && fetch_originals(x, &hash, 1);
        json_decref(body);
        if (!waiting) wait_free(x);
        return waiting;
    }
    if (strcmp(method, "POST") || !strcmp(path, "/v1/compress")) {
        wait_free(x);
        return 0;
    }
    time_t end;
    x->want_budget = hr_admit_is_model_route(path) &&
                     hr_cost_budget_period(hr_clock_now(), &x->budget_period, &x->budget_start, &end);
    const struct hr_api *api = hr_api_for_route("POST", path);
    /* A body sent with Content-Encoding is read as the proxy reads it,
     * decoded (the proxy then takes these bytes): on a route whose requests
     * may continue from kept calls (Responses), or to find a cached answer.
     * Any other is not decoded here. */
    if (api && (api->continues_from || hr_respcache_enabled()) && decode_body(x, req, raw, len)) {
        raw = x->decoded;
        len = x->decoded_len;
    }
    if (api && hr_respcache_enabled()) {
        json_error_t jerr;
        x->body = hr_json_load_strict(raw, len, &jerr);
        x->want_cache = json_is_object(x->body) && !hr_admit_cache_key(req, api, path, x->body, x->cache_key);
    }
    if (api && hr_ratelimit_enabled()) {
        const char *cred = hr_req_header(req, "authorization");
        if (!cred || !*cred) cred = hr_req_header(req, "x-api-key");
        hr_ratelimit_key(cred, x->rate_key);
        x->want_rate = 1;
    }
    if (api && api->continues_from) want_kept(x, api, raw, len);
    if (!x->want_budget && !x->want_cache && !x->want_rate && !x->n_kept) {
        struct fleet_worker *fw = &fl.workers[w->index];
        if (x->decoded) { /* handled now: the proxy takes it */
            fw->dec = x->decoded;
            fw->dec_len = x->decoded_len;
            fw->dec_req = req;
            x->decoded = NULL;
        }
        wait_free(x);
        return 0;
    }
    run_stage(x);
    return 1;
}

double hr_fleet_arrived_ms(struct hr_req *req)
{
    struct hr_fleet_wait *x = tl_current;
    return x && x->req == req ? x->t_arrived : 0;
}

char *hr_fleet_take_decoded(struct hr_req *req, size_t *len)
{
    struct hr_fleet_wait *x = tl_current;
    char *d = NULL;
    if (x && x->req == req && x->decoded) {
        d = x->decoded;
        *len = x->decoded_len;
        x->decoded = NULL;
    } else if (tl_fw && tl_fw->dec && tl_fw->dec_req == req) {
        d = tl_fw->dec;
        *len = tl_fw->dec_len;
        tl_fw->dec = NULL;
        tl_fw->dec_req = NULL;
    }
    return d;
}

json_t *hr_fleet_take_body(struct hr_req *req)
{
    struct hr_fleet_wait *x = tl_current;
    if (!x || x->req != req || !x->body) return NULL;
    json_t *b = x->body;
    x->body = NULL;
    return b;
}

/* hr_api_result_fn has no user pointer: the hashes a call asks for are
 * noted here while the adapter walks the calls. */
static _Thread_local struct { const char *list[MAX_FETCH]; char buf[MAX_FETCH][HR_CCR_HASH_LEN + 1]; size_t n; } asked;

static json_t *note_hash(const char *hash, const char *query)
{
    (void)query;
    if (hash && asked.n < MAX_FETCH && strlen(hash) == HR_CCR_HASH_LEN) {
        memcpy(asked.buf[asked.n], hash, HR_CCR_HASH_LEN + 1);
        asked.list[asked.n] = asked.buf[asked.n];
        asked.n++;
    }
    return json_string("");
}

int hr_fleet_retrieve_wait(struct proxy_req *p, const json_t *answer, void (*resume)(struct proxy_req *p))
{
    if (!fl.on || !tl_conn || p->fleet_round == p->retrieve_rounds + 1) return 0;
    p->fleet_round = p->retrieve_rounds + 1;
    const json_t *calls[MAX_FETCH];
    size_t n = p->api->answer_calls(answer, calls, MAX_FETCH);
    json_t *scratch = json_pack("{s:[]}", p->api->items_key);
    asked.n = 0;
    if (n && scratch) p->api->append_results(scratch, answer, calls, n, note_hash);
    json_decref(scratch);
    struct hr_fleet_wait *x = wait_new(p->w);
    if (!x) return 0;
    x->p = p;
    x->resume = resume;
    p->fleet_wait = x;
    if (fetch_originals(x, asked.list, asked.n)) return 1;
    p->fleet_wait = NULL;
    wait_free(x);
    return 0;
}

void hr_fleet_cancel(struct proxy_req *p)
{
    if (p->fleet_wait) p->fleet_wait->p = NULL; /* freed when its answers are in */
    p->fleet_wait = NULL;
}

int hr_fleet_message_wait(struct proxy_req *p, const uint8_t *rate_key, json_t *body,
                          void (*resume)(struct proxy_req *p))
{
    if (!fl.on || !tl_conn || p->fleet_wait) return 0;
    struct hr_fleet_wait *x = wait_new(p->w);
    if (!x) return 0;
    if (rate_key && hr_ratelimit_enabled()) {
        x->want_rate = 1;
        memcpy(x->rate_key, rate_key, HR_SHA256_LEN);
    }
    if (body && p->api && p->api->continues_from) {
        x->body = json_incref(body); /* parsed already: want_kept reads it, the message keeps it */
        want_kept(x, p->api, NULL, 0);
    }
    if (!x->want_rate && !x->n_kept) {
        wait_free(x);
        return 0;
    }
    x->p = p;
    x->resume = resume;
    p->fleet_wait = x;
    run_stage(x); /* no budget or cache read: kept calls if any, then the rate script */
    return 1;
}

const char *hr_fleet_unchecked_refused(const struct proxy_req *p)
{
    struct hr_fleet_wait *x = tl_current;
    return x && x->p == p && x->unchecked_refused ? UNCHECKED_MSG : NULL;
}

/* Requests (not retrieve rounds, which belong to a proxied request that
 * drain counts itself) still waiting for Redis. */
static int is_request_wait(const struct hr_fleet_wait *x) { return !x->abandoned && !x->p && !x->resume; }

int hr_fleet_waiting(struct hr_worker *w)
{
    if (!fl.on || !fl.workers) return 0;
    int n = 0;
    for (struct hr_fleet_wait *x = fl.workers[w->index].waits; x; x = x->next) n += is_request_wait(x);
    return n;
}

int hr_fleet_abort_waits(struct hr_worker *w, const char *message)
{
    if (!fl.on || !fl.workers) return 0;
    int n = 0;
    for (struct hr_fleet_wait *x = fl.workers[w->index].waits; x; x = x->next) {
        if (!is_request_wait(x)) continue;
        x->abandoned = 1; /* Redis's answers, when they come, only free it */
        n++;
        if (hr_req_gone(x->req)) { /* the client went away meanwhile */
            hr_req_discard(x->req);
            continue;
        }
        char path[2048];
        const char *uri = hr_req_uri(x->req);
        snprintf(path, sizeof path, "%.*s", (int)strcspn(uri, "?"), uri);
        hr_req_add_header(x->req, "Retry-After", "1");
        hr_req_add_header(x->req, "Connection", "close");
        hr_send_api_error(x->req, api_of(x->req, path), 503, HR_API_ERR_OVERLOADED, message);
        hr_stats_count_rejected(503, 0, 0);
    }
    return n;
}

/* ------------------------------------------------------------ figures */

/* The url as /stats and /health show it: the password stays out. */
static json_t *shown_url(void)
{
    char shown[600];
    snprintf(shown, sizeof shown, "redis://%s%s%s%s:%d/%d", fl.user ? fl.user : "", fl.user ? ":" : "",
             fl.password ? "***@" : fl.user ? "@" : "", fl.host, fl.s.port, fl.s.db);
    return json_string(shown);
}

json_t *hr_fleet_health(void)
{
    if (!fl.on) return NULL;
    struct hr_rconn_health h;
    hr_rconn_health(&h);
    int up = h.connections > 0 && h.up == h.connections;
    json_t *o = json_pack("{s:s,s:o,s:b,s:i,s:i,s:s}", "kind", "redis", "url", shown_url(), "up", up, "connections",
                          h.connections, "connections_up", h.up, "on_backend_error", fl.fail_closed ? "closed" : "open");
    if (!o || up) return o;
    const char *period;
    time_t start, end;
    int strict = hr_ratelimit_enabled() || hr_cost_budget_period(hr_clock_now(), &period, &start, &end);
    char impact[400];
    snprintf(impact, sizeof impact, "%s; originals stored meanwhile are kept here and sent once it is back, "
             "cached answers are not shared meanwhile",
             !strict ? "no budget or rate limit to check"
             : fl.fail_closed ? "requests that need the budget or rate limit get 503 (on_backend_error closed) and "
                                "/readyz says not ready"
                              : "the budget and rate limit are not enforced (on_backend_error open)");
    json_object_set_new(o, "down_seconds", json_real(hr_round(h.down_ms / 1000, 1)));
    if (h.last_error[0]) json_object_set_new(o, "last_error", json_string(h.last_error));
    json_object_set_new(o, "impact", json_string(impact));
    return o;
}

static json_t *stats_block(void *state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("redis"));
    json_object_set_new(o, "url", shown_url());
    json_object_set_new(o, "prefix", json_string(fl.prefix));
    json_object_set_new(o, "timeout_ms", json_integer(fl.s.timeout_ms));
    json_object_set_new(o, "on_backend_error", json_string(fl.fail_closed ? "closed" : "open"));
    hr_rconn_stats(o);
    pthread_mutex_lock(&fl.lock);
    json_object_set_new(o, "fail_open", json_integer((json_int_t)fl.fail_open));
    json_object_set_new(o, "fail_closed", json_integer((json_int_t)fl.fail_closed_n));
    json_object_set_new(o, "ccr_fetched", json_integer((json_int_t)fl.ccr_fetched));
    json_object_set_new(o, "ccr_missing", json_integer((json_int_t)fl.ccr_missing));
    json_object_set_new(o, "ccr_mismatched", json_integer((json_int_t)fl.ccr_mismatched));
    json_object_set_new(o, "cache_invalid", json_integer((json_int_t)fl.cache_invalid));
    json_object_set_new(o, "unsent_budget_usd", json_real((double)(fl.unsent_micro + fl.lost_micro) / 1e6));
    json_object_set_new(o, "ccr_unsent",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "waiting", (json_int_t)fl.unsent_n, "bytes",
                                  (json_int_t)fl.unsent_bytes, "sent", (json_int_t)fl.unsent_sent, "dropped",
                                  (json_int_t)fl.unsent_dropped, "expired", (json_int_t)fl.unsent_expired, "evicted",
                                  (json_int_t)fl.unsent_evicted));
    json_object_set_new(o, "waiting", json_integer((json_int_t)atomic_load(&n_waiting)));
    pthread_mutex_unlock(&fl.lock);
    return o;
}

static const char *const L_DECISION[] = {"decision"};

static int metrics(void *state, hr_metric_visit_fn visit, void *ud)
{
    (void)state;
    hr_rconn_metrics(visit, ud);
    pthread_mutex_lock(&fl.lock);
    double open = (double)fl.fail_open, closed = (double)fl.fail_closed_n;
    pthread_mutex_unlock(&fl.lock);
    struct hr_metric_family f = {sizeof f, "headroom_backend_unchecked_total",
                                 "Requests whose budget or rate limit Redis could not check, by what on_backend_error "
                                 "decided (open: let through, closed: refused)",
                                 HR_METRIC_COUNTER, 1, L_DECISION};
    static const char *const lv_open[] = {"open"}, *const lv_closed[] = {"closed"};
    struct hr_metric_sample s = {.struct_size = sizeof s, .label_values = lv_open, .value = open};
    visit(ud, &f, &s);
    s.label_values = lv_closed;
    s.value = closed;
    visit(ud, &f, &s);
    return HR_OK;
}

/* ------------------------------------------------------------ setup */

int hr_fleet_setup(const struct hr_config *c, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    if (!c->backend_url) return 0;
    fl.host = strdup(c->backend_host);
    fl.user = c->backend_user ? strdup(c->backend_user) : NULL;
    fl.password = c->backend_password ? strdup(c->backend_password) : NULL;
    fl.prefix = strdup(c->backend_prefix ? c->backend_prefix : "headroom:");
    fl.s = (struct hr_rconn_settings){fl.host, c->backend_port, c->backend_db, fl.user, fl.password,
                                      c->backend_timeout_ms, down_effect};
    uint64_t id;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) /* only needs to differ from other processes' */
        id = ((uint64_t)getpid() << 32) ^ (uint64_t)(hr_monotonic_ms() * 1000) ^ (uint64_t)time(NULL);
    snprintf(fl.proc_id, sizeof fl.proc_id, "%016llx", (unsigned long long)id);
    fl.fail_closed = c->backend_fail_closed;
    fl.cache_ttl_s = c->cache_ttl_s > 0 ? (unsigned)c->cache_ttl_s : 300;
    fl.ccr_ttl_s = c->ccr_ttl_s > 0 ? (unsigned)c->ccr_ttl_s : 3600;
    fl.unsent_cap_bytes = c->ccr_max_bytes;
    fl.max_answer_bytes = c->max_response_bytes;
    uint64_t rpm, tpm;
    hr_ratelimit_limits(&rpm, &tpm);
    hr_rconn_kinds(kind_names, N_KINDS);
    hr_ccr_set_remote(&(struct hr_ccr_remote){ccr_put_remote, NULL, "redis"});
    hr_retrieve_set_kept_remote(&kept_remote);
    if (hr_respcache_enabled())
        hr_respcache_set_backend(&(struct hr_respcache_backend){"redis", cache_get, cache_put, cache_stats,
                                                                cache_destroy, NULL});
    /* Always: a reload may switch the rate limit on (ratelimit.c asks only while it is on). */
    hr_ratelimit_set_remote(rate_remote, NULL);
    hr_cost_set_budget_remote(budget_add_remote, NULL);
    hr_host_table.register_stats(NULL, "backend", stats_block, NULL);
    hr_host_table.register_metrics(NULL, metrics, NULL);
    fl.on = 1;
    HR_INFO(LOGGER, "shared state in Redis at %s:%d/%d%s%s (prefix %s, timeout_ms %d, on_backend_error %s): CCR store, "
            "response cache%s, rate limit%s, budget%s", fl.host, fl.s.port, fl.s.db, fl.user ? " as user " : "",
            fl.user ? fl.user : "", fl.prefix, fl.s.timeout_ms,
            fl.fail_closed ? "closed" : "open", hr_respcache_enabled() ? "" : " (off)",
            rpm || tpm ? "" : " (off)", c->budget_usd > 0 ? "" : " (off)");
    return 0;
}

void hr_fleet_shutdown(void)
{
    if (!fl.on) return;
    /* What never reached Redis is gone with the process: say so, the fleet's
     * figures miss it. */
    pthread_mutex_lock(&fl.lock);
    long long spend = fl.unsent_micro + fl.lost_micro;
    size_t unsent_n = fl.unsent_n, unsent_bytes = fl.unsent_bytes;
    pthread_mutex_unlock(&fl.lock);
    if (spend > 0)
        HR_WARN(LOGGER, "stopping with $%.6f of spend Redis has not confirmed (it was unavailable): the fleet's shared "
                "budget total misses it", (double)spend / 1e6);
    if (unsent_n)
        HR_WARN(LOGGER, "stopping with %zu stored original%s (%zu bytes) Redis never got: other instances cannot answer "
                "a retrieve for them", unsent_n, unsent_n == 1 ? "" : "s", unsent_bytes);
    hr_ccr_set_remote(NULL);
    hr_retrieve_set_kept_remote(NULL);
    hr_ratelimit_set_remote(NULL, NULL);
    hr_cost_set_budget_remote(NULL, NULL);
    pthread_mutex_lock(&fl.lock);
    while (fl.outbox) {
        struct outbox_item *next = fl.outbox->next;
        free(fl.outbox->data);
        free(fl.outbox);
        fl.outbox = next;
    }
    while (fl.unsent_head) { /* Redis never came back: they stay this process's */
        struct unsent *u = fl.unsent_head;
        unsent_unlink_locked(u);
        free(u);
    }
    pthread_mutex_unlock(&fl.lock);
    pthread_mutex_lock(&fl.lock);
    free(fl.workers);
    fl.workers = NULL;
    fl.n_workers = 0;
    pthread_mutex_unlock(&fl.lock);
    free(fl.host);
    free(fl.user);
    fl.user = NULL;
    free(fl.password);
    free(fl.prefix);
    fl.on = 0;
}

int hr_fleet_worker_start(struct hr_worker *w)
{
    if (!fl.on) return 0;
    if (!fl.workers) {
        struct fleet_worker *all = calloc(w->d->n_workers, sizeof *all);
        if (!all) return HR_ENOMEM;
        pthread_mutex_lock(&fl.lock);
        fl.workers = all;
        fl.n_workers = w->d->n_workers;
        pthread_mutex_unlock(&fl.lock);
    }
    struct fleet_worker *fw = &fl.workers[w->index];
    snprintf(fw->stream, sizeof fw->stream, "%s.%zu", fl.proc_id, w->index);
    fw->conn = hr_rconn_new(w->base, &fl.s, w->index, on_conn_up, fw);
    struct event *drain = event_new(w->base, -1, 0, on_drain, fw);
    pthread_mutex_lock(&fl.lock);
    fw->drain = drain;
    pthread_mutex_unlock(&fl.lock);
    return fw->conn && fw->drain ? 0 : HR_ENOMEM;
}

void hr_fleet_bind_thread(struct hr_worker *w)
{
    tl_fw = fl.on && fl.workers ? &fl.workers[w->index] : NULL;
    tl_conn = tl_fw ? tl_fw->conn : NULL;
}

void hr_fleet_worker_stop(struct hr_worker *w)
{
    if (!fl.on || !fl.workers) return;
    struct fleet_worker *fw = &fl.workers[w->index];
    pthread_mutex_lock(&fl.lock); /* other threads wake it under the lock */
    struct event *drain = fw->drain;
    fw->drain = NULL;
    pthread_mutex_unlock(&fl.lock);
    if (drain) event_free(drain);
    hr_rconn_free(fw->conn); /* drops its commands: their replies never come */
    fw->conn = NULL;
    while (fw->pushes) { /* their answers never come now */
        struct ccr_push *next = fw->pushes->next;
        free(fw->pushes);
        fw->pushes = next;
    }
    while (fw->sending) { /* their answers never come now (resending is one of them) */
        struct budget_add *next = fw->sending->snext;
        if (!fw->sending->resend) { /* unconfirmed: the stop's WARN names it */
            pthread_mutex_lock(&fl.lock);
            fl.lost_micro += fw->sending->micro;
            pthread_mutex_unlock(&fl.lock);
        }
        free(fw->sending);
        fw->sending = next;
    }
    fw->resending = NULL;
    while (fw->lost) { /* not confirmed: gone with the process, as held spend is */
        struct budget_add *next = fw->lost->next;
        free(fw->lost);
        fw->lost = next;
    }
    drop_decoded(fw);
    /* hr_http_server_free has freed the requests already: only the waits are left. */
    while (fw->waits) {
        if (fw->waits->p) fw->waits->p->fleet_wait = NULL;
        wait_free(fw->waits);
    }
}
