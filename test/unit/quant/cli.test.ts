// `ptq quantize` end to end through the built CLI (run `npm run build` first, as for test/unit/cli).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.join(__dirname, "..", "..", "..");
const bin = path.join(root, "bin", "ptq.js");
const cnn = path.join(root, "test", "fixtures", "models", "cnn.onnx");
const calib = path.join(root, "test", "fixtures", "data", "calib", "calib.npz");
const tmp = mkdtempSync(path.join(tmpdir(), "ptq-quant-cli-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const ptq = (...args: string[]) => spawnSync(process.execPath, [bin, "quantize", ...args], { encoding: "utf8" });

test("static quantization writes the model and a JSON summary; the input is untouched", () => {
  const before = readFileSync(cnn);
  const out = path.join(tmp, "cnn.int8.onnx");
  const r = ptq(cnn, "-o", out, "--calib", calib, "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.mode, "static");
  assert.equal(s.format, "qdq");
  assert.ok(s.quantized.some((n: { opType: string }) => n.opType === "Conv"));
  assert.ok(existsSync(out));
  assert.deepEqual(readFileSync(cnn), before);
  // Existing output is not replaced without --overwrite.
  const again = ptq(cnn, "-o", out, "--calib", calib);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists/);
});

test("dynamic mode needs no data; --exclude keeps a node in float", () => {
  const out = path.join(tmp, "cnn.dyn.onnx");
  const r = ptq(cnn, "-o", out, "--mode", "dynamic", "--json", "--exclude", "/Gemm$/");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  // The convolutions are quantized (int8 weights, float Convs); the excluded Gemm stays float and says why.
  assert.ok(s.quantized.length > 0);
  assert.deepEqual([...new Set(s.quantized.map((q: { opType: string }) => q.opType))], ["Conv"]);
  assert.ok(s.float.some((f: { opType: string; reason: string }) => f.opType === "Gemm" && /excluded/.test(f.reason)));
});

test("dynamic mode with --calib measures protected layers and says what it measured; --no-protect or no data measures nothing", () => {
  const run = (name: string, ...args: string[]) => {
    const r = ptq(cnn, "-o", path.join(tmp, name), "--mode", "dynamic", "--json", ...args);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.match(run("p.onnx", "--calib", calib).protectedLayers.why, /^protected layers: /);
  assert.equal(run("n.onnx", "--calib", calib, "--no-protect").protectedLayers, undefined);
  const plain = run("d.onnx");
  assert.equal(plain.protectedLayers, undefined);
  assert.ok(plain.warnings.some((w: string) => w.startsWith("protected layers not measured (no data)")), plain.warnings.join("\n"));
  assert.ok(!run("n2.onnx", "--no-protect").warnings.some((w: string) => w.startsWith("protected layers not measured")), "not said when turned off");
});

test("usage errors exit 2 and say what is wrong", () => {
  assert.match(ptq(cnn, "-o", path.join(tmp, "x.onnx")).stderr, /needs --calib/);
  assert.equal(ptq(cnn, "-o", path.join(tmp, "x.onnx"), "--mode", "sideways").status, 2);
  assert.equal(ptq(cnn, "-o", cnn, "--mode", "dynamic").status, 2);
  assert.equal(ptq(cnn, "--frobnicate").status, 2);
});

test("a broken model or wrong calibration data exits 1 with a message and writes nothing", () => {
  const bad = path.join(tmp, "bad.onnx");
  writeFileSync(bad, "not a model");
  const out = path.join(tmp, "bad.int8.onnx");
  const r = ptq(bad, "-o", out, "--mode", "dynamic");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.onnx/);
  assert.ok(!existsSync(out));
  const wrongData = ptq(cnn, "-o", out, "--calib", path.join(tmp, "missing-folder"));
  assert.equal(wrongData.status, 1);
  assert.ok(!existsSync(out));
});
