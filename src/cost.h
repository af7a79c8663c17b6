/* cost.h — the daemon's price table and budget: set up from the config,
 * pricing of finished requests, the budget gate, and their /stats blocks. */
#ifndef HR_COST_H
#define HR_COST_H
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include "config.h"
#include "headroom/plugin.h"
#include "stats.h"

/*
 * hr_cost_init
 *   Load the price table (`prices` / HEADROOM_PRICES, else the installed or
 *   source-tree prices.json) and open the budget (budget > 0) with its state
 *   in $HEADROOM_WORKSPACE_DIR/budget.json, else ~/.headroom/budget.json.
 *   A bad price table or budget setting is an error naming file and problem.
 *   With check_only (--check-config) the budget file is not opened: nothing
 *   is created or moved aside.
 */
int hr_cost_init(const struct hr_config *c, int check_only, char *err, size_t errlen);
/*
 * hr_cost_reload
 *   SIGHUP: load the price table again (the file may have changed, or
 *   `prices` names another), apply a new budget limit, switch a budget on
 *   or off. `done` gets a summary of what is now in force; `restart` names
 *   what only a restart changes (another budget_period), or stays empty.
 *   On error (unreadable prices, budget file) nothing changed and err says why.
 */
int hr_cost_reload(const struct hr_config *c, char *done, size_t donelen, char *restart, size_t restartlen, char *err,
                   size_t errlen);
/* Write the budget file every second (housekeeping thread) when it changed;
 * and now, when it records another limit than the one in force. Before the
 * housekeeping thread starts. */
void hr_cost_start_flusher(void);
/* Flush and free (clean shutdown). */
void hr_cost_shutdown(void);
/* One or two lines for --check-config. */
void hr_cost_describe(FILE *out);

/*
 * hr_cost_price_event
 *   Fill ev->cost_usd, ev->savings_usd and ev->priced from the event's model
 *   and usage fields. Without provider usage (`usage_seen` 0) a 2xx answer's
 *   input is estimated from ev->tokens_sent. `split` (optional) gets the parts.
 */
struct hr_cost;
void hr_cost_price_event(struct hr_event *ev, int usage_seen, struct hr_cost *split);
/* hr_cost_price_event, then count the cost split and add it to the budget. */
void hr_cost_account_event(struct hr_event *ev, int usage_seen);

/* USD as the headers and SSE comment print it (6 decimals). */
void hr_cost_format_usd(double usd, char *out, size_t outlen);
/* The closing SSE comment of a stream, e.g.
 * ": headroom tokens_before=… tokens_after=… tokens_saved=… cost_usd=… savings_usd=…\n\n".
 * Returns its length, or -1 when it does not fit in outlen. */
int hr_cost_sse_comment(const struct hr_event *ev, char *out, size_t outlen);

/*
 * hr_cost_budget_gate
 *   1 when the budget is spent: `msg` says so (spent, limit, period, when
 *   it resets, how to raise it) for the format's budget_exceeded error, and
 *   *retry_after_s is the whole seconds until the period resets. 0 when the
 *   request may go on.
 */
int hr_cost_budget_gate(char *msg, size_t msglen, long *retry_after_s);

/* /stats "cost" and "budget" (null without a budget). */
json_t *hr_cost_stats_json(const struct hr_stats_data *d);
json_t *hr_cost_budget_json(const struct hr_stats_data *d);
/* For /metrics: 1 and the figures when a budget is set, else 0. */
int hr_cost_budget_figures(double *spent_usd, double *limit_usd);
/* Fleet mode (fleet.c): the budget's spend lives in a shared store.
 * hr_cost_budget_period: 1 and the current period when a budget is set.
 * hr_cost_budget_observe: the shared spend of the period starting at `start`.
 * hr_cost_set_budget_remote: every priced request's cost is also handed to
 * `add` (on the thread that finished the request). */
int hr_cost_budget_period(double now, const char **period_name, time_t *start, time_t *end);
void hr_cost_budget_observe(time_t start, double spent_usd);
void hr_cost_set_budget_remote(void (*add)(void *ctx, double usd, double now), void *ctx);
#endif
