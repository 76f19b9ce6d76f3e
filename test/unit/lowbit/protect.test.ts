// Low-bit protection (engine/lowbit/protect): with calibration data the low-bit pass measures the model's outputs
// against the float model's and steps up the layers that cost them most (int8 weights, then float), until a target is
// met or the size cap stops it; on by default with data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { DEFAULT_PROTECT_DB, DEFAULT_PROTECT_MAX_SIZE, lowBitModel, lowBitModelCalibrated, type LowBitOptions } from "../../../engine/lowbit";
import { describeOutput } from "../../../engine/lowbit/describe";
import { sqnr } from "../../../engine/quant/math";
import { createSession } from "../../../engine/runtime/session";
import { rereadable, type Feeds } from "../../../engine/data/feeds";
import { encodeNpy } from "../../../engine/data/npy";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

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

test("without protection the outputs are measured and reported; with it the layer that ruins them gets int8 weights", async () => {
  const model = buildModel();
  const measured = await lowBitModelCalibrated(model, { mode: "int4", protect: false }, batches(2));
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
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits ?? 4]), [["outliers", 8], ["smooth", 4]]);
  assert.ok(report.layers[0]!.sqnrDb > 35, `int8 weight SQNR ${report.layers[0]!.sqnrDb}`);

  const float = await lowBitModelCalibrated(model, { mode: "int4", protect: { minOutputSqnrDb: target, fallback: "float", maxSize: Infinity } } as LowBitOptions, batches(2));
  assert.deepEqual(float.report.layers.map((l) => l.node), ["smooth"]);
  assert.match(float.report.skipped.find((s) => s.node === "outliers")!.reason, /kept float: alone in low bits it brings the outputs to .* dB \(target/);
  assert.ok(float.report.output!.sqnrDb >= target);
});

test("an int8-protected layer is a per-channel int8 DequantizeLinear feeding the node (a Conv's: Cast → Mul, which onnxruntime folds): MatMul, Gemm(transB) and Conv run close to float", async () => {
  const r = rng(5);
  const arr = (n: number) => Float32Array.from({ length: n }, () => 0.3 * r());
  const g = makeGraph(
    "int8_forms",
    [
      makeNode("Gemm", ["x", "Wg", "bg"], ["h"], { name: "gemm", attributes: [attr.int("transB", 1)] }),
      makeNode("MatMul", ["h", "Wm"], ["y"], { name: "matmul" }),
      makeNode("Conv", ["img", "Wc"], ["z"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 64]), makeValueInfo("img", DataType.FLOAT, ["batch", 3, 8, 8])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 24]), makeValueInfo("z", DataType.FLOAT, ["batch", 8, 8, 8])],
    {
      initializers: [
        makeTensor("Wg", DataType.FLOAT, [48, 64], arr(48 * 64)),
        makeTensor("bg", DataType.FLOAT, [48], arr(48)),
        makeTensor("Wm", DataType.FLOAT, [48, 24], arr(48 * 24)),
        makeTensor("Wc", DataType.FLOAT, [8, 3, 3, 3], arr(8 * 27)),
      ],
    },
  );
  const float = Model.fromProto(makeModel(g, { opsets: { "": 11 } }));
  const { model: q, report } = lowBitModel(float, { mode: "fp4", int8: ["gemm", "matmul", "conv"] } as LowBitOptions);
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits]), [["gemm", 8], ["matmul", 8], ["conv", 8]]);
  const axes = Object.fromEntries(q.graph.node.filter((n) => n.opType === "DequantizeLinear").map((n) => [n.output[0], Number(n.attribute.find((a) => a.name === "axis")!.i)]));
  assert.deepEqual(Object.values(axes).sort(), [0, 1], "Gemm(transB) [N,K] on axis 0, MatMul [K,N] on axis 1");
  const conv = q.graph.node.find((n) => n.opType === "Conv")!;
  const mul = q.graph.node.find((n) => n.output[0] === conv.input[1]);
  assert.equal(mul?.opType, "Mul", "the Conv's weight: int8 codes → Cast → Mul(scale [M,1,1,1])");
  assert.deepEqual(q.graph.initializer.find((t) => t.name === mul!.input[1])!.dims.map(Number), [8, 1, 1, 1]);
  assert.ok(q.opset()! >= 13, "per-axis DequantizeLinear needs opset 13: upgraded from 11");
  const feeds = { x: { data: arr(2 * 64), dims: [2, 64], type: "float32" }, img: { data: arr(2 * 192), dims: [2, 3, 8, 8], type: "float32" } };
  const run = async (m: Model) => {
    const s = await createSession(m);
    try {
      return await s.run(feeds);
    } finally {
      await s.dispose();
    }
  };
  const [a, b] = [await run(float), await run(q)];
  for (const out of ["y", "z"]) assert.ok(sqnr(a[out]!.data as Float32Array, b[out]!.data as Float32Array) > 30, out);
});

test("by default, with data, protection aims at 20 dB within 0.35× of the float model's bytes, and says where it stood", async () => {
  const model = buildModel();
  const { report } = await lowBitModelCalibrated(model, { mode: "int4" }, batches(2));
  const out = report.output!;
  assert.equal(out.targetDb, DEFAULT_PROTECT_DB);
  assert.equal(out.maxSize, DEFAULT_PROTECT_MAX_SIZE);
  assert.deepEqual(out.protected.map((p) => [p.node, p.as]), [["outliers", "int8"]]);
  assert.ok(out.sqnrDb >= DEFAULT_PROTECT_DB && !out.capped, `${out.sqnrDb} dB`);
  const written = lowBitModel(model, { mode: "int4", int8: ["outliers"] }).model;
  assert.equal(out.size, written.fileBytes() / model.fileBytes());
  assert.ok(out.size! <= DEFAULT_PROTECT_MAX_SIZE, `${out.size}`);
});

test("the ladder's conversions share one cleaned copy's initializers and change none of them: the file written is the one a single conversion at its step writes", async () => {
  const model = buildModel();
  const before = model.toBytes();
  // Nearest codes, so the file depends on the step alone; the ladder converts many times on the way to it.
  const { model: q, report } = await lowBitModelCalibrated(model, { mode: "fp4", rounding: "nearest", protect: { minOutputSqnrDb: 45, maxSize: Infinity } }, batches(2));
  const up = report.output!.protected;
  assert.ok(up.length > 0 && report.output!.measured > 2, JSON.stringify(report.output));
  const once = lowBitModel(model, { mode: "fp4", int8: up.filter((p) => p.as === "int8").map((p) => p.node), exclude: up.filter((p) => p.as === "float").map((p) => p.node) }).model;
  assert.deepEqual(q.toBytes(), once.toBytes());
  assert.deepEqual(model.toBytes(), before, "the input model is not changed");
});

test("the size cap stops the ladder at its last step within the cap and reports the target unmet", async () => {
  const model = buildModel();
  // 45 dB needs a layer float: 0.75× of the float bytes with the other int8.
  const uncapped = (await lowBitModelCalibrated(model, { mode: "int4", protect: { minOutputSqnrDb: 45, maxSize: Infinity } }, batches(2))).report.output!;
  assert.ok(uncapped.sqnrDb >= 45 && !uncapped.capped && uncapped.size! > 0.5, JSON.stringify(uncapped));
  const { report } = await lowBitModelCalibrated(model, { mode: "int4", protect: { minOutputSqnrDb: 45, maxSize: 0.5 } }, batches(2));
  const out = report.output!;
  assert.ok(out.capped && out.sqnrDb < 45, JSON.stringify(out));
  assert.ok(out.size! <= 0.5, `${out.size}`);
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits]), [["outliers", 8], ["smooth", 8]], "both int8: the last step within 0.5×");
  assert.ok(out.sqnrDb > uncapped.allLowBitDb + 10, `${out.sqnrDb} dB against ${uncapped.allLowBitDb} dB all low-bit`);
  // A cap below the all-low-bit model is raised to that model's size: no step that grows the file is taken (here
  // every step does), and the report says the cap was raised.
  const tight = (await lowBitModelCalibrated(model, { mode: "int4", protect: { maxSize: 0.01 } }, batches(2))).report.output!;
  assert.ok(tight.capped && tight.protected.length === 0 && tight.askedMaxSize === 0.01 && tight.maxSize === tight.size, JSON.stringify(tight));
  assert.match(describeOutput(tight), /every layer low-bit makes a file above the cap 0\.01×: the cap is that file's size\), cap 0\.[0-9]+×/);
});

test("a small model whose every layer in low bits is above the cap still gets protection where int8 weights take fewer bytes", async () => {
  // x[B,9] → MatMul(W0 [9,64]: K 9 padded to a block of 32, int8 per channel is smaller; one outlier row ruins its
  // 4-bit blocks) → MatMul(W1 [64,16]) → y.
  const r = rng(5);
  const w0 = Float32Array.from({ length: 9 * 64 }, (_, i) => (Math.floor(i / 64) === 4 ? 3 : 0.3 * r()));
  const w1 = Float32Array.from({ length: 64 * 16 }, () => 0.2 * r());
  const g = makeGraph(
    "small_blocks",
    [makeNode("MatMul", ["x", "W0"], ["h"], { name: "padded" }), makeNode("MatMul", ["h", "W1"], ["y"], { name: "second" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 9])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 16])],
    { initializers: [makeTensor("W0", DataType.FLOAT, [9, 64], w0), makeTensor("W1", DataType.FLOAT, [64, 16], w1)] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const rows = Array.from({ length: 2 }, () => ({ x: { data: Float32Array.from({ length: 4 * 9 }, () => r()), dims: [4, 9], type: "float32" } }));
  const all = (await lowBitModelCalibrated(model, { mode: "int4", rounding: "nearest", protect: false }, rows)).report.output!;
  const { report } = await lowBitModelCalibrated(model, { mode: "int4", rounding: "nearest", protect: { minOutputSqnrDb: all.sqnrDb + 3 } }, rows);
  const out = report.output!;
  assert.ok(out.askedMaxSize === DEFAULT_PROTECT_MAX_SIZE && out.maxSize! > DEFAULT_PROTECT_MAX_SIZE, JSON.stringify(out));
  assert.deepEqual(out.protected.map((p) => [p.node, p.as]), [["padded", "int8"]]);
  assert.ok(out.size! < out.maxSize! && out.sqnrDb >= all.sqnrDb + 3 && !out.capped, JSON.stringify(out));
});

test("a step over the size cap does not meet the target, even where a later step is within it: the file written is within the cap", async () => {
  // Two heads: a (x[B,32] · WA[32,8], one outlier row: int4 ruins y1, int8 mends it; a grows in int8) and b
  // (z[B,2] · WB[2,64]: K 2 padded to a block of 32, so b's int8 weights take far fewer bytes than its blocks). The
  // ladder: all int4 (the raised cap), a int8 (over it, meets the target), a and b int8 (under it, meets it too).
  const r = rng(3);
  const wa = Float32Array.from({ length: 32 * 8 }, (_, i) => (Math.floor(i / 8) === 5 ? 3 : 0.3 * r()));
  const wb = Float32Array.from({ length: 2 * 64 }, () => 0.3 * r());
  const g = makeGraph(
    "ladder_sizes",
    [makeNode("MatMul", ["x", "WA"], ["y1"], { name: "a" }), makeNode("MatMul", ["z", "WB"], ["y2"], { name: "b" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 32]), makeValueInfo("z", DataType.FLOAT, ["batch", 2])],
    [makeValueInfo("y1", DataType.FLOAT, ["batch", 8]), makeValueInfo("y2", DataType.FLOAT, ["batch", 64])],
    { initializers: [makeTensor("WA", DataType.FLOAT, [32, 8], wa), makeTensor("WB", DataType.FLOAT, [2, 64], wb)] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const rows = Array.from({ length: 2 }, () => ({
    x: { data: Float32Array.from({ length: 4 * 32 }, () => r()), dims: [4, 32], type: "float32" as const },
    z: { data: Float32Array.from({ length: 4 * 2 }, () => r()), dims: [4, 2], type: "float32" as const },
  }));
  const options = { mode: "int4", rounding: "nearest" } as const;
  const { report } = await lowBitModelCalibrated(model, { ...options, protect: { minOutputSqnrDb: 25 } }, rows);
  const out = report.output!;
  // Before, the search took the first step that met the target, a alone in int8: 1.21× the float file, cap 1.12×.
  assert.ok(out.size! <= out.maxSize! && out.sqnrDb >= 25 && !out.capped, JSON.stringify(out));
  assert.deepEqual(out.protected.map((p) => [p.node, p.as]), [["a", "int8"], ["b", "int8"]]);
});

test("an output a final Softmax makes is measured on its logits: confident probabilities hide what low bits do to them", async () => {
  // x[B,64] → MatMul(W [64,8], large: logits of tens) → Softmax → p. The probabilities are near one-hot whatever
  // 4-bit weights do to the logits.
  const r = rng(9);
  const w = Float32Array.from({ length: 64 * 8 }, () => 10 * r());
  const g = makeGraph(
    "confident",
    [makeNode("MatMul", ["x", "W"], ["logits"], { name: "head" }), makeNode("Softmax", ["logits"], ["p"], { name: "softmax", attributes: [attr.int("axis", -1)] })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 64])],
    [makeValueInfo("p", DataType.FLOAT, ["batch", 8])],
    { initializers: [makeTensor("W", DataType.FLOAT, [64, 8], w)] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const rows = Array.from({ length: 2 }, () => ({ x: { data: Float32Array.from({ length: 4 * 64 }, () => r()), dims: [4, 64], type: "float32" } }));
  const float = await createSession(model);
  const low = await createSession(lowBitModel(model, { mode: "int4" }).model);
  try {
    for (const row of rows) {
      const [a, b] = [(await float.run(row)).p!.data as Float32Array, (await low.run(row)).p!.data as Float32Array];
      assert.ok(sqnr(a, b) > 30, `the probabilities read ${sqnr(a, b)} dB: they hide the logits' error`);
    }
  } finally {
    await float.dispose();
    await low.dispose();
  }
  const { report } = await lowBitModelCalibrated(model, { mode: "int4", protect: { minOutputSqnrDb: 30, maxSize: Infinity } }, rows);
  const out = report.output!;
  assert.equal(out.logits, 1);
  assert.ok(out.allLowBitDb < 30, `logits with every layer int4: ${out.allLowBitDb} dB`);
  assert.deepEqual(out.protected.map((p) => p.node), ["head"]);
  assert.match(describeOutput(out), /^outputs vs float on 8 calibration batch\(es\) \(the Softmax output on its logits\): worst output SQNR/);
  // Rounding auto (int4's default with data) judges GPTQ's codes on the logits too.
  const judged = (await lowBitModelCalibrated(model, { mode: "int4", protect: false }, rows)).report.notes.find((n) => n.startsWith("rounding auto"));
  assert.match(judged ?? "", /worst-output SQNR \(the Softmax output on its logits\) nearest/);
});

test("FP4's small layers, stored int8, are on the ladder: one whose int8 weights ruin the outputs is kept float", async () => {
  // x[B,16] → MatMul(W0 [16,16]: small, so int8; its row 0 is 50 and x's feature 0 is always 0, so per-channel int8
  // scales of 50/127 round every weight that matters to 0) → MatMul(W1 [16,512], smooth, FP4) → y.
  const r = rng(3);
  const w0 = Float32Array.from({ length: 256 }, (_, i) => (i < 16 ? 50 : 0.3 * r()));
  const w1 = Float32Array.from({ length: 16 * 512 }, () => 0.2 * r());
  const g = makeGraph(
    "small_int8",
    [makeNode("MatMul", ["x", "W0"], ["h"], { name: "small" }), makeNode("MatMul", ["h", "W1"], ["y"], { name: "big" })],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 16])],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 512])],
    { initializers: [makeTensor("W0", DataType.FLOAT, [16, 16], w0), makeTensor("W1", DataType.FLOAT, [16, 512], w1)] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const rows = Array.from({ length: 2 }, () => ({ x: { data: Float32Array.from({ length: 64 }, (_, i) => (i % 16 === 0 ? 0 : r())), dims: [4, 16], type: "float32" } }));
  const off = (await lowBitModelCalibrated(model, { mode: "fp4", protect: false }, rows)).report;
  assert.deepEqual(off.layers.map((l) => [l.node, l.bits]), [["small", 8], ["big", undefined]]);
  assert.ok(off.output!.sqnrDb < 5, `${off.output!.sqnrDb} dB with the small layer int8`);
  const { report } = await lowBitModelCalibrated(model, { mode: "fp4", protect: { minOutputSqnrDb: 15, maxSize: Infinity } }, rows);
  assert.ok(report.output!.sqnrDb >= 15, `${report.output!.sqnrDb} dB`);
  assert.deepEqual(report.output!.protected.filter((p) => p.as === "float").map((p) => p.node), ["small"]);
  assert.match(report.skipped.find((s) => s.node === "small")!.reason, /^kept float/);
});

test("a target even int8 weights everywhere cannot meet keeps the worst layers float, the rest int8", async () => {
  const { report } = await lowBitModelCalibrated(buildModel(), { mode: "int4", protect: { minOutputSqnrDb: 45, maxSize: Infinity } } as LowBitOptions, batches(2));
  const out = report.output!;
  assert.ok(out.sqnrDb >= 45, `${out.sqnrDb} dB`);
  const float = out.protected.filter((p) => p.as === "float").map((p) => p.node);
  assert.ok(float.length >= 1, JSON.stringify(out.protected));
  for (const node of float) assert.match(report.skipped.find((s) => s.node === node)!.reason, /^kept float: alone in low bits/);
  assert.deepEqual(
    report.layers.map((l) => l.node),
    out.protected.filter((p) => p.as === "int8").map((p) => p.node),
    "every layer not float is int8: all-int8 fell short, so nothing stays at 4 bits",
  );
});

test("a target the model meets as it is keeps every layer in low bits", async () => {
  const { report } = await lowBitModelCalibrated(buildModel(), { mode: "int4", protect: { minOutputSqnrDb: 0 } } as LowBitOptions, batches(1));
  assert.equal(report.layers.length, 2);
  assert.deepEqual(report.output!.protected, []);
});

test("a float16 model's Softmax logits are compared as float16 tensors: its int4 and FP4 conversions (MatMulNBits, the FP4 decode) run and are measured", async () => {
  const r = rng(13);
  const g = makeGraph(
    "half",
    [makeNode("MatMul", ["x", "W"], ["logits"], { name: "head" }), makeNode("Softmax", ["logits"], ["p"], { name: "softmax", attributes: [attr.int("axis", -1)] })],
    [makeValueInfo("x", DataType.FLOAT16, ["batch", 64])],
    [makeValueInfo("p", DataType.FLOAT16, ["batch", 8])],
    { initializers: [makeTensor("W", DataType.FLOAT16, [64, 8], Float32Array.from({ length: 64 * 8 }, () => r()))] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const rows = Array.from({ length: 4 }, () => ({ x: { data: Float32Array.from({ length: 4 * 64 }, () => r()), dims: [4, 64], type: "float16" } })) as unknown as Feeds[];
  for (const mode of ["int4", "fp4"] as const) {
    const out = (await lowBitModelCalibrated(model, { mode }, rows)).report.output!;
    assert.equal(out.logits, 1, mode);
    assert.ok(Number.isFinite(out.sqnrDb) && out.sqnrDb > 10, `${mode}: ${out.sqnrDb} dB`);
  }
});

test("GPTQ reads one-shot data once and protection measures on the same first rows", async () => {
  function* once() {
    yield* batches(3);
  }
  const { report } = await lowBitModelCalibrated(buildModel(), { mode: "int4", algorithm: "gptq" } as LowBitOptions, once());
  assert.equal(report.output!.batches, 8, "three batches of 4 rows, read a row at a time: protection's first 8");
  assert.ok(report.notes.some((n) => /GPTQ calibration: 12 batches/.test(n)));
});

test("GPTQ's Hessians wait for protection's choice where the data reads again: only the layers left int4 get them, and the codes are the one pass's", async () => {
  let reads = 0;
  const again = { *[Symbol.iterator]() { reads++; yield* batches(3); } };
  assert.ok(rereadable(again) && rereadable(batches(3)) && !rereadable((function* () { yield* batches(3); })()));
  const options = { mode: "int4", algorithm: "gptq", protect: { minOutputSqnrDb: 20 } } as LowBitOptions;
  const twice = await lowBitModelCalibrated(buildModel(), options, again);
  assert.equal(reads, 2, "protection's batches, then all of it for the Hessians");
  const onePass = await lowBitModelCalibrated(buildModel(), options, (function* () { yield* batches(3); })());
  assert.deepEqual(twice.model.toBytes(), onePass.model.toBytes(), "the same codes as the one pass gives");
  assert.deepEqual(twice.report.output!.protected.map((p) => p.node), ["outliers"]);
  assert.ok(twice.report.notes.some((n) => /GPTQ calibration: 12 batches/.test(n)), twice.report.notes.join("\n"));
  // Every layer stepped up to int8: no Hessian is collected (the data is read once), and the note says so.
  reads = 0;
  const all = await lowBitModelCalibrated(buildModel(), { ...options, protect: { minOutputSqnrDb: 40, maxSize: Infinity } } as LowBitOptions, again);
  assert.ok(all.report.layers.every((l) => l.bits === 8), JSON.stringify(all.report.layers));
  assert.equal(reads, 1);
  assert.ok(all.report.notes.some((n) => /^GPTQ calibration skipped: protection left no layer int4/.test(n)), all.report.notes.join("\n"));
});

test("int4 rounding auto with data that reads again: the written codes' Hessians are collected only once auto chooses GPTQ", async () => {
  // Three rows: too few for auto to judge on, so it keeps nearest codes, and nothing is read for GPTQ's.
  const three = (): Feeds[] => [{ x: { data: batches(1)[0]!.x!.data.slice(0, 3 * 64), dims: [3, 64], type: "float32" } } as Feeds];
  let reads = 0;
  const again = { *[Symbol.iterator]() { reads++; yield* three(); } };
  const options = { mode: "int4", protect: { minOutputSqnrDb: 20 } } as LowBitOptions;
  const { report, model } = await lowBitModelCalibrated(buildModel(), options, again);
  assert.match(report.notes.find((n) => n.startsWith("rounding auto")) ?? "", /^rounding auto kept nearest int4 rounding: 3 calibration row\(s\), too few/);
  assert.equal(reads, 1, "protection's batches only");
  assert.ok(!report.notes.some((n) => n.startsWith("GPTQ calibration")), report.notes.join("\n"));
  const once = await lowBitModelCalibrated(buildModel(), options, (function* () { yield* three(); })());
  assert.deepEqual(model.toBytes(), once.model.toBytes(), "the file one pass writes");
});

test("openData's readers read again from the start", async () => {
  const { openData } = await import("../../../engine/data/readers");
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-again-"));
  try {
    for (let i = 0; i < 3; i++) writeFileSync(path.join(dir, `s${i}.npy`), encodeNpy(Float32Array.from({ length: 64 }, (_, j) => i + j / 64), [1, 64]));
    const data = openData(dir, buildModel().proto);
    const first = [...data].map((f) => (f.x!.data as Float32Array)[0]);
    assert.deepEqual([...data].map((f) => (f.x!.data as Float32Array)[0]), first);
    assert.equal(first.length, 3);
    assert.ok(rereadable(data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stacked batch writes the file its rows give one at a time, and protection measures the same 8 rows", async () => {
  const rows = batches(4); // 4 batches of 4 rows
  const stacked: Feeds[] = [{ x: { data: Float32Array.from(rows.flatMap((b) => [...(b.x!.data as Float32Array)])), dims: [16, 64], type: "float32" } }];
  const single: Feeds[] = rows.flatMap((b) => Array.from({ length: 4 }, (_, r) => ({ x: { data: (b.x!.data as Float32Array).slice(r * 64, (r + 1) * 64), dims: [1, 64], type: "float32" } })));
  for (const options of [{ mode: "int4" }, { mode: "fp4" }] as LowBitOptions[]) {
    const a = await lowBitModelCalibrated(buildModel(), options, stacked);
    const b = await lowBitModelCalibrated(buildModel(), options, single);
    assert.deepEqual(a.model.toBytes(), b.model.toBytes(), `${options.mode}: the same file`);
    assert.equal(a.report.output!.batches, 8);
    assert.deepEqual(a.report.output, b.report.output);
  }
});

test("takeRows: at least the batches protection measures, more until they hold the rows rounding auto judges on", async () => {
  const { takeRows } = await import("../../../engine/lowbit/protect");
  const batches = (n: number, rows: number): Feeds[] => Array.from({ length: n }, () => ({ x: { data: new Float32Array(rows * 3), dims: [rows, 3] } }));
  assert.equal((await takeRows(batches(40, 1), 8, 32)).length, 32, "single samples: 32 of them");
  assert.equal((await takeRows(batches(40, 4), 8, 32)).length, 8, "8 batches of 4 hold 32 rows");
  assert.equal((await takeRows(batches(40, 32), 8, 32)).length, 8, "large batches: no more than protection's 8 (memory as before)");
  assert.equal((await takeRows(batches(5, 1), 8, 32)).length, 5, "all there is");
});
