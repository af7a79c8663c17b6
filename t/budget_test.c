/* t/budget_test.c — budget periods (hourly … monthly, weeks from Monday,
 * month and year rollover), limit checks, WARN lines, persistence round
 * trip, a damaged budget.json, two processes' worth of budgets on one file,
 * concurrent adds, and the HEADROOM_TEST_NOW clock. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "budget.h"
#include "log.h"
#include "stats.h"
#include "tap.h"

/* 2025-11-26 (a Wednesday) 12:34:56 UTC */
#define WED 1764160496L
#define MON_2025_11_24 1763942400L

static char dir[256];
static char path[300];

/* Log lines go to fd 2: capture them in a file to count WARN lines. */
static int saved_stderr = -1;
static char log_path[300];
static void capture_start(void)
{
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}
static int capture_end(const char *needle)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(log_path, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, needle)) n++;
        else if (*line) tap_diag("log: %s", line);
    }
    if (f) fclose(f);
    return n;
}

static void test_periods(void)
{
    time_t s, e;
    is_int(hr_budget_period_parse("hourly"), HR_BUDGET_HOURLY, "parse hourly");
    is_int(hr_budget_period_parse("monthly"), HR_BUDGET_MONTHLY, "parse monthly");
    ok(hr_budget_period_parse("yearly") < 0 && hr_budget_period_parse(NULL) < 0, "unknown period refused");
    is_str(hr_budget_period_name(HR_BUDGET_WEEKLY), "weekly", "name");
    hr_budget_period_bounds(HR_BUDGET_HOURLY, WED, &s, &e);
    ok(s == WED - (34 * 60 + 56) && e == s + 3600, "hourly bounds");
    hr_budget_period_bounds(HR_BUDGET_DAILY, WED, &s, &e);
    ok(s == WED - (12 * 3600 + 34 * 60 + 56) && e == s + 86400, "daily bounds (UTC midnight)");
    hr_budget_period_bounds(HR_BUDGET_WEEKLY, WED, &s, &e);
    ok(s == MON_2025_11_24 && e == s + 7 * 86400, "week starts Monday 00:00 UTC");
    hr_budget_period_bounds(HR_BUDGET_WEEKLY, MON_2025_11_24 + 7 * 86400 - 1, &s, &e);
    ok(s == MON_2025_11_24, "Sunday 23:59:59 still in Monday's week");
    hr_budget_period_bounds(HR_BUDGET_WEEKLY, MON_2025_11_24 + 7 * 86400, &s, &e);
    ok(s == MON_2025_11_24 + 7 * 86400, "next Monday 00:00 starts a new week");
    hr_budget_period_bounds(HR_BUDGET_MONTHLY, 1765800000L /* 2025-12-15 */, &s, &e);
    ok(s == 1764547200L && e == 1767225600L, "December: 2025-12-01 to 2026-01-01");
    hr_budget_period_bounds(HR_BUDGET_MONTHLY, 1709164800L /* 2024-02-29 */, &s, &e);
    ok(s == 1706745600L && e == 1709251200L, "leap February: 2024-02-01 to 2024-03-01");
}

static void test_memory_budget(void)
{
    struct hr_budget *b;
    char err[256];
    ok(hr_budget_open(0, HR_BUDGET_DAILY, NULL, &b, err, sizeof err) < 0, "limit 0 refused");
    setenv("HEADROOM_TEST_NOW", "1764160496", 1);
    is_int((long long)hr_clock_now(), WED, "HEADROOM_TEST_NOW replaces the clock");
    if (!is_int(hr_budget_open(1.0, HR_BUDGET_DAILY, NULL, &b, err, sizeof err), 0, "memory budget opens")) return;
    double ra = -1;
    ok(!hr_budget_exceeded(b, WED, &ra), "fresh budget not exceeded");
    capture_start();
    hr_budget_add(b, 0.5, WED);
    hr_budget_add(b, 0.35, WED); /* 85 % */
    hr_budget_add(b, 0.01, WED); /* still 86 %: no second 80 % line */
    int warn80 = capture_end("budget 80% used");
    is_int(warn80, 1, "one WARN at 80 %%");
    ok(!hr_budget_exceeded(b, WED, NULL), "under the limit");
    capture_start();
    hr_budget_add(b, 0.2, WED);
    hr_budget_add(b, 0.2, WED);
    is_int(capture_end("budget exceeded"), 1, "one WARN at 100 %%");
    ok(hr_budget_exceeded(b, WED, &ra), "exceeded at the limit");
    ok(fabs(ra - (11 * 3600 + 25 * 60 + 4)) < 1, "retry after = seconds to UTC midnight (%.0f)", ra);
    struct hr_budget_state st;
    hr_budget_get(b, WED, &st);
    ok(fabs(st.spent_usd - 1.26) < 1e-9 && st.remaining_usd == 0 && st.exceeded, "state: spent, remaining 0");
    json_t *j = hr_budget_json(b, WED, 7);
    ok(json_is_true(json_object_get(j, "exceeded")) &&
           !strcmp(json_string_value(json_object_get(j, "resets_at")), "2025-11-27T00:00:00Z") &&
           json_integer_value(json_object_get(j, "rejected_requests")) == 7 &&
           !strcmp(json_string_value(json_object_get(j, "period")), "daily"),
       "json: exceeded, resets_at, rejected_requests, period");
    json_decref(j);
    ok(!hr_budget_exceeded(b, WED + 12 * 3600, NULL), "next day: allowed again");
    hr_budget_get(b, WED + 12 * 3600, &st);
    ok(st.spent_usd == 0, "next day starts at 0");
    hr_budget_close(b);
    unsetenv("HEADROOM_TEST_NOW");
}

static void test_monthly_rollover(void)
{
    struct hr_budget *b;
    char err[256];
    if (hr_budget_open(5, HR_BUDGET_MONTHLY, NULL, &b, err, sizeof err)) return;
    double dec31 = 1767225599; /* 2025-12-31 23:59:59 */
    hr_budget_add(b, 5, dec31);
    double ra;
    ok(hr_budget_exceeded(b, dec31, &ra) && fabs(ra - 1) < 1e-9, "monthly: spent on Dec 31, resets in 1 s");
    ok(!hr_budget_exceeded(b, dec31 + 1, NULL), "January 1st: new month");
    hr_budget_close(b);
}

static int count_corrupt(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, "budget.json.corrupt-")) n++;
    if (d) closedir(d);
    return n;
}

static void test_persistence(void)
{
    struct hr_budget *b, *c;
    char err[256];
    setenv("HEADROOM_TEST_NOW", "1764160496", 1);
    if (!is_int(hr_budget_open(10, HR_BUDGET_WEEKLY, path, &b, err, sizeof err), 0, "file budget opens")) return;
    hr_budget_add(b, 1.25, WED);
    is_int(hr_budget_flush(b), 0, "flush");
    ok(access(path, F_OK) == 0, "budget.json written");
    hr_budget_add(b, 0.75, WED);
    hr_budget_close(b); /* writes the rest */
    hr_budget_open(10, HR_BUDGET_WEEKLY, path, &b, err, sizeof err);
    struct hr_budget_state st;
    hr_budget_get(b, WED, &st);
    ok(fabs(st.spent_usd - 2.0) < 1e-9, "restart: spend survives (%.6f)", st.spent_usd);
    /* A second process on the same file: both counts kept. */
    hr_budget_open(10, HR_BUDGET_WEEKLY, path, &c, err, sizeof err);
    hr_budget_add(b, 1, WED);
    hr_budget_add(c, 2, WED);
    hr_budget_flush(b);
    hr_budget_flush(c);
    hr_budget_flush(b);
    hr_budget_get(b, WED, &st);
    ok(fabs(st.spent_usd - 5.0) < 1e-9, "two writers on one file: 2 + 1 + 2 = %.6f", st.spent_usd);
    hr_budget_close(c);
    hr_budget_close(b);
    /* Another period kind starts fresh. */
    hr_budget_open(10, HR_BUDGET_DAILY, path, &b, err, sizeof err);
    hr_budget_get(b, WED, &st);
    ok(st.spent_usd == 0, "changed period kind: starts at 0");
    hr_budget_close(b);
    /* Next week: the file's week is over. */
    char next[32];
    snprintf(next, sizeof next, "%ld", MON_2025_11_24 + 7 * 86400 + 5);
    setenv("HEADROOM_TEST_NOW", next, 1);
    hr_budget_open(10, HR_BUDGET_WEEKLY, path, &b, err, sizeof err);
    hr_budget_get(b, hr_clock_now(), &st);
    ok(st.spent_usd == 0, "restart in the next week: 0");
    hr_budget_close(b);
    setenv("HEADROOM_TEST_NOW", "1764160496", 1);

    static const char *const damaged[] = {"", "{\"version\":1", "[1,2]", "{\"version\":99,\"period\":\"daily\","
                                          "\"period_start_unix\":0,\"spent_usd\":1}", "{\"version\":1,\"period\":"
                                          "\"weekly\",\"period_start_unix\":1763942400,\"spent_usd\":-5}"};
    for (size_t i = 0; i < sizeof damaged / sizeof *damaged; i++) {
        FILE *f = fopen(path, "w");
        fputs(damaged[i], f);
        fclose(f);
        int before = count_corrupt();
        capture_start();
        int rc = hr_budget_open(10, HR_BUDGET_WEEKLY, path, &b, err, sizeof err);
        int warns = capture_end("is damaged");
        ok(rc == 0 && warns == 1 && count_corrupt() == before + 1 && access(path, F_OK) != 0,
           "damaged file %zu: moved aside, one WARN, fresh start", i);
        if (rc) continue;
        hr_budget_get(b, WED, &st);
        ok(st.spent_usd == 0, "damaged file %zu: spend 0", i);
        hr_budget_close(b);
    }
    unsetenv("HEADROOM_TEST_NOW");
}

static struct hr_budget *shared;
static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        hr_budget_add(shared, 0.001, WED);
        hr_budget_exceeded(shared, WED, NULL);
        if (i % 500 == 0) hr_budget_flush(shared);
    }
    return NULL;
}

static void test_threads(void)
{
    char err[256], p2[320];
    snprintf(p2, sizeof p2, "%s/threads.json", dir);
    setenv("HEADROOM_TEST_NOW", "1764160496", 1);
    if (hr_budget_open(1000, HR_BUDGET_DAILY, p2, &shared, err, sizeof err)) return;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    struct hr_budget_state st;
    hr_budget_get(shared, WED, &st);
    ok(fabs(st.spent_usd - 8.0) < 1e-6, "4 threads x 2000 adds with flushes between: %.6f", st.spent_usd);
    hr_budget_close(shared);
    hr_budget_open(1000, HR_BUDGET_DAILY, p2, &shared, err, sizeof err);
    hr_budget_get(shared, WED, &st);
    ok(fabs(st.spent_usd - 8.0) < 1e-6, "and all of it persisted");
    hr_budget_close(shared);
    unsetenv("HEADROOM_TEST_NOW");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/hr-budget-test-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/state/budget.json", dir);
    test_periods();
    test_memory_budget();
    test_monthly_rollover();
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/state"); /* corrupt files land next to budget.json */
    test_persistence();
    test_threads();
    char cmd[300];
    dir[strlen(dir) - 6] = '\0';
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) tap_diag("could not remove %s", dir);
    tap_done();
    return tap_failed ? 1 : 0;
}
