// sdk_emit.mjs — the official OpenTelemetry JS metrics SDK (sdk-metrics +
// exporter-metrics-otlp-proto) recording the instruments headroomd exports,
// as a reference for t/otel_test.py to compare headroomd's OTLP against.
// Instruments are declared here from the spec (spec/monitoring.md) and the
// GenAI semantic conventions, not from headroomd's output.
// Env: OTLP_URL (the loopback receiver), TEMPORALITY (cumulative|delta),
// SERVICE_NAME. Stdin: JSON [{name, value, attrs}] recordings.
import { readFileSync } from "node:fs";
import { ValueType } from "@opentelemetry/api";
import { Resource } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { AggregationTemporalityPreference } from "@opentelemetry/exporter-metrics-otlp-http";

// The GenAI conventions' advised buckets.
const DURATION = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const INSTRUMENTS = {
  "headroom.proxy.requests": { kind: "counter", unit: "{request}" },
  "headroom.proxy.tokens.input": { kind: "counter", unit: "{token}" },
  "headroom.proxy.tokens.output": { kind: "counter", unit: "{token}" },
  "headroom.proxy.tokens.saved": { kind: "counter", unit: "{token}" },
  "headroom.proxy.request.duration": { kind: "histogram", unit: "s", bounds: DURATION },
  "gen_ai.client.token.usage": { kind: "histogram", unit: "{token}", bounds: TOKENS },
  "gen_ai.client.operation.duration": { kind: "histogram", unit: "s", bounds: DURATION },
};

const exporter = new OTLPMetricExporter({
  url: process.env.OTLP_URL,
  temporalityPreference:
    process.env.TEMPORALITY === "delta" ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE,
});
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60000 });
const provider = new MeterProvider({
  resource: Resource.default().merge(new Resource({ "service.name": process.env.SERVICE_NAME || "sdk" })),
  readers: [reader],
});
const meter = provider.getMeter("sdk-reference", "1.0.0");
const inst = {};
for (const [name, d] of Object.entries(INSTRUMENTS)) {
  const opts = { unit: d.unit, description: name, valueType: ValueType.INT };
  if (d.kind === "counter") inst[name] = meter.createCounter(name, opts);
  else inst[name] = meter.createHistogram(name, { ...opts, valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: d.bounds } });
}
for (const r of JSON.parse(readFileSync(0, "utf8"))) {
  const i = inst[r.name];
  if (i.add) i.add(r.value, r.attrs);
  else i.record(r.value, r.attrs);
}
await reader.forceFlush();
await provider.shutdown();
