// Learned rounding: GPTQ error feedback on a fixed grid (pure), the sampled im2col Hessian of a Conv against
// onnxruntime's own Conv, and the two users: static INT8 (refineRounding) and FP4 (lowBitModelCalibrated with
// rounding: "learned"), each against nearest rounding on a model built in code with correlated input channels
// (where the choice of rounding matters: with independent inputs error feedback has nothing to exploit).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import type { TensorProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import type { Feeds } from "../../../engine/data/feeds";
import { seededRandom } from "../../../engine/data/random";
import { gptqRound, gptqRoundWindows, HessianAccumulator, outputSqnrDbGroups } from "../../../engine/lowbit/gptq";
import { collectLayerHessians, convGeometry } from "../../../engine/lowbit/hessian";
import { learnFp4Rounding, lowBitModel, lowBitModelCalibrated, type LearnedRoundingOption, type LowBitOptions } from "../../../engine/lowbit/index";
import { forEachGraph } from "../../../engine/onnx/graph";
import { Model } from "../../../engine/onnx/model";
import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { DataType } from "../../../engine/onnx/dtype";
import { makeTensor, readTensor } from "../../../engine/onnx/tensor";
import { checkSequences } from "../../../engine/quant/sequence-check";
import { adaRound, refineRounding } from "../../../engine/recovery/index";
import { quantizeStatic as quantizeStaticFile } from "../../../engine/recovery/rounding-choice";
import { F, init, model, outputs, outputSqnr, quantize, rand, sequenceModel } from "./build";
import { ptq, said } from "../cli/ptq-child";
import { loopConvFeeds, loopConvModel, loopFeeds, loopModel } from "../quant/subgraph-check";
import { tempDir } from "../../temp";

/** Batches whose channels share one smooth component (as neighbouring channels and pixels of real images do). */
function correlated(dims: number[], count: number, seed: number): Feeds[] {
  const next = seededRandom(seed);
  const [b, c, h, w] = dims as [number, number, number, number];
  return Array.from({ length: count }, () => {
    const data = new Float32Array(b * c * h * w);
    for (let n = 0; n < b; n++) {
      const common = Float32Array.from({ length: h * w }, (_, i) => Math.sin((i % w) / 3 + Math.floor(i / w) / 5 + 6 * next()) + 0.5);
      for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) data[((n * c + ch) * h * w) + i] = common[i]! * (1 + 0.3 * next()) + 0.2 * (next() - 0.5);
    }
    return { x: { data, dims } };
  });
}

const CIN = 8;
const COUT = 16;
function convModel(attrs = [attr.ints("pads", [1, 1, 1, 1])], out = [4, COUT, 10, 10]) {
  return model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: attrs })],
    ["x", [4, CIN, 10, 10]],
    ["y", out],
    [init("W", [COUT, CIN, 3, 3], rand(COUT * CIN * 9, 7, -0.5, 0.5)), init("B", [COUT], rand(COUT, 8, -0.1, 0.1))],
  );
}

/** A depthwise 3×3 Conv (one group per channel) with a bias. */
function depthwiseModel() {
  return model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "dw", attributes: [attr.int("group", CIN), attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [4, CIN, 10, 10]],
    ["y", [4, CIN, 10, 10]],
    [init("W", [CIN, 1, 3, 3], rand(CIN * 9, 21, -0.5, 0.5)), init("B", [CIN], rand(CIN, 22, -0.1, 0.1))],
  );
}

test("gptqRound: error feedback on a fixed grid lowers the output error below nearest rounding; a float bias row takes the mean", () => {
  const [k, n, rows] = [24, 6, 400];
  const next = seededRandom(3);
  const x: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const z = next();
    x.push([...Array.from({ length: k }, () => z + 0.2 * next()), 1]); // correlated inputs and the bias's constant 1
  }
  const h = new HessianAccumulator(k + 1);
  for (const row of x) h.addRow(Float64Array.from(row));
  const w = Float64Array.from({ length: (k + 1) * n }, () => next() - 0.5);
  const step = 0.125;
  const grid = (v: number) => Math.round(v / step) * step;
  const nearest = Float64Array.from(w, (v, i) => (i < k * n ? grid(v) : v));
  const { values } = gptqRound(w, k + 1, n, h.matrix(), grid, { floatRows: 1 });
  for (let i = 0; i < k * n; i++) assert.equal(values[i], grid(values[i]!), "every weight row on the grid");
  const err = (q: Float64Array) => {
    let e = 0;
    let mean = 0;
    for (const row of x) {
      for (let c = 0; c < n; c++) {
        let d = 0;
        for (let i = 0; i <= k; i++) d += row[i]! * (w[i * n + c]! - q[i * n + c]!);
        e += d * d;
        mean += d;
      }
    }
    return { e, mean: Math.abs(mean) / (rows * n) };
  };
  const [a, b] = [err(nearest), err(values)];
  assert.ok(b.e < a.e / 4, `output error ${a.e.toFixed(3)} → ${b.e.toFixed(3)}`);
  assert.ok(b.mean < 1e-3, `mean output error ${b.mean}`);
});

test("the sampled im2col Hessian is the Conv's: wᵀHw per output channel equals Σ y² from onnxruntime (pads, strides, dilations)", async () => {
  const attrs = [attr.ints("pads", [1, 0, 2, 2]), attr.ints("strides", [2, 1]), attr.ints("dilations", [1, 2])];
  const m = model(
    [makeNode("Conv", ["x", "W"], ["y"], { name: "conv", attributes: attrs })],
    ["x", [2, 3, 7, 6]],
    ["y", [2, 4, 4, 4]],
    [init("W", [4, 3, 3, 3], rand(4 * 27, 11))],
  );
  const data = [{ x: { data: rand(2 * 3 * 7 * 6, 12), dims: [2, 3, 7, 6] } }];
  const geo = convGeometry(m.graph.node[0]!, [4, 3, 3, 3]);
  assert.ok(typeof geo !== "string");
  const got = (await collectLayerHessians(m, [{ key: "conv", tensor: "x", k: 27, conv: geo, bias: false }], data, { rowsPerBatch: 1000 })).get("conv")!;
  const h = { matrix: got.matrices[0]!, rows: got.rows };
  const y = await outputs(m, data);
  assert.equal(h.rows, y.length / 4, "every output position once");
  const w = rand(4 * 27, 11);
  for (let c = 0; c < 4; c++) {
    let quad = 0;
    for (let i = 0; i < 27; i++) for (let j = 0; j < 27; j++) quad += w[c * 27 + i]! * h.matrix[i * 27 + j]! * w[c * 27 + j]!;
    let sum = 0;
    for (let i = 0; i < y.length; i++) if (Math.floor(i / 16) % 4 === c) sum += y[i]! ** 2;
    assert.ok(Math.abs(quad - sum) < 1e-4 * sum, `channel ${c}: ${quad} vs ${sum}`);
  }
  assert.match(String(convGeometry(makeNode("Conv", ["x", "W"], ["y"], { attributes: [attr.int("group", 3)] }), [4, 1, 3, 3])), /group 3 does not divide its 4 output channels/);
});

test("a grouped Conv gets one Hessian per group, from its own input channels", async () => {
  const w = rand(4 * 2 * 9, 13);
  const m = model(
    [makeNode("Conv", ["x", "W"], ["y"], { name: "conv", attributes: [attr.int("group", 2), attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [1, 4, 5, 5]],
    ["y", [1, 4, 5, 5]],
    [init("W", [4, 2, 3, 3], w)],
  );
  const data = [{ x: { data: rand(100, 14), dims: [1, 4, 5, 5] } }];
  const geo = convGeometry(m.graph.node[0]!, [4, 2, 3, 3]);
  assert.ok(typeof geo !== "string" && geo.length === 2);
  const got = (await collectLayerHessians(m, [{ key: "conv", tensor: "x", k: 18, conv: geo, bias: false }], data, { rowsPerBatch: 1000 })).get("conv")!;
  const y = await outputs(m, data);
  for (let c = 0; c < 4; c++) {
    const h = got.matrices[Math.floor(c / 2)]!;
    let quad = 0;
    for (let i = 0; i < 18; i++) for (let j = 0; j < 18; j++) quad += w[c * 18 + i]! * h[i * 18 + j]! * w[c * 18 + j]!;
    const sum = y.subarray(c * 25, (c + 1) * 25).reduce((a, v) => a + v * v, 0);
    assert.ok(Math.abs(quad - sum) < 1e-4 * sum, `channel ${c}: ${quad} vs ${sum}`);
  }
});

test("a windowed Conv Hessian is the whole one's diagonal blocks, each group's windows in order, from the same patches", async () => {
  const m = model(
    [makeNode("Conv", ["x", "W"], ["y"], { name: "conv", attributes: [attr.int("group", 2), attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [2, 4, 6, 6]],
    ["y", [2, 4, 6, 6]],
    [init("W", [4, 2, 3, 3], rand(4 * 18, 15))],
  );
  const data = [{ x: { data: rand(2 * 4 * 36, 16), dims: [2, 4, 6, 6] } }, { x: { data: rand(2 * 4 * 36, 17), dims: [2, 4, 6, 6] } }];
  const geo = convGeometry(m.graph.node[0]!, [4, 2, 3, 3]);
  assert.ok(typeof geo !== "string");
  const target = { key: "conv", tensor: "x", k: 18, conv: geo, bias: false };
  // 40 of each batch's 72 patches: the windows must sample the same ones as the whole matrix.
  const whole = (await collectLayerHessians(m, [target], data, { rowsPerBatch: 40 })).get("conv")!;
  const windowed = (await collectLayerHessians(m, [{ ...target, window: 8 }], data, { rowsPerBatch: 40 })).get("conv")!;
  assert.equal(windowed.rows, whole.rows);
  assert.deepEqual(windowed.matrices.map((h) => h.length), [64, 64, 4, 64, 64, 4]);
  windowed.matrices.forEach((h, i) => {
    const [g, s, size] = [Math.floor(i / 3), [0, 8, 16][i % 3]!, [8, 8, 2][i % 3]!];
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) assert.equal(h[r * size + c], whole.matrices[g]![(s + r) * 18 + s + c], `group ${g} window ${i % 3} [${r}, ${c}]`);
  });
});

test("a windowed Hessian with a bias carries the bias's constant input in every window: the whole matrix's rows and columns of that window and the bias", async () => {
  const m = convModel();
  const data = correlated([4, CIN, 10, 10], 2, 18);
  const geo = convGeometry(m.graph.node[0]!, [COUT, CIN, 3, 3]);
  assert.ok(typeof geo !== "string");
  const target = { key: "conv", tensor: "x", k: 72, conv: geo, bias: true };
  const whole = (await collectLayerHessians(m, [target], data, { rowsPerBatch: 60 })).get("conv")!;
  const windowed = (await collectLayerHessians(m, [{ ...target, window: 32 }], data, { rowsPerBatch: 60 })).get("conv")!;
  assert.deepEqual(windowed.matrices.map((h) => h.length), [33 * 33, 33 * 33, 9 * 9]);
  windowed.matrices.forEach((h, w) => {
    const [s, size] = [32 * w, [32, 32, 8][w]!];
    const at = (i: number) => (i < size ? s + i : 72); // the window's rows, then the bias's
    for (let r = 0; r <= size; r++) for (let c = 0; c <= size; c++) assert.equal(h[r * (size + 1) + c], whole.matrices[0]![at(r) * 73 + at(c)], `window ${w} [${r}, ${c}]`);
  });
});

test("gptqRoundWindows: a bias row in every window ends at the least-squares correction for all windows' rounding; outputSqnrDbGroups counts its own block once", () => {
  // Rows that each feed one window only (so the block-diagonal Hessian with the bias is the whole one, exactly).
  const [k, n, rows, win] = [24, 5, 600, 8];
  const next = seededRandom(9);
  const x: Float64Array[] = [];
  for (let r = 0; r < rows; r++) {
    const row = new Float64Array(k + 1);
    const w0 = (r % 3) * win;
    const z = next();
    for (let i = 0; i < win; i++) row[w0 + i] = z + 0.3 * next() + 0.5;
    row[k] = 1;
    x.push(row);
  }
  const windows = [0, 1, 2].map((wi) => {
    const acc = new HessianAccumulator(win + 1);
    for (const row of x) acc.addRow(Float64Array.from([...row.subarray(wi * win, wi * win + win), 1]));
    return acc.matrix();
  });
  const w = Float64Array.from({ length: (k + 1) * n }, () => next() - 0.5);
  const step = 0.1;
  const grid = (v: number) => Math.round(v / step) * step;
  const { values } = gptqRoundWindows(w, k + 1, n, windows, grid, { floatRows: 1, damping: 1e-9 });
  for (let i = 0; i < k * n; i++) assert.ok(Math.abs(values[i]! - grid(values[i]!)) < 1e-12, "every weight on the grid");
  // The bias that minimizes ‖X(W − Ŵ)‖ for these weights: the mean output error, per column.
  for (let c = 0; c < n; c++) {
    let mean = 0;
    for (const row of x) for (let i = 0; i < k; i++) mean += row[i]! * (w[i * n + c]! - values[i * n + c]!);
    const best = w[k * n + c]! + mean / rows;
    assert.ok(Math.abs(values[k * n + c]! - best) < 1e-6, `column ${c}: bias ${values[k * n + c]} vs ${best}`);
  }
  // The windowed SQNR equals ‖XW‖² / ‖X(W − Ŵ)‖² computed from the rows.
  let [sig, noise] = [0, 0];
  for (const row of x) {
    for (let c = 0; c < n; c++) {
      let [a, d] = [0, 0];
      for (let i = 0; i <= k; i++) [a, d] = [a + row[i]! * w[i * n + c]!, d + row[i]! * (w[i * n + c]! - values[i * n + c]!)];
      [sig, noise] = [sig + a * a, noise + d * d];
    }
  }
  const db = outputSqnrDbGroups(w, values, [windows], k + 1, n, 1);
  assert.ok(Math.abs(db - 10 * Math.log10(sig / noise)) < 1e-6, `${db} vs ${10 * Math.log10(sig / noise)}`);
});

test("refineRounding (static INT8): the outputs get closer to float, only weight codes and bias codes change, in range", async () => {
  const m = convModel();
  const calib = correlated([4, CIN, 10, 10], 8, 1);
  const { float, q } = await quantize(m, calib);
  const before = q.toBytes();
  const { model: r, report } = await refineRounding(float, q, calib);
  assert.deepEqual(q.toBytes(), before, "input model untouched");
  assert.equal(report.layers.length, 1);
  const l = report.layers[0]!;
  assert.equal(l.bias, "B_quantized");
  assert.ok(l.afterDb > l.beforeDb + 1 && l.changed > 0, `layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB, ${(l.changed * 100).toFixed(0)} % changed`);
  const evalData = correlated([4, CIN, 10, 10], 4, 900);
  const [s0, s1] = [await outputSqnr(m, q, evalData), await outputSqnr(m, r, evalData)];
  assert.ok(s1 > s0 + 0.3, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB on held-out data`);
  const init = (mm: typeof q, name: string) => Array.from(readTensor(mm.graph.initializer.find((t) => t.name === name)!).data as ArrayLike<number>);
  const changed = q.graph.initializer.filter((t) => JSON.stringify(init(q, t.name)) !== JSON.stringify(init(r, t.name))).map((t) => t.name).sort();
  assert.deepEqual(changed, ["B_quantized", "W_quantized"]);
  const [c0, c1] = [init(q, "W_quantized"), init(r, "W_quantized")];
  assert.ok(Math.min(...c1) >= Math.min(...c0) && Math.max(...c1) <= Math.max(...c0), "codes stay in the range convert() used");
  assert.equal(r.graph.node.length, q.graph.node.length);
  const inFloat = await refineRounding(float, q, calib, { inputs: "float" });
  assert.equal(inFloat.report.inputs, "float");
  assert.ok(inFloat.report.layers[0]!.afterDb > inFloat.report.layers[0]!.beforeDb);
});

test("refineRounding on a depthwise Conv: each channel fitted on its own input", async () => {
  const m = depthwiseModel();
  const calib = correlated([4, CIN, 10, 10], 8, 4);
  const { float, q } = await quantize(m, calib, { perChannel: false });
  const { model: r, report } = await refineRounding(float, q, calib);
  assert.deepEqual(report.skipped, []);
  const l = report.layers[0]!;
  assert.ok(l.afterDb > l.beforeDb, `layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB`);
  const evalData = correlated([4, CIN, 10, 10], 4, 903);
  const [s0, s1] = [await outputSqnr(m, q, evalData), await outputSqnr(m, r, evalData)];
  assert.ok(s1 > s0, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB on held-out data`);
});

test("adaRound says why a layer keeps nearest rounding; refineRounding takes a K past its window in windows; both refuse a model without quantized weights", async () => {
  const m = convModel([attr.ints("pads", [1, 1, 1, 1])]);
  const calib = correlated([4, CIN, 10, 10], 4, 1);
  const { float, q } = await quantize(m, calib);
  const small = await adaRound(float, q, calib, { maxK: 10, iterations: 5 });
  assert.equal(small.report.layers.length, 0);
  assert.match(small.report.skipped[0]!.reason, /K = 72 weight rows: above maxK 10/);
  // K = 72 in windows of 32, 32 and 8 rows, the bias's constant input in each.
  const [whole, windowed] = [await refineRounding(float, q, calib), await refineRounding(float, q, calib, { window: 32 })];
  assert.deepEqual(windowed.report.skipped, []);
  const [lw, lv] = [whole.report.layers[0]!, windowed.report.layers[0]!];
  assert.ok(lv.afterDb > lv.beforeDb + 1, `windows: layer ${lv.beforeDb.toFixed(1)} → ${lv.afterDb.toFixed(1)} dB (whole ${lw.afterDb.toFixed(1)})`);
  assert.notDeepEqual(windowed.model.toBytes(), whole.model.toBytes(), "error feedback stops at the windows");
  const evalData = correlated([4, CIN, 10, 10], 4, 905);
  const [s0, sv] = [await outputSqnr(m, q, evalData), await outputSqnr(m, windowed.model, evalData)];
  assert.ok(sv > s0 + 0.3, `held out: nearest ${s0.toFixed(2)} → windows ${sv.toFixed(2)} dB`);
  await assert.rejects(refineRounding(float, float, calib), /has no quantized weights; pass the QDQ model from convert\(\)/);
});

test("FP4 learned rounding: closer outputs than nearest on the same block scales, the bias corrected; needs data", async () => {
  const m = convModel();
  const calib = correlated([4, CIN, 10, 10], 8, 2);
  const evalData = correlated([4, CIN, 10, 10], 4, 901);
  // A target the all-FP4 model meets: at the default one protection would step this one small layer up to int8 (the
  // cap is raised to the all-FP4 file's size), leaving nothing to fit.
  const base = { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", rounding: "nearest", protect: { minOutputSqnrDb: 0 } } as const;
  const near = await lowBitModelCalibrated(m, base, calib);
  const learned = await lowBitModelCalibrated(m, { ...base, rounding: "learned" }, calib);
  const [s0, s1] = [await outputSqnr(m, near.model, evalData), await outputSqnr(m, learned.model, evalData)];
  assert.ok(s1 > s0 + 2, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB on held-out data`);
  const l = learned.report.layers[0]!;
  assert.ok(l.outputSqnrDb! > l.rtnOutputSqnrDb! + 2, `layer ${l.rtnOutputSqnrDb} → ${l.outputSqnrDb} dB`);
  assert.match(learned.report.notes.join("\n"), /learned rounding: 1 FP4 layer\(s\), mean layer output SQNR/);
  const bias = (mm: typeof m) => [...(readTensor(mm.graph.initializer.find((t) => t.name === "B")!).data as Float32Array)];
  assert.notDeepEqual(bias(learned.model), bias(m), "the bias absorbed the rounding's mean error");
  assert.deepEqual(bias(near.model), bias(m));
  assert.throws(() => lowBitModel(m, { ...base, rounding: "learned" }), /learned rounding needs calibration data/);
});

/** Two Convs with a Relu between: protection can step one up to int8 and leave the other FP4. */
function twoConvs() {
  return model(
    [
      makeNode("Conv", ["x", "W1", "B1"], ["h"], { name: "conv1", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Relu", ["h"], ["r"], { name: "relu" }),
      makeNode("Conv", ["r", "W2", "B2"], ["y"], { name: "conv2", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    ],
    ["x", [4, CIN, 10, 10]],
    ["y", [4, COUT, 10, 10]],
    [
      init("W1", [COUT, CIN, 3, 3], rand(COUT * CIN * 9, 7, -0.5, 0.5)),
      init("B1", [COUT], rand(COUT, 8, -0.1, 0.1)),
      init("W2", [COUT, COUT, 3, 3], rand(COUT * COUT * 9, 9, -0.3, 0.3)),
      init("B2", [COUT], rand(COUT, 10, -0.1, 0.1)),
    ],
  );
}

/**
 * Correlated batches for twoConvs with half their channels negated on every other batch: codes fitted on one kind
 * exploit a correlation the other kind reverses, so rows they were not fitted on read them worse.
 */
function halfNegatedEveryOther(count: number, seed: number): Feeds[] {
  return correlated([4, CIN, 10, 10], count, seed).map((b, i) => {
    const data = Float32Array.from(b.x!.data as Float32Array);
    if (i % 2 === 1) for (let k = 0; k < data.length; k++) if (Math.floor(k / 100) % CIN >= CIN / 2) data[k] = -data[k]!;
    return { x: { data, dims: [4, CIN, 10, 10] } };
  });
}

test("FP4 rounding auto: learned codes where rows they were not fitted on measure them better, nearest ones where they do not; adaround refused", async () => {
  const m = twoConvs();
  // A target the all-FP4 model meets: at the default one protection would step these small layers up to int8.
  const base = { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", rounding: "nearest", protect: { minOutputSqnrDb: 0 } } as const;
  // Correlated channels: learned codes gain on rows they were not fitted on, so auto writes what learned writes.
  const calib = correlated([4, CIN, 10, 10], 8, 2);
  const steps: Record<string, string[]> = { learned: [], auto: [] };
  const counting = (k: string) => ({ onRoundingProgress: (done: number, total: number) => void steps[k]!.push(`${done}/${total}`) });
  const [learned, auto] = [await lowBitModelCalibrated(m, { ...base, rounding: "learned" }, calib, counting("learned")), await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, calib, counting("auto"))];
  assert.deepEqual(steps, { learned: ["0/1", "1/1"], auto: ["0/4", "1/4", "2/4", "3/4", "4/4"] }, "progress: each fit, auto's measurement");
  const said = (r: typeof auto) => r.report.notes.find((n) => n.startsWith("rounding auto")) ?? "";
  assert.match(said(auto), /^rounding auto chose learned FP4 rounding: learned codes fitted on every other of 8 calibration batches and judged on the batches between, and the other way round, on the layers protection left FP4: worst-output SQNR nearest [\d.]+ dB, learned [\d.]+ dB; learned − nearest per batch: mean \+[\d.]+ dB, lower bound \+[\d.]+ dB/);
  assert.deepEqual(auto.model.toBytes(), learned.model.toBytes());
  // Every other batch with half its channels negated: codes fitted on one kind exploit a correlation the other kind
  // reverses, so rows they were not fitted on read them worse; auto writes nearest codes.
  const flat = halfNegatedEveryOther(8, 3);
  const [near, kept] = [await lowBitModelCalibrated(m, base, flat), await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, flat)];
  assert.match(said(kept), /^rounding auto kept nearest FP4 rounding: /);
  assert.deepEqual(kept.model.toBytes(), near.model.toBytes());
  assert.ok(!kept.report.notes.some((n) => n.startsWith("learned rounding")), "no learned-rounding note where nearest codes are written");
  // Too few rows to judge, and the modes auto is not for.
  const few = await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, calib.slice(0, 3));
  assert.match(said(few), /^rounding auto kept nearest FP4 rounding: 3 calibration row\(s\), too few/);
  await assert.rejects(lowBitModelCalibrated(m, { mode: "int4", rounding: "adaround" }, calib), /rounding "adaround" is not for int4 weights: static INT8 takes it; for int4 use rounding "learned" or "auto"/);
  assert.throws(() => lowBitModel(m, { ...base, rounding: "auto" }), /rounding auto measures learned rounding, which needs calibration data/);
});

test("FP4 rounding auto on a sequence model: learned codes only where no fewer judged rows decode as the float model's", async () => {
  // x[N, 24, 32] · W[32, 10] → Softmax: [batch, time, classes] rows, decoded greedily (engine/quant/sequence-check).
  const { m, rows } = sequenceModel(24, 32, 10);
  const base = { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", protect: false, rounding: "nearest" } as const;
  const [near, auto] = [await lowBitModelCalibrated(m, base, rows), await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, rows)];
  const note = auto.report.notes.find((n) => n.startsWith("rounding auto")) ?? "";
  const lines = /sequence outputs decode as the float model's on (\d+) of 16 judged rows with learned codes, (\d+) with nearest$/.exec(note);
  assert.ok(lines, note);
  const [learnedSame, nearSame] = [Number(lines[1]), Number(lines[2])];
  // What nearest codes decode, counted again here: the note's count is the nearest file's.
  const counted = await checkSequences(m, near.model, rows);
  assert.equal(counted!.same, nearSame);
  assert.equal(note.startsWith("rounding auto chose learned"), learnedSame >= nearSame, note);
  assert.notDeepEqual(auto.model.toBytes(), near.model.toBytes(), `learned codes decode ${learnedSame} rows alike, nearest ${nearSame}: learned written`);
});

test("int4 rounding auto (the default with data): GPTQ codes where rows their Hessians did not come from measure them better, nearest ones where they do not", async () => {
  const m = twoConvs();
  const base = { mode: "int4", blockSize: 16 } as const;
  const calib = correlated([4, CIN, 10, 10], 8, 2);
  const steps: string[] = [];
  const [gptq, auto] = [
    await lowBitModelCalibrated(m, { ...base, rounding: "learned" }, calib),
    await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, calib, { onRoundingProgress: (done, total) => void steps.push(`${done}/${total}`) }),
  ];
  assert.deepEqual(steps, ["0/3", "1/3", "2/3", "3/3"], "progress: each fit, the measurement");
  const said = (r: typeof auto) => r.report.notes.find((n) => n.startsWith("rounding auto")) ?? "";
  assert.match(said(auto), /^rounding auto chose GPTQ int4 rounding: GPTQ codes fitted on every other of 8 calibration batches and judged on the batches between, and the other way round, on the layers protection left int4: worst-output SQNR nearest [\d.]+ dB, GPTQ [\d.]+ dB; GPTQ − nearest per batch: mean \+[\d.]+ dB, lower bound \+[\d.]+ dB/);
  assert.deepEqual(auto.model.toBytes(), gptq.model.toBytes(), "GPTQ's codes from all the data written");
  // Half the channels negated on every other batch (as for FP4 above): GPTQ's codes read worse held out; nearest written.
  const flat = halfNegatedEveryOther(8, 3);
  const [near, kept] = [await lowBitModelCalibrated(m, { ...base, rounding: "nearest" }, flat), await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, flat)];
  assert.match(said(kept), /^rounding auto kept nearest int4 rounding: /);
  assert.deepEqual(kept.model.toBytes(), near.model.toBytes());
  const few = await lowBitModelCalibrated(m, { ...base, rounding: "auto" }, calib.slice(0, 3));
  assert.match(said(few), /^rounding auto kept nearest int4 rounding: 3 calibration row\(s\), too few/);
  // Not asked, with data: auto, int4's default (its file and its note, which says so); an algorithm asked is kept.
  const byDefault = await lowBitModelCalibrated(m, base, calib);
  assert.deepEqual(byDefault.model.toBytes(), auto.model.toBytes());
  assert.match(said(byDefault), /^rounding auto chose GPTQ int4 rounding: .*\. Rounding auto is the low-bit modes' default with calibration data; rounding "nearest" skips its fits$/);
  assert.doesNotMatch(said(auto), /default/, "asked: no word of the default");
  const rtn = await lowBitModelCalibrated(m, { ...base, algorithm: "rtn" }, calib);
  assert.equal(said(rtn), "", "algorithm rtn asked: nothing fitted");
  assert.deepEqual(rtn.model.toBytes(), (await lowBitModelCalibrated(m, { ...base, rounding: "nearest" }, calib)).model.toBytes());
  assert.notDeepEqual(rtn.model.toBytes(), gptq.model.toBytes());
});

test("FP4 learned rounding reads calibration rows up to ROUNDING_ROWS, not only its first 8 batches: 32 single samples", async () => {
  const m = model(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
    ["x", [1, CIN, 10, 10]],
    ["y", [1, COUT, 10, 10]],
    [init("W", [COUT, CIN, 3, 3], rand(COUT * CIN * 9, 7, -0.5, 0.5)), init("B", [COUT], rand(COUT, 8, -0.1, 0.1))],
  );
  const samples = correlated([1, CIN, 10, 10], 40, 4);
  let read = 0;
  const counted = async function* () {
    for (const f of samples) {
      read++;
      yield f;
    }
  };
  await lowBitModelCalibrated(m, { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", rounding: "learned" }, counted());
  assert.equal(read, 32, "32 single samples (ROUNDING_ROWS), where the row budget's 8 batches were all it read");
});

/**
 * Protection with codes fitted on the calibration rows (FP4 learned, int4 GPTQ): on twoConvs, with a target between
 * what all-low-bit nearest and fitted codes read on those rows, the ladder steps up the layer it steps up with nearest
 * codes, and the layer left low-bit gets the fitted codes: the same size, closer held out, and a note with both figures.
 */
async function protectedOnNearest(base: LowBitOptions & LearnedRoundingOption, fitted: string, note: string) {
  const m = twoConvs();
  const calib = correlated([4, CIN, 10, 10], 8, 2);
  const asked = { ...base, rounding: "learned" } as const;
  // All low-bit, measured on the calibration rows: fitted codes read better there than nearest ones.
  const [nearAll, fittedAll] = [await lowBitModelCalibrated(m, { ...base, protect: false }, calib), await lowBitModelCalibrated(m, { ...asked, protect: false }, calib)];
  const [n0, f0] = [nearAll.report.output!.sqnrDb, fittedAll.report.output!.sqnrDb];
  assert.ok(f0 > n0 + 1, `all low-bit on the fitting rows: nearest ${n0.toFixed(2)}, ${fitted} ${f0.toFixed(2)} dB`);
  // A target between the two: nearest codes need a layer stepped up; judged on its own fitting rows, fitted would not.
  const protect = { minOutputSqnrDb: Math.min(n0 + 1.5, (n0 + f0) / 2), maxSize: Infinity };
  const near = await lowBitModelCalibrated(m, { ...base, protect }, calib);
  const got = await lowBitModelCalibrated(m, { ...asked, protect }, calib);
  const stepped = (r: typeof near) => r.report.output!.protected.map((p) => `${p.node} ${p.as}`);
  assert.equal(stepped(near).length, 1, JSON.stringify(near.report.output));
  assert.deepEqual(stepped(got), stepped(near), "the same layer stepped up as with nearest codes");
  assert.equal(got.model.fileBytes(), near.model.fileBytes());
  assert.notDeepEqual(got.model.toBytes(), near.model.toBytes(), `the layer left low-bit has ${fitted} codes`);
  const said = got.report.notes.find((n) => n.startsWith(note));
  assert.match(said ?? "", new RegExp(`worst output SQNR on those 8 batch\\(es\\) [\\d.]+ dB with nearest codes, [\\d.]+ dB with the ${fitted} codes written$`));
  assert.ok(got.report.output!.sqnrDb >= near.report.output!.sqnrDb, `the written model's figure is the ${fitted} one's`);
  const evalData = correlated([4, CIN, 10, 10], 4, 907);
  const [s0, s1] = [await outputSqnr(m, near.model, evalData), await outputSqnr(m, got.model, evalData)];
  assert.ok(s1 > s0, `held out: nearest ${s0.toFixed(2)}, ${fitted} ${s1.toFixed(2)} dB at the same size`);
}

test("FP4 learned rounding under protection: protection chooses on nearest codes (learned ones read better on their own fitting rows), the layers left FP4 get learned codes", async () => {
  await protectedOnNearest({ mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", rounding: "nearest" }, "learned", "learned rounding on protection's choice");
});

test("FP4 learned rounding on a K past its Hessian window: error feedback per window, the bias still corrected", async () => {
  const m = convModel(); // K = 72: windows of 32, 32 and 8 rows
  const calib = correlated([4, CIN, 10, 10], 8, 2);
  const evalData = correlated([4, CIN, 10, 10], 4, 906);
  const base = { mode: "fp4", fp4Format: "nvfp4", smallLayers: "fp4", protect: false, rounding: "nearest" } as const;
  const near = await lowBitModelCalibrated(m, base, calib);
  const whole = await learnFp4Rounding(m, base, calib);
  const windowed = await learnFp4Rounding(m, base, calib, { window: 32 });
  assert.deepEqual(windowed.skipped, []);
  const [lw, lv] = [whole.learned.get("conv")!, windowed.learned.get("conv")!];
  assert.ok(lv.afterDb > lv.beforeDb + 2, `windows: layer ${lv.beforeDb.toFixed(1)} → ${lv.afterDb.toFixed(1)} dB (whole ${lw.afterDb.toFixed(1)})`);
  assert.notDeepEqual(lv.blocks.codes, lw.blocks.codes, "error feedback stops at the windows");
  assert.ok(lv.bias && lv.bias.values.some((v, i) => v !== lw.bias!.values[i]), "the bias absorbed each window's mean error");
  const learned = lowBitModel(m, base, undefined, windowed.learned);
  const [s0, s1] = [await outputSqnr(m, near.model, evalData), await outputSqnr(m, learned.model, evalData)];
  assert.ok(s1 > s0 + 1, `held out: nearest ${s0.toFixed(2)} → windows ${s1.toFixed(2)} dB`);
});

test("ptq quantize --rounding learned writes the model with its codes chosen again (static INT8)", async () => {
  const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const { encodeNpy } = await import("../../../engine/data/npy");
  const { Model } = await import("../../../engine/onnx/model");
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-rounding-"));
  const m = convModel();
  await m.save(path.join(dir, "conv.onnx"));
  mkdirSync(path.join(dir, "calib"));
  const calib = correlated([4, CIN, 10, 10], 8, 3);
  const all = new Float32Array(calib.length * 4 * CIN * 100);
  calib.forEach((b, i) => all.set(b.x!.data as Float32Array, i * b.x!.data.length));
  writeFileSync(path.join(dir, "calib", "x.npy"), encodeNpy(all, [32, CIN, 10, 10]));
  const args = (out: string) => [path.join(dir, "conv.onnx"), "-o", path.join(dir, out), "--calib", path.join(dir, "calib"), "--batch-size", "4", "--no-optimize"];
  const near0 = ptq("quantize", ...args("near.onnx"), "--rounding", "nearest");
  assert.equal(near0.status, 0, said(near0));
  const learned0 = ptq("quantize", ...args("learned.onnx"), "--rounding", "learned");
  assert.equal(learned0.status, 0, said(learned0));
  assert.match(said(learned0), /\n  learned rounding: 1 layer\(s\) on their inputs from the quantized model, fitted on 8 calibration batches, mean layer output SQNR/);
  const [near, learned] = await Promise.all([Model.load(path.join(dir, "near.onnx")), Model.load(path.join(dir, "learned.onnx"))]);
  const evalData = correlated([4, CIN, 10, 10], 4, 902);
  const [s0, s1] = [await outputSqnr(m, near, evalData), await outputSqnr(m, learned, evalData)];
  assert.ok(s1 > s0 + 0.3, `output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB`);
  assert.equal(learned.graph.node.length, near.graph.node.length);
  rmSync(dir, { recursive: true, force: true });
});

test("int4 learned rounding (GPTQ) on Conv weights: error feedback through their input patches, dense and depthwise, closer outputs than nearest", async () => {
  const dw = depthwiseModel();
  for (const [m, name] of [[convModel(), "conv"], [dw, "dw"]] as const) {
    const calib = correlated([4, CIN, 10, 10], 4, 5);
    const evalData = correlated([4, CIN, 10, 10], 4, 904);
    const near = await lowBitModelCalibrated(m, { mode: "int4", rounding: "nearest", protect: false }, calib);
    const { model: learned, report } = await lowBitModelCalibrated(m, { mode: "int4", rounding: "learned", protect: false }, calib);
    const l = report.layers[0]!;
    assert.equal(l.node, name);
    assert.ok(l.outputSqnrDb! > l.rtnOutputSqnrDb! + 1, `${name}: layer ${l.rtnOutputSqnrDb!.toFixed(1)} → ${l.outputSqnrDb!.toFixed(1)} dB`);
    assert.match(report.notes.join("\n"), /learned rounding \(GPTQ\) calibration: .*1 Conv\(s\) on \d+ sampled input patches each/);
    assert.ok(!report.notes.some((n) => /rounded to nearest/.test(n)), report.notes.join("\n"));
    const [s0, s1] = [await outputSqnr(m, near.model, evalData), await outputSqnr(m, learned, evalData)];
    assert.ok(s1 > s0, `${name}: output SQNR ${s0.toFixed(2)} → ${s1.toFixed(2)} dB on held-out data`);
    assert.equal(report.output?.batches, 4);
  }
});

test("int4 GPTQ under protection: protection chooses on nearest codes (GPTQ's read better on the rows their Hessians came from), the layers left int4 get GPTQ codes", async () => {
  await protectedOnNearest({ mode: "int4", blockSize: 16, rounding: "nearest" }, "GPTQ", "GPTQ on protection's choice");
});

test("int4 GPTQ codes that read worse than nearest ones on the rows they were fitted on are not written: nearest codes are, with why", async () => {
  // x[64, 64] · W → the first 8 rows only. Most rows pair each feature with its negative, the 8 read rows with itself:
  // GPTQ's error feedback cancels each pair's errors for the many rows and so doubles them for the rows read.
  const [N, K, M, S] = [64, 64, 32, 8];
  const m = model(
    [makeNode("MatMul", ["x", "W"], ["z"], { name: "mm" }), makeNode("Slice", ["z", "start", "end", "axes"], ["y"], { name: "read" })],
    ["x", [N, K]],
    ["y", [S, M]],
    [init("W", [K, M], rand(K * M, 3, -0.5, 0.5)), ...[["start", 0], ["end", S], ["axes", 0]].map(([n, v]) => makeTensor(n as string, DataType.INT64, [1], [v as number]))],
  );
  const calib = Array.from({ length: 8 }, (_, r) => {
    const next = seededRandom(300 + r);
    const data = new Float32Array(N * K);
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < K; k += 2) {
        const a = next() - 0.5;
        data[i * K + k] = a;
        data[i * K + k + 1] = (i < S ? a : -a) + 0.02 * (next() - 0.5);
      }
    }
    return { x: { data, dims: [N, K] } };
  });
  const protect = { minOutputSqnrDb: -100, maxSize: Infinity };
  const near = await lowBitModelCalibrated(m, { mode: "int4", blockSize: 16, rounding: "nearest", protect }, calib);
  const gptq = await lowBitModelCalibrated(m, { mode: "int4", blockSize: 16, rounding: "learned", protect }, calib);
  const note = gptq.report.notes.find((n) => n.startsWith("GPTQ codes not written"));
  const said = /(-?[\d.]+) dB with nearest codes, (-?[\d.]+) dB with the GPTQ codes, on rows GPTQ was fitted on/.exec(note ?? "");
  assert.ok(said && Number(said[2]) < Number(said[1]), gptq.report.notes.join("\n"));
  assert.deepEqual(gptq.model.toBytes(), near.model.toBytes(), "nearest codes written");
  assert.equal(gptq.report.output!.sqnrDb, near.report.output!.sqnrDb, "the report's figure is the file's");
});

test("int4 GPTQ on a Conv whose K exceeds its Hessian window: GPTQ per window, still closer outputs than nearest", async () => {
  const m = convModel(); // K = 8 channels × 3 × 3 = 72: windows of 32, 32 and 8 rows with blocks of 16
  const calib = correlated([4, CIN, 10, 10], 4, 5);
  const evalData = correlated([4, CIN, 10, 10], 4, 904);
  const options = { mode: "int4", blockSize: 16, algorithm: "gptq", protect: false } as const;
  const near = await lowBitModelCalibrated(m, { ...options, algorithm: "rtn" }, calib);
  const whole = await lowBitModelCalibrated(m, options, calib);
  const windowed = await lowBitModelCalibrated(m, { ...options, gptq: { window: 40 } }, calib); // 40 → 32: whole blocks
  const [lw, lv] = [whole.report.layers[0]!, windowed.report.layers[0]!];
  assert.ok(!windowed.report.notes.some((n) => /rounded to nearest/.test(n)), windowed.report.notes.join("\n"));
  assert.ok(lv.outputSqnrDb! > lv.rtnOutputSqnrDb! + 1, `windows: layer ${lv.rtnOutputSqnrDb!.toFixed(1)} → ${lv.outputSqnrDb!.toFixed(1)} dB`);
  assert.notDeepEqual(windowed.model.toBytes(), whole.model.toBytes(), "error feedback stops at the windows");
  const [s0, sw, sv] = [await outputSqnr(m, near.model, evalData), await outputSqnr(m, whole.model, evalData), await outputSqnr(m, windowed.model, evalData)];
  assert.ok(sv > s0, `held out: nearest ${s0.toFixed(2)}, windows ${sv.toFixed(2)} dB (whole ${sw.toFixed(2)}; layer ${lw.outputSqnrDb!.toFixed(1)} dB)`);
});


/**
 * If(cond): then = Gemm(x, Wt[C, K], Bt) → Relu, Wt a main-graph initializer (as exporters keep a body's weights) and
 * Bt the body's own; else = MatMul(x, We[C, K]), We the main graph's. Static INT8 quantizes both bodies in place.
 */
function ifModel(C: number, K: number): Model {
  const thenBranch = makeGraph("then", [makeNode("Gemm", ["x", "Wt", "Bt"], ["t"], { name: "then_gemm" }), makeNode("Relu", ["t"], ["then_out"], { name: "then_relu" })], [], [makeValueInfo("then_out", F, [4, K])], {
    initializers: [init("Bt", [K], rand(K, 32, -0.1, 0.1))],
  });
  const elseBranch = makeGraph("else", [makeNode("MatMul", ["x", "We"], ["else_out"], { name: "else_mm" })], [], [makeValueInfo("else_out", F, [4, K])]);
  const g = makeGraph("g", [makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", thenBranch), attr.graph("else_branch", elseBranch)] })], [makeValueInfo("x", F, [4, C]), makeValueInfo("cond", DataType.BOOL, [])], [makeValueInfo("y", F, [4, K])], {
    initializers: [init("Wt", [C, K], rand(C * K, 30, -0.5, 0.5)), init("We", [C, K], rand(C * K, 31, -0.5, 0.5))],
  });
  return Model.fromProto(makeModel(g, { opsets: { "": 13 }, producerName: "ptq-test" }));
}

/** Batches of 4 rows whose C features share one component per row, each taking the branch `cond` says. */
function ifBatches(C: number, conds: readonly boolean[], seed: number): Feeds[] {
  return conds.map((cond, b) => {
    const next = seededRandom(seed + b);
    const data = new Float32Array(4 * C);
    for (let r = 0; r < 4; r++) {
      const common = Math.sin(6 * next()) + 0.5;
      for (let c = 0; c < C; c++) data[r * C + c] = common * (1 + 0.3 * next()) + 0.2 * (next() - 0.5);
    }
    return { x: { data, dims: [4, C] }, cond: new ort.Tensor("bool", [cond], []) } as Feeds;
  });
}

test("refineRounding inside If bodies: each branch's layer is fitted on the rows that ran it, its codes written where they are stored; a branch no row took keeps nearest codes", async () => {
  const [C, K] = [24, 12];
  const m = ifModel(C, K);
  const calib = ifBatches(C, [true, false, true, false, true, false], 40);
  const { float, q } = await quantize(m, calib);
  const codesOf = (mm: Model, name: string) => {
    let t: TensorProto | undefined;
    forEachGraph(mm.graph, (g) => (t ??= g.initializer.find((x) => x.name === name)));
    return Array.from(readTensor(t!).data as ArrayLike<number>);
  };
  const { model: r, report } = await refineRounding(float, q, calib);
  assert.deepEqual(report.layers.map((l) => l.node).sort(), ["else_mm", "then_gemm"], JSON.stringify(report.skipped));
  for (const l of report.layers) assert.ok(l.afterDb > l.beforeDb && l.changed > 0, `${l.node}: layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB`);
  // The weight codes sit in the main graph, the then-branch's bias codes in its body: both rewritten in place.
  const gemm = report.layers.find((l) => l.node === "then_gemm")!;
  assert.ok(r.graph.initializer.some((t) => t.name === gemm.weight), `${gemm.weight} in the main graph`);
  assert.notDeepEqual(codesOf(r, gemm.weight), codesOf(q, gemm.weight));
  assert.equal(gemm.bias, "Bt_quantized");
  assert.notDeepEqual(codesOf(r, "Bt_quantized"), codesOf(q, "Bt_quantized"));
  for (const cond of [true, false]) {
    const held = ifBatches(C, [cond, cond, cond], 900);
    const [s0, s1] = [await outputSqnr(m, q, held), await outputSqnr(m, r, held)];
    assert.ok(s1 > s0, `branch ${cond ? "then" : "else"} on held-out rows: nearest ${s0.toFixed(2)}, learned ${s1.toFixed(2)} dB`);
  }
  // No row takes the then-branch: its Gemm keeps nearest codes and the report says why.
  const elseOnly = ifBatches(C, [false, false, false], 40);
  const partial = await refineRounding(float, q, elseOnly);
  assert.deepEqual(partial.report.layers.map((l) => l.node), ["else_mm"]);
  assert.deepEqual(partial.report.skipped, [{ node: "then_gemm", reason: "no calibration row ran the body that holds it (an If branch they never took): nearest rounding kept" }]);
  assert.deepEqual(codesOf(partial.model, gemm.weight), codesOf(q, gemm.weight));
});

test("refineRounding inside a Loop body: the MatMul is fitted on its input stacked over the iterations, every one a row", async () => {
  const m = Model.fromProto(loopModel());
  const calib = [1, 2, 3, 4, 5, 6].map(loopFeeds) as Feeds[];
  const { float, q } = await quantize(m, calib);
  const { report } = await refineRounding(float, q, calib);
  // 6 batches of 4 rows: the main graph's MatMul sees 24, the body's 6 × 3 iterations × 4 = 72.
  assert.deepEqual(report.layers.map((l) => [l.node, l.rows]), [["in_mm", 24], ["loop_mm", 72]], JSON.stringify(report.skipped));
  for (const l of report.layers) assert.ok(l.afterDb > l.beforeDb, `${l.node}: layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB`);
});

test("refineRounding on a weight-only Conv inside a Loop body: fitted on the patches of its input stacked over the iterations", async () => {
  const m = Model.fromProto(loopConvModel());
  const calib = [1, 2, 3, 4].map(loopConvFeeds);
  const { float, q } = await quantize(m, calib);
  const { model: r, report } = await refineRounding(float, q, calib);
  // 4 batches × 3 iterations × 2 rows × 24 positions = 576 patches, under the 256-a-batch sampling: 4 × 256 at most.
  assert.deepEqual(report.layers.map((l) => l.node), ["loop_conv"], JSON.stringify(report.skipped));
  const l = report.layers[0]!;
  assert.ok(l.rows === 576 && l.afterDb > l.beforeDb, `${l.rows} rows, layer ${l.beforeDb.toFixed(1)} → ${l.afterDb.toFixed(1)} dB`);
  const held = [7, 8].map(loopConvFeeds);
  const [s0, s1] = [await outputSqnr(m, q, held), await outputSqnr(m, r, held)];
  assert.ok(s1 > s0, `held out: nearest ${s0.toFixed(2)}, learned ${s1.toFixed(2)} dB`);
});

test("quantizeStatic with rounding learned on a model calibration observes nothing (its only weight a Conv in a Loop body, weight-only): fitted on the rows it reads", async () => {
  const calib = [1, 2, 3, 4].map(loopConvFeeds);
  const out = path.join(tempDir("ptq-rounding-"), "q.onnx");
  const summary = await quantizeStaticFile(Model.fromProto(loopConvModel()), out, calib, { rounding: "learned" }, { optimize: false });
  assert.equal(summary.rounding?.method, "learned", summary.rounding?.why);
  assert.equal(summary.rounding?.layers, 1);
  assert.equal(summary.outputCheck?.rows, 4);
});
