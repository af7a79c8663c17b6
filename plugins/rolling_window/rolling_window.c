/* rolling_window.c — the opt-in `rolling_window` transform: keeps a request inside
 * the model's context window by dropping the oldest tool outputs, then the oldest
 * whole turns (never the system prompt or the last two turns; the first user
 * message, the task, only as a last resort; tool calls and their results go
 * together). Chat and Anthropic `messages`, Responses `input` items. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "media_tokens.h"
#include "window.h"

/* The host adds this many tokens per message to a request's count
 * (src/pipeline.c); removing a message removes them too. */
#define RW_MESSAGE_TOKENS 3
#define RW_KEEP_TURNS 2

#define RW_DEFAULT_PLACEHOLDER "[older tool output dropped by headroom to fit the context window]"

enum { C_OVER, C_OUTPUTS, C_OUTPUT_TOKENS, C_TURNS, C_MESSAGES, C_TURN_TOKENS, C_STILL_OVER, C_UNCOUNTED,
       C_RECENT_OUTPUTS, C_FIRST_USER, C__N };

struct rw {
    const struct hr_host *host;
    struct hr_instance *self;
    long long max_tokens, reserve_output, default_context;
    int drop_turns, keep_first_user;
    char *placeholder;
    size_t placeholder_len;
    int can_report_removed;      /* host has stage_tokens_removed */
    atomic_int warned_uncounted;
    atomic_ullong c[C__N];
};

static const struct hr_conf_key rw_keys[] = {
    HR_CONF_KEY_RANGE("max_tokens", HR_CONF_INT, "0",
                 "input token budget of a request; 0 = the model's context window (built-in table) minus reserve_output", 0, 100000000),
    HR_CONF_KEY_RANGE("reserve_output", HR_CONF_INT, "8192",
                 "tokens left for the answer when max_tokens is 0 (at most half the context window)", 0, 10000000),
    HR_CONF_KEY_RANGE("default_context", HR_CONF_INT, "0",
                 "context window assumed for models missing from the built-in table; 0 = leave their requests alone", 0, 100000000),
    HR_CONF_KEY("drop_turns", HR_CONF_BOOL, "yes",
                 "after tool outputs, drop the oldest whole turns when the request still does not fit"),
    HR_CONF_KEY("keep_first_user", HR_CONF_BOOL, "yes",
                 "keep the first user message (the task) while the turns after it are dropped; it goes only when "
                 "the request cannot fit with it"),
    HR_CONF_KEY("placeholder", HR_CONF_STRING, RW_DEFAULT_PLACEHOLDER,
                 "text that replaces a dropped tool output"),
    HR_CONF_END,
};

/* ------------------------------------------------------------ counting */

/* Which members of a request are data (images, PDFs, signatures) and what
 * the provider bills for them: the host's rules (its adapters use the same
 * functions), so an image counts ~1,400 tokens, not the ~500,000 of its
 * base64 as text. */
typedef int (*data_tokens_fn)(const json_t *object, const char *key, uint64_t *tokens);

static data_tokens_fn data_tokens_for(const struct hr_request *req)
{
    if (!HR_HAS_FIELD(req, struct hr_request, wire_format))
        return NULL; /* a host before ABI 1.2 counts every string as text */
    switch (req->wire_format) {
    case HR_WIRE_ANTHROPIC_MESSAGES: return hr_media_anthropic_data_tokens;
    case HR_WIRE_OPENAI_CHAT: return hr_media_chat_data_tokens;
    case HR_WIRE_OPENAI_RESPONSES: return hr_media_responses_data_tokens;
    default: return NULL;
    }
}

struct counter {
    const struct hr_host *host;
    const char *model;
    data_tokens_fn data_tokens; /* NULL: every string is text */
    const struct hr_unit **units; /* sorted by text address: their counts are known */
    size_t n_units;
};

static int cmp_unit_text(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(const struct hr_unit *const *)a)->text;
    uintptr_t y = (uintptr_t)(*(const struct hr_unit *const *)b)->text;
    return (x > y) - (x < y);
}

static const struct hr_unit *known_unit(const struct counter *c, const char *text)
{
    size_t lo = 0, hi = c->n_units;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uintptr_t t = (uintptr_t)c->units[mid]->text;
        if (t == (uintptr_t)text)
            return c->units[mid];
        if (t < (uintptr_t)text)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Tokens inside v as the host counts a request: every string of text, data
 * as its provider bills it. Not `exact`: a text string counts its bytes, an
 * upper bound of its tokens (byte-level BPE never makes more tokens than
 * bytes), so small requests skip exact counting. */
static uint64_t count_json(const struct counter *c, const json_t *v, int exact)
{
    uint64_t n = 0, data;
    size_t i;
    const char *k;
    json_t *x;
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING: {
        if (!exact)
            return json_string_length(v);
        const struct hr_unit *u = known_unit(c, json_string_value(v));
        return u ? u->tokens : c->host->count_tokens(c->model, json_string_value(v), json_string_length(v));
    }
    case JSON_ARRAY:
        json_array_foreach(v, i, x) n += count_json(c, x, exact);
        return n;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x) {
            if (c->data_tokens && c->data_tokens(v, k, &data))
                n += data; /* an image by URL counts more than its bytes: in the bound too */
            else
                n += count_json(c, x, exact);
        }
        return n;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ plan */

struct cand {
    size_t unit;
    uint64_t gain;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

static long long budget_for(const struct rw *w, const char *model)
{
    if (w->max_tokens > 0)
        return w->max_tokens;
    long long ctx = hr_rw_context_window(model);
    if (!ctx)
        ctx = w->default_context;
    if (!ctx)
        return 0;
    long long reserve = w->reserve_output < ctx / 2 ? w->reserve_output : ctx / 2;
    return ctx - reserve;
}

struct work {
    struct hr_rw_turns turns;
    uint64_t *msg_tok;
    uint64_t *turn_tok, *turn_gain;
    const struct hr_unit **sorted;
    struct cand *cand;
    unsigned char *drop_msg;
};

static void work_free(struct work *k)
{
    hr_rw_turns_free(&k->turns);
    free(k->msg_tok);
    free(k->turn_tok);
    free(k->turn_gain);
    free(k->sorted);
    free(k->cand);
    free(k->drop_msg);
}

/* Whether the request is still over `budget` with `total` tokens even when
 * tool outputs worth `gain` become the placeholder. */
static int outputs_short(uint64_t total, uint64_t gain, uint64_t budget)
{
    return total - (gain < total ? gain : total) > budget;
}

/* The fewest oldest turns (whole removal groups, never reaching the last
 * two turns) whose removal lets the tool outputs of the turns that stay fit
 * the request into `budget`: returns the first turn kept (turns before it
 * go), and takes those turns' tokens and output gains off *total, *gain. */
static size_t plan_turns(const struct work *k, int drop_turns, size_t keep_from, uint64_t budget, uint64_t *total,
                         uint64_t *gain)
{
    size_t first_kept = 0;
    while (drop_turns && outputs_short(*total, *gain, budget) && first_kept < keep_from) {
        size_t end = hr_rw_group_end(&k->turns, first_kept);
        if (end >= keep_from)
            break; /* a tool call there is answered inside the last two turns */
        for (size_t t = first_kept; t <= end; t++) {
            *total -= k->turn_tok[t];
            *gain -= k->turn_gain[t];
        }
        first_kept = end + 1;
    }
    return first_kept;
}

/* Where the results the model is about to read start: after the last item
 * of the model's own (an assistant message; Responses: a call or
 * reasoning item). Without one, the last message. */
static size_t newest_results(json_t *msgs, size_t nm)
{
    for (size_t i = nm; i-- > 0;) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *type = json_string_value(json_object_get(m, "type"));
        size_t tl = type ? strlen(type) : 0;
        if ((role && !strcmp(role, "assistant")) || (type && !strcmp(type, "reasoning")) ||
            (tl > 5 && !strcmp(type + tl - 5, "_call")))
            return i + 1;
    }
    return nm ? nm - 1 : 0;
}

static void warn_uncounted(struct rw *w, uint64_t tokens)
{
    atomic_fetch_add(&w->c[C_UNCOUNTED], tokens);
    if (atomic_exchange(&w->warned_uncounted, 1) == 0)
        w->host->log(w->self, HR_LOG_WARN,
                     "this headroomd has no stage_tokens_removed(): tokens of whole turns dropped to fit the context "
                     "window are not counted as saved, so savings totals undercount (%llu tokens this time); "
                     "upgrade headroomd to count them",
                     (unsigned long long)tokens);
}

static int is_responses(const struct hr_request *req)
{
    return HR_HAS_FIELD(req, struct hr_request, wire_format) && req->wire_format == HR_WIRE_OPENAI_RESPONSES;
}

/* A Responses request that continues a conversation OpenAI holds: what was
 * said before is not in the body, so it can be neither counted nor dropped
 * here, and what is sent now is stored into that conversation for good, so
 * it is left as sent (OpenAI's own `truncation: "auto"` drops stored items). */
static int continues_stored(const json_t *body)
{
    const json_t *prev = json_object_get(body, "previous_response_id");
    const json_t *conv = json_object_get(body, "conversation");
    return (json_is_string(prev) && json_string_length(prev)) || (conv && !json_is_null(conv));
}

static int rw_apply(void *state, struct hr_request *req)
{
    struct rw *w = state;
    json_t *body = req->body;
    /* The host counts system, tools and messages (Chat, Anthropic), or
     * instructions, tools and input (Responses); 3 tokens an item. */
    const int responses = is_responses(req);
    const char *system_key = responses ? "instructions" : "system";
    json_t *msgs = json_object_get(body, responses ? "input" : "messages");
    json_t *text_input = responses && json_is_string(msgs) ? msgs : NULL; /* "input": "words": one user turn */
    if (text_input)
        msgs = NULL;
    else if (!json_is_array(msgs))
        return HR_OK;
    long long budget = budget_for(w, req->model);
    if (budget <= 0)
        return HR_OK; /* unknown model and no default_context: nothing to fit */
    const int continued = responses && continues_stored(body);
    size_t nm = json_array_size(msgs);
    struct counter cnt = {w->host, req->model, data_tokens_for(req), NULL, 0};
    uint64_t bound = count_json(&cnt, json_object_get(body, system_key), 0) +
                     count_json(&cnt, json_object_get(body, "tools"), 0) + count_json(&cnt, msgs, 0) +
                     count_json(&cnt, text_input, 0) + (uint64_t)RW_MESSAGE_TOKENS * nm;
    if (bound <= (uint64_t)budget)
        return HR_OK;

    struct work k = {0};
    int rc = HR_ENOMEM;
    k.msg_tok = calloc(nm ? nm : 1, sizeof *k.msg_tok);
    k.sorted = calloc(req->n_units ? req->n_units : 1, sizeof *k.sorted);
    k.cand = calloc(req->n_units ? req->n_units : 1, sizeof *k.cand);
    k.drop_msg = calloc(nm ? nm : 1, 1);
    if (!k.msg_tok || !k.sorted || !k.cand || !k.drop_msg)
        goto out;
    for (size_t i = 0; i < req->n_units; i++)
        k.sorted[i] = &req->units[i];
    qsort(k.sorted, req->n_units, sizeof *k.sorted, cmp_unit_text);
    cnt.units = k.sorted;
    cnt.n_units = req->n_units;
    uint64_t total = count_json(&cnt, json_object_get(body, system_key), 1) +
                     count_json(&cnt, json_object_get(body, "tools"), 1) + count_json(&cnt, text_input, 1);
    for (size_t i = 0; i < nm; i++) {
        k.msg_tok[i] = count_json(&cnt, json_array_get(msgs, i), 1) + RW_MESSAGE_TOKENS;
        total += k.msg_tok[i];
    }
    if (total <= (uint64_t)budget) {
        rc = HR_OK;
        goto out;
    }
    const uint64_t before = total;
    atomic_fetch_add(&w->c[C_OVER], 1);
    if (continued) {
        atomic_fetch_add(&w->c[C_STILL_OVER], 1);
        w->host->stage_tag(req, "rolling_window:outputs=0,turns=0,messages=0,continued,over_budget");
        w->host->log(w->self, HR_LOG_WARN,
                     "request over its context budget (%llu > %lld tokens, model %s) in the items it sends alone; it "
                     "continues a stored conversation (previous_response_id or conversation), whose earlier items "
                     "rolling_window can neither count nor drop, so it is sent as it is: the provider will likely "
                     "refuse it; send \"truncation\": \"auto\" to let OpenAI drop the oldest stored items, start a "
                     "new conversation or raise max_tokens",
                     (unsigned long long)total, budget, *req->model ? req->model : "(none)");
        rc = HR_OK;
        goto out;
    }

    if (hr_rw_turns_build(msgs, w->keep_first_user, &k.turns))
        goto out;
    size_t nt = k.turns.n_turns;
    size_t keep_from = nt > RW_KEEP_TURNS ? nt - RW_KEEP_TURNS : 0; /* turns >= keep_from stay whole */
    k.turn_tok = calloc(nt ? nt : 1, sizeof *k.turn_tok);
    k.turn_gain = calloc(nt ? nt : 1, sizeof *k.turn_gain);
    if (!k.turn_tok || !k.turn_gain)
        goto out;
    for (size_t i = 0; i < nm; i++)
        if (!k.turns.keep[i])
            k.turn_tok[k.turns.turn_of[i]] += k.msg_tok[i];

    /* Tool outputs that may be dropped, oldest first, with what each saves. */
    size_t ph_tokens = w->host->count_tokens(req->model, w->placeholder, w->placeholder_len);
    size_t nc = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        if ((u->flags & HR_UNIT_PROTECTED) || u->message_index >= nm || k.turns.keep[u->message_index] ||
            (size_t)k.turns.turn_of[u->message_index] >= keep_from || u->tokens <= ph_tokens)
            continue;
        k.cand[nc++] = (struct cand){i, u->tokens - ph_tokens};
        k.turn_gain[k.turns.turn_of[u->message_index]] += u->tokens - ph_tokens;
    }
    qsort(k.cand, nc, sizeof *k.cand, cmp_cand); /* units are in message order already; be sure */

    /* The last resort: tool outputs inside the last two turns, oldest first,
     * but never the results the model is about to read. An agent's run on
     * one prompt (Claude Code working through a task) is one turn, whose
     * outputs could not go otherwise. Kept after k.cand[nc - 1]. */
    const size_t newest = newest_results(msgs, nm);
    size_t nr = 0;
    uint64_t recent_gain = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        if ((u->flags & HR_UNIT_PROTECTED) || u->message_index >= newest || k.turns.keep[u->message_index] ||
            (size_t)k.turns.turn_of[u->message_index] < keep_from || u->tokens <= ph_tokens)
            continue;
        k.cand[nc + nr++] = (struct cand){i, u->tokens - ph_tokens};
        recent_gain += u->tokens - ph_tokens;
    }
    qsort(k.cand + nc, nr, sizeof *k.cand, cmp_cand);

    /* Fewest oldest turns to drop so that dropping the remaining tool outputs fits. */
    uint64_t gain_all = 0;
    for (size_t t = 0; t < nt; t++)
        gain_all += k.turn_gain[t];
    uint64_t t_total = total, t_gain = gain_all;
    size_t first_kept = plan_turns(&k, w->drop_turns, keep_from, (uint64_t)budget, &t_total, &t_gain);

    /* The first user message (the task) goes last: only when the request
     * fits without it and not with it. Sent over the window, the provider
     * refuses it and every later request of the conversation; kept when
     * dropping it would not make the request fit anyway. Without it, the
     * turns are planned again with it as any message of its turn, so no more
     * turns go than that needs. */
    const size_t anchor = k.turns.anchor;
    int anchor_dropped = 0;
    if (anchor < nm && outputs_short(t_total, t_gain + recent_gain, (uint64_t)budget)) {
        size_t at = (size_t)k.turns.turn_of[anchor];
        uint64_t b_total = total, b_gain = gain_all;
        k.turn_tok[at] += k.msg_tok[anchor];
        size_t b_first = plan_turns(&k, w->drop_turns, keep_from, (uint64_t)budget, &b_total, &b_gain);
        if (at < b_first && !outputs_short(b_total, b_gain + recent_gain, (uint64_t)budget)) {
            anchor_dropped = 1;
            first_kept = b_first;
            t_total = b_total;
            t_gain = b_gain;
        } else {
            k.turn_tok[at] -= k.msg_tok[anchor];
        }
    }

    /* Drop tool outputs, oldest first, in the turns that stay; then, when
     * that is not enough, in the last two turns. */
    size_t outputs = 0, recent_outputs = 0;
    uint64_t output_tokens = 0;
    total = t_total;
    for (size_t j = 0; j < nc + nr && total > (uint64_t)budget; j++) {
        struct hr_unit *u = &req->units[k.cand[j].unit];
        if ((size_t)k.turns.turn_of[u->message_index] < first_kept)
            continue;
        size_t old = u->tokens;
        if (w->host->unit_replace(req, k.cand[j].unit, w->placeholder, w->placeholder_len) != HR_OK)
            continue;
        total -= old - u->tokens;
        output_tokens += old - u->tokens;
        outputs++;
        recent_outputs += j >= nc;
    }

    /* Drop whole turns. Units in those messages are emptied and protected first,
     * so later stages never read the freed text. */
    size_t dropped_msgs = 0;
    uint64_t turn_tokens = 0;
    for (size_t i = 0; i < nm; i++)
        if ((!k.turns.keep[i] && (size_t)k.turns.turn_of[i] < first_kept) || (anchor_dropped && i == anchor)) {
            k.drop_msg[i] = 1;
            dropped_msgs++;
            turn_tokens += k.msg_tok[i];
        }
    if (dropped_msgs) {
        for (size_t i = 0; i < req->n_units; i++) {
            struct hr_unit *u = &req->units[i];
            if (u->message_index < nm && k.drop_msg[u->message_index]) {
                u->flags |= HR_UNIT_PROTECTED;
                u->text = "";
                u->len = 0;
                u->tokens = 0;
            }
        }
        for (size_t i = nm; i-- > 0;)
            if (k.drop_msg[i])
                json_array_remove(msgs, i);
        req->body_edited = 1;
        if (w->can_report_removed)
            w->host->stage_tokens_removed(req, turn_tokens);
        else
            warn_uncounted(w, turn_tokens);
        atomic_fetch_add(&w->c[C_TURNS], first_kept);
        atomic_fetch_add(&w->c[C_MESSAGES], dropped_msgs);
        atomic_fetch_add(&w->c[C_TURN_TOKENS], turn_tokens);
    }
    atomic_fetch_add(&w->c[C_OUTPUTS], outputs);
    atomic_fetch_add(&w->c[C_RECENT_OUTPUTS], recent_outputs);
    atomic_fetch_add(&w->c[C_FIRST_USER], anchor_dropped);
    atomic_fetch_add(&w->c[C_OUTPUT_TOKENS], output_tokens);

    int still_over = total > (uint64_t)budget;
    char tag[192];
    snprintf(tag, sizeof tag, "rolling_window:outputs=%zu,turns=%zu,messages=%zu%s%s", outputs, first_kept,
             dropped_msgs, anchor_dropped ? ",first_user_dropped" : "", still_over ? ",over_budget" : "");
    w->host->stage_tag(req, tag);
    const char *unit = responses ? "items" : "messages";
    char recent[64] = "";
    if (recent_outputs)
        snprintf(recent, sizeof recent, " (%zu of them in the last two turns)", recent_outputs);
    w->host->log(w->self, HR_LOG_INFO,
                 "request over its context budget (%llu > %lld tokens, model %s): dropped %zu older tool outputs%s "
                 "and %zu turns (%zu %s), now %llu tokens",
                 (unsigned long long)before, budget, *req->model ? req->model : "(none)", outputs, recent,
                 first_kept, dropped_msgs, unit, (unsigned long long)total);
    if (anchor_dropped)
        w->host->log(w->self, HR_LOG_WARN,
                     "dropped the first user message (%llu tokens, %s %zu), which holds the user's task: the request "
                     "(model %s) fits its context budget of %lld tokens only without it, so the model no longer sees "
                     "what it was asked to do; start a new conversation with the task restated and less pasted "
                     "with it, or raise max_tokens in headroom.conf's rolling_window block if the model's window allows",
                     (unsigned long long)k.msg_tok[anchor], responses ? "input item" : "message", anchor,
                     *req->model ? req->model : "(none)", budget);
    if (still_over) {
        atomic_fetch_add(&w->c[C_STILL_OVER], 1);
        w->host->log(w->self, HR_LOG_WARN,
                     "request still over its context budget (%llu > %lld tokens, model %s) after dropping what may be "
                     "dropped (the system prompt, %sthe last two turns but their older tool outputs, the results "
                     "the model is about to read and protected tool outputs stay): the provider will likely refuse "
                     "it; start a new conversation, or raise max_tokens in headroom.conf's "
                     "rolling_window block if the model's window allows",
                     (unsigned long long)total, budget, *req->model ? req->model : "(none)",
                     anchor < nm && !anchor_dropped ? "the first user message, " : "");
    }
    rc = HR_OK;
out:
    work_free(&k);
    return rc;
}

/* ------------------------------------------------------------ plugin */

static json_t *rw_stats(void *state)
{
    struct rw *w = state;
#define C(i) ((json_int_t)atomic_load(&w->c[i]))
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests_over_budget", C(C_OVER),
                     "outputs_dropped", C(C_OUTPUTS), "recent_outputs_dropped", C(C_RECENT_OUTPUTS),
                     "output_tokens_removed", C(C_OUTPUT_TOKENS), "turns_dropped", C(C_TURNS), "messages_dropped",
                     C(C_MESSAGES), "turn_tokens_removed", C(C_TURN_TOKENS), "first_user_dropped", C(C_FIRST_USER),
                     "still_over_budget", C(C_STILL_OVER), "tokens_uncounted", C(C_UNCOUNTED));
#undef C
}

static void rw_fini(void *state)
{
    struct rw *w = state;
    free(w->placeholder);
    free(w);
}

static int rw_init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **state)
{
    long long max_tokens = host->conf_int(conf, "max_tokens");
    long long reserve = host->conf_int(conf, "reserve_output");
    long long def = host->conf_int(conf, "default_context");
    const char *ph = host->conf_string(conf, "placeholder");
    if (max_tokens < 0 || max_tokens > 100000000) {
        host->log(self, HR_LOG_ERROR, "bad config: max_tokens must be 0 (from the model) or 1..100000000 (got %lld)",
                  max_tokens);
        return HR_EINVAL;
    }
    if (reserve < 0 || reserve > 10000000) {
        host->log(self, HR_LOG_ERROR, "bad config: reserve_output must be 0..10000000 (got %lld)", reserve);
        return HR_EINVAL;
    }
    if (def < 0 || def > 100000000) {
        host->log(self, HR_LOG_ERROR, "bad config: default_context must be 0 (off) or 1..100000000 (got %lld)", def);
        return HR_EINVAL;
    }
    json_t *check = ph ? json_string(ph) : NULL;
    size_t ph_len = ph ? strlen(ph) : 0;
    json_decref(check);
    if (!check || ph_len == 0 || ph_len > 1024) {
        host->log(self, HR_LOG_ERROR,
                  "bad config: placeholder must be 1..1024 bytes of UTF-8 text (got %zu bytes%s)", ph_len,
                  ph && !check ? ", not UTF-8" : "");
        return HR_EINVAL;
    }
    struct rw *w = calloc(1, sizeof *w);
    if (!w || !(w->placeholder = strdup(ph))) {
        free(w);
        return HR_ENOMEM;
    }
    w->host = host;
    w->self = self;
    w->max_tokens = max_tokens;
    w->reserve_output = reserve;
    w->default_context = def;
    w->drop_turns = host->conf_bool(conf, "drop_turns");
    w->keep_first_user = host->conf_bool(conf, "keep_first_user");
    w->placeholder_len = ph_len;
    w->can_report_removed = HR_HAS_FIELD(host, struct hr_host, stage_tokens_removed) && host->stage_tokens_removed;
    atomic_init(&w->warned_uncounted, 0);
    for (int i = 0; i < C__N; i++)
        atomic_init(&w->c[i], 0);
    int rc = host->register_stats(self, "rolling_window", rw_stats, w);
    if (rc != HR_OK) {
        rw_fini(w);
        return rc;
    }
    *state = w;
    return HR_OK;
}

/* POST /stats/reset: every counter of /stats.rolling_window. */
static void rw_reset(void *state)
{
    struct rw *w = state;
    for (size_t i = 0; i < C__N; i++)
        atomic_store(&w->c[i], 0);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "rolling_window",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps a request inside the model's context window: drops the oldest tool outputs, then the oldest turns",
    .conf_keys = rw_keys,
    .init = rw_init,
    .fini = rw_fini,
    .apply = rw_apply,
    .content_types = 0,
    .reset = rw_reset,
};
