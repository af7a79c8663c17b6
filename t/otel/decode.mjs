// decode.mjs — decodes OTLP/HTTP bodies captured by t/otel_test.py with the
// official opentelemetry-proto classes shipped in @opentelemetry/otlp-transformer
// (protobufjs, generated from the .proto files). Input: JSON lines on stdin
// {kind: "metrics"|"traces", encoding: "protobuf"|"json", b64}; output: one JSON
// line per body, the decoded message as a plain object (longs as strings,
// enums as numbers, bytes as hex), or {error}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const require = createRequire(import.meta.url);
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");
const P = root.opentelemetry.proto.collector;
const types = {
  metrics: P.metrics.v1.ExportMetricsServiceRequest,
  traces: P.trace.v1.ExportTraceServiceRequest,
};
const hex = (o) => {
  if (o instanceof Uint8Array) return Buffer.from(o).toString("hex");
  if (Array.isArray(o)) return o.map(hex);
  if (o && typeof o === "object") {
    for (const k of Object.keys(o)) o[k] = hex(o[k]);
  }
  return o;
};
for (const line of readFileSync(0, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  const T = types[req.kind];
  try {
    const buf = Buffer.from(req.b64, "base64");
    let msg;
    if (req.encoding === "json") {
      const obj = JSON.parse(buf.toString("utf8"));
      const err = T.verify(obj);
      // verify() rejects the OTLP/JSON hex ids and string longs; fromObject accepts them
      msg = T.fromObject(obj);
      msg = T.decode(T.encode(msg).finish());
      if (err && req.kind !== "traces") process.stderr.write("verify: " + err + "\n");
    } else {
      msg = T.decode(buf);
    }
    const o = T.toObject(msg, { longs: String, enums: Number, bytes: Uint8Array, defaults: false, arrays: true });
    console.log(JSON.stringify(hex(o)));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
}
