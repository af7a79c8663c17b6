/* budget.h — a spend limit per UTC period (hourly, daily, weekly from
 * Monday, monthly), kept in memory and persisted to budget.json. */
#ifndef HR_BUDGET_H
#define HR_BUDGET_H
#include <stddef.h>
#include <time.h>
#include <jansson.h>

enum hr_budget_period { HR_BUDGET_HOURLY, HR_BUDGET_DAILY, HR_BUDGET_WEEKLY, HR_BUDGET_MONTHLY };

/* "hourly" … "monthly"; -EINVAL otherwise. */
int hr_budget_period_parse(const char *s);
const char *hr_budget_period_name(enum hr_budget_period p);
/* The UTC period holding `t`: [*start, *end). */
void hr_budget_period_bounds(enum hr_budget_period p, time_t t, time_t *start, time_t *end);


struct hr_budget;

/*
 * hr_budget_open
 *   A budget of `limit_usd` per period, its spend loaded from `state_path`
 *   (NULL: memory only). A damaged file is moved aside as
 *   <file>.corrupt-<UTC stamp> with one WARN line, and counting starts fresh;
 *   a file from another period or period kind starts at 0.
 */
int hr_budget_open(double limit_usd, enum hr_budget_period period, const char *state_path, struct hr_budget **out,
                   char *err, size_t errlen);
/* Write unflushed spend (if any), free. */
void hr_budget_close(struct hr_budget *b);

/* 1 when the current period's spend has reached the limit (then
 * *retry_after_s is the time until the period resets), else 0. */
int hr_budget_exceeded(struct hr_budget *b, double now, double *retry_after_s);
/* Add a completed request's cost; logs WARN once per period at 80 % and 100 %. */
void hr_budget_add(struct hr_budget *b, double usd, double now);

/* Fleet: the spend of period `start` as the shared store holds it (N
 * instances add to it). Spend only grows within a period, so the larger of
 * this and what this process knows wins. */
void hr_budget_observe(struct hr_budget *b, time_t start, double spent_usd);
/* A reload (SIGHUP): a new limit for the running period, spend kept.
 * 0, or -EINVAL for a limit not above 0. */
int hr_budget_set_limit(struct hr_budget *b, double limit_usd, double now);
/* The daemon takes the file over: one written under another limit_usd
 * (another `budget` before a restart, or before a reload switched the budget
 * on) is rewritten by the next hr_budget_flush with the limit in force, the
 * period's spend kept. hr_budget_open alone leaves it so: --telemetry-preview
 * opens the budget too. */
void hr_budget_adopt_file(struct hr_budget *b);
enum hr_budget_period hr_budget_get_period(struct hr_budget *b);

struct hr_budget_state {
    double limit_usd, spent_usd, remaining_usd;
    int exceeded;
    enum hr_budget_period period;
    time_t period_start, resets_at;
};
void hr_budget_get(struct hr_budget *b, double now, struct hr_budget_state *st);
/* The /stats "budget" object. */
json_t *hr_budget_json(struct hr_budget *b, double now, unsigned long long rejected);

/*
 * hr_budget_flush
 *   Write the spend if it changed: take <file>.lock, re-read (another
 *   headroomd may share the file), add our unflushed spend, write atomically
 *   (temp, fsync, rename, fsync dir). Safe to call from any thread; never
 *   holds the in-memory lock during I/O. 0 or a negative errno.
 */
int hr_budget_flush(struct hr_budget *b);
#endif
