/* sdk_example.c — the seed's SDK examples in C through headroom.h:
 * compress a request offline, session stats, historical metrics, summary,
 * validation. Build: cc sdk_example.c $(pkg-config --cflags --libs headroom)
 * Run:   ./sdk_example [headroom.conf [request.json]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <headroom/headroom.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : NULL;
    printf("libheadroom %s (API %u.%u)\n", hr_version(), hr_api_version() >> 16, hr_api_version() & 0xffff);

    /* Validation */
    char *check = hr_validate_setup(config);
    printf("validate_setup: %s\n", check);
    hr_free(check);

    hr_client *client = hr_client_open(config);
    if (!client) {
        fprintf(stderr, "cannot open a client: %s\n", hr_last_error());
        return 1;
    }

    /* Compress one request, offline, exactly as headroomd would. */
    static const char fallback[] = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
    size_t len = sizeof fallback - 1;
    char *body = argc > 2 ? read_file(argv[2], &len) : NULL;
    struct hr_compress_result r;
    if (hr_compress(client, body ? body : fallback, body ? len : sizeof fallback - 1, &r) == HEADROOM_OK) {
        printf("compress: %llu -> %llu tokens (saved %llu)\n", (unsigned long long)r.tokens_before,
               (unsigned long long)r.tokens_after, (unsigned long long)r.tokens_saved);
        for (size_t i = 0; i < r.n_tags; i++) printf("  stage: %s\n", r.tags[i]);
        hr_compress_result_free(&r);
    } else {
        fprintf(stderr, "compress failed: %s\n", hr_last_error());
    }
    free(body);

    /* Session stats (no database query) */
    char *stats = hr_session_stats(client);
    printf("session_stats: %s\n", stats);
    hr_free(stats);

    /* Historical metrics: the last hour, at most 100 rows, newest first */
    char *metrics = hr_get_metrics(client, (double)time(NULL) - 3600, 0, 100, NULL);
    if (metrics) printf("metrics: %s\n", metrics);
    else printf("metrics: unavailable: %s\n", hr_last_error());
    hr_free(metrics);

    /* Summary statistics */
    char *summary = hr_get_summary(client, 0, 0);
    if (summary) printf("summary: %s\n", summary);
    else printf("summary: unavailable: %s\n", hr_last_error());
    hr_free(summary);

    hr_client_close(client);
    return 0;
}
