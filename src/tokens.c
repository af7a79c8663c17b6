/* src/tokens.c — token counter entry points: one-time table loading (pthread_once), the model
 * to encoding map, and the estimator used for Claude, unknown models and missing tables. */
#include "tokens.h"
#include "tokenizer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef HR_PKGDATADIR
#define HR_PKGDATADIR ""
#endif
#ifndef HR_SRCDATADIR
#define HR_SRCDATADIR ""
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct hr_bpe *tab_o200k, *tab_cl100k;
static int init_rc;
static char init_err[512];

static const char *const files[2] = {"o200k_base.tiktoken", "cl100k_base.tiktoken"};

static int file_exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

static void load_once(void)
{
    const char *env = getenv("HEADROOM_DATA_DIR");
    const char *dir = NULL;
    if (env && *env) {
        dir = env;  /* an explicit override is never second-guessed */
    } else {
        const char *cands[2] = {HR_PKGDATADIR, HR_SRCDATADIR};
        for (int i = 0; i < 2 && !dir; i++)
            if (*cands[i] && file_exists(cands[i], files[0]) && file_exists(cands[i], files[1]))
                dir = cands[i];
    }
    if (!dir) {
        snprintf(init_err, sizeof init_err,
                 "token tables %s and %s not found in %s%s%s; set HEADROOM_DATA_DIR to the "
                 "directory holding them (the source tree's data/ or the installed pkgdatadir)",
                 files[0], files[1], *HR_PKGDATADIR ? HR_PKGDATADIR : "(no pkgdatadir)",
                 *HR_SRCDATADIR ? " or " : "", HR_SRCDATADIR);
        init_rc = -ENOENT;
        return;
    }
    struct hr_bpe **dst[2] = {&tab_o200k, &tab_cl100k};
    for (int i = 0; i < 2; i++) {
        char path[4096], e[400];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        int rc = hr_bpe_load(path, dst[i], e, sizeof e);
        if (rc < 0) {
            snprintf(init_err, sizeof init_err, "%s%s", e,
                     env && *env ? " (from HEADROOM_DATA_DIR; point it at the directory "
                                   "holding the .tiktoken files)"
                                 : "; set HEADROOM_DATA_DIR to the directory holding the .tiktoken files");
            init_rc = rc;
            return;
        }
    }
}

int hr_tokens_init(char *err, size_t errlen)
{
    pthread_once(&once, load_once);
    if (init_rc < 0 && err && errlen)
        snprintf(err, errlen, "%s", init_err);
    return init_rc;
}

static int has_prefix(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

enum hr_encoding hr_encoding_for_model(const char *model)
{
    if (!model || !*model)
        return HR_ENC_ESTIMATE;
    /* "openai/gpt-4o" (routers, LiteLLM style): judge the part after the last '/'. */
    const char *slash = strrchr(model, '/');
    if (slash && slash[1])
        model = slash + 1;
    /* A fine-tuned model, "ft:gpt-4o-mini-2024-07-18:org::id": its base
     * model's encoding, as tiktoken's encoding_for_model gives. */
    if (has_prefix(model, "ft:") && model[3])
        model += 3;
    static const char *const o200k[] = {"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o",
                                        "o1", "o3", "o4", "gpt-oss", "codex-"};
    static const char *const cl100k[] = {"gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3",
                                         "text-embedding-ada-002", "davinci-002", "babbage-002"};
    for (size_t i = 0; i < sizeof o200k / sizeof *o200k; i++)
        if (has_prefix(model, o200k[i])) {
            /* "o1"... must not swallow names like "o100-foo": next char ends the family. */
            size_t n = strlen(o200k[i]);
            if (model[0] == 'o' || model[0] == 'O') {
                char c = model[n];
                if (c && c != '-' && c != '.' && c != '_' && c != ':' && c != '@')
                    continue;
            }
            return HR_ENC_O200K_BASE;
        }
    for (size_t i = 0; i < sizeof cl100k / sizeof *cl100k; i++)
        if (has_prefix(model, cl100k[i]))
            return HR_ENC_CL100K_BASE;
    return HR_ENC_ESTIMATE;
}

const char *hr_encoding_name(enum hr_encoding e)
{
    switch (e) {
    case HR_ENC_O200K_BASE: return "o200k_base";
    case HR_ENC_CL100K_BASE: return "cl100k_base";
    default: return "estimate";
    }
}

int hr_encoding_from_name(const char *name, enum hr_encoding *out)
{
    for (int e = HR_ENC_O200K_BASE; e <= HR_ENC_ESTIMATE; e++)
        if (name && strcmp(name, hr_encoding_name((enum hr_encoding)e)) == 0) {
            *out = (enum hr_encoding)e;
            return 0;
        }
    return -EINVAL;
}

int hr_tokens_exact(enum hr_encoding e)
{
    hr_tokens_init(NULL, 0);
    return (e == HR_ENC_O200K_BASE && tab_o200k) || (e == HR_ENC_CL100K_BASE && tab_cl100k);
}

/* Claude's tokenizer is not public; o200k scaled by a measured factor (doc/tokenizer.md). */
#define HR_ESTIMATE_NUM 113
#define HR_ESTIMATE_DEN 100

static const struct hr_bpe *table_for(enum hr_encoding e)
{
    hr_tokens_init(NULL, 0);
    return e == HR_ENC_CL100K_BASE ? tab_cl100k : tab_o200k; /* the estimate scales o200k */
}

size_t hr_count_tokens_part(enum hr_encoding e, const char *text, size_t len)
{
    if (!text || !len)
        return 0;
    const struct hr_bpe *b = table_for(e);
    const uint8_t *s = (const uint8_t *)text;
    if (!b)
        return hr_tokenizer_estimate(s, len);
    return hr_tokenizer_count(b, e == HR_ENC_CL100K_BASE ? HR_PRETOK_CL100K : HR_PRETOK_O200K, s, len);
}

size_t hr_count_tokens_total(enum hr_encoding e, size_t c, size_t len)
{
    if (e != HR_ENC_ESTIMATE || !table_for(e))
        return c;
    c = (c * HR_ESTIMATE_NUM + HR_ESTIMATE_DEN - 1) / HR_ESTIMATE_DEN;
    return c < len ? c : len;  /* byte-level BPE never makes more tokens than bytes */
}

static int ascii_alnum(unsigned char c)
{
    return (unsigned)(c - '0') < 10 || (unsigned)((c | 32) - 'a') < 26;
}

size_t hr_tokens_split_point(enum hr_encoding e, const char *text, size_t len, size_t from)
{
    /* A pre-token holding a letter or digit holds no punctuation after it
     * (only a contraction's '), and punctuation runs hold no letters or
     * digits: so a pre-token always ends between the two. */
    if (!table_for(e))
        return len;
    for (size_t i = from ? from : 1; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c > 0x20 && c < 0x7f && c != '\'' && !ascii_alnum(c) && ascii_alnum((unsigned char)text[i - 1]))
            return i;
    }
    return len;
}

size_t hr_count_tokens_enc(enum hr_encoding e, const char *text, size_t len)
{
    return hr_count_tokens_total(e, hr_count_tokens_part(e, text, len), len);
}

size_t hr_count_tokens(const char *model, const char *text, size_t len)
{
    return hr_count_tokens_enc(hr_encoding_for_model(model), text, len);
}
