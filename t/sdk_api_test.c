/* t/sdk_api_test.c — TAP: libheadroom's public API (headroom.h) as a program
 * linked against libheadroom.so sees it: offline compression with the real
 * plugins, session stats, metrics and summary from a real SQLite file (made
 * with the sqlite3 tool), damaged and missing databases, history, validation,
 * attach errors, token counts. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "headroom/headroom.h"
#include "tap.h"

static char dir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Run SQL through the sqlite3 command-line tool (a real peer writing the file). */
static int sqlite_cli(const char *db, const char *sql)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' >/dev/null", db);
    FILE *p = popen(cmd, "w");
    if (!p) return -1;
    fputs(sql, p);
    return pclose(p);
}

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL; PRAGMA user_version = 1;\n"
    "CREATE TABLE requests (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, timestamp REAL NOT NULL, model TEXT NOT "
    "NULL, provider TEXT NOT NULL, wire_format TEXT NOT NULL, stack TEXT NOT NULL, path TEXT NOT NULL, status INTEGER "
    "NOT NULL, credited INTEGER NOT NULL, cached INTEGER NOT NULL, streamed INTEGER NOT NULL, failed INTEGER NOT NULL, "
    "tokens_input_before INTEGER NOT NULL, tokens_input_after INTEGER NOT NULL, tokens_saved INTEGER NOT NULL, "
    "tokens_output INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, "
    "reasoning_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, savings_usd REAL NOT NULL, priced INTEGER NOT NULL, "
    "transforms TEXT NOT NULL, latency_ms REAL NOT NULL, overhead_ms REAL NOT NULL, ttfb_ms REAL);\n"
    "CREATE INDEX requests_by_time ON requests(timestamp);\n";

static void add_row(char *sql, size_t n, int i, double ts, const char *model, int credited, int before, int after,
                    double savings)
{
    size_t k = strlen(sql);
    snprintf(sql + k, n - k,
             "INSERT INTO requests VALUES (NULL, 'req-%d', %.3f, '%s', 'openai', 'openai_chat', 'proxy', "
             "'/v1/chat/completions', 200, %d, 0, 0, 0, %d, %d, %d, 10, 0, 0, 0, 0.001, %.6f, 1, "
             "'[\"smart_crusher\"]', 12.5, 1.5, NULL);\n",
             i, ts, model, credited, before, after, before - after, savings);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/hr-sdk-test.%ld", (long)getpid());
    char cmd[1200], path[400], conf[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/ws'", dir, dir);
    if (system(cmd)) return 1;
    snprintf(path, sizeof path, "%s/ws", dir);
    setenv("HEADROOM_WORKSPACE_DIR", path, 1);
    snprintf(path, sizeof path, "%s/ws/proxy_savings.json", dir);
    setenv("HEADROOM_SAVINGS_PATH", path, 1);

    is_int(hr_api_version(), (HEADROOM_API_MAJOR << 16) | HEADROOM_API_MINOR, "hr_api_version matches the header");
    ok(hr_version() && *hr_version(), "hr_version: %s", hr_version());

    /* --- offline client with the real transforms --- */
    const char *plugins = getenv("HEADROOM_TEST_PLUGIN_DIR");
    snprintf(conf, sizeof conf, "%s/headroom.conf", dir);
    char text[1024];
    snprintf(text, sizeof text, "%s%s%stransform router {\n}\ntransform smart_crusher {\n}\n",
             plugins ? "plugin_dir " : "", plugins ? plugins : "", plugins ? "\n" : "");
    write_file(conf, text);
    hr_client *c = hr_client_open(conf);
    ok(c != NULL, "hr_client_open(config with router + smart_crusher)%s%s", c ? "" : ": ", c ? "" : hr_last_error());
    if (!c) return tap_exit();
    ok(hr_client_open(NULL) == NULL && hr_last_status() == HEADROOM_EBUSY && strstr(hr_last_error(), "already open"),
       "a second offline client is refused with EBUSY: %s", hr_last_error());

    /* A tool output of 300 JSON rows: smart_crusher keeps a few. */
    json_t *rows = json_array();
    for (int i = 0; i < 300; i++)
        json_array_append_new(rows, json_pack("{s:i,s:s,s:s}", "id", i, "level", i == 123 ? "ERROR" : "INFO", "msg",
                                              i == 123 ? "disk full on /var" : "request handled in 12 ms by worker"));
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_t *req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]},{s:s,s:s,s:s}]}", "model", "gpt-4o",
                            "messages", "role", "user", "content", "why did it fail?", "role", "assistant", "content",
                            "tool_calls", "id", "call_1", "type", "function", "function", "name", "logs", "arguments",
                            "{}", "role", "tool", "tool_call_id", "call_1", "content", rows_text);
    char *body = json_dumps(req, JSON_COMPACT);
    struct hr_compress_result r;
    int rc = hr_compress(c, body, strlen(body), &r);
    is_int(rc, HEADROOM_OK, "hr_compress on a chat request");
    ok(r.tokens_before > 1000 && r.tokens_after < r.tokens_before / 2, "tokens %llu -> %llu",
       (unsigned long long)r.tokens_before, (unsigned long long)r.tokens_after);
    is_int((long long)r.tokens_saved, (long long)(r.tokens_before - r.tokens_after), "tokens_saved = before - after");
    ok(r.n_tags >= 1 && strstr(r.tags[r.n_tags - 1], "smart_crusher"), "a smart_crusher tag: %s",
       r.n_tags ? r.tags[r.n_tags - 1] : "(none)");
    is_str(r.wire_format, "openai_chat", "wire format");
    json_t *out = json_loadb(r.body, r.body_len, 0, NULL);
    const char *tool = json_string_value(json_object_get(json_array_get(json_object_get(out, "messages"), 2), "content"));
    ok(out && tool && strstr(tool, "disk full") && strlen(tool) < strlen(rows_text) / 2,
       "the compressed body is JSON, keeps the error row and is shorter");
    ok(r.struct_size == sizeof r, "struct_size is set");
    json_decref(out);
    hr_compress_result_free(&r);
    ok(r.body == NULL && r.n_tags == 0, "hr_compress_result_free zeroes the result");

    /* Unchanged requests come back byte for byte. */
    static const char small[] = "{ \"model\": \"gpt-4o\",\n \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}] }";
    rc = hr_compress(c, small, sizeof small - 1, &r);
    ok(rc == 0 && r.body_len == sizeof small - 1 && !memcmp(r.body, small, r.body_len),
       "a request no stage changes comes back with the client's bytes");
    hr_compress_result_free(&r);

    rc = hr_compress(c, "[1,2", 4, &r);
    ok(rc == HEADROOM_EINVAL && strstr(hr_last_error(), "JSON object"), "malformed body: EINVAL, %s", hr_last_error());
    rc = hr_compress(c, "{\"model\":\"gpt-4o\"}", 18, &r);
    ok(rc == HEADROOM_EINVAL && strstr(hr_last_error(), "messages"), "no messages: EINVAL, %s", hr_last_error());

    char *stats = hr_session_stats(c);
    json_t *st = json_loads(stats ? stats : "", 0, NULL);
    json_t *sess = json_object_get(st, "session");
    is_int(json_integer_value(json_object_get(sess, "requests_total")), 2, "session: 2 requests compressed");
    ok(json_integer_value(json_object_get(sess, "tokens_saved_total")) > 1000, "session: tokens saved counted");
    ok(json_is_true(json_object_get(json_object_get(st, "transforms"), "smart_crusher_enabled")) &&
           json_is_false(json_object_get(json_object_get(st, "transforms"), "cache_aligner_enabled")),
       "transforms reflect the config");
    is_str(json_string_value(json_object_get(json_object_get(st, "config"), "mode")), "optimize", "config.mode");
    json_decref(st);
    hr_free(stats);

    /* --- metrics database (written with the sqlite3 tool) --- */
    char *m = hr_get_metrics(c, 0, 0, 10, NULL);
    ok(!m && hr_last_status() == HEADROOM_ENOTFOUND && strstr(hr_last_error(), "sink metrics_db"),
       "no database: ENOTFOUND naming the sink to enable: %s", hr_last_error());
    char db[400], sql[8192] = "";
    snprintf(db, sizeof db, "%s/ws/metrics.db", dir);
    snprintf(sql, sizeof sql, "%s", SCHEMA);
    add_row(sql, sizeof sql, 1, 1700000000.0, "gpt-4o", 1, 1000, 300, 0.00175);
    add_row(sql, sizeof sql, 2, 1700000100.0, "gpt-4o-mini", 1, 2000, 1000, 0.00015);
    add_row(sql, sizeof sql, 3, 1700000200.0, "gpt-4o", 0, 500, 500, 0.0);
    add_row(sql, sizeof sql, 4, 1700000300.0, "gpt-4o", 1, 400, 400, 0.0);
    is_int(sqlite_cli(db, sql), 0, "sqlite3 wrote %s", db);
    m = hr_get_metrics(c, 0, 0, 10, NULL);
    json_t *arr = json_loads(m ? m : "", 0, NULL);
    is_int((long long)json_array_size(arr), 4, "4 rows");
    is_str(json_string_value(json_object_get(json_array_get(arr, 0), "request_id")), "req-4", "newest first");
    json_t *row = json_array_get(arr, 3);
    ok(json_integer_value(json_object_get(row, "tokens_input_before")) == 1000 &&
           json_integer_value(json_object_get(row, "tokens_input_after")) == 300 &&
           json_is_true(json_object_get(row, "credited")) && json_is_null(json_object_get(row, "ttfb_ms")) &&
           json_is_array(json_object_get(row, "transforms")),
       "row fields: tokens, booleans, NULL ttfb, transforms as an array");
    is_str(json_string_value(json_object_get(row, "time")), "2023-11-14T22:13:20Z", "ISO time");
    json_decref(arr);
    hr_free(m);
    m = hr_get_metrics(c, 1700000050, 1700000250, 0, NULL);
    arr = json_loads(m ? m : "", 0, NULL);
    ok(json_array_size(arr) == 2 && !strcmp(json_string_value(json_object_get(json_array_get(arr, 1), "request_id")),
                                           "req-2"), "start <= t < end selects rows 2 and 3");
    json_decref(arr);
    hr_free(m);
    m = hr_get_metrics(c, 0, 0, 1, "gpt-4o-mini");
    arr = json_loads(m ? m : "", 0, NULL);
    ok(json_array_size(arr) == 1 &&
           !strcmp(json_string_value(json_object_get(json_array_get(arr, 0), "model")), "gpt-4o-mini"),
       "model filter and limit");
    json_decref(arr);
    hr_free(m);

    char *s = hr_get_summary(c, 0, 0);
    json_t *sum = json_loads(s ? s : "", 0, NULL);
    is_int(json_integer_value(json_object_get(sum, "total_requests")), 4, "summary: total_requests counts every row");
    is_int(json_integer_value(json_object_get(sum, "total_tokens_before")), 3400, "summary: before over credited rows");
    is_int(json_integer_value(json_object_get(sum, "total_tokens_after")), 1700, "summary: after over credited rows");
    is_int(json_integer_value(json_object_get(sum, "total_tokens_saved")), 1700, "summary: tokens saved");
    /* mean of 0.3, 0.5, 1.0 */
    ok(json_number_value(json_object_get(sum, "avg_compression_ratio")) == 0.6, "summary: avg ratio 0.6 (got %g)",
       json_number_value(json_object_get(sum, "avg_compression_ratio")));
    ok(json_number_value(json_object_get(sum, "total_cost_saved_usd")) == 0.0019, "summary: cost saved 0.0019 (got %g)",
       json_number_value(json_object_get(sum, "total_cost_saved_usd")));
    json_decref(sum);
    hr_free(s);

    is_int(sqlite_cli(db, "PRAGMA user_version = 2;"), 0, "sqlite3 bumps the schema version");
    s = hr_get_summary(c, 0, 0);
    ok(!s && strstr(hr_last_error(), "newer"), "a newer schema is refused: %s", hr_last_error());
    snprintf(cmd, sizeof cmd, "rm -f '%s'*; printf 'not a database at all, just text padding it out to a page...' > '%s'",
             db, db);
    if (system(cmd)) return 1;
    s = hr_get_summary(c, 0, 0);
    ok(!s && hr_last_status() == HEADROOM_EIO && strstr(hr_last_error(), db), "a damaged file: EIO naming it: %s",
       hr_last_error());

    /* --- savings history, offline --- */
    char *h = hr_get_history(c, "history_mode=none");
    json_t *hist = json_loads(h ? h : "", 0, NULL);
    ok(json_integer_value(json_object_get(hist, "schema_version")) == 2 && json_object_get(hist, "series"),
       "history before any request: the /stats-history document%s%s", h ? "" : ": ", h ? "" : hr_last_error());
    json_decref(hist);
    hr_free(h);
    h = hr_get_history(c, "series=yearly&format=csv");
    ok(!h && hr_last_status() == HEADROOM_EINVAL && strstr(hr_last_error(), "series"),
       "a bad history parameter: EINVAL naming it: %s", hr_last_error());
    hr_client_close(c);

    /* --- validation --- */
    write_file(conf, "port 8787\nworkers lots\n");
    char *v = hr_validate_setup(conf);
    json_t *val = json_loads(v ? v : "", 0, NULL);
    const char *issue = json_string_value(json_array_get(json_object_get(val, "issues"), 0));
    ok(json_is_false(json_object_get(val, "valid")) && issue && strstr(issue, "headroom.conf:2:") &&
           strstr(issue, "Fix:"), "validate: a config error with file:line and a fix: %s", issue ? issue : "(none)");
    json_decref(val);
    hr_free(v);
    v = hr_validate_setup(NULL);
    val = json_loads(v ? v : "", 0, NULL);
    ok(json_is_array(json_object_get(val, "checks")) && json_array_size(json_object_get(val, "checks")) >= 6,
       "validate: every check is listed");
    json_decref(val);
    hr_free(v);

    /* --- where a daemon of a config listens (API 1.1) --- */
    write_file(conf, "host 0.0.0.0\nport 9123\n");
    v = hr_daemon_setup(conf);
    val = json_loads(v ? v : "", 0, NULL);
    is_str(json_string_value(json_object_get(val, "url")), "http://127.0.0.1:9123",
           "daemon_setup: the config's port, a wildcard host reached on loopback");
    snprintf(path, sizeof path, "%s/ws", dir);
    is_str(json_string_value(json_object_get(val, "state_root")), path, "daemon_setup: the state root headroomd uses");
    is_int(json_integer_value(json_object_get(val, "shutdown_timeout")), 30,
           "daemon_setup: the default shutdown_timeout (what headroom wrap waits for, plus 15 s)");
    json_decref(val);
    hr_free(v);
    write_file(conf, "port 9123\nshutdown_timeout 4\n");
    v = hr_daemon_setup(conf);
    val = json_loads(v ? v : "", 0, NULL);
    is_int(json_integer_value(json_object_get(val, "shutdown_timeout")), 4, "daemon_setup: the config's shutdown_timeout");
    json_decref(val);
    hr_free(v);
    write_file(conf, "host 0.0.0.0\nport 9123\n");
    setenv("HEADROOM_PORT", "9124", 1);
    v = hr_daemon_setup(conf);
    val = json_loads(v ? v : "", 0, NULL);
    is_int(json_integer_value(json_object_get(val, "port")), 9124, "daemon_setup: HEADROOM_PORT wins, as in headroomd");
    json_decref(val);
    hr_free(v);
    unsetenv("HEADROOM_PORT");
    write_file(conf, "port 9123\nport_typo 1\n");
    v = hr_daemon_setup(conf);
    ok(!v && hr_last_status() == HEADROOM_ECONFIG && strstr(hr_last_error(), "headroom.conf:2:"),
       "daemon_setup: a config error names file:line: %s", hr_last_error());
    hr_free(v);

    /* --- attached clients --- */
    ok(hr_client_attach("ftp:/x", NULL) == NULL && hr_last_status() == HEADROOM_EINVAL, "attach: a bad URL is refused: %s",
       hr_last_error());
    c = hr_client_attach("http://127.0.0.1:9", NULL);
    ok(c != NULL, "attach does not contact the daemon");
    stats = hr_session_stats(c);
    ok(!stats && hr_last_status() == HEADROOM_ENET && strstr(hr_last_error(), "cannot reach headroomd"),
       "a daemon that is not there: ENET with a hint: %s", hr_last_error());
    ok(hr_last_http_status() == 0, "a daemon that is not there: hr_last_http_status() is 0 (no answer)");
    hr_client_close(c);
    c = hr_client_open(NULL);
    ok(c != NULL, "after close, an offline client can be opened again");
    hr_client_close(c);

    /* --- token counts --- */
    size_t n = 0;
    ok(hr_token_count("gpt-4o", NULL, "hello world", 11, &n) == 0 && n == 2, "gpt-4o: 'hello world' is 2 tokens");
    ok(hr_token_count(NULL, "nope", "x", 1, &n) == HEADROOM_EINVAL && strstr(hr_last_error(), "o200k_base"),
       "an unknown encoding is EINVAL");

    free(body);
    free(rows_text);
    json_decref(req);
    json_decref(rows);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return tap_exit();
}
