-- post.lua — wrk script for bench/proxy_vs_nginx: POST a small,
-- non-compressible chat request (BENCH_STREAM=1: the same with "stream":true)
-- and print one machine-readable line at the end.
-- BENCH_BODY_FILE: POST that file to /v1/messages instead (an Anthropic
-- request, e.g. the Claude Code turn capture_claude.py writes).
-- BENCH_PACE_MS: each connection waits this many milliseconds after an
-- answer before its next request, so the offered load stays below what
-- either proxy can serve and the latency is the proxy's, not a queue's.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-not-a-key"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.path = "/v1/messages"
  wrk.headers["x-api-key"] = "sk-ant-bench-not-a-key"
  wrk.headers["anthropic-version"] = "2023-06-01"
elseif os.getenv("BENCH_STREAM") == "1" then
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},'
    .. '{"role":"user","content":"Hello, how are you today?"}],"stream":true,"stream_options":{"include_usage":true}}'
else
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},'
    .. '{"role":"user","content":"Hello, how are you today?"}]}'
end

local pace = tonumber(os.getenv("BENCH_PACE_MS") or "")
if pace and pace > 0 then
  function delay() return pace end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d status_errors=%d p50_us=%d p99_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
