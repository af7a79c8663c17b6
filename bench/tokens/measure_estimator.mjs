// bench/tokens/measure_estimator.mjs — measures the estimator of doc/tokenizer.md on the test
// corpus: (1) o200k vs the only public Claude tokenizer (@anthropic-ai/tokenizer 0.0.4, the
// Claude 1/2 vocabulary) to pick the Claude factor; (2) the tables-free byte estimate (run
// through the real C code: `headroom tokens -e estimate` with no tables) vs exact o200k.
// Usage: NODE_PATH=/scratch/node_modules node bench/tokens/measure_estimator.mjs ./headroom
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join((process.env.NODE_PATH || root).split(":")[0], "x.js"));
const { get_encoding } = require("tiktoken");
const { countTokens } = require("@anthropic-ai/tokenizer");
const cli = process.argv[2];
const o = get_encoding("o200k_base");
const dir = path.join(root, "t/tokens/corpus");
let so = 0, sc = 0, sb = 0;
const rows = [];
for (const f of fs.readdirSync(dir).sort()) {
  const text = fs.readFileSync(path.join(dir, f), "utf8");
  if (text.length < 50) continue;
  const no = o.encode_ordinary(text).length, nc = countTokens(text);
  const nb = cli ? +execFileSync(cli, ["tokens", "-e", "estimate", path.join(dir, f)],
                                 { env: { ...process.env, HEADROOM_DATA_DIR: "/nonexistent" } }).toString() : NaN;
  so += no; sc += nc; sb += nb;
  rows.push([f, no, nc, (nc / no).toFixed(3), nb, ((nb - no) / no * 100).toFixed(1) + "%"]);
}
console.log("file\to200k\tclaude-legacy\tratio\tfallback-est\tfallback err vs o200k");
for (const r of rows) console.log(r.join("\t"));
const ratios = rows.map((r) => +r[3]).sort((a, b) => a - b);
console.log(`total\t${so}\t${sc}\t${(sc / so).toFixed(3)}\t${sb}\t${((sb - so) / so * 100).toFixed(1)}%`);
console.log(`claude-legacy/o200k ratio: median ${ratios[ratios.length >> 1]}, min ${ratios[0]}, max ${ratios[ratios.length - 1]}`);
const errs = rows.map((r) => Math.abs(parseFloat(r[5]))).sort((a, b) => a - b);
console.log(`tables-free estimate |error| vs o200k: median ${errs[errs.length >> 1]}%, max ${errs[errs.length - 1]}%`);
