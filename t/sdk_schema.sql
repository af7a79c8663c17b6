-- t/sdk_schema.sql — the metrics_db sink's schema (the contract, user_version 1), for tests that write
-- metrics databases themselves.
PRAGMA journal_mode=WAL; PRAGMA user_version = 1;
CREATE TABLE requests (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, timestamp REAL NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, wire_format TEXT NOT NULL, stack TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, credited INTEGER NOT NULL, cached INTEGER NOT NULL, streamed INTEGER NOT NULL, failed INTEGER NOT NULL, tokens_input_before INTEGER NOT NULL, tokens_input_after INTEGER NOT NULL, tokens_saved INTEGER NOT NULL, tokens_output INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, savings_usd REAL NOT NULL, priced INTEGER NOT NULL, transforms TEXT NOT NULL, latency_ms REAL NOT NULL, overhead_ms REAL NOT NULL, ttfb_ms REAL);
CREATE INDEX requests_by_time ON requests(timestamp);
