// A float chain of scalar Mul / Div / Add between an int8 op and the next Q becomes one QuantizeLinear of the chain's
// input (engine/quant/affine-codes): the Div that onnxruntime cannot run on int8 is gone, the op before it fuses, and
// the values the next op reads are those of the chain (a shift of a fraction of a step moves the scale a little,
// and the Conv's bias with it). Real onnxruntime sessions throughout.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import type { NodeProto } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { uniqueName, usedNames } from "../../../engine/onnx/graph";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { affinesOnCodes } from "../../../engine/quant/affine-codes";
import { makeModel, opCounts, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;
const U8 = DataType.UINT8;
const C = 6;
const scalar = (name: string, v: number, type = F) => makeTensor(name, type, [], [v]);

/**
 * Hand-written QDQ: x → Q → DQ → Mul(x, x) → [Div d → Mul a → Add b] → Q(s, z) → DQ → Conv(3×3, pad 1) → y.
 * `chain` picks the constants; the Conv's bias is a float initializer or int32 codes behind a DequantizeLinear.
 */
function qdqNet(d: number, a: number, b: number, intBias: boolean) {
  const w = randomFloats(C * C * 9, 3, -0.4, 0.4);
  const bias = randomFloats(C, 4, -0.5, 0.5);
  const sIn = 0.02;
  const nodes: NodeProto[] = [
    makeNode("QuantizeLinear", ["x", "sx", "zx"], ["xq"], { name: "qx" }),
    makeNode("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], { name: "dqx" }),
    makeNode("Mul", ["xd", "xd"], ["p"], { name: "square" }),
    makeNode("Div", ["p", "d"], ["p1"], { name: "div" }),
    makeNode("Mul", ["a", "p1"], ["p2"], { name: "scale" }),
    makeNode("Add", ["p2", "b"], ["o"], { name: "shift" }),
    makeNode("QuantizeLinear", ["o", "so", "zo"], ["oq"], { name: "qo" }),
    makeNode("DequantizeLinear", ["oq", "so", "zo"], ["od"], { name: "dqo" }),
    ...(intBias ? [makeNode("DequantizeLinear", ["bq", "sb"], ["bd"], { name: "dqb", attributes: [attr.int("axis", 0)] })] : []),
    makeNode("Conv", ["od", "W", intBias ? "bd" : "B"], ["y"], { name: "conv", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
  ];
  const inits = [
    scalar("sx", 1 / 128), scalar("zx", 128, U8), scalar("d", d), scalar("a", a), scalar("b", b),
    scalar("so", sIn), scalar("zo", 40, U8), makeTensor("W", F, [C, C, 3, 3], w),
    intBias
      ? makeTensor("bq", DataType.INT32, [C], Int32Array.from(bias, (v) => Math.round(v / (sIn * 0.01))))
      : makeTensor("B", F, [C], bias),
    ...(intBias ? [makeTensor("sb", F, [C], new Float32Array(C).fill(sIn * 0.01))] : []),
  ];
  return makeModel(nodes, [valueInfo("x", F, [1, C, 8, 8])], [valueInfo("y", F, [1, C, 8, 8])], inits, 13);
}

/** y before and after the pass, at optimization 'disabled' (the file's own arithmetic). */
async function beforeAfter(d: number, a: number, b: number, intBias = false) {
  const proto = qdqNet(d, a, b, intBias);
  const feeds = { x: new ort.Tensor("float32", randomFloats(C * 64, 7, -1, 1), [1, C, 8, 8]) };
  const before = (await runModel(proto, feeds, "disabled")).y!.data as Float32Array;
  const taken = usedNames(proto.graph!);
  const done = affinesOnCodes(proto.graph!, (base) => uniqueName(proto.graph!, base, taken));
  const after = (await runModel(proto, feeds, "disabled")).y!.data as Float32Array;
  const scales = Object.fromEntries(proto.graph!.initializer.filter((t) => t.dims.length === 0 && t.dataType === F).map((t) => [t.name, t.floatData[0] ?? new DataView(t.rawData.buffer, t.rawData.byteOffset).getFloat32(0, true)]));
  const read = new Set(proto.graph!.node.flatMap((n) => n.input));
  const unread = proto.graph!.initializer.filter((t) => !read.has(t.name)).map((t) => t.name);
  return { before, after, done: done.map((r) => r.node.name), ops: opCounts(proto), scales, unread };
}

/**
 * Over the pixels whose 3×3 window reads no padding, and over the border ones: the largest |before − after|, and
 * the largest per-channel mean of after − before (per element the rounding phase moves, on average the values must
 * not).
 */
function drift(before: Float32Array, after: Float32Array): { inner: number; border: number; innerMean: number } {
  let [inner, border] = [0, 0];
  const sums = new Float64Array(C);
  for (let i = 0; i < before.length; i++) {
    const [c, h, w] = [Math.floor(i / 64), Math.floor(i / 8) % 8, i % 8];
    const diff = Math.abs(before[i]! - after[i]!);
    if (h > 0 && h < 7 && w > 0 && w < 7) [inner, sums[c]] = [Math.max(inner, diff), sums[c]! + after[i]! - before[i]!];
    else border = Math.max(border, diff);
  }
  return { inner, border, innerMean: Math.max(...[...sums].map((v) => Math.abs(v / 36))) };
}

test("Div, Mul and Add by constants on the codes: one Q of the product, the Conv reads the same values", async () => {
  // b = 0.2 is 10 steps of 0.02: no rounding, so the whole output is the same (up to float ties).
  const r = await beforeAfter(6, 0.8, 0.2);
  assert.deepEqual(r.done.sort(), ["div", "scale", "shift", "square"]);
  assert.equal(r.ops.Div, undefined);
  assert.equal(r.ops.Add, undefined);
  assert.equal(r.ops.Mul, 1, "the product stays; the scale is gone");
  assert.deepEqual(r.unread, [], "the chain's constants go with it (onnxruntime warns about each unread initializer)");
  const d = drift(r.before, r.after);
  assert.ok(d.inner < 1e-5 && d.border < 1e-5, JSON.stringify(d));
});

test("a shift that is not a whole step: the scale moves to b/n (within 5 %), the int32 bias follows it", async () => {
  // b = 0.2071 is 10.355 steps of 0.02: the step becomes 0.02071 (3.6 % wider) and b ten of them. Each value is then
  // rounded on that grid (at most one step from before per tap), on average the same, padding included.
  const results: Float32Array[] = [];
  for (const intBias of [false, true]) {
    const r = await beforeAfter(6, 0.8, 0.2071, intBias);
    assert.equal(r.ops.Add, undefined, `intBias ${intBias}`);
    assert.ok(Math.abs(r.scales.so! - 0.02071) < 1e-7, `scale ${r.scales.so}`);
    const d = drift(r.before, r.after);
    assert.ok(Math.max(d.inner, d.border) <= 0.0207 * 0.4 * 54, `intBias ${intBias}: within one step per tap: ${JSON.stringify(d)}`);
    assert.ok(d.innerMean < 0.02, `intBias ${intBias}: no mean offset (δ left in would be 0.031 here): ${d.innerMean}`);
    results.push(r.after);
  }
  let worst = 0;
  results[0]!.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - results[1]![i]!))));
  assert.ok(worst < 1e-3, `int32 bias rescaled with the input scale: ${worst} from the float-bias output`);
});

test("left in float: a negative factor, a zero point pushed out of range, a shift that would move the scale too far", async () => {
  const negative = await beforeAfter(-6, 0.8, 0.2);
  assert.deepEqual(negative.done, []);
  assert.deepEqual(negative.unread, [], "a chain left in place keeps its constants");
  assert.deepEqual((await beforeAfter(6, 0.8, -1)).done, [], "zero point 40 − 50 steps");
  assert.deepEqual((await beforeAfter(6, 0.8, 4.2)).done.length, 4, "40 + 210 steps still fits");
  assert.deepEqual((await beforeAfter(6, 0.8, 0.05)).done, [], "2.5 steps: aligning would move the scale by 17 %");
});

test("through prepare/calibrate/convert: PP-OCRv4's HardSwish → scale → shift before a padded depthwise Conv leaves no float op", async () => {
  const F4 = 8;
  const dw = (x: string, y: string) =>
    makeNode("Conv", [x, "Wd", "Bd"], [y], { name: `conv_${y}`, attributes: [attr.ints("pads", [1, 1, 1, 1]), attr.int("group", F4)] });
  const proto = makeModel(
    [
      makeNode("Conv", ["x", "W1", "B1"], ["c"], { name: "conv1", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
      makeNode("Add", ["c", "three"], ["p3"], { name: "plus3" }),
      makeNode("Clip", ["p3", "zero", "six"], ["r6"], { name: "relu6" }),
      makeNode("Mul", ["c", "r6"], ["hs"], { name: "times" }),
      makeNode("Div", ["hs", "six"], ["hs6"], { name: "div6" }),
      makeNode("Mul", ["s2", "hs6"], ["m2"], { name: "lab_mul" }),
      makeNode("Add", ["m2", "b2"], ["a2"], { name: "lab_add" }),
      dw("a2", "y"),
    ],
    [valueInfo("x", F, [1, F4, 8, 8])],
    [valueInfo("y", F, [1, F4, 8, 8])],
    [
      makeTensor("W1", F, [F4, F4, 3, 3], randomFloats(F4 * F4 * 9, 1, -0.5, 0.5)),
      makeTensor("B1", F, [F4], randomFloats(F4, 2, -0.5, 0.5)),
      makeTensor("Wd", F, [F4, 1, 3, 3], randomFloats(F4 * 9, 3, -0.5, 0.5)),
      makeTensor("Bd", F, [F4], randomFloats(F4, 4, -0.5, 0.5)),
      scalar("three", 3), scalar("zero", 0), scalar("six", 6), scalar("s2", 0.8), scalar("b2", -0.1),
    ],
    17,
  );
  // The depthwise Conv writes the graph output: with keepFinalConvFloat (the default) it would run in float.
  const r = await quantizeTiny(proto, { x: [1, F4, 8, 8] }, { keepFinalConvFloat: false });
  assert.equal(r.ops.Div, undefined, JSON.stringify(r.ops));
  assert.equal(r.fused.Div, undefined);
  assert.equal(r.fused.Mul, undefined, JSON.stringify(r.fused));
  assert.equal(r.fused.Add, undefined, JSON.stringify(r.fused));
  assert.equal(r.fused.QLinearMul, 1, JSON.stringify(r.fused));
  assert.equal(r.fused.QLinearConv, 2, JSON.stringify(r.fused));
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
  const names = r.summary.quantized.map((q) => q.name);
  for (const n of ["times", "div6", "lab_mul", "lab_add"]) assert.ok(names.includes(n), `${n} listed as quantized: ${names.join(", ")}`);
  assert.ok(!r.summary.float.some((f) => ["times", "div6", "lab_mul", "lab_add"].includes(f.name)), JSON.stringify(r.summary.float));
});
