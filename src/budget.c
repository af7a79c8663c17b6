/* budget.c — spend per UTC period against a limit: checks and adds under a
 * small mutex on the request path, persistence (budget.json) off it. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "budget.h"
#include "numfmt.h"
#include "log.h"
#include "state_file.h"
#include "stats.h"

#define LOGGER "headroom.budget"
#define STATE_VERSION 1

struct hr_budget {
    pthread_mutex_t lock;       /* the figures below; held only for arithmetic */
    pthread_mutex_t io;         /* one flush at a time */
    double limit;
    enum hr_budget_period period;
    char *path;
    time_t start, end;
    double base;                /* spend in the file as of the last sync */
    double delta;               /* added since, not yet written */
    int warned;                 /* 0, 80 or 100: WARN lines already logged this period */
    int dirty;
    int limit_stale;            /* the file holds another limit_usd (hr_budget_adopt_file) */
    struct stat seen;           /* the file as last read or written: a change means another writer */
};

static const char *const period_names[] = {"hourly", "daily", "weekly", "monthly"};

int hr_budget_period_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, period_names[i])) return i;
    return -EINVAL;
}

const char *hr_budget_period_name(enum hr_budget_period p)
{
    return (unsigned)p < 4 ? period_names[p] : "daily";
}

void hr_budget_period_bounds(enum hr_budget_period p, time_t t, time_t *start, time_t *end)
{
    if (t < 0) t = 0;
    switch (p) {
    case HR_BUDGET_HOURLY:
        *start = t - t % 3600;
        *end = *start + 3600;
        return;
    case HR_BUDGET_WEEKLY: {
        time_t days = t / 86400;
        time_t wd = (days + 3) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
        *start = (days - wd) * 86400;
        *end = *start + 7 * 86400;
        return;
    }
    case HR_BUDGET_MONTHLY: {
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *start = timegm(&tm);
        tm.tm_mon++; /* timegm normalises December + 1 */
        *end = timegm(&tm);
        return;
    }
    case HR_BUDGET_DAILY:
    default:
        *start = t - t % 86400;
        *end = *start + 86400;
        return;
    }
}

static void iso(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double round6(double v) { return round(v * 1e6) / 1e6; }

/* Move to the period holding `now`; a new period starts at zero. Locked. */
static void roll(struct hr_budget *b, double now)
{
    time_t t = (time_t)now;
    if (t >= b->start && t < b->end) return;
    time_t s, e;
    hr_budget_period_bounds(b->period, t, &s, &e);
    if (s != b->start) {
        b->base = b->delta = 0;
        b->warned = 0;
        b->dirty = 1;
    }
    b->start = s;
    b->end = e;
}

/* ------------------------------------------------------------ the file */

struct file_state {
    double spent;
    int warned;
    double limit;               /* limit_usd as written, whatever its period; -1 when absent */
};

/* 0 and *st for our period (zeros for another period or kind; the limit
 * whatever the period), -ENOENT when missing, -EINVAL (why filled) when
 * damaged, other -errno when unreadable. */
static int read_state(const struct hr_budget *b, time_t start, struct file_state *st, char *why, size_t whylen)
{
    memset(st, 0, sizeof *st);
    st->limit = -1;
    json_error_t jerr;
    FILE *f = fopen(b->path, "rb");
    if (!f) return errno == ENOENT ? -ENOENT : -errno;
    json_t *doc = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!doc) {
        snprintf(why, whylen, "not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column, jerr.text);
        return -EINVAL;
    }
    json_t *ver = json_object_get(doc, "version"), *period = json_object_get(doc, "period"),
           *ps = json_object_get(doc, "period_start_unix"), *spent = json_object_get(doc, "spent_usd");
    int rc = 0;
    if (!json_is_object(doc) || !json_is_integer(ver) || !json_is_string(period) || !json_is_integer(ps) ||
        !json_is_number(spent) || !isfinite(json_number_value(spent)) || json_number_value(spent) < 0) {
        snprintf(why, whylen, "wrong shape (expected version, period, period_start_unix, spent_usd)");
        rc = -EINVAL;
    } else if (json_integer_value(ver) != STATE_VERSION) {
        snprintf(why, whylen, "version %lld is not the %d this headroomd writes", (long long)json_integer_value(ver),
                 STATE_VERSION);
        rc = -EINVAL;
    } else {
        json_t *limit = json_object_get(doc, "limit_usd");
        if (json_is_number(limit)) st->limit = json_number_value(limit);
        if (!strcmp(json_string_value(period), hr_budget_period_name(b->period)) &&
            (time_t)json_integer_value(ps) == start) {
            st->spent = json_number_value(spent);
            st->warned = (int)json_integer_value(json_object_get(doc, "warned_pct"));
        }
    }
    json_decref(doc);
    return rc;
}

static void quarantine(const struct hr_budget *b, const char *why)
{
    char dest[4200];
    int moved = hr_corrupt_name(b->path, (double)time(NULL), dest, sizeof dest);
    if (!moved) moved = rename(b->path, dest) ? -errno : 0;
    if (!moved) HR_WARN(LOGGER, "budget file %s is damaged (%s): moved aside to %s; spend starts again at 0", b->path,
                        why, dest);
    else HR_WARN(LOGGER, "budget file %s is damaged (%s) and could not be moved aside (%s); spend starts again at 0",
                 b->path, why, strerror(moved < 0 ? -moved : EEXIST));
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_state(const struct hr_budget *b, time_t start, double spent, int warned)
{
    char tmp[4200], dir[4200], when[32], updated[32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", b->path, (long)getpid());
    snprintf(dir, sizeof dir, "%s", b->path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else snprintf(dir, sizeof dir, ".");
    iso(start, when, sizeof when);
    iso(time(NULL), updated, sizeof updated);
    json_t *doc = json_pack("{s:i,s:s,s:s,s:I,s:f,s:i,s:f,s:s}", "version", STATE_VERSION, "period",
                            hr_budget_period_name(b->period), "period_start", when, "period_start_unix",
                            (json_int_t)start, "spent_usd", spent, "warned_pct", warned, "limit_usd", b->limit,
                            "updated_at", updated);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(doc);
    if (!text) return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (!rc) rc = write_all(fd, text, strlen(text));
    if (!rc) rc = write_all(fd, "\n", 1);
    free(text);
    if (!rc && fsync(fd)) rc = -errno;
    if (fd >= 0 && close(fd) && !rc) rc = -errno;
    if (!rc && rename(tmp, b->path)) rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the rename is durable once the entry is */
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Bounded wait: a wedged peer must not stall the housekeeping thread. */
static int lock_file(const char *path)
{
    char lp[4200];
    snprintf(lp, sizeof lp, "%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    for (int i = 0; i < 200; i++) {
        if (!flock(fd, LOCK_EX | LOCK_NB)) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        usleep(10000);
    }
    close(fd);
    return -EWOULDBLOCK;
}

static void unlock_file(int fd)
{
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

static int mkdir_parent(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
        *p = '/';
    }
    return mkdir(dir, 0700) && errno != EEXIST ? -errno : 0;
}

/* ------------------------------------------------------------ the API */

/* Under b->lock: the thresholds `spent` has crossed that were not said yet
 * this period, marked said: bit 0 for 80 %, bit 1 for 100 % (one request
 * may cross both: each is said once). */
static int crossed_locked(struct hr_budget *b, double spent)
{
    int level = spent >= b->limit ? 100 : spent >= 0.8 * b->limit ? 80 : 0;
    int say = (level >= 80 && b->warned < 80 ? 1 : 0) | (level == 100 && b->warned < 100 ? 2 : 0);
    if (say) {
        b->warned = level;
        b->dirty = 1; /* the file records warned_pct */
    }
    return say;
}

/* The WARN lines of crossed_locked's answer, said without the lock. */
static void say_crossed(int say, double spent, double limit, enum hr_budget_period period)
{
    char s[32], l[32];
    hr_numfmt_money(spent, s, sizeof s);
    hr_numfmt_money(limit, l, sizeof l);
    if (say & 1)
        HR_WARN(LOGGER, "budget 80%% used: spent $%s of the %s budget of $%s", s, hr_budget_period_name(period), l);
    if (say & 2)
        HR_WARN(LOGGER, "budget exceeded: spent $%s of the %s budget of $%s; POSTs to model routes get 429 until the "
                "period resets", s, hr_budget_period_name(period), l);
}

int hr_budget_open(double limit_usd, enum hr_budget_period period, const char *state_path, struct hr_budget **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    if (!(limit_usd > 0) || !isfinite(limit_usd) || (unsigned)period > HR_BUDGET_MONTHLY) {
        snprintf(err, errlen, "budget must be a number of USD above 0 with an hourly, daily, weekly or monthly period");
        return -EINVAL;
    }
    struct hr_budget *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->io, NULL);
    b->limit = limit_usd;
    b->period = period;
    b->start = b->end = -1;
    roll(b, hr_clock_now());
    b->dirty = 0;
    if (state_path) {
        if (!(b->path = strdup(state_path))) {
            hr_budget_close(b);
            return -ENOMEM;
        }
        int rc = mkdir_parent(b->path);
        if (rc) {
            snprintf(err, errlen, "cannot create the directory for the budget file %s: %s (set HEADROOM_WORKSPACE_DIR "
                     "to a writable directory)", b->path, strerror(-rc));
            hr_budget_close(b);
            return rc;
        }
        struct file_state st;
        char why[300];
        rc = read_state(b, b->start, &st, why, sizeof why);
        if (rc == -EINVAL) quarantine(b, why);
        else if (rc && rc != -ENOENT) {
            snprintf(err, errlen, "cannot read the budget file %s: %s", b->path, strerror(-rc));
            hr_budget_close(b);
            return rc;
        }
        b->base = st.spent;
        b->warned = st.warned;
        b->limit_stale = rc == 0 && st.limit != b->limit;
        stat(b->path, &b->seen);
        /* Started with a limit the period's spend already crosses (lowered
         * since the file was written): said now, as no request will. */
        say_crossed(crossed_locked(b, b->base), b->base, b->limit, b->period);
    }
    *out = b;
    return 0;
}

void hr_budget_close(struct hr_budget *b)
{
    if (!b) return;
    if (b->path) {
        int rc = hr_budget_flush(b);
        if (rc) HR_WARN(LOGGER, "could not write the budget file %s: %s", b->path, strerror(-rc));
    }
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->io);
    free(b->path);
    free(b);
}

int hr_budget_exceeded(struct hr_budget *b, double now, double *retry_after_s)
{
    pthread_mutex_lock(&b->lock);
    roll(b, now);
    int over = b->base + b->delta >= b->limit;
    double wait = (double)b->end - now;
    pthread_mutex_unlock(&b->lock);
    if (retry_after_s) *retry_after_s = wait > 0 ? wait : 0;
    return over;
}

void hr_budget_add(struct hr_budget *b, double usd, double now)
{
    if (!(usd > 0) || !isfinite(usd)) return;
    pthread_mutex_lock(&b->lock);
    roll(b, now);
    b->delta += usd;
    b->dirty = 1;
    double spent = b->base + b->delta;
    int say = crossed_locked(b, spent);
    enum hr_budget_period period = b->period;
    double limit = b->limit; /* a reload may change it */
    pthread_mutex_unlock(&b->lock);
    say_crossed(say, spent, limit, period);
}

void hr_budget_observe(struct hr_budget *b, time_t start, double spent_usd)
{
    if (!isfinite(spent_usd) || spent_usd < 0) return;
    pthread_mutex_lock(&b->lock);
    if (start >= b->end) roll(b, (double)start); /* forward only: a late answer for a past period is dropped */
    if (b->start == start && spent_usd > b->base + b->delta) {
        b->base = spent_usd;
        b->delta = 0;
    }
    pthread_mutex_unlock(&b->lock);
}

int hr_budget_set_limit(struct hr_budget *b, double limit_usd, double now)
{
    if (!(limit_usd > 0) || !isfinite(limit_usd)) return -EINVAL;
    pthread_mutex_lock(&b->lock);
    roll(b, now);
    int changed = b->limit != limit_usd;
    b->limit = limit_usd;
    double spent = b->base + b->delta;
    /* A new limit has its own warnings: one the spend already crosses is
     * said now (a limit lowered under the spend refuses every request, so no
     * later request would say it), a higher one when a request crosses it. */
    int say = 0;
    if (changed) {
        b->warned = 0;
        say = crossed_locked(b, spent);
    }
    enum hr_budget_period period = b->period;
    b->dirty = 1; /* the file records limit_usd */
    pthread_mutex_unlock(&b->lock);
    say_crossed(say, spent, limit_usd, period);
    return 0;
}

void hr_budget_adopt_file(struct hr_budget *b)
{
    pthread_mutex_lock(&b->lock);
    if (b->limit_stale) b->dirty = 1; /* the flush keeps the period's spend, re-read under the file lock */
    b->limit_stale = 0;
    pthread_mutex_unlock(&b->lock);
}

enum hr_budget_period hr_budget_get_period(struct hr_budget *b)
{
    pthread_mutex_lock(&b->lock);
    enum hr_budget_period p = b->period;
    pthread_mutex_unlock(&b->lock);
    return p;
}

void hr_budget_get(struct hr_budget *b, double now, struct hr_budget_state *st)
{
    pthread_mutex_lock(&b->lock);
    roll(b, now);
    st->limit_usd = b->limit;
    st->spent_usd = b->base + b->delta;
    st->period = b->period;
    st->period_start = b->start;
    st->resets_at = b->end;
    pthread_mutex_unlock(&b->lock);
    st->remaining_usd = st->limit_usd > st->spent_usd ? st->limit_usd - st->spent_usd : 0;
    st->exceeded = st->spent_usd >= st->limit_usd;
}

json_t *hr_budget_json(struct hr_budget *b, double now, unsigned long long rejected)
{
    struct hr_budget_state st;
    hr_budget_get(b, now, &st);
    char resets[32];
    iso(st.resets_at, resets, sizeof resets);
    return json_pack("{s:f,s:s,s:f,s:f,s:b,s:s,s:I}", "limit_usd", round6(st.limit_usd), "period",
                     hr_budget_period_name(st.period), "spent_usd", round6(st.spent_usd), "remaining_usd",
                     round6(st.remaining_usd), "exceeded", st.exceeded, "resets_at", resets, "rejected_requests",
                     (json_int_t)rejected);
}

int hr_budget_flush(struct hr_budget *b)
{
    if (!b->path) return 0;
    pthread_mutex_lock(&b->io);
    pthread_mutex_lock(&b->lock);
    roll(b, hr_clock_now());
    int dirty = b->dirty;
    time_t start = b->start;
    double delta = b->delta;
    int warned = b->warned;
    b->dirty = 0;
    pthread_mutex_unlock(&b->lock);
    struct stat now_st;
    int changed = stat(b->path, &now_st) == 0 &&
                  (now_st.st_ino != b->seen.st_ino || now_st.st_size != b->seen.st_size ||
                   now_st.st_mtim.tv_sec != b->seen.st_mtim.tv_sec || now_st.st_mtim.tv_nsec != b->seen.st_mtim.tv_nsec);
    if (!dirty && !changed) {
        pthread_mutex_unlock(&b->io);
        return 0;
    }
    int lfd = lock_file(b->path);
    struct file_state st;
    char why[300];
    int rc = read_state(b, start, &st, why, sizeof why);
    if (rc == -EINVAL) quarantine(b, why);
    if (rc == -ENOENT || rc == -EINVAL) rc = 0;
    double total = st.spent + delta;
    if (st.warned > warned) warned = st.warned;
    if (!rc && dirty) rc = write_state(b, start, total, warned);
    if (!rc) stat(b->path, &b->seen); /* only the io holder touches `seen` */
    unlock_file(lfd);
    pthread_mutex_lock(&b->lock);
    if (b->start == start) {
        if (rc) b->dirty |= dirty; /* delta kept: the next flush retries */
        else {
            b->base = total;
            b->delta -= delta;
            if (warned > b->warned) b->warned = warned;
        }
    }
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&b->io);
    return rc;
}
