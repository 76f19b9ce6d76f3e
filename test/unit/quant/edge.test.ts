// Models that are not plain CNNs and inputs that are wrong: control flow, old opsets, 16-bit activations, huge
// biases, dynamic mode, and the errors a user must be able to act on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { GraphProtoSchema } from "onnx-buf";
import * as ort from "onnxruntime-node";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { calibrate, convert, prepare, quantizeDynamicModel, release, resolveConfig } from "../../../engine/quant/index";
import { sqnr } from "../../../engine/quant/math";
import { makeModel, opCounts, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;
const w = (name: string, dims: number[], seed: number, scale = 0.5) =>
  makeTensor(name, F, dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed, -scale, scale));
const mlp = (opset = 17) =>
  makeModel(
    [makeNode("MatMul", ["x", "M"], ["m"], { name: "mm" }), makeNode("Add", ["m", "b"], ["a"], { name: "add" }), makeNode("Relu", ["a"], ["y"], { name: "relu" })],
    [valueInfo("x", F, [4, 16])],
    [valueInfo("y", F, [4, 8])],
    [w("M", [16, 8], 1), w("b", [8], 2)],
    opset,
  );

test("an If node's subgraphs pass through untouched and the model still runs", async () => {
  const branch = (name: string, op: string) =>
    create(GraphProtoSchema, { name, node: [makeNode(op, ["m"], [`${name}_out`], { name: `${name}_op` })], output: [valueInfo(`${name}_out`, F, [4, 8])] });
  const m = makeModel(
    [
      makeNode("MatMul", ["x", "M"], ["m"], { name: "mm" }),
      makeNode("If", ["cond"], ["y"], { name: "if", attributes: [attr.graph("then_branch", branch("then", "Relu")), attr.graph("else_branch", branch("else", "Neg"))] }),
    ],
    [valueInfo("x", F, [4, 16]), valueInfo("cond", DataType.BOOL, [])],
    [valueInfo("y", F, [4, 8])],
    [w("M", [16, 8], 1)],
  );
  const prepared = await prepare(Model.fromProto(m), {}, { optimize: false });
  const feeds = (seed: number, c: boolean) => ({ x: new ort.Tensor("float32", randomFloats(64, seed), [4, 16]), cond: new ort.Tensor("bool", [c], []) });
  await calibrate(prepared, [feeds(1, true), feeds(2, false)]);
  await release(prepared);
  const { model: q, summary } = await convert(prepared);
  const ifNode = q.graph.node.find((n) => n.opType === "If")!;
  assert.deepEqual(ifNode.attribute.map((a) => a.g!.node.map((n) => n.opType)), [["Relu"], ["Neg"]]);
  assert.ok(summary.float.some((f) => f.opType === "If" && /control flow/.test(f.reason)));
  for (const c of [true, false]) {
    const ref = await runModel(m, feeds(7, c), "disabled");
    const got = await runModel(q.proto, feeds(7, c));
    assert.ok(sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array) > 25);
  }
});

test("per-channel at opset 11: upgraded to 13 for standard ai.onnx Q/DQ (the summary says so), and still fuses", async () => {
  const r = await quantizeTiny(mlp(11), { x: [4, 16] });
  const domains = new Set(r.qdq.graph.node.filter((n) => n.opType.endsWith("QuantizeLinear")).map((n) => n.domain));
  assert.deepEqual([...domains], [""]);
  assert.deepEqual(r.summary.opset, { before: 11, after: 13 });
  assert.ok(r.summary.warnings.some((x) => /upgraded the model from opset 11 to 13/.test(x)));
  assert.ok((r.fused.QLinearMatMul ?? 0) + (r.fused.MatMulIntegerToFloat ?? 0) === 1, JSON.stringify(r.fused));
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});

test("16-bit activations below opset 21: the quantized model is upgraded to 21 with ai.onnx Q/DQ, and says so", async () => {
  const r = await quantizeTiny(mlp(17), { x: [4, 16] }, { activationType: "int16", activationSymmetric: true });
  const qdq = r.qdq.graph.node.filter((n) => /^(Q|Deq)uantizeLinear$/.test(n.opType));
  assert.ok(qdq.length >= 4, `${qdq.length} Q/DQ`);
  assert.deepEqual([...new Set(qdq.map((n) => n.domain))], [""]);
  assert.equal(r.qdq.opset(""), 21);
  assert.equal(r.qdq.opset("com.microsoft"), undefined);
  assert.deepEqual(r.summary.opset, { before: 17, after: 21 });
  assert.ok(r.summary.warnings.some((x) => /upgraded the quantized model from opset 17 to 21/.test(x)), r.summary.warnings.join("\n"));
  assert.ok(!r.summary.warnings.some((x) => /runs in onnxruntime only/.test(x)));
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});

test("int16 activations: ai.onnx Q/DQ at opset 21, closer to float than 8-bit (weights stay 8-bit)", async () => {
  const r16 = await quantizeTiny(mlp(21), { x: [4, 16] }, { activationType: "int16", activationSymmetric: true });
  const r8 = await quantizeTiny(mlp(21), { x: [4, 16] });
  assert.equal(r16.qdq.graph.initializer.find((t) => t.name === "x_zero_point")!.dataType, DataType.INT16);
  assert.ok(r16.sqnr > r8.sqnr + 3, `int16 ${r16.sqnr} vs int8 ${r8.sqnr}`);
});

test("a bias too large for int32 at input×weight scale widens the weight scale instead of overflowing", async () => {
  const m = makeModel(
    [makeNode("Conv", ["x", "W", "B"], ["y"], { name: "conv" })],
    [valueInfo("x", F, [1, 2, 4, 4])],
    [valueInfo("y", F, [1, 2, 4, 4])],
    [w("W", [2, 2, 1, 1], 1, 1e-6), makeTensor("B", F, [2], [5e5, -5e5])],
  );
  const r = await quantizeTiny(m, { x: [1, 2, 4, 4] });
  assert.deepEqual(r.summary.biasOverflow, ["B"]);
  assert.ok(r.sqnr > 40, `SQNR ${r.sqnr}`); // output dominated by the bias, which must survive exactly
});

test("dynamic mode: DynamicQuantizeLinear + MatMulInteger, close to float", async () => {
  const m = mlp();
  const { model: q, summary } = await quantizeDynamicModel(Model.fromProto(m), resolveConfig(), false);
  const ops = opCounts(q.proto);
  assert.equal(ops.DynamicQuantizeLinear, 1);
  assert.equal(ops.MatMulInteger, 1);
  assert.equal(ops.MatMul, undefined);
  assert.deepEqual(summary.quantized.map((n) => n.name), ["mm"]);
  const feeds = { x: new ort.Tensor("float32", randomFloats(64, 3), [4, 16]) };
  const ref = await runModel(m, feeds, "disabled");
  const got = await runModel(q.proto, feeds);
  assert.ok(sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array) > 25);
});

test("mse ranges are chosen for the bit width: 16-bit tensors clip less, by config or by per-tensor override", async () => {
  // x: Laplace-distributed (a long thin tail, like real activations). At 8 bits MSE trades the last few values of the
  // tail for finer steps; at 16 bits the steps are fine enough that it keeps the whole range.
  const data = randomFloats(64 * 64, 21).map((u) => -Math.sign(u) * Math.log(1 - Math.abs(u) + 1e-9));
  const feeds = Array.from({ length: 64 }, (_, b) => ({ x: new ort.Tensor("float32", data.slice(b * 64, b * 64 + 64), [4, 16]) }));
  const seen = { min: Math.min(...data), max: Math.max(...data) };
  const calibrated = async (config: Parameters<typeof prepare>[1]) => {
    const p = await prepare(Model.fromProto(mlp()), config, { optimize: false });
    await calibrate(p, feeds);
    await release(p);
    return p;
  };
  const p8 = await calibrated({});
  const p16 = await calibrated({ activationType: "uint16" });
  const r8 = p8.ranges.get("x")!;
  const r16 = p16.ranges.get("x")!;
  assert.ok(r8.max < seen.max && r8.min > seen.min, `8-bit clips the tail: ${JSON.stringify(r8)} of ${JSON.stringify(seen)}`);
  assert.ok(r16.max === seen.max && r16.min < r8.min, `16-bit keeps (nearly) all of it: ${JSON.stringify(r16)}`);
  // An override to uint16 on an 8-bit calibration gets the 16-bit range (from the kept histogram) at convert().
  const scaleOf = (m: Model) => {
    const q = m.graph.node.find((n) => n.opType === "QuantizeLinear" && n.input[0] === "x")!;
    return new Float32Array(m.graph.initializer.find((t) => t.name === q.input[1])!.rawData.slice().buffer)[0]!;
  };
  const { model: overridden } = await convert({ ...p8, config: { ...p8.config, overrides: { x: { type: "uint16" } } } });
  assert.equal(scaleOf(overridden), scaleOf((await convert(p16)).model));
  assert.ok(Math.abs(scaleOf(overridden) - (r16.max - r16.min) / 65535) < 1e-6 * scaleOf(overridden) + 1e-9);
  // minmax does not depend on the width.
  assert.deepEqual((await calibrated({ calibration: { method: "minmax" } })).ranges.get("x"), (await calibrated({ activationType: "uint16", calibration: { method: "minmax" } })).ranges.get("x"));
});

test("dynamic mode: convolutions (grouped, padded, strided, with bias) run in float on int8 weights decoded by Cast/Sub/Mul, per-channel or per-tensor", async () => {
  const cnn = makeModel(
    [
      makeNode("Conv", ["x", "W1", "B1"], ["c1"], { name: "conv1", attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.ints("kernel_shape", [3, 3])] }),
      makeNode("Relu", ["c1"], ["r1"], { name: "relu1" }),
      makeNode("Conv", ["r1", "W2"], ["y"], { name: "dw", attributes: [attr.int("group", 16), attr.ints("strides", [2, 2]), attr.ints("pads", [1, 1, 1, 1])] }),
    ],
    [valueInfo("x", F, ["batch", 3, 8, 8])],
    [valueInfo("y", F, ["batch", 16, 4, 4])],
    // Channels of very different ranges: what per-channel scales are for.
    [w("W1", [16, 3, 3, 3], 5), makeTensor("B1", F, [16], randomFloats(16, 8)), makeTensor("W2", F, [16, 1, 3, 3], randomFloats(144, 6).map((v, i) => v * (i < 9 ? 4 : 0.05)))],
  );
  const feeds = { x: new ort.Tensor("float32", randomFloats(2 * 3 * 64, 7), [2, 3, 8, 8]) };
  const ref = await runModel(cnn, feeds, "disabled");
  const results: Record<string, number> = {};
  for (const perChannel of [true, false]) {
    const { model: q, summary } = await quantizeDynamicModel(Model.fromProto(cnn), resolveConfig({ perChannel }), false);
    const ops = opCounts(q.proto);
    assert.deepEqual([ops.Conv, ops.ConvInteger, ops.DequantizeLinear, ops.DynamicQuantizeLinear], [2, undefined, undefined, undefined]);
    assert.equal(ops.Cast, 2, "each weight decoded from its int8 codes");
    assert.deepEqual(q.graph.initializer.filter((t) => t.dataType === DataType.UINT8 && t.dims.length === 4).map((t) => t.name).sort(), ["W1_quantized", "W2_quantized"]);
    assert.ok(!q.graph.initializer.some((t) => t.name === "W1" || t.name === "W2"), "the float weights are gone");
    assert.deepEqual(summary.quantized.map((n) => [n.name, n.tensors[0]!.perChannel]), [["conv1", perChannel], ["dw", perChannel]]);
    assert.deepEqual(summary.float, []);
    const got = await runModel(q.proto, feeds);
    results[String(perChannel)] = sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array);
    // Output channels 1–15 of the depthwise conv, whose weights are 80× smaller than channel 0's.
    const small = (t: ort.Tensor) => (t.data as Float32Array).filter((_, i) => Math.floor(i / 16) % 16 !== 0);
    results[`small ${perChannel}`] = sqnr(small(ref.y!), small(got.y!));
  }
  assert.ok(results.true! > 25, `per-channel SQNR ${results.true}`);
  // Per tensor, the small channels share the large one's scale: measurably worse there.
  assert.ok(results["small true"]! > results["small false"]! + 6, JSON.stringify(results));
});

test("dynamic mode: a Conv weight and bias shared by two convolutions are stored once, and both still run", async () => {
  const m = makeModel(
    [
      makeNode("Conv", ["x", "W", "B"], ["c1"], { name: "conv1", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Relu", ["c1"], ["r1"], { name: "relu1" }),
      makeNode("Conv", ["r1", "W", "B"], ["y"], { name: "conv2", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    ],
    [valueInfo("x", F, ["batch", 4, 6, 6])],
    [valueInfo("y", F, ["batch", 4, 6, 6])],
    [w("W", [4, 4, 3, 3], 11), makeTensor("B", F, [4], [0.1, -0.2, 0.3, 0.05])],
  );
  const feeds = { x: new ort.Tensor("float32", randomFloats(2 * 4 * 36, 12), [2, 4, 6, 6]) };
  const ref = await runModel(m, feeds, "disabled");
  const { model: q } = await quantizeDynamicModel(Model.fromProto(m), resolveConfig({}), false);
  const convs = q.graph.node.filter((n) => n.opType === "Conv");
  assert.equal(convs.length, 2);
  // One int8 copy of W (each Conv decodes it), the float W gone, the bias shared as it was.
  const codes = q.graph.initializer.filter((t) => t.dataType === DataType.UINT8 && t.dims.length === 4);
  assert.deepEqual(codes.map((t) => t.name), ["W_quantized"]);
  assert.ok(!q.graph.initializer.some((t) => t.name === "W"));
  assert.deepEqual(convs.map((n) => n.input[2]), ["B", "B"]);
  const got = await runModel(q.proto, feeds);
  assert.ok(sqnr(ref.y!.data as Float32Array, got.y!.data as Float32Array) > 25);
});

test("clear errors: convert before calibrate, empty data, already-quantized input, bad config", async () => {
  const prepared = await prepare(Model.fromProto(mlp()), {}, { optimize: false });
  await assert.rejects(convert(prepared), /no calibration range: run calibrate\(\)/);
  await assert.rejects(calibrate(prepared, []), /empty/);
  await release(prepared);
  const r = await quantizeTiny(mlp(), { x: [4, 16] });
  await assert.rejects(prepare(r.qdq, {}, { optimize: false }), /already quantized/);
  assert.throws(() => resolveConfig({ activationType: "int4" as never }), /activationType/);
  assert.throws(() => resolveConfig({ overrides: { x: { scale: -1 } } }), /overrides\["x"\]\.scale/);
});

test("per-tensor overrides: a fixed range and keepFloat", async () => {
  const r = await quantizeTiny(mlp(), { x: [4, 16] }, { overrides: { x: { range: { min: -4, max: 4 } }, m: { keepFloat: true } } });
  const s = r.qdq.graph.initializer.find((t) => t.name === "x_scale")!;
  assert.equal(new Float32Array(s.rawData.slice().buffer)[0], Math.fround(8 / 255));
  assert.ok(!r.qdq.graph.initializer.some((t) => t.name === "m_scale"));
});

test("a weight shared by two MatMuls is stored once; calibrate() twice widens the ranges", async () => {
  const m = makeModel(
    [makeNode("MatMul", ["x", "M"], ["a"], { name: "mm1" }), makeNode("Relu", ["a"], ["r"], { name: "relu" }), makeNode("MatMul", ["r", "M"], ["y"], { name: "mm2" })],
    [valueInfo("x", F, [4, 8])],
    [valueInfo("y", F, [4, 8])],
    [w("M", [8, 8], 1)],
  );
  const prepared = await prepare(Model.fromProto(m), {}, { optimize: false });
  const feed = (lo: number, hi: number) => ({ x: new ort.Tensor("float32", randomFloats(32, 5, lo, hi), [4, 8]) });
  await calibrate(prepared, [feed(-1, 1)]);
  const narrow = prepared.ranges.get("x")!;
  await calibrate(prepared, [feed(-3, 3)]);
  const wide = prepared.ranges.get("x")!;
  await release(prepared);
  assert.ok(wide.min < narrow.min && wide.max > narrow.max, `${JSON.stringify(narrow)} → ${JSON.stringify(wide)}`);
  const { model: q } = await convert(prepared);
  assert.equal(q.graph.initializer.filter((t) => t.name.startsWith("M_quantized")).length, 1);
  assert.equal(q.graph.node.filter((n) => n.opType === "DequantizeLinear" && n.input[0] === "M_quantized").length, 1);
});

test("format qoperator: onnxruntime's own lowering gives QLinear ops and no Q/DQ pairs between them", async () => {
  const prepared = await prepare(Model.fromProto(mlp()), { format: "qoperator" }, { optimize: false });
  await calibrate(prepared, [{ x: new ort.Tensor("float32", randomFloats(64, 1), [4, 16]) }]);
  await release(prepared);
  const { model: q, summary } = await convert(prepared);
  const ops = opCounts(q.proto);
  assert.ok((ops.QLinearMatMul ?? 0) + (ops.MatMulIntegerToFloat ?? 0) >= 1, JSON.stringify(ops));
  assert.equal(summary.format, "qoperator");
});

test("an attention-mask constant with -inf stays float instead of breaking the scale", async () => {
  const m = makeModel(
    [makeNode("MatMul", ["x", "M"], ["a"], { name: "mm" }), makeNode("Add", ["a", "mask"], ["y"], { name: "mask_add" })],
    [valueInfo("x", F, [4, 8])],
    [valueInfo("y", F, [4, 8])],
    [w("M", [8, 8], 1), makeTensor("mask", F, [8], [0, 0, 0, 0, 0, 0, -Infinity, -Infinity])],
  );
  const r = await quantizeTiny(m, { x: [4, 8] });
  assert.ok(r.qdq.graph.initializer.some((t) => t.name === "mask" && t.dataType === F));
});

test("excluding a node after calibration (as sensitivity analysis does) still converts", async () => {
  const m = makeModel(
    [
      makeNode("MatMul", ["x", "M"], ["a"], { name: "mm1" }),
      makeNode("Add", ["a", "b"], ["s"], { name: "add" }),
      makeNode("Reshape", ["s", "shape"], ["r"], { name: "reshape" }),
      makeNode("MatMul", ["r", "M2"], ["y"], { name: "mm2" }),
    ],
    [valueInfo("x", F, [4, 16])],
    [valueInfo("y", F, [4, 8])],
    [w("M", [16, 8], 1), w("b", [8], 2), makeTensor("shape", DataType.INT64, [2], [4n, 8n]), w("M2", [8, 8], 3)],
  );
  const prepared = await prepare(Model.fromProto(m), {}, { optimize: false });
  await calibrate(prepared, [{ x: new ort.Tensor("float32", randomFloats(64, 1), [4, 16]) }]);
  await release(prepared);
  for (const name of ["add", "reshape", "mm1"]) {
    const { model: q } = await convert({ ...prepared, config: { ...prepared.config, exclude: [name] } });
    assert.ok(q.graph.node.some((n) => n.opType === "DequantizeLinear"), name);
  }
});
