// `ptq quantize --mode int4 --algorithm gptq --calib DIR` end to end through the CLI (source run with tsx), and the
// low-bit flags added with it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq as ptqChild } from "../cli/ptq-child";

import path from "node:path";
import { Model } from "../../../engine/onnx";
import { tempDir } from "../../temp";

const root = path.join(__dirname, "..", "..", "..");
const vit = path.join(root, "test", "fixtures", "models", "vit.onnx");
const calib = path.join(root, "test", "fixtures", "data", "calib", "npy");
const ptq = (...args: string[]) => ptqChild("quantize", ...args);
const tmp = () => tempDir("ptq-cli-gptq-");

test("--algorithm gptq --calib quantizes vit's MatMuls and reports output SQNR above round-to-nearest's", () => {
  const out = path.join(tmp(), "vit.gptq.onnx");
  const r = ptq(vit, "-o", out, "--mode", "int4", "--algorithm", "gptq", "--calib", calib, "--batch-size", "64", "--json");
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  // The patch embedding's Conv is int4 too, its Hessian from its input patches.
  const matmuls = report.layers.filter((l: { opType: string }) => l.opType !== "Conv");
  assert.ok(matmuls.length >= 8);
  assert.equal(report.layers.length - matmuls.length, 1);
  assert.ok(report.notes.some((n: string) => /GPTQ calibration: .*; 1 Conv\(s\) on \d+ sampled input patches each$/.test(n)), report.notes.join("\n"));
  const mean = (f: (l: { outputSqnrDb: number; rtnOutputSqnrDb: number }) => number) =>
    report.layers.reduce((s: number, l: never) => s + f(l), 0) / report.layers.length;
  assert.ok(mean((l) => l.outputSqnrDb) > mean((l) => l.rtnOutputSqnrDb) + 1, `GPTQ ${mean((l) => l.outputSqnrDb)} dB vs RTN ${mean((l) => l.rtnOutputSqnrDb)} dB`);
  assert.ok(report.notes.some((n: string) => /GPTQ calibration: \d+ batches/.test(n)));
  assert.equal(Model.loadSync(out).graph.node.filter((n) => n.opType === "MatMulNBits").length, matmuls.length);
});

test("GPTQ usage errors exit 2 and say what is missing", () => {
  const out = path.join(tmp(), "x.onnx");
  const noData = ptq(vit, "-o", out, "--mode", "int4", "--algorithm", "gptq");
  assert.equal(noData.status, 2);
  assert.match(noData.stderr, /--algorithm gptq needs calibration data: --calib PATH/);
  const stray = ptq(vit, "-o", out, "--mode", "int4", "--damping", "0.1");
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /--damping and --act-order apply to --algorithm gptq/);
});

test("--include-gather asks for 4-bit embedding tables; it is off by default", async () => {
  const { parseLowBitArgs } = await import("../../../cli/quantize-lowbit");
  const on = parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "int4", "--include-gather"]).options;
  assert.equal(on.mode === "int4" && on.includeGather, true);
  const off = parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "int4"]).options;
  assert.equal(off.mode === "int4" && off.includeGather, undefined);
  assert.throws(() => parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "fp4", "--include-gather"]), /int4 options given with --mode fp4/);
});

test("--damping and --act-order reach the GPTQ options; bad values are usage errors", async () => {
  const { parseLowBitArgs } = await import("../../../cli/quantize-lowbit");
  const a = parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "int4", "--algorithm", "gptq", "--calib", calib, "--damping", "0.05", "--act-order", "--bits", "8"]);
  assert.deepEqual(a.options.mode === "int4" && [a.options.gptq, a.options.bits], [{ damping: 0.05, actOrder: true }, 8]);
  assert.equal(a.calib, calib);
  assert.throws(() => parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "int4", "--algorithm", "gptq", "--calib", calib, "--damping", "2"]), /--damping takes a number between 0 and 1/);
  assert.throws(() => parseLowBitArgs([vit, "-o", "/tmp/x.onnx", "--mode", "int4", "--bits", "3"]), /--bits/);
});
