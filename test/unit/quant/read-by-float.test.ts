// Non-anchor ops whose outputs only float ops read stay float (registry.ts readOnlyByFloat): a DenseNet's Concat
// chain feeding float BatchNorms is not re-quantized, while a Concat a Conv reads, and a Relu folded into a Conv's Q,
// keep their Q. Tiny models built in code, quantized and run in onnxruntime-node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { makeModel, quantizeTiny, randomFloats, valueInfo } from "./build";

const F = DataType.FLOAT;
const w = (name: string, dims: number[], seed: number, lo = -0.5, hi = 0.5) =>
  makeTensor(name, F, dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed, lo, hi));
const pad1 = [attr.ints("pads", [1, 1, 1, 1])];
const conv = (x: string, wt: string, y: string) => makeNode("Conv", [x, wt], [y], { name: y, attributes: pad1 });
const cat = (a: string, b: string, y: string) => makeNode("Concat", [a, b], [y], { name: y, attributes: [attr.int("axis", 1)] });
/** BatchNorm (channels c, per-channel scales spread over 0.2–3 so the Concat's channels differ) → Relu. */
function bnRelu(x: string, c: number, seed: number) {
  return {
    nodes: [makeNode("BatchNormalization", [x, `${x}_g`, `${x}_b`, `${x}_m`, `${x}_v`], [`${x}_bn`], { name: `${x}_bn` }), makeNode("Relu", [`${x}_bn`], [`${x}_r`], { name: `${x}_relu` })],
    inits: [w(`${x}_g`, [c], seed, 0.2, 3), w(`${x}_b`, [c], seed + 1), w(`${x}_m`, [c], seed + 2), w(`${x}_v`, [c], seed + 3, 0.5, 2)],
    out: `${x}_r`,
  };
}

test("DenseNet block: the Concat chain read only by float BatchNorms stays float; every Conv still fuses", async () => {
  // stem c0 (4) → [BN → Relu → Conv → y1 (4)] → cat1 = [c0, y1] (8) → [BN → Relu → Conv → y2 (4)] → cat2 (12) → BN → Relu → Conv → out
  const b0 = bnRelu("c0", 4, 10);
  const b1 = bnRelu("cat1", 8, 20);
  const b2 = bnRelu("cat2", 12, 30);
  const nodes = [
    conv("x", "W0", "c0"), ...b0.nodes, conv(b0.out, "W1", "y1"), cat("c0", "y1", "cat1"),
    ...b1.nodes, conv(b1.out, "W2", "y2"), cat("cat1", "y2", "cat2"), ...b2.nodes, conv(b2.out, "W3", "out"),
  ];
  const m = makeModel(nodes, [valueInfo("x", F, [1, 1, 8, 8])], [valueInfo("out", F, [1, 2, 8, 8])], [
    w("W0", [4, 1, 3, 3], 1), w("W1", [4, 4, 3, 3], 2), w("W2", [4, 8, 3, 3], 3), w("W3", [2, 12, 3, 3], 4), ...b0.inits, ...b1.inits, ...b2.inits,
  ]);
  // The last Conv writes the graph output: keepFinalConvFloat (the default) would run it in float.
  const r = await quantizeTiny(m, { x: [1, 1, 8, 8] }, { keepFinalConvFloat: false });
  const reason = (n: string) => r.summary.float.find((f) => f.name === n)?.reason ?? "";
  for (const n of ["cat1", "cat2"]) assert.match(reason(n), /read only by float ops/, `${n}: ${reason(n)}`);
  const requantized = r.qdq.graph.node.filter((n) => n.opType === "QuantizeLinear" && /^cat\d_float$|^cat\d$/.test(n.input[0]!));
  assert.deepEqual(requantized.map((n) => n.input[0]), [], "no Q on a Concat output");
  assert.equal(r.fused.QLinearConv, 4, JSON.stringify(r.fused));
  assert.equal(r.fused.QLinearConcat, undefined);
  assert.ok(r.sqnr > 20, `SQNR ${r.sqnr}`);
});

test("a Concat a Conv reads keeps its Q (QLinearConcat), and a Relu folded into a Conv's Q before a float op stays folded", async () => {
  const nodes = [
    conv("x", "W0", "c0"), conv("x", "W1", "c1"), cat("c0", "c1", "cat"), conv("cat", "W2", "c2"),
    makeNode("Relu", ["c2"], ["r2"], { name: "relu2" }),
    makeNode("BatchNormalization", ["r2", "g", "b", "mu", "v"], ["out"], { name: "bn" }),
  ];
  const m = makeModel(nodes, [valueInfo("x", F, [1, 1, 8, 8])], [valueInfo("out", F, [1, 4, 8, 8])], [
    w("W0", [4, 1, 3, 3], 1), w("W1", [4, 1, 3, 3], 2), w("W2", [4, 8, 3, 3], 3), w("g", [4], 4, 0.5, 2), w("b", [4], 5), w("mu", [4], 6), w("v", [4], 7, 0.5, 2),
  ]);
  const r = await quantizeTiny(m, { x: [1, 1, 8, 8] });
  assert.ok(r.summary.quantized.some((n) => n.name === "cat"), "Concat read by a Conv is quantized");
  assert.equal(r.fused.QLinearConcat, 1, JSON.stringify(r.fused));
  assert.deepEqual(r.summary.foldedActivations, ["relu2"]);
  assert.equal(r.ops.Relu, undefined);
  assert.ok(r.sqnr > 20, `SQNR ${r.sqnr}`);
});

test("a Relu after a Gemm or MatMul folds into one Q at its own range (onnxruntime's removable activation); one only a float Softmax reads stays float", async () => {
  // x [2, 16] → Gemm → Relu → MatMul → Relu → Gemm → Relu → Softmax → y: the hidden Relus' inputs span negatives, so
  // a Q on the Gemm/MatMul output at that range, then another after the Relu, spends codes on values the Relu drops.
  const gemm = (a: string, b: string, c: string, y: string) => makeNode("Gemm", [a, b, c], [y], { name: y });
  const relu = (x: string, y: string) => makeNode("Relu", [x], [y], { name: y });
  const nodes = [
    gemm("x", "W1", "B1", "g1"), relu("g1", "relu1"), makeNode("MatMul", ["relu1", "W2"], ["m2"], { name: "m2" }), relu("m2", "relu2"),
    gemm("relu2", "W3", "B3", "g3"), relu("g3", "relu3"), makeNode("Softmax", ["relu3"], ["y"], { name: "softmax", attributes: [attr.int("axis", -1)] }),
  ];
  const m = makeModel(nodes, [valueInfo("x", F, [2, 16])], [valueInfo("y", F, [2, 6])], [
    w("W1", [16, 24], 1), w("B1", [24], 2), w("W2", [24, 24], 3), w("W3", [24, 6], 4), w("B3", [6], 5),
  ]);
  const r = await quantizeTiny(m, { x: [2, 16] });
  assert.deepEqual(r.summary.foldedActivations, ["relu1", "relu2"]);
  assert.match(r.summary.float.find((f) => f.name === "relu3")?.reason ?? "", /read only by float ops/);
  const quantized = r.qdq.graph.node.filter((n) => n.opType === "QuantizeLinear").map((n) => n.input[0]);
  for (const t of ["g1", "m2", "g3"]) assert.ok(!quantized.some((q) => q?.startsWith(t)), `no Q on ${t}: ${quantized.join(", ")}`);
  assert.equal(r.ops.Relu, 1, "only the last Relu is left");
  assert.equal(r.fused.QGemm, 1, JSON.stringify(r.fused));
  assert.equal(r.fused.QLinearMatMul, 1, JSON.stringify(r.fused));
  assert.ok(r.sqnr > 25, `SQNR ${r.sqnr}`);
});
