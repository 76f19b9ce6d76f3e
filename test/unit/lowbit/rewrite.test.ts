// The low-bit rewrites checked the way users run them: build a small model in code, rewrite it, run both in
// onnxruntime-node, compare outputs.
import { test } from "node:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import {
  DataType,
  Model,
  attr,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  tensorToFloat32,
} from "../../../engine/onnx";
import { createSession } from "../../../engine/runtime/session";
import { buildModel, randomArray } from "./models";
import { quantizeWeightsLowBit, type LowBitOptions } from "../../../engine/lowbit/rewrite";
import { dequantizeBlockwise, quantizeBlockwise } from "../../../engine/lowbit/intblock";

const feeds = {
  x: { data: randomArray(4 * 64, 11, 1), dims: [4, 64] },
  img: { data: randomArray(4 * 3 * 64, 12, 1), dims: [4, 3, 8, 8] },
};

async function run(model: Model, optimization: "disabled" | "basic" = "basic") {
  const s = await createSession(model.toBytes(), { optimization, threads: 1 });
  try {
    const out = await s.run(feeds);
    return { y: out.y.data as Float32Array, z: out.z.data as Float32Array };
  } finally {
    await s.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function quantized(options: LowBitOptions, opset = 13) {
  const m = buildModel(opset);
  const report = quantizeWeightsLowBit(m, options);
  return { model: m, report };
}

test("FP4 runnable stores a weight int8 where that is smaller than its FP4 form with its ~700 bytes of decode nodes", async () => {
  // The 3×3 Conv has 216 weights (K 27 padded to a block of 32): int8 is smaller; the Gemm and MatMul go FP4.
  const { model, report } = quantized({ mode: "fp4", fp4Format: "nvfp4", export: "runnable" });
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits ?? 4]), [["fc1", 4], ["fc2", 4], ["conv", 8]]);
  assert.ok(report.notes.some((n) => /1 small weight\(s\) stored int8 per channel/.test(n)));
  const conv = model.graph.node.find((n) => n.opType === "Conv")!;
  const producer = (t: string) => model.graph.node.find((n) => n.output[0] === t);
  const mul = producer(conv.input[1]!)!;
  assert.deepEqual([producer(mul.input[0]!)?.opType, mul.opType], ["Cast", "Mul"], "int8 codes → Cast → Mul(per-channel scale), which onnxruntime folds (no DequantizeLinear)");
  assert.equal(model.graph.node.filter((n) => n.opType === "DequantizeLinear").length, 0);
  const asFp4 = quantized({ mode: "fp4", fp4Format: "nvfp4", export: "runnable", smallLayers: "fp4" });
  assert.ok(model.toBytes().byteLength < asFp4.model.toBytes().byteLength, "and the file is smaller for it");
  const ref = await run(buildModel());
  const got = await run(model);
  assert.ok(maxAbsDiff(got.z, ref.z) < 0.05, `conv at int8: ${maxAbsDiff(got.z, ref.z)}`);
});

test("FP4 runnable: decode tables are shared by every weight of a graph, and a long weight name is not repeated in the decode's names", () => {
  const long = "StatefulPartitionedCall/functional_1/conv2d_20/Conv2D/ReadVariableOp:0";
  const [k, n] = [256, 64];
  const weights = [0, 1].map((i) => makeTensor(`${long}_${i}`, DataType.FLOAT, [k, n], randomArray(k * n, 20 + i)));
  const g = makeGraph(
    "long_names",
    [makeNode("MatMul", ["x", weights[0]!.name], ["h"], { name: "mm0" }), makeNode("MatMul", ["h_in", weights[1]!.name], ["y"], { name: "mm1" })],
    [makeValueInfo("x", DataType.FLOAT, [1, k]), makeValueInfo("h_in", DataType.FLOAT, [1, k])],
    [makeValueInfo("h", DataType.FLOAT, [1, n]), makeValueInfo("y", DataType.FLOAT, [1, n])],
    { initializers: weights },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const before = new Set([...model.graph.node.flatMap((x) => [x.name, ...x.output]), ...model.graph.initializer.map((t) => t.name)]);
  for (const format of ["nvfp4", "mxfp4"] as const) {
    const m = model.clone();
    const report = quantizeWeightsLowBit(m, { mode: "fp4", fp4Format: format });
    assert.deepEqual(report.layers.map((l) => l.bits ?? 4), [4, 4]);
    const tables = m.graph.initializer.filter((t) => t.name.startsWith("fp4_e2m1_pairs") || t.name.startsWith(`fp4_${format}_scales`));
    assert.equal(tables.length, 2, "one pair table and one scale table for both weights");
    const added = [...m.graph.node.flatMap((x) => [x.name, ...x.output]), ...m.graph.initializer.map((t) => t.name)].filter((x) => !before.has(x));
    for (const name of added) assert.ok(!name.includes("StatefulPartitionedCall") && name.length < 30, `decode name "${name}"`);
    // Codes (K·N/2) and block scales per weight, the shared tables, and under 1 KB of nodes and names per weight (the model's own two nodes included).
    const block = format === "nvfp4" ? 16 : 32;
    const payload = 2 * ((k * n) / 2 + (k / block) * n);
    assert.ok(m.toBytes().byteLength < payload + (512 + 256) * 4 + 2 * 1000, `${format}: ${m.toBytes().byteLength} bytes for a payload of ${payload}`);
  }
});

test("FP4's small weights stored int8 do not repeat a long weight name either: a short stem for their five names", async () => {
  const long = "StatefulPartitionedCall/functional_1/depthwise_conv2d_7/depthwise/ReadVariableOp:0";
  const [k, n] = [16, 8];
  const w = makeTensor(long, DataType.FLOAT, [k, n], randomArray(k * n, 31));
  const g = makeGraph(
    "small_long_name",
    [makeNode("MatMul", ["x", long], ["y"], { name: "StatefulPartitionedCall/functional_1/depthwise_conv2d_7/depthwise" })],
    [makeValueInfo("x", DataType.FLOAT, [1, k])],
    [makeValueInfo("y", DataType.FLOAT, [1, n])],
    { initializers: [w] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const m = model.clone();
  const report = quantizeWeightsLowBit(m, { mode: "fp4" });
  assert.deepEqual(report.layers.map((l) => l.bits), [8], "a small weight is stored int8");
  const added = [...m.graph.node.flatMap((x) => [x.name, ...x.output]), ...m.graph.initializer.map((t) => t.name)].filter((x) => x !== long && !model.graph.node.some((o) => o.name === x || o.output.includes(x)));
  assert.equal(added.length, 5, added.join(", "));
  for (const name of added) assert.ok(!name.includes("StatefulPartitionedCall") && name.length < 20, `int8 name "${name}"`);
  const y = async (mm: Model) => {
    const sess = await createSession(mm.toBytes(), { threads: 1 });
    try {
      return (await sess.run({ x: { data: randomArray(k, 32, 1), dims: [1, k] } })).y.data as Float32Array;
    } finally {
      await sess.dispose();
    }
  };
  const [ref, got] = [await y(model), await y(m)];
  assert.ok(maxAbsDiff(got, ref) < 0.01, `int8 weights: ${maxAbsDiff(got, ref)}`);
});

test("FP4 runnable export computes exactly what fake-quantized weights compute, for MXFP4 and NVFP4", async () => {
  for (const fp4Format of ["mxfp4", "nvfp4"] as const) {
    const fake = quantized({ mode: "fp4", fp4Format, export: "fake" });
    const runnable = quantized({ mode: "fp4", fp4Format, export: "runnable", smallLayers: "fp4" });
    assert.equal(runnable.report.layers.length, 3, "Gemm, MatMul and Conv weights are all FP4");
    assert.equal(runnable.model.graph.initializer.some((t) => ["W1", "W2", "Wc"].includes(t.name)), false, "float weights dropped");
    const want = await run(fake.model);
    for (const level of ["disabled", "basic"] as const) {
      const got = await run(runnable.model, level);
      assert.ok(maxAbsDiff(got.y, want.y) < 1e-5, `${fp4Format} y at ${level}: ${maxAbsDiff(got.y, want.y)}`);
      assert.ok(maxAbsDiff(got.z, want.z) < 1e-5, `${fp4Format} z at ${level}: ${maxAbsDiff(got.z, want.z)}`);
    }
    const ref = await run(buildModel());
    assert.ok(maxAbsDiff(want.y, ref.y) > 0, "FP4 changes the result at all");
    for (const layer of runnable.report.layers) assert.ok(layer.sqnrDb > 15 && layer.sqnrDb < 30, `${layer.node}: ${layer.sqnrDb} dB`);
  }
});

test("INT4 (MatMulNBits; a Conv's weight decoded by Cast/Sub/Mul, which onnxruntime folds) matches a float model holding the dequantized weights, partial last block included", async () => {
  for (const symmetric of [true, false]) {
    const { model, report } = quantized({ mode: "int4", blockSize: 32, symmetric, algorithm: "rtn" }, 21);
    assert.deepEqual(report.layers.map((l) => [l.node, l.k, l.n, l.partialBlock]), [["fc1", 64, 48, false], ["fc2", 48, 40, true], ["conv", 27, 8, true]]);
    assert.deepEqual(report.skipped, []);
    assert.equal(model.graph.node.filter((n) => n.opType === "MatMulNBits" && n.domain === "com.microsoft").length, 2);
    assert.equal(model.opset("com.microsoft"), 1);
    assert.equal(model.graph.node.filter((n) => n.opType === "DequantizeLinear").length, 0, "no DequantizeLinear: onnxruntime would never fold it");
    const codes = model.graph.initializer.filter((t) => t.dataType === DataType.UINT4);
    assert.deepEqual(codes.map((t) => t.dims.map(Number)), symmetric ? [[8, 27]] : [[8, 27], [8, 1, 1]], "codes [O, K], blocks along K (and the zero points when asymmetric)");
    assert.equal(model.graph.node.find((n) => n.opType === "Conv")!.input[0], "img", "the Conv's activations stay float");
    // Reference: the float model with each weight replaced by its dequantized int4 value ([K, N] views: Gemm's
    // transB weight and the Conv's [O, K] rows transposed).
    const ref = buildModel(21);
    for (const [name, k, n, transposed] of [["W1", 64, 48, true], ["W2", 48, 40, false], ["Wc", 27, 8, true]] as const) {
      const t = ref.graph.initializer.find((x) => x.name === name)!;
      let w = tensorToFloat32(t);
      if (transposed) w = Float32Array.from({ length: k * n }, (_, i) => w[(i % n) * k + Math.floor(i / n)]);
      let d = dequantizeBlockwise(quantizeBlockwise(w, k, n, { bits: 4, blockSize: 32, symmetric, algorithm: "rtn" }));
      if (transposed) d = Float32Array.from({ length: k * n }, (_, i) => d[(i % k) * n + Math.floor(i / k)]);
      Object.assign(t, makeTensor(name, DataType.FLOAT, t.dims.map(Number), d));
    }
    const want = await run(ref, "disabled");
    const got = await run(model, "basic");
    assert.ok(maxAbsDiff(got.y, want.y) < 1e-4, `symmetric=${symmetric}: ${maxAbsDiff(got.y, want.y)}`);
    assert.ok(maxAbsDiff(got.z, want.z) < 1e-4, `conv, symmetric=${symmetric}: ${maxAbsDiff(got.z, want.z)}`);
  }
  assert.throws(() => quantized({ mode: "int4" }, 13), /a Conv weight's uint4 code type needs opset 21 or later; this model is at opset 13/);
  const { report } = quantized({ mode: "int4", exclude: ["conv"] }, 13);
  assert.deepEqual(report.layers.map((l) => l.node), ["fc1", "fc2"], "MatMulNBits alone needs no newer opset");
});

test("INT4 with smallLayers int8 stores a weight int8 where that is no larger than its blocks (a depthwise 3×3: K 9 padded to a block of 32, a scale per block): smaller and closer; by default every weight stays in blocks", async () => {
  // img[B,8,6,6] → depthwise Conv(Wd[8,1,3,3], group 8) → Conv(Wp[16,8,1,1]) → z: K 9 (int8) and K 8 (int8 too).
  const dw = () => {
    const g = makeGraph(
      "dw",
      [
        makeNode("Conv", ["img", "Wd"], ["d"], { name: "dw", attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.int("group", 8)] }),
        makeNode("Conv", ["d", "Wp"], ["z"], { name: "pw" }),
      ],
      [makeValueInfo("img", DataType.FLOAT, ["batch", 8, 6, 6])],
      [makeValueInfo("z", DataType.FLOAT, ["batch", 16, 6, 6])],
      { initializers: [makeTensor("Wd", DataType.FLOAT, [8, 1, 3, 3], randomArray(72, 31, 1)), makeTensor("Wp", DataType.FLOAT, [16, 8, 1, 1], randomArray(128, 32, 1))] },
    );
    return Model.fromProto(makeModel(g, { opsets: { "": 21 } }));
  };
  const [small, blocked] = [dw(), dw()];
  const report = quantizeWeightsLowBit(small, { mode: "int4", smallLayers: "int8" });
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits ?? 4]), [["dw", 8], ["pw", 8]]);
  assert.ok(report.notes.some((n) => n.startsWith("2 small weight(s) stored int8 per channel (smallLayers \"int8\"): their 4-bit blocks")), report.notes.join("; "));
  const all = quantizeWeightsLowBit(blocked, { mode: "int4" });
  assert.deepEqual(all.layers.map((l) => [l.node, l.bits ?? 4]), [["dw", 4], ["pw", 4]]);
  assert.ok(small.toBytes().byteLength < blocked.toBytes().byteLength, `${small.toBytes().byteLength} < ${blocked.toBytes().byteLength} bytes`);
  const img = { data: randomArray(2 * 8 * 36, 33, 1), dims: [2, 8, 6, 6] };
  const z = async (m: Model) => {
    const sess = await createSession(m.toBytes(), { optimization: "basic", threads: 1 });
    try {
      return (await sess.run({ img })).z.data as Float32Array;
    } finally {
      await sess.dispose();
    }
  };
  const ref = await z(dw());
  assert.ok(maxAbsDiff(await z(small), ref) < maxAbsDiff(await z(blocked), ref), "int8 reads closer to the float model");
});

test("a Conv stepped up to int8 keeps each kernel's sum, as static INT8's Convs do: nearest codes moved by a step where the sum drifts", () => {
  // img → depthwise Conv(Wd[8,1,3,3], group 8) → z: K 9, stored int8 per channel (smallLayers "int8").
  const values = randomArray(72, 41, 1);
  const g = makeGraph(
    "dw",
    [makeNode("Conv", ["img", "Wd"], ["z"], { name: "dw", attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.int("group", 8)] })],
    [makeValueInfo("img", DataType.FLOAT, ["batch", 8, 6, 6])],
    [makeValueInfo("z", DataType.FLOAT, ["batch", 8, 6, 6])],
    { initializers: [makeTensor("Wd", DataType.FLOAT, [8, 1, 3, 3], values)] },
  );
  const model = Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
  const report = quantizeWeightsLowBit(model, { mode: "int4", smallLayers: "int8" });
  assert.deepEqual(report.layers.map((l) => [l.node, l.bits]), [["dw", 8]]);
  const init = (name: string) => tensorToFloat32(model.graph.initializer.find((t) => t.name === name)!);
  const [codes, scale] = [init("Wd_int8"), init("Wd_scale")];
  let moved = 0;
  for (let c = 0; c < 8; c++) {
    let [sum, qsum] = [0, 0];
    for (let k = 0; k < 9; k++) {
      const v = values[c * 9 + k]! / scale[c]!;
      sum += v;
      qsum += codes[c * 9 + k]!;
      const nearest = Math.round(v);
      assert.ok(Math.abs(codes[c * 9 + k]! - nearest) <= 1, "a code is its nearest or a neighbour");
      if (codes[c * 9 + k] !== nearest) moved++;
    }
    assert.ok(Math.abs(qsum - sum) <= 0.5 + 1e-4, `kernel ${c}: codes sum ${qsum}, float sum ${sum.toFixed(3)} steps`);
  }
  assert.ok(moved > 0, "nearest rounding alone left some kernel's sum more than half a step off");
});

test("the smallest Convs (at most 1 % of the weights, as dynamic mode's) keep float weights in int4 and FP4, and the report says why", async () => {
  // img[B,8,6,6] → depthwise Conv(Wd[8,1,3,3]: 72 weights) → Conv(Wp[128,8,3,3]: 9216) → z: the depthwise one is 0.78 %.
  const model = () =>
    Model.fromProto(
      makeModel(
        makeGraph(
          "small",
          [
            makeNode("Conv", ["img", "Wd"], ["d"], { name: "dw", attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.int("group", 8)] }),
            makeNode("Conv", ["d", "Wp"], ["z"], { name: "pw", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
          ],
          [makeValueInfo("img", DataType.FLOAT, ["batch", 8, 6, 6])],
          [makeValueInfo("z", DataType.FLOAT, ["batch", 128, 6, 6])],
          { initializers: [makeTensor("Wd", DataType.FLOAT, [8, 1, 3, 3], randomArray(72, 41, 1)), makeTensor("Wp", DataType.FLOAT, [128, 8, 3, 3], randomArray(9216, 42, 1))] },
        ),
        { opsets: { "": 21 } },
      ),
    );
  for (const options of [{ mode: "int4" }, { mode: "fp4" }] as LowBitOptions[]) {
    const m = model();
    const report = quantizeWeightsLowBit(m, options);
    assert.deepEqual(report.layers.map((l) => l.node), ["pw"], options.mode);
    const skipped = report.skipped.find((s) => s.node === "dw");
    assert.match(skipped?.reason ?? "", /^one of the model's smallest Convs \(72 weights; with the others kept so, 0\.78 % of its weights\): onnxruntime runs a low-bit Conv in float/, options.mode);
    assert.equal(m.graph.node.find((n) => n.name === "dw")!.input[1], "Wd", `${options.mode}: the depthwise Conv reads its float weight`);
    assert.deepEqual([...tensorToFloat32(m.graph.initializer.find((t) => t.name === "Wd")!)], [...randomArray(72, 41, 1)]);
  }
});

/** img[B,8,6,6] → Conv(W[6,8,3,3], pads 1) → z at opset 25 (uint2): K = 72, i.e. whole blocks of 8, or blocks of 32 with a partial third. */
function convModel(): Model {
  const g = makeGraph(
    "conv72",
    [makeNode("Conv", ["img", "W"], ["z"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] })],
    [makeValueInfo("img", DataType.FLOAT, ["batch", 8, 6, 6])],
    [makeValueInfo("z", DataType.FLOAT, ["batch", 6, 6, 6])],
    { initializers: [makeTensor("W", DataType.FLOAT, [6, 8, 3, 3], randomArray(6 * 72, 21))] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 25 } }));
}

test("an int4 Conv's decode equals the standard blocked DequantizeLinear bit for bit, and onnxruntime folds it into a float weight at 'basic'", async () => {
  const img = { data: randomArray(2 * 8 * 36, 22, 1), dims: [2, 8, 6, 6] };
  const outputs = async (m: Model, optimization: "disabled" | "basic", optimizedModelPath?: string) => {
    const s = await createSession(m.toBytes(), { optimization, threads: 1, optimizedModelPath });
    try {
      return (await s.run({ img })).z.data as Float32Array;
    } finally {
      await s.dispose();
    }
  };
  const dir = mkdtempSync(path.join(tmpdir(), "ptq-int4-conv-"));
  try {
    for (const [blockSize, symmetric, bits] of [[8, true, 4], [8, false, 4], [32, true, 4], [32, false, 4], [16, false, 8], [16, false, 2]] as const) {
      const form = (format: "qdq" | "matmulnbits") => {
        const m = convModel();
        quantizeWeightsLowBit(m, { mode: "int4", blockSize, symmetric, bits, format, algorithm: "rtn" });
        return m;
      };
      const [decode, dq] = [form("matmulnbits"), form("qdq")];
      const what = `block ${blockSize}, ${symmetric ? "symmetric" : "asymmetric"}, ${bits} bits`;
      assert.equal(dq.graph.node.filter((n) => n.opType === "DequantizeLinear").length, 1, what);
      assert.equal(decode.graph.node.filter((n) => n.opType === "DequantizeLinear").length, 0, what);
      assert.deepEqual(await outputs(decode, "disabled"), await outputs(dq, "disabled"), `${what}: the same values`);
      const file = path.join(dir, "optimized.onnx");
      const folded = await outputs(decode, "basic", file);
      assert.deepEqual(folded, await outputs(dq, "disabled"), `${what}: folded, the same values`);
      const opt = Model.fromBytes(readFileSync(file));
      assert.deepEqual(opt.graph.node.map((n) => n.opType), ["Conv"], `${what}: onnxruntime folded the decode`);
      assert.equal(opt.graph.initializer.find((t) => t.name === opt.graph.node[0]!.input[1])?.dataType, DataType.FLOAT, what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("INT4 as opset-21 blocked DequantizeLinear runs and matches MatMulNBits", async () => {
  const qdq = quantized({ mode: "int4", format: "qdq", blockSize: 16, symmetric: false }, 21);
  const nbits = quantized({ mode: "int4", blockSize: 16, symmetric: false }, 21);
  const dq = qdq.model.graph.node.filter((n) => n.opType === "DequantizeLinear");
  assert.equal(dq.length, 3);
  assert.ok(qdq.model.graph.initializer.some((t) => t.dataType === DataType.UINT4));
  const a = await run(qdq.model, "disabled");
  const b = await run(nbits.model, "basic");
  assert.ok(maxAbsDiff(a.y, b.y) < 1e-4, `${maxAbsDiff(a.y, b.y)}`);
  assert.throws(() => quantized({ mode: "int4", format: "qdq" }, 13), /needs opset 21 or later; this model is at opset 13/);
});

test("native FP4 export is valid opset 23 with FLOAT4E2M1 weights, and says onnxruntime CPU cannot run it", async () => {
  const { model, report } = quantized({ mode: "fp4", fp4Format: "nvfp4", export: "native" }, 23);
  assert.match(report.warning ?? "", /no onnxruntime CPU kernel/);
  assert.equal(model.graph.initializer.filter((t) => t.dataType === DataType.FLOAT4E2M1).length, 2); // Gemm + MatMul
  assert.equal(model.graph.initializer.filter((t) => t.dataType === DataType.FLOAT8E4M3FN).length, 2);
  const blocked = model.graph.node.filter((n) => n.opType === "DequantizeLinear" && n.attribute.some((a) => a.name === "block_size"));
  assert.equal(blocked.length, 2);
  // Round trip through bytes keeps the packed FP4 data.
  const again = Model.fromBytes(model.toBytes());
  assert.equal(again.graph.initializer.filter((t) => t.dataType === DataType.FLOAT4E2M1).length, 2);
  await assert.rejects(run(model), /FLOAT4E2M1|float4|Could not find an implementation|not.*support/i);
});

test("the runnable FP4 file is about 7× smaller than float for a large weight", () => {
  const k = 512;
  const n = 512;
  const g = makeGraph(
    "big",
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "mm" })],
    [makeValueInfo("x", DataType.FLOAT, [1, k])],
    [makeValueInfo("y", DataType.FLOAT, [1, n])],
    { initializers: [makeTensor("W", DataType.FLOAT, [k, n], randomArray(k * n, 5))] },
  );
  const m = Model.fromProto(makeModel(g));
  const before = m.toBytes().length;
  for (const fp4Format of ["mxfp4", "nvfp4"] as const) {
    const c = m.clone();
    quantizeWeightsLowBit(c, { mode: "fp4", fp4Format, export: "runnable" });
    const ratio = before / c.toBytes().length;
    assert.ok(ratio > 6.5 && ratio < 8, `${fp4Format}: ${ratio.toFixed(2)}×`);
  }
  const c = m.clone();
  quantizeWeightsLowBit(c, { mode: "int4", blockSize: 32 });
  const ratio = before / c.toBytes().length;
  assert.ok(ratio > 6 && ratio < 8, `int4: ${ratio.toFixed(2)}×`);
});
