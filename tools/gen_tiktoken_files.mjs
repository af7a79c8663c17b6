// tools/gen_tiktoken_files.mjs — converts the rank tables shipped in the npm `tiktoken` package
// (compact "! <offset> tok tok ..." lines inside encoders/<name>.json) into OpenAI's .tiktoken format.
// Usage: node tools/gen_tiktoken_files.mjs <node_modules/tiktoken> <outdir>
import fs from "node:fs";
import path from "node:path";

const [pkgDir, outDir] = process.argv.slice(2);
if (!pkgDir || !outDir) {
  console.error("usage: node gen_tiktoken_files.mjs NODE_MODULES/tiktoken OUTDIR");
  process.exit(2);
}
for (const name of ["cl100k_base", "o200k_base"]) {
  const j = JSON.parse(fs.readFileSync(path.join(pkgDir, "encoders", name + ".json"), "utf8"));
  const out = [];
  for (const line of j.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, offsetStr, ...toks] = line.split(" ");
    const off = Number.parseInt(offsetStr, 10);
    toks.forEach((t, i) => out.push(`${t} ${off + i}\n`));
  }
  fs.writeFileSync(path.join(outDir, name + ".tiktoken"), out.join(""));
  console.log(name, out.length, "ranks");
}
