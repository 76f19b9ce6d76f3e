// `ptq quantize` end to end through the built CLI (run `npm run build` first, as for test/unit/cli).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeNpy, parseNpy } from "../../../engine/data/npy";

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
  assert.ok(["mse", "minmax", "percentile", "entropy", "per-tensor choices"].includes(s.calibrationAuto?.assignment), JSON.stringify(s.calibrationAuto));
  // Existing output is not replaced without --overwrite.
  const again = ptq(cnn, "-o", out, "--calib", calib);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists/);
  // As text, calibration auto (the default) says in one line what it wrote and the figure behind it.
  const text = ptq(cnn, "-o", out, "--calib", calib, "--overwrite");
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /\n {2}calibration auto: (mse's ranges kept: no other method gained on the first \d+ calibration row\(s\) with a lower bound above \+0\.00 dB|(minmax|percentile|entropy) for every tensor: |the per-tensor choices: ).*\(per tensor: --json calibrationChoices\)\n/);
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

test("--image-mean/--image-std: calibration images normalized as the model's training did, the same file as those values given as .npy; the summary says how the images were read", () => {
  const images = path.join(root, "test", "unit", "data", "files", "images", "gray");
  const expected = parseNpy(readFileSync(path.join(images, "..", "gray_expected.npy")), "gray_expected.npy");
  const npyDir = path.join(tmp, "normalized");
  mkdirSync(npyDir);
  writeFileSync(path.join(npyDir, "x.npy"), encodeNpy(Float32Array.from(expected.data as Float32Array, (v) => (v - 0.5) / 0.25), expected.dims));
  const fromImages = path.join(tmp, "img.int8.onnx");
  const fromNpy = path.join(tmp, "npy.int8.onnx");
  const r = ptq(cnn, "-o", fromImages, "--calib", images, "--image-mean", "0.5", "--image-std", "0.25", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).warnings.includes(`calibration images in ${images}: input "input" = (pixel × 1/255 − 0.5) / 0.25, gray, NCHW 28×28 (bilinear resize)`));
  assert.equal(ptq(cnn, "-o", fromNpy, "--calib", npyDir).status, 0);
  assert.deepEqual(readFileSync(fromImages), readFileSync(fromNpy));
  // Left at the default, the summary says so and how to change it; the ranges differ from the normalized ones.
  const plain = path.join(tmp, "plain.int8.onnx");
  const d = ptq(cnn, "-o", plain, "--calib", images);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /note: calibration images in .*gray: input "input" = \(pixel × 1\/255 − 0\) \/ 1, gray, NCHW 28×28 \(bilinear resize\); if the model was trained on normalized pixels, say how with --image-mean\/--image-std/);
  assert.notDeepEqual(readFileSync(plain), readFileSync(fromImages));
  // report and bench read --data images the same way; the flags without image data are usage errors.
  const report = spawnSync(process.execPath, [bin, "report", cnn, fromImages, "--data", images, "--image-mean", "0.5", "--image-std", "0.25", "--runs", "2", "--json"], { encoding: "utf8" });
  assert.equal(report.status, 0, report.stderr);
  const bench = spawnSync(process.execPath, [bin, "bench", cnn, "--image-mean", "0.5"], { encoding: "utf8" });
  assert.equal(bench.status, 2);
  assert.match(bench.stderr, /--image-mean applies to --data with a folder of \.png\/\.jpg images/);
});
