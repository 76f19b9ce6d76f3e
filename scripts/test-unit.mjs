// Runs node's test runner over test/unit (Node 20's --test takes no globs): every *.test.ts, or the files or
// folders named on the command line.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

function collect(p, out) {
  if (statSync(p).isDirectory()) {
    for (const name of readdirSync(p).sort()) collect(path.join(p, name), out);
  } else if (p.endsWith(".test.ts")) {
    out.push(p);
  }
  return out;
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const files = (roots.length ? roots : ["test/unit"]).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error("test-unit: no *.test.ts files found");
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=spec", ...flags, ...files],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
