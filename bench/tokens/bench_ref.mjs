// bench/tokens/bench_ref.mjs — the same measurement with the reference (npm tiktoken, OpenAI's
// Rust core as wasm): load time, then MB/s of encode_ordinary(...).length per input file.
// Usage: NODE_PATH=/scratch/node_modules node bench/tokens/bench_ref.mjs FILE...
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(path.join((process.env.NODE_PATH || ".").split(":")[0], "x.js"));
const t0 = performance.now();
const { get_encoding } = require("tiktoken");
const enc = { o200k_base: get_encoding("o200k_base"), cl100k_base: get_encoding("cl100k_base") };
console.log(`reference table load (o200k + cl100k): ${(performance.now() - t0).toFixed(1)} ms`);
for (const f of process.argv.slice(2)) {
  const text = fs.readFileSync(f, "utf8"), bytes = Buffer.byteLength(text);
  for (const [name, e] of Object.entries(enc)) {
    let n = e.encode_ordinary(text).length, reps = 0;
    const s = performance.now();
    do { n = e.encode_ordinary(text).length; reps++; } while (performance.now() - s < 1000);
    const secs = (performance.now() - s) / 1000;
    console.log(`${path.basename(f).padEnd(28)} ${name.padEnd(12)} ${String(n).padStart(9)} tokens  ${(bytes * reps / secs / 1e6).toFixed(2).padStart(8)} MB/s per core (reference)`);
  }
}
