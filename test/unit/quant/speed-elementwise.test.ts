// Placement for speed on real exports (docs/int8-speed.md "Corpus models"): scalar affines around Convs (PP-OCRv4's
// learnable affine blocks, HardSwish's /6) folded into the Convs, so that no float Div keeps its neighbours float.
// Each test runs real onnxruntime sessions: the float model before and after prepare(), and the QDQ model fused.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import type { NodeProto } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { prepare } from "../../../engine/quant/index";
import { makeModel, quantizeTiny, randomFloats, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;
const C = 8;
const tensor = (name: string, dims: number[], seed: number, lo = -0.5, hi = 0.5) =>
  makeTensor(name, F, dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed, lo, hi));
const scalar = (name: string, v: number) => makeTensor(name, F, [1], [v]);
const conv = (x: string, w: string, b: string, y: string, pad: number) =>
  makeNode("Conv", [x, w, b], [y], { name: `conv_${y}`, attributes: [attr.ints("pads", [pad, pad, pad, pad])] });

/** Conv → `middle` → Conv (kernel k, padding (k−1)/2), opset 17, input [1, 8, 8, 8]. */
function sandwich(middle: (x: string) => { nodes: NodeProto[]; out: string; inits?: ReturnType<typeof tensor>[] }, k = 1) {
  const mid = middle("c1");
  return makeModel(
    [conv("x", "W1", "B1", "c1", 1), ...mid.nodes, conv(mid.out, "W2", "B2", "y", (k - 1) / 2)],
    [valueInfo("x", F, [1, C, 8, 8])],
    [valueInfo("y", F, [1, C, 8, 8])],
    [tensor("W1", [C, C, 3, 3], 1), tensor("B1", [C], 2), tensor("W2", [C, C, k, k], 3), tensor("B2", [C], 4), ...(mid.inits ?? [])],
  );
}

/** Largest |a − b| relative to max |a|: the float model before and after prepare(), at optimization 'disabled'. */
async function floatDrift(proto: ReturnType<typeof sandwich>): Promise<{ drift: number; ops: string[] }> {
  const pre = (await prepare(Model.fromProto(proto), {}, { optimize: false })).model;
  const feeds = { x: new ort.Tensor("float32", randomFloats(C * 64, 7), [1, C, 8, 8]) };
  const a = (await runModel(proto, feeds, "disabled")).y!.data as Float32Array;
  const b = (await runModel(pre.proto, feeds, "disabled")).y!.data as Float32Array;
  let [diff, peak] = [0, 0];
  a.forEach((v, i) => ([diff, peak] = [Math.max(diff, Math.abs(v - b[i]!)), Math.max(peak, Math.abs(v))]));
  return { drift: diff / peak, ops: pre.graph.node.map((n) => n.opType) };
}

/** PP-OCRv4's block: Mul(s)/Add(b) after the Conv, HardSwish as x·Clip(x+3, 0, 6)/6, Mul(s2)/Add(b2) before the next. */
const affineHardSwish = (x: string) => ({
  nodes: [
    makeNode("Mul", ["s1", x], ["m1"], { name: "lab_mul" }), // the constant first, as paddle2onnx writes it
    makeNode("Add", ["m1", "b1"], ["a1"], { name: "lab_add" }),
    makeNode("Add", ["a1", "three"], ["p3"], { name: "plus3" }),
    makeNode("Clip", ["p3", "zero", "six"], ["r6"], { name: "relu6" }),
    makeNode("Mul", ["a1", "r6"], ["hs"], { name: "times" }),
    makeNode("Div", ["hs", "six"], ["hs6"], { name: "div6" }),
    makeNode("Mul", ["s2", "hs6"], ["m2"], { name: "lab2_mul" }),
    makeNode("Add", ["m2", "b2"], ["a2"], { name: "lab2_add" }),
  ],
  out: "a2",
  inits: [scalar("s1", 1.3), scalar("b1", 0.2), scalar("three", 3), makeTensor("zero", F, [], [0]), makeTensor("six", F, [], [6]), scalar("s2", 0.8), scalar("b2", -0.1)],
});

test("a scalar affine and HardSwish's /6 fold into the Convs: no float Div left, exact before a pointwise Conv", async () => {
  const proto = sandwich(affineHardSwish, 1);
  const f = await floatDrift(proto);
  assert.deepEqual(f.ops, ["Conv", "Add", "Clip", "Mul", "Conv"], "Mul/Add folded into conv 1, Div/Mul/Add into conv 2");
  assert.ok(f.drift < 1e-5, `float output moved by ${f.drift}`);
  // The second Conv writes the graph output: keepFinalConvFloat (the default) would run it in float.
  const r = await quantizeTiny(proto, { x: [1, C, 8, 8] }, { keepFinalConvFloat: false });
  assert.equal(r.fused.Div, undefined);
  assert.equal(r.fused.Mul, undefined, JSON.stringify(r.fused));
  assert.equal(r.fused.QLinearConv, 2);
  assert.equal(r.fused.QuantizeLinear, 1, JSON.stringify(r.fused));
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});

test("before a padded Conv a shift stays where it is (padding would meet it); the Conv still takes Mul/Add after the Conv before", async () => {
  const proto = sandwich(affineHardSwish, 3);
  const f = await floatDrift(proto);
  assert.deepEqual(f.ops, ["Conv", "Add", "Clip", "Mul", "Div", "Mul", "Add", "Conv"]);
  assert.ok(f.drift < 1e-5, `float output moved by ${f.drift}`);
});
