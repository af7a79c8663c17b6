/* t/abi_layout_test.c — the plugin ABI's struct layouts, frozen: every
 * field at the offset it had in the minor version that added it (x86-64 /
 * LP64). Appending a field adds a line here; moving or resizing one fails
 * this test, because plugins built against an older minor would read the
 * wrong bytes. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "headroom/plugin.h"
#include "tap.h"

struct layout {
    const char *type, *field;
    size_t offset, expected;
    int minor; /* the minor that added it; -1 for a whole-struct size */
};

#define FIELD(T, f, off, min) {#T, #f, offsetof(struct T, f), (off), (min)}
#define SIZE(T, sz) {#T, "(sizeof)", sizeof(struct T), (sz), -1}

static const struct layout table[] = {
    FIELD(hr_conf_key, name, 0, 0),
    FIELD(hr_conf_key, type, 8, 0),
    FIELD(hr_conf_key, default_value, 16, 0),
    FIELD(hr_conf_key, help, 24, 0),
    FIELD(hr_conf_key, flags, 32, 2),
    FIELD(hr_conf_key, min, 40, 2),
    FIELD(hr_conf_key, max, 48, 2),
    SIZE(hr_conf_key, 56),
    FIELD(hr_unit, struct_size, 0, 0),
    FIELD(hr_unit, message_index, 4, 0),
    FIELD(hr_unit, text, 8, 0),
    FIELD(hr_unit, len, 16, 0),
    FIELD(hr_unit, tokens, 24, 0),
    FIELD(hr_unit, type, 32, 0),
    FIELD(hr_unit, tool_name, 40, 0),
    FIELD(hr_unit, flags, 48, 0),
    SIZE(hr_unit, 56),
    FIELD(hr_request, struct_size, 0, 0),
    FIELD(hr_request, provider, 4, 0),
    FIELD(hr_request, model, 8, 0),
    FIELD(hr_request, stack, 16, 0),
    FIELD(hr_request, session_id, 24, 0),
    FIELD(hr_request, body, 32, 0),
    FIELD(hr_request, protected_floor, 40, 0),
    FIELD(hr_request, units, 48, 0),
    FIELD(hr_request, n_units, 56, 0),
    FIELD(hr_request, query, 64, 0),
    FIELD(hr_request, body_edited, 72, 0),
    FIELD(hr_request, wire_format, 76, 2),
    FIELD(hr_request, unit_query, 80, 4),
    FIELD(hr_request, sample_bytes, 88, 9),
    FIELD(hr_request, sample_lines, 96, 9),
    SIZE(hr_request, 104),
    FIELD(hr_stage_result, struct_size, 0, 0),
    FIELD(hr_stage_result, name, 8, 0),
    FIELD(hr_stage_result, ms, 16, 0),
    FIELD(hr_stage_result, tokens_saved, 24, 0),
    FIELD(hr_stage_result, tag, 32, 0),
    FIELD(hr_stage_result, failed, 40, 0),
    SIZE(hr_stage_result, 48),
    FIELD(hr_event, struct_size, 0, 0),
    FIELD(hr_event, request_id, 8, 0),
    FIELD(hr_event, timestamp, 16, 0),
    FIELD(hr_event, provider, 24, 0),
    FIELD(hr_event, provider_name, 32, 0),
    FIELD(hr_event, model, 40, 0),
    FIELD(hr_event, stack, 48, 0),
    FIELD(hr_event, path, 56, 0),
    FIELD(hr_event, status, 64, 0),
    FIELD(hr_event, failed, 68, 0),
    FIELD(hr_event, cached, 72, 0),
    FIELD(hr_event, streamed, 76, 0),
    FIELD(hr_event, tokens_input, 80, 0),
    FIELD(hr_event, tokens_sent, 88, 0),
    FIELD(hr_event, tokens_saved, 96, 0),
    FIELD(hr_event, tokens_output, 104, 0),
    FIELD(hr_event, provider_input_tokens, 112, 0),
    FIELD(hr_event, cache_read_tokens, 120, 0),
    FIELD(hr_event, cache_write_tokens, 128, 0),
    FIELD(hr_event, cache_write_5m_tokens, 136, 0),
    FIELD(hr_event, cache_write_1h_tokens, 144, 0),
    FIELD(hr_event, cost_usd, 152, 0),
    FIELD(hr_event, savings_usd, 160, 0),
    FIELD(hr_event, priced, 168, 0),
    FIELD(hr_event, latency_ms, 176, 0),
    FIELD(hr_event, overhead_ms, 184, 0),
    FIELD(hr_event, ttfb_ms, 192, 0),
    FIELD(hr_event, n_stages, 200, 0),
    FIELD(hr_event, stages, 208, 0),
    FIELD(hr_event, error, 216, 0),
    FIELD(hr_event, pipeline_ms, 224, 0),
    FIELD(hr_event, request_body, 232, 0),
    FIELD(hr_event, request_body_len, 240, 0),
    FIELD(hr_event, wire_format, 248, 2),
    FIELD(hr_event, wire_format_name, 256, 2),
    FIELD(hr_event, reasoning_tokens, 264, 2),
    FIELD(hr_event, credited, 272, 2),
    FIELD(hr_event, traceparent, 280, 2),
    FIELD(hr_event, stream_error, 288, 10),
    SIZE(hr_event, 296),
    FIELD(hr_http_request, struct_size, 0, 0),
    FIELD(hr_http_request, method, 8, 0),
    FIELD(hr_http_request, path, 16, 0),
    FIELD(hr_http_request, query, 24, 0),
    FIELD(hr_http_request, body, 32, 0),
    FIELD(hr_http_request, body_len, 40, 0),
    FIELD(hr_http_request, from_loopback, 48, 0),
    SIZE(hr_http_request, 56),
    FIELD(hr_http_response, struct_size, 0, 0),
    FIELD(hr_http_response, status, 4, 0),
    FIELD(hr_http_response, content_type, 8, 0),
    FIELD(hr_http_response, body, 16, 0),
    FIELD(hr_http_response, body_len, 24, 0),
    FIELD(hr_http_response, free_body, 32, 0),
    FIELD(hr_http_response, extra_headers, 40, 0),
    SIZE(hr_http_response, 48),
    FIELD(hr_metric_family, struct_size, 0, 0),
    FIELD(hr_metric_family, name, 8, 0),
    FIELD(hr_metric_family, help, 16, 0),
    FIELD(hr_metric_family, type, 24, 0),
    FIELD(hr_metric_family, n_labels, 32, 0),
    FIELD(hr_metric_family, label_names, 40, 0),
    SIZE(hr_metric_family, 48),
    FIELD(hr_metric_sample, struct_size, 0, 0),
    FIELD(hr_metric_sample, label_values, 8, 0),
    FIELD(hr_metric_sample, value, 16, 0),
    FIELD(hr_metric_sample, n_buckets, 24, 0),
    FIELD(hr_metric_sample, bucket_upper, 32, 0),
    FIELD(hr_metric_sample, bucket_cumulative, 40, 0),
    FIELD(hr_metric_sample, count, 48, 0),
    FIELD(hr_metric_sample, sum, 56, 0),
    SIZE(hr_metric_sample, 64),
    FIELD(hr_host, struct_size, 0, 0),
    FIELD(hr_host, abi_major, 4, 0),
    FIELD(hr_host, abi_minor, 6, 0),
    FIELD(hr_host, log, 8, 0),
    FIELD(hr_host, log_enabled, 16, 0),
    FIELD(hr_host, conf_string, 24, 0),
    FIELD(hr_host, conf_int, 32, 0),
    FIELD(hr_host, conf_bool, 40, 0),
    FIELD(hr_host, conf_double, 48, 0),
    FIELD(hr_host, count_tokens, 56, 0),
    FIELD(hr_host, unit_replace, 64, 0),
    FIELD(hr_host, stage_tag, 72, 0),
    FIELD(hr_host, ccr_put, 80, 0),
    FIELD(hr_host, ccr_get, 88, 0),
    FIELD(hr_host, ccr_free, 96, 0),
    FIELD(hr_host, register_route, 104, 0),
    FIELD(hr_host, register_stats, 112, 0),
    FIELD(hr_host, add_timer, 120, 0),
    FIELD(hr_host, metrics_visit, 128, 0),
    FIELD(hr_host, register_metrics, 136, 0),
    FIELD(hr_host, register_stats_for, 144, 0),
    FIELD(hr_host, stage_tokens_removed, 152, 0),
    FIELD(hr_host, unit_hash, 160, 1),
    FIELD(hr_host, parallel_for, 168, 1),
    FIELD(hr_host, now, 176, 2),
    FIELD(hr_host, state_dir, 184, 2),
    FIELD(hr_host, exporter_new, 192, 2),
    FIELD(hr_host, export_post, 200, 2),
    FIELD(hr_host, export_stats, 208, 2),
    FIELD(hr_host, events_off, 216, 2),
    FIELD(hr_host, unit_tokens_at_least, 224, 3),
    FIELD(hr_host, unit_tokens, 232, 3),
    FIELD(hr_host, ccr_put_unit, 240, 6),
    SIZE(hr_host, 248),
    FIELD(hr_export_conf, struct_size, 0, 2),
    FIELD(hr_export_conf, name, 8, 2),
    FIELD(hr_export_conf, url, 16, 2),
    FIELD(hr_export_conf, headers, 24, 2),
    FIELD(hr_export_conf, content_type, 32, 2),
    FIELD(hr_export_conf, gzip, 40, 2),
    FIELD(hr_export_conf, timeout_ms, 44, 2),
    FIELD(hr_export_conf, queue_max, 48, 2),
    FIELD(hr_export_conf, max_attempts, 52, 2),
    FIELD(hr_export_conf, backoff_ms, 56, 2),
    SIZE(hr_export_conf, 64),
    FIELD(hr_export_stats, struct_size, 0, 2),
    FIELD(hr_export_stats, ok, 8, 2),
    FIELD(hr_export_stats, failed, 16, 2),
    FIELD(hr_export_stats, dropped, 24, 2),
    FIELD(hr_export_stats, retries, 32, 2),
    FIELD(hr_export_stats, items_ok, 40, 2),
    FIELD(hr_export_stats, items_failed, 48, 2),
    FIELD(hr_export_stats, queued, 56, 2),
    FIELD(hr_export_stats, last_ok_at, 64, 2),
    FIELD(hr_export_stats, last_attempt_at, 72, 2),
    FIELD(hr_export_stats, last_status, 80, 2),
    FIELD(hr_export_stats, last_error, 84, 2),
    SIZE(hr_export_stats, 216),
    FIELD(headroom_plugin, struct_size, 0, 0),
    FIELD(headroom_plugin, abi_major, 4, 0),
    FIELD(headroom_plugin, abi_minor, 6, 0),
    FIELD(headroom_plugin, name, 8, 0),
    FIELD(headroom_plugin, kind, 16, 0),
    FIELD(headroom_plugin, version, 24, 0),
    FIELD(headroom_plugin, description, 32, 0),
    FIELD(headroom_plugin, conf_keys, 40, 0),
    FIELD(headroom_plugin, init, 48, 0),
    FIELD(headroom_plugin, fini, 56, 0),
    FIELD(headroom_plugin, apply, 64, 0),
    FIELD(headroom_plugin, content_types, 72, 0),
    FIELD(headroom_plugin, on_event, 80, 0),
    FIELD(headroom_plugin, reopen, 88, 0),
    FIELD(headroom_plugin, reset, 96, 2),
    FIELD(headroom_plugin, transform_flags, 104, 3),
    FIELD(headroom_plugin, sink_flags, 108, 7),
    SIZE(headroom_plugin, 112),
};

int main(void)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8) {
        printf("1..0 # SKIP the frozen offsets are for LP64 targets\n");
        return 0;
    }
    ok(HR_ABI_MAJOR == 1 && HR_ABI_MINOR == 10, "ABI 1.10 (a new minor appends lines here)");
    /* Flag bits are frozen too: a plugin built against 1.8 stores these numbers. */
    ok(HR_TF_COUNTS_ON_DEMAND == 0x1u && HR_TF_UNITS_ONLY == 0x2u && HR_TF_COPY_ON_WRITE == 0x4u &&
           HR_TF_NEEDS_UNITS == 0x8u && HR_SINK_ON_REQUEST_THREAD == 0x1u,
       "transform and sink flag bits (1.3, 1.5, 1.6, 1.8; 1.7)");
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        const struct layout *l = &table[i];
        if (l->minor < 0)
            is_int((long long)l->offset, (long long)l->expected, "sizeof(struct %s) is %zu", l->type, l->expected);
        else
            is_int((long long)l->offset, (long long)l->expected, "struct %s.%s at %zu (ABI 1.%d)", l->type, l->field,
                   l->expected, l->minor);
    }
    /* What a plugin built against 1.1 sees: HR_HAS_FIELD says no to 1.2 fields. */
    struct hr_request r11;
    memset(&r11, 0, sizeof r11);
    r11.struct_size = (uint32_t)offsetof(struct hr_request, wire_format);
    ok(!HR_HAS_FIELD(&r11, struct hr_request, wire_format), "HR_HAS_FIELD: a 1.1-sized request has no wire_format");
    r11.struct_size = sizeof r11;
    ok(HR_HAS_FIELD(&r11, struct hr_request, wire_format), "HR_HAS_FIELD: a 1.2-sized request has it");
    return tap_exit();
}
