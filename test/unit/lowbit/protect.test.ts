// Low-bit protection (engine/lowbit/protect): with calibration data the low-bit pass measures the model's outputs
// against the float model's and keeps float the layers that cost them most, until a target is met.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { lowBitModelCalibrated, type LowBitOptions } from "../../../engine/lowbit";
import type { Feeds } from "../../../engine/data/feeds";

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

/** x[B,64] → MatMul(outlier-laden W1[64,64]) → MatMul(smooth W2[64,32]) → y. In every block of 32 along K, W1
 *  has one value 7× the others' largest: 4-bit blocks scaled to it keep three levels for the rest (≈ 14 dB alone).
 *  W2 rounds well (≈ 23 dB alone). */
function buildModel(): Model {
  const r = rng(7);
  const w1 = Float32Array.from({ length: 64 * 64 }, (_, i) => (Math.floor(i / 64) % 32 === 5 ? 2 : 0.3 * r()));
  const w2 = Float32Array.from({ length: 64 * 32 }, () => 0.2 * r());
  const g = makeGraph(
    "protect_test",
    [makeNode("MatMul", ["x", "W1"], ["h"], { name: "outliers" }), makeNode("MatMul", ["h", "W2"], ["y"], { name: "smooth" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 64])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 32])],
    { initializers: [makeTensor("W1", DataType.FLOAT, [64, 64], w1), makeTensor("W2", DataType.FLOAT, [64, 32], w2)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

function batches(n: number): Feeds[] {
  const r = rng(11);
  return Array.from({ length: n }, () => ({ x: { data: Float32Array.from({ length: 4 * 64 }, () => r()), dims: [4, 64], type: "float32" } }));
}

test("without protection the outputs are measured and reported; with it the layer that ruins them stays float", async () => {
  const model = buildModel();
  const measured = await lowBitModelCalibrated(model, { mode: "int4" }, batches(2));
  const all = measured.report.output!;
  assert.equal(measured.report.layers.length, 2);
  assert.equal(all.protected.length, 0);
  assert.equal(all.targetDb, undefined);
  assert.ok(all.sqnrDb < 18, `all low-bit: ${all.sqnrDb} dB`);

  const target = 20;
  const { report } = await lowBitModelCalibrated(model, { mode: "int4", protect: { minOutputSqnrDb: target } } as LowBitOptions, batches(2));
  const out = report.output!;
  assert.deepEqual(out.protected.map((p) => p.node), ["outliers"]);
  assert.ok(out.sqnrDb >= target, `${out.sqnrDb} dB ≥ ${target}`);
  assert.deepEqual(report.layers.map((l) => l.node), ["smooth"]);
  assert.match(report.skipped.find((s) => s.node === "outliers")!.reason, /kept float: alone in low bits it brings the outputs to .* dB \(target/);
});

test("a target the model meets as it is keeps every layer in low bits", async () => {
  const { report } = await lowBitModelCalibrated(buildModel(), { mode: "int4", protect: { minOutputSqnrDb: 0 } } as LowBitOptions, batches(1));
  assert.equal(report.layers.length, 2);
  assert.deepEqual(report.output!.protected, []);
});

test("GPTQ reads one-shot data once and protection measures on the same first batches", async () => {
  function* once() {
    yield* batches(3);
  }
  const { report } = await lowBitModelCalibrated(buildModel(), { mode: "int4", algorithm: "gptq" } as LowBitOptions, once());
  assert.equal(report.output!.batches, 3);
  assert.ok(report.notes.some((n) => /GPTQ calibration: 3 batches/.test(n)));
});
