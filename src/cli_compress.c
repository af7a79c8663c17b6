/* cli_compress.c — `headroom compress`: one request body through the
 * compression pipeline (hr_compress), offline by default. */
#include "cli.h"
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sent/input rounded to 4 decimals, as POST /v1/compress and /stats'
 * compression_ratio_avg give it: the same request reads the same figure. */
static double ratio4(const struct hr_compress_result *r)
{
    if (!r->tokens_before) return 1.0;
    double x = (double)r->tokens_after / (double)r->tokens_before;
    return (double)(long long)(x * 10000.0 + 0.5) / 10000.0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: headroom compress [-c FILE] [--url URL] [--json] [FILE|-]\n"
                 "\n"
                 "Compresses one request body (OpenAI Chat, Responses or Anthropic Messages JSON, from FILE\n"
                 "or stdin) with the transforms of -c FILE, in-process, and prints the body headroomd would\n"
                 "forward. A summary line (tokens before, after, saved, each stage's tag) goes to stderr.\n"
                 "\n"
                 "  -c, --config FILE  headroom.conf whose transforms run (default $HEADROOM_CONFIG; without\n"
                 "                     one no transform runs and the body comes back unchanged)\n"
                 "  --url URL          ask this running headroomd (POST /v1/compress) instead (with its\n"
                 "                     api_token, if it has one: $HEADROOM_API_TOKEN, else that of -c FILE)\n"
                 "  --json             {body, tokens_before, tokens_after, tokens_saved, compression_ratio,\n"
                 "                     tags, wire_format}\n");
}

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int hr_cli_compress(int argc, char **argv)
{
    struct cli_common o = {.cmd = "compress", .config = getenv("HEADROOM_CONFIG")};
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i);
        if (r < 0) return HR_EXIT_USAGE;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HR_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "headroom compress: unknown option '%s'; see 'headroom compress --help'\n", argv[i]);
            return HR_EXIT_USAGE;
        }
        if (file) {
            fprintf(stderr, "headroom compress: one FILE at a time (got '%s' and '%s')\n", file, argv[i]);
            return HR_EXIT_USAGE;
        }
        file = argv[i];
    }
    FILE *f = cli_open_input("compress", file);
    if (!f) return HR_EXIT_RUNTIME;
    size_t len = 0;
    char *body = slurp(f, &len);
    if (f != stdin) fclose(f);
    if (!body) {
        fprintf(stderr, "headroom compress: cannot read '%s'\n", file ? file : "-");
        return HR_EXIT_RUNTIME;
    }
    hr_client *c = o.url ? hr_client_attach(o.url, o.config) : hr_client_open(o.config);
    if (!c) {
        free(body);
        return cli_fail(&o, hr_last_status());
    }
    const char *token = getenv("HEADROOM_API_TOKEN"); /* the daemon's api_token; else the config's goes */
    if (o.url && token && *token) hr_client_set_token(c, token);
    struct hr_compress_result r;
    int rc = hr_compress(c, body, len, &r);
    free(body);
    if (rc) {
        int code = o.url ? cli_fail_daemon(&o, rc, "HEADROOM_API_TOKEN", "api_token") : cli_fail(&o, rc);
        hr_client_close(c);
        return code;
    }
    if (o.json) {
        json_t *tags = json_array();
        for (size_t i = 0; i < r.n_tags; i++) json_array_append_new(tags, json_string(r.tags[i]));
        json_t *parsed = json_loadb(r.body, r.body_len, 0, NULL);
        json_t *out = json_pack("{s:o,s:I,s:I,s:I,s:f,s:o,s:s}", "body", parsed ? parsed : json_null(),
                                "tokens_before", (json_int_t)r.tokens_before, "tokens_after", (json_int_t)r.tokens_after,
                                "tokens_saved", (json_int_t)r.tokens_saved, "compression_ratio", ratio4(&r), "tags", tags,
                                "wire_format", r.wire_format);
        char *s = json_dumps(out, JSON_INDENT(2));
        puts(s ? s : "null");
        free(s);
        json_decref(out);
    } else {
        fwrite(r.body, 1, r.body_len, stdout); /* exactly the bytes; a newline only for a terminal */
        if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
        fprintf(stderr, "headroom compress: %llu -> %llu tokens (saved %llu, %.1f%%)",
                (unsigned long long)r.tokens_before, (unsigned long long)r.tokens_after,
                (unsigned long long)r.tokens_saved,
                r.tokens_before ? 100.0 * (double)r.tokens_saved / (double)r.tokens_before : 0.0);
        /* Every stage's tag, in pipeline order: the first is the router's,
         * which says what it saw, never what any stage saved. */
        for (size_t i = 0; i < r.n_tags; i++) fprintf(stderr, "%s%s", i ? ", " : ": ", r.tags[i]);
        fputc('\n', stderr);
    }
    hr_compress_result_free(&r);
    hr_client_close(c);
    if (fflush(stdout)) {
        fprintf(stderr, "headroom compress: cannot write the result: %s\n", strerror(errno));
        return HR_EXIT_RUNTIME;
    }
    return HR_EXIT_OK;
}
