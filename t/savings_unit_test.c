/* t/savings_unit_test.c — unit tests of the savings_file store and rollups:
 * damaged-file detection, merging, bounds, gap-free series, history sampling,
 * query/CSV rendering, atomic writes and the cross-process lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "../plugins/savings_file/savings.h"

static const double NOW = 1714567890.0; /* 2024-05-01T12:51:30Z, a Wednesday */

static struct hr_sav_delta cell(int64_t t, const char *prov, const char *model, uint64_t saved)
{
    struct hr_sav_delta d = {0};
    d.hour = t / 3600 * 3600;
    snprintf(d.provider, sizeof d.provider, "%s", prov);
    snprintf(d.model, sizeof d.model, "%s", model);
    d.t = (struct hr_sav_totals){1, saved, saved * 4, saved * 1e-6, saved * 2e-6};
    return d;
}

static json_int_t geti(const json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void test_iso(void)
{
    char b[32];
    int64_t t;
    hr_sav_iso(1714567890, b, sizeof b);
    is_str(b, "2024-05-01T12:51:30Z", "iso formatting");
    ok(hr_sav_parse_iso(b, &t) == 0 && t == 1714567890, "iso round trip");
    ok(hr_sav_parse_iso("2024-05-01", &t) == 0 && t == 1714521600, "day form");
    ok(hr_sav_parse_iso("2024-13-01", &t) < 0, "month 13 rejected");
    ok(hr_sav_parse_iso("2024-05-01T12:51:30", &t) < 0, "missing Z rejected");
    ok(hr_sav_parse_iso("2024-05-01x", &t) < 0, "trailing junk rejected");
    ok(hr_sav_parse_iso("", &t) < 0, "empty rejected");
}

static void expect_damaged(const char *text, const char *want_in_why, const char *name)
{
    json_t *doc;
    char why[256] = "";
    enum hr_sav_load_result r = hr_sav_parse(text, strlen(text), NOW, &doc, why, sizeof why);
    ok(r == HR_SAV_DAMAGED && doc && strstr(why, want_in_why), "%s: damaged (%s)", name, why);
    ok(geti(json_object_get(doc, "lifetime"), "requests") == 0, "%s: fresh document", name);
    json_decref(doc);
}

static void test_parse(void)
{
    expect_damaged("", "empty", "empty file");
    expect_damaged("{\"schema_version\":1,\"lifetime\":{", "not valid JSON", "truncated");
    expect_damaged("hello", "not valid JSON", "non-JSON");
    expect_damaged("[1,2]", "not a JSON object", "array");
    expect_damaged("{\"lifetime\":{}}", "schema_version", "no version");
    expect_damaged("{\"schema_version\":2,\"lifetime\":{},\"checkpoints\":[],\"hourly\":{},\"daily\":{}}",
                   "schema_version 2", "future version");
    expect_damaged("{\"schema_version\":1,\"lifetime\":\"x\",\"checkpoints\":[],\"hourly\":{},\"daily\":{}}",
                   "lifetime must be an object", "wrong-shape lifetime");
    expect_damaged("{\"schema_version\":1,\"lifetime\":{\"requests\":-1},\"checkpoints\":[],\"hourly\":{},\"daily\":{}}",
                   "non-negative", "negative count");
    expect_damaged("{\"schema_version\":1,\"lifetime\":{},\"checkpoints\":[],\"hourly\":{\"yesterday\":{}},\"daily\":{}}",
                   "UTC hour", "bad hourly key");
    expect_damaged("{\"schema_version\":1,\"lifetime\":{},\"checkpoints\":[{}],\"hourly\":{},\"daily\":{}}",
                   "timestamp", "checkpoint without timestamp");
    expect_damaged("{\"schema_version\":1,\"lifetime\":{},\"checkpoints\":{},\"hourly\":{},\"daily\":{}}",
                   "checkpoints", "checkpoints not an array");

    json_t *fresh = hr_sav_doc_new(NOW), *doc;
    char *text = json_dumps(fresh, 0), why[256];
    ok(hr_sav_parse(text, strlen(text), NOW, &doc, why, sizeof why) == HR_SAV_LOADED, "a fresh document loads back");
    free(text);
    json_decref(doc);
    json_decref(fresh);
}

static void test_apply(void)
{
    json_t *doc = hr_sav_doc_new(NOW);
    struct hr_sav_delta d[3] = {cell((int64_t)NOW, "openai", "gpt-4o", 100), cell((int64_t)NOW, "anthropic", "claude", 50),
                                cell((int64_t)NOW - 3600, "openai", "gpt-4o", 10)};
    hr_sav_apply(doc, d, 3, NOW, 1, 2048, 90);
    json_t *life = json_object_get(doc, "lifetime");
    is_int(geti(life, "requests"), 3, "lifetime requests");
    is_int(geti(life, "tokens_saved"), 160, "lifetime tokens saved");
    is_int(geti(life, "input_tokens"), 640, "lifetime input tokens");
    json_t *h = json_object_get(json_object_get(doc, "hourly"), "2024-05-01T12:00:00Z");
    is_int(geti(h, "tokens_saved"), 150, "hour bucket");
    is_int(geti(json_object_get(json_object_get(h, "by_provider"), "anthropic"), "tokens_saved"), 50, "provider split");
    is_int(geti(json_object_get(json_object_get(h, "by_model"), "gpt-4o"), "requests"), 1, "model split");
    json_t *cp = json_object_get(doc, "checkpoints");
    is_int(json_array_size(cp), 1, "one checkpoint per flush");
    is_int(geti(json_array_get(cp, 0), "total_tokens_saved"), 160, "checkpoint is cumulative");
    char why[256] = "";
    ok(hr_sav_doc_validate(doc, why, sizeof why) == 0, "merged document validates (%s)", why);

    hr_sav_apply(doc, d, 1, NOW + 5, 0, 2048, 90);
    is_int(json_array_size(cp), 1, "no checkpoint for a live view");
    json_decref(doc);

    /* checkpoints are thinned in the older half, first and newest kept */
    doc = hr_sav_doc_new(NOW);
    for (int i = 0; i < 40; i++) hr_sav_apply(doc, d, 1, NOW + i, 1, 16, 90);
    cp = json_object_get(doc, "checkpoints");
    ok(json_array_size(cp) <= 16 && json_array_size(cp) >= 8, "checkpoints capped at max_history_points (%zu)",
       json_array_size(cp));
    is_int(geti(json_array_get(cp, 0), "total_tokens_saved"), 100, "first checkpoint kept");
    is_int(geti(json_array_get(cp, json_array_size(cp) - 1), "total_tokens_saved"), 4000, "newest checkpoint kept");
    is_int(geti(doc, "checkpoints_thinned") + (json_int_t)json_array_size(cp), 40, "thinned count accounts for the rest");
    json_decref(doc);

    /* the model split is bounded */
    doc = hr_sav_doc_new(NOW);
    for (int i = 0; i < 70; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        struct hr_sav_delta x = cell((int64_t)NOW, "openai", m, 1);
        hr_sav_apply(doc, &x, 1, NOW, 0, 16, 90);
    }
    h = json_object_get(json_object_get(doc, "hourly"), "2024-05-01T12:00:00Z");
    json_t *bm = json_object_get(h, "by_model");
    is_int(json_object_size(bm), HR_SAV_MAX_SPLITS + 1, "64 models then 'other'");
    is_int(geti(json_object_get(bm, "other"), "requests"), 70 - HR_SAV_MAX_SPLITS, "'other' holds the overflow");
    json_decref(doc);

    /* hours older than the retention fold into exact days */
    doc = hr_sav_doc_new(NOW);
    struct hr_sav_delta old[2] = {cell((int64_t)NOW - 40 * 86400, "openai", "gpt-4o", 7),
                                  cell((int64_t)NOW - 40 * 86400 + 7200, "openai", "gpt-4o", 5)};
    hr_sav_apply(doc, old, 2, NOW, 1, 16, 30);
    is_int(json_object_size(json_object_get(doc, "hourly")), 0, "old hours compacted");
    json_t *day = json_object_get(json_object_get(doc, "daily"), "2024-03-22");
    is_int(geti(day, "tokens_saved"), 12, "into their UTC day");
    is_int(geti(json_object_get(json_object_get(day, "by_model"), "gpt-4o"), "requests"), 2, "with splits");
    ok(hr_sav_doc_validate(doc, why, sizeof why) == 0, "compacted document validates (%s)", why);
    json_decref(doc);
}

static void test_series(void)
{
    json_t *doc = hr_sav_doc_new(NOW);
    struct hr_sav_delta d[4] = {
        cell((int64_t)NOW - 45 * 86400, "openai", "gpt-4o", 1), /* compacted day, 2024-03-17 (Sunday) */
        cell((int64_t)NOW - 3 * 86400, "openai", "gpt-4o", 10), cell((int64_t)NOW - 3600, "anthropic", "claude", 20),
        cell((int64_t)NOW, "openai", "gpt-4o", 30)};
    hr_sav_apply(doc, d, 4, NOW, 1, 16, 30);

    json_t *daily = hr_sav_series(doc, HR_SAV_DAILY, NOW);
    is_int(json_array_size(daily), 46, "daily rows: gap-free from the first day to today");
    is_str(json_string_value(json_object_get(json_array_get(daily, 0), "timestamp")), "2024-03-17T00:00:00Z",
           "first daily row");
    json_t *last = json_array_get(daily, 45);
    is_int(geti(last, "tokens_saved"), 50, "today's row");
    is_int(geti(last, "total_tokens_saved"), 61, "cumulative at the end equals the lifetime");
    is_int(geti(json_array_get(daily, 1), "requests"), 0, "empty day present with zeros");
    is_int(geti(json_object_get(json_object_get(last, "by_model"), "claude"), "tokens_saved"), 20, "row splits");
    json_decref(daily);

    json_t *weekly = hr_sav_series(doc, HR_SAV_WEEKLY, NOW);
    is_str(json_string_value(json_object_get(json_array_get(weekly, 0), "timestamp")), "2024-03-11T00:00:00Z",
           "weeks start on Monday (a Sunday belongs to the week before)");
    is_str(json_string_value(json_object_get(json_array_get(weekly, json_array_size(weekly) - 1), "timestamp")),
           "2024-04-29T00:00:00Z", "current week");
    is_int(json_array_size(weekly), 8, "weekly rows gap-free");
    json_decref(weekly);

    json_t *monthly = hr_sav_series(doc, HR_SAV_MONTHLY, NOW);
    is_int(json_array_size(monthly), 3, "March, April, May");
    is_str(json_string_value(json_object_get(json_array_get(monthly, 1), "timestamp")), "2024-04-01T00:00:00Z",
           "month rows start on the 1st");
    is_int(geti(json_array_get(monthly, 1), "tokens_saved"), 10, "April holds the request of 3 days ago");
    is_int(geti(json_array_get(monthly, 2), "total_tokens_saved"), 61, "monthly cumulative");
    json_decref(monthly);

    json_t *hourly = hr_sav_series(doc, HR_SAV_HOURLY, NOW);
    is_int(json_array_size(hourly), 73, "hourly: gap-free from the first stored hour");
    is_int(geti(json_array_get(hourly, 71), "tokens_saved"), 20, "previous hour");
    is_int(geti(json_array_get(hourly, 0), "total_tokens_saved"), 11, "hourly cumulative includes older days");
    json_decref(hourly);

    struct hr_sav_delta older = cell((int64_t)NOW - 20 * 86400, "openai", "gpt-4o", 1);
    hr_sav_apply(doc, &older, 1, NOW, 0, 16, 30);
    hourly = hr_sav_series(doc, HR_SAV_HOURLY, NOW);
    is_int(json_array_size(hourly), 168, "hourly series capped at 7 days");
    json_decref(hourly);
    json_decref(doc);

    doc = hr_sav_doc_new(NOW);
    json_t *empty = hr_sav_series(doc, HR_SAV_DAILY, NOW);
    ok(json_array_size(empty) == 1 && geti(json_array_get(empty, 0), "requests") == 0, "empty store: one zero row");
    json_decref(empty);
    json_decref(doc);
}

static void test_history(void)
{
    json_t *doc = hr_sav_doc_new(NOW);
    struct hr_sav_delta d = cell((int64_t)NOW, "openai", "gpt-4o", 1);
    for (int i = 0; i < 2000; i++) hr_sav_apply(doc, &d, 1, NOW + i, 1, 2048, 90);
    json_t *c = hr_sav_history_points(doc, HR_SAV_COMPACT);
    is_int(json_array_size(c), 500, "compact: 500 points");
    is_int(geti(json_array_get(c, 0), "total_tokens_saved"), 1, "compact keeps the first point");
    is_int(geti(json_array_get(c, 499), "total_tokens_saved"), 2000, "and the last");
    is_int(geti(json_array_get(c, 499 - 100), "total_tokens_saved"), 2000 - 100, "newest third dense");
    json_decref(c);
    c = hr_sav_history_points(doc, HR_SAV_FULL);
    is_int(json_array_size(c), 2000, "full: every point");
    json_decref(c);
    c = hr_sav_history_points(doc, HR_SAV_NONE);
    is_int(json_array_size(c), 0, "none: no points");
    json_decref(c);

    struct hr_sav_query q = {HR_SAV_COMPACT, 0, HR_SAV_HISTORY};
    json_t *h = hr_sav_history_json(doc, &q, NOW + 3000);
    is_int(geti(h, "schema_version"), 2, "http schema_version 2");
    json_t *sum = json_object_get(h, "history_summary");
    ok(geti(sum, "stored_points") == 2000 && geti(sum, "returned_points") == 500 &&
           json_is_true(json_object_get(sum, "compacted")),
       "history_summary");
    ok(json_is_array(json_object_get(json_object_get(h, "series"), "monthly")), "series.monthly");
    ok(json_array_size(json_object_get(json_object_get(h, "exports"), "available_series")) == 5, "exports");
    json_decref(h);

    size_t len = 0;
    q.series = HR_SAV_DAILY;
    char *csv = hr_sav_history_csv(doc, &q, NOW, &len);
    ok(csv && !strncmp(csv, "timestamp,requests,tokens_saved,compression_savings_usd,input_tokens,total_cost_usd,"
                            "total_tokens_saved\r\n", 93), "CSV header row");
    ok(csv && strstr(csv, "\r\n2024-05-01T00:00:00Z,2000,2000,0.002,8000,0.004,2000\r\n") != NULL,
       "CSV data row with CRLF");
    free(csv);
    q.series = HR_SAV_HISTORY;
    q.mode = HR_SAV_FULL;
    csv = hr_sav_history_csv(doc, &q, NOW, &len);
    int lines = 0;
    for (size_t i = 0; csv && i < len; i++) lines += csv[i] == '\n';
    is_int(lines, 2001, "history CSV: header + every point");
    free(csv);
    json_decref(doc);
}

static void test_query(void)
{
    struct hr_sav_query q;
    json_t *err;
    ok(hr_sav_query_parse("", &q, &err) == 0 && q.mode == HR_SAV_COMPACT && !q.csv && q.series == HR_SAV_HISTORY,
       "defaults");
    ok(hr_sav_query_parse("history_mode=full&format=%63sv&series=weekly&x=1", &q, &err) == 0 &&
           q.mode == HR_SAV_FULL && q.csv && q.series == HR_SAV_WEEKLY,
       "values, url-decoding, unknown keys ignored");
    ok(hr_sav_query_parse("series=yearly", &q, &err) == -1, "bad series refused");
    json_t *e = json_object_get(err, "error");
    is_str(json_string_value(json_object_get(e, "parameter")), "series", "error names the parameter");
    is_int(json_array_size(json_object_get(e, "allowed")), 5, "and the allowed values");
    json_decref(err);
    ok(hr_sav_query_parse("history_mode=%ff%fe", &q, &err) == -1, "non-UTF-8 value refused");
    char *t = json_dumps(err, 0);
    ok(t != NULL, "error body still serialises");
    free(t);
    json_decref(err);
    ok(hr_sav_query_parse("format=xml", &q, &err) == -1, "bad format refused");
    json_decref(err);
}

static int count_prefix(const char *dir, const char *prefix)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '^%s' 2>/dev/null", dir, prefix);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

static void test_disk(void)
{
    char dir[] = "/tmp/hr-savings-unit-XXXXXX";
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    char path[512], why[256];
    snprintf(path, sizeof path, "%s/a/b/proxy_savings.json", dir);
    json_t *doc;
    ok(hr_sav_load(path, NOW, &doc, why, sizeof why) == HR_SAV_MISSING, "missing file: fresh start");
    ok(hr_sav_mkdir_parent(path) == 0, "parent directories created");
    struct stat st;
    char parent[512];
    snprintf(parent, sizeof parent, "%s/a/b", dir);
    ok(stat(parent, &st) == 0 && (st.st_mode & 0777) == 0700, "directory mode 0700");
    struct hr_sav_delta d = cell((int64_t)NOW, "openai", "gpt-4o", 5);
    hr_sav_apply(doc, &d, 1, NOW, 1, 16, 30);
    ok(hr_sav_write_atomic(path, doc) == 0, "atomic write");
    json_decref(doc);
    ok(hr_sav_load(path, NOW, &doc, why, sizeof why) == HR_SAV_LOADED, "written file loads");
    is_int(geti(json_object_get(doc, "lifetime"), "tokens_saved"), 5, "with its counts");
    json_decref(doc);
    is_int(count_prefix(parent, "proxy_savings.json.tmp"), 0, "no temp file left behind");

    /* several processes sharing the file lose nothing */
    enum { KIDS = 4, ROUNDS = 40 };
    for (int k = 0; k < KIDS; k++) {
        if (fork() == 0) {
            for (int i = 0; i < ROUNDS; i++) {
                /* The lock gives up after 2 s by design (the daemon retries
                 * at its next flush); a loaded machine can starve one writer
                 * that long, so retry as the daemon would. */
                int fd;
                while ((fd = hr_sav_lock(path)) == -ETIMEDOUT) {}
                if (fd < 0) _exit(2);
                json_t *x;
                char w[256];
                if (hr_sav_load(path, NOW, &x, w, sizeof w) != HR_SAV_LOADED) _exit(3);
                hr_sav_apply(x, &d, 1, NOW, 1, 64, 30);
                if (hr_sav_write_atomic(path, x)) _exit(4);
                json_decref(x);
                hr_sav_unlock(fd);
            }
            _exit(0);
        }
    }
    int all_ok = 1;
    for (int k = 0; k < KIDS; k++) {
        int status;
        wait(&status);
        all_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    ok(all_ok, "concurrent writers all succeeded");
    ok(hr_sav_load(path, NOW, &doc, why, sizeof why) == HR_SAV_LOADED, "file intact after concurrent writers");
    is_int(geti(json_object_get(doc, "lifetime"), "requests"), 1 + KIDS * ROUNDS, "no lost updates under the lock");
    json_decref(doc);

    /* damaged: moved aside */
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\":1,", f);
    fclose(f);
    ok(hr_sav_load(path, NOW, &doc, why, sizeof why) == HR_SAV_DAMAGED, "truncated file is damaged");
    json_decref(doc);
    char dest[600];
    ok(hr_sav_quarantine(path, NOW, dest, sizeof dest) == 0 && strstr(dest, ".corrupt-20240501T125130Z"),
       "quarantined as .corrupt-<UTC stamp> (%s)", dest);
    ok(access(path, F_OK) != 0 && access(dest, F_OK) == 0, "original moved");
    f = fopen(path, "w");
    fclose(f);
    ok(hr_sav_quarantine(path, NOW, dest, sizeof dest) == 0 && strstr(dest, "Z-1"), "second casualty gets a suffix");

    ok(mkdir(path, 0700) == 0, "make the path a directory");
    ok(hr_sav_load(path, NOW, &doc, why, sizeof why) == HR_SAV_DAMAGED && strstr(why, "regular"),
       "unreadable (a directory) is damaged (%s)", why);
    json_decref(doc);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) tap_diag("could not remove %s", dir);
}

int main(void)
{
    test_iso();
    test_parse();
    test_apply();
    test_series();
    test_history();
    test_query();
    test_disk();
    return tap_exit();
}
