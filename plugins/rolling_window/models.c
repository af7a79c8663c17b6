/* models.c — the built-in model → context window table `rolling_window` falls back
 * on when `max_tokens` is not set. Figures are the providers' published limits. */
#include <string.h>
#include <strings.h>
#include "window.h"

struct model_ctx {
    const char *prefix; /* matched case-insensitively at the start of the name */
    long tokens;
};

/* More specific names first: the first match wins. A prefix matches when the
 * name ends there or continues with a separator, so "o1" does not match
 * "o100x" and "gpt-4" does not match "gpt-4o"; a prefix ending in '-' matches
 * any continuation. */
static const struct model_ctx table[] = {
    {"gpt-4.1", 1047576},        /* gpt-4.1, -mini, -nano */
    {"gpt-4.5", 128000},
    {"gpt-4o", 128000},          /* gpt-4o, gpt-4o-mini, dated snapshots */
    {"chatgpt-4o", 128000},
    {"gpt-4-turbo", 128000},
    {"gpt-4-1106", 128000},
    {"gpt-4-0125", 128000},
    {"gpt-4-vision", 128000},
    {"gpt-4-32k", 32768},
    {"gpt-4", 8192},
    {"gpt-3.5-turbo-instruct", 4096},
    {"gpt-3.5-turbo", 16385},
    {"gpt-5", 400000},           /* gpt-5, -mini, -nano */
    {"gpt-oss", 131072},
    {"o1-mini", 128000},
    {"o1-preview", 128000},
    {"o1", 200000},
    {"o3", 200000},
    {"o4-mini", 200000},
    {"codex-", 200000},
    {"claude-2.0", 100000},
    {"claude-instant", 100000},
    {"claude-", 200000},         /* claude-2.1, 3.x, 4.x (without the 1M beta) */
};

long hr_rw_context_window(const char *model)
{
    if (!model || !*model)
        return 0;
    const char *slash = strrchr(model, '/');
    if (slash && slash[1])
        model = slash + 1;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        size_t n = strlen(table[i].prefix);
        if (strncasecmp(model, table[i].prefix, n))
            continue;
        char c = model[n];
        if (table[i].prefix[n - 1] == '-' || !c || c == '-' || c == '.' || c == '_' || c == ':' || c == '@')
            return table[i].tokens;
    }
    return 0;
}
