/* store.c — the durable savings file: schema-1 document, validation of what
 * is on disk, merging deltas, atomic writes and the cross-process lock. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "numfmt.h"
#include "savings.h"
#include "state_file.h"

#define MAX_FILE_BYTES (64u << 20) /* a sane file is a few MiB at most */

/* The one rounding rule (lib/numfmt.c: half away from zero), 0 for what is not a number. */
double hr_sav_round6(double v) { return isfinite(v) ? hr_numfmt_round(v, HR_DECIMALS_USD) : 0.0; }

void hr_sav_iso(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void day_key(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

int hr_sav_parse_iso(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int n = -1;
    if (!s) return -1;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &n) == 6 && n > 0 && s[n] == '\0') {
    } else {
        n = -1;
        memset(&tm, 0, sizeof tm);
        if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10 || s[n]) return -1;
    }
    if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_hour < 0 || tm.tm_min < 0 ||
        tm.tm_sec < 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void hr_sav_totals_add(struct hr_sav_totals *dst, const struct hr_sav_totals *src)
{
    dst->requests += src->requests;
    dst->tokens_saved += src->tokens_saved;
    dst->input_tokens += src->input_tokens;
    dst->savings_usd += src->savings_usd;
    dst->cost_usd += src->cost_usd;
}

static uint64_t get_u64(const json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

void hr_sav_totals_from_json(const json_t *o, struct hr_sav_totals *t)
{
    t->requests = get_u64(o, "requests");
    t->tokens_saved = get_u64(o, "tokens_saved");
    t->input_tokens = get_u64(o, "input_tokens");
    t->savings_usd = json_number_value(json_object_get(o, "compression_savings_usd"));
    t->cost_usd = json_number_value(json_object_get(o, "total_cost_usd"));
}

/* Overwrite the five figures of `o` (other members are kept). */
static void totals_set(json_t *o, const struct hr_sav_totals *t)
{
    json_object_set_new(o, "requests", json_integer((json_int_t)t->requests));
    json_object_set_new(o, "tokens_saved", json_integer((json_int_t)t->tokens_saved));
    json_object_set_new(o, "input_tokens", json_integer((json_int_t)t->input_tokens));
    json_object_set_new(o, "compression_savings_usd", json_real(hr_sav_round6(t->savings_usd)));
    json_object_set_new(o, "total_cost_usd", json_real(hr_sav_round6(t->cost_usd)));
}

json_t *hr_sav_totals_json(const struct hr_sav_totals *t)
{
    json_t *o = json_object();
    totals_set(o, t);
    return o;
}

static void totals_add_to(json_t *o, const struct hr_sav_totals *d)
{
    struct hr_sav_totals t;
    hr_sav_totals_from_json(o, &t);
    hr_sav_totals_add(&t, d);
    totals_set(o, &t);
}

json_t *hr_sav_doc_new(double now)
{
    char ts[32];
    hr_sav_iso((int64_t)now, ts, sizeof ts);
    struct hr_sav_totals zero = {0};
    return json_pack("{s:i,s:s,s:s,s:o,s:[],s:i,s:{},s:{}}", "schema_version", HR_SAV_SCHEMA_VERSION, "created_at", ts,
                     "updated_at", ts, "lifetime", hr_sav_totals_json(&zero), "checkpoints", "checkpoints_thinned", 0,
                     "hourly", "daily");
}

/* ------------------------------------------------------------ validation */

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -1)

static int check_count(const json_t *o, const char *k, const char *where, char *why, size_t whylen)
{
    const json_t *v = json_object_get(o, k);
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
        return WHY("%s.%s must be a non-negative integer", where, k);
    return 0;
}

static int check_usd(const json_t *o, const char *k, const char *where, char *why, size_t whylen)
{
    const json_t *v = json_object_get(o, k);
    if (v && (!json_is_number(v) || json_number_value(v) < 0)) return WHY("%s.%s must be a non-negative number", where, k);
    return 0;
}

static int check_totals(const json_t *o, const char *where, char *why, size_t whylen)
{
    if (!json_is_object(o)) return WHY("%s must be an object", where);
    if (check_count(o, "requests", where, why, whylen) || check_count(o, "tokens_saved", where, why, whylen) ||
        check_count(o, "input_tokens", where, why, whylen) ||
        check_usd(o, "compression_savings_usd", where, why, whylen) || check_usd(o, "total_cost_usd", where, why, whylen))
        return -1;
    return 0;
}

static int check_buckets(const json_t *tab, const char *name, int hourly, char *why, size_t whylen)
{
    if (!json_is_object(tab)) return WHY("'%s' must be an object keyed by bucket start", name);
    const char *key;
    json_t *b;
    json_object_foreach((json_t *)tab, key, b) {
        int64_t t;
        char where[160];
        snprintf(where, sizeof where, "%s[\"%.60s\"]", name, key);
        if (hr_sav_parse_iso(key, &t) || (hourly ? t % 3600 != 0 || strlen(key) != 20 : strlen(key) != 10))
            return WHY("%s: key is not a %s", where, hourly ? "UTC hour (YYYY-MM-DDTHH:00:00Z)" : "UTC day (YYYY-MM-DD)");
        if (check_totals(b, where, why, whylen)) return -1;
        static const char *const splits[] = {"by_provider", "by_model"};
        for (int i = 0; i < 2; i++) {
            const json_t *m = json_object_get(b, splits[i]);
            if (!m) continue;
            if (!json_is_object(m)) return WHY("%s.%s must be an object", where, splits[i]);
            const char *sk;
            json_t *sv;
            json_object_foreach((json_t *)m, sk, sv) {
                if (check_totals(sv, where, why, whylen)) return -1;
            }
        }
    }
    return 0;
}

int hr_sav_doc_validate(const json_t *doc, char *why, size_t whylen)
{
    if (!json_is_object(doc)) return WHY("top level is not a JSON object");
    const json_t *v = json_object_get(doc, "schema_version");
    if (!json_is_integer(v)) return WHY("'schema_version' is missing or not an integer");
    if (json_integer_value(v) != HR_SAV_SCHEMA_VERSION)
        return WHY("schema_version %" JSON_INTEGER_FORMAT " is not one this headroomd reads (%d)", json_integer_value(v),
                   HR_SAV_SCHEMA_VERSION);
    if (check_totals(json_object_get(doc, "lifetime"), "lifetime", why, whylen)) return -1;
    const json_t *cp = json_object_get(doc, "checkpoints");
    if (!json_is_array(cp)) return WHY("'checkpoints' must be an array");
    size_t i;
    json_t *p;
    json_array_foreach(cp, i, p) {
        int64_t t;
        char where[48];
        snprintf(where, sizeof where, "checkpoints[%zu]", i);
        if (!json_is_object(p) || hr_sav_parse_iso(json_string_value(json_object_get(p, "timestamp")), &t))
            return WHY("%s must be an object with an ISO-8601 'timestamp'", where);
        if (check_count(p, "requests", where, why, whylen) || check_count(p, "total_tokens_saved", where, why, whylen) ||
            check_count(p, "input_tokens", where, why, whylen) ||
            check_usd(p, "compression_savings_usd", where, why, whylen) || check_usd(p, "total_cost_usd", where, why, whylen))
            return -1;
    }
    if (check_buckets(json_object_get(doc, "hourly"), "hourly", 1, why, whylen)) return -1;
    if (check_buckets(json_object_get(doc, "daily"), "daily", 0, why, whylen)) return -1;
    return 0;
}

enum hr_sav_load_result hr_sav_parse(const char *data, size_t len, double now, json_t **doc, char *why,
                                     size_t whylen)
{
    *doc = NULL;
    if (len == 0) {
        snprintf(why, whylen, "file is empty");
    } else {
        json_error_t err;
        json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
        if (!j) {
            snprintf(why, whylen, "not valid JSON (line %d, column %d: %s)", err.line, err.column, err.text);
        } else if (hr_sav_doc_validate(j, why, whylen) == 0) {
            if (!json_is_integer(json_object_get(j, "checkpoints_thinned")))
                json_object_set_new(j, "checkpoints_thinned", json_integer(0));
            *doc = j;
            return HR_SAV_LOADED;
        } else {
            json_decref(j);
        }
    }
    *doc = hr_sav_doc_new(now);
    return HR_SAV_DAMAGED;
}

enum hr_sav_load_result hr_sav_load(const char *path, double now, json_t **doc, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        *doc = hr_sav_doc_new(now);
        return HR_SAV_MISSING;
    }
    struct stat st;
    const char *problem = NULL;
    int err = 0;
    if (fd < 0) {
        err = errno;
        problem = "cannot open";
    } else if (fstat(fd, &st)) {
        err = errno;
        problem = "cannot stat";
    } else if (!S_ISREG(st.st_mode)) {
        problem = "not a regular file";
    } else if ((unsigned long long)st.st_size > MAX_FILE_BYTES) {
        problem = "larger than 64 MiB";
    }
    char *buf = NULL;
    size_t len = 0;
    if (!problem) {
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) {
            problem = "out of memory reading";
        } else {
            while (len < (size_t)st.st_size) {
                ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) {
                    err = errno;
                    problem = "cannot read";
                    break;
                }
                if (r == 0) break;
                len += (size_t)r;
            }
        }
    }
    if (fd >= 0) close(fd);
    if (problem) {
        free(buf);
        if (err) snprintf(why, whylen, "%s (%s)", problem, strerror(err));
        else snprintf(why, whylen, "%s", problem);
        *doc = hr_sav_doc_new(now);
        return HR_SAV_DAMAGED;
    }
    enum hr_sav_load_result r = hr_sav_parse(buf, len, now, doc, why, whylen);
    free(buf);
    return r;
}

int hr_sav_quarantine(const char *path, double now, char *dest, size_t destlen)
{
    int rc = hr_corrupt_name(path, now, dest, destlen);
    return rc ? rc : rename(path, dest) ? -errno : 0;
}

/* ----------------------------------------------------------------- merge */

static json_t *child(json_t *o, const char *k)
{
    json_t *c = json_object_get(o, k);
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(o, k, c);
    }
    return c;
}

/* Add to split `name` of map `m`, folding names past the cap into "other". */
static void split_add(json_t *m, const char *name, const struct hr_sav_totals *d)
{
    json_t *e = json_object_get(m, name);
    if (!e) {
        if (json_object_size(m) >= HR_SAV_MAX_SPLITS) name = "other";
        e = child(m, name);
    }
    totals_add_to(e, d);
}

/* Fold bucket `src` (totals + splits) into bucket `dst`. */
void hr_sav_bucket_merge(json_t *dst, const json_t *src)
{
    struct hr_sav_totals t;
    hr_sav_totals_from_json(src, &t);
    totals_add_to(dst, &t);
    static const char *const splits[] = {"by_provider", "by_model"};
    for (int i = 0; i < 2; i++) {
        json_t *sm = json_object_get(src, splits[i]);
        json_t *dm = child(dst, splits[i]);
        const char *k;
        json_t *v;
        json_object_foreach(sm, k, v) {
            hr_sav_totals_from_json(v, &t);
            split_add(dm, k, &t);
        }
    }
}

/* Halve the resolution of the older half until `max` points remain; the
 * first point is kept so the history still starts where the file did. */
static void thin_checkpoints(json_t *doc, size_t max)
{
    json_t *cp = json_object_get(doc, "checkpoints");
    if (max < 2) max = 2;
    json_int_t removed = json_integer_value(json_object_get(doc, "checkpoints_thinned"));
    while (json_array_size(cp) > max) {
        size_t n = json_array_size(cp), half = n / 2 < 2 ? 2 : n / 2, excess = n - max;
        /* After r removals the element at i started at i + r: stay in the older half. */
        for (size_t i = 1, r = 0; i + r < half && excess > 0; i++, r++, excess--, removed++) json_array_remove(cp, i);
    }
    json_object_set_new(doc, "checkpoints_thinned", json_integer(removed));
}

static void compact_hours(json_t *doc, double now, int hourly_days)
{
    if (hourly_days < 1) hourly_days = 1;
    int64_t cutoff = ((int64_t)now / 86400 - hourly_days) * 86400;
    json_t *hourly = child(doc, "hourly"), *daily = child(doc, "daily");
    const char *k;
    json_t *b;
    void *tmp;
    json_object_foreach_safe(hourly, tmp, k, b) {
        int64_t t;
        if (hr_sav_parse_iso(k, &t) || t >= cutoff) continue;
        char dk[16];
        day_key(t, dk, sizeof dk);
        hr_sav_bucket_merge(child(daily, dk), b);
        json_object_del(hourly, k);
    }
}

void hr_sav_apply(json_t *doc, const struct hr_sav_delta *d, size_t n, double now, int checkpoint, size_t max_points,
                  int hourly_days)
{
    json_t *life = child(doc, "lifetime"), *hourly = child(doc, "hourly");
    for (size_t i = 0; i < n; i++) {
        char key[32];
        hr_sav_iso(d[i].hour, key, sizeof key);
        json_t *b = child(hourly, key);
        totals_add_to(life, &d[i].t);
        totals_add_to(b, &d[i].t);
        split_add(child(b, "by_provider"), d[i].provider[0] ? d[i].provider : "unknown", &d[i].t);
        split_add(child(b, "by_model"), d[i].model[0] ? d[i].model : "unknown", &d[i].t);
    }
    char ts[32];
    hr_sav_iso((int64_t)now, ts, sizeof ts);
    if (checkpoint) {
        struct hr_sav_totals t;
        hr_sav_totals_from_json(life, &t);
        json_t *cp = json_object_get(doc, "checkpoints");
        if (!json_is_array(cp)) {
            cp = json_array();
            json_object_set_new(doc, "checkpoints", cp);
        }
        json_array_append_new(cp, json_pack("{s:s,s:I,s:I,s:I,s:f,s:f}", "timestamp", ts, "requests",
                                            (json_int_t)t.requests, "total_tokens_saved", (json_int_t)t.tokens_saved,
                                            "input_tokens", (json_int_t)t.input_tokens, "compression_savings_usd",
                                            hr_sav_round6(t.savings_usd), "total_cost_usd", hr_sav_round6(t.cost_usd)));
        thin_checkpoints(doc, max_points);
        json_object_set_new(doc, "updated_at", json_string(ts));
    }
    compact_hours(doc, now, hourly_days);
}

/* ------------------------------------------------------------------ disk */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return snprintf(dir, len, ".") < (int)len ? 0 : -ENAMETOOLONG;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= len) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int hr_sav_write_atomic(const char *path, const json_t *doc)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) return -ENAMETOOLONG;
    int rc = dir_of(path, dir, sizeof dir);
    if (rc) return rc;
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (!text) return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        free(text);
        return rc;
    }
    size_t len = strlen(text);
    rc = write_all(fd, text, len);
    if (!rc) rc = write_all(fd, "\n", 1);
    free(text);
    if (!rc && fsync(fd)) rc = -errno;
    if (close(fd) && !rc) rc = -errno;
    if (!rc && rename(tmp, path)) rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    /* The rename is only durable once the directory entry is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) && errno != EINVAL) rc = -errno;
        close(dfd);
    }
    return rc;
}

int hr_sav_lock(const char *path)
{
    char lp[4096];
    if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp) return -ENAMETOOLONG;
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    /* Bounded wait: a wedged peer must not stall our housekeeping thread. */
    for (int i = 0; i < 200; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int rc = errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    close(fd);
    return rc;
}

void hr_sav_unlock(int fd)
{
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

int hr_sav_mkdir_parent(const char *path)
{
    char dir[4096];
    int rc = dir_of(path, dir, sizeof dir);
    if (rc) return rc;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
    return 0;
}

int hr_sav_parent_creatable(const char *path)
{
    char dir[4096];
    int rc = dir_of(path, dir, sizeof dir);
    if (rc) return rc;
    struct stat st;
    if (!stat(dir, &st)) return 0; /* there already: hr_sav_mkdir_parent has nothing to make */
    /* mkdir -p makes the missing part in the nearest ancestor that exists. */
    while (stat(dir, &st)) {
        if (errno != ENOENT || !strcmp(dir, ".")) return -errno;
        char *slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    return access(dir, W_OK | X_OK) ? -errno : 0;
}
