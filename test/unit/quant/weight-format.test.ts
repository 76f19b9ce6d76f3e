// weightType "auto" (the default): on a portable target calibrate() measures uint8 weights (U8U8) against 7-bit int8 ones (U8S7)
// at the outputs and convert() writes U8S7 only where it is not measurably worse; a user's weightType or
// reduceRange wins, and the summary says what was chosen and the measurement.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor, readTensor } from "../../../engine/onnx/tensor";
import { Model } from "../../../engine/onnx/model";
import { quantizeDynamicModel } from "../../../engine/quant/index";
import { resolveConfig } from "../../../engine/quant/types";
import { MEAN_DECIDES_AT_OR_BELOW_DB, PARTIAL_TIE_DB, WEIGHT_TIE_DB, convWork, rowDifference, wholeModelU8S7 } from "../../../engine/quant/weight-format";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;

/** x[N, 64] · W[64, 16]: weights of full resolution (uniform), or ternary (exact on the 7-bit int8 grid, ±64; not
 *  on uint8's, whose symmetric grid puts ±1 at 128 ± 127.5). */
function matmul(weights: Float32Array) {
  return makeModel(
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })],
    [valueInfo("x", F, ["N", 64])],
    [valueInfo("y", F, ["N", 16])],
    [makeTensor("W", F, [64, 16], weights)],
  );
}
const fine = () => randomFloats(64 * 16, 5);
const ternary = () => randomFloats(64 * 16, 5).map((v) => Math.sign(Math.round(v * 1.4)));

const writtenWeights = (r: Awaited<ReturnType<typeof quantizeTiny>>) => {
  const g = r.qdq.graph;
  const zp = g.initializer.find((i) => i.name === "W_zero_point")!;
  const q = Array.from(readTensor(g.initializer.find((i) => i.name === "W_quantized")!).data as ArrayLike<number>);
  return { type: zp.dataType, peak: Math.max(...q.map(Math.abs)) };
};

test("weightType auto measures only where two weight formats are exact; reduceRange with it is refused", () => {
  for (const targetCpu of ["any", "avx2"] as const) {
    const r = resolveConfig({ weightType: "auto", targetCpu });
    assert.deepEqual([r.weightType, r.reduceRange, r.measureWeights], ["uint8", false, true], targetCpu);
  }
  for (const targetCpu of ["vnni", "arm"] as const) {
    const r = resolveConfig({ weightType: "auto", targetCpu });
    assert.deepEqual([r.weightType, r.reduceRange, r.measureWeights], ["int8", false, false], targetCpu);
  }
  assert.equal(resolveConfig({}).measureWeights, true, "the default");
  assert.equal(resolveConfig({ weightType: "uint8" }).measureWeights, false, "a user's weightType fixes the weights");
  assert.equal(resolveConfig({ reduceRange: false }).measureWeights, false, "so does a user's reduceRange");
  assert.throws(() => resolveConfig({ weightType: "auto", reduceRange: true }), /reduceRange: weightType "auto" chooses the weights' width itself/);
  assert.throws(() => resolveConfig({ weightType: "int4" as never }), /weightType: "int4" is not int8, uint8 or auto/);
});

test("auto writes 7-bit int8 weights where they cost the outputs nothing (ternary weights)", async () => {
  const r = await quantizeTiny(matmul(ternary()), { x: [8, 64] }, { weightType: "auto" });
  assert.deepEqual(writtenWeights(r), { type: DataType.INT8, peak: 64 });
  const w = r.summary.weights!;
  assert.deepEqual([w.type, w.reduceRange, w.targetCpu], ["int8", true, "any"]);
  assert.match(w.why!, /^weightType auto chose int8 with 7 bits \(U8S7\): on the first 16 calibration row\(s\) worst-output SQNR U8U8 [\d.]+ dB, U8S7 [\d.]+ dB; U8S7 − U8U8 per row: mean \+[\d.]+ dB, lower bound \+[\d.]+ dB; pooled \+[\d.]+ dB, lower bound \+[\d.]+ dB \(U8S7 is taken where either bound is above −0.5 dB\)$/);
});

test("auto keeps uint8 weights where 7 bits measurably cost the outputs, and says by how much", async () => {
  const r = await quantizeTiny(matmul(fine()), { x: [8, 64] }, { weightType: "auto" });
  assert.equal(writtenWeights(r).type, DataType.UINT8);
  const w = r.summary.weights!;
  assert.deepEqual([w.type, w.reduceRange], ["uint8", undefined]);
  const m = /per row: mean −([\d.]+) dB, lower bound −([\d.]+) dB/.exec(w.why!);
  assert.ok(m, w.why);
  assert.ok(Number(m[2]) > WEIGHT_TIE_DB, `U8S7 measured worse by more than the tie: ${w.why}`);
  assert.match(w.why!, /chose uint8 \(U8U8\)/);
});

test("a user's weightType or reduceRange wins over the measurement: nothing is measured", async () => {
  const int8 = await quantizeTiny(matmul(fine()), { x: [8, 64] }, { weightType: "int8", reduceRange: true });
  assert.deepEqual(int8.summary.weights, { type: "int8", targetCpu: "any", reduceRange: true });
  const plain = await quantizeTiny(matmul(ternary()), { x: [8, 64] }, { weightType: "uint8" });
  assert.deepEqual(plain.summary.weights, { type: "uint8", targetCpu: "any" });
  assert.equal(writtenWeights(plain).type, DataType.UINT8);
  const full = await quantizeTiny(matmul(ternary()), { x: [8, 64] }, { reduceRange: false });
  assert.deepEqual(full.summary.weights, { type: "uint8", targetCpu: "any" });
});

test("dynamic mode has no calibration rows to measure: auto writes the target's default", async () => {
  const { summary } = await quantizeDynamicModel(Model.fromProto(matmul(ternary())), resolveConfig({ weightType: "auto" }), false);
  assert.deepEqual(summary.weights, { type: "uint8", targetCpu: "any" });
});

/**
 * x[N, 16, 8, 8] → heavy 3×3 Conv (16→16, ternary weights: exact on the 7-bit grid) → h, and x → light 1×1 Conv
 * (16→2, fine weights and one 8× larger per channel: 7 bits cost it 6 dB) → y. The heavy one does 98.6 % of the multiply-adds.
 */
function twoConvs() {
  return makeModel(
    [
      makeNode("Conv", ["x", "Wh"], ["h"], { name: "heavy", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Conv", ["x", "Wl"], ["y"], { name: "light" }),
    ],
    [valueInfo("x", F, ["N", 16, 8, 8])],
    [valueInfo("h", F, ["N", 16, 8, 8]), valueInfo("y", F, ["N", 2, 8, 8])],
    [
      makeTensor("Wh", F, [16, 16, 3, 3], randomFloats(16 * 16 * 9, 7).map((v) => Math.sign(Math.round(v * 1.4)) * 0.1)),
      makeTensor("Wl", F, [2, 16, 1, 1], randomFloats(32, 8).map((v, i) => (i % 16 === 0 ? 8 : v))),
    ],
  );
}

test("convWork ranks Convs by multiply-adds, symbolic input dimensions sized from the row", () => {
  const m = Model.fromProto(twoConvs());
  const row = { x: { data: new Float32Array(2 * 16 * 64), dims: [2, 16, 8, 8], type: "float32" as const } };
  assert.deepEqual(convWork(m, row), [
    { weight: "Wh", macs: 16 * 16 * 9 * 64 },
    { weight: "Wl", macs: 2 * 16 * 64 },
  ]);
});

test("where the whole model loses with U8S7, auto writes U8S7 on the heaviest Convs that cost nothing, uint8 on the rest", async () => {
  const r = await quantizeTiny(twoConvs(), { x: [8, 16, 8, 8] }, { weightType: "auto" });
  const g = r.qdq.graph;
  const zp = (w: string) => g.initializer.find((i) => i.name === `${w}_zero_point`)!.dataType;
  const peak = (w: string) => Math.max(...Array.from(readTensor(g.initializer.find((i) => i.name === `${w}_quantized`)!).data as ArrayLike<number>).map(Math.abs));
  assert.deepEqual([zp("Wh"), peak("Wh"), zp("Wl")], [DataType.INT8, 64, DataType.UINT8]);
  const w = r.summary.weights!;
  assert.equal(w.type, "uint8");
  assert.match(w.why!, /^weightType auto chose uint8 \(U8U8\) with int8 of 7 bits \(U8S7\) on 1 of 2 Conv\(s\) \(98\.6 % of their multiply-adds\): .*lower bound −[\d.]+ dB \(U8S7 is taken where either bound is above −0.5 dB\); on those Convs alone U8S7 − U8U8 per row: mean [+−][\d.]+ dB, lower bound [+−][\d.]+ dB; pooled [+−][\d.]+ dB, lower bound [+−][\d.]+ dB \(taken where either bound is above −0.15 dB\)$/);
  assert.equal(PARTIAL_TIE_DB, 0.15);
});

test("at or below 0 dB the per-row bound cannot decide the format: the mean does, against the same tie", () => {
  const db = (x: number) => 10 ** (-x / 10);
  // mlsd-320-large's figures on three calibration sets (docs/int8-speed.md): U8S7 each time.
  assert.equal(wholeModelU8S7(db(-0.49), { mean: 1.06, lower: -0.38, rows: 16 }), "bound");
  assert.equal(wholeModelU8S7(db(-1.41), { mean: 0.45, lower: -1.23, rows: 16 }), "mean");
  assert.equal(wholeModelU8S7(db(-1.1), { mean: 0.38, lower: -2.21, rows: 16 }), "mean");
  // mlsd-320-tiny: the mean loses more than the tie.
  assert.equal(wholeModelU8S7(db(-2.36), { mean: -0.88, lower: -2.86, rows: 16 }), undefined);
  // Above the floor the bound alone decides, as before.
  assert.equal(wholeModelU8S7(db(MEAN_DECIDES_AT_OR_BELOW_DB + 0.1), { mean: 0.45, lower: -1.23, rows: 16 }), undefined);
  assert.equal(wholeModelU8S7(db(-1.41), { mean: 0.45, lower: -1.23, rows: 1 }), undefined, "one row bounds nothing");
  assert.equal(MEAN_DECIDES_AT_OR_BELOW_DB, 0);
});

test("rowDifference: the pooled difference is the pooled SQNRs' and its bound the jackknife's, two outputs, the worst one each time", () => {
  // Two outputs; the worst output changes when a row is left out. Energies by hand: output "a" worse on rows 0 and 1,
  // "b" on row 2.
  const rows = (noise: [number, number][]) => {
    const r = noise.map(([a, b]) => new Map([["a", { signal: 1, noise: a }], ["b", { signal: 1, noise: b }]]));
    return { rows: r, pooled: new Map() };
  };
  const B: [number, number][] = [[0.04, 0.01], [0.02, 0.01], [0.001, 0.03]];
  const G: [number, number][] = [[0.01, 0.01], [0.01, 0.005], [0.001, 0.02]];
  const base = rows(B);
  const d = rowDifference(base, rows(G));
  const worst = (noise: [number, number][]) => Math.max(...[0, 1].map((k) => noise.reduce((a, n) => a + n[k]!, 0) / noise.length));
  const db = (b: [number, number][], g: [number, number][]) => 10 * Math.log10(worst(b) / worst(g));
  assert.ok(Math.abs(d.pooled - db(B, G)) < 1e-9, `${d.pooled} against ${db(B, G)}`);
  const left = [0, 1, 2].map((i) => db(B.filter((_, j) => j !== i), G.filter((_, j) => j !== i)));
  const m = left.reduce((a, x) => a + x, 0) / 3;
  const se = Math.sqrt((2 / 3) * left.reduce((a, x) => a + (x - m) ** 2, 0));
  assert.ok(Math.abs(d.pooledLower - (d.pooled - 2 * se)) < 1e-9, `${d.pooledLower} against ${d.pooled - 2 * se}`);
  assert.equal(d.bound, Math.max(d.lower, d.pooledLower));
  assert.equal(d.rows, 3);
  // Identical files: no difference either way, and the bounds are 0.
  const same = rowDifference(base, base);
  assert.deepEqual([same.mean, same.pooled, same.lower, same.pooledLower], [0, 0, 0, 0]);
});
